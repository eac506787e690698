//! One list of images and spoken moments, ordered by relevance. The two kinds' cosines are not
//! comparable as they are (an image's vector is a mixture of class-name embeddings, a moment's
//! is a sentence's), so each kind's cosine is turned into the probability that the item is what
//! was asked for, with a logistic curve per kind fitted on the public set
//! (`cargo bench --bench library` fits and reports it).

/// Which kinds a search returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SearchKind {
    #[default]
    All,
    Image,
    Speech,
}

/// `relevance(cosine) = 1 / (1 + e^-(scale·cosine + offset))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Platt {
    pub scale: f32,
    pub offset: f32,
}

impl Platt {
    pub fn relevance(self, cosine: f32) -> f32 {
        1.0 / (1.0 + (-(self.scale * cosine + self.offset)).exp())
    }
}

/// A calibration for each kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    pub image: Platt,
    pub speech: Platt,
}

/// Fitted by `cargo bench --bench library` on the public set (its images and recordings, the
/// manifest's image queries and the bench's spoken-moment queries): tuned on the data it is
/// reported on.
const LITE: Calibration = Calibration {
    image: Platt { scale: 17.97, offset: -7.10 },
    speech: Platt { scale: 14.37, offset: -7.75 },
};

/// The calibration for images made by this encoder (the moments' side is the sentence space
/// whatever the image encoder); `None` where none has been fitted (CLIP: its weights are not
/// on the machines it was fitted on).
pub fn calibration(image_encoder: &str) -> Option<Calibration> {
    image_encoder.starts_with("efficientnet-lite0+conse").then_some(LITE)
}

/// The two best-first lists as one of at most `top`: by score when the scores are calibrated,
/// else taken in turns (the best image, the best moment, …) so that neither kind drowns the other.
pub fn merge<T>(images: Vec<(T, f32)>, moments: Vec<(T, f32)>, calibrated: bool, top: usize) -> Vec<T> {
    let mut out: Vec<(T, f32)> = Vec::with_capacity(images.len() + moments.len());
    if calibrated {
        out.extend(images);
        out.extend(moments);
        // Stable: ties keep images first.
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
    } else {
        let (mut a, mut b) = (images.into_iter(), moments.into_iter());
        loop {
            match (a.next(), b.next()) {
                (None, None) => break,
                (x, y) => out.extend(x.into_iter().chain(y)),
            }
        }
    }
    out.into_iter().take(top).map(|(t, _)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibrated_lists_merge_by_score_and_others_by_turns() {
        let images = vec![("i1", 0.9), ("i2", 0.2)];
        let moments = vec![("m1", 0.5), ("m2", 0.4), ("m3", 0.3)];
        assert_eq!(merge(images.clone(), moments.clone(), true, 4), ["i1", "m1", "m2", "m3"]);
        assert_eq!(merge(images, moments, false, 4), ["i1", "m1", "i2", "m2"]);
        assert!(merge::<&str>(Vec::new(), Vec::new(), true, 3).is_empty());
    }

    #[test]
    fn relevance_rises_with_the_cosine() {
        let p = Platt { scale: 10.0, offset: -5.0 };
        assert!((p.relevance(0.5) - 0.5).abs() < 1e-6);
        assert!(p.relevance(0.2) < p.relevance(0.6));
        assert!(calibration("efficientnet-lite0+conse(top 5, \"a photo of\")+minilm").is_some());
        assert!(calibration("clip-vit-b32").is_none());
    }
}
