//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

/// The graph file of the seal of the database at `dir` (there must be exactly one).
pub fn graph_file(dir: &Path) -> PathBuf {
    let graphs: Vec<PathBuf> = nusterdb_core::db::segment_files_in(dir)
        .unwrap()
        .into_iter()
        .filter(|f| f.extension().is_some_and(|x| x == "graph"))
        .collect();
    assert_eq!(graphs.len(), 1, "{graphs:?}");
    graphs[0].clone()
}
