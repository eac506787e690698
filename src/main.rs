//! The command line: no subcommand opens the window; each subcommand runs one job headless.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use std::collections::BTreeMap;

use crossmodal::engine::{Engine, Event, ModelStatus, Request, start_up_settled};
use crossmodal::model_store::{self, CATALOGUE, FetchOptions, FetchOutcome, ModelStore, Source};

#[derive(Parser)]
#[command(
    name = "crossmodal",
    version,
    about = "Speech, text and images in one shared embedding space"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Open the window, save a screenshot to this PNG once the models have settled, and exit.
    #[arg(long, hide = true)]
    screenshot: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// List, fetch, verify and locate model files.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Start the inference engine, load the installed default models and print where each runs.
    Status,
    /// Transcribe 16 kHz WAV files.
    Transcribe {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Whisper model from the catalogue.
        #[arg(long, default_value = model_store::catalogue::DEFAULT_WHISPER)]
        model: String,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Every model in the catalogue, with role, size and whether it is installed.
    List,
    /// Download models (the default set when no name is given): the hub first, then the mirror.
    Fetch {
        names: Vec<String>,
        /// Where to download from.
        #[arg(long, value_enum, default_value_t = SourceArg::Auto, env = "CROSSMODAL_SOURCE")]
        source: SourceArg,
    },
    /// Re-hash every installed file; name each missing or corrupt one and the fix.
    Verify { names: Vec<String> },
    /// Print the store folder, or one model's main file.
    Path { name: Option<String> },
}

#[derive(Clone, Copy, ValueEnum)]
enum SourceArg {
    Auto,
    Hub,
    Mirror,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CROSSMODAL_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let store = ModelStore::from_env()?;
    match cli.command {
        None => {
            crossmodal::gui::run(store, cli.screenshot)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Models { command }) => models(&store, command),
        Some(Command::Status) => Ok(status(store)),
        Some(Command::Transcribe { files, model }) => transcribe(store, &files, &model),
    }
}

fn human(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn specs(names: &[String], default: bool) -> anyhow::Result<Vec<&'static model_store::ModelSpec>> {
    if names.is_empty() {
        return Ok(CATALOGUE.iter().filter(|s| !default || s.default).collect());
    }
    names
        .iter()
        .map(|n| model_store::spec(n).map_err(Into::into))
        .collect()
}

fn models(store: &ModelStore, command: ModelsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ModelsCommand::List => {
            println!("{:<20} {:<28} {:>10}  STATE", "MODEL", "ROLE", "SIZE");
            for spec in CATALOGUE {
                let name = if spec.default {
                    format!("{} *", spec.name)
                } else {
                    spec.name.to_owned()
                };
                let (size, state) = if store.is_installed(spec) {
                    (store.installed_bytes(spec), "installed")
                } else {
                    (spec.approx_bytes, "not installed")
                };
                println!(
                    "{name:<20} {:<28} {:>10}  {state}",
                    spec.role.describe(),
                    human(size)
                );
            }
            println!(
                "\n* fetched by `crossmodal models fetch` with no names. Store: {}",
                store.root().display()
            );
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Fetch { names, source } => {
            let options = FetchOptions {
                source: match source {
                    SourceArg::Auto => Source::Auto,
                    SourceArg::Hub => Source::Hub,
                    SourceArg::Mirror => Source::Mirror,
                },
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
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
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
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
            Ok(if problems == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
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

fn status(store: ModelStore) -> ExitCode {
    let engine = Engine::start(store, Box::new(|| {}));
    engine.send(Request::LoadDefaults);
    let mut statuses = BTreeMap::new();
    while !start_up_settled(&statuses) {
        match engine.recv() {
            Some(Event::Device(info)) => println!("device: {info}"),
            Some(Event::Model { name, status }) => {
                statuses.insert(name, status);
            }
            Some(Event::Error(e)) => eprintln!("error: {e}"),
            Some(Event::Transcribed { .. }) => {}
            None => break,
        }
    }
    let mut failed = false;
    for spec in CATALOGUE {
        let status = statuses
            .get(spec.name)
            .cloned()
            .unwrap_or(ModelStatus::NotInstalled);
        failed |= matches!(status, ModelStatus::Failed(_));
        println!("{:<20} {status}", spec.name);
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn transcribe(store: ModelStore, files: &[PathBuf], model: &str) -> anyhow::Result<ExitCode> {
    model_store::spec(model)?;
    let engine = Engine::start(store, Box::new(|| {}));
    let mut failed = 0;
    for file in files {
        let audio = match crossmodal::audio::read_wav(file) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
                continue;
            }
        };
        engine.send(Request::Transcribe {
            model: model.to_owned(),
            samples: audio.samples,
            tag: file.display().to_string(),
        });
        let result = loop {
            match engine.recv().context("the inference engine stopped")? {
                Event::Transcribed { result, .. } => break result,
                Event::Error(e) => eprintln!("error: {e}"),
                _ => {}
            }
        };
        match result {
            Ok(t) => println!("{}", t.text),
            Err(e) => {
                eprintln!("error: {}: {e}", file.display());
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
