//! [`DiskRows`]: where an IVF index with codes keeps its rows under `vectors="disk"`
//! and `vectors="mmap"`.
//!
//! Such an index codes its lists (`quantization="rabitq"` or `"binary"`) and needs a
//! row only to score it exactly: the rows whose code's bound lets them through, a few
//! per probed list. So the rows of the last seal stay in the seal's live-rows vector
//! file, and a list keeps, per position, a *location* instead of the row: a row of that
//! file, or — for a row written since that seal — a row of a small heap buffer. The
//! index takes the next seal's file in the same way ([`super::IvfIndex::adopt_rows`]).
//! Under `disk` searches read the file's rows with positioned reads (`pread`): the page
//! cache may hold them, the process's resident set does not; the few reads that need a
//! borrowed row (a record's vector, the recall calibration, the next seal's copy) go
//! through a mapping of the file, whose pages the seal drops again
//! ([`DiskRows::release_pages`]). Under `mmap` every read goes through the mapping (no
//! system call; the pages searches touch count as resident, and the kernel may
//! reclaim them).

use crate::segment::vectors::VectorFile;

/// A location at or above this is a heap row (`loc − HEAP`); below, a row of the file.
const HEAP: u32 = 1 << 31;

/// See the module docs.
#[derive(Debug)]
pub(super) struct DiskRows {
    dim: usize,
    file: VectorFile,
    /// `dim` floats per heap row; the rows of `free` are unused.
    heap: Vec<f32>,
    free: Vec<u32>,
    /// `vectors="mmap"`: searches read through the mapping, not with `pread`.
    mapped: bool,
}

impl DiskRows {
    /// The rows of `file` (a live-rows vector file of `dim`-float rows, mapped afresh:
    /// none of its pages resident yet), read through its mapping when `mapped`;
    /// `None` when it has too many rows to locate.
    pub(super) fn new(dim: usize, file: VectorFile, mapped: bool) -> Option<Self> {
        (file.len() < HEAP as usize && file.dim() == dim).then_some(Self {
            dim,
            file,
            heap: Vec::new(),
            free: Vec::new(),
            mapped,
        })
    }

    /// The location of row `i` of the file.
    pub(super) fn file_row(i: usize) -> u32 {
        debug_assert!(i < HEAP as usize);
        i as u32
    }

    /// Keeps `v` on the heap; its location.
    pub(super) fn store(&mut self, v: &[f32]) -> u32 {
        let d = self.dim;
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.heap.resize(self.heap.len() + d, 0.0);
                (self.heap.len() / d.max(1) - 1) as u32
            }
        };
        let at = id as usize * d;
        self.heap[at..at + d].copy_from_slice(&v[..d.min(v.len())]);
        HEAP + id
    }

    /// The row at `loc` is no longer used.
    pub(super) fn release(&mut self, loc: u32) {
        if loc >= HEAP {
            self.free.push(loc - HEAP);
        }
    }

    /// The row at `loc`, borrowed: a heap row, or the file's through its mapping
    /// (which makes its page resident).
    pub(super) fn row(&self, loc: u32) -> Option<&[f32]> {
        if loc >= HEAP {
            let at = (loc - HEAP) as usize * self.dim;
            self.heap.get(at..at + self.dim)
        } else {
            self.file.row(loc as usize)
        }
    }

    /// The row at `loc` read into `out` (a positioned read for the file's rows under
    /// `disk`; through the mapping under `mmap`, or should the read fail); `None` for
    /// no such row.
    pub(super) fn read<'a>(&'a self, loc: u32, out: &'a mut Vec<f32>) -> Option<&'a [f32]> {
        if loc >= HEAP || self.mapped {
            return self.row(loc);
        }
        out.resize(self.dim, 0.0);
        if self.file.read_row(loc as usize, out) {
            Some(&out[..])
        } else {
            self.row(loc)
        }
    }

    /// The rows at `locs`, one after another (positioned reads).
    pub(super) fn gather(&self, locs: &[u32]) -> Vec<f32> {
        let mut all = Vec::with_capacity(locs.len() * self.dim);
        let mut buf = Vec::new();
        for &loc in locs {
            match self.read(loc, &mut buf) {
                Some(x) => all.extend_from_slice(x),
                None => all.resize(all.len() + self.dim, 0.0),
            }
        }
        all
    }

    /// The file's path.
    pub(super) fn path(&self) -> &std::path::Path {
        self.file.path()
    }

    /// Heap bytes held (rows written since the last seal, and the free list).
    pub(super) fn heap_bytes(&self) -> usize {
        (self.heap.capacity() + self.free.capacity()) * 4
    }

    /// Bytes of the file mapped, and the mapping's address range.
    pub(super) fn mapped(&self) -> (usize, (usize, usize)) {
        (self.file.mapped_len(), self.file.mapped_range())
    }

    /// Drops the mapping's pages from the resident set (after a seal read every row),
    /// under `disk` (under `mmap` they are the searches' working set).
    pub(super) fn release_pages(&self) {
        if !self.mapped {
            self.file.release_pages();
        }
    }
}
