//! Building the graph: insertion (serial and parallel), neighbour selection, reverse
//! links, and the repair of a removed node's neighbourhood.
//!
//! Locking in the parallel build (`CONC = true`): a node's lists (all layers) are
//! guarded by its own lock, held only while one list is copied or changed, never two at
//! once, so there is no lock order to get wrong. Vectors, levels and slot states are
//! written before the parallel phase and only read during it. An insertion whose level
//! is above the current top holds the top lock for its whole duration (rare: about
//! log_M n times in a build) and publishes itself as the entry point when linked.

use std::sync::atomic::Ordering::Relaxed;

use rayon::prelude::*;
use roaring::RoaringBitmap;

use super::graph::Graph;
use super::quant::{Exact, Scorer};
use super::visited::{Cand, Scratch, Work};
use super::{HnswIndex, EMPTY, LIVE, PENDING, TOMBSTONE, UNLINKED};

/// Sorts candidates nearest first (ties by slot).
#[inline]
fn sort_cands(v: &mut [Cand]) {
    v.sort_unstable_by(|a, b| a.d.total_cmp(&b.d).then(a.id.cmp(&b.id)));
}

impl HnswIndex {
    /// A random level: ⌊−ln U / ln M⌋, at most `max_layer`.
    fn random_level(&mut self) -> u8 {
        let u = 1.0 - self.rng.next_f64(); // (0, 1]
        let l = (-u.ln() * self.level_mult).floor();
        if l.is_finite() && l >= 1.0 {
            (l as usize).min(self.max_layer) as u8
        } else {
            0
        }
    }

    /// Stores `v` at `slot` (which fits and is neither live nor staged) and makes it a
    /// live node with empty lists: a fresh slot gets a random level, a tombstone keeps
    /// its own.
    fn place(&mut self, slot: u32, v: &[f32]) {
        self.place_as(slot, v, LIVE);
    }

    /// [`HnswIndex::place`] in state `as_state` (`LIVE` or `PENDING`).
    fn place_as(&mut self, slot: u32, v: &[f32], as_state: u8) {
        let s = slot as usize;
        self.write_row(slot, v);
        match self.state[s] {
            EMPTY => {
                let level = self.random_level();
                self.graph.assign_level(slot, level);
            }
            TOMBSTONE => self.tombstones -= 1,
            _ => {}
        }
        self.graph.clear_node(slot);
        self.state[s] = as_state;
        if as_state == PENDING {
            self.pending += 1;
        } else {
            self.live += 1;
        }
        self.end = self.end.max(s + 1);
    }

    /// [`crate::index::VectorIndex::stage`]: stores the rows of a write at their
    /// (fresh, distinct) slots as staged nodes with empty lists. Under exclusive
    /// access; the linking that follows needs only shared access, so searches go on
    /// while it runs, and never return a staged node.
    pub(super) fn stage_batch(&mut self, items: &[(u32, &[f32])]) {
        let Some(max) = items.iter().map(|i| i.0).max() else {
            return;
        };
        self.ensure_slot(max as usize);
        let batch: RoaringBitmap = items.iter().map(|i| i.0).collect();
        if self.entry_point().is_some_and(|(e, _)| batch.contains(e)) {
            // A reused tombstone slot: searches must not start from a node being redone.
            self.move_entry_off(|s| batch.contains(s));
        }
        for &(slot, v) in items {
            if !self.linkable(slot) {
                self.place_as(slot, v, PENDING);
            }
        }
    }

    /// [`crate::index::VectorIndex::publish`]: the staged nodes at `slots` become live.
    pub(super) fn publish_staged(&mut self, slots: &[u32]) {
        for &slot in slots {
            if self.state.get(slot as usize) == Some(&PENDING) {
                self.state[slot as usize] = LIVE;
                self.pending -= 1;
                self.live += 1;
            }
        }
        self.maybe_recentre();
    }

    /// [`crate::index::VectorIndex::publish_unlinked`]: the staged nodes at `slots`
    /// become live rows searches score directly, not linked yet (their lists are
    /// empty and no list holds them: staging links nothing).
    pub(super) fn publish_unlinked(&mut self, slots: &[u32]) {
        for &slot in slots {
            if self.state.get(slot as usize) == Some(&PENDING) {
                self.state[slot as usize] = UNLINKED;
                self.pending -= 1;
                self.live += 1;
                self.unlinked.push(slot);
            }
        }
    }

    /// [`crate::index::VectorIndex::publish_linked`]: the unlinked rows, linked since
    /// by [`HnswIndex::link_all`], become live graph nodes.
    pub(super) fn publish_linked(&mut self) {
        for slot in std::mem::take(&mut self.unlinked) {
            if self.state.get(slot as usize) == Some(&UNLINKED) {
                self.state[slot as usize] = LIVE;
            }
        }
        self.maybe_recentre();
    }

    /// Moves the entry point to the node of highest level (live preferred) among the
    /// non-empty slots not `excluded`, or to none.
    fn move_entry_off(&mut self, excluded: impl Fn(u32) -> bool) {
        let mut best: Option<(usize, bool, u32)> = None;
        for s in 0..self.end as u32 {
            let st = self.state[s as usize];
            if st == EMPTY || excluded(s) {
                continue;
            }
            let key = (self.graph.level(s), st == LIVE);
            if best.is_none_or(|(l, live, _)| key > (l, live)) {
                best = Some((key.0, key.1, s));
            }
        }
        self.set_entry(best.map(|(l, _, s)| (s, l)));
    }

    /// [`crate::index::VectorIndex::insert`]: a replacement is a removal then an
    /// insertion.
    pub(super) fn insert_one(&mut self, slot: u32, v: &[f32]) {
        if self.is_live(slot) {
            self.remove_one(slot);
        }
        self.ensure_slot(slot as usize);
        if self.entry_point().is_some_and(|(e, _)| e == slot) {
            self.move_entry_off(|s| s == slot);
        }
        self.place(slot, v);
        {
            let mut s = self.pool.take();
            self.link::<false>(slot, &mut s);
        }
        self.maybe_recentre();
    }

    /// [`crate::index::VectorIndex::remove`]: the slot becomes a tombstone and its
    /// neighbours are repaired (the entry point, if it was, moves to the live node of
    /// highest level); the last live vector's removal resets the graph.
    pub(super) fn remove_one(&mut self, slot: u32) {
        if !self.is_live(slot) {
            return;
        }
        self.state[slot as usize] = TOMBSTONE;
        self.live -= 1;
        self.tombstones += 1;
        if self.live == 0 {
            self.reset_graph();
            return;
        }
        if self.entry_point().is_some_and(|(e, _)| e == slot) {
            // Searches start from a live node of the top level where there is one.
            self.move_entry_off(|s| s == slot);
        }
        let mut s = self.pool.take();
        self.repair_around(slot, &mut s);
    }

    /// Makes the live and staged slots of `slots` tombstones (no repair); returns them.
    fn tombstone(&mut self, slots: &[u32]) -> RoaringBitmap {
        let mut gone = RoaringBitmap::new();
        for &slot in slots {
            match self.state.get(slot as usize) {
                Some(&LIVE) => self.live -= 1,
                Some(&PENDING) => self.pending -= 1,
                Some(&UNLINKED) => {
                    self.live -= 1;
                    self.unlinked.retain(|&s| s != slot);
                }
                _ => continue,
            }
            self.state[slot as usize] = TOMBSTONE;
            self.tombstones += 1;
            gone.insert(slot);
        }
        gone
    }

    /// [`crate::index::VectorIndex::abandon`]: the nodes become tombstones at once,
    /// without the repair a removal does. A node that was never in any answer need not
    /// be cut out of its neighbours' lists: like every tombstone it still routes
    /// searches (they step through it and never return it), and a later
    /// [`HnswIndex::remove_one`]-style repair of a neighbour drops it. This is what
    /// lets a bulk write stopped by Ctrl-C return at once however much it had linked.
    pub fn abandon(&mut self, slots: &[u32]) {
        let gone = self.tombstone(slots);
        if self.live == 0 && self.pending == 0 {
            self.reset_graph();
            return;
        }
        if self.entry_point().is_some_and(|(e, _)| gone.contains(e)) {
            self.move_entry_off(|s| gone.contains(s));
        }
    }

    /// Inserts a batch of `(slot, vector)` in parallel (rayon), with the same result
    /// as inserting them one by one up to the order nodes are linked in: the vectors,
    /// levels and slot states are written first, then nodes are linked concurrently
    /// under per-node locks. A slot given twice takes its last vector; a slot that
    /// holds a vector is replaced (removed first, serially).
    pub fn build_parallel(&mut self, items: &[(u32, &[f32])]) {
        if items.is_empty() {
            return;
        }
        // The last occurrence of each slot, in input order.
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_unstable_by_key(|&i| (items[i].0, std::cmp::Reverse(i)));
        order.dedup_by_key(|i| items[*i].0);
        order.sort_unstable();
        let slots: Vec<u32> = order.iter().map(|&i| items[i].0).collect();
        let replaced: Vec<u32> = slots.iter().copied().filter(|&s| self.is_live(s)).collect();
        self.remove_batch(&replaced);
        if let Some(&max) = slots.iter().max() {
            self.ensure_slot(max as usize);
        }
        let batch: RoaringBitmap = slots.iter().copied().collect();
        if self.entry_point().is_some_and(|(e, _)| batch.contains(e)) {
            self.move_entry_off(|s| batch.contains(s));
        }
        for &i in &order {
            self.place(items[i].0, items[i].1);
        }
        self.link_all(&slots);
        self.maybe_recentre();
    }

    /// Links the nodes at `slots` (stored, live, lists empty) in parallel; the first
    /// serially when the graph has no entry point yet.
    pub(super) fn link_all(&self, slots: &[u32]) {
        let mut rest = slots;
        if self.entry_point().is_none() {
            if let Some((&first, tail)) = slots.split_first() {
                self.link::<false>(first, &mut self.pool.take());
                rest = tail;
            }
        }
        rest.par_iter()
            .with_min_len(16)
            .for_each_init(|| self.pool.take(), |s, &slot| self.link::<true>(slot, s));
    }

    /// [`crate::index::VectorIndex::remove_many`]: every live slot of `slots` becomes
    /// a tombstone, then the graph is repaired once for all of them — each list that
    /// holds one of them re-selected once (in parallel), however many of them it held,
    /// where removing them one by one re-selects a list once per removed neighbour, and
    /// serially. A batch that leaves fewer live nodes than it removes re-links the rest
    /// from scratch instead (cheaper than repairing a graph that is mostly tombstones,
    /// and the tombstones are dropped); the last live vector's removal resets the graph.
    pub(super) fn remove_batch(&mut self, slots: &[u32]) {
        if let Some(gone) = self.retire_batch(slots) {
            self.repair_retired(&gone);
        }
    }

    /// The first step of [`HnswIndex::remove_batch`], under exclusive access: the slots
    /// become tombstones (searches step through them and never return them) and the
    /// entry point moves off them. Returns the tombstones whose neighbours' lists still
    /// need the repair ([`HnswIndex::repair_retired`]), or `None` when nothing is left
    /// to do (nothing removed, the graph emptied, or relinked whole because at least
    /// as many were removed as stay).
    pub(super) fn retire_batch(&mut self, slots: &[u32]) -> Option<RoaringBitmap> {
        let gone = self.tombstone(slots);
        if gone.is_empty() {
            return None;
        }
        if self.live == 0 {
            self.reset_graph();
            return None;
        }
        if gone.len() as usize >= self.live {
            self.relink_live();
            return None;
        }
        if self.entry_point().is_some_and(|(e, _)| gone.contains(e)) {
            self.move_entry_off(|s| gone.contains(s));
        }
        Some(gone)
    }

    /// The second step of [`HnswIndex::remove_batch`], under shared access (searches go
    /// on; each list is rewritten under its node's lock, as linking does): every live
    /// list that holds one of the tombstones `gone` is selected anew.
    pub(super) fn repair_retired(&self, gone: &RoaringBitmap) {
        let todo = self.lists_to_repair(gone);
        todo.par_iter().with_min_len(64).for_each_init(
            || self.pool.take(),
            |s, &(n, layer)| {
                let s = &mut **s;
                let _guard = self.graph.lock(n);
                self.relink(n, usize::from(layer), &mut s.w, &mut s.sel2, &mut s.out2);
            },
        );
    }

    /// The `(node, layer)` lists to re-select after the slots of `gone` became
    /// tombstones: those of live nodes that hold one of them. Gathering the lists
    /// around each tombstone (as [`HnswIndex::repair_around`] does) reads about `m0³`
    /// words apiece, a scan of every list `end · m0`; past `end / m0²` tombstones the
    /// scan is the cheaper, and it also finds the rare list beyond two hops and lists
    /// that still hold an older tombstone.
    fn lists_to_repair(&self, gone: &RoaringBitmap) -> Vec<(u32, u8)> {
        let m0 = self.graph.cap_of(0);
        if (gone.len() as usize).saturating_mul(m0 * m0) >= self.end {
            return (0..self.end as u32)
                .into_par_iter()
                .with_min_len(1024)
                .filter(|&n| self.is_live(n))
                .flat_map_iter(|n| {
                    (0..=self.graph.level(n))
                        .filter(move |&layer| {
                            Graph::entries(self.graph.list(n, layer))
                                .iter()
                                .any(|a| !self.is_live(a.load(Relaxed)))
                        })
                        .map(move |layer| (n, layer as u8))
                })
                .collect();
        }
        let mut s = self.pool.take();
        let mut todo = Vec::new();
        for slot in gone {
            for layer in 0..=self.graph.level(slot) {
                self.holders_around(slot, layer, &mut s);
                todo.extend(s.todo.iter().map(|&n| (n, layer as u8)));
            }
        }
        todo.sort_unstable();
        todo.dedup();
        todo
    }

    /// Forgets the graph and links every live node anew (fresh levels); tombstones
    /// become empty slots.
    fn relink_live(&mut self) {
        let live: Vec<u32> = (0..self.end as u32).filter(|&s| self.is_live(s)).collect();
        self.graph.clear();
        for st in &mut self.state {
            if *st == TOMBSTONE {
                *st = EMPTY;
            }
        }
        self.tombstones = 0;
        self.end = live.last().map_or(0, |&s| s as usize + 1);
        self.set_entry(None);
        for &slot in &live {
            let level = self.random_level();
            self.graph.assign_level(slot, level);
        }
        self.link_all(&live);
    }

    /// Links the node at `slot` (stored, live, lists empty) into the graph: descent to
    /// its level, then on each layer a beam search with `ef_construction`, neighbour
    /// selection and reverse links.
    pub(super) fn link<const CONC: bool>(&self, slot: u32, s: &mut Scratch) {
        let level = self.graph.level(slot);
        let mut _top = None;
        let mut entry = self.entry_point();
        if entry.is_none_or(|(_, top)| level > top) {
            _top = Some(self.top_lock.lock());
            entry = self.entry_point();
        }
        let Some((ep, top)) = entry else {
            self.set_entry(Some((slot, level)));
            return;
        };
        if ep == slot {
            // Callers move the entry point off a reused slot first; nothing to link to.
            return;
        }
        self.prepare_query(self.row(slot), &mut s.q);
        // The graph is built on exact scores, whatever searches traverse on.
        let sc = Exact {
            ix: self,
            q: &s.q[..],
        };
        let mut cur = Cand {
            d: sc.score(ep),
            id: ep,
        };
        for layer in (level + 1..=top).rev() {
            cur = self.greedy::<CONC, _>(&sc, cur, layer, &mut s.w);
        }
        for layer in (0..=level.min(top)).rev() {
            self.beam::<CONC, _, _>(&sc, cur, self.ef_construction, layer, &mut s.w, |id| {
                id != slot && self.linkable(id)
            });
            s.sel.clear();
            s.sel.extend(s.w.res.drain_unordered());
            sort_cands(&mut s.sel);
            if let Some(&best) = s.sel.first() {
                cur = best;
            }
            self.select(&s.sel, self.m, &mut s.out);
            {
                let _guard = if CONC { self.graph.lock(slot) } else { None };
                self.graph.write(slot, layer, &s.out);
            }
            for &n in &s.out {
                self.add_link::<CONC>(n, slot, layer, &mut s.sel2, &mut s.out2);
            }
        }
        if level > top {
            self.set_entry(Some((slot, level)));
        }
    }

    /// Chooses at most `m` of `sel` (sorted nearest first to some base node, scores
    /// relative to it) into `out`: the paper's heuristic — a candidate is kept only if
    /// it is closer to the base than to every one kept so far — or, without
    /// `use_heuristic` (or with no more than `m` candidates), the `m` nearest.
    fn select(&self, sel: &[Cand], m: usize, out: &mut Vec<u32>) {
        out.clear();
        if !self.use_heuristic || sel.len() <= m {
            out.extend(sel.iter().take(m).map(|c| c.id));
            return;
        }
        for c in sel {
            if out.len() >= m {
                break;
            }
            if out.iter().all(|&o| self.score_nodes(c.id, o) >= c.d) {
                out.push(c.id);
            }
        }
    }

    /// Adds `new` to the list of `n` on `layer`: appended if there is room, else the
    /// list is re-selected among its live members and `new`.
    fn add_link<const CONC: bool>(
        &self,
        n: u32,
        new: u32,
        layer: usize,
        sel: &mut Vec<Cand>,
        out: &mut Vec<u32>,
    ) {
        let _guard = if CONC { self.graph.lock(n) } else { None };
        if self.graph.contains(n, layer, new) || self.graph.push(n, layer, new) {
            return;
        }
        sel.clear();
        for a in Graph::entries(self.graph.list(n, layer)) {
            let id = a.load(Relaxed);
            if id != n && self.linkable(id) {
                sel.push(Cand {
                    d: self.score_nodes(n, id),
                    id,
                });
            }
        }
        sel.push(Cand {
            d: self.score_nodes(n, new),
            id: new,
        });
        sort_cands(sel);
        self.select(sel, self.graph.cap_of(layer), out);
        self.graph.write(n, layer, out);
    }

    /// After `slot` became a tombstone: every live node within two hops of it (its
    /// neighbours and theirs, where nearly all nodes linking to it are) whose list
    /// holds it re-selects that list (see [`HnswIndex::relink`]), so the tombstone
    /// is cut out of the graph and a later reuse of the slot finds few stale links.
    fn repair_around(&self, slot: u32, s: &mut Scratch) {
        for layer in 0..=self.graph.level(slot) {
            self.holders_around(slot, layer, s);
            for &n in &s.todo {
                self.relink(n, layer, &mut s.w, &mut s.sel2, &mut s.out2);
            }
        }
    }

    /// Sets `s.todo` to the live nodes within two hops of `slot` on `layer` whose list
    /// there holds `slot`.
    fn holders_around(&self, slot: u32, layer: usize, s: &mut Scratch) {
        self.graph.read_into(slot, layer, &mut s.list);
        let w = &mut s.w;
        w.visited.reset(self.cap);
        w.visited.insert(slot);
        s.todo.clear();
        let check = |x: u32, todo: &mut Vec<u32>| {
            if self.is_live(x) && self.graph.contains(x, layer, slot) {
                todo.push(x);
            }
        };
        for &n in &s.list {
            if w.visited.insert(n) {
                check(n, &mut s.todo);
            }
            for a in Graph::entries(self.graph.list(n, layer)) {
                let m = a.load(Relaxed);
                if w.visited.insert(m) {
                    check(m, &mut s.todo);
                }
            }
        }
    }

    /// Re-selects the list of `n` on `layer` from its live neighbours and the live
    /// neighbours of each tombstone in it (tombstones drop out).
    fn relink(&self, n: u32, layer: usize, w: &mut Work, sel: &mut Vec<Cand>, out: &mut Vec<u32>) {
        w.visited.reset(self.cap);
        w.visited.insert(n);
        sel.clear();
        self.graph.read_into(n, layer, &mut w.nbuf);
        for &x in &w.nbuf {
            if self.is_live(x) {
                if w.visited.insert(x) {
                    sel.push(Cand {
                        d: self.score_nodes(n, x),
                        id: x,
                    });
                }
                continue;
            }
            for a in Graph::entries(self.graph.list(x, layer)) {
                let y = a.load(Relaxed);
                if self.is_live(y) && w.visited.insert(y) {
                    sel.push(Cand {
                        d: self.score_nodes(n, y),
                        id: y,
                    });
                }
            }
        }
        sort_cands(sel);
        self.select(sel, self.graph.cap_of(layer), out);
        // Keep the node's degree: the heuristic alone would thin the graph a little
        // more with every repair.
        let degree = w.nbuf.len().min(self.graph.cap_of(layer));
        for c in sel.iter() {
            if out.len() >= degree {
                break;
            }
            if !out.contains(&c.id) {
                out.push(c.id);
            }
        }
        self.graph.write(n, layer, out);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::HnswConfig;
    use crate::index::VectorIndex;
    use crate::metric::DistanceMetric;
    use crate::rng::SplitMix64;

    fn built(n: usize, dim: usize) -> HnswIndex {
        let mut rng = SplitMix64::new(11);
        let data: Vec<f32> = (0..n * dim).map(|_| rng.next_gaussian() as f32).collect();
        let mut h = HnswIndex::new(dim, DistanceMetric::Euclidean, &HnswConfig::default());
        let items: Vec<(u32, &[f32])> = data
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, v)| (i as u32, v))
            .collect();
        h.build_parallel(&items);
        h
    }

    /// Every list of every live node, on every layer.
    fn lists(h: &HnswIndex) -> Vec<(u32, usize, Vec<u32>)> {
        let mut out = Vec::new();
        for n in (0..h.end as u32).filter(|&n| h.is_live(n)) {
            for layer in 0..=h.graph.level(n) {
                let mut l = Vec::new();
                h.graph.read_into(n, layer, &mut l);
                out.push((n, layer, l));
            }
        }
        out
    }

    fn mean_degree0(h: &HnswIndex) -> f64 {
        let l: Vec<usize> = lists(h)
            .into_iter()
            .filter(|x| x.1 == 0)
            .map(|x| x.2.len())
            .collect();
        l.iter().sum::<usize>() as f64 / l.len() as f64
    }

    #[test]
    fn a_large_batch_removal_cuts_every_removed_node_out_of_every_list() {
        let mut h = built(3_000, 16);
        let before = mean_degree0(&h);
        let gone: Vec<u32> = (0..3_000).step_by(7).collect();
        h.remove_many(&gone);
        assert_eq!(h.len(), 3_000 - gone.len());
        assert_eq!(h.tombstones(), gone.len());
        for (n, layer, l) in lists(&h) {
            assert!(
                l.iter().all(|&x| h.is_live(x)),
                "node {n} layer {layer} still links a removed node: {l:?}"
            );
        }
        let after = mean_degree0(&h);
        assert!(after >= 0.95 * before, "degree {before} -> {after}");
        let (e, _) = h.entry_point().unwrap();
        assert!(h.is_live(e));
    }

    #[test]
    fn a_small_batch_removal_repairs_the_lists_around_each_removed_node() {
        let mut h = built(3_000, 16);
        // Nodes linking to the removed ones, within two hops (nearly all of them).
        let gone = [5u32, 1_234, 2_999];
        let holders_before: usize = lists(&h)
            .iter()
            .filter(|(_, _, l)| l.iter().any(|x| gone.contains(x)))
            .count();
        assert!(holders_before > 0);
        h.remove_many(&gone);
        let holders_after: usize = lists(&h)
            .iter()
            .filter(|(_, _, l)| l.iter().any(|x| gone.contains(x)))
            .count();
        assert!(
            holders_after * 10 <= holders_before,
            "{holders_after} of {holders_before} lists still hold a removed node"
        );
        assert_eq!(h.tombstones(), 3);
    }

    #[test]
    fn a_batch_removing_most_nodes_relinks_the_rest_and_drops_the_tombstones() {
        let mut h = built(2_000, 8);
        let gone: Vec<u32> = (0..2_000).filter(|s| s % 3 != 0).collect();
        h.remove_many(&gone);
        assert_eq!(h.len(), 2_000 - gone.len());
        assert_eq!(h.tombstones(), 0, "a re-linked graph keeps no tombstones");
        for (n, layer, l) in lists(&h) {
            assert!(
                l.iter().all(|&x| h.is_live(x)),
                "node {n} layer {layer}: {l:?}"
            );
        }
        assert!(mean_degree0(&h) > 8.0);
        let (e, _) = h.entry_point().unwrap();
        assert!(h.is_live(e));
        // The freed slots take vectors again.
        let v = vec![0.5f32; 8];
        h.insert(1, &v);
        assert_eq!(h.get(1), Some(&v[..]));
        assert_eq!(h.len(), 2_000 - gone.len() + 1);
        // Removing every live node resets the graph.
        let all: Vec<u32> = (0..2_000).collect();
        h.remove_many(&all);
        assert_eq!((h.len(), h.tombstones(), h.entry_point()), (0, 0, None));
    }
}
