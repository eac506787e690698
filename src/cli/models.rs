//! `models` (list, fetch, verify, convert, path) and `status`.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context as _;

use crossmodal::engine::{Engine, Event, ModelStatus, Request, start_up_settled};
use crossmodal::model_store::{self, CATALOGUE, FetchOptions, FetchOutcome, ModelStore, Source};

use super::{ModelsCommand, SourceArg, unwatched};

fn specs(names: &[String], default: bool) -> anyhow::Result<Vec<&'static model_store::ModelSpec>> {
    if names.is_empty() {
        return Ok(CATALOGUE.iter().filter(|s| !default || s.default).collect());
    }
    names.iter().map(|n| model_store::spec(n).map_err(Into::into)).collect()
}

pub(super) fn models(store: &ModelStore, command: ModelsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ModelsCommand::List => {
            let (_, device) = crossmodal::engine::device::pick();
            let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
            let recommended = model_store::catalogue::recommended_whisper(device.gpu, cores, "en");
            println!("{:<30} {:<28} {:>10}  {:<14} SPEED", "MODEL", "ROLE", "SIZE", "STATE");
            for spec in CATALOGUE {
                let mark = match (spec.default, spec.name == recommended) {
                    (true, true) => " * +",
                    (true, false) => " *",
                    (false, true) => " +",
                    (false, false) => "",
                };
                let (size, state) = if store.is_installed(spec) {
                    (store.installed_bytes(spec), "installed")
                } else {
                    (spec.approx_bytes, "not installed")
                };
                println!(
                    "{:<30} {:<28} {:>10}  {state:<14} {}",
                    format!("{}{mark}", spec.name),
                    spec.role.describe(),
                    model_store::human_size(size),
                    model_store::catalogue::speed_class(spec).unwrap_or("")
                );
            }
            println!(
                "\n* fetched by `crossmodal models fetch` with no names. Store: {}",
                store.root().display()
            );
            println!("+ recommended for speech on this machine ({}, {cores} cores)", device.name);
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Fetch { names, source } => {
            let options = FetchOptions {
                source: match source {
                    SourceArg::Auto => Source::Auto,
                    SourceArg::Hub => Source::Hub,
                    SourceArg::Mirror => Source::Mirror,
                },
                progress: std::io::stderr().is_terminal(),
            };
            let mut failed = 0;
            for spec in specs(&names, true)? {
                match store.fetch(spec, &options, &mut |line| eprintln!("{line}")) {
                    Ok(FetchOutcome::AlreadyInstalled) => {
                        println!("{}: already installed", spec.name);
                    }
                    Ok(FetchOutcome::Installed { from }) => {
                        println!("{}: installed from {from}", spec.name);
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        failed += 1;
                    }
                }
            }
            Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        ModelsCommand::Verify { names } => {
            let mut problems = 0;
            for spec in specs(&names, false)? {
                if !store.is_installed(spec) && names.is_empty() {
                    println!("{}: not installed", spec.name);
                    continue;
                }
                let found = store.verify_model(spec);
                if found.is_empty() {
                    println!("{}: ok", spec.name);
                }
                for p in found {
                    println!("{}: {}", p.model, p.error);
                    problems += 1;
                }
            }
            Ok(if problems == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        ModelsCommand::Convert { ct2_dir, output } => {
            use crossmodal::model_store::{ct2::Ct2Model, ggml};
            let bin = ct2_dir.join("model.bin");
            let bytes = std::fs::read(&bin).with_context(|| format!("reading {}", bin.display()))?;
            let model = Ct2Model::parse(bytes).with_context(|| format!("reading {}", bin.display()))?;
            let tok_path = ct2_dir.join("tokenizer.json");
            let tokenizer =
                std::fs::read(&tok_path).with_context(|| format!("reading {}", tok_path.display()))?;
            let mut out = std::io::BufWriter::new(
                std::fs::File::create(&output).with_context(|| format!("creating {}", output.display()))?,
            );
            let hp = ggml::convert(&model, &tokenizer, &mut out)?;
            println!(
                "{}: {} encoder and {} decoder layers, {} tokens",
                output.display(),
                hp.n_audio_layer,
                hp.n_text_layer,
                hp.n_vocab
            );
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Path { name } => {
            match name {
                None => println!("{}", store.root().display()),
                Some(n) => println!("{}", store.main_path(model_store::spec(&n)?).display()),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(super) fn status(store: ModelStore) -> ExitCode {
    let engine = Engine::start(store, unwatched());
    engine.send(Request::LoadDefaults);
    let mut statuses = BTreeMap::new();
    while !start_up_settled(&statuses) {
        match engine.recv() {
            Some(Event::Device(info)) => println!("device: {info}"),
            Some(Event::Model { name, status }) => {
                statuses.insert(name, status);
            }
            Some(Event::Error(e)) => eprintln!("error: {e}"),
            Some(_) => {}
            None => break,
        }
    }
    // What the CPU runs Whisper with: a build for this machine names more than a portable one.
    println!("whisper.cpp built for: {}", crossmodal::speech::cpu_kernels().join(" "));
    let mut failed = false;
    for spec in CATALOGUE {
        let status = statuses.get(spec.name).cloned().unwrap_or(ModelStatus::NotInstalled);
        failed |= matches!(status, ModelStatus::Failed(_));
        println!("{:<20} {status}", spec.name);
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
