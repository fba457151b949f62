//! `/v1/keys` (admin): create, list, revoke API keys.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::param;
use crate::auth::Scope;
use crate::error::ApiResult;
use crate::request::{payload, Ctx};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateReq {
    name: String,
    scopes: Vec<String>,
    collections: Option<Vec<String>>,
}

/// `POST /v1/keys`: a new key; the answer holds the key itself, shown only here.
pub async fn create(
    ctx: Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ctx.require(Scope::Admin, None)?;
    let req: CreateReq = payload(&headers, body, false)?.parse()?;
    let state = Arc::clone(&ctx.state);
    let v = ctx
        .audited("keys.create", None, move || {
            let scopes = req
                .scopes
                .iter()
                .map(|s| Scope::parse(s))
                .collect::<ApiResult<Vec<_>>>()?;
            let (entry, key) = state.keys.create(&req.name, scopes, req.collections)?;
            let mut v = entry.public_json();
            v["key"] = json!(key);
            Ok((v, None))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// `GET /v1/keys`: every key, revoked ones included (no secrets, no hashes).
pub async fn list(ctx: Ctx) -> ApiResult<Json<Value>> {
    ctx.require(Scope::Admin, None)?;
    let keys = ctx.state.keys.keys()?;
    let all: Vec<Value> = keys.iter().map(|k| k.public_json()).collect();
    Ok(Json(json!({ "keys": all })))
}

/// `DELETE /v1/keys/{id}`: revokes a key (at once: the next request with it is 401).
pub async fn revoke(ctx: Ctx, p: Result<Path<String>, PathRejection>) -> ApiResult<Json<Value>> {
    let id = param(p)?;
    ctx.require(Scope::Admin, None)?;
    let state = Arc::clone(&ctx.state);
    ctx.audited("keys.revoke", None, move || {
        state.keys.revoke(&id)?;
        Ok((json!({ "revoked": id }), None))
    })
    .await
    .map(Json)
}
