//! The threads that work going on beside searches runs on: a write linking its new rows
//! and repairing the graph around removed ones, a follower linking what it replayed.
//!
//! A rayon pool of its own, as many threads as the global pool, whose threads run at a
//! lower scheduling priority (nice +10 on Linux, where the nice value is per thread):
//! when the cores are busy, searches — on the callers' threads and the global pool — are
//! scheduled first and the write takes the time they leave; on idle cores it runs as
//! fast as on the global pool. Where a thread's priority cannot be lowered (other
//! systems, or a refusal), the pool's threads run at the normal priority.

use std::sync::OnceLock;

/// How much lower than the process the pool's threads run (a nice value; the Linux
/// scheduler then gives a normal thread about 9 times their share of a contended core).
const NICE: i32 = 10;

static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();

/// Runs `f` (and the parallel iterators it starts) on the pool; on the caller's thread
/// with the global pool where the pool could not be started.
pub(super) fn run<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(rayon::current_num_threads())
            .thread_name(|i| format!("nusterdb-beside-{i}"))
            .start_handler(|_| lower_priority())
            .build()
            .ok()
    });
    match pool {
        Some(p) => p.install(f),
        None => f(),
    }
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: setpriority has no memory preconditions; `who` 0 with PRIO_PROCESS names
    // the calling thread on Linux. A refusal leaves the thread's priority as it was.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, NICE);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {
    let _ = NICE;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// The pool's threads run at the lowered priority (the nice value is per thread on
    /// Linux), the caller's keeps its own.
    #[test]
    fn the_pool_runs_at_a_lower_priority() {
        // SAFETY: getpriority has no preconditions; errno is cleared first as -1 is a
        // valid result.
        let nice = || unsafe {
            *libc::__errno_location() = 0;
            libc::getpriority(libc::PRIO_PROCESS, 0)
        };
        let own = nice();
        let inside = super::run(nice);
        let in_parallel: Vec<i32> = super::run(|| {
            use rayon::prelude::*;
            (0..8).into_par_iter().map(|_| nice()).collect()
        });
        assert_eq!(nice(), own);
        assert_eq!(inside, (own + super::NICE).min(19));
        assert!(in_parallel.iter().all(|&n| n == inside), "{in_parallel:?}");
    }
}
