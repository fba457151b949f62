//! `Vector`: an owned, non-empty, finite f32 vector with the maths users expect.
//!
//! The invariant (at least one component, every component finite) is checked by
//! every constructor and every operation that makes a new vector, so a `Vector`
//! can be stored or searched without re-checking. Storage and search work on
//! plain `&[f32]` slices; this type is the user-facing value, not the storage format.

use crate::config::MAX_DIMENSION;
use crate::distance::kernels;
use crate::error::{Error, Result};
use crate::metric::DistanceMetric;
use crate::rng::SplitMix64;

/// Checks that `data` is a valid vector: non-empty and finite.
///
/// # Errors
/// [`Error::EmptyVector`], or [`Error::NonFinite`] naming the first bad position.
pub fn validate(data: &[f32]) -> Result<()> {
    if data.is_empty() {
        return Err(Error::EmptyVector);
    }
    check_finite(data)
}

/// Checks every component is finite.
///
/// # Errors
/// [`Error::NonFinite`] naming the first bad position.
pub fn check_finite(data: &[f32]) -> Result<()> {
    match data.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(position) => Err(Error::NonFinite {
            position,
            value: data[position],
        }),
    }
}

/// The largest Euclidean norm a stored or query vector may have: 2⁶⁰ ≈ 1.15·10¹⁸.
/// Past it, squared distances (up to (2·2⁶⁰)² = 2¹²²), inner products and the sums
/// the float32 kernels accumulate could overflow float32's 3.4·10³⁸.
pub const MAX_NORM: f64 = (1u64 << 60) as f64;

/// The smallest Euclidean norm of a non-zero stored or query vector: 2⁻⁶⁰ ≈ 8.7·10⁻¹⁹.
/// Below it, squared norms and distances fall into float32's subnormal range
/// (< 1.2·10⁻³⁸), where they keep too few bits to be ranked. The zero vector is allowed.
pub const MIN_NORM: f64 = 1.0 / (1u64 << 60) as f64;

/// ‖x‖ accumulated in f64 (exact enough for any finite f32 input: no overflow, no
/// underflow).
pub fn norm_f64(x: &[f32]) -> f64 {
    x.iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt()
}

/// 1/‖x‖ computed in f64, 0 for a zero vector.
pub fn inv_norm(x: &[f32]) -> f32 {
    let n = norm_f64(x);
    if n > 0.0 {
        (1.0 / n) as f32
    } else {
        0.0
    }
}

/// Checks a vector's norm is 0 or within [`MIN_NORM`, `MAX_NORM`], the range in which
/// every metric's float32 arithmetic neither overflows nor underflows.
///
/// # Errors
/// [`Error::InvalidArgument`] with the norm and the bounds.
pub fn check_magnitude(data: &[f32]) -> Result<()> {
    let n = norm_f64(data);
    if n == 0.0 || (MIN_NORM..=MAX_NORM).contains(&n) {
        return Ok(());
    }
    let side = if n > MAX_NORM { "above" } else { "below" };
    Err(Error::invalid(format!(
        "vector norm {n:e} is {side} the range NusterDB can score exactly in float32 \
         (0, or 2^-60 ≈ 8.7e-19 to 2^60 ≈ 1.15e18); rescale the data"
    )))
}

/// Checks two dimensions agree.
///
/// # Errors
/// [`Error::DimensionMismatch`] with `expected` = `a`, `got` = `b`.
pub fn check_dims(expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::DimensionMismatch { expected, got })
    }
}

/// A dense f32 vector: non-empty, every component finite.
#[derive(Clone, Debug, PartialEq)]
pub struct Vector {
    data: Vec<f32>,
}

impl Vector {
    /// Wraps `data` after checking the invariant.
    ///
    /// # Errors
    /// Empty or non-finite input.
    pub fn new(data: Vec<f32>) -> Result<Self> {
        validate(&data)?;
        Ok(Self { data })
    }

    /// Converts from f64, rejecting values that are not finite once narrowed to f32
    /// (1e39 is finite in f64 but infinite in f32).
    ///
    /// # Errors
    /// Empty or non-finite input.
    pub fn from_f64(data: &[f64]) -> Result<Self> {
        Self::new(data.iter().map(|&x| x as f32).collect())
    }

    fn check_dim_arg(dim: usize) -> Result<()> {
        if dim == 0 {
            Err(Error::EmptyVector)
        } else if dim > MAX_DIMENSION {
            Err(Error::invalid(format!(
                "dimension {dim} is above the maximum of {MAX_DIMENSION}"
            )))
        } else {
            Ok(())
        }
    }

    /// `dim` zeros.
    ///
    /// # Errors
    /// `dim == 0`.
    pub fn zeros(dim: usize) -> Result<Self> {
        Self::check_dim_arg(dim)?;
        Ok(Self {
            data: vec![0.0; dim],
        })
    }

    /// `dim` ones.
    ///
    /// # Errors
    /// `dim == 0`.
    pub fn ones(dim: usize) -> Result<Self> {
        Self::check_dim_arg(dim)?;
        Ok(Self {
            data: vec![1.0; dim],
        })
    }

    /// Components uniform in `[min, max)`; the same `seed` gives the same vector.
    ///
    /// # Errors
    /// `dim == 0`, non-finite bounds, or `min >= max`.
    pub fn random(dim: usize, min: f32, max: f32, seed: Option<u64>) -> Result<Self> {
        Self::check_dim_arg(dim)?;
        if !(min.is_finite() && max.is_finite()) || min >= max {
            return Err(Error::invalid(format!(
                "random range must be finite with min < max, got min={min}, max={max}"
            )));
        }
        let mut rng = seed.map_or_else(SplitMix64::from_entropy, SplitMix64::new);
        let span = f64::from(max) - f64::from(min);
        let data = (0..dim)
            .map(|_| {
                let x = (f64::from(min) + rng.next_f64() * span) as f32;
                // Rounding to f32 can land exactly on `max`; keep the interval half-open.
                if x >= max {
                    min
                } else {
                    x
                }
            })
            .collect();
        Self::new(data)
    }

    /// A vector uniformly distributed on the unit sphere (normalised Gaussian).
    ///
    /// # Errors
    /// `dim == 0`.
    pub fn unit_random(dim: usize, seed: Option<u64>) -> Result<Self> {
        Self::check_dim_arg(dim)?;
        let mut rng = seed.map_or_else(SplitMix64::from_entropy, SplitMix64::new);
        loop {
            let g: Vec<f64> = (0..dim).map(|_| rng.next_gaussian()).collect();
            let norm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
            // A zero draw has probability ~0 but would have no direction; draw again.
            if norm > 0.0 {
                return Self::new(g.iter().map(|x| (x / norm) as f32).collect());
            }
        }
    }

    /// The components.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Consumes the vector, returning its components.
    pub fn into_inner(self) -> Vec<f32> {
        self.data
    }

    /// Number of components.
    pub fn dimension(&self) -> usize {
        self.data.len()
    }

    /// Component `i`, `None` past the end.
    pub fn get(&self, i: usize) -> Option<f32> {
        self.data.get(i).copied()
    }

    fn same_dim(&self, other: &Vector) -> Result<()> {
        check_dims(self.dimension(), other.dimension())
    }

    /// Σ aᵢbᵢ.
    ///
    /// # Errors
    /// Dimension mismatch.
    pub fn dot(&self, other: &Vector) -> Result<f32> {
        self.same_dim(other)?;
        Ok((kernels().dot)(&self.data, &other.data))
    }

    /// Σ aᵢ² (infinite when it exceeds f32's range).
    pub fn norm_squared(&self) -> f32 {
        (kernels().norm_squared)(&self.data)
    }

    /// Euclidean (L2) norm; computed in f64 when the f32 sum of squares overflows, so
    /// any finite vector has a finite norm.
    pub fn norm(&self) -> f32 {
        let sq = self.norm_squared();
        if sq.is_finite() {
            sq.sqrt()
        } else {
            norm_f64(&self.data) as f32
        }
    }

    /// Σ |aᵢ| (L1 norm).
    pub fn l1_norm(&self) -> f32 {
        self.data.iter().map(|x| x.abs()).sum()
    }

    /// max |aᵢ| (L∞ norm).
    pub fn linf_norm(&self) -> f32 {
        self.data.iter().fold(0.0f32, |m, x| m.max(x.abs()))
    }

    /// A unit-length copy.
    ///
    /// # Errors
    /// The zero vector has no direction.
    pub fn normalize(&self) -> Result<Vector> {
        let mut v = self.clone();
        v.normalize_mut()?;
        Ok(v)
    }

    /// Scales in place to unit length.
    ///
    /// # Errors
    /// The zero vector has no direction; it is left unchanged.
    pub fn normalize_mut(&mut self) -> Result<()> {
        // f64 so tiny (subnormal-squared) vectors do not underflow to a zero norm.
        let norm = self
            .data
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        if norm == 0.0 {
            return Err(Error::invalid("cannot normalize the zero vector"));
        }
        for x in &mut self.data {
            *x = (f64::from(*x) / norm) as f32;
        }
        Ok(())
    }

    /// Whether |‖a‖ − 1| ≤ `tolerance`.
    pub fn is_normalized(&self, tolerance: f32) -> bool {
        (self.norm() - 1.0).abs() <= tolerance
    }

    /// Whether every component is finite. Always true for a `Vector` built through
    /// this API (the invariant); kept so callers can check values of any origin.
    pub fn is_finite(&self) -> bool {
        self.data.iter().all(|x| x.is_finite())
    }

    /// Distance under `metric`.
    ///
    /// # Errors
    /// Dimension mismatch; negative components under Jaccard.
    pub fn distance(&self, other: &Vector, metric: DistanceMetric) -> Result<f32> {
        metric.distance(&self.data, &other.data)
    }

    fn zip_map(&self, other: &Vector, f: impl Fn(f32, f32) -> f32) -> Result<Vector> {
        self.same_dim(other)?;
        Self::new(
            self.data
                .iter()
                .zip(&other.data)
                .map(|(&a, &b)| f(a, b))
                .collect(),
        )
    }

    fn map(&self, f: impl Fn(f32) -> f32) -> Result<Vector> {
        Self::new(self.data.iter().map(|&a| f(a)).collect())
    }

    /// Component-wise a + b.
    ///
    /// # Errors
    /// Dimension mismatch; overflow to infinity.
    pub fn add(&self, other: &Vector) -> Result<Vector> {
        self.zip_map(other, |a, b| a + b)
    }

    /// Component-wise a − b.
    ///
    /// # Errors
    /// Dimension mismatch; overflow to infinity.
    pub fn sub(&self, other: &Vector) -> Result<Vector> {
        self.zip_map(other, |a, b| a - b)
    }

    /// Component-wise (Hadamard) a · b.
    ///
    /// # Errors
    /// Dimension mismatch; overflow to infinity.
    pub fn mul(&self, other: &Vector) -> Result<Vector> {
        self.zip_map(other, |a, b| a * b)
    }

    /// Component-wise a / b.
    ///
    /// # Errors
    /// Dimension mismatch; a zero component of `other`; overflow to infinity.
    pub fn div(&self, other: &Vector) -> Result<Vector> {
        self.same_dim(other)?;
        if let Some(position) = other.data.iter().position(|&b| b == 0.0) {
            return Err(Error::DivisionByZero { position });
        }
        self.zip_map(other, |a, b| a / b)
    }

    /// aᵢ + s.
    ///
    /// # Errors
    /// Non-finite `s` or overflow.
    pub fn add_scalar(&self, s: f32) -> Result<Vector> {
        self.map(|a| a + s)
    }

    /// aᵢ − s.
    ///
    /// # Errors
    /// Non-finite `s` or overflow.
    pub fn sub_scalar(&self, s: f32) -> Result<Vector> {
        self.map(|a| a - s)
    }

    /// s − aᵢ.
    ///
    /// # Errors
    /// Non-finite `s` or overflow.
    pub fn rsub_scalar(&self, s: f32) -> Result<Vector> {
        self.map(|a| s - a)
    }

    /// aᵢ · s.
    ///
    /// # Errors
    /// Non-finite `s` or overflow.
    pub fn mul_scalar(&self, s: f32) -> Result<Vector> {
        self.map(|a| a * s)
    }

    /// aᵢ / s.
    ///
    /// # Errors
    /// `s == 0`, non-finite `s` or overflow.
    pub fn div_scalar(&self, s: f32) -> Result<Vector> {
        if s == 0.0 {
            return Err(Error::DivisionByZero { position: 0 });
        }
        self.map(|a| a / s)
    }

    /// s / aᵢ.
    ///
    /// # Errors
    /// A zero component; non-finite `s` or overflow.
    pub fn rdiv_scalar(&self, s: f32) -> Result<Vector> {
        if let Some(position) = self.data.iter().position(|&a| a == 0.0) {
            return Err(Error::DivisionByZero { position });
        }
        self.map(|a| s / a)
    }

    /// −aᵢ.
    pub fn neg(&self) -> Vector {
        Self {
            data: self.data.iter().map(|a| -a).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(d: &[f32]) -> Vector {
        Vector::new(d.to_vec()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn rejects_empty_and_non_finite() {
        assert!(matches!(Vector::new(vec![]), Err(Error::EmptyVector)));
        assert!(matches!(
            Vector::new(vec![1.0, f32::NAN]),
            Err(Error::NonFinite { position: 1, .. })
        ));
        assert!(matches!(
            Vector::from_f64(&[0.0, 0.0, 1e39]),
            Err(Error::NonFinite { position: 2, .. })
        ));
    }

    #[test]
    fn random_is_seeded_and_in_range() {
        let a = Vector::random(100, -2.0, 3.0, Some(5)).unwrap_or_else(|e| panic!("{e}"));
        let b = Vector::random(100, -2.0, 3.0, Some(5)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a, b);
        assert!(a.as_slice().iter().all(|&x| (-2.0..3.0).contains(&x)));
        assert!(Vector::random(3, 1.0, 1.0, None).is_err());
    }

    #[test]
    fn unit_random_is_unit() {
        let u = Vector::unit_random(384, Some(1)).unwrap_or_else(|e| panic!("{e}"));
        assert!(u.is_normalized(1e-5));
    }

    #[test]
    fn arithmetic_checks_dims_and_zero_division() {
        let a = v(&[1.0, 2.0]);
        let b = v(&[3.0, 0.0]);
        assert_eq!(a.add(&b).ok(), Some(v(&[4.0, 2.0])));
        assert!(matches!(
            a.div(&b),
            Err(Error::DivisionByZero { position: 1 })
        ));
        assert!(a.div_scalar(0.0).is_err());
        assert!(matches!(
            a.add(&v(&[1.0])),
            Err(Error::DimensionMismatch {
                expected: 2,
                got: 1
            })
        ));
        assert!(a.mul_scalar(f32::MAX).is_err());
    }

    #[test]
    fn normalize_zero_is_an_error() {
        let mut z = Vector::zeros(4).unwrap_or_else(|e| panic!("{e}"));
        assert!(z.normalize_mut().is_err());
        assert_eq!(z.as_slice(), &[0.0; 4]);
        let n = v(&[3.0, 4.0]).normalize().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.as_slice(), &[0.6, 0.8]);
    }

    #[test]
    fn norms() {
        let a = v(&[3.0, -4.0]);
        assert_eq!(a.norm(), 5.0);
        assert_eq!(a.l1_norm(), 7.0);
        assert_eq!(a.linf_norm(), 4.0);
        assert_eq!(a.norm_squared(), 25.0);
    }
}
