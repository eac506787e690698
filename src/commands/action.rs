//! What a recognised command does: print it (the default), press a key, copy text, open a URL
//! or file, run a program with an explicit argument list, or emit a JSON line for scripts.
//! Transcript text never becomes part of a command line: a program gets it in its environment.

use std::process::Stdio;

/// An action as written in the command file: `action = { kind = "key", key = "Right" }`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Action {
    /// Print the command's name.
    Print,
    /// Press a key or a chord: "Right", "Space", "F5", "Ctrl+Shift+T", "a".
    Key { key: String },
    /// Copy `text`, or the transcript when no text is given, to the clipboard.
    Clipboard {
        #[serde(default)]
        text: Option<String>,
    },
    /// Open a URL or a file with the desktop's default program.
    Open { target: String },
    /// Run `program` with exactly these arguments (no shell). It finds the command's name and
    /// the transcript in `CROSSMODAL_COMMAND` and `CROSSMODAL_TRANSCRIPT`.
    Run {
        program: String,
        #[serde(default)]
        args: Vec<String>,
    },
    /// Print one JSON object: `{"command": …, "transcript": …, "score": …}`.
    Json,
}

/// A recognised command, as handed to its action.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Fired<'a> {
    pub command: &'a str,
    pub transcript: &'a str,
    pub score: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("\"{command}\": {program} could not be started: {reason}")]
    Program { command: String, program: String, reason: String },
    #[error("\"{command}\": no keyboard to press {key} on: {reason}")]
    Keyboard { command: String, key: String, reason: String },
    #[error("\"{command}\": the clipboard is not available: {reason}")]
    Clipboard { command: String, reason: String },
}

/// The environment variables a `run` program gets.
pub const ENV_COMMAND: &str = "CROSSMODAL_COMMAND";
pub const ENV_TRANSCRIPT: &str = "CROSSMODAL_TRANSCRIPT";

impl Action {
    /// Checks what can be checked when the file is read (key names); a missing program is only
    /// known when the action fires.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Self::Key { key } => parse_chord(key).map(|_| ()),
            Self::Run { program, .. } if program.trim().is_empty() => Err("run needs a program".into()),
            Self::Open { target } if target.trim().is_empty() => Err("open needs a target".into()),
            _ => Ok(()),
        }
    }

    /// What firing would do, in words (the dry run, and the log line after a real run).
    pub fn describe(&self, fired: &Fired<'_>) -> String {
        match self {
            Self::Print => format!("print \"{}\"", fired.command),
            Self::Key { key } => format!("press {key}"),
            Self::Clipboard { text } => {
                format!("copy \"{}\" to the clipboard", text.as_deref().unwrap_or(fired.transcript))
            }
            Self::Open { target } => format!("open {target}"),
            Self::Run { program, args } => format!("run {program:?} with arguments {args:?}"),
            Self::Json => "print a JSON line".into(),
        }
    }

    /// What it does, in words, before anything was said (the list of commands).
    pub fn summary(&self) -> String {
        match self {
            Self::Print => "print its name".into(),
            Self::Clipboard { text: None } => "copy what was said to the clipboard".into(),
            Self::Run { program, args } => {
                let quoted: Vec<String> = std::iter::once(program)
                    .chain(args)
                    .map(|a| {
                        if a.is_empty() || a.contains([' ', '"', '\'']) {
                            format!("{a:?}")
                        } else {
                            a.clone()
                        }
                    })
                    .collect();
                format!("run {}", quoted.join(" "))
            }
            _ => self.describe(&Fired { command: "", transcript: "", score: 0.0 }),
        }
    }

    /// Does it. Returns the line to show the user (for `print` and `json`, the output itself).
    pub fn fire(&self, fired: &Fired<'_>) -> Result<String, ActionError> {
        match self {
            Self::Print => return Ok(fired.command.to_owned()),
            Self::Json => return Ok(serde_json::to_string(fired).unwrap_or_default()),
            Self::Key { key } => press(key).map_err(|reason| ActionError::Keyboard {
                command: fired.command.into(),
                key: key.clone(),
                reason,
            })?,
            Self::Clipboard { text } => {
                let text = text.as_deref().unwrap_or(fired.transcript);
                arboard::Clipboard::new().and_then(|mut c| c.set_text(text.to_owned())).map_err(|e| {
                    ActionError::Clipboard { command: fired.command.into(), reason: e.to_string() }
                })?;
            }
            Self::Open { target } => {
                let (program, args) = opener(target);
                spawn(fired, program, &args)?;
            }
            Self::Run { program, args } => spawn(fired, program, args)?,
        }
        Ok(format!("{}: {}", fired.command, self.describe(fired)))
    }
}

#[cfg(target_os = "macos")]
fn opener(target: &str) -> (&'static str, Vec<String>) {
    ("open", vec![target.to_owned()])
}

#[cfg(target_os = "windows")]
fn opener(target: &str) -> (&'static str, Vec<String>) {
    ("explorer", vec![target.to_owned()])
}

#[cfg(not(any(target_os = "macos", target_os = "windows")))]
fn opener(target: &str) -> (&'static str, Vec<String>) {
    ("xdg-open", vec![target.to_owned()])
}

/// Starts a program without a shell and without waiting for it; a thread reaps it.
fn spawn(fired: &Fired<'_>, program: &str, args: &[String]) -> Result<(), ActionError> {
    let child = std::process::Command::new(program)
        .args(args)
        .env(ENV_COMMAND, fired.command)
        .env(ENV_TRANSCRIPT, fired.transcript)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| ActionError::Program {
            command: fired.command.into(),
            program: program.into(),
            reason: if e.kind() == std::io::ErrorKind::NotFound {
                "no such program".into()
            } else {
                e.to_string()
            },
        })?;
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    Ok(())
}

/// "Ctrl+Shift+T" → (modifiers, key).
fn parse_chord(spec: &str) -> Result<(Vec<enigo::Key>, enigo::Key), String> {
    let parts: Vec<&str> = spec.split('+').map(str::trim).collect();
    let Some((last, mods)) = parts.split_last() else { return Err("empty key".into()) };
    let modifiers = mods.iter().map(|m| modifier(m)).collect::<Result<Vec<_>, _>>()?;
    Ok((modifiers, key(last)?))
}

fn modifier(name: &str) -> Result<enigo::Key, String> {
    use enigo::Key;
    Ok(match name.to_ascii_lowercase().as_str() {
        "ctrl" | "control" => Key::Control,
        "shift" => Key::Shift,
        "alt" => Key::Alt,
        "super" | "meta" | "cmd" | "win" => Key::Meta,
        _ => return Err(format!("unknown modifier \"{name}\" (Ctrl, Shift, Alt, Super)")),
    })
}

fn key(name: &str) -> Result<enigo::Key, String> {
    use enigo::Key;
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return Ok(Key::Unicode(c.to_ascii_lowercase()));
    }
    Ok(match name.to_ascii_lowercase().as_str() {
        "right" => Key::RightArrow,
        "left" => Key::LeftArrow,
        "up" => Key::UpArrow,
        "down" => Key::DownArrow,
        "space" => Key::Space,
        "enter" | "return" => Key::Return,
        "escape" | "esc" => Key::Escape,
        "tab" => Key::Tab,
        "backspace" => Key::Backspace,
        "delete" => Key::Delete,
        "home" => Key::Home,
        "end" => Key::End,
        "pageup" => Key::PageUp,
        "pagedown" => Key::PageDown,
        "f1" => Key::F1,
        "f2" => Key::F2,
        "f3" => Key::F3,
        "f4" => Key::F4,
        "f5" => Key::F5,
        "f6" => Key::F6,
        "f7" => Key::F7,
        "f8" => Key::F8,
        "f9" => Key::F9,
        "f10" => Key::F10,
        "f11" => Key::F11,
        "f12" => Key::F12,
        _ => {
            return Err(format!(
                "unknown key \"{name}\" (a character, Right, Left, Up, Down, Space, Enter, Escape, Tab, Backspace, Delete, Home, End, PageUp, PageDown, F1–F12, with Ctrl+/Shift+/Alt+/Super+)"
            ));
        }
    })
}

fn press(spec: &str) -> Result<(), String> {
    use enigo::{Direction, Keyboard as _};
    let (mods, key) = parse_chord(spec)?;
    let mut enigo = enigo::Enigo::new(&enigo::Settings::default()).map_err(|e| e.to_string())?;
    for m in &mods {
        enigo.key(*m, Direction::Press).map_err(|e| e.to_string())?;
    }
    let pressed = enigo.key(key, Direction::Click).map_err(|e| e.to_string());
    for m in mods.iter().rev() {
        let _ = enigo.key(*m, Direction::Release);
    }
    pressed
}

/// Types `text` into the window that has the keyboard focus, the way this desktop allows
/// (`crate::typing`).
pub fn type_text(text: &str) -> Result<(), String> {
    crate::typing::Typist::detect()?.type_text(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fired() -> Fired<'static> {
        Fired { command: "save", transcript: "save it; rm -rf / $(reboot)", score: 0.9 }
    }

    #[test]
    fn chords_parse_and_bad_keys_are_named() {
        assert!(parse_chord("Ctrl+Shift+T").is_ok());
        assert!(parse_chord("Right").is_ok());
        assert!(parse_chord("Hyper+Q").expect_err("bad").contains("Hyper"));
        assert!(parse_chord("Rightt").expect_err("bad").contains("Rightt"));
    }

    #[test]
    fn a_program_gets_its_arguments_verbatim_and_the_transcript_only_in_its_environment() {
        let dir = tempfile::tempdir().expect("temp");
        let out = dir.path().join("out.txt");
        let script = format!(
            "printf '%s|' \"$@\" > '{}'; printf '%s|%s' \"${ENV_COMMAND}\" \"${ENV_TRANSCRIPT}\" >> '{}'",
            out.display(),
            out.display()
        );
        let action = Action::Run {
            program: "sh".into(),
            args: vec!["-c".into(), script, "sh".into(), "a b".into(), "$HOME".into()],
        };
        action.fire(&fired()).expect("runs");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let text = loop {
            let t = std::fs::read_to_string(&out).unwrap_or_default();
            if t.ends_with("(reboot)") || std::time::Instant::now() > deadline {
                break t;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert_eq!(text, "a b|$HOME|save|save it; rm -rf / $(reboot)");
    }

    #[test]
    fn a_missing_program_is_reported_when_it_fires() {
        let action = Action::Run { program: "/nonexistent/crossmodal-nothing".into(), args: vec![] };
        let err = action.fire(&fired()).expect_err("fails").to_string();
        assert!(err.contains("no such program") && err.contains("save"), "{err}");
    }

    #[test]
    fn json_and_print_give_their_lines() {
        assert_eq!(Action::Print.fire(&fired()).expect("prints"), "save");
        let line = Action::Json.fire(&fired()).expect("prints");
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(v["command"], "save");
        assert_eq!(v["transcript"], "save it; rm -rf / $(reboot)");
    }
}
