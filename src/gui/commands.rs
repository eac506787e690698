//! Commands: the command list, edited in place and saved to its TOML file; a listen toggle; a
//! live log of what was heard, the top scores, the decision and what was done; threshold and
//! margin sliders.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use crate::commands::action::Fired;
use crate::commands::{Action, Command, CommandSet, Decision, Outcome, matcher};
use crate::engine::Request;
use crate::live::{Live, LiveEvent, Purpose};

use super::CrossmodalApp;

/// Phrases are edited on one line, separated by this.
const PHRASE_SEPARATOR: &str = " | ";
const LOG_LINES: usize = 200;

struct Row {
    name: String,
    phrases: String,
    action: Action,
}

/// One utterance in the log.
pub struct LogEntry {
    pub start: f64,
    pub transcript: String,
    pub scores: String,
    pub decision: String,
    pub outcome: String,
}

pub struct CommandsPanel {
    path: PathBuf,
    rows: Vec<Row>,
    /// Why the list cannot be used as it stands (shown under it).
    problem: Option<String>,
    /// The set the engine has (for the actions).
    pub(crate) active: Option<CommandSet>,
    ready: bool,
    live: Option<Live>,
    pub log: VecDeque<LogEntry>,
    settings_changed: bool,
}

impl CommandsPanel {
    pub fn new(path: PathBuf) -> Self {
        let (set, problem) = if path.exists() {
            match CommandSet::load(&path) {
                Ok(set) => (set, None),
                Err(e) => (CommandSet::built_in(), Some(format!("{e} (showing the built-in commands)"))),
            }
        } else {
            (CommandSet::built_in(), None)
        };
        let rows = set
            .commands
            .into_iter()
            .map(|c| Row { name: c.name, phrases: c.phrases.join(PHRASE_SEPARATOR), action: c.action })
            .collect();
        Self {
            path,
            rows,
            problem,
            active: None,
            ready: false,
            live: None,
            log: VecDeque::new(),
            settings_changed: false,
        }
    }

    /// Every phrase of the list.
    pub fn phrases(&self) -> Vec<String> {
        self.rows
            .iter()
            .flat_map(|r| r.phrases.split('|').map(|p| p.trim().to_owned()))
            .filter(|p| !p.is_empty())
            .collect()
    }

    pub fn listening(&self) -> bool {
        self.live.is_some()
    }

    /// The list as a command set, checked as if read from its file.
    pub(crate) fn to_set(&self) -> Result<CommandSet, String> {
        let set = CommandSet {
            commands: self
                .rows
                .iter()
                .enumerate()
                .map(|(i, r)| Command {
                    name: r.name.trim().to_owned(),
                    phrases: r.phrases.split('|').map(|p| p.trim().to_owned()).collect(),
                    action: r.action.clone(),
                    line: i + 1,
                })
                .collect(),
            origin: self.path.display().to_string(),
        };
        if set.is_empty() {
            return Err("the command list is empty: add a command to listen for".into());
        }
        set.checked().map(|(set, _)| set).map_err(|e| e.to_string())
    }

    fn save(&mut self) -> Result<CommandSet, String> {
        self.to_set()?.save(&self.path).map_err(|e| e.to_string())
    }

    pub fn ready(&mut self, _commands: usize) {
        self.ready = true;
    }

    /// Logs each decision the live pipeline reports and does what its command says (with
    /// `dry_run`, says what it would do).
    pub fn poll_live(&mut self, dry_run: bool, notices: &mut Vec<String>) {
        let Some(live) = &self.live else { return };
        let mut ended = false;
        for event in live.poll() {
            match event {
                LiveEvent::Decided { start, decision, took, .. } => {
                    self.decided(start, decision, took, dry_run);
                }
                LiveEvent::Problem(p) => notices.push(format!("commands: {p}")),
                LiveEvent::Ended { problem, .. } => {
                    if let Some(p) = problem {
                        notices.push(format!("listening: {p}"));
                    }
                    ended = true;
                }
                LiveEvent::Opened(_)
                | LiveEvent::Partial(_)
                | LiveEvent::Line { .. }
                | LiveEvent::Settled(_)
                | LiveEvent::Query(_) => {}
            }
        }
        if ended {
            self.live = None;
        }
    }

    pub(crate) fn decided(&mut self, start: f64, d: Decision, took: Duration, dry_run: bool) {
        if d.transcript.is_empty() {
            return;
        }
        let scores = d
            .scores
            .iter()
            .take(3)
            .map(|s| format!("{} {:.2}", s.command, s.score))
            .collect::<Vec<_>>()
            .join(", ");
        let fired = self.active.as_ref().map_or(Outcome::Nothing, |set| set.fire(&d, dry_run));
        let decision = match &d.command {
            None => format!("no match: {}", d.rejected.as_deref().unwrap_or("")),
            Some(name) => format!("{name} ({} ms)", took.as_millis()),
        };
        let outcome = match fired {
            Outcome::Nothing => String::new(),
            Outcome::WouldDo { action, .. } => format!("would {action}"),
            Outcome::Done { line, .. } => format!("did {line}"),
            Outcome::Failed { error, .. } => format!("failed: {error}"),
        };
        self.log.push_front(LogEntry { start, transcript: d.transcript, scores, decision, outcome });
        self.log.truncate(LOG_LINES);
    }
}

pub(crate) fn matcher_settings(app: &CrossmodalApp) -> matcher::Settings {
    matcher::Settings {
        threshold: app.settings.threshold,
        margin: app.settings.margin,
        ..matcher::CALIBRATED
    }
}

fn toggle_listening(app: &mut CrossmodalApp, ctx: &egui::Context) {
    if let Some(live) = app.commands.live.take() {
        live.stop();
        return;
    }
    match app.commands.to_set() {
        Err(e) => app.commands.problem = Some(e),
        Ok(set) => {
            app.commands.problem = None;
            app.commands.active = Some(set.clone());
            app.commands.ready = false;
            app.send(Request::SetCommands(set, matcher_settings(app)));
            app.commands.live = Some(app.start_live(ctx, Purpose::Commands, app.speech_options()));
        }
    }
}

pub fn show(ui: &mut egui::Ui, app: &mut CrossmodalApp) {
    ui.horizontal(|ui| {
        let listening = app.commands.live.is_some();
        if ui.selectable_label(listening, if listening { "Listening" } else { "Listen" }).clicked() {
            toggle_listening(app, ui.ctx());
        }
        if listening {
            let ready = if app.commands.ready { "ready" } else { "preparing the commands…" };
            ui.weak(ready);
            let hearing = app.commands.live.as_ref().is_some_and(crate::live::Live::speaking);
            super::transcribe::voice_indicator_ui(ui, hearing);
        }
        ui.checkbox(&mut app.settings.dry_run, "Dry run (show, do not do)");
    });
    ui.horizontal(|ui| {
        let t = ui.add(egui::Slider::new(&mut app.settings.threshold, 0.0..=1.0).text("Threshold"));
        let m = ui.add(egui::Slider::new(&mut app.settings.margin, 0.0..=0.5).text("Margin"));
        if t.changed() || m.changed() {
            app.commands.settings_changed = true;
        }
        if app.commands.settings_changed && !t.dragged() && !m.dragged() {
            app.commands.settings_changed = false;
            if let Some(set) = app.commands.active.clone() {
                app.send(Request::SetCommands(set, matcher_settings(app)));
            }
        }
    });
    ui.separator();
    ui.horizontal(|ui| {
        ui.strong("Command list");
        ui.weak(app.commands.path.display().to_string());
    });
    let panel = &mut app.commands;
    let mut remove = None;
    egui::ScrollArea::vertical().id_salt("command-list").max_height(ui.available_height() * 0.5).show(
        ui,
        |ui| {
            egui::Grid::new("commands").num_columns(4).striped(true).spacing([8.0, 4.0]).show(ui, |ui| {
                let name_header = ui.strong("Name");
                let phrases_header = ui.strong("Phrases (separated by |)");
                ui.strong("Action");
                ui.strong("");
                ui.end_row();
                for (i, row) in panel.rows.iter_mut().enumerate() {
                    ui.add(egui::TextEdit::singleline(&mut row.name).desired_width(140.0))
                        .labelled_by(name_header.id);
                    ui.add(egui::TextEdit::singleline(&mut row.phrases).desired_width(360.0))
                        .labelled_by(phrases_header.id);
                    let fired = Fired { command: &row.name, transcript: "…", score: 0.0 };
                    let action = row.action.describe(&fired);
                    ui.add_sized([280.0, 20.0], egui::Label::new(&action).truncate()).on_hover_text(action);
                    let label = format!("Remove {}", row.name);
                    let button = ui.small_button("Remove");
                    button.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &label));
                    if button.on_hover_text(&label).clicked() {
                        remove = Some(i);
                    }
                    ui.end_row();
                }
            });
        },
    );
    if let Some(i) = remove {
        panel.rows.remove(i);
    }
    let mut saved = None;
    ui.horizontal(|ui| {
        if ui.button("Add command").clicked() {
            panel.rows.push(Row { name: String::new(), phrases: String::new(), action: Action::Print });
        }
        if ui.button("Save").on_hover_text("Check the list and write it to its file").clicked() {
            match panel.save() {
                Ok(set) => {
                    panel.problem = None;
                    saved = Some(set);
                }
                Err(e) => panel.problem = Some(e),
            }
        }
    });
    if let Some(p) = &panel.problem {
        ui.colored_label(ui.visuals().error_fg_color, p);
    }
    if let Some(set) = saved
        && app.commands.live.is_some()
    {
        app.commands.active = Some(set.clone());
        app.send(Request::SetCommands(set, matcher_settings(app)));
    }
    ui.separator();
    ui.strong("Heard");
    egui::ScrollArea::vertical().id_salt("command-log").auto_shrink([false, false]).show(ui, |ui| {
        egui::Grid::new("log").num_columns(5).striped(true).spacing([10.0, 4.0]).show(ui, |ui| {
            for e in &app.commands.log {
                ui.monospace(format!("{:6.1}s", e.start));
                ui.label(&e.transcript);
                ui.strong(&e.decision);
                ui.weak(&e.scores);
                ui.label(&e.outcome);
                ui.end_row();
            }
        });
        if app.commands.log.is_empty() {
            ui.weak("Press Listen and say a command.");
        }
    });
}
