//! Snapshots: consistent point-in-time copies of a database, each a directory that
//! opens as a read-only database on its own (and as a writable one once copied out with
//! [`restore`]).
//!
//! A snapshot lives in `<db>/snapshots/<name>/`: a RocksDB checkpoint (immutable files
//! hard-linked where possible), NusterDB's lock file, and `SNAPSHOT` — the manifest.
//!
//! Every directory is made complete somewhere else and then renamed into place, so a
//! crash (or a racing thread) never exposes a half one:
//! - **Create** builds the snapshot in `<snapshots>/.creating-<pid>-<n>/db` (a staging
//!   directory created exclusively, see [`Staging`]), writes and fsyncs the manifest,
//!   then renames `db` to `<name>` — a rename onto an existing snapshot fails, so of two
//!   racing creators of one name exactly one wins and the other gets
//!   [`Error::AlreadyExists`].
//! - **Restore** copies into `<target>.restoring-<pid>-<n>/db` beside the target,
//!   fsyncs every file and the directory, then renames it to the target (which must not
//!   exist, or be an empty directory): the target is absent or complete, never half.
//! - **Delete** renames the snapshot to `<snapshots>/.deleting-<pid>-<n>/db` before
//!   removing its files, so listing never shows a half-deleted one.
//! - **Restore in place** (the open database rolled back, see [`stage_in_place`]) copies
//!   the snapshot's files (tables hard-linked) into `<db>/.in-place-restore-<pid>-<n>/db`,
//!   fsyncs them, and
//!   commits by writing the marker `<db>/nusterdb.restore` atomically (a temporary file
//!   renamed, the directory fsync'd). The marker lists the staged files; from then on
//!   the switch is rolled forward by [`finish_in_place`], in the restoring handle or by
//!   the next writer open after a crash: each staged file still in staging is renamed
//!   into `<db>` (`CURRENT` last), every other regular file of `<db>` except the lock
//!   files and the marker is removed, the directory is fsync'd, and only then the marker
//!   is removed. Each step can be redone, so a crash anywhere gives, on the next open,
//!   the old database (no marker) or the snapshot's (marker rolled forward). A marker
//!   whose staging directory is gone is a commit that failed before anything moved, and
//!   is discarded. Followers wait while the marker exists (see `Database::refresh`).
//!
//! Staging directories are owned through an OS lock on their `staging.lock`, which the
//! OS drops when the owner dies; one whose lock can be taken is left over from a killed
//! process and is removed by the next create, delete or prune (snapshot staging), the
//! next restore to the same target (restore staging), or the next writer open or
//! in-place restore (in-place staging without a marker). Names starting with `.` are not
//! snapshot names, so listing never shows them.
//!
//! **Pinning.** A restore holds a shared OS lock on the snapshot's lock file while it
//! copies; delete takes it exclusively, so a delete waits for the restores of that
//! snapshot to finish (on Unix; on other systems it may fail with an I/O error
//! instead), and pruning skips a pinned snapshot (the next prune takes it). A restore
//! that loses the race with a delete reports the snapshot missing.
//!
//! **Automatic snapshots** carry `nusterdb.auto = true` in their manifest (every manifest
//! written now has the field, `false` for the caller's snapshots), and only they are
//! pruned. A manifest without the field (written before it existed) counts as automatic
//! only if its name has exactly the form [`auto_name`] generates, `auto-<digits>-<digits>`.
//!
//! Manifest format (little-endian): magic `NDBSNAP1`, format version u32, body length
//! u32, body (record codec metadata: the user's fields plus `name`, `vector_count`,
//! `nusterdb.auto`), CRC32 of everything before it. In an encrypted database the
//! manifest is those bytes encrypted (`storage::crypto`'s file format), so listing takes
//! the data key, and a snapshot carries the database's key file (it opens on its own
//! with the master key).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::metadata::{now_unix, Metadata, Value};
use crate::storage::codec::{decode_metadata, encode_metadata};
use crate::storage::crypto::Cipher;
use crate::storage::fileio::{write_atomic, write_synced, FileIo, OsIo};
use crate::storage::lock::LOCK_FILE;

const MAGIC: &[u8; 8] = b"NDBSNAP1";
const VERSION: u32 = 1;
/// The manifest's file name inside a snapshot directory.
pub const MANIFEST: &str = "SNAPSHOT";
/// Suffix of the build directories of earlier versions (removed as leftovers).
const PARTIAL: &str = ".partial";
/// Name prefix of snapshots taken by the auto-snapshot thread.
pub const AUTO_PREFIX: &str = "auto-";
/// How many auto snapshots are kept; older ones are deleted after each new one.
pub const AUTO_RETENTION: usize = 10;
/// The manifest field marking an automatic snapshot (a bool). Reserved: the caller's
/// metadata may not use it.
pub const AUTO_FIELD: &str = "nusterdb.auto";
/// Staging directory prefixes: snapshots being made and deleted (in the snapshots
/// directory), and restores being copied (after the target's name, beside it).
const CREATING: &str = ".creating-";
const DELETING: &str = ".deleting-";
const RESTORING: &str = ".restoring-";
/// Staging directories of in-place restores, inside the database directory.
const IN_PLACE: &str = ".in-place-restore-";
/// The marker of a committed in-place restore, in the database directory.
pub const RESTORE_MARKER: &str = "nusterdb.restore";
/// Magic bytes of the marker.
const MARKER_MAGIC: &[u8; 8] = b"NDBRSTR1";
/// The owner's lock file inside a staging directory.
const STAGING_LOCK: &str = "staging.lock";
/// The directory inside a staging directory that is renamed out when complete.
const STAGED: &str = "db";

/// What is known about one snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotInfo {
    pub name: String,
    pub path: PathBuf,
    /// Unix seconds.
    pub created_at: u64,
    pub vector_count: u64,
    /// Taken by the auto-snapshot thread (and so subject to its retention).
    pub auto: bool,
    /// The caller's metadata (`snapshot_with_metadata`).
    pub metadata: Metadata,
}

/// A snapshot directory whose manifest cannot be read: left out of listings and pruning
/// (never deleted automatically); [`delete`] still removes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamagedSnapshot {
    pub name: String,
    pub path: PathBuf,
    /// Why the manifest is unusable.
    pub reason: String,
}

/// The snapshots of a database: the readable ones, oldest first, and the damaged ones.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Listing {
    pub snapshots: Vec<SnapshotInfo>,
    pub damaged: Vec<DamagedSnapshot>,
}

/// The snapshots directory of the database at `db`.
pub fn snapshots_dir(db: &Path) -> PathBuf {
    db.join("snapshots")
}

/// Whether the directory at `path` is a snapshot (it holds the manifest).
pub fn is_snapshot_dir(path: &Path) -> bool {
    path.join(MANIFEST).is_file()
}

/// Refuses to open a snapshot as a writer: a snapshot changed in place would restore
/// altered data.
///
/// # Errors
/// [`Error::SnapshotNotWritable`] when `path` is a snapshot.
pub fn refuse_writer_open(path: &Path) -> Result<()> {
    if is_snapshot_dir(path) {
        Err(Error::SnapshotNotWritable {
            path: path.to_path_buf(),
        })
    } else {
        Ok(())
    }
}

/// Checks a snapshot name: 1–128 of `A-Z a-z 0-9 . _ -`, not starting with `.`, not
/// ending with `.partial` or `.tmp` (names of directories under construction: staging
/// directories start with `.`, earlier versions' end with `.partial`, RocksDB's with
/// `.tmp`).
///
/// # Errors
/// Any other name.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && !name.ends_with(PARTIAL)
        && !name.ends_with(".tmp")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid snapshot name {name:?}: use 1-128 letters, digits, '.', '_' or '-', \
             not starting with '.' nor ending with '.partial' or '.tmp'"
        )))
    }
}

/// Whether `name` has exactly the form [`auto_name`] generates: `auto-<digits>-<digits>`.
pub fn is_auto_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(AUTO_PREFIX) else {
        return false;
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    rest.split_once('-')
        .is_some_and(|(secs, n)| all_digits(secs) && all_digits(n))
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn no_snapshot(name: &str) -> Error {
    Error::invalid(format!("no snapshot named {name:?}"))
}

/// Encodes a manifest.
pub fn encode_manifest(info_meta: &Metadata) -> Vec<u8> {
    let body = encode_metadata(info_meta);
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&VERSION.to_le_bytes());
    // Metadata records are bounded by `metadata::MAX_METADATA_BYTES`, far below 4 GiB;
    // saturating, a violated bound would give a manifest the decoder refuses.
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a manifest, checking magic, version, length and CRC.
///
/// # Errors
/// Any damage, as a detail message.
pub fn decode_manifest(bytes: &[u8]) -> std::result::Result<Metadata, String> {
    if bytes.len() < 20 {
        return Err(format!("manifest too short ({} bytes)", bytes.len()));
    }
    let (content, crc_bytes) = bytes.split_at(bytes.len() - 4);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(crc_bytes);
    if crc32fast::hash(content) != u32::from_le_bytes(crc) {
        return Err("manifest checksum mismatch".into());
    }
    if &content[..8] != MAGIC {
        return Err("manifest has the wrong magic bytes".into());
    }
    let mut b4 = [0u8; 4];
    b4.copy_from_slice(&content[8..12]);
    let version = u32::from_le_bytes(b4);
    if version == 0 || version > VERSION {
        return Err(format!(
            "snapshot format version {version} not supported (max {VERSION})"
        ));
    }
    b4.copy_from_slice(&content[12..16]);
    let len = u32::from_le_bytes(b4) as usize;
    if content.len() != 16 + len {
        return Err("manifest length does not match its contents".into());
    }
    decode_metadata(&content[16..])
}

// ------------------------------------------------------------------ staging directories

/// Serialises, within this process, making a staging directory (mkdir, then its lock)
/// with the search for stale ones, so a cleaner never sees one between the two steps.
static STAGING: std::sync::Mutex<()> = std::sync::Mutex::new(());
static STAGING_COUNTER: AtomicU64 = AtomicU64::new(0);

fn staging_guard() -> std::sync::MutexGuard<'static, ()> {
    STAGING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Opens (creating it if needed) the lock file at `path` and takes its exclusive lock
/// without waiting: `None` if another open file holds it.
fn try_lock_file(path: &Path) -> Result<Option<File>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err(path))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(io_err(path)(e)),
    }
}

/// A directory under construction, `<parent>/<prefix><pid>-<n>`, created exclusively
/// and owned through an exclusive OS lock on its `staging.lock` while this value lives.
/// The work goes into its subdirectory `db` ([`Staging::work`]), renamed out when
/// complete. Dropping it removes the directory and whatever is left in it.
struct Staging {
    dir: PathBuf,
    lock: Option<File>,
    /// Left in place when dropped (a committed in-place restore's, which the marker
    /// names until the restore is complete).
    keep: bool,
}

impl Staging {
    fn create(parent: &Path, prefix: &str) -> Result<Self> {
        let _one = staging_guard();
        loop {
            let n = STAGING_COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = parent.join(format!("{prefix}{}-{n}", std::process::id()));
            match fs::create_dir(&dir) {
                Ok(()) => {}
                // A leftover of an earlier process with our pid: take the next number.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err(&dir)(e)),
            }
            // Only another process's cleaner can hold it (it then removes the directory).
            if let Some(lock) = try_lock_file(&dir.join(STAGING_LOCK))? {
                return Ok(Self {
                    dir,
                    lock: Some(lock),
                    keep: false,
                });
            }
        }
    }

    fn work(&self) -> PathBuf {
        self.dir.join(STAGED)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Unlocked first: some systems cannot remove a directory with an open file in it.
        drop(self.lock.take());
        if !self.keep {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether `name` is `<prefix><digits>-<digits>`, a staging directory of ours.
fn is_staging_name(name: &str, prefix: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix) else {
        return false;
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    rest.split_once('-')
        .is_some_and(|(pid, n)| all_digits(pid) && all_digits(n))
}

/// Removes the staging directories `<prefix>…` in `parent` whose owner is gone (their
/// lock can be taken). Best effort: what cannot be removed now is tried next time.
fn clean_stale(parent: &Path, prefix: &str) {
    let _one = staging_guard();
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !is_staging_name(&name.to_string_lossy(), prefix)
            || !entry.file_type().is_ok_and(|t| t.is_dir())
        {
            continue;
        }
        let dir = entry.path();
        if let Ok(Some(lock)) = try_lock_file(&dir.join(STAGING_LOCK)) {
            drop(lock);
            let _ = fs::remove_dir_all(&dir);
        }
    }
}

/// Removes what killed snapshot creations and deletions left in the snapshots
/// directory: stale staging directories, and the `<name>.partial` build directories
/// (and RocksDB's `<name>.partial.tmp`) of earlier versions. Only the writer makes and
/// deletes snapshots, so no `.partial` directory is in progress.
fn clean_snapshots_dir(root: &Path) {
    clean_stale(root, CREATING);
    clean_stale(root, DELETING);
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let legacy = name.ends_with(PARTIAL) || name.ends_with(".partial.tmp");
        if legacy && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Renames the complete directory `from` to `to` through `io`; a `to` that exists
/// (the rename fails onto a non-empty directory or a file) is `exists()`.
fn rename_into_place(
    io: &dyn FileIo,
    from: &Path,
    to: &Path,
    exists: impl FnOnce() -> Error,
) -> Result<()> {
    io.rename(from, to).map_err(|e| {
        if to.symlink_metadata().is_ok() {
            exists()
        } else {
            io_err(to)(e)
        }
    })
}

// ------------------------------------------------------------------ pins

/// Whether the open `file` is still the file at `path` (not replaced or removed).
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Without inode numbers on stable Rust, only that a file is still there.
#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.is_file()
}

/// A snapshot held against deletion: a shared lock on its lock file.
struct Pin {
    _file: File,
}

/// Pins snapshot `name` in `root`, waiting for a delete in progress to finish.
///
/// # Errors
/// No such snapshot (also: deleted before the pin took hold), a snapshot without its
/// lock file (damaged), I/O errors.
fn pin(root: &Path, name: &str) -> Result<(PathBuf, Pin)> {
    let dir = root.join(name);
    if !is_snapshot_dir(&dir) {
        return Err(no_snapshot(name));
    }
    let lock_path = dir.join(LOCK_FILE);
    let file = match File::open(&lock_path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(if is_snapshot_dir(&dir) {
                Error::Corruption {
                    path: dir,
                    detail: format!("the snapshot has no {LOCK_FILE}"),
                }
            } else {
                no_snapshot(name)
            });
        }
        Err(e) => return Err(io_err(&lock_path)(e)),
    };
    file.lock_shared().map_err(io_err(&lock_path))?;
    // A delete that held the lock first has moved the snapshot away meanwhile (and the
    // name may even have been taken again by a new snapshot).
    if !same_file(&file, &lock_path) {
        return Err(no_snapshot(name));
    }
    Ok((dir, Pin { _file: file }))
}

/// Deletes snapshot directory `root/dir_name`, damaged or not: takes its pin
/// exclusively (waiting for restores when `wait`, else returning `Ok(false)` if one is
/// running), renames it into a staging directory and removes that.
fn remove_snapshot(root: &Path, dir_name: &str, wait: bool) -> Result<bool> {
    clean_snapshots_dir(root);
    let dir = root.join(dir_name);
    // Each retry follows a snapshot deleted and made again under the name meanwhile.
    for _ in 0..100 {
        if !is_snapshot_dir(&dir) {
            return Err(no_snapshot(dir_name));
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = match File::open(&lock_path) {
            Ok(f) => Some(f),
            // A damaged snapshot without its lock file: no restore can pin it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&lock_path)(e)),
        };
        if let Some(f) = &lock {
            if wait {
                f.lock().map_err(io_err(&lock_path))?;
            } else {
                match f.try_lock() {
                    Ok(()) => {}
                    Err(TryLockError::WouldBlock) => return Ok(false),
                    Err(TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
                }
            }
            if !same_file(f, &lock_path) {
                continue;
            }
        }
        let staging = Staging::create(root, DELETING)?;
        // Some systems cannot rename a directory with an open file in it; elsewhere the
        // lock is held until the snapshot is out of reach.
        #[cfg(not(unix))]
        drop(lock);
        match fs::rename(&dir, staging.work()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(no_snapshot(dir_name)),
            Err(e) => return Err(io_err(&dir)(e)),
        }
        // The deletion is complete once the name is gone; removing the files is cleanup.
        OsIo.sync_dir(root).map_err(io_err(root))?;
        drop(staging);
        return Ok(true);
    }
    Err(Error::Storage(format!(
        "snapshot {dir_name:?} kept being replaced while it was deleted"
    )))
}

// ------------------------------------------------------------------ operations

/// Creates snapshot `name` of the database at `db` by calling `checkpoint(dir)` to fill
/// a fresh directory. `user` is the caller's metadata; `vector_count` is recorded;
/// `auto` marks a snapshot of the auto-snapshot thread (see [`prune_auto`]). The files
/// written here go through `io` (fault injection in tests).
///
/// # Errors
/// A bad name, metadata using [`AUTO_FIELD`], [`Error::AlreadyExists`] for a taken name
/// (also when another thread took it meanwhile); I/O or engine errors. An error leaves
/// no snapshot: the staging directory is removed, and so is the renamed one when only
/// the final directory sync failed.
// What the manifest holds, where it goes, and how the copy is taken: one each.
#[allow(clippy::too_many_arguments)]
pub fn create(
    io: &dyn FileIo,
    db: &Path,
    name: &str,
    user: &Metadata,
    vector_count: u64,
    auto: bool,
    cipher: Option<&Cipher>,
    checkpoint: impl FnOnce(&Path) -> Result<()>,
) -> Result<SnapshotInfo> {
    validate_name(name)?;
    if user.contains_key(AUTO_FIELD) {
        return Err(Error::invalid(format!(
            "snapshot metadata may not use the key {AUTO_FIELD:?}: it is reserved"
        )));
    }
    let root = snapshots_dir(db);
    fs::create_dir_all(&root).map_err(io_err(&root))?;
    clean_snapshots_dir(&root);
    let final_dir = root.join(name);
    let taken = || Error::AlreadyExists {
        path: final_dir.clone(),
        detail: format!("snapshot {name:?} already exists"),
    };
    if final_dir.symlink_metadata().is_ok() {
        return Err(taken());
    }
    let staging = Staging::create(&root, CREATING)?;
    let work = staging.work();
    checkpoint(&work)?;
    io.create(&work.join(LOCK_FILE)).map_err(io_err(&work))?;
    let mut meta = user.clone();
    meta.set("name", Value::Str(name.to_string()))?;
    meta.set(
        "vector_count",
        Value::Int(i64::try_from(vector_count).unwrap_or(i64::MAX)),
    )?;
    meta.set(AUTO_FIELD, Value::Bool(auto))?;
    let manifest = work.join(MANIFEST);
    write_synced(io, &manifest, |w| {
        w.write_all(&seal_manifest(encode_manifest(&meta), cipher))
    })
    .map_err(io_err(&manifest))?;
    io.sync_dir(&work).map_err(io_err(&work))?;
    rename_into_place(io, &work, &final_dir, taken)?;
    if let Err(e) = io.sync_dir(&root) {
        // Not durable: taken back (through delete, in case a restore pinned it already).
        let _ = remove_snapshot(&root, name, true);
        return Err(io_err(&root)(e));
    }
    drop(staging);
    read_info(&final_dir, cipher)
}

/// What an encrypted manifest's chunks are bound to (`storage::crypto`).
const MANIFEST_PURPOSE: &[u8] = b"nusterdb snapshot manifest";

/// The manifest bytes as written: encrypted in an encrypted database.
fn seal_manifest(plain: Vec<u8>, cipher: Option<&Cipher>) -> Vec<u8> {
    match cipher {
        Some(c) => c.seal_file(&plain, MANIFEST_PURPOSE),
        None => plain,
    }
}

fn read_info(dir: &Path, cipher: Option<&Cipher>) -> Result<SnapshotInfo> {
    let manifest = dir.join(MANIFEST);
    let bytes = fs::read(&manifest).map_err(io_err(&manifest))?;
    let plain = match cipher {
        Some(c) => c.open_file(&bytes, MANIFEST_PURPOSE),
        None if !bytes.starts_with(MAGIC) && crate::storage::crypto::is_encrypted(dir) => {
            Err("the manifest is encrypted: list the snapshots with the database's key".into())
        }
        None => Ok(bytes),
    };
    let mut meta = plain
        .and_then(|b| decode_manifest(&b))
        .map_err(|detail| Error::Corruption {
            path: manifest.clone(),
            detail,
        })?;
    let name = match meta.remove("name") {
        Some(Value::Str(s)) => s,
        _ => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let vector_count = match meta.remove("vector_count") {
        Some(Value::Int(n)) => u64::try_from(n).unwrap_or(0),
        _ => 0,
    };
    let auto = match meta.remove(AUTO_FIELD) {
        Some(Value::Bool(b)) => b,
        // Manifests written before the field: judged by the name.
        _ => is_auto_name(&name),
    };
    let created_at = meta.created_at();
    Ok(SnapshotInfo {
        name,
        path: dir.to_path_buf(),
        created_at,
        vector_count,
        auto,
        metadata: Metadata::from_stored(
            meta.fields().clone(),
            meta.tags().clone(),
            created_at,
            created_at,
            1,
        ),
    })
}

/// Orders names with their digit runs compared as numbers (`auto-5-9` before
/// `auto-5-10`), so snapshots taken within one second list in the order taken.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn runs(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let key = |r: &(bool, &str)| {
        if r.0 {
            let t = r.1.trim_start_matches('0');
            (t.len(), t.to_string())
        } else {
            (0, r.1.to_string())
        }
    };
    let (ra, rb) = (runs(a), runs(b));
    for (x, y) in ra.iter().zip(&rb) {
        let ord = match (x.0, y.0) {
            (true, true) => key(x).cmp(&key(y)),
            _ => x.1.cmp(y.1),
        };
        if ord != std::cmp::Ordering::Equal {
            return ord;
        }
    }
    ra.len().cmp(&rb.len()).then_with(|| a.cmp(b))
}

/// Every snapshot of the database at `db`, oldest first (then by name, numbers in
/// names compared as numbers), and the damaged ones. Directories under construction and
/// anything else that is not a snapshot are left out.
///
/// # Errors
/// The snapshots directory cannot be read.
pub fn list_report(db: &Path, cipher: Option<&Cipher>) -> Result<Listing> {
    let root = snapshots_dir(db);
    let entries = match fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Listing::default()),
        Err(e) => return Err(io_err(&root)(e)),
    };
    let mut out = Listing::default();
    for entry in entries {
        let entry = entry.map_err(io_err(&root))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Staging directories start with '.', earlier versions' end with `.partial`.
        if validate_name(&name).is_err() || !is_snapshot_dir(&entry.path()) {
            continue;
        }
        match read_info(&entry.path(), cipher) {
            Ok(info) => out.snapshots.push(info),
            // Deleted between the directory scan and the read.
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => out.damaged.push(DamagedSnapshot {
                name,
                path: entry.path(),
                reason: e.to_string(),
            }),
        }
    }
    out.snapshots.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| natural_cmp(&a.name, &b.name))
    });
    out.damaged.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Every readable snapshot of the database at `db`, oldest first; damaged ones are left
/// out ([`list_report`] names them).
///
/// # Errors
/// The snapshots directory cannot be read.
pub fn list(db: &Path, cipher: Option<&Cipher>) -> Result<Vec<SnapshotInfo>> {
    list_report(db, cipher).map(|l| l.snapshots)
}

/// The directory of snapshot `name`.
///
/// # Errors
/// A bad name, or no such snapshot.
pub fn find(db: &Path, name: &str) -> Result<PathBuf> {
    validate_name(name)?;
    let dir = snapshots_dir(db).join(name);
    if is_snapshot_dir(&dir) {
        Ok(dir)
    } else {
        Err(no_snapshot(name))
    }
}

/// Deletes snapshot `name` (also a damaged one), waiting for restores of it in
/// progress to finish.
///
/// # Errors
/// A bad name, no such snapshot, I/O errors.
pub fn delete(db: &Path, name: &str) -> Result<()> {
    validate_name(name)?;
    remove_snapshot(&snapshots_dir(db), name, true).map(drop)
}

/// Copies snapshot `name` to `target` as a database of its own, writing the copies
/// through `io`. The target must not exist or be an empty directory; it appears
/// complete or not at all (see the module docs). The snapshot is pinned while it is
/// copied, so a delete waits; staging directories of killed restores to this target
/// are removed first.
///
/// # Errors
/// A bad name, no such snapshot (also: deleted before the copy began),
/// [`Error::AlreadyExists`] for an occupied target (also when a racing restore filled
/// it first), I/O errors (nothing is left at the target).
pub fn restore(io: &dyn FileIo, db: &Path, name: &str, target: &Path) -> Result<()> {
    restore_with(io, db, name, target, false, None)
}

/// [`restore`], and with `keep_snapshots` the database's snapshots too: every readable
/// one is copied into the target's snapshots directory before the target appears, so
/// the restored database lists them.
///
/// # Errors
/// As [`restore`].
pub fn restore_with(
    io: &dyn FileIo,
    db: &Path,
    name: &str,
    target: &Path,
    keep_snapshots: bool,
    cipher: Option<&Cipher>,
) -> Result<()> {
    validate_name(name)?;
    let file_name = target
        .file_name()
        .ok_or_else(|| {
            Error::invalid(format!(
                "restore target {} has no directory name",
                target.display()
            ))
        })?
        .to_string_lossy()
        .into_owned();
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // First, so that a killed restore's leftovers go even when the target is complete.
    let prefix = format!("{file_name}{RESTORING}");
    clean_stale(&parent, &prefix);
    let occupied = || Error::AlreadyExists {
        path: target.to_path_buf(),
        detail: format!(
            "restore target {} already exists and is not empty",
            target.display()
        ),
    };
    let is_empty_dir = |p: &Path| fs::read_dir(p).is_ok_and(|mut d| d.next().is_none());
    if target.symlink_metadata().is_ok() && !is_empty_dir(target) {
        return Err(occupied());
    }
    let (src, pin) = pin(&snapshots_dir(db), name)?;
    fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    let staging = Staging::create(&parent, &prefix)?;
    let work = staging.work();
    copy_snapshot_files(io, &src, &work, false)?;
    drop(pin);
    if keep_snapshots {
        copy_snapshots_dir(io, db, &work, cipher)?;
        io.sync_dir(&work).map_err(io_err(&work))?;
    }
    // An empty directory at the target is replaced (a rename does that on Unix only).
    if is_empty_dir(target) {
        let _ = fs::remove_dir(target);
    }
    rename_into_place(io, &work, target, occupied)?;
    if let Err(e) = io.sync_dir(&parent) {
        let _ = fs::remove_dir_all(target);
        return Err(io_err(target)(e));
    }
    drop(staging);
    Ok(())
}

/// Copies the files of snapshot directory `src` into the fresh directory `work`
/// (leaving out the manifest), fsyncing each file and then `work`; returns the names
/// copied. With `link_tables`, table files (`*.sst`) and segment files (never changed
/// once written) are hard-linked when the file system allows, as the checkpoint that made the snapshot
/// did; everything else is copied through `io`. A restore to a target of its own copies
/// everything, so the restored database's own files share nothing with the snapshot.
fn copy_snapshot_files(
    io: &dyn FileIo,
    src: &Path,
    work: &Path,
    link_tables: bool,
) -> Result<Vec<String>> {
    fs::create_dir(work).map_err(io_err(work))?;
    let mut names = Vec::new();
    for entry in fs::read_dir(src).map_err(io_err(src))? {
        let entry = entry.map_err(io_err(src))?;
        let entry_name = entry.file_name();
        if entry_name == MANIFEST {
            continue;
        }
        let from = entry.path();
        let to = work.join(&entry_name);
        // Table files and segment files are never changed once written.
        let is_table = link_tables
            && (Path::new(&entry_name)
                .extension()
                .is_some_and(|x| x == "sst")
                || entry_name.to_str().is_some_and(crate::db::is_segment_file));
        if !(is_table && fs::hard_link(&from, &to).is_ok()) {
            let mut reader = File::open(&from).map_err(io_err(&from))?;
            write_synced(io, &to, |w| std::io::copy(&mut reader, w).map(drop))
                .map_err(io_err(&to))?;
        }
        names.push(entry_name.to_string_lossy().into_owned());
    }
    io.sync_dir(work).map_err(io_err(work))?;
    Ok(names)
}

/// Copies every readable snapshot of the database at `db` into `<work>/snapshots`, each
/// pinned while it is copied (one deleted meanwhile is left out), so the database made
/// of `work` lists them too.
fn copy_snapshots_dir(
    io: &dyn FileIo,
    db: &Path,
    work: &Path,
    cipher: Option<&Cipher>,
) -> Result<()> {
    let root = snapshots_dir(db);
    let out = snapshots_dir(work);
    fs::create_dir(&out).map_err(io_err(&out))?;
    for info in list(db, cipher)? {
        let (src, pin) = match pin(&root, &info.name) {
            Ok(p) => p,
            Err(Error::InvalidArgument(_)) => continue,
            Err(e) => return Err(e),
        };
        let to = out.join(&info.name);
        copy_snapshot_files(io, &src, &to, true)?;
        let manifest = src.join(MANIFEST);
        let bytes = fs::read(&manifest).map_err(io_err(&manifest))?;
        let copy = to.join(MANIFEST);
        write_synced(io, &copy, |w| w.write_all(&bytes)).map_err(io_err(&copy))?;
        io.sync_dir(&to).map_err(io_err(&to))?;
        drop(pin);
    }
    io.sync_dir(&out).map_err(io_err(&out))
}

/// An in-place restore staged by [`stage_in_place`]: the snapshot's files, complete and
/// durable, in a staging directory inside the database directory. Dropping it before
/// [`commit_in_place`] removes them; the database is untouched until then.
pub struct StagedRestore {
    staging: Staging,
    /// The staged files that replace the database's (the lock file is not among them).
    files: Vec<String>,
}

impl StagedRestore {
    /// The staged copy: a database directory (with its own lock file) that
    /// [`crate::storage::Store::open_frozen`] can read to check and load it.
    pub fn dir(&self) -> PathBuf {
        self.staging.work()
    }
}

/// Stages the in-place restore of snapshot `name` of the database at `db` (first step
/// of the protocol in the module docs). The snapshot is pinned while it is copied, and
/// its manifest must decode. Stale staging directories of killed restores go first.
///
/// # Errors
/// A bad name or no such snapshot ([`Error::InvalidArgument`]), a damaged one
/// ([`Error::Corruption`]), I/O errors; nothing is left behind.
pub fn stage_in_place(
    io: &dyn FileIo,
    db: &Path,
    name: &str,
    cipher: Option<&Cipher>,
) -> Result<StagedRestore> {
    validate_name(name)?;
    if restore_pending(db) {
        // Only a withdrawn commit (its staging gone, nothing moved) can be here while
        // the database is open: a failure after a commit closes the handle.
        let marker = db.join(RESTORE_MARKER);
        let staging = fs::read(&marker)
            .ok()
            .and_then(|b| decode_marker(&b).ok())
            .map(|(staging, _)| db.join(staging));
        if staging.is_none_or(|s| s.exists()) {
            return Err(Error::Storage(format!(
                "{}: an earlier in-place restore was committed but not completed; \
                 reopen the database to complete it",
                db.display()
            )));
        }
        io.remove_file(&marker).map_err(io_err(&marker))?;
        io.sync_dir(db).map_err(io_err(db))?;
    }
    clean_stale(db, IN_PLACE);
    let (src, pin) = pin(&snapshots_dir(db), name)?;
    read_info(&src, cipher)?;
    let staging = Staging::create(db, IN_PLACE)?;
    let work = staging.work();
    let mut files = copy_snapshot_files(io, &src, &work, true)?;
    drop(pin);
    files.retain(|f| f != LOCK_FILE);
    if !files.iter().any(|f| f == "CURRENT") {
        return Err(Error::Corruption {
            path: src,
            detail: "the snapshot has no RocksDB CURRENT file".into(),
        });
    }
    // CURRENT last: until it is replaced the directory still names the old MANIFEST.
    files.sort_by_key(|f| (f == "CURRENT", f.clone()));
    Ok(StagedRestore { staging, files })
}

fn encode_marker(staging: &str, files: &[String]) -> Vec<u8> {
    let mut out = MARKER_MAGIC.to_vec();
    for line in std::iter::once(staging).chain(files.iter().map(String::as_str)) {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The staging directory name and the file list of a marker.
fn decode_marker(bytes: &[u8]) -> std::result::Result<(String, Vec<String>), String> {
    if bytes.len() < MARKER_MAGIC.len() + 4 {
        return Err("restore marker too short".into());
    }
    let (content, crc_bytes) = bytes.split_at(bytes.len() - 4);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(crc_bytes);
    if crc32fast::hash(content) != u32::from_le_bytes(crc) || &content[..8] != MARKER_MAGIC {
        return Err("restore marker checksum or magic mismatch".into());
    }
    let text = std::str::from_utf8(&content[8..]).map_err(|e| e.to_string())?;
    let mut lines = text.lines().map(str::to_string);
    let staging = lines
        .next()
        .ok_or("restore marker names no staging directory")?;
    let files: Vec<String> = lines.collect();
    // Plain names only: the marker must not send renames or removals elsewhere.
    let plain = |n: &str| !n.is_empty() && !n.contains(['/', '\\']) && n != "." && n != "..";
    if !is_staging_name(&staging, IN_PLACE) || !files.iter().all(|f| plain(f)) {
        return Err("restore marker holds a name that is not ours".into());
    }
    Ok((staging, files))
}

/// Commits a staged in-place restore: writes the marker (atomically, durably). On
/// success the restore is decided and [`finish_in_place`] must complete it (the caller
/// closes its store first). On error nothing was committed, unless the marker is there
/// all the same (a failed directory sync after the rename): then this makes it durable
/// or, failing that, takes it away.
///
/// # Errors
/// I/O errors: nothing committed, the database as it was.
pub fn commit_in_place(io: &dyn FileIo, db: &Path, staged: &mut StagedRestore) -> Result<()> {
    let staging_name = staged
        .staging
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let marker = db.join(RESTORE_MARKER);
    let bytes = encode_marker(&staging_name, &staged.files);
    // From the commit on, the staged files belong to the marker: only
    // `finish_in_place` removes them, after the marker.
    let committed = |staged: &mut StagedRestore| {
        staged.staging.keep = true;
        Ok(())
    };
    match write_atomic(io, &marker, |w| w.write_all(&bytes)) {
        Ok(()) => committed(staged),
        Err(e) => {
            if marker.symlink_metadata().is_ok() {
                if io.sync_dir(db).is_ok() {
                    return committed(staged);
                }
                // Not known durable: withdrawn. Should it survive a crash anyway, its
                // staging directory (removed as `staged` drops) is gone, and the next
                // open discards it.
                let _ = io.remove_file(&marker);
                let _ = io.sync_dir(db);
            }
            Err(e)
        }
    }
}

/// Completes (rolls forward) a committed in-place restore of the database at `db`, if
/// its marker is there; then removes stale staging directories of restores that never
/// committed. Called with the writer lock held and no store open on `db`. Returns
/// whether a restore was completed.
///
/// # Errors
/// I/O errors (the marker stays, and the next call redoes the steps), a damaged marker
/// or a staged file missing from both places ([`Error::Corruption`]).
pub fn finish_in_place(io: &dyn FileIo, db: &Path) -> Result<bool> {
    let marker = db.join(RESTORE_MARKER);
    let done = match fs::read(&marker) {
        Ok(bytes) => {
            let (staging, files) = decode_marker(&bytes).map_err(|detail| Error::Corruption {
                path: marker.clone(),
                detail,
            })?;
            let stage_dir = db.join(&staging);
            if stage_dir.is_dir() {
                roll_forward(io, db, &stage_dir.join(STAGED), &files)?;
            }
            // Whether rolled forward or a withdrawn commit (its staging gone before
            // anything moved), the marker goes last.
            io.remove_file(&marker).map_err(io_err(&marker))?;
            io.sync_dir(db).map_err(io_err(db))?;
            let _ = fs::remove_dir_all(&stage_dir);
            true
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(io_err(&marker)(e)),
    };
    // A temporary marker of a commit that never completed.
    let _ = fs::remove_file(crate::storage::fileio::tmp_path(&marker));
    clean_stale(db, IN_PLACE);
    Ok(done)
}

/// Whether an in-place restore of the database at `db` is committed and not yet
/// completed (its marker exists).
pub fn restore_pending(db: &Path) -> bool {
    db.join(RESTORE_MARKER).symlink_metadata().is_ok()
}

/// The redoable steps of [`finish_in_place`]: the staged files into `db`, the others
/// out, the directory synced.
fn roll_forward(io: &dyn FileIo, db: &Path, work: &Path, files: &[String]) -> Result<()> {
    for f in files {
        let from = work.join(f);
        let to = db.join(f);
        if from.symlink_metadata().is_ok() {
            io.rename(&from, &to).map_err(io_err(&to))?;
        } else if to.symlink_metadata().is_err() {
            return Err(Error::Corruption {
                path: work.to_path_buf(),
                detail: format!("the staged file {f} of an in-place restore is missing"),
            });
        }
    }
    io.sync_dir(db).map_err(io_err(db))?;
    let keep =
        |n: &str| files.iter().any(|f| f == n) || matches!(n, LOCK_FILE | "LOCK" | RESTORE_MARKER);
    for entry in fs::read_dir(db).map_err(io_err(db))? {
        let entry = entry.map_err(io_err(db))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Directories (the snapshots, staging) stay; so does anything not a file.
        if keep(&name) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        io.remove_file(&entry.path())
            .map_err(io_err(&entry.path()))?;
    }
    io.sync_dir(db).map_err(io_err(db))
}

/// A name for an automatic snapshot taken now.
pub fn auto_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{AUTO_PREFIX}{}-{}",
        now_unix(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Deletes the oldest automatic snapshots beyond [`AUTO_RETENTION`]; returns how many.
/// Only snapshots marked automatic count (see the module docs); damaged ones are left
/// alone, and so is one being restored (the next prune takes it).
///
/// # Errors
/// The first I/O error (the other snapshots are still pruned).
pub fn prune_auto(db: &Path, cipher: Option<&Cipher>) -> Result<usize> {
    let root = snapshots_dir(db);
    let autos: Vec<SnapshotInfo> = list_report(db, cipher)?
        .snapshots
        .into_iter()
        .filter(|s| s.auto)
        .collect();
    let excess = autos.len().saturating_sub(AUTO_RETENTION);
    let mut removed = 0;
    let mut first_err = None;
    for s in autos.into_iter().take(excess) {
        let Some(dir_name) = s.path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        match remove_snapshot(&root, &dir_name, false) {
            Ok(true) => removed += 1,
            Ok(false) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(removed), Err)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip_and_damage_detected() {
        let mut m = Metadata::new();
        m.set("note", Value::Str("x".into())).unwrap();
        let bytes = encode_manifest(&m);
        assert_eq!(decode_manifest(&bytes).unwrap(), m);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(decode_manifest(&bad).is_err(), "flip at {i} undetected");
        }
        assert!(decode_manifest(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn restore_markers_round_trip_and_damage_is_detected() {
        let files = vec!["000009.sst".to_string(), "CURRENT".to_string()];
        let bytes = encode_marker(".in-place-restore-12-3", &files);
        assert_eq!(
            decode_marker(&bytes).unwrap(),
            (".in-place-restore-12-3".to_string(), files)
        );
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(decode_marker(&bad).is_err(), "flip at {i} undetected");
        }
        assert!(decode_marker(&bytes[..bytes.len() - 1]).is_err());
        // Names that would send a rename or a removal elsewhere are refused.
        for (staging, file) in [
            ("../x", "CURRENT"),
            (".in-place-restore-1-2", "../CURRENT"),
            (".in-place-restore-1-2", "a/b"),
            (".in-place-restore-1-2", ".."),
        ] {
            let m = encode_marker(staging, &[file.to_string()]);
            assert!(decode_marker(&m).is_err(), "{staging} {file}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("daily-2026.11_27").is_ok());
        for bad in [
            "",
            ".x",
            "a/b",
            "../x",
            "x.partial",
            "x.tmp",
            &"a".repeat(129),
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn auto_names_are_recognised_exactly() {
        for _ in 0..3 {
            assert!(is_auto_name(&auto_name()));
        }
        for not in [
            "auto-keep-this-backup",
            "auto-",
            "auto-1",
            "auto-1-",
            "auto--1",
            "auto-1-2-3",
            "auto-1-x",
            "Auto-1-2",
            "snapshot-1-2",
            "auto-1.5-2",
        ] {
            assert!(!is_auto_name(not), "{not}");
        }
        assert!(is_auto_name("auto-1700000000-12"));
    }

    #[test]
    fn staging_names_are_recognised_exactly() {
        assert!(is_staging_name(".creating-12-3", CREATING));
        assert!(is_staging_name("db.restoring-1-0", "db.restoring-"));
        for not in [
            ".creating-",
            ".creating-1",
            ".creating-x-1",
            ".creating-1-2-3",
        ] {
            assert!(!is_staging_name(not, CREATING), "{not}");
        }
        // Staging directories are never snapshot names, so never listed.
        assert!(validate_name(".creating-12-3").is_err());
        assert!(validate_name(".deleting-12-3").is_err());
    }

    #[test]
    fn natural_order_compares_numbers_as_numbers() {
        let mut names = vec!["auto-5-10", "auto-5-9", "auto-5-0", "b", "a2", "a10", "a02"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            ["a02", "a2", "a10", "auto-5-0", "auto-5-9", "auto-5-10", "b"]
        );
    }

    #[test]
    fn a_stale_staging_directory_is_removed_and_a_live_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let live = Staging::create(dir.path(), CREATING).unwrap();
        std::fs::create_dir(live.work()).unwrap();
        // What a killed process leaves: a directory whose lock nobody holds.
        let stale = dir.path().join(format!("{CREATING}999999999-7"));
        std::fs::create_dir_all(stale.join(STAGED)).unwrap();
        std::fs::write(stale.join(STAGING_LOCK), b"").unwrap();
        let no_lock = dir.path().join(format!("{CREATING}999999999-8"));
        std::fs::create_dir(&no_lock).unwrap();
        // Not ours by name: kept.
        let other = dir.path().join(".creating-mine");
        std::fs::create_dir(&other).unwrap();
        clean_stale(dir.path(), CREATING);
        assert!(live.work().is_dir());
        assert!(!stale.exists());
        assert!(!no_lock.exists());
        assert!(other.exists());
        let live_dir = live.dir.clone();
        drop(live);
        assert!(!live_dir.exists());
    }
}
