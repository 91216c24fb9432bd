//! What may be asked of the views, and what they answer.
//!
//! One vocabulary for both servers: the node's SpatiaLite store and the
//! hub's PostgreSQL store each answer these questions in their own SQL,
//! and both HTTP APIs (`sentinel-http`) parse requests into them and
//! render the answers, so the same route means the same thing on either.
//! Plain data: no bounds are enforced here beyond what the types say (the
//! API's bounds are `sentinel-http`'s), and nothing here is serialised
//! (the API's JSON shapes are `sentinel-http`'s).

use crate::geo::{Bounds, Point};
use crate::{AuthorId, BodyKind, EntryId, EventId, EventView, Hlc, Status};

/// Which events a search or an export is about; every part optional, all
/// parts must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// Inside this area (which may cross the antimeridian).
    pub area: Option<Bounds>,
    /// Within this many metres (geodesic) of a point.
    pub near: Option<Near>,
    /// Words that must all occur in the title, description or notes.
    pub text: Option<String>,
    /// Any of these statuses; empty: any status.
    pub statuses: Vec<Status>,
    /// Exactly this category.
    pub category: Option<String>,
    pub min_severity: Option<u8>,
    pub max_severity: Option<u8>,
    /// Reported at or after (Unix ms).
    pub reported_from: Option<u64>,
    /// Reported before (Unix ms).
    pub reported_to: Option<u64>,
}

/// A circle on the ellipsoid: a point and a radius in metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Near {
    pub point: Point,
    pub radius_m: f64,
}

/// Where a page of events continues: after this event in the order of
/// every event list (reported time, newest first, then event id,
/// descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCursor {
    pub reported_ms: u64,
    pub event: EventId,
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSearch {
    pub filter: EventFilter,
    /// At most this many items (at least 1).
    pub limit: usize,
    pub after: Option<EventCursor>,
}

/// One event in a list.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSummary {
    pub id: EventId,
    pub title: String,
    pub category: String,
    pub severity: u8,
    pub status: Status,
    pub assignee: Option<String>,
    pub location: Point,
    pub reported_ms: u64,
    pub n_notes: u32,
    pub n_media: u32,
    /// Whether concurrent edits left competing values.
    pub has_conflicts: bool,
    /// Metres from the search's `near` point, when it had one.
    pub distance_m: Option<f64>,
}

impl EventSummary {
    /// The cursor of the page that continues after this item.
    pub fn cursor(&self) -> EventCursor {
        EventCursor {
            reported_ms: self.reported_ms,
            event: self.id,
        }
    }
}

/// A page of events and, when more follow, where the next one starts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventPage {
    pub items: Vec<EventSummary>,
    pub next: Option<EventCursor>,
}

impl EventPage {
    /// A page from up to `limit + 1` rows in list order: the extra row
    /// (if any) only says that another page follows.
    pub fn from_rows(mut rows: Vec<EventSummary>, limit: usize) -> EventPage {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last().map(EventSummary::cursor)
        } else {
            None
        };
        EventPage { items: rows, next }
    }
}

/// Cells of the clustering grid per map tile, along each side: a tile at
/// any zoom shows at most 16 clusters.
pub const CLUSTER_CELLS_PER_TILE: u32 = 4;
/// The deepest zoom the clustering grid has (cells of about 2 m).
pub const MAX_CLUSTER_ZOOM: u8 = 22;

/// A map's view of a search: the events the filter finds, grouped on a
/// grid fixed to the earth (origin at -180°, -90°), whose square cells
/// are `360° / 2^zoom / 4` wide, so panning never reshuffles clusters.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterQuery {
    pub filter: EventFilter,
    /// 0 (the world) to [`MAX_CLUSTER_ZOOM`].
    pub zoom: u8,
    /// When set, every location is snapped to this grid (degrees, to the
    /// nearest multiple, as redaction snaps it) before it is grouped or
    /// averaged, and cells are never finer than it: the public's view.
    pub snap: Option<f64>,
    /// At most this many clusters, the largest first.
    pub limit: usize,
}

impl ClusterQuery {
    /// The side of a cell, in degrees.
    pub fn cell_degrees(&self) -> f64 {
        let cells = CLUSTER_CELLS_PER_TILE << self.zoom.min(MAX_CLUSTER_ZOOM);
        let cell = 360.0 / f64::from(cells);
        match self.snap {
            Some(step) if step > cell => step,
            _ => cell,
        }
    }

    /// How many cells span the longitudes, and the latitudes: the last
    /// column and row also take the world's east and north edges.
    pub fn grid(&self) -> (i64, i64) {
        let cell = self.cell_degrees();
        // At most 4·2^22 columns: the casts are exact.
        ((360.0 / cell).ceil() as i64, (180.0 / cell).ceil() as i64)
    }
}

/// A cell of the grid with the events in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cluster {
    /// The mean longitude of its events (snapped ones, for the public).
    pub lon: f64,
    pub lat: f64,
    /// How many events (at least one).
    pub count: u64,
    /// The event, when there is only one.
    pub event: Option<EventId>,
}

/// The clusters of a [`ClusterQuery`], the largest first (then south to
/// north, west to east).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Clusters {
    pub clusters: Vec<Cluster>,
    /// Every event the filter finds, in clusters left out too.
    pub total: u64,
    /// Whether more clusters than the query's limit were found.
    pub truncated: bool,
}

/// An entry about an event, as the event's history shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryItem {
    pub entry: EntryId,
    pub author: AuthorId,
    pub seq: u64,
    pub hlc: Hlc,
    /// `None`: a kind this build does not know.
    pub kind: Option<BodyKind>,
    /// The person the author acted for, if any.
    pub actor: Option<String>,
    /// Whether the server answering wrote it (its own key is the author).
    pub local: bool,
}

/// One event in full: its document's view, who reported it and every
/// entry about it in HLC order (then author, then seq).
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub id: EventId,
    pub view: EventView,
    /// The actor of the earliest `event_change` of the event, if it had one.
    pub reported_by: Option<String>,
    pub history: Vec<HistoryItem>,
}

/// Which sensor readings a query is about; every part optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadingFilter {
    pub sensor: Option<AuthorId>,
    pub kind: Option<String>,
    /// The value's name (`level`).
    pub name: Option<String>,
    /// `measured_ms` from (inclusive).
    pub from: Option<u64>,
    /// `measured_ms` to (exclusive).
    pub to: Option<u64>,
    /// Readings without a location are left out when set.
    pub area: Option<Bounds>,
}

/// Where a page of reading values continues: after this value, in the
/// order of measured time, then entry id, then the value's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadingCursor {
    pub measured_ms: i64,
    pub entry: EntryId,
    pub n: u16,
}

/// One value of one reading.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingRow {
    pub sensor: AuthorId,
    pub seq: u64,
    pub entry: EntryId,
    /// The value's position in its reading.
    pub n: u16,
    pub kind: String,
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub measured_ms: i64,
    pub location: Option<Point>,
}

impl ReadingRow {
    pub fn cursor(&self) -> ReadingCursor {
        ReadingCursor {
            measured_ms: self.measured_ms,
            entry: self.entry,
            n: self.n,
        }
    }
}

/// The values of one name and unit within one time bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingBucket {
    pub name: String,
    pub unit: String,
    /// The bucket's start: a multiple of the bucket width, Unix ms.
    pub start_ms: i64,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    pub count: u64,
}

/// A sensor a store holds readings of.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorSeen {
    pub sensor: AuthorId,
    /// Its certificate, if the store holds it (for its name).
    pub certificate_der: Option<Vec<u8>>,
    /// The kinds of its readings, sorted.
    pub kinds: Vec<String>,
    pub n_readings: u64,
    /// The seq of its newest reading held.
    pub last_seq: u64,
    pub last_measured_ms: i64,
    /// Where its newest located reading was.
    pub last_location: Option<Point>,
    /// Forks of its chain kept as evidence.
    pub n_forks: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(ms: u64, id: u8) -> EventSummary {
        EventSummary {
            id: EventId([id; 16]),
            title: "t".into(),
            category: "c".into(),
            severity: 3,
            status: Status::Reported,
            assignee: None,
            location: Point::new(0.0, 0.0).unwrap(),
            reported_ms: ms,
            n_notes: 0,
            n_media: 0,
            has_conflicts: false,
            distance_m: None,
        }
    }

    #[test]
    fn a_page_continues_after_its_last_item_only_when_more_follow() {
        let rows = vec![summary(3, 3), summary(2, 2), summary(1, 1)];
        let page = EventPage::from_rows(rows.clone(), 2);
        assert_eq!(page.items.len(), 2);
        assert_eq!(
            page.next,
            Some(EventCursor {
                reported_ms: 2,
                event: EventId([2; 16])
            })
        );
        let last = EventPage::from_rows(rows, 3);
        assert_eq!(last.items.len(), 3);
        assert_eq!(last.next, None);
        assert_eq!(EventPage::from_rows(Vec::new(), 5), EventPage::default());
    }
}
