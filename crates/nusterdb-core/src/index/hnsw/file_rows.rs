//! [`FileRows`]: the rows of a seal's vector files read with positioned reads, for an
//! index opened with `vectors="disk"` (`config::VectorStorage::Disk`).
//!
//! Such an index still maps the files as its row buffer (writes and the graph work
//! read through it), but its searches read the rows they re-rank or scan from the
//! files: the page cache may keep those pages, the process's resident set does not
//! (a page of a mapping counts once touched), so a search keeps only the codes
//! and the graph resident. A slot whose row the index has written since the open is
//! read from memory instead ([`FileRows::changed`]).

use std::fs::File;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::segment::vectors::read_floats;

/// One part's vector file: slots `first..end`, the row of slot `s` at byte
/// `rows_at + (s − first)·4·dim`.
#[derive(Debug)]
struct FilePart {
    file: File,
    first: usize,
    end: usize,
    rows_at: u64,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct FileRows {
    dim: usize,
    /// By first slot; each gives the slots up to the next one's first.
    parts: Vec<FilePart>,
    /// Slots below this hold in the files what the index holds (lowered by every
    /// row the index writes, never raised).
    valid_below: AtomicUsize,
}

impl FileRows {
    /// Rows of `dim` floats from `parts` — `(file, first slot, slots it gives, byte
    /// of its first slot's row)` by ascending first slot — valid below `end`.
    pub(crate) fn new(dim: usize, parts: Vec<(File, usize, usize, u64)>, end: usize) -> Self {
        Self {
            dim,
            parts: parts
                .into_iter()
                .map(|(file, first, count, rows_at)| FilePart {
                    file,
                    first,
                    end: first + count,
                    rows_at,
                })
                .collect(),
            valid_below: AtomicUsize::new(end),
        }
    }

    /// The row of `slot` has changed in memory (the files no longer hold it).
    pub(crate) fn changed(&mut self, slot: usize) {
        let v = self.valid_below.get_mut();
        *v = (*v).min(slot);
    }

    /// Reads the row of `slot` into `out` (resized to `dim`); `false` (and `out`
    /// unspecified) when the files do not hold it as the index does or the read
    /// failed — the caller then reads the index's buffer, which holds the same row.
    pub(crate) fn read(&self, slot: u32, out: &mut Vec<f32>) -> bool {
        let s = slot as usize;
        if s >= self.valid_below.load(Ordering::Relaxed) {
            return false;
        }
        let k = self.parts.partition_point(|p| p.first <= s);
        let Some(part) = k.checked_sub(1).and_then(|k| self.parts.get(k)) else {
            return false;
        };
        if s >= part.end {
            return false;
        }
        out.resize(self.dim, 0.0);
        let at = part.rows_at + ((s - part.first) * self.dim * 4) as u64;
        read_floats(&part.file, at, out)
    }
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_from_their_part_until_changed() {
        let dir = tempfile::tempdir().unwrap();
        let dim = 3;
        let mut parts = Vec::new();
        // Two parts: slots 0..4 (the file holds 6, the last two stale) and 4..7.
        for (k, (first, count, given)) in [(0usize, 6usize, 4usize), (4, 3, 3)]
            .into_iter()
            .enumerate()
        {
            let path = dir.path().join(format!("p{k}"));
            let mut bytes = vec![0u8; 16];
            for s in first..first + count {
                for j in 0..dim {
                    let x = (s * 10 + j) as f32 + if s >= first + given { 0.5 } else { 0.0 };
                    bytes.extend_from_slice(&x.to_le_bytes());
                }
            }
            std::fs::write(&path, bytes).unwrap();
            parts.push((File::open(&path).unwrap(), first, given, 16));
        }
        let mut rows = FileRows::new(dim, parts, 7);
        let mut out = Vec::new();
        for s in 0..7u32 {
            assert!(rows.read(s, &mut out), "slot {s}");
            let want: Vec<f32> = (0..dim).map(|j| (s as usize * 10 + j) as f32).collect();
            assert_eq!(out, want, "slot {s}");
        }
        assert!(!rows.read(7, &mut out));
        rows.changed(5);
        assert!(rows.read(4, &mut out));
        assert!(!rows.read(5, &mut out) && !rows.read(6, &mut out));
    }
}
