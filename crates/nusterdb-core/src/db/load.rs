//! Loading a database's records from its store into the in-memory maps: the id map,
//! the string ids, the vector index (an HNSW graph from the graph file brought up to
//! date with RocksDB, or built from the vectors), the payload index, with progress.
//!
//! Separate from opening because three callers load: an open, a follower's refresh,
//! and an in-place restore (which loads the staged copy before switching to it).

use std::path::Path;

use roaring::RoaringBitmap;

use super::replay::load_sealed;
use super::seal::SealFiles;
use super::{
    corruption, new_index, GraphLoad, LoadSource, Loaded, Maps, GRAPH_FILE, GRAPH_PURPOSE,
};
use crate::config::{DatabaseConfig, IndexType};
use crate::error::{Error, Result};
use crate::filter::PayloadIndex;
use crate::id_map::IdMap;
use crate::ids::{IdType, Names, MAX_STR_ID_BYTES};
use crate::index::hnsw::{vector_hash, HnswIndex};
use crate::index::VectorIndex;
use crate::progress::{in_pieces, Observer, Phase};
use crate::storage::changelog;
use crate::storage::codec::{self, decode_config, decode_format};
use crate::storage::fileio::FileIo;
use crate::storage::keys::{CONFIG_KEY, FORMAT_KEY, METADATA_PREFIX, NAME_PREFIX, VECTOR_PREFIX};
use crate::storage::Store;

/// The in-memory structures of the database in `store` (whose own files are in
/// `files`' directory; `None` in memory): from its seal's segment files and the change
/// log since (`db/replay.rs`) when it has a usable seal, else by reading every record
/// ([`load_records`]).
///
/// `observer` is told of the progress and may stop the load ([`Error::Interrupted`]):
/// nothing is written while loading, so a stopped open leaves the files as they were.
pub(super) fn load_maps(
    store: &Store,
    config: &DatabaseConfig,
    files: Option<(&dyn FileIo, &Path)>,
    observer: &dyn Observer,
) -> Result<Loaded> {
    let path = store.path();
    let next = changelog::next_position(store)?;
    let seal = changelog::stored_seal(store)?;
    let format = read_format(store)?;
    let mut refused = None;
    if let (Some(files), Some(seal)) = (files, seal) {
        match load_sealed(store, config, files, seal, next, format, observer)? {
            Ok((maps, graph_load, applied)) => {
                return Ok((
                    maps,
                    graph_load,
                    LoadSource::Sealed {
                        replayed: applied.touched,
                    },
                ))
            }
            Err(reason) => refused = Some(reason),
        }
    }
    // Without a usable seal, the graph of the seal (or the graph file of a build before
    // seals) is matched against the records.
    let graph = files.and_then(|(io, dir)| {
        (config.index_type == IndexType::Hnsw).then(|| {
            let sealed = seal.map(|s| SealFiles::of(dir, s.id).graph);
            match sealed {
                Some(g) if g.exists() => (io, g),
                _ => (io, dir.join(GRAPH_FILE)),
            }
        })
    });
    let (mut maps, graph_load) = load_records(
        store,
        config,
        graph.as_ref().map(|(io, g)| (*io, g.as_path())),
        observer,
    )?;
    if config.id_type == IdType::Str && format < codec::FORMAT_V2 {
        return Err(corruption(
            path,
            format!("a string-id database marked as format {format}"),
        ));
    }
    maps.format = format;
    maps.log_next = next;
    maps.seal = seal;
    Ok((maps, graph_load, LoadSource::Records { refused }))
}

pub(super) fn read_format(store: &Store) -> Result<u32> {
    match store.get(FORMAT_KEY)? {
        Some(bytes) => decode_format(&bytes).map_err(|d| corruption(store.path(), d)),
        None => Err(corruption(store.path(), "the format marker is missing")),
    }
}

/// Reads every record from `store` into fresh in-memory structures; an HNSW graph comes
/// from the graph file at `graph` when it is readable (see [`load_vectors_into_graph`]).
fn load_records(
    store: &Store,
    config: &DatabaseConfig,
    graph: Option<(&dyn FileIo, &Path)>,
    observer: &dyn Observer,
) -> Result<(Maps, GraphLoad)> {
    let path = store.path().to_path_buf();
    let load = Loading::new(store, observer);
    let (ids, index, graph_load) = match graph {
        Some((io, file)) => match read_graph_file(io, file, config, store.cipher()) {
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
    let maps = Maps {
        ids,
        names,
        format: 0,
        index,
        payload,
        log_next: 0,
        seal: None,
        parts: Vec::new(),
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
    cipher: Option<&std::sync::Arc<crate::storage::crypto::Cipher>>,
) -> std::result::Result<Option<crate::index::hnsw::GraphImage>, String> {
    let bytes = match io.read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    decode_graph(bytes, config, cipher.map(AsRef::as_ref))
        .map(Some)
        .map_err(|d| format!("{}: {d}", file.display()))
}

/// The graph image in the bytes of a graph file (decrypted first in an encrypted
/// database), or why they cannot be used.
pub(crate) fn decode_graph(
    bytes: Vec<u8>,
    config: &DatabaseConfig,
    cipher: Option<&crate::storage::crypto::Cipher>,
) -> std::result::Result<crate::index::hnsw::GraphImage, String> {
    let bytes = match cipher {
        Some(c) => c.open_file(&bytes, GRAPH_PURPOSE)?,
        None => bytes,
    };
    HnswIndex::read_graph(
        &bytes,
        config.dim,
        config.distance_metric,
        &config.hnsw,
        config.quantization(),
    )
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

/// Reads and checks the format marker and config of an existing store.
pub(super) fn read_stored_config(store: &Store) -> Result<DatabaseConfig> {
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
