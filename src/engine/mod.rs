//! The inference thread. It owns every model; the window and the CLI send it `Request`s and read
//! `Event`s back over channels, so nothing that waits on a model runs on the UI thread.

pub mod device;
mod images;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use candle_core::Device;

pub use device::DeviceInfo;
pub use images::{CaptionRow, Found, FoundImage, ImageQuery, SpaceItem, SpacePoint};

use crate::commands::{CommandSet, Decision, Matcher, matcher};
use crate::gallery::IndexReport;
use crate::model_store::{self, ModelSpec, ModelStore, Role};
use crate::space::TextEncoder;
use crate::space::clip::ClipEncoder;
use crate::space::image_lite::LiteNet;
use crate::speech::{self, Transcript, Whisper};

/// What the engine knows of one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelStatus {
    NotInstalled,
    /// Files are present; not loaded yet.
    Installed,
    Loading,
    /// Being downloaded.
    Fetching,
    /// Loaded, running on this device.
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

#[derive(Debug)]
pub enum Request {
    /// Load one model by catalogue name.
    Load(String),
    /// Load every installed model of the default set.
    LoadDefaults,
    /// Transcribe with a Whisper model; answered by `Event::Progress`es, then `Event::Transcribed`.
    Transcribe {
        model: String,
        audio: AudioInput,
        options: speech::Options,
        tag: String,
    },
    /// Use this command set, with these thresholds, from now on (loads the text encoder if
    /// needed); answered by `Event::CommandsReady` or an `Event::Error`.
    SetCommands(CommandSet, matcher::Settings),
    /// Decide which command an utterance meant; answered by `Event::Matched`.
    MatchCommand {
        model: String,
        audio: AudioInput,
        options: speech::Options,
        tag: String,
    },
    /// Install a model from the hub or the mirror (on a thread of its own); answered by
    /// `Event::Fetching` lines and the model's new status.
    Fetch(String),
    /// Bring a gallery up to date with these files and folders, on the indexing thread (so
    /// transcription goes on meanwhile); answered by `Event::Indexing`, then `Event::Indexed`.
    /// `Engine::cancel_indexing` stops it.
    Index {
        gallery: PathBuf,
        paths: Vec<PathBuf>,
    },
    /// Rank a gallery's images against a query; answered by `Event::Found`.
    SearchImages {
        gallery: PathBuf,
        query: ImageQuery,
        top: usize,
        tag: String,
    },
    /// How well each caption fits each image; answered by `Event::Captioned`.
    Captions {
        images: Vec<PathBuf>,
        captions: Vec<String>,
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
        tag: String,
        fraction: f32,
    },
    Transcribed {
        tag: String,
        result: Result<Transcript, String>,
    },
    CommandsReady {
        origin: String,
        commands: usize,
    },
    /// A decision and how long it took from having the audio to deciding.
    Matched {
        tag: String,
        result: Result<(Decision, std::time::Duration), String>,
    },
    /// A line of a model download's log.
    Fetching {
        name: &'static str,
        line: String,
    },
    Indexing {
        done: usize,
        total: usize,
    },
    Indexed(Result<IndexReport, String>),
    Found {
        tag: String,
        result: Result<Found, String>,
    },
    Captioned(Result<Vec<CaptionRow>, String>),
    Projected(Result<Vec<SpacePoint>, String>),
    Error(String),
}

/// What to transcribe: samples already at 16 kHz mono, or a file of any length and format.
#[derive(Debug)]
pub enum AudioInput {
    Samples(Vec<f32>),
    File(std::path::PathBuf),
}

/// Models the engine holds once loaded.
#[derive(Default)]
// The image networks loaded at start are held so that their device is known and a broken file
// shows at once; image jobs use the `ImageSpace` shared with the indexing thread.
#[allow(dead_code)]
struct Loaded {
    whisper: BTreeMap<&'static str, Whisper>,
    text: Option<TextEncoder>,
    matcher: Option<Matcher>,
    image_lite: Option<LiteNet>,
    clip: Option<ClipEncoder>,
}

/// A handle on the running inference thread.
pub struct Engine {
    cancel: Arc<AtomicBool>,
    cancel_indexing: Arc<AtomicBool>,
    requests: Sender<Request>,
    events: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Starts the thread. `notify` runs after each event is sent (the window passes a repaint).
    pub fn start(store: ModelStore, notify: Notify) -> Self {
        Self::start_on(store, notify, device::Preference::from_env())
    }

    /// Starts the thread on the device asked for (falling back to the CPU, saying why).
    pub fn start_on(store: ModelStore, notify: Notify, preference: device::Preference) -> Self {
        let (req_tx, req_rx) = mpsc::channel();
        let (ev_tx, ev_rx) = mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let cancel_indexing = Arc::new(AtomicBool::new(false));
        let flags = Flags { transcription: Arc::clone(&cancel), indexing: Arc::clone(&cancel_indexing) };
        let thread = std::thread::Builder::new()
            .name("crossmodal-engine".into())
            .spawn(move || run(&store, &req_rx, &ev_tx, &notify, &flags, preference))
            .ok();
        let engine = Self { cancel, cancel_indexing, requests: req_tx, events: ev_rx, thread };
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

    /// A sender for requests, for threads of the caller's own (a live microphone loop).
    pub fn requests(&self) -> Sender<Request> {
        self.requests.clone()
    }

    pub fn send(&self, request: Request) {
        // A closed channel means the engine has stopped; there is nobody left to tell.
        let _ = self.requests.send(request);
    }

    /// Events that have arrived, without waiting.
    pub fn poll(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }

    /// Waits for the next event.
    pub fn recv(&self) -> Option<Event> {
        self.events.recv().ok()
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

fn run(
    store: &ModelStore,
    requests: &Receiver<Request>,
    events: &Sender<Event>,
    notify: &Notify,
    flags: &Flags,
    preference: device::Preference,
) {
    let cancel = &flags.transcription;
    let emit = |e: Event| {
        let _ = events.send(e);
        notify();
    };
    let (device, info) = device::pick_with(preference);
    emit(Event::Device(info.clone()));
    for spec in model_store::CATALOGUE {
        let status =
            if store.is_installed(spec) { ModelStatus::Installed } else { ModelStatus::NotInstalled };
        emit(Event::Model { name: spec.name, status });
    }
    let mut loaded = Loaded::default();
    let mut image_jobs = images::ImageJobs::new(store.clone(), events.clone(), Arc::clone(notify));
    while let Ok(request) = requests.recv() {
        match request {
            Request::Shutdown => break,
            Request::Load(name) => match model_store::spec(&name) {
                Ok(spec) => {
                    if let Err(e) = load(store, spec, &device, &info, &mut loaded, &emit) {
                        emit(Event::Error(format!("{name}: {e}")));
                    }
                }
                Err(e) => emit(Event::Error(e.to_string())),
            },
            Request::Transcribe { model, audio, options, tag } => {
                cancel.store(false, Ordering::Relaxed);
                let progress: speech::Progress = {
                    let (events, notify, tag) = (events.clone(), Arc::clone(notify), tag.clone());
                    Arc::new(move |fraction| {
                        let _ = events.send(Event::Progress { tag: tag.clone(), fraction });
                        notify();
                    })
                };
                let job = Job { audio: &audio, options: &options, cancel, progress };
                let result = transcribe(store, &model, &job, &device, &info, &mut loaded, &emit);
                emit(Event::Transcribed { tag, result });
            }
            Request::SetCommands(set, settings) => {
                match build_matcher(store, &set, settings, &device, &info, &mut loaded, &emit) {
                    Ok(()) => emit(Event::CommandsReady { origin: set.origin.clone(), commands: set.len() }),
                    Err(e) => emit(Event::Error(format!("{}: {e}", set.origin))),
                }
            }
            Request::MatchCommand { model, audio, options, tag } => {
                let result =
                    match_command(store, &model, &audio, &options, &device, &info, &mut loaded, &emit);
                emit(Event::Matched { tag, result });
            }
            Request::Fetch(name) => match model_store::spec(&name) {
                Ok(spec) => fetch(store, spec, events, notify),
                Err(e) => emit(Event::Error(e.to_string())),
            },
            Request::Index { gallery, paths } => {
                flags.indexing.store(false, Ordering::Relaxed);
                image_jobs.index(gallery, paths, Arc::clone(&flags.indexing));
            }
            Request::SearchImages { gallery, query, top, tag } => {
                let result = image_jobs.search(&gallery, query, top, &mut |samples| {
                    let job = Job {
                        audio: &AudioInput::Samples(samples),
                        options: &speech::Options::default(),
                        cancel,
                        progress: Arc::new(|_| {}),
                    };
                    transcribe(
                        store,
                        model_store::catalogue::DEFAULT_WHISPER,
                        &job,
                        &device,
                        &info,
                        &mut loaded,
                        &emit,
                    )
                });
                emit(Event::Found { tag, result });
            }
            Request::Captions { images, captions } => {
                emit(Event::Captioned(image_jobs.captions(&images, &captions)));
            }
            Request::Project { items, gallery } => {
                emit(Event::Projected(image_jobs.project(&items, gallery.as_deref())));
            }
            Request::LoadDefaults => {
                for spec in model_store::CATALOGUE.iter().filter(|s| s.default && store.is_installed(s)) {
                    // A failure shows in the model's status; the others still load.
                    let _ = load(store, spec, &device, &info, &mut loaded, &emit);
                }
            }
        }
    }
}

struct Job<'a> {
    audio: &'a AudioInput,
    options: &'a speech::Options,
    cancel: &'a Arc<AtomicBool>,
    progress: speech::Progress,
}

fn transcribe(
    store: &ModelStore,
    model: &str,
    job: &Job<'_>,
    device: &Device,
    info: &DeviceInfo,
    loaded: &mut Loaded,
    emit: &dyn Fn(Event),
) -> Result<Transcript, String> {
    let spec = model_store::spec(model).map_err(|e| e.to_string())?;
    if !matches!(spec.role, Role::Speech | Role::SpeechMultilingual) {
        return Err(format!("{model} is not a speech model"));
    }
    if !loaded.whisper.contains_key(spec.name) {
        load(store, spec, device, info, loaded, emit)?;
    }
    let whisper = loaded.whisper.get(spec.name).ok_or_else(|| format!("{model} could not be loaded"))?;
    let result = match job.audio {
        AudioInput::Samples(samples) => whisper.transcribe(samples, job.options),
        AudioInput::File(path) => {
            whisper.transcribe_file(path, job.options, job.cancel, Some(Arc::clone(&job.progress)))
        }
    };
    result.map_err(|e| e.to_string())
}

/// Loads the text encoder if needed and embeds the command set's phrases.
fn build_matcher(
    store: &ModelStore,
    set: &CommandSet,
    settings: matcher::Settings,
    device: &Device,
    info: &DeviceInfo,
    loaded: &mut Loaded,
    emit: &dyn Fn(Event),
) -> Result<(), String> {
    if loaded.text.is_none() {
        load(store, model_store::spec("minilm").map_err(|e| e.to_string())?, device, info, loaded, emit)?;
    }
    let encoder = loaded.text.as_ref().ok_or("the text encoder could not be loaded")?;
    loaded.matcher = Some(Matcher::new(set, encoder, settings).map_err(|e| e.to_string())?);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn match_command(
    store: &ModelStore,
    model: &str,
    audio: &AudioInput,
    options: &speech::Options,
    device: &Device,
    info: &DeviceInfo,
    loaded: &mut Loaded,
    emit: &dyn Fn(Event),
) -> Result<(Decision, std::time::Duration), String> {
    let spec = model_store::spec(model).map_err(|e| e.to_string())?;
    if !matches!(spec.role, Role::Speech | Role::SpeechMultilingual) {
        return Err(format!("{model} is not a speech model"));
    }
    if !loaded.whisper.contains_key(spec.name) {
        load(store, spec, device, info, loaded, emit)?;
    }
    let decoded;
    let samples = match audio {
        AudioInput::Samples(s) => s.as_slice(),
        AudioInput::File(path) => {
            decoded = crate::audio::decode_file(path).map_err(|e| e.to_string())?;
            decoded.samples.as_slice()
        }
    };
    let (Some(whisper), Some(encoder), Some(matcher)) =
        (loaded.whisper.get(spec.name), loaded.text.as_ref(), loaded.matcher.as_ref())
    else {
        return Err("no command set is loaded".into());
    };
    let start = std::time::Instant::now();
    let decision = matcher.recognise(whisper, encoder, samples, options).map_err(|e| e.to_string())?;
    Ok((decision, start.elapsed()))
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

/// Loads a model and reports its status; returns the reason when it fails.
fn load(
    store: &ModelStore,
    spec: &'static ModelSpec,
    device: &Device,
    info: &DeviceInfo,
    loaded: &mut Loaded,
    emit: &dyn Fn(Event),
) -> Result<(), String> {
    emit(Event::Model { name: spec.name, status: ModelStatus::Loading });
    let (status, result) = match load_model(store, spec, device, info, loaded) {
        Ok(device) => (ModelStatus::Ready { device }, Ok(())),
        Err(e) if !store.is_installed(spec) => (ModelStatus::NotInstalled, Err(e)),
        Err(e) => (ModelStatus::Failed(e.clone()), Err(e)),
    };
    emit(Event::Model { name: spec.name, status });
    result
}

/// Loads one model after checking its files; returns the device it runs on.
fn load_model(
    store: &ModelStore,
    spec: &'static ModelSpec,
    device: &Device,
    info: &DeviceInfo,
    loaded: &mut Loaded,
) -> Result<String, String> {
    let path = store.open_checked(spec).map_err(|e| e.to_string())?;
    let dir = store.model_dir(spec);
    let on = |d: &Device| {
        if d.is_cpu() { "CPU".to_owned() } else { info.name.clone() }
    };
    match spec.role {
        Role::Speech | Role::SpeechMultilingual => {
            let whisper = Whisper::load(&path, info.gpu).map_err(|e| e.to_string())?;
            let where_ = if whisper.on_gpu() { info.name.clone() } else { "CPU".to_owned() };
            loaded.whisper.insert(spec.name, whisper);
            Ok(where_)
        }
        Role::Text => {
            let encoder = TextEncoder::load(&dir, device).map_err(|e| e.to_string())?;
            let where_ = on(encoder.device());
            loaded.text = Some(encoder);
            Ok(where_)
        }
        Role::ImageLite => {
            let net = LiteNet::load(&path, device).map_err(|e| e.to_string())?;
            let where_ = on(net.device());
            loaded.image_lite = Some(net);
            Ok(where_)
        }
        Role::ImageClip => {
            loaded.clip = Some(ClipEncoder::load(&dir, device).map_err(|e| e.to_string())?);
            Ok(on(device))
        }
    }
}
