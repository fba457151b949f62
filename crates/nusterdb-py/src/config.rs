//! `HNSWConfig`, `StorageConfiguration`, `DatabaseConfig`: bind the core configs.
//!
//! The objects are immutable (like frozen dataclasses): a `DatabaseConfig` copies the
//! configs it is given, so mutable ones would invite edits that silently reach nothing.
//!
//! Each object remembers which constructor arguments were passed (`stated`): opening
//! an existing database checks or applies only those (see
//! `DatabaseConfig::reopened_with` in the core). The defaults stand in for the others
//! and are what a new database is created with. Equality compares values only.

use nusterdb_core::config::{
    Compression, DatabaseConfig, Field, Fields, HnswConfig, IndexType, IvfConfig, MasterKey,
    Quantization, StorageConfig, VectorStorage,
};
use nusterdb_core::{DistanceMetric, IdType};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::convert::require_str;
use crate::errors::IntoPyResult;
use crate::metric::{to_metric, PyDistanceMetric};

/// HNSW graph parameters (immutable; M = max_nb_connection, 2·M on layer 0).
///
/// `HNSWConfig(max_nb_connection=16, max_nb_elements=1024, max_layer=16,
/// ef_construction=200, ef_search=None, use_heuristic=True)`: InvalidArgumentError for a
/// value out of range, TypeError for a wrong type. Remembers which arguments were
/// passed: reopening a database checks or applies only those (`ef_search=None` passed:
/// automatic). Equality compares values.
#[pyclass(
    name = "HNSWConfig",
    module = "nusterdb._core",
    frozen,
    eq,
    skip_from_py_object
)]
#[derive(Clone)]
pub struct PyHnswConfig {
    pub inner: HnswConfig,
    /// The HNSW fields passed to the constructor.
    pub stated: Fields,
}

impl PartialEq for PyHnswConfig {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

/// `value` if given (and records `field` as stated), else `default`.
fn arg<T>(stated: &mut Fields, field: Field, value: Option<T>, default: T) -> T {
    match value {
        Some(v) => {
            *stated = stated.with(field);
            v
        }
        None => default,
    }
}

/// The arguments of a call, in the order of `fields` (positional ones by their
/// place): `None` for one not passed. Unlike a `None` default, this tells a value
/// passed — even `None`, even the default's value — from none.
///
/// # Errors
/// `TypeError` for too many positional arguments, an unknown keyword, or an argument
/// given twice (as Python's own calls do).
fn passed<'py>(
    what: &str,
    fields: &[Field],
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Vec<Option<Bound<'py, PyAny>>>> {
    if args.len() > fields.len() {
        return Err(PyTypeError::new_err(format!(
            "{what}() takes at most {} positional arguments ({} given)",
            fields.len(),
            args.len()
        )));
    }
    let mut out: Vec<Option<Bound<'py, PyAny>>> = vec![None; fields.len()];
    for (slot, a) in out.iter_mut().zip(args.iter()) {
        *slot = Some(a);
    }
    if let Some(kw) = kwargs {
        for (k, v) in kw.iter() {
            let name = require_str(&k, "keyword argument name")?;
            let i = fields
                .iter()
                .position(|f| f.name() == name)
                .ok_or_else(|| {
                    PyTypeError::new_err(format!(
                        "{what}() got an unexpected keyword argument '{name}'"
                    ))
                })?;
            if out[i].is_some() {
                return Err(PyTypeError::new_err(format!(
                    "{what}() got multiple values for argument '{name}'"
                )));
            }
            out[i] = Some(v);
        }
    }
    Ok(out)
}

/// Extracts a passed argument (a wrong type is a `TypeError`, a negative count an
/// `OverflowError`, as for any typed argument).
fn take<'py, T: FromPyObjectOwned<'py>>(v: &Option<Bound<'py, PyAny>>) -> PyResult<Option<T>> {
    v.as_ref()
        .map(|b| b.extract::<T>().map_err(Into::into))
        .transpose()
}

#[pymethods]
impl PyHnswConfig {
    // The arguments are taken as passed (see `passed`), so that a reopen knows which
    // ones were; the text signature shows the defaults. ef_search=None passed means
    // "automatic", stated.
    #[new]
    #[pyo3(signature = (*args, **kwargs),
           text_signature = "(max_nb_connection=16, max_nb_elements=1024, max_layer=16, \
                             ef_construction=200, ef_search=None, use_heuristic=True)")]
    fn new(args: &Bound<'_, PyTuple>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let a = passed("HNSWConfig", &Field::HNSW_ORDER, args, kwargs)?;
        let max_nb_connection = take::<usize>(&a[0])?;
        let max_nb_elements = take::<usize>(&a[1])?;
        let max_layer = take::<usize>(&a[2])?;
        let ef_construction = take::<usize>(&a[3])?;
        let ef_search = take::<Option<usize>>(&a[4])?;
        let use_heuristic = take::<bool>(&a[5])?;
        let d = HnswConfig::default();
        let mut stated = Fields::NONE;
        let st = &mut stated;
        let m = arg(
            st,
            Field::MaxNbConnection,
            max_nb_connection,
            d.max_nb_connection,
        );
        let inner = HnswConfig {
            max_nb_connection: m,
            max_nb_elements: arg(st, Field::MaxNbElements, max_nb_elements, d.max_nb_elements),
            max_layer: arg(st, Field::MaxLayer, max_layer, d.max_layer),
            // Not given, it follows a large M up (ef_construction ≥ M is a rule).
            ef_construction: arg(
                st,
                Field::EfConstruction,
                ef_construction,
                d.ef_construction.max(m),
            ),
            ef_search: arg(st, Field::EfSearch, ef_search, d.ef_search),
            use_heuristic: arg(st, Field::UseHeuristic, use_heuristic, d.use_heuristic),
        };
        inner.validate().py()?;
        Ok(Self { inner, stated })
    }

    /// The defaults, every field stated.
    #[staticmethod]
    fn default() -> Self {
        Self {
            inner: HnswConfig::default(),
            stated: Fields::of(Field::HNSW_ORDER),
        }
    }

    /// M: the links per node on the upper layers (2·M on layer 0).
    #[getter]
    fn max_nb_connection(&self) -> usize {
        self.inner.max_nb_connection
    }

    /// The expected number of vectors: a capacity hint, storage reserved up front.
    #[getter]
    fn max_nb_elements(&self) -> usize {
        self.inner.max_nb_elements
    }

    /// The highest graph layer a node can be placed on.
    #[getter]
    fn max_layer(&self) -> usize {
        self.inner.max_layer
    }

    /// The candidate list size while linking a new vector (build quality vs speed).
    #[getter]
    fn ef_construction(&self) -> usize {
        self.inner.ef_construction
    }

    /// The candidate list size of a search, or None for automatic (from k); a
    /// search's `ef_search=` argument overrides it.
    #[getter]
    fn ef_search(&self) -> Option<usize> {
        self.inner.ef_search
    }

    /// Whether neighbours are chosen with the diversity heuristic (else the nearest).
    #[getter]
    fn use_heuristic(&self) -> bool {
        self.inner.use_heuristic
    }

    fn __repr__(&self) -> String {
        let h = &self.inner;
        format!(
            "HNSWConfig(max_nb_connection={}, max_nb_elements={}, max_layer={}, \
             ef_construction={}, ef_search={}, use_heuristic={})",
            h.max_nb_connection,
            h.max_nb_elements,
            h.max_layer,
            h.ef_construction,
            h.ef_search.map_or("None".to_string(), |e| e.to_string()),
            if h.use_heuristic { "True" } else { "False" }
        )
    }
}

/// Storage-engine (RocksDB) knobs (immutable); each reaches the engine's options.
///
/// `StorageConfiguration(cache_size_mb=256, write_buffer_size_mb=64,
/// max_write_buffer_number=3, compression="lz4", enable_statistics=True,
/// enable_bloom_filter=True, bloom_filter_bits_per_key=10, max_background_jobs=4,
/// sync_writes=False)`: InvalidArgumentError for a value out of range or an unknown
/// compression, TypeError for a wrong type. Remembers which arguments were passed:
/// reopening a database applies only those. Equality compares values.
#[pyclass(
    name = "StorageConfiguration",
    module = "nusterdb._core",
    frozen,
    eq,
    skip_from_py_object
)]
#[derive(Clone)]
pub struct PyStorageConfig {
    pub inner: StorageConfig,
    /// The storage fields passed to the constructor.
    pub stated: Fields,
}

impl PartialEq for PyStorageConfig {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

#[pymethods]
impl PyStorageConfig {
    // The arguments are taken as passed, as in HNSWConfig.
    #[new]
    #[pyo3(signature = (*args, **kwargs),
           text_signature = "(cache_size_mb=256, write_buffer_size_mb=64, \
                             max_write_buffer_number=3, compression='lz4', \
                             enable_statistics=True, enable_bloom_filter=True, \
                             bloom_filter_bits_per_key=10, max_background_jobs=4, \
                             sync_writes=False)")]
    fn new(args: &Bound<'_, PyTuple>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let a = passed("StorageConfiguration", &Field::STORAGE, args, kwargs)?;
        let cache_size_mb = take::<u64>(&a[0])?;
        let write_buffer_size_mb = take::<u64>(&a[1])?;
        let max_write_buffer_number = take::<u32>(&a[2])?;
        let compression = match &a[3] {
            Some(c) => Some(Compression::from_name(&require_str(c, "compression")?).py()?),
            None => None,
        };
        let enable_statistics = take::<bool>(&a[4])?;
        let enable_bloom_filter = take::<bool>(&a[5])?;
        let bloom_filter_bits_per_key = take::<u32>(&a[6])?;
        let max_background_jobs = take::<u32>(&a[7])?;
        let sync_writes = take::<bool>(&a[8])?;
        let d = StorageConfig::default();
        let mut stated = Fields::NONE;
        let st = &mut stated;
        let inner = StorageConfig {
            cache_size_mb: arg(st, Field::CacheSizeMb, cache_size_mb, d.cache_size_mb),
            write_buffer_size_mb: arg(
                st,
                Field::WriteBufferSizeMb,
                write_buffer_size_mb,
                d.write_buffer_size_mb,
            ),
            max_write_buffer_number: arg(
                st,
                Field::MaxWriteBufferNumber,
                max_write_buffer_number,
                d.max_write_buffer_number,
            ),
            compression: arg(st, Field::Compression, compression, d.compression),
            enable_statistics: arg(
                st,
                Field::EnableStatistics,
                enable_statistics,
                d.enable_statistics,
            ),
            enable_bloom_filter: arg(
                st,
                Field::EnableBloomFilter,
                enable_bloom_filter,
                d.enable_bloom_filter,
            ),
            bloom_filter_bits_per_key: arg(
                st,
                Field::BloomFilterBitsPerKey,
                bloom_filter_bits_per_key,
                d.bloom_filter_bits_per_key,
            ),
            max_background_jobs: arg(
                st,
                Field::MaxBackgroundJobs,
                max_background_jobs,
                d.max_background_jobs,
            ),
            sync_writes: arg(st, Field::SyncWrites, sync_writes, d.sync_writes),
            // Given to DatabaseConfig (or the open), not among the engine knobs.
            encryption: None,
        };
        inner.validate().py()?;
        Ok(Self { inner, stated })
    }

    /// The defaults, every knob stated.
    #[staticmethod]
    fn default() -> Self {
        Self {
            inner: StorageConfig::default(),
            stated: Fields::of(Field::STORAGE),
        }
    }

    /// The RocksDB block cache size, in MiB.
    #[getter]
    fn cache_size_mb(&self) -> u64 {
        self.inner.cache_size_mb
    }

    /// The size of one RocksDB memtable (write buffer), in MiB.
    #[getter]
    fn write_buffer_size_mb(&self) -> u64 {
        self.inner.write_buffer_size_mb
    }

    /// The most memtables RocksDB keeps before it stalls writes.
    #[getter]
    fn max_write_buffer_number(&self) -> u32 {
        self.inner.max_write_buffer_number
    }

    /// The table compression: "none", "snappy", "lz4" or "zstd".
    #[getter]
    fn compression(&self) -> &'static str {
        self.inner.compression.name()
    }

    /// Whether RocksDB gathers statistics (see `DatabaseStats.engine_statistics`).
    #[getter]
    fn enable_statistics(&self) -> bool {
        self.inner.enable_statistics
    }

    /// Whether table files carry bloom filters for point lookups.
    #[getter]
    fn enable_bloom_filter(&self) -> bool {
        self.inner.enable_bloom_filter
    }

    /// Bloom filter bits per key (more bits: fewer false positives).
    #[getter]
    fn bloom_filter_bits_per_key(&self) -> u32 {
        self.inner.bloom_filter_bits_per_key
    }

    /// The most RocksDB background flushes and compactions at a time.
    #[getter]
    fn max_background_jobs(&self) -> u32 {
        self.inner.max_background_jobs
    }

    /// Whether every write syncs the write-ahead log before it returns (durable
    /// against power loss, slower); else `flush()` syncs.
    #[getter]
    fn sync_writes(&self) -> bool {
        self.inner.sync_writes
    }

    fn __repr__(&self) -> String {
        let s = &self.inner;
        let b = |x: bool| if x { "True" } else { "False" };
        format!(
            "StorageConfiguration(cache_size_mb={}, write_buffer_size_mb={}, \
             max_write_buffer_number={}, compression={:?}, enable_statistics={}, \
             enable_bloom_filter={}, bloom_filter_bits_per_key={}, max_background_jobs={}, \
             sync_writes={})",
            s.cache_size_mb,
            s.write_buffer_size_mb,
            s.max_write_buffer_number,
            s.compression.name(),
            b(s.enable_statistics),
            b(s.enable_bloom_filter),
            s.bloom_filter_bits_per_key,
            s.max_background_jobs,
            b(s.sync_writes)
        )
    }
}

/// Everything a database is created with (immutable).
///
/// `DatabaseConfig(dim, index_type="flat", distance_metric=None, hnsw_config=None,
/// storage_config=None, auto_snapshot=False, snapshot_interval_secs=3600,
/// id_type="int", vectors="mmap", quantization=None, encryption=None, nlist=None,
/// nprobe=None, recall=None)`: index_type "flat", "hnsw" or "ivf" ("optimized_flat",
/// "ultra_fast_flat" and "super_optimized_flat" are aliases of "flat"); nlist the lists
/// of an IVF index (fixed at creation; None: the square root of the row count) and
/// nprobe the lists an IVF search scans unless it says (None: a sixteenth of the
/// lists, at least 8), each 1 to 65,536 and refused for the other index types; distance_metric a
/// DistanceMetric or its name (default euclidean); id_type "int" (ids 0 <= id < 2**63)
/// or "str" (non-empty str ids of at most 1,024 UTF-8 bytes); vectors where the
/// index keeps the rows a seal holds, chosen at each open and never stored: "memory"
/// (read into memory), "mmap" (mapped: the page cache holds them) or "disk" (mapped,
/// and searches read the rows they re-rank from the files, so only the codes and the
/// graph become resident; HNSW on euclidean, inner product, cosine or angular; IVF
/// with quantization "rabitq" or "binary", whose lists then keep each row's place in the seal's
/// file and searches read the rows the codes let through; a flat index maps them under
/// "mmap" and copies them under "memory"; an IVF index copies them into its lists under
/// "memory", and under "mmap" when it has no codes — with codes it leaves them in the
/// seal's file and reads the rows the codes let through through the mapping);
/// quantization the codes an HNSW index walks its graph on, fixed at creation: "sq4"
/// (32·ceil(dim/64) bytes a vector; the default for euclidean, inner product, cosine
/// and angular), "sq8" (dim bytes: twice the memory, finer scores; databases created
/// before the choice keep it), "rabitq" (1 bit a component after a random rotation:
/// P/8 bytes, P = dim rounded up to a power of two, at least 64; rows coded against the
/// nearest of up to 1,024 k-means centroids; slower than sq4 at equal recall on
/// clustered rows), "binary" (the same with P = dim rounded up to a multiple of 64
/// only: one bit a component, 32 times smaller than the float32 row; the least memory,
/// for wide embeddings) or "none" (the walk reads the full rows; the default for flat
/// and IVF indexes and the other metrics); an IVF index takes "rabitq" or "binary"
/// (each list's rows coded against its centroid,
/// scanned 32 at a time through 4-bit lookup tables, rows whose estimate could beat the
/// k-th exact distance so far scored exactly) or "none" (every probed row scored
/// exactly), on euclidean, inner product, cosine or angular; None leaves the default;
/// recall in (0, 1] the recall@k target of every search that names no ef_search, nprobe
/// or recall of its own (as `search(..., recall=...)`; runtime: a reopen passing it
/// replaces a stored ef_search or nprobe, one passing those replaces it; refused with
/// either in the same config); encryption an
/// `EncryptionConfig` (AES-256-GCM at rest; its master key is given at every open and
/// never stored; vectors then "memory"). InvalidArgumentError for a value out of its
/// domain. Reopening a database checks or applies only the arguments passed.
#[pyclass(
    name = "DatabaseConfig",
    module = "nusterdb._core",
    frozen,
    eq,
    skip_from_py_object
)]
#[derive(Clone, PartialEq)]
pub struct PyDatabaseConfig {
    pub inner: DatabaseConfig,
}

impl PyDatabaseConfig {
    fn flat(dim: usize) -> PyResult<Self> {
        Self::simple(dim, false)
    }
}

/// A config of `dim` with defaults (HNSW if `use_hnsw`) stating only `dim` and the
/// index type: a reopen checks those and leaves everything else as stored.
pub fn simple_config(dim: usize, use_hnsw: bool) -> PyResult<DatabaseConfig> {
    let stated = Fields::of([Field::Dim, Field::IndexType]);
    Ok(DatabaseConfig::simple(dim, use_hnsw).py()?.stating(stated))
}

/// The master key of an `EncryptionConfig` (`nusterdb/encryption.py`), which asks its
/// key provider for it.
pub fn master_key(encryption: &Bound<'_, PyAny>) -> PyResult<MasterKey> {
    if !encryption.hasattr("_master_key")? {
        return Err(PyTypeError::new_err(format!(
            "encryption must be a nusterdb.EncryptionConfig, not {}",
            encryption.get_type().name()?
        )));
    }
    let bytes: Vec<u8> = encryption.call_method0("_master_key")?.extract()?;
    MasterKey::new(&bytes).py()
}

/// `config` with the master key of `encryption` (a config stating nothing else when
/// `config` is `None`: a reopen keeps the stored one).
pub fn with_encryption(
    config: Option<DatabaseConfig>,
    encryption: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<DatabaseConfig>> {
    let Some(e) = encryption else {
        return Ok(config);
    };
    let mut c = match config {
        Some(c) => c,
        None => DatabaseConfig::new(1).py()?.stating(Fields::NONE),
    };
    c.storage.encryption = Some(master_key(e)?);
    c.validate().py()?;
    Ok(Some(c))
}

/// A config stating only `vectors` (a reopen applies it and keeps everything else).
pub fn vectors_config(vectors: &str) -> PyResult<DatabaseConfig> {
    let mut c = DatabaseConfig::new(1).py()?;
    c.vectors = VectorStorage::from_name(vectors).py()?;
    Ok(c.stating(Fields::NONE.with(Field::Vectors)))
}

/// A config of `dim` with defaults stating only `dim`: creating needs it, and a
/// reopen then checks it and leaves everything else as stored.
pub fn dim_config(dim: usize) -> PyResult<DatabaseConfig> {
    Ok(DatabaseConfig::new(dim)
        .py()?
        .stating(Fields::NONE.with(Field::Dim)))
}

#[pymethods]
impl PyDatabaseConfig {
    // None stands for "not passed", as in HNSWConfig; the fields of a given
    // hnsw_config / storage_config are stated as far as they were passed to those.
    #[new]
    #[pyo3(signature = (dim, index_type = None, distance_metric = None, hnsw_config = None,
                        storage_config = None, auto_snapshot = None,
                        snapshot_interval_secs = None, id_type = None, vectors = None,
                        quantization = None, encryption = None, nlist = None, nprobe = None,
                        recall = None),
           text_signature = "(dim, index_type='flat', distance_metric=None, hnsw_config=None, \
                             storage_config=None, auto_snapshot=False, \
                             snapshot_interval_secs=3600, id_type='int', vectors='mmap', \
                             quantization=None, encryption=None, nlist=None, nprobe=None, \
                             recall=None)")]
    // One parameter per Python keyword argument.
    #[allow(clippy::too_many_arguments)]
    fn new(
        dim: usize,
        index_type: Option<&Bound<'_, PyAny>>,
        distance_metric: Option<&Bound<'_, PyAny>>,
        hnsw_config: Option<PyRef<'_, PyHnswConfig>>,
        storage_config: Option<PyRef<'_, PyStorageConfig>>,
        auto_snapshot: Option<bool>,
        snapshot_interval_secs: Option<u64>,
        id_type: Option<&Bound<'_, PyAny>>,
        vectors: Option<&Bound<'_, PyAny>>,
        quantization: Option<&Bound<'_, PyAny>>,
        encryption: Option<&Bound<'_, PyAny>>,
        nlist: Option<usize>,
        nprobe: Option<usize>,
        recall: Option<f64>,
    ) -> PyResult<Self> {
        let mut stated = Fields::NONE.with(Field::Dim);
        for (field, value) in [(Field::Nlist, nlist), (Field::Nprobe, nprobe)] {
            if value.is_some() {
                stated = stated.with(field);
            }
        }
        if recall.is_some() {
            stated = stated.with(Field::Recall);
        }
        let quantization = match quantization {
            Some(q) => Some(Quantization::from_name(&require_str(q, "quantization")?).py()?),
            None => None,
        };
        if quantization.is_some() {
            stated = stated.with(Field::Quantization);
        }
        let vectors = match vectors {
            Some(v) => Some(VectorStorage::from_name(&require_str(v, "vectors mode")?).py()?),
            None => None,
        };
        let id_type = match id_type {
            Some(t) => Some(IdType::parse(&require_str(t, "id type")?).py()?),
            None => None,
        };
        let st = &mut stated;
        let index_type = match index_type {
            Some(t) => Some(IndexType::from_name(&require_str(t, "index type")?).py()?),
            None => None,
        };
        let distance_metric = match distance_metric {
            Some(m) => Some(to_metric(m)?),
            None => None,
        };
        let (hnsw, hnsw_stated) = match hnsw_config {
            Some(h) => (h.inner.clone(), h.stated),
            None => (HnswConfig::default(), Fields::NONE),
        };
        let (mut storage, storage_stated) = match storage_config {
            Some(s) => (s.inner.clone(), s.stated),
            None => (StorageConfig::default(), Fields::NONE),
        };
        storage.encryption = encryption.map(master_key).transpose()?;
        let encrypted = storage.encryption.is_some();
        let inner = DatabaseConfig {
            dim,
            index_type: arg(st, Field::IndexType, index_type, IndexType::Flat),
            distance_metric: arg(
                st,
                Field::DistanceMetric,
                distance_metric,
                DistanceMetric::Euclidean,
            ),
            hnsw,
            storage,
            auto_snapshot: arg(st, Field::AutoSnapshot, auto_snapshot, false),
            snapshot_interval_secs: arg(
                st,
                Field::SnapshotIntervalSecs,
                snapshot_interval_secs,
                3600,
            ),
            id_type: arg(st, Field::IdType, id_type, IdType::Int),
            vectors: arg(
                st,
                Field::Vectors,
                vectors,
                // An encrypted database keeps its rows in memory.
                if encrypted {
                    VectorStorage::Memory
                } else {
                    VectorStorage::default()
                },
            ),
            quantization,
            ivf: IvfConfig { nlist, nprobe },
            recall: recall.map(|r| r as f32),
            stated: stated.union(hnsw_stated).union(storage_stated),
        };
        inner.validate().py()?;
        Ok(Self { inner })
    }

    /// Flat (exact) or HNSW with defaults.
    #[staticmethod]
    #[pyo3(signature = (dim, use_hnsw = false))]
    fn simple(dim: usize, use_hnsw: bool) -> PyResult<Self> {
        Ok(Self {
            inner: simple_config(dim, use_hnsw)?,
        })
    }

    /// Alias of the flat index (the one exact search).
    #[staticmethod]
    fn optimized_flat(dim: usize) -> PyResult<Self> {
        Self::flat(dim)
    }

    /// Alias of the flat index (the one exact search).
    #[staticmethod]
    fn ultra_fast_flat(dim: usize) -> PyResult<Self> {
        Self::flat(dim)
    }

    /// Alias of the flat index (the one exact search).
    #[staticmethod]
    fn super_optimized_flat(dim: usize) -> PyResult<Self> {
        Self::flat(dim)
    }

    /// The vector dimension (every vector stored and every query has it).
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim
    }

    /// The index: "flat" (exact search) or "hnsw" (approximate).
    #[getter]
    fn index_type(&self) -> &'static str {
        self.inner.index_type.name()
    }

    /// The metric distances are measured with, a DistanceMetric.
    #[getter]
    fn distance_metric(&self) -> PyDistanceMetric {
        self.inner.distance_metric.into()
    }

    /// The metric distances are measured with, a DistanceMetric. Same as
    /// `config.distance_metric`, under the name `NusterDB.metric` and
    /// `DatabaseStats.metric` use.
    #[getter]
    fn metric(&self) -> PyDistanceMetric {
        self.inner.distance_metric.into()
    }

    /// The HNSW parameters, an HNSWConfig (present for a flat index too).
    #[getter]
    fn hnsw_config(&self) -> PyHnswConfig {
        PyHnswConfig {
            inner: self.inner.hnsw.clone(),
            stated: Fields::of(Field::HNSW_ORDER),
        }
    }

    /// The storage-engine (RocksDB) knobs, a StorageConfiguration.
    #[getter]
    fn storage_config(&self) -> PyStorageConfig {
        PyStorageConfig {
            inner: self.inner.storage.clone(),
            stated: Fields::of(Field::STORAGE),
        }
    }

    /// Whether snapshots are taken automatically every `snapshot_interval_secs`.
    #[getter]
    fn auto_snapshot(&self) -> bool {
        self.inner.auto_snapshot
    }

    /// Seconds between automatic snapshots (when `auto_snapshot` is on).
    #[getter]
    fn snapshot_interval_secs(&self) -> u64 {
        self.inner.snapshot_interval_secs
    }

    /// The kind of ids: "int" or "str" (fixed when the database is created).
    #[getter]
    fn id_type(&self) -> &'static str {
        self.inner.id_type.name()
    }

    /// Where the index keeps its sealed rows: "memory", "mmap" or "disk".
    #[getter]
    fn vectors(&self) -> &'static str {
        self.inner.vectors.name()
    }

    /// Whether the database is encrypted at rest (an `encryption` was given).
    #[getter]
    fn encrypted(&self) -> bool {
        self.inner.storage.encryption.is_some()
    }

    /// The codes the index searches on: "sq8", "sq4", "rabitq", "binary" or "none" (the
    /// default resolved: "none" for a flat index and metrics without codes).
    #[getter]
    fn quantization(&self) -> &'static str {
        self.inner.quantization().name()
    }

    /// An IVF index's list count (None: the square root of the row count at each
    /// training).
    #[getter]
    fn nlist(&self) -> Option<usize> {
        self.inner.ivf.nlist
    }

    /// The lists an IVF search probes unless the call says (None: a sixteenth of the
    /// lists, at least 8).
    #[getter]
    fn nprobe(&self) -> Option<usize> {
        self.inner.ivf.nprobe
    }

    /// The recall target of a search naming no ef_search, nprobe or recall of its own
    /// (None: the index's ef_search / nprobe rule).
    #[getter]
    fn recall(&self) -> Option<f64> {
        self.inner.recall.map(f64::from)
    }

    fn __repr__(&self) -> String {
        let c = &self.inner;
        let ivf = if c.index_type == IndexType::Ivf {
            let show = |v: Option<usize>| v.map_or("None".to_string(), |n| n.to_string());
            format!(
                ", nlist={}, nprobe={}",
                show(c.ivf.nlist),
                show(c.ivf.nprobe)
            )
        } else {
            String::new()
        };
        let recall = c
            .recall
            .map_or_else(String::new, |r| format!(", recall={r}"));
        format!(
            "DatabaseConfig(dim={}, index_type={:?}, distance_metric={:?}, auto_snapshot={}, \
             snapshot_interval_secs={}, id_type={:?}, vectors={:?}, quantization={:?}{ivf}{recall})",
            c.dim,
            c.index_type.name(),
            c.distance_metric.name(),
            if c.auto_snapshot { "True" } else { "False" },
            c.snapshot_interval_secs,
            c.id_type.name(),
            c.vectors.name(),
            c.quantization().name()
        )
    }
}
