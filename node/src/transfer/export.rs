//! Export: the `events` view, as the store hands it out row by row
//! ([`Store::each_event_row`]), written as GeoJSON or CSV.

use std::io::{BufWriter, Write};

use serde::Serialize;
use serde_json::Value;

use super::import_csv::CSV_HEADER;
use super::time::rfc3339_of_ms;
use super::{Format, TransferError};
use crate::store::export::EventRow;
use crate::store::Store;

/// Writes every event in the `events` view to `out`, one row at a time,
/// and returns how many. On error, `out` holds a partial file.
pub fn export(format: Format, store: &Store, out: &mut impl Write) -> Result<usize, TransferError> {
    let mut n_events = 0;
    match format {
        Format::GeoJson => {
            // Buffered here because callers pass files, and the writer
            // makes many small writes per feature.
            let mut out = BufWriter::new(out);
            out.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[")?;
            store.each_event_row(|row| {
                // One feature per line keeps large exports greppable and
                // diffable.
                out.write_all(if n_events == 0 { b"\n" } else { b",\n" })?;
                write_feature(&mut out, &row)?;
                n_events += 1;
                Ok::<(), TransferError>(())
            })?;
            out.write_all(b"\n]}\n")?;
            out.flush()?;
        }
        Format::Csv => {
            let csv_error = |e: csv::Error| TransferError::Csv(e.to_string());
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(CSV_HEADER).map_err(csv_error)?;
            store.each_event_row(|row| {
                write_csv_row(&mut writer, &row)?;
                n_events += 1;
                Ok::<(), TransferError>(())
            })?;
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

pub(super) fn write_feature(out: &mut impl Write, row: &EventRow) -> Result<(), TransferError> {
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
    row: &EventRow,
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
