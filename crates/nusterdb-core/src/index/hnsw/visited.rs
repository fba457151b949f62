//! The per-search scratch space: an epoch-marked visited set, the two heaps of the beam
//! search and the small buffers of insertion, pooled by the index so that a search
//! allocates nothing once the pool is warm.
//!
//! The visited set holds one `u16` tag per slot; a slot is visited when its tag equals
//! the current epoch. Starting a new search bumps the epoch (O(1)); only when the epoch
//! wraps (every 65 535 searches) are the tags cleared.

use std::ops::{Deref, DerefMut};

use parking_lot::Mutex;

/// Slots visited by the current search.
#[derive(Debug, Default)]
pub(crate) struct VisitedSet {
    tags: Vec<u16>,
    epoch: u16,
}

impl VisitedSet {
    /// Starts a new search over slots `0..n`: every slot becomes unvisited.
    #[inline]
    pub(crate) fn reset(&mut self, n: usize) {
        if self.tags.len() < n {
            self.tags.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.tags.fill(0);
            self.epoch = 1;
        }
    }

    /// Marks `slot` visited; returns whether it was not visited before. A slot past
    /// the size given to [`VisitedSet::reset`] counts as visited (never expanded).
    #[inline]
    pub(crate) fn insert(&mut self, slot: u32) -> bool {
        match self.tags.get_mut(slot as usize) {
            Some(t) if *t != self.epoch => {
                *t = self.epoch;
                true
            }
            _ => false,
        }
    }

    /// Heap bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.tags.capacity() * std::mem::size_of::<u16>()
    }
}

/// A candidate: internal score (smaller = closer) and slot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Cand {
    pub(crate) d: f32,
    pub(crate) id: u32,
}

/// A binary heap on a reused `Vec`: a max-heap on the score if `MAX`, else a min-heap.
/// Ties are left in any order (the final results are sorted by (distance, slot)).
#[derive(Debug, Default)]
pub(crate) struct Heap<const MAX: bool> {
    v: Vec<Cand>,
}

impl<const MAX: bool> Heap<MAX> {
    /// `a` belongs above `b`.
    #[inline(always)]
    fn above(a: f32, b: f32) -> bool {
        if MAX {
            a > b
        } else {
            a < b
        }
    }

    #[inline]
    pub(crate) fn clear(&mut self) {
        self.v.clear();
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.v.len()
    }

    /// The root (the largest score of a max-heap, the smallest of a min-heap).
    #[inline]
    pub(crate) fn top(&self) -> Option<Cand> {
        self.v.first().copied()
    }

    #[inline]
    pub(crate) fn push(&mut self, c: Cand) {
        let v = &mut self.v;
        v.push(c);
        let mut i = v.len() - 1;
        while i > 0 {
            let p = (i - 1) / 2;
            if Self::above(c.d, v[p].d) {
                v[i] = v[p];
                i = p;
            } else {
                break;
            }
        }
        v[i] = c;
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Cand> {
        let v = &mut self.v;
        let last = v.pop()?;
        if v.is_empty() {
            return Some(last);
        }
        let top = v[0];
        let n = v.len();
        let mut i = 0;
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let c = if r < n && Self::above(v[r].d, v[l].d) {
                r
            } else {
                l
            };
            if Self::above(v[c].d, last.d) {
                v[i] = v[c];
                i = c;
            } else {
                break;
            }
        }
        v[i] = last;
        Some(top)
    }

    /// The entries, in heap order; the heap is left empty (capacity kept).
    #[inline]
    pub(crate) fn drain_unordered(&mut self) -> std::vec::Drain<'_, Cand> {
        self.v.drain(..)
    }

    fn memory_bytes(&self) -> usize {
        self.v.capacity() * std::mem::size_of::<Cand>()
    }
}

/// What a beam search works in.
#[derive(Debug, Default)]
pub(crate) struct Work {
    pub(crate) visited: VisitedSet,
    /// Candidates still to expand (min-heap).
    pub(crate) cand: Heap<false>,
    /// The best eligible nodes found (max-heap, bounded by ef).
    pub(crate) res: Heap<true>,
    /// The unvisited neighbours of the node being expanded.
    pub(crate) nbuf: Vec<u32>,
    /// The query's 8-bit codes (quantized traversal).
    pub(crate) qcodes: Vec<u8>,
    /// The query's centroid terms (RaBitQ with centroids).
    pub(crate) ctab: Vec<std::cell::Cell<f32>>,
    /// A row read from a seal's files (`vectors="disk"`).
    pub(crate) row: Vec<f32>,
}

impl Work {
    fn memory_bytes(&self) -> usize {
        self.visited.memory_bytes()
            + self.cand.memory_bytes()
            + self.res.memory_bytes()
            + self.nbuf.capacity() * 4
            + self.qcodes.capacity()
            + self.ctab.capacity() * 4
            + self.row.capacity() * 4
    }
}

/// Everything one search or one insertion needs besides the index itself.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// The prepared query (cosine: normalised).
    pub(crate) q: Vec<f32>,
    pub(crate) w: Work,
    /// Candidates of the new node's neighbour selection, sorted by score (also the
    /// results of a search, sorted).
    pub(crate) sel: Vec<Cand>,
    /// The new node's selected neighbours.
    pub(crate) out: Vec<u32>,
    /// A neighbour list being re-selected (reverse links, repairs).
    pub(crate) sel2: Vec<Cand>,
    /// Its selection.
    pub(crate) out2: Vec<u32>,
    /// A copy of a neighbour list.
    pub(crate) list: Vec<u32>,
    /// Nodes waiting to be repaired.
    pub(crate) todo: Vec<u32>,
}

impl Scratch {
    fn memory_bytes(&self) -> usize {
        self.w.memory_bytes()
            + (self.q.capacity() + self.out.capacity() + self.out2.capacity()) * 4
            + (self.list.capacity() + self.todo.capacity()) * 4
            + (self.sel.capacity() + self.sel2.capacity()) * std::mem::size_of::<Cand>()
    }
}

/// The index's pool of scratch spaces: one per thread that is searching or inserting
/// at the same time, created on demand and kept for reuse.
#[derive(Debug, Default)]
pub(crate) struct ScratchPool {
    free: Mutex<Vec<Scratch>>,
}

impl ScratchPool {
    /// A scratch space (from the pool, or new), returned to the pool when dropped.
    #[inline]
    pub(crate) fn take(&self) -> PooledScratch<'_> {
        let s = self.free.lock().pop().unwrap_or_default();
        PooledScratch {
            pool: self,
            s: Some(s),
        }
    }

    /// Heap bytes held by the pooled scratch spaces.
    pub(crate) fn memory_bytes(&self) -> usize {
        let free = self.free.lock();
        free.capacity() * std::mem::size_of::<Scratch>()
            + free.iter().map(Scratch::memory_bytes).sum::<usize>()
    }
}

/// A scratch space on loan from a [`ScratchPool`].
pub(crate) struct PooledScratch<'a> {
    pool: &'a ScratchPool,
    s: Option<Scratch>,
}

impl Deref for PooledScratch<'_> {
    type Target = Scratch;
    #[inline]
    fn deref(&self) -> &Scratch {
        // Always `Some` until dropped.
        self.s.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl DerefMut for PooledScratch<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Scratch {
        self.s.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for PooledScratch<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.s.take() {
            self.pool.free.lock().push(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visited_epochs() {
        let mut v = VisitedSet::default();
        v.reset(10);
        assert!(v.insert(3));
        assert!(!v.insert(3));
        assert!(!v.insert(10), "past the size counts as visited");
        for _ in 0..70_000 {
            v.reset(10);
            assert!(v.insert(3));
        }
        v.reset(20);
        assert!(v.insert(15));
        assert!(v.insert(3));
    }

    #[test]
    fn heaps_order() {
        let xs = [5.0f32, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0];
        let mut min = Heap::<false>::default();
        let mut max = Heap::<true>::default();
        for (i, &d) in xs.iter().enumerate() {
            min.push(Cand { d, id: i as u32 });
            max.push(Cand { d, id: i as u32 });
        }
        let mut sorted = xs.to_vec();
        sorted.sort_by(f32::total_cmp);
        let a: Vec<f32> = std::iter::from_fn(|| min.pop().map(|c| c.d)).collect();
        assert_eq!(a, sorted);
        sorted.reverse();
        let b: Vec<f32> = std::iter::from_fn(|| max.pop().map(|c| c.d)).collect();
        assert_eq!(b, sorted);
        assert!(min.pop().is_none() && max.pop().is_none());
    }
}
