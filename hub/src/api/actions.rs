//! Admin actions on events from the hub: `POST /api/v1/events/{id}/assign`
//! (`{"assignee"}`), `…/close` and `…/reopen`.
//!
//! Each is an Automerge change to the event's document, made by the hub
//! (its key is the change's actor and the entry's author) with the admin
//! as the entry's `actor`, appended to the hub's own chain. It reaches the
//! officers' nodes through sync like any entry, and merges with whatever
//! they changed meanwhile. The document is rebuilt from every change of the
//! event in the log, so the edit builds on all the hub holds, projected or
//! not. Each answers `sentinel_http::api::json::ActionResult` (the shape
//! the node's actions answer too).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use sentinel_http::api::events::event_id;
use sentinel_http::api::json::{ActionResult, Assign};
use sentinel_http::api::Caller;
use sentinel_http::body::no_body;
use sentinel_http::openapi::{
    Conflict, Forbidden, JsonBodyRefusals, NotFound, Unauthorized, Unavailable, EXAMPLE_EVENT,
};
use sentinel_http::Problem;
use sentinel_schema::access::Action;
use sentinel_schema::{
    Body as EntryBody, EventChange, EventDoc, EventEdit, EventError, EventId, Status,
};

use super::state::ApiState;

/// The event's document from every `event_change` of it in the log.
async fn document(state: &ApiState, id: &str) -> Result<(EventId, EventDoc), Problem> {
    let event = event_id(id)?;
    let entries = state.store.event_entries(&event).await?;
    let changes = EventDoc::changes_of(&entries);
    if changes.is_empty() {
        return Err(Problem::not_found(format!("no event {id}")));
    }
    let doc = EventDoc::from_changes(&changes).map_err(|e| Problem::unavailable(&e))?;
    if !doc.is_complete() {
        return Err(Problem::conflict(
            "id",
            "the hub does not hold every change of this event yet; try again after the next sync",
        ));
    }
    Ok((event, doc))
}

/// Makes `edit` as the hub, on behalf of `caller`, and appends it.
async fn apply(
    state: &ApiState,
    caller: &Caller,
    id: &str,
    edit: EventEdit,
    field: &str,
) -> Result<Json<ActionResult>, Problem> {
    let own = state.own_chain()?;
    let (event, mut doc) = document(state, id).await?;
    let now = state.now_ms();
    let change = doc.edit(&own.author(), &edit, now).map_err(|e| match e {
        EventError::InvalidTransition { .. } | EventError::Unchanged => {
            Problem::conflict(field, e.to_string())
        }
        EventError::Invalid { .. } => Problem::bad_field(field, e.to_string()),
        other => Problem::unavailable(&other),
    })?;
    let entries = own
        .append(
            vec![EntryBody::EventChange(EventChange { event, change })],
            Some(&caller.name),
            now,
        )
        .await
        .map_err(|e| Problem::unavailable(&e))?;
    let view = doc.view().map_err(|e| Problem::unavailable(&e))?;
    let Some(entry) = entries.last() else {
        return Err(Problem::unavailable(&"no entry was written"));
    };
    Ok(Json(ActionResult {
        event: event.to_hex(),
        entry: entry.id().to_hex(),
        seq: entry.seq(),
        status: view.status.as_str().to_owned(),
        assignee: view.assignee,
    }))
}

/// `POST /api/v1/events/{id}/assign` with `{"assignee": NAME}`.
#[utoipa::path(
    post,
    path = "/api/v1/events/{id}/assign",
    tag = "events",
    params(("id" = String, Path, description = "The event, 32 hex digits.",
        pattern = "^[0-9a-fA-F]{32}$", example = json!(EXAMPLE_EVENT))),
    request_body = Assign,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The event is assigned (409: not from its status, or unchanged).", body = ActionResult),
        JsonBodyRefusals, Unauthorized, Forbidden, NotFound, Conflict, Unavailable,
    )
)]
pub(super) async fn assign(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ActionResult>, Problem> {
    caller.may(Action::Assign, None)?;
    let Assign { assignee } = Assign::read(&headers, body).await?;
    apply(
        &state,
        &caller,
        &id,
        EventEdit::Assign(assignee),
        "assignee",
    )
    .await
}

/// Moves the event to `to`, as an admin (the route checked the role).
async fn set_status(
    state: ApiState,
    caller: Caller,
    id: String,
    to: Status,
) -> Result<Json<ActionResult>, Problem> {
    apply(&state, &caller, &id, EventEdit::Status(to), "status").await
}

/// `POST /api/v1/events/{id}/close`: a resolved event is closed.
#[utoipa::path(
    post,
    path = "/api/v1/events/{id}/close",
    tag = "events",
    params(("id" = String, Path, description = "The event, 32 hex digits.",
        pattern = "^[0-9a-fA-F]{32}$", example = json!(EXAMPLE_EVENT))),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The event is closed (409: it is not resolved).", body = ActionResult),
        JsonBodyRefusals, Unauthorized, Forbidden, NotFound, Conflict, Unavailable,
    )
)]
pub(super) async fn close(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ActionResult>, Problem> {
    // As on the node: the role first, then the (empty) body.
    caller.may(Action::CloseReopen, None)?;
    no_body(&headers, body).await?;
    set_status(state, caller, id, Status::Closed).await
}

/// `POST /api/v1/events/{id}/reopen`: a resolved or closed event is worked
/// again.
#[utoipa::path(
    post,
    path = "/api/v1/events/{id}/reopen",
    tag = "events",
    params(("id" = String, Path, description = "The event, 32 hex digits.",
        pattern = "^[0-9a-fA-F]{32}$", example = json!(EXAMPLE_EVENT))),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The event is in progress again (409: it is neither resolved nor closed).", body = ActionResult),
        JsonBodyRefusals, Unauthorized, Forbidden, NotFound, Conflict, Unavailable,
    )
)]
pub(super) async fn reopen(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ActionResult>, Problem> {
    // As on the node: the role first, then the (empty) body.
    caller.may(Action::CloseReopen, None)?;
    no_body(&headers, body).await?;
    set_status(state, caller, id, Status::InProgress).await
}
