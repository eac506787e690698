//! Live listening through a real audio server: `PulseAudio`'s null sink is the default microphone,
//! `paplay` speaks public recordings into it in real time, and `listen` hears them through cpal
//! exactly as it hears a person (no `--input` shortcut).

mod common;

use std::process::{Child, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// A running `crossmodal` with its output lines, each with the moment it was read.
struct Running {
    child: Child,
    stdout: Receiver<(Instant, String)>,
    stderr: Receiver<(Instant, String)>,
}

impl Running {
    fn start(args: &[&str]) -> Self {
        let mut child = common::crossmodal()
            .args(args)
            .env("CROSSMODAL_CONFIG", tempfile::tempdir().expect("temp").keep())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts");
        let stdout = common::lines(child.stdout.take().expect("stdout"));
        let stderr = common::lines(child.stderr.take().expect("stderr"));
        Self { child, stdout, stderr }
    }

    /// Waits for a line on stderr containing `text`; returns when it came.
    fn wait_stderr(&self, text: &str, limit: Duration) -> Instant {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok((at, line)) if line.contains(text) => return at,
                Ok((_, line)) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("no \"{text}\" on stderr within {limit:?}: {seen:?}");
    }

    /// The next `n` lines of stdout, each with when it came.
    fn stdout_lines(&self, n: usize, limit: Duration) -> Vec<(Instant, String)> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        while got.len() < n {
            let left = deadline.checked_duration_since(Instant::now()).unwrap_or_default();
            match self.stdout.recv_timeout(left) {
                Ok(line) => got.push(line),
                Err(e) => panic!("{} of {n} lines within {limit:?} ({e}): {got:?}", got.len()),
            }
        }
        got
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn listen_transcribes_what_the_microphone_hears_with_its_times() {
    common::installed("whisper-tiny.en");
    let mic = common::pulse::virtual_mic();
    let dir = tempfile::tempdir().expect("temp");
    let (wav, speech) = common::spaced(dir.path(), &["goforward.wav", "librivox_0880.wav"], 1.5);
    let listen = Running::start(&["listen", "--json"]);
    let opened = listen.wait_stderr("listening to", Duration::from_mins(1));
    let played = mic.play(&wav);
    let got = listen.stdout_lines(2, Duration::from_secs(30));
    let offset = played.duration_since(opened).as_secs_f64();
    let expected = ["go forward 10 meters", "he was not an ill disposed young man"];
    let mut times = Vec::new();
    for ((_, line), want) in got.iter().zip(expected) {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
        let text = v["text"].as_str().expect("text");
        assert!(common::says(text, want), "{line}: not \"{want}\"");
        times.push((v["start"].as_f64().expect("start"), v["end"].as_f64().expect("end")));
    }
    common::check_times(&times, &speech, offset);
}

#[test]
fn listen_fires_commands_heard_through_the_microphone() {
    common::installed("whisper-tiny.en");
    common::installed("minilm");
    let mic = common::pulse::virtual_mic();
    let dir = tempfile::tempdir().expect("temp");
    let commands = dir.path().join("commands.toml");
    std::fs::write(
        &commands,
        "[[command]]\nname = \"forward\"\nphrases = [\"go forward ten meters\"]\n\n\
         [[command]]\nname = \"ten of clubs\"\nphrases = [\"ten of clubs\"]\n",
    )
    .expect("write");
    let (wav, _) = common::spaced(dir.path(), &["cards_001.wav", "goforward.wav", "librivox_0930.wav"], 1.5);
    let listen =
        Running::start(&["listen", "--json", "--dry-run", "--commands", commands.to_str().expect("utf-8")]);
    listen.wait_stderr("listening to", Duration::from_mins(1));
    mic.play(&wav);
    let got: Vec<serde_json::Value> = listen
        .stdout_lines(3, Duration::from_secs(30))
        .iter()
        .map(|(_, l)| serde_json::from_str(l).expect("JSON"))
        .collect();
    let commands: Vec<Option<&str>> = got.iter().map(|v| v["command"].as_str()).collect();
    assert_eq!(commands, [Some("ten of clubs"), Some("forward"), None], "{got:?}");
    assert_eq!(got[1]["action"], "print \"forward\"");
}

#[test]
fn ctrl_c_stops_listening_cleanly_and_the_recording_keeps_every_sample() {
    common::installed("whisper-tiny.en");
    let mic = common::pulse::virtual_mic();
    let dir = tempfile::tempdir().expect("temp");
    let record = dir.path().join("heard.wav");
    let mut listen = Running::start(&["listen", "--record", record.to_str().expect("utf-8")]);
    let opened = listen.wait_stderr("listening to", Duration::from_mins(1));
    // The clip ends mid-way through nothing: stop while the last words may still be answered.
    mic.play(&common::eval_dir().join("speech/goforward.wav"));
    let stopped = Instant::now();
    let pid = listen.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().expect("kill").success());
    let status = listen.child.wait().expect("exits");
    assert!(status.success(), "listen ended with {status} after Ctrl+C");
    let printed: Vec<String> = listen.stdout.try_iter().map(|(_, l)| l).collect();
    assert!(printed.iter().any(|l| l.contains("Go forward")), "the utterance was not answered: {printed:?}");
    let heard = crossmodal::audio::decode_file(&record).expect("the recording is a valid WAV");
    let listened = stopped.duration_since(opened).as_secs_f64();
    let kept = heard.samples.len() as f64 / 16_000.0;
    assert!(kept > listened - 0.5, "{kept:.2} s recorded of {listened:.2} s listened");
}
