//! `restore_snapshot_in_place`: the open database rolled back to a snapshot. Checked
//! against a model kept here (a `BTreeMap` of every record as written): the restored
//! state equals the snapshot's exactly (ids, vectors, metadata, documents, string ids,
//! the payload index), writes afterwards work and survive a reopen, every snapshot is
//! kept, refused calls change nothing, an I/O failure at every step of the protocol
//! leaves a database that opens as before or as the snapshot (never a mix), threads
//! reading meanwhile see one state or the other, and a follower's refresh loads the
//! restored state. Also `restore_snapshot_to(.., keep_snapshots)`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nusterdb_core::db::{GraphLoad, Include, PutMode, Selection};
use nusterdb_core::filter::Filter;
use nusterdb_core::rng::SplitMix64;
use nusterdb_core::snapshot::{self, MANIFEST, RESTORE_MARKER};
use nusterdb_core::storage::fileio::{FaultMode, FaultyIo, FileIo, OsIo};
use nusterdb_core::{
    Database, DatabaseConfig, Error, Id, IdType, IndexType, Location, Metadata, Value,
};

const DIM: usize = 8;

/// One stored record: vector, metadata, document.
type Row = (Vec<f32>, Metadata, Option<String>);
/// Every record, by id.
type Model = BTreeMap<Id, Row>;

fn config(index: IndexType, ids: IdType) -> DatabaseConfig {
    let mut c = DatabaseConfig::new(DIM).unwrap();
    c.index_type = index;
    c.id_type = ids;
    c.hnsw.max_nb_connection = 8;
    c.hnsw.ef_construction = 40;
    c
}

fn at(p: &Path) -> Location {
    Location::Path(p.to_path_buf())
}

fn id_of(ids: IdType, i: u64) -> Id {
    match ids {
        IdType::Int => Id::from(i),
        IdType::Str => Id::from(format!("rec/{i:05}-é")),
    }
}

/// Writes `keys` (upserting) with fresh random rows; every other row gets the `k` field
/// (so a filter on it checks the payload index), every third no document.
fn write(db: &Database, model: &mut Model, ids: IdType, keys: &[u64], rng: &mut SplitMix64) {
    let id_list: Vec<Id> = keys.iter().map(|&k| id_of(ids, k)).collect();
    let mut data = Vec::new();
    let mut metas = Vec::new();
    let mut docs = Vec::new();
    for &k in keys {
        let v: Vec<f32> = (0..DIM).map(|_| rng.next_gaussian() as f32).collect();
        let mut m = Metadata::new();
        m.set("n", Value::Int(rng.next_u64() as i64 >> 8)).unwrap();
        if k % 2 == 0 {
            m.set("k", Value::Str(format!("even {k}"))).unwrap();
        }
        let doc = (k % 3 != 0).then(|| format!("document {k} {}", rng.next_u64()));
        data.extend_from_slice(&v);
        metas.push(Some(m.clone()));
        docs.push(doc.clone());
        model.insert(id_of(ids, k), (v, m, doc));
    }
    db.put(PutMode::Upsert, &id_list, &data, metas, docs)
        .unwrap();
}

fn remove(db: &Database, model: &mut Model, ids: IdType, keys: &[u64]) {
    let id_list: Vec<Id> = keys.iter().map(|&k| id_of(ids, k)).collect();
    db.delete(&id_list).unwrap();
    for id in id_list {
        model.remove(&id);
    }
}

/// The database's records, read back whole.
fn contents(db: &Database) -> Model {
    db.select(Selection::default(), Include::ALL)
        .unwrap()
        .into_iter()
        .map(|r| (r.id, (r.vector.unwrap(), r.metadata.unwrap(), r.document)))
        .collect()
}

/// Metadata as compared: the fields only (timestamps and versions are the store's).
fn fields(m: &Metadata) -> Vec<(String, Value)> {
    m.fields()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn same(a: &Model, b: &Model) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((ia, ra), (ib, rb))| {
            ia == ib && ra.0 == rb.0 && fields(&ra.1) == fields(&rb.1) && ra.2 == rb.2
        })
}

/// Checks every way of reading the database against `model`: the full read, each id's
/// vector, metadata and document, the id list, the count, a filter on the payload
/// index, and a search for each stored vector finding a record with that vector.
fn check(db: &Database, model: &Model, what: &str) {
    assert!(same(&contents(db), model), "{what}: contents differ");
    assert_eq!(db.count().unwrap(), model.len(), "{what}");
    let ids: Vec<Id> = model.keys().cloned().collect();
    assert_eq!(db.ids().unwrap(), ids, "{what}");
    for (id, (v, m, doc)) in model {
        assert_eq!(
            db.vector_of(id).unwrap().as_ref(),
            Some(v),
            "{what}: {id:?}"
        );
        assert_eq!(
            fields(&db.metadata_of(id).unwrap().unwrap()),
            fields(m),
            "{what}: {id:?}"
        );
        assert_eq!(&db.get_document(id).unwrap(), doc, "{what}: {id:?}");
    }
    let with_k = model.values().filter(|r| r.1.get("k").is_some()).count();
    let filter = Filter::Exists {
        key: "k".into(),
        exists: true,
    };
    assert_eq!(db.count_where(Some(&filter)).unwrap(), with_k, "{what}");
    for (v, _, _) in model.values().take(20) {
        let hits = db
            .search_records(v, 1, None, Some(200), Include::ALL)
            .unwrap();
        let (rec, dist) = &hits[0];
        assert!(dist.abs() < 1e-4, "{what}: distance {dist}");
        assert_eq!(rec.vector.as_ref(), Some(v), "{what}");
    }
}

/// The names of the snapshots of `db`.
fn snapshot_names(db: &Database) -> Vec<String> {
    db.list_snapshots()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect()
}

/// Leftovers of the protocol in the database directory: the marker, its temporary
/// file, staging directories.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(RESTORE_MARKER) || n.starts_with(".in-place-restore-"))
        .collect()
}

/// A database with three states: `a` and `b` taken as snapshots, `c` live.
struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    ids: IdType,
    a: Model,
    b: Model,
    c: Model,
    rng: SplitMix64,
}

fn fixture(index: IndexType, ids: IdType, n: u64, seed: u64) -> (Fixture, Database) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::open(at(&path), Some(config(index, ids)), false).unwrap();
    let mut rng = SplitMix64::new(seed);
    let mut model = Model::new();
    write(&db, &mut model, ids, &(0..n).collect::<Vec<_>>(), &mut rng);
    let a = model.clone();
    db.snapshot("a", &Metadata::new()).unwrap();
    // b: some removed, some replaced, some new.
    remove(&db, &mut model, ids, &(0..n / 4).collect::<Vec<_>>());
    write(
        &db,
        &mut model,
        ids,
        &(n / 2..n / 2 + n / 8).collect::<Vec<_>>(),
        &mut rng,
    );
    write(
        &db,
        &mut model,
        ids,
        &(n..n + n / 4).collect::<Vec<_>>(),
        &mut rng,
    );
    let b = model.clone();
    db.snapshot("b", &Metadata::new()).unwrap();
    remove(&db, &mut model, ids, &(n / 4..n / 2).collect::<Vec<_>>());
    write(
        &db,
        &mut model,
        ids,
        &(2 * n..2 * n + n / 3).collect::<Vec<_>>(),
        &mut rng,
    );
    let c = model;
    let fx = Fixture {
        _dir: dir,
        path,
        ids,
        a,
        b,
        c,
        rng,
    };
    (fx, db)
}

#[test]
fn the_restored_state_is_the_snapshots_and_stays_usable() {
    for (index, ids) in [
        (IndexType::Flat, IdType::Int),
        (IndexType::Hnsw, IdType::Int),
        (IndexType::Flat, IdType::Str),
        (IndexType::Hnsw, IdType::Str),
    ] {
        let what = format!("{index:?}/{ids:?}");
        let (mut fx, db) = fixture(index, ids, 200, 11);
        check(&db, &fx.c, &format!("{what} before"));
        db.restore_snapshot_in_place("a").unwrap();
        check(&db, &fx.a, &format!("{what} restored a"));
        if index == IndexType::Hnsw {
            assert!(
                matches!(db.graph_load().unwrap(), GraphLoad::Loaded { .. }),
                "{what}: the snapshot's graph file is loaded: {:?}",
                db.graph_load()
            );
        }
        // Every snapshot kept, the newer one too, and it restores in turn.
        assert_eq!(snapshot_names(&db), ["a", "b"], "{what}");
        db.restore_snapshot_in_place("b").unwrap();
        check(&db, &fx.b, &format!("{what} restored b"));
        assert!(leftovers(&fx.path).is_empty(), "{what}");
        // Writes after the restore, then a reopen.
        let mut model = fx.b.clone();
        write(&db, &mut model, ids, &[5000, 5001, 7], &mut fx.rng);
        remove(&db, &mut model, fx.ids, &[150]);
        check(&db, &model, &format!("{what} written after"));
        db.snapshot("c", &Metadata::new()).unwrap();
        db.close();
        let db = Database::open(at(&fx.path), None, false).unwrap();
        check(&db, &model, &format!("{what} reopened"));
        assert_eq!(snapshot_names(&db), ["a", "b", "c"], "{what}");
        // A restore of the snapshot taken after a restore.
        db.restore_snapshot_in_place("a").unwrap();
        db.restore_snapshot_in_place("c").unwrap();
        check(&db, &model, &format!("{what} restored c"));
    }
}

#[test]
fn refused_restores_change_nothing() {
    let (fx, db) = fixture(IndexType::Hnsw, IdType::Int, 120, 12);
    let unchanged = |db: &Database, what: &str| {
        check(db, &fx.c, what);
        assert_eq!(snapshot_names(db), ["a", "b"], "{what}");
        assert!(leftovers(&fx.path).is_empty(), "{what}");
    };
    // Unknown and invalid names.
    for name in ["nope", "../a", ""] {
        let e = db.restore_snapshot_in_place(name).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{name}: {e}");
        unchanged(&db, name);
    }
    // A follower.
    let follower = Database::open(at(&fx.path), None, true).unwrap();
    assert!(matches!(
        follower.restore_snapshot_in_place("a").unwrap_err(),
        Error::ReadOnly
    ));
    drop(follower);
    unchanged(&db, "follower");
    // A damaged manifest.
    let snaps = snapshot::snapshots_dir(&fx.path);
    let manifest = snaps.join("a").join(MANIFEST);
    let good = std::fs::read(&manifest).unwrap();
    let mut bad = good.clone();
    bad[10] ^= 0xff;
    std::fs::write(&manifest, &bad).unwrap();
    let e = db.restore_snapshot_in_place("a").unwrap_err();
    assert!(matches!(e, Error::Corruption { .. }), "{e}");
    std::fs::write(&manifest, &good).unwrap();
    unchanged(&db, "damaged manifest");
    // Damaged contents: the MANIFEST RocksDB needs is gone (the checkpoint's own copy,
    // not a file shared with the live database).
    let b = snaps.join("b");
    let rocks_manifest = std::fs::read_dir(&b)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("MANIFEST-")
        })
        .unwrap();
    std::fs::remove_file(&rocks_manifest).unwrap();
    assert!(db.restore_snapshot_in_place("b").is_err());
    unchanged(&db, "damaged contents");
    // A closed handle.
    db.close();
    assert!(matches!(
        db.restore_snapshot_in_place("a").unwrap_err(),
        Error::Closed
    ));
    let db = Database::open(at(&fx.path), None, false).unwrap();
    unchanged(&db, "closed");
    // In memory: no snapshots at all.
    let mem = Database::open(
        Location::Memory,
        Some(config(IndexType::Flat, IdType::Int)),
        false,
    )
    .unwrap();
    assert!(matches!(
        mem.restore_snapshot_in_place("a").unwrap_err(),
        Error::InvalidArgument(_)
    ));
}

/// An I/O failure at each step of the restore in turn (once, and from then on): the
/// call fails or completes; a handle that failed before the switch still answers the
/// old state; and the database then opens as exactly the old state or the snapshot's —
/// the snapshot's whenever the call succeeded — with both snapshots and no leftovers.
#[test]
fn a_failure_at_every_step_leaves_the_old_state_or_the_new() {
    let (fx, db) = fixture(IndexType::Hnsw, IdType::Str, 60, 13);
    db.close();
    drop(db);
    let pristine = tempfile::tempdir().unwrap();
    let copy = |from: &Path, to: &Path| {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
        assert!(status.success());
    };
    let base = pristine.path().join("db");
    copy(&fx.path, &base);
    let (mut olds, mut news, mut after_commit) = (0, 0, 0);
    for mode in [FaultMode::Once, FaultMode::Persistent] {
        for n in 1.. {
            let work = tempfile::tempdir().unwrap();
            let path = work.path().join("db");
            copy(&base, &path);
            let io = Arc::new(FaultyIo::new(0, mode, io::ErrorKind::Other));
            let db =
                Database::open_with_io(at(&path), None, false, Arc::clone(&io) as Arc<dyn FileIo>)
                    .unwrap();
            io.rearm(n);
            let result = db.restore_snapshot_in_place("a");
            let faulted = io.has_failed();
            let what = format!("{mode:?} fault at operation {n}: {result:?}");
            // A failure after the commit closes the handle; the restore is decided.
            let committed = result.is_ok() || db.is_closed();
            match &result {
                Ok(()) => check(&db, &fx.a, &what),
                Err(_) if !db.is_closed() => check(&db, &fx.c, &what),
                Err(e) => assert!(matches!(e, Error::Storage(_)), "{what}"),
            }
            after_commit += usize::from(result.is_err() && committed);
            drop(db);
            let db = Database::open_with_io(at(&path), None, false, Arc::new(OsIo)).unwrap();
            let now = contents(&db);
            if same(&now, &fx.a) {
                news += 1;
            } else {
                assert!(!committed, "{what}: committed but not restored");
                assert!(
                    same(&now, &fx.c),
                    "{what}: neither the old state nor the new"
                );
                olds += 1;
            }
            assert_eq!(snapshot_names(&db), ["a", "b"], "{what}");
            drop(db);
            assert!(
                leftovers(&path).is_empty(),
                "{what}: {:?}",
                leftovers(&path)
            );
            if !faulted {
                assert!(result.is_ok(), "{what}");
                break;
            }
            assert!(n < 10_000, "the restore never completed");
        }
    }
    // Both outcomes were reached: failures before and after the commit.
    assert!(olds > 0 && news > 1, "old {olds}, new {news}");
    assert!(after_commit > 0, "no failure hit the roll-forward");
    eprintln!("fault injection: {olds} old states, {news} restored ({after_commit} failed after the commit)");
}

/// Threads reading through the same handle during restores see one whole state: every
/// full read equals one of the models.
#[test]
fn readers_during_a_restore_see_one_state_or_the_other() {
    let (fx, db) = fixture(IndexType::Flat, IdType::Int, 100, 14);
    let db = Arc::new(db);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
            let models = [fx.a.clone(), fx.b.clone(), fx.c.clone()];
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) {
                    let now = contents(&db);
                    assert!(models.iter().any(|m| same(&now, m)), "a mixed state");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for name in ["a", "b", "a", "b", "a"] {
        db.restore_snapshot_in_place(name).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    check(&db, &fx.a, "after the races");
}

/// A follower keeps its state until it refreshes; the refresh loads the restored state.
#[test]
fn a_followers_refresh_loads_the_restored_state() {
    let (fx, db) = fixture(IndexType::Hnsw, IdType::Int, 100, 15);
    let follower = Database::open(at(&fx.path), None, true).unwrap();
    check(&follower, &fx.c, "follower before");
    db.restore_snapshot_in_place("a").unwrap();
    assert_eq!(follower.count().unwrap(), fx.c.len());
    follower.refresh().unwrap();
    check(&follower, &fx.a, "follower refreshed");
    // A follower opened afterwards, too.
    let late = Database::open(at(&fx.path), None, true).unwrap();
    check(&late, &fx.a, "late follower");
}

/// A follower meets a committed restore that was not completed (the writer died
/// between the commit and the end): it waits, then reports it; a writer's open
/// completes it, after which the follower opens the restored state.
#[test]
fn an_interrupted_restore_is_completed_by_the_next_writer_open() {
    let (fx, db) = fixture(IndexType::Flat, IdType::Int, 60, 16);
    let path = fx.path.clone();
    // Faults from the n-th operation on, n growing until one hits after the commit.
    drop(db);
    let io = Arc::new(FaultyIo::new(
        0,
        FaultMode::Persistent,
        io::ErrorKind::Other,
    ));
    let db =
        Database::open_with_io(at(&path), None, false, Arc::clone(&io) as Arc<dyn FileIo>).unwrap();
    // The first failure point whose error is the post-commit one.
    let mut n = 1;
    loop {
        io.rearm(n);
        match db.restore_snapshot_in_place("a") {
            Err(Error::Storage(_)) if db.is_closed() => break,
            Err(_) => n += 1,
            Ok(()) => panic!("the restore completed under a persistent fault"),
        }
    }
    drop(db);
    assert!(path.join(RESTORE_MARKER).exists());
    let e = Database::open(at(&path), None, true).err().unwrap();
    assert!(matches!(e, Error::Storage(_)), "{e}");
    let db = Database::open(at(&path), None, false).unwrap();
    check(&db, &fx.a, "completed at open");
    assert!(leftovers(&path).is_empty());
    let follower = Database::open(at(&path), None, true).unwrap();
    check(&follower, &fx.a, "follower after completion");
}

#[test]
fn keep_snapshots_gives_the_copy_the_snapshot_list() {
    let (fx, db) = fixture(IndexType::Hnsw, IdType::Str, 80, 17);
    let out = tempfile::tempdir().unwrap();
    let plain = out.path().join("plain");
    db.restore_snapshot_to("a", &plain, false).unwrap();
    let kept = out.path().join("kept");
    db.restore_snapshot_to("b", &kept, true).unwrap();
    drop(db);
    let p = Database::open(at(&plain), None, false).unwrap();
    check(&p, &fx.a, "plain copy");
    assert!(snapshot_names(&p).is_empty());
    let k = Database::open(at(&kept), None, false).unwrap();
    check(&k, &fx.b, "copy with snapshots");
    assert_eq!(snapshot_names(&k), ["a", "b"]);
    // The copied snapshots are whole: one restores in place in the copy.
    k.restore_snapshot_in_place("a").unwrap();
    check(&k, &fx.a, "copy rolled back");
    // And the source's snapshots are untouched.
    let src = Database::open(at(&fx.path), None, false).unwrap();
    check(&src, &fx.c, "source");
    assert_eq!(snapshot_names(&src), ["a", "b"]);
}

/// A follower refreshing over and over while the writer restores over and over: every
/// refresh loads one whole state (never files of two) and none fails — a refresh waits
/// while a restore's marker is there and starts again when `CURRENT` was replaced
/// under it. (Without that, about one run in two had a refresh fail on files renamed or
/// removed under it.)
#[test]
fn a_follower_refreshing_during_restores_loads_whole_states() {
    let (fx, db) = fixture(IndexType::Flat, IdType::Str, 100, 18);
    let follower = Database::open(at(&fx.path), None, true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let models = [fx.a.clone(), fx.b.clone(), fx.c.clone()];
    let refresher = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut loaded, mut failed) = (0, 0);
            while !stop.load(Ordering::Relaxed) || loaded == 0 {
                match follower.refresh() {
                    Ok(()) => loaded += 1,
                    Err(e) => {
                        assert!(
                            matches!(
                                e,
                                Error::Storage(_) | Error::Corruption { .. } | Error::Io { .. }
                            ),
                            "{e}"
                        );
                        failed += 1;
                    }
                }
                let now = contents(&follower);
                assert!(models.iter().any(|m| same(&now, m)), "a mixed state");
            }
            (loaded, failed)
        })
    };
    for round in 0..40 {
        db.restore_snapshot_in_place(["a", "b"][round % 2]).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let (loaded, failed) = refresher.join().unwrap();
    eprintln!("follower during restores: {loaded} refreshes loaded a whole state, {failed} failed");
    assert_eq!(failed, 0);
}
