//! The BERT encoder under the text encoder (all-MiniLM-L6-v2: 6 layers, 384 wide, 12 heads of
//! 32, 1536 in the feed-forward), forward only. The matrix products are candle's on every
//! device; between them, candle's ops run on a GPU, while on the CPU fused loops take each
//! step in one pass over memory where candle's ops make several (attention, bias + GELU, bias +
//! residual + layer norm), split among the cores.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};
use rayon::prelude::*;

use super::Kernels;
use super::depthwise::with_values;

/// Rows of activations per task handed to a core: enough to outweigh the hand-over.
const ROWS_PER_TASK: usize = 16;

/// A dense layer, y = x · Wᵀ + b, with W [out, in].
struct Dense {
    /// Wᵀ, [in, out], stored contiguous: the layout gemm reads without repacking it per product
    /// (W itself, read through a transposed view, is packed again in every call).
    weight_t: Tensor,
    bias: Tensor,
    /// The bias again, on the CPU, for the fused loops.
    bias_values: Vec<f32>,
}

impl Dense {
    fn load(vb: &VarBuilder, inputs: usize, outputs: usize) -> Result<Self> {
        let weight_t = vb.get((outputs, inputs), "weight")?.t()?.contiguous()?;
        let bias = vb.get(outputs, "bias")?;
        let bias_values = bias.to_device(&Device::Cpu)?.to_vec1()?;
        Ok(Self { weight_t, bias, bias_values })
    }

    /// Several layers reading the same input as one wider layer (query, key and value).
    fn stacked(parts: &[Self]) -> Result<Self> {
        let weights: Vec<&Tensor> = parts.iter().map(|p| &p.weight_t).collect();
        let biases: Vec<&Tensor> = parts.iter().map(|p| &p.bias).collect();
        Ok(Self {
            weight_t: Tensor::cat(&weights, 1)?,
            bias: Tensor::cat(&biases, 0)?,
            bias_values: parts.iter().flat_map(|p| p.bias_values.iter().copied()).collect(),
        })
    }

    /// x · Wᵀ, the bias not yet added: [T, in] → [T, out].
    fn product(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight_t)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.product(x)?.broadcast_add(&self.bias)
    }
}

/// Layer normalisation's scale and shift.
struct Norm {
    weight: Tensor,
    bias: Tensor,
    weight_values: Vec<f32>,
    bias_values: Vec<f32>,
    eps: f32,
}

impl Norm {
    fn load(vb: &VarBuilder, size: usize, eps: f64) -> Result<Self> {
        let weight = vb.get(size, "weight")?;
        let bias = vb.get(size, "bias")?;
        Ok(Self {
            weight_values: weight.to_device(&Device::Cpu)?.to_vec1()?,
            bias_values: bias.to_device(&Device::Cpu)?.to_vec1()?,
            weight,
            bias,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm(&x.contiguous()?, &self.weight, &self.bias, self.eps)
    }
}

struct Layer {
    /// Query, key and value as one product: [T, 384] → [T, 3 × 384].
    qkv: Dense,
    attention_out: Dense,
    attention_norm: Norm,
    up: Dense,
    down: Dense,
    out_norm: Norm,
}

/// A batch of tokenised sentences, each padded to the batch's longest.
pub struct Batch<'a> {
    pub ids: &'a [u32],
    pub type_ids: &'a [u32],
    /// 1 for a real token, 0 for padding.
    pub mask: &'a [u32],
    pub sentences: usize,
    pub tokens: usize,
}

pub struct Bert {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
    device: Device,
}

impl Bert {
    /// The weights as Hugging Face's BERT names them, with or without a `bert.` prefix.
    pub fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        if config.hidden_act != HiddenAct::Gelu {
            candle_core::bail!("hidden_act {:?}: only \"gelu\" (erf) is supported", config.hidden_act);
        }
        let hidden = config.hidden_size;
        if config.num_attention_heads == 0 || !hidden.is_multiple_of(config.num_attention_heads) {
            candle_core::bail!("{hidden} wide does not split into {} heads", config.num_attention_heads);
        }
        let vb =
            if vb.contains_tensor("bert.embeddings.word_embeddings.weight") { vb.pp("bert") } else { vb };
        let eps = config.layer_norm_eps;
        let emb = vb.pp("embeddings");
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let l = vb.pp(format!("encoder.layer.{i}"));
                let dense = |name: &str, inputs, outputs| Dense::load(&l.pp(name), inputs, outputs);
                let qkv = ["query", "key", "value"]
                    .iter()
                    .map(|p| dense(&format!("attention.self.{p}"), hidden, hidden))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Layer {
                    qkv: Dense::stacked(&qkv)?,
                    attention_out: dense("attention.output.dense", hidden, hidden)?,
                    attention_norm: Norm::load(&l.pp("attention.output.LayerNorm"), hidden, eps)?,
                    up: dense("intermediate.dense", hidden, config.intermediate_size)?,
                    down: dense("output.dense", config.intermediate_size, hidden)?,
                    out_norm: Norm::load(&l.pp("output.LayerNorm"), hidden, eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            word: emb.get((config.vocab_size, hidden), "word_embeddings.weight")?,
            position: emb.get((config.max_position_embeddings, hidden), "position_embeddings.weight")?,
            token_type: emb.get((config.type_vocab_size, hidden), "token_type_embeddings.weight")?,
            embedding_norm: Norm::load(&emb.pp("LayerNorm"), hidden, eps)?,
            layers,
            heads: config.num_attention_heads,
            hidden,
            device: vb.device().clone(),
        })
    }

    /// The last layer's output for every token: [sentences × tokens, 384].
    pub fn forward(&self, batch: &Batch, kernels: Kernels) -> Result<Tensor> {
        let (n, len) = (batch.sentences, batch.tokens);
        let rows = n * len;
        if [batch.ids.len(), batch.type_ids.len(), batch.mask.len()] != [rows; 3] {
            candle_core::bail!("a batch of {n} × {len} tokens with ids, types or mask of another length");
        }
        if len > self.position.dim(0)? {
            candle_core::bail!("{len} tokens: the model has positions for {}", self.position.dim(0)?);
        }
        let ids = Tensor::from_slice(batch.ids, rows, &self.device)?;
        let type_ids = Tensor::from_slice(batch.type_ids, rows, &self.device)?;
        // [T, 384]: word + token type + position (the positions repeat every `len` rows).
        let x = (self.word.index_select(&ids, 0)? + self.token_type.index_select(&type_ids, 0)?)?
            .reshape((n, len, self.hidden))?
            .broadcast_add(&self.position.narrow(0, 0, len)?)?
            .reshape((rows, self.hidden))?;
        let mut x = self.embedding_norm.forward(&x)?;
        match kernels {
            Kernels::Direct => {
                for layer in &self.layers {
                    x = self.layer_direct(layer, &x, batch)?;
                }
            }
            Kernels::Candle => {
                // [N, 1, 1, len]: 0 on real tokens, the lowest f32 on padding (as transformers does).
                let mask =
                    Tensor::from_slice(batch.mask, (n, 1, 1, len), &self.device)?.to_dtype(DType::F32)?;
                let mask = ((mask.ones_like()? - mask)? * f64::from(f32::MIN))?;
                for layer in &self.layers {
                    x = self.layer_candle(layer, &x, &mask, n, len)?;
                }
            }
        }
        Ok(x)
    }

    /// One layer in candle's ops: the tensors never leave the device.
    #[allow(clippy::many_single_char_names)] // q, k, v and d as the papers write them
    fn layer_candle(&self, layer: &Layer, x: &Tensor, mask: &Tensor, n: usize, len: usize) -> Result<Tensor> {
        let (heads, hidden) = (self.heads, self.hidden);
        let d = hidden / heads;
        let qkv = layer.qkv.forward(x)?;
        // [N, heads, len, d] each.
        let split = |i: usize| {
            qkv.narrow(1, i * hidden, hidden)?.reshape((n, len, heads, d))?.transpose(1, 2)?.contiguous()
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let scores = (q.matmul(&k.t()?)? / (d as f64).sqrt())?.broadcast_add(mask)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((n * len, hidden))?;
        let x = layer.attention_norm.forward(&(layer.attention_out.forward(&context)? + x)?)?;
        let h = layer.up.forward(&x)?.gelu_erf()?;
        layer.out_norm.forward(&(layer.down.forward(&h)? + x)?)
    }

    /// One layer on the CPU: candle's matrix products, the fused loops between them.
    fn layer_direct(&self, layer: &Layer, x: &Tensor, batch: &Batch) -> Result<Tensor> {
        let rows = batch.sentences * batch.tokens;
        let qkv = layer.qkv.product(x)?;
        let context = with_values(&qkv, |qkv| {
            let mut out = vec![0f32; rows * self.hidden];
            attention(qkv, &layer.qkv.bias_values, batch.mask, batch.tokens, self.heads, &mut out);
            Tensor::from_vec(out, (rows, self.hidden), &self.device)
        })?;
        let x = add_norm(
            &layer.attention_out.product(&context)?,
            &layer.attention_out.bias_values,
            x,
            &layer.attention_norm,
        )?;
        let h = bias_gelu(&layer.up.product(&x)?, &layer.up.bias_values)?;
        add_norm(&layer.down.product(&h)?, &layer.down.bias_values, &x, &layer.out_norm)
    }
}

/// Self-attention of each sentence over its own real tokens, every head, from the fused
/// query-key-value product `qkv` [N × len, 3 × H] and its `bias` [3 × H], into `out` [N × len, H].
/// Padding takes no weight: transformers adds the lowest f32 to its scores, whose exponential is
/// exactly 0, so leaving those keys out gives the same sums.
fn attention(qkv: &[f32], bias: &[f32], mask: &[u32], len: usize, heads: usize, out: &mut [f32]) {
    let (width, hidden) = (bias.len(), bias.len() / 3);
    let d = hidden / heads;
    let scale = 1.0 / (d as f32).sqrt();
    out.par_chunks_mut(len * hidden).enumerate().for_each(|(s, out)| {
        let rows = &qkv[s * len * width..(s + 1) * len * width];
        let real: Vec<usize> = (0..len).filter(|&j| mask[s * len + j] != 0).collect();
        let (mut keys, mut values) = (vec![0f32; real.len() * d], vec![0f32; real.len() * d]);
        let (mut query, mut weights) = (vec![0f32; d], vec![0f32; real.len()]);
        pulp::Arch::new().dispatch(|| {
            for h in 0..heads {
                let (q0, k0, v0) = (h * d, hidden + h * d, 2 * hidden + h * d);
                for (&j, (k, v)) in real.iter().zip(keys.chunks_exact_mut(d).zip(values.chunks_exact_mut(d)))
                {
                    let row = &rows[j * width..(j + 1) * width];
                    add(&row[k0..k0 + d], &bias[k0..k0 + d], k);
                    add(&row[v0..v0 + d], &bias[v0..v0 + d], v);
                }
                for i in 0..len {
                    add(&rows[i * width + q0..i * width + q0 + d], &bias[q0..q0 + d], &mut query);
                    let mut max = f32::NEG_INFINITY;
                    for (w, k) in weights.iter_mut().zip(keys.chunks_exact(d)) {
                        *w = dot(&query, k) * scale;
                        max = max.max(*w);
                    }
                    let mut sum = 0.0;
                    for w in &mut weights {
                        *w = exp(*w - max);
                        sum += *w;
                    }
                    let o = &mut out[i * hidden + q0..i * hidden + q0 + d];
                    o.fill(0.0);
                    for (w, v) in weights.iter().zip(values.chunks_exact(d)) {
                        let w = w / sum;
                        for (o, v) in o.iter_mut().zip(v) {
                            *o += w * v;
                        }
                    }
                }
            }
        });
    });
}

/// `layer_norm(y + bias + residual)`, one pass per row: [T, H] → [T, H].
fn add_norm(y: &Tensor, bias: &[f32], residual: &Tensor, norm: &Norm) -> Result<Tensor> {
    let (rows, h) = y.dims2()?;
    if residual.dims() != y.dims() || bias.len() != h || norm.weight_values.len() != h {
        candle_core::bail!(
            "add_norm: {:?} + {:?} with a bias or norm of another width",
            y.dims(),
            residual.dims()
        );
    }
    with_values(y, |y| {
        with_values(residual, |r| {
            let mut out = vec![0f32; rows * h];
            out.par_chunks_mut(h * ROWS_PER_TASK).enumerate().for_each(|(c, out)| {
                let first = c * ROWS_PER_TASK * h;
                pulp::Arch::new().dispatch(|| {
                    for (i, o) in out.chunks_exact_mut(h).enumerate() {
                        let at = first + i * h;
                        for (((o, y), r), b) in o.iter_mut().zip(&y[at..at + h]).zip(&r[at..at + h]).zip(bias)
                        {
                            *o = y + b + r;
                        }
                        let mean = o.iter().sum::<f32>() / h as f32;
                        let var = o.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
                        let inv = 1.0 / (var + norm.eps).sqrt();
                        for ((o, w), b) in o.iter_mut().zip(&norm.weight_values).zip(&norm.bias_values) {
                            *o = (*o - mean) * inv * w + b;
                        }
                    }
                });
            });
            Tensor::from_vec(out, (rows, h), &Device::Cpu)
        })
    })
}

/// GELU(y + bias), the exact (erf) form BERT uses: [T, I] → [T, I].
fn bias_gelu(y: &Tensor, bias: &[f32]) -> Result<Tensor> {
    let (rows, width) = y.dims2()?;
    if bias.len() != width {
        candle_core::bail!("bias_gelu: {width} wide with a bias of {}", bias.len());
    }
    with_values(y, |y| {
        let mut out = vec![0f32; rows * width];
        out.par_chunks_mut(width * ROWS_PER_TASK).zip(y.par_chunks(width * ROWS_PER_TASK)).for_each(
            |(out, y)| {
                pulp::Arch::new().dispatch(|| {
                    for (o, y) in out.chunks_exact_mut(width).zip(y.chunks_exact(width)) {
                        for ((o, y), b) in o.iter_mut().zip(y).zip(bias) {
                            *o = gelu(y + b);
                        }
                    }
                });
            },
        );
        Tensor::from_vec(out, (rows, width), &Device::Cpu)
    })
}

#[allow(clippy::inline_always)] // inlined into pulp's dispatch, where its loop vectorises
#[inline(always)]
fn add(a: &[f32], b: &[f32], out: &mut [f32]) {
    for ((o, a), b) in out.iter_mut().zip(a).zip(b) {
        *o = a + b;
    }
}

#[allow(clippy::inline_always)] // as above
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight running sums, so the loop vectorises (a single sum is one long chain).
    let mut sums = [0f32; 8];
    for (a, b) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for k in 0..8 {
            sums[k] += a[k] * b[k];
        }
    }
    let tail: f32 =
        a.chunks_exact(8).remainder().iter().zip(b.chunks_exact(8).remainder()).map(|(a, b)| a * b).sum();
    sums.iter().sum::<f32>() + tail
}

/// eˣ in plain arithmetic the compiler vectorises (libm's is one value at a time): x = n ln 2 + r
/// with |r| ≤ ln 2 / 2, eˣ = 2ⁿ eʳ, eʳ by its Taylor series to r⁷ (relative error under 1e-8 on
/// that range, below f32's own). Inputs below -87 give ~1e-38, above 88 give ~2e38.
#[allow(clippy::inline_always)] // as above
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75; // ln 2 split in two, so n × LN2_HI is exact
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5 × 2²³ added and taken away rounds to the nearest integer in plain arithmetic: `round`
    // and `floor` are calls into libm on a baseline x86-64 build, which stop the vectorising.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// erf(x): below 0.5 by its Maclaurin series to x¹¹ (truncation under 2e-8), where the formula
/// below would lose digits to 1 − p·e^(−x²) ≈ 0; above, by Abramowitz and Stegun's 7.1.26
/// (1.5e-7 in exact arithmetic, under 4e-7 in f32: the test measures it). Both are computed
/// and one kept, so the loop still vectorises.
#[allow(clippy::inline_always)] // as above
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_7, -1.453_152_1, 1.061_405_4];
    // 2/√π × (1, −1/3, 1/10, −1/42, 1/216, −1/1320): the series' coefficients.
    const S: [f32; 6] = {
        let c = std::f32::consts::FRAC_2_SQRT_PI;
        [c, -c / 3.0, c / 10.0, -c / 42.0, c / 216.0, -c / 1320.0]
    };
    let z = x.abs();
    let t = 1.0 / (1.0 + P * z);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let far = 1.0 - poly * exp(-z * z);
    let z2 = z * z;
    let near = z * (S[0] + z2 * (S[1] + z2 * (S[2] + z2 * (S[3] + z2 * (S[4] + z2 * S[5])))));
    (if z < 0.5 { near } else { far }).copysign(x)
}

/// GELU, x Φ(x) = x (1 + erf(x / √2)) / 2.
#[allow(clippy::inline_always)] // as above
#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_the_standard_library() {
        for i in -8000..=8000 {
            let x = i as f32 / 100.0;
            let (ours, std) = (exp(x), x.exp());
            assert!((ours - std).abs() <= 4.0 * f32::EPSILON * std, "exp({x}) = {ours}, std {std}");
        }
    }

    /// erf by its Maclaurin series in f64, 2/√π Σ (-1)ⁿ x²ⁿ⁺¹ / (n! (2n + 1)): exact to ~1e-13
    /// for |x| ≤ 3.5, where its largest term is ~3e3.
    fn erf_series(x: f64) -> f64 {
        let (mut term, mut sum) = (x, x);
        for n in 1..120 {
            term *= -x * x / f64::from(n);
            sum += term / f64::from(2 * n + 1);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_is_within_its_bound() {
        // A table value first, so the reference itself is checked: erf(1) = 0.8427007929.
        assert!((erf_series(1.0) - 0.842_700_792_9).abs() < 1e-10);
        // 7.1.26 is within 1.5e-7 in exact arithmetic; f32's rounding adds a few ulp of 1.
        let mut worst = (0.0f64, 0.0f32);
        for i in -3500..=3500 {
            let x = i as f32 / 1000.0;
            let off = (f64::from(erf(x)) - erf_series(f64::from(x))).abs();
            if off > worst.0 {
                worst = (off, x);
            }
        }
        assert!(worst.0 < 4e-7, "erf({}) off by {}", worst.1, worst.0);
        // Past 3.5 it stays within 1e-6 of ±1 (erfc(3.5) = 7.4e-7) and never beyond.
        for i in 3500..=10_000 {
            let x = i as f32 / 1000.0;
            assert!(
                erf(x) <= 1.0 && 1.0 - erf(x) < 1e-6 && erf(-x).to_bits() == (-erf(x)).to_bits(),
                "erf({x}) = {}",
                erf(x)
            );
        }
    }
}
