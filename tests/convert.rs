//! The Rust CTranslate2 → ggml conversion: tensor for tensor against the CTranslate2 original,
//! byte for byte against the pinned digest, and transcription through whisper.cpp.

mod common;

use crossmodal::model_store::catalogue::{BASE_CONVERTED_SHA256, TINY_EN_CONVERTED_SHA256};
use crossmodal::model_store::ct2::Ct2Model;
use crossmodal::model_store::ggml::{self, GgmlType};
use crossmodal::model_store::sha256_reader;

/// The values of a CT2 variable, or of the block of rows `[start, end)` of it.
fn ct2_values(model: &Ct2Model, name: &str, rows: Option<(usize, usize)>) -> Vec<f32> {
    let var = model.get(name).unwrap_or_else(|| panic!("CT2 lacks {name}"));
    let all = model.to_f32(var).expect("float variable");
    match rows {
        None => all,
        Some((s, e)) => {
            let row: usize = var.shape[1..].iter().product();
            all[s * row..e * row].to_vec()
        }
    }
}

/// A ggml tensor, the CT2 variable it comes from, and the rows of it where fused.
type Source = (String, String, Option<(usize, usize)>);

/// Written from `docs/MODELS.md`'s table, independently of the converter's own map.
fn expected_sources(d: usize, enc_layers: usize, dec_layers: usize) -> Vec<Source> {
    let mut map = vec![
        ("encoder.positional_embedding".to_owned(), "encoder/position_encodings/encodings".to_owned(), None),
        ("decoder.positional_embedding".into(), "decoder/position_encodings/encodings".into(), None),
        ("decoder.token_embedding.weight".into(), "decoder/embeddings/weight".into(), None),
        ("encoder.ln_post.weight".into(), "encoder/layer_norm/gamma".into(), None),
        ("encoder.ln_post.bias".into(), "encoder/layer_norm/beta".into(), None),
        ("decoder.ln.weight".into(), "decoder/layer_norm/gamma".into(), None),
        ("decoder.ln.bias".into(), "decoder/layer_norm/beta".into(), None),
    ];
    for conv in ["conv1", "conv2"] {
        for p in ["weight", "bias"] {
            map.push((format!("encoder.{conv}.{p}"), format!("encoder/{conv}/{p}"), None));
        }
    }
    let blocks = (0..enc_layers).map(|l| ("encoder", l)).chain((0..dec_layers).map(|l| ("decoder", l)));
    for (side, l) in blocks {
        let (gg, ct) = (format!("{side}.blocks.{l}"), format!("{side}/layer_{l}"));
        let sa = format!("{ct}/self_attention");
        map.push((format!("{gg}.attn.query.weight"), format!("{sa}/linear_0/weight"), Some((0, d))));
        map.push((format!("{gg}.attn.query.bias"), format!("{sa}/linear_0/bias"), Some((0, d))));
        map.push((format!("{gg}.attn.key.weight"), format!("{sa}/linear_0/weight"), Some((d, 2 * d))));
        map.push((format!("{gg}.attn.value.weight"), format!("{sa}/linear_0/weight"), Some((2 * d, 3 * d))));
        map.push((format!("{gg}.attn.value.bias"), format!("{sa}/linear_0/bias"), Some((2 * d, 3 * d))));
        for (gpart, cpart) in
            [("attn.out", "self_attention/linear_1"), ("mlp.0", "ffn/linear_0"), ("mlp.2", "ffn/linear_1")]
        {
            map.push((format!("{gg}.{gpart}.weight"), format!("{ct}/{cpart}/weight"), None));
            map.push((format!("{gg}.{gpart}.bias"), format!("{ct}/{cpart}/bias"), None));
        }
        for (gpart, cpart) in [("attn_ln", "self_attention/layer_norm"), ("mlp_ln", "ffn/layer_norm")] {
            map.push((format!("{gg}.{gpart}.weight"), format!("{ct}/{cpart}/gamma"), None));
            map.push((format!("{gg}.{gpart}.bias"), format!("{ct}/{cpart}/beta"), None));
        }
        if side == "decoder" {
            let cross = format!("{ct}/attention");
            map.push((format!("{gg}.cross_attn.query.weight"), format!("{cross}/linear_0/weight"), None));
            map.push((format!("{gg}.cross_attn.query.bias"), format!("{cross}/linear_0/bias"), None));
            map.push((
                format!("{gg}.cross_attn.key.weight"),
                format!("{cross}/linear_1/weight"),
                Some((0, d)),
            ));
            map.push((
                format!("{gg}.cross_attn.value.weight"),
                format!("{cross}/linear_1/weight"),
                Some((d, 2 * d)),
            ));
            map.push((
                format!("{gg}.cross_attn.value.bias"),
                format!("{cross}/linear_1/bias"),
                Some((d, 2 * d)),
            ));
            map.push((format!("{gg}.cross_attn.out.weight"), format!("{cross}/linear_2/weight"), None));
            map.push((format!("{gg}.cross_attn.out.bias"), format!("{cross}/linear_2/bias"), None));
            map.push((format!("{gg}.cross_attn_ln.weight"), format!("{cross}/layer_norm/gamma"), None));
            map.push((format!("{gg}.cross_attn_ln.bias"), format!("{cross}/layer_norm/beta"), None));
        }
    }
    map
}

fn check_conversion(name: &str, want: [i32; 11], n_tokens: usize, pinned: &str) {
    let (spec, store) = common::installed(name);
    let dir = store.model_dir(spec);
    let ct2 = Ct2Model::parse(std::fs::read(dir.join("ct2/model.bin")).expect("CT2 original in the store"))
        .expect("parses");
    let bytes = std::fs::read(store.main_path(spec)).expect("ggml file");
    let model = ggml::read(&bytes).expect("ggml reads back");

    let hp = model.hparams;
    let got = [
        hp.n_vocab,
        hp.n_audio_ctx,
        hp.n_audio_state,
        hp.n_audio_head,
        hp.n_audio_layer,
        hp.n_text_ctx,
        hp.n_text_state,
        hp.n_text_head,
        hp.n_text_layer,
        hp.n_mels,
        hp.ftype,
    ];
    assert_eq!(got, want);
    assert_eq!(model.vocabulary.len(), n_tokens);
    assert_eq!(model.vocabulary[0], b"!");
    assert_eq!(model.vocabulary[220], b" ");
    assert!(model.vocabulary.iter().any(|t| t == b" the"));
    assert_eq!(model.mel_filters.len(), 80 * 201);

    let d = usize::try_from(hp.n_audio_state).expect("positive");
    let sources = expected_sources(
        d,
        usize::try_from(hp.n_audio_layer).expect("n"),
        usize::try_from(hp.n_text_layer).expect("n"),
    );
    assert_eq!(model.tensors.len(), sources.len(), "tensor count");
    for (gname, cname, rows) in &sources {
        let (dims, ty, values) = model.tensors.get(gname).unwrap_or_else(|| panic!("ggml lacks {gname}"));
        let expected = ct2_values(&ct2, cname, *rows);
        assert_eq!(values.len(), expected.len(), "{gname}: element count");
        assert_eq!(dims.iter().product::<usize>(), expected.len(), "{gname}: dims {dims:?}");
        let want_ty = if dims.len() < 2
            || gname.contains("conv1.bias")
            || gname.contains("conv2.bias")
            || gname.ends_with("positional_embedding")
        {
            GgmlType::F32
        } else {
            GgmlType::F16
        };
        assert_eq!(*ty, want_ty, "{gname}");
        // f16 → f16 and f16 → f32 are both exact.
        assert!(
            values.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{gname} differs from {cname}"
        );
    }
    // The fused key biases that whisper lacks are all zeros in the original, so nothing is lost.
    let zero_k_bias = ct2_values(&ct2, "decoder/layer_0/self_attention/linear_0/bias", Some((d, 2 * d)));
    assert!(zero_k_bias.iter().all(|&x| x == 0.0));
    // conv1 is [d, n_mels, 3] in PyTorch order; ggml lists dims innermost first.
    assert_eq!(model.tensors["encoder.conv1.weight"].0, vec![3, 80, d]);
    assert_eq!(model.tensors["encoder.conv1.bias"].0, vec![1, d]);

    // Converting again gives the very bytes the catalogue pins.
    let tokenizer = std::fs::read(dir.join("ct2/tokenizer.json")).expect("tokenizer");
    let mut again = Vec::new();
    ggml::convert(&ct2, &tokenizer, &mut again).expect("converts");
    assert_eq!(again, bytes, "conversion is deterministic");
    assert_eq!(sha256_reader(&again[..]).expect("hash"), pinned);
}

#[test]
fn tiny_en_matches_its_ctranslate2_original() {
    check_conversion(
        "whisper-tiny.en",
        [51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1],
        50256,
        TINY_EN_CONVERTED_SHA256,
    );
}

#[test]
fn base_matches_its_ctranslate2_original() {
    check_conversion(
        "whisper-base",
        [51865, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1],
        50257,
        BASE_CONVERTED_SHA256,
    );
}

#[test]
fn converted_tiny_en_transcribes_go_forward() {
    common::installed("whisper-tiny.en");
    let wav = common::eval_dir().join("speech/goforward.wav");
    let out = common::crossmodal().args(["transcribe", wav.to_str().expect("utf-8")]).output().expect("runs");
    let (ok, stdout, stderr) = common::split(&out);
    assert!(ok, "{stderr}");
    let text: String =
        stdout.to_lowercase().chars().filter(|c| c.is_alphanumeric() || c.is_whitespace()).collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text == "go forward ten meters" || text == "go forward 10 meters", "got {stdout:?}");
}

#[test]
fn converted_base_loads_as_multilingual_and_transcribes() {
    let (spec, store) = common::installed("whisper-base");
    let whisper = crossmodal::speech::Whisper::load(
        &store.open_checked(spec).expect("valid"),
        false,
        common::detector(),
    )
    .expect("loads");
    assert!(whisper.is_multilingual());
    let audio =
        crossmodal::audio::decode_file(&common::eval_dir().join("speech/something.wav")).expect("wav");
    let t = whisper.transcribe(&audio.samples, &crossmodal::speech::Options::default()).expect("transcribes");
    assert!(t.text.to_lowercase().contains("go somewhere and do something"), "{}", t.text);
}
