//! The exact index on 100 000 × 384 random f32 (uniform in [-1, 1), seeded), k = 10:
//! `batch_search` of 1 000 queries (QPS = 1 000 / time per iteration) for euclidean and
//! inner product, and the latency of one `search`. Run with
//! `cargo bench -p nusterdb-core --bench flat`; the QPS figures are also printed.
//!
//! The same data and shapes in `faiss.IndexFlatL2` / `IndexFlatIP` (faiss-cpu, all
//! threads) are the target: batch QPS at least as high.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use nusterdb_core::index::{FlatIndex, SearchParams, VectorIndex};
use nusterdb_core::rng::SplitMix64;
use nusterdb_core::DistanceMetric;

const N: usize = 100_000;
const DIM: usize = 384;
const QUERIES: usize = 1_000;
const K: usize = 10;

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..len)
        .map(|_| (rng.next_f64() * 2.0 - 1.0) as f32)
        .collect()
}

fn build(metric: DistanceMetric, base: &[f32]) -> FlatIndex {
    let mut index = FlatIndex::new(DIM, metric, N);
    for (slot, v) in base.chunks_exact(DIM).enumerate() {
        index.insert(slot as u32, v);
    }
    index
}

fn flat(c: &mut Criterion) {
    let base = random(N * DIM, 0x5eed);
    let queries = random(QUERIES * DIM, 0xc0ffee);
    let p = SearchParams::default();
    eprintln!(
        "flat bench: {N} x {DIM}, {QUERIES} queries, k = {K}, {} rayon threads, kernels {}",
        rayon::current_num_threads(),
        nusterdb_core::distance::kernels().isa.name()
    );
    for metric in [DistanceMetric::Euclidean, DistanceMetric::InnerProduct] {
        let index = build(metric, &base);
        // One timed pass outside criterion for a plain QPS figure.
        let _ = index.batch_search(&queries, K, None, &p);
        let t = Instant::now();
        let reps = 3;
        for _ in 0..reps {
            black_box(index.batch_search(&queries, K, None, &p));
        }
        let secs = t.elapsed().as_secs_f64() / f64::from(reps);
        eprintln!(
            "flat bench: {} batch_search: {:.0} QPS ({:.1} ms per {QUERIES} queries)",
            metric.name(),
            QUERIES as f64 / secs,
            secs * 1e3
        );
        let t = Instant::now();
        let singles = 50;
        for q in queries.chunks_exact(DIM).take(singles) {
            black_box(index.search(q, K, None, &p));
        }
        eprintln!(
            "flat bench: {} search latency: {:.2} ms",
            metric.name(),
            t.elapsed().as_secs_f64() * 1e3 / singles as f64
        );

        let mut group = c.benchmark_group(format!("flat_{}", metric.name()));
        group.sampling_mode(SamplingMode::Flat);
        group.throughput(Throughput::Elements(QUERIES as u64));
        group.bench_function("batch_search_1000q", |b| {
            b.iter(|| black_box(index.batch_search(black_box(&queries), K, None, &p)))
        });
        group.throughput(Throughput::Elements(1));
        let mut i = 0;
        group.bench_function("search_1q", |b| {
            b.iter(|| {
                i = (i + 1) % QUERIES;
                let q = &queries[i * DIM..(i + 1) * DIM];
                black_box(index.search(black_box(q), K, None, &p))
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = flat
}
criterion_main!(benches);
