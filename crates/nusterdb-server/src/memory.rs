//! Giving freed heap memory back to the operating system, and keeping little of it.
//!
//! glibc's malloc keeps one heap ("arena") per thread that allocated while another held
//! a heap, up to 8 per core; memory freed in an arena stays mapped, and counted in the
//! RSS, until that arena reuses it. A server runs each request on whichever blocking-pool
//! thread is free, and RocksDB flushes and compacts on threads of its own, so under
//! writes a dozen arenas each keep some freed memory, fragmented, and the RSS crept up
//! (+0.2–0.3 MiB a minute beyond the database's own memory over an hour of upserts).
//! Two remedies, both measured (BENCHMARKS.md, "The HTTP server under mixed load"):
//! - [`limit_arenas`], at start: one arena per core (at least 2). With it the same
//!   upsert load held the RSS ~20 MiB lower and flat beside the database's capped
//!   caches. Threads share arenas a little more; each keeps its own small-block cache
//!   (tcache), so most allocations take no lock either way.
//! - [`trim_every`]: `malloc_trim(0)` hands every arena's free pages back (`madvise`)
//!   every [`TRIM_PERIOD`]: measured, the RSS ~13 MiB lower after 34 minutes.
//!
//! With other C libraries there is nothing to call. The arena limit is process-wide: a
//! program that runs the server from Python (`nusterdb.server.serve`) gets it too.

use std::time::Duration;

/// How often freed memory is handed back.
pub const TRIM_PERIOD: Duration = Duration::from_secs(30);

/// Trims every `period`, for as long as the runtime runs.
pub async fn trim_every(period: Duration) {
    let mut tick = tokio::time::interval(period);
    // The first tick is immediate: nothing has been freed yet at start.
    tick.tick().await;
    loop {
        tick.tick().await;
        // A failed trim (a panic cannot happen in it) changes nothing.
        let _ = tokio::task::spawn_blocking(trim).await;
    }
}

/// Caps glibc's malloc arenas at one per core (at least 2), before the server's threads
/// start (arenas made before stay).
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = i32::try_from(cores.max(2)).unwrap_or(i32::MAX);
        // SAFETY: mallopt takes two integers and may be called from any thread; a
        // refused value (it returns 0) leaves malloc as it was.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// Hands the free pages of every malloc arena back to the operating system.
pub fn trim() {
    nusterdb_core::heap::trim();
}
