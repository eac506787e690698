//! CLIP (openai/clip-vit-base-patch32 when its weights are installed) through candle: image and
//! text embeddings in CLIP's own space, with CLIP's preprocessing done as Pillow does it
//! (bicubic resampling in 8-bit fixed point), so that vectors match the reference's.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::clip::text_model::{Activation, ClipTextConfig};
use candle_transformers::models::clip::vision_model::ClipVisionConfig;
use candle_transformers::models::clip::{ClipConfig, ClipModel};
use tokenizers::Tokenizer;

use super::{Embedding, SpaceError};

/// CLIP's normalisation of RGB in 0..1 (OpenAI's values).
#[allow(clippy::excessive_precision)] // written as OpenAI publishes them
const MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
#[allow(clippy::excessive_precision)] // written as OpenAI publishes them
const STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_1];

pub struct ClipEncoder {
    model: ClipModel,
    tokenizer: Tokenizer,
    image_size: usize,
    max_tokens: usize,
    device: Device,
}

impl std::fmt::Debug for ClipEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipEncoder").field("image_size", &self.image_size).finish_non_exhaustive()
    }
}

fn field(v: &serde_json::Value, key: &str) -> Result<usize, String> {
    v[key].as_u64().and_then(|x| usize::try_from(x).ok()).ok_or_else(|| format!("config.json has no {key}"))
}

/// candle's configuration from a `transformers` CLIP config.json.
fn config(json: &serde_json::Value) -> Result<ClipConfig, String> {
    let (t, v) = (&json["text_config"], &json["vision_config"]);
    for (part, c) in [("text", t), ("vision", v)] {
        let act = c["hidden_act"].as_str().unwrap_or("quick_gelu");
        if act != "quick_gelu" {
            return Err(format!("{part} activation {act} is not supported (CLIP uses quick_gelu)"));
        }
    }
    let projection = field(json, "projection_dim")?;
    let vision = ClipVisionConfig {
        embed_dim: field(v, "hidden_size")?,
        activation: Activation::QuickGelu,
        intermediate_size: field(v, "intermediate_size")?,
        num_hidden_layers: field(v, "num_hidden_layers")?,
        num_attention_heads: field(v, "num_attention_heads")?,
        projection_dim: projection,
        num_channels: field(v, "num_channels").unwrap_or(3),
        image_size: field(v, "image_size")?,
        patch_size: field(v, "patch_size")?,
    };
    let text = ClipTextConfig {
        vocab_size: field(t, "vocab_size")?,
        embed_dim: field(t, "hidden_size")?,
        activation: Activation::QuickGelu,
        intermediate_size: field(t, "intermediate_size")?,
        max_position_embeddings: field(t, "max_position_embeddings")?,
        pad_with: None,
        num_hidden_layers: field(t, "num_hidden_layers")?,
        num_attention_heads: field(t, "num_attention_heads")?,
        projection_dim: projection,
    };
    let image_size = vision.image_size;
    Ok(ClipConfig {
        text_config: text,
        vision_config: vision,
        logit_scale_init_value: json["logit_scale_init_value"].as_f64().unwrap_or(2.6592) as f32,
        image_size,
    })
}

impl ClipEncoder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from a folder.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, SpaceError> {
        let bad = |what: &str, detail: String| SpaceError::Model { path: dir.join(what), detail };
        let text = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| bad("config.json", e.to_string()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad("config.json", e.to_string()))?;
        let config = config(&json).map_err(|e| bad("config.json", e))?;
        let tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| bad("tokenizer.json", e.to_string()))?;
        let bytes = std::fs::read(dir.join("model.safetensors"))
            .map_err(|e| bad("model.safetensors", e.to_string()))?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, device)
            .map_err(|e| bad("model.safetensors", e.to_string()))?;
        let model = ClipModel::new(vb, &config).map_err(|e| bad("model.safetensors", e.to_string()))?;
        Ok(Self {
            model,
            tokenizer,
            image_size: config.image_size,
            max_tokens: config.text_config.max_position_embeddings,
            device: device.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Token ids as CLIP's tokenizer gives them (start and end markers included), cut to the
    /// model's context with the end marker kept last.
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, SpaceError> {
        let mut ids = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| SpaceError::Encode(e.to_string()))?
            .get_ids()
            .to_vec();
        if ids.len() > self.max_tokens {
            let end = ids.last().copied().unwrap_or_default();
            ids.truncate(self.max_tokens);
            if let Some(last) = ids.last_mut() {
                *last = end;
            }
        }
        Ok(ids)
    }

    /// One unit vector per text. Each runs alone, unpadded: CLIP reads its sentence vector at
    /// the end marker, which padding must not precede.
    pub fn embed_texts<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Embedding>, SpaceError> {
        texts
            .iter()
            .map(|t| {
                let ids = self.token_ids(t.as_ref())?;
                let input = Tensor::new(ids.as_slice(), &self.device)?.unsqueeze(0)?;
                let features = self.model.get_text_features(&input)?;
                Ok(Embedding::normalised(features.squeeze(0)?.to_vec1()?))
            })
            .collect()
    }

    pub fn embed_images(&self, images: &[image::RgbImage]) -> Result<Vec<Embedding>, SpaceError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let inputs = images.iter().map(|i| preprocess(i, self.image_size)).collect::<Result<Vec<_>, _>>()?;
        let batch = Tensor::stack(&inputs, 0)?.to_device(&self.device)?;
        let features: Vec<Vec<f32>> = self.model.get_image_features(&batch)?.to_vec2()?;
        Ok(features.into_iter().map(Embedding::normalised).collect())
    }
}

/// CLIP's preprocessing: shorter side to `size` (bicubic, as Pillow resamples), centre crop
/// `size`×`size`, RGB to 0..1, then (x − mean) / std per channel; planar [3, size, size].
pub fn preprocess(image: &image::RgbImage, size: usize) -> Result<Tensor, SpaceError> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    if w == 0 || h == 0 {
        return Err(SpaceError::Encode("the image is empty".into()));
    }
    let (nw, nh) = if w <= h { (size, (size * h / w).max(size)) } else { ((size * w / h).max(size), size) };
    let resized = pillow_resize(image.as_raw(), w, h, nw, nh);
    let (top, left) = ((nh - size) / 2, (nw - size) / 2);
    let mut out = vec![0f32; 3 * size * size];
    for y in 0..size {
        for x in 0..size {
            let px = &resized[((top + y) * nw + left + x) * 3..((top + y) * nw + left + x) * 3 + 3];
            for c in 0..3 {
                out[c * size * size + y * size + x] = (f32::from(px[c]) / 255.0 - MEAN[c]) / STD[c];
            }
        }
    }
    Ok(Tensor::from_vec(out, (3, size, size), &Device::Cpu)?)
}

/// Pillow's 8-bit fixed-point precision for resampling coefficients.
const PRECISION_BITS: u32 = 32 - 8 - 2;

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// For each output pixel: the first input pixel and fixed-point weights, as Pillow's
/// `precompute_coeffs` and `normalize_coeffs_8bpc` compute them.
fn coefficients(from: usize, to: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = from as f64 / to as f64;
    let filter_scale = scale.max(1.0);
    let support = 2.0 * filter_scale;
    (0..to)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            let lo = ((center - support + 0.5) as i64).max(0) as usize;
            let hi = ((center + support + 0.5) as i64).clamp(0, from as i64) as usize;
            let raw: Vec<f64> = (lo..hi).map(|x| bicubic((x as f64 - center + 0.5) / filter_scale)).collect();
            let sum: f64 = raw.iter().sum();
            let one = f64::from(1u32 << PRECISION_BITS);
            let fixed = raw
                .iter()
                .map(|k| {
                    let k = if sum == 0.0 { *k } else { k / sum };
                    (if k < 0.0 { -0.5 + k * one } else { 0.5 + k * one }) as i32
                })
                .collect();
            (lo, fixed)
        })
        .collect()
}

fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's `Image.resize(…, BICUBIC)` on RGB: a horizontal pass to 8 bits, then a vertical one.
fn pillow_resize(src: &[u8], w: usize, h: usize, nw: usize, nh: usize) -> Vec<u8> {
    let round = 1i64 << (PRECISION_BITS - 1);
    let horizontal: Vec<u8> = if nw == w {
        src.to_vec()
    } else {
        let cols = coefficients(w, nw);
        let mut out = vec![0u8; h * nw * 3];
        for y in 0..h {
            for (x, (lo, k)) in cols.iter().enumerate() {
                for c in 0..3 {
                    let acc = k
                        .iter()
                        .enumerate()
                        .map(|(j, kk)| i64::from(src[(y * w + lo + j) * 3 + c]) * i64::from(*kk))
                        .sum::<i64>();
                    out[(y * nw + x) * 3 + c] = clip8(acc + round);
                }
            }
        }
        out
    };
    if nh == h {
        return horizontal;
    }
    let rows = coefficients(h, nh);
    let mut out = vec![0u8; nh * nw * 3];
    for (y, (lo, k)) in rows.iter().enumerate() {
        for x in 0..nw {
            for c in 0..3 {
                let acc = k
                    .iter()
                    .enumerate()
                    .map(|(j, kk)| i64::from(horizontal[((lo + j) * nw + x) * 3 + c]) * i64::from(*kk))
                    .sum::<i64>();
                out[(y * nw + x) * 3 + c] = clip8(acc + round);
            }
        }
    }
    out
}
