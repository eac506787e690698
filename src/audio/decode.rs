//! Streaming decoders: WAV through hound, everything else through symphonia. Each yields mono
//! blocks (channels averaged) at the file's rate; `AudioReader` resamples them to 16 kHz and
//! hands them out in chunks, so a two-hour file never sits in memory whole.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, Decoder, DecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSourceStream, ReadBytes};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::{Descriptor, Hint, Instantiate, Probe, QueryDescriptor};
use symphonia::default::formats::IsoMp4Reader;

use super::AudioError;
use super::resample::To16k;

/// Frames a source decodes per call (hound); symphonia decodes one packet at a time.
const BLOCK_FRAMES: usize = 8192;

trait MonoSource: Send {
    fn rate(&self) -> u32;
    /// The next block of mono samples, `None` at the end.
    fn next_block(&mut self) -> Result<Option<Vec<f32>>, String>;
    /// Total length in frames where the container says.
    fn frames(&self) -> Option<u64>;
}

fn average(interleaved: &[f32], channels: usize) -> Vec<f32> {
    let channels = channels.max(1);
    interleaved.chunks(channels).map(|f| f.iter().sum::<f32>() / f.len() as f32).collect()
}

struct WavSource {
    reader: hound::WavReader<BufReader<File>>,
    spec: hound::WavSpec,
}

impl MonoSource for WavSource {
    fn rate(&self) -> u32 {
        self.spec.sample_rate
    }

    fn frames(&self) -> Option<u64> {
        Some(u64::from(self.reader.duration()))
    }

    fn next_block(&mut self) -> Result<Option<Vec<f32>>, String> {
        let channels = usize::from(self.spec.channels.max(1));
        let want = BLOCK_FRAMES * channels;
        let interleaved: Vec<f32> = match self.spec.sample_format {
            hound::SampleFormat::Float => self
                .reader
                .samples::<f32>()
                .take(want)
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?,
            hound::SampleFormat::Int => {
                let scale = 1.0 / (1u64 << (self.spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
                self.reader
                    .samples::<i32>()
                    .take(want)
                    .map(|s| s.map(|s| s as f32 * scale))
                    .collect::<Result<_, _>>()
                    .map_err(|e| e.to_string())?
            }
        };
        Ok(if interleaved.is_empty() { None } else { Some(average(&interleaved, channels)) })
    }
}

struct SymphoniaSource {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track: u32,
    rate: u32,
    frames: Option<u64>,
}

impl MonoSource for SymphoniaSource {
    fn rate(&self) -> u32 {
        self.rate
    }

    fn frames(&self) -> Option<u64> {
        self.frames
    }

    fn next_block(&mut self) -> Result<Option<Vec<f32>>, String> {
        guard(|| self.next_block_unguarded())
            .unwrap_or_else(|why| Err(format!("the decoder failed on a damaged part: {why}")))
    }
}

impl SymphoniaSource {
    fn next_block_unguarded(&mut self) -> Result<Option<Vec<f32>>, String> {
        loop {
            let packet = match self.format.next_packet() {
                Ok(p) => p,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Ok(None);
                }
                Err(SymError::ResetRequired) => return Ok(None),
                Err(e) => return Err(e.to_string()),
            };
            if packet.track_id() != self.track {
                continue;
            }
            match self.decoder.decode(&packet) {
                Ok(decoded) => {
                    let spec = *decoded.spec();
                    let mut buf = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
                    buf.copy_interleaved_ref(decoded);
                    let block = average(buf.samples(), spec.channels.count());
                    if !block.is_empty() {
                        return Ok(Some(block));
                    }
                }
                // A damaged packet is skipped, as players do.
                Err(SymError::DecodeError(e)) => tracing::debug!("skipping a damaged packet: {e}"),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// Reads an audio file as 16 kHz mono, chunk by chunk.
pub struct AudioReader {
    source: Box<dyn MonoSource>,
    resampler: To16k,
    ready: Vec<f32>,
    ended: bool,
    path: String,
}

fn is_riff_wave(path: &Path) -> bool {
    let mut head = [0u8; 12];
    File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok()
        && &head[..4] == b"RIFF"
        && &head[8..12] == b"WAVE"
}

impl AudioReader {
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path)
            .map_err(|e| AudioError::Unreadable { path: shown.clone(), detail: e.to_string() })?;
        if meta.is_dir() {
            return Err(AudioError::Directory { path: shown });
        }
        if meta.len() == 0 {
            return Err(AudioError::Empty { path: shown });
        }
        let source: Box<dyn MonoSource> = if is_riff_wave(path) {
            match hound::WavReader::open(path) {
                Ok(reader) => {
                    let spec = reader.spec();
                    if spec.sample_rate == 0 || spec.channels == 0 {
                        return Err(AudioError::Unreadable {
                            path: shown,
                            detail: "the WAV header is corrupt (no rate or channels)".into(),
                        });
                    }
                    Box::new(WavSource { reader, spec })
                }
                // hound reads PCM and float; other WAV codecs (ADPCM, µ-law) go to symphonia.
                Err(hound::Error::Unsupported) => open_symphonia(path, &shown)?,
                Err(e) => {
                    return Err(AudioError::Unreadable {
                        path: shown,
                        detail: format!("corrupt WAV file: {e}"),
                    });
                }
            }
        } else {
            open_symphonia(path, &shown)?
        };
        let resampler = To16k::new(source.rate())
            .map_err(|detail| AudioError::Unreadable { path: shown.clone(), detail })?;
        Ok(Self { source, resampler, ready: Vec::new(), ended: false, path: shown })
    }

    /// Length in seconds, where the file says.
    pub fn duration_secs(&self) -> Option<f64> {
        let rate = self.source.rate();
        self.source.frames().map(|f| f as f64 / f64::from(rate))
    }

    /// Up to `max` samples at 16 kHz; `None` once the file is exhausted.
    pub fn read_chunk(&mut self, max: usize) -> Result<Option<Vec<f32>>, AudioError> {
        let err = |detail: String| AudioError::Unreadable { path: self.path.clone(), detail };
        while self.ready.len() < max && !self.ended {
            if let Some(block) = self.source.next_block().map_err(err)? {
                self.resampler.push(&block, &mut self.ready).map_err(err)?;
            } else {
                self.ended = true;
                self.resampler.finish(&mut self.ready).map_err(err)?;
            }
        }
        if self.ready.is_empty() {
            return Ok(None);
        }
        let take = self.ready.len().min(max);
        let rest = self.ready.split_off(take);
        Ok(Some(std::mem::replace(&mut self.ready, rest)))
    }
}

fn open_symphonia(path: &Path, shown: &str) -> Result<Box<dyn MonoSource>, AudioError> {
    let guarded = guard(|| open_symphonia_unguarded(path, shown));
    guarded.unwrap_or_else(|why| {
        Err(AudioError::Unreadable {
            path: shown.to_owned(),
            detail: format!("the decoder failed on it: {why}"),
        })
    })
}

/// Runs symphonia code, turning a panic into an error. Its readers trust some header fields,
/// so a damaged file can make them panic (found by fuzzing: an ADTS header whose frame length
/// underflows a subtraction); that is this file's problem, not the end of the program.
fn guard<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "it panicked".to_owned())
    })
}

/// symphonia's formats, with its MP4 reader behind `mp4check`: registered first, it is the one
/// the probe picks at an `ftyp` marker.
static PROBE: std::sync::LazyLock<Probe> = std::sync::LazyLock::new(|| {
    let mut probe = Probe::default();
    for descriptor in <IsoMp4Reader as QueryDescriptor>::query() {
        probe.register(&Descriptor { inst: Instantiate::Format(checked_mp4), ..*descriptor });
    }
    symphonia::default::register_enabled_formats(&mut probe);
    probe
});

/// Why an MP4 was refused before its reader saw it.
#[derive(Debug)]
struct DamagedMp4(String);

impl std::fmt::Display for DamagedMp4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "damaged MP4/M4A file: {}", self.0)
    }
}

impl std::error::Error for DamagedMp4 {}

/// The MP4 reader, once the atom tree from the marker on holds together. The probe leaves the
/// stream at the marker, four bytes into the first atom.
#[allow(clippy::trivially_copy_pass_by_ref)] // the signature symphonia's probe calls
fn checked_mp4(
    mut stream: MediaSourceStream,
    options: &FormatOptions,
) -> symphonia::core::errors::Result<Box<dyn FormatReader>> {
    let marker = stream.pos();
    let damaged = |why: String| {
        SymError::IoError(std::io::Error::new(std::io::ErrorKind::InvalidData, DamagedMp4(why)))
    };
    let start = marker.checked_sub(4).ok_or_else(|| damaged("no room for the first atom's size".into()))?;
    super::mp4check::check(&mut stream, start).map_err(damaged)?;
    // The reader steps back four bytes within the stream's buffer: they must be in it.
    stream.seek(std::io::SeekFrom::Start(start))?;
    stream.read_quad_bytes()?;
    Ok(Box::new(IsoMp4Reader::try_new(stream, options)?))
}

fn open_symphonia_unguarded(path: &Path, shown: &str) -> Result<Box<dyn MonoSource>, AudioError> {
    let file = File::open(path)
        .map_err(|e| AudioError::Unreadable { path: shown.to_owned(), detail: e.to_string() })?;
    let stream =
        MediaSourceStream::new(Box::new(file), symphonia::core::io::MediaSourceStreamOptions::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = PROBE
        .format(&hint, stream, &FormatOptions::default(), &MetadataOptions::default())
        .map_err(|e| match e {
            SymError::IoError(e)
                if e.get_ref().is_some_and(<dyn std::error::Error + Send + Sync>::is::<DamagedMp4>) =>
            {
                AudioError::Unreadable { path: shown.to_owned(), detail: e.to_string() }
            }
            // A WAV container holding a codec nobody here decodes (WMA, GSM, …).
            SymError::Unsupported(_) if is_riff_wave(path) => {
                AudioError::Codec { path: shown.to_owned(), detail: e.to_string() }
            }
            e => AudioError::NotAudio { path: shown.to_owned(), detail: e.to_string() },
        })?;
    let format = probed.format;
    let track =
        format.tracks().iter().find(|t| t.codec_params.codec != CODEC_TYPE_NULL).ok_or_else(|| {
            AudioError::NotAudio { path: shown.to_owned(), detail: "no audio track".into() }
        })?;
    let params = track.codec_params.clone();
    let decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| AudioError::Codec { path: shown.to_owned(), detail: e.to_string() })?;
    let rate = params.sample_rate.filter(|&r| r > 0).ok_or_else(|| AudioError::Unreadable {
        path: shown.to_owned(),
        detail: "the file does not say its sample rate".into(),
    })?;
    Ok(Box::new(SymphoniaSource { track: track.id, format, decoder, rate, frames: params.n_frames }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs the `audio_decode` fuzz target found (its first byte picks the extension).
    #[test]
    fn damaged_files_found_by_fuzzing_are_errors() {
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/audio_decode");
        let dir = tempfile::tempdir().expect("temp");
        for (name, ext) in [
            ("regression-nan-float-wav.bin", "wav"),
            ("regression-m4a-huge-table.bin", "m4a"),
            ("regression-adts-underflow.bin", "m4a"),
            ("regression-huge-sample-rate.bin", "m4a"),
            ("regression-m4a-after-id3.bin", "mp3"),
        ] {
            let bytes = std::fs::read(seeds.join(name)).expect("seed");
            let path = dir.path().join(format!("{name}.{ext}"));
            std::fs::write(&path, &bytes[1..]).expect("write");
            // Whatever the outcome, it is a value: no panic, no abort, no non-finite sample.
            if let Ok(mut reader) = AudioReader::open(&path) {
                while let Ok(Some(chunk)) = reader.read_chunk(16_000 * 30) {
                    assert!(chunk.iter().all(|x| x.is_finite()), "{name}");
                }
            }
        }
    }

    fn wav(path: &Path, spec: hound::WavSpec, frames: usize, value: impl Fn(usize, usize) -> f32) {
        let mut w = hound::WavWriter::create(path, spec).expect("create");
        for i in 0..frames {
            for c in 0..usize::from(spec.channels) {
                let v = value(i, c);
                match (spec.sample_format, spec.bits_per_sample) {
                    (hound::SampleFormat::Float, _) => w.write_sample(v).expect("f32"),
                    (_, 8) => w.write_sample((v * 127.0) as i8).expect("i8"),
                    (_, 16) => w.write_sample((v * 32767.0) as i16).expect("i16"),
                    (_, 24) => w.write_sample((v * 8_388_607.0) as i32).expect("i24"),
                    _ => w.write_sample((v * 2_147_483_647.0) as i32).expect("i32"),
                }
            }
        }
        w.finalize().expect("finalize");
    }

    #[test]
    fn every_wav_sample_format_decodes_to_the_same_level() {
        let dir = tempfile::tempdir().expect("temp");
        for (bits, format) in [
            (8, hound::SampleFormat::Int),
            (16, hound::SampleFormat::Int),
            (24, hound::SampleFormat::Int),
            (32, hound::SampleFormat::Int),
            (32, hound::SampleFormat::Float),
        ] {
            let path = dir.path().join(format!("{bits}-{format:?}.wav"));
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 16_000,
                bits_per_sample: bits,
                sample_format: format,
            };
            wav(&path, spec, 1600, |_, _| 0.5);
            let audio = super::super::decode_file(&path).expect("decodes");
            assert_eq!(audio.samples.len(), 1600);
            assert!((audio.samples[800] - 0.5).abs() < 0.01, "{bits} {format:?}: {}", audio.samples[800]);
        }
    }

    #[test]
    fn stereo_is_averaged_not_truncated_to_the_first_channel() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("st.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        wav(&path, spec, 100, |_, c| if c == 0 { 0.5 } else { 0.0 });
        let audio = super::super::decode_file(&path).expect("decodes");
        assert!((audio.samples[50] - 0.25).abs() < 0.001, "{}", audio.samples[50]);
    }

    #[test]
    fn a_48k_file_is_resampled_to_16k() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("48k.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 48_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        wav(&path, spec, 48_000, |i, _| (i as f32 * 0.01).sin() * 0.3);
        let audio = super::super::decode_file(&path).expect("decodes");
        assert_eq!(audio.samples.len(), 16_000);
    }

    #[test]
    fn bad_inputs_are_errors_that_say_what_is_wrong() {
        let dir = tempfile::tempdir().expect("temp");
        let empty = dir.path().join("empty.wav");
        std::fs::write(&empty, b"").expect("write");
        assert!(matches!(super::super::decode_file(&empty), Err(AudioError::Empty { .. })));
        let corrupt = dir.path().join("corrupt.wav");
        std::fs::write(&corrupt, b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0\x01\0\0\0").expect("write");
        assert!(matches!(super::super::decode_file(&corrupt), Err(AudioError::Unreadable { .. })));
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "this is not audio at all, just some words in a file").expect("write");
        assert!(matches!(super::super::decode_file(&text), Err(AudioError::NotAudio { .. })));
        assert!(matches!(super::super::decode_file(dir.path()), Err(AudioError::Directory { .. })));
        let header_only = dir.path().join("header.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        wav(&header_only, spec, 0, |_, _| 0.0);
        assert!(matches!(super::super::decode_file(&header_only), Err(AudioError::Empty { .. })));
    }
}
