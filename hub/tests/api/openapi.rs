//! The OpenAPI document (`GET /api/v1/openapi.json`) against the live
//! router: OpenAPI 3.1; every route the hub serves is in it and nothing
//! else (each documented operation is routed, every other method on a
//! documented path is 405, the routes `docs/security.md` names are all
//! there); each route's query parameters are exactly those its handler
//! accepts (the handler's own refusal of an unknown parameter lists them).

use std::collections::BTreeSet;

use axum::body::Body as HttpBody;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use sentinel_hub::api::{bare_router, openapi, router, ApiState, PROBLEM_JSON};
use sentinel_hub::PgStore;
use sentinel_schema::PersonRole;
use serde_json::Value;
use tower::ServiceExt;

use crate::fresh_store;

/// Every route of the hub, as `docs/security.md` 3.3 and the module docs
/// of `sentinel_hub::api` list them.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/login"),
    ("POST", "/api/v1/logout"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("POST", "/api/v1/users/{name}/role"),
    ("POST", "/api/v1/users/{name}/disable"),
    ("GET", "/api/v1/timeline"),
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/events/{id}"),
    ("POST", "/api/v1/events/{id}/assign"),
    ("POST", "/api/v1/events/{id}/close"),
    ("POST", "/api/v1/events/{id}/reopen"),
    ("GET", "/api/v1/export.geojson"),
    ("GET", "/api/v1/nodes"),
    ("GET", "/api/v1/feed"),
    ("POST", "/api/v1/devices/{key}/revoke"),
    ("POST", "/api/v1/sensors/entries"),
    ("GET", "/api/v1/sensors/readings"),
    ("GET", "/api/v1/sensors"),
];

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn document() -> Value {
    serde_json::to_value(openapi::document()).unwrap()
}

/// The API as an admin sees it (the test hook: no token needed).
fn admin(store: PgStore) -> ApiState {
    ApiState::new(store, None).map_api(|api| api.trusting("admin", PersonRole::Admin))
}

/// (METHOD, path) of every operation in the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// A concrete URI for a path template.
fn concrete(path: &str) -> String {
    path.replace("{id}", &"0".repeat(32))
        .replace("{name}", "nobody")
        .replace("{key}", &"0".repeat(64))
}

async fn call(app: &Router, method: &str, uri: &str) -> Response {
    app.clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(HttpBody::empty())
                .unwrap(),
        )
        .await
        .unwrap()
}

fn content_type(response: &Response) -> String {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn json(response: Response) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// Whether the router matched no route: axum's own 404 (no body), not a
/// handler's (a problem).
fn unrouted(response: &Response) -> bool {
    response.status() == StatusCode::METHOD_NOT_ALLOWED
        || (response.status() == StatusCode::NOT_FOUND && content_type(response) != PROBLEM_JSON)
}

#[test]
fn the_document_is_openapi_3_1_with_bearer_and_problem() {
    let doc = document();
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "{version}");
    let components = &doc["components"];
    assert_eq!(components["securitySchemes"]["bearer"]["scheme"], "bearer");
    let problem = &components["schemas"]["Problem"];
    for field in ["type", "title", "status", "detail"] {
        assert!(
            problem["required"]
                .as_array()
                .unwrap()
                .contains(&Value::from(field)),
            "{problem}"
        );
    }
    // Every error answer is a problem; every /api/v1 route but login and
    // the document itself wants the bearer token and may be rate-limited.
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        for (status, response) in op["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    response["content"][PROBLEM_JSON].is_object(),
                    "{method} {path} {status}: {response}"
                );
            }
        }
        // A sensor push is authenticated by its signatures, not a token.
        let open = [
            "/api/v1/login",
            "/api/v1/openapi.json",
            "/api/v1/sensors/entries",
        ]
        .contains(&path.as_str())
            || !path.starts_with("/api/v1/");
        assert_eq!(op["security"].is_null(), open, "{method} {path}: security");
        if !open {
            assert!(op["responses"]["401"].is_object(), "{method} {path}: 401");
        }
        assert_eq!(
            op["responses"]["429"].is_object(),
            path.starts_with("/api/v1/"),
            "{method} {path}: 429"
        );
    }
}

#[test]
fn the_document_lists_every_route_of_the_hub_and_no_other() {
    let documented = operations(&document());
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, expected);
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_no_other_method_is() {
    let (_db, store) = fresh_store().await;
    // The routes without the layers: the same table, and no requests in
    // the metrics that `ops.rs` reads.
    let app = bare_router(admin(store));
    let doc = document();
    let documented = operations(&doc);
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for path in paths {
        let uri = concrete(path);
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let response = call(&app, method, &uri).await;
            if documented.contains(&(method.to_owned(), path.clone())) {
                assert!(
                    !unrouted(&response),
                    "{method} {uri}: {}",
                    response.status()
                );
            } else {
                assert_eq!(
                    response.status(),
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {uri} is not documented"
                );
            }
        }
    }
    // A path nobody documented is not routed.
    for uri in ["/api/v1/nothing", "/api/v1/events/x/y/z", "/api/v2/events"] {
        assert!(unrouted(&call(&app, "GET", uri).await), "{uri}");
    }
}

/// The names of an operation's query parameters.
fn query_params(doc: &Value, method: &str, path: &str) -> BTreeSet<String> {
    doc["paths"][path][method.to_lowercase()]["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["in"] == "query")
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn each_route_documents_exactly_the_query_parameters_it_accepts() {
    let (_db, store) = fresh_store().await;
    let app = bare_router(admin(store));
    let doc = document();
    // The routes whose handlers check their query: an unknown parameter is
    // refused, and the refusal lists what the route takes.
    let checked = [
        "/api/v1/timeline",
        "/api/v1/events",
        "/api/v1/events/{id}",
        "/api/v1/export.geojson",
        "/api/v1/nodes",
        "/api/v1/sensors/readings",
        "/api/v1/sensors",
    ];
    for path in checked {
        let documented = query_params(&doc, "GET", path);
        let uri = concrete(path);
        let response = call(&app, "GET", &format!("{uri}?not_a_parameter=1")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
        let problem = json(response).await;
        assert_eq!(problem["field"], "not_a_parameter", "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        let accepted: BTreeSet<String> = match detail.split_once("this route takes ") {
            Some((_, list)) if list != "none" => list.split(", ").map(str::to_owned).collect(),
            _ => BTreeSet::new(),
        };
        assert_eq!(documented, accepted, "{path}: {detail}");
        // Each documented parameter, sent alone, is not refused as unknown.
        for name in &documented {
            let response = call(&app, "GET", &format!("{uri}?{name}=1")).await;
            if response.status() == StatusCode::BAD_REQUEST {
                let problem = json(response).await;
                assert!(
                    !problem["detail"]
                        .as_str()
                        .unwrap()
                        .contains("unknown query parameter"),
                    "{path}?{name}: {problem}"
                );
            }
        }
    }
    // Every other route reads no query, and documents none.
    for (method, path) in operations(&doc) {
        if !checked.contains(&path.as_str()) {
            assert_eq!(
                query_params(&doc, &method, &path),
                BTreeSet::new(),
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn the_document_is_served_without_a_token() {
    let (_db, store) = fresh_store().await;
    // No trusted caller: a route that wants a token would answer 401.
    let app = router(ApiState::new(store, None));
    let response = call(&app, "GET", "/api/v1/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "application/json");
    assert_eq!(json(response).await, document());
}
