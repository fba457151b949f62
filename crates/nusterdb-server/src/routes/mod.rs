//! The handlers, one file per resource. Each checks the caller's scope and grant
//! first (so a refused caller learns nothing about the collection), then runs the
//! database's blocking calls off the async threads.

pub mod collections;
pub mod health;
pub mod keys;
pub mod records;
pub mod search;
pub mod snapshots;

use axum::extract::rejection::PathRejection;
use axum::extract::Path;

use crate::error::{ApiError, ApiResult};

/// A path parameter, or a JSON 400 for one that cannot be decoded.
pub fn param<T>(p: Result<Path<T>, PathRejection>) -> ApiResult<T> {
    p.map(|Path(v)| v)
        .map_err(|e| ApiError::bad_request(format!("invalid path: {e}")))
}
