//! `Database::verify` on clean databases (healthy, with the checks and counts stated)
//! and on each kind of damage (flipped bytes in a table file, the graph file or a
//! snapshot manifest; records written raw that do not decode or lack their partner; a
//! stale graph file; a missing CURRENT), each reported with its kind; and
//! `Database::compact` giving back the space of removed rows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::graph_file;

use std::path::Path;
use std::sync::Arc;

use nusterdb_core::db::PutMode;
use nusterdb_core::rng::SplitMix64;
use nusterdb_core::storage::codec;
use nusterdb_core::storage::keys::{self, CONFIG_KEY, FORMAT_KEY};
use nusterdb_core::storage::lock::WriterLock;
use nusterdb_core::storage::Batch;
use nusterdb_core::storage::Store;
use nusterdb_core::verify::{ProblemKind, VerifyReport};
use nusterdb_core::{Database, DatabaseConfig, HnswConfig, IndexType, StorageConfig};
use nusterdb_core::{Error, Id, IdType, Location, Metadata, Value};

const DIM: usize = 8;

fn config(hnsw: bool) -> DatabaseConfig {
    let mut c = DatabaseConfig::new(DIM).unwrap();
    if hnsw {
        c.index_type = IndexType::Hnsw;
        c.hnsw = HnswConfig {
            max_nb_connection: 8,
            ef_construction: 32,
            ..HnswConfig::default()
        };
    }
    c
}

fn rows(rng: &mut SplitMix64, n: usize) -> Vec<f32> {
    (0..n * DIM).map(|_| rng.next_gaussian() as f32).collect()
}

/// A database of `n` rows (ids 0..n, metadata `i`), closed, its records in table files.
fn build(path: &Path, hnsw: bool, n: usize) {
    let mut rng = SplitMix64::new(0x7665_7269_6679);
    let db = Database::open(
        Location::Path(path.to_path_buf()),
        Some(config(hnsw)),
        false,
    )
    .unwrap();
    let ids: Vec<u64> = (0..n as u64).collect();
    let metas = ids
        .iter()
        .map(|&i| {
            let mut m = Metadata::new();
            m.set("i", Value::Int(i as i64)).unwrap();
            m
        })
        .collect();
    db.bulk_add(&ids, &rows(&mut rng, n), Some(metas)).unwrap();
    // Flushes the memtable: the records are in a table file.
    db.compact().unwrap();
    db.close();
}

fn kinds(r: &VerifyReport) -> Vec<ProblemKind> {
    r.problems.iter().map(|p| p.kind).collect()
}

fn verify(path: &Path) -> VerifyReport {
    let r = Database::verify(path).unwrap();
    eprintln!("{r:#?}");
    r
}

/// Writes raw records under the writer lock, as damage from outside would.
fn write_raw(path: &Path, f: impl FnOnce(&mut Batch)) {
    let lock = Arc::new(WriterLock::acquire(path).unwrap());
    let store = Store::open_writer(path, &StorageConfig::default(), lock).unwrap();
    let mut batch = store.batch();
    f(&mut batch);
    store.write(batch).unwrap();
    store.sync_wal().unwrap();
}

fn flip(file: &Path, at: impl FnOnce(usize) -> usize) {
    let mut b = std::fs::read(file).unwrap();
    let i = at(b.len());
    b[i] ^= 0xFF;
    std::fs::write(file, b).unwrap();
}

fn sst_files(path: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .collect();
    v.sort();
    v
}

#[test]
fn clean_databases_are_healthy_with_every_check_run() {
    for hnsw in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        build(&path, hnsw, 300);
        {
            let db = Database::open(Location::Path(path.clone()), None, false).unwrap();
            db.snapshot("s1", &Metadata::new()).unwrap();
            // A write left in the write-ahead log only: the follower replays it.
            db.add(1000, &[0.5; DIM], None).unwrap();
            db.close();
        }
        let r = verify(&path);
        assert!(r.is_healthy(), "hnsw={hnsw}: {:?}", r.problems);
        assert!(!r.live_writer);
        let mut want = vec![
            "open",
            "checksums",
            "records",
            "change_log",
            "segment_files",
            "segments_match_store",
        ];
        if hnsw {
            want.extend(["graph_file", "codes_file", "graph_matches_store"]);
        }
        want.extend(["index_matches_store", "snapshots"]);
        assert_eq!(r.checked, want, "hnsw={hnsw}");
        assert_eq!(r.vectors, 301);
        assert_eq!(r.metadata_records, 301);
        // Format marker, config, log position, seal record (and for HNSW its parts),
        // the log entries since the floor, and two records per row.
        assert!(r.log_entries >= 1);
        assert_eq!(r.keys_read, 4 + u64::from(hnsw) + r.log_entries + 2 * 301);
        assert_eq!(r.index_vectors, Some(301));
        assert_eq!(r.graph_nodes, hnsw.then_some(301));
        assert_eq!(r.snapshots, 1);
        assert_eq!(r.config.as_ref().unwrap().dim, DIM);
        // verify wrote nothing: the database opens as a writer afterwards as before.
        let db = Database::open(Location::Path(path.clone()), None, false).unwrap();
        assert_eq!(db.count().unwrap(), 301);
    }
}

#[test]
fn beside_a_live_writer_it_reads_as_a_follower_and_blocks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    build(&path, true, 200);
    let db = Database::open(Location::Path(path.clone()), None, false).unwrap();
    db.add(500, &[1.0; DIM], None).unwrap();
    db.flush().unwrap();
    let r = verify(&path);
    assert!(r.live_writer);
    assert!(r.is_healthy(), "{:?}", r.problems);
    assert_eq!(r.vectors, 201);
    // The writer still writes.
    db.add(501, &[2.0; DIM], None).unwrap();
}

#[test]
fn a_flipped_byte_in_a_table_file_is_a_checksum_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    build(&path, false, 2000);
    let ssts = sst_files(&path);
    assert_eq!(ssts.len(), 1, "{ssts:?}");
    // The middle of the file: a data block of vector records.
    flip(&ssts[0], |n| n / 2);
    let r = verify(&path);
    assert!(!r.is_healthy());
    assert_eq!(kinds(&r), vec![ProblemKind::Checksum], "{:?}", r.problems);
    assert!(
        r.problems[0].detail.contains("checksum"),
        "{:?}",
        r.problems
    );
    assert!(!r.checked.contains(&"checksums"));
    assert!(r.keys_read < 2 + 2 * 2000);
}

#[test]
fn a_damaged_graph_file_is_a_graph_file_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    build(&path, true, 300);
    flip(&graph_file(&path), |n| n / 2);
    let r = verify(&path);
    // The graph file, and the seal it belongs to, which an open cannot use.
    assert_eq!(
        kinds(&r),
        vec![ProblemKind::GraphFile, ProblemKind::Segment],
        "{:?}",
        r.problems
    );
    assert!(r.problems[0].detail.contains("checksum mismatch"));
    assert_eq!(r.graph_nodes, None);
    // The reader's open rebuilt the graph, and said so.
    assert!(
        r.notes.iter().any(|n| n.contains("rebuilt")),
        "{:?}",
        r.notes
    );
    assert_eq!(r.index_vectors, Some(300));
}

#[test]
fn a_stale_graph_file_is_a_mismatch_on_a_closed_database_and_a_note_beside_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    build(&path, true, 300);
    let old_graph = std::fs::read(graph_file(&path)).unwrap();
    {
        let db = Database::open(Location::Path(path.clone()), None, false).unwrap();
        db.add(1000, &[0.25; DIM], None).unwrap();
        assert!(db.remove(7).unwrap());
        db.update(8, Some(&[3.0; DIM]), None).unwrap();
        db.close();
    }
    // The seal's graph replaced by an older one (a seal always writes its own, so
    // only damage or a copy from elsewhere does this).
    std::fs::write(graph_file(&path), &old_graph).unwrap();
    let r = verify(&path);
    assert_eq!(
        kinds(&r),
        vec![ProblemKind::GraphMismatch, ProblemKind::Segment],
        "{:?}",
        r.problems
    );
    let d = &r.problems[0].detail;
    assert!(d.contains("stored ids not in the graph: 1 (1000)"), "{d}");
    assert!(d.contains("graph ids not stored: 1 (7)"), "{d}");
    assert!(d.contains("differs from the graph's: 1 (8)"), "{d}");

    // Beside a live writer the same lag is a note (the writer has not saved yet).
    let w = Database::open(Location::Path(path.clone()), None, false).unwrap();
    std::fs::write(graph_file(&path), &old_graph).unwrap();
    let r = verify(&path);
    assert!(r.live_writer);
    assert!(r.is_healthy(), "{:?}", r.problems);
    assert!(
        r.notes.iter().any(|n| n.contains("graph file disagrees")),
        "{:?}",
        r.notes
    );
    w.close();
}

#[test]
fn records_that_do_not_decode_or_lack_their_partner_are_record_problems() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    build(&path, false, 50);
    write_raw(&path, |b| {
        b.put(keys::vector_key(3), b"\x01short");
        b.delete(keys::metadata_key(4));
        b.put(keys::metadata_key(9999), b"\xffnot metadata");
        b.put(b"zz-foreign", b"x");
    });
    let r = verify(&path);
    // Records, and — the damage written behind the change log's back — the seal and
    // the state loaded from it disagree with the store about vector 3.
    assert_eq!(
        kinds(&r)
            .into_iter()
            .filter(|&k| k != ProblemKind::Record)
            .collect::<Vec<_>>(),
        vec![ProblemKind::Segment, ProblemKind::Index],
        "{:?}",
        r.problems
    );
    let details: Vec<&str> = r.problems.iter().map(|p| p.detail.as_str()).collect();
    let has = |s: &str| details.iter().any(|d| d.contains(s));
    assert!(has("sealed, not stored: 1 (3)"), "{details:?}");
    assert!(has("loaded ids that are not stored: 1 (3)"), "{details:?}");
    assert!(has("vector 3:"), "{details:?}");
    assert!(has("metadata of 9999:"), "{details:?}");
    assert!(
        has("vectors without a metadata record: 1 (4)"),
        "{details:?}"
    );
    assert!(
        has("metadata records without a vector: 1 (9999)"),
        "{details:?}"
    );
    assert!(
        has("a key NusterDB does not write: \"zz-foreign\""),
        "{details:?}"
    );
    // The reader's open read the seal, not the damaged records, so it loaded.
    assert_eq!(r.index_vectors, Some(50));
}

#[test]
fn a_missing_config_is_a_config_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    build(&path, false, 20);
    write_raw(&path, |b| b.delete(CONFIG_KEY));
    let r = verify(&path);
    let k = kinds(&r);
    assert!(k.contains(&ProblemKind::Config), "{:?}", r.problems);
    // Vectors cannot be decoded without the dimension: said, not guessed.
    assert!(k.contains(&ProblemKind::Record), "{:?}", r.problems);
}

#[test]
fn a_damaged_snapshot_manifest_is_a_snapshot_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    build(&path, false, 20);
    {
        let db = Database::open(Location::Path(path.clone()), None, false).unwrap();
        db.snapshot("good", &Metadata::new()).unwrap();
        db.snapshot("bad", &Metadata::new()).unwrap();
    }
    flip(&path.join("snapshots").join("bad").join("SNAPSHOT"), |n| {
        n / 2
    });
    let r = verify(&path);
    assert_eq!(kinds(&r), vec![ProblemKind::Snapshot], "{:?}", r.problems);
    assert!(r.problems[0].detail.contains("\"bad\""));
    assert_eq!(r.snapshots, 1);
}

#[test]
fn a_missing_current_file_is_an_open_problem_and_no_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    build(&path, false, 20);
    std::fs::remove_file(path.join("CURRENT")).unwrap();
    let r = verify(&path);
    assert_eq!(kinds(&r), vec![ProblemKind::Open], "{:?}", r.problems);
    assert!(matches!(
        Database::verify(&dir.path().join("missing")),
        Err(Error::NoDatabase { .. })
    ));
    assert!(!dir.path().join("missing").exists());
}

#[test]
fn compact_gives_back_the_space_of_removed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut rng = SplitMix64::new(11);
    let db = Database::open(
        Location::Path(path.clone()),
        Some(DatabaseConfig::new(64).unwrap()),
        false,
    )
    .unwrap();
    let n = 5000u64;
    let ids: Vec<u64> = (0..n).collect();
    let data: Vec<f32> = (0..n as usize * 64)
        .map(|_| rng.next_gaussian() as f32)
        .collect();
    db.bulk_add(&ids, &data, None).unwrap();
    db.compact_memtables().unwrap();
    let full = db.stats().unwrap().disk_bytes;
    assert!(db.bulk_remove(&ids[..4750]).unwrap() == 4750);
    db.compact_memtables().unwrap();
    let removed = db.stats().unwrap().disk_bytes;
    db.compact().unwrap();
    let compacted = db.stats().unwrap().disk_bytes;
    eprintln!("full {full}, after removal {removed}, compacted {compacted}");
    // 5,000 rows of 256 bytes are ~1.3 MB; 250 are left.
    assert!(full > 1_000_000);
    assert!(compacted * 4 < full, "compaction gave back too little");
    assert!(compacted < removed);
    assert_eq!(db.count().unwrap(), 250);
    assert_eq!(db.get(4999).unwrap().unwrap(), data[4999 * 64..].to_vec());
    db.close();
    let r = Database::verify(&path).unwrap();
    assert!(r.is_healthy(), "{:?}", r.problems);
    assert_eq!(r.vectors, 250);
    // A follower cannot compact.
    let w = Database::open(Location::Path(path.clone()), None, false).unwrap();
    let f = Database::open(Location::Path(path), None, true).unwrap();
    assert!(matches!(f.compact(), Err(Error::ReadOnly)));
    w.close();
}

/// A string-id database with documents: `n` string ids, every other row with a document.
fn build_named(path: &Path, n: usize) {
    let mut c = config(false);
    c.id_type = IdType::Str;
    let db = Database::open(Location::Path(path.to_path_buf()), Some(c), false).unwrap();
    let ids: Vec<Id> = (0..n).map(|i| Id::from(format!("row-{i}"))).collect();
    let docs = (0..n)
        .map(|i| (i % 2 == 0).then(|| format!("text {i}")))
        .collect();
    let mut rng = SplitMix64::new(5);
    db.put(PutMode::Add, &ids, &rows(&mut rng, n), Vec::new(), docs)
        .unwrap();
    db.close();
}

#[test]
fn string_ids_and_documents_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    build_named(&path, 30);
    let r = verify(&path);
    assert!(r.is_healthy(), "{:?}", r.problems);
    assert_eq!((r.vectors, r.string_ids, r.documents), (30, 30, 15));
    // Format marker, config, log position, seal record, log entries, and vector,
    // metadata and string id per row, a document for every other row.
    assert_eq!(r.keys_read, 4 + r.log_entries + 3 * 30 + 15);

    // Keys are given in order from 0: key 3 names "row-3", key 4 "row-4".
    write_raw(&path, |b| {
        b.delete(keys::name_key(3));
        b.put(keys::name_key(4), codec::encode_text("row-5"));
        b.put(keys::document_key(999), codec::encode_text("orphan"));
    });
    let r = verify(&path);
    assert!(
        kinds(&r).iter().all(|&k| k == ProblemKind::Record),
        "{:?}",
        r.problems
    );
    let details: Vec<&str> = r.problems.iter().map(|p| p.detail.as_str()).collect();
    let has = |s: &str| details.iter().any(|d| d.contains(s));
    assert!(
        has("vectors without a string id: keys 1 (3)"),
        "{details:?}"
    );
    assert!(
        has("string ids stored twice: \"row-5\" (keys 4 and 5)"),
        "{details:?}"
    );
    assert!(has("documents without a vector: 1 (999)"), "{details:?}");
}

#[test]
fn documents_in_a_format_1_database_are_a_format_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    build_named(&path, 4);
    write_raw(&path, |b| b.put(FORMAT_KEY, codec::encode_format(1)));
    let r = verify(&path);
    assert!(kinds(&r).contains(&ProblemKind::Format), "{:?}", r.problems);
    assert!(r.problems.iter().any(|p| p.detail.contains("format 1")));
}
