"""NusterDB as a LangChain vector store: ``NusterDBVectorStore``.

Install with ``pip install nusterdb[langchain]``; ``import nusterdb`` alone never imports
LangChain.

Storage layout
--------------
The store keeps one NusterDB database with string ids (``id_type="str"``). Each LangChain
``Document`` is one entry: its id, the embedding of its text, and

* the **document slot** holds a JSON envelope
  ``{"nusterdb.langchain": 1, "page_content": <text>, "metadata": <metadata>}``: the text
  and the *exact* metadata. Python's JSON keeps ``int``, ``float`` (shortest round-trip
  repr), ``bool``, ``None``, ``str``, lists and nested dicts apart, so what comes back is
  equal, type for type, to what went in. Reads build the ``Document`` from the envelope
  alone, so no internal key can ever appear in the metadata and every user key (``id``,
  ``text``, ``nusterdb.langchain``, anything) belongs to the user.
* the **metadata fields** hold a copy of the top-level scalar values (``str``, ``int``,
  ``float``, ``bool``) so that ``filter=`` (NusterDB's filter language, a dict such as
  ``{"year": {"$gte": 2020}}``) can select on them. Items NusterDB fields cannot hold —
  ``None``, lists, dicts, an empty key, a key starting with ``$`` (reserved for filter
  operators), a str with a lone surrogate — are kept in the envelope only, so they round-trip
  but cannot be filtered on. The copy is never read back, so it cannot change what a reader
  sees.

Metadata must be JSON data of exactly these types: dict (str keys), list, str, int, float,
bool, None. Anything else (a tuple, a set, a numpy scalar, a non-str dict key) raises
``TypeError``; a non-finite float or an ``int`` outside the signed 64-bit range (NusterDB
fields are 64-bit) raises ``nusterdb.InvalidArgumentError`` (a ``ValueError``). Bad input
(metadata, ids, embeddings) raises before anything is written.

Entries written with the plain NusterDB API (a document that is not an envelope) read back
as ``page_content`` = their document (``""`` if none) and ``metadata`` = their fields.

Scores
------
``similarity_search_with_score`` returns NusterDB's distance (smaller is closer).
``similarity_search_with_relevance_scores`` maps it to [0, 1], 1 the most relevant:

=============== ============================== ============================================
metric          distance ``d``                 relevance
=============== ============================== ============================================
cosine          1 - cos (0..2)                 clip(1 - d, 0, 1) = max(cos, 0)
euclidean       L2 distance                    clip(1 - d/√2, 0, 1): for unit vectors
                                               d² = 2 - 2·cos, so this is 0 exactly when
                                               cos ≤ 0, as for cosine
inner_product   -dot                           clip(-d, 0, 1) = clip(dot, 0, 1): the cosine
                                               for unit vectors
angular         arccos(cos)/π (0..1)           1 - d
manhattan       L1 distance                    1 / (1 + d)
=============== ============================== ============================================

MMR
---
``max_marginal_relevance_search`` fetches the ``fetch_k`` nearest entries under the store's
metric (with the filter), with their stored vectors, and picks ``k`` of them by maximal
marginal relevance computed with numpy on cosine similarity (as LangChain's own helper
does): each step takes the candidate maximising
``lambda_mult · sim(query, c) - (1 - lambda_mult) · max sim(c, chosen)``.

Search knobs
------------
Every search method takes ``ef_search`` (HNSW) and ``recall`` (a recall@k target in
(0, 1]: the database chooses ``ef_search`` or ``nprobe`` from recall curves it measures
against exact answers; see ``NusterDB.search``), and so does ``as_retriever`` through
``search_kwargs={"recall": 0.95}``. The store's ``recall=`` option sets the database's
default target for searches that name neither.
"""

from __future__ import annotations

import json
import math
import os
import threading
import uuid
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
    cast,
)

import numpy as np
import numpy.typing as npt

from nusterdb import (
    ConfigMismatchError,
    DatabaseConfig,
    DimensionMismatchError,
    DistanceMetric,
    DuplicateIdError,
    HNSWConfig,
    InvalidArgumentError,
    InvalidVectorError,
    Metadata,
    NusterDB,
    StorageConfiguration,
)
from nusterdb.integrations._options import DATABASE_OPTIONS as _DATABASE_OPTIONS
from nusterdb.integrations._options import HNSW_OPTIONS as _HNSW_OPTIONS
from nusterdb.integrations._options import STORAGE_OPTIONS as _STORAGE_OPTIONS

try:
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import VectorStore
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "nusterdb.integrations.langchain needs langchain-core: pip install 'nusterdb[langchain]'"
    ) from exc

if TYPE_CHECKING:
    from nusterdb._core import SearchHit

__all__ = ["NusterDBVectorStore"]

_VST = TypeVar("_VST", bound="NusterDBVectorStore")
_PathLike = Union[str, "os.PathLike[str]"]

# The envelope's marker key and format version (see the module docstring).
_MARKER = "nusterdb.langchain"
_FORMAT = 1
_ENVELOPE_KEYS = frozenset((_MARKER, "page_content", "metadata"))

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1

# Keyword options of the constructor, by the config object they go to.

_SUPPORTED_METRICS = ("cosine", "euclidean", "inner_product", "angular", "manhattan")


# --------------------------------------------------------------------------- scores


def _clip01(x: float) -> float:
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x


def _cosine_relevance(distance: float) -> float:
    return _clip01(1.0 - distance)


def _euclidean_relevance(distance: float) -> float:
    return _clip01(1.0 - distance / math.sqrt(2.0))


def _inner_product_relevance(distance: float) -> float:
    return _clip01(-distance)


def _angular_relevance(distance: float) -> float:
    return _clip01(1.0 - distance)


def _manhattan_relevance(distance: float) -> float:
    return 1.0 / (1.0 + max(distance, 0.0))


_RELEVANCE: Dict[str, Callable[[float], float]] = {
    "cosine": _cosine_relevance,
    "euclidean": _euclidean_relevance,
    "inner_product": _inner_product_relevance,
    "angular": _angular_relevance,
    "manhattan": _manhattan_relevance,
}


# ------------------------------------------------------------------------- metadata


def _check_json(value: object, where: str) -> None:
    """Raises unless ``value`` is JSON data that ``json`` round-trips to an equal value of
    the same types (see the module docstring). Exact types: a subclass (an IntEnum, a
    tuple) would come back as its base type."""
    t = type(value)
    if value is None or t is bool or t is str:
        return
    if t is int:
        if not _I64_MIN <= cast(int, value) <= _I64_MAX:
            raise InvalidArgumentError(
                f"metadata {where or 'value'}: the integer {value} is outside the signed "
                "64-bit range"
            )
        return
    if t is float:
        if not math.isfinite(cast(float, value)):
            raise InvalidArgumentError(
                f"metadata {where or 'value'}: {value!r} is not a finite float (not JSON data)"
            )
        return
    if t is list:
        for i, item in enumerate(cast(List[object], value)):
            _check_json(item, f"{where}[{i}]")
        return
    if t is dict:
        for key, item in cast(Dict[object, object], value).items():
            if type(key) is not str:
                raise TypeError(
                    f"metadata {where or 'dict'}: the key {key!r} is a {type(key).__name__}; "
                    "JSON object keys are str"
                )
            _check_json(item, f"{where}[{key!r}]")
        return
    raise TypeError(
        f"metadata {where or 'value'}: a {t.__module__}.{t.__qualname__} is not JSON data "
        "(allowed: None, bool, int, float, str, list, dict with str keys)"
    )


def _utf8_ok(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _field_eligible(key: str, value: object) -> bool:
    """Whether a top-level metadata item can also be a NusterDB field (filterable)."""
    if not key or key.startswith("$") or not _utf8_ok(key):
        return False
    t = type(value)
    if t is str:
        return _utf8_ok(cast(str, value))
    # int range and float finiteness are checked by _check_json before this is asked.
    return t is bool or t is int or t is float


def _encode(page_content: str, metadata: Mapping[str, Any]) -> Tuple[Metadata, str]:
    """The NusterDB fields and the document envelope of one LangChain document."""
    if type(page_content) is not str:
        raise TypeError(f"page_content must be a str, got {type(page_content).__name__}")
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    meta = dict(metadata)
    _check_json(meta, "")
    fields = {k: v for k, v in meta.items() if _field_eligible(k, v)}
    envelope = {_MARKER: _FORMAT, "page_content": page_content, "metadata": meta}
    text = json.dumps(envelope, ensure_ascii=False, allow_nan=False)
    if not _utf8_ok(text):
        # A lone surrogate somewhere: escaped as \\udXXX, it reads back the same.
        text = json.dumps(envelope, ensure_ascii=True, allow_nan=False)
    return Metadata.with_data(fields), text


def _str_id(value: object) -> str:
    # The store's database has string ids (checked when it is opened).
    if not isinstance(value, str):
        raise TypeError(f"expected a str id from the database, got {value!r}")
    return value


def _decode(doc_id: str, document: Optional[str], metadata: Optional[Metadata]) -> Document:
    """The ``Document`` of one stored entry (the inverse of ``_encode``)."""
    envelope: Any = None
    if document is not None and document.startswith("{"):
        try:
            envelope = json.loads(document)
        except ValueError:
            envelope = None
    if isinstance(envelope, dict) and envelope.keys() == _ENVELOPE_KEYS:
        if envelope[_MARKER] != _FORMAT:
            raise InvalidArgumentError(
                f"entry {doc_id!r} was written in LangChain store format "
                f"{envelope[_MARKER]!r}; this version reads format {_FORMAT}"
            )
        return Document(
            id=doc_id, page_content=envelope["page_content"], metadata=envelope["metadata"]
        )
    # Written with the plain NusterDB API: its document and fields are all there is.
    fields: Dict[str, Any] = metadata.to_dict() if metadata is not None else {}
    return Document(id=doc_id, page_content=document or "", metadata=fields)


# ------------------------------------------------------------------------------ MMR


def _mmr(
    query: npt.NDArray[np.float64],
    candidates: npt.NDArray[np.float64],
    k: int,
    lambda_mult: float,
) -> List[int]:
    """Indices into ``candidates`` chosen by maximal marginal relevance, in order of choice
    (cosine similarity; a zero vector is similar to nothing). Ties go to the lower index."""
    n = candidates.shape[0]
    if k <= 0 or n == 0:
        return []
    norms = np.linalg.norm(candidates, axis=1)
    unit = np.divide(
        candidates, norms[:, None], out=np.zeros_like(candidates), where=norms[:, None] > 0
    )
    qn = float(np.linalg.norm(query))
    q = query / qn if qn > 0 else np.zeros_like(query)
    to_query = unit @ q
    pairwise = unit @ unit.T
    chosen: List[int] = []
    # Highest similarity to anything chosen so far (-inf before the first choice, so the
    # first pick is the most similar to the query whatever lambda_mult is).
    redundancy = np.full(n, -np.inf)
    available = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        if chosen:
            score = lambda_mult * to_query - (1.0 - lambda_mult) * redundancy
        else:
            score = to_query.copy()
        score[~available] = -np.inf
        best = int(np.argmax(score))
        chosen.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, pairwise[:, best])
    return chosen


# ---------------------------------------------------------------------------- store


def _reject_kwargs(method: str, kwargs: Mapping[str, Any]) -> None:
    if kwargs:
        names = ", ".join(sorted(kwargs))
        raise TypeError(f"NusterDBVectorStore.{method}() got unexpected keyword arguments: {names}")


def _metric_name(distance: str) -> str:
    if not isinstance(distance, str):
        raise TypeError(f"distance must be a str, got {type(distance).__name__}")
    name = DistanceMetric.from_name(distance).name
    if name not in _SUPPORTED_METRICS:
        raise InvalidArgumentError(
            f"distance {distance!r}: the LangChain store supports "
            f"{', '.join(_SUPPORTED_METRICS)} (each has a relevance-score mapping)"
        )
    return name


def _index_name(index: str) -> str:
    if not isinstance(index, str):
        raise TypeError(f"index must be a str, got {type(index).__name__}")
    # DatabaseConfig validates the name and folds the flat aliases into "flat".
    return DatabaseConfig(1, index_type=index).index_type


class NusterDBVectorStore(VectorStore):
    """A LangChain ``VectorStore`` on a NusterDB database with string ids.

    Args:
        path: directory of the database; ``None`` keeps it in memory. A directory that
            already holds a database is reopened (it must have string ids and the given
            ``distance`` and ``index``, else ``ConfigMismatchError``); otherwise the database
            is created on the first add, its dimension taken from the first embeddings.
        embedding: the LangChain ``Embeddings`` for texts and queries.
        distance: ``"cosine"`` (default), ``"euclidean"``, ``"inner_product"``,
            ``"angular"`` or ``"manhattan"`` (NusterDB's aliases such as ``"l2"`` too).
        index: ``"hnsw"`` (default, approximate), ``"ivf"`` (approximate, k-means
            lists: fast to build) or ``"flat"`` (exact).
        **db_options: arguments of ``DatabaseConfig`` (``auto_snapshot``,
            ``snapshot_interval_secs``, ``vectors``, ``quantization``, ``encryption``: an
            ``EncryptionConfig``, needed at every open of an encrypted database; ``nlist``,
            ``nprobe``: IVF index only; ``recall``: the default recall target),
            ``HNSWConfig``
            (``max_nb_connection``, ``max_nb_elements``, ``max_layer``, ``ef_construction``,
            ``ef_search``, ``use_heuristic``; HNSW index only) and ``StorageConfiguration``
            (``cache_size_mb``, ``sync_writes``, ...). Anything else raises ``TypeError``.
            When reopening, they are checked or applied as ``NusterDB(path, config)`` does.

    Metadata encoding and score mappings: see the module docstring.
    """

    def __init__(
        self,
        path: Optional[_PathLike] = None,
        *,
        embedding: Embeddings,
        distance: str = "cosine",
        index: str = "hnsw",
        **db_options: Any,
    ) -> None:
        self._embedding = embedding
        self._metric = _metric_name(distance)
        self._index = _index_name(index)
        unknown = set(db_options) - set(_DATABASE_OPTIONS + _HNSW_OPTIONS + _STORAGE_OPTIONS)
        if unknown:
            raise TypeError(
                f"NusterDBVectorStore() got unexpected keyword arguments: "
                f"{', '.join(sorted(unknown))}"
            )
        hnsw_given = sorted(set(db_options) & set(_HNSW_OPTIONS))
        if hnsw_given and self._index != "hnsw":
            raise TypeError(
                f"HNSW options ({', '.join(hnsw_given)}) apply only to index='hnsw', "
                f"not index={index!r}"
            )
        self._db_options = dict(db_options)
        # Built now so that bad values fail here, not on the first add.
        self._hnsw_config = HNSWConfig(
            **{k: v for k, v in db_options.items() if k in _HNSW_OPTIONS}
        )
        self._storage_config = StorageConfiguration(
            **{k: v for k, v in db_options.items() if k in _STORAGE_OPTIONS}
        )
        self._path: Optional[str] = None if path is None else os.fspath(path)
        if self._path == ":memory:":
            self._path = None
        self._lock = threading.Lock()
        self._db: Optional[NusterDB] = None
        if self._path is not None and _holds_database(self._path):
            self._db = self._reopen(self._path)

    # ------------------------------------------------------------------ database

    def _config(self, dim: int) -> DatabaseConfig:
        return DatabaseConfig(
            dim,
            index_type=self._index,
            distance_metric=self._metric,
            hnsw_config=self._hnsw_config if self._index == "hnsw" else None,
            storage_config=self._storage_config,
            id_type="str",
            **{k: v for k, v in self._db_options.items() if k in _DATABASE_OPTIONS},
        )

    def _reopen(self, path: str) -> NusterDB:
        db = NusterDB.open(path, encryption=self._db_options.get("encryption"))
        try:
            cfg = db.config
            problems = []
            if cfg.id_type != "str":
                problems.append(f"its ids are {cfg.id_type!r}, the store needs 'str' ids")
            if cfg.distance_metric.name != self._metric:
                problems.append(f"its metric is {cfg.distance_metric.name!r}, not {self._metric!r}")
            if cfg.index_type != self._index:
                problems.append(f"its index is {cfg.index_type!r}, not {self._index!r}")
            if problems:
                raise ConfigMismatchError(
                    f"the database at {path!r} does not fit this store: " + "; ".join(problems)
                )
            if not self._db_options:
                return db
            dim = cfg.dim
        except BaseException:
            db.close()
            raise
        # Options given: reopen with them, so NusterDB checks or applies each one.
        db.close()
        return NusterDB(path, self._config(dim))

    def _database(self, dim: int) -> NusterDB:
        """The database, created with dimension ``dim`` if it does not exist yet."""
        db = self._db
        if db is not None:
            return db
        with self._lock:
            if self._db is None:
                self._db = NusterDB(self._path, self._config(dim))
            return self._db

    @property
    def db(self) -> Optional[NusterDB]:
        """The underlying database (``None`` until the first add of a new store)."""
        return self._db

    @property
    def embeddings(self) -> Embeddings:
        """The Embeddings object the store embeds texts and queries with."""
        return self._embedding

    def close(self) -> None:
        """Closes the database (a no-op if it was never created); later use raises
        ``nusterdb.ClosedError``."""
        if self._db is not None:
            self._db.close()

    def __enter__(self: _VST) -> _VST:
        return self

    def __exit__(self, *_args: object) -> None:
        self.close()

    # --------------------------------------------------------------------- writes

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: Optional[Sequence[Mapping[str, Any]]] = None,
        *,
        ids: Optional[Sequence[Optional[str]]] = None,
        **kwargs: Any,
    ) -> List[str]:
        """Embeds and stores ``texts``; an id already stored is replaced (vector, text and
        metadata). Missing ids (``None``) get a random UUID4 string. Returns the ids.
        A repeated id within one call: the last occurrence wins. Nothing is stored when
        the call raises."""
        _reject_kwargs("add_texts", kwargs)
        texts = list(texts)
        n = len(texts)
        if metadatas is not None and len(metadatas) != n:
            raise InvalidArgumentError(f"{len(metadatas)} metadatas for {n} texts")
        if ids is not None and len(ids) != n:
            raise InvalidArgumentError(f"{len(ids)} ids for {n} texts")
        out_ids: List[str] = []
        for i in range(n):
            given = None if ids is None else ids[i]
            if given is None:
                out_ids.append(str(uuid.uuid4()))
            elif isinstance(given, str):
                out_ids.append(given)
            else:
                raise TypeError(f"ids must be str, got {type(given).__name__} {given!r}")
        encoded = [
            _encode(texts[i], metadatas[i] if metadatas is not None else {}) for i in range(n)
        ]
        if n == 0:
            return []
        embedded = self._embedding.embed_documents(texts)
        widths = {len(row) for row in embedded}
        if len(widths) > 1:
            raise DimensionMismatchError(
                f"the embeddings have different dimensions: {sorted(widths)}"
            )
        self._write(out_ids, np.asarray(embedded, dtype=np.float64), encoded)
        return out_ids

    def _write(
        self,
        ids: List[str],
        vectors: npt.NDArray[np.float64],
        encoded: List[Tuple[Metadata, str]],
    ) -> None:
        n = len(ids)
        if vectors.ndim != 2 or vectors.shape[0] != n or vectors.shape[1] == 0:
            raise InvalidVectorError(
                f"the embeddings have shape {vectors.shape}; expected {n} non-empty vectors"
            )
        as32 = vectors.astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(as32).all(axis=1))
        if bad.size:
            raise InvalidVectorError(
                f"the embedding of {ids[int(bad[0])]!r} has a NaN or infinite component "
                "(as float32)"
            )
        db = self._database(as32.shape[1])
        if as32.shape[1] != db.dimension():
            raise DimensionMismatchError(
                f"the embeddings have dimension {as32.shape[1]}, the store {db.dimension()}"
            )
        # The last occurrence of a repeated id wins, as in a run of upserts.
        last = {doc_id: i for i, doc_id in enumerate(ids)}
        rows = sorted(last.values())
        uids = [ids[i] for i in rows]
        # Every id is checked (valid, and whether stored) before anything is written.
        stored = [db.contains(i) for i in uids]
        if not any(stored):
            try:
                db.bulk_add(
                    uids,
                    as32[rows],
                    metadata=[encoded[i][0] for i in rows],
                    documents=[encoded[i][1] for i in rows],
                )
                return
            except DuplicateIdError:
                pass  # another writer added one of them meanwhile: upsert one by one
        for i in rows:
            db.upsert(ids[i], as32[i], metadata=encoded[i][0], document=encoded[i][1])

    def delete(self, ids: Optional[List[str]] = None, **kwargs: Any) -> Optional[bool]:
        """Removes the given ids (absent ones are skipped); ``ids=None`` removes
        everything. Returns True."""
        _reject_kwargs("delete", kwargs)
        db = self._db
        if db is None:
            return True
        doomed = [_str_id(i) for i in db.list_ids()] if ids is None else list(ids)
        if doomed:
            db.bulk_remove(doomed)
        return True

    # ---------------------------------------------------------------------- reads

    def get_by_ids(self, ids: Sequence[str], /) -> List[Document]:
        """The stored documents among ``ids``, each once, in the order asked (absent ids
        are left out)."""
        db = self._db
        if db is None or not ids:
            return []
        got = db.get_many(list(ids), include=("metadata", "document"))
        return [_decode(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])]

    def _hits(
        self,
        embedding: Sequence[float],
        k: int,
        filter: Optional[Dict[str, Any]],
        ef_search: Optional[int],
        recall: Optional[float],
        with_vectors: bool,
    ) -> List[SearchHit]:
        db = self._db
        if db is None:
            return []
        include = ["metadata", "document", "vector"] if with_vectors else ["metadata", "document"]
        return db.search(
            np.asarray(embedding, dtype=np.float32),
            k=k,
            filter=filter,
            ef_search=ef_search,
            recall=recall,
            include=include,
        )

    def similarity_search_with_score_by_vector(
        self,
        embedding: Sequence[float],
        k: int = 4,
        *,
        filter: Optional[Dict[str, Any]] = None,
        ef_search: Optional[int] = None,
        recall: Optional[float] = None,
    ) -> List[Tuple[Document, float]]:
        """The ``k`` nearest documents with their distances (smaller is closer),
        nearest first; ``filter`` is a NusterDB filter dict."""
        hits = self._hits(embedding, k, filter, ef_search, recall, with_vectors=False)
        return [(_decode(_str_id(h.id), h.document, h.metadata), float(h.distance)) for h in hits]

    def similarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        *,
        filter: Optional[Dict[str, Any]] = None,
        ef_search: Optional[int] = None,
        recall: Optional[float] = None,
        **kwargs: Any,
    ) -> List[Tuple[Document, float]]:
        """The ``k`` nearest documents to ``query`` with their distances (smaller is
        closer), nearest first."""
        _reject_kwargs("similarity_search_with_score", kwargs)
        if self._db is None:
            return []
        return self.similarity_search_with_score_by_vector(
            self._embedding.embed_query(query), k, filter=filter, ef_search=ef_search, recall=recall
        )

    def similarity_search(
        self,
        query: str,
        k: int = 4,
        *,
        filter: Optional[Dict[str, Any]] = None,
        ef_search: Optional[int] = None,
        recall: Optional[float] = None,
        **kwargs: Any,
    ) -> List[Document]:
        """The ``k`` documents nearest to ``query`` (embedded with ``embeddings``),
        nearest first, among those ``filter`` allows; TypeError for an unknown keyword
        argument."""
        _reject_kwargs("similarity_search", kwargs)
        return [
            doc
            for doc, _ in self.similarity_search_with_score(
                query, k, filter=filter, ef_search=ef_search, recall=recall
            )
        ]

    def similarity_search_by_vector(
        self,
        embedding: List[float],
        k: int = 4,
        *,
        filter: Optional[Dict[str, Any]] = None,
        ef_search: Optional[int] = None,
        recall: Optional[float] = None,
        **kwargs: Any,
    ) -> List[Document]:
        """The ``k`` documents nearest to ``embedding``, nearest first, among those
        ``filter`` allows; TypeError for an unknown keyword argument."""
        _reject_kwargs("similarity_search_by_vector", kwargs)
        return [
            doc
            for doc, _ in self.similarity_search_with_score_by_vector(
                embedding, k, filter=filter, ef_search=ef_search, recall=recall
            )
        ]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return _RELEVANCE[self._metric]

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: List[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        *,
        filter: Optional[Dict[str, Any]] = None,
        ef_search: Optional[int] = None,
        recall: Optional[float] = None,
        **kwargs: Any,
    ) -> List[Document]:
        """``k`` documents chosen by maximal marginal relevance among the ``fetch_k``
        nearest (see the module docstring)."""
        _reject_kwargs("max_marginal_relevance_search_by_vector", kwargs)
        if fetch_k < k:
            raise InvalidArgumentError(f"fetch_k ({fetch_k}) must be at least k ({k})")
        if not 0.0 <= lambda_mult <= 1.0:
            raise InvalidArgumentError(f"lambda_mult must be in [0, 1], got {lambda_mult}")
        hits = self._hits(embedding, fetch_k, filter, ef_search, recall, with_vectors=True)
        if not hits:
            return []
        candidates = np.stack([np.asarray(h.vector, dtype=np.float64) for h in hits])
        order = _mmr(np.asarray(embedding, dtype=np.float64), candidates, k, lambda_mult)
        return [_decode(_str_id(hits[i].id), hits[i].document, hits[i].metadata) for i in order]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        *,
        filter: Optional[Dict[str, Any]] = None,
        ef_search: Optional[int] = None,
        recall: Optional[float] = None,
        **kwargs: Any,
    ) -> List[Document]:
        """As ``max_marginal_relevance_search_by_vector`` for ``query`` embedded with
        ``embeddings``: ``k`` documents chosen by maximal marginal relevance among the
        ``fetch_k`` nearest."""
        _reject_kwargs("max_marginal_relevance_search", kwargs)
        if self._db is None:
            return []
        return self.max_marginal_relevance_search_by_vector(
            self._embedding.embed_query(query),
            k,
            fetch_k,
            lambda_mult,
            filter=filter,
            ef_search=ef_search,
            recall=recall,
        )

    # ------------------------------------------------------------- constructors

    @classmethod
    def from_texts(
        cls: Type[_VST],
        texts: List[str],
        embedding: Embeddings,
        metadatas: Optional[List[Dict[str, Any]]] = None,
        ids: Optional[List[str]] = None,
        path: Optional[_PathLike] = None,
        **kwargs: Any,
    ) -> _VST:
        """A store at ``path`` (``None``: in memory) holding ``texts``; ``kwargs`` are the
        constructor's (``distance``, ``index``, database options)."""
        store = cls(path, embedding=embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store


def _holds_database(path: str) -> bool:
    """Whether ``path`` is a directory with something in it (then it must be a database:
    ``NusterDB.open`` says so clearly if it is not)."""
    if not os.path.isdir(path):
        return os.path.exists(path)
    with os.scandir(path) as entries:
        return any(True for _ in entries)
