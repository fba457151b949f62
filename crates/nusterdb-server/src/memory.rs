//! Giving freed heap memory back to the operating system.
//!
//! glibc's malloc keeps one heap ("arena") per thread that allocated while another held
//! a heap, up to 8 per core; memory freed in an arena stays mapped, and counted in the
//! RSS, until that arena reuses it. A server runs each request on whichever blocking-pool
//! thread is free, so a dozen arenas each keep some freed memory. `malloc_trim(0)` hands
//! every arena's free pages back (`madvise`), so the server calls it periodically from
//! the blocking pool: measured, the same load leaves the RSS ~13 MiB lower after 34
//! minutes (BENCHMARKS.md, "The HTTP server under mixed load"). With other C libraries
//! there is nothing to call.

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

/// Hands the free pages of every malloc arena back to the operating system.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and may be called from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn trimming_keeps_live_allocations_whole() {
        let keep: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 1 << 16]).collect();
        drop((0..256).map(|_| vec![7u8; 1 << 16]).collect::<Vec<_>>());
        super::trim();
        for (i, v) in keep.iter().enumerate() {
            assert!(v.iter().all(|&b| b == i as u8));
        }
    }
}
