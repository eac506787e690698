//! CLIP proven on a small random CLIP (`tests/fixtures/tiny-clip`, made with PyTorch
//! `transformers` by `scripts/fixtures/tiny_clip.py`, seed 0): image and text embeddings match the
//! reference on the public photographs, preprocessing included.

mod common;

use crossmodal::space::clip::ClipEncoder;

/// The bar. PNGs agree to ~1e-7 (Pillow's fixed-point bicubic is reproduced exactly);
/// the two JPEGs, decoded by different libraries on the two sides, to ~6e-5.
const TOLERANCE: f32 = 1e-4;

fn fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-clip")
}

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture().join("reference.json")).expect("fixture"))
        .expect("JSON")
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number") as f32).collect()
}

fn worst(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn image_embeddings_match_transformers_preprocessing_included() {
    let clip = ClipEncoder::load(&fixture(), &candle_core::Device::Cpu).expect("loads");
    let eval = common::eval_dir();
    let reference = reference();
    let entries = reference["images"].as_array().expect("images");
    assert_eq!(entries.len(), 11);
    let images: Vec<_> = entries
        .iter()
        .map(|e| {
            crossmodal::gallery::load_image(&eval.join(e["file"].as_str().expect("file"))).expect("decodes")
        })
        .collect();
    let ours = clip.embed_images(&images).expect("embeds");
    for (entry, got) in entries.iter().zip(&ours) {
        let file = entry["file"].as_str().expect("file");
        let diff = worst(got.as_slice(), &floats(&entry["embedding"]));
        eprintln!("{file}: {diff:.2e}");
        assert!(diff <= TOLERANCE, "{file}: off by {diff}");
    }
}

#[test]
fn text_embeddings_and_tokens_match_transformers() {
    let clip = ClipEncoder::load(&fixture(), &candle_core::Device::Cpu).expect("loads");
    for entry in reference()["texts"].as_array().expect("texts") {
        let text = entry["text"].as_str().expect("text");
        let ids: Vec<u32> = entry["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|i| u32::try_from(i.as_u64().expect("id")).expect("u32"))
            .collect();
        assert_eq!(clip.token_ids(text).expect("tokens"), ids, "{text}");
        let got = clip.embed_texts(&[text]).expect("embeds");
        let diff = worst(got[0].as_slice(), &floats(&entry["embedding"]));
        assert!(diff <= TOLERANCE, "{text}: off by {diff}");
    }
}
