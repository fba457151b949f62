//! The IVF index (inverted file): the rows are partitioned into lists by k-means
//! centroids; a search ranks the centroids against the query, scans the rows of the
//! `nprobe` best lists — exactly, or with `quantization="rabitq"` (or `"binary"`) on
//! their 1-bit codes (`codes.rs`), scoring exactly only the rows whose estimate's bound
//! could enter the top `k` — and returns the best `k` of them.
//!
//! # Training
//! Below [`MIN_TRAIN_ROWS`] live rows (or `nlist`, if larger) there are no lists and a
//! search scans every row (exact, and at that size as fast as lists would be); removals
//! that bring an index below it drop its lists. From then on the centroids are trained
//! again, and every live row re-assigned, whenever the rows added, replaced or removed
//! since the last training reach the live count that training saw: lists follow the
//! data as it grows (each doubling), shrinks or churns (half the rows replaced), and
//! each change costs O(1) assignments amortised. The count of changes is saved with the
//! lists. A training takes `nlist` centroids (the configured number, or `⌊√n⌋` for `n`
//! live rows, at most [`MAX_NLIST`]) by k-means (`kmeans.rs`: k-means++ seeding,
//! [`TRAIN_ITERS`] Lloyd iterations) on a uniform sample of [`SAMPLE_PER_LIST`] live rows
//! per list (seeded by the row count: deterministic for the same rows; every
//! `n/sample`-th slot instead missed whole clusters of rows stored in a repeating
//! order). One `insert_many` trains at most once, after all its rows are stored, and a
//! write the database indexes in pieces (a large `bulk_add`, for progress and Ctrl-C)
//! once at its end (`begin_batch`/`end_batch`). Between trainings a
//! new row joins the list of its nearest centroid.
//!
//! # Geometry
//! - Euclidean and the metrics without a geometry of their own (manhattan, chebyshev,
//!   hamming, jaccard): lists by squared euclidean distance to the centroids, probed in
//!   the order of `‖q − c‖²`. For the other metrics that order is a heuristic (the
//!   exact scan of the probed lists still reports their own distance); `nprobe`
//!   trades speed for recall as usual.
//! - Cosine and angular: rows and query normalised first (spherical k-means), so the
//!   order `‖q̂ − c‖²` follows the angle.
//! - Inner product: lists by euclidean distance, probed in the order of `q·c`, largest
//!   first: the inner product of the query with the list's mean row. (Probing by the
//!   bound `q·c + ‖q‖·r`, `r` the list's largest `‖x − c‖`, is safe but was too
//!   pessimistic to be useful: on 40 clusters of 16-d rows, recall@10 0.85 at 16 of 63
//!   lists, where `q·c` has 0.99.)
//!
//! # Search
//! The rows of the probed lists (only the allowed ones under a filter) are read in
//! list order and scored exactly as the flat index's single-query scan scores them (with
//! codes: those the codes' bound lets through, in the order of their bounds), so
//! returned distances are the metric's own, as every index reports them. Under a filter
//! a list counts towards `nprobe` only if it held allowed rows (with a filter that follows the clusters the
//! lists nearest the query may hold none), and lists past `nprobe` are probed while
//! fewer than `k` candidates were gathered; with a reach (`SearchParams::probe_reach`,
//! which recall targets set) also while a list's coarse score is within the reach of
//! the nearest list's (`probe.rs`). A filter that allows no more rows than
//! `nprobe` lists hold on average is answered by the exact scan of the allowed rows
//! instead: cheaper, and exact. `nprobe ≥ nlist` probes every list: the exact answer.
//!
//! # Persistence
//! A seal writes the centroids, each live row's list and, with codes, each row's code
//! (`file.rs`); an open restores them with the rows instead of training and coding
//! again (codes made with another rotation or bound are made again). Without a usable
//! file (none, damaged, an encrypted database, which writes no segment files) the open
//! trains as a bulk insert does. With `vectors="disk"` the rows stay in the seal's vector file and the
//! lists keep their locations (`rows.rs`, [`IvfIndex::on_disk`]).

mod codes;
pub mod file;
pub mod probe;
mod rows;

use rayon::prelude::*;
use roaring::RoaringBitmap;

use super::rotation::Rotation;
use super::topk::sort_results;
use super::{kmeans, SearchParams, TopK, VectorIndex};
use crate::config::Quantization;
use crate::distance::kernels;
use crate::metric::{unit_chord, DistanceMetric};
use crate::rng::SplitMix64;
use crate::segment::vectors::VectorFile;
use probe::{ProbedList, Probes};
use rows::DiskRows;

/// Fewest live rows lists are trained on; below, every search scans every row.
pub const MIN_TRAIN_ROWS: usize = 1024;
/// Most lists an index has (configured or automatic).
pub const MAX_NLIST: usize = 65_536;
/// Rows sampled per list to train the centroids on.
pub const SAMPLE_PER_LIST: usize = 64;
/// Lloyd iterations of a training.
pub const TRAIN_ITERS: usize = 10;
/// Seed of the training (the live row count is mixed in).
const TRAIN_SEED: u64 = 0x4956_465f_6c69_7374;
/// `place` of a slot in no list.
const NO_LIST: u32 = u32::MAX;

/// The lists trained for `rows` live rows when none is configured: `⌊√rows⌋`, at least 1,
/// at most [`MAX_NLIST`].
pub fn auto_nlist(rows: usize) -> usize {
    rows.isqrt().clamp(1, MAX_NLIST)
}

/// The lists a search probes when neither the call nor the config says: a sixteenth of
/// the lists, at least 8 (all of them when there are fewer).
pub fn auto_nprobe(nlist: usize) -> usize {
    nlist.div_ceil(16).max(8).min(nlist.max(1))
}

/// Whether `lists` can hold `rows` live rows of `dim` floats (lists, a centroid each).
fn lists_fit(lists: &file::Lists, dim: usize, rows: usize) -> bool {
    let count = lists.centroids.len() / dim.max(1);
    count > 0 && lists.of_row.len() == rows && lists.centroids.len() == count * dim
}

/// How rows are assigned to lists and lists ranked for a query (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coarse {
    /// Squared euclidean on the rows as they are.
    L2,
    /// Squared euclidean on the normalised rows.
    Cos,
    /// Euclidean lists, probed by the inner product with the centroids.
    Ip,
}

impl Coarse {
    fn of(metric: DistanceMetric) -> Self {
        match metric {
            DistanceMetric::Cosine | DistanceMetric::Angular => Coarse::Cos,
            DistanceMetric::InnerProduct => Coarse::Ip,
            _ => Coarse::L2,
        }
    }
}

/// How a scan ranks a row, and how a kept score becomes the reported distance: the
/// flat index's single-query scan, so every reported distance is exactly
/// [`DistanceMetric::distance_unchecked`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Score {
    /// Euclidean: the kernel's squared distance; reported as its square root.
    L2,
    /// Inner product: `−q·x`, the distance itself.
    Ip,
    /// Cosine and angular: `‖q̂ − x/‖x‖‖² = 2 − 2 cos` (with the row's 1/‖x‖ kept),
    /// from the float64 gap for rows nearly parallel to the query
    /// ([`crate::metric::unit_chord`]); reported as recomputed.
    Cos,
    /// The other metrics: the distance itself.
    Other,
}

/// Each list's row locations in a seal's file ([`IvfIndex::relocation`]).
#[derive(Debug)]
pub struct Relocation {
    locs: Vec<Vec<u32>>,
}

/// What [`IvfIndex::adopt_rows`] replaced (the lists' rows and locations, the previous
/// file): freed when dropped.
#[derive(Debug)]
pub struct RetiredRows {
    _lists: Vec<(Vec<f32>, Vec<u32>)>,
    _disk: Option<DiskRows>,
}

/// A query as the scans take it.
#[derive(Clone, Copy)]
struct Query<'a> {
    /// Normalised for cosine and angular ([`Score::Cos`]); else as given.
    q: &'a [f32],
    /// As given.
    original: &'a [f32],
    /// Cosine and angular: whether it is the zero vector.
    zero: bool,
}

/// One list: its slots and their rows side by side, so a probe reads them in order
/// (rows scattered over the whole buffer by slot made a probe 1.5–2.7× slower).
#[derive(Clone, Debug, Default)]
struct List {
    slots: Vec<u32>,
    /// `dim` floats per slot, in the order of `slots` (empty with `vectors="disk"`).
    rows: Vec<f32>,
    /// With `vectors="disk"`: where each slot's row is (`rows.rs`); else empty.
    locs: Vec<u32>,
    /// Cosine and angular: 1/‖x‖ per slot (0 for a zero row); empty otherwise.
    inv: Vec<f32>,
    /// `quantization="rabitq"` or `"binary"`: the codes of the first `codes.len()` rows.
    codes: codes::ListCodes,
}

impl List {
    fn bytes(&self) -> usize {
        (self.slots.capacity() + self.rows.capacity() + self.inv.capacity() + self.locs.capacity())
            * 4
    }

    /// Gives back the capacity beyond what the list holds (after an open or a training
    /// built it whole: doubling growth left up to twice the bytes).
    fn shrink(&mut self) {
        self.slots.shrink_to_fit();
        self.rows.shrink_to_fit();
        self.inv.shrink_to_fit();
        self.locs.shrink_to_fit();
        self.codes.shrink();
    }

    /// Codes the rows pushed since the last call against `centroid` (coarse space);
    /// `disk`: where the rows are, with `vectors="disk"`.
    fn code(&mut self, rot: &Rotation, centroid: &[f32], dim: usize, disk: Option<&DiskRows>) {
        let done = self.codes.len();
        if done >= self.slots.len() {
            return;
        }
        let gathered;
        let rows = match disk {
            Some(d) => {
                gathered = d.gather(&self.locs[done..]);
                &gathered[..]
            }
            None => &self.rows[done * dim..],
        };
        if self.inv.is_empty() {
            self.codes.code(rot, centroid, rows, dim);
        } else {
            // Cosine and angular: lists live on the unit sphere.
            let mut unit = Vec::with_capacity(rows.len());
            for (x, &inv) in rows.chunks_exact(dim.max(1)).zip(&self.inv[done..]) {
                unit.extend(x.iter().map(|&v| v * inv));
            }
            self.codes.code(rot, centroid, &unit, dim);
        }
    }
}

/// A search's buffers for coded lists.
#[derive(Default)]
struct Scratch {
    tables: codes::Tables,
    /// The rotated query (minus the list's centroid).
    z: Vec<f32>,
    /// The rotated query (`R·q`, all but inner product).
    zq: Vec<f32>,
    /// A list's rows whose bound passed: `(bound, slot, position)`.
    passed: Vec<(f32, u32, u32)>,
    /// A row read from the file (`vectors="disk"`).
    row: Vec<f32>,
}

/// The IVF index. See the module docs.
pub struct IvfIndex {
    dim: usize,
    metric: DistanceMetric,
    coarse: Coarse,
    score: Score,
    /// Configured list count (`None`: [`auto_nlist`] at each training).
    nlist: Option<usize>,
    /// Configured default `nprobe` (`None`: [`auto_nprobe`]).
    nprobe: Option<usize>,
    /// `dim` floats per list (in the coarse space); empty before the first training,
    /// when every row is in the one list there is.
    centroids: Vec<f32>,
    lists: Vec<List>,
    /// Per slot: its list and its position there (`NO_LIST` for none).
    place: Vec<(u32, u32)>,
    /// Live rows.
    len: usize,
    /// Live rows at the last training (0: never trained).
    trained_at: usize,
    /// Rows added, replaced or removed since the last training.
    changed: usize,
    /// Inside [`VectorIndex::begin_batch`] … [`VectorIndex::end_batch`]: trainings wait
    /// for the end.
    batch: bool,
    /// `quantization="rabitq"` or `"binary"`: the rotation the lists' rows are coded
    /// with (`codes.rs`).
    rotation: Option<Rotation>,
    /// `R·c` for every centroid (`P` floats each) when the rows are coded and the
    /// tables are per list (all but inner product): a search's `R·(q − c)` is then
    /// `R·q − R·c`, one rotation per query instead of one per probed list.
    rotated: Vec<f32>,
    /// `vectors="disk"`: the rows stay in the seal's file (`rows.rs`).
    disk: Option<DiskRows>,
}

impl std::fmt::Debug for IvfIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IvfIndex")
            .field("len", &self.len)
            .field("lists", &self.nlist())
            .field("trained_at", &self.trained_at)
            .finish()
    }
}

impl IvfIndex {
    /// An empty index; `nlist` and `nprobe` as configured (`None`: automatic).
    /// `capacity_hint`: slots to reserve the slot map for.
    pub fn new(
        dim: usize,
        metric: DistanceMetric,
        nlist: Option<usize>,
        nprobe: Option<usize>,
        capacity_hint: usize,
    ) -> Self {
        let mut place = Vec::new();
        // A hint is only a hint: a reservation that fails is skipped.
        let _ = place.try_reserve(capacity_hint.min(1 << 24));
        Self {
            dim,
            metric,
            coarse: Coarse::of(metric),
            score: match metric {
                DistanceMetric::Euclidean => Score::L2,
                DistanceMetric::InnerProduct => Score::Ip,
                DistanceMetric::Cosine | DistanceMetric::Angular => Score::Cos,
                _ => Score::Other,
            },
            nlist,
            nprobe,
            centroids: Vec::new(),
            lists: Vec::new(),
            place,
            len: 0,
            trained_at: 0,
            changed: 0,
            batch: false,
            rotation: None,
            rotated: Vec::new(),
            disk: None,
        }
    }

    /// The index with its lists' rows coded as 1-bit RaBitQ codes (`codes.rs`) when
    /// `quant` is `rabitq` or `binary` (which differ in the rotated dimension), for
    /// metrics with a geometry (euclidean, inner product, cosine, angular: the
    /// configuration refuses codes for the others). Called before any row arrives.
    #[must_use]
    pub fn with_codes(mut self, quant: Quantization) -> Self {
        self.rotation =
            (quant.one_bit() && self.score != Score::Other).then(|| Rotation::new(self.dim, quant));
        self
    }

    /// Whether the lists' rows are coded.
    pub fn coded(&self) -> bool {
        self.rotation.is_some()
    }

    /// Codes list `l`'s rows pushed since it was last coded (nothing before the first
    /// training: the one list is scanned exactly).
    fn code_list(&mut self, l: usize) {
        let Some(rot) = &self.rotation else { return };
        if !self.centroids.is_empty() {
            let d = self.dim;
            if let Some(list) = self.lists.get_mut(l) {
                list.code(
                    rot,
                    &self.centroids[l * d..(l + 1) * d],
                    d,
                    self.disk.as_ref(),
                );
            }
        }
    }

    /// Rotates the centroids for the searches (see `rotated`).
    fn rotate_centroids(&mut self) {
        self.rotated.clear();
        let Some(rot) = self.rotation.as_ref().filter(|_| self.score != Score::Ip) else {
            return;
        };
        let (d, p) = (self.dim.max(1), rot.padded());
        let mut rotated = vec![0f32; self.centroids.len() / d * p];
        rotated
            .par_chunks_exact_mut(p)
            .zip(self.centroids.par_chunks_exact(d))
            .for_each(|(out, c)| {
                let mut y = Vec::with_capacity(p);
                rot.apply(c, &[], &mut y);
                out.copy_from_slice(&y);
            });
        self.rotated = rotated;
    }

    /// Codes every list's rows pushed since it was last coded, lists in parallel.
    fn code_pending(&mut self) {
        let Some(rot) = &self.rotation else { return };
        if self.centroids.is_empty() {
            return;
        }
        let d = self.dim;
        let (centroids, disk) = (&self.centroids, self.disk.as_ref());
        self.lists
            .par_iter_mut()
            .enumerate()
            .for_each(|(l, list)| list.code(rot, &centroids[l * d..(l + 1) * d], d, disk));
    }

    /// Whether the index has trained lists (else every row is in one list).
    fn trained(&self) -> bool {
        !self.centroids.is_empty()
    }

    /// The number of lists (0 before the first training).
    pub fn nlist(&self) -> usize {
        if self.trained() {
            self.lists.len()
        } else {
            0
        }
    }

    /// The sizes of the lists (empty before the first training).
    pub fn list_sizes(&self) -> Vec<usize> {
        if self.trained() {
            self.lists.iter().map(|l| l.slots.len()).collect()
        } else {
            Vec::new()
        }
    }

    /// The lists as a seal's lists file holds them, for the live slots `live`
    /// (ascending); `None` before the first training.
    pub fn lists_of(&self, live: &[u32]) -> Option<file::Lists> {
        if !self.trained() {
            return None;
        }
        let of_row = live
            .iter()
            .map(|&s| self.place.get(s as usize).map_or(0, |p| p.0))
            .collect();
        Some(file::Lists {
            centroids: self.centroids.clone(),
            of_row,
            trained_at: self.trained_at as u64,
            changed: self.changed as u64,
            codes: self.row_codes(live),
        })
    }

    /// The codes of the live slots `live` in their order, for the lists file; `None`
    /// without codes or while some rows wait to be coded (inside a batch write).
    fn row_codes(&self, live: &[u32]) -> Option<file::RowCodes> {
        let rot = self.rotation.as_ref()?;
        if self.lists.iter().any(|l| l.codes.len() != l.slots.len()) {
            return None;
        }
        let (groups, n) = (rot.padded() / 4, rot.padded() / 8);
        let mut c = file::RowCodes {
            code_bytes: n,
            fingerprint: codes::fingerprint(rot),
            bits: Vec::with_capacity(live.len() * n),
            factors: Vec::with_capacity(live.len()),
            inv: Vec::with_capacity(live.len()),
        };
        let mut bits = Vec::new();
        for &s in live {
            let &(l, pos) = self.place.get(s as usize)?;
            let list = self.lists.get(l as usize)?;
            let pos = pos as usize;
            c.factors.push(list.codes.row(groups, pos, &mut bits));
            c.bits.extend_from_slice(&bits);
            c.inv.push(list.inv.get(pos).copied().unwrap_or(0.0));
        }
        Some(c)
    }

    /// Whether `c` holds codes this index makes, for `rows` rows.
    fn fits(&self, c: &file::RowCodes, rows: usize) -> bool {
        self.rotation.as_ref().is_some_and(|rot| {
            c.code_bytes == rot.padded() / 8
                && c.fingerprint == codes::fingerprint(rot)
                && c.factors.len() == rows
                && c.inv.len() == rows
                && c.bits.len() == rows * c.code_bytes
        })
    }

    /// Takes the saved codes `c` (fitting: [`IvfIndex::fits`]) of the rows of `live`,
    /// just pushed in that order, in place of coding them again.
    fn take_codes(&mut self, live: impl Iterator<Item = u32>, c: &file::RowCodes) {
        let groups = c.code_bytes * 2;
        for (i, s) in live.enumerate() {
            let Some(&(l, _)) = self.place.get(s as usize) else {
                continue;
            };
            if let Some(list) = self.lists.get_mut(l as usize) {
                let bits = &c.bits[i * c.code_bytes..(i + 1) * c.code_bytes];
                list.codes.push_coded(groups, bits, c.factors[i]);
            }
        }
    }

    /// An index over `items` (distinct live slots, ascending) with `lists` read from a
    /// lists file made for them; `None` when the file's lists do not fit the
    /// rows (every check of [`file::read`] passed, but not made for this index).
    /// Rows are coded under `quant` (see [`IvfIndex::with_codes`]).
    pub fn with_lists(
        dim: usize,
        metric: DistanceMetric,
        (nlist, nprobe, quant): (Option<usize>, Option<usize>, Quantization),
        items: &[(u32, &[f32])],
        lists: file::Lists,
    ) -> Option<Self> {
        if !lists_fit(&lists, dim, items.len()) || items.iter().any(|(_, v)| v.len() != dim) {
            return None;
        }
        let extent = items.last().map_or(0, |&(s, _)| s as usize + 1);
        let mut index = Self::new(dim, metric, nlist, nprobe, extent).with_codes(quant);
        let live: Vec<u32> = items.iter().map(|&(s, _)| s).collect();
        index.restore(lists, &live, |ix, i, slot, l| ix.push(l, slot, items[i].1));
        Some(index)
    }

    /// Takes the centroids, training counts and (when they fit) codes of `lists`
    /// ([`lists_fit`] for `live`), `push`ing row `i` — slot `live[i]`, in list
    /// `of_row[i]` — with `push(index, i, slot, list)`; codes the rows if the codes
    /// were not usable.
    fn restore(
        &mut self,
        lists: file::Lists,
        live: &[u32],
        mut push: impl FnMut(&mut Self, usize, u32, u32),
    ) {
        let count = lists.centroids.len() / self.dim.max(1);
        self.centroids = lists.centroids;
        self.lists = vec![List::default(); count];
        self.trained_at = usize::try_from(lists.trained_at).unwrap_or(usize::MAX);
        self.changed = usize::try_from(lists.changed).unwrap_or(usize::MAX);
        for (i, (&slot, &l)) in live.iter().zip(&lists.of_row).enumerate() {
            push(self, i, slot, l);
        }
        self.rotate_centroids();
        // Each list's rows were pushed in the file's order, which its codes follow
        // (with saved codes an open reads no row).
        match lists.codes.filter(|c| self.fits(c, live.len())) {
            Some(c) => self.take_codes(live.iter().copied(), &c),
            None => self.code_pending(),
        }
        self.lists.par_iter_mut().for_each(List::shrink);
    }

    /// An index with 1-bit codes under `quant` over the live rows of a seal's live-rows
    /// vector `file` (row `i` is the row of `live[i]`, ascending), the rows left in the
    /// file (`vectors="disk"`, or `"mmap"` when `mapped`: `rows.rs`); the lists from
    /// `lists` when they fit the rows, else trained as a bulk insert would. `None` when
    /// the file cannot be used so (its dimension, or more rows than a location holds)
    /// or `quant` makes no codes.
    pub fn on_disk(
        dim: usize,
        metric: DistanceMetric,
        (nlist, nprobe, quant): (Option<usize>, Option<usize>, Quantization),
        live: &[u32],
        (file, mapped): (VectorFile, bool),
        lists: Option<file::Lists>,
    ) -> Option<Self> {
        if file.len() != live.len() {
            return None;
        }
        let extent = live.last().map_or(0, |&s| s as usize + 1);
        if !quant.one_bit() {
            return None;
        }
        let mut index = Self::new(dim, metric, nlist, nprobe, extent).with_codes(quant);
        let disk = DiskRows::new(dim, file, mapped)?;
        let lists = lists.filter(|l| lists_fit(l, dim, live.len()));
        let saved = lists
            .as_ref()
            .and_then(|l| l.codes.as_ref())
            .filter(|c| index.fits(c, live.len()));
        // Cosine and angular keep 1/‖x‖ per row: saved with the codes, else read once
        // here (positioned reads).
        let inv: Vec<f32> = if let Some(c) = saved {
            c.inv.clone()
        } else if index.score == Score::Cos {
            let mut buf = Vec::new();
            (0..live.len())
                .map(|i| {
                    disk.read(DiskRows::file_row(i), &mut buf)
                        .map_or(0.0, crate::vector::inv_norm)
                })
                .collect()
        } else {
            vec![0.0; live.len()]
        };
        index.disk = Some(disk);
        match lists {
            Some(lists) => index.restore(lists, live, |ix, i, slot, l| {
                ix.push_loc(l, slot, DiskRows::file_row(i), inv[i]);
            }),
            None => {
                for (i, &slot) in live.iter().enumerate() {
                    index.push_loc(0, slot, DiskRows::file_row(i), inv[i]);
                }
                index.changed = live.len();
                if index.wants_training() {
                    index.train();
                }
            }
        }
        Some(index)
    }

    /// With `vectors="disk"`: the path of the live-rows vector file the rows are read
    /// from (`None` with the rows in memory).
    pub fn rows_file(&self) -> Option<&std::path::Path> {
        self.disk.as_ref().map(DiskRows::path)
    }

    /// Where each list's rows are in a seal's live-rows vector file whose row `i` is
    /// the row of `live[i]` (ascending): per list, per position, that file row — for
    /// [`IvfIndex::adopt_rows`], computed beforehand under a shared lock. `None` unless
    /// the index is coded and `live` holds exactly its rows' slots.
    pub fn relocation(&self, live: &[u32]) -> Option<Relocation> {
        if !self.coded() || live.len() != self.len {
            return None;
        }
        let extent = live.last().map_or(0, |&s| s as usize + 1);
        let mut row_of = vec![u32::MAX; extent];
        for (i, &slot) in live.iter().enumerate() {
            row_of[slot as usize] = DiskRows::file_row(i);
        }
        let mut locs = Vec::with_capacity(self.lists.len());
        for list in &self.lists {
            let at: Vec<u32> = list
                .slots
                .iter()
                .map(|&s| row_of.get(s as usize).copied().unwrap_or(u32::MAX))
                .collect();
            if at.contains(&u32::MAX) {
                return None;
            }
            locs.push(at);
        }
        Some(Relocation { locs })
    }

    /// Leaves the rows in a seal's live-rows vector `file` (`vectors="disk"`, or
    /// `"mmap"` when `mapped`, as [`IvfIndex::on_disk`] does at an open), each list
    /// keeping the locations `moved` gives ([`IvfIndex::relocation`] of the file's
    /// live slots, with no change to the index since): the rows it held in memory (an
    /// index built since it was created) or on the heap (written since the last seal)
    /// and the previous file (a seal has already removed it) are handed back, to be
    /// dropped outside any lock. O(lists). `None`, changing nothing, when `moved` or
    /// `file` does not fit the lists.
    pub fn adopt_rows(
        &mut self,
        moved: Relocation,
        (file, mapped): (VectorFile, bool),
    ) -> Option<RetiredRows> {
        let fits = moved.locs.len() == self.lists.len()
            && moved
                .locs
                .iter()
                .zip(&self.lists)
                .all(|(at, l)| at.len() == l.slots.len());
        if !fits || file.len() != self.len {
            return None;
        }
        let disk = DiskRows::new(self.dim, file, mapped)?;
        let mut old = Vec::with_capacity(self.lists.len());
        for (list, at) in self.lists.iter_mut().zip(moved.locs) {
            old.push((
                std::mem::take(&mut list.rows),
                std::mem::replace(&mut list.locs, at),
            ));
        }
        Some(RetiredRows {
            _lists: old,
            _disk: self.disk.replace(disk),
        })
    }

    /// Drops the pages of the seal's file that borrowed reads made resident (a seal
    /// copies every row through the mapping).
    pub fn release_pages(&self) {
        if let Some(d) = &self.disk {
            d.release_pages();
        }
    }

    /// The `nprobe` a search with `p` uses.
    pub fn nprobe_for(&self, p: &SearchParams) -> usize {
        p.nprobe
            .or(self.nprobe)
            .unwrap_or_else(|| auto_nprobe(self.nlist()))
    }

    /// For calibrating a recall target (`db/calibration`): what a search for `q` of `k`
    /// rows under `allow` (on the codes unless `quantized` is `Some(false)`) scans at any
    /// `nprobe` and reach — each list in probe order with the least `nprobe` that scans
    /// it, its gap to the nearest and its cost; the position of each of `slots`' lists;
    /// and the least `nprobe` from which the search scores every allowed row instead
    /// ([`VectorIndex::search`]'s path for few allowed rows). Follows the search's own
    /// rule (`probe.rs`).
    pub fn probes(
        &self,
        (q, k): (&[f32], usize),
        allow: Option<&RoaringBitmap>,
        quantized: Option<bool>,
        slots: &[u32],
    ) -> Probes {
        let coded = self.rotation.is_some() && quantized != Some(false);
        let nlist = self.nlist();
        let n = self.len.max(1) as u64;
        let every = allow.map_or((usize::MAX, 0), |a| {
            // `a ≤ ⌊n·p/nlist⌋` ⇔ `p ≥ a·nlist/n` (`a` an integer).
            let p = a.len().saturating_mul(nlist as u64).div_ceil(n).max(1);
            (
                usize::try_from(p).unwrap_or(usize::MAX),
                usize::try_from(a.len()).unwrap_or(usize::MAX),
            )
        });
        let mut lists = Vec::new();
        let mut position = vec![usize::MAX; self.lists.len()];
        if nlist > 0 {
            let mut walk = probe::Walk::new(usize::MAX, k, None, allow.is_some());
            let order = self.probe_order(q);
            let first = order.first().map_or(0.0, |o| o.0);
            for (i, &(score, l)) in order.iter().enumerate() {
                let list = &self.lists[l as usize];
                let held = match allow {
                    None => list.slots.len(),
                    Some(a) => list.slots.iter().filter(|&&s| a.contains(s)).count(),
                };
                lists.push(ProbedList {
                    need: walk.need(),
                    gap: probe::gap(score, first),
                    cost: if coded {
                        list.slots.len() as f64 * probe::coded_row_cost(self.dim)
                    } else {
                        held as f64
                    },
                });
                position[l as usize] = i;
                walk.scanned(held);
            }
        }
        let at = slots
            .iter()
            .map(|&s| {
                let l = self.place.get(s as usize).map_or(NO_LIST, |p| p.0);
                position.get(l as usize).copied().unwrap_or(usize::MAX)
            })
            .collect();
        Probes { lists, at, every }
    }

    /// `v` in the coarse space (normalised for cosine and angular).
    fn coarse_row(&self, v: &[f32]) -> Vec<f32> {
        match self.coarse {
            Coarse::Cos => {
                let inv = crate::vector::inv_norm(v);
                v.iter().map(|&x| x * inv).collect()
            }
            Coarse::L2 | Coarse::Ip => v.to_vec(),
        }
    }

    /// The lists of `rows` (`dim` floats each), as [`IvfIndex::assign`] finds them one
    /// by one, in batches through [`kmeans::assign`].
    fn assign_rows(&self, rows: &[f32]) -> Vec<u32> {
        const BATCH: usize = 8192;
        let dim = self.dim.max(1);
        let mut out = Vec::with_capacity(rows.len() / dim);
        let mut coarse = Vec::new();
        for batch in rows.chunks(BATCH * dim) {
            let batch = if self.coarse == Coarse::Cos {
                coarse.clear();
                for v in batch.chunks_exact(dim) {
                    coarse.extend(self.coarse_row(v));
                }
                &coarse[..]
            } else {
                batch
            };
            out.extend(kmeans::assign(&self.centroids, dim, batch));
        }
        out
    }

    /// The list a row belongs to (the one list before the first training).
    fn assign(&self, v: &[f32]) -> u32 {
        if !self.trained() {
            return 0;
        }
        let j = match self.coarse {
            Coarse::Cos => kmeans::nearest(&self.centroids, self.dim, &self.coarse_row(v)),
            Coarse::L2 | Coarse::Ip => kmeans::nearest(&self.centroids, self.dim, v),
        };
        j as u32
    }

    /// Appends `slot` with row `v` to `list` (creating the one list of an untrained
    /// index).
    fn push(&mut self, list: u32, slot: u32, v: &[f32]) {
        let dim = self.dim;
        let inv = (self.score == Score::Cos).then(|| crate::vector::inv_norm(v));
        let (l, disk) = self.push_slot(list, slot);
        match disk {
            Some(d) => l.locs.push(d.store(v)),
            None => {
                l.rows.extend_from_slice(&v[..dim.min(v.len())]);
                l.rows.resize(l.slots.len() * dim, 0.0);
            }
        }
        // (In f64: a row's ‖x‖² under- or overflows f32 long before ‖x‖ does.)
        l.inv.extend(inv);
    }

    /// Appends `slot` to `list` with its row at `loc` (`vectors="disk"`) and, for
    /// cosine and angular, its row's 1/‖x‖.
    fn push_loc(&mut self, list: u32, slot: u32, loc: u32, inv: f32) {
        let cos = self.score == Score::Cos;
        let (l, _) = self.push_slot(list, slot);
        l.locs.push(loc);
        if cos {
            l.inv.push(inv);
        }
    }

    /// Appends `slot` to `list`'s slots (creating the list if needed) and counts it;
    /// the list, for its row, and where rows on disk are kept.
    fn push_slot(&mut self, list: u32, slot: u32) -> (&mut List, Option<&mut DiskRows>) {
        let s = slot as usize;
        if self.place.len() <= s {
            self.place.resize(s + 1, (NO_LIST, 0));
        }
        if self.lists.len() <= list as usize {
            self.lists.resize(list as usize + 1, List::default());
        }
        self.len += 1;
        let l = &mut self.lists[list as usize];
        self.place[s] = (list, l.slots.len() as u32);
        l.slots.push(slot);
        (l, self.disk.as_mut())
    }

    /// Takes `slot` out of its list (the list's last row moves into its place);
    /// whether it was there.
    fn take(&mut self, slot: u32) -> bool {
        let Some(&(list, pos)) = self.place.get(slot as usize) else {
            return false;
        };
        if list == NO_LIST {
            return false;
        }
        // The codes move with the rows: code the list's rows not coded yet first.
        self.code_list(list as usize);
        let d = self.dim;
        let groups = self.rotation.as_ref().map_or(0, |r| r.padded() / 4);
        let l = &mut self.lists[list as usize];
        let (pos, last) = (pos as usize, l.slots.len() - 1);
        if l.codes.len() == l.slots.len() && l.codes.len() > 0 {
            l.codes.swap_remove(pos, groups);
        }
        if let (Some(d), Some(&loc)) = (self.disk.as_mut(), l.locs.get(pos)) {
            d.release(loc);
            l.locs.swap_remove(pos);
        }
        if pos != last {
            // (Empty with `vectors="disk"`: the locations moved above.)
            if !l.rows.is_empty() {
                l.rows.copy_within(last * d..(last + 1) * d, pos * d);
            }
            l.slots[pos] = l.slots[last];
            if !l.inv.is_empty() {
                l.inv[pos] = l.inv[last];
            }
            self.place[l.slots[pos] as usize].1 = pos as u32;
        }
        l.slots.truncate(last);
        l.rows.truncate(last * d);
        l.inv.truncate(l.inv.len().min(last));
        self.place[slot as usize] = (NO_LIST, 0);
        self.len -= 1;
        true
    }

    /// The fewest live rows an index has lists for.
    fn least_rows(&self) -> usize {
        MIN_TRAIN_ROWS.max(self.nlist.unwrap_or(0))
    }

    /// Whether the live rows call for a (new) training: the first once there are
    /// enough, then whenever the rows changed since the last one (added, replaced,
    /// removed) reach the row count it was trained on.
    fn wants_training(&self) -> bool {
        !self.batch
            && self.len >= self.least_rows()
            && (self.trained_at == 0 || self.changed >= self.trained_at)
    }

    /// After removals: below the training size the lists merge into one (every search
    /// scans every row again, exactly, as below it before); else a training if the
    /// changes call for one.
    fn after_removals(&mut self) {
        if self.len < self.least_rows() {
            if self.trained() {
                self.regroup(Vec::new(), |ix: &Self, rows: &[f32]| {
                    vec![0; rows.len() / ix.dim.max(1)]
                });
            }
            self.trained_at = 0;
            self.changed = 0;
        } else if self.wants_training() {
            self.train();
        }
    }

    /// Replaces the centroids with `centroids` and moves every row into the list
    /// `assign` gives it (called with the index and each old list's rows), one old list
    /// at a time, so at most one list's rows are held twice.
    fn regroup(&mut self, centroids: Vec<f32>, assign: impl Fn(&Self, &[f32]) -> Vec<u32>) {
        let count = (centroids.len() / self.dim.max(1)).max(1);
        let old = std::mem::replace(&mut self.lists, vec![List::default(); count]);
        self.centroids = centroids;
        self.rotate_centroids();
        self.len = 0;
        for list in old {
            if let Some(d) = &self.disk {
                // The rows stay where they are: only their locations move.
                let to = assign(self, &d.gather(&list.locs));
                for (i, (&slot, &l)) in list.slots.iter().zip(&to).enumerate() {
                    let inv = list.inv.get(i).copied().unwrap_or(0.0);
                    self.push_loc(l, slot, list.locs[i], inv);
                }
                continue;
            }
            let to = assign(self, &list.rows);
            for ((&slot, v), &l) in list
                .slots
                .iter()
                .zip(list.rows.chunks_exact(self.dim))
                .zip(&to)
            {
                self.push(l, slot, v);
            }
        }
        self.code_pending();
        self.lists.par_iter_mut().for_each(List::shrink);
    }

    /// Trains the centroids on a sample of the live rows and assigns every live row.
    fn train(&mut self) {
        let dim = self.dim;
        let mut live: Vec<u32> = self
            .lists
            .iter()
            .flat_map(|l| l.slots.iter().copied())
            .collect();
        live.sort_unstable();
        let n = live.len();
        let k = self.nlist.unwrap_or_else(|| auto_nlist(n)).min(MAX_NLIST);
        // A uniform sample without replacement (a partial Fisher–Yates shuffle of the
        // slots in ascending order, seeded by the row count): every `n/sample`-th slot
        // instead missed whole clusters of rows stored in a repeating order.
        let take = k.saturating_mul(SAMPLE_PER_LIST).min(n);
        let mut rng = SplitMix64::new(TRAIN_SEED ^ n as u64);
        for i in 0..take {
            let j = i + (rng.next_u64() % (n - i) as u64) as usize;
            live.swap(i, j);
        }
        live.truncate(take);
        live.sort_unstable();
        let mut sample = Vec::with_capacity(take * dim);
        let mut buf = Vec::new();
        for &s in &live {
            if let Some(v) = self.read_slot(s, &mut buf) {
                sample.extend_from_slice(&self.coarse_row(v));
            }
        }
        let centroids = kmeans::train(&sample, dim, k, TRAIN_ITERS, TRAIN_SEED ^ n as u64);
        drop(sample);
        self.regroup(centroids, Self::assign_rows);
        self.trained_at = self.len;
        self.changed = 0;
    }

    /// The lists in the order a search for `q` probes them (see the module docs), with
    /// their coarse scores (ascending).
    fn probe_order(&self, q: &[f32]) -> Vec<(f32, u32)> {
        let k = kernels();
        let mut scored: Vec<(f32, u32)> = match self.coarse {
            Coarse::L2 | Coarse::Cos => {
                let q = self.coarse_row(q);
                self.centroids
                    .chunks_exact(self.dim)
                    .enumerate()
                    .map(|(j, c)| ((k.l2_squared)(&q, c), j as u32))
                    .collect()
            }
            Coarse::Ip => self
                .centroids
                .chunks_exact(self.dim)
                .enumerate()
                .map(|(j, c)| (-(k.dot)(q, c), j as u32))
                .collect(),
        };
        scored.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        scored
    }

    /// The score of row `x` (1/‖x‖ = `inv`) for query `q`.
    #[inline]
    fn score_of(&self, q: Query<'_>, x: &[f32], inv: f32) -> f32 {
        let k = kernels();
        match self.score {
            Score::L2 => (k.l2_squared)(q.q, x),
            Score::Ip => -(k.dot)(q.q, x),
            // The zero query: cos = 0 with every row, an exact tie (the slot decides),
            // which rounding in ‖0 − x/‖x‖‖² would break at random; a zero row: cos 0.
            Score::Cos if q.zero => 1.0,
            Score::Cos if inv == 0.0 => 2.0,
            Score::Cos => unit_chord(q.q, q.original, x, inv),
            Score::Other => self.metric.distance_unchecked(q.q, x),
        }
    }

    /// Row `i` of `list`: in the list, or read from the seal's file into `buf`
    /// (`vectors="disk"`).
    #[inline]
    fn row_at<'a>(&'a self, list: &'a List, i: usize, buf: &'a mut Vec<f32>) -> Option<&'a [f32]> {
        match &self.disk {
            Some(d) => d.read(*list.locs.get(i)?, buf),
            None => list.rows.get(i * self.dim..(i + 1) * self.dim),
        }
    }

    /// The row of `slot` as [`IvfIndex::row_at`] reads it.
    fn read_slot<'a>(&'a self, slot: u32, buf: &'a mut Vec<f32>) -> Option<&'a [f32]> {
        let &(l, pos) = self.place.get(slot as usize)?;
        self.row_at(self.lists.get(l as usize)?, pos as usize, buf)
    }

    /// Offers row `i` of `list` to `top` (`buf`: see [`IvfIndex::row_at`]).
    #[inline]
    fn offer(&self, q: Query<'_>, list: &List, i: usize, top: &mut TopK, buf: &mut Vec<f32>) {
        let Some(x) = self.row_at(list, i, buf) else {
            return;
        };
        let s = self.score_of(q, x, list.inv.get(i).copied().unwrap_or(0.0));
        if s <= top.worst() || s.is_nan() {
            top.push(s, list.slots[i]);
        }
    }

    /// Offers the rows of `list` that `allow` allows to `top`; returns how many.
    fn scan(
        &self,
        q: Query<'_>,
        list: &List,
        allow: Option<&RoaringBitmap>,
        top: &mut TopK,
        buf: &mut Vec<f32>,
    ) -> usize {
        let mut offered = 0;
        for (i, &slot) in list.slots.iter().enumerate() {
            if allow.is_none_or(|a| a.contains(slot)) {
                self.offer(q, list, i, top, buf);
                offered += 1;
            }
        }
        offered
    }

    /// [`IvfIndex::scan`] on list `l`'s codes: each allowed row's score is estimated
    /// from its code, and the row scored exactly only when the estimate's lower bound
    /// could beat the `k`-th score held (`codes.rs`). The rows whose bound passes
    /// are scored in the order of their bounds (the slot breaks ties), which makes
    /// the answer independent of the order of rows inside a list — which a removal
    /// or a reopen changes — and lowers the `k`-th score soonest. `w.tables` the
    /// query's tables for inner product (filled once by the caller; the others are
    /// filled here for `l`). Never called for the zero query of cosine.
    fn scan_coded(
        &self,
        q: Query<'_>,
        l: usize,
        allow: Option<&RoaringBitmap>,
        top: &mut TopK,
        w: &mut Scratch,
    ) -> usize {
        let (Some(rot), Some(list)) = (&self.rotation, self.lists.get(l)) else {
            return 0;
        };
        let d = self.dim;
        let centroid = &self.centroids[l * d..(l + 1) * d];
        let k = kernels();
        // Inner product: −q·x = −(q·c + ‖x'‖·⟨o, q⟩), the tables the caller's.
        let qc = if self.score == Score::Ip {
            (k.dot)(q.original, centroid)
        } else {
            let p = rot.padded();
            match self.rotated.get(l * p..(l + 1) * p) {
                Some(rc) => {
                    w.z.clear();
                    w.z.extend(w.zq.iter().zip(rc).map(|(a, b)| a - b));
                }
                None => rot.apply(q.q, centroid, &mut w.z),
            }
            w.tables.fill(&w.z);
            0.0
        };
        let (t, passed, buf) = (&w.tables, &mut w.passed, &mut w.row);
        passed.clear();
        let mut offered = 0;
        let worst = top.worst();
        t.scan(k, &list.codes, |i, est, margin| {
            let slot = list.slots[i];
            if allow.is_some_and(|a| !a.contains(slot)) {
                return;
            }
            offered += 1;
            let least = if self.score == Score::Ip {
                -(qc + est + margin)
            } else {
                t.l2(&list.codes, i, est, margin)
            };
            // NaN passes too: `offer` ranks it as the exact score says.
            if least <= worst || least.is_nan() {
                passed.push((least, slot, i as u32));
            }
        });
        passed.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for &(least, _, i) in passed.iter() {
            if least > top.worst() {
                break;
            }
            self.offer(q, list, i as usize, top, buf);
        }
        // Rows not coded yet (none outside a batch write): exactly.
        for i in list.codes.len()..list.slots.len() {
            if allow.is_none_or(|a| a.contains(list.slots[i])) {
                self.offer(q, list, i, top, buf);
                offered += 1;
            }
        }
        offered
    }

    /// The sorted results of `top` for the original query `q`, with exact distances.
    fn finish(&self, q: &[f32], top: TopK, buf: &mut Vec<f32>) -> Vec<(u32, f32)> {
        let mut v = top.into_sorted_vec();
        match self.score {
            Score::Ip | Score::Other => return v,
            Score::L2 => v.iter_mut().for_each(|(_, d)| *d = d.sqrt()),
            Score::Cos => {
                for (slot, d) in &mut v {
                    if let Some(x) = self.read_slot(*slot, buf) {
                        *d = self.metric.distance_unchecked(q, x);
                    }
                }
            }
        }
        sort_results(&mut v);
        v
    }
}

impl VectorIndex for IvfIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> DistanceMetric {
        self.metric
    }

    fn len(&self) -> usize {
        self.len
    }

    fn insert(&mut self, slot: u32, v: &[f32]) {
        self.take(slot);
        let list = self.assign(v);
        self.push(list, slot, v);
        self.changed += 1;
        if self.wants_training() {
            self.train();
        } else if !self.batch {
            self.code_list(list as usize);
        }
    }

    fn insert_many(&mut self, items: &[(u32, &[f32])]) {
        let lists: Vec<u32> = if self.trained() {
            let mut rows = Vec::with_capacity(items.len() * self.dim);
            for &(_, v) in items {
                rows.extend_from_slice(v);
            }
            self.assign_rows(&rows)
        } else {
            vec![0; items.len()]
        };
        // A slot given twice in one batch holds its last row: each take removes the
        // row an earlier entry pushed.
        for (&(slot, v), &l) in items.iter().zip(&lists) {
            self.take(slot);
            self.push(l, slot, v);
        }
        self.changed += items.len();
        if self.wants_training() {
            self.train();
        } else if !self.batch {
            self.code_pending();
        }
    }

    fn begin_batch(&mut self) {
        self.batch = true;
    }

    fn end_batch(&mut self) {
        self.batch = false;
        if self.wants_training() {
            self.train();
        } else {
            self.code_pending();
        }
    }

    fn remove(&mut self, slot: u32) {
        self.remove_many(&[slot]);
    }

    fn remove_many(&mut self, slots: &[u32]) {
        for &slot in slots {
            if self.take(slot) {
                self.changed += 1;
            }
        }
        self.after_removals();
    }

    fn get(&self, slot: u32) -> Option<&[f32]> {
        let &(list, pos) = self.place.get(slot as usize)?;
        let l = self.lists.get(list as usize)?;
        if let Some(d) = &self.disk {
            return d.row(*l.locs.get(pos as usize)?);
        }
        let at = pos as usize * self.dim;
        l.rows.get(at..at + self.dim)
    }

    /// A live slot's row (an IVF index keeps no others; a seal writes its live rows).
    fn slot_row(&self, slot: u32) -> Option<&[f32]> {
        self.get(slot)
    }

    fn search(
        &self,
        q: &[f32],
        k: usize,
        allow: Option<&RoaringBitmap>,
        p: &SearchParams,
    ) -> Vec<(u32, f32)> {
        let n = self.len;
        if k == 0 || n == 0 || q.len() != self.dim {
            return Vec::new();
        }
        let original = q;
        let normalised;
        let q = if self.score == Score::Cos {
            let inv = crate::vector::inv_norm(q);
            normalised = q.iter().map(|&x| x * inv).collect::<Vec<f32>>();
            &normalised[..]
        } else {
            q
        };
        let zero = self.score == Score::Cos && q.iter().all(|&x| x == 0.0);
        let query = Query { q, original, zero };
        let nlist = self.nlist();
        let nprobe = self.nprobe_for(p);
        let expected = (n as u64).saturating_mul(nprobe as u64) / nlist.max(1) as u64;
        let bound = allow.map_or(n as u64, |a| a.len().min(n as u64)) as usize;
        let mut top = TopK::new(k, bound);
        let mut w = Scratch::default();
        if let Some(a) = allow.filter(|a| nlist > 0 && a.len() <= expected) {
            // Few allowed rows: score them all, exactly, wherever they are.
            for slot in a {
                let Some(&(l, pos)) = self.place.get(slot as usize) else {
                    continue;
                };
                if let Some(list) = self.lists.get(l as usize) {
                    self.offer(query, list, pos as usize, &mut top, &mut w.row);
                }
            }
        } else if nlist == 0 || nprobe >= nlist {
            for list in &self.lists {
                self.scan(query, list, allow, &mut top, &mut w.row);
            }
        } else {
            // Under a filter a list counts towards `nprobe` only if it held allowed
            // rows: with a filter that follows the clusters, the lists nearest the query
            // may hold none, and stopping there lost the nearest allowed rows (recall@10
            // 0.66–0.82 on 100 clusters, 10–20 of them allowed).
            let mut walk = probe::Walk::new(nprobe, k, p.probe_reach, allow.is_some());
            // Coded lists, unless the search asks for the full rows (`quantized:
            // Some(false)`); the zero query of cosine ties every row (scanned exactly).
            let coded = self
                .rotation
                .as_ref()
                .filter(|_| !zero && p.quantized != Some(false));
            if let Some(rot) = coded {
                if self.score == Score::Ip {
                    rot.apply(original, &[], &mut w.z);
                    w.tables.fill(&w.z);
                } else {
                    rot.apply(q, &[], &mut w.zq);
                }
            }
            for (score, l) in self.probe_order(original) {
                if !walk.scans(score) {
                    break;
                }
                let held = if coded.is_some() {
                    self.scan_coded(query, l as usize, allow, &mut top, &mut w)
                } else {
                    let list = &self.lists[l as usize];
                    self.scan(query, list, allow, &mut top, &mut w.row)
                };
                walk.scanned(held);
            }
        }
        self.finish(original, top, &mut w.row)
    }

    fn batch_search(
        &self,
        qs: &[f32],
        k: usize,
        allow: Option<&RoaringBitmap>,
        p: &SearchParams,
    ) -> Vec<Vec<(u32, f32)>> {
        if self.dim == 0 {
            return Vec::new();
        }
        qs.par_chunks_exact(self.dim)
            .map(|q| self.search(q, k, allow, p))
            .collect()
    }

    fn memory_bytes(&self) -> usize {
        self.memory_parts().iter().map(|p| p.1).sum()
    }

    fn as_ivf(&self) -> Option<&IvfIndex> {
        Some(self)
    }

    fn as_ivf_mut(&mut self) -> Option<&mut IvfIndex> {
        Some(self)
    }

    /// With RaBitQ codes: `quantized=False` scans the probed lists' full rows instead.
    fn walks_on_codes(&self) -> bool {
        self.coded()
    }

    fn mapped_bytes(&self) -> usize {
        self.disk.as_ref().map_or(0, |d| d.mapped().0)
    }

    fn mapped_ranges(&self) -> Vec<(usize, usize)> {
        self.disk
            .as_ref()
            .map(|d| d.mapped().1)
            .into_iter()
            .collect()
    }

    fn memory_parts(&self) -> Vec<(&'static str, usize)> {
        // The rows and what is kept per row beside them (slot, list and position,
        // inverse norm, a row's location with `vectors="disk"`, where the heap holds
        // only the rows written since the last seal); the centroids and the lists' headers.
        let vectors = self.lists.iter().map(List::bytes).sum::<usize>()
            + self.place.capacity() * std::mem::size_of::<(u32, u32)>()
            + self.disk.as_ref().map_or(0, DiskRows::heap_bytes);
        let index = std::mem::size_of::<Self>()
            + (self.centroids.capacity() + self.rotated.capacity()) * 4
            + self.lists.capacity() * std::mem::size_of::<List>();
        let codes: usize = self.lists.iter().map(|l| l.codes.bytes()).sum();
        if self.coded() {
            vec![("vectors", vectors), ("index", index), ("codes", codes)]
        } else {
            vec![("vectors", vectors), ("index", index)]
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// `n` rows of `dim` floats in `blobs` gaussian-ish clusters around random centres
    /// (components of the centres in ±`spread`, of the rows ±1 around them).
    fn clustered(n: usize, dim: usize, blobs: usize, spread: f32, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = SplitMix64::new(seed);
        let mut u = move || rng.next_f64() as f32 * 2.0 - 1.0;
        let centres: Vec<Vec<f32>> = (0..blobs)
            .map(|_| (0..dim).map(|_| u() * spread).collect())
            .collect();
        (0..n)
            .map(|i| centres[i % blobs].iter().map(|&c| c + u()).collect())
            .collect()
    }

    /// Each list's slots, ascending (a list's order depends on how rows arrived).
    fn sorted_lists(index: &IvfIndex) -> Vec<Vec<u32>> {
        index
            .lists
            .iter()
            .map(|l| {
                let mut s = l.slots.clone();
                s.sort_unstable();
                s
            })
            .collect()
    }

    /// `n` queries, each a stored row moved by up to ±0.5 per component.
    fn near(rows: &[(u32, Vec<f32>)], n: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = SplitMix64::new(seed);
        (0..n)
            .map(|_| {
                let r = &rows[(rng.next_u64() % rows.len() as u64) as usize].1;
                r.iter().map(|&x| x + rng.next_f64() as f32 - 0.5).collect()
            })
            .collect()
    }

    fn brute(rows: &[(u32, Vec<f32>)], q: &[f32], k: usize, m: DistanceMetric) -> Vec<u32> {
        let mut d: Vec<(f32, u32)> = rows
            .iter()
            .map(|(s, v)| (m.distance_unchecked(q, v), *s))
            .collect();
        d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        d.into_iter().take(k).map(|x| x.1).collect()
    }

    /// Recall@10 against brute force, ties counted as hits (a result as near as the
    /// true 10th is as good as it); also checks that reported distances are exact.
    fn recall(
        index: &IvfIndex,
        rows: &[(u32, Vec<f32>)],
        qs: &[Vec<f32>],
        p: &SearchParams,
    ) -> f64 {
        let k = 10;
        let m = index.metric();
        let mut hit = 0;
        for q in qs {
            let truth = brute(rows, q, k, m);
            let kth = truth
                .last()
                .map(|s| m.distance_unchecked(q, &rows.iter().find(|r| r.0 == *s).unwrap().1))
                .unwrap();
            let got = index.search(q, k, None, p);
            assert!(got.windows(2).all(|w| w[0].1 <= w[1].1));
            for (s, d) in &got {
                let row = &rows.iter().find(|r| r.0 == *s).unwrap().1;
                assert_eq!(
                    *d,
                    m.distance_unchecked(q, row),
                    "reported distances are exact"
                );
            }
            hit += got.iter().filter(|(_, d)| *d <= kth).count();
        }
        hit as f64 / (k * qs.len()) as f64
    }

    #[test]
    fn lists_reach_recall_on_clustered_rows_for_every_metric() {
        for m in DistanceMetric::ALL {
            let mut rows = clustered(4000, 16, 40, 10.0, 7);
            if m == DistanceMetric::Jaccard {
                for r in &mut rows {
                    r.iter_mut().for_each(|x| *x = x.abs());
                }
            }
            if m == DistanceMetric::Hamming {
                for r in &mut rows {
                    r.iter_mut().for_each(|x| *x = (*x / 4.0).round());
                }
            }
            let rows: Vec<(u32, Vec<f32>)> = rows
                .into_iter()
                .enumerate()
                .map(|(i, r)| (i as u32, r))
                .collect();
            let mut index = IvfIndex::new(16, m, None, None, 0);
            let items: Vec<(u32, &[f32])> = rows.iter().map(|(s, r)| (*s, &r[..])).collect();
            index.insert_many(&items);
            assert_eq!(index.nlist(), 63, "{m:?}");
            assert_eq!(index.list_sizes().iter().sum::<usize>(), 4000);
            let qs = near(&rows, 50, 8);
            let all = SearchParams {
                nprobe: Some(63),
                ..SearchParams::default()
            };
            assert_eq!(
                recall(&index, &rows, &qs, &all),
                1.0,
                "{m:?}: every list is exact"
            );
            let some = SearchParams {
                nprobe: Some(8),
                ..SearchParams::default()
            };
            let r = recall(&index, &rows, &qs, &some);
            assert!(r >= 0.9, "{m:?}: recall {r} at nprobe 8 of 63");
            // A reach adds lists: never less recall, and past every gap every list.
            let mut last = recall(&index, &rows, &qs, &probes(1, None));
            for reach in [0.0, 0.5, 2.0, 8.0, 32.0] {
                let r = recall(&index, &rows, &qs, &probes(1, Some(reach)));
                assert!(r >= last, "{m:?}: reach {reach}: {r} < {last}");
                last = r;
            }
            let far = probes(1, Some(f32::MAX));
            assert_eq!(recall(&index, &rows, &qs, &far), 1.0, "{m:?}: every list");
        }
    }

    fn probes(nprobe: usize, reach: Option<f32>) -> SearchParams {
        SearchParams {
            nprobe: Some(nprobe),
            probe_reach: reach,
            ..SearchParams::default()
        }
    }

    #[test]
    fn inner_product_reaches_long_rows_in_the_query_direction() {
        // Most rows short around the origin, a few long ones in one direction: the
        // inner product's answers are the long rows, whose list is far from the query.
        let mut rng = SplitMix64::new(3);
        let mut u = move || rng.next_f64() as f32 * 2.0 - 1.0;
        let mut rows: Vec<(u32, Vec<f32>)> = (0..3000)
            .map(|i| (i, (0..8).map(|_| u()).collect()))
            .collect();
        for i in 3000..3050u32 {
            let mut v: Vec<f32> = (0..8).map(|_| u() * 0.1).collect();
            v[0] += 40.0;
            rows.push((i, v));
        }
        let mut index = IvfIndex::new(8, DistanceMetric::InnerProduct, None, Some(1), 0);
        let items: Vec<(u32, &[f32])> = rows.iter().map(|(s, r)| (*s, &r[..])).collect();
        index.insert_many(&items);
        let q = [1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let got = index.search(&q, 10, None, &SearchParams::default());
        assert!(got.iter().all(|(s, _)| *s >= 3000), "{got:?}");
    }

    #[test]
    fn removals_updates_and_filters_keep_answers_right() {
        let m = DistanceMetric::Euclidean;
        let base = clustered(3000, 8, 30, 3.0, 11);
        let mut index = IvfIndex::new(8, m, Some(30), None, 0);
        for (i, r) in base.iter().enumerate() {
            index.insert(i as u32, r);
        }
        assert_eq!(index.nlist(), 30);
        // Remove every third row, move every fifth elsewhere.
        let mut rows: Vec<(u32, Vec<f32>)> = Vec::new();
        let moved = clustered(3000, 8, 30, 3.0, 12);
        for (i, r) in base.iter().enumerate() {
            let s = i as u32;
            if i % 3 == 0 {
                index.remove(s);
            } else if i % 5 == 0 {
                index.insert(s, &moved[i]);
                rows.push((s, moved[i].clone()));
            } else {
                rows.push((s, r.clone()));
            }
        }
        assert_eq!(index.len(), rows.len());
        assert_eq!(index.list_sizes().iter().sum::<usize>(), rows.len());
        let qs = near(&rows, 40, 13);
        let all = SearchParams {
            nprobe: Some(30),
            ..SearchParams::default()
        };
        assert_eq!(recall(&index, &rows, &qs, &all), 1.0);
        // A filter of every seventh slot: answers only from it, exact where it is small.
        let allow: RoaringBitmap = rows.iter().map(|r| r.0).filter(|s| s % 7 == 0).collect();
        let allowed: Vec<(u32, Vec<f32>)> = rows
            .iter()
            .filter(|r| allow.contains(r.0))
            .cloned()
            .collect();
        for q in &qs {
            let got = index.search(q, 10, Some(&allow), &SearchParams::default());
            assert_eq!(got.len(), 10);
            assert!(got.iter().all(|(s, _)| allow.contains(*s)));
            let truth = brute(&allowed, q, 10, m);
            let hits = got.iter().filter(|(s, _)| truth.contains(s)).count();
            assert!(hits >= 8, "{hits}/10");
        }
        // A filter of three rows: exactly those.
        let three: RoaringBitmap = rows.iter().take(3).map(|r| r.0).collect();
        let got = index.search(&qs[0], 10, Some(&three), &SearchParams::default());
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn small_indexes_are_exact_and_training_follows_doublings() {
        let rows = clustered(5000, 4, 10, 2.0, 21);
        let mut index = IvfIndex::new(4, DistanceMetric::Euclidean, None, None, 0);
        for (i, r) in rows.iter().enumerate().take(MIN_TRAIN_ROWS - 1) {
            index.insert(i as u32, r);
        }
        assert_eq!(index.nlist(), 0, "no lists below the training size");
        index.insert(MIN_TRAIN_ROWS as u32 - 1, &rows[MIN_TRAIN_ROWS - 1]);
        assert_eq!(index.nlist(), auto_nlist(MIN_TRAIN_ROWS));
        for (i, r) in rows.iter().enumerate().skip(MIN_TRAIN_ROWS) {
            index.insert(i as u32, r);
        }
        assert_eq!(index.trained_at, 4 * MIN_TRAIN_ROWS);
        assert_eq!(index.nlist(), auto_nlist(4 * MIN_TRAIN_ROWS));
        assert_eq!(index.list_sizes().iter().sum::<usize>(), 5000);
    }

    #[test]
    fn saved_lists_restore_the_same_index() {
        let rows = clustered(3000, 8, 20, 3.0, 41);
        let items: Vec<(u32, &[f32])> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (2 * i as u32, &r[..]))
            .collect();
        let mut index = IvfIndex::new(8, DistanceMetric::Euclidean, None, Some(3), 0);
        index.insert_many(&items);
        index.remove(10);
        let live: Vec<(u32, &[f32])> = items.iter().copied().filter(|i| i.0 != 10).collect();
        let slots: Vec<u32> = live.iter().map(|i| i.0).collect();
        let mut bytes = Vec::new();
        file::write(&mut bytes, 8, &index.lists_of(&slots).unwrap()).unwrap();
        let lists = file::read(&bytes, 8, live.len()).unwrap();
        let back = IvfIndex::with_lists(
            8,
            DistanceMetric::Euclidean,
            (None, Some(3), Quantization::Off),
            &live,
            lists,
        )
        .unwrap();
        assert_eq!(back.centroids, index.centroids);
        assert_eq!(back.trained_at, index.trained_at);
        assert_eq!(sorted_lists(&index), sorted_lists(&back));
        for q in rows.iter().take(20) {
            let p = SearchParams::default();
            assert_eq!(index.search(q, 10, None, &p), back.search(q, 10, None, &p));
        }
    }

    #[test]
    fn a_write_in_pieces_trains_once_at_its_end() {
        let rows = clustered(5000, 4, 10, 2.0, 23);
        let items: Vec<(u32, &[f32])> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (i as u32, &r[..]))
            .collect();
        let mut index = IvfIndex::new(4, DistanceMetric::Euclidean, None, None, 0);
        index.begin_batch();
        for piece in items.chunks(256) {
            index.insert_many(piece);
            assert_eq!(index.nlist(), 0, "no training inside the batch");
        }
        index.end_batch();
        assert_eq!(index.trained_at, 5000);
        assert_eq!(index.nlist(), auto_nlist(5000));
        assert_eq!(index.list_sizes().iter().sum::<usize>(), 5000);
        // Outside a batch, a piece past the size trains at once.
        let mut single = IvfIndex::new(4, DistanceMetric::Euclidean, None, None, 0);
        single.insert_many(&items[..MIN_TRAIN_ROWS]);
        assert_eq!(single.trained_at, MIN_TRAIN_ROWS);
    }

    #[test]
    fn the_same_rows_give_the_same_lists() {
        let rows = clustered(3000, 8, 20, 3.0, 31);
        let build = || {
            let mut index = IvfIndex::new(8, DistanceMetric::Cosine, None, None, 0);
            let items: Vec<(u32, &[f32])> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| (i as u32, &r[..]))
                .collect();
            index.insert_many(&items);
            index
        };
        let (a, b) = (build(), build());
        assert_eq!(a.centroids, b.centroids);
        assert_eq!(sorted_lists(&a), sorted_lists(&b));
    }

    /// Codes saved with the lists read back as the codes made again from the rows, and
    /// codes of another rotation or bound (another fingerprint) are made again.
    #[test]
    fn saved_codes_are_the_codes_made_again() {
        for metric in [DistanceMetric::Euclidean, DistanceMetric::Cosine] {
            let rows = clustered(3000, 24, 20, 3.0, 41);
            let mut index =
                IvfIndex::new(24, metric, None, None, 0).with_codes(Quantization::RaBitQ);
            let mut items: Vec<(u32, &[f32])> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| (i as u32, &r[..]))
                .collect();
            index.insert_many(&items);
            // Removals and re-adds shuffle the rows inside the lists.
            index.remove_many(&(0..3000).step_by(7).collect::<Vec<u32>>());
            items.retain(|(s, _)| s % 7 != 0);
            let live: Vec<u32> = items.iter().map(|x| x.0).collect();
            let lists = index.lists_of(&live).unwrap();
            let saved = lists.codes.as_ref().unwrap();
            assert_eq!(saved.factors.len(), live.len());
            let mut bytes = Vec::new();
            file::write(&mut bytes, 24, &lists).unwrap();
            let read = || file::read(&bytes, 24, live.len()).unwrap();
            let restore = |lists: file::Lists| {
                IvfIndex::with_lists(
                    24,
                    metric,
                    (None, None, Quantization::RaBitQ),
                    &items,
                    lists,
                )
                .unwrap()
            };
            let from_saved = restore(read());
            let mut without = read();
            without.codes = None;
            let recoded = restore(without);
            let mut other = read();
            if let Some(c) = other.codes.as_mut() {
                c.fingerprint ^= 1;
                c.factors.iter_mut().for_each(|f| f[2] = 0.0);
            }
            let refused = restore(other);
            // The saved codes are what the open takes: a marked factor shows up.
            let mut marked = read();
            if let Some(c) = marked.codes.as_mut() {
                c.factors[5][0] = 12_345.0;
            }
            let taken = restore(marked);
            let (l, pos) = taken.place[live[5] as usize];
            let mut bits = Vec::new();
            let groups = taken.rotation.as_ref().unwrap().padded() / 4;
            let f = taken.lists[l as usize]
                .codes
                .row(groups, pos as usize, &mut bits);
            assert_eq!(f[0], 12_345.0, "{metric:?}: the saved factor");
            for ((a, b), c) in from_saved
                .lists
                .iter()
                .zip(&recoded.lists)
                .zip(&refused.lists)
            {
                assert_eq!(a.codes, b.codes, "{metric:?}");
                assert_eq!(c.codes, b.codes, "{metric:?}: another fingerprint");
                assert_eq!(a.inv, b.inv);
            }
        }
    }
}
