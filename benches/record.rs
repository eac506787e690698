//! Where a bench leaves its figures for `cargo bench --bench report`: `$CROSSMODAL_BENCH_OUT/NAME.json`
//! when that variable is set (the report sets it), else nowhere.

/// Writes the figures of one bench.
pub fn record(name: &str, figures: &serde_json::Value) {
    let Some(dir) = std::env::var_os("CROSSMODAL_BENCH_OUT") else { return };
    let path = std::path::Path::new(&dir).join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(figures).unwrap_or_default();
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
        eprintln!("could not write {}: {e}", path.display());
    }
}
