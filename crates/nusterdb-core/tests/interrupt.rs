//! Long work watched by an `Observer`: progress is reported in order, and a stop —
//! what Ctrl-C becomes in the bindings — leaves the database exactly as before the
//! call: a stopped bulk write stores nothing (and the same write then succeeds), a
//! stopped open writes nothing, a stopped batch search returns no results.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use nusterdb_core::db::{segment_files_in, Include, PutMode};
use nusterdb_core::progress::{Observer, Phase};
use nusterdb_core::rng::SplitMix64;
use nusterdb_core::{Database, DatabaseConfig, Error, Id, IdType, IndexType, Location};

const DIM: usize = 16;

/// Records every step; stops at the `stop_at`-th call (1-based; 0: never).
struct Watch {
    stop_at: u64,
    calls: AtomicU64,
    seen: Mutex<Vec<(Phase, u64, u64)>>,
}

impl Watch {
    fn stopping_at(stop_at: u64) -> Self {
        Self {
            stop_at,
            calls: AtomicU64::new(0),
            seen: Mutex::new(Vec::new()),
        }
    }
}

impl Observer for Watch {
    fn step(&self, phase: Phase, done: u64, total: u64) -> bool {
        self.seen.lock().unwrap().push((phase, done, total));
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        self.stop_at == 0 || n < self.stop_at
    }
}

fn rows(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..n * DIM).map(|_| rng.next_gaussian() as f32).collect()
}

fn config(index: IndexType, ids: IdType) -> DatabaseConfig {
    let mut c = DatabaseConfig::new(DIM).unwrap();
    c.index_type = index;
    c.id_type = ids;
    c.hnsw.max_nb_connection = 8;
    c.hnsw.ef_construction = 64;
    c
}

fn id(ids: IdType, i: usize) -> Id {
    match ids {
        IdType::Int => Id::Int(i as u64),
        IdType::Str => Id::from(format!("r{i}")),
    }
}

/// recall@10 of the database's answers against brute force over `data`.
fn recall(db: &Database, data: &[f32], ids: IdType) -> f64 {
    let n = data.len() / DIM;
    let mut hit = 0usize;
    let queries = 40;
    for qi in 0..queries {
        let q = &data[(qi * 37 % n) * DIM..(qi * 37 % n + 1) * DIM];
        let mut all: Vec<(f32, usize)> = (0..n)
            .map(|i| {
                let r = &data[i * DIM..(i + 1) * DIM];
                let d: f32 = r.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum();
                (d, i)
            })
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        let want: Vec<Id> = all[..10].iter().map(|x| id(ids, x.1)).collect();
        let got = db
            .search_records(q, 10, None, Some(64), Include::NOTHING)
            .unwrap();
        hit += got.iter().filter(|h| want.contains(&h.0.id)).count();
    }
    hit as f64 / (queries * 10) as f64
}

#[test]
fn a_stopped_bulk_write_stores_nothing_and_can_be_repeated() {
    for index in [IndexType::Hnsw, IndexType::Flat] {
        for ids in [IdType::Int, IdType::Str] {
            for stop_at in [1, 3, 1_000_000] {
                let dir = tempfile::tempdir().unwrap();
                let loc = Location::Path(dir.path().to_path_buf());
                let db = Database::open(loc.clone(), Some(config(index, ids)), false).unwrap();
                let old = rows(1500, 1);
                let old_ids: Vec<Id> = (0..1500).map(|i| id(ids, i)).collect();
                db.put(PutMode::Add, &old_ids, &old, Vec::new(), Vec::new())
                    .unwrap();
                let new = rows(4000, 2);
                let new_ids: Vec<Id> = (1500..5500).map(|i| id(ids, i)).collect();
                let docs = (0..4000).map(|i| Some(format!("d{i}"))).collect();
                // Stop at the 1st or 3rd step, or (a huge count) at the last one, by
                // refusing the last step below.
                let watch = Watch::stopping_at(stop_at);
                let last = LastStep(&watch);
                let observer: &dyn Observer = if stop_at > 1000 { &last } else { &watch };
                let r = db.put_observed(PutMode::Add, &new_ids, &new, Vec::new(), docs, observer);
                assert!(matches!(r, Err(Error::Interrupted(_))), "{r:?}");
                assert_eq!(db.count().unwrap(), 1500);
                assert!(!db.contains_id(&new_ids[0]).unwrap());
                assert_eq!(db.get_document(&new_ids[1]).unwrap(), None);
                let hits = db
                    .search_records(&new[..DIM], 5, None, None, Include::NOTHING)
                    .unwrap();
                assert!(hits.iter().all(|h| old_ids.contains(&h.0.id)));
                // The same write now goes through, and the graph is still good.
                db.put(PutMode::Add, &new_ids, &new, Vec::new(), Vec::new())
                    .unwrap();
                let all: Vec<f32> = old.iter().chain(&new).copied().collect();
                let r = recall(&db, &all, ids);
                assert!(r >= 0.9, "{index:?} {ids:?} stop {stop_at}: recall {r}");
                drop(db);
                let db = Database::open(loc, None, false).unwrap();
                assert_eq!(db.count().unwrap(), 5500);
                let r2 = recall(&db, &all, ids);
                assert!(r2 >= 0.9, "after reopen: recall {r2}");
            }
        }
    }
}

/// Goes on until the work is complete, then refuses: the stop comes at the last step.
struct LastStep<'a>(&'a Watch);

impl Observer for LastStep<'_> {
    fn step(&self, phase: Phase, done: u64, total: u64) -> bool {
        self.0.step(phase, done, total);
        done < total
    }
}

#[test]
fn progress_is_reported_in_order_up_to_the_total() {
    let db = Database::open(
        Location::Memory,
        Some(config(IndexType::Hnsw, IdType::Int)),
        false,
    )
    .unwrap();
    let data = rows(3000, 3);
    let ids: Vec<Id> = (0..3000).map(|i| Id::Int(i as u64)).collect();
    let watch = Watch::stopping_at(0);
    db.put_observed(PutMode::Add, &ids, &data, Vec::new(), Vec::new(), &watch)
        .unwrap();
    let seen = watch.seen.lock().unwrap().clone();
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(seen.iter().all(|s| s.0 == Phase::Indexing && s.2 == 3000));
    assert!(seen.windows(2).all(|w| w[0].1 < w[1].1));
    assert_eq!(seen.last().unwrap().1, 3000);
    assert_eq!(db.count().unwrap(), 3000);
}

#[test]
fn a_stopped_open_writes_nothing_and_a_stopped_batch_search_returns_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let loc = Location::Path(dir.path().to_path_buf());
    let data = rows(20_000, 4);
    {
        let db = Database::open(
            loc.clone(),
            Some(config(IndexType::Hnsw, IdType::Int)),
            false,
        )
        .unwrap();
        let ids: Vec<u64> = (0..20_000).collect();
        db.bulk_add(&ids, &data, None).unwrap();
    }
    // Without the segment files the open reads and links everything: stop it there.
    for f in segment_files_in(dir.path()).unwrap() {
        std::fs::remove_file(f).unwrap();
    }
    let before = listing(dir.path());
    for stop_at in [1, 2, 4] {
        let watch = Watch::stopping_at(stop_at);
        let r = Database::open_observed(loc.clone(), None, false, &watch);
        assert!(
            matches!(r, Err(Error::Interrupted(_))),
            "{:?}",
            r.map(|_| ())
        );
        let phases: Vec<Phase> = watch.seen.lock().unwrap().iter().map(|s| s.0).collect();
        assert!(phases.contains(&Phase::Loading), "{phases:?}");
        assert_eq!(
            listing(dir.path()),
            before,
            "a stopped open changed the files"
        );
    }
    let watch = Watch::stopping_at(0);
    let db = Database::open_observed(loc, None, false, &watch).unwrap();
    assert_eq!(db.count().unwrap(), 20_000);
    let phases: Vec<Phase> = watch.seen.lock().unwrap().iter().map(|s| s.0).collect();
    assert!(phases.contains(&Phase::Loading) && phases.contains(&Phase::Indexing));
    let queries = &data[..2000 * DIM];
    let watch = Watch::stopping_at(1);
    let r = db.batch_search_observed(queries, 5, None, None, &watch);
    assert!(matches!(r, Err(Error::Interrupted(_))));
    // Unstopped, the batch (searched in pieces) answers every query as a single search.
    let all = db.batch_search(queries, 5, None, Some(100)).unwrap();
    assert_eq!(all.len(), 2000);
    for (q, got) in queries.chunks_exact(DIM).zip(&all) {
        assert_eq!(got, &db.search(q, 5, None, Some(100)).unwrap());
    }
}

/// File names and sizes under `dir` (RocksDB's info log aside, which any open writes).
fn listing(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_name().to_string_lossy().starts_with("LOG"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    out.sort();
    out
}

/// While a bulk write links its rows into an HNSW graph, reads and searches on other
/// threads go on — the observer below waits up to 20 s for one to finish, and stops
/// the write if it does not — and see the write not at all: the old count, no new id,
/// no new row among the hits of a query equal to a new row. Afterwards they see it all.
#[test]
fn searches_go_on_during_a_bulk_writes_linking_and_never_see_it_half_done() {
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    type Seen = (usize, bool, bool);
    struct Probe {
        db: Arc<Database>,
        ids: IdType,
        query: Vec<f32>,
        old_n: usize,
        seen: Mutex<Vec<Option<Seen>>>,
    }
    impl Observer for Probe {
        fn step(&self, _: Phase, done: u64, total: u64) -> bool {
            if done == total && !self.seen.lock().unwrap().is_empty() {
                return true;
            }
            let (tx, rx) = mpsc::channel();
            let (db, ids, q, old_n) = (
                Arc::clone(&self.db),
                self.ids,
                self.query.clone(),
                self.old_n,
            );
            std::thread::spawn(move || {
                let hits = db.search_records(&q, 10, None, Some(64), Include::NOTHING);
                let old = |x: &Id| (0..old_n).any(|i| id(ids, i) == *x);
                let hits = hits.unwrap();
                let seen = (
                    db.count().unwrap(),
                    db.contains_id(&id(ids, old_n)).unwrap(),
                    hits.iter().any(|h| !old(&h.0.id)) || hits.len() != 10,
                );
                let _ = tx.send(seen);
            });
            let seen = rx.recv_timeout(Duration::from_secs(20)).ok();
            self.seen.lock().unwrap().push(seen);
            // A search that waited for the write: stop the write, so the test fails
            // instead of hanging.
            seen.is_some()
        }
    }

    for ids in [IdType::Int, IdType::Str] {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::Path(dir.path().to_path_buf());
        let db = Database::open(loc.clone(), Some(config(IndexType::Hnsw, ids)), false).unwrap();
        let db = Arc::new(db);
        let old = rows(1000, 5);
        let old_ids: Vec<Id> = (0..1000).map(|i| id(ids, i)).collect();
        db.put(PutMode::Add, &old_ids, &old, Vec::new(), Vec::new())
            .unwrap();
        let new = rows(3000, 6);
        let new_ids: Vec<Id> = (1000..4000).map(|i| id(ids, i)).collect();
        let probe = Probe {
            db: Arc::clone(&db),
            ids,
            query: new[..DIM].to_vec(),
            old_n: 1000,
            seen: Mutex::new(Vec::new()),
        };
        let r = db.put_observed(PutMode::Add, &new_ids, &new, Vec::new(), Vec::new(), &probe);
        let seen = probe.seen.lock().unwrap().clone();
        assert!(!seen.is_empty());
        assert!(
            seen.iter().all(Option::is_some),
            "a search waited for the write's linking"
        );
        assert!(
            seen.iter().flatten().all(|&s| s == (1000, false, false)),
            "saw the write half done: {seen:?}"
        );
        r.unwrap();
        assert_eq!(db.count().unwrap(), 4000);
        let hit = db
            .search_records(&new[..DIM], 1, None, Some(64), Include::NOTHING)
            .unwrap();
        assert_eq!(hit[0].0.id, new_ids[0]);
        let all: Vec<f32> = old.iter().chain(&new).copied().collect();
        assert!(recall(&db, &all, ids) >= 0.9);
        drop(probe);
        let db = Arc::try_unwrap(db).ok().unwrap();
        drop(db);
        let db = Database::open(loc, None, false).unwrap();
        assert_eq!(db.count().unwrap(), 4000);
        assert!(recall(&db, &all, ids) >= 0.9);
    }
}

/// Searches on other threads while batches are removed (the graph repaired under the
/// upgradable read): none fails, each returns k hits, and none returns a row whose
/// removal had returned before the search began.
#[test]
fn searches_during_removals_never_return_a_removed_row() {
    use std::sync::atomic::AtomicUsize;
    let db = Database::open(
        Location::Memory,
        Some(config(IndexType::Hnsw, IdType::Int)),
        false,
    )
    .unwrap();
    let n = 6000;
    let data = rows(n, 41);
    let ids: Vec<u64> = (0..n as u64).collect();
    db.bulk_add(&ids, &data, None).unwrap();
    // Batches of 300 ids, interleaved over the whole set; `done` counts batches whose
    // removal returned.
    let batches: Vec<Vec<u64>> = (0..10u64)
        .map(|b| (0..n as u64).filter(|i| i % 20 == b).collect())
        .collect();
    let done = AtomicUsize::new(0);
    let finished = std::sync::atomic::AtomicBool::new(false);
    let searched = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (db, data, done, finished, searched) = (&db, &data, &done, &finished, &searched);
            s.spawn(move || {
                let mut q = t as usize;
                while !finished.load(Ordering::Acquire) {
                    let before = done.load(Ordering::Acquire);
                    let row = &data[(q % n) * DIM..(q % n + 1) * DIM];
                    let hits = db.search(row, 10, None, Some(64)).unwrap();
                    assert_eq!(hits.len(), 10);
                    for (id, _) in &hits {
                        let b = (*id % 20) as usize;
                        assert!(
                            b >= 10 || b >= before,
                            "id {id} of batch {b} returned after {before} batches were removed"
                        );
                    }
                    searched.fetch_add(1, Ordering::Relaxed);
                    q += 7;
                }
            });
        }
        for b in &batches {
            assert_eq!(db.bulk_remove(b).unwrap(), b.len());
            done.fetch_add(1, Ordering::Release);
        }
        finished.store(true, Ordering::Release);
    });
    assert_eq!(db.count().unwrap(), n - 3000);
    assert!(searched.load(Ordering::Relaxed) > 0);
    // The repaired graph finds what is left.
    let left: Vec<usize> = (0..n).filter(|i| i % 20 >= 10).collect();
    let found = left
        .iter()
        .step_by(10)
        .filter(|&&i| {
            let hits = db
                .search(&data[i * DIM..(i + 1) * DIM], 1, None, Some(64))
                .unwrap();
            hits[0].0 == i as u64
        })
        .count();
    assert!(
        found * 100 >= left.len() / 10 * 98,
        "{found} of {}",
        left.len() / 10
    );
}

/// Searches on other threads while stored rows get new vectors (`upsert`: the new vector
/// staged and linked in a new slot, the old node retired and repaired): none fails, each
/// returns k hits, and every hit's distance is that of the row's vector before or after
/// its batch — only after once the batch returned.
#[test]
fn searches_during_upserts_see_each_row_before_or_after_never_between() {
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    let db = Database::open(
        Location::Memory,
        Some(config(IndexType::Hnsw, IdType::Int)),
        false,
    )
    .unwrap();
    let n = 4000;
    let old = rows(n, 43);
    let new = rows(n, 44);
    let ids: Vec<u64> = (0..n as u64).collect();
    db.bulk_add(&ids, &old, None).unwrap();
    let l2 = |a: &[f32], b: &[f32]| -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt()
    };
    let batches: Vec<Vec<u64>> = (0..8u64)
        .map(|b| (0..n as u64).filter(|i| i % 8 == b).collect())
        .collect();
    let done = AtomicUsize::new(0);
    let finished = AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..2usize {
            let (db, old, new, done, finished) = (&db, &old, &new, &done, &finished);
            s.spawn(move || {
                let mut q = t;
                while !finished.load(Ordering::Acquire) {
                    let before = done.load(Ordering::Acquire);
                    let query = &old[(q % n) * DIM..(q % n + 1) * DIM];
                    let hits = db.search(query, 10, None, Some(64)).unwrap();
                    assert_eq!(hits.len(), 10);
                    for &(id, d) in &hits {
                        let i = id as usize;
                        let d_new = l2(query, &new[i * DIM..(i + 1) * DIM]);
                        let d_old = l2(query, &old[i * DIM..(i + 1) * DIM]);
                        let near = |x: f32| (d - x).abs() <= 1e-3 * (1.0 + x);
                        let replaced = (i % 8) < before;
                        assert!(
                            near(d_new) || (!replaced && near(d_old)),
                            "id {id} at {d}: old {d_old}, new {d_new}, batch replaced {replaced}"
                        );
                    }
                    q += 5;
                }
            });
        }
        for b in &batches {
            let flat: Vec<f32> = b
                .iter()
                .flat_map(|&i| {
                    new[i as usize * DIM..(i as usize + 1) * DIM]
                        .iter()
                        .copied()
                })
                .collect();
            let ids: Vec<nusterdb_core::Id> =
                b.iter().map(|&i| nusterdb_core::Id::Int(i)).collect();
            db.put(PutMode::Upsert, &ids, &flat, Vec::new(), Vec::new())
                .unwrap();
            done.fetch_add(1, Ordering::Release);
        }
        finished.store(true, Ordering::Release);
    });
    assert_eq!(db.count().unwrap(), n);
    for i in (0..n).step_by(97) {
        assert_eq!(
            db.get(i as u64).unwrap().unwrap(),
            new[i * DIM..(i + 1) * DIM]
        );
    }
    // The graph after the moves finds the new vectors.
    let found = (0..n)
        .step_by(10)
        .filter(|&i| {
            let hits = db
                .search(&new[i * DIM..(i + 1) * DIM], 1, None, Some(64))
                .unwrap();
            hits[0].0 == i as u64
        })
        .count();
    assert!(found * 100 >= (n / 10) * 98, "{found} of {}", n / 10);
}
