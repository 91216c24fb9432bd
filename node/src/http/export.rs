//! `GET /api/v1/export.geojson`: the events a search finds, as one GeoJSON
//! FeatureCollection — the hub's export, with the list's filters.
//!
//! The parameters are those of `GET /api/v1/events` but the page (`limit`,
//! `after`): `bbox`, `near`+`radius`, `q`, `status`, `category`,
//! `min_severity`, `max_severity`, `from`, `to`, with the same limits for
//! the public (`bbox` widened to whole grid cells; no `near`, `radius` or
//! `q`). Newest report first. An export holds at most [`MAX_EXPORT`]
//! events; more is refused (413): narrow the filters or page through
//! `/api/v1/events`. It is read under one turn of the node's lock, so it is
//! one consistent snapshot.
//!
//! Each feature has the event id as `id`, a `Point` geometry and, as on
//! the hub, the properties `title`, `description`, `category`, `severity`,
//! `status`, `assignee`, `reported_ms`, `created_by` (the reporter),
//! `n_notes`, `n_media` and `conflicts`. For the public, `assignee`,
//! `created_by`, `n_notes` and `conflicts` are left out and the point is
//! snapped to the 0.01° grid, exactly as its event list.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use rusqlite::types::Value as SqlValue;
use sentinel_schema::access::{Action, Scope};
use sentinel_schema::EventId;
use serde_json::{json, Map, Value};

use sentinel_http::openapi::{BadRequest, Forbidden, TooLarge, Unauthorized, Unavailable};

use super::events::{event_query, snap, EVENTS_PARAMS};
use super::openapi::{ExportQuery, FeatureCollection};
use super::params::{Pairs, Params};
use super::{with_node, ApiState, Caller, Problem};
use crate::node::Node;
use crate::store::query::{EventSummary, MAX_LIMIT};

/// The most events one export holds (as the hub's).
pub const MAX_EXPORT: usize = 100_000;
/// The `Content-Type` of a GeoJSON answer (RFC 7946).
pub const GEOJSON: &str = "application/geo+json";

/// `GET /api/v1/export.geojson`.
#[utoipa::path(
    get,
    path = "/api/v1/export.geojson",
    tag = "events",
    params(ExportQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every event the filters find, newest report first.",
            body = FeatureCollection, content_type = "application/geo+json"),
        BadRequest, Unauthorized, Forbidden, TooLarge, Unavailable,
    )
)]
pub(super) async fn export(
    State(state): State<ApiState>,
    caller: Caller,
    query: Pairs,
) -> Result<Response, Problem> {
    let scope = caller.may(Action::Export, None)?;
    let known: Vec<&str> = EVENTS_PARAMS
        .iter()
        .copied()
        .filter(|p| !matches!(*p, "limit" | "after"))
        .collect();
    let p = Params::from_query(query, &known)?;
    let redacted = scope == Scope::Redacted;
    let mut q = event_query(&p, redacted)?;
    q.limit = MAX_LIMIT;
    let features = with_node(&state, move |node| {
        let mut features = Vec::new();
        loop {
            let page = node.store().search(&q)?;
            if features.len() + page.items.len() > MAX_EXPORT {
                return Err(Problem::too_large(format!(
                    "more than {MAX_EXPORT} events match; narrow the filters or page through /api/v1/events"
                )));
            }
            let extra = extras(node, &page.items, redacted)?;
            features.extend(page.items.iter().map(|s| feature(s, &extra, redacted)));
            match page.next {
                Some(next) => {
                    q.after = Some(
                        next.parse()
                            .map_err(|_| Problem::unavailable(&"a page cursor did not parse"))?,
                    )
                }
                None => return Ok(features),
            }
        }
    })
    .await?;
    let body = json!({ "type": "FeatureCollection", "features": features });
    Ok(([(header::CONTENT_TYPE, GEOJSON)], body.to_string()).into_response())
}

/// What a search result lacks for a feature.
struct Extra {
    description: String,
    conflicts: Value,
    created_by: Option<String>,
}

/// The description, conflicts and reporter of each event of a page (one
/// query for the first two; the public gets no reporter).
fn extras(
    node: &Node,
    items: &[EventSummary],
    redacted: bool,
) -> Result<HashMap<String, Extra>, Problem> {
    let mut ids = Vec::with_capacity(items.len());
    for s in items {
        let id: EventId =
            s.id.parse()
                .map_err(|_| Problem::unavailable(&"an event id in the view did not parse"))?;
        ids.push(id);
    }
    let mut extra = HashMap::with_capacity(items.len());
    if ids.is_empty() {
        return Ok(extra);
    }
    let placeholders = vec!["?"; ids.len()].join(", ");
    let conn = node.store().conn();
    let mut stmt = conn
        .prepare(&format!(
            "SELECT event, description, conflicts FROM events WHERE event IN ({placeholders})"
        ))
        .map_err(|e| Problem::unavailable(&e))?;
    let args = ids.iter().map(|id| SqlValue::Blob(id.0.to_vec()));
    let mut rows = stmt
        .query(rusqlite::params_from_iter(args))
        .map_err(|e| Problem::unavailable(&e))?;
    while let Some(r) = rows.next().map_err(|e| Problem::unavailable(&e))? {
        let bytes: Vec<u8> = r.get(0).map_err(|e| Problem::unavailable(&e))?;
        let Ok(id) = <[u8; EventId::LEN]>::try_from(bytes.as_slice()) else {
            continue;
        };
        let event = EventId(id);
        let conflicts: String = r.get(2).map_err(|e| Problem::unavailable(&e))?;
        extra.insert(
            event.to_hex(),
            Extra {
                description: r.get(1).map_err(|e| Problem::unavailable(&e))?,
                conflicts: serde_json::from_str(&conflicts).unwrap_or_else(|_| json!({})),
                created_by: if redacted {
                    None
                } else {
                    node.reporter(event)?
                },
            },
        );
    }
    Ok(extra)
}

/// One event as a GeoJSON feature; redacted for the public.
fn feature(s: &EventSummary, extra: &HashMap<String, Extra>, redacted: bool) -> Value {
    let e = extra.get(&s.id);
    let mut props = Map::new();
    props.insert("title".into(), json!(s.title));
    props.insert(
        "description".into(),
        json!(e.map_or("", |e| e.description.as_str())),
    );
    props.insert("category".into(), json!(s.category));
    props.insert("severity".into(), json!(s.severity));
    props.insert("status".into(), json!(s.status));
    props.insert("reported_ms".into(), json!(s.reported_ms));
    props.insert("n_media".into(), json!(s.n_media));
    let (lon, lat) = if redacted {
        (snap(s.lon), snap(s.lat))
    } else {
        props.insert("assignee".into(), json!(s.assignee));
        props.insert(
            "created_by".into(),
            json!(e.and_then(|e| e.created_by.clone())),
        );
        props.insert("n_notes".into(), json!(s.n_notes));
        props.insert(
            "conflicts".into(),
            e.map_or_else(|| json!({}), |e| e.conflicts.clone()),
        );
        (s.lon, s.lat)
    };
    json!({
        "type": "Feature",
        "id": s.id,
        "geometry": { "type": "Point", "coordinates": [lon, lat] },
        "properties": props,
    })
}
