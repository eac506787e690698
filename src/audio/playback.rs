//! Audio out: a recording played from a moment on, through the default output device (cpal).
//! A thread decodes the file (16 kHz mono, as everything else reads it) into a bounded queue;
//! the device's callback takes from it, stretched to the device's rate, and counts what it has
//! played, so the window can show where the playback is.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use super::{AudioError, AudioReader, SAMPLE_RATE};

/// Decoded audio kept ahead of the device, at most (two seconds).
const AHEAD: usize = 2 * SAMPLE_RATE as usize;

/// What the decoder and the device share.
#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<f32>>,
    room: Condvar,
    /// 16 kHz samples the device has played.
    played: AtomicU64,
    /// The decoder has put the last sample in the queue.
    decoded: AtomicBool,
    stop: AtomicBool,
    /// Why decoding stopped early, if it did.
    problem: Mutex<Option<String>>,
}

/// A recording playing; dropping it stops it.
pub struct Playback {
    shared: Arc<Shared>,
    start: f64,
    device: String,
    _stream: cpal::Stream,
}

impl std::fmt::Debug for Playback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Playback")
            .field("start", &self.start)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl Playback {
    /// Plays `path` from `start` seconds to its end on the default output device.
    pub fn start(path: &Path, start: f64) -> Result<Self, AudioError> {
        let mut reader = AudioReader::open(path)?;
        let shared = Arc::new(Shared::default());
        let (stream, device) = open_output(Arc::clone(&shared))?;
        let decoder = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("playback-decoder".into())
            .spawn(move || decode(&mut reader, start, &decoder))
            .map_err(|e| AudioError::Device(format!("the playback thread could not start: {e}")))?;
        Ok(Self { shared, start, device, _stream: stream })
    }

    /// Where in the recording the sound now coming out is, in seconds.
    pub fn position(&self) -> f64 {
        self.start + self.shared.played.load(Ordering::Relaxed) as f64 / f64::from(SAMPLE_RATE)
    }

    /// Everything has been played (or decoding failed: see `problem`).
    pub fn finished(&self) -> bool {
        self.shared.decoded.load(Ordering::Acquire)
            && self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner).is_empty()
    }

    /// Why the recording stopped before its end, if it did.
    pub fn problem(&self) -> Option<String> {
        self.shared.problem.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The output device it plays on.
    pub fn device(&self) -> &str {
        &self.device
    }
}

impl Drop for Playback {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.room.notify_all();
    }
}

/// Reads the file from `start` into the queue, waiting while the queue is full.
fn decode(reader: &mut AudioReader, start: f64, shared: &Shared) {
    let mut skip = (start.max(0.0) * f64::from(SAMPLE_RATE)) as usize;
    loop {
        if shared.stop.load(Ordering::Acquire) {
            break;
        }
        let chunk = match reader.read_chunk(SAMPLE_RATE as usize / 4) {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                *shared.problem.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
                break;
            }
        };
        let dropped = skip.min(chunk.len());
        skip -= dropped;
        let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        while queue.len() >= AHEAD && !shared.stop.load(Ordering::Acquire) {
            queue = shared.room.wait(queue).unwrap_or_else(PoisonError::into_inner);
        }
        queue.extend(&chunk[dropped..]);
    }
    shared.decoded.store(true, Ordering::Release);
}

/// Opens the default output device; its callback plays from the queue.
fn open_output(shared: Arc<Shared>) -> Result<(cpal::Stream, String), AudioError> {
    let host = cpal::default_host();
    let device = host
        .default_output_device()
        .ok_or_else(|| AudioError::Device("no speakers: the system has no output device".into()))?;
    let shown = device.to_string();
    let supported = device
        .default_output_config()
        .map_err(|e| AudioError::Device(format!("{shown} cannot be opened: {e}")))?;
    let channels = usize::from(supported.channels().max(1));
    let step = f64::from(SAMPLE_RATE) / f64::from(supported.sample_rate().max(1));
    let config = supported.config();
    // The position between the last two samples taken, for linear interpolation.
    let mut phase = 0.0f64;
    let mut last = [0.0f32; 2];
    let mut next_sample = move || -> f32 {
        phase += step;
        while phase >= 1.0 {
            phase -= 1.0;
            let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let taken = queue.pop_front();
            drop(queue);
            shared.room.notify_one();
            last = [last[1], taken.unwrap_or(0.0)];
            if taken.is_some() {
                shared.played.fetch_add(1, Ordering::Relaxed);
            }
        }
        last[0] + (last[1] - last[0]) * phase as f32
    };
    let on_error = |e: cpal::Error| tracing::warn!("playback: {e}");
    macro_rules! stream {
        ($t:ty, $from_f32:expr) => {{
            device.build_output_stream::<$t, _, _>(
                config,
                move |data: &mut [$t], _: &cpal::OutputCallbackInfo| {
                    for frame in data.chunks_mut(channels) {
                        let s = next_sample().clamp(-1.0, 1.0);
                        frame.fill($from_f32(s));
                    }
                },
                on_error,
                None,
            )
        }};
    }
    let stream = match supported.sample_format() {
        cpal::SampleFormat::F32 => stream!(f32, |s: f32| s),
        cpal::SampleFormat::I16 => stream!(i16, |s: f32| (s * 32_767.0) as i16),
        cpal::SampleFormat::U16 => stream!(u16, |s: f32| (s * 32_767.0 + 32_768.0) as u16),
        cpal::SampleFormat::I32 => stream!(i32, |s: f32| (f64::from(s) * 2_147_483_647.0) as i32),
        cpal::SampleFormat::F64 => stream!(f64, f64::from),
        other => {
            return Err(AudioError::Device(format!(
                "{shown} takes {other:?} samples, which are not supported"
            )));
        }
    }
    .map_err(|e| AudioError::Device(format!("{shown} cannot be opened: {e}")))?;
    stream.play().map_err(|e| AudioError::Device(format!("{shown} cannot start: {e}")))?;
    Ok((stream, shown))
}
