//! The reopen rule (see `DatabaseConfig::reopened_with`): a reopen checks the
//! structural fields it states, applies the runtime knobs it states (reported by
//! `Database::config`, observable in the engine, and stored for the next open), and
//! leaves every field it does not state — `sync_writes` above all — as stored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::graph_file;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use nusterdb_core::config::{Field, Fields, MAX_EF};
use nusterdb_core::rng::SplitMix64;
use nusterdb_core::storage::codec::encode_config;
use nusterdb_core::storage::keys::CONFIG_KEY;
use nusterdb_core::{
    Compression, Database, DatabaseConfig, DistanceMetric, Error, IndexType, Location,
};
use rocksdb::statistics::Ticker;

const DIM: usize = 8;

fn at(p: &Path) -> Location {
    Location::Path(p.to_path_buf())
}

fn open(p: &Path, given: Option<DatabaseConfig>) -> Database {
    Database::open(at(p), given, false).unwrap()
}

/// A config stating only `fields` (the values come from `c`).
fn stating(c: DatabaseConfig, fields: &[Field]) -> DatabaseConfig {
    c.stating(Fields::of(fields.iter().copied()))
}

fn hnsw_base() -> DatabaseConfig {
    let mut c = DatabaseConfig::simple(DIM, true).unwrap();
    c.hnsw.max_nb_connection = 8;
    c.hnsw.ef_construction = 40;
    c
}

fn add_some(db: &Database, from: u64, n: u64) {
    let mut rng = SplitMix64::new(from + 1);
    let dim = db.config().dim;
    for id in from..from + n {
        let v: Vec<f32> = (0..dim).map(|_| rng.next_gaussian() as f32).collect();
        db.add(id, &v, None).unwrap();
    }
}

/// WAL syncs counted by the engine while `n` vectors are added.
fn wal_syncs_for_writes(db: &Database, n: u64) -> u64 {
    let before = db.ticker(Ticker::WalFileSynced).unwrap();
    add_some(db, 1_000_000 + db.count().unwrap() as u64, n);
    db.ticker(Ticker::WalFileSynced).unwrap() - before
}

/// The text of the newest OPTIONS file RocksDB wrote in `dir` (its record of the
/// options the engine was opened with).
fn newest_options(dir: &Path) -> String {
    let mut files: Vec<(u64, String)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| Some((n.strip_prefix("OPTIONS-")?.parse().ok()?, n)))
        .collect();
    files.sort();
    std::fs::read_to_string(dir.join(&files.last().unwrap().1)).unwrap()
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l.trim() == line)
}

#[test]
fn a_reopen_stating_no_storage_keeps_sync_writes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db");
    let mut c = DatabaseConfig::new(DIM).unwrap();
    c.storage.sync_writes = true;
    drop(open(&p, Some(c)));

    // `NusterDB(path, dim=8)`: states the dimension only.
    let dim_only = stating(DatabaseConfig::new(DIM).unwrap(), &[Field::Dim]);
    let db = open(&p, Some(dim_only));
    assert!(db.config().storage.sync_writes);
    let synced = wal_syncs_for_writes(&db, 50);
    assert!(synced >= 50, "{synced} WAL syncs for 50 writes");
    drop(db);

    // Lowered only when stated, then stored: a plain open keeps it lowered.
    let mut off = DatabaseConfig::new(DIM).unwrap();
    off.storage.sync_writes = false;
    let db = open(&p, Some(stating(off, &[Field::SyncWrites])));
    assert!(!db.config().storage.sync_writes);
    let synced = wal_syncs_for_writes(&db, 50);
    assert!(
        synced < 5,
        "{synced} WAL syncs for 50 writes without sync_writes"
    );
    drop(db);
    let db = open(&p, None);
    assert!(!db.config().storage.sync_writes);
    assert!(wal_syncs_for_writes(&db, 50) < 5);
}

#[test]
fn storage_knobs_given_at_reopen_reach_the_engine_and_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db");
    drop(open(&p, Some(DatabaseConfig::new(DIM).unwrap())));
    let mut g = DatabaseConfig::new(DIM).unwrap();
    g.storage.cache_size_mb = 17;
    g.storage.write_buffer_size_mb = 5;
    g.storage.max_write_buffer_number = 7;
    g.storage.compression = Compression::Zstd;
    g.storage.max_background_jobs = 3;
    g.storage.enable_bloom_filter = false;
    g.storage.enable_statistics = false;
    let stated = [
        Field::CacheSizeMb,
        Field::WriteBufferSizeMb,
        Field::MaxWriteBufferNumber,
        Field::Compression,
        Field::MaxBackgroundJobs,
        Field::EnableBloomFilter,
        Field::EnableStatistics,
    ];
    for reopen in [Some(stating(g.clone(), &stated)), None] {
        let db = open(&p, reopen);
        let s = &db.config().storage;
        assert_eq!(
            (
                s.cache_size_mb,
                s.write_buffer_size_mb,
                s.max_write_buffer_number
            ),
            (17, 5, 7)
        );
        assert_eq!(s.compression, Compression::Zstd);
        assert_eq!(s.max_background_jobs, 3);
        assert!(!s.enable_bloom_filter && !s.enable_statistics);
        assert_eq!(
            db.engine_property("rocksdb.block-cache-capacity").unwrap(),
            Some(17 << 20)
        );
        assert_eq!(db.stats().unwrap().engine_statistics, None);
        let text = newest_options(&p);
        assert!(has_line(&text, "write_buffer_size=5242880"), "{text}");
        assert!(has_line(&text, "max_write_buffer_number=7"));
        assert!(has_line(&text, "compression=kZSTD"));
        assert!(has_line(&text, "max_background_jobs=3"));
        assert!(!text.contains("bloomfilter"));
        drop(db);
    }
    // Bloom bits: stated alone, the rest stays.
    let mut b = DatabaseConfig::new(DIM).unwrap();
    b.storage.bloom_filter_bits_per_key = 13;
    b.storage.enable_bloom_filter = true;
    let db = open(
        &p,
        Some(stating(
            b,
            &[Field::BloomFilterBitsPerKey, Field::EnableBloomFilter],
        )),
    );
    assert_eq!(db.config().storage.bloom_filter_bits_per_key, 13);
    assert_eq!(db.config().storage.cache_size_mb, 17);
    assert!(newest_options(&p).contains("bloomfilter"));
}

/// Recall@10 of `db` against brute force over `base`, with the search's default ef.
fn recall(db: &Database, base: &[Vec<f32>], queries: &[Vec<f32>]) -> f64 {
    let mut hits = 0usize;
    for q in queries {
        let mut exact: Vec<(usize, f32)> = base
            .iter()
            .enumerate()
            .map(|(i, v)| (i, v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum()))
            .collect();
        exact.sort_by(|a, b| a.1.total_cmp(&b.1));
        let truth: HashSet<u64> = exact[..10].iter().map(|e| e.0 as u64).collect();
        hits += db
            .search(q, 10, None, None)
            .unwrap()
            .iter()
            .filter(|h| truth.contains(&h.0))
            .count();
    }
    hits as f64 / (10 * queries.len()) as f64
}

#[test]
fn hnsw_knobs_given_at_reopen_are_used_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db");
    let dim = 24;
    let mut c = DatabaseConfig::simple(dim, true).unwrap();
    c.hnsw.max_nb_connection = 4;
    c.hnsw.ef_construction = 8;
    let mut rng = SplitMix64::new(7);
    let mut gen = |n: usize| -> Vec<Vec<f32>> {
        (0..n)
            .map(|_| (0..dim).map(|_| rng.next_gaussian() as f32).collect())
            .collect()
    };
    let base = gen(3000);
    let queries = gen(100);
    let db = open(&p, Some(c.clone()));
    let ids: Vec<u64> = (0..base.len() as u64).collect();
    db.bulk_add(&ids, &base.concat(), None).unwrap();
    drop(db);

    let with = |ef: usize| {
        let mut g = c.clone();
        g.hnsw.ef_search = Some(ef);
        stating(g, &[Field::EfSearch])
    };
    let db = open(&p, Some(with(1)));
    assert_eq!(db.config().hnsw.ef_search, Some(1));
    let low = recall(&db, &base, &queries);
    drop(db);
    let db = open(&p, Some(with(400)));
    assert_eq!(db.config().hnsw.ef_search, Some(400));
    let high = recall(&db, &base, &queries);
    drop(db);
    eprintln!("recall@10: ef_search 1 -> {low:.3}, 400 -> {high:.3}");
    // A weak graph (M 4, ef_construction 8) that a wide beam still searches well.
    assert!(high >= 0.85, "{high}");
    assert!(
        low + 0.1 <= high,
        "ef_search had no effect: {low} vs {high}"
    );
    // Stored: a plain open searches with 400 too.
    let db = open(&p, None);
    assert_eq!(db.config().hnsw.ef_search, Some(400));
    assert_eq!(recall(&db, &base, &queries), high);
    drop(db);

    // ef_construction and use_heuristic: the graph saved after more inserts records
    // the values the index now builds with (header bytes 17 and 24..28).
    let mut g = c.clone();
    g.hnsw.ef_construction = 77;
    g.hnsw.use_heuristic = false;
    g.hnsw.max_nb_elements = 5000;
    let db = open(
        &p,
        Some(stating(
            g,
            &[
                Field::EfConstruction,
                Field::UseHeuristic,
                Field::MaxNbElements,
            ],
        )),
    );
    let h = &db.config().hnsw;
    assert_eq!(
        (h.ef_construction, h.use_heuristic, h.max_nb_elements),
        (77, false, 5000)
    );
    assert_eq!(h.ef_search, Some(400));
    assert_eq!(h.max_nb_connection, 4);
    // Loaded, not rebuilt: these knobs do not make the saved graph unusable.
    assert!(matches!(
        db.graph_load().unwrap(),
        nusterdb_core::db::GraphLoad::Loaded { .. }
    ));
    add_some(&db, 10_000, 5);
    db.save_graph().unwrap();
    let bytes = std::fs::read(graph_file(&p)).unwrap();
    assert_eq!(bytes[17], 0, "use_heuristic in the graph header");
    assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), 77);
    drop(db);
    let db = open(&p, None);
    assert_eq!(db.config().hnsw.ef_construction, 77);
    assert!(!db.config().hnsw.use_heuristic);
}

#[test]
fn auto_snapshot_given_at_reopen_runs() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db");
    drop(open(&p, Some(DatabaseConfig::new(DIM).unwrap())));
    let mut g = DatabaseConfig::new(DIM).unwrap();
    g.auto_snapshot = true;
    g.snapshot_interval_secs = 1;
    let db = open(
        &p,
        Some(stating(
            g,
            &[Field::AutoSnapshot, Field::SnapshotIntervalSecs],
        )),
    );
    assert!(db.config().auto_snapshot);
    assert_eq!(db.config().snapshot_interval_secs, 1);
    // Waits for the thread's first snapshot (a generous bound on a busy machine).
    let start = Instant::now();
    while db.list_snapshots().unwrap().is_empty() && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!db.list_snapshots().unwrap().is_empty(), "no auto snapshot");
}

#[test]
fn structural_mismatches_name_the_stated_field_only() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db");
    drop(open(&p, Some(hnsw_base())));
    let cases: Vec<(Field, DatabaseConfig)> = vec![
        (Field::Dim, {
            let mut g = DatabaseConfig::new(DIM + 1).unwrap();
            g.index_type = IndexType::Hnsw;
            g
        }),
        (Field::IndexType, DatabaseConfig::new(DIM).unwrap()),
        (Field::DistanceMetric, {
            let mut g = hnsw_base();
            g.distance_metric = DistanceMetric::Cosine;
            g
        }),
        (Field::MaxNbConnection, {
            let mut g = hnsw_base();
            g.hnsw.max_nb_connection = 16;
            g
        }),
        (Field::MaxLayer, {
            let mut g = hnsw_base();
            g.hnsw.max_layer = 5;
            g
        }),
    ];
    for (field, mut given) in cases {
        // Every other structural field differs too but is not stated.
        if field != Field::Dim {
            given.dim = DIM + 3;
        }
        let e = Database::open(at(&p), Some(stating(given, &[field])), false)
            .err()
            .unwrap_or_else(|| panic!("{field:?} accepted"));
        match &e {
            Error::ConfigMismatch { field: f, .. } => assert_eq!(*f, field.name()),
            other => panic!("{field:?}: {other}"),
        }
        let msg = e.to_string();
        for other in Field::ALL.iter().filter(|f| **f != field) {
            // "dim" is a substring of no other name; the others are distinct words.
            assert!(!msg.contains(other.name()), "{msg} names {other:?}");
        }
    }
    // Nothing stated but dim: an HNSW database opens with a flat-default config.
    let db = open(
        &p,
        Some(stating(DatabaseConfig::new(DIM).unwrap(), &[Field::Dim])),
    );
    assert_eq!(db.config(), &hnsw_base());
    drop(db);
    // A stated ef_construction below the stored M is out of range for this database.
    let mut g = DatabaseConfig::new(DIM).unwrap();
    g.hnsw.max_nb_connection = 2;
    g.hnsw.ef_construction = 4;
    let e = Database::open(at(&p), Some(stating(g, &[Field::EfConstruction])), false)
        .err()
        .unwrap();
    assert!(
        matches!(e, Error::InvalidArgument(ref m) if m.contains("ef_construction")),
        "{e}"
    );
}

#[test]
fn read_only_opens_apply_runtime_knobs_too() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db");
    let writer = open(&p, Some(hnsw_base()));
    let mut g = hnsw_base();
    g.hnsw.ef_search = Some(33);
    g.storage.cache_size_mb = 9;
    g.storage.sync_writes = true;
    let ro = Database::open(
        at(&p),
        Some(stating(g, &[Field::EfSearch, Field::CacheSizeMb])),
        true,
    )
    .unwrap();
    assert_eq!(ro.config().hnsw.ef_search, Some(33));
    assert_eq!(ro.config().storage.cache_size_mb, 9);
    assert!(!ro.config().storage.sync_writes, "not stated, so as stored");
    assert_eq!(
        ro.engine_property("rocksdb.block-cache-capacity").unwrap(),
        Some(9 << 20)
    );
    // A follower stores nothing: the writer's next open is as before.
    drop(ro);
    drop(writer);
    assert_eq!(open(&p, None).config(), &hnsw_base());
}

#[test]
fn a_stored_config_with_ef_construction_below_m_opens_and_reports_what_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db");
    drop(open(&p, Some(hnsw_base())));
    // Written as an older build could: ef_construction 3 with M 8.
    let mut old = hnsw_base();
    old.hnsw.ef_construction = 3;
    {
        let raw = rocksdb::DB::open_default(&p).unwrap();
        raw.put(CONFIG_KEY, encode_config(&old)).unwrap();
    }
    let db = open(&p, None);
    assert_eq!(
        db.config().hnsw.ef_construction,
        8,
        "the value the index uses"
    );
    add_some(&db, 0, 20);
    db.save_graph().unwrap();
    let bytes = std::fs::read(graph_file(&p)).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), 8);
}

#[test]
fn per_call_ef_search_is_bounded_like_the_config() {
    let db = Database::open(Location::Memory, Some(hnsw_base()), false).unwrap();
    add_some(&db, 0, 50);
    let q = vec![0.0f32; DIM];
    for bad in [0, MAX_EF + 1, usize::MAX] {
        let e = db.search(&q, 5, None, Some(bad)).err().unwrap();
        assert!(
            matches!(e, Error::InvalidArgument(ref m) if m.contains("ef_search")),
            "{e}"
        );
        let e = db.batch_search(&q, 5, None, Some(bad)).err().unwrap();
        assert!(
            matches!(e, Error::InvalidArgument(ref m) if m.contains("ef_search")),
            "{e}"
        );
    }
    assert_eq!(db.search(&q, 5, None, Some(MAX_EF)).unwrap().len(), 5);
    assert_eq!(db.search(&q, 5, None, Some(1)).unwrap().len(), 5);
}

#[test]
fn memory_bytes_counts_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 64;
    let db = open(
        &dir.path().join("db"),
        Some(DatabaseConfig::new(dim).unwrap()),
    );
    let before = db.stats().unwrap().memory_bytes;
    let mem_before = db
        .engine_property("rocksdb.size-all-mem-tables")
        .unwrap()
        .unwrap();
    let n = 2000u64;
    let ids: Vec<u64> = (0..n).collect();
    let data: Vec<f32> = (0..n as usize * dim).map(|i| i as f32).collect();
    db.bulk_add(&ids, &data, None).unwrap();
    let after = db.stats().unwrap().memory_bytes;
    let mem_after = db
        .engine_property("rocksdb.size-all-mem-tables")
        .unwrap()
        .unwrap();
    let memtable_growth = mem_after - mem_before;
    // The memtable holds every record: at least the vectors' bytes.
    assert!(memtable_growth >= n * dim as u64 * 4, "{memtable_growth}");
    // The vectors are held twice: by the index and by the memtable.
    assert!(
        after - before >= memtable_growth + n * dim as u64 * 4,
        "memory_bytes grew by {} with memtables +{memtable_growth}",
        after - before
    );
    assert!(after >= mem_after + n * dim as u64 * 4);
}
