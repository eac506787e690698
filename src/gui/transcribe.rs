//! Transcribe: record from the microphone with live text, or drop / open audio files; segments
//! with timestamps; copy and export (TXT, SRT, VTT, JSON).

use std::path::PathBuf;

use crate::engine::{AudioInput, Engine, JobId, Request};
use crate::live::{Live, LiveEvent, Purpose};
use crate::speech::export::Format;
use crate::speech::{self, Segment, Transcript};

use super::CrossmodalApp;

#[derive(Debug)]
enum FileState {
    Waiting,
    Running(f32),
    Done(Transcript),
    Failed(String),
}

#[derive(Debug)]
struct FileJob {
    id: JobId,
    path: PathBuf,
    state: FileState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    Live,
    File(usize),
}

pub struct TranscribePanel {
    files: Vec<FileJob>,
    shown: Shown,
    live: Option<Live>,
    /// Stop was pressed: the last utterance is being answered.
    stopping: bool,
    live_name: String,
    live_segments: Vec<Segment>,
    /// For each live segment, how long after the pipeline had it the window took it in.
    live_lag: Vec<std::time::Duration>,
    /// Each live segment's line number in the session in progress, so a revised line takes its
    /// place; `None` for the lines of sessions before it. Line numbers start again at 1 in each
    /// session: a second recording's revision of its line 1 once replaced the first recording's
    /// line 1, and left its own first version standing beside it.
    live_ids: Vec<Option<crate::live::LineId>>,
    partial: String,
    devices: Option<Vec<crate::audio::capture::InputDevice>>,
    /// Where the live session in progress is recorded, to be kept in the library.
    kept: Option<PathBuf>,
    /// Seconds before this session on the live transcript's clock: a second Record goes on
    /// where the first stopped, so its lines' times continue (Clear starts again at 0).
    live_offset: f64,
    /// When the session in progress began.
    session_started: Option<std::time::Instant>,
}

impl Default for TranscribePanel {
    fn default() -> Self {
        Self {
            files: Vec::new(),
            shown: Shown::Live,
            live: None,
            stopping: false,
            live_name: String::new(),
            live_segments: Vec::new(),
            live_lag: Vec::new(),
            live_ids: Vec::new(),
            partial: String::new(),
            devices: None,
            kept: None,
            live_offset: 0.0,
            session_started: None,
        }
    }
}

impl TranscribePanel {
    pub fn add_file(&mut self, engine: &Engine, path: PathBuf, model: &str, options: &speech::Options) {
        let id = JobId::next();
        self.shown = Shown::File(self.files.len());
        engine.send(Request::Transcribe {
            id,
            model: model.to_owned(),
            audio: AudioInput::File(path.clone()),
            options: options.clone(),
            cancel: None,
        });
        self.files.push(FileJob { id, path, state: FileState::Waiting });
    }

    /// A file's transcript, once it is done (what the panel shows for it).
    pub fn file_transcript(&self, path: &std::path::Path) -> Option<&Transcript> {
        self.files.iter().rev().find(|f| f.path == path).and_then(|f| match &f.state {
            FileState::Done(t) => Some(t),
            _ => None,
        })
    }

    fn file_of(&mut self, id: JobId) -> Option<&mut FileJob> {
        self.files.iter_mut().find(|f| f.id == id)
    }

    pub fn progress(&mut self, id: JobId, fraction: f32) {
        if let Some(job) = self.file_of(id) {
            job.state = FileState::Running(fraction);
        }
    }

    /// Takes a file's finished transcription; a failed file is also returned as a notice. An
    /// answer to a job this panel did not ask for is not its business.
    pub fn transcribed(&mut self, id: JobId, result: Result<Transcript, String>) -> Result<(), String> {
        let Some(job) = self.file_of(id) else { return Ok(()) };
        match result {
            Ok(t) => {
                job.state = FileState::Done(t);
                Ok(())
            }
            Err(e) => {
                let message = format!("{}: {e}", job.path.display());
                job.state = FileState::Failed(e);
                Err(message)
            }
        }
    }

    /// Shows what the live pipeline heard: each final line the moment it comes, and the words
    /// of the utterance in progress. Returns the session's recording once it has ended, when
    /// it is to be kept in the library.
    pub fn poll_live(&mut self, notices: &mut Vec<String>) -> Option<PathBuf> {
        let Some(live) = &self.live else { return None };
        let mut ended = false;
        for event in live.poll() {
            match event {
                // A file played as the microphone was named when recording began.
                LiveEvent::Opened(name) => {
                    tracing::info!("recording from {name}");
                    if self.live_name.is_empty() {
                        self.live_name = name;
                    }
                }
                LiveEvent::Partial(text) => self.partial = text,
                LiveEvent::Line { id, replaces, start, end, text, answered, .. } => {
                    let (start, end) = (start + self.live_offset, end + self.live_offset);
                    self.partial.clear();
                    let lag = answered.elapsed();
                    tracing::debug!("live line shown {} ms after it was heard", lag.as_millis());
                    tracing::info!("line {start:.1}–{end:.1} s: {text}");
                    // A revised line (its speaker went on after a pause) takes the old one's place.
                    let at = replaces.and_then(|old| self.live_ids.iter().position(|&i| i == Some(old)));
                    match at {
                        Some(i) if text.is_empty() => {
                            self.live_segments.remove(i);
                            self.live_lag.remove(i);
                            self.live_ids.remove(i);
                        }
                        Some(i) => {
                            self.live_segments[i] = Segment::new(start, end, text);
                            self.live_lag[i] = lag;
                            self.live_ids[i] = Some(id);
                        }
                        None if text.is_empty() => {}
                        None => {
                            self.live_segments.push(Segment::new(start, end, text));
                            self.live_lag.push(lag);
                            self.live_ids.push(Some(id));
                        }
                    }
                }
                LiveEvent::Problem(p) => notices.push(format!("recording: {p}")),
                LiveEvent::Ended { problem, .. } => {
                    if let Some(p) = problem {
                        notices.push(format!("recording: {p}"));
                    }
                    self.partial.clear();
                    tracing::info!("recording ended");
                    ended = true;
                }
                LiveEvent::Decided { .. } | LiveEvent::Query(_) | LiveEvent::Settled(_) => {}
            }
        }
        if ended {
            self.live = None;
            if let Some(began) = self.session_started.take() {
                let last_end = self.live_segments.last().map_or(0.0, |s| s.end);
                self.live_offset = (self.live_offset + began.elapsed().as_secs_f64()).max(last_end);
            }
            return self.kept.take().filter(|p| p.is_file());
        }
        None
    }

    /// Recent transcribed text, oldest first: each live utterance and each file's segments.
    pub fn recent_texts(&self) -> Vec<String> {
        let files = self.files.iter().filter_map(|f| match &f.state {
            FileState::Done(t) => Some(t.segments.iter().map(|s| s.text.trim().to_owned())),
            _ => None,
        });
        files
            .flatten()
            .chain(self.live_segments.iter().map(|s| s.text.trim().to_owned()))
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// The live transcript's segments, and for each how long after the pipeline had it the
    /// window took it in.
    pub fn live_lines(&self) -> (&[Segment], &[std::time::Duration]) {
        (&self.live_segments, &self.live_lag)
    }

    /// The words of the utterance in progress, as last reported.
    pub fn partial(&self) -> &str {
        &self.partial
    }

    pub fn live_running(&self) -> bool {
        self.live.is_some()
    }

    /// No file waits or runs.
    pub fn idle(&self) -> bool {
        self.files.iter().all(|f| matches!(f.state, FileState::Done(_) | FileState::Failed(_)))
    }

    /// Clears the live transcript (not while recording); the clock starts again at 0.
    fn clear_live(&mut self) {
        self.live_segments.clear();
        self.live_lag.clear();
        self.live_ids.clear();
        self.partial.clear();
        self.live_offset = 0.0;
        self.live_name.clear();
    }

    /// Live text: the finished utterances and the one in progress.
    fn live_transcript(&self) -> Transcript {
        let text = self.live_segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ");
        Transcript { text, language: String::new(), segments: self.live_segments.clone() }
    }
}

#[cfg(test)]
impl TranscribePanel {
    pub(super) fn file_ids(&self) -> Vec<JobId> {
        self.files.iter().map(|f| f.id).collect()
    }

    pub(super) fn states(&self) -> Vec<&'static str> {
        self.files
            .iter()
            .map(|f| match f.state {
                FileState::Waiting => "waiting",
                FileState::Running(_) => "running",
                FileState::Done(_) => "done",
                FileState::Failed(_) => "failed",
            })
            .collect()
    }
}

/// Saving the transcript shown (Ctrl+S): its name, as text unless the name chosen ends otherwise.
pub(crate) fn save_shown(app: &mut CrossmodalApp) {
    let panel = &app.transcribe;
    let (transcript, name) = match panel.shown {
        Shown::Live if !panel.live_segments.is_empty() => (panel.live_transcript(), "recording".to_owned()),
        Shown::File(i) => match panel.files.get(i) {
            Some(FileJob { state: FileState::Done(t), path, .. }) => (
                t.clone(),
                path.file_stem().map_or_else(|| "transcript".into(), |s| s.to_string_lossy().into()),
            ),
            _ => return,
        },
        Shown::Live => return,
    };
    app.choose(super::files::Want::Save {
        file_name: format!("{name}.txt"),
        transcript,
        format: Format::Txt,
    });
}

/// Starts recording, or stops it: the utterance in progress is still transcribed, and the
/// pipeline is let go once it says it has ended.
pub fn toggle_recording(app: &mut CrossmodalApp, ctx: &egui::Context) {
    if let Some(live) = &app.transcribe.live {
        if app.transcribe.stopping {
            return;
        }
        live.stop();
        app.transcribe.stopping = true;
        return;
    }
    // What cannot work is said before recording starts, not after the speech.
    if let Some(file) = app.has_virtual_input()
        && !file.is_file()
    {
        app.notice(format!("{}: no such file to play as the microphone", file.display()));
        return;
    }
    if let Some(why) = app.model_unusable(&app.settings.model) {
        app.notice(why);
        return;
    }
    let kept = app.settings.library.keep_sessions.then(|| app.session_file());
    if let Some(dir) = kept.as_ref().and_then(|k| k.parent())
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        app.notice(format!("{}: {e}; the session is not kept", dir.display()));
        return;
    }
    let purpose = Purpose::Transcribe { partials: true };
    let live = app.start_live_recording(ctx, purpose, app.speech_options(), kept.clone());
    app.transcribe.kept = kept;
    app.transcribe.session_started = Some(std::time::Instant::now());
    // The lines of earlier sessions are final: this session's line numbers start again at 1.
    app.transcribe.live_ids.fill(None);
    app.transcribe.stopping = false;
    app.transcribe.shown = Shown::Live;
    // A file played as the microphone is shown by its file name; a device by the name it
    // opens with.
    app.transcribe.live_name = app
        .has_virtual_input()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    app.transcribe.live = Some(live);
}

fn clock(secs: f64) -> String {
    let ms = (secs.max(0.0) * 1000.0).round() as u64;
    format!("{:02}:{:02}.{:01}", ms / 60_000, ms / 1000 % 60, ms / 100 % 10)
}

/// What the voice detector hears now, beside the input meter: speech, or only the room.
pub fn voice_indicator_ui(ui: &mut egui::Ui, hearing: bool) {
    let (text, color) = if hearing {
        ("speech", ui.visuals().selection.bg_fill)
    } else {
        ("no speech", ui.visuals().weak_text_color())
    };
    ui.label(egui::RichText::new(text).color(color)).on_hover_text(
        "The voice detector: whether it hears someone speaking now, over the room's noise. \
         Settings → Voice detector sensitivity changes how readily it does.",
    );
}

pub fn show(ui: &mut egui::Ui, app: &mut CrossmodalApp) {
    // Rows wrap: in a narrow window a control goes to the next line instead of off the edge
    // (each control whole: its text does not wrap).
    ui.horizontal_wrapped(|ui| {
        ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Extend);
        let recording = app.transcribe.live.is_some();
        if app.transcribe.stopping && recording {
            ui.add_enabled(false, egui::Button::new("Stopping…"));
        } else if ui.button(if recording { "Stop" } else { "Record" }).on_hover_text("Space").clicked() {
            toggle_recording(app, ui.ctx());
        }
        let level = app.transcribe.live.as_ref().map_or(0.0, Live::level);
        let hearing = app.transcribe.live.as_ref().is_some_and(Live::speaking);
        ui.add(egui::ProgressBar::new((level * 8.0).clamp(0.0, 1.0)).desired_width(120.0).text(if hearing {
            "speaking"
        } else {
            "level"
        }));
        if recording {
            voice_indicator_ui(ui, hearing);
        }
        device_picker(ui, app);
        if ui.button("Open…").on_hover_text("Transcribe audio files").clicked() {
            app.choose(super::files::Want::Audio);
        }
    });
    ui.horizontal_wrapped(|ui| {
        ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Extend);
        let speech_models: Vec<&str> = crate::model_store::CATALOGUE
            .iter()
            .filter(|s| {
                matches!(
                    s.role,
                    crate::model_store::Role::Speech | crate::model_store::Role::SpeechMultilingual
                )
            })
            .map(|s| s.name)
            .collect();
        // A model that is not installed cannot be chosen; its download is offered right here.
        let mut fetch = None;
        let recommended = app.recommended_whisper();
        egui::ComboBox::from_label("Model").selected_text(app.settings.model.clone()).show_ui(ui, |ui| {
            for m in &speech_models {
                let status = app.models.get(m).cloned().unwrap_or(crate::engine::ModelStatus::NotInstalled);
                let usable = !matches!(
                    status,
                    crate::engine::ModelStatus::NotInstalled | crate::engine::ModelStatus::Fetching
                );
                let speed = crate::model_store::spec(m)
                    .ok()
                    .and_then(crate::model_store::catalogue::speed_class)
                    .unwrap_or_default();
                let mut label = if usable { (*m).to_owned() } else { format!("{m} ({status})") };
                if *m == recommended {
                    label.push_str(" · recommended");
                }
                let label = format!("{label} · {speed}");
                ui.add_enabled_ui(usable, |ui| {
                    ui.selectable_value(&mut app.settings.model, (*m).to_owned(), label);
                })
                .response
                .on_disabled_hover_text(format!("{m} is {status}"));
            }
            for m in &speech_models {
                if matches!(app.models.get(m), None | Some(crate::engine::ModelStatus::NotInstalled)) {
                    let size = crate::model_store::spec(m)
                        .map(|s| crate::model_store::human_size(s.approx_bytes))
                        .unwrap_or_default();
                    if ui.button(format!("Download {m} ({size})")).clicked() {
                        fetch = Some((*m).to_owned());
                    }
                }
            }
        });
        if let Some(m) = fetch {
            app.send(Request::Fetch(m));
        }
        for m in &speech_models {
            if matches!(app.models.get(m), Some(crate::engine::ModelStatus::Fetching)) {
                ui.spinner();
                let line = app.fetch_log.get(m).cloned().unwrap_or_default();
                ui.weak(format!("downloading {m} {line}"));
            }
        }
        let label = ui.label("Language");
        ui.add(egui::TextEdit::singleline(&mut app.settings.language).desired_width(50.0))
            .labelled_by(label.id)
            .on_hover_text("auto, or a code such as en, de, fr (multilingual models)");
        let multilingual = crate::model_store::spec(&app.settings.model)
            .is_ok_and(|s| s.role == crate::model_store::Role::SpeechMultilingual);
        ui.add_enabled(
            multilingual,
            egui::Checkbox::new(&mut app.settings.translate, "Translate to English"),
        )
        .on_disabled_hover_text(format!(
            "{} is English-only: choose a multilingual model (whisper-base) to translate",
            app.settings.model
        ));
        ui.checkbox(&mut app.settings.library.keep_sessions, "Keep in the library")
            .on_hover_text("Record each live session, and add it and each file transcribed to the library");
    });
    ui.separator();
    let panel = &mut app.transcribe;
    ui.horizontal_wrapped(|ui| {
        let live_label = if panel.live_name.is_empty() {
            "Live".to_owned()
        } else {
            format!("Live ({})", panel.live_name)
        };
        ui.selectable_value(&mut panel.shown, Shown::Live, live_label);
        if panel.live.is_none()
            && !panel.live_segments.is_empty()
            && ui.small_button("Clear").on_hover_text("Clear the live transcript").clicked()
        {
            panel.clear_live();
        }
        for (i, job) in panel.files.iter().enumerate() {
            let name = job
                .path
                .file_name()
                .map_or_else(|| job.path.display().to_string(), |n| n.to_string_lossy().into());
            ui.selectable_value(&mut panel.shown, Shown::File(i), name);
            match &job.state {
                FileState::Waiting => {
                    ui.add(egui::ProgressBar::new(0.0).desired_width(80.0).text("waiting"));
                }
                FileState::Running(f) => {
                    ui.add(egui::ProgressBar::new(*f).desired_width(80.0).show_percentage());
                }
                FileState::Done(_) => {
                    ui.weak("done");
                }
                FileState::Failed(e) => {
                    ui.colored_label(ui.visuals().error_fg_color, "failed").on_hover_text(e);
                }
            }
        }
    });
    ui.separator();
    let (transcript, name) = match panel.shown {
        Shown::Live => (Some(panel.live_transcript()), "recording".to_owned()),
        Shown::File(i) => match panel.files.get(i) {
            Some(FileJob { state: FileState::Done(t), path, .. }) => (
                Some(t.clone()),
                path.file_stem().map_or_else(|| "transcript".into(), |s| s.to_string_lossy().into()),
            ),
            Some(FileJob { state: FileState::Failed(e), path, .. }) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("{}: {e}", path.display()));
                (None, String::new())
            }
            _ => {
                ui.weak("transcribing…");
                (None, String::new())
            }
        },
    };
    let Some(transcript) = transcript else { return };
    let mut save = None;
    ui.horizontal(|ui| {
        if ui.button("Copy").on_hover_text("Copy the text").clicked() {
            ui.ctx().copy_text(transcript.text.clone());
        }
        for format in [Format::Txt, Format::Srt, Format::Vtt, Format::Json] {
            let ext = format.extension();
            if ui.button(format!("Export {}", ext.to_uppercase())).clicked() {
                save = Some(super::files::Want::Save {
                    file_name: format!("{name}.{ext}"),
                    transcript: transcript.clone(),
                    format,
                });
            }
        }
    });
    egui::ScrollArea::vertical().stick_to_bottom(true).auto_shrink([false, false]).show(ui, |ui| {
        egui::Grid::new("segments").num_columns(2).spacing([12.0, 4.0]).show(ui, |ui| {
            for s in &transcript.segments {
                ui.monospace(format!("{} → {}", clock(s.start), clock(s.end)));
                ui.label(s.text.trim());
                ui.end_row();
            }
            if panel.shown == Shown::Live && !panel.partial.is_empty() {
                ui.monospace("…");
                ui.label(egui::RichText::new(panel.partial.trim()).italics().weak());
                ui.end_row();
            }
        });
        if transcript.segments.is_empty() && panel.partial.is_empty() {
            ui.weak(if panel.shown == Shown::Live {
                "Press Record (or Space) and speak, or drop audio files here."
            } else {
                "No speech in this file."
            });
        }
    });
    if let Some(want) = save {
        app.choose(want);
    }
}

fn device_picker(ui: &mut egui::Ui, app: &mut CrossmodalApp) {
    if let Some(file) = app.has_virtual_input() {
        ui.label(format!("Input: {}", file.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
        return;
    }
    let devices = app
        .transcribe
        .devices
        .get_or_insert_with(|| crate::audio::capture::input_devices().unwrap_or_default());
    // Shown by what it is; kept (and passed to the pipeline) by the name `--device` takes.
    let current = match &app.settings.input_device {
        None => "System default".to_owned(),
        Some(name) => devices
            .iter()
            .find(|d| &d.name == name || &d.description == name)
            .map_or_else(|| name.clone(), |d| d.description.clone()),
    };
    let mut picked = None;
    // A long device name is shortened in the box (whole in the list).
    let shown = if current.chars().count() > 32 {
        format!("{}…", current.chars().take(31).collect::<String>())
    } else {
        current.clone()
    };
    egui::ComboBox::from_label("Input device").selected_text(shown).show_ui(ui, |ui| {
        if ui.selectable_label(app.settings.input_device.is_none(), "System default").clicked() {
            picked = Some(None);
        }
        for d in devices.iter() {
            let chosen = app.settings.input_device.as_deref() == Some(d.name.as_str());
            let label =
                if d.is_default { format!("{} (default)", d.description) } else { d.description.clone() };
            if ui.selectable_label(chosen, label).on_hover_text(format!("--device {}", d.name)).clicked() {
                picked = Some(Some(d.name.clone()));
            }
        }
    });
    if let Some(choice) = picked {
        if let (Some(name), Some(config)) = (&choice, crate::audio::capture::config_dir())
            && let Err(e) = crate::audio::capture::remember_device(&config, name)
        {
            app.notices.push(format!("could not remember the device in {}: {e}", config.display()));
        }
        app.settings.input_device = choice;
    }
}
