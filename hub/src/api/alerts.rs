//! `GET /api/v1/alerts` (admins): what an operator must act on, from the
//! evidence the hub's store keeps (`crate::store::alerts`).
//!
//! `{"forks": [...], "quarantine": [...], "breaches": [...]}`, each list
//! newest first and at most `limit` long (1..=500, default 100; the only
//! parameter):
//!
//! - `forks`: two different entries of one author at one seq (invariant
//!   2) — `author`, `author_name` (its certificate's common name, if the
//!   hub holds one), `seq`, `held` (the entry the log keeps at that seq;
//!   `null` when counted past the evidence quota), `other` (the rival
//!   entry), `detected_ms` (when the hub found it), `count` (1, or how
//!   many forks a summary row counts, `seq`/`other`/`detected_ms` being
//!   the last one's) and `kept` (whether the rival's bytes are kept as
//!   evidence).
//! - `quarantine`: entries that failed a check (invariant 4), per author
//!   and reason code — `author`, `author_name`, `reason_code`
//!   (`docs/protocol.md` 2.6), `count` (`kept` with their bytes plus
//!   `summarized` past the quota), `newest_ms` (the newest one's arrival)
//!   and `reason` (the newest one's reason in words). `gap` entries wait
//!   for the entries before them and leave when those arrive.
//! - `breaches`: entries quarantined as `contradicts_checkpoint` (a hub
//!   checkpoint attests another entry at their position) — `author`,
//!   `author_name`, `seq`, `id`, `reason`, `received_ms`. The hub checks
//!   no checkpoints in its own sessions today (nodes do, and keep what
//!   they find: `sentinel-node audit verify`), so this list is empty
//!   today; it is here so the page's shape does not change when the hub
//!   checks them.
//!
//! Never does: SQL, or change what it reports (acting on a fork or a
//! quarantined entry is a revocation: `devices.rs`).

use axum::extract::State;
use axum::Json;
use sentinel_http::api::Caller;
use sentinel_http::openapi::{BadRequest, Forbidden, Unauthorized, Unavailable};
use sentinel_http::params::{Pairs, Params};
use sentinel_http::Problem;
use sentinel_schema::access::Action;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::backend::common_name;
use super::state::ApiState;
use crate::store::alerts::{BreachAlert, ForkAlert, QuarantineAlert};

/// The largest `limit`.
pub const MAX_LIMIT: i64 = 500;
/// The `limit` when none is given.
pub const DEFAULT_LIMIT: i64 = 100;

/// The query of `GET /api/v1/alerts`. Any other parameter, or one given
/// twice, is refused (400).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AlertsQuery {
    /// Most items in each list.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

fn name(der: &Option<Vec<u8>>) -> Option<String> {
    der.as_deref().and_then(common_name)
}

/// Two entries of one author at one seq.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Fork {
    /// The author's key, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub author: String,
    /// The common name of the author's certificate, if the hub holds one.
    pub author_name: Option<String>,
    #[schema(minimum = 1)]
    pub seq: u64,
    /// The entry the log keeps at `seq`, 64 hex digits; `null` when the
    /// fork was counted past the evidence quota.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub held: Option<String>,
    /// The rival entry at `seq` (the last one, when `count` > 1).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub other: String,
    /// When the hub found it (the last one, when `count` > 1), Unix ms.
    pub detected_ms: u64,
    /// Forks this item stands for: 1, or how many were counted past the
    /// evidence quota.
    #[schema(minimum = 1)]
    pub count: u64,
    /// Whether the rival entry's bytes are kept as evidence.
    pub kept: bool,
}

impl From<ForkAlert> for Fork {
    fn from(f: ForkAlert) -> Fork {
        Fork {
            author: f.author.to_hex(),
            author_name: name(&f.certificate_der),
            seq: f.seq,
            held: f.held.map(|h| h.to_hex()),
            other: f.other.to_hex(),
            detected_ms: f.detected_ms,
            count: f.count,
            kept: f.kept,
        }
    }
}

/// Quarantined entries of one author for one reason.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Quarantined {
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub author: String,
    pub author_name: Option<String>,
    /// The stable reason code (`docs/protocol.md` 2.6), e.g.
    /// `bad_signature`, `gap`, `revoked`.
    pub reason_code: String,
    /// `kept` + `summarized`.
    #[schema(minimum = 1)]
    pub count: u64,
    /// Entries kept with their bytes.
    pub kept: u64,
    /// Entries counted past the evidence quota, without their bytes.
    pub summarized: u64,
    /// When the newest one arrived, Unix ms.
    pub newest_ms: u64,
    /// The newest one's reason in words.
    pub reason: String,
}

impl From<QuarantineAlert> for Quarantined {
    fn from(q: QuarantineAlert) -> Quarantined {
        Quarantined {
            author: q.author.to_hex(),
            author_name: name(&q.certificate_der),
            reason_code: q.reason_code,
            count: q.kept + q.summarized,
            kept: q.kept,
            summarized: q.summarized,
            newest_ms: q.newest_ms,
            reason: q.reason,
        }
    }
}

/// An entry that contradicts a hub checkpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Breach {
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub author: String,
    pub author_name: Option<String>,
    #[schema(minimum = 1)]
    pub seq: u64,
    /// The entry, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub id: String,
    pub reason: String,
    /// When it arrived, Unix ms.
    pub received_ms: u64,
}

impl From<BreachAlert> for Breach {
    fn from(b: BreachAlert) -> Breach {
        Breach {
            author: b.author.to_hex(),
            author_name: name(&b.certificate_der),
            seq: b.seq,
            id: b.id.to_hex(),
            reason: b.reason,
            received_ms: b.received_ms,
        }
    }
}

/// What an operator must act on, each list newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertList {
    pub forks: Vec<Fork>,
    pub quarantine: Vec<Quarantined>,
    /// Entries quarantined as `contradicts_checkpoint` (empty while the
    /// hub checks no checkpoints in its sessions).
    pub breaches: Vec<Breach>,
}

/// `GET /api/v1/alerts`.
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    tag = "nodes",
    params(AlertsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Forks, quarantine by author and reason, and \
            checkpoint breaches, each newest first and at most `limit` long.",
            body = AlertList),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub(super) async fn alerts(
    State(state): State<ApiState>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<AlertList>, Problem> {
    caller.may(Action::ReadNodes, None)?;
    let p = Params::from_query(query, &["limit"])?;
    let limit = p.limit(DEFAULT_LIMIT, MAX_LIMIT)?.unsigned_abs() as usize;
    let a = state.store.alerts(limit).await?;
    Ok(Json(AlertList {
        forks: a.forks.into_iter().map(Fork::from).collect(),
        quarantine: a.quarantine.into_iter().map(Quarantined::from).collect(),
        breaches: a.breaches.into_iter().map(Breach::from).collect(),
    }))
}
