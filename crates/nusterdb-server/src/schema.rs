//! The bodies the API answers with, as types: the handlers build them and the OpenAPI
//! document (`openapi.rs`) describes them from the same definitions, so the document
//! cannot drift from what is sent. A few types exist only to describe a JSON shape
//! the requests read through `serde_json::Value` (ids of either kind, metadata).

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// An id: an integer in an int-id collection, a string in a str-id one.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = Id)]
#[allow(dead_code)] // describes a JSON shape; values are read as `serde_json::Value`
pub enum IdSchema {
    Int(u64),
    Str(String),
}

/// A raw body: n·dim little-endian float32 values (`X-NusterDB-Shape: n,dim`), then
/// the request's other fields as a JSON object.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct RawRows(Vec<u8>);

/// Metadata as a request gives it: fields and tags (both optional).
#[derive(ToSchema)]
#[schema(as = MetadataIn)]
#[allow(dead_code)]
pub struct MetadataInSchema {
    /// str, int, float or bool values; in a merging update, null removes the key.
    #[schema(value_type = Option<Object>)]
    fields: Option<Map<String, Value>>,
    tags: Option<Vec<String>>,
}

/// Metadata as stored: fields, tags and bookkeeping.
#[derive(Serialize, ToSchema)]
pub struct MetadataOut {
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    pub tags: Vec<String>,
    pub created_at: u64,
    pub updated_at: u64,
    pub version: u64,
}

/// The error body of every non-2xx answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The exception class of `nusterdb.exceptions` (or a server-only type).
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    pub message: String,
    /// The numbers and names of the message (`expected`, `got`, `id`, `at`, ...).
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct Ready {
    pub status: String,
    pub collections: usize,
}

/// A collection's HNSW settings.
#[derive(Serialize, ToSchema)]
pub struct HnswOut {
    pub m: usize,
    pub ef_construction: usize,
    pub ef_search: Option<usize>,
    pub max_elements: usize,
}

/// A collection's IVF settings (null: automatic).
#[derive(Serialize, ToSchema)]
pub struct IvfOut {
    pub nlist: Option<usize>,
    pub nprobe: Option<usize>,
}

/// A collection's storage engine settings.
#[derive(Serialize, ToSchema)]
pub struct StorageOut {
    pub cache_size_mb: u64,
    pub write_buffer_size_mb: u64,
    pub max_write_buffer_number: u32,
    pub compression: String,
}

/// A collection's config, in the shape creation takes.
#[derive(Serialize, ToSchema)]
pub struct ConfigOut {
    pub dim: usize,
    pub index_type: String,
    pub metric: String,
    pub id_type: String,
    pub quantization: String,
    pub hnsw: HnswOut,
    /// Present for an IVF collection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ivf: Option<IvfOut>,
    pub storage: StorageOut,
    pub sync_writes: bool,
    /// The default recall@k target (null: none).
    pub recall: Option<f32>,
}

/// A collection: its shape and count (and, described alone, its config).
#[derive(Serialize, ToSchema)]
pub struct CollectionInfo {
    pub name: String,
    pub dim: usize,
    pub metric: String,
    pub index_type: String,
    pub id_type: String,
    pub quantization: String,
    /// Encrypted at rest (the server was started with a master key).
    pub encrypted: bool,
    pub count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigOut>,
}

#[derive(Serialize, ToSchema)]
pub struct CollectionList {
    pub collections: Vec<CollectionInfo>,
}

#[derive(Serialize, ToSchema)]
pub struct Dropped {
    pub dropped: String,
}

#[derive(Serialize, ToSchema)]
pub struct Flushed {
    pub flushed: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Written {
    pub written: usize,
}

#[derive(Serialize, ToSchema)]
pub struct Updated {
    pub updated: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Removed {
    pub removed: usize,
}

#[derive(Serialize, ToSchema)]
pub struct Count {
    pub count: usize,
}

#[derive(Serialize, ToSchema)]
pub struct Contains {
    pub contains: bool,
}

/// Records as columns; `vectors`, `metadatas` and `documents` as `include` asked.
#[derive(Serialize, ToSchema)]
pub struct Records {
    #[schema(value_type = Vec<IdSchema>)]
    pub ids: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vectors: Option<Vec<Option<Vec<f32>>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadatas: Option<Vec<Option<MetadataOut>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub documents: Option<Vec<Option<String>>>,
}

/// One search hit: id, distance, and what `include` asked for.
#[derive(Serialize, ToSchema)]
pub struct Hit {
    #[schema(value_type = IdSchema)]
    pub id: Value,
    pub distance: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataOut>,
    /// Present when asked for: null for a record stored without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub document: Option<Option<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct Hits {
    pub hits: Vec<Hit>,
}

/// Every query's hits as rows of one width, padded with null.
#[derive(Serialize, ToSchema)]
pub struct BatchHits {
    #[schema(value_type = Vec<Vec<Option<IdSchema>>>)]
    pub ids: Vec<Vec<Option<Value>>>,
    pub distances: Vec<Vec<Option<f32>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vectors: Option<Vec<Vec<Option<Vec<f32>>>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadatas: Option<Vec<Vec<Option<MetadataOut>>>>,
    /// Null for padding and for a hit stored without a document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub documents: Option<Vec<Vec<Option<String>>>>,
}

#[derive(Serialize, ToSchema)]
pub struct StatsOut {
    pub vector_count: u64,
    pub dimension: usize,
    pub index_type: String,
    pub metric: String,
    pub metadata_keys: Vec<String>,
    pub deleted_count: u64,
    pub memory_bytes: u64,
    #[schema(value_type = Object)]
    pub memory_by_part: Map<String, Value>,
    pub mapped_bytes: u64,
    pub mapped_resident_bytes: Option<u64>,
    pub disk_bytes: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Snapshot {
    pub name: String,
    pub created_at: u64,
    pub vector_count: u64,
    pub auto: bool,
    pub metadata: MetadataOut,
}

#[derive(Serialize, ToSchema)]
pub struct SnapshotList {
    pub snapshots: Vec<Snapshot>,
}

#[derive(Serialize, ToSchema)]
pub struct Restored {
    pub restored: String,
}

#[derive(Serialize, ToSchema)]
pub struct Deleted {
    pub deleted: String,
}

/// An API key (no secret, no hash); `key` only in the answer that created it.
#[derive(Serialize, ToSchema)]
pub struct Key {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub collections: Option<Vec<String>>,
    pub created_at: u64,
    pub revoked: bool,
    pub revoked_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<Key>,
}

#[derive(Serialize, ToSchema)]
pub struct Revoked {
    pub revoked: String,
}
