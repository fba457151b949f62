//! The codes file of a seal (`segment-<id>.codes`): what an open would otherwise
//! recompute from every row — the 8-, 4- or 1-bit codes (`quant.rs`, `rabitq.rs`), their per-slot terms, the
//! centre they are coded against and, for cosine and angular, the rows' inverse norms.
//! With it and the slot-ordered vector file, an open of an HNSW index touches no row:
//! the code bytes are mapped in place (`index::region`) like the rows.
//!
//! A seal writes the codes of the slots its changes touched as one part
//! (`first..first + slots`, like the vector file's parts, `segment::vectors`); an open
//! maps the parts' code bytes side by side as one buffer.
//!
//! # Format (version 5, little-endian)
//! ```text
//! header    64 B  magic "NDBCODE\0", version u32, dim u32, slots u64, centred_at u64,
//!                 flags u32 (bit 0: inverse norms present), block_slots u32,
//!                 first u64 (version ≥ 2: the slot of the first code; else 0),
//!                 bits u32 (version ≥ 3: 8, 4 or 1 — RaBitQ; else 8),
//!                 centroids u32 (version ≥ 4: RaBitQ's centroid count k; else 0),
//!                 rotated u32 (version 5: the rotated dimension P of 1-bit codes;
//!                 else 0 — earlier versions had only `rabitq`'s, the power of two
//!                 above dim),
//!                 CRC-32 of the 60 bytes before it
//! centre    dim f32
//! centroids k × dim f32
//! terms     slots × [a, b, Σc, b²Σc²] f32 (RaBitQ: ‖x'‖, 1/⟨x̄, o⟩, ones and centroid,
//!           ‖x'‖² plus the centroid's term — `rabitq.rs`)
//! inv_norm  slots f32 (flag bit 0)
//! CRC-32 of centre, terms and inverse norms
//! padding   zeros to a multiple of 65,536 bytes (version 1: of 64)
//! codes     slots × stride bytes (slot first + s at codes + s·stride; stride = dim
//!           for 8 bits, 32·⌈dim/64⌉ for 4 bits, packed as `quant.rs` says; P/8 for 1
//!           bit, P the rotated dimension)
//! trailer   one CRC-32 per block of block_slots slots' codes, the CRC-32 of those,
//!           magic "NDBCEND\0"
//! ```
//! Every checksum is verified when the file is read (the code blocks in parallel): the
//! file is about a quarter of the vector file's size, and damaged codes would send a
//! search down the wrong paths.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use rayon::prelude::*;

use super::persist::put_all;
use super::quant::Codes;
use super::{HnswIndex, Kind};
use crate::config::Quantization;
use crate::index::region::{Piece, Region};
use crate::storage::fileio::{le_u32, le_u64, CrcWriter};

/// First bytes of a codes file.
pub const MAGIC: [u8; 8] = *b"NDBCODE\0";
/// Last bytes of a codes file.
pub const END_MAGIC: [u8; 8] = *b"NDBCEND\0";
/// The format this build writes (it reads 1 to 5).
pub const VERSION: u32 = 5;
/// Where version 2 places the codes: a multiple of this (see `segment::vectors`).
const CODES_ALIGN: usize = crate::segment::vectors::PART_ROWS_AT;
const HEADER_LEN: usize = 64;
/// Slots per checksummed block of codes (4,096 slots of 384 dims: 1.5 MiB).
const BLOCK_SLOTS: usize = 4096;
const FLAG_INV_NORM: u32 = 1;

/// What a codes file holds, ready to be put into an index.
pub(super) struct SealedCodes {
    pub(super) codes: Codes,
    /// Per slot 1/‖x‖ (cosine and angular), else empty.
    pub(super) inv_norm: Vec<f32>,
}

impl HnswIndex {
    /// Whether this index keeps codes (and a seal writes a codes file for it).
    pub fn has_codes(&self) -> bool {
        self.codes.is_some()
    }

    /// Writes the codes file of slots `first..end` (`end` at most the graph file's slot
    /// count; slots past the index's arrays are written as zeros). Nothing for an index
    /// without codes.
    ///
    /// # Errors
    /// I/O errors from `out`.
    pub fn write_codes(&self, out: &mut dyn Write, first: usize, end: usize) -> io::Result<()> {
        let Some(c) = &self.codes else {
            return Ok(());
        };
        let dim = self.dim;
        let stride = c.stride;
        let slots = end.saturating_sub(first);
        let cos = self.space.kind == Kind::Cos;
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        // dim ≤ 65,536 (the config's range).
        h[12..16].copy_from_slice(&(dim as u32).to_le_bytes());
        h[16..24].copy_from_slice(&(slots as u64).to_le_bytes());
        h[24..32].copy_from_slice(&c.centred_at.to_le_bytes());
        let flags = if cos { FLAG_INV_NORM } else { 0 };
        h[32..36].copy_from_slice(&flags.to_le_bytes());
        h[36..40].copy_from_slice(&(BLOCK_SLOTS as u32).to_le_bytes());
        h[40..48].copy_from_slice(&(first as u64).to_le_bytes());
        h[48..52].copy_from_slice(&c.quant.bits().to_le_bytes());
        // At most rabitq::MAX_CENTROIDS.
        let k = c.centroid_count();
        h[52..56].copy_from_slice(&(k as u32).to_le_bytes());
        let p = c.rotation.as_ref().map_or(0, |r| r.padded());
        h[56..60].copy_from_slice(&(p as u32).to_le_bytes());
        let crc = crc32fast::hash(&h[..60]);
        h[60..64].copy_from_slice(&crc.to_le_bytes());
        out.write_all(&h)?;

        let range = first..first + slots;
        let mut w = CrcWriter::new(&mut *out);
        put_all(&mut w, c.center.iter().copied(), f32::to_le_bytes)?;
        put_all(&mut w, c.centroids.iter().copied(), f32::to_le_bytes)?;
        put_all(
            &mut w,
            range
                .clone()
                .flat_map(|s| c.affine.get(s).copied().unwrap_or([0.0; 4])),
            f32::to_le_bytes,
        )?;
        if cos {
            put_all(
                &mut w,
                range
                    .clone()
                    .map(|s| self.inv_norm.get(s).copied().unwrap_or(0.0)),
                f32::to_le_bytes,
            )?;
        }
        let (crc, out) = w.finish();
        out.write_all(&crc.to_le_bytes())?;
        let written =
            HEADER_LEN + 4 * ((1 + k) * dim + 4 * slots + if cos { slots } else { 0 }) + 4;
        out.write_all(&vec![0u8; written.next_multiple_of(CODES_ALIGN) - written])?;

        let bytes = c.bytes.as_bytes();
        let mut crcs = Vec::with_capacity(slots.div_ceil(BLOCK_SLOTS) * 4 + 12);
        let zeros = vec![0u8; BLOCK_SLOTS * stride];
        for start in range.clone().step_by(BLOCK_SLOTS) {
            let end = (start + BLOCK_SLOTS).min(range.end);
            let have = bytes.len().min(end * stride).max(start * stride);
            let (held, missing) = (&bytes[start * stride..have], end * stride - have);
            out.write_all(held)?;
            out.write_all(&zeros[..missing])?;
            let mut crc = crc32fast::Hasher::new();
            crc.update(held);
            crc.update(&zeros[..missing]);
            crcs.extend_from_slice(&crc.finalize().to_le_bytes());
        }
        let all = crc32fast::hash(&crcs);
        crcs.extend_from_slice(&all.to_le_bytes());
        crcs.extend_from_slice(&END_MAGIC);
        out.write_all(&crcs)
    }

    /// Checks the codes files of a seal's parts (`paths`, by ascending first slot) as an
    /// open reads them (every checksum, the shape of this index, `slots` slots).
    ///
    /// # Errors
    /// What is wrong, as a message naming the file.
    pub fn check_codes_file(
        &self,
        paths: &[PathBuf],
        slots: usize,
    ) -> std::result::Result<(), String> {
        self.read_codes(paths, slots, false).map(drop)
    }

    /// Reads the codes files of a seal's parts (`paths`, by ascending first slot), made
    /// for `slots` slots of this index's shape (checked: dim, the parts following one
    /// another up to `slots`, one centre, the inverse norms cosine needs, every
    /// checksum): the code bytes mapped side by side in place with room to grow
    /// (`map`), or copied.
    pub(super) fn read_codes(
        &self,
        paths: &[PathBuf],
        slots: usize,
        map: bool,
    ) -> std::result::Result<SealedCodes, String> {
        let quant = self.quantization();
        let parts = paths
            .par_iter()
            .map(|p| CodesPart::open(p, self.dim, quant, self.space.kind == Kind::Cos))
            .collect::<std::result::Result<Vec<_>, String>>()?;
        let shown = |p: &CodesPart, what: &str| format!("{}: codes file {what}", p.path.display());
        let bounds = crate::segment::vectors::part_bounds(
            parts.iter().map(|p| (p.first, p.first + p.slots)),
        );
        let (Some(bounds), Some(last)) = (bounds, parts.last()) else {
            return Err(format!(
                "{}: codes file parts do not cover the slots from 0",
                paths
                    .first()
                    .map_or(Path::new(""), |p| p.as_path())
                    .display()
            ));
        };
        if last.first + last.slots != slots {
            return Err(shown(
                last,
                &format!(
                    "ends at slot {}, the graph has {slots}",
                    last.first + last.slots
                ),
            ));
        }
        let dim = self.dim;
        let stride = quant.code_bytes(dim);
        let mut affine = Vec::with_capacity(slots);
        let mut inv_norm = Vec::new();
        let mut pieces = Vec::with_capacity(parts.len());
        for (p, &(from, to)) in parts.iter().zip(&bounds) {
            if (p.center(), p.centred_at, p.centroids())
                != (last.center(), last.centred_at, last.centroids())
            {
                return Err(shown(
                    p,
                    "was coded against another centre than the last part",
                ));
            }
            let (a, b) = (from - p.first, to - p.first);
            let terms = &p.map[p.terms_at + 16 * a..p.terms_at + 16 * b];
            affine.extend(terms.chunks_exact(16).map(|t| {
                let f = |i: usize| f32::from_le_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
                [f(0), f(4), f(8), f(12)]
            }));
            if let Some(at) = p.inv_norm_at {
                inv_norm.extend(p.floats(at + 4 * a, b - a));
            }
            let at = p.codes_at + a * stride;
            pieces.push(Piece {
                file: &p.file,
                offset: at,
                bytes: &p.map[at..at + (b - a) * stride],
            });
        }
        let room = (slots * stride).max(64 << 20);
        let bytes =
            Region::of_files(&pieces, room, map).map_err(|e| shown(last, &e.to_string()))?;
        let mut codes = Codes {
            bytes,
            affine,
            center: last.center(),
            centred_at: last.centred_at,
            ..Codes::empty(dim, quant)
        };
        codes.set_centroids(last.centroids());
        Ok(SealedCodes { codes, inv_norm })
    }
}

/// One codes file, opened and checked.
struct CodesPart {
    path: PathBuf,
    file: File,
    map: Mmap,
    first: usize,
    slots: usize,
    centred_at: u64,
    dim: usize,
    /// Centroid count.
    k: usize,
    terms_at: usize,
    inv_norm_at: Option<usize>,
    codes_at: usize,
}

impl CodesPart {
    /// Opens the codes file at `path` and checks it (every checksum, `dim`, the bits of `quant`, the
    /// inverse norms present exactly for cosine).
    fn open(
        path: &Path,
        dim: usize,
        quant: Quantization,
        cos: bool,
    ) -> std::result::Result<Self, String> {
        let shown = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let file = File::open(path).map_err(|e| shown(&e))?;
        // SAFETY: the file is NusterDB's own, written once and never modified in
        // place; its pieces are mapped anew (privately) for the index.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| shown(&e))?;
        let b = &map[..];
        let bad = |what: &str| shown(&format!("codes file {what}"));
        if b.len() < HEADER_LEN + 16 || b[..8] != MAGIC {
            return Err(bad("is not a codes file (bad magic or too short)"));
        }
        if crc32fast::hash(&b[..60]) != le_u32(b, 60) {
            return Err(bad("header checksum mismatch"));
        }
        let version = le_u32(b, 8);
        if !(1..=VERSION).contains(&version) {
            return Err(bad(&format!("format {version} not supported")));
        }
        let file_dim = le_u32(b, 12) as usize;
        let slots = le_u64(b, 16);
        let centred_at = le_u64(b, 24);
        let flags = le_u32(b, 32);
        let block = le_u32(b, 36) as usize;
        let first = if version >= 2 { le_u64(b, 40) } else { 0 };
        let file_bits = if version >= 3 { le_u32(b, 48) } else { 8 };
        let k = if version >= 4 {
            le_u32(b, 52) as usize
        } else {
            0
        };
        let rotated = match (version, quant) {
            (5.., _) => le_u32(b, 56) as usize,
            (_, Quantization::RaBitQ) => quant.rotated_dim(dim),
            _ => 0,
        };
        let fits = |n: u64| n <= u64::from(u32::MAX) + 1;
        let max_k = if quant.one_bit() {
            super::rabitq::centroid_count(u64::MAX, quant.rotated_dim(dim))
        } else {
            0
        };
        if file_dim != dim
            || rotated != quant.rotated_dim(dim)
            || file_bits != quant.bits()
            || k > max_k
            || !fits(slots)
            || !fits(first.saturating_add(slots))
            || block == 0
            || flags != if cos { FLAG_INV_NORM } else { 0 }
        {
            return Err(bad(&format!(
                "made for another index (dim {file_dim}, {file_bits}-bit codes, {k} \
                 centroids, rotated dimension {rotated}, slots {first}+{slots}, flags \
                 {flags})"
            )));
        }
        let (slots, first) = (slots as usize, first as usize);
        let stride = quant.code_bytes(dim);
        let terms_at = HEADER_LEN + 4 * (1 + k) * dim;
        let terms_end = terms_at + 4 * (4 * slots + if cos { slots } else { 0 });
        let align = if version >= 2 { CODES_ALIGN } else { 64 };
        let codes_at = (terms_end + 4).next_multiple_of(align);
        let blocks = slots.div_ceil(block);
        let expected = codes_at + slots * stride + 4 * blocks + 12;
        if b.len() != expected {
            return Err(bad(&format!(
                "is {} bytes, its header says {expected} (truncated or extended)",
                b.len()
            )));
        }
        if crc32fast::hash(&b[HEADER_LEN..terms_end]) != le_u32(b, terms_end)
            || b[terms_end + 4..codes_at].iter().any(|&x| x != 0)
        {
            return Err(bad("centre or per-slot terms fail their checksum"));
        }
        let trailer = &b[b.len() - 12 - 4 * blocks..];
        if trailer[4 * blocks + 4..] != END_MAGIC
            || crc32fast::hash(&trailer[..4 * blocks]) != le_u32(trailer, 4 * blocks)
        {
            return Err(bad("trailer damaged"));
        }
        let damaged = b[codes_at..codes_at + slots * stride]
            .par_chunks((block * stride).max(1))
            .enumerate()
            .find_first(|(k, chunk)| crc32fast::hash(chunk) != le_u32(trailer, 4 * k));
        if let Some((k, _)) = damaged {
            return Err(bad(&format!(
                "codes of slots {}.. fail their checksum",
                first + k * block
            )));
        }
        let part = CodesPart {
            path: path.to_path_buf(),
            file,
            map,
            first,
            slots,
            centred_at,
            dim,
            k,
            terms_at,
            inv_norm_at: cos.then_some(terms_at + 16 * slots),
            codes_at,
        };
        if !part
            .center()
            .iter()
            .chain(&part.centroids())
            .all(|x| x.is_finite())
        {
            return Err(bad("centre or centroids not finite"));
        }
        Ok(part)
    }

    /// `n` floats from byte `at`.
    fn floats(&self, at: usize, n: usize) -> Vec<f32> {
        self.map[at..at + 4 * n]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    fn center(&self) -> Vec<f32> {
        self.floats(HEADER_LEN, self.dim)
    }

    fn centroids(&self) -> Vec<f32> {
        self.floats(HEADER_LEN + 4 * self.dim, self.k * self.dim)
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

    /// Rewrites the header of a codes file as version `version` naming rotated dimension
    /// `rotated` (0: none, as version 4 wrote it), with its checksum.
    fn patch_header(bytes: &mut [u8], version: u32, rotated: u32) {
        bytes[8..12].copy_from_slice(&version.to_le_bytes());
        bytes[56..60].copy_from_slice(&rotated.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..60]);
        bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    }

    /// Version 4 wrote RaBitQ codes (rotated into the power of two above `dim`, then
    /// the only rule) without naming the rotation: they read as the saved index's codes
    /// (bytes, terms, stride, rotation); a file naming another rotation than the
    /// index's quantization makes is refused, as is a version-4 file for binary codes
    /// (which came after it).
    #[test]
    fn version_4_rabitq_codes_read_with_their_rotation() {
        let (dim, n) = (384, 300);
        let coded =
            |q| HnswIndex::new_coded(dim, DistanceMetric::Euclidean, &HnswConfig::default(), q);
        let mut index = coded(Quantization::RaBitQ);
        let mut rng = SplitMix64::new(5);
        for s in 0..n {
            let v: Vec<f32> = (0..dim)
                .map(|_| (rng.next_u64() % 2001) as f32 / 100.0 - 10.0)
                .collect();
            index.insert(s as u32, &v);
        }
        let saved = index.codes.as_ref().unwrap();
        assert_eq!(
            (saved.stride, saved.rotation.as_ref().unwrap().padded()),
            (64, 512)
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment-1.codes");
        let mut bytes = Vec::new();
        index.write_codes(&mut bytes, 0, n).unwrap();
        assert_eq!(le_u32(&bytes, 56), 512, "version 5 names its rotation");
        patch_header(&mut bytes, 4, 0);
        std::fs::write(&path, &bytes).unwrap();
        let read = index
            .read_codes(std::slice::from_ref(&path), n, false)
            .unwrap()
            .codes;
        assert_eq!(
            (read.stride, read.rotation.as_ref().unwrap().padded()),
            (64, 512)
        );
        assert_eq!(
            read.bytes.as_bytes()[..n * 64],
            saved.bytes.as_bytes()[..n * 64]
        );
        assert_eq!(read.affine[..n], saved.affine[..n]);
        assert_eq!(read.shifts, saved.shifts);

        let binary = coded(Quantization::Binary);
        assert_eq!(binary.codes.as_ref().unwrap().stride, 48);
        let Err(e) = binary.read_codes(std::slice::from_ref(&path), n, false) else {
            panic!("a version-4 file was read as binary codes");
        };
        assert!(e.contains("made for another index"), "{e}");
        for rotated in [384, 1024] {
            patch_header(&mut bytes, 5, rotated);
            std::fs::write(&path, &bytes).unwrap();
            let Err(e) = index.read_codes(std::slice::from_ref(&path), n, false) else {
                panic!("{rotated}: codes of another rotation were read");
            };
            assert!(e.contains("made for another index"), "{rotated}: {e}");
        }
    }
}
