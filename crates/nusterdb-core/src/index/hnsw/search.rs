//! Searching the graph: greedy descent through the upper layers, beam search on one
//! layer with the pooled visited set, prefetching, and the exact scans used for tiny
//! indexes and selective filters.
//!
//! `CONC` (a const parameter) is true during a parallel build: every neighbour list is
//! then read under its node's lock. Queries never run concurrently with writers (those
//! need `&mut self`), so they read without locks.

use std::sync::atomic::Ordering::Relaxed;

use roaring::RoaringBitmap;

use super::graph::Graph;
use super::quant::{Codes, Exact, Quantized, Scorer};
use super::visited::{Cand, Scratch, Work};
use super::{HnswIndex, Kind};
use crate::index::topk::sort_results;
use crate::index::SearchParams;
use crate::metric::NEAR_CHORD;

/// How many candidates ahead of the one being scored have their vectors prefetched.
const PREFETCH_AHEAD: usize = 3;
/// Cache lines prefetched per vector at most (the hardware prefetcher follows on).
const PREFETCH_MAX_LINES: usize = 24;

/// Hints the CPU to bring the cache line at `p` into L1. Never dereferences `p`.
#[inline(always)]
pub(super) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it never faults and has no architectural effect,
    // whatever the address (SSE, part of the x86-64 baseline).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Scores each of `ids` in order, prefetching what the scorer reads a few ahead, and
/// hands `(id, score)` to `f`.
#[inline(always)]
fn score_each<S: Scorer>(sc: &S, ids: &[u32], mut f: impl FnMut(u32, f32)) {
    for &id in ids.iter().take(PREFETCH_AHEAD) {
        sc.prefetch(id);
    }
    for (j, &id) in ids.iter().enumerate() {
        if let Some(&ahead) = ids.get(j + PREFETCH_AHEAD) {
            sc.prefetch(ahead);
        }
        f(id, sc.score(id));
    }
}

impl HnswIndex {
    /// Prefetches the vector (and inverse norm) of `slot`.
    #[inline(always)]
    pub(super) fn prefetch_row(&self, slot: u32) {
        let p = self
            .rows
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(slot as usize * self.dim * 4);
        for line in 0..self.row_lines.min(PREFETCH_MAX_LINES) {
            prefetch(p.wrapping_add(line * 64));
        }
        if self.space.kind == Kind::Cos {
            prefetch(self.inv_norm.as_ptr().wrapping_add(slot as usize).cast());
        }
    }

    /// Prefetches the layer-0 list of `slot`.
    #[inline(always)]
    fn prefetch_list0(&self, slot: u32) {
        let p = self.graph.list0_ptr(slot);
        let bytes = self.graph.list0_bytes();
        let mut off = 0;
        while off < bytes {
            prefetch(p.wrapping_add(off));
            off += 64;
        }
    }

    /// Copies into `w.nbuf` the neighbours of `slot` on `layer` not visited yet, and
    /// marks them visited.
    #[inline(always)]
    fn gather_unvisited<const CONC: bool>(&self, slot: u32, layer: usize, w: &mut Work) {
        w.nbuf.clear();
        let _guard = if CONC { self.graph.lock(slot) } else { None };
        for a in Graph::entries(self.graph.list(slot, layer)) {
            let id = a.load(Relaxed);
            if w.visited.insert(id) {
                w.nbuf.push(id);
            }
        }
    }

    /// Greedy descent on `layer` from `cur`: moves to the closest neighbour while that
    /// is closer. Visits tombstones too (they route).
    pub(super) fn greedy<const CONC: bool, S: Scorer>(
        &self,
        sc: &S,
        mut cur: Cand,
        layer: usize,
        w: &mut Work,
    ) -> Cand {
        loop {
            w.nbuf.clear();
            {
                let _guard = if CONC { self.graph.lock(cur.id) } else { None };
                w.nbuf.extend(
                    Graph::entries(self.graph.list(cur.id, layer))
                        .iter()
                        .map(|a| a.load(Relaxed)),
                );
            }
            let mut moved = false;
            score_each(sc, &w.nbuf, |id, d| {
                if d < cur.d {
                    cur = Cand { d, id };
                    moved = true;
                }
            });
            if !moved {
                return cur;
            }
        }
    }

    /// Beam search on `layer` from `ep` with width `ef`: afterwards `w.res` holds the
    /// (at most `ef`) closest nodes found for which `accept` is true. Every node is
    /// traversed; `accept` is asked only of nodes close enough to enter the results.
    ///
    /// Fewer than `ef` results means every node reachable from `ep` was seen (the beam
    /// only stops early once it holds `ef`); the search then goes on from the entry
    /// point, in case `ep` lay in a part of the layer the entry's part does not reach
    /// (pruning and removals can leave such islands). Afterwards `w.visited` holds
    /// every node scored.
    #[inline]
    pub(super) fn beam<const CONC: bool, S: Scorer, A: Fn(u32) -> bool>(
        &self,
        sc: &S,
        ep: Cand,
        ef: usize,
        layer: usize,
        w: &mut Work,
        accept: A,
    ) {
        w.cand.clear();
        w.res.clear();
        w.visited.reset(self.cap);
        self.expand::<CONC, _, _>(sc, ep, ef, layer, w, &accept);
        if w.res.len() < ef {
            if let Some((e, _)) = self.entry_point() {
                let start = Cand {
                    d: sc.score(e),
                    id: e,
                };
                self.expand::<CONC, _, _>(sc, start, ef, layer, w, &accept);
            }
        }
    }

    /// The beam's main loop from `ep` (nothing if `ep` was visited), adding to the
    /// candidates and results already in `w`.
    #[inline]
    fn expand<const CONC: bool, S: Scorer, A: Fn(u32) -> bool>(
        &self,
        sc: &S,
        ep: Cand,
        ef: usize,
        layer: usize,
        w: &mut Work,
        accept: &A,
    ) {
        if !w.visited.insert(ep.id) {
            return;
        }
        if sc.ranks_exactly() {
            return self.expand_ranked_exactly::<CONC, _, _>(sc, ep, ef, layer, w, accept);
        }
        w.cand.push(ep);
        if accept(ep.id) {
            w.res.push(ep);
        }
        while let Some(c) = w.cand.pop() {
            if w.res.len() >= ef {
                if let Some(worst) = w.res.top() {
                    if c.d > worst.d {
                        break;
                    }
                }
            }
            self.gather_unvisited::<CONC>(c.id, layer, w);
            if layer == 0 {
                if let Some(next) = w.cand.top() {
                    self.prefetch_list0(next.id);
                }
            }
            self.score_gathered(sc, ef, w, |w, c| {
                w.cand.push(c);
                if accept(c.id) {
                    w.res.push(c);
                    if w.res.len() > ef {
                        w.res.pop();
                    }
                }
            });
        }
    }

    /// Scores the neighbours gathered in `w.nbuf` (prefetching a few ahead) and hands
    /// each one closer than the worst of `ef` results — any, while there are fewer — to
    /// `admit`.
    #[inline(always)]
    fn score_gathered<S: Scorer>(
        &self,
        sc: &S,
        ef: usize,
        w: &mut Work,
        mut admit: impl FnMut(&mut Work, Cand),
    ) {
        let nbuf = std::mem::take(&mut w.nbuf);
        score_each(sc, &nbuf, |id, d| {
            let closer = match w.res.top() {
                Some(worst) if w.res.len() >= ef => d < worst.d,
                _ => true,
            };
            if closer {
                admit(w, Cand { d, id });
            }
        });
        w.nbuf = nbuf;
    }

    /// [`HnswIndex::expand`] for scores too rough to rank results on: candidates are
    /// queued and admitted on their estimates, and each node expanded enters the
    /// results with its exact score (one exact score per expansion, about one per
    /// `2·M` estimates). The beam stops when the best queued estimate is worse than the
    /// worst of `ef` exact results. The results are then exact: `collect` does not
    /// re-score them.
    #[inline]
    fn expand_ranked_exactly<const CONC: bool, S: Scorer, A: Fn(u32) -> bool>(
        &self,
        sc: &S,
        ep: Cand,
        ef: usize,
        layer: usize,
        w: &mut Work,
        accept: &A,
    ) {
        w.cand.push(ep);
        while let Some(c) = w.cand.pop() {
            let full = w.res.len() >= ef;
            if full && w.res.top().is_some_and(|worst| c.d > worst.d) {
                break;
            }
            if accept(c.id) {
                let d = sc.exact(c.id, &mut w.row);
                if !full || w.res.top().is_some_and(|worst| d < worst.d) {
                    w.res.push(Cand { d, id: c.id });
                    if w.res.len() > ef {
                        w.res.pop();
                    }
                }
            }
            self.gather_unvisited::<CONC>(c.id, layer, w);
            if layer == 0 {
                if let Some(next) = w.cand.top() {
                    self.prefetch_list0(next.id);
                    // Its exact score is the next one taken, unless a neighbour below
                    // overtakes it.
                    self.prefetch_row(next.id);
                }
            }
            self.score_gathered(sc, ef, w, |w, c| w.cand.push(c));
        }
    }

    /// Offers `slot` to the bounded max-heap `w.res` of the `k` best (ties keep the
    /// earlier offer: scans go by ascending slot). `qp` is the prepared query, `q` as
    /// given: under cosine and angular a row nearly parallel to it is scored from the
    /// float64 gap (`metric::NEAR_CHORD`), so the exact scans choose as brute force.
    #[inline]
    fn offer(&self, (qp, q): (&[f32], &[f32]), slot: u32, k: usize, w: &mut Work) {
        let mut d = self.score_read(qp, slot, &mut w.row);
        if self.space.kind == Kind::Cos && d < NEAR_CHORD {
            d = self.near_score(q, d, slot, &mut w.row);
        }
        if w.res.len() < k {
            w.res.push(Cand { d, id: slot });
        } else if let Some(worst) = w.res.top() {
            if d < worst.d {
                w.res.pop();
                w.res.push(Cand { d, id: slot });
            }
        }
    }

    /// The search behind [`crate::index::VectorIndex::search`].
    pub(super) fn search_one(
        &self,
        q: &[f32],
        k: usize,
        allow: Option<&RoaringBitmap>,
        p: &SearchParams,
    ) -> Vec<(u32, f32)> {
        if k == 0 || self.live == 0 || q.len() != self.dim {
            return Vec::new();
        }
        let ef = self.ef_for(k, p);
        let mut guard = self.pool.take();
        let s: &mut Scratch = &mut guard;
        self.prepare_query(q, &mut s.q);
        let qp = &s.q[..];
        let w = &mut s.w;
        w.res.clear();
        match allow {
            Some(a) => {
                let allowed = match self.end {
                    0 => 0,
                    end => a.range_cardinality(0..=((end - 1).min(u32::MAX as usize) as u32)),
                };
                if allowed == 0 {
                    return Vec::new();
                }
                if self.filter_prefers_scan(allowed, ef) {
                    for slot in a.iter() {
                        if slot as usize >= self.end {
                            break;
                        }
                        if self.is_live(slot) {
                            self.offer((qp, q), slot, k, w);
                        }
                    }
                } else {
                    self.graph_search(qp, ef, w, p, |id| self.is_live(id) && a.contains(id));
                    if (w.res.len() as u64) < allowed.min(ef as u64) {
                        // Allowed nodes the graph does not reach (or dead ones): score the
                        // rest of the allowed set.
                        for slot in a.iter() {
                            if slot as usize >= self.end {
                                break;
                            }
                            if self.is_live(slot) && w.visited.insert(slot) {
                                self.offer((qp, q), slot, ef, w);
                            }
                        }
                    }
                }
            }
            None if self.live <= ef => {
                for slot in 0..self.end as u32 {
                    if self.is_live(slot) {
                        self.offer((qp, q), slot, k, w);
                    }
                }
            }
            None => {
                if self.tombstones == 0 && self.pending == 0 && self.unlinked.is_empty() {
                    // Every node is a result: no state to check per node.
                    self.graph_search(qp, ef, w, p, |_| true);
                } else {
                    self.graph_search(qp, ef, w, p, |id| self.is_live(id));
                }
                if w.res.len() < ef.min(self.live) {
                    // Live nodes the graph does not reach: score them too.
                    for slot in 0..self.end as u32 {
                        if self.is_live(slot) && w.visited.insert(slot) {
                            self.offer((qp, q), slot, ef, w);
                        }
                    }
                }
            }
        }
        // Rows not linked yet are scored directly (the graph never returns them).
        for &slot in &self.unlinked {
            if allow.is_none_or(|a| a.contains(slot)) {
                self.offer((qp, q), slot, ef, w);
            }
        }
        self.collect(q, k, s, p)
    }

    /// Whether a filter allowing `allowed` slots is answered by scoring them all.
    fn filter_prefers_scan(&self, allowed: u64, ef: usize) -> bool {
        let a = allowed as f64;
        a <= ef as f64 || a * a <= self.filter_brute_force_factor * ef as f64 * self.live as f64
    }

    /// Descent from the entry point and beam search on layer 0; results in `w.res`.
    fn graph_search<A: Fn(u32) -> bool>(
        &self,
        q: &[f32],
        ef: usize,
        w: &mut Work,
        p: &SearchParams,
        accept: A,
    ) {
        match self.traversal_codes(p) {
            Some(codes) => {
                // `w.row` is free until the walk reads a row from the files.
                let (qc, tab) = (std::mem::take(&mut w.qcodes), std::mem::take(&mut w.ctab));
                let sc = Quantized::new(self, codes, q, qc, &mut w.row, tab);
                self.walk(&sc, ef, w, accept);
                (w.qcodes, w.ctab) = sc.into_buffer();
            }
            None => self.walk(&Exact { ix: self, q }, ef, w, accept),
        }
    }

    /// The codes a search traverses on, if quantized traversal is on for the index and
    /// not turned off for this search.
    #[inline]
    fn traversal_codes(&self, p: &SearchParams) -> Option<&Codes> {
        self.codes
            .as_ref()
            .filter(|_| self.quantized_search && p.quantized != Some(false))
    }

    fn walk<S: Scorer, A: Fn(u32) -> bool>(&self, sc: &S, ef: usize, w: &mut Work, accept: A) {
        let Some((ep, top)) = self.entry_point() else {
            return;
        };
        let mut cur = Cand {
            d: sc.score(ep),
            id: ep,
        };
        for layer in (1..=top).rev() {
            cur = self.greedy::<false, _>(sc, cur, layer, w);
        }
        self.beam::<false, _, _>(sc, cur, ef, 0, w, accept);
    }

    /// The `k` best of `s.w.res` as `(slot, distance)`, sorted by (distance, slot).
    fn collect(&self, q: &[f32], k: usize, s: &mut Scratch, p: &SearchParams) -> Vec<(u32, f32)> {
        s.sel.clear();
        s.sel.extend(s.w.res.drain_unordered());
        if self.traversal_codes(p).is_some_and(|c| !c.quant.one_bit()) {
            // Candidates chosen on the codes: re-scored exactly, then ranked (RaBitQ's
            // walk ranked them exactly already: `expand_ranked_exactly`).
            for c in &mut s.sel {
                c.d = self.score_read(&s.q, c.id, &mut s.w.row);
            }
        }
        if self.space.kind == Kind::Cos {
            // Rows nearly parallel to the query: ranked by the float64 gap, as the
            // exact scans rank them (`metric::NEAR_CHORD`).
            for c in s.sel.iter_mut().filter(|c| c.d < NEAR_CHORD) {
                c.d = self.near_score(q, c.d, c.id, &mut s.w.row);
            }
        }
        s.sel
            .sort_unstable_by(|a, b| a.d.total_cmp(&b.d).then(a.id.cmp(&b.id)));
        let n = k.min(s.sel.len());
        let mut out: Vec<(u32, f32)> = s.sel[..n]
            .iter()
            .map(|c| (c.id, self.finish(q, c.d, c.id, &mut s.w.row)))
            .collect();
        sort_results(&mut out);
        out
    }
}
