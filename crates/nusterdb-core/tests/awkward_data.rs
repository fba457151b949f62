//! Awkward but valid data against independent references: rows far from the origin
//! (a common offset), constant columns, tiny and huge scales up to the accepted norm
//! bounds, duplicates. The HNSW walk on 8-bit codes must find what the full-precision
//! walk finds; exact search must return the true nearest rows, computed here in f64.
//!
//! Random data is seeded: `NUSTERDB_TEST_SEED=<u64>` replays a run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use nusterdb_core::config::Quantization;
use nusterdb_core::index::hnsw::HnswIndex;
use nusterdb_core::index::{FlatIndex, IvfIndex, SearchParams, VectorIndex};
use nusterdb_core::rng::SplitMix64;
use nusterdb_core::vector::{check_magnitude, MAX_NORM, MIN_NORM};
use nusterdb_core::{DistanceMetric, HnswConfig};
use roaring::RoaringBitmap;

const K: usize = 10;

fn seed(test: &str) -> u64 {
    common::seed(test, 0x4157_4b44_0000_0001)
}

/// `n` rows of `dim` in 40 clusters spread `spread` around `offset` (every component).
fn offset_clusters(
    rng: &mut SplitMix64,
    n: usize,
    dim: usize,
    offset: f32,
    spread: f32,
) -> Vec<f32> {
    let centres: Vec<f32> = (0..40 * dim)
        .map(|_| rng.next_gaussian() as f32 * spread)
        .collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = (rng.next_u64() % 40) as usize;
        for t in 0..dim {
            let x = centres[c * dim + t] + 0.5 * spread * rng.next_gaussian() as f32;
            out.push(offset + x);
        }
    }
    out
}

/// The exact distance in f64 (the reference).
fn dist64(metric: DistanceMetric, a: &[f32], b: &[f32]) -> f64 {
    let it = a.iter().zip(b).map(|(&x, &y)| (f64::from(x), f64::from(y)));
    match metric {
        DistanceMetric::Euclidean => it.map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt(),
        DistanceMetric::InnerProduct => -it.map(|(x, y)| x * y).sum::<f64>(),
        // Half the squared chord between the unit vectors (= 1 − cos), which keeps its
        // precision for nearly parallel rows where 1 − a·b/(‖a‖‖b‖) would not.
        DistanceMetric::Cosine => {
            let norm = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
            let (na, nb) = (norm(a), norm(b));
            if na == 0.0 || nb == 0.0 {
                1.0
            } else {
                it.map(|(x, y)| (x / na - y / nb).powi(2)).sum::<f64>() / 2.0
            }
        }
        _ => unreachable!("not used here"),
    }
}

/// The true `k` nearest rows of `q` (f64), as (distance, row).
fn truth(metric: DistanceMetric, data: &[f32], dim: usize, q: &[f32], k: usize) -> Vec<(f64, u32)> {
    let mut all: Vec<(f64, u32)> = data
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, x)| (dist64(metric, q, x), i as u32))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.truncate(k);
    all
}

/// Recall@k of `got` against the truth: a hit is a returned row whose exact distance
/// is within the true k-th distance (ties are not misses).
fn recall(metric: DistanceMetric, data: &[f32], dim: usize, q: &[f32], got: &[(u32, f32)]) -> f64 {
    let t = truth(metric, data, dim, q, K);
    let kth = t.last().map_or(f64::INFINITY, |x| x.0);
    let tol = 1e-6 * kth.abs().max(1e-30);
    let hits = got
        .iter()
        .filter(|(s, _)| {
            let x = &data[*s as usize * dim..(*s as usize + 1) * dim];
            dist64(metric, q, x) <= kth + tol
        })
        .count();
    hits as f64 / t.len().max(1) as f64
}

fn build_hnsw(metric: DistanceMetric, data: &[f32], dim: usize) -> HnswIndex {
    let cfg = HnswConfig {
        max_nb_connection: 16,
        ef_construction: 100,
        ..HnswConfig::default()
    };
    let mut h = HnswIndex::new(dim, metric, &cfg);
    let items: Vec<(u32, &[f32])> = data
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, r)| (i as u32, r))
        .collect();
    h.insert_many(&items);
    h
}

/// Mean recall@10 of the coded walk and of the full-precision walk at `ef`.
fn walks(h: &mut HnswIndex, data: &[f32], queries: &[f32], dim: usize, ef: usize) -> (f64, f64) {
    let p = SearchParams::ef(Some(ef));
    let metric = h.metric();
    let mean = |h: &HnswIndex| {
        let nq = queries.len() / dim;
        queries
            .chunks_exact(dim)
            .map(|q| recall(metric, data, dim, q, &h.search(q, K, None, &p)))
            .sum::<f64>()
            / nq as f64
    };
    h.set_quantized_search(true);
    let coded = mean(h);
    h.set_quantized_search(false);
    let full = mean(h);
    h.set_quantized_search(true);
    (coded, full)
}

/// The coded walk matches the full-precision walk (within 0.03 of recall@10) on data
/// around common offsets of 0, 100 and 10 000, for every metric with codes.
#[test]
fn coded_walk_matches_full_precision_on_offset_data() {
    let mut rng = SplitMix64::new(seed("coded_walk_matches_full_precision_on_offset_data"));
    let (n, dim, nq) = (4000, 96, 100);
    for offset in [0.0f32, 100.0, 10_000.0] {
        let all = offset_clusters(&mut rng, n + nq, dim, offset, 0.1);
        let (data, queries) = all.split_at(n * dim);
        for metric in [
            DistanceMetric::Euclidean,
            DistanceMetric::InnerProduct,
            DistanceMetric::Cosine,
        ] {
            let mut h = build_hnsw(metric, data, dim);
            let (coded, full) = walks(&mut h, data, queries, dim, 20);
            eprintln!("offset {offset} {metric:?}: coded {coded:.3} full {full:.3}");
            assert!(
                coded >= full - 0.03,
                "offset {offset} {metric:?}: coded walk recall {coded:.3} vs full {full:.3}"
            );
            if metric == DistanceMetric::Euclidean {
                assert!(
                    full >= 0.9,
                    "offset {offset}: full-precision recall {full:.3}"
                );
            }
        }
    }
}

/// A constant column far larger than the spread of the others (a sensor stuck at
/// 10⁵, say) does not blind the codes to the other columns.
#[test]
fn coded_walk_ignores_constant_columns() {
    let mut rng = SplitMix64::new(seed("coded_walk_ignores_constant_columns"));
    let (n, dim, nq) = (3000, 64, 80);
    let mut all = offset_clusters(&mut rng, n + nq, dim, 0.0, 1.0);
    for row in all.chunks_exact_mut(dim) {
        row[3] = 1e5;
        row[17] = -250.0;
    }
    let (data, queries) = all.split_at(n * dim);
    let mut h = build_hnsw(DistanceMetric::Euclidean, data, dim);
    let (coded, full) = walks(&mut h, data, queries, dim, 20);
    eprintln!("constant columns: coded {coded:.3} full {full:.3}");
    assert!(coded >= full - 0.03, "coded {coded:.3} vs full {full:.3}");
}

/// The centre follows data that drifts after the first rows: the first 100 rows near
/// the origin, the rest near 5 000.
#[test]
fn coded_walk_follows_drift() {
    let mut rng = SplitMix64::new(seed("coded_walk_follows_drift"));
    let dim = 48;
    let first = offset_clusters(&mut rng, 100, dim, 0.0, 0.1);
    let rest = offset_clusters(&mut rng, 3000 + 80, dim, 5000.0, 0.1);
    let (rest, queries) = rest.split_at(3000 * dim);
    let mut data = first.clone();
    data.extend_from_slice(rest);
    let cfg = HnswConfig {
        max_nb_connection: 16,
        ef_construction: 100,
        ..HnswConfig::default()
    };
    let mut h = HnswIndex::new(dim, DistanceMetric::Euclidean, &cfg);
    // One by one, so the centre is recomputed as the rows double.
    for (i, r) in data.chunks_exact(dim).enumerate() {
        h.insert(i as u32, r);
    }
    let (coded, full) = walks(&mut h, &data, queries, dim, 20);
    eprintln!("drift: coded {coded:.3} full {full:.3}");
    assert!(coded >= full - 0.03, "coded {coded:.3} vs full {full:.3}");
}

/// Scales from the smallest to the largest accepted norm, and duplicates: exact
/// search (single and batch) returns the true k nearest, the coded HNSW walk on a
/// small set finds them too, and no distance is NaN or infinite.
#[test]
fn exact_and_hnsw_answers_at_extreme_scales() {
    let mut rng = SplitMix64::new(seed("exact_and_hnsw_answers_at_extreme_scales"));
    let dim = 16;
    for scale in [1e-17f32, 1e-9, 1.0, 1e9, 1e16] {
        let mut data: Vec<f32> = (0..600 * dim)
            .map(|_| scale * rng.next_gaussian() as f32)
            .collect();
        // Duplicates of the first rows.
        let dup: Vec<f32> = data[..20 * dim].to_vec();
        data.extend_from_slice(&dup);
        let queries: Vec<f32> = (0..40 * dim)
            .map(|_| scale * rng.next_gaussian() as f32)
            .collect();
        for metric in [
            DistanceMetric::Euclidean,
            DistanceMetric::InnerProduct,
            DistanceMetric::Cosine,
        ] {
            let mut flat = FlatIndex::new(dim, metric, 0);
            let mut h = HnswIndex::new(dim, metric, &HnswConfig::default());
            for (i, r) in data.chunks_exact(dim).enumerate() {
                assert!(
                    check_magnitude(r).is_ok(),
                    "scale {scale}: generated row out of range"
                );
                flat.insert(i as u32, r);
                h.insert(i as u32, r);
            }
            let p = SearchParams::ef(Some(64));
            let batch = flat.batch_search(&queries, K, None, &p);
            let mut hits = [0usize; 2];
            for (qi, q) in queries.chunks_exact(dim).enumerate() {
                let t = truth(metric, &data, dim, q, K);
                let kth = t.last().unwrap().0;
                for (what, got) in [
                    ("flat", flat.search(q, K, None, &p)),
                    ("batch", batch[qi].clone()),
                    ("hnsw", h.search(q, K, None, &p)),
                ] {
                    assert_eq!(got.len(), K, "{what} {metric:?} scale {scale}");
                    for w in got.windows(2) {
                        assert!(
                            w[0].1 <= w[1].1,
                            "{what} {metric:?} scale {scale}: unsorted {got:?}"
                        );
                    }
                    for &(s, d) in &got {
                        assert!(
                            d.is_finite(),
                            "{what} {metric:?} scale {scale}: distance {d}"
                        );
                        let x = &data[s as usize * dim..(s as usize + 1) * dim];
                        let exact = dist64(metric, q, x);
                        let tol = 1e-4 * exact.abs().max(kth.abs()) + 1e-30;
                        assert!(
                            (f64::from(d) - exact).abs() <= tol,
                            "{what} {metric:?} scale {scale}: reported {d} exact {exact}"
                        );
                        if exact <= kth + tol {
                            hits[usize::from(what == "hnsw")] += 1;
                        } else {
                            assert!(
                                what == "hnsw",
                                "{what} {metric:?} scale {scale} query {qi}: row {s} at {exact} is not among the {K} nearest (k-th {kth})"
                            );
                        }
                    }
                }
            }
            // HNSW is approximate: on 620 rows at ef 64 it finds nearly all.
            let hnsw_recall = hits[1] as f64 / (40 * K) as f64;
            assert!(
                hnsw_recall >= 0.95,
                "hnsw {metric:?} scale {scale}: recall {hnsw_recall}"
            );
        }
    }
}

/// Exact batch search (the GEMM path) on rows around a large common offset: every
/// query gets the true k nearest (before centring it got mostly wrong ones).
#[test]
fn exact_batch_search_on_offset_data() {
    let mut rng = SplitMix64::new(seed("exact_batch_search_on_offset_data"));
    let (n, dim, nq) = (3000, 384, 64);
    for offset in [100.0f32, 10_000.0] {
        let all = offset_clusters(&mut rng, n + nq, dim, offset, 0.1);
        let (data, queries) = all.split_at(n * dim);
        let mut flat = FlatIndex::new(dim, DistanceMetric::Euclidean, n);
        for (i, r) in data.chunks_exact(dim).enumerate() {
            flat.insert(i as u32, r);
        }
        let p = SearchParams::ef(None);
        let batch = flat.batch_search(queries, K, None, &p);
        let mut worst: f64 = 1.0;
        for (q, got) in queries.chunks_exact(dim).zip(&batch) {
            worst = worst.min(recall(DistanceMetric::Euclidean, data, dim, q, got));
        }
        assert!(
            worst >= 0.99,
            "offset {offset}: a batch query got recall {worst}"
        );
    }
}

/// The accepted norm range: 0, and [2⁻⁶⁰, 2⁶⁰].
#[test]
fn magnitude_bounds() {
    assert!(check_magnitude(&[0.0; 4]).is_ok());
    let edge = |n: f64| [(n / 2.0) as f32; 4]; // norm n for 4 equal components
    assert!(check_magnitude(&edge(MAX_NORM * 0.999)).is_ok());
    assert!(check_magnitude(&edge(MAX_NORM * 1.001)).is_err());
    assert!(check_magnitude(&edge(MIN_NORM * 1.001)).is_ok());
    assert!(check_magnitude(&edge(MIN_NORM * 0.999)).is_err());
    assert!(check_magnitude(&[1e20; 4]).is_err());
    assert!(check_magnitude(&[f32::MAX; 2]).is_err());
    assert!(check_magnitude(&[1e-30, 0.0]).is_err());
    // A tiny component beside a normal one is fine: the norm is what counts.
    assert!(check_magnitude(&[1.0, 1e-30]).is_ok());
}

/// Rows near the origin beside a far outlier (the mean is dragged away from them): the
/// batch path's rounding band is then wider than the gaps between the near rows, and
/// those queries must come back exactly as single searches answer them, every metric
/// with a matrix path.
#[test]
fn exact_batch_search_with_a_far_outlier() {
    let mut rng = SplitMix64::new(seed("exact_batch_search_with_a_far_outlier"));
    let dim = 6;
    for metric in [
        DistanceMetric::Euclidean,
        DistanceMetric::InnerProduct,
        DistanceMetric::Cosine,
    ] {
        let mut data: Vec<f32> = (0..200 * dim).map(|_| rng.next_gaussian() as f32).collect();
        for (t, x) in data[..dim].iter_mut().enumerate() {
            *x = 1e5 * (1.0 + t as f32);
        }
        let mut flat = FlatIndex::new(dim, metric, 0);
        for (i, r) in data.chunks_exact(dim).enumerate() {
            flat.insert(i as u32, r);
        }
        let queries: Vec<f32> = data[dim..41 * dim].to_vec(); // stored rows as queries
        let p = SearchParams::ef(None);
        for k in [1, 3, 10] {
            let batch = flat.batch_search(&queries, k, None, &p);
            for (qi, q) in queries.chunks_exact(dim).enumerate() {
                let t = truth(metric, &data, dim, q, k);
                let kth = t.last().unwrap().0;
                for &(s, _) in &batch[qi] {
                    let x = &data[s as usize * dim..(s as usize + 1) * dim];
                    let exact = dist64(metric, q, x);
                    assert!(
                        exact <= kth + 1e-5 * kth.abs().max(1e-6),
                        "{metric:?} k {k} query {qi}: row {s} at {exact}, k-th {kth}"
                    );
                }
            }
        }
    }
}

/// A batch removal (each of its paths: around a few tombstones, a scan of every list,
/// re-linking what remains) keeps recall on awkward data — a large common offset, and
/// every row stored twice (exact duplicates) — within 0.03 of a fresh build of what
/// remains, against the f64 truth over the remaining rows.
#[test]
fn batch_removal_keeps_recall_on_offset_data_with_duplicates() {
    let mut rng = SplitMix64::new(seed("batch_removal_keeps_recall_on_offset_data"));
    let (half, dim, nq) = (1500, 48, 60);
    let metric = DistanceMetric::Euclidean;
    for offset in [0.0f32, 10_000.0] {
        let all = offset_clusters(&mut rng, half + nq, dim, offset, 0.1);
        let (once, queries) = all.split_at(half * dim);
        // Every row twice: slots i and i + half hold the same vector.
        let data: Vec<f32> = once.iter().chain(once).copied().collect();
        let n = 2 * half;
        for share in [0.001, 0.1, 0.45, 0.7] {
            let mut h = build_hnsw(metric, &data, dim);
            let count = ((n as f64 * share) as usize).max(1);
            let mut gone = std::collections::BTreeSet::new();
            while gone.len() < count {
                gone.insert((rng.next_u64() % n as u64) as u32);
            }
            let gone: Vec<u32> = gone.into_iter().collect();
            h.remove_many(&gone);
            let kept: Vec<u32> = (0..n as u32)
                .filter(|s| gone.binary_search(s).is_err())
                .collect();
            let rest: Vec<f32> = kept
                .iter()
                .flat_map(|&s| data[s as usize * dim..(s as usize + 1) * dim].to_vec())
                .collect();
            let position: std::collections::HashMap<u32, u32> = kept
                .iter()
                .enumerate()
                .map(|(i, &s)| (s, i as u32))
                .collect();
            let fresh = build_hnsw(metric, &rest, dim);
            let p = SearchParams::ef(Some(20));
            let (mut batch, mut clean) = (0.0, 0.0);
            for q in queries.chunks_exact(dim) {
                let got: Vec<(u32, f32)> = h
                    .search(q, K, None, &p)
                    .into_iter()
                    .map(|(s, d)| (position[&s], d))
                    .collect();
                batch += recall(metric, &rest, dim, q, &got);
                clean += recall(metric, &rest, dim, q, &fresh.search(q, K, None, &p));
            }
            let (batch, clean) = (batch / nq as f64, clean / nq as f64);
            eprintln!("offset {offset}, {count} of {n} removed: recall {batch:.3}, fresh build {clean:.3}");
            assert!(
                batch >= clean - 0.03,
                "offset {offset}, {count} removed: {batch:.3} vs fresh {clean:.3}"
            );
        }
    }
}

/// Cosine and angular on rows nearly parallel to each other (every component 10⁴ plus
/// clusters of spread 0.3; each query a row moved by 0.05 a component: cosine distances
/// 10⁻¹²–10⁻⁹, where float32's `‖q̂ − x̂‖²` is off by more than the gaps between
/// neighbours): exact search (single and
/// batch), HNSW's exact scan of a filter's rows (half of them, `ef` above) and its
/// ranking of the walk's candidates (ef 400), and IVF with every list probed return the true nearest rows
/// (f64 reference; angular ranks as cosine does), at 192 and 384 dimensions; IVF with
/// a list short of all, coded or not, finds what the uncoded scan of the same lists
/// finds.
#[test]
fn exact_answers_on_nearly_parallel_rows() {
    let mut rng = SplitMix64::new(seed("exact_answers_on_nearly_parallel_rows"));
    let (n, nq, nlist) = (3000, 20, 8);
    for dim in [192, 384] {
        let data = offset_clusters(&mut rng, n, dim, 1e4, 0.3);
        let data = &data[..];
        let mut queries = Vec::with_capacity(nq * dim);
        for _ in 0..nq {
            let r = (rng.next_u64() % n as u64) as usize;
            let row = &data[r * dim..(r + 1) * dim];
            queries.extend(row.iter().map(|&x| x + 0.05 * rng.next_gaussian() as f32));
        }
        let queries = &queries[..];
        for metric in [DistanceMetric::Cosine, DistanceMetric::Angular] {
            let what = format!("{metric:?} dim {dim}");
            let worst = |answers: &[Vec<(u32, f32)>]| {
                queries
                    .chunks_exact(dim)
                    .zip(answers)
                    .map(|(q, got)| recall(DistanceMetric::Cosine, data, dim, q, got))
                    .fold(1.0f64, f64::min)
            };
            let mut flat = FlatIndex::new(dim, metric, n);
            for (i, r) in data.chunks_exact(dim).enumerate() {
                flat.insert(i as u32, r);
            }
            let p = SearchParams::ef(None);
            let single: Vec<_> = queries
                .chunks_exact(dim)
                .map(|q| flat.search(q, K, None, &p))
                .collect();
            assert_eq!(worst(&single), 1.0, "{what}: flat search");
            let batch = flat.batch_search(queries, K, None, &p);
            assert_eq!(worst(&batch), 1.0, "{what}: flat batch search");
            // HNSW's exact scans: a filter allowing fewer rows than `ef` (every other
            // one), and the graph's candidates ranked at the end.
            let h = build_hnsw(metric, data, dim);
            let allow: RoaringBitmap = (0..n as u32).step_by(2).collect();
            let sub: Vec<f32> = data
                .chunks_exact(dim)
                .step_by(2)
                .flatten()
                .copied()
                .collect();
            let (scan, wide) = (SearchParams::ef(Some(n)), SearchParams::ef(Some(400)));
            let scanned: Vec<Vec<(u32, f32)>> = queries
                .chunks_exact(dim)
                .map(|q| {
                    let got = h.search(q, K, Some(&allow), &scan);
                    got.into_iter().map(|(s, d)| (s / 2, d)).collect()
                })
                .collect();
            let worst_sub = queries
                .chunks_exact(dim)
                .zip(&scanned)
                .map(|(q, got)| recall(DistanceMetric::Cosine, &sub, dim, q, got))
                .fold(1.0f64, f64::min);
            assert_eq!(worst_sub, 1.0, "{what}: HNSW, a filter scanned exactly");
            let walked: Vec<_> = queries
                .chunks_exact(dim)
                .map(|q| h.search(q, K, None, &wide))
                .collect();
            assert_eq!(worst(&walked), 1.0, "{what}: HNSW at ef 400");
            let items: Vec<(u32, &[f32])> = data
                .chunks_exact(dim)
                .enumerate()
                .map(|(i, r)| (i as u32, r))
                .collect();
            let ivf = |quant| {
                let mut ix = IvfIndex::new(dim, metric, Some(nlist), None, n).with_codes(quant);
                ix.insert_many(&items);
                ix
            };
            let probes = |p: usize| SearchParams {
                nprobe: Some(p),
                ..SearchParams::default()
            };
            let search = |ix: &IvfIndex, p: usize| -> Vec<Vec<(u32, f32)>> {
                queries
                    .chunks_exact(dim)
                    .map(|q| ix.search(q, K, None, &probes(p)))
                    .collect()
            };
            let plain = ivf(Quantization::Off);
            assert_eq!(
                worst(&search(&plain, nlist)),
                1.0,
                "{what}: IVF, every list"
            );
            let some = search(&plain, nlist - 1);
            for quant in [Quantization::RaBitQ, Quantization::Binary] {
                let coded = search(&ivf(quant), nlist - 1);
                assert_eq!(coded, some, "{what}: IVF {quant:?}, {} lists", nlist - 1);
            }
        }
    }
}
