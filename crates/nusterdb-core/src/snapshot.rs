//! Snapshots: consistent point-in-time copies of a database, each a directory that
//! opens as a database on its own.
//!
//! A snapshot lives in `<db>/snapshots/<name>/`: a RocksDB checkpoint (immutable files
//! hard-linked where possible), NusterDB's lock file, and `SNAPSHOT` — the manifest.
//! It is built in `<name>.partial`, the manifest is written and fsync'd, then the
//! directory is renamed into place and the parent fsync'd, so a crash leaves either a
//! complete snapshot or a `.partial` directory that listing ignores and the next
//! snapshot of that name clears.
//!
//! Manifest format (little-endian): magic `NDBSNAP1`, format version u32, body length
//! u32, body (record codec metadata: the user's fields plus `name`, `vector_count`),
//! CRC32 of everything before it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::metadata::{now_unix, Metadata, Value};
use crate::storage::codec::{decode_metadata, encode_metadata};
use crate::storage::fileio::{write_synced, FileIo};
use crate::storage::lock::LOCK_FILE;

const MAGIC: &[u8; 8] = b"NDBSNAP1";
const VERSION: u32 = 1;
/// The manifest's file name inside a snapshot directory.
pub const MANIFEST: &str = "SNAPSHOT";
const PARTIAL: &str = ".partial";
/// Name prefix of snapshots taken by the auto-snapshot thread.
pub const AUTO_PREFIX: &str = "auto-";
/// How many auto snapshots are kept; older ones are deleted after each new one.
pub const AUTO_RETENTION: usize = 10;

/// What is known about one snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotInfo {
    pub name: String,
    pub path: PathBuf,
    /// Unix seconds.
    pub created_at: u64,
    pub vector_count: u64,
    /// The caller's metadata (`snapshot_with_metadata`).
    pub metadata: Metadata,
}

/// The snapshots directory of the database at `db`.
pub fn snapshots_dir(db: &Path) -> PathBuf {
    db.join("snapshots")
}

/// Checks a snapshot name: 1–128 of `A-Z a-z 0-9 . _ -`, not starting with `.`, not
/// ending with `.partial` or `.tmp` (the names of directories under construction).
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

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
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

/// Creates snapshot `name` of the database at `db` by calling `checkpoint(dir)` to fill
/// a fresh directory. `user` is the caller's metadata; `vector_count` is recorded. The
/// files written here go through `io` (fault injection in tests).
///
/// # Errors
/// A bad or existing name; I/O or engine errors. An error leaves no snapshot: the
/// partial directory is removed, and so is the renamed one when only the final
/// directory sync failed.
pub fn create(
    io: &dyn FileIo,
    db: &Path,
    name: &str,
    user: &Metadata,
    vector_count: u64,
    checkpoint: impl FnOnce(&Path) -> Result<()>,
) -> Result<SnapshotInfo> {
    validate_name(name)?;
    let root = snapshots_dir(db);
    fs::create_dir_all(&root).map_err(io_err(&root))?;
    let final_dir = root.join(name);
    if final_dir.exists() {
        return Err(Error::invalid(format!("snapshot {name:?} already exists")));
    }
    let partial = root.join(format!("{name}{PARTIAL}"));
    // Leftovers of an interrupted attempt: ours, and RocksDB's own `<dir>.tmp`.
    for leftover in [partial.clone(), root.join(format!("{name}{PARTIAL}.tmp"))] {
        if leftover.exists() {
            fs::remove_dir_all(&leftover).map_err(io_err(&leftover))?;
        }
    }
    let mut renamed = false;
    let result = (|| {
        checkpoint(&partial)?;
        io.create(&partial.join(LOCK_FILE))
            .map_err(io_err(&partial))?;
        let mut meta = user.clone();
        meta.set("name", Value::Str(name.to_string()))?;
        meta.set(
            "vector_count",
            Value::Int(i64::try_from(vector_count).unwrap_or(i64::MAX)),
        )?;
        let manifest = partial.join(MANIFEST);
        write_synced(io, &manifest, |w| w.write_all(&encode_manifest(&meta)))
            .map_err(io_err(&manifest))?;
        io.sync_dir(&partial).map_err(io_err(&partial))?;
        io.rename(&partial, &final_dir)
            .map_err(io_err(&final_dir))?;
        renamed = true;
        io.sync_dir(&root).map_err(io_err(&root))?;
        read_info(&final_dir)
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(if renamed { &final_dir } else { &partial });
    }
    result
}

fn read_info(dir: &Path) -> Result<SnapshotInfo> {
    let manifest = dir.join(MANIFEST);
    let bytes = fs::read(&manifest).map_err(io_err(&manifest))?;
    let mut meta = decode_manifest(&bytes).map_err(|detail| Error::Corruption {
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
    let created_at = meta.created_at();
    Ok(SnapshotInfo {
        name,
        path: dir.to_path_buf(),
        created_at,
        vector_count,
        metadata: Metadata::from_stored(
            meta.fields().clone(),
            meta.tags().clone(),
            created_at,
            created_at,
            1,
        ),
    })
}

/// Every complete snapshot of the database at `db`, oldest first (then by name).
///
/// # Errors
/// I/O errors, or a damaged manifest.
pub fn list(db: &Path) -> Result<Vec<SnapshotInfo>> {
    let root = snapshots_dir(db);
    let entries = match fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&root)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(&root))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Directories under construction (ours `.partial`, RocksDB's `.tmp`) and anything
        // else that is not a complete snapshot are not listed.
        if validate_name(&name).is_err() || !entry.path().join(MANIFEST).is_file() {
            continue;
        }
        out.push(read_info(&entry.path())?);
    }
    out.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
    Ok(out)
}

/// The directory of snapshot `name`.
///
/// # Errors
/// A bad name, or no such snapshot.
pub fn find(db: &Path, name: &str) -> Result<PathBuf> {
    validate_name(name)?;
    let dir = snapshots_dir(db).join(name);
    if dir.join(MANIFEST).is_file() {
        Ok(dir)
    } else {
        Err(Error::invalid(format!("no snapshot named {name:?}")))
    }
}

/// Deletes snapshot `name`.
///
/// # Errors
/// A bad name, no such snapshot, I/O errors.
pub fn delete(db: &Path, name: &str) -> Result<()> {
    let dir = find(db, name)?;
    fs::remove_dir_all(&dir).map_err(io_err(&dir))
}

/// Copies snapshot `name` to `target` (which must not exist or be empty) as a database
/// of its own, writing the copies through `io`.
///
/// # Errors
/// A bad name, an occupied target, I/O errors (a partial target is removed).
pub fn restore(io: &dyn FileIo, db: &Path, name: &str, target: &Path) -> Result<()> {
    let src = find(db, name)?;
    if target.exists() {
        let empty = fs::read_dir(target)
            .map_err(io_err(target))?
            .next()
            .is_none();
        if !empty {
            return Err(Error::invalid(format!(
                "restore target {} exists and is not empty",
                target.display()
            )));
        }
    }
    let result = (|| {
        fs::create_dir_all(target).map_err(io_err(target))?;
        for entry in fs::read_dir(&src).map_err(io_err(&src))? {
            let entry = entry.map_err(io_err(&src))?;
            let name = entry.file_name();
            if name == MANIFEST {
                continue;
            }
            let to = target.join(&name);
            File::open(entry.path())
                .and_then(|mut from| {
                    write_synced(io, &to, |w| std::io::copy(&mut from, w).map(drop))
                })
                .map_err(io_err(&to))?;
        }
        io.sync_dir(target).map_err(io_err(target))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(target);
    }
    result
}

/// A name for an automatic snapshot taken now.
pub fn auto_name() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "{AUTO_PREFIX}{}-{}",
        now_unix(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Deletes the oldest auto snapshots beyond [`AUTO_RETENTION`].
///
/// # Errors
/// I/O errors.
pub fn prune_auto(db: &Path) -> Result<()> {
    let autos: Vec<SnapshotInfo> = list(db)?
        .into_iter()
        .filter(|s| s.name.starts_with(AUTO_PREFIX))
        .collect();
    let excess = autos.len().saturating_sub(AUTO_RETENTION);
    for s in autos.into_iter().take(excess) {
        fs::remove_dir_all(&s.path).map_err(io_err(&s.path))?;
    }
    Ok(())
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
}
