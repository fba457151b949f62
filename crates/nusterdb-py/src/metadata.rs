//! `nusterdb.Metadata`: binds the core `Metadata` (typed fields, tags, bookkeeping).

use nusterdb_core::Metadata;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::convert::{
    fields_from_dict, from_value, require_str, to_metadata, to_value_for, type_name,
};
use crate::errors::IntoPyResult;

/// Tags from any iterable of `str` (each valid UTF-8; `require_str`). A lone `str` is
/// refused: iterating it would make each character a tag.
pub fn to_tags(obj: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if obj.is_instance_of::<pyo3::types::PyString>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "tags must be a sequence of str, got a str",
        ));
    }
    obj.try_iter()
        .map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "tags must be a sequence of str, got {}",
                type_name(obj)
            ))
        })?
        .map(|t| require_str(&t?, "tag"))
        .collect()
}

/// Typed key/value fields and tags attached to a stored vector.
///
/// `Metadata()` is empty; `Metadata.with_data(dict, tags=None)` and
/// `Metadata.with_tags(tags)` fill it. Values are str, int (64-bit), float (finite) or
/// bool, each kept with its type; keys, str values and tags are stored as UTF-8 (a lone
/// surrogate raises InvalidArgumentError naming it). Bookkeeping: `created_at`,
/// `updated_at`, `version`. Equal when fields and tags are equal; mutable, so not
/// hashable.
#[pyclass(name = "Metadata", module = "nusterdb._core")]
pub struct PyMetadata {
    pub inner: Metadata,
}

#[pymethods]
impl PyMetadata {
    /// Metadata(): empty metadata (no fields, no tags), version 1.
    #[new]
    fn new() -> Self {
        Self {
            inner: Metadata::new(),
        }
    }

    /// Metadata from a dict of str → str | int | float | bool, and optional tags.
    #[staticmethod]
    #[pyo3(signature = (data, tags = None))]
    fn with_data(data: &Bound<'_, PyDict>, tags: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let tags = match tags {
            Some(t) if !t.is_none() => to_tags(t)?,
            _ => Vec::new(),
        };
        let inner = Metadata::with_parts(fields_from_dict(data)?, tags).py()?;
        Ok(Self { inner })
    }

    /// Metadata as it was stored, bookkeeping included (`nusterdb.Client` rebuilds the
    /// metadata a server returns with it). Validated like `with_data`.
    #[staticmethod]
    #[pyo3(signature = (data, tags, created_at, updated_at, version))]
    fn _restore(
        data: &Bound<'_, PyDict>,
        tags: &Bound<'_, PyAny>,
        created_at: u64,
        updated_at: u64,
        version: u64,
    ) -> PyResult<Self> {
        let checked = Metadata::with_parts(fields_from_dict(data)?, to_tags(tags)?).py()?;
        let inner = Metadata::from_stored(
            checked.fields().clone(),
            checked.tags().clone(),
            created_at,
            updated_at,
            version,
        );
        Ok(Self { inner })
    }

    /// Metadata with the given tags (any iterable of str; a single str is refused)
    /// and no fields. InvalidArgumentError for a bad tag.
    #[staticmethod]
    fn with_tags(tags: &Bound<'_, PyAny>) -> PyResult<Self> {
        let inner = Metadata::with_parts(Vec::new(), to_tags(tags)?).py()?;
        Ok(Self { inner })
    }

    /// Sets field `key` to `value` (str, int, float or bool); returns None.
    /// TypeError for another value type, InvalidArgumentError for a bad key or a size
    /// over the limits (the metadata is then unchanged).
    fn set(&mut self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let key = require_str(key, "metadata key")?;
        let v = to_value_for(value, &key)?;
        self.inner.set(key, v).py()
    }

    /// The value of field `key`, or `default` (None) when absent. TypeError if `key`
    /// is not a str.
    #[pyo3(signature = (key, default = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = require_str(key, "metadata key")?;
        match self.inner.get(&key) {
            Some(v) => from_value(py, v),
            None => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }

    /// The field names, sorted (tags are not fields: see `tags()`).
    fn keys(&self) -> Vec<String> {
        self.inner.fields().keys().cloned().collect()
    }

    /// The field values, in the order of `keys()`.
    fn values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let vals = self
            .inner
            .fields()
            .values()
            .map(|v| from_value(py, v))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, vals)
    }

    /// The (key, value) pairs of the fields, sorted by key.
    fn items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self
            .inner
            .fields()
            .iter()
            .map(|(k, v)| PyTuple::new(py, [k.into_pyobject(py)?.into_any(), from_value(py, v)?]))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// Whether field `key` is present; TypeError if `key` is not a str.
    fn contains_key(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.inner.contains_key(&require_str(key, "metadata key")?))
    }

    fn __contains__(&self, key: &Bound<'_, PyAny>) -> bool {
        // Like a dict: a non-str key is simply not there.
        key.extract::<String>()
            .is_ok_and(|k| self.inner.contains_key(&k))
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = require_str(key, "metadata key")?;
        match self.inner.get(&key) {
            Some(v) => from_value(py, v),
            None => Err(pyo3::exceptions::PyKeyError::new_err(key)),
        }
    }

    /// Removes a field, returning its value (None if absent).
    fn remove<'py>(
        &mut self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = require_str(key, "metadata key")?;
        match self.inner.remove(&key) {
            Some(v) => from_value(py, &v),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// The number of fields (tags not counted). Same as `len(m)`.
    fn len(&self) -> usize {
        self.inner.len()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Whether there are no fields and no tags.
    fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Adds a tag; returns whether it was new.
    fn add_tag(&mut self, tag: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.inner.add_tag(require_str(tag, "tag")?).py()
    }

    /// Removes a tag; returns whether it was there.
    fn remove_tag(&mut self, tag: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.inner.remove_tag(&require_str(tag, "tag")?))
    }

    /// Whether `tag` is present; TypeError if it is not a str.
    fn has_tag(&self, tag: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.inner.has_tag(&require_str(tag, "tag")?))
    }

    /// The tags, sorted (a list of str; a copy).
    fn tags(&self) -> Vec<String> {
        self.inner.tags().iter().cloned().collect()
    }

    /// The fields as a dict (tags are not fields: see `tags()`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.inner.fields() {
            d.set_item(k, from_value(py, v)?)?;
        }
        Ok(d)
    }

    /// Creation time, in Unix seconds (kept by updates of a stored record).
    #[getter]
    fn created_at(&self) -> u64 {
        self.inner.created_at()
    }

    /// Time of the last change, in Unix seconds.
    #[getter]
    fn updated_at(&self) -> u64 {
        self.inner.updated_at()
    }

    /// Starts at 1 and goes up by one on every change.
    #[getter]
    fn version(&self) -> u64 {
        self.inner.version()
    }

    /// Seconds since `created_at` (0 if the clock went backwards); a method because
    /// the answer changes with time.
    fn age_seconds(&self) -> u64 {
        self.inner.age_seconds()
    }

    /// Equal when fields and tags are equal (bookkeeping is not compared).
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        to_metadata(other)
            .is_ok_and(|o| o.fields() == self.inner.fields() && o.tags() == self.inner.tags())
    }

    fn __hash__(&self) -> PyResult<isize> {
        Err(pyo3::exceptions::PyTypeError::new_err(
            "unhashable type: 'Metadata'",
        ))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let mut fields = Vec::with_capacity(self.inner.len());
        for (k, v) in self.inner.fields() {
            let key = k.into_pyobject(py)?.repr()?;
            fields.push(format!("{key}: {}", from_value(py, v)?.repr()?));
        }
        let tags = self
            .inner
            .tags()
            .iter()
            .map(|t| Ok(t.into_pyobject(py)?.repr()?.to_string()))
            .collect::<PyResult<Vec<String>>>()?;
        Ok(format!(
            "Metadata({{{}}}, tags=[{}], version={})",
            fields.join(", "),
            tags.join(", "),
            self.inner.version()
        ))
    }
}
