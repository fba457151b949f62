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

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

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
        match file.try_lock() {
            Ok(()) => Ok(Self {
                _tracked: track(&file),
                file: Mutex::new(Some(file)),
                path,
                created,
            }),
            Err(TryLockError::WouldBlock) => Err(Error::Locked {
                path: dir.to_path_buf(),
            }),
            Err(TryLockError::Error(source)) => Err(Error::Io { path, source }),
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
}
