//! `commands check` and `commands match`, and the command sets `listen` and `dictate` follow.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crossmodal::commands::{CommandSet, WatchedCommands};
use crossmodal::engine::{AudioInput, Engine, Event, JobId, Request};
use crossmodal::model_store::{self, ModelStore};

use super::{SpeechArgs, naming, unwatched};

/// The set asked for, else the user's (their file, or the built-in set until they have one).
pub(super) fn load_commands(path: Option<&Path>) -> anyhow::Result<CommandSet> {
    Ok(match path {
        Some(p) => CommandSet::load(p)?,
        None => CommandSet::users()?,
    })
}

/// `--commands FILE` follows that file; `--commands` alone the user's set.
pub(super) fn watched_commands(path: Option<PathBuf>) -> anyhow::Result<WatchedCommands> {
    Ok(match path {
        Some(path) => WatchedCommands::open(&path)?,
        None => WatchedCommands::users()?,
    })
}

/// Waits for the engine to take a command set.
pub(super) fn set_commands(engine: &Engine, set: CommandSet) -> anyhow::Result<()> {
    engine.send(Request::SetCommands(set, crossmodal::commands::matcher::CALIBRATED));
    engine.wait_for(|e| match e {
        Event::CommandsReady { .. } => Some(Ok(())),
        Event::Error(e) => Some(Err(anyhow::anyhow!(e))),
        _ => None,
    })?
}

pub(super) fn match_commands(
    store: ModelStore,
    set: &CommandSet,
    files: &[PathBuf],
    json: bool,
    args: &SpeechArgs,
) -> anyhow::Result<ExitCode> {
    model_store::speech_spec(&args.model)?;
    let engine = Engine::start(store, unwatched());
    set_commands(&engine, set.clone())?;
    let mut failed = false;
    for file in files {
        let tag = file.display().to_string();
        let id = JobId::next();
        engine.send(Request::MatchCommand {
            id,
            model: args.model.clone(),
            audio: AudioInput::File(file.clone()),
            options: args.options(),
            cancel: None,
        });
        let result = engine.wait_for(|e| match e {
            Event::Matched { id: i, result } if i == id => Some(result),
            Event::Error(e) => {
                eprintln!("error: {e}");
                None
            }
            _ => None,
        })?;
        match result {
            Ok((d, took)) if json => {
                let scores: Vec<_> = d.scores.iter().take(3).collect();
                println!(
                    "{}",
                    serde_json::json!({
                        "file": tag, "transcript": d.transcript, "command": d.command, "scores": scores,
                        "rejected": d.rejected, "ms": took.as_secs_f64() * 1000.0,
                    })
                );
            }
            Ok((d, took)) => {
                println!("{tag}");
                println!("  heard:    {}", if d.transcript.is_empty() { "(nothing)" } else { &d.transcript });
                match (&d.command, &d.rejected) {
                    (Some(c), _) => println!("  command:  {c}"),
                    (None, Some(why)) => println!("  command:  no match ({why})"),
                    (None, None) => println!("  command:  no match"),
                }
                for s in d.scores.iter().take(3) {
                    let sound = s.sound.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
                    println!(
                        "  {:.3}  {}  (meaning {:.3}, form {:.3}, sound {sound})",
                        s.score, s.command, s.meaning, s.form
                    );
                }
                println!("  decided in {} ms", took.as_millis());
            }
            Err(e) => {
                eprintln!("error: {}", naming(&tag, &e));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Hands the engine a command file that changed; a broken edit keeps the previous set.
pub(super) fn reload_commands(engine: &Engine, watched: &mut WatchedCommands) -> anyhow::Result<()> {
    match watched.reload_if_changed() {
        Some(Ok(set)) => {
            eprintln!("reloaded {} ({} commands)", set.origin, set.len());
            set_commands(engine, set.clone())?;
        }
        Some(Err(e)) => eprintln!("error: {e} (still using the previous commands)"),
        None => {}
    }
    Ok(())
}
