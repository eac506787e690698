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
//!
//! Then the noisy room: a noise bed plays into the same microphone for the whole session (from
//! before `listen` starts until it ends, or from the middle of it), at an SNR measured against
//! the clips' active speech: a fan (pink noise) at 20 and 10 dB, other voices (babble of public
//! clips that are not the ones spoken) at 10 dB. Per condition: 15 s of the noise alone first
//! (lines it made), then each clip; command clips fired right, read sentences taken as a
//! command, lines per clip, and the latencies.
//!
//! `CROSSMODAL_BENCH_QUIET_ONLY=1`: the quiet room only. `CROSSMODAL_BENCH_ROOM=TEXT`: only the
//! noisy-room conditions whose name holds TEXT ("10 dB", "babble"). With `CROSSMODAL_LOG` set,
//! what `listen` logged is printed after each session (`crossmodal=trace`: each detector frame).

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

/// What `listen` printed for one clip, and when its last line came after the end of its speech.
struct Heard {
    clip: common::Clip,
    lines: Vec<String>,
    latency: Option<f64>,
}

/// Plays each clip into the microphone while `listen ARGS` runs; for each, the seconds from the
/// end of its speech to the last line `listen` printed for it.
fn latencies(mic: &common::pulse::VirtualMic, args: &[&str], clips: &[common::Clip]) -> Vec<(String, f64)> {
    session(mic, args, clips, None, Duration::ZERO)
        .1
        .into_iter()
        .filter_map(|h| h.latency.map(|l| (h.clip.kind, l)))
        .collect()
}

/// A noise bed: `samples` played into the microphone until dropped.
struct Bed(std::process::Child);

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `listen ARGS` hearing `quiet` of the room alone (lines counted), then each clip. `bed`: a
/// WAV played as the room's noise from before listening starts, or (`Some((wav, true))`) from
/// the middle of the clips on.
fn session(
    mic: &common::pulse::VirtualMic,
    args: &[&str],
    clips: &[common::Clip],
    bed: Option<(&std::path::Path, bool)>,
    quiet: Duration,
) -> (usize, Vec<Heard>) {
    let mut noise = bed.filter(|(_, mid)| !mid).map(|(wav, _)| Bed(mic.start_playing(wav).0));
    if noise.is_some() {
        std::thread::sleep(Duration::from_millis(800));
    }
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
    // The room alone: whatever `listen` prints now came from the noise.
    let mut from_noise = 0;
    let until = std::time::Instant::now() + quiet;
    while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
        if let Ok((_, line)) = stdout.recv_timeout(left) {
            eprintln!("  from the noise alone: {line}");
            from_noise += 1;
        }
    }
    let mut out = Vec::new();
    for (i, clip) in clips.iter().enumerate() {
        if i == clips.len() / 2
            && let Some((wav, true)) = bed
        {
            noise = Some(Bed(mic.start_playing(wav).0));
        }
        let samples = crossmodal::audio::decode_file(&clip.path).expect("clip").samples;
        std::thread::sleep(Duration::from_secs(1));
        let began = mic.play(&clip.path);
        let spoken = began + Duration::from_secs_f64(speech_end(&samples));
        // Every line for this clip (a pause inside it makes two utterances): until 4 s of quiet.
        let mut last = None;
        let mut lines = Vec::new();
        while let Ok((at, line)) = stdout.recv_timeout(Duration::from_secs(4)) {
            // `{"settled":N}` says that line N stands (its utterance closed after the detector's
            // hangover): no new words, so not what the person waits for.
            let settled = serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v.as_object().map(|o| o.len() == 1 && o.contains_key("settled")))
                .unwrap_or(false);
            if !settled {
                last = Some(at);
            }
            eprintln!("  {}: {line}", clip.path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
            lines.push(line);
        }
        let latency = last.map(|at| at.duration_since(spoken).as_secs_f64());
        if latency.is_none() {
            eprintln!("  no answer for {}", clip.path.display());
        }
        out.push(Heard { clip: clip.clone(), lines, latency });
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(noise);
    // With `CROSSMODAL_LOG` set, what `listen` logged, after the session's lines.
    if std::env::var_os("CROSSMODAL_LOG").is_some() {
        while let Ok((_, line)) = stderr.try_recv() {
            eprintln!("    | {line}");
        }
    }
    (from_noise, out)
}

/// `median (min–max)` of some seconds, in ms.
fn spread(v: &[f64]) -> String {
    if v.is_empty() {
        return "—".to_owned();
    }
    let (lo, hi) = v.iter().fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
    format!("{:.0} ({:.0}–{:.0})", median(v.to_vec()) * 1000.0, lo * 1000.0, hi * 1000.0)
}

/// The noisy-room table: each condition, lines and commands, through the audio server.
fn noisy_room(
    mic: &common::pulse::VirtualMic,
    clips: &[common::Clip],
    commands: &str,
    figures: &mut serde_json::Map<String, serde_json::Value>,
) {
    let dir = tempfile::tempdir().expect("temp");
    let set = common::eval_command_set();
    let level = clips
        .iter()
        .map(|c| common::active_rms(&crossmodal::audio::decode_file(&c.path).expect("clip").samples))
        .sum::<f32>()
        / clips.len() as f32;
    // Long enough for a whole session: the room alone, then every clip with its waits.
    let len = 16_000 * (15 + clips.len() * 12);
    let sentences: Vec<&str> = clips
        .iter()
        .filter(|c| c.kind == "read-sentence")
        .filter_map(|c| c.path.file_name().and_then(|n| n.to_str()))
        .collect();
    let commands_spoken: Vec<&str> = clips
        .iter()
        .filter(|c| c.kind == "command")
        .filter_map(|c| c.path.file_name().and_then(|n| n.to_str()))
        .collect();
    // Babble is made of other voices than the ones spoken: under the sentences, the command
    // clips' talkers; under the commands, the read sentences'.
    let pink = common::pink(len, 9);
    let babble_lines = common::babble(len, &sentences);
    let babble_commands = common::babble(len, &commands_spoken);
    let conditions: [(&str, [&[f32]; 2], f32, bool); 4] = [
        ("fan (pink) 20 dB", [&pink, &pink], 20.0, false),
        ("fan (pink) 10 dB", [&pink, &pink], 10.0, false),
        ("babble 10 dB", [&babble_lines, &babble_commands], 10.0, false),
        ("fan (pink) 10 dB from mid-session", [&pink, &pink], 10.0, true),
    ];
    println!(
        "\nnoisy room (whisper-tiny.en, the public clips through PulseAudio, the noise playing the whole session)"
    );
    println!(
        "| condition | commands right | sentences taken as a command | lines per sentence | lines from 15 s of noise alone (lines / commands) | end of speech → final line, ms median (range) | → command decision, ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    // `CROSSMODAL_BENCH_ROOM=TEXT`: only the conditions whose name contains TEXT.
    let only = std::env::var("CROSSMODAL_BENCH_ROOM").ok();
    for (name, [for_lines, for_commands], snr, mid) in conditions {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let gain = level * 10f32.powf(-snr / 20.0);
        let bed = |noise: &[f32], file: &str| {
            let wav = dir.path().join(file);
            common::write_wav(&wav, &noise.iter().map(|x| x * gain).collect::<Vec<_>>());
            wav
        };
        let (lines_bed, commands_bed) = (bed(for_lines, "lines.wav"), bed(for_commands, "commands.wav"));
        let quiet = if mid { Duration::ZERO } else { Duration::from_secs(15) };
        eprintln!("{name}: lines");
        let (noise_lines, heard) = session(mic, &["listen", "--json"], clips, Some((&lines_bed, mid)), quiet);
        eprintln!("{name}: commands");
        let (noise_commands, decided) = session(
            mic,
            &["listen", "--json", "--dry-run", "--commands", commands],
            clips,
            Some((&commands_bed, mid)),
            quiet,
        );
        let fired = |h: &Heard| -> Vec<String> {
            h.lines
                .iter()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|v| v["command"].as_str().map(str::to_owned))
                .map(|c| set.commands.iter().find(|k| k.name == c).map_or(c, |k| k.phrases[0].clone()))
                .collect()
        };
        let command_clips: Vec<&Heard> = decided.iter().filter(|h| h.clip.kind == "command").collect();
        let right = command_clips.iter().filter(|h| fired(h) == [h.clip.text.clone()]).count();
        let taken = decided.iter().filter(|h| h.clip.kind == "read-sentence" && !fired(h).is_empty()).count();
        let per_sentence: Vec<usize> = heard
            .iter()
            .filter(|h| h.clip.kind == "read-sentence")
            .map(|h| {
                h.lines
                    .iter()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .filter(|v| {
                        v["replaces"].is_null() && v["text"].as_str().is_some_and(|t| !t.trim().is_empty())
                    })
                    .count()
            })
            .collect();
        let line_ms: Vec<f64> =
            heard.iter().filter(|h| h.clip.kind == "read-sentence").filter_map(|h| h.latency).collect();
        let decision_ms: Vec<f64> = command_clips.iter().filter_map(|h| h.latency).collect();
        let noise_alone = if mid { "—".to_owned() } else { format!("{noise_lines} / {noise_commands}") };
        println!(
            "| {name} | {right}/{} | {taken}/{} | {:?} | {noise_alone} | {} | {} |",
            command_clips.len(),
            sentences.len(),
            per_sentence,
            spread(&line_ms),
            spread(&decision_ms)
        );
        figures.insert(
            format!("noisy room / {name}"),
            serde_json::json!({
                "commands_right": right, "commands": command_clips.len(), "sentences_taken": taken,
                "lines_per_sentence": per_sentence, "noise_alone_lines": noise_lines,
                "noise_alone_commands": noise_commands,
                "line_median_s": median(line_ms.clone()), "decision_median_s": median(decision_ms.clone()),
            }),
        );
    }
}

fn main() {
    let mic = common::pulse::virtual_mic();
    let clips = common::speech_clips();
    let dir = tempfile::tempdir().expect("temp");
    let commands = dir.path().join("commands.toml");
    std::fs::write(&commands, common::eval_command_set().to_toml()).expect("write");
    let commands = commands.to_str().expect("utf-8").to_owned();
    let mut figures = serde_json::Map::new();
    let room_only = std::env::var_os("CROSSMODAL_BENCH_ROOM").is_some();
    for (name, args) in [
        ("final line", vec!["listen", "--json"]),
        ("final line, with partials", vec!["listen", "--json", "--partial"]),
        ("command decision", vec!["listen", "--json", "--dry-run", "--commands", &commands]),
    ] {
        if room_only {
            break;
        }
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
    if std::env::var_os("CROSSMODAL_BENCH_QUIET_ONLY").is_none() {
        noisy_room(&mic, &clips, &commands, &mut figures);
    }
    record::record("live", &serde_json::Value::Object(figures));
}
