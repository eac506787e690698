//! Image jobs of the engine: indexing on a thread of its own (a long run must not hold up
//! transcription or commands), searching, captions and the 2-D picture of the space, all on the
//! `ImageSpace` built from the engine's own models.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;

use super::{Event, Notify};
use crate::gallery::moments::{Context, Library};
use crate::gallery::query::parse_terms;
use crate::gallery::rank::{self, SearchKind};
use crate::gallery::{Gallery, load_image};
use crate::space::images::ImageSpace;
use crate::space::projection::pca_2d;
use crate::space::{Embedding, TextEncoder};
use crate::speech::{self, Whisper};

/// What to search a gallery for; the parts given are added.
#[derive(Debug, Clone, Default)]
pub struct ImageQuery {
    /// Text, with `+`, `-` and weights (`"the moon" - coffee`).
    pub text: String,
    /// Images like this one.
    pub image: Option<PathBuf>,
    /// A spoken query: its transcript is searched for.
    pub audio: Option<SpokenQuery>,
}

/// A spoken query and how to hear it: the person's chosen Whisper model and options (their
/// language), as everything else they say is heard.
#[derive(Debug, Clone)]
pub struct SpokenQuery {
    /// 16 kHz mono.
    pub samples: Vec<f32>,
    /// A Whisper model of the catalogue.
    pub model: String,
    pub options: speech::Options,
}

/// A search as asked: what, which kinds, how many.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    pub query: ImageQuery,
    pub kind: SearchKind,
    pub top: usize,
}

/// One ranked image.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundImage {
    pub path: PathBuf,
    /// How likely it is what was asked for (see `gallery::rank`), or the cosine where no
    /// calibration is known for the encoder.
    pub score: f32,
    pub cosine: f32,
    /// The cached thumbnail, when the gallery has one.
    pub thumbnail: Option<PathBuf>,
}

/// One ranked spoken moment.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundMoment {
    pub path: PathBuf,
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// What was said just before and just after, and the moment's words with their times.
    pub context: Context,
    pub score: f32,
    pub cosine: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FoundItem {
    Image(FoundImage),
    Moment(FoundMoment),
}

impl FoundItem {
    pub fn score(&self) -> f32 {
        match self {
            FoundItem::Image(i) => i.score,
            FoundItem::Moment(m) => m.score,
        }
    }
}

/// How much the library holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LibrarySize {
    pub images: usize,
    pub recordings: usize,
    /// Segments: each stretch of speech once.
    pub moments: usize,
}

/// The answer to a search: one list, best first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Found {
    pub items: Vec<FoundItem>,
    /// The transcript of a spoken query.
    pub heard: Option<String>,
    pub library: LibrarySize,
    /// The kinds were ordered by calibrated relevance (else taken in turns, best of each first).
    pub calibrated: bool,
}

impl Found {
    pub fn images(&self) -> impl Iterator<Item = &FoundImage> {
        self.items.iter().filter_map(|i| match i {
            FoundItem::Image(i) => Some(i),
            FoundItem::Moment(_) => None,
        })
    }

    pub fn moments(&self) -> impl Iterator<Item = &FoundMoment> {
        self.items.iter().filter_map(|i| match i {
            FoundItem::Moment(m) => Some(m),
            FoundItem::Image(_) => None,
        })
    }
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

/// The models an indexing run uses: the image space, the sentence encoder for moments, and,
/// when recordings are added, a Whisper model (or why it could not be loaded: then each
/// recording is skipped with that reason, and the images are still added).
pub(super) struct IndexModels {
    pub space: ImageSpace,
    pub text: Arc<TextEncoder>,
    pub whisper: Option<Result<Arc<Whisper>, String>>,
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
        models: IndexModels,
        job: IndexJob,
        cancel: Arc<AtomicBool>,
        reply: Sender<Event>,
        notify: Notify,
    ) {
        let emit: Emit = Arc::new(move |e: Event| {
            let _ = reply.send(e);
            notify();
        });
        if self.running.swap(true, Ordering::AcqRel) {
            emit(Event::Error("files are being added already: wait for that run, or cancel it".into()));
            return;
        }
        let running = Arc::clone(&self.running);
        let failed = Arc::clone(&emit);
        let spawned = std::thread::Builder::new().name("crossmodal-indexer".into()).spawn(move || {
            let result = index(models, &job, cancel, &emit);
            running.store(false, Ordering::Release);
            emit(Event::Indexed(result));
        });
        if let Err(e) = spawned {
            self.running.store(false, Ordering::Release);
            failed(Event::Error(format!("the indexing thread could not start: {e}")));
        }
    }
}

type Emit = Arc<dyn Fn(Event) + Send + Sync>;

/// The engine's models as the gallery's `Encoders`; transcription reports its progress as a
/// fraction of the file at hand.
struct EngineEncoders {
    models: IndexModels,
    cancel: Arc<AtomicBool>,
    emit: Emit,
    /// (done, total) files, as the gallery last reported.
    at: Arc<std::sync::Mutex<(usize, usize)>>,
}

impl crate::gallery::Encoders for EngineEncoders {
    fn images(&mut self, images: &[image::RgbImage]) -> Result<Vec<(Embedding, Embedding)>, String> {
        self.models.space.embed_images_with_features(images).map_err(|e| e.to_string())
    }

    fn hears(&self) -> bool {
        self.models.whisper.is_some()
    }

    fn transcribe(&mut self, path: &Path) -> Result<speech::Transcript, String> {
        let whisper = match &self.models.whisper {
            Some(Ok(w)) => w,
            Some(Err(why)) => return Err(why.clone()),
            None => return Err("no speech model was asked for".into()),
        };
        let (done, total) = *self.at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (emit, file) = (Arc::clone(&self.emit), path.to_owned());
        let progress: speech::Progress = Arc::new(move |fraction| {
            emit(Event::Indexing { done, total, transcribing: Some((file.clone(), fraction)) });
        });
        // Word times let the window light up each word as a moment plays.
        let options = speech::Options { word_timestamps: true, ..speech::Options::default() };
        whisper.transcribe_file(path, &options, &self.cancel, Some(progress)).map_err(|e| e.to_string())
    }

    fn texts(&mut self, texts: &[String]) -> Result<Vec<Embedding>, String> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(32) {
            out.extend(self.models.text.embed(chunk).map_err(|e| e.to_string())?);
        }
        Ok(out)
    }
}

/// The vectors a query makes: one in the image space, one in the sentence space (the
/// moments'); the same vector when images live in the sentence space.
struct QueryVectors {
    image: Option<Embedding>,
    speech: Option<Embedding>,
}

/// Adds weighted vectors, then normalises; `None` when nothing was added.
#[derive(Default)]
struct Sum(Vec<f32>, bool);

impl Sum {
    fn add(&mut self, w: f32, e: &Embedding) {
        self.0.resize(e.as_slice().len(), 0.0);
        for (s, x) in self.0.iter_mut().zip(e.as_slice()) {
            *s += w * x;
        }
        self.1 = true;
    }

    fn done(self) -> Option<Embedding> {
        self.1.then(|| Embedding::normalised(self.0))
    }
}

fn query_vectors(
    space: &ImageSpace,
    text: &TextEncoder,
    query: &ImageQuery,
    heard: Option<&str>,
) -> Result<QueryVectors, String> {
    let shared = matches!(space, ImageSpace::Lite { .. });
    let (mut image, mut speech) = (Sum::default(), Sum::default());
    for said in std::iter::once(query.text.as_str()).chain(heard) {
        if said.trim().is_empty() {
            continue;
        }
        for (w, term) in parse_terms(said)? {
            let v = text.embed(&[term.as_str()]).map_err(|e| e.to_string())?.remove(0);
            if shared {
                image.add(w, &v);
            } else {
                image.add(w, &space.embed_text(&term).map_err(|e| e.to_string())?);
            }
            speech.add(w, &v);
        }
    }
    if let Some(file) = &query.image {
        let img = load_image(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let v = space.embed_images(&[img]).map_err(|e| e.to_string())?.remove(0);
        image.add(1.0, &v);
        // CLIP's image vectors are not in the sentence space: they cannot reach moments.
        if shared {
            speech.add(1.0, &v);
        }
    }
    Ok(QueryVectors { image: image.done(), speech: speech.done() })
}

/// Ranks the library (images, moments or both) against a query; `heard` is the transcript of
/// its spoken part. `library` is the library held in memory for this gallery.
pub(super) fn search(
    space: &ImageSpace,
    text: &TextEncoder,
    gallery: &Gallery,
    library: &Library,
    ask: &Ask,
    heard: Option<String>,
) -> Result<Found, String> {
    let vectors = query_vectors(space, text, &ask.query, heard.as_deref())?;
    if vectors.image.is_none() && vectors.speech.is_none() {
        return Err("type what to find, say it, or give an image".into());
    }
    let calibration = rank::calibration(&space.id());
    let want_images = ask.kind != SearchKind::Speech;
    let want_moments = ask.kind != SearchKind::Image;
    if want_moments && !want_images && vectors.speech.is_none() {
        return Err(
            "an image query reaches spoken moments only through the lite encoder (--encoder lite)".into()
        );
    }
    let images: Vec<(FoundItem, f32)> = match (&vectors.image, want_images) {
        (Some(q), true) => library
            .top_images(q, ask.top)
            .into_iter()
            .map(|(i, cosine)| {
                let path = library.images[i].clone();
                let thumbnail = gallery.thumbnail_of(&path).ok().flatten();
                let score = calibration.map_or(cosine, |c| c.image.relevance(cosine));
                (FoundItem::Image(FoundImage { path, score, cosine, thumbnail }), score)
            })
            .collect(),
        _ => Vec::new(),
    };
    let moments: Vec<(FoundItem, f32)> = match (&vectors.speech, want_moments) {
        (Some(q), true) => library
            .top_moments(q, ask.top)
            .into_iter()
            .map(|(i, cosine)| {
                let m = &library.moments[i];
                let context = gallery.context(m).map_err(|e| e.to_string())?;
                let score = calibration.map_or(cosine, |c| c.speech.relevance(cosine));
                let found = FoundMoment {
                    path: m.path.clone(),
                    start: m.start,
                    end: m.end,
                    text: m.text.clone(),
                    context,
                    score,
                    cosine,
                };
                Ok((FoundItem::Moment(found), score))
            })
            .collect::<Result<_, String>>()?,
        _ => Vec::new(),
    };
    let items = rank::merge(images, moments, calibration.is_some(), ask.top);
    let size = LibrarySize {
        images: library.images.len(),
        recordings: gallery.recordings_len().map_err(|e| e.to_string())?,
        moments: gallery.segments_len().map_err(|e| e.to_string())?,
    };
    Ok(Found { items, heard, library: size, calibrated: calibration.is_some() })
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
    models: IndexModels,
    job: &IndexJob,
    cancel: Arc<AtomicBool>,
    emit: &Emit,
) -> Result<crate::gallery::IndexReport, String> {
    let mut gallery =
        Gallery::open(&job.gallery, &models.space.id(), job.reindex).map_err(|e| e.to_string())?;
    gallery.set_cancel(Arc::clone(&cancel));
    let at = Arc::new(std::sync::Mutex::new((0, 0)));
    let mut encoders = EngineEncoders { models, cancel, emit: Arc::clone(emit), at: Arc::clone(&at) };
    let mut last = std::time::Instant::now();
    gallery
        .index(&job.paths, &mut encoders, &mut |done, total| {
            *at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = (done, total);
            // Folders of thousands of files: a few updates a second are plenty.
            if done == 0 || done == total || last.elapsed().as_millis() >= 100 {
                last = std::time::Instant::now();
                emit(Event::Indexing { done, total, transcribing: None });
            }
        })
        .map_err(|e| e.to_string())
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / total).collect()
}
