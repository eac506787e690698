//! Images on the public photographs: the lite encoder's retrieval recall@1 for every setting of
//! ConSE (top-T classes, class-name prompt) — how the defaults were chosen — and its throughput.
//!
//!     cargo bench --bench images

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "record.rs"]
mod record;

use std::fmt::Write as _;
use std::time::Instant;

use crossmodal::model_store::{self, ModelStore};
use crossmodal::space::TextEncoder;
use crossmodal::space::conse::{ConseSettings, LiteImageEncoder};
use crossmodal::space::image_lite::{self, LiteNet};

fn main() {
    let store = ModelStore::from_env().expect("store");
    let device = candle_core::Device::Cpu;
    let minilm = model_store::spec("minilm").expect("spec");
    let text = TextEncoder::load(&store.model_dir(minilm), &device).expect("minilm");
    let lite = model_store::spec("efficientnet-lite0").expect("spec");
    let weights = store.open_checked(lite).expect("efficientnet-lite0 installed");
    let photos = common::photos();
    let images: Vec<image::RgbImage> =
        photos.iter().map(|p| image::open(&p.path).expect("decodes").to_rgb8()).collect();
    let queries: Vec<String> = photos.iter().flat_map(|p| p.queries.clone()).collect();
    let query_vectors = text.embed(&queries).expect("queries");
    println!("recall@1 over {} queries, {} photographs", queries.len(), photos.len());
    println!();
    println!("| prompt | T=1 | T=3 | T=5 | T=10 | T=20 | T=50 | T=1000 |");
    println!("|---|---|---|---|---|---|---|---|");
    let defaults = ConseSettings::default();
    let mut default_row = Vec::new();
    for prompt in ["{}", "a photo of a {}", "a photo of the {}", "a picture of a {}", "an image showing {}"] {
        let mut row = format!("| `{prompt}` |");
        for top in [1, 3, 5, 10, 20, 50, 1000] {
            let settings = ConseSettings { top, prompt: prompt.to_owned() };
            let net = LiteNet::load(&weights, &device).expect("loads");
            let encoder = LiteImageEncoder::new(net, &text, settings.clone()).expect("encoder");
            let vectors = encoder.embed(&images).expect("embeds");
            let hits = common::recall_at_1(&photos, &vectors, &query_vectors);
            let n = hits.iter().filter(|(_, h)| *h).count();
            let _ = write!(row, " {n} |");
            if settings == defaults {
                default_row = hits;
            }
        }
        println!("{row}");
    }
    println!();
    println!("per query with the defaults ({defaults:?}):");
    for (q, hit) in &default_row {
        println!("  {} {q}", if *hit { "yes" } else { " no" });
    }
    // Throughput: decode + preprocess + forward + mixing, batches of 8 photographs.
    let net = LiteNet::load(&weights, &device).expect("loads");
    let encoder = LiteImageEncoder::new(net, &text, defaults).expect("encoder");
    let paths: Vec<_> = photos.iter().map(|p| p.path.clone()).cycle().take(32).collect();
    let start = Instant::now();
    for chunk in paths.chunks(8) {
        let imgs: Vec<image::RgbImage> =
            chunk.iter().map(|p| image::open(p).expect("decodes").to_rgb8()).collect();
        encoder.embed(&imgs).expect("embeds");
    }
    let secs = start.elapsed().as_secs_f64();
    println!();
    let ours = paths.len() as f64 / secs;
    // The network alone, on inputs already preprocessed.
    let inputs: Vec<_> = paths
        .chunks(8)
        .map(|chunk| {
            let t: Vec<_> = chunk
                .iter()
                .map(|p| {
                    image_lite::preprocess(&image::open(p).expect("decodes").to_rgb8()).expect("preprocess")
                })
                .collect();
            candle_core::Tensor::stack(&t, 0).expect("batch")
        })
        .collect();
    let start = Instant::now();
    for batch in &inputs {
        encoder.probabilities(batch).expect("forward");
    }
    let ours_forward = paths.len() as f64 / start.elapsed().as_secs_f64();
    println!(
        "lite encoder: {ours:.1} images/s (decode + preprocess + encode, batches of 8, {} images)",
        paths.len()
    );
    let python = std::env::var("CROSSMODAL_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench/lite0_throughput.py");
    let threads = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(&weights)
        .arg(threads.to_string())
        .args(&paths)
        .output();
    let mut peer = (None, None);
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let words: Vec<&str> = text.split_whitespace().collect();
            let number = |i: usize| words.get(i).and_then(|n| n.parse::<f64>().ok());
            if let (Some(theirs), Some(theirs_forward)) = (number(1), number(3)) {
                peer = (Some(theirs), Some(theirs_forward));
                println!(
                    "PyTorch, same network and preprocessing: {theirs:.1} images/s ({threads} threads); ratio {:.2}×",
                    ours / theirs
                );
                println!("lite encoder, network alone: {ours_forward:.1} images/s");
                println!(
                    "PyTorch, network alone: {theirs_forward:.1} images/s; ratio {:.2}×",
                    ours_forward / theirs_forward
                );
            }
        }
        _ => println!("PyTorch: not run ({python} has no torch; set CROSSMODAL_PYTHON)"),
    }
    let (ours_search, numpy_search) = query_latency();
    let recall = default_row.iter().filter(|(_, h)| *h).count();
    record::record(
        "images",
        &serde_json::json!({
            "queries": default_row.len(), "recall_at_1": recall, "images": paths.len(), "threads": threads,
            "images_per_s": ours, "torch_images_per_s": peer.0,
            "forward_per_s": ours_forward, "torch_forward_per_s": peer.1,
            "search_ms": ours_search, "numpy_search_ms": numpy_search,
        }),
    );
}

/// Top-10 search over synthetic unit vectors (384-d, as the gallery stores them): median of
/// 20 queries, for this project and for `NumPy` (when the Python has it), in ms by size.
fn query_latency() -> (serde_json::Value, Option<serde_json::Value>) {
    use crossmodal::gallery::VectorIndex;
    use crossmodal::space::Embedding;
    let mut ours = serde_json::Map::new();
    println!();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    for n in [10_000usize, 100_000, 1_000_000] {
        let mut data = Vec::with_capacity(n * 384);
        for _ in 0..n {
            let v = Embedding::normalised((0..384).map(|_| next()).collect());
            data.extend_from_slice(v.as_slice());
        }
        let index = VectorIndex::new(data.chunks_exact(384));
        drop(data);
        let mut times = Vec::new();
        for _ in 0..20 {
            let q = Embedding::normalised((0..384).map(|_| next()).collect());
            let start = Instant::now();
            std::hint::black_box(index.top(&q, 10));
            times.push(start.elapsed());
        }
        times.sort();
        println!(
            "query latency, {n} vectors: median {:.2} ms, worst {:.2} ms",
            times[10].as_secs_f64() * 1e3,
            times[19].as_secs_f64() * 1e3
        );
        ours.insert(n.to_string(), serde_json::json!(times[10].as_secs_f64() * 1e3));
    }
    let python = std::env::var("CROSSMODAL_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench/search_numpy.py");
    let numpy = std::process::Command::new(&python)
        .arg(script)
        .args(["10000", "100000", "1000000"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok());
    match &numpy {
        Some(v) => println!("NumPy (BLAS matrix-vector product + partial sort), median ms: {v}"),
        None => println!("NumPy: not run ({python} has no numpy; set CROSSMODAL_PYTHON)"),
    }
    (serde_json::Value::Object(ours), numpy)
}
