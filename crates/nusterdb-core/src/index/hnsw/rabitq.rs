//! 1-bit RaBitQ codes (`quantization="rabitq"`): a random rotation, the sign of each
//! rotated component, and a few numbers per row that make the score an unbiased
//! estimate.
//!
//! # Centroids
//! The estimate's error grows with the distance between a row and the point it is
//! coded against, and with the query's. Coded against the one mean `μ` of the rows
//! ([`super::quant`]'s centre), rows made of far-apart clusters — whose distance from
//! `μ` dwarfs the distances inside a cluster, which decide the neighbours — were
//! estimated too roughly to steer by (recall@10 0.94 at ef 256 on 300,000 × 384
//! synthetic blobs, BENCHMARKS.md). So each row is coded against the nearest of `k`
//! centroids `c`, trained by k-means ([`crate::index::kmeans`]) on a sample of the rows
//! whenever the centre is (each time the row count doubles, when every row is
//! re-coded): `k = ⌊√n⌋` up to [`MAX_CENTROIDS`], none under 4 rows (rows are then
//! coded against `μ`, as a codes file written before centroids reads). The centroids
//! are saved in the codes file; the row's centroid is numbered in its third number
//! ([`pack_ones`]).
//!
//! # Codes
//! A row is taken relative to its centroid (`x' = x − c`), zero-padded to `P`
//! components (`rabitq`: the dimension rounded up to a power of two; `binary`: to a
//! multiple of 64; at least 64) and rotated: `y = R·x'`, for a power of two
//! `R = H·D₃·H·D₂·H·D₁`, `H` the normalised Walsh–Hadamard matrix and `Dᵢ` diagonal
//! matrices of random signs (between powers of two, block transforms with random
//! permutations: [`crate::index::rotation`]) — orthogonal, so `‖y‖ = ‖x'‖` and
//! `(R·a)·(R·b) = a·b`, applied in `O(P log P)`. The code is `bᵢ = [yᵢ > 0]`, one bit a
//! component; it stands for the unit vector `x̄ = (2b − 1)/√P`. Kept per row: `‖x'‖`,
//! `1/⟨x̄, o⟩` with `o = y/‖y‖` (`⟨x̄, o⟩ = Σ|yᵢ| / (√P·‖y‖)`), the number of set bits
//! with the centroid's number, and `‖x'‖² + 2‖x'‖·g` with
//! `g = ⟨x̄, R·(c − μ)⟩ / ⟨x̄, o⟩` (0 against `μ`). The signs and permutations come
//! from a fixed seed and `P`, so every build rotates a row the same way; the codes
//! file's header (1 bit per component, `P`) names this scheme.
//!
//! # Scores
//! The query is centred on `μ` (euclidean and cosine; inner product uses it as given),
//! rotated, `z = R·q'`, and rounded to [`QUERY_BITS`]-bit unsigned integers
//! `z ≈ za + zb·d`. RaBitQ's estimator of `z·o` is `⟨x̄, z⟩ / ⟨x̄, o⟩` (unbiased over the
//! random rotation, error `O(‖z‖/√P)`), and
//! `⟨x̄, z⟩ = (za·(2·ones − P) + zb·(2·Σ_{bᵢ=1} dᵢ − Σd)) / √P`, where
//! `Σ_{bᵢ=1} dᵢ` is the one data-dependent term: `Σ_j 2^j·popcount(b ∧ plane_j(d))`
//! ([`crate::distance::Kernels::dot_bits`]). Then, with `‖x'‖` the row's kept norm:
//! - euclidean and cosine (normalised rows and query):
//!   `‖q − c‖² + ‖x'‖² − 2‖x'‖·(z·o − g)`. The estimator is linear in the query, so
//!   `z·o − g` estimates `⟨q − c, o⟩` with an error that grows with `‖q − c‖`, small
//!   for the clusters near the query — the ones that matter;
//! - inner product: `−(q·c + ‖x'‖·(z·o))`, on the scale of the exact scores a search
//!   mixes in (see [`super::quant`]).
//!
//! `‖q − c‖²` (`q·c`) is computed the first time a walk meets a row of centroid `c`
//! (`quant.rs`), so a query pays for the few clusters it visits, not for all `k`.
//!
//! The estimates are too rough to rank results on, so the walk steers on them (which
//! neighbours to queue and expand) and ranks its results on the exact score of each node
//! it expands (`search.rs`, `expand_ranked_exactly`); a third of `sq4`'s code bytes at
//! 384-d.

pub(super) use crate::index::rotation::{encode, Rotation};

/// Bits per rotated query component (RaBitQ's analysis: 4 lose next to nothing against
/// the float query).
pub(super) const QUERY_BITS: usize = 4;

/// The most centroids a database's rows are coded against.
pub(super) const MAX_CENTROIDS: usize = 1024;

/// Lloyd iterations of the centroids' training.
pub(super) const CENTROID_ITERS: usize = 8;

/// Sample rows per centroid the training reads.
pub(super) const SAMPLE_PER_CENTROID: u64 = 40;

/// How many centroids rows of rotated dimension `p` are coded against when there are
/// `rows` of them: `⌊√rows⌋` (none below 4 rows), at most [`MAX_CENTROIDS`] and at most
/// what [`pack_ones`] can number beside the set-bit count.
pub(super) fn centroid_count(rows: u64, p: usize) -> usize {
    let k = rows.isqrt() as usize;
    let packable = (1usize << 24) >> ones_bits(p);
    if k < 2 {
        0
    } else {
        k.min(MAX_CENTROIDS).min(packable)
    }
}

/// The third per-row number: the set-bit count (`≤ P`) and the row's centroid, as the
/// integer `centroid·2^b + ones` (`b` the bits of `P`, [`ones_bits`]) held exactly in an
/// `f32` (below 2²⁴, which [`centroid_count`] keeps to); centroid 0 gives the count
/// itself.
pub(super) fn pack_ones(ones: f32, centroid: usize, p: usize) -> f32 {
    ((centroid << ones_bits(p)) as u32 + ones as u32) as f32
}

/// The bits a set-bit count of up to `p` takes (`log₂ P + 1` for a power of two, as
/// codes saved before rotations between powers of two packed it).
#[inline(always)]
fn ones_bits(p: usize) -> u32 {
    usize::BITS - p.leading_zeros()
}

/// [`pack_ones`] undone: `(ones, centroid)`.
#[inline(always)]
pub(super) fn unpack_ones(v: f32, p: usize) -> (f32, usize) {
    let (v, shift) = (v as u32, ones_bits(p));
    ((v & ((1 << shift) - 1)) as f32, (v >> shift) as usize)
}

/// A query prepared for scoring 1-bit codes.
#[derive(Clone, Copy, Debug)]
pub(super) struct BitsQuery {
    /// `za/√P` and `zb/√P`.
    c1: f32,
    c2: f32,
    /// `P` (as a float, and as an integer for [`unpack_ones`]) and `Σd`.
    p: f32,
    p_int: usize,
    sum_d: f32,
    /// `‖z‖² = ‖q'‖²`.
    z2: f32,
}

impl BitsQuery {
    /// Rounds the rotated query `z` to [`QUERY_BITS`]-bit integers and writes their bit
    /// planes into `planes` ([`QUERY_BITS`] × `P/8` bytes).
    pub(super) fn new(z: &[f32], planes: &mut Vec<u8>) -> Self {
        let p = z.len();
        let stride = p / 8;
        let levels = (1u32 << QUERY_BITS) - 1;
        let (lo, hi) = z
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        let (za, zb) = if lo.is_finite() && hi > lo {
            (lo, (hi - lo) / levels as f32)
        } else {
            (if lo.is_finite() { lo } else { 0.0 }, 0.0)
        };
        planes.clear();
        planes.resize(QUERY_BITS * stride, 0);
        let (mut sum_d, mut z2) = (0u64, 0f64);
        for (i, &v) in z.iter().enumerate() {
            z2 += f64::from(v) * f64::from(v);
            let d = if zb > 0.0 {
                (((v - za) / zb).round().clamp(0.0, levels as f32)) as u32
            } else {
                0
            };
            sum_d += u64::from(d);
            for j in 0..QUERY_BITS {
                if (d >> j) & 1 == 1 {
                    planes[j * stride + i / 8] |= 1 << (i % 8);
                }
            }
        }
        let root = (p as f32).sqrt();
        Self {
            c1: za / root,
            c2: zb / root,
            p: p as f32,
            p_int: p,
            sum_d: sum_d as f32,
            z2: z2 as f32,
        }
    }

    /// The row's centroid (0 when rows have none).
    #[inline(always)]
    pub(super) fn centroid(&self, f: [f32; 4]) -> usize {
        unpack_ones(f[2], self.p_int).1
    }

    /// The estimate of `z·o` for a row with numbers `f` whose bits meet the query's
    /// planes in `dot = Σ_{bᵢ=1} dᵢ`.
    #[inline(always)]
    pub(super) fn z_dot_o(&self, f: [f32; 4], dot: u32) -> f32 {
        let ones = unpack_ones(f[2], self.p_int).0;
        let zx = self.c1 * (2.0 * ones - self.p) + self.c2 * (2.0 * dot as f32 - self.sum_d);
        zx * f[1]
    }

    /// `‖q' − x'‖²` (`q' = q − μ`) for rows coded against `μ` itself.
    pub(super) fn centre_term(&self) -> f32 {
        self.z2
    }

    /// The estimated squared distance `‖q − x‖²`, `base` = `‖q − c‖²` for the row's
    /// centroid `c` (`‖q − μ‖²` without centroids).
    #[inline(always)]
    pub(super) fn l2(&self, base: f32, f: [f32; 4], dot: u32) -> f32 {
        (base + f[3] - 2.0 * f[0] * self.z_dot_o(f, dot)).max(0.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Quantization;
    use crate::index::rotation::tests::dot;
    use crate::rng::SplitMix64;
    use proptest::prelude::*;

    proptest! {
        /// `R` is orthogonal: norms and dot products survive it (to f32 rounding).
        #[test]
        fn the_rotation_keeps_norms_and_dot_products(
            a in proptest::collection::vec(-100f32..100.0, 1..300),
            seed in any::<u64>(),
        ) {
            let mut rng = SplitMix64::new(seed);
            let b: Vec<f32> = a.iter().map(|_| (rng.next_u64() % 2001) as f32 / 10.0 - 100.0).collect();
            let q = if seed % 2 == 0 { Quantization::RaBitQ } else { Quantization::Binary };
            let r = Rotation::new(a.len(), q);
            let (mut ra, mut rb) = (Vec::new(), Vec::new());
            r.apply(&a, &[], &mut ra);
            r.apply(&b, &[], &mut rb);
            prop_assert_eq!(ra.len(), q.rotated_dim(a.len()));
            let (na, nb) = (dot(&a, &a).sqrt(), dot(&b, &b).sqrt());
            let tol = 1e-4 * (na * nb).max(1.0);
            prop_assert!((dot(&ra, &ra).sqrt() - na).abs() <= 1e-4 * na.max(1.0));
            prop_assert!((dot(&ra, &rb) - dot(&a, &b)).abs() <= tol, "{} vs {}", dot(&ra, &rb), dot(&a, &b));
        }

        /// The bits and numbers of a row are what their definitions give, and the
        /// score of a row against itself as query is near 0.
        #[test]
        fn codes_follow_their_definitions(
            y in (6u32..10).prop_flat_map(|k| proptest::collection::vec(-10f32..10.0, 1usize << k)),
        ) {
            let mut out = vec![0u8; y.len() / 8];
            let f = encode(&y, &mut out);
            let ones: usize = out.iter().map(|b| b.count_ones() as usize).sum();
            prop_assert_eq!(f[2] as usize, ones);
            for (i, &v) in y.iter().enumerate() {
                prop_assert_eq!((out[i / 8] >> (i % 8)) & 1 == 1, v > 0.0);
            }
            let norm = dot(&y, &y).sqrt();
            prop_assert!((f64::from(f[0]) - norm).abs() <= 1e-4 * norm.max(1.0));
            let abs: f64 = y.iter().map(|v| f64::from(v.abs())).sum();
            if abs > 0.0 {
                let want = (y.len() as f64).sqrt() * norm / abs;
                prop_assert!((f64::from(f[1]) - want).abs() <= 1e-4 * want);
            }
        }
    }

    proptest! {
        /// The set-bit count and the centroid's number come back from the packed
        /// float exactly, for every `P` and every centroid [`centroid_count`] allows.
        #[test]
        fn ones_and_centroid_pack_exactly(words in 1usize..=1024, ones_frac in 0.0f64..=1.0, c_frac in 0.0f64..=1.0) {
            let p = 64 * words;
            let kmax = centroid_count(u64::MAX, p);
            prop_assert!((1..=MAX_CENTROIDS).contains(&kmax));
            let ones = (ones_frac * p as f64).round() as usize;
            let c = (c_frac * (kmax - 1) as f64).round() as usize;
            let v = pack_ones(ones as f32, c, p);
            prop_assert_eq!(unpack_ones(v, p), (ones as f32, c));
        }
    }

    #[test]
    fn centroid_counts_follow_the_row_count() {
        assert_eq!(centroid_count(0, 512), 0);
        assert_eq!(centroid_count(3, 512), 0);
        assert_eq!(centroid_count(4, 512), 2);
        assert_eq!(centroid_count(10_000, 512), 100);
        assert_eq!(centroid_count(1 << 40, 512), MAX_CENTROIDS);
        // 2^24 / (2·65,536): the packing's room beside a 65,536-bit count.
        assert_eq!(centroid_count(1 << 40, 65_536), 128);
    }

    /// Over many random rotations the estimate of `z·o` averages to the true value
    /// (unbiased), and each estimate is within a few `‖z‖/√P` of it.
    #[test]
    fn the_estimate_is_unbiased_and_within_its_error() {
        // A power-of-two rotation (200 → 256) and one between powers of two (384).
        for (dim, quant) in [(200, Quantization::RaBitQ), (384, Quantization::Binary)] {
            estimate_within_error(dim, quant);
        }
    }

    fn estimate_within_error(dim: usize, quant: Quantization) {
        let mut rng = SplitMix64::new(7);
        let mut gauss = || {
            // Sum of uniforms: near-normal, enough for a test vector.
            (0..12)
                .map(|_| (rng.next_u64() % 10_000) as f32 / 10_000.0)
                .sum::<f32>()
                - 6.0
        };
        let x: Vec<f32> = (0..dim).map(|_| gauss()).collect();
        let q: Vec<f32> = (0..dim).map(|i| x[i] * 0.6 + gauss() * 0.8).collect();
        let truth = dot(&x, &q) / dot(&x, &x).sqrt();
        let (mut y, mut z, mut planes) = (Vec::new(), Vec::new(), Vec::new());
        let mut sum = 0f64;
        let trials = 200;
        let qn = dot(&q, &q).sqrt();
        for t in 0..trials {
            // A different rotation each trial.
            let r = Rotation::seeded(dim, quant, 1000 + t);
            r.apply(&x, &[], &mut y);
            r.apply(&q, &[], &mut z);
            let mut code = vec![0u8; y.len() / 8];
            let f = encode(&y, &mut code);
            let bq = BitsQuery::new(&z, &mut planes);
            let d = crate::distance::kernels().dot_bits;
            let est = f64::from(bq.z_dot_o(f, d(&planes, &code)));
            let err = (est - truth).abs();
            assert!(
                err <= 4.0 * qn / (y.len() as f64).sqrt(),
                "dim {dim} trial {t}: {est} vs {truth}"
            );
            sum += est;
        }
        let mean = sum / trials as f64;
        assert!(
            (mean - truth).abs() <= 0.05 * qn,
            "dim {dim}: mean {mean} vs {truth} (‖q‖ {qn})"
        );
    }
}
