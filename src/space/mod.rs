//! The shared space: encoders that put text (and, through it, speech and images) into one
//! 384-d space of unit vectors, and what compares them.

pub mod bert;
pub mod clip;
pub mod conse;
pub mod depthwise;
pub mod image_lite;
pub mod images;
pub mod projection;
pub mod pth;
pub mod text;

use std::path::PathBuf;

use candle_core::Device;

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

/// Which code runs the steps of an encoder between its matrix products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// This crate's fused loops over CPU memory, read in place: the image encoder's depthwise
    /// convolution and bias + ReLU6 (`depthwise`), the text encoder's attention, bias + GELU and
    /// bias + residual + layer norm (`bert`).
    Direct,
    /// candle's own ops (a grouped `conv2d`, broadcast add, softmax, layer norm): what runs on a
    /// GPU, where the tensors stay on the device between layers.
    Candle,
}

/// The kernels for tensors on `device`: the direct loops read CPU memory, so only the CPU gets
/// them; any other device gets candle's ops, which never leave it.
pub fn kernels_for(device: &Device) -> Kernels {
    if device.is_cpu() { Kernels::Direct } else { Kernels::Candle }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_gets_the_direct_kernels() {
        assert_eq!(kernels_for(&Device::Cpu), Kernels::Direct);
    }

    /// Every other device candle can make here gets candle's ops (a GPU build on a machine with
    /// its GPU; elsewhere there is no such device to make).
    #[test]
    fn a_gpu_gets_candles_ops() {
        let gpus = [Device::new_cuda(0), Device::new_metal(0)];
        for device in gpus.into_iter().flatten() {
            assert!(!device.is_cpu());
            assert_eq!(kernels_for(&device), Kernels::Candle, "{device:?}");
        }
    }
}
