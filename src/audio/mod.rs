//! Audio in: decoding files to the 16 kHz mono f32 samples Whisper wants.

use std::path::Path;

/// Whisper's sample rate.
pub const SAMPLE_RATE: u32 = 16_000;

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("{path}: {detail}")]
    Unreadable { path: String, detail: String },
    #[error(
        "{path}: {rate} Hz audio is not supported yet; convert it to 16 kHz (e.g. `sox in.wav -r 16000 out.wav`)"
    )]
    Rate { path: String, rate: u32 },
    #[error("{path}: the file holds no audio")]
    Empty { path: String },
}

/// Decoded audio: mono samples in [-1, 1] at `SAMPLE_RATE`.
#[derive(Debug, Clone)]
pub struct Audio {
    pub samples: Vec<f32>,
}

impl Audio {
    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / f64::from(SAMPLE_RATE)
    }
}

/// Reads a WAV file (8/16/24/32-bit integer or 32-bit float, any channel count), averaging the
/// channels into one.
pub fn read_wav(path: &Path) -> Result<Audio, AudioError> {
    let shown = path.display().to_string();
    let unreadable = |detail: String| AudioError::Unreadable {
        path: shown.clone(),
        detail,
    };
    let reader = hound::WavReader::open(path).map_err(|e| unreadable(e.to_string()))?;
    let spec = reader.spec();
    if spec.sample_rate != SAMPLE_RATE {
        return Err(AudioError::Rate {
            path: shown,
            rate: spec.sample_rate,
        });
    }
    let channels = usize::from(spec.channels.max(1));
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .into_samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(|e| unreadable(e.to_string()))?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|s| s as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(|e| unreadable(e.to_string()))?
        }
    };
    let samples: Vec<f32> = interleaved
        .chunks(channels)
        .map(|frame| frame.iter().sum::<f32>() / frame.len() as f32)
        .collect();
    if samples.is_empty() {
        return Err(AudioError::Empty { path: shown });
    }
    Ok(Audio { samples })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wav(path: &Path, spec: hound::WavSpec, frames: &[[i16; 2]]) {
        let mut w = hound::WavWriter::create(path, spec).expect("create");
        for f in frames {
            for &s in &f[..usize::from(spec.channels)] {
                w.write_sample(s).expect("sample");
            }
        }
        w.finalize().expect("finalize");
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
        write_wav(&path, spec, &[[16_384, 0], [-16_384, -16_384]]);
        let audio = read_wav(&path).expect("decodes");
        assert_eq!(audio.samples, vec![0.25, -0.5]);
    }

    #[test]
    fn garbage_and_empty_files_are_errors() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("bad.wav");
        std::fs::write(&path, b"RIFF\x10\0\0\0WAVEjunk").expect("write");
        assert!(matches!(
            read_wav(&path),
            Err(AudioError::Unreadable { .. })
        ));
        let empty = dir.path().join("empty.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        write_wav(&empty, spec, &[]);
        assert!(matches!(read_wav(&empty), Err(AudioError::Empty { .. })));
    }
}
