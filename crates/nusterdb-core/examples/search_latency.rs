//! Median latency of one `Database::search` call, in microseconds, measured in Rust.
//!
//! `benchmarks/flat.py` runs this next to the same call made from Python, on the same
//! data, to show what the bindings add per call:
//!
//! ```text
//! cargo run --release -p nusterdb-core --example search_latency -- \
//!     BASE.f32 QUERIES.f32 DIM [K] [CALLS] [WARMUP]
//! ```
//!
//! `BASE.f32` and `QUERIES.f32` are raw little-endian f32, row-major, `DIM` values per
//! row. The base rows go into an in-memory flat Euclidean database with ids 0, 1, ...
//! in one `bulk_add`; then `WARMUP` untimed calls, then `CALLS` timed calls (each one
//! timed alone with `Instant`), cycling through the query rows. Defaults: K = 10,
//! CALLS = 2000, WARMUP = 200.
//!
//! Output, one `key=value` per line: `rows`, `dim`, `k`, `calls`, `median_us`,
//! `p10_us`, `p90_us`, `mean_us`, `first_ids` (the ids found for query 0,
//! comma-separated, so the caller can check both sides return the same results).

use std::error::Error;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use nusterdb_core::{Database, DatabaseConfig, Location};

type BoxResult<T> = Result<T, Box<dyn Error>>;

const USAGE: &str = "usage: search_latency BASE.f32 QUERIES.f32 DIM [K] [CALLS] [WARMUP]";

/// Reads a file of raw little-endian f32 holding whole rows of `dim` values.
fn read_f32_rows(path: &Path, dim: usize) -> BoxResult<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let row_bytes = dim * 4;
    if bytes.is_empty() || !bytes.len().is_multiple_of(row_bytes) {
        return Err(format!(
            "{}: {} bytes is not a positive whole number of rows of {dim} f32",
            path.display(),
            bytes.len()
        )
        .into());
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// The positional argument at `index`, parsed, or `default` when it is absent.
fn arg_or(args: &[String], index: usize, default: usize) -> BoxResult<usize> {
    match args.get(index) {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|e| format!("argument {index} ({s:?}): {e}\n{USAGE}").into()),
    }
}

/// The value at quantile `q` (0..=1) of sorted `xs` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let last = sorted.len().saturating_sub(1);
    let i = ((last as f64) * q).round() as usize;
    sorted.get(i.min(last)).copied().unwrap_or(f64::NAN)
}

/// The median of sorted `xs` (the mean of the two middle values for an even count).
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match (
        sorted.get(n / 2),
        n.checked_sub(1).and_then(|m| sorted.get(m / 2)),
    ) {
        (Some(hi), Some(lo)) => (hi + lo) / 2.0,
        _ => f64::NAN,
    }
}

fn main() -> BoxResult<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err(USAGE.into());
    }
    let dim = arg_or(&args, 3, 0)?;
    let k = arg_or(&args, 4, 10)?;
    let calls = arg_or(&args, 5, 2000)?;
    let warmup = arg_or(&args, 6, 200)?;
    if dim == 0 || k == 0 || calls == 0 {
        return Err(format!("DIM, K and CALLS must be positive\n{USAGE}").into());
    }
    let base = read_f32_rows(Path::new(&args[1]), dim)?;
    let queries = read_f32_rows(Path::new(&args[2]), dim)?;
    let rows = base.len() / dim;
    let n_queries = queries.len() / dim;

    let db = Database::open(Location::Memory, Some(DatabaseConfig::new(dim)?), false)?;
    let ids: Vec<u64> = (0..rows as u64).collect();
    db.bulk_add(&ids, &base, None)?;

    let query = |i: usize| {
        let start = (i % n_queries) * dim;
        &queries[start..start + dim]
    };
    for i in 0..warmup {
        black_box(db.search(query(i), k, None, None)?);
    }
    let mut micros = Vec::with_capacity(calls);
    for i in 0..calls {
        let q = query(i);
        let start = Instant::now();
        let hits = db.search(black_box(q), k, None, None)?;
        micros.push(start.elapsed().as_secs_f64() * 1e6);
        black_box(hits);
    }
    let mean = micros.iter().sum::<f64>() / micros.len() as f64;
    micros.sort_by(f64::total_cmp);
    let first_ids: Vec<String> = db
        .search(query(0), k, None, None)?
        .iter()
        .map(|(id, _)| id.to_string())
        .collect();
    db.close();

    println!("rows={rows}");
    println!("dim={dim}");
    println!("k={k}");
    println!("calls={calls}");
    println!("median_us={:.3}", median(&micros));
    println!("p10_us={:.3}", quantile(&micros, 0.1));
    println!("p90_us={:.3}", quantile(&micros, 0.9));
    println!("mean_us={mean:.3}");
    println!("first_ids={}", first_ids.join(","));
    Ok(())
}
