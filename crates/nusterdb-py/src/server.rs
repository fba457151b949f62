//! The server's entry points for `nusterdb serve`, `nusterdb keys` and `nusterdb
//! audit` (wrapped by `nusterdb/server.py`): each returns JSON text, an error as the
//! server's own error body, so Python raises the class the HTTP client would.

use std::path::PathBuf;
use std::time::Duration;

use nusterdb_server::auth::{KeyStore, Scope};
use nusterdb_server::error::{ApiError, ApiResult};
use nusterdb_server::ServerConfig;
use pyo3::prelude::*;
use serde_json::{json, Value};

use crate::errors::{IntoPyResult, NusterDBError};

fn answer(r: ApiResult<Value>) -> String {
    match r {
        Ok(v) => json!({ "ok": v }).to_string(),
        Err(e) => json!({"error": {
            "type": e.kind, "message": e.message, "details": Value::Object(e.details),
            "status": e.status.as_u16(),
        }})
        .to_string(),
    }
}

/// Runs the server until SIGTERM or Ctrl-C (the GIL released throughout); prints
/// the address it listens on to stderr once it accepts connections.
#[pyfunction]
#[pyo3(signature = (data_dir, host, port, no_auth, max_body_mb, timeout_secs, audit_max_mb, tls_cert = None, tls_key = None, encryption_key = None))]
#[allow(clippy::too_many_arguments)]
pub fn _serve(
    py: Python<'_>,
    data_dir: PathBuf,
    host: String,
    port: u16,
    no_auth: bool,
    max_body_mb: u64,
    timeout_secs: f64,
    audit_max_mb: u64,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    encryption_key: Option<Vec<u8>>,
) -> PyResult<()> {
    let encryption = encryption_key
        .map(|k| nusterdb_core::config::MasterKey::new(&k))
        .transpose()
        .py()?;
    let tls = match (tls_cert, tls_key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            return Err(NusterDBError::new_err(
                "TLS needs both a certificate (--tls-cert) and its private key (--tls-key)",
            ))
        }
    };
    if !(timeout_secs.is_finite() && timeout_secs > 0.0) {
        return Err(NusterDBError::new_err(
            "timeout_secs must be a positive number",
        ));
    }
    let config = ServerConfig {
        host,
        port,
        no_auth,
        max_body_bytes: usize::try_from(max_body_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
        request_timeout: Duration::from_secs_f64(timeout_secs),
        audit_max_bytes: audit_max_mb.saturating_mul(1 << 20),
        tls,
        encryption,
        ..ServerConfig::new(data_dir)
    };
    let warn = no_auth;
    py.detach(move || {
        nusterdb_server::serve(config, |addr, tls| {
            if warn {
                eprintln!("nusterdb serve: WARNING: authentication is off (--no-auth): every client on this machine may read, write and drop collections");
            }
            let scheme = if tls { "https" } else { "http" };
            eprintln!("nusterdb serve: listening on {scheme}://{addr}");
        })
    })
    .map_err(NusterDBError::new_err)
}

/// Creates an API key; JSON of its entry with the key itself.
#[pyfunction]
#[pyo3(signature = (data_dir, name, scopes, collections = None))]
pub fn _keys_create(
    data_dir: PathBuf,
    name: &str,
    scopes: Vec<String>,
    collections: Option<Vec<String>>,
) -> String {
    answer((|| {
        let scopes = scopes
            .iter()
            .map(|s| Scope::parse(s))
            .collect::<ApiResult<Vec<_>>>()?;
        let (entry, key) = KeyStore::new(&data_dir).create(name, scopes, collections)?;
        let mut public = entry.public();
        public.key = Some(key);
        Ok(json!(public))
    })())
}

/// Every API key (no secrets).
#[pyfunction]
pub fn _keys_list(data_dir: PathBuf) -> String {
    answer((|| {
        let keys = KeyStore::new(&data_dir).keys()?;
        Ok(Value::Array(
            keys.iter().map(|k| json!(k.public())).collect(),
        ))
    })())
}

/// Revokes an API key.
#[pyfunction]
pub fn _keys_revoke(data_dir: PathBuf, id: &str) -> String {
    answer(
        KeyStore::new(&data_dir)
            .revoke(id)
            .map(|live| json!({"revoked": id, "was_live": live})),
    )
}

/// Walks the audit log's hash chain.
#[pyfunction]
pub fn _audit_verify(py: Python<'_>, data_dir: PathBuf) -> String {
    answer(py.detach(|| {
        nusterdb_server::audit::verify(&data_dir).map_err(|e| {
            ApiError::from(nusterdb_core::Error::Io {
                path: data_dir.join("audit"),
                source: e,
            })
        })
    }))
}
