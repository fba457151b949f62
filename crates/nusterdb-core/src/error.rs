//! The one error type of the core. Every fallible public function returns
//! [`Result<T>`]; variants carry the data a caller needs (numbers, ids, paths) so the
//! bindings can map each to a typed exception without parsing messages.

use std::path::PathBuf;

use crate::ids::Id;

/// Result alias used throughout the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in NusterDB.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two vectors (or a vector and a database) disagree on dimension.
    #[error("dimension mismatch: expected {expected}, got {got}")]
    DimensionMismatch { expected: usize, got: usize },

    /// A vector with no components.
    #[error("vector is empty: a vector needs at least one component")]
    EmptyVector,

    /// NaN or ±Inf in a vector, a query or an arithmetic result.
    #[error("vector has a non-finite value ({value}) at position {position}")]
    NonFinite { position: usize, value: f32 },

    /// An argument outside its documented domain (bad name, zero capacity, ...).
    #[error("{0}")]
    InvalidArgument(String),

    /// Division of a vector by zero (a scalar zero or a zero component).
    #[error("division by zero at position {position}")]
    DivisionByZero { position: usize },

    /// An id that is already stored.
    #[error("id {0} already exists")]
    DuplicateId(Id),

    /// An id given more than once in one batch.
    #[error("id {id} appears more than once in the batch (rows {first} and {again})")]
    RepeatedId { id: Id, first: usize, again: usize },

    /// Long work stopped by its [`crate::progress::Observer`] (Ctrl-C, or a progress
    /// callback that raised): nothing was stored or opened.
    #[error("interrupted while {0}: nothing was changed")]
    Interrupted(&'static str),

    /// An id that is not stored (for operations that need it, like `update`).
    #[error("id {0} not found")]
    IdNotFound(Id),

    /// An encrypted database opened without its key, with a wrong one, or a key given
    /// for a database that is not encrypted: nothing was read or modified.
    #[error("encryption key error at {}: {detail}", path.display())]
    EncryptionKey { path: PathBuf, detail: String },

    /// A given configuration disagrees with the one stored in the database.
    #[error(
        "config mismatch for {field}: the database stores {stored}, {given} was given \
         (only what is passed is checked; NusterDB.open(path) opens it with its stored config)"
    )]
    ConfigMismatch {
        field: &'static str,
        stored: String,
        given: String,
    },

    /// A malformed metadata filter; `at` is the path into the filter.
    #[error("invalid filter at {at}: {msg}")]
    Filter { at: String, msg: String },

    /// Another writer holds the database.
    #[error(
        "database at {path} is locked by another writer (another process, or another handle \
         in this process); close it, or open with read_only=True"
    )]
    Locked { path: PathBuf },

    /// Files that are damaged or were not written by NusterDB.
    /// A path that holds something other than a NusterDB database (a file, an
    /// unrelated directory, another program's RocksDB database); nothing in it is
    /// touched.
    #[error("{path} is not a NusterDB database: {detail}")]
    NotADatabase { path: PathBuf, detail: String },

    /// No database at `path` where one must exist (an open without a config, a
    /// read-only open, a verify).
    #[error("no database at {path}: {detail}")]
    NoDatabase { path: PathBuf, detail: String },

    #[error("corruption in {path}: {detail}")]
    Corruption { path: PathBuf, detail: String },

    /// Use of a handle after `close()`.
    #[error("the database is closed")]
    Closed,

    /// A write through a read-only handle.
    #[error("the database is open read-only")]
    ReadOnly,

    /// Use of a handle in a process forked from the one that opened it. The child
    /// shares the parent's files but not its threads; the handle does nothing there.
    #[error(
        "this database handle was opened in process {opened_in} and cannot be used in \
         process {current}, a child made by fork(); open the database in the child \
         instead (with multiprocessing: open it in each worker, or use the \"spawn\" or \
         \"forkserver\" start method)"
    )]
    Forked { opened_in: u32, current: u32 },

    /// An open in a process forked from one that had opened a database: RocksDB's
    /// background threads, started by that open, do not exist in the child.
    #[error(
        "this process ({current}) was made by fork() from process {started_in} after that \
         process had opened a database; the storage engine's background threads do not \
         survive fork(), so no database can be opened here. Start worker processes \
         with the \"spawn\" or \"forkserver\" multiprocessing start method, or fork \
         before opening any database"
    )]
    ForkedEngine { started_in: u32, current: u32 },

    /// An operating-system I/O failure on a path.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A failure reported by the storage engine that is none of the above.
    #[error("storage engine error: {0}")]
    Storage(String),

    /// A snapshot name or a restore target that is already taken (also by a racing
    /// thread or process that got there first).
    #[error("{detail}")]
    AlreadyExists { path: PathBuf, detail: String },

    /// A writer open of a snapshot directory: snapshots are read-only, so a restore
    /// returns what was snapshotted.
    #[error(
        "{path} is a snapshot, which cannot be opened for writing: open it with \
         read_only=True, or copy it to a database of its own with \
         restore_snapshot(name, target_path)"
    )]
    SnapshotNotWritable { path: PathBuf },
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
}
