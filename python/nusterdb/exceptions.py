"""The exception classes of NusterDB.

They live in Python so each can also be a built-in exception (a
``DimensionMismatchError`` is a ``ValueError``), and the Rust extension raises them
directly. Catch ``NusterDBError`` to handle every error NusterDB raises itself.
"""

from __future__ import annotations

__all__ = [
    "ClosedError",
    "ConfigMismatchError",
    "CorruptionError",
    "DamagedSnapshotWarning",
    "DatabaseLockedError",
    "DatabaseNotFoundError",
    "DimensionMismatchError",
    "DuplicateIdError",
    "FilterError",
    "ForkedProcessError",
    "IdNotFoundError",
    "IdTypeError",
    "IndexRebuiltWarning",
    "InvalidArgumentError",
    "InvalidVectorError",
    "NotADatabaseError",
    "NusterDBError",
    "NusterDBIOError",
    "ReadOnlyError",
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
