//! A direct depthwise convolution for the CPU. candle 0.11's `conv2d` with `groups = channels`
//! is 100–400× slower per layer than PyTorch's (docs/MODELS.md); EfficientNet-Lite0 has 16 such
//! layers, so the image encoder runs them through this loop over channel planes instead.

use candle_core::{Device, Result, Tensor};

/// Padding on each side: (top, left, bottom, right). TensorFlow's "same" padding puts the odd
/// pixel at the bottom and right.
pub type Padding = (usize, usize, usize, usize);

/// TensorFlow-style "same" padding for a `kernel` at `stride` over `size` pixels: (before, after).
pub fn same_padding(size: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(size);
    (total / 2, total - total / 2)
}

/// Sizes of one depthwise pass.
#[derive(Clone, Copy)]
struct Geometry {
    w: usize,
    hp: usize,
    wp: usize,
    ho: usize,
    wo: usize,
    k: usize,
    stride: usize,
    top: usize,
    left: usize,
}

impl Geometry {
    /// One channel plane: pad it into `padded`, then accumulate each kernel tap over whole rows
    /// (the inner loop runs along a row, which vectorises).
    fn plane(&self, plane: &[f32], kern: &[f32], padded: &mut [f32], out: &mut [f32]) {
        let Self { w, wp, wo, k, stride, top, left, .. } = *self;
        padded.fill(0.0);
        for (row, src) in plane.chunks_exact(w).enumerate() {
            let start = (row + top) * wp + left;
            padded[start..start + w].copy_from_slice(src);
        }
        debug_assert_eq!(padded.len(), self.hp * wp);
        debug_assert_eq!(out.len(), self.ho * wo);
        for (ky, kern_row) in kern.chunks_exact(k).enumerate() {
            for (oy, out_row) in out.chunks_exact_mut(wo).enumerate() {
                let in_row = &padded[(oy * stride + ky) * wp..(oy * stride + ky + 1) * wp];
                for (kx, &kv) in kern_row.iter().enumerate() {
                    if stride == 1 {
                        for (o, i) in out_row.iter_mut().zip(&in_row[kx..kx + wo]) {
                            *o += kv * i;
                        }
                    } else {
                        for (ox, o) in out_row.iter_mut().enumerate() {
                            *o += kv * in_row[ox * stride + kx];
                        }
                    }
                }
            }
        }
    }
}

/// Runs `f` on a tensor's values as f32, read in place when the tensor is a contiguous CPU one
/// (copying a large activation out costs more than a depthwise convolution over it).
pub fn with_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.to_device(&Device::Cpu)?.contiguous()?;
    let guard = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*guard.0 else { candle_core::bail!("with_values: not on the CPU") };
    let start = guard.1.start_offset();
    f(&cpu.as_slice::<f32>()?[start..start + t.elem_count()])
}

/// `input` [N, C, H, W], `weight` [C, 1, K, K] → [N, C, H', W'], adding a per-channel `bias`
/// when given and applying ReLU6 (`relu6`) in the same pass. A contiguous CPU input is read in place, not copied.
#[allow(clippy::many_single_char_names)] // n, c, h, w, k: the shapes' own names
pub fn depthwise_conv2d_bias(
    input: &Tensor,
    weight: &Tensor,
    stride: usize,
    pad: Padding,
    bias: Option<&[f32]>,
    relu6: bool,
) -> Result<Tensor> {
    let (n, c, h, w) = input.dims4()?;
    let (wc, one, k, k2) = weight.dims4()?;
    if wc != c || one != 1 || k != k2 || stride == 0 {
        candle_core::bail!(
            "depthwise_conv2d: input {:?} and weight {:?} do not fit",
            input.dims(),
            weight.dims()
        );
    }
    let (top, left, bottom, right) = pad;
    let (hp, wp) = (h + top + bottom, w + left + right);
    if hp < k || wp < k {
        candle_core::bail!("depthwise_conv2d: a {k}×{k} kernel is larger than the padded {hp}×{wp} input");
    }
    let (ho, wo) = ((hp - k) / stride + 1, (wp - k) / stride + 1);
    if bias.is_some_and(|b| b.len() != c) {
        candle_core::bail!("depthwise_conv2d: {c} channels but a bias of another length");
    }
    let kernel: Vec<f32> = weight.to_device(&Device::Cpu)?.flatten_all()?.to_vec1()?;
    with_values(input, |pixels| {
        let mut out = vec![0f32; n * c * ho * wo];
        // Planes are independent: each core takes a run of them.
        let planes = n * c;
        let threads =
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(planes).max(1);
        let per = planes.div_ceil(threads);
        let geometry = Geometry { w, hp, wp, ho, wo, k, stride, top, left };
        std::thread::scope(|scope| {
            for (t, out_run) in out.chunks_mut(per * ho * wo).enumerate() {
                let first = t * per;
                let pixels = &pixels[first * h * w..];
                let kernel = &kernel;
                scope.spawn(move || {
                    let mut padded = vec![0f32; hp * wp];
                    for (i, out_plane) in out_run.chunks_exact_mut(ho * wo).enumerate() {
                        let ch = (first + i) % c;
                        let plane = &pixels[i * h * w..(i + 1) * h * w];
                        geometry.plane(plane, &kernel[ch * k * k..(ch + 1) * k * k], &mut padded, out_plane);
                        let b = bias.map_or(0.0, |b| b[ch]);
                        if relu6 {
                            for x in out_plane.iter_mut() {
                                *x = (*x + b).clamp(0.0, 6.0);
                            }
                        } else if b != 0.0 {
                            for x in out_plane.iter_mut() {
                                *x += b;
                            }
                        }
                    }
                });
            }
        });
        Tensor::from_vec(out, (n, c, ho, wo), input.device())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against candle's own grouped convolution on explicitly padded input.
    fn check(c: usize, h: usize, w: usize, k: usize, stride: usize) {
        let dev = Device::Cpu;
        let input = Tensor::randn(0f32, 1.0, (2, c, h, w), &dev).expect("input");
        let weight = Tensor::randn(0f32, 1.0, (c, 1, k, k), &dev).expect("weight");
        let (top, bottom) = same_padding(h, k, stride);
        let (left, right) = same_padding(w, k, stride);
        let ours = depthwise_conv2d_bias(&input, &weight, stride, (top, left, bottom, right), None, false)
            .expect("ours");
        let padded =
            input.pad_with_zeros(2, top, bottom).and_then(|t| t.pad_with_zeros(3, left, right)).expect("pad");
        let theirs = padded.conv2d(&weight, 0, stride, 1, c).expect("candle");
        assert_eq!(ours.dims(), theirs.dims());
        assert_eq!(ours.dims()[2], h.div_ceil(stride));
        let diff = (ours - theirs).expect("sub").abs().expect("abs").max_all().expect("max");
        assert!(diff.to_scalar::<f32>().expect("scalar") < 1e-4);
    }

    #[test]
    fn matches_a_grouped_convolution() {
        check(8, 12, 12, 3, 1);
        check(6, 13, 11, 5, 2);
        check(4, 7, 7, 3, 2);
    }

    #[test]
    fn same_padding_puts_the_odd_pixel_after() {
        assert_eq!(same_padding(224, 3, 2), (0, 1));
        assert_eq!(same_padding(112, 3, 1), (1, 1));
        assert_eq!(same_padding(28, 5, 2), (1, 2));
    }
}
