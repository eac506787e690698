//! Typing text into the window that has the focus, the way the desktop allows it:
//!
//! - X11: fake key events through the XTEST extension (enigo).
//! - Wayland: a program may not send keys to another program's window, except through the
//!   compositor's virtual-keyboard protocol (`wtype`, on wlroots desktops such as sway) or the
//!   kernel's uinput device (`ydotool`, with its daemon running). Whichever is installed is used.
//! - Neither: the text goes to the clipboard, and the person pastes it.
//! - Windows and macOS: the system's own key events (enigo).
//!
//! `CROSSMODAL_TYPE=x11|wtype|ydotool|clipboard` picks one by hand. The way chosen, and why, is
//! said where dictation starts (`Typist::describe`).

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// How text reaches the focused window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Way {
    /// The system's fake key events (enigo): X11's XTEST extension (also `XWayland` windows),
    /// Windows' `SendInput`, macOS's keyboard events.
    Keys,
    /// `wtype`: the Wayland compositor's virtual keyboard.
    Wtype(PathBuf),
    /// `ydotool`: the kernel's uinput device (needs `ydotoold` running).
    Ydotool(PathBuf),
    /// The clipboard: the person pastes.
    Clipboard,
}

/// The chosen way and why it was chosen.
#[derive(Debug, Clone)]
pub struct Typist {
    pub way: Way,
    pub why: String,
}

/// The desktop session, as its environment says.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub wayland: bool,
    pub x11: bool,
    /// `CROSSMODAL_TYPE`, if set.
    pub asked: Option<String>,
}

impl Session {
    pub fn from_env() -> Self {
        let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        let wayland = set("WAYLAND_DISPLAY")
            || std::env::var("XDG_SESSION_TYPE").is_ok_and(|t| t.eq_ignore_ascii_case("wayland"));
        Self {
            wayland,
            x11: set("DISPLAY"),
            asked: std::env::var("CROSSMODAL_TYPE").ok().filter(|v| !v.is_empty()),
        }
    }
}

/// The first `name` on `PATH` that is a file.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

impl Typist {
    /// The way this session allows, with `find` locating helper programs (`on_path` normally).
    pub fn choose(session: &Session, find: impl Fn(&str) -> Option<PathBuf>) -> Result<Self, String> {
        let tool = |name: &str, why: String, make: fn(PathBuf) -> Way| {
            find(name).map(|p| Self { way: make(p), why }).ok_or_else(|| format!("{name} is not installed"))
        };
        if let Some(asked) = &session.asked {
            let why = format!("CROSSMODAL_TYPE={asked}");
            return match asked.to_ascii_lowercase().as_str() {
                "x11" | "xtest" | "keys" => Ok(Self { way: Way::Keys, why }),
                "wtype" => tool("wtype", why, Way::Wtype),
                "ydotool" => tool("ydotool", why, Way::Ydotool),
                "clipboard" => Ok(Self { way: Way::Clipboard, why }),
                other => Err(format!("CROSSMODAL_TYPE={other} is not one of x11, wtype, ydotool, clipboard")),
            };
        }
        if cfg!(any(windows, target_os = "macos")) {
            return Ok(Self { way: Way::Keys, why: "the system's own key events".into() });
        }
        if session.wayland {
            if let Ok(t) =
                tool("wtype", "a Wayland session: the compositor's virtual keyboard".into(), Way::Wtype)
            {
                return Ok(t);
            }
            if let Ok(t) =
                tool("ydotool", "a Wayland session without wtype: the uinput device".into(), Way::Ydotool)
            {
                return Ok(t);
            }
            return Ok(Self {
                way: Way::Clipboard,
                why: "a Wayland session with neither wtype nor ydotool installed (install wtype to type \
                      directly)"
                    .into(),
            });
        }
        if session.x11 {
            return Ok(Self { way: Way::Keys, why: "an X11 session".into() });
        }
        Ok(Self {
            way: Way::Clipboard,
            why: "no desktop session found (neither DISPLAY nor WAYLAND_DISPLAY)".into(),
        })
    }

    /// The way this desktop allows (`CROSSMODAL_TYPE` first).
    pub fn detect() -> Result<Self, String> {
        Self::choose(&Session::from_env(), on_path)
    }

    /// One line for people: "typing with wtype (a Wayland session: …)".
    pub fn describe(&self) -> String {
        let how = match &self.way {
            Way::Keys if cfg!(windows) => "typing through Windows' SendInput".to_owned(),
            Way::Keys if cfg!(target_os = "macos") => "typing through macOS key events".to_owned(),
            Way::Keys => "typing through X11's XTEST".to_owned(),
            Way::Wtype(_) => "typing with wtype".to_owned(),
            Way::Ydotool(_) => "typing with ydotool".to_owned(),
            Way::Clipboard => "copying to the clipboard (paste with Ctrl+V)".to_owned(),
        };
        format!("{how}: {}", self.why)
    }

    /// Types `text` into the focused window (or copies it, for `Way::Clipboard`).
    pub fn type_text(&self, text: &str) -> Result<(), String> {
        match &self.way {
            Way::Keys => keys(text),
            // wtype brings a new virtual keyboard with its own keymap each run; on a busy machine
            // the first key could reach the window before that keymap did ("o forward" for "Go
            // forward" under headless sway, 3 of 105 runs with busy loops beside it; 0 of 105
            // with the pause). `--` ends its options: text that starts with a dash is typed.
            Way::Wtype(p) => run(p, &["-s", WTYPE_KEYMAP_PAUSE_MS, "--"], text),
            Way::Ydotool(p) => run(p, &["type", "--"], text),
            Way::Clipboard => arboard::Clipboard::new()
                .and_then(|mut c| c.set_text(text.to_owned()))
                .map_err(|e| format!("the clipboard: {e}")),
        }
    }
}

/// How long wtype waits (ms) after handing over its keymap before the first key.
const WTYPE_KEYMAP_PAUSE_MS: &str = "40";

/// Runs a typing program with the text as its last argument; its error output is the reason
/// when it fails.
fn run(program: &std::path::Path, args: &[&str], text: &str) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .arg(text)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let mut why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if why.is_empty() {
        why = out.status.to_string();
    }
    Err(format!("{} failed: {why}", program.display()))
}

/// Fake key events (X11: through XTEST, where characters the keyboard lacks are mapped to a spare
/// key while they are typed), by enigo.
fn keys(text: &str) -> Result<(), String> {
    use enigo::Keyboard as _;
    // enigo waits 12 ms per key by default; the server needs no pause between fake key events.
    let settings = enigo::Settings { linux_delay: 0, ..enigo::Settings::default() };
    let mut enigo = enigo::Enigo::new(&settings).map_err(|e| format!("cannot type here: {e}"))?;
    enigo.text(text).map_err(|e| format!("typing failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(wayland: bool, x11: bool, asked: Option<&str>) -> Session {
        Session { wayland, x11, asked: asked.map(str::to_owned) }
    }

    fn installed(names: &'static [&'static str]) -> impl Fn(&str) -> Option<PathBuf> {
        move |n| names.contains(&n).then(|| PathBuf::from(format!("/usr/bin/{n}")))
    }

    #[test]
    fn each_desktop_gets_the_way_it_allows_and_says_why() {
        let t = Typist::choose(&session(false, true, None), installed(&[])).expect("x11");
        assert_eq!(t.way, Way::Keys);
        // Wayland (with XWayland's DISPLAY too): wtype, then ydotool, then the clipboard.
        let t = Typist::choose(&session(true, true, None), installed(&["wtype", "ydotool"])).expect("wl");
        assert_eq!(t.way, Way::Wtype("/usr/bin/wtype".into()));
        assert!(t.describe().starts_with("typing with wtype: a Wayland session"), "{}", t.describe());
        let t = Typist::choose(&session(true, false, None), installed(&["ydotool"])).expect("wl");
        assert_eq!(t.way, Way::Ydotool("/usr/bin/ydotool".into()));
        let t = Typist::choose(&session(true, false, None), installed(&[])).expect("wl");
        assert_eq!(t.way, Way::Clipboard);
        assert!(t.describe().contains("install wtype"), "{}", t.describe());
        let t = Typist::choose(&session(false, false, None), installed(&[])).expect("none");
        assert_eq!(t.way, Way::Clipboard);
    }

    #[test]
    fn a_way_asked_for_is_used_or_refused_with_the_reason() {
        let t = Typist::choose(&session(true, false, Some("x11")), installed(&["wtype"])).expect("asked");
        assert_eq!((t.way, t.why.as_str()), (Way::Keys, "CROSSMODAL_TYPE=x11"));
        let e = Typist::choose(&session(true, false, Some("wtype")), installed(&[])).expect_err("missing");
        assert_eq!(e, "wtype is not installed");
        let e = Typist::choose(&session(true, false, Some("telepathy")), installed(&[])).expect_err("bad");
        assert!(e.contains("telepathy") && e.contains("x11, wtype, ydotool, clipboard"), "{e}");
    }

    #[test]
    fn a_failing_typing_program_gives_its_reason() {
        let e = run(std::path::Path::new("sh"), &["-c", "echo 'no seat' >&2; exit 1", "sh"], "x")
            .expect_err("fails");
        assert!(e.ends_with("failed: no seat"), "{e}");
    }
}
