//! Voice commands on the public set: accuracy, false accepts, latency, and the calibration of
//! the matcher; text-encoder throughput beside sentence-transformers.
//!
//!     cargo bench --bench commands
//!
//! Command set: shared/eval's (each command clip's text, every card of `cards.gram`, every
//! rank). Latency is from having the utterance's audio (the end of the utterance) to the
//! decision: transcription, Whisper's scoring of the shortlist and the fusion, tiny.en, 2
//! threads, warm models, median of 3. The calibration sweep recomputes the fused score for
//! every weighting on a 0.1 grid and prints, for the weighting with the widest gap between the
//! worst command clip and the best-scoring read sentence, the thresholds and margins that get
//! every clip right with no false accept. Throughput: sentences per second through the text
//! encoder (batches of 32, 2 threads), with the fused CPU kernels it runs and again with candle's
//! ops between the products (what a GPU runs); when `$CROSSMODAL_PYTHON` has sentence-transformers,
//! the same sentences through it in the same run. Throughput alone:
//!
//!     cargo bench --bench commands -- throughput

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "record.rs"]
mod record;

use std::time::{Duration, Instant};

use crossmodal::commands::Matcher;
use crossmodal::commands::matcher::{self, Decision};
use crossmodal::model_store::{self, ModelStore};
use crossmodal::space::{Kernels, TextEncoder};
use crossmodal::speech::{Options, Whisper};

const THREADS: usize = 2;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let store = ModelStore::from_env().expect("store");
    let whisper_spec = model_store::spec("whisper-tiny.en").expect("spec");
    let whisper = Whisper::load(
        &store.open_checked(whisper_spec).expect("tiny.en installed"),
        false,
        crossmodal::audio::vad::detector_model(&store).expect("silero-vad installed"),
    )
    .expect("loads");
    let minilm = model_store::spec("minilm").expect("spec");
    store.open_checked(minilm).expect("minilm installed");
    let device = candle_core::Device::Cpu;
    let encoder = TextEncoder::load(&store.model_dir(minilm), &device).expect("loads");
    let set = common::eval_command_set();
    if std::env::args().any(|a| a == "throughput") {
        throughput(&encoder, &store.model_dir(minilm), &set);
        return;
    }
    let matcher = Matcher::new(&set, &encoder, matcher::CALIBRATED).expect("matcher");
    let mut options = Options { language: "en".into(), threads: THREADS, ..Options::default() };
    if let Some(m) = std::env::var("CROSSMODAL_BENCH_MARGIN").ok().and_then(|m| m.parse().ok()) {
        options.window_margin_secs = m;
    }
    println!("encoder window: clip + {} s", options.window_margin_secs);
    println!("{} commands; settings {:?}", set.len(), matcher.settings);
    println!();
    println!("| clip | kind | seconds | transcribe ms | decide ms | decision | right |");
    println!("|---|---|---|---|---|---|---|");
    let mut rows: Vec<(common::Clip, Decision)> = Vec::new();
    let mut latencies = Vec::new();
    for clip in common::speech_clips() {
        let samples = crossmodal::audio::decode_file(&clip.path).expect("decodes").samples;
        let secs = samples.len() as f64 / 16_000.0;
        let _ = matcher.recognise(&whisper, &encoder, &samples, &options, &std::sync::Arc::default()); // warm-up
        let mut t_transcribe = Vec::new();
        let mut t_decide = Vec::new();
        let mut decision = None;
        for _ in 0..3 {
            let start = Instant::now();
            let _ = whisper.transcribe(&samples, &options).expect("transcribes");
            t_transcribe.push(start.elapsed());
            let start = Instant::now();
            decision = Some(
                matcher
                    .recognise(&whisper, &encoder, &samples, &options, &std::sync::Arc::default())
                    .expect("decides"),
            );
            t_decide.push(start.elapsed());
        }
        let decision = decision.expect("ran");
        let decide = median(t_decide);
        let right = if clip.kind == "command" {
            decision.command.as_deref() == Some(clip.text.as_str())
        } else {
            decision.command.is_none()
        };
        if clip.kind == "command" || (1.0..=3.0).contains(&secs) {
            latencies.push((secs, decide));
        }
        println!(
            "| {} | {} | {secs:.2} | {} | {} | {} | {} |",
            clip.path.file_name().and_then(|f| f.to_str()).unwrap_or("?"),
            clip.kind,
            median(t_transcribe).as_millis(),
            decide.as_millis(),
            decision.command.as_deref().unwrap_or("no match"),
            if right { "yes" } else { "NO" }
        );
        rows.push((clip, decision));
    }
    let commands = rows.iter().filter(|(c, _)| c.kind == "command").count();
    let right = rows
        .iter()
        .filter(|(c, d)| c.kind == "command" && d.command.as_deref() == Some(c.text.as_str()))
        .count();
    let false_accepts = rows.iter().filter(|(c, d)| c.kind != "command" && d.command.is_some()).count();
    let short: Vec<Duration> =
        latencies.iter().filter(|(s, _)| (1.0..=3.0).contains(s)).map(|(_, d)| *d).collect();
    println!();
    println!("top-1 accuracy on command clips: {right}/{commands}");
    println!("false accepts on read sentences: {false_accepts}/{}", rows.len() - commands);
    if !short.is_empty() {
        println!(
            "latency, end of utterance to decision, 1–3 s utterances: median {} ms, worst {} ms ({} clips)",
            median(short.clone()).as_millis(),
            short.iter().max().map_or(0, Duration::as_millis),
            short.len()
        );
    }
    let noisy = in_noise(&matcher, &whisper, &encoder, &options);
    let mut all = rows.clone();
    all.extend(noisy.into_iter().map(|(_, clip, d)| (clip, d)));
    calibrate(&all);
    let (ours, candle_ops, theirs) = throughput(&encoder, &store.model_dir(minilm), &set);
    record::record(
        "commands",
        &serde_json::json!({
            "commands": set.len(), "command_clips": commands, "right": right,
            "sentences": rows.len() - commands, "false_accepts": false_accepts,
            "latency_median_ms": (!short.is_empty()).then(|| median(short.clone()).as_millis()),
            "latency_worst_ms": short.iter().max().map(Duration::as_millis),
            "latency_clips": short.len(),
            "text_sentences_per_s": ours, "text_candle_ops_per_s": candle_ops,
            "sentence_transformers_per_s": theirs,
        }),
    );
}

/// Every clip of the noisy set (`scripts/eval/make-noisy.py`) through the matcher, with a table
/// of what went wrong per condition; (condition, clip, decision).
fn in_noise(
    matcher: &Matcher,
    whisper: &Whisper,
    encoder: &TextEncoder,
    options: &Options,
) -> Vec<(String, common::Clip, Decision)> {
    let mut out = Vec::new();
    for (condition, clip) in common::noisy_clips() {
        let samples = crossmodal::audio::decode_file(&clip.path).expect("decodes").samples;
        let d = matcher
            .recognise(whisper, encoder, &samples, options, &std::sync::Arc::default())
            .expect("decides");
        out.push((condition, clip, d));
    }
    println!();
    println!("| noise | command clips wrong or rejected | read sentences accepted |");
    println!("|---|---|---|");
    // The clips come clip by clip, each in every condition: one row per condition.
    let mut conditions: Vec<&str> = out.iter().map(|(c, _, _)| c.as_str()).collect();
    conditions.sort_unstable();
    conditions.dedup();
    for condition in conditions {
        let here = out.iter().filter(|(c, _, _)| c == condition);
        let missed: Vec<String> = here
            .clone()
            .filter(|(_, clip, d)| clip.kind == "command" && d.command.as_deref() != Some(clip.text.as_str()))
            .map(|(_, clip, d)| format!("{:?} → {}", clip.text, d.command.as_deref().unwrap_or("no match")))
            .collect();
        let commands = here.clone().filter(|(_, clip, _)| clip.kind == "command").count();
        let accepted =
            here.clone().filter(|(_, clip, d)| clip.kind != "command" && d.command.is_some()).count();
        let sentences = here.filter(|(_, clip, _)| clip.kind != "command").count();
        println!(
            "| {condition} | {}/{commands} {} | {accepted}/{sentences} |",
            missed.len(),
            if missed.is_empty() { String::new() } else { format!("({})", missed.join("; ")) }
        );
    }
    out
}

/// (lowest right score, highest sentence score, smallest winning margin, command clips lost).
type Separation = (f32, f32, f32, usize);

/// The separation a weighting gives on the clips: (lowest score of a right answer, highest
/// best score of a read sentence, smallest margin of a right answer over its runner-up, command
/// clips whose best-scoring command is wrong whatever the threshold).
fn separation(rows: &[(common::Clip, Decision)], w: [f32; 3]) -> Separation {
    let fuse = |s: &matcher::Score| w[0] * s.meaning + w[1] * s.form + w[2] * s.sound.unwrap_or(0.0);
    let (mut worst_right, mut best_wrong, mut min_margin) = (f32::INFINITY, 0.0f32, f32::INFINITY);
    let mut lost = 0;
    for (clip, d) in rows {
        let mut fused: Vec<(f32, &str)> = d.scores.iter().map(|s| (fuse(s), s.command.as_str())).collect();
        fused.sort_by(|x, y| y.0.total_cmp(&x.0));
        let top = fused.first().copied().unwrap_or((0.0, ""));
        let second = fused.get(1).map_or(0.0, |s| s.0);
        if clip.kind != "command" {
            best_wrong = best_wrong.max(top.0);
        } else if top.1 == clip.text {
            worst_right = worst_right.min(top.0);
            min_margin = min_margin.min(top.0 - second);
        } else {
            lost += 1;
        }
    }
    (worst_right, best_wrong, min_margin, lost)
}

/// Sweeps the weights on a 0.1 grid, each at least 0.1 so that all three signals count (meaning
/// carries paraphrases this set does not test), and picks the one that loses the fewest command
/// clips and then best separates right answers from read sentences and from runners-up. The
/// threshold to use is the middle of the gap, the margin half the smallest winning margin.
fn calibrate(rows: &[(common::Clip, Decision)]) {
    let mut best: Option<([f32; 3], Separation)> = None;
    let quality = |(right, wrong, margin, lost): Separation| (lost, -(right - wrong).min(2.0 * margin));
    for a in 1..=6 {
        for b in 1..=(9 - a) {
            let w = [a as f32 / 10.0, b as f32 / 10.0, (10 - a - b) as f32 / 10.0];
            let sep = separation(rows, w);
            if best.is_none_or(|(_, b)| quality(sep) < quality(b)) {
                best = Some((w, sep));
            }
        }
    }
    let current = matcher::CALIBRATED;
    println!();
    println!("calibration on {} clips (clean and in noise)", rows.len());
    let (right, wrong, margin, lost) = separation(rows, current.weights);
    println!(
        "in use {current:?}: right answers score ≥ {right:.3}, read sentences ≤ {wrong:.3}, right answers win by ≥ {margin:.3}; {lost} command clips lost whatever the threshold"
    );
    if let Some((w, (right, wrong, margin, lost))) = best {
        println!(
            "calibration: best weights {w:?} (meaning, form, sound): right answers score ≥ {right:.3}, read sentences ≤ {wrong:.3}, right answers win by ≥ {margin:.3}; {lost} lost"
        );
        println!("  suggests threshold {:.3}, margin {:.3}", f32::midpoint(right, wrong), margin / 2.0);
    }
}

/// Sentences per second: (this project, the same with candle's ops between the products,
/// sentence-transformers when it can run).
fn throughput(
    encoder: &TextEncoder,
    model_dir: &std::path::Path,
    set: &crossmodal::commands::CommandSet,
) -> (f64, f64, Option<f64>) {
    let mut sentences: Vec<String> = set.commands.iter().map(|c| c.name.clone()).collect();
    sentences.extend(common::speech_clips().into_iter().map(|c| c.text));
    let mut base = sentences.clone();
    base.extend(sentences.iter().filter_map(|s| crossmodal::speech::wer::with_digits(s)));
    let sentences: Vec<String> = base.iter().cycle().take(1024).cloned().collect();
    let rate = |kernels: Kernels| {
        let _ = encoder.embed_with(&sentences[..32], kernels);
        let start = Instant::now();
        encoder.embed_with(&sentences, kernels).expect("embeds");
        sentences.len() as f64 / start.elapsed().as_secs_f64()
    };
    let (ours, candle_ops) = (rate(Kernels::Direct), rate(Kernels::Candle));
    println!();
    println!(
        "text encoder: {ours:.0} sentences/s ({} sentences, batch 32, fused CPU kernels)",
        sentences.len()
    );
    println!("text encoder: {candle_ops:.0} sentences/s (the same with candle's ops between the products)");
    let python = std::env::var("CROSSMODAL_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = tempfile::tempdir().expect("temp");
    let list = dir.path().join("sentences.json");
    std::fs::write(&list, serde_json::to_string(&sentences).expect("json")).expect("write");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench/st_throughput.py");
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(model_dir)
        .arg(&list)
        .arg(THREADS.to_string())
        .output();
    let theirs = match out {
        Ok(o) if o.status.success() => {
            String::from_utf8_lossy(&o.stdout).split_whitespace().nth(1).and_then(|n| n.parse::<f64>().ok())
        }
        _ => None,
    };
    match theirs {
        Some(theirs) => println!(
            "sentence-transformers: {theirs:.0} sentences/s (torch, {THREADS} threads); ratio {:.2}×",
            ours / theirs
        ),
        None => println!(
            "sentence-transformers: not run ({python} has no sentence-transformers; set CROSSMODAL_PYTHON)"
        ),
    }
    (ours, candle_ops, theirs)
}
