//! The maps file of a sealed segment: the id map (record key ↔ slot, with its free
//! list), the string ids and the payload (filter) index, so that an open reads them
//! instead of rebuilding them from a scan of every record.
//!
//! # Format (version 1, little-endian)
//! ```text
//! header   32 B  magic "NDBMAPS\0", version u32, 4 zero bytes,
//!                tag: db_id u64, log_position u64
//! ids            u64 slot count, then each slot's key u64 (u64::MAX: a free slot);
//!                u64 free count, then the free list, u32 each (the last is reused
//!                first)
//! names          u8: 0 (int ids, nothing follows) or 1, then next key u64,
//!                u64 count, then (key u64, u32 len + UTF-8 name) in name order
//! payload        the payload index, as `filter::persist` lays it out: version,
//!                live bitmap, per metadata key its bitmaps and counts, tags
//! crc      4 B   CRC-32 of every byte before it
//! ```
//! The free list is saved in its order, not rebuilt from the free slots, so the slots
//! handed out after a read are the ones the saved map would have handed out.
//!
//! A file is written whole to a temporary name, fsync'd and renamed
//! (`storage::fileio::write_atomic`): it exists complete or not at all.
//!
//! Reading trusts nothing. The CRC and the length come first; every count is checked
//! against the bytes left before anything is sized by it; then the contents must agree
//! with themselves: keys below 2^63 and in one slot each, the free list exactly the free
//! slots, names unique, valid and one per key of the id map, every payload set inside
//! the live set and that set exactly the slots the id map binds, plus the payload
//! index's own invariants. Any failure is [`Error::Corruption`] naming the file; a
//! missing file is [`Error::Io`] of kind `NotFound`, so a caller can tell "absent" from
//! "damaged".

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::error::{Error, Result};
use crate::filter::PayloadIndex;
use crate::id_map::{IdMap, FREE};
use crate::ids::Names;
use crate::storage::codec::{DecodeResult, Reader};
use crate::storage::fileio::{write_atomic, FileIo};

/// First bytes of a maps file.
pub const MAGIC: [u8; 8] = *b"NDBMAPS\0";
/// The format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of the header.
pub const HEADER_LEN: usize = 32;
/// Bytes of the trailing CRC.
const CRC_LEN: usize = 4;

/// What ties a maps file to the rest of its segment: the caller's database id and the
/// change-log position the maps are as of. Stored as given; matching it is the
/// caller's check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapsTag {
    pub db_id: u64,
    pub log_position: u64,
}

/// The contents of a maps file.
#[derive(Debug)]
pub struct Maps {
    pub ids: IdMap,
    /// The string ids (`None` in an int-id database).
    pub names: Option<Names>,
    pub payload: PayloadIndex,
    pub tag: MapsTag,
}

/// Passes writes through, hashing them for the trailing CRC.
struct CrcWriter<'a> {
    inner: &'a mut dyn Write,
    crc: crc32fast::Hasher,
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

/// Writes `ids`, `names` (`None` for an int-id database) and `payload` with `tag` as
/// the maps file at `path`, atomically (see the module docs).
///
/// # Errors
/// [`Error::InvalidArgument`] when the three disagree in a way a read would refuse
/// (slots reserved but not yet bound, a live set other than the bound slots, names
/// not one per key); nothing is written then. [`Error::Io`] naming the file.
pub fn write(
    io: &dyn FileIo,
    path: &Path,
    ids: &IdMap,
    names: Option<&Names>,
    payload: &PayloadIndex,
    tag: &MapsTag,
) -> Result<()> {
    check_agreement(ids, names, payload).map_err(|d| {
        Error::InvalidArgument(format!("maps file {} not written: {d}", path.display()))
    })?;
    write_atomic(io, path, |w| {
        let mut w = CrcWriter {
            inner: w,
            crc: crc32fast::Hasher::new(),
        };
        w.write_all(&MAGIC)?;
        w.write_all(&FORMAT_VERSION.to_le_bytes())?;
        w.write_all(&[0u8; 4])?;
        w.write_all(&tag.db_id.to_le_bytes())?;
        w.write_all(&tag.log_position.to_le_bytes())?;

        let slots = ids.slots();
        w.write_all(&(slots.len() as u64).to_le_bytes())?;
        for id in slots {
            w.write_all(&id.to_le_bytes())?;
        }
        let free = ids.free_list();
        w.write_all(&(free.len() as u64).to_le_bytes())?;
        for s in free {
            w.write_all(&s.to_le_bytes())?;
        }

        match names {
            None => w.write_all(&[0])?,
            Some(names) => {
                w.write_all(&[1])?;
                w.write_all(&names.next_key().to_le_bytes())?;
                w.write_all(&(names.len() as u64).to_le_bytes())?;
                for (name, key) in names.after(None) {
                    w.write_all(&key.to_le_bytes())?;
                    let len = u32::try_from(name.len())
                        .map_err(|_| io::Error::other("a string id of 4 GiB"))?;
                    w.write_all(&len.to_le_bytes())?;
                    w.write_all(name.as_bytes())?;
                }
            }
        }

        payload.encode(&mut w)?;
        let crc = w.crc.finalize();
        w.inner.write_all(&crc.to_le_bytes())
    })
}

/// Reads the maps file at `path`, checking everything (see the module docs).
///
/// # Errors
/// [`Error::Io`] when it cannot be read (kind `NotFound` when it does not exist);
/// [`Error::Corruption`] naming the file and what is wrong.
pub fn read(io: &dyn FileIo, path: &Path) -> Result<Maps> {
    let bytes = io.read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode(&bytes).map_err(|detail| Error::Corruption {
        path: path.to_path_buf(),
        detail: format!("maps file: {detail}"),
    })
}

fn decode(bytes: &[u8]) -> DecodeResult<Maps> {
    if bytes.len() < HEADER_LEN + CRC_LEN {
        return Err(format!(
            "{} bytes is shorter than a header and a checksum",
            bytes.len()
        ));
    }
    if bytes[..8] != MAGIC {
        return Err("not a maps file (bad magic)".into());
    }
    let (body, crc) = bytes.split_at(bytes.len() - CRC_LEN);
    let mut stored = [0u8; CRC_LEN];
    stored.copy_from_slice(crc);
    if crc32fast::hash(body) != u32::from_le_bytes(stored) {
        return Err("checksum mismatch (damaged or truncated)".into());
    }
    let mut r = Reader::new(body);
    r.take(8, "magic")?;
    let version = r.u32("format version")?;
    if version != FORMAT_VERSION {
        return Err(format!(
            "format {version} not supported (this build reads {FORMAT_VERSION})"
        ));
    }
    if r.array::<4>("reserved")? != [0; 4] {
        return Err("reserved header bytes are not zero".into());
    }
    let tag = MapsTag {
        db_id: r.u64("db id")?,
        log_position: r.u64("log position")?,
    };

    let n = r.count(8, "slots")?;
    let mut slots = Vec::with_capacity(n);
    for _ in 0..n {
        slots.push(r.u64("slot")?);
    }
    let n = r.count(4, "free list")?;
    let mut free = Vec::with_capacity(n);
    for _ in 0..n {
        free.push(r.u32("free slot")?);
    }
    let ids = IdMap::from_parts(slots, free).map_err(|d| format!("id map: {d}"))?;

    let names = match r.u8("names flag")? {
        0 => None,
        1 => {
            let next = r.u64("next key")?;
            let n = r.count(12, "names")?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                let key = r.u64("name key")?;
                let name: Arc<str> = r.string("name")?.into();
                pairs.push((key, name));
            }
            Some(Names::from_parts(pairs, next).map_err(|d| format!("string ids: {d}"))?)
        }
        b => return Err(format!("names flag {b} (0 or 1)")),
    };

    let payload = PayloadIndex::decode(&mut r).map_err(|d| format!("payload index: {d}"))?;
    r.finish("maps file")?;
    check_agreement(&ids, names.as_ref(), &payload)?;
    Ok(Maps {
        ids,
        names,
        payload,
        tag,
    })
}

/// What the three maps must agree on: the free list is every free slot (no slot
/// reserved but unbound), the live set is exactly the bound slots, and the names are
/// one per key of the id map.
fn check_agreement(
    ids: &IdMap,
    names: Option<&Names>,
    payload: &PayloadIndex,
) -> DecodeResult<()> {
    let slots = ids.slots();
    let free = slots.iter().filter(|&&id| id == FREE).count();
    if free != ids.free_list().len() {
        return Err(format!(
            "{} slots are free but {} are on the free list (slots reserved, not yet bound)",
            free,
            ids.free_list().len()
        ));
    }
    // Slot numbers fit u32: the id map never holds more.
    let bound: RoaringBitmap = slots
        .iter()
        .enumerate()
        .filter(|(_, &id)| id != FREE)
        .map(|(s, _)| s as u32)
        .collect();
    if &bound != payload.live() {
        return Err(format!(
            "the payload index has {} live slots, the id map binds {} others",
            payload.live().len(),
            bound.len()
        ));
    }
    if let Some(names) = names {
        if names.len() != ids.len() {
            return Err(format!("{} string ids for {} keys", names.len(), ids.len()));
        }
        if let Some((name, key)) = names.after(None).find(|&(_, key)| !ids.contains(key)) {
            return Err(format!("string id {name:?} names key {key}, which has no slot"));
        }
    }
    Ok(())
}
