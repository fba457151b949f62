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
use serde_json::Value;
use utoipa::ToSchema;

use super::param;
use crate::auth::Scope;
use crate::error::ApiResult;
use crate::json;
use crate::request::{payload, Ctx};
use crate::schema::{Deleted, ErrorBody, MetadataInSchema, Restored, Snapshot, SnapshotList};

fn snapshot_out(s: &SnapshotInfo) -> Snapshot {
    Snapshot {
        name: s.name.clone(),
        created_at: s.created_at,
        vector_count: s.vector_count,
        auto: s.auto,
        metadata: json::metadata_out(&s.metadata),
    }
}

/// A snapshot to take.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReq {
    /// Default: `snapshot-<time>`.
    name: Option<String>,
    #[schema(value_type = Option<MetadataInSchema>)]
    metadata: Option<Value>,
}

/// Takes a snapshot (write).
#[utoipa::path(post, path = "/v1/collections/{c}/snapshots", tag = "snapshots", operation_id = "snapshots_create",
    params(("c" = String, Path, description = "collection name")),
    request_body = CreateReq,
    responses((status = 201, body = Snapshot), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Snapshot>)> {
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
            Ok((snapshot_out(&info), None))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// The collection's snapshots, oldest first (damaged ones left out) (read).
#[utoipa::path(get, path = "/v1/collections/{c}/snapshots", tag = "snapshots", operation_id = "snapshots_list",
    params(("c" = String, Path, description = "collection name")),
    responses((status = 200, body = SnapshotList), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    ctx: Ctx,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<SnapshotList>> {
    let name = param(p)?;
    ctx.require(Scope::Read, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    Ctx::run(move || {
        let snapshots = db.list_snapshots()?.iter().map(snapshot_out).collect();
        Ok(Json(SnapshotList { snapshots }))
    })
    .await
}

/// Rolls the collection back to a snapshot, in place (admin).
#[utoipa::path(post, path = "/v1/collections/{c}/snapshots/{s}/restore", tag = "snapshots", operation_id = "snapshots_restore",
    params(("c" = String, Path, description = "collection name"),
           ("s" = String, Path, description = "snapshot name")),
    responses((status = 200, body = Restored), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn restore(
    ctx: Ctx,
    p: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<Restored>> {
    let (name, snap) = param(p)?;
    ctx.require(Scope::Admin, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    ctx.audited("snapshots.restore", Some(&name), move || {
        db.restore_snapshot_in_place(&snap)?;
        Ok((Restored { restored: snap }, None))
    })
    .await
    .map(Json)
}

/// Deletes a snapshot (admin).
#[utoipa::path(delete, path = "/v1/collections/{c}/snapshots/{s}", tag = "snapshots", operation_id = "snapshots_delete",
    params(("c" = String, Path, description = "collection name"),
           ("s" = String, Path, description = "snapshot name")),
    responses((status = 200, body = Deleted), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete(
    ctx: Ctx,
    p: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<Deleted>> {
    let (name, snap) = param(p)?;
    ctx.require(Scope::Admin, Some(&name))?;
    let db = ctx.state.registry.get(&name)?;
    ctx.audited("snapshots.delete", Some(&name), move || {
        db.delete_snapshot(&snap)?;
        Ok((Deleted { deleted: snap }, None))
    })
    .await
    .map(Json)
}
