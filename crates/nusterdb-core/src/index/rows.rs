//! [`Rows`]: the 64-byte-aligned float buffer every index keeps its vectors in, row by
//! slot (`slot · dim ..`). Alignment to the cache line lets a row start on a line for
//! dimensions that are multiples of 16, and keeps the SIMD kernels' loads in one line.

/// 16 floats, 64-byte aligned: the unit the buffer is allocated in.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([f32; 16]);

const BLOCK_FLOATS: usize = 16;
const _: () = assert!(
    std::mem::size_of::<Block>() == 64 && std::mem::align_of::<Block>() == 64,
    "Block must be 16 f32 with no padding"
);

/// A growable, zero-initialised, 64-byte-aligned buffer of floats.
#[derive(Clone, Default)]
pub(crate) struct Rows {
    blocks: Vec<Block>,
}

impl Rows {
    /// An empty buffer with room for `floats` reserved when the allocator grants it
    /// (a refusal only means growing later, never an abort).
    pub(crate) fn with_capacity_hint(floats: usize) -> Self {
        let mut blocks = Vec::new();
        let _ = blocks.try_reserve_exact(floats.div_ceil(BLOCK_FLOATS));
        Self { blocks }
    }

    /// Whether the hinted reservation was granted (`capacity ≥ floats`).
    pub(crate) fn reserved(&self, floats: usize) -> bool {
        self.blocks.capacity() * BLOCK_FLOATS >= floats
    }

    /// Grows (with zeros) or shrinks to at least `floats`; the new length in floats (a
    /// whole number of blocks).
    pub(crate) fn resize(&mut self, floats: usize) -> usize {
        let blocks = floats.div_ceil(BLOCK_FLOATS);
        self.blocks.resize(blocks, Block([0.0; BLOCK_FLOATS]));
        blocks * BLOCK_FLOATS
    }

    /// Every float of the buffer.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[f32] {
        // SAFETY: `Block` is `repr(C)` around `[f32; 16]` with no padding (checked by the
        // const assertion above), so the vector's `len` blocks are `16 · len`
        // initialised, contiguous `f32`s starting at its (64-aligned) pointer; the
        // shared borrow of `self` keeps them alive and unmodified for the returned
        // lifetime.
        unsafe {
            std::slice::from_raw_parts(
                self.blocks.as_ptr().cast::<f32>(),
                self.blocks.len() * BLOCK_FLOATS,
            )
        }
    }

    /// Every float of the buffer, mutably.
    #[inline]
    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_slice`; the exclusive borrow of `self` makes this the only
        // access, and any bit pattern is a valid `f32`.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.blocks.as_mut_ptr().cast::<f32>(),
                self.blocks.len() * BLOCK_FLOATS,
            )
        }
    }

    /// The start of the buffer, for prefetching (the address may be past the end).
    #[inline]
    pub(crate) fn as_ptr(&self) -> *const f32 {
        self.blocks.as_ptr().cast::<f32>()
    }

    /// Bytes allocated.
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.blocks.capacity() * std::mem::size_of::<Block>()
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
