//! The command line: no subcommand opens the window; each subcommand runs one job headless,
//! through the same engine requests and live pipeline as the window. This module parses the
//! arguments and hands each subcommand to its own file, which prints its answers.

mod commands;
mod library;
mod listen;
mod models;
mod transcribe;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crossmodal::audio::capture::{self, InputSource};
use crossmodal::gallery::rank::SearchKind;
use crossmodal::model_store::{self, ModelStore};
use crossmodal::space::images::EncoderChoice;
use crossmodal::speech::{self, export::Format};

use self::commands::{load_commands, match_commands, watched_commands};
use self::library::{Query, duplicates, index, match_images, search};
use self::listen::{ListenOutput, dictate, listen};
use self::models::{models, status};
use self::transcribe::transcribe;

#[derive(Parser)]
#[command(name = "crossmodal", version, about = "Speech, text and images in one shared embedding space")]
pub struct Cli {
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
        /// How a spoken query (--audio, --mic) is heard: the Whisper model, its language, …
        #[command(flatten)]
        speech: SpeechArgs,
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

pub fn run(cli: Cli, started: Instant) -> anyhow::Result<ExitCode> {
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
            speech,
        }) => {
            let mic = mic.then(|| match input {
                Some(path) => InputSource::File { path, speed: 1.0 },
                None => microphone(device.as_deref(), false),
            });
            let query = Query { text: query, image, audio, mic, speech };
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

/// An error about a file, naming the file once: audio errors already start with its path.
fn naming(path: &str, error: &impl std::fmt::Display) -> String {
    let text = error.to_string();
    if text.starts_with(path) { text } else { format!("{path}: {text}") }
}
