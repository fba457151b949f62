//! `nusterdb.Vector`: binds the core `Vector` (maths, distances, arithmetic, numpy).

use numpy::PyArray1;
use nusterdb_core::{DistanceMetric, Vector};
use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::convert::to_vector;
use crate::errors::IntoPyResult;

/// A dense float32 vector: non-empty, every component finite.
///
/// `Vector(data)`: from a sequence of numbers or a 1-D numpy array (a copy).
/// InvalidVectorError for empty or non-finite input (naming the position), TypeError for
/// non-numeric input (str, bytes and bytearray too: for a float32 buffer use
/// `numpy.frombuffer(data, dtype=numpy.float32)`), ValueError for arrays that are not
/// 1-D. Supports len(), indexing, iteration, ==, + - * / with vectors and scalars,
/// pickling and `numpy.asarray(v)`; mutable (`normalize_mut`), so not hashable.
#[pyclass(name = "Vector", module = "nusterdb._core")]
pub struct PyVector {
    pub inner: Vector,
}

impl PyVector {
    pub fn wrap(inner: Vector) -> Self {
        Self { inner }
    }

    fn distance(&self, other: &Bound<'_, PyAny>, metric: DistanceMetric) -> PyResult<f32> {
        let other = to_vector(other)?;
        self.inner.distance(&other, metric).py()
    }

    fn similarity(&self, other: &Bound<'_, PyAny>, metric: DistanceMetric) -> PyResult<f32> {
        let other = to_vector(other)?;
        metric
            .similarity(self.inner.as_slice(), other.as_slice())
            .py()
    }
}

/// The right-hand side of an arithmetic operator.
enum Operand {
    Scalar(f32),
    Vector(Vector),
}

fn operand(obj: &Bound<'_, PyAny>) -> Option<Operand> {
    if let Ok(v) = obj.extract::<PyRef<'_, PyVector>>() {
        return Some(Operand::Vector(v.inner.clone()));
    }
    obj.extract::<f64>().ok().map(|s| Operand::Scalar(s as f32))
}

/// The Python result of an operator: a new Vector, or NotImplemented for an
/// operand type we do not handle (so Python tries the reflected operation).
fn op_result(
    py: Python<'_>,
    lhs: &Vector,
    rhs: &Bound<'_, PyAny>,
    on_vec: fn(&Vector, &Vector) -> nusterdb_core::Result<Vector>,
    on_scalar: fn(&Vector, f32) -> nusterdb_core::Result<Vector>,
) -> PyResult<Py<PyAny>> {
    let out = match operand(rhs) {
        None => return Ok(py.NotImplemented()),
        Some(Operand::Vector(v)) => on_vec(lhs, &v),
        Some(Operand::Scalar(s)) => on_scalar(lhs, s),
    };
    Ok(Py::new(py, PyVector::wrap(out.py()?))?.into_any())
}

#[pymethods]
impl PyVector {
    /// Vector(data): from any sequence of numbers or a 1-D numpy array.
    #[new]
    fn new(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self::wrap(to_vector(data)?))
    }

    /// A vector of `dim` zeros; InvalidVectorError when dim is 0.
    #[staticmethod]
    fn zeros(dim: usize) -> PyResult<Self> {
        Vector::zeros(dim).py().map(Self::wrap)
    }

    /// A vector of `dim` ones; InvalidVectorError when dim is 0.
    #[staticmethod]
    fn ones(dim: usize) -> PyResult<Self> {
        Vector::ones(dim).py().map(Self::wrap)
    }

    /// A vector of `dim` components uniform in [min, max); the same seed gives the
    /// same vector. InvalidVectorError for dim 0, InvalidArgumentError for non-finite
    /// bounds or min >= max.
    #[staticmethod]
    #[pyo3(signature = (dim, min = -1.0, max = 1.0, seed = None),
           text_signature = "(dim, min=-1.0, max=1.0, seed=None)")]
    fn random(dim: usize, min: f32, max: f32, seed: Option<u64>) -> PyResult<Self> {
        Vector::random(dim, min, max, seed).py().map(Self::wrap)
    }

    /// A vector uniformly distributed on the unit sphere (a normalised Gaussian);
    /// the same seed gives the same vector. InvalidVectorError when dim is 0.
    #[staticmethod]
    #[pyo3(signature = (dim, seed = None))]
    fn unit_random(dim: usize, seed: Option<u64>) -> PyResult<Self> {
        Vector::unit_random(dim, seed).py().map(Self::wrap)
    }

    /// The number of components (fixed when the vector is made).
    #[getter]
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    /// The components as a list of floats (a copy).
    #[getter]
    fn data(&self) -> Vec<f32> {
        self.inner.as_slice().to_vec()
    }

    /// The number of components. Same as `v.dimension`; kept for compatibility.
    fn dim(&self) -> usize {
        self.inner.dimension()
    }

    fn __len__(&self) -> usize {
        self.inner.dimension()
    }

    fn __getitem__(&self, index: isize) -> PyResult<f32> {
        let n = self.inner.dimension() as isize;
        let i = if index < 0 { index + n } else { index };
        if i < 0 || i >= n {
            return Err(PyIndexError::new_err(format!(
                "index {index} out of range for a vector of dimension {n}"
            )));
        }
        self.inner
            .get(i as usize)
            .ok_or_else(|| PyIndexError::new_err("index out of range"))
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyList::new(py, self.inner.as_slice())?
            .try_iter()?
            .into_any())
    }

    fn __repr__(&self) -> String {
        let d = self.inner.as_slice();
        let shown: Vec<String> = d.iter().take(8).map(|x| format!("{x:?}")).collect();
        let more = if d.len() > 8 { ", ..." } else { "" };
        format!(
            "Vector([{}{}], dimension={})",
            shown.join(", "),
            more,
            d.len()
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .extract::<PyRef<'_, PyVector>>()
            .is_ok_and(|o| o.inner == self.inner)
    }

    /// Vectors are mutable (`normalize_mut`), so they are not hashable.
    fn __hash__(&self) -> PyResult<isize> {
        Err(PyTypeError::new_err("unhashable type: 'Vector'"))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let data = PyList::new(py, slf.borrow().inner.as_slice())?;
        PyTuple::new(
            py,
            [
                slf.get_type().into_any(),
                PyTuple::new(py, [data])?.into_any(),
            ],
        )
    }

    /// A float32 numpy array (a copy).
    fn to_numpy<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        PyArray1::from_slice(py, self.inner.as_slice())
    }

    /// numpy's array protocol: `np.asarray(v)`. The data lives in Rust, so an
    /// array is always a copy; `copy=False` therefore raises, as numpy 2 specifies.
    #[pyo3(signature = (dtype = None, copy = None))]
    fn __array__<'py>(
        &self,
        py: Python<'py>,
        dtype: Option<Bound<'py, PyAny>>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if copy == Some(false) {
            return Err(PyValueError::new_err(
                "a Vector cannot be viewed as a numpy array without a copy",
            ));
        }
        let arr = PyArray1::from_slice(py, self.inner.as_slice()).into_any();
        match dtype {
            None => Ok(arr),
            Some(dt) if dt.is_none() => Ok(arr),
            Some(dt) => arr.call_method1("astype", (dt,)),
        }
    }

    /// The dot product Σ aᵢbᵢ with a vector-like; DimensionMismatchError if the
    /// dimensions differ.
    fn dot(&self, other: &Bound<'_, PyAny>) -> PyResult<f32> {
        self.inner.dot(&to_vector(other)?).py()
    }

    /// The Euclidean (L2) norm ‖v‖₂, as a float.
    fn norm(&self) -> f32 {
        self.inner.norm()
    }

    /// The L1 norm Σ|vᵢ|, as a float.
    fn l1_norm(&self) -> f32 {
        self.inner.l1_norm()
    }

    /// The L∞ norm max |vᵢ|, as a float.
    fn linf_norm(&self) -> f32 {
        self.inner.linf_norm()
    }

    /// The squared Euclidean norm Σ vᵢ², as a float.
    fn norm_squared(&self) -> f32 {
        self.inner.norm_squared()
    }

    /// A unit-length copy; InvalidArgumentError for the zero vector.
    fn normalize(&self) -> PyResult<Self> {
        self.inner.normalize().py().map(Self::wrap)
    }

    /// Scales the vector in place to unit length; returns None.
    /// InvalidArgumentError for the zero vector, which is left unchanged.
    fn normalize_mut(&mut self) -> PyResult<()> {
        self.inner.normalize_mut().py()
    }

    /// Whether | ‖v‖₂ − 1 | ≤ tolerance.
    #[pyo3(signature = (tolerance = 1e-6))]
    fn is_normalized(&self, tolerance: f32) -> bool {
        self.inner.is_normalized(tolerance)
    }

    /// Whether every component is finite (always True for a Vector made by
    /// NusterDB, which refuses NaN and ±inf).
    fn is_finite(&self) -> bool {
        self.inner.is_finite()
    }

    /// The Euclidean distance ‖a−b‖₂ to a vector-like; DimensionMismatchError if the
    /// dimensions differ.
    fn euclidean_distance(&self, other: &Bound<'_, PyAny>) -> PyResult<f32> {
        self.distance(other, DistanceMetric::Euclidean)
    }

    /// The Manhattan distance Σ|aᵢ−bᵢ| to a vector-like; DimensionMismatchError if
    /// the dimensions differ.
    fn manhattan_distance(&self, other: &Bound<'_, PyAny>) -> PyResult<f32> {
        self.distance(other, DistanceMetric::Manhattan)
    }

    /// The cosine distance 1 − cos(a, b) (0..2; 1.0 when either vector is zero) to a
    /// vector-like; DimensionMismatchError if the dimensions differ.
    fn cosine_distance(&self, other: &Bound<'_, PyAny>) -> PyResult<f32> {
        self.distance(other, DistanceMetric::Cosine)
    }

    /// The cosine similarity cos(a, b) (−1..1; 0.0 when either vector is zero) with a
    /// vector-like; DimensionMismatchError if the dimensions differ.
    fn cosine_similarity(&self, other: &Bound<'_, PyAny>) -> PyResult<f32> {
        self.similarity(other, DistanceMetric::Cosine)
    }

    /// The angular distance arccos(cos(a, b)) / π (0..1) to a vector-like;
    /// DimensionMismatchError if the dimensions differ.
    fn angular_distance(&self, other: &Bound<'_, PyAny>) -> PyResult<f32> {
        self.distance(other, DistanceMetric::Angular)
    }

    /// The Chebyshev distance max |aᵢ−bᵢ| to a vector-like; DimensionMismatchError if
    /// the dimensions differ.
    fn chebyshev_distance(&self, other: &Bound<'_, PyAny>) -> PyResult<f32> {
        self.distance(other, DistanceMetric::Chebyshev)
    }

    /// The Hamming distance: the number of positions where (aᵢ > 0) ≠ (bᵢ > 0), as a
    /// float; DimensionMismatchError if the dimensions differ.
    fn hamming_distance(&self, other: &Bound<'_, PyAny>) -> PyResult<f32> {
        self.distance(other, DistanceMetric::Hamming)
    }

    /// The weighted Jaccard similarity Σmin(aᵢ,bᵢ) / Σmax(aᵢ,bᵢ) (for non-negative
    /// input; 1.0 for two zero vectors); DimensionMismatchError if the dimensions differ.
    fn jaccard_similarity(&self, other: &Bound<'_, PyAny>) -> PyResult<f32> {
        self.similarity(other, DistanceMetric::Jaccard)
    }

    /// The weighted Jaccard distance 1 − Σmin(aᵢ,bᵢ) / Σmax(aᵢ,bᵢ) (for
    /// non-negative input); DimensionMismatchError if the dimensions differ.
    fn jaccard_distance(&self, other: &Bound<'_, PyAny>) -> PyResult<f32> {
        self.distance(other, DistanceMetric::Jaccard)
    }

    fn __add__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        op_result(py, &self.inner, other, Vector::add, Vector::add_scalar)
    }

    fn __radd__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        op_result(py, &self.inner, other, |a, b| b.add(a), Vector::add_scalar)
    }

    fn __sub__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        op_result(py, &self.inner, other, Vector::sub, Vector::sub_scalar)
    }

    fn __rsub__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        op_result(py, &self.inner, other, |a, b| b.sub(a), Vector::rsub_scalar)
    }

    fn __mul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        op_result(py, &self.inner, other, Vector::mul, Vector::mul_scalar)
    }

    fn __rmul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        op_result(py, &self.inner, other, |a, b| b.mul(a), Vector::mul_scalar)
    }

    fn __truediv__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        op_result(py, &self.inner, other, Vector::div, Vector::div_scalar)
    }

    fn __rtruediv__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        op_result(py, &self.inner, other, |a, b| b.div(a), Vector::rdiv_scalar)
    }

    fn __neg__(&self) -> Self {
        Self::wrap(self.inner.neg())
    }
}
