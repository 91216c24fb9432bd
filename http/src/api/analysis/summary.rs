//! `POST /api/v1/analysis/summary`: a summary of one event (`{"event":
//! id}`) or of the events some filters find (`bbox`, `status`,
//! `category`, `min_severity`, `max_severity`, `from`, `to`: the search's
//! filters, with its bounds and the public's limits).
//!
//! The local summary (`sentinel_schema::analysis::summarise`, with the
//! hotspots and — not for the public — near duplicates among the events)
//! is always made and always answered under `local`. When a language
//! model is configured (`crate::llm`), it is asked to write `text` from
//! the data the caller's role sees, redacted as the search and the
//! event's page redact it, and without people's names (assignee,
//! reporter): `source` is then `model`. When none is configured, or it is
//! down, slower than its timeout or answers something that is not a chat
//! completion, `text` is the local summary's, `source` is `local` and
//! `reason` says why.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use sentinel_schema::access::Action;
use sentinel_schema::analysis::{hotspots, near_duplicates, summarise, Candidate, DuplicateRules};
use sentinel_schema::query::{EventRecord, EventSummary};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use utoipa::ToSchema;

use super::super::events::{event_id, filter, visibility};
use super::super::json::{Event, EventItem, Visibility};
use super::super::{Api, Caller};
use super::{gather, hotspot_json, seen, HotspotJson, MAX_SCAN};
use crate::body::json_object;
use crate::llm::LlmFailure;
use crate::openapi::{Forbidden, JsonBodyRefusals, NotFound, Unauthorized, Unavailable};
use crate::params::Params;
use crate::Problem;

/// The most events of an area the model is shown (the newest); the local
/// numbers count them all.
pub const MAX_MODEL_EVENTS: usize = 200;

/// What the model is told to do.
pub const SYSTEM_PROMPT: &str = "You summarise incident reports for the people who coordinate \
the response. Use only the data given; invent nothing. Say what happened, where it is \
concentrated, what is most severe and what is still open, in at most eight short sentences \
of plain text.";

/// The members a summary's body may have.
const MEMBERS: &[&str] = &[
    "event",
    "bbox",
    "status",
    "category",
    "min_severity",
    "max_severity",
    "from",
    "to",
];

/// `POST /api/v1/analysis/summary`'s body: `event`, or filters.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SummaryRequest {
    /// One event, 32 hex digits; not with filters.
    #[schema(pattern = "^[0-9a-fA-F]{32}$")]
    pub event: Option<String>,
    /// `minLon,minLat,maxLon,maxLat` in degrees.
    pub bbox: Option<String>,
    /// One status, or several separated by commas.
    pub status: Option<String>,
    pub category: Option<String>,
    #[schema(minimum = 1, maximum = 5)]
    pub min_severity: Option<u8>,
    #[schema(minimum = 1, maximum = 5)]
    pub max_severity: Option<u8>,
    /// Reported from (Unix ms), inclusive.
    #[schema(minimum = 0)]
    pub from: Option<u64>,
    /// Reported before (Unix ms).
    #[schema(minimum = 0)]
    pub to: Option<u64>,
}

/// The local summary's numbers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LocalSummary {
    pub total: u64,
    pub by_category: BTreeMap<String, u64>,
    /// Severity ("1" to "5") → events.
    pub by_severity: BTreeMap<String, u64>,
    pub by_status: BTreeMap<String, u64>,
    pub first_ms: Option<u64>,
    pub last_ms: Option<u64>,
    /// Pairs of likely duplicates (not counted for the public).
    pub duplicates: u64,
    pub hotspots: Vec<HotspotJson>,
    /// The local summary as sentences.
    pub text: String,
    /// Events scanned; whether more than 2000 matched.
    pub scanned: u64,
    pub truncated: bool,
}

/// A summary, by the model or made here.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SummaryAnswer {
    /// `model` when the language model wrote `text`, `local` otherwise.
    #[schema(pattern = "^(model|local)$")]
    pub source: &'static str,
    /// Why the answer is local; `null` for the model's.
    pub reason: Option<String>,
    pub text: String,
    pub local: LocalSummary,
}

/// `POST /api/v1/analysis/summary`.
#[utoipa::path(
    post,
    path = "/api/v1/analysis/summary",
    tag = "analysis",
    request_body = SummaryRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The summary: the model's when one is configured and \
            answers, the local one otherwise (with the reason).", body = SummaryAnswer),
        JsonBodyRefusals, Unauthorized, Forbidden, NotFound, Unavailable,
    )
)]
pub async fn summary(
    State(api): State<Api>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<SummaryAnswer>, Problem> {
    let v = visibility(caller.may(Action::ReadEvents, None)?);
    let map = json_object(&headers, body, MEMBERS).await?;
    let (local, data) = match map.get("event") {
        Some(id) => {
            if let Some(other) = map.keys().find(|k| *k != "event") {
                return Err(Problem::bad_field(
                    other.clone(),
                    "give `event` or filters, not both",
                ));
            }
            let id = id.as_str().ok_or_else(|| {
                Problem::bad_field("event", "must be an event id (32 hex digits)")
            })?;
            let id = event_id(id)
                .map_err(|_| Problem::bad_field("event", "must be an event id (32 hex digits)"))?;
            let record = api
                .backend()
                .event(id)
                .await?
                .ok_or_else(|| Problem::not_found(format!("no event {}", id.to_hex())))?;
            of_event(&record, v)
        }
        None => of_area(&api, &map, v).await?,
    };
    let (source, reason, text) = match api.llm() {
        None => (
            "local",
            Some(LlmFailure::Unset.to_string()),
            local.text.clone(),
        ),
        Some(llm) => {
            let user = format!("Summarise this. The data, as JSON:\n{data}");
            match llm.complete(SYSTEM_PROMPT, &user).await {
                Ok(text) => ("model", None, text),
                Err(why) => ("local", Some(why.to_string()), local.text.clone()),
            }
        }
    };
    Ok(Json(SummaryAnswer {
        source,
        reason,
        text,
        local,
    }))
}

/// The local summary of one event, and the data the model may be shown:
/// the event as `v` sees it on its page, without history or people.
fn of_event(record: &EventRecord, v: Visibility) -> (LocalSummary, Value) {
    let event = Event::of(record, v, false);
    let view = &record.view;
    let one = EventSummary {
        id: record.id,
        title: event.title.clone(),
        category: event.category.clone(),
        severity: event.severity,
        status: view.status,
        assignee: None,
        location: seen(view.location, v),
        reported_ms: event.reported_ms,
        n_notes: 0,
        n_media: event.n_media,
        has_conflicts: false,
        distance_m: None,
    };
    let mut local = local_summary(&[one], &[], 0, 1, false);
    local.text = format!(
        "{} ({}, severity {}, {}), reported at {} ms. {}",
        event.title,
        event.category,
        event.severity,
        event.status,
        event.reported_ms,
        event.description
    )
    .trim()
    .to_owned();
    let mut data = serde_json::to_value(&event).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut data {
        for person in ["assignee", "reported_by"] {
            m.remove(person);
        }
        if let Some(Value::Array(notes)) = m.get_mut("notes") {
            for note in notes {
                if let Value::Object(n) = note {
                    n.retain(|k, _| k == "text" || k.ends_with("_ms"));
                }
            }
        }
    }
    (local, json!({ "event": data }))
}

/// The local summary of the events `map`'s filters find, and the data
/// the model may be shown: the numbers and the newest events as `v` sees
/// them in a search, without people.
async fn of_area(
    api: &Api,
    map: &Map<String, Value>,
    v: Visibility,
) -> Result<(LocalSummary, Value), Problem> {
    let mut pairs = Vec::new();
    for (name, value) in map {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(Problem::bad_field(
                    name.clone(),
                    "must be a string or a number",
                ))
            }
        };
        pairs.push((name.clone(), text));
    }
    let p = Params::parse(pairs, MEMBERS)?;
    let f = filter(&p, v.is_public())?;
    let (events, truncated) = gather(api, &f, MAX_SCAN).await?;
    let now = f
        .reported_to
        .unwrap_or_else(|| api.backend().clock().now_ms());
    let rules = sentinel_schema::analysis::HotspotRules {
        cell_deg: sentinel_schema::access::COARSE_DEGREES,
        window_ms: 86_400_000,
        baseline: 7,
        min_count: 3,
        min_score: 2.0,
    };
    let hot = hotspots(
        events.iter().map(|e| (seen(e.location, v), e.reported_ms)),
        rules,
        now,
        10,
    );
    let duplicates = if v.is_public() {
        0
    } else {
        let candidates: Vec<Candidate> = events
            .iter()
            .map(|e| Candidate {
                id: e.id,
                location: e.location,
                reported_ms: e.reported_ms,
                text: e.title.clone(),
            })
            .collect();
        let rules = DuplicateRules {
            distance_m: 100.0,
            window_ms: 3_600_000,
            similarity: 0.5,
        };
        near_duplicates(&candidates, rules, usize::MAX).len()
    };
    let mut local = local_summary(&events, &hot, duplicates, events.len(), truncated);
    if duplicates > 0 {
        local.text = format!(
            "{}\n{duplicates} pair(s) of likely duplicate reports.",
            local.text
        );
    }
    let items: Vec<Value> = events
        .iter()
        .take(MAX_MODEL_EVENTS)
        .map(|e| {
            let mut item = EventItem::of(e, v);
            item.assignee = None;
            serde_json::to_value(item).unwrap_or(Value::Null)
        })
        .collect();
    let numbers = serde_json::to_value(&local).unwrap_or(Value::Null);
    Ok((local, json!({ "summary": numbers, "events": items })))
}

fn local_summary(
    events: &[EventSummary],
    hot: &[sentinel_schema::analysis::Hotspot],
    duplicates: usize,
    scanned: usize,
    truncated: bool,
) -> LocalSummary {
    let s = summarise(events, hot, &[]);
    LocalSummary {
        total: s.total,
        by_category: s.by_category,
        by_severity: s
            .by_severity
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect(),
        by_status: s.by_status,
        first_ms: s.first_ms,
        last_ms: s.last_ms,
        duplicates: duplicates as u64,
        hotspots: hot.iter().map(hotspot_json).collect(),
        text: s.text,
        scanned: scanned as u64,
        truncated,
    }
}
