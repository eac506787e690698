//! `transcribe`: files of any length to text, subtitles or JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use crossmodal::engine::{AudioInput, Engine, Event, JobId, Request};
use crossmodal::model_store::{self, ModelStore};
use crossmodal::speech::{export, export::Format};

use super::{SpeechArgs, naming, progress_bar, unwatched};

pub(super) fn transcribe(
    store: ModelStore,
    files: &[PathBuf],
    args: &SpeechArgs,
    format: Option<Format>,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    model_store::speech_spec(&args.model)?;
    let to_folder = output.is_some_and(|o| o.is_dir() || files.len() > 1);
    let format =
        format.or_else(|| output.filter(|_| !to_folder).and_then(Format::from_path)).unwrap_or(Format::Txt);
    // Several transcripts on stdout: each under its file's name (JSON lines carry it already).
    let headed = output.is_none() && files.len() > 1 && format != Format::Json;
    if to_folder {
        let dir = output.unwrap_or_else(|| Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let engine = Engine::start(store, unwatched());
    let mut failed = 0;
    let mut single = String::new();
    for file in files {
        let tag = file.display().to_string();
        let id = JobId::next();
        engine.send(Request::Transcribe {
            id,
            model: args.model.clone(),
            audio: AudioInput::File(file.clone()),
            options: args.options(),
            cancel: None,
        });
        let bar = progress_bar("{msg} {bar:40} {percent}% {elapsed}", 1000);
        bar.set_message(tag.clone());
        let result = engine.wait_for(|e| match e {
            Event::Transcribed { id: i, result } if i == id => Some(result),
            Event::Progress { fraction, .. } => {
                bar.set_position((fraction * 1000.0) as u64);
                None
            }
            Event::Error(e) => {
                eprintln!("error: {e}");
                None
            }
            _ => None,
        })?;
        bar.finish_and_clear();
        match result {
            Ok(t) => {
                let text = export::render(&t, &tag, format);
                match output {
                    Some(dir) if to_folder => {
                        let stem = file
                            .file_stem()
                            .map_or_else(|| "audio".into(), |s| s.to_string_lossy().into_owned());
                        let path = dir.join(format!("{stem}.{}", format.extension()));
                        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
                    }
                    Some(_) => single.push_str(&text),
                    None if headed => print!("==> {tag} <==\n{text}\n"),
                    None => print!("{text}"),
                }
            }
            Err(e) => {
                eprintln!("error: {}", naming(&tag, &e));
                failed += 1;
            }
        }
    }
    if let Some(path) = output.filter(|_| !to_folder) {
        std::fs::write(path, single).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
