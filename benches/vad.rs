//! The voice detectors side by side in a noisy room, offline: the public clips spoken one after
//! another over a noise bed that runs the whole session (pink noise as a fan, babble made of the
//! other public recordings), at 20, 10 and 5 dB SNR on the speech's active samples.
//!
//!     cargo bench --bench vad
//!
//! For each detector and condition: frame precision and recall against the clean clips' own
//! silences (a 32 ms frame is speech when the clean clip's level there is within 30 dB of its
//! loudest frame), utterances per spoken phrase (the app's endpointing on top: one is right,
//! fewer is merged or lost, more is split), utterances opened by a minute of the noise alone,
//! and CPU time per second of audio. The detectors: the energy detector the app used before
//! (level over an adaptive floor), Silero VAD alone (threshold 0.5 / 0.35), and Silero with the
//! background gate the app uses (`src/audio/vad.rs`). The gate's constants were chosen on these
//! same clips.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "record.rs"]
mod record;

use std::sync::Arc;
use std::time::Instant;

use crossmodal::audio::silero::{CHUNK, SileroModel, SileroState};
use crossmodal::audio::vad::{Vad, VadEvent};
use crossmodal::audio::{SAMPLE_RATE, rms};

const RATE: f64 = SAMPLE_RATE as f64;

/// The energy detector the app had before Silero (frame decisions only), for comparison.
struct Energy {
    floor: f32,
}

impl Energy {
    fn frame(&mut self, frame: &[f32]) -> bool {
        let level = rms(frame);
        let speech = level > 0.005 && level > self.floor * 3.0;
        if !speech {
            let rate = if level < self.floor { 0.2 } else { 0.02 };
            self.floor += (level - self.floor) * rate;
        }
        speech
    }
}

/// Frame decisions of one detector over a session.
fn decisions(kind: &str, model: &Arc<SileroModel>, samples: &[f32]) -> (Vec<bool>, f64) {
    let started = Instant::now();
    let frames = samples.chunks_exact(CHUNK);
    let out: Vec<bool> = match kind {
        "energy (before)" => {
            let mut e = Energy { floor: 0.005 / 3.0 };
            frames.map(|f| e.frame(f)).collect()
        }
        "silero alone" => {
            let (mut state, mut on) = (SileroState::default(), false);
            frames
                .map(|f| {
                    let p = state.probability(model, f.try_into().expect("chunk"));
                    on = if on { p >= 0.35 } else { p >= 0.5 };
                    on
                })
                .collect()
        }
        _ => {
            let mut vad = Vad::new(Arc::clone(model));
            frames
                .map(|f| {
                    vad.push(f);
                    vad.hearing()
                })
                .collect()
        }
    };
    let cpu = started.elapsed().as_secs_f64() / (samples.len() as f64 / RATE);
    (out, cpu)
}

/// Utterances the app's endpointing cuts with the chosen detector.
fn utterances(model: &Arc<SileroModel>, samples: &[f32]) -> Vec<(f64, f64)> {
    let mut vad = Vad::new(Arc::clone(model));
    let mut events = Vec::new();
    for block in samples.chunks(1600) {
        events.extend(vad.push(block));
    }
    events.extend(vad.finish());
    events
        .into_iter()
        .filter_map(|e| match e {
            VadEvent::Utterance { samples, start } => Some((start, start + samples.len() as f64 / RATE)),
            VadEvent::Started { .. } => None,
        })
        .collect()
}

/// Utterances from frame decisions with the app's opening and closing (3 speech frames open one,
/// 22 silent frames close it), for the detectors the app does not run.
fn count_utterances(decisions: &[bool]) -> usize {
    let (mut open, mut run, mut silence, mut count) = (false, 0, 0, 0);
    for &speech in decisions {
        if open {
            silence = if speech { 0 } else { silence + 1 };
            if silence >= 22 {
                open = false;
                count += 1;
            }
        } else {
            run = if speech { run + 1 } else { 0 };
            if run >= 3 {
                open = true;
                silence = 0;
            }
        }
    }
    count + usize::from(open)
}

fn main() {
    let store = crossmodal::model_store::ModelStore::from_env().expect("store");
    let model = crossmodal::audio::vad::detector_model(&store).expect("silero-vad installed");
    let commands = [
        "goforward.wav",
        "cards_001.wav",
        "cards_002.wav",
        "cards_003.wav",
        "cards_004.wav",
        "cards_005.wav",
        "something.wav",
    ];
    let sentences = common::SENTENCE_CLIPS;
    let names: Vec<&str> = commands.iter().chain(&sentences).copied().collect();
    let dir = common::eval_dir().join("speech");
    let clips: Vec<Vec<f32>> =
        names.iter().map(|n| crossmodal::audio::decode_file(&dir.join(n)).expect("clip").samples).collect();
    // The session: 2 s of room, then each clip and 3 s of room after it.
    let gap = (3.0 * RATE) as usize;
    let mut clean = vec![0.0f32; (2.0 * RATE) as usize];
    let mut spans = Vec::new();
    for c in &clips {
        spans.push((clean.len(), clean.len() + c.len()));
        clean.extend(c);
        clean.extend(vec![0.0f32; gap]);
    }
    let truth: Vec<bool> = {
        let mut t = vec![false; clean.len() / CHUNK];
        for ((from, to), c) in spans.iter().zip(&clips) {
            let loudest = c.chunks(CHUNK).map(rms).fold(0.0f32, f32::max);
            for (i, slot) in t.iter_mut().enumerate().take(to / CHUNK).skip(from / CHUNK) {
                let f = &clean[i * CHUNK..(i + 1) * CHUNK];
                *slot = rms(f) > loudest * 10f32.powf(-30.0 / 20.0);
            }
        }
        t
    };
    let level = clips.iter().map(|c| common::active_rms(c)).sum::<f32>() / clips.len() as f32;
    let detectors = ["energy (before)", "silero alone", "silero + background gate (chosen)"];
    println!(
        "{:<12} {:<34} {:>9} {:>7} {:>16} {:>12} {:>10}",
        "condition", "detector", "precision", "recall", "utterances/12", "noise alone", "CPU/audio"
    );
    let mut rows = Vec::new();
    let minute = 60 * SAMPLE_RATE as usize;
    for noise_name in ["quiet", "pink", "babble"] {
        let noise = match noise_name {
            "pink" => common::pink(clean.len().max(minute), 21),
            "babble" => common::babble(clean.len().max(minute), &[]),
            _ => vec![0.0; clean.len().max(minute)],
        };
        for snr in [20.0f32, 10.0, 5.0] {
            let gain = level * 10f32.powf(-snr / 20.0);
            let mix: Vec<f32> = clean.iter().zip(&noise).map(|(s, n)| s + n * gain).collect();
            let alone: Vec<f32> = noise[..minute].iter().map(|n| n * gain).collect();
            let condition =
                if noise_name == "quiet" { "quiet".to_owned() } else { format!("{noise_name} {snr} dB") };
            for d in detectors {
                let (got, cpu) = decisions(d, &model, &mix);
                let tp = got.iter().zip(&truth).filter(|(g, t)| **g && **t).count() as f64;
                let precision = tp / got.iter().filter(|g| **g).count().max(1) as f64;
                let recall = tp / truth.iter().filter(|t| **t).count().max(1) as f64;
                let (per, noise_only) = if d.contains("chosen") {
                    let u = utterances(&model, &mix);
                    let each: Vec<usize> = spans
                        .iter()
                        .map(|(a, b)| {
                            let (a, b) = (*a as f64 / RATE, *b as f64 / RATE);
                            u.iter().filter(|(s, e)| *s < b && *e > a).count()
                        })
                        .collect();
                    let right = each.iter().filter(|&&n| n == 1).count();
                    (format!("{right} right, {} in all", u.len()), utterances(&model, &alone).len())
                } else {
                    let in_all = count_utterances(&got);
                    (format!("{in_all} in all"), count_utterances(&decisions(d, &model, &alone).0))
                };
                println!(
                    "{condition:<12} {d:<34} {precision:>9.3} {recall:>7.3} {per:>16} {noise_only:>12} {:>9.1}%",
                    cpu * 100.0
                );
                rows.push(serde_json::json!({ "condition": condition, "detector": d, "precision": precision,
                    "recall": recall, "utterances": per, "noise_alone_utterances": noise_only, "cpu_per_audio": cpu }));
            }
            if noise_name == "quiet" {
                break;
            }
        }
    }
    record::record("vad", &serde_json::json!({ "rows": rows }));
}
