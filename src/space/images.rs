//! The space images are searched in: CLIP's own image–text space when its weights are installed,
//! else the shared sentence space through the lite encoder (EfficientNet-Lite0 + ConSE). Built
//! from the models the engine loaded; cloning it shares them.

use std::sync::Arc;

use super::clip::ClipEncoder;
use super::conse::LiteImageEncoder;
use super::{Embedding, SpaceError, TextEncoder};

/// Which image encoder to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EncoderChoice {
    /// CLIP when installed, else the lite encoder.
    #[default]
    Auto,
    Lite,
    Clip,
}

#[derive(Clone)]
pub enum ImageSpace {
    Lite { text: Arc<TextEncoder>, lite: Arc<LiteImageEncoder> },
    Clip(Arc<ClipEncoder>),
}

impl std::fmt::Debug for ImageSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id())
    }
}

impl ImageSpace {
    /// Names the vectors, so that a gallery made with another encoder is noticed.
    pub fn id(&self) -> String {
        match self {
            Self::Lite { lite, .. } => {
                let s = lite.settings();
                format!("efficientnet-lite0+conse(top {}, \"{}\")+minilm", s.top, s.prompt)
            }
            Self::Clip(_) => crate::model_store::catalogue::CLIP.to_owned(),
        }
    }

    pub fn embed_texts<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Embedding>, SpaceError> {
        match self {
            Self::Lite { text, .. } => text.embed(texts),
            Self::Clip(clip) => clip.embed_texts(texts),
        }
    }

    pub fn embed_text(&self, text: &str) -> Result<Embedding, SpaceError> {
        self.embed_texts(&[text])?.pop().ok_or_else(|| SpaceError::Encode("no embedding came back".into()))
    }

    pub fn embed_images(&self, images: &[image::RgbImage]) -> Result<Vec<Embedding>, SpaceError> {
        match self {
            Self::Lite { lite, .. } => lite.embed(images),
            Self::Clip(clip) => clip.embed_images(images),
        }
    }

    /// Each image's vector in this space and a vector that tells near-duplicates apart from
    /// photographs of the same things: the lite network's own features, or CLIP's image vector.
    pub fn embed_images_with_features(
        &self,
        images: &[image::RgbImage],
    ) -> Result<Vec<(Embedding, Embedding)>, SpaceError> {
        match self {
            Self::Lite { lite, .. } => lite.embed_with_features(images),
            Self::Clip(clip) => Ok(clip.embed_images(images)?.into_iter().map(|e| (e.clone(), e)).collect()),
        }
    }

    /// How sharply caption cosines are turned into probabilities: CLIP's own logit scale (100),
    /// or, in the sentence space, 20 (its cosines span about 0.1–0.7; a 0.1 lead is 7:1 odds).
    pub fn caption_scale(&self) -> f32 {
        match self {
            Self::Lite { .. } => 20.0,
            Self::Clip(_) => 100.0,
        }
    }
}
