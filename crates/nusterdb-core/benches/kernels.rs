//! Throughput of the distance kernels: one query against N = 20 000 base rows stored
//! contiguously (one `Vec<f32>` of N·d), for l2_squared, l2_scaled, dot and cosine × d ∈
//! {128, 384, 1536} × every ISA this CPU runs. Criterion reports bytes of base data read per
//! second, so the numbers compare directly with `benchmarks/kernels.py` (numpy).
//!
//! With `NUSTERDB_BENCH_DATA_DIR` set, base and query come from the raw little-endian
//! f32 files `base_{d}.f32` and `query_{d}.f32` there (written by the driver, so Rust
//! and numpy see the same numbers); otherwise they are generated with a seeded
//! xorshift. This measures the kernels alone, single-threaded, not an index search.
//!
//! The `codes` group times the integer kernels of the quantized graph walk the same way:
//! one query's codes against N rows of 8-bit (`dot_u8u8`, d bytes a row) or packed 4-bit
//! codes (`dot_u8u4`, 32·⌈d/64⌉ bytes a row) or RaBitQ's 1-bit codes against 4 query bit
//! planes (`dot_bits`, P/8 bytes a row, P the power of two from d, at least 64), and the
//! IVF lists' fast-scan of the same 1-bit codes (`fast_scan`: blocks of 32 rows of P/4
//! 4-bit sub-codes, P/8 bytes a row, against one 16-entry table per sub-code), bytes of
//! codes read per second; streamed (N = 20 000 rows) and from the L1 cache (`…-hot`: 64
//! rows scanned over and over, as a graph walk meets the codes it has just prefetched).

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use nusterdb_core::distance::{available_isas, Kernels};

/// Base rows when the data is generated.
const N: usize = 20_000;
const DIMS: [usize; 3] = [128, 384, 1536];

/// One dimension's data set.
struct Data {
    d: usize,
    /// `rows · d` floats, row-major.
    base: Vec<f32>,
    query: Vec<f32>,
}

impl Data {
    fn rows(&self) -> usize {
        self.base.len() / self.d
    }
}

fn read_f32_file(path: &Path) -> Vec<f32> {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(
        bytes.len().is_multiple_of(4),
        "{}: not a whole number of f32",
        path.display()
    );
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Values in [-1, 1) from a 64-bit xorshift.
fn xorshift(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn load(d: usize) -> Data {
    match std::env::var_os("NUSTERDB_BENCH_DATA_DIR") {
        Some(dir) => {
            let dir = Path::new(&dir);
            let base = read_f32_file(&dir.join(format!("base_{d}.f32")));
            let query = read_f32_file(&dir.join(format!("query_{d}.f32")));
            assert!(
                query.len() == d && !base.is_empty() && base.len().is_multiple_of(d),
                "{}: base_{d}.f32 must hold whole rows of {d} floats and query_{d}.f32 one row",
                dir.display()
            );
            Data { d, base, query }
        }
        None => Data {
            d,
            base: xorshift(N * d, 0x5eed + d as u64),
            query: xorshift(d, 0xc0ffee + d as u64),
        },
    }
}

/// Computes `f(row, query)` for every base row into `out`.
#[inline(never)]
fn scan<T>(data: &Data, f: impl Fn(&[f32], &[f32]) -> T, out: &mut [T]) {
    for (row, o) in data.base.chunks_exact(data.d).zip(out.iter_mut()) {
        *o = f(row, &data.query);
    }
}

fn kernels(c: &mut Criterion) {
    let tables: Vec<Kernels> = available_isas()
        .into_iter()
        .filter_map(Kernels::for_isa)
        .collect();
    let sets: Vec<Data> = DIMS.into_iter().map(load).collect();
    let mut out: Vec<f32> = Vec::new();
    for kernel in ["l2_squared", "l2_scaled", "dot", "cosine_parts"] {
        let mut group = c.benchmark_group(kernel);
        // One iteration reads up to 123 MB; flat sampling suits such long iterations.
        group.sampling_mode(SamplingMode::Flat);
        for data in &sets {
            out.resize(data.rows(), 0.0);
            group.throughput(Throughput::Bytes((data.base.len() * 4) as u64));
            for k in &tables {
                let id = BenchmarkId::new(k.isa.name(), data.d);
                group.bench_function(id, |b| match kernel {
                    "l2_squared" => b.iter(|| scan(data, k.l2_squared, black_box(&mut out))),
                    // One fixed scale for every row: the kernel's cost does not depend
                    // on its value.
                    "l2_scaled" => b.iter(|| {
                        let f = k.l2_scaled;
                        scan(data, |row, q| f(q, row, 0.75), black_box(&mut out))
                    }),
                    "dot" => b.iter(|| scan(data, k.dot, black_box(&mut out))),
                    // The cosine similarity itself, as numpy's equivalent computes it.
                    _ => b.iter(|| {
                        let parts = k.cosine_parts;
                        let cosine = |row: &[f32], q: &[f32]| {
                            let (ab, aa, bb) = parts(row, q);
                            ab / (aa * bb).sqrt()
                        };
                        scan(data, cosine, black_box(&mut out))
                    }),
                });
            }
        }
        group.finish();
    }
    codes(c, &tables);
}

/// `f(query, row)` for every row of `rows` (`stride` bytes each) into `out`.
#[inline(never)]
fn scan_codes(rows: &[u8], stride: usize, q: &[u8], f: fn(&[u8], &[u8]) -> u32, out: &mut [u32]) {
    for (row, o) in rows.chunks_exact(stride).zip(out.iter_mut()) {
        *o = f(q, row);
    }
}

/// `f(block, luts)` for every block of 32 rows (`luts.len()` bytes each) of `blocks`, the
/// sums into `out`.
#[inline(never)]
fn scan_blocks(blocks: &[u8], luts: &[u8], f: fn(&[u8], &[u8], &mut [u32; 32]), out: &mut [u32]) {
    let (sums, _) = out.as_chunks_mut::<32>();
    for (block, o) in blocks.chunks_exact(luts.len()).zip(sums) {
        f(block, luts, o);
    }
}

fn codes(c: &mut Criterion, tables: &[Kernels]) {
    let mut group = c.benchmark_group("codes");
    group.sampling_mode(SamplingMode::Flat);
    let bytes = |len: usize, seed: u64| -> Vec<u8> {
        xorshift(len, seed)
            .iter()
            .map(|&x| ((x + 1.0) * 127.5) as u8)
            .collect()
    };
    let mut out = vec![0u32; N];
    for (d, n, hot) in DIMS.into_iter().flat_map(|d| [(d, N, ""), (d, 64, "-hot")]) {
        for (name, stride, q_len) in [
            ("dot_u8u8", d, d),
            ("dot_u8u4", d.div_ceil(64) * 32, d.div_ceil(64) * 64),
            // RaBitQ: P/8 code bytes a row, the query's 4 bit planes of P/8 bytes each.
            (
                "dot_bits",
                d.max(64).next_power_of_two() / 8,
                4 * d.max(64).next_power_of_two() / 8,
            ),
        ] {
            let rows = bytes(n * stride, 0xc0de + d as u64);
            let q = bytes(q_len, 0xface + d as u64);
            group.throughput(Throughput::Bytes(rows.len() as u64));
            for k in tables {
                let f = match name {
                    "dot_u8u8" => k.dot_u8u8,
                    "dot_u8u4" => k.dot_u8u4,
                    _ => k.dot_bits,
                };
                let id = BenchmarkId::new(format!("{name}{hot}/{}", k.isa.name()), d);
                group.bench_function(id, |b| {
                    b.iter(|| scan_codes(&rows, stride, &q, f, black_box(&mut out)))
                });
            }
        }
        // Fast-scan: P/4 sub-codes a row (P/8 bytes, as `dot_bits`), one 16-byte table
        // each; N and 64 are whole blocks of 32 rows.
        let p = d.max(64).next_power_of_two();
        let blocks = bytes(n * p / 8, 0xb10c + d as u64);
        let luts = bytes(16 * (p / 4), 0x1007 + d as u64);
        group.throughput(Throughput::Bytes(blocks.len() as u64));
        for k in tables {
            let id = BenchmarkId::new(format!("fast_scan{hot}/{}", k.isa.name()), d);
            group.bench_function(id, |b| {
                b.iter(|| scan_blocks(&blocks, &luts, k.fast_scan, black_box(&mut out)))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // Short, so the driver finishes in a few minutes on 2 cores.
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = kernels
}
criterion_main!(benches);
