//! Settings: each model's status, size and a fetch button; the device each runs on; threads;
//! theme; push-to-talk. Saved between runs.

use crate::engine::{ModelStatus, Request};
use crate::model_store::CATALOGUE;

use super::CrossmodalApp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

/// What the window remembers between runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    /// whisper.cpp threads.
    pub threads: usize,
    pub theme: Theme,
    /// The Whisper model for transcription and commands.
    pub model: String,
    /// "auto" or a language code (multilingual models).
    pub language: String,
    pub translate: bool,
    /// The input device picked last; `None` is the system default.
    pub input_device: Option<String>,
    pub threshold: f32,
    pub margin: f32,
    /// Show what a recognised command would do instead of doing it.
    pub dry_run: bool,
    pub push_to_talk: PushToTalkSettings,
    pub library: LibrarySettings,
    /// How readily the voice detector hears speech, 0.05–0.95: its speech threshold is one less
    /// this (0.5, the detector's own default, at the middle).
    pub voice_sensitivity: f32,
}

/// The library: the folders added to it, whether they are watched, whether live sessions are
/// kept in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LibrarySettings {
    /// Folders added so far (watched when `watch`).
    pub folders: Vec<std::path::PathBuf>,
    /// Look at `folders` every few seconds and add what is new or changed.
    pub watch: bool,
    /// Record each live session (and each file transcribed) into the library.
    pub keep_sessions: bool,
}

/// The global push-to-talk shortcut.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PushToTalkSettings {
    pub on: bool,
    pub key: String,
    /// One press starts and the next stops, instead of listening while held.
    pub toggle: bool,
    /// Match what is said against the command list instead of typing it.
    pub commands: bool,
}

impl Default for PushToTalkSettings {
    fn default() -> Self {
        Self { on: false, key: crate::hotkey::DEFAULT.to_owned(), toggle: false, commands: false }
    }
}

impl Default for Settings {
    fn default() -> Self {
        let calibrated = crate::commands::matcher::CALIBRATED;
        Self {
            threads: crate::speech::default_threads(),
            theme: Theme::System,
            model: crate::model_store::catalogue::DEFAULT_WHISPER.to_owned(),
            language: "auto".to_owned(),
            translate: false,
            input_device: crate::audio::capture::config_dir()
                .and_then(|c| crate::audio::capture::remembered_device(&c)),
            threshold: calibrated.threshold,
            margin: calibrated.margin,
            dry_run: false,
            push_to_talk: PushToTalkSettings::default(),
            library: LibrarySettings::default(),
            voice_sensitivity: 1.0 - crate::audio::vad::DEFAULT_THRESHOLD,
        }
    }
}

const KEY: &str = "crossmodal-settings";

impl Settings {
    pub fn load(storage: &dyn eframe::Storage) -> Option<Self> {
        eframe::get_value(storage, KEY)
    }

    pub fn save(&self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, KEY, self);
    }

    /// The voice detector's speech threshold for this sensitivity.
    pub fn voice_threshold(&self) -> f32 {
        (1.0 - self.voice_sensitivity).clamp(0.05, 0.95)
    }
}

pub fn show(ui: &mut egui::Ui, app: &mut CrossmodalApp) {
    ui.label(format!("Model store: {}", app.store_root.display()));
    let recommended = app.recommended_whisper();
    ui.label(format!("Recommended for speech on this machine: {recommended}"));
    ui.add_space(8.0);
    egui::Grid::new("models").striped(true).num_columns(6).spacing([16.0, 6.0]).show(ui, |ui| {
        for h in ["Model", "Role", "Size", "Speed", "Status", ""] {
            ui.strong(h);
        }
        ui.end_row();
        for spec in CATALOGUE {
            let status = app.models.get(spec.name).cloned().unwrap_or(ModelStatus::NotInstalled);
            if spec.name == recommended {
                ui.label(format!("{} (recommended)", spec.name));
            } else {
                ui.label(spec.name);
            }
            ui.label(spec.role.describe());
            // On disk when installed, else what the download will take.
            let bytes = app.model_bytes.get(spec.name).copied().unwrap_or(0);
            if bytes > 0 {
                ui.label(crate::model_store::human_size(bytes));
            } else {
                ui.weak(format!("≈ {}", crate::model_store::human_size(spec.approx_bytes)));
            }
            ui.label(crate::model_store::catalogue::speed_class(spec).unwrap_or(""));
            let color = match status {
                ModelStatus::Ready { .. } => ui.visuals().widgets.active.text_color(),
                ModelStatus::Failed(_) => ui.visuals().error_fg_color,
                _ => ui.visuals().weak_text_color(),
            };
            ui.label(egui::RichText::new(status.to_string()).color(color))
                .on_hover_text(format!("{}: {status}", spec.name));
            ui.horizontal(|ui| match status {
                ModelStatus::Installed | ModelStatus::Failed(_) => {
                    if ui.button(format!("Load {}", spec.name)).clicked() {
                        app.send(Request::Load(spec.name.to_owned()));
                    }
                }
                ModelStatus::NotInstalled => {
                    if ui
                        .button(format!("Fetch {}", spec.name))
                        .on_hover_text(format!("crossmodal models fetch {}", spec.name))
                        .clicked()
                    {
                        app.send(Request::Fetch(spec.name.to_owned()));
                    }
                    ui.weak(format!("crossmodal models fetch {}", spec.name));
                }
                ModelStatus::Loading | ModelStatus::Fetching => {
                    ui.spinner();
                    if let Some(line) = app.fetch_log.get(spec.name) {
                        ui.weak(line);
                    }
                }
                ModelStatus::Ready { .. } => {}
            });
            ui.end_row();
        }
    });
    ui.add_space(12.0);
    let cores = std::thread::available_parallelism().map_or(8, std::num::NonZero::get);
    ui.add(egui::Slider::new(&mut app.settings.threads, 1..=cores.max(1)).text("Transcription threads"));
    ui.horizontal(|ui| {
        ui.label("Theme");
        ui.radio_value(&mut app.settings.theme, Theme::System, "System");
        ui.radio_value(&mut app.settings.theme, Theme::Light, "Light");
        ui.radio_value(&mut app.settings.theme, Theme::Dark, "Dark");
    });
    ui.add(
        egui::Slider::new(&mut app.settings.voice_sensitivity, 0.05..=0.95)
            .fixed_decimals(2)
            .text("Voice detector sensitivity"),
    )
    .on_hover_text(
        "How readily listening hears speech. Higher hears quieter or farther voices, and more of the \
         noise around them; lower ignores more of a noisy room. 0.50 is the detector's own default.",
    );
    ui.add_space(12.0);
    super::push_to_talk::show(ui, app);
}
