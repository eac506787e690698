//! The command line: no subcommand opens the window; each subcommand runs one job headless,
//! through the same engine requests and live pipeline as the window. This file parses
//! arguments and prints answers.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crossmodal::audio::capture::{self, InputSource};
use crossmodal::commands::{CommandSet, Outcome, WatchedCommands};
use crossmodal::engine::{
    Ask, AudioInput, Engine, Event, FoundItem, ImageQuery, JobId, ModelStatus, Request, start_up_settled,
};
use crossmodal::gallery::rank::SearchKind;
use crossmodal::live::{Live, LiveEvent, Purpose};
use crossmodal::model_store::{self, CATALOGUE, FetchOptions, FetchOutcome, ModelStore, Source};
use crossmodal::space::images::EncoderChoice;
use crossmodal::speech::{self, export, export::Format};

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
    /// Window: turn push-to-talk on with this shortcut (e.g. ctrl+alt+space); what is said while
    /// it is held is typed into the focused window (Settings panel: hold or toggle, commands).
    #[arg(long, value_name = "KEY")]
    push_to_talk: Option<String>,
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
        /// Output format; with json, one object per file per line. Default: the --output file's
        /// ending (talk.srt), else txt.
        #[arg(long, value_enum)]
        format: Option<Format>,
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
        /// Recognise voice commands and fire their actions: these (TOML), or with no file the
        /// user's set (the config folder's commands.toml, which the window saves; the built-in
        /// set until there is one).
        #[arg(long, value_name = "FILE", num_args = 0..=1)]
        #[allow(clippy::option_option)] // clap's way: not given, given alone, given a file
        commands: Option<Option<PathBuf>>,
        /// With --commands: say what each action would do instead of doing it.
        #[arg(long, requires = "commands")]
        dry_run: bool,
        #[command(flatten)]
        speech: SpeechArgs,
    },
    /// Push-to-talk: while a global shortcut is held, listen; type what is said into the window
    /// that has the focus, or (with --commands) fire the command it matches. X11.
    Dictate {
        /// The shortcut: modifiers and a key, e.g. ctrl+alt+space, super+f9.
        #[arg(long, default_value = crossmodal::hotkey::DEFAULT)]
        key: String,
        /// Press once to start listening and again to stop, instead of holding the keys. With a
        /// dictation already running, start or stop it and exit (bind this to a shortcut in the
        /// desktop's settings where keys cannot be grabbed: Wayland).
        #[arg(long)]
        toggle: bool,
        /// Input device name (see `crossmodal devices`); the default device otherwise.
        #[arg(long)]
        device: Option<String>,
        /// Match what is said against voice commands instead of typing it: these (TOML), or
        /// with no file the user's set (as `listen --commands`).
        #[arg(long, value_name = "FILE", num_args = 0..=1)]
        #[allow(clippy::option_option)] // clap's way: not given, given alone, given a file
        commands: Option<Option<PathBuf>>,
        /// With --commands: say what each action would do instead of doing it.
        #[arg(long, requires = "commands")]
        dry_run: bool,
        /// One JSON object per event: {"listening"}, {"typed", "ms"} (after the keys came up), …
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        speech: SpeechArgs,
    },
    /// List audio input devices.
    Devices,
    /// Add images and recordings to the library: images are embedded, recordings transcribed
    /// into spoken moments (only what changed is read again; removed files are dropped).
    Add {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        library: LibraryArgs,
        /// Whisper model that transcribes the recordings.
        #[arg(long, default_value = model_store::catalogue::DEFAULT_WHISPER)]
        model: String,
        /// Keep watching: look again every --every seconds and add what is new or changed,
        /// until Ctrl+C.
        #[arg(long)]
        watch: bool,
        #[arg(long, default_value_t = 10.0, requires = "watch")]
        every: f64,
    },
    /// Index folders of images only into a gallery (`add` takes recordings too).
    Index {
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        #[command(flatten)]
        library: LibraryArgs,
    },
    /// Find images and spoken moments by text (sums and differences: `beach - people`), by an
    /// example image, or by speech; the parts given are added.
    Search {
        query: Option<String>,
        /// What to find: images and moments in one list ordered by relevance, or one kind.
        #[arg(long, value_enum, default_value_t = SearchKind::All)]
        kind: SearchKind,
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
        /// A JSON array, best first: {"kind":"image", "path", "score", "cosine"} and
        /// {"kind":"speech", "path", "start", "end", "text", "before", "after", "score", "cosine"}.
        #[arg(long)]
        json: bool,
        #[arg(long, value_enum, default_value_t = EncoderChoice::Auto)]
        encoder: EncoderChoice,
    },
    /// Groups of near-duplicate images in the library: the same photograph re-encoded, resized
    /// or cropped.
    Duplicates {
        #[arg(long)]
        gallery: Option<PathBuf>,
        /// Feature cosine at which two images count as one (0–1; higher is stricter).
        #[arg(long)]
        threshold: Option<f32>,
        /// A JSON array of groups, each an array of paths.
        #[arg(long)]
        json: bool,
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

/// Where `add` and `index` write, and how images are encoded.
#[derive(clap::Args)]
struct LibraryArgs {
    /// The library file (SQLite); the platform data folder's gallery.sqlite by default.
    #[arg(long)]
    gallery: Option<PathBuf>,
    /// Encode every image again (needed when the library was made by another image encoder);
    /// recordings are kept.
    #[arg(long)]
    reindex: bool,
    #[arg(long, value_enum, default_value_t = EncoderChoice::Auto)]
    encoder: EncoderChoice,
}

#[derive(Subcommand)]
enum CommandsCommand {
    /// Decide which command each recording says (or none): transcript, decision, top-3 scores.
    Match {
        /// The command set (TOML); the user's set when not given (the config folder's
        /// commands.toml, which the window saves; the built-in set until there is one).
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
        /// The command set (TOML); the user's set when not given.
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
    /// Live listening: the voice detector's speech threshold, 0.05–0.95 (lower hears quieter
    /// speech, and more noise).
    #[arg(long, default_value_t = crossmodal::audio::vad::DEFAULT_THRESHOLD, value_parser = voice_threshold)]
    voice_threshold: f32,
}

fn voice_threshold(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(t) if (0.05..=0.95).contains(&t) => Ok(t),
        _ => Err(format!("{text}: the threshold is a number from 0.05 to 0.95")),
    }
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
    let started = Instant::now();
    // whisper.cpp's own log (forwarded by whisper-rs) only when asked for: its failures come
    // back as errors the program reports itself, once, and a job cancelled on purpose (speech
    // that went on after a pause) logs "failed to encode", which is no error.
    let whisper = if std::env::var_os(speech::WHISPER_LOG_ENV).is_some() { "info" } else { "off" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CROSSMODAL_LOG")
                // symphonia logs its probing of a file that is not audio as an error; the
                // program says so itself, once, with the file's name.
                .unwrap_or_else(|_| format!("warn,whisper_rs={whisper},symphonia_core=off").into()),
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

fn run(cli: Cli, started: Instant) -> anyhow::Result<ExitCode> {
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
                push_to_talk: cli.push_to_talk,
                file_dialogs: None,
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
            let source = match input {
                Some(path) => InputSource::File { path, speed },
                None => microphone(device.as_deref(), true),
            };
            let commands = commands.map(watched_commands).transpose()?;
            let output = ListenOutput { json, partial, dry_run };
            listen(store, source, record, output, commands, &speech)
        }
        Some(Command::Dictate { key, toggle, device, commands, dry_run, json, speech }) => {
            let shortcut: crossmodal::hotkey::Shortcut = key.parse()?;
            // A dictation already running (started without a grabbed key, on Wayland, or with
            // one): `--toggle` starts or stops it, as a shortcut bound in the desktop runs it.
            #[cfg(unix)]
            if toggle && let Ok(state) = crossmodal::toggle::send_toggle() {
                println!("{state}");
                return Ok(ExitCode::SUCCESS);
            }
            let commands = commands.map(watched_commands).transpose()?;
            let output = ListenOutput { json, partial: false, dry_run };
            let source = microphone(device.as_deref(), false);
            dictate(store, shortcut, toggle, source, output, commands, &speech)
        }
        Some(Command::Add { paths, library, model, watch, every }) => {
            model_store::speech_spec(&model)?;
            let watch = watch.then(|| Duration::from_secs_f64(every.max(0.5)));
            index(store, &paths, library, Some(&model), watch)
        }
        Some(Command::Index { dirs, library }) => index(store, &dirs, library, None, None),
        Some(Command::Search {
            query,
            kind,
            gallery,
            top,
            image,
            audio,
            mic,
            device,
            input,
            json,
            encoder,
        }) => {
            let mic = mic.then(|| match input {
                Some(path) => InputSource::File { path, speed: 1.0 },
                None => microphone(device.as_deref(), false),
            });
            let query = Query { text: query, image, audio, mic };
            search(store, query, kind, gallery, top, json, encoder)
        }
        Some(Command::Duplicates { gallery, threshold, json }) => duplicates(store, gallery, threshold, json),
        Some(Command::Match { images, captions, json, encoder }) => {
            match_images(store, images, &captions, json, encoder)
        }
        Some(Command::Commands { command: CommandsCommand::Check { file } }) => {
            let set = load_commands(file.as_deref())?;
            let count = set.len();
            println!("{}: {count} command{}", set.origin, if count == 1 { "" } else { "s" });
            for c in &set.commands {
                let phrases: Vec<String> = c.phrases.iter().map(|p| format!("\"{p}\"")).collect();
                println!("  {}: say {} to {}", c.name, phrases.join(" or "), c.action.summary());
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Commands { command: CommandsCommand::Match { commands, json, files, speech } }) => {
            match_commands(store, &load_commands(commands.as_deref())?, &files, json, &speech)
        }
        Some(Command::Devices) => {
            let devices = capture::input_devices()?;
            if devices.is_empty() {
                println!("no input devices");
            }
            // One a line: the name --device takes, then what it is.
            for d in devices {
                println!("{d}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Nothing to wake on the command line: it waits on the answers themselves.
fn unwatched() -> crossmodal::engine::Notify {
    Arc::new(|| {})
}

/// The microphone asked for, else the one chosen last time, else the default.
fn microphone(asked: Option<&str>, say_remembered: bool) -> InputSource {
    let config = capture::config_dir();
    let (device, remembered) = capture::choose_device(asked, config.as_deref());
    if say_remembered
        && remembered
        && let Some(d) = &device
    {
        eprintln!("using {d}, chosen last time (--device picks another)");
    }
    InputSource::Microphone { device }
}

fn gallery_path(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    given.or_else(crossmodal::gallery::default_path).context("no platform data folder; pass --gallery")
}

/// A progress bar on a terminal, nothing otherwise.
fn progress_bar(template: &str, length: u64) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new(length) } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}

fn index(
    store: ModelStore,
    paths: &[PathBuf],
    library: LibraryArgs,
    speech: Option<&str>,
    watch: Option<Duration>,
) -> anyhow::Result<ExitCode> {
    // A path that is not there is an error; the ones that are are still added.
    let (there, missing): (Vec<PathBuf>, Vec<PathBuf>) = paths.iter().cloned().partition(|p| p.exists());
    for p in &missing {
        eprintln!("error: {}: no such file or folder", p.display());
    }
    if there.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    let paths = there.as_slice();
    let LibraryArgs { gallery, reindex, encoder } = library;
    let path = gallery_path(gallery)?;
    let engine = Engine::start(store, unwatched());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if watch.is_some() {
        // Ctrl+C ends the watch after the file at hand; what was added stays.
        let flag = Arc::clone(&stop);
        if let Err(e) = ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::Relaxed)) {
            eprintln!("warning: Ctrl+C will not stop cleanly: {e}");
        }
        eprintln!(
            "watching {} (Ctrl+C stops)",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let mut first = true;
    let mut told: std::collections::HashSet<(PathBuf, String)> = std::collections::HashSet::new();
    loop {
        let request = Request::Index {
            gallery: path.clone(),
            paths: paths.to_vec(),
            encoder,
            reindex: reindex && first,
            speech: speech.map(str::to_owned),
        };
        let report = add_once(&engine, request, &stop)?;
        // Watching, a look that found nothing new (no change, no new failure) says nothing.
        let fresh = report.failed.iter().filter(|f| told.insert((*f).clone())).count();
        let new_failure = fresh > 0;
        let changed = report.added + report.updated + report.renamed + report.removed > 0 || new_failure;
        if first || changed {
            print_report(&path, &report, speech.is_some());
        }
        first = false;
        let Some(every) = watch else { break };
        let until = Instant::now() + every;
        while Instant::now() < until && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
    Ok(if missing.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// One add run, with a progress bar on a terminal; `stop` cancels it.
fn add_once(
    engine: &Engine,
    request: Request,
    stop: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<crossmodal::gallery::IndexReport> {
    engine.send(request);
    let bar = progress_bar("adding {bar:40} {pos}/{len} {elapsed} {msg}", 0);
    let mut cancelled = false;
    let report = engine.wait_for(|e| {
        if !cancelled && stop.load(std::sync::atomic::Ordering::Relaxed) {
            cancelled = true;
            engine.cancel_indexing();
        }
        match e {
            Event::Indexing { done, total, transcribing } => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.set_message(transcribing.map_or_else(String::new, |(file, fraction)| {
                    let name =
                        file.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                    format!("transcribing {name} {:.0}%", fraction * 100.0)
                }));
                None
            }
            Event::Indexed(result) => Some(result),
            Event::Error(e) => Some(Err(e)),
            _ => None,
        }
    })?;
    bar.finish_and_clear();
    report.map_err(anyhow::Error::msg)
}

fn print_report(path: &Path, report: &crossmodal::gallery::IndexReport, hears: bool) {
    let moments = if hears { format!(", moments {}", report.moments) } else { String::new() };
    println!(
        "{}: added {}, updated {}, renamed {}, unchanged {}, removed {}, failed {}{moments}",
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
    if report.cancelled {
        println!("  stopped before the end: run it again to add the rest");
    }
}

/// What to search for; the parts given are added.
struct Query {
    text: Option<String>,
    image: Option<PathBuf>,
    audio: Option<PathBuf>,
    mic: Option<InputSource>,
}

/// How long `search --mic` waits for the query to be said.
const SAY_WITHIN: Duration = Duration::from_secs(10);

fn search(
    store: ModelStore,
    query: Query,
    kind: SearchKind,
    gallery: Option<PathBuf>,
    top: usize,
    json: bool,
    encoder: EncoderChoice,
) -> anyhow::Result<ExitCode> {
    if query.text.is_none() && query.image.is_none() && query.audio.is_none() && query.mic.is_none() {
        anyhow::bail!("give a text query, --image FILE, --audio FILE or --mic");
    }
    let path = gallery_path(gallery)?;
    if !path.exists() {
        anyhow::bail!(
            "no library at {}: run `crossmodal add FOLDER --gallery {}` first",
            path.display(),
            path.display()
        );
    }
    let engine = Engine::start(store, unwatched());
    // A spoken query, from a recording or the microphone, is transcribed by the engine.
    let audio = if let Some(file) = &query.audio {
        Some(crossmodal::audio::decode_file(file).with_context(|| file.display().to_string())?.samples)
    } else if let Some(source) = query.mic {
        Some(say_query(&engine, source)?)
    } else {
        None
    };
    let id = JobId::next();
    let image_query = ImageQuery { text: query.text.unwrap_or_default(), image: query.image, audio };
    let ask = Ask { query: image_query, kind, top };
    engine.send(Request::Search { id, gallery: path, ask, encoder });
    let found = engine
        .wait_for(|e| match e {
            Event::Found { id: i, result } if i == id => Some(result),
            _ => None,
        })?
        .map_err(anyhow::Error::msg)?;
    if let Some(heard) = &found.heard {
        eprintln!("heard: {heard}");
    }
    if json {
        let hits: Vec<_> = found.items.iter().map(item_json).collect();
        println!("{}", serde_json::Value::Array(hits));
    } else if found.items.is_empty() {
        let size = found.library;
        println!(
            "nothing found: the library holds {} images and {} moments in {} recordings",
            size.images, size.moments, size.recordings
        );
    } else {
        for item in &found.items {
            match item {
                FoundItem::Image(f) => println!("{:.3}  image   {}", f.score, f.path.display()),
                FoundItem::Moment(m) => println!(
                    "{:.3}  speech  {} {}–{}  {}",
                    m.score,
                    m.path.display(),
                    crossmodal::gallery::moments::clock(m.start),
                    crossmodal::gallery::moments::clock(m.end),
                    m.text
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A search result as JSON.
fn item_json(item: &FoundItem) -> serde_json::Value {
    match item {
        FoundItem::Image(f) => serde_json::json!({
            "kind": "image", "path": f.path.to_string_lossy(), "score": f.score, "cosine": f.cosine,
        }),
        FoundItem::Moment(m) => serde_json::json!({
            "kind": "speech", "path": m.path.to_string_lossy(), "start": m.start, "end": m.end,
            "text": m.text, "before": m.context.before, "after": m.context.after,
            "score": m.score, "cosine": m.cosine,
        }),
    }
}

fn duplicates(
    store: ModelStore,
    gallery: Option<PathBuf>,
    threshold: Option<f32>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if let Some(t) = threshold.filter(|t| !(0.0..=1.0).contains(t)) {
        anyhow::bail!("--threshold {t}: give a cosine between 0 and 1");
    }
    let path = gallery_path(gallery)?;
    let engine = Engine::start(store, unwatched());
    engine.send(Request::Duplicates { gallery: path.clone(), threshold });
    let found = engine
        .wait_for(|e| match e {
            Event::Duplicates(result) => Some(result),
            _ => None,
        })?
        .map_err(anyhow::Error::msg)?;
    if json {
        let groups: Vec<Vec<String>> = found
            .groups
            .iter()
            .map(|g| g.iter().map(|p| p.to_string_lossy().into_owned()).collect())
            .collect();
        println!("{}", serde_json::json!(groups));
    } else {
        println!(
            "{}: {} groups of near-duplicates among {} images",
            path.display(),
            found.groups.len(),
            found.images
        );
        for (i, group) in found.groups.iter().enumerate() {
            println!("group {}:", i + 1);
            for p in group {
                println!("  {}", p.display());
            }
        }
    }
    if found.without_features > 0 {
        eprintln!(
            "{} images were added by an older version and are not compared: `crossmodal add` them again",
            found.without_features
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The first utterance heard from `source`, through the live pipeline.
fn say_query(engine: &Engine, source: InputSource) -> anyhow::Result<Vec<f32>> {
    let settings = crossmodal::live::Settings {
        source,
        purpose: Purpose::Query,
        model: model_store::catalogue::DEFAULT_WHISPER.to_owned(),
        options: speech::Options::default(),
        record: None,
        paused: false,
        voice_threshold: crossmodal::audio::vad::DEFAULT_THRESHOLD,
    };
    let live = Live::start(engine.connect(), settings, &unwatched());
    eprintln!("say what to find ({} s)…", SAY_WITHIN.as_secs());
    let deadline = Instant::now() + SAY_WITHIN;
    while let Some(wait) = deadline.checked_duration_since(Instant::now()) {
        match live.recv_timeout(wait) {
            Ok(Some(LiveEvent::Query(samples))) => return Ok(samples),
            Ok(Some(LiveEvent::Ended { problem: Some(p), .. })) => anyhow::bail!(p),
            Ok(Some(LiveEvent::Ended { .. })) | Err(_) => break,
            Ok(Some(LiveEvent::Problem(p))) => eprintln!("error: {p}"),
            Ok(_) => {}
        }
    }
    anyhow::bail!("nothing was said")
}

fn match_images(
    store: ModelStore,
    images: Vec<PathBuf>,
    captions: &[String],
    json: bool,
    encoder: EncoderChoice,
) -> anyhow::Result<ExitCode> {
    let captions: Vec<String> =
        captions.iter().map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect();
    let engine = Engine::start(store, unwatched());
    engine.send(Request::Captions { images, captions: captions.clone(), encoder });
    let rows = engine
        .wait_for(|e| match e {
            Event::Captioned(result) => Some(result),
            _ => None,
        })?
        .map_err(anyhow::Error::msg)?;
    let mut failed = false;
    for row in rows {
        let probs = match row.result {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {}: {e}", row.image.display());
                failed = true;
                continue;
            }
        };
        if json {
            let per: Vec<_> = captions
                .iter()
                .zip(&probs)
                .map(|(c, p)| serde_json::json!({ "caption": c, "probability": p }))
                .collect();
            println!("{}", serde_json::json!({ "file": row.image.display().to_string(), "captions": per }));
        } else {
            println!("{}", row.image.display());
            for (c, p) in captions.iter().zip(&probs) {
                println!("  {:5.1} %  {c}", p * 100.0);
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The set asked for, else the user's (their file, or the built-in set until they have one).
fn load_commands(path: Option<&Path>) -> anyhow::Result<CommandSet> {
    Ok(match path {
        Some(p) => CommandSet::load(p)?,
        None => CommandSet::users()?,
    })
}

/// `--commands FILE` follows that file; `--commands` alone the user's set.
fn watched_commands(path: Option<PathBuf>) -> anyhow::Result<WatchedCommands> {
    Ok(match path {
        Some(path) => WatchedCommands::open(&path)?,
        None => WatchedCommands::users()?,
    })
}

/// Waits for the engine to take a command set.
fn set_commands(engine: &Engine, set: CommandSet) -> anyhow::Result<()> {
    engine.send(Request::SetCommands(set, crossmodal::commands::matcher::CALIBRATED));
    engine.wait_for(|e| match e {
        Event::CommandsReady { .. } => Some(Ok(())),
        Event::Error(e) => Some(Err(anyhow::anyhow!(e))),
        _ => None,
    })?
}

fn match_commands(
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

fn specs(names: &[String], default: bool) -> anyhow::Result<Vec<&'static model_store::ModelSpec>> {
    if names.is_empty() {
        return Ok(CATALOGUE.iter().filter(|s| !default || s.default).collect());
    }
    names.iter().map(|n| model_store::spec(n).map_err(Into::into)).collect()
}

fn models(store: &ModelStore, command: ModelsCommand) -> anyhow::Result<ExitCode> {
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

fn status(store: ModelStore) -> ExitCode {
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

fn transcribe(
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

/// Hands the engine a command file that changed; a broken edit keeps the previous set.
fn reload_commands(engine: &Engine, watched: &mut WatchedCommands) -> anyhow::Result<()> {
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

/// Push-to-talk until Ctrl+C.
fn dictate(
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
struct ListenOutput {
    json: bool,
    partial: bool,
    dry_run: bool,
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
fn listen(
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

/// An error about a file, naming the file once: audio errors already start with its path.
fn naming(path: &str, error: &impl std::fmt::Display) -> String {
    let text = error.to_string();
    if text.starts_with(path) { text } else { format!("{path}: {text}") }
}
