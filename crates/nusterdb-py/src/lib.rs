//! `nusterdb._core`: the Python extension module of NusterDB.
//!
//! A thin layer over `nusterdb-core`: it converts Python values, releases the GIL
//! around long Rust work, and maps core errors onto `nusterdb.exceptions`. No
//! algorithm lives here. One file per class family.

mod batch;
mod config;
mod convert;
mod cursor;
mod database;
mod errors;
mod filter;
mod ids;
mod metadata;
mod metric;
mod progress;
mod records;
mod server;
mod vector;

use nusterdb_core::config::{DEFAULT_CACHE_SIZE_MB, DEFAULT_HNSW_EF_CONSTRUCTION, DEFAULT_HNSW_M};
use pyo3::prelude::*;

/// The instruction set the distance kernels use on this machine ("avx512",
/// "avx2+fma", "neon" or "scalar"); set NUSTERDB_FORCE_ISA before import to choose.
#[pyfunction]
fn simd_isa() -> &'static str {
    nusterdb_core::distance::kernels().isa.name()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DEFAULT_HNSW_M", DEFAULT_HNSW_M)?;
    m.add("DEFAULT_HNSW_EF_CONSTRUCTION", DEFAULT_HNSW_EF_CONSTRUCTION)?;
    m.add("DEFAULT_CACHE_SIZE_MB", DEFAULT_CACHE_SIZE_MB)?;
    m.add_class::<vector::PyVector>()?;
    m.add_class::<metric::PyDistanceMetric>()?;
    m.add_class::<metadata::PyMetadata>()?;
    m.add_class::<config::PyHnswConfig>()?;
    m.add_class::<config::PyStorageConfig>()?;
    m.add_class::<config::PyDatabaseConfig>()?;
    m.add_class::<database::PyNusterDB>()?;
    m.add_class::<database::PyDatabaseStats>()?;
    m.add_class::<records::PySearchHit>()?;
    m.add_class::<records::PyRecord>()?;
    m.add_class::<cursor::PyRecordIterator>()?;
    m.add_function(wrap_pyfunction!(simd_isa, m)?)?;
    m.add_function(wrap_pyfunction!(server::_serve, m)?)?;
    m.add_function(wrap_pyfunction!(server::_keys_create, m)?)?;
    m.add_function(wrap_pyfunction!(server::_keys_list, m)?)?;
    m.add_function(wrap_pyfunction!(server::_keys_revoke, m)?)?;
    m.add_function(wrap_pyfunction!(server::_audit_verify, m)?)?;
    Ok(())
}
