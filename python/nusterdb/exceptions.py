"""The exception classes of NusterDB.

They live in Python so each can also be a built-in exception (a
``DimensionMismatchError`` is a ``ValueError``), and the Rust extension raises them
directly. Catch ``NusterDBError`` to handle every error NusterDB raises itself.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

__all__ = [
    "BadRequestError",
    "ClosedError",
    "CollectionExistsError",
    "CollectionNotFoundError",
    "ConfigMismatchError",
    "CorruptionError",
    "DamagedSnapshotWarning",
    "DatabaseLockedError",
    "DatabaseNotFoundError",
    "DimensionMismatchError",
    "DuplicateIdError",
    "EncryptionKeyError",
    "FilterError",
    "ForbiddenError",
    "ForkedProcessError",
    "IdNotFoundError",
    "IdTypeError",
    "IndexRebuiltWarning",
    "InvalidArgumentError",
    "InvalidVectorError",
    "NotADatabaseError",
    "NusterDBError",
    "NusterDBIOError",
    "PayloadTooLargeError",
    "ReadOnlyError",
    "ServerError",
    "ServerTimeoutError",
    "UnauthorizedError",
]


class NusterDBError(Exception):
    """Base class of every error raised by NusterDB."""


class DimensionMismatchError(NusterDBError, ValueError):
    """Two vectors, or a vector and a database, have different dimensions."""


class InvalidVectorError(NusterDBError, ValueError):
    """An empty vector, or one with NaN/±Inf (the message names the position)."""


class InvalidArgumentError(NusterDBError, ValueError):
    """An argument outside its documented domain: an unknown metric or compression
    name, a configuration value out of range, a bad metadata key."""


class IdTypeError(InvalidArgumentError, TypeError):
    """An id of the wrong kind for the database: a ``str`` for an int-id database, or
    anything but a ``str`` for a string-id one (``DatabaseConfig(id_type=...)``). Both
    an ``InvalidArgumentError`` and a ``TypeError``."""


class DuplicateIdError(NusterDBError, ValueError):
    """An id that is already stored, or repeated within one batch."""


class IdNotFoundError(NusterDBError, KeyError):
    """An operation that needs an existing id (``update``) was given an absent one."""

    def __str__(self) -> str:
        # KeyError quotes its argument; a sentence reads better unquoted.
        return str(self.args[0]) if self.args else ""


class ConfigMismatchError(NusterDBError, ValueError):
    """The configuration given when reopening disagrees with the stored one."""


class FilterError(NusterDBError, ValueError):
    """A malformed metadata filter; the message gives the path into the filter."""


class DatabaseLockedError(NusterDBError):
    """Another writer (process or handle) holds the database, or is creating it."""


class CorruptionError(NusterDBError):
    """Damaged files, or files not written by NusterDB."""


class NotADatabaseError(CorruptionError):
    """The path holds something other than a NusterDB database: a file, an unrelated
    directory, another program's RocksDB database. Nothing in it was touched. (A
    ``CorruptionError`` subclass, so handlers written for that still catch it.)"""


class EncryptionKeyError(NusterDBError):
    """An encrypted database opened without its master key or with a wrong one, a key
    given for a database that is not encrypted, or a key provider that yields no valid
    32-byte key. Nothing was read or modified."""


class ClosedError(NusterDBError):
    """The database handle was used after ``close()``."""


class ReadOnlyError(NusterDBError):
    """A write through a read-only handle, or a writer open of a snapshot directory
    (snapshots open only with ``read_only=True``; ``restore_snapshot`` makes a writable
    copy)."""


class ForkedProcessError(NusterDBError):
    """A database handle was used in a child process made by ``fork()`` (for example a
    ``multiprocessing`` worker with the "fork" start method) from the process that
    opened it, or such a child tried to open a database after its parent had opened one
    (the storage engine's background threads do not survive ``fork()``). Start workers
    with the "spawn" or "forkserver" start method and open the database in each.
    Closing or dropping an inherited handle in the child is harmless and leaves the
    parent's database untouched."""


class NusterDBIOError(NusterDBError, OSError):
    """An operating-system I/O failure; ``.filename`` holds the path. A snapshot name
    or restore target that is already taken has ``errno == errno.EEXIST``."""


class DatabaseNotFoundError(NusterDBIOError, FileNotFoundError):
    """No database at the path where one must exist: an open without a config or
    ``dim``, a read-only open, a verify. ``errno`` is ``ENOENT``; ``filename`` the path."""


class IndexRebuiltWarning(RuntimeWarning):
    """The saved HNSW graph file could not be used (damaged, unreadable, or made with
    other parameters) and the graph was rebuilt from the stored vectors. Nothing was
    lost; only the open took longer. The rebuilt graph is sealed again at once."""


class DamagedSnapshotWarning(RuntimeWarning):
    """A snapshot whose manifest cannot be read was left out of ``list_snapshots()``
    (and out of automatic pruning). The other snapshots are listed as usual;
    ``delete_snapshot(name)`` removes the damaged one."""


class ServerError(NusterDBError):
    """An error reported by a NusterDB server (``nusterdb.client``) that has no
    counterpart in the embedded database, and the base of the server-only errors below.
    ``status`` is the HTTP status, ``details`` the error body's ``details`` object and
    ``error_type`` the type name the server gave (a name this module does not define
    raises a plain ``ServerError``)."""

    def __init__(
        self,
        message: str = "",
        status: Optional[int] = None,
        details: Optional[Dict[str, Any]] = None,
        error_type: Optional[str] = None,
    ) -> None:
        """ServerError(message, status=None, details=None, error_type=None): the error
        body's ``message``, the HTTP ``status``, the body's ``details`` object and the
        ``error_type`` name the server gave (default: the class's own name)."""
        super().__init__(message)
        self.status = status
        self.details: Dict[str, Any] = dict(details or {})
        self.error_type = error_type if error_type is not None else type(self).__name__


class UnauthorizedError(ServerError):
    """HTTP 401: no API key, an unknown one, or a revoked one. Made as
    ``ServerError(message, status, details, error_type)``."""


class ForbiddenError(ServerError):
    """HTTP 403: the API key lacks the scope the route needs, or is not granted the
    collection. Made as
    ``ServerError(message, status, details, error_type)``."""


class CollectionNotFoundError(ServerError):
    """HTTP 404: no collection of that name on the server. Made as
    ``ServerError(message, status, details, error_type)``."""


class CollectionExistsError(ServerError):
    """HTTP 409: a collection of that name already exists. Made as
    ``ServerError(message, status, details, error_type)``."""


class BadRequestError(ServerError, ValueError):
    """HTTP 400: a request the server could not read (malformed JSON, a field of the
    wrong type, a bad ``X-NusterDB-Shape`` header). Made as
    ``ServerError(message, status, details, error_type)``."""


class PayloadTooLargeError(ServerError):
    """HTTP 413: the request body is over the server's ``--max-body-mb`` limit. Made as
    ``ServerError(message, status, details, error_type)``."""


class ServerTimeoutError(ServerError):
    """HTTP 503 with type ``TimeoutError``: the request ran past the server's
    ``--timeout-secs``. A write may still complete. Made as
    ``ServerError(message, status, details, error_type)``."""
