//! A check of RocksDB's log files (the write-ahead logs and the MANIFEST) before RocksDB
//! reads them.
//!
//! Both of RocksDB's log readers loop forever on one kind of damage: a record header
//! whose type byte says "recycled log" (types 5–8, 11, 131) where the reader does not
//! expect one. The reader answers `kBadRecord` or `kOldRecord` without consuming the
//! header and then reads the same header again. NusterDB never recycles log files
//! (`recycle_log_file_num` stays 0), so such a header can only be damage. It is found
//! here and reported as [`Error::Corruption`] before RocksDB sees the file.
//!
//! The walk visits every position that either reader parses as a header. A log is a
//! sequence of 32 KiB blocks; records never span a block; a tail of fewer than 7
//! bytes is padding. Where a reader gives up on a block (a bad length, a checksum
//! mismatch, a zero-type record), it resumes at the next block's start. This walk
//! does not check checksums and follows the stated lengths within the block instead,
//! so it visits a superset of the reader's positions and reaches every block start.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

use crate::error::{Error, Result};

/// RocksDB's log block size.
const BLOCK: usize = 32 * 1024;
/// The size of a plain record header: checksum (4), length (2), type (1).
const HEADER: usize = 7;

/// Whether a record type is one of the "recyclable" ones: full, first, middle and last
/// (5–8), user-defined timestamp size (11), predecessor WAL info (131).
fn is_recycled_type(t: u8) -> bool {
    matches!(t, 5..=8 | 11 | 131)
}

/// Reads until `buf` is full or the input ends; the number of bytes read.
fn read_block(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The byte offset of the first record header a RocksDB reader could parse that claims
/// a recycled-log record, or `None` when there is none.
///
/// # Errors
/// Read errors of `r`.
pub fn first_recycled_header(mut r: impl Read) -> std::io::Result<Option<u64>> {
    let mut block = vec![0u8; BLOCK];
    let mut base = 0u64;
    loop {
        let n = read_block(&mut r, &mut block)?;
        let mut p = 0;
        while n - p >= HEADER {
            let kind = block[p + 6];
            if is_recycled_type(kind) {
                return Ok(Some(base + p as u64));
            }
            let len = usize::from(u16::from_le_bytes([block[p + 4], block[p + 5]]));
            // A record past the block's end, or a zero-type empty record: the readers
            // drop the rest of the block.
            if p + HEADER + len > n || (kind == 0 && len == 0) {
                break;
            }
            p += HEADER + len;
        }
        if n < BLOCK {
            return Ok(None);
        }
        base += BLOCK as u64;
    }
}

/// The MANIFEST file that `dir`'s `CURRENT` names, if `CURRENT` is readable and names a
/// plain `MANIFEST-<number>` file (anything else is for RocksDB to report).
fn current_manifest(dir: &Path) -> Option<String> {
    let current = std::fs::read_to_string(dir.join("CURRENT")).ok()?;
    let name = current.strip_suffix('\n').unwrap_or(&current);
    let number = name.strip_prefix("MANIFEST-")?;
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())).then(|| name.to_owned())
}

/// Checks one log file; `Ok(false)` when it does not exist.
fn check_file(dir: &Path, name: &str) -> Result<bool> {
    let path = dir.join(name);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(Error::Io { path, source }),
    };
    let found = first_recycled_header(std::io::BufReader::new(file))
        .map_err(|source| Error::Io { path, source })?;
    match found {
        None => Ok(true),
        Some(offset) => Err(Error::Corruption {
            path: dir.to_path_buf(),
            detail: format!(
                "{name} is damaged at byte {offset}: a record header of a recycled log, \
                 which this database never writes"
            ),
        }),
    }
}

/// Checks every log file RocksDB reads on opening `dir` (see the module docs): every
/// write-ahead log (`*.log`) and the MANIFEST that `CURRENT` names, which must exist.
///
/// # Errors
/// [`Error::Corruption`] naming the file and offset of a recycled-log header, or a
/// MANIFEST that `CURRENT` names but that is missing; [`Error::Io`] if a file cannot
/// be read.
pub fn check_logs(dir: &Path) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut wals = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let name = entry
            .map_err(io)?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".log") {
            wals.push(name);
        }
    }
    wals.sort();
    // A log gone since the listing was deleted by a live writer as obsolete.
    for name in &wals {
        check_file(dir, name)?;
    }
    // A live writer may switch to a new MANIFEST (write it, point CURRENT at it, delete
    // the old one) while this runs: a missing MANIFEST is damage only if CURRENT still
    // names it when read again.
    let mut named = current_manifest(dir);
    while let Some(manifest) = named {
        if check_file(dir, &manifest)? {
            break;
        }
        let again = current_manifest(dir);
        if again.as_deref() == Some(manifest.as_str()) {
            return Err(Error::Corruption {
                path: dir.to_path_buf(),
                detail: format!("CURRENT names {manifest}, which is missing"),
            });
        }
        named = again;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A record as RocksDB's writer lays it out (the checksum is not checked here).
    fn record(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut r = vec![0xAB; 4];
        r.extend_from_slice(&(payload.len() as u16).to_le_bytes());
        r.push(kind);
        r.extend_from_slice(payload);
        r
    }

    fn scan(bytes: &[u8]) -> Option<u64> {
        first_recycled_header(bytes).unwrap()
    }

    #[test]
    fn plain_records_pass() {
        let mut log = Vec::new();
        for i in 0..4000u32 {
            let payload = vec![7u8; (i % 50) as usize];
            let rec = record(1, &payload);
            // Records never span a block: pad the block's tail as the writer does.
            let room = BLOCK - log.len() % BLOCK;
            if room < rec.len() {
                log.extend(std::iter::repeat_n(0u8, room));
            }
            log.extend_from_slice(&rec);
        }
        assert!(log.len() > 2 * BLOCK);
        assert_eq!(scan(&log), None);
        assert_eq!(scan(&[]), None);
        // A torn tail (a header without its payload, or part of a header) is not this.
        assert_eq!(scan(&log[..log.len() - 3]), None);
    }

    #[test]
    fn a_recycled_header_is_found_where_a_reader_would_parse_it() {
        let mut log = record(1, b"hello");
        log.extend(record(2, &[1; 20]));
        let at = log.len() as u64;
        log.extend(record(5, &[0; 8]));
        assert_eq!(scan(&log), Some(at));
        for t in [5u8, 6, 7, 8, 11, 131] {
            assert_eq!(scan(&record(t, &[])), Some(0), "type {t}");
        }
    }

    #[test]
    fn the_walk_resumes_at_the_next_block_after_a_bad_length() {
        // A length past the block's end: readers skip to the next block, so a recycled
        // type inside the claimed payload is not a header, but one at the next block's
        // start is.
        let mut log = vec![0u8; 0];
        log.extend_from_slice(&[0, 0, 0, 0, 0xFF, 0xFF, 1]);
        log.resize(BLOCK, 5);
        assert_eq!(scan(&log), None);
        log.extend(record(6, b"x"));
        assert_eq!(scan(&log), Some(BLOCK as u64));
    }

    #[test]
    fn the_block_tail_shorter_than_a_header_is_padding() {
        let mut log = Vec::new();
        log.extend(record(1, &vec![1u8; BLOCK - HEADER - 6 - HEADER]));
        log.extend(record(1, &[]));
        assert_eq!(log.len(), BLOCK - 6);
        log.extend_from_slice(&[5; 6]);
        assert_eq!(scan(&log), None);
    }

    #[test]
    fn check_logs_names_the_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("CURRENT"), "MANIFEST-000005\n").unwrap();
        std::fs::write(dir.path().join("MANIFEST-000005"), record(1, b"m")).unwrap();
        std::fs::write(dir.path().join("000007.log"), record(1, b"w")).unwrap();
        check_logs(dir.path()).unwrap();
        std::fs::write(dir.path().join("MANIFEST-000005"), record(7, b"m")).unwrap();
        let e = check_logs(dir.path()).unwrap_err();
        assert!(
            matches!(&e, Error::Corruption { detail, .. } if detail.contains("MANIFEST-000005 is damaged at byte 0")),
            "{e}"
        );
        std::fs::write(dir.path().join("MANIFEST-000005"), record(1, b"m")).unwrap();
        let mut wal = record(1, b"w");
        wal.extend(record(131, b""));
        std::fs::write(dir.path().join("000007.log"), wal).unwrap();
        let e = check_logs(dir.path()).unwrap_err();
        assert!(
            matches!(&e, Error::Corruption { detail, .. } if detail.contains("000007.log is damaged at byte 8")),
            "{e}"
        );
        std::fs::write(dir.path().join("000007.log"), record(1, b"w")).unwrap();
        std::fs::write(dir.path().join("CURRENT"), "MANIFEST-000006\n").unwrap();
        let e = check_logs(dir.path()).unwrap_err();
        assert!(
            matches!(&e, Error::Corruption { detail, .. } if detail.contains("CURRENT names MANIFEST-000006, which is missing")),
            "{e}"
        );
        // A CURRENT naming no MANIFEST at all is left for RocksDB to report.
        std::fs::write(dir.path().join("CURRENT"), "garbage").unwrap();
        check_logs(dir.path()).unwrap();
    }
}
