//! `POST /api/v1/events/{id}/redact`: an admin erases personal data from
//! an event — the title, the description, notes, photos — with a reason.
//!
//! The hub reads the event as its views show it (already masked by the
//! redactions it holds), works out what the request names
//! (`sentinel_schema::redact::plan`: each value by its hash, each blob by
//! its SHA-256), and signs one `redaction` entry on its own chain with
//! the admin as the entry's actor. Its projector masks the views and
//! deletes the blobs; every node that syncs does the same. The entry is
//! the redaction's record: in the event's history and the timeline, with
//! who and why. Answers `RedactResult`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use sentinel_http::api::events::event_id;
use sentinel_http::api::Caller;
use sentinel_http::body::{json_object, text};
use sentinel_http::openapi::{
    Forbidden, JsonBodyRefusals, NotFound, Unauthorized, Unavailable, EXAMPLE_EVENT,
};
use sentinel_http::Problem;
use sentinel_schema::access::Action;
use sentinel_schema::limits::MAX_REASON_BYTES;
use sentinel_schema::redact::{plan, PlanError, RedactionRequest};
use sentinel_schema::{Body as EntryBody, Redaction};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::state::ApiState;

/// The request: what to erase, and why.
// `Deserialize` only so that `deny_unknown_fields` tells utoipa to emit
// `additionalProperties: false`, as `json_object` refuses unknown members.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct RedactBody {
    /// Erase the title (and any concurrent title kept as a conflict).
    pub title: Option<bool>,
    /// Erase the description (and any concurrent one).
    pub description: Option<bool>,
    /// Notes to erase, by their index in the event's `notes`.
    pub notes: Option<Vec<u32>>,
    /// Photos or videos to erase, by hash (64 hex digits).
    pub media: Option<Vec<String>>,
    /// Why: the request this answers. 1 to 256 bytes.
    #[schema(min_length = 1, max_length = 256)]
    pub reason: String,
}

/// What the hub signed.
#[derive(Debug, Serialize, ToSchema)]
pub struct RedactResult {
    pub event: String,
    /// The `redaction` entry, 64 hex digits.
    pub entry: String,
    /// Its seq on the hub's chain.
    pub seq: u64,
    /// How many values (title, description, notes) it erases.
    pub values: usize,
    /// How many blobs it erases.
    pub blobs: usize,
}

fn flag(map: &Map<String, Value>, field: &str) -> Result<bool, Problem> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(Problem::bad_field(field, "must be true or false")),
    }
}

fn list<'a>(map: &'a Map<String, Value>, field: &str) -> Result<&'a [Value], Problem> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(Problem::bad_field(field, "must be an array")),
    }
}

/// The request, read strictly: every refusal names its field.
fn request(map: &Map<String, Value>) -> Result<(RedactionRequest, String), Problem> {
    let reason = text(map, "reason")?.trim();
    if reason.is_empty() || reason.len() > MAX_REASON_BYTES {
        return Err(Problem::bad_field(
            "reason",
            format!("say why, in 1 to {MAX_REASON_BYTES} bytes"),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(Problem::bad_field("reason", "no control characters"));
    }
    let notes = list(map, "notes")?
        .iter()
        .map(|v| {
            v.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| Problem::bad_field("notes", "each is a note's index, 0 or more"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let media = list(map, "media")?
        .iter()
        .map(|v| {
            let mut hash = [0u8; 32];
            match v.as_str() {
                Some(s) if s.len() == 64 && hex::decode_to_slice(s, &mut hash).is_ok() => Ok(hash),
                _ => Err(Problem::bad_field(
                    "media",
                    "each is a hash of 64 hex digits",
                )),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        RedactionRequest {
            title: flag(map, "title")?,
            description: flag(map, "description")?,
            notes,
            media,
        },
        reason.to_owned(),
    ))
}

fn refused(e: PlanError) -> Problem {
    let field = match &e {
        PlanError::NoSuchNote(_) => "notes",
        PlanError::NoSuchMedia(_) => "media",
        PlanError::AlreadyRedacted(f) => f,
        PlanError::Nothing | PlanError::TooMany => "body",
        _ => "body",
    };
    Problem::bad_field(field, e.to_string())
}

/// `POST /api/v1/events/{id}/redact`.
#[utoipa::path(
    post,
    path = "/api/v1/events/{id}/redact",
    tag = "events",
    params(("id" = String, Path, description = "The event, 32 hex digits.",
        pattern = "^[0-9a-fA-F]{32}$", example = json!(EXAMPLE_EVENT))),
    request_body = RedactBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The hub signed the redaction; views everywhere drop \
            the content as they project it.", body = RedactResult),
        JsonBodyRefusals, Unauthorized, Forbidden, NotFound, Unavailable,
    )
)]
pub(super) async fn redact(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<RedactResult>, Problem> {
    caller.may(Action::Redact, None)?;
    let map = json_object(
        &headers,
        body,
        &["title", "description", "notes", "media", "reason"],
    )
    .await?;
    let (ask, reason) = request(&map)?;
    let event = event_id(&id)?;
    let record = state
        .store
        .event_record(&event, None)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no event {id}")))?;
    let (values, blobs) = plan(&record.view, &ask).map_err(refused)?;
    let own = state.own_chain()?;
    let (n_values, n_blobs) = (values.len(), blobs.len());
    let body = EntryBody::Redaction(Redaction {
        event,
        values,
        blobs,
        reason,
    });
    let entries = own
        .append(vec![body], Some(&caller.name), state.now_ms())
        .await
        .map_err(|e| Problem::unavailable(&e))?;
    let Some(entry) = entries.last() else {
        return Err(Problem::unavailable(&"no entry was written"));
    };
    Ok(Json(RedactResult {
        event: event.to_hex(),
        entry: entry.id().to_hex(),
        seq: entry.seq(),
        values: n_values,
        blobs: n_blobs,
    }))
}
