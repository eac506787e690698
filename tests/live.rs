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

    /// The next `n` lines of stdout, each with when it came (JSON `settled` notes aside).
    fn stdout_lines(&self, n: usize, limit: Duration) -> Vec<(Instant, String)> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        while got.len() < n {
            let left = deadline.checked_duration_since(Instant::now()).unwrap_or_default();
            match self.stdout.recv_timeout(left) {
                Ok((_, line)) if line.starts_with("{\"settled\"") => {}
                Ok(line) => got.push(line),
                Err(e) => panic!("{} of {n} lines within {limit:?} ({e}): {got:?}", got.len()),
            }
        }
        got
    }

    /// Every stdout line that comes within `wait` (for a room with nothing to hear in it).
    fn stdout_for(&self, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stdout.recv_timeout(left) {
                Ok((_, line)) => got.push(line),
                Err(_) => break,
            }
        }
        got
    }

    /// Lets the room be heard for `more` (what comes after the speech: a fan, quiet), then stops
    /// listening as Ctrl+C does and returns every line printed on stdout (JSON `settled` notes
    /// aside). What was said is answered before it exits, however busy the machine: no answer
    /// is judged by when it came.
    fn stop_after(&mut self, more: Duration) -> Vec<String> {
        std::thread::sleep(more);
        let pid = self.child.id().to_string();
        assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().expect("kill").success());
        let status = self.child.wait().expect("exits");
        assert!(status.success(), "listen ended with {status} after Ctrl+C");
        // The output ends when it exits.
        self.stdout.iter().map(|(_, l)| l).filter(|l| !l.starts_with("{\"settled\"")).collect()
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

/// The lines a `listen --json` printed, with revisions applied: a line that replaces another
/// takes its place.
fn final_lines(printed: &[String]) -> Vec<String> {
    let mut lines: Vec<(u64, String)> = Vec::new();
    for l in printed {
        let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
        let Some(text) = v["text"].as_str() else { continue };
        let id = v["id"].as_u64().expect("id");
        match v["replaces"].as_u64().and_then(|r| lines.iter().position(|(i, _)| *i == r)) {
            Some(at) => lines[at] = (id, text.to_owned()),
            None => lines.push((id, text.to_owned())),
        }
    }
    lines.into_iter().map(|(_, t)| t).filter(|t| !t.trim().is_empty()).collect()
}

#[test]
fn in_continuous_fan_noise_each_command_fires_once() {
    common::installed("whisper-tiny.en");
    common::installed("minilm");
    let mic = common::pulse::virtual_mic();
    let dir = tempfile::tempdir().expect("temp");
    let clips: Vec<common::Clip> =
        common::speech_clips().into_iter().filter(|c| c.kind == "command").collect();
    let set = crossmodal::commands::CommandSet::from_phrases(
        &clips.iter().map(|c| c.text.clone()).collect::<Vec<_>>(),
        "test",
    );
    let commands = dir.path().join("commands.toml");
    std::fs::write(&commands, set.to_toml()).expect("write");
    let (wav, speech) = common::spaced(dir.path(), &common::COMMAND_CLIPS, 2.0);
    let secs = speech.last().expect("clips").1 + 15.0;
    let _fan = common::pulse::NoiseBed::start(
        &mic,
        dir.path(),
        &common::pink((secs * 16_000.0) as usize, 5),
        common::speech_level(&common::COMMAND_CLIPS),
        20.0,
    );
    let mut listen =
        Running::start(&["listen", "--json", "--dry-run", "--commands", commands.to_str().expect("utf-8")]);
    listen.wait_stderr("listening to", Duration::from_mins(1));
    std::thread::sleep(Duration::from_secs(2));
    mic.play(&wav);
    // The fan goes on after the speech: nothing more may come of it.
    let printed = listen.stop_after(Duration::from_secs(5));
    let got: Vec<serde_json::Value> =
        printed.iter().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    let heard: Vec<&str> = got.iter().map(|v| v["transcript"].as_str().unwrap_or("")).collect();
    assert_eq!(got.len(), common::COMMAND_CLIPS.len(), "one decision per command in fan noise: {heard:?}");
    for (v, name) in got.iter().zip(common::COMMAND_CLIPS) {
        let text = &clips.iter().find(|c| c.path.ends_with(name)).expect("clip").text;
        let fired = v["command"]
            .as_str()
            .map(|c| set.commands.iter().find(|k| k.name == c).map(|k| k.phrases[0].as_str()));
        assert_eq!(fired, Some(Some(text.as_str())), "{name} in fan noise: {v}");
    }
}

#[test]
fn in_continuous_fan_noise_each_sentence_is_one_line() {
    common::installed("whisper-tiny.en");
    let mic = common::pulse::virtual_mic();
    let dir = tempfile::tempdir().expect("temp");
    let names = ["librivox_0880.wav", "librivox_0930.wav", "librivox_0890.wav"];
    let (wav, speech) = common::spaced(dir.path(), &names, 2.0);
    let secs = speech.last().expect("clips").1 + 15.0;
    let _fan = common::pulse::NoiseBed::start(
        &mic,
        dir.path(),
        &common::pink((secs * 16_000.0) as usize, 9),
        common::speech_level(&names),
        20.0,
    );
    let mut listen = Running::start(&["listen", "--json"]);
    listen.wait_stderr("listening to", Duration::from_mins(1));
    std::thread::sleep(Duration::from_secs(2));
    mic.play(&wav);
    // The fan goes on after the speech: nothing more may come of it.
    let lines = final_lines(&listen.stop_after(Duration::from_secs(5)));
    let clips = common::speech_clips();
    let expected: Vec<&str> = names
        .iter()
        .map(|n| clips.iter().find(|c| c.path.ends_with(n)).expect("clip").text.as_str())
        .collect();
    assert_eq!(lines.len(), names.len(), "one line per sentence in fan noise: {lines:?}");
    for (line, text) in lines.iter().zip(expected) {
        assert!(common::says(line, text), "heard {line:?} for {text:?}");
    }
}

#[test]
fn a_minute_of_noise_alone_gives_no_line() {
    common::installed("whisper-tiny.en");
    let mic = common::pulse::virtual_mic();
    let dir = tempfile::tempdir().expect("temp");
    // Half a minute of other voices (four readers of the public sentences) at the level of 10 dB
    // under speech, from before listening starts (they were taken for a speaker until the room
    // was learnt from them, and made a line), then half a minute of a fan at the same level.
    // Where listening begins in it depends on the machine: `tests/vad.rs` tries every start.
    let half = 35 * 16_000;
    let noise: Vec<f32> = common::babble(half, &[]).into_iter().chain(common::pink(half, 13)).collect();
    let _room = common::pulse::NoiseBed::start(
        &mic,
        dir.path(),
        &noise,
        common::speech_level(&common::COMMAND_CLIPS),
        10.0,
    );
    let listen = Running::start(&["listen", "--json"]);
    listen.wait_stderr("listening to", Duration::from_mins(1));
    let printed = listen.stdout_for(Duration::from_secs(62));
    assert!(printed.is_empty(), "noise alone made lines: {printed:?}");
}

#[test]
fn a_pause_inside_a_phrase_gives_one_line() {
    common::installed("whisper-tiny.en");
    let mic = common::pulse::virtual_mic();
    let dir = tempfile::tempdir().expect("temp");
    let speech = |name: &str| {
        let c = crossmodal::audio::decode_file(&common::eval_dir().join("speech").join(name))
            .expect("clip")
            .samples;
        // The clip's own silence off both ends, so that the pause is the one made here.
        let frames: Vec<f32> = c.chunks(480).map(crossmodal::audio::rms).collect();
        let loud = frames.iter().copied().fold(0.0f32, f32::max) * 0.05;
        let first = frames.iter().position(|&r| r > loud).unwrap_or(0);
        let last = frames.iter().rposition(|&r| r > loud).unwrap_or(frames.len() - 1);
        c[first * 480..((last + 1) * 480).min(c.len())].to_vec()
    };
    let mut phrase = vec![0.0f32; 16_000];
    phrase.extend(speech("cards_001.wav"));
    phrase.extend(vec![0.0f32; 6_400]);
    phrase.extend(speech("cards_003.wav"));
    phrase.extend(vec![0.0f32; 16_000]);
    let wav = dir.path().join("phrase.wav");
    common::write_wav(&wav, &phrase);
    let mut listen = Running::start(&["listen", "--json"]);
    listen.wait_stderr("listening to", Duration::from_mins(1));
    mic.play(&wav);
    let printed = listen.stop_after(Duration::ZERO);
    let lines = final_lines(&printed);
    assert_eq!(lines.len(), 1, "a 400 ms pause split the phrase: {printed:?}");
    // Both halves in the one line, in order (tiny.en hears "clubs" as "close" now and then:
    // the words are not what this checks).
    let words: Vec<String> = lines[0]
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    let ten = words.iter().position(|w| w == "ten" || w == "10");
    let seven = words.iter().position(|w| w == "seven" || w == "7");
    assert!(matches!((ten, seven), (Some(t), Some(s)) if t < s), "heard {lines:?}");
}

#[test]
fn a_transcript_says_its_sentence_with_words_joined_but_not_another_one() {
    let reference = "unless to be rather cold hearted and rather selfish is to be ill disposed";
    // Heard through the server in fan noise (4 word errors of 14, 5 letters of 61).
    assert!(common::says(
        "Unless to be rather coldhearted and rather selfish is to be old-asposed.",
        reference
    ));
    assert!(!common::says("And Mr. John Dashwood had then leisure to consider", reference));
    assert!(!common::says("Unless to be rather cold.", reference));
    // A first or a last word lost is a lost word, whatever the rest.
    assert!(!common::says("To be rather cold hearted and rather selfish is to be ill disposed.", reference));
    assert!(!common::says("Unless to be rather cold hearted and rather selfish is to be ill.", reference));
    assert!(!common::says("Forward 10 meters.", "go forward ten meters"));
    assert!(common::says("Go forward 10 meters.", "go forward ten meters"));
    // tiny.en's usual slip on this sentence, heard through the server.
    assert!(common::says("He was not an old-sposed young man.", "he was not an ill disposed young man"));
}

/// `listen --partial` shows the words of an utterance while it is spoken, short phrases too:
/// two 3 s sentences each get partial words (on stderr, `… words`) with words of their own (a
/// newcomer saw none for 1.5–3 s clips). How soon they come is the live bench's business.
#[test]
fn partial_words_are_shown_for_short_phrases() {
    common::installed("whisper-tiny.en");
    let mic = common::pulse::virtual_mic();
    let dir = tempfile::tempdir().expect("temp");
    let names = ["librivox_0880.wav", "librivox_0930.wav"];
    let (wav, _) = common::spaced(dir.path(), &names, 2.0);
    let mut listen = Running::start(&["listen", "--json", "--partial"]);
    listen.wait_stderr("listening to", Duration::from_mins(1));
    mic.play(&wav);
    let lines = final_lines(&listen.stop_after(Duration::ZERO));
    assert_eq!(lines.len(), 2, "one line per phrase: {lines:?}");
    let partials: Vec<String> = listen
        .stderr
        .iter()
        .filter_map(|(_, l)| l.strip_prefix("… ").map(str::to_owned))
        .filter(|t| !t.trim().is_empty())
        .collect();
    let clips = common::speech_clips();
    for name in names {
        let text = &clips.iter().find(|c| c.path.ends_with(name)).expect("clip").text;
        let own: Vec<String> = crossmodal::speech::wer::normalise(text);
        let shown = partials.iter().any(|p| {
            let words = crossmodal::speech::wer::normalise(p);
            words.iter().filter(|w| own.contains(w)).count() >= 2
        });
        assert!(shown, "no partial words of {text:?}: partials {partials:?}");
    }
}

/// A person who reads on for more than 20 s without a pause (the public read sentences cut to
/// their speech, back to back) in a room with a quiet fan under the whole session: every word
/// comes out, none twice. The room was once learnt from the voice itself 8 s into an utterance,
/// and what followed was lost.
#[test]
fn twenty_seconds_of_speech_without_a_pause_keep_every_word() {
    common::installed("whisper-tiny.en");
    let mic = common::pulse::virtual_mic();
    let dir = tempfile::tempdir().expect("temp");
    let clips = common::speech_clips();
    let mut reading = vec![0.0f32; 16_000];
    let mut reference = Vec::new();
    for name in common::SENTENCE_CLIPS {
        let clip = clips.iter().find(|c| c.path.ends_with(name)).expect("clip");
        reading.extend(common::samples(&common::trimmed(&clip.path, dir.path())));
        reference.push(clip.text.as_str());
    }
    let secs = reading.len() as f64 / 16_000.0;
    assert!(secs > 21.0, "{secs} s");
    let wav = dir.path().join("reading.wav");
    common::write_wav(&wav, &reading);
    let _fan = common::pulse::NoiseBed::start(
        &mic,
        dir.path(),
        &common::pink(((secs + 60.0) * 16_000.0) as usize, 21),
        common::speech_level(&common::SENTENCE_CLIPS),
        30.0,
    );
    let mut listen = Running::start(&["listen", "--json"]);
    listen.wait_stderr("listening to", Duration::from_mins(1));
    mic.play(&wav);
    let heard = final_lines(&listen.stop_after(Duration::ZERO)).join(" ");
    let reference = reference.join(" ");
    let (errors, words) = crossmodal::speech::wer::errors(&reference, &heard, true);
    let (lost, added) = common::longest_gaps(&reference, &heard);
    eprintln!("{errors} errors of {words}; longest run lost {lost}, added {added}: {heard}");
    assert!(lost <= 3 && added <= 3, "a passage lost or said twice: {heard:?}");
    assert!(errors * 8 <= words, "{errors} errors of {words}: {heard:?}");
}
