//! CTranslate2 Whisper → whisper.cpp ggml, in Rust. The layout is the one whisper.cpp's own
//! `convert-pt-to-ggml.py` writes: magic, 11 hyper-parameters, the 80×201 mel filter bank, the
//! byte-level vocabulary, then the tensors (f16 matrices; f32 vectors, conv biases and positional
//! embeddings). A reader for the same layout lets tests compare the result with the original.

use std::collections::BTreeMap;
use std::io::Write;

use super::ct2::{Ct2Model, DType, Variable};

pub const GGML_MAGIC: u32 = 0x6767_6d6c;
const SAMPLE_RATE: f64 = 16_000.0;
const N_FFT: usize = 400;
const N_FREQ: usize = N_FFT / 2 + 1;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("the CTranslate2 model lacks {0}")]
    Missing(String),
    #[error("the CTranslate2 model is not a Whisper model: {0}")]
    NotWhisper(String),
    #[error("{name} is stored as {dtype:?}; only float16/float32/bfloat16 models can be converted")]
    Quantised { name: String, dtype: DType },
    #[error("tokenizer.json: {0}")]
    Tokenizer(String),
    #[error("writing the ggml file failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a whisper.cpp ggml file: {0}")]
    Format(String),
}

/// The eleven integers at the head of a whisper.cpp model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    pub ftype: i32,
}

impl Hparams {
    fn to_array(self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }

    fn from_array(a: [i32; 11]) -> Self {
        Self {
            n_vocab: a[0],
            n_audio_ctx: a[1],
            n_audio_state: a[2],
            n_audio_head: a[3],
            n_audio_layer: a[4],
            n_text_ctx: a[5],
            n_text_state: a[6],
            n_text_head: a[7],
            n_text_layer: a[8],
            n_mels: a[9],
            ftype: a[10],
        }
    }
}

/// Element type of a tensor in the ggml file (0 = f32, 1 = f16, as ggml numbers them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
}

/// Where a ggml tensor's values come from: a CT2 variable, or a block of its rows (fused q/k/v).
struct TensorPlan {
    name: String,
    source: String,
    rows: Option<(usize, usize)>,
    /// Shape as PyTorch writes it (outermost first); ggml stores it reversed.
    shape: Vec<usize>,
    ty: GgmlType,
}

/// More layers than any Whisper has (large has 32); bounds the search for `layer_N`.
const MAX_LAYERS: usize = 128;

fn layer_count(model: &Ct2Model, prefix: &str) -> usize {
    (0..=MAX_LAYERS)
        .take_while(|i| model.names().any(|n| n.starts_with(&format!("{prefix}/layer_{i}/"))))
        .count()
}

fn var<'m>(model: &'m Ct2Model, name: &str) -> Result<&'m Variable, ConvertError> {
    model.get(name).ok_or_else(|| ConvertError::Missing(name.to_owned()))
}

fn int(v: usize) -> Result<i32, ConvertError> {
    i32::try_from(v).map_err(|_| ConvertError::NotWhisper(format!("dimension {v} is too large")))
}

pub fn hparams(model: &Ct2Model) -> Result<Hparams, ConvertError> {
    if model.spec != "WhisperSpec" {
        return Err(ConvertError::NotWhisper(format!("its spec is {}", model.spec)));
    }
    let shape2 = |name: &str| -> Result<(usize, usize), ConvertError> {
        let v = var(model, name)?;
        match v.shape[..] {
            [a, b] | [a, b, _] => Ok((a, b)),
            _ => Err(ConvertError::NotWhisper(format!("{name} has shape {:?}", v.shape))),
        }
    };
    let heads = |name: &str| -> Result<i32, ConvertError> {
        let h = model.scalar_int(name).ok_or_else(|| ConvertError::Missing(name.to_owned()))?;
        i32::try_from(h).map_err(|_| ConvertError::NotWhisper(format!("{name} = {h}")))
    };
    let (n_vocab, n_text_state) = shape2("decoder/embeddings/weight")?;
    let (n_audio_ctx, _) = shape2("encoder/position_encodings/encodings")?;
    let (n_text_ctx, _) = shape2("decoder/position_encodings/encodings")?;
    let (n_audio_state, n_mels) = shape2("encoder/conv1/weight")?;
    Ok(Hparams {
        n_vocab: int(n_vocab)?,
        n_audio_ctx: int(n_audio_ctx)?,
        n_audio_state: int(n_audio_state)?,
        n_audio_head: heads("encoder/num_heads")?,
        n_audio_layer: int(layer_count(model, "encoder"))?,
        n_text_ctx: int(n_text_ctx)?,
        n_text_state: int(n_text_state)?,
        n_text_head: heads("decoder/num_heads")?,
        n_text_layer: int(layer_count(model, "decoder"))?,
        n_mels: int(n_mels)?,
        ftype: 1,
    })
}

/// The name map of `docs/MODELS.md`, as a list of ggml tensors and where each comes from.
fn plan(model: &Ct2Model, hp: &Hparams) -> Result<Vec<TensorPlan>, ConvertError> {
    let mut plans = Vec::new();
    let mut push = |name: String, source: &str, rows: Option<(usize, usize)>| -> Result<(), ConvertError> {
        let v = var(model, source)?;
        if !matches!(v.dtype, DType::F16 | DType::F32 | DType::BF16) {
            return Err(ConvertError::Quantised { name: source.to_owned(), dtype: v.dtype });
        }
        let mut shape = v.shape.clone();
        if let Some((start, end)) = rows {
            if shape.is_empty() || end > shape[0] || start >= end {
                return Err(ConvertError::NotWhisper(format!("{source} has shape {:?}", v.shape)));
            }
            shape[0] = end - start;
        }
        let is_conv_bias = name == "encoder.conv1.bias" || name == "encoder.conv2.bias";
        if is_conv_bias {
            shape.push(1);
        }
        let ty = if shape.len() < 2 || is_conv_bias || name.ends_with("positional_embedding") {
            GgmlType::F32
        } else {
            GgmlType::F16
        };
        plans.push(TensorPlan { name, source: source.to_owned(), rows, shape, ty });
        Ok(())
    };

    push("encoder.positional_embedding".into(), "encoder/position_encodings/encodings", None)?;
    for conv in ["conv1", "conv2"] {
        for p in ["weight", "bias"] {
            push(format!("encoder.{conv}.{p}"), &format!("encoder/{conv}/{p}"), None)?;
        }
    }
    let d = usize::try_from(hp.n_audio_state).unwrap_or_default();
    for l in 0..usize::try_from(hp.n_audio_layer).unwrap_or_default() {
        let src = format!("encoder/layer_{l}");
        let dst = format!("encoder.blocks.{l}");
        self_attention(&mut push, &src, &dst, d)?;
        mlp(&mut push, &src, &dst)?;
    }
    push("encoder.ln_post.weight".into(), "encoder/layer_norm/gamma", None)?;
    push("encoder.ln_post.bias".into(), "encoder/layer_norm/beta", None)?;

    push("decoder.positional_embedding".into(), "decoder/position_encodings/encodings", None)?;
    push("decoder.token_embedding.weight".into(), "decoder/embeddings/weight", None)?;
    let d = usize::try_from(hp.n_text_state).unwrap_or_default();
    for l in 0..usize::try_from(hp.n_text_layer).unwrap_or_default() {
        let src = format!("decoder/layer_{l}");
        let dst = format!("decoder.blocks.{l}");
        self_attention(&mut push, &src, &dst, d)?;
        let x = format!("{src}/attention");
        push(format!("{dst}.cross_attn.query.weight"), &format!("{x}/linear_0/weight"), None)?;
        push(format!("{dst}.cross_attn.query.bias"), &format!("{x}/linear_0/bias"), None)?;
        // linear_1 is k and v fused; whisper has no key bias (CT2's is zeros).
        push(format!("{dst}.cross_attn.key.weight"), &format!("{x}/linear_1/weight"), Some((0, d)))?;
        push(format!("{dst}.cross_attn.value.weight"), &format!("{x}/linear_1/weight"), Some((d, 2 * d)))?;
        push(format!("{dst}.cross_attn.value.bias"), &format!("{x}/linear_1/bias"), Some((d, 2 * d)))?;
        push(format!("{dst}.cross_attn.out.weight"), &format!("{x}/linear_2/weight"), None)?;
        push(format!("{dst}.cross_attn.out.bias"), &format!("{x}/linear_2/bias"), None)?;
        push(format!("{dst}.cross_attn_ln.weight"), &format!("{x}/layer_norm/gamma"), None)?;
        push(format!("{dst}.cross_attn_ln.bias"), &format!("{x}/layer_norm/beta"), None)?;
        mlp(&mut push, &src, &dst)?;
    }
    push("decoder.ln.weight".into(), "decoder/layer_norm/gamma", None)?;
    push("decoder.ln.bias".into(), "decoder/layer_norm/beta", None)?;
    Ok(plans)
}

type Push<'a> = dyn FnMut(String, &str, Option<(usize, usize)>) -> Result<(), ConvertError> + 'a;

fn self_attention(push: &mut Push<'_>, src: &str, dst: &str, d: usize) -> Result<(), ConvertError> {
    let s = format!("{src}/self_attention");
    // linear_0 is q, k and v fused along the output rows.
    push(format!("{dst}.attn.query.weight"), &format!("{s}/linear_0/weight"), Some((0, d)))?;
    push(format!("{dst}.attn.query.bias"), &format!("{s}/linear_0/bias"), Some((0, d)))?;
    push(format!("{dst}.attn.key.weight"), &format!("{s}/linear_0/weight"), Some((d, 2 * d)))?;
    push(format!("{dst}.attn.value.weight"), &format!("{s}/linear_0/weight"), Some((2 * d, 3 * d)))?;
    push(format!("{dst}.attn.value.bias"), &format!("{s}/linear_0/bias"), Some((2 * d, 3 * d)))?;
    push(format!("{dst}.attn.out.weight"), &format!("{s}/linear_1/weight"), None)?;
    push(format!("{dst}.attn.out.bias"), &format!("{s}/linear_1/bias"), None)?;
    push(format!("{dst}.attn_ln.weight"), &format!("{s}/layer_norm/gamma"), None)?;
    push(format!("{dst}.attn_ln.bias"), &format!("{s}/layer_norm/beta"), None)
}

fn mlp(push: &mut Push<'_>, src: &str, dst: &str) -> Result<(), ConvertError> {
    let f = format!("{src}/ffn");
    push(format!("{dst}.mlp.0.weight"), &format!("{f}/linear_0/weight"), None)?;
    push(format!("{dst}.mlp.0.bias"), &format!("{f}/linear_0/bias"), None)?;
    push(format!("{dst}.mlp.2.weight"), &format!("{f}/linear_1/weight"), None)?;
    push(format!("{dst}.mlp.2.bias"), &format!("{f}/linear_1/bias"), None)?;
    push(format!("{dst}.mlp_ln.weight"), &format!("{f}/layer_norm/gamma"), None)?;
    push(format!("{dst}.mlp_ln.bias"), &format!("{f}/layer_norm/beta"), None)
}

/// Slaney-style mel filter bank exactly as librosa builds it with `filters.mel(sr=16000,
/// n_fft=400, n_mels)` (the bank OpenAI ships with Whisper): triangles on the Slaney mel scale,
/// each scaled to unit area. Computed in f64, returned row-major `[n_mels][201]` as f32.
pub fn mel_filters(n_mels: usize) -> Vec<f32> {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    let hz_to_mel = |f: f64| {
        if f >= MIN_LOG_HZ { MIN_LOG_MEL + (f / MIN_LOG_HZ).ln() / logstep } else { f / F_SP }
    };
    let mel_to_hz = |m: f64| {
        if m >= MIN_LOG_MEL { MIN_LOG_HZ * (logstep * (m - MIN_LOG_MEL)).exp() } else { F_SP * m }
    };
    let fft_freqs: Vec<f64> = (0..N_FREQ).map(|k| k as f64 * SAMPLE_RATE / N_FFT as f64).collect();
    let max_mel = hz_to_mel(SAMPLE_RATE / 2.0);
    let mel_f: Vec<f64> =
        (0..n_mels + 2).map(|i| mel_to_hz(max_mel * i as f64 / (n_mels + 1) as f64)).collect();
    let mut weights = Vec::with_capacity(n_mels * N_FREQ);
    for i in 0..n_mels {
        let (lo, mid, hi) = (mel_f[i], mel_f[i + 1], mel_f[i + 2]);
        let enorm = 2.0 / (hi - lo);
        for &f in &fft_freqs {
            let lower = (f - lo) / (mid - lo);
            let upper = (hi - f) / (hi - mid);
            weights.push((lower.min(upper).max(0.0) * enorm) as f32);
        }
    }
    weights
}

/// GPT-2's reversible map from bytes to printable characters, inverted: char → byte.
fn unicode_to_byte() -> BTreeMap<char, u8> {
    let mut printable: Vec<u32> =
        (u32::from(b'!')..=u32::from(b'~')).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut chars = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    printable
        .into_iter()
        .zip(chars)
        .filter_map(|(b, c)| Some((char::from_u32(c)?, u8::try_from(b).ok()?)))
        .collect()
}

/// The regular (non-special) tokens of a Whisper `tokenizer.json` as raw bytes, by id: every
/// id below `<|endoftext|>`, which is where whisper.cpp's vocabulary section stops.
pub fn vocabulary(tokenizer_json: &[u8]) -> Result<Vec<Vec<u8>>, ConvertError> {
    let json: serde_json::Value =
        serde_json::from_slice(tokenizer_json).map_err(|e| ConvertError::Tokenizer(e.to_string()))?;
    let vocab = json
        .pointer("/model/vocab")
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| ConvertError::Tokenizer("no model.vocab object".into()))?;
    let eot_in_added = json.get("added_tokens").and_then(|a| a.as_array()).and_then(|a| {
        a.iter()
            .find(|t| t.get("content").and_then(|c| c.as_str()) == Some("<|endoftext|>"))
            .and_then(|t| t.get("id")?.as_u64())
    });
    let eot = eot_in_added
        .or_else(|| vocab.get("<|endoftext|>").and_then(serde_json::Value::as_u64))
        .ok_or_else(|| ConvertError::Tokenizer("no <|endoftext|> token".into()))?;
    let eot = usize::try_from(eot).map_err(|_| ConvertError::Tokenizer("bad id".into()))?;
    if eot > vocab.len() {
        return Err(ConvertError::Tokenizer(format!(
            "<|endoftext|> is {eot} but the vocabulary has {} entries",
            vocab.len()
        )));
    }
    let decode = unicode_to_byte();
    let mut tokens: Vec<Option<Vec<u8>>> = vec![None; eot];
    for (text, id) in vocab {
        let Some(id) = id.as_u64().and_then(|i| usize::try_from(i).ok()) else {
            return Err(ConvertError::Tokenizer(format!("token {text:?} has no integer id")));
        };
        if id < eot {
            let bytes = text
                .chars()
                .map(|c| decode.get(&c).copied())
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| ConvertError::Tokenizer(format!("token {id} is not byte-level BPE")))?;
            tokens[id] = Some(bytes);
        }
    }
    tokens
        .into_iter()
        .enumerate()
        .map(|(id, t)| t.ok_or_else(|| ConvertError::Tokenizer(format!("token id {id} is missing"))))
        .collect()
}

fn tensor_bytes(model: &Ct2Model, plan: &TensorPlan) -> Result<Vec<u8>, ConvertError> {
    let v = var(model, &plan.source)?;
    let mut values = model
        .to_f32(v)
        .ok_or_else(|| ConvertError::Quantised { name: plan.source.clone(), dtype: v.dtype })?;
    if let Some((start, end)) = plan.rows {
        let row: usize = v.shape[1..].iter().product();
        values = values[start * row..end * row].to_vec();
    }
    let mut out = Vec::with_capacity(values.len() * 4);
    match plan.ty {
        GgmlType::F32 => values.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        GgmlType::F16 => {
            for x in &values {
                out.extend_from_slice(&half::f16::from_f32(*x).to_le_bytes());
            }
        }
    }
    Ok(out)
}

/// Writes the ggml file for a CTranslate2 Whisper model and its `tokenizer.json`. Weight
/// matrices are f16: whisper.cpp's convolution kernels require f16 (an all-f32 file aborts in
/// `im2col`), so f16 is the one layout worth writing.
pub fn convert(
    model: &Ct2Model,
    tokenizer_json: &[u8],
    out: &mut dyn Write,
) -> Result<Hparams, ConvertError> {
    let hp = hparams(model)?;
    let plans = plan(model, &hp)?;
    let vocab = vocabulary(tokenizer_json)?;
    let i32s = |out: &mut dyn Write, xs: &[i32]| -> std::io::Result<()> {
        xs.iter().try_for_each(|x| out.write_all(&x.to_le_bytes()))
    };
    out.write_all(&GGML_MAGIC.to_le_bytes())?;
    i32s(out, &hp.to_array())?;
    let n_mels = usize::try_from(hp.n_mels).unwrap_or_default();
    i32s(out, &[hp.n_mels, int(N_FREQ)?])?;
    for w in mel_filters(n_mels) {
        out.write_all(&w.to_le_bytes())?;
    }
    i32s(out, &[int(vocab.len())?])?;
    for token in &vocab {
        i32s(out, &[int(token.len())?])?;
        out.write_all(token)?;
    }
    for plan in &plans {
        let ty = match plan.ty {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
        };
        i32s(out, &[int(plan.shape.len())?, int(plan.name.len())?, ty])?;
        for &dim in plan.shape.iter().rev() {
            i32s(out, &[int(dim)?])?;
        }
        out.write_all(plan.name.as_bytes())?;
        out.write_all(&tensor_bytes(model, plan)?)?;
    }
    out.flush()?;
    Ok(hp)
}

/// A ggml Whisper file read back: hyper-parameters, filters, vocabulary and tensors (as f32).
#[derive(Debug)]
pub struct GgmlModel {
    pub hparams: Hparams,
    pub mel_filters: Vec<f32>,
    pub vocabulary: Vec<Vec<u8>>,
    /// name → (ggml dims, innermost first; type; values)
    pub tensors: BTreeMap<String, (Vec<usize>, GgmlType, Vec<f32>)>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ConvertError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| ConvertError::Format(format!("truncated at byte {}", self.pos)))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn i32(&mut self) -> Result<i32, ConvertError> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn count(&mut self) -> Result<usize, ConvertError> {
        usize::try_from(self.i32()?).map_err(|_| ConvertError::Format("negative count".into()))
    }

    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, ConvertError> {
        let raw =
            self.take(n.checked_mul(4).ok_or_else(|| ConvertError::Format("size overflows".into()))?)?;
        Ok(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    fn f16s(&mut self, n: usize) -> Result<Vec<f32>, ConvertError> {
        let raw =
            self.take(n.checked_mul(2).ok_or_else(|| ConvertError::Format("size overflows".into()))?)?;
        Ok(raw.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect())
    }
}

/// Reads a whisper.cpp ggml file (f16/f32 tensors only).
pub fn read(bytes: &[u8]) -> Result<GgmlModel, ConvertError> {
    let mut r = Reader { bytes, pos: 0 };
    if r.i32()?.to_le_bytes() != GGML_MAGIC.to_le_bytes() {
        return Err(ConvertError::Format("bad magic".into()));
    }
    let mut a = [0i32; 11];
    for x in &mut a {
        *x = r.i32()?;
    }
    let hparams = Hparams::from_array(a);
    let rows = r.count()?;
    let cols = r.count()?;
    let mel_filters = r.f32s(rows.saturating_mul(cols))?;
    let n_vocab = r.count()?;
    let mut vocabulary = Vec::new();
    for _ in 0..n_vocab {
        let len = r.count()?;
        vocabulary.push(r.take(len)?.to_vec());
    }
    let mut tensors = BTreeMap::new();
    while r.pos < bytes.len() {
        let n_dims = r.count()?;
        if n_dims > 4 {
            return Err(ConvertError::Format(format!("a tensor with {n_dims} dimensions")));
        }
        let name_len = r.count()?;
        let ty = match r.i32()? {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            t => {
                return Err(ConvertError::Format(format!("tensor type {t} not supported")));
            }
        };
        let mut dims = Vec::new();
        for _ in 0..n_dims {
            dims.push(r.count()?);
        }
        let name = String::from_utf8_lossy(r.take(name_len)?).into_owned();
        let count = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| ConvertError::Format(format!("{name} has an impossible shape")))?;
        let values = match ty {
            GgmlType::F32 => r.f32s(count)?,
            GgmlType::F16 => r.f16s(count)?,
        };
        tensors.insert(name, (dims, ty, values));
    }
    Ok(GgmlModel { hparams, mel_filters, vocabulary, tensors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_filters_match_openai_whispers_own_bank() {
        // Reference values read from openai-whisper's `assets/mel_filters.npz` (`mel_80`).
        let f = mel_filters(80);
        assert_eq!(f.len(), 80 * 201);
        let at = |i: usize, j: usize| f[i * 201 + j];
        for (i, j, want) in [
            (0, 1, 0.024_862_595),
            (34, 35, 0.007_420_188_7),
            (72, 145, 0.002_751_024_4),
            (17, 17, 0.019_862_859),
            (51, 66, 0.008_628_835),
            (68, 128, 0.003_226_396_4),
            (79, 199, 0.000_448_759),
        ] {
            assert!((at(i, j) - want).abs() < 1e-7, "({i},{j}): {} vs {want}", at(i, j));
        }
        let sum: f64 = f.iter().map(|&x| f64::from(x)).sum();
        assert!((sum - 1.999_024_092).abs() < 1e-5, "sum {sum}");
        assert_eq!(f.iter().filter(|&&x| x > 0.0).count(), 391);
    }

    #[test]
    fn byte_decoder_covers_all_bytes() {
        let map = unicode_to_byte();
        assert_eq!(map.len(), 256);
        assert_eq!(map[&'Ġ'], b' ');
        assert_eq!(map[&'a'], b'a');
    }
}
