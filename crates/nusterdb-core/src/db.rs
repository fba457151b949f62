//! `Database`: the one module that owns the others. It keeps RocksDB (the source of
//! truth), the id map, the vector index and the payload index consistent.
//!
//! Every write is validated completely, then written to RocksDB as one atomic batch
//! (with its change-log entry: `State::write_logged`), and only then made visible in
//! the in-memory structures — so a rejected or failed call changes nothing, and an
//! acknowledged one survives a crash (the in-memory state is rebuilt on open from the
//! last seal and the log since). Readers share a lock; a write excludes other writes
//! throughout, and readers only while it stages, publishes or retires (an HNSW write
//! links new rows and repairs removed ones with readers going on: `records/write.rs`).
//!
//! The methods of [`Database`] are split over files by what they do: `open` (opening
//! and creating), `load` (the maps from a store, for an open, a refresh or a restore in
//! place), `seal` (the segment files) and `replay` (loading them and replaying the log),
//! `follow` (read-only followers and [`Database::refresh`]), `snapshots`, `maintenance`
//! (flush, seal, stats, compaction, verify) and `records` (the record API: its types
//! and reads; the writes in `records/write.rs`, search in `records/search.rs`). This
//! file keeps the handle and its state, the logged write, the helpers the others share,
//! validation, the lock discipline and `close`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Mutex, RwLock, RwLockUpgradableReadGuard, RwLockWriteGuard};
use roaring::RoaringBitmap;

use crate::config::{DatabaseConfig, IndexType};
use crate::error::{Error, Result};
use crate::filter::{Filter, PayloadIndex};
use crate::id_map::IdMap;
use crate::ids::Names;
use crate::index::flat::FlatIndex;
use crate::index::hnsw::HnswIndex;
use crate::index::{IvfIndex, VectorIndex};
use crate::metric::DistanceMetric;
use crate::storage::changelog::{self, Part, Seal};
use crate::storage::codec::{encode_format, FORMAT_VERSION};
use crate::storage::fileio::{write_atomic, FileIo};
use crate::storage::fork::ProcessToken;
use crate::storage::keys::{FORMAT_KEY, LOG_NEXT_KEY, LOG_PREFIX};
use crate::storage::lock::WriterLock;
use crate::storage::Store;
use crate::vector::{check_dims, check_finite, check_magnitude};

mod beside;
pub(crate) mod calibration;
mod follow;
mod load;
pub(crate) use load::decode_graph;
mod maintenance;
mod open;
mod records;
mod replay;
mod seal;
mod snapshots;

pub use calibration::RecallCurve;
pub use records::{Include, MetadataUpdate, PutMode, Record, Selection};
pub use seal::{
    is_segment_file, lists_file, live_slots, part_files, segment_files, segment_files_in,
};

/// Largest n·k a `batch_search` may return (the result arrays are n·k in size).
pub const MAX_BATCH_RESULTS: u64 = 1 << 28;

/// The HNSW graph file in a database (or snapshot) directory.
pub const GRAPH_FILE: &str = "hnsw.graph";

/// What an encrypted graph file's chunks are bound to (`storage::crypto`).
pub(crate) const GRAPH_PURPOSE: &[u8] = b"nusterdb graph";

/// How long a read-only open waits for a database that another process is still
/// creating (its directory holds our lock file but no initialised database yet) before
/// it reports that there is none.
pub const CREATION_WAIT: Duration = Duration::from_secs(10);

/// A graph save is due once this many vectors changed since the last one, or an eighth
/// of the live count if that is more: saving costs O(n), so saves stay a small share
/// of the insertion work, and an open after a crash re-links at most that many.
pub const GRAPH_SAVE_MIN_CHANGES: usize = 4096;

/// How the HNSW graph of an open (or a refresh) came to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GraphLoad {
    /// A flat index, an IVF index whose lists were read from its seal or not trained
    /// yet, or a database in memory.
    NotPersisted,
    /// No graph file: built from the vectors.
    Built,
    /// Loaded from the graph file and brought up to date with RocksDB: `reused` nodes
    /// as saved, `inserted` new or changed vectors linked, `removed` vectors gone
    /// since the save cut out.
    Loaded {
        reused: usize,
        inserted: usize,
        removed: usize,
    },
    /// The graph file was unreadable (damaged, or made with other parameters) and the
    /// graph was rebuilt from the vectors — or an IVF index's lists file was missing or
    /// unusable and its lists were trained again; `reason` says why.
    Rebuilt { reason: String },
}

/// Where and how to open a database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A directory on disk.
    Path(PathBuf),
    /// RocksDB's in-memory environment: same behaviour, no durability.
    Memory,
}

/// Figures from [`Database::stats`].
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub vector_count: u64,
    pub dimension: usize,
    pub index_type: IndexType,
    pub metric: DistanceMetric,
    /// Distinct metadata field names in use, sorted.
    pub metadata_keys: Vec<String>,
    /// Slots freed by removals and not yet reused.
    pub deleted_count: u64,
    /// Bytes of memory held: the in-memory structures (vectors, graph, id map, payload
    /// index) and the storage engine's (memtables, block-cache usage, table readers'
    /// index and filter blocks).
    pub memory_bytes: u64,
    /// `memory_bytes` by part, summing to it: the index's parts (`vectors`, and for
    /// HNSW `graph`, `codes`, `scratch`), `id_map`, `names` (string ids), `payload_index`
    /// (the filter indexes), and the storage engine's `memtables`, `block_cache` and
    /// `table_readers` (index and filter blocks).
    pub memory_by_part: Vec<(&'static str, u64)>,
    /// Bytes of seal files the index maps in place of heap memory (HNSW rows and
    /// codes after an open from a seal), not in `memory_bytes`: the page cache holds
    /// them, shared with every other handle of the files and reclaimable while clean;
    /// a process's RSS counts the pages it has touched.
    pub mapped_bytes: u64,
    /// The bytes of those mappings resident in this process: the pages its searches
    /// and writes have touched (`None` where the system does not say: off Linux).
    /// With `vectors="disk"` searches read rows from the files, and only the codes'
    /// pages become resident.
    pub mapped_resident_bytes: Option<u64>,
    /// Bytes of the database directory on disk (0 in memory).
    pub disk_bytes: u64,
    /// RocksDB's statistics dump, when statistics are enabled.
    pub engine_statistics: Option<String>,
}

/// In-memory state derived from RocksDB.
struct State {
    store: Store,
    /// Record keys ↔ slots. A key is the id itself in an int-id database, and the key
    /// `names` gives a string id in a string-id one.
    ids: IdMap,
    /// String ids ↔ keys (`None` in an int-id database).
    names: Option<Names>,
    /// The on-disk format of the store ([`crate::storage::codec::FORMAT_V1`] until
    /// something only format 2 holds is written).
    format: u32,
    index: Box<dyn VectorIndex>,
    payload: PayloadIndex,
    graph_load: GraphLoad,
    load_source: LoadSource,
    filter_cache: Mutex<FilterCache>,
    /// Vectors added, changed or removed since the graph was last saved.
    unsaved: AtomicUsize,
    /// `unsaved` at which the next automatic save is due (pushed back after a failure).
    save_at: AtomicUsize,
    /// The position the next change-log entry takes (see `storage::changelog`); for a
    /// follower, the position its state includes the log up to.
    log_next: AtomicU64,
    /// The seal the segment files hold, if any (see `db/seal.rs`).
    seal: Mutex<Option<Seal>>,
    /// The parts of the seal's rows and codes a next seal may keep (recorded by this
    /// build for an HNSW index; empty: the next seal writes every slot).
    parts: Mutex<Vec<Part>>,
    /// Vectors added, changed or removed since the state was built (never reset: the
    /// recall calibration's measure of change).
    changes: AtomicU64,
    /// The recall curves measured so far (`db/calibration`); the lock also makes
    /// concurrent searches wait for one measurement instead of each taking its own.
    curves: Mutex<calibration::Curves>,
}

impl State {
    fn new(store: Store, (maps, graph_load, load_source): Loaded) -> Self {
        let Maps {
            ids,
            names,
            format,
            index,
            payload,
            log_next,
            seal,
            parts,
        } = maps;
        let live = ids.len();
        let curves = calibration::persist::load(&store, log_next, index.dim());
        Self {
            store,
            ids,
            names,
            format,
            index,
            payload,
            graph_load,
            load_source,
            filter_cache: Mutex::new(FilterCache::default()),
            unsaved: AtomicUsize::new(0),
            save_at: AtomicUsize::new(save_threshold(live)),
            log_next: AtomicU64::new(log_next),
            seal: Mutex::new(seal),
            parts: Mutex::new(parts),
            changes: AtomicU64::new(0),
            curves: Mutex::new(curves),
        }
    }

    /// Writes `batch` with its change-log entry (`keys` touched; `clear`: every record
    /// removed first) and the log position, in the same atomic batch, moving an older
    /// store to the current format there too. Returns whether it did; the caller sets
    /// `format` (callers holding only shared access do it once they are exclusive).
    /// Writes are serialised by the lock, so the position cannot race.
    fn write_logged(
        &self,
        mut batch: crate::storage::Batch,
        keys: &[u64],
        clear: bool,
    ) -> Result<bool> {
        let position = self.log_next.load(Ordering::Acquire);
        batch.put(
            crate::storage::keys::record_key(LOG_PREFIX, position),
            changelog::encode_entry(keys, clear),
        );
        batch.put(LOG_NEXT_KEY, changelog::encode_position(position + 1));
        let upgrade = self.format < FORMAT_VERSION;
        if upgrade {
            batch.put(FORMAT_KEY, encode_format(FORMAT_VERSION));
        }
        self.store.write(batch)?;
        self.log_next.store(position + 1, Ordering::Release);
        Ok(upgrade)
    }

    /// Counts `n` changed vectors towards the next seal.
    fn changed(&self, n: usize) {
        self.unsaved.fetch_add(n, Ordering::Relaxed);
        self.changes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Whether enough changed since the last seal for the next one.
    fn seal_due(&self) -> bool {
        self.unsaved.load(Ordering::Relaxed) >= self.save_at.load(Ordering::Relaxed)
    }
}

/// Filter results kept by [`Database`]'s filter cache.
pub const FILTER_CACHE_ENTRIES: usize = 8;

/// Recently evaluated filters and their allowed sets (`None`: every vector), valid for
/// one version of the payload index.
#[derive(Default)]
struct FilterCache {
    version: u64,
    entries: std::collections::VecDeque<(Filter, Option<Arc<RoaringBitmap>>)>,
}

fn save_threshold(live: usize) -> usize {
    GRAPH_SAVE_MIN_CHANGES.max(live / 8)
}

struct Shared {
    config: DatabaseConfig,
    location: Location,
    read_only: bool,
    state: RwLock<Option<State>>,
    io: Arc<dyn FileIo>,
    /// The data key of an encrypted database (its store's, kept here for what reads
    /// files without the state: snapshot manifests).
    cipher: Option<Arc<crate::storage::crypto::Cipher>>,
    /// One seal at a time (seals run under the shared lock).
    save_lock: Mutex<()>,
    /// One refresh at a time, so a state built later is never replaced by an earlier
    /// one; it holds what a follower's store was opened on (see `db/follow.rs`).
    refresh_lock: Mutex<Option<follow::FollowStamp>>,
}

impl Shared {
    /// Writes the graph of `st` to `path` (atomically).
    fn write_graph(&self, st: &State, path: &Path) -> Result<()> {
        let _one = self.save_lock.lock();
        self.write_graph_locked(st, path)
    }

    /// [`Shared::write_graph`] for a caller holding `save_lock`.
    fn write_graph_locked(&self, st: &State, path: &Path) -> Result<()> {
        let Some(h) = st.index.as_hnsw() else {
            return Ok(());
        };
        let ids = |s| st.ids.id(s);
        write_atomic(self.io.as_ref(), path, |w| match st.store.cipher() {
            Some(c) => {
                let mut sealed = c.file_writer(w, GRAPH_PURPOSE)?;
                h.write_graph(&mut sealed, &ids, st.ids.slot_extent())?;
                sealed.finish()
            }
            None => h.write_graph(w, &ids, st.ids.slot_extent()),
        })
    }
}

struct AutoSnapshotter {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

/// An open NusterDB database.
///
/// A handle belongs to the process that opened it. In a child made by `fork()` every
/// use fails with [`Error::Forked`], and closing or dropping it there releases nothing:
/// the child shares the parent's files but has none of its threads (RocksDB's, the
/// auto-snapshot thread), so closing the engine there would write into the parent's
/// database (a flush and a new MANIFEST the parent does not know of) and then join
/// threads that do not exist. The child leaks its copy instead.
pub struct Database {
    shared: Arc<Shared>,
    auto: Mutex<Option<AutoSnapshotter>>,
    /// The process that opened the handle.
    process: ProcessToken,
    /// The writer lock (also held by the store), kept here so a forked child can close
    /// its inherited copy without touching the state lock; `None` after `close`.
    lock: Mutex<Option<Arc<WriterLock>>>,
}

fn corruption(path: &Path, detail: impl Into<String>) -> Error {
    Error::Corruption {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

fn new_index(config: &DatabaseConfig, capacity: usize) -> Box<dyn VectorIndex> {
    match config.index_type {
        IndexType::Flat => Box::new(FlatIndex::new(config.dim, config.distance_metric, capacity)),
        IndexType::Ivf => Box::new(
            IvfIndex::new(
                config.dim,
                config.distance_metric,
                config.ivf.nlist,
                config.ivf.nprobe,
                capacity,
            )
            .with_codes(config.quantization()),
        ),
        IndexType::Hnsw => Box::new(HnswIndex::new_coded(
            config.dim,
            config.distance_metric,
            &config.hnsw,
            config.quantization(),
        )),
    }
}

/// The in-memory structures rebuilt from the store.
struct Maps {
    ids: IdMap,
    names: Option<Names>,
    format: u32,
    index: Box<dyn VectorIndex>,
    payload: PayloadIndex,
    /// The log position the maps include every entry below.
    log_next: u64,
    /// The seal the maps were loaded from or agree with.
    seal: Option<Seal>,
    /// The seal's recorded parts, when the index's rows and codes are theirs.
    parts: Vec<Part>,
}

/// The maps loaded from a store, how the graph was, and where the maps came from.
type Loaded = (Maps, GraphLoad, LoadSource);

/// Where an open (or a follower's refresh) took the in-memory maps from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadSource {
    /// The seal's segment files, and the change-log entries written since: `replayed`
    /// keys were read from RocksDB.
    Sealed { replayed: usize },
    /// Every record in RocksDB: the database has no seal yet (new, in memory, or from
    /// a build before seals), or `refused` says why its seal could not be used.
    Records { refused: Option<String> },
    /// A follower's refresh: the state it had, and the change-log entries written
    /// since, which named `replayed` keys.
    Log { replayed: usize },
}

impl Database {
    /// The configuration in force: the stored one, with the runtime knobs given at
    /// open applied (see [`DatabaseConfig::reopened_with`]).
    pub fn config(&self) -> &DatabaseConfig {
        &self.shared.config
    }

    /// The directory, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        match &self.shared.location {
            Location::Path(p) => Some(p),
            Location::Memory => None,
        }
    }

    /// Whether this handle is a read-only follower.
    pub fn is_read_only(&self) -> bool {
        self.shared.read_only
    }

    /// `Ok` while open.
    ///
    /// # Errors
    /// [`Error::Closed`] after [`Database::close`].
    pub fn ensure_open(&self) -> Result<()> {
        self.read(|_| Ok(()))
    }

    /// Whether [`Database::close`] was called.
    ///
    /// In a forked child the handle counts as closed (it can do nothing there).
    pub fn is_closed(&self) -> bool {
        self.forked() || self.shared.state.read().is_none()
    }

    /// Whether this process is a `fork()` child of the one that opened the handle.
    fn forked(&self) -> bool {
        self.process.is_other_process()
    }

    /// `Ok` in the process that opened the handle; [`Error::Forked`] in a forked child,
    /// after closing the child's copy of the writer lock (see [`WriterLock`]). Checked
    /// before any lock of the handle is taken: a lock held by a parent's thread at the
    /// fork stays held in the child forever.
    ///
    /// # Errors
    /// [`Error::Forked`].
    pub fn check_process(&self) -> Result<()> {
        if !self.forked() {
            return Ok(());
        }
        if let Some(guard) = self.lock.try_lock() {
            if let Some(lock) = guard.as_ref() {
                lock.release_inherited();
            }
        }
        Err(Error::Forked {
            opened_in: self.process.pid(),
            current: std::process::id(),
        })
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> Result<T>) -> Result<T> {
        self.check_process()?;
        let guard = self.shared.state.read();
        f(guard.as_ref().ok_or(Error::Closed)?)
    }

    /// `f` with the state under the lock's *upgradable* read: searches and reads go on,
    /// but no write runs meanwhile — not even the shared-access part of a staged
    /// write (see `db/records/write.rs`) — so what `f` saves or copies (the graph file,
    /// a checkpoint) is one committed state.
    fn read_between_writes<T>(&self, f: impl FnOnce(&State) -> Result<T>) -> Result<T> {
        self.check_process()?;
        let guard = self.shared.state.upgradable_read();
        f(guard.as_ref().ok_or(Error::Closed)?)
    }

    /// [`Database::read_between_writes`] for `f` that may seal: then hands a coded
    /// IVF index with `vectors="disk"` or `"mmap"` the seal's rows
    /// (`Shared::adopt_sealed_rows`).
    fn seal_between_writes(&self, f: impl FnOnce(&State) -> Result<()>) -> Result<()> {
        self.check_process()?;
        let guard = self.shared.state.upgradable_read();
        f(guard.as_ref().ok_or(Error::Closed)?)?;
        self.shared.adopt_sealed_rows(guard);
        Ok(())
    }

    fn write<T>(&self, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        self.check_writable()?;
        let mut guard = self.shared.state.write();
        let st = guard.as_mut().ok_or(Error::Closed)?;
        let out = f(st)?;
        self.after_write(guard);
        Ok(out)
    }

    /// The checks before any write: same process, not read-only.
    fn check_writable(&self) -> Result<()> {
        self.check_process()?;
        if self.shared.read_only {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }

    /// Ends a write: seals if enough changed since the last seal, with searches going
    /// on (the lock downgraded to an upgradable read, so other writes wait for it).
    fn after_write(&self, guard: RwLockWriteGuard<'_, Option<State>>) {
        let due = guard.as_ref().is_some_and(State::seal_due);
        if due && self.shared.seal_dir().is_some() {
            self.after_staged_write(RwLockWriteGuard::downgrade_to_upgradable(guard));
        }
    }

    /// [`Database::after_write`] for a write that ends under the upgradable read.
    fn after_staged_write(&self, guard: RwLockUpgradableReadGuard<'_, Option<State>>) {
        // The write itself is durable in RocksDB; a failed seal only means a longer
        // open, and is retried after more changes.
        let sealed = guard
            .as_ref()
            .filter(|st| st.seal_due())
            .is_some_and(|st| self.shared.seal(st).is_ok());
        if sealed {
            self.shared.adopt_sealed_rows(guard);
        }
    }

    /// Checks a vector for this database: dimension, finiteness, a norm float32 can
    /// score ([`check_magnitude`]), and non-negativity under Jaccard.
    fn check_vector(&self, v: &[f32]) -> Result<()> {
        check_dims(self.shared.config.dim, v.len())?;
        check_finite(v)?;
        check_magnitude(v)?;
        if self.shared.config.distance_metric == DistanceMetric::Jaccard {
            if let Some(i) = v.iter().position(|&x| x < 0.0) {
                return Err(Error::invalid(format!(
                    "jaccard databases need non-negative components; found {} at position {i}",
                    v[i]
                )));
            }
        }
        Ok(())
    }

    /// Closes the database: stops the auto-snapshot thread, releases the writer lock
    /// and the engine. A second close is a no-op; any other use afterwards is
    /// [`Error::Closed`]. In a forked child it only closes the child's copy of the
    /// writer lock (see [`Database`]).
    pub fn close(&self) {
        if self.check_process().is_err() {
            return;
        }
        if let Some(auto) = self.auto.lock().take() {
            let _ = auto.stop.send(());
            let _ = auto.thread.join();
        }
        let state = self.shared.state.write().take();
        if let Some(st) = &state {
            // Sealed so the next open reads the files; a failure costs only that time
            // (the records are safe in RocksDB) and cannot be reported from `drop`.
            let _ = self.shared.seal(st);
        }
        drop(state);
        // The store held the lock too; this releases it.
        drop(self.lock.lock().take());
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if self.forked() {
            // A forked child: nothing of the engine is closed, joined or freed here
            // (see [`Database`]); only the inherited lock file is closed.
            if let Some(lock) = self.lock.get_mut().take() {
                lock.release_inherited();
                std::mem::forget(lock);
            }
            if let Some(auto) = self.auto.get_mut().take() {
                std::mem::forget(auto);
            }
            std::mem::forget(Arc::clone(&self.shared));
            return;
        }
        self.close();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::metadata::{Metadata, Value};

    pub(super) fn meta(i: u64) -> Metadata {
        let mut m = Metadata::new();
        m.set("k", Value::Int(i as i64)).unwrap();
        m
    }

    pub(super) fn writer(path: &Path) -> Database {
        let db = Database::open(
            Location::Path(path.to_path_buf()),
            Some(DatabaseConfig::new(4).unwrap()),
            false,
        )
        .unwrap();
        for i in 0..10u64 {
            db.add(i, &[i as f32, 1.0, 2.0, 3.0], Some(meta(i)))
                .unwrap();
        }
        db
    }

    #[test]
    fn a_handle_in_a_forked_process_refuses_everything_and_closes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut w = writer(&path);
        // As a fork() child sees it: the handle was opened by another process.
        let real = w.process;
        w.process = ProcessToken {
            pid: real.pid.wrapping_add(1),
            forks: real.forks.wrapping_sub(1),
        };
        let forked = |r: Result<()>| matches!(r, Err(Error::Forked { .. }));
        assert!(forked(w.add(100, &[0.0; 4], None)));
        assert!(forked(w.bulk_add(&[101], &[0.0; 4], None).map(|_| ())));
        assert!(forked(w.search(&[0.0; 4], 1, None, None).map(|_| ())));
        assert!(forked(w.count().map(|_| ())));
        assert!(forked(w.flush()));
        assert!(forked(w.refresh()));
        assert!(forked(w.snapshot("s", &Metadata::new()).map(|_| ())));
        assert!(forked(w.delete_snapshot("s")));
        assert!(forked(w.list_snapshots().map(|_| ())));
        assert!(w.is_closed());
        // close() in the child releases nothing of the parent's.
        w.close();
        w.process = real;
        assert!(!w.is_closed());
        assert_eq!(w.count().unwrap(), 10);
        w.add(100, &[0.0; 4], None).unwrap();
        assert_eq!(w.count().unwrap(), 11);
    }

    // The graph-save counter under concurrent saves.
    use crate::storage::fileio::{OsIo, WriteFile};
    use std::sync::atomic::AtomicU64;
    use std::sync::Barrier;

    /// The OS, counting the renames that complete a seal (its maps file is the last of
    /// its files, one per seal).
    #[derive(Debug, Default)]
    struct CountingIo {
        saves: AtomicU64,
    }

    impl FileIo for CountingIo {
        fn create(&self, path: &Path) -> std::io::Result<Box<dyn WriteFile>> {
            OsIo.create(path)
        }
        fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
            if to.extension().is_some_and(|x| x == "maps") {
                self.saves.fetch_add(1, Ordering::SeqCst);
            }
            OsIo.rename(from, to)
        }
        fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
            OsIo.sync_dir(dir)
        }
        fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
            OsIo.read(path)
        }
        fn remove_file(&self, path: &Path) -> std::io::Result<()> {
            OsIo.remove_file(path)
        }
    }

    /// Seals racing each other (explicit seals beside a triggered one, all under the
    /// shared lock) seal once per change and leave the count at 0; before the count was read
    /// and reset under the save lock, each racer subtracted the same count, wrapping
    /// it, and every later write saved the whole graph.
    #[test]
    fn concurrent_seals_seal_once_and_keep_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let io = Arc::new(CountingIo::default());
        let db = Database::open_with_io(
            Location::Path(dir.path().join("db")),
            Some(DatabaseConfig::simple(4, true).unwrap()),
            false,
            io.clone(),
        )
        .unwrap();
        let threads = 8;
        for round in 0..20u64 {
            db.add(round, &[round as f32, 1.0, 2.0, 3.0], None).unwrap();
            let saves_before = io.saves.load(Ordering::SeqCst);
            let barrier = Barrier::new(threads);
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        barrier.wait();
                        db.seal().unwrap();
                    });
                }
            });
            let unsaved = db.read(|st| Ok(st.unsaved.load(Ordering::SeqCst))).unwrap();
            assert_eq!(unsaved, 0, "round {round}: the count wrapped");
            assert_eq!(
                io.saves.load(Ordering::SeqCst) - saves_before,
                1,
                "round {round}: one change, one save"
            );
        }
    }
}
