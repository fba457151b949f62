//! Distance metrics: names, exact definitions, and the dispatch onto the SIMD kernels.
//!
//! Smaller distance = closer for every metric. Definitions (also in the README):
//!
//! | metric | distance | similarity |
//! |---|---|---|
//! | euclidean | ‖a−b‖₂ | 1 / (1 + d) |
//! | manhattan | Σ\|aᵢ−bᵢ\| | 1 / (1 + d) |
//! | chebyshev | max \|aᵢ−bᵢ\| | 1 / (1 + d) |
//! | cosine | 1 − cos(a,b) | cos(a,b) = 1 − d |
//! | angular | arccos(cos(a,b)) / π | 1 − d |
//! | inner_product | −a·b | a·b = −d |
//! | hamming | #{i : (aᵢ>0) ≠ (bᵢ>0)} | 1 − d / dim |
//! | jaccard | 1 − Σmin(aᵢ,bᵢ) / Σmax(aᵢ,bᵢ) (non-negative input) | 1 − d |
//!
//! cos(a,b) is clamped to [−1, 1] and defined as 0 when either vector is zero, so
//! cosine gives 1.0 and angular 0.5 there — never NaN. Jaccard of two zero vectors
//! is 0 (they are identical).

use crate::distance::kernels;
use crate::error::{Error, Result};
use crate::vector::check_dims;

/// One of the eight supported metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DistanceMetric {
    Euclidean,
    Manhattan,
    Cosine,
    Angular,
    Chebyshev,
    Jaccard,
    Hamming,
    InnerProduct,
}

impl DistanceMetric {
    /// Every metric, in a stable order.
    pub const ALL: [DistanceMetric; 8] = [
        DistanceMetric::Euclidean,
        DistanceMetric::Manhattan,
        DistanceMetric::Cosine,
        DistanceMetric::Angular,
        DistanceMetric::Chebyshev,
        DistanceMetric::Jaccard,
        DistanceMetric::Hamming,
        DistanceMetric::InnerProduct,
    ];

    /// The canonical lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            DistanceMetric::Euclidean => "euclidean",
            DistanceMetric::Manhattan => "manhattan",
            DistanceMetric::Cosine => "cosine",
            DistanceMetric::Angular => "angular",
            DistanceMetric::Chebyshev => "chebyshev",
            DistanceMetric::Jaccard => "jaccard",
            DistanceMetric::Hamming => "hamming",
            DistanceMetric::InnerProduct => "inner_product",
        }
    }

    /// Parses a name, case-insensitively; accepts the common aliases `l2`, `l1`,
    /// `linf`, `ip`, `dot`.
    ///
    /// # Errors
    /// An unknown name, with the list of valid ones.
    pub fn from_name(name: &str) -> Result<Self> {
        let lower = name.trim().to_ascii_lowercase();
        let metric = match lower.as_str() {
            "euclidean" | "l2" => DistanceMetric::Euclidean,
            "manhattan" | "l1" => DistanceMetric::Manhattan,
            "cosine" => DistanceMetric::Cosine,
            "angular" => DistanceMetric::Angular,
            "chebyshev" | "linf" => DistanceMetric::Chebyshev,
            "jaccard" => DistanceMetric::Jaccard,
            "hamming" => DistanceMetric::Hamming,
            "inner_product" | "ip" | "dot" => DistanceMetric::InnerProduct,
            _ => {
                let names: Vec<&str> = Self::ALL.iter().map(|m| m.name()).collect();
                return Err(Error::invalid(format!(
                    "unknown distance metric {name:?}; expected one of {}",
                    names.join(", ")
                )));
            }
        };
        Ok(metric)
    }

    /// The distance between `a` and `b`, validated.
    ///
    /// # Errors
    /// Different lengths; negative components under Jaccard.
    pub fn distance(self, a: &[f32], b: &[f32]) -> Result<f32> {
        check_dims(a.len(), b.len())?;
        if self == DistanceMetric::Jaccard {
            check_non_negative(a)?;
            check_non_negative(b)?;
        }
        Ok(self.distance_unchecked(a, b))
    }

    /// The distance for inputs already validated (equal lengths; non-negative for
    /// Jaccard). This is the hot path: no checks beyond a debug assertion.
    pub fn distance_unchecked(self, a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let k = kernels();
        match self {
            DistanceMetric::Euclidean => {
                let sq = (k.l2_squared)(a, b);
                if sq.is_finite() {
                    sq.sqrt()
                } else {
                    l2_f64(a, b) as f32
                }
            }
            DistanceMetric::Manhattan => (k.l1)(a, b),
            DistanceMetric::Chebyshev => (k.linf)(a, b),
            DistanceMetric::InnerProduct => -(k.dot)(a, b),
            DistanceMetric::Cosine => cos_and_gap(a, b).1 as f32,
            DistanceMetric::Angular => {
                let (cos, gap) = cos_and_gap(a, b);
                // Nearly parallel: the angle from the chord ‖â − b̂‖ = √(2·gap), where
                // acos(cos) would have lost it to cos's rounding.
                let angle = if cos > 0.5 {
                    2.0 * ((2.0 * gap).sqrt() / 2.0).asin()
                } else {
                    cos.acos()
                };
                (angle / std::f64::consts::PI) as f32
            }
            DistanceMetric::Hamming => hamming(a, b),
            DistanceMetric::Jaccard => jaccard(a, b),
        }
    }

    /// The documented monotone similarity for a distance `d` between vectors of
    /// dimension `dim` (larger = more similar).
    pub fn similarity_from_distance(self, d: f32, dim: usize) -> f32 {
        match self {
            DistanceMetric::Euclidean | DistanceMetric::Manhattan | DistanceMetric::Chebyshev => {
                1.0 / (1.0 + d)
            }
            DistanceMetric::Cosine | DistanceMetric::Angular | DistanceMetric::Jaccard => 1.0 - d,
            DistanceMetric::InnerProduct => -d,
            DistanceMetric::Hamming => 1.0 - d / dim.max(1) as f32,
        }
    }

    /// The similarity between `a` and `b`.
    ///
    /// # Errors
    /// As [`DistanceMetric::distance`].
    pub fn similarity(self, a: &[f32], b: &[f32]) -> Result<f32> {
        Ok(self.similarity_from_distance(self.distance(a, b)?, a.len()))
    }
}

/// cos(a, b): 0 when either vector is zero, clamped against rounding, never NaN.
///
/// The SIMD kernel sums in f32; when a sum overflows (components above ~1e19) or a
/// squared norm underflows to zero or the subnormal range (components below ~1e-19),
/// the result is recomputed in f64, which has the range for any finite f32 input.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    cos_and_gap(a, b).0 as f32
}

/// Below this `‖q̂ − x̂‖²` (a cosine distance of 0.005) the scans score a row again in
/// f64 ([`unit_chord`]): the float32 chord's rounding, ~4u/‖q̂ − x̂‖ of its value
/// (u = 2⁻²⁴: the normalised query and row are each off by ~u), reaches 10⁻³ of it at
/// cosine distances of 10⁻⁹ (rows far from the origin), more than the gaps between
/// their neighbours; above the threshold it stays under ~2·10⁻⁶, the size of the
/// kernel's summation error. Real embeddings rarely have rows this near.
pub(crate) const NEAR_CHORD: f32 = 1e-2;

/// The exact scans' cosine score `‖q̂ − x̂‖² = 2 − 2·cos` for query `q` (`unit` =
/// q/‖q‖ in f32) and row `x` (`inv` = 1/‖x‖, not 0): the float32 kernel's value, or,
/// below [`NEAR_CHORD`], twice the gap [`DistanceMetric::distance_unchecked`] computes
/// from `q` and `x` in f64 — so nearly parallel rows are chosen in the exact metric's
/// order, not in the order of float32's rounding.
#[inline]
pub(crate) fn unit_chord(unit: &[f32], q: &[f32], x: &[f32], inv: f32) -> f32 {
    near_chord((kernels().l2_scaled)(unit, x, inv), q, x)
}

/// A float32 chord `s` between `q` and `x` (as [`unit_chord`] computes it), or below
/// [`NEAR_CHORD`], the same from the float64 gap.
#[inline]
pub(crate) fn near_chord(s: f32, q: &[f32], x: &[f32]) -> f32 {
    if s < NEAR_CHORD {
        (2.0 * cos_and_gap(q, x).1) as f32
    } else {
        s
    }
}

/// cos(a, b) and 1 − cos(a, b) (0 and 1 when either vector is zero). For nearly
/// parallel vectors (cos > 0.5) the gap is computed as ‖â − b̂‖²/2 in f64 from the
/// exact (f64) norms: `1 − cos` from a float32 dot product keeps only ~10⁻⁷ of
/// absolute precision, too little for vectors far from the origin, whose cosine
/// distances to their neighbours are ~10⁻⁶ and smaller.
fn cos_and_gap(a: &[f32], b: &[f32]) -> (f64, f64) {
    let cos = f64::from(cos_f32_parts(a, b));
    if cos <= 0.5 {
        return (cos, 1.0 - cos);
    }
    let na = sum_pairs_f64(a, a, |x, _| x * x).sqrt();
    let nb = sum_pairs_f64(b, b, |x, _| x * x).sqrt();
    let (ia, ib) = (1.0 / na, 1.0 / nb);
    let gap = sum_pairs_f64(a, b, |x, y| (x * ia - y * ib).powi(2)) / 2.0;
    // Below ~1e-30 (angles under ~1.4e-15) the f64 chord is rounding noise of the two
    // unit vectors (~1e-16 each, squared): parallel vectors report exactly 0.
    let gap = if gap < 1e-30 { 0.0 } else { gap.min(2.0) };
    (1.0 - gap, gap)
}

/// Σ `f(aᵢ, bᵢ)` in f64 over the common length, in eight independent sums: one
/// running f64 sum waits on each add (about 0.5 µs at 384-d), which made the three
/// sums of [`cos_and_gap`] 12 % of an HNSW search returning 10 cosine distances.
#[inline]
fn sum_pairs_f64(a: &[f32], b: &[f32], f: impl Fn(f64, f64) -> f64) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    let mut acc = [0.0f64; 8];
    for (x, y) in ca.iter().zip(cb) {
        for ((s, &xi), &yi) in acc.iter_mut().zip(x).zip(y) {
            *s += f(f64::from(xi), f64::from(yi));
        }
    }
    let tail: f64 = ra
        .iter()
        .zip(rb)
        .map(|(&x, &y)| f(f64::from(x), f64::from(y)))
        .sum();
    acc.iter().sum::<f64>() + tail
}

/// cos(a, b) from the SIMD kernel's one-pass sums (f64 fallback out of f32's range).
fn cos_f32_parts(a: &[f32], b: &[f32]) -> f32 {
    let (dot, na, nb) = (kernels().cosine_parts)(a, b);
    let (dot, na, nb) = if dot.is_finite() && na.is_normal() && nb.is_normal() {
        (f64::from(dot), f64::from(na), f64::from(nb))
    } else {
        cosine_parts_f64(a, b)
    };
    let denom = na.sqrt() * nb.sqrt();
    if denom == 0.0 {
        return 0.0;
    }
    ((dot / denom) as f32).clamp(-1.0, 1.0)
}

/// (a·b, ‖a‖², ‖b‖²) in f64 with the vectors pre-scaled by their largest magnitude,
/// so neither overflow nor underflow can occur; the scale cancels in the cosine.
fn cosine_parts_f64(a: &[f32], b: &[f32]) -> (f64, f64, f64) {
    let scale = |v: &[f32]| {
        let m = v.iter().fold(0.0f64, |m, &x| m.max(f64::from(x).abs()));
        if m == 0.0 {
            1.0
        } else {
            m
        }
    };
    let (sa, sb) = (scale(a), scale(b));
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x) / sa, f64::from(y) / sb);
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    (dot, na, nb)
}

/// ‖a − b‖₂ in f64 (for inputs whose f32 sum of squares overflows).
fn l2_f64(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        .sqrt()
}

fn hamming(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .filter(|(&x, &y)| (x > 0.0) != (y > 0.0))
        .count() as f32
}

fn jaccard(a: &[f32], b: &[f32]) -> f32 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        num += f64::from(x.min(y));
        den += f64::from(x.max(y));
    }
    if den == 0.0 {
        0.0
    } else {
        (1.0 - num / den) as f32
    }
}

fn check_non_negative(v: &[f32]) -> Result<()> {
    match v.iter().position(|&x| x < 0.0) {
        None => Ok(()),
        Some(i) => Err(Error::invalid(format!(
            "jaccard distance needs non-negative components; found {} at position {i}",
            v[i]
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: DistanceMetric, a: &[f32], b: &[f32]) -> f32 {
        m.distance(a, b).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn names_round_trip() {
        for m in DistanceMetric::ALL {
            assert_eq!(DistanceMetric::from_name(m.name()).ok(), Some(m));
        }
        assert!(DistanceMetric::from_name("nope").is_err());
        assert_eq!(
            DistanceMetric::from_name("L2").ok(),
            Some(DistanceMetric::Euclidean)
        );
    }

    #[test]
    fn zero_vector_under_cosine_and_angular_is_defined() {
        let z = [0.0, 0.0, 0.0];
        let a = [1.0, 2.0, 3.0];
        assert_eq!(d(DistanceMetric::Cosine, &z, &a), 1.0);
        assert_eq!(d(DistanceMetric::Angular, &z, &a), 0.5);
        assert_eq!(d(DistanceMetric::Cosine, &z, &z), 1.0);
    }

    #[test]
    fn definitions_on_small_cases() {
        let a = [1.0, 0.0, -2.0];
        let b = [0.0, 2.0, 1.0];
        assert!((d(DistanceMetric::Euclidean, &a, &b) - 14f32.sqrt()).abs() < 1e-6);
        assert_eq!(d(DistanceMetric::Manhattan, &a, &b), 6.0);
        assert_eq!(d(DistanceMetric::Chebyshev, &a, &b), 3.0);
        assert_eq!(d(DistanceMetric::InnerProduct, &a, &b), 2.0);
        assert_eq!(d(DistanceMetric::Hamming, &a, &b), 3.0);
        assert!((d(DistanceMetric::Angular, &[1.0, 0.0], &[0.0, 1.0]) - 0.5).abs() < 1e-6);
        assert!(
            (d(DistanceMetric::Jaccard, &[1.0, 1.0, 0.0], &[1.0, 0.0, 1.0]) - 2.0 / 3.0).abs()
                < 1e-6
        );
        assert_eq!(d(DistanceMetric::Jaccard, &[0.0, 0.0], &[0.0, 0.0]), 0.0);
        assert!(DistanceMetric::Jaccard.distance(&[-1.0], &[1.0]).is_err());
    }

    #[test]
    fn extreme_magnitudes_never_give_nan_or_inf() {
        let big = [1e20f32, 2e20, 3e20];
        let big2 = [3e20f32, 2e20, 1e20];
        let c = d(DistanceMetric::Cosine, &big, &big2);
        assert!((c - (1.0 - 10.0 / 14.0)).abs() < 1e-6, "{c}");
        let tiny = [1e-30f32, 2e-30, 3e-30];
        assert!(d(DistanceMetric::Cosine, &tiny, &tiny).abs() < 1e-6);
        assert!(d(DistanceMetric::Angular, &tiny, &tiny).abs() < 1e-3);
        let e = d(DistanceMetric::Euclidean, &[1e20, 1e20], &[-1e20, -1e20]);
        assert!((e / (8f32.sqrt() * 1e20) - 1.0).abs() < 1e-6, "{e}");
    }

    #[test]
    fn dimension_mismatch_is_typed() {
        assert!(matches!(
            DistanceMetric::Euclidean.distance(&[1.0], &[1.0, 2.0]),
            Err(Error::DimensionMismatch {
                expected: 1,
                got: 2
            })
        ));
    }
}
