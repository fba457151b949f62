//! The key layout inside RocksDB. One keyspace, split by a one-byte prefix:
//!
//! | key | value |
//! |---|---|
//! | `0x00` `format` | [`codec::encode_format`](super::codec::encode_format): magic + format version |
//! | `0x00` `config` | the database configuration |
//! | `v` + id (u64 big-endian) | the vector (record codec) |
//! | `m` + id (u64 big-endian) | its metadata (record codec) |
//! | `d` + id (u64 big-endian) | its document, if it has one (text record; format 2) |
//! | `n` + key (u64 big-endian) | the string id stored under this key (text record; string-id databases) |
//! | `w` + position (u64 big-endian) | a change-log entry: the record keys one write batch touched (format 3, [`super::changelog`]) |
//! | `0x00` `log.next` | the position the next change-log entry takes (u64 little-endian) |
//! | `0x00` `seal` | the sealed state the segment files hold ([`super::changelog::Seal`]) |
//! | `0x00` `calibration` | the recall curves and asked queries (`db::calibration::persist`) |
//!
//! Ids are big-endian so RocksDB's byte order is numeric order: a prefix scan lists
//! ids sorted, and the records of one id are written in one batch. A string-id
//! database keys every record by the u64 key its `n` record names.

/// The format marker: present in every NusterDB database, absent in foreign RocksDB dirs.
pub const FORMAT_KEY: &[u8] = b"\x00format";
/// The stored configuration.
pub const CONFIG_KEY: &[u8] = b"\x00config";
/// Prefix of vector records.
pub const VECTOR_PREFIX: u8 = b'v';
/// Prefix of metadata records.
pub const METADATA_PREFIX: u8 = b'm';
/// Prefix of document records.
pub const DOCUMENT_PREFIX: u8 = b'd';
/// Prefix of string-id records.
pub const NAME_PREFIX: u8 = b'n';
/// Prefix of change-log entries.
pub const LOG_PREFIX: u8 = b'w';
/// The position of the next change-log entry.
pub const LOG_NEXT_KEY: &[u8] = b"\x00log.next";
/// The seal record: which segment files hold the sealed state, and up to which log
/// position.
pub const SEAL_KEY: &[u8] = b"\x00seal";
/// The recall calibration (a cache: `db::calibration::persist`).
pub const CALIBRATION_KEY: &[u8] = b"\x00calibration";
/// The parts of the seal's rows and codes (`storage::changelog::SealParts`).
pub const SEAL_PARTS_KEY: &[u8] = b"\x00seal.parts";

/// The key of a record with `prefix` for `id`.
pub fn record_key(prefix: u8, id: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix;
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

/// The key of `id`'s vector.
pub fn vector_key(id: u64) -> [u8; 9] {
    record_key(VECTOR_PREFIX, id)
}

/// The key of `id`'s metadata.
pub fn metadata_key(id: u64) -> [u8; 9] {
    record_key(METADATA_PREFIX, id)
}

/// The key of `id`'s document.
pub fn document_key(id: u64) -> [u8; 9] {
    record_key(DOCUMENT_PREFIX, id)
}

/// The key of the string id stored under `key`.
pub fn name_key(key: u64) -> [u8; 9] {
    record_key(NAME_PREFIX, key)
}

/// The id of a record key with `prefix`, or `None` if the key is not one.
pub fn parse_record_key(prefix: u8, key: &[u8]) -> Option<u64> {
    if key.len() != 9 || key[0] != prefix {
        return None;
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[1..]);
    Some(u64::from_be_bytes(b))
}

/// A key for messages: `v:42` for a record key, the name for a fixed key.
pub fn describe(key: &[u8]) -> String {
    match key.first() {
        Some(&p) if p != 0 && key.len() == 9 => match parse_record_key(p, key) {
            Some(id) => format!("{}:{id}", char::from(p)),
            None => format!("{key:?}"),
        },
        _ => String::from_utf8_lossy(key.get(1..).unwrap_or_default()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_numerically() {
        for id in [0u64, 1, 255, 256, u64::from(u32::MAX), (1 << 63) - 1] {
            assert_eq!(parse_record_key(VECTOR_PREFIX, &vector_key(id)), Some(id));
            assert_eq!(parse_record_key(VECTOR_PREFIX, &metadata_key(id)), None);
        }
        assert!(vector_key(255) < vector_key(256));
        assert!(parse_record_key(VECTOR_PREFIX, b"v123").is_none());
    }
}
