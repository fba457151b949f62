//! Snapshots under races and leftovers: creators, restorers, deleters and the pruner on
//! threads at once; automatic retention that keeps the caller's snapshots; snapshots
//! that refuse writer opens; damaged manifests that are reported, not fatal; and the
//! on-disk size counting hard-linked files once. Each test checks every round's outcome
//! against what must hold (one winner, a complete copy or a missing source), not timing.
//! Seeds are printed; `NUSTERDB_TEST_SEED=<u64>` replays a run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};

use nusterdb_core::rng::SplitMix64;
use nusterdb_core::snapshot::{self, AUTO_FIELD, MANIFEST};
use nusterdb_core::storage::fileio::{FileIo, OsIo, WriteFile};
use nusterdb_core::{Database, DatabaseConfig, Error, Location, Metadata, Value};

const DIM: usize = 16;
const ROUNDS: usize = 30;

fn seed(test: &str) -> u64 {
    let seed = std::env::var("NUSTERDB_TEST_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0x736e_6170_0000_0001);
    eprintln!("{test}: seed {seed} (replay with NUSTERDB_TEST_SEED={seed})");
    seed
}

fn rows(rng: &mut SplitMix64, n: usize) -> Vec<f32> {
    (0..n * DIM).map(|_| rng.next_gaussian() as f32).collect()
}

fn open_new(path: &Path) -> Database {
    let cfg = DatabaseConfig::new(DIM).unwrap();
    Database::open(Location::Path(path.to_path_buf()), Some(cfg), false).unwrap()
}

fn open_with(path: &Path, io: Arc<dyn FileIo>) -> Database {
    Database::open_with_io(Location::Path(path.to_path_buf()), None, false, io).unwrap()
}

/// Adds ids `first..first + n` with the rows `data[first*DIM..]`.
fn add(db: &Database, data: &[f32], first: usize, n: usize) {
    let ids: Vec<u64> = (first as u64..(first + n) as u64).collect();
    db.bulk_add(&ids, &data[first * DIM..(first + n) * DIM], None)
        .unwrap();
}

/// Checks that the database at `path` opens as a writer and holds exactly ids
/// `0..count` with their rows from `data`.
fn check_restored(path: &Path, data: &[f32], count: usize) {
    let db = Database::open(Location::Path(path.to_path_buf()), None, false)
        .unwrap_or_else(|e| panic!("restored copy {} does not open: {e}", path.display()));
    assert_eq!(db.count().unwrap(), count, "{}", path.display());
    assert_eq!(
        db.list_ids().unwrap(),
        (0..count as u64).collect::<Vec<_>>()
    );
    for id in [0, count / 2, count - 1] {
        assert_eq!(
            db.get(id as u64).unwrap().unwrap(),
            &data[id * DIM..(id + 1) * DIM]
        );
    }
}

/// The entries of `dir` whose names contain `part`.
fn entries_with(dir: &Path, part: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(part))
        .collect();
    out.sort();
    out
}

fn is_missing_snapshot(e: &Error, name: &str) -> bool {
    matches!(e, Error::InvalidArgument(m) if m == &format!("no snapshot named {name:?}"))
}

/// Two threads take a snapshot of one name at once: exactly one succeeds, the other
/// gets `AlreadyExists`, and the snapshot is listed once and restores.
#[test]
fn racing_creators_of_one_name_exactly_one_wins() {
    let mut rng = SplitMix64::new(seed("racing_creators_of_one_name_exactly_one_wins"));
    let dir = tempfile::tempdir().unwrap();
    let data = rows(&mut rng, 2000);
    let db = Arc::new(open_new(&dir.path().join("db")));
    add(&db, &data, 0, 2000);
    for round in 0..ROUNDS {
        let name = format!("x{round}");
        let barrier = Arc::new(Barrier::new(2));
        let results: Vec<_> = (0..2)
            .map(|_| {
                let (db, barrier, name) = (Arc::clone(&db), Arc::clone(&barrier), name.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    db.snapshot(&name, &Metadata::new())
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        for r in &results {
            if let Err(e) = r {
                assert!(
                    matches!(e, Error::AlreadyExists { .. }),
                    "round {round}: {e:?}"
                );
                assert!(e.to_string().contains("already exists"), "{e}");
            }
        }
        let listed: Vec<String> = db
            .list_snapshots()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(listed.iter().filter(|n| **n == name).count(), 1);
    }
    let snaps = dir.path().join("db").join("snapshots");
    assert_eq!(entries_with(&snaps, "."), Vec::<String>::new());
    let target = dir.path().join("restored");
    db.restore_snapshot("x7", &target).unwrap();
    check_restored(&target, &data, 2000);
    eprintln!("racing creators: {ROUNDS} rounds, one winner each");
}

/// One thread deletes and re-creates a snapshot (with more vectors each time) while
/// another restores it: every restore that succeeds is a complete copy of one
/// generation, and every one that fails says the snapshot is missing.
#[test]
fn restores_racing_delete_and_recreate_are_complete_or_report_the_snapshot_missing() {
    let mut rng = SplitMix64::new(seed(
        "restores_racing_delete_and_recreate_are_complete_or_report_the_snapshot_missing",
    ));
    let dir = tempfile::tempdir().unwrap();
    let data = rows(&mut rng, 3000 + ROUNDS * 10);
    let db = Arc::new(open_new(&dir.path().join("db")));
    add(&db, &data, 0, 3000);
    db.snapshot("s", &Metadata::new()).unwrap();
    let mut ok = 0;
    let mut missing = 0;
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(2));
        let churn = {
            let (db, barrier) = (Arc::clone(&db), Arc::clone(&barrier));
            let data = data.clone();
            std::thread::spawn(move || {
                barrier.wait();
                db.delete_snapshot("s").unwrap();
                add(&db, &data, 3000 + round * 10, 10);
                db.snapshot("s", &Metadata::new()).unwrap();
            })
        };
        let target = dir.path().join(format!("r{round}"));
        barrier.wait();
        let r = db.restore_snapshot("s", &target);
        churn.join().unwrap();
        match r {
            Ok(()) => {
                // The generation before or after this round's churn, complete.
                let count = Database::open(Location::Path(target.clone()), None, true)
                    .unwrap()
                    .count()
                    .unwrap();
                assert!(
                    count == 3000 + round * 10 || count == 3000 + (round + 1) * 10,
                    "round {round}: {count}"
                );
                check_restored(&target, &data, count);
                ok += 1;
            }
            Err(e) => {
                assert!(is_missing_snapshot(&e, "s"), "round {round}: {e:?}");
                assert!(!target.exists(), "round {round}");
                missing += 1;
            }
        }
        assert_eq!(
            entries_with(dir.path(), ".restoring-"),
            Vec::<String>::new()
        );
    }
    eprintln!(
        "restore vs delete+create: {ROUNDS} rounds, {ok} complete copies, {missing} reported the snapshot missing, 0 unusable"
    );
}

/// Two threads restore one snapshot into one new path: exactly one succeeds, the other
/// gets `AlreadyExists`; the copy is complete and nothing is left beside it.
#[test]
fn racing_restores_into_one_target_exactly_one_wins() {
    let mut rng = SplitMix64::new(seed("racing_restores_into_one_target_exactly_one_wins"));
    let dir = tempfile::tempdir().unwrap();
    let data = rows(&mut rng, 2000);
    let db = Arc::new(open_new(&dir.path().join("db")));
    add(&db, &data, 0, 2000);
    db.snapshot("s", &Metadata::new()).unwrap();
    let targets = dir.path().join("targets");
    std::fs::create_dir(&targets).unwrap();
    for round in 0..ROUNDS {
        let target = targets.join(format!("r{round}"));
        let barrier = Arc::new(Barrier::new(2));
        let results: Vec<_> = (0..2)
            .map(|_| {
                let (db, barrier, target) = (Arc::clone(&db), Arc::clone(&barrier), target.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    db.restore_snapshot("s", &target)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "round {round}: {results:?}"
        );
        for e in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                matches!(e, Error::AlreadyExists { path, .. } if *path == target),
                "round {round}: {e:?}"
            );
        }
        check_restored(&target, &data, 2000);
        assert_eq!(entries_with(&targets, ".restoring-"), Vec::<String>::new());
    }
    eprintln!("racing restorers: {ROUNDS} rounds, one winner each");
}

/// A `FileIo` that stops at the first file it is asked to create once armed, until
/// released: a restore paused in the middle of its copy.
#[derive(Debug, Default)]
struct PauseIo {
    armed: AtomicBool,
    reached: Mutex<Option<mpsc::Sender<()>>>,
    release: Mutex<Option<mpsc::Receiver<()>>>,
}

impl PauseIo {
    /// Arms the pause; returns (paused, release).
    fn arm(&self) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (reached_tx, reached_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        *self.reached.lock().unwrap() = Some(reached_tx);
        *self.release.lock().unwrap() = Some(release_rx);
        self.armed.store(true, Ordering::SeqCst);
        (reached_rx, release_tx)
    }
}

impl FileIo for PauseIo {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        if self.armed.swap(false, Ordering::SeqCst) {
            if let Some(tx) = self.reached.lock().unwrap().take() {
                tx.send(()).unwrap();
            }
            if let Some(rx) = self.release.lock().unwrap().take() {
                rx.recv().unwrap();
            }
        }
        OsIo.create(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        OsIo.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsIo.sync_dir(dir)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        OsIo.read(path)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        OsIo.remove_file(path)
    }
}

/// A delete of a snapshot being restored waits until the copy is done (the snapshot is
/// pinned), and the restore is complete.
#[test]
fn delete_waits_for_a_restore_in_progress() {
    let mut rng = SplitMix64::new(seed("delete_waits_for_a_restore_in_progress"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let data = rows(&mut rng, 2000);
    drop(open_new(&path));
    let io = Arc::new(PauseIo::default());
    let db = Arc::new(open_with(&path, io.clone()));
    add(&db, &data, 0, 2000);
    db.snapshot("s", &Metadata::new()).unwrap();
    let (paused, release) = io.arm();
    let target = dir.path().join("restored");
    let restorer = {
        let (db, target) = (Arc::clone(&db), target.clone());
        std::thread::spawn(move || db.restore_snapshot("s", &target))
    };
    paused.recv().unwrap();
    let released = Arc::new(AtomicBool::new(false));
    let deleter = {
        let (db, released) = (Arc::clone(&db), Arc::clone(&released));
        std::thread::spawn(move || {
            db.delete_snapshot("s").unwrap();
            // Without the pin the delete would be done while the copy is paused.
            assert!(
                released.load(Ordering::SeqCst),
                "deleted during the restore"
            );
        })
    };
    // Time for the deleter to reach the pin (the order is checked, not the time).
    std::thread::sleep(std::time::Duration::from_millis(300));
    released.store(true, Ordering::SeqCst);
    release.send(()).unwrap();
    restorer.join().unwrap().unwrap();
    deleter.join().unwrap();
    check_restored(&target, &data, 2000);
    assert!(db.list_snapshots().unwrap().is_empty());
}

/// A fake snapshot maker for the snapshot module alone: the "checkpoint" is a directory
/// with one file and the lock file.
fn fake_create(db: &Path, name: &str, auto: bool) -> snapshot::SnapshotInfo {
    snapshot::create(&OsIo, db, name, &Metadata::new(), 1, auto, None, |dir| {
        std::fs::create_dir(dir).unwrap();
        std::fs::write(dir.join("DATA"), name.as_bytes()).unwrap();
        Ok(())
    })
    .unwrap()
}

/// Writes a snapshot directory the way earlier versions did: a manifest without the
/// automatic marker.
fn legacy_snapshot(db: &Path, name: &str) {
    let dir = snapshot::snapshots_dir(db).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("nusterdb.lock"), b"").unwrap();
    let mut m = Metadata::new();
    m.set("name", Value::Str(name.into())).unwrap();
    m.set("vector_count", Value::Int(1)).unwrap();
    std::fs::write(dir.join(MANIFEST), snapshot::encode_manifest(&m)).unwrap();
}

/// Retention keeps the newest automatic snapshots and never touches the caller's,
/// whatever their names; a manifest without the marker is automatic only under an
/// exact auto name.
#[test]
fn automatic_retention_prunes_only_automatic_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path();
    let mine = [
        "auto-keep-this-backup",
        "auto-1700000000-1",
        "auto-",
        "auto-1-x",
    ];
    for name in mine {
        assert!(!fake_create(db, name, false).auto);
    }
    legacy_snapshot(db, "auto-old-backup");
    legacy_snapshot(db, "auto-1600000000-4");
    let listed = snapshot::list(db, None).unwrap();
    let auto_of = |n: &str| listed.iter().find(|s| s.name == n).unwrap().auto;
    assert!(!auto_of("auto-old-backup"));
    assert!(auto_of("auto-1600000000-4"));
    let mut autos = Vec::new();
    for _ in 0..14 {
        let name = snapshot::auto_name();
        assert!(fake_create(db, &name, true).auto);
        autos.push(name);
        snapshot::prune_auto(db, None).unwrap();
    }
    let left: Vec<String> = snapshot::list(db, None)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    for name in mine.iter().chain(&["auto-old-backup"]) {
        assert!(
            left.iter().any(|n| n == name),
            "{name} was pruned: {left:?}"
        );
    }
    // The legacy automatic one is the oldest and went first; then the oldest new ones.
    assert!(!left.iter().any(|n| n == "auto-1600000000-4"));
    let kept: Vec<&String> = left.iter().filter(|n| autos.contains(n)).collect();
    assert_eq!(kept, autos[4..].iter().collect::<Vec<_>>());
    // The caller's metadata may not forge the marker.
    let mut forged = Metadata::new();
    forged.set(AUTO_FIELD, Value::Bool(true)).unwrap();
    let r = snapshot::create(&OsIo, db, "forged", &forged, 1, false, None, |_| Ok(()));
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
}

/// A snapshot being restored is skipped by pruning until the restore is done.
#[test]
fn pruning_skips_a_snapshot_being_restored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let mut names = Vec::new();
    for _ in 0..(snapshot::AUTO_RETENTION + 1) {
        let name = snapshot::auto_name();
        fake_create(&db, &name, true);
        names.push(name);
    }
    let io = Arc::new(PauseIo::default());
    let (paused, release) = io.arm();
    let target = dir.path().join("restored");
    let restorer = {
        let (io, db, target, oldest) = (io.clone(), db.clone(), target.clone(), names[0].clone());
        std::thread::spawn(move || snapshot::restore(io.as_ref(), &db, &oldest, &target))
    };
    paused.recv().unwrap();
    assert_eq!(
        snapshot::prune_auto(&db, None).unwrap(),
        0,
        "pruned while pinned"
    );
    release.send(()).unwrap();
    restorer.join().unwrap().unwrap();
    assert_eq!(
        std::fs::read(target.join("DATA")).unwrap(),
        names[0].as_bytes()
    );
    assert_eq!(snapshot::prune_auto(&db, None).unwrap(), 1);
    assert!(snapshot::find(&db, &names[0]).is_err());
}

/// A snapshot directory refuses writer opens (with or without a config) and a
/// read-only open leaves every file of it byte-identical; the restore returns the data
/// as snapshotted.
#[test]
fn a_snapshot_refuses_writer_opens_and_read_only_opens_change_nothing() {
    let mut rng = SplitMix64::new(seed(
        "a_snapshot_refuses_writer_opens_and_read_only_opens_change_nothing",
    ));
    let dir = tempfile::tempdir().unwrap();
    let data = rows(&mut rng, 1500);
    let db = open_new(&dir.path().join("db"));
    add(&db, &data, 0, 1000);
    let snap = db.snapshot("s", &Metadata::new()).unwrap().path;
    add(&db, &data, 1000, 500);
    let files = |p: &Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = files(&snap);
    for config in [None, Some(DatabaseConfig::new(DIM).unwrap())] {
        let r = Database::open(Location::Path(snap.clone()), config, false);
        let e = r.err().expect("a writer open of a snapshot succeeded");
        assert!(matches!(e, Error::SnapshotNotWritable { .. }), "{e:?}");
        assert!(e.to_string().contains("restore_snapshot"), "{e}");
    }
    let ro = Database::open(Location::Path(snap.clone()), None, true).unwrap();
    assert_eq!(ro.count().unwrap(), 1000);
    assert!(matches!(
        ro.add(5000, &[0.0; DIM], None),
        Err(Error::ReadOnly)
    ));
    let q = &data[..DIM];
    assert_eq!(ro.search(q, 1, None, None).unwrap()[0].0, 0);
    drop(ro);
    assert_eq!(
        files(&snap),
        before,
        "a read-only open changed the snapshot"
    );
    let target = dir.path().join("restored");
    db.restore_snapshot("s", &target).unwrap();
    check_restored(&target, &data, 1000);
}

/// One damaged manifest: the other snapshots are listed, the damaged one is reported
/// apart, pruning goes on around it, and delete removes it.
#[test]
fn a_damaged_manifest_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path();
    fake_create(db, "good", false);
    let bad = fake_create(db, "bad", false).path;
    let mut bytes = std::fs::read(bad.join(MANIFEST)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(bad.join(MANIFEST), &bytes).unwrap();
    // A damaged automatic snapshot among more than the retention of good ones.
    let bad_auto = fake_create(db, &snapshot::auto_name(), true).path;
    std::fs::write(bad_auto.join(MANIFEST), b"not a manifest").unwrap();
    for _ in 0..(snapshot::AUTO_RETENTION + 2) {
        fake_create(db, &snapshot::auto_name(), true);
    }
    let listing = snapshot::list_report(db, None).unwrap();
    let mut damaged: Vec<&str> = listing.damaged.iter().map(|d| d.name.as_str()).collect();
    damaged.sort_unstable();
    let bad_auto_name = bad_auto.file_name().unwrap().to_string_lossy().into_owned();
    let mut expected = vec!["bad", bad_auto_name.as_str()];
    expected.sort_unstable();
    assert_eq!(damaged, expected);
    assert!(listing
        .damaged
        .iter()
        .all(|d| d.reason.contains("manifest")));
    assert_eq!(listing.snapshots.len(), 1 + snapshot::AUTO_RETENTION + 2);
    assert_eq!(snapshot::prune_auto(db, None).unwrap(), 2);
    let listing = snapshot::list_report(db, None).unwrap();
    assert_eq!(
        listing.damaged.len(),
        2,
        "pruning removed a damaged snapshot"
    );
    assert_eq!(listing.snapshots.len(), 1 + snapshot::AUTO_RETENTION);
    snapshot::delete(db, "bad").unwrap();
    assert_eq!(snapshot::list_report(db, None).unwrap().damaged.len(), 1);
}

/// What killed creations, deletions and restores leave (staging directories whose owner
/// is gone) is never listed, and the next operation of that kind removes it.
#[test]
fn leftovers_of_killed_operations_are_not_listed_and_are_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    fake_create(&db, "a", false);
    let snaps = snapshot::snapshots_dir(&db);
    // A killed creation and a killed deletion: complete-looking directories inside.
    for stale in [".creating-999999999-1", ".deleting-999999999-2"] {
        let inner = snaps.join(stale).join("db");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::write(inner.join(MANIFEST), b"x").unwrap();
        std::fs::write(snaps.join(stale).join("staging.lock"), b"").unwrap();
    }
    assert_eq!(
        snapshot::list(&db, None)
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect::<Vec<_>>(),
        ["a"]
    );
    fake_create(&db, "b", false);
    assert_eq!(entries_with(&snaps, "."), Vec::<String>::new());
    // A killed restore beside its target.
    let target = dir.path().join("t");
    let stale = dir.path().join("t.restoring-999999999-3");
    std::fs::create_dir_all(stale.join("db")).unwrap();
    std::fs::write(stale.join("db").join("CURRENT"), b"MANIFEST-000001\n").unwrap();
    snapshot::restore(&OsIo, &db, "a", &target).unwrap();
    assert!(!stale.exists());
    assert_eq!(std::fs::read(target.join("DATA")).unwrap(), b"a");
    assert!(!target.join(MANIFEST).exists());
    // The target is taken now: a clear error, and the copy is untouched.
    let again = snapshot::restore(&OsIo, &db, "b", &target);
    assert!(
        matches!(&again, Err(Error::AlreadyExists { path, .. }) if *path == target),
        "{again:?}"
    );
    assert_eq!(std::fs::read(target.join("DATA")).unwrap(), b"a");
}

/// `stats().disk_bytes` counts each file once, however many snapshots link it.
#[cfg(unix)]
#[test]
fn disk_bytes_counts_hard_linked_files_once() {
    use std::collections::HashSet;
    use std::os::unix::fs::MetadataExt;
    fn walk(p: &Path, out: &mut Vec<(PathBuf, std::fs::Metadata)>) {
        for e in std::fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            let m = e.path().symlink_metadata().unwrap();
            if m.is_dir() {
                walk(&e.path(), out);
            } else if m.is_file() {
                out.push((e.path(), m));
            }
        }
    }
    let mut rng = SplitMix64::new(seed("disk_bytes_counts_hard_linked_files_once"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let data = rows(&mut rng, 20_000);
    let db = open_new(&path);
    add(&db, &data, 0, 20_000);
    db.compact_memtables().unwrap();
    for i in 0..4 {
        db.snapshot(&format!("s{i}"), &Metadata::new()).unwrap();
    }
    let disk = db.stats().unwrap().disk_bytes;
    let mut files = Vec::new();
    walk(&path, &mut files);
    let mut seen = HashSet::new();
    let unique: u64 = files
        .iter()
        .filter(|(_, m)| seen.insert((m.dev(), m.ino())))
        .map(|(_, m)| m.len())
        .sum();
    let every_link: u64 = files.iter().map(|(_, m)| m.len()).sum();
    assert!(
        every_link > unique + 3 * 20_000 * DIM as u64 * 4 / 2,
        "the snapshots share no large files: {every_link} vs {unique}"
    );
    assert_eq!(disk, unique, "every link: {every_link}");
}
