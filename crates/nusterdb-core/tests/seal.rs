//! Seals and the change log through the database: an open reads the segment files and
//! replays only the log tail, with every kind of write in that tail (adds, changed
//! vectors, metadata-only updates, removals, `clear`, string ids, documents); a
//! missing, damaged or foreign segment file is a load of every record (never a wrong
//! answer); a seal failing at any step leaves a database that opens whole (T2); a
//! follower's refresh replays the log, and reloads when a seal deleted what it needed.
//! Seeds are printed; `NUSTERDB_TEST_SEED=<u64>` replays a run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;

use nusterdb_core::db::{Include, LoadSource, PutMode, Selection};
use nusterdb_core::filter::{Filter, FilterInput};
use nusterdb_core::ids::{Id, IdType};
use nusterdb_core::rng::SplitMix64;
use nusterdb_core::storage::fileio::{FaultMode, FaultyIo, FileIo, OsIo};
use nusterdb_core::{Database, DatabaseConfig, DistanceMetric, HnswConfig, IndexType};
use nusterdb_core::{Location, Metadata, Value};

const DIM: usize = 12;

fn seed(test: &str) -> u64 {
    common::seed(test, 0x7365_616c_0000_0001)
}

fn config(index: IndexType, id_type: IdType) -> DatabaseConfig {
    let mut c = DatabaseConfig::new(DIM).unwrap();
    c.index_type = index;
    c.id_type = id_type;
    c.distance_metric = DistanceMetric::Euclidean;
    c.hnsw = HnswConfig {
        max_nb_connection: 8,
        ef_construction: 64,
        ..HnswConfig::default()
    };
    c
}

fn open_io(path: &Path, cfg: Option<DatabaseConfig>, io: Arc<dyn FileIo>) -> Database {
    Database::open_with_io(Location::Path(path.to_path_buf()), cfg, false, io).unwrap()
}

fn reopen(path: &Path) -> Database {
    Database::open(Location::Path(path.to_path_buf()), None, false).unwrap()
}

/// A handle whose own files (segment files, graph files) cannot be written once it is
/// open: its close cannot seal, as after a crash between seals.
fn open_unsealable(path: &Path) -> Database {
    let io = Arc::new(FaultyIo::new(
        0,
        FaultMode::Persistent,
        ErrorKind::StorageFull,
    ));
    let db = open_io(path, None, io.clone());
    io.rearm(1);
    db
}

/// The model: what every id holds.
#[derive(Clone, Debug, Default)]
struct Model {
    rows: BTreeMap<String, (Vec<f32>, i64, Option<String>)>,
}

fn id(id_type: IdType, n: u64) -> Id {
    match id_type {
        IdType::Int => Id::Int(n),
        IdType::Str => Id::Str(format!("doc-{n}-é").into()),
    }
}

fn key(i: &Id) -> String {
    format!("{i:?}")
}

fn meta(bucket: i64) -> Metadata {
    let mut m = Metadata::new();
    m.set("bucket", Value::Int(bucket)).unwrap();
    m
}

fn vector(rng: &mut SplitMix64) -> Vec<f32> {
    (0..DIM).map(|_| rng.next_gaussian() as f32).collect()
}

/// Writes rows `ns` (upserted: new or replaced), each with a vector, a bucket and a
/// document, in one batch.
fn put(db: &Database, model: &mut Model, rng: &mut SplitMix64, id_type: IdType, ns: &[u64]) {
    let ids: Vec<Id> = ns.iter().map(|&n| id(id_type, n)).collect();
    let mut flat = Vec::new();
    let mut metas = Vec::new();
    let mut docs = Vec::new();
    for (&n, i) in ns.iter().zip(&ids) {
        let v = vector(rng);
        let bucket = (rng.next_u64() % 7) as i64;
        let doc = format!("document {n}");
        flat.extend_from_slice(&v);
        metas.push(Some(meta(bucket)));
        docs.push(Some(doc.clone()));
        model.rows.insert(key(i), (v, bucket, Some(doc)));
    }
    db.put(PutMode::Upsert, &ids, &flat, metas, docs).unwrap();
}

fn remove(db: &Database, model: &mut Model, id_type: IdType, ns: &[u64]) {
    let ids: Vec<Id> = ns.iter().map(|&n| id(id_type, n)).collect();
    db.delete(&ids).unwrap();
    for i in &ids {
        model.rows.remove(&key(i));
    }
}

/// The database holds exactly the model: ids, vectors, metadata, documents; filters
/// count as the model does; exact searches (flat) equal brute force and approximate
/// ones (HNSW) find nearly all of it.
fn check(db: &Database, model: &Model, what: &str) {
    assert_eq!(db.count().unwrap(), model.rows.len(), "{what}: count");
    let got = db
        .select(Selection::default(), Include::ALL)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(got.len(), model.rows.len(), "{what}: records");
    for r in &got {
        let (v, bucket, doc) = model
            .rows
            .get(&key(&r.id))
            .unwrap_or_else(|| panic!("{what}: {:?} is not in the model", r.id));
        assert_eq!(
            r.vector.as_deref(),
            Some(v.as_slice()),
            "{what}: {:?}",
            r.id
        );
        let m = r.metadata.as_ref().unwrap();
        assert_eq!(
            m.get("bucket"),
            Some(&Value::Int(*bucket)),
            "{what}: {:?}",
            r.id
        );
        assert_eq!(r.document.as_ref(), doc.as_ref(), "{what}: {:?}", r.id);
    }
    for b in 0..7i64 {
        let f = Filter::parse(&FilterInput::Map(vec![(
            "bucket".into(),
            FilterInput::Int(b),
        )]))
        .unwrap();
        let want = model.rows.values().filter(|r| r.1 == b).count();
        assert_eq!(
            db.count_where(Some(&f)).unwrap(),
            want,
            "{what}: bucket {b}"
        );
    }
    let mut rng = SplitMix64::new(99);
    let mut hits = 0;
    let mut asked = 0;
    for _ in 0..20 {
        let q = vector(&mut rng);
        let mut exact: Vec<(f32, &String)> = model
            .rows
            .iter()
            .map(|(k, (v, _, _))| {
                let d: f32 = v.iter().zip(&q).map(|(a, b)| (a - b) * (a - b)).sum();
                (d, k)
            })
            .collect();
        exact.sort_by(|a, b| a.0.total_cmp(&b.0));
        let want: Vec<&String> = exact.iter().take(10).map(|e| e.1).collect();
        let got = db
            .search_records(&q, 10, None, Some(200), Include::NOTHING)
            .unwrap();
        asked += want.len();
        hits += got.iter().filter(|h| want.contains(&&key(&h.0.id))).count();
    }
    assert!(hits * 100 >= asked * 95, "{what}: recall {hits}/{asked}");
}

fn cases() -> Vec<(IndexType, IdType)> {
    vec![
        (IndexType::Flat, IdType::Int),
        (IndexType::Hnsw, IdType::Int),
        (IndexType::Hnsw, IdType::Str),
        (IndexType::Flat, IdType::Str),
    ]
}

#[test]
fn an_open_reads_the_seal_and_replays_only_the_log_tail() {
    let mut rng = SplitMix64::new(seed("an_open_reads_the_seal_and_replays_only_the_log_tail"));
    for (index, id_type) in cases() {
        let what = format!("{index:?}/{id_type:?}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut model = Model::default();
        let db = open_io(&path, Some(config(index, id_type)), Arc::new(OsIo));
        let first: Vec<u64> = (0..1500).collect();
        for chunk in first.chunks(500) {
            put(&db, &mut model, &mut rng, id_type, chunk);
        }
        remove(
            &db,
            &mut model,
            id_type,
            &(0..1500).step_by(11).collect::<Vec<_>>(),
        );
        drop(db);
        let db = reopen(&path);
        assert_eq!(
            db.load_source().unwrap(),
            LoadSource::Sealed { replayed: 0 },
            "{what}"
        );
        check(&db, &model, &format!("{what} after a clean close"));
        drop(db);

        // Every kind of write after the seal, and a close that cannot seal.
        let db = open_unsealable(&path);
        put(
            &db,
            &mut model,
            &mut rng,
            id_type,
            &(5000..5300).collect::<Vec<_>>(),
        );
        put(
            &db,
            &mut model,
            &mut rng,
            id_type,
            &(1..1500).step_by(29).collect::<Vec<_>>(),
        );
        remove(
            &db,
            &mut model,
            id_type,
            &(2..1500).step_by(31).collect::<Vec<_>>(),
        );
        for n in (3..1500u64).step_by(37) {
            let i = id(id_type, n);
            if let Some(row) = model.rows.get_mut(&key(&i)) {
                db.update_record(
                    &i,
                    None,
                    Some(nusterdb_core::db::MetadataUpdate::Replace(meta(6))),
                    None,
                )
                .unwrap();
                row.1 = 6;
            }
        }
        // A removed id written again.
        put(&db, &mut model, &mut rng, id_type, &[0, 11, 22]);
        let touched: usize = {
            let mut t: Vec<u64> = (5000..5300).collect();
            t.extend((1..1500).step_by(29));
            t.extend((2..1500).step_by(31));
            t.extend((3..1500).step_by(37));
            t.extend([0, 11, 22]);
            t.sort_unstable();
            t.dedup();
            t.len()
        };
        check(&db, &model, &format!("{what} before the crash"));
        drop(db);
        let db = reopen(&path);
        match db.load_source().unwrap() {
            LoadSource::Sealed { replayed } => {
                // Metadata-only updates of removed ids wrote nothing.
                assert!(
                    replayed <= touched && replayed + 60 >= touched,
                    "{what}: {replayed} of {touched}"
                )
            }
            other => panic!("{what}: {other:?}"),
        }
        check(&db, &model, &format!("{what} after replaying the tail"));
        drop(db);

        // A clear in the tail.
        let db = open_unsealable(&path);
        db.clear().unwrap();
        model.rows.clear();
        put(
            &db,
            &mut model,
            &mut rng,
            id_type,
            &(0..40).collect::<Vec<_>>(),
        );
        drop(db);
        let db = reopen(&path);
        assert!(
            matches!(db.load_source().unwrap(), LoadSource::Sealed { .. }),
            "{what}"
        );
        check(&db, &model, &format!("{what} after a clear in the tail"));
    }
}

/// Damage to each segment file: refused with the file named, every record loaded and
/// the answers right; the open seals again, so the next one reads files.
#[test]
fn a_missing_damaged_or_foreign_segment_file_loads_every_record() {
    let mut rng = SplitMix64::new(seed(
        "a_missing_damaged_or_foreign_segment_file_loads_every_record",
    ));
    for (index, id_type) in [
        (IndexType::Hnsw, IdType::Str),
        (IndexType::Flat, IdType::Int),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut model = Model::default();
        let db = open_io(&path, Some(config(index, id_type)), Arc::new(OsIo));
        put(
            &db,
            &mut model,
            &mut rng,
            id_type,
            &(0..800).collect::<Vec<_>>(),
        );
        drop(db);
        let files = |path: &Path| -> Vec<std::path::PathBuf> {
            let mut v: Vec<_> = std::fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(nusterdb_core::db::is_segment_file)
                })
                .collect();
            v.sort();
            v
        };
        let present = files(&path);
        // HNSW: vectors, maps, graph, codes; flat: vectors, maps.
        let expected = if index == IndexType::Hnsw { 4 } else { 2 };
        assert_eq!(present.len(), expected, "{present:?}");
        type Damage = fn(&Path);
        let damages: Vec<(&str, Damage)> = vec![
            ("deleted", |p| std::fs::remove_file(p).unwrap()),
            ("a flipped byte", |p| {
                let mut b = std::fs::read(p).unwrap();
                let at = b.len() / 2;
                b[at] ^= 0x10;
                std::fs::write(p, b).unwrap();
            }),
            ("truncated", |p| {
                let b = std::fs::read(p).unwrap();
                std::fs::write(p, &b[..b.len() - 3]).unwrap();
            }),
            ("emptied", |p| std::fs::write(p, b"").unwrap()),
        ];
        for target in 0..expected {
            for (how, damage) in &damages {
                let present = files(&path);
                let file = &present[target];
                let what = format!("{index:?}/{id_type:?}: {} {how}", file.display());
                damage(file);
                let db = reopen(&path);
                match db.load_source().unwrap() {
                    LoadSource::Records { refused: Some(r) } => {
                        let name = file.file_name().unwrap().to_str().unwrap();
                        assert!(r.contains(name), "{what}: {r}");
                    }
                    other => panic!("{what}: {other:?}"),
                }
                check(&db, &model, &what);
                // The writes go on; the refused seal was replaced at open.
                put(
                    &db,
                    &mut model,
                    &mut rng,
                    id_type,
                    &[10_000 + target as u64],
                );
                drop(db);
                let db = reopen(&path);
                assert!(
                    matches!(db.load_source().unwrap(), LoadSource::Sealed { .. }),
                    "{what}: {:?}",
                    db.load_source()
                );
                check(&db, &model, &what);
                drop(db);
            }
        }
        // Segment files of another seal (a stale copy): refused by their tag or name.
        let other = dir.path().join("other");
        let db = open_io(&other, Some(config(index, id_type)), Arc::new(OsIo));
        put(
            &db,
            &mut Model::default(),
            &mut rng,
            id_type,
            &(0..50).collect::<Vec<_>>(),
        );
        drop(db);
        let db = reopen(&path);
        let LoadSource::Sealed { .. } = db.load_source().unwrap() else {
            panic!("expected a sealed open")
        };
        drop(db);
        let mine = files(&path);
        for (o, m) in files(&other).iter().zip(&mine) {
            std::fs::copy(o, m).unwrap();
        }
        let db = reopen(&path);
        assert!(
            matches!(
                db.load_source().unwrap(),
                LoadSource::Records { refused: Some(_) }
            ),
            "{:?}",
            db.load_source()
        );
        check(&db, &model, "foreign segment files");
    }
}

/// T2 for seals: a seal through an I/O layer that fails its n-th operation, for every
/// n until it completes, once and persistently. Every failure is an error; the
/// database then opens holding every acknowledged write, and no file of a failed seal
/// is left once a writer has opened it.
#[test]
fn every_fault_during_a_seal_leaves_a_database_that_opens_whole() {
    let mut rng = SplitMix64::new(seed(
        "every_fault_during_a_seal_leaves_a_database_that_opens_whole",
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let id_type = IdType::Str;
    let mut model = Model::default();
    let db = open_io(
        &path,
        Some(config(IndexType::Hnsw, id_type)),
        Arc::new(OsIo),
    );
    put(
        &db,
        &mut model,
        &mut rng,
        id_type,
        &(0..400).collect::<Vec<_>>(),
    );
    drop(db);
    let mut cases = 0;
    for mode in [FaultMode::Once, FaultMode::Persistent] {
        for kind in [ErrorKind::StorageFull, ErrorKind::PermissionDenied] {
            let mut n = 1;
            loop {
                let io = Arc::new(FaultyIo::new(0, mode, kind));
                let db = open_io(&path, None, io.clone());
                let first = 100_000 * (cases as u64 + 1);
                put(
                    &db,
                    &mut model,
                    &mut rng,
                    id_type,
                    &(first..first + 20).collect::<Vec<_>>(),
                );
                io.rearm(n);
                let r = db.seal();
                let failed = io.has_failed();
                // A fault after the commit point (removing the previous seal's files)
                // is not an error: the next writer open sweeps what is left.
                assert!(r.is_ok() || failed, "{mode:?} {kind:?} at {n}: {r:?}");
                // The close may seal again through the failing layer: either way.
                drop(db);
                cases += 1;
                let db = reopen(&path);
                let what = format!("{mode:?} {kind:?} at {n}");
                check(&db, &model, &what);
                let seal_files: Vec<String> = std::fs::read_dir(&path)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| nusterdb_core::db::is_segment_file(n))
                    .collect();
                assert!(seal_files.len() <= 4, "{what}: {seal_files:?}");
                drop(db);
                if !failed {
                    break;
                }
                n += 1;
                assert!(n < 10_000, "the seal never completed");
            }
        }
    }
    eprintln!("fault injection: {cases} seals, every fault an error, 0 lost");
    assert!(cases > 20);
}

/// A follower's refresh applies the writer's log; after the writer sealed twice (its
/// entries deleted below the previous seal) it reloads; both answer as the writer does.
#[test]
fn a_followers_refresh_replays_the_log_and_reloads_when_it_must() {
    let mut rng = SplitMix64::new(seed(
        "a_followers_refresh_replays_the_log_and_reloads_when_it_must",
    ));
    for (index, id_type) in [
        (IndexType::Hnsw, IdType::Str),
        (IndexType::Flat, IdType::Int),
    ] {
        let what = format!("{index:?}/{id_type:?}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut model = Model::default();
        let w = open_io(&path, Some(config(index, id_type)), Arc::new(OsIo));
        put(
            &w,
            &mut model,
            &mut rng,
            id_type,
            &(0..600).collect::<Vec<_>>(),
        );
        w.seal().unwrap();
        let f = Database::open(Location::Path(path.clone()), None, true).unwrap();
        assert!(
            matches!(f.load_source().unwrap(), LoadSource::Sealed { .. }),
            "{what}"
        );
        check(&f, &model, &what);
        for round in 0..3u64 {
            let base = 1000 * (round + 1);
            put(
                &w,
                &mut model,
                &mut rng,
                id_type,
                &(base..base + 200).collect::<Vec<_>>(),
            );
            remove(
                &w,
                &mut model,
                id_type,
                &(round..600).step_by(13).collect::<Vec<_>>(),
            );
            put(
                &w,
                &mut model,
                &mut rng,
                id_type,
                &(round * 5..round * 5 + 5).collect::<Vec<_>>(),
            );
            f.refresh().unwrap();
            assert!(
                matches!(f.load_source().unwrap(), LoadSource::Log { replayed } if replayed > 200),
                "{what} round {round}: {:?}",
                f.load_source()
            );
            check(&f, &model, &format!("{what} round {round}"));
        }
        // Two seals move the floor past the follower's position.
        for s in 0..2u64 {
            put(&w, &mut model, &mut rng, id_type, &[50_000 + s]);
            w.seal().unwrap();
        }
        put(&w, &mut model, &mut rng, id_type, &[60_000]);
        f.refresh().unwrap();
        // The entries it needed are gone: reloaded from the newest seal and its tail.
        assert_eq!(
            f.load_source().unwrap(),
            LoadSource::Sealed { replayed: 1 },
            "{what}"
        );
        check(&f, &model, &format!("{what} after two seals"));
        // Nothing written: the refresh replays nothing.
        f.refresh().unwrap();
        assert_eq!(
            f.load_source().unwrap(),
            LoadSource::Log { replayed: 0 },
            "{what}"
        );
        w.clear().unwrap();
        model.rows.clear();
        put(&w, &mut model, &mut rng, id_type, &[1, 2, 3]);
        f.refresh().unwrap();
        assert!(
            matches!(f.load_source().unwrap(), LoadSource::Log { .. }),
            "{what}"
        );
        check(&f, &model, &format!("{what} after a clear"));
    }
}

/// The ids of `r`, as a slice-able vector.
fn range(r: std::ops::Range<u64>) -> Vec<u64> {
    r.collect()
}

/// Writes rows `ids` with fresh vectors, every component shifted by `offset`
/// (`bulk_add`, or an upsert of stored ids when `replace`), recording them in `rows`.
fn write_rows_at(
    db: &Database,
    rows: &mut BTreeMap<u64, Vec<f32>>,
    rng: &mut SplitMix64,
    ids: &[u64],
    replace: bool,
    offset: f32,
) {
    let mut flat = Vec::new();
    for &i in ids {
        let v: Vec<f32> = vector(rng).into_iter().map(|x| x + offset).collect();
        flat.extend_from_slice(&v);
        rows.insert(i, v);
    }
    if replace {
        let keys: Vec<Id> = ids.iter().map(|&i| Id::Int(i)).collect();
        let n = keys.len();
        db.put(PutMode::Upsert, &keys, &flat, vec![None; n], vec![None; n])
            .unwrap();
    } else {
        db.bulk_add(ids, &flat, None).unwrap();
    }
}

/// [`write_rows_at`] without an offset.
fn write_rows(
    db: &Database,
    rows: &mut BTreeMap<u64, Vec<f32>>,
    rng: &mut SplitMix64,
    ids: &[u64],
    replace: bool,
) {
    write_rows_at(db, rows, rng, ids, replace, 0.0);
}

/// An HNSW index opened from a seal maps the seal's rows and codes (no heap copy, no
/// re-coding) and answers exactly as the index that wrote the seal did, for every kind
/// of metric (codes with their centre, cosine's inverse norms, a metric without codes),
/// removed nodes the graph still routes through included; a flat index maps its rows
/// and answers as before too; writes after the open (rows
/// past the mapped ones, replaced and removed rows) change only the copy in memory,
/// never the files, and are there after the next seal and open.
#[test]
fn an_open_maps_the_seals_rows_and_answers_as_the_writer_did() {
    let mut rng = SplitMix64::new(seed("maps_the_seals_rows"));
    // The last case: rows far from the origin (a common offset of 100, the data
    // the 8-bit walk once lost recall on), coded against their saved centre.
    // A flat index maps its rows the same way (one part from slot 0).
    for (index, metric, offset) in [
        (IndexType::Hnsw, DistanceMetric::Euclidean, 0.0),
        (IndexType::Hnsw, DistanceMetric::Cosine, 0.0),
        (IndexType::Hnsw, DistanceMetric::InnerProduct, 0.0),
        (IndexType::Hnsw, DistanceMetric::Manhattan, 0.0),
        (IndexType::Hnsw, DistanceMetric::Euclidean, 100.0f32),
        (IndexType::Flat, DistanceMetric::Euclidean, 0.0),
        (IndexType::Flat, DistanceMetric::Cosine, 0.0),
        (IndexType::Flat, DistanceMetric::Manhattan, 0.0),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut c = config(index, IdType::Int);
        c.distance_metric = metric;
        let db = open_io(&path, Some(c), Arc::new(OsIo));
        let mut rows: BTreeMap<u64, Vec<f32>> = BTreeMap::new();
        write_rows_at(&db, &mut rows, &mut rng, &range(0..600), false, offset);
        let gone: Vec<u64> = (0..600).step_by(7).collect();
        db.bulk_remove(&gone).unwrap();
        for g in &gone {
            rows.remove(g);
        }
        let mut qrng = SplitMix64::new(5);
        let queries: Vec<Vec<f32>> = (0..30)
            .map(|_| vector(&mut qrng).into_iter().map(|x| x + offset).collect())
            .collect();
        let answers = |db: &Database| answers_of(db, &queries, 10, 64);
        let before = answers(&db);
        db.seal().unwrap();
        let sealed: Vec<(std::path::PathBuf, Vec<u8>)> = nusterdb_core::db::segment_files_in(&path)
            .unwrap()
            .into_iter()
            .map(|p| {
                let b = std::fs::read(&p).unwrap();
                (p, b)
            })
            .collect();
        drop(db);

        let db = reopen(&path);
        let what = format!("{index:?} {metric:?} offset {offset}");
        assert!(
            matches!(
                db.load_source().unwrap(),
                LoadSource::Sealed { replayed: 0 }
            ),
            "{what}: {:?}",
            db.load_source()
        );
        let stats = db.stats().unwrap();
        let codes = index == IndexType::Hnsw && metric != DistanceMetric::Manhattan;
        let mapped_at_least = 600 * DIM * 4 + if codes { 600 * DIM } else { 0 };
        assert!(
            stats.mapped_bytes as usize >= mapped_at_least,
            "{what}: {} mapped",
            stats.mapped_bytes
        );
        assert_eq!(answers(&db), before, "{what}: answers after the open");

        // Writes on the mapped rows: new rows past them, replaced and removed rows.
        write_rows_at(&db, &mut rows, &mut rng, &range(600..1400), false, offset);
        let replaced: Vec<u64> = (1..600).step_by(5).filter(|i| i % 7 != 0).collect();
        write_rows_at(&db, &mut rows, &mut rng, &replaced, true, offset);
        let gone: Vec<u64> = (2..1400)
            .step_by(11)
            .filter(|i| rows.contains_key(i))
            .collect();
        db.bulk_remove(&gone).unwrap();
        for g in &gone {
            rows.remove(g);
        }
        // The files of the seal the handle maps are unchanged by all of it.
        for (p, bytes) in &sealed {
            assert!(
                std::fs::read(p).unwrap() == *bytes,
                "{what}: {} changed",
                p.display()
            );
        }
        let check_search = |db: &Database, stage: &str| {
            check_against(db, metric, &rows, &queries, 200, &format!("{what} {stage}"));
        };
        check_search(&db, "after writes");
        let before = answers(&db);
        drop(db);
        let db = reopen(&path);
        assert!(matches!(
            db.load_source().unwrap(),
            LoadSource::Sealed { .. }
        ));
        assert_eq!(
            answers(&db),
            before,
            "{what}: answers after the second open"
        );
        check_search(&db, "after the second open");
        assert_eq!(db.count().unwrap(), rows.len(), "{what}");
    }
}

/// A follower's refresh publishes up to 4,096 new rows before linking them (searches
/// score them directly, a thread links them afterwards) and links a larger batch before
/// it returns: either way every new row is found by its own vector at once, at distance
/// 0, no search returns an id twice or a removed one, and a row removed or replaced
/// before its linking is gone from the answers.
#[test]
fn a_followers_new_rows_are_found_at_once_linked_or_not() {
    let mut rng = SplitMix64::new(seed("a_followers_new_rows_are_found_at_once"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let w = open_io(
        &path,
        Some(config(IndexType::Hnsw, IdType::Int)),
        Arc::new(OsIo),
    );
    let mut rows: BTreeMap<u64, Vec<f32>> = BTreeMap::new();
    write_rows(&w, &mut rows, &mut rng, &range(0..2000), false);
    w.seal().unwrap();
    let f = Database::open(Location::Path(path.clone()), None, true).unwrap();
    let found_at_once = |f: &Database, rows: &BTreeMap<u64, Vec<f32>>, new: &[u64], what: &str| {
        for &i in new {
            let got = f.search(&rows[&i], 10, None, None).unwrap();
            assert_eq!(got.first(), Some(&(i, 0.0)), "{what}: row {i}");
            let mut ids: Vec<u64> = got.iter().map(|h| h.0).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), got.len(), "{what}: an id twice");
            assert!(
                ids.iter().all(|i| rows.contains_key(i)),
                "{what}: a removed row"
            );
        }
        assert_eq!(f.count().unwrap(), rows.len(), "{what}");
    };
    // Small batches: published unlinked; the second refresh removes and replaces rows
    // the first published, whether or not they were linked by then.
    write_rows(&w, &mut rows, &mut rng, &range(10_000..10_500), false);
    w.flush().unwrap();
    f.refresh().unwrap();
    found_at_once(&f, &rows, &range(10_000..10_500), "500 new rows");
    let gone: Vec<u64> = (10_000..10_500).step_by(3).collect();
    w.bulk_remove(&gone).unwrap();
    for g in &gone {
        rows.remove(g);
    }
    let replaced: Vec<u64> = (10_001..10_500).step_by(3).collect();
    write_rows(&w, &mut rows, &mut rng, &replaced, true);
    write_rows(&w, &mut rows, &mut rng, &range(20_000..20_300), false);
    w.flush().unwrap();
    f.refresh().unwrap();
    let mut new: Vec<u64> = replaced.clone();
    new.extend(20_000..20_300);
    found_at_once(&f, &rows, &new, "removed, replaced and new rows");
    for g in &gone {
        let got = f
            .search(&vector(&mut SplitMix64::new(*g)), 50, None, Some(200))
            .unwrap();
        assert!(got.iter().all(|h| h.0 != *g), "removed row {g} returned");
    }
    // A large batch: linked before the refresh returns.
    write_rows(&w, &mut rows, &mut rng, &range(30_000..35_000), false);
    w.flush().unwrap();
    f.refresh().unwrap();
    found_at_once(
        &f,
        &rows,
        &(30_000..35_000).step_by(7).collect::<Vec<_>>(),
        "5,000 new rows",
    );
    // A refresh with nothing new finishes any linking left: the graph alone then finds
    // nearly every row by its own vector.
    f.refresh().unwrap();
    let sample: Vec<u64> = rows.keys().copied().step_by(5).collect();
    let hits = sample
        .iter()
        .filter(|&&i| {
            f.search(&rows[&i], 1, None, Some(64))
                .unwrap()
                .first()
                .map(|h| h.0)
                == Some(i)
        })
        .count();
    assert!(
        hits * 100 >= sample.len() * 99,
        "self-recall {hits}/{}",
        sample.len()
    );
}

/// The vector files of the seal in `path`, as `(first slot, rows)` by first slot.
fn vector_parts(path: &Path) -> Vec<(usize, usize)> {
    let mut parts: Vec<(usize, usize)> = nusterdb_core::db::segment_files_in(path)
        .unwrap()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "vectors"))
        .map(|p| {
            let f = nusterdb_core::segment::VectorFile::open(&p).unwrap();
            (f.first(), f.len())
        })
        .collect();
    parts.sort_unstable();
    parts
}

/// A seal writes the rows and codes of the slots changed since the last one as a new
/// part and keeps the earlier parts' files; parts merge like a binary counter (each
/// under half the size of the one before), files no part uses are deleted; every open
/// maps the parts side by side and answers exactly as the writer did; a snapshot and
/// `verify` follow the parts; re-centred codes (the rows doubled) are one part again.
#[test]
fn a_seal_writes_only_the_part_that_changed() {
    // 1,024 floats a row and 8-bit codes: parts may start every 64 slots (where both a
    // part's rows and its codes start on a 64 KiB boundary; 4-bit codes, 512 bytes a
    // row, would make it 128).
    const WIDE: usize = 1024;
    let mut rng = SplitMix64::new(seed("a_seal_writes_only_the_part_that_changed"));
    for metric in [DistanceMetric::Euclidean, DistanceMetric::Cosine] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut c = common::hnsw_config(WIDE, metric, 8, 48);
        c.quantization = Some(nusterdb_core::config::Quantization::Sq8);
        let mut db = open_io(&path, Some(c), Arc::new(OsIo));
        let mut rows: BTreeMap<u64, Vec<f32>> = BTreeMap::new();
        let mut add = |db: &Database, rows: &mut BTreeMap<u64, Vec<f32>>, ids: &[u64]| {
            let mut flat = Vec::with_capacity(ids.len() * WIDE);
            for &i in ids {
                let v: Vec<f32> = common::gaussian(&mut rng, WIDE);
                flat.extend_from_slice(&v);
                rows.insert(i, v);
            }
            db.bulk_add(ids, &flat, None).unwrap();
        };
        let queries: Vec<Vec<f32>> = {
            let mut q = SplitMix64::new(9);
            (0..12)
                .map(|_| (0..WIDE).map(|_| q.next_gaussian() as f32).collect())
                .collect()
        };
        let answers = |db: &Database| answers_of(db, &queries, 5, 400);
        let what = format!("{metric:?}");
        // 640 rows: the codes are centred at 512 rows, so the next re-centring is at
        // 1,024 (the seal that crosses it writes one part).
        add(&db, &mut rows, &range(0..640));
        db.seal().unwrap();
        assert_eq!(vector_parts(&path), vec![(0, 640)], "{what}");
        let mut expected = vec![(0usize, 640usize)];
        let mut next = 640u64;
        let mut most = 1;
        // 64 rows a seal: parts of 64, merged when as large as half the one before.
        // Up to 1,216 rows by the rule; at 1,280 (twice the 640 the codes were centred
        // at) every code changes: one part, where the rule alone would keep two.
        let mut round = 0;
        while next < 1280 {
            add(&db, &mut rows, &range(next..next + 64));
            next += 64;
            let kept_files: Vec<(std::path::PathBuf, Vec<u8>)> =
                nusterdb_core::db::segment_files_in(&path)
                    .unwrap()
                    .into_iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "vectors"))
                    .map(|p| {
                        let b = std::fs::read(&p).unwrap();
                        (p, b)
                    })
                    .collect();
            db.seal().unwrap();
            // The model of the rule.
            let end = next as usize;
            let mut first = end - 64;
            while let Some(&(f, _)) = expected.last() {
                if (end - first) * 2 < first - f {
                    break;
                }
                first = f;
                expected.pop();
            }
            expected.push((first, end - first));
            if end == 1280 {
                assert_eq!(expected.len(), 2, "{what}");
                expected = vec![(0, 1280)];
            }
            assert_eq!(vector_parts(&path), expected, "{what} round {round}");
            most = most.max(expected.len());
            // A kept part's file is the same file, unchanged.
            for (p, b) in &kept_files {
                if p.exists() {
                    assert!(
                        std::fs::read(p).unwrap() == *b,
                        "{what}: {} changed",
                        p.display()
                    );
                }
            }
            db = reopen_sealed(db, &path, &answers, &what);
            if round == 3 {
                // A snapshot follows the parts (hard links); a restore opens from them.
                assert_eq!(expected.len(), 3, "{what}");
                db.snapshot("s", &Metadata::new()).unwrap();
                let restored = dir.path().join("restored");
                db.restore_snapshot("s", &restored).unwrap();
                assert_eq!(vector_parts(&restored), expected, "{what}");
                let r = reopen(&restored);
                assert!(
                    matches!(r.load_source().unwrap(), LoadSource::Sealed { .. }),
                    "{what}"
                );
                assert_eq!(answers(&r), answers(&db), "{what}: the restored snapshot");
                drop(r);
                drop(db);
                let report = nusterdb_core::verify::verify(&path).unwrap();
                assert!(report.is_healthy(), "{what}: {report:?}");
                assert!(report.checked.contains(&"codes_file"), "{what}: {report:?}");
                db = reopen(&path);
            }
            round += 1;
        }
        assert_eq!(most, 3, "{what}");
        let db = reopen_sealed(db, &path, &answers, &what);
        assert_eq!(db.count().unwrap(), rows.len());
        for q in &queries {
            let got: Vec<u64> = db
                .search(q, 5, None, Some(400))
                .unwrap()
                .into_iter()
                .map(|h| h.0)
                .collect();
            let want = common::brute_force(metric, &rows, q, 5);
            let hits = got.iter().filter(|i| want.contains(i)).count();
            assert!(hits >= 4, "{what}: {got:?} vs {want:?}");
        }
    }
}

/// Every hit of 10 per query (at `ef`) is a stored row at the metric's distance from
/// the query, and recall@10 against brute force over `rows` is at least 0.95.
fn check_against(
    db: &Database,
    metric: DistanceMetric,
    rows: &BTreeMap<u64, Vec<f32>>,
    queries: &[Vec<f32>],
    ef: usize,
    what: &str,
) {
    let r = common::recall(db, metric, rows, queries, ef, what);
    assert!(r >= 0.95, "{what}: recall {r:.3}");
}

/// Per query, the hits as `(id, distance bits)`.
type Answers = Vec<Vec<(u64, u32)>>;

/// The `k` hits of each of `queries` at `ef`, as `(id, distance bits)`.
fn answers_of(db: &Database, queries: &[Vec<f32>], k: usize, ef: usize) -> Answers {
    queries
        .iter()
        .map(|q| {
            db.search(q, k, None, Some(ef))
                .unwrap()
                .into_iter()
                .map(|(id, d)| (id, d.to_bits()))
                .collect()
        })
        .collect()
}

/// Closes `db` and opens `path` again: from the seal, nothing replayed, answering
/// exactly as before.
fn reopen_sealed(
    db: Database,
    path: &Path,
    answers: &dyn Fn(&Database) -> Answers,
    what: &str,
) -> Database {
    let before = answers(&db);
    drop(db);
    let db = reopen(path);
    assert!(
        matches!(
            db.load_source().unwrap(),
            LoadSource::Sealed { replayed: 0 }
        ),
        "{what}: {:?}",
        db.load_source()
    );
    assert_eq!(answers(&db), before, "{what}: answers after the open");
    db
}

/// Copies the directory `from` (files and subdirectories) to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Opens `path` with `vectors` (the only field stated: the rest is the stored config).
fn open_with_vectors(path: &Path, vectors: nusterdb_core::config::VectorStorage) -> Database {
    let mut c = DatabaseConfig::new(1).unwrap();
    c.vectors = vectors;
    let c = c.stating(nusterdb_core::config::Fields::of([
        nusterdb_core::config::Field::Vectors,
    ]));
    Database::open(Location::Path(path.to_path_buf()), Some(c), false).unwrap()
}

/// Every `vectors` mode answers exactly as the writer did: `memory` copies the sealed
/// rows and codes (nothing mapped), `mmap` and `disk` map them; `disk` searches read
/// the rows they re-rank from the files, so the rows' pages do not become resident
/// (where the system says: Linux), where `mmap` searches touch most of them. Writes
/// after the open (new, replaced, removed rows) answer right in every mode. `disk` is
/// refused for a flat index and a metric the walk reads rows for.
#[test]
fn every_vectors_mode_answers_as_the_writer_did() {
    use nusterdb_core::config::VectorStorage;
    const WIDE: usize = 128;
    let mut rng = SplitMix64::new(seed("every_vectors_mode"));
    for metric in [DistanceMetric::Euclidean, DistanceMetric::Cosine] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let c = common::hnsw_config(WIDE, metric, 16, 100);
        let db = open_io(&path, Some(c), Arc::new(OsIo));
        let mut rows: BTreeMap<u64, Vec<f32>> = BTreeMap::new();
        let mut flat = Vec::new();
        for i in 0..4000u64 {
            let v: Vec<f32> = common::gaussian(&mut rng, WIDE);
            flat.extend_from_slice(&v);
            rows.insert(i, v);
        }
        db.bulk_add(&range(0..4000), &flat, None).unwrap();
        let queries: Vec<Vec<f32>> = (0..40).map(|_| common::gaussian(&mut rng, WIDE)).collect();
        let answers = |db: &Database| answers_of(db, &queries, 10, 200);
        let before = answers(&db);
        db.seal().unwrap();
        drop(db);
        let rows_bytes = (4000 * WIDE * 4) as u64;
        for mode in [
            VectorStorage::Memory,
            VectorStorage::Mmap,
            VectorStorage::Disk,
        ] {
            let what = format!("{metric:?} {mode:?}");
            // Each mode on a copy of the sealed database (the writes below change it).
            let copy = dir.path().join(mode.name());
            copy_dir(&path, &copy);
            let db = open_with_vectors(&copy, mode);
            assert!(
                matches!(db.load_source().unwrap(), LoadSource::Sealed { .. }),
                "{what}"
            );
            assert_eq!(db.config().vectors, mode, "{what}");
            assert_eq!(answers(&db), before, "{what}: answers after the open");
            let stats = db.stats().unwrap();
            assert_eq!(
                stats.mapped_bytes == 0,
                mode == VectorStorage::Memory,
                "{what}"
            );
            if let Some(resident) = stats.mapped_resident_bytes {
                match mode {
                    // The codes (a quarter of the rows) and a few pages the open wrote.
                    VectorStorage::Disk => {
                        assert!(resident < rows_bytes / 2, "{what}: {resident} resident")
                    }
                    VectorStorage::Mmap => {
                        assert!(resident > rows_bytes / 2, "{what}: {resident} resident")
                    }
                    VectorStorage::Memory => assert_eq!(resident, 0, "{what}"),
                }
            }
            // Writes after the open: every hit's distance is the metric on its row, and
            // recall against brute force holds.
            let mut model = rows.clone();
            let mut flat = Vec::new();
            let new_ids = range(10_000..10_300);
            for &i in &new_ids {
                let v: Vec<f32> = common::gaussian(&mut rng, WIDE);
                flat.extend_from_slice(&v);
                model.insert(i, v);
            }
            db.bulk_add(&new_ids, &flat, None).unwrap();
            let replaced = range(0..100);
            let mut flat = Vec::new();
            for &i in &replaced {
                let v: Vec<f32> = common::gaussian(&mut rng, WIDE);
                flat.extend_from_slice(&v);
                model.insert(i, v);
            }
            let keys: Vec<Id> = replaced.iter().map(|&i| Id::Int(i)).collect();
            db.put(
                PutMode::Upsert,
                &keys,
                &flat,
                vec![None; 100],
                vec![None; 100],
            )
            .unwrap();
            let gone: Vec<u64> = (100..4000).step_by(9).collect();
            db.bulk_remove(&gone).unwrap();
            for g in &gone {
                model.remove(g);
            }
            check_against(&db, metric, &model, &queries, 400, &what);
        }
    }
    // Refused: a flat index, a metric the walk reads rows for.
    for (index, metric) in [
        (IndexType::Flat, DistanceMetric::Euclidean),
        (IndexType::Hnsw, DistanceMetric::Manhattan),
    ] {
        let mut c = DatabaseConfig::new(8).unwrap();
        c.index_type = index;
        c.distance_metric = metric;
        c.vectors = VectorStorage::Disk;
        assert!(
            matches!(c.validate(), Err(nusterdb_core::Error::InvalidArgument(_))),
            "{index:?} {metric:?}"
        );
    }
}
