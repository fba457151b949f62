//! Whatever a client sends — malformed JSON, wrong types, wrong content types, raw
//! bodies of any shape, NaN, unknown routes and methods — the server answers 2xx or a
//! 4xx with a typed JSON error, never a 5xx, and keeps serving. Requests go straight
//! into the router (no sockets), so thousands of cases run in seconds.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use nusterdb_server::app::{router, AppState};
use nusterdb_server::ServerConfig;
use proptest::prelude::*;
use serde_json::{json, Value};
use tower::ServiceExt;

fn state(dir: &std::path::Path) -> Arc<AppState> {
    let mut c = ServerConfig::new(dir.to_path_buf());
    c.no_auth = true;
    c.max_body_bytes = 1 << 20;
    AppState::open(c).unwrap()
}

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    ctype: Option<&str>,
    shape: Option<String>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(c) = ctype {
        req = req.header("content-type", c);
    }
    if let Some(s) = shape {
        req = req.header("x-nusterdb-shape", s);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A JSON value of any shape, with the field names the API uses most of the time.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        prop_oneof![Just(1e300), Just(-1e300), Just(3.4e38), Just(1e-45)].prop_map(Value::from),
        "[a-z$]{0,6}".prop_map(Value::from),
    ];
    let key = prop_oneof![
        Just("ids".to_owned()),
        Just("vectors".to_owned()),
        Just("query".to_owned()),
        Just("queries".to_owned()),
        Just("k".to_owned()),
        Just("filter".to_owned()),
        Just("include".to_owned()),
        Just("id".to_owned()),
        Just("metadata".to_owned()),
        Just("metadatas".to_owned()),
        Just("documents".to_owned()),
        Just("mode".to_owned()),
        Just("ef_search".to_owned()),
        Just("limit".to_owned()),
        Just("offset".to_owned()),
        Just("after".to_owned()),
        Just("fields".to_owned()),
        Just("tags".to_owned()),
        Just("$gt".to_owned()),
        Just("$or".to_owned()),
        Just("$in".to_owned()),
        Just("name".to_owned()),
        Just("config".to_owned()),
        Just("dim".to_owned()),
        Just("scopes".to_owned()),
        "[a-z]{1,4}",
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A number a field of the API might be given: small, huge, negative, fractional.
fn any_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..20).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-5i64..0).prop_map(Value::from),
        Just(Value::from(1e39)),
        (-3f64..3.0).prop_map(Value::from),
    ]
}

fn any_vector() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        prop_oneof![
            (-2f64..2.0).prop_map(Value::from),
            Just(Value::from(1e39)),
            Just(Value::from(0))
        ],
        0..5,
    )
    .prop_map(Value::from)
}

fn any_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..6).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(Value::from(-1)),
        "[a-z]{0,3}".prop_map(Value::from),
        Just(Value::from(1.5)),
    ]
}

fn any_metadata() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        prop::collection::vec(
            (
                "[a-z$]{0,3}",
                prop_oneof![
                    any_number(),
                    "[a-z]{0,3}".prop_map(Value::from),
                    any::<bool>().prop_map(Value::from),
                    Just(Value::Null)
                ]
            ),
            0..3
        )
        .prop_map(|f| json!({"fields": Value::Object(f.into_iter().collect())})),
        prop::collection::vec("[a-z]{0,3}", 0..3).prop_map(|t| json!({"tags": t})),
    ]
}

fn any_filter() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!({})),
        any_number().prop_map(|n| json!({"a": {"$gte": n}})),
        any_json().prop_map(|j| json!({"a": j})),
        any_json().prop_map(|j| json!({"$or": j})),
        prop::collection::vec("[a-z]{0,2}", 0..3).prop_map(|t| json!({"$tags": {"$any": t}})),
    ]
}

fn any_include() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(["vector", "metadata", "document"])),
        Just(json!(["bogus"])),
        Just(json!("vector")),
    ]
}

/// Requests of the right shape whose values are anything: they reach the core.
fn shaped_request() -> impl Strategy<Value = (&'static str, Value)> {
    prop_oneof![
        (any_vector(), any_number(), any_filter(), prop_oneof![Just(Value::Null), any_number()], any_include())
            .prop_map(|(q, k, f, ef, inc)| ("/v1/collections/c/search", json!({"query": q, "k": k, "filter": f, "ef_search": ef, "include": inc}))),
        (prop::collection::vec(any_vector(), 0..4), any_number(), any_filter(), any_include())
            .prop_map(|(q, k, f, inc)| ("/v1/collections/c/batch_search", json!({"queries": q, "k": k, "filter": f, "include": inc}))),
        (prop::collection::vec(any_id(), 0..4), prop::collection::vec(any_vector(), 0..4),
         prop::collection::vec(any_metadata(), 0..4), prop_oneof![Just("add"), Just("upsert"), Just("x")])
            .prop_map(|(ids, v, m, mode)| ("/v1/collections/c/records", json!({"ids": ids, "vectors": v, "metadatas": m, "mode": mode}))),
        (any_id(), prop_oneof![Just(Value::Null), any_vector()], any_metadata(), any::<bool>())
            .prop_map(|(id, v, m, merge)| ("/v1/collections/c/records/update", json!({"id": id, "vector": v, "metadata": m, "merge": merge}))),
        (prop_oneof![Just(Value::Null), prop::collection::vec(any_id(), 0..4).prop_map(Value::from)], any_include(), any_filter(),
         prop_oneof![Just(Value::Null), any_number()], prop_oneof![Just(Value::Null), any_number()], prop_oneof![Just(Value::Null), any_id()])
            .prop_map(|(ids, inc, f, limit, offset, after)| ("/v1/collections/c/records/get", json!({"ids": ids, "include": inc, "filter": f, "limit": limit, "offset": offset, "after": after}))),
        (prop_oneof![Just(Value::Null), prop::collection::vec(any_id(), 0..3).prop_map(Value::from)], any_filter())
            .prop_map(|(ids, f)| ("/v1/collections/c/records/delete", json!({"ids": ids, "filter": f}))),
        any_filter().prop_map(|f| ("/v1/collections/c/records/count", json!({"filter": f}))),
        any_id().prop_map(|id| ("/v1/collections/c/records/contains", json!({"id": id}))),
        (any_number(), prop_oneof![Just("flat"), Just("hnsw"), Just("x")], prop_oneof![Just("cosine"), Just("hamming"), Just("x")],
         prop_oneof![Just(Value::Null), Just(json!("sq4")), Just(json!("sq8")), Just(json!("x"))])
            .prop_map(|(dim, it, m, q)| ("/v1/collections", json!({"name": "n", "config": {"dim": dim, "index_type": it, "metric": m, "quantization": q}}))),
    ]
}

const ROUTES: [(&str, &str); 20] = [
    ("GET", "/v1/collections"),
    ("POST", "/v1/collections"),
    ("GET", "/v1/collections/c"),
    ("GET", "/v1/collections/c/stats"),
    ("POST", "/v1/collections/c/flush"),
    ("POST", "/v1/collections/c/records"),
    ("POST", "/v1/collections/c/records/update"),
    ("POST", "/v1/collections/c/records/get"),
    ("POST", "/v1/collections/c/records/delete"),
    ("POST", "/v1/collections/c/records/count"),
    ("POST", "/v1/collections/c/records/contains"),
    ("POST", "/v1/collections/c/search"),
    ("POST", "/v1/collections/c/batch_search"),
    ("GET", "/v1/collections/c/snapshots"),
    ("POST", "/v1/collections/c/snapshots"),
    ("POST", "/v1/collections/nope/search"),
    ("PUT", "/v1/collections/c"),
    ("GET", "/v1/nothing"),
    ("POST", "/v1/keys"),
    ("GET", "/v1/collections/%ff%fe"),
];

fn seeded(rt: &tokio::runtime::Runtime, app: &axum::Router) {
    let body = json!({"name": "c", "config": {"dim": 3, "index_type": "hnsw"}});
    let (s, v) = rt.block_on(call(
        app,
        "POST",
        "/v1/collections",
        Some("application/json"),
        None,
        body.to_string().into_bytes(),
    ));
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let body = json!({"ids": [1, 2, 3], "vectors": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
                      "metadatas": [{"fields": {"a": 1}}, null, {"tags": ["t"]}]});
    let (s, v) = rt.block_on(call(
        app,
        "POST",
        "/v1/collections/c/records",
        Some("application/json"),
        None,
        body.to_string().into_bytes(),
    ));
    assert_eq!(s, StatusCode::OK, "{v}");
}

thread_local! {
    /// One seeded server per test thread, shared by that thread's cases.
    static SEEDED: (tempfile::TempDir, tokio::runtime::Runtime, axum::Router) = {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        let app = router(state(dir.path()));
        seeded(&rt, &app);
        (dir, rt, app)
    };
}

/// Runs `f` on this thread's seeded server.
fn with_seeded<R>(f: impl FnOnce(&tokio::runtime::Runtime, &axum::Router) -> R) -> R {
    SEEDED.with(|(_, rt, app)| f(rt, app))
}

fn check(status: StatusCode, v: &Value, what: &str) {
    assert!(!status.is_server_error(), "{what} → {status} {v}");
    if !status.is_success() {
        let ty = v["error"]["type"].as_str().unwrap_or_default();
        assert!(
            ty.ends_with("Error"),
            "{what} → {status} without a typed JSON error: {v}"
        );
        assert!(v["error"]["message"].is_string(), "{what}: {v}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn any_json_body_on_any_route_is_never_a_5xx(
        route in 0..ROUTES.len(),
        body in any_json(),
        ctype in prop_oneof![Just(Some("application/json")), Just(Some("text/plain")), Just(None)],
    ) {
        with_seeded(|rt, app| {
            let (m, p) = ROUTES[route];
            let what = format!("{m} {p} {body}");
            let (s, v) = rt.block_on(call(app, m, p, ctype, None, body.to_string().into_bytes()));
            check(s, &v, &what);
            // Still serving.
            let (s, _) = rt.block_on(call(app, "POST", "/v1/collections/c/records/count", Some("application/json"), None, b"{}".to_vec()));
            prop_assert!(s == StatusCode::OK || s == StatusCode::NOT_FOUND);
            Ok(())
        })?;
    }

    #[test]
    fn well_shaped_requests_with_any_values_are_never_a_5xx((path, body) in shaped_request()) {
        with_seeded(|rt, app| {
            let what = format!("POST {path} {body}");
            let (s, v) = rt.block_on(call(app, "POST", path, Some("application/json"), None, body.to_string().into_bytes()));
            check(s, &v, &what);
            if path == "/v1/collections" && s.is_success() {
                // Keep one shape of collection "n" from case to case: drop it again.
                let (s, v) = rt.block_on(call(app, "DELETE", "/v1/collections/n", None, None, Vec::new()));
                check(s, &v, "DELETE /v1/collections/n");
            }
            Ok::<(), TestCaseError>(())
        })?;
    }

    #[test]
    fn any_raw_body_and_shape_is_never_a_5xx(
        route in prop_oneof![Just("/v1/collections/c/records"), Just("/v1/collections/c/batch_search"), Just("/v1/collections/c/search")],
        floats in prop::collection::vec(prop_oneof![any::<f32>(), Just(f32::NAN), Just(f32::INFINITY), -2f32..2.0], 0..24),
        tail in any_json(),
        shape in prop_oneof![
            (0usize..10, 0usize..10).prop_map(|(n, d)| format!("{n},{d}")),
            Just("18446744073709551615,4".to_owned()),
            Just("x".to_owned()),
        ],
    ) {
        with_seeded(|rt, app| {
            let mut body: Vec<u8> = floats.iter().flat_map(|f| f.to_le_bytes()).collect();
            body.extend_from_slice(tail.to_string().as_bytes());
            let what = format!("POST {route} shape {shape} {} floats tail {tail}", floats.len());
            let (s, v) = rt.block_on(call(app, "POST", route, Some("application/octet-stream"), Some(shape), body));
            check(s, &v, &what);
            Ok::<(), TestCaseError>(())
        })?;
    }
}

#[test]
fn oversize_bodies_are_413_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let app = router(state(dir.path()));
    seeded(&rt, &app);
    let big = vec![b' '; (1 << 20) + 1];
    let (s, v) = rt.block_on(call(
        &app,
        "POST",
        "/v1/collections/c/records",
        Some("application/json"),
        None,
        big,
    ));
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["type"], "PayloadTooLargeError");
    let (s, v) = rt.block_on(call(
        &app,
        "POST",
        "/v1/collections/c/records/count",
        Some("application/json"),
        None,
        b"{}".to_vec(),
    ));
    assert_eq!((s, v["count"].clone()), (StatusCode::OK, json!(3)));
}

#[test]
fn every_operation_of_the_openapi_document_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let app = router(state(dir.path()));
    seeded(&rt, &app);
    let (s, doc) = rt.block_on(call(&app, "GET", "/openapi.json", None, None, Vec::new()));
    assert_eq!(s, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{}", paths.len());
    let mut ids = std::collections::HashSet::new();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "operationId {id} twice");
            let concrete = path
                .replace("{c}", "c")
                .replace("{s}", "nosuch")
                .replace("{id}", "nosuch");
            let m = method.to_uppercase();
            if m == "DELETE" && concrete == "/v1/collections/c" {
                continue; // would drop the collection the other operations use
            }
            let (s, v) = rt.block_on(call(
                &app,
                &m,
                &concrete,
                Some("application/json"),
                None,
                b"{}".to_vec(),
            ));
            let ty = v["error"]["type"].as_str().unwrap_or_default();
            assert!(
                ty != "NotFoundError" && ty != "MethodNotAllowedError",
                "{m} {path}: {s} {v}"
            );
            assert!(!s.is_server_error(), "{m} {path}: {s} {v}");
            if !path.starts_with("/healthz") && !path.starts_with("/readyz") {
                assert!(
                    op["responses"]["4XX"].is_object(),
                    "{m} {path} declares no 4XX"
                );
            }
        }
    }
}
