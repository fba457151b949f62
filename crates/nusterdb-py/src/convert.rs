//! Conversions between Python objects and core values: vector-likes (a `Vector`, a
//! 1-D numpy array, any sequence of numbers) and typed metadata values.

use std::path::{Path, PathBuf};

use numpy::{PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods};
use nusterdb_core::{Metadata, Value, Vector};
use pyo3::exceptions::{PyTypeError, PyUnicodeEncodeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyString};

use crate::errors::{overflow_error, value_error, IntoPyResult, InvalidArgumentError};
use crate::metadata::PyMetadata;
use crate::vector::PyVector;

/// A validated `Vector` from any vector-like Python object.
///
/// float32 numpy arrays are copied as they are; float64 and integer arrays and Python
/// sequences are converted to f32 (values that overflow f32 are rejected as
/// non-finite). Arrays that are not 1-D are a `ValueError`. `str`, `bytes` and
/// `bytearray` are refused with a `TypeError`: iterating them gives characters or raw
/// byte values, never the floats a caller means (a float32 buffer would be read as
/// 4 components per float).
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
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "expected a sequence of numbers or a 1-D numpy array, got str",
        ));
    }
    if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyByteArray>() {
        return Err(PyTypeError::new_err(format!(
            "expected a sequence of numbers or a 1-D numpy array, got {}; raw bytes are not \
             read as a vector (for a float32 buffer use numpy.frombuffer(data, dtype=numpy.float32))",
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

/// A Rust `String` from a Python `str` that must be valid UTF-8 (a key, a tag, a name,
/// a path). A `str` holding a lone surrogate (such as `'\ud800'`) cannot be encoded;
/// it is an `InvalidArgumentError` naming `what` and the position, never a raw
/// `UnicodeEncodeError` or a "must be str, got str". Returns `None` for a non-`str`,
/// so each caller keeps its own type error.
pub fn utf8_str(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Option<String>> {
    let Ok(s) = obj.cast::<PyString>() else {
        return Ok(None);
    };
    match s.to_cow() {
        Ok(text) => Ok(Some(text.into_owned())),
        Err(_) => Err(InvalidArgumentError::new_err(surrogate_message(
            s,
            what,
            "is not valid UTF-8",
        ))),
    }
}

/// A `String` from a Python `str` (`utf8_str`), or a `TypeError` naming `what`.
pub fn require_str(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    utf8_str(obj, what)?
        .ok_or_else(|| PyTypeError::new_err(format!("{what} must be str, got {}", type_name(obj))))
}

/// "{what} '\\ud800x' {problem}: it contains a lone surrogate U+D800 at index 0", the
/// string shown by its repr (which escapes surrogates), cut to 120 characters.
pub fn surrogate_message(s: &Bound<'_, PyString>, what: &str, problem: &str) -> String {
    let py = s.py();
    let shown = s
        .repr()
        .ok()
        .and_then(|r| r.to_cow().ok().map(|t| truncate_chars(&t, 120)))
        .unwrap_or_else(|| "<str>".to_string());
    // Python's own encoder names the first code point UTF-8 cannot hold.
    let found = s.call_method1("encode", ("utf-8",)).err().and_then(|e| {
        let err = e.value(py);
        let start: usize = err.getattr("start").ok()?.extract().ok()?;
        let ch = err.getattr("object").ok()?.get_item(start).ok()?;
        let cp: u32 = py
            .import("builtins")
            .ok()?
            .call_method1("ord", (ch,))
            .ok()?
            .extract()
            .ok()?;
        Some((start, cp))
    });
    match found {
        Some((i, cp)) => format!(
            "{what} {shown} {problem}: it contains a lone surrogate U+{cp:04X} at index {i}"
        ),
        None => format!("{what} {shown} {problem}"),
    }
}

/// A snapshot name argument: a `str` that is valid UTF-8 (`require_str`), so a lone
/// surrogate is an `InvalidArgumentError` naming it, not a raw `UnicodeEncodeError`.
pub struct SnapshotName(pub String);

impl<'a, 'py> FromPyObject<'a, 'py> for SnapshotName {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        require_str(&obj, "snapshot name").map(SnapshotName)
    }
}

impl std::ops::Deref for SnapshotName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// A file-system path argument (`str`, `bytes` or `os.PathLike`). A `str` the file
/// system encoding cannot hold (a lone surrogate outside the `surrogateescape` range)
/// is an `InvalidArgumentError` naming it; other types are a `TypeError`.
pub struct FsPath(pub PathBuf);

impl<'a, 'py> FromPyObject<'a, 'py> for FsPath {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let py = obj.py();
        match obj.extract::<PathBuf>() {
            Ok(p) => Ok(FsPath(p)),
            Err(e) if e.is_instance_of::<PyUnicodeEncodeError>(py) => {
                let text = py.import("os")?.call_method1("fspath", (&*obj,))?;
                match text.cast::<PyString>() {
                    Ok(s) => Err(InvalidArgumentError::new_err(surrogate_message(
                        s,
                        "path",
                        "cannot be encoded as a file-system path",
                    ))),
                    Err(_) => Err(e),
                }
            }
            Err(_) => Err(PyTypeError::new_err(format!(
                "path must be a str, bytes or an os.PathLike, got {}",
                type_name(&obj)
            ))),
        }
    }
}

impl std::ops::Deref for FsPath {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

/// At most `max` characters of `s`, with "..." when cut (messages stay short).
fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push_str("...");
        out
    }
}

/// The qualified type name of `obj`, for messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_string())
}

/// `to_value` for the field `key`: a `str` value that is not valid UTF-8 is reported
/// with the key it was given for.
pub fn to_value_for(obj: &Bound<'_, PyAny>, key: &str) -> PyResult<Value> {
    to_value(obj).map_err(|e| match obj.cast::<PyString>() {
        Ok(s) if e.is_instance_of::<InvalidArgumentError>(obj.py()) => {
            InvalidArgumentError::new_err(surrogate_message(
                s,
                &format!("metadata value of key {key:?}:"),
                "is not valid UTF-8",
            ))
        }
        _ => e,
    })
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
    if let Some(s) = utf8_str(obj, "metadata value")? {
        return Ok(Value::Str(s));
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
            let key = utf8_str(&k, "metadata key")?.ok_or_else(|| {
                PyTypeError::new_err(format!("metadata keys must be str, got {}", type_name(&k)))
            })?;
            let value = to_value_for(&v, &key)?;
            Ok((key, value))
        })
        .collect()
}

/// A metadata merge from a `Metadata` object or a dict, where a `None` value removes
/// its key: (the fields to set, the keys to remove).
pub fn to_metadata_merge(obj: &Bound<'_, PyAny>) -> PyResult<(Metadata, Vec<String>)> {
    let Ok(d) = obj.cast::<PyDict>() else {
        return Ok((to_metadata(obj)?, Vec::new()));
    };
    let set = PyDict::new(obj.py());
    let mut remove = Vec::new();
    for (k, v) in d.iter() {
        if v.is_none() {
            let key = utf8_str(&k, "metadata key")?.ok_or_else(|| {
                PyTypeError::new_err(format!("metadata keys must be str, got {}", type_name(&k)))
            })?;
            remove.push(key);
        } else {
            set.set_item(k, v)?;
        }
    }
    Ok((to_metadata(&set)?, remove))
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

/// A count argument (`limit`, `offset`, page sizes): an int ≥ 0 (numpy ints too),
/// errors naming `what`. `bool` is refused although it is an int: `limit=True` is a
/// mistake, not 1. Counts past `usize` saturate (a limit that large is no limit).
pub fn to_count(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<usize> {
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int, got bool"
        )));
    }
    let v: i128 = obj.extract().map_err(|_| {
        PyTypeError::new_err(format!("{what} must be an int, got {}", type_name(obj)))
    })?;
    if v < 0 {
        return Err(InvalidArgumentError::new_err(format!(
            "{what} must be 0 or more, got {v}"
        )));
    }
    Ok(usize::try_from(v).unwrap_or(usize::MAX))
}
