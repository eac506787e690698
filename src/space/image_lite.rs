//! The lite image encoder: EfficientNet-Lite0 (ImageNet, 1000 classes) written with candle and
//! read straight from the store's legacy `.pth`. B0's block layout without squeeze-excitation,
//! ReLU6 throughout, BatchNorm folded into the convolutions at load, TensorFlow "same" padding,
//! depthwise layers and the bias and ReLU6 passes on the CPU through `depthwise` (`kernels_for`).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{D, DType, Device, Tensor};

use super::SpaceError;
use super::depthwise::{Activation, Padding, depthwise_conv2d, over_planes, same_padding, with_values};
pub use super::{Kernels, kernels_for};

/// Input side in pixels; images are resized so the shorter side is `RESIZE`, then centre-cropped.
pub const INPUT: usize = 224;
pub const RESIZE: usize = 256;
pub const CLASSES: usize = 1000;
/// BatchNorm epsilon of the original TensorFlow weights.
const BN_EPS: f64 = 1e-3;

/// (repeats, kernel, stride, expand, in, out) per stage, from docs/MODELS.md.
const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

/// A convolution with its BatchNorm folded in: y = conv(x, w) + b.
#[derive(Debug)]
struct Conv {
    weight: Tensor,
    bias: Tensor,
    /// The bias on the host, for the fused bias + ReLU6 pass on the CPU.
    bias_host: Vec<f32>,
    kernel: usize,
    stride: usize,
    depthwise: bool,
    relu6: bool,
}

impl Conv {
    /// The convolution, bias and ReLU6 through candle's ops: what runs on a GPU.
    fn forward(&self, x: &Tensor) -> Result<Tensor, SpaceError> {
        let y = self.convolve(x)?;
        let y = y.broadcast_add(&self.bias.reshape((1, (), 1, 1))?)?;
        Ok(if self.relu6 { y.clamp(0f32, 6f32)? } else { y })
    }

    /// The convolution alone, through candle's ops (a 1×1 convolution as a matrix product).
    #[allow(clippy::many_single_char_names)] // n, c, h, w: the shapes' own names
    fn convolve(&self, x: &Tensor) -> Result<Tensor, SpaceError> {
        let (n, c, h, w) = x.dims4()?;
        if self.kernel == 1 && self.stride == 1 {
            // A 1×1 convolution is a matrix product over the channels.
            let out = self.weight.dim(0)?;
            let flat = x.reshape((n, c, h * w))?;
            let wm = self.weight.reshape((out, c))?;
            return Ok(wm.broadcast_matmul(&flat)?.reshape((n, out, h, w))?);
        }
        let (top, left, bottom, right) = self.padding(h, w);
        let padded = x.pad_with_zeros(2, top, bottom)?.pad_with_zeros(3, left, right)?;
        let groups = if self.depthwise { c } else { 1 };
        Ok(padded.conv2d(&self.weight, 0, self.stride, 1, groups)?)
    }

    /// Its bias and ReLU6, for a pass of the direct kernels to apply.
    fn activation(&self) -> Activation<'_> {
        Activation { bias: Some(&self.bias_host), relu6: self.relu6 }
    }

    /// The depthwise convolution through the direct loop, with `before` (the expanding
    /// convolution's bias and ReLU6, not yet applied to `x`) applied as it reads.
    fn depthwise_direct(&self, x: &Tensor, before: Activation) -> Result<Tensor, SpaceError> {
        let (_, _, h, w) = x.dims4()?;
        let pad = self.padding(h, w);
        Ok(depthwise_conv2d(x, &self.weight, self.stride, pad, before, self.activation())?)
    }

    /// TensorFlow's "same" padding of an `h` × `w` input: (top, left, bottom, right).
    fn padding(&self, h: usize, w: usize) -> Padding {
        let (top, bottom) = same_padding(h, self.kernel, self.stride);
        let (left, right) = same_padding(w, self.kernel, self.stride);
        (top, left, bottom, right)
    }
}

/// `y` + bias per channel, then ReLU6 when asked, then + `residual` when given: one pass over the
/// planes, split among the cores (candle's broadcast add, clamp and add make one pass each).
#[allow(clippy::many_single_char_names)] // n, c, h, w: the shapes' own names
fn activate(y: &Tensor, act: Activation, residual: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let (n, c, h, w) = y.dims4()?;
    let plane = h * w;
    let run = |input: &[f32], residual: Option<&[f32]>| {
        let mut out = vec![0f32; input.len()];
        over_planes(input, &mut out, n * c, plane, plane, |first, src, dst| {
            dst.copy_from_slice(src);
            for (i, d) in dst.chunks_exact_mut(plane).enumerate() {
                act.apply((first + i) % c, d);
                if let Some(r) = residual {
                    let r = &r[(first + i) * plane..(first + i + 1) * plane];
                    for (o, x) in d.iter_mut().zip(r) {
                        *o += x;
                    }
                }
            }
        });
        Tensor::from_vec(out, (n, c, h, w), y.device())
    };
    with_values(y, |input| match residual {
        Some(r) if r.dims() == y.dims() => with_values(r, |r| run(input, Some(r))),
        Some(r) => candle_core::bail!("residual {:?} does not fit {:?}", r.dims(), y.dims()),
        None => run(input, None),
    })
}

/// The mean over each plane of `y` after `act`: the head's bias and ReLU6 and the global average
/// pool in one pass, [N, C, H, W] → [N, C].
#[allow(clippy::many_single_char_names)] // n, c, h, w: the shapes' own names
fn activate_and_pool(y: &Tensor, act: Activation) -> candle_core::Result<Tensor> {
    let (n, c, h, w) = y.dims4()?;
    let plane = h * w;
    with_values(y, |input| {
        let mut means = vec![0f32; n * c];
        over_planes(input, &mut means, n * c, plane, 1, |first, src, dst| {
            let mut buffer = vec![0f32; plane];
            for (i, (s, m)) in src.chunks_exact(plane).zip(dst.iter_mut()).enumerate() {
                buffer.copy_from_slice(s);
                act.apply((first + i) % c, &mut buffer);
                #[allow(clippy::cast_precision_loss)] // a plane has at most 224² values
                let mean = buffer.iter().sum::<f32>() / plane as f32;
                *m = mean;
            }
        });
        Tensor::from_vec(means, (n, c), y.device())
    })
}

#[derive(Debug)]
struct Block {
    expand: Option<Conv>,
    depthwise: Conv,
    project: Conv,
    residual: bool,
}

/// EfficientNet-Lite0 with its weights.
#[derive(Debug)]
pub struct LiteNet {
    stem: Conv,
    blocks: Vec<Block>,
    head: Conv,
    /// [1000, 1280] and [1000].
    fc_weight: Tensor,
    fc_bias: Tensor,
    device: Device,
}

struct Weights {
    tensors: HashMap<String, Tensor>,
    path: String,
}

impl Weights {
    fn get(&self, name: &str) -> Result<&Tensor, SpaceError> {
        self.tensors.get(name).ok_or_else(|| SpaceError::Model {
            path: self.path.clone().into(),
            detail: format!("no tensor {name}: not an EfficientNet-Lite0 state dict"),
        })
    }

    /// conv `{conv}.weight` with BatchNorm `{bn}.*` folded in.
    fn conv(
        &self,
        conv: &str,
        bn: &str,
        stride: usize,
        depthwise: bool,
        relu6: bool,
    ) -> Result<Conv, SpaceError> {
        let w = self.get(&format!("{conv}.weight"))?.to_dtype(DType::F32)?;
        let gamma = self.get(&format!("{bn}.weight"))?.to_dtype(DType::F32)?;
        let beta = self.get(&format!("{bn}.bias"))?.to_dtype(DType::F32)?;
        let mean = self.get(&format!("{bn}.running_mean"))?.to_dtype(DType::F32)?;
        let var = self.get(&format!("{bn}.running_var"))?.to_dtype(DType::F32)?;
        let scale = gamma.broadcast_div(&(var + BN_EPS)?.sqrt()?)?;
        let weight = w.broadcast_mul(&scale.reshape(((), 1, 1, 1))?)?.contiguous()?;
        let bias = (beta - mean.mul(&scale)?)?;
        let bias_host = bias.to_device(&Device::Cpu)?.to_vec1()?;
        let kernel = weight.dim(3)?;
        Ok(Conv { weight, bias, bias_host, kernel, stride, depthwise, relu6 })
    }
}

impl LiteNet {
    /// Loads the `.pth` state dict (legacy PyTorch format) onto `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Self, SpaceError> {
        let shown = path.display().to_string();
        let tensors = super::pth::read_legacy(path)
            .map_err(|e| SpaceError::Model { path: path.to_owned(), detail: e.to_string() })?;
        let tensors = tensors
            .into_iter()
            .map(|(name, t)| t.to_device(device).map(|t| (name, t)))
            .collect::<Result<HashMap<_, _>, _>>()?;
        let weights = Weights { tensors, path: shown };
        let stem = weights.conv("_conv_stem", "_bn0", 2, false, true)?;
        let mut blocks = Vec::new();
        for (repeats, _kernel, stride, expand, input, output) in STAGES {
            for r in 0..repeats {
                let i = blocks.len();
                let p = format!("_blocks.{i}");
                let (stride, input) = if r == 0 { (stride, input) } else { (1, output) };
                let expand = (expand != 1)
                    .then(|| weights.conv(&format!("{p}._expand_conv"), &format!("{p}._bn0"), 1, false, true))
                    .transpose()?;
                let depthwise = weights.conv(
                    &format!("{p}._depthwise_conv"),
                    &format!("{p}._bn1"),
                    stride,
                    true,
                    true,
                )?;
                let project =
                    weights.conv(&format!("{p}._project_conv"), &format!("{p}._bn2"), 1, false, false)?;
                blocks.push(Block { expand, depthwise, project, residual: stride == 1 && input == output });
            }
        }
        let head = weights.conv("_conv_head", "_bn1", 1, false, true)?;
        let fc_weight = weights.get("_fc.weight")?.to_dtype(DType::F32)?.contiguous()?;
        let fc_bias = weights.get("_fc.bias")?.to_dtype(DType::F32)?;
        if fc_weight.dims() != [CLASSES, 1280] {
            return Err(SpaceError::Model {
                path: path.to_owned(),
                detail: format!("classifier is {:?}, expected [1000, 1280]", fc_weight.dims()),
            });
        }
        Ok(Self { stem, blocks, head, fc_weight, fc_bias, device: device.clone() })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Logits [N, 1000] for preprocessed images [N, 3, 224, 224].
    pub fn logits(&self, images: &Tensor) -> Result<Tensor, SpaceError> {
        self.classify(&self.features(images)?)
    }

    /// Logits [N, 1000] from pooled features [N, 1280].
    pub fn classify(&self, features: &Tensor) -> Result<Tensor, SpaceError> {
        Ok(features.matmul(&self.fc_weight.t()?)?.broadcast_add(&self.fc_bias)?)
    }

    /// The network's own picture of each image: its last layer before the classifier, averaged
    /// over the image, [N, 1280], for preprocessed images [N, 3, 224, 224].
    pub fn features(&self, images: &Tensor) -> Result<Tensor, SpaceError> {
        self.features_with(images, kernels_for(&self.device))
    }

    /// `features` through the given kernels: `kernels_for` picks them by device; a test runs
    /// candle's (the GPU's) on the CPU too, and they must agree with the direct ones.
    pub fn features_with(&self, images: &Tensor, kernels: Kernels) -> Result<Tensor, SpaceError> {
        let images = images.to_device(&self.device)?;
        match kernels {
            Kernels::Candle => self.features_candle(&images),
            Kernels::Direct => self.features_direct(&images),
        }
    }

    fn features_candle(&self, images: &Tensor) -> Result<Tensor, SpaceError> {
        let mut x = self.stem.forward(images)?;
        for b in &self.blocks {
            let input = x.clone();
            if let Some(e) = &b.expand {
                x = e.forward(&x)?;
            }
            x = b.project.forward(&b.depthwise.forward(&x)?)?;
            if b.residual {
                x = (x + input)?;
            }
        }
        let x = self.head.forward(&x)?;
        // Global average pool → [N, 1280].
        Ok(x.flatten_from(2)?.mean(D::Minus1)?)
    }

    /// The CPU's way: candle's matrix products for the 1×1 convolutions, and every bias, ReLU6
    /// and residual folded into the pass that next reads the values (the depthwise loop, one
    /// pass after the projection, the pooling).
    fn features_direct(&self, images: &Tensor) -> Result<Tensor, SpaceError> {
        let mut x = activate(&self.stem.convolve(images)?, self.stem.activation(), None)?;
        for b in &self.blocks {
            let (expanded, before) = match &b.expand {
                Some(e) => (e.convolve(&x)?, e.activation()),
                None => (x.clone(), Activation::NONE),
            };
            let d = b.depthwise.depthwise_direct(&expanded, before)?;
            let p = b.project.convolve(&d)?;
            x = activate(&p, b.project.activation(), b.residual.then_some(&x))?;
        }
        Ok(activate_and_pool(&self.head.convolve(&x)?, self.head.activation())?)
    }
}

/// Weights of a separable resize along one axis: for each output pixel, the first input pixel
/// and the weights from there. A triangle (bilinear) filter widened by the scale when shrinking,
/// so that every input pixel counts (antialiased, as Pillow and torchvision do).
fn resize_weights(from: usize, to: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = from as f64 / to as f64;
    let support = scale.max(1.0);
    (0..to)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            let lo = ((center - support + 0.5).floor().max(0.0)) as usize;
            let hi = ((center + support + 0.5).floor() as usize).min(from);
            let mut w: Vec<f64> =
                (lo..hi).map(|j| (1.0 - ((j as f64 + 0.5 - center) / support).abs()).max(0.0)).collect();
            let sum: f64 = w.iter().sum();
            if sum > 0.0 {
                for x in &mut w {
                    *x /= sum;
                }
            }
            (lo, w.into_iter().map(|x| x as f32).collect())
        })
        .collect()
}

/// An RGB image as the network wants it: shorter side resized to 256 (triangle filter,
/// antialiased), centre crop 224×224, pixels mapped to (x − 127) / 128, planar [3, 224, 224].
pub fn preprocess(image: &image::RgbImage) -> Result<Tensor, SpaceError> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    if w == 0 || h == 0 {
        return Err(SpaceError::Encode("the image is empty".into()));
    }
    // The shorter side becomes RESIZE; the longer keeps the aspect (truncated, as torchvision).
    let (nw, nh) =
        if w <= h { (RESIZE, (RESIZE * h / w).max(RESIZE)) } else { ((RESIZE * w / h).max(RESIZE), RESIZE) };
    let (top, left) = ((nh - INPUT) / 2, (nw - INPUT) / 2);
    // Only the weights of the rows and columns that survive the crop are needed.
    let cols = &resize_weights(w, nw)[left..left + INPUT];
    let rows = &resize_weights(h, nh)[top..top + INPUT];
    let raw = image.as_raw();
    let mut out = vec![0f32; 3 * INPUT * INPUT];
    // Horizontal pass over every input row: [h, 224, 3].
    let mut horizontal = vec![0f32; h * INPUT * 3];
    for y in 0..h {
        let row = &raw[y * w * 3..(y + 1) * w * 3];
        for (ox, (start, weights)) in cols.iter().enumerate() {
            let mut acc = [0f32; 3];
            for (k, &wt) in weights.iter().enumerate() {
                let px = &row[(start + k) * 3..(start + k) * 3 + 3];
                for c in 0..3 {
                    acc[c] += wt * f32::from(px[c]);
                }
            }
            horizontal[(y * INPUT + ox) * 3..(y * INPUT + ox) * 3 + 3].copy_from_slice(&acc);
        }
    }
    // Vertical pass, then the pixel mapping, into planes.
    for (oy, (start, weights)) in rows.iter().enumerate() {
        for ox in 0..INPUT {
            let mut acc = [0f32; 3];
            for (k, &wt) in weights.iter().enumerate() {
                let px = &horizontal[((start + k) * INPUT + ox) * 3..((start + k) * INPUT + ox) * 3 + 3];
                for c in 0..3 {
                    acc[c] += wt * px[c];
                }
            }
            for c in 0..3 {
                out[c * INPUT * INPUT + oy * INPUT + ox] = (acc[c] - 127.0) / 128.0;
            }
        }
    }
    Ok(Tensor::from_vec(out, (3, INPUT, INPUT), &Device::Cpu)?)
}

/// Softmax over the last dimension.
pub fn softmax(logits: &Tensor) -> Result<Tensor, SpaceError> {
    Ok(candle_nn::ops::softmax_last_dim(logits)?)
}
