//! The library of spoken moments and images on the public set, through the CLI: `add` (incremental,
//! damaged files, a killed run), `search --kind`, paraphrased queries over everything at once.

mod common;

use std::path::{Path, PathBuf};

use common::{crossmodal, split};

fn add(paths: &[&Path], gallery: &Path) -> String {
    let out = crossmodal().arg("add").args(paths).arg("--gallery").arg(gallery).output().expect("runs");
    let (ok, stdout, stderr) = split(&out);
    assert!(ok, "{stderr}");
    stdout
}

fn search(query: &str, kind: &str, gallery: &Path) -> Vec<serde_json::Value> {
    let out = crossmodal()
        .args(["search", query, "--json", "--top", "5", "--kind", kind, "--gallery"])
        .arg(gallery)
        .output()
        .expect("runs");
    let (ok, stdout, stderr) = split(&out);
    assert!(ok, "{stderr}");
    serde_json::from_str::<serde_json::Value>(stdout.trim())
        .expect("JSON")
        .as_array()
        .expect("an array")
        .clone()
}

fn file_name(hit: &serde_json::Value) -> String {
    let path = PathBuf::from(hit["path"].as_str().expect("path"));
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn speech_dir() -> PathBuf {
    common::eval_dir().join("speech")
}

#[test]
fn recordings_are_added_incrementally_and_their_moments_found() {
    let dir = tempfile::tempdir().expect("temp");
    let media = dir.path().join("media");
    std::fs::create_dir(&media).expect("mkdir");
    for f in ["goforward.wav", "librivox_0880.wav"] {
        std::fs::copy(speech_dir().join(f), media.join(f)).expect("copy");
    }
    std::fs::copy(common::eval_dir().join("images/coffee.png"), media.join("coffee.png")).expect("copy");
    let gallery = dir.path().join("library.sqlite");
    let first = add(&[&media], &gallery);
    assert!(
        first.contains("added 3, updated 0, renamed 0, unchanged 0, removed 0, failed 0, moments "),
        "{first}"
    );
    let again = add(&[&media], &gallery);
    assert!(
        again.contains("added 0, updated 0, renamed 0, unchanged 3, removed 0, failed 0, moments 0"),
        "{again}"
    );

    let hits = search("move ahead ten metres", "speech", &gallery);
    assert_eq!(file_name(&hits[0]), "goforward.wav", "{hits:?}");
    let top = &hits[0];
    assert_eq!(top["kind"], "speech");
    assert!(top["text"].as_str().expect("text").to_lowercase().contains("forward"), "{top}");
    let (start, end) = (top["start"].as_f64().expect("start"), top["end"].as_f64().expect("end"));
    assert!(start >= 0.0 && end > start && end < 5.0, "{top}");
    assert!(top["score"].as_f64().expect("score") > 0.5, "{top}");
    // Only images with --kind image; both kinds with all, the image first for an image query.
    assert!(search("a cup of coffee", "image", &gallery).iter().all(|h| h["kind"] == "image"));
    let mixed = search("a cup of coffee", "all", &gallery);
    assert_eq!((mixed[0]["kind"].as_str(), file_name(&mixed[0]).as_str()), (Some("image"), "coffee.png"));
    assert!(mixed.iter().any(|h| h["kind"] == "speech"), "{mixed:?}");

    // A recording replaced by another: transcribed again, its old moments gone.
    std::fs::copy(speech_dir().join("something.wav"), media.join("goforward.wav")).expect("copy");
    // A renamed recording keeps its moments without being transcribed again; a removed one goes.
    std::fs::rename(media.join("librivox_0880.wav"), media.join("young man.wav")).expect("rename");
    std::fs::remove_file(media.join("coffee.png")).expect("remove");
    let changed = add(&[&media], &gallery);
    assert!(changed.contains("added 0, updated 1, renamed 1, unchanged 0, removed 1, failed 0"), "{changed}");
    let hits = search("a young fellow who was not bad natured", "all", &gallery);
    assert_eq!(file_name(&hits[0]), "young man.wav", "{hits:?}");
    let hits = search("head off someplace and get a thing done", "speech", &gallery);
    assert_eq!(file_name(&hits[0]), "goforward.wav", "{hits:?}");
    assert!(hits[0]["text"].as_str().expect("text").to_lowercase().contains("somewhere"), "{hits:?}");
    assert!(search("a cup of coffee", "all", &gallery).iter().all(|h| h["kind"] == "speech"));
}

#[test]
fn damaged_recordings_are_skipped_with_their_reasons_and_the_rest_added() {
    let dir = tempfile::tempdir().expect("temp");
    let media = dir.path().join("media");
    std::fs::create_dir(&media).expect("mkdir");
    std::fs::copy(speech_dir().join("goforward.wav"), media.join("good.wav")).expect("copy");
    // A WAV header over noise bytes cut short, a file of nothing, and an MP3 that is text.
    let mut bad = std::fs::read(speech_dir().join("something.wav")).expect("read");
    bad.truncate(30);
    std::fs::write(media.join("cut.wav"), &bad).expect("write");
    std::fs::write(media.join("empty.flac"), b"").expect("write");
    std::fs::write(media.join("text.mp3"), b"this is not audio at all").expect("write");
    let gallery = dir.path().join("library.sqlite");
    let report = add(&[&media], &gallery);
    assert!(report.contains("added 1, updated 0, renamed 0, unchanged 0, removed 0, failed 3"), "{report}");
    for name in ["cut.wav", "empty.flac", "text.mp3"] {
        let line = report.lines().find(|l| l.contains(name)).unwrap_or_else(|| panic!("{name}: {report}"));
        assert!(line.trim_start().starts_with("skipped") && line.len() > name.len() + 20, "{line}");
    }
    assert_eq!(file_name(&search("move ahead ten metres", "speech", &gallery)[0]), "good.wav");
    // They are tried again next time (they may have been mended), and still skipped.
    assert!(
        add(&[&media], &gallery).contains("added 0, updated 0, renamed 0, unchanged 1, removed 0, failed 3")
    );
}

/// A killed `add` leaves a valid library of whole recordings, and the next run adds the rest.
#[test]
fn a_killed_adder_leaves_a_valid_library() {
    let dir = tempfile::tempdir().expect("temp");
    let media = dir.path().join("media");
    std::fs::create_dir(&media).expect("mkdir");
    let clips: Vec<PathBuf> = common::speech_clips().into_iter().map(|c| c.path).collect();
    for clip in &clips {
        std::fs::copy(clip, media.join(clip.file_name().expect("name"))).expect("copy");
    }
    let gallery = dir.path().join("library.sqlite");
    let mut child = crossmodal()
        .arg("add")
        .arg(&media)
        .arg("--gallery")
        .arg(&gallery)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let count = |table: &str| -> i64 {
        rusqlite::Connection::open(&gallery)
            .and_then(|c| c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)))
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(2);
    while count("recordings") == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().expect("kill");
    let _ = child.wait();
    let conn = rusqlite::Connection::open(&gallery).expect("opens");
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("check");
    assert_eq!(check, "ok");
    let stored = count("recordings");
    assert!(stored > 0 && stored < i64::try_from(clips.len()).expect("small"), "killed after {stored}");
    // Every stored recording came with its moments.
    let bare: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM recordings r WHERE NOT EXISTS (SELECT 1 FROM moments m WHERE m.recording = r.id)",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(bare, 0);
    drop(conn);
    let report = add(&[&media], &gallery);
    let rest = i64::try_from(clips.len()).expect("small") - stored;
    assert!(report.contains(&format!("added {rest}, updated 0, renamed 0, unchanged {stored},")), "{report}");
}

/// Paraphrases of what is said find their recording first among the moments, and within the
/// first five of everything (images and moments in one list).
#[test]
fn paraphrases_find_their_recordings_among_everything() {
    let dir = tempfile::tempdir().expect("temp");
    let gallery = dir.path().join("library.sqlite");
    add(&[&common::eval_dir().join("images"), &speech_dir()], &gallery);
    let mut first = 0;
    for (query, target) in common::MOMENT_QUERIES {
        let hits = search(query, "all", &gallery);
        let spoken: Vec<String> = hits.iter().filter(|h| h["kind"] == "speech").map(file_name).collect();
        eprintln!("{query} → {spoken:?}");
        assert!(spoken.iter().any(|f| f == target), "{query}: {target} not in the first five: {hits:?}");
        first += usize::from(spoken.first().is_some_and(|f| f == target));
    }
    assert!(first >= 11, "{first} of 12 first");
}

/// `add --watch` picks up a recording put in the folder while it runs, and Ctrl+C ends it.
#[test]
fn a_watched_folder_takes_in_new_recordings() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().expect("temp");
    let media = dir.path().join("media");
    std::fs::create_dir(&media).expect("mkdir");
    std::fs::copy(common::eval_dir().join("images/coffee.png"), media.join("coffee.png")).expect("copy");
    let gallery = dir.path().join("library.sqlite");
    let mut child = crossmodal()
        .args(["add", "--watch", "--every", "1"])
        .arg(&media)
        .arg("--gallery")
        .arg(&gallery)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = |what: &str| -> String {
        rx.recv_timeout(std::time::Duration::from_mins(2)).unwrap_or_else(|_| panic!("no line: {what}"))
    };
    let first = next("the first run");
    assert!(first.contains("added 1, updated 0"), "{first}");
    std::fs::copy(speech_dir().join("goforward.wav"), media.join("goforward.wav")).expect("copy");
    let second = next("the new recording");
    assert!(second.contains("added 1, updated 0, renamed 0, unchanged 1,"), "{second}");
    // Ctrl+C: it stops and exits cleanly.
    let _ = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let status = child.wait().expect("exits");
    assert!(status.success(), "{status}");
    assert_eq!(file_name(&search("move ahead ten metres", "speech", &gallery)[0]), "goforward.wav");
}

/// Recordings cut at their first and last word are spoken moments too: each is in the library
/// and found by what a person would type (two moments of 14 once vanished from a library when
/// the gate before Whisper took their first words for the room).
#[test]
fn recordings_cut_at_their_first_word_are_all_found() {
    let dir = tempfile::tempdir().expect("temp");
    let media = dir.path().join("cut");
    std::fs::create_dir(&media).expect("mkdir");
    for clip in common::speech_clips() {
        common::trimmed(&clip.path, &media);
    }
    let gallery = dir.path().join("library.sqlite");
    add(&[&media], &gallery);
    for (query, target) in common::MOMENT_QUERIES {
        let hits = search(query, "speech", &gallery);
        let found: Vec<String> = hits.iter().map(file_name).collect();
        assert!(found.iter().any(|f| f == target), "{query}: {target} not in the first five: {hits:?}");
    }
}
