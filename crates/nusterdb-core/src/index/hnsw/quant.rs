//! 8-bit codes of the rows (SQ8) for graph traversal, and the scorers the search
//! and the build run on.
//!
//! Each row `x` is stored a second time as `dim` bytes: `c_i = round((x_i − a) / b)`
//! with `a = min x`, `b = (max x − min x) / 255`, so `x̂_i = a + b·c_i` is within `b/2`
//! of `x_i`. Per row `a`, `b`, `‖x̂‖²` and `Σc` are kept. A query is quantized the same
//! way once per search (`q̃_i = qa + qb·d_i`), so that
//! - `q̃·x̂ = n·qa·a + qa·b·Σc + a·qb·Σd + qb·b·(d·c)`, where `d·c` is an exact integer
//!   dot product of two byte vectors (AVX2: `vpmaddwd`, 32 bytes per step) — one pass
//!   over `dim` bytes instead of `4·dim`, and half the instructions of a float one;
//! - L2: `‖q‖² − 2 q̃·x̂ + ‖x̂‖²`; inner product: `−q̃·x̂`; cosine: `−q̃·x̂ / ‖x‖`.
//!
//! The beam search walks the graph on these approximate scores (a quarter of the
//! memory traffic: a 384-d row is 6 cache lines instead of 24) and the `ef` candidates
//! it ends with are re-scored exactly before the best `k` are taken, so returned
//! distances are exact and only the choice of candidates is approximate. Insertion
//! (the graph's quality) always uses exact scores. Per-row ranges need no training and
//! stay valid whatever is inserted later.

use super::{HnswIndex, Kind};
use crate::distance::kernels;

/// The codes of every slot.
#[derive(Debug, Default)]
pub(super) struct Codes {
    dim: usize,
    bytes: Vec<u8>,
    /// Per slot: `[a, b, ‖x̂‖², Σc]`.
    affine: Vec<[f32; 4]>,
}

impl Codes {
    pub(super) fn new(dim: usize) -> Self {
        Self {
            dim,
            ..Self::default()
        }
    }

    /// Room for `cap` slots.
    pub(super) fn grow(&mut self, cap: usize) {
        self.bytes.resize(cap * self.dim, 0);
        self.affine.resize(cap, [0.0; 4]);
    }

    /// Encodes `row` as the codes of `slot` (which fits).
    pub(super) fn encode(&mut self, slot: u32, row: &[f32]) {
        let s = slot as usize;
        let (lo, hi) = row
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &x| {
                (l.min(x), h.max(x))
            });
        let (a, b) = if lo.is_finite() && hi > lo {
            (lo, (hi - lo) / 255.0)
        } else {
            (if lo.is_finite() { lo } else { 0.0 }, 0.0)
        };
        let out = &mut self.bytes[s * self.dim..(s + 1) * self.dim];
        let mut norm2 = 0.0f64;
        let mut sum = 0u64;
        for (c, &x) in out.iter_mut().zip(row) {
            let q = if b > 0.0 {
                ((x - a) / b).round().clamp(0.0, 255.0) as u8
            } else {
                0
            };
            *c = q;
            sum += u64::from(q);
            let xh = f64::from(a) + f64::from(b) * f64::from(q);
            norm2 += xh * xh;
        }
        self.affine[s] = [a, b, norm2 as f32, sum as f32];
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
        self.bytes.capacity() + self.affine.capacity() * 16
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

/// Scores on the codes (see the module docs). The query is quantized the same way
/// (`q̃_i = qa + qb·d_i`), so the inner loop is an exact integer dot product of two
/// byte vectors:
/// `q̃·x̂ = n·qa·a + qa·b·Σc + a·qb·Σd + qb·b·(d·c)`.
pub(super) struct Quantized<'a> {
    ix: &'a HnswIndex,
    codes: &'a Codes,
    /// The query's codes (a pooled buffer, handed back by [`Quantized::into_buffer`]).
    qc: Vec<u8>,
    qa: f32,
    qb: f32,
    /// n·qa and Σd.
    nqa: f32,
    sum_d: f32,
    norm2: f32,
    dot: fn(&[u8], &[u8]) -> u32,
}

impl<'a> Quantized<'a> {
    /// A scorer for the prepared query `q`, its codes written into `buf`.
    pub(super) fn new(ix: &'a HnswIndex, codes: &'a Codes, q: &[f32], mut buf: Vec<u8>) -> Self {
        let k = kernels();
        let (lo, hi) = q
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &x| {
                (l.min(x), h.max(x))
            });
        let (qa, qb) = if lo.is_finite() && hi > lo {
            (lo, (hi - lo) / 255.0)
        } else {
            (if lo.is_finite() { lo } else { 0.0 }, 0.0)
        };
        buf.clear();
        let mut sum = 0u64;
        buf.extend(q.iter().map(|&x| {
            let d = if qb > 0.0 {
                ((x - qa) / qb).round().clamp(0.0, 255.0) as u8
            } else {
                0
            };
            sum += u64::from(d);
            d
        }));
        Self {
            ix,
            codes,
            qc: buf,
            qa,
            qb,
            nqa: q.len() as f32 * qa,
            sum_d: sum as f32,
            norm2: (k.norm_squared)(q),
            dot: k.dot_u8u8,
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
        let [a, b, xn2, sum_c] = self
            .codes
            .affine
            .get(slot as usize)
            .copied()
            .unwrap_or_default();
        let dc = (self.dot)(&self.qc, self.codes.code(slot)) as f32;
        let dot = self.nqa * a + self.qa * b * sum_c + a * self.qb * self.sum_d + self.qb * b * dc;
        match self.ix.space.kind {
            Kind::L2 => (self.norm2 - 2.0 * dot + xn2).max(0.0),
            Kind::Ip => -dot,
            Kind::Cos => -dot * self.ix.inv_norm.get(slot as usize).copied().unwrap_or(0.0),
            // Never built for the other metrics (see `uses_codes`); an exact score on
            // the dequantized query keeps the ordering sensible if it ever were.
            Kind::Direct | Kind::Other => -dot,
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
        if self.ix.space.kind == Kind::Cos {
            super::search::prefetch(self.ix.inv_norm.as_ptr().wrapping_add(slot as usize).cast());
        }
    }
}

/// Whether rows of `kind` get codes: the scores that are linear in `x` (L2 through
/// ‖x‖², inner product, cosine through 1/‖x‖).
pub(super) fn uses_codes(kind: Kind) -> bool {
    matches!(kind, Kind::L2 | Kind::Ip | Kind::Cos)
}
