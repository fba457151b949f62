//! Batches of rows: the (n, dim) matrices bulk writes and `batch_search` take, and
//! `batch_search`'s (n, w) arrays of ids and distances, with `include=` the records'
//! payload beside them, aligned hit for hit.

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray2, PyUntypedArray, PyUntypedArrayMethods};
use nusterdb_core::db::{Include, Record};
use nusterdb_core::filter::Filter;
use nusterdb_core::index::SearchParams;
use nusterdb_core::progress::Observer;
use nusterdb_core::{Database, Id, IdType};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use pyo3::IntoPyObjectExt;

use crate::convert::{to_vector, type_name};
use crate::ids::id_to_py;
use crate::metadata::PyMetadata;

/// A positive k from Python.
pub fn to_k(k: i64) -> PyResult<usize> {
    if k <= 0 {
        return Err(PyValueError::new_err(format!(
            "k must be at least 1, got {k}"
        )));
    }
    Ok(usize::try_from(k).unwrap_or(usize::MAX))
}

/// An (n, dim) matrix from a 2-D numpy array of any real dtype or a sequence of
/// vector-likes, as row-major f32 data of its own. Returns the rows and n.
///
/// Always a copy, made here while the GIL is held: the core reads each row more than
/// once (validation, then the write batch, then the index; validation, then the
/// search), after the GIL is released. Reading the caller's array in place then would
/// let another Python thread change it between those reads, so a NaN could pass
/// validation, or the index disagree with what was stored. The copy is what is
/// validated, stored and indexed.
pub fn to_rows(obj: &Bound<'_, PyAny>, dim: usize, what: &str) -> PyResult<(Vec<f32>, usize)> {
    let py = obj.py();
    if let Ok(arr) = obj.cast::<PyUntypedArray>() {
        let shape = arr.shape().to_vec();
        if shape.len() != 2 {
            return Err(PyValueError::new_err(format!(
                "{what} must be a 2-D array of shape (n, {dim}), got shape {shape:?}"
            )));
        }
        if shape[1] != dim {
            return Err(crate::errors::DimensionMismatchError::new_err(format!(
                "dimension mismatch: expected {dim}, got {}",
                shape[1]
            )));
        }
        let kind: String = arr.dtype().getattr("kind")?.extract()?;
        if !matches!(kind.as_str(), "f" | "i" | "u" | "b") {
            return Err(PyTypeError::new_err(format!(
                "{what} must be a numeric array, got dtype {}",
                arr.dtype()
            )));
        }
        if let Ok(a) = obj.extract::<PyReadonlyArray2<'_, f32>>() {
            // C-contiguous float32: one memcpy. (`as_slice` alone also takes Fortran
            // order, whose memory is column-major.)
            if a.is_c_contiguous() {
                if let Ok(slice) = a.as_slice() {
                    return Ok((slice.to_vec(), shape[0]));
                }
            }
        }
        // float64, integers, Fortran order or strided views: numpy makes a C-ordered
        // float64 copy (exact for every real dtype), and the narrowing to f32 happens
        // here, so a value that overflows f32 becomes inf and is reported with its
        // position by validation — not as a numpy cast warning.
        let np = py.import("numpy")?;
        let conv = np.call_method1("ascontiguousarray", (obj, np.getattr("float64")?))?;
        let a = conv.extract::<PyReadonlyArray2<'_, f64>>()?;
        let data: Vec<f32> = a
            .as_slice()
            .map_err(|e| PyValueError::new_err(e.to_string()))?
            .iter()
            .map(|&x| x as f32)
            .collect();
        return Ok((data, shape[0]));
    }
    let mut data = Vec::new();
    let mut n = 0usize;
    for item in obj.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a 2-D numpy array or a sequence of vectors, got {}",
            type_name(obj)
        ))
    })? {
        let v = to_vector(&item?)?;
        if v.dimension() != dim {
            return Err(crate::errors::DimensionMismatchError::new_err(format!(
                "dimension mismatch: expected {dim}, got {} (row {n})",
                v.dimension()
            )));
        }
        data.extend_from_slice(v.as_slice());
        n += 1;
    }
    Ok((data, n))
}

/// What `batch_search` gathers without the GIL: n rows of `width` hits, row-major,
/// padded where a row has fewer.
pub struct BatchHits {
    n: usize,
    width: usize,
    /// Int ids (-1: padding); empty for a string-id database.
    int_ids: Vec<i64>,
    /// String ids (None: padding); empty for an int-id database.
    names: Vec<Option<Id>>,
    /// Distances (inf: padding).
    dists: Vec<f32>,
    /// With `include=`: each hit's record (None: padding); else empty.
    records: Vec<Option<Record>>,
}

impl BatchHits {
    /// Records a hit's id in cell `at`.
    fn place_id(&mut self, at: usize, id: &Id, str_ids: bool) {
        match (id, str_ids) {
            (Id::Int(i), false) => self.int_ids[at] = *i as i64,
            _ => self.names[at] = Some(id.clone()),
        }
    }
}

/// Searches the `n` rows of `rows` (row-major, the database's dimension) for their
/// min(k, count) nearest; with `include`, each hit's record is read under the same
/// lock as the search (`Database::batch_search_records`).
#[allow(clippy::too_many_arguments)] // one per batch_search argument
pub fn gather(
    db: &Database,
    rows: &[f32],
    n: usize,
    k: usize,
    filter: Option<&Filter>,
    search: SearchParams,
    include: Option<Include>,
    observer: &dyn Observer,
) -> nusterdb_core::Result<BatchHits> {
    let str_ids = db.config().id_type == IdType::Str;
    // No row can hold more than the stored vectors, so the arrays are that wide at
    // most: a huge k allocates nothing k-sized. The core gets the clamped k too (at
    // least 1, so it still validates the queries), and its n·k cap then bounds what
    // is allocated here.
    let width = k.min(db.count()?);
    let kk = width.max(1);
    // The arrays are allocated once the core accepted the batch (its n·k cap comes
    // first). Rows hold at most `width` hits, except when the count was 0 (the core
    // ran with k = 1) and a writer added a vector since: `take(width)`.
    let alloc = |out: &mut BatchHits| {
        let cells = n * width;
        out.dists = vec![f32::INFINITY; cells];
        if str_ids {
            out.names = vec![None; cells];
        } else {
            out.int_ids = vec![-1; cells];
        }
        if include.is_some() {
            out.records = vec![None; cells];
        }
    };
    let mut out = BatchHits {
        n,
        width,
        int_ids: Vec::new(),
        names: Vec::new(),
        dists: Vec::new(),
        records: Vec::new(),
    };
    if n == 0 {
        return Ok(out);
    }
    match include {
        Some(inc) => {
            let hits = db.batch_search_records(rows, kk, filter, search, inc, observer)?;
            alloc(&mut out);
            for (row, h) in hits.into_iter().enumerate() {
                for (j, (record, d)) in h.into_iter().take(width).enumerate() {
                    let at = row * width + j;
                    out.place_id(at, &record.id, str_ids);
                    out.dists[at] = d;
                    out.records[at] = Some(record);
                }
            }
        }
        None if str_ids => {
            let hits = db.batch_search_ids(rows, kk, filter, search, observer)?;
            alloc(&mut out);
            for (row, h) in hits.into_iter().enumerate() {
                for (j, (id, d)) in h.into_iter().take(width).enumerate() {
                    out.names[row * width + j] = Some(id);
                    out.dists[row * width + j] = d;
                }
            }
        }
        None => {
            let hits = db.batch_search_observed(rows, kk, filter, search, observer)?;
            alloc(&mut out);
            for (row, h) in hits.iter().enumerate() {
                for (j, &(id, d)) in h.iter().take(width).enumerate() {
                    out.int_ids[row * width + j] = id as i64;
                    out.dists[row * width + j] = d;
                }
            }
        }
    }
    Ok(out)
}

/// The result as Python sees it: `(ids, distances)` without `include`; with it a
/// dict of "ids" and "distances" (the same arrays) and, as `include` asks,
/// "metadatas" and "documents" (n lists of `width`, None for padding) and "vectors"
/// (float32 (n, width, dim), NaN rows for padding).
pub fn to_python<'py>(
    py: Python<'py>,
    hits: BatchHits,
    include: Option<Include>,
    str_ids: bool,
    dim: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let BatchHits {
        n,
        width,
        int_ids,
        names,
        dists,
        mut records,
    } = hits;
    let ids = if str_ids {
        let list = PyList::empty(py);
        for id in &names {
            match id {
                Some(id) => list.append(id_to_py(py, id)?)?,
                None => list.append(py.None())?,
            }
        }
        let np = py.import("numpy")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("dtype", np.getattr("object_")?)?;
        np.call_method("array", (list,), Some(&kwargs))?
            .call_method1("reshape", ((n, width),))?
    } else {
        PyArray1::from_vec(py, int_ids)
            .reshape([n, width])?
            .into_any()
    };
    let dists = PyArray1::from_vec(py, dists)
        .reshape([n, width])?
        .into_any();
    let Some(include) = include else {
        return Ok(PyTuple::new(py, [ids, dists])?.into_any());
    };
    let out = PyDict::new(py);
    out.set_item("ids", ids)?;
    out.set_item("distances", dists)?;
    if include.vector {
        let mut data = vec![f32::NAN; n * width * dim];
        for (at, r) in records.iter().enumerate() {
            if let Some(v) = r.as_ref().and_then(|r| r.vector.as_ref()) {
                data[at * dim..(at + 1) * dim].copy_from_slice(v);
            }
        }
        let arr = PyArray1::from_vec(py, data).reshape([n, width, dim])?;
        out.set_item("vectors", arr)?;
    }
    if include.metadata {
        let metadatas = per_hit(py, n, width, &mut records, |r| {
            r.metadata
                .take()
                .map(|inner| PyMetadata { inner })
                .into_bound_py_any(py)
        })?;
        out.set_item("metadatas", metadatas)?;
    }
    if include.document {
        let documents = per_hit(py, n, width, &mut records, |r| {
            r.document.take().into_bound_py_any(py)
        })?;
        out.set_item("documents", documents)?;
    }
    Ok(out.into_any())
}

/// n lists of `width` entries: what `take` moves out of each hit's record, None for
/// padding.
fn per_hit<'py>(
    py: Python<'py>,
    n: usize,
    width: usize,
    records: &mut [Option<Record>],
    take: impl Fn(&mut Record) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let all = PyList::empty(py);
    for row in 0..n {
        let one = PyList::empty(py);
        for j in 0..width {
            match records.get_mut(row * width + j).and_then(Option::as_mut) {
                Some(r) => one.append(take(r)?)?,
                None => one.append(py.None())?,
            }
        }
        all.append(one)?;
    }
    Ok(all)
}
