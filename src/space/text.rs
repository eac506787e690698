//! The text encoder: all-MiniLM-L6-v2 (BERT, 6 layers, 384-d; `bert`) on candle, as
//! sentence-transformers runs it: `WordPiece` tokens truncated to 256, mean pooling over the
//! attention mask, L2 normalisation.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use rayon::prelude::*;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::bert::{Batch, Bert};
use super::{Embedding, Kernels, SpaceError, kernels_for};

/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2 (its `sentence_bert_config`):
/// longer input is cut to this many tokens, [CLS] and [SEP] included.
pub const MAX_TOKENS: usize = 256;
/// Sentences per forward pass: padding grows with the batch's longest sentence, so batches stay
/// modest; 32 is sentence-transformers' default too.
const BATCH: usize = 32;

pub struct TextEncoder {
    model: Bert,
    tokenizer: Tokenizer,
    device: Device,
    /// What runs between the matrix products: the fused CPU loops, or candle's ops on a GPU.
    kernels: Kernels,
    /// Identifies the weights (config and weight-file size), for caches of its embeddings.
    fingerprint: String,
}

impl std::fmt::Debug for TextEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextEncoder").field("device", &self.device).finish_non_exhaustive()
    }
}

impl TextEncoder {
    /// Loads from a model folder holding `config.json`, `tokenizer.json` and
    /// `model.safetensors` (the store's `minilm`).
    pub fn load(dir: &Path, device: &Device) -> Result<Self, SpaceError> {
        let bad = |what: &str, detail: String| SpaceError::Model { path: dir.join(what), detail };
        let config_text = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| bad("config.json", e.to_string()))?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|e| bad("config.json", e.to_string()))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| bad("tokenizer.json", e.to_string()))?;
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..TruncationParams::default() }))
            .map_err(|e| bad("tokenizer.json", e.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        let weights = dir.join("model.safetensors");
        // Read, not memory-mapped: mapping is `unsafe` in candle, and 90 MB is cheap to read.
        let bytes = std::fs::read(&weights).map_err(|e| bad("model.safetensors", e.to_string()))?;
        let fingerprint = format!("{}:{}", bytes.len(), config_text.len());
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, device)
            .map_err(|e| bad("model.safetensors", e.to_string()))?;
        let model = Bert::load(vb, &config).map_err(|e| bad("model.safetensors", e.to_string()))?;
        Ok(Self { model, tokenizer, device: device.clone(), kernels: kernels_for(device), fingerprint })
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// One unit vector per sentence, in order.
    pub fn embed<S: AsRef<str> + Sync>(&self, sentences: &[S]) -> Result<Vec<Embedding>, SpaceError> {
        self.embed_with(sentences, self.kernels)
    }

    /// As `embed`, with the kernels named (tests compare the two).
    pub fn embed_with<S: AsRef<str> + Sync>(
        &self,
        sentences: &[S],
        kernels: Kernels,
    ) -> Result<Vec<Embedding>, SpaceError> {
        if kernels == Kernels::Direct && !self.device.is_cpu() {
            return Err(SpaceError::Encode(format!("the CPU kernels cannot run on {:?}", self.device)));
        }
        // Longest first, as sentence-transformers does: a batch of like lengths wastes little
        // on padding. The answers go back in the caller's order.
        let mut order: Vec<usize> = (0..sentences.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(sentences[i].as_ref().len()));
        let run = |batch: &[usize]| {
            let texts: Vec<&str> = batch.iter().map(|&i| sentences[i].as_ref()).collect();
            self.embed_batch(&texts, kernels)
        };
        // On the CPU the batches run side by side, one per core: much of a layer (softmax,
        // layer norm, GELU, the small products) runs on one thread at a time inside candle, so
        // one batch alone leaves the other cores idle. The work is the same. A GPU takes them in
        // turn.
        let done: Vec<Vec<Embedding>> = if self.device.is_cpu() {
            order.par_chunks(BATCH).map(run).collect::<Result<_, _>>()?
        } else {
            order.chunks(BATCH).map(run).collect::<Result<_, _>>()?
        };
        let mut out: Vec<Option<Embedding>> = vec![None; sentences.len()];
        for (&i, e) in order.iter().zip(done.into_iter().flatten()) {
            out[i] = Some(e);
        }
        out.into_iter()
            .map(|e| e.ok_or_else(|| SpaceError::Encode("an embedding is missing".into())))
            .collect()
    }

    pub fn embed_one(&self, sentence: &str) -> Result<Embedding, SpaceError> {
        self.embed(&[sentence])?.pop().ok_or_else(|| SpaceError::Encode("no embedding came back".into()))
    }

    fn embed_batch<S: AsRef<str>>(
        &self,
        batch: &[S],
        kernels: Kernels,
    ) -> Result<Vec<Embedding>, SpaceError> {
        let texts: Vec<&str> = batch.iter().map(AsRef::as_ref).collect();
        let encodings =
            self.tokenizer.encode_batch(texts, true).map_err(|e| SpaceError::Encode(e.to_string()))?;
        let rows = encodings.len();
        let len = encodings.first().map_or(0, tokenizers::Encoding::len);
        let flat = |f: fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            encodings.iter().flat_map(|e| f(e).iter().copied()).collect()
        };
        let (ids, types, mask) = (
            flat(tokenizers::Encoding::get_ids),
            flat(tokenizers::Encoding::get_type_ids),
            flat(tokenizers::Encoding::get_attention_mask),
        );
        let batch = Batch { ids: &ids, type_ids: &types, mask: &mask, sentences: rows, tokens: len };
        // [rows, len, 384]
        let hidden = self.model.forward(&batch, kernels)?.reshape((rows, len, ()))?;
        // Mean over the real tokens only: [rows, len, 1] mask, summed hidden ÷ token count.
        let mask = Tensor::from_vec(mask, (rows, len, 1), &self.device)?.to_dtype(DType::F32)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::INFINITY)?;
        let mean = summed.broadcast_div(&counts)?;
        let rows: Vec<Vec<f32>> = mean.to_device(&Device::Cpu)?.to_vec2()?;
        Ok(rows.into_iter().map(Embedding::normalised).collect())
    }
}
