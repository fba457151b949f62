//! NusterDB's HTTP server: a data directory of collections (each a NusterDB database)
//! served over a versioned JSON API (`/v1/...`), with API keys (scopes and
//! per-collection grants), a hash-chained audit log and Prometheus metrics. Built on
//! `nusterdb-core`, so every guarantee of the embedded database (durability,
//! filters, bad input refused with nothing lost) holds over the wire; the Python
//! package starts it (`nusterdb serve`), so it ships in the same wheel.
//!
//! - [`app`]: settings, router, middleware, the serve loop and graceful shutdown.
//! - [`request`]: the authenticated caller of a request and its body.
//! - [`routes`]: the handlers, one module per resource.
//! - [`json`]: JSON ↔ core values; [`schema`]: the answers' types.
//! - [`openapi`]: the OpenAPI document, generated from the handlers and types.
//! - [`error`]: the one error type and its HTTP statuses.
//! - [`registry`]: the collections of the data directory.
//! - [`auth`]: API keys. [`audit`]: the audit log. [`metrics`]: request metrics.
//! - [`tls`]: HTTPS (rustls). [`memory`]: few malloc arenas, freed heap memory handed back
//!   periodically.

pub mod app;
pub mod audit;
pub mod auth;
pub mod error;
pub mod json;
pub mod memory;
pub mod metrics;
pub mod openapi;
pub mod registry;
pub mod request;
pub mod routes;
pub mod schema;
pub mod tls;

pub use app::{serve, ServerConfig};
