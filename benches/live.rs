//! Latency of live listening through a real audio server, from the last spoken sample to what
//! the person gets: the final transcript line (`listen --json`) and a command's decision and
//! action (`listen --commands --json --dry-run`). `PulseAudio`'s null sink is the microphone;
//! each public clip is played into it on its own, and `listen` hears it through cpal, as it
//! hears a person.
//!
//!     cargo bench --bench live         (or `cargo test --release --bench live`)
//!
//! End of speech: the clip's last 30 ms frame within 35 dB of its loudest, on the clock from
//! when `paplay` began (its own start-up, a few tens of ms, counts against crossmodal). tiny.en,
//! 2 threads. The command set is the public set's (`tests/common`): each command clip's text,
//! every card, every rank.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "record.rs"]
mod record;

use std::process::Stdio;
use std::time::Duration;

/// A clip's last loud frame, in seconds from its start.
fn speech_end(samples: &[f32]) -> f64 {
    let frame = 480;
    let levels: Vec<f32> = samples.chunks(frame).map(crossmodal::audio::rms).collect();
    let loudest = levels.iter().copied().fold(0.0f32, f32::max);
    let last = levels.iter().rposition(|&l| l > loudest * 10f32.powf(-35.0 / 20.0)).unwrap_or(0);
    ((last + 1) * frame) as f64 / 16_000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

/// Plays each clip into the microphone while `listen ARGS` runs; for each, the seconds from the
/// end of its speech to the last line `listen` printed for it.
fn latencies(mic: &common::pulse::VirtualMic, args: &[&str], clips: &[common::Clip]) -> Vec<(String, f64)> {
    let config = tempfile::tempdir().expect("temp");
    // Another build (`$CROSSMODAL_BENCH_BIN`, e.g. the last release) runs side by side with this one.
    let mut child = std::env::var_os("CROSSMODAL_BENCH_BIN")
        .map_or_else(common::crossmodal, std::process::Command::new)
        .args(args)
        .env("CROSSMODAL_CONFIG", config.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("listen starts");
    let stdout = common::lines(child.stdout.take().expect("stdout"));
    let stderr = common::lines(child.stderr.take().expect("stderr"));
    while let Ok((_, line)) = stderr.recv_timeout(Duration::from_mins(1)) {
        if line.contains("listening to") {
            break;
        }
    }
    let mut out = Vec::new();
    for clip in clips {
        let samples = crossmodal::audio::decode_file(&clip.path).expect("clip").samples;
        std::thread::sleep(Duration::from_secs(1));
        let began = mic.play(&clip.path);
        let spoken = began + Duration::from_secs_f64(speech_end(&samples));
        // Every line for this clip (a pause inside it makes two utterances): until 4 s of quiet.
        let mut last = None;
        while let Ok((at, line)) = stdout.recv_timeout(Duration::from_secs(4)) {
            last = Some(at);
            eprintln!("  {}: {line}", clip.path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        }
        match last {
            Some(at) => out.push((clip.kind.clone(), at.duration_since(spoken).as_secs_f64())),
            None => eprintln!("  no answer for {}", clip.path.display()),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    out
}

fn main() {
    let mic = common::pulse::virtual_mic();
    let clips = common::speech_clips();
    let dir = tempfile::tempdir().expect("temp");
    let commands = dir.path().join("commands.toml");
    std::fs::write(&commands, common::eval_command_set().to_toml()).expect("write");
    let commands = commands.to_str().expect("utf-8").to_owned();
    let mut figures = serde_json::Map::new();
    for (name, args) in [
        ("final line", vec!["listen", "--json"]),
        ("final line, with partials", vec!["listen", "--json", "--partial"]),
        ("command decision", vec!["listen", "--json", "--dry-run", "--commands", &commands]),
    ] {
        eprintln!("{name}: crossmodal {}", args.join(" "));
        let got = latencies(&mic, &args, &clips);
        for kind in ["command", "read-sentence"] {
            let v: Vec<f64> = got.iter().filter(|(k, _)| k == kind).map(|(_, s)| *s).collect();
            let (lo, hi) = v.iter().fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
            println!(
                "{name}, {kind} clips: median {:.0} ms ({:.0}–{:.0} ms, {} clips)",
                median(v.clone()) * 1000.0,
                lo * 1000.0,
                hi * 1000.0,
                v.len()
            );
            figures.insert(format!("{name} / {kind}"), serde_json::json!({ "median_s": median(v.clone()), "min_s": lo, "max_s": hi, "clips": v.len() }));
        }
    }
    record::record("live", &serde_json::Value::Object(figures));
}
