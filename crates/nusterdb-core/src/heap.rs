//! Handing freed heap memory back to the operating system.
//!
//! glibc's malloc keeps memory a program freed mapped, and counted in its resident set,
//! until it reuses it. An open builds large temporary structures (the rows read for
//! coding, the lists grown by doubling and then trimmed to size, the seal's maps as
//! read): measured on an IVF index of 56,386 × 384 rows with `vectors="disk"`, 4.8 MiB
//! of such freed memory stayed resident beside 7.7 MiB of index, and 25 MiB with the
//! rows in memory (BENCHMARKS.md "IVF"). [`trim`] gives it back. With other C
//! libraries there is nothing to call.

/// Hands the free pages of every malloc arena back to the operating system
/// (`malloc_trim(0)`; nothing off glibc).
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
