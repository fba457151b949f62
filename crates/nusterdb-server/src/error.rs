//! The one error type of the HTTP API: a status, a type name and a message, rendered
//! as `{"error": {"type", "message", "details"}}`. Every core error maps to exactly
//! one status here, so the client can rebuild the exception the embedded database
//! would have raised (the type names are the classes of `nusterdb.exceptions`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nusterdb_core::Error;
use serde_json::{json, Map, Value};

/// An error answered to a request.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub details: Map<String, Value>,
}

/// Result alias of request handling.
pub type ApiResult<T> = std::result::Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            details: Map::new(),
        }
    }

    /// Adds a detail (a number, id or name the message also states).
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// A malformed request: bad JSON, a field of the wrong type, a bad shape header.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequestError", message)
    }

    /// An argument the core would call invalid, checked before the core sees it.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgumentError", message)
    }

    pub fn id_type(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "IdTypeError", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UnauthorizedError", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "ForbiddenError", message)
    }

    pub fn no_collection(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "CollectionNotFoundError",
            format!("no collection named {name:?}"),
        )
        .with("collection", name)
    }

    /// A failure of the server itself (a task that panicked, a file it keeps that it
    /// cannot write): never caused by the request's content.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "NusterDBError", message)
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        use StatusCode as S;
        let message = err.to_string();
        let (status, kind) = match &err {
            Error::DimensionMismatch { .. } => (S::BAD_REQUEST, "DimensionMismatchError"),
            Error::EmptyVector | Error::NonFinite { .. } => (S::BAD_REQUEST, "InvalidVectorError"),
            Error::InvalidArgument(_) | Error::DivisionByZero { .. } => {
                (S::BAD_REQUEST, "InvalidArgumentError")
            }
            Error::Filter { .. } => (S::BAD_REQUEST, "FilterError"),
            Error::DuplicateId(_) | Error::RepeatedId { .. } => (S::CONFLICT, "DuplicateIdError"),
            Error::IdNotFound(_) => (S::NOT_FOUND, "IdNotFoundError"),
            Error::ConfigMismatch { .. } => (S::CONFLICT, "ConfigMismatchError"),
            Error::Locked { .. } => (S::CONFLICT, "DatabaseLockedError"),
            Error::AlreadyExists { .. } => (S::CONFLICT, "NusterDBIOError"),
            Error::ReadOnly | Error::SnapshotNotWritable { .. } => (S::FORBIDDEN, "ReadOnlyError"),
            Error::Closed => (S::SERVICE_UNAVAILABLE, "ClosedError"),
            Error::Interrupted(_) => (S::SERVICE_UNAVAILABLE, "ClosedError"),
            Error::Corruption { .. } => (S::INTERNAL_SERVER_ERROR, "CorruptionError"),
            Error::NotADatabase { .. } => (S::INTERNAL_SERVER_ERROR, "NotADatabaseError"),
            // The server's master key is checked when it starts: a collection whose key
            // file it cannot open is a server-side fault, not the request's.
            Error::EncryptionKey { .. } => (S::INTERNAL_SERVER_ERROR, "EncryptionKeyError"),
            Error::NoDatabase { .. } => (S::INTERNAL_SERVER_ERROR, "DatabaseNotFoundError"),
            Error::Io { source, .. } if source.raw_os_error() == Some(28) => {
                (S::INSUFFICIENT_STORAGE, "NusterDBIOError")
            }
            Error::Io { .. } => (S::INTERNAL_SERVER_ERROR, "NusterDBIOError"),
            Error::Forked { .. } | Error::ForkedEngine { .. } => {
                (S::INTERNAL_SERVER_ERROR, "ForkedProcessError")
            }
            _ => (S::INTERNAL_SERVER_ERROR, "NusterDBError"),
        };
        let mut e = ApiError::new(status, kind, message);
        match err {
            Error::DimensionMismatch { expected, got } => {
                e = e.with("expected", expected).with("got", got);
            }
            Error::NonFinite { position, .. } => e = e.with("position", position),
            Error::DuplicateId(id) | Error::IdNotFound(id) => e = e.with("id", id_json(&id)),
            Error::RepeatedId { id, first, again } => {
                e = e
                    .with("id", id_json(&id))
                    .with("first", first)
                    .with("again", again);
            }
            Error::ConfigMismatch {
                field,
                stored,
                given,
            } => {
                e = e
                    .with("field", field)
                    .with("stored", stored)
                    .with("given", given)
            }
            Error::Filter { at, .. } => e = e.with("at", at),
            Error::Io { source, .. } => {
                e = e.with("errno", source.raw_os_error().unwrap_or(5));
            }
            Error::AlreadyExists { .. } => e = e.with("errno", 17),
            Error::NoDatabase { .. } => e = e.with("errno", 2),
            _ => {}
        }
        e
    }
}

/// An id as JSON: a number or a string.
pub fn id_json(id: &nusterdb_core::Id) -> Value {
    match id {
        nusterdb_core::Id::Int(i) => json!(i),
        nusterdb_core::Id::Str(s) => json!(s.as_ref()),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "type": self.kind,
            "message": self.message,
            "details": Value::Object(self.details),
        }});
        let mut resp = (self.status, axum::Json(body)).into_response();
        // The type also travels as a header, so middleware (metrics, audit) can read it
        // without parsing the body.
        if let Ok(v) = axum::http::HeaderValue::from_str(self.kind) {
            resp.headers_mut().insert(ERROR_TYPE_HEADER, v);
        }
        resp
    }
}

/// The response header naming the error type of a non-2xx answer.
pub const ERROR_TYPE_HEADER: &str = "x-nusterdb-error";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_input_error_is_a_4xx() {
        let bad_input = [
            Error::DimensionMismatch {
                expected: 3,
                got: 4,
            },
            Error::EmptyVector,
            Error::NonFinite {
                position: 1,
                value: f32::NAN,
            },
            Error::invalid("x"),
            Error::Filter {
                at: "filter".into(),
                msg: "m".into(),
            },
            Error::DuplicateId(nusterdb_core::Id::Int(1)),
            Error::IdNotFound(nusterdb_core::Id::Int(1)),
        ];
        for e in bad_input {
            let api = ApiError::from(e);
            assert!(api.status.is_client_error(), "{api:?}");
        }
    }

    #[test]
    fn details_carry_the_numbers_of_the_message() {
        let api = ApiError::from(Error::DimensionMismatch {
            expected: 3,
            got: 4,
        });
        assert_eq!(api.kind, "DimensionMismatchError");
        assert_eq!(api.details["expected"], 3);
        assert_eq!(api.details["got"], 4);
    }
}
