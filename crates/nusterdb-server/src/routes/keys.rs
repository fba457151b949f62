//! `/v1/keys` (admin): create, list, revoke API keys.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::param;
use crate::auth::Scope;
use crate::error::ApiResult;
use crate::request::{payload, Ctx};
use crate::schema::{ErrorBody, Key, KeyList, Revoked};

/// A key to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReq {
    name: String,
    /// Among "read", "write", "admin" (each includes the ones before it).
    scopes: Vec<String>,
    /// The collections the key may use (default: all).
    collections: Option<Vec<String>>,
}

/// Creates a key; the answer holds the key itself, shown only here (admin).
#[utoipa::path(post, path = "/v1/keys", tag = "keys", operation_id = "keys_create", request_body = CreateReq,
    responses((status = 201, body = Key), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create(
    ctx: Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Key>)> {
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
            let mut public = entry.public();
            public.key = Some(key);
            Ok((public, None))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Every key, revoked ones included (no secrets, no hashes) (admin).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", operation_id = "keys_list",
    responses((status = 200, body = KeyList), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(ctx: Ctx) -> ApiResult<Json<KeyList>> {
    ctx.require(Scope::Admin, None)?;
    let keys = ctx.state.keys.keys()?;
    Ok(Json(KeyList {
        keys: keys.iter().map(|k| k.public()).collect(),
    }))
}

/// Revokes a key: the next request with it is 401 (admin).
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", operation_id = "keys_revoke",
    params(("id" = String, Path, description = "key id")),
    responses((status = 200, body = Revoked), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn revoke(ctx: Ctx, p: Result<Path<String>, PathRejection>) -> ApiResult<Json<Revoked>> {
    let id = param(p)?;
    ctx.require(Scope::Admin, None)?;
    let state = Arc::clone(&ctx.state);
    ctx.audited("keys.revoke", None, move || {
        state.keys.revoke(&id)?;
        Ok((Revoked { revoked: id }, None))
    })
    .await
    .map(Json)
}
