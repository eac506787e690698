//! The one live pipeline: capture → voice-activity detection → the engine, for transcription,
//! voice commands and spoken queries. `listen`, spoken search and the window's Record, Listen
//! and Speak all run it; they only show what it reports.
//!
//! It runs on a thread of its own with its own line to the engine, so capture never waits on a
//! model and each answer is reported the moment the engine gives it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::audio::capture::{Capture, Captured, InputSource};
use crate::audio::silero::SileroModel;
use crate::audio::vad::{self, Vad, VadEvent};
use crate::audio::{Recorder, SAMPLE_RATE};
use crate::commands::Decision;
use crate::engine::{AudioInput, Connection, Event, JobId, Notify, Request};
use crate::speech;

/// What each utterance is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Transcribe it; with `partials`, the words of the utterance in progress are reported too.
    Transcribe { partials: bool },
    /// Decide which command of the engine's command set it meant.
    Commands,
    /// The first utterance is a spoken query: it is handed back and listening stops.
    Query,
}

/// How to listen.
#[derive(Debug, Clone)]
pub struct Settings {
    pub source: InputSource,
    pub purpose: Purpose,
    /// The Whisper model (catalogue name).
    pub model: String,
    pub options: speech::Options,
    /// Also keep every sample heard in this WAV file.
    pub record: Option<PathBuf>,
    /// Open the source but do not listen until `Live::resume`.
    pub paused: bool,
    /// The voice detector's speech threshold (`vad::DEFAULT_THRESHOLD`; lower hears quieter
    /// speech, and more noise).
    pub voice_threshold: f32,
}

/// What the pipeline reports, in the order it happens.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    /// The source is open and sends sound (or has been open a while): a human name of it.
    Opened(String),
    /// The words of the utterance in progress so far.
    Partial(String),
    /// An utterance's transcript; times in seconds since listening began. `answered` is when
    /// the engine's answer reached the pipeline (what a display's lag is measured from). A line
    /// shown at a pause is not `settled`: if the speaker goes on within the detector's hangover,
    /// the utterance is decoded again whole and a line that `replaces` it follows (shown in its
    /// place); else `Settled` says it stands.
    Line {
        id: LineId,
        replaces: Option<LineId>,
        start: f64,
        end: f64,
        text: String,
        answered: Instant,
        settled: bool,
    },
    /// The line shown at a pause stands: its speaker did not go on.
    Settled(LineId),
    /// The decision on an utterance and how long the engine took from having its audio.
    Decided { start: f64, end: f64, decision: Decision, took: Duration },
    /// The spoken query (`Purpose::Query`): its samples, 16 kHz mono.
    Query(Vec<f32>),
    /// Something went wrong with one utterance (or the engine said so); listening goes on.
    Problem(String),
    /// Listening is over: the source ended or was stopped (`problem: None`), or failed.
    Ended { heard: u64, answered: u64, problem: Option<String> },
}

/// A line's number in one listening session, counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LineId(pub u64);

/// How often a partial transcript of the utterance in progress is asked for.
const PARTIAL_EVERY: Duration = Duration::from_secs(1);
/// The first partial comes once this much of the utterance is there. Half a second gave short
/// phrases a partial, but the window's live test then once saw no partial during a 3 s sentence
/// (a half-second pass says nothing and holds the next one back a second): kept at 1 s.
const FIRST_PARTIAL_SECS: f64 = 1.0;
/// Silence after the last word past which no partial is asked for (the utterance's end is near:
/// the detector closes it after 600 ms).
const PARTIAL_SILENCE_SECS: f64 = 0.15;
/// Silence after the last word at which the utterance is sent to the engine as if it had ended
/// (its samples are then those it will have when it closes, the rest of the kept tail as
/// zeros): if no word follows, that answer is the final one, ready when the detector closes the
/// utterance or sooner. A command is asked after 90 ms (three detector frames): its answer is
/// what the person waits for. A line waits 150 ms: asking ahead stops the partial transcript,
/// and pauses between words of running speech often reach 90 ms.
const AHEAD_SILENCE_SECS: f64 = vad::KEPT_TAIL_SECS;
const AHEAD_SILENCE_COMMAND_SECS: f64 = 0.09;
/// Silence after the last word past which an answer in hand is reported without waiting for the
/// rest of the detector's hangover (704 ms). A line is shown this early whatever it says, and
/// revised if the speaker goes on; a command is decided (and the utterance closed) this early
/// only when `commits_early`, as a decision is never taken back.
pub const COMMIT_SILENCE_SECS: f64 = 0.3;
/// How closely the transcript must spell the accepted command's phrase for it to be committed
/// before the hangover ends: the words so far must be the whole command, not its beginning.
const EARLY_FORM: f32 = 0.8;

/// Whether a decision made at a pause is final: the command was accepted, the transcript
/// already reads as its phrase ("go somewhere" before the pause in "go somewhere … and do
/// something" does not; `tests/commands.rs` checks the public clips' pauses), and no other
/// command goes on from it (after "five", "five of clubs" may still come: in a fan's noise the
/// detector hears the pause in "five, five" as 0.3 s of silence).
pub fn commits_early(decision: &Decision) -> bool {
    decision.command.is_some()
        && !decision.begins_another
        && decision.scores.first().is_some_and(|s| s.form >= EARLY_FORM)
}
/// Audio from before `Live::resume` that is listened to (the first word's start).
const PAUSE_PRE_ROLL_SECS: f64 = 0.3;
/// Audio kept while paused, so that listening resumed late (a busy window handles the key
/// press a while after it happened) still begins at the press, less the pre-roll.
const PAUSED_KEPT_SECS: f64 = 2.0;
/// A source that has sent nothing for this long after it was opened is said to be open anyway
/// (a silent device is still the one listened to).
const SILENT_OPEN: Duration = Duration::from_secs(5);
/// How long capture waits for audio before it looks at the engine's answers again.
const CAPTURE_WAIT: Duration = Duration::from_millis(20);

/// A running pipeline. Dropping it stops listening without waiting for answers still out.
pub struct Live {
    stop: Switch,
    paused: Switch,
    abandon: Arc<AtomicBool>,
    level: Arc<AtomicU32>,
    speaking: Arc<AtomicBool>,
    events: Receiver<LiveEvent>,
    thread: Option<JoinHandle<()>>,
}

/// What the pipeline's thread shares with its handle.
struct Shared {
    stop: Switch,
    paused: Switch,
    abandon: Arc<AtomicBool>,
    level: Arc<AtomicU32>,
    speaking: Arc<AtomicBool>,
}

impl Live {
    /// Starts listening. `engine` is a line of the pipeline's own (`Connection::connect`);
    /// `notify` runs after each event (the window passes a repaint).
    pub fn start(engine: Connection, settings: Settings, notify: &Notify) -> Self {
        let shared = Shared {
            stop: Switch::default(),
            paused: Switch::default(),
            abandon: Arc::default(),
            level: Arc::default(),
            speaking: Arc::default(),
        };
        shared.paused.set(settings.paused);
        let (tx, events) = mpsc::channel();
        let mut handle = Self {
            stop: shared.stop.clone(),
            paused: shared.paused.clone(),
            abandon: Arc::clone(&shared.abandon),
            level: Arc::clone(&shared.level),
            speaking: Arc::clone(&shared.speaking),
            events,
            thread: None,
        };
        let report = Reporter { tx: tx.clone(), notify: Arc::clone(notify) };
        let spawned = std::thread::Builder::new().name("crossmodal-live".into()).spawn(move || {
            let detector = match vad::detector_model(engine.store()) {
                Ok(model) => model,
                Err(e) => {
                    // A microphone that cannot open is the first thing to put right.
                    let problem = match Capture::start(&settings.source) {
                        Err(device) => device.to_string(),
                        Ok(_) => e.to_string(),
                    };
                    report.send(LiveEvent::Ended { heard: 0, answered: 0, problem: Some(problem) });
                    return;
                }
            };
            let mut pipeline = Pipeline::new(engine, settings, report, detector);
            let problem = pipeline.run(&shared).err();
            pipeline.report.send(LiveEvent::Ended {
                heard: pipeline.heard,
                answered: pipeline.answered,
                problem,
            });
        });
        match spawned {
            Ok(thread) => {
                handle.thread = Some(thread);
                handle
            }
            Err(e) => {
                let _ = tx.send(LiveEvent::Ended {
                    heard: 0,
                    answered: 0,
                    problem: Some(format!("the audio thread could not start: {e}")),
                });
                notify();
                handle
            }
        }
    }

    /// Stops listening: the utterance in progress is closed and answered, then `Ended` comes.
    pub fn stop(&self) {
        self.stop.set(true);
    }

    /// Pauses as from `at` (when the key came up): the utterance in progress, what was heard
    /// until then, is closed and answered; the microphone stays open but what it hears is not
    /// listened to (push-to-talk between presses).
    pub fn pause_at(&self, at: Instant) {
        self.paused.set_at(true, at);
    }

    /// Listens again after a pause as from `at` (when the key went down), less
    /// `PAUSE_PRE_ROLL_SECS`: a microphone that is already open loses no word spoken with the
    /// key press, however late this is called (up to `PAUSED_KEPT_SECS`).
    pub fn resume_at(&self, at: Instant) {
        self.paused.set_at(false, at);
    }

    /// Something that stops this pipeline from elsewhere (a Ctrl+C handler).
    pub fn stopper(&self) -> Stopper {
        Stopper(self.stop.clone())
    }

    /// The input level, 0..1.
    pub fn level(&self) -> f32 {
        f32::from_bits(self.level.load(Ordering::Relaxed))
    }

    /// The voice detector hears speech now.
    pub fn speaking(&self) -> bool {
        self.speaking.load(Ordering::Relaxed)
    }

    /// Events that have arrived, without waiting.
    pub fn poll(&self) -> Vec<LiveEvent> {
        self.events.try_iter().collect()
    }

    /// Waits up to `wait` for the next event; `Ok(None)` when none came in time, `Err` once
    /// the pipeline is gone and everything it said was read.
    pub fn recv_timeout(&self, wait: Duration) -> Result<Option<LiveEvent>, Gone> {
        match self.events.recv_timeout(wait) {
            Ok(e) => Ok(Some(e)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Gone),
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.abandon.store(true, Ordering::Relaxed);
        self.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The pipeline's thread is gone.
#[derive(Debug, thiserror::Error)]
#[error("the live pipeline stopped")]
pub struct Gone;

/// Stops a pipeline as `Live::stop` does; can be sent to another thread.
#[derive(Clone)]
pub struct Stopper(Switch);

impl Stopper {
    pub fn stop(&self) {
        self.0.set(true);
    }
}

/// A switch thrown from another thread (a pause, a stop), and when it was thrown: the sound
/// heard until that moment is listened to even when it arrives later.
#[derive(Debug, Clone, Default)]
struct Switch(Arc<std::sync::Mutex<Thrown>>);

#[derive(Debug, Clone, Copy, Default)]
struct Thrown {
    /// Since when it is on.
    on: Option<Instant>,
    /// When it was last turned off.
    off: Option<Instant>,
}

impl Switch {
    /// Turns it on (keeping when it first was) or off.
    fn set(&self, on: bool) {
        self.set_at(on, Instant::now());
    }

    /// Turns it on or off as from `at`.
    fn set_at(&self, on: bool, at: Instant) {
        let mut thrown = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if on {
            thrown.on = Some(thrown.on.unwrap_or(at));
        } else if thrown.on.take().is_some() {
            thrown.off = Some(at);
        }
    }

    /// Since when it is on; `None` while off.
    fn since(&self) -> Option<Instant> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).on
    }

    /// When it was last turned off.
    fn off_since(&self) -> Option<Instant> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).off
    }
}

/// Listening is closing (a pause or a stop was asked): the sound heard before that moment is
/// still listened to when it arrives later (an audio server's buffering, a busy machine), up to
/// this stream position, or until `latest` if it never comes.
#[derive(Debug, Clone, Copy)]
struct Closing {
    until: usize,
    latest: Instant,
}

impl Closing {
    /// Closing at `at` (`None` for a file: nothing of it is on its way).
    fn at(capture: &Capture, at: Instant) -> Option<Self> {
        capture.position_at(at).map(|(until, latest)| Self { until, latest })
    }
}

struct Reporter {
    tx: Sender<LiveEvent>,
    notify: Notify,
}

impl Reporter {
    fn send(&self, event: LiveEvent) {
        let _ = self.tx.send(event);
        (self.notify)();
    }
}

/// A partial transcript the engine is working on; dropped once its utterance has ended.
struct Partial {
    id: JobId,
    cancel: Arc<AtomicBool>,
}

/// An utterance the engine is working on.
#[derive(Debug, Clone, Copy)]
struct Out {
    start: f64,
    end: f64,
    asked: Instant,
    /// The line shown for it at a pause, which its answer replaces.
    replaces: Option<LineId>,
}

/// The line shown for the open utterance at a pause, before its hangover ended.
#[derive(Debug, Clone, Copy)]
struct Shown {
    id: LineId,
    /// The length of the utterance it was decoded from.
    len: usize,
    /// When its utterance began (seconds since listening began).
    start: f64,
}

/// The open utterance, sent ahead as if it had ended (its speaker paused).
struct Ahead {
    id: JobId,
    /// Its length: the utterance is the same one if it closes with as many samples.
    len: usize,
    cancel: Arc<AtomicBool>,
    asked: Instant,
    /// The engine's answer, once it came.
    answer: Option<Event>,
}

impl Ahead {
    fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

struct Pipeline {
    engine: Connection,
    settings: Settings,
    report: Reporter,
    vad: Vad,
    pending: BTreeMap<JobId, Out>,
    ahead: Option<Ahead>,
    shown: Option<Shown>,
    partial: Option<Partial>,
    last_partial: Instant,
    lines: u64,
    heard: u64,
    answered: u64,
}

impl Pipeline {
    fn new(engine: Connection, settings: Settings, report: Reporter, detector: Arc<SileroModel>) -> Self {
        let vad = Vad::with_threshold(detector, settings.voice_threshold);
        let vad = if matches!(settings.source, InputSource::File { .. }) { vad.for_recording() } else { vad };
        Self {
            engine,
            settings,
            report,
            vad,
            pending: BTreeMap::new(),
            ahead: None,
            shown: None,
            partial: None,
            last_partial: Instant::now().checked_sub(PARTIAL_EVERY).unwrap_or_else(Instant::now),
            lines: 0,
            heard: 0,
            answered: 0,
        }
    }

    /// The options for a pass over audio heard now: the settings', with the room as the
    /// detector knows it, so the pass's silence gate judges the utterance against its room.
    fn options(&self) -> speech::Options {
        speech::Options { room_level: self.vad.room_level(), ..self.settings.options.clone() }
    }

    fn next_line(&mut self) -> LineId {
        self.lines += 1;
        LineId(self.lines)
    }

    fn run(&mut self, shared: &Shared) -> Result<(), String> {
        let mut capture = Capture::start(&self.settings.source).map_err(|e| e.to_string())?;
        let mut recorder =
            self.settings.record.as_deref().map(Recorder::create).transpose().map_err(|e| e.to_string())?;
        let result = self.listen(&mut capture, recorder.as_mut(), shared);
        // The recording gets its header whatever stopped listening: every sample heard is kept.
        let finished = recorder.map(Recorder::finish).transpose().map_err(|e| e.to_string());
        result.and(finished.map(|_| ()))
    }

    fn listen(
        &mut self,
        capture: &mut Capture,
        mut recorder: Option<&mut Recorder>,
        shared: &Shared,
    ) -> Result<(), String> {
        let mut ended = false;
        // While paused: the latest audio, for the pre-roll when listening resumes.
        let mut recent: std::collections::VecDeque<f32> = std::collections::VecDeque::new();
        let pre_roll = (PAUSE_PRE_ROLL_SECS * f64::from(SAMPLE_RATE)) as usize;
        let kept_while_paused = (PAUSED_KEPT_SECS * f64::from(SAMPLE_RATE)) as usize;
        let mut was_paused = shared.paused.since().is_some();
        let mut stopping = false;
        let mut closing: Option<Closing> = None;
        let (began, mut opened) = (Instant::now(), false);
        loop {
            // Open is said once the source sends sound: a word spoken from then on is heard.
            if !opened && (capture.sounding() || began.elapsed() >= SILENT_OPEN) {
                opened = true;
                self.report.send(LiveEvent::Opened(capture.name.clone()));
            }
            if !ended {
                let paused = shared.paused.since();
                let mut heard = Vec::new();
                if let Some(at) = paused.filter(|_| !was_paused) {
                    closing = Closing::at(capture, at);
                    if closing.is_none() {
                        heard = self.vad.finish();
                    }
                }
                if paused.is_none() && was_paused {
                    // Listening again before what was said up to the pause had all arrived: the
                    // utterance goes on.
                    closing = None;
                    // From the press less the pre-roll; what came later than the press is here
                    // whole however late the resume was noticed.
                    let kept_from = capture.position().saturating_sub(recent.len());
                    let from = shared
                        .paused
                        .off_since()
                        .and_then(|at| capture.position_at(at))
                        .map_or(recent.len().saturating_sub(pre_roll), |(at, _)| {
                            at.saturating_sub(pre_roll).saturating_sub(kept_from).min(recent.len())
                        });
                    let before: Vec<f32> = recent.drain(..).skip(from).collect();
                    heard = self.vad.push(&before);
                }
                was_paused = paused.is_some();
                if let Some(at) = shared.stop.since().filter(|_| !stopping) {
                    stopping = true;
                    if paused.is_none() {
                        closing = Closing::at(capture, at);
                    }
                }
                if shared.abandon.load(Ordering::Relaxed) {
                    closing = None;
                }
                if stopping && closing.is_none() {
                    ended = true;
                    heard.extend(self.vad.finish());
                } else {
                    match capture.next(CAPTURE_WAIT).map_err(|e| e.to_string())? {
                        Captured::Audio(mut samples) => {
                            // What was heard before a pause or stop is listened to; after it,
                            // only kept for the pre-roll.
                            let listened = match closing {
                                Some(c) => {
                                    let before = capture.position().saturating_sub(samples.len());
                                    c.until.saturating_sub(before).min(samples.len())
                                }
                                None if paused.is_some() => 0,
                                None => samples.len(),
                            };
                            let after = samples.split_off(listened);
                            if let Some(r) = recorder.as_deref_mut() {
                                r.write(&samples).map_err(|e| e.to_string())?;
                            }
                            heard.extend(self.vad.push(&samples));
                            if paused.is_some() {
                                recent.extend(after);
                                let extra = recent.len().saturating_sub(kept_while_paused);
                                recent.drain(..extra);
                            }
                        }
                        Captured::Idle => {}
                        Captured::Ended => {
                            ended = true;
                            closing = None;
                            heard.extend(self.vad.finish());
                        }
                    }
                    if let Some(c) = closing
                        && (capture.position() >= c.until || Instant::now() >= c.latest)
                    {
                        tracing::debug!(
                            "{} at {:.2} s: what was heard before it is in",
                            if stopping { "stopped" } else { "paused" },
                            c.until as f64 / f64::from(SAMPLE_RATE)
                        );
                        closing = None;
                        heard.extend(self.vad.finish());
                        ended = stopping;
                    }
                }
                shared.level.store(capture.level().to_bits(), Ordering::Relaxed);
                shared.speaking.store(self.vad.hearing(), Ordering::Relaxed);
                if self.utterances(heard) {
                    return Ok(());
                }
                self.retract_dropped();
                self.send_ahead();
                self.ask_partial(ended);
            }
            let waiting = !self.pending.is_empty() || self.partial.is_some() || self.ahead.is_some();
            if ended && (!waiting || shared.abandon.load(Ordering::Relaxed)) {
                return Ok(());
            }
            // Once nothing more is heard, wait on the answers; while listening, only look.
            let answers: Vec<Event> = if ended {
                self.engine
                    .recv_timeout(Duration::from_millis(100))
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .collect()
            } else {
                self.engine.poll()
            };
            for event in answers {
                self.answered(event);
            }
            if self.commit_early() {
                return Ok(());
            }
        }
    }

    /// Sends each finished utterance to the engine; true when listening is done (a query).
    fn utterances(&mut self, heard: Vec<VadEvent>) -> bool {
        for event in heard {
            let VadEvent::Utterance { samples, start } = event else { continue };
            self.heard += 1;
            if self.settings.purpose == Purpose::Query {
                self.report.send(LiveEvent::Query(samples));
                return true;
            }
            let end = start + samples.len() as f64 / f64::from(SAMPLE_RATE);
            // A partial still running would hold the final up behind it: it is stopped.
            if let Some(p) = &self.partial {
                p.cancel.store(true, Ordering::Relaxed);
            }
            let shown = self.shown.take();
            if let Some(shown) = shown.filter(|s| s.len == samples.len()) {
                // The line shown at the pause is this utterance's: it stands, and answers it.
                self.ahead = None;
                self.answered += 1;
                self.report.send(LiveEvent::Settled(shown.id));
                continue;
            }
            let replaces = shown.map(|s| s.id);
            if let Some(ahead) = self.ahead.take() {
                if ahead.len == samples.len() {
                    // Nothing was said after the pause: the answer sent ahead is this one's.
                    let out = Out { start, end, asked: ahead.asked, replaces };
                    tracing::debug!("utterance {start:.2}–{end:.2} s heard; its answer was asked ahead");
                    match ahead.answer {
                        Some(answer) => self.report(out, answer),
                        None => {
                            self.pending.insert(ahead.id, out);
                        }
                    }
                    continue;
                }
                ahead.cancel();
            }
            let id = JobId::next();
            let (model, options) = (self.settings.model.clone(), self.options());
            let audio = AudioInput::Samples(samples);
            self.engine.send(match self.settings.purpose {
                Purpose::Commands => Request::MatchCommand { id, model, audio, options, cancel: None },
                Purpose::Transcribe { .. } | Purpose::Query => {
                    Request::Transcribe { id, model, audio, options, cancel: None }
                }
            });
            tracing::debug!("utterance {start:.2}–{end:.2} s heard; asked the engine");
            self.pending.insert(id, Out { start, end, asked: Instant::now(), replaces });
        }
        false
    }

    /// A line shown at a pause whose utterance the detector then dropped (it turned out to be
    /// the room's) is taken back: a revision with no words.
    fn retract_dropped(&mut self) {
        if self.vad.in_speech() {
            return;
        }
        let Some(shown) = self.shown.take() else { return };
        let (id, start) = (self.next_line(), shown.start);
        tracing::debug!("line {} taken back: its utterance was dropped", shown.id.0);
        self.report.send(LiveEvent::Line {
            id,
            replaces: Some(shown.id),
            start,
            end: start,
            text: String::new(),
            answered: Instant::now(),
            settled: true,
        });
    }

    /// Once the speaker pauses, sends the utterance ahead as if it had ended; drops what was
    /// sent ahead when they go on speaking.
    fn send_ahead(&mut self) {
        let closing = self.vad.closing_len();
        if let Some(ahead) = &self.ahead
            && closing != Some(ahead.len)
        {
            ahead.cancel();
            self.ahead = None;
        }
        let Some(len) = closing else { return };
        let after = match self.settings.purpose {
            Purpose::Commands => AHEAD_SILENCE_COMMAND_SECS,
            Purpose::Transcribe { .. } => AHEAD_SILENCE_SECS,
            Purpose::Query => return,
        };
        // An utterance the detector would drop if it closed now gets no answer ahead of time:
        // nothing is shown or decided for it.
        if self.ahead.is_some() || self.vad.trailing_silence_secs() < after || !self.vad.would_keep() {
            return;
        }
        let Some(samples) = self.vad.closing() else { return };
        // The partial would only delay this, the better answer.
        if let Some(p) = self.partial.take() {
            p.cancel.store(true, Ordering::Relaxed);
        }
        let id = JobId::next();
        let cancel = Arc::new(AtomicBool::new(false));
        let (model, options) = (self.settings.model.clone(), self.options());
        let audio = AudioInput::Samples(samples);
        let c = Some(Arc::clone(&cancel));
        self.engine.send(match self.settings.purpose {
            Purpose::Commands => Request::MatchCommand { id, model, audio, options, cancel: c },
            Purpose::Transcribe { .. } | Purpose::Query => {
                Request::Transcribe { id, model, audio, options, cancel: c }
            }
        });
        tracing::debug!("utterance of {:.2} s paused: asked ahead", len as f64 / f64::from(SAMPLE_RATE));
        self.ahead = Some(Ahead { id, len, cancel, asked: Instant::now(), answer: None });
    }

    /// Reports the answer in hand once the pause is long enough, without the rest of the
    /// hangover: a command's decision closes the utterance (when `commits_early`); a line is
    /// shown and the utterance stays open, to be revised if its speaker goes on. True when
    /// listening is done.
    fn commit_early(&mut self) -> bool {
        let Some(Ahead { answer: Some(answer), len, .. }) = &self.ahead else { return false };
        if self.vad.trailing_silence_secs() < COMMIT_SILENCE_SECS {
            return false;
        }
        match answer {
            Event::Matched { result: Ok((decision, _)), .. } if commits_early(decision) => {
                tracing::debug!("committed after {:.2} s of silence", self.vad.trailing_silence_secs());
                let closed: Vec<VadEvent> = self.vad.close().into_iter().collect();
                self.utterances(closed)
            }
            Event::Transcribed { result: Ok(t), .. } if self.shown.is_none_or(|s| s.len != *len) => {
                let len = *len;
                let text = t.text.clone();
                let asked = self.ahead.as_ref().map_or_else(Instant::now, |a| a.asked);
                let Some(start) = self.vad.current_start() else { return false };
                let end = start + len as f64 / f64::from(SAMPLE_RATE);
                let replaces = self.shown.map(|s| s.id);
                // An answer that says nothing shows nothing, and spends no line number (it is
                // looked at again on each turn until the utterance goes on or closes).
                if !text.is_empty() || replaces.is_some() {
                    let id = self.next_line();
                    tracing::debug!(
                        "line shown after {:.2} s of silence, {} ms after it was asked",
                        self.vad.trailing_silence_secs(),
                        asked.elapsed().as_millis()
                    );
                    self.shown = Some(Shown { id, len, start });
                    self.report.send(LiveEvent::Line {
                        id,
                        replaces,
                        start,
                        end,
                        text,
                        answered: Instant::now(),
                        settled: false,
                    });
                }
                false
            }
            _ => false,
        }
    }

    /// A partial transcript of the utterance in progress, only while nothing final waits, so
    /// finals are never held up behind one.
    fn ask_partial(&mut self, ended: bool) {
        if !matches!(self.settings.purpose, Purpose::Transcribe { partials: true })
            || ended
            || self.partial.is_some()
            || self.ahead.is_some()
            || !self.pending.is_empty()
            || self.last_partial.elapsed() < PARTIAL_EVERY
        {
            return;
        }
        // Past the last word, the utterance is about to end: its final is coming, not a partial.
        if self.vad.trailing_silence_secs() > PARTIAL_SILENCE_SECS {
            return;
        }
        // An utterance's first half second says too little to be worth a pass.
        let Some(current) =
            self.vad.current().filter(|c| c.len() as f64 >= FIRST_PARTIAL_SECS * f64::from(SAMPLE_RATE))
        else {
            return;
        };
        let id = JobId::next();
        tracing::debug!("partial transcript of {:.2} s asked", current.len() as f64 / f64::from(SAMPLE_RATE));
        let cancel = Arc::new(AtomicBool::new(false));
        self.partial = Some(Partial { id, cancel: Arc::clone(&cancel) });
        self.last_partial = Instant::now();
        self.engine.send(Request::Transcribe {
            id,
            model: self.settings.model.clone(),
            audio: AudioInput::Samples(current.to_vec()),
            options: self.options(),
            cancel: Some(cancel),
        });
    }

    fn answered(&mut self, event: Event) {
        match event {
            Event::Transcribed { id, result } if self.partial.as_ref().is_some_and(|p| p.id == id) => {
                self.partial = None;
                // A partial that lost the race with its utterance's end says nothing new.
                if let Some(t) = result.ok().filter(|t| !t.text.is_empty() && self.vad.in_speech()) {
                    self.report.send(LiveEvent::Partial(t.text));
                }
            }
            Event::Transcribed { id, .. } | Event::Matched { id, .. }
                if self.ahead.as_ref().is_some_and(|a| a.id == id) =>
            {
                if let Some(ahead) = self.ahead.as_mut() {
                    ahead.answer = Some(event);
                }
            }
            Event::Transcribed { id, .. } | Event::Matched { id, .. } => {
                if let Some(out) = self.pending.remove(&id) {
                    self.report(out, event);
                }
            }
            Event::Error(e) => self.report.send(LiveEvent::Problem(e)),
            _ => {}
        }
    }

    /// Reports the engine's answer for an utterance.
    fn report(&mut self, Out { start, end, asked, replaces }: Out, answer: Event) {
        self.answered += 1;
        tracing::debug!("utterance {start:.2}–{end:.2} s answered after {} ms", asked.elapsed().as_millis());
        match answer {
            Event::Transcribed { result: Ok(t), .. } if t.text.is_empty() && replaces.is_none() => {}
            Event::Transcribed { result: Ok(t), .. } => {
                let id = self.next_line();
                self.report.send(LiveEvent::Line {
                    id,
                    replaces,
                    start,
                    end,
                    text: t.text,
                    answered: Instant::now(),
                    settled: true,
                });
            }
            Event::Matched { result: Ok((decision, took)), .. } => {
                self.report.send(LiveEvent::Decided { start, end, decision, took });
            }
            Event::Transcribed { result: Err(e), .. } | Event::Matched { result: Err(e), .. } => {
                self.report.send(LiveEvent::Problem(e));
            }
            _ => {}
        }
    }
}
