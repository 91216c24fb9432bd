//! `GET /api/v1/nodes` (admins): every peer the sync server has seen, with
//! how far behind the hub it likely is.
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
//! **Outbox.** What the peer holds that the hub does not, as far as the hub
//! can see (`crate::store::peers`): `outbox_entries`, the entries its heads
//! (and acknowledgements) said it held beyond the hub's log when its last
//! session ended (`null`: never measured — its sessions presented no
//! heads); `outbox_since_ms`, since when its sessions have been ending so
//! (the start of the first such session in a row; `null` when the last
//! one ended with the hub holding all it has); `outbox_age_ms`, now minus
//! that (`null` likewise). A session that catches up empties it; it stays
//! when sessions break off early, or when the hub refuses entries
//! (quarantine: the node keeps them in its outbox too, as no hub
//! acknowledges them). It is a lower bound: the hub knows nothing of what
//! a node wrote after its last session, nor how long entries waited
//! before it.
//!
//! **Version.** Not reported: nothing a peer sends says its software
//! version. The sync `Hello` has no room for it — a receiver refuses a
//! `Hello` with another number of fields, or another protocol version
//! (`docs/protocol.md` 2.3, 2.5) — so carrying one needs a new protocol
//! version that every peer of a deployment speaks first.

use axum::extract::State;
use axum::Json;
use sentinel_http::api::Caller;
use sentinel_http::openapi::{BadRequest, Forbidden, Unauthorized, Unavailable};
use sentinel_http::params::{Pairs, Params};
use sentinel_http::Problem;
use sentinel_schema::access::Action;
use serde::Serialize;
use utoipa::ToSchema;

use super::state::ApiState;
use crate::store::peers::PeerStatus;

/// A peer the sync server has seen.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodeStatus {
    /// Its certificate key, 64 hex digits.
    pub author: String,
    /// Its certificate's common name.
    pub name: String,
    /// Its certificate's role (`node`, `hub`, `sensor`).
    pub role: String,
    pub last_seen_ms: i64,
    pub last_addr: String,
    pub sessions: i64,
    /// How its last session closed.
    pub last_close: String,
    /// The seq of its head in the hub's log (0: none).
    pub hub_seq: i64,
    /// Entries that arrived after it last synced (an estimate).
    #[schema(minimum = 0)]
    pub entries_behind: i64,
    /// Entries it held that the hub lacked when its last session ended;
    /// `null`: never measured.
    #[schema(minimum = 0)]
    pub outbox_entries: Option<i64>,
    /// Since when (Unix ms) its sessions have ended with it holding
    /// entries the hub lacks; `null` when the last one did not.
    pub outbox_since_ms: Option<i64>,
    /// Now minus `outbox_since_ms` (a lower bound of its outbox's age);
    /// `null` likewise.
    #[schema(minimum = 0)]
    pub outbox_age_ms: Option<i64>,
}

impl NodeStatus {
    fn of(p: PeerStatus, now_ms: u64) -> NodeStatus {
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        NodeStatus {
            outbox_entries: p.entries_ahead,
            outbox_since_ms: p.ahead_since_ms,
            outbox_age_ms: p
                .ahead_since_ms
                .map(|since| now.saturating_sub(since).max(0)),
            author: p.author.to_hex(),
            name: p.name,
            role: p.role,
            last_seen_ms: p.last_seen_ms,
            last_addr: p.last_addr,
            sessions: p.sessions,
            last_close: p.last_close,
            hub_seq: p.hub_seq,
            entries_behind: p.entries_behind,
        }
    }
}

/// Every peer, newest `last_seen_ms` first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodeList {
    pub items: Vec<NodeStatus>,
}

/// `GET /api/v1/nodes`.
#[utoipa::path(
    get,
    path = "/api/v1/nodes",
    tag = "nodes",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every peer the sync server has seen: its lag, and \
            its outbox as the hub sees it (no software version: the sync protocol carries \
            none).", body = NodeList),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub(super) async fn nodes(
    State(state): State<ApiState>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<NodeList>, Problem> {
    caller.may(Action::ReadNodes, None)?;
    Params::from_query(query, &[])?;
    let now = state.now_ms();
    let items = state
        .store
        .peer_statuses()
        .await?
        .into_iter()
        .map(|p| NodeStatus::of(p, now))
        .collect();
    Ok(Json(NodeList { items }))
}
