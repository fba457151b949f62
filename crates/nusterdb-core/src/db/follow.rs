//! Read-only followers: a follower's open (which waits for a database another process
//! is still creating), [`Database::refresh`], and `follow`, which keeps a follower from
//! loading a mix of states across a writer's in-place restore.
//!
//! A follower's store reads through a scratch directory of its own (see
//! [`Store::open_read_only`]); a refresh builds a whole new state beside the current one.

use std::path::Path;
use std::time::{Duration, Instant};

use std::sync::atomic::Ordering;

use super::load::{load_maps, read_format, read_stored_config};
use super::open::has_table_files;
use parking_lot::{RwLockUpgradableReadGuard, RwLockWriteGuard};

use super::replay::{Changes, Target};
use super::{beside, corruption, Database, LoadSource, State, CREATION_WAIT};
use crate::config::{DatabaseConfig, StorageConfig};
use crate::error::{Error, Result};
use crate::progress::Unobserved;
use crate::snapshot;
use crate::storage::changelog;
use crate::storage::lock::LOCK_FILE;
use crate::storage::rocks::{inspect_dir, MANIFEST_UNREADABLE};
use crate::storage::{DirState, Store};

/// The pause between a follower's attempts to open a database still being created.
const CREATION_POLL: Duration = Duration::from_millis(20);

impl Database {
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
        let mut stamp = self.shared.refresh_lock.lock();
        let (path, storage) =
            self.read(|st| Ok((st.store.path().to_path_buf(), st.store.storage().clone())))?;
        if let Some(opened) = stamp.as_ref() {
            // A failed replay leaves the state as it was (see `replay_log`), and the
            // whole reload below still runs.
            if let Ok(true) = self.replay_log(&path, &storage, opened) {
                return Ok(());
            }
        }
        let dir = (self.shared.io.as_ref(), path.as_path());
        let ((store, loaded), now) = follow(&path, || {
            let (store, _) = open_follower(&path, &storage)?;
            let loaded = load_maps(&store, &self.shared.config, Some(dir), &Unobserved)?;
            Ok((store, loaded))
        })?;
        let fresh = State::new(store, loaded);
        let old = {
            let mut guard = self.shared.state.write();
            let st = guard.as_mut().ok_or(Error::Closed)?;
            std::mem::replace(st, fresh)
        };
        *stamp = Some(now);
        // The old follower closes outside the lock.
        drop(old);
        Ok(())
    }

    /// A refresh by the change log, when the directory still holds the database the
    /// follower's store was opened on (`opened`: no in-place restore since). A new
    /// follower store is opened beside the current one (a store caught up in place
    /// would be ahead of the maps until they are updated, and a reader between the
    /// two would find records missing); the log entries written since the state's
    /// position and the records they name are read from it — searches going on — and
    /// the new rows and new vectors linked (staged and linked as a writer's are); then,
    /// under the exclusive lock, everything is applied and the stores swapped; last,
    /// the removed rows' and moved vectors' old nodes are repaired, searches going on.
    /// `Ok(false)` when the log cannot do it (entries deleted by a seal since, a
    /// restore): the caller reloads. On an error nothing has changed.
    fn replay_log(
        &self,
        path: &Path,
        storage: &StorageConfig,
        opened: &FollowStamp,
    ) -> Result<bool> {
        if follow_stamp(path) != *opened {
            return Ok(false);
        }
        let config = &self.shared.config;
        let from = self.read(|st| Ok(st.log_next.load(Ordering::Acquire)))?;
        let (store, _) = open_follower(path, storage)?;
        let next = changelog::next_position(&store)?;
        let floor = changelog::stored_seal(&store)?.map_or(0, |s| s.floor);
        if next < from || floor > from {
            return Ok(false);
        }
        let format = read_format(&store)?;
        let changes = Changes::read(&store, config, from, next)?;
        // A restore while the store opened would have mixed two databases.
        if follow_stamp(path) != *opened {
            return Ok(false);
        }
        // New rows are staged (exclusive, brief) and everything is applied at once
        // (exclusive): a reader sees the writes whole or not at all. Up to
        // `LINK_AFTER_ROWS` new rows are published unlinked — searches score them
        // directly — and linked after the refresh returns, searches going on; more
        // are linked before the apply (with searches going on too), as a search over
        // that many unlinked rows would cost more than the wait saves.
        let guard = finish_linking(self.shared.state.upgradable_read());
        let mut w = RwLockUpgradableReadGuard::upgrade(guard);
        let st = w.as_mut().ok_or(Error::Closed)?;
        let mut staged = if changes.is_empty() {
            None
        } else {
            changes.stage(config, &mut target(st))?
        };
        let later = staged.as_ref().is_some_and(|s| s.len() <= LINK_AFTER_ROWS);
        if let Some(s) = staged.as_mut() {
            s.unlinked = later;
        }
        let mut w = if later {
            w
        } else {
            let guard = RwLockWriteGuard::downgrade_to_upgradable(w);
            if let (Some(st), Some(staged)) = (guard.as_ref(), staged.as_ref()) {
                beside::run(|| st.index.link_staged(&staged.reservation.slots));
            }
            RwLockUpgradableReadGuard::upgrade(guard)
        };
        let st = w.as_mut().ok_or(Error::Closed)?;
        let path = st.store.path().to_path_buf();
        // `apply` checks the string ids before it changes anything; unobserved, it can
        // then fail only past the id map's 2^32 slots.
        let applied = if changes.is_empty() {
            Ok(Default::default())
        } else {
            changes.apply_staged(config, &path, &mut target(st), staged.as_ref(), &Unobserved)
        };
        let retired = match applied {
            Ok(a) => a.retired,
            Err(e) => {
                if let Some(staged) = &staged {
                    Changes::unstage(&mut target(st), staged);
                }
                return Err(e);
            }
        };
        st.load_source = LoadSource::Log {
            replayed: changes.touched(),
        };
        st.format = format;
        st.log_next.store(changes.to, Ordering::Release);
        let old = std::mem::replace(&mut st.store, store);
        // Removed and moved rows' old nodes repaired, searches going on.
        let guard = RwLockWriteGuard::downgrade_to_upgradable(w);
        if let (Some(st), Some(retired)) = (guard.as_ref(), retired) {
            beside::run(|| st.index.repair_retired(&retired));
        }
        let link_later = guard.as_ref().is_some_and(|st| st.index.unlinked() > 0);
        drop(guard);
        // The old follower closes outside the lock.
        drop(old);
        if link_later {
            self.link_in_background();
        }
        Ok(true)
    }

    /// Links the rows a refresh published unlinked on a thread of its own (searches go
    /// on; the next refresh links whatever it has not linked yet before it changes
    /// anything). Where no thread can be started, they are linked now.
    fn link_in_background(&self) {
        let shared = std::sync::Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("nusterdb-link".into())
            .spawn(move || drop(finish_linking(shared.state.upgradable_read())));
        if spawned.is_err() {
            drop(finish_linking(self.shared.state.upgradable_read()));
        }
    }
}

/// New rows a follower's refresh publishes unlinked at most (see `replay_log`): a search
/// scores them directly until they are linked, 4,096 rows of 384 floats in about 0.2 ms
/// on one core.
const LINK_AFTER_ROWS: usize = 4096;

/// Links and publishes the rows a refresh left unlinked, if any — linked under the
/// upgradable read (searches go on), published under the write lock (brief) — and
/// gives the upgradable read back.
fn finish_linking(
    guard: RwLockUpgradableReadGuard<'_, Option<State>>,
) -> RwLockUpgradableReadGuard<'_, Option<State>> {
    match guard.as_ref() {
        Some(st) if st.index.unlinked() > 0 => {
            beside::run(|| st.index.link_unlinked());
            let mut w = RwLockUpgradableReadGuard::upgrade(guard);
            if let Some(st) = w.as_mut() {
                st.index.publish_linked();
            }
            RwLockWriteGuard::downgrade_to_upgradable(w)
        }
        _ => guard,
    }
}

/// The maps of `st` a replay changes.
fn target(st: &mut State) -> Target<'_> {
    Target {
        ids: &mut st.ids,
        names: &mut st.names,
        index: &mut st.index,
        payload: &mut st.payload,
    }
}

/// Opens a read-only follower of the database at `path` and reads its stored config.
///
/// A database another process is still creating — our lock file without `CURRENT`
/// yet, or `CURRENT` but not yet the format marker — is waited for, up to
/// [`CREATION_WAIT`]; so is a MANIFEST a live writer replaced between reading
/// `CURRENT` and opening it. After that wait, a creation that never finished is "no
/// database" ([`Error::Io`], not found) and an unreadable MANIFEST is corruption.
pub(super) fn open_follower(
    path: &Path,
    storage: &StorageConfig,
) -> Result<(Store, DatabaseConfig)> {
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

/// What a follower's load depends on: whether an in-place restore is pending, and
/// which `CURRENT` file the directory has (every restore renames a new one in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct FollowStamp {
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
pub(super) fn follow<T>(
    path: &Path,
    mut attempt: impl FnMut() -> Result<T>,
) -> Result<(T, FollowStamp)> {
    let deadline = Instant::now() + CREATION_WAIT;
    loop {
        let before = follow_stamp(path);
        if !before.pending {
            let out = attempt();
            if follow_stamp(path) == before {
                return out.map(|t| (t, before));
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::db::tests::{meta, writer};
    use crate::db::Location;
    use crate::metadata::{Metadata, Value};
    use crate::storage::codec;
    use crate::storage::keys;
    use crate::storage::lock::WriterLock;

    fn k_of(m: Option<Metadata>) -> Option<i64> {
        match m?.get("k") {
            Some(Value::Int(k)) => Some(*k),
            _ => None,
        }
    }

    fn follower(path: &Path) -> Database {
        Database::open(Location::Path(path.to_path_buf()), None, true).unwrap()
    }

    /// Writes a record the loader cannot decode straight into the writer's store, with
    /// its change-log entry (naming `logged`), as a write of the writer's would be.
    fn put_raw(db: &Database, key: &[u8], value: &[u8], logged: u64) {
        let guard = db.shared.state.read();
        let st = guard.as_ref().unwrap();
        let mut batch = st.store.batch();
        batch.put(key, value);
        st.write_logged(batch, &[logged], false).unwrap();
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
        put_raw(&w, &keys::metadata_key(5), b"\xff not metadata", 5);
        // (No flush: a seal would write the writer's maps, which never saw the raw
        // records, and a reload would read those instead of the damage.)
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

        // Repaired by the writer: the next refresh replays the log from where the
        // follower's state is (the removal and the repair) through a new store, and
        // the old follower's scratch directory goes with the old store.
        put_raw(
            &w,
            &keys::metadata_key(5),
            &codec::encode_metadata(&meta(50)),
            5,
        );
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
}
