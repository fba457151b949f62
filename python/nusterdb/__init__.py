"""NusterDB: an embedded vector database with a Rust core.

Open a database at a path, store vectors with metadata, and get nearest neighbours
back, exact or approximate, filtered by metadata. This package re-exports the
extension module ``nusterdb._core`` and the exception classes.
"""

from __future__ import annotations

from nusterdb import exceptions
from nusterdb._core import (
    DEFAULT_CACHE_SIZE_MB,
    DEFAULT_HNSW_EF_CONSTRUCTION,
    DEFAULT_HNSW_M,
    DatabaseConfig,
    DatabaseStats,
    DistanceMetric,
    HNSWConfig,
    Metadata,
    NusterDB,
    Record,
    RecordIterator,
    SearchHit,
    StorageConfiguration,
    Vector,
    __version__,
    simd_isa,
)
from nusterdb.exceptions import (
    ClosedError,
    ConfigMismatchError,
    CorruptionError,
    DamagedSnapshotWarning,
    DatabaseLockedError,
    DatabaseNotFoundError,
    DimensionMismatchError,
    DuplicateIdError,
    FilterError,
    ForkedProcessError,
    IdNotFoundError,
    IdTypeError,
    IndexRebuiltWarning,
    InvalidArgumentError,
    InvalidVectorError,
    NotADatabaseError,
    NusterDBError,
    NusterDBIOError,
    ReadOnlyError,
)

__all__ = [
    "DEFAULT_CACHE_SIZE_MB",
    "DEFAULT_HNSW_EF_CONSTRUCTION",
    "DEFAULT_HNSW_M",
    "ClosedError",
    "ConfigMismatchError",
    "CorruptionError",
    "DamagedSnapshotWarning",
    "DatabaseConfig",
    "DatabaseLockedError",
    "DatabaseNotFoundError",
    "DatabaseStats",
    "DimensionMismatchError",
    "DistanceMetric",
    "DuplicateIdError",
    "FilterError",
    "ForkedProcessError",
    "HNSWConfig",
    "IdNotFoundError",
    "IdTypeError",
    "IndexRebuiltWarning",
    "InvalidArgumentError",
    "InvalidVectorError",
    "Metadata",
    "NotADatabaseError",
    "NusterDB",
    "NusterDBError",
    "NusterDBIOError",
    "ReadOnlyError",
    "Record",
    "RecordIterator",
    "SearchHit",
    "StorageConfiguration",
    "Vector",
    "__version__",
    "exceptions",
    "simd_isa",
]
