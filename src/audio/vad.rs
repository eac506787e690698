//! Voice-activity detection: the learned detector (Silero VAD, `silero.rs`) gives each 32 ms of
//! a live 16 kHz stream a speech probability; hysteresis (separate thresholds to enter and
//! leave speech), a pre-roll and a hangover cut the stream into utterances.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::SAMPLE_RATE;
use super::silero::{CHUNK, SileroModel, SileroState};
use crate::model_store::{ModelStore, catalogue};

/// The detector's step: 512 samples, 32 ms.
const FRAME: usize = CHUNK;
const FRAME_SECS: f64 = FRAME as f64 / SAMPLE_RATE as f64;
/// Speech probability that opens speech at the default sensitivity (the Silero authors' default
/// threshold).
pub const DEFAULT_THRESHOLD: f32 = 0.5;
/// Speech is left below the entry threshold less this (the authors' `neg_threshold`): a word's
/// quiet end does not close it.
const LEAVE_BELOW: f32 = 0.15;
/// Consecutive speech frames that open an utterance (96 ms): a click or a cough does not.
const START_FRAMES: usize = 3;
/// Frames over the threshold an utterance needs in all to be kept (192 ms of speech): a door or
/// a laugh that opened one is dropped.
const MIN_SPEECH_FRAMES: usize = 6;
/// Silence that closes an utterance (704 ms): a pause of up to 500 ms inside a phrase (the comma
/// in "rear, right" is 350–400 ms) keeps it whole, with the detector's own ~100 ms lag after a
/// word's end on top. The live pipeline answers before this from its early close (`live.rs`).
const HANGOVER_FRAMES: usize = 22;
/// Audio kept from before the start, so the first consonant is not cut (320 ms).
const PRE_ROLL_FRAMES: usize = 10;
/// Seconds of audio an utterance keeps from before the detector heard speech begin.
pub const PRE_ROLL_SECS: f64 = PRE_ROLL_FRAMES as f64 * FRAME_SECS;
/// Silence kept at an utterance's end (160 ms); the rest of the hangover is dropped.
const KEPT_TAIL_FRAMES: usize = 5;
/// Seconds of silence an utterance keeps at its end.
pub const KEPT_TAIL_SECS: f64 = KEPT_TAIL_FRAMES as f64 * FRAME_SECS;
/// An utterance is cut here even if the speaker does not pause (Whisper's window is 30 s).
const MAX_UTTERANCE_SECS: usize = 28;
/// The room's background level: the median level of the last 4.8 s heard outside utterances.
/// It follows a noise that starts within a few seconds.
const BACKGROUND_QUANTILE: f64 = 0.5;
const BACKGROUND_FRAMES: usize = 150;
/// An utterance open longer than this (8 s, longer than any read sentence of the public set)
/// is learnt as background too: a noise that opened it, or began during it, ends it soon after.
const LEARN_IN_UTTERANCE_FRAMES: usize = 250;
/// Past `LEARN_IN_UTTERANCE_FRAMES`, a frame the network hears as a voice teaches the room the
/// quietest level of the utterance's last this many frames (1 s), not its own (minimum
/// statistics): a person reading on without a pause dips to near the room between words, so the
/// room stays the room and every word is kept. Learning the voice's own level took the speaker
/// for the room 10 s into a monologue and lost the rest. Measured on the public read sentences
/// back to back with no pause (49 s): the quietest of 1 s is a tenth of the speech's median
/// level (at most 0.25 of it nine times in ten), so speech stays twice over it. A noise that
/// begins with the utterance and has no voice in it (a fan) is learnt as it is, frame by frame.
const QUIETEST_OF_FRAMES: usize = 31;
/// A frame is speech to the app only when it is also this much louder than the background
/// (6 dB): other voices in the room (babble) are speech to the network, but they are the room,
/// not someone speaking to the app. Chosen on the public clips under pink noise and babble made
/// of other public clips (tests/vad.rs, docs/BENCHMARKS.md): with the 20th percentile and 2×, or
/// the median and 2.5×, babble alone opened utterances or commands at 10 dB were missed; the
/// median and 2× opened none in a minute of either noise and kept every command and sentence
/// at 20 and 10 dB.
const OVER_BACKGROUND: f32 = 2.0;
/// The quietest background considered (−80 dBFS): digital silence does not make every sound
/// loud enough.
const MIN_BACKGROUND: f32 = 1e-4;
/// A recording's background counts once this much of it was heard (1 s); before, the network
/// alone decides (`Vad::for_recording`). A room is young until this much real sound of it was
/// heard (`Vad::close`).
const MIN_BACKGROUND_FRAMES: usize = 31;
/// A frame this quiet (−120 dBFS) is digital silence, not a room: an audio server's new input
/// stream begins with some (`PulseAudio`: 0.8 s), and a muted or virtual source gives nothing else.
const DIGITAL_SILENCE: f32 = 1e-6;

#[derive(Debug, thiserror::Error)]
pub enum VadError {
    #[error(
        "the voice detector (silero-vad) is not installed: run `crossmodal models fetch silero-vad` (store: {0})"
    )]
    Missing(String),
    #[error("the voice detector: {0}")]
    Load(String),
}

/// The detector's weights from a model store, loaded once per process (and store), checked
/// against their pinned digest.
pub fn detector_model(store: &ModelStore) -> Result<Arc<SileroModel>, VadError> {
    static LOADED: Mutex<Vec<(PathBuf, Arc<SileroModel>)>> = Mutex::new(Vec::new());
    let mut loaded = LOADED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, model)) = loaded.iter().find(|(root, _)| root == store.root()) {
        return Ok(Arc::clone(model));
    }
    let spec = catalogue::find(catalogue::SILERO_VAD)
        .ok_or_else(|| VadError::Load("not in the catalogue".into()))?;
    if !store.is_installed(spec) {
        return Err(VadError::Missing(store.root().display().to_string()));
    }
    let path = store.open_checked(spec).map_err(|e| VadError::Load(e.to_string()))?;
    let model = Arc::new(load_model(&path)?);
    loaded.push((store.root().to_owned(), Arc::clone(&model)));
    Ok(model)
}

/// Reads the detector's weights from a file.
pub fn load_model(path: &Path) -> Result<SileroModel, VadError> {
    SileroModel::load(path).map_err(|e| VadError::Load(e.to_string()))
}

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
    model: Arc<SileroModel>,
    state: SileroState,
    enter: f32,
    leave: f32,
    partial: Vec<f32>,
    history: std::collections::VecDeque<Vec<f32>>,
    current: Option<Vec<f32>>,
    current_start: f64,
    speech_frames: usize,
    speech_run: usize,
    silence_run: usize,
    frames_seen: u64,
    hearing: bool,
    last_probability: f32,
    /// The last `BACKGROUND_FRAMES` frame levels, oldest first.
    levels: std::collections::VecDeque<f32>,
    /// A recording, not a room (`for_recording`).
    recording: bool,
    /// Frames of real sound (not digital silence) learnt as the room so far, up to
    /// `MIN_BACKGROUND_FRAMES`.
    room_heard: usize,
    /// The background when the open utterance began, and whether the room was young then.
    opened_in: (f32, bool),
    /// The levels of the open utterance's last `QUIETEST_OF_FRAMES` frames.
    utterance_levels: std::collections::VecDeque<f32>,
}

impl Vad {
    /// A detector at the default sensitivity.
    pub fn new(model: Arc<SileroModel>) -> Self {
        Self::with_threshold(model, DEFAULT_THRESHOLD)
    }

    /// A detector that enters speech at `threshold` (0.05..0.95; lower hears quieter speech and
    /// more noise).
    pub fn with_threshold(model: Arc<SileroModel>, threshold: f32) -> Self {
        let enter = threshold.clamp(0.05, 0.95);
        Self {
            model,
            state: SileroState::default(),
            enter,
            leave: (enter - LEAVE_BELOW).max(0.02),
            partial: Vec::new(),
            history: std::collections::VecDeque::new(),
            current: None,
            current_start: 0.0,
            speech_frames: 0,
            speech_run: 0,
            silence_run: 0,
            frames_seen: 0,
            hearing: false,
            last_probability: 0.0,
            levels: std::collections::VecDeque::with_capacity(BACKGROUND_FRAMES + 1),
            recording: false,
            room_heard: 0,
            opened_in: (MIN_BACKGROUND, false),
            utterance_levels: std::collections::VecDeque::with_capacity(QUIETEST_OF_FRAMES + 1),
        }
    }

    /// For a recording rather than a room: its first second is judged by the network alone.
    /// A microphone's first frames are the room (noise that was there before listening, other
    /// voices), learnt as its background from the first frame; a file or clip often begins with
    /// the voice itself, and learning its first words as the room would hear none of them (a
    /// 1.5 s command clip gave no utterance at all).
    #[must_use]
    pub fn for_recording(mut self) -> Self {
        self.recording = true;
        self
    }

    /// A detector that already knows the room's level (`room_level` of the detector that heard
    /// it), as if it had heard the room for the last 4.8 s: a short stretch of audio taken from
    /// a live stream (an utterance and its pre-roll) is judged against the room it came from,
    /// not against its own first frames, which a word soon outweighs.
    #[must_use]
    pub fn in_room(mut self, level: f32) -> Self {
        self.levels = std::iter::repeat_n(level.max(MIN_BACKGROUND), BACKGROUND_FRAMES).collect();
        self.room_heard = MIN_BACKGROUND_FRAMES;
        self
    }

    /// The room's background level as the detector knows it now (`None` before it heard any).
    pub fn room_level(&self) -> Option<f32> {
        if self.levels.is_empty() || (self.recording && self.levels.len() < MIN_BACKGROUND_FRAMES) {
            return None;
        }
        let mut sorted: Vec<f32> = self.levels.iter().copied().collect();
        let at = ((sorted.len() - 1) as f64 * BACKGROUND_QUANTILE) as usize;
        Some(sorted.select_nth_unstable_by(at, f32::total_cmp).1.max(MIN_BACKGROUND))
    }

    /// True while an utterance is open.
    pub fn in_speech(&self) -> bool {
        self.current.is_some()
    }

    /// True while the detector hears speech in the latest audio (for the window's indicator).
    pub fn hearing(&self) -> bool {
        self.hearing
    }

    /// The latest frame's speech probability.
    pub fn probability(&self) -> f32 {
        self.last_probability
    }

    /// Seconds of silence since the last speech frame of the open utterance (0 outside one).
    pub fn trailing_silence_secs(&self) -> f64 {
        if self.current.is_none() {
            return 0.0;
        }
        self.silence_run as f64 * FRAME_SECS
    }

    /// When the open utterance began (seconds since the stream began).
    pub fn current_start(&self) -> Option<f64> {
        self.current.as_ref().map(|_| self.current_start)
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
    /// it (the caller knows the utterance is over). An utterance with too little speech in it
    /// is dropped.
    ///
    /// So is one that began before the room was heard (other voices or music from the first
    /// moment listening began, after the audio server's digital silence) and went on until the
    /// room was learnt from it (`LEARN_IN_UTTERANCE_FRAMES`), the room now twice as loud as when
    /// it began: it was the room, not someone speaking to the app. (A speaker heard first ends
    /// their phrase long before that, and the room after it is as quiet as before.)
    pub fn close(&mut self) -> Option<VadEvent> {
        let dropped = self.dropped_tail();
        let (enough, was_the_room) = (self.speech_frames >= MIN_SPEECH_FRAMES, self.was_the_room());
        let mut samples = self.current.take()?;
        samples.truncate(samples.len() - dropped);
        self.speech_run = 0;
        self.silence_run = 0;
        self.speech_frames = 0;
        let secs = samples.len() as f64 / f64::from(SAMPLE_RATE);
        if !enough {
            tracing::debug!("dropped {secs:.2} s that held too little speech");
            return None;
        }
        if was_the_room {
            tracing::debug!(
                "dropped {secs:.2} s heard before the room was: the room learnt from it is as loud"
            );
            return None;
        }
        Some(VadEvent::Utterance { samples, start: self.current_start })
    }

    /// Whether `close` would keep the open utterance now (false outside one).
    pub fn would_keep(&self) -> bool {
        self.current.is_some() && self.speech_frames >= MIN_SPEECH_FRAMES && !self.was_the_room()
    }

    /// The open utterance began before the room was heard and the room learnt since is twice as
    /// loud (`close`).
    fn was_the_room(&self) -> bool {
        let (opened_room, opened_young) = self.opened_in;
        opened_young
            && self.current.as_ref().is_some_and(|c| c.len() / FRAME > LEARN_IN_UTTERANCE_FRAMES)
            && self.room_level().is_some_and(|now| now >= opened_room * OVER_BACKGROUND)
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
        if let Some(cur) = self.current.as_mut() {
            cur.extend_from_slice(&rest);
        }
        // The end of the stream is not silence: nothing heard is dropped from the tail.
        self.silence_run = 0;
        self.close().into_iter().collect()
    }

    fn frame(&mut self, frame: Vec<f32>, events: &mut Vec<VadEvent>) {
        let chunk: &[f32; FRAME] = frame.as_slice().try_into().expect("frames are FRAME long");
        let p = self.state.probability(&self.model, chunk);
        self.last_probability = p;
        let t = self.frames_seen as f64 * FRAME_SECS;
        self.frames_seen += 1;
        // Hysteresis: once hearing speech, only a clear drop ends it.
        let voice = if self.hearing { p >= self.leave } else { p >= self.enter };
        let level = super::rms(&frame);
        // The speaker's own voice is not the room: an open utterance's voiced frames are not
        // learnt, unless it has stayed open so long that a noise that began with it must be.
        let open_frames = self.current.as_ref().map_or(0, |c| c.len() / FRAME);
        let learn = self.current.is_none() || !voice || open_frames > LEARN_IN_UTTERANCE_FRAMES;
        let learnt = if self.current.is_some() {
            self.utterance_levels.push_back(level);
            if self.utterance_levels.len() > QUIETEST_OF_FRAMES {
                self.utterance_levels.pop_front();
            }
            // Voices heard since before the room was (`was_the_room`) are learnt as they are:
            // they are the room, and must end the utterance they opened.
            let young = self.opened_in.1;
            if voice && !young { self.utterance_levels.iter().copied().fold(level, f32::min) } else { level }
        } else {
            level
        };
        let background = self.background(learnt, learn);
        self.hearing = voice && level >= background * OVER_BACKGROUND;
        let speech = self.hearing;
        tracing::trace!(
            "frame {t:.2} s: p {p:.2} level {level:.5} background {background:.5} speech {speech} open {}",
            self.current.is_some()
        );
        if let Some(cur) = self.current.as_mut() {
            cur.extend_from_slice(&frame);
            if speech {
                self.speech_frames += 1;
                self.silence_run = 0;
            } else {
                self.silence_run += 1;
            }
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
            self.current_start = (t + FRAME_SECS - samples.len() as f64 / f64::from(SAMPLE_RATE)).max(0.0);
            events.push(VadEvent::Started { at: self.current_start });
            // A recording has no room from before it began: a voice at its start is its speaker.
            self.opened_in = (background, !self.recording && self.room_heard < MIN_BACKGROUND_FRAMES);
            self.utterance_levels.clear();
            self.current = Some(samples);
            self.speech_frames = self.speech_run;
            self.silence_run = 0;
        }
    }
}

impl Vad {
    /// The background level before this frame; the frame's level is learnt when `learn`.
    fn background(&mut self, level: f32, learn: bool) -> f32 {
        let background = self.room_level().unwrap_or(MIN_BACKGROUND);
        // Digital silence stands for the room only until real sound of it was heard: an audio
        // server's first 0.8 s of it, kept, made a sixth of the room's frames, took its median
        // under the babble that filled the rest, and the babble's louder moments were then
        // twice over it and made a line.
        if learn && (level > DIGITAL_SILENCE || self.room_heard < MIN_BACKGROUND_FRAMES) {
            if level > DIGITAL_SILENCE {
                let young = self.room_heard < MIN_BACKGROUND_FRAMES;
                self.room_heard = (self.room_heard + 1).min(MIN_BACKGROUND_FRAMES);
                if young && self.room_heard == MIN_BACKGROUND_FRAMES {
                    self.levels.retain(|&l| l > DIGITAL_SILENCE);
                }
            }
            self.levels.push_back(level);
            if self.levels.len() > BACKGROUND_FRAMES {
                self.levels.pop_front();
            }
        }
        background
    }
}

/// Where the first speech in a buffer begins (pre-roll included), in seconds; `None` if the
/// buffer holds nothing the detector would call speech. `room`: the level of the room the
/// buffer was heard in, when a live detector knows it (`Vad::room_level`).
///
/// Without a room the buffer is a recording (`Vad::for_recording`): a file, a chunk of a long
/// one, a command clip. Such a buffer often begins with the voice
/// itself, and learning its first words as the room gated out every word not twice as loud as
/// them (a clip cut at its first word gave nothing; "let us go back to the start of the story"
/// gave "The Story."). A live utterance's own 320 ms pre-roll is too little room to learn for
/// the opposite reason, so the live detector's level is given: judged against it, babble that is
/// the room stays out and a quiet sentence in a fan gets through.
pub fn speech_start(model: &Arc<SileroModel>, samples: &[f32], room: Option<f32>) -> Option<f64> {
    let vad = Vad::new(Arc::clone(model));
    let mut vad = match room {
        Some(level) => vad.in_room(level),
        None => vad.for_recording(),
    };
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
