//! `add`, `index`, `search`, `duplicates` and `match`: the library of images and spoken moments.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crossmodal::audio::capture::InputSource;
use crossmodal::engine::{Ask, Engine, Event, FoundItem, ImageQuery, JobId, Request, SpokenQuery};
use crossmodal::gallery::rank::SearchKind;
use crossmodal::live::{Live, LiveEvent, Purpose};
use crossmodal::model_store::{self, ModelStore};
use crossmodal::space::images::EncoderChoice;

use super::{LibraryArgs, SpeechArgs, gallery_path, progress_bar, unwatched};

pub(super) fn index(
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
pub(super) struct Query {
    pub(super) text: Option<String>,
    pub(super) image: Option<PathBuf>,
    pub(super) audio: Option<PathBuf>,
    pub(super) mic: Option<InputSource>,
    /// How a spoken query is heard.
    pub(super) speech: SpeechArgs,
}

/// How long `search --mic` waits for the query to be said.
const SAY_WITHIN: Duration = Duration::from_secs(10);

pub(super) fn search(
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
        Some(say_query(&engine, source, &query.speech)?)
    } else {
        None
    };
    // Heard with the model and language asked for, as `transcribe` would hear it.
    model_store::speech_spec(&query.speech.model)?;
    let (model, options) = (query.speech.model.clone(), query.speech.options());
    let audio = audio.map(|samples| SpokenQuery { samples, model, options });
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

pub(super) fn duplicates(
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
fn say_query(engine: &Engine, source: InputSource, heard_with: &SpeechArgs) -> anyhow::Result<Vec<f32>> {
    let settings = crossmodal::live::Settings {
        source,
        purpose: Purpose::Query,
        model: heard_with.model.clone(),
        options: heard_with.options(),
        record: None,
        paused: false,
        voice_threshold: heard_with.voice_threshold,
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

pub(super) fn match_images(
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
