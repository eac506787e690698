//! The text encoder against sentence-transformers' own embeddings of the same sentences
//! (`tests/fixtures/minilm_reference.json`, made by `scripts/fixtures/minilm_reference.py`).

mod common;

use crossmodal::space::{Kernels, TextEncoder};

/// The bar: every component within 1e-4 of sentence-transformers.
const TOLERANCE: f32 = 1e-4;

fn encoder() -> TextEncoder {
    let (spec, store) = common::installed("minilm");
    TextEncoder::load(&store.model_dir(spec), &candle_core::Device::Cpu).expect("minilm loads")
}

fn reference() -> Vec<(String, Vec<f32>)> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/minilm_reference.json"))
            .expect("fixture");
    let json: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
    json["sentences"]
        .as_array()
        .expect("sentences")
        .iter()
        .map(|s| {
            let e = s["embedding"].as_array().expect("embedding");
            (
                s["text"].as_str().expect("text").to_owned(),
                e.iter().map(|x| x.as_f64().expect("f") as f32).collect(),
            )
        })
        .collect()
}

/// Both kernels: the fused CPU loops (what the CPU runs) and candle's ops (what a GPU runs).
#[test]
fn embeddings_match_sentence_transformers() {
    let encoder = encoder();
    let reference = reference();
    assert!(reference.len() >= 10);
    let texts: Vec<&str> = reference.iter().map(|(t, _)| t.as_str()).collect();
    // All at once (one padded batch) and one by one (no padding): both must match.
    let direct = encoder.embed_with(&texts, Kernels::Direct).expect("embeds");
    let candle = encoder.embed_with(&texts, Kernels::Candle).expect("embeds");
    for (((text, want), got), by_candle) in reference.iter().zip(&direct).zip(&candle) {
        let single = encoder.embed_one(text).expect("embeds");
        for got in [got, by_candle, &single] {
            assert_eq!(got.as_slice().len(), 384);
            let worst = want.iter().zip(got.as_slice()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(worst <= TOLERANCE, "{text:.40?}: off by {worst}");
        }
    }
}

#[test]
fn similar_sentences_are_closer_than_unrelated_ones() {
    let encoder = encoder();
    let e = encoder
        .embed(&["go forward ten meters", "Go forward 10 meters.", "a cup of coffee on a table"])
        .expect("embeds");
    let norm: f32 = e[0].as_slice().iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5);
    assert!(e[0].cosine(&e[1]) > 0.8, "{}", e[0].cosine(&e[1]));
    assert!(e[0].cosine(&e[2]) < 0.3, "{}", e[0].cosine(&e[2]));
}

#[test]
fn a_broken_model_folder_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp");
    let (spec, store) = common::installed("minilm");
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(store.model_dir(spec).join(f), dir.path().join(f)).expect("copy");
    }
    std::fs::write(dir.path().join("model.safetensors"), b"not weights").expect("write");
    let err = TextEncoder::load(dir.path(), &candle_core::Device::Cpu).expect_err("refused");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}
