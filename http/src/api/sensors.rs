//! Sensors, as both servers answer them: `POST /api/v1/sensors/entries`
//! (a sensor pushes signed readings, `docs/protocol.md` part 3),
//! `GET /api/v1/sensors/readings` (the readings time series),
//! `GET /api/v1/sensors` (the sensors seen) and
//! `GET /api/v1/sensors/alerts` (the rules that fired).
//!
//! **Push.** No bearer token: each entry's signature and the CA's
//! certificate authenticate. `Content-Type: application/cbor` (else 415),
//! at most `MAX_PUSH_BYTES` (else 413, refused by its `Content-Length`
//! before the body is read, and while reading without one). 200 is the
//! push report (3.6); every refusal is a problem
//! (`urn:sentinel:problem:push-refused`) with `code` and, when one entry
//! is at fault, `index`, `seq` and `head_seq` (3.7).
//!
//! **Readings.** One item per value of a reading, ascending by measured
//! time (then entry id, then the value's position), keyset-paged
//! (`limit` 1..=[`MAX_LIMIT`], default [`DEFAULT_LIMIT`]; `after`).
//! Filters: `sensor` (64 hex digits), `kind`, `name` (the value's name),
//! `from` (inclusive) / `to` (exclusive) on `measured_ms`,
//! `bbox=minLon,minLat,maxLon,maxLat` (readings without a location are
//! left out). With `bucket_ms=N` (N ≥ [`MIN_BUCKET_MS`]; needs `sensor`
//! or `kind`) the answer is downsampled instead: per value name, unit and
//! bucket of N ms of measured time (buckets start at multiples of N),
//! `min`, `max`, `avg` and `count`, not paged; at most [`MAX_BUCKETS`]
//! buckets per series, else 400 naming `bucket_ms`.
//!
//! **Sensors.** Every sensor the server holds readings of: `sensor`
//! (key), `name` (its certificate's common name, if the CA vouches for
//! it), `kinds`, `n_readings`, `last_seq`, `last_measured_ms`,
//! `last_location`, and `forks` (forks of its chain kept as evidence: a
//! sensor that signed two histories).
//!
//! **Rules that fired.** The events this server's own sensor rules raised
//! (rules run only where a sensor's reading arrives directly, so each
//! server lists its own): per rule and sensor the newest trigger — an
//! earlier one of the same pair is replaced — newest `raised_ms` first
//! (then rule, sensor): `sensor`, `rule`, `event` (raised), `entry` (the
//! server's entry that reported it), `reading` (the entry that carried
//! the reading), `measured_ms`, `raised_ms`. `sensor` (64 hex digits)
//! keeps one sensor's; `limit` 1..=[`MAX_LIMIT`], default
//! [`DEFAULT_LIMIT`]. Who may read: as `GET /api/v1/sensors`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sentinel_schema::access::Action;
use sentinel_schema::limits::MAX_KIND_BYTES;
use sentinel_schema::query::{ReadingBucket, ReadingCursor, ReadingFilter, ReadingRow, SensorSeen};
use sentinel_schema::{AuthorId, EntryId};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::events::bbox;
use super::json::Location;
use super::{Api, Caller, PushRefusal, RuleTrigger};
use crate::openapi::{BadRequest, Forbidden, Unauthorized, Unavailable};
use crate::params::{cursor_int, decode_cursor, encode_cursor, hex_bytes, Pairs, Params};
use crate::sensor::{self, PushProblem, PushReport};
use crate::Problem;

/// The largest push body, in bytes (`docs/protocol.md` 3.5).
pub const MAX_PUSH_BYTES: usize = sentinel_schema::limits::MAX_PUSH_BYTES;
/// The largest `limit` of a page of readings.
pub const MAX_LIMIT: usize = 500;
/// The `limit` of a page of readings when none is given.
pub const DEFAULT_LIMIT: usize = 100;
/// The smallest `bucket_ms`.
pub const MIN_BUCKET_MS: u64 = 1000;
/// The most buckets one series of a downsampled answer may span.
pub const MAX_BUCKETS: u64 = 10_000;

const READINGS_PARAMS: &[&str] = &[
    "sensor",
    "kind",
    "name",
    "from",
    "to",
    "bbox",
    "limit",
    "after",
    "bucket_ms",
];

/// The problem+json answer to a refused push.
pub fn refused(r: &PushRefusal) -> Response {
    sensor::refused(&sensor::Refusal {
        status: r.status,
        code: r.code,
        detail: r.detail.clone(),
        index: r.index,
        seqs: r.seqs,
    })
}

/// `POST /api/v1/sensors/entries`: see the module docs.
#[utoipa::path(
    post,
    path = "/api/v1/sensors/entries",
    tag = "sensors",
    request_body(content = Vec<u8>, content_type = "application/cbor",
        description = "A push body (docs/protocol.md 3.5): one signed entry, or \
            [certificate or null, [signed entry…]]."),
    responses(
        (status = 200, description = "Every entry is committed (stored now, or held already).",
            body = PushReport),
        (status = 400, description = "The body or an entry does not decode, mixed authors, \
            seqs out of order (`code`).",
            body = PushProblem, content_type = "application/problem+json"),
        (status = 403, description = "Certificate, signature, revocation or role refused (`code`).",
            body = PushProblem, content_type = "application/problem+json"),
        (status = 409, description = "The chain does not extend what the receiver holds: gap, \
            wrong prev, fork (`code`).",
            body = PushProblem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over its bound.",
            body = PushProblem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not application/cbor.",
            body = PushProblem, content_type = "application/problem+json"),
        (status = 422, description = "A reading or clock more than 5 minutes ahead of the \
            receiver's (`code`).",
            body = PushProblem, content_type = "application/problem+json"),
        (status = 503, description = "The receiver could not store the push, or cannot check \
            certificates: retry later.",
            body = PushProblem, content_type = "application/problem+json"),
    )
)]
pub async fn push(State(api): State<Api>, headers: HeaderMap, body: Body) -> Response {
    if !sensor::is_cbor(&headers) {
        return sensor::not_cbor();
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_PUSH_BYTES as u64) {
        return sensor::too_large(MAX_PUSH_BYTES);
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PUSH_BYTES).await else {
        return sensor::too_large(MAX_PUSH_BYTES);
    };
    let now = api.backend.clock().now_ms();
    match api.backend.push(bytes, now).await {
        Ok(report) => Json(report).into_response(),
        Err(refusal) => refused(&refusal),
    }
}

/// The query of `GET /api/v1/sensors/readings`. Any other parameter, or one
/// given twice, is refused (400).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ReadingsQuery {
    /// Only this sensor's readings (its key, 64 hex digits).
    #[param(pattern = "^[0-9a-fA-F]{64}$")]
    pub sensor: Option<String>,
    /// Only readings of this kind, 1 to 64 bytes.
    #[param(min_length = 1, max_length = 64)]
    pub kind: Option<String>,
    /// Only values of this name, 1 to 64 bytes.
    #[param(min_length = 1, max_length = 64)]
    pub name: Option<String>,
    /// Measured from this time (Unix ms), inclusive.
    #[param(minimum = 0)]
    pub from: Option<i64>,
    /// Measured before this time (Unix ms); not before `from`.
    #[param(minimum = 0)]
    pub to: Option<i64>,
    /// `minLon,minLat,maxLon,maxLat` in degrees; `minLon > maxLon` crosses
    /// the antimeridian.
    pub bbox: Option<String>,
    /// Values per page (default 100); not with `bucket_ms`.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next` of the previous page (opaque); not with `bucket_ms`.
    pub after: Option<String>,
    /// Downsample: min, max, average and count per name, unit and bucket
    /// of this many ms (at least 1000; needs `sensor` or `kind`).
    #[param(minimum = 1000)]
    pub bucket_ms: Option<i64>,
}

/// One value of a sensor reading.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Reading {
    /// The sensor's key, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sensor: String,
    #[schema(minimum = 1)]
    pub seq: u64,
    /// The entry that carried it, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub entry: String,
    pub kind: String,
    pub name: String,
    pub value: f64,
    pub unit: String,
    /// When it was measured, Unix ms.
    pub measured_ms: i64,
    /// Where, if the reading says.
    pub location: Option<Location>,
}

impl From<&ReadingRow> for Reading {
    fn from(r: &ReadingRow) -> Reading {
        Reading {
            sensor: r.sensor.to_hex(),
            seq: r.seq,
            entry: r.entry.to_hex(),
            kind: r.kind.clone(),
            name: r.name.clone(),
            value: r.value,
            unit: r.unit.clone(),
            measured_ms: r.measured_ms,
            location: r.location.map(|p| Location {
                lon: p.lon(),
                lat: p.lat(),
            }),
        }
    }
}

/// The values of one name and unit in one bucket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Bucket {
    pub name: String,
    pub unit: String,
    /// The bucket's start, a multiple of `bucket_ms`, Unix ms.
    pub start_ms: i64,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    #[schema(minimum = 1)]
    pub count: u64,
}

impl From<&ReadingBucket> for Bucket {
    fn from(b: &ReadingBucket) -> Bucket {
        Bucket {
            name: b.name.clone(),
            unit: b.unit.clone(),
            start_ms: b.start_ms,
            min: b.min,
            max: b.max,
            avg: b.avg,
            count: b.count,
        }
    }
}

/// Readings: a page of values (`items`, `next`), ascending by measured
/// time; or, with `bucket_ms`, their buckets (`bucket_ms`, `buckets`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readings {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub items: Option<Vec<Reading>>,
    /// The `after` of the next page; `null` on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub next: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, minimum = 1000)]
    pub bucket_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub buckets: Option<Vec<Bucket>>,
}

/// A sensor this server holds readings of.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SensorItem {
    /// Its key, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sensor: String,
    /// Its certificate's common name, if the server holds a certificate
    /// the CA vouches for.
    pub name: Option<String>,
    /// The kinds of its readings, sorted.
    pub kinds: Vec<String>,
    pub n_readings: u64,
    pub last_seq: u64,
    pub last_measured_ms: i64,
    /// Where its newest located reading was.
    pub last_location: Option<Location>,
    /// Forks of its chain kept as evidence.
    pub forks: u64,
}

impl SensorItem {
    fn of(s: &SensorSeen, name: Option<String>) -> SensorItem {
        SensorItem {
            sensor: s.sensor.to_hex(),
            name,
            kinds: s.kinds.clone(),
            n_readings: s.n_readings,
            last_seq: s.last_seq,
            last_measured_ms: s.last_measured_ms,
            last_location: s.last_location.map(|p| Location {
                lon: p.lon(),
                lat: p.lat(),
            }),
            forks: s.n_forks,
        }
    }
}

/// Every sensor this server holds readings of.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SensorList {
    pub items: Vec<SensorItem>,
}

/// The filter of `GET /api/v1/sensors/readings`.
pub fn reading_filter(p: &Params) -> Result<ReadingFilter, Problem> {
    let sensor = p.hex_id::<32>("sensor")?.map(AuthorId);
    let text = |name: &str| -> Result<Option<String>, Problem> {
        match p.get(name) {
            Some(v) if v.is_empty() || v.len() > MAX_KIND_BYTES || v.contains('\0') => {
                Err(Problem::bad_param(
                    name,
                    format!("`{name}` must be 1 to {MAX_KIND_BYTES} bytes, without NUL"),
                ))
            }
            v => Ok(v.map(str::to_owned)),
        }
    };
    let (from, to) = p.range()?;
    Ok(ReadingFilter {
        sensor,
        kind: text("kind")?,
        name: text("name")?,
        from: from.map(|v| v.unsigned_abs()),
        to: to.map(|v| v.unsigned_abs()),
        area: bbox(p)?,
    })
}

fn reading_cursor(after: &str) -> Result<ReadingCursor, Problem> {
    let bad = || Problem::bad_param("after", "`after` is not a cursor this API handed out");
    let fields = decode_cursor(after, 3)?;
    Ok(ReadingCursor {
        measured_ms: cursor_int::<i64>(&fields[0])?,
        entry: EntryId(hex_bytes::<32>(&fields[1]).ok_or_else(bad)?),
        n: cursor_int::<u16>(&fields[2])?,
    })
}

fn reading_cursor_text(c: &ReadingCursor) -> String {
    encode_cursor(&[c.measured_ms.to_string(), c.entry.to_hex(), c.n.to_string()])
}

/// `GET /api/v1/sensors/readings`.
#[utoipa::path(
    get,
    path = "/api/v1/sensors/readings",
    tag = "sensors",
    params(ReadingsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of values ascending by measured time, or \
            with `bucket_ms` their buckets.", body = Readings),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub async fn readings(
    State(api): State<Api>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<Readings>, Problem> {
    caller.may(Action::ReadReadings, None)?;
    let p = Params::from_query(query, READINGS_PARAMS)?;
    let filter = reading_filter(&p)?;
    let bucket_ms = p.parsed::<u64>("bucket_ms", "milliseconds, an integer >= 1000")?;
    if let Some(bucket_ms) = bucket_ms {
        if bucket_ms < MIN_BUCKET_MS {
            return Err(Problem::bad_param(
                "bucket_ms",
                format!("`bucket_ms` must be at least {MIN_BUCKET_MS}"),
            ));
        }
        for name in ["limit", "after"] {
            if p.get(name).is_some() {
                return Err(Problem::bad_param(
                    name,
                    format!(
                        "`{name}` pages raw readings; downsampled answers are bounded by \
                         `bucket_ms`"
                    ),
                ));
            }
        }
        if filter.sensor.is_none() && filter.kind.is_none() {
            return Err(Problem::bad_param(
                "bucket_ms",
                "downsampling needs `sensor` or `kind` (values of different kinds do not mix)",
            ));
        }
        let Some(buckets) = api
            .backend
            .reading_buckets(filter, bucket_ms, MAX_BUCKETS)
            .await?
        else {
            return Err(Problem::bad_param(
                "bucket_ms",
                format!(
                    "more than {MAX_BUCKETS} buckets: choose a wider `bucket_ms` or a \
                     narrower `from`/`to`"
                ),
            ));
        };
        return Ok(Json(Readings {
            items: None,
            next: None,
            bucket_ms: Some(bucket_ms),
            buckets: Some(buckets.iter().map(Bucket::from).collect()),
        }));
    }
    let limit = p
        .limit(DEFAULT_LIMIT as i64, MAX_LIMIT as i64)?
        .unsigned_abs() as usize;
    let after = p.get("after").map(reading_cursor).transpose()?;
    let mut rows = api.backend.readings(filter, after, limit + 1).await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = match rows.last() {
        Some(last) if more => Some(reading_cursor_text(&last.cursor())),
        _ => None,
    };
    Ok(Json(Readings {
        items: Some(rows.iter().map(Reading::from).collect()),
        next: Some(next),
        bucket_ms: None,
        buckets: None,
    }))
}

/// `GET /api/v1/sensors`: every sensor the server holds readings of.
#[utoipa::path(
    get,
    path = "/api/v1/sensors",
    tag = "sensors",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every sensor this server holds readings of.",
            body = SensorList),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub async fn sensors(
    State(api): State<Api>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<SensorList>, Problem> {
    caller.may(Action::ReadReadings, None)?;
    Params::from_query(query, &[])?;
    let seen = api.backend.sensors().await?;
    Ok(Json(SensorList {
        items: seen
            .iter()
            .map(|(s, name)| SensorItem::of(s, name.clone()))
            .collect(),
    }))
}

/// The query of `GET /api/v1/sensors/alerts`. Any other parameter, or one
/// given twice, is refused (400).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RuleAlertsQuery {
    /// Only this sensor's triggers (its key, 64 hex digits).
    #[param(pattern = "^[0-9a-fA-F]{64}$")]
    pub sensor: Option<String>,
    /// Most items (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// A rule that fired: the newest event it raised from one sensor.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleAlert {
    /// The sensor's key, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sensor: String,
    /// The rule's id in the server's rules file.
    pub rule: String,
    /// The event raised, 32 hex digits.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub event: String,
    /// The server's entry that reported the event, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub entry: String,
    /// The entry that carried the triggering reading, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub reading: String,
    /// When that reading was measured, Unix ms.
    pub measured_ms: u64,
    /// When the server raised the event, Unix ms.
    pub raised_ms: u64,
}

impl From<&RuleTrigger> for RuleAlert {
    fn from(t: &RuleTrigger) -> RuleAlert {
        RuleAlert {
            sensor: t.sensor.to_hex(),
            rule: t.rule.clone(),
            event: t.event.to_hex(),
            entry: t.entry.to_hex(),
            reading: t.reading.to_hex(),
            measured_ms: t.measured_ms,
            raised_ms: t.raised_ms,
        }
    }
}

/// The rules that fired, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleAlertList {
    pub items: Vec<RuleAlert>,
}

/// `GET /api/v1/sensors/alerts`: the rules this server's sensor rules
/// fired.
#[utoipa::path(
    get,
    path = "/api/v1/sensors/alerts",
    tag = "sensors",
    params(RuleAlertsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Per rule and sensor the newest event the rule raised, \
            newest first.", body = RuleAlertList),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub async fn rule_alerts(
    State(api): State<Api>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<RuleAlertList>, Problem> {
    caller.may(Action::ReadReadings, None)?;
    let p = Params::from_query(query, &["sensor", "limit"])?;
    let sensor = p.hex_id::<32>("sensor")?.map(AuthorId);
    let limit = p
        .limit(DEFAULT_LIMIT as i64, MAX_LIMIT as i64)?
        .unsigned_abs() as usize;
    let triggers = api.backend.rule_triggers(sensor, limit).await?;
    Ok(Json(RuleAlertList {
        items: triggers.iter().take(limit).map(RuleAlert::from).collect(),
    }))
}
