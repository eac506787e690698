//! A global shortcut on X11: a key chord grabbed on the root window, so that it reaches
//! crossmodal whichever window has the focus. It reports presses and releases (held keys do not
//! repeat), which is what push-to-talk needs.
//!
//! On Wayland, a desktop does not let a program see keys meant for other programs: the grab
//! works only while an X11 (`XWayland`) window has the focus. There, bind the desktop's own
//! shortcut to a command instead (README, "Push-to-talk and dictation").

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::Duration;

use x11rb::connection::Connection as _;
use x11rb::protocol::Event;
use x11rb::protocol::xkb::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{ConnectionExt as _, GrabMode, ModMask};
use x11rb::rust_connection::RustConnection;

use crate::engine::Notify;

/// A key chord such as `ctrl+alt+space`: modifiers and one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortcut {
    modifiers: ModMask,
    /// The key's X keysym.
    keysym: u32,
    /// How it is written for people (`Ctrl+Alt+Space`).
    display: String,
}

impl Default for Shortcut {
    fn default() -> Self {
        DEFAULT.parse().unwrap_or_else(|_| unreachable!("the default shortcut parses"))
    }
}

/// Push-to-talk's shortcut unless the person picks another.
pub const DEFAULT: &str = "ctrl+alt+space";

#[derive(Debug, thiserror::Error)]
pub enum ShortcutError {
    #[error("{0:?} is not a shortcut: write modifiers and one key, e.g. ctrl+alt+space or super+f9")]
    Malformed(String),
    #[error(
        "unknown key {0:?} in the shortcut: use a letter, a digit, space, tab, f1–f12, insert, home, end, pageup, pagedown, pause or menu"
    )]
    UnknownKey(String),
    #[error("no X11 display ({0}): a global shortcut needs X11 (or an X11 window focused under `XWayland`)")]
    NoDisplay(String),
    #[error("the keyboard has no key for {0}")]
    NoKeycode(String),
    #[error("{0} is already taken by another program: choose another shortcut")]
    Taken(String),
    #[error("the X server: {0}")]
    X11(String),
    #[error("typing: {0}")]
    Typing(String),
    #[error("`crossmodal dictate --toggle` cannot reach this dictation: {0}")]
    Toggle(String),
}

impl FromStr for Shortcut {
    type Err = ShortcutError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let malformed = || ShortcutError::Malformed(spec.to_owned());
        let parts: Vec<String> = spec.split('+').map(|p| p.trim().to_lowercase()).collect();
        let (key, mods) = parts.split_last().ok_or_else(malformed)?;
        if key.is_empty() {
            return Err(malformed());
        }
        let mut modifiers = ModMask::from(0u16);
        let mut display = Vec::new();
        for m in mods {
            let (mask, name) = match m.as_str() {
                "ctrl" | "control" => (ModMask::CONTROL, "Ctrl"),
                "alt" => (ModMask::M1, "Alt"),
                "shift" => (ModMask::SHIFT, "Shift"),
                "super" | "win" | "meta" => (ModMask::M4, "Super"),
                _ => return Err(malformed()),
            };
            if u16::from(modifiers) & u16::from(mask) != 0 {
                return Err(malformed());
            }
            modifiers |= mask;
            display.push(name.to_owned());
        }
        let (keysym, name) = keysym(key).ok_or_else(|| ShortcutError::UnknownKey(key.clone()))?;
        display.push(name);
        Ok(Self { modifiers, keysym, display: display.join("+") })
    }
}

impl fmt::Display for Shortcut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// The keysym of a key name, and the name as shown.
fn keysym(name: &str) -> Option<(u32, String)> {
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next())
        && (c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return Some((u32::from(c), c.to_ascii_uppercase().to_string()));
    }
    if let Some(n) = name.strip_prefix('f').and_then(|n| n.parse::<u32>().ok())
        && (1..=12).contains(&n)
    {
        return Some((0xffbe + n - 1, format!("F{n}")));
    }
    let (sym, shown) = match name {
        "space" => (0x20, "Space"),
        "tab" => (0xff09, "Tab"),
        "pause" => (0xff13, "Pause"),
        "insert" => (0xff63, "Insert"),
        "home" => (0xff50, "Home"),
        "end" => (0xff57, "End"),
        "pageup" => (0xff55, "PageUp"),
        "pagedown" => (0xff56, "PageDown"),
        "menu" => (0xff67, "Menu"),
        _ => return None,
    };
    Some((sym, shown.to_owned()))
}

/// What the shortcut did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEvent {
    Pressed,
    Released,
}

/// A grabbed shortcut; dropping it lets the key go.
pub struct Hotkey {
    stop: Arc<AtomicBool>,
    events: Receiver<KeyEvent>,
    thread: Option<JoinHandle<()>>,
}

/// How often the X connection is looked at for the shortcut's events.
const POLL: Duration = Duration::from_millis(5);

impl Hotkey {
    /// Grabs `shortcut` on the X display (`$DISPLAY`); `notify` runs after each press and
    /// release.
    pub fn grab(shortcut: &Shortcut, notify: &Notify) -> Result<Self, ShortcutError> {
        let (conn, screen) =
            RustConnection::connect(None).map_err(|e| ShortcutError::NoDisplay(e.to_string()))?;
        let x = |e: &dyn fmt::Display| ShortcutError::X11(e.to_string());
        let root = conn.setup().roots.get(screen).ok_or_else(|| x(&"no screen"))?.root;
        let keycode = keycode_of(&conn, shortcut.keysym)?
            .ok_or_else(|| ShortcutError::NoKeycode(shortcut.to_string()))?;
        // Held keys would otherwise arrive as a stream of releases and presses.
        if conn.xkb_use_extension(1, 0).map_err(|e| x(&e))?.reply().map_err(|e| x(&e))?.supported {
            let flag = xkb::PerClientFlag::DETECTABLE_AUTO_REPEAT;
            let none = xkb::BoolCtrl::from(0u32);
            let cookie = conn
                .xkb_per_client_flags(xkb::ID::USE_CORE_KBD.into(), flag, flag, none, none, none)
                .map_err(|e| x(&e))?;
            cookie.reply().map_err(|e| x(&e))?;
        }
        // Caps Lock and Num Lock must not stop the shortcut from working.
        let locks = [
            0u16,
            ModMask::LOCK.into(),
            ModMask::M2.into(),
            u16::from(ModMask::LOCK) | u16::from(ModMask::M2),
        ];
        for lock in locks {
            let modifiers = ModMask::from(u16::from(shortcut.modifiers) | lock);
            let grabbed = conn
                .grab_key(false, root, modifiers, keycode, GrabMode::ASYNC, GrabMode::ASYNC)
                .map_err(|e| x(&e))?
                .check();
            if let Err(e) = grabbed {
                return Err(match e {
                    x11rb::errors::ReplyError::X11Error(err)
                        if err.error_kind == x11rb::protocol::ErrorKind::Access =>
                    {
                        ShortcutError::Taken(shortcut.to_string())
                    }
                    other => x(&other),
                });
            }
        }
        conn.flush().map_err(|e| x(&e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, events) = mpsc::channel();
        let (halt, notify, held) = (Arc::clone(&stop), Arc::clone(notify), u16::from(shortcut.modifiers));
        let thread = std::thread::Builder::new()
            .name("crossmodal-hotkey".into())
            .spawn(move || {
                let mut down = false;
                while !halt.load(Ordering::Relaxed) {
                    let event = match conn.poll_for_event() {
                        Ok(Some(e)) => e,
                        Ok(None) => {
                            std::thread::sleep(POLL);
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!("the X connection closed: {e}");
                            return;
                        }
                    };
                    let change = match event {
                        Event::KeyPress(k) if k.detail == keycode && !down => Some(KeyEvent::Pressed),
                        Event::KeyRelease(k) if k.detail == keycode && down => Some(KeyEvent::Released),
                        _ => None,
                    };
                    if let Some(change) = change {
                        down = change == KeyEvent::Pressed;
                        // Released means all of it: what comes next may type, and a modifier
                        // still held would turn the typing into shortcuts.
                        if change == KeyEvent::Released {
                            wait_for_modifiers_up(&conn, root, held);
                        }
                        if tx.send(change).is_err() {
                            return;
                        }
                        notify();
                    }
                }
                for lock in locks {
                    let modifiers = ModMask::from(held | lock);
                    let _ = conn.ungrab_key(keycode, root, modifiers);
                }
                let _ = conn.flush();
            })
            .map_err(|e| x(&e))?;
        Ok(Self { stop, events, thread: Some(thread) })
    }

    /// Presses and releases that have arrived, without waiting.
    pub fn poll(&self) -> Vec<KeyEvent> {
        self.events.try_iter().collect()
    }
}

impl Drop for Hotkey {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits (up to half a second) until none of the `held` modifiers is down.
fn wait_for_modifiers_up(conn: &RustConnection, root: u32, held: u16) {
    for _ in 0..100 {
        let mask =
            conn.query_pointer(root).ok().and_then(|c| c.reply().ok()).map_or(0, |r| u16::from(r.mask));
        if mask & held == 0 {
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// The keycode that types `keysym` on this keyboard (unshifted or shifted).
fn keycode_of(conn: &RustConnection, keysym: u32) -> Result<Option<u8>, ShortcutError> {
    let x = |e: &dyn fmt::Display| ShortcutError::X11(e.to_string());
    let setup = conn.setup();
    let (min, max) = (setup.min_keycode, setup.max_keycode);
    let map = conn.get_keyboard_mapping(min, max - min + 1).map_err(|e| x(&e))?.reply().map_err(|e| x(&e))?;
    let per = usize::from(map.keysyms_per_keycode).max(1);
    Ok(map.keysyms.chunks(per).position(|syms| syms.contains(&keysym)).map(|i| min + i as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcuts_parse_and_show_as_people_write_them() {
        let s: Shortcut = "ctrl+alt+space".parse().expect("parses");
        assert_eq!(s.to_string(), "Ctrl+Alt+Space");
        assert_eq!(s.keysym, 0x20);
        assert_eq!(u16::from(s.modifiers), u16::from(ModMask::CONTROL) | u16::from(ModMask::M1));
        assert_eq!(" Super + F9 ".parse::<Shortcut>().expect("parses").to_string(), "Super+F9");
        assert_eq!("d".parse::<Shortcut>().expect("parses").keysym, u32::from('d'));
        assert_eq!(Shortcut::default().to_string(), "Ctrl+Alt+Space");
    }

    #[test]
    fn bad_shortcuts_say_what_is_wrong() {
        for (spec, expected) in [
            ("ctrl+", "is not a shortcut"),
            ("", "is not a shortcut"),
            ("hyper+a", "is not a shortcut"),
            ("ctrl+ctrl+a", "is not a shortcut"),
            ("ctrl+f13", "unknown key"),
            ("ctrl+alt+nosuchkey", "unknown key"),
        ] {
            let e = spec.parse::<Shortcut>().expect_err(spec).to_string();
            assert!(e.contains(expected), "{spec:?}: {e}");
        }
    }
}
