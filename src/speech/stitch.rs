//! Joining the chunks of a long file: each chunk is heard again from a little before the end of
//! what the last one is trusted with, and the later hearing takes over where the earlier one
//! ends, found by the words both share, so that a word at the edge is neither lost nor said twice.
//!
//! Whisper at the start of a chunk may skip the first seconds it hears, or lose a passage, or say
//! one again in other words; the end of a chunk cuts a word in two. The earlier hearing of the
//! stretch both heard is kept whole (its chunk heard it with context on both sides), and the
//! later one is followed from just after the last run of words both share.

use super::{Segment, Word};

/// A word of a list of segments, its times and its letters. A segment without word times counts
/// as one word (its whole text).
#[derive(Debug, Clone)]
struct Place {
    start: f64,
    end: f64,
    plain: String,
}

fn plain(word: &str) -> String {
    word.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

fn places(segments: &[Segment]) -> Vec<Place> {
    let mut out = Vec::new();
    for s in segments {
        if s.words.is_empty() {
            out.push(Place { start: s.start, end: s.end, plain: plain(&s.text) });
        } else {
            out.extend(s.words.iter().map(|w| Place { start: w.start, end: w.end, plain: plain(&w.word) }));
        }
    }
    out
}

/// The segment made of some of its words: the text said again from those words, the times theirs.
fn made_of(segment: &Segment, words: &[Word]) -> Segment {
    let text = words.iter().map(|w| w.word.as_str()).collect::<Vec<_>>().join(" ");
    Segment {
        start: words.first().map_or(segment.start, |w| w.start),
        end: words.last().map_or(segment.end, |w| w.end),
        text,
        words: words.to_vec(),
    }
}

/// The first `n` words of `segments`, as segments (the one cut in two keeps its first words).
pub(super) fn first_words(segments: &[Segment], n: usize) -> Vec<Segment> {
    let mut left = n;
    let mut out = Vec::new();
    for s in segments {
        if left == 0 {
            break;
        }
        let count = s.words.len().max(1);
        if count <= left {
            out.push(s.clone());
            left -= count;
        } else {
            out.push(made_of(s, &s.words[..left]));
            left = 0;
        }
    }
    out
}

/// `segments` from their word `n` on (the one cut in two keeps its last words).
pub(super) fn from_word(segments: &[Segment], n: usize) -> Vec<Segment> {
    let mut skip = n;
    let mut out = Vec::new();
    for s in segments {
        let count = s.words.len().max(1);
        if skip >= count {
            skip -= count;
        } else if skip > 0 {
            out.push(made_of(s, &s.words[skip..]));
            skip = 0;
        } else {
            out.push(s.clone());
        }
    }
    out
}

/// How many of the words of `segments` lie before `at` (seconds): those whose middle does.
pub(super) fn words_before(segments: &[Segment], at: f64) -> usize {
    places(segments).iter().take_while(|p| f64::midpoint(p.start, p.end) < at).count()
}

/// Where to start hearing again near `target` (seconds): the widest pause between two words
/// within `reach` of it (the end of the word before the pause), so that no word is cut; `target`
/// itself when no word ends near it.
pub(super) fn restart_near(segments: &[Segment], target: f64, reach: f64) -> f64 {
    let words = places(segments);
    words
        .windows(2)
        .filter(|w| (w[0].end - target).abs() <= reach)
        .max_by(|a, b| {
            let gap = |w: &[Place]| w[1].start - w[0].end;
            gap(a)
                .total_cmp(&gap(b))
                .then_with(|| (b[0].end - target).abs().total_cmp(&(a[0].end - target).abs()))
        })
        .map_or(target, |w| w[0].end)
}

/// Two hearings agree on a run of words when they are the same words, the run starting at about
/// the same time (seconds) in both.
const SAME_TIME_SECS: f64 = 2.0;

/// `earlier` (what the last chunk heard, and is trusted with, from the restart on) joined with
/// `later` (the next chunk, heard from the restart). Whisper loses words in both ways it fails
/// here (a skipped passage, two sentences run into one), so the hearing with more words over the
/// stretch both heard is taken for it:
/// - the earlier one (also when they have as many): all of it, then the later hearing from just
///   after the last run of words both share (at about the same times); when the earlier goes on
///   past that run, or they share none, from the first later word after the earlier one's end;
/// - the later one: the earlier hearing up to the first run both share (or, sharing none, up to
///   the later one's first word), then all of the later one from there.
pub(super) fn join(earlier: &[Segment], later: &[Segment]) -> Vec<Segment> {
    let (a, b) = (places(earlier), places(later));
    let Some(a_end) = a.last().map(|p| p.end) else { return later.to_vec() };
    let middle = |p: &Place| f64::midpoint(p.start, p.end);
    // (place in a, place in b, length) of every run of words both hearings share.
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    // One shared word joins hearings of a word or two; longer ones need two, lest a common word
    // ("the") said twice join them at the wrong place.
    let needed = if a.len() <= 2 { 1 } else { 2 };
    for i in 0..a.len() {
        for j in 0..b.len() {
            if (a[i].start - b[j].start).abs() > SAME_TIME_SECS
                || (i > 0 && j > 0 && a[i - 1].plain == b[j - 1].plain)
            {
                continue; // too far apart, or inside a run already counted from its start
            }
            let len = a[i..]
                .iter()
                .zip(&b[j..])
                .take_while(|(x, y)| !x.plain.is_empty() && x.plain == y.plain)
                .count();
            if len >= needed {
                runs.push((i, j, len));
            }
        }
    }
    // The first later word at or after `from` heard after the earlier hearing's end.
    let heard_after_a = |from: usize| from + b[from..].iter().take_while(|p| middle(p) < a_end).count();
    if heard_after_a(0) > a.len() {
        let (keep_a, from_b) = match runs.iter().min_by_key(|r| r.0) {
            Some(&(i, j, _)) => (i, j),
            None => (a.iter().take_while(|p| b.first().is_none_or(|f| middle(p) < f.start)).count(), 0),
        };
        let mut out = first_words(earlier, keep_a);
        out.extend(from_word(later, from_b));
        return out;
    }
    let from_b = match runs.iter().max_by_key(|r| r.0 + r.2) {
        Some(&(i, j, len)) if i + len == a.len() => j + len,
        Some(&(_, j, len)) => heard_after_a(j + len),
        None => heard_after_a(0),
    };
    let mut out = earlier.to_vec();
    out.extend(from_word(later, from_b));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Segments from "text@start" words, each word 0.3 s long; "|" starts a new segment.
    fn heard(spec: &str) -> Vec<Segment> {
        let mut out: Vec<Segment> = Vec::new();
        let mut words: Vec<Word> = Vec::new();
        let flush = |words: &mut Vec<Word>, out: &mut Vec<Segment>| {
            if !words.is_empty() {
                out.push(made_of(&Segment::new(0.0, 0.0, ""), words));
                words.clear();
            }
        };
        for token in spec.split_whitespace() {
            if token == "|" {
                flush(&mut words, &mut out);
                continue;
            }
            let (word, at) = token.split_once('@').expect("word@start");
            let start: f64 = at.parse().expect("start");
            words.push(Word { start, end: start + 0.3, word: word.into(), probability: 1.0 });
        }
        flush(&mut words, &mut out);
        out
    }

    fn text(segments: &[Segment]) -> String {
        segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn a_later_hearing_that_skipped_its_first_words_loses_none() {
        // The later chunk began at 10.0 but Whisper gave nothing before 11.6.
        let earlier = heard("go@10.0 somewhere@10.4 and@10.8 do@11.2 something.@11.6 | Go@12.0 forward@12.4");
        let later = heard("something.@11.7 | Go@12.1 forward@12.5 ten@12.9 meters.@13.3");
        assert_eq!(text(&join(&earlier, &later)), "go somewhere and do something. Go forward ten meters.");
    }

    #[test]
    fn a_passage_heard_by_both_is_said_once() {
        let earlier = heard("in@20.0 his@20.3 power@20.6 and@21.0 he@21.3");
        let later = heard("in@20.1 his@20.4 power@20.7 and@21.0 he@21.3 would@21.6 be@21.9");
        assert_eq!(text(&join(&earlier, &later)), "in his power and he would be");
    }

    #[test]
    fn a_passage_the_later_hearing_lost_is_kept() {
        // The later hearing went from "them" straight to "eight": the earlier one's words stay.
        let earlier = heard("to@110.0 do@110.3 for@110.6 them.@110.9 | Go@114.3 somewhere@114.6 and@115.0");
        let later = heard("to@110.1 do@110.4 for@110.7 them.@111.0 | Eight@118.2 of@118.6 spades@119.0");
        assert_eq!(text(&join(&earlier, &later)), "to do for them. Go somewhere and Eight of spades");
    }

    #[test]
    fn a_later_hearing_with_more_words_takes_the_stretch() {
        // The earlier chunk ran two sentences into one at its end; the later heard both.
        let earlier =
            heard("Had@233.7 he@234.0 married@234.3 a@234.6 woman,@235.0 he@235.4 might@235.7 | was.@236.5");
        let later = heard(
            "Had@233.8 he@234.1 married@234.4 a@234.7 woman,@235.1 he@235.4 might@235.7 have@236.0 been@236.3 \
             | He@236.6 might@236.9 even@237.2 | Ten@240.0 of@240.3",
        );
        assert_eq!(
            text(&join(&earlier, &later)),
            "Had he married a woman, he might have been He might even Ten of"
        );
    }

    #[test]
    fn the_hearings_are_joined_where_they_agree() {
        // The later hearing heard the first words otherwise ("a more amiable" / "amore amiable"):
        // the earlier is kept whole, the later from the end of the run they share.
        let earlier = heard("married@5.0 a@5.3 more@5.5 amiable@5.8 woman@6.2 he@6.6");
        let later = heard("married@5.0 amore@5.4 amiable@5.8 woman@6.2 he@6.6 might@6.9 have@7.2");
        let joined = join(&earlier, &later);
        assert_eq!(text(&joined), "married a more amiable woman he might have");
        let ends: Vec<f64> = joined.iter().flat_map(|s| s.words.iter().map(|w| w.start)).collect();
        assert!(ends.windows(2).all(|w| w[0] < w[1]), "{ends:?}");
    }

    #[test]
    fn hearings_that_share_nothing_follow_each_other_in_time() {
        let earlier = heard("ten@30.0 of@30.3 clubs@30.6");
        let later = heard("tan@30.1 off@30.4 clogs@30.7 | queen@31.5 of@31.8 hearts@32.1");
        assert_eq!(text(&join(&earlier, &later)), "ten of clubs queen of hearts");
        assert_eq!(text(&join(&[], &later)), text(&later));
        assert_eq!(text(&join(&earlier, &[])), "ten of clubs");
    }

    #[test]
    fn a_common_word_said_twice_does_not_join_far_apart() {
        // "the" at 40.0 in the earlier hearing and at 45.0 in the later: not the same word.
        let earlier = heard("over@39.6 the@40.0 hill@40.3");
        let later = heard("over@39.7 the@40.0 hill@40.3 | to@44.7 the@45.0 sea@45.3");
        assert_eq!(text(&join(&earlier, &later)), "over the hill to the sea");
    }

    #[test]
    fn a_segment_is_cut_between_words() {
        let segments = heard("a@1.0 b@1.4 c@1.8 | d@2.2 e@2.6");
        assert_eq!(words_before(&segments, 1.9), 2);
        assert_eq!(text(&first_words(&segments, 2)), "a b");
        assert_eq!(text(&from_word(&segments, 2)), "c d e");
        let near = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(near(from_word(&segments, 2)[0].start, 1.8));
        assert!(near(first_words(&segments, 2)[0].end, 1.7));
        // The restart falls after the word before the widest pause near the target.
        let paused = heard("a@1.0 b@1.4 c@2.4 d@2.8");
        assert!(near(restart_near(&paused, 2.0, 1.0), 1.7));
        assert!(near(restart_near(&paused, 9.0, 1.0), 9.0));
    }
}
