//! Commands: the command list, edited in place and saved to its TOML file; a listen toggle; a
//! live log of what was heard, the top scores, the decision and what was done; threshold and
//! margin sliders.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use crate::commands::{Action, Command, CommandSet, Decision, Outcome, matcher};
use crate::engine::Request;
use crate::live::{Live, LiveEvent, Purpose};

use super::CrossmodalApp;

/// Phrases are edited on one line, separated by this.
const PHRASE_SEPARATOR: &str = " | ";
const LOG_LINES: usize = 200;

/// What an action does, as the list's menu offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Print,
    Key,
    Clipboard,
    Open,
    Run,
    Json,
}

impl Kind {
    const ALL: [Kind; 6] = [Kind::Print, Kind::Key, Kind::Clipboard, Kind::Open, Kind::Run, Kind::Json];

    fn label(self) -> &'static str {
        match self {
            Kind::Print => "print its name",
            Kind::Key => "press a key",
            Kind::Clipboard => "copy to the clipboard",
            Kind::Open => "open a file or URL",
            Kind::Run => "run a program",
            Kind::Json => "print a JSON line",
        }
    }

    /// What its text field holds, when it has one.
    fn argument(self) -> Option<&'static str> {
        match self {
            Kind::Key => Some("key, e.g. Right, Ctrl+Shift+T"),
            Kind::Clipboard => Some("text (empty: what was said)"),
            Kind::Open => Some("file or URL"),
            Kind::Run => Some("program and arguments"),
            Kind::Print | Kind::Json => None,
        }
    }
}

/// One command as it is edited: the action as its kind and the text of its field.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    name: String,
    phrases: String,
    kind: Kind,
    argument: String,
}

impl Row {
    fn from_command(c: Command) -> Self {
        let (kind, argument) = match c.action {
            Action::Print => (Kind::Print, String::new()),
            Action::Key { key } => (Kind::Key, key),
            Action::Clipboard { text } => (Kind::Clipboard, text.unwrap_or_default()),
            Action::Open { target } => (Kind::Open, target),
            Action::Run { program, args } => (Kind::Run, join_words(std::iter::once(&program).chain(&args))),
            Action::Json => (Kind::Json, String::new()),
        };
        Row { name: c.name, phrases: c.phrases.join(PHRASE_SEPARATOR), kind, argument }
    }

    fn action(&self) -> Action {
        let text = self.argument.trim().to_owned();
        match self.kind {
            Kind::Print => Action::Print,
            Kind::Key => Action::Key { key: text },
            Kind::Clipboard => Action::Clipboard { text: (!text.is_empty()).then_some(text) },
            Kind::Open => Action::Open { target: text },
            Kind::Run => {
                let mut words = split_words(&self.argument).into_iter();
                Action::Run { program: words.next().unwrap_or_default(), args: words.collect() }
            }
            Kind::Json => Action::Json,
        }
    }
}

/// Words for one line: a word with a space or a quote in it is quoted.
fn join_words<'a>(words: impl Iterator<Item = &'a String>) -> String {
    words
        .map(|w| {
            if w.is_empty() || w.contains([' ', '"']) {
                format!("\"{}\"", w.replace('"', "\\\""))
            } else {
                w.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The words of a line as `join_words` writes them: spaces part words, double quotes keep
/// spaces in one, `\"` is a quote.
fn split_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut started) = (Vec::new(), String::new(), false, false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'"') => {
                word.push('"');
                chars.next();
            }
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            c => word.push(c),
        }
    }
    if started || !word.is_empty() {
        words.push(word);
    }
    words
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
    /// The rows as last loaded or saved: anything else is an unsaved change.
    saved_rows: Vec<Row>,
    /// Why the list cannot be used as it stands (shown under it).
    problem: Option<String>,
    /// The set the engine has (for the actions).
    pub(crate) active: Option<CommandSet>,
    ready: bool,
    live: Option<Live>,
    pub log: VecDeque<LogEntry>,
    settings_changed: bool,
    /// The last row's name field takes the keyboard (a command was just added).
    focus_new: bool,
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
        let rows: Vec<Row> = set.commands.into_iter().map(Row::from_command).collect();
        Self {
            path,
            saved_rows: rows.clone(),
            rows,
            problem,
            active: None,
            ready: false,
            live: None,
            log: VecDeque::new(),
            settings_changed: false,
            focus_new: false,
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
                    action: r.action(),
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
        let set = self.to_set()?.save(&self.path).map_err(|e| e.to_string())?;
        self.saved_rows = self.rows.clone();
        Ok(set)
    }

    /// A new, empty command at the end of the list, its name field given the keyboard.
    pub(crate) fn add_row(&mut self) {
        self.rows.push(Row {
            name: String::new(),
            phrases: String::new(),
            kind: Kind::Print,
            argument: String::new(),
        });
        self.focus_new = true;
    }

    /// Saves; a list that cannot be saved says why under it.
    fn save_reporting(&mut self) -> Option<CommandSet> {
        match self.save() {
            Ok(set) => {
                self.problem = None;
                Some(set)
            }
            Err(e) => {
                self.problem = Some(e);
                None
            }
        }
    }

    /// The list differs from its file.
    pub fn unsaved(&self) -> bool {
        self.rows != self.saved_rows
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
                LiveEvent::Opened(name) => tracing::info!("listening for commands on {name}"),
                LiveEvent::Partial(_)
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
        let outcome = match &fired {
            Outcome::Nothing => String::new(),
            Outcome::WouldDo { action, .. } => format!("would {action}"),
            Outcome::Done { line, .. } => format!("did {line}"),
            Outcome::Failed { error, .. } => format!("failed: {error}"),
        };
        tracing::info!("heard \"{}\" at {start:.1} s: {decision}; {outcome}", d.transcript);
        self.log.push_front(LogEntry { start, transcript: d.transcript, scores, decision, outcome });
        self.log.truncate(LOG_LINES);
    }
}

/// Saves the list (Ctrl+S on the Commands panel); listening goes on with it.
pub(crate) fn save(app: &mut CrossmodalApp) {
    if let Some(set) = app.commands.save_reporting() {
        use_saved(app, set);
    }
}

/// A list just saved: while listening, it is the one listened for.
fn use_saved(app: &mut CrossmodalApp, set: CommandSet) {
    if app.commands.live.is_some() {
        app.commands.active = Some(set.clone());
        app.send(Request::SetCommands(set, matcher_settings(app)));
    }
}

pub(crate) fn matcher_settings(app: &CrossmodalApp) -> matcher::Settings {
    matcher::Settings {
        threshold: app.settings.threshold,
        margin: app.settings.margin,
        ..matcher::CALIBRATED
    }
}

pub(crate) fn toggle_listening(app: &mut CrossmodalApp, ctx: &egui::Context) {
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
    let (focus_new, rows) = (std::mem::take(&mut panel.focus_new), panel.rows.len());
    // One command a line, each field as wide as its text (wrapping to the next line in a narrow
    // window): names and phrases are never cut.
    egui::ScrollArea::vertical().id_salt("command-list").max_height(ui.available_height() * 0.5).show(
        ui,
        |ui| {
            let width_of = |text: &str, min: f32| (text.chars().count() as f32 * 7.5 + 20.0).max(min);
            for (i, row) in panel.rows.iter_mut().enumerate() {
                ui.horizontal_wrapped(|ui| {
                    ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Extend);
                    let full = ui.available_width();
                    let (name_text, phrases_text, argument_text) =
                        (row.name.clone(), row.phrases.clone(), row.argument.clone());
                    let name = ui.label("Name");
                    let name_field = ui.add(
                        egui::TextEdit::singleline(&mut row.name)
                            .desired_width(width_of(&name_text, 80.0).min(full))
                            .hint_text("name"),
                    );
                    let name_field = name_field.labelled_by(name.id);
                    if focus_new && i + 1 == rows {
                        name_field.request_focus();
                        name_field.scroll_to_me(None);
                    }
                    let say = ui.label("Say");
                    ui.add(
                        egui::TextEdit::singleline(&mut row.phrases)
                            .desired_width(width_of(&phrases_text, 160.0).min(full))
                            .hint_text("phrases, separated by |"),
                    )
                    .labelled_by(say.id)
                    .on_hover_text("Ways to say it, separated by |");
                    let to = ui.label("to");
                    let kind = egui::ComboBox::from_id_salt(("action kind", i))
                        .selected_text(row.kind.label())
                        .show_ui(ui, |ui| {
                            for k in Kind::ALL {
                                ui.selectable_value(&mut row.kind, k, k.label());
                            }
                        });
                    kind.response.labelled_by(to.id);
                    if let Some(hint) = row.kind.argument() {
                        ui.add(
                            egui::TextEdit::singleline(&mut row.argument)
                                .desired_width(width_of(&argument_text, 140.0).min(full))
                                .hint_text(hint),
                        )
                        .labelled_by(to.id);
                    }
                    // Checked as it is typed.
                    if let Err(why) = row.action().check() {
                        ui.colored_label(ui.visuals().error_fg_color, why);
                    }
                    let label = format!("Remove {}", row.name);
                    let button = ui.small_button("Remove");
                    button.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &label));
                    if button.on_hover_text(&label).clicked() {
                        remove = Some(i);
                    }
                });
                ui.separator();
            }
        },
    );
    if let Some(i) = remove {
        panel.rows.remove(i);
    }
    let mut saved = None;
    ui.horizontal(|ui| {
        if ui.button("Add command").on_hover_text("Ctrl+N").clicked() {
            panel.add_row();
        }
        if ui.button("Save").on_hover_text("Check the list and write it to its file (Ctrl+S)").clicked() {
            saved = panel.save_reporting();
        }
        if panel.unsaved() {
            ui.colored_label(ui.visuals().warn_fg_color, "unsaved changes")
                .on_hover_text("Listening and the command line use the list as saved");
        }
    });
    if let Some(p) = &panel.problem {
        ui.colored_label(ui.visuals().error_fg_color, p);
    }
    if let Some(set) = saved {
        use_saved(app, set);
    }
    ui.separator();
    ui.strong("Heard");
    egui::ScrollArea::vertical().id_salt("command-log").auto_shrink([false, false]).show(ui, |ui| {
        // Each entry wraps within the panel: a long transcript never runs past its edge.
        for e in &app.commands.log {
            ui.horizontal_wrapped(|ui| {
                ui.monospace(format!("{:6.1}s", e.start));
                ui.label(&e.transcript);
                ui.strong(&e.decision);
                ui.weak(&e.scores);
                ui.label(&e.outcome);
            });
        }
        if app.commands.log.is_empty() {
            ui.weak("Press Listen and say a command.");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_programs_words_go_to_one_line_and_back() {
        let words: Vec<String> = ["touch", "/tmp/a b", "say \"hi\"", ""].map(str::to_owned).into();
        let line = join_words(words.iter());
        assert_eq!(line, r#"touch "/tmp/a b" "say \"hi\"" """#);
        assert_eq!(split_words(&line), words);
        assert_eq!(split_words("  ls   -l  "), ["ls", "-l"]);
    }

    #[test]
    fn each_action_is_edited_as_a_kind_and_its_text() {
        for action in [
            Action::Print,
            Action::Key { key: "Ctrl+Shift+T".into() },
            Action::Clipboard { text: None },
            Action::Clipboard { text: Some("hello".into()) },
            Action::Open { target: "https://example.org".into() },
            Action::Run { program: "notify-send".into(), args: vec!["done now".into()] },
            Action::Json,
        ] {
            let row = Row::from_command(Command {
                name: "n".into(),
                phrases: vec!["p".into()],
                action: action.clone(),
                line: 1,
            });
            assert_eq!(row.action(), action);
        }
    }
}
