//! The audio decoders (hound for WAV, symphonia for the rest) on arbitrary bytes: an error is
//! fine, a panic or a hang is not. The first byte picks the file name's extension, so every
//! decoder path is reached.
#![no_main]

use libfuzzer_sys::fuzz_target;

const EXTENSIONS: [&str; 6] = ["wav", "mp3", "flac", "ogg", "m4a", "bin"];

static PRINT_PANICS_WITHOUT_ABORTING: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    // The decoder turns a panic inside symphonia into an error; libfuzzer-sys's hook would
    // abort on it before it is caught. A panic that escapes still aborts (libfuzzer-sys
    // catches it and aborts), so only the ones the decoder handles are let through.
    PRINT_PANICS_WITHOUT_ABORTING.call_once(|| std::panic::set_hook(Box::new(|info| eprintln!("{info}"))));
    let Some((&pick, bytes)) = data.split_first() else { return };
    let ext = EXTENSIONS[usize::from(pick) % EXTENSIONS.len()];
    let path = std::env::temp_dir().join(format!("crossmodal-fuzz-{}.{ext}", std::process::id()));
    if std::fs::write(&path, bytes).is_err() {
        return;
    }
    if let Ok(mut reader) = crossmodal::audio::AudioReader::open(&path) {
        let _ = reader.duration_secs();
        // At most a minute of 16 kHz audio: a header may promise hours.
        for _ in 0..2 {
            match reader.read_chunk(16_000 * 30) {
                Ok(Some(chunk)) => assert!(chunk.iter().all(|s| s.is_finite()), "a decoded sample is not finite"),
                _ => break,
            }
        }
    }
    let _ = std::fs::remove_file(&path);
});
