"""The keyword options the framework stores accept, by the config object they go to
(``DatabaseConfig``, ``HNSWConfig``, ``StorageConfiguration``)."""

from __future__ import annotations

DATABASE_OPTIONS = (
    "auto_snapshot",
    "snapshot_interval_secs",
    "vectors",
    "quantization",
    "encryption",
    "nlist",
    "nprobe",
    "recall",
)
HNSW_OPTIONS = (
    "max_nb_connection",
    "max_nb_elements",
    "max_layer",
    "ef_construction",
    "ef_search",
    "use_heuristic",
)
STORAGE_OPTIONS = (
    "cache_size_mb",
    "write_buffer_size_mb",
    "max_write_buffer_number",
    "compression",
    "enable_statistics",
    "enable_bloom_filter",
    "bloom_filter_bits_per_key",
    "max_background_jobs",
    "sync_writes",
)
