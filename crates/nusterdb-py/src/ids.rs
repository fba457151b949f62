//! Record ids between Python and the core: ints for an int-id database (Python ints
//! and numpy integers, not bool), strs for a string-id one; and back.

use numpy::{PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods};
use nusterdb_core::{Id, IdType};
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyIterator, PyString};
use pyo3::IntoPyObjectExt;

use crate::convert::{type_name, utf8_str};
use crate::errors::{IdTypeError, InvalidArgumentError};

/// The message for an id of the wrong kind, naming it.
fn wrong_kind(obj: &Bound<'_, PyAny>, expected: IdType) -> PyErr {
    let shown = obj
        .repr()
        .ok()
        .and_then(|r| {
            r.to_cow()
                .ok()
                .map(|s| s.chars().take(80).collect::<String>())
        })
        .unwrap_or_default();
    let want = match expected {
        IdType::Int => "ints (id_type=\"int\")",
        IdType::Str => "strs (id_type=\"str\")",
    };
    IdTypeError::new_err(format!(
        "id {shown} is {}, but this database's ids are {want}",
        type_name(obj)
    ))
}

/// One int id: a non-negative int below 2^63 (numpy integers too; not bool).
fn to_int_id(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    if obj.is_instance_of::<PyBool>() || !obj.hasattr("__index__")? {
        return Err(wrong_kind(obj, IdType::Int));
    }
    match obj.extract::<i64>() {
        Ok(i) if i >= 0 => Ok(i as u64),
        Ok(i) => Err(InvalidArgumentError::new_err(format!(
            "id {i} is negative: ids must be non-negative"
        ))),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => Err(PyOverflowError::new_err(
            format!("id {obj} is out of range: ids must be below 2^63"),
        )),
        // `__index__` refused: not an integer after all (a numpy array of ints has
        // `__index__`, which raises TypeError unless it is 0-d).
        Err(e) if e.is_instance_of::<PyTypeError>(obj.py()) => Err(wrong_kind(obj, IdType::Int)),
        Err(e) => Err(e),
    }
}

/// One id of the kind `expected`. Its value (range, length) is checked by the core.
pub fn to_id(obj: &Bound<'_, PyAny>, expected: IdType) -> PyResult<Id> {
    match expected {
        IdType::Int => to_int_id(obj).map(Id::Int),
        IdType::Str => match utf8_str(obj, "id")? {
            Some(s) => Ok(Id::from(s)),
            None => Err(wrong_kind(obj, IdType::Str)),
        },
    }
}

/// Many int ids: an integer numpy array (read in one pass) or any iterable.
fn to_int_ids(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
    if let Ok(arr) = obj.cast::<PyUntypedArray>() {
        if arr.ndim() != 1 {
            return Err(PyValueError::new_err(format!(
                "ids must be a 1-D array, got shape {:?}",
                arr.shape()
            )));
        }
        if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, i64>>() {
            return a
                .as_array()
                .iter()
                .map(|&i| {
                    u64::try_from(i).map_err(|_| {
                        InvalidArgumentError::new_err(format!(
                            "id {i} is negative: ids must be non-negative"
                        ))
                    })
                })
                .collect();
        }
        if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, u64>>() {
            return a
                .as_array()
                .iter()
                .map(|&i| {
                    if i < (1 << 63) {
                        Ok(i)
                    } else {
                        Err(PyOverflowError::new_err(format!(
                            "id {i} is out of range: ids must be below 2^63"
                        )))
                    }
                })
                .collect();
        }
        let kind: String = arr.dtype().getattr("kind")?.extract()?;
        if kind != "i" && kind != "u" {
            return Err(IdTypeError::new_err(format!(
                "ids must be integers, got an array of dtype {}",
                arr.dtype()
            )));
        }
    }
    iterate(obj)?.map(|item| to_int_id(&item?)).collect()
}

fn iterate<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyIterator>> {
    obj.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "ids must be a sequence or a 1-D array, got {}",
            type_name(obj)
        ))
    })
}

/// Many ids of the kind `expected` (a sequence or a 1-D numpy array).
pub fn to_ids(obj: &Bound<'_, PyAny>, expected: IdType) -> PyResult<Vec<Id>> {
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "ids must be a sequence of ids, got a single str",
        ));
    }
    match expected {
        IdType::Int => Ok(to_int_ids(obj)?.into_iter().map(Id::Int).collect()),
        IdType::Str => {
            if let Ok(arr) = obj.cast::<PyUntypedArray>() {
                if arr.ndim() != 1 {
                    return Err(PyValueError::new_err(format!(
                        "ids must be a 1-D array, got shape {:?}",
                        arr.shape()
                    )));
                }
            }
            iterate(obj)?
                .map(|item| to_id(&item?, IdType::Str))
                .collect()
        }
    }
}

/// An id as a Python int or str.
pub fn id_to_py(py: Python<'_>, id: &Id) -> PyResult<Py<PyAny>> {
    match id {
        Id::Int(i) => i.into_py_any(py),
        Id::Str(s) => (&**s).into_py_any(py),
    }
}
