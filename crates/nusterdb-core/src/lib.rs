//! NusterDB's engine, in pure Rust (no Python here; the `nusterdb-py` crate binds it).
//!
//! Map of the crate:
//! - [`error`]: the one error enum; every fallible call returns [`Result`].
//! - [`vector`]: the user-facing `Vector` (non-empty, finite f32) and its maths.
//! - [`distance`]: SIMD distance kernels, chosen once per process by CPU detection,
//!   with a scalar oracle.
//! - [`metric`]: the eight distance metrics, their exact definitions and similarities.
//! - [`metadata`]: typed fields, tags and bookkeeping attached to a vector.
//! - [`config`]: HNSW, storage and database configuration, validated on construction.
//! - [`storage`]: RocksDB, the source of truth: options, key layout, record codec,
//!   writer lock, the `Store` handle.
//! - [`filter`]: the metadata filter language and the per-key payload indexes.
//! - [`index`]: the `VectorIndex` trait and its implementations: flat (exact) and
//!   HNSW (approximate, walked on 4- or 8-bit codes with an exact re-rank).
//! - [`id_map`]: external ids ↔ internal slots.
//! - [`snapshot`]: point-in-time copies that open as databases.
//! - [`segment`]: the files of sealed segments (so far the memory-mapped vector file),
//!   not yet used by the database.
//! - [`db`]: `Database`, the one module that owns the others.
//! - [`rng`]: the small seeded generator behind `Vector::random`.
//! - [`verify`]: the full integrity check of a database directory, as a report.

pub mod config;
pub mod db;
pub mod distance;
pub mod error;
pub mod filter;
pub mod heap;
pub mod id_map;
pub mod ids;
pub mod index;
pub mod metadata;
pub mod metric;
pub mod progress;
pub mod rng;
pub mod segment;
pub mod snapshot;
pub mod storage;
pub mod vector;
pub mod verify;

pub use config::{Compression, DatabaseConfig, HnswConfig, IndexType, IvfConfig, StorageConfig};
pub use db::{Database, Location, Stats};
pub use error::{Error, Result};
pub use ids::{Id, IdType};
pub use metadata::{Metadata, Value};
pub use metric::DistanceMetric;
pub use vector::Vector;
