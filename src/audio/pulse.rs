//! The sources of a `PulseAudio` (or `PipeWire`) sound server, one by one: what a person sees in
//! the desktop's sound settings ("Built-in Audio Analog Stereo", "Monitor of Speakers"), not
//! the ALSA plugin that leads to the server's default. The server is asked with `pactl`; a source
//! is recorded through ALSA's `pulse` plugin, which takes the source's name.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{Sender, SyncSender};
use std::time::Instant;

use alsa::pcm::{Access, Format, HwParams, PCM};
use alsa::{Direction, ValueOr};

use super::capture::Block;
use super::{AudioError, rms};

/// What `--device` takes for a server's source: this, then the source's name.
pub const PREFIX: &str = "pulse:";

/// A source of the sound server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The server's name for it (`alsa_input.pci-0000_00_1f.3.analog-stereo`, `virt.monitor`).
    pub name: String,
    /// What it is called in the desktop's settings.
    pub description: String,
    /// The server's default source.
    pub is_default: bool,
}

/// The server's sources, the default first; `None` when there is no server (or no `pactl`).
pub fn sources() -> Option<Vec<Source>> {
    let listed = Command::new("pactl").args(["-f", "json", "list", "sources"]).output().ok()?;
    if !listed.status.success() {
        return None;
    }
    let default = Command::new("pactl")
        .arg("get-default-source")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let mut list = parse_sources(&String::from_utf8_lossy(&listed.stdout), default.as_deref())?;
    list.sort_by_key(|s| !s.is_default);
    Some(list)
}

/// `pactl -f json list sources`, read.
fn parse_sources(json: &str, default: Option<&str>) -> Option<Vec<Source>> {
    let listed: Vec<serde_json::Value> = serde_json::from_str(json).ok()?;
    Some(
        listed
            .iter()
            .filter_map(|s| {
                let name = s["name"].as_str()?.to_owned();
                let description =
                    s["description"].as_str().filter(|d| !d.is_empty()).unwrap_or(&name).to_owned();
                Some(Source { is_default: default == Some(name.as_str()), name, description })
            })
            .collect(),
    )
}

/// Records the source `name` (16 kHz is asked of the server; the rate it gives is returned) into
/// `tx` until `stop`, on a thread of its own.
pub(super) fn record(
    name: &str,
    tx: Sender<Block>,
    level: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
) -> Result<u32, AudioError> {
    let (opened_tx, opened) = std::sync::mpsc::sync_channel(1);
    let pcm_name = format!("pulse:DEVICE=\"{}\"", name.replace(['"', '\\'], ""));
    let shown = name.to_owned();
    std::thread::Builder::new()
        .name("pulse-source".into())
        .spawn(move || read(&pcm_name, &opened_tx, &tx, &level, &stop))
        .map_err(|e| AudioError::Device(e.to_string()))?;
    opened
        .recv()
        .map_err(|_| AudioError::Device(format!("the sound server's source {shown} could not be opened")))?
        .map_err(|e| AudioError::Device(format!("the sound server's source {shown} cannot be recorded: {e}")))
}

/// 20 ms at 16 kHz: the block the server is asked for.
const PERIOD: usize = 320;

fn read(
    pcm_name: &str,
    opened: &SyncSender<Result<u32, String>>,
    tx: &Sender<Block>,
    level: &AtomicU32,
    stop: &AtomicBool,
) {
    let pcm = match open(pcm_name) {
        Ok((pcm, rate)) => {
            let _ = opened.send(Ok(rate));
            pcm
        }
        Err(e) => {
            let _ = opened.send(Err(e.to_string()));
            return;
        }
    };
    let io = match pcm.io_f32() {
        Ok(io) => io,
        Err(e) => {
            let _ = tx.send(Block::Failed(e.to_string()));
            return;
        }
    };
    let mut buffer = vec![0.0f32; PERIOD];
    while !stop.load(Ordering::Relaxed) {
        match io.readi(&mut buffer) {
            Ok(n) => {
                let samples = buffer[..n].to_vec();
                level.store(rms(&samples).to_bits(), Ordering::Relaxed);
                if tx.send(Block::Audio(samples, Instant::now())).is_err() {
                    return;
                }
            }
            Err(e) => {
                // An overrun (the reader fell behind) is recovered from; anything else ends it.
                if let Err(e) = pcm.try_recover(e, true) {
                    let _ = tx.send(Block::Failed(e.to_string()));
                    return;
                }
            }
        }
    }
}

/// Opens the source for reading: mono floats at 16 kHz if the server gives them (it resamples).
fn open(pcm_name: &str) -> Result<(PCM, u32), alsa::Error> {
    let pcm = PCM::new(pcm_name, Direction::Capture, false)?;
    let rate = {
        let hw = HwParams::any(&pcm)?;
        hw.set_channels(1)?;
        hw.set_rate(super::SAMPLE_RATE, ValueOr::Nearest)?;
        hw.set_format(Format::float())?;
        hw.set_access(Access::RWInterleaved)?;
        hw.set_period_size_near(PERIOD as alsa::pcm::Frames, ValueOr::Nearest)?;
        hw.set_buffer_size_near((PERIOD * 10) as alsa::pcm::Frames)?;
        pcm.hw_params(&hw)?;
        pcm.hw_params_current()?.get_rate()?
    };
    pcm.start()?;
    Ok((pcm, rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_sources_are_read_from_pactls_json() {
        let json = r#"[{"index":1,"state":"RUNNING","name":"virt.monitor","description":"Monitor of Null Output"},
                       {"index":2,"name":"alsa_input.usb","description":""}]"#;
        let got = parse_sources(json, Some("alsa_input.usb")).expect("parsed");
        assert_eq!(
            got,
            [
                Source {
                    name: "virt.monitor".into(),
                    description: "Monitor of Null Output".into(),
                    is_default: false
                },
                Source {
                    name: "alsa_input.usb".into(),
                    description: "alsa_input.usb".into(),
                    is_default: true
                },
            ]
        );
        assert_eq!(parse_sources("Connection failure", None), None);
    }
}
