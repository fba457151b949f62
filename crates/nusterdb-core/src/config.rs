//! Configuration values: HNSW parameters, storage-engine knobs and the database
//! configuration that ties them together. Each constructor validates, so a config
//! that exists is a config that can be used; nothing is silently clamped.

use crate::error::{Error, Result};
use crate::metric::DistanceMetric;

/// Default HNSW out-degree M (2·M on layer 0).
pub const DEFAULT_HNSW_M: usize = 16;
/// Default HNSW construction beam width.
pub const DEFAULT_HNSW_EF_CONSTRUCTION: usize = 200;
/// Default RocksDB block cache in MiB.
pub const DEFAULT_CACHE_SIZE_MB: u64 = 256;
/// Largest supported vector dimension.
pub const MAX_DIMENSION: usize = 65_536;

/// HNSW graph parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HnswConfig {
    /// M: neighbours kept per node on layers ≥ 1 (2·M on layer 0).
    pub max_nb_connection: usize,
    /// Capacity hint: storage is reserved for this many nodes; the index grows past it.
    pub max_nb_elements: usize,
    /// Highest layer a node may be assigned.
    pub max_layer: usize,
    /// Beam width while inserting.
    pub ef_construction: usize,
    /// Default beam width while searching; `None` = max(k, ef_construction / 2).
    pub ef_search: Option<usize>,
    /// The paper's neighbour-selection heuristic (true) or simply the M nearest (false).
    pub use_heuristic: bool,
}

impl Default for HnswConfig {
    fn default() -> Self {
        Self {
            max_nb_connection: DEFAULT_HNSW_M,
            max_nb_elements: 1024,
            max_layer: 16,
            ef_construction: DEFAULT_HNSW_EF_CONSTRUCTION,
            ef_search: None,
            use_heuristic: true,
        }
    }
}

impl HnswConfig {
    /// Checks every field is in range.
    ///
    /// # Errors
    /// The first field out of range, with its value and the allowed range.
    pub fn validate(&self) -> Result<()> {
        in_range("max_nb_connection", self.max_nb_connection, 2, 512)?;
        in_range("max_layer", self.max_layer, 1, 64)?;
        in_range("ef_construction", self.ef_construction, 1, 1 << 20)?;
        if let Some(ef) = self.ef_search {
            in_range("ef_search", ef, 1, 1 << 20)?;
        }
        Ok(())
    }
}

fn in_range(field: &str, value: usize, min: usize, max: usize) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{field} must be between {min} and {max}, got {value}"
        )))
    }
}

/// Block compression of the storage engine's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Parses `none | snappy | lz4 | zstd` (case-insensitive).
    ///
    /// # Errors
    /// Any other name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Compression::None),
            "snappy" => Ok(Compression::Snappy),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            _ => Err(Error::invalid(format!(
                "unknown compression {name:?}; expected one of none, snappy, lz4, zstd"
            ))),
        }
    }
}

/// Storage-engine (RocksDB) knobs. Each one is applied to the engine's options; see
/// `storage::options`.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageConfig {
    /// LRU block cache in MiB; 0 disables the block cache.
    pub cache_size_mb: u64,
    /// Memtable size in MiB.
    pub write_buffer_size_mb: u64,
    /// Memtables kept before writes stall (RocksDB needs at least 2).
    pub max_write_buffer_number: u32,
    pub compression: Compression,
    /// Collect RocksDB statistics (tickers such as `rocksdb.wal.synced`).
    pub enable_statistics: bool,
    pub enable_bloom_filter: bool,
    pub bloom_filter_bits_per_key: u32,
    /// Flush + compaction threads.
    pub max_background_jobs: u32,
    /// fsync the WAL on every write batch (survives power loss).
    pub sync_writes: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            cache_size_mb: DEFAULT_CACHE_SIZE_MB,
            write_buffer_size_mb: 64,
            max_write_buffer_number: 3,
            compression: Compression::Lz4,
            enable_statistics: true,
            enable_bloom_filter: true,
            bloom_filter_bits_per_key: 10,
            max_background_jobs: 4,
            sync_writes: false,
        }
    }
}

impl StorageConfig {
    /// Checks every knob is in a range the engine accepts without adjusting it.
    ///
    /// # Errors
    /// The first knob out of range.
    pub fn validate(&self) -> Result<()> {
        in_range("cache_size_mb", self.cache_size_mb as usize, 0, 1 << 20)?;
        in_range(
            "write_buffer_size_mb",
            self.write_buffer_size_mb as usize,
            1,
            1 << 16,
        )?;
        in_range(
            "max_write_buffer_number",
            self.max_write_buffer_number as usize,
            2,
            64,
        )?;
        in_range(
            "bloom_filter_bits_per_key",
            self.bloom_filter_bits_per_key as usize,
            1,
            64,
        )?;
        in_range(
            "max_background_jobs",
            self.max_background_jobs as usize,
            1,
            256,
        )?;
        Ok(())
    }
}

/// Which index answers searches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexType {
    /// Exact search over every stored vector.
    Flat,
    /// Approximate search on an HNSW graph.
    Hnsw,
}

impl IndexType {
    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            IndexType::Flat => "flat",
            IndexType::Hnsw => "hnsw",
        }
    }

    /// Parses `flat` or `hnsw`. The original API's flat variants (`optimized_flat`,
    /// `ultra_fast_flat`, `super_optimized_flat`) are aliases of `flat`: there is one
    /// exact search, the fastest we have.
    ///
    /// # Errors
    /// Any other name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "flat" | "optimized_flat" | "ultra_fast_flat" | "super_optimized_flat" => {
                Ok(IndexType::Flat)
            }
            "hnsw" => Ok(IndexType::Hnsw),
            _ => Err(Error::invalid(format!(
                "unknown index type {name:?}; expected \"flat\" or \"hnsw\" (aliases of flat: \
                 optimized_flat, ultra_fast_flat, super_optimized_flat)"
            ))),
        }
    }
}

/// Everything a database is created with.
#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseConfig {
    pub dim: usize,
    pub index_type: IndexType,
    pub distance_metric: DistanceMetric,
    pub hnsw: HnswConfig,
    pub storage: StorageConfig,
    pub auto_snapshot: bool,
    pub snapshot_interval_secs: u64,
}

impl DatabaseConfig {
    /// A flat, Euclidean configuration of dimension `dim` with default storage.
    ///
    /// # Errors
    /// `dim` outside 1..=[`MAX_DIMENSION`].
    pub fn new(dim: usize) -> Result<Self> {
        let c = Self {
            dim,
            index_type: IndexType::Flat,
            distance_metric: DistanceMetric::Euclidean,
            hnsw: HnswConfig::default(),
            storage: StorageConfig::default(),
            auto_snapshot: false,
            snapshot_interval_secs: 3600,
        };
        c.validate()?;
        Ok(c)
    }

    /// Flat or HNSW with defaults.
    ///
    /// # Errors
    /// As [`DatabaseConfig::new`].
    pub fn simple(dim: usize, use_hnsw: bool) -> Result<Self> {
        let mut c = Self::new(dim)?;
        if use_hnsw {
            c.index_type = IndexType::Hnsw;
        }
        Ok(c)
    }

    /// Checks every field.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<()> {
        in_range("dim", self.dim, 1, MAX_DIMENSION)?;
        if self.auto_snapshot {
            in_range(
                "snapshot_interval_secs",
                self.snapshot_interval_secs as usize,
                1,
                usize::MAX,
            )?;
        }
        self.hnsw.validate()?;
        self.storage.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        assert!(DatabaseConfig::new(128).is_ok());
        assert!(DatabaseConfig::new(0).is_err());
        assert!(DatabaseConfig::new(MAX_DIMENSION + 1).is_err());
    }

    #[test]
    fn out_of_range_fields_are_named() {
        let h = HnswConfig {
            max_nb_connection: 1,
            ..HnswConfig::default()
        };
        let msg = h
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("max_nb_connection"), "{msg}");
        let s = StorageConfig {
            max_write_buffer_number: 1,
            ..StorageConfig::default()
        };
        assert!(s.validate().is_err());
    }

    #[test]
    fn flat_aliases_are_flat() {
        for n in [
            "flat",
            "optimized_flat",
            "ULTRA_FAST_FLAT",
            "super_optimized_flat",
        ] {
            assert_eq!(IndexType::from_name(n).ok(), Some(IndexType::Flat));
        }
        assert!(IndexType::from_name("ivf").is_err());
        assert!(Compression::from_name("gzip").is_err());
    }
}
