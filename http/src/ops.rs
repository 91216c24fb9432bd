//! Operations for either server's HTTP API: metrics in Prometheus text
//! format, one log line per request, and CORS from an allowlist. Rate
//! limiting is [`crate::limit`].
//!
//! **Metrics.** Counters and histograms go through the `metrics` facade: a
//! call is a no-op until [`metrics`] has installed the process's one
//! Prometheus recorder, so any code (the hub's sync server, a node's)
//! counts without a handle passed to it. [`metrics_endpoint`] renders the
//! text format; serve it next to `/healthz`, unauthenticated, and keep it
//! off the public network (it names routes and counts traffic). Run
//! [`metrics_upkeep`] in the background so histograms that nobody scrapes
//! stay bounded.
//!
//! **Requests.** [`observed`] wraps a router: every request it answers is
//! timed into [`HTTP_DURATION`] (labels `method`, `route` — the matched
//! route template such as `/api/v1/events/{id}`, never the raw path, or
//! `unmatched` — and `status`, the class `2xx`…`5xx`), logged as one
//! `tracing` event (target [`REQUEST_LOG_TARGET`]: method, route, status,
//! latency in ms, client address), and a `401` from the login route counts
//! as a failed login ([`FAILED_LOGINS`]).
//!
//! **CORS.** [`cors`] allows exactly the listed origins (none: no CORS
//! headers at all), the API's methods and the `Authorization` and
//! `Content-Type` request headers; browsers may read `Retry-After` and
//! `WWW-Authenticate`.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::Problem;

/// Request latency histogram, seconds; labels `method`, `route`, `status`.
pub const HTTP_DURATION: &str = "sentinel_http_request_duration_seconds";
/// Logins refused with `401` (wrong name, password, or disabled account).
pub const FAILED_LOGINS: &str = "sentinel_http_failed_logins_total";
/// Requests refused with `429` by [`crate::limit`].
pub const RATE_LIMITED: &str = "sentinel_http_rate_limited_total";
/// The `tracing` target of the one line per request.
pub const REQUEST_LOG_TARGET: &str = "sentinel_http::request";
/// The `Content-Type` of [`metrics_endpoint`]'s answer.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Upper bounds of the latency buckets, seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// The `route` label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum OpsError {
    #[error("cannot install the metrics recorder: {0}")]
    Recorder(String),
    #[error("{origin:?} is not a CORS origin: {reason}")]
    Origin { origin: String, reason: String },
}

/// The process's Prometheus recorder, installed on the first call (with
/// [`LATENCY_BUCKETS`] for every `*_seconds` histogram). Fails, every time,
/// if some other recorder was installed first.
pub fn metrics() -> Result<&'static PrometheusHandle, OpsError> {
    static HANDLE: OnceLock<Result<PrometheusHandle, OpsError>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .map_err(|e| OpsError::Recorder(e.to_string()))?
                .install_recorder()
                .map_err(|e| OpsError::Recorder(e.to_string()))?;
            describe();
            Ok(handle)
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn describe() {
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency by method, matched route and status class"
    );
    metrics::describe_counter!(FAILED_LOGINS, "Logins refused with 401");
    metrics::describe_counter!(
        RATE_LIMITED,
        "Requests refused with 429 by the per-client rate limit"
    );
    // Present (as 0) from the start, so alerts need no `absent()`.
    metrics::counter!(FAILED_LOGINS).increment(0);
    metrics::counter!(RATE_LIMITED).increment(0);
}

/// `GET /metrics`: every metric in Prometheus text format; `503` if the
/// recorder could not be installed.
pub async fn metrics_endpoint() -> Response {
    match metrics() {
        Ok(handle) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(PROMETHEUS_TEXT),
            )],
            handle.render(),
        )
            .into_response(),
        Err(e) => Problem::unavailable(&e).into_response(),
    }
}

/// Drains histogram samples into their buckets every `every`, so memory
/// stays bounded between scrapes. Runs until dropped; does nothing if the
/// recorder is not installed.
pub async fn metrics_upkeep(every: Duration) {
    let Ok(handle) = metrics() else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

/// What [`observed`] needs to know about the API it wraps.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observe {
    /// The route template of `POST` login, whose `401`s count as failed
    /// logins.
    pub login_route: Option<&'static str>,
}

/// Wraps every route of `router` (add them first): latency histogram,
/// failed logins and one log line per request. Apply it last, so it also
/// sees what other layers answer (`429`, CORS preflights).
pub fn observed<S>(router: Router<S>, observe: Observe) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    // Install the recorder now, so what the server counts before the first
    // scrape is kept.
    if let Err(e) = metrics() {
        tracing::warn!("{e}");
    }
    router.layer(middleware::from_fn_with_state(observe, observe_request))
}

async fn observe_request(State(observe): State<Observe>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let is_post = req.method() == Method::POST;
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let client = client_ip(&req);
    let response = next.run(req).await;
    let latency = started.elapsed();
    let status = response.status();
    let route = route.as_deref().unwrap_or(UNMATCHED);
    metrics::histogram!(
        HTTP_DURATION,
        "method" => method,
        "route" => route.to_owned(),
        "status" => status_class(status),
    )
    .record(latency.as_secs_f64());
    if is_post && status == StatusCode::UNAUTHORIZED && observe.login_route == Some(route) {
        metrics::counter!(FAILED_LOGINS).increment(1);
    }
    let client = client.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
    tracing::info!(
        target: REQUEST_LOG_TARGET,
        method,
        route,
        status = status.as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        client = client.as_str(),
        "request"
    );
    response
}

/// The client's IP address: the one [`crate::proxy::with_client_ip`]
/// found (the address a trusted reverse proxy forwarded), else the peer's,
/// when the server gives each request its connect info
/// (`crate::serve`, or axum's `into_make_service_with_connect_info`).
pub fn client_ip<B>(req: &axum::http::Request<B>) -> Option<IpAddr> {
    if let Some(ClientIp(ip)) = req.extensions().get::<ClientIp>() {
        return Some(*ip);
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
}

/// The client's address as [`crate::proxy::with_client_ip`] found it (a
/// request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// A bounded set of method labels: anything unusual is `OTHER`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// An allowed CORS origin as a browser sends it: `http` or `https`, a
/// host, an optional port, nothing else (a trailing `/` is dropped; scheme
/// and host are lowercased). `*` is refused: list the origins.
pub fn parse_origin(text: &str) -> Result<HeaderValue, OpsError> {
    let bad = |reason: &str| OpsError::Origin {
        origin: text.to_owned(),
        reason: reason.to_owned(),
    };
    let origin = text.trim();
    let origin = origin
        .strip_suffix('/')
        .unwrap_or(origin)
        .to_ascii_lowercase();
    if origin == "*" {
        return Err(bad("a wildcard is not allowed; list each origin"));
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err(bad("must look like https://host or https://host:port"));
    };
    if scheme != "http" && scheme != "https" {
        return Err(bad("the scheme must be http or https"));
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ', '*']) {
        return Err(bad(
            "must be only scheme://host[:port], no path, query or user",
        ));
    }
    let (host, port) = match rest.strip_prefix('[') {
        // An IPv6 literal: [::1] or [::1]:8080.
        Some(v6) => match v6.split_once(']') {
            Some((addr, "")) => (addr, None),
            Some((addr, tail)) => match tail.strip_prefix(':') {
                Some(port) => (addr, Some(port)),
                None => return Err(bad("must be only scheme://host[:port]")),
            },
            None => return Err(bad("an IPv6 address needs its closing ]")),
        },
        None => match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        },
    };
    if host.is_empty() {
        return Err(bad("the host is missing"));
    }
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(bad("the port must be a number up to 65535"));
    }
    HeaderValue::from_str(&origin).map_err(|e| bad(&e.to_string()))
}

/// A CORS layer allowing exactly `origins` (from [`parse_origin`]) to use
/// `methods` with the `Authorization` and `Content-Type` headers; `None`
/// when the list is empty (no CORS headers at all).
pub fn cors(origins: &[HeaderValue], methods: &[Method]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods(methods.to_vec())
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([header::RETRY_AFTER, header::WWW_AUTHENTICATE])
            .max_age(Duration::from_secs(600)),
    )
}

/// `router` with [`cors`] applied to every route, if any origin is allowed.
pub fn with_cors<S>(router: Router<S>, origins: &[HeaderValue], methods: &[Method]) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    match cors(origins, methods) {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn origins_are_checked_and_normalised() {
        for (given, want) in [
            ("https://admin.example.org", "https://admin.example.org"),
            ("HTTPS://Admin.Example.org/", "https://admin.example.org"),
            ("http://localhost:5173", "http://localhost:5173"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("http://[::1]", "http://[::1]"),
            (" http://10.0.0.1 ", "http://10.0.0.1"),
        ] {
            assert_eq!(parse_origin(given).unwrap(), want, "{given}");
        }
        for bad in [
            "*",
            "admin.example.org",
            "ftp://example.org",
            "https://",
            "https://example.org/app",
            "https://example.org?x=1",
            "https://user@example.org",
            "https://example.org:http",
            "https://example.org:70000",
            "https://exa mple.org",
        ] {
            let e = parse_origin(bad).unwrap_err().to_string();
            assert!(e.contains(bad.trim()), "{bad}: {e}");
        }
    }

    #[test]
    fn labels_stay_bounded() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
        assert_eq!(status_class(StatusCode::OK), "2xx");
        assert_eq!(status_class(StatusCode::TOO_MANY_REQUESTS), "4xx");
        assert_eq!(status_class(StatusCode::SERVICE_UNAVAILABLE), "5xx");
    }

    #[test]
    fn no_origins_no_cors_layer() {
        assert!(cors(&[], &[Method::GET]).is_none());
        let o = parse_origin("https://a.example").unwrap();
        assert!(cors(&[o], &[Method::GET]).is_some());
    }
}
