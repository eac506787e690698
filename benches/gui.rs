//! The window's frame time while the engine transcribes a long recording and indexes a folder
//! of photographs at the same time, headless (`egui_kittest`), frames paced at 60 Hz.
//!
//!     cargo bench --bench gui
//!
//! Also the window's peak resident memory once both are done (every model it loaded).
//!
//! Reports two figures per frame: the app's own `ui` pass (what the window does each frame), and
//! the whole step (egui's pass, layout and tessellation, and the test harness's accessibility
//! tree). Rendering on the GPU is not part of either.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "record.rs"]
mod record;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossmodal::gui::{CrossmodalApp, Options, Settings, Theme};
use crossmodal::model_store::ModelStore;
use egui_kittest::Harness;

/// Seconds of speech to transcribe (the public clips, looped).
const AUDIO_SECS: f64 = 180.0;
/// Copies of the 11 public photographs to index.
const IMAGE_COPIES: usize = 10;

#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn percentile(sorted: &[f32], p: f64) -> f32 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut ms: Vec<f32>) -> serde_json::Value {
    ms.sort_by(f32::total_cmp);
    let (p50, p99, max) = (percentile(&ms, 0.5), percentile(&ms, 0.99), ms.last().copied().unwrap_or(0.0));
    println!("{name}: {} frames, p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms", ms.len());
    serde_json::json!({ "frames": ms.len(), "p50": p50, "p99": p99, "max": max })
}

fn main() {
    let dir = tempfile::tempdir().expect("temp");
    // A long recording: the public clips one after another.
    let mut samples = Vec::new();
    let clips: Vec<Vec<f32>> = common::speech_clips()
        .iter()
        .map(|c| crossmodal::audio::decode_file(&c.path).expect("clip").samples)
        .collect();
    while (samples.len() as f64) < AUDIO_SECS * 16_000.0 {
        for c in &clips {
            samples.extend_from_slice(c);
        }
    }
    let long = dir.path().join("long.wav");
    common::write_wav(&long, &samples);
    // A folder of photographs.
    let folder = dir.path().join("photos");
    std::fs::create_dir_all(&folder).expect("mkdir");
    for copy in 0..IMAGE_COPIES {
        for p in common::photos() {
            let name = p.path.file_name().expect("name").to_string_lossy();
            std::fs::copy(&p.path, folder.join(format!("{copy:02}_{name}"))).expect("copy");
        }
    }
    let store = ModelStore::from_env().expect("store");
    let options = Options {
        gallery: Some(dir.path().join("g.sqlite")),
        commands: Some(dir.path().join("commands.toml")),
        settings: Some(Settings { input_device: None, theme: Theme::Dark, ..Settings::default() }),
        ..Options::default()
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(1000.0, 680.0))
        .with_accessibility_check(false)
        .build_eframe(move |cc| CrossmodalApp::new(&cc.egui_ctx, store, options));
    while !h.state().settled() {
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    let before = h.state().frame_times().len();
    h.hover_at(egui::pos2(500.0, 450.0));
    h.step();
    h.input_mut().dropped_files.push(Arc::new(Dropped(long)));
    h.input_mut().dropped_files.push(Arc::new(Dropped(folder)));
    let frame = Duration::from_secs_f64(1.0 / 60.0);
    let start = Instant::now();
    let mut steps = Vec::new();
    let mut tab_switch = Instant::now();
    loop {
        let t = Instant::now();
        h.step();
        steps.push(t.elapsed().as_secs_f32() * 1000.0);
        if h.state().idle() && start.elapsed() > Duration::from_secs(1) {
            break;
        }
        // Show each busy panel in turn, as a person watching both would.
        if tab_switch.elapsed() > Duration::from_secs(5) {
            tab_switch = Instant::now();
            let next = if h.state().showing_images() { "Transcribe" } else { "Images" };
            h.state_mut().show_tab(next);
        }
        if let Some(rest) = frame.checked_sub(t.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    println!(
        "transcribing {AUDIO_SECS:.0} s of speech and indexing {} photographs together took {:.1} s",
        IMAGE_COPIES * 11,
        start.elapsed().as_secs_f64()
    );
    if !h.state().notices().is_empty() {
        println!("notices: {:?}", h.state().notices());
    }
    // The window's peak memory: every model it loaded, indexing and transcribing done.
    let peak_rss = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    });
    if let Some(kb) = peak_rss {
        println!("peak RSS of the window: {} MB", kb * 1024 / 1_000_000);
    }
    let ui: Vec<f32> = h.state().frame_times()[before..].to_vec();
    let ui = summary("app ui pass", ui);
    let step = summary("whole egui step", steps);
    record::record(
        "gui",
        &serde_json::json!({ "audio_secs": AUDIO_SECS, "photos": IMAGE_COPIES * 11,
            "seconds": start.elapsed().as_secs_f64(), "ui": ui, "step": step,
            "peak_rss": peak_rss.map(|kb| kb * 1024) }),
    );
}
