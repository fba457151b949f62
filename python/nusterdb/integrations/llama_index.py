"""A LlamaIndex vector store on NusterDB (``pip install nusterdb[llama-index]``).

``NusterDBVectorStore(path=None, **db_options)`` is a
``llama_index.core.vector_stores.types.BasePydanticVectorStore`` with ``stores_text=True``:
``VectorStoreIndex`` keeps the whole node in it, so no separate docstore is needed.

What is stored where, for one node (the NusterDB id is the node id; the database uses
``id_type="str"``):

- the vector: the node's embedding (float32);
- the NusterDB document: the node's text (``node.get_content()`` without metadata);
- NusterDB metadata fields (str/int/float/bool values only, indexed, filterable):

  - every top-level user metadata value that NusterDB can hold as a field: a ``str``
    (valid UTF-8, at most 16 MiB), a ``bool``, an ``int`` in [-2**63, 2**63) or a finite
    ``float``, under its own key, if the key is a valid NusterDB key (non-empty, not
    starting with ``$``) and not one of the reserved names below;
  - ``_node_content``: the node serialised by LlamaIndex's ``node_to_metadata_dict`` —
    the JSON of the whole node (all metadata, relationships, templates, ...) with the
    embedding left out and, for text nodes, the text left out (it is the document);
  - ``_node_type`` (the node's class name), ``_node_id`` (the node id, so queries can be
    restricted to given ids), ``_text_in_document`` (whether the text was taken out of
    the JSON), and ``ref_doc_id``, ``doc_id``, ``document_id``: the node's
    ``ref_doc_id`` (``"None"`` without one), the names LlamaIndex's stores use, so
    ``delete(ref_doc_id)`` and filters on ``doc_id`` work;

- NusterDB tags: ``_value:<key>`` for each user metadata key whose value is present but
  not a field (a list, a dict, an int beyond 64 bits, a non-finite float ...), except
  ``None`` and ``[]``, which count as empty.

Why: a node is rebuilt from ``_node_content`` plus the document with LlamaIndex's own
``metadata_dict_to_node``, so it comes back exactly as LlamaIndex serialises it (JSON
values, whatever their type), while the scalar user metadata is also held as typed fields
so that filters run inside NusterDB on its indexes. A user key that collides with a
reserved name keeps its value in the node JSON (and comes back with the node); filters
on that name see the reserved field.

Filters (``MetadataFilters``) are translated to NusterDB filters:

==========================  ================================================================
LlamaIndex                  NusterDB
==========================  ================================================================
EQ, NE, GT, GTE, LT, LTE    ``{key: {"$eq"|"$ne"|"$gt"|...: value}}``; numbers compare
                            exactly across int/float, strings by code point, a comparison
                            between other types is false (NE true); NE matches nodes
                            without the key
IN, NIN                     ``{key: {"$in"|"$nin": [...]}}``; NIN matches nodes without
                            the key
IS_EMPTY                    key absent, ``None``, ``""`` or ``[]``: ``$not`` of (field
                            exists and ``!= ""``, or tag ``_value:<key>``)
TEXT_MATCH                  substring of a str field (case-sensitive)
TEXT_MATCH_INSENSITIVE      substring after ``str.lower()`` of both
CONTAINS                    the key's value is a list holding the value
ANY, ALL                    the key's value is a list holding any / all of the values
condition AND, OR, NOT      ``$and``, ``$or``, ``$not`` of ``$or`` ("none matches"); nested
                            ``MetadataFilters`` nest the same way
==========================  ================================================================

TEXT_MATCH, TEXT_MATCH_INSENSITIVE, CONTAINS, ANY and ALL have no NusterDB operator: each
such leaf is evaluated in Python over the nodes that have the key (a scan of those
nodes' metadata, on every query that uses it) and replaced by
``{"_node_id": {"$in": [matching ids]}}``, so it nests under AND/OR/NOT like the others.
An empty top-level filter list means no filter; a nested empty list is true for AND and
NOT and false for OR. A filter on a key NusterDB cannot hold (empty or starting with
``$``), a value of the wrong shape (a list for EQ, a scalar for IN, ``None`` for a
comparison) raises ``nusterdb.FilterError``; an operator or condition this module does
not know raises :class:`UnsupportedFilterError` naming it. Nothing is dropped silently.

Similarities reported in ``VectorStoreQueryResult.similarities`` (higher = closer), from
NusterDB's distance d: cosine ``1 - d`` (the cosine similarity), inner_product ``-d``
(the dot product), angular ``1 - d``, euclidean and manhattan ``1 / (1 + d)``.

MMR (``VectorStoreQueryMode.MMR``): the ``mmr_prefetch_k`` nearest candidates (default
``similarity_top_k * mmr_prefetch_factor``, factor 4) are fetched with their vectors, then
chosen greedily by ``λ·sim(query, c) - (1 - λ)·max sim(c, chosen)`` with the same
similarity as above, λ = ``mmr_threshold`` (default 0.5). The similarities returned are the
chosen nodes' similarities to the query, in the order chosen.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from nusterdb import (
    ConfigMismatchError,
    DatabaseConfig,
    DimensionMismatchError,
    FilterError,
    HNSWConfig,
    InvalidArgumentError,
    InvalidVectorError,
    Metadata,
    NusterDB,
    StorageConfiguration,
)
from nusterdb.integrations._options import DATABASE_OPTIONS as _DB_OPTIONS
from nusterdb.integrations._options import HNSW_OPTIONS as _HNSW_OPTIONS
from nusterdb.integrations._options import STORAGE_OPTIONS as _STORAGE_OPTIONS

__all__ = ["NusterDBVectorStore", "UnsupportedFilterError"]

NODE_ID_KEY = "_node_id"
NODE_CONTENT_KEY = "_node_content"
NODE_TYPE_KEY = "_node_type"
TEXT_IN_DOCUMENT_KEY = "_text_in_document"
REF_DOC_KEYS = ("ref_doc_id", "doc_id", "document_id")
RESERVED_KEYS = frozenset(
    (NODE_ID_KEY, NODE_CONTENT_KEY, NODE_TYPE_KEY, TEXT_IN_DOCUMENT_KEY, *REF_DOC_KEYS)
)
# Tag marking a user key whose value is present but held only in the node JSON.
VALUE_TAG_PREFIX = "_value:"

_MAX_KEY_BYTES = 64 * 1024
_MAX_STR_BYTES = 16 * 1024 * 1024
_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1

# The metrics with a similarity mapping (see the module docstring).
_METRICS = ("cosine", "euclidean", "inner_product", "angular", "manhattan")
_METRIC_ALIASES = {
    "l2": "euclidean",
    "l1": "manhattan",
    "ip": "inner_product",
    "dot": "inner_product",
}

_ALL_OPTIONS = ("distance", "index", *_HNSW_OPTIONS, *_STORAGE_OPTIONS, *_DB_OPTIONS)

_QUERY_KWARGS = ("mmr_threshold", "mmr_prefetch_factor", "mmr_prefetch_k", "recall")
_DEFAULT_MMR_THRESHOLD = 0.5
_DEFAULT_MMR_PREFETCH_FACTOR = 4.0

_NusterFilter = Dict[str, Any]
# Matches every stored node / no node (each one has a ``_node_id`` field).
_MATCH_ALL: _NusterFilter = {NODE_ID_KEY: {"$exists": True}}
_MATCH_NONE: _NusterFilter = {NODE_ID_KEY: {"$in": []}}


class UnsupportedFilterError(FilterError, NotImplementedError):
    """A ``MetadataFilters`` operator or condition this store cannot honour (the message
    names it). A ``nusterdb.FilterError`` (so a ``ValueError``) and a
    ``NotImplementedError``."""


def _is_field_key(key: str) -> bool:
    """Whether ``key`` can be a NusterDB metadata key."""
    if not key or key.startswith("$"):
        return False
    try:
        return len(key.encode("utf-8")) <= _MAX_KEY_BYTES
    except UnicodeEncodeError:
        return False


def _is_field_value(value: Any) -> bool:
    """Whether NusterDB can hold ``value`` as a metadata field value."""
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return _I64_MIN <= value <= _I64_MAX
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            return len(value.encode("utf-8")) <= _MAX_STR_BYTES
        except UnicodeEncodeError:
            return False
    return False


def _is_empty_value(value: Any) -> bool:
    """LlamaIndex's IS_EMPTY on a present value: ``None``, ``""`` or ``[]``."""
    return value is None or (isinstance(value, (str, list)) and len(value) == 0)


def _same(a: Any, b: Any) -> bool:
    """Equality with NusterDB's typing: numbers with numbers (a bool is not a number),
    strs with strs, bools with bools."""
    a_num = isinstance(a, (int, float)) and not isinstance(a, bool)
    b_num = isinstance(b, (int, float)) and not isinstance(b, bool)
    if a_num or b_num:
        return a_num and b_num and bool(a == b)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


def _similarity_fn(metric: str) -> Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]:
    """Maps NusterDB distances of ``metric`` to similarities (higher = closer)."""
    if metric in ("cosine", "angular"):
        return lambda d: 1.0 - d
    if metric == "inner_product":
        return lambda d: -d
    return lambda d: 1.0 / (1.0 + d)


def _pairwise_distances(metric: str, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """NusterDB's distance between every pair of rows of ``x`` (for MMR)."""
    if metric in ("cosine", "angular"):
        norms = np.linalg.norm(x, axis=1)
        safe = np.where(norms > 0, norms, 1.0)
        unit = x / safe[:, None]
        cos = np.clip(unit @ unit.T, -1.0, 1.0)
        # A zero vector has no direction: NusterDB gives it cosine 0 to everything.
        cos[norms == 0, :] = 0.0
        cos[:, norms == 0] = 0.0
        if metric == "cosine":
            return np.asarray(1.0 - cos, dtype=np.float64)
        return np.asarray(np.arccos(cos) / math.pi, dtype=np.float64)
    if metric == "inner_product":
        return np.asarray(-(x @ x.T), dtype=np.float64)
    diff = x[:, None, :] - x[None, :, :]
    if metric == "manhattan":
        return np.asarray(np.abs(diff).sum(axis=2), dtype=np.float64)
    return np.asarray(np.sqrt((diff * diff).sum(axis=2)), dtype=np.float64)


def mmr_select(
    query_similarities: npt.NDArray[np.float64],
    pairwise_similarities: npt.NDArray[np.float64],
    k: int,
    threshold: float,
) -> List[int]:
    """Greedy maximal marginal relevance: indices of the chosen candidates, in order.

    Each step takes the candidate maximising ``threshold * query_similarity -
    (1 - threshold) * (max similarity to those already chosen)`` (0 before the first
    choice); ties go to the lower index (the nearer candidate).
    """
    n = len(query_similarities)
    chosen: List[int] = []
    redundancy = np.full(n, -np.inf)
    available = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        penalty = np.where(np.isfinite(redundancy), redundancy, 0.0) if chosen else 0.0
        scores = threshold * query_similarities - (1.0 - threshold) * penalty
        scores = np.where(available, scores, -np.inf)
        best = int(np.argmax(scores))
        chosen.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, pairwise_similarities[best])
    return chosen


class NusterDBVectorStore(BasePydanticVectorStore):
    """LlamaIndex vector store on a NusterDB database (string ids = node ids).

    ``path=None`` (or ``":memory:"``) keeps the database in memory; a path that holds a
    database reopens it (it must be a string-id database); otherwise the database is
    created there on the first ``add``, with the dimension of the first nodes.

    ``db_options`` (each maps to a NusterDB configuration argument; any other name raises
    ``TypeError``):

    - ``distance``: ``"cosine"`` (default), ``"euclidean"``, ``"inner_product"``,
      ``"angular"``, ``"manhattan"`` → ``DatabaseConfig(distance_metric=...)``;
    - ``index``: ``"flat"`` (exact, default), ``"hnsw"`` or ``"ivf"`` →
      ``DatabaseConfig(index_type=...)``; with ``"ivf"``, ``nlist`` and ``nprobe`` →
      ``DatabaseConfig``;
    - HNSW (only with ``index="hnsw"``): ``max_nb_connection``, ``max_nb_elements``,
      ``max_layer``, ``ef_construction``, ``ef_search``, ``use_heuristic`` →
      ``HNSWConfig``;
    - storage: ``cache_size_mb``, ``write_buffer_size_mb``, ``max_write_buffer_number``,
      ``compression``, ``enable_statistics``, ``enable_bloom_filter``,
      ``bloom_filter_bits_per_key``, ``max_background_jobs``, ``sync_writes`` →
      ``StorageConfiguration``;
    - ``auto_snapshot``, ``snapshot_interval_secs``, ``vectors``, ``quantization``,
      ``encryption`` (an ``EncryptionConfig``, needed at every open of an encrypted
      database), ``recall`` (the default recall@k target of a query) → ``DatabaseConfig``.

    On reopen, options given must agree with the stored structural ones (distance,
    index, ``max_nb_connection``, ``max_layer``: else ``ConfigMismatchError``); the
    others are applied, as ``NusterDB(path, config)`` does.
    """

    stores_text: bool = True

    _path: Optional[str] = PrivateAttr(default=None)
    _options: Dict[str, Any] = PrivateAttr(default_factory=dict)
    _db: Optional[NusterDB] = PrivateAttr(default=None)

    def __init__(self, path: Optional[Union[str, os.PathLike[str]]] = None, **db_options: Any):
        unknown = sorted(set(db_options) - set(_ALL_OPTIONS))
        if unknown:
            raise TypeError(
                f"NusterDBVectorStore got unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(_ALL_OPTIONS)}"
            )
        options = dict(db_options)
        if "distance" in options:
            options["distance"] = _metric_name(options["distance"])
        if "index" in options:
            index = options["index"]
            if index not in ("flat", "hnsw", "ivf"):
                raise InvalidArgumentError(f"index must be 'flat', 'hnsw' or 'ivf', got {index!r}")
        super().__init__(stores_text=True)
        self._options = options
        self._path = None if path is None or os.fspath(path) == ":memory:" else os.fspath(path)
        if self._path is not None and _exists(self._path):
            # HNSW options are checked against the stored index there.
            self._db = self._open(self._path)
        else:
            hnsw_given = [name for name in _HNSW_OPTIONS if name in options]
            if hnsw_given and options.get("index") != "hnsw":
                raise InvalidArgumentError(
                    f"HNSW option(s) {', '.join(hnsw_given)} need index='hnsw'"
                )

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex serializes this store under: ``"NusterDBVectorStore"``."""
        return "NusterDBVectorStore"

    @property
    def client(self) -> Optional[NusterDB]:
        """The NusterDB handle (``None`` until the first ``add`` creates the database)."""
        return self._db

    def close(self) -> None:
        """Closes the database (another handle or process can then open it)."""
        if self._db is not None:
            self._db.close()

    # --- opening ---------------------------------------------------------------------

    def _config(self, dim: int, stored: Optional[DatabaseConfig] = None) -> DatabaseConfig:
        options = self._options
        index = options.get("index", stored.index_type if stored is not None else "flat")
        distance = options.get(
            "distance", stored.distance_metric.name if stored is not None else "cosine"
        )
        hnsw_args = {name: options[name] for name in _HNSW_OPTIONS if name in options}
        if hnsw_args and index != "hnsw":
            raise InvalidArgumentError(
                f"HNSW option(s) {', '.join(sorted(hnsw_args))} need index='hnsw' "
                f"(the database's index is {index!r})"
            )
        storage_args = {name: options[name] for name in _STORAGE_OPTIONS if name in options}
        db_args = {name: options[name] for name in _DB_OPTIONS if name in options}
        return DatabaseConfig(
            dim,
            index_type=index,
            distance_metric=distance,
            hnsw_config=HNSWConfig(**hnsw_args) if hnsw_args else None,
            storage_config=StorageConfiguration(**storage_args) if storage_args else None,
            id_type="str",
            **db_args,
        )

    def _open(self, path: str) -> NusterDB:
        db = NusterDB.open(path, encryption=self._options.get("encryption"))
        try:
            stored = db.config
            if stored.id_type != "str":
                raise ConfigMismatchError(
                    f"{path} is a NusterDB database with {stored.id_type!r} ids; "
                    "NusterDBVectorStore needs one with string ids (id_type='str')"
                )
            _metric_name(stored.distance_metric.name)  # one with a similarity mapping
            if not self._options:
                return db
            config = self._config(stored.dim, stored)
        except BaseException:
            db.close()
            raise
        # Reopen with the options applied (runtime ones) or checked (structural ones).
        db.close()
        return NusterDB(path, config)

    def _create(self, dim: int) -> NusterDB:
        return NusterDB(self._path, self._config(dim))

    # --- writing ---------------------------------------------------------------------

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> List[str]:
        """Stores the nodes (embedding, text, metadata); an existing node id is replaced.

        New ids go in one atomic write; replacements follow one by one. A node repeated
        in ``nodes`` is stored as its last occurrence.
        """
        if add_kwargs:
            raise TypeError(f"add() got unexpected keyword argument(s) {sorted(add_kwargs)}")
        if not nodes:
            return []
        latest: Dict[str, Tuple[List[float], Metadata, str]] = {}
        for node in nodes:
            embedding = node.get_embedding()  # ValueError when the node has none
            metadata, document = _node_record(node)
            latest[node.node_id] = (embedding, metadata, document)
        # Checked before writing anything, since replacements are written one by one.
        dim = self._db.dimension() if self._db is not None else len(nodes[0].get_embedding())
        for node_id, (embedding, _, _) in latest.items():
            if len(embedding) != dim:
                raise DimensionMismatchError(
                    f"node {node_id!r} has a {len(embedding)}-dimensional embedding; "
                    f"the store's dimension is {dim}"
                )
            if not all(math.isfinite(x) for x in embedding):
                raise InvalidVectorError(f"node {node_id!r} has a non-finite embedding value")
        if self._db is None:
            self._db = self._create(dim)
        db = self._db
        new_ids = [node_id for node_id in latest if node_id not in db]
        old_ids = [node_id for node_id in latest if node_id in db]
        if new_ids:
            db.bulk_add(
                new_ids,
                np.asarray([latest[i][0] for i in new_ids], dtype=np.float32),
                metadata=[latest[i][1] for i in new_ids],
                documents=[latest[i][2] for i in new_ids],
            )
        for node_id in old_ids:
            embedding, metadata, document = latest[node_id]
            db.upsert(node_id, embedding, metadata=metadata, document=document)
        return [node.node_id for node in nodes]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Deletes every node whose ``ref_doc_id`` is ``ref_doc_id``."""
        if delete_kwargs:
            raise TypeError(f"delete() got unexpected keyword argument(s) {sorted(delete_kwargs)}")
        if self._db is None:
            return
        ids = self._matching_ids({"ref_doc_id": ref_doc_id})
        if ids:
            self._db.bulk_remove(ids)

    def delete_nodes(
        self,
        node_ids: Optional[List[str]] = None,
        filters: Optional[MetadataFilters] = None,
        **delete_kwargs: Any,
    ) -> None:
        """Deletes the nodes among ``node_ids`` (all when ``None``, none when empty) that
        match ``filters`` (all when ``None``): with neither, every node, as
        ``SimpleVectorStore`` does."""
        if delete_kwargs:
            raise TypeError(
                f"delete_nodes() got unexpected keyword argument(s) {sorted(delete_kwargs)}"
            )
        if self._db is None:
            return
        ids = self._select_ids(node_ids, filters)
        if ids:
            self._db.bulk_remove(ids)

    def clear(self) -> None:
        """Deletes every node (the database and its dimension stay)."""
        if self._db is not None:
            ids = self._db.list_ids()
            if ids:
                self._db.bulk_remove(ids)

    # --- reading ---------------------------------------------------------------------

    def get_nodes(
        self,
        node_ids: Optional[List[str]] = None,
        filters: Optional[MetadataFilters] = None,
    ) -> List[BaseNode]:
        """The stored nodes (with their embeddings) among ``node_ids`` (all when
        ``None``, else in the order given, absent ones left out) that match ``filters``."""
        if self._db is None:
            return []
        ids = self._select_ids(node_ids, filters)
        if not ids:
            return []
        got = self._db.get_many(ids, include=("vector", "metadata", "document"))
        vectors = got["vectors"]
        return [
            _record_to_node(metadata.to_dict(), document, vectors[i])
            for i, (metadata, document) in enumerate(zip(got["metadatas"], got["documents"]))
        ]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The ``similarity_top_k`` nearest nodes to ``query.query_embedding`` among those
        matching ``query.filters``, ``query.node_ids`` and ``query.doc_ids`` (an empty
        list of ids restricts nothing, as LlamaIndex's retriever expects); MMR in
        ``VectorStoreQueryMode.MMR`` (keyword arguments ``mmr_threshold``,
        ``mmr_prefetch_factor``, ``mmr_prefetch_k``). ``recall`` (a recall@k target in
        (0, 1]; a retriever passes it through ``vector_store_kwargs``): the database
        chooses ``ef_search`` / ``nprobe`` for it (``NusterDB.search``); without it the
        database's default target, if it has one, else its index's default."""
        unknown = sorted(set(kwargs) - set(_QUERY_KWARGS))
        if unknown:
            raise TypeError(
                f"query() got unexpected keyword argument(s) {', '.join(unknown)}; "
                f"known: {', '.join(_QUERY_KWARGS)}"
            )
        if query.mode not in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR):
            raise NotImplementedError(
                f"NusterDBVectorStore does not support query mode {query.mode.value!r} "
                "(supported: 'default', 'mmr')"
            )
        if query.query_embedding is None:
            raise ValueError("NusterDBVectorStore.query needs query.query_embedding")
        k = query.similarity_top_k
        if k < 1:
            raise InvalidArgumentError(f"similarity_top_k must be at least 1, got {k}")
        mmr = query.mode == VectorStoreQueryMode.MMR
        threshold = _mmr_threshold(query, kwargs) if mmr else 0.0
        nuster_filter = self._query_filter(query)
        db = self._db
        if db is None or len(db) == 0:
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        metric = db.config.distance_metric.name
        to_similarity = _similarity_fn(metric)
        q = np.asarray(query.query_embedding, dtype=np.float32)
        include = ["metadata", "document"]
        fetch = k
        if mmr:
            include.append("vector")
            fetch = _mmr_fetch(k, kwargs)
        recall = kwargs.get("recall")
        hits = db.search(q, k=fetch, filter=nuster_filter, include=include, recall=recall)
        distances = np.asarray([hit.distance for hit in hits], dtype=np.float64)
        similarities = to_similarity(distances)
        order = list(range(len(hits)))
        if mmr and hits:
            vectors = np.asarray([hit.vector for hit in hits], dtype=np.float64)
            pairwise = to_similarity(_pairwise_distances(metric, vectors))
            order = mmr_select(similarities, pairwise, k, threshold)
        nodes: List[BaseNode] = []
        ids: List[str] = []
        sims: List[float] = []
        for i in order:
            hit = hits[i]
            assert hit.metadata is not None  # asked for in include
            nodes.append(_record_to_node(hit.metadata.to_dict(), hit.document, None))
            ids.append(str(hit.id))
            sims.append(float(similarities[i]))
        return VectorStoreQueryResult(nodes=nodes, similarities=sims, ids=ids)

    # --- filters ---------------------------------------------------------------------

    def to_nusterdb_filter(self, filters: Optional[MetadataFilters]) -> Optional[_NusterFilter]:
        """The NusterDB filter equivalent to ``filters`` on this store's nodes (``None``
        for no filter). Leaves evaluated in Python (see the module docstring) become id
        lists of the nodes stored now."""
        if filters is None or not filters.filters:
            return None
        return self._translate(filters)

    def _translate(self, filters: MetadataFilters) -> _NusterFilter:
        parts: List[_NusterFilter] = []
        for item in filters.filters:
            if isinstance(item, MetadataFilters):
                parts.append(self._translate(item))
            elif isinstance(item, MetadataFilter):
                parts.append(self._leaf(item))
            else:
                raise UnsupportedFilterError(
                    f"NusterDBVectorStore cannot use a filter of type {type(item).__name__}"
                )
        condition = filters.condition or FilterCondition.AND
        if condition == FilterCondition.AND:
            if not parts:
                return _MATCH_ALL
            return parts[0] if len(parts) == 1 else {"$and": parts}
        if condition == FilterCondition.OR:
            if not parts:
                return _MATCH_NONE
            return parts[0] if len(parts) == 1 else {"$or": parts}
        if condition == getattr(FilterCondition, "NOT", None):
            # LlamaIndex's NOT: none of the filters matches.
            if not parts:
                return _MATCH_ALL
            return {"$not": parts[0] if len(parts) == 1 else {"$or": parts}}
        raise UnsupportedFilterError(
            f"NusterDBVectorStore does not support filter condition {_name(condition)!r}"
        )

    def _leaf(self, f: MetadataFilter) -> _NusterFilter:
        key, op, value = f.key, f.operator, f.value
        if not _is_field_key(key):
            raise FilterError(
                f"filter key {key!r} cannot be a NusterDB metadata key "
                "(keys are non-empty, valid UTF-8 and do not start with '$')"
            )
        if op == FilterOperator.IS_EMPTY:
            present: List[_NusterFilter] = [{key: {"$exists": True, "$ne": ""}}]
            if key not in RESERVED_KEYS:
                present.append({"$tags": {"$any": [VALUE_TAG_PREFIX + key]}})
            return {"$not": {"$or": present}}
        native = _NATIVE_OPS.get(op)
        if native is not None:
            if native in ("$in", "$nin"):
                if not isinstance(value, list):
                    raise FilterError(
                        f"filter on {key!r}: operator {_name(op)!r} needs a list value, "
                        f"got {value!r}"
                    )
            elif value is None or isinstance(value, list):
                raise FilterError(
                    f"filter on {key!r}: operator {_name(op)!r} needs a str, int or float "
                    f"value, got {value!r}"
                )
            return {key: {native: value}}
        if op in (FilterOperator.TEXT_MATCH, FilterOperator.TEXT_MATCH_INSENSITIVE):
            if not isinstance(value, str):
                raise FilterError(
                    f"filter on {key!r}: operator {_name(op)!r} needs a str value, got {value!r}"
                )
            insensitive = op == FilterOperator.TEXT_MATCH_INSENSITIVE
            needle = value.lower() if insensitive else value

            def text_match(stored: Any) -> bool:
                if not isinstance(stored, str):
                    return False
                return needle in (stored.lower() if insensitive else stored)

            return self._python_leaf({key: {"$exists": True}}, key, text_match, from_json=False)
        if op == FilterOperator.CONTAINS:
            if value is None or isinstance(value, list):
                raise FilterError(
                    f"filter on {key!r}: operator 'contains' needs a str, int or float "
                    f"value, got {value!r}"
                )
            wanted = value
            return self._python_leaf(
                {"$tags": {"$any": [VALUE_TAG_PREFIX + key]}},
                key,
                lambda stored: isinstance(stored, list) and any(_same(x, wanted) for x in stored),
                from_json=True,
            )
        if op in (FilterOperator.ANY, FilterOperator.ALL):
            if not isinstance(value, list) or not value:
                raise FilterError(
                    f"filter on {key!r}: operator {_name(op)!r} needs a non-empty list value, "
                    f"got {value!r}"
                )
            values = list(value)
            combine = any if op == FilterOperator.ANY else all

            def list_match(stored: Any) -> bool:
                if not isinstance(stored, list):
                    return False
                return combine(any(_same(x, v) for x in stored) for v in values)

            return self._python_leaf(
                {"$tags": {"$any": [VALUE_TAG_PREFIX + key]}}, key, list_match, from_json=True
            )
        raise UnsupportedFilterError(
            f"NusterDBVectorStore does not support filter operator {_name(op)!r} (on {key!r})"
        )

    def _python_leaf(
        self,
        candidates: _NusterFilter,
        key: str,
        predicate: Callable[[Any], bool],
        from_json: bool,
    ) -> _NusterFilter:
        """An id-list filter of the nodes among ``candidates`` whose value for ``key``
        satisfies ``predicate`` (the field, or the value in the node JSON)."""
        matching: List[str] = []
        for node_id, fields in self._scan(candidates):
            if from_json:
                content = fields.get(NODE_CONTENT_KEY)
                if not isinstance(content, str):
                    continue
                stored = json.loads(content).get("metadata", {}).get(key)
            else:
                stored = fields.get(key)
            if predicate(stored):
                matching.append(node_id)
        return {NODE_ID_KEY: {"$in": matching}}

    def _query_filter(self, query: VectorStoreQuery) -> Optional[_NusterFilter]:
        parts: List[_NusterFilter] = []
        translated = self.to_nusterdb_filter(query.filters)
        if translated is not None:
            parts.append(translated)
        # An empty list restricts nothing: VectorIndexRetriever passes node_ids=[] for
        # stores that keep the nodes themselves (as Chroma's and Qdrant's stores read it).
        if query.node_ids:
            parts.append({NODE_ID_KEY: {"$in": list(query.node_ids)}})
        if query.doc_ids:
            parts.append({"ref_doc_id": {"$in": list(query.doc_ids)}})
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"$and": parts}

    def _scan(self, nuster_filter: Optional[_NusterFilter]) -> List[Tuple[str, Dict[str, Any]]]:
        """(id, fields) of every stored node matching ``nuster_filter``."""
        db = self._db
        if db is None or len(db) == 0:
            return []
        # search returns min(k, matches) hits, so k = len(db) lists every match, with
        # either index; the probe vector only orders them.
        probe = np.ones(db.dimension(), dtype=np.float32)
        hits = db.search(probe, k=len(db), filter=nuster_filter, include=["metadata"])
        out: List[Tuple[str, Dict[str, Any]]] = []
        for hit in hits:
            assert hit.metadata is not None  # asked for in include
            out.append((str(hit.id), hit.metadata.to_dict()))
        return out

    def _matching_ids(self, nuster_filter: Optional[_NusterFilter]) -> List[str]:
        db = self._db
        if db is None:
            return []
        if nuster_filter is None:
            return [str(i) for i in db.list_ids()]
        return sorted((node_id for node_id, _ in self._scan(nuster_filter)), key=_utf8)

    def _select_ids(
        self, node_ids: Optional[List[str]], filters: Optional[MetadataFilters]
    ) -> List[str]:
        """Stored ids among ``node_ids`` (in that order, once each; all when ``None``)
        matching ``filters``."""
        db = self._db
        if db is None:
            return []
        translated = self.to_nusterdb_filter(filters)
        if node_ids is None:
            return self._matching_ids(translated)
        allowed = None if translated is None else set(self._matching_ids(translated))
        seen = set()
        out: List[str] = []
        for node_id in node_ids:
            if node_id in seen or (allowed is not None and node_id not in allowed):
                continue
            seen.add(node_id)
            if node_id in db:
                out.append(node_id)
        return out


_NATIVE_OPS: Dict[Any, str] = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
}


def _name(enum_or_value: Any) -> str:
    return str(getattr(enum_or_value, "value", enum_or_value))


def _utf8(node_id: str) -> bytes:
    return node_id.encode("utf-8")


def _exists(path: Union[str, os.PathLike[str]]) -> bool:
    """Whether ``path`` holds something to open (an empty directory does not)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        return False
    return not (os.path.isdir(path) and not os.listdir(path))


def _metric_name(name: Any) -> str:
    if not isinstance(name, str):
        raise InvalidArgumentError(f"distance must be a str, got {name!r}")
    canonical = _METRIC_ALIASES.get(name.lower(), name.lower())
    if canonical not in _METRICS:
        raise InvalidArgumentError(
            f"NusterDBVectorStore supports the distances {', '.join(_METRICS)}, got {name!r}"
        )
    return canonical


def _mmr_threshold(query: VectorStoreQuery, kwargs: Dict[str, Any]) -> float:
    from_kwargs = kwargs.get("mmr_threshold")
    if (
        from_kwargs is not None
        and query.mmr_threshold is not None
        and from_kwargs != query.mmr_threshold
    ):
        raise ValueError(
            f"mmr_threshold given twice with different values: {query.mmr_threshold} "
            f"(query) and {from_kwargs} (keyword)"
        )
    value = query.mmr_threshold if query.mmr_threshold is not None else from_kwargs
    if value is None:
        return _DEFAULT_MMR_THRESHOLD
    threshold = float(value)
    if not 0.0 <= threshold <= 1.0:
        raise InvalidArgumentError(f"mmr_threshold must be in [0, 1], got {value!r}")
    return threshold


def _mmr_fetch(k: int, kwargs: Dict[str, Any]) -> int:
    prefetch_k = kwargs.get("mmr_prefetch_k")
    if prefetch_k is not None:
        if "mmr_prefetch_factor" in kwargs:
            raise ValueError("give mmr_prefetch_k or mmr_prefetch_factor, not both")
        if not isinstance(prefetch_k, int) or prefetch_k < k:
            raise InvalidArgumentError(
                f"mmr_prefetch_k must be an int >= similarity_top_k ({k}), got {prefetch_k!r}"
            )
        return prefetch_k
    factor = kwargs.get("mmr_prefetch_factor", _DEFAULT_MMR_PREFETCH_FACTOR)
    if not isinstance(factor, (int, float)) or not factor >= 1.0 or not math.isfinite(factor):
        raise InvalidArgumentError(f"mmr_prefetch_factor must be >= 1, got {factor!r}")
    return max(k, math.ceil(k * factor))


def _node_record(node: BaseNode) -> Tuple[Metadata, str]:
    """(NusterDB metadata, document) for ``node`` (see the module docstring)."""
    text_in_document = isinstance(node, TextNode)
    document = node.get_content(metadata_mode=MetadataMode.NONE)
    flat = node_to_metadata_dict(node, remove_text=text_in_document, flat_metadata=False)
    content = flat[NODE_CONTENT_KEY]
    try:
        content.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate somewhere in the node: NusterDB stores UTF-8, so escape it in
        # the JSON (json.loads restores it).
        content = json.dumps(json.loads(content), ensure_ascii=True)
    user_metadata = json.loads(content).get("metadata") or {}
    fields: Dict[str, Any] = {}
    tags: List[str] = []
    for key, value in user_metadata.items():
        if key in RESERVED_KEYS or not _is_field_key(key):
            continue
        if _is_field_value(value):
            fields[key] = value
        elif not _is_empty_value(value):
            tags.append(VALUE_TAG_PREFIX + key)
    ref_doc_id = node.ref_doc_id or "None"
    fields.update(
        {
            NODE_ID_KEY: node.node_id,
            NODE_CONTENT_KEY: content,
            NODE_TYPE_KEY: flat[NODE_TYPE_KEY],
            TEXT_IN_DOCUMENT_KEY: text_in_document,
        }
    )
    for name in REF_DOC_KEYS:
        fields[name] = ref_doc_id
    return Metadata.with_data(fields, tags=tags), document


def _record_to_node(
    fields: Dict[str, Any],
    document: Optional[str],
    vector: Optional[npt.NDArray[np.float32]],
) -> BaseNode:
    """Rebuilds the node stored as ``fields`` + ``document`` (+ ``vector``)."""
    text = document if fields.get(TEXT_IN_DOCUMENT_KEY) is True else None
    node = metadata_dict_to_node(
        {NODE_CONTENT_KEY: fields[NODE_CONTENT_KEY], NODE_TYPE_KEY: fields.get(NODE_TYPE_KEY)},
        text=text,
    )
    if vector is not None:
        node.embedding = [float(x) for x in vector]
    return node
