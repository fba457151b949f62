//! RocksDB across `fork()`.
//!
//! RocksDB runs its flushes and compactions on the threads of one process-wide pool,
//! started by the first database a process opens and kept until the process exits. A
//! child made by `fork()` has only the forking thread, yet the pool's bookkeeping,
//! copied from the parent, still counts the parent's threads. In such a child:
//!
//! - no database can work: flushes queue for threads that do not exist, so writes
//!   stall once the memtables are full, and closing waits forever. Opening one is
//!   refused with [`Error::ForkedEngine`] ([`check_usable`]);
//! - the exit itself crashes: a static destructor of RocksDB joins the pool's threads,
//!   and joining the parent's threads in the child faults (SIGSEGV). On glibc an exit
//!   handler registered after that destructor (so it runs first) ends such a child at
//!   that point with its exit status, after flushing C's stdio buffers. The process
//!   that started the pool exits normally.
//!
//! Handles opened before the fork are refused separately (`Database::check_process`),
//! by a [`ProcessToken`] taken at open: comparing it costs one atomic load where a
//! `pthread_atfork` handler counts forks, a `getpid` call elsewhere.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Once;

use crate::error::{Error, Result};

/// The process that started RocksDB's thread pool (0: none yet).
static ENGINE_PID: AtomicU32 = AtomicU32::new(0);

/// Forks since the process started, counted in the child by a `pthread_atfork` handler
/// (the count a child inherits is its parent's; the handler bumps it).
static FORKS: AtomicU64 = AtomicU64::new(0);

/// Whether the `pthread_atfork` handler is registered (else [`ProcessToken`] compares
/// process ids).
static COUNTING: AtomicBool = AtomicBool::new(false);

/// Which process a handle belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessToken {
    pub(crate) pid: u32,
    pub(crate) forks: u64,
}

impl ProcessToken {
    /// This process.
    pub fn current() -> Self {
        watch();
        Self {
            pid: std::process::id(),
            forks: FORKS.load(Ordering::Relaxed),
        }
    }

    /// Whether this is no longer the process the token was taken in (a `fork()` since).
    pub fn is_other_process(&self) -> bool {
        if COUNTING.load(Ordering::Relaxed) {
            FORKS.load(Ordering::Relaxed) != self.forks
        } else {
            std::process::id() != self.pid
        }
    }

    /// The process the token was taken in.
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

/// Starts counting forks and detaching inherited lock files in children, once per
/// process.
pub fn watch() {
    static WATCH: Once = Once::new();
    WATCH.call_once(|| COUNTING.store(count_forks(), Ordering::Relaxed));
}

/// Registers the fork handler; whether that worked.
fn count_forks() -> bool {
    #[cfg(unix)]
    {
        use std::os::raw::c_int;
        extern "C" {
            fn pthread_atfork(
                prepare: Option<extern "C" fn()>,
                parent: Option<extern "C" fn()>,
                child: Option<extern "C" fn()>,
            ) -> c_int;
        }
        // Runs in the child right after fork(), with only async-signal-safe calls.
        extern "C" fn forked() {
            FORKS.fetch_add(1, Ordering::Relaxed);
            inherited::detach_all();
        }
        // SAFETY: registers a plain function for the life of the program.
        unsafe { pthread_atfork(None, None, Some(forked)) == 0 }
    }
    #[cfg(not(unix))]
    false
}

/// The writer lock files open in this process, so that a forked child can let go of its
/// copies at once: an `flock` lock lasts while any descriptor of its open file is open,
/// and a child that kept the copy would keep a lock the parent released held for as
/// long as it runs.
#[cfg(unix)]
pub mod inherited {
    use std::os::raw::{c_char, c_int};
    use std::sync::atomic::{AtomicI32, Ordering};

    /// Lock files tracked at once; more are not detached early (the child then holds
    /// them until it uses or drops the handle, or exits).
    const SLOTS: usize = 64;

    static FDS: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];

    /// A tracked descriptor; stops tracking it on drop.
    #[derive(Debug)]
    pub struct Tracked(usize);

    /// Tracks `fd` until the returned guard drops (`None`: no free slot).
    pub fn track(fd: c_int) -> Option<Tracked> {
        super::watch();
        (0..SLOTS)
            .find(|&i| {
                FDS[i]
                    .compare_exchange(-1, fd, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            })
            .map(Tracked)
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            FDS[self.0].store(-1, Ordering::SeqCst);
        }
    }

    extern "C" {
        fn open(path: *const c_char, flags: c_int, ...) -> c_int;
        fn dup2(old: c_int, new: c_int) -> c_int;
        fn close(fd: c_int) -> c_int;
    }

    /// In a child right after fork(): points every tracked descriptor at /dev/null,
    /// which drops the child's reference to the lock file while keeping the number
    /// valid (the handle that owns it closes it later, harmlessly).
    pub(super) fn detach_all() {
        // SAFETY: open, dup2 and close are async-signal-safe; the path is a C string.
        unsafe {
            let null = open(c"/dev/null".as_ptr(), 0);
            if null < 0 {
                return;
            }
            for slot in &FDS {
                let fd = slot.swap(-1, Ordering::SeqCst);
                if fd >= 0 {
                    dup2(null, fd);
                }
            }
            close(null);
        }
    }
}

#[cfg(not(unix))]
pub mod inherited {
    /// Nothing to track without `fork()`.
    #[derive(Debug)]
    pub struct Tracked;

    /// Nothing to track without `fork()`.
    pub fn track<T>(_fd: T) -> Option<Tracked> {
        None
    }

    pub(super) fn detach_all() {}
}

/// `Ok` unless this process was forked from one whose RocksDB pool was running.
///
/// # Errors
/// [`Error::ForkedEngine`].
pub fn check_usable() -> Result<()> {
    let started_in = ENGINE_PID.load(Ordering::Relaxed);
    let current = std::process::id();
    if started_in == 0 || started_in == current {
        Ok(())
    } else {
        Err(Error::ForkedEngine {
            started_in,
            current,
        })
    }
}

/// Records that this process is about to open a RocksDB database (which starts the
/// pool), after [`check_usable`] passed. Must follow the creation of RocksDB options,
/// which registers RocksDB's thread-joining destructor, so the exit handler registered
/// here runs before it.
pub fn engine_starting() {
    let _ =
        ENGINE_PID.compare_exchange(0, std::process::id(), Ordering::Relaxed, Ordering::Relaxed);
    static HANDLER: Once = Once::new();
    HANDLER.call_once(register_exit_handler);
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod exit_handler {
    use std::os::raw::{c_int, c_void};
    use std::sync::atomic::Ordering;

    extern "C" {
        // glibc: like `atexit`, but the handler receives the exit status.
        fn on_exit(function: extern "C" fn(c_int, *mut c_void), arg: *mut c_void) -> c_int;
        fn fflush(stream: *mut c_void) -> c_int;
        fn _exit(status: c_int) -> !;
    }

    extern "C" fn skip_pool_join_in_forked_child(status: c_int, _arg: *mut c_void) {
        let started_in = super::ENGINE_PID.load(Ordering::Relaxed);
        if started_in != 0 && started_in != std::process::id() {
            // SAFETY: fflush(NULL) flushes every open C stream; _exit ends the process
            // without running the remaining exit handlers (RocksDB's, which would
            // join threads this process does not have).
            unsafe {
                fflush(std::ptr::null_mut());
                _exit(status);
            }
        }
    }

    pub fn register() {
        // A RocksDB Options object makes RocksDB create its default environment and
        // register the destructor that joins the pool, if that had not happened yet.
        drop(rocksdb::Options::default());
        // SAFETY: registers a handler that lives as long as the program (a plain fn);
        // a failure to register (out of memory) leaves the default behaviour.
        unsafe {
            on_exit(skip_pool_join_in_forked_child, std::ptr::null_mut());
        }
    }
}

fn register_exit_handler() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    exit_handler::register();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_belongs_to_this_process_until_a_fork() {
        let t = ProcessToken::current();
        assert!(!t.is_other_process());
        assert_eq!(t.pid(), std::process::id());
        // As after a fork: the counter (or the pid) moved on.
        let before = ProcessToken {
            pid: t.pid.wrapping_add(1),
            forks: t.forks.wrapping_sub(1),
        };
        assert!(before.is_other_process());
    }

    #[test]
    fn usable_in_the_starting_process() {
        engine_starting();
        assert!(check_usable().is_ok());
        assert_eq!(ENGINE_PID.load(Ordering::Relaxed), std::process::id());
    }
}
