//! crossmodal: with no subcommand the window, else one job headless (`cli`).

mod cli;

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser as _;
use crossmodal::speech;

fn main() -> ExitCode {
    let started = Instant::now();
    #[cfg(target_os = "linux")]
    threads_wait_asleep();
    // whisper.cpp's own log (forwarded by whisper-rs) only when asked for: its failures come
    // back as errors the program reports itself, once, and a job cancelled on purpose (speech
    // that went on after a pause) logs "failed to encode", which is no error.
    let whisper = if std::env::var_os(speech::WHISPER_LOG_ENV).is_some() { "info" } else { "off" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CROSSMODAL_LOG")
                // symphonia logs its probing of a file that is not audio as an error; the
                // program says so itself, once, with the file's name.
                .unwrap_or_else(|_| format!("warn,whisper_rs={whisper},symphonia_core=off").into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = cli::Cli::parse();
    match cli::run(cli, started) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// whisper.cpp's threads meet in OpenMP barriers on Linux (Cargo.toml). libgomp's default has a
/// waiting thread spin for 300,000 rounds first, which beside other busy programs took the cores
/// the thread waited for: a sentence's transcription was up to ten times slower. Waiting asleep
/// at once (`OMP_WAIT_POLICY=passive`) fixed that but made an idle machine twice as slow on a long
/// recording (each of the decoder's many small steps woke its threads from sleep). A short spin,
/// 1,000 rounds, keeps both: as fast as the default when idle, as passive beside busy loops
/// (`scripts/eval/busy.sh`, docs/BENCHMARKS.md). libgomp reads its settings once, as it loads,
/// before `main`: so, unless the user set either, the program starts itself again with the spin
/// set (same process, arguments and everything else). Should that fail it simply goes on.
#[cfg(target_os = "linux")]
fn threads_wait_asleep() {
    use std::os::unix::process::CommandExt as _;
    const SPIN: &str = "GOMP_SPINCOUNT";
    if std::env::var_os("OMP_WAIT_POLICY").is_some() || std::env::var_os(SPIN).is_some() {
        return;
    }
    let mut args = std::env::args_os();
    let name = args.next().unwrap_or_default();
    let _failed = std::process::Command::new("/proc/self/exe").arg0(name).args(args).env(SPIN, "1000").exec();
}
