//! The lists file of a seal (`segment-<id>.lists`): an IVF index's centroids and the
//! list of every live row, so an open restores the lists instead of training them
//! again (k-means on a sample and an assignment of every row: seconds at a million
//! rows, against a read of a few bytes per row).
//!
//! # Format (version 2, little-endian)
//! ```text
//! header     40 B  magic "NDBIVF\0\0", version u32, dim u32, lists u32,
//!                  changed u32 (rows changed since the training, saturated), rows u64,
//!                  trained_at u64
//! centroids  lists × dim f32 (normalised space for cosine and angular)
//! row lists  rows × u32: the list of the i-th live slot, ascending — the order of the
//!            seal's live-rows vector file
//! codes      code bytes u32 (0: none; else P/8), and with codes: the codes'
//!            fingerprint u64 (the rotation and the bound they were made with), then
//!            per row in the same order its code (P/8 bytes: sub-code g in the low
//!            nibble of byte g/2 when g is even, the high one when odd), its four
//!            factors and 1/‖x‖ (cosine and angular; else 0) as f32
//! CRC-32 of everything before it
//! ```
//! Version 1 (written before the codes were saved) ends after the row lists; it is
//! still read, and its rows are coded again at open.
//! A file that fails any check (magic, version, dimension, the row count the seal's
//! maps give, a list number out of range, the checksum) is not used: the lists are
//! trained again from the rows, so a damaged file costs time, never an answer.

use std::io::{self, Write};

use crate::storage::fileio::{le_u32, le_u64, CrcWriter};

/// First bytes of a lists file.
pub const MAGIC: [u8; 8] = *b"NDBIVF\0\0";
/// The format this build writes (it reads 1 and 2).
pub const VERSION: u32 = 2;
const HEADER_LEN: usize = 40;

/// The RaBitQ codes of a seal's live rows, in the order of [`Lists::of_row`].
#[derive(Debug, PartialEq)]
pub struct RowCodes {
    /// Bytes of a row's code (`P/8`).
    pub code_bytes: usize,
    /// What the codes were made with (`codes::fingerprint`): codes of another rotation
    /// or bound are not used.
    pub fingerprint: u64,
    /// `code_bytes` per row.
    pub bits: Vec<u8>,
    /// Per row: the codes' four factors.
    pub factors: Vec<[f32; 4]>,
    /// Per row: 1/‖x‖ (cosine and angular; else 0).
    pub inv: Vec<f32>,
}

/// What a lists file holds.
#[derive(Debug, PartialEq)]
pub struct Lists {
    /// `dim` floats per list.
    pub centroids: Vec<f32>,
    /// The list of each live row, in ascending slot order.
    pub of_row: Vec<u32>,
    /// Live rows at the training that made the centroids.
    pub trained_at: u64,
    /// Rows added, replaced or removed since that training (read back saturated at
    /// `u32::MAX`).
    pub changed: u64,
    /// The rows' codes (an index with 1-bit codes, `rabitq` or `binary`, every row coded).
    pub codes: Option<RowCodes>,
}

/// Writes `lists` of `dim`-float centroids to `w` in the format above.
///
/// # Errors
/// I/O errors of `w`.
pub fn write(w: &mut dyn Write, dim: usize, lists: &Lists) -> io::Result<()> {
    let count = lists.centroids.len() / dim.max(1);
    let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "too many lists or dims");
    let mut crc = CrcWriter::new(w);
    crc.write_all(&MAGIC)?;
    crc.write_all(&VERSION.to_le_bytes())?;
    crc.write_all(&u32::try_from(dim).map_err(|_| too_big())?.to_le_bytes())?;
    crc.write_all(&u32::try_from(count).map_err(|_| too_big())?.to_le_bytes())?;
    let changed = u32::try_from(lists.changed).unwrap_or(u32::MAX);
    crc.write_all(&changed.to_le_bytes())?;
    crc.write_all(&(lists.of_row.len() as u64).to_le_bytes())?;
    crc.write_all(&lists.trained_at.to_le_bytes())?;
    let mut buf = Vec::with_capacity(1 << 16);
    for chunk in lists.centroids.chunks(1 << 14) {
        buf.clear();
        buf.extend(chunk.iter().flat_map(|x| x.to_le_bytes()));
        crc.write_all(&buf)?;
    }
    for chunk in lists.of_row.chunks(1 << 14) {
        buf.clear();
        buf.extend(chunk.iter().flat_map(|x| x.to_le_bytes()));
        crc.write_all(&buf)?;
    }
    match &lists.codes {
        None => crc.write_all(&0u32.to_le_bytes())?,
        Some(c) => {
            let n = u32::try_from(c.code_bytes).map_err(|_| too_big())?;
            crc.write_all(&n.to_le_bytes())?;
            crc.write_all(&c.fingerprint.to_le_bytes())?;
            for (i, f) in c.factors.iter().enumerate() {
                buf.clear();
                buf.extend_from_slice(&c.bits[i * c.code_bytes..(i + 1) * c.code_bytes]);
                buf.extend(f.iter().flat_map(|x| x.to_le_bytes()));
                buf.extend_from_slice(&c.inv[i].to_le_bytes());
                crc.write_all(&buf)?;
            }
        }
    }
    let (sum, w) = crc.finish();
    w.write_all(&sum.to_le_bytes())
}

/// Reads a lists file for `rows` live rows of `dim` floats, every check passed.
///
/// # Errors
/// What is wrong with the file, as text.
pub fn read(bytes: &[u8], dim: usize, rows: usize) -> Result<Lists, String> {
    if bytes.len() < HEADER_LEN + 4 || bytes[..8] != MAGIC {
        return Err("not a lists file".into());
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body) != le_u32(tail, 0) {
        return Err("lists file checksum mismatch".into());
    }
    let version = le_u32(body, 8);
    if !(1..=VERSION).contains(&version) {
        return Err(format!("lists file version {version} not supported"));
    }
    let (file_dim, count) = (le_u32(body, 12) as usize, le_u32(body, 16) as usize);
    let changed = u64::from(le_u32(body, 20));
    let (file_rows, trained_at) = (le_u64(body, 24), le_u64(body, 32));
    if file_dim != dim || file_rows != rows as u64 {
        return Err(format!(
            "lists file of {file_rows} rows of {file_dim} floats, the seal has {rows} of {dim}"
        ));
    }
    let lists_end = HEADER_LEN as u64 + 4 * (count as u64 * dim as u64 + rows as u64);
    let (code_bytes, fingerprint) = if version >= 2 && body.len() as u64 >= lists_end + 4 {
        let at = lists_end as usize;
        let n = le_u32(body, at) as u64;
        if n > 0 && body.len() as u64 >= lists_end + 12 {
            (n, le_u64(body, at + 4))
        } else {
            (n, 0)
        }
    } else {
        (0, 0)
    };
    let want = match (version, code_bytes) {
        (1, _) => lists_end,
        (_, 0) => lists_end + 4,
        (_, n) => lists_end + 12 + rows as u64 * (n + 20),
    };
    if body.len() as u64 != want {
        return Err(format!(
            "lists file of {} bytes, expected {want}",
            body.len()
        ));
    }
    let floats = &body[HEADER_LEN..HEADER_LEN + 4 * count * dim];
    let centroids: Vec<f32> = floats
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let of_row: Vec<u32> = body[HEADER_LEN + 4 * count * dim..lists_end as usize]
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some(bad) = of_row.iter().find(|&&l| l as usize >= count) {
        return Err(format!("a row in list {bad} of {count}"));
    }
    if centroids.iter().any(|x| !x.is_finite()) {
        return Err("a centroid is not finite".into());
    }
    let codes = (code_bytes > 0).then(|| {
        let n = code_bytes as usize;
        let f = |b: &[u8]| f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let mut c = RowCodes {
            code_bytes: n,
            fingerprint,
            bits: Vec::with_capacity(rows * n),
            factors: Vec::with_capacity(rows),
            inv: Vec::with_capacity(rows),
        };
        for rec in body[lists_end as usize + 12..].chunks_exact(n + 20) {
            c.bits.extend_from_slice(&rec[..n]);
            c.factors.push([
                f(&rec[n..]),
                f(&rec[n + 4..]),
                f(&rec[n + 8..]),
                f(&rec[n + 12..]),
            ]);
            c.inv.push(f(&rec[n + 16..]));
        }
        c
    });
    if let Some(c) = &codes {
        if c.factors
            .iter()
            .flatten()
            .chain(&c.inv)
            .any(|x| !x.is_finite())
        {
            return Err("a code's factor is not finite".into());
        }
    }
    Ok(Lists {
        centroids,
        of_row,
        trained_at,
        changed,
        codes,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample(codes: bool) -> Lists {
        Lists {
            centroids: vec![1.0, 2.0, -3.5, 4.0, 0.0, 1e-7],
            of_row: vec![0, 1, 1, 0, 1],
            trained_at: 5,
            changed: 3,
            codes: codes.then(|| RowCodes {
                code_bytes: 8,
                fingerprint: 0x1234_5678_9abc_def0,
                bits: (0..40).collect(),
                factors: (0..5).map(|i| [i as f32, 0.5, -1.0, 3.0]).collect(),
                inv: vec![0.0, 1.0, 0.25, 2.0, 1e-9],
            }),
        }
    }

    #[test]
    fn a_written_file_reads_back() {
        for codes in [false, true] {
            let mut out = Vec::new();
            write(&mut out, 3, &sample(codes)).unwrap();
            assert_eq!(read(&out, 3, 5).unwrap(), sample(codes));
        }
    }

    /// What version 1 wrote (no codes): still read.
    #[test]
    fn a_version_1_file_reads_back_without_codes() {
        let mut v2 = Vec::new();
        write(&mut v2, 3, &sample(false)).unwrap();
        // Version 1: the same bytes without the code-bytes word, version 1, own CRC.
        let mut v1 = v2[..v2.len() - 8].to_vec();
        v1[8..12].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32fast::hash(&v1);
        v1.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(read(&v1, 3, 5).unwrap(), sample(false));
    }

    #[test]
    fn every_damage_is_refused() {
        for codes in [false, true] {
            let mut good = Vec::new();
            write(&mut good, 3, &sample(codes)).unwrap();
            for i in 0..good.len() {
                let mut bad = good.clone();
                bad[i] ^= 0x10;
                assert!(read(&bad, 3, 5).is_err(), "byte {i} flipped");
            }
            for cut in 0..good.len() {
                assert!(read(&good[..cut], 3, 5).is_err(), "cut at {cut}");
            }
            assert!(read(&good, 3, 4).is_err(), "another row count");
            assert!(read(&good, 2, 5).is_err(), "another dimension");
        }
    }
}
