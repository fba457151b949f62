//! Encryption at rest through the `Database` API: nothing stored appears in plaintext in
//! any file (write-ahead log, tables, graph file, snapshot manifests), a wrong or
//! missing master key is refused before anything is touched, an encrypted database
//! writes no segment files (they are mapped as they are on disk), and a master-key
//! rotation keeps everything readable — also through a fault-injected I/O layer, which
//! checks that the key file is written once and atomically.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nusterdb_core::config::MasterKey;
use nusterdb_core::db::GraphLoad;
use nusterdb_core::{Database, DatabaseConfig, Error, IndexType, Location, Metadata, Value};

const DIM: usize = 12;

fn key(b: u8) -> MasterKey {
    MasterKey::new(&[b; 32]).unwrap()
}

fn config(index: IndexType, master: Option<MasterKey>) -> DatabaseConfig {
    let mut c = DatabaseConfig::new(DIM).unwrap();
    c.index_type = index;
    c.vectors = nusterdb_core::config::VectorStorage::Memory;
    c.storage.encryption = master;
    c
}

/// A config stating only the master key (a reopen keeps everything else).
fn keyed(master: Option<MasterKey>) -> Option<DatabaseConfig> {
    master.map(|m| {
        let mut c = DatabaseConfig::new(1)
            .unwrap()
            .stating(nusterdb_core::config::Fields::NONE);
        c.storage.encryption = Some(m);
        c
    })
}

fn row(i: u64) -> Vec<f32> {
    (0..DIM)
        .map(|j| 1000.0 + (i as f32) * 0.731 + (j as f32) * 0.113)
        .collect()
}

fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn fill(db: &Database, n: u64) {
    let ids: Vec<u64> = (0..n).collect();
    let vectors: Vec<f32> = ids.iter().flat_map(|&i| row(i)).collect();
    let metadata = ids
        .iter()
        .map(|&i| {
            let mut m = Metadata::new();
            m.set("secret", Value::Str(format!("PLAINTEXT-MARKER-{i}")))
                .unwrap();
            m
        })
        .collect();
    db.bulk_add(&ids, &vectors, Some(metadata)).unwrap();
}

#[test]
fn nothing_stored_is_readable_on_disk_and_every_open_needs_the_key() {
    for index in [IndexType::Flat, IndexType::Hnsw] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = Database::open(
            Location::Path(path.clone()),
            Some(config(index, Some(key(1)))),
            false,
        )
        .unwrap();
        fill(&db, 600);
        let mut snap = Metadata::new();
        snap.set("note", Value::Str("SNAPSHOT-MARKER".into()))
            .unwrap();
        db.snapshot("s", &snap).unwrap();
        db.seal().unwrap();
        db.close();

        let needles: Vec<Vec<u8>> = vec![
            b"PLAINTEXT-MARKER".to_vec(),
            b"SNAPSHOT-MARKER".to_vec(),
            row(5)[..3].iter().flat_map(|f| f.to_le_bytes()).collect(),
            row(599)[..3].iter().flat_map(|f| f.to_le_bytes()).collect(),
        ];
        let before = files(&path);
        for (file, bytes) in &before {
            let name = file.file_name().unwrap().to_string_lossy();
            assert!(!name.starts_with("segment-"), "{name}: a segment file");
            for n in &needles {
                assert!(!contains(bytes, n), "{} holds plaintext", file.display());
            }
        }
        assert!(path.join("nusterdb.key").exists());

        // Missing, wrong, and then the right key.
        for given in [None, Some(key(2))] {
            for read_only in [false, true] {
                let r = Database::open(
                    Location::Path(path.clone()),
                    keyed(given.clone()),
                    read_only,
                );
                assert!(
                    matches!(r, Err(Error::EncryptionKey { .. })),
                    "{:?}",
                    r.err()
                );
            }
        }
        assert_eq!(files(&path), before, "a refused open changed a file");

        let db = Database::open(Location::Path(path.clone()), keyed(Some(key(1))), false).unwrap();
        assert_eq!(db.count().unwrap(), 600);
        if index == IndexType::Hnsw {
            assert!(matches!(db.graph_load().unwrap(), GraphLoad::Loaded { .. }));
        }
        let m = db.get_metadata(7).unwrap().unwrap();
        assert_eq!(
            m.get("secret"),
            Some(&Value::Str("PLAINTEXT-MARKER-7".into()))
        );
        let hits = db.search(&row(42), 1, None, None).unwrap();
        assert_eq!(hits[0].0, 42);
        assert_eq!(hits[0].1, 0.0);
        assert_eq!(db.list_snapshots().unwrap().len(), 1);
        db.close();

        // Rotation: the old key stops opening it, the new one opens it and its snapshot.
        assert_eq!(
            Database::rotate_master_key(&path, &key(1), &key(3)).unwrap(),
            2
        );
        let r = Database::open(Location::Path(path.clone()), keyed(Some(key(1))), true);
        assert!(matches!(r, Err(Error::EncryptionKey { .. })));
        let snap_dir = path.join("snapshots").join("s");
        let s = Database::open(Location::Path(snap_dir), keyed(Some(key(3))), true).unwrap();
        assert_eq!(s.count().unwrap(), 600);
        s.close();
        let report = Database::verify_with_key(&path, Some(&key(3))).unwrap();
        assert!(report.is_healthy(), "{report:?}");
    }
}

#[test]
fn a_plaintext_database_refuses_a_key_and_memory_refuses_encryption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::open(
        Location::Path(path.clone()),
        Some(config(IndexType::Flat, None)),
        false,
    )
    .unwrap();
    fill(&db, 10);
    db.close();
    let r = Database::open(Location::Path(path.clone()), keyed(Some(key(1))), false);
    assert!(
        matches!(r, Err(Error::EncryptionKey { .. })),
        "{:?}",
        r.err()
    );
    assert!(matches!(
        Database::rotate_master_key(&path, &key(1), &key(2)),
        Err(Error::EncryptionKey { .. })
    ));
    let r = Database::open(
        Location::Memory,
        Some(config(IndexType::Flat, Some(key(1)))),
        false,
    );
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{:?}", r.err());
}

#[test]
fn a_failed_encrypted_creation_leaves_nothing_and_a_plaintext_one_over_it_is_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    std::fs::create_dir(&path).unwrap();
    // A directory where RocksDB writes its IDENTITY file: the creation fails after the
    // key file was written, and removes it.
    std::fs::create_dir(path.join("IDENTITY")).unwrap();
    let r = Database::open(
        Location::Path(path.clone()),
        Some(config(IndexType::Flat, Some(key(1)))),
        false,
    );
    assert!(r.is_err());
    assert!(!path.join("nusterdb.key").exists());
    std::fs::remove_dir(path.join("IDENTITY")).unwrap();
    // A key file a killed encrypted creation left (nothing stored under it): a
    // plaintext creation removes it, so the database is not taken for an encrypted one.
    std::fs::write(path.join("nusterdb.lock"), b"").unwrap();
    std::fs::write(path.join("nusterdb.key"), [0u8; 80]).unwrap();
    let db = Database::open(
        Location::Path(path.clone()),
        Some(config(IndexType::Flat, None)),
        false,
    )
    .unwrap();
    fill(&db, 3);
    db.close();
    assert!(!path.join("nusterdb.key").exists());
    let db = Database::open(Location::Path(path), None, true).unwrap();
    assert_eq!(db.count().unwrap(), 3);
}
