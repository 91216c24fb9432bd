//! Sensors: the push route sensors send their readings to, and the
//! readings and sensors that officers and admins read.
//!
//! `POST /api/v1/sensors/entries` takes no token: each entry's signature
//! and the deployment CA's certificate are the authentication
//! (`docs/protocol.md` 3.6). It answers exactly as protocol 3.6–3.7 say:
//! 200 with the push report, or problem+json with `code` (and `index`,
//! `seq`, `head_seq` when one entry is at fault). The body is refused
//! from its `Content-Length` (413) before it is read, and counted while
//! read when it has none.
//!
//! `GET /api/v1/sensors/readings` lists values ascending by measured time
//! (`sensor`, `kind`, `name`, `from`, `to` (exclusive), `bbox`, `limit`,
//! `after`), or with `bucket_ms` (at least 1000, and `sensor` or `kind`)
//! their min, max, average and count per name, unit and bucket.
//! `GET /api/v1/sensors` lists the sensors seen, with their forks.

use axum::body::Body;
use axum::extract::State;
use std::sync::PoisonError;

use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sentinel_http::params::{decode_cursor, encode_cursor};
use sentinel_http::sensor;
use sentinel_schema::access::Action;
use sentinel_schema::{AuthorId, EntryId};
use sentinel_sync::push::{self, PushError, MAX_PUSH_BYTES};
use serde_json::{json, Value};

use super::params::{Pairs, Params};
use super::{now_ms, with_node, write_node, ApiState, Caller, Problem};
use crate::spatial::BBox;
use crate::store::readings::{ReadingCursor, ReadingFilter, ReadingRow};
use crate::store::StoreError;

/// The page size of raw readings when `limit` is not given.
const DEFAULT_LIMIT: i64 = 100;
/// The largest page of raw readings.
const MAX_LIMIT: i64 = 1000;
/// The narrowest bucket.
pub const MIN_BUCKET_MS: u64 = 1000;
/// The most buckets one downsampled answer holds.
pub const MAX_BUCKETS: usize = 10_000;

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

/// A refused push, as `docs/protocol.md` 3.7 writes it.
fn refused(e: &PushError<StoreError>) -> Response {
    let detail = match e {
        // The store's words stay in the log.
        PushError::Store(cause) => {
            tracing::error!(error = %cause, "storing a sensor push failed");
            sensor::STORE_FAILED.to_owned()
        }
        _ => e.to_string(),
    };
    sensor::refused(&sensor::Refusal {
        status: e.status(),
        code: e.code(),
        detail,
        index: e.index(),
        seqs: e.seqs(),
    })
}

/// `POST /api/v1/sensors/entries`: one signed entry or a batch, all or
/// nothing.
#[utoipa::path(
    post,
    path = "/api/v1/sensors/entries",
    tag = "sensors",
    request_body(content = Vec<u8>, content_type = "application/cbor",
        description = "A push body (docs/protocol.md 3.5): one signed entry, or \
            [certificate or null, [signed entry…]]."),
    responses(
        (status = 200, description = "Every entry is committed (stored now, or held already).",
            body = sentinel_http::sensor::PushReport),
        (status = 400, description = "The body or an entry does not decode, mixed authors, \
            seqs out of order (`code`).",
            body = sentinel_http::sensor::PushProblem, content_type = "application/problem+json"),
        (status = 403, description = "Certificate, signature, revocation or role refused (`code`).",
            body = sentinel_http::sensor::PushProblem, content_type = "application/problem+json"),
        (status = 409, description = "The chain does not extend what the node holds: gap, \
            wrong prev, fork (`code`).",
            body = sentinel_http::sensor::PushProblem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB.",
            body = sentinel_http::sensor::PushProblem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not application/cbor.",
            body = sentinel_http::sensor::PushProblem, content_type = "application/problem+json"),
        (status = 422, description = "A reading or clock more than 5 minutes ahead of the \
            node's (`code`).",
            body = sentinel_http::sensor::PushProblem, content_type = "application/problem+json"),
        (status = 503, description = "The node could not store the push, or is not enrolled: \
            retry later.",
            body = sentinel_http::sensor::PushProblem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn push(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(ingest) = state.ingest.clone() else {
        return sensor::push_problem(
            503,
            "store_failed",
            "this node is not enrolled, so it cannot check sensors' certificates",
        );
    };
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
    // Checks up to the chain (the signatures above all) off the node's
    // lock, which is taken only to read the sensor's certificate and head;
    // then the chain and the store under it. Concurrent sensors verify in
    // parallel and serialise only on the apply.
    let now = now_ms();
    let node = state.node.clone();
    let verifier = ingest.clone();
    let verified = tokio::task::spawn_blocking(move || {
        verifier.verify(&bytes, now, |author, certificate| {
            // A read: a poisoned lock fails the apply below, not this.
            let node = node.lock().unwrap_or_else(PoisonError::into_inner);
            push::stored(&*node, author, certificate)
        })
    })
    .await;
    let verified = match verified {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return refused(&e),
        Err(e) => return Problem::unavailable(&e).into_response(),
    };
    let received = write_node(&state, move |node| {
        Ok(ingest.apply(node, verified, now_ms()))
    })
    .await;
    match received {
        Ok(Ok(ingested)) => Json(ingested.report).into_response(),
        Ok(Err(e)) => refused(&e),
        Err(p) => p.into_response(),
    }
}

/// The filter of `GET /api/v1/sensors/readings`.
fn filter(p: &Params) -> Result<ReadingFilter, Problem> {
    let sensor = p.hex_id::<32>("sensor")?.map(AuthorId);
    let text = |name: &str| -> Result<Option<String>, Problem> {
        match p.get(name) {
            Some(v) if v.is_empty() || v.len() > sentinel_schema::limits::MAX_KIND_BYTES => {
                Err(Problem::bad_param(
                    name,
                    format!(
                        "`{name}` must be 1 to {} bytes",
                        sentinel_schema::limits::MAX_KIND_BYTES
                    ),
                ))
            }
            v => Ok(v.map(str::to_owned)),
        }
    };
    let (from, to) = p.range()?;
    let bbox = match p.numbers("bbox", 4, "minLon,minLat,maxLon,maxLat")? {
        Some(b) => Some(
            BBox::new(b[0], b[1], b[2], b[3])
                .map_err(|e| Problem::bad_param("bbox", e.to_string()))?,
        ),
        None => None,
    };
    Ok(ReadingFilter {
        sensor,
        kind: text("kind")?,
        name: text("name")?,
        from: from.map(|v| v as u64),
        to: to.map(|v| v as u64),
        bbox,
    })
}

fn reading_json(r: &ReadingRow) -> Value {
    json!({
        "sensor": r.sensor.to_hex(),
        "seq": r.seq,
        "entry": r.entry.to_hex(),
        "kind": r.kind,
        "name": r.name,
        "value": r.value,
        "unit": r.unit,
        "measured_ms": r.measured_ms,
        "location": r.location.map(|(lon, lat)| json!({"lon": lon, "lat": lat})),
    })
}

fn cursor(after: &str) -> Result<ReadingCursor, Problem> {
    let bad = || Problem::bad_param("after", "`after` is not a cursor this API handed out");
    let fields = decode_cursor(after, 3)?;
    let measured_ms = fields[0].parse::<i64>().map_err(|_| bad())?;
    let entry = sentinel_http::params::hex_bytes::<32>(&fields[1]).ok_or_else(bad)?;
    let n = fields[2].parse::<i64>().map_err(|_| bad())?;
    Ok(ReadingCursor {
        measured_ms,
        entry: EntryId(entry),
        n,
    })
}

/// `GET /api/v1/sensors/readings`.
#[utoipa::path(
    get,
    path = "/api/v1/sensors/readings",
    tag = "sensors",
    params(super::openapi::ReadingsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of values ascending by measured time, or \
            with `bucket_ms` their buckets.", body = super::openapi::Readings),
        sentinel_http::openapi::BadRequest,
        sentinel_http::openapi::Unauthorized,
        sentinel_http::openapi::Forbidden,
        sentinel_http::openapi::Unavailable,
    )
)]
pub(super) async fn readings(
    State(state): State<ApiState>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<Value>, Problem> {
    caller.may(Action::ReadReadings, None)?;
    let p = Params::from_query(query, READINGS_PARAMS)?;
    let f = filter(&p)?;
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
                    format!("`{name}` pages raw readings; downsampled answers are bounded by `bucket_ms`"),
                ));
            }
        }
        if f.sensor.is_none() && f.kind.is_none() {
            return Err(Problem::bad_param(
                "bucket_ms",
                "downsampling needs `sensor` or `kind` (values of different kinds do not mix)",
            ));
        }
        let buckets = with_node(&state, move |node| {
            node.catch_up_views()?;
            Ok(node.store().reading_buckets(&f, bucket_ms, MAX_BUCKETS)?)
        })
        .await?;
        let Some(buckets) = buckets else {
            return Err(Problem::bad_param(
                "bucket_ms",
                format!("more than {MAX_BUCKETS} buckets: choose a wider `bucket_ms` or a narrower `from`/`to`"),
            ));
        };
        let items: Vec<Value> = buckets
            .iter()
            .map(|b| {
                json!({
                    "name": b.name, "unit": b.unit, "start_ms": b.start_ms,
                    "min": b.min, "max": b.max, "avg": b.avg, "count": b.count,
                })
            })
            .collect();
        return Ok(Json(json!({ "bucket_ms": bucket_ms, "buckets": items })));
    }
    let limit = p.limit(DEFAULT_LIMIT, MAX_LIMIT)? as usize;
    let after = p.get("after").map(cursor).transpose()?;
    let rows = with_node(&state, move |node| {
        node.catch_up_views()?;
        Ok(node.store().readings(&f, after, limit)?)
    })
    .await?;
    let next = match rows.last() {
        Some(last) if rows.len() == limit => {
            let c = last.cursor();
            Some(encode_cursor(&[
                c.measured_ms.to_string(),
                c.entry.to_hex(),
                c.n.to_string(),
            ]))
        }
        _ => None,
    };
    let items: Vec<Value> = rows.iter().map(reading_json).collect();
    Ok(Json(json!({ "items": items, "next": next })))
}

/// `GET /api/v1/sensors`: every sensor the node holds readings of.
#[utoipa::path(
    get,
    path = "/api/v1/sensors",
    tag = "sensors",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every sensor this node holds readings of.",
            body = super::openapi::SensorList),
        sentinel_http::openapi::BadRequest,
        sentinel_http::openapi::Unauthorized,
        sentinel_http::openapi::Forbidden,
        sentinel_http::openapi::Unavailable,
    )
)]
pub(super) async fn sensors(
    State(state): State<ApiState>,
    caller: Caller,
    query: Pairs,
) -> Result<Json<Value>, Problem> {
    caller.may(Action::ReadReadings, None)?;
    Params::from_query(query, &[])?;
    let ca = state.ca.clone();
    let seen = with_node(&state, move |node| {
        node.catch_up_views()?;
        Ok(node.store().sensors_seen()?)
    })
    .await?;
    let items: Vec<Value> = seen
        .iter()
        .map(|s| {
            let name = match (&s.certificate_der, &ca) {
                (Some(der), Some(ca)) => sentinel_certs::verify_identity(der, ca)
                    .ok()
                    .filter(|id| id.author == s.sensor)
                    .map(|id| id.name),
                _ => None,
            };
            json!({
                "sensor": s.sensor.to_hex(),
                "name": name,
                "kinds": s.kinds,
                "n_readings": s.n_readings,
                "last_seq": s.last_seq,
                "last_measured_ms": s.last_measured_ms,
                "last_location": s.last_location.map(|(lon, lat)| json!({"lon": lon, "lat": lat})),
                "forks": s.n_forks,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}
