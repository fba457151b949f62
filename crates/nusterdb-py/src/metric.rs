//! `nusterdb.DistanceMetric`: binds the core metric enum.

use nusterdb_core::DistanceMetric;
use pyo3::prelude::*;

use crate::convert::to_vector;
use crate::errors::IntoPyResult;

/// One of the eight distance metrics; smaller distance = closer for all of them.
///
/// Made by the static constructors (`DistanceMetric.cosine()`, ...) or
/// `DistanceMetric.from_name(name)`; compared and hashed by metric. Definitions of each
/// distance and similarity are on the constructors and in the README.
#[pyclass(
    name = "DistanceMetric",
    module = "nusterdb._core",
    frozen,
    eq,
    hash,
    skip_from_py_object
)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyDistanceMetric {
    pub inner: DistanceMetric,
}

impl From<DistanceMetric> for PyDistanceMetric {
    fn from(inner: DistanceMetric) -> Self {
        Self { inner }
    }
}

/// A metric from a `DistanceMetric` or its name.
pub fn to_metric(obj: &Bound<'_, PyAny>) -> PyResult<DistanceMetric> {
    if let Ok(m) = obj.extract::<PyRef<'_, PyDistanceMetric>>() {
        return Ok(m.inner);
    }
    if let Some(name) = crate::convert::utf8_str(obj, "metric name")? {
        return DistanceMetric::from_name(&name).py();
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "expected a DistanceMetric or a metric name, got {}",
        crate::convert::type_name(obj)
    )))
}

#[pymethods]
impl PyDistanceMetric {
    /// Euclidean (L2) distance ‖a−b‖₂; similarity 1 / (1 + d).
    #[staticmethod]
    fn euclidean() -> Self {
        DistanceMetric::Euclidean.into()
    }

    /// Manhattan (L1) distance Σ|aᵢ−bᵢ|; similarity 1 / (1 + d).
    #[staticmethod]
    fn manhattan() -> Self {
        DistanceMetric::Manhattan.into()
    }

    /// Cosine distance 1 − cos(a, b), 0..2 (1.0 when a vector is zero); similarity
    /// cos(a, b).
    #[staticmethod]
    fn cosine() -> Self {
        DistanceMetric::Cosine.into()
    }

    /// Angular distance arccos(cos(a, b)) / π, 0..1; similarity 1 − d.
    #[staticmethod]
    fn angular() -> Self {
        DistanceMetric::Angular.into()
    }

    /// Chebyshev (L∞) distance max |aᵢ−bᵢ|; similarity 1 / (1 + d).
    #[staticmethod]
    fn chebyshev() -> Self {
        DistanceMetric::Chebyshev.into()
    }

    /// Weighted Jaccard distance 1 − Σmin(aᵢ,bᵢ) / Σmax(aᵢ,bᵢ) (non-negative input);
    /// similarity 1 − d.
    #[staticmethod]
    fn jaccard() -> Self {
        DistanceMetric::Jaccard.into()
    }

    /// Hamming distance: positions where (aᵢ > 0) ≠ (bᵢ > 0); similarity 1 − d / dim.
    #[staticmethod]
    fn hamming() -> Self {
        DistanceMetric::Hamming.into()
    }

    /// Inner product as a distance, −a·b (smaller = closer); similarity a·b.
    #[staticmethod]
    fn inner_product() -> Self {
        DistanceMetric::InnerProduct.into()
    }

    /// The metric of a name (case-insensitive; aliases l2, l1, linf, ip, dot).
    /// InvalidArgumentError for an unknown name, TypeError for a non-str.
    #[staticmethod]
    fn from_name(name: &Bound<'_, PyAny>) -> PyResult<Self> {
        let name = crate::convert::require_str(name, "metric name")?;
        DistanceMetric::from_name(&name).py().map(Self::from)
    }

    /// Every metric name, in a stable order.
    #[staticmethod]
    fn names() -> Vec<&'static str> {
        DistanceMetric::ALL.iter().map(|m| m.name()).collect()
    }

    /// The canonical lower-case name, e.g. "euclidean" or "inner_product".
    #[getter]
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    /// The distance between two vector-likes under this metric, as a float.
    /// DimensionMismatchError if their dimensions differ; InvalidVectorError for an
    /// empty or non-finite input.
    fn distance(&self, a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<f32> {
        let (a, b) = (to_vector(a)?, to_vector(b)?);
        self.inner.distance(a.as_slice(), b.as_slice()).py()
    }

    /// The documented similarity of two vector-likes (a monotone transform of the
    /// distance: larger = more similar). Raises as `distance`.
    fn similarity(&self, a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<f32> {
        let (a, b) = (to_vector(a)?, to_vector(b)?);
        self.inner.similarity(a.as_slice(), b.as_slice()).py()
    }

    fn __repr__(&self) -> String {
        format!("DistanceMetric.{}()", self.inner.name())
    }

    fn __str__(&self) -> &'static str {
        self.inner.name()
    }
}
