//! The gallery: an SQLite index of image files and their vectors in the shared space, kept up to
//! date incrementally (unchanged files skipped, renamed files found by content hash, deleted
//! files dropped), written in transactions so that a killed indexer leaves a valid index.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use rusqlite::{Connection, OptionalExtension, params};

pub mod duplicates;
pub mod moments;
pub mod query;
pub mod rank;

use crate::space::Embedding;

/// Images are encoded this many at a time, and each batch is one transaction.
const BATCH: usize = 8;
/// Decoder limits: a 20000×20000 image is refused before its pixels are allocated.
pub const MAX_SIDE: u32 = 12_000;
const MAX_ALLOC: u64 = 512 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    #[error("gallery {path}: {source}")]
    Db { path: String, source: rusqlite::Error },
    #[error(
        "gallery {path} was made by encoder {found}, not {wanted}: index it again with --reindex, or use another --gallery"
    )]
    OtherEncoder { path: String, found: String, wanted: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// What indexing needs of the models.
pub trait Encoders {
    /// Vectors of decoded images: each one's search vector and its near-duplicate features.
    fn images(&mut self, images: &[image::RgbImage]) -> Result<Vec<(Embedding, Embedding)>, String>;
    /// Whether recordings are added too (a speech model is at hand).
    fn hears(&self) -> bool;
    /// The transcript of a recording.
    fn transcribe(&mut self, path: &Path) -> Result<crate::speech::Transcript, String>;
    /// Vectors of texts in the sentence space (for moments).
    fn texts(&mut self, texts: &[String]) -> Result<Vec<Embedding>, String>;
}

/// The two kinds of file the library holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Image,
    Recording,
}

impl Kind {
    fn table(self) -> &'static str {
        match self {
            Kind::Image => "images",
            Kind::Recording => "recordings",
        }
    }
}

/// A file as the library knows it.
struct Known {
    kind: Kind,
    size: i64,
    mtime: i64,
    hash: String,
}

/// An image read and decoded, waiting for its vector.
struct Pending {
    path: PathBuf,
    stamp: (i64, i64),
    hash: String,
    image: image::RgbImage,
    existed: bool,
}

/// A recording waiting to be transcribed.
struct Heard {
    path: PathBuf,
    stamp: (i64, i64),
    hash: String,
    existed: bool,
}

/// What an indexing run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IndexReport {
    pub added: usize,
    pub updated: usize,
    pub renamed: usize,
    pub unchanged: usize,
    pub removed: usize,
    /// Moments stored from the recordings transcribed in this run.
    pub moments: usize,
    /// Files that could not be indexed, with the reason.
    pub failed: Vec<(PathBuf, String)>,
    /// The run was stopped before it went through every file; what was stored stays.
    pub cancelled: bool,
}

/// A search hit.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    /// Shown as text; a name that is not UTF-8 has its odd bytes replaced (JSON holds text).
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    pub score: f32,
}

fn lossy_path<S: serde::Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

pub struct Gallery {
    conn: Connection,
    path: String,
    encoder: String,
    /// Thumbnails by content hash, beside the gallery file (`NAME.thumbs/`).
    thumbnails: PathBuf,
    cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// Thumbnails fit in this many pixels on their longer side.
pub const THUMBNAIL_SIDE: u32 = 256;

impl std::fmt::Debug for Gallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gallery")
            .field("path", &self.path)
            .field("encoder", &self.encoder)
            .finish_non_exhaustive()
    }
}

/// The gallery used when none is named: `gallery.sqlite` in the platform data folder.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "crossmodal").map(|d| d.data_dir().join("gallery.sqlite"))
}

/// Decodes an image file within the decoder limits, to RGB.
pub fn load_image(path: &Path) -> Result<image::RgbImage, String> {
    let mut reader = image::ImageReader::open(path).map_err(|e| e.to_string())?;
    reader = reader.with_guessed_format().map_err(|e| e.to_string())?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    match reader.format() {
        None => return Err("not an image (unknown format)".into()),
        // JPEG decoders fill a cut-off file with grey and carry on; such a file is refused.
        Some(image::ImageFormat::Jpeg) if !jpeg_is_complete(path) => {
            return Err("truncated JPEG: the file ends before its end-of-image marker".into());
        }
        Some(_) => {}
    }
    let image = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => format!("larger than {MAX_SIDE}×{MAX_SIDE} pixels; skipped"),
        other => format!("cannot be decoded: {other}"),
    })?;
    Ok(image.to_rgb8())
}

/// Whether a JPEG file ends with its end-of-image marker (FF D9), padding after it allowed.
fn jpeg_is_complete(path: &Path) -> bool {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else { return false };
    let len = f.metadata().map_or(0, |m| m.len());
    let tail_len = len.min(4096);
    let mut tail = vec![0u8; usize::try_from(tail_len).unwrap_or(0)];
    if f.seek(SeekFrom::Start(len - tail_len)).is_err() || f.read_exact(&mut tail).is_err() {
        return false;
    }
    tail.windows(2).any(|w| w == [0xff, 0xd9])
}

/// Image files, and audio files when `recordings`, under `paths`, each once, sorted; a file
/// named itself is taken by its ending (an image unless it is audio). Symlinked folders are
/// followed once (loops are cut); unreadable folders are reported.
pub fn find_media(
    paths: &[PathBuf],
    recordings: bool,
    failed: &mut Vec<(PathBuf, String)>,
) -> Vec<(PathBuf, Kind)> {
    let mut seen_dirs = HashSet::new();
    let mut found = Vec::new();
    let mut stack: Vec<PathBuf> = paths.to_vec();
    let kind_of = |path: &Path| {
        if crate::media::is_image(path) {
            Some(Kind::Image)
        } else if recordings && crate::media::is_audio(path) {
            Some(Kind::Recording)
        } else {
            None
        }
    };
    while let Some(dir) = stack.pop() {
        let meta = match std::fs::metadata(&dir) {
            Ok(m) => m,
            Err(e) => {
                failed.push((dir, e.to_string()));
                continue;
            }
        };
        if meta.is_file() {
            if crate::media::is_audio(&dir) && !recordings {
                failed.push((
                    dir,
                    "a recording: `crossmodal add` transcribes recordings into the library".into(),
                ));
            } else {
                let kind = kind_of(&dir).unwrap_or(Kind::Image);
                found.push((dir, kind));
            }
            continue;
        }
        let Ok(canonical) = dir.canonicalize() else { continue };
        if !seen_dirs.insert(canonical) {
            continue; // a symlink loop, or a folder reached twice
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                failed.push((dir, format!("folder not readable: {e}")));
                continue;
            }
        };
        let mut children: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        children.sort();
        for child in children.into_iter().rev() {
            match std::fs::metadata(&child) {
                Ok(m) if m.is_dir() => stack.push(child),
                Ok(_) => {
                    if let Some(kind) = kind_of(&child) {
                        found.push((child, kind));
                    }
                }
                Err(e) => failed.push((child, e.to_string())),
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.dedup_by(|a, b| a.0 == b.0);
    found
}

fn path_key(path: &Path) -> Vec<u8> {
    // Bytes, not text: file names need not be UTF-8.
    path.as_os_str().as_encoded_bytes().to_vec()
}

#[cfg(unix)]
fn key_path(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt as _;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
fn key_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

fn stamp(meta: &std::fs::Metadata) -> (i64, i64) {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    (i64::try_from(meta.len()).unwrap_or(i64::MAX), mtime)
}

fn to_blob(e: &Embedding) -> Vec<u8> {
    e.as_slice().iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_blob(b: &[u8]) -> Embedding {
    Embedding::normalised(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

impl Gallery {
    /// Opens (or creates) a gallery for vectors of `encoder`. A gallery made by another encoder
    /// is refused unless `reindex`, which empties it.
    pub fn open(path: &Path, encoder: &str, reindex: bool) -> Result<Self, GalleryError> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| GalleryError::Io { path: dir.display().to_string(), source })?;
        }
        let db = |source| GalleryError::Db { path: shown.clone(), source };
        let conn = Connection::open(path).map_err(db)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS images (
                 path BLOB PRIMARY KEY, size INTEGER NOT NULL, mtime INTEGER NOT NULL,
                 hash TEXT NOT NULL, vector BLOB NOT NULL, feature BLOB);
             CREATE INDEX IF NOT EXISTS images_hash ON images(hash);
             CREATE TABLE IF NOT EXISTS recordings (
                 id INTEGER PRIMARY KEY, path BLOB UNIQUE NOT NULL, size INTEGER NOT NULL,
                 mtime INTEGER NOT NULL, hash TEXT NOT NULL, duration REAL NOT NULL,
                 language TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS recordings_hash ON recordings(hash);
             CREATE TABLE IF NOT EXISTS segments (
                 recording INTEGER NOT NULL, idx INTEGER NOT NULL, start REAL NOT NULL,
                 end REAL NOT NULL, text TEXT NOT NULL, words TEXT NOT NULL,
                 PRIMARY KEY (recording, idx));
             CREATE TABLE IF NOT EXISTS moments (
                 recording INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL,
                 start REAL NOT NULL, end REAL NOT NULL, text TEXT NOT NULL, vector BLOB NOT NULL);
             CREATE INDEX IF NOT EXISTS moments_recording ON moments(recording);",
        )
        .map_err(db)?;
        // Galleries made before images kept their near-duplicate features get the column; their
        // images are encoded again by the next run.
        let has_feature: bool = conn
            .query_row("SELECT COUNT(*) FROM pragma_table_info('images') WHERE name = 'feature'", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(db)?
            > 0;
        if !has_feature {
            conn.execute_batch("ALTER TABLE images ADD COLUMN feature BLOB;").map_err(db)?;
        }
        let found: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'encoder'", [], |r| r.get(0))
            .optional()
            .map_err(db)?;
        match found {
            Some(f) if f != encoder && !reindex => {
                return Err(GalleryError::OtherEncoder { path: shown, found: f, wanted: encoder.into() });
            }
            Some(f) if f == encoder && !reindex => {}
            _ => {
                // Recordings are kept: their moments are in the sentence space, whatever the
                // image encoder.
                conn.execute_batch("BEGIN; DELETE FROM images; DELETE FROM meta WHERE key = 'encoder';")
                    .map_err(db)?;
                conn.execute("INSERT INTO meta (key, value) VALUES ('encoder', ?1)", [encoder])
                    .map_err(db)?;
                conn.execute_batch("COMMIT;").map_err(db)?;
            }
        }
        Ok(Self {
            conn,
            path: shown,
            encoder: encoder.to_owned(),
            thumbnails: path.with_extension("thumbs"),
            cancel: None,
        })
    }

    /// Opens an existing library for reading, as whichever encoder made it.
    pub fn open_existing(path: &Path) -> Result<Self, GalleryError> {
        let shown = path.display().to_string();
        if !path.is_file() {
            let source =
                std::io::Error::new(std::io::ErrorKind::NotFound, "no library here: add files first");
            return Err(GalleryError::Io { path: shown, source });
        }
        let encoder: Option<String> = Connection::open(path)
            .and_then(|c| {
                c.query_row("SELECT value FROM meta WHERE key = 'encoder'", [], |r| r.get(0)).optional()
            })
            .map_err(|source| GalleryError::Db { path: shown.clone(), source })?;
        Self::open(path, encoder.as_deref().unwrap_or_default(), false)
    }

    /// `index` stops at the next file once this flag is set (the batches stored so far stay).
    pub fn set_cancel(&mut self, flag: std::sync::Arc<std::sync::atomic::AtomicBool>) {
        self.cancel = Some(flag);
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> GalleryError + '_ {
        |source| GalleryError::Db { path: self.path.clone(), source }
    }

    /// The cached thumbnail of an image with this content hash.
    pub fn thumbnail_path(&self, hash: &str) -> PathBuf {
        self.thumbnails.join(hash.get(..2).unwrap_or("00")).join(format!("{hash}.png"))
    }

    /// The cached thumbnail of an indexed file, if it has one.
    pub fn thumbnail_of(&self, file: &Path) -> Result<Option<PathBuf>, GalleryError> {
        let hash: Option<String> = self
            .conn
            .query_row("SELECT hash FROM images WHERE path = ?1", [path_key(&canonical(file))], |r| r.get(0))
            .optional()
            .map_err(self.db())?;
        Ok(hash.map(|h| self.thumbnail_path(&h)).filter(|p| p.is_file()))
    }

    /// Writes a thumbnail once per content (renamed and copied files share it).
    fn write_thumbnail(&self, hash: &str, image: &image::RgbImage) -> Result<(), String> {
        let path = self.thumbnail_path(hash);
        if path.is_file() {
            return Ok(());
        }
        let (w, h) = image.dimensions();
        let scale = f64::from(THUMBNAIL_SIDE) / f64::from(w.max(h).max(1));
        let (tw, th) = if scale < 1.0 {
            (((f64::from(w) * scale).round() as u32).max(1), ((f64::from(h) * scale).round() as u32).max(1))
        } else {
            (w, h)
        };
        let small = image::imageops::thumbnail(image, tw, th);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        let tmp = path.with_extension("partial");
        small.save_with_format(&tmp, image::ImageFormat::Png).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &path).map_err(|e| e.to_string())
    }

    pub fn encoder(&self) -> &str {
        &self.encoder
    }

    pub fn len(&self) -> Result<usize, GalleryError> {
        let n: i64 =
            self.conn.query_row("SELECT COUNT(*) FROM images", [], |r| r.get(0)).map_err(self.db())?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    pub fn is_empty(&self) -> Result<bool, GalleryError> {
        Ok(self.len()? == 0)
    }

    /// Brings the library up to date with the files under `paths`: images always, recordings
    /// too when `encoders` hears (each transcribed, its moments embedded and stored in one
    /// transaction, so a killed run keeps whole recordings only). `progress(done, total)`
    /// follows the files.
    pub fn index(
        &mut self,
        paths: &[PathBuf],
        encoders: &mut dyn Encoders,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<IndexReport, GalleryError> {
        let hears = encoders.hears();
        let mut report = IndexReport::default();
        let found = find_media(paths, hears, &mut report.failed);
        let roots: Vec<PathBuf> = paths.iter().map(|d| canonical(d)).collect();
        let known = self.known(hears)?;
        let files: Vec<(PathBuf, Kind)> = found.into_iter().map(|(f, k)| (canonical(&f), k)).collect();
        let seen: HashSet<Vec<u8>> = files.iter().map(|(f, _)| path_key(f)).collect();
        // Entries under the indexed folders whose files are gone, by kind and hash (renames are
        // found among them).
        let mut vanished: HashMap<(Kind, String), Vec<u8>> = known
            .iter()
            .filter(|(k, _)| !seen.contains(*k) && roots.iter().any(|r| key_path(k).starts_with(r)))
            .map(|(k, v)| ((v.kind, v.hash.clone()), k.clone()))
            .collect();
        let total = files.len();
        let mut pending: Vec<Pending> = Vec::new();
        for (done, (file, kind)) in files.into_iter().enumerate() {
            if self.cancelled() {
                report.cancelled = true;
                break;
            }
            progress(done, total);
            let key = path_key(&file);
            let meta = match std::fs::metadata(&file) {
                Ok(m) => m,
                Err(e) => {
                    report.failed.push((file, e.to_string()));
                    continue;
                }
            };
            let (size, mtime) = stamp(&meta);
            let existing = known.get(&key).filter(|e| e.kind == kind);
            if existing.is_some_and(|e| e.size == size && e.mtime == mtime) {
                report.unchanged += 1;
                continue;
            }
            let hash = match std::fs::File::open(&file).and_then(crate::model_store::sha256_reader) {
                Ok(h) => h,
                Err(e) => {
                    report.failed.push((file, e.to_string()));
                    continue;
                }
            };
            if existing.is_none()
                && let Some(old) = vanished.remove(&(kind, hash.clone()))
            {
                let table = kind.table();
                self.conn
                    .execute(
                        &format!("UPDATE {table} SET path = ?1, size = ?2, mtime = ?3 WHERE path = ?4"),
                        params![key, size, mtime, old],
                    )
                    .map_err(self.db())?;
                report.renamed += 1;
                continue;
            }
            let existed = existing.is_some();
            match kind {
                Kind::Image => {
                    match load_image(&file) {
                        Ok(image) => {
                            pending.push(Pending { path: file, stamp: (size, mtime), hash, image, existed });
                        }
                        Err(why) => report.failed.push((file, why)),
                    }
                    if pending.len() >= BATCH {
                        self.store(&mut pending, encoders, &mut report)?;
                    }
                }
                Kind::Recording => {
                    let recording = Heard { path: file, stamp: (size, mtime), hash, existed };
                    self.store_recording(recording, encoders, &mut report)?;
                }
            }
        }
        self.store(&mut pending, encoders, &mut report)?;
        if report.cancelled {
            return Ok(report);
        }
        // What is left vanished for good.
        let tx = self.conn.unchecked_transaction().map_err(self.db())?;
        for ((kind, _), old) in &vanished {
            if *kind == Kind::Recording {
                tx.execute(
                    "DELETE FROM moments WHERE recording IN (SELECT id FROM recordings WHERE path = ?1)",
                    [old],
                )
                .map_err(self.db())?;
                tx.execute(
                    "DELETE FROM segments WHERE recording IN (SELECT id FROM recordings WHERE path = ?1)",
                    [old],
                )
                .map_err(self.db())?;
            }
            tx.execute(&format!("DELETE FROM {} WHERE path = ?1", kind.table()), [old]).map_err(self.db())?;
            report.removed += 1;
        }
        tx.commit().map_err(self.db())?;
        progress(total, total);
        Ok(report)
    }

    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// What the library holds now, by path: images, and recordings when they are looked at.
    fn known(&self, recordings: bool) -> Result<HashMap<Vec<u8>, Known>, GalleryError> {
        let mut known = HashMap::new();
        let kinds: &[Kind] = if recordings { &[Kind::Image, Kind::Recording] } else { &[Kind::Image] };
        for &kind in kinds {
            // An image without its features counts as changed, so that it is encoded again.
            let complete = match kind {
                Kind::Image => "feature IS NOT NULL",
                Kind::Recording => "1",
            };
            let mut stmt = self
                .conn
                .prepare(&format!(
                    "SELECT path, size, CASE WHEN {complete} THEN mtime ELSE -1 END, hash FROM {}",
                    kind.table()
                ))
                .map_err(self.db())?;
            let rows = stmt
                .query_map([], |r| {
                    let known = Known { kind, size: r.get(1)?, mtime: r.get(2)?, hash: r.get(3)? };
                    Ok((r.get::<_, Vec<u8>>(0)?, known))
                })
                .map_err(self.db())?;
            for row in rows {
                let (k, v) = row.map_err(self.db())?;
                known.insert(k, v);
            }
        }
        Ok(known)
    }

    /// Transcribes one recording and stores it with its segments and moments in one
    /// transaction (replacing what an older version of the file left).
    fn store_recording(
        &mut self,
        heard: Heard,
        encoders: &mut dyn Encoders,
        report: &mut IndexReport,
    ) -> Result<(), GalleryError> {
        let transcript = match encoders.transcribe(&heard.path) {
            Ok(t) => t,
            Err(_) if self.cancelled() => {
                report.cancelled = true;
                return Ok(());
            }
            Err(why) => {
                // The reason may name the file already; the report names it anyway.
                let why = why
                    .strip_prefix(&format!("{}: ", heard.path.display()))
                    .map_or(why.clone(), str::to_owned);
                report.failed.push((heard.path, why));
                return Ok(());
            }
        };
        let segments: Vec<&crate::speech::Segment> =
            transcript.segments.iter().filter(|s| !s.text.trim().is_empty()).collect();
        let windows = moments::windows(&segments);
        let texts: Vec<String> = windows.iter().map(|w| w.text.clone()).collect();
        let vectors = match encoders.texts(&texts) {
            Ok(v) if v.len() == texts.len() => v,
            Ok(_) => {
                report.failed.push((heard.path, "the text encoder returned too few vectors".into()));
                return Ok(());
            }
            Err(why) => {
                report.failed.push((heard.path, why));
                return Ok(());
            }
        };
        let key = path_key(&heard.path);
        let duration = segments.last().map_or(0.0, |s| s.end);
        let tx = self.conn.unchecked_transaction().map_err(self.db())?;
        let db = |source| GalleryError::Db { path: self.path.clone(), source };
        let old: Option<i64> = tx
            .query_row("SELECT id FROM recordings WHERE path = ?1", [&key], |r| r.get(0))
            .optional()
            .map_err(db)?;
        if let Some(id) = old {
            tx.execute("DELETE FROM moments WHERE recording = ?1", [id]).map_err(db)?;
            tx.execute("DELETE FROM segments WHERE recording = ?1", [id]).map_err(db)?;
            tx.execute("DELETE FROM recordings WHERE id = ?1", [id]).map_err(db)?;
        }
        tx.execute(
            "INSERT INTO recordings (path, size, mtime, hash, duration, language) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![key, heard.stamp.0, heard.stamp.1, heard.hash, duration, transcript.language],
        )
        .map_err(db)?;
        let id = tx.last_insert_rowid();
        for (i, s) in segments.iter().enumerate() {
            let words = serde_json::to_string(&s.words).unwrap_or_else(|_| "[]".into());
            tx.execute(
                "INSERT INTO segments (recording, idx, start, end, text, words) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, i64::try_from(i).unwrap_or(i64::MAX), s.start, s.end, s.text.trim(), words],
            )
            .map_err(db)?;
        }
        for (w, v) in windows.iter().zip(&vectors) {
            tx.execute(
                "INSERT INTO moments (recording, first, last, start, end, text, vector) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    id,
                    i64::try_from(w.first).unwrap_or(i64::MAX),
                    i64::try_from(w.last).unwrap_or(i64::MAX),
                    w.start,
                    w.end,
                    w.text,
                    to_blob(v)
                ],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        report.moments += windows.len();
        if heard.existed {
            report.updated += 1;
        } else {
            report.added += 1;
        }
        Ok(())
    }

    /// Encodes and writes one batch in one transaction.
    fn store(
        &mut self,
        pending: &mut Vec<Pending>,
        encoders: &mut dyn Encoders,
        report: &mut IndexReport,
    ) -> Result<(), GalleryError> {
        if pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(pending);
        let images: Vec<image::RgbImage> = batch.iter().map(|p| p.image.clone()).collect();
        let vectors = match encoders.images(&images) {
            Ok(v) => v,
            Err(why) => {
                report.failed.extend(batch.into_iter().map(|p| (p.path, why.clone())));
                return Ok(());
            }
        };
        let tx = self.conn.unchecked_transaction().map_err(self.db())?;
        for p in &batch {
            if let Err(why) = self.write_thumbnail(&p.hash, &p.image) {
                tracing::warn!("thumbnail of {}: {why}", p.path.display());
            }
        }
        for (p, (v, f)) in batch.into_iter().zip(vectors) {
            tx.execute(
                "INSERT OR REPLACE INTO images (path, size, mtime, hash, vector, feature) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![path_key(&p.path), p.stamp.0, p.stamp.1, p.hash, to_blob(&v), to_blob(&f)],
            )
            .map_err(self.db())?;
            if p.existed {
                report.updated += 1;
            } else {
                report.added += 1;
            }
        }
        tx.commit().map_err(self.db())?;
        Ok(())
    }

    /// Every stored (path, vector).
    pub fn vectors(&self) -> Result<Vec<(PathBuf, Embedding)>, GalleryError> {
        let mut stmt = self.conn.prepare("SELECT path, vector FROM images").map_err(self.db())?;
        let rows = stmt
            .query_map([], |r| Ok((key_path(&r.get::<_, Vec<u8>>(0)?), from_blob(&r.get::<_, Vec<u8>>(1)?))))
            .map_err(self.db())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.db())
    }

    /// The `top` images closest to `query`, best first.
    pub fn search(&self, query: &Embedding, top: usize) -> Result<Vec<Hit>, GalleryError> {
        let vectors = self.vectors()?;
        let index = VectorIndex::new(vectors.iter().map(|(_, v)| v.as_slice()));
        Ok(index
            .top(query, top)
            .into_iter()
            .map(|(i, score)| Hit { path: vectors[i].0.clone(), score })
            .collect())
    }
}

fn canonical(path: &Path) -> PathBuf {
    plain(path.canonicalize().unwrap_or_else(|_| path.to_owned()))
}

/// Windows' canonical paths are verbatim (`\\?\C:\…`): kept and shown as people write them
/// (`C:\…`) where that names the same file (a drive path shorter than Windows' 260 characters).
#[cfg(windows)]
fn plain(path: PathBuf) -> PathBuf {
    match path.to_str().and_then(|s| s.strip_prefix(r"\\?\")) {
        Some(rest)
            if rest.len() < 260
                && rest.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
                && rest.as_bytes().get(1..3) == Some(b":\\") =>
        {
            PathBuf::from(rest)
        }
        _ => path,
    }
}

#[cfg(not(windows))]
fn plain(path: PathBuf) -> PathBuf {
    path
}

/// Vectors in one contiguous block, for brute-force top-k. Each row is also kept as 8-bit codes
/// with a scale (a quarter of the bytes): a query scans the codes, which is what memory
/// bandwidth allows for 100 hours of moments and 100k images in a few milliseconds, then scores
/// the best candidates exactly.
#[derive(Debug, Default)]
pub struct VectorIndex {
    dim: usize,
    data: Vec<f32>,
    codes: Vec<i8>,
    scales: Vec<f32>,
}

/// Candidates scored exactly beyond the `k` asked for: the codes' scores are within about 0.002
/// of the exact ones, far less than the gap this many places make.
const RESCORED: usize = 32;

/// A vector as 8-bit codes and the scale that turns them back.
fn quantise(v: &[f32], codes: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    codes.extend(v.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8));
    scale
}

impl VectorIndex {
    /// Row `i` is the `i`-th vector. The first vector sets the dimension; a vector of another
    /// length (a damaged gallery) becomes a row of zeros, so rows still match their vectors.
    pub fn new<'a>(vectors: impl IntoIterator<Item = &'a [f32]>) -> Self {
        let mut index = Self::default();
        let mut first = true;
        let zeros: Vec<f32> = Vec::new();
        for v in vectors {
            if std::mem::take(&mut first) {
                index.dim = v.len();
            }
            let row: &[f32] = if v.len() == index.dim { v } else { &zeros };
            if row.is_empty() && index.dim > 0 {
                index.data.resize(index.data.len() + index.dim, 0.0);
                index.codes.resize(index.codes.len() + index.dim, 0);
                index.scales.push(1.0);
            } else {
                index.data.extend_from_slice(row);
                index.scales.push(quantise(row, &mut index.codes));
            }
        }
        index
    }

    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (row, score) of the `k` best rows, best first. The rows are split among the cores; each
    /// keeps its own best candidates by the codes, which are then scored exactly.
    pub fn top(&self, query: &Embedding, k: usize) -> Vec<(usize, f32)> {
        let q = query.as_slice();
        if self.dim == 0 || q.len() != self.dim || k == 0 {
            return Vec::new();
        }
        let mut q_codes = Vec::with_capacity(self.dim);
        let q_scale = quantise(q, &mut q_codes);
        let q_codes = &q_codes;
        let candidates = k.saturating_add(RESCORED);
        let rows = self.len();
        let threads = std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .min(rows.div_ceil(4096))
            .max(1);
        let per = rows.div_ceil(threads);
        let mut best: Vec<(usize, f32)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let start = t * per;
                    let end = (start + per).min(rows);
                    let block = &self.codes[start * self.dim..end * self.dim];
                    let scales = &self.scales[start..end];
                    scope.spawn(move || {
                        let mut scores: Vec<(usize, f32)> = block
                            .chunks_exact(self.dim)
                            .zip(scales)
                            .enumerate()
                            .map(|(i, (row, s))| (start + i, dot_codes(row, q_codes) as f32 * s * q_scale))
                            .collect();
                        keep_best(&mut scores, candidates);
                        scores
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
        });
        keep_best(&mut best, candidates);
        for (row, score) in &mut best {
            *score = dot(&self.data[*row * self.dim..(*row + 1) * self.dim], q);
        }
        best.sort_by(|a, b| b.1.total_cmp(&a.1));
        best.truncate(k);
        best
    }
}

fn keep_best(scores: &mut Vec<(usize, f32)>, k: usize) {
    if scores.len() > k {
        scores.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
        scores.truncate(k);
    }
}

/// A dot product in eight independent lanes, which the compiler turns into SIMD.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The dot product of two code rows, in sixteen lanes of 16-bit products summed in 32 bits
/// (the compiler's multiply-add of pairs).
fn dot_codes(a: &[i8], b: &[i8]) -> i32 {
    let mut lanes = [0i32; 16];
    let (ac, bc) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: i32 =
        ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| i32::from(*x) * i32::from(*y)).sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..16 {
            lanes[i] += i32::from(i16::from(x[i]) * i16::from(y[i]));
        }
    }
    lanes.iter().sum::<i32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_of_another_length_keep_the_rows_aligned() {
        let (a, b, c) = (vec![1.0, 0.0, 0.0], vec![0.5, 0.5], vec![0.0, 1.0, 0.0]);
        let index = VectorIndex::new([a.as_slice(), b.as_slice(), c.as_slice()]);
        assert_eq!(index.len(), 3);
        let top = index.top(&Embedding::normalised(vec![0.0, 1.0, 0.0]), 3);
        assert_eq!(top[0], (2, 1.0));
        assert!(top.iter().all(|(row, _)| *row < 3));
    }

    #[test]
    fn top_k_matches_a_full_sort() {
        let dim = 20;
        // Pseudo-random rows (xorshift), so that no two scores tie.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let vectors: Vec<Vec<f32>> = (0..10_000).map(|_| (0..dim).map(|_| next()).collect()).collect();
        let index = VectorIndex::new(vectors.iter().map(Vec::as_slice));
        let query = Embedding::normalised((0..dim).map(|j| (j as f32).sin()).collect());
        let mut all: Vec<(usize, f32)> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (i, v.iter().zip(query.as_slice()).map(|(a, b)| a * b).sum()))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top = index.top(&query, 7);
        assert_eq!(
            top.iter().map(|t| t.0).collect::<Vec<_>>(),
            all[..7].iter().map(|t| t.0).collect::<Vec<_>>()
        );
        assert!(index.top(&query, 0).is_empty());
        assert_eq!(index.top(&query, 20_000).len(), 10_000);
    }
}
