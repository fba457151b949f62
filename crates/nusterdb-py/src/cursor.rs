//! Iterating over a database in id order, one page at a time: `iter(db)` (ids),
//! `iter_records` (`Record` objects) and `iter_pages` (`get_many` dicts).
//!
//! Each page is one `Database::select` after the last id of the previous page (the
//! `after=` cursor of `get_many`), so memory holds one page, and writes between pages
//! act on a cursor: an id stored for the whole iteration comes exactly once, in id
//! order; one added or removed meanwhile may or may not.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use nusterdb_core::db::{Include, Record, Selection};
use nusterdb_core::filter::Filter;
use nusterdb_core::Id;
use pyo3::prelude::*;

use crate::convert::to_count;
use crate::database::PyNusterDB;
use crate::errors::{IntoPyResult, InvalidArgumentError};
use crate::ids::id_to_py;
use crate::records::{records_dict, PyRecord};

/// Records per page when `batch_size` is not given.
pub const DEFAULT_BATCH_SIZE: usize = 1000;

/// `batch_size=`: an int ≥ 1 (None: the default), checked as `get_many`'s `limit`
/// (`to_count`: a bool, float or str is a `TypeError`, a negative int an
/// `InvalidArgumentError`), and 0 is an `InvalidArgumentError` too: no page could make
/// progress.
pub fn to_batch_size(obj: Option<&Bound<'_, PyAny>>) -> PyResult<usize> {
    let Some(o) = obj.filter(|o| !o.is_none()) else {
        return Ok(DEFAULT_BATCH_SIZE);
    };
    match to_count(o, "batch_size")? {
        0 => Err(InvalidArgumentError::new_err(
            "batch_size must be at least 1, got 0",
        )),
        n => Ok(n),
    }
}

/// What an iterator yields.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Yields {
    /// Ids (`iter(db)`).
    Ids,
    /// One `Record` per record (`iter_records`).
    Records,
    /// One `get_many` dict per page (`iter_pages`).
    Pages,
}

/// Where an iterator is: after which id, the rest of the current page, and whether
/// the last page was read.
struct Cursor {
    after: Option<Id>,
    buffer: VecDeque<Record>,
    done: bool,
}

/// The next thing to yield.
enum Step {
    One(Record),
    Page(Vec<Record>),
    End,
}

/// An iterator over a database's records in id order (ints ascending, strs by their
/// UTF-8 bytes), read a page of `batch_size` at a time with the `after=` cursor of
/// `get_many`: memory holds one page. Writes between pages act as on a cursor: an id
/// stored for the whole iteration is yielded exactly once; one added or removed
/// meanwhile may or may not be. Safe to share between threads (each record still
/// comes once). Made by `iter(db)`, `db.iter_records()` and `db.iter_pages()`.
#[pyclass(name = "RecordIterator", module = "nusterdb._core", frozen)]
pub struct PyRecordIterator {
    db: Py<PyNusterDB>,
    filter: Option<Filter>,
    include: Include,
    batch_size: usize,
    yields: Yields,
    cursor: Mutex<Cursor>,
}

impl PyRecordIterator {
    pub fn new(
        db: Py<PyNusterDB>,
        filter: Option<Filter>,
        include: Include,
        batch_size: usize,
        yields: Yields,
    ) -> Self {
        Self {
            db,
            filter,
            include,
            batch_size,
            yields,
            cursor: Mutex::new(Cursor {
                after: None,
                buffer: VecDeque::new(),
                done: false,
            }),
        }
    }

    /// The next record or page, reading a page when the buffer is empty.
    fn step(&self) -> nusterdb_core::Result<Step> {
        // A panic cannot happen while the lock is held (no unwrap in here), but a
        // poisoned lock would still hold a consistent cursor.
        let mut c = self.cursor.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(r) = c.buffer.pop_front() {
            return Ok(Step::One(r));
        }
        if c.done {
            return Ok(Step::End);
        }
        let sel = Selection {
            ids: None,
            filter: self.filter.as_ref(),
            after: c.after.as_ref(),
            offset: 0,
            limit: Some(self.batch_size),
        };
        let page = self.db.get().database().select(sel, self.include)?;
        // A short page is the last one; ids added behind the cursor after it are
        // among those that "may or may not" appear.
        c.done = page.len() < self.batch_size;
        let Some(last) = page.last() else {
            c.done = true;
            return Ok(Step::End);
        };
        c.after = Some(last.id.clone());
        if self.yields == Yields::Pages {
            return Ok(Step::Page(page));
        }
        c.buffer.extend(page);
        Ok(c.buffer.pop_front().map_or(Step::End, Step::One))
    }
}

#[pymethods]
impl PyRecordIterator {
    /// The iterator itself.
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next id, `Record` or page; StopIteration after the last. Raises
    /// ClosedError if the database was closed meanwhile.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        // The page is read without the GIL, like every call that takes the
        // database's lock; the cursor's own lock is taken there too, so a second
        // thread on this iterator waits without holding the GIL.
        let step = py.detach(|| self.step()).py()?;
        match step {
            Step::End => Ok(None),
            Step::One(r) if self.yields == Yields::Ids => Ok(Some(id_to_py(py, &r.id)?)),
            Step::One(r) => Ok(Some(Py::new(py, PyRecord::new(py, r)?)?.into_any())),
            Step::Page(page) => {
                let dim = self.db.get().database().config().dim;
                Ok(Some(
                    records_dict(py, page, self.include, dim)?
                        .into_any()
                        .unbind(),
                ))
            }
        }
    }

    fn __repr__(&self) -> String {
        let what = match self.yields {
            Yields::Ids => "ids",
            Yields::Records => "records",
            Yields::Pages => "pages",
        };
        format!("RecordIterator({what}, batch_size={})", self.batch_size)
    }
}
