//! `search(..., recall=r)` through the public `Database` API: the database calibrates
//! `ef_search` (HNSW) or `nprobe` (IVF) on its own rows, then on the queries searches
//! asked, and held-out queries drawn from the same distribution as the stored rows —
//! which no curve saw — land near the target, measured against brute force here:
//! - HNSW (with its default codes and walking the full rows) and IVF (plain and with
//!   RaBitQ codes), targets 0.8, 0.9, 0.95 and 0.99: measured recall@10 within
//!   [target − 0.03, target + 0.05] where the target is below what the index reaches;
//! - a higher target never gives a lower recall; batch searches answer as single ones;
//! - a filter (its own selectivity band) keeps the target;
//! - a flat index and an untrained IVF index are exact whatever the target;
//! - refusals: a target outside (0, 1] or NaN, or given with `ef_search` / `nprobe`; a
//!   `probe_reach` that is negative or not finite, given with a target, or not on IVF.
//!
//! Recall@10 counts a hit within the true 10th distance (ties are not misses). Random
//! data is seeded: the seed is printed and `NUSTERDB_TEST_SEED=<u64>` replays a run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use nusterdb_core::config::Quantization;
use nusterdb_core::db::PutMode;
use nusterdb_core::filter::{Filter, FilterInput};
use nusterdb_core::index::SearchParams;
use nusterdb_core::rng::SplitMix64;
use nusterdb_core::{Database, DatabaseConfig, Error, Id, IndexType, Location, Metadata, Value};

type Rows = BTreeMap<u64, Vec<f32>>;

/// `n` rows of `dim` around `blobs` centres (centres 2·N(0,1), rows ±N(0,1) around
/// them): neighbours are neither trivial nor hopeless, so recall moves with the knob.
fn blobs(rng: &mut SplitMix64, n: usize, dim: usize, blobs: usize) -> Vec<Vec<f32>> {
    let centres: Vec<Vec<f32>> = (0..blobs)
        .map(|_| common::gaussian(rng, dim).iter().map(|x| 2.0 * x).collect())
        .collect();
    (0..n)
        .map(|_| {
            let c = &centres[(rng.next_u64() % blobs as u64) as usize];
            c.iter().map(|&x| x + rng.next_gaussian() as f32).collect()
        })
        .collect()
}

fn recall(
    db: &Database,
    rows: &Rows,
    queries: &[Vec<f32>],
    p: SearchParams,
    f: Option<&Filter>,
    allowed: &Rows,
) -> f64 {
    let metric = db.config().distance_metric;
    let (mut hits, mut asked) = (0, 0);
    for q in queries {
        let got = db.search(q, 10, f, p).unwrap();
        let want = common::brute_force(metric, allowed, q, 10);
        let tenth = metric.distance_unchecked(q, &rows[want.last().unwrap()]);
        hits += got.iter().filter(|(_, d)| *d <= tenth).count();
        asked += want.len();
    }
    hits as f64 / asked as f64
}

fn target(r: f32) -> SearchParams {
    SearchParams {
        recall: Some(r),
        ..SearchParams::default()
    }
}

/// 8,000 stored rows of 32 dims and 300 held-out queries from the same blobs.
fn data(test: &str) -> (Rows, Vec<Vec<f32>>) {
    let mut rng = SplitMix64::new(common::seed(test, 0x7ec4_0001));
    let mut all = blobs(&mut rng, 8300, 32, 40);
    let queries = all.split_off(8000);
    (
        all.into_iter()
            .enumerate()
            .map(|(i, v)| (i as u64, v))
            .collect(),
        queries,
    )
}

/// Stores `rows`; with `tags`, each with field "r" = its id % 100.
fn fill(db: &Database, rows: &Rows, tags: bool) {
    let ids: Vec<Id> = rows.keys().map(|&i| Id::Int(i)).collect();
    let flat: Vec<f32> = rows.values().flatten().copied().collect();
    let meta: Vec<Option<Metadata>> = if tags {
        rows.keys()
            .map(|&i| {
                let r = Value::Int((i % 100) as i64);
                Some(Metadata::with_parts([("r".to_owned(), r)], []).unwrap())
            })
            .collect()
    } else {
        Vec::new()
    };
    db.put(PutMode::Add, &ids, &flat, meta, Vec::new()).unwrap();
}

/// The targets 0.8, 0.9, 0.95, 0.99: the measured recall is at least the target less
/// 0.03, and where it overshoots by more than 0.03 the next smaller setting of the knob
/// (the database says which it chose) would not have met it with 0.05 to spare.
fn check_targets(db: &Database, rows: &Rows, queries: &[Vec<f32>], what: &str) {
    // The first 150 queries are asked first: the curves are then measured again on
    // them; recall is measured on the other 150, which no curve saw.
    let (warm, queries) = queries.split_at(150);
    let flat: Vec<f32> = warm.iter().flatten().copied().collect();
    db.batch_search(&flat, 10, None, target(0.9)).unwrap();
    let mut last = 0.0;
    for t in [0.8f32, 0.9, 0.95, 0.99] {
        let r = recall(db, rows, queries, target(t), None, rows);
        let chosen = db.search_params_for(10, None, target(t)).unwrap();
        eprintln!("{what}: target {t}: recall@10 {r:.3} with {chosen:?}");
        assert_eq!(chosen.recall, None, "{what}");
        assert!(
            r + 1e-9 >= last,
            "{what}: target {t} gave {r:.3}, below the last {last:.3}"
        );
        last = r;
        let tf = f64::from(t);
        assert!(r >= tf - 0.03, "{what}: target {t}: recall@10 {r:.3}");
        let smaller = match (chosen.ef_search, chosen.nprobe) {
            (Some(ef), _) if ef > 10 => Some(SearchParams::ef(Some(ef - 1))),
            // IVF: the curve's setting before the chosen one (the next cheaper).
            (_, Some(n)) => {
                let curves = db.recall_curves().unwrap();
                let steps = &curves.last().unwrap().steps;
                let i = steps
                    .iter()
                    .position(|s| (s.0, s.1) == (n, chosen.probe_reach))
                    .unwrap_or_else(|| panic!("{what}: {chosen:?} is not in {steps:?}"));
                i.checked_sub(1).map(|j| SearchParams {
                    nprobe: Some(steps[j].0),
                    probe_reach: steps[j].1,
                    ..SearchParams::default()
                })
            }
            _ => None,
        };
        if let Some(p) = smaller.filter(|_| r > tf + 0.03) {
            let less = recall(db, rows, queries, p, None, rows);
            assert!(
                less < tf + 0.05,
                "{what}: target {t}: {r:.3}, and {less:.3} with {p:?}"
            );
        }
        // Batches are answered as single searches.
        let flat: Vec<f32> = queries[..20].iter().flatten().copied().collect();
        let batch = db.batch_search(&flat, 10, None, target(t)).unwrap();
        for (q, b) in queries[..20].iter().zip(&batch) {
            assert_eq!(&db.search(q, 10, None, target(t)).unwrap(), b, "{what}");
        }
    }
}

#[test]
fn hnsw_lands_near_the_target() {
    let (rows, queries) = data("recall_target_hnsw");
    for q in [None, Some(Quantization::Off)] {
        let mut c = common::hnsw_config(32, nusterdb_core::DistanceMetric::Euclidean, 8, 40);
        c.quantization = q;
        let db = Database::open(Location::Memory, Some(c), false).unwrap();
        fill(&db, &rows, false);
        check_targets(&db, &rows, &queries, &format!("hnsw {q:?}"));
    }
}

#[test]
fn ivf_lands_near_the_target() {
    let (rows, queries) = data("recall_target_ivf");
    for q in [None, Some(Quantization::RaBitQ)] {
        let mut c = DatabaseConfig::new(32).unwrap();
        c.index_type = IndexType::Ivf;
        c.quantization = q;
        let db = Database::open(Location::Memory, Some(c), false).unwrap();
        fill(&db, &rows, false);
        check_targets(&db, &rows, &queries, &format!("ivf {q:?}"));
    }
}

#[test]
fn a_filter_keeps_the_target() {
    let (rows, queries) = data("recall_target_filter");
    for index in [IndexType::Hnsw, IndexType::Ivf] {
        let mut c = common::hnsw_config(32, nusterdb_core::DistanceMetric::Euclidean, 8, 40);
        c.index_type = index;
        let db = Database::open(Location::Memory, Some(c), false).unwrap();
        fill(&db, &rows, true);
        for below in [30i64, 5] {
            let f = Filter::parse(&FilterInput::Map(vec![(
                "r".into(),
                FilterInput::Map(vec![("$lt".into(), FilterInput::Int(below))]),
            )]))
            .unwrap();
            let allowed: Rows = rows
                .iter()
                .filter(|(&i, _)| ((i % 100) as i64) < below)
                .map(|(&i, v)| (i, v.clone()))
                .collect();
            for t in [0.9f32, 0.95] {
                let r = recall(&db, &rows, &queries, target(t), Some(&f), &allowed);
                eprintln!("{index:?} {below}% allowed: target {t}: recall@10 {r:.3}");
                assert!(
                    r >= f64::from(t) - 0.03,
                    "{index:?} {below}%: target {t}: {r:.3}"
                );
            }
        }
    }
}

/// An IVF curve is measured at every `nprobe` from one pass per query (the lists each
/// row of the exact answer needs): each point, and each step (an `nprobe` with a
/// reach), is the recall searches at that setting get on the queries it was measured on — exactly for the plain scan, within 0.002
/// with RaBitQ codes — with no filter and with filters allowing 30 %, 5 % and 1 % of
/// the rows (the last scored all at once, as few allowed rows are).
#[test]
fn ivf_curves_are_what_searches_get() {
    let (rows, queries) = data("recall_target_ivf_curve");
    let warm = &queries[..150];
    let flat: Vec<f32> = warm.iter().flatten().copied().collect();
    for q in [None, Some(Quantization::RaBitQ)] {
        let tol = if q.is_some() { 0.002 } else { 1e-9 };
        for below in [None, Some(30i64), Some(5), Some(1)] {
            // A database of its own: the curve is measured on exactly these queries.
            let mut c = DatabaseConfig::new(32).unwrap();
            c.index_type = IndexType::Ivf;
            c.quantization = q;
            let db = Database::open(Location::Memory, Some(c), false).unwrap();
            fill(&db, &rows, true);
            let (f, allowed) = match below {
                None => (None, rows.clone()),
                Some(b) => {
                    let f = FilterInput::Map(vec![(
                        "r".into(),
                        FilterInput::Map(vec![("$lt".into(), FilterInput::Int(b))]),
                    )]);
                    let allowed: Rows = rows
                        .iter()
                        .filter(|(&i, _)| ((i % 100) as i64) < b)
                        .map(|(&i, v)| (i, v.clone()))
                        .collect();
                    (Some(Filter::parse(&f).unwrap()), allowed)
                }
            };
            let what = format!("ivf {q:?}, filter {below:?}");
            db.batch_search(&flat, 10, f.as_ref(), target(0.9)).unwrap();
            db.search_params_for(10, f.as_ref(), target(0.9)).unwrap();
            let curves = db.recall_curves().unwrap();
            let curve = curves.last().unwrap();
            assert!(curve.from_searches, "{what}: {curve:?}");
            assert_eq!(curve.knob, "nprobe");
            let values: Vec<usize> = curve.points.iter().map(|p| p.0).collect();
            let want: Vec<usize> = (1..=values.len()).collect();
            assert_eq!(values, want, "{what}: every nprobe from 1");
            let settings = curve.points.iter().map(|&(p, r)| (p, None, r));
            for (p, reach, r) in settings.chain(curve.steps.iter().copied()) {
                let params = SearchParams {
                    nprobe: Some(p),
                    probe_reach: reach,
                    ..SearchParams::default()
                };
                let got = recall(&db, &rows, warm, params, f.as_ref(), &allowed);
                assert!(
                    (got - r).abs() <= tol,
                    "{what}: nprobe {p}, reach {reach:?}: the curve says {r}, searches get {got}"
                );
            }
            // The steps climb in recall, a reach between whole nprobe values among them.
            assert!(
                curve.steps.windows(2).all(|w| w[0].2 < w[1].2),
                "{what}: {:?}",
                curve.steps
            );
            if below.is_none() {
                assert!(
                    curve.steps.iter().any(|s| s.1.is_some()),
                    "{what}: no reach among {:?}",
                    curve.steps
                );
            }
        }
    }
}

#[test]
fn exact_indexes_are_exact_at_any_target() {
    let (rows, queries) = data("recall_target_exact");
    let small: Rows = rows
        .iter()
        .take(900)
        .map(|(&i, v)| (i, v.clone()))
        .collect();
    for index in [IndexType::Flat, IndexType::Ivf] {
        let mut c = DatabaseConfig::new(32).unwrap();
        c.index_type = index;
        let db = Database::open(Location::Memory, Some(c), false).unwrap();
        // 900 rows: below the IVF training size, so no lists.
        fill(&db, &small, false);
        for t in [0.5f32, 1.0] {
            assert_eq!(
                recall(&db, &small, &queries[..50], target(t), None, &small),
                1.0,
                "{index:?}"
            );
            let p = db.search_params_for(10, None, target(t)).unwrap();
            assert_eq!(
                p,
                SearchParams::default(),
                "{index:?}: exact, nothing to set"
            );
        }
    }
}

#[test]
fn bad_targets_are_refused() {
    let (rows, queries) = data("recall_target_refusals");
    let q = &queries[0];
    for index in [IndexType::Flat, IndexType::Hnsw, IndexType::Ivf] {
        let mut c = DatabaseConfig::new(32).unwrap();
        c.index_type = index;
        let db = Database::open(Location::Memory, Some(c), false).unwrap();
        fill(&db, &rows, false);
        for bad in [0.0f32, -0.5, 1.01, f32::NAN, f32::INFINITY] {
            let e = db.search(q, 10, None, target(bad)).unwrap_err();
            assert!(
                matches!(e, Error::InvalidArgument(_)),
                "{index:?} {bad}: {e}"
            );
            let e = db.batch_search(q, 10, None, target(bad)).unwrap_err();
            assert!(
                matches!(e, Error::InvalidArgument(_)),
                "{index:?} {bad}: {e}"
            );
        }
        let both = SearchParams {
            recall: Some(0.9),
            ef_search: Some(64),
            ..SearchParams::default()
        };
        let e = db.search(q, 10, None, both).unwrap_err();
        assert!(e.to_string().contains("recall"), "{index:?}: {e}");
        let both = SearchParams {
            recall: Some(0.9),
            nprobe: Some(4),
            ..SearchParams::default()
        };
        assert!(matches!(
            db.search(q, 10, None, both),
            Err(Error::InvalidArgument(_))
        ));
        // A reach: IVF's alone, finite and not negative, not with a target.
        for (reach, recall) in [
            (f32::NAN, None),
            (-1.0, None),
            (f32::INFINITY, None),
            (0.5, Some(0.9)),
            (0.5, None),
        ] {
            let p = SearchParams {
                probe_reach: Some(reach),
                nprobe: (index == IndexType::Ivf).then_some(2),
                recall,
                ..SearchParams::default()
            };
            let got = db.search(q, 10, None, p);
            let fine = index == IndexType::Ivf && reach == 0.5 && recall.is_none();
            assert_eq!(got.is_ok(), fine, "{index:?} {reach} {recall:?}: {got:?}");
            if let Err(e) = got {
                assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
            }
        }
    }
}

/// Stores rows `from..from + n` of fresh blobs data (ids past the test's rows).
fn add_more(db: &Database, rng: &mut SplitMix64, from: u64, n: usize) {
    let more: Rows = blobs(rng, n, 32, 40)
        .into_iter()
        .enumerate()
        .map(|(i, v)| (from + i as u64, v))
        .collect();
    fill(db, &more, false);
}

/// The curves are saved with the asked queries: a reopened database (and a follower)
/// uses them without measuring, counts the records changed before the open towards
/// measuring again, and drops them after a `clear`.
#[test]
fn curves_survive_a_reopen() {
    let (rows, queries) = data("recall_target_reopen");
    let dir = tempfile::tempdir().unwrap();
    let at = || Location::Path(dir.path().join("db"));
    let c = common::hnsw_config(32, nusterdb_core::DistanceMetric::Euclidean, 8, 40);
    let db = Database::open(at(), Some(c), false).unwrap();
    fill(&db, &rows, false);
    let flat: Vec<f32> = queries[..150].iter().flatten().copied().collect();
    db.batch_search(&flat, 10, None, target(0.9)).unwrap();
    let chosen = db.search_params_for(10, None, target(0.95)).unwrap();
    let curves = db.recall_curves().unwrap();
    assert_eq!(curves.len(), 1);
    assert!(curves[0].from_searches, "{curves:?}");
    assert_eq!((curves[0].knob, curves[0].k), ("ef_search", 10));
    db.close();
    drop(db);

    let db = Database::open(at(), None, false).unwrap();
    assert_eq!(db.recall_curves().unwrap(), curves, "read back as measured");
    let follower = Database::open(at(), None, true).unwrap();
    assert_eq!(
        follower.recall_curves().unwrap(),
        curves,
        "a follower's too"
    );
    drop(follower);
    assert_eq!(
        db.search_params_for(10, None, target(0.95)).unwrap(),
        chosen
    );
    assert_eq!(
        db.recall_curves().unwrap(),
        curves,
        "answered from the saved curve"
    );
    let mut rng = SplitMix64::new(common::seed("recall_target_reopen_more", 7));
    add_more(&db, &mut rng, 100_000, 300);
    db.close();
    drop(db);

    let db = Database::open(at(), None, false).unwrap();
    let reopened = db.recall_curves().unwrap();
    assert_eq!(reopened.len(), 1);
    assert_eq!(
        reopened[0].changed_since, 300,
        "changes before the open count"
    );
    assert_eq!(reopened[0].points, curves[0].points);
    // 300 + 500 changed: a tenth of the 8,000 rows measured on; measured again.
    add_more(&db, &mut rng, 200_000, 500);
    db.search_params_for(10, None, target(0.95)).unwrap();
    let again = db.recall_curves().unwrap();
    assert_eq!(again[0].changed_since, 0, "{again:?}");
    assert_eq!(again[0].live, 8800);
    db.clear().unwrap();
    db.close();
    drop(db);
    let db = Database::open(at(), None, false).unwrap();
    assert_eq!(
        db.recall_curves().unwrap(),
        Vec::new(),
        "a clear drops the saved curves"
    );
}

/// `DatabaseConfig::recall`: a search naming no knob runs with the config's target;
/// one naming its own runs with that; it is runtime, replacing a stored `ef_search`
/// and replaced by a stated one; stating both is refused.
#[test]
fn a_config_default_target() {
    use nusterdb_core::config::{Field, Fields};
    let (rows, queries) = data("recall_target_default");
    let dir = tempfile::tempdir().unwrap();
    let at = || Location::Path(dir.path().join("db"));
    let mut c = common::hnsw_config(32, nusterdb_core::DistanceMetric::Euclidean, 8, 40);
    c.recall = Some(0.9);
    c.hnsw.ef_search = Some(64);
    let e = c.validate().unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(Database::open(at(), Some(c.clone()), false).is_err());
    c.hnsw.ef_search = None;
    let db = Database::open(at(), Some(c), false).unwrap();
    fill(&db, &rows, false);
    let q = &queries[0];
    let by_default = db.search(q, 10, None, SearchParams::default()).unwrap();
    assert_eq!(by_default, db.search(q, 10, None, target(0.9)).unwrap());
    let ef = db
        .search_params_for(10, None, target(0.9))
        .unwrap()
        .ef_search;
    assert_eq!(
        db.search_params_for(10, None, SearchParams::default())
            .unwrap()
            .ef_search,
        ef,
        "the default target sets the same ef"
    );
    // A search's own knob wins over the default target.
    let own = SearchParams::ef(Some(200));
    assert_eq!(db.search_params_for(10, None, own).unwrap(), own);
    db.close();
    drop(db);

    // Stored: a reopen stating nothing keeps it.
    let db = Database::open(at(), None, false).unwrap();
    assert_eq!(db.config().recall, Some(0.9));
    db.close();
    drop(db);
    // A stated ef_search replaces it …
    let mut given = DatabaseConfig::new(32).unwrap();
    given.hnsw.ef_search = Some(50);
    let given = given.stating(Fields::of([Field::EfSearch]));
    let db = Database::open(at(), Some(given), false).unwrap();
    assert_eq!(
        (db.config().recall, db.config().hnsw.ef_search),
        (None, Some(50))
    );
    db.close();
    drop(db);
    // … and a stated recall replaces that.
    let mut given = DatabaseConfig::new(32).unwrap();
    given.recall = Some(0.95);
    let given = given.stating(Fields::of([Field::Recall]));
    let db = Database::open(at(), Some(given), false).unwrap();
    assert_eq!(
        (db.config().recall, db.config().hnsw.ef_search),
        (Some(0.95), None)
    );
    db.close();
    drop(db);
    let db = Database::open(at(), None, false).unwrap();
    assert_eq!(db.config().recall, Some(0.95), "stored");
}
