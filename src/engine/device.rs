//! Which device the models run on: CUDA if built with `cuda` and a GPU initialises, then Metal
//! if built with `metal`, else the CPU. A GPU that fails to start is reported, not fatal.

use candle_core::Device;

/// The device the engine chose and, where it fell back, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// "CPU", "CUDA GPU 0", "Metal GPU".
    pub name: String,
    pub gpu: bool,
    /// Why a GPU was not used, where a GPU build could not use one.
    pub fallback: Option<String>,
}

impl std::fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if let Some(why) = &self.fallback {
            write!(f, " ({why})")?;
        }
        Ok(())
    }
}

/// Which device to ask for: `CROSSMODAL_DEVICE=auto|cpu|cuda|metal` (default `auto`: the GPU
/// backends this binary was built with, then the CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preference {
    #[default]
    Auto,
    Cpu,
    Cuda,
    Metal,
}

impl Preference {
    /// From `CROSSMODAL_DEVICE`; an unknown value is reported and treated as `auto`.
    pub fn from_env() -> Self {
        match std::env::var("CROSSMODAL_DEVICE").map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Err(_) | Ok("" | "auto") => Self::Auto,
            Ok("cpu") => Self::Cpu,
            Ok("cuda" | "gpu") => Self::Cuda,
            Ok("metal") => Self::Metal,
            Ok(other) => {
                tracing::warn!("CROSSMODAL_DEVICE={other} is not one of auto, cpu, cuda, metal: using auto");
                Self::Auto
            }
        }
    }
}

/// The device `CROSSMODAL_DEVICE` asks for (see `pick_with`).
pub fn pick() -> (Device, DeviceInfo) {
    pick_with(Preference::from_env())
}

/// Tries the GPU backends asked for — with `Auto`, those this binary was built with — and
/// falls back to the CPU, keeping each reason. Asking for a backend the binary was not built
/// with is tried too: it fails with the library's own error, and the CPU takes over.
pub fn pick_with(preference: Preference) -> (Device, DeviceInfo) {
    let (try_cuda, try_metal) = match preference {
        Preference::Auto => (cfg!(feature = "cuda"), cfg!(feature = "metal")),
        Preference::Cpu => (false, false),
        Preference::Cuda => (true, false),
        Preference::Metal => (false, true),
    };
    let mut fallback: Vec<String> = Vec::new();
    if try_cuda {
        match Device::new_cuda(0) {
            Ok(d) => return (d, DeviceInfo { name: "CUDA GPU 0".into(), gpu: true, fallback: None }),
            Err(e) => fallback.push(format!("CUDA did not start: {}", without_backtrace(&e))),
        }
    }
    if try_metal {
        match Device::new_metal(0) {
            Ok(d) => return (d, DeviceInfo { name: "Metal GPU".into(), gpu: true, fallback: None }),
            Err(e) => fallback.push(format!("Metal did not start: {}", without_backtrace(&e))),
        }
    }
    let why = if !fallback.is_empty() {
        fallback.join("; ")
    } else if preference == Preference::Cpu {
        "asked for with CROSSMODAL_DEVICE=cpu".to_owned()
    } else if cfg!(feature = "vulkan") {
        // whisper.cpp reports its own Vulkan device in Whisper's status line.
        "candle has no Vulkan backend: the text and image encoders run on the CPU".to_owned()
    } else {
        let features = if cfg!(target_os = "macos") { "metal" } else { "cuda or vulkan" };
        format!("built without GPU support; build with --features {features}")
    };
    (Device::Cpu, DeviceInfo { name: "CPU".into(), gpu: false, fallback: Some(why) })
}

/// The error itself: candle appends a backtrace when `RUST_BACKTRACE` is set, which has no place
/// on a device line.
fn without_backtrace(e: &candle_core::Error) -> &candle_core::Error {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => without_backtrace(inner),
        other => other,
    }
}

impl DeviceInfo {
    /// A GPU was tried and did not start: worth a notice, not only the device line.
    pub fn gpu_failed(&self) -> Option<&str> {
        self.fallback.as_deref().filter(|why| why.contains("did not start"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gpu_that_does_not_start_falls_back_to_the_cpu_saying_why() {
        // This binary has no CUDA (or the machine no NVIDIA GPU): candle's CUDA start fails.
        if cfg!(feature = "cuda") {
            return;
        }
        let (device, info) = pick_with(Preference::Cuda);
        assert!(device.is_cpu());
        assert!(!info.gpu);
        let why = info.gpu_failed().expect("a reason");
        assert!(why.starts_with("CUDA did not start:"), "{why}");
        assert!(info.to_string().starts_with("CPU (CUDA did not start"), "{info}");
    }

    #[test]
    fn cpu_can_be_asked_for() {
        let (device, info) = pick_with(Preference::Cpu);
        assert!(device.is_cpu() && info.gpu_failed().is_none());
    }
}
