//! crossmodal: with no subcommand the window, else one job headless (`cli`).

mod cli;

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser as _;
use crossmodal::speech;

fn main() -> ExitCode {
    let started = Instant::now();
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
