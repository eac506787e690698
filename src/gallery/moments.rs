//! Spoken moments: a recording's segments are stored as they were transcribed, and embedded as
//! windows of one segment and of two neighbouring ones, so that something said across a segment
//! boundary is still found. A search keeps the best window of each stretch of a recording.

use std::path::PathBuf;

use rusqlite::params;

use super::{Gallery, GalleryError, VectorIndex, from_blob, key_path};
use crate::space::Embedding;
use crate::speech::{Segment, Word};

/// Neighbouring segments embedded together, at most.
pub const WINDOW: usize = 2;

/// Segments `first..=last` of a recording, as one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub first: usize,
    pub last: usize,
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// Every window of 1..=`WINDOW` neighbouring segments.
pub fn windows(segments: &[&Segment]) -> Vec<Window> {
    let mut out = Vec::new();
    for span in 1..=WINDOW {
        for first in 0..segments.len().saturating_sub(span - 1) {
            let last = first + span - 1;
            let text = segments[first..=last].iter().map(|s| s.text.trim()).collect::<Vec<_>>().join(" ");
            out.push(Window { first, last, start: segments[first].start, end: segments[last].end, text });
        }
    }
    out
}

/// A time in a recording as m:ss.s (h:mm:ss past an hour), as moments are shown.
pub fn clock(secs: f64) -> String {
    let tenths = (secs.max(0.0) * 10.0).round() as u64;
    let (h, m, s) = (tenths / 36_000, tenths / 600 % 60, tenths % 600);
    if h > 0 { format!("{h}:{m:02}:{:02}", s / 10) } else { format!("{m}:{:02}.{}", s / 10, s % 10) }
}

/// A stored moment (without its vector).
#[derive(Debug, Clone, PartialEq)]
pub struct Moment {
    pub recording: i64,
    pub path: PathBuf,
    pub first: usize,
    pub last: usize,
    pub start: f64,
    pub end: f64,
    pub text: String,
}

impl Moment {
    fn overlaps(&self, other: &Moment) -> bool {
        self.recording == other.recording && self.first <= other.last && other.first <= self.last
    }
}

/// What surrounds a moment in its recording: the segments just before and after, and the
/// moment's words with their times (when the recording was transcribed with them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    pub before: String,
    pub after: String,
    pub words: Vec<Word>,
}

impl Gallery {
    /// Recordings in the library.
    pub fn recordings_len(&self) -> Result<usize, GalleryError> {
        let n: i64 =
            self.conn.query_row("SELECT COUNT(*) FROM recordings", [], |r| r.get(0)).map_err(self.db())?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Moments of one segment in the library (each thing said once, however it is windowed).
    pub fn segments_len(&self) -> Result<usize, GalleryError> {
        let n: i64 =
            self.conn.query_row("SELECT COUNT(*) FROM segments", [], |r| r.get(0)).map_err(self.db())?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Every stored moment and its vector.
    pub fn moments(&self) -> Result<(Vec<Moment>, Vec<Embedding>), GalleryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT m.recording, r.path, m.first, m.last, m.start, m.end, m.text, m.vector
                 FROM moments m JOIN recordings r ON r.id = m.recording ORDER BY m.rowid",
            )
            .map_err(self.db())?;
        let rows = stmt
            .query_map([], |r| {
                let moment = Moment {
                    recording: r.get(0)?,
                    path: key_path(&r.get::<_, Vec<u8>>(1)?),
                    first: usize::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    last: usize::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                    start: r.get(4)?,
                    end: r.get(5)?,
                    text: r.get(6)?,
                };
                Ok((moment, from_blob(&r.get::<_, Vec<u8>>(7)?)))
            })
            .map_err(self.db())?;
        let mut moments = Vec::new();
        let mut vectors = Vec::new();
        for row in rows {
            let (m, v) = row.map_err(self.db())?;
            moments.push(m);
            vectors.push(v);
        }
        Ok((moments, vectors))
    }

    /// The segments around a moment, and its words.
    pub fn context(&self, moment: &Moment) -> Result<Context, GalleryError> {
        let text_at = |idx: i64| -> Result<String, GalleryError> {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT text FROM segments WHERE recording = ?1 AND idx = ?2")
                .map_err(self.db())?;
            let mut rows = stmt.query(params![moment.recording, idx]).map_err(self.db())?;
            Ok(match rows.next().map_err(self.db())? {
                Some(row) => row.get(0).map_err(self.db())?,
                None => String::new(),
            })
        };
        let (first, last) =
            (i64::try_from(moment.first).unwrap_or(0), i64::try_from(moment.last).unwrap_or(0));
        let before = if first > 0 { text_at(first - 1)? } else { String::new() };
        let after = text_at(last + 1)?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT words FROM segments WHERE recording = ?1 AND idx BETWEEN ?2 AND ?3 ORDER BY idx",
            )
            .map_err(self.db())?;
        let rows = stmt
            .query_map(params![moment.recording, first, last], |r| r.get::<_, String>(0))
            .map_err(self.db())?;
        let mut words = Vec::new();
        for row in rows {
            // Words that cannot be read back are only a display aid: the moment stands without.
            words.extend(serde_json::from_str::<Vec<Word>>(&row.map_err(self.db())?).unwrap_or_default());
        }
        Ok(Context { before, after, words })
    }
}

/// The library's vectors in memory, for queries one after another.
#[derive(Debug, Default)]
pub struct Library {
    pub images: Vec<PathBuf>,
    image_index: VectorIndex,
    pub moments: Vec<Moment>,
    moment_index: VectorIndex,
}

impl Library {
    pub fn load(gallery: &Gallery) -> Result<Self, GalleryError> {
        let (images, vectors): (Vec<PathBuf>, Vec<Embedding>) = gallery.vectors()?.into_iter().unzip();
        let (moments, moment_vectors) = gallery.moments()?;
        Ok(Self::new(images, &vectors, moments, &moment_vectors))
    }

    pub fn new(
        images: Vec<PathBuf>,
        image_vectors: &[Embedding],
        moments: Vec<Moment>,
        moment_vectors: &[Embedding],
    ) -> Self {
        Self {
            images,
            image_index: VectorIndex::new(image_vectors.iter().map(Embedding::as_slice)),
            moments,
            moment_index: VectorIndex::new(moment_vectors.iter().map(Embedding::as_slice)),
        }
    }

    /// (image, cosine) of the `k` closest images, best first.
    pub fn top_images(&self, query: &Embedding, k: usize) -> Vec<(usize, f32)> {
        self.image_index.top(query, k)
    }

    /// (moment, cosine) of the `k` closest moments, best first, no two overlapping: a window
    /// that shares a segment with a better one is left out.
    pub fn top_moments(&self, query: &Embedding, k: usize) -> Vec<(usize, f32)> {
        let mut asked = k.saturating_mul(3).max(8);
        loop {
            let candidates = self.moment_index.top(query, asked);
            let mut kept: Vec<(usize, f32)> = Vec::new();
            for (i, score) in &candidates {
                if kept.len() == k {
                    break;
                }
                if !kept.iter().any(|(j, _)| self.moments[*j].overlaps(&self.moments[*i])) {
                    kept.push((*i, *score));
                }
            }
            if kept.len() == k || candidates.len() < asked {
                return kept;
            }
            asked = asked.saturating_mul(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moment(recording: i64, first: usize, last: usize) -> Moment {
        Moment { recording, path: PathBuf::new(), first, last, start: 0.0, end: 0.0, text: String::new() }
    }

    #[test]
    fn windows_cover_each_segment_and_each_neighbouring_pair() {
        let segs =
            [Segment::new(0.0, 2.0, " one"), Segment::new(2.0, 4.0, "two "), Segment::new(4.0, 5.5, "three")];
        let refs: Vec<&Segment> = segs.iter().collect();
        let w = windows(&refs);
        let spans: Vec<(usize, usize)> = w.iter().map(|w| (w.first, w.last)).collect();
        assert_eq!(spans, [(0, 0), (1, 1), (2, 2), (0, 1), (1, 2)]);
        assert_eq!(w[4].text, "two three");
        assert!((w[4].start - 2.0).abs() < 1e-9 && (w[4].end - 5.5).abs() < 1e-9);
        assert!(windows(&[]).is_empty());
        assert_eq!(windows(&refs[..1]).len(), 1);
    }

    #[test]
    fn overlapping_windows_give_way_to_the_better_one() {
        // Recording 1: windows (0,0), (0,1), (1,1); recording 2: (0,0).
        let moments = vec![moment(1, 0, 0), moment(1, 0, 1), moment(1, 1, 1), moment(2, 0, 0)];
        let v = |x: f32, y: f32| Embedding::normalised(vec![x, y]);
        let vectors = [v(0.9, 0.1), v(1.0, 0.0), v(0.2, 1.0), v(0.7, 0.7)];
        let library = Library::new(Vec::new(), &[], moments, &vectors);
        let top = library.top_moments(&v(1.0, 0.0), 3);
        let rows: Vec<usize> = top.iter().map(|t| t.0).collect();
        // The pair wins; both single segments overlap it; recording 2 comes next.
        assert_eq!(rows, [1, 3]);
    }
}
