//! `Database`: the one module that owns the others. It keeps RocksDB (the source of
//! truth), the id map, the vector index and the payload index consistent.
//!
//! Every write is validated completely, then written to RocksDB as one atomic batch,
//! and only then applied to the in-memory structures — so a rejected or failed call
//! changes nothing, and an acknowledged one survives a crash (the in-memory state is
//! rebuilt from RocksDB on open). Readers share a lock; writers take it exclusively.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock, RwLockWriteGuard};
use roaring::RoaringBitmap;
use rocksdb::WriteBatch;

use crate::config::{DatabaseConfig, Fields, IndexType, StorageConfig};
use crate::error::{Error, Result};
use crate::filter::{Filter, PayloadIndex};
use crate::id_map::IdMap;
use crate::ids::{IdType, Names, MAX_STR_ID_BYTES};
use crate::index::flat::FlatIndex;
use crate::index::hnsw::{vector_hash, HnswIndex};
use crate::index::VectorIndex;
use crate::metadata::Metadata;
use crate::metric::DistanceMetric;
use crate::progress::{in_pieces, Observer, Phase, Unobserved};
use crate::snapshot::{self, Listing, SnapshotInfo};
use crate::storage::codec::{self, decode_config, decode_format, encode_config, encode_format};
use crate::storage::fileio::{write_atomic, FileIo, OsIo};
use crate::storage::fork::ProcessToken;
use crate::storage::keys::{CONFIG_KEY, FORMAT_KEY, METADATA_PREFIX, NAME_PREFIX, VECTOR_PREFIX};
use crate::storage::lock::WriterLock;
use crate::storage::lock::LOCK_FILE;
use crate::storage::rocks::{inspect_dir, MANIFEST_UNREADABLE};
use crate::storage::{DirState, Store};
use crate::vector::{check_dims, check_finite, check_magnitude};

mod records;

pub use records::{Include, MetadataUpdate, PutMode, Record, Selection};

/// Largest n·k a `batch_search` may return (the result arrays are n·k in size).
pub const MAX_BATCH_RESULTS: u64 = 1 << 28;

/// The HNSW graph file in a database (or snapshot) directory.
pub const GRAPH_FILE: &str = "hnsw.graph";

/// How long a read-only open waits for a database that another process is still
/// creating (its directory holds our lock file but no initialised database yet) before
/// it reports that there is none.
pub const CREATION_WAIT: Duration = Duration::from_secs(10);

/// The pause between a follower's attempts to open a database still being created.
const CREATION_POLL: Duration = Duration::from_millis(20);

/// A graph save is due once this many vectors changed since the last one, or an eighth
/// of the live count if that is more: saving costs O(n), so saves stay a small share
/// of the insertion work, and an open after a crash re-links at most that many.
pub const GRAPH_SAVE_MIN_CHANGES: usize = 4096;

/// How the HNSW graph of an open (or a refresh) came to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GraphLoad {
    /// Not an HNSW database, or in memory.
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
    /// graph was rebuilt from the vectors; `reason` says why.
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
    /// The on-disk format of the store ([`codec::FORMAT_V1`] until something only
    /// format 2 holds is written).
    format: u32,
    index: Box<dyn VectorIndex>,
    payload: PayloadIndex,
    graph_load: GraphLoad,
    filter_cache: Mutex<FilterCache>,
    /// Vectors added, changed or removed since the graph was last saved.
    unsaved: AtomicUsize,
    /// `unsaved` at which the next automatic save is due (pushed back after a failure).
    save_at: AtomicUsize,
}

impl State {
    fn new(store: Store, maps: Maps, graph_load: GraphLoad) -> Self {
        let Maps {
            ids,
            names,
            format,
            index,
            payload,
        } = maps;
        let live = ids.len();
        Self {
            store,
            ids,
            names,
            format,
            index,
            payload,
            graph_load,
            filter_cache: Mutex::new(FilterCache::default()),
            unsaved: AtomicUsize::new(0),
            save_at: AtomicUsize::new(save_threshold(live)),
        }
    }

    /// Counts `n` changed vectors towards the next graph save.
    fn changed(&self, n: usize) {
        self.unsaved.fetch_add(n, Ordering::Relaxed);
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
    /// One graph save at a time (saves run under the shared lock).
    save_lock: Mutex<()>,
    /// One refresh at a time, so a state built later is never replaced by an earlier one.
    refresh_lock: Mutex<()>,
}

impl Shared {
    /// Where the graph file of this database lives, if it has one.
    fn graph_path(&self) -> Option<PathBuf> {
        match &self.location {
            Location::Path(p) if self.config.index_type == IndexType::Hnsw => {
                Some(p.join(GRAPH_FILE))
            }
            _ => None,
        }
    }

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
        write_atomic(self.io.as_ref(), path, |w| {
            h.write_graph(w, &|s| st.ids.id(s), st.ids.slot_extent())
        })
    }

    /// Saves the database's graph file if anything changed since the last save.
    fn save_graph(&self, st: &State) -> Result<()> {
        let Some(path) = self.graph_path() else {
            return Ok(());
        };
        if self.read_only {
            return Ok(());
        }
        // The count is read and reset under the lock the save holds: two saves at once
        // (a flush beside a triggered save) run one after the other, and the second
        // finds nothing left to save instead of subtracting the same count again.
        let _one = self.save_lock.lock();
        let unsaved = st.unsaved.load(Ordering::Relaxed);
        if unsaved == 0 {
            return Ok(());
        }
        match self.write_graph_locked(st, &path) {
            Ok(()) => {
                // Writers are excluded while a save runs (saves hold the shared lock),
                // so nothing was counted meanwhile; saturating all the same, as a
                // wrapped count would make every later write save the whole graph.
                let _ = st
                    .unsaved
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                        Some(u.saturating_sub(unsaved))
                    });
                st.save_at
                    .store(save_threshold(st.ids.len()), Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                // Try again after as many changes again, not on every write.
                st.save_at
                    .store(unsaved + save_threshold(st.ids.len()), Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Counts what loading the graph had to redo towards the next save, and saves at
    /// once if that was much (or a rebuild), so the next open (perhaps after a crash)
    /// loads the graph instead of doing that again.
    fn count_graph_redo(&self, st: &State) {
        let redo = match &st.graph_load {
            GraphLoad::Built | GraphLoad::Rebuilt { .. } => st.ids.len(),
            GraphLoad::Loaded {
                inserted, removed, ..
            } => inserted + removed,
            GraphLoad::NotPersisted => 0,
        };
        st.changed(redo);
        if redo >= GRAPH_SAVE_MIN_CHANGES || matches!(st.graph_load, GraphLoad::Rebuilt { .. }) {
            // Failing to save costs only time on the next open.
            let _ = self.save_graph(st);
        }
    }

    fn snapshot_root(&self) -> Result<&Path> {
        match &self.location {
            Location::Path(p) => Ok(p),
            Location::Memory => Err(Error::invalid("an in-memory database has no snapshots")),
        }
    }

    fn snapshot(&self, name: &str, metadata: &Metadata, auto: bool) -> Result<SnapshotInfo> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        let root = self.snapshot_root()?.to_path_buf();
        // A read lock: searches go on, writes wait, so the count matches the contents.
        let guard = self.state.read();
        let st = guard.as_ref().ok_or(Error::Closed)?;
        let io = self.io.as_ref();
        let count = st.ids.len() as u64;
        snapshot::create(io, &root, name, metadata, count, auto, |dir| {
            st.store.checkpoint(dir)?;
            // The graph goes with the checkpoint, so the snapshot opens without a rebuild.
            match self.graph_path() {
                Some(_) => self.write_graph(st, &dir.join(GRAPH_FILE)),
                None => Ok(()),
            }
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
        IndexType::Hnsw => Box::new(HnswIndex::new(
            config.dim,
            config.distance_metric,
            &config.hnsw,
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
}

/// The maps loaded from a store, and how the graph was.
type Loaded = (Maps, GraphLoad);

/// Reads every record from `store` into fresh in-memory structures; an HNSW graph comes
/// from the graph file at `graph` when it is readable (see [`load_vectors_into_graph`]).
///
/// `observer` is told of the progress and may stop the load ([`Error::Interrupted`]):
/// nothing is written while loading, so a stopped open leaves the files as they were.
fn load_maps(
    store: &Store,
    config: &DatabaseConfig,
    graph: Option<(&dyn FileIo, &Path)>,
    observer: &dyn Observer,
) -> Result<Loaded> {
    let path = store.path().to_path_buf();
    let load = Loading::new(store, observer);
    let (ids, index, graph_load) = match graph {
        Some((io, file)) => match read_graph_file(io, file, config) {
            Ok(Some(image)) => match load_vectors_into_graph(store, config, image, &load)? {
                Ok(loaded) => loaded,
                Err(reason) => {
                    let (ids, index) = load_vectors(store, config, &load)?;
                    (ids, index, GraphLoad::Rebuilt { reason })
                }
            },
            Ok(None) => {
                let (ids, index) = load_vectors(store, config, &load)?;
                (ids, index, GraphLoad::Built)
            }
            Err(reason) => {
                let (ids, index) = load_vectors(store, config, &load)?;
                (ids, index, GraphLoad::Rebuilt { reason })
            }
        },
        None => {
            let (ids, index) = load_vectors(store, config, &load)?;
            (ids, index, GraphLoad::NotPersisted)
        }
    };
    let mut payload = PayloadIndex::new();
    let mut with_metadata = 0usize;
    store.scan(METADATA_PREFIX, |id, bytes| {
        let m = codec::decode_metadata(bytes)
            .map_err(|d| corruption(&path, format!("metadata of {id}: {d}")))?;
        let slot = ids
            .slot(id)
            .ok_or_else(|| corruption(&path, format!("metadata of {id} without a vector")))?;
        payload.insert(slot, &m);
        with_metadata += 1;
        Ok(())
    })?;
    if with_metadata != ids.len() {
        return Err(corruption(
            &path,
            format!("{} vectors but {with_metadata} metadata records", ids.len()),
        ));
    }
    let names = match config.id_type {
        IdType::Int => None,
        IdType::Str => Some(load_names(store, &ids)?),
    };
    let format = match store.get(FORMAT_KEY)? {
        Some(bytes) => decode_format(&bytes).map_err(|d| corruption(&path, d))?,
        None => return Err(corruption(&path, "the format marker is missing")),
    };
    if config.id_type == IdType::Str && format < codec::FORMAT_VERSION {
        return Err(corruption(
            &path,
            format!("a string-id database marked as format {format}"),
        ));
    }
    let maps = Maps {
        ids,
        names,
        format,
        index,
        payload,
    };
    Ok((maps, graph_load))
}

/// The string ids of a string-id store: one per stored vector, each naming a key that
/// holds a vector.
fn load_names(store: &Store, ids: &IdMap) -> Result<Names> {
    let path = store.path();
    let mut names = Names::default();
    store.scan(NAME_PREFIX, |key, bytes| {
        let name = codec::decode_text(bytes, MAX_STR_ID_BYTES)
            .map_err(|d| corruption(path, format!("string id of key {key}: {d}")))?;
        if name.is_empty() || !ids.contains(key) {
            return Err(corruption(
                path,
                format!("string id record of key {key} without a vector, or empty"),
            ));
        }
        names
            .insert(name.into(), key)
            .map_err(|d| corruption(path, d))
    })?;
    if names.len() != ids.len() {
        return Err(corruption(
            path,
            format!("{} vectors but {} string ids", ids.len(), names.len()),
        ));
    }
    Ok(names)
}

/// Every stored vector into a fresh index, handed over as one batch (an HNSW graph is
/// then built in parallel instead of one insert at a time).
fn load_vectors(
    store: &Store,
    config: &DatabaseConfig,
    load: &Loading<'_>,
) -> Result<(IdMap, Box<dyn VectorIndex>)> {
    let path = store.path();
    let mut ids = IdMap::with_capacity(config.hnsw.max_nb_elements.min(1 << 20));
    let mut index = new_index(config, 0);
    let mut slots: Vec<u32> = Vec::new();
    let mut data: Vec<f32> = Vec::new();
    let dim = config.dim;
    store.scan(VECTOR_PREFIX, |id, bytes| {
        let start = data.len();
        data.resize(start + dim, 0.0);
        codec::decode_vector_into(bytes, &mut data[start..])
            .map_err(|d| corruption(path, format!("vector {id}: {d}")))?;
        slots.push(ids.assign(id)?);
        load.record()
    })?;
    let items: Vec<(u32, &[f32])> = slots.iter().copied().zip(data.chunks_exact(dim)).collect();
    load.index(index.as_mut(), &items)?;
    Ok((ids, index))
}

/// Progress of an open: the records read (against RocksDB's estimate of their number)
/// and the vectors linked, reported to an [`Observer`] that may stop the open.
struct Loading<'a> {
    observer: &'a dyn Observer,
    total: u64,
    done: std::cell::Cell<u64>,
}

impl<'a> Loading<'a> {
    /// Records between two observer calls while reading.
    const EVERY: u64 = 4096;

    fn new(store: &Store, observer: &'a dyn Observer) -> Self {
        // Vectors are about half the keys (one metadata record each).
        let total = store
            .int_property("rocksdb.estimate-num-keys")
            .map_or(0, |k| k / 2);
        Self {
            observer,
            total,
            done: std::cell::Cell::new(0),
        }
    }

    /// One vector record read.
    fn record(&self) -> Result<()> {
        let done = self.done.get() + 1;
        self.done.set(done);
        if done.is_multiple_of(Self::EVERY)
            && !self
                .observer
                .step(Phase::Loading, done, self.total.max(done))
        {
            return Err(Error::Interrupted("loading"));
        }
        Ok(())
    }

    /// Links `items` into `index` in pieces the observer may stop between.
    fn index(&self, index: &mut dyn VectorIndex, items: &[(u32, &[f32])]) -> Result<()> {
        in_pieces(items, 256, Phase::Indexing, self.observer, |piece| {
            index.insert_many(piece)
        })
        .map_err(|_| Error::Interrupted("indexing"))
    }
}

/// Ids and an index brought up to date from a graph file.
type LoadedGraph = (IdMap, Box<dyn VectorIndex>, GraphLoad);

/// The graph file, if there is one: `Ok(None)` when absent, `Err(reason)` when it
/// cannot be used.
fn read_graph_file(
    io: &dyn FileIo,
    file: &Path,
    config: &DatabaseConfig,
) -> std::result::Result<Option<crate::index::hnsw::GraphImage>, String> {
    let bytes = match io.read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    HnswIndex::read_graph(&bytes, config.dim, config.distance_metric, &config.hnsw)
        .map(Some)
        .map_err(|d| format!("{}: {d}", file.display()))
}

/// Brings a saved graph up to date with RocksDB, the source of truth. Matching is by
/// content, not by a sequence number, so any saved graph can be reconciled with any
/// state of the store — also one that lost unsynced writes the graph had seen (a
/// power cut under point-in-time recovery), or a snapshot's:
/// - a stored id in the same slot with the same vector (same [`vector_hash`]) keeps its
///   node as saved;
/// - a stored id whose vector changed is re-linked; an id the graph lacks is inserted
///   (all in one parallel batch);
/// - a node whose id RocksDB no longer holds is removed (tombstone and repair).
///
/// The outer error is a storage failure; the inner one a graph that does not fit the
/// store (ids clash), which the caller answers by rebuilding.
fn load_vectors_into_graph(
    store: &Store,
    config: &DatabaseConfig,
    image: crate::index::hnsw::GraphImage,
    load: &Loading<'_>,
) -> Result<std::result::Result<LoadedGraph, String>> {
    let path = store.path();
    let dim = config.dim;
    let crate::index::hnsw::GraphImage {
        mut index,
        ids,
        hashes,
    } = image;
    let mut ids = match IdMap::from_slots(ids) {
        Ok(m) => m,
        Err(d) => return Ok(Err(format!("graph file: {d}"))),
    };
    let mut seen = RoaringBitmap::new();
    let mut row = vec![0f32; dim];
    let mut pending_ids: Vec<u64> = Vec::new();
    let mut pending: Vec<f32> = Vec::new();
    let mut changed: Vec<u32> = Vec::new();
    let mut reused = 0usize;
    store.scan(VECTOR_PREFIX, |id, bytes| {
        codec::decode_vector_into(bytes, &mut row)
            .map_err(|d| corruption(path, format!("vector {id}: {d}")))?;
        match ids.slot(id) {
            Some(s) if index.restore_row(s, &row) => {
                seen.insert(s);
                if hashes[s as usize] == vector_hash(&row) {
                    reused += 1;
                } else {
                    changed.push(s);
                }
            }
            _ => {
                pending_ids.push(id);
                pending.extend_from_slice(&row);
            }
        }
        load.record()
    })?;
    let gone: Vec<u64> = (0..ids.slot_extent() as u32)
        .filter(|&s| !seen.contains(s))
        .filter_map(|s| ids.id(s))
        .collect();
    let gone_slots: Vec<u32> = gone.iter().filter_map(|&id| ids.release(id)).collect();
    index.remove_many(&gone_slots);
    // Changed vectors: re-linked by the batch below (a live slot is replaced). Their
    // rows already hold the stored vector.
    let changed_rows: Vec<Vec<f32>> = changed
        .iter()
        .map(|&s| index.get(s).map(<[f32]>::to_vec).unwrap_or_default())
        .collect();
    let mut items: Vec<(u32, &[f32])> = Vec::with_capacity(pending_ids.len() + changed.len());
    for (&id, v) in pending_ids.iter().zip(pending.chunks_exact(dim)) {
        items.push((ids.assign(id)?, v));
    }
    for (&s, v) in changed.iter().zip(&changed_rows) {
        items.push((s, v));
    }
    let inserted = items.len();
    load.index(&mut index, &items)?;
    drop(items);
    Ok(Ok((
        ids,
        Box::new(index),
        GraphLoad::Loaded {
            reused,
            inserted,
            removed: gone.len(),
        },
    )))
}

/// Where the HNSW graph of the database at `dir` is saved; `None` for a flat index.
fn graph_file(dir: &Path, config: &DatabaseConfig) -> Option<PathBuf> {
    (config.index_type == IndexType::Hnsw).then(|| dir.join(GRAPH_FILE))
}

/// Reads and checks the format marker and config of an existing store.
fn read_stored_config(store: &Store) -> Result<DatabaseConfig> {
    let path = store.path();
    // The directory holds NusterDB's lock file (`inspect_dir` sent everything else
    // away as `NotADatabase`): a missing marker is damage.
    let format = store.get(FORMAT_KEY)?.ok_or_else(|| {
        corruption(
            path,
            "not a NusterDB database: the format marker is missing",
        )
    })?;
    decode_format(&format).map_err(|d| corruption(path, d))?;
    let cfg = store
        .get(CONFIG_KEY)?
        .ok_or_else(|| corruption(path, "the stored configuration is missing"))?;
    decode_config(&cfg).map_err(|d| corruption(path, d))
}

impl Database {
    /// Opens or creates a database.
    ///
    /// - New location: `config` is required and stored.
    /// - Existing database: its stored config is used, with the fields a given
    ///   `config` states ([`DatabaseConfig::stated`]) applied by
    ///   [`DatabaseConfig::reopened_with`]: stated structural fields must agree or the
    ///   open fails with [`Error::ConfigMismatch`]; stated runtime knobs are applied,
    ///   and a writer stores them as the new stored config.
    /// - `read_only`: a follower that works beside a live writer.
    ///
    /// # Errors
    /// Locked, corrupt or foreign directories, config mismatches, I/O errors.
    pub fn open(
        location: Location,
        config: Option<DatabaseConfig>,
        read_only: bool,
    ) -> Result<Database> {
        Self::open_observed(location, config, read_only, &Unobserved)
    }

    /// [`Database::open`] watched by `observer`, which is told how the loading and the
    /// graph build go and may stop them: the open then fails with
    /// [`Error::Interrupted`], having written nothing.
    ///
    /// # Errors
    /// As [`Database::open`]; [`Error::Interrupted`].
    pub fn open_observed(
        location: Location,
        config: Option<DatabaseConfig>,
        read_only: bool,
        observer: &dyn Observer,
    ) -> Result<Database> {
        Self::open_inner(location, config, read_only, Arc::new(OsIo), observer)
    }

    /// [`Database::open`] with the files NusterDB writes itself (the graph file) going
    /// through `io` — a [`crate::storage::fileio::FaultyIo`] in fault-injection tests.
    ///
    /// # Errors
    /// As [`Database::open`].
    pub fn open_with_io(
        location: Location,
        config: Option<DatabaseConfig>,
        read_only: bool,
        io: Arc<dyn FileIo>,
    ) -> Result<Database> {
        Self::open_inner(location, config, read_only, io, &Unobserved)
    }

    fn open_inner(
        location: Location,
        config: Option<DatabaseConfig>,
        read_only: bool,
        io: Arc<dyn FileIo>,
        observer: &dyn Observer,
    ) -> Result<Database> {
        let process = ProcessToken::current();
        crate::storage::fork::check_usable()?;
        if let Some(c) = &config {
            c.validate()?;
        }
        if matches!(&location, Location::Path(p) if p.as_os_str().is_empty()) {
            // An empty path would put the database's files in the working directory.
            return Err(Error::invalid(
                "the path is empty: give a directory, or None / \":memory:\" for an \
                 in-memory database",
            ));
        }
        let mut lock = None;
        let (store, config, loaded) = match &location {
            Location::Memory => {
                if read_only {
                    return Err(Error::invalid(
                        "an in-memory database cannot be opened read-only",
                    ));
                }
                let config = config
                    .ok_or_else(|| {
                        Error::invalid("an in-memory database needs a dimension or a config")
                    })?
                    .stating(Fields::all());
                let store = Store::open_in_memory(&config.storage)?;
                Self::initialise(&store, &config)?;
                (store, config, None)
            }
            Location::Path(path) if read_only => {
                let first = config
                    .as_ref()
                    .map_or_else(StorageConfig::default, |c| c.storage.clone());
                // Loaded here, under `follow`, so an in-place restore meanwhile is seen.
                follow(path, || {
                    let (store, stored) = open_follower(path, &first)?;
                    let config = match &config {
                        Some(given) => stored.reopened_with(given)?,
                        None => stored,
                    };
                    // Reopened if the knobs in force differ from those of the first open.
                    let store = if config.storage == first {
                        store
                    } else {
                        drop(store);
                        open_follower(path, &config.storage)?.0
                    };
                    let graph = graph_file(path, &config);
                    let loaded = load_maps(
                        &store,
                        &config,
                        graph.as_deref().map(|g| (io.as_ref(), g)),
                        observer,
                    )?;
                    Ok((store, config, Some(loaded)))
                })?
            }
            Location::Path(path) => {
                let (store, config, loaded, held) =
                    Self::open_writer(path, config, io.as_ref(), observer)?;
                lock = Some(held);
                (store, config, loaded)
            }
        };
        let (maps, graph_load) = match loaded {
            Some(loaded) => loaded,
            None => {
                let graph = match &location {
                    Location::Path(p) => graph_file(p, &config),
                    Location::Memory => None,
                };
                load_maps(
                    &store,
                    &config,
                    graph.as_deref().map(|g| (io.as_ref(), g)),
                    observer,
                )?
            }
        };
        let state = State::new(store, maps, graph_load);
        let shared = Arc::new(Shared {
            config,
            location,
            read_only,
            state: RwLock::new(Some(state)),
            io,
            save_lock: Mutex::new(()),
            refresh_lock: Mutex::new(()),
        });
        if !read_only {
            if let Some(st) = shared.state.read().as_ref() {
                shared.count_graph_redo(st);
            }
        }
        let db = Database {
            shared,
            auto: Mutex::new(None),
            process,
            lock: Mutex::new(lock),
        };
        if db.shared.config.auto_snapshot && !read_only && db.path().is_some() {
            db.start_auto_snapshots();
        }
        Ok(db)
    }

    /// Opens the writer. An existing database is checked and loaded first through a
    /// [`Store::open_frozen`] store under the writer lock, which writes nothing: a
    /// foreign, damaged or newer database, or one whose records cannot all be read, is
    /// refused with its files untouched (a writer's open would already have flushed
    /// the log into new files and rewritten the MANIFEST). The loaded maps are returned
    /// with the store; they are `None` for a database created here.
    ///
    /// A creation that fails removes what it made (the files, the lock file, the
    /// directory), so the path is left as it was found.
    fn open_writer(
        path: &Path,
        given: Option<DatabaseConfig>,
        io: &dyn FileIo,
        observer: &dyn Observer,
    ) -> Result<(Store, DatabaseConfig, Option<Loaded>, Arc<WriterLock>)> {
        let not_found = || Error::NoDatabase {
            path: path.to_path_buf(),
            detail: "give a dimension or a config to create one".into(),
        };
        snapshot::refuse_writer_open(path)?;
        // Judged first without the lock, so nothing is made in a foreign directory and
        // nothing is made at all without a config. A database another process is
        // creating counts as new here: the lock below then refuses this open.
        if inspect_dir(path)? == DirState::New && given.is_none() {
            return Err(not_found());
        }
        let made_dir = matches!(
            std::fs::symlink_metadata(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound
        );
        std::fs::create_dir_all(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let lock = match WriterLock::acquire(path) {
            Ok(l) => Arc::new(l),
            Err(e) => {
                if made_dir && !matches!(e, Error::Locked { .. }) {
                    let _ = std::fs::remove_dir(path);
                }
                return Err(e);
            }
        };
        // An in-place restore that a killed process committed is completed first (see
        // `snapshot::finish_in_place`); one that never committed leaves only staging.
        snapshot::finish_in_place(io, path)?;
        // Judged again under the lock: another process may have created it meanwhile.
        if inspect_dir(path)? == DirState::Existing {
            let first = given
                .as_ref()
                .map_or_else(StorageConfig::default, |g| g.storage.clone());
            let frozen = Store::open_frozen(path, &first, &lock)?;
            let empty = frozen.is_empty()?;
            if empty && has_table_files(path) {
                // Table files nothing could be read from: damage, not an empty database
                // (which would be initialised over).
                return Err(corruption(
                    path,
                    "not a NusterDB database: the format marker is missing (the data \
                     files hold nothing readable)",
                ));
            }
            if !empty {
                let stored = read_stored_config(&frozen)?;
                let config = match &given {
                    Some(g) => stored.reopened_with(g)?,
                    None => stored.clone(),
                };
                let storage = config.storage.clone();
                // Recovery (the WAL recovery mode above all) must run with the knobs the
                // writer will use, or the loaded maps could differ from its records.
                let frozen = if storage == first {
                    frozen
                } else {
                    drop(frozen);
                    Store::open_frozen(path, &storage, &lock)?
                };
                let graph = graph_file(path, &config);
                let loaded = load_maps(
                    &frozen,
                    &config,
                    graph.as_deref().map(|g| (io, g)),
                    observer,
                )?;
                drop(frozen);
                let store = Store::open_writer(path, &storage, Arc::clone(&lock))?;
                if config != stored {
                    // Runtime knobs given at open are the stored config from now on: a
                    // later open that states nothing runs as this one does.
                    Self::store_config(&store, &config)?;
                }
                return Ok((store, config, Some(loaded), lock));
            }
            // Otherwise created but never initialised (a crash during creation). Created
            // with it: every field is now in force (defaults included).
            let config = given.ok_or_else(not_found)?.stating(Fields::all());
            let store = Store::open_writer(path, &config.storage, Arc::clone(&lock))?;
            Self::initialise(&store, &config)?;
            return Ok((store, config, None, lock));
        }
        // A new database: empty, or only what a creation that stopped early left.
        let before = dir_names(path)?;
        let created = given.ok_or_else(not_found).and_then(|config| {
            // Created with it: every field is now in force (defaults included).
            let config = config.stating(Fields::all());
            let store = Store::open_writer(path, &config.storage, Arc::clone(&lock))?;
            Self::initialise(&store, &config)?;
            Ok((store, config))
        });
        match created {
            Ok((store, config)) => Ok((store, config, None, lock)),
            Err(e) => {
                // The store is closed; the lock is still held while the files go.
                remove_creation(path, &before, lock, made_dir);
                Err(e)
            }
        }
    }

    fn initialise(store: &Store, config: &DatabaseConfig) -> Result<()> {
        let mut batch = WriteBatch::default();
        // Format 1 unless the database needs 2 from the start (see `FORMAT_VERSION`).
        let format = match config.id_type {
            IdType::Int => codec::FORMAT_V1,
            IdType::Str => codec::FORMAT_VERSION,
        };
        batch.put(FORMAT_KEY, encode_format(format));
        batch.put(CONFIG_KEY, encode_config(config));
        store.write(batch)?;
        store.sync_wal()
    }

    /// Replaces the stored config (synced: it decides how the next open runs).
    fn store_config(store: &Store, config: &DatabaseConfig) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put(CONFIG_KEY, encode_config(config));
        store.write(batch)?;
        store.sync_wal()
    }

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

    fn write<T>(&self, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        self.check_process()?;
        if self.shared.read_only {
            return Err(Error::ReadOnly);
        }
        let mut guard = self.shared.state.write();
        let st = guard.as_mut().ok_or(Error::Closed)?;
        let out = f(st)?;
        if st.unsaved.load(Ordering::Relaxed) >= st.save_at.load(Ordering::Relaxed)
            && self.shared.graph_path().is_some()
        {
            // Searches go on during the save; writers wait for it.
            let guard = RwLockWriteGuard::downgrade(guard);
            if let Some(st) = guard.as_ref() {
                // The write itself is durable in RocksDB; a failed save only means a
                // longer open, and is retried after more changes.
                let _ = self.shared.save_graph(st);
            }
        }
        Ok(out)
    }

    /// How the HNSW graph was obtained at open (or the last refresh).
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn graph_load(&self) -> Result<GraphLoad> {
        self.read(|st| Ok(st.graph_load.clone()))
    }

    /// Saves the HNSW graph now if it changed since the last save (a no-op for flat,
    /// in-memory and read-only databases).
    ///
    /// # Errors
    /// [`Error::Closed`]; I/O errors writing the graph file.
    pub fn save_graph(&self) -> Result<()> {
        self.read(|st| self.shared.save_graph(st))
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

    /// Syncs the WAL: every acknowledged write then survives power loss.
    ///
    /// # Errors
    /// [`Error::Closed`]; storage errors.
    pub fn flush(&self) -> Result<()> {
        self.read(|st| {
            st.store.sync_wal()?;
            self.shared.save_graph(st)
        })
    }

    /// Catches a read-only handle up with the writer (a no-op on a writer).
    ///
    /// All or nothing: the new state is built beside the current one — a new follower
    /// of the database and every map loaded from it — and replaces it only when
    /// complete. On failure the handle keeps answering from its previous state, store
    /// and maps alike. Searches go on meanwhile. After an in-place restore by the
    /// writer ([`Database::restore_snapshot_in_place`]) it loads the restored state;
    /// during one it waits for it to complete (see `follow`).
    ///
    /// # Errors
    /// [`Error::Closed`]; storage or corruption errors; [`Error::Storage`] if an
    /// in-place restore is still not complete after [`CREATION_WAIT`].
    pub fn refresh(&self) -> Result<()> {
        if !self.shared.read_only {
            return self.ensure_open();
        }
        self.check_process()?;
        let _one = self.shared.refresh_lock.lock();
        let (path, storage) =
            self.read(|st| Ok((st.store.path().to_path_buf(), st.store.storage().clone())))?;
        let graph_path = self.shared.graph_path();
        let (store, (maps, graph_load)) = follow(&path, || {
            let (store, _) = open_follower(&path, &storage)?;
            let graph = graph_path.as_deref().map(|p| (self.shared.io.as_ref(), p));
            let loaded = load_maps(&store, &self.shared.config, graph, &Unobserved)?;
            Ok((store, loaded))
        })?;
        let fresh = State::new(store, maps, graph_load);
        let old = {
            let mut guard = self.shared.state.write();
            let st = guard.as_mut().ok_or(Error::Closed)?;
            std::mem::replace(st, fresh)
        };
        // The old follower closes outside the lock.
        drop(old);
        Ok(())
    }

    /// Figures about the database.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn stats(&self) -> Result<Stats> {
        let disk_bytes = self.path().map_or(0, dir_size);
        self.read(|st| {
            Ok(Stats {
                vector_count: st.ids.len() as u64,
                dimension: self.shared.config.dim,
                index_type: self.shared.config.index_type,
                metric: self.shared.config.distance_metric,
                metadata_keys: st.payload.keys().into_iter().map(str::to_owned).collect(),
                deleted_count: st.ids.free_slots() as u64,
                memory_bytes: (st.index.memory_bytes()
                    + st.payload.memory_bytes()
                    + st.ids.memory_bytes()
                    + st.names.as_ref().map_or(0, Names::memory_bytes))
                    as u64
                    + st.store.memory_bytes(),
                disk_bytes,
                engine_statistics: st.store.statistics(),
            })
        })
    }

    /// One RocksDB statistics ticker (0 with statistics off).
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn ticker(&self, t: rocksdb::statistics::Ticker) -> Result<u64> {
        self.read(|st| Ok(st.store.ticker(t)))
    }

    /// One integer property of the storage engine (e.g. `rocksdb.block-cache-capacity`),
    /// `None` if the engine does not know it.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn engine_property(&self, name: &str) -> Result<Option<u64>> {
        self.read(|st| Ok(st.store.int_property(name)))
    }

    /// Flushes RocksDB's memtables to files (so on-disk size reflects every write).
    ///
    /// # Errors
    /// [`Error::Closed`]; storage errors.
    pub fn compact_memtables(&self) -> Result<()> {
        self.read(|st| st.store.flush_memtables())
    }

    fn snapshot_root(&self) -> Result<&Path> {
        self.shared.snapshot_root()
    }

    /// Takes a consistent snapshot named `name` with the caller's `metadata` (never
    /// pruned by the automatic snapshots' retention).
    ///
    /// # Errors
    /// Read-only or in-memory handles, bad names, [`Error::AlreadyExists`] for a taken
    /// name, storage errors.
    pub fn snapshot(&self, name: &str, metadata: &Metadata) -> Result<SnapshotInfo> {
        self.check_process()?;
        self.shared.snapshot(name, metadata, false)
    }

    /// Every readable snapshot, oldest first (damaged ones left out:
    /// [`Database::snapshot_listing`] names them).
    ///
    /// # Errors
    /// In-memory handles; I/O errors.
    pub fn list_snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        self.snapshot_listing().map(|l| l.snapshots)
    }

    /// Every readable snapshot, oldest first, and the damaged ones (a manifest that
    /// cannot be read), which are listed apart instead of failing the listing.
    ///
    /// # Errors
    /// In-memory handles; I/O errors reading the snapshots directory.
    pub fn snapshot_listing(&self) -> Result<Listing> {
        self.ensure_open()?;
        snapshot::list_report(self.snapshot_root()?)
    }

    /// Copies snapshot `name` to `target` as a database of its own: the target appears
    /// complete or not at all, and the snapshot cannot be deleted while it is copied.
    ///
    /// # Errors
    /// Unknown names (also a snapshot deleted as the restore began),
    /// [`Error::AlreadyExists`] for an occupied target (also one a racing restore
    /// filled first), I/O errors.
    pub fn restore_snapshot(&self, name: &str, target: &Path) -> Result<()> {
        self.restore_snapshot_to(name, target, false)
    }

    /// [`Database::restore_snapshot`]; with `keep_snapshots` the target also gets this
    /// database's snapshots (every readable one, copied before the target appears), so
    /// the restored database lists them.
    ///
    /// # Errors
    /// As [`Database::restore_snapshot`].
    pub fn restore_snapshot_to(
        &self,
        name: &str,
        target: &Path,
        keep_snapshots: bool,
    ) -> Result<()> {
        self.ensure_open()?;
        let io = self.shared.io.as_ref();
        snapshot::restore_with(io, self.snapshot_root()?, name, target, keep_snapshots)
    }

    /// Rolls this open database back to snapshot `name`, in place; every snapshot is
    /// kept. The snapshot is checked and loaded from a staged copy before anything
    /// changes, then switched in by the protocol in [`crate::snapshot`] (restore in
    /// place): a crash at any point leaves the database as it was or as the snapshot,
    /// and the next open completes a switch that was committed. Holds the write lock
    /// throughout: other threads see the state before or after, never between. The
    /// handle then answers from the restored state (id map, names, payload index and
    /// HNSW graph rebuilt from it, the graph loaded from the snapshot's graph file when
    /// usable); the configuration in force is kept. Followers in other processes keep
    /// their state until they refresh, which loads the restored one.
    ///
    /// # Errors
    /// Refused with nothing changed: [`Error::ReadOnly`] on a follower,
    /// [`Error::InvalidArgument`] in memory or for an unknown name,
    /// [`Error::Closed`], [`Error::Corruption`] for a damaged snapshot,
    /// [`Error::ConfigMismatch`] for one of another database, I/O errors before the
    /// switch. An I/O error after the switch was committed returns
    /// [`Error::Storage`] and leaves the handle closed; the next open completes the
    /// restore.
    pub fn restore_snapshot_in_place(&self, name: &str) -> Result<()> {
        self.check_process()?;
        if self.shared.read_only {
            return Err(Error::ReadOnly);
        }
        let root = match &self.shared.location {
            Location::Path(p) => p.clone(),
            Location::Memory => {
                return Err(Error::invalid(
                    "an in-memory database has no snapshots to restore",
                ))
            }
        };
        let Some(lock) = self.lock.lock().as_ref().map(Arc::clone) else {
            return Err(Error::Closed);
        };
        let mut guard = self.shared.state.write();
        if guard.is_none() {
            return Err(Error::Closed);
        }
        let io = self.shared.io.as_ref();
        let config = &self.shared.config;
        let mut staged = snapshot::stage_in_place(io, &root, name)?;
        // Checked by loading it whole, as an open would, before anything changes.
        let (loaded, stored) = load_staged(&staged.dir(), config, io)?;
        snapshot::commit_in_place(io, &root, &mut staged)?;
        // Committed: the old store closes before its files are replaced.
        drop(guard.take());
        let reopened = snapshot::finish_in_place(io, &root).and_then(|_| {
            let store = Store::open_writer(&root, &config.storage, lock)?;
            if stored != *config {
                Self::store_config(&store, config)?;
            }
            Ok(store)
        });
        drop(staged);
        let store = reopened.map_err(|e| {
            Error::Storage(format!(
                "the restore of snapshot {name:?} was committed but could not be \
                 completed ({e}); the handle is closed, and the next open of {} \
                 completes the restore",
                root.display()
            ))
        })?;
        let (maps, graph_load) = loaded;
        let st = guard.insert(State::new(store, maps, graph_load));
        self.shared.count_graph_redo(st);
        Ok(())
    }

    /// Deletes snapshot `name` (also a damaged one), waiting for restores of it in
    /// progress to finish.
    ///
    /// # Errors
    /// Read-only handles, unknown names, I/O errors.
    pub fn delete_snapshot(&self, name: &str) -> Result<()> {
        self.check_process()?;
        if self.shared.read_only {
            return Err(Error::ReadOnly);
        }
        self.ensure_open()?;
        snapshot::delete(self.snapshot_root()?, name)
    }

    fn start_auto_snapshots(&self) {
        let (tx, rx) = mpsc::channel::<()>();
        let shared = Arc::clone(&self.shared);
        let interval = Duration::from_secs(shared.config.snapshot_interval_secs.max(1));
        let thread = std::thread::Builder::new()
            .name("nusterdb-auto-snapshot".into())
            .spawn(move || loop {
                match rx.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {
                        // Failures (e.g. a full disk) must not kill the thread; the next
                        // interval tries again.
                        if shared
                            .snapshot(&snapshot::auto_name(), &Metadata::new(), true)
                            .is_ok()
                        {
                            if let Ok(root) = shared.snapshot_root() {
                                let _ = snapshot::prune_auto(root);
                            }
                        }
                    }
                    _ => return,
                }
            });
        if let Ok(thread) = thread {
            *self.auto.lock() = Some(AutoSnapshotter { stop: tx, thread });
        }
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
            // Saved so the next open loads the graph; a failure costs only that time
            // (the vectors are safe in RocksDB) and cannot be reported from `drop`.
            let _ = self.shared.save_graph(st);
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

/// Integrity checks ([`crate::verify`]) and manual compaction.
impl Database {
    /// Checks the database at `path` without modifying it; see [`crate::verify`].
    ///
    /// # Errors
    /// No database at `path`, or its directory cannot be read; what is found inside
    /// one is reported, not raised.
    pub fn verify(path: &Path) -> Result<crate::verify::VerifyReport> {
        crate::verify::verify(path)
    }

    /// Runs `f` on the store this handle's maps were loaded from and a view of those
    /// maps, under the shared lock, so both show the same state.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::Forked`].
    pub fn verify_loaded<T>(
        &self,
        f: impl FnOnce(&Store, &crate::verify::LoadedView<'_>) -> T,
    ) -> Result<T> {
        self.read(|st| {
            let row = |id: u64| st.ids.slot(id).and_then(|s| st.index.get(s));
            let view = crate::verify::LoadedView {
                ids: st.ids.sorted_ids(),
                index_len: st.index.len(),
                graph_load: &st.graph_load,
                row: &row,
            };
            Ok(f(&st.store, &view))
        })
    }

    /// A full manual compaction: every table file is rewritten into the bottommost
    /// level, so space held by removed and replaced records is given back. Reads and
    /// writes go on meanwhile.
    ///
    /// # Errors
    /// [`Error::ReadOnly`] on a follower, [`Error::Closed`], storage errors.
    pub fn compact(&self) -> Result<()> {
        self.check_process()?;
        if self.shared.read_only {
            return Err(Error::ReadOnly);
        }
        self.read(|st| st.store.compact_all())
    }
}

/// Opens a read-only follower of the database at `path` and reads its stored config.
///
/// A database another process is still creating — our lock file without `CURRENT`
/// yet, or `CURRENT` but not yet the format marker — is waited for, up to
/// [`CREATION_WAIT`]; so is a MANIFEST a live writer replaced between reading
/// `CURRENT` and opening it. After that wait, a creation that never finished is "no
/// database" ([`Error::Io`], not found) and an unreadable MANIFEST is corruption.
fn open_follower(path: &Path, storage: &StorageConfig) -> Result<(Store, DatabaseConfig)> {
    let deadline = Instant::now() + CREATION_WAIT;
    loop {
        let pending = match try_open_follower(path, storage) {
            Ok(Ok(opened)) => return Ok(opened),
            Ok(Err(pending)) => pending,
            Err(Error::Corruption { detail, .. }) if detail.starts_with(MANIFEST_UNREADABLE) => {
                corruption(path, detail)
            }
            Err(e) => return Err(e),
        };
        if Instant::now() >= deadline {
            return Err(pending);
        }
        std::thread::sleep(CREATION_POLL);
    }
}

/// One attempt of [`open_follower`]: the store and config, or (inner `Err`) the error
/// to report if the database is still not there when the wait is over.
fn try_open_follower(
    path: &Path,
    storage: &StorageConfig,
) -> Result<std::result::Result<(Store, DatabaseConfig), Error>> {
    let unfinished = |what: &str| Error::NoDatabase {
        path: path.to_path_buf(),
        detail: format!("nothing to open read-only: {what}"),
    };
    if inspect_dir(path)? == DirState::New {
        return if path.join(LOCK_FILE).exists() {
            Ok(Err(unfinished(
                "a database creation here has not finished (RocksDB's CURRENT file is missing)",
            )))
        } else {
            Err(unfinished("the directory is empty or missing"))
        };
    }
    let store = Store::open_read_only(path, storage)?;
    match read_stored_config(&store) {
        Ok(stored) => Ok(Ok((store, stored))),
        Err(Error::Corruption { .. }) if store.is_empty()? && !has_table_files(path) => Ok(Err(
            unfinished("the database was created but not initialised (it holds no record yet)"),
        )),
        Err(e) => Err(e),
    }
}

/// Loads the staged copy of an in-place restore at `dir` as a writer's open would (a
/// frozen store, which writes nothing), checking that it is a database of the same
/// structure as `config`; returns the maps and the copy's stored config.
fn load_staged(
    dir: &Path,
    config: &DatabaseConfig,
    io: &dyn FileIo,
) -> Result<(Loaded, DatabaseConfig)> {
    let lock = WriterLock::acquire(dir)?;
    let frozen = Store::open_frozen(dir, &config.storage, &lock)?;
    let stored = read_stored_config(&frozen)?;
    // Structural fields must agree (a snapshot of another database is refused).
    stored.reopened_with(config)?;
    let graph = graph_file(dir, config);
    let loaded = load_maps(
        &frozen,
        config,
        graph.as_deref().map(|g| (io, g)),
        &Unobserved,
    )?;
    Ok((loaded, stored))
}

/// What a follower's load depends on: whether an in-place restore is pending, and
/// which `CURRENT` file the directory has (every restore renames a new one in).
#[derive(PartialEq, Eq)]
struct FollowStamp {
    pending: bool,
    current: Option<(u64, u64)>,
}

fn follow_stamp(path: &Path) -> FollowStamp {
    let current = std::fs::metadata(path.join("CURRENT")).ok().map(|m| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        }
        #[cfg(not(unix))]
        {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            (
                m.len(),
                t.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            )
        }
    });
    FollowStamp {
        pending: snapshot::restore_pending(path),
        current,
    }
}

/// Runs a follower's open-and-load `attempt` of the database at `path` so that it never
/// loads a mix of states across an in-place restore: not while one is pending, and
/// again if one happened during the attempt (`CURRENT` replaced). Waits up to
/// [`CREATION_WAIT`] for a pending one to complete.
fn follow<T>(path: &Path, mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = Instant::now() + CREATION_WAIT;
    loop {
        let before = follow_stamp(path);
        if !before.pending {
            let out = attempt();
            if follow_stamp(path) == before {
                return out;
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::Storage(format!(
                "{}: an in-place restore of a snapshot is in progress, or was interrupted \
                 (opening the database as the writer completes it); try again",
                path.display()
            )));
        }
        std::thread::sleep(CREATION_POLL);
    }
}

/// The names in `dir`.
fn dir_names(dir: &Path) -> Result<Vec<std::ffi::OsString>> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        names.push(entry.map_err(io)?.file_name());
    }
    Ok(names)
}

/// Undoes a failed creation in `path`, which held only `before` when it started under
/// `lock`: removes every file made since (never a directory, never following a
/// symlink), the lock file if this open made it, and the directory if this open made
/// it and it is empty. Best effort; the files are those of a database never written to.
fn remove_creation(
    path: &Path,
    before: &[std::ffi::OsString],
    lock: Arc<WriterLock>,
    made_dir: bool,
) {
    if let Ok(now) = dir_names(path) {
        for name in now {
            if before.contains(&name) || name == LOCK_FILE {
                continue;
            }
            let file = path.join(&name);
            if std::fs::symlink_metadata(&file).is_ok_and(|m| !m.is_dir()) {
                let _ = std::fs::remove_file(&file);
            }
        }
    }
    if lock.created() {
        // Removed while still held: an open racing this one finds it locked, or finds
        // no file and makes its own.
        let _ = std::fs::remove_file(lock.path());
    }
    drop(lock);
    if made_dir {
        let _ = std::fs::remove_dir(path);
    }
}

/// Whether `dir` holds any RocksDB table file (`*.sst`).
fn has_table_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok())
            .any(|e| e.path().extension().is_some_and(|x| x == "sst"))
    })
}

/// Total bytes of the files under `dir` (not following symlinks). A file with several
/// links (a snapshot's hard-linked table files) is counted once.
fn dir_size(dir: &Path) -> u64 {
    dir_size_counting(dir, &mut std::collections::HashSet::new())
}

fn dir_size_counting(dir: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size_counting(&e.path(), seen),
            Ok(t) if t.is_file() => e
                .metadata()
                .map(|m| if first_link(&m, seen) { m.len() } else { 0 })
                .unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// Whether this is the first time the file behind `m` is met (by device and inode).
#[cfg(unix)]
fn first_link(m: &std::fs::Metadata, seen: &mut std::collections::HashSet<(u64, u64)>) -> bool {
    use std::os::unix::fs::MetadataExt;
    m.nlink() <= 1 || seen.insert((m.dev(), m.ino()))
}

/// Without stable file ids elsewhere, every link is counted.
#[cfg(not(unix))]
fn first_link(_m: &std::fs::Metadata, _seen: &mut std::collections::HashSet<(u64, u64)>) -> bool {
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::metadata::Value;
    use crate::storage::keys;

    fn meta(i: u64) -> Metadata {
        let mut m = Metadata::new();
        m.set("k", Value::Int(i as i64)).unwrap();
        m
    }

    fn k_of(m: Option<Metadata>) -> Option<i64> {
        match m?.get("k") {
            Some(Value::Int(k)) => Some(*k),
            _ => None,
        }
    }

    fn writer(path: &Path) -> Database {
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

    fn follower(path: &Path) -> Database {
        Database::open(Location::Path(path.to_path_buf()), None, true).unwrap()
    }

    /// Writes a record the loader cannot decode straight into the writer's store.
    fn put_raw(db: &Database, key: &[u8], value: &[u8]) {
        let guard = db.shared.state.read();
        let mut batch = WriteBatch::default();
        batch.put(key, value);
        guard.as_ref().unwrap().store.write(batch).unwrap();
    }

    #[test]
    fn a_failed_refresh_keeps_the_previous_state_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let w = writer(&path);
        let r = follower(&path);
        let old_scratch = r.read(|st| Ok(st.store.scratch_dir().map(Path::to_path_buf)));
        let old_scratch = old_scratch.unwrap().unwrap();
        assert!(old_scratch.is_dir());

        // The writer removes 3 and stores metadata for 5 that does not decode: catching
        // up succeeds, loading the maps fails.
        assert!(w.remove(3).unwrap());
        put_raw(&w, &keys::metadata_key(5), b"\xff not metadata");
        w.flush().unwrap();
        assert!(matches!(r.refresh(), Err(Error::Corruption { .. })));

        // Store and maps still agree on the state before the refresh: 3 is there, with
        // its metadata (a half-done refresh answered CorruptionError here).
        assert_eq!(r.count().unwrap(), 10);
        assert!(r.contains(3).unwrap());
        assert_eq!(k_of(r.get_metadata(3).unwrap()), Some(3));
        assert_eq!(k_of(r.get_metadata(5).unwrap()), Some(5));
        assert_eq!(
            r.search(&[3.0, 1.0, 2.0, 3.0], 1, None, None).unwrap()[0].0,
            3
        );
        assert!(old_scratch.is_dir());

        // Repaired by the writer: the next refresh takes everything, and the old
        // follower's scratch directory goes with it.
        put_raw(
            &w,
            &keys::metadata_key(5),
            &codec::encode_metadata(&meta(50)),
        );
        w.flush().unwrap();
        r.refresh().unwrap();
        assert_eq!(r.count().unwrap(), 9);
        assert!(!r.contains(3).unwrap());
        assert_eq!(r.get_metadata(3).unwrap(), None);
        assert_eq!(k_of(r.get_metadata(5).unwrap()), Some(50));
        assert!(!old_scratch.exists());
        let new_scratch = r.read(|st| Ok(st.store.scratch_dir().map(Path::to_path_buf)));
        let new_scratch = new_scratch.unwrap().unwrap();
        assert!(new_scratch.is_dir());
        r.close();
        assert!(!new_scratch.exists());
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

    #[test]
    fn an_empty_path_is_refused_and_nothing_is_made() {
        let r = Database::open(
            Location::Path(PathBuf::new()),
            Some(DatabaseConfig::new(4).unwrap()),
            false,
        );
        assert!(matches!(r, Err(Error::InvalidArgument(_))));
        assert!(!Path::new(LOCK_FILE).exists());
        let r = Database::open(Location::Path(PathBuf::new()), None, true);
        assert!(matches!(r, Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn a_failed_creation_removes_what_it_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        std::fs::create_dir(&path).unwrap();
        // A directory where RocksDB writes its IDENTITY file: the creation fails.
        std::fs::create_dir(path.join("IDENTITY")).unwrap();
        std::fs::write(path.join(LOCK_FILE), b"").unwrap();
        let before = {
            let mut n = dir_names(&path).unwrap();
            n.sort();
            n
        };
        let r = Database::open(
            Location::Path(path.clone()),
            Some(DatabaseConfig::new(4).unwrap()),
            false,
        );
        assert!(r.is_err());
        let mut after = dir_names(&path).unwrap();
        after.sort();
        assert_eq!(before, after);

        // In a directory this open made, the directory and the lock file go too.
        let fresh = dir.path().join("fresh");
        std::fs::create_dir(&fresh).unwrap();
        let lock = Arc::new(WriterLock::acquire(&fresh).unwrap());
        assert!(lock.created());
        std::fs::write(fresh.join("000001.dbtmp"), b"x").unwrap();
        remove_creation(&fresh, &[], lock, true);
        assert!(!fresh.exists());
    }

    #[test]
    fn followers_wait_only_for_a_creation_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let storage = StorageConfig::default();
        // Missing or empty: no database, at once.
        let missing = dir.path().join("missing");
        assert!(matches!(
            try_open_follower(&missing, &storage),
            Err(Error::NoDatabase { .. })
        ));
        // Our lock file and no CURRENT yet: being created, worth waiting for.
        let starting = dir.path().join("starting");
        std::fs::create_dir(&starting).unwrap();
        std::fs::write(starting.join(LOCK_FILE), b"").unwrap();
        std::fs::write(starting.join("IDENTITY"), b"id").unwrap();
        assert!(matches!(try_open_follower(&starting, &storage), Ok(Err(_))));
        // CURRENT but no format marker yet: the same.
        let created = dir.path().join("created");
        std::fs::create_dir(&created).unwrap();
        let lock = Arc::new(WriterLock::acquire(&created).unwrap());
        let store = Store::open_writer(&created, &storage, lock).unwrap();
        assert!(matches!(try_open_follower(&created, &storage), Ok(Err(_))));
        drop(store);
        // Initialised: opens.
        let path = dir.path().join("db");
        let w = writer(&path);
        let (store, config) = try_open_follower(&path, &storage).unwrap().unwrap();
        assert_eq!(config.dim, 4);
        drop(store);
        drop(w);
        // Our lock file beside data files without CURRENT: damage, not a creation.
        std::fs::remove_file(path.join("CURRENT")).unwrap();
        assert!(matches!(
            try_open_follower(&path, &storage),
            Err(Error::Corruption { .. })
        ));
    }

    // The graph-save counter under concurrent saves.
    use crate::storage::fileio::WriteFile;
    use std::sync::atomic::AtomicU64;
    use std::sync::Barrier;

    /// The OS, counting the renames that complete a graph save.
    #[derive(Debug, Default)]
    struct CountingIo {
        saves: AtomicU64,
    }

    impl FileIo for CountingIo {
        fn create(&self, path: &Path) -> std::io::Result<Box<dyn WriteFile>> {
            OsIo.create(path)
        }
        fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
            self.saves.fetch_add(1, Ordering::SeqCst);
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

    /// Saves racing each other (flush beside a triggered save, both under the shared
    /// lock) save the graph once per change and leave the count at 0; before the
    /// count was read and reset under the save lock, each racer subtracted the same
    /// count, wrapping it, and every later write saved the whole graph.
    #[test]
    fn concurrent_graph_saves_save_once_and_keep_the_count() {
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
                        db.flush().unwrap();
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
