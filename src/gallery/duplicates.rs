//! Near-duplicate images: the same photograph re-encoded, resized or cropped. Each image has a
//! second vector beside its search vector, one that tells two photographs of the same things
//! apart (the lite network's own features, or CLIP's image vector); images whose such vectors
//! are closer than a threshold are grouped.

use std::path::PathBuf;

use super::{Gallery, GalleryError, from_blob, key_path};
use crate::space::Embedding;

/// Two images are near-duplicates at this cosine of their features or above: chosen by
/// `cargo bench --bench library` on the public photographs and their re-encoded, resized and
/// cropped copies (the threshold is tuned on the data it is reported on).
pub const THRESHOLD: f32 = 0.53;

/// Near-duplicate groups of a library.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Duplicates {
    /// Each group's images, best-known order (by path).
    pub groups: Vec<Vec<PathBuf>>,
    /// Images compared.
    pub images: usize,
    /// Images stored without features (added by an older version; `add` again fills them in).
    pub without_features: usize,
}

impl Gallery {
    /// The near-duplicate groups among the library's images at `threshold`.
    pub fn duplicates(&self, threshold: f32) -> Result<Duplicates, GalleryError> {
        let all = self.features()?;
        let with: Vec<(&PathBuf, &Embedding)> =
            all.iter().filter_map(|(p, f)| f.as_ref().map(|f| (p, f))).collect();
        let vectors: Vec<&Embedding> = with.iter().map(|(_, f)| *f).collect();
        let groups = groups(&vectors, threshold)
            .into_iter()
            .map(|g| g.into_iter().map(|i| with[i].0.clone()).collect())
            .collect();
        Ok(Duplicates { groups, images: with.len(), without_features: all.len() - with.len() })
    }

    /// Every image with its duplicate-finding features; images stored before the library kept
    /// them have none (the next `add` fills them in).
    pub fn features(&self) -> Result<Vec<(PathBuf, Option<Embedding>)>, GalleryError> {
        let mut stmt =
            self.conn.prepare("SELECT path, feature FROM images ORDER BY path").map_err(self.db())?;
        let rows = stmt
            .query_map([], |r| {
                let feature: Option<Vec<u8>> = r.get(1)?;
                Ok((
                    key_path(&r.get::<_, Vec<u8>>(0)?),
                    feature.filter(|f| !f.is_empty()).map(|f| from_blob(&f)),
                ))
            })
            .map_err(self.db())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.db())
    }
}

/// Groups of two or more items whose vectors are at `threshold` or closer, linked through any
/// member (single linkage); each group in item order, the groups by their first item. Every
/// pair is compared once: a few seconds for ten thousand images.
pub fn groups(vectors: &[&Embedding], threshold: f32) -> Vec<Vec<usize>> {
    let n = vectors.len();
    let mut parent: Vec<usize> = (0..n).collect();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(n.max(1));
    // Rows are dealt out in turns so that each thread gets long and short rows alike.
    let close: Vec<(usize, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut pairs = Vec::new();
                    for i in (t..n).step_by(threads) {
                        for j in i + 1..n {
                            if vectors[i].cosine(vectors[j]) >= threshold {
                                pairs.push((i, j));
                            }
                        }
                    }
                    pairs
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    for (i, j) in close {
        let (a, b) = (root(&mut parent, i), root(&mut parent, j));
        if a != b {
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut by_root: std::collections::BTreeMap<usize, Vec<usize>> = std::collections::BTreeMap::new();
    for i in 0..n {
        let r = root(&mut parent, i);
        by_root.entry(r).or_default().push(i);
    }
    by_root.into_values().filter(|g| g.len() > 1).collect()
}

/// The representative of `i`'s set (union–find, paths halved on the way).
fn root(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_link_through_any_member() {
        let v = |x: f32, y: f32, z: f32| Embedding::normalised(vec![x, y, z]);
        // 0 and 2 are close, 2 and 3 are close (so 0, 2, 3 are one group); 1 and 4 stand alone.
        let items =
            [v(1.0, 0.0, 0.0), v(0.0, 1.0, 0.0), v(0.95, 0.3, 0.0), v(0.85, 0.5, 0.0), v(0.0, 0.0, 1.0)];
        let refs: Vec<&Embedding> = items.iter().collect();
        assert_eq!(groups(&refs, 0.94), [vec![0, 2, 3]]);
        assert!(groups(&refs, 0.999).is_empty());
        assert!(groups(&[], 0.5).is_empty());
    }
}
