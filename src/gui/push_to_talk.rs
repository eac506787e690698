//! Push-to-talk in the window: a global shortcut (X11) listens while it is held (or from one
//! press to the next), then types what was said into the window that has the focus, or carries
//! out the command it matches. A small overlay says when it is listening. The same
//! `dictate::PushToTalk` runs `crossmodal dictate`.

use std::sync::Arc;
use std::time::Duration;

use crate::dictate::{Mode, PttEvent, PushToTalk};
use crate::engine::Request;
use crate::live::Purpose;

use super::CrossmodalApp;

/// What push-to-talk is doing, as the overlay and the Settings panel say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    #[default]
    Off,
    /// The shortcut is grabbed; nothing is heard until it goes down.
    Ready,
    Listening,
    /// The shortcut came up: the last words are being transcribed.
    Finishing,
}

/// How long the overlay stays after the keys come up when nothing more arrives.
const FINISHING_FOR: Duration = Duration::from_secs(3);

/// The settings push-to-talk was last started with (or failed to start with).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Started {
    shortcut: String,
    toggle: bool,
    commands: bool,
    model: String,
}

#[derive(Default)]
pub struct PushToTalkPanel {
    running: Option<PushToTalk>,
    started: Option<Started>,
    state: State,
    released: Option<std::time::Instant>,
    /// The last words typed or command decided, for the Settings panel.
    last: Option<String>,
    problem: Option<String>,
    /// The shortcut as it is being typed; it takes effect when the field is left.
    key_edit: Option<String>,
}

/// Starts, restarts or stops push-to-talk to match the settings.
pub fn sync(app: &mut CrossmodalApp, ctx: &egui::Context) {
    let wanted = app.settings.push_to_talk.on.then(|| Started {
        shortcut: app.settings.push_to_talk.key.trim().to_owned(),
        toggle: app.settings.push_to_talk.toggle,
        commands: app.settings.push_to_talk.commands,
        model: app.settings.model.clone(),
    });
    if wanted == app.ptt.started {
        return;
    }
    app.ptt.running = None;
    app.ptt.state = State::Off;
    app.ptt.problem = None;
    app.ptt.started.clone_from(&wanted);
    let Some(wanted) = wanted else { return };
    match start(app, ctx, &wanted) {
        Ok(ptt) => {
            tracing::info!("push-to-talk ready: {}; {}", ptt.trigger(), ptt.typing());
            app.ptt.running = Some(ptt);
            app.ptt.state = State::Ready;
        }
        Err(e) => {
            app.notice(format!("push-to-talk: {e}"));
            app.ptt.problem = Some(e);
        }
    }
}

fn start(app: &mut CrossmodalApp, ctx: &egui::Context, wanted: &Started) -> Result<PushToTalk, String> {
    let shortcut: crate::hotkey::Shortcut = wanted.shortcut.parse().map_err(|e| format!("{e}"))?;
    let mode = if wanted.commands {
        let set = app.commands.to_set()?;
        app.commands.active = Some(set.clone());
        app.send(Request::SetCommands(set, super::commands::matcher_settings(app)));
        Mode::Commands
    } else {
        Mode::Dictate
    };
    // The model is loaded now, not when the keys first go down.
    app.send(Request::Load(app.settings.model.clone()));
    let live = crate::live::Settings {
        source: app.input_source(),
        purpose: Purpose::Transcribe { partials: false },
        model: app.settings.model.clone(),
        options: app.speech_options(),
        record: None,
        paused: false,
        voice_threshold: app.settings.voice_threshold(),
    };
    let settings = crate::dictate::Settings { shortcut, toggle: wanted.toggle, mode, live };
    let repaint = ctx.clone();
    let notify: crate::engine::Notify = Arc::new(move || repaint.request_repaint());
    PushToTalk::start(app.engine.connect(), settings, &notify).map_err(|e| e.to_string())
}

/// Handles what push-to-talk reported since the last frame.
pub fn poll(app: &mut CrossmodalApp) {
    let Some(ptt) = app.ptt.running.as_mut() else { return };
    for event in ptt.poll() {
        match event {
            PttEvent::Ready => {}
            PttEvent::Listening => {
                app.ptt.state = State::Listening;
                app.ptt.released = None;
            }
            PttEvent::Stopped => {
                app.ptt.state = State::Finishing;
                app.ptt.released = Some(std::time::Instant::now());
            }
            PttEvent::Typed { text, .. } => {
                tracing::info!("push-to-talk typed: {text}");
                app.ptt.last = Some(format!("typed: {text}"));
                if app.ptt.state == State::Finishing {
                    app.ptt.state = State::Ready;
                }
            }
            PttEvent::Decided { decision, took, .. } => {
                app.ptt.last = Some(match &decision.command {
                    Some(name) => format!("command: {name}"),
                    None if decision.transcript.is_empty() => "nothing heard".to_owned(),
                    None => format!("no command for “{}”", decision.transcript),
                });
                app.commands.decided(0.0, decision, took, app.settings.dry_run);
                if app.ptt.state == State::Finishing {
                    app.ptt.state = State::Ready;
                }
            }
            PttEvent::Problem(p) => app.notice(format!("push-to-talk: {p}")),
        }
    }
    if app.ptt.state == State::Finishing && app.ptt.released.is_some_and(|r| r.elapsed() > FINISHING_FOR) {
        app.ptt.state = State::Ready;
    }
}

/// The overlay: a small window of its own, on top, that does not take the focus (the words go
/// to the window that has it).
///
/// A deferred viewport (drawn in a pass of its own from the text handed to it), not an immediate
/// one: eframe keeps an immediate viewport's texture changes apart from the main window's. When
/// the keys went down before the main window had first painted (a fast machine: "push-to-talk
/// ready" is said in the first frame), the overlay sent an update of the font atlas whose upload
/// still waited in the main window's queue; egui-wgpu panicked ("Tried to update a texture that
/// has not been allocated yet"), the window died, and nothing was typed. Deferred viewports
/// share one queue of texture changes, applied in order by whichever window paints next.
pub fn overlay(app: &CrossmodalApp, ctx: &egui::Context) {
    let text = match app.ptt.state {
        State::Listening => {
            let how = if app.settings.push_to_talk.toggle { "press" } else { "release" };
            let key = app.ptt.running.as_ref().map(|p| p.shortcut().to_string()).unwrap_or_default();
            format!("● Listening — {how} {key} to stop")
        }
        State::Finishing => "… Transcribing".to_owned(),
        State::Off | State::Ready => return,
    };
    // Top centre of the screen the window is on (without a window manager it would sit at 0,0).
    let size = egui::vec2(340.0, 40.0);
    let screen = ctx.input(|i| i.viewport().monitor_size).unwrap_or(egui::vec2(1024.0, 768.0));
    let builder = egui::ViewportBuilder::default()
        .with_position(egui::pos2(((screen.x - size.x) / 2.0).max(0.0), 48.0))
        .with_title("crossmodal: listening")
        .with_inner_size(size)
        .with_decorations(false)
        .with_resizable(false)
        .with_always_on_top()
        .with_taskbar(false)
        .with_active(false);
    ctx.show_viewport_deferred(
        egui::ViewportId::from_hash_of("push-to-talk overlay"),
        builder,
        move |ui, _| {
            let visuals = ui.visuals();
            let frame = egui::Frame::new()
                .fill(visuals.panel_fill)
                .stroke(egui::Stroke::new(2.0, visuals.selection.bg_fill))
                .inner_margin(6.0);
            egui::CentralPanel::default().frame(frame).show(ui, |ui| {
                ui.centered_and_justified(|ui| ui.strong(&text));
            });
        },
    );
    if app.ptt.state == State::Finishing {
        ctx.request_repaint_after(Duration::from_millis(250));
    }
}

/// The Settings panel's push-to-talk section.
pub fn show(ui: &mut egui::Ui, app: &mut CrossmodalApp) {
    ui.strong("Push-to-talk");
    ui.horizontal(|ui| {
        ui.checkbox(&mut app.settings.push_to_talk.on, "Push-to-talk shortcut");
        let edit = app.ptt.key_edit.get_or_insert_with(|| app.settings.push_to_talk.key.clone());
        let key = ui.add(egui::TextEdit::singleline(edit).desired_width(140.0).hint_text(crate::hotkey::DEFAULT));
        if key.lost_focus() {
            app.settings.push_to_talk.key.clone_from(edit);
        }
        key.on_hover_text(
            "Modifiers and a key, e.g. ctrl+alt+space, super+f9. Works while other windows have the focus (X11).",
        );
    });
    ui.horizontal(|ui| {
        ui.radio_value(&mut app.settings.push_to_talk.toggle, false, "Hold to talk");
        ui.radio_value(&mut app.settings.push_to_talk.toggle, true, "Press to start and stop");
        ui.separator();
        ui.radio_value(&mut app.settings.push_to_talk.commands, false, "Type into the focused window");
        ui.radio_value(&mut app.settings.push_to_talk.commands, true, "Voice commands");
    });
    let status = match (&app.ptt.state, &app.ptt.running) {
        (State::Off, _) => app.ptt.problem.clone().unwrap_or_else(|| "off".to_owned()),
        // How it starts here and how the words get typed, each with its reason (Wayland differs).
        (State::Ready, Some(ptt)) if !app.settings.push_to_talk.commands => {
            format!("ready: {}; {}", ptt.trigger(), ptt.typing())
        }
        (State::Ready, Some(ptt)) => format!("ready: {}", ptt.trigger()),
        (State::Ready, None) => format!("ready: {}", app.settings.push_to_talk.key.trim()),
        (State::Listening, _) => "listening".to_owned(),
        (State::Finishing, _) => "transcribing".to_owned(),
    };
    ui.horizontal_wrapped(|ui| {
        ui.weak(status);
        if let Some(last) = &app.ptt.last {
            ui.label(last);
        }
    });
}
