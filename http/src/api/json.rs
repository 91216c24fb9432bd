//! The JSON both APIs read and write, as types: each serialises the answer
//! and is its OpenAPI schema at once, so the document cannot describe a
//! shape the handlers do not write. Fields the public may not see are
//! `Option`s left out of the JSON when `None` ([`Visibility::Public`]).
//!
//! The shapes here are those of the routes both servers serve (and of the
//! admin actions both offer); a server's own routes keep their shapes in
//! that server.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::HeaderMap;
use sentinel_schema::access::{self, COARSE_DEGREES};
use sentinel_schema::query::{EventRecord, EventSummary, HistoryItem};
use sentinel_schema::{MediaRef, Note as SchemaNote, Point};
use serde::Serialize;
use utoipa::openapi::schema::ObjectBuilder;
use utoipa::ToSchema;

use crate::body::{json_object, text};
use crate::openapi::{entry_kind_schema, names_schema, role_schema};
use crate::people::check_name;
use crate::Problem;

/// Who an answer is for: everything, or what the public may see
/// (`docs/security.md` 3.3: no people, notes, conflicts or history, the
/// location snapped to a [`COARSE_DEGREES`] grid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Full,
    Public,
}

impl Visibility {
    pub fn is_public(self) -> bool {
        self == Visibility::Public
    }
}

/// A coordinate snapped to the public's grid.
pub fn snap(x: f64) -> f64 {
    (x / COARSE_DEGREES).round() * COARSE_DEGREES
}

pub(crate) fn status_schema() -> ObjectBuilder {
    names_schema(sentinel_schema::Status::ALL.iter().map(|s| s.as_str()))
}

/// A bearer token, and who it signs in.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Session {
    /// Send as `Authorization: Bearer TOKEN`.
    pub token: String,
    /// When the token expires, Unix ms.
    pub expires_ms: u64,
    pub name: String,
    #[schema(schema_with = role_schema)]
    pub role: String,
}

/// Who a token signs in, as the server knows it now (`GET
/// /api/v1/session`): the role is read afresh, so a page learns of a
/// promotion or demotion without signing in again.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Whoami {
    pub name: String,
    #[schema(schema_with = role_schema)]
    pub role: String,
}

/// A point, WGS 84 degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    #[schema(minimum = -180, maximum = 180)]
    pub lon: f64,
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
}

impl Location {
    /// `p`, snapped to the public's grid when `v` is public.
    pub fn of(p: Point, v: Visibility) -> Location {
        if v.is_public() {
            Location {
                lon: snap(p.lon()),
                lat: snap(p.lat()),
            }
        } else {
            Location {
                lon: p.lon(),
                lat: p.lat(),
            }
        }
    }
}

/// A hybrid logical clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Hlc {
    /// Wall time, Unix ms.
    pub wall_ms: u64,
    pub counter: u32,
}

impl From<sentinel_schema::Hlc> for Hlc {
    fn from(h: sentinel_schema::Hlc) -> Hlc {
        Hlc {
            wall_ms: h.wall_ms,
            counter: h.counter,
        }
    }
}

/// An event in a list (`GET /api/v1/events`, the feed's summaries, the
/// export's features). For the public: no `assignee`, `n_notes`,
/// `has_conflicts` or `distance_m`, and the location snapped to a 0.01°
/// grid.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EventItem {
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub id: String,
    pub title: String,
    pub category: String,
    #[schema(minimum = 1, maximum = 5)]
    pub severity: u8,
    #[schema(schema_with = status_schema)]
    pub status: String,
    /// Who works it; `null` when nobody does.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub assignee: Option<Option<String>>,
    pub location: Location,
    /// When it was reported, Unix ms.
    pub reported_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub n_notes: Option<u32>,
    pub n_media: u32,
    /// Whether concurrent edits left competing values (see the event's
    /// `conflicts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub has_conflicts: Option<bool>,
    /// Metres from `near`, when the search gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, minimum = 0)]
    pub distance_m: Option<f64>,
}

impl EventItem {
    pub fn of(s: &EventSummary, v: Visibility) -> EventItem {
        let full = !v.is_public();
        EventItem {
            id: s.id.to_hex(),
            title: s.title.clone(),
            category: s.category.clone(),
            severity: s.severity,
            status: s.status.as_str().to_owned(),
            assignee: full.then(|| s.assignee.clone()),
            location: Location::of(s.location, v),
            reported_ms: s.reported_ms,
            n_notes: full.then_some(s.n_notes),
            n_media: s.n_media,
            has_conflicts: full.then_some(s.has_conflicts),
            distance_m: if full { s.distance_m } else { None },
        }
    }
}

/// A page of events, newest report first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<EventItem>,
    /// The `after` of the next page; `null` on the last page.
    pub next: Option<String>,
}

/// A note on an event.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Note {
    pub text: String,
    /// Who wrote it, if known.
    pub actor: Option<String>,
    /// When, Unix ms.
    pub at_ms: u64,
}

impl From<&SchemaNote> for Note {
    fn from(n: &SchemaNote) -> Note {
        Note {
            text: n.text.clone(),
            actor: n.actor.clone(),
            at_ms: n.at_ms,
        }
    }
}

/// A photo or video attached to an event.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Media {
    /// Its SHA-256, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub hash: String,
    /// Decided by its bytes: `image/jpeg`, `image/png`, `image/webp`,
    /// `video/mp4`.
    pub mime: String,
    pub size: u64,
    /// Its file name, as attached.
    pub name: String,
}

impl From<&MediaRef> for Media {
    fn from(m: &MediaRef) -> Media {
        Media {
            hash: hex::encode(m.hash),
            mime: m.mime.as_mime().to_owned(),
            size: m.size,
            name: m.name.clone(),
        }
    }
}

/// An entry about an event, as its `history` shows it: who changed it,
/// for whom, and when.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// The entry's id (its hash), 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub entry: String,
    /// The author's key (the device, hub or sensor that signed it).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub author: String,
    #[schema(minimum = 1)]
    pub seq: u64,
    pub hlc: Hlc,
    #[schema(schema_with = entry_kind_schema)]
    pub kind: String,
    /// The person the author acted for, if any.
    pub actor: Option<String>,
    /// Whether the server answering signed it.
    pub local: bool,
}

impl From<&HistoryItem> for HistoryEntry {
    fn from(h: &HistoryItem) -> HistoryEntry {
        HistoryEntry {
            entry: h.entry.to_hex(),
            author: h.author.to_hex(),
            seq: h.seq,
            hlc: h.hlc.into(),
            kind: h.kind.map_or("unknown", |k| k.as_str()).to_owned(),
            actor: h.actor.clone(),
            local: h.local,
        }
    }
}

/// An event as `GET /api/v1/events/{id}` and the feed show it. For the
/// public: no `assignee`, `reported_by`, `notes`, `media`, `conflicts` or
/// `history`, and the location snapped to a 0.01° grid. `conflicts` and
/// `history` only for those who may read the history, and never in the
/// feed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Event {
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub id: String,
    pub title: String,
    pub description: String,
    pub category: String,
    #[schema(minimum = 1, maximum = 5)]
    pub severity: u8,
    #[schema(schema_with = status_schema)]
    pub status: String,
    /// Who works it; `null` when nobody does.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub assignee: Option<Option<String>>,
    pub location: Location,
    /// When it was reported, Unix ms.
    pub reported_ms: u64,
    /// Who reported it, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub reported_by: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub notes: Option<Vec<Note>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub media: Option<Vec<Media>>,
    /// How many photos and videos it has.
    pub n_media: u32,
    /// Concurrent edits the merge kept: each field's competing values.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub conflicts: Option<BTreeMap<String, Vec<String>>>,
    /// Every entry about the event, in HLC order.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub history: Option<Vec<HistoryEntry>>,
}

impl Event {
    /// `r` as `v` may see it; with its conflicts and history only when
    /// `with_history`.
    pub fn of(r: &EventRecord, v: Visibility, with_history: bool) -> Event {
        let n_media = u32::try_from(r.view.media.len()).unwrap_or(u32::MAX);
        if v.is_public() {
            let view = access::redact(&r.view);
            return Event {
                id: r.id.to_hex(),
                title: view.title,
                description: view.description,
                category: view.category,
                severity: view.severity,
                status: view.status.as_str().to_owned(),
                assignee: None,
                location: Location::of(r.view.location, v),
                reported_ms: view.reported_ms,
                reported_by: None,
                notes: None,
                media: None,
                n_media,
                conflicts: None,
                history: None,
            };
        }
        let view = &r.view;
        Event {
            id: r.id.to_hex(),
            title: view.title.clone(),
            description: view.description.clone(),
            category: view.category.clone(),
            severity: view.severity,
            status: view.status.as_str().to_owned(),
            assignee: Some(view.assignee.clone()),
            location: Location::of(view.location, v),
            reported_ms: view.reported_ms,
            reported_by: Some(r.reported_by.clone()),
            notes: Some(view.notes.iter().map(Note::from).collect()),
            media: Some(view.media.iter().map(Media::from).collect()),
            n_media,
            conflicts: with_history.then(|| view.conflicts.clone()),
            history: with_history.then(|| r.history.iter().map(HistoryEntry::from).collect()),
        }
    }
}

/// `POST /api/v1/events/{id}/assign`.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// An account name: 1 to 128 bytes of letters, digits and `. - _ @`.
    #[schema(min_length = 1, max_length = 128)]
    pub assignee: String,
}

impl Assign {
    /// The body of an assign, read as both servers read it: a JSON object
    /// with `assignee` only, an account name (each refusal names its
    /// field). Who may assign is the route's to check first.
    pub async fn read(headers: &HeaderMap, body: Body) -> Result<Assign, Problem> {
        let map = json_object(headers, body, &["assignee"]).await?;
        let assignee = text(&map, "assignee")?;
        check_name(assignee).map_err(|e| Problem::bad_field("assignee", e.to_string()))?;
        Ok(Assign {
            assignee: assignee.to_owned(),
        })
    }
}

/// What an action on an event (assign, a workflow step, close, reopen)
/// committed, and the event's status and assignee after it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ActionResult {
    /// The event, 32 hex digits.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub event: String,
    /// The entry the server signed, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub entry: String,
    /// Its seq in the server's chain.
    #[schema(minimum = 1)]
    pub seq: u64,
    #[schema(schema_with = status_schema)]
    pub status: String,
    /// Who works it now; `null` when nobody does.
    pub assignee: Option<String>,
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

/// Events as a GeoJSON FeatureCollection (RFC 7946), as
/// `GET /api/v1/export.geojson` streams it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct FeatureCollection {
    #[schema(schema_with = feature_collection_type)]
    pub r#type: String,
    pub features: Vec<Feature>,
}

/// One event as a GeoJSON Feature: its `properties` are the event as
/// `GET /api/v1/events` lists it, without `id` and `location`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Feature {
    #[schema(schema_with = feature_type)]
    pub r#type: &'static str,
    /// The event id, 32 hex digits.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub id: String,
    pub geometry: PointGeometry,
    pub properties: FeatureProperties,
}

/// A GeoJSON Point.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PointGeometry {
    #[schema(schema_with = point_type)]
    pub r#type: &'static str,
    /// `[lon, lat]`.
    #[schema(min_items = 2, max_items = 2)]
    pub coordinates: [f64; 2],
}

/// An event's fields in a Feature (as [`EventItem`], without `id` and
/// `location`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeatureProperties {
    pub title: String,
    pub category: String,
    #[schema(minimum = 1, maximum = 5)]
    pub severity: u8,
    #[schema(schema_with = status_schema)]
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub assignee: Option<Option<String>>,
    pub reported_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub n_notes: Option<u32>,
    pub n_media: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub has_conflicts: Option<bool>,
}

impl Feature {
    pub fn of(item: EventItem) -> Feature {
        Feature {
            r#type: "Feature",
            id: item.id,
            geometry: PointGeometry {
                r#type: "Point",
                coordinates: [item.location.lon, item.location.lat],
            },
            properties: FeatureProperties {
                title: item.title,
                category: item.category,
                severity: item.severity,
                status: item.status,
                assignee: item.assignee,
                reported_ms: item.reported_ms,
                n_notes: item.n_notes,
                n_media: item.n_media,
                has_conflicts: item.has_conflicts,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use sentinel_schema::{EventId, Status};

    fn summary() -> EventSummary {
        EventSummary {
            id: EventId([7; 16]),
            title: "Flooded underpass".into(),
            category: "flood".into(),
            severity: 4,
            status: Status::Assigned,
            assignee: Some("officer.bo".into()),
            location: Point::new(13.40512, 52.52034).unwrap(),
            reported_ms: 1_700_000_000_000,
            n_notes: 2,
            n_media: 1,
            has_conflicts: true,
            distance_m: Some(12.5),
        }
    }

    #[test]
    fn the_public_sees_no_people_and_a_coarse_place() {
        let full = serde_json::to_value(EventItem::of(&summary(), Visibility::Full)).unwrap();
        assert_eq!(full["assignee"], "officer.bo");
        assert_eq!(full["n_notes"], 2);
        assert_eq!(full["has_conflicts"], true);
        assert_eq!(full["location"]["lon"], 13.40512);
        let public = serde_json::to_value(EventItem::of(&summary(), Visibility::Public)).unwrap();
        for hidden in ["assignee", "n_notes", "has_conflicts", "distance_m"] {
            assert!(public.get(hidden).is_none(), "{hidden} in {public}");
        }
        let lon = public["location"]["lon"].as_f64().unwrap();
        assert!((lon - 13.41).abs() < 1e-9, "{lon}");
    }

    #[test]
    fn nobody_assigned_is_null_for_those_who_may_see_it() {
        let mut s = summary();
        s.assignee = None;
        let full = serde_json::to_value(EventItem::of(&s, Visibility::Full)).unwrap();
        assert!(full["assignee"].is_null());
        assert!(full.as_object().unwrap().contains_key("assignee"));
    }
}
