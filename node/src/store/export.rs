//! The `events` view row by row, for `sentinel-node export`
//! (`crate::transfer`): streamed, so memory does not grow with the number
//! of events, and checked, because the database file is outside input too.
//!
//! Never does: write the file formats (that is `crate::transfer`).

use sentinel_schema::{EventId, Point};
use serde_json::Value;

use super::{Store, StoreError};

/// One row of the `events` view, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub id: EventId,
    pub title: String,
    pub description: String,
    pub category: String,
    pub severity: u8,
    pub status: String,
    pub assignee: Option<String>,
    pub location: Point,
    pub reported_ms: u64,
    pub n_notes: u32,
    pub n_media: u32,
    /// Always a JSON object.
    pub conflicts: Value,
}

/// The columns [`read_row`] reads, in order. Ascending report time, then
/// id, so an export is stable and reads as a timeline;
/// `events_by_reported` serves this order scanned backwards.
const EXPORT_SQL: &str = "SELECT fid, event, title, description, category, severity, status,
        assignee, lon, lat, reported_ms, n_notes, n_media, conflicts
    FROM events ORDER BY reported_ms, event";

/// Reads a row. Every value the view guarantees is checked rather than
/// trusted.
fn read_row(row: &rusqlite::Row<'_>) -> Result<EventRow, StoreError> {
    let fid: i64 = row.get(0)?;
    let corrupt = |column| StoreError::CorruptEventRow { fid, column };
    let event: Vec<u8> = row.get(1)?;
    let id = <[u8; EventId::LEN]>::try_from(event.as_slice())
        .map(EventId)
        .map_err(|_| corrupt("event"))?;
    let severity: i64 = row.get(5)?;
    let location = Point::new(row.get(8)?, row.get(9)?).map_err(|_| corrupt("lon/lat"))?;
    let reported_ms: i64 = row.get(10)?;
    let n_notes: i64 = row.get(11)?;
    let n_media: i64 = row.get(12)?;
    let conflicts: String = row.get(13)?;
    let conflicts = serde_json::from_str::<Value>(&conflicts)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| corrupt("conflicts"))?;
    Ok(EventRow {
        id,
        title: row.get(2)?,
        description: row.get(3)?,
        category: row.get(4)?,
        severity: u8::try_from(severity).map_err(|_| corrupt("severity"))?,
        status: row.get(6)?,
        assignee: row.get(7)?,
        location,
        reported_ms: u64::try_from(reported_ms).map_err(|_| corrupt("reported_ms"))?,
        n_notes: u32::try_from(n_notes).map_err(|_| corrupt("n_notes"))?,
        n_media: u32::try_from(n_media).map_err(|_| corrupt("n_media"))?,
        conflicts,
    })
}

impl Store {
    /// Calls `each` with every row of the `events` view, ascending by
    /// report time then id, one row at a time; stops at the first error
    /// (the store's, turned into `E`, or `each`'s own).
    pub fn each_event_row<E: From<StoreError>>(
        &self,
        mut each: impl FnMut(EventRow) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut stmt = self.conn().prepare(EXPORT_SQL).map_err(StoreError::from)?;
        let mut rows = stmt.query([]).map_err(StoreError::from)?;
        while let Some(row) = rows.next().map_err(StoreError::from)? {
            each(read_row(row)?)?;
        }
        Ok(())
    }
}

/// Rows written straight into the view, for tests of what reads it
/// (export, corrupt files).
#[cfg(test)]
pub(crate) mod test_rows {
    use super::*;

    /// Writes `row` into the `events` view at `fid` (`created_by`
    /// "tester").
    pub(crate) fn insert(store: &Store, fid: i64, row: &EventRow) {
        store
            .conn()
            .execute(
                "INSERT INTO events (fid, event, event_hex, title, description, category,
                     severity, status, assignee, lon, lat, reported_ms, created_by,
                     updated_hlc_ms, updated_hlc_counter, n_notes, n_media, conflicts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'tester', 0, 0,
                     ?13, ?14, ?15)",
                rusqlite::params![
                    fid,
                    row.id.as_bytes().to_vec(),
                    row.id.to_hex(),
                    row.title,
                    row.description,
                    row.category,
                    row.severity,
                    row.status,
                    row.assignee,
                    row.location.lon(),
                    row.location.lat(),
                    row.reported_ms as i64,
                    row.n_notes,
                    row.n_media,
                    row.conflicts.to_string(),
                ],
            )
            .unwrap();
    }

    /// Damages every row: `set` is the SET clause (`lon = 500`).
    pub(crate) fn damage(store: &Store, set: &str) {
        store
            .conn()
            .execute(&format!("UPDATE events SET {set}"), [])
            .unwrap();
    }
}
