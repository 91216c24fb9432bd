//! `GET /api/v1/timeline` (admins): every entry of the log, in HLC order.
//!
//! Ordered by HLC (`hlc_ms`, `hlc_counter`), then author, then seq (a
//! total order). Filters: `author` (64 hex digits), `event` (32 hex
//! digits), `kind` (`event_change`, `media_attached`, `sensor_reading`,
//! `role_grant`, `revocation`, `hub_checkpoint`, `redaction`), `from` (inclusive) and
//! `to` (exclusive) in Unix ms on the HLC's wall time; `order` (`asc`,
//! the default, or `desc`: newest first, as the admin's page shows it);
//! `limit` (1..=500) and `after` page it (a cursor continues in the order
//! of the walk that handed it out). `verification` is always `"verified"`: the hub
//! stores an entry in its log only after its signature and chain checks
//! passed (failures go to quarantine, which this API does not show).
//! `author_name` is the common name of the author's stored certificate,
//! `null` if the hub holds none.
//!
//! The timeline sorts by HLC, not arrival, so an entry that arrives late
//! with an HLC before a walk's cursor is not seen by that walk (start
//! again, or filter with `from`).

use std::collections::HashMap;

use axum::extract::State;
use axum::Json;
use sentinel_http::api::json::Hlc;
use sentinel_http::api::Caller;
use sentinel_http::openapi::{
    entry_kind_schema, names_schema, BadRequest, Forbidden, Unauthorized, Unavailable,
};
use sentinel_http::params::{cursor_int, decode_cursor, encode_cursor, hex_bytes, Pairs, Params};
use sentinel_http::Problem;
use sentinel_schema::access::Action;
use sentinel_schema::{AuthorId, BodyKind, EventId};
use serde::Serialize;
use utoipa::openapi::schema::ObjectBuilder;
use utoipa::{IntoParams, ToSchema};

use super::backend::common_name;
use super::state::ApiState;
use crate::store::query::{TimelineCursor, TimelineFilter, TimelineRow};

/// The largest `limit` of a page.
pub const MAX_LIMIT: i64 = 500;
/// The `limit` of a page when none is given.
pub const DEFAULT_LIMIT: i64 = 100;

const TIMELINE_PARAMS: &[&str] = &[
    "author", "event", "kind", "from", "to", "order", "limit", "after",
];

fn kind_schema() -> ObjectBuilder {
    names_schema(BodyKind::ALL.iter().map(|k| k.as_str()))
}

fn order_schema() -> ObjectBuilder {
    names_schema(["asc", "desc"])
}

fn verified_schema() -> ObjectBuilder {
    names_schema(["verified", "revoked"])
}

/// The query of `GET /api/v1/timeline`. Any other parameter, or one given
/// twice, is refused (400).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct TimelineQuery {
    /// Only entries of this author (a key, 64 hex digits).
    #[param(pattern = "^[0-9a-fA-F]{64}$")]
    pub author: Option<String>,
    /// Only entries about this event (32 hex digits).
    #[param(pattern = "^[0-9a-fA-F]{32}$")]
    pub event: Option<String>,
    /// Only entries of this kind.
    #[param(schema_with = kind_schema)]
    pub kind: Option<String>,
    /// From this HLC wall time (Unix ms), inclusive.
    #[param(minimum = 0)]
    pub from: Option<i64>,
    /// Up to this HLC wall time (Unix ms), exclusive; not before `from`.
    #[param(minimum = 0)]
    pub to: Option<i64>,
    /// `asc` (oldest first, the default) or `desc` (newest first).
    #[param(schema_with = order_schema)]
    pub order: Option<String>,
    /// Items per page.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next` of the previous page (opaque).
    pub after: Option<String>,
}

/// An entry of the timeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEntry {
    /// The entry's id (its hash), 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub id: String,
    /// The author's key, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub author: String,
    /// The common name of the author's stored certificate, if the hub
    /// holds one.
    pub author_name: Option<String>,
    #[schema(minimum = 1)]
    pub seq: u64,
    #[schema(schema_with = entry_kind_schema)]
    pub kind: String,
    /// The person the author acted for, if any.
    pub actor: Option<String>,
    /// The event the entry is about, 32 hex digits, if any.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub event: Option<String>,
    pub hlc: Hlc,
    /// When the hub stored it, Unix ms.
    pub received_ms: i64,
    /// `verified` (the hub stores only entries that verified), or
    /// `revoked`: a revocation learned after it arrived took it away (its
    /// author's entries past the last valid seq count nowhere; the log
    /// keeps them as evidence).
    #[schema(schema_with = verified_schema)]
    pub verification: &'static str,
}

/// A page of the timeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelinePage {
    pub items: Vec<TimelineEntry>,
    /// The `after` of the next page; `null` on the last page.
    pub next: Option<String>,
}

fn kind_param(p: &Params) -> Result<Option<BodyKind>, Problem> {
    p.get("kind")
        .map(|k| {
            BodyKind::ALL
                .iter()
                .find(|b| b.as_str() == k)
                .copied()
                .ok_or_else(|| {
                    let names: Vec<&str> = BodyKind::ALL.iter().map(|b| b.as_str()).collect();
                    Problem::bad_param(
                        "kind",
                        format!("`kind` must be one of {}", names.join(", ")),
                    )
                })
        })
        .transpose()
}

/// `order`: whether the walk is newest first.
fn newest_first(p: &Params) -> Result<bool, Problem> {
    match p.get("order") {
        None | Some("asc") => Ok(false),
        Some("desc") => Ok(true),
        Some(_) => Err(Problem::bad_param(
            "order",
            "`order` must be `asc` or `desc`",
        )),
    }
}

fn cursor(text: &str) -> Result<TimelineCursor, Problem> {
    let f = decode_cursor(text, 4)?;
    let author = hex_bytes::<32>(&f[2]).ok_or_else(|| {
        Problem::bad_param("after", "`after` is not a cursor this API handed out")
    })?;
    Ok(TimelineCursor {
        hlc_ms: cursor_int::<i64>(&f[0])?,
        hlc_counter: cursor_int::<i64>(&f[1])?,
        author: AuthorId(author),
        seq: cursor_int::<i64>(&f[3])?,
    })
}

fn cursor_text(c: &TimelineCursor) -> String {
    encode_cursor(&[
        c.hlc_ms.to_string(),
        c.hlc_counter.to_string(),
        c.author.to_hex(),
        c.seq.to_string(),
    ])
}

fn entry(r: &TimelineRow, author_name: Option<String>) -> TimelineEntry {
    TimelineEntry {
        id: r.id.to_hex(),
        author: r.author.to_hex(),
        author_name,
        seq: r.seq,
        kind: r.kind.map_or("unknown", |k| k.as_str()).to_owned(),
        actor: r.actor.clone(),
        event: r.event.map(|e| e.to_hex()),
        hlc: r.hlc.into(),
        received_ms: r.received_ms,
        verification: if r.revoked { "revoked" } else { "verified" },
    }
}

/// `GET /api/v1/timeline`.
#[utoipa::path(
    get,
    path = "/api/v1/timeline",
    tag = "log",
    params(TimelineQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the log, in HLC order.", body = TimelinePage),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub(super) async fn timeline(
    State(state): State<ApiState>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<TimelinePage>, Problem> {
    caller.may(Action::ReadTimeline, None)?;
    let p = Params::from_query(query, TIMELINE_PARAMS)?;
    let author = p.hex_id::<32>("author")?.map(AuthorId);
    let event = p.hex_id::<16>("event")?.map(EventId);
    let kind = kind_param(&p)?;
    let (from, to) = p.range()?;
    let filter = TimelineFilter {
        author,
        event,
        kind,
        from,
        to,
        newest_first: newest_first(&p)?,
    };
    let limit = p.limit(DEFAULT_LIMIT, MAX_LIMIT)?.unsigned_abs() as usize;
    let after = p.get("after").map(cursor).transpose()?;
    let mut rows = state.store.timeline(&filter, after, limit + 1).await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    // One certificate parse per author of the page.
    let mut names: HashMap<AuthorId, Option<String>> = HashMap::new();
    let items = rows
        .iter()
        .map(|r| {
            let name = names
                .entry(r.author)
                .or_insert_with(|| r.certificate_der.as_deref().and_then(common_name))
                .clone();
            entry(r, name)
        })
        .collect();
    let next = match rows.last() {
        Some(last) if more => Some(cursor_text(&last.cursor())),
        _ => None,
    };
    Ok(Json(TimelinePage { items, next }))
}
