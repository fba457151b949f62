//! What every handler starts from: the caller ([`Ctx`], authenticated, with the
//! route and client address for the audit log) and the request body ([`Payload`]:
//! a JSON object, or float32 rows followed by a JSON object).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::app::AppState;
use crate::audit::Event;
use crate::auth::{claimed_id, Principal, Scope};
use crate::error::{ApiError, ApiResult};
use crate::tls::ClientAddr;

/// The header giving the shape of a raw float32 body: `n,dim`.
pub const SHAPE_HEADER: &str = "x-nusterdb-shape";

/// The authenticated caller of one request.
pub struct Ctx {
    pub state: Arc<AppState>,
    pub principal: Principal,
    client: String,
    method: String,
    route: String,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

impl FromRequestParts<Arc<AppState>> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let client = parts
            .extensions
            .get::<ConnectInfo<ClientAddr>>()
            .map(|c| c.0 .0.to_string())
            .unwrap_or_default();
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        let method = parts.method.to_string();
        let principal = if state.config.no_auth {
            Principal::anonymous_admin()
        } else {
            let key = bearer(&parts.headers);
            match key.map(|k| state.keys.authenticate(k)) {
                Some(Ok(p)) => p,
                failed => {
                    let err = match failed {
                        Some(Err(e)) => e,
                        _ => ApiError::unauthorized(
                            "an API key is needed: send the header 'Authorization: Bearer <key>'",
                        ),
                    };
                    let ctx = Ctx {
                        state: Arc::clone(state),
                        principal: Principal::anonymous_admin(),
                        client,
                        method,
                        route,
                    };
                    let claimed = key.and_then(claimed_id).map(str::to_owned);
                    ctx.record(Event {
                        key_id: claimed,
                        operation: "authenticate".into(),
                        ..ctx.event(None, None, &Err::<(), _>(err.clone()))
                    })?;
                    return Err(err);
                }
            }
        };
        Ok(Ctx {
            state: Arc::clone(state),
            principal,
            client,
            method,
            route,
        })
    }
}

impl Ctx {
    fn event<T>(&self, collection: Option<&str>, count: Option<u64>, r: &ApiResult<T>) -> Event {
        let (status, result, error) = match r {
            // What the handlers answer: 201 for what they create.
            Ok(_) if self.method == "POST" && self.creates() => (201, "ok", None),
            Ok(_) => (200, "ok", None),
            Err(e) => (
                e.status.as_u16(),
                if e.status == StatusCode::UNAUTHORIZED || e.status == StatusCode::FORBIDDEN {
                    "denied"
                } else {
                    "error"
                },
                Some(e.kind.to_owned()),
            ),
        };
        Event {
            key_id: self.principal.key_id.clone(),
            client: self.client.clone(),
            method: self.method.clone(),
            route: self.route.clone(),
            collection: collection.map(str::to_owned),
            operation: String::new(),
            count,
            status,
            result,
            error,
        }
    }

    /// Whether the route creates a resource (a collection, a key, a snapshot).
    fn creates(&self) -> bool {
        matches!(
            self.route.as_str(),
            "/v1/collections" | "/v1/keys" | "/v1/collections/{c}/snapshots"
        )
    }

    fn record(&self, event: Event) -> ApiResult<()> {
        self.state.audit.record(&event).map_err(|e| {
            ApiError::internal(format!(
                "the audit log cannot be written, so nothing was done: {e}"
            ))
        })
    }

    /// Checks the caller's scope and grant; a refusal is written to the audit log.
    ///
    /// # Errors
    /// 403 `ForbiddenError`.
    pub fn require(&self, scope: Scope, collection: Option<&str>) -> ApiResult<()> {
        let r = self.principal.require(scope, collection);
        if r.is_err() {
            let op = format!("{} {}", self.method, self.route);
            self.record(Event {
                operation: op,
                ..self.event(collection, None, &r)
            })?;
        }
        r
    }

    /// Runs blocking work (the database's calls) off the async threads. A panic in
    /// it becomes a 500 answer, never a dead server.
    ///
    /// # Errors
    /// `f`'s error; a panic (500).
    pub async fn run<T: Send + 'static>(
        f: impl FnOnce() -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        match tokio::task::spawn_blocking(f).await {
            Ok(r) => r,
            Err(e) => Err(ApiError::internal(format!(
                "the request failed inside the server: {e}"
            ))),
        }
    }

    /// Runs a write or admin action (blocking) and writes its outcome to the audit
    /// log: `f` returns the answer and the count of records it touched.
    ///
    /// # Errors
    /// `f`'s error (recorded too).
    pub async fn audited<T: Send + 'static>(
        &self,
        operation: &str,
        collection: Option<&str>,
        f: impl FnOnce() -> ApiResult<(T, Option<u64>)> + Send + 'static,
    ) -> ApiResult<T> {
        let r = Self::run(f).await;
        let count = r.as_ref().ok().and_then(|(_, c)| *c);
        self.record(Event {
            operation: operation.to_owned(),
            ..self.event(collection, count, &r)
        })?;
        r.map(|(v, _)| v)
    }
}

/// A request body.
pub struct Payload {
    /// The JSON object (the tail after the rows of a raw body; `{}` for no body).
    pub json: Map<String, Value>,
    /// Float32 rows of a raw body: (n, dim, n·dim values).
    pub rows: Option<(usize, usize, Vec<f32>)>,
}

impl Payload {
    /// The JSON object as a typed request (unknown or mistyped fields: 400).
    ///
    /// # Errors
    /// 400 `BadRequestError` with serde's description of the field.
    pub fn parse<T: DeserializeOwned>(&self) -> ApiResult<T> {
        serde_json::from_value(Value::Object(self.json.clone()))
            .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
    }
}

fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeError",
            "the request body is larger than the server's limit (--max-body-mb); split the batch",
        )
    } else {
        ApiError::bad_request(format!("the request body could not be read: {rejection}"))
    }
}

fn json_object(bytes: &[u8]) -> ApiResult<Map<String, Value>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad_request(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::bad_request(format!("malformed JSON: {e}"))),
    }
}

fn shape(headers: &HeaderMap, len: usize) -> ApiResult<(usize, usize)> {
    let bad = |m: String| ApiError::bad_request(m);
    let v = headers
        .get(SHAPE_HEADER)
        .ok_or_else(|| {
            bad(format!(
                "a raw float32 body needs the header {SHAPE_HEADER}: n,dim"
            ))
        })?
        .to_str()
        .map_err(|_| bad(format!("{SHAPE_HEADER} is not text")))?;
    let (n, d) = v
        .split_once(',')
        .and_then(|(n, d)| {
            Some((
                n.trim().parse::<usize>().ok()?,
                d.trim().parse::<usize>().ok()?,
            ))
        })
        .ok_or_else(|| {
            bad(format!(
                "{SHAPE_HEADER} must be two integers n,dim; got {v:?}"
            ))
        })?;
    n.checked_mul(d)
        .and_then(|x| x.checked_mul(4))
        .filter(|b| *b <= len)
        .map(|_| (n, d))
        .ok_or_else(|| {
            bad(format!(
                "{SHAPE_HEADER} says {n} rows of {d} float32 values, more than the body's {len} bytes hold"
            ))
        })
}

/// Reads a body: JSON (`application/json`, or no body), or with `rows_allowed` a raw
/// `application/octet-stream` body of n·dim little-endian float32 values followed by
/// a JSON object.
///
/// # Errors
/// 413 over the size limit, 415 another content type, 400 malformed JSON or shape.
pub fn payload(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    rows_allowed: bool,
) -> ApiResult<Payload> {
    let body = body.map_err(body_error)?;
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match ctype.as_deref() {
        None if body.is_empty() => Ok(Payload {
            json: Map::new(),
            rows: None,
        }),
        Some("application/json") => Ok(Payload {
            json: json_object(&body)?,
            rows: None,
        }),
        Some("application/octet-stream") if rows_allowed => {
            let (n, d) = shape(headers, body.len())?;
            let end = n * d * 4;
            let rows = body[..end]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Ok(Payload {
                json: json_object(&body[end..])?,
                rows: Some((n, d, rows)),
            })
        }
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaTypeError",
            format!(
                "content type {} is not accepted here: send application/json{}",
                other.unwrap_or("(none)"),
                if rows_allowed {
                    " or application/octet-stream with the X-NusterDB-Shape header"
                } else {
                    ""
                }
            ),
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(ctype: &str, shape: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ctype).unwrap());
        if let Some(s) = shape {
            h.insert(SHAPE_HEADER, HeaderValue::from_str(s).unwrap());
        }
        h
    }

    #[test]
    fn raw_rows_then_a_json_tail() {
        let mut body = Vec::new();
        for x in [1.0f32, 2.0, f32::NAN, 4.0] {
            body.extend_from_slice(&x.to_le_bytes());
        }
        body.extend_from_slice(br#"{"ids": [1, 2]}"#);
        let p = payload(
            &headers("application/octet-stream", Some("2,2")),
            Ok(Bytes::from(body.clone())),
            true,
        )
        .unwrap();
        let (n, d, rows) = p.rows.unwrap();
        assert_eq!((n, d), (2, 2));
        assert!(rows[2].is_nan());
        assert_eq!(p.json["ids"], serde_json::json!([1, 2]));
        // A shape larger than the body, an overflowing one, none, and raw where not allowed.
        for s in [Some("3,2"), Some("18446744073709551615,2"), Some("x"), None] {
            let e = payload(
                &headers("application/octet-stream", s),
                Ok(Bytes::from(body.clone())),
                true,
            )
            .err()
            .unwrap();
            assert_eq!(e.status, 400, "{s:?}");
        }
        let e = payload(
            &headers("application/octet-stream", Some("2,2")),
            Ok(Bytes::from(body)),
            false,
        )
        .err()
        .unwrap();
        assert_eq!(e.status, 415);
    }

    #[test]
    fn json_bodies_must_be_objects() {
        let h = headers("application/json", None);
        for bad in [&b"[1]"[..], b"{", b"nan", b"\"x\""] {
            assert_eq!(
                payload(&h, Ok(Bytes::from_static(bad)), false)
                    .err()
                    .unwrap()
                    .status,
                400
            );
        }
        assert!(payload(&h, Ok(Bytes::from_static(b" ")), false)
            .unwrap()
            .json
            .is_empty());
        let e = payload(
            &headers("text/plain", None),
            Ok(Bytes::from_static(b"{}")),
            false,
        );
        assert_eq!(e.err().unwrap().status, 415);
    }
}
