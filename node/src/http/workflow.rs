//! Working an event on the node: `POST /api/v1/events/{id}/assign` and
//! the workflow steps `accept`, `start`, `resolve`, `close`, `reopen`.
//!
//! Each is one entry, committed under the lock after the caller is checked
//! against the event's facts as they are then ([`super::access`]), and
//! answers what the hub's admin actions answer
//! (`sentinel_http::api::json::ActionResult`): the entry committed and the
//! event's status and assignee after it. A step from a status it does not
//! start from is a conflict naming `status`.
//!
//! Never does: move an event by any route but these, or skip the check under the lock.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use sentinel_http::api::events::event_id;
use sentinel_http::api::json::{ActionResult, Assign};
use sentinel_http::api::Caller;
use sentinel_http::openapi::{
    Conflict, Forbidden, JsonBodyRefusals, NotFound, Unauthorized, Unavailable,
};
use sentinel_http::Problem;
use sentinel_schema::access::Action;
use sentinel_schema::{EventEdit, EventId, Status};

use super::access::{checked, facts, precheck};
use super::params::no_body;
use super::problems::node_problem;
use super::schemas::{
    EXAMPLE_ASSIGNED, EXAMPLE_CLOSED, EXAMPLE_EVENT, EXAMPLE_IN_PROGRESS, EXAMPLE_RESOLVED,
};
use super::state::ApiState;
use crate::store::events::Facts;

/// One edit of one event, checked against `action` under the lock, as its
/// own commit; what it committed and the event after it.
async fn act(
    state: &ApiState,
    caller: Caller,
    event: EventId,
    action: Action,
    field: &'static str,
    edit: impl FnOnce(&Facts, &str, u64) -> Result<EventEdit, Problem> + Send + 'static,
) -> Result<Json<ActionResult>, Problem> {
    let now = state.now_ms();
    let result = state
        .write_node(move |node| {
            let before = checked(node, &caller, event, action)?;
            let edit = edit(&before, &caller.name, now)?;
            let ack = node
                .edit(event, &edit, Some(&caller.name), now)
                .map_err(|e| node_problem(e, field))?;
            let after = facts(node, event)?;
            let status = after.status.ok_or_else(|| {
                Problem::unavailable(&"the event's status is not one this build knows")
            })?;
            Ok(ActionResult {
                event: ack.event,
                entry: ack.entry,
                seq: ack.seq,
                status: status.as_str().to_owned(),
                assignee: after.assignee,
            })
        })
        .await?;
    Ok(Json(result))
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
        (status = 200, description = "The event is assigned (409: unchanged).",
            body = ActionResult),
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
    let event = event_id(&id)?;
    precheck(&state, &caller, event, Action::Assign).await?;
    let Assign { assignee } = Assign::read(&headers, body).await?;
    act(
        &state,
        caller,
        event,
        Action::Assign,
        "assignee",
        move |_, _, _| Ok(EventEdit::Assign(assignee)),
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
    fn edit(self, actor: &str, now_ms: u64) -> EventEdit {
        match self {
            Step::Accept => EventEdit::Note {
                text: "accepted the assignment".into(),
                actor: Some(actor.to_owned()),
                at_ms: now_ms,
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
) -> Result<Json<ActionResult>, Problem> {
    let event = event_id(&id)?;
    precheck(&state, &caller, event, step.action()).await?;
    no_body(&headers, body).await?;
    act(
        &state,
        caller,
        event,
        step.action(),
        "status",
        move |facts, name, now| match facts.status {
            Some(s) if step.from().contains(&s) => Ok(step.edit(name, now)),
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
                        (status = 200, description = $done, body = ActionResult),
                        JsonBodyRefusals, Unauthorized, Forbidden, NotFound, Conflict, Unavailable,
                    )
                )]
        pub(super) async fn $name(
            State(state): State<ApiState>,
            caller: Caller,
            Path(id): Path<String>,
            headers: HeaderMap,
            body: Body,
        ) -> Result<Json<ActionResult>, Problem> {
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
