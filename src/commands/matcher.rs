//! Which command an utterance meant, or none. Three scores per phrase, each 0..1, fused by a
//! weighted sum; a command scores its best phrase:
//! (a) meaning: cosine in the shared space between transcript and phrase (text encoder);
//! (b) form: spelling and sound similarity of transcript and phrase (`similarity`);
//! (c) sound: how strongly Whisper hears the phrase in the audio, for the phrases of the
//!     `SHORTLIST` best commands by (a) and (b). From Whisper's probability of each phrase given
//!     the audio (teacher forcing) and of its own free transcript (`sound_score`): noise lowers
//!     every probability, so the score is relative, not absolute.
//! The best command is accepted when its fused score reaches `threshold` and beats the
//! runner-up by `margin`; otherwise the answer is "no match".

use super::CommandSet;
use super::similarity::Spoken;
use crate::space::{Embedding, SpaceError, TextEncoder};

/// How scores are fused and when a match is accepted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Weights of meaning, form and sound in the fused score (they sum to 1).
    pub weights: [f32; 3],
    pub threshold: f32,
    pub margin: f32,
}

/// Calibrated on the public set, clean and in noise together (`scripts/eval/make-noisy.py`:
/// pink noise and babble at 10 and 5 dB), with `cargo bench --bench commands`, which
/// recomputes the fused score for every weighting on a 0.1 grid and keeps the one that best
/// separates the command clips' right answers from the read sentences and from their
/// runners-up. With these weights the right answers scored ≥ 0.56, the read sentences ≤ 0.17,
/// and right answers beat the runner-up by ≥ 0.19 (tiny.en; three noisy clips whose transcript
/// lost the words are wrong whatever the settings): the threshold is the middle of that gap,
/// the margin half the smallest winning margin. These figures are tuned on the set they are
/// measured on: 35 command clips and 25 read sentences.
pub const CALIBRATED: Settings = Settings { weights: [0.2, 0.4, 0.4], threshold: 0.365, margin: 0.097 };

/// Commands whose phrases Whisper scores (the rest are out of the running by text alone).
pub const SHORTLIST: usize = 3;

#[derive(Debug)]
struct Phrase {
    command: usize,
    text: String,
    spoken: Spoken,
    embedding: Embedding,
}

/// A command set made ready to match: every phrase embedded once.
#[derive(Debug)]
pub struct Matcher {
    names: Vec<String>,
    phrases: Vec<Phrase>,
    /// Per command: whether one of its phrases begins another command's (`Decision::begins_another`).
    begins_another: Vec<bool>,
    pub settings: Settings,
}

/// One command's scores for an utterance.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Score {
    pub command: String,
    /// The fused score.
    pub score: f32,
    pub meaning: f32,
    pub form: f32,
    /// `None` when Whisper did not score it (not shortlisted).
    pub sound: Option<f32>,
}

/// The answer for one utterance.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Decision {
    pub transcript: String,
    /// The accepted command, or `None` for "no match".
    pub command: Option<String>,
    /// Every command's score, best first.
    pub scores: Vec<Score>,
    /// Why nothing was accepted, when nothing was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    /// The accepted command's phrase is how another command's begins ("five" of "five of
    /// clubs", "eight of spades" of "eight of spades, four of clubs, …"): a pause after it may be
    /// inside the longer one, so live listening decides it only when the utterance ends.
    #[serde(skip)]
    pub begins_another: bool,
}

/// The text side of an utterance, computed once.
#[derive(Debug)]
pub struct Heard {
    pub transcript: String,
    spoken: Spoken,
    embedding: Option<Embedding>,
}

impl Matcher {
    pub fn new(set: &CommandSet, encoder: &TextEncoder, settings: Settings) -> Result<Self, SpaceError> {
        let mut phrases = Vec::new();
        for (i, c) in set.commands.iter().enumerate() {
            for p in &c.phrases {
                phrases.push((i, p.clone()));
            }
        }
        let embeddings = encoder.embed(&phrases.iter().map(|(_, p)| p.as_str()).collect::<Vec<_>>())?;
        let phrases: Vec<Phrase> = phrases
            .into_iter()
            .zip(embeddings)
            .map(|((command, text), embedding)| Phrase {
                command,
                spoken: Spoken::new(&text),
                text,
                embedding,
            })
            .collect();
        let begins_another = begins_another(&phrases, set.commands.len());
        Ok(Self {
            names: set.commands.iter().map(|c| c.name.clone()).collect(),
            phrases,
            begins_another,
            settings,
        })
    }

    /// Embeds the transcript (nothing to embed for silence).
    pub fn hear(&self, transcript: &str, encoder: &TextEncoder) -> Result<Heard, SpaceError> {
        let spoken = Spoken::new(transcript);
        let embedding = if spoken.is_empty() { None } else { Some(encoder.embed_one(transcript)?) };
        Ok(Heard { transcript: transcript.trim().to_owned(), spoken, embedding })
    }

    /// (meaning, form) of every phrase.
    fn text_scores(&self, heard: &Heard) -> Vec<(f32, f32)> {
        self.phrases
            .iter()
            .map(|p| {
                let meaning = heard.embedding.as_ref().map_or(0.0, |e| e.cosine(&p.embedding).max(0.0));
                (meaning, heard.spoken.similarity(&p.spoken))
            })
            .collect()
    }

    /// The phrases Whisper should score: all phrases of the `SHORTLIST` commands that text
    /// alone ranks highest. Returns (phrase index, phrase text).
    pub fn shortlist(&self, heard: &Heard) -> Vec<(usize, String)> {
        if heard.embedding.is_none() {
            return Vec::new();
        }
        let [wm, wf, _] = self.settings.weights;
        let text = self.text_scores(heard);
        let mut per_command = vec![0.0f32; self.names.len()];
        for (p, (m, f)) in self.phrases.iter().zip(&text) {
            per_command[p.command] = per_command[p.command].max(wm * m + wf * f);
        }
        let mut order: Vec<usize> = (0..self.names.len()).collect();
        order.sort_by(|a, b| per_command[*b].total_cmp(&per_command[*a]));
        order.truncate(SHORTLIST);
        self.phrases
            .iter()
            .enumerate()
            .filter(|(_, p)| order.contains(&p.command))
            .map(|(i, p)| (i, p.text.clone()))
            .collect()
    }

    /// Fuses the scores and decides. `sound` holds Whisper's probability of each shortlisted
    /// phrase (phrase index, probability) and `own` that of its free transcript; phrases
    /// without one count 0 for sound.
    pub fn decide(&self, heard: &Heard, sound: &[(usize, f32)], own: f32) -> Decision {
        if heard.embedding.is_none() {
            return Decision {
                transcript: heard.transcript.clone(),
                command: None,
                scores: Vec::new(),
                rejected: Some("no speech".into()),
                begins_another: false,
            };
        }
        let [wm, wf, ws] = self.settings.weights;
        let text = self.text_scores(heard);
        let total: f32 = sound.iter().map(|(_, p)| p).sum();
        let mut scores: Vec<Option<Score>> = vec![None; self.names.len()];
        for (i, (p, (meaning, form))) in self.phrases.iter().zip(text).enumerate() {
            let s = sound.iter().find(|(j, _)| *j == i).map(|(_, p)| sound_score(*p, total, own));
            let fused = wm * meaning + wf * form + ws * s.unwrap_or(0.0);
            let slot = &mut scores[p.command];
            if slot.as_ref().is_none_or(|old| fused > old.score) {
                *slot = Some(Score {
                    command: self.names[p.command].clone(),
                    score: fused,
                    meaning,
                    form,
                    sound: s,
                });
            }
        }
        let mut scores: Vec<Score> = scores.into_iter().flatten().collect();
        scores.sort_by(|a, b| b.score.total_cmp(&a.score));
        let (best, runner_up) =
            (scores.first().map_or(0.0, |s| s.score), scores.get(1).map_or(0.0, |s| s.score));
        let rejected = if best < self.settings.threshold {
            Some(format!("best score {best:.3} is under the threshold {:.3}", self.settings.threshold))
        } else if scores.len() > 1 && best <= runner_up {
            Some(format!("{} and {} tie at {best:.3}", scores[0].command, scores[1].command))
        } else if best - runner_up < self.settings.margin {
            Some(format!(
                "best beats the runner-up by {:.3}, under the margin {:.3}",
                best - runner_up,
                self.settings.margin
            ))
        } else {
            None
        };
        Decision {
            transcript: heard.transcript.clone(),
            command: if rejected.is_none() { scores.first().map(|s| s.command.clone()) } else { None },
            begins_another: rejected.is_none()
                && scores
                    .first()
                    .and_then(|s| self.names.iter().position(|n| *n == s.command))
                    .is_some_and(|i| self.begins_another[i]),
            scores,
            rejected,
        }
    }
}

/// Per command: whether one of its phrases is, word for word, how another command's begins.
fn begins_another(phrases: &[Phrase], commands: usize) -> Vec<bool> {
    (0..commands)
        .map(|i| {
            phrases.iter().filter(|p| p.command == i).any(|p| {
                let head = format!("{} ", p.spoken.words);
                phrases.iter().any(|q| q.command != i && q.spoken.words.starts_with(&head))
            })
        })
        .collect()
}

/// The sound score of a phrase Whisper heard with probability `p`, when the shortlist's
/// phrases together got `total` and its own free transcript `own`: the phrase's share of the
/// shortlist (which of these commands Whisper hears: noise lowers them all alike), damped by how
/// far the phrase falls short of what Whisper heard freely (speech that is none of them: its
/// own transcript is far likelier than any phrase). The square root keeps one misheard word of
/// a command ("ten of close") from wiping it out.
pub fn sound_score(p: f32, total: f32, own: f32) -> f32 {
    if p <= 0.0 || total <= 0.0 {
        return 0.0;
    }
    let share = p / total;
    let short_of_free = if own > 0.0 { (p / own).min(1.0) } else { 1.0 };
    share * short_of_free.sqrt()
}

#[derive(Debug, thiserror::Error)]
pub enum RecogniseError {
    #[error(transparent)]
    Speech(#[from] crate::speech::SpeechError),
    #[error(transparent)]
    Space(#[from] SpaceError),
}

impl Matcher {
    /// The whole decision for one utterance: transcribe, shortlist by text, let Whisper score the
    /// shortlist and its own transcript on the same encoder pass, fuse, decide.
    pub fn recognise(
        &self,
        whisper: &crate::speech::Whisper,
        encoder: &TextEncoder,
        samples: &[f32],
        options: &crate::speech::Options,
        cancel: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<Decision, RecogniseError> {
        let mut heard = None;
        let mut shortlist = Vec::new();
        let mut failure = None;
        // A command needs no segment times: the decoder skips its timestamp tokens. Its decode
        // is capped, so the encoder's window can end close to the clip.
        let options = crate::speech::Options {
            timestamps: false,
            window_margin_secs: options.window_margin_secs.min(crate::speech::COMMAND_WINDOW_MARGIN_SECS),
            max_tokens_per_sec: Some(crate::speech::COMMAND_TOKENS_PER_SEC),
            ..options.clone()
        };
        let (_, sound) = whisper.transcribe_scoring(samples, &options, cancel, |t| {
            match self.hear(&t.text, encoder) {
                Ok(h) => {
                    shortlist = self.shortlist(&h);
                    heard = Some(h);
                }
                Err(e) => failure = Some(e),
            }
            let mut phrases: Vec<String> = shortlist.iter().map(|(_, p)| p.clone()).collect();
            phrases.push(t.text.trim().to_owned());
            phrases
        })?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        let heard = match heard {
            Some(h) => h,
            None => self.hear("", encoder)?,
        };
        // The transcript's own score came last.
        let own = if sound.len() > shortlist.len() { sound[shortlist.len()] } else { 0.0 };
        let sound: Vec<(usize, f32)> = shortlist.iter().map(|(i, _)| *i).zip(sound).collect();
        Ok(self.decide(&heard, &sound, own))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A matcher over one-hot phrase vectors: phrase `i` of command `i` points along axis `i`.
    fn matcher(commands: &[&str], settings: Settings) -> Matcher {
        let dim = commands.len();
        let axis =
            |i: usize| Embedding::normalised((0..dim).map(|j| if i == j { 1.0 } else { 0.0 }).collect());
        let phrases: Vec<Phrase> = commands
            .iter()
            .enumerate()
            .map(|(i, &c)| Phrase {
                command: i,
                text: c.to_owned(),
                spoken: Spoken::new(c),
                embedding: axis(i),
            })
            .collect();
        Matcher {
            names: commands.iter().map(|&c| c.to_owned()).collect(),
            begins_another: begins_another(&phrases, commands.len()),
            phrases,
            settings,
        }
    }

    fn heard(transcript: &str, direction: Vec<f32>) -> Heard {
        Heard {
            transcript: transcript.to_owned(),
            spoken: Spoken::new(transcript),
            embedding: Some(Embedding::normalised(direction)),
        }
    }

    /// Meaning alone decides: fused score = cosine with the phrase.
    const MEANING_ONLY: Settings = Settings { weights: [1.0, 0.0, 0.0], threshold: 0.5, margin: 0.1 };

    #[test]
    fn a_command_that_begins_a_longer_one_says_so() {
        let m = matcher(&["five", "five of clubs", "fivefold", "go"], MEANING_ONLY);
        let five = m.decide(&heard("five", vec![1.0, 0.0, 0.0, 0.0]), &[], 0.0);
        assert_eq!(five.command.as_deref(), Some("five"));
        assert!(five.begins_another, "\"five of clubs\" goes on from \"five\"");
        for (said, direction) in [("five of clubs", [0.0, 1.0, 0.0, 0.0]), ("go", [0.0, 0.0, 0.0, 1.0])] {
            let d = m.decide(&heard(said, direction.to_vec()), &[], 0.0);
            assert_eq!(d.command.as_deref(), Some(said));
            assert!(!d.begins_another, "{said}: no command goes on from it (\"fivefold\" is another word)");
        }
    }

    #[test]
    fn a_clear_winner_over_the_threshold_is_accepted() {
        let m = matcher(&["lights on", "lights off"], MEANING_ONLY);
        let d = m.decide(&heard("lights on please", vec![0.9, 0.1]), &[], 0.0);
        assert_eq!(d.command.as_deref(), Some("lights on"));
        assert!(d.rejected.is_none());
        assert_eq!(d.scores.len(), 2);
        assert!(d.scores[0].score > d.scores[1].score);
    }

    #[test]
    fn under_the_threshold_is_no_match_with_the_reason() {
        let m = matcher(&["lights on", "lights off", "music"], MEANING_ONLY);
        // cos = 0.45 with "lights on": best, clear of the rest, but under 0.5.
        let d = m.decide(&heard("something", vec![0.45, 0.0, 0.0, 0.893]), &[], 0.0);
        assert_eq!(d.command, None);
        assert!(d.rejected.as_deref().is_some_and(|r| r.contains("under the threshold")), "{d:?}");
    }

    #[test]
    fn a_runner_up_within_the_margin_is_no_match() {
        let m = matcher(&["lights on", "lights off"], MEANING_ONLY);
        let d = m.decide(&heard("lights", vec![0.75, 0.66]), &[], 0.0);
        assert_eq!(d.command, None);
        assert!(d.rejected.as_deref().is_some_and(|r| r.contains("under the margin")), "{d:?}");
    }

    #[test]
    fn a_tie_is_never_accepted() {
        let m = matcher(&["lights on", "lights off"], Settings { margin: 0.0, ..MEANING_ONLY });
        // A zero margin still needs the best to beat the runner-up: equal scores are refused.
        let d = m.decide(&heard("lights", vec![1.0, 1.0]), &[], 0.0);
        assert!((d.scores[0].score - d.scores[1].score).abs() < 1e-6);
        assert_eq!(d.command, None, "{d:?}");
        assert!(d.rejected.as_deref().is_some_and(|r| r.contains("tie")), "{d:?}");
    }

    #[test]
    fn whisper_scores_count_only_for_the_phrases_they_were_given_for() {
        let settings = Settings { weights: [0.5, 0.0, 0.5], threshold: 0.5, margin: 0.1 };
        let m = matcher(&["lights on", "lights off"], settings);
        let h = heard("lights", vec![0.7, 0.7]);
        let d = m.decide(&h, &[(1, 0.9)], 0.9);
        assert_eq!(d.command.as_deref(), Some("lights off"), "{d:?}");
        assert_eq!(d.scores[0].sound, Some(1.0));
        assert_eq!(d.scores[1].sound, None);
    }

    #[test]
    fn the_sound_score_is_relative_to_the_shortlist_and_to_the_free_transcript() {
        // Noise lowers every probability alike: the same shares, the same scores.
        let clean = sound_score(0.6, 0.6 + 0.06, 0.6);
        let noisy = sound_score(0.06, 0.06 + 0.006, 0.06);
        assert!((clean - noisy).abs() < 1e-6 && clean > 0.9, "{clean} {noisy}");
        // Speech that is none of the phrases: Whisper's own reading is far likelier.
        assert!(sound_score(0.001, 0.0012, 0.7) < 0.05);
        // A phrase with one misheard word keeps a good part of its score.
        assert!(sound_score(0.09, 0.1, 0.67) > 0.3);
        assert!(sound_score(0.0, 0.0, 0.5).abs() < f32::EPSILON);
    }

    #[test]
    fn silence_is_no_match_without_scores() {
        let m = matcher(&["lights on"], MEANING_ONLY);
        let silent = Heard { transcript: String::new(), spoken: Spoken::new(""), embedding: None };
        let d = m.decide(&silent, &[], 0.0);
        assert_eq!((d.command, d.scores.len(), d.rejected.as_deref()), (None, 0, Some("no speech")));
        assert!(m.shortlist(&silent).is_empty());
    }
}
