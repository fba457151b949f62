//! Sealing: the in-memory state written to segment files, so that an open reads those
//! files and replays only the change-log entries written since (`db/replay.rs`)
//! instead of reading every record out of RocksDB and relinking the graph.
//!
//! A seal runs where the graph save used to (after enough changes — checked after each
//! write and by `flush` —, on `seal`, at close), under the lock's upgradable read: searches go on, no write is half-way. It
//!
//! 1. syncs RocksDB's WAL, so the store never holds less than the files (a power cut
//!    after the seal cannot take back writes the files include);
//! 2. writes the files named by a fresh seal id, each atomically and checksummed:
//!    `segment-<id>.vectors` (`segment::vectors`: for HNSW the rows of the slots of
//!    this seal's part (below), for flat the live rows), `segment-<id>.maps` (the id
//!    map, string ids and payload index, tagged with the id and log position,
//!    `segment::maps`) and, for HNSW, `segment-<id>.graph` (the graph file format) and
//!    `segment-<id>.codes` (the codes of the part's slots and what else an open
//!    would compute from the rows, `hnsw::codes_file`); for IVF, `segment-<id>.lists`
//!    (the centroids and each live row's list, `ivf::file`);
//! 3. stores the [`Seal`] record (id, log position, floor) and, for HNSW, its parts
//!    ([`SealParts`]) in RocksDB, synced — the commit point: until then the previous
//!    seal and its files are the valid ones, and a crash leaves only unreferenced
//!    files, removed at the next writer open;
//! 4. deletes the log entries below the floor (the previous seal's position) and the
//!    previous seal's files that no part of the new one uses;
//! 5. with `vectors="disk"` or `"mmap"` on a coded IVF index, hands the index the new
//!    live-rows file, so the rows written since the last seal leave the heap
//!    ([`Shared::adopt_sealed_rows`]: the write lock for a swap of the lists'
//!    locations).
//!
//! # Parts: a seal writes the rows its changes touched
//! An HNSW seal's rows and codes are a list of parts, each the vector and codes files
//! of some seal holding the slots from its `first` to the next part's. The index
//! records the lowest slot whose row or codes changed since the last seal
//! (`HnswIndex::changed_from`: new rows go to new slots, so that is usually the old
//! end); a seal keeps the parts below it, rounded down to a part boundary (a multiple
//! of `segment::vectors::part_granule`, where parts map side by side), and writes one
//! new part from there to the end. Parts are merged like a binary counter: while the
//! new part is at least half as large as the kept part before it, that part is
//! rewritten into the new one — each part is under half the size of the one before,
//! so there are at most ~log₂(n / granule) of them and each row is rewritten
//! O(log n) times over the database's life, not at every seal. Re-centring the
//! codes (each time the rows double) changes every code, so that seal writes one part.
//! The graph and maps files are written whole at every seal (they change all over).
//!
//! Cost: the rows and codes of the changed slots plus the graph and maps, once per
//! `max(4096, n/8)` changes; every open costs O(file size + changes since the seal).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use parking_lot::RwLockUpgradableReadGuard;

use super::{
    save_threshold, GraphLoad, LoadSource, Shared, State, GRAPH_FILE, GRAPH_SAVE_MIN_CHANGES,
};
use crate::config::VectorStorage;
use crate::error::{Error, Result};
use crate::rng::SplitMix64;
use crate::segment::maps::{self, MapsTag};
use crate::segment::vectors;
use crate::storage::changelog::{Part, Seal, SealParts};
use crate::storage::codec::{encode_format, FORMAT_VERSION};
use crate::storage::fileio::FileIo;
use crate::storage::keys::{record_key, FORMAT_KEY, LOG_PREFIX, SEAL_KEY, SEAL_PARTS_KEY};

/// The segment files of one seal.
pub(super) struct SealFiles {
    pub vectors: PathBuf,
    pub maps: PathBuf,
    pub graph: PathBuf,
    pub codes: PathBuf,
    /// An IVF index's centroids and lists (`index::ivf::file`).
    pub lists: PathBuf,
}

/// Prefix of every segment file name.
pub const SEGMENT_PREFIX: &str = "segment-";

impl SealFiles {
    pub(super) fn of(dir: &Path, id: u64) -> Self {
        let base = format!("{SEGMENT_PREFIX}{id:016x}");
        Self {
            vectors: dir.join(format!("{base}.vectors")),
            maps: dir.join(format!("{base}.maps")),
            graph: dir.join(format!("{base}.graph")),
            codes: dir.join(format!("{base}.codes")),
            lists: dir.join(format!("{base}.lists")),
        }
    }

    fn all(&self) -> [&Path; 5] {
        [
            &self.vectors,
            &self.maps,
            &self.graph,
            &self.codes,
            &self.lists,
        ]
    }

    /// Every file of seal `seal` with parts `parts`: its maps, graph and lists, and the
    /// vector and codes files of each part.
    pub(super) fn of_parts(dir: &Path, seal: u64, parts: &[Part]) -> Vec<PathBuf> {
        let own = Self::of(dir, seal);
        let mut out = vec![own.maps, own.graph, own.lists];
        for p in parts {
            let f = Self::of(dir, p.id);
            out.push(f.vectors);
            out.push(f.codes);
        }
        out
    }
}

/// The parts a seal keeps and the slot its new part starts at (see the module docs):
/// `kept` are the previous seal's parts, `changed_from` the lowest slot changed since,
/// `end` the slots the new seal covers, `granule` where parts may start.
pub(super) fn plan_parts(
    kept: &[Part],
    changed_from: usize,
    end: usize,
    granule: usize,
) -> (Vec<Part>, usize) {
    let granule = granule.max(1) as u64;
    let mut first = (changed_from.min(end) as u64 / granule) * granule;
    let mut parts: Vec<Part> = kept.iter().filter(|p| p.first < first).copied().collect();
    if parts.first().is_none_or(|p| p.first != 0) {
        return (Vec::new(), 0);
    }
    let end = end as u64;
    while let Some(last) = parts.last() {
        if (end - first).saturating_mul(2) < first - last.first {
            break;
        }
        first = last.first;
        parts.pop();
    }
    (parts, first as usize)
}

/// The segment files of seal `id` in `dir`: vectors, maps, graph, codes (a flat index
/// has no graph or codes file, nor an HNSW index on a metric without codes; seals of
/// earlier builds no codes file). An HNSW seal's rows and codes may be in parts, of
/// earlier seals' files too: see [`part_files`].
pub fn segment_files(dir: &Path, id: u64) -> [PathBuf; 4] {
    let f = SealFiles::of(dir, id);
    [f.vectors, f.maps, f.graph, f.codes]
}

/// The lists file of seal `id` in `dir` (an IVF index's, `index::ivf::file`).
pub fn lists_file(dir: &Path, id: u64) -> PathBuf {
    SealFiles::of(dir, id).lists
}

/// The vector and codes files of each of `parts`, by ascending first slot.
pub fn part_files(dir: &Path, parts: &[Part]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    parts
        .iter()
        .map(|p| {
            let f = SealFiles::of(dir, p.id);
            (f.vectors, f.codes)
        })
        .unzip()
}

/// Whether `name` is a segment file (or a segment file's temporary) of any seal.
pub fn is_segment_file(name: &str) -> bool {
    name.starts_with(SEGMENT_PREFIX)
}

/// A seal id no earlier seal of this database used (ids name files).
fn fresh_id(previous: Option<Seal>) -> u64 {
    let mut rng = SplitMix64::from_entropy();
    loop {
        let id = rng.next_u64();
        if previous.is_none_or(|p| p.id != id) {
            return id;
        }
    }
}

impl Shared {
    /// The directory seals are written to: a writer's on-disk database.
    pub(super) fn seal_dir(&self) -> Option<&Path> {
        match &self.location {
            super::Location::Path(p) if !self.read_only => Some(p),
            _ => None,
        }
    }

    /// Seals the state if anything changed since the last seal (a no-op in memory and
    /// for followers). The caller holds the upgradable read or more (no write
    /// half-way).
    pub(super) fn seal(&self, st: &State) -> Result<()> {
        let Some(dir) = self.seal_dir() else {
            return Ok(());
        };
        // The count is read and reset under the lock the seal holds: two seals at once
        // (a flush beside a triggered one) run one after the other, and the second
        // finds nothing left to do instead of subtracting the same count again.
        let _one = self.save_lock.lock();
        let unsaved = st.unsaved.load(Ordering::Relaxed);
        if unsaved == 0 {
            return Ok(());
        }
        let written = if st.format < FORMAT_VERSION || st.store.cipher().is_some() {
            // An older store this handle has not written to: reading must not change
            // its format, so only the graph file of builds before seals is saved. An
            // encrypted store saves only its graph file too (encrypted): segment files
            // are mapped as they are on disk, which encrypted bytes cannot be, so its
            // rows are read from RocksDB (decrypted) at each open instead.
            match index_graph(st) {
                Some(_) => self.write_graph_locked(st, &dir.join(GRAPH_FILE)),
                None => Ok(()),
            }
        } else {
            self.write_seal(st, dir)
        };
        match written {
            Ok(()) => {
                // Writers are excluded while a seal runs, so nothing was counted
                // meanwhile; saturating all the same, as a wrapped count would make
                // every later write seal again.
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

    /// After a seal, with `vectors="disk"` or `"mmap"` on a coded IVF index: hands the
    /// index the seal's live-rows file ([`crate::index::IvfIndex::adopt_rows`]), so
    /// the rows it built or was given since the last seal leave the heap, and the
    /// previous file (removed by the seal) is let go. The file is opened and the rows'
    /// new locations computed under the upgradable read (searches go on); only the swap
    /// takes the write lock (O(lists)), and what it replaced is freed after it.
    /// Nothing when a write came after the seal, or the index reads this file already;
    /// should anything not fit, the rows stay where they are (the next open maps them).
    pub(super) fn adopt_sealed_rows(&self, guard: RwLockUpgradableReadGuard<'_, Option<State>>) {
        let Some(st) = guard.as_ref() else {
            return;
        };
        let mapped = match self.config.vectors {
            VectorStorage::Disk => false,
            VectorStorage::Mmap => true,
            VectorStorage::Memory => return,
        };
        if st.unsaved.load(Ordering::Relaxed) != 0 {
            return;
        }
        let (Some(dir), Some(seal), Some(ivf)) =
            (self.seal_dir(), *st.seal.lock(), st.index.as_ivf())
        else {
            return;
        };
        let path = SealFiles::of(dir, seal.id).vectors;
        if !ivf.coded() || ivf.rows_file() == Some(path.as_path()) {
            return;
        }
        let Ok(file) = vectors::VectorFile::open(&path) else {
            return;
        };
        if file.layout() != vectors::Layout::Live {
            return;
        }
        let Some(moved) = ivf.relocation(&live_slots(&st.ids)) else {
            return;
        };
        // Only the swap holds the write lock; what it replaced is freed after.
        let mut w = RwLockUpgradableReadGuard::upgrade(guard);
        let retired = w
            .as_mut()
            .and_then(|st| st.index.as_ivf_mut())
            .and_then(|ivf| ivf.adopt_rows(moved, (file, mapped)));
        drop(w);
        drop(retired);
    }

    /// The steps of the module docs.
    fn write_seal(&self, st: &State, dir: &Path) -> Result<()> {
        let io = self.io.as_ref();
        st.store.sync_wal()?;
        let previous = *st.seal.lock();
        let kept = st.parts.lock().clone();
        let position = st.log_next.load(Ordering::Acquire);
        let seal = Seal {
            id: fresh_id(previous),
            position,
            floor: previous.map_or(0, |p| p.position.min(position)),
        };
        let files = SealFiles::of(dir, seal.id);
        let parts = match self.write_files(st, &files, seal, &kept) {
            Ok(parts) => parts,
            Err(e) => {
                remove_files(io, &files);
                return Err(e);
            }
        };
        let mut batch = st.store.batch();
        batch.put(SEAL_KEY, seal.encode());
        match &parts {
            Some((parts, _)) => batch.put(
                SEAL_PARTS_KEY,
                SealParts {
                    seal: seal.id,
                    parts: parts.clone(),
                }
                .encode(),
            ),
            None => batch.delete(SEAL_PARTS_KEY),
        }
        if seal.floor > 0 {
            let (from, to) = (
                record_key(LOG_PREFIX, 0),
                record_key(LOG_PREFIX, seal.floor),
            );
            batch.delete_range(&from[..], &to[..]);
        }
        if st.format < FORMAT_VERSION {
            // A seal of an older store: its writes from now on are logged, so an older
            // build must refuse it (see `FORMAT_VERSION`). The in-memory `format` is
            // brought along by the next write's batch, which writes the same marker.
            batch.put(FORMAT_KEY, encode_format(FORMAT_VERSION));
        }
        // On an error the record may or may not be stored (a failed sync after a
        // written batch): the files stay, and the next writer open sweeps them if the
        // stored record does not name them.
        st.store.write(batch).and_then(|()| st.store.sync_wal())?;
        *st.seal.lock() = Some(seal);
        let (parts, end) = parts.unwrap_or_default();
        if let Some(h) = st.index.as_hnsw() {
            h.mark_sealed(end);
        }
        if let Some(p) = previous {
            // The previous seal's files, and its parts' files, that no part of this
            // one uses.
            let keep = SealFiles::of_parts(dir, seal.id, &parts);
            let mut old = kept.clone();
            if !old.iter().any(|k| k.id == p.id) {
                old.push(Part { id: p.id, first: 0 });
            }
            for f in SealFiles::of_parts(dir, p.id, &old) {
                if !keep.contains(&f) {
                    let _ = io.remove_file(&f);
                }
            }
        }
        *st.parts.lock() = parts;
        // Memtables grown past the write buffer (one bulk write larger than it) are
        // flushed now: RocksDB's own flush may not finish before a close, and the next
        // open would replay them from the write-ahead log (33 s for a 1M × 384 batch).
        // A failure only leaves that replay to the next open.
        let held = st
            .store
            .int_property("rocksdb.cur-size-all-mem-tables")
            .unwrap_or(0);
        if held
            > self
                .config
                .storage
                .write_buffer_size_mb
                .saturating_mul(1 << 20)
        {
            let _ = st.store.flush_memtables();
        }
        // The graph file of builds before seals: superseded by the seal's.
        let _ = io.remove_file(&dir.join(GRAPH_FILE));
        Ok(())
    }

    /// Writes the seal's files; for HNSW returns its parts (the kept ones and its own)
    /// and the slots they cover.
    fn write_files(
        &self,
        st: &State,
        files: &SealFiles,
        seal: Seal,
        kept: &[Part],
    ) -> Result<Option<(Vec<Part>, usize)>> {
        let io = self.io.as_ref();
        let extent = st.ids.slot_extent();
        let index = st.index.as_ref();
        let dim = self.config.dim;
        let parts = match index.as_hnsw() {
            // The rows of the slots from the new part's first, as the index holds them
            // (removed nodes the graph still routes through included), so an open maps
            // the parts' files side by side as its rows.
            Some(h) => {
                let end = h.graph_slots(extent);
                let granule = vectors::part_granule(dim, h.code_bytes_per_slot());
                let (mut parts, first) = plan_parts(kept, h.changed_from(), end, granule);
                vectors::write_part(io, &files.vectors, dim, first, end - first, |s| {
                    index.slot_row(s as u32)
                })?;
                crate::storage::fileio::write_atomic(io, &files.graph, |w| {
                    h.write_graph(w, &|s| st.ids.id(s), extent)
                })?;
                if h.has_codes() {
                    crate::storage::fileio::write_atomic(io, &files.codes, |w| {
                        h.write_codes(w, first, end)
                    })?;
                }
                parts.push(Part {
                    id: seal.id,
                    first: first as u64,
                });
                Some((parts, end))
            }
            // A flat index's rows by slot, one part from slot 0 (an open maps them as
            // its row buffer, as HNSW's parts) — while at least half the slots are
            // live; below, the live rows only (an open copies them), so that the file
            // gives back the space of mass removals.
            None if self.config.index_type == crate::config::IndexType::Flat
                && st.ids.len() * 2 >= extent =>
            {
                vectors::write_part(io, &files.vectors, dim, 0, extent, |s| {
                    index.slot_row(s as u32)
                })?;
                None
            }
            // The live rows only (an IVF index copies them into its lists at open, or
            // with `vectors="disk"` keeps each one's place in this file): the file
            // shrinks with the live count after removals. The lists go beside them, row
            // by row in the same order.
            None => {
                let live = live_slots(&st.ids);
                vectors::write_live_rows(io, &files.vectors, dim, live.len(), |i| {
                    index.get(live[i])
                })?;
                if let Some(ivf) = index.as_ivf() {
                    // With `vectors="disk"` that read every row through the mapping.
                    ivf.release_pages();
                }
                if let Some(lists) = index.as_ivf().and_then(|ivf| ivf.lists_of(&live)) {
                    crate::storage::fileio::write_atomic(io, &files.lists, |w| {
                        crate::index::ivf::file::write(w, dim, &lists)
                    })?;
                }
                None
            }
        };
        let tag = MapsTag {
            db_id: seal.id,
            log_position: seal.position,
        };
        maps::write(
            io,
            &files.maps,
            &st.ids,
            st.names.as_ref(),
            &st.payload,
            &tag,
        )?;
        Ok(parts)
    }
}

/// The slots bound to an id, ascending: row `i` of a live-rows vector file is the
/// vector of the `i`-th of them.
pub fn live_slots(ids: &crate::id_map::IdMap) -> Vec<u32> {
    (0..ids.slot_extent() as u32)
        .filter(|&s| ids.id(s).is_some())
        .collect()
}

fn index_graph(st: &State) -> Option<&crate::index::hnsw::HnswIndex> {
    st.index.as_hnsw()
}

impl Shared {
    /// Counts what the load had to redo towards the next seal, and seals at once if
    /// that was much (or a seal could not be used), so the next open (perhaps after a
    /// crash) does not do it again.
    pub(super) fn count_load_redo(&self, st: &State) {
        let (redo, now) = match (&st.load_source, &st.graph_load) {
            // An IVF index whose lists file was unusable trained its lists again: seal
            // them, so the next open does not.
            (LoadSource::Sealed { .. }, GraphLoad::Rebuilt { .. }) => (st.ids.len().max(1), true),
            (LoadSource::Sealed { replayed }, _) => (*replayed, false),
            // A follower's refresh: followers never seal.
            (LoadSource::Log { .. }, _) => (0, false),
            // An older store: its graph file is what saves time (see `seal`).
            (LoadSource::Records { .. }, g) if st.format < FORMAT_VERSION => match g {
                GraphLoad::Built => (st.ids.len(), false),
                GraphLoad::Rebuilt { .. } => (st.ids.len(), true),
                GraphLoad::Loaded {
                    inserted, removed, ..
                } => (inserted + removed, false),
                GraphLoad::NotPersisted => (0, false),
            },
            (LoadSource::Records { refused }, _) => (st.ids.len().max(1), refused.is_some()),
        };
        st.changed(redo);
        if now || redo >= GRAPH_SAVE_MIN_CHANGES {
            // Failing to seal costs only time on the next open.
            let _ = self.seal(st);
        }
    }

    /// Puts what a snapshot needs beside its RocksDB checkpoint into `dir`: the seal's
    /// files, hard-linked (they are never changed once written; copied where the file
    /// system cannot link), or, for an older store this handle has not written to, the
    /// graph file; for an encrypted store, its key file and its (encrypted) graph file.
    /// A database never sealed is sealed first, so the snapshot opens from files too. Must run before the checkpoint is taken (the seal writes its record),
    /// under the upgradable read or more.
    pub(super) fn prepare_snapshot(&self, st: &State) -> Result<()> {
        if st.format >= FORMAT_VERSION && st.seal.lock().is_none() {
            self.seal(st)?;
        }
        Ok(())
    }

    /// The second half of [`Shared::prepare_snapshot`], after the checkpoint.
    pub(super) fn snapshot_files(&self, st: &State, dir: &Path) -> Result<()> {
        let Some(db_dir) = self.seal_dir() else {
            return Ok(());
        };
        if st.store.cipher().is_some() {
            // The key file goes with the snapshot, so it opens (with the master key)
            // on its own; the data key is the database's.
            let key = db_dir.join(crate::storage::crypto::KEY_FILE);
            let bytes = self.io.read(&key).map_err(|source| Error::Io {
                path: key.clone(),
                source,
            })?;
            let copy = dir.join(crate::storage::crypto::KEY_FILE);
            crate::storage::fileio::write_synced(self.io.as_ref(), &copy, |w| w.write_all(&bytes))
                .map_err(|source| Error::Io { path: copy, source })?;
        }
        if st.format < FORMAT_VERSION || st.store.cipher().is_some() {
            return match index_graph(st) {
                Some(_) => self.write_graph(st, &dir.join(GRAPH_FILE)),
                None => Ok(()),
            };
        }
        let Some(seal) = *st.seal.lock() else {
            return Ok(());
        };
        let parts = st.parts.lock().clone();
        let (from, to) = if parts.is_empty() {
            let all = |d: &Path| {
                SealFiles::of(d, seal.id)
                    .all()
                    .map(Path::to_path_buf)
                    .to_vec()
            };
            (all(db_dir), all(dir))
        } else {
            (
                SealFiles::of_parts(db_dir, seal.id, &parts),
                SealFiles::of_parts(dir, seal.id, &parts),
            )
        };
        for (src, dst) in from.iter().zip(&to) {
            if !src.exists() {
                continue;
            }
            if std::fs::hard_link(src, dst).is_err() {
                let mut reader = std::fs::File::open(src).map_err(|e| Error::Io {
                    path: src.to_path_buf(),
                    source: e,
                })?;
                crate::storage::fileio::write_synced(self.io.as_ref(), dst, |w| {
                    std::io::copy(&mut reader, w).map(drop)
                })
                .map_err(|e| Error::Io {
                    path: dst.to_path_buf(),
                    source: e,
                })?;
            }
        }
        Ok(())
    }
}

fn remove_files(io: &dyn FileIo, files: &SealFiles) {
    for f in files.all() {
        let _ = io.remove_file(f);
    }
}

/// Removes the segment files in `dir` that neither `current` nor its `parts` name:
/// those of seals a crash cut short or that later seals replaced, and their
/// temporaries. Called by a writer open (no seal runs).
///
/// # Errors
/// I/O errors listing the directory.
pub(super) fn sweep(
    io: &dyn FileIo,
    dir: &Path,
    current: Option<Seal>,
    parts: &[Part],
) -> Result<()> {
    let mut keep: Vec<PathBuf> = Vec::new();
    if let Some(s) = current {
        keep.extend(SealFiles::of(dir, s.id).all().map(Path::to_path_buf));
        keep.extend(SealFiles::of_parts(dir, s.id, parts));
    }
    for path in segment_files_in(dir)? {
        if !keep.contains(&path) {
            let _ = io.remove_file(&path);
        }
    }
    Ok(())
}

/// The segment files (and temporaries of segment files) in `dir`, sorted by name.
///
/// # Errors
/// I/O errors listing the directory.
pub fn segment_files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(is_segment_file))
        .map(|e| e.path())
        .collect();
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Over any run of seals (rows added, now and then a change lower down), the
        /// parts start at 0 on the granule, the new part at most at the lowest changed
        /// slot, and each part is more than twice the size of the next: at most
        /// ~log₂(slots / granule) + 1 of them.
        #[test]
        fn parts_shrink_by_half_and_the_new_part_covers_the_change(
            granule in 1usize..100,
            steps in proptest::collection::vec((0usize..4000, any::<bool>(), 0usize..5000), 1..30),
        ) {
            let mut parts: Vec<Part> = Vec::new();
            let mut end = 0;
            for (i, &(grow, lower, at)) in steps.iter().enumerate() {
                let changed = if lower { at.min(end) } else { end };
                end += grow;
                let (mut kept, first) = plan_parts(&parts, changed, end, granule);
                prop_assert!(first % granule == 0 && first <= changed);
                prop_assert!(kept.iter().zip(&parts).all(|(a, b)| a == b));
                kept.push(Part { id: i as u64, first: first as u64 });
                parts = kept;
                let mut bounds: Vec<usize> = parts.iter().map(|p| p.first as usize).collect();
                bounds.push(end);
                prop_assert_eq!(bounds[0], 0);
                for w in bounds.windows(3) {
                    prop_assert!((w[2] - w[1]) * 2 < w[1] - w[0], "{:?}", bounds);
                }
                let most = (end / granule).max(1).ilog2() as usize + 2;
                prop_assert!(parts.len() <= most, "{:?}", bounds);
            }
        }
    }
}
