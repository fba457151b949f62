//! The HNSW graph file (the graph of a seal: `segment-<id>.graph`) through the
//! database: a round trip answers identically, a graph older than the store is brought
//! up to date by content when the seal cannot be used, a damaged or foreign file is
//! rebuilt (never a wrong answer), every injected I/O fault during a seal leaves a
//! database that opens with everything acknowledged (T2), and the decoder survives
//! random damage (T4). Seeds are printed; `NUSTERDB_TEST_SEED=<u64>` replays a run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::graph_file;

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;

use nusterdb_core::db::GraphLoad;
use nusterdb_core::filter::{Filter, FilterInput};
use nusterdb_core::index::hnsw::HnswIndex;
use nusterdb_core::rng::SplitMix64;
use nusterdb_core::storage::fileio::{FaultMode, FaultyIo};
use nusterdb_core::{Database, DatabaseConfig, DistanceMetric, HnswConfig};
use nusterdb_core::{Location, Metadata, Value};
use proptest::prelude::*;

const DIM: usize = 24;

fn seed(test: &str) -> u64 {
    common::seed(test, 0x6772_6170_6800_0001)
}

fn clustered(rng: &mut SplitMix64, n: usize) -> Vec<f32> {
    let centres: Vec<f32> = (0..20 * DIM)
        .map(|_| rng.next_gaussian() as f32 * 3.0)
        .collect();
    let mut out = Vec::with_capacity(n * DIM);
    for _ in 0..n {
        let c = (rng.next_u64() % 20) as usize;
        out.extend((0..DIM).map(|t| centres[c * DIM + t] + rng.next_gaussian() as f32));
    }
    out
}

fn config(metric: DistanceMetric) -> DatabaseConfig {
    common::hnsw_config(DIM, metric, 8, 64)
}

fn open(path: &Path, metric: DistanceMetric) -> Database {
    Database::open(
        Location::Path(path.to_path_buf()),
        Some(config(metric)),
        false,
    )
    .unwrap()
}

fn reopen(path: &Path) -> Database {
    Database::open(Location::Path(path.to_path_buf()), None, false).unwrap()
}

fn meta(i: u64) -> Metadata {
    let mut m = Metadata::new();
    m.set("bucket", Value::Int((i % 10) as i64)).unwrap();
    m
}

/// Adds `n` vectors with ids `first..`, in batches of 500.
fn add(db: &Database, rng: &mut SplitMix64, first: u64, n: usize) -> HashMap<u64, Vec<f32>> {
    let data = clustered(rng, n);
    let ids: Vec<u64> = (first..first + n as u64).collect();
    for (c_ids, c_rows) in ids.chunks(500).zip(data.chunks(500 * DIM)) {
        let m = c_ids.iter().map(|&i| meta(i)).collect();
        db.bulk_add(c_ids, c_rows, Some(m)).unwrap();
    }
    ids.iter()
        .zip(data.chunks_exact(DIM))
        .map(|(&i, r)| (i, r.to_vec()))
        .collect()
}

/// Every answer a database gives to `queries`: plain, with a low ef, and filtered.
fn answers(db: &Database, queries: &[f32]) -> Vec<Vec<(u64, f32)>> {
    let f = Filter::parse(&FilterInput::Map(vec![(
        "bucket".into(),
        FilterInput::Int(3),
    )]))
    .unwrap();
    let mut out = Vec::new();
    for q in queries.chunks_exact(DIM) {
        out.push(db.search(q, 10, None, None).unwrap());
        out.push(db.search(q, 5, None, Some(12)).unwrap());
        out.push(db.search(q, 10, Some(&f), None).unwrap());
    }
    out
}

/// The `k` ids nearest to `q` among `truth`.
fn brute_force(truth: &HashMap<u64, Vec<f32>>, q: &[f32], k: usize, m: DistanceMetric) -> Vec<u64> {
    let mut all: Vec<(f32, u64)> = truth
        .iter()
        .map(|(&id, v)| (m.distance_unchecked(q, v), id))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|x| x.1).collect()
}

/// The database holds exactly `truth`, and finds each of a sample of its vectors (a
/// vector is its own nearest neighbour except under inner product, which is skipped).
fn check_contents(db: &Database, truth: &HashMap<u64, Vec<f32>>) {
    let self_nearest = db.config().distance_metric != DistanceMetric::InnerProduct;
    assert_eq!(db.count().unwrap(), truth.len());
    let mut ids: Vec<u64> = truth.keys().copied().collect();
    ids.sort_unstable();
    assert_eq!(db.list_ids().unwrap(), ids);
    let mut found = 0;
    for &id in ids.iter().step_by((ids.len() / 200).max(1)) {
        assert_eq!(db.get(id).unwrap().as_deref(), Some(&truth[&id][..]));
        let hit = db.search(&truth[&id], 1, None, Some(64)).unwrap();
        found += usize::from(hit.first().is_some_and(|h| h.0 == id || h.1 == 0.0));
    }
    let sampled = ids.iter().step_by((ids.len() / 200).max(1)).count();
    assert!(
        !self_nearest || found * 100 >= sampled * 98,
        "self-queries found {found} of {sampled}"
    );
}

#[test]
fn graph_round_trip_answers_identically() {
    let mut rng = SplitMix64::new(seed("graph_round_trip_answers_identically"));
    for metric in [
        DistanceMetric::Euclidean,
        DistanceMetric::Cosine,
        DistanceMetric::InnerProduct,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), metric);
        let mut truth = add(&db, &mut rng, 0, 3000);
        // Removals (tombstones that route searches) and reuse of some of their slots.
        let gone: Vec<u64> = (0..3000).step_by(7).collect();
        db.bulk_remove(&gone).unwrap();
        gone.iter().for_each(|id| {
            truth.remove(id);
        });
        truth.extend(add(&db, &mut rng, 10_000, 150));
        let queries = clustered(&mut rng, 60);
        let before = answers(&db, &queries);
        drop(db);
        let db = reopen(dir.path());
        assert_eq!(
            db.graph_load().unwrap(),
            GraphLoad::Loaded {
                reused: truth.len(),
                inserted: 0,
                removed: 0
            },
            "{metric:?}"
        );
        assert_eq!(
            answers(&db, &queries),
            before,
            "{metric:?}: answers changed"
        );
        check_contents(&db, &truth);
    }
}

/// A graph older than RocksDB whose seal cannot be used (its graph disagrees with its
/// id map): the open applies what the graph lacks — adds, changed vectors, removals —
/// by content.
#[test]
fn writes_after_the_last_save_are_applied() {
    let mut rng = SplitMix64::new(seed("writes_after_the_last_save_are_applied"));
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), DistanceMetric::Euclidean);
    let mut truth = add(&db, &mut rng, 0, 2000);
    db.save_graph().unwrap();
    let old_graph = std::fs::read(graph_file(dir.path())).unwrap();
    truth.extend(add(&db, &mut rng, 5000, 700));
    let removed: Vec<u64> = (0..2000).step_by(9).collect();
    db.bulk_remove(&removed).unwrap();
    removed.iter().for_each(|id| {
        truth.remove(id);
    });
    let changed = clustered(&mut rng, 50);
    for (i, v) in (1..2000u64).step_by(40).zip(changed.chunks_exact(DIM)) {
        if truth.contains_key(&i) {
            db.update(i, Some(v), None).unwrap();
            truth.insert(i, v.to_vec());
        }
    }
    drop(db);
    std::fs::write(graph_file(dir.path()), &old_graph).unwrap();
    let db = reopen(dir.path());
    match db.graph_load().unwrap() {
        GraphLoad::Loaded {
            reused,
            inserted,
            removed: gone,
        } => {
            assert_eq!(gone, removed.len());
            assert!((700..=750).contains(&inserted), "{inserted} inserted");
            assert_eq!(reused + inserted, truth.len());
        }
        other => panic!("expected a loaded graph, got {other:?}"),
    }
    check_contents(&db, &truth);
    // The brought-up-to-date graph was saved: the next open reuses all of it.
    drop(db);
    let db = reopen(dir.path());
    assert!(matches!(
        db.graph_load().unwrap(),
        GraphLoad::Loaded {
            inserted: 0,
            removed: 0,
            ..
        }
    ));
    check_contents(&db, &truth);
}

/// Damaged, truncated, foreign and future-version graph files: rebuilt, with the reason.
#[test]
fn unusable_graph_files_are_rebuilt() {
    let mut rng = SplitMix64::new(seed("unusable_graph_files_are_rebuilt"));
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), DistanceMetric::Cosine);
    let truth = add(&db, &mut rng, 0, 1500);
    let queries = clustered(&mut rng, 20);
    drop(db);
    let saved = std::fs::read(graph_file(dir.path())).unwrap();
    let other = {
        let d = tempfile::tempdir().unwrap();
        let db = Database::open(
            Location::Path(d.path().to_path_buf()),
            Some(config(DistanceMetric::Euclidean)),
            false,
        )
        .unwrap();
        add(&db, &mut rng, 0, 100);
        drop(db);
        std::fs::read(graph_file(d.path())).unwrap()
    };
    let mut future = saved.clone();
    future[8..12].copy_from_slice(&99u32.to_le_bytes());
    let mut flipped = saved.clone();
    flipped[saved.len() / 2] ^= 0x40;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("flipped byte", flipped, "checksum"),
        ("truncated", saved[..saved.len() - 1].to_vec(), ""),
        ("empty", Vec::new(), "too short"),
        ("other metric", other, "other parameters"),
        ("future version", future, "version 99"),
        (
            "random bytes",
            (0..5000).map(|i| (i * 31 % 251) as u8).collect(),
            "magic",
        ),
    ];
    for (what, bytes, reason_has) in cases {
        // Each open that rebuilds seals again, under a new name.
        std::fs::write(graph_file(dir.path()), &bytes).unwrap();
        let db = reopen(dir.path());
        match db.graph_load().unwrap() {
            GraphLoad::Rebuilt { reason } => {
                assert!(reason.contains(reason_has), "{what}: reason {reason:?}");
            }
            other => panic!("{what}: expected a rebuild, got {other:?}"),
        }
        check_contents(&db, &truth);
        // The rebuilt graph answers as well as an approximate index should: recall@10
        // against brute force.
        let hits: usize = queries
            .chunks_exact(DIM)
            .map(|q| {
                let exact = brute_force(&truth, q, 10, DistanceMetric::Cosine);
                let got = db.search(q, 10, None, Some(200)).unwrap();
                got.iter().filter(|h| exact.contains(&h.0)).count()
            })
            .sum();
        assert!(hits * 100 >= 20 * 10 * 95, "{what}: recall {hits}/200");
        drop(db);
        // The rebuilt graph was saved at once.
        let db = reopen(dir.path());
        assert!(
            matches!(db.graph_load().unwrap(), GraphLoad::Loaded { .. }),
            "{what}"
        );
    }
}

/// T2: a save (`flush`) through an I/O layer that fails its n-th operation, for every n
/// until the save completes, once and persistently. Every failure is an error; the
/// database then opens (with the real file system) holding every acknowledged write.
#[test]
fn every_fault_during_a_graph_save_leaves_a_good_database() {
    let mut rng = SplitMix64::new(seed(
        "every_fault_during_a_graph_save_leaves_a_good_database",
    ));
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), DistanceMetric::Euclidean);
    let mut truth = add(&db, &mut rng, 0, 800);
    drop(db);
    let mut cases = 0;
    for mode in [FaultMode::Once, FaultMode::Persistent] {
        for kind in [ErrorKind::StorageFull, ErrorKind::PermissionDenied] {
            let mut n = 1;
            loop {
                let io = Arc::new(FaultyIo::new(0, mode, kind));
                let db = Database::open_with_io(
                    Location::Path(dir.path().to_path_buf()),
                    None,
                    false,
                    io.clone(),
                )
                .unwrap();
                let first = 100_000 * (cases as u64 + 1);
                truth.extend(add(&db, &mut rng, first, 20));
                io.rearm(n);
                let r = db.seal();
                let failed = io.has_failed();
                // A fault after the seal's commit point (removing the previous seal's
                // files) is not an error: the next writer open sweeps what is left.
                assert!(r.is_ok() || failed, "{mode:?} {kind:?} at {n}: {r:?}");
                if let Err(e) = &r {
                    let e = e.to_string();
                    assert!(e.contains("segment-") || e.contains("IO error"), "{e}");
                }
                drop(db);
                cases += 1;
                let db = reopen(dir.path());
                assert!(
                    matches!(db.graph_load().unwrap(), GraphLoad::Loaded { .. }),
                    "{mode:?} {kind:?} at {n}: {:?}",
                    db.graph_load()
                );
                check_contents(&db, &truth);
                drop(db);
                if !failed {
                    break;
                }
                n += 1;
                assert!(n < 10_000, "the save never completed");
            }
        }
    }
    eprintln!("fault injection: {cases} graph saves, every fault an error, 0 lost");
    assert!(cases > 20);
}

/// T2 for snapshots: `snapshot` and `restore_snapshot` through an I/O layer that fails
/// its n-th operation, for every n until each completes, once and persistently. Every
/// failure is an error and leaves nothing half made (no snapshot listed, no directory
/// left; no restored directory); the database answers as before; the snapshot that
/// completes restores to a database that loads its graph and answers the same.
#[test]
fn every_fault_during_a_snapshot_or_restore_leaves_nothing_half_made() {
    let mut rng = SplitMix64::new(seed(
        "every_fault_during_a_snapshot_or_restore_leaves_nothing_half_made",
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = open(&path, DistanceMetric::Euclidean);
    let truth = add(&db, &mut rng, 0, 600);
    drop(db);
    let queries = clustered(&mut rng, 10);
    let mut cases = 0;
    for mode in [FaultMode::Once, FaultMode::Persistent] {
        for kind in [ErrorKind::StorageFull, ErrorKind::PermissionDenied] {
            let io = Arc::new(FaultyIo::new(0, mode, kind));
            let db = Database::open_with_io(Location::Path(path.clone()), None, false, io.clone())
                .unwrap();
            let before = answers(&db, &queries);
            let what = format!("{mode:?} {kind:?}");
            // Snapshots, failing at n = 1, 2, ... until one completes.
            let mut n = 1;
            let done = loop {
                let name = format!("s-{cases}");
                io.rearm(n);
                let r = db.snapshot(&name, &Metadata::new());
                let failed = io.has_failed();
                io.rearm(0);
                cases += 1;
                assert_eq!(r.is_err(), failed, "{what} at {n}: {r:?}");
                let root = path.join("snapshots");
                let listed = db.list_snapshots().unwrap();
                if failed {
                    assert!(listed.iter().all(|s| s.name != name), "{what} at {n}");
                    assert!(!root.join(&name).exists(), "{what} at {n}");
                }
                // Nothing but complete snapshots: no staging directory left behind.
                let mut present: Vec<String> = std::fs::read_dir(&root)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                present.sort();
                let mut names: Vec<String> = listed.iter().map(|s| s.name.clone()).collect();
                names.sort();
                assert_eq!(present, names, "{what} at {n}");
                if !failed {
                    assert!(listed.iter().any(|s| s.name == name), "{what} at {n}");
                }
                assert_eq!(answers(&db, &queries), before, "{what} at {n}");
                if !failed {
                    break name;
                }
                n += 1;
                assert!(n < 10_000, "the snapshot never completed");
            };
            // Restores of the completed snapshot, failing the same way.
            let mut n = 1;
            loop {
                let target = dir.path().join(format!("restored-{cases}"));
                io.rearm(n);
                let r = db.restore_snapshot(&done, &target);
                let failed = io.has_failed();
                io.rearm(0);
                cases += 1;
                assert_eq!(r.is_err(), failed, "{what} at {n}: {r:?}");
                // No staging directory beside the target, failed or not.
                let staged = std::fs::read_dir(dir.path())
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|f| f.contains(".restoring-"))
                    .collect::<Vec<_>>();
                assert!(staged.is_empty(), "{what} at {n}: {staged:?}");
                if failed {
                    assert!(!target.exists(), "{what} at {n}");
                    n += 1;
                    assert!(n < 10_000, "the restore never completed");
                    continue;
                }
                let restored = reopen(&target);
                assert!(
                    matches!(restored.graph_load().unwrap(), GraphLoad::Loaded { .. }),
                    "{what}: {:?}",
                    restored.graph_load()
                );
                assert_eq!(answers(&restored, &queries), before, "{what}");
                check_contents(&restored, &truth);
                break;
            }
        }
    }
    eprintln!(
        "fault injection: {cases} snapshots and restores, every fault an error, nothing half made"
    );
    assert!(cases > 40);
}

/// Segment files that cannot be read at all (an I/O error, not damage): every record
/// is loaded and the graph rebuilt.
#[test]
fn a_failing_read_of_the_graph_file_rebuilds() {
    let mut rng = SplitMix64::new(seed("a_failing_read_of_the_graph_file_rebuilds"));
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), DistanceMetric::Euclidean);
    let truth = add(&db, &mut rng, 0, 300);
    drop(db);
    let io = Arc::new(FaultyIo::new(
        1,
        FaultMode::Persistent,
        ErrorKind::PermissionDenied,
    ));
    let db =
        Database::open_with_io(Location::Path(dir.path().to_path_buf()), None, false, io).unwrap();
    assert!(matches!(
        db.graph_load().unwrap(),
        GraphLoad::Rebuilt { .. }
    ));
    check_contents(&db, &truth);
}

/// Snapshots carry the graph: a restored snapshot opens without a rebuild.
#[test]
fn snapshots_carry_the_graph() {
    let mut rng = SplitMix64::new(seed("snapshots_carry_the_graph"));
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), DistanceMetric::Euclidean);
    let truth = add(&db, &mut rng, 0, 1000);
    let queries = clustered(&mut rng, 20);
    let before = answers(&db, &queries);
    db.snapshot("s1", &Metadata::new()).unwrap();
    add(&db, &mut rng, 50_000, 100);
    let target = dir.path().join("restored");
    db.restore_snapshot("s1", &target).unwrap();
    drop(db);
    let r = reopen(&target);
    assert_eq!(
        r.graph_load().unwrap(),
        GraphLoad::Loaded {
            reused: 1000,
            inserted: 0,
            removed: 0
        }
    );
    assert_eq!(answers(&r, &queries), before);
    check_contents(&r, &truth);
}

/// A small saved graph, for the decoder property test.
fn small_graph_file() -> (Vec<u8>, HnswConfig) {
    let mut rng = SplitMix64::new(7);
    let cfg = HnswConfig {
        max_nb_connection: 4,
        ef_construction: 16,
        ..HnswConfig::default()
    };
    let mut h = HnswIndex::new(4, DistanceMetric::Euclidean, &cfg);
    let rows: Vec<f32> = (0..4 * 40).map(|_| rng.next_gaussian() as f32).collect();
    let items: Vec<(u32, &[f32])> = rows
        .chunks_exact(4)
        .enumerate()
        .map(|(i, r)| (i as u32, r))
        .collect();
    h.build_parallel(&items);
    nusterdb_core::index::VectorIndex::remove(&mut h, 3);
    let mut out = Vec::new();
    h.write_graph(&mut out, &|s| Some(u64::from(s) * 11), 40)
        .unwrap();
    (out, cfg)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("NUSTERDB_DECODER_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000),
        ..ProptestConfig::default()
    })]

    /// T4: the graph decoder on damaged files — flips, truncation, overwritten runs,
    /// with and without a fixed-up CRC (so the structural checks are reached) —
    /// returns an image or an error, never panics; an accepted image passes its own
    /// invariants (every neighbour in range, searchable).
    #[test]
    fn graph_decoder_survives_damage(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
        fix_crc in any::<bool>(),
    ) {
        static FILE: std::sync::OnceLock<(Vec<u8>, HnswConfig)> = std::sync::OnceLock::new();
        let (file, cfg) = FILE.get_or_init(small_graph_file);
        let mut b = file.clone();
        for (at, x) in &flips {
            let i = at.index(b.len());
            b[i] ^= x;
        }
        if let Some(c) = cut {
            b.truncate(c.index(b.len()));
        }
        if fix_crc && b.len() >= 4 {
            let n = b.len() - 4;
            let crc = crc32fast::hash(&b[..n]);
            b[n..].copy_from_slice(&crc.to_le_bytes());
        }
        if let Ok(img) = HnswIndex::read_graph(&b, 4, DistanceMetric::Euclidean, cfg, nusterdb_core::config::Quantization::Sq8) {
            prop_assert_eq!(img.ids.len(), img.hashes.len());
            // Live rows are not restored (zeros), but the structure must be walkable.
            let _ = nusterdb_core::index::VectorIndex::search(
                &img.index, &[0.1, 0.2, 0.3, 0.4], 5, None, &Default::default());
        }
    }
}
