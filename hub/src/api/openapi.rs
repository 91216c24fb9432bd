//! The API's OpenAPI 3.1 document, served at `GET /api/v1/openapi.json`.
//!
//! Built from the same route lists as the router ([`super::api_routes`],
//! [`super::ops_routes`], with `utoipa-axum`): each handler's
//! `#[utoipa::path]` says its method, path, query parameters and answers,
//! and the router is made from those annotations, so the two cannot drift.
//! This module holds what the annotations refer to: the shapes of the
//! JSON the handlers write (they build it with `json!`; these types only
//! describe it, and the API fuzzer checks every answer against them, see
//! `docs/operations.md`), the query parameters of the routes that take
//! some, and the document's assembly.
//!
//! Never does: decide what a route accepts. The handlers check their own
//! input (`sentinel_http::params`, `sentinel_http::body`); the document
//! describes it, and `hub/tests/api/openapi.rs` checks that it does.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use sentinel_http::openapi::{add_components, names_schema, rate_limited, role_schema};
use sentinel_schema::{BodyKind, Status};
use serde::Deserialize;
use utoipa::openapi::schema::ObjectBuilder;
use utoipa::openapi::{OpenApi, OpenApiBuilder};
use utoipa::{IntoParams, ToSchema};

/// The shapes the node's API shares (`sentinel_http::openapi`).
pub use sentinel_http::openapi::{Assign, Location, Login, Session};

/// The event id the document gives as an example (`api_fixture` seeds it).
pub const EXAMPLE_EVENT: &str = "01010101010101010101010101010101";
/// The account name the document gives as an example (`api_fixture`
/// makes it, an officer).
pub const EXAMPLE_ACCOUNT: &str = "officer-1";

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
                utoipa::openapi::InfoBuilder::new()
                    .title("Sentinel hub API")
                    .version(env!("CARGO_PKG_VERSION"))
                    .description(Some(
                        "The regional hub's admin API: the log's timeline, the events \
                         view, admin actions on events, accounts, node status and the \
                         live feed. Who may call what: docs/security.md 3.3.",
                    ))
                    .build(),
            )
            .build()
            .merge_from(api)
            .merge_from(ops);
        add_components(&mut doc);
        rate_limited(&mut doc, API_PREFIX);
        doc
    })
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
        Err(e) => super::Problem::unavailable(e).into_response(),
    }
}

fn kind_schema() -> ObjectBuilder {
    names_schema(BodyKind::ALL.iter().map(|k| k.as_str()))
}

fn status_schema() -> ObjectBuilder {
    names_schema(Status::ALL.iter().map(|s| s.as_str()))
}

/// An entry's hybrid logical clock.
#[derive(ToSchema)]
pub struct Hlc {
    /// Wall time, Unix ms.
    #[schema(minimum = 0)]
    pub wall_ms: i64,
    #[schema(minimum = 0)]
    pub counter: i64,
}

/// An entry of the log, as an event's `history` shows it.
#[derive(ToSchema)]
pub struct Entry {
    /// The entry's id (its hash), 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub id: String,
    /// The author's key, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub author: String,
    #[schema(minimum = 1)]
    pub seq: i64,
    /// The kind of body (`unknown` for a kind this hub does not know).
    #[schema(schema_with = entry_kind_schema)]
    pub kind: String,
    /// The person the author acted for, if any.
    pub actor: Option<String>,
    pub hlc: Hlc,
}

fn entry_kind_schema() -> ObjectBuilder {
    names_schema(
        BodyKind::ALL
            .iter()
            .map(|k| k.as_str())
            .chain(std::iter::once("unknown")),
    )
}

/// An entry of the timeline.
#[derive(ToSchema)]
pub struct TimelineEntry {
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub id: String,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub author: String,
    /// The common name of the author's stored certificate, if the hub
    /// holds one.
    pub author_name: Option<String>,
    #[schema(minimum = 1)]
    pub seq: i64,
    #[schema(schema_with = entry_kind_schema)]
    pub kind: String,
    pub actor: Option<String>,
    /// The event the entry is about, 32 hex digits, if any.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub event: Option<String>,
    pub hlc: Hlc,
    /// When the hub stored it, Unix ms.
    pub received_ms: i64,
    /// Always `verified`: the hub stores only entries that verified.
    #[schema(schema_with = verified_schema)]
    pub verification: String,
}

fn verified_schema() -> ObjectBuilder {
    names_schema(["verified"])
}

/// A page of the timeline.
#[derive(ToSchema)]
pub struct TimelinePage {
    pub items: Vec<TimelineEntry>,
    /// The `after` of the next page; `null` on the last page.
    pub next: Option<String>,
}

/// An event as the events view holds it. For the public role (redacted):
/// no `assignee`, `notes`, `n_notes`, `created_by`, `conflicts` or
/// `history`, and the location snapped to a 0.01° grid. `history` only in
/// `GET /api/v1/events/{id}`.
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
    #[schema(required = false)]
    pub notes: String,
    #[schema(required = false, minimum = 0)]
    pub n_notes: i64,
    pub location: Location,
    /// When it was reported, Unix ms.
    pub reported_ms: i64,
    /// Who reported it.
    #[schema(required = false)]
    pub created_by: String,
    pub updated_hlc: Hlc,
    #[schema(minimum = 0)]
    pub n_media: i64,
    /// Concurrent edits the merge resolved, by field.
    #[schema(required = false, value_type = Object)]
    pub conflicts: serde_json::Value,
    /// Every entry about the event, in HLC order (`GET /api/v1/events/{id}`
    /// only).
    #[schema(required = false)]
    pub history: Vec<Entry>,
}

/// A page of events, newest report first.
#[derive(ToSchema)]
pub struct EventPage {
    pub items: Vec<Event>,
    /// The `after` of the next page; `null` on the last page.
    pub next: Option<String>,
}

/// What an admin action on an event made.
#[derive(ToSchema)]
pub struct ActionResult {
    /// The event, 32 hex digits.
    pub event: String,
    #[schema(schema_with = status_schema)]
    pub status: String,
    pub assignee: Option<String>,
    /// The entry the hub appended, 64 hex digits.
    pub entry: Option<String>,
    pub seq: Option<i64>,
}

/// An account.
#[derive(ToSchema)]
pub struct Account {
    pub name: String,
    #[schema(schema_with = role_schema)]
    pub role: String,
    pub disabled: bool,
    /// When it was made, Unix ms.
    pub created_ms: i64,
}

/// Every account.
#[derive(ToSchema)]
pub struct AccountList {
    pub items: Vec<Account>,
}

/// `POST /api/v1/users`.
// `Deserialize` only so that `deny_unknown_fields` tells utoipa to emit
// `additionalProperties: false`, as `json_object` refuses unknown members.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// 1 to 128 bytes of letters, digits and `. - _ @`.
    #[schema(min_length = 1, max_length = 128)]
    pub name: String,
    /// At least 12 characters, at most 1024 bytes.
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
    #[schema(schema_with = role_schema)]
    pub role: String,
}

/// The account made.
#[derive(ToSchema)]
pub struct NewAccountResult {
    pub name: String,
    #[schema(schema_with = role_schema)]
    pub role: String,
    pub disabled: bool,
}

/// `POST /api/v1/users/{name}/role`.
// `Deserialize` only so that `deny_unknown_fields` tells utoipa to emit
// `additionalProperties: false`, as `json_object` refuses unknown members.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    #[schema(schema_with = role_schema)]
    pub role: String,
}

/// The role granted.
#[derive(ToSchema)]
pub struct RoleResult {
    pub name: String,
    #[schema(schema_with = role_schema)]
    pub role: String,
}

/// The account disabled.
#[derive(ToSchema)]
pub struct Disabled {
    pub name: String,
    pub disabled: bool,
}

/// A peer the sync server has seen.
#[derive(ToSchema)]
pub struct NodeStatus {
    /// Its certificate key, 64 hex digits.
    pub author: String,
    /// Its certificate's common name.
    pub name: String,
    /// Its certificate's role (`node`, `hub`, `sensor`).
    pub role: String,
    pub last_seen_ms: i64,
    pub last_addr: String,
    pub sessions: i64,
    /// How its last session closed.
    pub last_close: String,
    /// The seq of its head in the hub's log (0: none).
    pub hub_seq: i64,
    /// Entries that arrived after it last synced (an estimate).
    #[schema(minimum = 0)]
    pub entries_behind: i64,
}

/// Every peer, newest `last_seen_ms` first.
#[derive(ToSchema)]
pub struct NodeList {
    pub items: Vec<NodeStatus>,
}

/// Every event as a GeoJSON FeatureCollection (RFC 7946).
#[derive(ToSchema)]
pub struct FeatureCollection {
    #[schema(schema_with = feature_collection_type)]
    pub r#type: String,
    pub features: Vec<Feature>,
}

fn feature_collection_type() -> ObjectBuilder {
    names_schema(["FeatureCollection"])
}

fn feature_type() -> ObjectBuilder {
    names_schema(["Feature"])
}

/// One event as a GeoJSON Feature.
#[derive(ToSchema)]
pub struct Feature {
    #[schema(schema_with = feature_type)]
    pub r#type: String,
    /// The event id, 32 hex digits.
    pub id: String,
    pub geometry: PointGeometry,
    pub properties: FeatureProperties,
}

fn point_type() -> ObjectBuilder {
    names_schema(["Point"])
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

/// An event's fields, as in [`Event`] (redacted the same way for the
/// public).
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
    pub reported_ms: i64,
    #[schema(required = false)]
    pub created_by: String,
    #[schema(required = false)]
    pub n_notes: i64,
    pub n_media: i64,
    #[schema(required = false, value_type = Object)]
    pub conflicts: serde_json::Value,
}

/// The query of `GET /api/v1/timeline`. Any other parameter, or one given
/// twice, is refused (400).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimelineQuery {
    /// Only entries of this author (a key, 64 hex digits).
    #[param(pattern = "^[0-9a-fA-F]{64}$")]
    pub author: Option<String>,
    /// Only entries about this event (32 hex digits).
    #[param(pattern = "^[0-9a-fA-F]{32}$")]
    pub event: Option<String>,
    /// Only entries of this kind.
    #[param(schema_with = kind_schema)]
    pub kind: Option<String>,
    /// From this HLC wall time (Unix ms), inclusive.
    #[param(minimum = 0)]
    pub from: Option<i64>,
    /// Up to this HLC wall time (Unix ms), exclusive; not before `from`.
    #[param(minimum = 0)]
    pub to: Option<i64>,
    /// Items per page.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next` of the previous page (opaque).
    pub after: Option<String>,
}

/// The query of `GET /api/v1/events`. Any other parameter, or one given
/// twice, is refused (400). The public may not use `q`, `near` or
/// `radius`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// `minLon,minLat,maxLon,maxLat` in degrees; `minLon > maxLon` crosses
    /// the antimeridian.
    pub bbox: Option<String>,
    /// `lon,lat` in degrees; needs `radius`.
    pub near: Option<String>,
    /// Metres around `near`, in (0, 20100000]; needs `near`.
    #[param(exclusive_minimum = 0, maximum = 20_100_000)]
    pub radius: Option<f64>,
    /// Full-text search words (title, description, category, notes).
    #[param(min_length = 1, max_length = 1000)]
    pub q: Option<String>,
    #[param(schema_with = status_schema)]
    pub status: Option<String>,
    #[param(minimum = 1, maximum = 5)]
    pub min_severity: Option<i64>,
    #[param(minimum = 1, maximum = 5)]
    pub max_severity: Option<i64>,
    /// Exactly this category.
    #[param(min_length = 1, max_length = 200)]
    pub category: Option<String>,
    /// Reported from this time (Unix ms), inclusive.
    #[param(minimum = 0)]
    pub from: Option<i64>,
    /// Reported before this time (Unix ms); not before `from`.
    #[param(minimum = 0)]
    pub to: Option<i64>,
    /// Items per page.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next` of the previous page (opaque).
    pub after: Option<String>,
}
