//! The image encoders on the public photographs: EfficientNet-Lite0 against a PyTorch forward
//! pass of the same weights (`tests/fixtures/lite0_reference.json`, made by
//! `scripts/fixtures/lite0_reference.py`).

mod common;

use crossmodal::space::image_lite::{self, LiteNet};

/// The bar for the logits.
const TOLERANCE: f32 = 1e-3;
/// JPEGs are decoded by different libraries on the two sides (zune-jpeg in the `image` crate,
/// libjpeg-turbo in Pillow), whose IDCT and chroma upsampling differ by a level here and there;
/// on the two public JPEGs that moves logits by up to ~1.3e-2 (the PNGs agree to ~1e-5).
const JPEG_TOLERANCE: f32 = 3e-2;

#[test]
fn lite0_logits_match_pytorch_on_the_public_photographs() {
    let (spec, store) = common::installed("efficientnet-lite0");
    let net = LiteNet::load(&store.main_path(spec), &candle_core::Device::Cpu).expect("loads");
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lite0_reference.json"))
            .expect("fixture");
    let reference: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let eval = common::eval_dir();
    let entries = reference["images"].as_array().expect("images");
    assert_eq!(entries.len(), 11);
    for entry in entries {
        let file = entry["file"].as_str().expect("file");
        let image = image::open(eval.join(file)).expect("decodes").to_rgb8();
        let input = image_lite::preprocess(&image).expect("preprocess").unsqueeze(0).expect("batch");
        let logits: Vec<f32> =
            net.logits(&input).expect("forward").squeeze(0).expect("row").to_vec1().expect("vec");
        let want: Vec<f32> = entry["logits"]
            .as_array()
            .expect("logits")
            .iter()
            .map(|v| v.as_f64().expect("f") as f32)
            .collect();
        assert_eq!(logits.len(), 1000);
        let worst = want.iter().zip(&logits).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        eprintln!("{file}: worst logit difference {worst:.2e}");
        let jpeg = std::path::Path::new(file).extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg"));
        let bar = if jpeg { JPEG_TOLERANCE } else { TOLERANCE };
        assert!(worst <= bar, "{file}: off by {worst}");
        let top = logits.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i);
        assert_eq!(top, entry["top5"][0][0].as_u64().map(|i| i as usize), "{file}");
    }
}

/// On a GPU the network runs candle's ops instead of the direct CPU loops (`kernels_for`); no
/// GPU is here, so candle's ops run on the CPU and must give what the direct loops give, on a
/// batch of public photographs.
#[test]
fn the_gpu_kernels_give_what_the_cpu_kernels_give() {
    let (spec, store) = common::installed("efficientnet-lite0");
    let net = LiteNet::load(&store.main_path(spec), &candle_core::Device::Cpu).expect("loads");
    let inputs: Vec<candle_core::Tensor> = common::photos()
        .iter()
        .take(2)
        .map(|p| {
            image_lite::preprocess(&image::open(&p.path).expect("decodes").to_rgb8()).expect("preprocess")
        })
        .collect();
    let batch = candle_core::Tensor::stack(&inputs, 0).expect("batch");
    let run = |kernels| -> Vec<Vec<f32>> {
        net.features_with(&batch, kernels).expect("forward").to_vec2().expect("rows")
    };
    let (direct, candle) = (run(image_lite::Kernels::Direct), run(image_lite::Kernels::Candle));
    let worst =
        direct.iter().flatten().zip(candle.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    let scale = direct.iter().flatten().map(|x| x.abs()).fold(0.0, f32::max);
    eprintln!("worst feature difference {worst:.2e} (largest feature {scale:.2})");
    assert!(worst <= 1e-4 * scale.max(1.0), "the kernels disagree by {worst}");
}
