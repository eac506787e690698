//! Voice commands: a command set written in TOML, the matcher that decides which command an
//! utterance meant (or none), and the actions a command fires.
//!
//! ```toml
//! [[command]]
//! name = "next slide"
//! phrases = ["next slide", "go forward"]   # one or more ways to say it
//! action = { kind = "key", key = "Right" } # optional; default prints the match
//! ```

pub mod action;
pub mod grammar;
pub mod matcher;
pub mod similarity;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use action::Action;
pub use matcher::{Decision, Matcher};

/// The command set that ships with the app (`assets/commands.toml`).
pub const DEFAULT_COMMANDS: &str = include_str!("../../assets/commands.toml");

#[derive(Debug, thiserror::Error)]
pub enum CommandsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{origin}:{line}:{column}: {message}")]
    Syntax { origin: String, line: usize, column: usize, message: String },
    #[error("{origin}:{line}: {message}")]
    Invalid { origin: String, line: usize, message: String },
    #[error("{origin}: no commands: add at least one [[command]] with a name and phrases")]
    Empty { origin: String },
}

/// What became of a decision once its command's action was fired.
#[derive(Debug)]
pub enum Outcome {
    /// No command was accepted (or the accepted one is not in the set any more).
    Nothing,
    /// A dry run: what the action would do.
    WouldDo {
        command: String,
        action: String,
    },
    /// The action ran: the line to show (for `print` and `json`, its output).
    Done {
        command: String,
        action: String,
        line: String,
    },
    Failed {
        command: String,
        action: String,
        error: action::ActionError,
    },
}

/// One command: its name, the ways to say it, and what it does.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub name: String,
    pub phrases: Vec<String>,
    pub action: Action,
    /// Where it is defined (1-based line), for messages.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommandSet {
    pub commands: Vec<Command>,
    /// The file it came from, or a description ("built-in").
    pub origin: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    command: Vec<toml::Spanned<CommandToml>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandToml {
    name: toml::Spanned<String>,
    #[serde(default)]
    phrases: Option<toml::Spanned<Vec<String>>>,
    #[serde(default)]
    action: Option<toml::Spanned<Action>>,
}

fn line_of(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl CommandSet {
    /// Parses and checks a command set; every error names the line it is on.
    pub fn parse(text: &str, origin: &str) -> Result<Self, CommandsError> {
        let file: FileToml = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_of(text, s.start));
            CommandsError::Syntax {
                origin: origin.to_owned(),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;
        let invalid = |offset: usize, message: String| CommandsError::Invalid {
            origin: origin.to_owned(),
            line: line_of(text, offset).0,
            message,
        };
        let mut commands: Vec<Command> = Vec::new();
        for entry in file.command {
            let at = entry.span().start;
            let c = entry.into_inner();
            let name_at = c.name.span().start;
            let name = c.name.into_inner().trim().to_owned();
            if name.is_empty() {
                return Err(invalid(name_at, "a command's name is empty".into()));
            }
            if let Some(first) = commands.iter().find(|o| o.name.eq_ignore_ascii_case(&name)) {
                return Err(invalid(
                    name_at,
                    format!("\"{name}\" is defined twice (first on line {})", first.line),
                ));
            }
            let Some(phrases) = c.phrases else {
                return Err(invalid(at, format!("\"{name}\" has no phrases: add phrases = [\"…\"]")));
            };
            let phrases_at = phrases.span().start;
            let phrases: Vec<String> = phrases.into_inner().iter().map(|p| p.trim().to_owned()).collect();
            if phrases.is_empty() || phrases.iter().all(String::is_empty) {
                return Err(invalid(phrases_at, format!("\"{name}\" has no phrases: add phrases = [\"…\"]")));
            }
            if phrases.iter().any(String::is_empty) {
                return Err(invalid(phrases_at, format!("\"{name}\" has an empty phrase")));
            }
            // The same words under two commands: which one was meant could not be told.
            let said = |p: &str| crate::speech::wer::normalise(p);
            for phrase in &phrases {
                let words = said(phrase);
                if let Some(other) = commands.iter().find(|o| o.phrases.iter().any(|q| said(q) == words)) {
                    return Err(invalid(
                        phrases_at,
                        format!(
                            "\"{phrase}\" is a phrase of both \"{}\" (line {}) and \"{name}\": say each command differently",
                            other.name, other.line
                        ),
                    ));
                }
            }
            let action = match c.action {
                Some(a) => {
                    let a_at = a.span().start;
                    let a = a.into_inner();
                    a.check().map_err(|why| invalid(a_at, format!("\"{name}\": {why}")))?;
                    a
                }
                None => Action::Print,
            };
            commands.push(Command { name, phrases, action, line: line_of(text, at).0 });
        }
        if commands.is_empty() {
            return Err(CommandsError::Empty { origin: origin.to_owned() });
        }
        Ok(Self { commands, origin: origin.to_owned() })
    }

    pub fn load(path: &Path) -> Result<Self, CommandsError> {
        let bytes =
            std::fs::read(path).map_err(|source| CommandsError::Io { path: path.to_owned(), source })?;
        let origin = path.display().to_string();
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = String::from_utf8_lossy(&e.as_bytes()[..at]).matches('\n').count() + 1;
            CommandsError::Invalid {
                origin: origin.clone(),
                line,
                message: "not UTF-8 text: save the command file as UTF-8".into(),
            }
        })?;
        Self::parse(&text, &origin)
    }

    /// The set that ships with the app.
    /// The user's set: their command file where they have one (the window saves it there),
    /// else the built-in set. One set for the window and every command-line use.
    pub fn users() -> Result<Self, CommandsError> {
        match user_file().filter(|p| p.exists()) {
            Some(path) => Self::load(&path),
            None => Ok(Self::built_in()),
        }
    }

    pub fn built_in() -> Self {
        #[allow(clippy::expect_used)] // checked by a test: the shipped file parses
        Self::parse(DEFAULT_COMMANDS, "built-in commands.toml").expect("the shipped commands.toml is valid")
    }

    /// One command per phrase, named by it (duplicates dropped), each printing its match.
    pub fn from_phrases<S: AsRef<str>>(phrases: &[S], origin: &str) -> Self {
        let mut commands: Vec<Command> = Vec::new();
        for p in phrases {
            let p = p.as_ref().trim();
            if !p.is_empty() && !commands.iter().any(|c| c.name == p) {
                let line = commands.len() * 4 + 1;
                commands.push(Command {
                    name: p.to_owned(),
                    phrases: vec![p.to_owned()],
                    action: Action::Print,
                    line,
                });
            }
        }
        Self { commands, origin: origin.to_owned() }
    }

    /// The set written as a command file.
    pub fn to_toml(&self) -> String {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            command: Vec<OutCommand<'a>>,
        }
        #[derive(serde::Serialize)]
        struct OutCommand<'a> {
            name: &'a str,
            phrases: &'a [String],
            action: &'a Action,
        }
        let out = Out {
            command: self
                .commands
                .iter()
                .map(|c| OutCommand { name: &c.name, phrases: &c.phrases, action: &c.action })
                .collect(),
        };
        toml::to_string(&out).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// Checks a set made in memory (the window's list) as if it were read from its file:
    /// the set as its file would read back, and that file's text.
    pub fn checked(&self) -> Result<(Self, String), CommandsError> {
        let invalid = |line: usize, message: String| CommandsError::Invalid {
            origin: self.origin.clone(),
            line,
            message,
        };
        if self.is_empty() {
            return Err(CommandsError::Empty { origin: self.origin.clone() });
        }
        for (i, c) in self.commands.iter().enumerate() {
            if c.name.trim().is_empty() {
                return Err(invalid(c.line, format!("command {} has no name", i + 1)));
            }
            if c.phrases.iter().any(|p| p.trim().is_empty()) {
                return Err(invalid(c.line, format!("\"{}\" has an empty phrase", c.name.trim())));
            }
        }
        let text = self.to_toml();
        Ok((Self::parse(&text, &self.origin)?, text))
    }

    /// Checks the set and writes it to `path` in one step (a temporary file renamed over the
    /// old one). A file there that does not parse is kept beside it as `NAME.toml.broken`
    /// rather than overwritten. Returns the set as written.
    pub fn save(&self, path: &Path) -> Result<Self, CommandsError> {
        let (set, text) = self.checked()?;
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CommandsError::Io { path, source }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        if path.exists() && Self::load(path).is_err() {
            std::fs::rename(path, path.with_extension("toml.broken")).map_err(io(path))?;
        }
        let tmp = path.with_extension("toml.partial");
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))?;
        Ok(set)
    }

    /// Does what the command a decision accepted says; with `dry_run`, only says what it would
    /// do. A failing action is reported in the outcome.
    pub fn fire(&self, decision: &Decision, dry_run: bool) -> Outcome {
        let Some(name) = &decision.command else { return Outcome::Nothing };
        let Some(command) = self.commands.iter().find(|c| &c.name == name) else { return Outcome::Nothing };
        let command_action = &command.action;
        let score = decision.scores.first().map_or(0.0, |s| s.score);
        let fired = action::Fired { command: name, transcript: &decision.transcript, score };
        let (command, action) = (name.clone(), command_action.describe(&fired));
        if dry_run {
            return Outcome::WouldDo { command, action };
        }
        match command_action.fire(&fired) {
            Ok(line) => Outcome::Done { command, action, line },
            Err(error) => Outcome::Failed { command, action, error },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }
}

/// A command file that is re-read when it changes on disk. A change that does not parse keeps
/// the last good set and reports why.
#[derive(Debug)]
pub struct WatchedCommands {
    path: PathBuf,
    stamp: Option<(SystemTime, u64)>,
    set: CommandSet,
}

impl WatchedCommands {
    pub fn open(path: &Path) -> Result<Self, CommandsError> {
        let set = CommandSet::load(path)?;
        Ok(Self { path: path.to_owned(), stamp: stamp(path), set })
    }

    /// The user's set (`CommandSet::users`): their file, followed; the built-in set until they
    /// have one (the file is looked for again, so one saved from the window is taken up).
    pub fn users() -> Result<Self, CommandsError> {
        match user_file() {
            Some(path) if path.exists() => Self::open(&path),
            Some(path) => Ok(Self { path, stamp: None, set: CommandSet::built_in() }),
            None => Ok(Self { path: PathBuf::new(), stamp: None, set: CommandSet::built_in() }),
        }
    }

    pub fn set(&self) -> &CommandSet {
        &self.set
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Re-reads the file if its time or size changed: `None` when nothing changed, the result
    /// of reloading otherwise (on error the previous set stays in use).
    pub fn reload_if_changed(&mut self) -> Option<Result<&CommandSet, CommandsError>> {
        let now = stamp(&self.path);
        if now == self.stamp {
            return None;
        }
        self.stamp = now;
        Some(match CommandSet::load(&self.path) {
            Ok(set) => {
                self.set = set;
                Ok(&self.set)
            }
            Err(e) => Err(e),
        })
    }
}

/// The user's command file: `commands.toml` in the config folder (`CROSSMODAL_CONFIG`).
pub fn user_file() -> Option<PathBuf> {
    crate::audio::capture::config_dir().map(|c| c.join("commands.toml"))
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        CommandSet::parse(text, "c.toml").expect_err("refused").to_string()
    }

    #[test]
    fn the_issue_shape_parses() {
        let set = CommandSet::parse(
            "[[command]]\nname = \"next slide\"\nphrases = [\"next slide\", \"go forward\"]\naction = { kind = \"key\", key = \"Right\" }\n\n[[command]]\nname = \"hello\"\nphrases = [\"hello there\"]\n",
            "c.toml",
        )
        .expect("parses");
        assert_eq!(set.len(), 2);
        assert_eq!(set.commands[0].phrases, ["next slide", "go forward"]);
        assert_eq!(set.commands[0].action, Action::Key { key: "Right".into() });
        assert_eq!(set.commands[1].action, Action::Print);
        assert_eq!(set.commands[1].line, 6);
    }

    #[test]
    fn errors_name_the_line() {
        assert!(
            err("[[command]]\nname = \"a\"\nphrases = [\"a\"\n").starts_with("c.toml:3:"),
            "{}",
            err("[[command]]\nname = \"a\"\nphrases = [\"a\"\n")
        );
        let dup = err(
            "[[command]]\nname = \"a\"\nphrases = [\"a\"]\n[[command]]\nname = \"A\"\nphrases = [\"b\"]\n",
        );
        assert!(dup.starts_with("c.toml:5:") && dup.contains("first on line 1"), "{dup}");
        let none = err("[[command]]\nname = \"a\"\nphrases = []\n");
        assert!(none.starts_with("c.toml:3:") && none.contains("no phrases"), "{none}");
        let missing = err("\n[[command]]\nname = \"a\"\n");
        assert!(missing.contains("no phrases"), "{missing}");
        assert!(err("").contains("no commands"));
        let kind = err("[[command]]\nname = \"a\"\nphrases = [\"a\"]\naction = { kind = \"explode\" }\n");
        assert!(kind.starts_with("c.toml:4:") && kind.contains("explode"), "{kind}");
        let key = err(
            "[[command]]\nname = \"a\"\nphrases = [\"a\"]\naction = { kind = \"key\", key = \"Hyper+Q\" }\n",
        );
        assert!(key.starts_with("c.toml:4:") && key.contains("Hyper"), "{key}");
        let unknown = err("[[command]]\nname = \"a\"\nphrase = [\"a\"]\n");
        assert!(unknown.starts_with("c.toml:3:") && unknown.contains("phrase"), "{unknown}");
        let nameless = err("[[command]]\nname = \"\"\nphrases = [\"a\"]\n");
        assert!(nameless.starts_with("c.toml:2:") && nameless.contains("name is empty"), "{nameless}");
        let not_a_list = err("[[command]]\nname = \"a\"\nphrases = \"x\"\n");
        assert!(not_a_list.starts_with("c.toml:3:") && not_a_list.contains("sequence"), "{not_a_list}");
        let no_program = err(
            "[[command]]\nname = \"a\"\nphrases = [\"a\"]\naction = { kind = \"run\", program = \" \" }\n",
        );
        assert!(
            no_program.starts_with("c.toml:4:") && no_program.contains("needs a program"),
            "{no_program}"
        );
        // The same words under two commands, written differently ("10" is "ten" said).
        let twice = err(
            "[[command]]\nname = \"a\"\nphrases = [\"ten of clubs\"]\n[[command]]\nname = \"b\"\nphrases = [\"x\", \"10 of Clubs\"]\n",
        );
        assert!(twice.starts_with("c.toml:6:") && twice.contains("\"a\" (line 1) and \"b\""), "{twice}");
    }

    #[test]
    fn a_file_that_is_not_utf8_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, b"[[command]]\nname = \"caf\xe9\"\nphrases = [\"a\"]\n").expect("write");
        let e = CommandSet::load(&path).expect_err("not UTF-8").to_string();
        assert!(e.ends_with("c.toml:2: not UTF-8 text: save the command file as UTF-8"), "{e}");
    }

    #[test]
    fn a_set_written_as_toml_reads_back_the_same() {
        let set = CommandSet::built_in();
        let again = CommandSet::parse(&set.to_toml(), "built-in commands.toml").expect("parses");
        assert_eq!(
            again.commands.iter().map(|c| (&c.name, &c.phrases, &c.action)).collect::<Vec<_>>(),
            set.commands.iter().map(|c| (&c.name, &c.phrases, &c.action)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_list_made_in_memory_is_checked_before_it_is_saved() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("c.toml");
        let mut set = CommandSet::from_phrases(&["lights on"], &path.display().to_string());
        set.commands[0].phrases.push("  ".into());
        assert!(set.save(&path).expect_err("refused").to_string().contains("empty phrase"));
        assert!(!path.exists(), "a refused list was written");
        set.commands.clear();
        assert!(matches!(set.save(&path), Err(CommandsError::Empty { .. })));
        set.commands = CommandSet::from_phrases(&["lights on"], "x").commands;
        set.save(&path).expect("saved");
        assert_eq!(CommandSet::load(&path).expect("reads back").commands[0].name, "lights on");
    }

    #[test]
    fn a_broken_file_is_set_aside_not_overwritten() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[[command]]\nname = ").expect("write");
        CommandSet::built_in().save(&path).expect("saved");
        assert_eq!(
            std::fs::read_to_string(path.with_extension("toml.broken")).expect("kept"),
            "[[command]]\nname = "
        );
        assert!(CommandSet::load(&path).is_ok());
    }

    #[test]
    fn firing_does_what_the_accepted_command_says_and_nothing_for_no_match() {
        let set = CommandSet::from_phrases(&["lights on"], "x");
        let mut d = Decision {
            transcript: "Lights on.".into(),
            command: None,
            scores: Vec::new(),
            rejected: None,
            begins_another: false,
        };
        assert!(matches!(set.fire(&d, false), Outcome::Nothing));
        d.command = Some("lights on".into());
        match set.fire(&d, true) {
            Outcome::WouldDo { command, action } => {
                assert_eq!((command.as_str(), action.as_str()), ("lights on", "print \"lights on\""));
            }
            other => panic!("{other:?}"),
        }
        match set.fire(&d, false) {
            Outcome::Done { line, .. } => assert_eq!(line, "lights on"),
            other => panic!("{other:?}"),
        }
        d.command = Some("gone".into());
        assert!(matches!(set.fire(&d, false), Outcome::Nothing));
    }

    #[test]
    fn the_shipped_set_parses() {
        assert!(CommandSet::built_in().len() >= 5);
    }

    #[test]
    fn a_changed_file_reloads_and_a_broken_change_keeps_the_old_set() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[[command]]\nname = \"a\"\nphrases = [\"a\"]\n").expect("write");
        let mut watched = WatchedCommands::open(&path).expect("opens");
        assert!(watched.reload_if_changed().is_none());
        std::fs::write(&path, "[[command]]\nname = \"b\"\nphrases = [\"bee\", \"be\"]\n").expect("write");
        let reloaded = watched.reload_if_changed().expect("noticed").expect("parses");
        assert_eq!(reloaded.commands[0].name, "b");
        std::fs::write(&path, "[[command]]\nname = ").expect("write");
        assert!(watched.reload_if_changed().expect("noticed").is_err());
        assert_eq!(watched.set().commands[0].name, "b");
    }
}
