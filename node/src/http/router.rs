//! The node API's router with its operations around it, and serving it.
//!
//! [`router_with`] puts every `/api/v1` route behind a per-client rate
//! limit (`429` with `Retry-After`; `/healthz`, `/readyz` and `/metrics`
//! are never limited), allows the configured CORS origins only (none by
//! default: no CORS headers at all), and times and logs every request —
//! the hub's operations, from `sentinel_http::ops` and
//! `sentinel_http::limit`. A path no route has is a problem+json `404`.
//!
//! Never does: define a route (the lists are [`super::openapi`]'s).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{HeaderValue, Method};
use axum::{Extension, Router};
use sentinel_http::api::Document;
use sentinel_http::limit::{self, Limits, LoginLimits, RateLimiter, DEFAULT_MAX_CLIENTS};
use sentinel_http::ops;
use sentinel_http::proxy::{self, TrustedProxies};
use sentinel_http::serve::ServeOptions;

use super::openapi::{api_routes, ops_routes};
use super::state::ApiState;

/// The default address of `serve --http`: this device only.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8081";

/// The sustained requests per second of one client, by default (as the hub).
pub const DEFAULT_RATE_LIMIT_PER_S: u32 = 10;
/// The burst of one client, by default (as the hub).
pub const DEFAULT_RATE_LIMIT_BURST: u32 = 50;

/// Logins per minute of one client, by default (as the hub).
pub const DEFAULT_LOGIN_RATE_LIMIT_PER_MIN: u32 = 10;
/// Logins one client may send at once, by default (as the hub).
pub const DEFAULT_LOGIN_RATE_LIMIT_BURST: u32 = 10;

/// The methods the API answers, for CORS preflights.
const API_METHODS: [Method; 3] = [Method::GET, Method::POST, Method::PATCH];

/// How the API is served, beyond its routes (`sentinel-node serve` flags).
#[derive(Debug, Clone, Default)]
pub struct ApiOptions {
    /// Per-client token bucket for `/api/v1` routes; off when either is 0.
    pub rate_limit: Limits,
    /// Browser origins allowed by CORS (from
    /// `sentinel_http::ops::parse_origin`); empty: no CORS headers at all.
    pub cors_origins: Vec<HeaderValue>,
    /// The accept loop's connection cap and timeouts ([`serve`]).
    pub serve: ServeOptions,
    /// The stricter limit of `POST /api/v1/login`, per client; off when
    /// either is 0.
    pub login_limit: LoginLimits,
    /// Reverse proxies whose forwarded client addresses are believed
    /// (`sentinel_http::proxy`); none: the peer is the client.
    pub trusted_proxies: TrustedProxies,
    /// Live-feed streams open at once; `None` leaves the feed's own bound.
    pub feed_max_subscribers: Option<usize>,
    /// Uploads taken at once ([`super::media`]); `None`: the default.
    pub max_uploads: Option<usize>,
    /// The officer's web pages at `/` (`sentinel_ui`); `None`: API only.
    pub ui: Option<sentinel_ui::UiConfig>,
    /// The analysis summary's language model; `None`: local summaries.
    pub llm: Option<sentinel_http::llm::Llm>,
}

/// Every route of the API, with no rate limit and no CORS
/// ([`ApiOptions::default`]); the CLI uses [`router_with`].
pub fn router(state: ApiState) -> Router {
    router_with(state, &ApiOptions::default())
}

/// Every route of the API with `options`: `/api/v1` behind the rate
/// limit, `POST /api/v1/login` behind the login limit too; every route
/// with CORS (if configured), request metrics and one log line per
/// request, each knowing the client behind a trusted proxy.
pub fn router_with(state: ApiState, options: &ApiOptions) -> Router {
    let (api, _) = api_routes().split_for_parts();
    let (operations, _) = ops_routes().split_for_parts();
    // `GET /api/v1/openapi.json` serves this document (it describes the
    // routes, so it reaches them as an extension, not in their state).
    let api = api.layer(Extension(Document::new(super::openapi::document)));
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
    let mut state = state;
    if let Some(max) = options.feed_max_subscribers {
        state = state.map_api(|a| a.map_feed(|f| f.with_max_subscribers(max)));
    }
    if let Some(llm) = &options.llm {
        state = state.map_api(|a| a.with_llm(Some(llm.clone())));
    }
    if let Some(max) = options.max_uploads {
        state = state.with_max_uploads(max);
    }
    proxy::with_client_ip(app, &options.trusted_proxies).with_state(state)
}

/// Serves the API on `listener` until the future is dropped, with the
/// client's address known to the rate limit and the request log, within
/// the connection cap and timeouts of `options.serve` (the accept loop
/// both servers share, `sentinel_http::serve`); deletes expired and
/// revoked tokens hourly meanwhile, and first the spool files of uploads a
/// crash interrupted.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    options: ApiOptions,
) -> std::io::Result<()> {
    let leftovers = state.clone();
    let _ = tokio::task::spawn_blocking(move || leftovers.clear_spool()).await;
    let purging = tokio::spawn(purge_tokens(state.clone()));
    let app = router_with(state, &options);
    sentinel_http::serve::serve(listener, None, app, options.serve, std::future::pending()).await;
    purging.abort();
    Ok(())
}

/// Deletes expired and revoked tokens every
/// `sentinel_http::people::TOKEN_PURGE_EVERY` while the API is served.
async fn purge_tokens(state: ApiState) {
    let mut every = tokio::time::interval(sentinel_http::people::TOKEN_PURGE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let now = state.now_ms();
        match state
            .with_node(move |node| Ok(node.store().purge_tokens(now)?))
            .await
        {
            Ok(n) => tracing::debug!("deleted {n} expired or revoked tokens"),
            Err(p) => tracing::warn!("deleting expired tokens failed: {}", p.detail),
        }
    }
}

/// Binds `addr` for the API.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
