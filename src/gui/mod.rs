//! The window: a thin layer over the engine. It sends requests and draws what the engine's
//! events say; it never waits on a model. One file per panel.

mod commands;
mod files;
mod images;
mod push_to_talk;
mod settings;
mod space;
mod transcribe;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::audio::capture::InputSource;
use crate::engine::{DeviceInfo, Engine, Event, ModelStatus, Request};
use crate::live::{Live, Purpose};
use crate::media::Media;
use crate::model_store::ModelStore;

pub use files::FileDialogs;
pub use settings::{Settings, Theme};

/// The application's id: its desktop entry, `AppStream` metainfo and icon are named after it.
pub const APP_ID: &str = "io.github.crossmodal.Crossmodal";
/// The window's icon (packaging/icons/: the SVG and its renderings).
const ICON: &[u8] = include_bytes!("../../packaging/icons/256x256/io.github.crossmodal.Crossmodal.png");

/// How often meters (input level, progress) are redrawn when nothing else asks for a frame.
const METER_REFRESH: Duration = Duration::from_millis(250);

/// How often watched folders are looked at.
const WATCH_EVERY: Duration = Duration::from_secs(10);

/// Unix seconds as `YYYY-MM-DD_HH-MM-SS` (UTC), for file names.
fn utc_stamp(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rest = secs % 86_400;
    // Howard Hinnant's days-from-civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}_{:02}-{:02}-{:02}", rest / 3600, rest / 60 % 60, rest % 60)
}

/// The panels, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Tab {
    Transcribe,
    Commands,
    Images,
    Space,
    Settings,
}

impl Tab {
    pub const ALL: [Tab; 5] = [Tab::Transcribe, Tab::Commands, Tab::Images, Tab::Space, Tab::Settings];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Transcribe => "Transcribe",
            Tab::Commands => "Commands",
            Tab::Images => "Library",
            Tab::Space => "Space",
            Tab::Settings => "Settings",
        }
    }
}

/// How the window is started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Play this audio file as the microphone (a virtual microphone, for tests and demos).
    pub input: Option<PathBuf>,
    /// The image gallery (default: the platform data folder).
    pub gallery: Option<PathBuf>,
    /// The command file (default: `commands.toml` in the config folder).
    pub commands: Option<PathBuf>,
    /// Save a screenshot here once the models have settled, then close.
    pub screenshot: Option<PathBuf>,
    /// Print the time from `started` to the first frame, then close.
    pub first_frame: Option<Instant>,
    /// Settings as saved last time.
    pub settings: Option<Settings>,
    /// The device to ask the engine for (default: `CROSSMODAL_DEVICE`, else automatic).
    pub device: Option<crate::engine::device::Preference>,
    /// Turn push-to-talk on with this shortcut (over the saved settings).
    pub push_to_talk: Option<String>,
    /// How files and folders are chosen (default: `CROSSMODAL_FILE_DIALOG`, else the desktop's
    /// dialog where it has one).
    pub file_dialogs: Option<FileDialogs>,
}

/// Everything the window shows, as plain state.
pub struct CrossmodalApp {
    engine: Engine,
    pub(crate) tab: Tab,
    pub settings: Settings,
    pub(crate) store_root: PathBuf,
    pub(crate) device: Option<DeviceInfo>,
    pub(crate) models: BTreeMap<&'static str, ModelStatus>,
    /// Bytes on disk of each model, read again when its status changes (not every frame).
    pub(crate) model_bytes: BTreeMap<&'static str, u64>,
    /// The latest line of each model's download.
    pub(crate) fetch_log: BTreeMap<&'static str, String>,
    pub(crate) notices: Vec<String>,
    pub(crate) transcribe: transcribe::TranscribePanel,
    pub(crate) commands: commands::CommandsPanel,
    pub(crate) images: images::ImagesPanel,
    pub(crate) space: space::SpacePanel,
    pub(crate) ptt: push_to_talk::PushToTalkPanel,
    file_dialogs: FileDialogs,
    /// The window's own file chooser, while it is open.
    path_field: Option<files::PathField>,
    /// A file played as the microphone instead of a real one.
    input_file: Option<PathBuf>,
    /// How long each frame's `ui` took, in milliseconds.
    frame_ms: Vec<f32>,
    first_frame: Option<Instant>,
    screenshot: Option<PathBuf>,
    shot_requested: bool,
    shot_saved: Arc<AtomicBool>,
    frames: u64,
    applied_theme: Option<Theme>,
}

impl CrossmodalApp {
    pub fn new(ctx: &egui::Context, store: ModelStore, options: Options) -> Self {
        let repaint = ctx.clone();
        let store_root = store.root().to_path_buf();
        let preference = options.device.unwrap_or_else(crate::engine::device::Preference::from_env);
        let engine = Engine::start_on(store, Arc::new(move || repaint.request_repaint()), preference);
        engine.send(Request::LoadDefaults);
        let mut settings = options.settings.unwrap_or_default();
        if let Some(key) = options.push_to_talk {
            settings.push_to_talk.on = true;
            settings.push_to_talk.key = key;
        }
        let commands_path = options
            .commands
            .clone()
            .or_else(crate::commands::user_file)
            .unwrap_or_else(|| PathBuf::from("commands.toml"));
        let gallery = options
            .gallery
            .clone()
            .or_else(crate::gallery::default_path)
            .unwrap_or_else(|| "gallery.sqlite".into());
        engine.send(Request::LibrarySize { gallery: gallery.clone() });
        Self {
            engine,
            tab: Tab::Transcribe,
            commands: commands::CommandsPanel::new(commands_path),
            images: images::ImagesPanel::new(gallery),
            transcribe: transcribe::TranscribePanel::default(),
            space: space::SpacePanel::default(),
            ptt: push_to_talk::PushToTalkPanel::default(),
            file_dialogs: options.file_dialogs.unwrap_or_else(FileDialogs::from_env),
            path_field: None,
            settings,
            store_root,
            device: None,
            models: BTreeMap::new(),
            model_bytes: BTreeMap::new(),
            fetch_log: BTreeMap::new(),
            notices: Vec::new(),
            input_file: options.input,
            frame_ms: Vec::new(),
            first_frame: options.first_frame,
            screenshot: options.screenshot,
            shot_requested: false,
            shot_saved: Arc::new(AtomicBool::new(false)),
            frames: 0,
            applied_theme: None,
        }
    }

    pub(crate) fn send(&self, request: Request) {
        self.engine.send(request);
    }

    /// Starts the live pipeline on the chosen input for `purpose`; it repaints the window
    /// after each thing it reports.
    pub(crate) fn start_live(
        &self,
        ctx: &egui::Context,
        purpose: Purpose,
        options: crate::speech::Options,
    ) -> Live {
        self.start_live_recording(ctx, purpose, options, None)
    }

    /// `start_live`, also saving everything heard to `record` (a WAV file).
    pub(crate) fn start_live_recording(
        &self,
        ctx: &egui::Context,
        purpose: Purpose,
        options: crate::speech::Options,
        record: Option<PathBuf>,
    ) -> Live {
        let settings = crate::live::Settings {
            source: self.input_source(),
            purpose,
            model: self.settings.model.clone(),
            options,
            record,
            paused: false,
            voice_threshold: self.settings.voice_threshold(),
        };
        let repaint = ctx.clone();
        Live::start(
            self.engine.connect(),
            settings,
            &(Arc::new(move || repaint.request_repaint()) as crate::engine::Notify),
        )
    }

    /// Where live audio comes from: the virtual microphone when one was given, else the
    /// device picked in the Transcribe panel (or remembered from last time).
    pub(crate) fn input_source(&self) -> InputSource {
        match &self.input_file {
            Some(path) => InputSource::File { path: path.clone(), speed: 1.0 },
            None => InputSource::Microphone { device: self.settings.input_device.clone() },
        }
    }

    pub(crate) fn has_virtual_input(&self) -> Option<&Path> {
        self.input_file.as_deref()
    }

    /// The Whisper model to recommend on this machine: turbo where a model runs on a GPU, else by
    /// the CPU's cores and the language asked for (`catalogue::recommended_whisper`).
    pub(crate) fn recommended_whisper(&self) -> &'static str {
        let gpu = self.device.as_ref().is_some_and(|d| d.gpu)
            || self
                .models
                .values()
                .any(|s| matches!(s, ModelStatus::Ready { device } if !device.starts_with("CPU")));
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        crate::model_store::catalogue::recommended_whisper(gpu, cores, &self.settings.language)
    }

    /// Why the speech model `name` cannot be used now (not installed, downloading, failed), or
    /// nothing when it can.
    pub(crate) fn model_unusable(&self, name: &str) -> Option<String> {
        match self.models.get(name) {
            Some(ModelStatus::NotInstalled) => Some(format!(
                "{name} is not installed: download it from the Model list or Settings (crossmodal models fetch {name})"
            )),
            Some(ModelStatus::Fetching) => Some(format!("{name} is still downloading")),
            Some(ModelStatus::Failed(e)) => Some(format!("{name} failed to load: {e}")),
            _ => None,
        }
    }

    /// Transcription options from the settings (Translate only where the model can).
    pub(crate) fn speech_options(&self) -> crate::speech::Options {
        let multilingual = crate::model_store::spec(&self.settings.model)
            .is_ok_and(|s| s.role == crate::model_store::Role::SpeechMultilingual);
        crate::speech::Options {
            language: self.settings.language.clone(),
            translate: self.settings.translate && multilingual,
            threads: self.settings.threads.max(1),
            ..crate::speech::Options::default()
        }
    }

    /// Shows a problem until it is dismissed.
    pub(crate) fn notice(&mut self, text: impl Into<String>) {
        let text = text.into();
        if !self.notices.contains(&text) {
            self.notices.push(text);
        }
    }

    /// Asks the user for files or a folder: the desktop's dialog when it has one, else the
    /// window's path field (the notice says why).
    pub(crate) fn choose(&mut self, want: files::Want) {
        let why = match self.file_dialogs {
            FileDialogs::InWindow => None,
            FileDialogs::Auto => files::why_no_native_dialog(),
        };
        match why {
            None if self.file_dialogs == FileDialogs::Auto => {
                if let Some(paths) = files::native_pick(&want) {
                    self.chosen(want, paths);
                }
            }
            _ => {
                if let Some(why) = why {
                    self.notice(why);
                }
                self.path_field = Some(files::PathField::new(want));
            }
        }
    }

    /// Does what the files or folders were chosen for.
    fn chosen(&mut self, want: files::Want, paths: Vec<PathBuf>) {
        match want {
            files::Want::Audio => {
                let (model, options) = (self.settings.model.clone(), self.speech_options());
                for f in &paths {
                    self.transcribe.add_file(&self.engine, f.clone(), &model, &options);
                }
                if self.settings.library.keep_sessions {
                    self.add_to_library(paths);
                }
            }
            files::Want::Library => self.add_to_library(paths),
            files::Want::SimilarImage => {
                if let Some(file) = paths.into_iter().next() {
                    self.images.search_similar(&self.engine, file);
                }
            }
            files::Want::Save { transcript, format, .. } => {
                for path in paths {
                    let format = crate::speech::export::Format::from_path(&path).unwrap_or(format);
                    let name =
                        path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
                    let contents = crate::speech::export::render(&transcript, &name, format);
                    match std::fs::write(&path, &contents) {
                        Ok(()) => self.notice(format!("Saved to {}", path.display())),
                        Err(e) => self.notice(format!("{}: not saved: {e}", path.display())),
                    }
                }
            }
        }
    }

    /// The file chooser open in the window (the title of its window).
    pub fn file_chooser(&self) -> Option<&'static str> {
        self.path_field.as_ref().map(|f| f.want.title())
    }

    /// Applies what the live pipelines and the engine reported to the state.
    pub fn drain_events(&mut self) {
        if let Some(kept) = self.transcribe.poll_live(&mut self.notices) {
            self.add_to_library(vec![kept]);
        }
        self.watch_library();
        self.images.notice_outside_changes(&self.engine);
        self.commands.poll_live(self.settings.dry_run, &mut self.notices);
        if self.images.hearing_query() {
            let hear_with = (self.settings.model.clone(), self.speech_options());
            self.images.poll_live(&self.engine, hear_with, &mut self.notices);
        }
        push_to_talk::poll(self);
        for event in self.engine.poll() {
            self.route(event);
        }
    }

    /// Adds files and folders to the library (recordings transcribed with the chosen model);
    /// folders are remembered, to be watched.
    pub(crate) fn add_to_library(&mut self, paths: Vec<PathBuf>) {
        for p in &paths {
            if p.is_dir() && !self.settings.library.folders.contains(p) {
                self.settings.library.folders.push(p.clone());
            }
        }
        let model = self.settings.model.clone();
        self.images.index(&self.engine, paths, &model);
    }

    /// With Watch on, the library's folders are looked at again every few seconds (an
    /// incremental run: only what changed is read).
    fn watch_library(&mut self) {
        let library = &self.settings.library;
        if !library.watch || library.folders.is_empty() || !self.images.may_watch(WATCH_EVERY) {
            return;
        }
        let folders: Vec<PathBuf> = library.folders.iter().filter(|f| f.is_dir()).cloned().collect();
        let model = self.settings.model.clone();
        self.images.watch(&self.engine, folders, &model);
    }

    /// Where a kept live session is recorded: a folder beside the library file.
    pub(crate) fn session_file(&self) -> PathBuf {
        let secs =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.images.gallery().with_extension("sessions").join(format!("session-{}.wav", utc_stamp(secs)))
    }

    /// Sends one engine event to the part of the window it answers.
    fn route(&mut self, event: Event) {
        match event {
            Event::Device(info) => {
                if let Some(why) = info.gpu_failed() {
                    self.notice(format!("running on the CPU: {why}"));
                }
                tracing::info!("engine ready; device: {info}");
                self.device = Some(info);
            }
            Event::Model { name, status } => {
                if let Ok(spec) = crate::model_store::spec(name) {
                    let store = ModelStore::at(&self.store_root);
                    self.model_bytes.insert(name, store.installed_bytes(spec));
                }
                self.models.insert(name, status);
            }
            Event::Fetching { name, line } => {
                self.fetch_log.insert(name, line);
            }
            Event::Progress { id, fraction } => self.transcribe.progress(id, fraction),
            Event::Transcribed { id, result } => {
                if let Err(e) = self.transcribe.transcribed(id, result) {
                    self.notice(e);
                }
            }
            Event::CommandsReady { commands, .. } => self.commands.ready(commands),
            // Decisions come to the Commands panel through its live pipeline.
            Event::Matched { .. } => {}
            Event::Indexing { done, total, transcribing } => self.images.indexing(done, total, transcribing),
            Event::Library(result) => {
                if let Some(e) = self.images.sized(result) {
                    self.notice(e);
                }
            }
            Event::Indexed(result) => {
                if let Some(e) = self.images.indexed(&self.engine, result) {
                    self.notice(e);
                }
            }
            Event::Found { id, result } => {
                if let Some(e) = self.images.found(id, result) {
                    self.notice(e);
                }
            }
            Event::Duplicates(result) => {
                if let Some(e) = self.images.duplicates_found(result) {
                    self.notice(e);
                }
            }
            Event::Captioned(result) => {
                if let Some(e) = self.images.captioned(result) {
                    self.notice(e);
                }
            }
            Event::Projected(result) => {
                if let Some(e) = self.space.projected(result) {
                    self.notice(e);
                }
            }
            Event::Error(e) => self.notice(e),
        }
    }

    /// The device is known and the start-up loads are over: nothing is loading, and no model of
    /// the default set (which the engine loads at start) is still waiting.
    pub fn settled(&self) -> bool {
        self.device.is_some() && crate::engine::start_up_settled(&self.models)
    }

    /// Problems shown and not yet dismissed.
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// The recording's transcript so far, and for each line how long after the live pipeline
    /// had it the window showed it.
    pub fn live_lines(&self) -> (&[crate::speech::Segment], &[Duration]) {
        self.transcribe.live_lines()
    }

    /// A file's transcript in the Transcribe panel, once it is done.
    pub fn file_transcript(&self, path: &std::path::Path) -> Option<&crate::speech::Transcript> {
        self.transcribe.file_transcript(path)
    }

    /// The words of the utterance being spoken, as last transcribed.
    pub fn partial_text(&self) -> &str {
        self.transcribe.partial()
    }

    /// A recording is running.
    pub fn recording(&self) -> bool {
        self.transcribe.live_running()
    }

    /// Listening for commands.
    pub fn listening(&self) -> bool {
        self.commands.listening()
    }

    /// The title of the panel shown.
    pub fn tab_title(&self) -> &'static str {
        self.tab.title()
    }

    /// Whether the Images panel is the one shown.
    pub fn showing_images(&self) -> bool {
        self.tab == Tab::Images
    }

    /// Shows the panel with this title (as a click on its tab does).
    pub fn show_tab(&mut self, title: &str) {
        if let Some(tab) = Tab::ALL.into_iter().find(|t| t.title() == title) {
            self.tab = tab;
        }
    }

    /// Every search result's thumbnail is on screen.
    pub fn thumbnails_shown(&self) -> bool {
        self.images.thumbnails_shown()
    }

    /// Milliseconds each frame's `ui` took so far.
    pub fn frame_times(&self) -> &[f32] {
        &self.frame_ms
    }

    /// Nothing is running: no file transcribing, no indexing, no search or projection waiting.
    pub fn idle(&self) -> bool {
        self.transcribe.idle() && self.images.idle() && self.space.idle()
    }

    /// Files dropped on the window go where they make sense: audio to Transcribe (to the library
    /// when the Library panel is shown); images and folders to the library (to add, or — one
    /// image dropped on the "find similar" area — as a query).
    fn handle_drops(&mut self, ctx: &egui::Context) {
        let (dropped, pointer) = ctx.input(|i| {
            (
                i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).collect::<Vec<_>>(),
                i.pointer.latest_pos(),
            )
        });
        if dropped.is_empty() {
            return;
        }
        let (mut audio, mut visual) = (Vec::new(), Vec::new());
        for path in dropped {
            match crate::media::kind(&path) {
                Media::Audio => audio.push(path),
                Media::Image | Media::Folder => visual.push(path),
                Media::Other => self.notice(format!(
                    "{}: not an audio file, an image or a folder, so it was left alone",
                    path.display()
                )),
            }
        }
        if self.tab == Tab::Images {
            visual.append(&mut audio);
        }
        if !audio.is_empty() {
            self.tab = Tab::Transcribe;
            let options = self.speech_options();
            let model = self.settings.model.clone();
            for path in &audio {
                self.transcribe.add_file(&self.engine, path.clone(), &model, &options);
            }
            if self.settings.library.keep_sessions {
                self.add_to_library(audio);
            }
        }
        if !visual.is_empty() {
            self.tab = Tab::Images;
            let similar = pointer.is_some_and(|p| self.images.similar_zone().contains(p));
            if similar && visual.len() == 1 && crate::media::kind(&visual[0]) == Media::Image {
                self.images.search_similar(&self.engine, visual.remove(0));
            } else {
                self.add_to_library(visual);
            }
        }
    }

    /// The keyboard: Ctrl+1…5 show the panels; Ctrl+F searches; Ctrl+O opens audio files (on
    /// the Library panel: adds to the library); Ctrl+S saves the transcript shown (on the
    /// Commands panel: the command list); Ctrl+N adds a command. Space (unless a text field has
    /// the keyboard) starts and stops the panel's main thing: Record, Listen on Commands, the
    /// best spoken moment's playback on Library.
    fn shortcuts(&mut self, ctx: &egui::Context) {
        if self.path_field.is_some() {
            return;
        }
        let pressed = |key| ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, key));
        let digits = [egui::Key::Num1, egui::Key::Num2, egui::Key::Num3, egui::Key::Num4, egui::Key::Num5];
        for (key, tab) in digits.into_iter().zip(Tab::ALL) {
            if pressed(key) {
                self.tab = tab;
            }
        }
        if pressed(egui::Key::F) {
            self.tab = Tab::Images;
            self.images.focus_search = true;
        }
        if pressed(egui::Key::O) {
            if self.tab == Tab::Images {
                self.choose(files::Want::Library);
            } else {
                self.tab = Tab::Transcribe;
                self.choose(files::Want::Audio);
            }
        }
        if pressed(egui::Key::S) {
            match self.tab {
                Tab::Commands => commands::save(self),
                _ => transcribe::save_shown(self),
            }
        }
        if pressed(egui::Key::N) {
            self.tab = Tab::Commands;
            self.commands.add_row();
        }
        if !ctx.egui_wants_keyboard_input()
            && ctx.input_mut(|i| i.consume_key(egui::Modifiers::NONE, egui::Key::Space))
        {
            match self.tab {
                Tab::Commands => commands::toggle_listening(self, ctx),
                Tab::Images => self.images.play_best(&mut self.notices),
                _ => {
                    self.tab = Tab::Transcribe;
                    transcribe::toggle_recording(self, ctx);
                }
            }
        }
    }

    fn apply_theme(&mut self, ctx: &egui::Context) {
        if self.applied_theme != Some(self.settings.theme) {
            self.applied_theme = Some(self.settings.theme);
            ctx.set_theme(match self.settings.theme {
                Theme::System => egui::ThemePreference::System,
                Theme::Light => egui::ThemePreference::Light,
                Theme::Dark => egui::ThemePreference::Dark,
            });
        }
    }

    fn notices_panel(&mut self, ui: &mut egui::Ui) {
        let mut dismiss = None;
        for (i, notice) in self.notices.iter().enumerate() {
            ui.horizontal_top(|ui| {
                if ui.small_button("Dismiss").on_hover_text("Dismiss this notice").clicked() {
                    dismiss = Some(i);
                }
                // Wrapped, never cut: a notice often ends in what to do (a folder, a command).
                let text = egui::RichText::new(notice).color(ui.visuals().warn_fg_color);
                ui.add(egui::Label::new(text).wrap());
            });
        }
        if let Some(i) = dismiss {
            self.notices.remove(i);
        }
    }

    fn handle_screenshot(&mut self, ctx: &egui::Context) {
        let Some(path) = self.screenshot.clone() else {
            return;
        };
        self.frames += 1;
        if self.shot_saved.load(Ordering::Acquire) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        } else if self.settled() && self.frames > 5 && !self.shot_requested {
            self.shot_requested = true;
            let saved = Arc::clone(&self.shot_saved);
            let repaint = ctx.clone();
            ctx.request_screenshot(move |image| {
                let [w, h] = image.size;
                let bytes: Vec<u8> = image.pixels.iter().flat_map(egui::Color32::to_array).collect();
                let result = u32::try_from(w)
                    .ok()
                    .zip(u32::try_from(h).ok())
                    .and_then(|(w, h)| image::RgbaImage::from_raw(w, h, bytes))
                    .map(|img| img.save(&path));
                if !matches!(result, Some(Ok(()))) {
                    eprintln!("could not save the screenshot to {}", path.display());
                }
                saved.store(true, Ordering::Release);
                repaint.request_repaint();
            });
        }
        ctx.request_repaint();
    }
}

impl eframe::App for CrossmodalApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let start = Instant::now();
        let ctx = ui.ctx().clone();
        if let Some(started) = self.first_frame.take() {
            println!("first frame after {} ms", started.elapsed().as_millis());
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        self.apply_theme(&ctx);
        push_to_talk::sync(self, &ctx);
        self.drain_events();
        self.shortcuts(&ctx);
        self.handle_drops(&ctx);
        egui::Panel::top("tabs").show(ui, |ui| {
            ui.horizontal(|ui| {
                for tab in Tab::ALL {
                    ui.selectable_value(&mut self.tab, tab, tab.title());
                }
                // What is left of the row: a narrow window shortens the line (the whole of it on
                // hover) rather than laying it over the tabs, where it took their clicks.
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    let device =
                        self.device.as_ref().map_or_else(|| "starting…".to_owned(), ToString::to_string);
                    ui.add(
                        egui::Label::new(egui::RichText::new(format!("Device: {device}")).weak()).truncate(),
                    );
                });
            });
        });
        if !self.notices.is_empty() {
            egui::Panel::bottom("notices").show(ui, |ui| self.notices_panel(ui));
        }
        egui::CentralPanel::default().show(ui, |ui| match self.tab {
            Tab::Transcribe => transcribe::show(ui, self),
            Tab::Commands => commands::show(ui, self),
            Tab::Images => images::show(ui, self),
            Tab::Space => space::show(ui, self),
            // The models table is as wide as its names: it scrolls sideways in a narrow window.
            Tab::Settings => {
                egui::ScrollArea::both().auto_shrink([false, false]).show(ui, |ui| settings::show(ui, self));
            }
        });
        if let Some(field) = &mut self.path_field
            && let Some(answer) = field.show(&ctx)
        {
            self.path_field = None;
            if let files::Answer::Chosen(want, paths) = answer {
                self.chosen(want, paths);
            }
        }
        push_to_talk::overlay(self, &ctx);
        self.handle_screenshot(&ctx);
        // Keep progress and the level meter moving while something runs. What the engine and
        // the live pipelines report repaints at once; this is only for the meters, so it is
        // kept slow: on a software-rendered desktop each frame costs tens of milliseconds of
        // the CPU that transcription needs (measured under Xvfb with lavapipe: 10 frames a
        // second took 90 % of a core).
        if self.tab == Tab::Images {
            // A frame every 2 s notices the library changed by another program.
            ctx.request_repaint_after(Duration::from_secs(2));
        }
        if !self.idle() || self.transcribe.live_running() || self.commands.listening() {
            ctx.request_repaint_after(METER_REFRESH);
        }
        self.frame_ms.push(start.elapsed().as_secs_f32() * 1000.0);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.settings.save(storage);
    }
}

/// Opens the window and runs until it is closed.
pub fn run(store: ModelStore, mut options: Options) -> anyhow::Result<()> {
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("crossmodal")
            // The desktop entry's name (packaging/): the desktop matches the window to it.
            .with_app_id(APP_ID)
            .with_icon(eframe::icon_data::from_png_bytes(ICON).unwrap_or_default())
            .with_inner_size([1000.0, 680.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "crossmodal",
        native,
        Box::new(move |cc| {
            if options.settings.is_none() {
                options.settings = cc.storage.and_then(Settings::load);
            }
            Ok(Box::new(CrossmodalApp::new(&cc.egui_ctx, store, options)))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the window could not be opened: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_icon_and_desktop_entry_carry_the_app_id() {
        let icon = eframe::icon_data::from_png_bytes(ICON).expect("the icon decodes");
        assert_eq!((icon.width, icon.height), (256, 256));
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging");
        let entry = std::fs::read_to_string(root.join(format!("{APP_ID}.desktop"))).expect("desktop entry");
        for line in [format!("Icon={APP_ID}"), format!("StartupWMClass={APP_ID}"), "Exec=crossmodal".into()] {
            assert!(entry.lines().any(|l| l == line), "{line} missing from the desktop entry");
        }
        let meta = std::fs::read_to_string(root.join(format!("{APP_ID}.metainfo.xml"))).expect("metainfo");
        assert!(meta.contains(&format!("<id>{APP_ID}</id>")));
        assert!(meta.contains(&format!("<launchable type=\"desktop-id\">{APP_ID}.desktop</launchable>")));
    }
    use crate::engine::{Found, JobId};
    use crate::speech::{Segment, Transcript};

    fn app(dir: &Path) -> CrossmodalApp {
        let options = Options {
            gallery: Some(dir.join("g.sqlite")),
            commands: Some(dir.join("commands.toml")),
            settings: Some(Settings { input_device: None, ..Settings::default() }),
            ..Options::default()
        };
        CrossmodalApp::new(&egui::Context::default(), ModelStore::at(dir.join("store")), options)
    }

    fn said(text: &str) -> Transcript {
        Transcript { text: text.into(), language: "en".into(), segments: vec![Segment::new(0.0, 1.0, text)] }
    }

    #[test]
    fn each_answer_goes_to_the_job_that_asked_and_strangers_are_ignored() {
        let dir = tempfile::tempdir().expect("temp");
        let mut app = app(dir.path());
        let options = app.speech_options();
        for name in ["a.wav", "b.wav"] {
            app.transcribe.add_file(&app.engine, dir.path().join(name), "whisper-tiny.en", &options);
        }
        let [a, b] = app.transcribe.file_ids()[..] else { panic!("two files") };
        app.route(Event::Progress { id: b, fraction: 0.5 });
        assert_eq!(app.transcribe.states(), ["waiting", "running"]);
        app.route(Event::Transcribed { id: a, result: Ok(said("first")) });
        app.route(Event::Transcribed { id: JobId::next(), result: Ok(said("nobody asked")) });
        app.route(Event::Transcribed { id: b, result: Err("boom".into()) });
        assert_eq!(app.transcribe.states(), ["done", "failed"]);
        assert_eq!(app.transcribe.recent_texts(), ["first"]);
        assert_eq!(app.notices().len(), 1, "{:?}", app.notices());
        assert!(app.notices()[0].contains("b.wav") && app.notices()[0].contains("boom"));
    }

    #[test]
    fn only_the_latest_search_is_shown() {
        let dir = tempfile::tempdir().expect("temp");
        let mut app = app(dir.path());
        let found = |name: &str| Found {
            items: vec![crate::engine::FoundItem::Image(crate::engine::FoundImage {
                path: name.into(),
                score: 0.5,
                cosine: 0.5,
                thumbnail: None,
            })],
            ..Found::default()
        };
        app.images.search_similar(&app.engine, dir.path().join("x.png"));
        let old = app.images.awaited().expect("a search is out");
        app.images.search_similar(&app.engine, dir.path().join("y.png"));
        let latest = app.images.awaited().expect("a search is out");
        app.route(Event::Found { id: old, result: Ok(found("old.png")) });
        assert!(app.images.result_paths().is_empty(), "a stale answer was shown");
        app.route(Event::Found { id: latest, result: Ok(found("new.png")) });
        assert_eq!(app.images.result_paths(), [PathBuf::from("new.png")]);
        assert!(app.images.idle());
    }
}
