//! Operations on the node's API: `/healthz`, `/readyz`, `/metrics`, the
//! per-client rate limit on `/api/v1` (429 with Retry-After) and CORS
//! (none unless origins are listed).

use axum::body::Body as HttpBody;
use axum::http::{header, Request, StatusCode};
use sentinel_http::limit::Limits;
use sentinel_http::ops::parse_origin;
use sentinel_node::http::{router_with, ApiOptions, ApiState};
use sentinel_schema::PersonRole;
use tower::ServiceExt;

use super::Api;

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let r = app
        .clone()
        .oneshot(Request::get(uri).body(HttpBody::empty()).unwrap())
        .await
        .unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    let body = axum::body::to_bytes(r.into_body(), 16 << 20).await.unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn health_readiness_and_metrics_answer_without_a_token() {
    let api = Api::start();
    let (status, _, body) = get(&api.app, "/healthz").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    let (status, _, body) = get(&api.app, "/readyz").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ready"));
    // A request, then its latency in the metrics by route template.
    api.account("ada", Some(PersonRole::Officer));
    api.login("ada").await;
    let (status, headers, body) = get(&api.app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(
        body.contains("sentinel_http_request_duration_seconds")
            && body.contains("route=\"/api/v1/login\""),
        "{body}"
    );
    assert!(body.contains("sentinel_http_failed_logins_total"), "{body}");
}

#[tokio::test]
async fn readiness_fails_when_the_schema_is_not_the_latest() {
    let api = Api::start();
    api.node
        .lock()
        .unwrap()
        .store()
        .conn()
        .pragma_update(None, "user_version", 1)
        .unwrap();
    let (status, headers, body) = get(&api.app, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        headers[header::CONTENT_TYPE],
        sentinel_node::http::PROBLEM_JSON
    );
    assert!(body.contains("schema is version 1"), "{body}");
}

#[tokio::test]
async fn the_api_is_rate_limited_and_health_is_not() {
    let api = Api::start();
    let options = ApiOptions {
        rate_limit: Limits { per_s: 1, burst: 3 },
        ..ApiOptions::default()
    };
    let app = router_with(ApiState::new(api.node.clone()).unwrap(), &options);
    // The burst passes (to the token check), then 429. A token comes back
    // each second, so on a loaded machine a request may pass after the
    // burst: the bound allows exactly the tokens that can have come back
    // in the time measured around the requests, rather than assuming the
    // burst took under a second.
    let started = std::time::Instant::now();
    let mut passed = 0;
    let (headers, body) = loop {
        let (status, headers, body) = get(&app, "/api/v1/events").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            break (headers, body);
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        passed += 1;
        let elapsed = started.elapsed();
        assert!(
            passed <= 3 + elapsed.as_secs(),
            "{passed} requests passed a burst of 3 at 1/s in {elapsed:?}"
        );
    };
    assert!(passed >= 3, "the burst of 3 was cut at {passed}: {body}");
    assert_eq!(
        headers[header::CONTENT_TYPE],
        sentinel_node::http::PROBLEM_JSON
    );
    // At 1/s a refused client waits less than a second for its next
    // token, whatever time has passed: always "1".
    assert_eq!(headers[header::RETRY_AFTER], "1");
    for uri in ["/healthz", "/readyz", "/metrics"] {
        let (status, _, _) = get(&app, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri} is never limited");
    }
}

#[tokio::test]
async fn cors_headers_only_for_listed_origins() {
    let api = Api::start();
    let preflight = |app: axum::Router, origin: &'static str| async move {
        app.oneshot(
            Request::options("/api/v1/events")
                .header(header::ORIGIN, origin)
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
                .body(HttpBody::empty())
                .unwrap(),
        )
        .await
        .unwrap()
    };
    // The default: no CORS at all.
    let r = preflight(api.app.clone(), "https://app.example.org").await;
    assert!(r
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
    let options = ApiOptions {
        cors_origins: vec![parse_origin("https://app.example.org").unwrap()],
        ..ApiOptions::default()
    };
    let app = router_with(ApiState::new(api.node.clone()).unwrap(), &options);
    let r = preflight(app.clone(), "https://app.example.org").await;
    assert_eq!(
        r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example.org"
    );
    let r = preflight(app, "https://evil.example.org").await;
    assert!(r
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
}
