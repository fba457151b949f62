//! T4: every decoder of stored bytes (record codec, snapshot manifest) on random and
//! damaged input never panics, and whatever it accepts re-encodes to the same value;
//! encodings of random values decode back exactly. The graph-file decoder has its own
//! property test in `graph_persistence.rs`.
//!
//! Cases per property: `NUSTERDB_DECODER_CASES` (default 20 000).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use nusterdb_core::config::{Compression, IndexType};
use nusterdb_core::snapshot::{decode_manifest, encode_manifest};
use nusterdb_core::storage::codec;
use nusterdb_core::{DatabaseConfig, DistanceMetric, HnswConfig, Metadata, Value};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("NUSTERDB_DECODER_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000)
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-z0-9 ]{0,12}".prop_map(Value::Str),
        any::<i64>().prop_map(Value::Int),
        (-1e12f64..1e12).prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
    ]
}

fn metadata() -> impl Strategy<Value = Metadata> {
    (
        prop::collection::btree_map("[a-z][a-z0-9_]{0,7}", value(), 0..6),
        prop::collection::btree_set("[a-z][a-z0-9-]{0,7}", 0..4),
        any::<u32>(),
        any::<u32>(),
        1u64..1000,
    )
        .prop_map(|(fields, tags, c, u, v)| {
            Metadata::from_stored(fields, tags, u64::from(c), u64::from(u), v)
        })
}

fn config() -> impl Strategy<Value = DatabaseConfig> {
    (
        1usize..4096,
        any::<bool>(),
        0usize..8,
        2usize..64,
        0usize..4,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(dim, hnsw, metric, m, comp, sync, heuristic)| {
            let mut c = DatabaseConfig::new(dim).unwrap();
            c.index_type = if hnsw {
                IndexType::Hnsw
            } else {
                IndexType::Flat
            };
            c.distance_metric = DistanceMetric::ALL[metric];
            c.hnsw = HnswConfig {
                max_nb_connection: m,
                ef_construction: m * 4,
                use_heuristic: heuristic,
                ..HnswConfig::default()
            };
            c.storage.compression = [
                Compression::None,
                Compression::Snappy,
                Compression::Lz4,
                Compression::Zstd,
            ][comp];
            c.storage.sync_writes = sync;
            c
        })
}

/// Damage to a valid encoding: byte flips, then an optional truncation or extension.
fn damage(
    mut b: Vec<u8>,
    flips: &[(prop::sample::Index, u8)],
    cut: Option<prop::sample::Index>,
    extra: &[u8],
) -> Vec<u8> {
    if !b.is_empty() {
        for (at, x) in flips {
            let i = at.index(b.len());
            b[i] ^= x;
        }
    }
    if let Some(c) = cut {
        b.truncate(c.index(b.len() + 1));
    }
    b.extend_from_slice(extra);
    b
}

/// Decodes `b` with every decoder; accepted values must survive a re-encoding.
fn decode_everything(b: &[u8]) {
    let _ = codec::decode_format(b);
    if let Ok(m) = codec::decode_metadata(b) {
        assert_eq!(
            codec::decode_metadata(&codec::encode_metadata(&m)).unwrap(),
            m
        );
    }
    if let Ok(t) = codec::decode_text(b, codec::MAX_DOCUMENT_BYTES) {
        assert_eq!(codec::encode_text(&t), b);
    }
    if let Ok(c) = codec::decode_config(b) {
        assert_eq!(codec::decode_config(&codec::encode_config(&c)).unwrap(), c);
    }
    for dim in [1, 3, 4, 16] {
        if let Ok(v) = codec::decode_vector(b, dim) {
            assert_eq!(v.len(), dim);
            assert!(
                v.iter().all(|x| x.is_finite()),
                "a non-finite vector was accepted"
            );
        }
    }
    if let Ok(m) = decode_manifest(b) {
        assert_eq!(decode_manifest(&encode_manifest(&m)).unwrap(), m);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
        decode_everything(&b);
    }

    #[test]
    fn metadata_round_trips_and_survives_damage(
        m in metadata(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
        extra in prop::collection::vec(any::<u8>(), 0..3),
    ) {
        let enc = codec::encode_metadata(&m);
        prop_assert_eq!(codec::decode_metadata(&enc).unwrap(), m.clone());
        decode_everything(&damage(enc, &flips, cut, &extra));
        let man = encode_manifest(&m);
        prop_assert_eq!(decode_manifest(&man).unwrap(), m);
        decode_everything(&damage(man, &flips, cut, &extra));
    }

    #[test]
    fn config_round_trips_and_survives_damage(
        c in config(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
        extra in prop::collection::vec(any::<u8>(), 0..3),
    ) {
        let enc = codec::encode_config(&c);
        prop_assert_eq!(codec::decode_config(&enc).unwrap(), c);
        decode_everything(&damage(enc, &flips, cut, &extra));
    }

    #[test]
    fn vectors_round_trip_and_survive_damage(
        v in prop::collection::vec(-1e30f32..1e30, 1..40),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let enc = codec::encode_vector(&v);
        prop_assert_eq!(codec::decode_vector(&enc, v.len()).unwrap(), v.clone());
        let bad = damage(enc, &flips, cut, &[]);
        if let Ok(w) = codec::decode_vector(&bad, v.len()) {
            prop_assert!(w.iter().all(|x| x.is_finite()));
        }
        decode_everything(&bad);
    }
}

#[test]
fn format_marker_round_trips() {
    for v in [codec::FORMAT_V1, codec::FORMAT_VERSION] {
        assert_eq!(codec::decode_format(&codec::encode_format(v)).unwrap(), v);
    }
}
