//! The command line: no subcommand opens the window; each subcommand runs one job headless.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use std::collections::BTreeMap;

use crossmodal::audio::Recorder;
use crossmodal::audio::capture::{Capture, Captured, InputSource};
use crossmodal::audio::vad::{Vad, VadEvent};
use crossmodal::commands::action::Fired;
use crossmodal::commands::{CommandSet, WatchedCommands};
use crossmodal::engine::{AudioInput, Engine, Event, ModelStatus, Request, start_up_settled};
use crossmodal::gallery::query::parse_terms;
use crossmodal::gallery::{Gallery, load_image};
use crossmodal::model_store::{self, CATALOGUE, FetchOptions, FetchOutcome, ModelStore, Source};
use crossmodal::space::images::{EncoderChoice, ImageSpace};
use crossmodal::speech::{self, export, export::Format};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(name = "crossmodal", version, about = "Speech, text and images in one shared embedding space")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Window: play this audio file as the microphone (a virtual microphone).
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Window: the image gallery (default: gallery.sqlite in the platform data folder).
    #[arg(long, value_name = "FILE")]
    gallery: Option<PathBuf>,
    /// Window: the command file (default: commands.toml in the config folder).
    #[arg(long, value_name = "FILE")]
    commands: Option<PathBuf>,
    /// Open the window, save a screenshot to this PNG once the models have settled, and exit.
    #[arg(long, hide = true)]
    screenshot: Option<PathBuf>,
    /// Open the window, print the time from start to its first frame, and exit.
    #[arg(long, hide = true)]
    first_frame: bool,
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
    /// Transcribe audio files (WAV, MP3, FLAC, Ogg Vorbis, M4A/AAC) of any length.
    Transcribe {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        speech: SpeechArgs,
        /// Output format; with json, one object per file per line.
        #[arg(long, value_enum, default_value_t = Format::Txt)]
        format: Format,
        /// Write here instead of stdout: a file (one input) or a folder (one file per input).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Transcribe live: each utterance is printed as it is finalised.
    Listen {
        /// Play this file through the live path instead of using the microphone.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Input device name (see `crossmodal devices`); the default device otherwise.
        #[arg(long, conflicts_with = "input")]
        device: Option<String>,
        /// Also save everything heard to this WAV file.
        #[arg(long)]
        record: Option<PathBuf>,
        /// Speed of the `--input` file relative to real time.
        #[arg(long, default_value_t = 1.0, requires = "input")]
        speed: f32,
        /// One JSON object per utterance: {"start", "end", "text"}.
        #[arg(long)]
        json: bool,
        /// Show the words of an utterance on stderr while it is still being spoken.
        #[arg(long)]
        partial: bool,
        /// Recognise these voice commands (TOML) and fire their actions.
        #[arg(long)]
        commands: Option<PathBuf>,
        /// With --commands: say what each action would do instead of doing it.
        #[arg(long, requires = "commands")]
        dry_run: bool,
        #[command(flatten)]
        speech: SpeechArgs,
    },
    /// List audio input devices.
    Devices,
    /// Index folders of images into a gallery (only what changed is read again).
    Index {
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The gallery file (SQLite); the platform data folder's gallery.sqlite by default.
        #[arg(long)]
        gallery: Option<PathBuf>,
        /// Empty the gallery first (needed when it was made by another encoder).
        #[arg(long)]
        reindex: bool,
        #[arg(long, value_enum, default_value_t = EncoderChoice::Auto)]
        encoder: EncoderChoice,
    },
    /// Find images by text (sums and differences: `beach - people`), by an example image, or by
    /// speech; the parts given are added.
    Search {
        query: Option<String>,
        #[arg(long)]
        gallery: Option<PathBuf>,
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// An image to find similar ones to.
        #[arg(long)]
        image: Option<PathBuf>,
        /// A recording of the query, transcribed with Whisper.
        #[arg(long)]
        audio: Option<PathBuf>,
        /// Say the query: the first utterance from the microphone is transcribed.
        #[arg(long, conflicts_with = "audio")]
        mic: bool,
        /// With --mic: the input device (the remembered or default one otherwise).
        #[arg(long, requires = "mic")]
        device: Option<String>,
        /// With --mic: play this file through the live path instead of the microphone.
        #[arg(long, requires = "mic", conflicts_with = "device")]
        input: Option<PathBuf>,
        /// A JSON array of {"path", "score"}, best first.
        #[arg(long)]
        json: bool,
        #[arg(long, value_enum, default_value_t = EncoderChoice::Auto)]
        encoder: EncoderChoice,
    },
    /// How well each caption describes each image: a probability per caption per image.
    Match {
        #[arg(required = true)]
        images: Vec<PathBuf>,
        #[arg(long = "caption", required = true)]
        captions: Vec<String>,
        #[arg(long)]
        json: bool,
        #[arg(long, value_enum, default_value_t = EncoderChoice::Auto)]
        encoder: EncoderChoice,
    },
    /// Voice commands: check a command file, match recordings against it.
    Commands {
        #[command(subcommand)]
        command: CommandsCommand,
    },
}

#[derive(Subcommand)]
enum CommandsCommand {
    /// Decide which command each recording says (or none): transcript, decision, top-3 scores.
    Match {
        /// The command set (TOML); the built-in set when not given.
        #[arg(long)]
        commands: Option<PathBuf>,
        /// One JSON object per file per line.
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        speech: SpeechArgs,
    },
    /// Check a command file and list its commands.
    Check {
        /// The command set (TOML); the built-in set when not given.
        file: Option<PathBuf>,
    },
}

#[derive(clap::Args, Clone)]
struct SpeechArgs {
    /// Whisper model from the catalogue.
    #[arg(long, default_value = model_store::catalogue::DEFAULT_WHISPER)]
    model: String,
    /// Spoken language code (en, de, fr, …) or auto.
    #[arg(long, default_value = "auto")]
    language: String,
    /// Translate into English (multilingual models).
    #[arg(long)]
    translate: bool,
    /// Text that primes the decoder (names, spelling).
    #[arg(long)]
    prompt: Option<String>,
    /// CPU threads for Whisper.
    #[arg(long, default_value_t = speech::default_threads())]
    threads: usize,
    /// Always run Whisper's encoder on its full 30 s window (by default it is cut to fit short
    /// clips, which is faster at the same accuracy).
    #[arg(long)]
    full_window: bool,
    /// Times for every word too (JSON `words` in each segment).
    #[arg(long)]
    word_timestamps: bool,
}

impl SpeechArgs {
    fn options(&self) -> speech::Options {
        speech::Options {
            language: self.language.clone(),
            translate: self.translate,
            prompt: self.prompt.clone(),
            threads: self.threads,
            short_audio_ctx: !self.full_window,
            word_timestamps: self.word_timestamps,
            ..speech::Options::default()
        }
    }
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
    /// Convert a CTranslate2 Whisper model folder (model.bin, tokenizer.json) to a ggml file.
    Convert { ct2_dir: PathBuf, output: PathBuf },
}

#[derive(Clone, Copy, ValueEnum)]
enum SourceArg {
    Auto,
    Hub,
    Mirror,
}

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CROSSMODAL_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli, started) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, started: std::time::Instant) -> anyhow::Result<ExitCode> {
    let store = ModelStore::from_env()?;
    match cli.command {
        None => {
            let options = crossmodal::gui::Options {
                input: cli.input,
                gallery: cli.gallery,
                commands: cli.commands,
                screenshot: cli.screenshot,
                first_frame: cli.first_frame.then_some(started),
                settings: None,
                device: None,
            };
            crossmodal::gui::run(store, options)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Models { command }) => models(&store, command),
        Some(Command::Status) => Ok(status(store)),
        Some(Command::Transcribe { files, speech, format, output }) => {
            transcribe(store, &files, &speech, format, output.as_deref())
        }
        Some(Command::Listen { input, device, record, speed, json, partial, commands, dry_run, speech }) => {
            let config = crossmodal::audio::capture::config_dir();
            let source = if let Some(path) = input {
                InputSource::File { path, speed }
            } else {
                let (device, remembered) =
                    crossmodal::audio::capture::choose_device(device.as_deref(), config.as_deref());
                if remembered && let Some(d) = &device {
                    eprintln!("using {d}, chosen last time (--device picks another)");
                }
                InputSource::Microphone { device }
            };
            let commands = commands.map(|path| WatchedCommands::open(&path)).transpose()?;
            let output = ListenOutput { json, partial, dry_run };
            listen(store, &source, record.as_deref(), output, commands, &speech)
        }
        Some(Command::Index { dirs, gallery, reindex, encoder }) => {
            index(&ImageSpace::load(&store, encoder)?, &dirs, gallery, reindex)
        }
        Some(Command::Search { query, gallery, top, image, audio, mic, device, input, json, encoder }) => {
            let space = ImageSpace::load(&store, encoder)?;
            let mic = mic.then(|| {
                if let Some(path) = input {
                    InputSource::File { path, speed: 1.0 }
                } else {
                    let config = crossmodal::audio::capture::config_dir();
                    let (device, _) =
                        crossmodal::audio::capture::choose_device(device.as_deref(), config.as_deref());
                    InputSource::Microphone { device }
                }
            });
            let query = Query {
                text: query.as_deref(),
                image: image.as_deref(),
                audio: audio.as_deref(),
                mic: mic.as_ref(),
            };
            search(&store, &space, &query, gallery, top, json)
        }
        Some(Command::Match { images, captions, json, encoder }) => {
            match_images(&ImageSpace::load(&store, encoder)?, &images, &captions, json)
        }
        Some(Command::Commands { command: CommandsCommand::Check { file } }) => {
            let set = load_commands(file.as_deref())?;
            println!("{}: {} commands", set.origin, set.len());
            for c in &set.commands {
                println!("  {} ({}) -> {:?}", c.name, c.phrases.join(" | "), c.action);
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Commands { command: CommandsCommand::Match { commands, json, files, speech } }) => {
            match_commands(store, &load_commands(commands.as_deref())?, &files, json, &speech)
        }
        Some(Command::Devices) => {
            let devices = crossmodal::audio::capture::input_devices()?;
            if devices.is_empty() {
                println!("no input devices");
            }
            for d in devices {
                println!("{d}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn gallery_path(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p);
    }
    let dirs = directories::ProjectDirs::from("", "", "crossmodal")
        .context("no platform data folder; pass --gallery")?;
    Ok(dirs.data_dir().join("gallery.sqlite"))
}

fn index(
    space: &ImageSpace,
    dirs: &[PathBuf],
    gallery: Option<PathBuf>,
    reindex: bool,
) -> anyhow::Result<ExitCode> {
    let path = gallery_path(gallery)?;
    let mut gallery = Gallery::open(&path, &space.id(), reindex)?;
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new(0) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("indexing {bar:40} {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = gallery.index(
        dirs,
        &mut |images| space.embed_images(images).map_err(|e| e.to_string()),
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    println!(
        "{}: added {}, updated {}, renamed {}, unchanged {}, removed {}, failed {}",
        path.display(),
        report.added,
        report.updated,
        report.renamed,
        report.unchanged,
        report.removed,
        report.failed.len()
    );
    for (file, why) in &report.failed {
        println!("  skipped {}: {why}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// What to search for; the parts given are added.
struct Query<'a> {
    text: Option<&'a str>,
    image: Option<&'a Path>,
    audio: Option<&'a Path>,
    mic: Option<&'a InputSource>,
}

fn search(
    store: &ModelStore,
    space: &ImageSpace,
    query: &Query<'_>,
    gallery: Option<PathBuf>,
    top: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if query.text.is_none() && query.image.is_none() && query.audio.is_none() && query.mic.is_none() {
        anyhow::bail!("give a text query, --image FILE, --audio FILE or --mic");
    }
    let path = gallery_path(gallery)?;
    if !path.exists() {
        anyhow::bail!(
            "no gallery at {}: run `crossmodal index DIR --gallery {}` first",
            path.display(),
            path.display()
        );
    }
    let gallery = Gallery::open(&path, &space.id(), false)?;
    let mut sum: Vec<f32> = Vec::new();
    let mut add = |w: f32, e: &crossmodal::space::Embedding| {
        sum.resize(e.as_slice().len(), 0.0);
        for (s, x) in sum.iter_mut().zip(e.as_slice()) {
            *s += w * x;
        }
    };
    if let Some(q) = query.text {
        for (w, term) in parse_terms(q).map_err(|e| anyhow::anyhow!("query: {e}"))? {
            add(w, &space.embed_text(&term)?);
        }
    }
    if let Some(file) = query.image {
        let img = load_image(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let e = space.embed_images(&[img])?;
        add(1.0, &e[0]);
    }
    // A spoken query, from a recording or the microphone, becomes its transcript.
    let spoken = if let Some(file) = query.audio {
        Some((file.display().to_string(), crossmodal::audio::decode_file(file)?.samples))
    } else if let Some(source) = query.mic {
        eprintln!("say what to find (10 s)…");
        let Some(samples) = crossmodal::audio::capture::first_utterance(source, Duration::from_secs(10))?
        else {
            anyhow::bail!("nothing was said");
        };
        Some(("the microphone".to_owned(), samples))
    } else {
        None
    };
    if let Some((from, samples)) = spoken {
        let spec = model_store::spec(model_store::catalogue::DEFAULT_WHISPER)?;
        let whisper = speech::Whisper::load(&store.open_checked(spec)?, false)?;
        let t = whisper.transcribe(&samples, &speech::Options::default())?;
        if t.text.is_empty() {
            anyhow::bail!("{from}: no speech heard");
        }
        eprintln!("heard: {}", t.text);
        add(1.0, &space.embed_text(&t.text)?);
    }
    let hits = gallery.search(&crossmodal::space::Embedding::normalised(sum), top)?;
    if json {
        println!("{}", serde_json::to_string(&hits)?);
    } else if hits.is_empty() {
        println!("the gallery is empty");
    } else {
        for h in hits {
            println!("{:.3}  {}", h.score, h.path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn match_images(
    space: &ImageSpace,
    images: &[PathBuf],
    captions: &[String],
    json: bool,
) -> anyhow::Result<ExitCode> {
    let caption_vectors = space.embed_texts(captions)?;
    let mut failed = false;
    for file in images {
        let img = match load_image(file) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("error: {}: {e}", file.display());
                failed = true;
                continue;
            }
        };
        let v = space.embed_images(&[img])?.remove(0);
        let logits: Vec<f32> = caption_vectors.iter().map(|c| space.caption_scale() * v.cosine(c)).collect();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let total: f32 = exp.iter().sum();
        let probs: Vec<f32> = exp.iter().map(|e| e / total).collect();
        if json {
            let per: Vec<_> = captions
                .iter()
                .zip(&probs)
                .map(|(c, p)| serde_json::json!({ "caption": c, "probability": p }))
                .collect();
            println!("{}", serde_json::json!({ "file": file.display().to_string(), "captions": per }));
        } else {
            println!("{}", file.display());
            for (c, p) in captions.iter().zip(&probs) {
                println!("  {:5.1} %  {c}", p * 100.0);
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn load_commands(path: Option<&Path>) -> anyhow::Result<CommandSet> {
    Ok(match path {
        Some(p) => CommandSet::load(p)?,
        None => CommandSet::built_in(),
    })
}

/// Waits for the engine to take a command set.
fn set_commands(engine: &Engine, set: CommandSet) -> anyhow::Result<()> {
    engine.send(Request::SetCommands(set, crossmodal::commands::matcher::CALIBRATED));
    loop {
        match engine.recv().context("the inference engine stopped")? {
            Event::CommandsReady { .. } => return Ok(()),
            Event::Error(e) => anyhow::bail!(e),
            _ => {}
        }
    }
}

fn match_commands(
    store: ModelStore,
    set: &CommandSet,
    files: &[PathBuf],
    json: bool,
    args: &SpeechArgs,
) -> anyhow::Result<ExitCode> {
    model_store::spec(&args.model)?;
    let engine = Engine::start(store, Arc::new(|| {}));
    set_commands(&engine, set.clone())?;
    let mut failed = false;
    for file in files {
        let tag = file.display().to_string();
        engine.send(Request::MatchCommand {
            model: args.model.clone(),
            audio: AudioInput::File(file.clone()),
            options: args.options(),
            tag: tag.clone(),
        });
        let result = loop {
            match engine.recv().context("the inference engine stopped")? {
                Event::Matched { result, .. } => break result,
                Event::Error(e) => eprintln!("error: {e}"),
                _ => {}
            }
        };
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
                eprintln!("error: {tag}: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn human(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn specs(names: &[String], default: bool) -> anyhow::Result<Vec<&'static model_store::ModelSpec>> {
    if names.is_empty() {
        return Ok(CATALOGUE.iter().filter(|s| !default || s.default).collect());
    }
    names.iter().map(|n| model_store::spec(n).map_err(Into::into)).collect()
}

fn models(store: &ModelStore, command: ModelsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ModelsCommand::List => {
            println!("{:<20} {:<28} {:>10}  STATE", "MODEL", "ROLE", "SIZE");
            for spec in CATALOGUE {
                let name = if spec.default { format!("{} *", spec.name) } else { spec.name.to_owned() };
                let (size, state) = if store.is_installed(spec) {
                    (store.installed_bytes(spec), "installed")
                } else {
                    (spec.approx_bytes, "not installed")
                };
                println!("{name:<20} {:<28} {:>10}  {state}", spec.role.describe(), human(size));
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

fn status(store: ModelStore) -> ExitCode {
    let engine = Engine::start(store, Arc::new(|| {}));
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
    let mut failed = false;
    for spec in CATALOGUE {
        let status = statuses.get(spec.name).cloned().unwrap_or(ModelStatus::NotInstalled);
        failed |= matches!(status, ModelStatus::Failed(_));
        println!("{:<20} {status}", spec.name);
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn transcribe(
    store: ModelStore,
    files: &[PathBuf],
    args: &SpeechArgs,
    format: Format,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    model_store::spec(&args.model)?;
    let to_folder = output.is_some_and(|o| o.is_dir() || files.len() > 1);
    if to_folder {
        let dir = output.unwrap_or_else(|| Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let engine = Engine::start(store, Arc::new(|| {}));
    let mut failed = 0;
    let mut single = String::new();
    let interactive = std::io::stderr().is_terminal();
    for file in files {
        let tag = file.display().to_string();
        engine.send(Request::Transcribe {
            model: args.model.clone(),
            audio: AudioInput::File(file.clone()),
            options: args.options(),
            tag: tag.clone(),
        });
        let bar = if interactive { ProgressBar::new(1000) } else { ProgressBar::hidden() };
        bar.set_style(
            ProgressStyle::with_template("{msg} {bar:40} {percent}% {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(tag.clone());
        let result = loop {
            match engine.recv().context("the inference engine stopped")? {
                Event::Transcribed { result, .. } => break result,
                Event::Progress { fraction, .. } => bar.set_position((fraction * 1000.0) as u64),
                Event::Error(e) => eprintln!("error: {e}"),
                _ => {}
            }
        };
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
                    None => print!("{text}"),
                }
            }
            Err(e) => {
                eprintln!("error: {tag}: {e}");
                failed += 1;
            }
        }
    }
    if let Some(path) = output.filter(|_| !to_folder) {
        std::fs::write(path, single).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Live transcription: capture → voice-activity detection → the engine, printing each utterance
/// as its transcript arrives. Transcription runs on the engine thread, so capture never waits;
/// `--record` keeps every sample heard even if transcription falls behind.
/// How `listen` prints.
#[derive(Clone, Copy)]
struct ListenOutput {
    json: bool,
    partial: bool,
    dry_run: bool,
}

/// Reports a live decision and fires its command's action; a failing action is reported and
/// listening goes on.
fn act(
    d: &crossmodal::commands::Decision,
    commands: Option<&WatchedCommands>,
    start: f64,
    took: Duration,
    output: ListenOutput,
) {
    let ms = took.as_millis();
    let Some(name) = &d.command else {
        if output.json {
            println!(
                "{}",
                serde_json::json!({ "start": start, "transcript": d.transcript, "command": null })
            );
        } else {
            println!("[{start:7.2}s] {} -> no match", d.transcript);
        }
        return;
    };
    let score = d.scores.first().map_or(0.0, |s| s.score);
    let fired = Fired { command: name, transcript: &d.transcript, score };
    let action = commands.and_then(|c| c.set().commands.iter().find(|c| &c.name == name)).map(|c| &c.action);
    let Some(action) = action else { return };
    if output.json {
        println!(
            "{}",
            serde_json::json!({ "start": start, "transcript": d.transcript, "command": name, "score": score,
                "action": action.describe(&fired), "dry_run": output.dry_run, "ms": ms })
        );
    } else {
        println!("[{start:7.2}s] {} -> {name} ({score:.2}, {ms} ms)", d.transcript);
    }
    if output.dry_run {
        if !output.json {
            println!("           would {}", action.describe(&fired));
        }
        return;
    }
    match action.fire(&fired) {
        Ok(line) if !output.json => println!("           {line}"),
        Ok(_) => {}
        Err(e) => eprintln!("error: {e}"),
    }
}

/// How often a partial transcript of the utterance in progress is asked for.
const PARTIAL_EVERY: Duration = Duration::from_secs(1);
const PARTIAL_TAG: &str = "partial";

fn listen(
    store: ModelStore,
    source: &InputSource,
    record: Option<&Path>,
    output: ListenOutput,
    mut commands: Option<WatchedCommands>,
    args: &SpeechArgs,
) -> anyhow::Result<ExitCode> {
    model_store::spec(&args.model)?;
    let engine = Engine::start(store, Arc::new(|| {}));
    if let Some(c) = &commands {
        set_commands(&engine, c.set().clone())?;
        eprintln!("{} commands from {}", c.set().len(), c.path().display());
    }
    let mut capture = Capture::start(source)?;
    eprintln!("listening to {} (Ctrl+C stops)", capture.name);
    // A device asked for by name that opened is remembered for next time.
    if let InputSource::Microphone { device: Some(name) } = source
        && let Some(config) = crossmodal::audio::capture::config_dir()
        && let Err(e) = crossmodal::audio::capture::remember_device(&config, name)
    {
        eprintln!("warning: could not remember the device in {}: {e}", config.display());
    }
    let mut recorder = record.map(Recorder::create).transpose()?;
    let mut vad = Vad::new();
    let mut pending = std::collections::BTreeMap::new();
    let mut next_id = 0u64;
    let mut failed = false;
    let mut ended = false;
    let mut partial_in_flight = false;
    let mut last_partial = std::time::Instant::now();
    let mut answered = 0u64;
    while !ended || !pending.is_empty() || partial_in_flight {
        let mut events = Vec::new();
        if !ended {
            match capture.next(Duration::from_millis(50))? {
                Captured::Audio(samples) => {
                    if let Some(r) = recorder.as_mut() {
                        r.write(&samples)?;
                    }
                    events = vad.push(&samples);
                }
                Captured::Idle => {}
                Captured::Ended => {
                    ended = true;
                    events = vad.finish();
                }
            }
        }
        if let Some(watched) = commands.as_mut() {
            match watched.reload_if_changed() {
                Some(Ok(set)) => {
                    eprintln!("reloaded {} ({} commands)", set.origin, set.len());
                    set_commands(&engine, set.clone())?;
                }
                Some(Err(e)) => eprintln!("error: {e} (still using the previous commands)"),
                None => {}
            }
        }
        for event in events {
            if let VadEvent::Utterance { samples, start } = event {
                let end = start + samples.len() as f64 / f64::from(crossmodal::audio::SAMPLE_RATE);
                pending.insert(next_id, (start, end));
                let (model, options, tag) = (args.model.clone(), args.options(), next_id.to_string());
                let audio = AudioInput::Samples(samples);
                engine.send(if commands.is_some() {
                    Request::MatchCommand { model, audio, options, tag }
                } else {
                    Request::Transcribe { model, audio, options, tag }
                });
                next_id += 1;
            }
        }
        // A partial transcript only while nothing final waits, so finals are never delayed.
        if output.partial
            && !ended
            && !partial_in_flight
            && pending.is_empty()
            && last_partial.elapsed() >= PARTIAL_EVERY
            && let Some(current) = vad.current()
        {
            partial_in_flight = true;
            last_partial = std::time::Instant::now();
            engine.send(Request::Transcribe {
                model: args.model.clone(),
                audio: AudioInput::Samples(current.to_vec()),
                options: args.options(),
                tag: PARTIAL_TAG.to_owned(),
            });
        }
        // Once the input has ended, wait for the answers still out; with none out, nothing
        // more will come (found by the soak run: it waited for ever after the last answer).
        let waiting = if ended && (!pending.is_empty() || partial_in_flight) {
            engine.recv().into_iter().collect()
        } else {
            engine.poll()
        };
        for event in waiting {
            match event {
                Event::Transcribed { tag, result } if tag == PARTIAL_TAG => {
                    partial_in_flight = false;
                    if let Some(t) = result.ok().filter(|t| !t.text.is_empty()) {
                        eprintln!("… {}", t.text);
                    }
                }
                Event::Transcribed { tag, result } => {
                    let Some((start, end)) = tag.parse::<u64>().ok().and_then(|id| pending.remove(&id))
                    else {
                        continue;
                    };
                    answered += 1;
                    match result {
                        Ok(t) if t.text.is_empty() => {}
                        Ok(t) if output.json => {
                            println!("{}", serde_json::json!({ "start": start, "end": end, "text": t.text }));
                        }
                        Ok(t) => println!("[{start:7.2}s] {}", t.text),
                        Err(e) => {
                            eprintln!("error: {e}");
                            failed = true;
                        }
                    }
                }
                Event::Matched { tag, result } => {
                    let Some((start, _)) = tag.parse::<u64>().ok().and_then(|id| pending.remove(&id)) else {
                        continue;
                    };
                    answered += 1;
                    match result {
                        Ok((d, _)) if d.transcript.is_empty() => {}
                        Ok((d, took)) => act(&d, commands.as_ref(), start, took, output),
                        Err(e) => {
                            eprintln!("error: {e}");
                            failed = true;
                        }
                    }
                }
                Event::Error(e) => eprintln!("error: {e}"),
                _ => {}
            }
        }
    }
    if let Some(r) = recorder {
        r.finish()?;
    }
    eprintln!("{next_id} utterances heard, {answered} answered");
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
