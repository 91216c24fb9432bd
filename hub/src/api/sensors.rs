//! Sensors: `POST /api/v1/sensors/entries` (a sensor pushes signed
//! readings, `docs/protocol.md` part 3), `GET /api/v1/sensors/readings`
//! (the readings time series) and `GET /api/v1/sensors` (the sensors
//! seen). See [`crate::sensors`] for what a push does.
//!
//! **Push.** No bearer token: each entry's signature and the CA's
//! certificate authenticate. `Content-Type: application/cbor` (else 415),
//! at most 1 MiB (else 413, refused by its `Content-Length` before the
//! body is read, and while reading without one). 200 is the push report
//! (3.6); every refusal is a problem (`urn:sentinel:problem:push-refused`)
//! with `code` and, when one entry is at fault, `index`, `seq` and
//! `head_seq` (3.7). Behind the same rate limit as every `/api/v1` route.
//!
//! **Readings.** One item per value of a reading, ascending by measured
//! time (then entry id, then the value's position), keyset-paged
//! (`limit`, `after`). Filters: `sensor` (64 hex digits), `kind`, `name`
//! (the value's name), `from` (inclusive) / `to` (exclusive) on
//! `measured_ms`, `bbox=minLon,minLat,maxLon,maxLat` (readings without a
//! location are left out). With `bucket_ms=N` (N ≥ 1000; needs `sensor`
//! or `kind`) the answer is downsampled instead: per value name, unit and
//! bucket of N ms of measured time (buckets start at multiples of N),
//! `min`, `max`, `avg` and `count`, not paged; at most 10,000 buckets per
//! series (the span of `from`..`to`, or of the matching readings), else
//! 400 naming `bucket_ms`.
//!
//! **Sensors.** Every sensor the hub holds readings of: `sensor` (key),
//! `name` (its certificate's common name, if held), `kinds`,
//! `n_readings`, `last_measured_ms`, `last_location`, and `forks` (forks
//! of its chain kept as evidence: a sensor that signed two histories).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sentinel_http::openapi::{BadRequest, Forbidden, Unauthorized, Unavailable};
use sentinel_http::params::{check_lon_lat, cursor_int, decode_cursor, encode_cursor, hex_bytes};
use sentinel_http::sensor;
use sentinel_schema::access::Action;
use sentinel_schema::{AuthorId, EntryId};
use sentinel_sync::push::{PushError, MAX_PUSH_BYTES};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::{common_name, params, ApiState, Caller, Pairs, Problem, DEFAULT_LIMIT, MAX_LIMIT};
use crate::sensors::IngestError;
use crate::store::readings::{ReadingCursor, ReadingFilter};

/// The smallest `bucket_ms`.
pub const MIN_BUCKET_MS: i64 = 1000;
/// The most buckets one series of a downsampled answer may span.
pub const MAX_BUCKETS: i64 = 10_000;

use crate::now_ms;

/// A push refusal as `docs/protocol.md` 3.7 writes it.
fn refused(e: &PushError<crate::StoreError>) -> Response {
    let detail = match e {
        // The cause is the operator's business, not the sensor's.
        PushError::Store(cause) => {
            tracing::error!("sensor push: the store failed: {cause}");
            sensor::STORE_FAILED.to_owned()
        }
        other => other.to_string(),
    };
    sensor::refused(&sensor::Refusal {
        status: e.status(),
        code: e.code(),
        detail,
        index: e.index(),
        seqs: e.seqs(),
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
            body = sensor::PushReport),
        (status = 400, description = "The body or an entry does not decode, mixed authors, seqs out of order (`code`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Certificate, signature, revocation or role refused (`code`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The chain does not extend what the hub holds: gap, wrong prev, fork (`code`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB.",
            body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not application/cbor.",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A reading or clock more than 5 minutes ahead of the hub's (`code`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The hub could not store the push: retry later.",
            body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn push_entries(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !sensor::is_cbor(&headers) {
        return sensor::not_cbor();
    }
    let too_large = || sensor::too_large(MAX_PUSH_BYTES);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_PUSH_BYTES as u64) {
        return too_large();
    }
    let Some(ingest) = state.sensors.clone() else {
        return Problem::unavailable(&"sensor pushes are not served by this process")
            .into_response();
    };
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PUSH_BYTES).await else {
        return too_large();
    };
    match ingest.push(bytes.to_vec(), now_ms()).await {
        Ok(ingested) => Json(&ingested.accepted.report).into_response(),
        Err(IngestError::Push(e)) => refused(&e),
        Err(e) => {
            tracing::error!("sensor push: {e}");
            sensor::push_problem(503, "store_failed", sensor::STORE_FAILED)
        }
    }
}

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

/// The query of `GET /api/v1/sensors/readings`. Any other parameter, or
/// one given twice, is refused (400).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ReadingsQuery {
    /// Only this sensor's readings (its key, 64 hex digits).
    #[param(pattern = "^[0-9a-fA-F]{64}$")]
    pub sensor: Option<String>,
    /// Only readings of this kind (`water_gauge`).
    #[param(min_length = 1, max_length = 64)]
    pub kind: Option<String>,
    /// Only values of this name (`level`).
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
    /// Items per page (raw values only).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next` of the previous page (opaque; raw values only).
    pub after: Option<String>,
    /// Downsample into buckets of this many ms (needs `sensor` or `kind`).
    #[param(minimum = 1000)]
    pub bucket_ms: Option<i64>,
}

/// A value of a reading.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReadingValue {
    /// The reading's entry id, 64 hex digits.
    pub entry: String,
    /// The sensor's key, 64 hex digits.
    pub sensor: String,
    #[schema(minimum = 1)]
    pub seq: i64,
    pub kind: String,
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub measured_ms: i64,
    /// Where it was measured, if the reading says.
    pub location: Option<super::openapi::Location>,
}

/// Values of one name and unit in one bucket.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReadingBucket {
    pub name: String,
    pub unit: String,
    /// The bucket's start, Unix ms (a multiple of `bucket_ms`).
    pub start_ms: i64,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    #[schema(minimum = 1)]
    pub count: i64,
}

/// A page of values, or (with `bucket_ms`) the buckets.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReadingPage {
    /// Raw values (without `bucket_ms`).
    #[schema(required = false)]
    pub items: Vec<ReadingValue>,
    /// The `after` of the next page; `null` on the last (raw values only).
    #[schema(required = false)]
    pub next: Option<String>,
    /// The bucket width asked for (with `bucket_ms` only).
    #[schema(required = false)]
    pub bucket_ms: i64,
    /// The buckets (with `bucket_ms` only).
    #[schema(required = false)]
    pub buckets: Vec<ReadingBucket>,
}

/// A text filter: 1 to 64 bytes, no NUL.
fn name_param(p: &sentinel_http::params::Params, field: &str) -> Result<Option<String>, Problem> {
    match p.get(field) {
        None => Ok(None),
        Some(v) if !v.is_empty() && v.len() <= 64 && !v.contains('\0') => Ok(Some(v.to_owned())),
        Some(_) => Err(Problem::bad_param(
            field,
            format!("`{field}` must be 1 to 64 bytes, without NUL"),
        )),
    }
}

fn location_json(location: Option<(f64, f64)>) -> Value {
    location.map_or(Value::Null, |(lon, lat)| json!({"lon": lon, "lat": lat}))
}

/// `GET /api/v1/sensors/readings`: see the module docs.
#[utoipa::path(
    get,
    path = "/api/v1/sensors/readings",
    tag = "sensors",
    params(ReadingsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of values, oldest measured first; or the buckets.",
            body = ReadingPage),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub(super) async fn readings(
    State(ApiState { store, .. }): State<ApiState>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<Value>, Problem> {
    caller.may(Action::ReadReadings, None)?;
    let p = params(query, READINGS_PARAMS)?;
    let sensor = p.hex_id::<32>("sensor")?.map(AuthorId);
    let kind = name_param(&p, "kind")?;
    let name = name_param(&p, "name")?;
    let (from, to) = p.range()?;
    let bbox = match p.numbers("bbox", 4, "minLon,minLat,maxLon,maxLat")? {
        Some(b) => {
            check_lon_lat("bbox", b[0], b[1])?;
            check_lon_lat("bbox", b[2], b[3])?;
            if b[1] > b[3] {
                return Err(Problem::bad_param(
                    "bbox",
                    format!("minLat {} is above maxLat {}", b[1], b[3]),
                ));
            }
            Some([b[0], b[1], b[2], b[3]])
        }
        None => None,
    };
    let filter = ReadingFilter {
        sensor,
        kind,
        name,
        from,
        to,
        bbox,
    };
    let bucket_ms = p.parsed::<i64>("bucket_ms", "an integer number of milliseconds >= 1000")?;
    if let Some(bucket_ms) = bucket_ms {
        for paged in ["limit", "after"] {
            if p.get(paged).is_some() {
                return Err(Problem::bad_param(
                    paged,
                    format!("`{paged}` pages raw values; buckets are not paged"),
                ));
            }
        }
        return buckets(&store, &filter, bucket_ms).await;
    }
    let limit = p.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = match p.get("after") {
        Some(c) => {
            let f = decode_cursor(c, 3)?;
            let bad = || Problem::bad_param("after", "`after` is not a cursor this API handed out");
            Some(ReadingCursor {
                measured_ms: cursor_int(&f[0])?,
                entry: EntryId(hex_bytes::<32>(&f[1]).ok_or_else(bad)?),
                n: cursor_int(&f[2])?,
            })
        }
        None => None,
    };
    let rows = store.readings(&filter, after, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    let rows = &rows[..rows.len().min(limit as usize)];
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "entry": r.entry.to_hex(),
                "sensor": r.sensor.to_hex(),
                "seq": r.seq,
                "kind": r.kind,
                "name": r.name,
                "value": r.value,
                "unit": r.unit,
                "measured_ms": r.measured_ms,
                "location": location_json(r.location),
            })
        })
        .collect();
    let next = match rows.last() {
        Some(r) if more => Some(encode_cursor(&[
            r.measured_ms.to_string(),
            r.entry.to_hex(),
            r.n.to_string(),
        ])),
        _ => None,
    };
    Ok(Json(json!({ "items": items, "next": next })))
}

async fn buckets(
    store: &crate::PgStore,
    filter: &ReadingFilter,
    bucket_ms: i64,
) -> Result<Json<Value>, Problem> {
    if bucket_ms < MIN_BUCKET_MS {
        return Err(Problem::bad_param(
            "bucket_ms",
            format!("`bucket_ms` is {bucket_ms}, at least {MIN_BUCKET_MS}"),
        ));
    }
    if filter.sensor.is_none() && filter.kind.is_none() {
        return Err(Problem::bad_param(
            "bucket_ms",
            "`bucket_ms` needs `sensor` or `kind`: buckets mix every value they hold",
        ));
    }
    let span = match (filter.from, filter.to) {
        (Some(from), Some(to)) => Some((from, to.saturating_sub(1).max(from))),
        _ => store.readings_span(filter).await?.map(|(lo, hi)| {
            (
                filter.from.unwrap_or(lo),
                filter.to.map_or(hi, |t| t.saturating_sub(1)),
            )
        }),
    };
    if let Some((lo, hi)) = span {
        let n = hi.div_euclid(bucket_ms) - lo.div_euclid(bucket_ms) + 1;
        if n > MAX_BUCKETS {
            return Err(Problem::bad_param(
                "bucket_ms",
                format!(
                    "{n} buckets of {bucket_ms} ms; at most {MAX_BUCKETS}: widen `bucket_ms` or \
                     narrow `from`/`to`"
                ),
            ));
        }
    }
    let buckets: Vec<Value> = store
        .reading_buckets(filter, bucket_ms)
        .await?
        .iter()
        .map(|b| {
            json!({
                "name": b.name,
                "unit": b.unit,
                "start_ms": b.start_ms,
                "min": b.min,
                "max": b.max,
                "avg": b.avg,
                "count": b.count,
            })
        })
        .collect();
    Ok(Json(json!({ "bucket_ms": bucket_ms, "buckets": buckets })))
}

/// A sensor the hub holds readings of.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Sensor {
    /// Its key, 64 hex digits.
    pub sensor: String,
    /// Its certificate's common name, if the hub holds the certificate.
    pub name: Option<String>,
    pub kinds: Vec<String>,
    #[schema(minimum = 1)]
    pub n_readings: i64,
    pub last_measured_ms: i64,
    pub last_location: Option<super::openapi::Location>,
    /// Forks of its chain kept as evidence.
    #[schema(minimum = 0)]
    pub forks: i64,
}

/// Every sensor.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SensorList {
    pub items: Vec<Sensor>,
}

/// `GET /api/v1/sensors`: see the module docs.
#[utoipa::path(
    get,
    path = "/api/v1/sensors",
    tag = "sensors",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every sensor the hub holds readings of, by key.",
            body = SensorList),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub(super) async fn sensors(
    State(ApiState { store, .. }): State<ApiState>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<Value>, Problem> {
    caller.may(Action::ReadReadings, None)?;
    params(query, &[])?;
    let items: Vec<Value> = store
        .sensors_seen()
        .await?
        .into_iter()
        .map(|s| {
            json!({
                "sensor": s.sensor.to_hex(),
                "name": s.certificate_der.as_deref().and_then(common_name),
                "kinds": s.kinds,
                "n_readings": s.n_readings,
                "last_measured_ms": s.last_measured_ms,
                "last_location": location_json(s.last_location),
                "forks": s.n_forks,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}
