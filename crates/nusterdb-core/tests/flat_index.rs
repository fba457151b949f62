//! Integration tests of the exact index: every metric, several dimensions, filters,
//! removals, slot gaps, huge `k`, batch against single search, and random operation
//! sequences against a `BTreeMap` model, all checked against an independent brute
//! force written here (`distance_unchecked` for every stored vector, sorted by
//! `(distance, slot)`).
//!
//! Random data is seeded: the seed is printed, and `NUSTERDB_TEST_SEED=<u64>` replays a
//! run.
//!
//! Accuracy contract (see `index/flat.rs`): every returned distance is exactly
//! `distance_unchecked(q, x)`; the *choice* of the k may differ from brute force only
//! between candidates whose distances lie within the documented rounding band of the
//! fast score. So for each metric the check works on a ranking key (squared distance
//! for euclidean, cos for angular, the distance otherwise) with a tolerance `tol` that
//! is the documented bound (times a safety factor of 2), and requires
//! - the same number of results, distinct eligible slots, sorted by (distance, slot);
//! - each returned distance bitwise equal to `distance_unchecked`;
//! - at every rank, keys within `tol` of brute force's;
//! - a slot in one answer and not the other within `tol` of the k-th key;
//! - with `tol = 0` (metrics scored by their own arithmetic), identical answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::process::Command;

use nusterdb_core::index::{FlatIndex, SearchParams, VectorIndex};
use nusterdb_core::rng::SplitMix64;
use nusterdb_core::DistanceMetric;
use proptest::prelude::*;
use roaring::RoaringBitmap;

const P: SearchParams = SearchParams::ef(None);
const U: f64 = f32::EPSILON as f64 / 2.0;

/// The run's seed: `NUSTERDB_TEST_SEED` or a fixed default, printed either way.
fn seed(test: &str) -> u64 {
    common::seed(test, 0x5eed_f1a7_0000_0001)
}

/// A random vector for `metric`: non-negative for jaccard, in [-1, 1) otherwise.
fn random_vec(rng: &mut SplitMix64, dim: usize, metric: DistanceMetric) -> Vec<f32> {
    (0..dim)
        .map(|_| {
            let u = rng.next_f64() as f32;
            if metric == DistanceMetric::Jaccard {
                u
            } else {
                2.0 * u - 1.0
            }
        })
        .collect()
}

/// The stored vectors, by slot: the model every answer is checked against.
type Model = BTreeMap<u32, Vec<f32>>;

/// Brute force: every eligible stored vector, sorted by (distance, slot), first k.
fn brute_force(
    metric: DistanceMetric,
    model: &Model,
    q: &[f32],
    k: usize,
    allow: Option<&RoaringBitmap>,
) -> Vec<(u32, f32)> {
    let mut all: Vec<(u32, f32)> = model
        .iter()
        .filter(|(s, _)| allow.is_none_or(|a| a.contains(**s)))
        .map(|(&s, x)| (s, metric.distance_unchecked(q, x)))
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

/// The ranking key of a distance under `metric` (see the module docs).
fn key(metric: DistanceMetric, d: f32) -> f64 {
    let d = f64::from(d);
    match metric {
        DistanceMetric::Euclidean => d * d,
        DistanceMetric::Angular => -(d * std::f64::consts::PI).cos(),
        _ => d,
    }
}

/// The tolerance on keys for `q` against `model` under `metric`: the documented bound
/// of the fast scores (× 2), or 0 where the index ranks by the metric's own arithmetic.
fn tolerance(metric: DistanceMetric, model: &Model, q: &[f32]) -> f64 {
    let dim = q.len() as f64;
    let gamma = (dim + 2.0) * U;
    let norm = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let nq = norm(q);
    let nx = model.values().map(|x| norm(x)).fold(0.0, f64::max);
    match metric {
        DistanceMetric::Euclidean => 4.0 * gamma * (nq + nx).powi(2) + 1e-30,
        DistanceMetric::InnerProduct => 8.0 * gamma * nq * nx + 1e-30,
        DistanceMetric::Cosine | DistanceMetric::Angular => 8.0 * gamma + 16.0 * U,
        _ => 0.0,
    }
}

/// Checks `got` against brute force (see the module docs for what is required).
fn check(
    what: &str,
    metric: DistanceMetric,
    model: &Model,
    q: &[f32],
    k: usize,
    allow: Option<&RoaringBitmap>,
    got: &[(u32, f32)],
) {
    let want = brute_force(metric, model, q, k, allow);
    let ctx = || {
        format!(
            "{what}: {} k={k} q={q:?}\n got {got:?}\nwant {want:?}",
            metric.name()
        )
    };
    assert_eq!(got.len(), want.len(), "{}", ctx());
    let mut seen = HashSet::new();
    for (i, &(slot, d)) in got.iter().enumerate() {
        assert!(seen.insert(slot), "duplicate slot {slot}: {}", ctx());
        let x = model
            .get(&slot)
            .unwrap_or_else(|| panic!("slot {slot} is not stored: {}", ctx()));
        assert!(
            allow.is_none_or(|a| a.contains(slot)),
            "slot {slot} not allowed: {}",
            ctx()
        );
        let exact = metric.distance_unchecked(q, x);
        assert_eq!(
            d.to_bits(),
            exact.to_bits(),
            "slot {slot}: distance {d} != {exact}: {}",
            ctx()
        );
        if i > 0 {
            let (ps, pd) = got[i - 1];
            assert!(
                pd < d || (pd == d && ps < slot),
                "not sorted at {i}: {}",
                ctx()
            );
        }
    }
    let tol = tolerance(metric, model, q);
    if tol == 0.0 {
        assert_eq!(got, &want[..], "{}", ctx());
        return;
    }
    for (g, w) in got.iter().zip(&want) {
        let (kg, kw) = (key(metric, g.1), key(metric, w.1));
        assert!(
            (kg - kw).abs() <= tol,
            "rank keys {kg} vs {kw} beyond {tol}: {}",
            ctx()
        );
    }
    if let (Some(g), Some(w)) = (got.last(), want.last()) {
        let (kth_got, kth_want) = (key(metric, g.1), key(metric, w.1));
        let got_ids: HashSet<u32> = got.iter().map(|p| p.0).collect();
        let want_ids: HashSet<u32> = want.iter().map(|p| p.0).collect();
        for &(s, d) in got.iter().filter(|p| !want_ids.contains(&p.0)) {
            assert!(
                key(metric, d) <= kth_want + tol,
                "extra slot {s} too far: {}",
                ctx()
            );
        }
        for &(s, d) in want.iter().filter(|p| !got_ids.contains(&p.0)) {
            assert!(
                key(metric, d) >= kth_got - tol,
                "missed slot {s} too near: {}",
                ctx()
            );
        }
    }
}

/// An index and its model with `n` random vectors (slots 0..n), some exact duplicates
/// and (except for jaccard, which allows them too) zero vectors.
fn build(rng: &mut SplitMix64, metric: DistanceMetric, dim: usize, n: u32) -> (FlatIndex, Model) {
    let mut index = FlatIndex::new(dim, metric, 16);
    let mut model = Model::new();
    for s in 0..n {
        let v = match s % 50 {
            // duplicates of earlier rows: ties broken by slot
            7 | 19 | 33 if s > 40 => model[&(s - 40)].clone(),
            // zero vectors (cosine/angular: cos 0 with anything)
            11 => vec![0.0; dim],
            _ => random_vec(rng, dim, metric),
        };
        index.insert(s, &v);
        model.insert(s, v);
    }
    (index, model)
}

/// Queries: random ones, a zero vector, and copies of stored vectors.
fn queries(
    rng: &mut SplitMix64,
    metric: DistanceMetric,
    model: &Model,
    dim: usize,
    n: usize,
) -> Vec<f32> {
    let mut qs = Vec::new();
    for i in 0..n {
        let q = match i % 5 {
            1 => vec![0.0; dim],
            3 => model.values().nth(i * 7 % model.len()).unwrap().clone(),
            _ => random_vec(rng, dim, metric),
        };
        qs.extend(q);
    }
    qs
}

#[test]
fn index_every_metric_and_dimension_matches_brute_force() {
    let mut rng = SplitMix64::new(seed("index_every_metric_and_dimension_matches_brute_force"));
    for metric in DistanceMetric::ALL {
        for dim in [1usize, 3, 17, 128] {
            let n = if dim == 128 { 1000 } else { 600 };
            let (index, model) = build(&mut rng, metric, dim, n);
            assert_eq!(index.len(), n as usize);
            let nq = 10;
            let qs = queries(&mut rng, metric, &model, dim, nq);
            for k in [1usize, 10, 57, n as usize + 5] {
                let batch = index.batch_search(&qs, k, None, &P);
                assert_eq!(batch.len(), nq);
                for (i, q) in qs.chunks_exact(dim).enumerate() {
                    let got = index.search(q, k, None, &P);
                    check("search", metric, &model, q, k, None, &got);
                    check("batch", metric, &model, q, k, None, &batch[i]);
                }
            }
        }
    }
}

#[test]
fn index_large_base_uses_parallel_paths_and_matches_brute_force() {
    let mut rng = SplitMix64::new(seed(
        "index_large_base_uses_parallel_paths_and_matches_brute_force",
    ));
    let dim = 128;
    let n = 9000; // > 2^20 floats: single searches split over threads; batches slice the base
    for metric in [
        DistanceMetric::Euclidean,
        DistanceMetric::Cosine,
        DistanceMetric::InnerProduct,
        DistanceMetric::Manhattan,
    ] {
        let (index, model) = build(&mut rng, metric, dim, n);
        for nq in [3usize, 37] {
            let qs = queries(&mut rng, metric, &model, dim, nq);
            let batch = index.batch_search(&qs, 10, None, &P);
            for (i, q) in qs.chunks_exact(dim).enumerate() {
                check("batch", metric, &model, q, 10, None, &batch[i]);
                if i < 3 {
                    check(
                        "search",
                        metric,
                        &model,
                        q,
                        10,
                        None,
                        &index.search(q, 10, None, &P),
                    );
                }
            }
        }
    }
}

#[test]
fn index_removed_slots_are_never_returned_and_can_be_reused() {
    let mut rng = SplitMix64::new(seed(
        "index_removed_slots_are_never_returned_and_can_be_reused",
    ));
    for metric in DistanceMetric::ALL {
        let dim = 9;
        let (mut index, mut model) = build(&mut rng, metric, dim, 300);
        for s in (0..300).step_by(3) {
            index.remove(s);
            model.remove(&s);
            assert!(index.get(s).is_none());
        }
        index.remove(1_000_000); // absent: no-op
        index.remove(0); // already removed: no-op
        assert_eq!(index.len(), model.len());
        let qs = queries(&mut rng, metric, &model, dim, 6);
        let batch = index.batch_search(&qs, 400, None, &P);
        for (i, q) in qs.chunks_exact(dim).enumerate() {
            for got in [index.search(q, 400, None, &P), batch[i].clone()] {
                assert!(got.iter().all(|(s, _)| s % 3 != 0));
                check("after removal", metric, &model, q, 400, None, &got);
            }
        }
        // Re-insert into removed slots (and replace a live one).
        for s in [0u32, 3, 297, 1] {
            let v = random_vec(&mut rng, dim, metric);
            index.insert(s, &v);
            assert_eq!(index.get(s), Some(&v[..]));
            model.insert(s, v);
        }
        assert_eq!(index.len(), model.len());
        // A query equal to a re-inserted vector finds it.
        let q = model[&297].clone();
        let got = index.search(&q, 5, None, &P);
        check("reinserted", metric, &model, &q, 5, None, &got);
        let batch = index.batch_search(&[q.clone(), q.clone()].concat(), 5, None, &P);
        check("reinserted batch", metric, &model, &q, 5, None, &batch[1]);
        // Removing everything empties every answer.
        for s in 0..300 {
            index.remove(s);
        }
        assert!(index.is_empty());
        assert!(index.search(&q, 5, None, &P).is_empty());
        assert!(index.batch_search(&q, 5, None, &P)[0].is_empty());
    }
}

#[test]
fn index_slot_gaps_work() {
    let mut rng = SplitMix64::new(seed("index_slot_gaps_work"));
    for metric in DistanceMetric::ALL {
        let dim = 5;
        let mut index = FlatIndex::new(dim, metric, 0);
        let mut model = Model::new();
        for s in [1000u32, 7, 5000, 4999] {
            let v = random_vec(&mut rng, dim, metric);
            index.insert(s, &v);
            model.insert(s, v);
        }
        assert_eq!(index.len(), 4);
        assert!(index.get(6).is_none() && index.get(1001).is_none() && index.get(99_999).is_none());
        assert_eq!(index.get(1000), Some(&model[&1000][..]));
        let qs = queries(&mut rng, metric, &model, dim, 4);
        let batch = index.batch_search(&qs, 10, None, &P);
        for (i, q) in qs.chunks_exact(dim).enumerate() {
            check(
                "gaps",
                metric,
                &model,
                q,
                10,
                None,
                &index.search(q, 10, None, &P),
            );
            check("gaps batch", metric, &model, q, 10, None, &batch[i]);
        }
        // Removing the highest slots shrinks the scan; the others stay.
        index.remove(5000);
        index.remove(4999);
        model.remove(&5000);
        model.remove(&4999);
        let q = &qs[..dim];
        check(
            "gaps shrunk",
            metric,
            &model,
            q,
            10,
            None,
            &index.search(q, 10, None, &P),
        );
        assert!(index.memory_bytes() >= 1001 * dim * 4);
    }
}

#[test]
fn index_allow_filters_equal_brute_force_over_the_allowed_set() {
    let mut rng = SplitMix64::new(seed(
        "index_allow_filters_equal_brute_force_over_the_allowed_set",
    ));
    for metric in DistanceMetric::ALL {
        for dim in [4usize, 40] {
            let n = 2000u32;
            let (mut index, mut model) = build(&mut rng, metric, dim, n);
            // Some dead slots inside the allowed sets.
            for s in (5..n).step_by(97) {
                index.remove(s);
                model.remove(&s);
            }
            let pick = |rng: &mut SplitMix64, frac: f64| -> RoaringBitmap {
                (0..n).filter(|_| rng.next_f64() < frac).collect()
            };
            let mut sets = vec![
                RoaringBitmap::new(),
                std::iter::once(1234u32).collect(),
                std::iter::once(5u32).collect(), // a removed slot only
                pick(&mut rng, 0.01),
                pick(&mut rng, 0.5),
                (0..n).collect(),
            ];
            // Slots beyond the end of the index are ignored.
            sets[3].insert(n + 10);
            sets[4].insert_range(n + 100..n + 200);
            let qs = queries(&mut rng, metric, &model, dim, 5);
            for allow in &sets {
                for k in [1usize, 10, 3000] {
                    let batch = index.batch_search(&qs, k, Some(allow), &P);
                    for (i, q) in qs.chunks_exact(dim).enumerate() {
                        let got = index.search(q, k, Some(allow), &P);
                        check("allow", metric, &model, q, k, Some(allow), &got);
                        check("allow batch", metric, &model, q, k, Some(allow), &batch[i]);
                    }
                }
            }
        }
    }
}

#[test]
fn index_batch_search_equals_search() {
    let mut rng = SplitMix64::new(seed("index_batch_search_equals_search"));
    for metric in DistanceMetric::ALL {
        let dim = 33;
        let (index, model) = build(&mut rng, metric, dim, 1500);
        for nq in [1usize, 2, 16, 17, 70] {
            let qs = queries(&mut rng, metric, &model, dim, nq);
            let batch = index.batch_search(&qs, 10, None, &P);
            assert_eq!(batch.len(), nq);
            for (q, b) in qs.chunks_exact(dim).zip(&batch) {
                let single = index.search(q, 10, None, &P);
                // Same distances for the same slots (both exact), the same slots except
                // within the rounding band of the two scores.
                let by_slot: BTreeMap<u32, f32> = single.iter().copied().collect();
                for (s, d) in b {
                    if let Some(d2) = by_slot.get(s) {
                        assert_eq!(d.to_bits(), d2.to_bits());
                    }
                }
                check("single", metric, &model, q, 10, None, &single);
                check("batch", metric, &model, q, 10, None, b);
                if tolerance(metric, &model, q) == 0.0 {
                    assert_eq!(&single, b);
                }
            }
        }
        // A trailing partial query is ignored.
        let qs = queries(&mut rng, metric, &model, dim, 3);
        assert_eq!(index.batch_search(&qs[..2 * dim + 5], 3, None, &P).len(), 2);
    }
}

#[test]
fn index_huge_k_zero_k_and_bad_queries() {
    let mut rng = SplitMix64::new(seed("index_huge_k_zero_k_and_bad_queries"));
    let (index, model) = build(&mut rng, DistanceMetric::Euclidean, 8, 100);
    let q = random_vec(&mut rng, 8, DistanceMetric::Euclidean);
    let huge = 1_000_000_000_000usize;
    let got = index.search(&q, huge, None, &P);
    check(
        "huge k",
        DistanceMetric::Euclidean,
        &model,
        &q,
        huge,
        None,
        &got,
    );
    assert_eq!(got.len(), 100);
    let batch = index.batch_search(&[q.clone(), q.clone(), q.clone()].concat(), huge, None, &P);
    assert!(batch.iter().all(|r| r.len() == 100));
    assert_eq!(index.batch_search(&q, usize::MAX, None, &P)[0].len(), 100);
    assert!(index.search(&q, 0, None, &P).is_empty());
    assert!(index.batch_search(&q, 0, None, &P)[0].is_empty());
    assert!(index.search(&q[..7], 5, None, &P).is_empty());
    assert!(index.batch_search(&[], 5, None, &P).is_empty());
    let empty = FlatIndex::new(8, DistanceMetric::Cosine, 1 << 40); // absurd hint: capped
    assert!(empty.is_empty());
    assert!(empty.memory_bytes() <= nusterdb_core::index::flat::MAX_RESERVE_BYTES * 2);
    assert!(empty.search(&q, 5, None, &P).is_empty());
    assert_eq!(empty.dim(), 8);
    assert_eq!(empty.metric(), DistanceMetric::Cosine);
}

/// Many ties: integer data under every metric.
#[test]
fn index_ties_are_broken_by_smaller_slot() {
    for metric in DistanceMetric::ALL {
        let mut index = FlatIndex::new(2, metric, 0);
        let mut model = Model::new();
        for s in 0..200u32 {
            let v = vec![(s % 3) as f32, (s % 2) as f32];
            index.insert(199 - s, &v);
            model.insert(199 - s, v);
        }
        for q in [[1.0f32, 1.0], [0.0, 0.0], [2.0, 0.0]] {
            for k in [1usize, 5, 33, 100] {
                let got = index.search(&q, k, None, &P);
                check("ties", metric, &model, &q, k, None, &got);
                let batch = index.batch_search(&[q, q].concat(), k, None, &P);
                check("ties batch", metric, &model, &q, k, None, &batch[0]);
            }
        }
    }
}

/// Re-runs the brute-force comparison with `NUSTERDB_FORCE_ISA=scalar`, which also
/// selects the portable batch micro-kernel.
#[test]
fn index_portable_kernels_match_brute_force() {
    let exe = std::env::current_exe().unwrap();
    for test in [
        "index_every_metric_and_dimension_matches_brute_force",
        "index_allow_filters_equal_brute_force_over_the_allowed_set",
    ] {
        let out = Command::new(&exe)
            .args(["--exact", test, "--nocapture", "--test-threads", "1"])
            .env("NUSTERDB_FORCE_ISA", "scalar")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{test} failed with the scalar kernels:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u32, Vec<f32>),
    Remove(u32),
    Search(Vec<f32>, usize, Option<Vec<u32>>),
    Batch(Vec<f32>, usize),
}

fn op(dim: usize, jaccard: bool) -> impl Strategy<Value = Op> {
    let lo = if jaccard { 0i8 } else { -3 };
    let v = move || prop::collection::vec((lo..=3i8).prop_map(f32::from), dim);
    prop_oneof![
        4 => (0u32..48, v()).prop_map(|(s, v)| Op::Insert(s, v)),
        2 => (0u32..52).prop_map(Op::Remove),
        2 => (v(), 1usize..12, prop::option::of(prop::collection::vec(0u32..56, 0..20)))
            .prop_map(|(q, k, a)| Op::Search(q, k, a)),
        1 => (prop::collection::vec(v(), 1..5), 1usize..60)
            .prop_map(|(qs, k)| Op::Batch(qs.concat(), k)),
    ]
}

fn case() -> impl Strategy<Value = (DistanceMetric, usize, Vec<Op>)> {
    (0usize..8, 1usize..6).prop_flat_map(|(m, dim)| {
        let metric = DistanceMetric::ALL[m];
        let ops = prop::collection::vec(op(dim, metric == DistanceMetric::Jaccard), 1..60);
        (Just(metric), Just(dim), ops)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn index_random_operations_match_a_model((metric, dim, ops) in case()) {
        let mut index = FlatIndex::new(dim, metric, 4);
        let mut model = Model::new();
        for op in ops {
            match op {
                Op::Insert(s, v) => {
                    index.insert(s, &v);
                    model.insert(s, v);
                }
                Op::Remove(s) => {
                    index.remove(s);
                    model.remove(&s);
                }
                Op::Search(q, k, allow) => {
                    let allow: Option<RoaringBitmap> = allow.map(|a| a.into_iter().collect());
                    let got = index.search(&q, k, allow.as_ref(), &P);
                    check("prop search", metric, &model, &q, k, allow.as_ref(), &got);
                }
                Op::Batch(qs, k) => {
                    let got = index.batch_search(&qs, k, None, &P);
                    prop_assert_eq!(got.len(), qs.len() / dim);
                    for (q, g) in qs.chunks_exact(dim).zip(&got) {
                        check("prop batch", metric, &model, q, k, None, g);
                    }
                }
            }
            prop_assert_eq!(index.len(), model.len());
            for (s, v) in &model {
                prop_assert_eq!(index.get(*s), Some(&v[..]));
            }
        }
    }
}
