//! An OpenAPI document checked against the live router that serves it:
//! OpenAPI 3.1 with the bearer scheme and the `Problem` schema, every
//! error answer a problem, the token and the rate limit where the router
//! puts them ([`check_document`]); exactly the routes a server lists
//! ([`check_routes`]); each documented operation routed and no other
//! method on its path ([`check_routing`]); each route's query parameters
//! exactly those its handler accepts ([`check_query_params`]); the
//! document served without a token ([`check_served`]).
//!
//! A server's test passes its own router, route list and the routes whose
//! handlers check their query; the checks are the same for both servers.

use std::collections::BTreeSet;

use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::Value;
use tower::ServiceExt;

use super::request;
use crate::api::API_PREFIX;
use crate::PROBLEM_JSON;

/// The `/api/v1` routes that want no person's token: login, the document
/// itself, and sensor pushes (their signatures are the authentication).
pub const OPEN: &[&str] = &[
    "/api/v1/login",
    "/api/v1/openapi.json",
    "/api/v1/sensors/entries",
];

/// The methods an OpenAPI path item may hold.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The methods tried on every documented path.
const TRIED: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// A document as JSON.
pub fn json(doc: &impl serde::Serialize) -> Value {
    serde_json::to_value(doc).unwrap()
}

/// `(METHOD, path)` of every operation in the document; a document
/// without `paths`, or with none, fails the check (every check that walks
/// the operations would otherwise hold of nothing).
pub fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    let paths = doc["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("the document has no `paths` object"));
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method).is_some() {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert!(!ops.is_empty(), "the document lists no operation");
    ops
}

/// The names of an operation's query parameters. The operation must be in
/// the document (a missing one fails the check rather than reading as "no
/// parameters"); an operation without `parameters` takes none, and one
/// whose `parameters` is anything but a list of named parameters fails.
pub fn query_params(doc: &Value, method: &str, path: &str) -> BTreeSet<String> {
    let op = &doc["paths"][path][method.to_lowercase()];
    assert!(
        op.is_object(),
        "{method} {path}: no such operation in the document"
    );
    let Some(parameters) = op.get("parameters") else {
        return BTreeSet::new();
    };
    parameters
        .as_array()
        .unwrap_or_else(|| panic!("{method} {path}: `parameters` is not a list: {parameters}"))
        .iter()
        .filter(|p| p["in"] == "query")
        .map(|p| {
            p["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: a parameter without a name: {p}"))
                .to_owned()
        })
        .collect()
}

/// A concrete URI for a path template of either server: an event id, an
/// account name, a device key or a media hash in place of each parameter.
pub fn concrete(path: &str) -> String {
    let uri = path
        .replace("{id}", &"0".repeat(32))
        .replace("{name}", "nobody")
        .replace("{key}", &"0".repeat(64))
        .replace("{hash}", &"0".repeat(64));
    assert!(!uri.contains('{'), "{path}: a path parameter with no value");
    uri
}

/// `method uri` through `app`, with `token` if given; the answer unread.
pub async fn call(app: &Router, method: &str, uri: &str, token: Option<&str>) -> Response {
    app.clone()
        .oneshot(request(method, uri, token, None))
        .await
        .unwrap()
}

/// The answer's content type, or `""`.
pub fn content_type(response: &Response) -> String {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The answer's body as JSON (`Null` when it is not).
pub async fn body(response: Response) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// Whether the router matched no route: 405, or the problem both servers'
/// fallback answers, `no such route` (`sentinel_http::api::no_such_route`;
/// a handler's 404 names what it did not find). Reads the body only of a
/// 404: a feed's `200` is a stream that never ends.
pub async fn unrouted(response: Response) -> bool {
    match response.status() {
        StatusCode::METHOD_NOT_ALLOWED => true,
        StatusCode::NOT_FOUND => {
            content_type(&response) == PROBLEM_JSON
                && body(response).await["detail"] == "no such route"
        }
        _ => false,
    }
}

/// OpenAPI 3.1, the bearer scheme and the `Problem` schema; every error
/// answer is a problem; every `/api/v1` route but the [`OPEN`] ones wants
/// the bearer token (and says it may answer 401); every `/api/v1` route,
/// and no other, may be rate-limited (429).
pub fn check_document(doc: &Value) {
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
    let limited = format!("{API_PREFIX}/");
    for (method, path) in operations(doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        for (status, response) in op["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    response["content"][PROBLEM_JSON].is_object(),
                    "{method} {path} {status}: {response}"
                );
            }
        }
        let open = OPEN.contains(&path.as_str()) || !path.starts_with(&limited);
        assert_eq!(op["security"].is_null(), open, "{method} {path}: security");
        if !open {
            assert!(op["responses"]["401"].is_object(), "{method} {path}: 401");
        }
        assert_eq!(
            op["responses"]["429"].is_object(),
            path.starts_with(&limited),
            "{method} {path}: 429"
        );
    }
}

/// The document lists exactly `routes` (`(METHOD, path)`).
pub fn check_routes(doc: &Value, routes: &[(&str, &str)]) {
    let expected: BTreeSet<(String, String)> = routes
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(operations(doc), expected);
}

/// Every documented operation is routed by `app`, every other method on a
/// documented path is 405, and a path nobody documented is not routed.
/// `token` signs the calls in (or `None`, for an app that trusts them).
pub async fn check_routing(app: &Router, doc: &Value, token: Option<&str>) {
    let documented = operations(doc);
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for path in paths {
        let uri = concrete(path);
        for method in TRIED {
            let response = call(app, method, &uri, token).await;
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
    for uri in ["/api/v1/nothing", "/api/v1/events/x/y/z", "/api/v2/events"] {
        assert!(unrouted(call(app, "GET", uri, token).await).await, "{uri}");
    }
}

/// The routes in `checked` check their query: an unknown parameter is
/// refused, naming it, and the refusal lists what the route takes, which
/// is exactly what the document lists; each documented parameter, sent
/// alone, is not refused as unknown. Every other route reads no query and
/// documents none.
pub async fn check_query_params(app: &Router, doc: &Value, checked: &[&str], token: Option<&str>) {
    assert!(!checked.is_empty(), "no route's query is checked");
    for path in checked {
        let documented = query_params(doc, "GET", path);
        let uri = concrete(path);
        let response = call(app, "GET", &format!("{uri}?not_a_parameter=1"), token).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
        let problem = body(response).await;
        assert_eq!(problem["field"], "not_a_parameter", "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        // The refusal must say what the route takes ("none" explicitly):
        // a refusal that lists nothing is not read as an empty set.
        let Some((_, list)) = detail.split_once("this route takes ") else {
            panic!("{path}: the refusal does not list what the route takes: {problem}");
        };
        let accepted: BTreeSet<String> = match list {
            "none" => BTreeSet::new(),
            list => list.split(", ").map(str::to_owned).collect(),
        };
        assert_eq!(documented, accepted, "{path}: {detail}");
        for name in &documented {
            let response = call(app, "GET", &format!("{uri}?{name}=1"), token).await;
            if response.status() == StatusCode::BAD_REQUEST {
                let problem = body(response).await;
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
    for (method, path) in operations(doc) {
        if !checked.contains(&path.as_str()) {
            assert_eq!(
                query_params(doc, &method, &path),
                BTreeSet::new(),
                "{method} {path}"
            );
        }
    }
}

/// `GET /api/v1/openapi.json` without a token answers `doc`, as JSON.
pub async fn check_served(app: &Router, doc: &Value) {
    let response = call(app, "GET", "/api/v1/openapi.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "application/json");
    assert_eq!(&body(response).await, doc);
}
