//! Speech to text through whisper.cpp (whisper-rs): load a ggml model, transcribe samples into
//! timed segments.

use std::path::Path;
use std::sync::Once;

use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error("whisper.cpp could not load {path}: {detail}")]
    Load { path: String, detail: String },
    #[error("transcription failed: {0}")]
    Transcribe(String),
}

/// A stretch of speech with its text; times in seconds from the start of the audio.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Transcript {
    pub text: String,
    pub segments: Vec<Segment>,
}

/// A loaded Whisper model.
pub struct Whisper {
    ctx: WhisperContext,
    on_gpu: bool,
}

impl std::fmt::Debug for Whisper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Whisper")
            .field("on_gpu", &self.on_gpu)
            .finish_non_exhaustive()
    }
}

/// whisper.cpp prints its loading chatter to stderr unless the hooks take it over.
fn quiet_whisper_cpp() {
    static ONCE: Once = Once::new();
    ONCE.call_once(whisper_rs::install_logging_hooks);
}

/// Threads for whisper.cpp: every core, at most 8 (more do not help the small models).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(8))
}

impl Whisper {
    /// Loads a ggml model; `use_gpu` asks whisper.cpp for its GPU backend where the build has one.
    pub fn load(path: &Path, use_gpu: bool) -> Result<Self, SpeechError> {
        quiet_whisper_cpp();
        let mut params = WhisperContextParameters::default();
        params.use_gpu(use_gpu);
        let ctx = WhisperContext::new_with_params(path, params).map_err(|e| SpeechError::Load {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        Ok(Self {
            ctx,
            on_gpu: use_gpu,
        })
    }

    pub fn on_gpu(&self) -> bool {
        self.on_gpu
    }

    pub fn is_multilingual(&self) -> bool {
        self.ctx.is_multilingual()
    }

    /// Transcribes 16 kHz mono samples with greedy decoding.
    pub fn transcribe(&self, samples: &[f32], threads: usize) -> Result<Transcript, SpeechError> {
        let err = |e: whisper_rs::WhisperError| SpeechError::Transcribe(e.to_string());
        let mut state = self.ctx.create_state().map_err(err)?;
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(i32::try_from(threads).unwrap_or(2));
        params.set_language(Some("en"));
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        state.full(params, samples).map_err(err)?;
        let mut segments = Vec::new();
        for seg in state.as_iter() {
            let text = seg.to_str_lossy().map_err(err)?.trim().to_owned();
            if text.is_empty() {
                continue;
            }
            // whisper.cpp counts time in centiseconds.
            segments.push(Segment {
                start: seg.start_timestamp() as f64 / 100.0,
                end: seg.end_timestamp() as f64 / 100.0,
                text,
            });
        }
        let text = segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Transcript { text, segments })
    }
}
