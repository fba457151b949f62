//! Conversions between Python objects and core values: vector-likes (a `Vector`, a
//! 1-D numpy array, any sequence of numbers) and typed metadata values.

use numpy::{PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods};
use nusterdb_core::{Metadata, Value, Vector};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyString};

use crate::errors::{overflow_error, value_error, IntoPyResult};
use crate::metadata::PyMetadata;
use crate::vector::PyVector;

/// A validated `Vector` from any vector-like Python object.
///
/// float32 numpy arrays are read directly; float64 and integer arrays and Python
/// sequences are converted to f32 (values that overflow f32 are rejected as
/// non-finite). Arrays that are not 1-D are a `ValueError`.
pub fn to_vector(obj: &Bound<'_, PyAny>) -> PyResult<Vector> {
    if let Ok(v) = obj.extract::<PyRef<'_, PyVector>>() {
        return Ok(v.inner.clone());
    }
    if let Ok(arr) = obj.cast::<PyUntypedArray>() {
        if arr.ndim() != 1 {
            return Err(value_error(format!(
                "expected a 1-D array for a vector, got an array of shape {:?}",
                arr.shape()
            )));
        }
        if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, f32>>() {
            return Vector::new(a.as_array().to_vec()).py();
        }
        if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, f64>>() {
            return Vector::from_f64(&a.as_array().to_vec()).py();
        }
        // Integer, bool or float16 arrays: let numpy convert, then read as f64. Other
        // kinds (strings, complex, objects) are refused rather than coerced.
        let kind: String = arr.dtype().getattr("kind")?.extract()?;
        if !matches!(kind.as_str(), "b" | "i" | "u" | "f") {
            return Err(PyTypeError::new_err(format!(
                "cannot use a numpy array of dtype {} as a vector",
                arr.dtype()
            )));
        }
        let converted = obj.call_method1("astype", ("float64",))?;
        let a = converted.extract::<PyReadonlyArray1<'_, f64>>()?;
        return Vector::from_f64(&a.as_array().to_vec()).py();
    }
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "expected a sequence of numbers or a 1-D numpy array, got {}",
            type_name(obj)
        )));
    }
    match obj.extract::<Vec<f64>>() {
        Ok(data) => Vector::from_f64(&data).py(),
        Err(_) => Err(PyTypeError::new_err(format!(
            "expected a Vector, a sequence of numbers or a 1-D numpy array, got {}",
            type_name(obj)
        ))),
    }
}

/// The qualified type name of `obj`, for messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_string())
}

/// A typed metadata value from a Python str, int, float or bool (numpy scalars too).
pub fn to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    // bool first: Python's bool is a subclass of int.
    if obj.is_instance_of::<PyBool>() {
        return Ok(Value::Bool(obj.extract()?));
    }
    if obj.is_instance_of::<PyInt>() {
        return obj.extract::<i64>().map(Value::Int).map_err(|_| {
            overflow_error(format!(
                "metadata int {obj} does not fit in a signed 64-bit integer"
            ))
        });
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(Value::Float(obj.extract()?));
    }
    if obj.is_instance_of::<PyString>() {
        return Ok(Value::Str(obj.extract()?));
    }
    // numpy scalars: bool_ has neither __index__ nor is it a bool; integer types have
    // __index__; floating types have __float__.
    let tn = type_name(obj);
    if tn == "bool_" || tn == "bool" {
        return Ok(Value::Bool(obj.is_truthy()?));
    }
    if obj.hasattr("__index__")? {
        return obj.extract::<i64>().map(Value::Int).map_err(|_| {
            overflow_error(format!(
                "metadata int {obj} does not fit in a signed 64-bit integer"
            ))
        });
    }
    if tn.starts_with("float") {
        return Ok(Value::Float(obj.extract()?));
    }
    Err(PyTypeError::new_err(format!(
        "metadata values must be str, int, float or bool, got {tn}"
    )))
}

/// A Python object for a metadata value.
pub fn from_value<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Str(s) => s.into_pyobject(py)?.into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Float(f) => f.into_pyobject(py)?.into_any(),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
    })
}

/// Typed fields from a dict with str keys.
pub fn fields_from_dict(d: &Bound<'_, PyDict>) -> PyResult<Vec<(String, Value)>> {
    d.iter()
        .map(|(k, v)| {
            let key: String = k.extract().map_err(|_| {
                PyTypeError::new_err(format!("metadata keys must be str, got {}", type_name(&k)))
            })?;
            Ok((key, to_value(&v)?))
        })
        .collect()
}

/// `Metadata` from a `Metadata` object or a plain dict (accepted wherever `Metadata` is).
pub fn to_metadata(obj: &Bound<'_, PyAny>) -> PyResult<Metadata> {
    if let Ok(m) = obj.extract::<PyRef<'_, PyMetadata>>() {
        return Ok(m.inner.clone());
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return Metadata::with_parts(fields_from_dict(d)?, Vec::new()).py();
    }
    Err(PyTypeError::new_err(format!(
        "expected Metadata or a dict, got {}",
        type_name(obj)
    )))
}
