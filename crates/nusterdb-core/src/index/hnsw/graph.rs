//! The layered neighbour storage: fixed-stride flat arrays, no `Vec` per node.
//!
//! - Layer 0: one array of `cap · (1 + M0)` words; the list of slot `s` is the words
//!   `s·(1+M0) ..`: a count, then up to `M0` neighbour slots.
//! - Layers ≥ 1: one shared array of blocks. A node of level `L ≥ 1` owns one block of
//!   `L · (1 + M)` words (its lists on layers `1..=L`, each a count then up to `M`
//!   slots), found through `upper_off[s]`. Blocks are appended and never moved within
//!   a build; a slot keeps its level (and block) for its whole life, also when it is
//!   reused after a removal, so the level distribution stays the paper's.
//!
//! Words are [`AtomicU32`] so that the parallel build can read and write lists through
//! a shared reference; every access is `Relaxed` (a plain load or store on x86-64 and
//! AArch64). Consistency of one list comes from the per-node locks ([`Graph::lock`]):
//! during a parallel build every read and write of a node's lists holds its lock; at
//! any other time the index is either borrowed mutably (one writer) or shared (readers
//! only), and no lock is taken.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use parking_lot::{Mutex, MutexGuard};

/// `upper_off` of a node that has no block (level 0).
pub(super) const NO_BLOCK: u32 = u32::MAX;

/// The neighbour lists of every node on every layer.
#[derive(Debug)]
pub(crate) struct Graph {
    /// M: capacity of a list on layers ≥ 1.
    pub(super) m: usize,
    /// M0: capacity of a list on layer 0.
    pub(super) m0: usize,
    /// Layer-0 lists, `1 + m0` words per slot.
    pub(super) links0: Vec<AtomicU32>,
    /// Blocks of the layers ≥ 1.
    pub(super) upper: Vec<AtomicU32>,
    /// Per slot: the word where its block starts, or [`NO_BLOCK`].
    pub(super) upper_off: Vec<u32>,
    /// Per slot: its level (the highest layer it is on).
    pub(super) levels: Vec<u8>,
    /// Per slot: the lock of its lists during a parallel build.
    locks: Vec<Mutex<()>>,
}

impl Graph {
    /// An empty graph with room reserved for `hint` nodes (best effort).
    pub(crate) fn new(m: usize, m0: usize, hint: usize) -> Self {
        let mut links0 = Vec::new();
        let mut upper_off = Vec::new();
        let mut levels = Vec::new();
        let mut locks = Vec::new();
        if links0
            .try_reserve_exact(hint.saturating_mul(1 + m0))
            .is_ok()
        {
            let _ = upper_off.try_reserve_exact(hint);
            let _ = levels.try_reserve_exact(hint);
            let _ = locks.try_reserve_exact(hint);
        }
        Self {
            m,
            m0,
            links0,
            upper: Vec::new(),
            upper_off,
            levels,
            locks,
        }
    }

    /// A graph from the arrays of a graph file (checked by the reader), grown to `cap`
    /// slots.
    pub(super) fn from_parts(
        m: usize,
        m0: usize,
        links0: Vec<u32>,
        upper: Vec<u32>,
        upper_off: Vec<u32>,
        levels: Vec<u8>,
        cap: usize,
    ) -> Self {
        let n = levels.len();
        let mut g = Self {
            m,
            m0,
            links0: links0.into_iter().map(AtomicU32::new).collect(),
            upper: upper.into_iter().map(AtomicU32::new).collect(),
            upper_off,
            levels,
            locks: Vec::new(),
        };
        g.locks.resize_with(n, || Mutex::new(()));
        g.grow(cap);
        g
    }

    /// The list capacity on `layer`.
    #[inline]
    pub(crate) fn cap_of(&self, layer: usize) -> usize {
        if layer == 0 {
            self.m0
        } else {
            self.m
        }
    }

    /// Slots the arrays hold.
    #[inline]
    pub(crate) fn slots(&self) -> usize {
        self.levels.len()
    }

    /// Grows the per-slot arrays to `cap` slots (new slots: level 0, empty lists).
    pub(crate) fn grow(&mut self, cap: usize) {
        if cap <= self.slots() {
            return;
        }
        self.links0
            .resize_with(cap * (1 + self.m0), || AtomicU32::new(0));
        self.upper_off.resize(cap, NO_BLOCK);
        self.levels.resize(cap, 0);
        self.locks.resize_with(cap, || Mutex::new(()));
    }

    /// Forgets every node (capacity kept).
    pub(crate) fn clear(&mut self) {
        for w in &mut self.links0 {
            *w.get_mut() = 0;
        }
        self.upper.clear();
        self.upper_off.fill(NO_BLOCK);
        self.levels.fill(0);
    }

    /// The level of `slot` (0 for a slot past the end).
    #[inline]
    pub(crate) fn level(&self, slot: u32) -> usize {
        self.levels
            .get(slot as usize)
            .map_or(0, |&l| usize::from(l))
    }

    /// Gives `slot` level `level` and a block of empty upper lists, unless it already
    /// has a level above 0 (which it keeps). Returns the slot's level.
    pub(crate) fn assign_level(&mut self, slot: u32, level: u8) -> usize {
        let s = slot as usize;
        if s >= self.slots() {
            return 0;
        }
        if self.levels[s] > 0 || self.upper_off[s] != NO_BLOCK {
            return usize::from(self.levels[s]);
        }
        if level > 0 {
            let words = usize::from(level) * (1 + self.m);
            // Block offsets are u32; past that many words the node stays on layer 0.
            let Ok(off) = u32::try_from(self.upper.len()) else {
                return 0;
            };
            if u32::try_from(self.upper.len() + words).is_err() {
                return 0;
            }
            self.upper
                .resize_with(self.upper.len() + words, || AtomicU32::new(0));
            self.upper_off[s] = off;
        }
        self.levels[s] = level;
        usize::from(level)
    }

    /// The list of `slot` on `layer` as words: `[count, n₁, …, n_cap]`. Empty for a
    /// slot or layer the node does not have.
    #[inline]
    pub(crate) fn list(&self, slot: u32, layer: usize) -> &[AtomicU32] {
        let s = slot as usize;
        if layer == 0 {
            let stride = 1 + self.m0;
            self.links0
                .get(s * stride..(s + 1) * stride)
                .unwrap_or_default()
        } else {
            let stride = 1 + self.m;
            match self.upper_off.get(s) {
                Some(&off) if off != NO_BLOCK && layer <= self.level(slot) => {
                    let start = off as usize + (layer - 1) * stride;
                    self.upper.get(start..start + stride).unwrap_or_default()
                }
                _ => &[],
            }
        }
    }

    /// The neighbours in a list returned by [`Graph::list`].
    #[inline]
    pub(crate) fn entries(list: &[AtomicU32]) -> &[AtomicU32] {
        match list.split_first() {
            Some((count, rest)) => {
                let n = (count.load(Relaxed) as usize).min(rest.len());
                &rest[..n]
            }
            None => &[],
        }
    }

    /// A pointer to the layer-0 list of `slot`, for prefetching (never dereferenced
    /// here; may point past the array for a slot past the end).
    #[inline]
    pub(crate) fn list0_ptr(&self, slot: u32) -> *const u8 {
        self.links0
            .as_ptr()
            .wrapping_add(slot as usize * (1 + self.m0))
            .cast()
    }

    /// Bytes of one layer-0 list.
    #[inline]
    pub(crate) fn list0_bytes(&self) -> usize {
        (1 + self.m0) * 4
    }

    /// Copies the neighbours of `slot` on `layer` into `out` (cleared first).
    #[inline]
    pub(crate) fn read_into(&self, slot: u32, layer: usize, out: &mut Vec<u32>) {
        out.clear();
        out.extend(
            Self::entries(self.list(slot, layer))
                .iter()
                .map(|w| w.load(Relaxed)),
        );
    }

    /// Replaces the list of `slot` on `layer` by `ids` (truncated to the capacity).
    /// The caller holds the node's lock if others may read it.
    #[inline]
    pub(crate) fn write(&self, slot: u32, layer: usize, ids: &[u32]) {
        let list = self.list(slot, layer);
        if let Some((count, rest)) = list.split_first() {
            let n = ids.len().min(rest.len());
            for (w, &id) in rest.iter().zip(&ids[..n]) {
                w.store(id, Relaxed);
            }
            count.store(n as u32, Relaxed);
        }
    }

    /// Appends `id` to the list of `slot` on `layer` if there is room; returns whether
    /// it did. The caller holds the node's lock if others may read it.
    #[inline]
    pub(crate) fn push(&self, slot: u32, layer: usize, id: u32) -> bool {
        let list = self.list(slot, layer);
        if let Some((count, rest)) = list.split_first() {
            let n = count.load(Relaxed) as usize;
            if let Some(w) = rest.get(n) {
                w.store(id, Relaxed);
                count.store(n as u32 + 1, Relaxed);
                return true;
            }
        }
        false
    }

    /// Whether the list of `slot` on `layer` contains `id`.
    #[inline]
    pub(crate) fn contains(&self, slot: u32, layer: usize, id: u32) -> bool {
        Self::entries(self.list(slot, layer))
            .iter()
            .any(|w| w.load(Relaxed) == id)
    }

    /// Empties every list of `slot`.
    pub(crate) fn clear_node(&self, slot: u32) {
        for layer in 0..=self.level(slot) {
            if let Some(count) = self.list(slot, layer).first() {
                count.store(0, Relaxed);
            }
        }
    }

    /// The lock of `slot`'s lists (for the parallel build).
    #[inline]
    pub(crate) fn lock(&self, slot: u32) -> Option<MutexGuard<'_, ()>> {
        self.locks.get(slot as usize).map(Mutex::lock)
    }

    /// Heap bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        (self.links0.capacity() + self.upper.capacity()) * std::mem::size_of::<AtomicU32>()
            + self.upper_off.capacity() * 4
            + self.levels.capacity()
            + self.locks.capacity() * std::mem::size_of::<Mutex<()>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(g: &Graph, s: u32, l: usize) -> Vec<u32> {
        let mut v = Vec::new();
        g.read_into(s, l, &mut v);
        v
    }

    #[test]
    fn lists_per_layer() {
        let mut g = Graph::new(2, 4, 8);
        g.grow(3);
        assert_eq!(g.assign_level(1, 2), 2);
        assert_eq!(g.assign_level(1, 0), 2, "a slot keeps its level");
        assert_eq!(g.assign_level(2, 1), 1);
        g.write(1, 0, &[0, 2, 5, 6, 7]);
        assert_eq!(read(&g, 1, 0), vec![0, 2, 5, 6], "truncated to M0");
        g.write(1, 2, &[2]);
        assert!(g.push(1, 2, 0));
        assert!(!g.push(1, 2, 9), "full at M");
        assert_eq!(read(&g, 1, 2), vec![2, 0]);
        assert!(read(&g, 1, 1).is_empty());
        assert!(g.list(1, 3).is_empty(), "above the node's level");
        assert!(g.list(0, 1).is_empty());
        assert!(g.list(7, 0).is_empty(), "past the end");
        g.write(2, 1, &[1]);
        assert!(g.contains(2, 1, 1) && !g.contains(2, 1, 0));
        g.clear_node(1);
        assert!(read(&g, 1, 0).is_empty() && read(&g, 1, 2).is_empty());
        assert_eq!(read(&g, 2, 1), vec![1]);
        g.clear();
        assert_eq!(g.level(1), 0);
        assert!(read(&g, 2, 0).is_empty());
    }
}
