//! `nusterdb.DistanceMetric`: binds the core metric enum.

use nusterdb_core::DistanceMetric;
use pyo3::prelude::*;

use crate::convert::to_vector;
use crate::errors::IntoPyResult;

/// One of the eight distance metrics; smaller distance = closer for all of them.
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
    #[staticmethod]
    fn euclidean() -> Self {
        DistanceMetric::Euclidean.into()
    }

    #[staticmethod]
    fn manhattan() -> Self {
        DistanceMetric::Manhattan.into()
    }

    #[staticmethod]
    fn cosine() -> Self {
        DistanceMetric::Cosine.into()
    }

    #[staticmethod]
    fn angular() -> Self {
        DistanceMetric::Angular.into()
    }

    #[staticmethod]
    fn chebyshev() -> Self {
        DistanceMetric::Chebyshev.into()
    }

    #[staticmethod]
    fn jaccard() -> Self {
        DistanceMetric::Jaccard.into()
    }

    #[staticmethod]
    fn hamming() -> Self {
        DistanceMetric::Hamming.into()
    }

    #[staticmethod]
    fn inner_product() -> Self {
        DistanceMetric::InnerProduct.into()
    }

    /// Parses a metric name (case-insensitive; aliases l2, l1, linf, ip, dot).
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

    #[getter]
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    /// The distance between two vector-likes.
    fn distance(&self, a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<f32> {
        let (a, b) = (to_vector(a)?, to_vector(b)?);
        self.inner.distance(a.as_slice(), b.as_slice()).py()
    }

    /// The documented similarity (a monotone transform of the distance).
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
