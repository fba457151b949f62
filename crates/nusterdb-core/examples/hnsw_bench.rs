//! Build time, single-thread queries per second and recall@10 of the HNSW index,
//! against brute force (the exact `FlatIndex`), on seeded clustered data or on files.
//!
//! ```text
//! cargo run --release -p nusterdb-core --example hnsw_bench -- [options]
//!   --n N            base vectors (default 100000)
//!   --dim D          dimension (default 128)
//!   --queries Q      queries (default 1000)
//!   --clusters C     Gaussian clusters of the generated data (default 1000)
//!   --metric NAME    euclidean | cosine | inner_product | ... (default euclidean)
//!   --m M            max_nb_connection (default 16)
//!   --efc E          ef_construction (default 200)
//!   --ef LIST        comma-separated ef values (default 16,32,64,128,256)
//!   --serial         also time a serial (one insert at a time) build
//!   --filters        also time filtered searches at 0.1%..50% selectivity
//!   --churn          also time removing 10% of the vectors and inserting them again in
//!                    their slots (serial, as the database does; the same vectors, so
//!                    the recall afterwards compares with the fresh build's)
//!   --load DIR       read DIR/base.f32 and DIR/queries.f32 (raw little-endian f32,
//!                    row-major, --dim values per row) instead of generating
//!   --dump DIR       write the data used to DIR/base.f32, DIR/queries.f32 and the
//!                    exact top-10 to DIR/truth.u32 (for running peers on the same data)
//! ```
//!
//! The generated data: `C` centres drawn from N(0, 1)^D, each vector a centre plus
//! N(0, 1)^D noise (seed fixed, `NUSTERDB_BENCH_SEED` overrides); queries from the same
//! distribution, not in the base. Searches run one at a time on the calling thread
//! (`search`, not `batch_search`), each ef over all queries, repeated until at least
//! 0.5 s has passed. The build is [`HnswIndex::build_parallel`] on rayon's pool (every
//! core unless `RAYON_NUM_THREADS` says otherwise).

use std::collections::HashSet;
use std::error::Error;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nusterdb_core::index::hnsw::HnswIndex;
use nusterdb_core::index::{FlatIndex, SearchParams, VectorIndex};
use nusterdb_core::rng::SplitMix64;
use nusterdb_core::{DistanceMetric, HnswConfig};
use roaring::RoaringBitmap;

type BoxResult<T> = Result<T, Box<dyn Error>>;

const K: usize = 10;

struct Opts {
    n: usize,
    dim: usize,
    nq: usize,
    clusters: usize,
    metric: DistanceMetric,
    m: usize,
    efc: usize,
    efs: Vec<usize>,
    serial: bool,
    filters: bool,
    churn: bool,
    load: Option<PathBuf>,
    dump: Option<PathBuf>,
}

fn parse() -> BoxResult<Opts> {
    let mut o = Opts {
        n: 100_000,
        dim: 128,
        nq: 1_000,
        clusters: 1_000,
        metric: DistanceMetric::Euclidean,
        m: 16,
        efc: 200,
        efs: vec![16, 32, 64, 128, 256],
        serial: false,
        filters: false,
        churn: false,
        load: None,
        dump: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--n" => o.n = val()?.parse()?,
            "--dim" => o.dim = val()?.parse()?,
            "--queries" => o.nq = val()?.parse()?,
            "--clusters" => o.clusters = val()?.parse()?,
            "--metric" => o.metric = DistanceMetric::from_name(&val()?)?,
            "--m" => o.m = val()?.parse()?,
            "--efc" => o.efc = val()?.parse()?,
            "--ef" => {
                o.efs = val()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--serial" => o.serial = true,
            "--filters" => o.filters = true,
            "--churn" => o.churn = true,
            "--load" => o.load = Some(PathBuf::from(val()?)),
            "--dump" => o.dump = Some(PathBuf::from(val()?)),
            _ => return Err(format!("unknown argument {a:?} (see the file's docs)").into()),
        }
    }
    if o.dim == 0 || o.clusters == 0 {
        return Err("--dim and --clusters must be positive".into());
    }
    Ok(o)
}

fn generate(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    let centres: Vec<f32> = (0..clusters * dim)
        .map(|_| rng.next_gaussian() as f32)
        .collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = (rng.next_u64() % clusters as u64) as usize;
        for t in 0..dim {
            out.push(centres[c * dim + t] + rng.next_gaussian() as f32);
        }
    }
    out
}

fn read_f32(path: &Path, dim: usize) -> BoxResult<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !bytes.len().is_multiple_of(dim * 4) {
        return Err(format!("{}: not whole rows of {dim} f32", path.display()).into());
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn write_f32(path: &Path, xs: &[f32]) -> BoxResult<()> {
    let bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// Tie-aware recall@k of one answer against the exact one.
fn recall_one(got: &[(u32, f32)], truth: &[(u32, f32)]) -> f64 {
    let Some(&(_, kth)) = truth.last() else {
        return 1.0;
    };
    let ids: HashSet<u32> = truth.iter().map(|r| r.0).collect();
    let tol = 1e-5 * kth.abs().max(1.0);
    let hits = got
        .iter()
        .filter(|r| ids.contains(&r.0) || r.1 <= kth + tol)
        .count();
    hits.min(truth.len()) as f64 / truth.len() as f64
}

/// Runs every query one at a time (repeating the set until `min` has passed); returns
/// (queries per second, mean recall@10).
fn measure(
    queries: &[f32],
    dim: usize,
    truth: &[Vec<(u32, f32)>],
    min: Duration,
    mut search: impl FnMut(&[f32]) -> Vec<(u32, f32)>,
) -> (f64, f64) {
    let mut recall = 0.0;
    for (q, t) in queries.chunks_exact(dim).zip(truth) {
        recall += recall_one(&search(q), t);
    }
    let nq = truth.len().max(1);
    let start = Instant::now();
    let mut done = 0usize;
    while start.elapsed() < min || done == 0 {
        for q in queries.chunks_exact(dim) {
            black_box(search(black_box(q)));
        }
        done += nq;
    }
    (
        done as f64 / start.elapsed().as_secs_f64(),
        recall / nq as f64,
    )
}

fn main() -> BoxResult<()> {
    let o = parse()?;
    let dim = o.dim;
    let seed = std::env::var("NUSTERDB_BENCH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(42u64);
    let (base, queries) = match &o.load {
        Some(dir) => (
            read_f32(&dir.join("base.f32"), dim)?,
            read_f32(&dir.join("queries.f32"), dim)?,
        ),
        None => {
            let all = generate(o.n + o.nq, dim, o.clusters, seed);
            let (b, q) = all.split_at(o.n * dim);
            (b.to_vec(), q.to_vec())
        }
    };
    let n = base.len() / dim;
    let nq = queries.len() / dim;
    println!(
        "data: {n} x {dim} {}, {nq} queries, {} (seed {seed}); kernels {}; {} rayon threads",
        o.metric.name(),
        match &o.load {
            Some(d) => format!("from {}", d.display()),
            None => format!("{} clusters", o.clusters),
        },
        nusterdb_core::distance::kernels().isa.name(),
        rayon::current_num_threads()
    );

    let mut exact = FlatIndex::new(dim, o.metric, n);
    for (i, v) in base.chunks_exact(dim).enumerate() {
        exact.insert(i as u32, v);
    }
    let p = SearchParams::default();
    let truth = exact.batch_search(&queries, K, None, &p);
    if let Some(dir) = &o.dump {
        std::fs::create_dir_all(dir)?;
        write_f32(&dir.join("base.f32"), &base)?;
        write_f32(&dir.join("queries.f32"), &queries)?;
        let ids: Vec<u8> = truth
            .iter()
            .flat_map(|t| t.iter().flat_map(|r| r.0.to_le_bytes()))
            .collect();
        std::fs::write(dir.join("truth.u32"), ids)?;
        println!("dumped to {}", dir.display());
    }

    let cfg = HnswConfig {
        max_nb_connection: o.m,
        ef_construction: o.efc,
        max_nb_elements: n,
        ..HnswConfig::default()
    };
    let items: Vec<(u32, &[f32])> = base
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, v)| (i as u32, v))
        .collect();
    let mut h = HnswIndex::new(dim, o.metric, &cfg);
    let t = Instant::now();
    h.build_parallel(&items);
    let build = t.elapsed();
    println!(
        "build (parallel, M={}, ef_construction={}): {:.2} s, {:.0} inserts/s, {:.1} MiB",
        o.m,
        o.efc,
        build.as_secs_f64(),
        n as f64 / build.as_secs_f64(),
        h.memory_bytes() as f64 / (1 << 20) as f64
    );
    if o.serial {
        let mut s = HnswIndex::new(dim, o.metric, &cfg);
        let t = Instant::now();
        for &(slot, v) in &items {
            s.insert(slot, v);
        }
        let el = t.elapsed().as_secs_f64();
        println!(
            "build (serial inserts, 1 thread): {el:.2} s, {:.0} inserts/s",
            n as f64 / el
        );
    }

    let min = Duration::from_millis(500);
    let (qps, _) = measure(&queries, dim, &truth, min, |q| exact.search(q, K, None, &p));
    println!("brute force (FlatIndex::search, 1 query at a time): {qps:.0} QPS");
    // Both traversals on the same graph: on the 8-bit codes with an exact re-rank
    // (the default), and on the full vectors.
    let modes: &[(bool, &str)] = if h.quantized_search() {
        &[(true, "codes"), (false, "f32")]
    } else {
        &[(false, "f32")]
    };
    println!(
        "{:>6} {:>6} {:>10} {:>10} {:>9}",
        "walk", "ef", "QPS", "us/query", "recall@10"
    );
    for &(quantized, name) in modes {
        h.set_quantized_search(quantized);
        for &ef in &o.efs {
            let p = SearchParams::ef(Some(ef));
            let (qps, r) = measure(&queries, dim, &truth, min, |q| h.search(q, K, None, &p));
            println!("{name:>6} {ef:>6} {qps:>10.0} {:>10.1} {r:>9.4}", 1e6 / qps);
        }
    }
    h.set_quantized_search(true);

    if o.filters {
        let ef = 64;
        let p = SearchParams::ef(Some(ef));
        println!("filtered, ef {ef}: QPS (recall@10) by strategy");
        println!(
            "{:>8} {:>9} {:>18} {:>18} {:>18}",
            "allowed", "count", "default", "graph", "scan"
        );
        let mut rng = SplitMix64::new(seed ^ 0xf1);
        for sel in [0.001, 0.01, 0.05, 0.1, 0.2, 0.5] {
            let allow: RoaringBitmap = (0..n as u32).filter(|_| rng.next_f64() < sel).collect();
            let truth = exact.batch_search(&queries, K, Some(&allow), &SearchParams::default());
            let mut cells = Vec::new();
            for f in [
                nusterdb_core::index::hnsw::DEFAULT_FILTER_BRUTE_FORCE_FACTOR,
                0.0,
                f64::INFINITY,
            ] {
                h.set_filter_brute_force_factor(f);
                let (qps, r) = measure(&queries, dim, &truth, min / 2, |q| {
                    h.search(q, K, Some(&allow), &p)
                });
                cells.push(format!("{qps:.0} ({r:.3})"));
            }
            h.set_filter_brute_force_factor(
                nusterdb_core::index::hnsw::DEFAULT_FILTER_BRUTE_FORCE_FACTOR,
            );
            println!(
                "{:>7.1}% {:>9} {:>18} {:>18} {:>18}",
                sel * 100.0,
                allow.len(),
                cells[0],
                cells[1],
                cells[2]
            );
        }
    }
    if o.churn {
        let mut rng = SplitMix64::new(seed ^ 0xc4);
        let mut picked = HashSet::new();
        let mut slots = Vec::new();
        while slots.len() < n / 10 {
            let s = (rng.next_u64() % n as u64) as u32;
            if picked.insert(s) {
                slots.push(s);
            }
        }
        let t = Instant::now();
        for &s in &slots {
            h.remove(s);
        }
        let rm = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for &s in &slots {
            let v = &base[s as usize * dim..(s as usize + 1) * dim];
            h.insert(s, v);
        }
        let ins = t.elapsed().as_secs_f64();
        let mut cells = Vec::new();
        for ef in [16, 64] {
            let p = SearchParams::ef(Some(ef));
            let (_, r) = measure(&queries, dim, &truth, Duration::ZERO, |q| {
                h.search(q, K, None, &p)
            });
            cells.push(format!("ef {ef}: {r:.4}"));
        }
        println!(
            "churn: {} removes {:.0} us each, {} reinserts {:.0} us each; recall@10 after: {}",
            slots.len(),
            rm * 1e6 / slots.len() as f64,
            slots.len(),
            ins * 1e6 / slots.len() as f64,
            cells.join(", ")
        );
    }
    Ok(())
}
