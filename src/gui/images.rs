//! The library: drop images, recordings or folders to add them (progress, cancel); one search
//! over images and spoken moments, by text, by voice or by an example image; a grid of
//! thumbnails and moments (each with its context and a Play button that lights up the words as
//! they are said); which caption fits each image.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};

use crate::audio::playback::Playback;
use crate::engine::{
    Ask, CaptionRow, Engine, Found, FoundImage, FoundItem, FoundMoment, ImageQuery, JobId, LibrarySize,
    Request, SpokenQuery,
};
use crate::gallery::IndexReport;
use crate::gallery::moments::clock;
use crate::gallery::rank::SearchKind;
use crate::live::{Live, LiveEvent, Purpose};
use crate::space::images::EncoderChoice;
use crate::speech;

use super::CrossmodalApp;

/// What the number after a result's name is.
const SCORE_MEANS: &str = "The number is the match score: how likely the result is what was asked for (0 to 1), \
     or, for an encoder not calibrated, the cosine similarity.";

/// Results asked for per search.
const TOP: usize = 48;
/// Results shown at first, and added by each "Show more".
const PAGE: usize = 12;
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

/// An add run in progress: files done of all, and the recording being transcribed.
#[derive(Debug, Clone, Default)]
pub struct Indexing {
    pub done: usize,
    pub total: usize,
    pub transcribing: Option<(PathBuf, f32)>,
    /// A watch run: one that finds nothing new leaves the last report as it was.
    pub watch: bool,
}

pub struct ImagesPanel {
    gallery: PathBuf,
    query: String,
    pub focus_search: bool,
    results: Vec<FoundItem>,
    /// How many of the results are shown.
    shown: usize,
    heard: Option<String>,
    /// The search whose answer is awaited.
    searching: Option<JobId>,
    indexing: Option<Indexing>,
    /// What the library holds, as last heard.
    size: Option<LibrarySize>,
    /// Near-duplicate groups, when asked for (shown in place of the results).
    duplicates: Option<crate::gallery::duplicates::Duplicates>,
    finding_duplicates: bool,
    /// When the last run ended.
    last_run: Option<std::time::Instant>,
    /// The library file as last looked at (its and its write-ahead log's time and size), and
    /// when: a change made by another program (`crossmodal add`) is noticed.
    file_seen: (Vec<Option<(std::time::SystemTime, u64)>>, Option<std::time::Instant>),
    /// The moment playing: its place in the results, and the playback.
    playing: Option<(usize, Playback)>,
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
            shown: PAGE,
            heard: None,
            searching: None,
            indexing: None,
            size: None,
            duplicates: None,
            finding_duplicates: false,
            last_run: None,
            file_seen: (Vec::new(), None),
            playing: None,
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
        self.indexing.is_none() && self.searching.is_none() && !self.captioning && !self.finding_duplicates
    }

    pub fn duplicates_found(
        &mut self,
        result: Result<crate::gallery::duplicates::Duplicates, String>,
    ) -> Option<String> {
        self.finding_duplicates = false;
        match result {
            Ok(d) => {
                self.duplicates = Some(d);
                None
            }
            Err(e) => Some(format!("near-duplicates: {e}")),
        }
    }

    /// Whether a watch run may start: nothing else is being added, and the last run ended
    /// `every` ago.
    pub fn may_watch(&self, every: std::time::Duration) -> bool {
        self.indexing.is_none() && self.last_run.is_none_or(|t| t.elapsed() >= every)
    }

    /// A watch run: like `index`, but a run that finds nothing new leaves the last report.
    pub fn watch(&mut self, engine: &Engine, folders: Vec<PathBuf>, model: &str) {
        self.index(engine, folders, model);
        if let Some(run) = &mut self.indexing {
            run.watch = true;
        }
    }

    /// Adds images and recordings (transcribed with `model`) to the library.
    pub fn index(&mut self, engine: &Engine, paths: Vec<PathBuf>, model: &str) {
        self.indexing = Some(Indexing::default());
        engine.send(Request::Index {
            gallery: self.gallery.clone(),
            paths,
            encoder: EncoderChoice::Auto,
            reindex: false,
            speech: Some(model.to_owned()),
        });
    }

    pub fn indexing(&mut self, done: usize, total: usize, transcribing: Option<(PathBuf, f32)>) {
        let run = self.indexing.get_or_insert_with(Indexing::default);
        (run.done, run.total, run.transcribing) = (done, total, transcribing);
    }

    /// Every 2 s, whether the library file changed since last seen (written by another
    /// program: `crossmodal add`, another window); if so, its size is asked again.
    pub fn notice_outside_changes(&mut self, engine: &Engine) {
        const EVERY: std::time::Duration = std::time::Duration::from_secs(2);
        if self.indexing.is_some() || self.file_seen.1.is_some_and(|t| t.elapsed() < EVERY) {
            return;
        }
        let stamp = |p: &Path| {
            let meta = std::fs::metadata(p).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        };
        let wal = PathBuf::from(format!("{}-wal", self.gallery.display()));
        let now = vec![stamp(&self.gallery), stamp(&wal)];
        let first = self.file_seen.1.is_none();
        self.file_seen.1 = Some(std::time::Instant::now());
        if !first && now != self.file_seen.0 {
            self.ask_size(engine);
        }
        self.file_seen.0 = now;
    }

    /// Asks how much the library holds (at start and after each run).
    pub fn ask_size(&self, engine: &Engine) {
        engine.send(Request::LibrarySize { gallery: self.gallery.clone() });
    }

    pub fn sized(&mut self, result: Result<LibrarySize, String>) -> Option<String> {
        match result {
            Ok(size) => {
                self.size = Some(size);
                None
            }
            Err(e) => Some(format!("library: {e}")),
        }
    }

    pub fn indexed(&mut self, engine: &Engine, result: Result<IndexReport, String>) -> Option<String> {
        let watch = self.indexing.take().is_some_and(|run| run.watch);
        self.last_run = Some(std::time::Instant::now());
        self.ask_size(engine);
        match result {
            Ok(r) => {
                let news = r.added + r.updated + r.renamed + r.removed + r.failed.len() > 0;
                if !watch || news {
                    self.report = Some(r);
                }
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
        self.playing = None;
        self.duplicates = None;
        let ask = Ask { query, kind: SearchKind::All, top: TOP };
        engine.send(Request::Search { id, gallery: self.gallery.clone(), ask, encoder: EncoderChoice::Auto });
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
                self.size = Some(found.library);
                self.results = found.items;
                self.shown = PAGE;
                if let Some(h) = &found.heard
                    && !self.history.contains(h)
                {
                    self.history.push(h.clone());
                }
                // A spoken query goes into the search box: what was heard is what is searched.
                if let Some(h) = &found.heard {
                    self.query.clone_from(h);
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

    /// True while a spoken query is being listened for.
    pub fn hearing_query(&self) -> bool {
        self.mic.is_some()
    }

    /// Searches for what was said once the spoken query has been heard, with `hear_with`'s
    /// Whisper model and options (the person's own).
    pub fn poll_live(
        &mut self,
        engine: &Engine,
        hear_with: (String, speech::Options),
        notices: &mut Vec<String>,
    ) {
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
                | LiveEvent::Settled(_)
                | LiveEvent::Decided { .. } => {}
            }
        }
        if let Some(samples) = heard {
            self.mic = None;
            let (model, options) = hear_with;
            let spoken = SpokenQuery { samples, model, options };
            let query = ImageQuery { text: self.query.clone(), audio: Some(spoken), image: None };
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
        let mut wanted: Vec<PathBuf> =
            self.images().map(|r| r.thumbnail.clone().unwrap_or_else(|| r.path.clone())).collect();
        if let Some(d) = &self.duplicates {
            wanted.extend(d.groups.iter().flatten().cloned());
        }
        for source in wanted {
            if self.requested.insert(source.clone()) {
                let _ = loader.requests.send(source);
            }
        }
    }

    /// Every result's thumbnail is on screen.
    pub fn thumbnails_shown(&self) -> bool {
        self.images().all(|r| self.texture_of(r).is_some())
    }

    /// The images among the results shown.
    fn images(&self) -> impl Iterator<Item = &FoundImage> {
        self.results.iter().take(self.shown).filter_map(|r| match r {
            FoundItem::Image(i) => Some(i),
            FoundItem::Moment(_) => None,
        })
    }

    /// Plays the moment at `rank` of the results from its start (again: stops it).
    fn play(&mut self, rank: usize, notices: &mut Vec<String>) {
        if self.playing.as_ref().is_some_and(|(r, _)| *r == rank) {
            self.playing = None;
            return;
        }
        self.playing = None;
        let Some(FoundItem::Moment(m)) = self.results.get(rank) else { return };
        match Playback::start(&m.path, m.start) {
            Ok(p) => {
                tracing::info!("playing {} from {:.1} s on {}", m.path.display(), m.start, p.device());
                self.playing = Some((rank, p));
            }
            Err(e) => notices.push(format!("play: {e}")),
        }
    }

    /// Where the moment at `rank` is playing, if it is.
    /// Plays (or stops) the best spoken moment among the results shown.
    pub(crate) fn play_best(&mut self, notices: &mut Vec<String>) {
        let best = self.results.iter().take(self.shown).position(|r| matches!(r, FoundItem::Moment(_)));
        match best {
            Some(rank) => self.play(rank, notices),
            None if self.results.is_empty() => {}
            None => notices.push("no spoken moment among the results to play".into()),
        }
    }

    pub fn playing_at(&self, rank: usize) -> Option<f64> {
        self.playing.as_ref().filter(|(r, _)| *r == rank).map(|(_, p)| p.position())
    }

    /// The playback ends by itself at the end of the recording.
    fn tidy_playback(&mut self, notices: &mut Vec<String>) {
        if let Some((_, p)) = &self.playing
            && p.finished()
        {
            if let Some(why) = p.problem() {
                notices.push(format!("play: {why}"));
            }
            self.playing = None;
        }
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
        self.images().map(|r| r.path.clone()).collect()
    }
}

fn name_of(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

pub fn show(ui: &mut egui::Ui, app: &mut CrossmodalApp) {
    app.images.thumbnails(ui.ctx());
    app.images.tidy_playback(&mut app.notices);
    // Rows wrap whole controls: in a narrow window they go to the next line, never off the edge.
    ui.horizontal_wrapped(|ui| {
        ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Extend);
        let label = ui.label("Search");
        let edit = ui.add(
            egui::TextEdit::singleline(&mut app.images.query)
                .hint_text("what to find, seen or said: a red car, the budget meeting")
                .desired_width(ui.available_width().clamp(160.0, 360.0)),
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
    ui.horizontal_wrapped(|ui| {
        ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Extend);
        if ui.button("Add a folder…").on_hover_text("Its images and recordings").clicked() {
            app.choose(super::files::Want::Library);
        }
        if ui
            .button("Find similar…")
            .on_hover_text("Images like the one you pick, and moments about it")
            .clicked()
        {
            app.choose(super::files::Want::SimilarImage);
        }
        if ui
            .add_enabled(!app.images.finding_duplicates, egui::Button::new("Near-duplicates"))
            .on_hover_text("Groups of images that are the same photograph re-encoded, resized or cropped")
            .clicked()
        {
            app.images.finding_duplicates = true;
            app.send(Request::Duplicates { gallery: app.images.gallery.clone(), threshold: None });
        }
        ui.checkbox(&mut app.settings.library.watch, "Watch folders").on_hover_text(format!(
            "Look at the folders added every 10 s: {}",
            watched(&app.settings.library.folders)
        ));
        if let Some(size) = app.images.size {
            ui.label(format!(
                "Library: {} images, {} recordings ({} moments)",
                size.images, size.recordings, size.moments
            ));
        }
    });
    ui.horizontal(|ui| match &app.images.indexing {
        Some(run) => {
            let fraction = if run.total == 0 {
                0.0
            } else {
                let within = run.transcribing.as_ref().map_or(0.0, |t| t.1);
                (run.done as f32 + within) / run.total as f32
            };
            let text = match &run.transcribing {
                Some((file, f)) => {
                    format!(
                        "adding {}/{}: transcribing {} {:.0} %",
                        run.done,
                        run.total,
                        name_of(file),
                        f * 100.0
                    )
                }
                None => format!("adding {}/{}", run.done, run.total),
            };
            ui.add(egui::ProgressBar::new(fraction).desired_width(320.0).text(text));
            if ui.button("Cancel adding").clicked() {
                app.engine.cancel_indexing();
            }
        }
        None => {
            if let Some(r) = &app.images.report {
                let summary = format!(
                    "added {}, updated {}, renamed {}, unchanged {}, removed {}, skipped {}{}",
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
                    let reasons: Vec<String> =
                        r.failed.iter().take(20).map(|(p, why)| format!("{}: {why}", p.display())).collect();
                    response.on_hover_text(reasons.join("\n"));
                }
            }
        }
    });
    if let Some(heard) = &app.images.heard {
        ui.label(format!("Heard: {heard}"));
    }
    let zone = egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.weak(
            "Drop images, recordings or folders anywhere to add them; drop one image here to find similar ones and moments about it.",
        );
    });
    app.images.similar_zone = zone.response.rect;
    let caption_height = 150.0;
    let mut play = None;
    egui::ScrollArea::vertical()
        .id_salt("results")
        .max_height((ui.available_height() - caption_height).max(120.0))
        .auto_shrink([false, false])
        .show(ui, |ui| {
            if let Some(d) = &app.images.duplicates {
                duplicates_view(ui, &app.images, d);
                return;
            }
            if app.images.results.is_empty() {
                let empty = app.images.size.is_none_or(|s| s.images + s.recordings == 0);
                if empty {
                    ui.weak("The library is empty: add images, recordings or folders, then search.");
                } else {
                    ui.weak("No results yet: search for something seen or said.");
                }
            }
            // Results wrap into rows as wide as the panel (a moment takes two thumbnails'
            // width); the rows scroll.
            let gap = ui.spacing().item_spacing.x;
            let moment_width = THUMB * 2.0 + gap;
            let width_of = |item: &FoundItem| match item {
                FoundItem::Image(_) => THUMB,
                // The frame's margins and stroke on both sides.
                FoundItem::Moment(_) => moment_width + 14.0,
            };
            let available = ui.available_width();
            let mut rows: Vec<Vec<usize>> = Vec::new();
            let mut used = f32::INFINITY;
            for (rank, item) in app.images.results.iter().enumerate().take(app.images.shown) {
                let w = width_of(item);
                if used + gap + w > available {
                    rows.push(Vec::new());
                    used = -gap;
                }
                used += gap + w;
                if let Some(row) = rows.last_mut() {
                    row.push(rank);
                }
            }
            for row in rows {
                ui.horizontal_top(|ui| {
                    for rank in row {
                        match &app.images.results[rank] {
                            FoundItem::Image(r) => image_cell(ui, &app.images, rank, r),
                            FoundItem::Moment(m) => {
                                let at = app.images.playing_at(rank);
                                if moment_cell(ui, rank, m, at, moment_width) {
                                    play = Some(rank);
                                }
                            }
                        }
                    }
                });
            }
            let (shown, found) = (app.images.shown.min(app.images.results.len()), app.images.results.len());
            if shown < found
                && ui
                    .button(format!("Show more ({shown} of {found} shown)"))
                    .on_hover_text("The next results, less alike")
                    .clicked()
            {
                app.images.shown += PAGE;
            }
        });
    if let Some(rank) = play {
        app.images.play(rank, &mut app.notices);
    }
    if app.images.playing.is_some() {
        ui.ctx().request_repaint_after(std::time::Duration::from_millis(40));
    }
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
            // Every image shown is scored, not only the first few (Show more adds to them).
            let images: Vec<PathBuf> = app.images.images().map(|r| r.path.clone()).collect();
            let can = !images.is_empty() && !app.images.captions.trim().is_empty();
            if ui
                .add_enabled(can, egui::Button::new("Match captions"))
                .on_hover_text("Which caption fits each image shown")
                .on_disabled_hover_text("Search first, and write a caption a line")
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

fn image_cell(ui: &mut egui::Ui, panel: &ImagesPanel, rank: usize, r: &FoundImage) {
    ui.vertical(|ui| {
        ui.set_width(THUMB);
        match panel.texture_of(r) {
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
        ui.add(egui::Label::new(label).wrap()).on_hover_text(SCORE_MEANS);
    });
}

/// A spoken moment: where it is, what was said around it (the moment itself strong), and Play;
/// while it plays, the word being said is lit. Returns whether Play (or Stop) was clicked.
fn moment_cell(ui: &mut egui::Ui, rank: usize, m: &FoundMoment, playing: Option<f64>, width: f32) -> bool {
    let mut clicked = false;
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(width);
        ui.vertical(|ui| {
            // Wrapped within the card: a long file name must not widen it past its place.
            ui.horizontal_wrapped(|ui| {
                let label = if playing.is_some() { "Stop" } else { "Play" };
                clicked = ui.button(label).on_hover_text("Play the recording from this moment").clicked();
                ui.label(format!(
                    "{}. {} {}–{} {:.3}",
                    rank + 1,
                    name_of(&m.path),
                    clock(m.start),
                    clock(m.end),
                    m.score
                ))
                .on_hover_text(format!("{}\n{SCORE_MEANS}", m.path.display()));
            });
            let mut job = egui::text::LayoutJob::default();
            let style = ui.style();
            let weak = egui::TextFormat { color: style.visuals.weak_text_color(), ..Default::default() };
            let strong = egui::TextFormat { color: style.visuals.strong_text_color(), ..Default::default() };
            let lit = egui::TextFormat {
                color: style.visuals.strong_text_color(),
                background: style.visuals.selection.bg_fill,
                ..Default::default()
            };
            if !m.context.before.is_empty() {
                job.append(&format!("… {} ", m.context.before), 0.0, weak.clone());
            }
            match playing {
                Some(at) if !m.context.words.is_empty() => {
                    for w in &m.context.words {
                        let format = if w.start <= at && at < w.end { lit.clone() } else { strong.clone() };
                        job.append(&format!("{} ", w.word.trim()), 0.0, format);
                    }
                }
                _ => job.append(&m.text, 0.0, strong),
            }
            if !m.context.after.is_empty() {
                job.append(&format!(" {} …", m.context.after), 0.0, weak);
            }
            job.wrap.max_width = width;
            ui.label(job);
            if let Some(at) = playing {
                ui.weak(format!("playing {}", clock(at)));
            }
        });
    });
    clicked
}

/// The near-duplicate groups, a row of thumbnails each.
fn duplicates_view(ui: &mut egui::Ui, panel: &ImagesPanel, d: &crate::gallery::duplicates::Duplicates) {
    let n = d.groups.len();
    ui.strong(format!(
        "{n} {} of near-duplicates among {} images",
        if n == 1 { "group" } else { "groups" },
        d.images
    ));
    if d.without_features > 0 {
        ui.weak(format!(
            "{} images were added by an older version: add them again to compare them",
            d.without_features
        ));
    }
    for (i, group) in d.groups.iter().enumerate() {
        ui.label(format!("Group {}", i + 1));
        ui.horizontal_wrapped(|ui| {
            for path in group {
                ui.vertical(|ui| {
                    ui.set_width(THUMB);
                    match panel.textures.get(path) {
                        Some(t) => {
                            ui.add(
                                egui::Image::new(t)
                                    .fit_to_exact_size(egui::vec2(THUMB, THUMB))
                                    .maintain_aspect_ratio(true)
                                    .alt_text(name_of(path)),
                            );
                        }
                        None => {
                            ui.add_sized([THUMB, THUMB], egui::Spinner::new());
                        }
                    }
                    ui.add(egui::Label::new(name_of(path)).wrap()).on_hover_text(path.display().to_string());
                });
            }
        });
    }
}

/// The watched folders, for a tooltip.
fn watched(folders: &[PathBuf]) -> String {
    if folders.is_empty() {
        return "none yet (add a folder)".into();
    }
    folders.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
}
