//! A real audio server for the tests: `PulseAudio` with a null sink named `virt` whose monitor is
//! the default source, so that ALSA's default device (what cpal opens) hears, in real time,
//! whatever `paplay -d virt FILE` plays. The server is started if none runs, and left running
//! for the next test; tests that use it take turns.

use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

static TURN: Mutex<()> = Mutex::new(());

/// The microphone of the virtual audio server, held by one test at a time.
pub struct VirtualMic {
    _turn: MutexGuard<'static, ()>,
}

fn ok(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn output(cmd: &mut Command) -> String {
    cmd.output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
}

/// Starts `PulseAudio` (if none runs) with the `virt` null sink as the default source.
pub fn virtual_mic() -> VirtualMic {
    let turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    for tool in ["pulseaudio", "pactl", "paplay"] {
        assert!(
            ok(Command::new("sh").args(["-c", &format!("command -v {tool}")])),
            "{tool} is missing: run ./test.sh, or apt-get install pulseaudio pulseaudio-utils libasound2-plugins"
        );
    }
    if !ok(Command::new("pactl").arg("info")) {
        // As root it warns that it is not meant to run as root, and runs.
        let _ = ok(Command::new("pulseaudio").args(["-D", "--exit-idle-time=-1"]));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ok(Command::new("pactl").arg("info")) {
            assert!(Instant::now() < deadline, "PulseAudio did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let sinks = output(Command::new("pactl").args(["list", "short", "sinks"]));
    if !sinks.lines().any(|l| l.split('\t').nth(1) == Some("virt")) {
        assert!(
            ok(Command::new("pactl").args(["load-module", "module-null-sink", "sink_name=virt"])),
            "the null sink could not be made"
        );
    }
    assert!(ok(Command::new("pactl").args(["set-default-source", "virt.monitor"])), "no default source");
    // An idle sink is suspended by default, and its monitor then delivers nothing at all; a
    // microphone delivers sound (or silence) all the time, so the sink is kept running.
    let modules = output(Command::new("pactl").args(["list", "short", "modules"]));
    if modules.lines().any(|l| l.contains("module-suspend-on-idle")) {
        let _ = ok(Command::new("pactl").args(["unload-module", "module-suspend-on-idle"]));
    }
    VirtualMic { _turn: turn }
}

// Playing takes `&self`: only the test holding the turn plays.
#[allow(clippy::unused_self)]
impl VirtualMic {
    /// Plays a file into the microphone at real-time pace; returns once it has been played,
    /// with the moment it began.
    pub fn play(&self, file: &Path) -> Instant {
        let began = Instant::now();
        assert!(
            ok(Command::new("paplay").args(["-d", "virt"]).arg(file)),
            "paplay failed on {}",
            file.display()
        );
        began
    }

    /// Starts playing a file into the microphone; the caller waits for the child.
    pub fn start_playing(&self, file: &Path) -> (std::process::Child, Instant) {
        let child = Command::new("paplay").args(["-d", "virt"]).arg(file).spawn().expect("paplay starts");
        (child, Instant::now())
    }
}

// Not every test program uses it; it asks the server the test holds the turn of.
#[allow(dead_code, clippy::unused_self)]
impl VirtualMic {
    /// The server's address (`PULSE_SERVER`), for a program run with another runtime folder.
    pub fn server(&self) -> String {
        let info = output(Command::new("pactl").arg("info"));
        let path = info
            .lines()
            .find_map(|l| l.strip_prefix("Server String: "))
            .expect("pactl info names the server");
        if path.starts_with('/') { format!("unix:{path}") } else { path.to_owned() }
    }
}

// Listening takes `&self` for the same reason as playing.
#[allow(clippy::unused_self)]
impl VirtualMic {
    /// Makes the null sink the default output too, so that what the program plays can be heard
    /// on its monitor.
    pub fn route_output_here(&self) {
        assert!(
            ok(Command::new("pactl").args(["set-default-sink", "virt"])),
            "the null sink could not be made the default output"
        );
    }

    /// Starts recording the sink's monitor (what is played), until `heard`.
    pub fn start_hearing(&self) -> std::process::Child {
        Command::new("parec")
            .args(["-d", "virt.monitor", "--raw", "--format=s16le", "--rate=16000", "--channels=1"])
            .arg("--latency-msec=20")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("parec starts")
    }

    /// Stops the recording (SIGTERM, on which parec writes out what it holds): 16 kHz mono.
    pub fn heard(&self, child: std::process::Child) -> Vec<f32> {
        let _ = ok(Command::new("kill").args(["-TERM", &child.id().to_string()]));
        let out = child.wait_with_output().expect("parec output");
        out.stdout.chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0).collect()
    }
}

/// A noise bed playing into the microphone the whole time (a fan, other voices): started before
/// listening starts, stopped when dropped.
pub struct NoiseBed(std::process::Child);

impl NoiseBed {
    /// `noise` (unit RMS) at `snr_db` under `speech_level`, written into `dir`.
    pub fn start(mic: &VirtualMic, dir: &Path, noise: &[f32], speech_level: f32, snr_db: f32) -> Self {
        let gain = speech_level * 10f32.powf(-snr_db / 20.0);
        let path = dir.join("noise-bed.wav");
        super::write_wav(&path, &noise.iter().map(|x| x * gain).collect::<Vec<_>>());
        let (child, _) = mic.start_playing(&path);
        // The server needs a moment to start the stream: the noise is there before listening.
        std::thread::sleep(Duration::from_millis(800));
        Self(child)
    }
}

impl Drop for NoiseBed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
