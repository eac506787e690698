//! Live audio: the microphone through cpal, or a file played at real-time pace through the very
//! same path (the "virtual microphone" that makes live mode testable without a sound card).
//! Either way the consumer receives 16 kHz mono blocks.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use super::resample::To16k;
use super::{AudioError, AudioReader, SAMPLE_RATE, rms};

/// Where live audio comes from.
#[derive(Debug, Clone)]
pub enum InputSource {
    /// A cpal input device by name, or the default one.
    Microphone { device: Option<String> },
    /// A file fed at `speed` × real time (1.0 = real time).
    File { path: PathBuf, speed: f32 },
}

/// An input device as a person picks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputDevice {
    /// What `--device` takes: ALSA's name for it on Linux ("pulse", "default",
    /// "sysdefault:CARD=PCH"), the system's name elsewhere.
    pub name: String,
    /// What it is, in words (`PulseAudio Sound Server`).
    pub description: String,
    /// The system's default input.
    pub is_default: bool,
}

impl std::fmt::Display for InputDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let default = if self.is_default { " (default)" } else { "" };
        if self.description == self.name {
            write!(f, "{}{default}", self.name)
        } else {
            write!(f, "{}{default}: {}", self.name, self.description)
        }
    }
}

/// ALSA's plugins that are not microphones (a rate converter, the sink that discards all
/// samples, channel mixers…): listed by ALSA as devices, never what a person means.
const NOT_MICROPHONES: [&str; 14] = [
    "null",
    "speex",
    "speexrate",
    "lavrate",
    "lavcrate",
    "samplerate",
    "samplerate_best",
    "samplerate_linear",
    "samplerate_medium",
    "samplerate_order",
    "upmix",
    "vdownmix",
    "jack",
    "oss",
];

/// `--device`'s name for a device, and its description.
fn naming(device: &cpal::Device) -> (String, String) {
    let description = device.description().map(|d| d.name().to_owned()).unwrap_or_default();
    let name = device.id().map_or_else(|_| description.clone(), |id| id.id().to_owned());
    let description = if description.is_empty() { name.clone() } else { description };
    (name, description)
}

/// The input devices a person would pick from: the default first (marked), then the others by
/// name; ALSA's plugins that are not microphones left out.
pub fn input_devices() -> Result<Vec<InputDevice>, AudioError> {
    let host = cpal::default_host();
    let default = host.default_input_device().map(|d| naming(&d).0);
    let devices = host.input_devices().map_err(|e| AudioError::Device(e.to_string()))?;
    let mut list: Vec<InputDevice> = devices
        .map(|d| naming(&d))
        .filter(|(name, _)| !NOT_MICROPHONES.contains(&name.as_str()))
        .map(|(name, description)| InputDevice {
            is_default: default.as_ref() == Some(&name),
            name,
            description,
        })
        .collect();
    list.sort_by(|a, b| b.is_default.cmp(&a.is_default).then_with(|| a.name.cmp(&b.name)));
    list.dedup_by(|a, b| a.name == b.name);
    Ok(list)
}

/// Where the chosen input device is remembered between runs: `$CROSSMODAL_CONFIG`, else the
/// platform's config folder (`~/.config/crossmodal` on Linux).
pub fn config_dir() -> Option<PathBuf> {
    std::env::var_os("CROSSMODAL_CONFIG").map(PathBuf::from).or_else(|| {
        directories::ProjectDirs::from("", "", "crossmodal").map(|d| d.config_dir().to_path_buf())
    })
}

const REMEMBERED_DEVICE: &str = "input-device";

/// The input device chosen last time, if one was.
pub fn remembered_device(config: &std::path::Path) -> Option<String> {
    let name = std::fs::read_to_string(config.join(REMEMBERED_DEVICE)).ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// Remembers an input device the user chose, for next time.
pub fn remember_device(config: &std::path::Path, name: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(config)?;
    std::fs::write(config.join(REMEMBERED_DEVICE), format!("{name}\n"))
}

/// The device to open: the one asked for; else the one chosen last time if it is still there;
/// else the default (`None`). The second value says it was remembered.
pub fn choose_device(asked: Option<&str>, config: Option<&std::path::Path>) -> (Option<String>, bool) {
    if let Some(a) = asked {
        return (Some(a.to_owned()), false);
    }
    let Some(last) = config.and_then(remembered_device) else { return (None, false) };
    match input_devices() {
        Ok(devices) if devices.iter().any(|d| d.name == last || d.description == last) => (Some(last), true),
        _ => (None, false),
    }
}

enum Block {
    /// Mono samples at the source rate.
    Audio(Vec<f32>),
    Ended,
    Failed(String),
}

/// A running capture. Dropping it stops the source.
pub struct Capture {
    rx: Receiver<Block>,
    resampler: To16k,
    level: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    // Held so the cpal stream keeps running; dropped with the capture.
    _stream: Option<cpal::Stream>,
    /// A human name for what is being captured.
    pub name: String,
    ended: bool,
    /// A microphone's clock: when its stream started, and how many samples (16 kHz) have been
    /// handed out since. A file played as one keeps its own pace instead.
    clock: Option<Clock>,
}

/// Follows a microphone against the wall clock, so that time the audio server delivered
/// nothing is not lost: `PulseAudio` hands a null sink's monitor nothing while nothing plays, and
/// suspends idle sources; devices drop out. Utterance times then count from when listening
/// began, as the person pressing Record counts them, and a recording keeps the pauses.
#[derive(Debug)]
struct Clock {
    /// When the stream started: listening began then, whether or not the server sent sound.
    origin: Instant,
    delivered: usize,
}

/// A microphone that falls this far behind the wall clock has had a gap, which is filled with
/// silence; less is ordinary buffering (a sound server hands over 10–50 ms at a time).
const GAP_FILL_AFTER_SECS: f64 = 0.25;
/// After a gap the source is trusted to be this late (its buffer), not more.
const USUAL_LATENCY_SECS: f64 = 0.05;

/// Samples of silence to put before a block of `n` samples that arrives `elapsed` seconds after
/// the first sample was heard, when `delivered` samples have been handed out before it.
fn gap_before(elapsed: f64, delivered: usize, n: usize) -> usize {
    let rate = f64::from(SAMPLE_RATE);
    let behind = elapsed * rate - (delivered + n) as f64;
    if behind > GAP_FILL_AFTER_SECS * rate { (behind - USUAL_LATENCY_SECS * rate) as usize } else { 0 }
}

impl Clock {
    /// Puts silence for any gap before `block`.
    fn follow(&mut self, block: &mut Vec<f32>) {
        let gap = gap_before(self.origin.elapsed().as_secs_f64(), self.delivered, block.len());
        if gap > 0 {
            block.splice(0..0, std::iter::repeat_n(0.0, gap));
        }
        self.delivered += block.len();
    }
}

/// What `Capture::next` hands out.
#[derive(Debug)]
pub enum Captured {
    Audio(Vec<f32>),
    /// No audio within the wait.
    Idle,
    /// The file ended (a microphone never ends by itself).
    Ended,
}

impl Capture {
    pub fn start(source: &InputSource) -> Result<Self, AudioError> {
        let (tx, rx) = mpsc::channel();
        let level = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (rate, stream, name) = match source {
            InputSource::Microphone { device } => {
                let (rate, stream, name) = open_microphone(device.as_deref(), tx, Arc::clone(&level))?;
                (rate, Some(stream), name)
            }
            InputSource::File { path, speed } => {
                let reader = AudioReader::open(path)?;
                let stop = Arc::clone(&stop);
                let level = Arc::clone(&level);
                let speed = if speed.is_finite() && *speed > 0.0 { *speed } else { 1.0 };
                std::thread::Builder::new()
                    .name("virtual-microphone".into())
                    .spawn(move || play_file(reader, speed, &tx, &stop, &level))
                    .map_err(|e| AudioError::Device(e.to_string()))?;
                (SAMPLE_RATE, None, format!("file {}", path.display()))
            }
        };
        let resampler = To16k::new(rate).map_err(AudioError::Device)?;
        let clock = matches!(source, InputSource::Microphone { .. })
            .then(|| Clock { origin: Instant::now(), delivered: 0 });
        Ok(Self { rx, resampler, level, stop, _stream: stream, name, ended: false, clock })
    }

    /// The input level (RMS of the latest block, 0..1), for a meter.
    pub fn level(&self) -> f32 {
        f32::from_bits(self.level.load(Ordering::Relaxed))
    }

    /// Waits up to `wait` for audio; returns 16 kHz mono samples.
    pub fn next(&mut self, wait: Duration) -> Result<Captured, AudioError> {
        if self.ended {
            return Ok(Captured::Ended);
        }
        let block = match self.rx.recv_timeout(wait) {
            Ok(b) => b,
            Err(RecvTimeoutError::Timeout) => {
                // A microphone the server has stopped feeding (a null sink's monitor once
                // nothing plays) is silent: time goes on, and a speaker's pause must reach the
                // detector to end the utterance.
                if let Some(clock) = self.clock.as_mut() {
                    let gap = gap_before(clock.origin.elapsed().as_secs_f64(), clock.delivered, 0);
                    if gap > 0 {
                        clock.delivered += gap;
                        return Ok(Captured::Audio(vec![0.0; gap]));
                    }
                }
                return Ok(Captured::Idle);
            }
            Err(RecvTimeoutError::Disconnected) => Block::Ended,
        };
        let mut out = Vec::new();
        match block {
            Block::Audio(samples) => self.resampler.push(&samples, &mut out).map_err(AudioError::Device)?,
            Block::Ended => {
                self.ended = true;
                self.resampler.finish(&mut out).map_err(AudioError::Device)?;
                if out.is_empty() {
                    return Ok(Captured::Ended);
                }
            }
            Block::Failed(e) => return Err(AudioError::Device(e)),
        }
        if let Some(clock) = self.clock.as_mut().filter(|_| !out.is_empty()) {
            clock.follow(&mut out);
        }
        Ok(Captured::Audio(out))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn play_file(mut reader: AudioReader, speed: f32, tx: &Sender<Block>, stop: &AtomicBool, level: &AtomicU32) {
    // 100 ms blocks, like a sound card's period.
    let block = SAMPLE_RATE as usize / 10;
    let began = Instant::now();
    let mut sent = 0usize;
    while !stop.load(Ordering::Relaxed) {
        match reader.read_chunk(block) {
            Ok(Some(samples)) => {
                sent += samples.len();
                level.store(rms(&samples).to_bits(), Ordering::Relaxed);
                if tx.send(Block::Audio(samples)).is_err() {
                    return;
                }
                let due = Duration::from_secs_f64(sent as f64 / f64::from(SAMPLE_RATE) / f64::from(speed));
                if let Some(wait) = due.checked_sub(began.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = tx.send(Block::Failed(e.to_string()));
                return;
            }
        }
    }
    let _ = tx.send(Block::Ended);
}

fn open_microphone(
    name: Option<&str>,
    tx: Sender<Block>,
    level: Arc<AtomicU32>,
) -> Result<(u32, cpal::Stream, String), AudioError> {
    let host = cpal::default_host();
    let device = match name {
        None => host
            .default_input_device()
            .ok_or_else(|| AudioError::Device("no microphone: the system has no input device".into()))?,
        Some(wanted) => host
            .input_devices()
            .map_err(|e| AudioError::Device(e.to_string()))?
            // By `--device`'s name (pulse), or by what it is called (PulseAudio Sound Server).
            .find(|d| {
                let (name, description) = naming(d);
                name == wanted || description == wanted
            })
            .ok_or_else(|| {
                AudioError::Device(format!(
                    "no input device named '{wanted}'; `crossmodal devices` lists them"
                ))
            })?,
    };
    let shown = device.to_string();
    let supported = device
        .default_input_config()
        .map_err(|e| AudioError::Device(format!("{shown} cannot be opened: {e}")))?;
    let channels = usize::from(supported.channels().max(1));
    let rate = supported.sample_rate();
    let config = supported.config();
    let failed = tx.clone();
    let on_error = move |e: cpal::Error| {
        let _ = failed.send(Block::Failed(e.to_string()));
    };
    let mono = move |data: &[f32]| {
        let samples: Vec<f32> =
            data.chunks(channels).map(|f| f.iter().sum::<f32>() / f.len() as f32).collect();
        level.store(rms(&samples).to_bits(), Ordering::Relaxed);
        let _ = tx.send(Block::Audio(samples));
    };
    macro_rules! stream {
        ($t:ty, $to_f32:expr) => {{
            let mono = mono;
            device.build_input_stream::<$t, _, _>(
                config,
                move |data: &[$t], _: &cpal::InputCallbackInfo| {
                    let converted: Vec<f32> = data.iter().map(|&s| $to_f32(s)).collect();
                    mono(&converted);
                },
                on_error,
                None,
            )
        }};
    }
    let stream = match supported.sample_format() {
        cpal::SampleFormat::F32 => stream!(f32, |s: f32| s),
        cpal::SampleFormat::I16 => stream!(i16, |s: i16| f32::from(s) / 32_768.0),
        cpal::SampleFormat::U16 => stream!(u16, |s: u16| (f32::from(s) - 32_768.0) / 32_768.0),
        cpal::SampleFormat::I32 => stream!(i32, |s: i32| s as f32 / 2_147_483_648.0),
        cpal::SampleFormat::U8 => stream!(u8, |s: u8| (f32::from(s) - 128.0) / 128.0),
        cpal::SampleFormat::I8 => stream!(i8, |s: i8| f32::from(s) / 128.0),
        cpal::SampleFormat::F64 => stream!(f64, |s: f64| s as f32),
        other => {
            return Err(AudioError::Device(format!(
                "{shown} offers {other:?} samples, which are not supported"
            )));
        }
    }
    .map_err(|e| AudioError::Device(format!("{shown} cannot be opened: {e}")))?;
    stream.play().map_err(|e| AudioError::Device(format!("{shown} cannot start: {e}")))?;
    Ok((rate, stream, shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_the_server_delivered_nothing_becomes_silence_and_buffering_does_not() {
        // 20 ms blocks arriving 30 ms late: buffering, nothing to fill.
        assert_eq!(gap_before(1.03, 16_000 - 320, 320), 0);
        // Two seconds of nothing, then a block: the gap less the usual latency is filled.
        let gap = gap_before(3.0, 16_000, 320);
        assert_eq!(gap, 48_000 - 16_000 - 320 - 800);
        // Filled, the clock is back within the latency: the next block adds nothing.
        assert_eq!(gap_before(3.02, 16_000 + gap + 320, 320), 0);
    }

    #[test]
    fn a_chosen_device_is_remembered_and_a_vanished_one_falls_back_to_the_default() {
        let dir = tempfile::tempdir().expect("temp");
        assert_eq!(remembered_device(dir.path()), None);
        remember_device(dir.path(), "USB Microphone").expect("writes");
        assert_eq!(remembered_device(dir.path()).as_deref(), Some("USB Microphone"));
        // Asked for explicitly wins; a remembered device that is not plugged in gives the default.
        assert_eq!(choose_device(Some("hw:1"), Some(dir.path())), (Some("hw:1".into()), false));
        assert_eq!(choose_device(None, Some(dir.path())), (None, false));
    }
}
