//! Images: drop images or folders to index them (progress, cancel); search by text, by voice or
//! by an example image; a grid of thumbnails with scores; which caption fits each image.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};

use crate::engine::{CaptionRow, Engine, Found, FoundImage, ImageQuery, JobId, Request};
use crate::gallery::IndexReport;
use crate::live::{Live, LiveEvent, Purpose};
use crate::space::images::EncoderChoice;

use super::CrossmodalApp;

/// Results shown per search.
const TOP: usize = 24;
/// Images the captions view compares (the best results).
const CAPTION_IMAGES: usize = 6;
const THUMB: f32 = 128.0;

type Decoded = (PathBuf, Result<egui::ColorImage, String>);

/// Decodes thumbnails off the UI thread.
struct ThumbLoader {
    requests: Sender<PathBuf>,
    done: Receiver<Decoded>,
}

impl ThumbLoader {
    fn start(ctx: &egui::Context) -> Option<Self> {
        let (requests, rx) = mpsc::channel::<PathBuf>();
        let (tx, done) = mpsc::channel();
        let ctx = ctx.clone();
        std::thread::Builder::new()
            .name("thumbnails".into())
            .spawn(move || {
                for path in rx {
                    let image = image::open(&path).map_err(|e| e.to_string()).map(|img| {
                        let rgba = img.to_rgba8();
                        let size = [rgba.width() as usize, rgba.height() as usize];
                        egui::ColorImage::from_rgba_unmultiplied(size, rgba.as_raw())
                    });
                    if tx.send((path, image)).is_err() {
                        break;
                    }
                    ctx.request_repaint();
                }
            })
            .ok()?;
        Some(Self { requests, done })
    }
}

pub struct ImagesPanel {
    gallery: PathBuf,
    query: String,
    pub focus_search: bool,
    results: Vec<FoundImage>,
    heard: Option<String>,
    /// The search whose answer is awaited.
    searching: Option<JobId>,
    indexing: Option<(usize, usize)>,
    report: Option<IndexReport>,
    textures: HashMap<PathBuf, egui::TextureHandle>,
    requested: HashSet<PathBuf>,
    loader: Option<ThumbLoader>,
    similar_zone: egui::Rect,
    mic: Option<Live>,
    captions: String,
    caption_rows: Vec<CaptionRow>,
    /// The captions the rows answer.
    caption_texts: Vec<String>,
    captioning: bool,
    /// Text and spoken queries asked so far.
    history: Vec<String>,
}

impl ImagesPanel {
    pub fn new(gallery: PathBuf) -> Self {
        Self {
            gallery,
            query: String::new(),
            focus_search: false,
            results: Vec::new(),
            heard: None,
            searching: None,
            indexing: None,
            report: None,
            textures: HashMap::new(),
            requested: HashSet::new(),
            loader: None,
            similar_zone: egui::Rect::NOTHING,
            mic: None,
            captions: String::new(),
            caption_rows: Vec::new(),
            caption_texts: Vec::new(),
            captioning: false,
            history: Vec::new(),
        }
    }

    pub fn gallery(&self) -> &Path {
        &self.gallery
    }

    /// Where an image dropped becomes a query (last frame's rectangle).
    pub fn similar_zone(&self) -> egui::Rect {
        self.similar_zone
    }

    pub fn idle(&self) -> bool {
        self.indexing.is_none() && self.searching.is_none() && !self.captioning
    }

    pub fn index(&mut self, engine: &Engine, paths: Vec<PathBuf>) {
        self.indexing = Some((0, 0));
        engine.send(Request::Index {
            gallery: self.gallery.clone(),
            paths,
            encoder: EncoderChoice::Auto,
            reindex: false,
        });
    }

    pub fn indexing(&mut self, done: usize, total: usize) {
        self.indexing = Some((done, total));
    }

    pub fn indexed(&mut self, result: Result<IndexReport, String>) -> Option<String> {
        self.indexing = None;
        match result {
            Ok(r) => {
                self.report = Some(r);
                None
            }
            Err(e) => Some(format!("indexing: {e}")),
        }
    }

    /// Queries asked so far, oldest first.
    pub fn queries(&self) -> Vec<String> {
        self.history.clone()
    }

    fn search(&mut self, engine: &Engine, query: ImageQuery) {
        let id = JobId::next();
        self.searching = Some(id);
        let text = query.text.trim();
        if !text.is_empty() && !self.history.iter().any(|h| h == text) {
            self.history.push(text.to_owned());
        }
        engine.send(Request::SearchImages {
            id,
            gallery: self.gallery.clone(),
            query,
            top: TOP,
            encoder: EncoderChoice::Auto,
        });
    }

    pub fn search_similar(&mut self, engine: &Engine, image: PathBuf) {
        self.search(engine, ImageQuery { image: Some(image), ..ImageQuery::default() });
    }

    /// Takes the answer to the latest search; an older search's answer is dropped.
    pub fn found(&mut self, id: JobId, result: Result<Found, String>) -> Option<String> {
        if self.searching != Some(id) {
            return None;
        }
        self.searching = None;
        match result {
            Ok(found) => {
                self.results = found.images;
                if let Some(h) = &found.heard
                    && !self.history.contains(h)
                {
                    self.history.push(h.clone());
                }
                self.heard = found.heard;
                self.caption_rows.clear();
                None
            }
            Err(e) => Some(format!("search: {e}")),
        }
    }

    pub fn captioned(&mut self, result: Result<Vec<CaptionRow>, String>) -> Option<String> {
        self.captioning = false;
        match result {
            Ok(rows) => {
                self.caption_rows = rows;
                None
            }
            Err(e) => Some(format!("captions: {e}")),
        }
    }

    pub fn poll_live(&mut self, engine: &Engine, notices: &mut Vec<String>) {
        let Some(mic) = &self.mic else { return };
        let mut ended = false;
        let mut heard = None;
        for event in mic.poll() {
            match event {
                LiveEvent::Query(samples) => heard = Some(samples),
                LiveEvent::Ended { problem, .. } => {
                    if let Some(p) = problem {
                        notices.push(format!("spoken search: {p}"));
                    }
                    ended = true;
                }
                LiveEvent::Problem(p) => notices.push(format!("spoken search: {p}")),
                LiveEvent::Opened(_)
                | LiveEvent::Partial(_)
                | LiveEvent::Line { .. }
                | LiveEvent::Decided { .. } => {}
            }
        }
        if let Some(samples) = heard {
            self.mic = None;
            let query = ImageQuery { text: self.query.clone(), audio: Some(samples), image: None };
            self.search(engine, query);
        } else if ended {
            self.mic = None;
            notices.push("spoken search: nothing was said".into());
        }
    }

    /// Uploads decoded thumbnails and asks for the missing ones.
    fn thumbnails(&mut self, ctx: &egui::Context) {
        if self.loader.is_none() {
            self.loader = ThumbLoader::start(ctx);
        }
        let Some(loader) = &self.loader else { return };
        for (path, decoded) in loader.done.try_iter() {
            match decoded {
                Ok(image) => {
                    let texture =
                        ctx.load_texture(path.display().to_string(), image, egui::TextureOptions::LINEAR);
                    self.textures.insert(path, texture);
                }
                Err(e) => tracing::warn!("thumbnail {}: {e}", path.display()),
            }
        }
        for r in &self.results {
            let source = r.thumbnail.clone().unwrap_or_else(|| r.path.clone());
            if self.requested.insert(source.clone()) {
                let _ = loader.requests.send(source);
            }
        }
    }

    /// Every result's thumbnail is on screen.
    pub fn thumbnails_shown(&self) -> bool {
        self.results.iter().all(|r| self.texture_of(r).is_some())
    }

    fn texture_of(&self, found: &FoundImage) -> Option<&egui::TextureHandle> {
        self.textures.get(found.thumbnail.as_ref().unwrap_or(&found.path))
    }
}

#[cfg(test)]
impl ImagesPanel {
    pub(super) fn awaited(&self) -> Option<JobId> {
        self.searching
    }

    pub(super) fn result_paths(&self) -> Vec<PathBuf> {
        self.results.iter().map(|r| r.path.clone()).collect()
    }
}

fn name_of(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

pub fn show(ui: &mut egui::Ui, app: &mut CrossmodalApp) {
    app.images.thumbnails(ui.ctx());
    ui.horizontal(|ui| {
        let label = ui.label("Search");
        let edit = ui.add(
            egui::TextEdit::singleline(&mut app.images.query)
                .hint_text("what to find: a red car, \"the moon\" - night")
                .desired_width(360.0),
        );
        let edit = edit.labelled_by(label.id);
        if std::mem::take(&mut app.images.focus_search) {
            edit.request_focus();
        }
        let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if (ui.button("Find").on_hover_text("Ctrl+F").clicked() || enter)
            && !app.images.query.trim().is_empty()
        {
            let query = ImageQuery { text: app.images.query.clone(), ..ImageQuery::default() };
            app.images.search(&app.engine, query);
        }
        let speaking = app.images.mic.is_some();
        if ui.selectable_label(speaking, "Speak").on_hover_text("Say what to find").clicked() {
            if speaking {
                app.images.mic = None;
            } else {
                app.images.mic = Some(app.start_live(ui.ctx(), Purpose::Query, app.speech_options()));
            }
        }
        if app.images.searching.is_some() {
            ui.spinner();
        }
    });
    ui.horizontal(|ui| {
        if ui.button("Index a folder…").clicked()
            && let Some(dirs) = rfd::FileDialog::new().pick_folders()
        {
            app.images.index(&app.engine, dirs);
        }
        if ui.button("Find similar…").on_hover_text("Images like the one you pick").clicked()
            && let Some(file) =
                rfd::FileDialog::new().add_filter("image", &crate::media::IMAGE_EXTENSIONS).pick_file()
        {
            app.images.search_similar(&app.engine, file);
        }
        match app.images.indexing {
            Some((done, total)) => {
                let fraction = if total == 0 { 0.0 } else { done as f32 / total as f32 };
                ui.add(
                    egui::ProgressBar::new(fraction)
                        .desired_width(200.0)
                        .text(format!("indexing {done}/{total}")),
                );
                if ui.button("Cancel indexing").clicked() {
                    app.engine.cancel_indexing();
                }
            }
            None => {
                if let Some(r) = &app.images.report {
                    let summary = format!(
                        "indexed: {} added, {} updated, {} renamed, {} unchanged, {} removed, {} skipped{}",
                        r.added,
                        r.updated,
                        r.renamed,
                        r.unchanged,
                        r.removed,
                        r.failed.len(),
                        if r.cancelled { " (cancelled)" } else { "" }
                    );
                    let response = ui.label(summary);
                    if !r.failed.is_empty() {
                        let reasons: Vec<String> = r
                            .failed
                            .iter()
                            .take(20)
                            .map(|(p, why)| format!("{}: {why}", p.display()))
                            .collect();
                        response.on_hover_text(reasons.join("\n"));
                    }
                }
            }
        }
    });
    if let Some(heard) = &app.images.heard {
        ui.label(format!("Heard: {heard}"));
    }
    let zone = egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.weak("Drop images or folders anywhere to index them; drop one image here to find similar ones.");
    });
    app.images.similar_zone = zone.response.rect;
    let caption_height = 150.0;
    egui::ScrollArea::vertical()
        .id_salt("results")
        .max_height((ui.available_height() - caption_height).max(120.0))
        .auto_shrink([false, false])
        .show(ui, |ui| {
            if app.images.results.is_empty() {
                ui.weak("No results yet: index some images, then search.");
            }
            // As many thumbnails a row as the panel is wide; the rows scroll.
            let gap = ui.spacing().item_spacing.x;
            let per_row = (((ui.available_width() + gap) / (THUMB + gap)).floor() as usize).max(1);
            egui::Grid::new("result-grid").spacing([gap, gap]).show(ui, |ui| {
                for (rank, r) in app.images.results.iter().enumerate() {
                    ui.vertical(|ui| {
                        ui.set_width(THUMB);
                        match app.images.texture_of(r) {
                            Some(t) => {
                                ui.add(
                                    egui::Image::new(t)
                                        .fit_to_exact_size(egui::vec2(THUMB, THUMB))
                                        .maintain_aspect_ratio(true)
                                        .alt_text(name_of(&r.path)),
                                )
                                .on_hover_text(r.path.display().to_string());
                            }
                            None => {
                                ui.add_sized([THUMB, THUMB], egui::Spinner::new());
                            }
                        }
                        let label = format!("{}. {} {:.3}", rank + 1, name_of(&r.path), r.score);
                        ui.add(egui::Label::new(label).wrap());
                    });
                    if (rank + 1) % per_row == 0 {
                        ui.end_row();
                    }
                }
            });
        });
    ui.separator();
    ui.horizontal(|ui| {
        let label = ui.label("Captions");
        ui.add(
            egui::TextEdit::multiline(&mut app.images.captions)
                .hint_text("one caption per line")
                .desired_rows(3)
                .desired_width(300.0),
        )
        .labelled_by(label.id);
        ui.vertical(|ui| {
            let images: Vec<PathBuf> =
                app.images.results.iter().take(CAPTION_IMAGES).map(|r| r.path.clone()).collect();
            let can = !images.is_empty() && !app.images.captions.trim().is_empty();
            if ui
                .add_enabled(can, egui::Button::new("Match captions"))
                .on_hover_text("Which caption fits each of the top images")
                .clicked()
            {
                app.images.captioning = true;
                let captions: Vec<String> = app
                    .images
                    .captions
                    .lines()
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect();
                app.images.caption_texts.clone_from(&captions);
                app.send(Request::Captions { images, captions, encoder: EncoderChoice::Auto });
            }
            if app.images.captioning {
                ui.spinner();
            }
        });
        let captions = &app.images.caption_texts;
        egui::ScrollArea::vertical().id_salt("captions").show(ui, |ui| {
            egui::Grid::new("caption-grid").num_columns(2).show(ui, |ui| {
                for row in &app.images.caption_rows {
                    ui.label(name_of(&row.image));
                    match &row.result {
                        Ok(probs) => {
                            let best =
                                probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i);
                            ui.horizontal(|ui| {
                                for (i, p) in probs.iter().enumerate() {
                                    let text = format!(
                                        "{} {:.0} %",
                                        captions.get(i).map_or("?", String::as_str),
                                        p * 100.0
                                    );
                                    if Some(i) == best {
                                        ui.strong(text)
                                    } else {
                                        ui.weak(text)
                                    };
                                }
                            });
                        }
                        Err(e) => {
                            ui.colored_label(ui.visuals().error_fg_color, e);
                        }
                    }
                    ui.end_row();
                }
            });
        });
    });
}
