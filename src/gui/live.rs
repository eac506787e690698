//! Live audio for the window: a thread reads the microphone (or a file played as one), cuts
//! utterances with the VAD and sends them to the engine; the window reads the level and the
//! utterances' times from here and the engine's answers from its events.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::audio::capture::{Capture, Captured, InputSource};
use crate::audio::vad::{Vad, VadEvent};
use crate::engine::{AudioInput, Request};
use crate::speech;

/// What the engine is asked for each utterance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Transcribe it, with partial transcripts of the utterance in progress.
    Transcribe,
    /// Decide which command it was.
    Command,
    /// Only the first utterance, as a spoken search query; then stop.
    Query,
}

/// What the live thread tells the window.
#[derive(Debug)]
pub enum LiveEvent {
    /// Opened: a human name of the source.
    Opened(String),
    /// An utterance went to the engine under tag `"{prefix}:{id}"`.
    Utterance { id: u64, start: f64, end: f64 },
    /// The spoken query (`Purpose::Query`).
    Query(Vec<f32>),
    /// The source ended (a file) or could not be read; the thread has stopped.
    Ended(Option<String>),
}

/// A running live source.
pub struct Live {
    stop: Arc<AtomicBool>,
    level: Arc<AtomicU32>,
    speaking: Arc<AtomicBool>,
    /// Set by the window when the partial transcript it asked for came back.
    pub partial_done: Arc<AtomicBool>,
    events: Receiver<LiveEvent>,
    thread: Option<JoinHandle<()>>,
}

/// Seconds between partial transcripts of the utterance in progress.
const PARTIAL_EVERY: Duration = Duration::from_secs(1);

impl Live {
    /// Starts reading `source`. Requests go to the engine tagged with `prefix`; partial
    /// transcripts are tagged `"{prefix}-partial"`.
    pub fn start(
        source: InputSource,
        purpose: Purpose,
        prefix: &str,
        model: String,
        options: speech::Options,
        requests: Sender<Request>,
        repaint: &egui::Context,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let level = Arc::new(AtomicU32::new(0));
        let speaking = Arc::new(AtomicBool::new(false));
        let partial_done = Arc::new(AtomicBool::new(true));
        let (tx, events) = mpsc::channel();
        let shared = Shared {
            stop: Arc::clone(&stop),
            level: Arc::clone(&level),
            speaking: Arc::clone(&speaking),
            partial_done: Arc::clone(&partial_done),
        };
        let job = Job { purpose, prefix: prefix.to_owned(), model, options, requests };
        let thread = std::thread::Builder::new()
            .name("crossmodal-live".into())
            .spawn({
                let tx = tx.clone();
                let repaint = repaint.clone();
                move || {
                    let ended = run(&source, &job, &shared, &tx, &repaint);
                    let _ = tx.send(LiveEvent::Ended(ended.err()));
                    repaint.request_repaint();
                }
            })
            .map_err(|e| {
                let _ = tx.send(LiveEvent::Ended(Some(format!("the audio thread could not start: {e}"))));
            })
            .ok();
        Self { stop, level, speaking, partial_done, events, thread }
    }

    /// The input level, 0..1.
    pub fn level(&self) -> f32 {
        f32::from_bits(self.level.load(Ordering::Relaxed))
    }

    pub fn speaking(&self) -> bool {
        self.speaking.load(Ordering::Relaxed)
    }

    pub fn poll(&self) -> Vec<LiveEvent> {
        self.events.try_iter().collect()
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Shared {
    stop: Arc<AtomicBool>,
    level: Arc<AtomicU32>,
    speaking: Arc<AtomicBool>,
    partial_done: Arc<AtomicBool>,
}

struct Job {
    purpose: Purpose,
    prefix: String,
    model: String,
    options: speech::Options,
    requests: Sender<Request>,
}

fn run(
    source: &InputSource,
    job: &Job,
    shared: &Shared,
    tx: &Sender<LiveEvent>,
    repaint: &egui::Context,
) -> Result<(), String> {
    let mut capture = Capture::start(source).map_err(|e| e.to_string())?;
    let _ = tx.send(LiveEvent::Opened(capture.name.clone()));
    repaint.request_repaint();
    let mut vad = Vad::new();
    let mut next_id = 0u64;
    let mut last_partial = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        let events = match capture.next(Duration::from_millis(50)).map_err(|e| e.to_string())? {
            Captured::Audio(samples) => vad.push(&samples),
            Captured::Idle => Vec::new(),
            Captured::Ended => {
                let events = vad.finish();
                send_utterances(events, job, &mut next_id, tx);
                return Ok(());
            }
        };
        shared.level.store(capture.level().to_bits(), Ordering::Relaxed);
        shared.speaking.store(vad.in_speech(), Ordering::Relaxed);
        if send_utterances(events, job, &mut next_id, tx) {
            return Ok(());
        }
        if job.purpose == Purpose::Transcribe
            && last_partial.elapsed() >= PARTIAL_EVERY
            && shared.partial_done.load(Ordering::Acquire)
            && let Some(current) = vad.current()
        {
            shared.partial_done.store(false, Ordering::Release);
            last_partial = Instant::now();
            let _ = job.requests.send(Request::Transcribe {
                model: job.model.clone(),
                audio: AudioInput::Samples(current.to_vec()),
                options: job.options.clone(),
                tag: format!("{}-partial", job.prefix),
            });
        }
        repaint.request_repaint_after(Duration::from_millis(50));
    }
    Ok(())
}

/// Sends finished utterances on; true when the job is done (a query was heard).
fn send_utterances(events: Vec<VadEvent>, job: &Job, next_id: &mut u64, tx: &Sender<LiveEvent>) -> bool {
    for event in events {
        let VadEvent::Utterance { samples, start } = event else { continue };
        if job.purpose == Purpose::Query {
            let _ = tx.send(LiveEvent::Query(samples));
            return true;
        }
        let end = start + samples.len() as f64 / f64::from(crate::audio::SAMPLE_RATE);
        let (id, model, options) = (*next_id, job.model.clone(), job.options.clone());
        *next_id += 1;
        let _ = tx.send(LiveEvent::Utterance { id, start, end });
        let (audio, tag) = (AudioInput::Samples(samples), format!("{}:{id}", job.prefix));
        let _ = job.requests.send(match job.purpose {
            Purpose::Command => Request::MatchCommand { model, audio, options, tag },
            Purpose::Transcribe | Purpose::Query => Request::Transcribe { model, audio, options, tag },
        });
    }
    false
}
