//! The exact (flat) index: every search scores every eligible stored vector.
//!
//! # Layout
//! One contiguous, 64-byte aligned buffer of slot-major rows (row `s` is
//! `data[s·dim .. (s+1)·dim]`), grown by doubling; a `live` flag per slot; for cosine
//! and angular 1/‖x‖ per slot (computed in f64; 0 for a zero vector); for euclidean the
//! per-dimension sum of the live rows (f64), whose mean `μ` centres the batch path.
//! Slots past the end extend the buffer; the slots in a gap stay dead. Scans stop at
//! one past the highest live slot.
//!
//! # Scoring
//! Candidates are ranked by a *score* that orders like the distance and is cheaper:
//!
//! | metric | single query ([`FlatIndex::search`]) | many queries (GEMM path) |
//! |---|---|---|
//! | euclidean | Σ(q−x)² (the metric's own kernel) | ‖x−μ‖² − 2 (q−μ)·(x−μ) |
//! | inner_product | −q·x (the metric's own kernel) | −q·(x−μ) |
//! | cosine, angular | ‖q̂ − x/‖x‖‖² = 2 − 2 cos | −q̂·(x/‖x‖ − μ̂) |
//!
//! `μ` is the mean of the live rows (`μ̂` of the normalised rows), `q̂ = q/‖q‖`; the
//! terms that only depend on the query (‖q−μ‖², q·μ, q̂·μ̂) are left out, as they do not
//! change the order.
//! | the others | the distance itself | the distance itself |
//!
//! The `k` survivors then get their reported distance from
//! [`DistanceMetric::distance_unchecked`] itself (or, where the score *is* that
//! kernel's value, the square root / the value), so **every returned distance is
//! exactly `distance_unchecked(q, x)`**, bit for bit, and the results are sorted by it,
//! ties by slot.
//!
//! Where the score is the metric's own arithmetic (single-query euclidean and inner
//! product; manhattan, chebyshev, hamming and jaccard everywhere) the answer is exactly
//! brute force over `distance_unchecked`. Elsewhere the *choice* of the `k` may differ
//! from it between candidates whose scores are within rounding of each other. Bounds
//! on the error of one score (u = 2⁻²⁴, d = dim, γ = (d + 2)·u; two candidates can swap
//! only if their exact values differ by less than the sum of their errors): euclidean
//! GEMM form γ·(‖q−μ‖ + ‖x−μ‖)² on the squared distance; inner product γ·Σ|qᵢ(xᵢ−μᵢ)|;
//! cosine and angular about γ·Σ|q̂ᵢ(x̂ᵢ−μ̂ᵢ)| + 3u on cos for the GEMM form, and
//! γ·‖q̂ − x̂‖² + 2u on 2 − 2 cos for the single-query difference — except that a row
//! whose difference is below [`crate::metric::NEAR_CHORD`] is scored from the float64
//! gap `distance_unchecked` reports (those rows, nearly parallel to the query, are
//! chosen exactly as brute force chooses them). Outside those bands the result equals
//! exact search. Centring on the rows' mean is what keeps the bands
//! proportional to the data's spread: uncentred, rows around a common offset of 100
//! (spread ±0.1, d = 384) had a euclidean band of ~350 on squared distances of ~7, and
//! batch results were mostly wrong; and cosine scored as −q̂·x/‖x‖ could not rank rows
//! that are all nearly parallel (cosine distances ~10⁻⁶, below float32's resolution of
//! cos). The chunk is centred as it is streamed (one pass per value per query block), so
//! `μ` can follow inserts and removals with nothing to recompute.
//!
//! Centring cannot help every data set: rows near the origin beside a far outlier drag
//! `μ` away from them, and the band then exceeds the gaps between them. So each GEMM
//! answer is checked: when the worst-case band (with the largest centred row norm the
//! batch met) is wider than 1/256 of the k-th distance (euclidean; of 1 − cos for
//! cosine and angular), or (inner product) more than 4 times the single scan's band
//! γ‖q‖‖x‖ at the k-th row, that query is answered again by the single-query scan. On
//! clustered or centred data (the benchmark's 100 000 × 384 rows, say) the band is a
//! small fraction of that and nothing is recomputed. Near-duplicates still cancel (a query equal to a stored vector
//! scores ~γ‖x−μ‖², not 0), which is why the reported distance is recomputed and never
//! derived from the score.
//!
//! # Batch search
//! [`FlatIndex::batch_search`] splits the queries into blocks of up to [`QUERY_BLOCK`]
//! and runs blocks (and, when there are fewer blocks than threads, slices of the base)
//! as rayon tasks. A task streams the base in chunks of about [`CHUNK_BYTES`] (sized to
//! stay in L2) and scores every query of its block against a chunk before moving on, so
//! the base is read from memory once per block, not once per query.
//!
//! For euclidean, inner product, cosine and angular the chunk × block product is a
//! matrix multiplication done by a register-blocked micro-kernel: 6 base rows × 16
//! queries per tile, 12 AVX2 accumulators, queries packed `[dim][16]` so each step is
//! 2 vector loads, 6 broadcasts and 12 FMAs. Each tile's scores are compared with the
//! 16 queries' current thresholds ([`TopK::worst`]) in registers, and only the
//! survivors (a movemask) reach the heaps. The first pass over a chunk prefetches each
//! next tile. Measured on one core of an AMD EPYC (Zen 3, AVX2; FMA peak measured at
//! ~97 GFLOP/s), 100 000 × 384, 1 000 queries, k = 10, euclidean:
//!
//! | approach | QPS |
//! |---|---|
//! | `search` per query (memory-bound scan, 8.5 ms) | 118 |
//! | one-pair kernels, blocked 16 queries × chunk | 341 |
//! | this micro-kernel (~94 GFLOP/s) | 1 210 |
//! | faiss-cpu 1.15 `IndexFlatL2` / `IndexFlatIP`, 1 thread | 1 100 / 1 140 |
//!
//! At ~96 % of the FMA peak no other tile shape (4 queries × 1 row, 1 × 4 rows sharing
//! loads, which also need a horizontal sum per pair) can be meaningfully faster, so
//! the broadcast form is what is kept. Without AVX2+FMA (or with `NUSTERDB_FORCE_ISA=scalar`) a portable version of
//! the same tile is used. The other metrics score pair by pair with
//! `distance_unchecked`, still blocked. Large `k` costs extra (heap updates and the
//! exact re-scoring of `k` rows per query): k = 100 −8 %, k = 1 000 −45 %.
//!
//! # Filters
//! With `allow`, when the allowed set is small relative to the scan (below 1/8 of it
//! for a single search, 1/4 for rows of ≥ 256 floats, 4/5 for a batch: see
//! `SPARSE_FACTOR` and `BATCH_SPARSE` for the measurements), only the allowed live
//! slots are visited (gathered into contiguous chunks for the GEMM path); otherwise
//! the whole base is scanned and a slot's membership is checked only when its score
//! passes the threshold, which after the first `k` hits is rare.

use std::ops::Range;

use rayon::prelude::*;
use roaring::RoaringBitmap;

use super::rows::Rows;
use super::topk::{sort_results, TopK};
use super::{SearchParams, VectorIndex};
use crate::distance::{kernels, Isa};
use crate::metric::{unit_chord, DistanceMetric};

/// Queries scored together against one chunk of the base (a multiple of 16). Larger
/// blocks read the base from memory less often; measured (1 thread, 100k rows, d = 128,
/// 384, 1536): 32 → 64 → 128 → 256 gives +8 %, +3 %, +2 %.
pub const QUERY_BLOCK: usize = 256;
/// At most this many bytes of packed queries per block (caps the block for long rows;
/// at d = 1536 a full block of 256 is 1.5 MiB and still the fastest measured).
const QPACK_BYTES: usize = 4 << 20;
/// Bytes of base rows per chunk, sized to stay in L2 while every panel of the query
/// block passes over it (96–192 KiB measured equal; 384 KiB 2 % slower).
pub const CHUNK_BYTES: usize = 128 * 1024;
/// The most row memory [`FlatIndex::new`] reserves for its capacity hint, so a generous
/// hint (a `max_nb_elements` of 10⁹, say) neither claims terabytes nor shows up as such
/// in [`VectorIndex::memory_bytes`] before any vector arrives.
pub const MAX_RESERVE_BYTES: usize = 256 << 20;
/// Queries scored together by the pair-by-pair path.
const GENERIC_QUERY_BLOCK: usize = 16;
/// Below this many floats of eligible rows a single search runs on one thread.
const PAR_MIN_FLOATS: usize = 1 << 20;
/// A parallel slice of the base has at least this many floats of rows.
const PAR_PART_FLOATS: usize = 1 << 18;
/// A single search visits the `allow` set slot by slot instead of scanning when it is
/// this many times smaller than the scan (rows of ≥ 256 floats: half this factor, as
/// a long row is read as efficiently at random as in sequence). Measured, 1 thread,
/// 38.4 M floats of rows: list vs scan at |allow|/rows = 1/8 is 12.7 vs 15.3 ms (d = 16),
/// 6.3 vs 9.8 ms (d = 64); at 1/4, 4.7 vs 8.6 ms (d = 384) but 28 vs 16 ms (d = 16).
const SPARSE_FACTOR: u64 = 8;
/// A batch visits the allowed (or live) slots by list, gathering them into contiguous
/// chunks, when they are fewer than `num / den` of the scan: the gather is paid once
/// per query block, so the list wins up to ~0.85 (measured at d = 16 and 384: 1.2–1.3×
/// faster at 0.75, even at 0.9).
const BATCH_SPARSE: (u64, u64) = (4, 5);
/// Batches of fewer queries run query by query (each search is parallel itself).
const GEMM_MIN_QUERIES: usize = 2;

/// The largest squared norm a GEMM task met among the rows as scored (centred,
/// normalised for cosine).
#[derive(Clone, Copy, Debug, Default)]
struct Spread {
    r2: f32,
}

/// `q / ‖q‖` (the norm in f64); a zero vector stays zero.
fn normalise(q: &[f32]) -> Vec<f32> {
    let inv = crate::vector::inv_norm(q);
    q.iter().map(|&x| x * inv).collect()
}

/// Whether a candidate scoring `s` may enter a collector whose threshold is `thr`
/// ([`TopK::worst`], never NaN): `s ≤ thr`, or NaN (which the collector ranks last).
#[inline]
fn passes(s: f32, thr: f32) -> bool {
    s <= thr || s.is_nan()
}

/// How the scan ranks candidates (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fast {
    /// Euclidean: aux = ‖x‖².
    L2,
    /// Inner product: no aux.
    Ip,
    /// Cosine and angular: aux = 1/‖x‖ (0 for a zero vector).
    Cos,
    /// Everything else: the distance itself.
    None,
}

impl Fast {
    fn of(metric: DistanceMetric) -> Fast {
        match metric {
            DistanceMetric::Euclidean => Fast::L2,
            DistanceMetric::InnerProduct => Fast::Ip,
            DistanceMetric::Cosine | DistanceMetric::Angular => Fast::Cos,
            _ => Fast::None,
        }
    }
}

/// What turns a kept score into the reported distance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Finish {
    /// The score is the distance.
    Exact,
    /// The score is the kernel's squared L2: the distance is its square root.
    Sqrt,
    /// Recompute with `distance_unchecked`.
    Recompute,
}

/// Which slots a search visits.
enum Plan<'a> {
    /// Slots `0..end`; dead slots are skipped, `allow` is checked on candidates.
    Scan {
        end: usize,
        allow: Option<&'a RoaringBitmap>,
        /// Upper bound on eligible slots.
        bound: usize,
    },
    /// Exactly these slots (live and allowed), ascending.
    List(Vec<u32>),
}

impl Plan<'_> {
    /// Number of positions to visit (slots for `Scan`, list entries for `List`).
    fn positions(&self) -> usize {
        match self {
            Plan::Scan { end, .. } => *end,
            Plan::List(list) => list.len(),
        }
    }

    /// Upper bound on the eligible slots among `range` positions.
    fn bound(&self, range: &Range<usize>) -> usize {
        match self {
            Plan::Scan { bound, .. } => (*bound).min(range.len()),
            Plan::List(_) => range.len(),
        }
    }
}

/// The exact index. See the module docs for layout, scoring and accuracy.
#[derive(Clone)]
pub struct FlatIndex {
    dim: usize,
    metric: DistanceMetric,
    fast: Fast,
    /// The rows; `rows.as_slice().len() ≥ cap_rows · dim`.
    rows: Rows,
    /// Rows the buffer holds (live or not).
    cap_rows: usize,
    /// One past the highest live slot.
    end: usize,
    /// `live[s]`: slot `s` holds a vector. Length `cap_rows`.
    live: Vec<bool>,
    /// Per slot 1/‖x‖ (cosine/angular; computed in f64, 0 for a zero vector); length
    /// `cap_rows`, or 0 for the other metrics.
    aux: Vec<f32>,
    /// The per-dimension sum (f64) of the live rows (of the normalised rows for cosine
    /// and angular), whose mean centres the GEMM path (see the module docs); empty for
    /// the metrics without one.
    sum: Vec<f64>,
    /// Live slots.
    len: usize,
}

impl std::fmt::Debug for FlatIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlatIndex")
            .field("dim", &self.dim)
            .field("metric", &self.metric)
            .field("len", &self.len)
            .field("end", &self.end)
            .field("cap_rows", &self.cap_rows)
            .finish()
    }
}

impl FlatIndex {
    /// An empty index. `capacity_hint` rows (at most [`MAX_RESERVE_BYTES`] of them) are
    /// reserved up front if the allocator agrees (a reservation that fails is skipped,
    /// never an abort); the index grows past it by doubling.
    pub fn new(dim: usize, metric: DistanceMetric, capacity_hint: usize) -> Self {
        let fast = Fast::of(metric);
        let mut live = Vec::new();
        let mut aux = Vec::new();
        let capacity_hint = capacity_hint.min(MAX_RESERVE_BYTES / (4 * dim.max(1)));
        let hint_floats = capacity_hint.saturating_mul(dim);
        let rows = Rows::with_capacity_hint(hint_floats);
        if rows.reserved(hint_floats) {
            // Small next to the rows; failures here only mean growing later.
            let _ = live.try_reserve_exact(capacity_hint);
            if fast == Fast::Cos {
                let _ = aux.try_reserve_exact(capacity_hint);
            }
        }
        Self {
            dim,
            metric,
            fast,
            rows,
            cap_rows: 0,
            end: 0,
            live,
            aux,
            sum: if fast != Fast::None {
                vec![0.0; dim]
            } else {
                Vec::new()
            },
            len: 0,
        }
    }

    /// An index over `rows` — a seal's rows by slot, mapped in place or copied
    /// (`segment::vectors::map_rows`) — whose live slots are `live` (ascending; slots
    /// past the rows are skipped). Reads every live row once (1/‖x‖ under cosine and
    /// angular, the running sum), writes none.
    pub(crate) fn from_rows(dim: usize, metric: DistanceMetric, rows: Rows, live: &[u32]) -> Self {
        let mut ix = Self::new(dim, metric, 0);
        let cap_rows = rows.as_slice().len().checked_div(dim).unwrap_or(0);
        ix.rows = rows;
        ix.cap_rows = cap_rows;
        ix.live = vec![false; cap_rows];
        if ix.fast == Fast::Cos {
            ix.aux = vec![0.0; cap_rows];
        }
        for &s in live {
            let s = s as usize;
            if s >= cap_rows || ix.live[s] {
                continue;
            }
            if ix.fast == Fast::Cos {
                ix.aux[s] = crate::vector::inv_norm(ix.row(s));
            }
            ix.account(s, 1.0);
            ix.live[s] = true;
            ix.len += 1;
            ix.end = s + 1;
        }
        ix
    }

    /// The mean of the live rows (normalised rows for cosine and angular; zeros before
    /// any row, and for the metrics without a GEMM path).
    fn center(&self) -> Vec<f32> {
        let n = self.len.max(1) as f64;
        let mut c: Vec<f32> = self.sum.iter().map(|&s| (s / n) as f32).collect();
        c.resize(self.dim, 0.0);
        c
    }

    /// Adds (`sign` 1.0) or takes away (−1.0) the row of `slot` (normalised for
    /// cosine and angular: its `aux` must be set) from the running sum.
    fn account(&mut self, slot: usize, sign: f64) {
        let scale = match self.fast {
            Fast::L2 | Fast::Ip => 1.0,
            Fast::Cos => f64::from(self.aux[slot]),
            Fast::None => return,
        };
        let d = self.dim;
        let row = &self.rows.as_slice()[slot * d..(slot + 1) * d];
        for (s, &x) in self.sum.iter_mut().zip(row) {
            *s += sign * scale * f64::from(x);
        }
    }

    /// All row storage as floats (`cap_rows · dim` of them are rows).
    #[inline]
    fn data(&self) -> &[f32] {
        self.rows.as_slice()
    }

    /// All row storage as mutable floats.
    #[inline]
    fn data_mut(&mut self) -> &mut [f32] {
        self.rows.as_mut_slice()
    }

    /// The row of `slot` (which must be `< cap_rows`), live or not.
    #[inline]
    fn row(&self, slot: usize) -> &[f32] {
        &self.data()[slot * self.dim..(slot + 1) * self.dim]
    }

    /// Grows the buffers so `slot` fits, at least doubling.
    fn ensure_slot(&mut self, slot: usize) {
        if slot < self.cap_rows {
            return;
        }
        let target = (slot + 1).max(self.cap_rows.saturating_mul(2)).max(16);
        // The rows fill whole blocks: use the room past `target` too.
        let cap_rows = (self.rows.resize(target * self.dim))
            .checked_div(self.dim)
            .unwrap_or(target);
        self.cap_rows = cap_rows;
        self.live.resize(cap_rows, false);
        if self.fast == Fast::Cos {
            self.aux.resize(cap_rows, 0.0);
        }
    }

    /// What a search over `allow` visits. `batch`: also turn a sparse live set into a
    /// list (the GEMM path computes dead rows; a single scan just skips them).
    fn plan<'a>(&self, allow: Option<&'a RoaringBitmap>, batch: bool) -> Plan<'a> {
        let end = self.end;
        let sparse = |n: u64| {
            if batch {
                n.saturating_mul(BATCH_SPARSE.1) < (end as u64).saturating_mul(BATCH_SPARSE.0)
            } else if self.dim >= 256 {
                n.saturating_mul(SPARSE_FACTOR / 2) < end as u64
            } else {
                n.saturating_mul(SPARSE_FACTOR) < end as u64
            }
        };
        match allow {
            Some(a) if sparse(a.len()) => Plan::List(
                a.iter()
                    .take_while(|&s| (s as usize) < end)
                    .filter(|&s| self.live[s as usize])
                    .collect(),
            ),
            Some(a) => Plan::Scan {
                end,
                allow,
                bound: usize::try_from(a.len()).unwrap_or(usize::MAX).min(self.len),
            },
            None if batch && sparse(self.len as u64) => Plan::List(
                (0..end)
                    .filter(|&s| self.live[s])
                    .map(|s| s as u32)
                    .collect(),
            ),
            None => Plan::Scan {
                end,
                allow: None,
                bound: self.len,
            },
        }
    }

    /// Offers every eligible slot among `range` positions of `plan` to `top`, ranked
    /// by `score(row, slot)`.
    #[inline]
    fn scan_with<F>(&self, plan: &Plan<'_>, range: Range<usize>, top: &mut TopK, score: F)
    where
        F: Fn(&[f32], usize) -> f32,
    {
        match plan {
            Plan::Scan { allow, .. } => {
                let live = &self.live[range.clone()];
                for (slot, &alive) in range.zip(live) {
                    if !alive {
                        continue;
                    }
                    let s = score(self.row(slot), slot);
                    if passes(s, top.worst()) && allow.is_none_or(|a| a.contains(slot as u32)) {
                        top.push(s, slot as u32);
                    }
                }
            }
            Plan::List(list) => {
                for &slot in &list[range] {
                    let s = score(self.row(slot as usize), slot as usize);
                    if passes(s, top.worst()) {
                        top.push(s, slot);
                    }
                }
            }
        }
    }

    /// One query against `range` positions of `plan`, pair by pair; returns how the
    /// kept scores become distances.
    /// `q` as prepared for the scan (normalised for cosine and angular), `original` as
    /// given.
    fn scan_one(
        &self,
        (q, original): (&[f32], &[f32]),
        plan: &Plan<'_>,
        range: Range<usize>,
        top: &mut TopK,
    ) -> Finish {
        let k = kernels();
        match self.fast {
            Fast::L2 => {
                let f = k.l2_squared;
                self.scan_with(plan, range, top, |x, _| f(q, x));
                Finish::Sqrt
            }
            Fast::Ip => {
                let f = k.dot;
                self.scan_with(plan, range, top, |x, _| -f(q, x));
                Finish::Exact
            }
            Fast::Cos => {
                // `q` is normalised (see `search`): ‖q̂ − x/‖x‖‖² = 2 − 2·cos, a
                // difference that keeps its precision for nearly parallel vectors where
                // −q̂·x/‖x‖ would not (see the module docs); 2 for a zero row (cos = 0).
                let aux = &self.aux;
                if q.iter().all(|&x| x == 0.0) {
                    // The zero query: cos = 0 with every row, an exact tie (the slot
                    // decides), which rounding in ‖0 − x/‖x‖‖² would break at random.
                    self.scan_with(plan, range, top, |_, _| 1.0);
                } else {
                    self.scan_with(plan, range, top, |x, s| match aux[s] {
                        0.0 => 2.0,
                        inv => unit_chord(q, original, x, inv),
                    });
                }
                Finish::Recompute
            }
            Fast::None => {
                let m = self.metric;
                self.scan_with(plan, range, top, |x, _| m.distance_unchecked(q, x));
                Finish::Exact
            }
        }
    }

    /// How `scan_one` finishes, without scanning.
    fn scan_finish(&self) -> Finish {
        match self.fast {
            Fast::L2 => Finish::Sqrt,
            Fast::Ip | Fast::None => Finish::Exact,
            Fast::Cos => Finish::Recompute,
        }
    }

    /// The sorted results of one query from its collector.
    fn finish(&self, q: &[f32], top: TopK, how: Finish) -> Vec<(u32, f32)> {
        let mut v = top.into_sorted_vec();
        match how {
            Finish::Exact => return v,
            Finish::Sqrt => v.iter_mut().for_each(|(_, d)| *d = d.sqrt()),
            Finish::Recompute => {
                let m = self.metric;
                for (slot, d) in &mut v {
                    *d = m.distance_unchecked(q, self.row(*slot as usize));
                }
            }
        }
        sort_results(&mut v);
        v
    }

    /// Splits `0..n` positions into `parts` near-equal ranges.
    fn split(n: usize, parts: usize) -> impl Iterator<Item = Range<usize>> {
        let parts = parts.max(1);
        (0..parts).map(move |i| (n * i / parts)..(n * (i + 1) / parts))
    }

    /// Whether the AVX2+FMA micro-kernel may run (and is wanted: forcing the scalar
    /// kernels turns it off too).
    fn gemm_isa() -> gemm::Isa {
        if kernels().isa == Isa::Scalar {
            gemm::Isa::portable()
        } else {
            gemm::Isa::detect()
        }
    }

    /// The queries `qrange` of `qs` against `prange` positions of `plan` by the GEMM
    /// micro-kernel: one collector per query.
    fn block_gemm(
        &self,
        isa: gemm::Isa,
        qs: &[f32],
        qrange: Range<usize>,
        plan: &Plan<'_>,
        (prange, k, center): (Range<usize>, usize, &[f32]),
    ) -> (Vec<TopK>, Spread) {
        use gemm::NR;
        let mut spread = Spread::default();
        let d = self.dim;
        let nqb = qrange.len();
        let bound = plan.bound(&prange);
        let mut tops: Vec<TopK> = (0..nqb).map(|_| TopK::new(k, bound)).collect();
        let panels = nqb.div_ceil(NR);
        // Scores are taken relative to the mean of the rows, `μ` (of the normalised rows
        // for cosine): ‖x−μ‖² − 2(q−μ)·(x−μ) orders like ‖q−x‖², −q·(x−μ) like −q·x and
        // −q̂·(x̂−μ) like −cos, and their rounding error scales with the data's spread
        // instead of its distance from the origin (see the module docs). Only the
        // metrics with a matrix form get here, so there is always a centre.
        // Queries packed [panel][dim][16], padded with zeros: centred for euclidean,
        // normalised for cosine.
        let mut qpack = vec![0.0f32; panels * d * NR];
        for (j, qi) in qrange.clone().enumerate() {
            let q = &qs[qi * d..(qi + 1) * d];
            let inv = if self.fast == Fast::Cos {
                crate::vector::inv_norm(q)
            } else {
                1.0
            };
            let panel = &mut qpack[(j / NR) * d * NR..(j / NR + 1) * d * NR];
            for (t, &v) in q.iter().enumerate() {
                panel[t * NR + j % NR] = if self.fast == Fast::L2 {
                    v - center[t]
                } else {
                    v * inv
                };
            }
        }
        let mut thr = vec![[f32::INFINITY; NR]; panels];
        let lanes = |p: usize| -> u16 {
            let n = (nqb - p * NR).min(NR);
            if n == NR {
                u16::MAX
            } else {
                (1u16 << n) - 1
            }
        };
        let chunk_rows = (CHUNK_BYTES / (4 * d.max(1)) / gemm::MR * gemm::MR).max(gemm::MR);
        let mut gathered: Vec<f32> = Vec::new();
        let mut base = vec![0.0f32; chunk_rows];
        let mut scale = vec![0.0f32; chunk_rows];
        let mut start = prange.start;
        while start < prange.end {
            let stop = (start + chunk_rows).min(prange.end);
            let cnt = stop - start;
            // The chunk's rows, centred (normalised first for cosine): one pass per
            // value, paid once for the whole query block. And the slot of its row r.
            let slots = match plan {
                Plan::Scan { .. } => None,
                Plan::List(list) => Some(&list[start..stop]),
            };
            let slot_at = |r: usize| -> usize { slots.map_or(start + r, |l| l[r] as usize) };
            gathered.clear();
            for r in 0..cnt {
                let s = slot_at(r);
                let scale = if self.fast == Fast::Cos {
                    self.aux[s]
                } else {
                    1.0
                };
                let row = self.row(s);
                gathered.extend(row.iter().zip(center).map(|(&x, &m)| x * scale - m));
            }
            let (rows, list): (&[f32], Option<&[u32]>) = (&gathered[..], slots);
            let slot_of = |r: usize| -> u32 {
                match list {
                    Some(l) => l[r],
                    None => (start + r) as u32,
                }
            };
            for r in 0..cnt {
                let n2 = (kernels().norm_squared)(&rows[r * d..(r + 1) * d]);
                spread.r2 = spread.r2.max(n2);
                (base[r], scale[r]) = match self.fast {
                    Fast::L2 => (n2, -2.0),
                    Fast::Ip | Fast::Cos => (0.0, -1.0),
                    Fast::None => (0.0, 0.0),
                };
            }
            for (p, thr) in thr.iter_mut().enumerate() {
                let panel = &qpack[p * d * NR..(p + 1) * d * NR];
                let tops = &mut tops[p * NR..];
                let mut on_hit = |r: usize, lane: usize, score: f32, thr: &mut [f32; NR]| {
                    let slot = slot_of(r);
                    if let Plan::Scan { allow, .. } = plan {
                        if !self.live[slot as usize] || !allow.is_none_or(|a| a.contains(slot)) {
                            return;
                        }
                    }
                    let t = &mut tops[lane];
                    t.push(score, slot);
                    thr[lane] = t.worst();
                };
                isa.panel(
                    rows,
                    cnt,
                    d,
                    panel,
                    &base[..cnt],
                    &scale[..cnt],
                    thr,
                    lanes(p),
                    p == 0,
                    &mut on_hit,
                );
            }
            start = stop;
        }
        (tops, spread)
    }

    /// Whether the GEMM path's answer `got` for `q` (k wanted) may have missed a
    /// candidate by more than rounding: its worst-case error band (see the module docs)
    /// is wider than 1/256 of the k-th distance. The query is then answered by the
    /// single-query scan, whose scores do not have the matrix form's cancellation.
    fn gemm_unsure(
        &self,
        q: &[f32],
        got: &[(u32, f32)],
        k: usize,
        center: &[f32],
        sp: Spread,
    ) -> bool {
        let Some(&(_, kth)) = got.last().filter(|_| got.len() >= k) else {
            // Fewer than k: every eligible row was returned.
            return false;
        };
        let gamma = (self.dim as f64 + 2.0) * f64::from(f32::EPSILON) / 2.0;
        let r = f64::from(sp.r2).sqrt();
        let tau = 1.0 / 256.0;
        match self.fast {
            Fast::L2 => {
                let qc: f64 = q
                    .iter()
                    .zip(center)
                    .map(|(&x, &m)| (f64::from(x) - f64::from(m)).powi(2))
                    .sum::<f64>()
                    .sqrt();
                let band = gamma * (qc + r).powi(2);
                let dk = f64::from(kth).powi(2);
                dk > 0.0 && 2.0 * band > tau * dk
            }
            Fast::Cos => {
                let gap = if self.metric == DistanceMetric::Angular {
                    1.0 - (f64::from(kth) * std::f64::consts::PI).cos()
                } else {
                    f64::from(kth)
                };
                let band = gamma * r + 3.0 * f64::from(f32::EPSILON);
                gap > 0.0 && 2.0 * band > tau * gap
            }
            // The single scan's band at the k-th row is γ·Σ|qᵢxᵢ| ≤ γ‖q‖‖x‖; the matrix
            // form's is γ‖q‖R. More than 4 times wider (rows much nearer the origin
            // than their mean): recompute.
            Fast::Ip => {
                let slot = got.last().map_or(0, |&(s, _)| s as usize);
                let xk = crate::vector::norm_f64(self.row(slot));
                r > 4.0 * xk
            }
            Fast::None => false,
        }
    }

    /// The queries `qrange` of `qs` against `prange` positions of `plan`, pair by pair,
    /// chunk by chunk.
    fn block_generic(
        &self,
        qs: &[f32],
        qrange: Range<usize>,
        plan: &Plan<'_>,
        prange: Range<usize>,
        k: usize,
    ) -> Vec<TopK> {
        let d = self.dim;
        let bound = plan.bound(&prange);
        let mut tops: Vec<TopK> = qrange.clone().map(|_| TopK::new(k, bound)).collect();
        let chunk_rows = (CHUNK_BYTES / (4 * d.max(1))).max(1);
        let mut start = prange.start;
        while start < prange.end {
            let stop = (start + chunk_rows).min(prange.end);
            for (qi, top) in qrange.clone().zip(&mut tops) {
                let q = &qs[qi * d..(qi + 1) * d];
                self.scan_one((q, q), plan, start..stop, top);
            }
            start = stop;
        }
        tops
    }
}

impl VectorIndex for FlatIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> DistanceMetric {
        self.metric
    }

    fn len(&self) -> usize {
        self.len
    }

    fn insert(&mut self, slot: u32, v: &[f32]) {
        debug_assert_eq!(v.len(), self.dim, "insert: wrong dimension");
        let s = slot as usize;
        self.ensure_slot(s);
        if self.live[s] {
            self.account(s, -1.0);
        }
        let d = self.dim;
        let row = &mut self.data_mut()[s * d..(s + 1) * d];
        let n = v.len().min(d);
        row[..n].copy_from_slice(&v[..n]);
        row[n..].fill(0.0);
        if self.fast == Fast::Cos {
            // In f64: a row's ‖x‖² under- or overflows f32 long before ‖x‖ does.
            self.aux[s] = crate::vector::inv_norm(self.row(s));
        }
        self.account(s, 1.0);
        if !self.live[s] {
            self.live[s] = true;
            self.len += 1;
        }
        self.end = self.end.max(s + 1);
    }

    fn remove(&mut self, slot: u32) {
        let s = slot as usize;
        if s < self.end && self.live[s] {
            self.account(s, -1.0);
            self.live[s] = false;
            self.len -= 1;
            if self.len == 0 {
                // Start the running sum afresh rather than keep its rounding residue.
                self.sum.fill(0.0);
            }
            while self.end > 0 && !self.live[self.end - 1] {
                self.end -= 1;
            }
        }
    }

    fn get(&self, slot: u32) -> Option<&[f32]> {
        let s = slot as usize;
        (s < self.end && self.live[s]).then(|| self.row(s))
    }

    fn slot_row(&self, slot: u32) -> Option<&[f32]> {
        let s = slot as usize;
        (s < self.cap_rows).then(|| self.row(s))
    }

    fn search(
        &self,
        q: &[f32],
        k: usize,
        allow: Option<&RoaringBitmap>,
        _p: &SearchParams,
    ) -> Vec<(u32, f32)> {
        if k == 0 || self.len == 0 || q.len() != self.dim {
            return Vec::new();
        }
        let plan = self.plan(allow, false);
        let n = plan.positions();
        let all = 0..n;
        if plan.bound(&all) == 0 {
            return Vec::new();
        }
        let threads = rayon::current_num_threads();
        let work = n.saturating_mul(self.dim.max(1));
        let how = self.scan_finish();
        let original = q;
        let normalised;
        let q = if self.fast == Fast::Cos {
            normalised = normalise(q);
            &normalised[..]
        } else {
            q
        };
        let top = if threads > 1 && work >= PAR_MIN_FLOATS {
            let parts = (work / PAR_PART_FLOATS).clamp(1, 2 * threads);
            let ranges: Vec<Range<usize>> = Self::split(n, parts).collect();
            ranges
                .into_par_iter()
                .map(|r| {
                    let mut t = TopK::new(k, plan.bound(&r));
                    self.scan_one((q, original), &plan, r, &mut t);
                    t
                })
                .reduce_with(|mut a, b| {
                    a.merge(b);
                    a
                })
                .unwrap_or_else(|| TopK::new(k, 0))
        } else {
            let mut t = TopK::new(k, plan.bound(&all));
            self.scan_one((q, original), &plan, all, &mut t);
            t
        };
        self.finish(original, top, how)
    }

    /// Each query block streams the whole matrix once: pieces of fewer than a block
    /// per thread would stream it more often.
    fn batch_granularity(&self) -> usize {
        QUERY_BLOCK * rayon::current_num_threads().max(1)
    }

    fn batch_search(
        &self,
        qs: &[f32],
        k: usize,
        allow: Option<&RoaringBitmap>,
        p: &SearchParams,
    ) -> Vec<Vec<(u32, f32)>> {
        let d = self.dim;
        if d == 0 {
            return Vec::new();
        }
        let nq = qs.len() / d;
        if k == 0 || self.len == 0 || nq == 0 {
            return vec![Vec::new(); nq];
        }
        let qs = &qs[..nq * d];
        if nq < GEMM_MIN_QUERIES {
            return qs
                .chunks_exact(d)
                .map(|q| self.search(q, k, allow, p))
                .collect();
        }
        let plan = self.plan(allow, true);
        let n = plan.positions();
        if plan.bound(&(0..n)) == 0 {
            return vec![Vec::new(); nq];
        }
        let use_gemm = self.fast != Fast::None;
        let isa = Self::gemm_isa();
        let threads = rayon::current_num_threads().max(1);
        let (qb, step) = if use_gemm {
            // Long queries: fewer per block, so the packed block stays ≤ QPACK_BYTES.
            let fit = (QPACK_BYTES / (4 * d)) / gemm::NR * gemm::NR;
            (QUERY_BLOCK.min(fit.max(gemm::NR)), gemm::NR)
        } else {
            (GENERIC_QUERY_BLOCK, 1)
        };
        let qb = qb.min(nq.div_ceil(threads).next_multiple_of(step));
        let blocks = nq.div_ceil(qb);
        let max_splits = (n.saturating_mul(d) / PAR_PART_FLOATS).max(1);
        let splits = if blocks >= threads {
            1
        } else {
            threads.div_ceil(blocks).min(max_splits)
        };
        let pranges: Vec<Range<usize>> = Self::split(n, splits).collect();
        let items: Vec<(usize, usize)> = (0..blocks)
            .flat_map(|b| (0..splits).map(move |s| (b, s)))
            .collect();
        let center = if use_gemm { self.center() } else { Vec::new() };
        let partial: Vec<(Vec<TopK>, Spread)> = items
            .into_par_iter()
            .map(|(b, s)| {
                let qrange = b * qb..((b + 1) * qb).min(nq);
                let prange = pranges[s].clone();
                if use_gemm {
                    self.block_gemm(isa, qs, qrange, &plan, (prange, k, &center))
                } else {
                    (
                        self.block_generic(qs, qrange, &plan, prange, k),
                        Spread::default(),
                    )
                }
            })
            .collect();
        let spread = partial
            .iter()
            .fold(Spread::default(), |a, (_, b)| Spread { r2: a.r2.max(b.r2) });
        let partial: Vec<Vec<TopK>> = partial.into_iter().map(|(t, _)| t).collect();
        // Merge the base slices of each block, in query order.
        let mut tops: Vec<TopK> = Vec::with_capacity(nq);
        let mut partial = partial.into_iter();
        for _ in 0..blocks {
            let mut first = partial.next().unwrap_or_default();
            for _ in 1..splits {
                for (t, other) in first.iter_mut().zip(partial.next().unwrap_or_default()) {
                    t.merge(other);
                }
            }
            tops.append(&mut first);
        }
        let how = if use_gemm {
            Finish::Recompute
        } else {
            self.scan_finish()
        };
        tops.into_par_iter()
            .enumerate()
            .map(|(i, t)| {
                let q = &qs[i * d..(i + 1) * d];
                let got = self.finish(q, t, how);
                if use_gemm && self.gemm_unsure(q, &got, k, &center, spread) {
                    self.search(q, k, allow, p)
                } else {
                    got
                }
            })
            .collect()
    }

    fn memory_bytes(&self) -> usize {
        self.memory_parts().iter().map(|p| p.1).sum()
    }

    fn mapped_bytes(&self) -> usize {
        self.rows.mapped_bytes()
    }

    fn mapped_ranges(&self) -> Vec<(usize, usize)> {
        self.rows.mapped_range().into_iter().collect()
    }

    fn memory_parts(&self) -> Vec<(&'static str, usize)> {
        // Everything a flat index holds is per row: the rows, their liveness and the
        // per-row terms of the scan.
        let vectors = std::mem::size_of::<Self>()
            + self.rows.capacity_bytes()
            + self.live.capacity()
            + self.aux.capacity() * std::mem::size_of::<f32>()
            + self.sum.capacity() * std::mem::size_of::<f64>();
        vec![("vectors", vectors)]
    }
}

/// The matrix-multiplication micro-kernel of batch search: scores of `MR` base rows ×
/// `NR` queries per tile, each compared with its query's threshold on the spot.
///
/// Inputs of [`Isa::panel`]: `rows` holds `cnt` rows of `d` floats; `qp` holds 16
/// queries packed `[d][16]`; the score of row `r` for lane `j` is
/// `base[r] + scale[r] · (row r · query j)` (one FMA after the dot product); `thr[j]` is
/// query `j`'s rejection threshold; lanes outside `lanes` (padding) are ignored. Every
/// score with `!(score > thr[j])` (NaN included) is handed to `hit(r, j, score, thr)`,
/// which may lower `thr`; later tiles see the new thresholds.
mod gemm {
    /// Base rows per tile.
    pub(super) const MR: usize = 6;
    /// Queries per tile (two 8-lane vectors).
    pub(super) const NR: usize = 16;

    /// Which implementation of the micro-kernel runs. Constructed only by detection, so
    /// holding `avx2: true` proves the CPU has AVX2 and FMA.
    #[derive(Clone, Copy, Debug)]
    pub(super) struct Isa {
        #[cfg(target_arch = "x86_64")]
        avx2: bool,
    }

    impl Isa {
        /// The portable version.
        pub(super) fn portable() -> Isa {
            Isa {
                #[cfg(target_arch = "x86_64")]
                avx2: false,
            }
        }

        /// The best version this CPU runs.
        pub(super) fn detect() -> Isa {
            Isa {
                #[cfg(target_arch = "x86_64")]
                avx2: std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma"),
            }
        }

        /// Runs the tiles of one chunk against one packed panel of queries (see the
        /// module docs for the contract). `prefetch`: fetch each next tile's rows while
        /// computing this one — for the first panel over a chunk, which reads it from
        /// memory (1 thread, 16 queries: 617 → 977 QPS; 64 queries: +25 %).
        #[allow(clippy::too_many_arguments)]
        #[inline]
        pub(super) fn panel<F>(
            self,
            rows: &[f32],
            cnt: usize,
            d: usize,
            qp: &[f32],
            base: &[f32],
            scale: &[f32],
            thr: &mut [f32; NR],
            lanes: u16,
            prefetch: bool,
            hit: &mut F,
        ) where
            F: FnMut(usize, usize, f32, &mut [f32; NR]),
        {
            // Checked once here so the kernels' unchecked reads stay in bounds.
            assert!(
                rows.len() >= cnt * d
                    && qp.len() >= d * NR
                    && base.len() >= cnt
                    && scale.len() >= cnt,
                "gemm panel: inputs shorter than their shape"
            );
            #[cfg(target_arch = "x86_64")]
            if self.avx2 {
                // SAFETY: `avx2` is only true when detection found AVX2 and FMA; the
                // lengths were checked above.
                unsafe { avx2::panel(rows, cnt, d, qp, base, scale, thr, lanes, prefetch, hit) };
                return;
            }
            let _ = prefetch;
            portable::panel(rows, cnt, d, qp, base, scale, thr, lanes, hit);
        }
    }

    /// Hands every set bit of `mask` (bit `r·16 + j`) to `hit`.
    #[inline]
    fn report<F>(mut mask: u128, r0: usize, out: &[f32; MR * NR], thr: &mut [f32; NR], hit: &mut F)
    where
        F: FnMut(usize, usize, f32, &mut [f32; NR]),
    {
        while mask != 0 {
            let b = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            hit(r0 + b / NR, b % NR, out[b], thr);
        }
    }

    /// `lanes` repeated for each of the `MR` rows of a tile mask.
    #[inline]
    fn lane_mask(lanes: u16) -> u128 {
        (0..MR).fold(0u128, |m, r| m | (u128::from(lanes) << (r * NR)))
    }

    mod portable {
        use super::{lane_mask, report, MR, NR};

        /// One tile of `R ≤ MR` rows starting at `x`.
        #[inline]
        #[allow(clippy::too_many_arguments)]
        fn tile<const R: usize>(
            x: &[f32],
            d: usize,
            qp: &[f32],
            base: &[f32],
            scale: &[f32],
            thr: &[f32; NR],
            out: &mut [f32; MR * NR],
        ) -> u128 {
            let mut acc = [[0.0f32; NR]; R];
            for (t, b) in qp.chunks_exact(NR).take(d).enumerate() {
                for (r, acc) in acc.iter_mut().enumerate() {
                    let a = x[r * d + t];
                    for (c, &bv) in acc.iter_mut().zip(b) {
                        *c += a * bv;
                    }
                }
            }
            let mut mask = 0u128;
            for (r, acc) in acc.iter().enumerate() {
                for (j, &dot) in acc.iter().enumerate() {
                    let s = base[r] + scale[r] * dot;
                    out[r * NR + j] = s;
                    if super::super::passes(s, thr[j]) {
                        mask |= 1u128 << (r * NR + j);
                    }
                }
            }
            mask
        }

        #[allow(clippy::too_many_arguments)]
        pub(super) fn panel<F>(
            rows: &[f32],
            cnt: usize,
            d: usize,
            qp: &[f32],
            base: &[f32],
            scale: &[f32],
            thr: &mut [f32; NR],
            lanes: u16,
            hit: &mut F,
        ) where
            F: FnMut(usize, usize, f32, &mut [f32; NR]),
        {
            let lm = lane_mask(lanes);
            let mut out = [0.0f32; MR * NR];
            let mut r = 0;
            while r < cnt {
                let x = &rows[r * d..];
                let (b, s) = (&base[r..], &scale[r..]);
                let m = match cnt - r {
                    1 => tile::<1>(x, d, qp, b, s, thr, &mut out),
                    2 => tile::<2>(x, d, qp, b, s, thr, &mut out),
                    3 => tile::<3>(x, d, qp, b, s, thr, &mut out),
                    4 => tile::<4>(x, d, qp, b, s, thr, &mut out),
                    5 => tile::<5>(x, d, qp, b, s, thr, &mut out),
                    _ => tile::<MR>(x, d, qp, b, s, thr, &mut out),
                };
                report(m & lm, r, &out, thr, hit);
                r += MR;
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    mod avx2 {
        use std::arch::x86_64::*;

        use super::{lane_mask, report, MR, NR};

        /// One tile of `R ≤ MR` rows starting at `x`: 2·R accumulators of 8 lanes.
        ///
        /// # Safety
        /// AVX2 and FMA are available; `x` is valid for `R` rows of `d` floats, `qp`
        /// for `d · 16` floats, `base` and `scale` for `R` floats.
        #[inline]
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn tile<const R: usize>(
            x: *const f32,
            d: usize,
            qp: *const f32,
            base: *const f32,
            scale: *const f32,
            thr: &[f32; NR],
            out: &mut [f32; MR * NR],
            pf: Option<*const f32>,
        ) -> u128 {
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            for t in 0..d {
                if let Some(pf) = pf {
                    if t % 16 == 0 {
                        // One cache line of each of the next tile's rows per 16 steps:
                        // the whole next tile arrives while this one computes. A
                        // prefetch never faults, so addresses past the chunk are fine.
                        for r in 0..MR {
                            let line = pf.wrapping_add(r * d + t).cast::<i8>();
                            _mm_prefetch::<_MM_HINT_T0>(line);
                        }
                    }
                }
                // SAFETY: t < d, so these reads are inside `qp`'s d·16 floats and row
                // r's d floats (r < R), per the caller's contract.
                unsafe {
                    let b0 = _mm256_loadu_ps(qp.add(t * NR));
                    let b1 = _mm256_loadu_ps(qp.add(t * NR + 8));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let a = _mm256_broadcast_ss(&*x.add(r * d + t));
                        acc[0] = _mm256_fmadd_ps(a, b0, acc[0]);
                        acc[1] = _mm256_fmadd_ps(a, b1, acc[1]);
                    }
                }
            }
            // SAFETY: `thr` holds 16 floats: two loads of 8.
            let (t0, t1) = unsafe {
                (
                    _mm256_loadu_ps(thr.as_ptr()),
                    _mm256_loadu_ps(thr.as_ptr().add(8)),
                )
            };
            let mut mask = 0u128;
            for (r, acc) in acc.iter().enumerate() {
                // SAFETY: r < R, inside `base` and `scale` per the caller's contract;
                // `out` has MR·16 ≥ (r + 1)·16 floats.
                unsafe {
                    let sc = _mm256_set1_ps(*scale.add(r));
                    let bs = _mm256_set1_ps(*base.add(r));
                    let s0 = _mm256_fmadd_ps(acc[0], sc, bs);
                    let s1 = _mm256_fmadd_ps(acc[1], sc, bs);
                    _mm256_storeu_ps(out.as_mut_ptr().add(r * NR), s0);
                    _mm256_storeu_ps(out.as_mut_ptr().add(r * NR + 8), s1);
                    let m0 = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NGT_UQ>(s0, t0)) as u32;
                    let m1 = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NGT_UQ>(s1, t1)) as u32;
                    mask |= u128::from(m0 | (m1 << 8)) << (r * NR);
                }
            }
            mask
        }

        /// # Safety
        /// AVX2 and FMA are available; the lengths were checked by `Isa::panel`.
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = "avx2,fma")]
        pub(super) unsafe fn panel<F>(
            rows: &[f32],
            cnt: usize,
            d: usize,
            qp: &[f32],
            base: &[f32],
            scale: &[f32],
            thr: &mut [f32; NR],
            lanes: u16,
            prefetch: bool,
            hit: &mut F,
        ) where
            F: FnMut(usize, usize, f32, &mut [f32; NR]),
        {
            let lm = lane_mask(lanes);
            let mut out = [0.0f32; MR * NR];
            let (x, q, b, s) = (rows.as_ptr(), qp.as_ptr(), base.as_ptr(), scale.as_ptr());
            let mut r = 0;
            while r < cnt {
                // SAFETY: rows r.. exist (r < cnt, `rows` holds cnt·d floats, `base` and
                // `scale` cnt), and each tile reads min(MR, cnt − r) rows.
                let pf = prefetch.then(|| x.wrapping_add((r + MR) * d));
                let m = unsafe {
                    let (x, b, s) = (x.add(r * d), b.add(r), s.add(r));
                    match cnt - r {
                        1 => tile::<1>(x, d, q, b, s, thr, &mut out, pf),
                        2 => tile::<2>(x, d, q, b, s, thr, &mut out, pf),
                        3 => tile::<3>(x, d, q, b, s, thr, &mut out, pf),
                        4 => tile::<4>(x, d, q, b, s, thr, &mut out, pf),
                        5 => tile::<5>(x, d, q, b, s, thr, &mut out, pf),
                        _ => tile::<MR>(x, d, q, b, s, thr, &mut out, pf),
                    }
                };
                report(m & lm, r, &out, thr, hit);
                r += MR;
            }
        }
    }
}
