//! The server: its settings, shared state, router, middleware (metrics, timeouts,
//! JSON answers for unknown routes and methods) and the serve loop (HTTP or HTTPS)
//! with graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;

use crate::audit::AuditLog;
use crate::auth::KeyStore;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::routes;
use crate::tls::{ClientAddr, TlsListener};

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub host: String,
    pub port: u16,
    /// No API keys: every request may do everything. Refused unless `host` is a
    /// loopback address.
    pub no_auth: bool,
    /// The largest request body accepted (413 above).
    pub max_body_bytes: usize,
    /// A request running longer is answered 503 `TimeoutError` (the work it started
    /// runs to its end).
    pub request_timeout: Duration,
    /// An audit file is rotated past this size.
    pub audit_max_bytes: u64,
    /// PEM certificate chain and private key: serve HTTPS instead of HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The master key of encryption at rest: every collection is created encrypted
    /// under it and opened with it.
    pub encryption: Option<nusterdb_core::config::MasterKey>,
}

impl ServerConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            host: "127.0.0.1".into(),
            port: 7878,
            no_auth: false,
            max_body_bytes: 256 << 20,
            request_timeout: Duration::from_secs(300),
            audit_max_bytes: 64 << 20,
            tls: None,
            encryption: None,
        }
    }
}

/// What every handler shares.
pub struct AppState {
    pub config: ServerConfig,
    pub registry: Registry,
    pub keys: KeyStore,
    pub audit: AuditLog,
    pub metrics: Metrics,
}

impl AppState {
    /// Opens the data directory: every collection, the key file, the audit log.
    ///
    /// # Errors
    /// A collection that cannot be opened, an audit log that cannot be continued.
    pub fn open(config: ServerConfig) -> Result<Arc<Self>, String> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| format!("cannot create {}: {e}", config.data_dir.display()))?;
        let registry = Registry::open(&config.data_dir, config.encryption.clone())
            .map_err(|e| e.to_string())?;
        let audit = AuditLog::open(&config.data_dir, config.audit_max_bytes)
            .map_err(|e| format!("cannot open the audit log: {e}"))?;
        Ok(Arc::new(Self {
            keys: KeyStore::new(&config.data_dir),
            registry,
            audit,
            metrics: Metrics::default(),
            config,
        }))
    }
}

async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = match tokio::time::timeout(state.config.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TimeoutError",
            format!(
                "the request ran past the server's limit of {:?}; a write it started may \
                 still complete (check before retrying it)",
                state.config.request_timeout
            ),
        )
        .into_response(),
    };
    state.metrics.observe(
        &route,
        &method,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

async fn not_found(State(state): State<Arc<AppState>>, req: Request) -> Response {
    state
        .metrics
        .observe("unmatched", req.method().as_str(), 404, 0.0);
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NotFoundError",
        format!("no route {} {}", req.method(), req.uri().path()),
    )
    .into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowedError",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
    .into_response()
}

/// The routes of API version 1.
pub fn router(state: Arc<AppState>) -> Router {
    use routes::{
        collections as c, health as h, keys as k, records as r, search as s, snapshots as sn,
    };
    Router::new()
        .route("/healthz", get(h::healthz))
        .route("/readyz", get(h::readyz))
        .route("/metrics", get(h::metrics))
        .route("/openapi.json", get(crate::openapi::openapi_json))
        .route("/v1/collections", get(c::list).post(c::create))
        .route("/v1/collections/{c}", get(c::info).delete(c::drop))
        .route("/v1/collections/{c}/stats", get(c::stats))
        .route("/v1/collections/{c}/flush", post(c::flush))
        .route("/v1/collections/{c}/records", post(r::put))
        .route("/v1/collections/{c}/records/update", post(r::update))
        .route("/v1/collections/{c}/records/get", post(r::get_many))
        .route("/v1/collections/{c}/records/delete", post(r::delete))
        .route("/v1/collections/{c}/records/clear", post(r::clear))
        .route("/v1/collections/{c}/records/count", post(r::count))
        .route("/v1/collections/{c}/records/contains", post(r::contains))
        .route("/v1/collections/{c}/search", post(s::search))
        .route("/v1/collections/{c}/batch_search", post(s::batch_search))
        .route(
            "/v1/collections/{c}/snapshots",
            get(sn::list).post(sn::create),
        )
        .route("/v1/collections/{c}/snapshots/{s}", delete(sn::delete))
        .route(
            "/v1/collections/{c}/snapshots/{s}/restore",
            post(sn::restore),
        )
        .route("/v1/keys", get(k::list).post(k::create))
        .route("/v1/keys/{id}", delete(k::revoke))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            track,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state)
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Serves `app` on `listener` until SIGTERM or Ctrl-C, then finishes what is in flight.
async fn run<L>(listener: L, app: Router) -> Result<(), String>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    for<'a> ClientAddr: axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<ClientAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| format!("the server failed: {e}"))
}

/// Runs the server until SIGTERM or Ctrl-C: then it stops accepting connections,
/// finishes the requests in flight, closes every collection (sealing and flushing
/// it), syncs the audit log and returns. `ready` is called with the bound address
/// (and whether it serves TLS) once the server accepts connections.
///
/// # Errors
/// Settings refused (no authentication off loopback), a data directory that cannot
/// be opened, an address that cannot be bound.
pub fn serve(config: ServerConfig, ready: impl FnOnce(SocketAddr, bool)) -> Result<(), String> {
    if config.no_auth && !is_loopback(&config.host) {
        return Err(format!(
            "--no-auth serves without API keys, so it binds only to a loopback address \
             (127.0.0.1, ::1, localhost), not {}",
            config.host
        ));
    }
    crate::memory::limit_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("nusterdb-http")
        .build()
        .map_err(|e| format!("cannot start the server's threads: {e}"))?;
    let tls = match &config.tls {
        Some((cert, key)) => Some(crate::tls::server_config(cert, key)?),
        None => None,
    };
    let state = AppState::open(config.clone())?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
            .await
            .map_err(|e| format!("cannot listen on {}:{}: {e}", config.host, config.port))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?;
        let app = router(Arc::clone(&state));
        // Stopped with the runtime when the server stops.
        tokio::spawn(crate::memory::trim_every(crate::memory::TRIM_PERIOD));
        match tls {
            Some(tls) => {
                let listener = TlsListener::new(listener, tls)
                    .map_err(|e| format!("the server failed: {e}"))?;
                ready(addr, true);
                run(listener, app).await
            }
            None => {
                ready(addr, false);
                run(listener, app).await
            }
        }
    });
    state.registry.close_all();
    match state.audit.sync() {
        Ok((seq, hash)) => eprintln!("nusterdb serve: stopped; audit head {seq} {hash}"),
        Err(e) => eprintln!("nusterdb serve: stopped; the audit log could not be synced: {e}"),
    }
    result
}
