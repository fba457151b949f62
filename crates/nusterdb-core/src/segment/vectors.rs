//! The vector file of a seal: its rows, written once, then memory-mapped.
//!
//! A sealed file's rows are never rewritten, so they need no heap copy: the file is
//! mapped and the page cache holds the rows (a second open, a snapshot's hard link and
//! a follower share those pages). Three layouts:
//! - version 3, a part by slot ([`Layout::Slots`], HNSW; flat as one part from slot
//!   0 while at least half its slots are live): the rows of slots
//!   `first..first + count` exactly as the index keeps them in memory — `dim` floats
//!   per slot, back to back from byte 65,536 —, so the index maps the files of a
//!   seal's parts side by side as its row buffer (`index::region`) and reads nothing at
//!   open. A seal writes only the part its changes touched (`db/seal.rs`); the rows
//!   start on a 64 KiB boundary (the largest page size in use) so that a part can be
//!   mapped right after the one before it;
//! - version 2, by slot from slot 0, the rows 64 bytes in (seals of earlier builds:
//!   still mapped, as one part);
//! - version 1, live rows ([`Layout::Live`]: IVF, whose lists file follows this order;
//!   flat below half its slots live, and flat seals of earlier builds — copied at open):
//!   the live slots' rows only, so the file shrinks with removals.
//!
//! # Format (little-endian)
//! ```text
//! header   64 B   magic "NDBVECT\0", version u32, dim u32, count u64,
//!                 stride u32 (bytes per row), block_rows u32,
//!                 first u64 (version 3: the slot of row 0; else 0),
//!                 16 reserved zero bytes, CRC-32 of the 60 bytes before it
//! padding  version 3: zeros up to byte 65,536
//! rows     count · stride B, row i at rows_at + i·stride (rows_at: 65,536 for
//!          version 3, 64 before)
//! trailer  one CRC-32 per block of block_rows rows (the last may be short),
//!          the CRC-32 of those CRCs, magic "NDBVEND\0"
//! ```
//! - Versions 3 and 2 ([`Layout::Slots`]): row `i` is slot `first + i` (a slot without
//!   a live vector holds zeros or a removed vector the graph still routes through);
//!   stride `4·dim`.
//! - Version 1 ([`Layout::Live`]): row `i` is the `i`-th live slot, ascending; stride
//!   `4·dim` rounded up to 64, padding zero (what every seal of the first builds with
//!   seals wrote, HNSW's too: those are still read, their rows copied).
//!
//! Opening checks what costs nothing per row: the header and its CRC, the file length
//! against dim, count and stride, the padding, the trailer's magic and CRC. The rows' block CRCs are
//! checked by [`VectorFile::verify`] (in parallel). A file is written whole to a
//! temporary name, fsync'd and renamed (`storage::fileio::write_atomic`): it exists
//! complete or not at all.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::index::region::{Piece, Region};
use crate::storage::fileio::{le_u32, le_u64, write_atomic, FileIo};

/// First bytes of a vector file.
pub const MAGIC: [u8; 8] = *b"NDBVECT\0";
/// Last bytes of a vector file (a truncated file lacks them).
pub const END_MAGIC: [u8; 8] = *b"NDBVEND\0";
/// The newest format (this build writes 1 and 3 and reads 1 to 3).
pub const FORMAT_VERSION: u32 = 3;
/// Bytes of the header.
pub const HEADER_LEN: usize = 64;
/// Where a version-3 file's rows start: a page boundary for every page size in use
/// (4 KiB on x86-64, 16 KiB on Apple silicon, up to 64 KiB on other arm64 systems).
pub const PART_ROWS_AT: usize = 1 << 16;

/// Where the rows of a file of `version` start.
pub fn rows_at(version: u32) -> usize {
    if version >= 3 {
        PART_ROWS_AT
    } else {
        HEADER_LEN
    }
}

/// The slots a part may start at are the multiples of this: there both the part's rows
/// (`4·dim` bytes a slot) and its codes (`code_bytes` a slot; 0 for none) start on a
/// 64 KiB boundary of the index's buffers, so parts map side by side.
pub fn part_granule(dim: usize, code_bytes: usize) -> usize {
    // Slots of `bytes` each until a multiple of 64 KiB: 64 KiB over the largest power
    // of two dividing `bytes` (all powers of two, so the larger is the multiple of both).
    let granule = |bytes: usize| {
        let pow2 = 1usize << bytes.trailing_zeros().min(16);
        (PART_ROWS_AT / pow2).max(1)
    };
    let codes = if code_bytes == 0 {
        1
    } else {
        granule(code_bytes)
    };
    granule(4 * dim).max(codes)
}
/// Rows per checksummed block: 4,096 rows of 384 floats is 6 MiB, small enough that
/// a damaged block is found without reading the file twice, large enough that the
/// trailer stays tiny.
pub const BLOCK_ROWS: u32 = 4096;

/// What row `i` of a vector file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Version 1: the `i`-th live slot (ascending), rows padded to 64 bytes.
    Live,
    /// Version 2: slot `i`, rows back to back as the index holds them.
    Slots,
}

/// Bytes one row of `dim` floats takes in a file of `version`.
pub fn stride_bytes(version: u32, dim: usize) -> usize {
    if version == 1 {
        dim.div_ceil(16) * 64
    } else {
        dim * 4
    }
}

/// Writes `rows` (`count · dim` floats, row-major; row `i` is slot `i`) as the vector
/// file at `path`, atomically (see the module docs).
///
/// # Errors
/// [`Error::InvalidArgument`] when `rows` is not a whole number of rows of a non-zero
/// `dim`; [`Error::Io`] naming the file.
pub fn write(io: &dyn FileIo, path: &Path, dim: usize, rows: &[f32]) -> Result<()> {
    if dim == 0 || !rows.len().is_multiple_of(dim) {
        return Err(Error::InvalidArgument(format!(
            "a vector file needs whole rows of a non-zero dimension: {} floats, dim {dim}",
            rows.len()
        )));
    }
    write_slots(io, path, dim, rows.len() / dim, |i| {
        rows.get(i * dim..(i + 1) * dim)
    })
}

/// Writes the rows of slots `first..first + count` (`dim` floats each) as the vector
/// file (version 3) at `path`, atomically: row `i` is `row(first + i)`, or zeros where
/// it is `None`.
///
/// # Errors
/// [`Error::InvalidArgument`] for a zero `dim` or a row of another length;
/// [`Error::Io`] naming the file.
pub fn write_part<'a>(
    io: &dyn FileIo,
    path: &Path,
    dim: usize,
    first: usize,
    count: usize,
    row: impl Fn(usize) -> Option<&'a [f32]>,
) -> Result<()> {
    write_version(io, path, FORMAT_VERSION, dim, first, count, |i| {
        row(first + i)
    })
}

/// Writes `count` slots' rows from slot 0 ([`write_part`] with `first` 0).
///
/// # Errors
/// As [`write_part`].
pub fn write_slots<'a>(
    io: &dyn FileIo,
    path: &Path,
    dim: usize,
    count: usize,
    row: impl Fn(usize) -> Option<&'a [f32]>,
) -> Result<()> {
    write_part(io, path, dim, 0, count, row)
}

/// Writes the version-1 file of `count` live rows: row `i` is `row(i)` (the `i`-th live
/// slot's vector), or zeros where it is `None`.
///
/// # Errors
/// As [`write_slots`].
pub fn write_live_rows<'a>(
    io: &dyn FileIo,
    path: &Path,
    dim: usize,
    count: usize,
    row: impl Fn(usize) -> Option<&'a [f32]>,
) -> Result<()> {
    write_version(io, path, 1, dim, 0, count, row)
}

fn write_version<'a>(
    io: &dyn FileIo,
    path: &Path,
    version: u32,
    dim: usize,
    first: usize,
    count: usize,
    row: impl Fn(usize) -> Option<&'a [f32]>,
) -> Result<()> {
    if dim == 0 {
        return Err(Error::InvalidArgument(
            "a vector file needs a non-zero dimension".into(),
        ));
    }
    let stride = stride_bytes(version, dim);
    let (dim32, stride32) = match (u32::try_from(dim), u32::try_from(stride)) {
        (Ok(d), Ok(s)) => (d, s),
        _ => {
            return Err(Error::InvalidArgument(format!(
                "dimension {dim} is too large for a vector file"
            )))
        }
    };
    let header = encode_header(version, dim32, count as u64, stride32, first as u64);
    write_atomic(io, path, |w| {
        w.write_all(&header)?;
        w.write_all(&vec![0u8; rows_at(version) - HEADER_LEN])?;
        let mut crcs = Vec::with_capacity(count.div_ceil(BLOCK_ROWS as usize));
        let mut buf = vec![0u8; stride];
        let mut block = crc32fast::Hasher::new();
        for i in 0..count {
            let r = row(i);
            if r.is_some_and(|r| r.len() != dim) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("row {i} of a vector file is not {dim} floats long"),
                ));
            }
            buf[..dim * 4].fill(0);
            for (out, x) in buf.chunks_exact_mut(4).zip(r.unwrap_or(&[])) {
                out.copy_from_slice(&x.to_le_bytes());
            }
            w.write_all(&buf)?;
            block.update(&buf);
            if (i + 1) % BLOCK_ROWS as usize == 0 || i + 1 == count {
                crcs.push(std::mem::take(&mut block).finalize());
            }
        }
        write_trailer(w, &crcs)
    })
}

fn encode_header(version: u32, dim: u32, count: u64, stride: u32, first: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&version.to_le_bytes());
    h[12..16].copy_from_slice(&dim.to_le_bytes());
    h[16..24].copy_from_slice(&count.to_le_bytes());
    h[24..28].copy_from_slice(&stride.to_le_bytes());
    h[28..32].copy_from_slice(&BLOCK_ROWS.to_le_bytes());
    h[32..40].copy_from_slice(&first.to_le_bytes());
    let crc = crc32fast::hash(&h[..60]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h
}

fn write_trailer(w: &mut dyn Write, crcs: &[u32]) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(crcs.len() * 4 + 12);
    for c in crcs {
        bytes.extend_from_slice(&c.to_le_bytes());
    }
    let all = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&all.to_le_bytes());
    bytes.extend_from_slice(&END_MAGIC);
    w.write_all(&bytes)
}

/// An opened (memory-mapped) vector file. Rows are read in place from the mapping.
#[derive(Debug)]
pub struct VectorFile {
    path: PathBuf,
    /// Kept to map the rows privately as an index's buffer.
    file: File,
    map: Mmap,
    version: u32,
    dim: usize,
    /// The slot of row 0 (version 3; else 0).
    first: usize,
    count: usize,
    /// Byte of the file where row 0 starts.
    rows_at: usize,
    /// Floats per row in the file (the stride in floats).
    stride: usize,
    block_rows: usize,
}

impl VectorFile {
    /// Maps the vector file at `path` and checks its header, length and trailer.
    ///
    /// The file must not be changed while it is mapped; NusterDB never changes a
    /// vector file once written (it is replaced by a new name, never in place).
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be opened or mapped; [`Error::Corruption`] naming
    /// the file and what is wrong; [`Error::InvalidArgument`] on a big-endian CPU (the
    /// rows are read in place as little-endian floats).
    pub fn open(path: &Path) -> Result<VectorFile> {
        if cfg!(target_endian = "big") {
            return Err(Error::InvalidArgument(
                "memory-mapped vector files need a little-endian CPU".into(),
            ));
        }
        let io_err = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        // SAFETY: the file is NusterDB's own, written once and never modified in place
        // (see the module docs); a mapping of it stays valid while `map` lives.
        let map = unsafe { Mmap::map(&file) }.map_err(io_err)?;
        let corrupt = |detail: String| Error::Corruption {
            path: path.to_path_buf(),
            detail,
        };
        let b = &map[..];
        if b.len() < HEADER_LEN + 12 {
            return Err(corrupt(format!(
                "vector file of {} bytes is shorter than its header and trailer",
                b.len()
            )));
        }
        if b[0..8] != MAGIC {
            return Err(corrupt("not a vector file (bad magic)".into()));
        }
        if crc32fast::hash(&b[..60]) != le_u32(b, 60) {
            return Err(corrupt("vector file header checksum mismatch".into()));
        }
        let version = le_u32(b, 8);
        if !(1..=FORMAT_VERSION).contains(&version) {
            return Err(corrupt(format!(
                "vector file format {version} not supported (this build reads 1 to \
                 {FORMAT_VERSION})"
            )));
        }
        let dim = le_u32(b, 12) as usize;
        let count = le_u64(b, 16);
        let stride = le_u32(b, 24) as usize;
        let block_rows = le_u32(b, 28) as usize;
        let first = le_u64(b, 32);
        if dim == 0
            || stride != stride_bytes(version, dim)
            || block_rows == 0
            || (version < 3 && first != 0)
        {
            return Err(corrupt(format!(
                "vector file header is inconsistent: dim {dim}, stride {stride}, \
                 block rows {block_rows}"
            )));
        }
        let count = usize::try_from(count).map_err(|_| corrupt("row count overflows".into()))?;
        let first = usize::try_from(first)
            .ok()
            .filter(|f| {
                f.checked_add(count)
                    .is_some_and(|e| e <= u32::MAX as usize + 1)
            })
            .ok_or_else(|| corrupt(format!("first slot {first} out of range")))?;
        let rows_at = rows_at(version);
        let blocks = count.div_ceil(block_rows);
        let expected = count
            .checked_mul(stride)
            .and_then(|r| r.checked_add(rows_at + blocks * 4 + 12));
        if expected != Some(b.len()) {
            return Err(corrupt(format!(
                "vector file is {} bytes, its header says {count} rows of {dim} \
                 (truncated or extended)",
                b.len()
            )));
        }
        if b[b.len() - 8..] != END_MAGIC {
            return Err(corrupt("vector file trailer magic missing".into()));
        }
        if b[HEADER_LEN..rows_at].iter().any(|&x| x != 0) {
            return Err(corrupt(
                "vector file padding before the rows is not zero".into(),
            ));
        }
        let crcs = &b[b.len() - 12 - blocks * 4..b.len() - 12];
        if crc32fast::hash(crcs) != le_u32(b, b.len() - 12) {
            return Err(corrupt("vector file block checksums are damaged".into()));
        }
        Ok(VectorFile {
            path: path.to_path_buf(),
            file,
            map,
            version,
            dim,
            first,
            count,
            rows_at,
            stride: stride / 4,
            block_rows,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Floats per vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The slot of row 0 (0 but for a part of a seal, version 3).
    pub fn first(&self) -> usize {
        self.first
    }

    /// Rows in the file.
    pub fn len(&self) -> usize {
        self.count
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// What row `i` is (by the file's version).
    pub fn layout(&self) -> Layout {
        if self.version == 1 {
            Layout::Live
        } else {
            Layout::Slots
        }
    }

    /// Floats from one row's start to the next's (the row plus any zero padding).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Every row with any padding, as floats: row `i` at `i · stride()`.
    pub fn padded_rows(&self) -> &[f32] {
        let bytes = &self.map[self.rows_at..self.rows_at + self.count * self.stride * 4];
        // SAFETY: every bit pattern is a valid f32; `align_to` only yields the
        // correctly aligned middle part. The mapping is page-aligned and the rows start
        // 64 or 65,536 bytes in, so there is no prefix or suffix (checked below).
        let (head, floats, tail) = unsafe { bytes.align_to::<f32>() };
        if !head.is_empty() || !tail.is_empty() {
            return &[];
        }
        floats
    }

    /// Row `i` (`dim` floats), or `None` past the end.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        (i < self.count).then(|| {
            let at = i * self.stride;
            &self.padded_rows()[at..at + self.dim]
        })
    }

    /// Checks every block of rows against its CRC (reads the whole file, the blocks
    /// in parallel).
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the first damaged block and its rows.
    pub fn verify(&self) -> Result<()> {
        let row_bytes = self.stride * 4;
        let rows = &self.map[self.rows_at..self.rows_at + self.count * row_bytes];
        let blocks = self.count.div_ceil(self.block_rows);
        let crcs_at = self.map.len() - 12 - blocks * 4;
        let damaged = rows
            .par_chunks(self.block_rows * row_bytes)
            .enumerate()
            .find_first(|(k, block)| crc32fast::hash(block) != le_u32(&self.map, crcs_at + 4 * k));
        match damaged {
            None => Ok(()),
            Some((k, _)) => {
                let first = k * self.block_rows;
                let last = (first + self.block_rows).min(self.count) - 1;
                Err(Error::Corruption {
                    path: self.path.clone(),
                    detail: format!("vector file rows {first}..={last} fail their checksum"),
                })
            }
        }
    }

    /// The same file under a mapping of its own, none of whose pages are resident yet
    /// (this one's may be: `verify` reads every row through it).
    ///
    /// # Errors
    /// Reopening or mapping the file fails.
    pub(crate) fn remapped(&self) -> io::Result<VectorFile> {
        let file = self.file.try_clone()?;
        // SAFETY: as in `open`: the file is never modified in place.
        let map = unsafe { Mmap::map(&file) }?;
        Ok(VectorFile {
            path: self.path.clone(),
            file,
            map,
            ..*self
        })
    }

    /// Reads row `i` into `out` (`dim` floats) with a positioned read of the file, not
    /// through the mapping: the page cache may keep the page, the process's resident
    /// set does not grow. `false` past the end or when the read fails.
    pub(crate) fn read_row(&self, i: usize, out: &mut [f32]) -> bool {
        if i >= self.count || out.len() != self.dim {
            return false;
        }
        let at = (self.rows_at + i * self.stride * 4) as u64;
        read_floats(&self.file, at, out)
    }

    /// The address range of the mapping.
    pub(crate) fn mapped_range(&self) -> (usize, usize) {
        let start = self.map.as_ptr() as usize;
        (start, start + self.map.len())
    }

    /// Bytes mapped.
    pub(crate) fn mapped_len(&self) -> usize {
        self.map.len()
    }

    /// Drops the mapping's pages from the process's resident set (the file keeps
    /// them; a later read through the mapping faults them in again).
    pub(crate) fn release_pages(&self) {
        // SAFETY: a read-only shared mapping of a file never modified in place: after
        // MADV_DONTNEED its pages read back the file's bytes, unchanged. A failure only
        // leaves the pages resident.
        #[cfg(unix)]
        let _ = unsafe {
            self.map
                .unchecked_advise(memmap2::UncheckedAdvice::DontNeed)
        };
    }

    /// The rows of slots `from..to` (inside this file's, by slot) as a piece of an
    /// index's row buffer.
    fn piece(&self, from: usize, to: usize) -> Piece<'_> {
        let row = self.stride * 4;
        let at = self.rows_at + (from - self.first) * row;
        Piece {
            file: &self.file,
            offset: at,
            bytes: &self.map[at..at + (to - from) * row],
        }
    }
}

/// Reads `out.len()` little-endian floats at byte `at` of `file` (positioned: no
/// seek); `false` when the read fails.
#[cfg(unix)]
pub(crate) fn read_floats(file: &File, at: u64, out: &mut [f32]) -> bool {
    use std::os::unix::fs::FileExt;
    // SAFETY: the bytes of `out` are initialised floats, every bit pattern of which is
    // a valid f32; the byte view lives only for this call, with `out` borrowed mutably.
    let bytes =
        unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), out.len() * 4) };
    // The files are little-endian (`VectorFile::open` refuses big-endian CPUs).
    file.read_exact_at(bytes, at).is_ok()
}

#[cfg(not(unix))]
pub(crate) fn read_floats(_file: &File, _at: u64, _out: &mut [f32]) -> bool {
    // `vectors="disk"` is refused off unix (`DatabaseConfig::validate`).
    false
}

/// The rows of a seal's parts (slot-ordered files by ascending `first`, the first
/// from slot 0) as an index's row buffer: each part gives the slots from its `first`
/// to the next part's, the last all of its own. With `map`, mapped side by side in
/// place (`index::region`) with address space for `room` more bytes, or copied where
/// they cannot be; copied without; `None` when a file is not laid out by slot or the
/// parts leave a gap.
///
/// # Errors
/// A failed `mmap`.
pub(crate) fn map_rows(
    parts: &[VectorFile],
    room: usize,
    map: bool,
) -> io::Result<Option<crate::index::Rows>> {
    let bounds = part_bounds(parts.iter().map(|f| (f.first(), f.first() + f.len())));
    let Some(bounds) = bounds else {
        return Ok(None);
    };
    if parts.iter().any(|f| f.layout() != Layout::Slots) {
        return Ok(None);
    }
    let pieces: Vec<Piece<'_>> = parts
        .iter()
        .zip(&bounds)
        .map(|(f, &(from, to))| f.piece(from, to))
        .collect();
    let region = Region::of_files(&pieces, room, map)?;
    Ok(Some(crate::index::Rows::from_region(region)))
}

/// A part's rows for positioned reads: its file, first slot, slots, byte of the first.
pub(crate) type RowRead = (File, usize, usize, u64);

/// For each of a seal's parts, what a positioned read of its rows needs: its file
/// (opened again), the first slot, how many slots it gives (up to the next part's
/// first), the byte of its first row; `None` as for [`map_rows`].
///
/// # Errors
/// Reopening a file fails.
pub(crate) fn row_reads(parts: &[VectorFile]) -> io::Result<Option<Vec<RowRead>>> {
    let bounds = part_bounds(parts.iter().map(|f| (f.first(), f.first() + f.len())));
    let Some(bounds) = bounds else {
        return Ok(None);
    };
    if parts.iter().any(|f| f.layout() != Layout::Slots) {
        return Ok(None);
    }
    parts
        .iter()
        .zip(&bounds)
        .map(|(f, &(from, to))| Ok((f.file.try_clone()?, from, to - from, f.rows_at as u64)))
        .collect::<io::Result<Vec<_>>>()
        .map(Some)
}

/// Opens the vector files of a seal's parts (`paths`, by ascending first slot; `firsts`
/// the parts' first slots as the seal records them), each checked to hold the slots
/// from its part's first.
///
/// # Errors
/// The first file that cannot be opened, is damaged or holds other slots, as a
/// message naming it.
pub fn open_parts(
    paths: &[PathBuf],
    firsts: impl IntoIterator<Item = u64>,
) -> std::result::Result<Vec<VectorFile>, String> {
    let shown = |p: &Path, e: &dyn std::fmt::Display| format!("{}: {e}", p.display());
    paths
        .iter()
        .zip(firsts)
        .map(|(p, first)| {
            let vf = VectorFile::open(p).map_err(|e| shown(p, &e))?;
            if vf.first() as u64 != first {
                let held = vf.first();
                return Err(shown(
                    p,
                    &format!("holds slots from {held}, the seal's part from {first}"),
                ));
            }
            Ok(vf)
        })
        .collect()
}

/// The slots each of the parts `(first, end)` gives (each from its `first` to the next
/// part's, the last to its own end), or `None` unless they start at slot 0 and follow
/// one another without a gap (each reaching at least to where the next starts).
pub fn part_bounds(parts: impl Iterator<Item = (usize, usize)>) -> Option<Vec<(usize, usize)>> {
    let parts: Vec<(usize, usize)> = parts.collect();
    if parts.first().is_none_or(|&(first, _)| first != 0) {
        return None;
    }
    let mut out = Vec::with_capacity(parts.len());
    for (i, &(first, end)) in parts.iter().enumerate() {
        let to = parts.get(i + 1).map_or(end, |&(next, _)| next);
        if to < first || to > end {
            return None;
        }
        out.push((first, to));
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::storage::fileio::{FaultMode, FaultyIo, OsIo};
    use proptest::prelude::*;

    fn rows(count: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = crate::rng::SplitMix64::new(seed);
        (0..count * dim)
            .map(|_| rng.next_gaussian() as f32)
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Rows come back bit for bit, aligned, padding zero, for any shape, in both
        /// versions; a version-2 file maps as a row buffer holding the same rows.
        #[test]
        fn rows_round_trip(
            dim in 1usize..70,
            count in 0usize..40,
            seed in any::<u64>(),
            version in 1u32..=3,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("v.bin");
            let data = rows(count, dim, seed);
            write_version(&OsIo, &p, version, dim, 0, count, |i| data.get(i * dim..(i + 1) * dim))
                .unwrap();
            let f = VectorFile::open(&p).unwrap();
            prop_assert_eq!((f.dim(), f.len()), (dim, count));
            prop_assert_eq!(f.stride() * 4, stride_bytes(version, dim));
            prop_assert_eq!(f.layout() == Layout::Live, version == 1);
            prop_assert_eq!(f.padded_rows().as_ptr() as usize % 64, 0);
            let mapped = map_rows(std::slice::from_ref(&f), 4096, true).unwrap();
            prop_assert_eq!(mapped.is_some(), version >= 2);
            if let Some(m) = mapped {
                let floats = m.as_slice();
                prop_assert!(floats.len() >= count * dim && floats.len() % 16 == 0);
                prop_assert!(floats[..count * dim].iter().zip(&data)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
                prop_assert!(floats[count * dim..].iter().all(|&x| x == 0.0));
            }
            for i in 0..count {
                let got = f.row(i).unwrap();
                prop_assert!(got.iter().zip(&data[i * dim..(i + 1) * dim])
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
                let pad = &f.padded_rows()[i * f.stride() + dim..(i + 1) * f.stride()];
                prop_assert!(pad.iter().all(|&x| x == 0.0));
            }
            prop_assert!(f.row(count).is_none());
            f.verify().unwrap();
        }
    }

    /// Parts map side by side as one buffer where each starts the later part's rows
    /// (older parts' rows past the next part's start are not used), in place when their
    /// cuts fall on the granule, copied when they do not; gaps are refused.
    #[test]
    fn parts_make_one_row_buffer() {
        for (dim, cuts, mapped) in [
            (1024, vec![0usize, 64, 192], true),
            (3, vec![0, 10, 17], false),
        ] {
            assert_eq!(part_granule(dim, dim) == 64, mapped);
            let dir = tempfile::tempdir().unwrap();
            let end = cuts[cuts.len() - 1] + 5;
            let mut want = vec![0f32; end * dim];
            let mut files = Vec::new();
            for (k, &first) in cuts.iter().enumerate() {
                // Each part reaches 5 slots past the next one's start (stale there).
                let count = cuts.get(k + 1).map_or(end, |&n| n + 5) - first;
                let data = rows(count, dim, k as u64);
                let to = cuts.get(k + 1).copied().unwrap_or(end);
                want[first * dim..to * dim].copy_from_slice(&data[..(to - first) * dim]);
                let p = dir.path().join(format!("p{k}"));
                write_part(&OsIo, &p, dim, first, count, |s| {
                    data.get((s - first) * dim..(s - first + 1) * dim)
                })
                .unwrap();
                let f = VectorFile::open(&p).unwrap();
                assert_eq!((f.first(), f.len()), (first, count));
                f.verify().unwrap();
                files.push(f);
            }
            let got = map_rows(&files, 1 << 20, true).unwrap().unwrap();
            assert_eq!(got.mapped_bytes() > 0, mapped && cfg!(unix), "dim {dim}");
            let floats = got.as_slice();
            assert!(floats[..end * dim]
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            assert!(floats[end * dim..].iter().all(|&x| x == 0.0));
            // Without the first part, or with a gap, there is no buffer.
            let copied = map_rows(&files, 0, false).unwrap().unwrap();
            assert_eq!(copied.mapped_bytes(), 0);
            assert_eq!(&copied.as_slice()[..end * dim], &floats[..end * dim]);
            assert!(map_rows(&files[1..], 0, true).unwrap().is_none());
            let gap = [files.remove(0), files.pop().unwrap()];
            assert!(map_rows(&gap, 0, true).unwrap().is_none());
        }
    }

    #[test]
    fn rows_span_several_checksummed_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.bin");
        let n = BLOCK_ROWS as usize * 2 + 3;
        let data = rows(n, 3, 1);
        write(&OsIo, &p, 3, &data).unwrap();
        let f = VectorFile::open(&p).unwrap();
        f.verify().unwrap();
        assert_eq!(f.row(n - 1).unwrap(), &data[(n - 1) * 3..]);
        drop(f);
        // A flipped bit in the last, short block is found by verify, named by rows.
        let mut bytes = std::fs::read(&p).unwrap();
        let at = PART_ROWS_AT + (n - 1) * stride_bytes(FORMAT_VERSION, 3) + 5;
        bytes[at] ^= 0x10;
        std::fs::write(&p, &bytes).unwrap();
        let f = VectorFile::open(&p).unwrap();
        let e = f.verify().unwrap_err().to_string();
        assert!(
            e.contains(&format!("rows {}..={}", 2 * BLOCK_ROWS, n - 1)),
            "{e}"
        );
    }

    #[test]
    fn damage_outside_the_rows_is_found_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.bin");
        write(&OsIo, &p, 5, &rows(10, 5, 2)).unwrap();
        let good = std::fs::read(&p).unwrap();
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("truncated", good[..good.len() - 1].to_vec()),
            ("extended", [&good[..], &[0u8]].concat()),
            (
                "no trailer",
                good[..PART_ROWS_AT + 10 * stride_bytes(FORMAT_VERSION, 5)].to_vec(),
            ),
        ];
        for at in [
            0usize,
            9,
            13,
            17,
            25,
            29,
            33,
            61,
            good.len() - 1,
            good.len() - 10,
        ] {
            let mut b = good.clone();
            b[at] ^= 0x01;
            cases.push(("flipped byte", b));
        }
        for (what, bytes) in cases {
            std::fs::write(&p, &bytes).unwrap();
            match VectorFile::open(&p) {
                Err(Error::Corruption { detail, .. }) => assert!(!detail.is_empty()),
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_shapes_are_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.bin");
        assert!(matches!(
            write(&OsIo, &p, 0, &[]),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            write(&OsIo, &p, 3, &[1.0; 4]),
            Err(Error::InvalidArgument(_))
        ));
        assert!(!p.exists());
    }

    /// A write that fails at any single operation leaves the previous file whole.
    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.bin");
        let old = rows(7, 4, 3);
        let new = rows(9, 4, 4);
        write(&OsIo, &p, 4, &old).unwrap();
        for mode in [FaultMode::Once, FaultMode::Persistent] {
            let mut n = 1;
            loop {
                let io = FaultyIo::new(n, mode, io::ErrorKind::Other);
                let done = write(&io, &p, 4, &new);
                let f = VectorFile::open(&p).unwrap();
                f.verify().unwrap();
                let got: Vec<f32> = (0..f.len())
                    .flat_map(|i| f.row(i).unwrap().to_vec())
                    .collect();
                // A failed directory sync comes after the rename: then the new file
                // is in place although the write reports the error.
                assert!(got == old || got == new, "fault at {n}: neither file");
                if done.is_ok() {
                    assert_eq!(got, new, "fault at {n}");
                }
                if done.is_ok() && !io.has_failed() {
                    break;
                }
                write(&OsIo, &p, 4, &old).unwrap();
                n += 1;
            }
            assert!(n > 3, "the write has several operations to fail");
        }
    }
}
