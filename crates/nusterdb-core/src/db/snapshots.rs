//! Snapshots of an open [`Database`]: taking one (also the automatic ones, on a thread
//! of their own), listing, restoring to a new directory, restoring in place (the staged
//! copy is loaded whole before the switch), deleting.
//!
//! The file-level protocol (manifests, staging, the in-place switch and its recovery)
//! is [`crate::snapshot`]'s; this module holds what needs the handle's state and locks.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use super::load::{load_maps, read_stored_config};
use super::{AutoSnapshotter, Database, Loaded, Location, Shared, State};
use crate::config::DatabaseConfig;
use crate::error::{Error, Result};
use crate::metadata::Metadata;
use crate::progress::Unobserved;
use crate::snapshot::{self, Listing, SnapshotInfo};
use crate::storage::fileio::FileIo;
use crate::storage::lock::WriterLock;
use crate::storage::Store;

impl Shared {
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
        // Searches go on, writes wait (none is half-way: see `read_between_writes`), so
        // the count matches the contents.
        let guard = self.state.upgradable_read();
        let st = guard.as_ref().ok_or(Error::Closed)?;
        let io = self.io.as_ref();
        let count = st.ids.len() as u64;
        self.prepare_snapshot(st)?;
        let cipher = st.store.cipher().map(AsRef::as_ref);
        snapshot::create(io, &root, name, metadata, count, auto, cipher, |dir| {
            st.store.checkpoint(dir)?;
            // The segment files go with the checkpoint, so the snapshot opens from them.
            self.snapshot_files(st, dir)
        })
    }
}

impl Database {
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
        snapshot::list_report(self.snapshot_root()?, self.shared.cipher.as_deref())
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
        snapshot::restore_with(
            io,
            self.snapshot_root()?,
            name,
            target,
            keep_snapshots,
            self.shared.cipher.as_deref(),
        )
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
        let mut staged = snapshot::stage_in_place(io, &root, name, self.shared.cipher.as_deref())?;
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
        let st = guard.insert(State::new(store, loaded));
        self.shared.count_load_redo(st);
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

    pub(super) fn start_auto_snapshots(&self) {
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
                                let _ = snapshot::prune_auto(root, shared.cipher.as_deref());
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
    let loaded = load_maps(&frozen, config, Some((io, dir)), &Unobserved)?;
    Ok((loaded, stored))
}
