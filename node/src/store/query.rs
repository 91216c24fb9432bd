//! Searching events: full text plus filters, with keyset pagination, and
//! the same filters grouped on a map's grid ([`Store::clusters`]), in the
//! vocabulary both servers answer (`sentinel_schema::query`).
//!
//! Results are ordered by reported time (newest first), then event id,
//! descending. The cursor is the last item's `(reported_ms, event)`, so a
//! page never repeats or skips an event that existed when the first page
//! was read, however many events arrive in between.

use rusqlite::types::Value;
use sentinel_schema::query::{
    Cluster, ClusterQuery, Clusters, EventPage, EventSearch, EventSummary,
};
use sentinel_schema::{BBox, EventId, Point, Status};

use super::filter::Where;
use super::{blob, Store, StoreError};

/// How far up (in cells) a location is moved before its cell is found.
const CELL_NUDGE: f64 = 1e-6;

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
        w.events(f);
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

    /// The events `query.filter` finds, grouped on the query's grid (see
    /// `ClusterQuery`): one scan of the rows the filter leaves, grouped
    /// in SQL, the largest clusters first. With `snap`, each location is
    /// rounded to that grid first (SQLite's `ROUND`, half away from zero,
    /// as redaction rounds).
    pub fn clusters(&self, query: &ClusterQuery) -> Result<Clusters, StoreError> {
        let mut w = Where::default();
        let (lon, lat) = match query.snap {
            Some(step) => {
                let s = w.arg(Value::Real(step));
                (
                    format!("ROUND(e.lon / {s}) * {s}"),
                    format!("ROUND(e.lat / {s}) * {s}"),
                )
            }
            None => ("e.lon".to_owned(), "e.lat".to_owned()),
        };
        w.events(&query.filter);
        let (cols, rows) = query.grid();
        let cell = w.arg(Value::Real(query.cell_degrees()));
        // A millionth of a cell up, so a location snapped onto a cell's
        // edge falls in the cell it starts.
        let nudge = w.arg(Value::Real(CELL_NUDGE));
        let (cols, rows) = (
            w.arg(Value::Integer(cols - 1)),
            w.arg(Value::Integer(rows - 1)),
        );
        let lim = w.arg(Value::Integer(
            i64::try_from(query.limit.saturating_add(1)).unwrap_or(i64::MAX),
        ));
        // Coordinates plus 180 (90) are never negative: the cast is floor.
        let sql = format!(
            "SELECT MIN(CAST((g.y + 90.0) / {cell} + {nudge} AS INTEGER), {rows}) AS r,
                    MIN(CAST((g.x + 180.0) / {cell} + {nudge} AS INTEGER), {cols}) AS k,
                    AVG(g.x), AVG(g.y), COUNT(*), MIN(g.event), SUM(COUNT(*)) OVER ()
             FROM (SELECT e.event, {lon} AS x, {lat} AS y FROM events e{}) g
             GROUP BY r, k ORDER BY COUNT(*) DESC, r, k LIMIT {lim}",
            w.sql
        );
        let mut stmt = self.conn().prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(w.args))?;
        let mut out = Clusters::default();
        while let Some(r) = rows.next()? {
            let count: u64 = fits(r.get(4)?, "events (count)")?;
            out.total = fits(r.get(6)?, "events (count)")?;
            if out.clusters.len() == query.limit {
                out.truncated = true;
                break;
            }
            out.clusters.push(Cluster {
                lon: r.get(2)?,
                lat: r.get(3)?,
                count,
                event: (count == 1)
                    .then(|| blob(r, 5, "events.event").map(EventId))
                    .transpose()?,
            });
        }
        Ok(out)
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
