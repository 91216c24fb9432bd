//! Searching events: full text plus filters, with keyset pagination, in
//! the vocabulary both servers answer (`sentinel_schema::query`).
//!
//! Results are ordered by reported time (newest first), then event id,
//! descending. The cursor is the last item's `(reported_ms, event)`, so a
//! page never repeats or skips an event that existed when the first page
//! was read, however many events arrive in between.

use rusqlite::types::Value;
use sentinel_schema::query::{EventPage, EventSearch, EventSummary};
use sentinel_schema::{BBox, EventId, Point, Status};

use super::filter::Where;
use super::{blob, Store, StoreError};

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

/// A stored integer that must fit `T` (the view only writes such values).
fn fits<T: TryFrom<i64>>(v: i64, column: &'static str) -> Result<T, StoreError> {
    T::try_from(v).map_err(|_| StoreError::CorruptColumn { column })
}

impl Store {
    /// One page of the events `search` finds (at most `search.limit`,
    /// at least one), and where the next page starts.
    pub fn search(&self, search: &EventSearch) -> Result<EventPage, StoreError> {
        let f = &search.filter;
        let mut w = Where::default();
        let distance = match &f.near {
            Some(n) => {
                let (lon, lat) = (
                    w.arg(Value::Real(n.point.lon())),
                    w.arg(Value::Real(n.point.lat())),
                );
                format!("sentinel_distance_m(e.lon, e.lat, {lon}, {lat})")
            }
            None => "NULL".to_owned(),
        };
        if let Some(text) = f.text.as_deref().and_then(fts_query) {
            let a = w.arg(Value::Text(text));
            w.and(&format!(
                "e.fid IN (SELECT rowid FROM events_fts WHERE events_fts MATCH {a})"
            ));
        }
        if !f.statuses.is_empty() {
            let list: Vec<String> = f
                .statuses
                .iter()
                .map(|s| w.arg(Value::Text(s.as_str().into())))
                .collect();
            w.and(&format!("e.status IN ({})", list.join(", ")));
        }
        if let Some(c) = &f.category {
            let a = w.arg(Value::Text(c.clone()));
            w.and(&format!("e.category = {a}"));
        }
        if let Some(s) = f.min_severity {
            let a = w.arg(Value::Integer(s.into()));
            w.and(&format!("e.severity >= {a}"));
        }
        if let Some(s) = f.max_severity {
            let a = w.arg(Value::Integer(s.into()));
            w.and(&format!("e.severity <= {a}"));
        }
        // Times beyond i64 match nothing stored (the API refuses them).
        if let Some(t) = f.reported_from {
            let a = w.arg(Value::Integer(i64::try_from(t).unwrap_or(i64::MAX)));
            w.and(&format!("e.reported_ms >= {a}"));
        }
        if let Some(t) = f.reported_to {
            let a = w.arg(Value::Integer(i64::try_from(t).unwrap_or(i64::MAX)));
            w.and(&format!("e.reported_ms < {a}"));
        }
        if let Some(area) = &f.area {
            w.within(area, "events", "e", "fid");
        }
        if let Some(n) = &f.near {
            // A coarse band of latitude first (one degree of latitude is at
            // least 110.5 km), then the exact geodesic distance.
            let (lon, lat) = (
                w.arg(Value::Real(n.point.lon())),
                w.arg(Value::Real(n.point.lat())),
            );
            let r = w.arg(Value::Real(n.radius_m));
            w.and(&format!(
                "e.lat BETWEEN {lat} - {r} / 110500.0 AND {lat} + {r} / 110500.0
                 AND sentinel_distance_m(e.lon, e.lat, {lon}, {lat}) <= {r}"
            ));
        }
        if let Some(c) = search.after {
            let (ms, ev) = (
                w.arg(Value::Integer(
                    i64::try_from(c.reported_ms).unwrap_or(i64::MAX),
                )),
                w.arg(Value::Blob(c.event.0.to_vec())),
            );
            w.and(&format!(
                "(e.reported_ms < {ms} OR (e.reported_ms = {ms} AND e.event < {ev}))"
            ));
        }
        let limit = search.limit.max(1);
        // One row more than the page: it only says that another follows.
        let lim = w.arg(Value::Integer(i64::try_from(limit + 1).unwrap_or(i64::MAX)));
        let sql = format!(
            "SELECT e.event, e.title, e.category, e.severity, e.status, e.assignee, e.lon, e.lat,
                    e.reported_ms, e.n_notes, e.n_media, e.conflicts != '{{}}', {distance}
             FROM events e{}
             ORDER BY e.reported_ms DESC, e.event DESC LIMIT {lim}",
            w.sql
        );
        let mut stmt = self.conn().prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(w.args))?;
        let mut items = Vec::new();
        while let Some(r) = rows.next()? {
            let status: String = r.get(4)?;
            items.push(EventSummary {
                id: EventId(blob(r, 0, "events.event")?),
                title: r.get(1)?,
                category: r.get(2)?,
                severity: r.get(3)?,
                status: status
                    .parse::<Status>()
                    .map_err(|_| StoreError::CorruptColumn {
                        column: "events.status",
                    })?,
                assignee: r.get(5)?,
                location: Point::new(r.get(6)?, r.get(7)?).map_err(|_| {
                    StoreError::CorruptColumn {
                        column: "events.lon/lat",
                    }
                })?,
                reported_ms: fits(r.get(8)?, "events.reported_ms")?,
                n_notes: r.get(9)?,
                n_media: r.get(10)?,
                has_conflicts: r.get(11)?,
                distance_m: r.get(12)?,
            });
        }
        Ok(EventPage::from_rows(items, limit))
    }

    /// Event ids inside a box, from SpatiaLite's spatial index (the SQL
    /// path; the in-memory R-tree is the fast path).
    pub fn ids_in_bbox_sql(&self, b: &BBox) -> Result<Vec<EventId>, StoreError> {
        let mut w = Where::default();
        w.within(&(*b).into(), "events", "e", "fid");
        let mut stmt = self
            .conn()
            .prepare_cached(&format!("SELECT e.event FROM events e{}", w.sql))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(w.args))?;
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
