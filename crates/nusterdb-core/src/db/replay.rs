//! Loading from a seal, and replaying the change log: an open reads the segment files
//! `db/seal.rs` wrote and applies only the writes logged since, and a follower's
//! refresh applies only those logged since its last one. An HNSW index opened from a
//! seal maps the vector and codes files as its buffers (`index::region`) rather than
//! reading them; their block checksums are still all checked at the open.
//!
//! A replay reads each touched key's current records from RocksDB (the source of
//! truth): a key without a vector now is removed; one whose vector is unchanged keeps
//! its node; a changed or new one is (re)linked; every touched slot's payload is
//! rebuilt from its stored metadata, and its string id from its stored name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use roaring::RoaringBitmap;

use super::seal::{live_slots, part_files, SealFiles};
use super::{corruption, new_index, GraphLoad, Maps};
use crate::config::DatabaseConfig;
use crate::config::VectorStorage;
use crate::error::{Error, Result};
use crate::filter::PayloadIndex;
use crate::id_map::{IdMap, Reservation};
use crate::ids::IdType;
use crate::ids::{Names, MAX_STR_ID_BYTES};
use crate::index::hnsw::{FileRows, GraphImage, HnswIndex, NO_ID};
use crate::index::VectorIndex;
use crate::metadata::Metadata;
use crate::progress::{in_pieces, Observer, Phase};
use crate::segment::vectors::{self, Layout};
use crate::segment::{maps, VectorFile};
use crate::storage::changelog::{self, Part, Seal};
use crate::storage::codec;
use crate::storage::fileio::FileIo;
use crate::storage::keys;
use crate::storage::Store;

/// The writes logged in a range of positions, with the touched records' current values.
pub(super) struct Changes {
    /// A `clear` is among them: the state starts over empty.
    cleared: bool,
    /// Touched keys without a vector now.
    gone: Vec<u64>,
    /// Touched keys with a vector now, their rows (`dim` floats each), metadata and,
    /// in a string-id database, string ids.
    present: Vec<u64>,
    rows: Vec<f32>,
    metadata: Vec<Metadata>,
    names: Vec<Option<Arc<str>>>,
    /// The position the state includes the log up to once these are applied.
    pub to: u64,
}

/// What applying [`Changes`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Applied {
    /// Rows linked (new or changed vectors).
    pub inserted: usize,
    /// Rows removed.
    pub removed: usize,
    /// Touched keys.
    pub touched: usize,
    /// Nodes retired and still to repair ([`VectorIndex::repair_retired`]): removed
    /// rows, and the old nodes of rows whose vector moved to a staged slot.
    pub retired: Option<RoaringBitmap>,
}

impl Changes {
    /// Reads the entries at `from..to` and the current records of the keys they name.
    ///
    /// # Errors
    /// Storage errors; a damaged or incomplete log or record ([`Error::Corruption`]).
    pub(super) fn read(store: &Store, config: &DatabaseConfig, from: u64, to: u64) -> Result<Self> {
        let path = store.path();
        let tail = changelog::read_tail(store, from, to)?;
        let dim = config.dim;
        let mut c = Changes {
            cleared: tail.cleared,
            gone: Vec::new(),
            present: Vec::new(),
            rows: Vec::new(),
            metadata: Vec::new(),
            names: Vec::new(),
            to,
        };
        for key in tail.keys {
            let Some(v) = store.get(&keys::vector_key(key))? else {
                c.gone.push(key);
                continue;
            };
            let start = c.rows.len();
            c.rows.resize(start + dim, 0.0);
            codec::decode_vector_into(&v, &mut c.rows[start..])
                .map_err(|d| corruption(path, format!("vector {key}: {d}")))?;
            let m = store
                .get(&keys::metadata_key(key))?
                .ok_or_else(|| corruption(path, format!("metadata of {key} missing")))?;
            c.metadata.push(
                codec::decode_metadata(&m)
                    .map_err(|d| corruption(path, format!("metadata of {key}: {d}")))?,
            );
            c.names.push(match config.id_type {
                IdType::Int => None,
                IdType::Str => {
                    let n = store.get(&keys::name_key(key))?.ok_or_else(|| {
                        corruption(path, format!("string id of key {key} missing"))
                    })?;
                    let name = codec::decode_text(&n, MAX_STR_ID_BYTES)
                        .map_err(|d| corruption(path, format!("string id of key {key}: {d}")))?;
                    Some(name.into())
                }
            });
            c.present.push(key);
        }
        Ok(c)
    }

    /// Keys the entries touched (a `clear` counts as none).
    pub(super) fn touched(&self) -> usize {
        self.gone.len() + self.present.len()
    }

    /// Whether nothing was logged in the range.
    pub(super) fn is_empty(&self) -> bool {
        !self.cleared && self.gone.is_empty() && self.present.is_empty()
    }

    /// Applies the changes to the maps, linking in pieces `observer` may stop between.
    /// String ids are checked first (a clash is damage, found before anything
    /// changes); a stop or a full id map leaves the maps half-updated, so a caller
    /// that observes applies to maps it throws away on error.
    ///
    /// # Errors
    /// [`Error::Interrupted`]; a string-id clash ([`Error::Corruption`]); more than
    /// 2^32 slots.
    pub(super) fn apply(
        &self,
        config: &DatabaseConfig,
        path: &Path,
        m: &mut Target<'_>,
        observer: &dyn Observer,
    ) -> Result<Applied> {
        let applied = self.apply_staged(config, path, m, None, observer)?;
        if let Some(retired) = &applied.retired {
            m.index.repair_retired(retired);
        }
        Ok(applied)
    }

    /// The first step of an apply that links the new rows with searches going on (a
    /// follower's refresh): under exclusive access, the keys the state lacks, and
    /// those whose vector changed, get reserved slots (bound to no id, so no reader
    /// sees them) and their rows are staged in the index. `None` when there is nothing to stage, or the index does
    /// not stage, or a `clear` is among the changes (everything is then new, applied
    /// by [`Changes::apply`]).
    ///
    /// # Errors
    /// More than 2^32 slots (nothing staged then).
    pub(super) fn stage(
        &self,
        config: &DatabaseConfig,
        m: &mut Target<'_>,
    ) -> Result<Option<Staged>> {
        if self.cleared || !m.index.stages() {
            return Ok(None);
        }
        let dim = config.dim;
        let rows: Vec<usize> = (0..self.present.len())
            .filter(|&i| match m.ids.slot(self.present[i]) {
                None => true,
                Some(s) => m.index.get(s) != Some(&self.rows[i * dim..(i + 1) * dim]),
            })
            .collect();
        if rows.is_empty() {
            return Ok(None);
        }
        let reservation = m.ids.reserve(rows.len())?;
        let items: Vec<(u32, &[f32])> = rows
            .iter()
            .zip(&reservation.slots)
            .map(|(&i, &s)| (s, &self.rows[i * dim..(i + 1) * dim]))
            .collect();
        m.index.stage(&items);
        Ok(Some(Staged {
            reservation,
            rows,
            unlinked: false,
        }))
    }

    /// Takes back a [`Changes::stage`] (the apply failed): the staged rows leave the
    /// index and the slots go back.
    pub(super) fn unstage(m: &mut Target<'_>, staged: &Staged) {
        m.index.abandon(&staged.reservation.slots);
        m.ids.unreserve(&staged.reservation);
    }

    /// [`Changes::apply`] after [`Changes::stage`] and the linking of the staged rows
    /// (`staged`): they are bound to their keys and published instead of inserted (a
    /// key that had a slot moves to its staged one, its old node retired). Removed
    /// rows are retired too; the caller repairs what [`Applied::retired`] holds
    /// (under shared access).
    ///
    /// # Errors
    /// As [`Changes::apply`]; the caller then takes the staged rows back.
    pub(super) fn apply_staged(
        &self,
        config: &DatabaseConfig,
        path: &Path,
        m: &mut Target<'_>,
        staged: Option<&Staged>,
        observer: &dyn Observer,
    ) -> Result<Applied> {
        self.check_names(path, m.names.as_ref())?;
        let mut linked = 0;
        let mut touched_slots = RoaringBitmap::new();
        let mut removed = Vec::new();
        if let Some(st) = staged {
            for (&i, &s) in st.rows.iter().zip(&st.reservation.slots) {
                let key = self.present[i];
                if let Some(old) = m.ids.release(key) {
                    touched_slots.insert(old);
                    removed.push(old);
                }
                m.ids.bind(key, s);
            }
            if st.unlinked {
                m.index.publish_unlinked(&st.reservation.slots);
            } else {
                m.index.publish(&st.reservation.slots);
            }
            linked = st.rows.len();
        }
        let moved = removed.len();
        if self.cleared {
            *m.ids = IdMap::default();
            *m.index = new_index(config, 0);
            *m.payload = PayloadIndex::new();
            if let Some(n) = m.names.as_mut() {
                *n = Names::default();
            }
        }
        let dim = config.dim;
        for &key in &self.gone {
            if let Some(s) = m.ids.release(key) {
                touched_slots.insert(s);
                removed.push(s);
            }
        }
        for &key in &self.present {
            if let Some(s) = m.ids.slot(key) {
                touched_slots.insert(s);
            }
        }
        if let Some(names) = m.names.as_mut() {
            for &key in self.gone.iter().chain(&self.present) {
                names.remove(key);
            }
        }
        let retired = m.index.retire(&removed);
        m.payload.remove_slots(&touched_slots);
        let staged_rows: std::collections::HashSet<usize> =
            staged.map_or_else(Default::default, |s| s.rows.iter().copied().collect());
        let mut items: Vec<(u32, &[f32])> = Vec::new();
        let mut slots = Vec::with_capacity(self.present.len());
        for (i, (&key, row)) in self
            .present
            .iter()
            .zip(self.rows.chunks_exact(dim))
            .enumerate()
        {
            let slot = match m.ids.slot(key) {
                // Bound above, linked already.
                Some(s) if staged_rows.contains(&i) => s,
                Some(s) => {
                    if m.index.get(s) != Some(row) {
                        items.push((s, row));
                    }
                    s
                }
                None => {
                    let s = m.ids.assign(key)?;
                    items.push((s, row));
                    s
                }
            };
            slots.push(slot);
        }
        let index = &mut *m.index;
        in_pieces(&items, 256, Phase::Indexing, observer, |piece| {
            index.insert_many(piece);
        })
        .map_err(|_| Error::Interrupted("indexing"))?;
        for ((&slot, meta), (&key, name)) in slots
            .iter()
            .zip(&self.metadata)
            .zip(self.present.iter().zip(&self.names))
        {
            m.payload.insert(slot, meta);
            if let (Some(names), Some(name)) = (m.names.as_mut(), name) {
                names
                    .insert(Arc::clone(name), key)
                    .map_err(|d| corruption(path, d))?;
            }
        }
        Ok(Applied {
            inserted: items.len() + linked,
            removed: removed.len() - moved,
            touched: self.gone.len() + self.present.len(),
            retired,
        })
    }
}

impl Changes {
    /// Whether every string id the changes set is free once they are applied: held by
    /// no key they leave alone, and set once.
    fn check_names(&self, path: &Path, names: Option<&Names>) -> Result<()> {
        let Some(names) = names else {
            return Ok(());
        };
        let touched: std::collections::HashSet<u64> =
            self.gone.iter().chain(&self.present).copied().collect();
        let mut set = std::collections::HashSet::new();
        for (&key, name) in self.present.iter().zip(&self.names) {
            let Some(name) = name else { continue };
            let held = names
                .key(name)
                .is_some_and(|holder| !self.cleared && holder != key && !touched.contains(&holder));
            if held || !set.insert(Arc::clone(name)) {
                return Err(corruption(
                    path,
                    format!("string id {name:?} of key {key} is held by another key"),
                ));
            }
        }
        Ok(())
    }
}

/// Rows [`Changes::stage`] staged: their slots, reserved in the id map, and their
/// positions among the changes' present rows.
pub(super) struct Staged {
    pub reservation: Reservation,
    rows: Vec<usize>,
    /// Publish the rows unlinked ([`VectorIndex::publish_unlinked`]): they were not
    /// linked before the apply, and are linked after it.
    pub unlinked: bool,
}

impl Staged {
    /// Rows staged.
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }
}

/// The maps a replay changes, borrowed from a [`Maps`] or a live state.
pub(super) struct Target<'a> {
    pub ids: &'a mut IdMap,
    pub names: &'a mut Option<Names>,
    pub index: &'a mut Box<dyn VectorIndex>,
    pub payload: &'a mut PayloadIndex,
}

/// The maps of the seal `seal` read from its files in `dir` and brought up to date with
/// the log up to `next`. The outer error is a storage failure or a stop; the inner one
/// a seal that cannot be used (a missing or damaged file, files that disagree), which
/// the caller answers by loading every record instead.
pub(super) fn load_sealed(
    store: &Store,
    config: &DatabaseConfig,
    (io, dir): (&dyn FileIo, &Path),
    seal: Seal,
    next: u64,
    format: u32,
    observer: &dyn Observer,
) -> Result<std::result::Result<(Maps, GraphLoad, Applied), String>> {
    if seal.position > next {
        return Ok(Err(format!(
            "the seal includes the log up to {} but the log ends at {next}",
            seal.position
        )));
    }
    let (parts, recorded) = match changelog::stored_parts(store, seal) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let files = SealFiles::of(dir, seal.id);
    let read = read_files(io, (&files, &part_files(dir, &parts)), &parts, config, seal);
    let (ids, mut names, mut payload, mut index, retrained) = match read {
        Ok(read) => read,
        Err(reason) => return Ok(Err(reason)),
    };
    let mut ids = ids;
    let changes = Changes::read(store, config, seal.position, next)?;
    let live_before = ids.len();
    let applied = changes.apply(
        config,
        store.path(),
        &mut Target {
            ids: &mut ids,
            names: &mut names,
            index: &mut index,
            payload: &mut payload,
        },
        observer,
    )?;
    let graph_load = if index.as_hnsw().is_some() {
        GraphLoad::Loaded {
            reused: live_before.saturating_sub(applied.touched),
            inserted: applied.inserted,
            removed: applied.removed,
        }
    } else if let Some(reason) = retrained {
        GraphLoad::Rebuilt { reason }
    } else {
        GraphLoad::NotPersisted
    };
    let maps = Maps {
        ids,
        names,
        format,
        index,
        payload,
        log_next: next,
        seal: Some(seal),
        // Recorded parts are this build's, and the index's rows and codes are theirs
        // (a replay changes rows only through the index, which records it).
        parts: if recorded { parts } else { Vec::new() },
    };
    Ok(Ok((maps, graph_load, applied)))
}

/// The seal's maps and index, and why an IVF index's lists were trained again (their
/// file missing or unusable) if they were.
type SealedParts = (
    IdMap,
    Option<Names>,
    PayloadIndex,
    Box<dyn VectorIndex>,
    Option<String>,
);

/// The seal's graph over the rows of its vector files: mapped in place with its codes
/// (slot-ordered files), or with the live rows still to be restored (a live-rows file).
fn read_graph(
    files: &SealFiles,
    codes: &[PathBuf],
    config: &DatabaseConfig,
    vfs: &[VectorFile],
) -> std::result::Result<GraphImage, String> {
    let shown = |p: &Path, e: &dyn std::fmt::Display| format!("{}: {e}", p.display());
    let file = std::fs::File::open(&files.graph).map_err(|e| shown(&files.graph, &e))?;
    // SAFETY: the file is NusterDB's own, written once and never modified in place; the
    // mapping is dropped when this function returns.
    let bytes = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| shown(&files.graph, &e))?;
    // Address space to grow into in place: as much again (at least 64 MiB).
    let slots = vfs.last().map_or(0, |f| f.first() + f.len());
    let room = (slots * config.dim * 4).max(64 << 20);
    // `vectors="memory"` copies the rows and codes; the other modes map them.
    let map = config.vectors != VectorStorage::Memory;
    let rows = vectors::map_rows(vfs, room, map).map_err(|e| shown(&files.vectors, &e))?;
    match rows {
        Some(rows) => HnswIndex::read_sealed_graph(
            &bytes,
            config.dim,
            config.distance_metric,
            &config.hnsw,
            config.quantization(),
            crate::index::hnsw::SealedRows { rows, codes, map },
        )
        .and_then(|mut image| {
            if config.vectors == VectorStorage::Disk {
                // Searches read the rows from the files from now on.
                let reads = vectors::row_reads(vfs).map_err(|e| e.to_string())?;
                let slots = vfs.last().map_or(0, |f| f.first() + f.len());
                if let Some(reads) = reads {
                    image
                        .index
                        .read_rows_from(FileRows::new(config.dim, reads, slots));
                }
            }
            Ok(image)
        }),
        None if vfs.len() == 1 => HnswIndex::read_graph(
            &bytes,
            config.dim,
            config.distance_metric,
            &config.hnsw,
            config.quantization(),
        ),
        None => Err("the parts' vector files do not follow one another by slot".into()),
    }
    .map_err(|d| shown(&files.graph, &d))
}

/// The maps and the index as the seal's files hold them (`files` its own, `parts` the
/// vector and codes files of its parts), every cross-check passed.
fn read_files(
    io: &dyn FileIo,
    (files, (vector_paths, codes_paths)): (&SealFiles, &(Vec<PathBuf>, Vec<PathBuf>)),
    parts: &[Part],
    config: &DatabaseConfig,
    seal: Seal,
) -> std::result::Result<SealedParts, String> {
    let vfs = vectors::open_parts(vector_paths, parts.iter().map(|p| p.first))?;
    if config.index_type != crate::config::IndexType::Hnsw && vfs.len() != 1 {
        return Err(format!(
            "{}: a flat index's seal has one vector file",
            files.vectors.display()
        ));
    }
    read_checked(io, files, codes_paths, config, seal, &vfs)
}

/// An IVF index over the seal's live rows `items` with the lists of its lists file;
/// else why not (another index type, or no usable file: the caller then builds the
/// index from the rows, training the lists again — a damaged file costs time, never an
/// answer).
fn restore_lists(
    io: &dyn FileIo,
    files: &SealFiles,
    config: &DatabaseConfig,
    items: &[(u32, &[f32])],
) -> std::result::Result<crate::index::IvfIndex, String> {
    if config.index_type != crate::config::IndexType::Ivf {
        return Err("not an IVF index".into());
    }
    let lists = read_lists(io, files, config, items.len())?;
    let shown = |e: &dyn std::fmt::Display| format!("{}: {e}", files.lists.display());
    crate::index::IvfIndex::with_lists(
        config.dim,
        config.distance_metric,
        (config.ivf.nlist, config.ivf.nprobe, config.quantization()),
        items,
        lists,
    )
    .ok_or_else(|| shown(&"its lists do not fit the rows"))
}

/// The seal's lists file, read for `rows` live rows (every check of
/// [`crate::index::ivf::file::read`] passed); else why not.
fn read_lists(
    io: &dyn FileIo,
    files: &SealFiles,
    config: &DatabaseConfig,
    rows: usize,
) -> std::result::Result<crate::index::ivf::file::Lists, String> {
    let shown = |e: &dyn std::fmt::Display| format!("{}: {e}", files.lists.display());
    let bytes = io.read(&files.lists).map_err(|e| shown(&e))?;
    crate::index::ivf::file::read(&bytes, config.dim, rows).map_err(|e| shown(&e))
}

/// An IVF index with `vectors="disk"` over the seal's live-rows file `vf` (mapped
/// afresh: `verify` read every row through `vf`'s own mapping), its rows left there;
/// with the reason when the lists file could not be used and the lists were trained
/// again.
fn ivf_on_disk(
    io: &dyn FileIo,
    files: &SealFiles,
    config: &DatabaseConfig,
    live: &[u32],
    vf: &VectorFile,
) -> std::result::Result<(crate::index::IvfIndex, Option<String>), String> {
    let lists = read_lists(io, files, config, live.len());
    let file = vf
        .remapped()
        .map_err(|e| format!("{}: {e}", vf.path().display()))?;
    let (nlist, nprobe) = (config.ivf.nlist, config.ivf.nprobe);
    let (lists, reason) = match lists {
        Ok(l) => (Some(l), None),
        Err(reason) => (None, Some(reason)),
    };
    let index = crate::index::IvfIndex::on_disk(
        config.dim,
        config.distance_metric,
        (nlist, nprobe, config.quantization()),
        live,
        (file, config.vectors == VectorStorage::Mmap),
        lists,
    )
    .ok_or_else(|| format!("{}: cannot hold these rows", vf.path().display()))?;
    let retrained = reason.filter(|_| index.nlist() > 0);
    Ok((index, retrained))
}

/// The reads and cross-checks of [`read_files`] over the parts' vector files `vfs`.
fn read_checked(
    io: &dyn FileIo,
    files: &SealFiles,
    codes: &[PathBuf],
    config: &DatabaseConfig,
    seal: Seal,
    vfs: &[VectorFile],
) -> std::result::Result<SealedParts, String> {
    // The last part's rows reach to the end.
    let vf = vfs.last().ok_or("a seal without vector files")?;
    let shown = |p: &Path, e: &dyn std::fmt::Display| format!("{}: {e}", p.display());
    // The three reads are independent: the maps (their hash map of ids), the rows'
    // block checksums (a damaged row must never be answered from; read through the
    // files' own mappings, dropped afterwards, so the index's mapping stays untouched)
    // and the graph with its codes run side by side.
    let hnsw = config.index_type == crate::config::IndexType::Hnsw;
    let ((m, verified), graph) = rayon::join(
        || {
            rayon::join(
                || maps::read(io, &files.maps).map_err(|e| shown(&files.maps, &e)),
                || {
                    vfs.par_iter()
                        .try_for_each(|vf| vf.verify().map_err(|e| shown(vf.path(), &e)))
                },
            )
        },
        || hnsw.then(|| read_graph(files, codes, config, vfs)),
    );
    let m = m?;
    verified?;
    if m.tag.db_id != seal.id || m.tag.log_position != seal.position {
        return Err(format!(
            "{}: made for another seal ({:?})",
            files.maps.display(),
            m.tag
        ));
    }
    if (config.id_type == IdType::Str) != m.names.is_some() {
        return Err(format!(
            "{}: string ids do not match the config",
            files.maps.display()
        ));
    }
    let extent = m.ids.slot_extent();
    let live = live_slots(&m.ids);
    // Row `i` of the file is slot `i` (version 2) or the `i`-th live slot (version 1).
    let by_slot = vf.layout() == Layout::Slots;
    let rows_ok = if by_slot {
        vf.first() + vf.len() >= extent
    } else {
        vf.len() == live.len()
    };
    if vfs.iter().any(|f| f.dim() != config.dim) || !rows_ok {
        return Err(format!(
            "{}: {} rows of {} floats, the seal has {} live slots of {} in {extent}",
            vf.path().display(),
            vf.len(),
            vf.dim(),
            live.len(),
            config.dim
        ));
    }
    let row_of = |i: usize, s: u32| vf.row(if by_slot { s as usize } else { i }).unwrap_or(&[]);
    let mut retrained = None;
    // With codes the rows stay in the file under `disk` and `mmap` (a search reads only
    // the rows its codes let through); without, `mmap` copies them into the lists.
    let disk_ivf = config.index_type == crate::config::IndexType::Ivf
        && (config.vectors == VectorStorage::Disk
            || (config.vectors == VectorStorage::Mmap && config.quantization().one_bit()))
        && !by_slot;
    let mapped_flat = config.index_type == crate::config::IndexType::Flat && by_slot;
    let index: Box<dyn VectorIndex> = match graph {
        None if mapped_flat => {
            // Mapped in place (`vectors="mmap"`, the default) or copied (`"memory"`),
            // with address space to grow into: as much again (at least 64 MiB).
            let map = config.vectors != VectorStorage::Memory;
            let room = (extent * config.dim * 4).max(64 << 20);
            let rows = vectors::map_rows(vfs, room, map)
                .map_err(|e| shown(vf.path(), &e))?
                .ok_or_else(|| format!("{}: not one part from slot 0", vf.path().display()))?;
            Box::new(crate::index::FlatIndex::from_rows(
                config.dim,
                config.distance_metric,
                rows,
                &live,
            ))
        }
        None if disk_ivf => {
            let (ivf, reason) = ivf_on_disk(io, files, config, &live, vf)?;
            retrained = reason;
            Box::new(ivf)
        }
        None => {
            let items: Vec<(u32, &[f32])> = live
                .iter()
                .enumerate()
                .map(|(i, &s)| (s, row_of(i, s)))
                .collect();
            match restore_lists(io, files, config, &items) {
                Ok(ivf) => Box::new(ivf),
                Err(reason) => {
                    let mut index = new_index(config, extent);
                    index.insert_many(&items);
                    if index.as_ivf().is_some_and(|i| i.nlist() > 0) {
                        retrained = Some(reason);
                    }
                    index
                }
            }
        }
        Some(image) => {
            let image = image?;
            let mut index = image.index;
            let slots = image.ids.len().max(extent);
            for s in 0..slots as u32 {
                let in_graph = image.ids.get(s as usize).copied().unwrap_or(NO_ID);
                let in_maps = m.ids.id(s).unwrap_or(NO_ID);
                if in_graph != in_maps {
                    return Err(format!(
                        "{}: slot {s} holds id {in_graph:#x}, the id map says {in_maps:#x}",
                        files.graph.display()
                    ));
                }
            }
            if !by_slot {
                for (i, &s) in live.iter().enumerate() {
                    if !index.restore_row(s, row_of(i, s)) {
                        return Err(format!("{}: slot {s} is not live", files.graph.display()));
                    }
                }
            }
            Box::new(index)
        }
    };
    Ok((m.ids, m.names, m.payload, index, retrained))
}
