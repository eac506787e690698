//! Where a bench leaves its figures for `cargo bench --bench report`: `$CROSSMODAL_BENCH_OUT/NAME.json`
//! when that variable is set (the report sets it), else nowhere.

#![allow(dead_code)]

/// Writes the figures of one bench.
pub fn record(name: &str, figures: &serde_json::Value) {
    let Some(dir) = std::env::var_os("CROSSMODAL_BENCH_OUT") else { return };
    let path = std::path::Path::new(&dir).join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(figures).unwrap_or_default();
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
        eprintln!("could not write {}: {e}", path.display());
    }
}

/// Peak resident memory (`VmHWM`) of a child process, sampled while it runs; with its output.
pub fn run_measuring_rss(cmd: &mut std::process::Command) -> Option<(std::process::Output, u64)> {
    let child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().ok()?;
    let status_path = format!("/proc/{}/status", child.id());
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(kb) = std::fs::read_to_string(&status_path).ok().and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmHWM:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                }) {
                    peak.fetch_max(kb * 1024, std::sync::atomic::Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
    let out = child.wait_with_output().ok()?;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.join();
    Some((out, peak.load(std::sync::atomic::Ordering::Relaxed)))
}
