//! `/v1/collections/{c}/search` and `/batch_search`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::Json;
use nusterdb_core::db::Include;
use nusterdb_core::progress::Unobserved;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::param;
use super::records::rows_of;
use crate::auth::Scope;
use crate::error::{id_json, ApiResult};
use crate::json;
use crate::request::{payload, Ctx};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchReq {
    query: Vec<f32>,
    k: Option<usize>,
    filter: Option<Value>,
    ef_search: Option<usize>,
    include: Option<Value>,
}

/// `POST .../search` (read): the k nearest records, nearest first.
pub async fn search(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let name = param(p)?;
    ctx.require(Scope::Read, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    let req: SearchReq = payload(&headers, body, false)?.parse()?;
    Ctx::run(move || {
        let filter = json::filter(req.filter.as_ref())?;
        let inc = json::include(req.include.as_ref(), Include::NOTHING)?;
        let hits = db.search_records(
            &req.query,
            req.k.unwrap_or(10),
            filter.as_ref(),
            req.ef_search,
            inc,
        )?;
        let hits: Vec<Value> = hits
            .iter()
            .map(|(r, d)| {
                let mut o = Map::new();
                o.insert("id".into(), id_json(&r.id));
                o.insert("distance".into(), json!(d));
                json::record_into(&mut o, r, inc);
                Value::Object(o)
            })
            .collect();
        Ok(Json(json!({ "hits": hits })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchReq {
    queries: Option<Vec<Vec<f32>>>,
    k: Option<usize>,
    filter: Option<Value>,
    ef_search: Option<usize>,
    include: Option<Value>,
}

/// `POST .../batch_search` (read): every query's k nearest, as rows padded with null
/// to min(k, records stored) (JSON or raw float32 queries).
pub async fn batch_search(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
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
        let stored = db.count_where(None)?;
        let rows = db.batch_search_records(
            &queries,
            k,
            filter.as_ref(),
            req.ef_search,
            inc,
            &Unobserved,
        )?;
        let width = rows
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .max(k.min(stored));
        let pad = |mut v: Vec<Value>| {
            v.resize(width, Value::Null);
            Value::Array(v)
        };
        let mut out = Map::new();
        out.insert(
            "ids".into(),
            Value::Array(
                rows.iter()
                    .map(|r| pad(r.iter().map(|(x, _)| id_json(&x.id)).collect()))
                    .collect(),
            ),
        );
        out.insert(
            "distances".into(),
            Value::Array(
                rows.iter()
                    .map(|r| pad(r.iter().map(|(_, d)| json!(d)).collect()))
                    .collect(),
            ),
        );
        if inc.vector {
            out.insert(
                "vectors".into(),
                Value::Array(
                    rows.iter()
                        .map(|r| pad(r.iter().map(|(x, _)| json!(x.vector)).collect()))
                        .collect(),
                ),
            );
        }
        if inc.metadata {
            out.insert(
                "metadatas".into(),
                Value::Array(
                    rows.iter()
                        .map(|r| {
                            pad(r
                                .iter()
                                .map(|(x, _)| {
                                    x.metadata.as_ref().map_or(Value::Null, json::metadata_json)
                                })
                                .collect())
                        })
                        .collect(),
                ),
            );
        }
        if inc.document {
            out.insert(
                "documents".into(),
                Value::Array(
                    rows.iter()
                        .map(|r| pad(r.iter().map(|(x, _)| json!(x.document)).collect()))
                        .collect(),
                ),
            );
        }
        Ok(Json(Value::Object(out)))
    })
    .await
}
