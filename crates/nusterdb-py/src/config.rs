//! `HNSWConfig`, `StorageConfiguration`, `DatabaseConfig`: bind the core configs.
//!
//! The objects are immutable (like frozen dataclasses): a `DatabaseConfig` copies the
//! configs it is given, so mutable ones would invite edits that silently reach nothing.

use nusterdb_core::config::{Compression, DatabaseConfig, HnswConfig, IndexType, StorageConfig};
use nusterdb_core::DistanceMetric;
use pyo3::prelude::*;

use crate::errors::IntoPyResult;
use crate::metric::{to_metric, PyDistanceMetric};

/// HNSW graph parameters (M = max_nb_connection; 2·M on layer 0).
#[pyclass(
    name = "HNSWConfig",
    module = "nusterdb._core",
    frozen,
    eq,
    skip_from_py_object
)]
#[derive(Clone, PartialEq)]
pub struct PyHnswConfig {
    pub inner: HnswConfig,
}

#[pymethods]
impl PyHnswConfig {
    #[new]
    #[pyo3(signature = (max_nb_connection = 16, max_nb_elements = 1024, max_layer = 16,
                        ef_construction = 200, ef_search = None, use_heuristic = true))]
    fn new(
        max_nb_connection: usize,
        max_nb_elements: usize,
        max_layer: usize,
        ef_construction: usize,
        ef_search: Option<usize>,
        use_heuristic: bool,
    ) -> PyResult<Self> {
        let inner = HnswConfig {
            max_nb_connection,
            max_nb_elements,
            max_layer,
            ef_construction,
            ef_search,
            use_heuristic,
        };
        inner.validate().py()?;
        Ok(Self { inner })
    }

    #[staticmethod]
    fn default() -> Self {
        Self {
            inner: HnswConfig::default(),
        }
    }

    #[getter]
    fn max_nb_connection(&self) -> usize {
        self.inner.max_nb_connection
    }

    #[getter]
    fn max_nb_elements(&self) -> usize {
        self.inner.max_nb_elements
    }

    #[getter]
    fn max_layer(&self) -> usize {
        self.inner.max_layer
    }

    #[getter]
    fn ef_construction(&self) -> usize {
        self.inner.ef_construction
    }

    #[getter]
    fn ef_search(&self) -> Option<usize> {
        self.inner.ef_search
    }

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

/// Storage-engine (RocksDB) knobs; each reaches the engine's options.
#[pyclass(
    name = "StorageConfiguration",
    module = "nusterdb._core",
    frozen,
    eq,
    skip_from_py_object
)]
#[derive(Clone, PartialEq)]
pub struct PyStorageConfig {
    pub inner: StorageConfig,
}

#[pymethods]
impl PyStorageConfig {
    #[new]
    #[pyo3(signature = (cache_size_mb = 256, write_buffer_size_mb = 64, max_write_buffer_number = 3,
                        compression = "lz4", enable_statistics = true, enable_bloom_filter = true,
                        bloom_filter_bits_per_key = 10, max_background_jobs = 4, sync_writes = false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        cache_size_mb: u64,
        write_buffer_size_mb: u64,
        max_write_buffer_number: u32,
        compression: &str,
        enable_statistics: bool,
        enable_bloom_filter: bool,
        bloom_filter_bits_per_key: u32,
        max_background_jobs: u32,
        sync_writes: bool,
    ) -> PyResult<Self> {
        let inner = StorageConfig {
            cache_size_mb,
            write_buffer_size_mb,
            max_write_buffer_number,
            compression: Compression::from_name(compression).py()?,
            enable_statistics,
            enable_bloom_filter,
            bloom_filter_bits_per_key,
            max_background_jobs,
            sync_writes,
        };
        inner.validate().py()?;
        Ok(Self { inner })
    }

    #[staticmethod]
    fn default() -> Self {
        Self {
            inner: StorageConfig::default(),
        }
    }

    #[getter]
    fn cache_size_mb(&self) -> u64 {
        self.inner.cache_size_mb
    }

    #[getter]
    fn write_buffer_size_mb(&self) -> u64 {
        self.inner.write_buffer_size_mb
    }

    #[getter]
    fn max_write_buffer_number(&self) -> u32 {
        self.inner.max_write_buffer_number
    }

    #[getter]
    fn compression(&self) -> &'static str {
        self.inner.compression.name()
    }

    #[getter]
    fn enable_statistics(&self) -> bool {
        self.inner.enable_statistics
    }

    #[getter]
    fn enable_bloom_filter(&self) -> bool {
        self.inner.enable_bloom_filter
    }

    #[getter]
    fn bloom_filter_bits_per_key(&self) -> u32 {
        self.inner.bloom_filter_bits_per_key
    }

    #[getter]
    fn max_background_jobs(&self) -> u32 {
        self.inner.max_background_jobs
    }

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

/// Everything a database is created with.
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
        Ok(Self {
            inner: DatabaseConfig::new(dim).py()?,
        })
    }
}

#[pymethods]
impl PyDatabaseConfig {
    #[new]
    #[pyo3(signature = (dim, index_type = "flat", distance_metric = None, hnsw_config = None,
                        storage_config = None, auto_snapshot = false, snapshot_interval_secs = 3600))]
    fn new(
        dim: usize,
        index_type: &str,
        distance_metric: Option<&Bound<'_, PyAny>>,
        hnsw_config: Option<PyRef<'_, PyHnswConfig>>,
        storage_config: Option<PyRef<'_, PyStorageConfig>>,
        auto_snapshot: bool,
        snapshot_interval_secs: u64,
    ) -> PyResult<Self> {
        let inner = DatabaseConfig {
            dim,
            index_type: IndexType::from_name(index_type).py()?,
            distance_metric: match distance_metric {
                None => DistanceMetric::Euclidean,
                Some(m) => to_metric(m)?,
            },
            hnsw: hnsw_config.map(|h| h.inner.clone()).unwrap_or_default(),
            storage: storage_config.map(|s| s.inner.clone()).unwrap_or_default(),
            auto_snapshot,
            snapshot_interval_secs,
        };
        inner.validate().py()?;
        Ok(Self { inner })
    }

    /// Flat (exact) or HNSW with defaults.
    #[staticmethod]
    #[pyo3(signature = (dim, use_hnsw = false))]
    fn simple(dim: usize, use_hnsw: bool) -> PyResult<Self> {
        Ok(Self {
            inner: DatabaseConfig::simple(dim, use_hnsw).py()?,
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

    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim
    }

    #[getter]
    fn index_type(&self) -> &'static str {
        self.inner.index_type.name()
    }

    #[getter]
    fn distance_metric(&self) -> PyDistanceMetric {
        self.inner.distance_metric.into()
    }

    #[getter]
    fn hnsw_config(&self) -> PyHnswConfig {
        PyHnswConfig {
            inner: self.inner.hnsw.clone(),
        }
    }

    #[getter]
    fn storage_config(&self) -> PyStorageConfig {
        PyStorageConfig {
            inner: self.inner.storage.clone(),
        }
    }

    #[getter]
    fn auto_snapshot(&self) -> bool {
        self.inner.auto_snapshot
    }

    #[getter]
    fn snapshot_interval_secs(&self) -> u64 {
        self.inner.snapshot_interval_secs
    }

    fn __repr__(&self) -> String {
        let c = &self.inner;
        format!(
            "DatabaseConfig(dim={}, index_type={:?}, distance_metric={:?}, auto_snapshot={}, \
             snapshot_interval_secs={})",
            c.dim,
            c.index_type.name(),
            c.distance_metric.name(),
            if c.auto_snapshot { "True" } else { "False" },
            c.snapshot_interval_secs
        )
    }
}
