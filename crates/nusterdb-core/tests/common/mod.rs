//! Helpers shared by the integration tests (each test crate uses some of them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The graph file of the seal of the database at `dir` (there must be exactly one).
pub fn graph_file(dir: &Path) -> PathBuf {
    let graphs: Vec<PathBuf> = nusterdb_core::db::segment_files_in(dir)
        .unwrap()
        .into_iter()
        .filter(|f| f.extension().is_some_and(|x| x == "graph"))
        .collect();
    assert_eq!(graphs.len(), 1, "{graphs:?}");
    graphs[0].clone()
}

/// The seed of a randomised test: `NUSTERDB_TEST_SEED` when set, else `default`; printed
/// with the test's name so a failing run can be replayed.
pub fn seed(test: &str, default: u64) -> u64 {
    let seed = std::env::var("NUSTERDB_TEST_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default);
    eprintln!("{test}: seed {seed} (replay with NUSTERDB_TEST_SEED={seed})");
    seed
}

/// An HNSW config of `dim` under `metric` with M = `m` and `ef_construction`.
pub fn hnsw_config(
    dim: usize,
    metric: nusterdb_core::DistanceMetric,
    m: usize,
    ef_construction: usize,
) -> nusterdb_core::DatabaseConfig {
    let mut c = nusterdb_core::DatabaseConfig::new(dim).unwrap();
    c.index_type = nusterdb_core::IndexType::Hnsw;
    c.distance_metric = metric;
    c.hnsw = nusterdb_core::HnswConfig {
        max_nb_connection: m,
        ef_construction,
        ..nusterdb_core::HnswConfig::default()
    };
    c
}

/// A row of `dim` standard normal floats.
pub fn gaussian(rng: &mut nusterdb_core::rng::SplitMix64, dim: usize) -> Vec<f32> {
    (0..dim).map(|_| rng.next_gaussian() as f32).collect()
}

/// The ids of the `k` nearest of `rows` to `q` under `metric`, by brute force (ties by id).
pub fn brute_force(
    metric: nusterdb_core::DistanceMetric,
    rows: &std::collections::BTreeMap<u64, Vec<f32>>,
    q: &[f32],
    k: usize,
) -> Vec<u64> {
    let mut all: Vec<(f32, u64)> = rows
        .iter()
        .map(|(&id, v)| (metric.distance_unchecked(q, v), id))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|e| e.1).collect()
}

/// Recall@10 at `ef` against brute force over `rows`; every hit's distance is the
/// metric on its stored row, bit for bit. Ties at the 10th distance count as found.
pub fn recall(
    db: &nusterdb_core::Database,
    metric: nusterdb_core::DistanceMetric,
    rows: &std::collections::BTreeMap<u64, Vec<f32>>,
    queries: &[Vec<f32>],
    ef: usize,
    what: &str,
) -> f64 {
    let params = nusterdb_core::index::SearchParams::ef(Some(ef));
    recall_with(db, metric, rows, queries, params, what)
}

/// [`recall`] with every search parameter given.
#[allow(dead_code)] // not every test binary uses it
pub fn recall_with(
    db: &nusterdb_core::Database,
    metric: nusterdb_core::DistanceMetric,
    rows: &std::collections::BTreeMap<u64, Vec<f32>>,
    queries: &[Vec<f32>],
    params: nusterdb_core::index::SearchParams,
    what: &str,
) -> f64 {
    let (mut hits, mut asked) = (0usize, 0usize);
    for q in queries {
        let got = db.search(q, 10, None, params).unwrap();
        for (id, d) in &got {
            let v = rows
                .get(id)
                .unwrap_or_else(|| panic!("{what}: {id} unknown"));
            assert_eq!(
                d.to_bits(),
                metric.distance_unchecked(q, v).to_bits(),
                "{what}: {id}"
            );
        }
        let want = brute_force(metric, rows, q, 10);
        let tenth = want
            .last()
            .map(|id| metric.distance_unchecked(q, &rows[id]))
            .unwrap_or(f32::INFINITY);
        asked += want.len();
        hits += got
            .iter()
            .filter(|(id, d)| want.contains(id) || *d <= tenth)
            .count();
    }
    hits as f64 / asked as f64
}
