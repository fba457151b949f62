//! Byte encodings of everything NusterDB stores in RocksDB: vectors, metadata,
//! documents, string ids, the configuration and the format marker. Little-endian always; every record starts
//! with a one-byte record version so a future layout can be told apart.
//!
//! Decoders treat their input as untrusted: every length is checked before use and
//! every failure is a message (the caller wraps it in `Error::Corruption` with the
//! path) — never a panic, never an allocation sized by unchecked input.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{
    Compression, DatabaseConfig, Fields, HnswConfig, IndexType, IvfConfig, Quantization,
    StorageConfig, MAX_DIMENSION,
};
use crate::ids::IdType;
use crate::metadata::{validate_key, validate_tag, Metadata, Value};
use crate::metric::DistanceMetric;

/// Magic bytes of the format marker.
pub const MAGIC: &[u8; 8] = b"NUSTERDB";
/// The newest on-disk format this build reads and writes.
///
/// - 1: int ids, vectors and metadata.
/// - 2: adds string ids (a config record of version 2 and `n` records) and documents
///   (`d` records).
/// - 3: adds the change log (`w` records, `log.next`) and the seal record naming the
///   segment files ([`super::changelog`]). A build that does not keep the log must
///   not write to such a database (an open would then miss its writes), so every
///   database this build creates is format 3, and an older one becomes format 3 with
///   the first batch this build writes to it (an older build then refuses it by its
///   marker). Reading never changes the format: formats 1 and 2 open as they are.
pub const FORMAT_VERSION: u32 = 3;
/// The format of a database without string ids or documents, written by builds
/// without the change log.
pub const FORMAT_V1: u32 = 1;
/// The first format with string ids and documents.
pub const FORMAT_V2: u32 = 2;
const RECORD_VERSION: u8 = 1;
/// The config record of a string-id database (version 1 plus the id type).
const CONFIG_RECORD_V2: u8 = 2;
/// A config record stating its quantization: version 2's fields, then a quantization
/// code (see [`encode_config`]).
const CONFIG_RECORD_V3: u8 = 3;
/// Config record with the IVF parameters (an IVF index's config).
const CONFIG_RECORD_V4: u8 = 4;
/// Config record with a default recall target: version 4's fields (the IVF
/// parameters only for an IVF index; the quantization always), then the target (f32).
const CONFIG_RECORD_V5: u8 = 5;
/// Largest document, in UTF-8 bytes (as a metadata string value).
pub const MAX_DOCUMENT_BYTES: usize = crate::metadata::MAX_STR_BYTES;

/// A decoding failure, as a human-readable detail.
pub type DecodeResult<T> = std::result::Result<T, String>;

/// A bounds-checked little-endian reader (also used by the segment files'
/// decoders).
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn take(&mut self, n: usize, what: &str) -> DecodeResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "truncated record: {what} needs {n} bytes at offset {}, record has {}",
                    self.pos,
                    self.buf.len()
                )
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &str) -> DecodeResult<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self, what: &str) -> DecodeResult<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u32(&mut self, what: &str) -> DecodeResult<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &str) -> DecodeResult<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn bool(&mut self, what: &str) -> DecodeResult<bool> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("{what}: invalid bool byte {b}")),
        }
    }

    pub(crate) fn string(&mut self, what: &str) -> DecodeResult<String> {
        let len = self.u32(what)? as usize;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what}: invalid UTF-8"))
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// A u64 count of items that each take at least `min_bytes` (≥ 1) further bytes,
    /// checked against the bytes left, so a lying count fails here instead of sizing
    /// an allocation.
    pub(crate) fn count(&mut self, min_bytes: usize, what: &str) -> DecodeResult<usize> {
        let n = self.u64(what)?;
        let left = self.remaining();
        usize::try_from(n)
            .ok()
            .filter(|&n| n.checked_mul(min_bytes.max(1)).is_some_and(|b| b <= left))
            .ok_or_else(|| format!("{what}: count {n} is more than the {left} bytes left can hold"))
    }

    fn version(&mut self, what: &str) -> DecodeResult<()> {
        match self.u8(what)? {
            RECORD_VERSION => Ok(()),
            v => Err(format!(
                "{what}: record version {v} not supported (max {RECORD_VERSION})"
            )),
        }
    }

    pub(crate) fn finish(self, what: &str) -> DecodeResult<()> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(format!(
                "{what}: {} unexpected trailing bytes",
                self.buf.len() - self.pos
            ))
        }
    }
}

fn put_u32(out: &mut Vec<u8>, x: u32) {
    out.extend_from_slice(&x.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, x: u64) {
    out.extend_from_slice(&x.to_le_bytes());
}

/// A count or length as the u32 the encodings store. Every length reaching here is
/// bounded far below 4 GiB where the value is built (`metadata::MAX_METADATA_BYTES`
/// for metadata, the config's validated ranges); saturating rather than wrapping
/// means a violated bound could only ever give a record the decoder refuses, never
/// one it misreads.
fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, len_u32(s.len()));
    out.extend_from_slice(s.as_bytes());
}

/// The format marker value of format `version`.
pub fn encode_format(version: u32) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    put_u32(&mut out, version);
    out
}

/// Checks a format marker.
///
/// # Errors
/// Wrong magic, or a format version newer than this build reads.
pub fn decode_format(bytes: &[u8]) -> DecodeResult<u32> {
    let mut r = Reader::new(bytes);
    if r.take(MAGIC.len(), "format magic")? != MAGIC {
        return Err("format marker has the wrong magic bytes".into());
    }
    let v = r.u32("format version")?;
    r.finish("format marker")?;
    if v == 0 || v > FORMAT_VERSION {
        return Err(format!(
            "format version {v} not supported (max {FORMAT_VERSION})"
        ));
    }
    Ok(v)
}

/// A vector record.
pub fn encode_vector(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 4 * v.len());
    out.push(RECORD_VERSION);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Decodes a vector record of dimension `dim` into `out` (which has length `dim`).
///
/// # Errors
/// Wrong version or length, or non-finite components.
pub fn decode_vector_into(bytes: &[u8], out: &mut [f32]) -> DecodeResult<()> {
    let mut r = Reader::new(bytes);
    r.version("vector record")?;
    let body = r.take(out.len() * 4, "vector components")?;
    r.finish("vector record")?;
    for (dst, chunk) in out.iter_mut().zip(body.chunks_exact(4)) {
        let x = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        if !x.is_finite() {
            return Err(format!("vector record holds a non-finite value ({x})"));
        }
        *dst = x;
    }
    Ok(())
}

/// Decodes a vector record of dimension `dim`.
///
/// # Errors
/// As [`decode_vector_into`].
pub fn decode_vector(bytes: &[u8], dim: usize) -> DecodeResult<Vec<f32>> {
    let mut v = vec![0.0f32; dim];
    decode_vector_into(bytes, &mut v)?;
    Ok(v)
}

/// A text record (a document, or a string id): the record version, then the UTF-8
/// bytes.
pub fn encode_text(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + text.len());
    out.push(RECORD_VERSION);
    out.extend_from_slice(text.as_bytes());
    out
}

/// Decodes a text record of at most `max` bytes.
///
/// # Errors
/// Wrong version, too long, or invalid UTF-8.
pub fn decode_text(bytes: &[u8], max: usize) -> DecodeResult<String> {
    let mut r = Reader::new(bytes);
    r.version("text record")?;
    let body = &bytes[1..];
    if body.len() > max {
        return Err(format!(
            "text record of {} bytes, above the limit of {max}",
            body.len()
        ));
    }
    String::from_utf8(body.to_vec()).map_err(|_| "text record: invalid UTF-8".to_string())
}

const TAG_STR: u8 = 0;
const TAG_INT: u8 = 1;
const TAG_FLOAT: u8 = 2;
const TAG_BOOL: u8 = 3;

/// A metadata record: bookkeeping, fields (sorted), tags (sorted);
/// [`Metadata::encoded_len`] bytes.
pub fn encode_metadata(m: &Metadata) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.encoded_len());
    out.push(RECORD_VERSION);
    put_u64(&mut out, m.created_at());
    put_u64(&mut out, m.updated_at());
    put_u64(&mut out, m.version());
    put_u32(&mut out, len_u32(m.fields().len()));
    for (k, v) in m.fields() {
        put_str(&mut out, k);
        match v {
            Value::Str(s) => {
                out.push(TAG_STR);
                put_str(&mut out, s);
            }
            Value::Int(i) => {
                out.push(TAG_INT);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Float(f) => {
                out.push(TAG_FLOAT);
                out.extend_from_slice(&f.to_le_bytes());
            }
            Value::Bool(b) => {
                out.push(TAG_BOOL);
                out.push(u8::from(*b));
            }
        }
    }
    put_u32(&mut out, len_u32(m.tags().len()));
    for t in m.tags() {
        put_str(&mut out, t);
    }
    out
}

/// Decodes a metadata record, re-checking every invariant `Metadata` keeps.
///
/// # Errors
/// Truncation, bad tags/UTF-8, invalid keys or values, trailing bytes.
pub fn decode_metadata(bytes: &[u8]) -> DecodeResult<Metadata> {
    let mut r = Reader::new(bytes);
    r.version("metadata record")?;
    let created = r.u64("created_at")?;
    let updated = r.u64("updated_at")?;
    let version = r.u64("version")?;
    let nfields = r.u32("field count")?;
    let mut fields = BTreeMap::new();
    for _ in 0..nfields {
        let key = r.string("field key")?;
        validate_key(&key).map_err(|e| e.to_string())?;
        let value = match r.u8("value type")? {
            TAG_STR => Value::Str(r.string("str value")?),
            TAG_INT => Value::Int(i64::from_le_bytes(r.array("int value")?)),
            TAG_FLOAT => Value::Float(f64::from_le_bytes(r.array("float value")?)),
            TAG_BOOL => Value::Bool(r.bool("bool value")?),
            t => return Err(format!("unknown metadata value type {t}")),
        };
        value.validate().map_err(|e| e.to_string())?;
        if fields.insert(key, value).is_some() {
            return Err("metadata record repeats a key".into());
        }
    }
    let ntags = r.u32("tag count")?;
    let mut tags = BTreeSet::new();
    for _ in 0..ntags {
        let t = r.string("tag")?;
        validate_tag(&t).map_err(|e| e.to_string())?;
        if !tags.insert(t) {
            return Err("metadata record repeats a tag".into());
        }
    }
    r.finish("metadata record")?;
    Ok(Metadata::from_stored(
        fields, tags, created, updated, version,
    ))
}

fn metric_code(m: DistanceMetric) -> u8 {
    match m {
        DistanceMetric::Euclidean => 0,
        DistanceMetric::Manhattan => 1,
        DistanceMetric::Cosine => 2,
        DistanceMetric::Angular => 3,
        DistanceMetric::Chebyshev => 4,
        DistanceMetric::Jaccard => 5,
        DistanceMetric::Hamming => 6,
        DistanceMetric::InnerProduct => 7,
    }
}

fn metric_from_code(c: u8) -> DecodeResult<DistanceMetric> {
    DistanceMetric::ALL
        .into_iter()
        .find(|m| metric_code(*m) == c)
        .ok_or_else(|| format!("unknown metric code {c}"))
}

fn compression_code(c: Compression) -> u8 {
    match c {
        Compression::None => 0,
        Compression::Snappy => 1,
        Compression::Lz4 => 2,
        Compression::Zstd => 3,
    }
}

fn compression_from_code(c: u8) -> DecodeResult<Compression> {
    [
        Compression::None,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ]
    .into_iter()
    .find(|x| compression_code(*x) == c)
    .ok_or_else(|| format!("unknown compression code {c}"))
}

/// The quantization a config record without one means: what the builds before the
/// choice used (8-bit codes where the walk can use codes).
fn unstated_quantization(c: &DatabaseConfig) -> Quantization {
    if c.codes_possible() {
        Quantization::Sq8
    } else {
        Quantization::Off
    }
}

/// The configuration record.
/// An int-id config keeps the version-1 record byte for byte; a string-id one is a
/// version-2 record: the same fields and then the id type. A config whose quantization
/// is not what a record without one means (`unstated_quantization`: sq8 where codes
/// are possible, else none) is a version-3 record: the version-2 fields and then a
/// quantization code (0 none, 1 sq8, 2 sq4, 3 rabitq). An IVF config (index type code
/// 2) is a version-4 record: the version-3 fields (the quantization always present)
/// and then `nlist` and `nprobe` (u32 each, 0 for automatic). A build that predates a field refuses a
/// record that has it rather than open the database wrongly; a database of such a
/// build keeps its record's version when this one writes its config.
pub fn encode_config(c: &DatabaseConfig) -> Vec<u8> {
    let str_ids = c.id_type == IdType::Str;
    let quantization = c.quantization();
    let ivf = c.index_type == IndexType::Ivf;
    let recall = c.recall;
    let stated = (ivf || recall.is_some() || quantization != unstated_quantization(c))
        .then_some(quantization);
    let mut out = vec![if recall.is_some() {
        CONFIG_RECORD_V5
    } else if ivf {
        CONFIG_RECORD_V4
    } else if stated.is_some() {
        CONFIG_RECORD_V3
    } else if str_ids {
        CONFIG_RECORD_V2
    } else {
        RECORD_VERSION
    }];
    put_u32(&mut out, len_u32(c.dim));
    out.push(match c.index_type {
        IndexType::Flat => 0,
        IndexType::Hnsw => 1,
        IndexType::Ivf => 2,
    });
    out.push(metric_code(c.distance_metric));
    let h = &c.hnsw;
    put_u32(&mut out, len_u32(h.max_nb_connection));
    put_u64(&mut out, h.max_nb_elements as u64);
    put_u32(&mut out, len_u32(h.max_layer));
    put_u32(&mut out, len_u32(h.ef_construction));
    put_u32(&mut out, h.ef_search.map_or(0, len_u32));
    out.push(u8::from(h.use_heuristic));
    let s = &c.storage;
    put_u64(&mut out, s.cache_size_mb);
    put_u64(&mut out, s.write_buffer_size_mb);
    put_u32(&mut out, s.max_write_buffer_number);
    out.push(compression_code(s.compression));
    out.push(u8::from(s.enable_statistics));
    out.push(u8::from(s.enable_bloom_filter));
    put_u32(&mut out, s.bloom_filter_bits_per_key);
    put_u32(&mut out, s.max_background_jobs);
    out.push(u8::from(s.sync_writes));
    out.push(u8::from(c.auto_snapshot));
    put_u64(&mut out, c.snapshot_interval_secs);
    if str_ids || stated.is_some() {
        out.push(u8::from(str_ids));
    }
    if let Some(q) = stated {
        out.push(match q {
            Quantization::Off => 0,
            Quantization::Sq8 => 1,
            Quantization::Sq4 => 2,
            Quantization::RaBitQ => 3,
            Quantization::Binary => 4,
        });
    }
    if ivf {
        put_u32(&mut out, c.ivf.nlist.map_or(0, len_u32));
        put_u32(&mut out, c.ivf.nprobe.map_or(0, len_u32));
    }
    if let Some(r) = recall {
        put_u32(&mut out, r.to_bits());
    }
    out
}

/// Decodes and validates a configuration record.
///
/// # Errors
/// Truncation, unknown codes, out-of-range values.
pub fn decode_config(bytes: &[u8]) -> DecodeResult<DatabaseConfig> {
    let mut r = Reader::new(bytes);
    let record = r.u8("config record version")?;
    if !(RECORD_VERSION..=CONFIG_RECORD_V5).contains(&record) {
        return Err(format!(
            "config record version {record} not supported (max {CONFIG_RECORD_V5})"
        ));
    }
    let dim = r.u32("dim")? as usize;
    if dim == 0 || dim > MAX_DIMENSION {
        return Err(format!("stored dimension {dim} out of range"));
    }
    let index_type = match r.u8("index type")? {
        0 => IndexType::Flat,
        1 => IndexType::Hnsw,
        2 if record >= CONFIG_RECORD_V4 => IndexType::Ivf,
        t => return Err(format!("unknown index type code {t}")),
    };
    let distance_metric = metric_from_code(r.u8("metric")?)?;
    let hnsw = HnswConfig {
        max_nb_connection: r.u32("max_nb_connection")? as usize,
        max_nb_elements: usize::try_from(r.u64("max_nb_elements")?)
            .map_err(|_| "max_nb_elements out of range".to_string())?,
        max_layer: r.u32("max_layer")? as usize,
        ef_construction: r.u32("ef_construction")? as usize,
        ef_search: match r.u32("ef_search")? {
            0 => None,
            e => Some(e as usize),
        },
        use_heuristic: r.bool("use_heuristic")?,
    };
    let storage = StorageConfig {
        cache_size_mb: r.u64("cache_size_mb")?,
        write_buffer_size_mb: r.u64("write_buffer_size_mb")?,
        max_write_buffer_number: r.u32("max_write_buffer_number")?,
        compression: compression_from_code(r.u8("compression")?)?,
        enable_statistics: r.bool("enable_statistics")?,
        enable_bloom_filter: r.bool("enable_bloom_filter")?,
        bloom_filter_bits_per_key: r.u32("bloom_filter_bits_per_key")?,
        max_background_jobs: r.u32("max_background_jobs")?,
        sync_writes: r.bool("sync_writes")?,
        // Never stored: the key of each open.
        encryption: None,
    };
    let auto_snapshot = r.bool("auto_snapshot")?;
    let snapshot_interval_secs = r.u64("snapshot_interval_secs")?;
    let id_type = if record >= CONFIG_RECORD_V2 {
        match r.u8("id type")? {
            0 => IdType::Int,
            1 => IdType::Str,
            t => return Err(format!("unknown id type code {t}")),
        }
    } else {
        IdType::Int
    };
    let quantization = if record >= CONFIG_RECORD_V3 {
        Some(match r.u8("quantization")? {
            0 => Quantization::Off,
            1 => Quantization::Sq8,
            2 => Quantization::Sq4,
            3 => Quantization::RaBitQ,
            4 => Quantization::Binary,
            q => return Err(format!("unknown quantization code {q}")),
        })
    } else {
        None
    };
    let mut ivf = IvfConfig::default();
    // Version 4 is only written for IVF; version 5 holds the parameters when IVF.
    let has_ivf =
        record == CONFIG_RECORD_V4 || (record >= CONFIG_RECORD_V5 && index_type == IndexType::Ivf);
    if has_ivf {
        let auto = |n: u32| (n > 0).then_some(n as usize);
        ivf.nlist = auto(r.u32("nlist")?);
        ivf.nprobe = auto(r.u32("nprobe")?);
        if index_type != IndexType::Ivf {
            return Err(format!(
                "IVF parameters in the config of a {} index",
                index_type.name()
            ));
        }
    } else if index_type == IndexType::Ivf {
        return Err("an IVF config in a record without its parameters".into());
    }
    let recall = if record >= CONFIG_RECORD_V5 {
        let r = f32::from_bits(r.u32("recall")?);
        if !(r > 0.0 && r <= 1.0) {
            return Err(format!("default recall {r} outside (0, 1]"));
        }
        Some(r)
    } else {
        None
    };
    r.finish("config record")?;
    let mut c = DatabaseConfig {
        dim,
        index_type,
        distance_metric,
        hnsw,
        storage,
        auto_snapshot,
        snapshot_interval_secs,
        id_type,
        // Not stored: each open chooses (`DatabaseConfig::vectors`).
        vectors: crate::config::VectorStorage::default(),
        quantization,
        ivf,
        recall,
        stated: Fields::all(),
    };
    // The ranges the record was written under; a rule added since (ef_construction ≥
    // M) is applied by normalising, as the index always did, so old databases open
    // and report what they use.
    c.validate_stored()
        .map_err(|e| format!("stored config is invalid: {e}"))?;
    c.hnsw = c.hnsw.normalised();
    // A record without a quantization is what it meant when it was written.
    c.quantization = Some(c.quantization.unwrap_or_else(|| unstated_quantization(&c)));
    Ok(c)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn vector_round_trip_and_rejects_bad_lengths() {
        let v = vec![1.5f32, -2.0, 0.0];
        let b = encode_vector(&v);
        assert_eq!(decode_vector(&b, 3).unwrap(), v);
        assert!(decode_vector(&b, 4).is_err());
        assert!(decode_vector(&b, 2).is_err());
        assert!(decode_vector(&b[..5], 3).is_err());
        assert!(decode_vector(&[], 3).is_err());
        let mut nan = encode_vector(&[1.0]);
        nan[1..].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(decode_vector(&nan, 1).is_err());
    }

    #[test]
    fn metadata_round_trip() {
        let mut m = Metadata::with_parts(
            [
                ("a".to_string(), Value::Int(-3)),
                ("b".to_string(), Value::Float(2.5)),
                ("c".to_string(), Value::Str("x".into())),
                ("d".to_string(), Value::Bool(true)),
            ],
            ["t1".to_string(), "t2".to_string()],
        )
        .unwrap();
        m.set("e", Value::Int(i64::MAX)).unwrap();
        let back = decode_metadata(&encode_metadata(&m)).unwrap();
        assert_eq!(back, m);
    }

    fn value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        prop_oneof![
            ".{0,40}".prop_map(Value::Str),
            any::<i64>().prop_map(Value::Int),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::Float),
            any::<bool>().prop_map(Value::Bool),
        ]
    }

    proptest::proptest! {
        /// Any metadata the constructors accept encodes in exactly `encoded_len` bytes
        /// and decodes to itself.
        #[test]
        fn accepted_metadata_round_trips(
            fields in proptest::collection::vec((".{0,12}", value()), 0..8),
            tags in proptest::collection::vec(".{0,12}", 0..5),
            long in proptest::option::of(0usize..3),
        ) {
            let mut fields = fields;
            if let Some(i) = long {
                // A value at the size limit now and then.
                fields.push((format!("long{i}"), Value::Str("y".repeat(crate::metadata::MAX_STR_BYTES - i))));
            }
            if let Ok(m) = Metadata::with_parts(fields, tags) {
                let bytes = encode_metadata(&m);
                proptest::prop_assert_eq!(bytes.len(), m.encoded_len());
                proptest::prop_assert_eq!(decode_metadata(&bytes).unwrap(), m);
            }
        }
    }

    #[test]
    fn config_round_trip() {
        let mut c = DatabaseConfig::simple(384, true).unwrap();
        c.distance_metric = DistanceMetric::Cosine;
        c.hnsw.ef_search = Some(77);
        c.storage.compression = Compression::Zstd;
        assert_eq!(decode_config(&encode_config(&c)).unwrap(), c);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// The exact bytes of format version 1, which int-id databases without documents
    /// are still written in. Changing any encoding must fail this test: bump
    /// `FORMAT_VERSION` (or the record version), keep a decoder for the old bytes, add
    /// a fixture under tests/data/, and only then update these strings.
    #[test]
    fn golden_bytes_of_format_v1() {
        assert_eq!(
            hex(&encode_format(FORMAT_V1)),
            "4e55535445524442".to_string() + "01000000"
        );
        assert_eq!(hex(&encode_vector(&[1.0, -2.5])), "010000803f000020c0");
        let m = Metadata::from_stored(
            [
                ("b".to_string(), Value::Bool(true)),
                ("f".to_string(), Value::Float(0.5)),
                ("i".to_string(), Value::Int(-2)),
                ("s".to_string(), Value::Str("x".into())),
            ]
            .into_iter()
            .collect(),
            ["t".to_string()].into_iter().collect(),
            1,
            2,
            3,
        );
        assert_eq!(
            hex(&encode_metadata(&m)),
            concat!(
                "01",
                "0100000000000000",
                "0200000000000000",
                "0300000000000000",
                "04000000",
                "01000000",
                "62",
                "03",
                "01",
                "01000000",
                "66",
                "02",
                "000000000000e03f",
                "01000000",
                "69",
                "01",
                "feffffffffffffff",
                "01000000",
                "73",
                "00",
                "01000000",
                "78",
                "01000000",
                "01000000",
                "74",
            )
        );
        let c = DatabaseConfig::new(3).unwrap();
        assert_eq!(
            hex(&encode_config(&c)),
            concat!(
                "01",
                "03000000",
                "00",
                "00",
                "10000000",
                "0004000000000000",
                "10000000",
                "c8000000",
                "00000000",
                "01",
                "0001000000000000",
                "4000000000000000",
                "03000000",
                "02",
                "01",
                "01",
                "0a000000",
                "04000000",
                "00",
                "00",
                "100e000000000000",
            )
        );
    }

    /// What format 2 adds: the marker, the config record of a string-id database (the
    /// version-1 fields, then the id type), and text records.
    #[test]
    fn golden_bytes_of_format_v2() {
        assert_eq!(
            hex(&encode_format(2)),
            "4e55535445524442".to_string() + "02000000"
        );
        let mut c = DatabaseConfig::new(3).unwrap();
        let v1 = encode_config(&c);
        c.id_type = IdType::Str;
        let v2 = encode_config(&c);
        assert_eq!(hex(&v2[..1]), "02");
        assert_eq!(v2[1..v2.len() - 1], v1[1..]);
        assert_eq!(hex(&v2[v2.len() - 1..]), "01");
        assert_eq!(decode_config(&v2).unwrap().id_type, IdType::Str);
        assert_eq!(decode_config(&v1).unwrap().id_type, IdType::Int);
        assert_eq!(hex(&encode_text("aé")), "0161c3a9");
        assert_eq!(decode_text(&encode_text("aé"), 3).unwrap(), "aé");
        assert!(decode_text(&encode_text("aé"), 2).is_err());
        assert!(decode_text(b"\x01\xff", 8).is_err());
        assert!(decode_text(b"\x02a", 8).is_err());
        assert!(decode_text(b"", 8).is_err());
        let mut bad = v2.clone();
        *bad.last_mut().unwrap() = 9;
        assert!(decode_config(&bad).is_err());
    }

    /// A config whose quantization is not what a record without one means (sq8 on
    /// HNSW with codes, none otherwise) is a version-3 record: the version-2 fields (id
    /// type included), then the quantization code; one whose quantization is that keeps
    /// the version-1 or -2 bytes an older build reads, and reads back what it meant.
    #[test]
    fn golden_bytes_of_the_config_record_v3() {
        let mut c = DatabaseConfig::simple(3, true).unwrap();
        c.quantization = Some(Quantization::Sq8);
        let v1 = encode_config(&c);
        assert_eq!(hex(&v1[..1]), "01");
        assert_eq!(
            decode_config(&v1).unwrap().quantization,
            Some(Quantization::Sq8)
        );
        for (q, code, id_type) in [
            (Some(Quantization::Off), "00", IdType::Int),
            (Some(Quantization::Sq4), "02", IdType::Str),
            (Some(Quantization::RaBitQ), "03", IdType::Int),
            (Some(Quantization::Binary), "04", IdType::Int),
            // The default of a new HNSW database.
            (None, "02", IdType::Int),
        ] {
            c.quantization = q;
            c.id_type = id_type;
            let v3 = encode_config(&c);
            assert_eq!(hex(&v3[..1]), "03");
            assert_eq!(v3[1..v3.len() - 2], v1[1..]);
            let str_ids = if id_type == IdType::Str { "01" } else { "00" };
            assert_eq!(hex(&v3[v3.len() - 2..]), format!("{str_ids}{code}"));
            let back = decode_config(&v3).unwrap();
            assert_eq!(
                (back.quantization(), back.id_type),
                (c.quantization(), id_type)
            );
            let mut bad = v3.clone();
            *bad.last_mut().unwrap() = 5;
            assert!(decode_config(&bad).is_err());
            assert!(decode_config(&v3[..v3.len() - 1]).is_err());
        }
        // A flat index: no codes, written and read back without a quantization code.
        let flat = DatabaseConfig::new(3).unwrap();
        let v1 = encode_config(&flat);
        assert_eq!(hex(&v1[..1]), "01");
        assert_eq!(
            decode_config(&v1).unwrap().quantization(),
            Quantization::Off
        );
    }

    /// An IVF config is a version-4 record: the flat record's fields with index type
    /// code 2, the id type and quantization (none), then `nlist` and `nprobe` (0 =
    /// automatic); every truncation, another index type carrying them, and IVF in an
    /// older record are refused.
    #[test]
    fn golden_bytes_of_the_config_record_v4() {
        let flat = DatabaseConfig::new(3).unwrap();
        let v1 = encode_config(&flat);
        let mut c = flat.clone();
        c.index_type = IndexType::Ivf;
        for (nlist, nprobe, tail) in [
            (None, None, "0000000000000000"),
            (Some(100), Some(7), "6400000007000000"),
        ] {
            c.ivf = IvfConfig { nlist, nprobe };
            let v4 = encode_config(&c);
            assert_eq!(hex(&v4[..1]), "04");
            assert_eq!(v4[1..5], v1[1..5]);
            assert_eq!(hex(&v4[5..6]), "02");
            assert_eq!(v4[6..v1.len()], v1[6..]);
            assert_eq!(hex(&v4[v1.len()..]), format!("0000{tail}"));
            let back = decode_config(&v4).unwrap();
            assert_eq!((back.index_type, back.ivf), (IndexType::Ivf, c.ivf));
            for cut in 1..v4.len() {
                assert!(decode_config(&v4[..cut]).is_err(), "cut at {cut}");
            }
            let mut other = v4.clone();
            other[5] = 1;
            assert!(decode_config(&other).is_err(), "IVF parameters on HNSW");
        }
        let mut old = v1.clone();
        old[5] = 2;
        assert!(decode_config(&old).is_err(), "IVF in a version-1 record");
    }

    /// A default recall target makes a version-5 record: the version-1 fields, the id
    /// type, the quantization, the IVF parameters for an IVF index only, then the
    /// target's f32 bits; truncations and targets outside (0, 1] are refused.
    #[test]
    fn golden_bytes_of_the_config_record_v5() {
        let flat = DatabaseConfig::new(3).unwrap();
        let v1 = encode_config(&flat);
        let mut c = flat.clone();
        c.recall = Some(0.95);
        let v5 = encode_config(&c);
        assert_eq!(hex(&v5[..1]), "05");
        assert_eq!(v5[1..v1.len()], v1[1..]);
        assert_eq!(hex(&v5[v1.len()..]), "00003333733f");
        assert_eq!(decode_config(&v5).unwrap(), c);
        for cut in 1..v5.len() {
            assert!(decode_config(&v5[..cut]).is_err(), "cut at {cut}");
        }
        for bad in [0.0f32, -0.5, 1.5, f32::NAN, f32::INFINITY] {
            let mut b = v5.clone();
            let n = b.len();
            b[n - 4..].copy_from_slice(&bad.to_bits().to_le_bytes());
            assert!(decode_config(&b).is_err(), "recall {bad}");
        }
        let mut ivf = c.clone();
        ivf.index_type = IndexType::Ivf;
        ivf.quantization = Some(Quantization::RaBitQ);
        ivf.ivf = IvfConfig {
            nlist: Some(100),
            nprobe: None,
        };
        ivf.distance_metric = DistanceMetric::Cosine;
        let back = decode_config(&encode_config(&ivf)).unwrap();
        assert_eq!(back, ivf);
        let mut hnsw = DatabaseConfig::simple(8, true).unwrap();
        hnsw.recall = Some(1.0);
        assert_eq!(decode_config(&encode_config(&hnsw)).unwrap(), hnsw);
    }

    /// What format 3 adds: the marker, the change-log entries and the seal record.
    #[test]
    fn golden_bytes_of_format_v3() {
        assert_eq!(FORMAT_VERSION, 3, "a new format needs new golden bytes");
        assert_eq!(
            hex(&encode_format(3)),
            "4e55535445524442".to_string() + "03000000"
        );
        use crate::storage::changelog::{encode_entry, encode_position, Seal};
        assert_eq!(
            hex(&encode_entry(&[1, 258], false)),
            "0100".to_string() + "02000000" + "0100000000000000" + "0201000000000000"
        );
        assert_eq!(hex(&encode_entry(&[], true)), "010100000000");
        assert_eq!(hex(&encode_position(5)), "0500000000000000");
        let seal = Seal {
            id: 0x0102,
            position: 7,
            floor: 3,
        };
        assert_eq!(
            hex(&seal.encode()),
            "01".to_string() + "0201000000000000" + "0700000000000000" + "0300000000000000"
        );
    }

    #[test]
    fn format_marker_checks_magic_and_version() {
        for v in [FORMAT_V1, FORMAT_V2, FORMAT_VERSION] {
            assert_eq!(decode_format(&encode_format(v)).unwrap(), v);
        }
        let mut future = MAGIC.to_vec();
        future.extend_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let err = decode_format(&future).unwrap_err();
        assert!(err.contains("not supported (max 3)"), "{err}");
        assert!(decode_format(b"NOTNUSTR\x01\x00\x00\x00").is_err());
    }
}
