//! `/v1/collections/{c}/search` and `/batch_search`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::Json;
use nusterdb_core::db::Include;
use nusterdb_core::index::SearchParams;
use nusterdb_core::progress::Unobserved;
use nusterdb_core::Error;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::param;
use super::records::rows_of;
use crate::auth::Scope;
use crate::error::{id_json, ApiError, ApiResult};
use crate::json;
use crate::request::{payload, Ctx};
use crate::schema::{BatchHits, ErrorBody, Hits, RawRows};

/// One query.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchReq {
    query: Vec<f32>,
    /// How many hits (default 10).
    k: Option<usize>,
    #[schema(value_type = Option<Object>)]
    filter: Option<Value>,
    /// HNSW candidate list size for this search.
    ef_search: Option<usize>,
    /// Lists an IVF index probes for this search.
    nprobe: Option<usize>,
    /// A recall@k target in (0, 1] instead of ef_search or nprobe: the database sets
    /// the one its calibration on its own rows says reaches it.
    recall: Option<f32>,
    /// Names among "vector", "metadata", "document" (default: none).
    #[schema(value_type = Option<Vec<String>>)]
    include: Option<Value>,
    /// false: an HNSW index walks on the full rows for this search instead of its
    /// codes (true is refused where there are no codes; default: the index's setting).
    quantized: Option<bool>,
}

/// The k nearest records, nearest first (read).
#[utoipa::path(post, path = "/v1/collections/{c}/search", tag = "search", operation_id = "search_search",
    params(("c" = String, Path, description = "collection name")),
    request_body = SearchReq,
    responses((status = 200, body = Hits), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn search(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Hits>> {
    let name = param(p)?;
    ctx.require(Scope::Read, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    let req: SearchReq = payload(&headers, body, false)?.parse()?;
    Ctx::run(move || {
        let filter = json::filter(req.filter.as_ref())?;
        let inc = json::include(req.include.as_ref(), Include::NOTHING)?;
        let k = req.k.unwrap_or(10);
        if req.query.is_empty() {
            return Err(Error::EmptyVector.into());
        }
        let params = SearchParams {
            ef_search: req.ef_search,
            quantized: req.quantized,
            nprobe: req.nprobe,
            // Set by recall targets only (`probe_reach` is not part of the HTTP API).
            probe_reach: None,
            recall: req.recall,
        };
        let hits = db.search_records(&req.query, k, filter.as_ref(), params, inc)?;
        let hits = hits
            .into_iter()
            .map(|(r, d)| json::hit(r, d, inc))
            .collect();
        Ok(Json(Hits { hits }))
    })
    .await
}

/// Many queries. With a raw body (`application/octet-stream` and `X-NusterDB-Shape:
/// n,dim`: the queries as float32, then this object as JSON) `queries` is left out.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchReq {
    queries: Option<Vec<Vec<f32>>>,
    k: Option<usize>,
    #[schema(value_type = Option<Object>)]
    filter: Option<Value>,
    ef_search: Option<usize>,
    nprobe: Option<usize>,
    /// As for a single search.
    recall: Option<f32>,
    #[schema(value_type = Option<Vec<String>>)]
    include: Option<Value>,
    /// As for a single search.
    quantized: Option<bool>,
}

/// Rows of one width: `f` of each hit, padded with `None` (null).
fn pad<T, U>(rows: &[Vec<T>], width: usize, f: impl Fn(&T) -> Option<U>) -> Vec<Vec<Option<U>>> {
    rows.iter()
        .map(|r| {
            let mut v: Vec<Option<U>> = r.iter().map(&f).collect();
            v.resize_with(width, || None);
            v
        })
        .collect()
}

/// Every query's k nearest, as rows padded with null to min(k, records stored) (read).
#[utoipa::path(post, path = "/v1/collections/{c}/batch_search", tag = "search", operation_id = "search_batch_search",
    params(("c" = String, Path, description = "collection name")),
    request_body(content(
        (BatchReq = "application/json"),
        (RawRows = "application/octet-stream")
    )),
    responses((status = 200, body = BatchHits), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn batch_search(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<BatchHits>> {
    let name = param(p)?;
    ctx.require(Scope::Read, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    let mut p = payload(&headers, body, true)?;
    let req: BatchReq = p.parse()?;
    let dim = db.config().dim;
    let (_, queries) = rows_of(p.rows.take(), req.queries, "queries", dim)?;
    Ctx::run(move || {
        let filter = json::filter(req.filter.as_ref())?;
        let inc = json::include(req.include.as_ref(), Include::NOTHING)?;
        let k = req.k.unwrap_or(10);
        if k == 0 {
            return Err(ApiError::invalid("k must be at least 1"));
        }
        // As the embedded batch_search: rows are min(k, stored) wide, and the core gets
        // that width as k (at least 1, so it still checks the queries), so a huge k that
        // fits asks for nothing k-sized.
        let width = k.min(db.count_where(None)?);
        let rows = db.batch_search_records(
            &queries,
            width.max(1),
            filter.as_ref(),
            SearchParams {
                ef_search: req.ef_search,
                quantized: req.quantized,
                nprobe: req.nprobe,
                probe_reach: None,
                recall: req.recall,
            },
            inc,
            &Unobserved,
        )?;
        // A row holds at most `width` hits, except when nothing was stored (the core
        // ran with k = 1) and a writer added a row since.
        let rows: Vec<Vec<_>> = rows
            .into_iter()
            .map(|r| r.into_iter().take(width).collect())
            .collect();
        Ok(Json(BatchHits {
            ids: pad(&rows, width, |(r, _)| Some(id_json(&r.id))),
            distances: pad(&rows, width, |(_, d)| Some(*d)),
            vectors: inc
                .vector
                .then(|| pad(&rows, width, |(r, _)| r.vector.clone())),
            metadatas: inc.metadata.then(|| {
                pad(&rows, width, |(r, _)| {
                    r.metadata.as_ref().map(json::metadata_out)
                })
            }),
            documents: inc
                .document
                .then(|| pad(&rows, width, |(r, _)| r.document.clone())),
        }))
    })
    .await
}
