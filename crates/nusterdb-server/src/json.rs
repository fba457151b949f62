//! JSON ↔ core values: ids, metadata, filters, include lists, collection configs, and
//! the records, hits and stats a response carries. Each conversion names the field it
//! refuses, as the Python bindings do for the same values.

use std::collections::{BTreeMap, BTreeSet};

use nusterdb_core::config::{IndexType, Quantization};
use nusterdb_core::db::{Include, Record};
use nusterdb_core::filter::{Filter, FilterInput};
use nusterdb_core::{DatabaseConfig, DistanceMetric, Id, IdType, Metadata, Stats, Value};
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};
use utoipa::ToSchema;

use crate::error::{id_json, ApiError, ApiResult};
use crate::schema::{ConfigOut, Hit, HnswOut, IvfOut, MetadataOut, Records, StatsOut, StorageOut};

/// Nesting of filter maps deeper than this is refused before the core sees it (the
/// core's own limit is lower; this one bounds the conversion's recursion).
const MAX_FILTER_DEPTH: usize = 128;

fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a bool",
        Json::Number(n) if n.is_f64() => "a float",
        Json::Number(_) => "an int",
        Json::String(_) => "a str",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

/// One id of a collection taking `expected` ids: a JSON integer for int ids, a string
/// for str ids (anything else: `IdTypeError`, as the bindings raise).
pub fn id(v: &Json, expected: IdType) -> ApiResult<Id> {
    let want = match expected {
        IdType::Int => "ints (id_type=\"int\")",
        IdType::Str => "strs (id_type=\"str\")",
    };
    let got = match (v, expected) {
        (Json::Number(n), IdType::Int) => match n.as_u64() {
            Some(i) => Some(Id::Int(i)),
            None if n.as_i64().is_some() => {
                return Err(ApiError::invalid(format!(
                    "id {n} is negative: ids must be in [0, 2^63)"
                )))
            }
            None => None,
        },
        (Json::String(s), IdType::Str) => Some(Id::Str(s.as_str().into())),
        _ => None,
    };
    let id = got.ok_or_else(|| {
        let shown: String = v.to_string().chars().take(80).collect();
        ApiError::id_type(format!(
            "id {shown} is {}, but this collection's ids are {want}",
            kind_of(v)
        ))
    })?;
    id.check(expected)?;
    Ok(id)
}

/// A list of ids (`field` names it in errors).
pub fn ids(v: &Json, expected: IdType, field: &str) -> ApiResult<Vec<Id>> {
    let Json::Array(items) = v else {
        return Err(ApiError::bad_request(format!(
            "{field} must be a list of ids, got {}",
            kind_of(v)
        )));
    };
    items.iter().map(|i| id(i, expected)).collect()
}

/// A metadata value: a JSON string, int (64-bit signed), float (finite) or bool.
fn value(v: &Json, key: &str) -> ApiResult<Value> {
    Ok(match v {
        Json::String(s) => Value::Str(s.clone()),
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) if n.is_f64() => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        Json::Number(n) => Value::Int(n.as_i64().ok_or_else(|| {
            ApiError::invalid(format!(
                "metadata field {key:?}: the integer is outside the signed 64-bit range"
            ))
        })?),
        other => {
            return Err(ApiError::invalid(format!(
                "metadata field {key:?}: values are str, int, float or bool, got {}",
                kind_of(other)
            )))
        }
    })
}

fn tags(v: Option<&Json>) -> ApiResult<Vec<String>> {
    match v {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) => items
            .iter()
            .map(|t| match t {
                Json::String(s) => Ok(s.clone()),
                other => Err(ApiError::invalid(format!(
                    "tags must be strings, got {}",
                    kind_of(other)
                ))),
            })
            .collect(),
        Some(other) => Err(ApiError::bad_request(format!(
            "tags must be a list of strings, got {}",
            kind_of(other)
        ))),
    }
}

/// An input metadata object taken apart: fields, tags, and the keys given `null`
/// (removed by a merging update).
struct MetadataParts {
    fields: Vec<(String, Value)>,
    tags: Vec<String>,
    removed: Vec<String>,
}

/// The parts of an input metadata object `{"fields": {...}, "tags": [...]}`.
fn metadata_parts(v: &Json) -> ApiResult<MetadataParts> {
    let Json::Object(obj) = v else {
        return Err(ApiError::bad_request(format!(
            "metadata must be an object {{\"fields\": {{...}}, \"tags\": [...]}}, got {}",
            kind_of(v)
        )));
    };
    if let Some(k) = obj.keys().find(|k| *k != "fields" && *k != "tags") {
        return Err(ApiError::bad_request(format!(
            "metadata has an unknown key {k:?}: it is {{\"fields\": {{...}}, \"tags\": [...]}}"
        )));
    }
    let mut fields = Vec::new();
    let mut removed = Vec::new();
    match obj.get("fields") {
        None | Some(Json::Null) => {}
        Some(Json::Object(f)) => {
            for (k, v) in f {
                if v.is_null() {
                    removed.push(k.clone());
                } else {
                    fields.push((k.clone(), value(v, k)?));
                }
            }
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "metadata fields must be an object, got {}",
                kind_of(other)
            )))
        }
    }
    Ok(MetadataParts {
        fields,
        tags: tags(obj.get("tags"))?,
        removed,
    })
}

/// Metadata to store (a `null` field is refused: metadata holds no null).
pub fn metadata(v: &Json) -> ApiResult<Metadata> {
    let MetadataParts {
        fields,
        tags,
        removed,
    } = metadata_parts(v)?;
    if let Some(k) = removed.first() {
        return Err(ApiError::invalid(format!(
            "metadata field {k:?} is null: metadata holds no null (leave the key out)"
        )));
    }
    Ok(Metadata::with_parts(fields, tags)?)
}

/// Metadata given to `update`: with `merge`, fields given `null` are removed.
pub fn metadata_update(v: &Json, merge: bool) -> ApiResult<nusterdb_core::db::MetadataUpdate> {
    use nusterdb_core::db::MetadataUpdate;
    if !merge {
        return Ok(MetadataUpdate::Replace(metadata(v)?));
    }
    let p = metadata_parts(v)?;
    Ok(MetadataUpdate::Merge {
        set: Metadata::with_parts(p.fields, p.tags)?,
        remove: p.removed,
    })
}

/// Optional metadata per row: absent or `null` = none given for any row.
pub fn metadata_rows(v: Option<&Json>, n: usize) -> ApiResult<Vec<Option<Metadata>>> {
    match v {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) if items.len() == n => items
            .iter()
            .map(|m| {
                if m.is_null() {
                    Ok(None)
                } else {
                    metadata(m).map(Some)
                }
            })
            .collect(),
        Some(Json::Array(items)) => Err(ApiError::invalid(format!(
            "metadatas has {} entries for {n} ids",
            items.len()
        ))),
        Some(other) => Err(ApiError::bad_request(format!(
            "metadatas must be a list, got {}",
            kind_of(other)
        ))),
    }
}

/// Optional documents per row: absent or `null` = none given for any row.
pub fn document_rows(v: Option<&Json>, n: usize) -> ApiResult<Vec<Option<String>>> {
    match v {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) if items.len() == n => items
            .iter()
            .map(|d| match d {
                Json::Null => Ok(None),
                Json::String(s) => Ok(Some(s.clone())),
                other => Err(ApiError::invalid(format!(
                    "documents must be strings or null, got {}",
                    kind_of(other)
                ))),
            })
            .collect(),
        Some(Json::Array(items)) => Err(ApiError::invalid(format!(
            "documents has {} entries for {n} ids",
            items.len()
        ))),
        Some(other) => Err(ApiError::bad_request(format!(
            "documents must be a list, got {}",
            kind_of(other)
        ))),
    }
}

/// Metadata as a response writes it, bookkeeping included.
pub fn metadata_out(m: &Metadata) -> MetadataOut {
    let fields: Map<String, Json> = m
        .fields()
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Str(s) => json!(s),
                Value::Int(i) => json!(i),
                // Stored floats are finite, so JSON can hold them; serde writes `3.0`
                // for 3.0, which reads back as a float.
                Value::Float(f) => {
                    serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number)
                }
                Value::Bool(b) => json!(b),
            };
            (k.clone(), v)
        })
        .collect();
    MetadataOut {
        fields,
        tags: m.tags().iter().cloned().collect(),
        created_at: m.created_at(),
        updated_at: m.updated_at(),
        version: m.version(),
    }
}

/// Metadata from its response form (for clients written in Rust and the tests).
pub fn metadata_from_json(v: &Json) -> ApiResult<Metadata> {
    let MetadataParts { fields, tags, .. } = metadata_parts(&strip_bookkeeping(v))?;
    let n = |k: &str| v.get(k).and_then(Json::as_u64).unwrap_or(0);
    Ok(Metadata::from_stored(
        fields.into_iter().collect::<BTreeMap<_, _>>(),
        tags.into_iter().collect::<BTreeSet<_>>(),
        n("created_at"),
        n("updated_at"),
        n("version"),
    ))
}

fn strip_bookkeeping(v: &Json) -> Json {
    let mut v = v.clone();
    if let Json::Object(o) = &mut v {
        for k in ["created_at", "updated_at", "version"] {
            o.remove(k);
        }
    }
    v
}

fn filter_input(v: &Json, at: &str, depth: usize) -> ApiResult<FilterInput> {
    let err = |msg: String| {
        ApiError::from(nusterdb_core::Error::Filter {
            at: at.to_owned(),
            msg,
        })
    };
    if depth > MAX_FILTER_DEPTH {
        return Err(err(format!("nested deeper than {MAX_FILTER_DEPTH} levels")));
    }
    Ok(match v {
        Json::Null => FilterInput::Null,
        Json::Bool(b) => FilterInput::Bool(*b),
        Json::Number(n) if n.is_f64() => FilterInput::Float(n.as_f64().unwrap_or(f64::NAN)),
        Json::Number(n) => FilterInput::Int(n.as_i64().ok_or_else(|| {
            err("the integer is outside the signed 64-bit range of metadata ints".into())
        })?),
        Json::String(s) => FilterInput::Str(s.clone()),
        Json::Array(items) => FilterInput::List(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| filter_input(x, &format!("{at}[{i}]"), depth + 1))
                .collect::<ApiResult<_>>()?,
        ),
        Json::Object(o) => FilterInput::Map(
            o.iter()
                .map(|(k, x)| {
                    Ok((
                        k.clone(),
                        filter_input(x, &format!("{at}[{k:?}]"), depth + 1)?,
                    ))
                })
                .collect::<ApiResult<_>>()?,
        ),
    })
}

/// An optional filter: absent or `null` = none.
pub fn filter(v: Option<&Json>) -> ApiResult<Option<Filter>> {
    match v {
        None | Some(Json::Null) => Ok(None),
        Some(v @ Json::Object(_)) => Ok(Some(Filter::parse(&filter_input(v, "filter", 0)?)?)),
        Some(other) => Err(ApiError::from(nusterdb_core::Error::Filter {
            at: "filter".into(),
            msg: format!("expected an object, got {}", kind_of(other)),
        })),
    }
}

/// An include list; absent or `null` = `default`.
pub fn include(v: Option<&Json>, default: Include) -> ApiResult<Include> {
    let items = match v {
        None | Some(Json::Null) => return Ok(default),
        Some(Json::Array(items)) => items,
        Some(other) => {
            return Err(ApiError::invalid(format!(
            "include must be a list of names among \"vector\", \"metadata\", \"document\", got {}",
            kind_of(other)
        )))
        }
    };
    let mut inc = Include::NOTHING;
    for item in items {
        match item.as_str() {
            Some("vector" | "vectors") => inc.vector = true,
            Some("metadata" | "metadatas") => inc.metadata = true,
            Some("document" | "documents") => inc.document = true,
            _ => {
                return Err(ApiError::invalid(format!(
                    "include: unknown name {item}; the names are \"vector\", \"metadata\", \"document\""
                )))
            }
        }
    }
    Ok(inc)
}

/// A hit: id, distance and the parts of its record `inc` asked for (`document` is
/// `null` for a record stored without one).
pub fn hit(r: Record, distance: f32, inc: Include) -> Hit {
    Hit {
        id: id_json(&r.id),
        distance,
        vector: if inc.vector { r.vector } else { None },
        metadata: r
            .metadata
            .as_ref()
            .filter(|_| inc.metadata)
            .map(metadata_out),
        document: inc.document.then_some(r.document),
    }
}

/// Records as column lists, `include` saying which are present.
pub fn records_out(records: Vec<Record>, inc: Include) -> Records {
    Records {
        ids: records.iter().map(|r| id_json(&r.id)).collect(),
        metadatas: inc.metadata.then(|| {
            records
                .iter()
                .map(|r| r.metadata.as_ref().map(metadata_out))
                .collect()
        }),
        documents: inc
            .document
            .then(|| records.iter().map(|r| r.document.clone()).collect()),
        vectors: inc
            .vector
            .then(|| records.into_iter().map(|r| r.vector).collect()),
    }
}

/// The HNSW part of a collection config.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HnswJson {
    pub m: Option<usize>,
    pub ef_construction: Option<usize>,
    pub ef_search: Option<usize>,
    pub max_elements: Option<usize>,
}

/// The IVF part of a collection config (`index_type` "ivf").
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IvfJson {
    /// Lists (fixed at creation; left out: the square root of the row count at each
    /// training).
    pub nlist: Option<usize>,
    /// Lists a search probes by default (left out: a sixteenth of them, at least 8).
    pub nprobe: Option<usize>,
}

/// A collection's storage engine settings (each collection is a RocksDB database: its
/// memtables and block cache are its own, so a server of many collections may want
/// them smaller than the embedded defaults).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageJson {
    /// Block cache, MiB (0: none).
    pub cache_size_mb: Option<u64>,
    /// Memtable size, MiB: writes are held in memory up to this before a flush.
    pub write_buffer_size_mb: Option<u64>,
    /// Memtables kept before writes stall (at least 2).
    pub max_write_buffer_number: Option<u32>,
    /// "none", "snappy", "lz4" or "zstd".
    pub compression: Option<String>,
}

/// A collection's config as `POST /v1/collections` takes it; what is left out takes
/// the embedded database's default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigJson {
    pub dim: usize,
    pub index_type: Option<String>,
    pub metric: Option<String>,
    pub id_type: Option<String>,
    pub quantization: Option<String>,
    pub hnsw: Option<HnswJson>,
    pub ivf: Option<IvfJson>,
    pub storage: Option<StorageJson>,
    pub sync_writes: Option<bool>,
    /// The recall@k target of a search naming no `ef_search`, `nprobe` or `recall`
    /// (in (0, 1]; not with a default `ef_search` / `nprobe`).
    pub recall: Option<f32>,
}

impl ConfigJson {
    /// The database config; every field checked by the core's own validation.
    pub fn to_config(&self) -> ApiResult<DatabaseConfig> {
        let mut c = DatabaseConfig::new(self.dim)?;
        if let Some(t) = &self.index_type {
            c.index_type = IndexType::from_name(t)?;
        }
        if let Some(m) = &self.metric {
            c.distance_metric = DistanceMetric::from_name(m)?;
        }
        if let Some(t) = &self.id_type {
            c.id_type = IdType::parse(t)?;
        }
        if let Some(q) = &self.quantization {
            c.quantization = Some(Quantization::from_name(q)?);
        }
        if let Some(h) = &self.hnsw {
            if let Some(m) = h.m {
                c.hnsw.max_nb_connection = m;
                c.hnsw.ef_construction = c.hnsw.ef_construction.max(m);
            }
            if let Some(e) = h.ef_construction {
                c.hnsw.ef_construction = e;
            }
            if h.ef_search.is_some() {
                c.hnsw.ef_search = h.ef_search;
            }
            if let Some(n) = h.max_elements {
                c.hnsw.max_nb_elements = n;
            }
        }
        if let Some(i) = &self.ivf {
            c.ivf.nlist = i.nlist;
            c.ivf.nprobe = i.nprobe;
        }
        if let Some(st) = &self.storage {
            if let Some(v) = st.cache_size_mb {
                c.storage.cache_size_mb = v;
            }
            if let Some(v) = st.write_buffer_size_mb {
                c.storage.write_buffer_size_mb = v;
            }
            if let Some(v) = st.max_write_buffer_number {
                c.storage.max_write_buffer_number = v;
            }
            if let Some(v) = &st.compression {
                c.storage.compression = nusterdb_core::Compression::from_name(v)?;
            }
        }
        if let Some(s) = self.sync_writes {
            c.storage.sync_writes = s;
        }
        c.recall = self.recall;
        c.validate()?;
        Ok(c)
    }
}

/// A config in the shape `ConfigJson` reads.
pub fn config_out(c: &DatabaseConfig) -> ConfigOut {
    ConfigOut {
        dim: c.dim,
        index_type: c.index_type.name().into(),
        metric: c.distance_metric.name().into(),
        id_type: c.id_type.name().into(),
        quantization: c.quantization().name().into(),
        hnsw: HnswOut {
            m: c.hnsw.max_nb_connection,
            ef_construction: c.hnsw.ef_construction,
            ef_search: c.hnsw.ef_search,
            max_elements: c.hnsw.max_nb_elements,
        },
        ivf: (c.index_type == IndexType::Ivf).then_some(IvfOut {
            nlist: c.ivf.nlist,
            nprobe: c.ivf.nprobe,
        }),
        storage: StorageOut {
            cache_size_mb: c.storage.cache_size_mb,
            write_buffer_size_mb: c.storage.write_buffer_size_mb,
            max_write_buffer_number: c.storage.max_write_buffer_number,
            compression: c.storage.compression.name().into(),
        },
        sync_writes: c.storage.sync_writes,
        recall: c.recall,
    }
}

/// `stats()` as an answer.
pub fn stats_out(s: &Stats) -> StatsOut {
    StatsOut {
        vector_count: s.vector_count,
        dimension: s.dimension,
        index_type: s.index_type.name().into(),
        metric: s.metric.name().into(),
        metadata_keys: s.metadata_keys.clone(),
        deleted_count: s.deleted_count,
        memory_bytes: s.memory_bytes,
        memory_by_part: s
            .memory_by_part
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect(),
        mapped_bytes: s.mapped_bytes,
        mapped_resident_bytes: s.mapped_resident_bytes,
        disk_bytes: s.disk_bytes,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_the_wrong_kind_are_id_type_errors() {
        assert_eq!(
            id(&json!("a"), IdType::Int).unwrap_err().kind,
            "IdTypeError"
        );
        assert_eq!(id(&json!(3), IdType::Str).unwrap_err().kind, "IdTypeError");
        assert_eq!(
            id(&json!(1.5), IdType::Int).unwrap_err().kind,
            "IdTypeError"
        );
        assert_eq!(
            id(&json!(-1), IdType::Int).unwrap_err().kind,
            "InvalidArgumentError"
        );
        assert_eq!(id(&json!(7), IdType::Int).unwrap(), Id::Int(7));
        assert_eq!(id(&json!("x"), IdType::Str).unwrap(), Id::Str("x".into()));
    }

    #[test]
    fn metadata_keeps_int_and_float_apart_and_round_trips() {
        let m =
            metadata(&json!({"fields": {"a": 3, "b": 3.0, "c": "s", "d": true}, "tags": ["t"]}))
                .unwrap();
        assert_eq!(m.get("a"), Some(&Value::Int(3)));
        assert_eq!(m.get("b"), Some(&Value::Float(3.0)));
        let out = serde_json::to_value(metadata_out(&m)).unwrap();
        let back = metadata_from_json(&out).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.created_at(), m.created_at());
        let text = out.to_string();
        assert!(text.contains("\"b\":3.0"), "{text}");
    }

    #[test]
    fn malformed_metadata_and_filters_are_4xx() {
        for bad in [
            json!([1]),
            json!({"fieldz": {}}),
            json!({"fields": {"a": [1]}}),
        ] {
            assert!(metadata(&bad).unwrap_err().status.is_client_error());
        }
        assert!(metadata(&json!({"fields": {"a": null}})).is_err());
        let e = filter(Some(&json!({"a": {"$bogus": 1}}))).unwrap_err();
        assert_eq!(e.kind, "FilterError");
        let e = filter(Some(&json!([1]))).unwrap_err();
        assert_eq!(e.kind, "FilterError");
        let mut deep = json!({"a": 1});
        for _ in 0..300 {
            deep = json!({ "$not": deep });
        }
        assert_eq!(filter(Some(&deep)).unwrap_err().kind, "FilterError");
    }
}
