//! Which backend whisper.cpp really started, read from its own log while a model loads: whisper.cpp
//! says "using CUDA0 backend" when it takes a GPU, and "no GPU found" when it does not (with
//! `use_gpu` off, or a build or machine without one). Asking for a GPU is not having one.

use std::sync::{Arc, Mutex, PoisonError};

use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt as _};

pub const CPU: &str = "CPU";

/// What whisper.cpp reported it initialised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// "CPU", or ggml's name of the GPU device ("CUDA0", "Vulkan0", "Metal").
    pub device: String,
    /// Why a GPU that was asked for is not used.
    pub fallback: Option<String>,
}

impl Backend {
    /// Reads whisper.cpp's report. A GPU that was found but failed to start is reported as an
    /// error after its "using" line: the CPU runs then.
    pub fn from_report(lines: &[String], gpu_asked: bool) -> Self {
        let mut device = None;
        let mut fallback = None;
        for line in lines.iter().filter(|l| l.contains("whisper_backend_init_gpu")) {
            if let Some(name) = line.split("using ").nth(1).and_then(|r| r.strip_suffix(" backend")) {
                device = Some(name.trim().to_owned());
            } else if line.contains("failed to initialize") {
                device = None;
                fallback = Some(format!("whisper.cpp: {}", after_function(line)));
            } else if line.contains("no GPU found") && fallback.is_none() {
                fallback = Some("whisper.cpp found no GPU".to_owned());
            }
        }
        match device {
            Some(device) => Self { device, fallback: None },
            None => Self { device: CPU.to_owned(), fallback: fallback.filter(|_| gpu_asked) },
        }
    }
}

/// The CPU instruction sets whisper.cpp was built to use (`AVX2`, `AVX512`, `AVX512_VNNI`, …),
/// as ggml lists them: a portable build names fewer than a build for the CPU it runs on.
pub fn cpu_kernels() -> Vec<String> {
    cpu_features(whisper_rs::print_system_info())
}

/// The features turned on in the "CPU : NAME = 1 | …" part of whisper.cpp's system report.
fn cpu_features(report: &str) -> Vec<String> {
    let Some((_, cpu)) = report.split_once("CPU : ") else { return Vec::new() };
    cpu.split('|')
        .map_while(|entry| {
            let (name, value) = entry.split_once(" = ")?;
            // The next backend's name ends the list ("… | METAL : EMBED_LIBRARY = 1 |").
            (!name.contains(':')).then(|| (name.trim().to_owned(), value.trim() == "1"))
        })
        .filter_map(|(name, on)| on.then_some(name))
        .collect()
}

/// `whisper_backend_init_gpu: no GPU found` → `no GPU found`.
fn after_function(line: &str) -> &str {
    line.split_once(": ").map_or(line, |(_, rest)| rest).trim()
}

/// Runs `load` with whisper.cpp's log captured on this thread; returns its result and the lines.
/// With `CROSSMODAL_WHISPER_LOG` set the lines are printed too.
pub fn reported<T>(load: impl FnOnce() -> T) -> (T, Vec<String>) {
    whisper_rs::install_logging_hooks();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Lines(Arc::clone(&lines)));
    let result = tracing::subscriber::with_default(subscriber, load);
    let lines = std::mem::take(&mut *lines.lock().unwrap_or_else(PoisonError::into_inner));
    if super::whisper_log() {
        for l in &lines {
            eprintln!("{l}");
        }
    }
    (result, lines)
}

/// A tracing layer that keeps the messages whisper-rs forwards from whisper.cpp and ggml.
struct Lines(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> Layer<S> for Lines {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if !event.metadata().target().starts_with("whisper_rs") {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(message.0);
    }
}

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|&l| l.to_owned()).collect()
    }

    #[test]
    fn the_cpu_features_are_read_from_whisper_cpps_report() {
        let report = "WHISPER : COREML = 0 | OPENVINO = 0 | CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | \
                      AVX512_VNNI = 1 | AMX_INT8 = 0 | LLAMAFILE = 1 | REPACK = 1 | ";
        assert_eq!(cpu_features(report), ["SSE3", "AVX2", "AVX512", "AVX512_VNNI", "LLAMAFILE", "REPACK"]);
        let next_backend = "CPU : NEON = 1 | ARM_FMA = 1 | METAL : EMBED_LIBRARY = 1 | ";
        assert_eq!(cpu_features(next_backend), ["NEON", "ARM_FMA"]);
        assert!(cpu_features("WHISPER : COREML = 0 | ").is_empty());
    }

    /// This build's own report: x86-64 builds ask for at least AVX2 (`.cargo/config.toml`).
    #[test]
    fn this_build_names_its_instruction_sets() {
        let features = cpu_kernels();
        if cfg!(target_arch = "x86_64") {
            assert!(features.iter().any(|f| f == "AVX2"), "{features:?}");
        }
    }

    #[test]
    fn a_cpu_build_reports_the_cpu_and_says_why_when_a_gpu_was_asked_for() {
        let report = lines(&[
            "whisper_init_with_params_no_state: use gpu    = 1",
            "whisper_backend_init_gpu: no GPU found",
        ]);
        let asked = Backend::from_report(&report, true);
        assert_eq!(asked, Backend { device: CPU.into(), fallback: Some("whisper.cpp found no GPU".into()) });
        assert_eq!(Backend::from_report(&report, false), Backend { device: CPU.into(), fallback: None });
    }

    #[test]
    fn the_gpu_whisper_cpp_took_is_named() {
        let report = lines(&[
            "whisper_backend_init_gpu: device 0: CUDA0 (type: 1)",
            "whisper_backend_init_gpu: found GPU device 0: CUDA0 (type: 1, cnt: 0)",
            "whisper_backend_init_gpu: using CUDA0 backend",
        ]);
        assert_eq!(Backend::from_report(&report, true).device, "CUDA0");
    }

    #[test]
    fn a_gpu_that_fails_to_start_leaves_the_cpu_with_the_reason() {
        let report = lines(&[
            "whisper_backend_init_gpu: using Vulkan0 backend",
            "whisper_backend_init_gpu: failed to initialize Vulkan0 backend",
        ]);
        let b = Backend::from_report(&report, true);
        assert_eq!(b.device, CPU);
        assert_eq!(b.fallback.as_deref(), Some("whisper.cpp: failed to initialize Vulkan0 backend"));
    }
}
