//! The window: a thin layer over the engine. It sends requests and draws what the engine's
//! events say; it never waits on a model.

mod status;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::engine::{DeviceInfo, Engine, Event, ModelStatus, Request};
use crate::model_store::ModelStore;

pub use status::status_panel;

/// Everything the window shows, as plain state.
pub struct CrossmodalApp {
    engine: Engine,
    pub(crate) store_root: PathBuf,
    pub(crate) device: Option<DeviceInfo>,
    pub(crate) models: BTreeMap<&'static str, ModelStatus>,
    pub(crate) notices: Vec<String>,
    /// Save a screenshot here after the first frames and close (used by the headless smoke test).
    screenshot: Option<PathBuf>,
    shot_requested: bool,
    shot_saved: Arc<AtomicBool>,
    frames: u64,
}

impl CrossmodalApp {
    pub fn new(ctx: &egui::Context, store: ModelStore, screenshot: Option<PathBuf>) -> Self {
        let repaint = ctx.clone();
        let store_root = store.root().to_path_buf();
        let engine = Engine::start(store, std::sync::Arc::new(move || repaint.request_repaint()));
        engine.send(Request::LoadDefaults);
        Self {
            engine,
            store_root,
            device: None,
            models: BTreeMap::new(),
            notices: Vec::new(),
            screenshot,
            shot_requested: false,
            shot_saved: Arc::new(AtomicBool::new(false)),
            frames: 0,
        }
    }

    pub(crate) fn send(&self, request: Request) {
        self.engine.send(request);
    }

    /// Applies the engine's events to the state.
    pub fn drain_events(&mut self) {
        for event in self.engine.poll() {
            match event {
                Event::Device(info) => self.device = Some(info),
                Event::Model { name, status } => {
                    self.models.insert(name, status);
                }
                Event::Transcribed { .. }
                | Event::Progress { .. }
                | Event::CommandsReady { .. }
                | Event::Matched { .. } => {}
                Event::Error(e) => self.notices.push(e),
            }
        }
    }

    /// The device is known and the start-up loads are over: nothing is loading, and no model of
    /// the default set (which the engine loads at start) is still waiting.
    pub fn settled(&self) -> bool {
        self.device.is_some() && crate::engine::start_up_settled(&self.models)
    }

    fn handle_screenshot(&mut self, ctx: &egui::Context) {
        let Some(path) = self.screenshot.clone() else {
            return;
        };
        self.frames += 1;
        if self.shot_saved.load(Ordering::Acquire) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        } else if self.settled() && self.frames > 5 && !self.shot_requested {
            self.shot_requested = true;
            let saved = Arc::clone(&self.shot_saved);
            let repaint = ctx.clone();
            ctx.request_screenshot(move |image| {
                let [w, h] = image.size;
                let bytes: Vec<u8> = image.pixels.iter().flat_map(egui::Color32::to_array).collect();
                let result = u32::try_from(w)
                    .ok()
                    .zip(u32::try_from(h).ok())
                    .and_then(|(w, h)| image::RgbaImage::from_raw(w, h, bytes))
                    .map(|img| img.save(&path));
                if !matches!(result, Some(Ok(()))) {
                    eprintln!("could not save the screenshot to {}", path.display());
                }
                saved.store(true, Ordering::Release);
                repaint.request_repaint();
            });
        }
        ctx.request_repaint();
    }
}

impl eframe::App for CrossmodalApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.drain_events();
        egui::CentralPanel::default().show(ui, |ui| status_panel(ui, self));
        self.handle_screenshot(&ui.ctx().clone());
    }
}

/// Opens the window and runs until it is closed.
pub fn run(store: ModelStore, screenshot: Option<PathBuf>) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("crossmodal")
            .with_inner_size([880.0, 560.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "crossmodal",
        options,
        Box::new(move |cc| Ok(Box::new(CrossmodalApp::new(&cc.egui_ctx, store, screenshot)))),
    )
    .map_err(|e| anyhow::anyhow!("the window could not be opened: {e}"))
}
