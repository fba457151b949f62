//! `/v1/collections`: list, create, describe, drop; a collection's stats and flush.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use nusterdb_core::Database;
use serde::Deserialize;
use serde_json::{json, Value};

use super::param;
use crate::auth::Scope;
use crate::error::ApiResult;
use crate::json::{config_json, stats_json, ConfigJson};
use crate::request::{payload, Ctx};

fn describe(name: &str, db: &Database) -> ApiResult<Value> {
    let c = db.config();
    Ok(json!({
        "name": name,
        "dim": c.dim,
        "metric": c.distance_metric.name(),
        "index_type": c.index_type.name(),
        "id_type": c.id_type.name(),
        "quantization": c.quantization().name(),
        "count": db.count_where(None)?,
        "config": config_json(c),
    }))
}

/// `GET /v1/collections`: the collections the key may use, by name.
pub async fn list(ctx: Ctx) -> ApiResult<Json<Value>> {
    ctx.require(Scope::Read, None)?;
    let state = Arc::clone(&ctx.state);
    let principal = ctx.principal.clone();
    Ctx::run(move || {
        let mut out = Vec::new();
        for (name, db) in state.registry.all() {
            if principal.may_use(&name) {
                let mut i = describe(&name, &db)?;
                if let Value::Object(o) = &mut i {
                    o.remove("config");
                }
                out.push(i);
            }
        }
        Ok(Json(json!({ "collections": out })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateReq {
    name: String,
    config: ConfigJson,
}

/// `POST /v1/collections` (admin): creates a collection.
pub async fn create(
    ctx: Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.require(Scope::Admin, None)?;
    let req: CreateReq = payload(&headers, body, false)?.parse()?;
    let state = Arc::clone(&ctx.state);
    let name = req.name.clone();
    let v = ctx
        .audited("collections.create", Some(&name), move || {
            let config = req.config.to_config()?;
            let db = state.registry.create(&req.name, config)?;
            Ok((describe(&req.name, &db)?, None))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// `GET /v1/collections/{c}`.
pub async fn info(ctx: Ctx, p: Result<Path<String>, PathRejection>) -> ApiResult<Json<Value>> {
    let name = param(p)?;
    ctx.require(Scope::Read, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    Ctx::run(move || describe(&name, &db).map(Json)).await
}

/// `DELETE /v1/collections/{c}` (admin): closes and deletes the collection.
pub async fn drop(ctx: Ctx, p: Result<Path<String>, PathRejection>) -> ApiResult<Json<Value>> {
    let name = param(p)?;
    ctx.require(Scope::Admin, Some(&name))?;
    let state = Arc::clone(&ctx.state);
    let n = name.clone();
    ctx.audited("collections.drop", Some(&name), move || {
        state.registry.drop_collection(&n)?;
        Ok((json!({ "dropped": n }), None))
    })
    .await
    .map(Json)
}

/// `GET /v1/collections/{c}/stats`.
pub async fn stats(ctx: Ctx, p: Result<Path<String>, PathRejection>) -> ApiResult<Json<Value>> {
    let name = param(p)?;
    ctx.require(Scope::Read, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    Ctx::run(move || Ok(Json(stats_json(&db.stats()?)))).await
}

/// `POST /v1/collections/{c}/flush` (write): syncs the WAL, seals if due.
pub async fn flush(ctx: Ctx, p: Result<Path<String>, PathRejection>) -> ApiResult<Json<Value>> {
    let name = param(p)?;
    ctx.require(Scope::Write, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    ctx.audited("collections.flush", Some(&name), move || {
        db.flush()?;
        Ok((json!({"flushed": true}), None))
    })
    .await
    .map(Json)
}
