//! `/v1/collections/{c}/records...`: add and upsert (JSON or raw float32 rows),
//! update, get, delete, clear, count, contains.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::Json;
use nusterdb_core::db::{Include, PutMode, Selection};
use nusterdb_core::{Error, IdType};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::param;
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::json;
use crate::request::{payload, Ctx};
use crate::schema::{
    Contains, Count, ErrorBody, IdSchema, MetadataInSchema, RawRows, Records, Removed, Updated,
    Written,
};

/// Rows from a JSON list of lists, each of `dim` values (a row of another length is
/// that row's dimension mismatch, not a reshaped batch).
pub fn json_rows(rows: Vec<Vec<f32>>, dim: usize) -> ApiResult<(usize, Vec<f32>)> {
    let n = rows.len();
    let mut flat = Vec::with_capacity(n.saturating_mul(dim));
    for (i, r) in rows.into_iter().enumerate() {
        if r.len() != dim {
            let e: ApiError = Error::DimensionMismatch {
                expected: dim,
                got: r.len(),
            }
            .into();
            return Err(ApiError {
                message: format!("row {i}: {}", e.message),
                ..e.with("row", i)
            });
        }
        flat.extend_from_slice(&r);
    }
    Ok((n, flat))
}

/// The rows of a request: raw ones, or the JSON field `field` (exactly one of them).
pub fn rows_of(
    raw: Option<(usize, usize, Vec<f32>)>,
    field: Option<Vec<Vec<f32>>>,
    name: &str,
    dim: usize,
) -> ApiResult<(usize, Vec<f32>)> {
    match (raw, field) {
        (Some((n, d, rows)), None) => {
            if d != dim {
                return Err(Error::DimensionMismatch {
                    expected: dim,
                    got: d,
                }
                .into());
            }
            Ok((n, rows))
        }
        (None, Some(rows)) => json_rows(rows, dim),
        (Some(_), Some(_)) => Err(ApiError::bad_request(format!(
            "{name} given twice: in the raw body and in the JSON"
        ))),
        (None, None) => Err(ApiError::bad_request(format!("{name} is required"))),
    }
}

/// A batch to add or upsert. With a raw body (`application/octet-stream` and
/// `X-NusterDB-Shape: n,dim`: n·dim little-endian float32 values, then this object as
/// JSON) `vectors` is left out.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutReq {
    /// "add" (the default: every id must be new) or "upsert".
    mode: Option<String>,
    #[schema(value_type = Vec<IdSchema>)]
    ids: Value,
    vectors: Option<Vec<Vec<f32>>>,
    /// One per id (null: none for that row).
    #[schema(value_type = Option<Vec<Option<MetadataInSchema>>>)]
    metadatas: Option<Value>,
    #[schema(value_type = Option<Vec<Option<String>>>)]
    documents: Option<Value>,
}

/// Adds or upserts a batch, atomically: all rows or none (write).
#[utoipa::path(post, path = "/v1/collections/{c}/records", tag = "records", operation_id = "records_put",
    params(("c" = String, Path, description = "collection name")),
    request_body(content(
        (PutReq = "application/json"),
        (RawRows = "application/octet-stream")
    )),
    responses((status = 200, body = Written), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn put(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Written>> {
    let name = param(p)?;
    ctx.require(Scope::Write, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    let mut p = payload(&headers, body, true)?;
    let req: PutReq = p.parse()?;
    let mode = match req.mode.as_deref() {
        None | Some("add") => PutMode::Add,
        Some("upsert") => PutMode::Upsert,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "mode must be \"add\" or \"upsert\", got {other:?}"
            )))
        }
    };
    let op = if mode == PutMode::Add {
        "records.add"
    } else {
        "records.upsert"
    };
    let dim = db.config().dim;
    let (n, rows) = rows_of(p.rows.take(), req.vectors, "vectors", dim)?;
    ctx.audited(op, Some(&name), move || {
        let ids = json::ids(&req.ids, db.config().id_type, "ids")?;
        if ids.len() != n {
            return Err(ApiError::invalid(format!(
                "{} ids for {n} vectors",
                ids.len()
            )));
        }
        let metadata = json::metadata_rows(req.metadatas.as_ref(), n)?;
        let documents = json::document_rows(req.documents.as_ref(), n)?;
        let written = db.put(mode, &ids, &rows, metadata, documents)?;
        Ok((Written { written }, Some(written as u64)))
    })
    .await
    .map(Json)
}

/// What to change of one record (what is left out is kept).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateReq {
    #[schema(value_type = IdSchema)]
    id: Value,
    vector: Option<Vec<f32>>,
    #[schema(value_type = Option<MetadataInSchema>)]
    metadata: Option<Value>,
    document: Option<String>,
    /// Merge into the stored metadata (the default; a field given null is removed) or
    /// replace it.
    merge: Option<bool>,
}

/// Changes one record's vector, metadata or document (write).
#[utoipa::path(post, path = "/v1/collections/{c}/records/update", tag = "records", operation_id = "records_update",
    params(("c" = String, Path, description = "collection name")),
    request_body = UpdateReq,
    responses((status = 200, body = Updated), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Updated>> {
    let name = param(p)?;
    ctx.require(Scope::Write, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    let req: UpdateReq = payload(&headers, body, false)?.parse()?;
    ctx.audited("records.update", Some(&name), move || {
        let id = json::id(&req.id, db.config().id_type)?;
        if req.vector.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::EmptyVector.into());
        }
        let metadata = match &req.metadata {
            None | Some(Value::Null) => None,
            Some(m) => Some(json::metadata_update(m, req.merge.unwrap_or(true))?),
        };
        db.update_record(&id, req.vector.as_deref(), metadata, req.document)?;
        Ok((Updated { updated: true }, Some(1)))
    })
    .await
    .map(Json)
}

/// Which records to read: these ids in this order, or every record in id order;
/// then only those the filter allows, after `after`, skipping `offset`, at most
/// `limit`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GetReq {
    #[schema(value_type = Option<Vec<IdSchema>>)]
    ids: Option<Value>,
    /// Names among "vector", "metadata", "document" (default: all three).
    #[schema(value_type = Option<Vec<String>>)]
    include: Option<Value>,
    #[schema(value_type = Option<Object>)]
    filter: Option<Value>,
    #[schema(value_type = Option<u64>)]
    limit: Option<Value>,
    #[schema(value_type = Option<u64>)]
    offset: Option<Value>,
    #[schema(value_type = Option<IdSchema>)]
    after: Option<Value>,
}

/// A count argument (`limit`, `offset`): an integer ≥ 0, as the embedded database
/// takes it (a negative one is `InvalidArgumentError`; counts past `usize` saturate).
fn count_arg(v: Option<&Value>, what: &str) -> ApiResult<Option<usize>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_u64() => {
            Ok(Some(n.as_u64().map_or(usize::MAX, |x| {
                usize::try_from(x).unwrap_or(usize::MAX)
            })))
        }
        Some(Value::Number(n)) if n.is_i64() => Err(ApiError::invalid(format!(
            "{what} must be 0 or more, got {n}"
        ))),
        Some(other) => Err(ApiError::bad_request(format!(
            "{what} must be an int, got {other}"
        ))),
    }
}

/// Records by id, or every record a filter allows, in pages (read).
#[utoipa::path(post, path = "/v1/collections/{c}/records/get", tag = "records", operation_id = "records_get_many",
    params(("c" = String, Path, description = "collection name")),
    request_body = GetReq,
    responses((status = 200, body = Records), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_many(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Records>> {
    let name = param(p)?;
    ctx.require(Scope::Read, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    let req: GetReq = payload(&headers, body, false)?.parse()?;
    Ctx::run(move || {
        let t = db.config().id_type;
        let ids = match &req.ids {
            None | Some(Value::Null) => None,
            Some(v) => Some(json::ids(v, t, "ids")?),
        };
        let after = match &req.after {
            None | Some(Value::Null) => None,
            Some(v) => Some(json::id(v, t)?),
        };
        let filter = json::filter(req.filter.as_ref())?;
        let inc = json::include(req.include.as_ref(), Include::ALL)?;
        let sel = Selection {
            ids: ids.as_deref(),
            filter: filter.as_ref(),
            after: after.as_ref(),
            offset: count_arg(req.offset.as_ref(), "offset")?.unwrap_or(0),
            limit: count_arg(req.limit.as_ref(), "limit")?,
        };
        let records = db.select(sel, inc)?;
        Ok(Json(json::records_out(records, inc)))
    })
    .await
}

/// The records to remove: these ids and/or those the filter allows.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteReq {
    #[schema(value_type = Option<Vec<IdSchema>>)]
    ids: Option<Value>,
    #[schema(value_type = Option<Object>)]
    filter: Option<Value>,
}

/// Removes the given ids and/or what a filter allows, atomically (write).
#[utoipa::path(post, path = "/v1/collections/{c}/records/delete", tag = "records", operation_id = "records_delete",
    params(("c" = String, Path, description = "collection name")),
    request_body = DeleteReq,
    responses((status = 200, body = Removed), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Removed>> {
    let name = param(p)?;
    ctx.require(Scope::Write, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    let req: DeleteReq = payload(&headers, body, false)?.parse()?;
    ctx.audited("records.delete", Some(&name), move || {
        let ids = match &req.ids {
            None | Some(Value::Null) => None,
            Some(v) => Some(json::ids(v, db.config().id_type, "ids")?),
        };
        let empty_filter = matches!(&req.filter, Some(Value::Object(o)) if o.is_empty());
        let filter = json::filter(req.filter.as_ref())?;
        if ids.is_none() && filter.is_none() {
            return Err(ApiError::invalid("delete needs ids and/or a filter"));
        }
        if ids.is_none() && empty_filter {
            return Err(ApiError::invalid(
                "filter={} matches every record: use clear() to remove them all",
            ));
        }
        let removed = db.delete_where(ids.as_deref(), filter.as_ref())?;
        Ok((Removed { removed }, Some(removed as u64)))
    })
    .await
    .map(Json)
}

/// Removes every record atomically (write).
#[utoipa::path(post, path = "/v1/collections/{c}/records/clear", tag = "records", operation_id = "records_clear",
    params(("c" = String, Path, description = "collection name")),
    responses((status = 200, body = Removed), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn clear(ctx: Ctx, p: Result<Path<String>, PathRejection>) -> ApiResult<Json<Removed>> {
    let name = param(p)?;
    ctx.require(Scope::Write, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    ctx.audited("records.clear", Some(&name), move || {
        let removed = db.clear()?;
        Ok((Removed { removed }, Some(removed as u64)))
    })
    .await
    .map(Json)
}

/// What to count (every record without a filter).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountReq {
    #[schema(value_type = Option<Object>)]
    filter: Option<Value>,
}

/// The number of records a filter allows (read).
#[utoipa::path(post, path = "/v1/collections/{c}/records/count", tag = "records", operation_id = "records_count",
    params(("c" = String, Path, description = "collection name")),
    request_body = CountReq,
    responses((status = 200, body = Count), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn count(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Count>> {
    let name = param(p)?;
    ctx.require(Scope::Read, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    let req: CountReq = payload(&headers, body, false)?.parse()?;
    Ctx::run(move || {
        let filter = json::filter(req.filter.as_ref())?;
        Ok(Json(Count {
            count: db.count_where(filter.as_ref())?,
        }))
    })
    .await
}

/// The id to look for.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainsReq {
    #[schema(value_type = IdSchema)]
    id: Value,
}

/// Whether an id is stored (read); an id of the wrong kind is 400 `IdTypeError`.
#[utoipa::path(post, path = "/v1/collections/{c}/records/contains", tag = "records", operation_id = "records_contains",
    params(("c" = String, Path, description = "collection name")),
    request_body = ContainsReq,
    responses((status = 200, body = Contains), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn contains(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Contains>> {
    let name = param(p)?;
    ctx.require(Scope::Read, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    let req: ContainsReq = payload(&headers, body, false)?.parse()?;
    Ctx::run(move || {
        let t: IdType = db.config().id_type;
        let id = json::id(&req.id, t)?;
        Ok(Json(Contains {
            contains: db.contains_id(&id)?,
        }))
    })
    .await
}
