//! Audio in: decoding files (hound for WAV, symphonia for the rest), downmixing, resampling to
//! Whisper's 16 kHz with rubato, live capture (cpal, or a file played at real-time pace), and a
//! learned voice-activity detector that cuts live audio into utterances.

pub mod capture;
mod decode;
mod mp4check;
pub mod playback;
#[cfg(target_os = "linux")]
pub mod pulse;
mod resample;
pub mod silero;
pub mod vad;

use std::path::Path;

pub use decode::AudioReader;

/// Whisper's sample rate.
pub const SAMPLE_RATE: u32 = 16_000;

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("{path}: {detail}")]
    Unreadable { path: String, detail: String },
    #[error("{path}: not an audio file this program can read ({detail})")]
    NotAudio { path: String, detail: String },
    #[error(
        "{path}: the audio codec is not supported ({detail}); WAV, MP3, FLAC, Ogg Vorbis and AAC (M4A) are"
    )]
    Codec { path: String, detail: String },
    #[error("{path}: the file holds no audio")]
    Empty { path: String },
    #[error("{path}: is a directory, not an audio file")]
    Directory { path: String },
    #[error("{path}: could not write: {detail}")]
    Write { path: String, detail: String },
    #[error("audio device: {0}")]
    Device(String),
}

/// Decoded audio: mono samples in [-1, 1] at `SAMPLE_RATE`.
#[derive(Debug, Clone, Default)]
pub struct Audio {
    pub samples: Vec<f32>,
}

impl Audio {
    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / f64::from(SAMPLE_RATE)
    }
}

/// Decodes a whole file to 16 kHz mono. For long files use `AudioReader` and read in chunks.
pub fn decode_file(path: &Path) -> Result<Audio, AudioError> {
    let mut reader = AudioReader::open(path)?;
    let mut samples = Vec::new();
    while let Some(chunk) = reader.read_chunk(SAMPLE_RATE as usize * 30)? {
        samples.extend_from_slice(&chunk);
    }
    if samples.is_empty() {
        return Err(AudioError::Empty { path: path.display().to_string() });
    }
    Ok(Audio { samples })
}

/// Root-mean-square level of a block, for meters and the VAD.
pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
}

/// Writes 16 kHz mono samples as a 16-bit WAV file.
pub fn write_wav(path: &Path, samples: &[f32]) -> Result<(), AudioError> {
    let mut recorder = Recorder::create(path)?;
    recorder.write(samples)?;
    recorder.finish()
}

/// Appends to a WAV recording as audio arrives, so nothing heard is lost if the program stops.
pub struct Recorder {
    writer: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
    path: String,
}

impl Recorder {
    pub fn create(path: &Path) -> Result<Self, AudioError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path, spec)
            .map_err(|e| AudioError::Write { path: path.display().to_string(), detail: e.to_string() })?;
        Ok(Self { writer, path: path.display().to_string() })
    }

    pub fn write(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        for &s in samples {
            self.writer
                .write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16)
                .map_err(|e| AudioError::Write { path: self.path.clone(), detail: e.to_string() })?;
        }
        // Keep the header's length current: the file is valid even if the process is killed.
        self.writer.flush().map_err(|e| AudioError::Write { path: self.path.clone(), detail: e.to_string() })
    }

    pub fn finish(self) -> Result<(), AudioError> {
        let path = self.path.clone();
        self.writer.finalize().map_err(|e| AudioError::Write { path, detail: e.to_string() })
    }
}
