//! Speech to text through whisper.cpp (whisper-rs): load a ggml model, transcribe audio into
//! timed segments (language choice or detection, translation, an initial prompt, progress and
//! cancel), with silence gated out before and after Whisper sees it.

mod backend;
pub use backend::cpu_kernels;
pub mod export;
mod stitch;
pub mod wer;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState, WhisperTokenId,
};

use crate::audio::silero::SileroModel;
use crate::audio::{AudioReader, SAMPLE_RATE, vad};

#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error("whisper.cpp could not load {path}: {detail}")]
    Load { path: String, detail: String },
    #[error("transcription failed: {0}")]
    Transcribe(String),
    #[error("{0} is not a language Whisper knows (use a code such as en, de, fr, or auto)")]
    Language(String),
    #[error("{model} is English-only: it cannot {what}; use a multilingual model (whisper-base)")]
    EnglishOnly { model: String, what: &'static str },
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Audio(#[from] crate::audio::AudioError),
}

/// A stretch of speech with its text; times in seconds from the start of the audio.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// Each word with its own times, when asked for (`Options::word_timestamps`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<Word>,
}

impl Segment {
    pub fn new(start: f64, end: f64, text: impl Into<String>) -> Self {
        Self { start, end, text: text.into(), words: Vec::new() }
    }

    /// The same segment moved `secs` later, its words too.
    fn shifted(mut self, secs: f64) -> Self {
        self.start = round_ms(self.start + secs);
        self.end = round_ms(self.end + secs);
        for w in &mut self.words {
            w.start = round_ms(w.start + secs);
            w.end = round_ms(w.end + secs);
        }
        self
    }
}

/// A word and when it was said, from whisper.cpp's token timestamps; `probability` is the mean
/// of its tokens' probabilities.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Word {
    pub start: f64,
    pub end: f64,
    pub word: String,
    pub probability: f32,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Transcript {
    pub text: String,
    /// The spoken language (detected or as asked).
    pub language: String,
    pub segments: Vec<Segment>,
}

impl Transcript {
    fn from_segments(segments: Vec<Segment>, language: String) -> Self {
        let text = segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ");
        Self { text, language, segments }
    }
}

/// How to transcribe.
#[derive(Debug, Clone)]
#[allow(clippy::struct_excessive_bools)] // independent switches, as in whisper.cpp's own parameters
pub struct Options {
    /// A language code ("en", "de", …) or "auto" to detect it (multilingual models).
    pub language: String,
    /// Translate into English (multilingual models).
    pub translate: bool,
    /// Text that primes the decoder: names, spelling, style.
    pub prompt: Option<String>,
    pub threads: usize,
    /// Shrink the encoder's window for clips shorter than 20 s (see `SHORT_AUDIO_CTX_PAD_SECS`):
    /// two to three times faster at the same accuracy on the public set.
    pub short_audio_ctx: bool,
    /// Seconds of window kept past the clip's end when the window is cut.
    pub window_margin_secs: f64,
    /// Times for each word as well as each segment.
    pub word_timestamps: bool,
    /// Segment times at all: without them (voice commands) the decoder emits no timestamp
    /// tokens and the whole clip is one segment, which is quicker.
    pub timestamps: bool,
    /// Without timestamps: at most 8 text tokens plus this many per second of audio. Speech
    /// needs about 4 a second; a decode that loops ("10 of close 10 of close …") stops here
    /// instead of at whisper.cpp's 220-token limit, which is what lets commands cut the
    /// encoder's window close to the clip (see `COMMAND_WINDOW_MARGIN_SECS`).
    pub max_tokens_per_sec: Option<f64>,
    /// The level of the room the audio was heard in, when a live detector knows it
    /// (`vad::Vad::room_level`): the silence gate judges speech against it rather than against
    /// the audio's own first frames.
    pub room_level: Option<f32>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            language: "auto".into(),
            translate: false,
            prompt: None,
            threads: default_threads(),
            short_audio_ctx: true,
            window_margin_secs: SHORT_AUDIO_CTX_PAD_SECS,
            word_timestamps: false,
            timestamps: true,
            max_tokens_per_sec: None,
            room_level: None,
        }
    }
}

/// Threads for whisper.cpp: every core, at most 8 (more do not help the small models).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(8))
}

/// Silence longer than this before the first speech is cut off before Whisper sees the audio.
const LEADING_SILENCE_SECS: f64 = 1.0;
/// whisper.cpp refuses input under one second; shorter clips are padded with silence to this.
const MIN_INPUT_SECS: f64 = 1.1;
/// Whisper's encoder sees 30 s (1500 frames of 20 ms). For a shorter clip the window is cut to
/// the clip plus this much, rounded up to 64 frames: the encoder's cost falls with it.
/// Measured on the public set (`cargo bench --bench transcribe`, release, 2 threads): with 10 s
/// of margin tiny.en keeps its WER (6.93 %) at 0.117× real time instead of 0.326×, and base
/// improves (5.94 → 4.95 %) at 0.237× instead of 0.565×. With 1 s of margin tiny.en fell apart
/// (70 % WER: loops and misheard cards), so the margin is generous on purpose.
pub const SHORT_AUDIO_CTX_PAD_SECS: f64 = 10.0;
/// The margin for voice commands, whose decode is capped (`Options::max_tokens_per_sec`, 8):
/// measured on the public command set, clean and in noise (60 clips, `crossmodal commands match`
/// with a throwaway override of the margin, 2 threads, tiny.en), every margin from 2 to 10 s made
/// the same decisions; without the cap, margins of 6 s and less looped on "ten of clubs" for
/// 3.7–4.7 s; with it, 4 s had no clip over 1.5 s in three runs (2 and 3 s each had a looping
/// "go forward" of about 2 s in one run), and the engine's median time per clip fell from
/// 648–659 ms (10 s) to 469–477 ms. Tuned on the data it was measured on. Live, through a real
/// microphone, the cut window loops more often (three of seven command clips in one run): a
/// loop over a phrase is folded to the phrase (`one_period`), any other loop is decoded again at
/// the safe margin (`Whisper::run`); see docs/BENCHMARKS.md.
pub const COMMAND_WINDOW_MARGIN_SECS: f64 = 4.0;
/// See `Options::max_tokens_per_sec`.
pub const COMMAND_TOKENS_PER_SEC: f64 = 8.0;
const FULL_AUDIO_CTX: i32 = 1500;
/// A segment whose no-speech probability is above this *and* whose tokens average a log
/// probability below `LOW_LOGPROB` is a hallucination over silence or noise ("Thank you.");
/// the same rule and values faster-whisper and OpenAI's reference use.
const NO_SPEECH_PROB: f32 = 0.6;
const LOW_LOGPROB: f32 = -1.0;
/// Long files are transcribed this many seconds at a time, so that memory stays bounded (10
/// minutes: 38 MB of samples, 19 MB of spectrogram). Each chunk edge costs accuracy: Whisper
/// starts the next chunk without the sentences before it. On three 268 s recordings of
/// continuous reading (`scripts/eval/make-long.py` steps 5, 3, 7; tiny.en) one pass made 6.19,
/// 5.32 and 6.68 % WER, chunks of 120 s 8.04, 8.29 and 7.18 %, of 60 s 7.55, 9.16 and 8.79 %.
pub const CHUNK_SECS: usize = 600;
/// Sets the chunk's length in seconds (at least 30), where memory is short or to see the chunk
/// edges at work on a short file (the tests).
pub const CHUNK_SECS_ENV: &str = "CROSSMODAL_CHUNK_SECS";

fn chunk_secs() -> usize {
    std::env::var(CHUNK_SECS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map_or(CHUNK_SECS, |s| s.max(30))
}
/// Segments ending in the last seconds of a chunk are re-done with the next one, so that a word
/// cut by the chunk boundary is heard whole. (It was 5 s: the next chunk then lost a passage that
/// ended 3 s before the boundary, which the chunk before had heard whole.)
const CHUNK_OVERLAP_SECS: f64 = 2.0;
/// The next chunk starts this long before the end of the last segment a chunk is trusted with:
/// Whisper at the start of a chunk skipped 3.3 s of speech once (docs/BENCHMARKS.md, "Every word
/// kept"), and the stretch heard twice is where the two chunks are joined (`stitch`).
const REHEAR_SECS: f64 = 8.0;

/// One decoding pass over prepared input.
struct Pass<'a> {
    input: &'a [f32],
    /// The real clip length (before padding), which no segment may pass.
    clip_secs: f64,
    options: &'a Options,
    prompt: Option<&'a str>,
    cancel: &'a Arc<AtomicBool>,
    progress: Option<&'a Progress>,
}

/// Text that compresses better than this (zlib) is a decoder loop, not speech: OpenAI's
/// reference threshold, also faster-whisper's.
const MAX_COMPRESSION_RATIO: f64 = 2.4;

/// More text tokens than anyone says in this much audio (about 4 a second in running speech, 7
/// when fast): a loop whose varied words compress like speech ("worth 10 of blobs Friend 10 of
/// clubs? 10 of clubs? … fools starts", 22 words and their punctuation from a 1.3 s utterance of
/// "ten of clubs", heard live in a quiet room by the live bench).
const MAX_SPEECH_TOKENS_PER_SEC: f64 = 12.0;

fn too_many_tokens(tokens: usize, secs: f64) -> bool {
    tokens as f64 > 8.0 + MAX_SPEECH_TOKENS_PER_SEC * secs
}

fn compression_ratio(text: &str) -> f64 {
    use std::io::Write as _;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    if z.write_all(text.as_bytes()).is_err() {
        return 0.0;
    }
    z.finish().map_or(0.0, |c| text.len() as f64 / c.len().max(1) as f64)
}

/// A loaded Whisper model.
pub struct Whisper {
    ctx: WhisperContext,
    name: String,
    backend: backend::Backend,
    /// The voice detector that finds where speech begins (and whether there is any).
    detector: Arc<SileroModel>,
}

impl std::fmt::Debug for Whisper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Whisper")
            .field("name", &self.name)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Set to see whisper.cpp's own log and timings on stderr.
pub const WHISPER_LOG_ENV: &str = "CROSSMODAL_WHISPER_LOG";

fn whisper_log() -> bool {
    std::env::var_os(WHISPER_LOG_ENV).is_some()
}

/// Progress of one transcription: fraction done, 0..1.
pub type Progress = Arc<dyn Fn(f32) + Send + Sync>;

impl Whisper {
    /// Loads a ggml model; `use_gpu` asks whisper.cpp for its GPU backend where the build has one.
    /// Which backend it started is read back from whisper.cpp's own report (`device`).
    pub fn load(path: &Path, use_gpu: bool, detector: Arc<SileroModel>) -> Result<Self, SpeechError> {
        let mut params = WhisperContextParameters::default();
        params.use_gpu(use_gpu);
        let load_err = |e: whisper_rs::WhisperError| SpeechError::Load {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        // A first state makes whisper.cpp start its compute backends, and say which.
        let (loaded, report) = backend::reported(|| {
            let ctx = WhisperContext::new_with_params(path, params)?;
            ctx.create_state()?;
            Ok::<_, whisper_rs::WhisperError>(ctx)
        });
        let ctx = loaded.map_err(load_err)?;
        // Named as the catalogue names it (whisper-tiny.en), not by its file (ggml-tiny.en).
        let stem = path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let name = stem.strip_prefix("ggml-").map_or_else(|| stem.clone(), |s| format!("whisper-{s}"));
        Ok(Self { ctx, name, backend: backend::Backend::from_report(&report, use_gpu), detector })
    }

    /// Where whisper.cpp runs this model, as it reported when the model was loaded: "CPU", or
    /// its GPU device ("CUDA0", "Vulkan0", "Metal").
    pub fn device(&self) -> &str {
        &self.backend.device
    }

    pub fn on_gpu(&self) -> bool {
        self.backend.device != backend::CPU
    }

    /// Why a GPU that was asked for is not used, when it is not.
    pub fn gpu_fallback(&self) -> Option<&str> {
        self.backend.fallback.as_deref()
    }

    pub fn is_multilingual(&self) -> bool {
        self.ctx.is_multilingual()
    }

    /// The language Whisper is told: as asked on multilingual models, English on `.en` ones.
    fn language_for(&self, options: &Options) -> String {
        if self.is_multilingual() { options.language.clone() } else { "en".to_owned() }
    }

    /// Checks options against the model before any work is done.
    fn check(&self, options: &Options) -> Result<(), SpeechError> {
        let lang = options.language.as_str();
        if lang != "auto" && whisper_rs::get_lang_id(lang).is_none() {
            return Err(SpeechError::Language(lang.to_owned()));
        }
        if !self.is_multilingual() {
            if options.translate {
                return Err(SpeechError::EnglishOnly { model: self.name.clone(), what: "translate" });
            }
            if lang != "auto" && lang != "en" {
                return Err(SpeechError::EnglishOnly {
                    model: self.name.clone(),
                    what: "transcribe other languages",
                });
            }
        }
        Ok(())
    }

    /// Transcribes 16 kHz mono samples (up to a few minutes; use `transcribe_file` for more).
    pub fn transcribe(&self, samples: &[f32], options: &Options) -> Result<Transcript, SpeechError> {
        self.transcribe_until(samples, options, &Arc::new(AtomicBool::new(false)))
    }

    /// As `transcribe`; setting `cancel` stops it (whisper.cpp checks between steps) with
    /// `SpeechError::Cancelled`.
    pub fn transcribe_until(
        &self,
        samples: &[f32],
        options: &Options,
        cancel: &Arc<AtomicBool>,
    ) -> Result<Transcript, SpeechError> {
        self.check(options)?;
        Ok(self.run(samples, options, cancel, None)?.0)
    }

    /// Transcribes, then asks Whisper how likely each phrase `pick` chooses (given the
    /// transcript) is as the text of this audio, reusing the encoder's pass. Each phrase gets the
    /// geometric mean of its tokens' probabilities, the end of the text included, under teacher
    /// forcing; it is tried as written and with digits for number words (as Whisper writes
    /// them), capitalised, and keeps its best. Silence gives no text and no scores.
    pub fn transcribe_scoring(
        &self,
        samples: &[f32],
        options: &Options,
        cancel: &Arc<AtomicBool>,
        pick: impl FnOnce(&Transcript) -> Vec<String>,
    ) -> Result<(Transcript, Vec<f32>), SpeechError> {
        self.check(options)?;
        let (transcript, state) = self.run(samples, options, cancel, None)?;
        let Some(mut state) = state else { return Ok((transcript, Vec::new())) };
        let phrases = pick(&transcript);
        let scores = self.phrase_scores(&mut state, &phrases, &transcript.text, options)?;
        Ok((transcript, scores))
    }

    /// Teacher-forced scores of `phrases` on a state whose encoder has run. whisper.cpp hands
    /// back only the last position's logits, so each token is one decoder step; phrases are
    /// sorted so that shared beginnings ("seven of …") are decoded once, the key-value cache
    /// holding the shared part.
    fn phrase_scores(
        &self,
        state: &mut WhisperState,
        phrases: &[String],
        heard: &str,
        options: &Options,
    ) -> Result<Vec<f32>, SpeechError> {
        let err = |e: whisper_rs::WhisperError| SpeechError::Transcribe(e.to_string());
        let threads = options.threads.max(1);
        let mut prefix = vec![self.ctx.token_sot()];
        if self.is_multilingual() {
            let lang = whisper_rs::get_lang_id(&self.language_for(options)).unwrap_or(0);
            prefix.extend([self.ctx.token_lang(lang), self.ctx.token_transcribe()]);
        }
        prefix.push(self.ctx.token_not());
        let ends: Vec<WhisperTokenId> = std::iter::once(self.ctx.token_eot())
            .chain([".", "!", "?"].iter().filter_map(|p| single_token(&self.ctx, p)))
            .collect();
        // (phrase index, tokens) for every written form of every phrase.
        let mut forms: Vec<(usize, Vec<WhisperTokenId>)> = Vec::new();
        for (i, phrase) in phrases.iter().enumerate() {
            let digits = wer::with_digits(phrase);
            let written = digits.as_deref().unwrap_or(phrase);
            let styled = styled_like(written, heard);
            for form in std::iter::once(phrase.as_str()).chain(digits.as_deref()).chain(styled.as_deref()) {
                let text = format!(" {}", capitalised(form.trim()));
                let tokens = self.ctx.tokenize(&text, 64).map_err(err)?;
                if !tokens.is_empty() {
                    forms.push((i, tokens));
                }
            }
        }
        forms.sort_by(|a, b| a.1.cmp(&b.1));
        let log_softmax = |state: &WhisperState| -> Result<Vec<f32>, SpeechError> {
            let logits = state.get_logits().map_err(err)?;
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let log_sum = logits.iter().map(|l| (l - max).exp()).sum::<f32>().ln() + max;
            Ok(logits.iter().map(|l| l - log_sum).collect())
        };
        // One token per call: for a longer batch whisper.cpp keeps the last token's logits in
        // the batch's last row, while `get_logits` reads the first.
        for (i, &t) in prefix.iter().enumerate() {
            state.decode(&[t], i, threads).map_err(err)?;
        }
        // stack[d]: log-probabilities of the token at depth d, given the tokens before it.
        let mut stack = vec![log_softmax(state)?];
        let mut previous: &[WhisperTokenId] = &[];
        let mut best = vec![f32::NEG_INFINITY; phrases.len()];
        for (i, tokens) in &forms {
            let shared = previous.iter().zip(tokens).take_while(|(a, b)| a == b).count();
            stack.truncate(shared + 1);
            for (depth, &token) in tokens.iter().enumerate().skip(shared) {
                state.decode(&[token], prefix.len() + depth, threads).map_err(err)?;
                stack.push(log_softmax(state)?);
            }
            let token_logp: f32 = tokens.iter().enumerate().map(|(d, &t)| stack[d][t as usize]).sum();
            let after = &stack[tokens.len()];
            let end_logp =
                ends.iter().map(|&t| after[t as usize].exp()).sum::<f32>().max(f32::MIN_POSITIVE).ln();
            let mean = (token_logp + end_logp) / (tokens.len() + 1) as f32;
            best[*i] = best[*i].max(mean.exp());
            previous = tokens;
        }
        Ok(best.into_iter().map(|b| if b.is_finite() { b } else { 0.0 }).collect())
    }

    /// One whisper.cpp pass over `samples`.
    fn run(
        &self,
        samples: &[f32],
        options: &Options,
        cancel: &Arc<AtomicBool>,
        progress: Option<&Progress>,
    ) -> Result<(Transcript, Option<WhisperState>), SpeechError> {
        let language = self.language_for(options);
        let Some(speech_at) = vad::speech_start(&self.detector, samples, options.room_level) else {
            return Ok((Transcript { language, ..Transcript::default() }, None));
        };
        // Leading silence is cut: Whisper's timestamps are coarse and would put the first
        // segment at the start of the window, however late the speaker begins.
        let lead = if speech_at > LEADING_SILENCE_SECS { speech_at } else { 0.0 };
        let samples = &samples[((lead * f64::from(SAMPLE_RATE)) as usize).min(samples.len())..];
        let min = (MIN_INPUT_SECS * f64::from(SAMPLE_RATE)) as usize;
        let padded;
        let input = if samples.len() < min {
            padded = [samples, &vec![0.0; min - samples.len()]].concat();
            &padded[..]
        } else {
            samples
        };
        let prompt = options.prompt.as_deref();
        let clip_secs = round_ms(samples.len() as f64 / f64::from(SAMPLE_RATE));
        let mut pass = Pass { input, clip_secs, options, prompt, cancel, progress };
        let (mut result, mut state, mut looped) = self.decode(&pass, false)?;
        // A capped decode that loops over a phrase ("10 of close. 10 of close. 10 of") heard the
        // phrase once before it looped: that is the text.
        if looped
            && options.max_tokens_per_sec.is_some()
            && let Some(text) = one_period(&result.text)
        {
            let (start, end) = (result.segments.first().map_or(0.0, |s| s.start), clip_secs);
            result = Transcript::from_segments(
                vec![Segment { start, end, text, words: Vec::new() }],
                result.language,
            );
            looped = false;
        }
        // A window cut closer than the safe margin, or a capped decode, fails by looping: then
        // the clip is decoded again as any other clip is, at the safe margin and uncapped.
        let cut =
            options.window_margin_secs < SHORT_AUDIO_CTX_PAD_SECS || options.max_tokens_per_sec.is_some();
        let safe;
        if looped && cut {
            tracing::debug!("the decode looped in the cut window: again at the safe margin, uncapped");
            safe = Options {
                window_margin_secs: options.window_margin_secs.max(SHORT_AUDIO_CTX_PAD_SECS),
                max_tokens_per_sec: None,
                ..options.clone()
            };
            pass.options = &safe;
            (result, state, looped) = self.decode(&pass, false)?;
        }
        // A looping decode ("go forward, go forward, go forward…") compresses far better than
        // speech does; OpenAI's reference decoder retries such output, and so does this one,
        // deterministically, with beam search.
        if looped {
            (result, state, _) = self.decode(&pass, true)?;
        }
        result.segments = result.segments.into_iter().map(|s| s.shifted(lead)).collect();
        Ok((result, Some(state)))
    }

    /// One decode of `pass`; also says whether it looped (text that compresses like a loop, or
    /// a capped decode that reached its cap).
    fn decode(&self, pass: &Pass<'_>, beam: bool) -> Result<(Transcript, WhisperState, bool), SpeechError> {
        let options = pass.options;
        let language = self.language_for(options);
        let err = |e: whisper_rs::WhisperError| SpeechError::Transcribe(e.to_string());
        let mut state = self.ctx.create_state().map_err(err)?;
        let strategy = if beam {
            SamplingStrategy::BeamSearch { beam_size: 5, patience: -1.0 }
        } else {
            SamplingStrategy::Greedy { best_of: 1 }
        };
        let mut params = FullParams::new(strategy);
        params.set_n_threads(i32::try_from(options.threads.max(1)).unwrap_or(2));
        params.set_language(Some(language.as_str()));
        params.set_translate(options.translate);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        // Suppress the non-speech symbols (♪, brackets, a leading " -"), as OpenAI's reference
        // decoder and faster-whisper do by default; whisper.cpp's default leaves them on.
        params.set_suppress_nst(true);
        params.set_token_timestamps(options.word_timestamps && options.timestamps);
        if !options.timestamps {
            params.set_no_timestamps(true);
            params.set_single_segment(true);
        }
        if let Some(p) = pass.prompt.filter(|p| !p.trim().is_empty()) {
            params.set_initial_prompt(p);
        }
        let cap = options
            .max_tokens_per_sec
            .filter(|_| !options.timestamps)
            .map(|per_sec| (8.0 + per_sec * pass.clip_secs).ceil() as usize);
        if let Some(cap) = cap {
            params.set_max_tokens(i32::try_from(cap).unwrap_or(i32::MAX));
        }
        let secs = pass.input.len() as f64 / f64::from(SAMPLE_RATE);
        if options.short_audio_ctx && secs < 30.0 {
            params.set_audio_ctx(audio_ctx_for(secs, options.window_margin_secs));
        }
        let cancel_flag = Arc::clone(pass.cancel);
        // whisper-rs 0.16's `set_abort_callback_safe` casts its user data to the closure's own
        // type although it stores a boxed trait object; handing it a boxed trait object makes
        // the two agree (with a plain closure the callback reads garbage and aborts at random).
        let abort: Box<dyn FnMut() -> bool> = Box::new(move || cancel_flag.load(Ordering::Relaxed));
        params.set_abort_callback_safe(abort);
        if let Some(progress) = pass.progress.cloned() {
            params.set_progress_callback_safe(move |percent: i32| progress(percent as f32 / 100.0));
        }
        let result = state.full(params, pass.input);
        if pass.cancel.load(Ordering::Relaxed) {
            return Err(SpeechError::Cancelled);
        }
        result.map_err(err)?;
        if whisper_log() {
            self.ctx.print_timings();
            self.ctx.reset_timings();
        }
        let detected = whisper_rs::get_lang_str(state.full_lang_id_from_state()).unwrap_or("en").to_owned();
        let eot = self.ctx.token_eot();
        let mut text_tokens = 0;
        let mut segments = Vec::new();
        for seg in state.as_iter() {
            text_tokens += (0..seg.n_tokens())
                .filter_map(|i| seg.get_token(i))
                .filter(|t| t.token_data().id < eot)
                .count();
            let text = seg.to_str_lossy().map_err(err)?.trim().to_owned();
            if text.is_empty() || is_hallucination(&seg) {
                continue;
            }
            // whisper.cpp counts time in centiseconds.
            let start = seg.start_timestamp() as f64 / 100.0;
            let end = (seg.end_timestamp() as f64 / 100.0).min(pass.clip_secs);
            let words = if options.word_timestamps { self.words_of(&seg, start, end) } else { Vec::new() };
            segments.push(Segment { start, end, text, words });
        }
        let looped = cap.is_some_and(|cap| text_tokens >= cap)
            || too_many_tokens(text_tokens, pass.clip_secs)
            || segments.iter().any(|s| compression_ratio(&s.text) > MAX_COMPRESSION_RATIO)
            || said_again_and_again(&segments);
        Ok((Transcript::from_segments(segments, detected), state, looped))
    }

    /// Transcribes a file of any length in bounded memory, `CHUNK_SECS` at a time; `progress`
    /// gets the fraction done; setting `cancel` stops it. Each chunk is heard again from a pause
    /// about `REHEAR_SECS` before the last words the chunk before it is trusted with, and the two
    /// hearings of that stretch are joined where their words agree (`stitch`).
    pub fn transcribe_file(
        &self,
        path: &Path,
        options: &Options,
        cancel: &Arc<AtomicBool>,
        progress: Option<Progress>,
    ) -> Result<Transcript, SpeechError> {
        self.check(options)?;
        let mut reader = AudioReader::open(path)?;
        let total = reader.duration_secs().unwrap_or(0.0);
        let rate = f64::from(SAMPLE_RATE);
        let chunk = chunk_secs() * SAMPLE_RATE as usize;
        // The chunks are joined by their words' times.
        let heard_options = Options { word_timestamps: options.timestamps, ..options.clone() };
        // The furthest fraction reported: a chunk starts before the last one ended, and the
        // bar never goes back.
        let reported = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let mut carried: Vec<f32> = Vec::new();
        let mut offset = 0.0f64;
        let mut done: Vec<Segment> = Vec::new();
        // What the last chunk heard from where this one starts: joined with what this one hears.
        let mut pending: Vec<Segment> = Vec::new();
        let mut language = String::new();
        let mut any_audio = false;
        loop {
            let asked = chunk - carried.len().min(chunk / 2);
            let fresh = reader.read_chunk(asked)?;
            // The reader hands out less than asked only at the end of the file.
            let last = fresh.as_ref().is_none_or(|f| f.len() < asked);
            if let Some(f) = fresh {
                any_audio = true;
                carried.extend_from_slice(&f);
            }
            if carried.is_empty() {
                done.append(&mut pending);
                break;
            }
            let window_secs = carried.len() as f64 / rate;
            let done_before = offset;
            let chunk_progress = progress.clone().map(|p| -> Progress {
                let reported = Arc::clone(&reported);
                Arc::new(move |f: f32| {
                    if total > 0.0 {
                        let now = (((done_before + f64::from(f) * window_secs) / total) as f32).min(1.0);
                        let before = f32::from_bits(reported.fetch_max(now.to_bits(), Ordering::Relaxed));
                        p(now.max(before));
                    }
                })
            });
            // No chunk is primed with the text before it: the chunk hears the seconds before its
            // new audio itself, and primed with the last sentence Whisper lost 3–23 s at a chunk's
            // start and looped on one sentence nine times ("Every word kept" in BENCHMARKS.md).
            let (part, _) = self.run(&carried, &heard_options, cancel, chunk_progress.as_ref())?;
            if language.is_empty() && !part.segments.is_empty() {
                language.clone_from(&part.language);
            }
            let heard: Vec<Segment> = part.segments.into_iter().map(|s| s.shifted(offset)).collect();
            tracing::debug!(
                "chunk {offset:.2}–{:.2} s heard {:?}; the last chunk heard from {offset:.2} s: {:?}",
                offset + window_secs,
                heard.iter().map(|s| format!("{:.2}–{:.2} {}", s.start, s.end, s.text)).collect::<Vec<_>>(),
                pending.iter().map(|s| format!("{:.2}–{:.2} {}", s.start, s.end, s.text)).collect::<Vec<_>>(),
            );
            let heard = stitch::join(&std::mem::take(&mut pending), &heard);
            if last {
                done.extend(heard);
                break;
            }
            // Trust what ends well before the window's end (Whisper heard it whole); hear the
            // rest again with the next chunk, from a pause a little before the last trusted word.
            let cutoff = offset + window_secs - CHUNK_OVERLAP_SECS;
            let trusted = &heard[..heard.iter().take_while(|s| s.end <= cutoff).count()];
            let restart = match trusted.last() {
                Some(s) => {
                    let at = stitch::restart_near(trusted, s.end - REHEAR_SECS, 2.0);
                    if at > offset + 1.0 { at } else { s.end }
                }
                // Nothing ended early enough (silence, or one long segment): move on past most of it.
                None => offset + (window_secs - CHUNK_OVERLAP_SECS).max(window_secs / 2.0),
            };
            let before = stitch::words_before(trusted, restart);
            done.extend(stitch::first_words(trusted, before));
            pending = stitch::from_word(trusted, before);
            let drop = (((restart - offset) * rate) as usize).min(carried.len());
            carried.drain(..drop);
            offset += drop as f64 / rate;
        }
        if !any_audio {
            return Err(crate::audio::AudioError::Empty { path: path.display().to_string() }.into());
        }
        if let Some(p) = progress {
            p(1.0);
        }
        if language.is_empty() {
            language = self.language_for(options);
        }
        if !options.word_timestamps {
            for s in &mut done {
                s.words.clear();
            }
        }
        Ok(Transcript::from_segments(done, language))
    }
}

impl Whisper {
    /// The words of a segment from its text tokens: a token that begins with a space begins a
    /// word; a word runs from its first token's start to its last token's end, kept inside the
    /// segment and in order.
    fn words_of(&self, seg: &whisper_rs::WhisperSegment<'_>, start: f64, end: f64) -> Vec<Word> {
        let eot = self.ctx.token_eot();
        let mut words: Vec<Word> = Vec::new();
        let mut probs: Vec<f32> = Vec::new();
        for i in 0..seg.n_tokens() {
            let Some(token) = seg.get_token(i) else { continue };
            let data = token.token_data();
            if data.id >= eot {
                continue; // timestamps and other special tokens
            }
            let Ok(piece) = token.to_str_lossy() else { continue };
            let (t0, t1) = (data.t0 as f64 / 100.0, data.t1 as f64 / 100.0);
            let (t0, t1) = (t0.clamp(start, end), t1.clamp(start, end));
            let starts_word = piece.starts_with(' ') || words.is_empty();
            if starts_word {
                if let Some(last) = words.last_mut() {
                    last.probability = probs.iter().sum::<f32>() / probs.len().max(1) as f32;
                }
                probs.clear();
                let t0 = words.last().map_or(t0, |w| t0.max(w.end));
                words.push(Word {
                    start: t0,
                    end: t1.max(t0),
                    word: piece.trim().to_owned(),
                    probability: 0.0,
                });
            } else if let Some(last) = words.last_mut() {
                last.word.push_str(&piece);
                last.end = t1.max(last.end);
            }
            probs.push(data.p);
        }
        if let Some(last) = words.last_mut() {
            last.probability = probs.iter().sum::<f32>() / probs.len().max(1) as f32;
        }
        words.retain(|w| !w.word.is_empty());
        words
    }
}

/// The id of a text that is one token, if it is.
fn single_token(ctx: &WhisperContext, text: &str) -> Option<WhisperTokenId> {
    match ctx.tokenize(text, 4).ok()?.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// The phrase written in the transcript's style when both have as many words: each word takes
/// the transcript word's capital and the punctuation around it ("8 of spades 4 of clubs" heard
/// as "8 of spades, 4 of close." → "8 of spades, 4 of clubs."). Whisper punctuates as it
/// pleases, and a phrase scored without its commas would pay for them.
fn styled_like(phrase: &str, heard: &str) -> Option<String> {
    let ours: Vec<&str> = phrase.split_whitespace().collect();
    let theirs: Vec<&str> = heard.split_whitespace().collect();
    if ours.len() != theirs.len() || ours.is_empty() {
        return None;
    }
    let styled: Vec<String> = ours
        .iter()
        .zip(&theirs)
        .map(|(w, t)| {
            let core_start = t.find(char::is_alphanumeric).unwrap_or(0);
            let core_end = t
                .rfind(char::is_alphanumeric)
                .map_or(t.len(), |i| i + t[i..].chars().next().map_or(1, char::len_utf8));
            let mut word = w.to_string();
            if t[core_start..].starts_with(char::is_uppercase) {
                word = capitalised(&word);
            }
            format!("{}{word}{}", &t[..core_start], &t[core_end..])
        })
        .collect();
    let styled = styled.join(" ");
    (styled != phrase).then_some(styled)
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

fn round_ms(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}

/// The encoder window for a clip of `secs` seconds.
pub fn audio_ctx_for(secs: f64, margin_secs: f64) -> i32 {
    let frames = ((secs.max(0.0) + margin_secs.max(0.0)) * 50.0).ceil() as u32;
    i32::try_from(frames.div_ceil(64) * 64).map_or(FULL_AUDIO_CTX, |f| f.min(FULL_AUDIO_CTX))
}

/// The text up to where it starts over, when it is one stretch of two or more words said again
/// and again (twice at least; the last time may be cut short). A repeated single word ("5, 5,
/// 5") gives `None`: "five five" may be what was said.
fn one_period(text: &str) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let plain = |w: &str| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
    let n = words.len();
    let period = (1..=n / 2).find(|&p| (p..n).all(|i| plain(words[i]) == plain(words[i - p])))?;
    (period > 1).then(|| words[..period].join(" ").trim_end_matches([',', ';']).to_owned())
}

/// A sentence that comes back as a segment of its own this many times in a row is a decoder
/// loop: Whisper primed with the last sentence of a long file's chunk gave "He would have been a
/// little bit more miserable than he was." nine times in 20 s (each segment alone compresses like
/// speech).
const SAME_SEGMENT_IN_A_ROW: usize = 3;

/// Whether the same text of three words or more is `SAME_SEGMENT_IN_A_ROW` segments in a row.
fn said_again_and_again(segments: &[Segment]) -> bool {
    let texts: Vec<Vec<String>> = segments.iter().map(|s| wer::normalise(&s.text)).collect();
    texts.windows(SAME_SEGMENT_IN_A_ROW).any(|w| w[0].len() >= 3 && w.iter().all(|t| *t == w[0]))
}

fn is_hallucination(seg: &whisper_rs::WhisperSegment<'_>) -> bool {
    if seg.no_speech_probability() <= NO_SPEECH_PROB {
        return false;
    }
    let n = seg.n_tokens();
    let logprobs: Vec<f32> = (0..n).filter_map(|i| seg.get_token(i)).map(|t| t.token_data().plog).collect();
    let avg = if logprobs.is_empty() {
        f32::NEG_INFINITY
    } else {
        logprobs.iter().sum::<f32>() / logprobs.len() as f32
    };
    avg < LOW_LOGPROB
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_of_varied_words_has_more_tokens_than_its_audio_could_hold() {
        // 22 words and their punctuation from 1.3 s, heard live; 23 tokens are the most 1.3 s
        // may hold.
        assert!(too_many_tokens(30, 1.3));
        assert!(!too_many_tokens(10, 1.3));
        // The public set's longest sentence, librivox_0870 (6.9 s, 27 words): far under.
        assert!(!too_many_tokens(40, 6.9));
    }

    #[test]
    fn loops_compress_better_than_speech() {
        assert!(compression_ratio(&"Go forward 10 meters. ".repeat(5)) > MAX_COMPRESSION_RATIO);
        assert!(
            compression_ratio(
                "Had he married a more amiable woman, he might have been made still more respectable than he was."
            ) < MAX_COMPRESSION_RATIO
        );
    }

    #[test]
    fn a_sentence_given_three_times_in_a_row_is_a_loop() {
        let miserable = "He would have been a little bit more miserable than he was.";
        let seg = |t: &str| Segment::new(0.0, 1.0, t);
        assert!(said_again_and_again(&[
            seg("Had he married."),
            seg(miserable),
            seg(miserable),
            seg(miserable)
        ]));
        // Twice is something a person says; a short phrase three times too ("No, no. No, no.").
        assert!(!said_again_and_again(&[seg(miserable), seg(miserable), seg("Had he married.")]));
        assert!(!said_again_and_again(&[seg("No, no."), seg("No, no."), seg("No, no.")]));
        assert!(!said_again_and_again(&[seg(miserable), seg("Had he married."), seg(miserable)]));
    }

    #[test]
    fn a_loop_is_folded_to_the_phrase_it_repeats() {
        assert_eq!(one_period("10 of close. 10 of close. 10 of close. 10 of"), Some("10 of close.".into()));
        assert_eq!(
            one_period("Go forward 10 meters, go forward 10 meters,"),
            Some("Go forward 10 meters".into())
        );
        // Not a loop: said once, or a single word again and again.
        assert_eq!(one_period("Go forward 10 meters."), None);
        assert_eq!(one_period("5, 5, 5, 5, 5"), None);
        assert_eq!(one_period("10 of close. 10 of hearts."), None);
        assert_eq!(one_period(""), None);
    }

    #[test]
    fn audio_ctx_shrinks_for_short_clips_and_caps_at_the_full_window() {
        assert_eq!(audio_ctx_for(2.0, SHORT_AUDIO_CTX_PAD_SECS), 640);
        assert_eq!(audio_ctx_for(10.0, SHORT_AUDIO_CTX_PAD_SECS), 1024);
        assert_eq!(audio_ctx_for(21.0, SHORT_AUDIO_CTX_PAD_SECS), 1500);
    }
}
