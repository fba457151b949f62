//! NusterDB's own HNSW graph index (Malkov & Yashunin, "Efficient and robust
//! approximate nearest neighbor search using Hierarchical Navigable Small World
//! graphs", 2016/2018), written for speed and for what a database needs: slots reused
//! after removal, deletes that never come back, filters, every metric.
//!
//! # Layout
//! - Vectors: one contiguous, 64-byte aligned buffer, row `s` at `s·dim` (as
//!   [`super::FlatIndex`]); for cosine and angular also `1/‖x‖` per slot (0 for a zero
//!   vector).
//! - Graph (`graph.rs`): flat fixed-stride arrays of neighbour lists, no `Vec` per node:
//!   layer 0 holds `1 + 2M` words per slot (a count, then up to 2M neighbours); a node
//!   of level `L ≥ 1` owns a block of `L · (1 + M)` words for its upper lists.
//! - Per slot a state: empty, live, *tombstone* (removed), *pending* (staged by a
//!   write not yet committed: linked and walked through, never returned; see
//!   [`VectorIndex::stages`](crate::index::VectorIndex::stages)), or *unlinked* (live,
//!   not yet in the graph: every search scores it directly; a follower's refresh
//!   publishes its new rows so and links them after it returns).
//! - A pool of scratch spaces (`visited.rs`), one per thread searching or inserting at
//!   once: an epoch-marked visited set (one `u16` per
//!   slot, cleared only when the epoch wraps), the two heaps and the buffers of a search
//!   or an insertion; a search allocates nothing but its result once the pool is warm.
//!
//! # Scores
//! The graph is navigated by a *score* that orders like the metric's distance and is
//! the same function for query–node and node–node pairs (the neighbour-selection
//! heuristic compares the two): squared L2 for euclidean, `−q·x` for inner product,
//! `‖q̂ − x/‖x‖‖² = 2 − 2·cos` (q̂ the normalised query; `‖x/‖x‖ − y/‖y‖‖²` between
//! nodes; 2 against a zero vector) for cosine and angular, and the distance itself for
//! the other metrics. Cosine is scored as a difference, not as `−q̂·x/‖x‖`, because a
//! float32 dot product keeps only ~10⁻⁷ of cos, too little to rank rows far from the
//! origin (all nearly parallel); the difference keeps the precision of the gap itself. Kernels are resolved once
//! ([`crate::distance::kernels`]). The `k` results get their reported distance exactly
//! as [`DistanceMetric::distance_unchecked`] computes it (the square root of the same
//! kernel's value for euclidean, a recomputation for cosine/angular) and are sorted by
//! (distance, slot). Under cosine and angular the kept candidates nearly parallel to
//! the query (a chord below [`crate::metric::NEAR_CHORD`]) are ranked by the float64
//! gap, whose order the float32 chord does not keep for rows far from the origin.
//!
//! # Search (`search.rs`)
//! Greedy descent from the entry point through the upper layers, then a beam search on
//! layer 0 with `ef = max(ef_search, k)` (`ef_search`: the call's, else the config's,
//! else `max(k, ef_construction / 2)`). The candidates' vectors are prefetched a few
//! ahead of the distance computations, and the next candidate's neighbour list while
//! the current one is scored. When the index holds no more than `ef` live vectors the
//! search is exact (a scan). A beam that ends with fewer than `ef` results has seen all
//! it can reach; it then goes on from the entry point (pruning and removals can leave
//! small islands an upper layer leads into), and if still short scores the eligible
//! slots it did not reach, so a search returns `min(k, matches)` results whenever
//! `ef ≥ k` (always: `ef = max(ef_search, k)`).
//!
//! # Insertion (`build.rs`)
//! The paper's algorithm: a random level (`⌊−ln U · 1/ln M⌋`, at most `max_layer`);
//! descent to that level; on each layer from there down a beam search with
//! `ef_construction`, then the node's `M` neighbours chosen among the results by the
//! paper's heuristic (a candidate is kept only if it is closer to the node than to
//! every neighbour kept so far; `use_heuristic = false`: simply the `M` nearest), and
//! reverse links, a full list (`M`, `2M` on layer 0) being re-selected by the same rule.
//! [`HnswIndex::build_parallel`] inserts a batch with rayon: vectors and levels are
//! written first (serially), then nodes are linked in parallel, each node's lists
//! guarded by its own lock; a node that raises the top level holds a global lock.
//!
//! # Removal
//! A removed slot becomes a tombstone: never returned and never chosen as a new
//! neighbour, but its vector and lists stay, so a search that still reaches it passes
//! through. The graph is *repaired* at once, so recall does not decay under churn: every
//! live node within two hops of the tombstone (its neighbours and theirs, where nearly
//! all the nodes linking to it are) whose list holds it re-selects that list (same
//! heuristic) from its live neighbours and the live neighbours of each tombstone in it,
//! filled up to its former degree with the nearest of those candidates. If the
//! tombstone was the entry point, the entry moves to a live node of the top level.
//! A batch ([`HnswIndex::remove_many`](crate::index::VectorIndex::remove_many): bulk
//! removes, replaced vectors of a bulk write) tombstones all its slots first and then
//! re-selects each affected list once, in parallel — found by a scan of every list
//! once the batch is large enough for that to be cheaper — so a list that held several
//! of them is not re-selected once per removal; a batch that removes more nodes than it
//! leaves links the rest anew instead (the tombstones then become empty slots).
//! Reinserting at a tombstone's slot (the database reuses slots) clears its lists and
//! links it anew at the same level; replacing a live slot is a removal then an
//! insertion. Removing the last live vector resets the graph.
//!
//! # Filters
//! With `allow`, when the allowed set is small — `a² ≤ F · ef · n` for `a` allowed
//! slots among `n` live ones, the point where scoring the `a` vectors costs less than a
//! graph search that must see about `ef / (a/n)` nodes to find `ef` allowed ones (`F`
//! = [`HnswIndex::set_filter_brute_force_factor`], default
//! [`DEFAULT_FILTER_BRUTE_FORCE_FACTOR`]) — the allowed live slots are scored exactly.
//! Otherwise the graph is traversed through every node but only allowed live nodes
//! enter the results, and the search goes on until `ef` of them are found and no
//! candidate is closer than the worst, which widens the beam by itself as the filter
//! gets more selective. Measured (`examples/hnsw_bench.rs --filters`, 100 000 × 128,
//! ef 64) the two strategies cross between 10 % and 20 % selectivity, where the default
//! `F` puts the switch.

//!
//! # Quantized traversal (`quant.rs`)
//! For euclidean, inner product, cosine and angular every row is also kept as 8-bit
//! codes, or 4-bit ones (`Quantization::Sq4`), or none (`Quantization::Off`), chosen
//! at creation (centred on the rows' mean, then a per-row offset and step; the centre
//! follows the data as it doubles and is saved with the graph); a query is quantized at
//! 8 bits. Searches walk the graph on integer dot products of the codes — a quarter
//! (an eighth) of the memory traffic — and re-score the `ef` candidates they end with
//! exactly, so returned distances are exact. Insertion uses the full vectors.
//! `Quantization::RaBitQ` and `Quantization::Binary` (`rabitq.rs`) keep one bit per
//! component of the randomly rotated row instead (rotated into the power of two above
//! the dimension, or the multiple of 64), scored by popcounts against the rotated
//! query's bit planes.
//! [`HnswIndex::set_quantized_search`] turns the coded walk off (for comparison).
//!
//! # Persistence (`persist.rs`)
//! [`HnswIndex::write_graph`] writes the whole structure (slot states, levels, every
//! list, the entry point, the level generator, the vectors of tombstones) with the id
//! and a hash of the vector of every live slot; [`HnswIndex::read_graph`] checks and
//! reads it back, and the database restores the live vectors from RocksDB into it
//! ([`HnswIndex::restore_row`]). A loaded index is the saved one: it answers every
//! query exactly as before.

mod build;
mod codes_file;
mod file_rows;
mod graph;
mod persist;
mod quant;
mod rabitq;
mod search;
mod visited;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use roaring::RoaringBitmap;

pub(crate) use self::file_rows::FileRows;
use self::graph::Graph;
pub(crate) use self::persist::SealedRows;
pub use self::persist::{vector_hash, GraphImage, GRAPH_FORMAT_VERSION, GRAPH_MAGIC, NO_ID};
use self::visited::ScratchPool;
use super::rows::Rows;
use super::{SearchParams, VectorIndex};
use crate::config::{HnswConfig, Quantization};
use crate::distance::kernels;
use crate::metric::{near_chord, DistanceMetric};
use crate::rng::SplitMix64;

/// Default `F` of the filtered-search rule (see the module docs): brute force over the
/// allowed set when `allowed² ≤ F · ef · live`.
pub const DEFAULT_FILTER_BRUTE_FORCE_FACTOR: f64 = 16.0;

/// The seed of the level generator (levels are reproducible run to run).
const LEVEL_SEED: u64 = 0x6e75_7374_6572_6462;

/// Slot states.
const EMPTY: u8 = 0;
const LIVE: u8 = 1;
const TOMBSTONE: u8 = 2;
/// Staged by a write not yet committed: linked into the graph (searches may walk
/// through it) but never returned, until published as live or abandoned.
const PENDING: u8 = 3;
/// A live row not (yet) linked (a follower's refresh publishes its new rows so and
/// links them afterwards): counted as live, scored by every search directly (it is in
/// [`HnswIndex::unlinked`]), never returned through the graph (which may reach it while
/// it is being linked), until [`HnswIndex::publish_linked`] makes it [`LIVE`].
const UNLINKED: u8 = 4;

/// Slots the per-slot arrays grow by at least (see `HnswIndex::ensure_slot`).
const GROW_SLOTS: usize = 4096;

/// No entry point (packed form).
const NO_ENTRY: u64 = u64::MAX;

/// How scores are computed (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Squared L2 (`f` = l2_squared).
    L2,
    /// `−q·x` (`f` = dot).
    Ip,
    /// `‖q̂ − x/‖x‖‖²` (`scaled`, with the per-slot inverse norms).
    Cos,
    /// The kernel's value is the distance (`f` = l1 or linf).
    Direct,
    /// `distance_unchecked` (hamming, jaccard).
    Other,
}

/// The score function, resolved once.
#[derive(Clone, Copy)]
struct Space {
    kind: Kind,
    metric: DistanceMetric,
    f: fn(&[f32], &[f32]) -> f32,
    /// Σ (a − s·b)² (cosine).
    scaled: fn(&[f32], &[f32], f32) -> f32,
}

impl Space {
    fn of(metric: DistanceMetric) -> Space {
        let k = kernels();
        let (kind, f) = match metric {
            DistanceMetric::Euclidean => (Kind::L2, k.l2_squared),
            DistanceMetric::InnerProduct => (Kind::Ip, k.dot),
            DistanceMetric::Cosine | DistanceMetric::Angular => (Kind::Cos, k.dot),
            DistanceMetric::Manhattan => (Kind::Direct, k.l1),
            DistanceMetric::Chebyshev => (Kind::Direct, k.linf),
            DistanceMetric::Hamming | DistanceMetric::Jaccard => (Kind::Other, k.dot),
        };
        Space {
            kind,
            metric,
            f,
            scaled: k.l2_scaled,
        }
    }
}

/// Whether the graph walk of an index under `metric` can run on codes (the metrics
/// whose score is linear in the row) rather than on the full rows.
pub fn walks_on_codes(metric: DistanceMetric) -> bool {
    quant::uses_codes(Space::of(metric).kind)
}

/// The HNSW index. See the module docs.
pub struct HnswIndex {
    dim: usize,
    metric: DistanceMetric,
    space: Space,
    /// M (lists on layers ≥ 1; new nodes get up to M neighbours on every layer).
    m: usize,
    /// Highest level a node may get.
    max_layer: usize,
    /// Beam width while inserting (at least M).
    ef_construction: usize,
    /// Default beam width while searching.
    ef_search: Option<usize>,
    use_heuristic: bool,
    /// 1 / ln M.
    level_mult: f64,
    /// The rows, `cap · dim` floats of them.
    rows: Rows,
    /// Per slot 1/‖x‖ (cosine, angular), else empty.
    inv_norm: Vec<f32>,
    graph: Graph,
    /// Per slot: `EMPTY`, `LIVE` or `TOMBSTONE`.
    state: Vec<u8>,
    /// Slots every per-slot array holds.
    cap: usize,
    /// One past the highest non-empty slot.
    end: usize,
    /// Live vectors.
    live: usize,
    /// Tombstones.
    tombstones: usize,
    /// Staged nodes ([`PENDING`]).
    pending: usize,
    /// The [`UNLINKED`] slots (counted in `live`).
    unlinked: Vec<u32>,
    /// `(level << 32) | slot` of the entry point, or `NO_ENTRY`.
    entry: AtomicU64,
    /// Held by an insertion that raises the top level, for its whole duration.
    top_lock: Mutex<()>,
    rng: SplitMix64,
    pool: ScratchPool,
    filter_brute_force_factor: f64,
    /// Cache lines of one row, for prefetching.
    row_lines: usize,
    /// The rows' codes (metrics whose score is linear in the row, unless the
    /// quantization is `Off`), else `None`.
    codes: Option<quant::Codes>,
    /// Whether searches traverse on `codes` (with an exact re-rank).
    quantized_search: bool,
    /// The lowest slot whose row, codes or inverse norm changed since the last seal
    /// wrote them ([`HnswIndex::mark_sealed`]): a seal keeps the files of the slots
    /// below it (rounded down to a part boundary) and writes only the rest.
    changed_from: AtomicUsize,
    /// The seal's rows read from its files by searches (`vectors="disk"`), if so opened.
    file_rows: Option<file_rows::FileRows>,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("dim", &self.dim)
            .field("metric", &self.metric)
            .field("m", &self.m)
            .field("ef_construction", &self.ef_construction)
            .field("live", &self.live)
            .field("tombstones", &self.tombstones)
            .field("cap", &self.cap)
            .field("entry", &self.entry_point())
            .finish()
    }
}

impl HnswIndex {
    /// An empty index for vectors of `dim` under `metric`, with `cfg`'s parameters
    /// (`max_nb_elements` rows are reserved if the allocator agrees; the index grows
    /// past it). Out-of-range parameters are clamped (M ≥ 2, ef_construction ≥ M,
    /// level ≤ 255); [`HnswConfig::validate`] is where they are rejected. The graph
    /// walk runs on 8-bit codes where the metric allows ([`HnswIndex::new_coded`] chooses).
    pub fn new(dim: usize, metric: DistanceMetric, cfg: &HnswConfig) -> Self {
        Self::new_coded(dim, metric, cfg, Quantization::Sq8)
    }

    /// [`HnswIndex::new`] with the codes the walk runs on: `quantization` for the
    /// metrics with codes ([`walks_on_codes`]), none for the others.
    pub fn new_coded(
        dim: usize,
        metric: DistanceMetric,
        cfg: &HnswConfig,
        quantization: Quantization,
    ) -> Self {
        let m = cfg.max_nb_connection.max(2);
        let hint = cfg.max_nb_elements;
        let mut inv_norm = Vec::new();
        let space = Space::of(metric);
        let rows = Rows::with_capacity_hint(hint.saturating_mul(dim));
        if rows.reserved(hint.saturating_mul(dim)) && space.kind == Kind::Cos {
            let _ = inv_norm.try_reserve_exact(hint);
        }
        let row_bytes = dim * 4;
        let row_lines = row_bytes.div_ceil(64) + usize::from(!dim.is_multiple_of(16));
        Self {
            dim,
            metric,
            space,
            m,
            max_layer: cfg.max_layer.min(usize::from(u8::MAX)),
            ef_construction: cfg.ef_construction.max(m),
            ef_search: cfg.ef_search.filter(|&e| e > 0),
            use_heuristic: cfg.use_heuristic,
            level_mult: 1.0 / (m as f64).ln(),
            rows,
            inv_norm,
            graph: Graph::new(m, 2 * m, hint),
            state: Vec::new(),
            cap: 0,
            end: 0,
            live: 0,
            tombstones: 0,
            pending: 0,
            unlinked: Vec::new(),
            entry: AtomicU64::new(NO_ENTRY),
            top_lock: Mutex::new(()),
            rng: SplitMix64::new(LEVEL_SEED),
            pool: ScratchPool::default(),
            filter_brute_force_factor: DEFAULT_FILTER_BRUTE_FORCE_FACTOR,
            row_lines,
            codes: (quant::uses_codes(space.kind) && quantization != Quantization::Off)
                .then(|| quant::Codes::new(dim, quantization)),
            quantized_search: true,
            changed_from: AtomicUsize::new(0),
            file_rows: None,
        }
    }

    /// Whether searches walk the graph on the rows' codes and re-rank the
    /// candidates exactly (the default, for euclidean, inner product, cosine and
    /// angular), or on the full vectors. Insertion always uses the full vectors.
    pub fn set_quantized_search(&mut self, on: bool) {
        self.quantized_search = on;
    }

    /// The codes the walk runs on (`Off` for none).
    pub fn quantization(&self) -> Quantization {
        self.codes.as_ref().map_or(Quantization::Off, |c| c.quant)
    }

    /// Code bytes per slot (0 without codes).
    pub fn code_bytes_per_slot(&self) -> usize {
        self.codes.as_ref().map_or(0, |c| c.stride)
    }

    /// Whether searches traverse on codes (see [`HnswIndex::set_quantized_search`]).
    pub fn quantized_search(&self) -> bool {
        self.quantized_search && self.codes.is_some()
    }

    /// The `F` of the filtered-search rule: brute force over the allowed set when
    /// `allowed² ≤ F · ef · live` (0: always traverse the graph, unless fewer slots are
    /// allowed than `ef`; `f64::INFINITY`: always brute force).
    pub fn set_filter_brute_force_factor(&mut self, f: f64) {
        self.filter_brute_force_factor = if f.is_nan() { 0.0 } else { f.max(0.0) };
    }

    /// Removed slots still kept in the graph as routing nodes (until their slot is
    /// reused or the last live vector is removed).
    pub fn tombstones(&self) -> usize {
        self.tombstones
    }

    /// The entry point `(slot, level)`, if any node is in the graph.
    pub fn entry_point(&self) -> Option<(u32, usize)> {
        let e = self.entry.load(Ordering::Acquire);
        (e != NO_ENTRY).then_some((e as u32, (e >> 32) as usize))
    }

    /// Sets the entry point (`None`: no node).
    fn set_entry(&self, e: Option<(u32, usize)>) {
        let packed = e.map_or(NO_ENTRY, |(s, l)| ((l as u64) << 32) | u64::from(s));
        self.entry.store(packed, Ordering::Release);
    }

    /// The beam width of a search for `k` results.
    fn ef_for(&self, k: usize, p: &SearchParams) -> usize {
        p.ef_search
            .filter(|&e| e > 0)
            .or(self.ef_search)
            .unwrap_or_else(|| k.max(self.ef_construction / 2))
            .max(k)
            .max(1)
    }

    /// All row storage as floats.
    #[inline]
    fn data(&self) -> &[f32] {
        self.rows.as_slice()
    }

    /// All row storage as mutable floats.
    #[inline]
    fn data_mut(&mut self) -> &mut [f32] {
        self.rows.as_mut_slice()
    }

    /// The row of `slot` (empty past the end).
    #[inline]
    fn row(&self, slot: u32) -> &[f32] {
        let s = slot as usize;
        self.data()
            .get(s * self.dim..(s + 1) * self.dim)
            .unwrap_or_default()
    }

    /// Whether `slot` holds a live vector.
    #[inline]
    fn is_live(&self, slot: u32) -> bool {
        self.state.get(slot as usize) == Some(&LIVE)
    }

    /// Whether `slot` may be chosen as a neighbour: live, or staged or unlinked and
    /// being linked (such nodes link to each other as a parallel build's do).
    #[inline]
    fn linkable(&self, slot: u32) -> bool {
        matches!(
            self.state.get(slot as usize),
            Some(&LIVE) | Some(&PENDING) | Some(&UNLINKED)
        )
    }

    /// The score between a prepared query and the vector at `slot`.
    #[inline(always)]
    fn score(&self, q: &[f32], slot: u32) -> f32 {
        self.score_row(q, self.row(slot), slot)
    }

    /// [`HnswIndex::score`], the row read from the seal's files into `buf` where
    /// searches read it so (`vectors="disk"`, [`file_rows::FileRows`]).
    #[inline]
    fn score_read(&self, q: &[f32], slot: u32, buf: &mut Vec<f32>) -> f32 {
        match &self.file_rows {
            Some(f) if f.read(slot, buf) => self.score_row(q, buf, slot),
            _ => self.score(q, slot),
        }
    }

    /// The score between a prepared query and `x`, the vector at `slot`.
    #[inline(always)]
    fn score_row(&self, q: &[f32], x: &[f32], slot: u32) -> f32 {
        let sp = &self.space;
        match sp.kind {
            Kind::L2 | Kind::Direct => (sp.f)(q, x),
            Kind::Ip => -(sp.f)(q, x),
            Kind::Cos => match self.inv_norm.get(slot as usize).copied().unwrap_or(0.0) {
                // A zero vector: cos = 0 with anything.
                0.0 => 2.0,
                inv => (sp.scaled)(q, x, inv),
            },
            Kind::Other => sp.metric.distance_unchecked(q, x),
        }
    }

    /// The score between the vectors at two slots (the same function as
    /// [`HnswIndex::score`] with the first prepared as a query).
    #[inline]
    fn score_nodes(&self, a: u32, b: u32) -> f32 {
        match self.space.kind {
            Kind::Cos => {
                let inv = |s: u32| self.inv_norm.get(s as usize).copied().unwrap_or(0.0);
                let (ia, ib) = (inv(a), inv(b));
                if ia == 0.0 || ib == 0.0 {
                    return 2.0;
                }
                // ‖ia·x − ib·y‖² = ia²·‖x − (ib/ia)·y‖².
                ia * ia * (self.space.scaled)(self.row(a), self.row(b), ib / ia)
            }
            _ => self.score(self.row(a), b),
        }
    }

    /// Writes `q` prepared for scoring into `out`: normalised for cosine/angular (zero
    /// stays zero), as is otherwise.
    fn prepare_query(&self, q: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.extend_from_slice(q);
        if self.space.kind == Kind::Cos {
            let inv = crate::vector::inv_norm(q);
            out.iter_mut().for_each(|x| *x *= inv);
        }
    }

    /// The reported distance of a kept candidate (see the module docs); a row it needs
    /// is read as [`HnswIndex::score_read`] reads it.
    #[inline]
    fn finish(&self, q: &[f32], score: f32, slot: u32, buf: &mut Vec<f32>) -> f32 {
        match self.space.kind {
            Kind::L2 if score.is_finite() => score.sqrt(),
            Kind::Ip | Kind::Direct | Kind::Other => score,
            Kind::L2 | Kind::Cos => match &self.file_rows {
                Some(f) if f.read(slot, buf) => self.metric.distance_unchecked(q, buf),
                _ => self.metric.distance_unchecked(q, self.row(slot)),
            },
        }
    }

    /// Cosine and angular: the score `s` of a kept candidate at `slot` (a chord below
    /// [`crate::metric::NEAR_CHORD`]) from the float64 gap to the original query `q`;
    /// a row read as [`HnswIndex::finish`] reads it.
    fn near_score(&self, q: &[f32], s: f32, slot: u32, buf: &mut Vec<f32>) -> f32 {
        match &self.file_rows {
            Some(f) if f.read(slot, buf) => near_chord(s, q, buf),
            _ => near_chord(s, q, self.row(slot)),
        }
    }

    /// Searches read the seal's rows from its files from now on (`vectors="disk"`).
    pub(crate) fn read_rows_from(&mut self, rows: file_rows::FileRows) {
        self.file_rows = Some(rows);
    }

    /// Grows every per-slot array so `slot` fits, in steps of [`GROW_SLOTS`]. Not by
    /// doubling: the arrays' own capacity grows geometrically (amortised), and growing
    /// the lengths only as far as needed zeroes only the new slots' entries — doubling
    /// a 1M-slot graph zeroed 130 MB at once, under the exclusive lock of the write
    /// that needed one more slot, and kept it resident.
    fn ensure_slot(&mut self, slot: usize) {
        if slot < self.cap {
            return;
        }
        let target = (slot + 1).next_multiple_of(GROW_SLOTS);
        self.rows.resize(target.saturating_mul(self.dim));
        if self.space.kind == Kind::Cos {
            self.inv_norm.resize(target, 0.0);
        }
        self.state.resize(target, EMPTY);
        if let Some(c) = &mut self.codes {
            c.grow(target);
        }
        self.graph.grow(target);
        self.cap = target;
    }

    /// Writes `v` into the row of `slot` (which fits) and its inverse norm.
    fn write_row(&mut self, slot: u32, v: &[f32]) {
        let s = slot as usize;
        let changed = self.changed_from.get_mut();
        *changed = (*changed).min(s);
        if let Some(f) = &mut self.file_rows {
            f.changed(s);
        }
        let d = self.dim;
        let row = &mut self.data_mut()[s * d..(s + 1) * d];
        let n = v.len().min(d);
        row[..n].copy_from_slice(&v[..n]);
        row[n..].fill(0.0);
        if self.space.kind == Kind::Cos {
            // In f64: ‖x‖² under- or overflows f32 long before ‖x‖ does.
            self.inv_norm[s] = crate::vector::inv_norm(self.row(slot));
        }
        if let Some(mut c) = self.codes.take() {
            let mut buf = Vec::new();
            c.encode(slot, self.coded_row(slot, &mut buf));
            self.codes = Some(c);
        }
    }

    /// The row of `slot` as it is coded: normalised for cosine and angular (whose
    /// scores are euclidean on the normalised rows), as stored otherwise. `buf` holds
    /// the normalised copy.
    fn coded_row<'b>(&'b self, slot: u32, buf: &'b mut Vec<f32>) -> &'b [f32] {
        let row = self.row(slot);
        if self.space.kind != Kind::Cos {
            return row;
        }
        let inv = self.inv_norm.get(slot as usize).copied().unwrap_or(0.0);
        buf.clear();
        buf.extend(row.iter().map(|&x| x * inv));
        buf
    }

    /// Re-centres the codes on the mean of the stored rows and re-codes them all, when
    /// their number has doubled since the last time (see `quant.rs`).
    fn maybe_recentre(&mut self) {
        let n = (self.live + self.tombstones) as u64;
        let Some(mut c) = self.codes.take() else {
            return;
        };
        if c.wants_recentre(n) {
            *self.changed_from.get_mut() = 0;
            let stored = |s: &usize| self.state.get(*s).is_some_and(|&st| st != EMPTY);
            let mut buf = Vec::new();
            c.recentre_start(n);
            for s in (0..self.end).filter(|s| stored(s)) {
                c.recentre_add(self.coded_row(s as u32, &mut buf));
            }
            c.recentre_finish(n);
            c.encode_all(
                self.end,
                |s| stored(&s),
                |s, buf, code| code(self.coded_row(s as u32, buf)),
            );
        }
        self.codes = Some(c);
    }

    /// Forgets every node (after the last live vector went); capacity is kept.
    fn reset_graph(&mut self) {
        if let Some(c) = &mut self.codes {
            c.forget_centre();
        }
        self.graph.clear();
        self.state.fill(EMPTY);
        self.live = 0;
        self.tombstones = 0;
        self.pending = 0;
        self.unlinked.clear();
        self.end = 0;
        self.set_entry(None);
    }
}

impl VectorIndex for HnswIndex {
    fn insert_many(&mut self, items: &[(u32, &[f32])]) {
        self.build_parallel(items);
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> DistanceMetric {
        self.metric
    }

    fn len(&self) -> usize {
        self.live
    }

    fn insert(&mut self, slot: u32, v: &[f32]) {
        self.insert_one(slot, v);
    }

    fn remove(&mut self, slot: u32) {
        self.remove_one(slot);
    }

    fn remove_many(&mut self, slots: &[u32]) {
        self.remove_batch(slots);
    }

    fn retire(&mut self, slots: &[u32]) -> Option<RoaringBitmap> {
        self.retire_batch(slots)
    }

    fn repair_retired(&self, retired: &RoaringBitmap) {
        HnswIndex::repair_retired(self, retired);
    }

    fn stages(&self) -> bool {
        true
    }

    fn stage(&mut self, items: &[(u32, &[f32])]) {
        self.stage_batch(items);
    }

    fn link_staged(&self, slots: &[u32]) {
        self.link_all(slots);
    }

    fn publish(&mut self, slots: &[u32]) {
        self.publish_staged(slots);
    }

    fn publish_unlinked(&mut self, slots: &[u32]) {
        HnswIndex::publish_unlinked(self, slots);
    }

    fn unlinked(&self) -> usize {
        self.unlinked.len()
    }

    fn link_unlinked(&self) {
        self.link_all(&self.unlinked);
    }

    fn publish_linked(&mut self) {
        HnswIndex::publish_linked(self);
    }

    fn abandon(&mut self, slots: &[u32]) {
        HnswIndex::abandon(self, slots);
    }

    fn get(&self, slot: u32) -> Option<&[f32]> {
        matches!(self.state.get(slot as usize), Some(&LIVE) | Some(&UNLINKED))
            .then(|| self.row(slot))
    }

    fn slot_row(&self, slot: u32) -> Option<&[f32]> {
        let s = slot as usize;
        self.data().get(s * self.dim..(s + 1) * self.dim)
    }

    fn search(
        &self,
        q: &[f32],
        k: usize,
        allow: Option<&RoaringBitmap>,
        p: &SearchParams,
    ) -> Vec<(u32, f32)> {
        self.search_one(q, k, allow, p)
    }

    fn walks_on_codes(&self) -> bool {
        self.quantized_search()
    }

    fn batch_search(
        &self,
        qs: &[f32],
        k: usize,
        allow: Option<&RoaringBitmap>,
        p: &SearchParams,
    ) -> Vec<Vec<(u32, f32)>> {
        use rayon::prelude::*;
        if self.dim == 0 {
            return Vec::new();
        }
        let nq = qs.len() / self.dim;
        qs[..nq * self.dim]
            .par_chunks_exact(self.dim)
            .map(|q| self.search_one(q, k, allow, p))
            .collect()
    }

    fn as_hnsw(&self) -> Option<&HnswIndex> {
        Some(self)
    }

    fn memory_bytes(&self) -> usize {
        self.memory_parts().iter().map(|p| p.1).sum()
    }

    fn mapped_bytes(&self) -> usize {
        self.rows.mapped_bytes() + self.codes.as_ref().map_or(0, quant::Codes::mapped_bytes)
    }

    fn mapped_ranges(&self) -> Vec<(usize, usize)> {
        let codes = self.codes.as_ref().and_then(|c| c.bytes.mapped_range());
        self.rows.mapped_range().into_iter().chain(codes).collect()
    }

    fn memory_parts(&self) -> Vec<(&'static str, usize)> {
        vec![
            (
                "vectors",
                std::mem::size_of::<Self>()
                    + self.rows.capacity_bytes()
                    + self.inv_norm.capacity() * 4
                    + self.state.capacity(),
            ),
            ("graph", self.graph.memory_bytes()),
            (
                "codes",
                self.codes.as_ref().map_or(0, quant::Codes::memory_bytes),
            ),
            ("scratch", self.pool.memory_bytes()),
        ]
    }
}
