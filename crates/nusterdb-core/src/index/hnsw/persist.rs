//! The graph file: the HNSW structure saved beside RocksDB, so that opening a database
//! loads the graph instead of rebuilding it.
//!
//! Layout (little-endian; `n` slots, `w` words of upper-layer blocks, `t` tombstones):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `NDBGRAPH` |
//! | 4 | format version ([`GRAPH_FORMAT_VERSION`]) |
//! | 4 + 1 + 1 + 1 + 1 | dim, metric (index in [`DistanceMetric::ALL`]), use_heuristic, max_layer, 0 |
//! | 4 + 4 | M, ef_construction (the saving index's; informative: a reader goes on with its own) |
//! | 8 × 6 | n, w, entry (`level << 32 \| slot`, or `u64::MAX`), level-generator state, live, tombstones |
//! | n | slot states (0 empty, 1 live, 2 tombstone) |
//! | 8n | external id of each live slot (`u64::MAX` otherwise) |
//! | 8n | [`vector_hash`] of each live slot's vector (0 otherwise) |
//! | n | levels |
//! | 4n | offset of each slot's upper block (`u32::MAX`: none) |
//! | 4n(1 + 2M) | layer-0 lists |
//! | 4w | upper-layer blocks |
//! | 8 + 4·dim | version ≥ 2: the row count the codes' centre was computed at, and the centre (zeros for metrics without codes) |
//! | 4·dim·t | the vectors of the tombstones, in slot order (they route searches but are no longer in RocksDB) |
//! | 4 | CRC-32 of everything before it |
//!
//! Live vectors are not in the file: RocksDB has them. The ids and hashes let the
//! database match the file against RocksDB on open (see `db/load.rs`): a slot whose id is
//! still stored with the same vector is reused as is; anything else is repaired.
//!
//! Version 1 files (no centre) are read with a zero centre that is replaced at the next
//! insertion.
//!
//! Reading treats the file as untrusted: the CRC, the length, every count, neighbour,
//! offset, level and the entry point are checked, and any failure is an error (the
//! database then rebuilds the graph from RocksDB).

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicU32;

use rayon::prelude::*;

use super::graph::{Graph, NO_BLOCK};
use super::{HnswIndex, EMPTY, LIVE, NO_ENTRY, PENDING, TOMBSTONE};
use crate::config::{HnswConfig, Quantization};
use crate::index::Rows;
use crate::metric::DistanceMetric;
use crate::rng::SplitMix64;
use crate::storage::fileio::CrcWriter;

/// Magic bytes at the start of a graph file.
pub const GRAPH_MAGIC: &[u8; 8] = b"NDBGRAPH";

/// The graph file format this build writes (and the newest it reads).
pub const GRAPH_FORMAT_VERSION: u32 = 2;

/// Bytes before the per-slot sections.
const HEADER_BYTES: usize = 8 + 4 + 8 + 8 + 8 * 6;

/// The `ids` entry of a slot without a live vector.
pub const NO_ID: u64 = u64::MAX;

/// A 64-bit hash of a vector's bits, to tell on open whether RocksDB still holds the
/// vector the graph was built with. Not cryptographic: a collision (after a vector was
/// changed while no graph save followed) would only keep that node's old links, which
/// costs recall for it, never a wrong distance.
pub fn vector_hash(v: &[f32]) -> u64 {
    let mut h: u64 = 0x243f_6a88_85a3_08d3 ^ (v.len() as u64);
    for pair in v.chunks(2) {
        let lo = u64::from(pair[0].to_bits());
        let hi = pair.get(1).map_or(0, |x| u64::from(x.to_bits()));
        h = (h.rotate_left(23) ^ (lo | hi << 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    // SplitMix64's finaliser, so every input bit reaches every output bit.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The rows and codes of a seal an index is opened over.
pub(crate) struct SealedRows<'a> {
    /// The rows of the seal's slot-ordered vector files (at least as many slots as the
    /// graph).
    pub rows: Rows,
    /// Its parts' codes files, by first slot (needed when the index keeps codes).
    pub codes: &'a [PathBuf],
    /// Map the codes in place (else copy them).
    pub map: bool,
}

/// A graph read back from a file, before the live vectors are restored into it.
#[derive(Debug)]
pub struct GraphImage {
    /// The index: structure, tombstone vectors; live rows are zero until
    /// [`HnswIndex::restore_row`] fills them.
    pub index: HnswIndex,
    /// Per slot: the external id of a live slot, else [`NO_ID`].
    pub ids: Vec<u64>,
    /// Per slot: the [`vector_hash`] of a live slot's vector.
    pub hashes: Vec<u64>,
}

/// Writes `values` as little-endian bytes, in chunks.
pub(super) fn put_all<T: Copy, const B: usize>(
    w: &mut dyn Write,
    values: impl Iterator<Item = T>,
    to_le: impl Fn(T) -> [u8; B],
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1 << 16);
    for v in values {
        buf.extend_from_slice(&to_le(v));
        if buf.len() >= (1 << 16) - B {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)
}

fn load_words(words: &[AtomicU32]) -> impl Iterator<Item = u32> + '_ {
    words
        .iter()
        .map(|a| a.load(std::sync::atomic::Ordering::Relaxed))
}

impl HnswIndex {
    /// The slots a graph file for an id map spanning `extent` slots covers:
    /// `max(extent, end)`.
    pub fn graph_slots(&self, extent: usize) -> usize {
        extent.max(self.end)
    }

    /// The lowest slot whose row, codes or inverse norm changed since the last
    /// [`HnswIndex::mark_sealed`] (0 for an index not read from a seal's files).
    pub fn changed_from(&self) -> usize {
        self.changed_from.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Records that the rows, codes and inverse norms of slots `0..end` are in a
    /// seal's files as they are now.
    pub fn mark_sealed(&self, end: usize) {
        self.changed_from
            .store(end, std::sync::atomic::Ordering::Release);
    }

    /// Writes the graph file (see the module docs). `id_of(slot)` is the external id
    /// of each live slot; `extent` the number of slots the caller's id map spans (the
    /// file covers `max(extent, end)` slots).
    ///
    /// # Errors
    /// I/O errors from `out`; `InvalidData` if a live slot has no id.
    pub fn write_graph(
        &self,
        out: &mut dyn Write,
        id_of: &dyn Fn(u32) -> Option<u64>,
        extent: usize,
    ) -> io::Result<()> {
        let n = self.graph_slots(extent);
        let mut ids = Vec::with_capacity(n);
        for s in 0..n as u32 {
            if self.is_live(s) {
                let id = id_of(s).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("live slot {s} has no id"),
                    )
                })?;
                ids.push(id);
            } else {
                ids.push(NO_ID);
            }
        }
        // A staged node (a write not committed) is saved as a tombstone: a graph file
        // holds committed rows only. (Saves and writes are serialised, so there is
        // none in practice.)
        let state = |s: usize| match self.state.get(s).copied().unwrap_or(EMPTY) {
            PENDING => TOMBSTONE,
            st => st,
        };
        let mut w = CrcWriter::new(out);
        let metric_code = DistanceMetric::ALL
            .iter()
            .position(|&m| m == self.metric)
            .unwrap_or(0) as u8;
        w.write_all(GRAPH_MAGIC)?;
        w.write_all(&GRAPH_FORMAT_VERSION.to_le_bytes())?;
        // These casts are exact: dim ≤ 65,536, M ≤ 512 and ef_construction ≤ 2^20 (the
        // config's ranges), max_layer ≤ 255 (clamped in `new`), slots are u32.
        w.write_all(&(self.dim as u32).to_le_bytes())?;
        w.write_all(&[
            metric_code,
            u8::from(self.use_heuristic),
            self.max_layer as u8,
            0,
        ])?;
        w.write_all(&(self.m as u32).to_le_bytes())?;
        w.write_all(&(self.ef_construction as u32).to_le_bytes())?;
        let g = &self.graph;
        let entry = self.entry.load(std::sync::atomic::Ordering::Acquire);
        for x in [
            n as u64,
            g.upper.len() as u64,
            entry,
            self.rng.state(),
            self.live as u64,
            (self.tombstones + self.pending) as u64,
        ] {
            w.write_all(&x.to_le_bytes())?;
        }
        put_all(&mut w, (0..n).map(state), |x: u8| [x])?;
        put_all(&mut w, ids.iter().copied(), u64::to_le_bytes)?;
        put_all(
            &mut w,
            (0..n as u32).map(|s| {
                if self.is_live(s) {
                    vector_hash(self.row(s))
                } else {
                    0
                }
            }),
            u64::to_le_bytes,
        )?;
        // Slots past the graph's arrays (an id map longer than the index) are empty.
        let have = g.slots().min(n);
        let pad = n - have;
        put_all(&mut w, (0..n).map(|s| g.level(s as u32) as u8), |x: u8| [x])?;
        put_all(
            &mut w,
            g.upper_off[..have]
                .iter()
                .copied()
                .chain(std::iter::repeat_n(NO_BLOCK, pad)),
            u32::to_le_bytes,
        )?;
        put_all(
            &mut w,
            load_words(&g.links0[..have * (1 + g.m0)])
                .chain(std::iter::repeat_n(0, pad * (1 + g.m0))),
            u32::to_le_bytes,
        )?;
        put_all(&mut w, load_words(&g.upper), u32::to_le_bytes)?;
        let zeros = vec![0f32; self.dim];
        let (center, centred_at) = self.codes.as_ref().map_or((&zeros[..], 0), |c| c.centre());
        w.write_all(&centred_at.to_le_bytes())?;
        put_all(&mut w, center.iter().copied(), f32::to_le_bytes)?;
        for s in (0..n).filter(|&s| state(s) == TOMBSTONE) {
            put_all(&mut w, self.row(s as u32).iter().copied(), f32::to_le_bytes)?;
        }
        let (crc, inner) = w.finish();
        inner.write_all(&crc.to_le_bytes())
    }

    /// Reads a graph file written for an index of `dim`, `metric` and `cfg`.
    ///
    /// # Errors
    /// Any damage, a version from the future, or a file made with other parameters, as
    /// a message.
    pub fn read_graph(
        bytes: &[u8],
        dim: usize,
        metric: DistanceMetric,
        cfg: &HnswConfig,
        quantization: Quantization,
    ) -> Result<GraphImage, String> {
        Self::read_graph_with(bytes, dim, metric, cfg, quantization, None)
    }

    /// [`HnswIndex::read_graph`] over the rows and codes of a seal ([`SealedRows`]):
    /// nothing is re-coded, and every live row is in place at once (no
    /// [`HnswIndex::restore_row`]).
    ///
    /// # Errors
    /// As `read_graph`; rows too short for the graph; a missing, damaged or
    /// mismatched codes file.
    pub(crate) fn read_sealed_graph(
        bytes: &[u8],
        dim: usize,
        metric: DistanceMetric,
        cfg: &HnswConfig,
        quantization: Quantization,
        sealed: SealedRows<'_>,
    ) -> Result<GraphImage, String> {
        let SealedRows { rows, codes, map } = sealed;
        Self::read_graph_with(
            bytes,
            dim,
            metric,
            cfg,
            quantization,
            Some((rows, codes, map)),
        )
    }

    fn read_graph_with(
        bytes: &[u8],
        dim: usize,
        metric: DistanceMetric,
        cfg: &HnswConfig,
        quantization: Quantization,
        sealed: Option<(Rows, &[PathBuf], bool)>,
    ) -> Result<GraphImage, String> {
        if bytes.len() < HEADER_BYTES + 4 {
            return Err(format!("graph file too short ({} bytes)", bytes.len()));
        }
        if &bytes[..8] != GRAPH_MAGIC {
            return Err("not a graph file (wrong magic bytes)".into());
        }
        let (content, crc) = bytes.split_at(bytes.len() - 4);
        let mut r = Reader { b: &bytes[8..] };
        let version = r.u32()?;
        if version == 0 || version > GRAPH_FORMAT_VERSION {
            return Err(format!(
                "graph format version {version} not supported (max {GRAPH_FORMAT_VERSION})"
            ));
        }
        if crc32fast::hash(content) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err("graph file checksum mismatch".into());
        }
        let file_dim = r.u32()? as usize;
        let [metric_code, heuristic, max_layer, _] = r.array::<4>()?;
        let m = r.u32()? as usize;
        let efc = r.u32()? as usize;
        // The graph's shape (dim, metric, M, max_layer) must be exactly that of the
        // index; ef_construction and use_heuristic only steer how later nodes are
        // linked, so a graph built with others is used as is and the index goes on
        // with `cfg`'s.
        let want = HnswIndex::new_coded(
            dim,
            metric,
            &HnswConfig {
                max_nb_elements: 0,
                ..cfg.clone()
            },
            quantization,
        );
        let file_metric = DistanceMetric::ALL.get(usize::from(metric_code)).copied();
        if file_dim != dim
            || file_metric != Some(metric)
            || m != want.m
            || heuristic > 1
            || usize::from(max_layer) != want.max_layer
        {
            return Err(format!(
                "graph file made for other parameters (dim {file_dim}, metric code {metric_code}, \
                 M {m}, ef_construction {efc})"
            ));
        }
        let n = usize::try_from(r.u64()?).map_err(|_| "slot count out of range")?;
        let words = usize::try_from(r.u64()?).map_err(|_| "block size out of range")?;
        let entry = r.u64()?;
        let rng_state = r.u64()?;
        let (live, tombstones) = (r.u64()?, r.u64()?);
        if n > u32::MAX as usize || words > u32::MAX as usize {
            return Err(format!(
                "graph file sizes out of range ({n} slots, {words} words)"
            ));
        }
        let m0 = 2 * m;
        let states = r.bytes(n)?.to_vec();
        let t = states.iter().filter(|&&s| s == TOMBSTONE).count();
        // The exact length, before any large allocation.
        let expected = (|| {
            let per_slot = 1 + 8 + 8 + 1 + 4 + 4 * (1 + m0);
            n.checked_mul(per_slot)?
                .checked_add(words.checked_mul(4)?)?
                .checked_add(t.checked_mul(dim)?.checked_mul(4)?)?
                .checked_add(if version >= 2 {
                    8 + dim.checked_mul(4)?
                } else {
                    0
                })?
                .checked_add(HEADER_BYTES + 4)
        })();
        if expected != Some(bytes.len()) {
            return Err(format!(
                "graph file length {} does not match its header ({n} slots, {words} words)",
                bytes.len()
            ));
        }
        let ids = r.u64s(n)?;
        let hashes = r.u64s(n)?;
        let levels = r.bytes(n)?.to_vec();
        let upper_off = r.u32s(n)?;
        let links0 = r.u32s(n * (1 + m0))?;
        let upper = r.u32s(words)?;

        let mut counted = (0u64, 0u64);
        for (s, (&st, &id)) in states.iter().zip(&ids).enumerate() {
            match st {
                LIVE if id < crate::id_map::ID_LIMIT => counted.0 += 1,
                TOMBSTONE | EMPTY if id == NO_ID => {
                    counted.1 += u64::from(st == TOMBSTONE);
                }
                _ => return Err(format!("slot {s}: bad state {st} or id {id}")),
            }
        }
        if counted != (live, tombstones) {
            return Err(format!(
                "graph counts {live} live / {tombstones} removed but its slots say {} / {}",
                counted.0, counted.1
            ));
        }
        let check_list = |list: &[u32], cap: usize, what: &dyn Fn() -> String| {
            let count = list.first().copied().unwrap_or(0) as usize;
            if count > cap || list[1..=count].iter().any(|&x| x as usize >= n) {
                return Err(format!("{}: bad neighbour list", what()));
            }
            Ok(())
        };
        for s in 0..n {
            let level = usize::from(levels[s]);
            if level > usize::from(max_layer) {
                return Err(format!(
                    "slot {s}: level {level} above the maximum {max_layer}"
                ));
            }
            check_list(&links0[s * (1 + m0)..(s + 1) * (1 + m0)], m0, &|| {
                format!("slot {s} layer 0")
            })?;
            let off = upper_off[s];
            if level == 0 {
                if off != NO_BLOCK {
                    return Err(format!("slot {s}: level 0 with an upper block"));
                }
                continue;
            }
            let start = off as usize;
            let end = start + level * (1 + m);
            if off == NO_BLOCK || end > words {
                return Err(format!("slot {s}: upper block out of range"));
            }
            for layer in 1..=level {
                let at = start + (layer - 1) * (1 + m);
                check_list(&upper[at..at + 1 + m], m, &|| {
                    format!("slot {s} layer {layer}")
                })?;
            }
        }
        if entry == NO_ENTRY {
            if live + tombstones != 0 {
                return Err("graph has nodes but no entry point".into());
            }
        } else {
            let (slot, level) = ((entry & 0xffff_ffff) as usize, (entry >> 32) as usize);
            if slot >= n || states[slot] == EMPTY || level != usize::from(levels[slot]) {
                return Err(format!("bad entry point (slot {slot}, level {level})"));
            }
        }

        let mut index = want;
        index.ef_search = cfg.ef_search.filter(|&e| e > 0);
        let mut preloaded = false;
        if let Some((rows, codes, map)) = sealed {
            if rows.as_slice().len() < n * dim {
                return Err(format!(
                    "the vector file holds {} floats, the graph needs {n} rows of {dim}",
                    rows.as_slice().len()
                ));
            }
            index.rows = rows;
            if index.codes.is_some() {
                if codes.is_empty() {
                    return Err("the seal has no codes file".into());
                }
                let sealed = index.read_codes(codes, n, map)?;
                index.codes = Some(sealed.codes);
                index.inv_norm = sealed.inv_norm;
            } else if index.space.kind == super::Kind::Cos {
                // Cosine without codes (`quantization="none"`): no codes file carries
                // the inverse norms, so they are computed from the rows.
                index.inv_norm = index.rows.as_slice()[..n * dim]
                    .par_chunks(dim.max(1))
                    .map(crate::vector::inv_norm)
                    .collect();
            }
            preloaded = true;
        }
        // The graph first, so that growing the other arrays to `n` slots does not
        // allocate (and zero) a graph of `n` slots only to drop it.
        index.graph = Graph::from_parts(m, m0, links0, upper, upper_off, levels, n);
        index.ensure_slot(n.saturating_sub(1));
        index.state[..n].copy_from_slice(&states);
        index.live = live as usize;
        index.tombstones = tombstones as usize;
        index.end = states
            .iter()
            .rposition(|&s| s != EMPTY)
            .map_or(0, |s| s + 1);
        index
            .entry
            .store(entry, std::sync::atomic::Ordering::Release);
        index.rng = SplitMix64::new(rng_state);
        if version >= 2 {
            let centred_at = r.u64()?;
            let mut center = vec![0f32; dim];
            for x in &mut center {
                *x = r.f32()?;
            }
            if !center.iter().all(|x| x.is_finite()) {
                return Err("graph file centre is not finite".into());
            }
            if let Some(c) = &mut index.codes {
                if !preloaded {
                    c.set_centre(center, centred_at);
                } else if c.centre() != (&center[..], centred_at) {
                    return Err("the codes file was coded against another centre".into());
                }
            }
        }
        let mut row = vec![0f32; dim];
        for s in (0..n).filter(|&s| states[s] == TOMBSTONE) {
            for x in &mut row {
                *x = r.f32()?;
            }
            index.write_row(s as u32, &row);
        }
        if preloaded {
            // Every row and code is the files' (the tombstones' rows just written are
            // the vector file's too).
            index.mark_sealed(n);
        }
        Ok(GraphImage { index, ids, hashes })
    }

    /// Puts the vector of a live slot read from a graph file back in place (no
    /// linking: the graph already holds it). Returns `false` for a slot that is not
    /// live.
    pub fn restore_row(&mut self, slot: u32, v: &[f32]) -> bool {
        if !self.is_live(slot) {
            return false;
        }
        self.write_row(slot, v);
        true
    }
}

/// A cursor over untrusted bytes.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err("graph file truncated".into());
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.array().map(u64::from_le_bytes)
    }

    fn f32(&mut self) -> Result<f32, String> {
        self.array().map(f32::from_le_bytes)
    }

    fn u32s(&mut self, n: usize) -> Result<Vec<u32>, String> {
        let b = self.bytes(n.checked_mul(4).ok_or("graph file size overflow")?)?;
        Ok(b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    fn u64s(&mut self, n: usize) -> Result<Vec<u64>, String> {
        let b = self.bytes(n.checked_mul(8).ok_or("graph file size overflow")?)?;
        Ok(b.chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::index::VectorIndex;

    /// A small graph built the same way on every machine: serial inserts (the level
    /// generator is seeded) of integer-valued vectors (every kernel computes their
    /// scores exactly), one removal.
    fn golden_index() -> HnswIndex {
        let cfg = HnswConfig {
            max_nb_connection: 2,
            ef_construction: 4,
            ..HnswConfig::default()
        };
        let mut h = HnswIndex::new(2, DistanceMetric::Euclidean, &cfg);
        for (s, v) in [
            [0.0, 0.0],
            [1.0, 0.0],
            [0.0, 2.0],
            [3.0, 3.0],
            [-1.0, 4.0],
            [5.0, -2.0],
        ]
        .iter()
        .enumerate()
        {
            h.insert(s as u32, v);
        }
        h.remove(4);
        h
    }

    fn golden_bytes() -> Vec<u8> {
        let mut out = Vec::new();
        golden_index()
            .write_graph(&mut out, &|s| Some(100 + u64::from(s)), 6)
            .unwrap();
        out
    }

    /// The graph file's encoding is pinned: a change to it must come with a new
    /// `GRAPH_FORMAT_VERSION` (and a reader for the old one), never silently.
    #[test]
    fn golden_bytes_of_format_2() {
        let b = golden_bytes();
        assert_eq!(&b[..8], GRAPH_MAGIC);
        assert_eq!(b.len(), GOLDEN_LEN, "graph file length changed");
        // Over the content without its trailing CRC: a CRC-32 over data followed by
        // its own CRC is the same constant for every file, so it would pin nothing.
        assert_eq!(
            crc32fast::hash(&b[..b.len() - 4]),
            GOLDEN_CRC,
            "graph file bytes changed"
        );
    }

    /// A version-1 file (no centre section) still reads, with the same structure and a
    /// zero centre.
    #[test]
    fn reads_format_1() {
        let b = golden_bytes();
        let dim = 2;
        let tomb = 4 * dim; // one tombstone
        let centre_at = b.len() - 4 - tomb - (8 + 4 * dim);
        let mut v1 = b[..8].to_vec();
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&b[12..centre_at]);
        v1.extend_from_slice(&b[b.len() - 4 - tomb..b.len() - 4]);
        let crc = crc32fast::hash(&v1);
        v1.extend_from_slice(&crc.to_le_bytes());
        let cfg = HnswConfig {
            max_nb_connection: 2,
            ef_construction: 4,
            ..HnswConfig::default()
        };
        let img = HnswIndex::read_graph(&v1, 2, DistanceMetric::Euclidean, &cfg, Quantization::Sq8)
            .unwrap();
        let h = golden_index();
        assert_eq!(img.index.entry_point(), h.entry_point());
        assert_eq!(img.index.row(4), h.row(4));
        let (centre, at) = img.index.codes.as_ref().unwrap().centre();
        assert_eq!((centre, at), (&[0.0f32, 0.0][..], 0));
        // One byte short of the version-2 length is refused, not misread.
        let mut bad = b.clone();
        bad[8..12].copy_from_slice(&1u32.to_le_bytes());
        assert!(
            HnswIndex::read_graph(&bad, 2, DistanceMetric::Euclidean, &cfg, Quantization::Sq8)
                .is_err()
        );
    }

    const GOLDEN_LEN: usize = 524;
    const GOLDEN_CRC: u32 = 1_984_845_193;

    #[test]
    fn round_trip_restores_every_field() {
        let h = golden_index();
        let b = golden_bytes();
        let cfg = HnswConfig {
            max_nb_connection: 2,
            ef_construction: 4,
            ..HnswConfig::default()
        };
        let img = HnswIndex::read_graph(&b, 2, DistanceMetric::Euclidean, &cfg, Quantization::Sq8)
            .unwrap();
        assert_eq!(img.ids, vec![100, 101, 102, 103, NO_ID, 105]);
        let mut r = img.index;
        for s in [0u32, 1, 2, 3, 5] {
            assert!(r.restore_row(s, h.row(s)));
            assert_eq!(img.hashes[s as usize], vector_hash(h.row(s)));
        }
        assert!(
            !r.restore_row(4, &[0.0, 0.0]),
            "a tombstone is not restored"
        );
        assert_eq!(r.row(4), h.row(4), "the tombstone's vector is in the file");
        assert_eq!((r.live, r.tombstones, r.end), (h.live, h.tombstones, h.end));
        assert_eq!(r.entry_point(), h.entry_point());
        assert_eq!(r.rng.state(), h.rng.state());
        for s in 0..6u32 {
            for layer in 0..=h.graph.level(s) {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                h.graph.read_into(s, layer, &mut a);
                r.graph.read_into(s, layer, &mut b);
                assert_eq!(a, b, "slot {s} layer {layer}");
            }
        }
        // Written again, the same bytes.
        let mut again = Vec::new();
        r.write_graph(&mut again, &|s| Some(100 + u64::from(s)), 6)
            .unwrap();
        assert_eq!(again, b);
    }
}
