//! Push-to-talk started and stopped by a command instead of a grabbed key: where no program may
//! grab a key for itself (Wayland), the person binds `crossmodal dictate --toggle` to a shortcut
//! in the desktop's own settings, and each run of it toggles the dictation that is running.
//!
//! The running dictation listens on a Unix socket in the session's runtime folder
//! (`$XDG_RUNTIME_DIR/crossmodal/dictate.sock`); `--toggle` connects, sends `toggle`, and prints
//! what the dictation answers (`listening` or `stopped`).

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use crate::engine::Notify;

/// Where the running dictation listens: `$CROSSMODAL_DICTATE_SOCKET`, else the session's runtime
/// folder, else the temporary folder (per user).
pub fn socket_path() -> PathBuf {
    if let Some(p) = std::env::var_os("CROSSMODAL_DICTATE_SOCKET").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let dir = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()).map_or_else(
        || std::env::temp_dir().join(format!("crossmodal-{}", std::env::var("USER").unwrap_or_default())),
        |d| PathBuf::from(d).join("crossmodal"),
    );
    dir.join("dictate.sock")
}

#[derive(Debug, thiserror::Error)]
pub enum ToggleError {
    #[error("no dictation is running to toggle ({path}: {reason}); start one with `crossmodal dictate`")]
    NotRunning { path: PathBuf, reason: String },
    #[error(
        "another dictation is already running ({path}): `crossmodal dictate --toggle` starts and stops it"
    )]
    AlreadyRunning { path: PathBuf },
    #[error("{path}: {reason}")]
    Socket { path: PathBuf, reason: String },
}

/// Toggles the running dictation; returns what it says it does now (`listening`, `stopped`).
pub fn send_toggle() -> Result<String, ToggleError> {
    send_toggle_to(&socket_path())
}

fn send_toggle_to(path: &std::path::Path) -> Result<String, ToggleError> {
    let not_running =
        |e: std::io::Error| ToggleError::NotRunning { path: path.to_owned(), reason: e.to_string() };
    let mut stream = UnixStream::connect(path).map_err(not_running)?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(not_running)?;
    stream.write_all(b"toggle\n").map_err(not_running)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).map_err(not_running)?;
    Ok(answer.trim().to_owned())
}

/// What a toggle asks for; the dictation answers with what it does now.
pub struct Request {
    reply: Sender<String>,
}

impl Request {
    pub fn answer(self, state: &str) {
        let _ = self.reply.send(state.to_owned());
    }
}

/// The listening socket; removed when dropped.
pub struct Listener {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    requests: Receiver<Request>,
}

impl Listener {
    /// Listens at `socket_path()`; a socket left by a dictation that is gone is replaced, one
    /// that answers is another dictation's (an error).
    pub fn start(notify: &Notify) -> Result<Self, ToggleError> {
        Self::start_at(socket_path(), notify)
    }

    fn start_at(path: PathBuf, notify: &Notify) -> Result<Self, ToggleError> {
        let err = |e: std::io::Error| ToggleError::Socket { path: path.clone(), reason: e.to_string() };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        if path.exists() {
            if UnixStream::connect(&path).is_ok() {
                return Err(ToggleError::AlreadyRunning { path });
            }
            std::fs::remove_file(&path).map_err(err)?;
        }
        let listener = UnixListener::bind(&path).map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, requests) = mpsc::channel();
        let (halt, notify) = (Arc::clone(&stop), Arc::clone(notify));
        std::thread::Builder::new()
            .name("crossmodal-toggle".into())
            .spawn(move || {
                while !halt.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => serve(&stream, &tx, &notify),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(e) => {
                            tracing::warn!("the toggle socket: {e}");
                            return;
                        }
                    }
                }
            })
            .map_err(err)?;
        Ok(Self { path, stop, requests })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Toggles that have arrived, without waiting; each wants an answer.
    pub fn poll(&self) -> Vec<Request> {
        self.requests.try_iter().collect()
    }
}

/// One connection: a `toggle` line in, the dictation's answer out.
fn serve(stream: &UnixStream, requests: &Sender<Request>, notify: &Notify) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    let mut reader = BufReader::new(stream);
    if reader.read_line(&mut line).is_err() || line.trim() != "toggle" {
        let _ = { stream }.write_all(b"error: say toggle\n");
        return;
    }
    let (reply, answer) = mpsc::channel();
    if requests.send(Request { reply }).is_err() {
        return;
    }
    notify();
    let state = answer.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| "busy".to_owned());
    let _ = { stream }.write_all(format!("{state}\n").as_bytes());
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toggle_reaches_the_running_dictation_and_a_second_one_is_refused() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("run/dictate.sock");
        let err = send_toggle_to(&path).expect_err("nothing runs yet");
        assert!(err.to_string().contains("no dictation is running"), "{err}");
        let notify: Notify = Arc::new(|| {});
        let listener = Listener::start_at(path.clone(), &notify).expect("listens");
        let second = Listener::start_at(path.clone(), &notify);
        assert!(matches!(second, Err(ToggleError::AlreadyRunning { .. })));
        let answering = std::thread::spawn(move || {
            for _ in 0..500 {
                if let Some(r) = listener.poll().pop() {
                    r.answer("listening");
                    return listener;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("no toggle arrived");
        });
        assert_eq!(send_toggle_to(&path).expect("toggled"), "listening");
        drop(answering.join().expect("answered"));
        assert!(!path.exists(), "the socket is removed");
        // A socket file left behind by a dictation that died is replaced.
        std::fs::write(&path, b"").expect("stale file");
        drop(Listener::start_at(path, &notify).expect("a stale socket is replaced"));
    }
}
