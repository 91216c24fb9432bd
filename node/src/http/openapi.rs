//! The node API's OpenAPI 3.1 document, served at `GET /api/v1/openapi.json`.
//!
//! Built from the same route lists as the router ([`super::api_routes`],
//! [`super::ops_routes`], with `utoipa-axum`): each handler's
//! `#[utoipa::path]` says its method, path, parameters, body and answers,
//! and the router is made from those annotations, so the two cannot drift.
//! This module holds what the annotations refer to: the shapes of the JSON
//! the handlers read and write (they use `serde_json` values; these types
//! only describe them, and the API fuzzer checks every answer against
//! them, see `docs/operations.md`), the query parameters of the routes
//! that take some, and the document's assembly. The shapes the hub's API
//! shares (signing in, an assignment, a point, errors) come from
//! `sentinel_http::openapi`; an event, a page and an export differ from
//! the hub's (a node lists summaries, shows notes and media, names the
//! reporter) and are described here.
//!
//! Never does: decide what a route accepts. The handlers check their own
//! input; the document describes it, and `node/tests/http/openapi.rs`
//! checks that it does.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use sentinel_http::openapi::{add_components, names_schema, rate_limited, Location};
use sentinel_schema::{BodyKind, Status};
use utoipa::openapi::schema::{ObjectBuilder, Schema};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder, RefOr};
use utoipa::{IntoParams, ToSchema};

use super::Problem;

/// The event id the document gives as an example (`api_fixture` seeds it,
/// reported).
pub const EXAMPLE_EVENT: &str = "01010101010101010101010101010101";
/// The example of the workflow steps from `in_progress` (`api_fixture`
/// seeds it so).
pub const EXAMPLE_IN_PROGRESS: &str = "02020202020202020202020202020202";
/// The example of the steps from `resolved`.
pub const EXAMPLE_RESOLVED: &str = "03030303030303030303030303030303";
/// The example of the steps from `closed`.
pub const EXAMPLE_CLOSED: &str = "04040404040404040404040404040404";
/// The example of the steps from `assigned`.
pub const EXAMPLE_ASSIGNED: &str = "05050505050505050505050505050505";
/// The media hash the document gives as an example: the SHA-256 of
/// [`EXAMPLE_MEDIA_BYTES`] (`api_fixture` attaches it to the example event).
pub const EXAMPLE_MEDIA: &str = "a9daccaecd68e446d76070cc759afcfb3b85f593361f2ab8daf19004e2c687b9";
/// A minimal JPEG (by its magic bytes, which is all the node checks).
pub const EXAMPLE_MEDIA_BYTES: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1,
];

/// The prefix of every route behind the rate limit.
pub const API_PREFIX: &str = "/api/v1";

/// The document, built once per process from the route lists.
pub fn document() -> &'static OpenApi {
    static DOCUMENT: OnceLock<OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let (_, api) = super::api_routes().split_for_parts();
        let (_, ops) = super::ops_routes().split_for_parts();
        let mut doc = OpenApiBuilder::new()
            .info(
                InfoBuilder::new()
                    .title("Sentinel node API")
                    .version(env!("CARGO_PKG_VERSION"))
                    .description(Some(
                        "A field node's API, for the officers' browsers and apps on the \
                         device: search, report and work events, attach media, read the \
                         outbox and the live feed. Who may call what: docs/security.md 3.3.",
                    ))
                    .build(),
            )
            .build()
            .merge_from(api)
            .merge_from(ops);
        add_components(&mut doc);
        rate_limited(&mut doc, API_PREFIX);
        needs_a_member(&mut doc, "EventChanges");
        doc
    })
}

/// Sets `minProperties: 1` on the object schema `name`. Not with
/// `#[schema(min_properties = 1)]`: utoipa-gen 5.5 writes that as
/// `maxProperties` (the API fuzzer caught it).
fn needs_a_member(doc: &mut OpenApi, name: &str) {
    let schema = doc
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut(name));
    if let Some(RefOr::T(Schema::Object(object))) = schema {
        object.min_properties = Some(1);
    }
}

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API.",
            body = Object, content_type = "application/json"),
        sentinel_http::openapi::Unavailable,
    )
)]
pub(super) async fn openapi_json() -> Response {
    static JSON: OnceLock<Result<String, String>> = OnceLock::new();
    match JSON.get_or_init(|| serde_json::to_string(document()).map_err(|e| e.to_string())) {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json.as_str()).into_response(),
        Err(e) => Problem::unavailable(e).into_response(),
    }
}

fn status_schema() -> ObjectBuilder {
    names_schema(Status::ALL.iter().map(|s| s.as_str()))
}

/// A kind of entry (`unknown` for a kind this node does not know).
fn entry_kind_schema() -> ObjectBuilder {
    names_schema(
        BodyKind::ALL
            .iter()
            .map(|k| k.as_str())
            .chain(std::iter::once("unknown")),
    )
}

/// `status`: one status, or several separated by commas.
fn statuses_schema() -> ObjectBuilder {
    let one = Status::ALL
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("|");
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(format!(r"^ *({one}) *(, *({one}) *)*$")))
}

/// An event in a page of `GET /api/v1/events`. For the public (redacted):
/// no `assignee`, `n_notes`, `has_conflicts` or `distance_m`, and the
/// location snapped to a 0.01° grid.
#[derive(ToSchema)]
pub struct EventSummary {
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub id: String,
    pub title: String,
    pub category: String,
    #[schema(minimum = 1, maximum = 5)]
    pub severity: i64,
    #[schema(schema_with = status_schema)]
    pub status: String,
    /// Who works it; `null` when nobody does.
    #[schema(required = false)]
    pub assignee: Option<String>,
    pub location: Location,
    /// When it was reported, Unix ms.
    #[schema(minimum = 0)]
    pub reported_ms: i64,
    #[schema(required = false, minimum = 0)]
    pub n_notes: i64,
    #[schema(minimum = 0)]
    pub n_media: i64,
    /// Whether concurrent edits conflicted (see `conflicts` of the event).
    #[schema(required = false)]
    pub has_conflicts: bool,
    /// Metres from `near`, when the search gave one.
    #[schema(required = false, minimum = 0)]
    pub distance_m: f64,
}

/// A page of events, newest report first.
#[derive(ToSchema)]
pub struct EventPage {
    pub items: Vec<EventSummary>,
    /// The `after` of the next page; `null` on the last page.
    pub next: Option<String>,
}

/// A note on an event.
#[derive(ToSchema)]
pub struct Note {
    pub text: String,
    /// Who wrote it, if known.
    pub actor: Option<String>,
    /// When, Unix ms.
    pub at_ms: i64,
}

/// A photo or video attached to an event.
#[derive(ToSchema)]
pub struct Media {
    /// Its SHA-256, 64 hex digits: `GET /api/v1/media/{hash}`.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub hash: String,
    /// Decided by its bytes: `image/jpeg`, `image/png`, `image/webp`,
    /// `video/mp4`.
    pub mime: String,
    #[schema(minimum = 0)]
    pub size: i64,
    /// Its file name, as uploaded.
    pub name: String,
}

/// An entry about an event, as its `history` shows it.
#[derive(ToSchema)]
pub struct HistoryEntry {
    /// The entry's id (its hash), 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub entry: String,
    /// The author's key, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub author: String,
    #[schema(minimum = 1)]
    pub seq: i64,
    /// Its hybrid logical clock, `wall_ms.counter`.
    #[schema(pattern = r"^[0-9]+\.[0-9]+$")]
    pub hlc: String,
    #[schema(schema_with = entry_kind_schema)]
    pub kind: String,
    /// The person the author acted for, if any.
    pub actor: Option<String>,
    /// Whether this node wrote it.
    pub local: bool,
}

/// An event as `GET /api/v1/events/{id}` shows it. For the public
/// (redacted): no `assignee`, `reported_by`, `notes`, `media`, `conflicts`
/// or `history`, `n_media` instead of `media`, and the location snapped to
/// a 0.01° grid. `conflicts` and `history` only for those who may read the
/// history (admins, officers).
#[derive(ToSchema)]
pub struct Event {
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub id: String,
    pub title: String,
    pub description: String,
    pub category: String,
    #[schema(minimum = 1, maximum = 5)]
    pub severity: i64,
    #[schema(schema_with = status_schema)]
    pub status: String,
    /// Who works it; `null` when nobody does.
    #[schema(required = false)]
    pub assignee: Option<String>,
    pub location: Location,
    /// When it was reported, Unix ms.
    #[schema(minimum = 0)]
    pub reported_ms: i64,
    /// Who reported it, if known.
    #[schema(required = false)]
    pub reported_by: Option<String>,
    #[schema(required = false)]
    pub notes: Vec<Note>,
    #[schema(required = false)]
    pub media: Vec<Media>,
    /// How many photos and videos it has (the public's view only).
    #[schema(required = false, minimum = 0)]
    pub n_media: i64,
    /// Concurrent edits the merge resolved: each field's competing values.
    #[schema(required = false)]
    pub conflicts: BTreeMap<String, Vec<String>>,
    /// Every entry about the event, in HLC order.
    #[schema(required = false)]
    pub history: Vec<HistoryEntry>,
}

/// The entry a write committed.
#[derive(ToSchema)]
pub struct Ack {
    /// The event, 32 hex digits.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub event: String,
    /// The entry, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub entry: String,
    /// Its seq in this node's chain.
    #[schema(minimum = 1)]
    pub seq: i64,
}

/// The entries an edit committed, one per field changed.
#[derive(ToSchema)]
pub struct Edited {
    pub entries: Vec<Ack>,
}

/// `POST /api/v1/events`: a new event, reported by the caller.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// Not blank, at most 200 bytes (without surrounding spaces), no
    /// control characters.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// At most 10000 bytes, no control characters but newline and tab.
    #[schema(required = false, max_length = 10000)]
    pub description: String,
    /// Not blank, at most 64 bytes.
    #[schema(min_length = 1, max_length = 64)]
    pub category: String,
    #[schema(minimum = 1, maximum = 5)]
    pub severity: i64,
    pub location: Location,
    /// When it happened, Unix ms; at most 5 minutes ahead of the node's
    /// clock. Default: now.
    #[schema(required = false, minimum = 0)]
    pub reported_ms: i64,
}

/// `PATCH /api/v1/events/{id}`: the fields to change (at least one), each
/// with the rules of [`NewEvent`].
// `minProperties: 1` is set by `document` (see `needs_a_member`).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventChanges {
    #[schema(required = false, min_length = 1, max_length = 200)]
    pub title: String,
    #[schema(required = false, max_length = 10000)]
    pub description: String,
    #[schema(required = false, min_length = 1, max_length = 64)]
    pub category: String,
    #[schema(required = false, minimum = 1, maximum = 5)]
    pub severity: i64,
    #[schema(required = false)]
    pub location: Location,
}

/// `POST /api/v1/events/{id}/notes`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    /// Not blank, at most 5000 bytes.
    #[schema(min_length = 1, max_length = 5000)]
    pub text: String,
}

/// `POST /api/v1/events/{id}/media`: `multipart/form-data`.
#[derive(ToSchema)]
pub struct MediaUpload {
    /// The bytes: JPEG, PNG, WebP or MP4 (decided by the bytes), at most
    /// 64 MiB.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// The name to record (default: the part's file name); at most 255
    /// bytes, no control characters.
    #[schema(required = false, max_length = 255)]
    pub name: String,
}

/// An entry written on this node that no hub has acknowledged yet.
#[derive(ToSchema)]
pub struct OutboxEntry {
    #[schema(minimum = 1)]
    pub seq: i64,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub entry: String,
    #[schema(schema_with = entry_kind_schema)]
    pub kind: String,
    /// The event it is about, if any.
    pub event: Option<String>,
    /// Its hybrid logical clock, `wall_ms.counter`.
    pub hlc: String,
    /// The wall-clock part of `hlc`, Unix ms.
    #[schema(minimum = 0)]
    pub hlc_ms: i64,
}

/// A hub's acknowledgement of this node's chain up to `seq`.
#[derive(ToSchema)]
pub struct Receipt {
    /// The hub's key, 64 hex digits.
    pub hub: String,
    /// The hub's name, from its certificate.
    pub hub_name: String,
    pub author: String,
    /// Every seq up to this one is acknowledged.
    #[schema(minimum = 0)]
    pub seq: i64,
    pub entry: String,
    /// When it arrived, Unix ms.
    #[schema(minimum = 0)]
    pub received_ms: i64,
}

/// What this node wrote that no hub acknowledged yet.
#[derive(ToSchema)]
pub struct Outbox {
    /// This node's key, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub author: String,
    #[schema(minimum = 0)]
    pub awaiting_receipt: i64,
    pub entries: Vec<OutboxEntry>,
    /// The newest receipt, `null` before the first.
    pub last_receipt: Option<Receipt>,
}

fn feature_collection_type() -> ObjectBuilder {
    names_schema(["FeatureCollection"])
}

fn feature_type() -> ObjectBuilder {
    names_schema(["Feature"])
}

fn point_type() -> ObjectBuilder {
    names_schema(["Point"])
}

/// The events a search finds, as a GeoJSON FeatureCollection (RFC 7946).
#[derive(ToSchema)]
pub struct FeatureCollection {
    #[schema(schema_with = feature_collection_type)]
    pub r#type: String,
    pub features: Vec<Feature>,
}

/// One event as a GeoJSON Feature.
#[derive(ToSchema)]
pub struct Feature {
    #[schema(schema_with = feature_type)]
    pub r#type: String,
    /// The event id, 32 hex digits.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub id: String,
    pub geometry: PointGeometry,
    pub properties: FeatureProperties,
}

/// A GeoJSON Point.
#[derive(ToSchema)]
pub struct PointGeometry {
    #[schema(schema_with = point_type)]
    pub r#type: String,
    /// `[lon, lat]`.
    #[schema(min_items = 2, max_items = 2)]
    pub coordinates: Vec<f64>,
}

/// An event's fields. For the public: no `assignee`, `created_by`,
/// `n_notes` or `conflicts`, and the point snapped to a 0.01° grid.
#[derive(ToSchema)]
pub struct FeatureProperties {
    pub title: String,
    pub description: String,
    pub category: String,
    #[schema(minimum = 1, maximum = 5)]
    pub severity: i64,
    #[schema(schema_with = status_schema)]
    pub status: String,
    #[schema(required = false)]
    pub assignee: Option<String>,
    #[schema(minimum = 0)]
    pub reported_ms: i64,
    /// Who reported it, if known.
    #[schema(required = false)]
    pub created_by: Option<String>,
    #[schema(required = false, minimum = 0)]
    pub n_notes: i64,
    #[schema(minimum = 0)]
    pub n_media: i64,
    #[schema(required = false)]
    pub conflicts: BTreeMap<String, Vec<String>>,
}

/// The query of `GET /api/v1/events`. Any other parameter, or one given
/// twice, is refused (400). The public may not use `q`, `near` or
/// `radius`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// `minLon,minLat,maxLon,maxLat` in degrees.
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
    /// Items per page (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next` of the previous page (opaque).
    pub after: Option<String>,
}

/// The query of `GET /api/v1/export.geojson`: the filters of
/// `GET /api/v1/events`, without the page. Any other parameter, or one
/// given twice, is refused (400). The public may not use `q`, `near` or
/// `radius`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `minLon,minLat,maxLon,maxLat` in degrees.
    pub bbox: Option<String>,
    /// `lon,lat` in degrees; needs `radius`.
    pub near: Option<String>,
    /// Metres around `near`, in (0, 20100000]; needs `near`.
    #[param(exclusive_minimum = 0, maximum = 20_100_000)]
    pub radius: Option<f64>,
    /// Words that must all occur in the title, description or notes.
    #[param(min_length = 1, max_length = 1000)]
    pub q: Option<String>,
    /// One status, or several separated by commas.
    #[param(schema_with = statuses_schema)]
    pub status: Option<String>,
    #[param(min_length = 1, max_length = 64)]
    pub category: Option<String>,
    #[param(minimum = 1, maximum = 5)]
    pub min_severity: Option<i64>,
    #[param(minimum = 1, maximum = 5)]
    pub max_severity: Option<i64>,
    #[param(minimum = 0)]
    pub from: Option<i64>,
    #[param(minimum = 0)]
    pub to: Option<i64>,
}

/// The query of `GET /api/v1/sensors/readings`. Any other parameter, or one
/// given twice, is refused (400).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
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
    /// `minLon,minLat,maxLon,maxLat` in degrees.
    pub bbox: Option<String>,
    /// Values per page (default 100); not with `bucket_ms`.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next` of the previous page (opaque); not with `bucket_ms`.
    pub after: Option<String>,
    /// Downsample: min, max, average and count per name, unit and bucket
    /// of this many ms (at least 1000; needs `sensor` or `kind`).
    #[param(minimum = 1000)]
    pub bucket_ms: Option<i64>,
}

/// One value of a sensor reading.
#[derive(ToSchema)]
pub struct Reading {
    /// The sensor's key, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sensor: String,
    #[schema(minimum = 1)]
    pub seq: i64,
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

/// The values of one name and unit in one bucket.
#[derive(ToSchema)]
pub struct ReadingBucket {
    pub name: String,
    pub unit: String,
    /// The bucket's start, a multiple of `bucket_ms`, Unix ms.
    pub start_ms: i64,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    #[schema(minimum = 1)]
    pub count: i64,
}

/// Readings: a page of values (`items`, `next`), ascending by measured
/// time; or, with `bucket_ms`, their buckets (`bucket_ms`, `buckets`).
#[derive(ToSchema)]
pub struct Readings {
    #[schema(required = false)]
    pub items: Vec<Reading>,
    /// The `after` of the next page; `null` on the last page.
    #[schema(required = false)]
    pub next: Option<String>,
    #[schema(required = false, minimum = 1000)]
    pub bucket_ms: i64,
    #[schema(required = false)]
    pub buckets: Vec<ReadingBucket>,
}

/// A sensor this node holds readings of.
#[derive(ToSchema)]
pub struct SensorSeen {
    /// Its key, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sensor: String,
    /// Its certificate's common name, if the node holds a certificate the
    /// CA vouches for.
    pub name: Option<String>,
    /// The kinds of its readings, sorted.
    pub kinds: Vec<String>,
    #[schema(minimum = 0)]
    pub n_readings: i64,
    #[schema(minimum = 0)]
    pub last_seq: i64,
    pub last_measured_ms: i64,
    /// Where its newest located reading was.
    pub last_location: Option<Location>,
    /// Forks of its chain kept as evidence.
    #[schema(minimum = 0)]
    pub forks: i64,
}

/// Every sensor this node holds readings of.
#[derive(ToSchema)]
pub struct SensorList {
    pub items: Vec<SensorSeen>,
}
