//! Analysis, as both servers answer it, with no network needed:
//! `GET /api/v1/analysis/duplicates` (pairs of near-duplicate reports,
//! offered for merging), `GET /api/v1/analysis/hotspots` (cells of a grid
//! busier now than their own baseline) and `POST /api/v1/analysis/summary`
//! ([`summary`]: an event or an area, by a language model when one is
//! configured and answers, otherwise — and always beside it — locally).
//!
//! The algorithms are `sentinel_schema::analysis`'s; the events they see
//! come from the backend's `search` with the search's filters (parsed by
//! [`super::events::filter`], with its bounds and the public's limits),
//! so what an analysis knows is what the caller may search. At most
//! [`MAX_SCAN`] events are scanned (the newest first); an answer says
//! `truncated` when more matched.
//!
//! **The public** (invariant 12): hotspots only, counted on locations
//! snapped to the 0.01° grid first, with cells no finer than that grid.
//! Duplicates are refused (a pair says two reports lie within metres of
//! each other and compares their descriptions: finer than the grid).
//! Summaries are made from the public's redacted view only
//! ([`summary`]).
//!
//! Never does: merge anything (a person does, with the workflow routes),
//! or read a clock of its own (the backend's clock is "now").

pub mod summary;

use axum::extract::State;
use axum::Json;
use sentinel_schema::access::{Action, COARSE_DEGREES};
use sentinel_schema::analysis::{
    hotspots as find_hotspots, near_duplicates, Candidate, DuplicateRules, HotspotRules,
};
use sentinel_schema::query::{EventFilter, EventSearch, EventSummary};
use sentinel_schema::{EventId, Point};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::events::{filter, visibility, FILTER_PARAMS, MAX_LIMIT};
use super::json::{snap, Location, Visibility};
use super::{Api, Caller};
use crate::openapi::{BadRequest, Forbidden, Unauthorized, Unavailable};
use crate::params::{Pairs, Params};
use crate::Problem;

/// The most events one analysis scans, the newest first.
pub const MAX_SCAN: usize = 2000;
/// The most events whose descriptions a duplicate search reads (those
/// with a neighbour in place and time); beyond it, titles alone.
pub const MAX_DESCRIPTIONS: usize = 300;
/// The most pairs or hotspots in one answer.
pub const MAX_ITEMS: usize = 200;
/// Items in an answer when `limit` is not given.
pub const DEFAULT_ITEMS: usize = 50;

/// The filters an analysis takes besides its own parameters.
fn known(own: &[&'static str], with_times: bool) -> Vec<&'static str> {
    FILTER_PARAMS
        .iter()
        .copied()
        .filter(|p| with_times || !matches!(*p, "from" | "to"))
        .chain(own.iter().copied())
        .collect()
}

/// A number parameter in `[lo, hi]`, or `default`.
fn number(p: &Params, name: &str, lo: f64, hi: f64, default: f64) -> Result<f64, Problem> {
    let what = format!("a number in [{lo}, {hi}]");
    let v = p.parsed::<f64>(name, &what)?.unwrap_or(default);
    if !v.is_finite() || v < lo || v > hi {
        return Err(Problem::bad_param(name, format!("`{name}` must be {what}")));
    }
    Ok(v)
}

/// An integer parameter in `lo..=hi`, or `default`.
fn integer(p: &Params, name: &str, lo: u64, hi: u64, default: u64) -> Result<u64, Problem> {
    let what = format!("an integer {lo}..={hi}");
    let v = p.parsed::<u64>(name, &what)?.unwrap_or(default);
    if !(lo..=hi).contains(&v) {
        return Err(Problem::bad_param(
            name,
            format!("`{name}` is {v}, allowed {lo}..={hi}"),
        ));
    }
    Ok(v)
}

/// The events `filter` finds, the newest first, at most `max`; whether
/// more matched.
pub(crate) async fn gather(
    api: &Api,
    filter: &EventFilter,
    max: usize,
) -> Result<(Vec<EventSummary>, bool), Problem> {
    let mut found: Vec<EventSummary> = Vec::new();
    let mut after = None;
    loop {
        let limit = MAX_LIMIT.min(max - found.len());
        let page = api
            .backend()
            .search(EventSearch {
                filter: filter.clone(),
                limit,
                after,
            })
            .await?;
        found.extend(page.items);
        match page.next {
            Some(next) if found.len() < max => after = Some(next),
            Some(_) => return Ok((found, true)),
            None => return Ok((found, false)),
        }
    }
}

/// One event of a pair, as its side of the pair shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PairSide {
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub id: String,
    pub title: String,
    #[schema(schema_with = super::json::status_schema)]
    pub status: String,
    pub location: Location,
    pub reported_ms: u64,
}

/// Two reports that look like one incident.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DuplicatePairJson {
    /// The earlier report: the one to keep.
    pub keep: PairSide,
    /// The later report: merging closes it with a note naming `keep`.
    pub duplicate: PairSide,
    pub distance_m: f64,
    /// Seconds between the two reports.
    pub apart_s: u64,
    /// Trigram similarity of title and description, 0 to 1.
    pub similarity: f64,
    /// Place, time and words together, 0 to 1.
    pub score: f64,
    /// Why this pair, one sentence each.
    pub reasons: Vec<String>,
}

/// The near duplicates among the events found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Duplicates {
    /// The highest score first.
    pub pairs: Vec<DuplicatePairJson>,
    /// Events scanned (the newest first).
    pub scanned: u64,
    /// Whether more than 2000 events matched (the older were not
    /// scanned), or more pairs were found than `limit`, or more than 300
    /// events needed their description read (the rest were compared by
    /// title).
    pub truncated: bool,
}

/// The query of `GET /api/v1/analysis/duplicates`: the filters of
/// `GET /api/v1/events` and the rules of a pair. Not for the public.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DuplicatesQuery {
    /// `minLon,minLat,maxLon,maxLat` in degrees.
    pub bbox: Option<String>,
    /// `lon,lat` in degrees; needs `radius`.
    pub near: Option<String>,
    #[param(exclusive_minimum = 0, maximum = 20_100_000)]
    pub radius: Option<f64>,
    #[param(min_length = 1, max_length = 1000)]
    pub q: Option<String>,
    #[param(schema_with = super::events::statuses_schema)]
    pub status: Option<String>,
    #[param(min_length = 1, max_length = 64)]
    pub category: Option<String>,
    #[param(min_length = 1, max_length = 128)]
    pub assignee: Option<String>,
    #[param(minimum = 1, maximum = 5)]
    pub min_severity: Option<i64>,
    #[param(minimum = 1, maximum = 5)]
    pub max_severity: Option<i64>,
    /// Reported from this time (Unix ms), inclusive.
    #[param(minimum = 0)]
    pub from: Option<i64>,
    /// Reported before this time (Unix ms).
    #[param(minimum = 0)]
    pub to: Option<i64>,
    /// At most this many metres apart (default 100).
    #[param(exclusive_minimum = 0, maximum = 10_000)]
    pub distance_m: Option<f64>,
    /// Reported at most this many seconds apart (default 3600).
    #[param(minimum = 1, maximum = 604_800)]
    pub window_s: Option<i64>,
    /// Title and description at least this similar, 0 to 1 (default 0.5).
    #[param(minimum = 0, maximum = 1)]
    pub similarity: Option<f64>,
    /// Pairs in the answer (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// The rules of a duplicate search from its parameters.
fn duplicate_rules(p: &Params) -> Result<DuplicateRules, Problem> {
    let distance_m = number(p, "distance_m", 0.0, 10_000.0, 100.0)?;
    if distance_m <= 0.0 {
        return Err(Problem::bad_param(
            "distance_m",
            "`distance_m` must be above 0",
        ));
    }
    Ok(DuplicateRules {
        distance_m,
        window_ms: integer(p, "window_s", 1, 604_800, 3600)? * 1000,
        similarity: number(p, "similarity", 0.0, 1.0, 0.5)?,
    })
}

fn side(e: &EventSummary) -> PairSide {
    PairSide {
        id: e.id.to_hex(),
        title: e.title.clone(),
        status: e.status.as_str().to_owned(),
        location: Location::of(e.location, Visibility::Full),
        reported_ms: e.reported_ms,
    }
}

/// `GET /api/v1/analysis/duplicates`.
#[utoipa::path(
    get,
    path = "/api/v1/analysis/duplicates",
    tag = "analysis",
    params(DuplicatesQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Pairs of near-duplicate reports among the events \
            the filters find, the likeliest first (403 for the public).", body = Duplicates),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub async fn duplicates(
    State(api): State<Api>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<Duplicates>, Problem> {
    if visibility(caller.may(Action::ReadEvents, None)?).is_public() {
        return Err(Problem::forbidden(
            "the public is not offered duplicates: a pair would locate reports more finely \
             than the public's grid",
        ));
    }
    let p = Params::from_query(
        query,
        &known(&["distance_m", "window_s", "similarity", "limit"], true),
    )?;
    let f = filter(&p, false)?;
    let rules = duplicate_rules(&p)?;
    let limit = integer(&p, "limit", 1, MAX_ITEMS as u64, DEFAULT_ITEMS as u64)? as usize;
    let (events, mut truncated) = gather(&api, &f, MAX_SCAN).await?;
    let mut candidates: Vec<Candidate> = events
        .iter()
        .map(|e| Candidate {
            id: e.id,
            location: e.location,
            reported_ms: e.reported_ms,
            text: e.title.clone(),
        })
        .collect();
    // Descriptions only for events with a neighbour in place and time:
    // the others cannot pair whatever they say.
    let near = DuplicateRules {
        similarity: 0.0,
        ..rules
    };
    let mut needed: Vec<EventId> = Vec::new();
    for pair in near_duplicates(&candidates, near, usize::MAX) {
        for id in [pair.keep, pair.duplicate] {
            if !needed.contains(&id) {
                needed.push(id);
            }
        }
    }
    if needed.len() > MAX_DESCRIPTIONS {
        needed.truncate(MAX_DESCRIPTIONS);
        truncated = true;
    }
    for id in needed {
        if let Some(record) = api.backend().event(id).await? {
            if let Some(c) = candidates.iter_mut().find(|c| c.id == id) {
                c.text = format!("{} {}", c.text, record.view.description);
            }
        }
    }
    let mut pairs = near_duplicates(&candidates, rules, limit + 1);
    if pairs.len() > limit {
        pairs.truncate(limit);
        truncated = true;
    }
    let by_id = |id: EventId| events.iter().find(|e| e.id == id).map(side);
    Ok(Json(Duplicates {
        pairs: pairs
            .into_iter()
            .filter_map(|d| {
                Some(DuplicatePairJson {
                    keep: by_id(d.keep)?,
                    duplicate: by_id(d.duplicate)?,
                    distance_m: d.distance_m,
                    apart_s: d.apart_ms / 1000,
                    similarity: d.similarity,
                    score: d.score,
                    reasons: d.reasons,
                })
            })
            .collect(),
        scanned: events.len() as u64,
        truncated,
    }))
}

/// One cell busier than usual.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HotspotJson {
    /// The cell: `[minLon, minLat, maxLon, maxLat]`.
    pub cell: [f64; 4],
    /// Its centre.
    pub center: Location,
    /// Events in the recent window.
    pub recent: u64,
    /// Events per window in the baseline.
    pub expected: f64,
    /// `(recent − expected) / √(expected + 1)`.
    pub score: f64,
}

/// The hotspots among the events found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Hotspots {
    /// The highest score first.
    pub hotspots: Vec<HotspotJson>,
    /// The recent window: `[until − window_s, until)`, Unix ms.
    pub recent_from_ms: u64,
    pub until_ms: u64,
    /// Where the baseline starts, Unix ms.
    pub baseline_from_ms: u64,
    /// Events scanned.
    pub scanned: u64,
    /// Whether more than 2000 events matched (the oldest of the
    /// baseline were not counted).
    pub truncated: bool,
}

/// The query of `GET /api/v1/analysis/hotspots`: the filters of
/// `GET /api/v1/events` but `from` and `to`, and the grid and windows.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct HotspotsQuery {
    /// `minLon,minLat,maxLon,maxLat` in degrees.
    pub bbox: Option<String>,
    /// `lon,lat` in degrees; needs `radius`. Not for the public.
    pub near: Option<String>,
    #[param(exclusive_minimum = 0, maximum = 20_100_000)]
    pub radius: Option<f64>,
    /// Not for the public.
    #[param(min_length = 1, max_length = 1000)]
    pub q: Option<String>,
    #[param(schema_with = super::events::statuses_schema)]
    pub status: Option<String>,
    #[param(min_length = 1, max_length = 64)]
    pub category: Option<String>,
    /// Not for the public.
    #[param(min_length = 1, max_length = 128)]
    pub assignee: Option<String>,
    #[param(minimum = 1, maximum = 5)]
    pub min_severity: Option<i64>,
    #[param(minimum = 1, maximum = 5)]
    pub max_severity: Option<i64>,
    /// The end of the recent window, Unix ms (default: now).
    #[param(minimum = 0)]
    pub until: Option<i64>,
    /// The recent window, seconds (default 86400).
    #[param(minimum = 60, maximum = 2_592_000)]
    pub window_s: Option<i64>,
    /// Windows of baseline before it (default 7).
    #[param(minimum = 1, maximum = 52)]
    pub baseline: Option<i64>,
    /// The grid's cell side, degrees (default 0.01; the public's at least
    /// 0.01).
    #[param(minimum = 0.001, maximum = 10)]
    pub cell: Option<f64>,
    /// The fewest recent events of a hotspot (default 3).
    #[param(minimum = 1, maximum = 1000)]
    pub min_count: Option<i64>,
    /// The lowest score of a hotspot (default 2).
    #[param(minimum = 0, maximum = 100)]
    pub min_score: Option<f64>,
    /// Hotspots in the answer (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// The parameters of hotspots besides the filters.
pub(crate) const HOTSPOT_PARAMS: &[&str] = &[
    "until",
    "window_s",
    "baseline",
    "cell",
    "min_count",
    "min_score",
    "limit",
];

/// The rules of a hotspot search and its `until`; `public` keeps cells
/// no finer than the public's grid.
pub(crate) fn hotspot_rules(
    p: &Params,
    public: bool,
    now_ms: u64,
) -> Result<(HotspotRules, u64), Problem> {
    let until = integer(p, "until", 0, i64::MAX as u64, now_ms)?;
    let lo = if public { COARSE_DEGREES } else { 0.001 };
    let cell_deg = number(p, "cell", lo, 10.0, COARSE_DEGREES)?;
    let rules = HotspotRules {
        cell_deg,
        window_ms: integer(p, "window_s", 60, 2_592_000, 86_400)? * 1000,
        baseline: integer(p, "baseline", 1, 52, 7)? as u32,
        min_count: integer(p, "min_count", 1, 1000, 3)?,
        min_score: number(p, "min_score", 0.0, 100.0, 2.0)?,
    };
    Ok((rules, until))
}

/// A location as an analysis of `v` may use it: snapped for the public.
pub(crate) fn seen(p: Point, v: Visibility) -> Point {
    if !v.is_public() {
        return p;
    }
    Point::new(
        snap(p.lon()).clamp(-180.0, 180.0),
        snap(p.lat()).clamp(-90.0, 90.0),
    )
    .unwrap_or(p)
}

/// The hotspot JSON of what the schema found.
pub(crate) fn hotspot_json(h: &sentinel_schema::analysis::Hotspot) -> HotspotJson {
    let c = h.cell;
    HotspotJson {
        cell: [c.min_lon(), c.min_lat(), c.max_lon(), c.max_lat()],
        center: Location {
            lon: (c.min_lon() + c.max_lon()) / 2.0,
            lat: (c.min_lat() + c.max_lat()) / 2.0,
        },
        recent: h.recent,
        expected: h.expected,
        score: h.score,
    }
}

/// `GET /api/v1/analysis/hotspots`.
#[utoipa::path(
    get,
    path = "/api/v1/analysis/hotspots",
    tag = "analysis",
    params(HotspotsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cells of the grid with more recent events than \
            their own baseline, the highest score first.", body = Hotspots),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub async fn hotspots(
    State(api): State<Api>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<Hotspots>, Problem> {
    let v = visibility(caller.may(Action::ReadEvents, None)?);
    let p = Params::from_query(query, &known(HOTSPOT_PARAMS, false))?;
    let mut f = filter(&p, v.is_public())?;
    let (rules, until) = hotspot_rules(&p, v.is_public(), api.backend().clock().now_ms())?;
    let limit = integer(&p, "limit", 1, MAX_ITEMS as u64, DEFAULT_ITEMS as u64)? as usize;
    f.reported_from = Some(rules.since_ms(until));
    f.reported_to = Some(until);
    let (events, truncated) = gather(&api, &f, MAX_SCAN).await?;
    let found = find_hotspots(
        events.iter().map(|e| (seen(e.location, v), e.reported_ms)),
        rules,
        until,
        limit,
    );
    Ok(Json(Hotspots {
        hotspots: found.iter().map(hotspot_json).collect(),
        recent_from_ms: until.saturating_sub(rules.window_ms),
        until_ms: until,
        baseline_from_ms: rules.since_ms(until),
        scanned: events.len() as u64,
        truncated,
    }))
}
