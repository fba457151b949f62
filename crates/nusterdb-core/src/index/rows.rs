//! [`Rows`]: the 64-byte-aligned float buffer every index keeps its vectors in, row by
//! slot (`slot · dim ..`). Alignment to the cache line lets a row start on a line for
//! dimensions that are multiples of 16, and keeps the SIMD kernels' loads in one line.
//! The buffer is a [`Region`]: heap memory, or a segment file's rows mapped in place.

use super::region::Region;

/// A growable, zero-initialised, 64-byte-aligned buffer of floats.
#[derive(Clone, Default)]
pub(crate) struct Rows {
    region: Region,
}

impl Rows {
    /// An empty buffer with room for `floats` reserved when the allocator grants it
    /// (a refusal only means growing later, never an abort).
    pub(crate) fn with_capacity_hint(floats: usize) -> Self {
        Self {
            region: Region::with_capacity_hint(floats.saturating_mul(4)),
        }
    }

    /// Rows over `region` (a mapped segment file's rows; its length a multiple of 64).
    pub(crate) fn from_region(region: Region) -> Self {
        Self { region }
    }

    /// Whether the hinted reservation was granted (`capacity ≥ floats`).
    pub(crate) fn reserved(&self, floats: usize) -> bool {
        self.region.reserved(floats.saturating_mul(4))
    }

    /// Grows (with zeros) or shrinks to at least `floats`; the new length in floats (a
    /// whole number of 16-float blocks).
    pub(crate) fn resize(&mut self, floats: usize) -> usize {
        self.region.resize(floats.saturating_mul(4)) / 4
    }

    /// Every float of the buffer.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[f32] {
        let bytes = self.region.as_bytes();
        // SAFETY: the region is 64-byte aligned and a whole number of 64-byte blocks,
        // and every bit pattern is a valid `f32`; the shared borrow of `self` keeps
        // the bytes alive and unmodified for the returned lifetime.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), bytes.len() / 4) }
    }

    /// Every float of the buffer, mutably.
    #[inline]
    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        let bytes = self.region.as_bytes_mut();
        // SAFETY: as in `as_slice`; the exclusive borrow of `self` makes this the only
        // access.
        unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<f32>(), bytes.len() / 4) }
    }

    /// The start of the buffer, for prefetching (the address may be past the end).
    #[inline]
    pub(crate) fn as_ptr(&self) -> *const f32 {
        self.region.as_bytes().as_ptr().cast::<f32>()
    }

    /// Heap bytes allocated.
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.region.heap_bytes()
    }

    /// Bytes mapped from a segment file.
    pub(crate) fn mapped_bytes(&self) -> usize {
        self.region.mapped_bytes()
    }

    /// The address range of the mapping (`None` on the heap).
    pub(crate) fn mapped_range(&self) -> Option<(usize, usize)> {
        self.region.mapped_range()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_aligned_zeroed_and_keep_their_values_when_grown() {
        let mut r = Rows::with_capacity_hint(40);
        assert!(r.reserved(40));
        assert_eq!(r.resize(20), 32);
        assert_eq!(r.as_ptr() as usize % 64, 0);
        assert!(r.as_slice().iter().all(|&x| x == 0.0));
        r.as_mut_slice()[19] = 3.5;
        assert_eq!(r.resize(1000), 1008);
        assert_eq!(r.as_ptr() as usize % 64, 0);
        assert_eq!(r.as_slice()[19], 3.5);
        assert_eq!(r.as_slice().len(), 1008);
        assert!(r.capacity_bytes() >= 1008 * 4);
    }
}
