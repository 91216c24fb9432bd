//! Export: the `events` view, as the store hands it out row by row
//! ([`Store::each_event_row`]), written as GeoJSON, CSV or KML. CSV and
//! KML are written by the writers the servers' export routes use
//! (`sentinel_http::formats`); GeoJSON by serde.

use std::io::{BufWriter, Write};

use sentinel_http::formats::{csv, kml};
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
            let mut out = BufWriter::new(out);
            let mut line = String::new();
            csv::record(&mut line, &CSV_HEADER);
            out.write_all(line.as_bytes())?;
            store.each_event_row(|row| {
                line.clear();
                write_csv_row(&mut line, &row)?;
                out.write_all(line.as_bytes())?;
                n_events += 1;
                Ok::<(), TransferError>(())
            })?;
            out.flush()?;
        }
        Format::Kml => {
            let mut out = BufWriter::new(out);
            out.write_all(kml::document_start("Sentinel events").as_bytes())?;
            let mut placemark = String::new();
            store.each_event_row(|row| {
                placemark.clear();
                write_placemark(&mut placemark, &row);
                out.write_all(placemark.as_bytes())?;
                n_events += 1;
                Ok::<(), TransferError>(())
            })?;
            out.write_all(kml::DOCUMENT_END.as_bytes())?;
            out.flush()?;
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

/// Appends `row` to `out` as one CSV record of [`CSV_HEADER`]'s columns.
pub(super) fn write_csv_row(out: &mut String, row: &EventRow) -> Result<(), TransferError> {
    let reported_at = rfc3339_of_ms(row.reported_ms).ok_or(TransferError::UnrepresentableTime {
        event: row.id,
        reported_ms: row.reported_ms,
    })?;
    // `f64`'s Display is the shortest text that parses back to the same
    // value, so coordinates survive the round trip exactly.
    csv::record(
        out,
        &[
            row.id.to_hex().as_str(),
            &csv::defuse(&row.title),
            &csv::defuse(&row.description),
            &csv::defuse(&row.category),
            &row.severity.to_string(),
            &csv::defuse(&row.status),
            &csv::defuse(row.assignee.as_deref().unwrap_or("")),
            &row.location.lon().to_string(),
            &row.location.lat().to_string(),
            &reported_at,
        ],
    );
    Ok(())
}

/// Appends `row` to `out` as one KML Placemark: the title its name, the
/// description, the report time (a `TimeStamp`, when RFC 3339 can write
/// it; `reported_ms` always), the point, and the rest as `ExtendedData`.
pub(super) fn write_placemark(out: &mut String, row: &EventRow) {
    let when = rfc3339_of_ms(row.reported_ms);
    let data = [
        ("id", row.id.to_hex()),
        ("category", row.category.clone()),
        ("severity", row.severity.to_string()),
        ("status", row.status.clone()),
        ("assignee", row.assignee.clone().unwrap_or_default()),
        ("reported_ms", row.reported_ms.to_string()),
        ("n_notes", row.n_notes.to_string()),
        ("n_media", row.n_media.to_string()),
    ];
    kml::placemark(
        out,
        &kml::Placemark {
            name: &row.title,
            description: Some(&row.description),
            when: when.as_deref(),
            lon: row.location.lon(),
            lat: row.location.lat(),
            data: &data,
        },
    );
}
