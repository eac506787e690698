//! Transcription speed and accuracy on the public speech set, beside faster-whisper.
//!
//!     cargo bench --bench transcribe
//!
//! For each Whisper model: wall time ÷ audio duration over the 12 clips (warm model, greedy,
//! 2 threads, decoding excluded), WER (normalised as shared/eval says, and raw), with the full
//! 30 s encoder window and with the window cut to the clip (`audio_ctx`). When the Python in
//! `$CROSSMODAL_PYTHON` (default python3) has faster-whisper, it runs on the same CTranslate2
//! weights in the same run, and pywhispercpp on the same ggml file, each in a process of its
//! own; the ratios are printed. Peak RSS per system: a process transcribing the 12 clips
//! (`crossmodal transcribe` for this project). Last, peak RSS of `crossmodal transcribe` on a
//! ten-minute file.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "record.rs"]
mod record;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crossmodal::model_store::{self, ModelStore};
use crossmodal::speech::{Options, Whisper, wer};

const THREADS: usize = 2;

struct Clip {
    path: PathBuf,
    text: String,
    samples: Vec<f32>,
}

fn clips() -> Vec<Clip> {
    common::speech_clips()
        .into_iter()
        .map(|c| {
            let samples = crossmodal::audio::decode_file(&c.path).expect("decodes").samples;
            Clip { path: c.path, text: c.text, samples }
        })
        .collect()
}

struct Row {
    rtf: f64,
    wer: f64,
    raw_wer: f64,
    /// Bytes, of a process transcribing the 12 clips with this system.
    peak_rss: Option<u64>,
}

fn score(clips: &[Clip], texts: &[String]) -> (f64, f64) {
    let (mut e, mut n, mut re, mut rn) = (0, 0, 0, 0);
    for (c, t) in clips.iter().zip(texts) {
        let (a, b) = wer::errors(&c.text, t, true);
        let (ra, rb) = wer::errors(&c.text, t, false);
        e += a;
        n += b;
        re += ra;
        rn += rb;
    }
    (e as f64 / n as f64, re as f64 / rn as f64)
}

fn run(whisper: &Whisper, clips: &[Clip], short_window: bool) -> Row {
    let options = Options {
        language: "en".into(),
        threads: THREADS,
        short_audio_ctx: short_window,
        ..Options::default()
    };
    // Warm-up: first-call allocations and caches.
    let _ = whisper.transcribe(&clips[0].samples, &options);
    let audio: f64 = clips.iter().map(|c| c.samples.len() as f64 / 16_000.0).sum();
    let start = Instant::now();
    let texts: Vec<String> =
        clips.iter().map(|c| whisper.transcribe(&c.samples, &options).expect("transcribes").text).collect();
    let wall = start.elapsed().as_secs_f64();
    let (wer, raw_wer) = score(clips, &texts);
    Row { rtf: wall / audio, wer, raw_wer, peak_rss: None }
}

/// A Python peer in its own process: `whisper_peer_bench.py BACKEND MODEL THREADS SETTING WAV…`
/// printing `{"wall", "audio", "texts", "peak_rss"}`.
fn python_peer(backend: &str, model: &Path, setting: &str, clips: &[Clip]) -> Option<Row> {
    let python = std::env::var("CROSSMODAL_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/whisper_peer_bench.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(backend)
        .arg(model)
        .arg(THREADS.to_string())
        .arg(setting)
        .args(clips.iter().map(|c| &c.path))
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("{backend} not run: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""));
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let texts: Vec<String> =
        v["texts"].as_array()?.iter().map(|t| t.as_str().unwrap_or_default().to_owned()).collect();
    let (wer, raw_wer) = score(clips, &texts);
    Some(Row {
        rtf: v["wall"].as_f64()? / v["audio"].as_f64()?,
        wer,
        raw_wer,
        peak_rss: v["peak_rss"].as_u64(),
    })
}

/// Peak RSS of `crossmodal transcribe` over the 12 clips with one model.
fn our_peak_rss(model: &str, clips: &[Clip]) -> Option<u64> {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_crossmodal"));
    cmd.args(["transcribe", "--language", "en", "--threads", &THREADS.to_string(), "--model", model])
        .args(clips.iter().map(|c| &c.path));
    let (out, peak) = common::run_measuring_rss(&mut cmd);
    out.status.success().then_some(peak)
}

fn peak_rss_of_ten_minutes(clips: &[Clip]) -> Option<u64> {
    let dir = tempfile::tempdir().ok()?;
    let path = dir.path().join("ten-minutes.wav");
    let mut samples = Vec::new();
    while samples.len() < 16_000 * 600 {
        for c in clips {
            samples.extend_from_slice(&c.samples);
            samples.extend(std::iter::repeat_n(0.0, 8000));
        }
    }
    samples.truncate(16_000 * 600);
    crossmodal::audio::write_wav(&path, &samples).ok()?;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_crossmodal"));
    cmd.args(["transcribe", "--threads", "2"]).arg(&path);
    let (out, peak) = common::run_measuring_rss(&mut cmd);
    out.status.success().then_some(peak)
}

fn row(name: &str, r: &Row) {
    let rss = r.peak_rss.map_or_else(|| "—".to_owned(), |b| format!("{} MB", b / 1_000_000));
    println!("{name:<44} {:>10.3} {:>8.2}% {:>8.2}% {rss:>9}", r.rtf, r.wer * 100.0, r.raw_wer * 100.0);
}

/// Each system runs this many times, in turns, and keeps its fastest run: this machine's speed
/// drifts by a third from minute to minute, and taking turns gives every system the same chances.
const ROUNDS: usize = 3;

/// A system of the comparison: its name in the report, the window it runs (`full`: whisper.cpp's
/// fixed 30 s; `cut`: the clip plus 10 s).
struct System {
    name: &'static str,
    window: &'static str,
}

const SYSTEMS: [System; 6] = [
    System { name: "crossmodal", window: "full" },
    System { name: "faster-whisper int8", window: "full" },
    System { name: "faster-whisper float32", window: "full" },
    System { name: "pywhispercpp", window: "full" },
    System { name: "crossmodal", window: "cut" },
    System { name: "pywhispercpp", window: "cut" },
];

fn measure(system: &System, whisper: &Whisper, model: &Path, ct2: &Path, clips: &[Clip]) -> Option<Row> {
    let cut = system.window == "cut";
    match system.name {
        "crossmodal" => Some(run(whisper, clips, cut)),
        "faster-whisper int8" => python_peer("faster-whisper", ct2, "int8", clips),
        "faster-whisper float32" => python_peer("faster-whisper", ct2, "float32", clips),
        _ => python_peer("pywhispercpp", model, if cut { "cut" } else { "full" }, clips),
    }
}

fn main() {
    let store = ModelStore::from_env().expect("model store");
    let detector = crossmodal::audio::vad::detector_model(&store).expect("silero-vad installed");
    let clips = clips();
    let audio: f64 = clips.iter().map(|c| c.samples.len() as f64 / 16_000.0).sum();
    println!(
        "public speech set: {} clips, {audio:.1} s of audio; {THREADS} threads, greedy; fastest of {ROUNDS} \
         runs taken in turns\n",
        clips.len()
    );
    println!("{:<44} {:>10} {:>9} {:>9} {:>9}", "system", "wall/audio", "WER norm", "WER raw", "peak RSS");
    let mut rows = Vec::new();
    for name in ["whisper-tiny.en", "whisper-base"] {
        let spec = model_store::spec(name).expect("catalogue");
        let Ok(path) = store.open_checked(spec) else {
            println!("{name}: not installed (crossmodal models fetch {name})");
            continue;
        };
        let ct2 = store.model_dir(spec).join("ct2");
        let whisper = Whisper::load(&path, false, Arc::clone(&detector)).expect("loads");
        let mut best: Vec<Option<Row>> = SYSTEMS.iter().map(|_| None).collect();
        for _ in 0..ROUNDS {
            for (system, best) in SYSTEMS.iter().zip(&mut best) {
                if let Some(r) = measure(system, &whisper, &path, &ct2, &clips)
                    && best.as_ref().is_none_or(|b| r.rtf < b.rtf)
                {
                    *best = Some(r);
                }
            }
        }
        drop(whisper);
        let ours_rss = our_peak_rss(name, &clips);
        for (system, r) in SYSTEMS.iter().zip(&mut best) {
            let Some(r) = r else { continue };
            if system.name == "crossmodal" && system.window == "cut" {
                r.peak_rss = ours_rss;
            }
            row(&format!("{} {name}, {} window", system.name, system.window), r);
            rows.push(serde_json::json!({ "system": system.name, "window": system.window, "model": name,
                "rtf": r.rtf, "wer": r.wer, "raw_wer": r.raw_wer, "peak_rss": r.peak_rss }));
        }
    }
    let ten = peak_rss_of_ten_minutes(&clips);
    match ten {
        Some(peak) => println!(
            "\npeak RSS, `crossmodal transcribe` of a 10-minute file (tiny.en): {} MB",
            peak / 1_000_000
        ),
        None => println!("\npeak RSS: the measurement could not run"),
    }
    record::record(
        "transcribe",
        &serde_json::json!({ "clips": clips.len(), "audio_secs": audio, "threads": THREADS, "rounds": ROUNDS,
            "rows": rows, "ten_minute_peak_rss": ten }),
    );
}
