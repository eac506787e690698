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

/// Features this binary was built with that can use a GPU.
pub fn gpu_features() -> &'static [&'static str] {
    &[
        #[cfg(feature = "cuda")]
        "cuda",
        #[cfg(feature = "metal")]
        "metal",
    ]
}

pub fn pick() -> (Device, DeviceInfo) {
    #[allow(unused_mut)]
    let mut fallback: Vec<String> = Vec::new();
    #[cfg(feature = "cuda")]
    match Device::new_cuda(0) {
        Ok(d) => {
            return (d, DeviceInfo { name: "CUDA GPU 0".into(), gpu: true, fallback: None });
        }
        Err(e) => fallback.push(format!("CUDA did not start: {e}")),
    }
    #[cfg(feature = "metal")]
    match Device::new_metal(0) {
        Ok(d) => {
            return (d, DeviceInfo { name: "Metal GPU".into(), gpu: true, fallback: None });
        }
        Err(e) => fallback.push(format!("Metal did not start: {e}")),
    }
    let why = if gpu_features().is_empty() {
        "built without GPU support; build with --features cuda or metal".to_owned()
    } else {
        fallback.join("; ")
    };
    (Device::Cpu, DeviceInfo { name: "CPU".into(), gpu: false, fallback: Some(why) })
}
