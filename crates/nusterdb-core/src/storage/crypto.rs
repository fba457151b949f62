//! Encryption at rest: AES-256-GCM (ring) on every value NusterDB stores in RocksDB
//! and on every file it writes itself into an encrypted database (the graph file,
//! snapshot manifests), under envelope keys.
//!
//! - The **data key** (32 random bytes, made when the database is created) encrypts
//!   everything. It never changes, so no stored byte is ever rewritten for a key change.
//! - The **master key** (32 bytes the caller holds: an environment variable, a key file,
//!   a callback — resolved by the bindings) only wraps the data key, in the database's
//!   key file [`KEY_FILE`]. Rotating the master key rewraps those 32 bytes
//!   ([`rewrap_key_file`]).
//!
//! A wrong master key fails the key file's authentication tag: [`Error::EncryptionKey`],
//! checked before RocksDB opens, so nothing is modified. A value or file whose tag fails
//! under the right data key is damage ([`Error::Corruption`] from the callers).
//!
//! # Formats
//! ```text
//! key file  magic "NDBKEYS\0", version u32, algorithm u32 (1 = AES-256-GCM),
//!           nonce 12 B, wrapped data key 32 B + tag 16 B (additional data: the 16
//!           bytes before the nonce), CRC-32 of everything before it       (80 B)
//! value     version byte 1, nonce 12 B, ciphertext, tag 16 B; additional data:
//!           "v" + the RocksDB key, so a value moved to another key fails   (+29 B)
//! file      magic "NDBCRYPT", version u32, nonce prefix 8 B, then chunks of
//!           64 KiB of plaintext (the last one shorter, possibly empty), each
//!           ciphertext + tag 16 B, nonce = prefix ‖ chunk number u32 big-endian,
//!           additional data = the 20-byte header ‖ last-chunk flag ‖ purpose
//!           (a truncated file lacks its flagged last chunk and fails)
//! ```
//! Nonces are random (96 bits for values): the NIST bound for one key, 2³² messages,
//! is far beyond a database's writes in practice; the file nonce prefix is random per file.
//!
//! Not encrypted: RocksDB keys (record ids — string ids are stored as values —, the
//! fixed keys of config and log), file names and sizes, RocksDB's own bookkeeping
//! (MANIFEST, OPTIONS, LOG), the lock file.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use super::fileio::{le_u32, write_atomic, FileIo};
use crate::error::{Error, Result};

/// The key file of an encrypted database (its presence marks the database encrypted).
pub const KEY_FILE: &str = "nusterdb.key";
/// Bytes of a master key and of the data key.
pub const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;

const KEY_MAGIC: [u8; 8] = *b"NDBKEYS\0";
const KEY_VERSION: u32 = 1;
const ALGORITHM_AES_256_GCM: u32 = 1;
const KEY_FILE_LEN: usize = 16 + NONCE_LEN + KEY_LEN + TAG_LEN + 4;

const VALUE_VERSION: u8 = 1;
/// Bytes a sealed value adds to its plaintext.
pub const VALUE_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

const FILE_MAGIC: [u8; 8] = *b"NDBCRYPT";
const FILE_VERSION: u32 = 1;
const FILE_HEADER: usize = 20;
/// Plaintext bytes per chunk of an encrypted file.
const CHUNK: usize = 64 * 1024;

/// A master key: 32 bytes that wrap a database's data key. Its `Debug` shows nothing
/// of it, and it is zeroed when dropped.
#[derive(Clone)]
pub struct MasterKey([u8; KEY_LEN]);

impl MasterKey {
    /// A master key from exactly 32 bytes.
    ///
    /// # Errors
    /// [`Error::EncryptionKey`] for any other length.
    pub fn new(bytes: &[u8]) -> Result<Self> {
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| Error::EncryptionKey {
            path: PathBuf::new(),
            detail: format!(
                "a master key is {KEY_LEN} bytes, {} were given",
                bytes.len()
            ),
        })?;
        Ok(Self(key))
    }

    fn aead(&self) -> LessSafeKey {
        aead_key(&self.0)
    }
}

impl PartialEq for MasterKey {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        for b in &mut self.0 {
            // Volatile so the zeroing of memory about to be freed is not optimised out.
            // SAFETY: `b` is a valid, aligned `&mut u8`.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

fn aead_key(bytes: &[u8; KEY_LEN]) -> LessSafeKey {
    // A 32-byte key is what AES-256-GCM takes: this cannot fail.
    #[allow(clippy::expect_used)]
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("a 32-byte AES-256 key"))
}

fn random<const N: usize>(rng: &SystemRandom) -> [u8; N] {
    let mut out = [0u8; N];
    // The operating system's generator failing leaves nothing safe to do.
    #[allow(clippy::expect_used)]
    rng.fill(&mut out)
        .expect("the system random generator failed");
    out
}

/// A database's data key, ready to encrypt and decrypt.
pub struct Cipher {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(AES-256-GCM)")
    }
}

impl Cipher {
    fn from_key(bytes: &[u8; KEY_LEN]) -> Self {
        Self {
            key: aead_key(bytes),
            rng: SystemRandom::new(),
        }
    }

    /// Encrypts the value stored at RocksDB key `key`.
    pub fn seal_value(&self, key: &[u8], plain: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = random(&self.rng);
        let mut out = Vec::with_capacity(plain.len() + VALUE_OVERHEAD);
        out.push(VALUE_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = self.seal_part(&nonce, &value_aad(key), &mut out[1 + NONCE_LEN..]);
        out.extend_from_slice(tag.as_ref());
        out
    }

    /// Decrypts a value [`Cipher::seal_value`] stored at `key`.
    ///
    /// # Errors
    /// A value too short, of an unknown version, or whose tag fails (changed bytes, or
    /// a value moved from another key), as a detail message.
    pub fn open_value(&self, key: &[u8], sealed: &[u8]) -> std::result::Result<Vec<u8>, String> {
        if sealed.len() < VALUE_OVERHEAD {
            return Err(format!(
                "an encrypted value of {} bytes is shorter than its {VALUE_OVERHEAD}-byte envelope",
                sealed.len()
            ));
        }
        if sealed[0] != VALUE_VERSION {
            return Err(format!("unknown encrypted value version {}", sealed[0]));
        }
        let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN]
            .try_into()
            .map_err(|_| "short nonce".to_string())?;
        let mut buf = sealed[1 + NONCE_LEN..].to_vec();
        let n = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(value_aad(key)),
                &mut buf,
            )
            .map_err(|_| "an encrypted value failed its authentication tag".to_string())?
            .len();
        buf.truncate(n);
        Ok(buf)
    }

    fn seal_part(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> ring::aead::Tag {
        // Sealing fails only for a buffer beyond GCM's 64 GiB bound, which a value or
        // a 64 KiB chunk never reaches.
        #[allow(clippy::expect_used)]
        self.key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), buf)
            .expect("AES-GCM input within bounds")
    }

    /// A writer that encrypts what is written to it into `inner`, in the file format;
    /// [`FileWriter::finish`] writes the last chunk (without it the file does not
    /// decrypt). `purpose` names what the file is (bound into every chunk).
    pub fn file_writer<'a>(
        &'a self,
        inner: &'a mut dyn Write,
        purpose: &'static [u8],
    ) -> io::Result<FileWriter<'a>> {
        let prefix: [u8; 8] = random(&self.rng);
        let mut header = [0u8; FILE_HEADER];
        header[..8].copy_from_slice(&FILE_MAGIC);
        header[8..12].copy_from_slice(&FILE_VERSION.to_le_bytes());
        header[12..20].copy_from_slice(&prefix);
        inner.write_all(&header)?;
        Ok(FileWriter {
            cipher: self,
            inner,
            header,
            purpose,
            buf: Vec::with_capacity(CHUNK),
            chunk: 0,
        })
    }

    /// Decrypts a whole file written through [`Cipher::file_writer`] for `purpose`.
    ///
    /// # Errors
    /// Anything but such a file, complete and unchanged, as a detail message.
    pub fn open_file(&self, bytes: &[u8], purpose: &[u8]) -> std::result::Result<Vec<u8>, String> {
        if bytes.len() < FILE_HEADER + TAG_LEN || bytes[..8] != FILE_MAGIC {
            return Err("not an encrypted NusterDB file".into());
        }
        let version = le_u32(bytes, 8);
        if version != FILE_VERSION {
            return Err(format!("unknown encrypted file version {version}"));
        }
        let header = &bytes[..FILE_HEADER];
        let mut rest = &bytes[FILE_HEADER..];
        let mut out = Vec::with_capacity(rest.len());
        let mut chunk = 0u32;
        loop {
            let last = rest.len() <= CHUNK + TAG_LEN;
            let take = if last { rest.len() } else { CHUNK + TAG_LEN };
            if take < TAG_LEN {
                return Err("an encrypted file ends inside a chunk".into());
            }
            let mut buf = rest[..take].to_vec();
            let nonce = chunk_nonce(header, chunk);
            let n = self
                .key
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(chunk_aad(header, last, purpose)),
                    &mut buf,
                )
                .map_err(|_| {
                    format!(
                        "chunk {chunk} of an encrypted file failed its authentication tag \
                         (changed, cut short, or not this database's)"
                    )
                })?
                .len();
            out.extend_from_slice(&buf[..n]);
            rest = &rest[take..];
            if last {
                return Ok(out);
            }
            chunk = chunk
                .checked_add(1)
                .ok_or_else(|| "an encrypted file of too many chunks".to_string())?;
        }
    }

    /// Encrypts a small file's whole contents (one chunk or more) into bytes.
    pub fn seal_file(&self, plain: &[u8], purpose: &'static [u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plain.len() + FILE_HEADER + TAG_LEN);
        // Writing to a Vec cannot fail.
        #[allow(clippy::expect_used)]
        {
            let mut w = self.file_writer(&mut out, purpose).expect("in memory");
            w.write_all(plain).expect("in memory");
            w.finish().expect("in memory");
        }
        out
    }
}

fn value_aad(key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(key.len() + 1);
    aad.push(b'v');
    aad.extend_from_slice(key);
    aad
}

fn chunk_nonce(header: &[u8], chunk: u32) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..8].copy_from_slice(&header[12..20]);
    nonce[8..].copy_from_slice(&chunk.to_be_bytes());
    nonce
}

fn chunk_aad(header: &[u8], last: bool, purpose: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(FILE_HEADER + 1 + purpose.len());
    aad.extend_from_slice(header);
    aad.push(u8::from(last));
    aad.extend_from_slice(purpose);
    aad
}

/// See [`Cipher::file_writer`].
pub struct FileWriter<'a> {
    cipher: &'a Cipher,
    inner: &'a mut dyn Write,
    header: [u8; FILE_HEADER],
    purpose: &'static [u8],
    buf: Vec<u8>,
    chunk: u32,
}

impl FileWriter<'_> {
    fn emit(&mut self, last: bool) -> io::Result<()> {
        let nonce = chunk_nonce(&self.header, self.chunk);
        let aad = chunk_aad(&self.header, last, self.purpose);
        let tag = self.cipher.seal_part(&nonce, &aad, &mut self.buf);
        self.inner.write_all(&self.buf)?;
        self.inner.write_all(tag.as_ref())?;
        self.buf.clear();
        self.chunk = self
            .chunk
            .checked_add(1)
            .ok_or_else(|| io::Error::other("an encrypted file of too many chunks"))?;
        Ok(())
    }

    /// Writes the last chunk: the file is complete.
    ///
    /// # Errors
    /// The inner writer's.
    pub fn finish(mut self) -> io::Result<()> {
        self.emit(true)
    }
}

impl Write for FileWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // A full chunk is emitted only once more bytes arrive, so the chunk `finish`
        // flags as the last one is never followed by another.
        if self.buf.len() == CHUNK && !data.is_empty() {
            self.emit(false)?;
        }
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Whether the database directory `dir` is encrypted (holds a key file).
pub fn is_encrypted(dir: &Path) -> bool {
    dir.join(KEY_FILE).symlink_metadata().is_ok()
}

fn key_error(path: &Path, detail: impl Into<String>) -> Error {
    Error::EncryptionKey {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

fn wrap(master: &MasterKey, data_key: &[u8; KEY_LEN], rng: &SystemRandom) -> Vec<u8> {
    let mut out = Vec::with_capacity(KEY_FILE_LEN);
    out.extend_from_slice(&KEY_MAGIC);
    out.extend_from_slice(&KEY_VERSION.to_le_bytes());
    out.extend_from_slice(&ALGORITHM_AES_256_GCM.to_le_bytes());
    let nonce: [u8; NONCE_LEN] = random(rng);
    out.extend_from_slice(&nonce);
    let mut wrapped = data_key.to_vec();
    // 32 bytes are within every AES-GCM bound.
    #[allow(clippy::expect_used)]
    master
        .aead()
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&out[..16]),
            &mut wrapped,
        )
        .expect("AES-GCM input within bounds");
    out.extend_from_slice(&wrapped);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The data key in the key file `bytes` (read from `path`), unwrapped with `master`.
fn unwrap(path: &Path, bytes: &[u8], master: &MasterKey) -> Result<[u8; KEY_LEN]> {
    if bytes.len() != KEY_FILE_LEN || bytes[..8] != KEY_MAGIC {
        return Err(Error::Corruption {
            path: path.to_path_buf(),
            detail: format!(
                "not a NusterDB key file ({} bytes; {KEY_FILE_LEN} expected)",
                bytes.len()
            ),
        });
    }
    let (content, crc) = bytes.split_at(KEY_FILE_LEN - 4);
    if crc32fast::hash(content) != le_u32(crc, 0) {
        return Err(Error::Corruption {
            path: path.to_path_buf(),
            detail: "the key file's checksum does not match (damaged)".into(),
        });
    }
    let (version, algorithm) = (le_u32(bytes, 8), le_u32(bytes, 12));
    if version != KEY_VERSION || algorithm != ALGORITHM_AES_256_GCM {
        return Err(Error::Corruption {
            path: path.to_path_buf(),
            detail: format!(
                "key file version {version}, algorithm {algorithm}: this build reads \
                 version {KEY_VERSION}, algorithm {ALGORITHM_AES_256_GCM} (AES-256-GCM)"
            ),
        });
    }
    let nonce: [u8; NONCE_LEN] = bytes[16..16 + NONCE_LEN]
        .try_into()
        .map_err(|_| key_error(path, "short key file"))?;
    let mut wrapped = bytes[16 + NONCE_LEN..KEY_FILE_LEN - 4].to_vec();
    let key = master
        .aead()
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&bytes[..16]),
            &mut wrapped,
        )
        .map_err(|_| {
            key_error(
                path,
                "the master key does not open this database's data key (wrong key)",
            )
        })?;
    key.try_into()
        .map_err(|_| key_error(path, "the wrapped data key has the wrong length"))
}

fn read_key_file(dir: &Path) -> Result<(PathBuf, Vec<u8>)> {
    let path = dir.join(KEY_FILE);
    let bytes = std::fs::read(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    Ok((path, bytes))
}

/// Makes a fresh data key for a database being created in `dir`, writes it wrapped by
/// `master` to the key file (atomically, synced), and returns its cipher.
///
/// # Errors
/// I/O errors.
pub fn create_key_file(io: &dyn FileIo, dir: &Path, master: &MasterKey) -> Result<Cipher> {
    let rng = SystemRandom::new();
    let mut data_key: [u8; KEY_LEN] = random(&rng);
    let bytes = wrap(master, &data_key, &rng);
    write_atomic(io, &dir.join(KEY_FILE), |w| w.write_all(&bytes))?;
    let cipher = Cipher::from_key(&data_key);
    data_key.fill(0);
    Ok(cipher)
}

/// The cipher of the encrypted database in `dir`, its data key unwrapped with `master`.
///
/// # Errors
/// [`Error::EncryptionKey`] for a wrong master key; [`Error::Corruption`] for a damaged
/// key file; I/O errors.
pub fn unlock(dir: &Path, master: &MasterKey) -> Result<Cipher> {
    let (path, bytes) = read_key_file(dir)?;
    let mut data_key = unwrap(&path, &bytes, master)?;
    let cipher = Cipher::from_key(&data_key);
    data_key.fill(0);
    Ok(cipher)
}

/// Rewraps the data key in the key file of `dir` from `old` to `new` (atomically). A
/// file `new` already opens is left as it is, so a rotation cut short is finished by
/// running it again.
///
/// # Errors
/// [`Error::EncryptionKey`] if neither key opens it; [`Error::Corruption`]; I/O errors.
pub fn rewrap_key_file(
    io: &dyn FileIo,
    dir: &Path,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<()> {
    let (path, bytes) = read_key_file(dir)?;
    if unwrap(&path, &bytes, new).is_ok() {
        return Ok(());
    }
    let mut data_key = unwrap(&path, &bytes, old)?;
    let rewrapped = wrap(new, &data_key, &SystemRandom::new());
    data_key.fill(0);
    write_atomic(io, &path, |w| w.write_all(&rewrapped))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::storage::fileio::OsIo;
    use proptest::prelude::*;

    fn cipher() -> Cipher {
        Cipher::from_key(&[7u8; KEY_LEN])
    }

    #[test]
    fn values_round_trip_and_bind_their_key() {
        let c = cipher();
        let sealed = c.seal_value(b"k1", b"secret marker");
        assert_eq!(sealed.len(), 13 + VALUE_OVERHEAD);
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(c.open_value(b"k1", &sealed).unwrap(), b"secret marker");
        assert!(
            c.open_value(b"k2", &sealed).is_err(),
            "moved to another key"
        );
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(c.open_value(b"k1", &bad).is_err());
        assert!(Cipher::from_key(&[8u8; KEY_LEN])
            .open_value(b"k1", &sealed)
            .is_err());
        // Two seals of one value differ (random nonces).
        assert_ne!(sealed, c.seal_value(b"k1", b"secret marker"));
    }

    proptest! {
        #[test]
        fn files_round_trip_and_refuse_any_change(
            len in prop_oneof![0usize..100, (CHUNK - 2)..(CHUNK + 2), (2 * CHUNK - 1)..(2 * CHUNK + 1)],
            flip in any::<prop::sample::Index>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let c = cipher();
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let sealed = c.seal_file(&plain, b"graph");
            prop_assert_eq!(c.open_file(&sealed, b"graph").unwrap(), plain.clone());
            prop_assert!(c.open_file(&sealed, b"manifest").is_err());
            let mut bad = sealed.clone();
            let i = flip.index(bad.len());
            bad[i] ^= 0x40;
            prop_assert!(c.open_file(&bad, b"graph").is_err());
            let n = cut.index(sealed.len());
            prop_assert!(c.open_file(&sealed[..n], b"graph").is_err());
        }
    }

    #[test]
    fn a_file_cut_at_a_chunk_boundary_fails() {
        let c = cipher();
        let sealed = c.seal_file(&vec![1u8; 3 * CHUNK], b"graph");
        let boundary = FILE_HEADER + 2 * (CHUNK + TAG_LEN);
        assert!(c.open_file(&sealed[..boundary], b"graph").is_err());
    }

    #[test]
    fn key_files_unwrap_only_with_their_master_and_rewrap() {
        let dir = tempfile::tempdir().unwrap();
        let a = MasterKey::new(&[1u8; 32]).unwrap();
        let b = MasterKey::new(&[2u8; 32]).unwrap();
        let c = create_key_file(&OsIo, dir.path(), &a).unwrap();
        let sealed = c.seal_value(b"k", b"v");
        assert!(is_encrypted(dir.path()));
        let wrong = unlock(dir.path(), &b).unwrap_err();
        assert!(matches!(wrong, Error::EncryptionKey { .. }), "{wrong}");
        rewrap_key_file(&OsIo, dir.path(), &a, &b).unwrap();
        // Again (a rotation run twice): already done.
        rewrap_key_file(&OsIo, dir.path(), &a, &b).unwrap();
        assert!(matches!(
            unlock(dir.path(), &a),
            Err(Error::EncryptionKey { .. })
        ));
        let again = unlock(dir.path(), &b).unwrap();
        assert_eq!(again.open_value(b"k", &sealed).unwrap(), b"v");
        // One changed byte: damage, not a wrong key.
        let path = dir.path().join(KEY_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[30] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            unlock(dir.path(), &b),
            Err(Error::Corruption { .. })
        ));
        assert!(matches!(
            MasterKey::new(&[0u8; 31]),
            Err(Error::EncryptionKey { .. })
        ));
        assert_eq!(format!("{a:?}"), "MasterKey(..)");
    }
}
