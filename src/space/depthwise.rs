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

/// What is done to each value on the way in or out of a pass: a per-channel bias, then ReLU6.
/// On the way in it is the previous 1×1 convolution's own (applied as the depthwise pass reads
/// its input, which saves a pass over that convolution's output); on the way out, the depthwise
/// convolution's.
#[derive(Clone, Copy, Default)]
pub struct Activation<'a> {
    pub bias: Option<&'a [f32]>,
    pub relu6: bool,
}

impl Activation<'_> {
    /// Does nothing.
    pub const NONE: Activation<'static> = Activation { bias: None, relu6: false };

    fn is_none(&self) -> bool {
        self.bias.is_none() && !self.relu6
    }

    /// Applies it to one channel's values in place.
    #[allow(clippy::inline_always)] // inlined into pulp's AVX2 dispatch, where its loops vectorise
    #[inline(always)]
    pub fn apply(&self, channel: usize, values: &mut [f32]) {
        let b = self.bias.map_or(0.0, |b| b[channel]);
        if self.relu6 {
            for x in values {
                *x = (*x + b).clamp(0.0, 6.0);
            }
        } else if b != 0.0 {
            for x in values {
                *x += b;
            }
        }
    }
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
    /// Where padded column `x` lies in a padded row. At stride 1, in place; at stride 2 each row
    /// is stored as its even columns, then its odd ones, so that every kernel tap reads a
    /// contiguous run of the row (and the loop over it vectorises).
    #[allow(clippy::inline_always)] // inlined into pulp's AVX2 dispatch, where its loops vectorise
    #[inline(always)]
    fn column(&self, x: usize) -> usize {
        if self.stride == 2 {
            if x.is_multiple_of(2) { x / 2 } else { self.wp.div_ceil(2) + x / 2 }
        } else {
            x
        }
    }

    /// One channel plane: pad it into `padded` (with `before` applied to each value, the padding
    /// staying zero), then, output row by output row, accumulate every kernel tap into the row
    /// while it stays in the first-level cache, and apply `after` to it.
    #[allow(clippy::inline_always)] // inlined into pulp's AVX2 dispatch, where its loops vectorise
    #[inline(always)]
    #[allow(clippy::too_many_arguments)] // one plane's inputs, outputs and its channel
    fn plane(
        &self,
        plane: &[f32],
        kern: &[f32],
        channel: usize,
        before: Activation,
        after: Activation,
        padded: &mut [f32],
        out: &mut [f32],
    ) {
        let Self { w, hp, wp, wo, k, stride, top, left, .. } = *self;
        debug_assert_eq!(padded.len(), hp * wp);
        debug_assert_eq!(out.len(), self.ho * wo);
        padded[..top * wp].fill(0.0);
        padded[(top + plane.len() / w) * wp..].fill(0.0);
        for (row, src) in plane.chunks_exact(w).enumerate() {
            let dst = &mut padded[(row + top) * wp..(row + top + 1) * wp];
            if stride == 2 {
                dst.fill(0.0);
                for (x, &v) in src.iter().enumerate() {
                    dst[self.column(x + left)] = v;
                }
            } else {
                dst[..left].fill(0.0);
                dst[left + w..].fill(0.0);
                dst[left..left + w].copy_from_slice(src);
            }
            if !before.is_none() {
                // Only the image's own columns: the padding is of the activated input, zero.
                if stride == 2 {
                    let evens = wp.div_ceil(2);
                    let (even, odd) = dst.split_at_mut(evens);
                    let (first_even, first_odd) = (left.div_ceil(2), left / 2);
                    let last = left + w; // one past the image's last column
                    before.apply(channel, &mut even[first_even..last.div_ceil(2)]);
                    before.apply(channel, &mut odd[first_odd..last / 2]);
                } else {
                    before.apply(channel, &mut dst[left..left + w]);
                }
            }
        }
        for (oy, out_row) in out.chunks_exact_mut(wo).enumerate() {
            out_row.fill(0.0);
            for (ky, kern_row) in kern.chunks_exact(k).enumerate() {
                let in_row = &padded[(oy * stride + ky) * wp..(oy * stride + ky + 1) * wp];
                for (kx, &kv) in kern_row.iter().enumerate() {
                    let from = self.column(kx);
                    for (o, i) in out_row.iter_mut().zip(&in_row[from..from + wo]) {
                        *o += kv * i;
                    }
                }
            }
            after.apply(channel, out_row);
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

/// Splits `planes` planes of `size_in` values (input) and `size_out` values (output) among the
/// cores and runs `f(first plane's index, its input, its output)` on each run of them, compiled
/// for the best vector instructions this CPU has (AVX2 and FMA on x86-64-v3, checked at run
/// time: the build itself targets plain x86-64).
pub fn over_planes(
    input: &[f32],
    out: &mut [f32],
    planes: usize,
    size_in: usize,
    size_out: usize,
    f: impl Fn(usize, &[f32], &mut [f32]) + Sync,
) {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(planes).max(1);
    let per = planes.div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for (t, out_run) in out.chunks_mut(per * size_out).enumerate() {
            let first = t * per;
            let count = out_run.len() / size_out.max(1);
            let input = &input[first * size_in..(first + count) * size_in];
            let f = &f;
            scope.spawn(move || pulp::Arch::new().dispatch(|| f(first, input, out_run)));
        }
    });
}

/// `input` [N, C, H, W], `weight` [C, 1, K, K] → [N, C, H', W'] at stride 1 or 2, with `before`
/// applied to the input as it is read and `after` to the output as it is written. A contiguous
/// CPU input is read in place, not copied.
#[allow(clippy::many_single_char_names)] // n, c, h, w, k: the shapes' own names
pub fn depthwise_conv2d(
    input: &Tensor,
    weight: &Tensor,
    stride: usize,
    pad: Padding,
    before: Activation,
    after: Activation,
) -> Result<Tensor> {
    let (n, c, h, w) = input.dims4()?;
    let (wc, one, k, k2) = weight.dims4()?;
    if wc != c || one != 1 || k != k2 || !(1..=2).contains(&stride) {
        candle_core::bail!(
            "depthwise_conv2d: input {:?}, weight {:?} and stride {stride} do not fit",
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
    if [before.bias, after.bias].iter().flatten().any(|b| b.len() != c) {
        candle_core::bail!("depthwise_conv2d: {c} channels but a bias of another length");
    }
    let kernel: Vec<f32> = weight.to_device(&Device::Cpu)?.flatten_all()?.to_vec1()?;
    let geometry = Geometry { w, hp, wp, ho, wo, k, stride, top, left };
    with_values(input, |pixels| {
        let mut out = vec![0f32; n * c * ho * wo];
        over_planes(pixels, &mut out, n * c, h * w, ho * wo, |first, planes, outs| {
            let mut padded = vec![0f32; hp * wp];
            for (i, (plane, out_plane)) in
                planes.chunks_exact(h * w).zip(outs.chunks_exact_mut(ho * wo)).enumerate()
            {
                let ch = (first + i) % c;
                let kern = &kernel[ch * k * k..(ch + 1) * k * k];
                geometry.plane(plane, kern, ch, before, after, &mut padded, out_plane);
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
        let ours = depthwise_conv2d(
            &input,
            &weight,
            stride,
            (top, left, bottom, right),
            Activation::NONE,
            Activation::NONE,
        )
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

    /// A bias and ReLU6 applied on the way in give what applying them first gives, at both
    /// strides (the padding stays zero: it pads the activated input).
    #[test]
    fn an_activation_on_the_way_in_is_the_activation_applied_first() {
        let dev = Device::Cpu;
        for (c, h, w, k, stride) in [(5, 9, 11, 3, 1), (3, 12, 13, 5, 2), (4, 8, 7, 3, 2)] {
            let input = Tensor::randn(0f32, 4.0, (2, c, h, w), &dev).expect("input");
            let weight = Tensor::randn(0f32, 1.0, (c, 1, k, k), &dev).expect("weight");
            let bias: Vec<f32> = (0..c).map(|i| f32::from(u8::try_from(i).expect("small")) - 1.5).collect();
            let before = Activation { bias: Some(&bias), relu6: true };
            let (top, bottom) = same_padding(h, k, stride);
            let (left, right) = same_padding(w, k, stride);
            let pad = (top, left, bottom, right);
            let fused =
                depthwise_conv2d(&input, &weight, stride, pad, before, Activation::NONE).expect("fused");
            let b = Tensor::from_slice(&bias, (1, c, 1, 1), &dev).expect("bias");
            let first = input.broadcast_add(&b).and_then(|t| t.clamp(0f32, 6f32)).expect("activated");
            let apart = depthwise_conv2d(&first, &weight, stride, pad, Activation::NONE, Activation::NONE)
                .expect("apart");
            let diff = (fused - apart).and_then(|d| d.abs()).and_then(|d| d.max_all()).expect("diff");
            assert!(
                diff.to_scalar::<f32>().expect("scalar") < 1e-4,
                "c {c} h {h} w {w} k {k} stride {stride}"
            );
        }
    }

    #[test]
    fn same_padding_puts_the_odd_pixel_after() {
        assert_eq!(same_padding(224, 3, 2), (0, 1));
        assert_eq!(same_padding(112, 3, 1), (1, 1));
        assert_eq!(same_padding(28, 5, 2), (1, 2));
    }
}
