//! Segments: the files a seal writes beside RocksDB (`db/seal.rs`), which an open reads
//! instead of every record (then replaying only the change log written since).
//!
//! Today a seal writes the whole in-memory state as one segment, and an open copies
//! its rows into memory. The files are made for more: rows laid out for the kernels so
//! they can be read in place from the mapping, each file written once and never
//! changed, so several sealed segments could be searched and merged. Each file has its
//! own format, checks and tests:
//!
//! - [`vectors`]: the vector file — rows aligned for the SIMD kernels, checksummed per
//!   block, written atomically, read in place through a memory map.
//! - [`maps`]: the maps file — the id map, the string ids and the payload (filter)
//!   index, checksummed, written atomically, checked whole when read.

pub mod maps;
pub mod vectors;

pub use vectors::VectorFile;
