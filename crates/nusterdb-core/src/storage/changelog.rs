//! The change log: which records each write changed, so that an open or a follower's
//! refresh replays only the writes made since the sealed state instead of reading
//! every record.
//!
//! Every write batch of a format-3 database carries one entry `w` + position naming the
//! record keys it touched (or "every record", for `clear`) and moves `log.next` on, in
//! the same atomic batch: the log cannot disagree with the records, also after a crash
//! or a power cut that loses the last unsynced batches (they go with their entries).
//!
//! A seal (`db/seal.rs`) writes the in-memory state as it is at log position `P` into
//! segment files, then stores a [`Seal`] naming them and `P`, and deletes the entries
//! below the previous seal's position (kept one seal longer, so a follower that
//! refreshed since then still catches up by replay rather than by reloading).
//!
//! Entries name keys, not values: a replay reads each touched record's current value
//! from RocksDB, so a key written many times is read once and an entry stays small.

use std::collections::BTreeSet;

use super::codec::DecodeResult;
use super::keys::{LOG_NEXT_KEY, LOG_PREFIX, SEAL_KEY, SEAL_PARTS_KEY};
use super::Store;
use crate::error::{Error, Result};

const ENTRY_VERSION: u8 = 1;
const KIND_KEYS: u8 = 0;
const KIND_CLEAR: u8 = 1;
const SEAL_VERSION: u8 = 1;
const PARTS_VERSION: u8 = 1;

/// The entry of a batch that touched `keys` (`clear`: every record was removed first).
pub fn encode_entry(keys: &[u64], clear: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + 8 * keys.len());
    out.push(ENTRY_VERSION);
    out.push(if clear { KIND_CLEAR } else { KIND_KEYS });
    // A batch holds far fewer than 2^32 records (RocksDB's own batch limit is 4 GiB).
    out.extend_from_slice(&(keys.len() as u32).to_le_bytes());
    for k in keys {
        out.extend_from_slice(&k.to_le_bytes());
    }
    out
}

/// Decodes an entry into `(clear, keys)`.
///
/// # Errors
/// A detail naming what is wrong (untrusted input: every length is checked first).
pub fn decode_entry(bytes: &[u8]) -> DecodeResult<(bool, Vec<u64>)> {
    if bytes.len() < 6 || bytes[0] != ENTRY_VERSION {
        return Err("change-log entry: unknown version or truncated".into());
    }
    let clear = match bytes[1] {
        KIND_KEYS => false,
        KIND_CLEAR => true,
        k => return Err(format!("change-log entry: unknown kind {k}")),
    };
    let mut n = [0u8; 4];
    n.copy_from_slice(&bytes[2..6]);
    let n = u32::from_le_bytes(n) as usize;
    let body = &bytes[6..];
    if Some(body.len()) != n.checked_mul(8) {
        return Err(format!(
            "change-log entry: {n} keys need {} bytes, found {}",
            n.saturating_mul(8),
            body.len()
        ));
    }
    let keys = body
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .collect();
    Ok((clear, keys))
}

/// The `log.next` value for `position`.
pub fn encode_position(position: u64) -> [u8; 8] {
    position.to_le_bytes()
}

/// Which segment files hold the sealed state, and what of the log it includes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seal {
    /// Names the segment files (`segment-<id as 16 hex digits>.*`), new for every seal.
    pub id: u64,
    /// The sealed state includes every log entry below this position, none from it.
    pub position: u64,
    /// Entries below this position are deleted.
    pub floor: u64,
}

impl Seal {
    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(25);
        out.push(SEAL_VERSION);
        for v in [self.id, self.position, self.floor] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Decodes a stored seal record.
    ///
    /// # Errors
    /// A detail naming what is wrong.
    pub fn decode(bytes: &[u8]) -> DecodeResult<Seal> {
        if bytes.len() != 25 || bytes[0] != SEAL_VERSION {
            return Err(format!(
                "seal record: {} bytes or unknown version",
                bytes.len()
            ));
        }
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[1 + 8 * i..9 + 8 * i]);
            u64::from_le_bytes(b)
        };
        let seal = Seal {
            id: word(0),
            position: word(1),
            floor: word(2),
        };
        if seal.floor > seal.position {
            return Err(format!(
                "seal record: floor {} above position {}",
                seal.floor, seal.position
            ));
        }
        Ok(seal)
    }
}

/// One part of a seal's rows and codes: the vector and codes files of seal `id`,
/// which hold the slots from `first` on (up to the next part's `first`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub id: u64,
    pub first: u64,
}

/// Which files hold the rows (and codes) of seal `seal`: its parts, by ascending
/// `first`, the first from slot 0. A seal rewrites only the slots its changes touched
/// as a new part and keeps the files of the earlier parts (`db/seal.rs`). Stored beside
/// the seal record, in the same batch; a seal without it (written by an earlier build,
/// or for a flat index) has one part, its own files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealParts {
    pub seal: u64,
    pub parts: Vec<Part>,
}

impl SealParts {
    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(13 + 16 * self.parts.len());
        out.push(PARTS_VERSION);
        out.extend_from_slice(&self.seal.to_le_bytes());
        out.extend_from_slice(&(self.parts.len() as u32).to_le_bytes());
        for p in &self.parts {
            out.extend_from_slice(&p.id.to_le_bytes());
            out.extend_from_slice(&p.first.to_le_bytes());
        }
        out
    }

    /// Decodes a stored parts record.
    ///
    /// # Errors
    /// A detail naming what is wrong.
    pub fn decode(bytes: &[u8]) -> DecodeResult<SealParts> {
        let bad = || {
            format!(
                "seal parts record: {} bytes or unknown version",
                bytes.len()
            )
        };
        if bytes.len() < 13 || bytes[0] != PARTS_VERSION {
            return Err(bad());
        }
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let n = u32::from_le_bytes([bytes[9], bytes[10], bytes[11], bytes[12]]) as usize;
        if bytes.len() != 13 + 16 * n {
            return Err(bad());
        }
        let parts: Vec<Part> = (0..n)
            .map(|i| Part {
                id: word(13 + 16 * i),
                first: word(21 + 16 * i),
            })
            .collect();
        let ordered = parts.first().is_some_and(|p| p.first == 0)
            && parts.windows(2).all(|w| w[0].first < w[1].first);
        if !ordered {
            return Err(format!(
                "seal parts record: parts do not start at slot 0 in order ({parts:?})"
            ));
        }
        Ok(SealParts {
            seal: word(1),
            parts,
        })
    }
}

/// The parts of `seal`'s rows and codes, and whether they were recorded (a seal
/// without a record of its own, see [`SealParts`], is one part: its files).
///
/// # Errors
/// Storage errors; a damaged record.
pub fn stored_parts(store: &Store, seal: Seal) -> Result<(Vec<Part>, bool)> {
    let own = || {
        vec![Part {
            id: seal.id,
            first: 0,
        }]
    };
    match store.get(SEAL_PARTS_KEY)? {
        None => Ok((own(), false)),
        Some(b) => match SealParts::decode(&b) {
            Ok(p) if p.seal == seal.id => Ok((p.parts, true)),
            // A record left by a seal an earlier build replaced.
            Ok(_) => Ok((own(), false)),
            Err(d) => Err(damaged(store, d)),
        },
    }
}

fn damaged(store: &Store, detail: String) -> Error {
    Error::Corruption {
        path: store.path().to_path_buf(),
        detail,
    }
}

/// The position the next entry takes (0 before the first logged write).
///
/// # Errors
/// Storage errors; a damaged value.
pub fn next_position(store: &Store) -> Result<u64> {
    match store.get(LOG_NEXT_KEY)? {
        None => Ok(0),
        Some(b) => <[u8; 8]>::try_from(b.as_slice())
            .map(u64::from_le_bytes)
            .map_err(|_| damaged(store, format!("log position of {} bytes", b.len()))),
    }
}

/// The stored seal, if the database was ever sealed.
///
/// # Errors
/// Storage errors; a damaged record.
pub fn stored_seal(store: &Store) -> Result<Option<Seal>> {
    match store.get(SEAL_KEY)? {
        None => Ok(None),
        Some(b) => Seal::decode(&b).map(Some).map_err(|d| damaged(store, d)),
    }
}

/// What the entries in a range of positions changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tail {
    /// A `clear` was among them: every record older than it is gone.
    pub cleared: bool,
    /// The keys touched (after the last `clear`, if any), each once.
    pub keys: BTreeSet<u64>,
    /// Entries read.
    pub entries: u64,
}

/// Reads the entries at positions `from..to`, which must all be there.
///
/// # Errors
/// Storage errors; a missing, extra or damaged entry ([`Error::Corruption`]).
pub fn read_tail(store: &Store, from: u64, to: u64) -> Result<Tail> {
    let mut tail = Tail::default();
    let mut expect = from;
    store.walk(LOG_PREFIX, from, |pos, bytes| {
        if pos >= to {
            return Ok(false);
        }
        if pos != expect {
            return Err(damaged(
                store,
                format!("change log: entry {expect} is missing (next is {pos})"),
            ));
        }
        let (clear, keys) =
            decode_entry(bytes).map_err(|d| damaged(store, format!("{d} (entry {pos})")))?;
        if clear {
            tail.cleared = true;
            tail.keys.clear();
        }
        tail.keys.extend(keys);
        tail.entries += 1;
        expect += 1;
        Ok(true)
    })?;
    if expect != to {
        return Err(damaged(
            store,
            format!("change log: entries {expect}..{to} are missing"),
        ));
    }
    Ok(tail)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Parts records round-trip; every truncation, extension and out-of-order list
        /// is refused, never a panic.
        #[test]
        fn seal_parts_round_trip(
            seal: u64,
            ids in proptest::collection::vec(any::<u64>(), 1..6),
            gaps in proptest::collection::vec(1u64..1000, 5),
        ) {
            let mut first = 0;
            let parts: Vec<Part> = ids
                .iter()
                .zip(&gaps)
                .map(|(&id, &g)| {
                    let p = Part { id, first };
                    first += g;
                    p
                })
                .collect();
            let p = SealParts { seal, parts };
            let e = p.encode();
            prop_assert_eq!(SealParts::decode(&e).unwrap(), p.clone());
            for cut in 0..e.len() {
                prop_assert!(SealParts::decode(&e[..cut]).is_err());
            }
            prop_assert!(SealParts::decode(&[&e[..], &[0]].concat()).is_err());
            let mut bad = p.clone();
            bad.parts[0].first = 1;
            prop_assert!(SealParts::decode(&bad.encode()).is_err());
            if bad.parts.len() > 1 {
                let mut swapped = p;
                swapped.parts.swap(0, 1);
                prop_assert!(SealParts::decode(&swapped.encode()).is_err());
            }
        }

        #[test]
        fn entries_round_trip(keys in proptest::collection::vec(any::<u64>(), 0..50), clear: bool) {
            let e = encode_entry(&keys, clear);
            prop_assert_eq!(decode_entry(&e).unwrap(), (clear, keys.clone()));
            // Every truncation and every extension is refused, never a panic.
            for cut in 0..e.len() {
                prop_assert!(decode_entry(&e[..cut]).is_err());
            }
            let mut longer = e.clone();
            longer.push(0);
            prop_assert!(decode_entry(&longer).is_err());
        }

        #[test]
        fn seals_round_trip(id: u64, a: u64, b: u64) {
            let (floor, position) = (a.min(b), a.max(b));
            let s = Seal { id, position, floor };
            prop_assert_eq!(Seal::decode(&s.encode()).unwrap(), s);
            prop_assert!(Seal::decode(&s.encode()[..24]).is_err());
        }
    }

    #[test]
    fn a_seal_with_its_floor_above_its_position_is_refused() {
        let s = Seal {
            id: 1,
            position: 3,
            floor: 4,
        };
        assert!(Seal::decode(&s.encode()).is_err());
    }

    #[test]
    fn a_tail_names_each_key_once_and_a_clear_forgets_what_came_before() {
        let store = Store::open_in_memory(&crate::config::StorageConfig::default()).unwrap();
        let put = |pos: u64, keys: &[u64], clear: bool| {
            let mut b = store.batch();
            b.put(
                super::super::keys::record_key(LOG_PREFIX, pos),
                encode_entry(keys, clear),
            );
            store.write(b).unwrap();
        };
        put(0, &[5, 1], false);
        put(1, &[1, 9], false);
        let t = read_tail(&store, 0, 2).unwrap();
        assert_eq!(t.keys.into_iter().collect::<Vec<_>>(), vec![1, 5, 9]);
        assert!(!t.cleared);
        put(2, &[], true);
        put(3, &[7], false);
        let t = read_tail(&store, 1, 4).unwrap();
        assert!(t.cleared);
        assert_eq!(t.keys.into_iter().collect::<Vec<_>>(), vec![7]);
        assert_eq!(read_tail(&store, 4, 4).unwrap(), Tail::default());
        // A gap, or entries missing at the end, is damage.
        assert!(matches!(
            read_tail(&store, 0, 6),
            Err(Error::Corruption { .. })
        ));
        put(5, &[8], false);
        assert!(matches!(
            read_tail(&store, 3, 6),
            Err(Error::Corruption { .. })
        ));
    }
}
