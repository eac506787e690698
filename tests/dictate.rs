//! Push-to-talk dictation end to end, on a real X server (Xvfb) with a real text window (xterm)
//! and the real microphone path (`PulseAudio`'s null sink): `crossmodal dictate` grabs its
//! shortcut, the test holds it down with `xdotool` while a public recording plays into the
//! microphone, and the words must arrive in the xterm, which has the focus.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{crossmodal, lines, says};

/// An X server of the test's own; stopped when dropped.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Self {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1024x768x24", "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb starts (./test.sh installs xvfb)");
        let out = lines(child.stdout.take().expect("stdout"));
        let (_, number) = out.recv_timeout(Duration::from_secs(20)).expect("Xvfb says its display");
        Self { child, display: format!(":{}", number.trim()) }
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("DISPLAY", &self.display);
        cmd
    }

    fn xdotool(&self, args: &[&str]) -> String {
        let out = self.command("xdotool").args(args).output().expect("xdotool runs (./test.sh installs it)");
        assert!(out.status.success(), "xdotool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

type Lines = std::sync::mpsc::Receiver<(std::time::Instant, String)>;

/// Waits up to `secs` for a JSON line of `dictate --json` that has `key` (any line for ""); `err`
/// is what it says on stderr (shown when nothing comes).
fn wait_for(rx: &Lines, err: &Lines, key: &str, secs: u64) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let (_, line) = rx.recv_timeout(left).unwrap_or_else(|_| {
            let said: Vec<String> = err.try_iter().map(|(_, l)| l).collect();
            panic!("no {key:?} from dictate in {secs} s; it said:\n{}", said.join("\n"))
        });
        eprintln!("dictate: {line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        if key.is_empty() || v.get(key).is_some() {
            return v;
        }
    }
}

/// The target: an xterm whose shell writes each typed line to `typed`; its X window id.
fn target_window(x: &Xvfb, typed: &Path, geometry: &str) -> (Killed, String) {
    let script = format!("stty -echo; cat > '{}'", typed.display());
    let xterm = Killed(
        x.command("xterm")
            .args(["-title", "dictation-target", "-geometry", geometry, "-e", "sh", "-c", &script])
            .spawn()
            .expect("xterm starts (./test.sh installs it)"),
    );
    let window = x.xdotool(&["search", "--sync", "--name", "dictation-target"]);
    (xterm, window.lines().next().expect("window id").to_owned())
}

#[test]
fn dictation_types_what_is_said_into_the_focused_window() {
    common::installed("whisper-tiny.en");
    let mic = common::pulse::virtual_mic();
    let x = Xvfb::start();
    let dir = tempfile::tempdir().expect("temp");
    let typed = dir.path().join("typed.txt");
    let (_xterm, window) = target_window(&x, &typed, "80x10+0+0");

    let mut child = x
        .command(env!("CARGO_BIN_EXE_crossmodal"))
        .args(["dictate", "--json", "--key", "ctrl+alt+d"])
        .env("CROSSMODAL_CONFIG", dir.path())
        .env("CROSSMODAL_LOG", "crossmodal=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dictate starts");
    let out = lines(child.stdout.take().expect("stdout"));
    let err = lines(child.stderr.take().expect("stderr"));
    let _dictate = Killed(child);
    let ready = wait_for(&out, &err, "ready", 60);
    assert_eq!(ready["ready"], "Ctrl+Alt+D");

    // No window manager: the test gives the xterm the focus itself.
    x.xdotool(&["windowfocus", "--sync", &window]);
    // The person speaks as the keys go down, a clip cut to its words, and lets go 0.2 s after
    // the last one (the pre-roll promised in `src/dictate.rs` was never tested: every clip
    // played here had half a second of quiet before its first word).
    let clip = common::trimmed(&common::eval_dir().join("speech/goforward.wav"), dir.path());
    x.xdotool(&["keydown", "ctrl+alt+d"]);
    let (mut paplay, _) = mic.start_playing(&clip);
    assert_eq!(wait_for(&out, &err, "listening", 10)["listening"], true);
    assert!(paplay.wait().expect("paplay").success());
    std::thread::sleep(Duration::from_millis(200));
    x.xdotool(&["keyup", "ctrl+alt+d"]);
    // The words may be typed while the keys are still down (the speaker paused): both orders.
    let (mut stopped, mut typed_text) = (false, None);
    while !stopped || typed_text.is_none() {
        let v = wait_for(&out, &err, if stopped { "typed" } else { "" }, 30);
        if v["listening"] == false {
            stopped = true;
        }
        if let Some(t) = v["typed"].as_str() {
            eprintln!("typed {t:?}, {} ms after the keys came up (null: before)", v["ms"]);
            typed_text = Some(t.to_owned());
        }
    }
    let text = typed_text.unwrap_or_default();
    assert!(says(&text, "go forward ten meters"), "{text:?}");

    // The xterm got the words: a newline hands the line to `cat`, which writes it out.
    x.xdotool(&["key", "--window", &window, "Return"]);
    let written = wait_for_file(&typed, Duration::from_secs(10));
    assert_eq!(written.trim(), text, "the window got something else than what was typed");
    let problems: Vec<String> = err.try_iter().map(|(_, l)| l).filter(|l| l.starts_with("error:")).collect();
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn a_bad_shortcut_is_a_clear_message() {
    for (key, expected) in [("ctrl+alt+nosuchkey", "unknown key"), ("ctrl+", "is not a shortcut")] {
        let out = crossmodal().args(["dictate", "--key", key]).output().expect("runs");
        let (ok, _, stderr) = common::split(&out);
        assert!(!ok && stderr.contains(expected), "{key}: {stderr}");
    }
    // No X server to grab it on.
    let out = crossmodal().args(["dictate"]).env_remove("DISPLAY").output().expect("runs");
    let (ok, _, stderr) = common::split(&out);
    assert!(!ok && stderr.contains("X11"), "{stderr}");
}

/// The file's text once it ends with a newline.
fn wait_for_file(path: &Path, within: Duration) -> String {
    let deadline = std::time::Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.ends_with('\n') {
            return text;
        }
        assert!(std::time::Instant::now() < deadline, "nothing reached the window: {text:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits up to `secs` for a line of the window's log that contains `text`; returns the line.
fn wait_in_log(err: &Lines, text: &str, secs: u64) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    let mut said = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok((_, line)) = err.recv_timeout(left) else {
            panic!("no {text:?} from the window in {secs} s; it said:\n{}", said.join("\n"))
        };
        if line.contains(text) {
            return line;
        }
        said.push(line);
    }
}

/// The window's push-to-talk: the same shortcut grab and dictation, started from the window
/// (`--push-to-talk`, as the Settings panel does), with its overlay shown while the keys are
/// down and gone after.
#[test]
fn the_window_dictates_into_the_focused_window_and_shows_that_it_listens() {
    common::installed("whisper-tiny.en");
    let mic = common::pulse::virtual_mic();
    let x = Xvfb::start();
    let dir = tempfile::tempdir().expect("temp");
    let typed = dir.path().join("typed.txt");
    let (_xterm, window) = target_window(&x, &typed, "80x10+0+400");

    let mut child = x
        .command(env!("CARGO_BIN_EXE_crossmodal"))
        .args(["--push-to-talk", "ctrl+alt+d", "--gallery"])
        .arg(dir.path().join("gallery.sqlite"))
        .env("CROSSMODAL_CONFIG", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        // The models where the tests keep them: without this, a run with no CROSSMODAL_MODELS
        // (`./test.sh` on a fresh machine) looked for them under the temporary XDG_DATA_HOME,
        // and the window, with no Whisper, typed nothing.
        .env("CROSSMODAL_MODELS", common::store().root())
        // Debug: a wait that times out shows all the window said (`wait_in_log`).
        .env("CROSSMODAL_LOG", "crossmodal=debug")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the window starts");
    let err = lines(child.stderr.take().expect("stderr"));
    let _window = Killed(child);
    let ready = wait_in_log(&err, "push-to-talk ready", 120);
    assert!(ready.contains("Ctrl+Alt+D"), "{ready}");
    let overlay = || x.command("xdotool").args(["search", "--name", "crossmodal: listening"]).output();
    let shown = || overlay().is_ok_and(|o| o.status.success());
    assert!(!shown(), "the overlay shows before the keys go down");

    x.xdotool(&["windowfocus", "--sync", &window]);
    x.xdotool(&["keydown", "ctrl+alt+d"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !shown() {
        assert!(std::time::Instant::now() < deadline, "no overlay while listening");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The overlay must not have taken the focus from the window the words are for.
    assert_eq!(x.xdotool(&["getwindowfocus"]), window, "the overlay took the focus");
    mic.play(&common::eval_dir().join("speech/goforward.wav"));
    std::thread::sleep(Duration::from_millis(300));
    x.xdotool(&["keyup", "ctrl+alt+d"]);
    let line = wait_in_log(&err, "push-to-talk typed:", 30);
    let text = line.split("push-to-talk typed:").nth(1).unwrap_or_default().trim().to_owned();
    assert!(says(&text, "go forward ten meters"), "{line}");
    x.xdotool(&["key", "--window", &window, "Return"]);
    let written = wait_for_file(&typed, Duration::from_secs(10));
    assert_eq!(written.trim(), text, "the window got something else than what was typed");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while shown() {
        assert!(std::time::Instant::now() < deadline, "the overlay stays after the words were typed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A headless Wayland compositor (sway) of the test's own, with its runtime folder; stopped when
/// dropped. sway refuses to run as root, so it runs as `nobody`; root reaches its socket anyway.
struct Sway {
    child: Child,
    runtime: tempfile::TempDir,
    display: String,
}

impl Sway {
    fn start() -> Self {
        use std::os::unix::fs::PermissionsExt as _;
        let runtime = tempfile::tempdir().expect("temp");
        std::os::unix::fs::chown(runtime.path(), Some(65534), Some(65534)).expect("chown");
        std::fs::set_permissions(runtime.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let config = runtime.path().join("sway.conf");
        std::fs::write(&config, "output HEADLESS-1 resolution 1280x800\n").expect("config");
        let child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sway", "-c"])
            .arg(&config)
            .env_remove("DISPLAY")
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env("HOME", runtime.path())
            .env("WLR_BACKENDS", "headless")
            .env("WLR_LIBINPUT_NO_DEVICES", "1")
            .env("WLR_RENDERER", "pixman")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sway starts (./test.sh installs it)");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let display = loop {
            let found = std::fs::read_dir(runtime.path()).expect("runtime").flatten().find_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (name.starts_with("wayland-") && !name.contains(".lock")).then_some(name)
            });
            if let Some(name) = found {
                break name;
            }
            assert!(std::time::Instant::now() < deadline, "sway made no Wayland socket");
            std::thread::sleep(Duration::from_millis(50));
        };
        Self { child, runtime, display }
    }

    /// A client of this compositor (no X11 display: a Wayland session).
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_remove("DISPLAY")
            .env("WAYLAND_DISPLAY", &self.display)
            .env("XDG_RUNTIME_DIR", self.runtime.path())
            .env_remove("CROSSMODAL_TYPE")
            .env_remove("CROSSMODAL_DICTATE_SOCKET");
        cmd
    }
}

impl Drop for Sway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a `wev` window received as text: the characters of its key presses.
fn received(wev: &Lines) -> String {
    wev.try_iter()
        .filter_map(|(_, l)| {
            let (_, after) = l.split_once("utf8: '")?;
            after.strip_suffix('\'').map(str::to_owned)
        })
        .collect()
}

/// On Wayland no program may grab a key: dictation is started and stopped by `crossmodal
/// dictate --toggle` (what a person binds to a shortcut in the desktop's settings), and the words
/// are typed with wtype into the Wayland window that has the focus (`wev`, which prints each key).
#[test]
fn on_wayland_a_bound_toggle_command_starts_dictation_and_wtype_types_into_the_focused_window() {
    common::installed("whisper-tiny.en");
    let mic = common::pulse::virtual_mic();
    let sway = Sway::start();
    let dir = tempfile::tempdir().expect("temp");
    let mut wev = sway
        .command("stdbuf")
        .args(["-oL", "wev"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("wev starts (./test.sh installs it)");
    let keys = lines(wev.stdout.take().expect("stdout"));
    let _wev = Killed(wev);
    // The only window: sway gives it the focus once it is mapped (the headless seat has no
    // keyboard until wtype brings a virtual one).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !keys.try_iter().any(|(_, l)| l.contains("xdg_toplevel] configure")) {
        assert!(std::time::Instant::now() < deadline, "wev's window was never shown");
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut child = sway
        .command(env!("CARGO_BIN_EXE_crossmodal"))
        .args(["dictate", "--json"])
        .env("CROSSMODAL_CONFIG", dir.path())
        .env("CROSSMODAL_LOG", "crossmodal=debug")
        // A server asked for a long latency (a Bluetooth headset, a busy machine): the sound
        // comes a second at a time, late, and a newly opened stream takes two seconds to start.
        .env("PULSE_LATENCY_MSEC", "1000")
        // The audio server lives in the test's own runtime folder, not the compositor's.
        .env("PULSE_SERVER", mic.server())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dictate starts");
    let out = lines(child.stdout.take().expect("stdout"));
    let err = lines(child.stderr.take().expect("stderr"));
    let _dictate = Killed(child);
    let ready = wait_for(&out, &err, "ready", 60);
    assert!(ready["ready"].is_null(), "no key can be grabbed on Wayland: {ready}");
    let trigger = ready["trigger"].as_str().unwrap_or_default();
    assert!(trigger.contains("bind `crossmodal dictate --toggle`"), "{ready}");
    let typing = ready["typing"].as_str().unwrap_or_default();
    assert!(typing.starts_with("typing with wtype: a Wayland session"), "{ready}");

    let toggle = || {
        let o = sway
            .command(env!("CARGO_BIN_EXE_crossmodal"))
            .args(["dictate", "--toggle"])
            .output()
            .expect("runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    assert_eq!(toggle(), "listening");
    assert_eq!(wait_for(&out, &err, "listening", 10)["listening"], true);
    // Stopped a moment after the phrase ends, before the server has handed all of it over: what
    // was said before the stop is still heard.
    let clip = common::eval_dir().join("speech/goforward.wav");
    let secs = crossmodal::audio::decode_file(&clip).expect("clip").samples.len() as f64 / 16_000.0;
    let (mut paplay, _) = mic.start_playing(&clip);
    std::thread::sleep(Duration::from_secs_f64(secs + 0.2));
    assert_eq!(toggle(), "stopped");
    assert!(paplay.wait().expect("paplay").success());
    let typed = wait_for(&out, &err, "typed", 30)["typed"].as_str().unwrap_or_default().to_owned();
    assert!(says(&typed, "go forward ten meters"), "{typed:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut got = String::new();
    while got.len() < typed.len() && std::time::Instant::now() < deadline {
        got.push_str(&received(&keys));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(got, typed, "the Wayland window received something else than what was typed");
}

/// The window is a native Wayland client (winit): with no X11 display it opens under sway.
#[test]
fn the_window_opens_natively_on_wayland() {
    let sway = Sway::start();
    let dir = tempfile::tempdir().expect("temp");
    let out = sway
        .command(env!("CARGO_BIN_EXE_crossmodal"))
        .arg("--first-frame")
        .env("CROSSMODAL_CONFIG", dir.path())
        .env("CROSSMODAL_MODELS", dir.path().join("store"))
        .output()
        .expect("runs");
    let (ok, stdout, stderr) = common::split(&out);
    assert!(ok && stdout.contains("first frame after"), "{stdout}\n{stderr}");
}
