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
/// name; ALSA's plugins that are not microphones left out. Where a `PulseAudio` or `PipeWire`
/// server runs (Linux), its sources come first, by the names the desktop's settings show, the
/// server's default marked: ALSA's default leads to it.
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
    #[cfg(target_os = "linux")]
    if let Some(sources) = super::pulse::sources().filter(|s| !s.is_empty()) {
        let server: Vec<InputDevice> = sources
            .into_iter()
            .map(|s| InputDevice {
                name: format!("{}{}", super::pulse::PREFIX, s.name),
                description: s.description,
                is_default: s.is_default,
            })
            .collect();
        if server.iter().any(|d| d.is_default) {
            for d in &mut list {
                d.is_default = false;
            }
        }
        list.splice(0..0, server);
    }
    Ok(list)
}

/// The sound server's source that `--device` names (`pulse:NAME`, or its description).
#[cfg(target_os = "linux")]
fn server_source(wanted: &str) -> Option<super::pulse::Source> {
    let named = wanted.strip_prefix(super::pulse::PREFIX);
    if named.is_none() && wanted.contains(':') {
        return None;
    }
    super::pulse::sources()?.into_iter().find(|s| Some(s.name.as_str()) == named || s.description == wanted)
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

pub(super) enum Block {
    /// Mono samples at the source rate, and when they arrived.
    Audio(Vec<f32>, Instant),
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
    /// The source's sample rate.
    rate: u32,
    /// What came after a burst was gathered (its end, a failure), handed out next.
    held: Option<Block>,
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
    /// How long the source may send nothing without a gap (seconds): a source that delivers in
    /// bursts (a server asked for a long latency, a busy machine) sends nothing between them for
    /// as long as a burst lasts. It starts at `SLACK_AT_START`, follows the biggest burst, and
    /// shrinks while the source delivers steadily.
    slack: f64,
    /// When the latest block arrived.
    last_arrival: Option<Instant>,
}

/// A block that comes this long after the one before (or the first) may begin a burst: what
/// arrives with it is gathered before the gap is judged.
const BURST_AFTER: Duration = Duration::from_millis(50);
/// Blocks of one burst arrive within this of each other.
const BURST_GATHER: Duration = Duration::from_millis(3);
/// The most slack learnt: longer silences are gaps.
const MAX_SLACK_SECS: f64 = 2.0;
/// The slack before the source has shown how it delivers: a source that turns out to send a
/// second at a time is not cut into pieces by silence put in while it waits.
const SLACK_AT_START: f64 = 1.0;
/// How fast the slack shrinks while the source delivers steadily (seconds per second).
const SLACK_SHRINK: f64 = 0.5;

/// A microphone that falls this far behind the wall clock has had a gap, which is filled with
/// silence; less is ordinary buffering (a sound server hands over 10–50 ms at a time).
const GAP_FILL_AFTER_SECS: f64 = 0.25;
/// After a gap the source is trusted to be this late (its buffer), not more.
const USUAL_LATENCY_SECS: f64 = 0.05;

/// Samples of silence to put before a block of `n` samples that arrives `elapsed` seconds after
/// the stream started, when `delivered` samples have been handed out before it and the source
/// may hold back `held` more samples (0 for a block that has just arrived: it is the newest).
fn gap_before(elapsed: f64, delivered: usize, n: usize, held: usize) -> usize {
    let rate = f64::from(SAMPLE_RATE);
    let behind = elapsed * rate - (delivered + n + held) as f64;
    if behind > GAP_FILL_AFTER_SECS * rate { (behind - USUAL_LATENCY_SECS * rate) as usize } else { 0 }
}

impl Clock {
    /// Puts silence for any gap before `block` (a whole burst), which arrived at `arrived`
    /// (not when it is read: a reader that falls behind has not had a gap).
    fn follow(&mut self, block: &mut Vec<f32>, arrived: Instant) {
        let elapsed = arrived.saturating_duration_since(self.origin).as_secs_f64();
        let gap = gap_before(elapsed, self.delivered, block.len(), 0);
        if gap > 0 {
            tracing::debug!(
                "{:.2} s: the source sent nothing for a while; {gap} samples of silence put in",
                elapsed
            );
            block.splice(0..0, std::iter::repeat_n(0.0, gap));
        }
        self.delivered += block.len();
        self.last_arrival = Some(arrived);
        // Silence put in for what turned out to be the wait before a burst has the stream ahead
        // of the clock: the clock moves, so that its newest sample is now again.
        let ahead = self.delivered as f64 / f64::from(SAMPLE_RATE) - elapsed;
        if ahead > USUAL_LATENCY_SECS {
            tracing::debug!("{elapsed:.2} s: the stream is {ahead:.2} s ahead of the clock; the clock moves");
            self.origin = self.origin.checked_sub(Duration::from_secs_f64(ahead)).unwrap_or(self.origin);
        }
    }

    /// The source handed over `secs` of sound at once, `waited` after the block before (`None`
    /// for a burst, gathered after a wait): it may send nothing for as long as the biggest.
    fn burst(&mut self, secs: f64, waited: Option<Duration>) {
        let slack = match waited {
            Some(w) => secs.max(self.slack - w.as_secs_f64() * SLACK_SHRINK),
            None => secs.max(self.slack),
        }
        .min(MAX_SLACK_SECS);
        if waited.is_none() && slack > self.slack + 0.1 {
            tracing::debug!("the source hands over up to {slack:.2} s at once");
        }
        self.slack = slack;
    }

    /// `Capture::position_at`.
    fn position_at(&self, at: Instant) -> (usize, Instant) {
        let position = at.saturating_duration_since(self.origin).as_secs_f64() * f64::from(SAMPLE_RATE);
        let wait = self.slack + GAP_FILL_AFTER_SECS + USUAL_LATENCY_SECS;
        (position as usize, at + Duration::from_secs_f64(wait))
    }

    /// Silence for the time nothing arrived, beyond what the source may still be holding.
    fn idle(&mut self) -> usize {
        let held = (self.slack * f64::from(SAMPLE_RATE)) as usize;
        let gap = gap_before(self.origin.elapsed().as_secs_f64(), self.delivered, 0, held);
        if gap > 0 {
            tracing::trace!("nothing from the source: {gap} samples of silence");
        }
        self.delivered += gap;
        gap
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
                open_input(device.as_deref(), tx, Arc::clone(&level), Arc::clone(&stop))?
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
        let clock = matches!(source, InputSource::Microphone { .. }).then(|| Clock {
            origin: Instant::now(),
            delivered: 0,
            slack: SLACK_AT_START,
            last_arrival: None,
        });
        Ok(Self { rx, resampler, level, stop, _stream: stream, name, ended: false, clock, rate, held: None })
    }

    /// Where the sound heard at `at` lies in what `next` hands out (16 kHz samples from the
    /// start; `None` for a file, which has no clock), and until when it may still be on its way
    /// (the source's buffering: its bursts, and what counts as a gap).
    pub fn position_at(&self, at: Instant) -> Option<(usize, Instant)> {
        self.clock.as_ref().map(|c| c.position_at(at))
    }

    /// The source has sent sound (a microphone's server can take a second or more to start a
    /// stream; a file always has).
    pub fn sounding(&self) -> bool {
        self.clock.as_ref().is_none_or(|c| c.last_arrival.is_some())
    }

    /// Samples `next` has handed out (16 kHz; a file's are not counted).
    pub fn position(&self) -> usize {
        self.clock.as_ref().map_or(0, |c| c.delivered)
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
        let received = match self.held.take() {
            Some(b) => Ok(b),
            None => self.rx.recv_timeout(wait),
        };
        let block = match received {
            Ok(b) => b,
            Err(RecvTimeoutError::Timeout) => {
                // A microphone the server has stopped feeding (a null sink's monitor once
                // nothing plays) is silent: time goes on, and a speaker's pause must reach the
                // detector to end the utterance.
                if let Some(gap) = self.clock.as_mut().map(Clock::idle).filter(|&gap| gap > 0) {
                    return Ok(Captured::Audio(vec![0.0; gap]));
                }
                return Ok(Captured::Idle);
            }
            Err(RecvTimeoutError::Disconnected) => Block::Ended,
        };
        let mut out = Vec::new();
        let mut arrived = Instant::now();
        match block {
            Block::Audio(samples, at) => {
                let (samples, at) = self.with_burst(samples, at);
                arrived = at;
                self.resampler.push(&samples, &mut out).map_err(AudioError::Device)?;
            }
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
            clock.follow(&mut out, arrived);
        }
        Ok(Captured::Audio(out))
    }

    /// A block that comes after a wait, with the rest of its burst (what arrived right after
    /// it); the clock learns how much the source hands over at once.
    fn with_burst(&mut self, mut samples: Vec<f32>, mut at: Instant) -> (Vec<f32>, Instant) {
        let Some(clock) = self.clock.as_mut() else { return (samples, at) };
        let source_secs = |n: usize| n as f64 / f64::from(self.rate);
        let waited = clock.last_arrival.map(|last| at.saturating_duration_since(last));
        if let Some(w) = waited.filter(|w| *w <= BURST_AFTER) {
            clock.burst(source_secs(samples.len()), Some(w));
            return (samples, at);
        }
        loop {
            match self.rx.recv_timeout(BURST_GATHER) {
                Ok(Block::Audio(more, more_at)) if more_at.saturating_duration_since(at) <= BURST_GATHER => {
                    samples.extend(more);
                    at = more_at;
                }
                Ok(other) => {
                    self.held = Some(other);
                    break;
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    self.held = Some(Block::Ended);
                    break;
                }
            }
        }
        clock.burst(source_secs(samples.len()), None);
        (samples, at)
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
                if tx.send(Block::Audio(samples, Instant::now())).is_err() {
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

/// Opens a microphone: a sound server's source by itself where `device` names one (Linux), else
/// through cpal.
fn open_input(
    device: Option<&str>,
    tx: Sender<Block>,
    level: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
) -> Result<(u32, Option<cpal::Stream>, String), AudioError> {
    #[cfg(target_os = "linux")]
    if let Some(server) = device.and_then(server_source) {
        let rate = super::pulse::record(&server.name, tx, level, stop)?;
        return Ok((rate, None, server.description));
    }
    #[cfg(not(target_os = "linux"))]
    drop(stop);
    let (rate, stream, name) = open_microphone(device, tx, level)?;
    Ok((rate, Some(stream), name))
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
        let _ = tx.send(Block::Audio(samples, Instant::now()));
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
        assert_eq!(gap_before(1.03, 16_000 - 320, 320, 0), 0);
        // Two seconds of nothing, then a block: the gap less the usual latency is filled.
        let gap = gap_before(3.0, 16_000, 320, 0);
        assert_eq!(gap, 48_000 - 16_000 - 320 - 800);
        // Filled, the clock is back within the latency: the next block adds nothing.
        assert_eq!(gap_before(3.02, 16_000 + gap + 320, 320, 0), 0);
    }

    #[test]
    fn a_source_that_sends_a_second_at_a_time_has_no_gaps_and_a_late_reader_gets_no_silence() {
        let origin = Instant::now();
        let at = |ms: u64| origin + Duration::from_millis(ms);
        let mut clock = Clock { origin, delivered: 0, slack: SLACK_AT_START, last_arrival: None };
        // A second that arrives as it ends, read late: nothing is added.
        let mut block = vec![0.5; 16_000];
        clock.burst(1.0, None);
        clock.follow(&mut block, at(1000));
        assert_eq!(block.len(), 16_000);
        // The next second arrives a second later, all at once: the wait is no gap.
        let held = (clock.slack * 16_000.0) as usize;
        assert_eq!(gap_before(1.9, clock.delivered, 0, held), 0);
        for k in 2..=3 {
            let mut block = vec![0.5; 16_000];
            clock.follow(&mut block, at(1000 * k));
            assert_eq!(block.len(), 16_000, "second {k}");
        }
        // Nothing for much longer than a burst: a gap.
        assert!(gap_before(5.0, clock.delivered, 0, held) > 0);
        // The sound heard at 2.5 s is at 40 000, and may take the slack and more to arrive.
        let (position, until) = clock.position_at(at(2500));
        assert_eq!(position, 40_000);
        assert!(until >= at(3500), "{:?}", until - origin);
        // A source that hands over 10 ms every 10 ms: after two seconds of it, 0.3 s of nothing
        // is a gap.
        let mut steady = Clock { origin, delivered: 0, slack: SLACK_AT_START, last_arrival: None };
        for _ in 0..200 {
            steady.burst(0.01, Some(Duration::from_millis(10)));
        }
        assert!(steady.slack <= 0.011, "{}", steady.slack);
        let held = (steady.slack * 16_000.0) as usize;
        assert!(gap_before(2.3, 32_000, 0, held) > 0);
    }

    #[test]
    fn silence_put_in_for_the_wait_before_a_burst_moves_the_clock() {
        let origin = Instant::now();
        let mut clock = Clock { origin, delivered: 0, slack: 0.0, last_arrival: None };
        let mut block = vec![0.5; 16_000];
        clock.follow(&mut block, origin + Duration::from_secs(1));
        // Nothing for 0.3 s: taken for a gap (a source that was steady until now), filled.
        clock.delivered += gap_before(1.3, clock.delivered, 0, 0);
        assert_eq!(clock.delivered, 20_000);
        // Then the source's next second arrives whole: the stream is ahead of the clock.
        let arrived = origin + Duration::from_secs(2);
        let mut block = vec![0.5; 16_000];
        clock.follow(&mut block, arrived);
        // The clock moves: the sound of this moment is at the stream's end, not 0.25 s before.
        let (position, _) = clock.position_at(arrived);
        assert!(position.abs_diff(clock.delivered) < 16, "{position} against {}", clock.delivered);
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
