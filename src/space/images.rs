//! The space images are searched in: CLIP's own image–text space when its weights are installed,
//! else the shared sentence space through the lite encoder (EfficientNet-Lite0 + ConSE).

use super::clip::ClipEncoder;
use super::conse::{ConseSettings, LiteImageEncoder};
use super::image_lite::LiteNet;
use super::{Embedding, SpaceError, TextEncoder};
use crate::model_store::{self, ModelStore, StoreError};

/// Which image encoder to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EncoderChoice {
    /// CLIP when installed, else the lite encoder.
    #[default]
    Auto,
    Lite,
    Clip,
}

pub enum ImageSpace {
    Lite { text: TextEncoder, lite: LiteImageEncoder },
    Clip(ClipEncoder),
}

impl std::fmt::Debug for ImageSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageSpaceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Space(#[from] SpaceError),
}

impl ImageSpace {
    pub fn load(store: &ModelStore, choice: EncoderChoice) -> Result<Self, ImageSpaceError> {
        let device = candle_core::Device::Cpu;
        let clip = model_store::spec("clip-vit-b32")?;
        let use_clip = match choice {
            EncoderChoice::Clip => true,
            EncoderChoice::Lite => false,
            EncoderChoice::Auto => store.is_installed(clip),
        };
        if use_clip {
            store.open_checked(clip)?;
            return Ok(Self::Clip(ClipEncoder::load(&store.model_dir(clip), &device)?));
        }
        let minilm = model_store::spec("minilm")?;
        store.open_checked(minilm)?;
        let text = TextEncoder::load(&store.model_dir(minilm), &device)?;
        let lite = model_store::spec("efficientnet-lite0")?;
        let net = LiteNet::load(&store.open_checked(lite)?, &device)?;
        let lite = LiteImageEncoder::new(net, &text, ConseSettings::default())?;
        Ok(Self::Lite { text, lite })
    }

    /// Names the vectors, so that a gallery made with another encoder is noticed.
    pub fn id(&self) -> String {
        match self {
            Self::Lite { lite, .. } => {
                let s = lite.settings();
                format!("efficientnet-lite0+conse(top {}, \"{}\")+minilm", s.top, s.prompt)
            }
            Self::Clip(_) => "clip-vit-b32".to_owned(),
        }
    }

    pub fn embed_texts<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Embedding>, SpaceError> {
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

    /// How sharply caption cosines are turned into probabilities: CLIP's own logit scale (100),
    /// or, in the sentence space, 20 (its cosines span about 0.1–0.7; a 0.1 lead is 7:1 odds).
    pub fn caption_scale(&self) -> f32 {
        match self {
            Self::Lite { .. } => 20.0,
            Self::Clip(_) => 100.0,
        }
    }
}
