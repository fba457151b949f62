//! What reads return beyond ids: the `include=` argument, `SearchHit` (one search
//! result with what was asked for), `Record` (one record of `iter_records`), and the
//! dict `get_many` returns.

use numpy::{PyArray1, PyArrayMethods};
use nusterdb_core::db::{Include, Record};
use nusterdb_core::Metadata;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyMapping, PyString};

use crate::convert::{type_name, utf8_str};
use crate::errors::InvalidArgumentError;
use crate::ids::id_to_py;
use crate::metadata::PyMetadata;

/// The names `include=` takes.
const INCLUDE_NAMES: &str = "\"vector\", \"metadata\", \"document\"";

/// `include=`: a sequence of "vector", "metadata", "document" (a single str is
/// refused: it would be read letter by letter).
pub fn to_include(obj: &Bound<'_, PyAny>) -> PyResult<Include> {
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "include must be a sequence of names ({INCLUDE_NAMES}), got a single str"
        )));
    }
    // A mapping would be read by its keys, its values ignored: {"vector": False}
    // would include the vector.
    if obj.is_instance_of::<PyDict>() || obj.cast::<PyMapping>().is_ok() {
        return Err(PyTypeError::new_err(format!(
            "include must be a sequence of names ({INCLUDE_NAMES}), got {}",
            type_name(obj)
        )));
    }
    let mut inc = Include::NOTHING;
    let items = obj.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "include must be a sequence of names ({INCLUDE_NAMES}), got {}",
            type_name(obj)
        ))
    })?;
    for item in items {
        let item = item?;
        let name = utf8_str(&item, "include name")?.ok_or_else(|| {
            PyTypeError::new_err(format!(
                "include names must be str, got {}",
                type_name(&item)
            ))
        })?;
        match name.as_str() {
            "vector" => inc.vector = true,
            "metadata" => inc.metadata = true,
            "document" => inc.document = true,
            other => {
                return Err(InvalidArgumentError::new_err(format!(
                    "unknown include name {other:?}: use {INCLUDE_NAMES}"
                )))
            }
        }
    }
    Ok(inc)
}

/// One search result: the id, the distance, and what `include=` asked for (None
/// where it was not asked, and for the document of a record without one).
#[pyclass(name = "SearchHit", module = "nusterdb._core", frozen)]
pub struct PySearchHit {
    id: Py<PyAny>,
    distance: f32,
    vector: Option<Py<PyAny>>,
    metadata: Option<Metadata>,
    document: Option<String>,
}

impl PySearchHit {
    pub fn new(py: Python<'_>, record: Record, distance: f32) -> PyResult<Self> {
        Ok(Self {
            id: id_to_py(py, &record.id)?,
            distance,
            vector: record
                .vector
                .map(|v| PyArray1::from_vec(py, v).into_any().unbind()),
            metadata: record.metadata,
            document: record.document,
        })
    }
}

#[pymethods]
impl PySearchHit {
    /// The record's id (int or str, as the database's ids).
    #[getter]
    fn id(&self, py: Python<'_>) -> Py<PyAny> {
        self.id.clone_ref(py)
    }

    /// The distance to the query under the database's metric.
    #[getter]
    fn distance(&self) -> f32 {
        self.distance
    }

    /// The stored vector as a float32 numpy array, if "vector" was included.
    #[getter]
    fn vector(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.vector.as_ref().map(|v| v.clone_ref(py))
    }

    /// The stored metadata, if "metadata" was included.
    #[getter]
    fn metadata(&self) -> Option<PyMetadata> {
        self.metadata.clone().map(|inner| PyMetadata { inner })
    }

    /// The stored document, if "document" was included and the record has one.
    #[getter]
    fn document(&self) -> Option<String> {
        self.document.clone()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let id = self
            .id
            .bind(py)
            .repr()
            .map_or_else(|_| "?".to_string(), |r| r.to_string());
        let mut s = format!("SearchHit(id={id}, distance={}", self.distance);
        if let Some(d) = &self.document {
            let head: String = d.chars().take(40).collect();
            s.push_str(&format!(", document={head:?}"));
        }
        if self.metadata.is_some() {
            s.push_str(", metadata=...");
        }
        if self.vector.is_some() {
            s.push_str(", vector=...");
        }
        s.push(')');
        s
    }
}

/// One stored record, as `iter_records` yields it: the id and what `include=` asked
/// for (None where it was not asked, and for the document of a record without one).
#[pyclass(name = "Record", module = "nusterdb._core", frozen)]
pub struct PyRecord {
    id: Py<PyAny>,
    vector: Option<Py<PyAny>>,
    metadata: Option<Metadata>,
    document: Option<String>,
}

impl PyRecord {
    pub fn new(py: Python<'_>, record: Record) -> PyResult<Self> {
        Ok(Self {
            id: id_to_py(py, &record.id)?,
            vector: record
                .vector
                .map(|v| PyArray1::from_vec(py, v).into_any().unbind()),
            metadata: record.metadata,
            document: record.document,
        })
    }
}

#[pymethods]
impl PyRecord {
    /// The record's id (int or str, as the database's ids).
    #[getter]
    fn id(&self, py: Python<'_>) -> Py<PyAny> {
        self.id.clone_ref(py)
    }

    /// The stored vector as a float32 numpy array, if "vector" was included.
    #[getter]
    fn vector(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.vector.as_ref().map(|v| v.clone_ref(py))
    }

    /// The stored metadata, if "metadata" was included (a copy).
    #[getter]
    fn metadata(&self) -> Option<PyMetadata> {
        self.metadata.clone().map(|inner| PyMetadata { inner })
    }

    /// The stored document, if "document" was included and the record has one.
    #[getter]
    fn document(&self) -> Option<String> {
        self.document.clone()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let id = self
            .id
            .bind(py)
            .repr()
            .map_or_else(|_| "?".to_string(), |r| r.to_string());
        let mut s = format!("Record(id={id}");
        if let Some(d) = &self.document {
            let head: String = d.chars().take(40).collect();
            s.push_str(&format!(", document={head:?}"));
        }
        if self.metadata.is_some() {
            s.push_str(", metadata=...");
        }
        if self.vector.is_some() {
            s.push_str(", vector=...");
        }
        s.push(')');
        s
    }
}

/// The dict `get_many` returns: "ids", and "vectors" (an (m, dim) float32 array),
/// "metadatas", "documents" for what `include` asked.
pub fn records_dict<'py>(
    py: Python<'py>,
    records: Vec<Record>,
    include: Include,
    dim: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    let ids = PyList::empty(py);
    let metadatas = PyList::empty(py);
    let documents = PyList::empty(py);
    let mut vectors: Vec<f32> = Vec::with_capacity(if include.vector {
        records.len() * dim
    } else {
        0
    });
    let m = records.len();
    for r in records {
        ids.append(id_to_py(py, &r.id)?)?;
        if let Some(v) = r.vector {
            vectors.extend_from_slice(&v);
        }
        if include.metadata {
            metadatas.append(r.metadata.map(|inner| PyMetadata { inner }))?;
        }
        if include.document {
            documents.append(r.document)?;
        }
    }
    out.set_item("ids", ids)?;
    if include.vector {
        let arr = PyArray1::from_vec(py, vectors).reshape([m, dim])?;
        out.set_item("vectors", arr)?;
    }
    if include.metadata {
        out.set_item("metadatas", metadatas)?;
    }
    if include.document {
        out.set_item("documents", documents)?;
    }
    Ok(out)
}
