//! A global shortcut: a key chord that reaches crossmodal whichever window has the focus: on X11
//! grabbed on the root window, on Windows and macOS read from the keyboard's state. It reports presses and releases (held keys do not
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
use std::time::{Duration, Instant};

use crate::engine::Notify;

/// The modifiers of a shortcut, whatever the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Modifiers(u8);

impl Modifiers {
    const CTRL: Self = Self(1);
    const ALT: Self = Self(2);
    const SHIFT: Self = Self(4);
    const SUPER: Self = Self(8);

    fn has(self, m: Self) -> bool {
        self.0 & m.0 != 0
    }
}

/// A key chord such as `ctrl+alt+space`: modifiers and one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortcut {
    modifiers: Modifiers,
    /// The key, as its X keysym (which names keys on every platform here).
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
    #[error("{0}")]
    Unsupported(&'static str),
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
        let mut modifiers = Modifiers::default();
        let mut display = Vec::new();
        for m in mods {
            let (mask, name) = match m.as_str() {
                "ctrl" | "control" => (Modifiers::CTRL, "Ctrl"),
                "alt" => (Modifiers::ALT, "Alt"),
                "shift" => (Modifiers::SHIFT, "Shift"),
                "super" | "win" | "meta" => (Modifiers::SUPER, "Super"),
                _ => return Err(malformed()),
            };
            if modifiers.has(mask) {
                return Err(malformed());
            }
            modifiers.0 |= mask.0;
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
    events: Receiver<(KeyEvent, Instant)>,
    thread: Option<JoinHandle<()>>,
}

/// How often the keyboard is looked at for the shortcut's events.
const POLL: Duration = Duration::from_millis(5);

impl Hotkey {
    /// Grabs `shortcut` for the whole desktop; `notify` runs after each press and release.
    pub fn grab(shortcut: &Shortcut, notify: &Notify) -> Result<Self, ShortcutError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, events) = mpsc::channel();
        let thread = platform::watch(shortcut, Arc::clone(&stop), tx, Arc::clone(notify))?;
        Ok(Self { stop, events, thread: Some(thread) })
    }

    /// The presses and releases since the last call, each with when the keyboard showed it
    /// (what is said from the press on is listened to, however late this is called).
    pub fn poll(&self) -> Vec<(KeyEvent, Instant)> {
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

/// X11: the chord grabbed on the root window (`$DISPLAY`).
#[cfg(all(unix, not(target_os = "macos")))]
mod platform {
    use std::fmt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::Sender;
    use std::thread::JoinHandle;
    use std::time::Instant;

    use x11rb::connection::Connection as _;
    use x11rb::protocol::Event;
    use x11rb::protocol::xkb::{self, ConnectionExt as _};
    use x11rb::protocol::xproto::{ConnectionExt as _, GrabMode, ModMask};
    use x11rb::rust_connection::RustConnection;

    use super::{KeyEvent, Modifiers, POLL, Shortcut, ShortcutError};
    use crate::engine::Notify;

    fn mask(m: Modifiers) -> u16 {
        [
            (Modifiers::CTRL, ModMask::CONTROL),
            (Modifiers::ALT, ModMask::M1),
            (Modifiers::SHIFT, ModMask::SHIFT),
            (Modifiers::SUPER, ModMask::M4),
        ]
        .into_iter()
        .filter(|(ours, _)| m.has(*ours))
        .fold(0, |acc, (_, x)| acc | u16::from(x))
    }

    pub(super) fn watch(
        shortcut: &Shortcut,
        halt: Arc<AtomicBool>,
        tx: Sender<(KeyEvent, Instant)>,
        notify: Notify,
    ) -> Result<JoinHandle<()>, ShortcutError> {
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
        let held = mask(shortcut.modifiers);
        for lock in locks {
            let modifiers = ModMask::from(held | lock);
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
        std::thread::Builder::new()
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
                        let seen = Instant::now();
                        down = change == KeyEvent::Pressed;
                        // Released means all of it: what comes next may type, and a modifier
                        // still held would turn the typing into shortcuts.
                        if change == KeyEvent::Released {
                            wait_for_modifiers_up(&conn, root, held);
                        }
                        if tx.send((change, seen)).is_err() {
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
            .map_err(|e| x(&e))
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
        let map =
            conn.get_keyboard_mapping(min, max - min + 1).map_err(|e| x(&e))?.reply().map_err(|e| x(&e))?;
        let per = usize::from(map.keysyms_per_keycode).max(1);
        Ok(map.keysyms.chunks(per).position(|syms| syms.contains(&keysym)).map(|i| min + i as u8))
    }
}

/// Windows and macOS: the keyboard's state read every few milliseconds (device_query), which sees
/// the chord whichever program has the focus; the keys still reach that program too.
#[cfg(any(windows, target_os = "macos"))]
mod platform {
    use std::str::FromStr as _;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::Sender;
    use std::thread::JoinHandle;
    use std::time::Instant;

    use device_query::{DeviceQuery as _, DeviceState, Keycode};

    use super::{KeyEvent, Modifiers, POLL, Shortcut, ShortcutError};
    use crate::engine::Notify;

    /// The key named by an X keysym, as device_query names it.
    fn keycode(keysym: u32) -> Option<Keycode> {
        let name = match keysym {
            0x61..=0x7a => char::from_u32(keysym)?.to_ascii_uppercase().to_string(),
            0x30..=0x39 => format!("Key{}", char::from_u32(keysym)?),
            0xffbe..=0xffc9 => format!("F{}", keysym - 0xffbe + 1),
            0x20 => "Space".into(),
            0xff09 => "Tab".into(),
            0xff63 => "Insert".into(),
            0xff50 => "Home".into(),
            0xff57 => "End".into(),
            0xff55 => "PageUp".into(),
            0xff56 => "PageDown".into(),
            _ => return None,
        };
        Keycode::from_str(&name).ok()
    }

    /// The keys that count as each modifier (left or right; Option and Command on a Mac).
    fn modifier_keys(m: Modifiers) -> &'static [Keycode] {
        match m {
            Modifiers::CTRL => &[Keycode::LControl, Keycode::RControl],
            Modifiers::ALT => &[Keycode::LAlt, Keycode::RAlt, Keycode::LOption, Keycode::ROption],
            Modifiers::SHIFT => &[Keycode::LShift, Keycode::RShift],
            _ => &[Keycode::LMeta, Keycode::RMeta, Keycode::Command, Keycode::RCommand],
        }
    }

    const ALL: [Modifiers; 4] = [Modifiers::CTRL, Modifiers::ALT, Modifiers::SHIFT, Modifiers::SUPER];

    /// Whether the chord (`key` and every modifier of `m`) is down.
    fn chord_down(down: &[Keycode], key: Keycode, m: Modifiers) -> bool {
        down.contains(&key)
            && ALL.iter().filter(|x| m.has(**x)).all(|x| modifier_keys(*x).iter().any(|k| down.contains(k)))
    }

    fn any_modifier_down(down: &[Keycode], m: Modifiers) -> bool {
        ALL.iter().filter(|x| m.has(**x)).any(|x| modifier_keys(*x).iter().any(|k| down.contains(k)))
    }

    pub(super) fn watch(
        shortcut: &Shortcut,
        halt: Arc<AtomicBool>,
        tx: Sender<(KeyEvent, Instant)>,
        notify: Notify,
    ) -> Result<JoinHandle<()>, ShortcutError> {
        let key = keycode(shortcut.keysym).ok_or_else(|| ShortcutError::NoKeycode(shortcut.to_string()))?;
        let state = DeviceState::checked_new().ok_or(ShortcutError::Unsupported(
            "the keyboard cannot be read: on macOS, allow crossmodal in System Settings → Privacy & Security → Accessibility",
        ))?;
        let modifiers = shortcut.modifiers;
        std::thread::Builder::new()
            .name("crossmodal-hotkey".into())
            .spawn(move || {
                // A chord held when the watch begins is not a press.
                let mut held = chord_down(&state.get_keys(), key, modifiers);
                while !halt.load(Ordering::Relaxed) {
                    std::thread::sleep(POLL);
                    let keys = state.get_keys();
                    let seen = Instant::now();
                    let change = if !held && chord_down(&keys, key, modifiers) {
                        KeyEvent::Pressed
                    } else if held && !keys.contains(&key) {
                        // Released means all of it (see the X11 watch).
                        for _ in 0..100 {
                            if !any_modifier_down(&state.get_keys(), modifiers) {
                                break;
                            }
                            std::thread::sleep(POLL);
                        }
                        KeyEvent::Released
                    } else {
                        continue;
                    };
                    held = change == KeyEvent::Pressed;
                    if tx.send((change, seen)).is_err() {
                        return;
                    }
                    notify();
                }
            })
            .map_err(|_| ShortcutError::Unsupported("the shortcut's thread could not start"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcuts_parse_and_show_as_people_write_them() {
        let s: Shortcut = "ctrl+alt+space".parse().expect("parses");
        assert_eq!(s.to_string(), "Ctrl+Alt+Space");
        assert_eq!(s.keysym, 0x20);
        assert_eq!(s.modifiers, Modifiers(Modifiers::CTRL.0 | Modifiers::ALT.0));
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
