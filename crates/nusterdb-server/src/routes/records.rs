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
use serde_json::{json, Value};

use super::param;
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::json;
use crate::request::{payload, Ctx};

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutReq {
    mode: Option<String>,
    ids: Value,
    vectors: Option<Vec<Vec<f32>>>,
    metadatas: Option<Value>,
    documents: Option<Value>,
}

/// `POST /v1/collections/{c}/records` (write): adds or upserts a batch, atomically.
pub async fn put(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
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
        Ok((json!({ "written": written }), Some(written as u64)))
    })
    .await
    .map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateReq {
    id: Value,
    vector: Option<Vec<f32>>,
    metadata: Option<Value>,
    document: Option<String>,
    merge: Option<bool>,
}

/// `POST .../records/update` (write): changes one record's vector, metadata or
/// document.
pub async fn update(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let name = param(p)?;
    ctx.require(Scope::Write, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    let req: UpdateReq = payload(&headers, body, false)?.parse()?;
    ctx.audited("records.update", Some(&name), move || {
        let id = json::id(&req.id, db.config().id_type)?;
        let metadata = match &req.metadata {
            None | Some(Value::Null) => None,
            Some(m) => Some(json::metadata_update(m, req.merge.unwrap_or(true))?),
        };
        db.update_record(&id, req.vector.as_deref(), metadata, req.document)?;
        Ok((json!({"updated": true}), Some(1)))
    })
    .await
    .map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetReq {
    ids: Option<Value>,
    include: Option<Value>,
    filter: Option<Value>,
    limit: Option<usize>,
    offset: Option<usize>,
    after: Option<Value>,
}

/// `POST .../records/get` (read): records by id, or every record a filter allows,
/// in pages.
pub async fn get_many(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
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
            offset: req.offset.unwrap_or(0),
            limit: req.limit,
        };
        let records = db.select(sel, inc)?;
        Ok(Json(json::records_json(&records, inc)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteReq {
    ids: Option<Value>,
    filter: Option<Value>,
}

/// `POST .../records/delete` (write): removes the given ids and/or what a filter
/// allows, atomically.
pub async fn delete(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
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
        Ok((json!({ "removed": removed }), Some(removed as u64)))
    })
    .await
    .map(Json)
}

/// `POST .../records/clear` (write): removes every record atomically.
pub async fn clear(ctx: Ctx, p: Result<Path<String>, PathRejection>) -> ApiResult<Json<Value>> {
    let name = param(p)?;
    ctx.require(Scope::Write, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    ctx.audited("records.clear", Some(&name), move || {
        let removed = db.clear()?;
        Ok((json!({ "removed": removed }), Some(removed as u64)))
    })
    .await
    .map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CountReq {
    filter: Option<Value>,
}

/// `POST .../records/count` (read).
pub async fn count(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let name = param(p)?;
    ctx.require(Scope::Read, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    let req: CountReq = payload(&headers, body, false)?.parse()?;
    Ctx::run(move || {
        let filter = json::filter(req.filter.as_ref())?;
        Ok(Json(json!({ "count": db.count_where(filter.as_ref())? })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContainsReq {
    id: Value,
}

/// `POST .../records/contains` (read); an id of the wrong kind is 400 `IdTypeError`.
pub async fn contains(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let name = param(p)?;
    ctx.require(Scope::Read, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    let req: ContainsReq = payload(&headers, body, false)?.parse()?;
    Ctx::run(move || {
        let t: IdType = db.config().id_type;
        let id = json::id(&req.id, t)?;
        Ok(Json(json!({ "contains": db.contains_id(&id)? })))
    })
    .await
}
