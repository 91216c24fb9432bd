//! The hub's admin API: JSON over HTTP (axum).
//!
//! **Signed in.** Every `/api/v1` route but `login` wants a bearer token
//! (`POST /api/v1/login`) and checks the caller's role against the matrix in
//! `sentinel_schema::access` (`docs/security.md` 3.3): the public gets
//! redacted events, only admins read the timeline, node status and
//! accounts. The API is plain HTTP: the binary binds it to localhost unless
//! configured otherwise (`sentinel-hub serve --http ADDR`).
//!
//! # Routes
//!
//! | Route | What |
//! |---|---|
//! | `GET /healthz` | `200 ok` while the process runs |
//! | `GET /readyz` | `200` when the database answers `SELECT 1`, else `503` |
//! | `GET /metrics` | Prometheus text format, unauthenticated: keep it off the public network |
//! | `POST /api/v1/login`, `POST /api/v1/logout` | bearer tokens |
//! | `GET/POST /api/v1/users`, `POST …/users/{name}/role`, `…/disable` | accounts (admins) |
//! | `GET /api/v1/timeline` | every entry of the log, in HLC order |
//! | `GET /api/v1/events` | the events view, newest report first |
//! | `GET /api/v1/events/{id}` | one event, its history and conflicts |
//! | `POST /api/v1/events/{id}/assign`, `…/close`, `…/reopen` | admin actions, as entries the hub signs (see `actions.rs`) |
//! | `GET /api/v1/feed` | Server-Sent Events: each event as the projector changes it (see [`Feed`]) |
//! | `GET /api/v1/export.geojson` | every event as a GeoJSON FeatureCollection |
//! | `GET /api/v1/nodes` | every peer the sync server has seen, and its lag |
//! | `POST /api/v1/sensors/entries` | a sensor pushes signed readings; no token (see `sensors.rs`) |
//! | `GET /api/v1/sensors/readings`, `GET /api/v1/sensors` | the readings time series, the sensors seen |
//! | `GET /api/v1/openapi.json` | this API's OpenAPI 3.1 document, no token needed (see [`openapi`]) |
//!
//! ## Timeline
//!
//! Ordered by HLC (`hlc_ms`, `hlc_counter`), then author, then seq (a
//! total order). Filters: `author` (64 hex digits), `event` (32 hex
//! digits), `kind` (`event_change`, `media_attached`, `sensor_reading`,
//! `role_grant`, `revocation`, `hub_checkpoint`), `from` (inclusive) and
//! `to` (exclusive) in Unix ms on the HLC's wall time. `verification` is
//! always `"verified"`: the hub stores an entry in `entries` only after its
//! signature and chain checks passed (failures go to `quarantine`, which
//! this API does not show). `author_name` is the common name of the
//! author's stored certificate, `null` if the hub holds none.
//!
//! ## Events
//!
//! Filters: `bbox=minLon,minLat,maxLon,maxLat` (`minLon > maxLon` is a box
//! across the antimeridian; answered as [`crate::PgStore::ids_in_bbox`]
//! does, in slices of geodesic-edged boxes), `near=lon,lat&radius=m`
//! (`ST_DWithin` on geography, metres), `q` (full text,
//! `websearch_to_tsquery('english', q)` on the `search` tsvector), `status`,
//! `min_severity`, `max_severity`, `category` (exact), `from` (inclusive)
//! / `to` (exclusive) on `reported_ms`. Ordered by `reported_ms` DESC, then
//! event id DESC.
//!
//! ## Nodes
//!
//! One item per certificate key that completed a handshake with the sync
//! server, newest `last_seen_ms` first (then author); not paged, takes no
//! parameters. Updated when a session ends (a node that stays connected
//! shows its previous session until it disconnects): `author` (hex),
//! `name` and `role` from its certificate, `last_seen_ms` (Unix ms at
//! session end), `last_addr`, `sessions` (count), `last_close` (close code
//! and reason, or the error), `hub_seq` (the seq of that author's head in
//! the hub's log, `0` if the hub holds none of its entries) and
//! `entries_behind`: entries the hub holds now minus those it held when
//! that session ended, floored at 0 — entries that arrived after the node
//! last synced, which it has likely not received. It is an estimate: it
//! does not see entries that node lacked at the end of a session that
//! failed before catching up (see `last_close`), and counts ones it may
//! have had anyway from another node.
//!
//! ## Pagination
//!
//! Keyset: `limit` (1..=500) and `after`, the opaque `next` of the previous
//! page (`null` on the last page). A page never repeats or skips an item
//! that existed when the walk began. Items arriving during a walk show up
//! if they sort after the cursor; the timeline sorts by HLC, not arrival,
//! so an entry that arrives late with an HLC before the cursor is not seen
//! by that walk (start again, or filter with `from`).
//!
//! ## Operations
//!
//! [`router_with`] puts every `/api/v1` route behind a per-client rate
//! limit (`429` with `Retry-After`; `/healthz`, `/readyz` and `/metrics`
//! are never limited), allows the configured CORS origins only, and times
//! and logs every request (`sentinel_http::ops`, `sentinel_http::limit`).
//! `/metrics` shows request latency per method, route template and status
//! class, failed logins, rate-limited requests and the sync server's
//! sessions and entries ([`crate::server`]).
//!
//! ## Errors
//!
//! `application/problem+json` (RFC 9457) with `type`, `title`, `status`,
//! `detail` and, for a refused parameter, the extension member `field`
//! naming it. Bad parameters (unknown or repeated ones too) are `400`, an
//! unknown event `404`, a database that does not answer `503`.

mod actions;
mod auth;
mod devices;
mod feed;
mod nodes;
pub mod openapi;
mod sensors;

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use sentinel_schema::{BodyKind, Status};
use serde_json::{json, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use std::sync::Arc;

use sentinel_schema::access::{self, Action, Scope};

use crate::own::OwnChain;
use crate::PgStore;
pub use auth::Caller;
use axum::http::Method;
pub use feed::Feed;
use sentinel_http::limit::{self, Limits, RateLimiter, DEFAULT_MAX_CLIENTS};
use sentinel_http::openapi::{
    BadRequest, Forbidden, NotFound, TooLarge, Unauthorized, Unavailable,
};
use sentinel_http::ops;
use sentinel_http::params::{
    check_lon_lat, cursor_int, decode_cursor, encode_cursor, hex_bytes, Pairs, Params,
};
pub use sentinel_http::{Problem, PROBLEM_JSON};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The largest `limit` of a page.
pub const MAX_LIMIT: i64 = 500;
/// The `limit` of a page when none is given.
pub const DEFAULT_LIMIT: i64 = 100;
/// The most events one GeoJSON export holds; more is refused (413).
pub const MAX_EXPORT: i64 = 100_000;
/// The largest `radius` of `near`, in metres (half the equator, about).
pub const MAX_RADIUS_M: f64 = 20_100_000.0;
/// How long `/readyz` waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What every handler reads: the store, and the hub's own chain for the
/// entries the API writes (role grants); without it those routes answer
/// 503.
#[derive(Clone)]
pub struct ApiState {
    pub store: PgStore,
    pub own: Option<Arc<OwnChain>>,
    /// The live feed (`GET /api/v1/feed`); `None`: that route answers 503.
    pub feed: Option<Feed>,
    /// Sensor pushes (`POST /api/v1/sensors/entries`); `None`: that route
    /// answers 503.
    pub sensors: Option<Arc<crate::sensors::SensorIngest>>,
    /// Test hook (feature `testing`): requests without an Authorization
    /// header act as this person with this role, so tests of what a route
    /// answers need not sign in. Never set outside tests.
    #[cfg(feature = "testing")]
    pub trusted: Option<(String, sentinel_schema::PersonRole)>,
}

impl ApiState {
    pub fn new(store: PgStore, own: Option<Arc<OwnChain>>) -> ApiState {
        ApiState {
            store,
            own,
            feed: None,
            sensors: None,
            #[cfg(feature = "testing")]
            trusted: None,
        }
    }

    /// Test hook: see [`ApiState::trusted`].
    #[cfg(feature = "testing")]
    pub fn trusting(store: PgStore, name: &str, role: sentinel_schema::PersonRole) -> ApiState {
        ApiState {
            trusted: Some((name.to_owned(), role)),
            ..ApiState::new(store, None)
        }
    }
}

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
}

/// The methods the API answers, for CORS preflights.
const API_METHODS: [Method; 2] = [Method::GET, Method::POST];

/// The `/api/v1` routes (behind the rate limit). The router and the OpenAPI
/// document ([`openapi::document`]) are both made from this list: a route
/// is served and documented from its handler's `#[utoipa::path]`.
pub(crate) fn api_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::users, auth::create_user))
        .routes(routes!(auth::set_role))
        .routes(routes!(auth::disable_user))
        .routes(routes!(timeline))
        .routes(routes!(events))
        .routes(routes!(event))
        .routes(routes!(actions::assign))
        .routes(routes!(actions::close))
        .routes(routes!(actions::reopen))
        .routes(routes!(export))
        .routes(routes!(nodes::nodes))
        .routes(routes!(devices::revoke))
        .routes(routes!(sensors::push_entries))
        .routes(routes!(sensors::readings))
        .routes(routes!(sensors::sensors))
        .routes(routes!(feed::feed))
        .routes(routes!(openapi::openapi_json))
}

/// The operations routes, never rate-limited; in the document too.
pub(crate) fn ops_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// Test hook (feature `testing`): the routes alone, without the rate
/// limit, CORS and request metrics, so tests of the route table add nothing
/// to the process's metrics that other tests read.
#[cfg(feature = "testing")]
pub fn bare_router(state: ApiState) -> Router {
    let (api, _) = api_routes().split_for_parts();
    let (operations, _) = ops_routes().split_for_parts();
    operations.merge(api).with_state(state)
}

/// The API's router with `options`: `/api/v1` behind the rate limit; every
/// route with CORS (if configured), request metrics and one log line per
/// request (`sentinel_http::ops`).
pub fn router_with(state: ApiState, options: &ApiOptions) -> Router {
    let (api, _) = api_routes().split_for_parts();
    let (operations, _) = ops_routes().split_for_parts();
    let limiter = RateLimiter::new(options.rate_limit, DEFAULT_MAX_CLIENTS).map(Arc::new);
    let app = operations.merge(limit::limited(api, limiter));
    let app = ops::with_cors(app, &options.cors_origins, &API_METHODS);
    let observe = ops::Observe {
        login_route: Some("/api/v1/login"),
    };
    ops::observed(app, observe).with_state(state)
}

/// Removes what the public may not see from an event (`docs/security.md`):
/// people, notes, conflicts, history; the location snapped to the grid of
/// [`sentinel_schema::access::COARSE_DEGREES`].
fn redact_event(event: &mut Value) {
    if let Some(obj) = event.as_object_mut() {
        for field in [
            "assignee",
            "notes",
            "n_notes",
            "created_by",
            "conflicts",
            "history",
        ] {
            obj.remove(field);
        }
    }
    let snap =
        |v: Option<f64>| v.map(|x| (x / access::COARSE_DEGREES).round() * access::COARSE_DEGREES);
    if let Some(loc) = event.get_mut("location") {
        for axis in ["lon", "lat"] {
            if let Some(x) = snap(loc.get(axis).and_then(Value::as_f64)) {
                loc[axis] = json!(x);
            }
        }
    }
}

fn params(query: Pairs, known: &[&str]) -> Result<Params, Problem> {
    Params::from_query(query, known)
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

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers.", body = String,
            content_type = "text/plain", example = "ready"),
        (status = 503, description = "Not ready: the detail says why.",
            body = Problem, content_type = "application/problem+json"),
    )
)]
async fn readyz(State(ApiState { store, .. }): State<ApiState>) -> Response {
    // The store answers, and every migration this binary knows is applied.
    let check = async {
        let missing = store.missing_migrations().await?;
        if !missing.is_empty() {
            return Err(Problem::not_ready(format!(
                "migrations not applied: {missing:?}"
            )));
        }
        Ok::<(), Problem>(())
    };
    match tokio::time::timeout(READY_TIMEOUT, check).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(p)) => p.into_response(),
        Err(_) => Problem::unavailable(&"readiness check timed out").into_response(),
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

/// A WHERE clause under construction: conditions and their arguments.
#[derive(Default)]
struct Filter {
    conditions: Vec<String>,
    args: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Filter {
    /// Adds an argument, returning its placeholder.
    fn arg(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.args.push(Box::new(value));
        format!("${}", self.args.len())
    }

    fn and(&mut self, condition: String) {
        self.conditions.push(condition);
    }

    fn clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conditions.join(" AND "))
        }
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

fn kind_name(kind: i16) -> &'static str {
    u64::try_from(kind)
        .ok()
        .and_then(|k| BodyKind::from_wire(k).ok())
        .map_or("unknown", BodyKind::as_str)
}

/// The common name of a DER certificate's subject.
fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

const TIMELINE_PARAMS: &[&str] = &["author", "event", "kind", "from", "to", "limit", "after"];

#[utoipa::path(
    get,
    path = "/api/v1/timeline",
    tag = "log",
    params(openapi::TimelineQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the log, in HLC order.",
            body = openapi::TimelinePage),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
async fn timeline(
    State(ApiState { store, .. }): State<ApiState>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<Value>, Problem> {
    caller.may(Action::ReadTimeline, None)?;
    let p = params(query, TIMELINE_PARAMS)?;
    let author = p.hex_id::<32>("author")?;
    let event = p.hex_id::<16>("event")?;
    let kind = p
        .get("kind")
        .map(|k| {
            BodyKind::ALL
                .iter()
                .find(|b| b.as_str() == k)
                .map(|b| *b as i16)
                .ok_or_else(|| {
                    let names: Vec<&str> = BodyKind::ALL.iter().map(|b| b.as_str()).collect();
                    Problem::bad_param(
                        "kind",
                        format!("`kind` must be one of {}", names.join(", ")),
                    )
                })
        })
        .transpose()?;
    let (from, to) = p.range()?;
    let limit = p.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = p
        .get("after")
        .map(|c| {
            let f = decode_cursor(c, 4)?;
            let author = hex_bytes::<32>(&f[2]).ok_or_else(|| {
                Problem::bad_param("after", "`after` is not a cursor this API handed out")
            })?;
            Ok::<_, Problem>((
                cursor_int::<i64>(&f[0])?,
                cursor_int::<i64>(&f[1])?,
                author.to_vec(),
                cursor_int::<i64>(&f[3])?,
            ))
        })
        .transpose()?;

    let mut w = Filter::default();
    if let Some(a) = author {
        let x = w.arg(a.to_vec());
        w.and(format!("e.author = {x}"));
    }
    if let Some(ev) = event {
        let x = w.arg(ev.to_vec());
        w.and(format!("e.event = {x}"));
    }
    if let Some(k) = kind {
        let x = w.arg(k);
        w.and(format!("e.kind = {x}"));
    }
    if let Some(f) = from {
        let x = w.arg(f);
        w.and(format!("e.hlc_ms >= {x}"));
    }
    if let Some(t) = to {
        let x = w.arg(t);
        w.and(format!("e.hlc_ms < {x}"));
    }
    if let Some((ms, counter, author, seq)) = after {
        let (a, b, c, d) = (w.arg(ms), w.arg(counter), w.arg(author), w.arg(seq));
        w.and(format!(
            // The first term lets the (hlc_ms, hlc_counter) index bound the scan.
            "e.hlc_ms >= {a} AND (e.hlc_ms, e.hlc_counter, e.author, e.seq) > ({a}, {b}, {c}, {d})"
        ));
    }
    let lim = w.arg(limit + 1);
    let sql = format!(
        "SELECT e.id, e.author, e.seq, e.kind, e.actor, e.event, e.hlc_ms, e.hlc_counter,
             e.received_ms, c.der
         FROM entries e LEFT JOIN certificates c ON c.author = e.author
         {}
         ORDER BY e.hlc_ms, e.hlc_counter, e.author, e.seq
         LIMIT {lim}",
        w.clause()
    );
    let client = store.client().await?;
    // Prepared once per connection and query shape (the filters a
    // request combines), not planned afresh on every request.
    let statement = client.prepare_cached(&sql).await?;
    let rows = client.query(&statement, &w.refs()).await?;
    let more = rows.len() as i64 > limit;
    let rows = &rows[..rows.len().min(limit as usize)];
    let mut names: HashMap<Vec<u8>, Option<String>> = HashMap::new();
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            let author: Vec<u8> = r.get(1);
            let der: Option<Vec<u8>> = r.get(9);
            let name = names
                .entry(author.clone())
                .or_insert_with(|| der.as_deref().and_then(common_name))
                .clone();
            let mut item = entry_json(r);
            item["author_name"] = json!(name);
            item["event"] = json!(r.get::<_, Option<Vec<u8>>>(5).map(hex::encode));
            item["received_ms"] = json!(r.get::<_, i64>(8));
            item["verification"] = json!("verified");
            item
        })
        .collect();
    let next = match rows.last() {
        Some(r) if more => Some(encode_cursor(&[
            r.get::<_, i64>(6).to_string(),
            r.get::<_, i64>(7).to_string(),
            hex::encode(r.get::<_, Vec<u8>>(1)),
            r.get::<_, i64>(2).to_string(),
        ])),
        _ => None,
    };
    Ok(Json(json!({ "items": items, "next": next })))
}

/// `id, author, seq, kind, actor` (columns 0–4) and the HLC (columns 6–7)
/// of an entry row.
fn entry_json(r: &Row) -> Value {
    json!({
        "id": hex::encode(r.get::<_, Vec<u8>>(0)),
        "author": hex::encode(r.get::<_, Vec<u8>>(1)),
        "seq": r.get::<_, i64>(2),
        "kind": kind_name(r.get(3)),
        "actor": r.get::<_, Option<String>>(4),
        "hlc": { "wall_ms": r.get::<_, i64>(6), "counter": r.get::<_, i64>(7) },
    })
}

/// The columns of an event, as [`event_json`] reads them.
const EVENT_COLUMNS: &str = "e.event_hex, e.title, e.description, e.category, e.severity,
    e.status, e.assignee, e.notes, ST_X(e.geog::geometry), ST_Y(e.geog::geometry),
    e.reported_ms, e.created_by, e.updated_hlc_ms, e.updated_hlc_counter, e.n_notes,
    e.n_media, e.conflicts::text, e.event";

fn event_json(r: &Row) -> Value {
    let conflicts: Value = serde_json::from_str(r.get::<_, &str>(16)).unwrap_or_else(|_| json!({}));
    json!({
        "id": r.get::<_, String>(0),
        "title": r.get::<_, String>(1),
        "description": r.get::<_, String>(2),
        "category": r.get::<_, String>(3),
        "severity": r.get::<_, i16>(4),
        "status": r.get::<_, String>(5),
        "assignee": r.get::<_, Option<String>>(6),
        "notes": r.get::<_, String>(7),
        "location": { "lon": r.get::<_, f64>(8), "lat": r.get::<_, f64>(9) },
        "reported_ms": r.get::<_, i64>(10),
        "created_by": r.get::<_, String>(11),
        "updated_hlc": { "wall_ms": r.get::<_, i64>(12), "counter": r.get::<_, i64>(13) },
        "n_notes": r.get::<_, i32>(14),
        "n_media": r.get::<_, i32>(15),
        "conflicts": conflicts,
    })
}

const EVENTS_PARAMS: &[&str] = &[
    "bbox",
    "near",
    "radius",
    "q",
    "status",
    "min_severity",
    "max_severity",
    "category",
    "from",
    "to",
    "limit",
    "after",
];

/// The widest slice of longitude a `bbox` is cut into (as the store does).
const BBOX_SLICE_DEG: f64 = crate::store::project::BBOX_SLICE_DEG;

/// `[from, to]` cut into at most 360 slices at most `step` wide.
fn slices(from: f64, to: f64, step: f64) -> Vec<(f64, f64)> {
    let width = to - from;
    if width.is_nan() || width < 0.0 {
        return Vec::new();
    }
    let n = ((width / step).ceil() as usize).clamp(1, 360);
    (0..n)
        .map(|i| {
            let lo = from + width * i as f64 / n as f64;
            let hi = if i + 1 == n {
                to
            } else {
                from + width * (i + 1) as f64 / n as f64
            };
            (lo, hi)
        })
        .collect()
}

fn severity(p: &Params, name: &str) -> Result<Option<i16>, Problem> {
    let v = p.parsed::<i16>(name, "an integer 1..=5")?;
    if let Some(s) = v {
        if !(1..=5).contains(&s) {
            return Err(Problem::bad_param(
                name,
                format!("`{name}` is {s}, allowed 1..=5"),
            ));
        }
    }
    Ok(v)
}

#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(openapi::EventsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of events, newest report first.",
            body = openapi::EventPage),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
async fn events(
    State(ApiState { store, .. }): State<ApiState>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<Value>, Problem> {
    let scope = caller.may(Action::ReadEvents, None)?;
    let p = params(query, EVENTS_PARAMS)?;
    if scope == Scope::Redacted {
        // Full text searches notes, and a small radius pins a place: both
        // would reveal what redaction hides.
        for hidden in ["q", "near", "radius"] {
            if p.get(hidden).is_some() {
                return Err(Problem::bad_param(
                    hidden,
                    format!("`{hidden}` is not available to the public role"),
                ));
            }
        }
    }
    let mut w = Filter::default();

    if let Some(b) = p.numbers("bbox", 4, "minLon,minLat,maxLon,maxLat")? {
        let (min_lon, min_lat, max_lon, max_lat) = (b[0], b[1], b[2], b[3]);
        check_lon_lat("bbox", min_lon, min_lat)?;
        check_lon_lat("bbox", max_lon, max_lat)?;
        if min_lat > max_lat {
            return Err(Problem::bad_param(
                "bbox",
                format!("minLat {min_lat} is above maxLat {max_lat}"),
            ));
        }
        let lons = if min_lon <= max_lon {
            slices(min_lon, max_lon, BBOX_SLICE_DEG)
        } else {
            let mut s = slices(min_lon, 180.0, BBOX_SLICE_DEG);
            s.extend(slices(-180.0, max_lon, BBOX_SLICE_DEG));
            s
        };
        let (mut lo, mut bottom, mut hi, mut top) = (vec![], vec![], vec![], vec![]);
        for (s, n) in slices(min_lat, max_lat, 45.0) {
            for (west, east) in &lons {
                lo.push(*west);
                bottom.push(s);
                hi.push(*east);
                top.push(n);
            }
        }
        let (a, b, c, d) = (w.arg(lo), w.arg(bottom), w.arg(hi), w.arg(top));
        w.and(format!(
            "e.event IN (SELECT x.event
                 FROM unnest({a}::float8[], {b}::float8[], {c}::float8[], {d}::float8[])
                     AS s(lo, bottom, hi, top)
                 JOIN events x ON ST_Intersects(x.geog,
                     ST_MakeEnvelope(s.lo, s.bottom, s.hi, s.top, 4326)::geography))"
        ));
    }

    let near = p.numbers("near", 2, "lon,lat")?;
    let radius = p.parsed::<f64>("radius", "a distance in metres")?;
    match (near, radius) {
        (Some(n), Some(r)) => {
            check_lon_lat("near", n[0], n[1])?;
            if !r.is_finite() || r <= 0.0 || r > MAX_RADIUS_M {
                return Err(Problem::bad_param(
                    "radius",
                    format!("`radius` must be metres in (0, {MAX_RADIUS_M}]"),
                ));
            }
            let (x, y, m) = (w.arg(n[0]), w.arg(n[1]), w.arg(r));
            w.and(format!(
                "ST_DWithin(e.geog, ST_SetSRID(ST_MakePoint({x}, {y}), 4326)::geography, {m})"
            ));
        }
        (Some(_), None) => {
            return Err(Problem::bad_param(
                "radius",
                "`near` needs `radius` (metres)",
            ));
        }
        (None, Some(_)) => {
            return Err(Problem::bad_param("near", "`radius` needs `near=lon,lat`"));
        }
        (None, None) => {}
    }

    if let Some(q) = p.get("q") {
        // PostgreSQL text cannot hold NUL: refused here, not a 503 there.
        if q.trim().is_empty() || q.len() > 1000 || q.contains('\0') {
            return Err(Problem::bad_param(
                "q",
                "`q` must be 1 to 1000 characters of search words, without NUL",
            ));
        }
        let x = w.arg(q.to_owned());
        w.and(format!("e.search @@ websearch_to_tsquery('english', {x})"));
    }
    if let Some(s) = p.get("status") {
        let status: Status = s.parse().map_err(|_| {
            Problem::bad_param(
                "status",
                "`status` must be one of reported, assigned, in_progress, resolved, closed",
            )
        })?;
        let x = w.arg(status.as_str().to_owned());
        w.and(format!("e.status = {x}"));
    }
    let (min, max) = (severity(&p, "min_severity")?, severity(&p, "max_severity")?);
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo > hi {
            return Err(Problem::bad_param(
                "min_severity",
                format!("`min_severity` ({lo}) is above `max_severity` ({hi})"),
            ));
        }
    }
    if let Some(lo) = min {
        let x = w.arg(lo);
        w.and(format!("e.severity >= {x}"));
    }
    if let Some(hi) = max {
        let x = w.arg(hi);
        w.and(format!("e.severity <= {x}"));
    }
    if let Some(c) = p.get("category") {
        if c.is_empty() || c.len() > 200 || c.contains('\0') {
            return Err(Problem::bad_param(
                "category",
                "`category` must be 1 to 200 characters, without NUL",
            ));
        }
        let x = w.arg(c.to_owned());
        w.and(format!("e.category = {x}"));
    }
    let (from, to) = p.range()?;
    if let Some(f) = from {
        let x = w.arg(f);
        w.and(format!("e.reported_ms >= {x}"));
    }
    if let Some(t) = to {
        let x = w.arg(t);
        w.and(format!("e.reported_ms < {x}"));
    }
    let limit = p.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    if let Some(c) = p.get("after") {
        let f = decode_cursor(c, 2)?;
        let ms = cursor_int::<i64>(&f[0])?;
        let event = hex_bytes::<16>(&f[1]).ok_or_else(|| {
            Problem::bad_param("after", "`after` is not a cursor this API handed out")
        })?;
        let (a, b) = (w.arg(ms), w.arg(event.to_vec()));
        w.and(format!("(e.reported_ms, e.event) < ({a}, {b})"));
    }
    let lim = w.arg(limit + 1);
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events e {}
         ORDER BY e.reported_ms DESC, e.event DESC LIMIT {lim}",
        w.clause()
    );
    let client = store.client().await?;
    // Prepared once per connection and query shape (the filters a
    // request combines), not planned afresh on every request.
    let statement = client.prepare_cached(&sql).await?;
    let rows = client.query(&statement, &w.refs()).await?;
    let more = rows.len() as i64 > limit;
    let rows = &rows[..rows.len().min(limit as usize)];
    let mut items: Vec<Value> = rows.iter().map(event_json).collect();
    if scope == Scope::Redacted {
        items.iter_mut().for_each(redact_event);
    }
    let next = match rows.last() {
        Some(r) if more => Some(encode_cursor(&[
            r.get::<_, i64>(10).to_string(),
            hex::encode(r.get::<_, Vec<u8>>(17)),
        ])),
        _ => None,
    };
    Ok(Json(json!({ "items": items, "next": next })))
}

#[utoipa::path(
    get,
    path = "/api/v1/events/{id}",
    tag = "events",
    params(("id" = String, Path, description = "The event, 32 hex digits.",
        pattern = "^[0-9a-fA-F]{32}$", example = json!(openapi::EXAMPLE_EVENT))),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The event, with its history (not for the public).",
            body = openapi::Event),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable,
    )
)]
async fn event(
    State(ApiState { store, .. }): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Pairs,
) -> Result<Json<Value>, Problem> {
    let scope = caller.may(Action::ReadEvents, None)?;
    params(query, &[])?;
    let event = hex_bytes::<16>(&id)
        .ok_or_else(|| Problem::bad_param("id", "an event id is 32 hex digits"))?;
    let client = store.client().await?;
    let row = client
        .query_opt(
            &format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.event = $1"),
            &[&event.as_slice()],
        )
        .await?
        .ok_or_else(|| Problem::not_found(format!("no event {id}")))?;
    let history: Vec<Value> = client
        .query(
            "SELECT id, author, seq, kind, actor, event, hlc_ms, hlc_counter
             FROM entries WHERE event = $1
             ORDER BY hlc_ms, hlc_counter, author, seq",
            &[&event.as_slice()],
        )
        .await?
        .iter()
        .map(entry_json)
        .collect();
    let mut body = event_json(&row);
    if scope == Scope::Redacted {
        redact_event(&mut body);
        return Ok(Json(body));
    }
    body["history"] = json!(history);
    Ok(Json(body))
}

#[utoipa::path(
    get,
    path = "/api/v1/export.geojson",
    tag = "events",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every event, newest report first.",
            body = openapi::FeatureCollection, content_type = "application/geo+json"),
        BadRequest, Unauthorized, Forbidden, TooLarge, Unavailable,
    )
)]
async fn export(
    State(ApiState { store, .. }): State<ApiState>,
    caller: Caller,
    query: Pairs,
) -> Result<Response, Problem> {
    let scope = caller.may(Action::Export, None)?;
    params(query, &[])?;
    let client = store.client().await?;
    let n: i64 = client
        .query_one("SELECT count(*) FROM events", &[])
        .await?
        .get(0);
    if n > MAX_EXPORT {
        return Err(Problem::too_large(format!(
            "{n} events, an export holds at most {MAX_EXPORT}; page through /api/v1/events"
        )));
    }
    let row = client
        .query_one(
            "SELECT json_build_object(
                 'type', 'FeatureCollection',
                 'features', COALESCE(json_agg(json_build_object(
                     'type', 'Feature',
                     'id', e.event_hex,
                     'geometry', ST_AsGeoJSON(e.geog)::json,
                     'properties', json_build_object(
                         'title', e.title,
                         'description', e.description,
                         'category', e.category,
                         'severity', e.severity,
                         'status', e.status,
                         'assignee', e.assignee,
                         'reported_ms', e.reported_ms,
                         'created_by', e.created_by,
                         'n_notes', e.n_notes,
                         'n_media', e.n_media,
                         'conflicts', e.conflicts)
                 ) ORDER BY e.reported_ms DESC, e.event DESC), '[]'::json))::text
             FROM (SELECT * FROM events ORDER BY reported_ms DESC, event DESC LIMIT $1) e",
            &[&MAX_EXPORT],
        )
        .await?;
    let mut body: String = row.get(0);
    if scope == Scope::Redacted {
        body = redact_collection(&body)?;
    }
    Ok(([(header::CONTENT_TYPE, "application/geo+json")], body).into_response())
}

/// A GeoJSON FeatureCollection of events as the public sees it.
fn redact_collection(body: &str) -> Result<String, Problem> {
    let mut fc: Value = serde_json::from_str(body).map_err(|e| Problem::unavailable(&e))?;
    if let Some(features) = fc.get_mut("features").and_then(Value::as_array_mut) {
        for f in features {
            if let Some(props) = f.get_mut("properties") {
                redact_event(props);
            }
            if let Some(coords) = f
                .get_mut("geometry")
                .and_then(|g| g.get_mut("coordinates"))
                .and_then(Value::as_array_mut)
            {
                for c in coords.iter_mut() {
                    if let Some(x) = c.as_f64() {
                        *c = json!((x / access::COARSE_DEGREES).round() * access::COARSE_DEGREES);
                    }
                }
            }
        }
    }
    Ok(fc.to_string())
}

impl From<crate::StoreError> for Problem {
    fn from(e: crate::StoreError) -> Problem {
        Problem::unavailable(&e)
    }
}
