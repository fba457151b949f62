//! Segments: the files that will hold sealed vectors apart from RocksDB.
//!
//! The database's growth path is a set of immutable segments (each written once:
//! vectors, codes, graph, ids and payload index, memory-mapped at open) plus one small
//! mutable segment fed by the write-ahead log, so that an open maps files instead of
//! reading every record, and searches take a reference to the current set instead of
//! a lock writers hold. The database does not use segments yet; this module holds the
//! pieces built so far, each with its own format, checks and tests:
//!
//! - [`vectors`]: the vector file — rows aligned for the SIMD kernels, checksummed per
//!   block, written atomically, read in place through a memory map.
//! - [`maps`]: the maps file — the id map, the string ids and the payload (filter)
//!   index, checksummed, written atomically, checked whole when read.

pub mod maps;
pub mod vectors;

pub use vectors::VectorFile;
