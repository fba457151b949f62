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
use super::{HnswIndex, EMPTY, LIVE, TOMBSTONE};

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

    /// Stores `v` at `slot` (which fits and is not live) and makes it a live node with
    /// empty lists: a fresh slot gets a random level, a tombstone keeps its own.
    fn place(&mut self, slot: u32, v: &[f32]) {
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
        self.state[s] = LIVE;
        self.live += 1;
        self.end = self.end.max(s + 1);
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

    /// [`crate::index::VectorIndex::abandon`]: the nodes become tombstones at once,
    /// without the repair a removal does. A node that was never in any answer need not
    /// be cut out of its neighbours' lists: like every tombstone it still routes
    /// searches (they step through it and never return it), and a later
    /// [`HnswIndex::remove_one`]-style repair of a neighbour drops it. This is what
    /// lets a bulk write stopped by Ctrl-C return at once however much it had linked.
    pub fn abandon(&mut self, slots: &[u32]) {
        let mut gone = RoaringBitmap::new();
        for &slot in slots {
            if self.is_live(slot) {
                self.state[slot as usize] = TOMBSTONE;
                self.live -= 1;
                self.tombstones += 1;
                gone.insert(slot);
            }
        }
        if self.live == 0 {
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
        for &slot in &slots {
            if self.is_live(slot) {
                self.remove_one(slot);
            }
        }
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
        let this = &*self;
        let mut rest = &slots[..];
        if this.entry_point().is_none() {
            if let Some((&first, tail)) = slots.split_first() {
                this.link::<false>(first, &mut this.pool.take());
                rest = tail;
            }
        }
        rest.par_iter()
            .with_min_len(16)
            .for_each_init(|| this.pool.take(), |s, &slot| this.link::<true>(slot, s));
        self.maybe_recentre();
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
                id != slot && self.is_live(id)
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
            if id != n && self.is_live(id) {
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
            for &n in &s.todo {
                self.relink(n, layer, &mut s.w, &mut s.sel2, &mut s.out2);
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
