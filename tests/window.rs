//! The window: device and model status drawn from the engine's events (`egui_kittest` through
//! AccessKit), and the real binary opening under Xvfb.

mod common;

use std::time::{Duration, Instant};

use crossmodal::gui::CrossmodalApp;
use crossmodal::model_store::ModelStore;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

fn harness(store: ModelStore) -> Harness<'static, CrossmodalApp> {
    let mut h = Harness::builder()
        .with_size(egui::vec2(900.0, 600.0))
        .build_eframe(move |cc| CrossmodalApp::new(&cc.egui_ctx, store, None));
    let deadline = Instant::now() + Duration::from_mins(2);
    while !h.state().settled() {
        assert!(Instant::now() < deadline, "the engine did not settle");
        std::thread::sleep(Duration::from_millis(50));
        h.step();
    }
    h.step();
    h
}

#[test]
fn an_empty_store_shows_the_device_and_what_to_fetch() {
    let dir = tempfile::tempdir().expect("temp");
    let h = harness(ModelStore::at(dir.path()));
    h.get_by_label_contains("Device: CPU");
    for name in ["whisper-tiny.en", "whisper-base", "minilm", "efficientnet-lite0", "clip-vit-b32"] {
        h.get_by_label(&format!("crossmodal models fetch {name}"));
    }
    assert_eq!(h.get_all_by_label("not installed").count(), 5);
}

#[test]
fn installed_models_load_on_the_engine_and_report_their_device() {
    let store = common::store();
    common::installed("whisper-tiny.en");
    common::installed("whisper-base");
    let mut h = harness(store);
    h.get_by_label_contains("Device: CPU");
    // The default set loads at start: whisper-tiny.en, minilm, efficientnet-lite0.
    assert_eq!(h.get_all_by_label("ready on CPU").count(), 3);
    // whisper-base is installed but not part of the default set: loading it is a click.
    h.get_by_label("Load whisper-base").click();
    let deadline = Instant::now() + Duration::from_mins(1);
    while h.query_all_by_label("ready on CPU").count() < 4 {
        assert!(Instant::now() < deadline, "whisper-base did not load");
        std::thread::sleep(Duration::from_millis(50));
        h.step();
    }
}

#[test]
fn the_window_opens_under_xvfb() {
    let dir = tempfile::tempdir().expect("temp");
    let shot = dir.path().join("window.png");
    let out = std::process::Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x800x24"])
        .arg(env!("CARGO_BIN_EXE_crossmodal"))
        .arg("--screenshot")
        .arg(&shot)
        .env("CROSSMODAL_MODELS", dir.path().join("store"))
        .output()
        .expect("xvfb-run is installed (./test.sh installs it)");
    let (ok, _, stderr) = common::split(&out);
    assert!(ok, "{stderr}");
    let img = image::open(&shot).expect("a screenshot was saved").to_rgba8();
    assert!(img.width() >= 800 && img.height() >= 500, "{}x{}", img.width(), img.height());
    let mut colors: Vec<[u8; 4]> = img.pixels().map(|p| p.0).collect();
    colors.sort_unstable();
    colors.dedup();
    assert!(colors.len() > 20, "the window looks blank ({} colours)", colors.len());
}
