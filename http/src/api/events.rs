//! Events, as both servers answer them: `GET /api/v1/events` (search) and
//! `GET /api/v1/events/{id}` (one event); the query's filters here are
//! the exports' too (`super::export`).
//!
//! **The query.** `bbox=minLon,minLat,maxLon,maxLat` (`minLon > maxLon`
//! crosses the antimeridian), `near=lon,lat` with `radius` (metres,
//! geodesic), `q` (words that must all occur in the title, description or
//! notes), `status` (one or several, comma-separated), `category`
//! (exactly), `assignee` (exactly; not the public's, who sees no names),
//! `min_severity`/`max_severity`, `from` (inclusive) and `to` (exclusive)
//! on the reported time in Unix ms; `limit` (1..=[`MAX_LIMIT`], default
//! [`DEFAULT_LIMIT`]) and `after` (the `next` of the previous page) for
//! pages. Ordered by reported time, newest first, then event id. An
//! unknown or repeated parameter is refused, as is any value out of its
//! bounds, each naming the parameter.
//!
//! **The public** (the `redacted` scope) sees events without people,
//! notes, conflicts or history, the location snapped to the 0.01° grid of
//! `access::redact`. Because a filter on the exact location would give
//! back what the redaction hides, the public's `bbox` is widened to whole
//! grid cells before it is asked, and `near`/`radius` and `q` (which also
//! searches notes) are refused.

use axum::extract::{Path, State};
use axum::Json;
use sentinel_schema::access::{Action, Scope, COARSE_DEGREES};
use sentinel_schema::limits::MAX_CATEGORY_BYTES;
use sentinel_schema::query::{EventCursor, EventFilter, EventSearch, Near};
use sentinel_schema::{Bounds, EventId, Point, Status};
use utoipa::IntoParams;

use super::json::{Event, EventItem, EventPage, Visibility};
use super::{Api, Caller};
use crate::openapi::{BadRequest, Forbidden, NotFound, Unauthorized, Unavailable};
use crate::params::{cursor_int, decode_cursor, encode_cursor, hex_bytes, Pairs, Params};
use crate::Problem;

/// The largest `limit` of a page.
pub const MAX_LIMIT: usize = 500;
/// The `limit` of a page when none is given.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `radius` of `near`, in metres (half the equator, about).
pub const MAX_RADIUS_M: f64 = 20_100_000.0;
/// The longest `q`, in bytes.
pub const MAX_QUERY_BYTES: usize = 1000;

/// The filters of a search (and of an export).
pub const FILTER_PARAMS: &[&str] = &[
    "bbox",
    "near",
    "radius",
    "q",
    "status",
    "category",
    "assignee",
    "min_severity",
    "max_severity",
    "from",
    "to",
];

/// The parameters of `GET /api/v1/events`: the filters and the page.
pub const SEARCH_PARAMS: &[&str] = &[
    "bbox",
    "near",
    "radius",
    "q",
    "status",
    "category",
    "assignee",
    "min_severity",
    "max_severity",
    "from",
    "to",
    "limit",
    "after",
];

/// How a scope sees events.
pub fn visibility(scope: Scope) -> Visibility {
    if scope == Scope::Redacted {
        Visibility::Public
    } else {
        Visibility::Full
    }
}

/// An event id from the path: 32 hex digits.
pub fn event_id(id: &str) -> Result<EventId, Problem> {
    id.parse::<EventId>()
        .map_err(|_| Problem::bad_param("id", "an event id is 32 hex digits"))
}

fn severity(p: &Params, name: &str) -> Result<Option<u8>, Problem> {
    let v = p.parsed::<u8>(name, "an integer 1..=5")?;
    if v.is_some_and(|s| !(1..=5).contains(&s)) {
        return Err(Problem::bad_param(name, format!("`{name}` must be 1..=5")));
    }
    Ok(v)
}

/// A time parameter: Unix ms, 0 to `i64::MAX` (stores keep signed
/// integers: a larger one would wrap and match nothing).
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

/// `bbox` as a [`Bounds`], if given.
pub fn bbox(p: &Params) -> Result<Option<Bounds>, Problem> {
    p.get("bbox")
        .map(|text| {
            text.parse::<Bounds>()
                .map_err(|e| Problem::bad_param("bbox", e.to_string()))
        })
        .transpose()
}

/// The filters of a query; `public` applies the public's limits.
pub fn filter(p: &Params, public: bool) -> Result<EventFilter, Problem> {
    let area = bbox(p)?.map(|b| {
        if public {
            b.widen_to_cells(COARSE_DEGREES)
        } else {
            b
        }
    });
    let near = p.numbers("near", 2, "lon,lat")?;
    let radius = p.parsed::<f64>("radius", "a distance in metres")?;
    let near = match (near, radius) {
        (Some(_), _) | (_, Some(_)) if public => {
            let field = if p.get("near").is_some() {
                "near"
            } else {
                "radius"
            };
            return Err(Problem::bad_param(
                field,
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
            let point =
                Point::new(n[0], n[1]).map_err(|e| Problem::bad_param("near", e.to_string()))?;
            Some(Near { point, radius_m: r })
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
        Some(q) if q.trim().is_empty() || q.len() > MAX_QUERY_BYTES || q.contains('\0') => {
            return Err(Problem::bad_param(
                "q",
                format!("`q` must be 1 to {MAX_QUERY_BYTES} bytes of search words, without NUL"),
            ))
        }
        q => q.map(str::to_owned),
    };
    let statuses = match p.get("status") {
        Some(s) => s
            .split(',')
            .map(|s| {
                s.trim().parse::<Status>().map_err(|_| {
                    Problem::bad_param(
                        "status",
                        "`status` must be a comma-separated list of reported, assigned, \
                         in_progress, resolved, closed",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let category = match p.get("category") {
        Some(c) if c.is_empty() || c.len() > MAX_CATEGORY_BYTES || c.contains('\0') => {
            return Err(Problem::bad_param(
                "category",
                format!("`category` must be 1 to {MAX_CATEGORY_BYTES} bytes, without NUL"),
            ))
        }
        c => c.map(str::to_owned),
    };
    let assignee = match p.get("assignee") {
        Some(_) if public => {
            return Err(Problem::bad_param(
                "assignee",
                "the public cannot filter by people (it sees no names)",
            ))
        }
        Some(a) if crate::people::check_name(a).is_err() => {
            return Err(Problem::bad_param(
                "assignee",
                "`assignee` must be an account name (1 to 128 bytes of letters, digits, `.`, `_`, `-`, `@`)",
            ))
        }
        a => a.map(str::to_owned),
    };
    let (min, max) = (severity(p, "min_severity")?, severity(p, "max_severity")?);
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
    Ok(EventFilter {
        area,
        near,
        text,
        statuses,
        category,
        assignee,
        min_severity: min,
        max_severity: max,
        reported_from: from,
        reported_to: to,
    })
}

/// The `after` cursor: the `next` a previous page handed out.
pub fn cursor(p: &Params) -> Result<Option<EventCursor>, Problem> {
    let Some(text) = p.get("after") else {
        return Ok(None);
    };
    let fields = decode_cursor(text, 2)?;
    let reported_ms = cursor_int::<u64>(&fields[0])?;
    let event = hex_bytes::<16>(&fields[1]).ok_or_else(|| {
        Problem::bad_param("after", "`after` is not a cursor this API handed out")
    })?;
    Ok(Some(EventCursor {
        reported_ms,
        event: EventId(event),
    }))
}

/// The text of a cursor, as a page's `next`.
pub fn cursor_text(c: &EventCursor) -> String {
    encode_cursor(&[c.reported_ms.to_string(), c.event.to_hex()])
}

/// The search a query asks for; `public` applies the public's limits.
pub fn search_query(p: &Params, public: bool) -> Result<EventSearch, Problem> {
    let filter = filter(p, public)?;
    let limit = p
        .parsed::<usize>("limit", &format!("an integer 1..={MAX_LIMIT}"))?
        .unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::bad_param(
            "limit",
            format!("`limit` is {limit}, allowed 1..={MAX_LIMIT}"),
        ));
    }
    Ok(EventSearch {
        filter,
        limit,
        after: cursor(p)?,
    })
}

/// One status, or several separated by commas.
pub(crate) fn statuses_schema() -> utoipa::openapi::schema::ObjectBuilder {
    let one = Status::ALL
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("|");
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(format!(r"^ *({one}) *(, *({one}) *)*$")))
}

/// The query of `GET /api/v1/events`. Any other parameter, or one given
/// twice, is refused (400). The public may not use `q`, `near` or
/// `radius`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EventsQuery {
    /// `minLon,minLat,maxLon,maxLat` in degrees; `minLon > maxLon` crosses
    /// the antimeridian.
    pub bbox: Option<String>,
    /// `lon,lat` in degrees; needs `radius`.
    pub near: Option<String>,
    /// Metres around `near`, in (0, 20100000]; needs `near`.
    #[param(exclusive_minimum = 0, maximum = 20_100_000)]
    pub radius: Option<f64>,
    /// Words that must all occur in the title, description or notes; 1 to
    /// 1000 bytes, not blank.
    #[param(min_length = 1, max_length = 1000)]
    pub q: Option<String>,
    /// One status, or several separated by commas.
    #[param(schema_with = statuses_schema)]
    pub status: Option<String>,
    /// Exactly this category, 1 to 64 bytes.
    #[param(min_length = 1, max_length = 64)]
    pub category: Option<String>,
    /// Assigned to exactly this account name, 1 to 128 bytes (not for
    /// the public).
    #[param(min_length = 1, max_length = 128)]
    pub assignee: Option<String>,
    #[param(minimum = 1, maximum = 5)]
    pub min_severity: Option<i64>,
    #[param(minimum = 1, maximum = 5)]
    pub max_severity: Option<i64>,
    /// Reported from this time (Unix ms), inclusive.
    #[param(minimum = 0)]
    pub from: Option<i64>,
    /// Reported before this time (Unix ms); not before `from`.
    #[param(minimum = 0)]
    pub to: Option<i64>,
    /// Items per page (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next` of the previous page (opaque).
    pub after: Option<String>,
}

/// `GET /api/v1/events`.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(EventsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of events, newest report first.", body = EventPage),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub async fn search(
    State(api): State<Api>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<EventPage>, Problem> {
    let v = visibility(caller.may(Action::ReadEvents, None)?);
    let p = Params::from_query(query, SEARCH_PARAMS)?;
    let search = search_query(&p, v.is_public())?;
    let page = api.backend.search(search).await?;
    Ok(Json(EventPage {
        items: page.items.iter().map(|s| EventItem::of(s, v)).collect(),
        next: page.next.as_ref().map(cursor_text),
    }))
}

/// `GET /api/v1/events/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/events/{id}",
    tag = "events",
    params(("id" = String, Path, description = "The event, 32 hex digits.",
        pattern = "^[0-9a-fA-F]{32}$", example = json!(crate::openapi::EXAMPLE_EVENT))),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The event; its conflicts and history for those who \
            may read them, redacted for the public.", body = Event),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable,
    )
)]
pub async fn detail(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    query: Pairs,
) -> Result<Json<Event>, Problem> {
    let v = visibility(caller.may(Action::ReadEvents, None)?);
    Params::from_query(query, &[])?;
    let event = event_id(&id)?;
    let record = api
        .backend
        .event(event)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no event {id}")))?;
    let with_history = !v.is_public() && caller.may(Action::ReadHistory, None).is_ok();
    Ok(Json(Event::of(&record, v, with_history)))
}
