//! Configuration values: HNSW parameters, storage-engine knobs and the database
//! configuration that ties them together. Each constructor validates, so a config
//! that exists is a config that can be used; nothing is silently clamped.

use crate::error::{Error, Result};
use crate::ids::IdType;
use crate::metric::DistanceMetric;
pub use crate::storage::crypto::MasterKey;

/// Default HNSW out-degree M (2·M on layer 0).
pub const DEFAULT_HNSW_M: usize = 16;
/// Default HNSW construction beam width.
pub const DEFAULT_HNSW_EF_CONSTRUCTION: usize = 200;
/// Default RocksDB block cache in MiB.
pub const DEFAULT_CACHE_SIZE_MB: u64 = 256;
/// Largest supported vector dimension.
pub const MAX_DIMENSION: usize = 65_536;
/// Largest M (`max_nb_connection`).
pub const MAX_HNSW_M: usize = 512;
/// Largest `max_layer`.
pub const MAX_HNSW_LAYER: usize = 64;
/// Largest beam width, while inserting (`ef_construction`) or searching (`ef_search`,
/// in the config or per call).
pub const MAX_EF: usize = 1 << 20;

/// HNSW graph parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HnswConfig {
    /// M: neighbours kept per node on layers ≥ 1 (2·M on layer 0).
    pub max_nb_connection: usize,
    /// Capacity hint: storage is reserved for this many nodes (0: none). It never caps
    /// anything: the index grows past it.
    pub max_nb_elements: usize,
    /// Highest layer a node may be assigned.
    pub max_layer: usize,
    /// Beam width while inserting; at least `max_nb_connection`.
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
        self.validate_stored()?;
        if self.ef_construction < self.max_nb_connection {
            return Err(Error::invalid(format!(
                "ef_construction must be at least max_nb_connection ({}), got {}",
                self.max_nb_connection, self.ef_construction
            )));
        }
        Ok(())
    }

    /// The ranges a stored config was written under (format v1): everything
    /// [`HnswConfig::validate`] checks but `ef_construction ≥ M`, which came later —
    /// a stored config breaking it is [normalised](HnswConfig::normalised), not refused.
    fn validate_stored(&self) -> Result<()> {
        in_range("max_nb_connection", self.max_nb_connection, 2, MAX_HNSW_M)?;
        in_range("max_layer", self.max_layer, 1, MAX_HNSW_LAYER)?;
        in_range("ef_construction", self.ef_construction, 1, MAX_EF)?;
        if let Some(ef) = self.ef_search {
            check_ef_search(ef)?;
        }
        Ok(())
    }

    /// The config the graph is really built with: `ef_construction` raised to M (what
    /// the index has always done with a smaller one), so what is reported is what is
    /// used. A valid config is returned unchanged.
    pub fn normalised(&self) -> Self {
        Self {
            ef_construction: self.ef_construction.max(self.max_nb_connection),
            ..self.clone()
        }
    }
}

/// Checks a search beam width (a config's `ef_search` or a per-call one).
///
/// # Errors
/// `ef` outside 1..=[`MAX_EF`].
pub fn check_ef_search(ef: usize) -> Result<()> {
    in_range("ef_search", ef, 1, MAX_EF)
}

/// Checks a recall target (a config's default or a search's).
///
/// # Errors
/// A target outside (0, 1] (NaN and infinities included).
pub fn check_recall(r: f32) -> Result<()> {
    if r > 0.0 && r <= 1.0 {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "recall must be above 0 and at most 1, got {r}"
        )))
    }
}

/// Checks a search's `nprobe`.
///
/// # Errors
/// `nprobe` outside 1..=[`crate::index::ivf::MAX_NLIST`].
pub fn check_nprobe(nprobe: usize) -> Result<()> {
    in_range("nprobe", nprobe, 1, crate::index::ivf::MAX_NLIST)
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
    /// The master key of an encrypted database (`storage::crypto`): given at every
    /// open, never stored. `Some` at creation makes the database encrypted; an
    /// encrypted database opens only with it.
    pub encryption: Option<MasterKey>,
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
            encryption: None,
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

/// Where an index keeps the rows a seal holds, chosen at each open (not stored:
/// processes sharing a database may choose differently). Rows added since the seal
/// are in memory in every mode. A flat index maps its sealed rows under `mmap` (copied
/// under `memory`, and from a seal written below half its slots live) and refuses
/// `disk` — its scan reads every row —, as do metrics the graph walk reads full rows
/// for (manhattan, chebyshev, hamming, jaccard). An IVF index copies them under
/// `memory`, and under `mmap` when it has no codes (its lists hold their rows side by
/// side: the scan reads every row of a probed list); with 1-bit codes `mmap` and
/// `disk` leave them in the seal's file and read the rows the codes let through —
/// through the mapping, or with positioned reads (`index::ivf`'s `rows.rs`; each seal
/// moves the rows written before it into its file). `disk` needs the codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VectorStorage {
    /// Read into memory at open (a copy of the files, not reclaimed under memory
    /// pressure; the open reads every row).
    Memory,
    /// Mapped from the seal's files (the page cache holds them, shared and reclaimable;
    /// a process's RSS counts the pages its searches touch). The default.
    #[default]
    Mmap,
    /// Mapped as with `Mmap`, but searches read the rows they re-rank or scan from the
    /// files (`pread`) instead of through the mapping, so only the codes and the
    /// graph become resident: the page cache may hold the rows, the process does not.
    /// Each re-ranked row costs a system call. Writes still read the rows they link
    /// against through the mapping.
    Disk,
}

impl VectorStorage {
    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            VectorStorage::Memory => "memory",
            VectorStorage::Mmap => "mmap",
            VectorStorage::Disk => "disk",
        }
    }

    /// Parses `memory`, `mmap` or `disk`.
    ///
    /// # Errors
    /// Any other name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "memory" => Ok(VectorStorage::Memory),
            "mmap" => Ok(VectorStorage::Mmap),
            "disk" => Ok(VectorStorage::Disk),
            _ => Err(Error::invalid(format!(
                "unknown vectors mode {name:?}; expected \"memory\", \"mmap\" or \"disk\""
            ))),
        }
    }
}

/// How an HNSW index codes its rows for the graph walk (stored with the database,
/// fixed at creation). The walk scores the codes and re-ranks its candidates on the
/// full rows, so returned distances are exact whichever is chosen; the codes only
/// decide which candidates are found. For euclidean, inner product, cosine and angular
/// (the metrics whose score is linear in the row); the others walk on the full rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantization {
    /// No codes: the walk scores the full rows (the plain HNSW walk).
    Off,
    /// 8 bits per component: `dim` bytes per row (a quarter of the float32 row). The
    /// codes of databases created before the choice existed.
    Sq8,
    /// 4 bits per component, two to a byte: `32·⌈dim/64⌉` bytes per row (an eighth of
    /// the float32 row when `dim` is a multiple of 64). Half of `sq8`'s memory and
    /// traffic; rougher scores, which find fewer true neighbours at the same
    /// `ef_search` (not at the same speed: BENCHMARKS.md). The default.
    Sq4,
    /// 1 bit per rotated component (RaBitQ): the row, zero-padded to `P` components —
    /// the dimension rounded up to a power of two, at least 64 — and randomly rotated,
    /// keeps the sign of each: `P / 8` bytes per row, 64 at 384-d, 128 at 768-d, 256 at
    /// 1,536-d, 512 at 3,072-d (24–32× smaller than the float32 row). Scores are
    /// unbiased estimates whose error shrinks as `1/√P` and grows with a row's distance
    /// from the point it is coded against: the nearest of up to 1,024 k-means centroids,
    /// so clustered rows keep their recall. Slower than `sq4` at equal recall on
    /// clustered rows (BENCHMARKS.md).
    RaBitQ,
    /// The binary code: RaBitQ's, rotated into the dimension rounded up to a multiple of
    /// 64 only, so one bit per component: 48 bytes at 384-d, 96 at 768-d, 192 at
    /// 1,536-d, 384 at 3,072-d (32× smaller than the float32 row when `dim` is a
    /// multiple of 64; the same as `rabitq` where `dim` is a power of two). The least
    /// memory, for wide embeddings (768–3,072 d). Fewer bits than `rabitq` widen the
    /// estimates' error bound (as `1/√P`); on the IVF lists of the real 384-d set that
    /// cost no speed at equal recall (BENCHMARKS.md "Binary codes").
    Binary,
}

impl Quantization {
    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Quantization::Off => "none",
            Quantization::Sq8 => "sq8",
            Quantization::Sq4 => "sq4",
            Quantization::RaBitQ => "rabitq",
            Quantization::Binary => "binary",
        }
    }

    /// Parses `none`, `sq8`, `sq4`, `rabitq` or `binary`.
    ///
    /// # Errors
    /// Any other name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Quantization::Off),
            "sq8" => Ok(Quantization::Sq8),
            "sq4" => Ok(Quantization::Sq4),
            "rabitq" => Ok(Quantization::RaBitQ),
            "binary" => Ok(Quantization::Binary),
            _ => Err(Error::invalid(format!(
                "unknown quantization {name:?}; expected \"none\", \"sq8\", \"sq4\", \"rabitq\" \
                 or \"binary\""
            ))),
        }
    }

    /// Bits per component (0: no codes).
    pub fn bits(self) -> u32 {
        match self {
            Quantization::Off => 0,
            Quantization::Sq8 => 8,
            Quantization::Sq4 => 4,
            Quantization::RaBitQ | Quantization::Binary => 1,
        }
    }

    /// Whether rows are coded with 1 bit per rotated component (`rabitq`, `binary`).
    pub fn one_bit(self) -> bool {
        matches!(self, Quantization::RaBitQ | Quantization::Binary)
    }

    /// The dimension 1-bit codes of `dim`-component rows rotate into (`P`; 0 for the
    /// other codes): the power of two for `rabitq`, the multiple of 64 for `binary`,
    /// at least 64 (whole 64-bit words of codes).
    pub fn rotated_dim(self, dim: usize) -> usize {
        match self {
            Quantization::RaBitQ => dim.max(64).next_power_of_two(),
            Quantization::Binary => dim.max(64).next_multiple_of(64),
            _ => 0,
        }
    }

    /// The code bytes of one row of `dim` components.
    pub fn code_bytes(self, dim: usize) -> usize {
        match self {
            Quantization::Off => 0,
            Quantization::Sq8 => dim,
            // Blocks of 64 components in 32 bytes (the 4-bit kernel's layout).
            Quantization::Sq4 => dim.div_ceil(64) * 32,
            Quantization::RaBitQ | Quantization::Binary => self.rotated_dim(dim) / 8,
        }
    }
}

/// Which index answers searches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexType {
    /// Exact search over every stored vector.
    Flat,
    /// Approximate search on an HNSW graph.
    Hnsw,
    /// Approximate search over the nearest of k-means lists (`index::ivf`).
    Ivf,
}

impl IndexType {
    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            IndexType::Flat => "flat",
            IndexType::Hnsw => "hnsw",
            IndexType::Ivf => "ivf",
        }
    }

    /// Parses `flat`, `hnsw` or `ivf`. The original API's flat variants (`optimized_flat`,
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
            "ivf" => Ok(IndexType::Ivf),
            _ => Err(Error::invalid(format!(
                "unknown index type {name:?}; expected \"flat\", \"hnsw\" or \"ivf\" (aliases of flat: \
                 optimized_flat, ultra_fast_flat, super_optimized_flat)"
            ))),
        }
    }
}

/// A field of a [`DatabaseConfig`], as a reopen sees it.
///
/// Structural fields fix what is on disk (the vectors' dimension and metric, the
/// graph's shape): a reopen that states one must agree with the stored value. Runtime
/// fields are knobs: a reopen that states one runs with it (see
/// [`DatabaseConfig::reopened_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    Dim,
    IndexType,
    DistanceMetric,
    MaxNbConnection,
    MaxLayer,
    MaxNbElements,
    EfConstruction,
    EfSearch,
    UseHeuristic,
    CacheSizeMb,
    WriteBufferSizeMb,
    MaxWriteBufferNumber,
    Compression,
    EnableStatistics,
    EnableBloomFilter,
    BloomFilterBitsPerKey,
    MaxBackgroundJobs,
    SyncWrites,
    AutoSnapshot,
    SnapshotIntervalSecs,
    IdType,
    Vectors,
    Quantization,
    Nlist,
    Nprobe,
    Recall,
}

impl Field {
    /// Every field, structural ones first.
    pub const ALL: [Field; 26] = [
        Field::Dim,
        Field::IndexType,
        Field::DistanceMetric,
        Field::IdType,
        Field::Quantization,
        Field::Nlist,
        Field::Nprobe,
        Field::MaxNbConnection,
        Field::MaxLayer,
        Field::MaxNbElements,
        Field::EfConstruction,
        Field::EfSearch,
        Field::UseHeuristic,
        Field::CacheSizeMb,
        Field::WriteBufferSizeMb,
        Field::MaxWriteBufferNumber,
        Field::Compression,
        Field::EnableStatistics,
        Field::EnableBloomFilter,
        Field::BloomFilterBitsPerKey,
        Field::MaxBackgroundJobs,
        Field::SyncWrites,
        Field::AutoSnapshot,
        Field::SnapshotIntervalSecs,
        Field::Vectors,
        Field::Recall,
    ];

    /// The HNSW fields, in the order of [`HnswConfig`]'s fields.
    pub const HNSW_ORDER: [Field; 6] = [
        Field::MaxNbConnection,
        Field::MaxNbElements,
        Field::MaxLayer,
        Field::EfConstruction,
        Field::EfSearch,
        Field::UseHeuristic,
    ];

    /// The storage-engine fields.
    pub const STORAGE: [Field; 9] = [
        Field::CacheSizeMb,
        Field::WriteBufferSizeMb,
        Field::MaxWriteBufferNumber,
        Field::Compression,
        Field::EnableStatistics,
        Field::EnableBloomFilter,
        Field::BloomFilterBitsPerKey,
        Field::MaxBackgroundJobs,
        Field::SyncWrites,
    ];

    /// The name users know it by (the keyword argument in Python).
    pub fn name(self) -> &'static str {
        match self {
            Field::Dim => "dim",
            Field::IndexType => "index_type",
            Field::DistanceMetric => "distance_metric",
            Field::MaxNbConnection => "max_nb_connection",
            Field::MaxLayer => "max_layer",
            Field::MaxNbElements => "max_nb_elements",
            Field::EfConstruction => "ef_construction",
            Field::EfSearch => "ef_search",
            Field::UseHeuristic => "use_heuristic",
            Field::CacheSizeMb => "cache_size_mb",
            Field::WriteBufferSizeMb => "write_buffer_size_mb",
            Field::MaxWriteBufferNumber => "max_write_buffer_number",
            Field::Compression => "compression",
            Field::EnableStatistics => "enable_statistics",
            Field::EnableBloomFilter => "enable_bloom_filter",
            Field::BloomFilterBitsPerKey => "bloom_filter_bits_per_key",
            Field::MaxBackgroundJobs => "max_background_jobs",
            Field::SyncWrites => "sync_writes",
            Field::AutoSnapshot => "auto_snapshot",
            Field::SnapshotIntervalSecs => "snapshot_interval_secs",
            Field::IdType => "id_type",
            Field::Vectors => "vectors",
            Field::Quantization => "quantization",
            Field::Nlist => "nlist",
            Field::Nprobe => "nprobe",
            Field::Recall => "recall",
        }
    }

    /// Whether the field is fixed at creation (must match on reopen).
    pub fn is_structural(self) -> bool {
        matches!(
            self,
            Field::Dim
                | Field::IndexType
                | Field::DistanceMetric
                | Field::IdType
                | Field::Quantization
                | Field::Nlist
                | Field::MaxNbConnection
                | Field::MaxLayer
        )
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of [`Field`]s: those a caller stated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Fields(u32);

impl Fields {
    /// No field.
    pub const NONE: Fields = Fields(0);

    /// Every field.
    pub fn all() -> Self {
        Self::of(Field::ALL)
    }

    /// The given fields.
    pub fn of(fields: impl IntoIterator<Item = Field>) -> Self {
        fields.into_iter().fold(Self::NONE, Self::with)
    }

    /// This set and `f`.
    #[must_use]
    pub fn with(self, f: Field) -> Self {
        Self(self.0 | f.bit())
    }

    /// This set and `other`.
    #[must_use]
    pub fn union(self, other: Fields) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether `f` is in the set.
    pub fn contains(self, f: Field) -> bool {
        self.0 & f.bit() != 0
    }
}

/// Everything a database is created with.
///
/// `stated` says which fields the caller really gave (the others hold defaults). It
/// matters only when an existing database is opened (see
/// [`DatabaseConfig::reopened_with`]) and is not part of equality. A config built in
/// Rust states every field; the Python layer states only the arguments passed.
#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    pub dim: usize,
    pub index_type: IndexType,
    pub distance_metric: DistanceMetric,
    pub hnsw: HnswConfig,
    pub storage: StorageConfig,
    pub auto_snapshot: bool,
    pub snapshot_interval_secs: u64,
    /// The kind of ids (fixed at creation).
    pub id_type: IdType,
    /// Where an HNSW index keeps its sealed rows: chosen at each open, never stored (a
    /// stored config reads back the default).
    pub vectors: VectorStorage,
    /// How an HNSW index codes its rows for the graph walk (fixed at creation); `None`:
    /// the default, see [`DatabaseConfig::quantization`].
    pub quantization: Option<Quantization>,
    /// The IVF index's lists and probes (refused when stated for another index type).
    pub ivf: IvfConfig,
    /// The recall@k target of a search that names no `ef_search`, `nprobe` or `recall`
    /// of its own (`search(..., recall=r)`; `None`: the index's `ef_search` / `nprobe`
    /// rule). Runtime; replaces a stored `ef_search` / `nprobe` and is replaced by one.
    pub recall: Option<f32>,
    pub stated: Fields,
}

/// IVF parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IvfConfig {
    /// Lists the rows are partitioned into (fixed at creation); `None`: `⌊√n⌋` for `n`
    /// live rows at each training (`index::ivf`).
    pub nlist: Option<usize>,
    /// Lists a search probes unless the call says otherwise; `None`: a sixteenth of the
    /// lists, at least 8 (`index::ivf::auto_nprobe`).
    pub nprobe: Option<usize>,
}

impl PartialEq for DatabaseConfig {
    fn eq(&self, other: &Self) -> bool {
        self.dim == other.dim
            && self.index_type == other.index_type
            && self.distance_metric == other.distance_metric
            && self.hnsw == other.hnsw
            && self.storage == other.storage
            && self.auto_snapshot == other.auto_snapshot
            && self.snapshot_interval_secs == other.snapshot_interval_secs
            && self.id_type == other.id_type
            && self.vectors == other.vectors
            && self.quantization() == other.quantization()
            && self.ivf == other.ivf
            && self.recall == other.recall
    }
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
            id_type: IdType::Int,
            vectors: VectorStorage::default(),
            quantization: None,
            ivf: IvfConfig::default(),
            recall: None,
            stated: Fields::all(),
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

    /// This config stating only `stated` (builder style).
    #[must_use]
    pub fn stating(self, stated: Fields) -> Self {
        Self { stated, ..self }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<()> {
        self.validate_common()?;
        self.hnsw.validate()
    }

    /// [`DatabaseConfig::validate`] with the rules a stored config was written under
    /// (see [`HnswConfig::normalised`]).
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate_stored(&self) -> Result<()> {
        self.validate_common()?;
        self.hnsw.validate_stored()
    }

    /// How the index codes its rows for the graph walk: the stated choice, else `sq4`
    /// for HNSW on a metric with codes (euclidean, inner product, cosine, angular) and
    /// none otherwise (a flat index is exact; the other metrics walk on the rows). A
    /// stored config that predates the choice reads back `sq8`, what it was built with
    /// (`storage::codec::decode_config`).
    pub fn quantization(&self) -> Quantization {
        match self.quantization {
            Some(q) => q,
            None if self.codes_possible() => Quantization::Sq4,
            None => Quantization::Off,
        }
    }

    /// Whether this index type and metric can walk on codes.
    pub fn codes_possible(&self) -> bool {
        self.index_type == IndexType::Hnsw
            && crate::index::hnsw::walks_on_codes(self.distance_metric)
    }

    fn validate_common(&self) -> Result<()> {
        in_range("dim", self.dim, 1, MAX_DIMENSION)?;
        if let Some(r) = self.recall {
            check_recall(r)?;
            let knob = [
                (self.hnsw.ef_search.is_some(), Field::EfSearch),
                (self.ivf.nprobe.is_some(), Field::Nprobe),
            ]
            .into_iter()
            .find(|&(set, f)| set && self.stated.contains(f));
            if let Some((_, f)) = knob.filter(|_| self.stated.contains(Field::Recall)) {
                return Err(Error::invalid(format!(
                    "recall={r} chooses {} itself; give a default recall or a default {},                      not both",
                    f.name(),
                    f.name()
                )));
            }
        }
        let max_lists = crate::index::ivf::MAX_NLIST;
        for (field, value) in [
            (Field::Nlist, self.ivf.nlist),
            (Field::Nprobe, self.ivf.nprobe),
        ] {
            let Some(v) = value else { continue };
            in_range(field.name(), v, 1, max_lists)?;
            if self.index_type != IndexType::Ivf
                && self.stated.contains(field)
                && self.stated.contains(Field::IndexType)
            {
                return Err(Error::invalid(format!(
                    "{}={v} is for IVF indexes (index_type=\"ivf\"), not {}",
                    field.name(),
                    self.index_type.name()
                )));
            }
        }
        // Codes asked for where nothing would use them are refused, not ignored
        // (checked once the index type and metric are known: stated, or merged).
        if let Some(q) = self.quantization.filter(|&q| q != Quantization::Off) {
            let known = self.stated.contains(Field::IndexType)
                && self.stated.contains(Field::DistanceMetric);
            let ivf_codes = self.index_type == IndexType::Ivf
                && crate::index::hnsw::walks_on_codes(self.distance_metric);
            if known && ivf_codes && !q.one_bit() {
                return Err(Error::invalid(format!(
                    "quantization={:?} is for HNSW indexes; IVF lists are coded with \
                     quantization=\"rabitq\" or \"binary\" (or \"none\": rows scanned in \
                     full)",
                    q.name()
                )));
            }
            if known && !self.codes_possible() && !ivf_codes {
                return Err(Error::invalid(format!(
                    "quantization={:?} is for HNSW and IVF indexes on euclidean, inner product, \
                     cosine or angular ({} {} scans the full rows); use quantization=\"none\"",
                    q.name(),
                    self.index_type.name(),
                    self.distance_metric.name()
                )));
            }
        }
        // An encrypted database writes no plaintext segment files to map: its rows are
        // decrypted into memory at open.
        if self.storage.encryption.is_some()
            && self.vectors != VectorStorage::Memory
            && self.stated.contains(Field::Vectors)
        {
            return Err(Error::invalid(format!(
                "vectors={:?} maps a seal's plaintext files; an encrypted database keeps its \
                 rows in memory (vectors=\"memory\", its default)",
                self.vectors.name()
            )));
        }
        // Checked against the index type and metric when they are stated (a config
        // stating only runtime fields is checked again once merged with the stored one).
        if self.vectors == VectorStorage::Disk && self.stated.contains(Field::Vectors) {
            if self.index_type == IndexType::Flat && self.stated.contains(Field::IndexType) {
                return Err(Error::invalid(
                    "vectors=\"disk\" is for HNSW and IVF indexes: a flat index keeps its rows \
                     in memory",
                ));
            }
            // An IVF index scores from its codes and reads only the rows they let
            // through; without codes every probed row would be a read from the file.
            if self.index_type == IndexType::Ivf
                && self.stated.contains(Field::IndexType)
                && !self.quantization().one_bit()
            {
                return Err(Error::invalid(
                    "vectors=\"disk\" on an IVF index needs quantization=\"rabitq\" or \
                     \"binary\": its searches read from the files only the rows the codes let \
                     through",
                ));
            }
            if !crate::index::hnsw::walks_on_codes(self.distance_metric)
                && self.stated.contains(Field::DistanceMetric)
            {
                return Err(Error::invalid(format!(
                    "vectors=\"disk\" needs a metric the graph walks on codes for \
                     (euclidean, inner product, cosine, angular); {} reads the rows in the walk",
                    self.distance_metric.name()
                )));
            }
            if self.quantization == Some(Quantization::Off)
                && self.stated.contains(Field::Quantization)
            {
                return Err(Error::invalid(
                    "vectors=\"disk\" needs codes for the graph walk; with quantization=\"none\" \
                     the walk reads the rows",
                ));
            }
            if cfg!(not(unix)) {
                return Err(Error::invalid(
                    "vectors=\"disk\" needs a unix system (positioned reads of mapped files)",
                ));
            }
        }
        if self.auto_snapshot {
            in_range(
                "snapshot_interval_secs",
                self.snapshot_interval_secs as usize,
                1,
                usize::MAX,
            )?;
        }
        self.storage.validate()
    }

    /// The value of `field`, as text (for messages).
    pub fn value_of(&self, field: Field) -> String {
        let (h, s) = (&self.hnsw, &self.storage);
        match field {
            Field::Dim => self.dim.to_string(),
            Field::IndexType => self.index_type.name().into(),
            Field::DistanceMetric => self.distance_metric.name().into(),
            Field::MaxNbConnection => h.max_nb_connection.to_string(),
            Field::MaxLayer => h.max_layer.to_string(),
            Field::MaxNbElements => h.max_nb_elements.to_string(),
            Field::EfConstruction => h.ef_construction.to_string(),
            Field::EfSearch => h.ef_search.map_or_else(|| "auto".into(), |e| e.to_string()),
            Field::UseHeuristic => h.use_heuristic.to_string(),
            Field::CacheSizeMb => s.cache_size_mb.to_string(),
            Field::WriteBufferSizeMb => s.write_buffer_size_mb.to_string(),
            Field::MaxWriteBufferNumber => s.max_write_buffer_number.to_string(),
            Field::Compression => s.compression.name().into(),
            Field::EnableStatistics => s.enable_statistics.to_string(),
            Field::EnableBloomFilter => s.enable_bloom_filter.to_string(),
            Field::BloomFilterBitsPerKey => s.bloom_filter_bits_per_key.to_string(),
            Field::MaxBackgroundJobs => s.max_background_jobs.to_string(),
            Field::SyncWrites => s.sync_writes.to_string(),
            Field::AutoSnapshot => self.auto_snapshot.to_string(),
            Field::SnapshotIntervalSecs => self.snapshot_interval_secs.to_string(),
            Field::IdType => self.id_type.name().into(),
            Field::Vectors => self.vectors.name().into(),
            Field::Quantization => self.quantization().name().into(),
            Field::Nlist => self
                .ivf
                .nlist
                .map_or_else(|| "auto".into(), |n| n.to_string()),
            Field::Nprobe => self
                .ivf
                .nprobe
                .map_or_else(|| "auto".into(), |n| n.to_string()),
            Field::Recall => self.recall.map_or_else(|| "none".into(), |r| r.to_string()),
        }
    }

    /// Copies runtime `field` from `from`.
    fn take_runtime(&mut self, from: &DatabaseConfig, field: Field) {
        let (h, g) = (&mut self.hnsw, &from.hnsw);
        let (s, t) = (&mut self.storage, &from.storage);
        match field {
            Field::MaxNbElements => h.max_nb_elements = g.max_nb_elements,
            Field::EfConstruction => h.ef_construction = g.ef_construction,
            Field::EfSearch => h.ef_search = g.ef_search,
            Field::UseHeuristic => h.use_heuristic = g.use_heuristic,
            Field::CacheSizeMb => s.cache_size_mb = t.cache_size_mb,
            Field::WriteBufferSizeMb => s.write_buffer_size_mb = t.write_buffer_size_mb,
            Field::MaxWriteBufferNumber => s.max_write_buffer_number = t.max_write_buffer_number,
            Field::Compression => s.compression = t.compression,
            Field::EnableStatistics => s.enable_statistics = t.enable_statistics,
            Field::EnableBloomFilter => s.enable_bloom_filter = t.enable_bloom_filter,
            Field::BloomFilterBitsPerKey => {
                s.bloom_filter_bits_per_key = t.bloom_filter_bits_per_key;
            }
            Field::MaxBackgroundJobs => s.max_background_jobs = t.max_background_jobs,
            Field::SyncWrites => s.sync_writes = t.sync_writes,
            Field::AutoSnapshot => self.auto_snapshot = from.auto_snapshot,
            Field::SnapshotIntervalSecs => {
                self.snapshot_interval_secs = from.snapshot_interval_secs
            }
            Field::Vectors => self.vectors = from.vectors,
            Field::Nprobe => self.ivf.nprobe = from.ivf.nprobe,
            Field::Recall => self.recall = from.recall,
            Field::Dim
            | Field::IndexType
            | Field::DistanceMetric
            | Field::IdType
            | Field::Quantization
            | Field::Nlist
            | Field::MaxNbConnection
            | Field::MaxLayer => {}
        }
    }

    /// The config an existing database with this stored config runs with when opened
    /// with `given`. The one rule:
    /// - a field `given` does not state keeps its stored value — so durability
    ///   (`sync_writes`) is never lowered unless the caller says so;
    /// - a stated structural field ([`Field::is_structural`]; M and `max_layer` only
    ///   for HNSW databases, on a flat one they mean nothing) must equal the stored
    ///   value, or [`Error::ConfigMismatch`] names it;
    /// - a stated runtime field is applied.
    ///
    /// The result states every field.
    ///
    /// # Errors
    /// [`Error::ConfigMismatch`] for the first stated structural field that differs;
    /// [`Error::InvalidArgument`] if the combination is out of range (e.g. a stated
    /// `ef_construction` below the stored M).
    pub fn reopened_with(&self, given: &DatabaseConfig) -> Result<DatabaseConfig> {
        let mut out = self.clone();
        out.stated = Fields::all();
        for f in Field::ALL {
            if !given.stated.contains(f) {
                continue;
            }
            if f.is_structural() {
                let hnsw_only = matches!(f, Field::MaxNbConnection | Field::MaxLayer);
                if hnsw_only && self.index_type != IndexType::Hnsw {
                    continue;
                }
                let (stored, g) = (self.value_of(f), given.value_of(f));
                if stored != g {
                    return Err(Error::ConfigMismatch {
                        field: f.name(),
                        stored,
                        given: g,
                    });
                }
            } else {
                out.take_runtime(given, f);
            }
        }
        // One default knob: a stated recall replaces a stored ef_search / nprobe, and
        // a stated one of those replaces a stored recall (stating both is refused).
        let states = |f| given.stated.contains(f);
        if states(Field::Recall) && given.recall.is_some() {
            if !states(Field::EfSearch) {
                out.hnsw.ef_search = None;
            }
            if !states(Field::Nprobe) {
                out.ivf.nprobe = None;
            }
        } else if !states(Field::Recall)
            && ((states(Field::EfSearch) && given.hnsw.ef_search.is_some())
                || (states(Field::Nprobe) && given.ivf.nprobe.is_some()))
        {
            out.recall = None;
        }
        // The key is never stored: the open's.
        out.storage.encryption.clone_from(&given.storage.encryption);
        if out.storage.encryption.is_some() && !given.stated.contains(Field::Vectors) {
            // Encrypted rows live in memory: the default there (a stored config holds
            // no mode; a stated other one is refused by `validate`).
            out.vectors = VectorStorage::Memory;
        }
        out.validate()?;
        Ok(out)
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
    fn ef_construction_below_m_is_rejected_not_clamped() {
        let h = HnswConfig {
            ef_construction: 1,
            ..HnswConfig::default()
        };
        let msg = h
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("ef_construction must be at least max_nb_connection (16), got 1"),
            "{msg}"
        );
        let ok = HnswConfig {
            ef_construction: 16,
            ..HnswConfig::default()
        };
        assert!(ok.validate().is_ok());
        // As stored by an older build: accepted, and normalised to what the index uses.
        assert!(h.validate_stored().is_ok());
        assert_eq!(h.normalised().ef_construction, 16);
        assert_eq!(ok.normalised(), ok);
        // A capacity hint of 0 is no hint.
        let zero = HnswConfig {
            max_nb_elements: 0,
            ..HnswConfig::default()
        };
        assert!(zero.validate().is_ok());
        assert!(check_ef_search(MAX_EF).is_ok());
        assert!(check_ef_search(MAX_EF + 1).is_err());
        assert!(check_ef_search(0).is_err());
    }

    #[test]
    fn reopen_checks_and_applies_only_stated_fields() {
        let mut stored = DatabaseConfig::simple(8, true).unwrap_or_else(|e| panic!("{e}"));
        stored.storage.sync_writes = true;
        stored.hnsw.max_nb_connection = 32;
        stored.hnsw.ef_construction = 64;
        let mut given = DatabaseConfig::new(8).unwrap_or_else(|e| panic!("{e}"));
        given.hnsw.ef_search = Some(50);
        // Nothing stated: the stored config, unchanged.
        let same = stored.reopened_with(&given.clone().stating(Fields::NONE));
        assert_eq!(same.ok().as_ref(), Some(&stored));
        // dim and ef_search stated: flat, M 16 and sync_writes false are not.
        let r = stored
            .reopened_with(
                &given
                    .clone()
                    .stating(Fields::of([Field::Dim, Field::EfSearch])),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.hnsw.ef_search, Some(50));
        assert!(r.storage.sync_writes);
        assert_eq!(r.index_type, IndexType::Hnsw);
        assert_eq!(r.hnsw.max_nb_connection, 32);
        assert_eq!(r.stated, Fields::all());
        // Everything stated (a config built in Rust): the first difference is named.
        let e = stored.reopened_with(&given).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "config mismatch for index_type: the database stores hnsw, flat was given \
                 (only what is passed is checked; NusterDB.open(path) opens it with its \
                 stored config)"
            )
        );
        // M on a flat database means nothing and is not checked.
        let flat = DatabaseConfig::new(8).unwrap_or_else(|e| panic!("{e}"));
        let mut m = flat.clone();
        m.hnsw.max_nb_connection = 4;
        m.hnsw.ef_construction = 4;
        let r = flat.reopened_with(&m.stating(Fields::of([Field::MaxNbConnection])));
        assert_eq!(r.ok().as_ref(), Some(&flat));
    }

    #[test]
    fn field_names_are_distinct_and_classified() {
        let names: std::collections::HashSet<_> = Field::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(names.len(), Field::ALL.len());
        let structural: Vec<_> = Field::ALL
            .iter()
            .filter(|f| f.is_structural())
            .map(|f| f.name())
            .collect();
        assert_eq!(
            structural,
            [
                "dim",
                "index_type",
                "distance_metric",
                "id_type",
                "quantization",
                "nlist",
                "max_nb_connection",
                "max_layer"
            ]
        );
        assert_eq!(Fields::of(Field::ALL), Fields::all());
        assert!(!Fields::NONE.contains(Field::Dim));
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
        assert_eq!(IndexType::from_name("IVF").ok(), Some(IndexType::Ivf));
        assert!(IndexType::from_name("ivfpq").is_err());
        assert!(Compression::from_name("gzip").is_err());
    }
}
