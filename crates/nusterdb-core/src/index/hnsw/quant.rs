//! 8-bit (SQ8) or 4-bit (SQ4) codes of the rows for graph traversal — or 1-bit RaBitQ
//! codes ([`super::rabitq`], which shares the centre and the scorer) — and the scorers
//! the search and the build run on.
//!
//! # Centring
//! Rows are coded relative to a per-dimension centre `μ`, the mean of the rows: a
//! common offset (every component near 100, as pixel intensities or sensor readings
//! have) and constant columns vanish before anything is rounded. Without it the
//! codes' per-row range was set by the offset, and the scores below were differences
//! of terms ~10⁷ for distances ~10: on 384-d rows spread ±0.1 around 100, the walk
//! found 39 % of the true neighbours where the full-precision walk found 99 %.
//! `μ` is recomputed, and every row re-coded, whenever the number of coded rows has
//! doubled since the last time (at 1, 2, 4, 8, … rows: amortised, each row is coded
//! about twice), so it follows the data as it grows or drifts. It is saved in the graph
//! file, so a loaded index codes its rows exactly as the saved one did. RaBitQ codes
//! rows against the nearest of centroids trained at the same moments and saved with the
//! codes (`rabitq.rs`).
//!
//! # Codes
//! Each centred row `x' = x − μ` is stored as `dim` bytes `c_i = round((x'_i − a) / b)`
//! with `a = min x'`, `b = (max x' − min x') / 255`, so `x̂_i = a + b·c_i` is within
//! `b/2` of `x'_i`. Per row `a`, `b`, `Σc` and `b²·Σc²` are kept. A query `p` (centred
//! for euclidean, as given for the others) is coded the same way once per search:
//! `p̃_i = pa + pb·d_i` (for cosine, rows and query are normalised first).
//!
//! With 4 bits (`quantization="sq4"`) a row's step is `(max x' − min x') / 15` and its
//! codes are packed two to a byte in blocks of 64 components (byte `j` of block `k`:
//! component `64k + j` in the low nibble, `64k + 32 + j` in the high one), the layout the
//! `dot_u8u4` kernel unpacks with two masks; the query keeps 8-bit codes, so only the
//! rows' rounding is coarser. Every formula below is unchanged.
//!
//! # Scores
//! - Euclidean scores the difference of the two coded vectors directly,
//!   `‖p̃ − x̂‖² = n·Δ² + pb²Σd² + b²Σc² + 2Δ(pb·Σd − b·Σc) − 2·pb·b·(d·c)` with
//!   `Δ = pa − a`: every term is of the size of the rows' spread, not of their
//!   magnitude, so near neighbours are told apart even far from the origin.
//! - Inner product: `−q·x = −(q·x' + q·μ)` with `q·x̂' = a·Σq + b·(qa·Σc + qb·(d·c))`;
//!   `q·μ` is the same for every row but is kept, so the scores are on the scale of the
//!   exact ones a search mixes them with (rows the walk did not reach, rows not linked
//!   yet, scored exactly into the same candidate list). Dropped, it let every exactly
//!   scored row (off by `q·μ`, ~6,400 for 64-d rows near 10) push out the walk's
//!   candidates: recall@10 fell to 0 on rows with a common offset.
//! - Cosine and angular: the rows are normalised before they are centred and coded,
//!   and scored like euclidean against the normalised query (‖q̂ − x̂‖² = 2 − 2·cos).
//!
//! `d·c` is an exact integer dot product of two byte vectors (AVX2: `vpmaddwd`, 32
//! bytes per step): one pass over `dim` bytes instead of `4·dim` (4-bit: `dim / 2`).
//!
//! The beam search walks the graph on these approximate scores (a quarter of the
//! memory traffic: a 384-d row is 6 cache lines instead of 24) and the `ef` candidates
//! it ends with are re-scored exactly before the best `k` are taken, so returned
//! distances are exact and only the choice of candidates is approximate. Insertion
//! (the graph's quality) always uses exact scores.

use std::cell::Cell;

use super::rabitq::{self, BitsQuery, Rotation};
use super::{HnswIndex, Kind};
use crate::config::Quantization;
use crate::distance::kernels;
use crate::index::kmeans;
use crate::index::region::Region;

/// Seed of the centroids' training (with the row count mixed in). Changing it changes
/// the centroids a re-centre trains, not the reading of saved ones.
const CENTROID_SEED: u64 = 0x4365_6e74_726f_6964;

/// The codes of every slot.
pub(super) struct Codes {
    pub(super) dim: usize,
    /// `Sq8`, `Sq4`, `RaBitQ` or `Binary`.
    pub(super) quant: Quantization,
    /// Code bytes per slot (`quant.code_bytes(dim)`, kept for the hot path).
    pub(super) stride: usize,
    /// `stride` bytes per slot: on the heap, or mapped from a seal's codes file.
    pub(super) bytes: Region,
    /// Per slot: `[a, b, Σc, b²·Σc²]` (RaBitQ: the four numbers of `rabitq.rs`'s "Codes").
    pub(super) affine: Vec<[f32; 4]>,
    /// The centre `μ` rows are coded relative to (zeros until the first row).
    pub(super) center: Vec<f32>,
    /// How many rows were coded when `center` was last computed (0: never).
    pub(super) centred_at: u64,
    /// The sums of a centre being computed.
    pub(super) sum: Vec<f64>,
    /// One row's unpacked 4-bit codes, before packing.
    pub(super) scratch: Vec<u8>,
    /// RaBitQ's rotation, and one rotated row.
    pub(super) rotation: Option<Rotation>,
    pub(super) rotated: Vec<f32>,
    /// RaBitQ: the centroids rows are coded against (`dim` floats each; empty: every
    /// row against `center`), trained with the centre (`rabitq.rs`).
    pub(super) centroids: Vec<f32>,
    /// RaBitQ: per centroid `R·(c − μ)` (`P` floats each) and the sum of its components.
    pub(super) shifts: Vec<f32>,
    pub(super) shift_sums: Vec<f32>,
    /// RaBitQ: rows sampled while a centre is computed (every `sample_every`-th of the
    /// `sample_seen` added), to train the centroids on.
    pub(super) sample: Vec<f32>,
    pub(super) sample_every: u64,
    pub(super) sample_seen: u64,
}

impl std::fmt::Debug for Codes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codes")
            .field("dim", &self.dim)
            .field("quant", &self.quant)
            .field("slots", &self.affine.len())
            .field("centred_at", &self.centred_at)
            .field("centroids", &(self.centroids.len() / self.dim.max(1)))
            .finish()
    }
}

impl Codes {
    /// Codes of `dim` components under `q` (`Sq8` or `Sq4`), no row yet.
    pub(super) fn new(dim: usize, q: Quantization) -> Self {
        Self {
            center: vec![0.0; dim],
            ..Self::empty(dim, q)
        }
    }

    /// Codes of `dim` components under `q` with nothing in them (not even a centre).
    pub(super) fn empty(dim: usize, q: Quantization) -> Self {
        Self {
            dim,
            quant: q,
            stride: q.code_bytes(dim),
            bytes: Region::default(),
            affine: Vec::new(),
            center: Vec::new(),
            centred_at: 0,
            sum: Vec::new(),
            scratch: Vec::new(),
            rotation: q.one_bit().then(|| Rotation::new(dim, q)),
            rotated: Vec::new(),
            centroids: Vec::new(),
            shifts: Vec::new(),
            shift_sums: Vec::new(),
            sample: Vec::new(),
            sample_every: 1,
            sample_seen: 0,
        }
    }

    /// Room for `cap` slots.
    pub(super) fn grow(&mut self, cap: usize) {
        self.bytes.resize(cap * self.stride);
        self.affine.resize(cap, [0.0; 4]);
    }

    /// The centre and the row count it was computed at (saved in the graph file).
    pub(super) fn centre(&self) -> (&[f32], u64) {
        (&self.center, self.centred_at)
    }

    /// Puts back a saved centre (before any row is coded).
    pub(super) fn set_centre(&mut self, center: Vec<f32>, centred_at: u64) {
        if center.len() == self.dim {
            self.center = center;
            self.centred_at = centred_at;
        }
    }

    /// Makes the next row trigger a new centre (the graph was emptied).
    pub(super) fn forget_centre(&mut self) {
        self.centred_at = 0;
    }

    /// Whether `rows` coded rows call for a new centre (their number has doubled).
    pub(super) fn wants_recentre(&self, rows: u64) -> bool {
        rows > 0 && rows >= self.centred_at.saturating_mul(2)
    }

    /// Starts computing a new centre from `rows` rows: [`Codes::recentre_add`] each,
    /// then [`Codes::recentre_finish`]; the caller re-codes every row afterwards.
    pub(super) fn recentre_start(&mut self, rows: u64) {
        self.sum.clear();
        self.sum.resize(self.dim, 0.0);
        self.sample.clear();
        self.sample_seen = 0;
        if let Some(r) = &self.rotation {
            let want =
                rabitq::centroid_count(rows, r.padded()) as u64 * rabitq::SAMPLE_PER_CENTROID;
            self.sample_every = if want == 0 {
                u64::MAX
            } else {
                rows.div_ceil(want).max(1)
            };
        }
    }

    /// Adds one row (as coded) to the new centre's sums (and, for RaBitQ, maybe to the
    /// centroids' training sample).
    pub(super) fn recentre_add(&mut self, row: &[f32]) {
        for (s, &x) in self.sum.iter_mut().zip(row) {
            *s += f64::from(x);
        }
        if self.rotation.is_some() && self.sample_seen.is_multiple_of(self.sample_every) {
            self.sample
                .extend_from_slice(&row[..self.dim.min(row.len())]);
            self.sample
                .resize(self.sample.len().next_multiple_of(self.dim.max(1)), 0.0);
        }
        self.sample_seen += 1;
    }

    /// Sets the centre to the mean of the `n` rows added (RaBitQ: and trains the
    /// centroids on the sample, the same ones for the same rows).
    pub(super) fn recentre_finish(&mut self, n: u64) {
        let n = n.max(1);
        self.center = self.sum.iter().map(|&s| (s / n as f64) as f32).collect();
        self.centred_at = n;
        self.sum = Vec::new();
        if let Some(r) = &self.rotation {
            let k = rabitq::centroid_count(n, r.padded());
            let sample = std::mem::take(&mut self.sample);
            let seed = CENTROID_SEED ^ n;
            let centroids = kmeans::train(&sample, self.dim, k, rabitq::CENTROID_ITERS, seed);
            self.set_centroids(centroids);
        }
    }

    /// Puts in the centroids rows are coded against (saved ones, before any row is
    /// coded, or new ones, after which every row is re-coded), and what scores on them
    /// need.
    pub(super) fn set_centroids(&mut self, centroids: Vec<f32>) {
        let Some(r) = &self.rotation else {
            return;
        };
        let dim = self.dim.max(1);
        self.shifts.clear();
        self.shift_sums.clear();
        let mut h = Vec::new();
        for c in centroids.chunks_exact(dim) {
            r.apply(c, &self.center, &mut h);
            self.shift_sums
                .push(h.iter().map(|&x| f64::from(x)).sum::<f64>() as f32);
            self.shifts.extend_from_slice(&h);
        }
        self.centroids = centroids;
    }

    /// How many centroids rows are coded against (0: against the centre).
    pub(super) fn centroid_count(&self) -> usize {
        self.centroids.len() / self.dim.max(1)
    }

    /// Centroid `j` (`dim` floats).
    #[inline]
    pub(super) fn centroid(&self, j: usize) -> &[f32] {
        self.centroids
            .get(j * self.dim..(j + 1) * self.dim)
            .unwrap_or_default()
    }

    /// Encodes `row` as the codes of `slot` (which fits).
    pub(super) fn encode(&mut self, slot: u32, row: &[f32]) {
        let s = slot as usize;
        let (mut bytes, mut rotated, mut scratch) = (
            std::mem::take(&mut self.bytes),
            std::mem::take(&mut self.rotated),
            std::mem::take(&mut self.scratch),
        );
        let out = &mut bytes.as_bytes_mut()[s * self.stride..(s + 1) * self.stride];
        self.affine[s] = self.encode_into(row, out, &mut rotated, &mut scratch);
        (self.bytes, self.rotated, self.scratch) = (bytes, rotated, scratch);
    }

    /// Re-codes the first `end` slots, those `stored` says hold a row, in parallel (after
    /// a new centre every row's codes change): `row(s, buf, code)` calls `code` with the
    /// row of slot `s` as it is coded (computed into `buf` if need be).
    pub(super) fn encode_all(
        &mut self,
        end: usize,
        stored: impl Fn(usize) -> bool + Sync,
        row: impl Fn(usize, &mut Vec<f32>, &mut dyn FnMut(&[f32])) + Sync,
    ) {
        use rayon::prelude::*;
        let (mut bytes, mut affine) = (
            std::mem::take(&mut self.bytes),
            std::mem::take(&mut self.affine),
        );
        let this = &*self;
        bytes.as_bytes_mut()[..end * this.stride]
            .par_chunks_mut(this.stride.max(1))
            .zip(affine[..end].par_iter_mut())
            .enumerate()
            .filter(|(s, _)| stored(*s))
            .for_each_init(
                || (Vec::new(), Vec::new(), Vec::new()),
                |(buf, rotated, scratch), (s, (out, f))| {
                    row(s, buf, &mut |r| {
                        *f = this.encode_into(r, out, rotated, scratch)
                    });
                },
            );
        (self.bytes, self.affine) = (bytes, affine);
    }

    /// The codes of `row` into `out` and its per-row numbers (`rotated` and `scratch`:
    /// working buffers).
    fn encode_into(
        &self,
        row: &[f32],
        out: &mut [u8],
        rotated: &mut Vec<f32>,
        scratch: &mut Vec<u8>,
    ) -> [f32; 4] {
        if let Some(rotation) = &self.rotation {
            let j = kmeans::nearest(&self.centroids, self.dim, row);
            let centre = if self.centroids.is_empty() {
                &self.center[..]
            } else {
                self.centroid(j)
            };
            rotation.apply(row, centre, rotated);
            let mut f = rabitq::encode(rotated, out);
            let p = rotated.len();
            if let Some(h) = self.shifts.get(j * p..(j + 1) * p) {
                // g = ⟨x̄, R·(c − μ)⟩ / ⟨x̄, o⟩, from the signs just coded.
                let on: f64 = h
                    .iter()
                    .zip(rotated.iter())
                    .filter(|(_, &y)| y > 0.0)
                    .map(|(&v, _)| f64::from(v))
                    .sum();
                let sum = f64::from(self.shift_sums[j]);
                let g = (2.0 * on - sum) / (p as f64).sqrt() * f64::from(f[1]);
                f[3] = (f64::from(f[3]) + 2.0 * f64::from(f[0]) * g) as f32;
            }
            f[2] = rabitq::pack_ones(f[2], j, p);
            return f;
        }
        let (a, b, sum, sum2) = if self.quant == Quantization::Sq4 {
            scratch.resize(self.dim, 0);
            let r = encode_row(row, &self.center, scratch, 15);
            pack_nibbles(scratch, out);
            r
        } else {
            encode_row(row, &self.center, out, 255)
        };
        let x2 = f64::from(b) * f64::from(b) * sum2 as f64;
        [a, b, sum as f32, x2 as f32]
    }

    /// The codes of `slot` (empty past the end).
    #[inline(always)]
    fn code(&self, slot: u32) -> &[u8] {
        let s = slot as usize;
        self.bytes
            .as_bytes()
            .get(s * self.stride..(s + 1) * self.stride)
            .unwrap_or_default()
    }

    #[inline(always)]
    fn code_ptr(&self, slot: u32) -> *const u8 {
        self.bytes
            .as_bytes()
            .as_ptr()
            .wrapping_add(slot as usize * self.stride)
    }

    /// Heap bytes (the mapped code bytes apart: [`Codes::mapped_bytes`]).
    pub(super) fn memory_bytes(&self) -> usize {
        self.bytes.heap_bytes()
            + self.affine.capacity() * 16
            + (self.center.capacity()
                + self.centroids.capacity()
                + self.shifts.capacity()
                + self.shift_sums.capacity())
                * 4
    }

    /// Code bytes mapped from a seal's codes file.
    pub(super) fn mapped_bytes(&self) -> usize {
        self.bytes.mapped_bytes()
    }
}

/// Packs `dim` 4-bit codes (one per byte, ≤ 15) into `out` in the `dot_u8u4` layout:
/// blocks of 64 components in 32 bytes, component `64k + j` in the low nibble of byte
/// `32k + j` and `64k + 32 + j` in its high nibble; components past `dim` are zeros.
fn pack_nibbles(codes: &[u8], out: &mut [u8]) {
    out.fill(0);
    for (k, block) in codes.chunks(64).enumerate() {
        let dst = &mut out[32 * k..32 * k + 32];
        let (lo, hi) = block.split_at(block.len().min(32));
        for (d, &c) in dst.iter_mut().zip(lo) {
            *d = c & 15;
        }
        for (d, &c) in dst.iter_mut().zip(hi) {
            *d |= (c & 15) << 4;
        }
    }
}

/// Offset and step of the codes of values in `[lo, hi]` with `levels` steps (255 or
/// 15; step 0: all equal).
fn affine_of(lo: f32, hi: f32, levels: u8) -> (f32, f32) {
    if lo.is_finite() && hi > lo {
        (lo, (hi - lo) / f32::from(levels))
    } else {
        (if lo.is_finite() { lo } else { 0.0 }, 0.0)
    }
}

/// Codes `row` (finite) around `center` into `out`, one code of `0..=levels` (255 or
/// 15) per byte: the affine `(a, b)` and the sums of the codes and of their squares.
/// Compiled twice — for the baseline and, chosen at run time, for AVX2 — from one body
/// the compiler vectorises; the codes are the same bit for bit (the same IEEE
/// operations per element, exact integer sums).
fn encode_row(row: &[f32], center: &[f32], out: &mut [u8], levels: u8) -> (f32, f32, u64, u64) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is available (checked just above).
        return unsafe { encode_row_avx2(row, center, out, levels) };
    }
    encode_row_body(row, center, out, levels)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn encode_row_avx2(
    row: &[f32],
    center: &[f32],
    out: &mut [u8],
    levels: u8,
) -> (f32, f32, u64, u64) {
    encode_row_body(row, center, out, levels)
}

#[inline(always)]
fn encode_row_body(
    row: &[f32],
    center: &[f32],
    out: &mut [u8],
    levels: u8,
) -> (f32, f32, u64, u64) {
    // Plain comparisons rather than `f32::min`/`max` (whose NaN rules keep the loop
    // scalar): the rows are finite, where both give the same.
    // Sixteen lanes, reduced at the end: a min or max is exact whatever the order,
    // and lanes let the compiler keep them in vector registers.
    const L: usize = 16;
    let mut lo = [f32::INFINITY; L];
    let mut hi = [f32::NEG_INFINITY; L];
    let n = row.len().min(center.len());
    let (row, center) = (&row[..n], &center[..n]);
    for (xs, ms) in row.chunks_exact(L).zip(center.chunks_exact(L)) {
        for j in 0..L {
            let c = xs[j] - ms[j];
            lo[j] = if c < lo[j] { c } else { lo[j] };
            hi[j] = if c > hi[j] { c } else { hi[j] };
        }
    }
    let tail = n - n % L;
    for (j, (&x, &m)) in row[tail..].iter().zip(&center[tail..]).enumerate() {
        let c = x - m;
        lo[j] = if c < lo[j] { c } else { lo[j] };
        hi[j] = if c > hi[j] { c } else { hi[j] };
    }
    let lo = lo
        .iter()
        .fold(f32::INFINITY, |a, &b| if b < a { b } else { a });
    let hi = hi
        .iter()
        .fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    let (a, b) = affine_of(lo, hi, levels);
    // u32 sums are exact: at most 65,536 (the largest dimension) codes of ≤ 255, so
    // Σq ≤ 16,711,680 and Σq² ≤ 4,261,478,400 < 2^32; narrower lanes vectorise wider.
    let mut sum = 0u32;
    let mut sum2 = 0u32;
    if b > 0.0 {
        for ((c, &x), &m) in out.iter_mut().zip(row).zip(center) {
            let q = round_code((x - m - a) / b).min(levels);
            *c = q;
            sum += u32::from(q);
            sum2 += u32::from(q) * u32::from(q);
        }
    } else {
        out.fill(0);
    }
    (a, b, u64::from(sum), u64::from(sum2))
}

/// The code of `x` under offset `a` and step `b`: `((x − a) / b)` rounded half away
/// from zero and clamped to 0..=255, exactly as `f32::round` and `clamp` give it, but
/// without the libm call `round` compiles to on baseline x86-64 (which kept the loop
/// from vectorising: most of an open's time went to coding the rows).
#[inline]
fn code_of(x: f32, a: f32, b: f32) -> u8 {
    if b > 0.0 {
        round_code((x - a) / b)
    } else {
        0
    }
}

/// `v.round().clamp(0.0, 255.0) as u8` for any `v` (NaN: 0), branch-free.
#[inline(always)]
fn round_code(v: f32) -> u8 {
    // In range the truncation is exact and so is `v − t` (t ≤ v < t + 1, t ≥ v / 2 for
    // t ≥ 1; v itself for t = 0); the fraction then decides the rounding.
    let v = v.clamp(0.0, 255.0);
    let t = v as u32;
    let up = u32::from(v - t as f32 >= 0.5);
    (t + up).min(255) as u8
}

/// A score function the graph walks on: exact, or on the codes.
pub(super) trait Scorer {
    /// The score of the prepared query against `slot` (smaller is closer).
    fn score(&self, slot: u32) -> f32;
    /// Brings what [`Scorer::score`] reads for `slot` towards the cache.
    fn prefetch(&self, slot: u32);
    /// Whether [`Scorer::score`] only estimates, too roughly to rank results on: the
    /// beam then ranks its results on [`Scorer::exact`] scores, taken as it expands a
    /// node, and steers by the estimates only (RaBitQ's 1-bit codes).
    fn ranks_exactly(&self) -> bool {
        false
    }
    /// The exact score of `slot` (a row read from the files goes through `buf`).
    fn exact(&self, slot: u32, buf: &mut Vec<f32>) -> f32;
}

/// Exact scores ([`HnswIndex::score`]).
pub(super) struct Exact<'a> {
    pub(super) ix: &'a HnswIndex,
    pub(super) q: &'a [f32],
}

impl Scorer for Exact<'_> {
    #[inline(always)]
    fn score(&self, slot: u32) -> f32 {
        self.ix.score(self.q, slot)
    }

    #[inline(always)]
    fn prefetch(&self, slot: u32) {
        self.ix.prefetch_row(slot);
    }

    #[inline(always)]
    fn exact(&self, slot: u32, buf: &mut Vec<f32>) -> f32 {
        self.ix.score_read(self.q, slot, buf)
    }
}

/// Scores on the codes (see the module docs).
pub(super) struct Quantized<'a> {
    ix: &'a HnswIndex,
    codes: &'a Codes,
    /// The prepared query (for [`Scorer::exact`]).
    q: &'a [f32],
    /// The query's codes (a pooled buffer, handed back by [`Quantized::into_buffer`]).
    qc: Vec<u8>,
    /// Offset and step of the query's codes.
    pa: f32,
    pb: f32,
    /// Euclidean: `n`, `pb·Σd` and `pb²·Σd²`.
    n: f32,
    ps: f32,
    p2: f32,
    /// Inner product: `Σq` and `q·μ`.
    sum_q: f32,
    q_mu: f32,
    /// RaBitQ: the query's numbers (the byte codes' fields above are then unused but
    /// `q_mu`, and `qc` holds the query's bit planes).
    bits: Option<BitsQuery>,
    /// RaBitQ with centroids: per centroid `‖q − c‖²` (inner product: `q·c`), computed
    /// the first time a row of that centroid is scored (NaN until then; a walk meets a
    /// few of them). A pooled buffer, handed back by [`Quantized::into_buffer`].
    tab: Vec<Cell<f32>>,
    dot: fn(&[u8], &[u8]) -> u32,
}

/// The query's code bytes for rows coded with `bits`: `dim` (8-bit rows), or two per
/// row code byte (4-bit rows; the padding components are zeros and add nothing).
fn query_code_len(codes: &Codes) -> usize {
    match codes.quant {
        Quantization::Sq4 => 2 * codes.stride,
        _ => codes.dim,
    }
}

impl<'a> Quantized<'a> {
    /// A scorer for the prepared query `q`, its codes written into `buf`; RaBitQ rotates
    /// the query into `tmp` (only while this runs) and keeps its centroid terms in
    /// `tab`. The caller passes pooled buffers, so a warm search allocates nothing.
    pub(super) fn new(
        ix: &'a HnswIndex,
        codes: &'a Codes,
        q: &'a [f32],
        mut buf: Vec<u8>,
        tmp: &mut Vec<f32>,
        mut tab: Vec<Cell<f32>>,
    ) -> Self {
        tab.clear();
        let l2 = matches!(ix.space.kind, Kind::L2 | Kind::Cos);
        let q_mu = || -> f32 {
            q.iter()
                .zip(&codes.center)
                .map(|(&x, &m)| f64::from(x) * f64::from(m))
                .sum::<f64>() as f32
        };
        if let Some(rotation) = &codes.rotation {
            rotation.apply(q, if l2 { &codes.center } else { &[] }, tmp);
            let bits = BitsQuery::new(tmp, &mut buf);
            tab.resize(codes.centroid_count(), Cell::new(f32::NAN));
            return Self {
                ix,
                codes,
                q,
                qc: buf,
                pa: 0.0,
                pb: 0.0,
                n: 0.0,
                ps: 0.0,
                p2: 0.0,
                sum_q: 0.0,
                q_mu: if l2 { 0.0 } else { q_mu() },
                bits: Some(bits),
                tab,
                dot: kernels().dot_bits,
            };
        }
        // The query as coded: centred for euclidean and cosine (scored as euclidean on
        // normalised vectors; `q` is already normalised), as given for inner product.
        let at = |i: usize| -> f32 {
            let x = q.get(i).copied().unwrap_or(0.0);
            if l2 {
                x - codes.center.get(i).copied().unwrap_or(0.0)
            } else {
                x
            }
        };
        let (lo, hi) = (0..q.len()).fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), i| {
            (l.min(at(i)), h.max(at(i)))
        });
        let (pa, pb) = affine_of(lo, hi, 255);
        buf.clear();
        let (mut sum, mut sum2) = (0u64, 0u64);
        buf.extend((0..q.len()).map(|i| {
            let d = code_of(at(i), pa, pb);
            sum += u64::from(d);
            sum2 += u64::from(d) * u64::from(d);
            d
        }));
        buf.resize(query_code_len(codes).max(q.len()), 0);
        let (pb64, sum_q) = (f64::from(pb), q.iter().map(|&x| f64::from(x)).sum::<f64>());
        Self {
            ix,
            codes,
            q,
            qc: buf,
            pa,
            pb,
            n: q.len() as f32,
            ps: (pb64 * sum as f64) as f32,
            p2: (pb64 * pb64 * sum2 as f64) as f32,
            sum_q: sum_q as f32,
            q_mu: q_mu(),
            bits: None,
            tab,
            dot: if codes.quant == Quantization::Sq4 {
                kernels().dot_u8u4
            } else {
                kernels().dot_u8u8
            },
        }
    }

    /// The pooled buffers, for reuse.
    pub(super) fn into_buffer(self) -> (Vec<u8>, Vec<Cell<f32>>) {
        (self.qc, self.tab)
    }

    /// The score's part from the row's centroid (its centre without centroids):
    /// `‖q − c‖²`, inner product `q·c`.
    #[inline(always)]
    fn centroid_term(&self, bits: &BitsQuery, f: [f32; 4]) -> f32 {
        let l2 = matches!(self.ix.space.kind, Kind::L2 | Kind::Cos);
        if self.tab.is_empty() {
            return if l2 { bits.centre_term() } else { self.q_mu };
        }
        let j = bits.centroid(f);
        match self.tab.get(j) {
            Some(t) if !t.get().is_nan() => t.get(),
            Some(t) => self.fill(j, t, l2),
            None => 0.0,
        }
    }

    #[cold]
    fn fill(&self, j: usize, t: &Cell<f32>, l2: bool) -> f32 {
        let c = self.codes.centroid(j);
        let v = if l2 {
            (kernels().l2_squared)(self.q, c)
        } else {
            (kernels().dot)(self.q, c)
        };
        t.set(v);
        v
    }
}

impl Scorer for Quantized<'_> {
    #[inline(always)]
    fn score(&self, slot: u32) -> f32 {
        let [a, b, sum_c, x2] = self
            .codes
            .affine
            .get(slot as usize)
            .copied()
            .unwrap_or_default();
        let dot = (self.dot)(&self.qc, self.codes.code(slot));
        if let Some(bits) = &self.bits {
            let f = [a, b, sum_c, x2];
            let base = self.centroid_term(bits, f);
            return match self.ix.space.kind {
                Kind::L2 | Kind::Cos => bits.l2(base, f, dot),
                _ => -(base + f[0] * bits.z_dot_o(f, dot)),
            };
        }
        let dc = dot as f32;
        match self.ix.space.kind {
            Kind::L2 | Kind::Cos => {
                let delta = self.pa - a;
                (self.n * delta * delta + self.p2 + x2 + 2.0 * delta * (self.ps - b * sum_c)
                    - 2.0 * self.pb * b * dc)
                    .max(0.0)
            }
            // Inner product: −(q·μ + q·x̂'). Never built for the other metrics (see
            // `uses_codes`).
            _ => -(self.q_mu + a * self.sum_q + b * (self.pa * sum_c + self.pb * dc)),
        }
    }

    #[inline(always)]
    fn prefetch(&self, slot: u32) {
        let p = self.codes.code_ptr(slot);
        let mut off = 0;
        while off < self.codes.stride {
            super::search::prefetch(p.wrapping_add(off));
            off += 64;
        }
    }

    #[inline(always)]
    fn ranks_exactly(&self) -> bool {
        self.bits.is_some()
    }

    #[inline(always)]
    fn exact(&self, slot: u32, buf: &mut Vec<f32>) -> f32 {
        self.ix.score_read(self.q, slot, buf)
    }
}

/// Whether rows of `kind` get codes: the scores that are linear in `x` (L2 through
/// ‖x‖², inner product, cosine through 1/‖x‖).
pub(super) fn uses_codes(kind: Kind) -> bool {
    matches!(kind, Kind::L2 | Kind::Ip | Kind::Cos)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::round_code;
    use proptest::prelude::*;

    fn reference(v: f32) -> u8 {
        if v.is_nan() {
            0
        } else {
            v.round().clamp(0.0, 255.0) as u8
        }
    }

    #[test]
    fn round_code_is_round_and_clamp_at_the_edges() {
        let mut edges = vec![
            0.0f32,
            -0.0,
            0.5,
            0.499_999_97,
            0.500_000_06,
            254.5,
            254.499_98,
            255.0,
            255.5,
            256.0,
            -0.5,
            -1.0,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
        ];
        for k in 0..=256u32 {
            let x = k as f32 + 0.5;
            edges.extend([
                x,
                f32::from_bits(x.to_bits() - 1),
                f32::from_bits(x.to_bits() + 1),
            ]);
        }
        for v in edges {
            assert_eq!(round_code(v), reference(v), "{v:e}");
        }
    }

    /// The reference coding of a row: the first formulation, `f32::min`/`max` and
    /// `f32::round`.
    fn reference_row(row: &[f32], center: &[f32], levels: u8) -> (Vec<u8>, f32, f32, u64, u64) {
        let (lo, hi) = row
            .iter()
            .zip(center)
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), (&x, &m)| {
                (l.min(x - m), h.max(x - m))
            });
        let (a, b) = if lo.is_finite() && hi > lo {
            (lo, (hi - lo) / f32::from(levels))
        } else {
            (if lo.is_finite() { lo } else { 0.0 }, 0.0)
        };
        let codes: Vec<u8> = row
            .iter()
            .zip(center)
            .map(|(&x, &m)| {
                if b > 0.0 {
                    reference((x - m - a) / b).min(levels)
                } else {
                    0
                }
            })
            .collect();
        let sum = codes.iter().map(|&q| u64::from(q)).sum();
        let sum2 = codes.iter().map(|&q| u64::from(q) * u64::from(q)).sum();
        (codes, a, b, sum, sum2)
    }

    proptest! {
        #[test]
        fn rows_are_coded_as_the_reference_codes_them(
            row in proptest::collection::vec(-1e6f32..1e6, 1..200),
            shift in -1e3f32..1e3,
            constant: bool,
            four_bits: bool,
        ) {
            let levels = if four_bits { 15 } else { 255 };
            let row: Vec<f32> = if constant { vec![row[0]; row.len()] } else { row };
            let center: Vec<f32> = row.iter().enumerate().map(|(i, _)| shift * (i % 3) as f32).collect();
            let mut out = vec![0u8; row.len()];
            let (a, b, sum, sum2) = super::encode_row(&row, &center, &mut out, levels);
            let (want, ra, rb, rsum, rsum2) = reference_row(&row, &center, levels);
            prop_assert_eq!(out, want);
            prop_assert_eq!((a.to_bits(), b.to_bits(), sum, sum2), (ra.to_bits(), rb.to_bits(), rsum, rsum2));
        }

        /// Packed 4-bit codes hold each component where `dot_u8u4` reads it: the
        /// kernel's dot product of a query with the packed row is the plain one with
        /// the unpacked codes.
        #[test]
        fn packed_nibbles_score_as_the_unpacked_codes(
            codes in proptest::collection::vec(0u8..16, 1..300),
            seed in any::<u64>(),
        ) {
            let stride = crate::config::Quantization::Sq4.code_bytes(codes.len());
            let mut packed = vec![0xAAu8; stride];
            super::pack_nibbles(&codes, &mut packed);
            let mut rng = crate::rng::SplitMix64::new(seed);
            // Query bytes past `dim` too: the packing leaves zeros there.
            let q: Vec<u8> = (0..2 * stride).map(|_| rng.next_u64() as u8).collect();
            let want: u32 = codes.iter().zip(&q).map(|(&c, &x)| u32::from(c) * u32::from(x)).sum();
            for isa in crate::distance::available_isas() {
                let k = crate::distance::Kernels::for_isa(isa).unwrap();
                prop_assert_eq!((k.dot_u8u4)(&q, &packed), want, "{:?}", isa);
            }
        }

        #[test]
        fn round_code_is_round_and_clamp(bits in any::<u32>()) {
            let v = f32::from_bits(bits);
            prop_assert_eq!(round_code(v), reference(v), "{:e}", v);
        }

        #[test]
        fn round_code_is_round_and_clamp_in_range(v in -2.0f32..260.0) {
            prop_assert_eq!(round_code(v), reference(v), "{:e}", v);
        }
    }
}
