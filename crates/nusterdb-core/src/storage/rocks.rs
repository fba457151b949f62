//! `Store`: NusterDB's handle on RocksDB — open modes, atomic write batches, prefix
//! scans, WAL sync, checkpoints and engine statistics. Errors from RocksDB become
//! typed [`Error`]s carrying the path.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rocksdb::{
    BottommostLevelCompaction, CompactOptions, Direction, Env, IteratorMode, Options, ReadOptions,
    WriteBatch, WriteOptions, DB,
};

use super::crypto::{self, Cipher};
use super::fileio::OsIo;
use super::fork;
use super::keys;
use super::lock::{WriterLock, LOCK_FILE};
use super::logscan;
use super::options::{db_options, write_options};
use super::scratch::ScratchDir;
use crate::config::StorageConfig;
use crate::error::{Error, Result};

/// How a store was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// The one writer (holds the writer lock).
    Writer,
    /// A read-only follower beside a possible live writer (a RocksDB secondary
    /// instance); catches up on [`Store::catch_up`].
    ReadOnly,
    /// In memory (RocksDB's in-memory environment): same behaviour, no durability.
    InMemory,
    /// Read-only with no writer beside it (the caller holds the writer lock); see
    /// [`Store::open_frozen`].
    Frozen,
}

/// What the directory at a path holds, judged without modifying it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirState {
    /// Does not exist, or is an empty directory (or holds only our lock file).
    New,
    /// A NusterDB database (RocksDB files and our lock file).
    Existing,
}

/// Classifies `path` without touching it.
///
/// # Errors
/// [`Error::Corruption`] for a regular file, a directory of other files, or a RocksDB
/// directory NusterDB did not make; [`Error::Io`] if it cannot be read.
pub fn inspect_dir(path: &Path) -> Result<DirState> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DirState::New),
        Err(e) => return Err(io(e)),
    };
    let foreign = |detail: &str| Error::NotADatabase {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    };
    if !meta.is_dir() {
        return Err(foreign("the path is a file, not a directory"));
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        names.push(
            entry
                .map_err(io)?
                .file_name()
                .to_string_lossy()
                .into_owned(),
        );
    }
    let has = |n: &str| names.iter().any(|x| x == n);
    match (has("CURRENT"), has(LOCK_FILE)) {
        (true, true) => Ok(DirState::Existing),
        (true, false) => Err(foreign(
            "a RocksDB directory without NusterDB's lock file (made by another program)",
        )),
        (false, _) if names.iter().all(|n| n == LOCK_FILE) => Ok(DirState::New),
        // A creation that stopped (or, without the writer lock, is still running)
        // before RocksDB wrote CURRENT: nothing was ever stored, and a writer holding
        // the lock creates the database over it.
        (false, true) if names.iter().all(|n| is_creation_file(n)) => Ok(DirState::New),
        (false, true) => Err(Error::Corruption {
            path: path.to_path_buf(),
            detail: "RocksDB's CURRENT file is missing from a NusterDB database".into(),
        }),
        (false, false) => Err(foreign("the directory is not empty")),
    }
}

/// Whether `name` is a file a RocksDB creation writes before `CURRENT` (`NewDB`: the
/// info log, the identity, RocksDB's lock, the first MANIFEST, temporary files), or our
/// lock file or key file (written before RocksDB starts). A directory of nothing else
/// holds no stored record.
fn is_creation_file(name: &str) -> bool {
    matches!(
        name,
        LOCK_FILE | crypto::KEY_FILE | "IDENTITY" | "LOCK" | "LOG" | "MANIFEST-000001"
    ) || name.starts_with("LOG.old.")
        || name.ends_with(".dbtmp")
}

/// The cipher of an existing database at `path`, unlocked with the master key in `cfg`,
/// before RocksDB opens it (so a wrong key modifies nothing).
fn existing_cipher(path: &Path, cfg: &StorageConfig) -> Result<Option<Arc<Cipher>>> {
    let refuse = |detail: &str| Error::EncryptionKey {
        path: path.to_path_buf(),
        detail: detail.into(),
    };
    match (crypto::is_encrypted(path), &cfg.encryption) {
        (true, Some(master)) => crypto::unlock(path, master).map(|c| Some(Arc::new(c))),
        (true, None) => Err(refuse(
            "the database is encrypted: open it with its master key (encryption=...)",
        )),
        (false, Some(_)) => Err(refuse(
            "the database is not encrypted, but a master key was given (an existing \
             database cannot be encrypted in place: copy its records into a new encrypted one)",
        )),
        (false, None) => Ok(None),
    }
}

/// The cipher of a database being created at `path`: a fresh data key wrapped into the
/// key file when `cfg` has a master key. Without one, a key file left by an encrypted
/// creation that stopped before storing anything is removed, so the new plaintext
/// database is not taken for an encrypted one.
fn new_cipher(path: &Path, cfg: &StorageConfig) -> Result<Option<Arc<Cipher>>> {
    match &cfg.encryption {
        Some(master) => crypto::create_key_file(&OsIo, path, master).map(|c| Some(Arc::new(c))),
        None => {
            let file = path.join(crypto::KEY_FILE);
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
                    path: file,
                    source: e,
                }),
                _ => Ok(None),
            }
        }
    }
}

/// The start of the detail of a follower's open that found the MANIFEST named by
/// `CURRENT` unreadable.
pub const MANIFEST_UNREADABLE: &str = "the MANIFEST named by CURRENT cannot be read";

fn no_database(path: &Path) -> Error {
    Error::NoDatabase {
        path: path.to_path_buf(),
        detail: "nothing to open read-only".into(),
    }
}

/// Maps a RocksDB error, naming `path`.
pub fn map_rocks(path: &Path, e: rocksdb::Error) -> Error {
    use rocksdb::ErrorKind;
    let msg = e.to_string();
    match e.kind() {
        ErrorKind::Corruption => Error::Corruption {
            path: path.to_path_buf(),
            detail: msg,
        },
        ErrorKind::IOError => Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(io_kind_of(&msg), msg),
        },
        _ => Error::Storage(format!("{msg} (at {})", path.display())),
    }
}

/// The I/O error kind behind a RocksDB I/O error, read from its message (RocksDB
/// reports the operating system's error only as text), so callers can tell a full disk
/// from a permission problem.
fn io_kind_of(msg: &str) -> std::io::ErrorKind {
    use std::io::ErrorKind as K;
    const KINDS: [(&str, K); 5] = [
        ("No space left on device", K::StorageFull),
        ("Permission denied", K::PermissionDenied),
        ("No such file or directory", K::NotFound),
        ("Read-only file system", K::ReadOnlyFilesystem),
        ("Disk quota exceeded", K::QuotaExceeded),
    ];
    KINDS
        .iter()
        .find(|(text, _)| msg.contains(text))
        .map_or(K::Other, |&(_, k)| k)
}

/// An open RocksDB with NusterDB's options.
pub struct Store {
    // Fields drop in this order: RocksDB closes first, then what it needed goes —
    // the in-memory Env, the writer lock, and the scratch directory a secondary
    // instance writes its own logs to.
    db: DB,
    opts: Options,
    write_opts: WriteOptions,
    path: PathBuf,
    mode: OpenMode,
    /// The storage knobs of this open (a follower reopens with them on refresh).
    cfg: StorageConfig,
    /// The data key of an encrypted database: every value is sealed on the way in and
    /// opened on the way out (see `storage::crypto`).
    cipher: Option<Arc<Cipher>>,
    _env: Option<Env>,
    _lock: Option<Arc<WriterLock>>,
    _scratch: Option<ScratchDir>,
}

/// A write batch for a [`Store`]: applied atomically by [`Store::write`], its values
/// encrypted when the store is.
pub struct Batch {
    inner: WriteBatch,
    cipher: Option<Arc<Cipher>>,
}

impl Batch {
    /// Stores `value` at `key`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let key = key.as_ref();
        match &self.cipher {
            Some(c) => self.inner.put(key, c.seal_value(key, value.as_ref())),
            None => self.inner.put(key, value),
        }
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.inner.delete(key);
    }

    /// Removes the keys in `from..to`.
    pub fn delete_range(&mut self, from: impl AsRef<[u8]>, to: impl AsRef<[u8]>) {
        self.inner.delete_range(from.as_ref(), to.as_ref());
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .finish()
    }
}

impl Store {
    /// Opens (or creates) the writer store at `path`, under the writer `lock` the
    /// caller took. An existing database is to be opened through [`Store::open_frozen`]
    /// under the same lock first: that checks its logs (unchanged since, as the lock
    /// was held) and is why the lock is taken before this open.
    ///
    /// # Errors
    /// Foreign or damaged directories, engine errors.
    pub fn open_writer(path: &Path, cfg: &StorageConfig, lock: Arc<WriterLock>) -> Result<Self> {
        fork::check_usable()?;
        let state = inspect_dir(path)?;
        let cipher = match state {
            DirState::New => new_cipher(path, cfg)?,
            DirState::Existing => existing_cipher(path, cfg)?,
        };
        let mut opts = db_options(cfg);
        fork::engine_starting();
        // Never create a fresh database over a directory that should hold one.
        opts.create_if_missing(state == DirState::New);
        let db = DB::open(&opts, path).map_err(|e| map_rocks(path, e))?;
        Ok(Self {
            db,
            opts,
            write_opts: write_options(cfg),
            path: path.to_path_buf(),
            mode: OpenMode::Writer,
            cfg: cfg.clone(),
            cipher,
            _env: None,
            _lock: Some(lock),
            _scratch: None,
        })
    }

    /// Opens the existing database at `path` read-only, with nothing written: RocksDB
    /// replays the write-ahead log into memory exactly as a writer's open would, but
    /// keeps the result there instead of flushing it to new files. Holding the writer
    /// `lock` means no writer changes the files meanwhile, so what this store reads is
    /// what a writer opened next will hold: a writer's open is checked and loaded
    /// through it first, and a database that fails either is refused untouched.
    ///
    /// # Errors
    /// A path that holds no NusterDB database; engine errors.
    pub fn open_frozen(path: &Path, cfg: &StorageConfig, lock: &WriterLock) -> Result<Self> {
        debug_assert!(lock.path().starts_with(path));
        if inspect_dir(path)? == DirState::New {
            return Err(no_database(path));
        }
        fork::check_usable()?;
        let cipher = existing_cipher(path, cfg)?;
        logscan::check_logs(path)?;
        let mut opts = db_options(cfg);
        fork::engine_starting();
        opts.create_if_missing(false);
        let db = DB::open_for_read_only(&opts, path, false).map_err(|e| map_rocks(path, e))?;
        Ok(Self {
            db,
            opts,
            write_opts: write_options(cfg),
            path: path.to_path_buf(),
            mode: OpenMode::Frozen,
            cfg: cfg.clone(),
            cipher,
            _env: None,
            _lock: None,
            _scratch: None,
        })
    }

    /// Opens a read-only follower of the database at `path`, safe beside a live writer.
    ///
    /// # Errors
    /// A path that holds no NusterDB database; engine errors.
    pub fn open_read_only(path: &Path, cfg: &StorageConfig) -> Result<Self> {
        if inspect_dir(path)? == DirState::New {
            return Err(no_database(path));
        }
        let cipher = existing_cipher(path, cfg)?;
        logscan::check_logs(path)?;
        fork::check_usable()?;
        let scratch = ScratchDir::create()?;
        let mut opts = db_options(cfg);
        fork::engine_starting();
        opts.create_if_missing(false);
        // Secondaries must keep every file open: the primary may delete them.
        opts.set_max_open_files(-1);
        // On failure the scratch directory is removed as `scratch` drops.
        let db = DB::open_as_secondary(&opts, path, scratch.path()).map_err(|e| {
            // A TryAgain here means CURRENT named a MANIFEST that could not be read
            // (a live writer may just have switched MANIFESTs; the caller retries).
            if e.kind() == rocksdb::ErrorKind::TryAgain {
                Error::Corruption {
                    path: path.to_path_buf(),
                    detail: format!("{MANIFEST_UNREADABLE}: {e}"),
                }
            } else {
                map_rocks(path, e)
            }
        })?;
        Ok(Self {
            db,
            opts,
            write_opts: write_options(cfg),
            path: path.to_path_buf(),
            mode: OpenMode::ReadOnly,
            cfg: cfg.clone(),
            cipher,
            _env: None,
            _lock: None,
            _scratch: Some(scratch),
        })
    }

    /// The data key of an encrypted store.
    pub fn cipher(&self) -> Option<&Arc<Cipher>> {
        self.cipher.as_ref()
    }

    /// An empty batch for [`Store::write`].
    pub fn batch(&self) -> Batch {
        Batch {
            inner: WriteBatch::default(),
            cipher: self.cipher.clone(),
        }
    }

    /// `value` as stored at `key`, decrypted for an encrypted store.
    fn plain<'v>(&self, key: &[u8], value: &'v [u8]) -> Result<std::borrow::Cow<'v, [u8]>> {
        match &self.cipher {
            None => Ok(std::borrow::Cow::Borrowed(value)),
            Some(c) => c
                .open_value(key, value)
                .map(std::borrow::Cow::Owned)
                .map_err(|detail| Error::Corruption {
                    path: self.path.clone(),
                    detail: format!("the value at key {}: {detail}", keys::describe(key)),
                }),
        }
    }

    /// The storage knobs this store was opened with.
    pub fn storage(&self) -> &StorageConfig {
        &self.cfg
    }

    /// The scratch directory of a follower.
    pub fn scratch_dir(&self) -> Option<&Path> {
        self._scratch.as_ref().map(ScratchDir::path)
    }

    /// Opens a fresh store in RocksDB's in-memory environment.
    ///
    /// # Errors
    /// Engine errors.
    pub fn open_in_memory(cfg: &StorageConfig) -> Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = PathBuf::from(format!(
            "/nusterdb-memory/{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        if cfg.encryption.is_some() {
            return Err(Error::invalid(
                "an in-memory database stores nothing at rest: encryption is for databases \
                 at a path",
            ));
        }
        fork::check_usable()?;
        let env = Env::mem_env().map_err(|e| map_rocks(&path, e))?;
        let mut opts = db_options(cfg);
        fork::engine_starting();
        opts.set_env(&env);
        opts.create_if_missing(true);
        let db = DB::open(&opts, &path).map_err(|e| map_rocks(&path, e))?;
        Ok(Self {
            db,
            opts,
            write_opts: write_options(cfg),
            path,
            mode: OpenMode::InMemory,
            cfg: cfg.clone(),
            cipher: None,
            _env: Some(env),
            _lock: None,
            _scratch: None,
        })
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How this store was opened.
    pub fn mode(&self) -> OpenMode {
        self.mode
    }

    fn err(&self, e: rocksdb::Error) -> Error {
        map_rocks(&self.path, e)
    }

    /// The value at `key`.
    ///
    /// # Errors
    /// Engine errors.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.db.get(key).map_err(|e| self.err(e))? {
            Some(v) if self.cipher.is_some() => Ok(Some(self.plain(key, &v)?.into_owned())),
            v => Ok(v),
        }
    }

    /// Applies `batch` atomically (one WAL record; fsync'd when `sync_writes`).
    ///
    /// # Errors
    /// [`Error::ReadOnly`] on a follower; engine errors (nothing applied).
    pub fn write(&self, batch: Batch) -> Result<()> {
        if matches!(self.mode, OpenMode::ReadOnly | OpenMode::Frozen) {
            return Err(Error::ReadOnly);
        }
        self.db
            .write_opt(batch.inner, &self.write_opts)
            .map_err(|e| self.err(e))
    }

    /// The ids of the records with `prefix`, ascending from `from`, while `f` returns
    /// `true`.
    ///
    /// # Errors
    /// Storage errors; a malformed key.
    pub fn ids_from(&self, prefix: u8, from: u64, mut f: impl FnMut(u64) -> bool) -> Result<()> {
        self.walk(prefix, from, |id, _| Ok(f(id)))
    }

    /// The records with `prefix`, ascending by id from `from`, while `f` returns
    /// `Ok(true)`.
    ///
    /// # Errors
    /// Engine errors, a malformed key under the prefix, or `f`'s error.
    pub fn walk(
        &self,
        prefix: u8,
        from: u64,
        mut f: impl FnMut(u64, &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let start = keys::record_key(prefix, from);
        for item in self
            .db
            .iterator(IteratorMode::From(&start, Direction::Forward))
        {
            let (k, v) = item.map_err(|e| self.err(e))?;
            if k.first() != Some(&prefix) {
                break;
            }
            let id = keys::parse_record_key(prefix, &k).ok_or_else(|| Error::Corruption {
                path: self.path.clone(),
                detail: format!("malformed record key of {} bytes", k.len()),
            })?;
            if !f(id, &self.plain(&k, &v)?)? {
                break;
            }
        }
        Ok(())
    }

    /// Every `(id, value)` record under `prefix`, in id order.
    ///
    /// # Errors
    /// Engine errors, or a malformed key under the prefix.
    pub fn scan(&self, prefix: u8, mut f: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        self.walk(prefix, 0, |id, v| f(id, v).map(|()| true))
    }

    /// Whether the keyspace holds no key at all.
    ///
    /// # Errors
    /// Engine errors.
    pub fn is_empty(&self) -> Result<bool> {
        match self.db.iterator(IteratorMode::Start).next() {
            None => Ok(true),
            Some(Ok(_)) => Ok(false),
            Some(Err(e)) => Err(self.err(e)),
        }
    }

    /// Syncs the WAL to stable storage, making every acknowledged write survive power loss.
    ///
    /// # Errors
    /// Engine errors.
    pub fn sync_wal(&self) -> Result<()> {
        // A follower writes nothing; an in-memory store has nothing durable to sync.
        if self.mode != OpenMode::Writer {
            return Ok(());
        }
        self.db.flush_wal(true).map_err(|e| self.err(e))
    }

    /// Catches a read-only follower up with the writer's acknowledged writes.
    ///
    /// # Errors
    /// Engine errors.
    pub fn catch_up(&self) -> Result<()> {
        if self.mode != OpenMode::ReadOnly {
            return Ok(());
        }
        self.db.try_catch_up_with_primary().map_err(|e| self.err(e))
    }

    /// Writes a consistent point-in-time copy of the database into `dir` (which must
    /// not exist), hard-linking immutable files where possible.
    ///
    /// # Errors
    /// Engine or I/O errors.
    pub fn checkpoint(&self, dir: &Path) -> Result<()> {
        let cp = rocksdb::checkpoint::Checkpoint::new(&self.db).map_err(|e| self.err(e))?;
        cp.create_checkpoint(dir).map_err(|e| map_rocks(dir, e))
    }

    /// An integer engine property (e.g. `rocksdb.total-sst-files-size`).
    pub fn int_property(&self, name: &str) -> Option<u64> {
        self.db.property_int_value(name).ok().flatten()
    }

    /// Bytes of memory the engine holds, from its own accounting: every memtable
    /// (`rocksdb.size-all-mem-tables`: the active one, immutable ones waiting for a
    /// flush, and flushed ones still pinned), the block cache's contents
    /// (`rocksdb.block-cache-usage`) and the open table files' index and filter blocks
    /// kept outside the cache (`rocksdb.estimate-table-readers-mem`).
    pub fn memory_bytes(&self) -> u64 {
        self.memory_parts()
            .iter()
            .fold(0u64, |a, p| a.saturating_add(p.1))
    }

    /// [`Store::memory_bytes`] by part: `memtables`, `block_cache` (usage) and
    /// `table_readers` (index and filter blocks outside the cache).
    pub fn memory_parts(&self) -> Vec<(&'static str, u64)> {
        [
            ("memtables", "rocksdb.size-all-mem-tables"),
            ("block_cache", "rocksdb.block-cache-usage"),
            ("table_readers", "rocksdb.estimate-table-readers-mem"),
        ]
        .iter()
        .map(|&(part, p)| (part, self.int_property(p).unwrap_or(0)))
        .collect()
    }

    /// The statistics dump when statistics are enabled.
    pub fn statistics(&self) -> Option<String> {
        self.opts.get_statistics()
    }

    /// The value of one statistics ticker (0 when statistics are off).
    pub fn ticker(&self, t: rocksdb::statistics::Ticker) -> u64 {
        self.opts.get_ticker_count(t)
    }

    /// Flushes memtables to SST files (used before measuring on-disk size).
    ///
    /// # Errors
    /// Engine errors.
    pub fn flush_memtables(&self) -> Result<()> {
        if matches!(self.mode, OpenMode::ReadOnly | OpenMode::Frozen) {
            return Ok(());
        }
        self.db.flush().map_err(|e| self.err(e))
    }

    /// Reads every key and value of the keyspace in key order with block checksums
    /// verified and without filling the block cache (so every block is read from its
    /// file, not answered from memory), handing each pair to `f` (values decrypted, and
    /// so authenticated, in an encrypted store).
    ///
    /// # Errors
    /// The first engine error (a checksum mismatch is [`Error::Corruption`]) or value
    /// that fails its authentication tag; the pairs before it were handed to `f`.
    pub fn scan_all_checked(&self, mut f: impl FnMut(&[u8], &[u8])) -> Result<()> {
        let mut ro = ReadOptions::default();
        ro.set_verify_checksums(true);
        ro.fill_cache(false);
        for item in self.db.iterator_opt(IteratorMode::Start, ro) {
            let (k, v) = item.map_err(|e| self.err(e))?;
            f(&k, &self.plain(&k, &v)?);
        }
        Ok(())
    }

    /// Compacts the whole keyspace into the bottommost level, rewriting every table
    /// file (also the bottommost ones), so deleted and overwritten records stop taking
    /// space. Memtables are flushed first.
    ///
    /// # Errors
    /// [`Error::ReadOnly`] on a follower; engine errors of the flush (RocksDB reports
    /// none from the compaction itself).
    pub fn compact_all(&self) -> Result<()> {
        if matches!(self.mode, OpenMode::ReadOnly | OpenMode::Frozen) {
            return Err(Error::ReadOnly);
        }
        self.db.flush().map_err(|e| self.err(e))?;
        let mut opts = CompactOptions::default();
        opts.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        opts.set_exclusive_manual_compaction(false);
        self.db
            .compact_range_opt(None::<&[u8]>, None::<&[u8]>, &opts);
        Ok(())
    }
}
