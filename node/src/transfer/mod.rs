//! Moving events in and out of the node as files: GeoJSON, CSV and KML,
//! for `sentinel-node export --format geojson|csv|kml` and
//! `sentinel-node import FILE`.
//!
//! Import ([`parse`], [`parse_with`]) turns a file into [`ImportRecord`]s
//! and does nothing else: every record is checked with the same rules the
//! node applies to a locally reported event, and one bad record refuses
//! the whole file, so a caller that commits the records afterwards never
//! stops half way because of the file's content. A refusal names the
//! record (its number, and its title and id where it has them) and the
//! field. Export ([`export`]) streams the `events` view, so memory does
//! not grow with the number of events; its CSV and KML are written by the
//! same writers as the servers' export routes (`sentinel_http::formats`).
//!
//! An export re-imports: the import reads the exported `id` (so a caller
//! can skip events it already holds) and accepts, without reading them, the
//! export-only fields (`status`, `assignee`, `n_notes`, `n_media`,
//! `conflicts`, `has_conflicts`). Status, assignee, notes and media are
//! history made by edits, not part of a report, so an import does not
//! recreate them. Any other field is refused by name: a misspelt
//! `desciption` silently dropped would lose the officer's text.
//!
//! Files other tools wrote ([`ImportOptions`]): their names for the
//! fields are mapped onto the event's ([`FieldMap`], `--map
//! title=name,category=type`), what the import does not know may be
//! skipped instead of refused (`--ignore-unknown`), and a record without
//! a time takes the caller's (the command line's: the time the import
//! runs, as `report` takes the time it runs). CSV reads `latitude`/`y` and
//! `longitude`/`lng`/`x` too, and `;` as the separator where the header
//! has no comma. Geometries other than a point (lines, polygons, `Multi*`)
//! are refused naming the record: an event is a point.
//!
//! Never does: write to the store (export reads it through the store's
//! own rows), read the clock.

use std::path::Path;
use std::str::FromStr;

use sentinel_schema::{EventError, EventId, NewEvent};

// The code: `import_geojson`, `import_csv` and `import_kml` read the
// three formats, through what `fields` gives them all (the mapping, one
// event from text fields); `export` writes them, and `time` converts
// report times to and from RFC 3339.
mod export;
mod fields;
mod import_csv;
mod import_geojson;
mod import_kml;
#[cfg(test)]
mod tests;
mod time;

pub use export::export;
pub use fields::{FieldMap, MapError, FIELDS};

use import_csv::parse_csv;
use import_geojson::parse_geojson;
use import_kml::parse_kml;

/// Largest file [`parse`] reads. Checked before any decoding.
pub const MAX_INPUT_BYTES: usize = 256 * 1024 * 1024;
/// Most records (features, CSV rows or placemarks) one file may hold.
/// Counted while decoding, so a file over the limit is refused at its
/// first extra record.
pub const MAX_RECORDS: usize = 1_000_000;

/// A file format for import and export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A GeoJSON (RFC 7946) FeatureCollection of Point features.
    GeoJson,
    /// Comma-separated values with a header row.
    Csv,
    /// KML 2.2: a Document of Placemarks with Point geometries.
    Kml,
}

/// A format name that is not `geojson`, `csv` or `kml`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {found:?}: expected `geojson`, `csv` or `kml`")]
pub struct ParseFormatError {
    pub found: String,
}

impl FromStr for Format {
    type Err = ParseFormatError;

    /// `geojson`, `csv` or `kml`, in any case.
    fn from_str(s: &str) -> Result<Format, ParseFormatError> {
        if s.eq_ignore_ascii_case("geojson") {
            Ok(Format::GeoJson)
        } else if s.eq_ignore_ascii_case("csv") {
            Ok(Format::Csv)
        } else if s.eq_ignore_ascii_case("kml") {
            Ok(Format::Kml)
        } else {
            Err(ParseFormatError {
                found: s.to_owned(),
            })
        }
    }
}

impl Format {
    /// The format a file's extension names (`.geojson` or `.json` for
    /// GeoJSON, `.csv` for CSV, `.kml` for KML, in any case); `None` for
    /// anything else.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?;
        if ext.eq_ignore_ascii_case("geojson") || ext.eq_ignore_ascii_case("json") {
            Some(Format::GeoJson)
        } else if ext.eq_ignore_ascii_case("csv") {
            Some(Format::Csv)
        } else if ext.eq_ignore_ascii_case("kml") {
            Some(Format::Kml)
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

/// How to read a file another tool wrote. The default reads exports of
/// this node: no mapping, nothing unknown, a time on every record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// The file's names for the event's fields.
    pub map: FieldMap,
    /// Skip properties, columns and ExtendedData the import does not know
    /// (after the mapping) rather than refuse the file naming them.
    pub ignore_unknown: bool,
    /// The report time of a record that has none (`None`: such a record
    /// is refused). The command line passes the time the import runs.
    pub default_reported_ms: Option<u64>,
}

/// Why an import or export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// A record breaks a rule. `index` is the 1-based feature number in
    /// GeoJSON, the line number in CSV (the header is line 1; a record
    /// spanning lines is named by its first), the 1-based placemark number
    /// in KML. `label` names the record by its title and id where it has
    /// them. `field` is the field's name (as the file spells it, where
    /// `--map` renamed it); CSV header problems are reported at line 1
    /// under the column's name.
    #[error("record {index}{}, field `{field}`: {reason}", in_parens(.label))]
    Record {
        index: usize,
        label: Option<String>,
        field: String,
        reason: String,
    },
    /// The input is not well-formed XML, or is XML this import refuses (a
    /// DOCTYPE, whose entities could expand without bound or read local
    /// files; an entity other than XML's own). `line` and `column` are
    /// 1-based, the column in bytes.
    #[error("invalid XML at line {line}, column {column}: {reason}")]
    Xml {
        line: usize,
        column: usize,
        reason: String,
    },
    /// The input is XML but not a KML document (its root is not `kml`).
    #[error("not a KML document: {0}")]
    NotKml(String),
    /// The input is not well-formed JSON (syntax, truncation, nesting too
    /// deep, trailing data).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The input is not well-formed CSV (unequal row lengths, invalid
    /// UTF-8, no header row).
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
    /// `reported_at: null` and its `reported_ms`, KML without a
    /// `TimeStamp` and with its `reported_ms`.
    #[error("event {event}: reported_ms {reported_ms} is after year 9999 and has no RFC 3339 form; export as GeoJSON or KML instead")]
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
        label: None,
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// ` (label)`, or nothing.
fn in_parens(label: &Option<String>) -> String {
    label
        .as_ref()
        .map(|l| format!(" ({l})"))
        .unwrap_or_default()
}

impl TransferError {
    /// A record's refusal, named by `label` (see [`fields::label`]) if it
    /// is not named yet.
    fn labelled(self, label: Option<String>) -> TransferError {
        match self {
            TransferError::Record {
                index,
                label: None,
                field,
                reason,
            } => TransferError::Record {
                index,
                label,
                field,
                reason,
            },
            other => other,
        }
    }
}

/// At most 32 characters of outside text, for error messages.
fn preview(s: &str) -> String {
    s.chars().take(32).collect()
}

// ---- Import ----

/// Reads every record of `input`, an export of this node (the default
/// [`ImportOptions`]), or refuses the whole input at its first bad record.
pub fn parse(format: Format, input: &[u8]) -> Result<Vec<ImportRecord>, TransferError> {
    parse_with(format, input, &ImportOptions::default())
}

/// Reads every record of `input` as `options` say, or refuses the whole
/// input at its first bad record.
pub fn parse_with(
    format: Format,
    input: &[u8],
    options: &ImportOptions,
) -> Result<Vec<ImportRecord>, TransferError> {
    parse_bounded(format, input, options, MAX_INPUT_BYTES, MAX_RECORDS)
}

/// [`parse`] with explicit limits, so tests can reach them cheaply.
#[cfg(test)]
fn parse_with_limits(
    format: Format,
    input: &[u8],
    max_bytes: usize,
    max_records: usize,
) -> Result<Vec<ImportRecord>, TransferError> {
    parse_bounded(
        format,
        input,
        &ImportOptions::default(),
        max_bytes,
        max_records,
    )
}

/// [`parse_with`] with explicit limits.
fn parse_bounded(
    format: Format,
    input: &[u8],
    options: &ImportOptions,
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
    // mark; no decoder wants it.
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let parsed = match format {
        Format::GeoJson => parse_geojson(input, max_records, options),
        Format::Csv => parse_csv(input, max_records, options),
        Format::Kml => parse_kml(input, max_records, options),
    };
    parsed.map_err(|e| options.map.name_in_file(e))
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
