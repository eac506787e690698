//! Helpers shared by the integration tests: where the real models and the public evaluation set
//! are, and how to run the binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod pulse;

use crossmodal::model_store::{self, ModelSpec, ModelStore};

/// The store the test command fetched into (`$CROSSMODAL_MODELS` or the platform folder).
pub fn store() -> ModelStore {
    ModelStore::from_env().expect("a model store location")
}

/// A model that must be installed; fails with the command that installs it.
pub fn installed(name: &str) -> (&'static ModelSpec, ModelStore) {
    let spec = model_store::spec(name).expect("in the catalogue");
    let store = store();
    assert!(
        store.is_installed(spec),
        "{name} is not installed in {}: run ./test.sh (or `crossmodal models fetch {name}`)",
        store.root().display()
    );
    (spec, store)
}

/// The public evaluation set (`$CROSSMODAL_EVAL`, else ~/.cache/crossmodal-eval).
pub fn eval_dir() -> PathBuf {
    let dir = std::env::var_os("CROSSMODAL_EVAL").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/crossmodal-eval"),
        PathBuf::from,
    );
    assert!(
        dir.join("manifest.json").is_file(),
        "the evaluation set is not in {}: run ./test.sh (or scripts/eval/fetch-public.sh)",
        dir.display()
    );
    dir
}

pub fn crossmodal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_crossmodal"))
}

/// Runs the binary with a given store; returns (exit ok, stdout, stderr).
pub fn run_with_store(store: &Path, args: &[&str]) -> (bool, String, String) {
    let out = crossmodal().env("CROSSMODAL_MODELS", store).args(args).output().expect("binary runs");
    split(&out)
}

pub fn split(out: &Output) -> (bool, String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "the program panicked:\n{stderr}");
    (out.status.success(), stdout, stderr)
}

/// Copies a model's folder into another store.
pub fn copy_model(from: &ModelStore, spec: &ModelSpec, to: &Path) {
    let src = from.model_dir(spec);
    let dst = to.join(spec.name);
    copy_dir(&src, &dst);
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &dst.join(entry.file_name()));
        } else {
            std::fs::copy(&path, dst.join(entry.file_name())).expect("copy");
        }
    }
}

/// Flips every bit of one byte in the middle of a file.
pub fn flip_byte(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(path, bytes).expect("write");
}

/// The voice detector from the test store.
pub fn detector() -> std::sync::Arc<crossmodal::audio::silero::SileroModel> {
    let (_, store) = installed("silero-vad");
    crossmodal::audio::vad::detector_model(&store).expect("the voice detector loads")
}

/// One clip of the public speech set.
#[derive(Debug, Clone)]
pub struct Clip {
    pub path: PathBuf,
    pub text: String,
    pub kind: String,
}

/// The 12 public speech clips with their reference transcripts.
/// The evaluation set's folder and its manifest.
fn manifest() -> (PathBuf, serde_json::Value) {
    let dir = eval_dir();
    let manifest =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest")).expect("JSON");
    (dir, manifest)
}

pub fn speech_clips() -> Vec<Clip> {
    let (dir, manifest) = manifest();
    manifest["speech"]
        .as_array()
        .expect("speech list")
        .iter()
        .map(|c| Clip {
            path: dir.join(c["file"].as_str().expect("file")),
            text: c["text"].as_str().expect("text").to_owned(),
            kind: c["kind"].as_str().expect("kind").to_owned(),
        })
        .collect()
}

/// The public speech clips in noise (`scripts/eval/make-noisy.py`, which `./test.sh` runs):
/// (condition such as `babble-5dB`, clip), in the manifest's order.
pub fn noisy_clips() -> Vec<(String, Clip)> {
    let dir = eval_dir().join("noisy");
    let manifest = dir.join("manifest.json");
    assert!(
        manifest.is_file(),
        "the noisy set is not in {}: run ./test.sh (or scripts/eval/make-noisy.py {})",
        dir.display(),
        eval_dir().display()
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest).expect("manifest")).expect("JSON");
    manifest["speech"]
        .as_array()
        .expect("speech list")
        .iter()
        .map(|c| {
            let condition = format!("{}-{}dB", c["noise"].as_str().expect("noise"), c["snr_db"]);
            let clip = Clip {
                path: dir.join(c["file"].as_str().expect("file")),
                text: c["text"].as_str().expect("text").to_owned(),
                kind: c["kind"].as_str().expect("kind").to_owned(),
            };
            (condition, clip)
        })
        .collect()
}

/// Writes 16 kHz mono samples to a WAV file.
pub fn write_wav(path: &Path, samples: &[f32]) {
    crossmodal::audio::write_wav(path, samples).expect("write wav");
}

/// Public clips one after another with silence around them, written to one WAV; returns it and
/// where each clip's speech begins and ends in it (seconds).
pub fn spaced(dir: &Path, names: &[&str], gap: f64) -> (PathBuf, Vec<(f64, f64)>) {
    let rate = f64::from(crossmodal::audio::SAMPLE_RATE);
    let silence = |secs: f64| vec![0.0f32; (secs * rate) as usize];
    let mut samples = silence(gap);
    let mut speech = Vec::new();
    for name in names {
        let clip =
            crossmodal::audio::decode_file(&eval_dir().join("speech").join(name)).expect("clip").samples;
        let at = samples.len() as f64 / rate;
        // The detector's view of where the clip's speech begins (its pre-roll taken off).
        let begins = crossmodal::audio::vad::speech_start(&detector(), &clip, None)
            .expect("speech in the clip")
            + crossmodal::audio::vad::PRE_ROLL_SECS;
        speech.push((at + begins, at + clip.len() as f64 / rate));
        samples.extend(clip);
        samples.extend(silence(gap));
    }
    let path = dir.join("spaced.wav");
    write_wav(&path, &samples);
    (path, speech)
}

/// Checks live utterance times (seconds since listening began) against where the speech is in
/// the file played (`speech`), the file having begun to play `offset` seconds after listening
/// began. The audio server takes a moment to start a stream, so the absolute times may be up
/// to `SERVER_START` late but never early; the times between utterances must match the file.
pub fn check_times(times: &[(f64, f64)], speech: &[(f64, f64)], offset: f64) {
    const SERVER_START: f64 = 2.0;
    let (first, played) = (times[0].0, speech[0].0 + offset);
    assert!(
        first > played - 0.5 && first < played + SERVER_START,
        "first utterance at {first:.2} s, played at {played:.2} s"
    );
    let delay = first - speech[0].0;
    for ((start, end), (begins, ends)) in times.iter().zip(speech) {
        assert!(
            (start - (begins + delay)).abs() < 0.3,
            "utterance at {start:.2} s, spoken at {:.2} s",
            begins + delay
        );
        assert!(
            (end - (ends + delay)).abs() < 0.8,
            "utterance ends at {end:.2} s, speech at {:.2} s",
            ends + delay
        );
    }
}

/// Whether a transcript heard through an audio server says `reference`, whole: it begins with
/// the reference's first word and ends with its last (their first and last three letters: a lost
/// first or last word fails), and in between at most one word wrong plus one in six (the server
/// resamples twice on the way and tiny.en slips on a word now and then: "he was not an
/// old-sposed young man" is two of eight), or, where it joins or splits words ("coldhearted" for
/// "cold hearted", each a word error), at most 10 % of its letters and digits are wrong. Another
/// sentence is far past either.
pub fn says(transcript: &str, reference: &str) -> bool {
    let (errors, words) = crossmodal::speech::wer::errors(reference, transcript, true);
    let letters = |t: &str| -> Vec<char> {
        crossmodal::speech::wer::normalise(t).concat().chars().filter(|c| c.is_alphanumeric()).collect()
    };
    let (a, b) = (letters(reference), letters(transcript));
    let edge = a.len().min(3);
    if b.len() < edge || a[..edge] != b[..edge] || a[a.len() - edge..] != b[b.len() - edge..] {
        return false;
    }
    if errors <= 1 + words / 6 {
        return true;
    }
    crossmodal::speech::wer::edit_distance(&a, &b) * 10 <= a.len()
}

/// The lines a child process writes, each with the moment it was read.
pub fn lines(
    read: impl std::io::Read + Send + 'static,
) -> std::sync::mpsc::Receiver<(std::time::Instant, String)> {
    use std::io::BufRead as _;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(read).lines().map_while(Result::ok) {
            if tx.send((std::time::Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs a command, sampling its resident memory; returns its output and peak RSS in bytes.
pub fn run_measuring_rss(cmd: &mut Command) -> (Output, u64) {
    let child =
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("spawn");
    let status_path = format!("/proc/{}/status", child.id());
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(s) = std::fs::read_to_string(&status_path) {
                    for key in ["VmHWM:", "VmRSS:"] {
                        if let Some(kb) = s
                            .lines()
                            .find(|l| l.starts_with(key))
                            .and_then(|l| l.split_whitespace().nth(1))
                            .and_then(|v| v.parse::<u64>().ok())
                        {
                            peak.fetch_max(kb * 1024, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
    let out = child.wait_with_output().expect("wait");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().expect("sampler");
    (out, peak.load(std::sync::atomic::Ordering::Relaxed))
}

/// The public set's command set, as shared/eval's README defines it: each command clip's
/// reference text is a command, and so is every card "RANK of SUIT" and every RANK alone from
/// `speech/cards.gram`.
pub fn eval_command_set() -> crossmodal::commands::CommandSet {
    use crossmodal::commands::{CommandSet, grammar};
    let dir = eval_dir();
    let gram = std::fs::read_to_string(dir.join("speech/cards.gram")).expect("cards.gram");
    let ranks = grammar::rule_alternatives(&gram, "rank").expect("ranks");
    let suits = grammar::rule_alternatives(&gram, "suits").expect("suits");
    let mut phrases: Vec<String> =
        speech_clips().into_iter().filter(|c| c.kind == "command").map(|c| c.text).collect();
    for r in &ranks {
        phrases.extend(suits.iter().map(|s| format!("{r} of {s}")));
    }
    phrases.extend(ranks);
    CommandSet::from_phrases(&phrases, "the public set's commands")
}

/// A public photograph and what a person would type to find it.
pub struct Photo {
    pub path: PathBuf,
    pub queries: Vec<String>,
}

pub fn photos() -> Vec<Photo> {
    let (dir, manifest) = manifest();
    manifest["images"]
        .as_array()
        .expect("image list")
        .iter()
        .map(|p| Photo {
            path: dir.join(p["file"].as_str().expect("file")),
            queries: p["queries"]
                .as_array()
                .expect("queries")
                .iter()
                .map(|q| q.as_str().expect("q").to_owned())
                .collect(),
        })
        .collect()
}

/// For each query (in photo order), whether its own photo ranks first among all of them.
pub fn recall_at_1(
    photos: &[Photo],
    images: &[crossmodal::space::Embedding],
    queries: &[crossmodal::space::Embedding],
) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut q = queries.iter();
    for (i, photo) in photos.iter().enumerate() {
        for text in &photo.queries {
            let e = q.next().expect("one embedding per query");
            let best = images
                .iter()
                .enumerate()
                .max_by(|a, b| e.cosine(a.1).total_cmp(&e.cosine(b.1)))
                .map(|(j, _)| j);
            out.push((text.clone(), best == Some(i)));
        }
    }
    out
}

/// What a person might type to find each public recording: paraphrases of what is said in it,
/// not its words (query, the recording's file name). Written for the library's bench and test.
pub const MOMENT_QUERIES: [(&str, &str); 12] = [
    ("how much the brother could sensibly afford to give his family", "librivox_0870.wav"),
    ("a young fellow who was not bad natured", "librivox_0880.wav"),
    ("being selfish and unfeeling is not the same as being wicked", "librivox_0890.wav"),
    ("with a kinder wife he would have been more respected", "librivox_0920.wav"),
    ("he could even have become likeable", "librivox_0930.wav"),
    ("the ten from the club suit", "cards_001.wav"),
    ("a queen of the club suit", "cards_002.wav"),
    ("the seven card of clubs", "cards_003.wav"),
    ("a pair of fives", "cards_004.wav"),
    ("three cards: spades, clubs and hearts", "cards_005.wav"),
    ("move ahead ten metres", "goforward.wav"),
    ("head off someplace and get a thing done", "something.wav"),
];

/// The public command recordings (one spoken command each).
pub const COMMAND_CLIPS: [&str; 7] = [
    "goforward.wav",
    "cards_001.wav",
    "cards_002.wav",
    "cards_003.wav",
    "cards_004.wav",
    "cards_005.wav",
    "something.wav",
];

/// The public read sentences (`kind = "read-sentence"`), by file name.
pub const SENTENCE_CLIPS: [&str; 5] =
    ["librivox_0870.wav", "librivox_0880.wav", "librivox_0890.wav", "librivox_0920.wav", "librivox_0930.wav"];

/// Pink noise (Paul Kellet's filter over a fixed-seed white noise), unit RMS.
pub fn pink(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    let mut white = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    let mut b = [0.0f64; 7];
    let mut out: Vec<f32> = (0..len)
        .map(|_| {
            let w = white();
            b[0] = 0.99886 * b[0] + w * 0.055_517_9;
            b[1] = 0.99332 * b[1] + w * 0.075_075_9;
            b[2] = 0.96900 * b[2] + w * 0.153_852_0;
            b[3] = 0.86650 * b[3] + w * 0.310_485_6;
            b[4] = 0.55000 * b[4] + w * 0.532_952_4;
            b[5] = -0.7616 * b[5] - w * 0.016_898_0;
            let y = b.iter().sum::<f64>() + w * 0.5362;
            b[6] = w * 0.115_926;
            y as f32
        })
        .collect();
    let rms = crossmodal::audio::rms(&out);
    for x in &mut out {
        *x /= rms;
    }
    out
}

/// Babble: four public recordings (never the speech it goes under) summed at equal loudness,
/// each looped from its own offset, unit RMS.
pub fn babble(len: usize, not: &[&str]) -> Vec<f32> {
    let talkers = [
        "librivox_0870.wav",
        "librivox_0890.wav",
        "librivox_0920.wav",
        "librivox_0930.wav",
        "librivox_0880.wav",
        "goforward.wav",
        "cards_001.wav",
        "cards_002.wav",
        "something.wav",
        "cards_003.wav",
        "cards_004.wav",
        "cards_005.wav",
    ];
    let mut out = vec![0.0f32; len];
    for (i, name) in talkers.iter().filter(|t| !not.contains(t)).take(4).enumerate() {
        let voice =
            crossmodal::audio::decode_file(&eval_dir().join("speech").join(name)).expect("clip").samples;
        let level = active_rms(&voice);
        let offset = voice.len() * (i + 1) / 5;
        for (j, x) in out.iter_mut().enumerate() {
            *x += voice[(offset + j) % voice.len()] / level;
        }
    }
    let rms = crossmodal::audio::rms(&out);
    for x in &mut out {
        *x /= rms;
    }
    out
}

/// The RMS of a recording's active speech: its 30 ms frames within 35 dB of the loudest (as
/// `scripts/eval/make-noisy.py` measures SNR).
pub fn active_rms(samples: &[f32]) -> f32 {
    let frames: Vec<f32> = samples.chunks_exact(480).map(crossmodal::audio::rms).collect();
    let loudest = frames.iter().copied().fold(0.0f32, f32::max);
    let active: Vec<f32> = frames.into_iter().filter(|&r| r > loudest * 10f32.powf(-35.0 / 20.0)).collect();
    (active.iter().map(|r| r * r).sum::<f32>() / active.len().max(1) as f32).sqrt()
}

/// The mean active speech level of public clips.
pub fn speech_level(names: &[&str]) -> f32 {
    let dir = eval_dir().join("speech");
    names
        .iter()
        .map(|n| active_rms(&crossmodal::audio::decode_file(&dir.join(n)).expect("clip").samples))
        .sum::<f32>()
        / names.len() as f32
}

/// The clip cut to its speech, as an editor or a key press cuts it: sox removes everything
/// before its first and after its last sample over 1 % of full scale (`silence 1 0.01 1%
/// reverse silence 1 0.01 1% reverse`). Written into `dir` under the same name.
pub fn trimmed(clip: &Path, dir: &Path) -> PathBuf {
    let out = dir.join(clip.file_name().expect("a file name"));
    let status = Command::new("sox")
        .arg(clip)
        .arg(&out)
        .args(["silence", "1", "0.01", "1%", "reverse", "silence", "1", "0.01", "1%", "reverse"])
        .status()
        .expect("sox runs (./test.sh installs it)");
    assert!(status.success(), "sox could not trim {}", clip.display());
    out
}

/// Samples of a WAV file (16 kHz mono after decoding).
pub fn samples(path: &Path) -> Vec<f32> {
    crossmodal::audio::decode_file(path).expect("audio").samples
}

/// The longest run of reference words the transcript lost (deleted or replaced) and the longest
/// run of words it added, from a word alignment (normalised as the WER is): a passage missing or
/// said twice shows as a long run, a misheard word as a run of one.
pub fn longest_gaps(reference: &str, transcript: &str) -> (usize, usize) {
    let r = crossmodal::speech::wer::normalise(reference);
    let h = crossmodal::speech::wer::normalise(transcript);
    // cost[i][j]: edits between r[..i] and h[..j].
    let mut cost = vec![vec![0usize; h.len() + 1]; r.len() + 1];
    for (i, row) in cost.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in cost[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=r.len() {
        for j in 1..=h.len() {
            let sub = cost[i - 1][j - 1] + usize::from(r[i - 1] != h[j - 1]);
            cost[i][j] = sub.min(cost[i - 1][j] + 1).min(cost[i][j - 1] + 1);
        }
    }
    let (mut i, mut j) = (r.len(), h.len());
    let (mut lost, mut added, mut lost_run, mut added_run) = (0, 0, 0, 0);
    while i > 0 || j > 0 {
        if i > 0 && j > 0 && cost[i][j] == cost[i - 1][j - 1] + usize::from(r[i - 1] != h[j - 1]) {
            if r[i - 1] == h[j - 1] {
                (lost_run, added_run) = (0, 0);
            } else {
                lost_run += 1;
                added_run = 0;
            }
            (i, j) = (i - 1, j - 1);
        } else if i > 0 && cost[i][j] == cost[i - 1][j] + 1 {
            lost_run += 1;
            added_run = 0;
            i -= 1;
        } else {
            added_run += 1;
            lost_run = 0;
            j -= 1;
        }
        lost = lost.max(lost_run);
        added = added.max(added_run);
    }
    (lost, added)
}
