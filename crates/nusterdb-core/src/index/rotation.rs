//! The random rotation of RaBitQ codes and the 1-bit code of a rotated row, shared by
//! the HNSW index's codes (`hnsw/rabitq.rs`, which documents the scheme) and the IVF
//! lists' (`ivf/codes.rs`).
//!
//! # Two shapes of rotation
//! A row of `dim` components is zero-padded to `P` and rotated by an orthogonal `R`
//! applied in `O(P log P)`:
//! - `P` a power of two: `R = H·D₃·H·D₂·H·D₁` — `H` the normalised Walsh–Hadamard
//!   matrix of size `P`, `Dᵢ` diagonal matrices of random signs;
//! - otherwise (`P` a multiple of 64 between powers of two, e.g. 384 or 1,536):
//!   `R = B·Π₃·D₃·B·Π₂·D₂·B·Π₁·D₁`, `Πᵢ` random permutations and `B` the normalised
//!   Walsh–Hadamard transforms of the power-of-two blocks `P` splits into, largest
//!   first (384 = 256 + 128). A transform confined to blocks mixes nothing across them;
//!   the permutations carry each block's output into every block of the next round.
//!   Every step is orthogonal, so `R` is; and like the power-of-two shape its entries
//!   come out spread and near-Gaussian (at 384 and 1,536 components no entry holds
//!   0.07 of an axis's energy, and their fourth moment is a Gaussian's to within 0.1 —
//!   the tests check it; a single Hadamard window shifted over the components with
//!   butterflies between halves, another construction, left entries holding 0.1–0.17
//!   of an axis and fourth moments of 4–15).
//!
//! `quantization="rabitq"` rotates into the power of two above the dimension (the first
//! shape; 384 components into 512), `"binary"` into the multiple of 64 (384 into 384:
//! [`crate::config::Quantization::rotated_dim`]). A padded code has more bits, and
//! RaBitQ's error bound shrinks as `1/√P`; on the IVF lists of the real 384-d set that
//! bought nothing measurable — the same recall at every `nprobe`, `binary` as fast or
//! faster with codes of 67 bytes a row against 84 (BENCHMARKS.md "Binary codes").

use crate::config::Quantization;
use crate::rng::SplitMix64;

/// Seed of the rotation's signs (with `P` mixed in). Changing it changes every code: the
/// codes file's scheme would need a new version.
const ROTATION_SEED: u64 = 0x5261_4269_7451_0001;

/// Rounds of either shape.
const ROUNDS: usize = 3;

/// The random rotation `R` for rows of `dim` components.
#[derive(Clone, Debug)]
pub(crate) struct Rotation {
    dim: usize,
    /// `P`.
    p: usize,
    /// `D₁, D₂, D₃` as `±1.0`, `P` each.
    signs: Vec<f32>,
    /// Between powers of two: `Π₁, Π₂, Π₃`, `P` each (`Π` takes component `perm[i]`
    /// to `i`); else empty.
    perms: Vec<u32>,
}

impl Rotation {
    /// The rotation of `quant`'s codes of `dim`-component rows (`P` =
    /// [`Quantization::rotated_dim`]).
    pub(crate) fn new(dim: usize, quant: Quantization) -> Self {
        let p = quant.rotated_dim(dim);
        Self::seeded_padded(dim, p, ROTATION_SEED ^ (p as u64).rotate_left(17))
    }

    /// A rotation of `quant`'s codes with signs drawn from `seed` (tests average over
    /// many of them).
    #[cfg(test)]
    pub(crate) fn seeded(dim: usize, quant: Quantization, seed: u64) -> Self {
        Self::seeded_padded(dim, quant.rotated_dim(dim), seed)
    }

    fn seeded_padded(dim: usize, p: usize, seed: u64) -> Self {
        debug_assert!(
            p >= dim && p.is_multiple_of(64),
            "rotated dimension {p} for {dim}"
        );
        let mut rng = SplitMix64::new(seed);
        // The signs first: the power-of-two shape draws exactly these.
        let signs = (0..ROUNDS * p)
            .map(|_| if rng.next_u64() >> 63 == 1 { 1.0 } else { -1.0 })
            .collect();
        let mut perms = Vec::new();
        if !p.is_power_of_two() {
            for _ in 0..ROUNDS {
                let at = perms.len();
                perms.extend(0..p as u32);
                // Fisher–Yates.
                for i in (1..p).rev() {
                    let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                    perms.swap(at + i, at + j);
                }
            }
        }
        Self {
            dim,
            p,
            signs,
            perms,
        }
    }

    /// `P`.
    pub(crate) fn padded(&self) -> usize {
        self.p
    }

    /// `out = R·(x − center)` (`center` may be empty: no centring; components past
    /// either slice count as 0).
    pub(crate) fn apply(&self, x: &[f32], center: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.extend(
            (0..self.dim)
                .map(|i| x.get(i).copied().unwrap_or(0.0) - center.get(i).copied().unwrap_or(0.0)),
        );
        out.resize(self.p, 0.0);
        if self.p.is_power_of_two() {
            for signs in self.signs.chunks_exact(self.p) {
                flip(out, signs);
                fwht(out);
            }
            // Three unnormalised transforms scale by P^{3/2}.
            let scale = 1.0 / (self.p as f32 * (self.p as f32).sqrt());
            for v in out.iter_mut() {
                *v *= scale;
            }
            return;
        }
        let mut moved = vec![0f32; self.p];
        for (signs, perm) in self
            .signs
            .chunks_exact(self.p)
            .zip(self.perms.chunks_exact(self.p))
        {
            // `Πᵢ·Dᵢ`: component `perm[i]`, its sign flipped, moves to `i`.
            for (m, &from) in moved.iter_mut().zip(perm) {
                *m = out[from as usize] * signs[from as usize];
            }
            out.copy_from_slice(&moved);
            // `B`: the blocks, largest first.
            let mut rest = &mut out[..];
            while !rest.is_empty() {
                let block = 1usize << (usize::BITS - 1 - rest.len().leading_zeros());
                let (head, tail) = rest.split_at_mut(block);
                fwht(head);
                let scale = 1.0 / (block as f32).sqrt();
                for v in head.iter_mut() {
                    *v *= scale;
                }
                rest = tail;
            }
        }
    }
}

/// Multiplies `a` by the signs `s` component by component.
fn flip(a: &mut [f32], s: &[f32]) {
    for (v, s) in a.iter_mut().zip(s) {
        *v *= s;
    }
}

/// The unnormalised Walsh–Hadamard transform of `a` (length a power of two), in place.
fn fwht(a: &mut [f32]) {
    let n = a.len();
    let mut h = 1;
    while h < n {
        for block in a.chunks_exact_mut(2 * h) {
            let (lo, hi) = block.split_at_mut(h);
            for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                let (u, v) = (*x, *y);
                *x = u + v;
                *y = u - v;
            }
        }
        h *= 2;
    }
}

/// Codes the rotated row `y` into `out` (`P / 8` bytes, bit `i` = bit `i % 8` of byte
/// `i / 8`): the per-row numbers `[‖y‖, 1/⟨x̄, o⟩, ones, ‖y‖²]` (`1/⟨x̄, o⟩` is 0 for
/// the zero row, whose score is then that of its centre, exact). The HNSW codes
/// then add the centroid's part (see its module docs); an IVF list codes its rows
/// the same way against its own centroid (`ivf/codes.rs`).
pub(crate) fn encode(y: &[f32], out: &mut [u8]) -> [f32; 4] {
    out.fill(0);
    let (mut norm2, mut abs_sum, mut ones) = (0f64, 0f64, 0u32);
    for (i, &v) in y.iter().enumerate() {
        norm2 += f64::from(v) * f64::from(v);
        abs_sum += f64::from(v.abs());
        if v > 0.0 {
            if let Some(byte) = out.get_mut(i / 8) {
                *byte |= 1 << (i % 8);
                ones += 1;
            }
        }
    }
    let norm = norm2.sqrt();
    let inv = if abs_sum > 0.0 {
        (y.len() as f64).sqrt() * norm / abs_sum
    } else {
        0.0
    };
    [norm as f32, inv as f32, ones as f32, norm2 as f32]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// `a·b` in f64 (the tests' reference for rotated dot products).
    pub(crate) fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum()
    }

    /// `R·e_i` for each `i` in `axes`.
    fn images(r: &Rotation, axes: impl Iterator<Item = usize>) -> Vec<Vec<f32>> {
        axes.map(|i| {
            let mut e = vec![0f32; r.dim];
            e[i] = 1.0;
            let mut y = Vec::new();
            r.apply(&e, &[], &mut y);
            y
        })
        .collect()
    }

    /// Rotations between powers of two are orthogonal: the images of the unit vectors
    /// are orthonormal (every pair at 384-d; a sample at 1,536-d) — and spread like a
    /// random rotation's: no entry holds more than 0.07 of an axis's energy, and the
    /// entries scaled by `√P` have a Gaussian's fourth moment (3) to within 0.1.
    #[test]
    fn rotations_between_powers_of_two_are_orthogonal() {
        for (dim, axes) in [(384usize, 384usize), (1536, 48)] {
            let r = Rotation::new(dim, Quantization::Binary);
            assert_eq!(r.padded(), dim);
            let step = dim / axes;
            let cols = images(&r, (0..axes).map(|i| i * step));
            let mut fourth = 0f64;
            for (i, a) in cols.iter().enumerate() {
                assert!(
                    (dot(a, a) - 1.0).abs() < 1e-5,
                    "{dim}: |R e_{i}|² = {}",
                    dot(a, a)
                );
                for b in &cols[i + 1..] {
                    assert!(dot(a, b).abs() < 1e-5, "{dim}: columns not orthogonal");
                }
                let most = a.iter().map(|v| v * v).fold(0f32, f32::max);
                assert!(most < 0.07, "{dim}: one entry holds {most} of an axis");
                fourth += a
                    .iter()
                    .map(|&v| (f64::from(v) * (dim as f64).sqrt()).powi(4))
                    .sum::<f64>();
            }
            let kurtosis = fourth / (axes * dim) as f64;
            assert!((kurtosis - 3.0).abs() < 0.1, "{dim}: kurtosis {kurtosis}");
        }
    }

    /// The power-of-two shape is `H·D₃·H·D₂·H·D₁` with the signs drawn as before
    /// rotations between powers of two existed, so codes saved under it read the same:
    /// checked against the product of the dense matrices.
    #[test]
    fn the_power_of_two_shape_is_the_dense_product() {
        let (dim, p) = (100, 128);
        let r = Rotation::new(dim, Quantization::RaBitQ);
        assert_eq!(r.padded(), p);
        let mut rng = SplitMix64::new(ROTATION_SEED ^ (p as u64).rotate_left(17));
        let signs: Vec<f32> = (0..3 * p)
            .map(|_| if rng.next_u64() >> 63 == 1 { 1.0 } else { -1.0 })
            .collect();
        // Normalised Hadamard entry (i, j): (−1)^popcount(i ∧ j) / √P.
        let h = |i: usize, j: usize| {
            let s = if (i & j).count_ones().is_multiple_of(2) {
                1.0
            } else {
                -1.0
            };
            s / (p as f64).sqrt()
        };
        let x: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut v: Vec<f64> = x.iter().map(|&a| f64::from(a)).collect();
        v.resize(p, 0.0);
        for round in 0..3 {
            let d: Vec<f64> = (0..p)
                .map(|i| v[i] * f64::from(signs[round * p + i]))
                .collect();
            v = (0..p)
                .map(|i| (0..p).map(|j| h(i, j) * d[j]).sum())
                .collect();
        }
        let mut y = Vec::new();
        r.apply(&x, &[], &mut y);
        for (a, b) in y.iter().zip(&v) {
            assert!((f64::from(*a) - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
