"""A client for the NusterDB HTTP server (``nusterdb serve DATA_DIR``).

``Client(url, api_key)`` talks to one server over a small pool of keep-alive
connections; ``client.collection(name)`` (or ``client.create_collection(...)``) gives a
:class:`RemoteCollection`, whose methods take the arguments of the embedded
``nusterdb.NusterDB``, return the same types and raise the same exception classes::

    from nusterdb.client import Client

    with Client("http://127.0.0.1:7878", api_key="nus_...") as client:
        docs = client.create_collection("docs", dim=384, metric="cosine")
        docs.bulk_add(ids, vectors, metadata=[{"lang": "en"}] * len(ids))
        hits = docs.search(query, k=10, filter={"lang": "en"})

Errors the server reports are raised as the class of ``nusterdb.exceptions`` the server
names (``DimensionMismatchError``, ``FilterError``, ...) or, for errors only a server has,
as a :class:`~nusterdb.exceptions.ServerError` subclass (``UnauthorizedError``,
``CollectionNotFoundError``, ...); each carries ``.status`` (the HTTP status) and
``.details``. A connection that cannot be made or breaks raises the ``OSError`` of the
socket (``ConnectionError``, ``TimeoutError``).

Only the standard library (``http.client``) and numpy are used.
"""

from __future__ import annotations

import http.client
import json
import math
import operator
import random
import selectors
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
    overload,
)

import numpy as np
import numpy.typing as npt

import nusterdb.exceptions as _errors
from nusterdb._core import DatabaseConfig, DistanceMetric, Metadata, Vector, __version__
from nusterdb._progress import ProgressBar
from nusterdb.exceptions import (
    ClosedError,
    DimensionMismatchError,
    InvalidArgumentError,
    InvalidVectorError,
    NusterDBError,
    ServerError,
    ServerTimeoutError,
)

__all__ = ["Client", "RemoteCollection", "RemoteRecord", "RemoteSearchHit", "RemoteStats"]

_MetadataValue = Union[str, int, float, bool]
_VectorLike = Union[Vector, Sequence[float], npt.NDArray[Any]]
_MetadataLike = Union[Metadata, Mapping[str, _MetadataValue]]
_MetadataUpdate = Union[Metadata, Mapping[str, Optional[_MetadataValue]]]
_Id = Union[int, str]
_Ids = Union[Sequence[int], Sequence[str], npt.NDArray[Any]]
_Filter = Dict[str, Any]
_Include = Sequence[str]
_Progress = Union[None, bool, Callable[[str, int, int], object]]
_Json = Any

_I64_MAX = 2**63 - 1
_I64_MIN = -(2**63)
_USER_AGENT = f"nusterdb-python/{__version__}"
_OCTET = "application/octet-stream"
_JSON = "application/json"


# ---------------------------------------------------------------------------------------
# Result types


@dataclass(frozen=True)
class RemoteSearchHit:
    """One result of ``RemoteCollection.search(..., include=[...])``, with the
    attributes of ``nusterdb.SearchHit``: ``id`` (int or str), ``distance`` (the float32
    distance as a float), and, where included, ``vector`` (float32 array), ``metadata``
    (a ``Metadata``) and ``document`` (None where not included or absent)."""

    id: _Id
    distance: float
    vector: Optional[npt.NDArray[np.float32]] = None
    metadata: Optional[Metadata] = None
    document: Optional[str] = None


@dataclass(frozen=True)
class RemoteRecord:
    """One record of ``RemoteCollection.iter_records``, with the attributes of
    ``nusterdb.Record``: ``id`` and, as ``include`` asked, ``vector``, ``metadata`` and
    ``document`` (None where not included or absent)."""

    id: _Id
    vector: Optional[npt.NDArray[np.float32]] = None
    metadata: Optional[Metadata] = None
    document: Optional[str] = None


@dataclass(frozen=True)
class RemoteStats:
    """``RemoteCollection.stats()``: the attributes of ``nusterdb.DatabaseStats``
    (``vector_count``, ``dimension``/``dim``, ``index_type``, ``distance_metric`` (the
    name) and ``metric`` (the DistanceMetric), ``metadata_keys``, ``deleted_count``,
    ``memory_bytes``, ``memory_by_part``, ``mapped_bytes``, ``mapped_resident_bytes``,
    ``disk_bytes``), as the server measured them. ``engine_statistics`` is None: the
    server does not send RocksDB's statistics dump."""

    vector_count: int
    dimension: int
    index_type: str
    distance_metric: str
    metadata_keys: List[str]
    deleted_count: int
    memory_bytes: int
    memory_by_part: Dict[str, int]
    mapped_bytes: int
    mapped_resident_bytes: Optional[int]
    disk_bytes: int
    engine_statistics: Optional[str] = None

    @property
    def dim(self) -> int:
        """The vector dimension (same as ``dimension``)."""
        return self.dimension

    @property
    def metric(self) -> DistanceMetric:
        """The distance metric as a ``DistanceMetric``."""
        return DistanceMetric.from_name(self.distance_metric)


# ---------------------------------------------------------------------------------------
# Conversions


def _rust_float(x: float) -> str:
    """A non-finite float as the core's messages write it."""
    if math.isnan(x):
        return "NaN"
    return "inf" if x > 0 else "-inf"


def _as_id(value: Any) -> Any:
    """An id as JSON can carry it (numpy scalars to Python ones; the rest is the
    server's to judge)."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.str_):
        return str(value)
    return value


def _id_list(ids: _Ids) -> List[Any]:
    if isinstance(ids, np.ndarray):
        return [_as_id(i) for i in ids.tolist()]
    if isinstance(ids, (str, bytes)):
        raise TypeError(f"ids must be a sequence of ids, got {type(ids).__name__}")
    return [_as_id(i) for i in ids]


def _finite_vector(arr: npt.NDArray[np.float32]) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        pos = int(np.argmax(bad))
        raise InvalidVectorError(
            f"vector has a non-finite value ({_rust_float(float(arr[pos]))}) at position {pos}"
        )


def _vector_array(vector: _VectorLike) -> npt.NDArray[np.float32]:
    """A single vector as a finite 1-D float32 array (InvalidVectorError as the core
    raises it otherwise)."""
    if isinstance(vector, Vector):
        arr = vector.to_numpy()
    else:
        if isinstance(vector, (str, bytes, bytearray)) or not isinstance(
            vector, (np.ndarray, Sequence, Iterable)
        ):
            raise TypeError(
                "expected a Vector, a sequence of numbers or a 1-D numpy array, "
                f"got {type(vector).__name__}"
            )
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                arr = np.asarray(vector, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"expected a Vector, a sequence of numbers or a 1-D numpy array: {exc}"
            ) from exc
    if arr.ndim != 1:
        raise ValueError(f"a vector must be 1-D, got an array of shape {list(arr.shape)}")
    if arr.size == 0:
        raise InvalidVectorError("vector is empty: a vector needs at least one component")
    _finite_vector(arr)
    return arr


def _vector_json(vector: _VectorLike) -> List[float]:
    out: List[float] = _vector_array(vector).tolist()
    return out


def _scalar_json(key: str, value: Any, allow_null: bool) -> Any:
    if value is None and allow_null:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        v = int(value)
        if not _I64_MIN <= v <= _I64_MAX:
            raise OverflowError(f"metadata int {v} does not fit in a signed 64-bit integer")
        return v
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if not math.isfinite(f):
            raise InvalidArgumentError(
                f"metadata float values must be finite, got {_rust_float(f)}"
            )
        return f
    if isinstance(value, str):
        return value
    raise TypeError(f"metadata values must be str, int, float or bool, got {type(value).__name__}")


def _metadata_json(metadata: Any, allow_null: bool = False) -> Dict[str, Any]:
    """Metadata as the API's input shape ``{"fields": {...}, "tags": [...]}``."""
    if isinstance(metadata, Metadata):
        return {
            "fields": {k: _scalar_json(k, v, False) for k, v in metadata.to_dict().items()},
            "tags": metadata.tags(),
        }
    if isinstance(metadata, Mapping):
        fields: Dict[str, Any] = {}
        for key, value in metadata.items():
            if not isinstance(key, str):
                raise TypeError(f"metadata keys must be str, got {type(key).__name__}")
            fields[key] = _scalar_json(key, value, allow_null)
        return {"fields": fields}
    raise TypeError(f"expected Metadata or a dict, got {type(metadata).__name__}")


def _metadata_from_json(doc: Any) -> Metadata:
    """A ``Metadata`` from the API's output shape, its ``created_at``, ``updated_at`` and
    ``version`` as stored."""
    if not isinstance(doc, Mapping):
        return Metadata()
    return Metadata._restore(
        dict(doc.get("fields") or {}),
        list(doc.get("tags") or []),
        int(doc.get("created_at", 0)),
        int(doc.get("updated_at", 0)),
        int(doc.get("version", 1)),
    )


#: Queries per request when ``batch_search`` reports progress.
_PROGRESS_QUERIES = 1024


def _reporter(
    progress: _Progress, desc: str
) -> Tuple[Optional[Callable[[str, int, int], object]], Optional[ProgressBar]]:
    """The callback a ``progress=`` argument asks for, as the embedded database reads
    it: None, a text bar on stderr if it is a terminal (shown after a second); True, a
    bar; False, none; or a callable ``(phase, done, total)``. Also the bar to close."""
    if progress is False or (progress is None and not sys.stderr.isatty()):
        return None, None
    if progress is None or progress is True:
        bar = ProgressBar(desc, delay=1.0 if progress is None else 0.0)
        return bar, bar
    if callable(progress):
        return progress, None
    raise TypeError(f"progress must be None, a bool or a callable, got {type(progress).__name__}")


def _document_json(document: Any) -> Optional[str]:
    if document is None or isinstance(document, str):
        return document
    raise TypeError(f"document must be str or None, got {type(document).__name__}")


def _check_k(k: int) -> int:
    k = operator.index(k)
    if k > _I64_MAX or k < _I64_MIN:
        raise OverflowError("Python int too large to convert to C long")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return k


def _f32(x: Any) -> float:
    """A distance sent as JSON, rounded back to the float32 it was (JSON has no
    infinity: a null distance is one that overflowed)."""
    if x is None:
        return math.inf
    return float(np.float32(x))


def _float32_rows(rows: Any, dim: Callable[[], int]) -> npt.NDArray[np.float32]:
    if not rows:
        return np.zeros((0, dim()), dtype=np.float32)
    return np.asarray(rows, dtype=np.float32)


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays (in filters, ``ef_search``, ...) as JSON values."""
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"a value of type {type(value).__name__} cannot be sent as JSON")


def _dumps(doc: Any) -> bytes:
    try:
        return json.dumps(
            doc, allow_nan=False, separators=(",", ":"), default=_json_default
        ).encode("utf-8")
    except ValueError as exc:
        # A float that JSON cannot carry: NaN or an infinite filter bound.
        raise InvalidArgumentError(
            f"a request field holds NaN or an infinity, which JSON cannot carry: {exc}"
        ) from exc


def _config_json(config: DatabaseConfig) -> Dict[str, Any]:
    out: Dict[str, Any] = {
        "dim": config.dim,
        "index_type": config.index_type,
        "metric": config.metric.name,
        "id_type": config.id_type,
        "quantization": config.quantization,
    }
    if config.index_type == "hnsw":
        h = config.hnsw_config
        out["hnsw"] = {
            "m": h.max_nb_connection,
            "ef_construction": h.ef_construction,
            "ef_search": h.ef_search,
            "max_elements": h.max_nb_elements,
        }
    if config.index_type == "ivf":
        out["ivf"] = {"nlist": config.nlist, "nprobe": config.nprobe}
    if config.recall is not None:
        out["recall"] = config.recall
    st = config.storage_config
    out["storage"] = {
        "cache_size_mb": st.cache_size_mb,
        "write_buffer_size_mb": st.write_buffer_size_mb,
        "max_write_buffer_number": st.max_write_buffer_number,
        "compression": st.compression,
    }
    out["sync_writes"] = st.sync_writes
    return out


# ---------------------------------------------------------------------------------------
# Errors


def _error_from_response(status: int, body: bytes) -> NusterDBError:
    """The exception a non-2xx response stands for."""
    try:
        doc = json.loads(body.decode("utf-8"))
        err = doc["error"]
        type_name = str(err["type"])
        message = str(err.get("message", ""))
        details = err.get("details") or {}
        if not isinstance(details, dict):
            details = {"value": details}
    except (ValueError, KeyError, TypeError, AttributeError):
        text = body[:200].decode("utf-8", "replace").strip()
        return ServerError(f"HTTP {status}: {text}", status, {}, None)
    return _make_error(type_name, message, status, details)


def _make_error(
    type_name: str, message: str, status: int, details: Dict[str, Any]
) -> NusterDBError:
    # The server's "TimeoutError" is not the built-in one (an OSError of the socket).
    cls: Any = (
        ServerTimeoutError if type_name == "TimeoutError" else getattr(_errors, type_name, None)
    )
    if not (isinstance(cls, type) and issubclass(cls, NusterDBError)):
        return ServerError(message, status, details, type_name)
    if issubclass(cls, ServerError):
        server_cls: Type[ServerError] = cls
        return server_cls(message, status, details, type_name)
    exc: NusterDBError
    errno = details.get("errno")
    if issubclass(cls, OSError) and isinstance(errno, int) and not isinstance(errno, bool):
        exc = cls(errno, message)
    else:
        exc = cls(message)
    exc.status = status  # type: ignore[attr-defined]
    exc.details = details  # type: ignore[attr-defined]
    return exc


# ---------------------------------------------------------------------------------------
# Connections


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle keep-alive connection was closed by the server (it is readable:
    the end of the stream, or bytes nobody asked for)."""
    sock = conn.sock
    if sock is None:
        return False  # not connected yet: connects on first use
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_READ)
            return bool(sel.select(0))
    except (OSError, ValueError):
        return True


class _Pool:
    """Up to ``size`` connections to one server, reused while the server keeps them
    open. Thread-safe: a thread takes a connection for one request at a time."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        timeout: float,
        size: int,
        ssl_context: Optional[ssl.SSLContext],
    ) -> None:
        self._scheme = scheme
        self._ssl_context = ssl_context
        self._host = host
        self._port = port
        self._timeout = timeout
        self._idle: List[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._size = size
        self._closed = False

    def _new(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=self._ssl_context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def acquire(self, timeout: float) -> http.client.HTTPConnection:
        if not self._slots.acquire(timeout=timeout):
            raise TimeoutError(
                f"no free connection in the pool ({self._size}) after {timeout} seconds"
            )
        try:
            with self._lock:
                if self._closed:
                    raise ClosedError("the client is closed")
                while self._idle:
                    conn = self._idle.pop()
                    if not _dropped(conn):
                        return conn
                    conn.close()
            return self._new()
        except BaseException:
            self._slots.release()
            raise

    def release(self, conn: http.client.HTTPConnection, reuse: bool) -> None:
        try:
            with self._lock:
                if reuse and not self._closed and len(self._idle) < self._size:
                    self._idle.append(conn)
                    return
            conn.close()
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class Client:
    """A connection to a NusterDB server.

    ``Client(url, api_key=None, timeout=30.0, retries=2, pool_size=8)``: ``url`` is the
    server's base URL (``http://host:port`` or ``https://...``, optionally with a path
    prefix); ``api_key`` is sent as ``Authorization: Bearer <key>`` (None for a server
    run with ``--no-auth``); ``timeout`` (seconds) bounds connecting and each wait for
    the server on every request; ``retries`` is how many times a request that changes
    nothing (GETs, search, batch_search, get, count, contains) is sent again after a
    connection error, with a growing pause (a write is never resent, and an HTTP error
    status is never retried); ``pool_size`` is how many connections are kept open (and
    how many requests run at once; more threads wait for a free connection).

    ``ssl_context`` (keyword only) is the ``ssl.SSLContext`` of https connections (None:
    the system's default, which verifies the certificate against the system's CAs; for
    a server with a private CA, ``ssl.create_default_context(cafile=...)``).

    Thread-safe; use one client per process and share it. ``close()`` (or a ``with``
    block) closes the connections.
    """

    def __init__(
        self,
        url: str,
        api_key: Optional[str] = None,
        timeout: float = 30.0,
        retries: int = 2,
        pool_size: int = 8,
        *,
        ssl_context: Optional[ssl.SSLContext] = None,
    ) -> None:
        """Client(url, api_key, timeout, retries, pool_size, ssl_context): see the class
        docstring."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        if not parts.hostname:
            raise ValueError(f"url has no host: {url!r}")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        default_port = 443 if parts.scheme == "https" else 80
        self._url = url
        self._prefix = parts.path.rstrip("/")
        self._timeout = float(timeout)
        self._retries = int(retries)
        self._headers: Dict[str, str] = {"User-Agent": _USER_AGENT, "Accept": _JSON}
        if api_key is not None:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._pool = _Pool(
            parts.scheme,
            parts.hostname,
            parts.port or default_port,
            self._timeout,
            pool_size,
            ssl_context,
        )
        self._closed = False

    # -- plumbing ----------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        body: Union[bytes, Tuple[Any, ...], None],
        headers: Dict[str, str],
        idempotent: bool,
    ) -> Tuple[int, bytes, str]:
        """Sends one request (again on connection errors when ``idempotent``); returns
        (status, body, content type)."""
        attempts = 1 + (self._retries if idempotent else 0)
        url = self._prefix + path
        for attempt in range(attempts):
            conn = self._pool.acquire(self._timeout)
            reuse = False
            try:
                conn.timeout = self._timeout
                if conn.sock is not None:
                    conn.sock.settimeout(self._timeout)
                try:
                    conn.request(method, url, body=body, headers=headers)
                except OSError:
                    # The server may have answered before reading the whole body (a 413
                    # for one over its limit) and closed: read that answer if it is there.
                    if conn.sock is None:
                        raise
                    try:
                        resp = conn.getresponse()
                    except Exception:
                        pass
                    else:
                        data = resp.read()
                        return resp.status, data, resp.getheader("Content-Type", "") or ""
                    raise
                resp = conn.getresponse()
                data = resp.read()
                reuse = not resp.will_close
                return resp.status, data, resp.getheader("Content-Type", "") or ""
            except (OSError, http.client.HTTPException) as exc:
                reuse = False
                last = attempt + 1 >= attempts
                # A timeout (the server may still be working) or a TLS failure (a
                # certificate that does not verify) would only happen again.
                if last or isinstance(exc, (socket.timeout, ssl.SSLError)):
                    raise
            finally:
                self._pool.release(conn, reuse)
            time.sleep(min(2.0, 0.1 * 2**attempt) * (0.5 + random.random() / 2))
        raise AssertionError("unreachable")  # pragma: no cover

    def _request(
        self,
        method: str,
        path: str,
        doc: Any = None,
        *,
        raw: Optional[Tuple[npt.NDArray[np.float32], Dict[str, Any]]] = None,
        idempotent: Optional[bool] = None,
        expect_json: bool = True,
    ) -> Any:
        """One API call: ``doc`` sent as JSON (or ``raw``: rows and the JSON tail);
        returns the decoded JSON answer, raising the error the server reported."""
        if self._closed:
            raise ClosedError("the client is closed")
        headers = dict(self._headers)
        body: Union[bytes, Tuple[Any, ...], None] = None
        if raw is not None:
            rows, tail = raw
            rows = np.ascontiguousarray(rows, dtype="<f4")
            tail_bytes = _dumps(tail)
            headers["Content-Type"] = _OCTET
            headers["X-NusterDB-Shape"] = f"{rows.shape[0]},{rows.shape[1]}"
            headers["Content-Length"] = str(rows.nbytes + len(tail_bytes))
            body = (rows.data.cast("B"), tail_bytes)
        elif doc is not None:
            body = _dumps(doc)
            headers["Content-Type"] = _JSON
            headers["Content-Length"] = str(len(body))
        elif method in ("POST", "PUT", "PATCH"):
            body = b"{}"
            headers["Content-Type"] = _JSON
            headers["Content-Length"] = "2"
        if idempotent is None:
            # Requests that change nothing are retried on connection errors; every other
            # one is sent once (a write whose connection broke may have been applied).
            idempotent = method == "GET"
        status, data, ctype = self._send(method, path, body, headers, idempotent)
        if not 200 <= status < 300:
            raise _error_from_response(status, data)
        if not expect_json:
            return data.decode("utf-8", "replace")
        if not data:
            return {}
        try:
            return json.loads(data.decode("utf-8"))
        except ValueError as exc:
            raise ServerError(
                f"HTTP {status}: the server's answer is not JSON ({ctype or 'no type'})",
                status,
                {},
                None,
            ) from exc

    # -- collections -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's base URL, as given."""
        return self._url

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def collection(self, name: str) -> RemoteCollection:
        """The collection ``name`` (no request is made: a missing collection raises
        CollectionNotFoundError at its first use)."""
        return RemoteCollection(self, name)

    def create_collection(
        self,
        name: str,
        config: Union[DatabaseConfig, Mapping[str, Any], None] = None,
        *,
        dim: Optional[int] = None,
        index_type: Optional[str] = None,
        metric: Union[DistanceMetric, str, None] = None,
        id_type: Optional[str] = None,
        quantization: Optional[str] = None,
        hnsw: Optional[Mapping[str, Any]] = None,
        ivf: Optional[Mapping[str, Any]] = None,
        storage: Optional[Mapping[str, Any]] = None,
        sync_writes: Optional[bool] = None,
        recall: Optional[float] = None,
    ) -> RemoteCollection:
        """Creates the collection ``name`` and returns it (admin scope).

        ``config`` is a ``nusterdb.DatabaseConfig`` (its dim, index type, metric, id type,
        quantization, for HNSW the ``hnsw_config`` parameters, for IVF ``nlist`` and
        ``nprobe``, the default ``recall`` target, and the storage engine's
        cache, write buffer, memtable count, compression and ``sync_writes`` are sent), a
        dict in the API's shape, or None; the keyword arguments set or override single
        entries (``dim`` is needed without a config; ``hnsw`` is a dict of ``m``,
        ``ef_construction``, ``ef_search``, ``max_elements``; ``ivf`` a dict of ``nlist``,
        ``nprobe``; ``storage`` one of
        ``cache_size_mb``, ``write_buffer_size_mb``, ``max_write_buffer_number``,
        ``compression``; ``recall`` the default recall@k target of a search naming no
        ``ef_search``, ``nprobe`` or ``recall``). Raises
        CollectionExistsError when the name is taken, InvalidArgumentError for a bad
        configuration or a config with ``encryption`` (the server encrypts every
        collection under its own master key: ``nusterdb --key-env NAME serve``; a key is
        never sent)."""
        if isinstance(config, DatabaseConfig):
            if config.encrypted:
                raise InvalidArgumentError(
                    "a collection is encrypted by the server, under the master key it was "
                    "started with (nusterdb --key-env NAME serve DATA_DIR); a config's "
                    "encryption is not sent"
                )
            body = _config_json(config)
        elif config is None:
            if dim is None:
                raise TypeError("create_collection needs a config or dim")
            body = {
                "dim": dim,
                "index_type": "flat",
                "metric": "euclidean",
                "id_type": "int",
                "quantization": None,
            }
        elif isinstance(config, Mapping):
            body = dict(config)
        else:
            raise TypeError(
                f"config must be a DatabaseConfig, a dict or None, got {type(config).__name__}"
            )
        if dim is not None:
            body["dim"] = dim
        if index_type is not None:
            body["index_type"] = index_type
        if metric is not None:
            body["metric"] = metric.name if isinstance(metric, DistanceMetric) else metric
        if id_type is not None:
            body["id_type"] = id_type
        if quantization is not None:
            body["quantization"] = quantization
        if hnsw is not None:
            body["hnsw"] = dict(hnsw)
        if ivf is not None:
            body["ivf"] = dict(ivf)
        if storage is not None:
            body["storage"] = dict(storage)
        if sync_writes is not None:
            body["sync_writes"] = bool(sync_writes)
        if recall is not None:
            body["recall"] = float(recall)
        info = self._request("POST", "/v1/collections", {"name": name, "config": body})
        coll = RemoteCollection(self, name)
        if isinstance(info, dict) and "dim" in info:
            coll._info_cache = info
        return coll

    def list_collections(self) -> List[Dict[str, Any]]:
        """The collections the key may see, sorted by name: dicts of ``name``, ``dim``,
        ``metric``, ``index_type``, ``id_type``, ``quantization``, ``encrypted`` and
        ``count``."""
        out: List[Dict[str, Any]] = self._request("GET", "/v1/collections")["collections"]
        return out

    def drop_collection(self, name: str) -> None:
        """Deletes the collection ``name`` and its files (admin scope);
        CollectionNotFoundError when there is none."""
        self._request("DELETE", f"/v1/collections/{_quote(name)}")

    # -- keys --------------------------------------------------------------------------

    def create_key(
        self, name: str, scopes: Sequence[str], collections: Optional[Sequence[str]] = None
    ) -> Dict[str, Any]:
        """Creates an API key (admin scope): ``scopes`` among "read", "write", "admin";
        ``collections`` limits it to those names (None: all). Returns ``id``, ``name``,
        ``scopes``, ``collections``, ``created_at`` and ``key``, the secret, shown once."""
        body = {
            "name": name,
            "scopes": list(scopes),
            "collections": None if collections is None else list(collections),
        }
        out: Dict[str, Any] = self._request("POST", "/v1/keys", body)
        return out

    def list_keys(self) -> List[Dict[str, Any]]:
        """Every API key (admin scope), without secrets: ``id``, ``name``, ``scopes``,
        ``collections``, ``created_at``, ``revoked``."""
        out: List[Dict[str, Any]] = self._request("GET", "/v1/keys")["keys"]
        return out

    def revoke_key(self, id: str) -> None:
        """Revokes the API key with this id (admin scope); it is refused from then on."""
        self._request("DELETE", f"/v1/keys/{_quote(id)}")

    # -- server ------------------------------------------------------------------------

    def health(self) -> Dict[str, Any]:
        """``GET /healthz``: ``{"status": "ok"}`` while the server runs (no key needed)."""
        out: Dict[str, Any] = self._request("GET", "/healthz")
        return out

    def ready(self) -> Dict[str, Any]:
        """``GET /readyz``: ``{"status": "ready", "collections": n}`` once every collection
        is open; a ServerError (HTTP 503) before."""
        out: Dict[str, Any] = self._request("GET", "/readyz")
        return out

    def metrics(self) -> str:
        """``GET /metrics``: the Prometheus text exposition (read scope)."""
        out: str = self._request("GET", "/metrics", expect_json=False)
        return out

    def close(self) -> None:
        """Closes the pooled connections; later requests raise ClosedError. A second
        close is a no-op."""
        self._closed = True
        self._pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_args: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self._url!r})"


def _quote(segment: str) -> str:
    if not isinstance(segment, str):
        raise TypeError(f"a name must be str, got {type(segment).__name__}")
    return urllib.parse.quote(segment, safe="")


# ---------------------------------------------------------------------------------------
# Collections


class RemoteCollection:
    """A collection on a NusterDB server, with the methods of ``nusterdb.NusterDB``: the
    same arguments, return types and exception classes.

    Made by ``Client.collection(name)`` or ``Client.create_collection(...)`` (``client``
    and ``name``). What differs from an embedded database:

    * Metadata read back (``get_metadata``, ``get_many``, ``search(include=...)``) has the
      stored fields and tags, but its ``created_at``, ``updated_at`` and ``version`` are
      those of a new ``Metadata``: they cannot be set from Python.
    * ``stats()`` returns a :class:`RemoteStats`, ``search(include=...)``
      :class:`RemoteSearchHit` objects and ``iter_records`` :class:`RemoteRecord`
      objects (same attributes as ``DatabaseStats``, ``SearchHit`` and ``Record``).
    * ``restore_snapshot`` restores in place only.
    * ``progress``: ``bulk_add`` and ``bulk_upsert`` send one atomic request, so they
      report ("writing", 0, n) when it is sent and ("writing", n, n) when the server
      acknowledged it; ``batch_search`` with ``progress`` sends the queries 1,024 at a
      time and reports ("searching", done, n) after each (without it, one request). A
      Ctrl-C during a request stops waiting for the answer; what the server was doing
      runs to its end (a write may then be stored).
    * ``close()`` only stops this object from being used; the collection stays open on
      the server.
    """

    def __init__(self, client: Client, name: str) -> None:
        """RemoteCollection(client, name): see the class docstring."""
        self._client = client
        self._name = name
        self._base = f"/v1/collections/{_quote(name)}"
        self._info_cache: Optional[Dict[str, Any]] = None
        self._closed = False

    # -- plumbing ----------------------------------------------------------------------

    def _call(self, method: str, suffix: str, doc: Any = None, **kw: Any) -> Any:
        if self._closed:
            raise ClosedError("the collection handle is closed")
        return self._client._request(method, self._base + suffix, doc, **kw)

    def _info(self) -> Dict[str, Any]:
        info = self._info_cache
        if info is None:
            info = self._client._request("GET", self._base)
            assert isinstance(info, dict)
            self._info_cache = info
        return info

    def _ids_array(self, rows: List[List[Any]], width: int) -> npt.NDArray[Any]:
        n = len(rows)
        if n and width and self.id_type != "str":
            try:  # every row full: one conversion
                full = np.asarray(rows, dtype=np.int64)
            except (TypeError, ValueError, OverflowError):
                pass
            else:
                if full.shape == (n, width):
                    return full
        if self.id_type == "str":
            ids = np.empty((n, width), dtype=object)
            for r, row in enumerate(rows):
                for c in range(width):
                    ids[r, c] = row[c] if c < len(row) else None
            return ids
        out = np.full((n, width), -1, dtype=np.int64)
        for r, row in enumerate(rows):
            for c, value in enumerate(row[:width]):
                if value is not None:
                    out[r, c] = value
        return out

    def _rows(self, vectors: Any, what: str = "vectors") -> npt.NDArray[np.float32]:
        """Many vectors as a C-contiguous (n, dim) float32 array, with the embedded
        database's argument errors for what cannot be one."""
        if isinstance(vectors, Vector):
            raise TypeError("expected a sequence of vectors or a 2-D array, got a Vector")
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                if isinstance(vectors, np.ndarray):
                    arr = np.ascontiguousarray(vectors, dtype=np.float32)
                else:
                    arr = np.ascontiguousarray(
                        np.asarray(
                            [v.to_numpy() if isinstance(v, Vector) else v for v in vectors],
                            dtype=np.float32,
                        )
                    )
        except ValueError:
            # Rows of different lengths: name the first one that is not dim long.
            dim = self.dim
            for r, row in enumerate(vectors):
                got = len(row)
                if got != dim:
                    raise DimensionMismatchError(
                        f"dimension mismatch: expected {dim}, got {got} (row {r})"
                    ) from None
            raise
        if arr.ndim == 1 and arr.size == 0:
            return arr.reshape(0, 0)  # no rows
        if arr.ndim != 2:
            if what == "queries" and arr.ndim == 1 and not isinstance(vectors, np.ndarray):
                raise TypeError(
                    "expected a Vector, a sequence of numbers or a 1-D numpy array, got "
                    f"{type(vectors[0]).__name__}"
                )
            raise ValueError(
                f"{what} must be a 2-D array of shape (n, {self.dim}), got shape {list(arr.shape)}"
            )
        return arr

    # -- properties --------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The collection's name on the server."""
        return self._name

    @property
    def client(self) -> Client:
        """The client this collection talks through."""
        return self._client

    @property
    def dim(self) -> int:
        """The vector dimension (asked of the server once, then remembered)."""
        return int(self._info()["dim"])

    @property
    def metric(self) -> DistanceMetric:
        """The distance metric (asked of the server once, then remembered)."""
        return DistanceMetric.from_name(str(self._info()["metric"]))

    @property
    def index(self) -> str:
        """The index type, "flat", "hnsw" or "ivf" (asked of the server once)."""
        return str(self._info()["index_type"])

    @property
    def id_type(self) -> str:
        """The kind of ids, "int" or "str" (asked of the server once)."""
        return str(self._info()["id_type"])

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called on this object."""
        return self._closed

    def info(self) -> Dict[str, Any]:
        """The server's description of the collection (fetched anew): ``name``, ``dim``,
        ``metric``, ``index_type``, ``id_type``, ``quantization``, ``count``, ``config``."""
        info: Dict[str, Any] = self._call("GET", "")
        self._info_cache = info
        return info

    def close(self) -> None:
        """Stops this object from being used (ClosedError after); the collection stays
        on the server. A second close is a no-op."""
        self._closed = True

    def __enter__(self) -> RemoteCollection:
        return self

    def __exit__(self, *_args: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteCollection({self._client.url!r}, {self._name!r})"

    # -- writes ------------------------------------------------------------------------

    def _write_one(
        self,
        mode: str,
        id: _Id,
        vector: _VectorLike,
        metadata: Optional[_MetadataLike],
        document: Optional[str],
    ) -> None:
        body: Dict[str, Any] = {
            "mode": mode,
            "ids": [_as_id(id)],
            "vectors": [_vector_json(vector)],
        }
        if metadata is not None:
            body["metadatas"] = [_metadata_json(metadata)]
        if document is not None:
            body["documents"] = [_document_json(document)]
        self._call("POST", "/records", body)

    def add(
        self,
        id: _Id,
        vector: _VectorLike,
        metadata: Optional[_MetadataLike] = None,
        document: Optional[str] = None,
    ) -> None:
        """Adds a vector; an existing id raises DuplicateIdError."""
        self._write_one("add", id, vector, metadata, document)

    def upsert(
        self,
        id: _Id,
        vector: _VectorLike,
        metadata: Optional[_MetadataLike] = None,
        document: Optional[str] = None,
    ) -> None:
        """Inserts or replaces a vector; metadata and document replace the stored ones
        when given and are kept otherwise."""
        self._write_one("upsert", id, vector, metadata, document)

    def update(
        self,
        id: _Id,
        vector: Optional[_VectorLike] = None,
        metadata: Optional[_MetadataUpdate] = None,
        document: Optional[str] = None,
        merge: bool = True,
    ) -> None:
        """Changes the vector, metadata and/or document of an existing id
        (IdNotFoundError otherwise); what is None is kept. Metadata is merged into the
        stored one (a key given None is removed; tags are added) or, with merge=False,
        replaces it."""
        body: Dict[str, Any] = {"id": _as_id(id), "merge": bool(merge)}
        if vector is not None:
            body["vector"] = _vector_json(vector)
        if metadata is not None:
            body["metadata"] = _metadata_json(metadata, allow_null=True)
        if document is not None:
            body["document"] = _document_json(document)
        self._call("POST", "/records/update", body)

    def _write_many(
        self,
        mode: str,
        ids: _Ids,
        vectors: Union[Sequence[_VectorLike], npt.NDArray[Any]],
        metadata: Optional[Sequence[Optional[_MetadataLike]]],
        documents: Optional[Sequence[Optional[str]]],
        progress: _Progress = None,
    ) -> int:
        id_list = _id_list(ids)
        rows = self._rows(vectors)
        if len(id_list) != rows.shape[0]:
            raise ValueError(f"{len(id_list)} ids but {rows.shape[0]} vectors")
        tail: Dict[str, Any] = {"mode": mode, "ids": id_list}
        if metadata is not None:
            metas = list(metadata)
            if len(metas) != len(id_list):
                raise ValueError(f"{len(id_list)} ids but {len(metas)} metadata entries")
            tail["metadatas"] = [None if m is None else _metadata_json(m) for m in metas]
        if documents is not None:
            docs = list(documents)
            if len(docs) != len(id_list):
                raise ValueError(f"{len(id_list)} ids but {len(docs)} documents entries")
            for r, d in enumerate(docs):
                if d is not None and not isinstance(d, str):
                    raise TypeError(
                        f"documents row {r} (id {id_list[r]!r}): document must be str or "
                        f"None, got {type(d).__name__}"
                    )
            tail["documents"] = docs
        if not id_list:
            return 0
        report, bar = _reporter(progress, f"bulk_{mode}")
        try:
            if report is not None:
                report("writing", 0, len(id_list))
            out = self._call("POST", "/records", raw=(rows, tail))
            if report is not None:
                report("writing", len(id_list), len(id_list))
        finally:
            if bar is not None:
                bar.close()
        return int(out["written"])

    def bulk_add(
        self,
        ids: _Ids,
        vectors: Union[Sequence[_VectorLike], npt.NDArray[Any]],
        metadata: Optional[Sequence[Optional[_MetadataLike]]] = None,
        documents: Optional[Sequence[Optional[str]]] = None,
        progress: _Progress = None,
    ) -> int:
        """Adds many vectors in one atomic write; returns the number added. The rows go
        to the server as raw float32 (a NaN row is refused there: InvalidVectorError);
        an id already stored or given twice raises DuplicateIdError. ``progress`` reports
        the request sent and acknowledged (see the class docs)."""
        return self._write_many("add", ids, vectors, metadata, documents, progress)

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
        entry of None keeps them). ``progress`` as for ``bulk_add``."""
        return self._write_many("upsert", ids, vectors, metadata, documents, progress)

    def remove(self, id: _Id) -> bool:
        """Removes an id; returns whether it was there."""
        out = self._call("POST", "/records/delete", {"ids": [_as_id(id)], "filter": None})
        return int(out["removed"]) > 0

    def bulk_remove(self, ids: _Ids) -> int:
        """Removes many ids atomically; returns how many were there."""
        out = self._call("POST", "/records/delete", {"ids": _id_list(ids), "filter": None})
        return int(out["removed"])

    def delete(self, ids: Optional[_Ids] = None, filter: Optional[_Filter] = None) -> int:
        """Removes atomically the records among ``ids`` and/or those ``filter`` allows;
        returns how many were removed. Give at least one; ``filter={}``, which matches
        every record, is refused (``clear()`` removes all)."""
        if ids is None and filter is None:
            raise TypeError("delete() needs ids and/or a filter; clear() removes every record")
        body = {"ids": None if ids is None else _id_list(ids), "filter": filter}
        out = self._call("POST", "/records/delete", body)
        return int(out["removed"])

    def clear(self) -> int:
        """Removes every record atomically; returns how many there were."""
        return int(self._call("POST", "/records/clear", {})["removed"])

    def flush(self) -> None:
        """Syncs the collection's write-ahead log on the server (acknowledged writes then
        survive power loss)."""
        self._call("POST", "/flush", {})

    # -- reads -------------------------------------------------------------------------

    def _get_one(self, id: _Id, what: str) -> Optional[Dict[str, Any]]:
        out = self._call(
            "POST", "/records/get", {"ids": [_as_id(id)], "include": [what]}, idempotent=True
        )
        if not out.get("ids"):
            return None
        result: Dict[str, Any] = out
        return result

    def get(self, id: _Id) -> Optional[Vector]:
        """The vector stored for ``id`` (None if absent)."""
        out = self._get_one(id, "vector")
        return None if out is None else Vector(np.asarray(out["vectors"][0], dtype=np.float32))

    def get_metadata(self, id: _Id) -> Optional[Metadata]:
        """The metadata stored for ``id`` (None if absent): its fields and tags; the
        ``created_at``/``updated_at``/``version`` bookkeeping is that of a new Metadata
        (it cannot be set from Python)."""
        out = self._get_one(id, "metadata")
        return None if out is None else _metadata_from_json(out["metadatas"][0])

    def get_document(self, id: _Id) -> Optional[str]:
        """The document stored for ``id`` (None if absent or stored without one)."""
        out = self._get_one(id, "document")
        if out is None:
            return None
        doc: Optional[str] = out["documents"][0]
        return doc

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
        every record in id order. Then only those ``filter`` allows, after the id
        ``after``, skipping ``offset``, at most ``limit``."""
        for name, value in (("limit", limit), ("offset", offset)):
            if value is not None and (
                isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer))
            ):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        body = {
            "ids": None if ids is None else _id_list(ids),
            "include": None if include is None else list(include),
            "filter": filter,
            "limit": limit,
            "offset": offset,
            "after": _as_id(after),
        }
        out = self._call("POST", "/records/get", body, idempotent=True)
        result: Dict[str, Any] = {"ids": list(out.get("ids", []))}
        if "vectors" in out:
            result["vectors"] = _float32_rows(out["vectors"], lambda: self.dim)
        if "metadatas" in out:
            result["metadatas"] = [_metadata_from_json(m) for m in out["metadatas"]]
        if "documents" in out:
            result["documents"] = list(out["documents"])
        return result

    def list_ids(self) -> List[Any]:
        """Every id, sorted: ints ascending, strs by their UTF-8 bytes."""
        ids: List[Any] = self.get_many(include=[])["ids"]
        return ids

    def iter_pages(
        self,
        filter: Optional[_Filter] = None,
        include: Optional[_Include] = None,
        batch_size: int = 1000,
    ) -> Iterator[Dict[str, Any]]:
        """Every record ``filter`` allows, in id order, as get_many dicts of at most
        ``batch_size`` records (one request each, paged with ``after=``)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
        if batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be at least 1, got {batch_size}")
        return self._pages(filter, include, batch_size)

    def _pages(
        self, filter: Optional[_Filter], include: Optional[_Include], batch_size: int
    ) -> Iterator[Dict[str, Any]]:
        after: Optional[_Id] = None
        while True:
            page = self.get_many(include=include, filter=filter, limit=batch_size, after=after)
            if not page["ids"]:
                return
            yield page
            if len(page["ids"]) < batch_size:
                return
            after = page["ids"][-1]

    def iter_records(
        self,
        filter: Optional[_Filter] = None,
        include: Optional[_Include] = None,
        batch_size: int = 1000,
    ) -> Iterator[RemoteRecord]:
        """Every record ``filter`` allows as a RemoteRecord, in id order, read
        ``batch_size`` at a time."""
        pages = self.iter_pages(filter, include, batch_size)

        def records() -> Iterator[RemoteRecord]:
            for page in pages:
                vectors = page.get("vectors")
                metas = page.get("metadatas")
                docs = page.get("documents")
                for r, id in enumerate(page["ids"]):
                    yield RemoteRecord(
                        id=id,
                        vector=None if vectors is None else vectors[r].copy(),
                        metadata=None if metas is None else metas[r],
                        document=None if docs is None else docs[r],
                    )

        return records()

    def __iter__(self) -> Iterator[Any]:
        """Every id in id order, read 1,000 at a time."""
        for page in self.iter_pages(include=[]):
            yield from page["ids"]

    def count(self, filter: Optional[_Filter] = None) -> int:
        """The number of records ``filter`` allows (all of them without one)."""
        out = self._call("POST", "/records/count", {"filter": filter}, idempotent=True)
        return int(out["count"])

    def __len__(self) -> int:
        return self.count()

    def contains(self, id: _Id) -> bool:
        """Whether ``id`` is stored; an id of the wrong kind raises IdTypeError."""
        out = self._call("POST", "/records/contains", {"id": _as_id(id)}, idempotent=True)
        return bool(out["contains"])

    def __contains__(self, id: object) -> bool:
        """Whether ``id`` is stored; like a dict, a value that cannot be an id of this
        collection is simply not in it."""
        if isinstance(id, (bool, np.bool_)) or not isinstance(id, (int, str, np.integer)):
            return False
        try:
            return self.contains(_as_id(id))
        except (InvalidArgumentError, _errors.BadRequestError, OverflowError):
            return False

    # -- search ------------------------------------------------------------------------

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
    ) -> List[RemoteSearchHit]: ...
    def search(
        self,
        query: _VectorLike,
        k: int = 10,
        filter: Optional[_Filter] = None,
        ef_search: Optional[int] = None,
        include: Optional[_Include] = None,
        quantized: Optional[bool] = None,
        nprobe: Optional[int] = None,
        recall: Optional[float] = None,
    ) -> Union[List[Tuple[Any, float]], List[RemoteSearchHit]]:
        """The ``k`` nearest records to ``query`` that ``filter`` allows, nearest first:
        (id, distance) pairs or, with ``include`` (names among "vector", "metadata",
        "document"), RemoteSearchHit objects. k must be at least 1 (ValueError).
        ``quantized=False``: walk an HNSW graph on the full rows; ``nprobe``: the lists
        an IVF index scans; ``recall``: a recall@k target the server's database meets
        by calibration (see NusterDB.search)."""
        body = {
            "query": _vector_json(query),
            "k": _check_k(k),
            "filter": filter,
            "ef_search": ef_search,
            "include": None if include is None else list(include),
            "quantized": quantized,
            "nprobe": nprobe,
            "recall": recall,
        }
        hits = self._call("POST", "/search", body, idempotent=True)["hits"]
        if include is None:
            return [(h["id"], _f32(h["distance"])) for h in hits]
        return [
            RemoteSearchHit(
                id=h["id"],
                distance=_f32(h["distance"]),
                vector=None
                if h.get("vector") is None
                else np.asarray(h["vector"], dtype=np.float32),
                metadata=None if h.get("metadata") is None else _metadata_from_json(h["metadata"]),
                document=h.get("document"),
            )
            for h in hits
        ]

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
    ) -> Dict[str, Any]: ...
    def batch_search(
        self,
        queries: Union[Sequence[_VectorLike], npt.NDArray[Any]],
        k: int = 10,
        filter: Optional[_Filter] = None,
        ef_search: Optional[int] = None,
        progress: _Progress = None,
        include: Optional[_Include] = None,
        quantized: Optional[bool] = None,
        nprobe: Optional[int] = None,
        recall: Optional[float] = None,
    ) -> Union[Tuple[npt.NDArray[Any], npt.NDArray[np.float32]], Dict[str, Any]]:
        """(ids, distances) of shape (n, min(k, number of stored vectors)), nearest
        first, padded where fewer match (a filter): ids int64 padded with -1 (string
        ids: an object array padded with None), distances float32 padded with inf.
        The queries go to the server as raw float32 (a NaN is refused there:
        InvalidVectorError).

        With ``include`` a dict instead: "ids" and "distances" (the same arrays) and, as
        asked, "metadatas" and "documents" (n lists of w entries, None for padding) and
        "vectors" (float32 (n, w, dim), NaN rows for padding). With ``progress`` the
        queries are sent 1,024 at a time, reporting ("searching", done, n) after each;
        ``quantized``, ``nprobe`` and ``recall`` as for ``search``."""
        k = _check_k(k)
        rows = self._rows(queries, what="queries")
        n = rows.shape[0]
        tail = {
            "k": k,
            "filter": filter,
            "ef_search": ef_search,
            "include": None if include is None else list(include),
            "quantized": quantized,
            "nprobe": nprobe,
            "recall": recall,
        }
        report, bar = _reporter(progress, "batch_search")
        step = n if report is None else _PROGRESS_QUERIES
        id_rows: List[List[Any]] = []
        dist_rows: List[List[Any]] = []
        out: Dict[str, Any] = {}
        width = 0
        try:
            if n == 0:
                width = min(k, self.count())
            for start in range(0, n, max(step, 1)):
                part = self._call(
                    "POST",
                    "/batch_search",
                    raw=(rows[start : start + step], tail),
                    idempotent=True,
                )
                id_rows.extend(part["ids"])
                dist_rows.extend(part["distances"])
                for key in ("vectors", "metadatas", "documents"):
                    if key in part:
                        out.setdefault(key, []).extend(part[key])
                width = max([width] + [len(r) for r in part["ids"]])
                if report is not None:
                    report("searching", min(start + step, n), n)
        finally:
            if bar is not None:
                bar.close()
        ids = self._ids_array(id_rows, width)
        dists = np.full((n, width), np.inf, dtype=np.float32)
        try:  # every row width long: one conversion (padding's null becomes NaN)
            full = np.asarray(dist_rows, dtype=np.float32) if n and width else None
        except (TypeError, ValueError):
            full = None
        if full is not None and full.shape == (n, width):
            dists = np.where(np.isnan(full), np.float32(np.inf), full).astype(np.float32)
        else:
            for r, row in enumerate(dist_rows):
                for c, value in enumerate(row[:width]):
                    if value is not None:
                        dists[r, c] = value
        if include is None:
            return ids, dists
        result: Dict[str, Any] = {"ids": ids, "distances": dists}
        wanted = set(include)
        if "vector" in wanted:
            dim = self.dim
            vecs = np.full((n, width, dim), np.nan, dtype=np.float32)
            for r, row in enumerate(out.get("vectors", [])):
                for c, value in enumerate(row[:width]):
                    if value is not None:
                        vecs[r, c] = np.asarray(value, dtype=np.float32)
            result["vectors"] = vecs
        if "metadata" in wanted:
            result["metadatas"] = [
                [None if m is None else _metadata_from_json(m) for m in _padded(row, width)]
                for row in out.get("metadatas", [[]] * n)
            ]
        if "document" in wanted:
            result["documents"] = [
                list(_padded(row, width)) for row in out.get("documents", [[]] * n)
            ]
        return result

    # -- stats -------------------------------------------------------------------------

    def stats(self) -> RemoteStats:
        """Figures about the collection, measured by the server (see RemoteStats)."""
        s = self._call("GET", "/stats")
        resident = s.get("mapped_resident_bytes")
        return RemoteStats(
            vector_count=int(s["vector_count"]),
            dimension=int(s["dimension"]),
            index_type=str(s["index_type"]),
            distance_metric=str(s["metric"]),
            metadata_keys=list(s.get("metadata_keys", [])),
            deleted_count=int(s.get("deleted_count", 0)),
            memory_bytes=int(s.get("memory_bytes", 0)),
            memory_by_part={str(k): int(v) for k, v in (s.get("memory_by_part") or {}).items()},
            mapped_bytes=int(s.get("mapped_bytes", 0)),
            mapped_resident_bytes=None if resident is None else int(resident),
            disk_bytes=int(s.get("disk_bytes", 0)),
        )

    # -- snapshots ---------------------------------------------------------------------

    def _snapshot(self, name: Optional[str], metadata: Optional[_MetadataLike]) -> str:
        body = {
            "name": name,
            "metadata": None if metadata is None else _metadata_json(metadata),
        }
        return str(self._call("POST", "/snapshots", body)["name"])

    def snapshot(self) -> str:
        """Takes a snapshot under a generated name; returns the name."""
        return self._snapshot(None, None)

    def snapshot_named(self, name: str) -> str:
        """Takes a snapshot called ``name``; a name already taken raises
        NusterDBIOError (errno.EEXIST)."""
        return self._snapshot(name, None)

    def snapshot_with_metadata(self, name: str, metadata: _MetadataLike) -> str:
        """Takes a snapshot called ``name`` with ``metadata`` attached; returns the name."""
        return self._snapshot(name, metadata)

    def list_snapshots(self) -> List[Dict[str, Any]]:
        """Oldest first: dicts of name, created_at, vector_count, auto and metadata (its
        fields, as a dict)."""
        snaps: List[Dict[str, Any]] = []
        for s in self._call("GET", "/snapshots")["snapshots"]:
            entry = dict(s)
            meta = entry.get("metadata")
            if isinstance(meta, Mapping) and isinstance(meta.get("fields"), Mapping):
                entry["metadata"] = dict(meta["fields"])
            elif meta is None:
                entry["metadata"] = {}
            snaps.append(entry)
        return snaps

    def restore_snapshot(
        self,
        name: str,
        target_path: Optional[Any] = None,
        keep_snapshots: Optional[bool] = None,
    ) -> None:
        """Rolls the collection back to the snapshot ``name`` in place (admin scope);
        every snapshot is kept. ``target_path`` (a copy elsewhere) is not available
        through a server: InvalidArgumentError. An unknown name raises the error the
        server reports for it."""
        if target_path is not None:
            raise InvalidArgumentError(
                "a collection on a server is restored in place only: target_path must be None"
            )
        if keep_snapshots is False:
            raise InvalidArgumentError(
                "keep_snapshots=False needs a target_path: a restore in place (no target) "
                "always keeps every snapshot"
            )
        self._call("POST", f"/snapshots/{_quote(name)}/restore", {})

    def delete_snapshot(self, name: str) -> None:
        """Deletes the snapshot ``name`` (admin scope); an unknown name raises the error
        the server reports for it."""
        self._call("DELETE", f"/snapshots/{_quote(name)}")


def _padded(row: Optional[Sequence[Any]], width: int) -> List[Any]:
    values = list(row or [])[:width]
    return values + [None] * (width - len(values))
