//! Export: the `events` view streamed to GeoJSON or CSV, one row at a
//! time.

use std::io::{BufWriter, Write};

use sentinel_schema::{EventId, Point};
use serde::Serialize;
use serde_json::Value;

use super::import_csv::CSV_HEADER;
use super::time::rfc3339_of_ms;
use super::{Format, TransferError};

/// One row of the `events` view, checked.
pub(super) struct ExportRow {
    pub(super) id: EventId,
    pub(super) title: String,
    pub(super) description: String,
    pub(super) category: String,
    pub(super) severity: u8,
    pub(super) status: String,
    pub(super) assignee: Option<String>,
    pub(super) location: Point,
    pub(super) reported_ms: u64,
    pub(super) n_notes: u32,
    pub(super) n_media: u32,
    /// Always a JSON object.
    pub(super) conflicts: Value,
}

/// The columns [`read_row`] reads, in order. Ascending report time, then
/// id, so an export is stable and reads as a timeline;
/// `events_by_reported` serves this order scanned backwards.
const EXPORT_SQL: &str = "SELECT fid, event, title, description, category, severity, status,
        assignee, lon, lat, reported_ms, n_notes, n_media, conflicts
    FROM events ORDER BY reported_ms, event";

/// Reads a row. The database file is outside input too, so every value
/// that the view guarantees is checked rather than trusted.
fn read_row(row: &rusqlite::Row<'_>) -> Result<ExportRow, TransferError> {
    let fid: i64 = row.get(0)?;
    let corrupt = |column| TransferError::CorruptRow { fid, column };
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
    Ok(ExportRow {
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

/// Writes every event in the `events` view to `out`, one row at a time,
/// and returns how many. On error, `out` holds a partial file.
pub fn export(
    format: Format,
    conn: &rusqlite::Connection,
    out: &mut impl Write,
) -> Result<usize, TransferError> {
    let mut stmt = conn.prepare(EXPORT_SQL)?;
    let mut rows = stmt.query([])?;
    let mut n_events = 0;
    match format {
        Format::GeoJson => {
            // Buffered here because callers pass files, and the writer
            // makes many small writes per feature.
            let mut out = BufWriter::new(out);
            out.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[")?;
            while let Some(row) = rows.next()? {
                let row = read_row(row)?;
                // One feature per line keeps large exports greppable and
                // diffable.
                out.write_all(if n_events == 0 { b"\n" } else { b",\n" })?;
                write_feature(&mut out, &row)?;
                n_events += 1;
            }
            out.write_all(b"\n]}\n")?;
            out.flush()?;
        }
        Format::Csv => {
            let csv_error = |e: csv::Error| TransferError::Csv(e.to_string());
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(CSV_HEADER).map_err(csv_error)?;
            while let Some(row) = rows.next()? {
                write_csv_row(&mut writer, &read_row(row)?)?;
                n_events += 1;
            }
            // Dropping the writer would flush too, but swallow the error.
            writer.flush()?;
        }
    }
    Ok(n_events)
}

#[derive(Serialize)]
struct FeatureOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    /// GIS tools key features by this; the import reads `properties.id`.
    id: &'a str,
    geometry: PointOut,
    properties: PropertiesOut<'a>,
}

#[derive(Serialize)]
struct PointOut {
    #[serde(rename = "type")]
    kind: &'static str,
    coordinates: [f64; 2],
}

#[derive(Serialize)]
struct PropertiesOut<'a> {
    id: &'a str,
    title: &'a str,
    description: &'a str,
    category: &'a str,
    severity: u8,
    status: &'a str,
    assignee: Option<&'a str>,
    /// `None` (null) after year 9999; `reported_ms` still holds the time.
    reported_at: Option<String>,
    reported_ms: u64,
    n_notes: u32,
    n_media: u32,
    conflicts: &'a Value,
}

pub(super) fn write_feature(out: &mut impl Write, row: &ExportRow) -> Result<(), TransferError> {
    let id = row.id.to_hex();
    let feature = FeatureOut {
        kind: "Feature",
        id: &id,
        geometry: PointOut {
            kind: "Point",
            coordinates: [row.location.lon(), row.location.lat()],
        },
        properties: PropertiesOut {
            id: &id,
            title: &row.title,
            description: &row.description,
            category: &row.category,
            severity: row.severity,
            status: &row.status,
            assignee: row.assignee.as_deref(),
            reported_at: rfc3339_of_ms(row.reported_ms),
            reported_ms: row.reported_ms,
            n_notes: row.n_notes,
            n_media: row.n_media,
            conflicts: &row.conflicts,
        },
    };
    serde_json::to_writer(out, &feature).map_err(|e| {
        // serde_json reports the writer's IO errors as its own.
        match e.io_error_kind() {
            Some(kind) => TransferError::Io(std::io::Error::new(kind, e)),
            None => TransferError::Json(e.to_string()),
        }
    })
}

pub(super) fn write_csv_row<W: Write>(
    writer: &mut csv::Writer<W>,
    row: &ExportRow,
) -> Result<(), TransferError> {
    let reported_at = rfc3339_of_ms(row.reported_ms).ok_or(TransferError::UnrepresentableTime {
        event: row.id,
        reported_ms: row.reported_ms,
    })?;
    // `f64`'s Display is the shortest text that parses back to the same
    // value, so coordinates survive the round trip exactly.
    writer
        .write_record([
            row.id.to_hex().as_str(),
            &row.title,
            &row.description,
            &row.category,
            &row.severity.to_string(),
            &row.status,
            row.assignee.as_deref().unwrap_or(""),
            &row.location.lon().to_string(),
            &row.location.lat().to_string(),
            &reported_at,
        ])
        .map_err(|e| TransferError::Csv(e.to_string()))
}
