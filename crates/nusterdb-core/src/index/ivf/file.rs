//! The lists file of a seal (`segment-<id>.lists`): an IVF index's centroids and the
//! list of every live row, so an open restores the lists instead of training them
//! again (k-means on a sample and an assignment of every row: seconds at a million
//! rows, against a read of a few bytes per row).
//!
//! # Format (version 1, little-endian)
//! ```text
//! header     40 B  magic "NDBIVF\0\0", version u32, dim u32, lists u32,
//!                  changed u32 (rows changed since the training, saturated), rows u64,
//!                  trained_at u64
//! centroids  lists × dim f32 (normalised space for cosine and angular)
//! row lists  rows × u32: the list of the i-th live slot, ascending — the order of the
//!            seal's live-rows vector file
//! CRC-32 of everything before it
//! ```
//! A file that fails any check (magic, version, dimension, the row count the seal's
//! maps give, a list number out of range, the checksum) is not used: the lists are
//! trained again from the rows, so a damaged file costs time, never an answer.

use std::io::{self, Write};

use crate::storage::fileio::{le_u32, le_u64, CrcWriter};

/// First bytes of a lists file.
pub const MAGIC: [u8; 8] = *b"NDBIVF\0\0";
/// The format this build writes and reads.
pub const VERSION: u32 = 1;
const HEADER_LEN: usize = 40;

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
    if version != VERSION {
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
    let want = HEADER_LEN as u64 + 4 * (count as u64 * dim as u64 + rows as u64);
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
    let of_row: Vec<u32> = body[HEADER_LEN + 4 * count * dim..]
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some(bad) = of_row.iter().find(|&&l| l as usize >= count) {
        return Err(format!("a row in list {bad} of {count}"));
    }
    if centroids.iter().any(|x| !x.is_finite()) {
        return Err("a centroid is not finite".into());
    }
    Ok(Lists {
        centroids,
        of_row,
        trained_at,
        changed,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Lists {
        Lists {
            centroids: vec![1.0, 2.0, -3.5, 4.0, 0.0, 1e-7],
            of_row: vec![0, 1, 1, 0, 1],
            trained_at: 5,
            changed: 3,
        }
    }

    #[test]
    fn a_written_file_reads_back() {
        let mut out = Vec::new();
        write(&mut out, 3, &sample()).unwrap();
        assert_eq!(read(&out, 3, 5).unwrap(), sample());
    }

    #[test]
    fn every_damage_is_refused() {
        let mut good = Vec::new();
        write(&mut good, 3, &sample()).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            assert!(read(&bad, 3, 5).is_err(), "byte {i} flipped");
        }
        assert!(read(&good[..good.len() - 1], 3, 5).is_err());
        assert!(read(&good, 3, 4).is_err(), "another row count");
        assert!(read(&good, 2, 5).is_err(), "another dimension");
    }
}
