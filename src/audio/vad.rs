//! Voice-activity detection by energy with an adaptive noise floor and a hangover: cuts a live
//! 16 kHz stream into utterances.

use super::{SAMPLE_RATE, rms};

/// 30 ms frames, the usual VAD granularity.
const FRAME: usize = SAMPLE_RATE as usize * 30 / 1000;
/// Speech must exceed the noise floor by this factor (≈ 9.5 dB)...
const SPEECH_OVER_NOISE: f32 = 3.0;
/// ...and this absolute level (−46 dBFS): a silent room is never speech, however quiet the floor.
const MIN_SPEECH_RMS: f32 = 0.005;
/// Consecutive speech frames that open an utterance (90 ms): clicks do not.
const START_FRAMES: usize = 3;
/// Silence that closes one (600 ms): long enough for the pause between words of a command,
/// short enough to answer promptly. Measured on the card and "go forward" clips, whose inner
/// pauses stay under 400 ms.
const HANGOVER_FRAMES: usize = 20;
/// Audio kept from before the start, so the first consonant is not cut (300 ms).
const PRE_ROLL_FRAMES: usize = 10;
/// Silence kept at an utterance's end (150 ms); the rest of the hangover is dropped.
const KEPT_TAIL_FRAMES: usize = PRE_ROLL_FRAMES / 2;
/// Seconds of silence an utterance keeps at its end.
pub const KEPT_TAIL_SECS: f64 = (KEPT_TAIL_FRAMES * FRAME) as f64 / SAMPLE_RATE as f64;
/// An utterance is cut here even if the speaker does not pause (Whisper's window is 30 s).
const MAX_UTTERANCE_SECS: usize = 28;

/// What the detector saw in the audio it was given.
#[derive(Debug, Clone, PartialEq)]
pub enum VadEvent {
    /// Speech began; carries the time (seconds since the stream began).
    Started { at: f64 },
    /// An utterance ended: its samples and its start time.
    Utterance { samples: Vec<f32>, start: f64 },
}

#[derive(Debug)]
pub struct Vad {
    noise: f32,
    partial: Vec<f32>,
    history: std::collections::VecDeque<Vec<f32>>,
    current: Option<Vec<f32>>,
    current_start: f64,
    speech_run: usize,
    silence_run: usize,
    frames_seen: u64,
}

impl Default for Vad {
    fn default() -> Self {
        Self::new()
    }
}

impl Vad {
    pub fn new() -> Self {
        Self {
            noise: MIN_SPEECH_RMS / SPEECH_OVER_NOISE,
            partial: Vec::new(),
            history: std::collections::VecDeque::new(),
            current: None,
            current_start: 0.0,
            speech_run: 0,
            silence_run: 0,
            frames_seen: 0,
        }
    }

    /// True while an utterance is open.
    pub fn in_speech(&self) -> bool {
        self.current.is_some()
    }

    /// Seconds of silence since the last speech frame of the open utterance (0 outside one).
    pub fn trailing_silence_secs(&self) -> f64 {
        if self.current.is_none() {
            return 0.0;
        }
        (self.silence_run * FRAME) as f64 / f64::from(SAMPLE_RATE)
    }

    /// The open utterance so far (for partial transcripts).
    pub fn current(&self) -> Option<&[f32]> {
        self.current.as_deref()
    }

    /// The open utterance as `close` will give it once the pause reaches the kept tail, before
    /// it does: the samples so far, the part of the tail not yet heard as silence (zeros). Its
    /// length changes only when more speech is heard.
    pub fn closing(&self) -> Option<Vec<f32>> {
        let cur = self.current.as_deref()?;
        let heard_silence = (self.silence_run * FRAME).min(cur.len());
        let speech_end = cur.len() - heard_silence;
        let tail = KEPT_TAIL_FRAMES * FRAME;
        let mut samples = cur[..speech_end + heard_silence.min(tail)].to_vec();
        samples.resize(speech_end + tail, 0.0);
        Some(samples)
    }

    /// The length of `closing` without the samples.
    pub fn closing_len(&self) -> Option<usize> {
        let cur = self.current.as_deref()?;
        Some(cur.len() - (self.silence_run * FRAME).min(cur.len()) + KEPT_TAIL_FRAMES * FRAME)
    }

    /// Closes the open utterance now, as the hangover would, without waiting for the rest of
    /// it (the caller knows the utterance is over).
    pub fn close(&mut self) -> Option<VadEvent> {
        let dropped = self.dropped_tail();
        let mut samples = self.current.take()?;
        samples.truncate(samples.len() - dropped);
        self.speech_run = 0;
        self.silence_run = 0;
        Some(VadEvent::Utterance { samples, start: self.current_start })
    }

    /// Samples of trailing silence an utterance closed now would drop.
    fn dropped_tail(&self) -> usize {
        let len = self.current.as_ref().map_or(0, Vec::len);
        (self.silence_run.saturating_sub(KEPT_TAIL_FRAMES) * FRAME).min(len)
    }

    /// Feeds samples; returns what happened in them.
    pub fn push(&mut self, samples: &[f32]) -> Vec<VadEvent> {
        self.partial.extend_from_slice(samples);
        let mut events = Vec::new();
        let mut start = 0;
        while self.partial.len() - start >= FRAME {
            let frame = self.partial[start..start + FRAME].to_vec();
            start += FRAME;
            self.frame(frame, &mut events);
        }
        self.partial.drain(..start);
        events
    }

    /// Ends the stream: an open utterance is closed and returned.
    pub fn finish(&mut self) -> Vec<VadEvent> {
        let rest = std::mem::take(&mut self.partial);
        let mut events = Vec::new();
        if let Some(mut cur) = self.current.take() {
            cur.extend_from_slice(&rest);
            events.push(VadEvent::Utterance { samples: cur, start: self.current_start });
        }
        events
    }

    fn frame(&mut self, frame: Vec<f32>, events: &mut Vec<VadEvent>) {
        let level = rms(&frame);
        let t = self.frames_seen as f64 * FRAME as f64 / f64::from(SAMPLE_RATE);
        self.frames_seen += 1;
        let speech = level > MIN_SPEECH_RMS && level > self.noise * SPEECH_OVER_NOISE;
        // The floor follows quiet frames quickly down and slowly up (never during speech).
        if !speech {
            let rate = if level < self.noise { 0.2 } else { 0.02 };
            self.noise += (level - self.noise) * rate;
        }
        if let Some(cur) = self.current.as_mut() {
            cur.extend_from_slice(&frame);
            self.silence_run = if speech { 0 } else { self.silence_run + 1 };
            let too_long = cur.len() >= MAX_UTTERANCE_SECS * SAMPLE_RATE as usize;
            if self.silence_run >= HANGOVER_FRAMES || too_long {
                events.extend(self.close());
            }
            return;
        }
        self.speech_run = if speech { self.speech_run + 1 } else { 0 };
        self.history.push_back(frame);
        while self.history.len() > PRE_ROLL_FRAMES + START_FRAMES {
            self.history.pop_front();
        }
        if self.speech_run >= START_FRAMES {
            let samples: Vec<f32> = self.history.drain(..).flatten().collect();
            self.current_start = (t + FRAME as f64 / f64::from(SAMPLE_RATE)
                - samples.len() as f64 / f64::from(SAMPLE_RATE))
            .max(0.0);
            events.push(VadEvent::Started { at: self.current_start });
            self.current = Some(samples);
            self.silence_run = 0;
        }
    }
}

/// Where the first speech in a buffer begins (pre-roll included), in seconds; `None` if the
/// buffer holds nothing the detector would call speech.
pub fn speech_start(samples: &[f32]) -> Option<f64> {
    let mut vad = Vad::new();
    for block in samples.chunks(SAMPLE_RATE as usize) {
        if let Some(at) = vad.push(block).iter().find_map(|e| match e {
            VadEvent::Started { at } => Some(*at),
            VadEvent::Utterance { .. } => None,
        }) {
            return Some(at);
        }
    }
    None
}

/// True when a buffer holds any stretch the detector would call speech.
pub fn has_speech(samples: &[f32]) -> bool {
    speech_start(samples).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(secs: f32, amp: f32) -> Vec<f32> {
        (0..(secs * 16_000.0) as usize).map(|i| (i as f32 * 0.07).sin() * amp).collect()
    }

    #[test]
    fn silence_and_faint_noise_are_not_speech() {
        assert!(!has_speech(&vec![0.0; 48_000]));
        let noise: Vec<f32> =
            (0..48_000).map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.004).collect();
        assert!(!has_speech(&noise));
    }

    #[test]
    fn two_bursts_are_two_utterances_with_their_times() {
        let mut audio = vec![0.0; 16_000];
        audio.extend(tone(0.8, 0.3));
        audio.extend(vec![0.0; 24_000]);
        audio.extend(tone(0.5, 0.3));
        audio.extend(vec![0.0; 16_000]);
        let mut vad = Vad::new();
        let mut events = Vec::new();
        for block in audio.chunks(1000) {
            events.extend(vad.push(block));
        }
        events.extend(vad.finish());
        let utterances: Vec<(f64, usize)> = events
            .iter()
            .filter_map(|e| match e {
                VadEvent::Utterance { samples, start } => Some((*start, samples.len())),
                VadEvent::Started { .. } => None,
            })
            .collect();
        assert_eq!(utterances.len(), 2, "{utterances:?}");
        assert!((utterances[0].0 - 0.7).abs() < 0.1, "{utterances:?}");
        assert!((utterances[1].0 - 3.0).abs() < 0.35, "{utterances:?}");
        // Each holds its burst plus pre-roll and a little tail, not the whole hangover.
        assert!(utterances[0].1 > 12_800 && utterances[0].1 < 12_800 + 16_000, "{utterances:?}");
    }

    #[test]
    fn closing_early_gives_the_samples_the_hangover_would() {
        let mut audio = vec![0.0; 16_000];
        audio.extend(tone(0.8, 0.3));
        let pause = vec![0.0; 16_000];
        let mut early = Vad::new();
        early.push(&audio);
        let mut late = Vad::new();
        late.push(&audio);
        // 300 ms into the pause: what closing now would give stays put as silence goes on.
        early.push(&pause[..4800]);
        let closing = early.closing().expect("open");
        early.push(&pause[4800..6400]);
        assert_eq!(early.closing_len(), Some(closing.len()));
        let Some(VadEvent::Utterance { samples, start }) = early.close() else { panic!("closes") };
        assert_eq!(samples, closing);
        assert!(!early.in_speech());
        // The hangover closes the same utterance with the same samples.
        let events = late.push(&pause);
        let Some(VadEvent::Utterance { samples: by_hangover, start: at }) = events.into_iter().last() else {
            panic!("the hangover closes it")
        };
        assert_eq!((&by_hangover, at), (&samples, start));
        // Asked before the tail is all heard: the same length, the heard samples, and zeros for
        // the rest of the tail.
        let mut ahead = Vad::new();
        ahead.push(&audio);
        ahead.push(&pause[..1440]);
        let padded = ahead.closing().expect("open");
        assert_eq!(padded.len(), samples.len());
        assert_eq!(ahead.closing_len(), Some(padded.len()));
        let heard = ahead.current().expect("open").len();
        assert_eq!(padded[..heard], samples[..heard]);
        assert!(padded[heard..].iter().all(|&x| x == 0.0));
        ahead.push(&pause[1440..4800]);
        assert_eq!(ahead.closing(), Some(samples.clone()));
        // More speech makes it longer.
        let mut resumed = Vad::new();
        resumed.push(&audio);
        resumed.push(&pause[..4800]);
        let before = resumed.closing_len();
        resumed.push(&tone(0.2, 0.3));
        assert!(resumed.closing_len() > before);
    }
}
