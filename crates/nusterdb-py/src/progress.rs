//! Long calls watched from Python: Ctrl-C and the `progress=` argument.
//!
//! The core calls the observer on the calling thread between pieces of work (about
//! every 50 ms, with the GIL released); the observer takes the GIL for a moment, runs
//! Python's signal handlers (a Ctrl-C there raises `KeyboardInterrupt`) and the
//! progress callback, and stops the work if either raised. The call then returns that
//! exception, the database unchanged.
//!
//! The observer runs while the call holds the database's lock, so it takes the GIL
//! while holding that lock: every binding therefore waits for the database lock with
//! the GIL released (`py.detach`), or the two could deadlock.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nusterdb_core::progress::{Observer, Phase};
use nusterdb_core::Error;
use pyo3::exceptions::{PyKeyboardInterrupt, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyBool;

use crate::convert::type_name;
use crate::errors::to_py_err;

/// Observer calls closer together than this skip Python, except the last one.
const THROTTLE: Duration = Duration::from_millis(20);

/// How long work runs before the automatic bar (stderr a terminal) shows.
const AUTO_DELAY_SECS: f64 = 1.0;

/// A lock that a panic elsewhere cannot poison for good (the data is plain).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The observer of one call.
pub struct PyObserver {
    /// `callback(phase, done, total)`: the user's callable or a `ProgressBar`.
    callback: Option<Py<PyAny>>,
    /// Whether `callback` is a bar this call made (closed at the end).
    bar: bool,
    /// Whether the call runs on Python's main thread, the only one signal handlers
    /// run on: elsewhere, without a callback, there is nothing to take the GIL for.
    main_thread: bool,
    last: Mutex<Option<Instant>>,
    /// The exception that stopped the work.
    pending: Mutex<Option<PyErr>>,
}

impl PyObserver {
    /// The observer for `progress`: None (a bar if stderr is a terminal, shown after
    /// a second), True (a bar), False (none), or a callable.
    pub fn new(py: Python<'_>, progress: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Self> {
        let bar = |delay: f64| -> PyResult<Py<PyAny>> {
            Ok(py
                .import("nusterdb._progress")?
                .getattr("ProgressBar")?
                .call1((what, delay))?
                .unbind())
        };
        let (callback, is_bar) = match progress {
            None => {
                let tty = py
                    .import("sys")?
                    .getattr("stderr")?
                    .call_method0("isatty")
                    .and_then(|t| t.is_truthy())
                    .unwrap_or(false);
                if tty {
                    (Some(bar(AUTO_DELAY_SECS)?), true)
                } else {
                    (None, false)
                }
            }
            Some(p) if p.is_none() => (None, false),
            Some(p) if p.is_instance_of::<PyBool>() => {
                if p.is_truthy()? {
                    (Some(bar(0.0)?), true)
                } else {
                    (None, false)
                }
            }
            Some(p) if p.is_callable() => (Some(p.clone().unbind()), false),
            Some(p) => {
                return Err(PyTypeError::new_err(format!(
                    "progress must be None, a bool or a callable(phase, done, total), got {}",
                    type_name(p)
                )))
            }
        };
        let threading = py.import("threading")?;
        let main_thread = threading
            .call_method0("current_thread")?
            .is(&threading.call_method0("main_thread")?);
        Ok(Self {
            callback,
            bar: is_bar,
            main_thread,
            last: Mutex::new(None),
            pending: Mutex::new(None),
        })
    }

    /// The result of the watched call as Python sees it. A stop raises what stopped
    /// it (a `KeyboardInterrupt` gets a note that nothing was changed). With
    /// `absorb`, a Ctrl-C that came after the last check — once the write was being
    /// committed — is absorbed: the call returns normally, everything stored, rather
    /// than raising after its work was done.
    pub fn finish<T>(&self, py: Python<'_>, result: Result<T, Error>, absorb: bool) -> PyResult<T> {
        if self.bar {
            if let Some(cb) = &self.callback {
                cb.call_method0(py, "close")?;
            }
        }
        match result {
            Ok(v) => {
                if absorb {
                    if let Err(e) = py.check_signals() {
                        if !e.is_instance_of::<PyKeyboardInterrupt>(py) {
                            return Err(e);
                        }
                    }
                }
                Ok(v)
            }
            Err(Error::Interrupted(what)) => match lock(&self.pending).take() {
                Some(e) => {
                    let note = format!("interrupted while {what}: nothing was changed");
                    // add_note exists from Python 3.11; older versions go without.
                    let _ = e.value(py).call_method1("add_note", (note,));
                    Err(e)
                }
                None => Err(to_py_err(Error::Interrupted(what))),
            },
            Err(e) => Err(to_py_err(e)),
        }
    }
}

impl Observer for PyObserver {
    fn step(&self, phase: Phase, done: u64, total: u64) -> bool {
        if !self.main_thread && self.callback.is_none() {
            return true;
        }
        {
            let mut last = lock(&self.last);
            let now = Instant::now();
            if done < total && last.is_some_and(|t| now.duration_since(t) < THROTTLE) {
                return true;
            }
            *last = Some(now);
        }
        Python::attach(|py| {
            let outcome = py.check_signals().and_then(|()| match &self.callback {
                Some(cb) => cb.call1(py, (phase.name(), done, total)).map(|_| ()),
                None => Ok(()),
            });
            match outcome {
                Ok(()) => true,
                Err(e) => {
                    *lock(&self.pending) = Some(e);
                    false
                }
            }
        })
    }
}
