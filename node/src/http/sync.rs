//! `GET /api/v1/sync`: the links — the last sync session with each peer
//! and hub (`crate::store::links`), the peers `serve --peer` configured,
//! whether a round is running, and the outbox in two numbers; and
//! `POST /api/v1/sync`: "sync now", one round with every configured peer,
//! in the background (`crate::dial`). Both for officers and admins
//! (`Action::Sync` in the matrix, `docs/security.md` 3.3).
//!
//! Never does: sync itself (the dialer does, and records the links), or
//! choose whom to dial (only `serve`'s configuration does: a caller names
//! no address, so the API cannot be made to dial anywhere).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use sentinel_http::api::Caller;
use sentinel_http::openapi::{
    BadRequest, Conflict, Forbidden, JsonBodyRefusals, Unauthorized, Unavailable,
};
use sentinel_http::params::{Pairs, Params};
use sentinel_http::Problem;
use sentinel_schema::access::Action;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::params::no_body;
use super::state::ApiState;
use crate::dial::DialError;

/// The last sync session with one peer or hub, as this node saw it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Link {
    /// The peer's key, 64 hex digits; `null` for an address dialled but
    /// never reached.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub peer: Option<String>,
    /// The name in the peer's certificate.
    pub name: Option<String>,
    /// The role in the peer's certificate.
    #[schema(pattern = "^(node|hub|sensor)$")]
    pub role: Option<String>,
    /// The address dialled (as configured), or the one the peer came from.
    pub address: String,
    /// `dialled`: this node called; `accepted`: the peer called.
    #[schema(pattern = "^(dialled|accepted)$")]
    pub direction: String,
    /// Unix ms.
    #[schema(minimum = 0)]
    pub last_attempt_ms: i64,
    /// The last session that caught up, Unix ms; `null` if none did.
    #[schema(minimum = 0)]
    pub last_success_ms: Option<i64>,
    /// Why the last attempt failed; `null` if it did not.
    pub last_error: Option<String>,
    /// Entries the peer acknowledged in the last session.
    #[schema(minimum = 0)]
    pub sent: i64,
    /// Entries received in the last session.
    #[schema(minimum = 0)]
    pub received: i64,
}

/// This node's entries no hub has acknowledged.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OutboxCount {
    #[schema(minimum = 0)]
    pub entries: i64,
    /// The oldest one's time (Unix ms); `null` when there is none.
    #[schema(minimum = 0)]
    pub oldest_ms: Option<i64>,
}

/// What background sync is doing with one configured peer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PeerLink {
    /// The peer as configured, `HOST:PORT`.
    pub address: String,
    /// `connecting`, `syncing` (in a session, not caught up yet), `live`
    /// (caught up; new entries flow both ways as they are written),
    /// `waiting` (until `next_try_ms`), or `off`.
    #[schema(pattern = "^(connecting|syncing|live|waiting|off)$")]
    pub state: String,
    /// The peer's key, once a handshake proved it.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub peer: Option<String>,
    /// The name in the peer's certificate.
    pub name: Option<String>,
    /// When the state last changed, Unix ms.
    #[schema(minimum = 0)]
    pub updated_ms: i64,
    /// The last time a session caught up, Unix ms.
    #[schema(minimum = 0)]
    pub last_success_ms: Option<i64>,
    /// Why the last attempt or session failed; `null` once one succeeds.
    pub last_error: Option<String>,
    /// When the next attempt starts, Unix ms (`waiting` only).
    #[schema(minimum = 0)]
    pub next_try_ms: Option<i64>,
    /// Attempts that failed in a row.
    #[schema(minimum = 0)]
    pub failures: i64,
    /// Attempts since `serve` started.
    #[schema(minimum = 0)]
    pub attempts: i64,
    /// Entries the peer acknowledged, and entries received, in the
    /// current or last session.
    #[schema(minimum = 0)]
    pub sent: i64,
    #[schema(minimum = 0)]
    pub received: i64,
}

/// The links and "sync now"'s state.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SyncState {
    /// The most recently attempted first.
    pub links: Vec<Link>,
    /// The peers background sync and "sync now" dial (`serve --peer`),
    /// `HOST:PORT`.
    pub configured: Vec<String>,
    /// Whether background sync keeps the configured peers in sync.
    pub background: bool,
    /// Background sync's link with each configured peer, in the order
    /// configured (empty when it is off).
    pub peers: Vec<PeerLink>,
    /// Whether a round is running (background sync off).
    pub running: bool,
    pub outbox: OutboxCount,
}

/// A round started.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SyncStarted {
    /// The peers it dials, in turn.
    pub started: Vec<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/sync",
    tag = "sync",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The last session with each peer and hub, the peers \
            configured, whether a round runs, and the outbox.", body = SyncState),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub(super) async fn links(
    State(state): State<ApiState>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<Value>, Problem> {
    caller.may(Action::Sync, None)?;
    Params::from_query(query, &[])?;
    let (configured, running) = state.dialer().map_or((Vec::new(), false), |d| {
        (d.configured().to_vec(), d.running())
    });
    let background = state.dialer().and_then(|d| d.background());
    state
        .with_node(move |node| {
            let store = node.store();
            let links = store.links()?;
            let (entries, oldest_ms) = store.outbox_summary()?;
            Ok(Json(json!({
                "links": links,
                "configured": configured,
                "background": background.is_some(),
                "peers": background.unwrap_or_default(),
                "running": running,
                "outbox": {"entries": entries, "oldest_ms": oldest_ms},
            })))
        })
        .await
}

#[utoipa::path(
    post,
    path = "/api/v1/sync",
    tag = "sync",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "A round with every configured peer started \
            (with background sync on: every link waiting to retry tries now); \
            `GET /api/v1/sync` shows its results.", body = SyncStarted),
        JsonBodyRefusals, Unauthorized, Forbidden, Conflict, Unavailable,
    )
)]
pub(super) async fn sync_now(
    State(state): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.may(Action::Sync, None)?;
    no_body(&headers, body).await?;
    let started = match state.dialer() {
        Some(dialer) => dialer.start(),
        None => Err(DialError::NoPeers),
    };
    match started {
        Ok(peers) => Ok((StatusCode::ACCEPTED, Json(json!({ "started": peers })))),
        Err(e @ DialError::NoPeers) => Err(Problem::conflict("peer", e.to_string())),
        Err(e @ DialError::Running) => Err(Problem::conflict("running", e.to_string())),
    }
}
