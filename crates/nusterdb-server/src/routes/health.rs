//! `/healthz`, `/readyz` (no key needed) and `/metrics`.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;

use crate::app::AppState;
use crate::auth::Scope;
use crate::error::ApiResult;
use crate::request::Ctx;
use crate::schema::{ErrorBody, Health, Ready};

/// The process answers (no key needed).
#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "health_healthz", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Every collection is open (no key needed; they are opened before the server
/// listens, so a server that answers is ready).
#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "health_readyz", responses((status = 200, body = Ready)))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> Json<Ready> {
    Json(Ready {
        status: "ready".into(),
        collections: state.registry.all().len(),
    })
}

/// Prometheus metrics: requests by route and status, latency histograms, and each
/// collection's vector count (read).
#[utoipa::path(get, path = "/metrics", tag = "health", operation_id = "health_metrics",
    responses((status = 200, body = String, content_type = "text/plain"), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn metrics(ctx: Ctx) -> ApiResult<impl IntoResponse> {
    ctx.require(Scope::Read, None)?;
    let state = Arc::clone(&ctx.state);
    let extra = Ctx::run(move || {
        let mut out = String::from(
            "# HELP nusterdb_collection_vectors Vectors stored in a collection.\n\
             # TYPE nusterdb_collection_vectors gauge\n",
        );
        for (name, db) in state.registry.all() {
            if let Ok(n) = db.count_where(None) {
                let _ = writeln!(
                    out,
                    "nusterdb_collection_vectors{{collection=\"{name}\"}} {n}"
                );
            }
        }
        Ok(out)
    })
    .await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        ctx.state.metrics.render(&extra),
    ))
}
