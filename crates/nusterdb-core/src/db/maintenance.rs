//! Upkeep and figures of an open [`Database`]: durability ([`Database::flush`], graph
//! saves), [`Database::stats`] and the storage engine's figures, manual compaction, and
//! the integrity checks ([`crate::verify`]).

use std::path::Path;

use super::{Database, GraphLoad, LoadSource, Stats};
use crate::error::{Error, Result};
use crate::ids::Names;
use crate::storage::Store;

impl Database {
    /// How the HNSW graph was obtained at open (or the last refresh).
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn graph_load(&self) -> Result<GraphLoad> {
        self.read(|st| Ok(st.graph_load.clone()))
    }

    /// Seals the state now if it changed since the last seal (see `db/seal.rs`; a no-op
    /// in memory and for followers): the next open reads the segment files and replays
    /// nothing. An encrypted database saves only its encrypted graph file.
    ///
    /// # Errors
    /// [`Error::Closed`]; I/O errors writing the segment files; storage errors.
    pub fn seal(&self) -> Result<()> {
        self.seal_between_writes(|st| self.shared.seal(st))
    }

    /// [`Database::seal`], under its former name.
    ///
    /// # Errors
    /// As [`Database::seal`].
    pub fn save_graph(&self) -> Result<()> {
        self.seal()
    }

    /// Where the open (or the last refresh) took the in-memory maps from.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn load_source(&self) -> Result<LoadSource> {
        self.read(|st| Ok(st.load_source.clone()))
    }

    /// Syncs the WAL: every acknowledged write then survives power loss. Seals too if
    /// a seal is due (as after a write): a seal writes the graph and maps files whole
    /// (O(live rows)), so a `flush` after every write must not seal every time;
    /// [`Database::seal`] seals now.
    ///
    /// # Errors
    /// [`Error::Closed`]; storage errors; I/O errors of a due seal.
    pub fn flush(&self) -> Result<()> {
        self.seal_between_writes(|st| {
            st.store.sync_wal()?;
            if st.seal_due() {
                self.shared.seal(st)?;
            }
            Ok(())
        })
    }

    /// Figures about the database.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn stats(&self) -> Result<Stats> {
        let disk_bytes = self.path().map_or(0, dir_size);
        self.read(|st| {
            let mut parts: Vec<(&'static str, u64)> = st
                .index
                .memory_parts()
                .into_iter()
                .map(|(p, b)| (p, b as u64))
                .collect();
            parts.push(("id_map", st.ids.memory_bytes() as u64));
            parts.push((
                "names",
                st.names.as_ref().map_or(0, Names::memory_bytes) as u64,
            ));
            parts.push(("payload_index", st.payload.memory_bytes() as u64));
            parts.extend(st.store.memory_parts());
            Ok(Stats {
                vector_count: st.ids.len() as u64,
                dimension: self.shared.config.dim,
                index_type: self.shared.config.index_type,
                metric: self.shared.config.distance_metric,
                metadata_keys: st.payload.keys().into_iter().map(str::to_owned).collect(),
                deleted_count: st.ids.free_slots() as u64,
                memory_bytes: parts.iter().fold(0u64, |a, p| a.saturating_add(p.1)),
                memory_by_part: parts,
                mapped_bytes: st.index.mapped_bytes() as u64,
                mapped_resident_bytes: crate::index::region::resident_in(&st.index.mapped_ranges())
                    .map(|r| r.iter().sum::<usize>() as u64),
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

    /// [`Database::verify`] for a database that may be encrypted, with its master key.
    ///
    /// # Errors
    /// As [`Database::verify`]; [`Error::EncryptionKey`] for a missing or wrong key.
    pub fn verify_with_key(
        path: &Path,
        master: Option<&crate::config::MasterKey>,
    ) -> Result<crate::verify::VerifyReport> {
        crate::verify::verify_with(path, master)
    }

    /// Rotates the master key of the closed encrypted database at `path` from `old` to
    /// `new`: the data key is rewrapped in the database's key file and in each of its
    /// snapshots' (a few bytes each, atomically; no stored value is rewritten). Takes
    /// the writer lock, so no handle may have it open (followers opened before keep
    /// working until their next refresh, which needs `new`). A key file `new` already
    /// opens is left as it is: a rotation cut short is finished by running it again.
    /// Returns how many key files were rewrapped or found done.
    ///
    /// # Errors
    /// [`Error::Locked`] while open; [`Error::EncryptionKey`] for a database that is not
    /// encrypted or a key file neither key opens (the others are still rotated, the
    /// database's own first: nothing is rewrapped if `old` does not open it);
    /// [`Error::Corruption`] for a damaged key file; I/O errors.
    pub fn rotate_master_key(
        path: &Path,
        old: &crate::config::MasterKey,
        new: &crate::config::MasterKey,
    ) -> Result<usize> {
        use crate::storage::crypto;
        use crate::storage::fileio::OsIo;
        if crate::storage::rocks::inspect_dir(path)? != crate::storage::DirState::Existing {
            return Err(Error::NoDatabase {
                path: path.to_path_buf(),
                detail: "nothing to rotate".into(),
            });
        }
        let _lock = crate::storage::lock::WriterLock::acquire(path)?;
        // An in-place restore a killed process committed would bring back the
        // snapshot's key file as it was: completed first, as a writer's open does.
        crate::snapshot::finish_in_place(&OsIo, path)?;
        if !crypto::is_encrypted(path) {
            return Err(Error::EncryptionKey {
                path: path.to_path_buf(),
                detail: "the database is not encrypted: there is no master key to rotate".into(),
            });
        }
        crypto::rewrap_key_file(&OsIo, path, old, new)?;
        let mut done = 1;
        let mut first_err = None;
        let root = crate::snapshot::snapshots_dir(path);
        let entries = match std::fs::read_dir(&root) {
            Ok(e) => e.filter_map(std::result::Result::ok).collect::<Vec<_>>(),
            Err(_) => Vec::new(),
        };
        for entry in entries {
            let dir = entry.path();
            if dir.is_dir() && crypto::is_encrypted(&dir) {
                match crypto::rewrap_key_file(&OsIo, &dir, old, new) {
                    Ok(()) => done += 1,
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        first_err.map_or(Ok(done), Err)
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
        self.read_between_writes(|st| {
            let row = |id: u64| st.ids.slot(id).and_then(|s| st.index.get(s));
            let view = crate::verify::LoadedView {
                ids: st.ids.sorted_ids(),
                index_len: st.index.len(),
                graph_load: &st.graph_load,
                load_source: &st.load_source,
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
