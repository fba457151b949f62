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
//! Reading trusts nothing. The length, magic and CRC come first; every count is checked
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
use crate::storage::fileio::{write_atomic, CrcWriter, FileIo};

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
    /// The database the file belongs to.
    pub db_id: u64,
    /// The change-log position the maps include everything up to.
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
        let mut w = CrcWriter::new(w);
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
        let (crc, inner) = w.finish();
        inner.write_all(&crc.to_le_bytes())
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
fn check_agreement(ids: &IdMap, names: Option<&Names>, payload: &PayloadIndex) -> DecodeResult<()> {
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
            return Err(format!(
                "string id {name:?} names key {key}, which has no slot"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;
    use crate::filter::persist::strategies::{filter, metadata};
    use crate::filter::Filter;
    use crate::metadata::{Metadata, Value};
    use crate::storage::fileio::{FaultMode, FaultyIo, OsIo};

    /// The three maps as the database would hold them after inserting `keys` (each with
    /// its metadata), removing `released` (by position, in that order) and inserting
    /// `later`.
    fn build(
        keys: &[(u64, Metadata)],
        released: &[usize],
        later: &[(u64, Metadata)],
        str_ids: bool,
    ) -> (IdMap, Option<Names>, PayloadIndex) {
        let mut ids = IdMap::default();
        let mut names = str_ids.then(Names::default);
        let mut payload = PayloadIndex::new();
        // A key given twice keeps its first metadata, as the database would refuse
        // the second insert.
        let mut held: std::collections::HashMap<u64, Metadata> = Default::default();
        let mut add = |key: u64, m: &Metadata| {
            if ids.contains(key) {
                return;
            }
            let slot = ids.assign(key).unwrap();
            payload.insert(slot, m);
            held.insert(key, m.clone());
            if let Some(n) = &mut names {
                n.insert(format!("é{key}").into(), key).unwrap();
            }
        };
        for (key, m) in keys {
            add(*key, m);
        }
        let mut gone = BTreeSet::new();
        for &i in released.iter().filter(|_| !keys.is_empty()) {
            let key = keys[i % keys.len()].0;
            if gone.insert(key) {
                let slot = ids.release(key).unwrap();
                payload.remove(slot, &held[&key]);
                if let Some(n) = &mut names {
                    n.remove(key);
                }
            }
        }
        for (key, m) in later {
            if !ids.contains(*key) {
                let slot = ids.assign(*key).unwrap();
                payload.insert(slot, m);
                if let Some(n) = &mut names {
                    n.insert(format!("é{key}").into(), *key).unwrap();
                }
            }
        }
        (ids, names, payload)
    }

    fn sample(str_ids: bool, n: u64) -> (IdMap, Option<Names>, PayloadIndex) {
        let keys: Vec<(u64, Metadata)> = (0..n)
            .map(|i| {
                let fields = [
                    ("a".to_string(), Value::Int(i as i64 - 5)),
                    ("b".to_string(), Value::Str(format!("s{}", i % 3))),
                    ("c".to_string(), Value::Float(i as f64 / 4.0)),
                    ("d".to_string(), Value::Bool(i % 2 == 0)),
                ];
                let tags = [format!("t{}", i % 4)];
                (
                    i * 7,
                    Metadata::from_stored(fields.into(), tags.into(), 0, 0, 1),
                )
            })
            .collect();
        build(&keys, &[3, 9, 4], &[], str_ids)
    }

    const TAG: MapsTag = MapsTag {
        db_id: 0xDB,
        log_position: 42,
    };

    fn write_sample(path: &Path, str_ids: bool, n: u64, tag: &MapsTag) {
        let (ids, names, payload) = sample(str_ids, n);
        write(&OsIo, path, &ids, names.as_ref(), &payload, tag).unwrap();
    }

    /// The file with its CRC recomputed after an edit.
    fn with_crc(mut bytes: Vec<u8>) -> Vec<u8> {
        let body = bytes.len() - CRC_LEN;
        let crc = crc32fast::hash(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    fn assert_corrupt(path: &Path, bytes: &[u8], what: &str) {
        std::fs::write(path, bytes).unwrap();
        match read(&OsIo, path) {
            Err(Error::Corruption { path: p, detail }) => {
                assert_eq!(p, path, "{what}");
                assert!(!detail.is_empty(), "{what}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }

    fn entries() -> impl Strategy<Value = Vec<(u64, Metadata)>> {
        proptest::collection::vec((prop_oneof![0u64..200, 0u64..(1 << 63)], metadata()), 0..50)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        /// Written then read, the maps are the same: every key in its slot, the same
        /// free list and so the same slots handed out next, the same names and next
        /// key, and a payload index answering every filter alike.
        #[test]
        fn maps_round_trip(
            keys in entries(),
            released in proptest::collection::vec(0usize..1000, 0..25),
            later in entries(),
            str_ids in any::<bool>(),
            tag in (any::<u64>(), any::<u64>()),
            filters in proptest::collection::vec(filter(), 1..10),
        ) {
            let later: Vec<(u64, Metadata)> = later.into_iter().take(8).collect();
            let (ids, names, payload) = build(&keys, &released, &later, str_ids);
            let tag = MapsTag { db_id: tag.0, log_position: tag.1 };
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("maps.bin");
            write(&OsIo, &p, &ids, names.as_ref(), &payload, &tag).unwrap();
            let back = read(&OsIo, &p).unwrap();
            prop_assert_eq!(back.tag, tag);

            let mut a = ids;
            let mut b = back.ids;
            prop_assert_eq!(a.slots(), b.slots());
            prop_assert_eq!(a.free_list(), b.free_list());
            prop_assert_eq!((a.len(), a.slot_extent()), (b.len(), b.slot_extent()));
            for key in a.sorted_ids() {
                prop_assert_eq!(a.slot(key), b.slot(key));
            }
            let fresh = (1u64 << 62)..(1u64 << 62) + 12;
            let next_a: Vec<u32> = fresh.clone().map(|k| a.assign(k).unwrap()).collect();
            let next_b: Vec<u32> = fresh.map(|k| b.assign(k).unwrap()).collect();
            prop_assert_eq!(next_a, next_b);

            match (&names, &back.names) {
                (None, None) => {}
                (Some(n), Some(m)) => {
                    prop_assert_eq!(n.next_key(), m.next_key());
                    let x: Vec<(Arc<str>, u64)> =
                        n.after(None).map(|(s, k)| (Arc::clone(s), k)).collect();
                    let y: Vec<(Arc<str>, u64)> =
                        m.after(None).map(|(s, k)| (Arc::clone(s), k)).collect();
                    prop_assert_eq!(x, y);
                }
                _ => prop_assert!(false, "names present on one side only"),
            }

            let q = &back.payload;
            prop_assert_eq!(q.len(), payload.len());
            prop_assert_eq!(q.keys(), payload.keys());
            prop_assert_eq!(q.version(), payload.version());
            // The same bitmaps and strings, each allocated to fit: the same estimate.
            prop_assert_eq!(q.memory_bytes(), payload.memory_bytes());
            for f in filters.iter().chain([&Filter::All]) {
                prop_assert_eq!(q.evaluate(f), payload.evaluate(f), "filter {:?}", f);
            }
        }
    }

    #[test]
    fn a_missing_file_is_not_found_not_corruption() {
        let dir = tempfile::tempdir().unwrap();
        match read(&OsIo, &dir.path().join("none.bin")) {
            Err(Error::Io { source, .. }) => assert_eq!(source.kind(), io::ErrorKind::NotFound),
            other => panic!("{other:?}"),
        }
    }

    /// Any flipped byte, any truncation and anything appended is corruption, never a
    /// panic and never a wrong read.
    #[test]
    fn damaged_files_are_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("maps.bin");
        write_sample(&p, true, 300, &TAG);
        let good = std::fs::read(&p).unwrap();
        assert!(good.len() > 4000, "{}", good.len());
        read(&OsIo, &p).unwrap();
        let stride = good.len() / 300;
        let offsets = (0..HEADER_LEN)
            .chain((HEADER_LEN..good.len()).step_by(stride))
            .chain(good.len() - CRC_LEN..good.len());
        for at in offsets {
            for bit in [0x01, 0x80] {
                let mut b = good.clone();
                b[at] ^= bit;
                assert_corrupt(&p, &b, &format!("byte {at} ^ {bit:#x}"));
            }
        }
        let cuts = (0..HEADER_LEN + 64).chain((HEADER_LEN + 64..good.len()).step_by(stride));
        for len in cuts {
            assert_corrupt(&p, &good[..len], &format!("cut to {len}"));
        }
        assert_corrupt(&p, &good[..good.len() - 1], "last byte cut");
        assert_corrupt(&p, &[], "empty file");
        for tail in [&[0u8][..], &[0; 4], b"garbage appended"] {
            assert_corrupt(&p, &[&good[..], tail].concat(), "appended");
        }
        // Appended bytes that carry a valid CRC of everything before them: the parse
        // finds the old checksum left over.
        let crc = crc32fast::hash(&good).to_le_bytes();
        assert_corrupt(&p, &[&good[..], &crc].concat(), "appended with a CRC");
    }

    /// Edits behind a valid CRC: each count lying (small or huge, which must fail
    /// before sizing an allocation), and contents that disagree.
    #[test]
    fn valid_checksum_with_bad_contents_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("maps.bin");
        write_sample(&p, true, 40, &TAG);
        let good = std::fs::read(&p).unwrap();
        let u64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&good[at..at + 8]);
            u64::from_le_bytes(a)
        };
        let slot_count_at = HEADER_LEN;
        let slots = u64_at(slot_count_at) as usize;
        let free_count_at = slot_count_at + 8 + slots * 8;
        let free = u64_at(free_count_at) as usize;
        let names_flag_at = free_count_at + 8 + free * 4;
        assert_eq!(good[names_flag_at], 1);
        let names_count_at = names_flag_at + 1 + 8;
        let mut at = names_count_at + 8;
        for _ in 0..u64_at(names_count_at) {
            let len = u32::from_le_bytes(good[at + 8..at + 12].try_into().unwrap());
            at += 12 + len as usize;
        }
        let payload_at = at;
        let live_len =
            u32::from_le_bytes(good[payload_at + 8..payload_at + 12].try_into().unwrap());
        let fields_count_at = payload_at + 12 + live_len as usize;
        assert_eq!(u64_at(fields_count_at), 4, "the layout as documented");

        let set_u64 = |at: usize, x: u64| {
            let mut b = good.clone();
            b[at..at + 8].copy_from_slice(&x.to_le_bytes());
            with_crc(b)
        };
        for (name, at) in [
            ("slot count", slot_count_at),
            ("free count", free_count_at),
            ("names count", names_count_at),
            ("metadata key count", fields_count_at),
        ] {
            let was = u64_at(at);
            for lie in [was + 1, was.wrapping_sub(1), 1 << 40, 1 << 61, u64::MAX] {
                assert_corrupt(&p, &set_u64(at, lie), &format!("{name} {lie}"));
            }
        }
        // A key repeated in two slots; a key at or above 2^63.
        let first_key_at = slot_count_at + 8;
        assert_corrupt(
            &p,
            &set_u64(first_key_at + 8, u64_at(first_key_at)),
            "repeated key",
        );
        assert_corrupt(&p, &set_u64(first_key_at, 1 << 63), "key out of range");
        // A bound slot made free: the free list and the live set no longer agree.
        assert_corrupt(&p, &set_u64(first_key_at, u64::MAX), "slot freed");
        // A string id moved to a key with no slot.
        assert_corrupt(&p, &set_u64(names_count_at + 8, 1 << 62), "name of no key");
        let mut b = good.clone();
        b[names_flag_at] = 2;
        assert_corrupt(&p, &with_crc(b), "names flag");
        let mut b = good.clone();
        b[8] = 2;
        assert_corrupt(&p, &with_crc(b), "format version");
        let mut b = good.clone();
        b[12] = 1;
        assert_corrupt(&p, &with_crc(b), "reserved bytes");
        let mut b = good.clone();
        b[0] = b'X';
        assert_corrupt(&p, &with_crc(b), "magic");
        // Invalid UTF-8 in a string id.
        let mut b = good.clone();
        b[names_count_at + 8 + 12] = 0xFF;
        assert_corrupt(&p, &with_crc(b), "UTF-8");
        // Names missing for an int-id map's file read as a string-id one, and the
        // other way: the flag says which; a flag of 0 leaves bytes the payload cannot
        // parse.
        let mut b = good.clone();
        b[names_flag_at] = 0;
        assert_corrupt(&p, &with_crc(b), "names flag cleared");
        // The reference edit (no change) still reads, so each failure above is the
        // edit's.
        std::fs::write(&p, with_crc(good.clone())).unwrap();
        read(&OsIo, &p).unwrap();
    }

    /// Maps that disagree are refused before anything is written.
    #[test]
    fn disagreeing_maps_are_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("maps.bin");
        let (mut ids, names, payload) = sample(false, 10);
        let r = ids.reserve(2).unwrap();
        let e = write(&OsIo, &p, &ids, None, &payload, &TAG);
        assert!(matches!(e, Err(Error::InvalidArgument(_))), "{e:?}");
        ids.unreserve(&r);
        let mut fewer = payload.clone();
        fewer.remove_slots(&[0u32].into_iter().collect());
        let e = write(&OsIo, &p, &ids, None, &fewer, &TAG);
        assert!(matches!(e, Err(Error::InvalidArgument(_))), "{e:?}");
        let (_, str_names, _) = sample(true, 9);
        let e = write(&OsIo, &p, &ids, str_names.as_ref(), &payload, &TAG);
        assert!(matches!(e, Err(Error::InvalidArgument(_))), "{e:?}");
        assert!(!p.exists());
        write(&OsIo, &p, &ids, names.as_ref(), &payload, &TAG).unwrap();
    }

    /// A write that fails at any single operation (once, or from then on) leaves the
    /// old file or the new one, each whole.
    #[test]
    fn a_failed_write_leaves_the_old_or_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("maps.bin");
        let old_tag = MapsTag {
            db_id: 1,
            log_position: 10,
        };
        let new_tag = MapsTag {
            db_id: 1,
            log_position: 20,
        };
        let (ids, names, payload) = sample(true, 2000);
        for mode in [FaultMode::Once, FaultMode::Persistent] {
            let mut n = 1;
            loop {
                write_sample(&p, true, 50, &old_tag);
                let io = FaultyIo::new(n, mode, io::ErrorKind::StorageFull);
                let done = write(&io, &p, &ids, names.as_ref(), &payload, &new_tag);
                let now = read(&OsIo, &p).unwrap();
                let is_new = now.tag == new_tag;
                assert!(is_new || now.tag == old_tag, "{mode:?} fault at {n}");
                let len = if is_new { ids.len() } else { 47 };
                assert_eq!(now.ids.len(), len, "{mode:?} fault at {n}");
                assert_eq!(now.payload.len(), len as u64, "{mode:?} fault at {n}");
                if done.is_ok() {
                    assert!(is_new, "{mode:?} fault at {n}");
                }
                if done.is_ok() && !io.has_failed() {
                    break;
                }
                // A failed directory sync comes after the rename: the new file is in
                // place although the write reports the error.
                assert!(done.is_err() || !io.has_failed(), "{mode:?} fault at {n}");
                n += 1;
                assert!(n < 1000, "the write never completed");
            }
            assert!(n > 4, "{mode:?}: faults at only {n} points");
        }
    }
}
