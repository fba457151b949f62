//! Vector indexes: in-memory structures that answer k-nearest-neighbour queries over
//! vectors addressed by *slot*.
//!
//! A slot is a dense `u32` handed out by the database's id map (and reused after a
//! removal); an index stores vectors at the slots it is given and never invents slots.
//! The database validates every vector (dimension, finiteness, a norm in the range
//! float32 can score, non-negativity for Jaccard) before it reaches an index, so indexes do no validation of their own; given
//! wrong input anyway they return wrong or empty answers, never panic.
//!
//! - [`VectorIndex`]: the interface the database calls, the same for every index kind.
//! - [`flat::FlatIndex`]: exact search by a full scan, the reference the approximate
//!   indexes are measured against.
//! - [`hnsw::HnswIndex`]: the HNSW graph, approximate search.
//! - [`ivf::IvfIndex`]: rows in k-means lists, approximate search over the nearest lists.
//! - `rows::Rows`: the aligned float buffer the indexes keep their vectors in, over a
//!   `region::Region` (heap memory, or a seal's file mapped in place).
//! - [`topk::TopK`]: the bounded "k best so far" collector every index shares.
//! - `kmeans`: k-means centroids of a sample of rows (RaBitQ codes rows against them,
//!   IVF lists are theirs).
//!
//! Search semantics (SPEC §1): results are the `min(k, matches)` nearest eligible slots,
//! nearest first, as `(slot, distance)` with the metric's true distance (exactly
//! [`DistanceMetric::distance_unchecked`] of the query and the stored vector); ties in
//! distance go to the smaller slot among the candidates kept. Candidates are chosen on
//! a ranking score rounded differently from the reported distance (see each index), so
//! rows whose reported distances tie exactly at the k-th place may be chosen either way. Removed slots are never returned. No allocation is
//! proportional to `k`, which may be arbitrarily large.

pub mod flat;
pub mod hnsw;
pub mod ivf;
pub(crate) mod kmeans;
pub(crate) mod region;
pub(crate) mod rotation;
mod rows;
pub mod topk;

use roaring::RoaringBitmap;

use crate::metric::DistanceMetric;

pub use flat::FlatIndex;
pub use ivf::IvfIndex;
pub(crate) use rows::Rows;
pub use topk::TopK;

/// Parameters of one search.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SearchParams {
    /// The HNSW candidate-list size for this search (`None`: the index's default).
    /// Exact indexes ignore it.
    pub ef_search: Option<usize>,
    /// Whether an HNSW index walks its graph on its codes (`None`: as the index is set,
    /// which is on whenever it keeps codes) or, `Some(false)`, on the full rows for
    /// this search. `Some(true)` is refused by the database where there are no codes.
    pub quantized: Option<bool>,
    /// The lists an IVF index probes for this search (`None`: the index's default).
    /// The database refuses it for the other index types.
    pub nprobe: Option<usize>,
    /// An IVF search also scans the lists whose coarse score is within this of the
    /// nearest list's (`ivf/probe.rs`): a finer knob than `nprobe`, which a recall target
    /// sets where one more list would overshoot it. `None`: `nprobe` alone. The database
    /// refuses it for the other index types, and unless finite and ≥ 0.
    pub probe_reach: Option<f32>,
    /// A recall@k target in (0, 1] instead of `ef_search` or `nprobe`: the database
    /// sets the knob its calibration says reaches it (`db/calibration`). Indexes
    /// never see it.
    pub recall: Option<f32>,
}

impl SearchParams {
    /// Only an `ef_search`.
    pub const fn ef(ef_search: Option<usize>) -> Self {
        Self {
            ef_search,
            quantized: None,
            nprobe: None,
            probe_reach: None,
            recall: None,
        }
    }
}

/// An `ef_search` alone is a search's parameters (so `db.search(q, k, None, Some(64))`
/// reads as it always did).
impl From<Option<usize>> for SearchParams {
    fn from(ef_search: Option<usize>) -> Self {
        Self::ef(ef_search)
    }
}

/// An index over vectors addressed by slot (u32). Slots are assigned by the caller (the
/// database's id map: dense, reused after removal); the index never invents them.
pub trait VectorIndex: Send + Sync {
    /// The dimension of every vector stored and every query.
    fn dim(&self) -> usize;

    /// The metric distances are measured in.
    fn metric(&self) -> DistanceMetric;

    /// Live vectors.
    fn len(&self) -> usize;

    /// No live vector.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores `v` (already validated: right dim, finite) at `slot`, replacing any vector
    /// there.
    fn insert(&mut self, slot: u32, v: &[f32]);

    /// Stores many `(slot, vector)` pairs, as [`VectorIndex::insert`] would one by
    /// one; indexes that can build in parallel override it (HNSW does).
    fn insert_many(&mut self, items: &[(u32, &[f32])]) {
        for &(slot, v) in items {
            self.insert(slot, v);
        }
    }

    /// Opens a write whose rows arrive in several [`VectorIndex::insert_many`] calls
    /// (the database indexes a large batch in pieces, for progress and interruption):
    /// upkeep an index does per call — IVF's training — waits for
    /// [`VectorIndex::end_batch`], so it is done once for the whole write.
    fn begin_batch(&mut self) {}

    /// Closes what [`VectorIndex::begin_batch`] opened, doing the upkeep it held back.
    fn end_batch(&mut self) {}

    /// Removes the vector at `slot`; a no-op if there is none.
    fn remove(&mut self, slot: u32);

    /// Removes the vectors at `slots`, as [`VectorIndex::remove`] would one by one;
    /// HNSW overrides it to repair the graph once for the whole batch.
    fn remove_many(&mut self, slots: &[u32]) {
        for &slot in slots {
            self.remove(slot);
        }
    }

    /// Removes the vectors at `slots` in two steps: this one, under exclusive access,
    /// makes searches stop returning them at once; what it returns (if anything) goes
    /// to [`VectorIndex::repair_retired`], under shared access, which does the costly
    /// rest with searches going on. The default removes them here ([`VectorIndex::remove_many`]).
    fn retire(&mut self, slots: &[u32]) -> Option<RoaringBitmap> {
        self.remove_many(slots);
        None
    }

    /// The second step of [`VectorIndex::retire`].
    fn repair_retired(&self, _retired: &RoaringBitmap) {}

    /// Whether this index links new rows in three steps — [`VectorIndex::stage`]
    /// (exclusive access), [`VectorIndex::link_staged`] (shared access: searches run
    /// meanwhile and never return a staged row), [`VectorIndex::publish`] (exclusive) —
    /// so a database can let searches go on during a bulk write's graph work. Indexes
    /// whose insertion is cheap insert under exclusive access instead.
    fn stages(&self) -> bool {
        false
    }

    /// Stores new rows at fresh, distinct slots, not yet visible to searches.
    fn stage(&mut self, _items: &[(u32, &[f32])]) {}

    /// Does the costly part of indexing the staged `slots` under shared access.
    fn link_staged(&self, _slots: &[u32]) {}

    /// Makes the staged `slots` visible to searches. [`VectorIndex::abandon`] takes
    /// them back instead.
    fn publish(&mut self, _slots: &[u32]) {}

    /// Makes the staged `slots` visible to searches before they are linked (exclusive
    /// access; indexes that do not stage publish them as [`VectorIndex::publish`]
    /// does): every search scores them directly until [`VectorIndex::link_unlinked`]
    /// (shared access) and [`VectorIndex::publish_linked`] (exclusive) make them graph
    /// nodes. Searches are exact over them, so the cost per search grows with their
    /// number: for a few thousand rows at most.
    fn publish_unlinked(&mut self, slots: &[u32]) {
        self.publish(slots);
    }

    /// Rows published by [`VectorIndex::publish_unlinked`] and not linked since.
    fn unlinked(&self) -> usize {
        0
    }

    /// Links the unlinked rows (shared access: searches go on).
    fn link_unlinked(&self) {}

    /// Makes the rows linked by [`VectorIndex::link_unlinked`] ordinary graph nodes.
    fn publish_linked(&mut self) {}

    /// The smallest batch of queries [`VectorIndex::batch_search`] runs at full speed
    /// (a caller splitting a batch keeps its pieces at least this large).
    fn batch_granularity(&self) -> usize {
        16
    }

    /// Takes back rows just inserted (or staged) into empty slots that must not stay
    /// (a write stopped or failed after indexing them): afterwards every search behaves
    /// as if they had been removed. The default removes them; HNSW does it without
    /// repairing their neighbours (see [`hnsw::HnswIndex::abandon`]).
    fn abandon(&mut self, slots: &[u32]) {
        for &s in slots {
            self.remove(s);
        }
    }

    /// The vector stored at `slot`, if any.
    fn get(&self, slot: u32) -> Option<&[f32]>;

    /// The row buffer's `dim` floats at `slot` whatever the slot holds (a live
    /// vector, a removed one HNSW still routes through, or zeros or a stale row for an
    /// empty slot); `None` past the buffer. What a seal's vector file stores by slot.
    fn slot_row(&self, slot: u32) -> Option<&[f32]>;

    /// The `min(k, matches)` nearest live slots to `q`, nearest first, as
    /// `(slot, distance)` with the metric's true distance (euclidean = L2 not squared,
    /// etc., exactly as [`DistanceMetric::distance_unchecked`]). `allow`: if `Some`, only
    /// these slots are eligible. `k = 0` or a query of the wrong dimension gives nothing.
    fn search(
        &self,
        q: &[f32],
        k: usize,
        allow: Option<&RoaringBitmap>,
        p: &SearchParams,
    ) -> Vec<(u32, f32)>;

    /// Many queries (row-major, `n = qs.len() / dim`; a trailing partial row is
    /// ignored), parallel over queries with rayon. Entry `i` answers query `i` as
    /// [`VectorIndex::search`] would.
    fn batch_search(
        &self,
        qs: &[f32],
        k: usize,
        allow: Option<&RoaringBitmap>,
        p: &SearchParams,
    ) -> Vec<Vec<(u32, f32)>>;

    /// Heap bytes held by the index (an estimate: allocated capacity, not just use).
    fn memory_bytes(&self) -> usize;

    /// Whether searches can walk on codes ([`SearchParams::quantized`]).
    fn walks_on_codes(&self) -> bool {
        false
    }

    /// Bytes of seal files mapped in place of heap memory (rows, codes): their pages
    /// are the page cache's, counted in a process's RSS only once touched.
    fn mapped_bytes(&self) -> usize {
        0
    }

    /// The address ranges of those mappings (for the resident bytes in them).
    fn mapped_ranges(&self) -> Vec<(usize, usize)> {
        Vec::new()
    }

    /// [`VectorIndex::memory_bytes`] by part, as `(part, bytes)` pairs that sum to it:
    /// `"vectors"` (the rows and what is kept per row beside them), and for indexes
    /// that have them `"graph"`, `"codes"` and `"scratch"` (search buffers); anything
    /// else counts as `"index"`.
    fn memory_parts(&self) -> Vec<(&'static str, usize)> {
        vec![("index", self.memory_bytes())]
    }

    /// The HNSW index behind this trait object, if it is one: the database saves its
    /// graph, which (unlike a flat index) is costly to rebuild from the vectors.
    fn as_hnsw(&self) -> Option<&hnsw::HnswIndex> {
        None
    }

    /// The IVF index behind this trait object, if it is one: the database saves its
    /// lists, which would otherwise be trained again at each open.
    fn as_ivf(&self) -> Option<&ivf::IvfIndex> {
        None
    }

    /// [`VectorIndex::as_ivf`], to change it (a seal hands it its rows' new file).
    fn as_ivf_mut(&mut self) -> Option<&mut ivf::IvfIndex> {
        None
    }
}
