//! `/v1/collections`: list, create, describe, drop; a collection's stats and flush.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use nusterdb_core::Database;
use serde::Deserialize;
use utoipa::ToSchema;

use super::param;
use crate::auth::Scope;
use crate::error::ApiResult;
use crate::json::{config_out, stats_out, ConfigJson};
use crate::request::{payload, Ctx};
use crate::schema::{CollectionInfo, CollectionList, Dropped, ErrorBody, Flushed, StatsOut};

fn describe(name: &str, db: &Database, with_config: bool) -> ApiResult<CollectionInfo> {
    let c = db.config();
    Ok(CollectionInfo {
        name: name.to_owned(),
        dim: c.dim,
        metric: c.distance_metric.name().into(),
        index_type: c.index_type.name().into(),
        id_type: c.id_type.name().into(),
        quantization: c.quantization().name().into(),
        encrypted: c.storage.encryption.is_some(),
        count: db.count_where(None)?,
        config: with_config.then(|| config_out(c)),
    })
}

/// The collections the key may use, by name.
#[utoipa::path(get, path = "/v1/collections", tag = "collections", operation_id = "collections_list",
    responses((status = 200, body = CollectionList), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(ctx: Ctx) -> ApiResult<Json<CollectionList>> {
    ctx.require(Scope::Read, None)?;
    let state = Arc::clone(&ctx.state);
    let principal = ctx.principal.clone();
    Ctx::run(move || {
        let mut collections = Vec::new();
        for (name, db) in state.registry.all() {
            if principal.may_use(&name) {
                collections.push(describe(&name, &db, false)?);
            }
        }
        Ok(Json(CollectionList { collections }))
    })
    .await
}

/// A new collection's name and config.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReq {
    name: String,
    config: ConfigJson,
}

/// Creates a collection (admin).
#[utoipa::path(post, path = "/v1/collections", tag = "collections", operation_id = "collections_create", request_body = CreateReq,
    responses((status = 201, body = CollectionInfo), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create(
    ctx: Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<CollectionInfo>)> {
    ctx.require(Scope::Admin, None)?;
    let req: CreateReq = payload(&headers, body, false)?.parse()?;
    let state = Arc::clone(&ctx.state);
    let name = req.name.clone();
    let v = ctx
        .audited("collections.create", Some(&name), move || {
            let config = req.config.to_config()?;
            let db = state.registry.create(&req.name, config)?;
            Ok((describe(&req.name, &db, true)?, None))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// A collection: shape, count and config.
#[utoipa::path(get, path = "/v1/collections/{c}", tag = "collections", operation_id = "collections_info",
    params(("c" = String, Path, description = "collection name")),
    responses((status = 200, body = CollectionInfo), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn info(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<CollectionInfo>> {
    let name = param(p)?;
    ctx.require(Scope::Read, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    Ctx::run(move || describe(&name, &db, true).map(Json)).await
}

/// Closes and deletes a collection (admin).
#[utoipa::path(delete, path = "/v1/collections/{c}", tag = "collections", operation_id = "collections_drop",
    params(("c" = String, Path, description = "collection name")),
    responses((status = 200, body = Dropped), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn drop(ctx: Ctx, p: Result<Path<String>, PathRejection>) -> ApiResult<Json<Dropped>> {
    let name = param(p)?;
    ctx.require(Scope::Admin, Some(&name))?;
    let state = Arc::clone(&ctx.state);
    let n = name.clone();
    ctx.audited("collections.drop", Some(&name), move || {
        state.registry.drop_collection(&n)?;
        Ok((Dropped { dropped: n }, None))
    })
    .await
    .map(Json)
}

/// The collection's `stats()`.
#[utoipa::path(get, path = "/v1/collections/{c}/stats", tag = "collections", operation_id = "collections_stats",
    params(("c" = String, Path, description = "collection name")),
    responses((status = 200, body = StatsOut), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn stats(ctx: Ctx, p: Result<Path<String>, PathRejection>) -> ApiResult<Json<StatsOut>> {
    let name = param(p)?;
    ctx.require(Scope::Read, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    Ctx::run(move || Ok(Json(stats_out(&db.stats()?)))).await
}

/// Syncs the write-ahead log and seals if due (write).
#[utoipa::path(post, path = "/v1/collections/{c}/flush", tag = "collections", operation_id = "collections_flush",
    params(("c" = String, Path, description = "collection name")),
    responses((status = 200, body = Flushed), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn flush(ctx: Ctx, p: Result<Path<String>, PathRejection>) -> ApiResult<Json<Flushed>> {
    let name = param(p)?;
    ctx.require(Scope::Write, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    ctx.audited("collections.flush", Some(&name), move || {
        db.flush()?;
        Ok((Flushed { flushed: true }, None))
    })
    .await
    .map(Json)
}
