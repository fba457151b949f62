//! `/v1/collections/{c}/snapshots`: take (write), list (read), restore in place and
//! delete (admin).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use nusterdb_core::snapshot::SnapshotInfo;
use nusterdb_core::Metadata;
use serde::Deserialize;
use serde_json::{json, Value};

use super::param;
use crate::auth::Scope;
use crate::error::ApiResult;
use crate::json;
use crate::request::{payload, Ctx};

fn info_json(s: &SnapshotInfo) -> Value {
    json!({
        "name": s.name,
        "created_at": s.created_at,
        "vector_count": s.vector_count,
        "auto": s.auto,
        "metadata": json::metadata_json(&s.metadata),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateReq {
    name: Option<String>,
    metadata: Option<Value>,
}

/// `POST .../snapshots` (write): takes a snapshot (named `snapshot-<time>` when no
/// name is given).
pub async fn create(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let name = param(p)?;
    ctx.require(Scope::Write, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    let req: CreateReq = payload(&headers, body, false)?.parse()?;
    let v = ctx
        .audited("snapshots.create", Some(&name), move || {
            let m = match &req.metadata {
                None | Some(Value::Null) => Metadata::new(),
                Some(m) => json::metadata(m)?,
            };
            let snap = req.name.unwrap_or_else(|| {
                nusterdb_core::snapshot::auto_name().replacen("auto-", "snapshot-", 1)
            });
            let info = db.snapshot(&snap, &m)?;
            Ok((info_json(&info), None))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// `GET .../snapshots` (read): oldest first (damaged ones left out).
pub async fn list(ctx: Ctx, p: Result<Path<String>, PathRejection>) -> ApiResult<Json<Value>> {
    let name = param(p)?;
    ctx.require(Scope::Read, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    Ctx::run(move || {
        let all: Vec<Value> = db.list_snapshots()?.iter().map(info_json).collect();
        Ok(Json(json!({ "snapshots": all })))
    })
    .await
}

/// `POST .../snapshots/{s}/restore` (admin): rolls the collection back in place.
pub async fn restore(
    ctx: Ctx,
    p: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let (name, snap) = param(p)?;
    ctx.require(Scope::Admin, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    ctx.audited("snapshots.restore", Some(&name), move || {
        db.restore_snapshot_in_place(&snap)?;
        Ok((json!({ "restored": snap }), None))
    })
    .await
    .map(Json)
}

/// `DELETE .../snapshots/{s}` (admin).
pub async fn delete(
    ctx: Ctx,
    p: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let (name, snap) = param(p)?;
    ctx.require(Scope::Admin, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    ctx.audited("snapshots.delete", Some(&name), move || {
        db.delete_snapshot(&snap)?;
        Ok((json!({ "deleted": snap }), None))
    })
    .await
    .map(Json)
}
