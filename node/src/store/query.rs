//! Searching events: full text plus filters, with keyset pagination.
//!
//! Results are ordered by reported time (newest first), then event id. The
//! cursor is the last item's `(reported_ms, event)`, so a page never
//! repeats or skips an event that existed when the first page was read,
//! however many events arrive in between.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::Value;
use sentinel_schema::{EventId, Point, Status};

use super::{blob, Store, StoreError};
use crate::spatial::BBox;

/// Largest page.
pub const MAX_LIMIT: usize = 1000;

/// Where the next page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    reported_ms: i64,
    event: EventId,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor: expected the `next` value of a previous page")]
pub struct CursorError;

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.reported_ms, self.event)
    }
}

impl FromStr for Cursor {
    type Err = CursorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ms, ev) = s.split_once('.').ok_or(CursorError)?;
        Ok(Cursor {
            reported_ms: ms.parse().map_err(|_| CursorError)?,
            event: ev.parse().map_err(|_| CursorError)?,
        })
    }
}

/// What to look for. Empty means everything.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Words that must all occur in title, description or notes.
    pub text: Option<String>,
    pub status: Vec<Status>,
    pub category: Option<String>,
    pub min_severity: Option<u8>,
    pub max_severity: Option<u8>,
    /// Reported at or after (Unix ms).
    pub reported_from: Option<u64>,
    /// Reported before (Unix ms).
    pub reported_to: Option<u64>,
    pub bbox: Option<BBox>,
    /// Within this many metres (geodesic) of a point.
    pub near: Option<(Point, f64)>,
    pub limit: usize,
    pub after: Option<Cursor>,
}

/// One event in a result list.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventSummary {
    pub id: String,
    pub title: String,
    pub category: String,
    pub severity: u8,
    pub status: String,
    pub assignee: Option<String>,
    pub lon: f64,
    pub lat: f64,
    pub reported_ms: u64,
    pub n_notes: u32,
    pub n_media: u32,
    pub has_conflicts: bool,
    /// Distance from the `near` point, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Page {
    pub items: Vec<EventSummary>,
    /// Pass back as `after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// Turns free text into an FTS5 query: every word quoted (so operators and
/// punctuation in user input are just text) and matched as a prefix, all
/// words required.
fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

impl Store {
    pub fn search(&self, q: &EventQuery) -> Result<Page, StoreError> {
        let mut sql = String::from(
            "SELECT e.event, e.title, e.category, e.severity, e.status, e.assignee, e.lon, e.lat,
                    e.reported_ms, e.n_notes, e.n_media, e.conflicts != '{}'",
        );
        let mut args: Vec<Value> = Vec::new();
        let mut arg = |v: Value| {
            args.push(v);
            format!("?{}", args.len())
        };
        if let Some((p, _)) = q.near {
            let (lon, lat) = (arg(Value::Real(p.lon())), arg(Value::Real(p.lat())));
            sql += &format!(", sentinel_distance_m(e.lon, e.lat, {lon}, {lat})");
        } else {
            sql += ", NULL";
        }
        sql += " FROM events e WHERE 1 = 1";
        if let Some(text) = q.text.as_deref().and_then(fts_query) {
            sql += &format!(
                " AND e.fid IN (SELECT rowid FROM events_fts WHERE events_fts MATCH {})",
                arg(Value::Text(text))
            );
        }
        if !q.status.is_empty() {
            let list: Vec<String> = q
                .status
                .iter()
                .map(|s| arg(Value::Text(s.as_str().into())))
                .collect();
            sql += &format!(" AND e.status IN ({})", list.join(", "));
        }
        if let Some(c) = &q.category {
            sql += &format!(" AND e.category = {}", arg(Value::Text(c.clone())));
        }
        if let Some(s) = q.min_severity {
            sql += &format!(" AND e.severity >= {}", arg(Value::Integer(s.into())));
        }
        if let Some(s) = q.max_severity {
            sql += &format!(" AND e.severity <= {}", arg(Value::Integer(s.into())));
        }
        if let Some(t) = q.reported_from {
            sql += &format!(" AND e.reported_ms >= {}", arg(Value::Integer(t as i64)));
        }
        if let Some(t) = q.reported_to {
            sql += &format!(" AND e.reported_ms < {}", arg(Value::Integer(t as i64)));
        }
        if let Some(b) = &q.bbox {
            // The SpatiaLite spatial index narrows to the box's MBR (float32,
            // rounded outwards); the exact comparison follows.
            let (x0, y0, x1, y1) = (
                arg(Value::Real(b.min_lon())),
                arg(Value::Real(b.min_lat())),
                arg(Value::Real(b.max_lon())),
                arg(Value::Real(b.max_lat())),
            );
            sql += &format!(
                " AND e.fid IN (SELECT rowid FROM SpatialIndex WHERE f_table_name = 'events'
                     AND search_frame = BuildMbr({x0}, {y0}, {x1}, {y1}, 4326))
                  AND e.lon BETWEEN {x0} AND {x1} AND e.lat BETWEEN {y0} AND {y1}"
            );
        }
        if let Some((p, radius)) = q.near {
            // A coarse box first (one degree of latitude is at least 110.5 km;
            // longitude degrees shrink with latitude), then the exact distance.
            let (lon, lat) = (arg(Value::Real(p.lon())), arg(Value::Real(p.lat())));
            let r = arg(Value::Real(radius));
            sql += &format!(
                " AND e.lat BETWEEN {lat} - {r} / 110500.0 AND {lat} + {r} / 110500.0
                  AND sentinel_distance_m(e.lon, e.lat, {lon}, {lat}) <= {r}"
            );
        }
        if let Some(c) = q.after {
            let (ms, ev) = (
                arg(Value::Integer(c.reported_ms)),
                arg(Value::Blob(c.event.0.to_vec())),
            );
            sql += &format!(
                " AND (e.reported_ms < {ms} OR (e.reported_ms = {ms} AND e.event < {ev}))"
            );
        }
        let limit = q.limit.clamp(1, MAX_LIMIT);
        sql += &format!(
            " ORDER BY e.reported_ms DESC, e.event DESC LIMIT {}",
            arg(Value::Integer(limit as i64 + 1))
        );

        let mut stmt = self.conn().prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut items = Vec::new();
        let mut last = None;
        let mut more = false;
        while let Some(r) = rows.next()? {
            if items.len() == limit {
                more = true;
                break;
            }
            let event = EventId(blob(r, 0, "events.event")?);
            let reported_ms: i64 = r.get(8)?;
            last = Some(Cursor { reported_ms, event });
            items.push(EventSummary {
                id: event.to_hex(),
                title: r.get(1)?,
                category: r.get(2)?,
                severity: r.get(3)?,
                status: r.get(4)?,
                assignee: r.get(5)?,
                lon: r.get(6)?,
                lat: r.get(7)?,
                reported_ms: reported_ms as u64,
                n_notes: r.get(9)?,
                n_media: r.get(10)?,
                has_conflicts: r.get(11)?,
                distance_m: r.get(12)?,
            });
        }
        Ok(Page {
            next: if more {
                last.map(|c| c.to_string())
            } else {
                None
            },
            items,
        })
    }

    /// Event ids inside a box, from SpatiaLite's spatial index (the SQL
    /// path; the in-memory R-tree is the fast path).
    pub fn ids_in_bbox_sql(&self, b: &BBox) -> Result<Vec<EventId>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT event FROM events WHERE fid IN (
                 SELECT rowid FROM SpatialIndex WHERE f_table_name = 'events'
                 AND search_frame = BuildMbr(?1, ?2, ?3, ?4, 4326))
             AND lon BETWEEN ?1 AND ?3 AND lat BETWEEN ?2 AND ?4",
        )?;
        let mut rows = stmt.query(rusqlite::params![
            b.min_lon(),
            b.min_lat(),
            b.max_lon(),
            b.max_lat()
        ])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(EventId(blob(r, 0, "events.event")?));
        }
        Ok(out)
    }

    /// Every event's position, for loading the R-tree.
    pub fn event_positions(&self) -> Result<Vec<(EventId, Point)>, StoreError> {
        let mut stmt = self.conn().prepare("SELECT event, lon, lat FROM events")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let event = EventId(blob(r, 0, "events.event")?);
            let p = Point::new(r.get(1)?, r.get(2)?).map_err(|_| StoreError::CorruptColumn {
                column: "events.lon/lat",
            })?;
            out.push((event, p));
        }
        Ok(out)
    }
}
