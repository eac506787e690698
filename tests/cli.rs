//! The command line as a newcomer meets it, through the binary on the real models and the
//! public recordings: one command set shared with the window, output in words, formats taken
//! from file names, wrong input named once and in words.

mod common;

use std::path::Path;
use std::process::Command;

/// The binary with the test store and a config folder of its own (where the window keeps the
/// user's commands).
fn crossmodal(config: &Path) -> Command {
    let mut c = common::crossmodal();
    c.env("CROSSMODAL_MODELS", common::store().root()).env("CROSSMODAL_CONFIG", config);
    c
}

fn run(mut command: Command) -> (bool, String, String) {
    common::split(&command.output().expect("the binary runs"))
}

fn clip(name: &str) -> String {
    common::eval_dir().join("speech").join(name).to_string_lossy().into_owned()
}

const USERS_COMMANDS: &str = r#"[[command]]
name = "forward"
phrases = ["go forward ten meters"]
action = { kind = "clipboard" }

[[command]]
name = "lights"
phrases = ["lights on"]
action = { kind = "run", program = "touch", args = ["/tmp/lights on"] }
"#;

#[test]
fn every_command_use_takes_the_users_set_and_lists_it_in_words() {
    for name in ["whisper-tiny.en", "minilm", "silero-vad"] {
        common::installed(name);
    }
    let config = tempfile::tempdir().expect("temp");
    // No file of the user's yet: the built-in set.
    let (ok, out, err) = run({
        let mut c = crossmodal(config.path());
        c.args(["commands", "check"]);
        c
    });
    assert!(ok, "{err}");
    assert!(out.starts_with("built-in commands.toml: "), "{out}");
    for debug in ["Key {", "Some(", "None", "->"] {
        assert!(!out.contains(debug), "Rust's debug text in the list: {out}");
    }
    assert!(out.contains("next slide: say \"next slide\""), "{out}");

    // The window saves the user's set in the config folder: every command use takes it.
    let file = config.path().join("commands.toml");
    std::fs::write(&file, USERS_COMMANDS).expect("write");
    let (ok, out, err) = run({
        let mut c = crossmodal(config.path());
        c.args(["commands", "check"]);
        c
    });
    assert!(ok, "{err}");
    assert_eq!(
        out,
        format!(
            "{}: 2 commands\n  forward: say \"go forward ten meters\" to copy what was said to the clipboard\n  \
             lights: say \"lights on\" to run touch \"/tmp/lights on\"\n",
            file.display()
        )
    );
    let (ok, out, err) = run({
        let mut c = crossmodal(config.path());
        c.args(["commands", "match", &clip("goforward.wav")]);
        c
    });
    assert!(ok, "{err}");
    assert!(out.contains("command:  forward"), "{out}");
    // `listen --commands` with no file: the same set.
    let (ok, out, err) = run({
        let mut c = crossmodal(config.path());
        c.args(["listen", "--input", &clip("goforward.wav"), "--commands", "--dry-run"]);
        c
    });
    assert!(ok, "{err}");
    assert!(out.contains("forward") && out.contains("clipboard"), "{out}\n{err}");
}

#[test]
fn transcripts_take_their_format_from_the_file_name_and_name_their_files() {
    common::installed("whisper-tiny.en");
    let dir = tempfile::tempdir().expect("temp");
    let srt = dir.path().join("talk.srt");
    let (ok, _, err) = run({
        let mut c = crossmodal(dir.path());
        c.args(["transcribe", &clip("goforward.wav"), "--output"]).arg(&srt);
        c
    });
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&srt).expect("written");
    assert!(text.starts_with("1\n00:00:00,000 --> "), "not SRT: {text}");

    // Several files on stdout: each under its name.
    let (ok, out, err) = run({
        let mut c = crossmodal(dir.path());
        c.args(["transcribe", &clip("goforward.wav"), &clip("cards_001.wav")]);
        c
    });
    assert!(ok, "{err}");
    let first = out.find(&format!("==> {} <==", clip("goforward.wav"))).expect("the first file's name");
    let second = out.find(&format!("==> {} <==", clip("cards_001.wav"))).expect("the second file's name");
    assert!(first < second && out[first..second].contains("10 meters"), "{out}");
}

#[test]
fn wrong_input_is_named_once_in_words() {
    common::installed("whisper-tiny.en");
    let dir = tempfile::tempdir().expect("temp");
    // A model that is not a Whisper model: the Whisper models are listed, not every model.
    for model in ["large", "minilm"] {
        let (ok, _, err) = run({
            let mut c = crossmodal(dir.path());
            c.args(["transcribe", "--model", model, &clip("goforward.wav")]);
            c
        });
        assert!(!ok);
        assert!(err.contains(&format!("no Whisper model is named '{model}'")), "{err}");
        assert!(err.contains("whisper-tiny.en") && !err.contains("clip-vit-b32"), "{err}");
    }
    // A folder that is not there fails (what is there is still added).
    let gallery = dir.path().join("g.sqlite");
    let (ok, out, err) = run({
        let mut c = crossmodal(dir.path());
        c.args(["add", "--gallery"]).arg(&gallery).arg(dir.path().join("no such folder"));
        c
    });
    assert!(!ok, "{out}");
    assert!(err.contains("no such folder: no such file or folder"), "{err}");
    // A device that does not open: its error, no "0 utterances heard" before it.
    let (ok, _, err) = run({
        let mut c = crossmodal(dir.path());
        c.args(["listen", "--device", "no such microphone"]);
        c
    });
    assert!(!ok);
    assert!(err.contains("no input device named 'no such microphone'"), "{err}");
    assert!(!err.contains("utterances heard"), "{err}");
    // An unknown language: said once, in words, with no whisper.cpp log line.
    let (ok, _, err) = run({
        let mut c = crossmodal(dir.path());
        c.args(["transcribe", "--language", "klingon", &clip("goforward.wav")]);
        c
    });
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("klingon is not a language Whisper knows"), "{err}");
}

#[test]
fn a_file_that_starts_with_speech_is_heard_live_and_one_utterance_is_singular() {
    for name in ["whisper-tiny.en", "silero-vad"] {
        common::installed(name);
    }
    let dir = tempfile::tempdir().expect("temp");
    // cards_003 speaks from its first instant: its words were once learnt as the room's noise.
    let (ok, out, err) = run({
        let mut c = crossmodal(dir.path());
        c.args(["listen", "--input", &clip("cards_003.wav")]);
        c
    });
    assert!(ok, "{err}");
    assert!(out.to_lowercase().contains("of clubs"), "{out}");
    assert!(err.contains("1 utterance heard, 1 answered"), "{err}");
    // A line shown at the pause that then stands answers its utterance too (this one said
    // "0 answered" under its line).
    let (ok, out, err) = run({
        let mut c = crossmodal(dir.path());
        c.args(["listen", "--input", &clip("something.wav")]);
        c
    });
    assert!(ok, "{err}");
    assert!(out.to_lowercase().contains("somewhere"), "{out}");
    assert!(err.contains("1 utterance heard, 1 answered"), "{err}");
}

/// A second null sink for a test, unloaded when dropped.
struct SecondSink(String);

impl SecondSink {
    fn load(name: &str, description: &str) -> Self {
        let out = Command::new("pactl")
            .args(["load-module", "module-null-sink", &format!("sink_name={name}")])
            .arg(format!("sink_properties=device.description={description}"))
            .output()
            .expect("pactl runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        Self(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

impl Drop for SecondSink {
    fn drop(&mut self) {
        let _ = Command::new("pactl").args(["unload-module", &self.0]).status();
    }
}

#[test]
fn devices_are_listed_as_a_person_knows_them_and_open_by_the_name_shown() {
    let mic = common::pulse::virtual_mic();
    let _other = SecondSink::load("crossmodal_other", "Other");
    let dir = tempfile::tempdir().expect("temp");
    let (ok, out, err) = run({
        let mut c = crossmodal(dir.path());
        c.arg("devices");
        c
    });
    assert!(ok, "{err}");
    // The sound server's sources first, by the names its settings show, the default first.
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"pulse:virt.monitor (default): Monitor of Null Output"), "{out}");
    assert!(lines.contains(&"pulse:crossmodal_other.monitor: Monitor of Other"), "{out}");
    assert_eq!(lines.iter().filter(|l| l.contains("(default)")).count(), 1, "{out}");
    assert!(out.lines().any(|l| l == "pulse: PulseAudio Sound Server"), "{out}");
    for plugin in ["Rate Converter", "Discard all samples", "null"] {
        assert!(!out.contains(plugin), "an ALSA plugin is listed as a microphone: {out}");
    }
    // The name before the colon is what --device takes.
    let mut child = crossmodal(dir.path())
        .args(["listen", "--device", "pulse"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut err = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut err, &mut line).expect("a line");
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("listening to "), "--device pulse did not open: {line}");

    // One source of the server, by what it is called: only what it hears is heard, while
    // something else plays into the default.
    common::installed("whisper-tiny.en");
    let mut listen = crossmodal(dir.path())
        .args(["listen", "--json", "--device", "Monitor of Other"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let out = common::lines(listen.stdout.take().expect("stdout"));
    let err = common::lines(listen.stderr.take().expect("stderr"));
    let (_, opened) = err.recv_timeout(std::time::Duration::from_mins(1)).expect("a line");
    assert_eq!(opened, "listening to Monitor of Other (Ctrl+C stops)");
    let mut other = Command::new("paplay")
        .args(["-d", "crossmodal_other", &clip("goforward.wav")])
        .spawn()
        .expect("paplay");
    mic.play(Path::new(&clip("librivox_0880.wav")));
    assert!(other.wait().expect("paplay").success());
    let (_, line) = out.recv_timeout(std::time::Duration::from_secs(20)).expect("a line");
    let _ = Command::new("kill").args(["-INT", &listen.id().to_string()]).status();
    let _ = listen.wait();
    let text = serde_json::from_str::<serde_json::Value>(&line).expect("JSON")["text"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(common::says(&text, "go forward ten meters"), "{line}");
    let rest: Vec<String> = out.try_iter().map(|(_, l)| l).filter(|l| l.contains("text")).collect();
    assert!(rest.is_empty(), "the default source was heard too: {rest:?}");
}
