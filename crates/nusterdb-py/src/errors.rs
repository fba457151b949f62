//! Maps core errors onto the Python exception classes of `nusterdb/exceptions.py`.
//!
//! The classes are defined in Python so each can have two bases
//! (`DimensionMismatchError(NusterDBError, ValueError)`); Rust imports them. This is
//! the one `match` from error variant to exception class.

use nusterdb_core::Error;
use pyo3::exceptions::{PyOverflowError, PyValueError, PyZeroDivisionError};
use pyo3::PyErr;

pyo3::import_exception!(nusterdb.exceptions, NusterDBError);
pyo3::import_exception!(nusterdb.exceptions, DimensionMismatchError);
pyo3::import_exception!(nusterdb.exceptions, InvalidVectorError);
pyo3::import_exception!(nusterdb.exceptions, InvalidArgumentError);
pyo3::import_exception!(nusterdb.exceptions, DuplicateIdError);
pyo3::import_exception!(nusterdb.exceptions, IdNotFoundError);
pyo3::import_exception!(nusterdb.exceptions, IdTypeError);
pyo3::import_exception!(nusterdb.exceptions, ConfigMismatchError);
pyo3::import_exception!(nusterdb.exceptions, FilterError);
pyo3::import_exception!(nusterdb.exceptions, DatabaseLockedError);
pyo3::import_exception!(nusterdb.exceptions, CorruptionError);
pyo3::import_exception!(nusterdb.exceptions, NotADatabaseError);
pyo3::import_exception!(nusterdb.exceptions, EncryptionKeyError);
pyo3::import_exception!(nusterdb.exceptions, DatabaseNotFoundError);
pyo3::import_exception!(nusterdb.exceptions, ClosedError);
pyo3::import_exception!(nusterdb.exceptions, ReadOnlyError);
pyo3::import_exception!(nusterdb.exceptions, ForkedProcessError);
pyo3::import_exception!(nusterdb.exceptions, NusterDBIOError);
pyo3::import_exception!(nusterdb.exceptions, IndexRebuiltWarning);
pyo3::import_exception!(nusterdb.exceptions, DamagedSnapshotWarning);

/// The POSIX errno of an error kind, for errors that carry no OS code (RocksDB's).
fn errno_of(kind: std::io::ErrorKind) -> i32 {
    use std::io::ErrorKind as K;
    match kind {
        K::NotFound => 2,
        K::PermissionDenied => 13,
        K::StorageFull => 28,
        K::ReadOnlyFilesystem => 30,
        K::QuotaExceeded => 122,
        _ => 5, // EIO
    }
}

/// The Python exception for a core error.
pub fn to_py_err(err: Error) -> PyErr {
    let msg = err.to_string();
    match err {
        Error::DimensionMismatch { .. } => DimensionMismatchError::new_err(msg),
        Error::EmptyVector | Error::NonFinite { .. } => InvalidVectorError::new_err(msg),
        Error::InvalidArgument(_) => InvalidArgumentError::new_err(msg),
        Error::DivisionByZero { .. } => PyZeroDivisionError::new_err(msg),
        Error::DuplicateId(_) | Error::RepeatedId { .. } => DuplicateIdError::new_err(msg),
        Error::IdNotFound(_) => IdNotFoundError::new_err(msg),
        Error::ConfigMismatch { .. } => ConfigMismatchError::new_err(msg),
        Error::Filter { .. } => FilterError::new_err(msg),
        Error::Locked { .. } => DatabaseLockedError::new_err(msg),
        Error::Corruption { .. } => CorruptionError::new_err(msg),
        Error::NotADatabase { .. } => NotADatabaseError::new_err(msg),
        Error::EncryptionKey { .. } => EncryptionKeyError::new_err(msg),
        // An OSError with errno ENOENT, like a missing path's.
        Error::NoDatabase { path, .. } => {
            DatabaseNotFoundError::new_err((2, msg, path.to_string_lossy().into_owned()))
        }
        Error::Closed => ClosedError::new_err(msg),
        Error::Interrupted(_) => pyo3::exceptions::PyKeyboardInterrupt::new_err(msg),
        Error::ReadOnly => ReadOnlyError::new_err(msg),
        Error::Forked { .. } | Error::ForkedEngine { .. } => ForkedProcessError::new_err(msg),
        Error::Io { path, source } => {
            // OSError's (errno, strerror, filename) form fills .errno and .filename.
            let errno = source
                .raw_os_error()
                .unwrap_or_else(|| errno_of(source.kind()));
            NusterDBIOError::new_err((errno, msg, path.to_string_lossy().into_owned()))
        }
        Error::Storage(_) => NusterDBError::new_err(msg),
        // An OSError with errno EEXIST, like the one a taken path gives.
        Error::AlreadyExists { path, .. } => {
            NusterDBIOError::new_err((17, msg, path.to_string_lossy().into_owned()))
        }
        Error::SnapshotNotWritable { .. } => ReadOnlyError::new_err(msg),
        _ => NusterDBError::new_err(msg),
    }
}

/// `.py()` turns a core `Result` into a `PyResult`.
pub trait IntoPyResult<T> {
    /// Maps the error with [`to_py_err`].
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_py_err)
    }
}

/// A `ValueError` for an argument the core never sees (e.g. a negative size).
pub fn value_error(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

/// An `OverflowError` for integers that do not fit.
pub fn overflow_error(msg: impl Into<String>) -> PyErr {
    PyOverflowError::new_err(msg.into())
}
