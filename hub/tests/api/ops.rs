//! Operations on the real router and a real PostgreSQL: `/metrics` (route
//! histograms by template, failed logins, the sync server's counters after
//! a real session), the per-client rate limit (429 with `Retry-After`),
//! CORS from an allowlist, and one log line per request.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Method, Response};
use axum::Router;
use sentinel_http::limit::Limits;
use sentinel_http::ops;
use sentinel_hub::api::{router_with, ApiOptions};
use sentinel_hub::server::{ENTRIES_APPLIED, SESSIONS_ENDED, SESSIONS_STARTED};

use super::*;
use crate::e2e;

const ADMIN_ORIGIN: &str = "https://admin.example.org";

fn app(store: &PgStore, options: ApiOptions) -> Router {
    let admin =
        ApiState::new(store.clone(), None).map_api(|api| api.trusting("admin", PersonRole::Admin));
    router_with(admin, &options)
}

/// A request from `client` (as `serve` with connect info sees it).
fn from(client: &str, method: Method, uri: &str) -> Request<HttpBody> {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .body(HttpBody::empty())
        .unwrap();
    let addr = SocketAddr::new(client.parse().unwrap(), 40_000);
    req.extensions_mut().insert(ConnectInfo(addr));
    req
}

async fn send(app: &Router, req: Request<HttpBody>) -> Response<HttpBody> {
    app.clone().oneshot(req).await.unwrap()
}

async fn text(response: Response<HttpBody>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn scrape(app: &Router) -> String {
    let response = send(app, from("127.0.0.1", Method::GET, "/metrics")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        ops::PROMETHEUS_TEXT
    );
    text(response).await
}

/// The value of the sample `series` (name and labels exactly as
/// rendered), 0 when absent.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// The lines of `name` whose labels include every one of `labels`.
fn lines_with<'a>(metrics: &'a str, name: &str, labels: &[&str]) -> Vec<&'a str> {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|x| l.contains(x)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_route_templates_statuses_and_failed_logins() {
    let (_db, store) = fresh_store().await;
    let app = app(&store, ApiOptions::default());
    let before = scrape(&app).await;
    let failed_before = sample(&before, ops::FAILED_LOGINS);

    let missing = "0123456789abcdef0123456789abcdef";
    for uri in [
        format!("/api/v1/events/{missing}"),
        "/api/v1/events".into(),
        "/healthz".into(),
        "/no/such/route".into(),
    ] {
        send(&app, from("127.0.0.1", Method::GET, &uri)).await;
    }
    let login = Request::post("/api/v1/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(HttpBody::from(
            r#"{"name":"nobody","password":"not the password at all"}"#,
        ))
        .unwrap();
    assert_eq!(send(&app, login).await.status(), StatusCode::UNAUTHORIZED);

    let after = scrape(&app).await;
    let name = "sentinel_http_request_duration_seconds_count";
    let detail = lines_with(
        &after,
        name,
        &[
            r#"method="GET""#,
            r#"route="/api/v1/events/{id}""#,
            r#"status="4xx""#,
        ],
    );
    assert_eq!(detail.len(), 1, "{after}");
    assert!(
        !after.contains(missing),
        "raw paths never become labels: {after}"
    );
    assert_eq!(
        lines_with(
            &after,
            name,
            &[r#"route="/api/v1/events""#, r#"status="2xx""#]
        )
        .len(),
        1,
        "{after}"
    );
    assert_eq!(
        lines_with(&after, name, &[r#"route="/healthz""#]).len(),
        1,
        "{after}"
    );
    assert!(
        !lines_with(
            &after,
            "sentinel_http_request_duration_seconds_bucket",
            &[r#"route="/api/v1/events""#, r#"le="0.1""#]
        )
        .is_empty(),
        "a real histogram, with buckets: {after}"
    );
    assert!(!after.contains("/no/such/route"), "{after}");
    assert_eq!(
        lines_with(&after, name, &[r#"route="unmatched""#]).len(),
        1,
        "{after}"
    );
    assert!(
        sample(&after, ops::FAILED_LOGINS) > failed_before,
        "the failed login counted: {after}"
    );
    assert!(after.contains("# TYPE sentinel_http_request_duration_seconds histogram"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_session_moves_the_session_and_ingest_counters() {
    // Installed before the hub serves, as the binary does.
    let handle = ops::metrics().unwrap();
    let before = handle.render();
    let ended = format!(r#"{SESSIONS_ENDED}{{outcome="closed"}}"#);

    let ca = e2e::deployment("Sentinel ops test CA", 61);
    let hub = e2e::Hub::start(&ca, 10).await;
    let node = e2e::Peer::new(&ca, "node-ops", 62);
    node.report(7_000, 4);
    let s = e2e::sync(&node, &hub).await;
    assert_eq!(s.sent, 4, "{s:?}");
    e2e::eventually("the hub to end the session", || !hub.sessions().is_empty()).await;

    let after = scrape(&app(&hub.store, ApiOptions::default())).await;
    // Other tests sync in parallel: at least this session's share moved.
    assert!(
        sample(&after, ENTRIES_APPLIED) >= sample(&before, ENTRIES_APPLIED) + 4.0,
        "{after}"
    );
    assert!(sample(&after, SESSIONS_STARTED) >= sample(&before, SESSIONS_STARTED) + 1.0);
    assert!(
        sample(&after, &ended) >= sample(&before, &ended) + 1.0,
        "{after}"
    );
    assert!(after.contains("# TYPE sentinel_hub_sync_sessions_open gauge"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_burst_a_client_gets_429_with_retry_after() {
    let (_db, store) = fresh_store().await;
    let options = ApiOptions {
        rate_limit: Limits { per_s: 1, burst: 2 },
        ..ApiOptions::default()
    };
    let app = app(&store, options);
    // The burst passes, then 429. A token comes back each second, so on a
    // loaded machine a request may pass after the burst: the bound allows
    // exactly the tokens that can have come back in the time measured
    // around the requests (the limiter's own interval is within it),
    // rather than assuming the burst took under a second.
    let started = Instant::now();
    let mut passed = 0;
    let r = loop {
        let r = send(&app, from("192.0.2.7", Method::GET, "/api/v1/timeline")).await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            break r;
        }
        assert_eq!(r.status(), StatusCode::OK);
        passed += 1;
        let elapsed = started.elapsed();
        assert!(
            passed <= 2 + elapsed.as_secs(),
            "{passed} requests passed a burst of 2 at 1/s in {elapsed:?}"
        );
    };
    assert!(passed >= 2, "the burst of 2 was cut at {passed}");
    // At 1/s a refused client waits less than a second for its next
    // token, whatever time has passed: always "1".
    assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    let body: Value = serde_json::from_str(&text(r).await).unwrap();
    assert_eq!(body["status"], 429);
    assert_eq!(body["type"], "urn:sentinel:problem:rate-limited");

    // Another client has its own bucket; health and metrics are never
    // limited.
    let r = send(&app, from("192.0.2.8", Method::GET, "/api/v1/events")).await;
    assert_eq!(r.status(), StatusCode::OK);
    for uri in ["/healthz", "/readyz", "/metrics", "/healthz", "/metrics"] {
        let r = send(&app, from("192.0.2.7", Method::GET, uri)).await;
        assert_eq!(r.status(), StatusCode::OK, "{uri}");
    }
    let metrics = scrape(&app).await;
    assert!(sample(&metrics, ops::RATE_LIMITED) >= 1.0, "{metrics}");
    assert_eq!(
        lines_with(
            &metrics,
            "sentinel_http_request_duration_seconds_count",
            &[r#"route="/api/v1/timeline""#, r#"status="4xx""#]
        )
        .len(),
        1,
        "429s are timed under their route: {metrics}"
    );
}

fn with_origin(mut req: Request<HttpBody>, origin: &str) -> Request<HttpBody> {
    req.headers_mut()
        .insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_only_the_allowed_origins() {
    let (_db, store) = fresh_store().await;
    let acao = header::ACCESS_CONTROL_ALLOW_ORIGIN;

    // Default: no CORS headers at all, and no preflight.
    let plain = app(&store, ApiOptions::default());
    let r = send(
        &plain,
        with_origin(
            from("127.0.0.1", Method::GET, "/api/v1/events"),
            ADMIN_ORIGIN,
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        !r.headers()
            .keys()
            .any(|k| k.as_str().starts_with("access-control-")),
        "{:?}",
        r.headers()
    );

    let options = ApiOptions {
        cors_origins: vec![ops::parse_origin(ADMIN_ORIGIN).unwrap()],
        ..ApiOptions::default()
    };
    let app = app(&store, options);
    let r = send(
        &app,
        with_origin(
            from("127.0.0.1", Method::GET, "/api/v1/events"),
            ADMIN_ORIGIN,
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[&acao], ADMIN_ORIGIN);

    let r = send(
        &app,
        with_origin(
            from("127.0.0.1", Method::GET, "/api/v1/events"),
            "https://evil.example",
        ),
    )
    .await;
    assert!(r.headers().get(&acao).is_none(), "{:?}", r.headers());

    // Preflight for a signed-in POST with a JSON body.
    let preflight = |origin: &str| {
        let mut req = with_origin(from("127.0.0.1", Method::OPTIONS, "/api/v1/users"), origin);
        let h = req.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("authorization,content-type"),
        );
        req
    };
    let r = send(&app, preflight(ADMIN_ORIGIN)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers();
    assert_eq!(h[&acao], ADMIN_ORIGIN);
    let methods = h[header::ACCESS_CONTROL_ALLOW_METHODS].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    let allowed = h[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    let r = send(&app, preflight("https://evil.example")).await;
    assert!(r.headers().get(&acao).is_none(), "{:?}", r.headers());
}

/// Collects what a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn every_request_is_one_json_log_line() {
    let (_db, store) = fresh_store().await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(move || writer.clone())
        .finish();
    // This thread only: the runtime is current-thread, so the request runs
    // here.
    let _guard = tracing::subscriber::set_default(subscriber);
    // Another test of this binary, on another thread with no subscriber,
    // may have met the request log's callsite first and cached "never"
    // for it while this subscriber was being registered (a race in
    // `tracing`'s interest cache): ask again, now that it is registered.
    tracing::callsite::rebuild_interest_cache();
    let app = app(&store, ApiOptions::default());
    let r = send(
        &app,
        from("198.51.100.9", Method::GET, "/api/v1/events/not-hex"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["target"] == ops::REQUEST_LOG_TARGET)
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    let line = &lines[0];
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/api/v1/events/{id}");
    assert_eq!(line["status"], 400);
    assert_eq!(line["client"], "198.51.100.9");
    assert!(line["latency_ms"].as_f64().unwrap() >= 0.0, "{line}");
}
