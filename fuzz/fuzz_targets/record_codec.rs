//! Every record decoder on arbitrary bytes: an error or a value, never a panic; a
//! decoded value re-encodes to bytes that decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nusterdb_core::snapshot::{decode_manifest, encode_manifest};
use nusterdb_core::storage::codec;

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode_format(data);
    if let Ok(m) = codec::decode_metadata(data) {
        let again = codec::decode_metadata(&codec::encode_metadata(&m));
        assert!(again.is_ok_and(|a| a == m));
    }
    if let Ok(c) = codec::decode_config(data) {
        let again = codec::decode_config(&codec::encode_config(&c));
        assert!(again.is_ok_and(|a| a == c));
    }
    if let Some((&d, rest)) = data.split_first() {
        let _ = codec::decode_vector(rest, usize::from(d));
    }
    if let Ok(m) = decode_manifest(data) {
        assert!(decode_manifest(&encode_manifest(&m)).is_ok_and(|a| a == m));
    }
});
