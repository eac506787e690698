//! The shared space: encoders that put text (and, through it, speech and images) into one
//! 384-d space of unit vectors, and what compares them.

pub mod clip;
pub mod conse;
pub mod depthwise;
pub mod image_lite;
pub mod images;
pub mod projection;
pub mod pth;
pub mod text;

use std::path::PathBuf;

pub use text::TextEncoder;

#[derive(Debug, thiserror::Error)]
pub enum SpaceError {
    #[error("{path}: {detail}")]
    Model { path: PathBuf, detail: String },
    #[error("encoding failed: {0}")]
    Encode(String),
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

/// A unit vector in the shared space.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// Scales `v` to unit length (a zero vector stays zero).
    pub fn normalised(mut v: Vec<f32>) -> Self {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            for x in &mut v {
                *x /= norm;
            }
        }
        Self(v)
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// Cosine similarity; both are unit vectors, so this is their dot product.
    pub fn cosine(&self, other: &Self) -> f32 {
        self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum()
    }
}
