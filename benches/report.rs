//! Every figure beside its peer, written to `docs/BENCHMARKS.md`.
//!
//!     CROSSMODAL_PYTHON=<python with the peers> GGML_NATIVE=ON cargo bench --bench report
//!
//! (`GGML_NATIVE=ON`: whisper.cpp built for this CPU, as `./run.sh` builds it; a build folder
//! made with other flags must be cleaned of whisper-rs-sys first, which `scripts/setup.sh`'s
//! `whisper_flags_current` does.)
//!
//! Each bench runs in a process of its own (`cargo bench --bench NAME`, which starts each
//! Python peer in a process of its own) and leaves its figures in `$CROSSMODAL_BENCH_OUT`; this
//! collects them with the machine and the versions. The peers come from PyPI:
//! `pip install faster-whisper pywhispercpp sentence-transformers torch numpy pillow`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const BENCHES: [&str; 4] = ["transcribe", "commands", "images", "gui"];

fn sh(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(|| "?".into(), |o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

fn machine() -> Vec<(String, String)> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let kb: u64 = s.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.0} GiB", kb as f64 / 1_048_576.0))
        })
        .unwrap_or_else(|| "?".into());
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("PRETTY_NAME=")).map(|l| l[12..].trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    vec![
        ("CPU".into(), format!("{cpu}, {cores} cores available")),
        ("memory".into(), memory),
        ("OS".into(), os),
        ("GPU".into(), "none used (CPU build)".into()),
        // A build for this CPU (./run.sh, or GGML_NATIVE=ON) names more than the portable one.
        ("whisper.cpp built for".into(), crossmodal::speech::cpu_kernels().join(" ")),
        ("rustc".into(), sh("rustc", &["--version"])),
    ]
}

/// Versions of the crates that do the work, from Cargo.lock.
fn crate_versions() -> String {
    let lock =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap_or_default();
    let mut out = Vec::new();
    for name in ["whisper-rs", "whisper-rs-sys", "candle-core", "tokenizers", "egui", "rusqlite"] {
        let needle = format!("name = \"{name}\"\nversion = \"");
        if let Some(i) = lock.find(&needle) {
            let rest = &lock[i + needle.len()..];
            out.push(format!("{name} {}", rest.split('"').next().unwrap_or("?")));
        }
    }
    out.join(", ")
}

fn python_versions(python: &str) -> String {
    let code = "import importlib.metadata as m\nfor p in ['faster-whisper','ctranslate2','pywhispercpp','sentence-transformers','torch','numpy']:\n    try: print(p, m.version(p))\n    except Exception: print(p, 'not installed')";
    sh(python, &["-c", code]).lines().collect::<Vec<_>>().join(", ")
}

fn load(dir: &Path, name: &str) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).ok()?).ok()
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn ratio(ours: Option<f64>, theirs: Option<f64>) -> String {
    match (ours, theirs) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "—".into(),
    }
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "—".into(), |x| format!("{x:.digits$}"))
}

fn transcription(md: &mut String, t: &Value) {
    let _ = writeln!(md, "## Transcription\n");
    let _ = writeln!(
        md,
        "Public speech set: {} clips, {:.1} s of audio, {} threads, greedy (one sample per \
         temperature on every side when whisper falls back), language en, model loaded once (load \
         and file decoding not timed). Each system ran {} times, taking turns, and keeps its fastest \
         run (this machine's speed drifts from minute to minute). WER as `shared/eval` normalises it \
         (raw: as written). Peak RSS: a process transcribing the 12 clips. Speed ratio = the peer's \
         wall time ÷ crossmodal's at the same window (above 1: crossmodal is faster). Nothing here \
         was tuned on these clips but the 10 s margin of the cut window (chosen on them).\n",
        t["clips"],
        f(&t["audio_secs"]).unwrap_or(0.0),
        t["threads"],
        t["rounds"]
    );
    let rows = t["rows"].as_array().cloned().unwrap_or_default();
    let table = |md: &mut String, window: &str, extra: Option<&str>| {
        let _ = writeln!(
            md,
            "| model | system | wall ÷ audio | WER | WER raw | peak RSS | crossmodal speed ÷ peer |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|");
        for row in &rows {
            let system = row["system"].as_str().unwrap_or("?");
            let full_peer = extra == Some(system) && row["window"] == "full";
            if row["window"] != window && !full_peer {
                continue;
            }
            let ours = rows
                .iter()
                .find(|r| r["model"] == row["model"] && r["system"] == "crossmodal" && r["window"] == window);
            let speed = match ours {
                Some(o) if o == row => "1 (this project)".into(),
                Some(o) => ratio(f(&row["rtf"]), f(&o["rtf"])),
                None => "—".into(),
            };
            let name =
                if full_peer { format!("{system} (full window: it cannot cut)") } else { system.to_owned() };
            let rss =
                row["peak_rss"].as_u64().map_or_else(|| "—".into(), |b| format!("{} MB", b / 1_000_000));
            let _ = writeln!(
                md,
                "| {} | {name} | {:.3} | {:.2} % | {:.2} % | {rss} | {speed} |",
                row["model"].as_str().unwrap_or("?"),
                f(&row["rtf"]).unwrap_or(0.0),
                f(&row["wer"]).unwrap_or(0.0) * 100.0,
                f(&row["raw_wer"]).unwrap_or(0.0) * 100.0,
            );
        }
    };
    let _ = writeln!(
        md,
        "**Equal work: whisper.cpp's full 30 s encoder window on every side** (what faster-whisper \
         always runs, and whisper.cpp unless told otherwise).\n"
    );
    table(md, "full", None);
    let _ = writeln!(
        md,
        "\n**The window cut to the clip plus 10 s** (crossmodal's default; pywhispercpp with the same \
         `audio_ctx`). faster-whisper cannot cut its window: its fastest setting is shown beside \
         for what the cut is worth to a user.\n"
    );
    table(md, "cut", Some("faster-whisper int8"));
    if let Some(b) = t["ten_minute_peak_rss"].as_u64() {
        let _ = writeln!(
            md,
            "\nPeak RSS of `crossmodal transcribe` on a ten-minute file (tiny.en): {} MB.",
            b / 1_000_000
        );
    }
}

fn commands(md: &mut String, c: &Value) {
    let _ = writeln!(md, "\n## Voice commands\n");
    let _ = writeln!(
        md,
        "{} commands (the public set's command clips and cards grammar); whisper-tiny.en. No \
         command recogniser is installable from the package registries (Picovoice Rhino needs an \
         account key), so these stand alone.\n",
        c["commands"]
    );
    let _ = writeln!(md, "| figure | crossmodal |");
    let _ = writeln!(md, "|---|---|");
    let _ = writeln!(md, "| top-1 accuracy on the command clips | {}/{} |", c["right"], c["command_clips"]);
    let _ = writeln!(md, "| false accepts on read sentences | {}/{} |", c["false_accepts"], c["sentences"]);
    let _ = writeln!(
        md,
        "| end of utterance → decision, 1–3 s utterances ({} clips) | median {} ms, worst {} ms |",
        c["latency_clips"], c["latency_median_ms"], c["latency_worst_ms"]
    );
    let _ = writeln!(md, "\n## Text encoder\n");
    let _ = writeln!(
        md,
        "all-MiniLM-L6-v2, 1024 sentences (command names and transcripts), batches of 32, 2 threads.\n"
    );
    let _ = writeln!(
        md,
        "| crossmodal (candle's products, fused CPU kernels) | the same, candle's ops between the products | \
         sentence-transformers (torch) | crossmodal ÷ peer |"
    );
    let _ = writeln!(md, "|---|---|---|---|");
    let (ours, theirs) = (f(&c["text_sentences_per_s"]), f(&c["sentence_transformers_per_s"]));
    let _ = writeln!(
        md,
        "| {} sentences/s | {} sentences/s | {} sentences/s | {} |",
        num(ours, 0),
        num(f(&c["text_candle_ops_per_s"]), 0),
        num(theirs, 0),
        ratio(ours, theirs)
    );
}

fn images(md: &mut String, i: &Value) {
    let _ = writeln!(md, "\n## Image encoder\n");
    let _ = writeln!(
        md,
        "EfficientNet-Lite0, {} images (the public photographs, cycled), batches of 8, {} threads. \
         The peer is the same network written with torch.nn.functional, given its best settings on a \
         CPU as crossmodal has them: BatchNorm folded into the convolutions, inference mode, \
         Pillow's own resize (`scripts/bench/lite0_throughput.py`). Retrieval recall@1 on the \
         public set (lite encoder + ConSE): {}/{}.\n",
        i["images"], i["threads"], i["recall_at_1"], i["queries"]
    );
    let _ = writeln!(md, "| figure | crossmodal (candle) | PyTorch | crossmodal ÷ peer |");
    let _ = writeln!(md, "|---|---|---|---|");
    let (a, b) = (f(&i["images_per_s"]), f(&i["torch_images_per_s"]));
    let _ = writeln!(
        md,
        "| decode + preprocess + forward | {} images/s | {} images/s | {} |",
        num(a, 1),
        num(b, 1),
        ratio(a, b)
    );
    let (a, b) = (f(&i["forward_per_s"]), f(&i["torch_forward_per_s"]));
    let _ = writeln!(
        md,
        "| forward pass alone | {} images/s | {} images/s | {} |",
        num(a, 1),
        num(b, 1),
        ratio(a, b)
    );
    let _ = writeln!(md, "\n## Search\n");
    let _ = writeln!(
        md,
        "Top-10 over random 384-d unit vectors, median of 20 queries. Peer: NumPy, one BLAS \
         matrix-vector product and a partial sort. Lower is better; the ratio is crossmodal's time ÷ NumPy's.\n"
    );
    let _ = writeln!(md, "| vectors | crossmodal | NumPy | crossmodal ÷ peer |");
    let _ = writeln!(md, "|---|---|---|---|");
    for n in ["10000", "100000", "1000000"] {
        let (a, b) = (f(&i["search_ms"][n]), f(&i["numpy_search_ms"][n]));
        let _ = writeln!(md, "| {n} | {} ms | {} ms | {} |", num(a, 2), num(b, 2), ratio(a, b));
    }
}

fn gui(md: &mut String, g: &Value) {
    let _ = writeln!(md, "\n## Window\n");
    let _ = writeln!(
        md,
        "Frame time while the engine transcribes {:.0} s of speech and indexes {} photographs at \
         the same time (headless, egui_kittest, 60 Hz pacing; GPU rendering not included). No peer.\n",
        f(&g["audio_secs"]).unwrap_or(0.0),
        g["photos"]
    );
    let _ = writeln!(md, "| pass | frames | p50 | p99 | max |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    for (name, key) in [("the app's ui pass", "ui"), ("whole egui step", "step")] {
        let s = &g[key];
        let _ = writeln!(
            md,
            "| {name} | {} | {} ms | {} ms | {} ms |",
            s["frames"],
            num(f(&s["p50"]), 2),
            num(f(&s["p99"]), 2),
            num(f(&s["max"]), 2)
        );
    }
}

/// Milliseconds from start to the first frame of the real window under Xvfb (five runs), when
/// `xvfb-run` is installed.
fn start_up() -> Option<Vec<u128>> {
    let mut runs = Vec::new();
    for _ in 0..5 {
        let out = Command::new("xvfb-run")
            .args(["-a", "-s", "-screen 0 1280x800x24", env!("CARGO_BIN_EXE_crossmodal"), "--first-frame"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let ms = text.lines().find_map(|l| l.strip_prefix("first frame after "))?.trim_end_matches(" ms");
        runs.push(ms.parse().ok()?);
    }
    Some(runs)
}

/// Where the hand-run part of `docs/BENCHMARKS.md` begins.
const KEPT_MARKER: &str = "<!-- Below: run by hand";

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().expect("temp");
    let python = std::env::var("CROSSMODAL_PYTHON").unwrap_or_else(|_| "python3".into());
    for bench in BENCHES {
        eprintln!("== cargo bench --bench {bench}");
        let mut cargo = Command::new(env!("CARGO"));
        // Whisper runs inside some benches: its threads wait as the program's do (src/main.rs).
        if std::env::var_os("OMP_WAIT_POLICY").is_none() && std::env::var_os("GOMP_SPINCOUNT").is_none() {
            cargo.env("GOMP_SPINCOUNT", "1000");
        }
        // The variables cargo sets for a running bench would make the inner build look
        // different from the outer one and rebuild crates; only the user's own stay.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if (key.starts_with("CARGO_") && key != "CARGO_TARGET_DIR" && key != "CARGO_HOME")
                || key.starts_with("RUSTC")
                || key == "OUT_DIR"
            {
                cargo.env_remove(&*key);
            }
        }
        let status = cargo
            .args(["bench", "--bench", bench])
            .current_dir(root)
            .env("CROSSMODAL_BENCH_OUT", out.path())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("{bench}: the bench failed; its section is left out");
        }
    }
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `CROSSMODAL_PYTHON=<python with the peers> GGML_NATIVE=ON cargo bench --bench \
         report` (whisper.cpp built for this CPU, as `./run.sh` builds it; without `GGML_NATIVE=ON`, \
         the portable build; each bench and each peer in a process of its own; the peers from PyPI: \
         `pip install faster-whisper pywhispercpp sentence-transformers torch numpy pillow`). One \
         bench alone: `cargo bench --bench transcribe|commands|images|gui`.\n"
    );
    let _ = writeln!(md, "| machine | |\n|---|---|");
    for (k, v) in machine() {
        let _ = writeln!(md, "| {k} | {v} |");
    }
    let _ = writeln!(md, "| crates | {} |", crate_versions());
    let _ = writeln!(md, "| peers | {} |", python_versions(&python));
    let _ = writeln!(md, "| date | {} |\n", sh("date", &["-u", "+%Y-%m-%d"]));
    if let Some(t) = load(out.path(), "transcribe") {
        transcription(&mut md, &t);
    }
    if let Some(c) = load(out.path(), "commands") {
        commands(&mut md, &c);
    }
    if let Some(i) = load(out.path(), "images") {
        images(&mut md, &i);
    }
    if let Some(g) = load(out.path(), "gui") {
        gui(&mut md, &g);
    }
    if let Some(runs) = start_up() {
        let shown: Vec<String> = runs.iter().map(|ms| format!("{ms} ms")).collect();
        let _ = writeln!(
            md,
            "\nStart-up to the first frame of the real window (`xvfb-run -a crossmodal --first-frame`, \
             release build, five runs; the models load after it, on the engine thread): {}.",
            shown.join(", ")
        );
    }
    let path = root.join("docs/BENCHMARKS.md");
    std::fs::create_dir_all(root.join("docs")).expect("docs folder");
    // Figures from benches that need a real audio server or display (live latency, dictation)
    // are written below the marker with their commands; they are kept as they are.
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    if let Some(at) = old.find(KEPT_MARKER) {
        md.push('\n');
        md.push_str(&old[at..]);
    }
    std::fs::write(&path, md).expect("write docs/BENCHMARKS.md");
    println!("wrote {}", path.display());
}
