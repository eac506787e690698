//! Push-to-talk: while a global shortcut is held (or from one press to the next, when it
//! toggles) the microphone is heard through the live pipeline. What is said is typed into the
//! window that has the focus (dictation), or matched against the command set (commands).
//! `crossmodal dictate` and the window's Listen panel both run it.

use std::time::{Duration, Instant};

use crate::commands::Decision;
use crate::engine::{Connection, Notify};
use crate::hotkey::{Hotkey, KeyEvent, Shortcut, ShortcutError};
use crate::live::{LineId, Live, LiveEvent, Purpose};

/// What is done with what is said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Typed into the focused window.
    Dictate,
    /// Matched against the engine's command set.
    Commands,
}

/// How push-to-talk works.
#[derive(Debug, Clone)]
pub struct Settings {
    pub shortcut: Shortcut,
    /// One press starts listening and the next stops it, instead of listening while held.
    pub toggle: bool,
    pub mode: Mode,
    /// Where to listen, with which model; its purpose follows `mode`.
    pub live: crate::live::Settings,
}

/// What push-to-talk reports.
#[derive(Debug, Clone)]
pub enum PttEvent {
    /// The microphone sends sound: a word spoken from now on is heard (a server can take a
    /// second or more to start it).
    Ready,
    /// Listening began (the shortcut went down).
    Listening,
    /// Listening stopped (the shortcut came up): what was said last is being finished.
    Stopped,
    /// Words were typed into the focused window; `after_release` is how long after the shortcut
    /// came up (`None` when it was still held).
    Typed { text: String, after_release: Option<Duration> },
    /// A command decision (`Mode::Commands`); the caller carries it out.
    Decided { decision: Decision, took: Duration, after_release: Option<Duration> },
    /// Something went wrong; push-to-talk goes on.
    Problem(String),
}

/// A grabbed shortcut and the listening it starts. The microphone is opened once, when push-
/// to-talk starts, and only listened to while the shortcut says so: an audio server can take a
/// second or more to deliver a newly opened microphone's first sound (measured through
/// `PulseAudio`), and a word spoken the moment the keys go down must not be lost.
pub struct PushToTalk {
    /// The grabbed key (X11); none where keys cannot be grabbed (Wayland).
    hotkey: Option<Hotkey>,
    /// `crossmodal dictate --toggle` runs, from a shortcut bound in the desktop's settings.
    #[cfg(unix)]
    toggles: Option<crate::toggle::Listener>,
    /// How it is started and stopped, for people.
    trigger: String,
    /// How what is said reaches the focused window.
    typist: crate::typing::Typist,
    toggle: bool,
    shortcut: Shortcut,
    live: Live,
    listening: bool,
    /// When the shortcut came up last (typing latency is measured from it).
    released: Option<Instant>,
    /// Something was typed since listening began (the next words get a space before them).
    typed: bool,
    /// Words heard while the shortcut is held, typed once it comes up (typing with its
    /// modifiers down would send shortcuts, not text).
    held_back: Vec<String>,
    /// Lines shown at a pause, not typed until they stand (a phrase is typed once, whole).
    provisional: Vec<(LineId, String)>,
}

impl PushToTalk {
    /// Grabs the shortcut and opens the microphone; `engine` is a line of its own to the app's
    /// engine, `notify` runs when something happens.
    pub fn start(engine: Connection, settings: Settings, notify: &Notify) -> Result<Self, ShortcutError> {
        let typist = crate::typing::Typist::detect().map_err(ShortcutError::Typing)?;
        let session = crate::typing::Session::from_env();
        // On Wayland an X11 grab would see the keys only while an XWayland window has the focus:
        // the desktop's own shortcut runs `crossmodal dictate --toggle` instead.
        let hotkey = if session.wayland { None } else { Some(Hotkey::grab(&settings.shortcut, notify)?) };
        #[cfg(unix)]
        let toggles = match crate::toggle::Listener::start(notify) {
            Ok(l) => Some(l),
            Err(e) if hotkey.is_none() => return Err(ShortcutError::Toggle(e.to_string())),
            Err(e) => {
                tracing::warn!("`crossmodal dictate --toggle` will not reach this dictation: {e}");
                None
            }
        };
        let trigger = match &hotkey {
            Some(_) if settings.toggle => format!("press {} to start and stop", settings.shortcut),
            Some(_) => format!("hold {}", settings.shortcut),
            None => "a Wayland session, where no program may grab a key: bind `crossmodal dictate --toggle` \
                     to a shortcut in the desktop's keyboard settings; each run starts or stops listening"
                .to_owned(),
        };
        let toggle = settings.toggle || hotkey.is_none();
        let mut live = settings.live;
        live.purpose = match settings.mode {
            Mode::Dictate => Purpose::Transcribe { partials: false },
            Mode::Commands => Purpose::Commands,
        };
        live.paused = true;
        Ok(Self {
            hotkey,
            #[cfg(unix)]
            toggles,
            trigger,
            typist,
            toggle,
            shortcut: settings.shortcut,
            live: Live::start(engine, live, notify),
            listening: false,
            released: None,
            typed: false,
            held_back: Vec::new(),
            provisional: Vec::new(),
        })
    }

    pub fn shortcut(&self) -> &Shortcut {
        &self.shortcut
    }

    /// How listening is started and stopped ("hold Ctrl+Alt+Space", or the toggle command).
    pub fn trigger(&self) -> &str {
        &self.trigger
    }

    /// A key is grabbed (X11); otherwise only `crossmodal dictate --toggle` starts and stops it.
    pub fn grabbed(&self) -> bool {
        self.hotkey.is_some()
    }

    /// How words reach the focused window, and why that way.
    pub fn typing(&self) -> String {
        self.typist.describe()
    }

    /// Handles what happened since the last call (key presses, answers) without waiting.
    pub fn poll(&mut self) -> Vec<PttEvent> {
        let mut out = Vec::new();
        // Each event with whether it toggles: the key's per the settings; a toggle command
        // always does, and is answered with what happens now.
        // With when the keyboard showed it: listening starts and stops at that moment, not
        // when this is called (a busy window can call it a good while later).
        #[cfg_attr(not(unix), allow(unused_mut))]
        let mut keys: Vec<(KeyEvent, bool, Instant)> = self
            .hotkey
            .as_ref()
            .map(Hotkey::poll)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, at)| (k, self.toggle, at))
            .collect();
        #[cfg(unix)]
        let requests = self.toggles.as_ref().map(crate::toggle::Listener::poll).unwrap_or_default();
        #[cfg(unix)]
        keys.extend(requests.iter().map(|_| (KeyEvent::Pressed, true, Instant::now())));
        for (key, toggle, at) in keys {
            match (key, toggle) {
                (KeyEvent::Pressed, _) if !self.listening => {
                    tracing::debug!("push-to-talk: the keys went down; listening");
                    self.live.resume_at(at);
                    self.listening = true;
                    self.released = None;
                    self.typed = false;
                    out.push(PttEvent::Listening);
                }
                (KeyEvent::Released, false) | (KeyEvent::Pressed, true) if self.listening => {
                    tracing::debug!(
                        "push-to-talk: the keys went up; {} lines held back",
                        self.held_back.len()
                    );
                    self.live.pause_at(at);
                    self.listening = false;
                    self.released = Some(at);
                    out.push(PttEvent::Stopped);
                    for text in std::mem::take(&mut self.held_back) {
                        self.type_out(text, &mut out);
                    }
                }
                _ => {}
            }
        }
        #[cfg(unix)]
        for r in requests {
            r.answer(if self.listening { "listening" } else { "stopped" });
        }
        for event in self.live.poll() {
            self.answered(event, &mut out);
        }
        out
    }

    fn type_out(&mut self, text: String, out: &mut Vec<PttEvent>) {
        let text = if self.typed { format!(" {text}") } else { text };
        match self.typist.type_text(&text) {
            Ok(()) => {
                self.typed = true;
                let after_release = self.released.map(|r| r.elapsed());
                out.push(PttEvent::Typed { text: text.trim_start().to_owned(), after_release });
            }
            Err(e) => out.push(PttEvent::Problem(e)),
        }
    }

    /// A line that stands: typed now, or once the shortcut is up.
    fn ready(&mut self, text: String, out: &mut Vec<PttEvent>) {
        if text.is_empty() {
            tracing::debug!("push-to-talk: an utterance with no words; nothing to type");
            return;
        }
        if self.listening && !self.toggle {
            self.held_back.push(text);
        } else {
            self.type_out(text, out);
        }
    }

    fn answered(&mut self, event: LiveEvent, out: &mut Vec<PttEvent>) {
        let after_release = self.released.map(|r| r.elapsed());
        match event {
            LiveEvent::Line { id, replaces, text, settled, .. } => {
                tracing::debug!("push-to-talk: line {} {text:?} (settled: {settled})", id.0);
                self.provisional.retain(|(line, _)| Some(*line) != replaces);
                if settled {
                    self.ready(text, out);
                } else {
                    self.provisional.push((id, text));
                }
            }
            LiveEvent::Settled(id) => {
                if let Some(i) = self.provisional.iter().position(|(line, _)| *line == id) {
                    let (_, text) = self.provisional.remove(i);
                    self.ready(text, out);
                }
            }
            LiveEvent::Decided { decision, took, .. } => {
                out.push(PttEvent::Decided { decision, took, after_release });
            }
            LiveEvent::Problem(e) => out.push(PttEvent::Problem(e)),
            LiveEvent::Ended { problem, .. } => {
                out.push(PttEvent::Problem(problem.unwrap_or_else(|| "the microphone closed".into())));
            }
            LiveEvent::Opened(_) => out.push(PttEvent::Ready),
            LiveEvent::Partial(_) | LiveEvent::Query(_) => {}
        }
    }
}
