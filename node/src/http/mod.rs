//! The node's HTTP API: what an officer's browser or app on the device
//! uses, JSON over HTTP (axum), under `/api/v1`.
//!
//! **Safe by default.** The CLI serves it only when asked (`sentinel-node
//! serve --http [ADDR]`), on `127.0.0.1:8081` unless another address is
//! given: it is plain HTTP. Every route but `login` wants a bearer token
//! ([`auth`]) and checks the caller against the matrix in
//! `sentinel_schema::access` (`docs/security.md` 3.3) — with the event's
//! facts for object-level rules: its reporter (the actor of the entry that
//! created it) and its assignee. The public gets redacted events.
//!
//! **Input.** Errors are `application/problem+json` naming the refused
//! field or parameter. JSON bodies are at most 16 KiB, refused (413) from
//! their `Content-Length` before they are read; media at most
//! `MAX_MEDIA_BYTES`, counted while streaming. Unknown body members and
//! unknown or repeated query parameters are refused. Coordinates, text
//! lengths (`sentinel_schema::limits`) and the status workflow are checked
//! before anything is written, and every change a request makes is one
//! transaction: a refused request leaves nothing behind.
//!
//! # Routes
//!
//! | Route | What |
//! |---|---|
//! | `GET /healthz` | `200 ok` while the process runs |
//! | `GET /readyz` | `200` when the store answers and its schema is the latest migration, else `503` |
//! | `GET /metrics` | Prometheus text format, unauthenticated: keep it on the device |
//! | `POST /api/v1/login`, `POST /api/v1/logout` | bearer tokens |
//! | `GET /api/v1/events` | search: `bbox`, `near`+`radius`, `q`, `status`, `category`, `min_severity`, `max_severity`, `from`, `to`, `limit`, `after` |
//! | `POST /api/v1/events` | report: `title`, `description`, `category`, `severity`, `location` `{lon, lat}`, `reported_ms` |
//! | `GET /api/v1/events/{id}` | one event; with history and conflicts for those who may read them |
//! | `PATCH /api/v1/events/{id}` | `title`, `description`, `category`, `severity`, `location` |
//! | `POST /api/v1/events/{id}/notes` | `{"text"}` |
//! | `POST /api/v1/events/{id}/assign` | `{"assignee"}` |
//! | `POST /api/v1/events/{id}/{accept,start,resolve,close,reopen}` | the workflow |
//! | `POST /api/v1/events/{id}/media` | multipart, one part `file` (and optionally `name`) |
//! | `GET /api/v1/media/{hash}` | a photo or video by its SHA-256 |
//! | `GET /api/v1/outbox` | entries written here awaiting a hub receipt |
//! | `GET /api/v1/export.geojson` | the events a search finds, as a GeoJSON FeatureCollection (see `export.rs`) |
//! | `GET /api/v1/feed` | Server-Sent Events: each event as it changes, here or by sync (see [`Feed`]) |
//! | `POST /api/v1/sensors/entries` | a sensor's signed readings, `application/cbor`; no token (see `sensors.rs`) |
//! | `GET /api/v1/sensors/readings` | readings: `sensor`, `kind`, `name`, `from`, `to`, `bbox`, `limit`, `after`; or per `bucket_ms` |
//! | `GET /api/v1/sensors` | the sensors seen, with their forks |
//! | `GET /api/v1/openapi.json` | this API's OpenAPI 3.1 document, no token needed (see [`openapi`]) |
//!
//! The router and the document are made from one route list
//! ([`api_routes`], [`ops_routes`]): each handler's `#[utoipa::path]`
//! says its method, path, parameters and answers.
//!
//! # Operations
//!
//! [`router_with`] puts every `/api/v1` route behind a per-client rate
//! limit (`429` with `Retry-After`; `/healthz`, `/readyz` and `/metrics`
//! are never limited), allows the configured CORS origins only (none by
//! default: no CORS headers at all), and times and logs every request —
//! the hub's operations, from `sentinel_http::ops` and
//! `sentinel_http::limit`.

pub mod auth;
mod events;
mod export;
mod feed;
mod media;
pub mod openapi;
mod outbox;
mod params;
mod sensors;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use sentinel_certs::CaCert;
use sentinel_http::limit::{self, Limits, RateLimiter, DEFAULT_MAX_CLIENTS};
use sentinel_http::openapi::Unavailable;
use sentinel_http::ops;
use sentinel_schema::EventError;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

pub use auth::Caller;
pub use feed::{Feed, FEED_BUFFER};
pub use sentinel_http::{Problem, PROBLEM_JSON};

use crate::node::{Node, NodeError, CA_FILE};
use crate::sensors::Ingest;

/// The default address of `serve --http`: this device only.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8081";

/// The sustained requests per second of one client, by default (as the hub).
pub const DEFAULT_RATE_LIMIT_PER_S: u32 = 10;
/// The burst of one client, by default (as the hub).
pub const DEFAULT_RATE_LIMIT_BURST: u32 = 50;
/// How long `/readyz` waits for the node's lock and store.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What every handler shares: the node (with sync, behind one lock), the
/// deployment CA that vouches for the hubs whose role grants count, and
/// the live feed.
#[derive(Clone)]
pub struct ApiState {
    node: Arc<Mutex<Node>>,
    ca: Option<Arc<CaCert>>,
    feed: Feed,
    /// Checks sensor pushes; `None` on a node that is not enrolled.
    ingest: Option<Ingest>,
}

impl ApiState {
    /// The API over `node`; reads the CA certificate `enroll` left in the
    /// data directory, if any.
    pub fn new(node: Arc<Mutex<Node>>) -> Result<ApiState, NodeError> {
        let dir = node
            .lock()
            .map_err(|_| NodeError::Net("the node's lock is poisoned".into()))?
            .dir()
            .to_path_buf();
        let path = dir.join(CA_FILE);
        let ca = if path.exists() {
            Some(Arc::new(CaCert::load(&path)?))
        } else {
            None
        };
        let ingest = match &ca {
            Some(ca) => {
                let guard = node
                    .lock()
                    .map_err(|_| NodeError::Net("the node's lock is poisoned".into()))?;
                Some(Ingest::for_node(&guard, ca)?)
            }
            None => None,
        };
        Ok(ApiState {
            node,
            ca,
            feed: Feed::new(),
            ingest,
        })
    }

    /// Checks sensor pushes with `ingest` — with `serve`, the revocation
    /// handle its sync sessions share, so a revocation learned by sync
    /// applies to the next push.
    pub fn with_ingest(self, ingest: Ingest) -> ApiState {
        ApiState {
            ingest: Some(ingest),
            ..self
        }
    }

    /// The live feed of this API (`GET /api/v1/feed`).
    pub fn feed(&self) -> &Feed {
        &self.feed
    }
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs `f` on the node, under its lock, on a blocking thread (SQLite and
/// fsync must not stall the async workers).
pub(crate) async fn with_node<T: Send + 'static>(
    state: &ApiState,
    f: impl FnOnce(&mut Node) -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    let node = state.node.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = node
            .lock()
            .map_err(|_| Problem::unavailable(&"the node's lock is poisoned"))?;
        f(&mut guard)
    })
    .await
    .map_err(|e| Problem::unavailable(&e))?
}

/// Runs a write on the node, as [`with_node`], and wakes the live feed so
/// what it changed goes out now.
pub(crate) async fn write_node<T: Send + 'static>(
    state: &ApiState,
    f: impl FnOnce(&mut Node) -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    let written = with_node(state, f).await;
    state.feed.poke();
    written
}

/// A refused edit, naming the field at fault.
pub(crate) fn event_problem(e: EventError, field: &str) -> Problem {
    match e {
        // The schema names a note's text `note.text`; the body calls it `text`.
        EventError::Invalid { field, reason } => {
            Problem::bad_field(if field == "note.text" { "text" } else { field }, reason)
        }
        EventError::InvalidTransition { from, to } => Problem::conflict(
            "status",
            format!("the event is {from}; it cannot become {to} from there"),
        ),
        EventError::Unchanged => Problem::conflict(field, "the edit changes nothing"),
        other => Problem::unavailable(&other),
    }
}

impl From<NodeError> for Problem {
    fn from(e: NodeError) -> Problem {
        match e {
            NodeError::NoSuchEvent(id) => Problem::not_found(format!("no event {id}")),
            NodeError::Event(e) => event_problem(e, "body"),
            other => Problem::unavailable(&other),
        }
    }
}

impl From<crate::store::StoreError> for Problem {
    fn from(e: crate::store::StoreError) -> Problem {
        Problem::unavailable(&e)
    }
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process runs.", body = String,
        content_type = "text/plain", example = "ok"))
)]
async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the store answers, and its schema is the newest this
/// build knows (`PRAGMA user_version` equals the number of migrations).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The store answers and its schema is current.",
            body = String, content_type = "text/plain", example = "ready"),
        (status = 503, description = "Not ready: the detail says why.",
            body = Problem, content_type = "application/problem+json"),
    )
)]
async fn readyz(State(state): State<ApiState>) -> Response {
    use crate::store::migrations::SCHEMA_VERSION;
    let check = with_node(&state, |node| {
        let version: i64 = node
            .store()
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| Problem::unavailable(&e))?;
        if version == SCHEMA_VERSION {
            Ok(())
        } else {
            Err(not_ready(format!(
                "the store's schema is version {version}, this build needs {SCHEMA_VERSION}"
            )))
        }
    });
    match tokio::time::timeout(READY_TIMEOUT, check).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(p)) => p.into_response(),
        Err(_) => not_ready("the store did not answer within 2 s").into_response(),
    }
}

/// 503 saying what is not ready (for the operator; it names nothing
/// secret, unlike the causes [`Problem::unavailable`] keeps to the log).
fn not_ready(detail: impl Into<String>) -> Problem {
    Problem {
        status: StatusCode::SERVICE_UNAVAILABLE,
        kind: "urn:sentinel:problem:unavailable",
        title: "Service unavailable",
        detail: detail.into(),
        field: None,
    }
}

/// `GET /metrics` ([`ops::metrics_endpoint`]).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Every metric, Prometheus text format 0.0.4.",
            body = String, content_type = "text/plain"),
        Unavailable,
    )
)]
async fn metrics() -> Response {
    ops::metrics_endpoint().await
}

async fn not_found() -> Problem {
    Problem::not_found("no such route")
}

/// How the API is served, beyond its routes (`sentinel-node serve` flags).
#[derive(Debug, Clone, Default)]
pub struct ApiOptions {
    /// Per-client token bucket for `/api/v1` routes; off when either is 0.
    pub rate_limit: Limits,
    /// Browser origins allowed by CORS (from
    /// `sentinel_http::ops::parse_origin`); empty: no CORS headers at all.
    pub cors_origins: Vec<HeaderValue>,
}

/// The methods the API answers, for CORS preflights.
const API_METHODS: [Method; 3] = [Method::GET, Method::POST, Method::PATCH];

/// Every route of the API, with no rate limit and no CORS
/// ([`ApiOptions::default`]); the CLI uses [`router_with`].
pub fn router(state: ApiState) -> Router {
    router_with(state, &ApiOptions::default())
}

/// The `/api/v1` routes (behind the rate limit). The router and the
/// OpenAPI document ([`openapi::document`]) are both made from this list:
/// a route is served and documented from its handler's `#[utoipa::path]`.
pub(crate) fn api_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(events::list, events::report))
        .routes(routes!(events::detail, events::edit))
        .routes(routes!(events::note))
        .routes(routes!(events::assign))
        .routes(routes!(events::accept))
        .routes(routes!(events::start))
        .routes(routes!(events::resolve))
        .routes(routes!(events::close))
        .routes(routes!(events::reopen))
        .routes(routes!(media::upload).layer(DefaultBodyLimit::max(media::MAX_UPLOAD_BYTES)))
        .routes(routes!(media::download))
        .routes(routes!(outbox::outbox))
        .routes(routes!(export::export))
        .routes(routes!(feed::feed))
        .routes(routes!(sensors::push))
        .routes(routes!(sensors::readings))
        .routes(routes!(sensors::sensors))
        .routes(routes!(openapi::openapi_json))
}

/// The operations routes, never rate-limited; in the document too.
pub(crate) fn ops_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// Every route of the API with `options`: `/api/v1` behind the rate
/// limit; every route with CORS (if configured), request metrics and one
/// log line per request. A path no route has is a problem+json `404`.
pub fn router_with(state: ApiState, options: &ApiOptions) -> Router {
    let (api, _) = api_routes().split_for_parts();
    let (operations, _) = ops_routes().split_for_parts();
    let limiter = RateLimiter::new(options.rate_limit, DEFAULT_MAX_CLIENTS).map(Arc::new);
    let app = operations
        .merge(limit::limited(api, limiter))
        .fallback(not_found);
    let app = ops::with_cors(app, &options.cors_origins, &API_METHODS);
    let observe = ops::Observe {
        login_route: Some("/api/v1/login"),
    };
    ops::observed(app, observe).with_state(state)
}

/// Serves the API on `listener` until the future is dropped, with the
/// client's address known to the rate limit and the request log.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    options: ApiOptions,
) -> std::io::Result<()> {
    let app = router_with(state, &options);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

/// Binds `addr` for the API.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// 201 Created.
pub(crate) const CREATED: StatusCode = StatusCode::CREATED;
