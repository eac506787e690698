//! `listen` and `dictate`: the live pipeline hears, the engine answers, these print or type.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crossmodal::audio::capture::{self, InputSource};
use crossmodal::commands::{CommandSet, Outcome, WatchedCommands};
use crossmodal::engine::{Engine, Request};
use crossmodal::live::{Live, LiveEvent, Purpose};
use crossmodal::model_store::{self, ModelStore};

use super::commands::{reload_commands, set_commands};
use super::{SpeechArgs, unwatched};

/// The engine for `listen` and `dictate`, with the command set when there is one.
fn start_listening_engine(
    store: ModelStore,
    commands: Option<&WatchedCommands>,
    model: &str,
) -> anyhow::Result<Engine> {
    model_store::speech_spec(model)?;
    let engine = Engine::start(store, unwatched());
    if let Some(c) = commands {
        set_commands(&engine, c.set().clone())?;
        eprintln!("{} commands from {}", c.set().len(), c.path().display());
    }
    Ok(engine)
}

/// Push-to-talk until Ctrl+C.
pub(super) fn dictate(
    store: ModelStore,
    shortcut: crossmodal::hotkey::Shortcut,
    toggle: bool,
    source: InputSource,
    output: ListenOutput,
    mut commands: Option<WatchedCommands>,
    args: &SpeechArgs,
) -> anyhow::Result<ExitCode> {
    use crossmodal::dictate::{Mode, PttEvent, PushToTalk};
    let engine = start_listening_engine(store, commands.as_ref(), &args.model)?;
    // The model is loaded now, not when the keys first go down.
    engine.send(Request::Load(args.model.clone()));
    let mode = if commands.is_some() { Mode::Commands } else { Mode::Dictate };
    let live = crossmodal::live::Settings {
        source,
        purpose: Purpose::Transcribe { partials: false },
        model: args.model.clone(),
        options: args.options(),
        record: None,
        paused: false,
        voice_threshold: args.voice_threshold,
    };
    let settings = crossmodal::dictate::Settings { shortcut, toggle, mode, live };
    let mut ptt = PushToTalk::start(engine.connect(), settings, &unwatched())?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&stop);
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::Relaxed)) {
        eprintln!("warning: Ctrl+C will not stop cleanly: {e}");
    }
    let what = if commands.is_some() { "say a command" } else { "dictate into the focused window" };
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    let mut looked = std::time::Instant::now();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if let Some(watched) = commands.as_mut().filter(|_| looked.elapsed() > Duration::from_millis(500)) {
            looked = std::time::Instant::now();
            reload_commands(&engine, watched)?;
        }
        for event in ptt.poll() {
            match event {
                // Said once the microphone sends sound: a word spoken from then on is heard.
                PttEvent::Ready => {
                    eprintln!("{} to {what} (Ctrl+C quits)", ptt.trigger());
                    if commands.is_none() {
                        eprintln!("{}", ptt.typing());
                    }
                    if output.json {
                        let key = ptt.grabbed().then(|| ptt.shortcut().to_string());
                        let (trigger, typing) = (ptt.trigger(), ptt.typing());
                        println!(
                            "{}",
                            serde_json::json!({ "ready": key, "trigger": trigger, "typing": typing })
                        );
                    }
                }
                PttEvent::Listening if output.json => {
                    println!("{}", serde_json::json!({ "listening": true }));
                }
                PttEvent::Listening => eprintln!("● listening…"),
                PttEvent::Stopped if output.json => println!("{}", serde_json::json!({ "listening": false })),
                PttEvent::Stopped => eprintln!("○ stopped"),
                PttEvent::Typed { text, after_release } if output.json => {
                    println!("{}", serde_json::json!({ "typed": text, "ms": ms(after_release) }));
                }
                PttEvent::Typed { text, .. } => eprintln!("typed: {text}"),
                PttEvent::Decided { decision, took, .. } => {
                    if let Some(c) = commands.as_ref().filter(|_| !decision.transcript.is_empty()) {
                        act(&decision, c.set(), 0.0, took, output);
                    }
                }
                PttEvent::Problem(e) => eprintln!("error: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(ExitCode::SUCCESS)
}

/// How `listen` prints.
#[derive(Clone, Copy)]
pub(super) struct ListenOutput {
    pub(super) json: bool,
    pub(super) partial: bool,
    pub(super) dry_run: bool,
}

/// Reports a live decision and what its command's action did.
fn act(
    d: &crossmodal::commands::Decision,
    set: &CommandSet,
    start: f64,
    took: Duration,
    output: ListenOutput,
) {
    let ms = took.as_millis();
    if d.command.is_none() {
        if output.json {
            println!(
                "{}",
                serde_json::json!({ "start": start, "transcript": d.transcript, "command": null })
            );
        } else {
            println!("[{start:7.2}s] {} -> no match", d.transcript);
        }
        return;
    }
    let score = d.scores.first().map_or(0.0, |s| s.score);
    let (command, action, done) = match set.fire(d, output.dry_run) {
        Outcome::Nothing => return,
        Outcome::WouldDo { command, action } => (command, action.clone(), Ok(format!("would {action}"))),
        Outcome::Done { command, action, line } => (command, action, Ok(line)),
        Outcome::Failed { command, action, error } => (command, action, Err(error)),
    };
    if output.json {
        println!(
            "{}",
            serde_json::json!({ "start": start, "transcript": d.transcript, "command": command, "score": score,
                "action": action, "dry_run": output.dry_run, "ms": ms })
        );
    } else {
        println!("[{start:7.2}s] {} -> {command} ({score:.2}, {ms} ms)", d.transcript);
    }
    match done {
        Ok(line) if !output.json => println!("           {line}"),
        Ok(_) => {}
        Err(e) => eprintln!("error: {e}"),
    }
}

/// Live transcription or commands: the live pipeline hears, the engine answers, this prints.
/// `--record` keeps every sample heard even if transcription falls behind.
pub(super) fn listen(
    store: ModelStore,
    source: InputSource,
    record: Option<PathBuf>,
    output: ListenOutput,
    mut commands: Option<WatchedCommands>,
    args: &SpeechArgs,
) -> anyhow::Result<ExitCode> {
    let engine = start_listening_engine(store, commands.as_ref(), &args.model)?;
    let asked_device = match &source {
        InputSource::Microphone { device } => device.clone(),
        InputSource::File { .. } => None,
    };
    let purpose =
        if commands.is_some() { Purpose::Commands } else { Purpose::Transcribe { partials: output.partial } };
    let settings = crossmodal::live::Settings {
        source,
        purpose,
        model: args.model.clone(),
        options: args.options(),
        record,
        paused: false,
        voice_threshold: args.voice_threshold,
    };
    let live = Live::start(engine.connect(), settings, &unwatched());
    // Ctrl+C stops listening cleanly: the last utterance is answered and `--record` gets its
    // header. A second Ctrl+C leaves at once.
    let stopper = live.stopper();
    let pressed = std::sync::atomic::AtomicBool::new(false);
    let handler = ctrlc::set_handler(move || {
        if pressed.swap(true, std::sync::atomic::Ordering::Relaxed) {
            std::process::exit(130);
        }
        eprintln!("stopping…");
        stopper.stop();
    });
    if let Err(e) = handler {
        eprintln!("warning: Ctrl+C will not stop listening cleanly: {e}");
    }
    let mut failed = false;
    // Lines printed that may still be revised: their words.
    let mut printed: std::collections::HashMap<u64, String> = std::collections::HashMap::new();
    loop {
        if let Some(watched) = commands.as_mut() {
            reload_commands(&engine, watched)?;
        }
        let Ok(event) = live.recv_timeout(Duration::from_millis(200)) else {
            anyhow::bail!("the live pipeline stopped unexpectedly");
        };
        match event {
            Some(LiveEvent::Opened(name)) => {
                eprintln!("listening to {name} (Ctrl+C stops)");
                // A device asked for by name that opened is remembered for next time.
                if let (Some(name), Some(config)) = (&asked_device, capture::config_dir())
                    && let Err(e) = capture::remember_device(&config, name)
                {
                    eprintln!("warning: could not remember the device in {}: {e}", config.display());
                }
            }
            Some(LiveEvent::Partial(text)) if output.partial => eprintln!("… {text}"),
            None | Some(LiveEvent::Partial(_) | LiveEvent::Query(_)) => {}
            Some(LiveEvent::Line { id, replaces, start, end, text, settled, .. }) => {
                if output.json {
                    println!(
                        "{}",
                        serde_json::json!({ "id": id.0, "replaces": replaces.map(|r| r.0), "start": start,
                            "end": end, "text": text, "settled": settled })
                    );
                } else if let Some(old) = replaces {
                    // The speaker went on after a pause: the line above is printed again, whole
                    // (unless the words came out the same).
                    if text.is_empty() {
                        // Its utterance turned out to hold no words (or to be the room's).
                        if printed.remove(&old.0).is_some() {
                            println!("[{start:7.2}s] (taken back: no words in it after all)");
                        }
                    } else if printed.remove(&old.0).map(|o| same_words(&o)) != Some(same_words(&text)) {
                        println!("[{start:7.2}s] {text}   (revised)");
                    }
                    printed.insert(id.0, text);
                } else {
                    println!("[{start:7.2}s] {text}");
                    printed.insert(id.0, text);
                }
            }
            Some(LiveEvent::Settled(id)) => {
                printed.remove(&id.0);
                if output.json {
                    println!("{}", serde_json::json!({ "settled": id.0 }));
                }
            }
            Some(LiveEvent::Decided { start, decision, took, .. }) => {
                if let Some(c) = commands.as_ref().filter(|_| !decision.transcript.is_empty()) {
                    act(&decision, c.set(), start, took, output);
                }
            }
            Some(LiveEvent::Problem(e)) => {
                eprintln!("error: {e}");
                failed = true;
            }
            Some(LiveEvent::Ended { heard, answered, problem }) => {
                // A device that never opened heard nothing: then the error says it all.
                if heard > 0 || problem.is_none() {
                    let utterances = if heard == 1 { "utterance" } else { "utterances" };
                    eprintln!("{heard} {utterances} heard, {answered} answered");
                }
                if let Some(p) = problem {
                    anyhow::bail!(p);
                }
                break;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// A line's words, case and punctuation aside: a revision that changes only those is not news.
fn same_words(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
