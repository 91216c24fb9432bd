//! The OpenAPI document (`GET /api/v1/openapi.json`) against the live
//! router: OpenAPI 3.1; every route the node serves is in it and nothing
//! else (each documented operation is routed, every other method on a
//! documented path is 405, an unknown path is the router's 404); each
//! route's query parameters are exactly those its handler accepts (the
//! handler's own refusal of an unknown parameter lists them); errors are
//! problems, and the token and rate limit are where the router puts them.

use std::collections::BTreeSet;

use axum::body::Body as HttpBody;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use sentinel_node::http::openapi::{self, EXAMPLE_MEDIA, EXAMPLE_MEDIA_BYTES};
use sentinel_node::http::PROBLEM_JSON;
use sentinel_schema::{MediaType, PersonRole};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use super::Api;

/// Every route of the node, as `docs/security.md` 3.3 and the module docs
/// of `sentinel_node::http` list them.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/login"),
    ("POST", "/api/v1/logout"),
    ("GET", "/api/v1/events"),
    ("POST", "/api/v1/events"),
    ("GET", "/api/v1/events/{id}"),
    ("PATCH", "/api/v1/events/{id}"),
    ("POST", "/api/v1/events/{id}/notes"),
    ("POST", "/api/v1/events/{id}/assign"),
    ("POST", "/api/v1/events/{id}/accept"),
    ("POST", "/api/v1/events/{id}/start"),
    ("POST", "/api/v1/events/{id}/resolve"),
    ("POST", "/api/v1/events/{id}/close"),
    ("POST", "/api/v1/events/{id}/reopen"),
    ("POST", "/api/v1/events/{id}/media"),
    ("GET", "/api/v1/media/{hash}"),
    ("GET", "/api/v1/outbox"),
    ("GET", "/api/v1/export.geojson"),
    ("GET", "/api/v1/feed"),
    ("POST", "/api/v1/sensors/entries"),
    ("GET", "/api/v1/sensors/readings"),
    ("GET", "/api/v1/sensors"),
];

/// The `/api/v1` routes that want no person's token: login, the document
/// itself, and sensor pushes (their signatures are the authentication).
const OPEN: &[&str] = &[
    "/api/v1/login",
    "/api/v1/openapi.json",
    "/api/v1/sensors/entries",
];

/// The routes whose handlers check their query: an unknown parameter is
/// refused, and the refusal lists what the route takes.
const QUERY_CHECKED: &[&str] = &[
    "/api/v1/events",
    "/api/v1/events/{id}",
    "/api/v1/media/{hash}",
    "/api/v1/outbox",
    "/api/v1/export.geojson",
    "/api/v1/feed",
    "/api/v1/sensors/readings",
    "/api/v1/sensors",
];

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn document() -> Value {
    serde_json::to_value(openapi::document()).unwrap()
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
        .replace("{hash}", &"0".repeat(64))
}

async fn call(app: &Router, method: &str, uri: &str, token: Option<&str>) -> Response {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    app.clone()
        .oneshot(req.body(HttpBody::empty()).unwrap())
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

/// Whether the router matched no route: 405, or the fallback's 404 (a
/// handler's 404 names what it did not find).
async fn unrouted(response: Response) -> bool {
    match response.status() {
        StatusCode::METHOD_NOT_ALLOWED => true,
        StatusCode::NOT_FOUND => json(response).await["detail"] == "no such route",
        _ => false,
    }
}

/// An API with an admin signed in.
async fn admin_api() -> (Api, String) {
    let api = Api::start();
    api.account("root", Some(PersonRole::Admin));
    let token = api.login("root").await;
    (api, token)
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
    // Every error answer is a problem; every /api/v1 route but the open
    // ones wants the bearer token; every /api/v1 route may be rate-limited.
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
        let open = OPEN.contains(&path.as_str()) || !path.starts_with("/api/v1/");
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
fn the_document_lists_every_route_of_the_node_and_no_other() {
    let documented = operations(&document());
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, expected);
}

#[test]
fn an_edit_needs_a_member() {
    // Not `#[schema(min_properties)]`: utoipa-gen 5.5 writes it as
    // `maxProperties` (see `openapi::document`).
    let doc = document();
    let changes = &doc["components"]["schemas"]["EventChanges"];
    assert_eq!(changes["minProperties"], 1, "{changes}");
    assert!(changes["maxProperties"].is_null(), "{changes}");
    assert_eq!(changes["additionalProperties"], false, "{changes}");
}

#[test]
fn the_media_types_and_the_example_media_are_the_nodes() {
    let doc = document();
    let content = &doc["paths"]["/api/v1/media/{hash}"]["get"]["responses"]["200"]["content"];
    let documented: BTreeSet<&str> = content
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let served: BTreeSet<&str> = MediaType::ALL.iter().map(|m| m.as_mime()).collect();
    assert_eq!(documented, served);
    assert_eq!(
        hex::encode(Sha256::digest(EXAMPLE_MEDIA_BYTES)),
        EXAMPLE_MEDIA
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_no_other_method_is() {
    let (api, token) = admin_api().await;
    let doc = document();
    let documented = operations(&doc);
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for path in paths {
        let uri = concrete(path);
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            // Not the feed's stream: only its status is read.
            let response = call(&api.app, method, &uri, Some(&token)).await;
            let status = response.status();
            if documented.contains(&(method.to_owned(), path.clone())) {
                assert!(!unrouted(response).await, "{method} {uri}: {status}");
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {uri} is not documented"
                );
            }
        }
    }
    // A path nobody documented is not routed.
    for uri in ["/api/v1/nothing", "/api/v1/events/x/y/z", "/api/v2/events"] {
        let response = call(&api.app, "GET", uri, Some(&token)).await;
        assert!(unrouted(response).await, "{uri}");
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
    let (api, token) = admin_api().await;
    let doc = document();
    for path in QUERY_CHECKED {
        let documented = query_params(&doc, "GET", path);
        let uri = concrete(path);
        let response = call(
            &api.app,
            "GET",
            &format!("{uri}?not_a_parameter=1"),
            Some(&token),
        )
        .await;
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
            let response = call(&api.app, "GET", &format!("{uri}?{name}=1"), Some(&token)).await;
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
        if !QUERY_CHECKED.contains(&path.as_str()) {
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
    let api = Api::start();
    let response = call(&api.app, "GET", "/api/v1/openapi.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "application/json");
    assert_eq!(json(response).await, document());
}
