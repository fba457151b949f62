//! The storage layer on RocksDB, the source of truth for every stored vector.
//!
//! - [`options`]: how a [`StorageConfig`] becomes RocksDB options, and the durability choices.
//! - [`keys`]: the key layout. [`codec`]: the record encodings (untrusted-input decoders).
//! - [`crypto`]: encryption at rest (the data key, the key file, sealed values and files).
//! - [`changelog`]: the change log, one entry per write batch, and the seal record.
//! - [`fileio`]: the files NusterDB writes itself, through a trait tests can fault.
//! - [`logscan`]: a check of RocksDB's log files for damage its readers loop on.
//! - [`fork`]: what a child made by `fork()` may do with the engine.
//! - [`lock`]: the one-writer lock file. [`rocks`]: the `Store` handle (open modes,
//!   atomic batches, scans, WAL sync, checkpoints). [`scratch`]: a follower's private
//!   scratch directory.
//!
//! It knows nothing about indexes or Python.
//!
//! [`StorageConfig`]: crate::config::StorageConfig

pub mod changelog;
pub mod codec;
pub mod crypto;
pub mod fileio;
pub mod fork;
pub mod keys;
pub mod lock;
pub mod logscan;
pub mod options;
pub mod rocks;
pub mod scratch;

pub use rocks::{Batch, DirState, OpenMode, Store};
