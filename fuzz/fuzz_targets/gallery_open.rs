//! The gallery loader on arbitrary bytes as its SQLite file: opening, counting, reading the
//! vectors, the spoken moments and the near-duplicate features, and searching give results or
//! errors, never a panic.
#![no_main]

use crossmodal::gallery::Gallery;
use crossmodal::space::Embedding;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("crossmodal-fuzz-gallery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let path = dir.join("g.sqlite");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(gallery) = Gallery::open(&path, "fuzz-encoder", false) {
        let _ = gallery.len();
        let _ = gallery.vectors();
        let query = Embedding::normalised(vec![0.5; 384]);
        if let Ok(hits) = gallery.search(&query, 5) {
            assert!(hits.len() <= 5);
        }
        let _ = gallery.recordings_len();
        if let Ok(library) = crossmodal::gallery::moments::Library::load(&gallery) {
            assert!(library.top_moments(&query, 5).len() <= 5);
            assert!(library.top_images(&query, 5).len() <= 5);
            for moment in library.moments.iter().take(3) {
                let _ = gallery.context(moment);
            }
        }
        let _ = gallery.duplicates(0.5);
    }
});
