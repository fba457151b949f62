//! The writer lock: one writer per database, across processes and within one.
//!
//! `nusterdb.lock` in the database directory is locked exclusively (`flock` on Unix,
//! `LockFileEx` on Windows, through `std::fs::File::try_lock`) for the life of the
//! writer's handle. The OS drops the lock when the process dies, so a stale lock file
//! is harmless: it is never deleted, and its presence marks the directory as a NusterDB
//! database. Two handles in one process also conflict, because each opens the file
//! anew and the lock belongs to the open file.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Name of the lock file inside a database directory.
pub const LOCK_FILE: &str = "nusterdb.lock";

/// A held writer lock; released on drop.
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
    path: PathBuf,
}

impl WriterLock {
    /// Takes the writer lock of the database in `dir` without waiting.
    ///
    /// # Errors
    /// [`Error::Locked`] if another handle holds it; [`Error::Io`] if the file cannot
    /// be created or locked for another reason.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file, path }),
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_in_same_process_is_refused_until_release() {
        let dir = tempfile::tempdir().unwrap();
        let first = WriterLock::acquire(dir.path()).unwrap();
        assert!(matches!(
            WriterLock::acquire(dir.path()),
            Err(Error::Locked { .. })
        ));
        drop(first);
        assert!(WriterLock::acquire(dir.path()).is_ok());
    }
}
