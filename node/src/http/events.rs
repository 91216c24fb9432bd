//! The node's own event routes: reporting (`POST /api/v1/events`),
//! editing (`PATCH /api/v1/events/{id}`) and notes
//! (`POST /api/v1/events/{id}/notes`). Search, detail and export are the
//! routes both servers share (`sentinel_http::api::events`); assignment
//! and the workflow are [`super::workflow`].
//!
//! Every change a request makes is one transaction, refused before
//! anything is written when any field is bad; each route that acts on an
//! event checks the caller against the event's facts before the body is
//! read and again under the lock that commits ([`super::access`]).
//!
//! Never does: serve what both servers serve (search, detail, export).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand_core::{OsRng, RngCore};
use sentinel_http::api::events::event_id;
use sentinel_http::api::Caller;
use sentinel_http::body::{json_object, text};
use sentinel_http::openapi::{
    Conflict, Forbidden, JsonBodyRefusals, NotFound, Unauthorized, Unavailable,
};
use sentinel_http::Problem;
use sentinel_schema::access::Action;
use sentinel_schema::{EventEdit, EventId, NewEvent};
use serde_json::{json, Value};

use super::access::{checked, precheck};
use super::params::{opt_location, opt_severity, opt_text};
use super::problems::{event_problem, node_problem};
use super::schemas::{Ack, Edited, EventChanges, NewEvent as NewEventBody, NewNote, EXAMPLE_EVENT};
use super::state::ApiState;

/// How far in the future a report's `reported_ms` may be (clock skew).
const MAX_FUTURE_MS: u64 = 5 * 60 * 1000;

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
    let now = state.now_ms();
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
    let ack = state
        .write_node(move |node| Ok(node.report(&new, event, Some(&name), now)?))
        .await?;
    Ok((
        StatusCode::CREATED,
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
    let now = state.now_ms();
    let acks = state
        .write_node(move |node| {
            checked(node, &caller, event, Action::Edit)?;
            node.edit_many(event, &edits, Some(&caller.name), now)
                .map_err(|e| node_problem(e, "body"))
        })
        .await?;
    Ok(Json(json!({ "entries": acks })))
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
    let now = state.now_ms();
    let ack = state
        .write_node(move |node| {
            checked(node, &caller, event, Action::Note)?;
            let note = EventEdit::Note {
                text,
                actor: Some(caller.name.clone()),
                at_ms: now,
            };
            node.edit(event, &note, Some(&caller.name), now)
                .map_err(|e| node_problem(e, "text"))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!(ack))).into_response())
}
