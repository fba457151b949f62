//! 8-bit codes of the rows (SQ8) for graph traversal, and the scorers the search
//! and the build run on.
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
//! file, so a loaded index codes its rows exactly as the saved one did.
//!
//! # Codes
//! Each centred row `x' = x − μ` is stored as `dim` bytes `c_i = round((x'_i − a) / b)`
//! with `a = min x'`, `b = (max x' − min x') / 255`, so `x̂_i = a + b·c_i` is within
//! `b/2` of `x'_i`. Per row `a`, `b`, `Σc` and `b²·Σc²` are kept. A query `p` (centred
//! for euclidean, as given for the others) is coded the same way once per search:
//! `p̃_i = pa + pb·d_i` (for cosine, rows and query are normalised first).
//!
//! # Scores
//! - Euclidean scores the difference of the two coded vectors directly,
//!   `‖p̃ − x̂‖² = n·Δ² + pb²Σd² + b²Σc² + 2Δ(pb·Σd − b·Σc) − 2·pb·b·(d·c)` with
//!   `Δ = pa − a`: every term is of the size of the rows' spread, not of their
//!   magnitude, so near neighbours are told apart even far from the origin.
//! - Inner product: `−q·x = −(q·x' + q·μ)`; `q·μ` is the same for every row and is
//!   dropped, and `q·x̂' = a·Σq + b·(qa·Σc + qb·(d·c))`.
//! - Cosine and angular: the rows are normalised before they are centred and coded,
//!   and scored like euclidean against the normalised query (‖q̂ − x̂‖² = 2 − 2·cos).
//!
//! `d·c` is an exact integer dot product of two byte vectors (AVX2: `vpmaddwd`, 32
//! bytes per step): one pass over `dim` bytes instead of `4·dim`.
//!
//! The beam search walks the graph on these approximate scores (a quarter of the
//! memory traffic: a 384-d row is 6 cache lines instead of 24) and the `ef` candidates
//! it ends with are re-scored exactly before the best `k` are taken, so returned
//! distances are exact and only the choice of candidates is approximate. Insertion
//! (the graph's quality) always uses exact scores.

use super::{HnswIndex, Kind};
use crate::distance::kernels;

/// The codes of every slot.
#[derive(Debug, Default)]
pub(super) struct Codes {
    dim: usize,
    bytes: Vec<u8>,
    /// Per slot: `[a, b, Σc, b²·Σc²]`.
    affine: Vec<[f32; 4]>,
    /// The centre `μ` rows are coded relative to (zeros until the first row).
    center: Vec<f32>,
    /// How many rows were coded when `center` was last computed (0: never).
    centred_at: u64,
    /// The sums of a centre being computed.
    sum: Vec<f64>,
}

impl Codes {
    pub(super) fn new(dim: usize) -> Self {
        Self {
            dim,
            center: vec![0.0; dim],
            ..Self::default()
        }
    }

    /// Room for `cap` slots.
    pub(super) fn grow(&mut self, cap: usize) {
        self.bytes.resize(cap * self.dim, 0);
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

    /// Starts computing a new centre: [`Codes::recentre_add`] every stored row, then
    /// [`Codes::recentre_finish`]; the caller re-codes every row afterwards.
    pub(super) fn recentre_start(&mut self) {
        self.sum.clear();
        self.sum.resize(self.dim, 0.0);
    }

    /// Adds one row (as coded) to the new centre's sums.
    pub(super) fn recentre_add(&mut self, row: &[f32]) {
        for (s, &x) in self.sum.iter_mut().zip(row) {
            *s += f64::from(x);
        }
    }

    /// Sets the centre to the mean of the `n` rows added.
    pub(super) fn recentre_finish(&mut self, n: u64) {
        let n = n.max(1);
        self.center = self.sum.iter().map(|&s| (s / n as f64) as f32).collect();
        self.centred_at = n;
        self.sum = Vec::new();
    }

    /// Encodes `row` as the codes of `slot` (which fits).
    pub(super) fn encode(&mut self, slot: u32, row: &[f32]) {
        let s = slot as usize;
        let (lo, hi) = row.iter().zip(&self.center).fold(
            (f32::INFINITY, f32::NEG_INFINITY),
            |(l, h), (&x, &m)| {
                let c = x - m;
                (l.min(c), h.max(c))
            },
        );
        let (a, b) = affine_of(lo, hi);
        let out = &mut self.bytes[s * self.dim..(s + 1) * self.dim];
        let mut sum = 0u64;
        let mut sum2 = 0u64;
        for ((c, &x), &m) in out.iter_mut().zip(row).zip(&self.center) {
            let q = code_of(x - m, a, b);
            *c = q;
            sum += u64::from(q);
            sum2 += u64::from(q) * u64::from(q);
        }
        let x2 = f64::from(b) * f64::from(b) * sum2 as f64;
        self.affine[s] = [a, b, sum as f32, x2 as f32];
    }

    /// The codes of `slot` (empty past the end).
    #[inline(always)]
    fn code(&self, slot: u32) -> &[u8] {
        let s = slot as usize;
        self.bytes
            .get(s * self.dim..(s + 1) * self.dim)
            .unwrap_or_default()
    }

    #[inline(always)]
    fn code_ptr(&self, slot: u32) -> *const u8 {
        self.bytes.as_ptr().wrapping_add(slot as usize * self.dim)
    }

    pub(super) fn memory_bytes(&self) -> usize {
        self.bytes.capacity() + self.affine.capacity() * 16 + self.center.capacity() * 4
    }
}

/// Offset and step of the codes of values in `[lo, hi]` (step 0: all equal).
fn affine_of(lo: f32, hi: f32) -> (f32, f32) {
    if lo.is_finite() && hi > lo {
        (lo, (hi - lo) / 255.0)
    } else {
        (if lo.is_finite() { lo } else { 0.0 }, 0.0)
    }
}

/// The code of `x` under offset `a` and step `b`.
#[inline]
fn code_of(x: f32, a: f32, b: f32) -> u8 {
    if b > 0.0 {
        ((x - a) / b).round().clamp(0.0, 255.0) as u8
    } else {
        0
    }
}

/// A score function the graph walks on: exact, or on the codes.
pub(super) trait Scorer {
    /// The score of the prepared query against `slot` (smaller is closer).
    fn score(&self, slot: u32) -> f32;
    /// Brings what [`Scorer::score`] reads for `slot` towards the cache.
    fn prefetch(&self, slot: u32);
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
}

/// Scores on the codes (see the module docs).
pub(super) struct Quantized<'a> {
    ix: &'a HnswIndex,
    codes: &'a Codes,
    /// The query's codes (a pooled buffer, handed back by [`Quantized::into_buffer`]).
    qc: Vec<u8>,
    /// Offset and step of the query's codes.
    pa: f32,
    pb: f32,
    /// Euclidean: `n`, `pb·Σd` and `pb²·Σd²`.
    n: f32,
    ps: f32,
    p2: f32,
    /// Inner product: `Σq`.
    sum_q: f32,
    dot: fn(&[u8], &[u8]) -> u32,
}

impl<'a> Quantized<'a> {
    /// A scorer for the prepared query `q`, its codes written into `buf`.
    pub(super) fn new(ix: &'a HnswIndex, codes: &'a Codes, q: &[f32], mut buf: Vec<u8>) -> Self {
        let l2 = matches!(ix.space.kind, Kind::L2 | Kind::Cos);
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
        let (pa, pb) = affine_of(lo, hi);
        buf.clear();
        let (mut sum, mut sum2) = (0u64, 0u64);
        buf.extend((0..q.len()).map(|i| {
            let d = code_of(at(i), pa, pb);
            sum += u64::from(d);
            sum2 += u64::from(d) * u64::from(d);
            d
        }));
        let (pb64, sum_q) = (f64::from(pb), q.iter().map(|&x| f64::from(x)).sum::<f64>());
        Self {
            ix,
            codes,
            qc: buf,
            pa,
            pb,
            n: q.len() as f32,
            ps: (pb64 * sum as f64) as f32,
            p2: (pb64 * pb64 * sum2 as f64) as f32,
            sum_q: sum_q as f32,
            dot: kernels().dot_u8u8,
        }
    }

    /// The query-code buffer, for reuse.
    pub(super) fn into_buffer(self) -> Vec<u8> {
        self.qc
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
        let dc = (self.dot)(&self.qc, self.codes.code(slot)) as f32;
        match self.ix.space.kind {
            Kind::L2 | Kind::Cos => {
                let delta = self.pa - a;
                (self.n * delta * delta + self.p2 + x2 + 2.0 * delta * (self.ps - b * sum_c)
                    - 2.0 * self.pb * b * dc)
                    .max(0.0)
            }
            // Inner product: −q·x̂' (q·μ is the same for every row). Never built for
            // the other metrics (see `uses_codes`).
            _ => -(a * self.sum_q + b * (self.pa * sum_c + self.pb * dc)),
        }
    }

    #[inline(always)]
    fn prefetch(&self, slot: u32) {
        let p = self.codes.code_ptr(slot);
        let mut off = 0;
        while off < self.codes.dim {
            super::search::prefetch(p.wrapping_add(off));
            off += 64;
        }
    }
}

/// Whether rows of `kind` get codes: the scores that are linear in `x` (L2 through
/// ‖x‖², inner product, cosine through 1/‖x‖).
pub(super) fn uses_codes(kind: Kind) -> bool {
    matches!(kind, Kind::L2 | Kind::Ip | Kind::Cos)
}
