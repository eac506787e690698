//! The inference thread. It owns every model; the window and the CLI send it `Request`s and read
//! `Event`s back over channels, so nothing that waits on a model runs on the UI thread.
//!
//! Each `Connection` is a line to the engine with its own answers: a job's answers go back on
//! the line that asked, tagged with the job's `JobId`; news for everyone (the device, model
//! status, downloads) goes to the engine's own line, the one the window reads.

pub mod device;
mod images;
mod models;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

pub use device::DeviceInfo;
pub use images::{
    Ask, CaptionRow, Found, FoundImage, FoundItem, FoundMoment, ImageQuery, LibrarySize, SpaceItem,
    SpacePoint, SpokenQuery,
};
pub use models::device_name;

use crate::commands::{CommandSet, Decision, Matcher, matcher};
use crate::gallery::IndexReport;
use crate::model_store::{self, ModelSpec, ModelStore};
use crate::space::images::EncoderChoice;
use crate::speech::{self, Transcript};

/// What the engine knows of one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelStatus {
    NotInstalled,
    /// Files are present; not loaded yet.
    Installed,
    Loading,
    /// Being downloaded.
    Fetching,
    /// Loaded, running on this device (as the backend reports it).
    Ready {
        device: String,
    },
    Failed(String),
}

impl std::fmt::Display for ModelStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelStatus::NotInstalled => f.write_str("not installed"),
            ModelStatus::Installed => f.write_str("installed"),
            ModelStatus::Loading => f.write_str("loading"),
            ModelStatus::Fetching => f.write_str("downloading"),
            ModelStatus::Ready { device } => write!(f, "ready on {device}"),
            ModelStatus::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// The engine's start-up is over for these statuses: every model has reported, nothing is
/// loading, and no model of the default set (which `Request::LoadDefaults` loads) still waits.
pub fn start_up_settled(models: &BTreeMap<&'static str, ModelStatus>) -> bool {
    model_store::CATALOGUE.iter().all(|spec| match models.get(spec.name) {
        None | Some(ModelStatus::Loading | ModelStatus::Fetching) => false,
        Some(ModelStatus::Installed) => !spec.default,
        Some(_) => true,
    })
}

/// Names one job; its answers carry it. Unique within the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(u64);

impl JobId {
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

#[derive(Debug)]
pub enum Request {
    /// Load one model by catalogue name.
    Load(String),
    /// Load every installed model of the default set.
    LoadDefaults,
    /// Transcribe with a Whisper model; answered by `Event::Progress`es, then `Event::Transcribed`.
    /// Setting `cancel` stops it (without one, `Engine::cancel` does).
    Transcribe {
        id: JobId,
        model: String,
        audio: AudioInput,
        options: speech::Options,
        cancel: Option<Arc<AtomicBool>>,
    },
    /// Use this command set, with these thresholds, from now on (loads the text encoder if
    /// needed); answered by `Event::CommandsReady` or an `Event::Error`.
    SetCommands(CommandSet, matcher::Settings),
    /// Decide which command an utterance meant; answered by `Event::Matched`. Setting `cancel`
    /// stops it (answered with an error).
    MatchCommand {
        id: JobId,
        model: String,
        audio: AudioInput,
        options: speech::Options,
        cancel: Option<Arc<AtomicBool>>,
    },
    /// Install a model from the hub or the mirror (on a thread of its own); answered by
    /// `Event::Fetching` lines and the model's new status.
    Fetch(String),
    /// Bring a library up to date with these files and folders, on the indexing thread (so
    /// live transcription goes on meanwhile): images, and with `speech` (a Whisper model's
    /// name) recordings too, transcribed into moments. Answered by `Event::Indexing`, then
    /// `Event::Indexed`; `Engine::cancel_indexing` stops it. `reindex` empties the images first.
    Index {
        gallery: PathBuf,
        paths: Vec<PathBuf>,
        encoder: EncoderChoice,
        reindex: bool,
        speech: Option<String>,
    },
    /// Rank a library's images and moments against a query; answered by `Event::Found`.
    Search {
        id: JobId,
        gallery: PathBuf,
        ask: Ask,
        encoder: EncoderChoice,
    },
    /// How much a library holds; answered by `Event::Library` (nothing when there is no
    /// library there yet).
    LibrarySize {
        gallery: PathBuf,
    },
    /// Groups of near-duplicate images in a library, at this feature cosine or closer (the
    /// calibrated default when `None`); answered by `Event::Duplicates`.
    Duplicates {
        gallery: PathBuf,
        threshold: Option<f32>,
    },
    /// How well each caption fits each image; answered by `Event::Captioned`.
    Captions {
        images: Vec<PathBuf>,
        captions: Vec<String>,
        encoder: EncoderChoice,
    },
    /// A 2-D projection of texts and a gallery's images in one space; answered by
    /// `Event::Projected`.
    Project {
        items: Vec<SpaceItem>,
        gallery: Option<PathBuf>,
    },
    Shutdown,
}

#[derive(Debug, Clone)]
pub enum Event {
    Device(DeviceInfo),
    Model {
        name: &'static str,
        status: ModelStatus,
    },
    Progress {
        id: JobId,
        fraction: f32,
    },
    Transcribed {
        id: JobId,
        result: Result<Transcript, String>,
    },
    CommandsReady {
        origin: String,
        commands: usize,
    },
    /// A decision and how long it took from having the audio to deciding.
    Matched {
        id: JobId,
        result: Result<(Decision, Duration), String>,
    },
    /// A line of a model download's log.
    Fetching {
        name: &'static str,
        line: String,
    },
    /// Files done of all; while a recording is transcribed, which and how far (0..1).
    Indexing {
        done: usize,
        total: usize,
        transcribing: Option<(PathBuf, f32)>,
    },
    Indexed(Result<IndexReport, String>),
    Found {
        id: JobId,
        result: Result<Found, String>,
    },
    Captioned(Result<Vec<CaptionRow>, String>),
    Duplicates(Result<crate::gallery::duplicates::Duplicates, String>),
    Library(Result<LibrarySize, String>),
    Projected(Result<Vec<SpacePoint>, String>),
    Error(String),
}

/// What to transcribe: samples already at 16 kHz mono, or a file of any length and format.
#[derive(Debug)]
pub enum AudioInput {
    Samples(Vec<f32>),
    File(std::path::PathBuf),
}

/// The engine has stopped: no answer will come.
#[derive(Debug, thiserror::Error)]
#[error("the inference engine stopped")]
pub struct Stopped;

/// A request and the line its answers go back on.
struct Envelope {
    request: Request,
    reply: Sender<Event>,
}

/// A line to the engine: requests sent on it are answered on it.
pub struct Connection {
    requests: Sender<Envelope>,
    reply: Sender<Event>,
    events: Receiver<Event>,
    store: ModelStore,
}

impl Connection {
    fn new(requests: Sender<Envelope>, store: ModelStore) -> Self {
        let (reply, events) = mpsc::channel();
        Self { requests, reply, events, store }
    }

    /// Another line to the same engine, with answers of its own (for a thread of the caller's).
    #[must_use]
    pub fn connect(&self) -> Connection {
        Connection::new(self.requests.clone(), self.store.clone())
    }

    /// The engine's model store (the live pipeline loads the voice detector from it).
    pub fn store(&self) -> &ModelStore {
        &self.store
    }

    pub fn send(&self, request: Request) {
        // A closed channel means the engine has stopped; `recv` and `wait_for` say so.
        let _ = self.requests.send(Envelope { request, reply: self.reply.clone() });
    }

    /// Events that have arrived, without waiting.
    pub fn poll(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }

    /// Waits for the next event.
    pub fn recv(&self) -> Option<Event> {
        self.events.recv().ok()
    }

    /// Waits up to `wait` for the next event; `Ok(None)` when none came in time.
    pub fn recv_timeout(&self, wait: Duration) -> Result<Option<Event>, Stopped> {
        match self.events.recv_timeout(wait) {
            Ok(e) => Ok(Some(e)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Stopped),
        }
    }

    /// Waits until `pick` takes an event (it sees every event, and may act on those it
    /// does not take: progress, errors).
    pub fn wait_for<T>(&self, mut pick: impl FnMut(Event) -> Option<T>) -> Result<T, Stopped> {
        loop {
            if let Some(answer) = pick(self.recv().ok_or(Stopped)?) {
                return Ok(answer);
            }
        }
    }
}

/// A handle on the running inference thread, and the engine's own line.
pub struct Engine {
    cancel: Arc<AtomicBool>,
    cancel_indexing: Arc<AtomicBool>,
    line: Connection,
    thread: Option<JoinHandle<()>>,
}

impl std::ops::Deref for Engine {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.line
    }
}

impl Engine {
    /// Starts the thread. `notify` runs after each event is sent (the window passes a repaint).
    pub fn start(store: ModelStore, notify: Notify) -> Self {
        Self::start_on(store, notify, device::Preference::from_env())
    }

    /// Starts the thread on the device asked for (falling back to the CPU, saying why).
    pub fn start_on(store: ModelStore, notify: Notify, preference: device::Preference) -> Self {
        let (req_tx, req_rx) = mpsc::channel();
        let line = Connection::new(req_tx, store.clone());
        let cancel = Arc::new(AtomicBool::new(false));
        let cancel_indexing = Arc::new(AtomicBool::new(false));
        let flags = Flags { transcription: Arc::clone(&cancel), indexing: Arc::clone(&cancel_indexing) };
        let main = line.reply.clone();
        let thread = std::thread::Builder::new()
            .name("crossmodal-engine".into())
            .spawn(move || Worker::start(store, main, notify, flags, preference).run(&req_rx))
            .ok();
        let engine = Self { cancel, cancel_indexing, line, thread };
        if engine.thread.is_none() {
            tracing::error!("the inference thread could not be started");
        }
        engine
    }

    /// Stops the transcription in progress (the engine answers it with an error "cancelled").
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Stops the indexing run in progress after the batch it is on (`Event::Indexed` reports
    /// `cancelled`).
    pub fn cancel_indexing(&self) {
        self.cancel_indexing.store(true, Ordering::Relaxed);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.send(Request::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs after each event the engine sends (the window passes a repaint request).
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// Cancellation flags the handle sets and the engine reads.
struct Flags {
    transcription: Arc<AtomicBool>,
    indexing: Arc<AtomicBool>,
}

/// The state of the inference thread.
struct Worker {
    store: ModelStore,
    device: candle_core::Device,
    info: DeviceInfo,
    whisper_gpu: bool,
    /// The engine's own line: news for everyone.
    main: Sender<Event>,
    notify: Notify,
    flags: Flags,
    models: models::Models,
    indexer: images::Indexer,
    /// The library last searched, held while its file is unchanged.
    library: Option<HeldLibrary>,
}

/// A library loaded for searching, and the state of its files when it was read.
struct HeldLibrary {
    path: PathBuf,
    stamp: Vec<(u64, Option<std::time::SystemTime>)>,
    library: Arc<crate::gallery::moments::Library>,
}

/// Size and time of a gallery file and of its write-ahead log: any commit changes one of them.
fn library_stamp(path: &std::path::Path) -> Vec<(u64, Option<std::time::SystemTime>)> {
    let wal = path.with_extension(format!(
        "{}-wal",
        path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    [path.to_owned(), wal]
        .iter()
        .map(|p| std::fs::metadata(p).map_or((0, None), |m| (m.len(), m.modified().ok())))
        .collect()
}

impl Worker {
    fn start(
        store: ModelStore,
        main: Sender<Event>,
        notify: Notify,
        flags: Flags,
        preference: device::Preference,
    ) -> Self {
        let (device, info) = device::pick_with(preference);
        let worker = Self {
            store,
            device,
            info,
            whisper_gpu: preference != device::Preference::Cpu,
            main,
            notify,
            flags,
            models: models::Models::default(),
            indexer: images::Indexer::default(),
            library: None,
        };
        worker.say(Event::Device(worker.info.clone()));
        for spec in model_store::CATALOGUE {
            let status = if worker.store.is_installed(spec) {
                ModelStatus::Installed
            } else {
                ModelStatus::NotInstalled
            };
            worker.say(Event::Model { name: spec.name, status });
        }
        worker
    }

    /// News for everyone, on the engine's own line.
    fn say(&self, event: Event) {
        let _ = self.main.send(event);
        (self.notify)();
    }

    fn answer(&self, to: &Sender<Event>, event: Event) {
        let _ = to.send(event);
        (self.notify)();
    }

    fn run(mut self, requests: &Receiver<Envelope>) {
        while let Ok(Envelope { request, reply }) = requests.recv() {
            if matches!(request, Request::Shutdown) {
                break;
            }
            self.handle(request, &reply);
        }
    }

    /// Splits the worker into the models and where they load, so a job can hold both.
    fn parts(&mut self) -> (&mut models::Models, models::Place<'_>, &Arc<AtomicBool>) {
        let place = models::Place {
            store: &self.store,
            device: &self.device,
            info: &self.info,
            whisper_gpu: self.whisper_gpu,
            main: &self.main,
            notify: &self.notify,
        };
        (&mut self.models, place, &self.flags.transcription)
    }

    fn handle(&mut self, request: Request, reply: &Sender<Event>) {
        match request {
            Request::Shutdown => {}
            Request::Load(name) => {
                let result = model_store::spec(&name).map_err(|e| e.to_string()).and_then(|spec| {
                    let (models, place, _) = self.parts();
                    models.load(&place, spec)
                });
                if let Err(e) = result {
                    self.answer(reply, Event::Error(format!("{name}: {e}")));
                }
            }
            Request::LoadDefaults => {
                let (models, place, _) = self.parts();
                for spec in model_store::CATALOGUE.iter().filter(|s| s.default && place.store.is_installed(s))
                {
                    // A failure shows in the model's status; the others still load.
                    let _ = models.ensure(&place, spec);
                }
            }
            Request::Transcribe { id, model, audio, options, cancel: own } => {
                let progress: speech::Progress = {
                    let (reply, notify) = (reply.clone(), Arc::clone(&self.notify));
                    Arc::new(move |fraction| {
                        let _ = reply.send(Event::Progress { id, fraction });
                        notify();
                    })
                };
                let (models, place, everyone) = self.parts();
                let cancel = own.unwrap_or_else(|| {
                    everyone.store(false, Ordering::Relaxed);
                    Arc::clone(everyone)
                });
                let result = models
                    .whisper(&place, &model)
                    .and_then(|w| transcribe(w, &audio, &options, &cancel, Some(progress)));
                self.answer(reply, Event::Transcribed { id, result });
            }
            Request::SetCommands(set, settings) => {
                let (models, place, _) = self.parts();
                let result = models
                    .text(&place)
                    .and_then(|encoder| Matcher::new(&set, &encoder, settings).map_err(|e| e.to_string()));
                let event = match result {
                    Ok(m) => {
                        models.matcher = Some(m);
                        Event::CommandsReady { origin: set.origin.clone(), commands: set.len() }
                    }
                    Err(e) => Event::Error(format!("{}: {e}", set.origin)),
                };
                self.answer(reply, event);
            }
            Request::MatchCommand { id, model, audio, options, cancel } => {
                let (models, place, _) = self.parts();
                let cancel = cancel.unwrap_or_default();
                let result = models.for_commands(&place, &model).and_then(|(whisper, encoder, matcher)| {
                    let samples = samples_of(&audio)?;
                    let start = std::time::Instant::now();
                    let decision = matcher
                        .recognise(whisper, encoder, &samples, &options, &cancel)
                        .map_err(|e| e.to_string())?;
                    Ok((decision, start.elapsed()))
                });
                self.answer(reply, Event::Matched { id, result });
            }
            Request::Fetch(name) => match model_store::spec(&name) {
                Ok(spec) => fetch(&self.store, spec, &self.main, &self.notify),
                Err(e) => self.answer(reply, Event::Error(e.to_string())),
            },
            Request::Index { gallery, paths, encoder, reindex, speech } => {
                let (models, place, _) = self.parts();
                let loaded = models.image_space(&place, encoder).and_then(|space| {
                    let text = models.text(&place)?;
                    let whisper = speech.map(|name| {
                        models
                            .whisper_shared(&place, &name)
                            .map_err(|e| format!("{name} cannot transcribe: {e}"))
                    });
                    Ok(images::IndexModels { space, text, whisper })
                });
                let job = images::IndexJob { gallery, paths, reindex };
                match loaded {
                    Ok(loaded) => {
                        let (cancel, notify) = (&self.flags.indexing, &self.notify);
                        cancel.store(false, Ordering::Relaxed);
                        self.indexer.start(
                            loaded,
                            job,
                            Arc::clone(cancel),
                            reply.clone(),
                            Arc::clone(notify),
                        );
                    }
                    Err(e) => self.answer(reply, Event::Indexed(Err(e))),
                }
            }
            Request::Search { id, gallery, ask, encoder } => {
                let result = self.search(&gallery, ask, encoder);
                self.answer(reply, Event::Found { id, result });
            }
            Request::LibrarySize { gallery } => {
                if gallery.is_file() {
                    let size = crate::gallery::Gallery::open_existing(&gallery)
                        .and_then(|g| {
                            Ok(LibrarySize {
                                images: g.len()?,
                                recordings: g.recordings_len()?,
                                moments: g.segments_len()?,
                            })
                        })
                        .map_err(|e| e.to_string());
                    self.answer(reply, Event::Library(size));
                } else {
                    self.answer(reply, Event::Library(Ok(LibrarySize::default())));
                }
            }
            Request::Duplicates { gallery, threshold } => {
                let threshold = threshold.unwrap_or(crate::gallery::duplicates::THRESHOLD);
                let result = crate::gallery::Gallery::open_existing(&gallery)
                    .and_then(|g| g.duplicates(threshold))
                    .map_err(|e| e.to_string());
                self.answer(reply, Event::Duplicates(result));
            }
            Request::Captions { images, captions, encoder } => {
                let (models, place, _) = self.parts();
                let result = models
                    .image_space(&place, encoder)
                    .and_then(|s| images::captions(&s, &images, &captions));
                self.answer(reply, Event::Captioned(result));
            }
            Request::Project { items, gallery } => {
                let (models, place, _) = self.parts();
                let result = models
                    .image_space(&place, EncoderChoice::Auto)
                    .and_then(|s| images::project(&s, &items, gallery.as_deref()));
                self.answer(reply, Event::Projected(result));
            }
        }
    }

    /// A search: a spoken part becomes its transcript (Whisper), then the query runs on the
    /// library held in memory (read again when its file has changed).
    fn search(
        &mut self,
        gallery: &std::path::Path,
        mut ask: Ask,
        encoder: EncoderChoice,
    ) -> Result<Found, String> {
        if !gallery.exists() {
            return Err(format!(
                "nothing is in the library {} yet: drop images, recordings or a folder on the window, or run `crossmodal add FOLDER`",
                gallery.display()
            ));
        }
        let (models, place, cancel) = self.parts();
        // The recording is handed to Whisper, not copied: only its transcript is searched for.
        let heard = match ask.query.audio.take() {
            Some(spoken) => {
                let whisper = models.whisper(&place, &spoken.model)?;
                let audio = AudioInput::Samples(spoken.samples);
                let t = transcribe(whisper, &audio, &spoken.options, cancel, None)?;
                if t.text.is_empty() {
                    return Err("no speech was heard".into());
                }
                Some(t.text)
            }
            None => None,
        };
        let space = models.image_space(&place, encoder)?;
        let text = models.text(&place)?;
        let opened = crate::gallery::Gallery::open(gallery, &space.id(), false).map_err(|e| e.to_string())?;
        let stamp = library_stamp(gallery);
        let library = match &self.library {
            Some(held) if held.path == gallery && held.stamp == stamp => Arc::clone(&held.library),
            _ => {
                let library =
                    Arc::new(crate::gallery::moments::Library::load(&opened).map_err(|e| e.to_string())?);
                self.library =
                    Some(HeldLibrary { path: gallery.to_owned(), stamp, library: Arc::clone(&library) });
                library
            }
        };
        images::search(&space, &text, &opened, &library, &ask, heard)
    }
}

/// One transcription on a loaded model.
fn transcribe(
    whisper: &speech::Whisper,
    audio: &AudioInput,
    options: &speech::Options,
    cancel: &Arc<AtomicBool>,
    progress: Option<speech::Progress>,
) -> Result<Transcript, String> {
    let result = match audio {
        AudioInput::Samples(samples) => whisper.transcribe_until(samples, options, cancel),
        AudioInput::File(path) => whisper.transcribe_file(path, options, cancel, progress),
    };
    result.map_err(|e| e.to_string())
}

/// The samples of an utterance: as given, or decoded from a file.
fn samples_of(audio: &AudioInput) -> Result<std::borrow::Cow<'_, [f32]>, String> {
    match audio {
        AudioInput::Samples(s) => Ok(std::borrow::Cow::Borrowed(s)),
        AudioInput::File(path) => {
            Ok(std::borrow::Cow::Owned(crate::audio::decode_file(path).map_err(|e| e.to_string())?.samples))
        }
    }
}

/// Installs a model on a thread of its own, so that inference goes on meanwhile.
fn fetch(store: &ModelStore, spec: &'static ModelSpec, events: &Sender<Event>, notify: &Notify) {
    let (store, events, notify) = (store.clone(), events.clone(), Arc::clone(notify));
    let spawned = std::thread::Builder::new().name(format!("fetch-{}", spec.name)).spawn(move || {
        let emit = |e: Event| {
            let _ = events.send(e);
            notify();
        };
        emit(Event::Model { name: spec.name, status: ModelStatus::Fetching });
        let options = model_store::FetchOptions { source: model_store::Source::from_env(), progress: false };
        let result = store.fetch(spec, &options, &mut |line| {
            emit(Event::Fetching { name: spec.name, line: line.to_owned() });
        });
        let status =
            if store.is_installed(spec) { ModelStatus::Installed } else { ModelStatus::NotInstalled };
        emit(Event::Model { name: spec.name, status });
        match result {
            Ok(model_store::FetchOutcome::AlreadyInstalled) => {
                emit(Event::Fetching { name: spec.name, line: "already installed".into() });
            }
            Ok(model_store::FetchOutcome::Installed { from }) => {
                emit(Event::Fetching { name: spec.name, line: format!("installed from {from}") });
            }
            Err(e) => emit(Event::Error(format!("fetching {}: {e}", spec.name))),
        }
    });
    if let Err(e) = spawned {
        tracing::error!("the download thread could not be started: {e}");
    }
}
