//! Python filter dicts → the core's `FilterInput` tree (parsing and meaning live in
//! the core).

use nusterdb_core::filter::{Filter, FilterInput};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::convert::{type_name, utf8_str};
use crate::errors::{FilterError, IntoPyResult};

/// Nesting deeper than this is refused before the core sees it (the core's own limit
/// is lower; this one only keeps the conversion's recursion bounded).
const MAX_DEPTH: usize = 128;

fn convert(obj: &Bound<'_, PyAny>, at: &str, depth: usize) -> PyResult<FilterInput> {
    if depth > MAX_DEPTH {
        return Err(FilterError::new_err(format!(
            "invalid filter at {at}: nested deeper than {MAX_DEPTH} levels"
        )));
    }
    if obj.is_none() {
        return Ok(FilterInput::Null);
    }
    if obj.is_instance_of::<PyBool>() {
        return Ok(FilterInput::Bool(obj.extract()?));
    }
    if obj.is_instance_of::<PyInt>() {
        return int_input(obj, at);
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(FilterInput::Float(obj.extract()?));
    }
    if obj.is_instance_of::<PyString>() {
        return utf8_str(obj, &format!("invalid filter at {at}: string"))
            .map_err(|e| as_filter_error(obj.py(), e))?
            .map(FilterInput::Str)
            .ok_or_else(|| FilterError::new_err(format!("invalid filter at {at}")));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut entries = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key = utf8_str(&k, &format!("invalid filter at {at}: key"))
                .map_err(|e| as_filter_error(obj.py(), e))?
                .ok_or_else(|| {
                    FilterError::new_err(format!(
                        "invalid filter at {at}: keys must be str, got {}",
                        type_name(&k)
                    ))
                })?;
            let child = format!("{at}[{key:?}]");
            entries.push((key, convert(&v, &child, depth + 1)?));
        }
        return Ok(FilterInput::Map(entries));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in obj.try_iter()?.enumerate() {
            items.push(convert(&item?, &format!("{at}[{i}]"), depth + 1)?);
        }
        return Ok(FilterInput::List(items));
    }
    // numpy scalars and other numbers. numpy's bool is a bool, as in metadata (it is not
    // a Python bool, and not an int). An integer type is never read as a float: that
    // would round a numpy uint64 above 2^63 - 1 instead of refusing it.
    let tn = type_name(obj);
    if tn == "bool_" || tn == "bool" {
        return Ok(FilterInput::Bool(obj.is_truthy()?));
    }
    if obj.hasattr("__index__")? {
        return int_input(obj, at);
    }
    if let Ok(f) = obj.extract::<f64>() {
        return Ok(FilterInput::Float(f));
    }
    Err(FilterError::new_err(format!(
        "invalid filter at {at}: unsupported value of type {}",
        type_name(obj)
    )))
}

/// An integer bound. Stored ints are `i64`, so only those are accepted: a wider one is
/// refused rather than rounded, which would change what it matches. The message does
/// not print the int (it may have thousands of digits).
fn int_input(obj: &Bound<'_, PyAny>, at: &str) -> PyResult<FilterInput> {
    obj.extract::<i64>().map(FilterInput::Int).map_err(|_| {
        FilterError::new_err(format!(
            "invalid filter at {at}: the integer is outside the signed 64-bit range \
             [-2**63, 2**63 - 1] of metadata ints (a float bound such as 2.0**64 compares \
             exactly with every stored number)"
        ))
    })
}

/// A malformed filter is a `FilterError` (the message already names the place).
fn as_filter_error(py: Python<'_>, e: PyErr) -> PyErr {
    FilterError::new_err(e.value(py).to_string())
}

/// Parses an optional Python filter; `None` means no filter.
pub fn to_filter(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Filter>> {
    let Some(obj) = obj else {
        return Ok(None);
    };
    if obj.is_none() {
        return Ok(None);
    }
    if !obj.is_instance_of::<PyDict>() {
        return Err(FilterError::new_err(format!(
            "invalid filter at filter: expected a dict, got {}",
            type_name(obj)
        )));
    }
    let input = convert(obj, "filter", 0)?;
    Filter::parse(&input).py().map(Some)
}
