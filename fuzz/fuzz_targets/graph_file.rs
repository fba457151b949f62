//! The graph-file reader on arbitrary bytes, with the CRC fixed up half of the time so
//! the structural checks are reached: an error or an index that can be searched.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nusterdb_core::index::hnsw::HnswIndex;
use nusterdb_core::index::{SearchParams, VectorIndex};
use nusterdb_core::{DistanceMetric, HnswConfig};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut b = rest.to_vec();
    if mode & 1 == 1 && b.len() >= 4 {
        let n = b.len() - 4;
        let crc = crc32(&b[..n]);
        b[n..].copy_from_slice(&crc.to_le_bytes());
    }
    let cfg = HnswConfig {
        max_nb_connection: 4,
        ef_construction: 16,
        ..HnswConfig::default()
    };
    if let Ok(img) = HnswIndex::read_graph(&b, 4, DistanceMetric::Euclidean, &cfg) {
        let _ = img
            .index
            .search(&[0.5, -0.5, 1.0, 0.0], 3, None, &SearchParams::default());
    }
});

/// CRC-32 (IEEE), bitwise: the fuzz crate needs no dependency for it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
