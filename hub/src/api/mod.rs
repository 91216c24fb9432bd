//! The hub's HTTP API: JSON over HTTP (axum), the routes both servers
//! serve written once in `sentinel_http::api` (invariant 11), plus the
//! hub's own.
//!
//! **Signed in.** Every `/api/v1` route but `login`, the sensor push and
//! the document wants a bearer token (`POST /api/v1/login`) and checks
//! the caller's role against the matrix in `sentinel_schema::access`
//! (`docs/security.md` 3.3): the public gets redacted events, only admins
//! read the timeline, node status and accounts. The binary binds the API
//! to localhost unless configured otherwise (`sentinel-hub serve --http
//! ADDR`), over HTTPS when configured (`crate::https`).
//!
//! # Routes
//!
//! | Route | What |
//! |---|---|
//! | `GET /healthz`, `GET /readyz`, `GET /metrics` | operations (shared): the process runs; the database answers and every migration is applied; Prometheus text |
//! | `POST /api/v1/login`, `POST /api/v1/logout` | bearer tokens (shared) |
//! | `GET /api/v1/events`, `GET /api/v1/events/{id}`, `GET /api/v1/export.geojson`, `.csv`, `.kml` | the events view: search, one event with its history and conflicts, exports as GeoJSON, CSV and KML (shared) |
//! | `GET /api/v1/feed` | Server-Sent Events: each event as the projector changes it (shared; fed by [`live`]) |
//! | `POST /api/v1/sensors/entries`, `GET /api/v1/sensors/readings`, `GET /api/v1/sensors`, `GET /api/v1/sensors/alerts` | sensor pushes (no token: signatures authenticate), the readings time series, the sensors seen, the rules that fired (shared) |
//! | `POST /api/v1/password` | one's own password, the current one required (shared) |
//! | `GET/POST /api/v1/users`, `POST …/users/{name}/role`, `…/disable`, `…/enable`, `…/password` | accounts, admins (`users.rs`) |
//! | `GET /api/v1/timeline` | every entry of the log, in HLC order (`timeline.rs`) |
//! | `POST /api/v1/events/{id}/assign`, `…/close`, `…/reopen` | admin actions, as entries the hub signs (`actions.rs`) |
//! | `GET /api/v1/nodes` | every peer the sync server has seen, its lag and its outbox (`nodes.rs`) |
//! | `POST /api/v1/devices/{key}/revoke` | cuts a device off at once (`devices.rs`) |
//! | `GET /api/v1/media/{hash}` | a photo or video an event names, from the blob folder, as the node answers it (`media.rs`) |
//! | `GET /api/v1/alerts` | what an operator must act on: forks, quarantine, checkpoint breaches (`alerts.rs`) |
//! | `GET/POST /api/v1/webhooks`, `GET/PATCH/DELETE …/webhooks/{id}`, `GET …/{id}/deliveries`, `POST /api/v1/webhook-deliveries/{id}/replay` | webhook subscriptions, their delivery log, replays (`webhooks.rs`) |
//! | `GET /api/v1/openapi.json` | this API's OpenAPI 3.1 document, no token needed ([`openapi`]) |
//!
//! The shared routes reach the store through [`HubBackend`] (the
//! `sentinel_http::api::Backend` of the hub); the hub's own read the store
//! through its methods. Neither writes SQL (invariant 10).
//!
//! **Pagination.** Keyset: `limit` (1..=500) and `after`, the opaque `next`
//! of the previous page (`null` on the last page). A page never repeats or
//! skips an item that existed when the walk began.
//!
//! **Operations.** [`router_with`] puts every `/api/v1` route behind a
//! per-client rate limit (`429` with `Retry-After`; `/healthz`, `/readyz`
//! and `/metrics` are never limited), allows the configured CORS origins
//! only, and times and logs every request (`sentinel_http::ops`,
//! `sentinel_http::limit`). `/metrics` shows request latency per method,
//! route template and status class, failed logins, rate-limited requests
//! and the sync server's sessions and entries (`crate::server`).
//!
//! **Errors.** `application/problem+json` (RFC 9457) with `type`, `title`,
//! `status`, `detail` and, for a refused parameter or field, the extension
//! member `field` naming it. Bad parameters (unknown or repeated ones too)
//! are `400`, an unknown event `404`, a database that does not answer
//! `503`.
//!
//! Never does: SQL; know the sync server (the live feed follows the
//! projector's changes channel it is handed: [`live::follow`]).

mod actions;
mod alerts;
mod backend;
mod devices;
pub mod live;
mod media;
mod nodes;
pub mod openapi;
mod redact;
mod routes;
mod state;
mod timeline;
mod users;
mod webhooks;

use std::sync::Arc;

use axum::http::Method;
use axum::{Extension, Router};
use sentinel_http::api::Document;
use sentinel_http::limit::{self, Limits, LoginLimits, RateLimiter, DEFAULT_MAX_CLIENTS};
use sentinel_http::ops;
use sentinel_http::proxy::{self, TrustedProxies};

pub use backend::HubBackend;
pub use openapi::document;
pub use sentinel_http::api::{Api, Feed};
pub use sentinel_http::{Problem, PROBLEM_JSON};
pub use state::ApiState;

/// The API's router.
///
/// With no rate limit and no CORS ([`ApiOptions::default`]); the binary
/// uses [`router_with`] and the configured options.
pub fn router(state: ApiState) -> Router {
    router_with(state, &ApiOptions::default())
}

/// How the API is served, beyond its routes (see [`crate::config`]).
#[derive(Debug, Clone, Default)]
pub struct ApiOptions {
    /// Per-client token bucket for `/api/v1` routes; off when either is 0.
    pub rate_limit: Limits,
    /// Browser origins allowed by CORS; empty: no CORS headers at all.
    pub cors_origins: Vec<axum::http::HeaderValue>,
    /// The accept loop's connection cap and timeouts
    /// (`sentinel_http::serve`).
    pub serve: sentinel_http::serve::ServeOptions,
    /// The stricter limit of `POST /api/v1/login`, per client; off when
    /// either is 0.
    pub login_limit: LoginLimits,
    /// Reverse proxies whose forwarded client addresses are believed
    /// (`sentinel_http::proxy`); none: the peer is the client.
    pub trusted_proxies: TrustedProxies,
    /// Live-feed streams open at once; `None` leaves the feed's own bound.
    pub feed_max_subscribers: Option<usize>,
    /// The admin's web pages at `/` (`sentinel_ui`); `None`: API only.
    pub ui: Option<sentinel_ui::UiConfig>,
    /// The analysis summary's language model; `None`: local summaries.
    pub llm: Option<sentinel_http::llm::Llm>,
}

/// The methods the API answers, for CORS preflights.
const API_METHODS: [Method; 4] = [Method::GET, Method::POST, Method::PATCH, Method::DELETE];

/// The `/api/v1` routes and the operations routes, without layers.
fn routers() -> (Router<ApiState>, Router<ApiState>) {
    let (api, _) = routes::api_routes().split_for_parts();
    let (operations, _) = routes::ops_routes().split_for_parts();
    // `GET /api/v1/openapi.json` serves this document (it describes the
    // routes, so it reaches them as an extension, not in their state).
    let api = api.layer(Extension(Document::new(openapi::document)));
    (api, operations)
}

/// Test hook (feature `testing`): the routes alone, without the rate
/// limit, CORS and request metrics, so tests of the route table add nothing
/// to the process's metrics that other tests read.
#[cfg(feature = "testing")]
pub fn bare_router(state: ApiState) -> Router {
    let (api, operations) = routers();
    operations
        .merge(api)
        .fallback(sentinel_http::api::no_such_route)
        .with_state(state)
}

/// The API's router with `options`: `/api/v1` behind the rate limit,
/// `POST /api/v1/login` behind the login limit too; every route with CORS
/// (if configured), request metrics and one log line per request
/// (`sentinel_http::ops`), each knowing the client behind a trusted proxy
/// (`sentinel_http::proxy`).
pub fn router_with(state: ApiState, options: &ApiOptions) -> Router {
    let (api, operations) = routers();
    let limiter = RateLimiter::new(options.rate_limit, DEFAULT_MAX_CLIENTS).map(Arc::new);
    let logins = RateLimiter::for_logins(options.login_limit, DEFAULT_MAX_CLIENTS).map(Arc::new);
    let api = limit::limited(limit::login_limited(api, logins), limiter);
    let mut app = operations.merge(api);
    if let Some(ui) = &options.ui {
        app = app.merge(sentinel_ui::routes(ui.clone()));
    }
    let app = app.fallback(sentinel_http::api::no_such_route);
    let app = ops::with_cors(app, &options.cors_origins, &API_METHODS);
    let observe = ops::Observe {
        login_route: Some(limit::LOGIN_PATH),
    };
    let app = ops::observed(app, observe);
    let state = match options.feed_max_subscribers {
        Some(max) => state.map_api(|a| a.map_feed(|f| f.with_max_subscribers(max))),
        None => state,
    };
    let state = match &options.llm {
        Some(llm) => state.map_api(|a| a.with_llm(Some(llm.clone()))),
        None => state,
    };
    proxy::with_client_ip(app, &options.trusted_proxies).with_state(state)
}
