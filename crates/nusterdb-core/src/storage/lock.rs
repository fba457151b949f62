//! The writer lock: one writer per database, across processes and within one.
//!
//! `nusterdb.lock` in the database directory is locked exclusively (`flock` on Unix,
//! `LockFileEx` on Windows, through `std::fs::File::try_lock`) for the life of the
//! writer's handle. The OS drops the lock when the process dies, so a stale lock file
//! is harmless: it is never deleted while it marks a database, and its presence marks
//! the directory as a NusterDB database (a creation that failed removes the one it
//! made). Two handles in one process also conflict, because each opens the file anew
//! and the lock belongs to the open file.
//!
//! Across `fork()`: an `flock` lock belongs to the open file description, which parent
//! and child share. It is released only when every descriptor of it is closed, so a
//! forked child closing or exiting never releases the parent's lock — but a child that
//! kept its copy would keep the lock held after the parent closed. A fork handler
//! therefore points the child's copies at `/dev/null` right after the fork
//! ([`super::fork::inherited`]), and a handle used or dropped in a forked child closes
//! its copy too ([`WriterLock::release_inherited`]).
//!
//! A child that another thread spawns (`std::process::Command`, Python's
//! `subprocess`) also shares every descriptor between its `fork`/`clone` and its
//! `exec`, close-on-exec ones included, and no handler runs in between. A lock released
//! in that window stays held until the child execs, a moment later; so a lock found
//! held is tried again for up to [`RELEASE_GRACE`] before [`Error::Locked`] is reported.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::fork::inherited;
use crate::error::{Error, Result};

/// Tracks a lock file's descriptor, so a forked child lets go of its copy at once.
fn track(file: &File) -> Option<inherited::Tracked> {
    #[cfg(unix)]
    return inherited::track(std::os::unix::io::AsRawFd::as_raw_fd(file));
    #[cfg(not(unix))]
    return inherited::track(file);
}

/// Name of the lock file inside a database directory.
pub const LOCK_FILE: &str = "nusterdb.lock";

/// How long a lock found held is tried again (see the module docs): far longer than a
/// spawned child's fork-to-exec window, short beside an open.
pub const RELEASE_GRACE: Duration = Duration::from_millis(100);

/// A held writer lock; released on drop.
#[derive(Debug)]
pub struct WriterLock {
    // Dropped first: the descriptor is no longer tracked once it is being closed.
    _tracked: Option<inherited::Tracked>,
    /// `None` once a forked child closed its inherited copy.
    file: Mutex<Option<File>>,
    path: PathBuf,
    created: bool,
}

impl WriterLock {
    /// Takes the writer lock of the database in `dir` without waiting.
    ///
    /// # Errors
    /// [`Error::Locked`] if another handle holds it; [`Error::Io`] if the file cannot
    /// be created or locked for another reason.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        // Whether this call made the file, so a failed creation can take it away again.
        // A file removed between the two opens (by such a cleanup) is made anew.
        let (file, created) = loop {
            let mut opts = OpenOptions::new();
            opts.read(true).write(true);
            match opts.clone().create_new(true).open(&path) {
                Ok(f) => break (f, true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
            match opts.open(&path) {
                Ok(f) => break (f, false),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
        };
        let deadline = Instant::now() + RELEASE_GRACE;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(Self {
                        _tracked: track(&file),
                        file: Mutex::new(Some(file)),
                        path,
                        created,
                    })
                }
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(Error::Locked {
                        path: dir.to_path_buf(),
                    })
                }
                Err(TryLockError::Error(source)) => return Err(Error::Io { path, source }),
            }
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether [`WriterLock::acquire`] created the lock file (it did not exist before).
    pub fn created(&self) -> bool {
        self.created
    }

    /// In a forked child: closes the child's copy of the lock file, which leaves the
    /// parent's lock held (see the module docs) and no longer holds it for the parent
    /// once the parent closes. Never blocks (the child has only one thread; a mutex a
    /// parent thread held at the fork stays held, and then the copy stays open).
    pub fn release_inherited(&self) {
        if let Some(mut file) = self.file.try_lock() {
            drop(file.take());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_in_same_process_is_refused_until_release() {
        let dir = tempfile::tempdir().unwrap();
        let first = WriterLock::acquire(dir.path()).unwrap();
        assert!(first.created());
        assert!(matches!(
            WriterLock::acquire(dir.path()),
            Err(Error::Locked { .. })
        ));
        drop(first);
        let again = WriterLock::acquire(dir.path()).unwrap();
        assert!(!again.created());
    }

    /// A copy of the lock's descriptor that outlives the handle for a moment — as a
    /// child spawned by another thread holds one until it execs — delays the next
    /// acquire instead of failing it.
    #[test]
    fn a_copy_released_a_moment_later_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let first = WriterLock::acquire(dir.path()).unwrap();
        // `try_clone` duplicates the descriptor: the same open file, the same lock.
        let copy = first.file.lock().as_ref().unwrap().try_clone().unwrap();
        drop(first);
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            drop(copy);
        });
        // Without the grace this fails: the copy still holds the lock at the first try.
        let again = WriterLock::acquire(dir.path()).unwrap();
        releaser.join().unwrap();
        drop(again);
        // A copy kept past the grace is a held lock.
        let held = WriterLock::acquire(dir.path()).unwrap();
        let copy = held.file.lock().as_ref().unwrap().try_clone().unwrap();
        drop(held);
        let start = Instant::now();
        assert!(matches!(
            WriterLock::acquire(dir.path()),
            Err(Error::Locked { .. })
        ));
        assert!(start.elapsed() >= RELEASE_GRACE);
        drop(copy);
        WriterLock::acquire(dir.path()).unwrap();
    }
}
