//! `nusterdb.NusterDB` and `DatabaseStats`: bind the core `Database`. Converts
//! arguments, releases the GIL around storage and search work, maps errors.

use std::path::PathBuf;

use nusterdb_core::db::{
    GraphLoad, Include, LoadSource, Location, MetadataUpdate, PutMode, Selection, Stats,
};
use nusterdb_core::filter::Filter;
use nusterdb_core::index::SearchParams;
use nusterdb_core::{Database, DatabaseConfig, Id, IdType, Metadata};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::batch::{self, to_k, to_rows};
use crate::config::{
    dim_config, master_key, simple_config, vectors_config, with_encryption, PyDatabaseConfig,
};
use crate::convert::{
    from_value, require_str, to_count, to_metadata, to_metadata_merge, to_vector, type_name,
    utf8_str, FsPath, SnapshotName,
};
use crate::cursor::{to_batch_size, PyRecordIterator, Yields};
use crate::errors::{
    DamagedSnapshotWarning, IndexRebuiltWarning, IntoPyResult, InvalidArgumentError,
};
use crate::filter::to_filter;
use crate::ids::{id_to_py, to_id, to_ids};
use crate::metadata::PyMetadata;
use crate::metric::PyDistanceMetric;
use crate::progress::PyObserver;
use crate::records::{records_dict, to_include, PySearchHit};
use crate::vector::PyVector;

/// The rows of a bulk write as Python gave them: ids, vectors, metadata, documents.
type BulkRows<'a, 'py> = (
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    Option<&'a Bound<'py, PyAny>>,
    Option<&'a Bound<'py, PyAny>>,
);

/// Figures about a database when `NusterDB.stats()` was called (frozen; not made
/// directly).
#[pyclass(name = "DatabaseStats", module = "nusterdb._core", frozen)]
pub struct PyDatabaseStats {
    inner: Stats,
}

#[pymethods]
impl PyDatabaseStats {
    /// The number of records stored when the figures were taken.
    #[getter]
    fn vector_count(&self) -> u64 {
        self.inner.vector_count
    }

    /// The vector dimension. Same as `stats.dim`; kept for compatibility.
    #[getter]
    fn dimension(&self) -> usize {
        self.inner.dimension
    }

    /// The vector dimension (the name `NusterDB.dim` and `DatabaseConfig.dim` use).
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dimension
    }

    /// The index: "flat" or "hnsw".
    #[getter]
    fn index_type(&self) -> &'static str {
        self.inner.index_type.name()
    }

    /// The metric's name, a str such as "cosine" (`stats.metric` is the
    /// DistanceMetric itself); kept for compatibility.
    #[getter]
    fn distance_metric(&self) -> &'static str {
        self.inner.metric.name()
    }

    /// The metric, a DistanceMetric (the type `NusterDB.metric` and
    /// `DatabaseConfig.metric` give); `stats.distance_metric` is its name.
    #[getter]
    fn metric(&self) -> PyDistanceMetric {
        self.inner.metric.into()
    }

    /// Distinct metadata field names in use, sorted.
    #[getter]
    fn metadata_keys(&self) -> Vec<String> {
        self.inner.metadata_keys.clone()
    }

    /// Slots freed by removals and not yet reused.
    #[getter]
    fn deleted_count(&self) -> u64 {
        self.inner.deleted_count
    }

    /// Memory held: vectors, graph, id map, payload index, and the storage engine's
    /// memtables, block-cache usage and table readers.
    #[getter]
    fn memory_bytes(&self) -> u64 {
        self.inner.memory_bytes
    }

    /// `memory_bytes` by part, as a dict that sums to it: "vectors" (the rows and
    /// what is kept per row), for HNSW "graph", "codes" (the rows' 4- or 8-bit codes) and
    /// "scratch" (search buffers), "id_map", "names" (string ids), "payload_index"
    /// (filter indexes), and the storage engine's "memtables", "block_cache" and
    /// "table_readers".
    #[getter]
    fn memory_by_part(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.inner.memory_by_part.iter().copied().collect()
    }

    /// Bytes of seal files mapped in place of heap memory (HNSW rows and codes after
    /// an open from a seal), not in memory_bytes: the page cache holds them, shared
    /// with other handles and reclaimable; RSS counts the pages a process touched.
    #[getter]
    fn mapped_bytes(&self) -> u64 {
        self.inner.mapped_bytes
    }

    /// The bytes of those mappings resident in this process (the pages its searches
    /// and writes touched; with vectors="disk" searches read rows from the files and
    /// only the codes' pages become resident); None where the system does not say
    /// (off Linux).
    #[getter]
    fn mapped_resident_bytes(&self) -> Option<u64> {
        self.inner.mapped_resident_bytes
    }

    /// Bytes the database's directory holds on disk (0 in memory).
    #[getter]
    fn disk_bytes(&self) -> u64 {
        self.inner.disk_bytes
    }

    /// RocksDB's statistics dump (None when statistics are disabled).
    #[getter]
    fn engine_statistics(&self) -> Option<String> {
        self.inner.engine_statistics.clone()
    }

    fn __repr__(&self) -> String {
        let s = &self.inner;
        format!(
            "DatabaseStats(vector_count={}, dimension={}, index_type={:?}, metadata_keys={:?}, \
             deleted_count={}, memory_bytes={}, disk_bytes={})",
            s.vector_count,
            s.dimension,
            s.index_type.name(),
            s.metadata_keys,
            s.deleted_count,
            s.memory_bytes,
            s.disk_bytes
        )
    }
}

/// An embedded vector database on RocksDB.
///
/// `NusterDB(path=None, config=None, dim=None, read_only=False, progress=None,
/// encryption=None)` creates or opens; path None or ":memory:" is in memory. A new database needs `config` or
/// `dim`; an existing one uses its stored config with what `config`/`dim` state applied:
/// structural fields must match (else ConfigMismatchError), runtime knobs apply. One
/// writer per database: a second one raises DatabaseLockedError; `read_only=True` opens
/// a follower beside a live writer (`refresh()` catches up). Opening reports to
/// `progress`; Ctrl-C stops it (KeyboardInterrupt). `encryption` (an EncryptionConfig,
/// or in `config`) creates an encrypted database and is needed at every open of one
/// (EncryptionKeyError without it). Use it as a context manager to close it at the end
/// of a `with` block.
///
/// Facts fixed at open are properties, readable after `close()`: `path`, `config`,
/// `dim`, `metric`, `index`, `id_type`, `read_only`, `closed`. Everything that reads the
/// data or takes arguments is a method and raises ClosedError after `close()`.
#[pyclass(name = "NusterDB", module = "nusterdb._core", frozen)]
pub struct PyNusterDB {
    db: Database,
}

fn location(path: Option<&Bound<'_, PyAny>>) -> PyResult<Location> {
    let Some(p) = path else {
        return Ok(Location::Memory);
    };
    if p.is_none() {
        return Ok(Location::Memory);
    }
    let pb: PathBuf = match p.extract::<FsPath>() {
        Ok(path) => path.0,
        Err(e) if e.is_instance_of::<PyTypeError>(p.py()) => {
            return Err(PyTypeError::new_err(format!(
                "path must be a str, an os.PathLike or None, got {}",
                type_name(p)
            )))
        }
        Err(e) => return Err(e),
    };
    if pb.as_os_str() == ":memory:" {
        Ok(Location::Memory)
    } else {
        Ok(Location::Path(pb))
    }
}

fn optional_metadata(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Metadata>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => to_metadata(o).map(Some),
    }
}

/// A document: a str, or None for none.
fn optional_document(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => utf8_str(o, "document")?.map(Some).ok_or_else(|| {
            PyTypeError::new_err(format!(
                "document must be str or None, got {}",
                type_name(o)
            ))
        }),
    }
}

/// `e`, raised by row `row` of `what`, with the row and its id put in front of its
/// message (same exception type), so a bad entry in a long batch can be found.
fn in_row(py: Python<'_>, e: PyErr, what: &str, row: usize, id: Option<&Id>) -> PyErr {
    let at = match id {
        Some(id) => format!("{what} row {row} (id {id})"),
        None => format!("{what} row {row}"),
    };
    let msg = format!("{at}: {}", e.value(py));
    PyErr::from_type(e.get_type(py), msg)
}

/// One entry per id from an optional sequence (`None` given: an empty list, meaning
/// none given for any row), each converted by `one`.
fn per_row<T>(
    obj: Option<&Bound<'_, PyAny>>,
    ids: &[Id],
    what: &str,
    one: impl Fn(Option<&Bound<'_, PyAny>>) -> PyResult<Option<T>>,
) -> PyResult<Vec<Option<T>>> {
    let Some(o) = obj.filter(|o| !o.is_none()) else {
        return Ok(Vec::new());
    };
    if o.is_instance_of::<pyo3::types::PyString>() || o.is_instance_of::<PyDict>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a sequence with one entry per id, got {}",
            type_name(o)
        )));
    }
    let n = ids.len();
    let mut out = Vec::with_capacity(n);
    for (row, item) in o
        .try_iter()
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "{what} must be a sequence with one entry per id, got {}",
                type_name(o)
            ))
        })?
        .enumerate()
    {
        out.push(one(Some(&item?)).map_err(|e| in_row(o.py(), e, what, row, ids.get(row)))?);
    }
    if out.len() != n {
        return Err(PyValueError::new_err(format!(
            "{n} ids but {} {what} entries",
            out.len()
        )));
    }
    Ok(out)
}

impl PyNusterDB {
    fn open_with(
        py: Python<'_>,
        path: Option<&Bound<'_, PyAny>>,
        config: Option<DatabaseConfig>,
        read_only: bool,
        progress: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let loc = location(path)?;
        let watch = PyObserver::new(py, progress, "open")?;
        let opened = py.detach(|| Database::open_observed(loc, config, read_only, &watch));
        let db = watch.finish(py, opened, false)?;
        let this = Self { db };
        this.warn_if_rebuilt(py)?;
        Ok(this)
    }

    /// Raises an `IndexRebuiltWarning` if the graph file was unusable at the last
    /// open or refresh (an error if the warning filters turn warnings into errors).
    fn warn_if_rebuilt(&self, py: Python<'_>) -> PyResult<()> {
        if let Ok(GraphLoad::Rebuilt { reason }) = py.detach(|| self.db.graph_load()) {
            let msg = if self.db.config().index_type == nusterdb_core::IndexType::Ivf {
                format!(
                    "the IVF lists file was not usable and the lists were trained again \
                     from the stored vectors (nothing was lost): {reason}"
                )
            } else {
                format!(
                    "the HNSW graph file was not usable and the graph was rebuilt from the \
                     stored vectors (nothing was lost): {reason}"
                )
            };
            let msg = std::ffi::CString::new(msg.replace('\0', " "))
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            let category = py.get_type::<IndexRebuiltWarning>();
            PyErr::warn(py, &category, &msg, 2)?;
        }
        Ok(())
    }

    fn id_type(&self) -> IdType {
        self.db.config().id_type
    }

    /// The core database (for the iterators of `cursor.rs`).
    pub(crate) fn database(&self) -> &Database {
        &self.db
    }

    /// An iterator over this database in id order (see `cursor.rs`).
    fn iterator(
        slf: &Bound<'_, Self>,
        filter: Option<&Bound<'_, PyAny>>,
        include: Option<&Bound<'_, PyAny>>,
        batch_size: Option<&Bound<'_, PyAny>>,
        yields: Yields,
    ) -> PyResult<PyRecordIterator> {
        let this = slf.get();
        let include = match include {
            _ if yields == Yields::Ids => Include::NOTHING,
            Some(i) if !i.is_none() => to_include(i)?,
            _ => Include::ALL,
        };
        let f = to_filter(filter)?;
        let batch_size = to_batch_size(batch_size)?;
        this.ensure_open(slf.py())?;
        Ok(PyRecordIterator::new(
            slf.clone().unbind(),
            f,
            include,
            batch_size,
            yields,
        ))
    }

    /// `Ok` while open. Like every call that takes the database's lock, it waits for
    /// the lock without the GIL: long calls hold the lock while they report progress
    /// and check for Ctrl-C, which needs the GIL, so waiting for the lock while holding
    /// the GIL could deadlock.
    fn ensure_open(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.db.ensure_open()).py()
    }

    fn id(&self, obj: &Bound<'_, PyAny>) -> PyResult<Id> {
        to_id(obj, self.id_type())
    }

    fn ids(&self, obj: &Bound<'_, PyAny>) -> PyResult<Vec<Id>> {
        to_ids(obj, self.id_type())
    }

    /// `bulk_add` / `bulk_upsert`: the rows (ids, vectors, metadata, documents) written
    /// in one atomic `put`, watched for Ctrl-C and progress. A metadata entry of None
    /// keeps the stored metadata of a stored id and gives a new one empty metadata.
    fn bulk_put(
        &self,
        py: Python<'_>,
        mode: PutMode,
        what: &str,
        (ids, vectors, metadata, documents): BulkRows<'_, '_>,
        progress: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let ids = self.ids(ids)?;
        let (rows, n) = to_rows(vectors, self.db.config().dim, "vectors")?;
        if n != ids.len() {
            return Err(PyValueError::new_err(format!(
                "{} ids but {n} vectors",
                ids.len()
            )));
        }
        let metas = per_row(metadata, &ids, "metadata", optional_metadata)?;
        let docs = per_row(documents, &ids, "documents", optional_document)?;
        let watch = PyObserver::new(py, progress, what)?;
        let written = py.detach(|| self.db.put_observed(mode, &ids, &rows, metas, docs, &watch));
        watch.finish(py, written, true)
    }

    fn put_one(
        &self,
        py: Python<'_>,
        mode: PutMode,
        id: &Bound<'_, PyAny>,
        vector: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyAny>>,
        document: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let id = self.id(id)?;
        let v = to_vector(vector)?;
        let m = optional_metadata(metadata)?;
        let d = optional_document(document)?;
        py.detach(|| {
            self.db.put(
                mode,
                std::slice::from_ref(&id),
                v.as_slice(),
                vec![m],
                vec![d],
            )
        })
        .py()
        .map(|_| ())
    }
}

#[pymethods]
impl PyNusterDB {
    /// NusterDB(path=None, config=None, dim=None, read_only=False, progress=None,
    /// encryption=None).
    ///
    /// path None or ":memory:" → in memory. A new database needs `config` or `dim`; an
    /// existing one uses its stored config with what `config`/`dim` state applied:
    /// structural fields must match (else ConfigMismatchError), runtime knobs apply.
    /// `encryption` (an EncryptionConfig, or in `config`) creates an encrypted database
    /// and is needed at every open of one (EncryptionKeyError without it).
    #[new]
    #[pyo3(signature = (path = None, config = None, dim = None, read_only = false, progress = None, encryption = None))]
    fn new(
        py: Python<'_>,
        path: Option<&Bound<'_, PyAny>>,
        config: Option<PyRef<'_, PyDatabaseConfig>>,
        dim: Option<usize>,
        read_only: bool,
        progress: Option<&Bound<'_, PyAny>>,
        encryption: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let config = match (config, dim) {
            (Some(c), Some(d)) if c.inner.dim != d => {
                return Err(PyValueError::new_err(format!(
                    "dim={d} disagrees with config.dim={}",
                    c.inner.dim
                )))
            }
            (Some(c), _) => Some(c.inner.clone()),
            (None, Some(d)) => Some(dim_config(d)?),
            (None, None) => None,
        };
        let config = with_encryption(config, encryption)?;
        Self::open_with(py, path, config, read_only, progress)
    }

    /// Opens an existing database with its stored config.
    #[staticmethod]
    #[pyo3(signature = (path, read_only = false, progress = None, vectors = None, encryption = None))]
    fn open(
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        read_only: bool,
        progress: Option<&Bound<'_, PyAny>>,
        vectors: Option<&Bound<'_, PyAny>>,
        encryption: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let config = match vectors {
            Some(v) => Some(vectors_config(&require_str(v, "vectors mode")?)?),
            None => None,
        };
        let config = with_encryption(config, encryption)?;
        Self::open_with(py, Some(path), config, read_only, progress)
    }

    /// A flat (exact) or HNSW database with defaults.
    #[staticmethod]
    #[pyo3(signature = (path, dim, use_hnsw = false))]
    fn simple(
        py: Python<'_>,
        path: Option<&Bound<'_, PyAny>>,
        dim: usize,
        use_hnsw: bool,
    ) -> PyResult<Self> {
        let cfg = simple_config(dim, use_hnsw)?;
        Self::open_with(py, path, Some(cfg), false, None)
    }

    /// A flat database (alias of the one exact search).
    #[staticmethod]
    fn optimized_flat(
        py: Python<'_>,
        path: Option<&Bound<'_, PyAny>>,
        dim: usize,
    ) -> PyResult<Self> {
        Self::simple(py, path, dim, false)
    }

    /// A flat database (alias of the one exact search).
    #[staticmethod]
    fn ultra_fast_flat(
        py: Python<'_>,
        path: Option<&Bound<'_, PyAny>>,
        dim: usize,
    ) -> PyResult<Self> {
        Self::simple(py, path, dim, false)
    }

    /// A flat database (alias of the one exact search).
    #[staticmethod]
    fn super_optimized_flat(
        py: Python<'_>,
        path: Option<&Bound<'_, PyAny>>,
        dim: usize,
    ) -> PyResult<Self> {
        Self::simple(py, path, dim, false)
    }

    /// `with NusterDB(...) as db:` gives the database itself.
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Closes the database at the end of a `with` block; exceptions propagate.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    /// Closes the database; a second close is a no-op, any other use raises ClosedError.
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.db.close());
    }

    /// Whether `close()` was called. Readable after close, like every property.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        py.detach(|| self.db.is_closed())
    }

    /// Whether this handle was opened read-only (a follower: writes raise
    /// ReadOnlyError). Readable after close.
    #[getter]
    fn read_only(&self) -> bool {
        self.db.is_read_only()
    }

    /// The directory as a str, or None in memory. Readable after close.
    #[getter]
    fn path(&self) -> Option<String> {
        self.db.path().map(|p| p.to_string_lossy().into_owned())
    }

    /// The DatabaseConfig the database was opened with (its stored structure and
    /// the runtime knobs given). Readable after close.
    #[getter]
    fn config(&self) -> PyDatabaseConfig {
        PyDatabaseConfig {
            inner: self.db.config().clone(),
        }
    }

    /// The vector dimension, an int (fixed when the database was created).
    /// Readable after close.
    #[getter]
    fn dim(&self) -> usize {
        self.db.config().dim
    }

    /// The distance metric, a DistanceMetric (fixed when the database was created).
    /// Readable after close.
    #[getter]
    fn metric(&self) -> PyDistanceMetric {
        self.db.config().distance_metric.into()
    }

    /// The index type: "flat" (exact search) or "hnsw" (approximate). Readable after
    /// close.
    #[getter]
    fn index(&self) -> &'static str {
        self.db.config().index_type.name()
    }

    /// The kind of ids: "int" or "str" (fixed when the database was created).
    /// Readable after close.
    #[getter(id_type)]
    fn id_type_name(&self) -> &'static str {
        self.db.config().id_type.name()
    }

    /// Syncs the write-ahead log: every acknowledged write then survives power loss.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.db.flush()).py()
    }

    /// Catches a read-only handle up with the writer's later writes.
    fn refresh(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.db.refresh()).py()?;
        self.warn_if_rebuilt(py)
    }

    /// The vector dimension. Same as `db.dim`; kept for compatibility (unlike the
    /// property, it raises ClosedError on a closed handle).
    fn dimension(&self, py: Python<'_>) -> PyResult<usize> {
        self.ensure_open(py)?;
        Ok(self.db.config().dim)
    }

    /// "flat" or "hnsw". Same as `db.index`; kept for compatibility (unlike the
    /// property, it raises ClosedError on a closed handle).
    fn index_type(&self, py: Python<'_>) -> PyResult<&'static str> {
        self.ensure_open(py)?;
        Ok(self.db.config().index_type.name())
    }

    /// Whether the index is HNSW. Same as `db.index == "hnsw"`; kept for
    /// compatibility (raises ClosedError on a closed handle).
    fn is_hnsw(&self, py: Python<'_>) -> PyResult<bool> {
        self.ensure_open(py)?;
        Ok(self.db.config().index_type == nusterdb_core::IndexType::Hnsw)
    }

    /// Whether the index is flat (exact). Same as `db.index == "flat"`; kept for
    /// compatibility (raises ClosedError on a closed handle).
    fn is_flat(&self, py: Python<'_>) -> PyResult<bool> {
        self.ensure_open(py)?;
        Ok(self.db.config().index_type == nusterdb_core::IndexType::Flat)
    }

    /// The DistanceMetric. Same as `db.metric`; kept for compatibility (unlike the
    /// property, it raises ClosedError on a closed handle).
    fn distance_metric(&self, py: Python<'_>) -> PyResult<PyDistanceMetric> {
        self.ensure_open(py)?;
        Ok(self.db.config().distance_metric.into())
    }

    /// `len(db)`: the number of records stored; ClosedError after close.
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        py.detach(|| self.db.count()).py()
    }

    /// The number of records `filter` allows (all of them without one). FilterError
    /// for a malformed filter; ClosedError after close.
    #[pyo3(signature = (filter = None))]
    fn count(&self, py: Python<'_>, filter: Option<&Bound<'_, PyAny>>) -> PyResult<usize> {
        let f = to_filter(filter)?;
        py.detach(|| self.db.count_where(f.as_ref())).py()
    }

    /// `id in db`: whether `id` is stored. Like a dict, a value that cannot be an id of
    /// this database (another type, out of range) is simply not in it.
    fn __contains__(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<bool> {
        match self.id(id) {
            Ok(id) => match py.detach(|| self.db.contains_id(&id)) {
                Err(nusterdb_core::Error::InvalidArgument(_)) => Ok(false),
                other => other.py(),
            },
            Err(_) => py.detach(|| self.db.count()).py().map(|_| false),
        }
    }

    /// Whether `id` is stored; an id of the wrong kind raises IdTypeError.
    fn contains(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<bool> {
        let id = self.id(id)?;
        py.detach(|| self.db.contains_id(&id)).py()
    }

    /// Every id, sorted: ints ascending, strs by their UTF-8 bytes.
    fn list_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        match self.id_type() {
            IdType::Int => PyList::new(py, py.detach(|| self.db.list_ids()).py()?),
            IdType::Str => {
                let ids = py.detach(|| self.db.ids()).py()?;
                PyList::new(py, ids.iter().filter_map(Id::as_str))
            }
        }
    }

    /// Figures about the database now, a DatabaseStats (count, dimension, index,
    /// metric, metadata keys, memory and disk use). ClosedError after close.
    fn stats(&self, py: Python<'_>) -> PyResult<PyDatabaseStats> {
        let inner = py.detach(|| self.db.stats()).py()?;
        Ok(PyDatabaseStats { inner })
    }

    /// Adds a vector; an existing id raises DuplicateIdError.
    #[pyo3(signature = (id, vector, metadata = None, document = None))]
    fn add(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        vector: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyAny>>,
        document: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.put_one(py, PutMode::Add, id, vector, metadata, document)
    }

    /// Inserts or replaces a vector; metadata and document replace the stored ones
    /// when given and are kept otherwise.
    #[pyo3(signature = (id, vector, metadata = None, document = None))]
    fn upsert(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        vector: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyAny>>,
        document: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.put_one(py, PutMode::Upsert, id, vector, metadata, document)
    }

    /// Changes the vector, metadata and/or document of an existing id
    /// (IdNotFoundError otherwise); what is None is kept. Metadata is merged into the
    /// stored one (a key given None is removed; tags are added) or, with merge=False,
    /// replaces it; either way `created_at` is kept and `version` bumped.
    #[pyo3(signature = (id, vector = None, metadata = None, document = None, merge = true))]
    fn update(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        vector: Option<&Bound<'_, PyAny>>,
        metadata: Option<&Bound<'_, PyAny>>,
        document: Option<&Bound<'_, PyAny>>,
        merge: bool,
    ) -> PyResult<()> {
        let id = self.id(id)?;
        let v = match vector {
            Some(o) if !o.is_none() => Some(to_vector(o)?),
            _ => None,
        };
        let m = match metadata {
            Some(o) if !o.is_none() && merge => {
                let (set, remove) = to_metadata_merge(o)?;
                Some(MetadataUpdate::Merge { set, remove })
            }
            Some(o) if !o.is_none() => Some(MetadataUpdate::Replace(to_metadata(o)?)),
            _ => None,
        };
        let d = optional_document(document)?;
        py.detach(|| {
            self.db
                .update_record(&id, v.as_ref().map(|v| v.as_slice()), m, d)
        })
        .py()
    }

    /// Adds many vectors atomically (all or nothing); returns how many were added.
    /// Ctrl-C (or a progress callback that raises) before the write is committed
    /// stops it with nothing stored.
    #[pyo3(signature = (ids, vectors, metadata = None, documents = None, progress = None))]
    fn bulk_add(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        vectors: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyAny>>,
        documents: Option<&Bound<'_, PyAny>>,
        progress: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let rows = (ids, vectors, metadata, documents);
        self.bulk_put(py, PutMode::Add, "bulk_add", rows, progress)
    }

    /// Inserts or replaces many vectors atomically (all or nothing); returns how many
    /// were written. Metadata and documents replace the stored ones where given (an
    /// entry of None keeps them). Ctrl-C or a raising progress callback stops it with
    /// nothing stored while new rows are being indexed; replaced vectors are re-linked
    /// after the write is committed, and that part runs to its end.
    #[pyo3(signature = (ids, vectors, metadata = None, documents = None, progress = None))]
    fn bulk_upsert(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        vectors: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyAny>>,
        documents: Option<&Bound<'_, PyAny>>,
        progress: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let rows = (ids, vectors, metadata, documents);
        self.bulk_put(py, PutMode::Upsert, "bulk_upsert", rows, progress)
    }

    /// Removes an id; returns whether it was there.
    fn remove(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<bool> {
        let id = self.id(id)?;
        py.detach(|| self.db.delete(std::slice::from_ref(&id)))
            .py()
            .map(|n| n == 1)
    }

    /// Removes many ids atomically; returns how many were there.
    fn bulk_remove(&self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<usize> {
        let ids = self.ids(ids)?;
        py.detach(|| self.db.delete(&ids)).py()
    }

    /// The vector stored for `id` (None if absent).
    fn get(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Option<PyVector>> {
        let id = self.id(id)?;
        py.detach(|| self.db.vector_of(&id))
            .py()?
            .map(|d| nusterdb_core::Vector::new(d).py().map(PyVector::wrap))
            .transpose()
    }

    /// The metadata stored for `id` (None if absent).
    fn get_metadata(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Option<PyMetadata>> {
        let id = self.id(id)?;
        let m = py.detach(|| self.db.metadata_of(&id)).py()?;
        Ok(m.map(|inner| PyMetadata { inner }))
    }

    /// The document stored for `id` (None if absent or stored without one).
    fn get_document(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
        let id = self.id(id)?;
        py.detach(|| self.db.get_document(&id)).py()
    }

    /// Many records in one call, as a dict: "ids" and, as `include` asks (default all
    /// of "vector", "metadata", "document"), "vectors" (float32 array (m, dim)),
    /// "metadatas", "documents". `ids`: those ids in the order asked (absent ones and
    /// repeats left out); None: every record in id order. Then only those `filter`
    /// allows, after the id `after` (id order only: a cursor for paging), skipping
    /// `offset`, at most `limit` (ints ≥ 0).
    #[pyo3(signature = (ids = None, include = None, filter = None, limit = None, offset = None, after = None))]
    #[pyo3(
        text_signature = "(self, /, ids=None, include=None, filter=None, limit=None, offset=0, after=None)"
    )]
    #[allow(clippy::too_many_arguments)] // one per Python keyword argument
    fn get_many<'py>(
        &self,
        py: Python<'py>,
        ids: Option<&Bound<'py, PyAny>>,
        include: Option<&Bound<'py, PyAny>>,
        filter: Option<&Bound<'py, PyAny>>,
        limit: Option<&Bound<'py, PyAny>>,
        offset: Option<&Bound<'py, PyAny>>,
        after: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let count = |o: Option<&Bound<'py, PyAny>>, what| match o {
            Some(o) if !o.is_none() => to_count(o, what).map(Some),
            _ => Ok(None),
        };
        let limit = count(limit, "limit")?;
        let offset = count(offset, "offset")?.unwrap_or(0);
        let ids = match ids {
            Some(i) if !i.is_none() => Some(self.ids(i)?),
            _ => None,
        };
        let after = match after {
            Some(a) if !a.is_none() => Some(self.id(a)?),
            _ => None,
        };
        let include = match include {
            Some(i) if !i.is_none() => to_include(i)?,
            _ => Include::ALL,
        };
        let f = to_filter(filter)?;
        let sel = Selection {
            ids: ids.as_deref(),
            filter: f.as_ref(),
            after: after.as_ref(),
            offset,
            limit,
        };
        let records = py.detach(|| self.db.select(sel, include)).py()?;
        records_dict(py, records, include, self.db.config().dim)
    }

    /// An iterator of `Record` objects (id, vector, metadata, document as `include`
    /// asks; default all) over every record `filter` allows, in id order, read
    /// `batch_size` records at a time with the `after=` cursor of `get_many`: memory
    /// holds one page. Writes between pages act as on a cursor: an id stored for the
    /// whole iteration comes exactly once; one added or removed meanwhile may or may
    /// not. batch_size: an int >= 1 (0 or negative: InvalidArgumentError; bool, float
    /// or str: TypeError, as for `limit`). ClosedError after close.
    #[pyo3(signature = (filter = None, include = None, batch_size = None),
           text_signature = "($self, filter=None, include=None, batch_size=1000)")]
    fn iter_records(
        slf: &Bound<'_, Self>,
        filter: Option<&Bound<'_, PyAny>>,
        include: Option<&Bound<'_, PyAny>>,
        batch_size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyRecordIterator> {
        Self::iterator(slf, filter, include, batch_size, Yields::Records)
    }

    /// As `iter_records`, but yields each page whole: the dict `get_many` returns
    /// ("ids" and, as `include` asks, "vectors" (float32 (m, dim)), "metadatas",
    /// "documents"), at most `batch_size` records each, never an empty one.
    #[pyo3(signature = (filter = None, include = None, batch_size = None),
           text_signature = "($self, filter=None, include=None, batch_size=1000)")]
    fn iter_pages(
        slf: &Bound<'_, Self>,
        filter: Option<&Bound<'_, PyAny>>,
        include: Option<&Bound<'_, PyAny>>,
        batch_size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyRecordIterator> {
        Self::iterator(slf, filter, include, batch_size, Yields::Pages)
    }

    /// `iter(db)`, `for id in db`: every id in id order, read 1,000 at a time (as
    /// `iter_records`, writes between pages act as on a cursor).
    fn __iter__(slf: &Bound<'_, Self>) -> PyResult<PyRecordIterator> {
        Self::iterator(slf, None, None, None, Yields::Ids)
    }

    /// Removes atomically the records among `ids` and/or those `filter` allows;
    /// returns how many were removed. Give at least one; `filter={}`, which matches
    /// every record, is refused (`clear()` removes all).
    #[pyo3(signature = (ids = None, filter = None))]
    fn delete(
        &self,
        py: Python<'_>,
        ids: Option<&Bound<'_, PyAny>>,
        filter: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let ids = match ids {
            Some(i) if !i.is_none() => Some(self.ids(i)?),
            _ => None,
        };
        if filter.is_some_and(|f| f.cast::<PyDict>().is_ok_and(|d| d.is_empty())) {
            // `{}` matches every record: a delete by it is almost always a bug.
            return Err(InvalidArgumentError::new_err(
                "delete(filter={}) would remove every record: call clear() for that",
            ));
        }
        let f = to_filter(filter)?;
        if ids.is_none() && f.is_none() {
            return Err(PyTypeError::new_err(
                "delete() needs ids and/or a filter; clear() removes every record",
            ));
        }
        py.detach(|| self.db.delete_where(ids.as_deref(), f.as_ref()))
            .py()
    }

    /// Removes every record atomically; returns how many there were.
    fn clear(&self, py: Python<'_>) -> PyResult<usize> {
        py.detach(|| self.db.clear()).py()
    }

    /// The min(k, matches) nearest vectors, nearest first: [(id, distance)], or with
    /// `include` (names among "vector", "metadata", "document") [SearchHit].
    /// `quantized=False` walks an HNSW graph on the full rows for this search instead of
    /// its codes; `nprobe` is the lists an IVF index scans for this search; `recall`
    /// (in (0, 1], instead of `ef_search` or `nprobe`) a recall@k target the database
    /// meets by its calibration on its own rows.
    #[pyo3(signature = (query, k = 10, filter = None, ef_search = None, include = None, quantized = None, nprobe = None, recall = None))]
    #[allow(clippy::too_many_arguments)] // one per Python keyword argument
    fn search<'py>(
        &self,
        py: Python<'py>,
        query: &Bound<'py, PyAny>,
        k: i64,
        filter: Option<&Bound<'py, PyAny>>,
        ef_search: Option<usize>,
        include: Option<&Bound<'py, PyAny>>,
        quantized: Option<bool>,
        nprobe: Option<usize>,
        recall: Option<f64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let k = to_k(k)?;
        let params = SearchParams {
            ef_search,
            quantized,
            nprobe,
            // Set by recall targets only: not a Python search argument.
            probe_reach: None,
            recall: recall.map(|r| r as f32),
        };
        let q = to_vector(query)?;
        let f: Option<Filter> = to_filter(filter)?;
        let include = match include {
            Some(i) if !i.is_none() => Some(to_include(i)?),
            _ => None,
        };
        if include.is_none() && self.id_type() == IdType::Int {
            let hits = py
                .detach(|| self.db.search(q.as_slice(), k, f.as_ref(), params))
                .py()?;
            return PyList::new(py, hits);
        }
        let hits = py
            .detach(|| {
                self.db.search_records(
                    q.as_slice(),
                    k,
                    f.as_ref(),
                    params,
                    include.unwrap_or(Include::NOTHING),
                )
            })
            .py()?;
        let out = PyList::empty(py);
        for (record, d) in hits {
            if include.is_some() {
                out.append(PySearchHit::new(py, record, d)?)?;
            } else {
                out.append((id_to_py(py, &record.id)?, d))?;
            }
        }
        Ok(out)
    }

    /// What `search(..., recall=recall)` sets for `k` and `filter`: {"ef_search": n}
    /// (HNSW) or {"nprobe": n} (IVF), measured first if needed; {} on an exact index.
    #[pyo3(signature = (recall, k = 10, filter = None, quantized = None))]
    fn search_params_for<'py>(
        &self,
        py: Python<'py>,
        recall: f64,
        k: i64,
        filter: Option<&Bound<'py, PyAny>>,
        quantized: Option<bool>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let k = to_k(k)?;
        let f: Option<Filter> = to_filter(filter)?;
        let params = SearchParams {
            quantized,
            recall: Some(recall as f32),
            ..SearchParams::default()
        };
        let got = py
            .detach(|| self.db.search_params_for(k, f.as_ref(), params))
            .py()?;
        let out = PyDict::new(py);
        if let Some(ef) = got.ef_search {
            out.set_item("ef_search", ef)?;
        }
        if let Some(n) = got.nprobe {
            out.set_item("nprobe", n)?;
        }
        if let Some(r) = got.probe_reach {
            out.set_item("probe_reach", r)?;
        }
        Ok(out)
    }

    /// The recall curves the database keeps (measured here, or saved by an earlier
    /// process and still fresh), oldest first: dicts with "k", "band" (the least share
    /// of the rows a filter of its band allows), "knob" ("ef_search" or "nprobe"),
    /// "quantized", "points" (a list of (knob value, recall@k)), "from_searches"
    /// (measured on queries searches asked, else on rows moved off the data), "live"
    /// (rows when measured) and "changed_since" (records changed since).
    fn recall_curves<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let curves = py.detach(|| self.db.recall_curves()).py()?;
        let out = PyList::empty(py);
        for c in curves {
            let d = PyDict::new(py);
            d.set_item("k", c.k)?;
            d.set_item("band", c.band)?;
            d.set_item("knob", c.knob)?;
            d.set_item("quantized", c.quantized)?;
            d.set_item("points", c.points)?;
            d.set_item("steps", c.steps)?;
            d.set_item("from_searches", c.from_searches)?;
            d.set_item("live", c.live)?;
            d.set_item("changed_since", c.changed_since)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// Searches every row of an (n, dim) batch; returns (ids, distances) arrays of shape
    /// (n, min(k, number of stored vectors)), padded with -1 / inf where fewer match
    /// (string ids: an object array padded with None). With `include` (names among
    /// "vector", "metadata", "document") a dict instead: "ids" and "distances" (those
    /// arrays) and, as asked, "metadatas" and "documents" (n lists of w entries, None
    /// for padding) and "vectors" (float32 (n, w, dim), NaN rows for padding), read
    /// under the same lock as the search. `quantized`, `nprobe` and `recall` as for
    /// `search`.
    #[pyo3(signature = (queries, k = 10, filter = None, ef_search = None, progress = None, include = None, quantized = None, nprobe = None, recall = None))]
    #[allow(clippy::too_many_arguments)] // one per Python keyword argument
    fn batch_search<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        k: i64,
        filter: Option<&Bound<'py, PyAny>>,
        ef_search: Option<usize>,
        progress: Option<&Bound<'py, PyAny>>,
        include: Option<&Bound<'py, PyAny>>,
        quantized: Option<bool>,
        nprobe: Option<usize>,
        recall: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let k = to_k(k)?;
        let dim = self.db.config().dim;
        let (rows, n) = to_rows(queries, dim, "queries")?;
        let f = to_filter(filter)?;
        let include = match include {
            Some(i) if !i.is_none() => Some(to_include(i)?),
            _ => None,
        };
        let watch = PyObserver::new(py, progress, "batch_search")?;
        let found = py.detach(|| {
            batch::gather(
                &self.db,
                &rows,
                n,
                k,
                f.as_ref(),
                SearchParams {
                    ef_search,
                    quantized,
                    nprobe,
                    probe_reach: None,
                    recall: recall.map(|r| r as f32),
                },
                include,
                &watch,
            )
        });
        let hits = watch.finish(py, found, false)?;
        batch::to_python(py, hits, include, self.id_type() == IdType::Str, dim)
    }

    /// Takes a snapshot with an automatic name; returns the name.
    fn snapshot(&self, py: Python<'_>) -> PyResult<String> {
        let name = nusterdb_core::snapshot::auto_name().replacen("auto-", "snapshot-", 1);
        self.snapshot_named(py, SnapshotName(name))
    }

    /// Takes a snapshot named `name`; returns the name.
    fn snapshot_named(&self, py: Python<'_>, name: SnapshotName) -> PyResult<String> {
        let m = Metadata::new();
        let info = py.detach(|| self.db.snapshot(&name, &m)).py()?;
        Ok(info.name)
    }

    /// Takes a snapshot named `name` carrying the caller's metadata; returns the name.
    fn snapshot_with_metadata(
        &self,
        py: Python<'_>,
        name: SnapshotName,
        metadata: &Bound<'_, PyAny>,
    ) -> PyResult<String> {
        let m = to_metadata(metadata)?;
        let info = py.detach(|| self.db.snapshot(&name, &m)).py()?;
        Ok(info.name)
    }

    /// Every snapshot, oldest first, as dicts: name, path, created_at, vector_count,
    /// auto, metadata. A snapshot whose manifest cannot be read is left out with a
    /// `DamagedSnapshotWarning` naming it.
    fn list_snapshots<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let listing = py.detach(|| self.db.snapshot_listing()).py()?;
        for bad in &listing.damaged {
            let msg = format!(
                "snapshot {:?} at {} is damaged and was left out of the listing \
                 (delete_snapshot removes it): {}",
                bad.name,
                bad.path.display(),
                bad.reason
            );
            let msg = std::ffi::CString::new(msg.replace('\0', " "))
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            PyErr::warn(py, &py.get_type::<DamagedSnapshotWarning>(), &msg, 1)?;
        }
        let out = PyList::empty(py);
        for s in listing.snapshots {
            let d = PyDict::new(py);
            d.set_item("name", &s.name)?;
            d.set_item("path", s.path.to_string_lossy().into_owned())?;
            d.set_item("created_at", s.created_at)?;
            d.set_item("vector_count", s.vector_count)?;
            d.set_item("auto", s.auto)?;
            let md = PyDict::new(py);
            for (k, v) in s.metadata.fields() {
                md.set_item(k, from_value(py, v)?)?;
            }
            d.set_item("metadata", md)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// Restores snapshot `name`: with `target_path`, copies it there as a database of
    /// its own (with this database's snapshots when `keep_snapshots`); without, rolls
    /// this open database back to it in place, every snapshot kept — so an explicit
    /// `keep_snapshots=False` without a target is refused rather than ignored.
    #[pyo3(signature = (name, target_path = None, keep_snapshots = None))]
    fn restore_snapshot(
        &self,
        py: Python<'_>,
        name: SnapshotName,
        target_path: Option<FsPath>,
        keep_snapshots: Option<bool>,
    ) -> PyResult<()> {
        match target_path {
            Some(target) => py
                .detach(|| {
                    self.db
                        .restore_snapshot_to(&name, &target, keep_snapshots.unwrap_or(false))
                })
                .py(),
            None if keep_snapshots == Some(false) => Err(InvalidArgumentError::new_err(
                "keep_snapshots=False needs a target_path: a restore in place (no target) \
                 always keeps every snapshot",
            )),
            None => py.detach(|| self.db.restore_snapshot_in_place(&name)).py(),
        }
    }

    /// Deletes snapshot `name`.
    fn delete_snapshot(&self, py: Python<'_>, name: SnapshotName) -> PyResult<()> {
        py.detach(|| self.db.delete_snapshot(&name)).py()
    }

    /// Checks the database at `path` without modifying it (see the core's `verify`
    /// module); the report as a dict. Raises only when there is no database to check.
    /// An encrypted database needs its `encryption` (EncryptionKeyError without it).
    #[staticmethod]
    #[pyo3(signature = (path, encryption = None))]
    fn verify<'py>(
        py: Python<'py>,
        path: FsPath,
        encryption: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let master = encryption.map(master_key).transpose()?;
        let report = py
            .detach(|| Database::verify_with_key(&path.0, master.as_ref()))
            .py()?;
        verify_report(py, &report)
    }

    /// Rotates the master key of the closed encrypted database at `path` from `old` to
    /// `new` (EncryptionConfigs): its data key is rewrapped in the key file of the
    /// database and of each snapshot; no stored value is rewritten. Returns how many
    /// key files were rotated. DatabaseLockedError while the database is open;
    /// EncryptionKeyError if `old` does not open it. Run again to finish a rotation
    /// that was cut short.
    #[staticmethod]
    fn rotate_encryption_key(
        py: Python<'_>,
        path: FsPath,
        old: &Bound<'_, PyAny>,
        new: &Bound<'_, PyAny>,
    ) -> PyResult<usize> {
        let (old, new) = (master_key(old)?, master_key(new)?);
        py.detach(|| Database::rotate_master_key(&path.0, &old, &new))
            .py()
    }

    /// A full manual compaction (space of removed and replaced records given back).
    fn compact(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.db.compact()).py()
    }

    /// Seals the state into segment files now, if it changed since the last seal (an
    /// encrypted database saves only its encrypted graph file).
    fn seal(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.db.seal()).py()
    }

    /// Where the last open or refresh took the in-memory state from, as a dict.
    fn load_source<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let source = py.detach(|| self.db.load_source()).py()?;
        let d = PyDict::new(py);
        match source {
            LoadSource::Sealed { replayed } => {
                d.set_item("source", "segments")?;
                d.set_item("replayed", replayed)?;
            }
            LoadSource::Records { refused } => {
                d.set_item("source", "records")?;
                d.set_item("refused", refused)?;
            }
            LoadSource::Log { replayed } => {
                d.set_item("source", "log")?;
                d.set_item("replayed", replayed)?;
            }
        }
        Ok(d)
    }

    /// How the HNSW graph (or an IVF index's lists) was obtained at the last open or refresh, as a dict. The
    /// database's lock is waited for without the GIL, as by every call that takes it.
    fn graph_load<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let load = py.detach(|| self.db.graph_load()).py()?;
        let d = PyDict::new(py);
        match load {
            GraphLoad::NotPersisted => d.set_item("state", "not_persisted")?,
            GraphLoad::Built => d.set_item("state", "built")?,
            GraphLoad::Loaded {
                reused,
                inserted,
                removed,
            } => {
                d.set_item("state", "loaded")?;
                d.set_item("reused", reused)?;
                d.set_item("inserted", inserted)?;
                d.set_item("removed", removed)?;
            }
            GraphLoad::Rebuilt { reason } => {
                d.set_item("state", "rebuilt")?;
                d.set_item("reason", reason)?;
            }
        }
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let c = self.db.config();
        let place = self
            .db
            .path()
            .map_or_else(|| ":memory:".to_string(), |p| p.display().to_string());
        let count = py
            .detach(|| self.db.count())
            .map_or_else(|_| "closed".to_string(), |n| n.to_string());
        format!(
            "NusterDB(path={place:?}, dim={}, index_type={:?}, metric={:?}, count={count})",
            c.dim,
            c.index_type.name(),
            c.distance_metric.name()
        )
    }
}

/// A verify report as plain Python values (the keys `NusterDB.verify` documents).
fn verify_report<'py>(
    py: Python<'py>,
    r: &nusterdb_core::verify::VerifyReport,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("path", r.path.to_string_lossy().into_owned())?;
    d.set_item("healthy", r.is_healthy())?;
    d.set_item("live_writer", r.live_writer)?;
    d.set_item("checked", r.checked.clone())?;
    match &r.config {
        Some(c) => {
            let cd = PyDict::new(py);
            cd.set_item("dim", c.dim)?;
            cd.set_item("index_type", c.index_type.name())?;
            cd.set_item("distance_metric", c.distance_metric.name())?;
            cd.set_item("id_type", c.id_type.name())?;
            d.set_item("config", cd)?;
        }
        None => d.set_item("config", py.None())?,
    }
    let counts = PyDict::new(py);
    counts.set_item("keys_read", r.keys_read)?;
    counts.set_item("bytes_read", r.bytes_read)?;
    counts.set_item("vectors", r.vectors)?;
    counts.set_item("metadata_records", r.metadata_records)?;
    counts.set_item("documents", r.documents)?;
    counts.set_item("string_ids", r.string_ids)?;
    counts.set_item("log_entries", r.log_entries)?;
    counts.set_item("graph_nodes", r.graph_nodes)?;
    counts.set_item("index_vectors", r.index_vectors)?;
    counts.set_item("snapshots", r.snapshots)?;
    d.set_item("counts", counts)?;
    let problems = PyList::empty(py);
    for p in &r.problems {
        let pd = PyDict::new(py);
        pd.set_item("kind", p.kind.name())?;
        pd.set_item("detail", &p.detail)?;
        problems.append(pd)?;
    }
    d.set_item("problems", problems)?;
    d.set_item("notes", r.notes.clone())?;
    Ok(d)
}
