//! Opening a database: [`Database::open`] and its variants, the writer's open (checked
//! and loaded through a frozen store that writes nothing, completing an in-place
//! restore a killed process committed, reconciling the stored config with the one
//! given), creation and the clean-up of a creation that failed.
//!
//! The load itself is in `load`; a follower's open waits as `follow` describes.

use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::follow::{follow, open_follower};
use super::load::{load_maps, read_stored_config};
use super::{corruption, Database, Loaded, Location, Shared, State};
use crate::config::{DatabaseConfig, Fields, StorageConfig};
use crate::error::{Error, Result};
use crate::progress::{Observer, Unobserved};
use crate::snapshot;
use crate::storage::changelog;
use crate::storage::codec::{self, encode_config, encode_format};
use crate::storage::fileio::{FileIo, OsIo};
use crate::storage::fork::ProcessToken;
use crate::storage::keys::{CONFIG_KEY, FORMAT_KEY};
use crate::storage::lock::{WriterLock, LOCK_FILE};
use crate::storage::rocks::inspect_dir;
use crate::storage::{DirState, Store};

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
        let mut config = config;
        if let Some(c) = config.as_mut() {
            if c.storage.encryption.is_some() && !c.stated.contains(crate::config::Field::Vectors) {
                // Encrypted rows live in memory (see `Shared::seal`): the default there.
                c.vectors = crate::config::VectorStorage::Memory;
            }
        }
        if let Some(c) = &config {
            c.validate()?;
            if matches!(location, Location::Memory)
                && c.vectors == crate::config::VectorStorage::Disk
                && c.stated.contains(crate::config::Field::Vectors)
            {
                return Err(Error::invalid(
                    "vectors=\"disk\" reads rows from a seal's files: an in-memory database \
                     has none",
                ));
            }
        }
        if matches!(&location, Location::Path(p) if p.as_os_str().is_empty()) {
            // An empty path would put the database's files in the working directory.
            return Err(Error::invalid(
                "the path is empty: give a directory, or None / \":memory:\" for an \
                 in-memory database",
            ));
        }
        let mut lock = None;
        let mut follower_stamp = None;
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
                // Every rule, the cross-field ones the caller's partial config skipped.
                config.validate()?;
                let store = Store::open_in_memory(&config.storage)?;
                Self::initialise(&store, &config)?;
                (store, config, None)
            }
            Location::Path(path) if read_only => {
                let first = config
                    .as_ref()
                    .map_or_else(StorageConfig::default, |c| c.storage.clone());
                // Loaded here, under `follow`, so an in-place restore meanwhile is seen.
                let (opened, stamp) = follow(path, || {
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
                    let loaded = load_maps(
                        &store,
                        &config,
                        Some((io.as_ref(), path.as_path())),
                        observer,
                    )?;
                    Ok((store, config, Some(loaded)))
                })?;
                follower_stamp = Some(stamp);
                opened
            }
            Location::Path(path) => {
                let (store, config, loaded, held) =
                    Self::open_writer(path, config, io.as_ref(), observer)?;
                lock = Some(held);
                (store, config, loaded)
            }
        };
        let loaded = match loaded {
            Some(loaded) => loaded,
            None => {
                let dir = match &location {
                    Location::Path(p) => Some((io.as_ref(), p.as_path())),
                    Location::Memory => None,
                };
                load_maps(&store, &config, dir, observer)?
            }
        };
        let cipher = store.cipher().cloned();
        let state = State::new(store, loaded);
        // The load's temporary structures are freed: give their pages back.
        crate::heap::trim();
        let shared = Arc::new(Shared {
            cipher,
            config,
            location,
            read_only,
            state: RwLock::new(Some(state)),
            io,
            save_lock: Mutex::new(()),
            refresh_lock: Mutex::new(follower_stamp),
        });
        if !read_only {
            if let Some(st) = shared.state.read().as_ref() {
                if let Some(dir) = shared.seal_dir() {
                    // Files of seals a crash cut short; failing to list them only
                    // leaves them for the next open.
                    let seal = *st.seal.lock();
                    // The stored parts (not the loaded ones: an open that could not
                    // use them must not delete what the seal names).
                    let parts = seal
                        .and_then(|s| changelog::stored_parts(&st.store, s).ok())
                        .map(|(p, _)| p)
                        .unwrap_or_default();
                    let _ = super::seal::sweep(shared.io.as_ref(), dir, seal, &parts);
                }
                shared.count_load_redo(st);
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
                let loaded = load_maps(&frozen, &config, Some((io, path)), observer)?;
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
            // Every rule, the cross-field ones the caller's partial config skipped.
            config.validate()?;
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
        let mut batch = store.batch();
        // The newest format: this build keeps the change log from the first write.
        batch.put(FORMAT_KEY, encode_format(codec::FORMAT_VERSION));
        batch.put(CONFIG_KEY, encode_config(config));
        store.write(batch)?;
        store.sync_wal()
    }

    /// Replaces the stored config (synced: it decides how the next open runs).
    pub(super) fn store_config(store: &Store, config: &DatabaseConfig) -> Result<()> {
        let mut batch = store.batch();
        batch.put(CONFIG_KEY, encode_config(config));
        store.write(batch)?;
        store.sync_wal()
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
pub(super) fn has_table_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok())
            .any(|e| e.path().extension().is_some_and(|x| x == "sst"))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::path::PathBuf;

    use super::*;

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
}
