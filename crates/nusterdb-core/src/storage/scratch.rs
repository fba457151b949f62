//! The scratch directory a read-only follower (a RocksDB secondary instance) needs for
//! its own info logs: `$TMPDIR/nusterdb-secondary-<pid>-<random>`.
//!
//! - Made exclusively: a fresh random name, `mkdir` (which fails on any existing path,
//!   a symlink included, and follows none), mode 0700. A path planted in advance is
//!   never reused; another name is drawn.
//! - Held: `owner.lock` inside is locked for the directory's life, so another process
//!   can tell a live follower's directory from a dead one's.
//! - Removed when the follower's store is dropped, after RocksDB closed.
//! - Swept: opening a follower removes the directories that followers killed before
//!   they could remove their own left behind — only ours (the name pattern, a real
//!   directory, same owner), only when the process named in it is gone and its owner
//!   lock is free, never following a symlink.

use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The name prefix of every scratch directory.
pub const PREFIX: &str = "nusterdb-secondary-";

/// The lock file inside a scratch directory, held by its owner.
const OWNER_LOCK: &str = "owner.lock";

/// How many names are tried before giving up (each collision is a path planted or
/// left at a random 64-bit name).
const ATTEMPTS: usize = 16;

/// A scratch directory of this process; removed on drop.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
    /// Locked for the directory's life; `None` once dropped.
    owner: Option<File>,
}

/// 64 unpredictable bits: `RandomState` is seeded from the operating system's random
/// source once per process, then varied per instance.
fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes `dir` if nothing exists at that path; `Ok(false)` if something does.
fn make_dir(dir: &Path) -> std::io::Result<bool> {
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    match b.create(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

impl ScratchDir {
    /// Makes a fresh scratch directory in the system's temporary directory, after
    /// sweeping the stale ones there.
    ///
    /// # Errors
    /// I/O errors making the directory or its lock.
    pub fn create() -> Result<Self> {
        let root = std::env::temp_dir();
        let pid = std::process::id();
        let dir = Self::create_in(&root, |_| format!("{PREFIX}{pid}-{:016x}", random_u64()))?;
        sweep(&root, &dir.path);
        Ok(dir)
    }

    /// Makes a scratch directory in `root`, trying the names `name(0)`, `name(1)`, …
    fn create_in(root: &Path, mut name: impl FnMut(usize) -> String) -> Result<Self> {
        for attempt in 0..ATTEMPTS {
            let path = root.join(name(attempt));
            if !make_dir(&path).map_err(io_err(&path))? {
                continue;
            }
            let lock_path = path.join(OWNER_LOCK);
            let owner = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&lock_path)
                .and_then(|f| f.try_lock().map(|()| f).map_err(std::io::Error::from));
            return match owner {
                Ok(f) => Ok(Self {
                    path,
                    owner: Some(f),
                }),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&path);
                    Err(io_err(&lock_path)(e))
                }
            };
        }
        Err(Error::Io {
            path: root.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("no free name for a scratch directory after {ATTEMPTS} tries"),
            ),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        drop(self.owner.take());
        // Symlinks inside are removed, never followed.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The process id in a scratch directory's name, if the name is ours.
fn pid_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, suffix) = rest.split_once('-')?;
    if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` is certainly gone. Only answered where `/proc` lists the
/// processes (Linux); elsewhere nothing is taken for dead.
fn process_gone(pid: u32) -> bool {
    cfg!(target_os = "linux")
        && Path::new("/proc/self").exists()
        && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether the owner lock in `dir` is free (its owner is gone), or absent (a directory
/// from before the owner lock). A symlink in its place counts as held.
fn owner_lock_free(dir: &Path) -> bool {
    let lock = dir.join(OWNER_LOCK);
    match std::fs::symlink_metadata(&lock) {
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        Ok(m) if !m.file_type().is_file() => false,
        Ok(_) => OpenOptions::new()
            .read(true)
            .open(&lock)
            .is_ok_and(|f| f.try_lock().is_ok()),
    }
}

/// Removes the stale scratch directories in `root` (see the module docs); `mine`, the
/// one just made, tells the owner to match. Best effort: anything in doubt stays.
fn sweep(root: &Path, mine: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let Ok(me) = std::fs::symlink_metadata(mine) else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(root) else {
            return;
        };
        let own_pid = std::process::id();
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(pid_of) else {
                continue;
            };
            if pid == 0 || pid == own_pid || !process_gone(pid) {
                continue;
            }
            let path = entry.path();
            // lstat: a symlink is not a directory here, and is left alone.
            let Ok(m) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if !m.file_type().is_dir() || m.uid() != me.uid() || !owner_lock_free(&path) {
                continue;
            }
            // Removes symlinks inside without following them; if the directory was
            // swapped for a symlink meanwhile, only that link goes.
            let _ = std::fs::remove_dir_all(&path);
        }
    }
    #[cfg(not(unix))]
    let _ = (root, mine);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_path_is_never_used() {
        let root = tempfile::tempdir().unwrap();
        let victim = root.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("LOG"), b"keep").unwrap();
        let planted = root.path().join("taken");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        #[cfg(not(unix))]
        std::fs::create_dir(&planted).unwrap();
        let names = ["taken".to_string(), "fresh".to_string()];
        let dir = ScratchDir::create_in(root.path(), |i| names[i].clone()).unwrap();
        assert_eq!(dir.path(), root.path().join("fresh"));
        let meta = std::fs::symlink_metadata(dir.path()).unwrap();
        assert!(meta.file_type().is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        }
        drop(dir);
        assert!(!root.path().join("fresh").exists());
        assert_eq!(std::fs::read(victim.join("LOG")).unwrap(), b"keep");
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 1);
    }

    #[test]
    fn names_are_parsed_strictly() {
        assert_eq!(pid_of("nusterdb-secondary-123-00ff"), Some(123));
        assert_eq!(pid_of("nusterdb-secondary-123-7"), Some(123));
        assert_eq!(pid_of("nusterdb-secondary-123-"), None);
        assert_eq!(pid_of("nusterdb-secondary-x-1"), None);
        assert_eq!(pid_of("nusterdb-secondary-12-a/b"), None);
        assert_eq!(pid_of("other-123-1"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn only_dead_processes_unlocked_directories_are_swept() {
        let root = tempfile::tempdir().unwrap();
        // A pid above the kernel's maximum (4194304) names no process.
        let dead = 9_999_999u32;
        let stale = root.path().join(format!("{PREFIX}{dead}-1"));
        std::fs::create_dir(&stale).unwrap();
        std::fs::write(stale.join("LOG"), b"x").unwrap();
        // A dead pid, but its owner lock is held (a live follower in another pid
        // namespace would look so): kept.
        let held = root.path().join(format!("{PREFIX}{dead}-2"));
        std::fs::create_dir(&held).unwrap();
        let f = File::create(held.join(OWNER_LOCK)).unwrap();
        f.try_lock().unwrap();
        // A live process (this one's parent... any live pid: 1).
        let live = root.path().join(format!("{PREFIX}1-3"));
        std::fs::create_dir(&live).unwrap();
        // A symlink with a dead pid's name pointing at a directory: left alone.
        let victim = root.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("LOG"), b"keep").unwrap();
        let link = root.path().join(format!("{PREFIX}{dead}-4"));
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        // Not our pattern.
        let other = root.path().join(format!("{PREFIX}{dead}"));
        std::fs::create_dir(&other).unwrap();

        let pid = std::process::id();
        let mine = ScratchDir::create_in(root.path(), |_| format!("{PREFIX}{pid}-mine")).unwrap();
        sweep(root.path(), mine.path());
        assert!(!stale.exists());
        assert!(held.exists());
        assert!(live.exists());
        assert!(std::fs::symlink_metadata(&link).is_ok());
        assert_eq!(std::fs::read(victim.join("LOG")).unwrap(), b"keep");
        assert!(other.exists());
        assert!(mine.path().exists());
        drop(f);
    }
}
