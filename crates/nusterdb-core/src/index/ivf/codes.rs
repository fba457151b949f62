//! 1-bit RaBitQ codes of an IVF list's rows (`quantization="rabitq"` or `"binary"`),
//! laid out for the fast-scan kernel ([`crate::distance::Kernels::fast_scan`]), and the
//! bound that decides which rows a search scores exactly.
//!
//! # Codes
//! A row `x` of list `l` (normalised first for cosine and angular) is taken relative
//! to the list's centroid, `x' = x − c`, zero-padded to `P` components (the power of
//! two above the dimension for `rabitq`, the multiple of 64 for `binary`) and rotated,
//! `y = R·x'` (the rotation of the HNSW codes, [`crate::index::rotation`]); its code
//! is the sign of each component, `bᵢ = [yᵢ > 0]`, standing for the unit vector
//! `x̄ = (2b − 1)/√P`. Four consecutive bits form a 4-bit sub-code: a row has `P/4` of
//! them, `P/8` bytes. Rows are stored in blocks of 32, sub-code by sub-code (16 bytes
//! each: row `j`'s in the low nibble of byte `j`, row `j + 16`'s in the high one), the
//! layout one lookup-table pass scores 32 rows in. Kept per row: `‖x'‖²`,
//! `‖x'‖/⟨x̄, o⟩` (`o = y/‖y‖`) and `‖x'‖·√(1/⟨x̄, o⟩² − 1)·ε₀/√(P − 1)`, the
//! row's part of the error bound below, and its number of set bits.
//!
//! # Estimates
//! For the query `q` (normalised likewise) and list `l`, `z = R·(q − c)`
//! (inner product: `z = R·q`). RaBitQ's estimator of `⟨o, z⟩` is `⟨x̄, z⟩/⟨x̄, o⟩`, and
//! `⟨x̄, z⟩ = (2·Σ_{bᵢ=1} zᵢ − Σz)/√P`. The query's components are rounded to integers
//! `zᵢ ≈ z_min + Δ·uᵢ`, `uᵢ ≤ 63` (RaBitQ rounds to 4 bits and loses next to nothing),
//! so `Σ_{bᵢ=1} zᵢ ≈ z_min·(set bits) + Δ·Σ_{bᵢ=1} uᵢ`, and `Σ_{bᵢ=1} uᵢ` is a sum over
//! sub-codes of a 16-entry byte table of four `uᵢ` (entry `v`: the sum of those whose
//! bit is set in `v`, at most 252) — the fast-scan kernel sums them for 32 rows at
//! once. Then
//! - euclidean, cosine, angular: `‖q − x‖² ≈ ‖x'‖² + ‖z‖² − 2‖x'‖·⟨o, z⟩`;
//! - inner product: `−q·x ≈ −(q·c + ‖x'‖·⟨o, z⟩)`.
//!
//! # The bound
//! With probability about `1 − 2·exp(−c₀·ε₀²)` over the rotation, the estimator's
//! error is at most `‖z‖·√(1/⟨x̄, o⟩² − 1)·ε₀/√(P − 1)` (RaBitQ's theorem;
//! [`EPSILON`] = 3: the paper's 1.9 let about 3 % of rows past their bound on the
//! wrong side, enough that probing every list stopped at recall@10 0.9967 on 100,000
//! synthetic rows where the full scan has 1.0; 3 matches the full scan's recall at
//! every `nprobe`, for about a quarter of the speed), and the query's rounding adds at
//! most `3.5·Δ·√(P/24)` to `Σ_{bᵢ=1} zᵢ` (3.5 standard deviations of the ~`P/2`
//! independent roundings it sums). A search scores a row exactly only when the estimate minus
//! that bound could still beat the `k`-th exact score it holds: every row it returns is
//! scored exactly, and a true neighbour is missed only where the bound fails.

use crate::distance::Kernels;
use crate::index::rotation::{encode, Rotation};

/// Rows per block: the fast-scan kernel scores 32 rows at a time.
pub(super) const BLOCK: usize = 32;

/// RaBitQ's ε₀: the bound's width in standard deviations of the estimator (module docs).
pub(super) const EPSILON: f32 = 3.0;

/// What codes made with `rot` depend on beyond the rows and centroids: the rotation
/// (its images of the first two unit vectors) and the bound's [`EPSILON`]. Saved codes
/// whose fingerprint differs (another build's rotation or bound) are made again.
pub(super) fn fingerprint(rot: &Rotation) -> u64 {
    let p = rot.padded();
    let mut h = crc32fast::Hasher::new();
    h.update(&(p as u64).to_le_bytes());
    h.update(&EPSILON.to_bits().to_le_bytes());
    let mut y = Vec::new();
    for axis in 0..2.min(p) {
        let mut e = vec![0f32; p];
        e[axis] = 1.0;
        rot.apply(&e, &[], &mut y);
        for v in &y {
            h.update(&v.to_bits().to_le_bytes());
        }
    }
    let low = u64::from(h.finalize());
    (low << 32) | (p as u64 & 0xffff_ffff)
}

/// One list's codes, for its first [`ListCodes::len`] rows (rows pushed since are
/// coded by the next [`ListCodes::code`] call; a search scans them exactly).
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct ListCodes {
    /// Whole blocks of `groups·16` bytes.
    blocks: Vec<u8>,
    /// Per coded row: `[‖x'‖², ‖x'‖/⟨x̄, o⟩, the bound's part, set bits]` (module docs).
    factors: Vec<[f32; 4]>,
}

impl ListCodes {
    /// Coded rows.
    pub(super) fn len(&self) -> usize {
        self.factors.len()
    }

    /// Gives back the capacity beyond the codes held.
    pub(super) fn shrink(&mut self) {
        self.blocks.shrink_to_fit();
        self.factors.shrink_to_fit();
    }

    pub(super) fn bytes(&self) -> usize {
        self.blocks.capacity() + self.factors.capacity() * 16
    }

    /// Appends the code of the rotated residual `y` (`P` components).
    pub(super) fn push(&mut self, y: &[f32], bits: &mut Vec<u8>) {
        let p = y.len();
        let groups = p / 4;
        bits.clear();
        bits.resize(p / 8, 0);
        let [norm, inv, ones, norm2] = encode(y, bits);
        let i = self.factors.len();
        if i.is_multiple_of(BLOCK) {
            self.blocks.resize(self.blocks.len() + groups * 16, 0);
        }
        for g in 0..groups {
            self.set_nibble(groups, i, g, (bits[g / 2] >> (4 * (g % 2))) & 0x0f);
        }
        let spread = if inv > 0.0 {
            (inv * inv - 1.0).max(0.0).sqrt()
        } else {
            0.0
        };
        let bound = norm * spread * EPSILON / ((p as f32 - 1.0).max(1.0)).sqrt();
        self.factors.push([norm2, norm * inv, bound, ones]);
    }

    /// The code of row `i` into `bits` (`groups/2` bytes: sub-code `g` in the low nibble
    /// of byte `g/2` when `g` is even, the high one when odd), and its factors.
    pub(super) fn row(&self, groups: usize, i: usize, bits: &mut Vec<u8>) -> [f32; 4] {
        bits.clear();
        bits.resize(groups.div_ceil(2), 0);
        for g in 0..groups {
            bits[g / 2] |= self.nibble(groups, i, g) << (4 * (g % 2));
        }
        self.factors[i]
    }

    /// Appends a row's code as [`ListCodes::row`] gives it (saved with the lists).
    pub(super) fn push_coded(&mut self, groups: usize, bits: &[u8], factors: [f32; 4]) {
        let i = self.factors.len();
        if i.is_multiple_of(BLOCK) {
            self.blocks.resize(self.blocks.len() + groups * 16, 0);
        }
        for g in 0..groups {
            let v = bits.get(g / 2).map_or(0, |b| (b >> (4 * (g % 2))) & 0x0f);
            self.set_nibble(groups, i, g, v);
        }
        self.factors.push(factors);
    }

    /// Moves the last coded row into row `pos` and drops the last (a list's removal).
    pub(super) fn swap_remove(&mut self, pos: usize, groups: usize) {
        let last = self.factors.len() - 1;
        for g in 0..groups {
            let v = self.nibble(groups, last, g);
            self.set_nibble(groups, pos, g, v);
            self.set_nibble(groups, last, g, 0);
        }
        self.factors.swap_remove(pos);
        self.blocks
            .truncate(self.factors.len().div_ceil(BLOCK) * groups * 16);
    }

    /// Byte and shift of sub-code `g` of row `i`.
    #[inline]
    fn at(groups: usize, i: usize, g: usize) -> (usize, u32) {
        let (b, j) = (i / BLOCK, i % BLOCK);
        ((b * groups + g) * 16 + j % 16, if j < 16 { 0 } else { 4 })
    }

    fn nibble(&self, groups: usize, i: usize, g: usize) -> u8 {
        let (byte, shift) = Self::at(groups, i, g);
        (self.blocks[byte] >> shift) & 0x0f
    }

    fn set_nibble(&mut self, groups: usize, i: usize, g: usize, v: u8) {
        let (byte, shift) = Self::at(groups, i, g);
        let b = &mut self.blocks[byte];
        *b = (*b & !(0x0f << shift)) | (v << shift);
    }

    /// Codes `rows` (`dim` floats each, in the coarse space) against `centroid` and
    /// appends them.
    pub(super) fn code(&mut self, rot: &Rotation, centroid: &[f32], rows: &[f32], dim: usize) {
        let (mut y, mut bits) = (Vec::new(), Vec::new());
        for x in rows.chunks_exact(dim.max(1)) {
            rot.apply(x, centroid, &mut y);
            self.push(&y, &mut bits);
        }
    }
}

/// A query's tables for one list (or, for inner product, for every list).
#[derive(Debug, Default)]
pub(super) struct Tables {
    /// `G·16` bytes.
    luts: Vec<u8>,
    /// The query's components as integers `zᵢ ≈ z_min + Δ·uᵢ`, `uᵢ ≤ 63`.
    units: Vec<u8>,
    /// `z_min` and `Δ`.
    z_min: f32,
    step: f32,
    /// `Σz` and `‖z‖²`.
    z_sum: f32,
    z2: f32,
    /// `1/√P`, and the rounding bound in units of `⟨x̄, z⟩` (module docs).
    inv_root: f32,
    rounding: f32,
    /// `‖z‖`.
    z_norm: f32,
}

/// The largest query integer: a table entry sums four, at most 252, a byte.
const QUERY_MAX: f32 = 63.0;

impl Tables {
    /// The tables of the rotated query `z` (`P` components).
    pub(super) fn fill(&mut self, z: &[f32]) {
        let p = z.len();
        let (mut lo, mut hi, mut z_sum, mut z2) = (f32::INFINITY, f32::NEG_INFINITY, 0f64, 0f64);
        for &x in z {
            lo = lo.min(x);
            hi = hi.max(x);
            z_sum += f64::from(x);
            z2 += f64::from(x) * f64::from(x);
        }
        if z.is_empty() {
            (lo, hi) = (0.0, 0.0);
        }
        let step = (hi - lo) / QUERY_MAX;
        let inv = if step > 0.0 { 1.0 / step } else { 0.0 };
        // Non-negative: rounding is `+ 0.5` and a truncating cast.
        self.units.clear();
        self.units.extend(
            z.iter()
                .map(|&x| (((x - lo) * inv + 0.5) as i32).clamp(0, 63) as u8),
        );
        self.luts.clear();
        self.luts.resize(p / 4 * 16, 0);
        for (u, t) in self
            .units
            .chunks_exact(4)
            .zip(self.luts.chunks_exact_mut(16))
        {
            // Entry `v`: the sum of the components whose bit is set in `v`, built
            // from the entries of fewer bits (byte adds, exact: at most 4 · 63).
            t[1] = u[0];
            t[2] = u[1];
            t[3] = u[0] + u[1];
            for v in 4..8 {
                t[v] = t[v - 4] + u[2];
            }
            for v in 8..16 {
                t[v] = t[v - 8] + u[3];
            }
        }
        let root = (p as f32).sqrt().max(1.0);
        self.z_min = lo;
        self.step = step;
        self.z_sum = z_sum as f32;
        self.z2 = z2 as f32;
        self.inv_root = 1.0 / root;
        // Each integer is within Δ/2 of its component; over the ~P/2 set bits the
        // errors add like independent uniforms: 3.5 standard deviations of the sum,
        // 3.5·Δ·√(P/24), doubled and over √P in units of ⟨x̄, z⟩.
        self.rounding = 7.0 * step / 24f32.sqrt();
        self.z_norm = (z2 as f32).sqrt();
    }

    /// Scores the coded rows of `codes` block by block: calls `each(i, estimate,
    /// margin)` for row `i` with the estimate of `‖x'‖·⟨o, z⟩` and the margin it is
    /// within (the module docs' bound).
    pub(super) fn scan(
        &self,
        k: &Kernels,
        codes: &ListCodes,
        mut each: impl FnMut(usize, f32, f32),
    ) {
        let block_bytes = self.luts.len();
        if block_bytes == 0 {
            return;
        }
        let mut acc = [0u32; BLOCK];
        for (b, block) in codes.blocks.chunks_exact(block_bytes).enumerate() {
            (k.fast_scan)(block, &self.luts, &mut acc);
            let first = b * BLOCK;
            let rows = codes.factors.len().saturating_sub(first).min(BLOCK);
            for (j, (&a, f)) in acc
                .iter()
                .zip(&codes.factors[first..first + rows])
                .enumerate()
            {
                let set = self.z_min * f[3] + self.step * a as f32;
                let xz = (2.0 * set - self.z_sum) * self.inv_root;
                let est = f[1] * xz;
                let margin = self.z_norm * f[2] + f[1] * self.rounding;
                each(first + j, est, margin);
            }
        }
    }

    /// The squared distance estimate and its lower bound for a row with factors at
    /// `i` of `codes`, from [`Tables::scan`]'s estimate and margin.
    #[inline]
    pub(super) fn l2(&self, codes: &ListCodes, i: usize, est: f32, margin: f32) -> f32 {
        codes.factors[i][0] + self.z2 - 2.0 * (est + margin)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    /// Estimates land within their bound for most rows, and the
    /// nibble layout survives removals (each remaining row keeps its estimate).
    #[test]
    fn estimates_stay_within_their_bound_and_removals_keep_codes() {
        let dim = 100;
        let rot = Rotation::new(dim, crate::config::Quantization::RaBitQ);
        let p = rot.padded();
        let mut rng = SplitMix64::new(5);
        let mut u = move || rng.next_f64() as f32 * 2.0 - 1.0;
        let centroid: Vec<f32> = (0..dim).map(|_| u() * 3.0).collect();
        let rows: Vec<f32> = (0..dim * 200).map(|i| centroid[i % dim] + u()).collect();
        let mut codes = ListCodes::default();
        codes.code(&rot, &centroid, &rows, dim);
        assert_eq!(codes.len(), 200);
        let q: Vec<f32> = (0..dim).map(|i| centroid[i] + u() * 0.5).collect();
        let mut z = Vec::new();
        rot.apply(&q, &centroid, &mut z);
        let mut t = Tables::default();
        t.fill(&z);
        let k = crate::distance::kernels();
        let truth = |i: usize| {
            let x = &rows[i * dim..(i + 1) * dim];
            let xq: Vec<f32> = x.iter().zip(&q).map(|(a, b)| a - b).collect();
            dot(&xq, &xq)
        };
        let mut got = vec![(0f32, 0f32); 200];
        t.scan(k, &codes, |i, est, margin| got[i] = (est, margin));
        let mut outside = 0;
        for (i, &(est, margin)) in got.iter().enumerate() {
            let estimate = t.l2(&codes, i, est, 0.0);
            let bound = 2.0 * margin;
            if (estimate - truth(i)).abs() > bound {
                outside += 1;
            }
            assert!(t.l2(&codes, i, est, margin) <= estimate);
        }
        // ε₀ = 3 standard deviations: well under 1 % of estimates fall outside.
        assert!(outside <= 3, "{outside} of 200 rows outside their bound");
        // Remove rows 3 and 0: the last rows move into their places with their codes.
        codes.swap_remove(3, p / 4);
        codes.swap_remove(0, p / 4);
        let mut after = vec![(0f32, 0f32); 198];
        t.scan(k, &codes, |i, est, margin| after[i] = (est, margin));
        assert_eq!(after[3], got[199]);
        assert_eq!(after[0], got[198]);
        assert_eq!(after[5], got[5]);
    }
}
