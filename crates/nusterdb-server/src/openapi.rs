//! The OpenAPI 3.1 document of the API, generated from the handlers' annotations and
//! the request and answer types (`GET /openapi.json`, no key needed).

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{collections, health, keys, records, search, snapshots};

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an API key made by `nusterdb keys create`"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "NusterDB", description = "Collections of vectors with metadata: store, filter, search."),
    paths(
        health::healthz, health::readyz, health::metrics,
        collections::list, collections::create, collections::info, collections::drop,
        collections::stats, collections::flush,
        records::put, records::update, records::get_many, records::delete, records::clear,
        records::count, records::contains,
        search::search, search::batch_search,
        snapshots::create, snapshots::list, snapshots::restore, snapshots::delete,
        keys::create, keys::list, keys::revoke,
    ),
    modifiers(&BearerKey)
)]
struct ApiDoc;

/// The document, built once.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// `GET /openapi.json`.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
