//! Moving events in and out of the node as files: GeoJSON and CSV, for
//! `sentinel-node export --format geojson|csv` and `sentinel-node import
//! FILE`.
//!
//! Import ([`parse`]) turns a file into [`ImportRecord`]s and does nothing
//! else: every record is checked with the same rules the node applies to a
//! locally reported event, and one bad record refuses the whole file, so a
//! caller that commits the records afterwards never stops half way because
//! of the file's content. Export ([`export`]) streams the `events` view, so
//! memory does not grow with the number of events.
//!
//! An export re-imports: the import reads the exported `id` (so a caller
//! can skip events it already holds) and accepts, without reading them, the
//! export-only fields (`status`, `assignee`, `n_notes`, `n_media`,
//! `conflicts`, and `reported_ms` next to `reported_at`). Status, assignee,
//! notes and media are history made by edits, not part of a report, so an
//! import does not recreate them. Any other field is refused by name: a
//! misspelt `desciption` silently dropped would lose the officer's text.
//!
//! Never does: write to the store (export reads it through the store's
//! own rows), read the clock.

use std::path::Path;
use std::str::FromStr;

use sentinel_schema::{EventError, EventId, NewEvent};

// The code: `import_geojson` and `import_csv` read the two formats,
// `export` writes them, and `time` converts report times to and from
// RFC 3339.
mod export;
mod import_csv;
mod import_geojson;
#[cfg(test)]
mod tests;
mod time;

pub use export::export;

use import_csv::parse_csv;
use import_geojson::parse_geojson;

/// Largest file [`parse`] reads. Checked before any decoding.
pub const MAX_INPUT_BYTES: usize = 256 * 1024 * 1024;
/// Most records (features or CSV rows) one file may hold. Counted while
/// decoding, so a file over the limit is refused at its first extra record.
pub const MAX_RECORDS: usize = 1_000_000;

/// A file format for import and export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A GeoJSON (RFC 7946) FeatureCollection of Point features.
    GeoJson,
    /// Comma-separated values with a header row.
    Csv,
}

/// A format name that is neither `geojson` nor `csv`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {found:?}: expected `geojson` or `csv`")]
pub struct ParseFormatError {
    pub found: String,
}

impl FromStr for Format {
    type Err = ParseFormatError;

    /// `geojson` or `csv`, in any case.
    fn from_str(s: &str) -> Result<Format, ParseFormatError> {
        if s.eq_ignore_ascii_case("geojson") {
            Ok(Format::GeoJson)
        } else if s.eq_ignore_ascii_case("csv") {
            Ok(Format::Csv)
        } else {
            Err(ParseFormatError {
                found: s.to_owned(),
            })
        }
    }
}

impl Format {
    /// The format a file's extension names (`.geojson` or `.json` for
    /// GeoJSON, `.csv` for CSV, in any case); `None` for anything else.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?;
        if ext.eq_ignore_ascii_case("geojson") || ext.eq_ignore_ascii_case("json") {
            Some(Format::GeoJson)
        } else if ext.eq_ignore_ascii_case("csv") {
            Some(Format::Csv)
        } else {
            None
        }
    }
}

/// One event read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRecord {
    /// The event's id when the file names one (an export always does), so
    /// that re-importing an export can skip events that already exist.
    pub id: Option<EventId>,
    /// The report, already checked with the node's rules for a new event.
    pub new: NewEvent,
}

/// Why an import or export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// A record breaks a rule. `index` is the 1-based feature number in
    /// GeoJSON, or the line number in CSV (the header is line 1; a record
    /// spanning lines is named by its first). `field` is the property or
    /// column name as the file spells it; CSV header problems are reported
    /// at line 1 under the column's name.
    #[error("record {index}, field `{field}`: {reason}")]
    Record {
        index: usize,
        field: String,
        reason: String,
    },
    /// The input is not well-formed JSON (syntax, truncation, nesting too
    /// deep, trailing data).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The input is not well-formed CSV (unequal row lengths, invalid
    /// UTF-8, no header row), or the CSV writer failed.
    #[error("invalid CSV: {0}")]
    Csv(String),
    /// The input is larger than [`MAX_INPUT_BYTES`]; nothing was decoded.
    #[error("input is {size} bytes, at most {max} allowed")]
    TooLarge { size: usize, max: usize },
    /// The input holds more than [`MAX_RECORDS`] records.
    #[error("input holds more than {MAX_RECORDS} records")]
    TooManyRecords,
    /// The JSON is well-formed but not a GeoJSON FeatureCollection (or a
    /// single Feature): the top level is not an object, its `type` is
    /// something else, or `features` is not an array.
    #[error("not a GeoJSON FeatureCollection or Feature")]
    NotAFeatureCollection,
    /// Export to CSV: the event was reported after 9999-12-31, which RFC
    /// 3339 cannot write. GeoJSON exports such an event with
    /// `reported_at: null` and its `reported_ms`.
    #[error("event {event}: reported_ms {reported_ms} is after year 9999 and has no RFC 3339 form; export as GeoJSON instead")]
    UnrepresentableTime { event: EventId, reported_ms: u64 },
    /// Export: reading the `events` view failed, or a row holds a value
    /// the view never writes (`StoreError::CorruptEventRow`: the file was
    /// damaged or edited).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Export: writing the output failed.
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
}

fn refused(index: usize, field: &str, reason: impl Into<String>) -> TransferError {
    TransferError::Record {
        index,
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// At most 32 characters of outside text, for error messages.
fn preview(s: &str) -> String {
    s.chars().take(32).collect()
}

// ---- Import ----

/// Reads every record of `input`, or refuses the whole input at its first
/// bad record.
pub fn parse(format: Format, input: &[u8]) -> Result<Vec<ImportRecord>, TransferError> {
    parse_with_limits(format, input, MAX_INPUT_BYTES, MAX_RECORDS)
}

/// [`parse`] with explicit limits, so tests can reach them cheaply.
fn parse_with_limits(
    format: Format,
    input: &[u8],
    max_bytes: usize,
    max_records: usize,
) -> Result<Vec<ImportRecord>, TransferError> {
    if input.len() > max_bytes {
        return Err(TransferError::TooLarge {
            size: input.len(),
            max: max_bytes,
        });
    }
    // Spreadsheet programs on Windows start UTF-8 files with a byte order
    // mark; neither decoder wants it.
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    match format {
        Format::GeoJson => parse_geojson(input, max_records),
        Format::Csv => parse_csv(input, max_records),
    }
}

/// Where a record's report time came from, to name it in errors.
#[derive(Clone, Copy)]
enum TimeField {
    ReportedAt,
    ReportedMs,
}

impl TimeField {
    fn name(self) -> &'static str {
        match self {
            TimeField::ReportedAt => "reported_at",
            TimeField::ReportedMs => "reported_ms",
        }
    }
}

/// Checks `new` with the node's own rules for a new event
/// ([`NewEvent::validate`], the checks `EventDoc::create` makes).
fn validated(
    index: usize,
    id: Option<EventId>,
    new: NewEvent,
    time: TimeField,
    location_field: &str,
) -> Result<ImportRecord, TransferError> {
    match new.validate() {
        Ok(()) => Ok(ImportRecord { id, new }),
        Err(EventError::Invalid { field, reason }) => {
            let field = match field {
                "reported_ms" => time.name(),
                "location" => location_field,
                other => other,
            };
            Err(refused(index, field, reason))
        }
        Err(other) => Err(refused(index, "event", other.to_string())),
    }
}

/// An event id in its hex form; empty means none.
fn event_id(index: usize, field: &str, text: &str) -> Result<Option<EventId>, TransferError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<EventId>().map(Some).map_err(|_| {
        refused(
            index,
            field,
            format!("{:?} is not an event id (32 hex digits)", preview(text)),
        )
    })
}
