//! The codes an HNSW index walks its graph on (`DatabaseConfig::quantization`): every
//! choice finds the neighbours brute force finds, returns exact distances on awkward
//! data (a common offset, duplicates, a constant column, a dimension that is not a
//! multiple of the 4-bit blocks), keeps its codes through a seal and an open, and is
//! fixed at creation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use nusterdb_core::config::{Field, Fields, Quantization};
use nusterdb_core::db::LoadSource;
use nusterdb_core::index::SearchParams;
use nusterdb_core::rng::SplitMix64;
use nusterdb_core::{Database, DatabaseConfig, DistanceMetric, Error, IndexType, Location};

fn open(path: &Path, c: Option<DatabaseConfig>) -> nusterdb_core::Result<Database> {
    Database::open(Location::Path(path.to_path_buf()), c, false)
}

/// `n` rows of `dim` around `offset`: standard normal, column 3 constant, every 50th
/// row a duplicate of the one before.
fn rows_of(rng: &mut SplitMix64, n: u64, dim: usize, offset: f32) -> BTreeMap<u64, Vec<f32>> {
    let mut rows = BTreeMap::new();
    let mut last = Vec::new();
    for i in 0..n {
        let v: Vec<f32> = if i % 50 == 49 {
            last.clone()
        } else {
            let mut v: Vec<f32> = common::gaussian(rng, dim)
                .into_iter()
                .map(|x| x + offset)
                .collect();
            v[3] = offset + 0.5;
            v
        };
        last = v.clone();
        rows.insert(i, v);
    }
    rows
}

const QUANTIZATIONS: [Quantization; 5] = [
    Quantization::Off,
    Quantization::Sq8,
    Quantization::Sq4,
    Quantization::RaBitQ,
    Quantization::Binary,
];

/// A new HNSW database at `path` (M 16, ef_construction 100) walking on `q`, holding
/// `rows` (one `bulk_add`).
fn built(
    path: &Path,
    dim: usize,
    metric: DistanceMetric,
    q: Quantization,
    rows: &BTreeMap<u64, Vec<f32>>,
) -> Database {
    let mut c = common::hnsw_config(dim, metric, 16, 100);
    c.quantization = Some(q);
    let db = open(path, Some(c)).unwrap();
    let ids: Vec<u64> = rows.keys().copied().collect();
    let flat: Vec<f32> = rows.values().flatten().copied().collect();
    db.bulk_add(&ids, &flat, None).unwrap();
    db
}

#[test]
fn every_quantization_finds_the_neighbours_with_exact_distances() {
    let mut rng = SplitMix64::new(common::seed("every_quantization", 41));
    const N: u64 = 3000;
    for metric in [
        DistanceMetric::Euclidean,
        DistanceMetric::Cosine,
        DistanceMetric::InnerProduct,
    ] {
        // 100 dims: two 4-bit blocks, the second half empty; 64 dims far from the origin;
        // 160 dims: binary codes rotated into 192 components, rabitq's into 256.
        for (dim, offset) in [(100usize, 0.0f32), (64, 100.0), (160, 0.0)] {
            let rows = rows_of(&mut rng, N, dim, offset);
            let queries: Vec<Vec<f32>> = (0..30)
                .map(|_| {
                    common::gaussian(&mut rng, dim)
                        .into_iter()
                        .map(|x| x + offset)
                        .collect()
                })
                .collect();
            let ids: Vec<u64> = rows.keys().copied().collect();
            let flat: Vec<f32> = rows.values().flatten().copied().collect();
            let mut mapped = Vec::new();
            for q in QUANTIZATIONS {
                let what = format!("{metric:?} dim {dim} offset {offset} {q:?}");
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("db");
                let mut c = common::hnsw_config(dim, metric, 16, 100);
                c.quantization = Some(q);
                let db = open(&path, Some(c)).unwrap();
                assert_eq!(db.config().quantization(), q, "{what}");
                db.bulk_add(&ids, &flat, None).unwrap();
                let r = common::recall(&db, metric, &rows, &queries, 200, &what);
                assert!(r >= 0.95, "{what}: recall@10 {r:.3}");
                let answers = |db: &Database| -> Vec<Vec<(u64, u32)>> {
                    queries
                        .iter()
                        .map(|q| {
                            let hits = db.search(q, 10, None, Some(64)).unwrap();
                            hits.into_iter().map(|(i, d)| (i, d.to_bits())).collect()
                        })
                        .collect()
                };
                let before = answers(&db);
                db.seal().unwrap();
                drop(db);

                // The open maps the seal's rows and codes and answers as the writer did.
                let db = open(&path, None).unwrap();
                assert!(
                    matches!(
                        db.load_source().unwrap(),
                        LoadSource::Sealed { replayed: 0 }
                    ),
                    "{what}: {:?}",
                    db.load_source()
                );
                assert_eq!(db.config().quantization(), q, "{what}: stored");
                assert_eq!(answers(&db), before, "{what}: answers after the open");
                let stats = db.stats().unwrap();
                let at_least = N as usize * (4 * dim + q.code_bytes(dim));
                assert!(
                    stats.mapped_bytes as usize >= at_least,
                    "{what}: {} mapped, rows and codes are {at_least}",
                    stats.mapped_bytes
                );
                mapped.push(stats.mapped_bytes);
                drop(db);
            }
            // No codes, then 8 bits, 4, 1: the mapped files shrink accordingly.
            assert!(
                mapped[0] < mapped[1] && mapped[2] < mapped[1] && mapped[3] < mapped[2],
                "{mapped:?}"
            );
        }
    }
}

/// `quantized: Some(false)` walks on the full rows for one search: on an index with
/// codes it finds the neighbours with exact distances; on one without it answers as
/// the default does; `Some(true)` is refused where there are no codes.
#[test]
fn a_search_can_walk_on_the_rows_instead_of_the_codes() {
    let mut rng = SplitMix64::new(common::seed("walk_on_rows", 43));
    let dim = 48;
    let rows = rows_of(&mut rng, 2000, dim, 10.0);
    let queries: Vec<Vec<f32>> = (0..30)
        .map(|_| {
            common::gaussian(&mut rng, dim)
                .into_iter()
                .map(|x| x + 10.0)
                .collect()
        })
        .collect();
    let ids: Vec<u64> = rows.keys().copied().collect();
    let flat: Vec<f32> = rows.values().flatten().copied().collect();
    let rows_walk = SearchParams {
        ef_search: Some(64),
        quantized: Some(false),
        ..SearchParams::default()
    };
    let codes_walk = SearchParams {
        ef_search: Some(64),
        quantized: Some(true),
        ..SearchParams::default()
    };
    for q in QUANTIZATIONS {
        for metric in [DistanceMetric::Euclidean, DistanceMetric::Cosine] {
            let what = format!("{metric:?} {q:?}");
            let dir = tempfile::tempdir().unwrap();
            let mut c = common::hnsw_config(dim, metric, 16, 100);
            c.quantization = Some(q);
            let db = open(&dir.path().join("db"), Some(c)).unwrap();
            db.bulk_add(&ids, &flat, None).unwrap();
            let r = common::recall_with(&db, metric, &rows, &queries, rows_walk, &what);
            assert!(r >= 0.95, "{what}: recall@10 {r:.3} walking on the rows");
            if q == Quantization::Off {
                for query in &queries {
                    assert_eq!(
                        db.search(query, 10, None, rows_walk).unwrap(),
                        db.search(query, 10, None, Some(64)).unwrap(),
                        "{what}: no codes, so the same walk"
                    );
                }
                let e = db.search(&queries[0], 10, None, codes_walk).unwrap_err();
                assert!(matches!(e, Error::InvalidArgument(_)), "{what}: {e}");
                let e = db
                    .batch_search(&flat[..dim], 10, None, codes_walk)
                    .unwrap_err();
                assert!(matches!(e, Error::InvalidArgument(_)), "{what}: {e}");
            } else {
                let r = common::recall_with(&db, metric, &rows, &queries, codes_walk, &what);
                assert!(r >= 0.9, "{what}: recall@10 {r:.3} walking on the codes");
            }
        }
    }
    // A flat index has no codes either.
    let dir = tempfile::tempdir().unwrap();
    let db = open(
        &dir.path().join("db"),
        Some(DatabaseConfig::new(dim).unwrap()),
    )
    .unwrap();
    db.bulk_add(&ids, &flat, None).unwrap();
    let e = db.search(&queries[0], 10, None, codes_walk).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "flat: {e}");
    assert_eq!(
        db.search(&queries[0], 10, None, rows_walk).unwrap(),
        db.search(&queries[0], 10, None, None).unwrap()
    );
}

/// 4-bit codes take `32·⌈dim/64⌉` bytes a row, 8-bit ones `dim`, RaBitQ's `P/8` (`P`
/// the dimension rounded up to a power of two, at least 64), binary's `P/8` with `P`
/// rounded up to a multiple of 64 only.
#[test]
fn code_sizes_are_as_documented() {
    for (dim, sq8, sq4, rabitq, binary) in [
        (1, 1, 32, 8, 8),
        (64, 64, 32, 8, 8),
        (100, 100, 64, 16, 16),
        (200, 200, 128, 32, 32),
        (384, 384, 192, 64, 48),
        (768, 768, 384, 128, 96),
        (1024, 1024, 512, 128, 128),
        (1536, 1536, 768, 256, 192),
        (3072, 3072, 1536, 512, 384),
    ] {
        assert_eq!(Quantization::Sq8.code_bytes(dim), sq8);
        assert_eq!(Quantization::Sq4.code_bytes(dim), sq4);
        assert_eq!(Quantization::RaBitQ.code_bytes(dim), rabitq);
        assert_eq!(Quantization::Binary.code_bytes(dim), binary);
        assert_eq!(Quantization::Off.code_bytes(dim), 0);
    }
}

/// The quantization is fixed at creation: a reopen stating another one is refused
/// (and one stating the stored one opens); codes asked for where nothing would walk on
/// them are refused, as is `vectors="disk"` without codes.
#[test]
fn the_quantization_is_fixed_and_refused_where_it_means_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut c = common::hnsw_config(8, DistanceMetric::Euclidean, 16, 64);
    c.quantization = Some(Quantization::Sq4);
    let db = open(&path, Some(c)).unwrap();
    db.bulk_add(&[1, 2], &[0.5f32; 16], None).unwrap();
    drop(db);
    let stating = |q: Quantization| {
        let mut c = DatabaseConfig::new(8).unwrap();
        c.quantization = Some(q);
        c.stating(Fields::of([Field::Quantization]))
    };
    match open(&path, Some(stating(Quantization::Sq8))) {
        Err(Error::ConfigMismatch {
            field,
            stored,
            given,
        }) => assert_eq!((field, &*stored, &*given), ("quantization", "sq4", "sq8")),
        other => panic!("{:?}", other.map(|_| ())),
    }
    let db = open(&path, Some(stating(Quantization::Sq4))).unwrap();
    assert_eq!(db.config().quantization(), Quantization::Sq4);
    assert_eq!(db.count().unwrap(), 2);
    drop(db);

    for (index, metric, q) in [
        (
            IndexType::Flat,
            DistanceMetric::Euclidean,
            Quantization::Sq8,
        ),
        (
            IndexType::Flat,
            DistanceMetric::Euclidean,
            Quantization::Sq4,
        ),
        (
            IndexType::Hnsw,
            DistanceMetric::Manhattan,
            Quantization::Sq4,
        ),
        (IndexType::Hnsw, DistanceMetric::Hamming, Quantization::Sq8),
    ] {
        let mut c = DatabaseConfig::new(8).unwrap();
        c.index_type = index;
        c.distance_metric = metric;
        c.quantization = Some(q);
        assert!(
            matches!(c.validate(), Err(Error::InvalidArgument(_))),
            "{index:?} {metric:?} {q:?}"
        );
        c.quantization = Some(Quantization::Off);
        assert!(c.validate().is_ok(), "{index:?} {metric:?} none");
    }
    // The defaults: sq4 where codes are possible, none elsewhere.
    let mut c = DatabaseConfig::new(8).unwrap();
    assert_eq!(c.quantization(), Quantization::Off);
    c.index_type = IndexType::Hnsw;
    assert_eq!(c.quantization(), Quantization::Sq4);
    c.distance_metric = DistanceMetric::Chebyshev;
    assert_eq!(c.quantization(), Quantization::Off);

    let mut c = common::hnsw_config(8, DistanceMetric::Euclidean, 16, 64);
    c.quantization = Some(Quantization::Off);
    c.vectors = nusterdb_core::config::VectorStorage::Disk;
    assert!(matches!(c.validate(), Err(Error::InvalidArgument(_))));
}

/// Awkward shapes with every quantization: 1 and 3 dimensions (one 4-bit block, mostly
/// padding), tiny and huge scales, zero vectors among the rows (cosine scores them as
/// orthogonal to everything), all rows equal. Recall@10 ≥ 0.95 against brute force
/// (ties at the 10th distance count as found) and exact distances, before and after a
/// seal and an open.
#[test]
fn awkward_shapes_and_scales_keep_recall() {
    let mut rng = SplitMix64::new(common::seed("awkward_shapes", 43));
    const N: u64 = 1500;
    for (metric, dim, scale, zeros, equal) in [
        (DistanceMetric::Euclidean, 1usize, 1.0f32, false, false),
        (DistanceMetric::Euclidean, 3, 1e-6, false, false),
        (DistanceMetric::InnerProduct, 3, 1e6, false, false),
        (DistanceMetric::Cosine, 7, 1.0, true, false),
        (DistanceMetric::Euclidean, 130, 1e4, true, false),
        (DistanceMetric::Euclidean, 16, 1.0, false, true),
    ] {
        let mut rows = BTreeMap::new();
        let same = common::gaussian(&mut rng, dim);
        for i in 0..N {
            let v: Vec<f32> = if zeros && i % 37 == 0 {
                vec![0.0; dim]
            } else if equal {
                same.clone()
            } else {
                common::gaussian(&mut rng, dim)
                    .into_iter()
                    .map(|x| x * scale)
                    .collect()
            };
            rows.insert(i, v);
        }
        let queries: Vec<Vec<f32>> = (0..20)
            .map(|_| {
                common::gaussian(&mut rng, dim)
                    .into_iter()
                    .map(|x| x * scale)
                    .collect()
            })
            .collect();
        for q in QUANTIZATIONS {
            let what =
                format!("{metric:?} dim {dim} scale {scale} zeros {zeros} equal {equal} {q:?}");
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("db");
            let db = built(&path, dim, metric, q, &rows);
            let r = common::recall(&db, metric, &rows, &queries, 200, &what);
            assert!(r >= 0.95, "{what}: recall@10 {r:.3}");
            db.seal().unwrap();
            drop(db);
            let db = open(&path, None).unwrap();
            let r = common::recall(&db, metric, &rows, &queries, 200, &what);
            assert!(r >= 0.95, "{what}: recall@10 {r:.3} after the open");
        }
    }
}

/// Filtered search keeps recall@10 ≥ 0.95 against brute force over the allowed rows at
/// every selectivity from 0.1 % to 100 %, with every quantization (the walk on codes
/// under a filter, the scan of a small allowed set, and what lies between).
#[test]
fn filtered_search_keeps_recall_at_every_selectivity() {
    use nusterdb_core::filter::{Filter, FilterInput};
    use nusterdb_core::{Metadata, Value};
    let mut rng = SplitMix64::new(common::seed("filtered_selectivity", 47));
    const N: u64 = 20_000;
    let dim = 32;
    let rows = rows_of(&mut rng, N, dim, 5.0);
    let ids: Vec<u64> = rows.keys().copied().collect();
    let flat: Vec<f32> = rows.values().flatten().copied().collect();
    // Field "r" holds id % 1000: `r < t` allows t‰ of the rows.
    let metadata: Vec<Option<Metadata>> = ids
        .iter()
        .map(|id| {
            Some(
                Metadata::with_parts([("r".to_owned(), Value::Int((id % 1000) as i64))], [])
                    .unwrap(),
            )
        })
        .collect();
    let queries: Vec<Vec<f32>> = (0..20)
        .map(|_| {
            common::gaussian(&mut rng, dim)
                .into_iter()
                .map(|x| x + 5.0)
                .collect()
        })
        .collect();
    for q in QUANTIZATIONS {
        let dir = tempfile::tempdir().unwrap();
        let mut c = common::hnsw_config(dim, DistanceMetric::Euclidean, 16, 100);
        c.quantization = Some(q);
        let db = open(&dir.path().join("db"), Some(c)).unwrap();
        let id_list: Vec<nusterdb_core::Id> =
            ids.iter().map(|&i| nusterdb_core::Id::Int(i)).collect();
        db.put(
            nusterdb_core::db::PutMode::Add,
            &id_list,
            &flat,
            metadata.clone(),
            Vec::new(),
        )
        .unwrap();
        for per_mille in [1i64, 10, 100, 500, 1000] {
            let what = format!("{q:?}, {per_mille}‰ allowed");
            let filter = Filter::parse(&FilterInput::Map(vec![(
                "r".into(),
                FilterInput::Map(vec![("$lt".into(), FilterInput::Int(per_mille))]),
            )]))
            .unwrap();
            let allowed: BTreeMap<u64, Vec<f32>> = rows
                .iter()
                .filter(|(id, _)| ((**id % 1000) as i64) < per_mille)
                .map(|(id, v)| (*id, v.clone()))
                .collect();
            let (mut found, mut asked) = (0usize, 0usize);
            for query in &queries {
                let got = db.search(query, 10, Some(&filter), Some(128)).unwrap();
                for (id, d) in &got {
                    let v = allowed
                        .get(id)
                        .unwrap_or_else(|| panic!("{what}: {id} not allowed"));
                    assert_eq!(
                        d.to_bits(),
                        DistanceMetric::Euclidean
                            .distance_unchecked(query, v)
                            .to_bits()
                    );
                }
                let want = common::brute_force(DistanceMetric::Euclidean, &allowed, query, 10);
                asked += want.len();
                found += got.iter().filter(|(id, _)| want.contains(id)).count();
            }
            let r = found as f64 / asked as f64;
            eprintln!("{what}: recall@10 {r:.3}");
            assert!(r >= 0.95, "{what}: recall@10 {r:.3}");
        }
    }
}

/// Rows in far-apart blobs (random centres in 128-d, each row a centre plus noise a
/// third of the centres' spread): the distances inside a blob, which decide the
/// neighbours, are small beside a row's distance from the rows' mean. 1-bit codes
/// taken against that one mean estimated them too roughly to steer by (recall@10 at
/// ef 64 near 0.8); against the nearest of the trained centroids they keep recall at
/// every metric, before and after a seal and an open (the centroids are saved with the
/// codes).
#[test]
fn far_apart_clusters_keep_recall() {
    let mut rng = SplitMix64::new(common::seed("far_apart_clusters", 47));
    let (dim, blobs, n) = (128usize, 64usize, 8000u64);
    let centres: Vec<Vec<f32>> = (0..blobs)
        .map(|_| common::gaussian(&mut rng, dim))
        .collect();
    let draw = |rng: &mut SplitMix64| -> Vec<f32> {
        let c = &centres[(rng.next_u64() % blobs as u64) as usize];
        c.iter()
            .map(|&x| x + 0.35 * rng.next_gaussian() as f32)
            .collect()
    };
    let rows: BTreeMap<u64, Vec<f32>> = (0..n).map(|i| (i, draw(&mut rng))).collect();
    let queries: Vec<Vec<f32>> = (0..40).map(|_| draw(&mut rng)).collect();
    for metric in [
        DistanceMetric::Euclidean,
        DistanceMetric::Cosine,
        DistanceMetric::InnerProduct,
    ] {
        for q in QUANTIZATIONS {
            let what = format!("{metric:?} {q:?}");
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("db");
            let db = built(&path, dim, metric, q, &rows);
            let r = common::recall(&db, metric, &rows, &queries, 64, &what);
            assert!(r >= 0.95, "{what}: recall@10 {r:.3}");
            db.seal().unwrap();
            drop(db);
            let db = open(&path, None).unwrap();
            let again = common::recall(&db, metric, &rows, &queries, 64, &what);
            assert_eq!(again, r, "{what}: recall after the open");
        }
    }
}

/// The centroids are saved in the codes file under its checksum: one flipped byte among
/// them and the seal is refused (every record read instead), the answers still right.
#[test]
fn damaged_centroids_are_refused() {
    let mut rng = SplitMix64::new(common::seed("damaged_centroids", 53));
    let (dim, n) = (32usize, 1000u64);
    let rows: BTreeMap<u64, Vec<f32>> = (0..n)
        .map(|i| (i, common::gaussian(&mut rng, dim)))
        .collect();
    let queries: Vec<Vec<f32>> = (0..20).map(|_| common::gaussian(&mut rng, dim)).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = built(
        &path,
        dim,
        DistanceMetric::Euclidean,
        Quantization::RaBitQ,
        &rows,
    );
    db.seal().unwrap();
    drop(db);
    let codes: Vec<_> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "codes"))
        .collect();
    assert_eq!(codes.len(), 1, "{codes:?}");
    let mut b = std::fs::read(&codes[0]).unwrap();
    // Header 64 bytes, the centre (dim floats), then ⌊√1000⌋ = 31 centroids.
    assert_eq!(u32::from_le_bytes(b[52..56].try_into().unwrap()), 31);
    b[64 + 4 * dim + 4 * dim * 7 + 2] ^= 0x08;
    std::fs::write(&codes[0], b).unwrap();
    let db = open(&path, None).unwrap();
    match db.load_source().unwrap() {
        LoadSource::Records { refused: Some(r) } => assert!(r.contains("checksum"), "{r}"),
        other => panic!("{other:?}"),
    }
    let r = common::recall(
        &db,
        DistanceMetric::Euclidean,
        &rows,
        &queries,
        100,
        "reread",
    );
    assert!(r >= 0.95, "recall@10 {r:.3}");
}
