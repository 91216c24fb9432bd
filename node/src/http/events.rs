//! Events: search, read, report, edit, notes, assignment and the workflow.
//!
//! Every route that acts on one event looks up its facts — the reporter
//! (the actor of the entry that created it, [`Node::reporter`]) and the
//! assignee — and asks the matrix with them, once before the body is read
//! and again under the lock that commits the change, so an assignment that
//! moved in between is seen.
//!
//! The public (a `redacted` scope) reads events without assignee, notes,
//! reporter, conflicts, media or history, the location snapped to the
//! 0.01° grid of `access::redact`. Because a filter on the exact location
//! would give back what the redaction hides, the public's `bbox` is
//! widened to whole grid cells, and `near`/`radius` and `q` (which also
//! searches notes) are refused for the public.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand_core::{OsRng, RngCore};
use rusqlite::OptionalExtension;
use sentinel_http::body::{json_object, text};
use sentinel_http::openapi::{
    Assign, BadRequest, Conflict, Forbidden, JsonBodyRefusals, NotFound, Unauthorized, Unavailable,
};
use sentinel_http::people::check_name;
use sentinel_schema::access::{self, Action, EventFacts, Scope};
use sentinel_schema::limits::MAX_CATEGORY_BYTES;
use sentinel_schema::{EventEdit, EventId, NewEvent, Status};
use serde_json::{json, Value};

use super::openapi::{
    Ack, Edited, Event, EventChanges, EventPage, EventsQuery, NewEvent as NewEventBody, NewNote,
    EXAMPLE_ASSIGNED, EXAMPLE_CLOSED, EXAMPLE_EVENT, EXAMPLE_IN_PROGRESS, EXAMPLE_RESOLVED,
};
use super::params::{no_body, opt_location, opt_severity, opt_text, point, Pairs, Params};
use super::{event_problem, now_ms, with_node, write_node, ApiState, Caller, Problem, CREATED};
use crate::node::{EventDetail, Node, NodeError};
use crate::spatial::BBox;
use crate::store::query::{Cursor, EventQuery, EventSummary, MAX_LIMIT};

/// The page size when `limit` is not given.
const DEFAULT_LIMIT: usize = 50;
/// The widest `radius`, metres: half the earth's circumference.
const MAX_RADIUS_M: f64 = 20_100_000.0;
/// How far in the future a report's `reported_ms` may be (clock skew).
const MAX_FUTURE_MS: u64 = 5 * 60 * 1000;

pub(super) const EVENTS_PARAMS: &[&str] = &[
    "bbox",
    "near",
    "radius",
    "q",
    "status",
    "category",
    "min_severity",
    "max_severity",
    "from",
    "to",
    "limit",
    "after",
];

/// What the rules need to know about one event.
pub(crate) struct Facts {
    pub reporter: Option<String>,
    pub assignee: Option<String>,
    pub status: Option<Status>,
}

impl Facts {
    fn of(&self) -> EventFacts<'_> {
        EventFacts {
            reporter: self.reporter.as_deref(),
            assignee: self.assignee.as_deref(),
        }
    }
}

/// The facts of `event`; 404 when this node does not know it.
pub(crate) fn facts(node: &Node, event: EventId) -> Result<Facts, Problem> {
    let row: Option<(Option<String>, String)> = node
        .store()
        .conn()
        .query_row(
            "SELECT assignee, status FROM events WHERE event = ?1",
            [event.0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(|e| Problem::unavailable(&e))?;
    let (assignee, status) = row.ok_or_else(|| Problem::not_found(format!("no event {event}")))?;
    Ok(Facts {
        reporter: node.reporter(event)?,
        assignee,
        status: status.parse().ok(),
    })
}

/// The matrix's verdict for `caller` doing `action` on `event`.
pub(crate) fn checked(
    node: &Node,
    caller: &Caller,
    event: EventId,
    action: Action,
) -> Result<Facts, Problem> {
    let facts = facts(node, event)?;
    caller.may(action, Some(facts.of()))?;
    Ok(facts)
}

/// Checks `caller` against `event` under the lock, before a body is read.
pub(crate) async fn precheck(
    state: &ApiState,
    caller: &Caller,
    event: EventId,
    action: Action,
) -> Result<(), Problem> {
    caller.may(action, None)?;
    let caller = caller.clone();
    with_node(state, move |node| {
        checked(node, &caller, event, action).map(|_| ())
    })
    .await
}

/// An event id from the path: 32 hex digits.
pub(crate) fn event_id(id: &str) -> Result<EventId, Problem> {
    id.parse::<EventId>()
        .map_err(|_| Problem::bad_param("id", "an event id is 32 hex digits"))
}

/// A refused node operation, naming `field` when an edit was refused.
fn node_problem(e: NodeError, field: &str) -> Problem {
    match e {
        NodeError::Event(e) => event_problem(e, field),
        other => other.into(),
    }
}

pub(super) fn snap(x: f64) -> f64 {
    (x / access::COARSE_DEGREES).round() * access::COARSE_DEGREES
}

/// Widens a public box to whole redaction cells (cell edges sit half a
/// grid step off the grid points the redacted locations snap to), so the
/// answer says no more than the redacted locations do.
fn widen_to_cells(b: &BBox) -> Result<BBox, Problem> {
    let step = access::COARSE_DEGREES;
    let down = |x: f64| ((x / step - 0.5).floor() + 0.5) * step;
    let up = |x: f64| ((x / step - 0.5).ceil() + 0.5) * step;
    BBox::new(
        down(b.min_lon()).max(-180.0),
        down(b.min_lat()).max(-90.0),
        up(b.max_lon()).min(180.0),
        up(b.max_lat()).min(90.0),
    )
    .map_err(|e| Problem::bad_param("bbox", e.to_string()))
}

fn severity_param(p: &Params, name: &str) -> Result<Option<u8>, Problem> {
    let v = p.parsed::<u8>(name, "an integer 1..=5")?;
    if v.is_some_and(|s| !(1..=5).contains(&s)) {
        return Err(Problem::bad_param(name, format!("`{name}` must be 1..=5")));
    }
    Ok(v)
}

/// A time parameter: Unix ms, 0 to `i64::MAX` (the store's integers are
/// signed: a larger one would wrap and match nothing).
fn unix_ms(p: &Params, name: &str) -> Result<Option<u64>, Problem> {
    let ms = p.parsed::<u64>(name, "Unix milliseconds (an integer >= 0)")?;
    if ms.is_some_and(|ms| i64::try_from(ms).is_err()) {
        return Err(Problem::bad_param(
            name,
            format!("`{name}` must be Unix milliseconds at most {}", i64::MAX),
        ));
    }
    Ok(ms)
}

/// The search the query asks for; `public` applies the public's limits.
pub(super) fn event_query(p: &Params, public: bool) -> Result<EventQuery, Problem> {
    let bbox = match p.numbers("bbox", 4, "minLon,minLat,maxLon,maxLat")? {
        Some(b) => {
            let bbox = BBox::new(b[0], b[1], b[2], b[3])
                .map_err(|e| Problem::bad_param("bbox", e.to_string()))?;
            Some(if public { widen_to_cells(&bbox)? } else { bbox })
        }
        None => None,
    };
    let near = p.numbers("near", 2, "lon,lat")?;
    let radius = p.parsed::<f64>("radius", "a distance in metres")?;
    let near = match (near, radius) {
        (Some(_), _) | (_, Some(_)) if public => {
            return Err(Problem::bad_param(
                if p.get("near").is_some() {
                    "near"
                } else {
                    "radius"
                },
                "the public searches by `bbox`, not by distance",
            ));
        }
        (Some(n), Some(r)) => {
            if !r.is_finite() || r <= 0.0 || r > MAX_RADIUS_M {
                return Err(Problem::bad_param(
                    "radius",
                    format!("`radius` must be metres in (0, {MAX_RADIUS_M}]"),
                ));
            }
            Some((point("near", n[0], n[1], true)?, r))
        }
        (Some(_), None) => {
            return Err(Problem::bad_param(
                "radius",
                "`near` needs `radius` (metres)",
            ))
        }
        (None, Some(_)) => return Err(Problem::bad_param("near", "`radius` needs `near=lon,lat`")),
        (None, None) => None,
    };
    let text = match p.get("q") {
        Some(_) if public => {
            return Err(Problem::bad_param(
                "q",
                "the public cannot search by text (it would search notes)",
            ))
        }
        Some(q) if q.trim().is_empty() || q.len() > 1000 => {
            return Err(Problem::bad_param(
                "q",
                "`q` must be 1 to 1000 bytes of search words",
            ))
        }
        q => q.map(str::to_owned),
    };
    let status = match p.get("status") {
        Some(s) => s
            .split(',')
            .map(|s| {
                s.trim().parse::<Status>().map_err(|_| {
                    Problem::bad_param(
                        "status",
                        "`status` must be a comma-separated list of reported, assigned, in_progress, resolved, closed",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let category = match p.get("category") {
        Some(c) if c.is_empty() || c.len() > MAX_CATEGORY_BYTES => {
            return Err(Problem::bad_param(
                "category",
                format!("`category` must be 1 to {MAX_CATEGORY_BYTES} bytes"),
            ))
        }
        c => c.map(str::to_owned),
    };
    let (min, max) = (
        severity_param(p, "min_severity")?,
        severity_param(p, "max_severity")?,
    );
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo > hi {
            return Err(Problem::bad_param(
                "min_severity",
                format!("`min_severity` ({lo}) is above `max_severity` ({hi})"),
            ));
        }
    }
    let from = unix_ms(p, "from")?;
    let to = unix_ms(p, "to")?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(Problem::bad_param(
                "from",
                format!("`from` ({f}) is after `to` ({t})"),
            ));
        }
    }
    let limit = p
        .parsed::<usize>("limit", &format!("an integer 1..={MAX_LIMIT}"))?
        .unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::bad_param(
            "limit",
            format!("`limit` is {limit}, allowed 1..={MAX_LIMIT}"),
        ));
    }
    let after = p.parsed::<Cursor>("after", "the `next` of a previous page")?;
    Ok(EventQuery {
        text,
        status,
        category,
        min_severity: min,
        max_severity: max,
        reported_from: from,
        reported_to: to,
        bbox,
        near,
        limit,
        after,
    })
}

/// One search result as JSON; redacted for the public.
fn summary_json(s: &EventSummary, redacted: bool) -> Value {
    let mut v = json!({
        "id": s.id,
        "title": s.title,
        "category": s.category,
        "severity": s.severity,
        "status": s.status,
        "assignee": s.assignee,
        "location": { "lon": s.lon, "lat": s.lat },
        "reported_ms": s.reported_ms,
        "n_notes": s.n_notes,
        "n_media": s.n_media,
        "has_conflicts": s.has_conflicts,
    });
    if let Some(d) = s.distance_m {
        v["distance_m"] = json!(d);
    }
    if redacted {
        if let Some(obj) = v.as_object_mut() {
            for field in ["assignee", "n_notes", "has_conflicts", "distance_m"] {
                obj.remove(field);
            }
        }
        v["location"] = json!({ "lon": snap(s.lon), "lat": snap(s.lat) });
    }
    v
}

/// `GET /api/v1/events`.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(EventsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of events, newest report first.",
            body = EventPage),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub(super) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<Value>, Problem> {
    let scope = caller.may(Action::ReadEvents, None)?;
    let p = Params::from_query(query, EVENTS_PARAMS)?;
    let redacted = scope == Scope::Redacted;
    let q = event_query(&p, redacted)?;
    let page = with_node(&state, move |node| Ok(node.store().search(&q)?)).await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|s| summary_json(s, redacted))
        .collect();
    Ok(Json(json!({ "items": items, "next": page.next })))
}

/// One event as `GET /api/v1/events/{id}` shows it, without conflicts and
/// history; `redacted`: as the public sees it.
pub(super) fn event_json(d: &EventDetail, reporter: Option<String>, redacted: bool) -> Value {
    if redacted {
        let v = access::redact(&d.view);
        return json!({
            "id": d.id.to_hex(),
            "title": v.title,
            "description": v.description,
            "category": v.category,
            "severity": v.severity,
            "status": v.status.as_str(),
            "location": { "lon": v.location.lon(), "lat": v.location.lat() },
            "reported_ms": v.reported_ms,
            "n_media": d.media.len(),
        });
    }
    let v = &d.view;
    json!({
        "id": d.id.to_hex(),
        "title": v.title,
        "description": v.description,
        "category": v.category,
        "severity": v.severity,
        "status": v.status.as_str(),
        "assignee": v.assignee,
        "location": { "lon": v.location.lon(), "lat": v.location.lat() },
        "reported_ms": v.reported_ms,
        "reported_by": reporter,
        "notes": v.notes.iter().map(|n| json!({"text": n.text, "actor": n.actor, "at_ms": n.at_ms})).collect::<Vec<_>>(),
        "media": d.media,
    })
}

/// `GET /api/v1/events/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/events/{id}",
    tag = "events",
    params(("id" = String, Path, description = "The event, 32 hex digits.",
        pattern = "^[0-9a-fA-F]{32}$", example = json!(EXAMPLE_EVENT))),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The event; its conflicts and history for those who \
            may read them, redacted for the public.", body = Event),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable,
    )
)]
pub(super) async fn detail(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Pairs,
) -> Result<Json<Value>, Problem> {
    let scope = caller.may(Action::ReadEvents, None)?;
    Params::from_query(query, &[])?;
    let event = event_id(&id)?;
    let (d, reporter) = with_node(&state, move |node| {
        Ok((node.show(event)?, node.reporter(event)?))
    })
    .await?;
    let mut body = event_json(&d, reporter, scope == Scope::Redacted);
    if scope == Scope::Redacted {
        return Ok(Json(body));
    }
    if caller.may(Action::ReadHistory, None).is_ok() {
        body["conflicts"] = json!(d.view.conflicts);
        body["history"] = json!(d.history);
    }
    Ok(Json(body))
}

const REPORT_FIELDS: &[&str] = &[
    "title",
    "description",
    "category",
    "severity",
    "location",
    "reported_ms",
];

/// `POST /api/v1/events`: the entry's actor is the caller.
#[utoipa::path(
    post,
    path = "/api/v1/events",
    tag = "events",
    request_body = NewEventBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The event is reported: the entry this node signed.",
            body = Ack,
            headers(("Location" = String, description = "/api/v1/events/{id} of the new event"))),
        JsonBodyRefusals, Unauthorized, Forbidden, Unavailable,
    )
)]
pub(super) async fn report(
    State(state): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    caller.may(Action::Report, None)?;
    let map = json_object(&headers, body, REPORT_FIELDS).await?;
    let now = now_ms();
    let reported_ms = match map.get("reported_ms") {
        None => now,
        Some(v) => {
            let ms = v.as_u64().ok_or_else(|| {
                Problem::bad_field("reported_ms", "must be Unix milliseconds (an integer >= 0)")
            })?;
            if ms > now + MAX_FUTURE_MS {
                return Err(Problem::bad_field("reported_ms", "is in the future"));
            }
            ms
        }
    };
    let new = NewEvent {
        title: text(&map, "title")?.to_owned(),
        description: opt_text(&map, "description")?.unwrap_or("").to_owned(),
        category: text(&map, "category")?.to_owned(),
        severity: opt_severity(&map, "severity")?
            .ok_or_else(|| Problem::bad_field("severity", "is required"))?,
        location: opt_location(&map, "location")?
            .ok_or_else(|| Problem::bad_field("location", "is required"))?,
        reported_ms,
    };
    new.validate().map_err(|e| event_problem(e, "body"))?;
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut id);
    let event = EventId(id);
    let name = caller.name.clone();
    let ack = write_node(&state, move |node| {
        Ok(node.report(&new, event, Some(&name), now_ms())?)
    })
    .await?;
    Ok((
        CREATED,
        [(header::LOCATION, format!("/api/v1/events/{}", ack.event))],
        Json(json!(ack)),
    )
        .into_response())
}

const EDIT_FIELDS: &[&str] = &["title", "description", "category", "severity", "location"];

/// `PATCH /api/v1/events/{id}`: every field given, in one commit.
#[utoipa::path(
    patch,
    path = "/api/v1/events/{id}",
    tag = "events",
    params(("id" = String, Path, description = "The event, 32 hex digits.",
        pattern = "^[0-9a-fA-F]{32}$", example = json!(EXAMPLE_EVENT))),
    request_body = EventChanges,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The event is edited: one entry per field changed.",
            body = Edited),
        JsonBodyRefusals, Unauthorized, Forbidden, NotFound, Conflict, Unavailable,
    )
)]
pub(super) async fn edit(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, Problem> {
    let event = event_id(&id)?;
    precheck(&state, &caller, event, Action::Edit).await?;
    let map = json_object(&headers, body, EDIT_FIELDS).await?;
    let mut edits = Vec::new();
    if let Some(t) = opt_text(&map, "title")? {
        edits.push(EventEdit::Title(t.to_owned()));
    }
    if let Some(d) = opt_text(&map, "description")? {
        edits.push(EventEdit::Description(d.to_owned()));
    }
    if let Some(c) = opt_text(&map, "category")? {
        edits.push(EventEdit::Category(c.to_owned()));
    }
    if let Some(s) = opt_severity(&map, "severity")? {
        edits.push(EventEdit::Severity(s));
    }
    if let Some(l) = opt_location(&map, "location")? {
        edits.push(EventEdit::Location(l));
    }
    if edits.is_empty() {
        return Err(Problem::bad_field(
            "body",
            format!("nothing to change: give one of {}", EDIT_FIELDS.join(", ")),
        ));
    }
    let acks = write_node(&state, move |node| {
        checked(node, &caller, event, Action::Edit)?;
        node.edit_many(event, &edits, Some(&caller.name), now_ms())
            .map_err(|e| node_problem(e, "body"))
    })
    .await?;
    Ok(Json(json!({ "entries": acks })))
}

/// One edit of one event, checked against `action`, as its own commit.
async fn one_edit(
    state: &ApiState,
    caller: Caller,
    event: EventId,
    action: Action,
    field: &'static str,
    edit: impl FnOnce(&Facts, &str) -> Result<EventEdit, Problem> + Send + 'static,
) -> Result<Json<Value>, Problem> {
    let ack = write_node(state, move |node| {
        let facts = checked(node, &caller, event, action)?;
        let edit = edit(&facts, &caller.name)?;
        node.edit(event, &edit, Some(&caller.name), now_ms())
            .map_err(|e| node_problem(e, field))
    })
    .await?;
    Ok(Json(json!(ack)))
}

/// `POST /api/v1/events/{id}/notes` with `{"text"}`.
#[utoipa::path(
    post,
    path = "/api/v1/events/{id}/notes",
    tag = "events",
    params(("id" = String, Path, description = "The event, 32 hex digits.",
        pattern = "^[0-9a-fA-F]{32}$", example = json!(EXAMPLE_EVENT))),
    request_body = NewNote,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The note is added.", body = Ack),
        JsonBodyRefusals, Unauthorized, Forbidden, NotFound, Conflict, Unavailable,
    )
)]
pub(super) async fn note(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let event = event_id(&id)?;
    precheck(&state, &caller, event, Action::Note).await?;
    let map = json_object(&headers, body, &["text"]).await?;
    let text = text(&map, "text")?.to_owned();
    if text.trim().is_empty() {
        return Err(Problem::bad_field("text", "must not be empty or blank"));
    }
    let answer = one_edit(
        &state,
        caller,
        event,
        Action::Note,
        "text",
        move |_, name| {
            Ok(EventEdit::Note {
                text,
                actor: Some(name.to_owned()),
                at_ms: now_ms(),
            })
        },
    )
    .await?;
    Ok((CREATED, answer).into_response())
}

/// `POST /api/v1/events/{id}/assign` with `{"assignee"}`.
#[utoipa::path(
    post,
    path = "/api/v1/events/{id}/assign",
    tag = "events",
    params(("id" = String, Path, description = "The event, 32 hex digits.",
        pattern = "^[0-9a-fA-F]{32}$", example = json!(EXAMPLE_EVENT))),
    request_body = Assign,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The event is assigned (409: unchanged).", body = Ack),
        JsonBodyRefusals, Unauthorized, Forbidden, NotFound, Conflict, Unavailable,
    )
)]
pub(super) async fn assign(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, Problem> {
    let event = event_id(&id)?;
    precheck(&state, &caller, event, Action::Assign).await?;
    let map = json_object(&headers, body, &["assignee"]).await?;
    let assignee = text(&map, "assignee")?.to_owned();
    check_name(&assignee).map_err(|e| Problem::bad_field("assignee", e.to_string()))?;
    one_edit(
        &state,
        caller,
        event,
        Action::Assign,
        "assignee",
        move |_, _| Ok(EventEdit::Assign(assignee)),
    )
    .await
}

/// A step of the workflow.
#[derive(Debug, Clone, Copy)]
enum Step {
    Accept,
    Start,
    Resolve,
    Close,
    Reopen,
}

impl Step {
    fn action(self) -> Action {
        match self {
            Step::Accept | Step::Start | Step::Resolve => Action::Work,
            Step::Close | Step::Reopen => Action::CloseReopen,
        }
    }

    /// The statuses the step starts from.
    fn from(self) -> &'static [Status] {
        match self {
            Step::Accept | Step::Start => &[Status::Assigned],
            Step::Resolve => &[Status::InProgress],
            Step::Close => &[Status::Resolved],
            Step::Reopen => &[Status::Resolved, Status::Closed],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Step::Accept => "accept",
            Step::Start => "start",
            Step::Resolve => "resolve",
            Step::Close => "close",
            Step::Reopen => "reopen",
        }
    }

    /// The edit: accepting records a note (there is no `accepted` status:
    /// the assignee acknowledges, and `start` moves the event on).
    fn edit(self, actor: &str) -> EventEdit {
        match self {
            Step::Accept => EventEdit::Note {
                text: "accepted the assignment".into(),
                actor: Some(actor.to_owned()),
                at_ms: now_ms(),
            },
            Step::Start | Step::Reopen => EventEdit::Status(Status::InProgress),
            Step::Resolve => EventEdit::Status(Status::Resolved),
            Step::Close => EventEdit::Status(Status::Closed),
        }
    }
}

async fn work(
    state: ApiState,
    caller: Caller,
    id: String,
    headers: HeaderMap,
    body: Body,
    step: Step,
) -> Result<Json<Value>, Problem> {
    let event = event_id(&id)?;
    precheck(&state, &caller, event, step.action()).await?;
    no_body(&headers, body).await?;
    one_edit(
        &state,
        caller,
        event,
        step.action(),
        "status",
        move |facts, name| match facts.status {
            Some(s) if step.from().contains(&s) => Ok(step.edit(name)),
            s => Err(Problem::conflict(
                "status",
                format!(
                    "cannot {} an event that is {}",
                    step.name(),
                    s.map_or("in an unknown state", Status::as_str)
                ),
            )),
        },
    )
    .await
}

macro_rules! step_route {
    ($name:ident, $step:expr, $path:literal, $example:expr, $done:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(
                    post,
                    path = $path,
                    tag = "events",
                    params(("id" = String, Path, description = "The event, 32 hex digits.",
                        pattern = "^[0-9a-fA-F]{32}$", example = json!($example))),
                    security(("bearer" = [])),
                    responses(
                        (status = 200, description = $done, body = Ack),
                        JsonBodyRefusals, Unauthorized, Forbidden, NotFound, Conflict, Unavailable,
                    )
                )]
        pub(super) async fn $name(
            State(state): State<ApiState>,
            caller: Caller,
            Path(id): Path<String>,
            headers: HeaderMap,
            body: Body,
        ) -> Result<Json<Value>, Problem> {
            work(state, caller, id, headers, body, $step).await
        }
    };
}

step_route!(
    accept,
    Step::Accept,
    "/api/v1/events/{id}/accept",
    EXAMPLE_ASSIGNED,
    "The assignee acknowledged (a note); 409 unless the event is assigned.",
    "`POST /api/v1/events/{id}/accept` (assigned: a note)."
);
step_route!(
    start,
    Step::Start,
    "/api/v1/events/{id}/start",
    EXAMPLE_ASSIGNED,
    "The event is in progress; 409 unless it was assigned.",
    "`POST /api/v1/events/{id}/start` (assigned → in_progress)."
);
step_route!(
    resolve,
    Step::Resolve,
    "/api/v1/events/{id}/resolve",
    EXAMPLE_IN_PROGRESS,
    "The event is resolved; 409 unless it was in progress.",
    "`POST /api/v1/events/{id}/resolve` (in_progress → resolved)."
);
step_route!(
    close,
    Step::Close,
    "/api/v1/events/{id}/close",
    EXAMPLE_RESOLVED,
    "The event is closed; 409 unless it was resolved.",
    "`POST /api/v1/events/{id}/close` (resolved → closed)."
);
step_route!(
    reopen,
    Step::Reopen,
    "/api/v1/events/{id}/reopen",
    EXAMPLE_CLOSED,
    "The event is in progress again; 409 unless it was resolved or closed.",
    "`POST /api/v1/events/{id}/reopen` (resolved or closed → in_progress)."
);
