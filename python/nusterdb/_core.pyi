"""Type stubs for the NusterDB extension module ``nusterdb._core``."""

import os
from typing import (
    Any,
    Callable,
    Dict,
    Final,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    TypedDict,
    Union,
    final,
    overload,
)

import numpy as np
import numpy.typing as npt

from nusterdb.encryption import EncryptionConfig

__all__ = [
    "DEFAULT_CACHE_SIZE_MB",
    "DEFAULT_HNSW_EF_CONSTRUCTION",
    "DEFAULT_HNSW_M",
    "DatabaseConfig",
    "DatabaseStats",
    "DistanceMetric",
    "HNSWConfig",
    "Metadata",
    "NusterDB",
    "Record",
    "RecordIterator",
    "SearchHit",
    "StorageConfiguration",
    "Vector",
    "__version__",
    "_audit_verify",
    "_keys_create",
    "_keys_list",
    "_keys_revoke",
    "_serve",
    "simd_isa",
]

__version__: Final[str]
DEFAULT_HNSW_M: Final[int]
DEFAULT_HNSW_EF_CONSTRUCTION: Final[int]
DEFAULT_CACHE_SIZE_MB: Final[int]

_MetadataValue = Union[str, int, float, bool]
_VectorLike = Union["Vector", Sequence[float], npt.NDArray[Any]]

def simd_isa() -> str:
    """The instruction set of the distance kernels: "avx512", "avx2+fma", "neon" or "scalar"."""

@final
class Vector:
    """A dense float32 vector: non-empty, every component finite."""

    def __new__(cls, data: _VectorLike) -> Vector:
        """From a sequence of numbers or a 1-D numpy array.

        Raises InvalidVectorError for empty or non-finite input (naming the position),
        TypeError for non-numeric input (``str``, ``bytes`` and ``bytearray`` too: for a
        float32 buffer use ``numpy.frombuffer(data, dtype=numpy.float32)``), ValueError
        for arrays that are not 1-D.
        """
    @staticmethod
    def zeros(dim: int) -> Vector:
        """A vector of ``dim`` zeros; InvalidVectorError when dim is 0."""
    @staticmethod
    def ones(dim: int) -> Vector:
        """A vector of ``dim`` ones; InvalidVectorError when dim is 0."""
    @staticmethod
    def random(dim: int, min: float = -1.0, max: float = 1.0, seed: Optional[int] = None) -> Vector:
        """Components uniform in [min, max); the same seed gives the same vector."""
    @staticmethod
    def unit_random(dim: int, seed: Optional[int] = None) -> Vector:
        """A vector uniformly distributed on the unit sphere."""
    @property
    def dimension(self) -> int:
        """The number of components (fixed when the vector is made)."""
    @property
    def data(self) -> List[float]:
        """The components as a list of floats (a copy)."""
    def dim(self) -> int:
        """The number of components. Same as ``v.dimension``; kept for compatibility."""
    def __len__(self) -> int: ...
    def __getitem__(self, index: int, /) -> float: ...
    def __iter__(self) -> Iterator[float]: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...  # raises TypeError: vectors are mutable
    def __reduce__(self) -> Tuple[Any, ...]: ...
    def to_numpy(self) -> npt.NDArray[np.float32]:
        """A float32 numpy array (a copy)."""
    def __array__(
        self, dtype: Optional[npt.DTypeLike] = None, copy: Optional[bool] = None
    ) -> npt.NDArray[Any]: ...
    def dot(self, other: _VectorLike) -> float: ...
    def norm(self) -> float: ...
    def l1_norm(self) -> float: ...
    def linf_norm(self) -> float: ...
    def norm_squared(self) -> float: ...
    def normalize(self) -> Vector:
        """A unit-length copy; InvalidArgumentError for the zero vector."""
    def normalize_mut(self) -> None:
        """Scales in place to unit length; InvalidArgumentError for the zero vector."""
    def is_normalized(self, tolerance: float = 1e-6) -> bool: ...
    def is_finite(self) -> bool: ...
    def euclidean_distance(self, other: _VectorLike) -> float: ...
    def manhattan_distance(self, other: _VectorLike) -> float: ...
    def cosine_distance(self, other: _VectorLike) -> float: ...
    def cosine_similarity(self, other: _VectorLike) -> float: ...
    def angular_distance(self, other: _VectorLike) -> float: ...
    def chebyshev_distance(self, other: _VectorLike) -> float: ...
    def hamming_distance(self, other: _VectorLike) -> float: ...
    def jaccard_similarity(self, other: _VectorLike) -> float: ...
    def jaccard_distance(self, other: _VectorLike) -> float: ...
    def __add__(self, other: Union[Vector, float], /) -> Vector: ...
    def __radd__(self, other: Union[Vector, float], /) -> Vector: ...
    def __sub__(self, other: Union[Vector, float], /) -> Vector: ...
    def __rsub__(self, other: Union[Vector, float], /) -> Vector: ...
    def __mul__(self, other: Union[Vector, float], /) -> Vector: ...
    def __rmul__(self, other: Union[Vector, float], /) -> Vector: ...
    def __truediv__(self, other: Union[Vector, float], /) -> Vector: ...
    def __rtruediv__(self, other: Union[Vector, float], /) -> Vector: ...
    def __neg__(self) -> Vector: ...

@final
class DistanceMetric:
    """One of eight metrics; smaller distance = closer for all of them."""

    @staticmethod
    def euclidean() -> DistanceMetric: ...
    @staticmethod
    def manhattan() -> DistanceMetric: ...
    @staticmethod
    def cosine() -> DistanceMetric: ...
    @staticmethod
    def angular() -> DistanceMetric: ...
    @staticmethod
    def chebyshev() -> DistanceMetric: ...
    @staticmethod
    def jaccard() -> DistanceMetric: ...
    @staticmethod
    def hamming() -> DistanceMetric: ...
    @staticmethod
    def inner_product() -> DistanceMetric: ...
    @staticmethod
    def from_name(name: str) -> DistanceMetric:
        """Case-insensitive; aliases l2, l1, linf, ip, dot. InvalidArgumentError otherwise."""
    @staticmethod
    def names() -> List[str]: ...
    @property
    def name(self) -> str: ...
    def distance(self, a: _VectorLike, b: _VectorLike) -> float: ...
    def similarity(self, a: _VectorLike, b: _VectorLike) -> float: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Metadata:
    """Typed fields (str, int, float, bool) and tags, with created/updated/version.

    Keys, str values and tags are stored as UTF-8: a str holding a lone surrogate (such
    as ``"\\ud800"``) raises InvalidArgumentError naming it."""

    def __new__(cls) -> Metadata: ...
    @staticmethod
    def with_data(
        data: Dict[str, _MetadataValue], tags: Optional[List[str]] = None
    ) -> Metadata: ...
    @staticmethod
    def with_tags(tags: List[str]) -> Metadata: ...
    @staticmethod
    def _restore(
        data: Dict[str, _MetadataValue],
        tags: List[str],
        created_at: int,
        updated_at: int,
        version: int,
    ) -> Metadata:
        """Metadata as stored, bookkeeping included (used by nusterdb.Client)."""
    def set(self, key: str, value: _MetadataValue) -> None: ...
    def get(self, key: str, default: Any = None) -> Any: ...
    def keys(self) -> List[str]: ...
    def values(self) -> List[_MetadataValue]: ...
    def items(self) -> List[Tuple[str, _MetadataValue]]: ...
    def contains_key(self, key: str) -> bool: ...
    def __contains__(self, key: object, /) -> bool: ...
    def __getitem__(self, key: str, /) -> _MetadataValue: ...
    def remove(self, key: str) -> Optional[_MetadataValue]: ...
    def len(self) -> int: ...
    def __len__(self) -> int: ...
    def is_empty(self) -> bool: ...
    def add_tag(self, tag: str) -> bool: ...
    def remove_tag(self, tag: str) -> bool: ...
    def has_tag(self, tag: str) -> bool: ...
    def tags(self) -> List[str]: ...
    def to_dict(self) -> Dict[str, _MetadataValue]: ...
    @property
    def created_at(self) -> int: ...
    @property
    def updated_at(self) -> int: ...
    @property
    def version(self) -> int: ...
    def age_seconds(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...  # raises TypeError: metadata is mutable

@final
class HNSWConfig:
    """HNSW parameters (immutable). Remembers which arguments were passed: reopening a
    database checks or applies only those (``ef_search=None`` passed: automatic)."""

    def __new__(
        cls,
        max_nb_connection: int = 16,
        max_nb_elements: int = 1024,
        max_layer: int = 16,
        ef_construction: int = 200,
        ef_search: Optional[int] = None,
        use_heuristic: bool = True,
    ) -> HNSWConfig: ...
    @staticmethod
    def default() -> HNSWConfig: ...
    @property
    def max_nb_connection(self) -> int: ...
    @property
    def max_nb_elements(self) -> int: ...
    @property
    def max_layer(self) -> int: ...
    @property
    def ef_construction(self) -> int: ...
    @property
    def ef_search(self) -> Optional[int]: ...
    @property
    def use_heuristic(self) -> bool: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class StorageConfiguration:
    """RocksDB knobs (immutable); each one reaches the engine. Remembers which arguments
    were passed: reopening a database applies only those."""

    def __new__(
        cls,
        cache_size_mb: int = 256,
        write_buffer_size_mb: int = 64,
        max_write_buffer_number: int = 3,
        compression: str = "lz4",
        enable_statistics: bool = True,
        enable_bloom_filter: bool = True,
        bloom_filter_bits_per_key: int = 10,
        max_background_jobs: int = 4,
        sync_writes: bool = False,
    ) -> StorageConfiguration: ...
    @staticmethod
    def default() -> StorageConfiguration: ...
    @property
    def cache_size_mb(self) -> int: ...
    @property
    def write_buffer_size_mb(self) -> int: ...
    @property
    def max_write_buffer_number(self) -> int: ...
    @property
    def compression(self) -> str: ...
    @property
    def enable_statistics(self) -> bool: ...
    @property
    def enable_bloom_filter(self) -> bool: ...
    @property
    def bloom_filter_bits_per_key(self) -> int: ...
    @property
    def max_background_jobs(self) -> int: ...
    @property
    def sync_writes(self) -> bool: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class DatabaseConfig:
    """Everything a database is created with (immutable)."""

    def __new__(
        cls,
        dim: int,
        index_type: str = "flat",
        distance_metric: Union[DistanceMetric, str, None] = None,
        hnsw_config: Optional[HNSWConfig] = None,
        storage_config: Optional[StorageConfiguration] = None,
        auto_snapshot: bool = False,
        snapshot_interval_secs: int = 3600,
        id_type: str = "int",
        vectors: str = "mmap",
        quantization: Optional[str] = None,
        encryption: Optional[EncryptionConfig] = None,
        nlist: Optional[int] = None,
        nprobe: Optional[int] = None,
        recall: Optional[float] = None,
    ) -> DatabaseConfig:
        """index_type is "flat" (exact), "hnsw" (a graph) or "ivf" (rows in k-means
        lists; a search scans the nearest ``nprobe`` of ``nlist`` lists)
        ("optimized_flat", "ultra_fast_flat" and "super_optimized_flat" are aliases of
        "flat"); nlist (IVF, fixed at creation; None: the square root of the row count,
        trained from 1,024 rows and again once as many rows changed) and nprobe (IVF,
        the lists a search scans unless
        it says; None: a sixteenth of the lists, at least 8), each 1 to 65,536 and
        refused for the other index types; distance_metric defaults to
        euclidean; id_type is "int" (ids 0 <= id < 2**63) or "str" (non-empty str ids
        of at most 1,024 UTF-8 bytes), fixed when the database is created; vectors is
        where the index keeps the rows a seal holds, chosen at each open and never
        stored: "memory" (read into memory), "mmap" (mapped: the page cache holds them)
        or "disk" (mapped, and searches read the rows they re-rank from the files, so
        only the codes and the graph become resident; HNSW on euclidean, inner
        product, cosine or angular; IVF with quantization "rabitq" or "binary", whose
        lists then
        keep each row's place in the seal's file and searches read the rows the codes
        let through; a flat index maps them under "mmap" and copies them under
        "memory"; an IVF index copies them into its lists under "memory", and under
        "mmap" when it has no codes — with codes it leaves them in the seal's file and
        reads the rows the codes let through through the mapping);
        quantization is the codes an HNSW index walks its
        graph on, fixed at creation: "sq4" (32 * ceil(dim / 64) bytes a vector; the
        default for euclidean, inner product, cosine and angular), "sq8" (dim bytes:
        twice the memory, finer scores; databases created before the choice keep it),
        "rabitq" (1 bit a component after a random rotation: P / 8 bytes, P = dim
        rounded up to a power of two, at least 64; rows coded against the nearest of up
        to 1,024 k-means centroids; slower than sq4 at equal recall on clustered rows),
        "binary" (the same with P = dim rounded up to a multiple of 64 only: one bit a
        component, 32 times smaller than the float32 row; the least memory, for wide
        embeddings) or "none" (the walk reads the full rows; the default for a flat
        index and the other metrics); None leaves the default. An IVF index takes
        "rabitq" or "binary" (each list's rows coded against
        its centroid, scanned 32 at a time through 4-bit lookup tables; rows whose
        estimate could beat the k-th exact distance so far are scored exactly) or
        "none" (its default: every probed row scored exactly), on euclidean, inner
        product, cosine or angular. Returned distances are exact whichever is chosen.
        recall (in (0, 1]) is the recall@k target of every search that passes no
        ``ef_search``, ``nprobe`` or ``recall`` of its own (as ``search(...,
        recall=...)``); stored, and a reopen passing it replaces a stored ef_search /
        nprobe default (one passing those replaces it); refused together with either
        in the same config. encryption (an EncryptionConfig)
        encrypts the database at rest with AES-256-GCM; its master key is needed at
        every open and never stored, and an encrypted database keeps its rows in memory
        (vectors "memory")."""
    @staticmethod
    def simple(dim: int, use_hnsw: bool = False) -> DatabaseConfig: ...
    @staticmethod
    def optimized_flat(dim: int) -> DatabaseConfig: ...
    @staticmethod
    def ultra_fast_flat(dim: int) -> DatabaseConfig: ...
    @staticmethod
    def super_optimized_flat(dim: int) -> DatabaseConfig: ...
    @property
    def dim(self) -> int: ...
    @property
    def index_type(self) -> str: ...
    @property
    def distance_metric(self) -> DistanceMetric: ...
    @property
    def metric(self) -> DistanceMetric:
        """Same as ``distance_metric``, under the name ``NusterDB.metric`` uses."""
    @property
    def hnsw_config(self) -> HNSWConfig: ...
    @property
    def storage_config(self) -> StorageConfiguration: ...
    @property
    def auto_snapshot(self) -> bool: ...
    @property
    def snapshot_interval_secs(self) -> int: ...
    @property
    def id_type(self) -> str:
        """The kind of ids: "int" or "str" (fixed when the database is created)."""
    @property
    def vectors(self) -> str:
        """Where the index keeps its sealed rows: "memory", "mmap" or "disk"."""
    @property
    def quantization(self) -> str:
        """The codes the index searches on: "sq8", "sq4", "rabitq", "binary" or "none"."""
    @property
    def encrypted(self) -> bool:
        """Whether the database is encrypted at rest (an ``encryption`` was given)."""
    @property
    def nlist(self) -> Optional[int]:
        """An IVF index's list count (None: automatic)."""
    @property
    def nprobe(self) -> Optional[int]:
        """The lists an IVF search scans unless it says (None: automatic)."""
    @property
    def recall(self) -> Optional[float]:
        """The recall target of a search naming no knob of its own (None: none)."""
    def __eq__(self, other: object, /) -> bool: ...

_Path = Union[str, "os.PathLike[str]"]
_Filter = Dict[str, Any]

class _SearchSetting(TypedDict, total=False):
    """What a recall target sets (``Database.search_params_for``)."""

    ef_search: int
    nprobe: int
    probe_reach: float

_MetadataLike = Union[Metadata, Dict[str, _MetadataValue]]
# An id: an int for an int-id database, a str for a string-id one.
_Id = Union[int, str]
_Ids = Union[Sequence[int], Sequence[str], npt.NDArray[Any]]
_Include = Sequence[str]
# progress=: None (a bar on stderr when it is a terminal and the work lasts over a
# second), True (a bar), False (none), or callback(phase, done, total).
_Progress = Union[None, bool, Callable[[str, int, int], object]]

@final
class SearchHit:
    """One search result of ``search(..., include=[...])``: the id, the distance, and
    what was included (None where it was not, and for a record without a document)."""
    @property
    def id(self) -> _Id:
        """The record's id (int or str, as the database's ids)."""
    @property
    def distance(self) -> float:
        """The distance to the query under the database's metric."""
    @property
    def vector(self) -> Optional[npt.NDArray[np.float32]]:
        """The stored vector as a float32 numpy array, if "vector" was included."""
    @property
    def metadata(self) -> Optional[Metadata]:
        """The stored metadata, if "metadata" was included."""
    @property
    def document(self) -> Optional[str]:
        """The stored document, if "document" was included and the record has one."""

@final
class Record:
    """One stored record as ``iter_records`` yields it: the id and what ``include``
    asked for (None where it was not, and for a record without a document)."""
    @property
    def id(self) -> _Id:
        """The record's id (int or str, as the database's ids)."""
    @property
    def vector(self) -> Optional[npt.NDArray[np.float32]]:
        """The stored vector as a float32 numpy array, if "vector" was included."""
    @property
    def metadata(self) -> Optional[Metadata]:
        """The stored metadata, if "metadata" was included."""
    @property
    def document(self) -> Optional[str]:
        """The stored document, if "document" was included and the record has one."""

@final
class RecordIterator(Iterator[Any]):
    """Iterates over a database in id order a page at a time (``iter(db)``: ids,
    ``iter_records``: Record objects, ``iter_pages``: get_many dicts). An id stored for
    the whole iteration comes exactly once; one added or removed meanwhile may or may
    not."""
    def __iter__(self) -> RecordIterator: ...
    def __next__(self) -> Any: ...

@final
class DatabaseStats:
    """Figures about a database (a snapshot of them at the time of the call)."""

    @property
    def vector_count(self) -> int: ...
    @property
    def dimension(self) -> int:
        """Same as ``stats.dim``; kept for compatibility."""
    @property
    def dim(self) -> int: ...
    @property
    def index_type(self) -> str: ...
    @property
    def distance_metric(self) -> str:
        """The metric's name (``stats.metric`` is the DistanceMetric itself)."""
    @property
    def metric(self) -> DistanceMetric: ...
    @property
    def metadata_keys(self) -> List[str]:
        """Distinct metadata field names in use, sorted."""
    @property
    def deleted_count(self) -> int:
        """Slots freed by removals and not yet reused."""
    @property
    def memory_bytes(self) -> int:
        """Memory held: vectors, graph, id map, payload index, and the storage engine's
        memtables, block-cache usage and table readers."""
    @property
    def memory_by_part(self) -> Dict[str, int]:
        """``memory_bytes`` by part, as a dict that sums to it: "vectors" (the rows and
        what is kept per row), for HNSW "graph", "codes" (the rows' 8-, 4- or 1-bit
        codes) and "scratch" (search buffers), for IVF "index" (the centroids and the
        lists) and, with quantization="rabitq" or "binary", "codes" (the lists' 1-bit
        codes and per-row numbers), "id_map", "names" (string ids), "payload_index"
        (filter indexes), and the storage engine's "memtables", "block_cache" and
        "table_readers"."""
    @property
    def mapped_bytes(self) -> int:
        """Bytes of seal files mapped in place of heap memory (HNSW rows and codes after
        an open from a seal), not in memory_bytes: the page cache holds them, shared
        with other handles and reclaimable; RSS counts the pages a process touched."""
    @property
    def mapped_resident_bytes(self) -> Optional[int]:
        """The bytes of those mappings resident in this process (the pages its searches
        and writes touched; with vectors="disk" searches read rows from the files and
        only the codes' pages become resident); None where the system does not say
        (off Linux)."""
    @property
    def disk_bytes(self) -> int: ...
    @property
    def engine_statistics(self) -> Optional[str]:
        """RocksDB's statistics dump (None when statistics are disabled)."""

@final
class NusterDB:
    """An embedded vector database on RocksDB.

    ``NusterDB(path, config)`` or ``NusterDB(path, dim=128)`` creates or opens;
    ``path=None`` or ``":memory:"`` is in memory. An existing database uses its stored
    config; a conflicting ``config`` raises ConfigMismatchError. One writer per
    database: a second one raises DatabaseLockedError; ``read_only=True`` opens a
    follower beside a live writer (``refresh()`` catches up). A handle belongs to the
    process that opened it: in a child made by ``fork()`` every use raises
    ForkedProcessError (open the database in the child instead).
    """

    def __new__(
        cls,
        path: Optional[_Path] = None,
        config: Optional[DatabaseConfig] = None,
        dim: Optional[int] = None,
        read_only: bool = False,
        progress: _Progress = None,
        encryption: Optional[EncryptionConfig] = None,
    ) -> NusterDB:
        """``encryption`` (or ``config.encryption``) creates an encrypted database and
        is needed at every open of one: EncryptionKeyError without it or with a wrong
        key, nothing modified."""
    @staticmethod
    def open(
        path: _Path,
        read_only: bool = False,
        progress: _Progress = None,
        vectors: Optional[str] = None,
        encryption: Optional[EncryptionConfig] = None,
    ) -> NusterDB:
        """Opens an existing database with its stored config. Loading and graph builds
        report to ``progress``; Ctrl-C stops them (KeyboardInterrupt), writing nothing.
        ``vectors`` ("memory", "mmap" or "disk", see DatabaseConfig) chooses where the
        index keeps its sealed rows for this open (default "mmap"; an IVF index with
        1-bit codes leaves them in the seal's file with "mmap" and "disk"). An encrypted
        database needs its ``encryption``."""
    @staticmethod
    def simple(path: Optional[_Path], dim: int, use_hnsw: bool = False) -> NusterDB: ...
    @staticmethod
    def optimized_flat(path: Optional[_Path], dim: int) -> NusterDB: ...
    @staticmethod
    def ultra_fast_flat(path: Optional[_Path], dim: int) -> NusterDB: ...
    @staticmethod
    def super_optimized_flat(path: Optional[_Path], dim: int) -> NusterDB: ...
    def __enter__(self) -> NusterDB: ...
    def __exit__(self, *_args: object) -> bool: ...
    def close(self) -> None:
        """Closes the database; a second close is a no-op, other use raises ClosedError."""
    @property
    def closed(self) -> bool: ...
    @property
    def read_only(self) -> bool: ...
    @property
    def path(self) -> Optional[str]: ...
    @property
    def config(self) -> DatabaseConfig: ...
    @property
    def dim(self) -> int:
        """The vector dimension (readable after close)."""
    @property
    def metric(self) -> DistanceMetric:
        """The distance metric (readable after close)."""
    @property
    def index(self) -> str:
        """The index type, "flat" or "hnsw" (readable after close)."""
    @property
    def id_type(self) -> str:
        """The kind of ids, "int" or "str" (readable after close)."""
    def flush(self) -> None:
        """Syncs the write-ahead log (acknowledged writes then survive power loss), and
        seals if enough changed since the last seal (``seal()`` seals now)."""
    def refresh(self) -> None:
        """Catches a read-only handle up with the writer's later writes."""
    def dimension(self) -> int:
        """Same as ``db.dim``; kept for compatibility (ClosedError after close)."""
    def index_type(self) -> str:
        """Same as ``db.index``; kept for compatibility (ClosedError after close)."""
    def is_hnsw(self) -> bool:
        """Same as ``db.index == "hnsw"``; kept for compatibility."""
    def is_flat(self) -> bool:
        """Same as ``db.index == "flat"``; kept for compatibility."""
    def distance_metric(self) -> DistanceMetric:
        """Same as ``db.metric``; kept for compatibility (ClosedError after close)."""
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Any]:
        """Every id in id order, read 1,000 at a time (a cursor; see iter_records)."""
    def count(self, filter: Optional[_Filter] = None) -> int:
        """The number of records ``filter`` allows (all of them without one)."""
    def __contains__(self, id: object, /) -> bool:
        """Whether ``id`` is stored; like a dict, a value that cannot be an id of this
        database is simply not in it."""
    def contains(self, id: _Id) -> bool:
        """Whether ``id`` is stored; an id of the wrong kind raises IdTypeError."""
    def list_ids(self) -> List[Any]:
        """Every id, sorted: ints ascending, strs by their UTF-8 bytes."""
    def stats(self) -> DatabaseStats: ...
    def add(
        self,
        id: _Id,
        vector: _VectorLike,
        metadata: Optional[_MetadataLike] = None,
        document: Optional[str] = None,
    ) -> None:
        """Adds a vector; an existing id raises DuplicateIdError."""
    def upsert(
        self,
        id: _Id,
        vector: _VectorLike,
        metadata: Optional[_MetadataLike] = None,
        document: Optional[str] = None,
    ) -> None:
        """Inserts or replaces a vector; metadata and document replace the stored ones
        when given and are kept otherwise."""
    def update(
        self,
        id: _Id,
        vector: Optional[_VectorLike] = None,
        metadata: Optional[Union[Metadata, Dict[str, Optional[_MetadataValue]]]] = None,
        document: Optional[str] = None,
        merge: bool = True,
    ) -> None:
        """Changes the vector, metadata and/or document of an existing id
        (IdNotFoundError otherwise); what is None is kept. Metadata is merged into the
        stored one (a key given None is removed; tags are added) or, with merge=False,
        replaces it; either way ``created_at`` is kept and ``version`` bumped."""
    def bulk_add(
        self,
        ids: _Ids,
        vectors: Union[Sequence[_VectorLike], npt.NDArray[Any]],
        metadata: Optional[Sequence[Optional[_MetadataLike]]] = None,
        documents: Optional[Sequence[Optional[str]]] = None,
        progress: _Progress = None,
    ) -> int:
        """Adds many vectors in one atomic write. Returns the number added.
        The rows are copied (one memcpy for a float32 C-contiguous (n, dim) array) while
        the GIL is held, and that copy is what is validated, stored and indexed: another
        thread changing the array during the call cannot make them disagree. A bad row
        is named by its index and id; an id given twice raises DuplicateIdError naming
        both rows. Indexing reports to ``progress``; Ctrl-C (or a callback that raises)
        before the write is committed stops the call with nothing stored; one arriving
        while it is committed is absorbed and the call returns normally."""
    def bulk_upsert(
        self,
        ids: _Ids,
        vectors: Union[Sequence[_VectorLike], npt.NDArray[Any]],
        metadata: Optional[Sequence[Optional[_MetadataLike]]] = None,
        documents: Optional[Sequence[Optional[str]]] = None,
        progress: _Progress = None,
    ) -> int:
        """Inserts or replaces many vectors atomically (all or nothing); returns how many
        were written. Metadata and documents replace the stored ones where given (an
        entry of None keeps them); an unchanged vector is not re-indexed. Ctrl-C or a
        raising progress callback stops it with nothing stored while new rows are being
        indexed; replaced vectors are re-linked after the write is committed, and that
        part runs to its end."""
    def remove(self, id: _Id) -> bool:
        """Removes an id; returns whether it was there."""
    def bulk_remove(self, ids: _Ids) -> int:
        """Removes many ids atomically; returns how many were there."""
    def get(self, id: _Id) -> Optional[Vector]:
        """The vector stored for ``id`` (None if absent)."""
    def get_metadata(self, id: _Id) -> Optional[Metadata]:
        """The metadata stored for ``id`` (None if absent)."""
    def get_document(self, id: _Id) -> Optional[str]:
        """The document stored for ``id`` (None if absent or stored without one)."""
    def get_many(
        self,
        ids: Optional[_Ids] = None,
        include: Optional[_Include] = None,
        filter: Optional[_Filter] = None,
        limit: Optional[int] = None,
        offset: int = 0,
        after: Optional[_Id] = None,
    ) -> Dict[str, Any]:
        """Many records in one call: a dict with "ids" and, as ``include`` asks (default
        all of "vector", "metadata", "document"): "vectors" (float32 array of shape
        (m, dim)), "metadatas" (list of Metadata), "documents" (list of str or None).
        ``ids``: those ids in the order asked (absent ones and repeats left out); None:
        every record in id order (ints ascending, strs by their UTF-8 bytes). Then only
        those ``filter`` allows, after the id ``after`` (id order only: pass the last id
        of a page to get the next), skipping ``offset``, at most ``limit`` (ints >= 0)."""
    def iter_records(
        self,
        filter: Optional[_Filter] = None,
        include: Optional[_Include] = None,
        batch_size: int = 1000,
    ) -> Iterator[Record]:
        """Every record ``filter`` allows as a Record, in id order, read ``batch_size``
        at a time with the ``after=`` cursor (memory: one page). An id stored for the
        whole iteration comes exactly once; one added or removed meanwhile may or may
        not. batch_size: an int >= 1 (0 or negative: InvalidArgumentError; bool, float
        or str: TypeError, as for ``limit``)."""
    def iter_pages(
        self,
        filter: Optional[_Filter] = None,
        include: Optional[_Include] = None,
        batch_size: int = 1000,
    ) -> Iterator[Dict[str, Any]]:
        """As iter_records, yielding each page as the dict get_many returns."""
    def delete(self, ids: Optional[_Ids] = None, filter: Optional[_Filter] = None) -> int:
        """Removes atomically the records among ``ids`` and/or those ``filter`` allows;
        returns how many were removed. Give at least one; ``filter={}``, which matches
        every record, is refused (``clear()`` removes all)."""
    def clear(self) -> int:
        """Removes every record atomically; returns how many there were."""
    @overload
    def search(
        self,
        query: _VectorLike,
        k: int = 10,
        filter: Optional[_Filter] = None,
        ef_search: Optional[int] = None,
        include: None = None,
        quantized: Optional[bool] = None,
        nprobe: Optional[int] = None,
        recall: Optional[float] = None,
    ) -> List[Tuple[Any, float]]: ...
    @overload
    def search(
        self,
        query: _VectorLike,
        k: int = 10,
        filter: Optional[_Filter] = None,
        ef_search: Optional[int] = None,
        *,
        include: _Include,
        quantized: Optional[bool] = None,
        nprobe: Optional[int] = None,
        recall: Optional[float] = None,
    ) -> List[SearchHit]:
        """``quantized=False``: an HNSW index walks its graph on the full rows for this
        search instead of its codes (slower, for comparison or for the last bit of
        recall); ``True`` asks for the coded walk and is refused (InvalidArgumentError)
        where the index keeps no codes; None (default): as the index is set.
        ``nprobe``: the lists an IVF index scans for this search (more: slower, higher
        recall; at least the list count: exact); refused for the other index types, as
        ``ef_search`` is for an IVF index. ``recall`` (in (0, 1], instead of
        ``ef_search`` or ``nprobe``): a recall@k target; the database sets ``ef_search``
        (HNSW) or ``nprobe`` (IVF) from recall curves it measures against exact answers,
        per k and per filter selectivity band: first on queries made from its own rows
        (the first search asking waits for it: 1 to 5 s at 56,000 to 100,000 rows), then,
        once 100 searches asked for a target, on a sample of up to 500 of those queries
        (again as their number doubles), and again once a tenth of the rows changed.
        Curves and the sample are saved in the database (a reopen, a follower or a
        restored snapshot uses them, counting the changes made since;
        ``recall_curves`` lists them), and ``DatabaseConfig(recall=...)`` sets a default
        target. An IVF target may also set a probe reach (the lists whose centroid is
        within it of the nearest's are scanned too), so recall moves in fine steps.
        Measured on held-out queries after that, recall@10 landed within 0.015 of 0.9,
        0.95 and 0.99 with HNSW and IVF on the real embeddings and on clustered rows,
        filtered or not (BENCHMARKS.md "Recall targets").
        ``search_params_for`` says what a target sets. A flat index (exact) meets every
        target as it is."""
    def recall_curves(self) -> List[Dict[str, Any]]:
        """The recall curves kept (measured here, or saved earlier and still fresh),
        oldest first: dicts with ``k``, ``band`` (the least share of the rows a filter
        of its band allows; 0.5 covers no filter), ``knob`` (``"ef_search"`` or
        ``"nprobe"``), ``quantized``, ``points`` (``(knob value, recall@k)`` pairs),
        ``steps`` (IVF: the settings a target picks from, ``(nprobe, probe_reach or
        None, recall@k)``, each reaching more recall than any cheaper one;
        empty for HNSW, whose points are interpolated),
        ``from_searches`` (measured on queries searches asked, else on rows moved off
        the data), ``live`` (rows when measured) and ``changed_since`` (records changed
        since; at a tenth of ``live`` it is measured again)."""
    def search_params_for(
        self,
        recall: float,
        k: int = 10,
        filter: Optional[_Filter] = None,
        quantized: Optional[bool] = None,
    ) -> _SearchSetting:
        """What ``search(..., recall=recall)`` sets for k and filter:
        ``{"ef_search": n}`` (HNSW) or ``{"nprobe": n}`` (IVF), with
        ``"probe_reach": r`` where IVF's curve found a reach cheaper (the search also
        scans the lists whose centroid score is within ``r`` of the nearest's: the
        next lists for the queries near their boundary; set by targets only), measuring
        the curve first if needed; ``{}`` on an exact index (flat, or IVF below its
        training size)."""
    @overload
    def batch_search(
        self,
        queries: Union[Sequence[_VectorLike], npt.NDArray[Any]],
        k: int = 10,
        filter: Optional[_Filter] = None,
        ef_search: Optional[int] = None,
        progress: _Progress = None,
        include: None = None,
        quantized: Optional[bool] = None,
        nprobe: Optional[int] = None,
        recall: Optional[float] = None,
    ) -> Tuple[npt.NDArray[Any], npt.NDArray[np.float32]]: ...
    @overload
    def batch_search(
        self,
        queries: Union[Sequence[_VectorLike], npt.NDArray[Any]],
        k: int = 10,
        filter: Optional[_Filter] = None,
        ef_search: Optional[int] = None,
        progress: _Progress = None,
        *,
        include: _Include,
        quantized: Optional[bool] = None,
        nprobe: Optional[int] = None,
        recall: Optional[float] = None,
    ) -> Dict[str, Any]:
        """(ids, distances) of shape (n, min(k, number of stored vectors)), nearest
        first, padded where fewer match (a filter): ids int64 padded with -1 (string
        ids: an object array padded with None), distances float32 padded with inf. A
        huge k allocates nothing k-sized. The queries are copied while the GIL is held.
        Reports to ``progress``; Ctrl-C stops it (KeyboardInterrupt).

        With ``include`` (names among "vector", "metadata", "document") a dict instead:
        "ids" and "distances" (the same arrays) and, as asked, "metadatas" and
        "documents" (n lists of w entries, None for padding) and "vectors" (float32
        (n, w, dim), NaN rows for padding), read under the same lock as the search."""
    def snapshot(self) -> str: ...
    def snapshot_named(self, name: str) -> str: ...
    def snapshot_with_metadata(self, name: str, metadata: _MetadataLike) -> str: ...
    def list_snapshots(self) -> List[Dict[str, Any]]:
        """Oldest first: name, path, created_at, vector_count, auto, metadata. A damaged
        snapshot is left out with a DamagedSnapshotWarning."""
    def restore_snapshot(
        self,
        name: str,
        target_path: Optional[_Path] = None,
        keep_snapshots: Optional[bool] = None,
    ) -> None:
        """With target_path: copies the snapshot to a new database there, which appears
        complete or not at all (an occupied target raises NusterDBIOError, errno.EEXIST);
        keep_snapshots=True copies this database's snapshots into it too (default: not).

        Without target_path: rolls this open database back to the snapshot in place.
        Every snapshot is kept (so keep_snapshots=False raises InvalidArgumentError),
        and the handle then answers from the restored state. A crash at any point
        leaves the database as before or as the snapshot; the next open completes a
        restore that was committed. Raises ReadOnlyError on a follower,
        InvalidArgumentError in memory or for an unknown name, ClosedError,
        CorruptionError for a damaged snapshot — each with nothing changed. Followers
        keep their state until refresh(), which loads the restored one."""
    def delete_snapshot(self, name: str) -> None:
        """Deletes the snapshot, waiting for restores of it in progress."""
    @staticmethod
    def rotate_encryption_key(path: _Path, old: EncryptionConfig, new: EncryptionConfig) -> int:
        """Rotates the master key of the closed encrypted database at path: its data
        key is rewrapped from ``old`` to ``new`` in the key file of the database and of
        each snapshot (no stored value is rewritten); returns how many key files.
        DatabaseLockedError while it is open; EncryptionKeyError if ``old`` does not
        open it. Running it again finishes a rotation that was cut short."""
    @staticmethod
    def verify(path: _Path, encryption: Optional[EncryptionConfig] = None) -> Dict[str, Any]:
        """Checks the database at path without modifying it; a writer may have it open.

        Reads every RocksDB block with its checksum verified, decodes the format
        marker, the config, every record and the change log, reads the seal's segment
        files and the HNSW graph file with their checksums and compares them with the
        stored ids and vectors, loads the database
        as a reader would and compares the loaded ids and vectors with the stored
        ones, and reads every snapshot manifest. Returns a dict: ``path``,
        ``healthy`` (no problem found), ``live_writer``, ``checked`` (the checks that
        completed), ``config`` (``dim``, ``index_type``, ``distance_metric``,
        ``id_type``, or None), ``counts`` (``keys_read``, ``bytes_read``, ``vectors``,
        ``metadata_records``, ``documents``, ``string_ids``, ``log_entries``, ``graph_nodes``,
        ``index_vectors``, ``snapshots``), ``problems`` (dicts of
        ``kind`` and ``detail``) and ``notes``. Raises NusterDBIOError only when there
        is nothing to check: no database at path, or a directory that cannot be read."""
    def compact(self) -> None:
        """Compacts the whole store into its bottom level, giving back the space of
        removed and replaced records; reads and writes go on meanwhile. ReadOnlyError
        on a follower."""
    def seal(self) -> None:
        """Writes the state into segment files now if it changed since the last seal
        (otherwise done after enough changes, by ``flush()`` and at close), so the next
        open reads those files and replays no change. A no-op in memory and on a
        follower; an encrypted database writes only its (encrypted) graph file, and
        its opens read every record."""
    def load_source(self) -> Dict[str, Any]:
        """Where the last open or refresh took the in-memory state from: ``source`` is
        ``"segments"`` (the seal's files, with ``replayed``: the records written since
        the seal, read from the store) or ``"records"`` (every record read from the
        store: no seal yet, or ``refused`` says why the seal's files could not be
        used); after a follower's refresh by the change log, ``"log"`` (with
        ``replayed``: the records written since its previous state)."""
    def graph_load(self) -> Dict[str, Any]:
        """How the HNSW graph was obtained at the last open or refresh: ``state`` is
        ``"not_persisted"`` (flat, in memory, or IVF with its lists read from the seal or
        not trained yet), ``"built"`` (no graph file), ``"loaded"`` (with ``reused``,
        ``inserted``, ``removed`` node counts) or ``"rebuilt"`` (with the ``reason`` the
        file was unusable: the HNSW graph rebuilt, or an IVF index's lists trained
        again; an ``IndexRebuiltWarning`` says so at the open)."""

# The server's entry points (wrapped by nusterdb.server; JSON text in and out).
def _serve(
    data_dir: str,
    host: str,
    port: int,
    no_auth: bool,
    max_body_mb: int,
    timeout_secs: float,
    audit_max_mb: int,
    tls_cert: Optional[str] = None,
    tls_key: Optional[str] = None,
    encryption_key: Optional[bytes] = None,
) -> None: ...
def _keys_create(
    data_dir: str, name: str, scopes: List[str], collections: Optional[List[str]] = None
) -> str: ...
def _keys_list(data_dir: str) -> str: ...
def _keys_revoke(data_dir: str, id: str) -> str: ...
def _audit_verify(data_dir: str) -> str: ...
