//! The files NusterDB writes itself (the HNSW graph file; RocksDB writes its own), through
//! one small I/O trait so that tests can make any single operation fail.
//!
//! - [`FileIo`]: create / rename / read / remove / directory sync. [`OsIo`] is the real
//!   one; [`FaultyIo`] wraps it and fails the n-th operation, once or from then on, as
//!   a countdown — the fault-injection test walks n = 1, 2, … until the operation under
//!   test completes.
//! - [`write_synced`]: a file written through a buffer and fsync'd.
//! - [`write_atomic`]: the only way a file of ours is replaced: written to
//!   `<name>.tmp`, fsync'd, renamed over the old one, and the directory fsync'd. A
//!   crash at any point leaves the old file or the new one, never a mix (a leftover
//!   `.tmp` is overwritten by the next save).

use std::fmt::Debug;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// A file being written.
pub trait WriteFile: Write + Send {
    /// Makes everything written so far durable (`fsync`).
    ///
    /// # Errors
    /// I/O errors.
    fn sync(&mut self) -> io::Result<()>;
}

/// The file operations NusterDB performs on its own files.
pub trait FileIo: Send + Sync + Debug {
    /// Creates (or truncates) `path` for writing.
    ///
    /// # Errors
    /// I/O errors.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WriteFile>>;

    /// Renames `from` to `to`, replacing `to`.
    ///
    /// # Errors
    /// I/O errors.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Makes the entries of `dir` (a rename) durable.
    ///
    /// # Errors
    /// I/O errors.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Reads the whole of `path`.
    ///
    /// # Errors
    /// I/O errors (`NotFound` for a missing file).
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// Removes `path`.
    ///
    /// # Errors
    /// I/O errors.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
}

/// The operating system's files.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsIo;

impl WriteFile for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_all()
    }
}

impl FileIo for OsIo {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        Ok(Box::new(File::create(path)?))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        // Directory fsync makes a rename durable on POSIX; Windows has no equivalent.
        #[cfg(unix)]
        File::open(dir)?.sync_all()?;
        #[cfg(not(unix))]
        let _ = dir;
        Ok(())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
}

/// How a [`FaultyIo`] fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultMode {
    /// Only the n-th operation fails.
    Once,
    /// The n-th operation and every one after it fail.
    Persistent,
}

/// Fault injection: [`OsIo`] whose n-th operation (counting every create, write call,
/// flush, sync, rename, directory sync, read and remove, from 1) fails with an error
/// of kind `kind` (e.g. `StorageFull` for ENOSPC). A failing write writes nothing.
#[derive(Debug)]
pub struct FaultyIo {
    fail_at: std::sync::Arc<AtomicU64>,
    mode: FaultMode,
    kind: io::ErrorKind,
    count: std::sync::Arc<AtomicU64>,
}

impl FaultyIo {
    /// Fails operation `fail_at` (1-based; 0 never fails) as `mode` says.
    pub fn new(fail_at: u64, mode: FaultMode, kind: io::ErrorKind) -> Self {
        Self {
            fail_at: std::sync::Arc::new(AtomicU64::new(fail_at)),
            mode,
            kind,
            count: std::sync::Arc::new(AtomicU64::new(0)),
        }
    }

    /// Starts counting again from zero, failing operation `fail_at` from now on (so a
    /// test can open a database normally, then fault only the step under test).
    pub fn rearm(&self, fail_at: u64) {
        self.count.store(0, Ordering::SeqCst);
        self.fail_at.store(fail_at, Ordering::SeqCst);
    }

    /// Operations performed (or attempted) so far.
    pub fn operations(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// Whether any operation has failed so far.
    pub fn has_failed(&self) -> bool {
        let at = self.fail_at.load(Ordering::SeqCst);
        at != 0 && self.operations() >= at
    }

    fn tick(
        count: &AtomicU64,
        fail_at: &AtomicU64,
        mode: FaultMode,
        kind: io::ErrorKind,
    ) -> io::Result<()> {
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        let fail_at = fail_at.load(Ordering::SeqCst);
        let fails = fail_at != 0
            && match mode {
                FaultMode::Once => n == fail_at,
                FaultMode::Persistent => n >= fail_at,
            };
        if fails {
            Err(io::Error::new(
                kind,
                format!("injected fault at I/O operation {n}"),
            ))
        } else {
            Ok(())
        }
    }

    fn check(&self) -> io::Result<()> {
        Self::tick(&self.count, &self.fail_at, self.mode, self.kind)
    }
}

struct FaultyFile {
    inner: File,
    fail_at: std::sync::Arc<AtomicU64>,
    mode: FaultMode,
    kind: io::ErrorKind,
    count: std::sync::Arc<AtomicU64>,
}

impl FaultyFile {
    fn check(&self) -> io::Result<()> {
        FaultyIo::tick(&self.count, &self.fail_at, self.mode, self.kind)
    }
}

impl Write for FaultyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        self.inner.flush()
    }
}

impl WriteFile for FaultyFile {
    fn sync(&mut self) -> io::Result<()> {
        self.check()?;
        self.inner.sync_all()
    }
}

impl FileIo for FaultyIo {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        self.check()?;
        Ok(Box::new(FaultyFile {
            inner: File::create(path)?,
            fail_at: std::sync::Arc::clone(&self.fail_at),
            mode: self.mode,
            kind: self.kind,
            count: std::sync::Arc::clone(&self.count),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check()?;
        OsIo.rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check()?;
        OsIo.sync_dir(dir)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.check()?;
        OsIo.read(path)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.check()?;
        OsIo.remove_file(path)
    }
}

/// `path` with `.tmp` appended to its file name.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A `Write` that keeps the CRC-32 of what passes through (the files NusterDB writes
/// itself end with the CRC of everything before it).
pub struct CrcWriter<'a> {
    inner: &'a mut dyn Write,
    crc: crc32fast::Hasher,
}

impl<'a> CrcWriter<'a> {
    /// Hashes what is written to `inner`.
    pub fn new(inner: &'a mut dyn Write) -> Self {
        Self {
            inner,
            crc: crc32fast::Hasher::new(),
        }
    }

    /// The CRC-32 of everything written so far, and the writer it went to.
    pub fn finish(self) -> (u32, &'a mut dyn Write) {
        (self.crc.finalize(), self.inner)
    }
}

impl Write for CrcWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Creates (or truncates) `path`, lets `fill` write it through a 1 MiB buffer (large
/// files go out in a few hundred calls, not millions) and fsyncs it.
///
/// # Errors
/// I/O errors, from `fill` or from the file system.
pub fn write_synced(
    io: &dyn FileIo,
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, io.create(path)?);
    fill(&mut w)?;
    w.into_inner().map_err(|e| e.into_error())?.sync()
}

/// Replaces `path` atomically with what `fill` writes (see the module docs). On any
/// error the old file is untouched and the temporary file is removed (best effort).
///
/// # Errors
/// [`Error::Io`] naming the file, from `fill` or from the file system.
pub fn write_atomic(
    io: &dyn FileIo,
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    let tmp = tmp_path(path);
    let result = (|| {
        write_synced(io, &tmp, fill).map_err(io_error(&tmp))?;
        io.rename(&tmp, path).map_err(io_error(path))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // Named after the file: its save is what failed.
        io.sync_dir(dir).map_err(io_error(path))
    })();
    if result.is_err() {
        // The rename may have happened before a failed directory sync; the tmp file
        // is then already gone and this does nothing.
        let _ = io.remove_file(&tmp);
    }
    result
}

/// The little-endian `u32` at byte `at` of `b` (the caller checked the length).
pub(crate) fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// The little-endian `u64` at byte `at` of `b` (the caller checked the length).
pub(crate) fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write_bytes(io: &dyn FileIo, path: &Path, bytes: &[u8]) -> Result<()> {
        write_atomic(io, path, |w| {
            // Two writes, so a fault can fall between them.
            let (a, b) = bytes.split_at(bytes.len() / 2);
            w.write_all(a)?;
            w.flush()?;
            w.write_all(b)
        })
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.bin");
        write_bytes(&OsIo, &p, b"first version").unwrap();
        write_bytes(&OsIo, &p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        assert!(!tmp_path(&p).exists());
    }

    /// Every single failure, once and persistent, leaves the old file or the new one.
    #[test]
    fn every_injected_fault_leaves_old_or_new() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.bin");
        let old = b"the old contents".to_vec();
        let new = b"the new, longer contents of the file".to_vec();
        for mode in [FaultMode::Once, FaultMode::Persistent] {
            let mut n = 1;
            loop {
                write_bytes(&OsIo, &p, &old).unwrap();
                let io = FaultyIo::new(n, mode, io::ErrorKind::StorageFull);
                let r = write_bytes(&io, &p, &new);
                let now = fs::read(&p).unwrap();
                assert!(
                    now == old || now == new,
                    "{mode:?} fault at {n}: mixed file"
                );
                if !io.has_failed() {
                    assert!(r.is_ok());
                    assert_eq!(now, new);
                    break;
                }
                // A failure after the rename (the directory sync) reports an error
                // though the new file is in place: the caller retries or rebuilds.
                assert!(r.is_err(), "{mode:?} fault at {n} not reported");
                assert!(!tmp_path(&p).exists() || mode == FaultMode::Persistent);
                n += 1;
                assert!(n < 100, "the write never completed");
            }
            assert!(n > 4, "faults were injected at only {n} points");
        }
    }
}
