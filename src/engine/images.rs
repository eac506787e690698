//! Image jobs of the engine: indexing on a thread of its own (a long run must not hold up
//! transcription or commands), searching, captions and the 2-D picture of the space, all on the
//! `ImageSpace` built from the engine's own models.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;

use super::{Event, Notify};
use crate::gallery::query::parse_terms;
use crate::gallery::{Gallery, load_image};
use crate::space::images::ImageSpace;
use crate::space::projection::pca_2d;
use crate::space::{Embedding, SpaceError};

/// What to search a gallery for; the parts given are added.
#[derive(Debug, Clone, Default)]
pub struct ImageQuery {
    /// Text, with `+`, `-` and weights (`"the moon" - coffee`).
    pub text: String,
    /// Images like this one.
    pub image: Option<PathBuf>,
    /// A spoken query (16 kHz mono): its transcript is searched for.
    pub audio: Option<Vec<f32>>,
}

/// One ranked image.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundImage {
    pub path: PathBuf,
    pub score: f32,
    /// The cached thumbnail, when the gallery has one.
    pub thumbnail: Option<PathBuf>,
}

/// The answer to a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub images: Vec<FoundImage>,
    /// The transcript of a spoken query.
    pub heard: Option<String>,
}

/// How well each caption fits one image (probabilities that sum to 1).
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionRow {
    pub image: PathBuf,
    pub result: Result<Vec<f32>, String>,
}

/// Something to place in the picture of the space: its kind ("transcript", "command", "query")
/// and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceItem {
    pub kind: String,
    pub text: String,
}

/// A placed item; images have kind "image" and their file name as label.
#[derive(Debug, Clone, PartialEq)]
pub struct SpacePoint {
    pub kind: String,
    pub label: String,
    pub x: f32,
    pub y: f32,
}

/// Images drawn in the picture of the space, at most (a sample of a larger gallery).
const MAX_SPACE_IMAGES: usize = 500;

/// What an indexing run is to do.
pub(super) struct IndexJob {
    pub gallery: PathBuf,
    pub paths: Vec<PathBuf>,
    pub reindex: bool,
}

/// Runs indexing on a thread of its own, one run at a time.
#[derive(Default)]
pub(super) struct Indexer {
    running: Arc<AtomicBool>,
}

impl Indexer {
    /// Starts an indexing run unless one is going; its events go to `reply`.
    pub fn start(
        &mut self,
        space: ImageSpace,
        job: IndexJob,
        cancel: Arc<AtomicBool>,
        reply: Sender<Event>,
        notify: Notify,
    ) {
        let emit = move |e: Event| {
            let _ = reply.send(e);
            notify();
        };
        if self.running.swap(true, Ordering::AcqRel) {
            emit(Event::Error("images are being indexed already: wait for that run, or cancel it".into()));
            return;
        }
        let running = Arc::clone(&self.running);
        let failed = emit.clone();
        let spawned = std::thread::Builder::new().name("crossmodal-indexer".into()).spawn(move || {
            let result = index(&space, &job, cancel, &emit);
            running.store(false, Ordering::Release);
            emit(Event::Indexed(result));
        });
        if let Err(e) = spawned {
            self.running.store(false, Ordering::Release);
            failed(Event::Error(format!("the indexing thread could not start: {e}")));
        }
    }
}

/// Ranks a gallery against a query; `heard` is the transcript of its spoken part.
pub(super) fn search(
    space: &ImageSpace,
    gallery: &Path,
    query: &ImageQuery,
    heard: Option<String>,
    top: usize,
) -> Result<Found, String> {
    if !gallery.exists() {
        return Err(format!(
            "nothing is indexed in {} yet: drop images or a folder on the window, or run `crossmodal index FOLDER`",
            gallery.display()
        ));
    }
    let gallery = Gallery::open(gallery, &space.id(), false).map_err(|e| e.to_string())?;
    let mut sum: Vec<f32> = Vec::new();
    let mut add = |w: f32, e: &Embedding| {
        sum.resize(e.as_slice().len(), 0.0);
        for (s, x) in sum.iter_mut().zip(e.as_slice()) {
            *s += w * x;
        }
    };
    let mut any = false;
    for text in std::iter::once(query.text.as_str()).chain(heard.as_deref()) {
        if text.trim().is_empty() {
            continue;
        }
        for (w, term) in parse_terms(text)? {
            add(w, &space.embed_text(&term).map_err(|e| e.to_string())?);
            any = true;
        }
    }
    if let Some(file) = &query.image {
        let img = load_image(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let v = space.embed_images(&[img]).map_err(|e| e.to_string())?;
        add(1.0, &v[0]);
        any = true;
    }
    if !any {
        return Err("type what to find, say it, or give an image".into());
    }
    let hits = gallery.search(&Embedding::normalised(sum), top).map_err(|e| e.to_string())?;
    let images = hits
        .into_iter()
        .map(|h| {
            let thumbnail = gallery.thumbnail_of(&h.path).ok().flatten();
            FoundImage { path: h.path, score: h.score, thumbnail }
        })
        .collect();
    Ok(Found { images, heard })
}

/// How well each caption fits each image: a probability per caption, for each image.
pub(super) fn captions(
    space: &ImageSpace,
    images: &[PathBuf],
    captions: &[String],
) -> Result<Vec<CaptionRow>, String> {
    let captions: Vec<&str> = captions.iter().map(|c| c.trim()).filter(|c| !c.is_empty()).collect();
    if captions.is_empty() {
        return Err("write at least one caption".into());
    }
    let vectors = space.embed_texts(&captions).map_err(|e| e.to_string())?;
    Ok(images
        .iter()
        .map(|file| {
            let result = load_image(file).and_then(|img| {
                let v = space.embed_images(&[img]).map_err(|e| e.to_string())?.remove(0);
                let logits: Vec<f32> = vectors.iter().map(|c| space.caption_scale() * v.cosine(c)).collect();
                Ok(softmax(&logits))
            });
            CaptionRow { image: file.clone(), result }
        })
        .collect())
}

/// Texts and a sample of a gallery's images, placed in two dimensions.
pub(super) fn project(
    space: &ImageSpace,
    items: &[SpaceItem],
    gallery: Option<&Path>,
) -> Result<Vec<SpacePoint>, String> {
    let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
    let mut vectors = space.embed_texts(&texts).map_err(|e| e.to_string())?;
    let mut points: Vec<(String, String)> = items.iter().map(|i| (i.kind.clone(), i.text.clone())).collect();
    if let Some(path) = gallery.filter(|p| p.exists()) {
        let gallery = Gallery::open(path, &space.id(), false).map_err(|e| e.to_string())?;
        let stored = gallery.vectors().map_err(|e| e.to_string())?;
        let step = stored.len().div_ceil(MAX_SPACE_IMAGES).max(1);
        for (file, v) in stored.into_iter().step_by(step) {
            let name =
                file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into());
            points.push(("image".into(), name));
            vectors.push(v);
        }
    }
    Ok(points
        .into_iter()
        .zip(pca_2d(&vectors))
        .map(|((kind, label), [x, y])| SpacePoint { kind, label, x, y })
        .collect())
}

fn index(
    space: &ImageSpace,
    job: &IndexJob,
    cancel: Arc<AtomicBool>,
    emit: &dyn Fn(Event),
) -> Result<crate::gallery::IndexReport, String> {
    let mut gallery = Gallery::open(&job.gallery, &space.id(), job.reindex).map_err(|e| e.to_string())?;
    gallery.set_cancel(cancel);
    let mut last = std::time::Instant::now();
    gallery
        .index(
            &job.paths,
            &mut |images| space.embed_images(images).map_err(|e: SpaceError| e.to_string()),
            &mut |done, total| {
                // Folders of thousands of files: a few updates a second are plenty.
                if done == 0 || done == total || last.elapsed().as_millis() >= 100 {
                    last = std::time::Instant::now();
                    emit(Event::Indexing { done, total });
                }
            },
        )
        .map_err(|e| e.to_string())
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / total).collect()
}
