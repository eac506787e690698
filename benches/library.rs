//! The library on the public set: images and recordings added through the engine, then every
//! image query of the manifest and every spoken-moment query (`MOMENT_QUERIES`) searched over
//! everything at once. It fits the per-kind calibration (`gallery::rank`) and reports recall@1
//! and @5 for each kind with it, with it fitted leaving the query out, and without it; then the
//! time of one query over 100 hours of moments and 100k images (synthetic vectors).
//!
//!     cargo bench --bench library

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "record.rs"]
mod record;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossmodal::engine::{Ask, Engine, Event, FoundItem, ImageQuery, JobId, Request};
use crossmodal::gallery::moments::{Library, Moment};
use crossmodal::gallery::rank::{self, Calibration, Platt, SearchKind};
use crossmodal::model_store::ModelStore;
use crossmodal::space::Embedding;
use crossmodal::space::images::EncoderChoice;

/// One query and the file it is meant to find.
struct Query {
    text: String,
    target: String,
    speech: bool,
}

/// Per query: the cosine of every image and of every recording (its best moment), by file name.
struct Scores {
    images: Vec<(String, f32)>,
    recordings: Vec<(String, f32)>,
}

fn name(p: &std::path::Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn main() {
    let dir = tempfile::tempdir().expect("temp");
    let gallery = dir.path().join("library.sqlite");
    let engine = Engine::start(ModelStore::from_env().expect("store"), std::sync::Arc::new(|| {}));
    let eval = common::eval_dir();
    let started = Instant::now();
    engine.send(Request::Index {
        gallery: gallery.clone(),
        paths: vec![eval.join("images"), eval.join("speech")],
        encoder: EncoderChoice::Lite,
        reindex: false,
        speech: Some(crossmodal::model_store::catalogue::DEFAULT_WHISPER.into()),
    });
    let report = engine
        .wait_for(|e| match e {
            Event::Indexed(r) => Some(r),
            Event::Error(e) => Some(Err(e)),
            _ => None,
        })
        .expect("engine")
        .expect("added");
    let add_secs = started.elapsed().as_secs_f64();
    println!(
        "added {} files ({} moments) in {add_secs:.1} s, {} failed",
        report.added,
        report.moments,
        report.failed.len()
    );

    let mut queries: Vec<Query> = common::photos()
        .iter()
        .flat_map(|p| {
            p.queries.iter().map(|q| Query { text: q.clone(), target: name(&p.path), speech: false })
        })
        .collect();
    queries.extend(common::MOMENT_QUERIES.iter().map(|(q, f)| Query {
        text: (*q).to_owned(),
        target: (*f).to_owned(),
        speech: true,
    }));
    let search = |text: &str, kind: SearchKind| -> Vec<FoundItem> {
        let id = JobId::next();
        let ask =
            Ask { query: ImageQuery { text: text.to_owned(), ..ImageQuery::default() }, kind, top: 1000 };
        engine.send(Request::Search { id, gallery: gallery.clone(), ask, encoder: EncoderChoice::Lite });
        engine
            .wait_for(|e| match e {
                Event::Found { id: i, result } if i == id => Some(result),
                _ => None,
            })
            .expect("engine")
            .expect("found")
            .items
    };
    let scores: Vec<Scores> = queries
        .iter()
        .map(|q| {
            let images = search(&q.text, SearchKind::Image)
                .into_iter()
                .filter_map(|i| match i {
                    FoundItem::Image(f) => Some((name(&f.path), f.cosine)),
                    FoundItem::Moment(_) => None,
                })
                .collect();
            let mut best: HashMap<String, f32> = HashMap::new();
            for item in search(&q.text, SearchKind::Speech) {
                if let FoundItem::Moment(m) = item {
                    let e = best.entry(name(&m.path)).or_insert(f32::NEG_INFINITY);
                    *e = e.max(m.cosine);
                }
            }
            Scores { images, recordings: best.into_iter().collect() }
        })
        .collect();

    let all: Vec<usize> = (0..queries.len()).collect();
    let fitted = fit(&queries, &scores, &all);
    println!(
        "fitted on all {} queries: image relevance = σ({:.2}·cos {:+.2}), speech = σ({:.2}·cos {:+.2})",
        queries.len(),
        fitted.image.scale,
        fitted.image.offset,
        fitted.speech.scale,
        fitted.speech.offset
    );
    let built_in = rank::calibration("efficientnet-lite0+conse").expect("the lite calibration");
    println!(
        "built in:                 image relevance = σ({:.2}·cos {:+.2}), speech = σ({:.2}·cos {:+.2})",
        built_in.image.scale, built_in.image.offset, built_in.speech.scale, built_in.speech.offset
    );

    // Where each query's file lands in the mixed list, in four ways of ordering it.
    let ranks = |order: &dyn Fn(usize) -> Option<Calibration>| -> Vec<usize> {
        (0..queries.len()).map(|i| mixed_rank(&queries[i], &scores[i], order(i))).collect()
    };
    let rows: Vec<(&str, Vec<usize>)> = vec![
        (
            "one kind searched (its own list)",
            (0..queries.len()).map(|i| own_rank(&queries[i], &scores[i])).collect(),
        ),
        ("everything, built-in calibration", ranks(&|_| Some(built_in))),
        (
            "everything, calibration fitted without the query",
            ranks(&|i| {
                let rest: Vec<usize> = (0..queries.len()).filter(|j| *j != i).collect();
                Some(fit(&queries, &scores, &rest))
            }),
        ),
        ("everything, raw cosines", ranks(&|_| Some(IDENTITY))),
        ("everything, kinds taken in turns", ranks(&|_| None)),
    ];
    println!();
    println!("| ordering | image queries R@1 | R@5 | moment queries R@1 | R@5 |\n|---|---|---|---|---|");
    let mut figures = serde_json::Map::new();
    for (label, r) in &rows {
        let at = |speech: bool, k: usize| {
            let of: Vec<&usize> =
                r.iter().zip(&queries).filter(|(_, q)| q.speech == speech).map(|(r, _)| r).collect();
            (of.iter().filter(|r| ***r < k).count(), of.len())
        };
        let (i1, n_i) = at(false, 1);
        let (i5, _) = at(false, 5);
        let (s1, n_s) = at(true, 1);
        let (s5, _) = at(true, 5);
        println!("| {label} | {i1}/{n_i} | {i5}/{n_i} | {s1}/{n_s} | {s5}/{n_s} |");
        figures.insert(
            (*label).to_owned(),
            serde_json::json!({"image_r1": i1, "image_r5": i5, "images": n_i, "speech_r1": s1, "speech_r5": s5, "moments": n_s}),
        );
    }
    println!();
    for (i, q) in queries.iter().enumerate().filter(|(_, q)| q.speech) {
        let r = mixed_rank(q, &scores[i], Some(built_in));
        println!("  {} {:<62} → {} (rank {})", if r == 0 { "yes" } else { " no" }, q.text, q.target, r + 1);
    }

    let timing = query_time();
    let (precision, recall) = duplicates();
    figures.insert("duplicates_precision".into(), serde_json::json!(precision));
    figures.insert("duplicates_recall".into(), serde_json::json!(recall));
    figures.insert("add_secs".into(), serde_json::json!(add_secs));
    figures.insert("query_ms_100h_100k".into(), serde_json::json!(timing));
    record::record("library", &serde_json::Value::Object(figures));
}

/// A calibration that leaves cosines as they are.
const IDENTITY: Calibration =
    Calibration { image: Platt { scale: 1.0, offset: 0.0 }, speech: Platt { scale: 1.0, offset: 0.0 } };

/// The target's place (0 = first) in its own kind's list.
fn own_rank(q: &Query, s: &Scores) -> usize {
    let list = if q.speech { &s.recordings } else { &s.images };
    let target = list.iter().find(|(n, _)| *n == q.target).map_or(f32::NEG_INFINITY, |t| t.1);
    list.iter().filter(|(n, c)| *n != q.target && *c > target).count()
}

/// The target's place in the list of both kinds, ordered by `calibration` (or in turns).
fn mixed_rank(q: &Query, s: &Scores, calibration: Option<Calibration>) -> usize {
    let mut images = s.images.clone();
    let mut recordings = s.recordings.clone();
    images.sort_by(|a, b| b.1.total_cmp(&a.1));
    recordings.sort_by(|a, b| b.1.total_cmp(&a.1));
    let score = |c: Option<Platt>, x: f32| c.map_or(x, |p| p.relevance(x));
    let images: Vec<((bool, String), f32)> =
        images.into_iter().map(|(n, c)| ((false, n), score(calibration.map(|c| c.image), c))).collect();
    let recordings: Vec<((bool, String), f32)> =
        recordings.into_iter().map(|(n, c)| ((true, n), score(calibration.map(|c| c.speech), c))).collect();
    let merged = rank::merge(images, recordings, calibration.is_some(), usize::MAX);
    merged.iter().position(|(sp, n)| *sp == q.speech && *n == q.target).unwrap_or(merged.len())
}

/// Logistic regression of relevance on the cosine, per kind, over the queries `use_`: every
/// (query, item of that kind) pair, relevant when the item is the query's target. Newton's method
/// with a little ridge, from zero.
fn fit(queries: &[Query], scores: &[Scores], use_: &[usize]) -> Calibration {
    let pairs = |speech: bool| -> Vec<(f64, f64)> {
        use_.iter()
            .flat_map(|&i| {
                let list = if speech { &scores[i].recordings } else { &scores[i].images };
                list.iter().map(move |(n, c)| {
                    (
                        f64::from(*c),
                        f64::from(u8::from(queries[i].speech == speech && *n == queries[i].target)),
                    )
                })
            })
            .collect()
    };
    let one = |data: Vec<(f64, f64)>| -> Platt {
        let (mut a, mut b) = (0.0f64, 0.0f64);
        let ridge = 1e-3;
        for _ in 0..100 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (ridge * a, 0.0, ridge, 0.0, 1e-9);
            for &(x, y) in &data {
                let p = 1.0 / (1.0 + (-(a * x + b)).exp());
                let w = p * (1.0 - p);
                ga += (p - y) * x;
                gb += p - y;
                haa += w * x * x;
                hab += w * x;
                hbb += w;
            }
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-12 {
                break;
            }
            let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
            a -= da;
            b -= db;
            if da.abs() + db.abs() < 1e-9 {
                break;
            }
        }
        Platt { scale: a as f32, offset: b as f32 }
    };
    Calibration { image: one(pairs(false)), speech: one(pairs(true)) }
}

/// Median time of one query over 100 hours of moments (a segment every 5 s, windowed as the
/// library does: 144k vectors) and 100k images, random unit vectors of 384 dimensions.
fn query_time() -> f64 {
    let dim = 384;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mut vector = || Embedding::normalised((0..dim).map(|_| next()).collect());
    let segments = 100 * 3600 / 5;
    let images: Vec<Embedding> = (0..100_000).map(|_| vector()).collect();
    let mut moments = Vec::new();
    let mut moment_vectors = Vec::new();
    for span in 1..=2usize {
        for first in 0..segments + 1 - span {
            moments.push(Moment {
                recording: (first / 720) as i64,
                path: PathBuf::new(),
                first,
                last: first + span - 1,
                start: 0.0,
                end: 0.0,
                text: String::new(),
            });
            moment_vectors.push(vector());
        }
    }
    let n_moments = moments.len();
    let library = Library::new(vec![PathBuf::new(); images.len()], &images, moments, &moment_vectors);
    let mut times: Vec<Duration> = (0..21)
        .map(|_| {
            let q = vector();
            let t = Instant::now();
            let a = library.top_images(&q, 10);
            let b = library.top_moments(&q, 10);
            let took = t.elapsed();
            assert_eq!((a.len(), b.len()), (10, 10));
            took
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2].as_secs_f64() * 1000.0;
    println!();
    println!(
        "one query over {n_moments} moment vectors (100 h) and {} image vectors: median {median:.1} ms (of 21), {} threads",
        images.len(),
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    );
    median
}

/// The altered copies a near-duplicate finder must see through: re-encoded as JPEG at quality
/// 60, halved, the centre 80 % cropped, and all three at once (cropped 85 %, 60 % size, JPEG 70).
pub fn altered(image: &image::RgbImage) -> Vec<(&'static str, image::RgbImage)> {
    let jpeg = |img: &image::RgbImage, quality: u8| -> image::RgbImage {
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality)
            .encode_image(img)
            .expect("encodes");
        image::load_from_memory(&bytes).expect("decodes").to_rgb8()
    };
    let resize = |img: &image::RgbImage, f: f64| {
        let (w, h) = img.dimensions();
        image::imageops::resize(
            img,
            ((f64::from(w) * f) as u32).max(1),
            ((f64::from(h) * f) as u32).max(1),
            image::imageops::FilterType::Triangle,
        )
    };
    let crop = |img: &image::RgbImage, f: f64| {
        let (w, h) = img.dimensions();
        let (cw, ch) = ((f64::from(w) * f) as u32, (f64::from(h) * f) as u32);
        image::imageops::crop_imm(img, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image()
    };
    vec![
        ("jpeg60", jpeg(image, 60)),
        ("half", resize(image, 0.5)),
        ("crop80", crop(image, 0.8)),
        ("all three", jpeg(&resize(&crop(image, 0.85), 0.6), 70)),
    ]
}

/// Pair precision and recall of near-duplicate finding on the public photographs and their
/// altered copies: with the lite network's features (what the library uses) and, to show why
/// not, with the ConSE search vectors; over thresholds, and at the built-in one.
fn duplicates() -> (f64, f64) {
    use crossmodal::model_store;
    use crossmodal::space::TextEncoder;
    use crossmodal::space::conse::{ConseSettings, LiteImageEncoder};
    use crossmodal::space::image_lite::LiteNet;
    let store = ModelStore::from_env().expect("store");
    let device = candle_core::Device::Cpu;
    let text = TextEncoder::load(&store.model_dir(model_store::spec("minilm").expect("spec")), &device)
        .expect("minilm");
    let weights = store.open_checked(model_store::spec("efficientnet-lite0").expect("spec")).expect("lite0");
    let lite = LiteImageEncoder::new(
        LiteNet::load(&weights, &device).expect("lite0"),
        &text,
        ConseSettings::default(),
    )
    .expect("encoder");
    let mut images = Vec::new();
    let mut owner = Vec::new();
    for (i, photo) in common::photos().iter().enumerate() {
        let original = image::open(&photo.path).expect("decodes").to_rgb8();
        for (_, copy) in altered(&original) {
            images.push(copy);
            owner.push(i);
        }
        images.push(original);
        owner.push(i);
    }
    let mut vectors = Vec::new();
    for chunk in images.chunks(8) {
        vectors.extend(lite.embed_with_features(chunk).expect("embeds"));
    }
    let pairs = |pick: &dyn Fn(usize) -> Embedding| -> Vec<(f32, bool)> {
        let mut out = Vec::new();
        for i in 0..vectors.len() {
            for j in i + 1..vectors.len() {
                out.push((pick(i).cosine(&pick(j)), owner[i] == owner[j]));
            }
        }
        out
    };
    let at = |pairs: &[(f32, bool)], t: f32| -> (f64, f64) {
        let found = pairs.iter().filter(|(c, _)| *c >= t).count();
        let right = pairs.iter().filter(|(c, same)| *c >= t && *same).count();
        let all = pairs.iter().filter(|(_, same)| *same).count();
        (right as f64 / found.max(1) as f64, right as f64 / all.max(1) as f64)
    };
    let features = pairs(&|i| vectors[i].1.clone());
    let conse = pairs(&|i| vectors[i].0.clone());
    let positives = features.iter().filter(|p| p.1).count();
    println!();
    println!(
        "near-duplicates: {} photographs × (original + 4 altered copies), {} pairs of which {positives} are copies of one photograph",
        common::photos().len(),
        features.len()
    );
    println!(
        "| threshold | features precision | recall | ConSE vectors precision | recall |\n|---|---|---|---|---|"
    );
    for t in [0.50f32, 0.53, 0.60, 0.70, 0.80, 0.90] {
        let (fp, fr) = at(&features, t);
        let (cp, cr) = at(&conse, t);
        println!("| {t:.2} | {fp:.3} | {fr:.3} | {cp:.3} | {cr:.3} |");
    }
    let worst_copy = features.iter().filter(|p| p.1).map(|p| p.0).fold(f32::INFINITY, f32::min);
    let closest_other = features.iter().filter(|p| !p.1).map(|p| p.0).fold(f32::NEG_INFINITY, f32::max);
    println!(
        "features: the least alike copies {worst_copy:.3}, the most alike different photographs {closest_other:.3}"
    );
    let (p, r) = at(&features, crossmodal::gallery::duplicates::THRESHOLD);
    println!(
        "at the built-in threshold {}: precision {p:.3}, recall {r:.3}",
        crossmodal::gallery::duplicates::THRESHOLD
    );
    (p, r)
}
