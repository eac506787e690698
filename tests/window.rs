//! The window, driven through AccessKit with `egui_kittest` on the real models and the public
//! recordings and photographs: each panel does its job, bad input becomes a notice, snapshots of
//! each panel (tests/snapshots/*.png), and the real binary opening under Xvfb.

mod common;

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crossmodal::engine::device::Preference;
use crossmodal::gui::{CrossmodalApp, FileDialogs, Options, Settings, Theme};
use crossmodal::model_store::ModelStore;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};

/// The tests of one binary run side by side on this machine's cores. A test that times the app
/// (how soon partial words come while a sentence is spoken) has the machine to itself; the others
/// share it.
static CPU: RwLock<()> = RwLock::new(());

#[allow(dead_code)] // held only for its lifetime
enum Cpu {
    Shared(RwLockReadGuard<'static, ()>),
    Alone(RwLockWriteGuard<'static, ()>),
}

/// A window under test, holding its share of the machine until it is dropped.
struct App {
    harness: Harness<'static, CrossmodalApp>,
    _cpu: Cpu,
}

impl Deref for App {
    type Target = Harness<'static, CrossmodalApp>;
    fn deref(&self) -> &Self::Target {
        &self.harness
    }
}

impl DerefMut for App {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.harness
    }
}

/// Settings that do not depend on this machine's saved state.
fn settings() -> Settings {
    Settings { input_device: None, threads: 2, theme: Theme::Dark, ..Settings::default() }
}

fn open(store: ModelStore, options: Options) -> App {
    open_sized(store, options, egui::vec2(1000.0, 680.0))
}

fn open_sized(store: ModelStore, options: Options, size: egui::Vec2) -> App {
    let cpu = Cpu::Shared(CPU.read().unwrap_or_else(PoisonError::into_inner));
    build(store, options, size, cpu)
}

/// A window with the machine to itself, for a test that times it.
fn open_alone(store: ModelStore, options: Options) -> App {
    let cpu = Cpu::Alone(CPU.write().unwrap_or_else(PoisonError::into_inner));
    build(store, options, egui::vec2(1000.0, 680.0), cpu)
}

fn build(store: ModelStore, mut options: Options, size: egui::Vec2, cpu: Cpu) -> App {
    if options.settings.is_none() {
        options.settings = Some(settings());
    }
    let harness = Harness::builder()
        .with_size(size)
        .build_eframe(move |cc| CrossmodalApp::new(&cc.egui_ctx, store, options));
    let mut h = App { harness, _cpu: cpu };
    wait(&mut h, "the engine to settle", Duration::from_mins(2), |h| h.state().settled());
    h
}

/// Steps the window until `done` holds.
fn wait(h: &mut App, what: &str, limit: Duration, done: impl Fn(&App) -> bool) {
    let deadline = Instant::now() + limit;
    h.step();
    while !done(h) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; notices: {:?}",
            h.state().notices()
        );
        std::thread::sleep(Duration::from_millis(30));
        h.step();
    }
    h.step();
}

fn has(h: &App, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

/// Hides a line that shows a temporary path from snapshots, from its start to the right edge.
fn mask_line(h: &mut App, text: &str) {
    let rect = h.get_all_by_label_contains(text).next().expect("the line").rect();
    h.mask(egui::Rect::from_min_max(rect.min, egui::pos2(1000.0, rect.max.y)));
}

/// Every label in the window, for failure messages.
fn labels(h: &App) -> Vec<String> {
    h.query_all(egui_kittest::kittest::By::new())
        .filter_map(|n| n.accesskit_node().label().or_else(|| n.accesskit_node().value()))
        .collect()
}

/// Clicks the control with this label and lets the window answer.
fn click(h: &mut App, label: &str) {
    h.get_by_label(label).click();
    h.step();
    // Away, so that the next click (maybe on the same spot) is not a double click.
    h.remove_cursor();
    h.step();
    h.step();
}

fn tab(h: &mut App, name: &str) {
    click(h, name);
}

/// Types into the text field with this role and label.
fn type_into(h: &mut App, role: Role, label: &str, text: &str) {
    h.get_by_role_and_label(role, label).focus();
    h.step();
    h.get_by_role_and_label(role, label).type_text(text);
    h.step();
}

#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// Ctrl+F, the query typed into the search box, Enter.
fn search_for(h: &mut App, query: &str) {
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::F);
    h.step();
    h.get_by_role_and_label(Role::TextInput, "Search").type_text(query);
    h.step();
    h.key_press(egui::Key::Enter);
}

/// Drops files on the window with the pointer at `at`.
fn drop_files(h: &mut App, files: &[PathBuf], at: egui::Pos2) {
    h.hover_at(at);
    h.step();
    for f in files {
        h.input_mut().dropped_files.push(std::sync::Arc::new(Dropped(f.clone())));
    }
    h.step();
}

/// Everything but the default set's speech model, text encoder, lite image encoder and voice
/// detector.
fn default_store() -> ModelStore {
    for name in ["whisper-tiny.en", "minilm", "efficientnet-lite0", "silero-vad"] {
        common::installed(name);
    }
    common::store()
}

/// A store with only the default set (no CLIP, so the lite encoder is used and results do
/// not depend on what else is installed).
fn default_only(dir: &Path) -> ModelStore {
    let from = default_store();
    for name in ["whisper-tiny.en", "minilm", "efficientnet-lite0", "silero-vad"] {
        let spec = crossmodal::model_store::spec(name).expect("catalogue");
        common::copy_model(&from, spec, dir);
    }
    ModelStore::at(dir)
}

#[test]
fn an_empty_store_opens_and_shows_what_to_fetch() {
    let dir = tempfile::tempdir().expect("temp");
    let mut h = open(ModelStore::at(dir.path().join("store")), Options::default());
    h.get_by_label_contains("Device: CPU");
    tab(&mut h, "Settings");
    // Every model of the catalogue, the whole Whisper family among them, with what fetches it.
    for spec in crossmodal::model_store::CATALOGUE {
        h.get_by_label(&format!("Fetch {}", spec.name));
        h.get_by_label(&format!("crossmodal models fetch {}", spec.name));
    }
    assert_eq!(h.get_all_by_label("not installed").count(), crossmodal::model_store::CATALOGUE.len());
    // On a CPU the model that keeps up with speech: base.en under 8 cores (CI's machines have 2
    // to 4), small.en from 8 on; its size before download and its speed class are shown.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let recommended = if cores < 8 { "whisper-base.en" } else { "whisper-small.en" };
    h.get_by_label(&format!("Recommended for speech on this machine: {recommended}"));
    h.get_by_label(&format!("{recommended} (recommended)"));
    assert_eq!(h.get_all_by_label("≈ 1.6 GB").count(), 3, "medium, medium.en, large-v3-turbo");
    assert!(h.get_all_by_label("for a GPU; slow on a CPU").count() == 2, "turbo and its q5_0");
    mask_line(&mut h, "Model store:");
    h.snapshot("settings");
    // Dropping an audio file with no speech model: the file fails with the fetch command.
    let clip = common::eval_dir().join("speech/goforward.wav");
    drop_files(&mut h, &[clip], egui::pos2(500.0, 400.0));
    wait(&mut h, "the missing model to be reported", Duration::from_secs(30), |h| {
        h.state().notices().iter().any(|n| n.contains("crossmodal models fetch whisper-tiny.en"))
    });
}

#[test]
fn a_model_is_fetched_from_the_settings_panel() {
    let dir = tempfile::tempdir().expect("temp");
    let store = ModelStore::at(dir.path().join("store"));
    let mut h = open(store, Options::default());
    tab(&mut h, "Settings");
    click(&mut h, "Fetch minilm");
    wait(&mut h, "the download to start", Duration::from_secs(10), |h| has(h, "downloading"));
    wait(&mut h, "minilm to be installed", Duration::from_mins(5), |h| {
        h.query_by_label("Load minilm").is_some()
    });
    assert!(h.state().notices().is_empty(), "{:?}", h.state().notices());
    // What came down is complete: it loads.
    click(&mut h, "Load minilm");
    wait(&mut h, "minilm to load", Duration::from_mins(1), |h| h.query_by_label("ready on CPU").is_some());
}

#[test]
fn installed_models_load_on_the_engine_and_report_their_device() {
    let store = default_store();
    common::installed("whisper-base");
    let mut h = open(store, Options::default());
    h.get_by_label_contains("Device: CPU");
    tab(&mut h, "Settings");
    // The default set loads at start: whisper-tiny.en, minilm, efficientnet-lite0, silero-vad.
    assert_eq!(h.get_all_by_label("ready on CPU").count(), 4);
    // whisper-base is installed but not part of the default set: loading it is a click.
    click(&mut h, "Load whisper-base");
    wait(&mut h, "whisper-base to load", Duration::from_mins(1), |h| {
        h.query_all_by_label("ready on CPU").count() >= 5
    });
}

#[test]
fn recording_from_the_virtual_microphone_shows_the_transcript() {
    let dir = tempfile::tempdir().expect("temp");
    let clip = common::eval_dir().join("speech/goforward.wav");
    let mut h = open(default_only(dir.path()), Options { input: Some(clip), ..Options::default() });
    // Space starts recording (no text field has the keyboard).
    h.key_press(egui::Key::Space);
    wait(&mut h, "the recording to start", Duration::from_secs(10), |h| has(h, "Stop"));
    wait(&mut h, "the live transcript", Duration::from_mins(1), |h| has(h, "Go forward 10 meters"));
    wait(&mut h, "the recording to end with the file", Duration::from_secs(30), |h| {
        h.query_by_label("Record").is_some() && h.state().idle()
    });
    h.get_by_label("Live (goforward.wav)");
    // The line's times come from Whisper's timestamp tokens, which move by a tenth of a second
    // between CPUs (AVX2 and AVX-512 round differently): they are checked here against the
    // clip (2.8 s), and the snapshot allows the one digit that can change.
    let (lines, _) = h.state().live_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].start < 0.5 && (2.0..=2.9).contains(&lines[0].end), "{:?}", lines[0]);
    h.snapshot_options("transcribe", &egui_kittest::SnapshotOptions::new().max_failed_pixels(40));
}

#[test]
fn the_library_count_follows_an_add_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp");
    let gallery = dir.path().join("g.sqlite");
    let store = default_only(&dir.path().join("store"));
    let store_root = store.root().to_path_buf();
    let mut h = open(store, Options { gallery: Some(gallery.clone()), ..Options::default() });
    tab(&mut h, "Library");
    wait(&mut h, "the library's size", Duration::from_secs(10), |h| has(h, "Library: 0 images"));
    let out = common::crossmodal()
        .env("CROSSMODAL_MODELS", &store_root)
        .args(["add", "--gallery"])
        .arg(&gallery)
        .arg(common::eval_dir().join("images"))
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait(&mut h, "the window to notice", Duration::from_secs(10), |h| has(h, "Library: 11 images"));
}

#[test]
fn a_second_recording_goes_on_where_the_first_stopped_and_clear_empties_it() {
    let dir = tempfile::tempdir().expect("temp");
    let clip = common::eval_dir().join("speech/goforward.wav");
    let mut h = open(default_only(dir.path()), Options { input: Some(clip), ..Options::default() });
    for session in 1..=2 {
        h.key_press(egui::Key::Space);
        wait(&mut h, "the recording to start", Duration::from_secs(10), |h| has(h, "Stop"));
        wait(&mut h, "the recording to end", Duration::from_mins(1), |h| {
            h.query_by_label("Record").is_some()
                && h.state().idle()
                && h.state().live_lines().0.len() == session
        });
    }
    let (lines, _) = h.state().live_lines();
    assert!(lines[1].start >= lines[0].end, "the second session's times restarted: {lines:?}");
    click(&mut h, "Clear");
    assert!(h.state().live_lines().0.is_empty(), "Clear left lines");
}

#[test]
fn choices_that_cannot_work_are_disabled_or_refused_before_recording() {
    let dir = tempfile::tempdir().expect("temp");
    // An English-only model: Translate cannot be ticked, and says why.
    let mut h = open(default_only(&dir.path().join("store")), Options::default());
    let translate = h.get_by_label("Translate to English");
    assert!(translate.accesskit_node().is_disabled(), "Translate is offered with an English-only model");
    // The model list offers whisper-base's download instead of choosing it uninstalled.
    h.get_by_role_and_label(Role::ComboBox, "Model").click();
    h.step();
    h.step();
    assert!(has(&h, "whisper-base (not installed)"), "{:?}", labels(&h));
    assert!(has(&h, "Download whisper-base ("), "{:?}", labels(&h));
    h.key_press(egui::Key::Escape);
    h.step();
    drop(h);

    // A model that is not installed (chosen last time): Record says so instead of starting.
    let settings = Settings { model: "whisper-base".into(), ..settings() };
    let options = Options { settings: Some(settings), ..Options::default() };
    let mut h = open(default_only(&dir.path().join("store2")), options);
    click(&mut h, "Record");
    assert!(!h.state().recording());
    assert!(
        h.state().notices().iter().any(|n| n.starts_with("whisper-base is not installed")),
        "{:?}",
        h.state().notices()
    );
    drop(h);

    // A virtual microphone file that is not there: said at Record, nothing starts.
    let missing = dir.path().join("missing.wav");
    let mut h = open(
        default_only(&dir.path().join("store3")),
        Options { input: Some(missing), ..Options::default() },
    );
    click(&mut h, "Record");
    assert!(!h.state().recording());
    assert!(
        h.state()
            .notices()
            .iter()
            .any(|n| n.ends_with("missing.wav: no such file to play as the microphone")),
        "{:?}",
        h.state().notices()
    );
}

#[test]
fn a_kept_session_goes_into_the_library_and_a_watched_folder_is_followed() {
    let dir = tempfile::tempdir().expect("temp");
    let clip = common::eval_dir().join("speech/goforward.wav");
    let gallery = dir.path().join("library.sqlite");
    let mut settings = settings();
    settings.library.keep_sessions = true;
    let options = Options {
        input: Some(clip),
        gallery: Some(gallery.clone()),
        settings: Some(settings),
        ..Options::default()
    };
    let mut h = open(default_only(&dir.path().join("store")), options);
    h.key_press(egui::Key::Space);
    wait(&mut h, "the live transcript", Duration::from_mins(1), |h| has(h, "Go forward 10 meters"));
    wait(&mut h, "the session to be kept", Duration::from_mins(1), |h| {
        h.query_by_label("Record").is_some() && h.state().idle()
    });
    let sessions: Vec<PathBuf> = std::fs::read_dir(gallery.with_extension("sessions"))
        .expect("a sessions folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(sessions[0].file_name().is_some_and(|n| n.to_string_lossy().starts_with("session-")));
    tab(&mut h, "Library");
    wait(&mut h, "the session in the library", Duration::from_secs(30), |h| {
        has(h, "1 recordings (1 moments)")
    });

    // A folder added and watched: a recording put in it later is added by itself.
    let folder = dir.path().join("watched");
    std::fs::create_dir(&folder).expect("mkdir");
    std::fs::copy(common::eval_dir().join("images/moon.png"), folder.join("moon.png")).expect("copy");
    drop_files(&mut h, std::slice::from_ref(&folder), egui::pos2(500.0, 450.0));
    wait(&mut h, "the folder", Duration::from_mins(1), |h| has(h, "Library: 1 images, 1 recordings"));
    click(&mut h, "Watch folders");
    std::fs::copy(common::eval_dir().join("speech/something.wav"), folder.join("something.wav"))
        .expect("copy");
    wait(&mut h, "the new recording", Duration::from_secs(40), |h| has(h, "Library: 1 images, 2 recordings"));
}

#[test]
fn recording_through_a_real_microphone_shows_each_line_as_soon_as_it_is_heard() {
    let mic = common::pulse::virtual_mic();
    let dir = tempfile::tempdir().expect("temp");
    // The sentence lasts 6 s: its partial words (asked for at 1 s of an utterance) have time to
    // come back before its end even when the other tests keep both cores busy.
    let (wav, speech) = common::spaced(dir.path(), &["goforward.wav", "librivox_0920.wav"], 1.5);
    // No --input: the window opens ALSA's default device, the audio server's null sink.
    let mut h = open_alone(default_only(&dir.path().join("store")), Options::default());
    click(&mut h, "Record");
    wait(&mut h, "the microphone to open", Duration::from_secs(20), |h| has(h, "Live ("));
    let opened = Instant::now();
    let (mut paplay, played) = mic.start_playing(&wav);
    let mut partial_while_speaking = false;
    let deadline = Instant::now() + Duration::from_mins(1);
    while h.state().live_lines().0.len() < 2 {
        assert!(Instant::now() < deadline, "lines so far: {:?}", h.state().live_lines().0);
        partial_while_speaking |= !h.state().partial_text().is_empty();
        // The words of the sentence in progress line up with the lines above them.
        let first = h.state().live_lines().0.first().map(|l| l.text.trim().to_owned());
        let partial = h.state().partial_text().trim().to_owned();
        let left = |text: &str| h.query_all_by_label(text).next().map(|n| n.rect().left());
        if let Some(first) = first.filter(|_| !partial.is_empty())
            && let (Some(line), Some(words)) = (left(&first), left(&partial))
        {
            assert!((line - words).abs() < 1.0, "partial words at x {words}, the line above at {line}");
        }
        std::thread::sleep(Duration::from_millis(10));
        h.step();
    }
    paplay.wait().expect("paplay ends");
    let offset = played.duration_since(opened).as_secs_f64();
    let (lines, lags) = h.state().live_lines();
    let expected = [
        "go forward 10 meters",
        "had he married a more amiable woman he might have been made still more respectable than he was",
    ];
    // How long after the pipeline had each line the window showed it is for the benches to
    // say; here, only what it says.
    eprintln!("lines shown {lags:?} after the pipeline had them");
    for (line, want) in lines.iter().zip(expected) {
        assert!(common::says(&line.text, want), "{line:?}: not \"{want}\"");
    }
    // Times count from when recording began, like `listen`'s.
    let times: Vec<(f64, f64)> = lines.iter().map(|l| (l.start, l.end)).collect();
    common::check_times(&times, &speech, offset);
    // Partial words were shown (how soon is the live bench's business), lined up with the
    // lines above them whenever a line was there.
    assert!(partial_while_speaking, "no partial words were shown");
    click(&mut h, "Stop");
    wait(&mut h, "the recording to stop", Duration::from_secs(20), |h| !h.state().recording());
}

/// A room with a fan: the noise plays into the microphone from before Record until after Stop;
/// each sentence is one line with its words, and the noise alone (before, between, after) none.
#[test]
fn recording_in_a_room_with_a_fan_shows_one_line_per_sentence() {
    let mic = common::pulse::virtual_mic();
    let dir = tempfile::tempdir().expect("temp");
    let names = ["librivox_0880.wav", "librivox_0930.wav"];
    let (wav, speech) = common::spaced(dir.path(), &names, 2.0);
    let secs = speech.last().expect("clips").1 + 30.0;
    let _fan = common::pulse::NoiseBed::start(
        &mic,
        dir.path(),
        &common::pink((secs * 16_000.0) as usize, 13),
        common::speech_level(&names),
        20.0,
    );
    let mut h = open_alone(default_only(&dir.path().join("store")), Options::default());
    click(&mut h, "Record");
    wait(&mut h, "the microphone to open", Duration::from_secs(20), |h| has(h, "Live ("));
    // The fan alone for two seconds first, as in a room before anyone speaks.
    let quiet_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < quiet_until {
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    let (mut paplay, _) = mic.start_playing(&wav);
    let deadline = Instant::now() + Duration::from_mins(1);
    while paplay.try_wait().expect("paplay").is_none() {
        assert!(Instant::now() < deadline, "the clips did not end");
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    // The fan goes on after the speech: nothing more may come of it.
    let after = Instant::now() + Duration::from_secs(5);
    while Instant::now() < after {
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    let lines: Vec<String> = h.state().live_lines().0.iter().map(|l| l.text.trim().to_owned()).collect();
    let expected = ["he was not an ill disposed young man", "he might even have been made amiable himself"];
    assert_eq!(lines.len(), expected.len(), "one line per sentence in a fan: {lines:?}");
    for (line, want) in lines.iter().zip(expected) {
        assert!(common::says(line, want), "{line:?}: not \"{want}\"");
    }
    click(&mut h, "Stop");
    wait(&mut h, "the recording to stop", Duration::from_secs(20), |h| !h.state().recording());
}

#[test]
fn a_dropped_recording_is_transcribed_and_a_non_media_file_is_refused() {
    let dir = tempfile::tempdir().expect("temp");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not audio").expect("write");
    let mut h = open(default_only(&dir.path().join("store")), Options::default());
    // Cut at its first and last word, as an editor cuts a voice memo: every word is shown.
    let original =
        common::speech_clips().into_iter().find(|c| c.path.ends_with("librivox_0870.wav")).expect("clip");
    let clip = common::trimmed(&original.path, dir.path());
    drop_files(&mut h, &[clip.clone(), notes], egui::pos2(500.0, 400.0));
    assert!(
        h.state().notices().iter().any(|n| n.contains("notes.txt: not an audio file")),
        "{:?}",
        h.state().notices()
    );
    h.get_by_label("librivox_0870.wav");
    wait(&mut h, "the transcript", Duration::from_mins(2), |h| has(h, "done"));
    let transcript = h.state().file_transcript(&clip).expect("done").clone();
    assert!(common::says(&transcript.text, &original.text), "{:?}", transcript.text);
    for segment in &transcript.segments {
        assert!(has(&h, &segment.text), "{:?} is not shown", segment.text);
    }
    // Segments carry their times.
    assert!(has(&h, "00:00."), "no timestamps");
}

#[test]
fn indexing_a_dropped_folder_then_searching_shows_ranked_thumbnails() {
    let dir = tempfile::tempdir().expect("temp");
    let gallery = dir.path().join("g.sqlite");
    let options = Options { gallery: Some(gallery.clone()), ..Options::default() };
    let mut h = open(default_only(&dir.path().join("store")), options);
    tab(&mut h, "Library");
    // Dropped below the "find similar" area: a folder is indexed.
    drop_files(&mut h, &[common::eval_dir().join("images")], egui::pos2(500.0, 450.0));
    wait(&mut h, "the folder to be indexed", Duration::from_mins(2), |h| has(h, "added 11,"));
    // Ctrl+F goes to the search box.
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::F);
    h.step();
    let search = h.get_by_role_and_label(Role::TextInput, "Search");
    assert!(search.is_focused(), "Ctrl+F did not focus the search box");
    search.type_text("a cup of coffee");
    h.step();
    h.key_press(egui::Key::Enter);
    wait(&mut h, "results", Duration::from_secs(30), |h| has(h, "1. coffee.png"));
    assert!(has(&h, "2. "), "only one result");
    wait(&mut h, "the thumbnails", Duration::from_secs(30), |h| h.state().thumbnails_shown());
    h.get_by_label("coffee.png");
    h.snapshot("images");

    // Which caption fits each image.
    type_into(&mut h, Role::MultilineTextInput, "Captions", "a cup of coffee\na tabby cat");
    click(&mut h, "Match captions");
    wait(&mut h, "the captions", Duration::from_secs(30), |h| h.state().idle() && has(h, " %"));
    let coffee = h.get_all_by_label_contains("a cup of coffee ").count();
    assert!(coffee >= 1, "no caption probabilities shown");

    // An image dropped on the "find similar" area is a query: it finds itself first.
    let zone = h.get_by_label_contains("drop one image here to find similar ones").rect();
    drop_files(&mut h, &[common::eval_dir().join("images/moon.png")], zone.center());
    wait(&mut h, "similar images", Duration::from_secs(30), |h| has(h, "1. moon.png 1.000"));

    // The picture of the space: the indexed images and the query.
    tab(&mut h, "Space");
    wait(&mut h, "the projection", Duration::from_mins(1), |h| has(h, "11 images"));
    assert!(has(&h, "1 query"), "the query is not in the picture");
    h.snapshot("space");
}

#[test]
fn a_folder_of_thousands_of_files_indexes_what_it_can_and_stays_responsive() {
    let dir = tempfile::tempdir().expect("temp");
    let folder = dir.path().join("many");
    std::fs::create_dir_all(&folder).expect("mkdir");
    for i in 0..3000 {
        // Files named like photos that are not: each is refused with its reason.
        std::fs::write(folder.join(format!("img_{i:04}.jpg")), format!("not a photo {i}")).expect("write");
    }
    for name in ["coffee.png", "moon.png"] {
        std::fs::copy(common::eval_dir().join("images").join(name), folder.join(name)).expect("copy");
    }
    let options = Options { gallery: Some(dir.path().join("g.sqlite")), ..Options::default() };
    let mut h = open(default_only(&dir.path().join("store")), options);
    tab(&mut h, "Library");
    drop_files(&mut h, &[folder], egui::pos2(500.0, 450.0));
    wait(&mut h, "the folder to be indexed", Duration::from_mins(3), |h| has(h, "added 2,"));
    assert!(has(&h, "skipped 3000"), "the refused files are not counted");
}

#[test]
fn one_search_finds_moments_and_images_and_a_moment_plays() {
    let mic = common::pulse::virtual_mic();
    mic.route_output_here();
    let dir = tempfile::tempdir().expect("temp");
    let media = dir.path().join("media");
    std::fs::create_dir(&media).expect("mkdir");
    let eval = common::eval_dir();
    for f in ["goforward.wav", "librivox_0880.wav"] {
        std::fs::copy(eval.join("speech").join(f), media.join(f)).expect("copy");
    }
    std::fs::copy(eval.join("images/moon.png"), media.join("moon.png")).expect("copy");
    // A smaller copy of one photograph: a near-duplicate.
    let coffee = image::open(eval.join("images/coffee.png")).expect("decodes");
    coffee.save(media.join("coffee.png")).expect("save");
    coffee
        .resize(200, 200, image::imageops::FilterType::Triangle)
        .save(media.join("coffee small.jpg"))
        .expect("save");
    let options = Options { gallery: Some(dir.path().join("library.sqlite")), ..Options::default() };
    let mut h = open(default_only(&dir.path().join("store")), options);
    tab(&mut h, "Library");
    wait(&mut h, "the library's size", Duration::from_secs(10), |h| has(h, "Library: 0 images"));
    assert!(has(&h, "The library is empty"), "{:?}", labels(&h));
    drop_files(&mut h, &[media], egui::pos2(500.0, 450.0));
    wait(&mut h, "the folder to be added", Duration::from_mins(2), |h| has(h, "added 5,"));
    wait(&mut h, "the new size", Duration::from_secs(10), |h| {
        has(h, "Library: 3 images, 2 recordings (2 moments)")
    });

    // A paraphrase of what is said finds the recording first, above every image.
    search_for(&mut h, "move ahead ten metres");
    wait(&mut h, "results", Duration::from_secs(30), |h| has(h, "1. goforward.wav 0:00.0–"));
    assert!(has(&h, "Go forward"), "the moment's words are not shown: {:?}", labels(&h));
    assert!(has(&h, "moon.png"), "the images are not in the list");
    wait(&mut h, "the thumbnails", Duration::from_secs(30), |h| h.state().thumbnails_shown());
    h.snapshot("library");

    // Play: the recording comes out of the speakers, and the words light up as it goes.
    let listening = mic.start_hearing();
    std::thread::sleep(Duration::from_millis(500));
    h.get_all_by_label("Play").next().expect("a Play button").click();
    h.step();
    wait(&mut h, "the playback to start", Duration::from_secs(5), |h| has(h, "Stop"));
    wait(&mut h, "the playback to move on", Duration::from_secs(5), |h| has(h, "playing 0:01"));
    wait(&mut h, "the playback to end", Duration::from_secs(10), |h| has(h, "Play"));
    let heard = mic.heard(listening);
    let loud = heard.iter().filter(|s| s.abs() > 0.02).count();
    assert!(loud > 1000, "nothing came out of the speakers ({loud} loud samples of {})", heard.len());

    // Near-duplicates: the photograph and its smaller copy.
    click(&mut h, "Near-duplicates");
    wait(&mut h, "the groups", Duration::from_secs(30), |h| {
        has(h, "1 group of near-duplicates among 3 images")
    });
    assert!(has(&h, "coffee small.jpg") && has(&h, "Group 1"), "{:?}", labels(&h));
}

/// The results' rank labels ("3. china.jpg 0.012"), with their right edges.
fn result_cards(h: &App) -> Vec<(usize, String, f64)> {
    let mut cards: Vec<(usize, String, f64)> = h
        .query_all(egui_kittest::kittest::By::new())
        .filter_map(|n| {
            let node = n.accesskit_node();
            let label = node.label().or_else(|| node.value())?;
            let (rank, rest) = label.split_once(". ")?;
            let rank: usize = rank.parse().ok()?;
            (rest.contains('.')).then(|| (rank, label.clone(), node.bounding_box().map_or(0.0, |b| b.x1)))
        })
        .collect();
    cards.sort_by_key(|c| c.0);
    cards.dedup_by_key(|c| c.0);
    cards
}

#[test]
fn search_results_fit_the_window_at_every_width_and_more_wait_behind_a_button() {
    let dir = tempfile::tempdir().expect("temp");
    let options = Options { gallery: Some(dir.path().join("g.sqlite")), ..Options::default() };
    let mut h = open(default_only(&dir.path().join("store")), options);
    tab(&mut h, "Library");
    // 11 photographs and 12 recordings: more results than a page.
    let eval = common::eval_dir();
    drop_files(&mut h, &[eval.join("images"), eval.join("speech")], egui::pos2(500.0, 450.0));
    wait(&mut h, "the folders to be added", Duration::from_mins(3), |h| {
        has(h, "Library: 11 images, 12 recordings")
    });
    search_for(&mut h, "glutton");
    wait(&mut h, "results", Duration::from_secs(30), |h| has(h, "1. "));
    for width in [1000.0, 560.0, 1280.0, 1920.0] {
        h.set_size(egui::vec2(width, if width < 600.0 { 420.0 } else { 680.0 }));
        for _ in 0..3 {
            h.step();
        }
        let cards = result_cards(&h);
        let ranks: Vec<usize> = cards.iter().map(|c| c.0).collect();
        assert_eq!(
            ranks,
            (1..=12).collect::<Vec<_>>(),
            "at {width} px the first page is not ranks 1-12: {cards:?}"
        );
        let cut: Vec<&(usize, String, f64)> = cards.iter().filter(|c| c.2 > f64::from(width) + 1.0).collect();
        assert!(cut.is_empty(), "at {width} px results run off the edge: {cut:?}");
    }
    h.set_size(egui::vec2(1000.0, 680.0));
    // Laid out again at the new size before the button is looked for: a click on where it was
    // at 1920 px could miss it (CI once saw the click do nothing).
    for _ in 0..3 {
        h.step();
    }
    let more = h.get_by_label_contains("Show more (12 of ").accesskit_node().label().unwrap_or_default();
    click(&mut h, &more);
    wait(&mut h, "the next 12 results", Duration::from_secs(5), |h| result_cards(h).len() >= 24);
    let ranks: Vec<usize> = result_cards(&h).iter().map(|c| c.0).collect();
    assert_eq!(ranks, (1..=24).collect::<Vec<_>>(), "Show more did not add the next 12");
}

fn write_commands(dir: &Path, touched: &Path) -> PathBuf {
    let commands = dir.join("commands.toml");
    let text = format!(
        r#"[[command]]
name = "forward"
phrases = ["go forward ten meters"]
action = {{ kind = "run", program = "touch", args = ["{}"] }}

[[command]]
name = "stop"
phrases = ["stop listening"]
"#,
        touched.display()
    );
    std::fs::write(&commands, text).expect("write");
    commands
}

#[test]
fn listening_fires_a_spoken_command() {
    let dir = tempfile::tempdir().expect("temp");
    let touched = dir.path().join("fired");
    let commands = write_commands(dir.path(), &touched);
    let clip = common::eval_dir().join("speech/goforward.wav");
    let options = Options { input: Some(clip), commands: Some(commands), ..Options::default() };
    let mut h = open(default_only(&dir.path().join("store")), options);
    tab(&mut h, "Commands");
    assert_eq!(h.get_all_by_label("Remove forward").count(), 1);
    // The file's folder and the path in the action differ between runs.
    mask_line(&mut h, "commands.toml");
    let action = h
        .query_all_by_role(Role::TextInput)
        .find(|n| n.value().is_some_and(|v| v.starts_with("touch ")))
        .expect("the action's program")
        .rect();
    h.mask(action);
    h.snapshot("commands");
    click(&mut h, "Listen");
    wait(&mut h, "the command to fire", Duration::from_mins(1), |h| has(h, "did forward"));
    wait(&mut h, "the program to run", Duration::from_secs(10), |_| touched.exists());
    assert!(has(&h, "Go forward 10 meters."), "the transcript is not in the log");
}

#[test]
fn commands_show_whole_names_and_phrases_and_actions_are_edited_in_place() {
    let dir = tempfile::tempdir().expect("temp");
    let commands = write_commands(dir.path(), &dir.path().join("fired"));
    let options = Options { commands: Some(commands.clone()), ..Options::default() };
    let mut h = open_sized(ModelStore::at(dir.path().join("store")), options, egui::vec2(1280.0, 800.0));
    tab(&mut h, "Commands");
    // Each field is wide enough for its text.
    for (label, text) in [("Name", "forward"), ("Say", "go forward ten meters")] {
        let field = h
            .query_all_by_role_and_label(Role::TextInput, label)
            .find(|n| n.value().as_deref() == Some(text))
            .unwrap_or_else(|| panic!("no {label} field holds {text}: {:?}", labels(&h)));
        let need = text.chars().count() as f32 * 6.0;
        assert!(field.rect().width() >= need, "{label} '{text}' is cut: {:?}", field.rect());
    }
    assert!(!has(&h, "unsaved changes"));
    // "stop" prints its name; make it press a key.
    assert_eq!(h.query_all_by_role(Role::ComboBox).count(), 2, "one action menu a command");
    h.query_all_by_role(Role::ComboBox).nth(1).expect("stop's action").click();
    h.step();
    h.step();
    click(&mut h, "press a key");
    assert!(has(&h, "unsaved changes"), "a change is not marked: {:?}", labels(&h));
    // Checked as it is typed.
    let key = h
        .query_all_by_role(Role::TextInput)
        .find(|n| n.value().as_deref() == Some(""))
        .expect("the key field");
    key.focus();
    h.step();
    h.get_all_by_role(Role::TextInput)
        .find(egui_kittest::Node::is_focused)
        .expect("focused")
        .type_text("Ctrl+Nope");
    h.step();
    h.step();
    assert!(has(&h, "Nope"), "a wrong key is not flagged: {:?}", labels(&h));
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    h.get_all_by_role(Role::TextInput).find(egui_kittest::Node::is_focused).expect("focused").type_text("F5");
    h.step();
    click(&mut h, "Save");
    assert!(!has(&h, "unsaved changes"), "{:?}", labels(&h));
    let saved = crossmodal::commands::CommandSet::load(&commands).expect("the saved list parses");
    assert_eq!(
        saved.commands[1].action,
        crossmodal::commands::Action::Key { key: "F5".into() },
        "{:?}",
        saved.commands
    );
}

#[test]
fn an_empty_command_list_is_refused_and_the_file_is_kept() {
    let dir = tempfile::tempdir().expect("temp");
    let commands = write_commands(dir.path(), &dir.path().join("fired"));
    let before = std::fs::read_to_string(&commands).expect("read");
    let options = Options { commands: Some(commands.clone()), ..Options::default() };
    let mut h = open(ModelStore::at(dir.path().join("store")), options);
    tab(&mut h, "Commands");
    click(&mut h, "Remove forward");
    click(&mut h, "Remove stop");
    click(&mut h, "Save");
    assert!(has(&h, "the command list is empty"), "no message for an empty list: {:?}", labels(&h));
    click(&mut h, "Listen");
    assert!(!h.state().listening(), "listening started with no commands");
    assert_eq!(std::fs::read_to_string(&commands).expect("read"), before, "the file was changed");
}

#[test]
fn a_broken_command_file_is_reported_and_set_aside_before_a_save() {
    let dir = tempfile::tempdir().expect("temp");
    let commands = dir.path().join("commands.toml");
    std::fs::write(&commands, "[[command]]\nname = \"a\"\nphrases = [\"x\"\n").expect("write");
    let options = Options { commands: Some(commands.clone()), ..Options::default() };
    let mut h = open(ModelStore::at(dir.path().join("store")), options);
    tab(&mut h, "Commands");
    assert!(has(&h, "commands.toml:3:"), "the line of the error is not shown: {:?}", labels(&h));
    assert!(has(&h, "showing the built-in commands"));
    click(&mut h, "Save");
    let kept =
        std::fs::read_to_string(commands.with_extension("toml.broken")).expect("the broken file was kept");
    assert!(kept.contains("phrases = [\"x\""));
    crossmodal::commands::CommandSet::load(&commands).expect("the saved list parses");
}

/// Replaces the text of the file chooser's path field.
fn set_path(h: &mut App, path: &str) {
    h.get_by_role_and_label(Role::TextInput, "Path").focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    h.get_by_role_and_label(Role::TextInput, "Path").type_text(path);
    h.step();
}

fn path_field(h: &App) -> String {
    h.get_by_role_and_label(Role::TextInput, "Path").value().unwrap_or_default()
}

#[test]
fn without_a_file_dialog_the_window_asks_for_paths_and_says_where_it_saved() {
    let dir = tempfile::tempdir().expect("temp");
    let options = Options { file_dialogs: Some(FileDialogs::InWindow), ..Options::default() };
    let mut h = open(default_only(&dir.path().join("store")), options);
    click(&mut h, "Open…");
    assert_eq!(h.state().file_chooser(), Some("Open audio files"));
    // Tab completes what is typed as far as it is unique.
    let speech = common::eval_dir().join("speech");
    set_path(&mut h, &format!("{}/librivox_087", speech.display()));
    h.key_press(egui::Key::Tab);
    h.step();
    assert_eq!(path_field(&h), format!("{}/librivox_0870.wav", speech.display()));
    h.key_press(egui::Key::Enter);
    h.step();
    assert_eq!(h.state().file_chooser(), None, "Enter did not open the file");
    wait(&mut h, "the transcript", Duration::from_mins(2), |h| has(h, "done"));
    assert!(has(&h, "Dashwood"), "{:?}", labels(&h));

    click(&mut h, "Export SRT");
    assert_eq!(h.state().file_chooser(), Some("Save the transcript"));
    assert!(path_field(&h).ends_with("/librivox_0870.srt"), "{}", path_field(&h));
    // A folder that does not exist: said, and Save does nothing.
    let out = dir.path().join("out.srt");
    set_path(&mut h, &dir.path().join("missing/out.srt").to_string_lossy());
    assert!(has(&h, "no such folder"), "{:?}", labels(&h));
    click(&mut h, "Save");
    assert_eq!(h.state().file_chooser(), Some("Save the transcript"));
    set_path(&mut h, &out.to_string_lossy());
    click(&mut h, "Save");
    assert_eq!(h.state().file_chooser(), None);
    let saved = std::fs::read_to_string(&out).expect("the export was written");
    assert!(saved.contains(" --> ") && saved.contains("Dashwood"), "{saved}");
    assert!(
        h.state().notices().iter().any(|n| n == &format!("Saved to {}", out.display())),
        "{:?}",
        h.state().notices()
    );

    // The library's chooser refuses what is not there; Cancel closes it.
    tab(&mut h, "Library");
    click(&mut h, "Add a folder…");
    assert_eq!(h.state().file_chooser(), Some("Add to the library"));
    set_path(&mut h, &dir.path().join("no such folder").to_string_lossy());
    assert!(has(&h, "no such file or folder"), "{:?}", labels(&h));
    click(&mut h, "Cancel");
    assert_eq!(h.state().file_chooser(), None);
}

/// The tab bar at a window size: each tab shows its panel, and the device line never lies over
/// a tab; a long notice wraps inside the window.
fn check_layout(width: f32, height: f32, snapshot: Option<&str>) {
    let dir = tempfile::tempdir().expect("temp");
    let long = format!("no such microphone {}", "with a very long name ".repeat(6));
    let settings = Settings { input_device: Some(long.trim().into()), ..settings() };
    let options = Options { settings: Some(settings), ..Options::default() };
    let mut h = open_sized(default_only(&dir.path().join("store")), options, egui::vec2(width, height));
    let device = h.get_by_label_contains("Device: ").rect();
    assert!(device.max.x <= width + 0.5, "the device line runs out of a {width} px window: {device:?}");
    for title in ["Transcribe", "Commands", "Library", "Space", "Settings"] {
        let rect = h.get_by_label(title).rect();
        assert!(
            !rect.intersects(device),
            "at {width} px the device line {device:?} lies over {title} {rect:?}"
        );
        assert!(rect.max.x <= width, "at {width} px the tab {title} is outside the window");
    }
    for title in ["Commands", "Library", "Space", "Settings", "Transcribe"] {
        click(&mut h, title);
        assert_eq!(h.state().tab_title(), title, "at {width}x{height} a click on {title} did nothing");
        // Nothing runs off the right edge (the Settings table scrolls sideways instead).
        if title != "Settings" {
            let cut: Vec<String> = h
                .query_all(egui_kittest::kittest::By::new())
                .filter(|n| n.accesskit_node().bounding_box().is_some_and(|b| b.x1 > f64::from(width) + 1.0))
                .filter_map(|n| n.accesskit_node().label().or_else(|| n.accesskit_node().value()))
                .collect();
            assert!(cut.is_empty(), "at {width} px the {title} panel runs off the edge: {cut:?}");
        }
    }
    if let Some(name) = snapshot {
        h.snapshot(name);
    }
    // A notice longer than the window is wrapped, all of it inside.
    click(&mut h, "Record");
    wait(&mut h, "the notice", Duration::from_secs(10), |h| has(h, "no input device named"));
    let notice = h.get_by_label_contains("no input device named").rect();
    assert!(notice.max.x <= width + 0.5, "at {width} px the notice is cut: {notice:?}");
    assert!(
        notice.height() > 20.0 || notice.width() < width * 0.8,
        "a long notice was not wrapped: {notice:?}"
    );
}

#[test]
fn at_560_by_420_the_tabs_work_and_notices_wrap() {
    check_layout(560.0, 420.0, Some("narrow"));
}

#[test]
fn at_1000_and_1920_px_the_tabs_work_and_notices_wrap() {
    check_layout(1000.0, 680.0, None);
    check_layout(1920.0, 1080.0, Some("full_hd"));
}

#[test]
fn no_microphone_is_a_notice_not_a_crash() {
    let dir = tempfile::tempdir().expect("temp");
    let settings = Settings { input_device: Some("no such microphone".into()), ..settings() };
    let options = Options { settings: Some(settings), ..Options::default() };
    let mut h = open(default_only(&dir.path().join("store")), options);
    click(&mut h, "Record");
    wait(&mut h, "the notice", Duration::from_secs(10), |h| {
        has(h, "no input device named 'no such microphone'")
    });
    assert!(!h.state().recording());
    click(&mut h, "Dismiss");
    assert!(h.state().notices().is_empty());
}

#[test]
#[cfg_attr(feature = "cuda", ignore = "a CUDA build starts the GPU it is asked for where there is one")]
fn a_gpu_that_does_not_start_leaves_the_cpu_and_a_notice() {
    let dir = tempfile::tempdir().expect("temp");
    let options = Options { device: Some(Preference::Cuda), ..Options::default() };
    let h = open(ModelStore::at(dir.path().join("store")), options);
    h.get_by_label_contains("Device: CPU (CUDA did not start");
    assert!(
        h.state().notices().iter().any(|n| n.starts_with("running on the CPU: CUDA did not start")),
        "{:?}",
        h.state().notices()
    );
}

/// A storage in memory, as eframe's own keeps it on disk.
#[derive(Default)]
struct Memory(std::collections::HashMap<String, String>);

impl eframe::Storage for Memory {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

#[test]
fn settings_are_saved_and_read_back() {
    let dir = tempfile::tempdir().expect("temp");
    let mut h = open(ModelStore::at(dir.path().join("store")), Options::default());
    tab(&mut h, "Settings");
    click(&mut h, "Light");
    let mut storage = Memory::default();
    eframe::App::save(h.state_mut(), &mut storage);
    let read = Settings::load(&storage).expect("saved");
    assert_eq!(read.theme, Theme::Light);
    assert_eq!(read, h.state().settings);
}

#[test]
fn the_window_opens_under_xvfb() {
    let dir = tempfile::tempdir().expect("temp");
    let shot = dir.path().join("window.png");
    let out = std::process::Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x800x24"])
        .arg(env!("CARGO_BIN_EXE_crossmodal"))
        .arg("--screenshot")
        .arg(&shot)
        .env("CROSSMODAL_MODELS", dir.path().join("store"))
        .env("CROSSMODAL_CONFIG", dir.path().join("config"))
        .output()
        .expect("xvfb-run is installed (./test.sh installs it)");
    let (ok, _, stderr) = common::split(&out);
    assert!(ok, "{stderr}");
    let img = image::open(&shot).expect("a screenshot was saved").to_rgba8();
    assert!(img.width() >= 800 && img.height() >= 500, "{}x{}", img.width(), img.height());
    let mut colors: Vec<[u8; 4]> = img.pixels().map(|p| p.0).collect();
    colors.sort_unstable();
    colors.dedup();
    assert!(colors.len() > 20, "the window looks blank ({} colours)", colors.len());
}
