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
//! Never does: write to the store, read the clock.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, UNIX_EPOCH};

use sentinel_schema::{EventError, EventId, NewEvent, Point};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::Value;

/// Largest file [`parse`] reads. Checked before any decoding.
pub const MAX_INPUT_BYTES: usize = 256 * 1024 * 1024;
/// Most records (features or CSV rows) one file may hold. Counted while
/// decoding, so a file over the limit is refused at its first extra record.
pub const MAX_RECORDS: usize = 1_000_000;

/// Largest Unix second RFC 3339 can write (9999-12-31T23:59:59Z): its
/// year has four digits.
const MAX_RFC3339_SECONDS: u64 = 253_402_300_800 - 1;

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
    /// Export: a row of the `events` view holds a value the view never
    /// writes (the file was damaged or edited).
    #[error("events row {fid}: corrupt value in column `{column}`")]
    CorruptRow { fid: i64, column: &'static str },
    /// Export to CSV: the event was reported after 9999-12-31, which RFC
    /// 3339 cannot write. GeoJSON exports such an event with
    /// `reported_at: null` and its `reported_ms`.
    #[error("event {event}: reported_ms {reported_ms} is after year 9999 and has no RFC 3339 form; export as GeoJSON instead")]
    UnrepresentableTime { event: EventId, reported_ms: u64 },
    /// Export: reading the `events` view failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
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

/// An RFC 3339 time as Unix milliseconds; finer fractions are dropped.
/// A local time in 1969 is refused even when its offset puts it in 1970
/// UTC, because humantime checks the year first; no report is that old.
///
/// humantime parses UTC times only (`Z` or `+00:00`), while many tools
/// write local time with an offset, so a numeric offset is taken off here
/// and applied afterwards.
fn rfc3339_ms(text: &str) -> Result<u64, String> {
    let not_rfc3339 = |why: &dyn std::fmt::Display| {
        format!(
            "{:?} is not an RFC 3339 time such as 2024-05-01T12:00:00Z: {why}",
            preview(text)
        )
    };
    // RFC 3339 allows a lowercase `t` and `z`; humantime does not.
    let upper = text.trim().to_ascii_uppercase();
    let (utc, offset_s) = split_offset(&upper).map_err(|why| not_rfc3339(&why))?;
    let time = humantime::parse_rfc3339(&utc).map_err(|e| not_rfc3339(&e))?;
    let since_epoch = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| not_rfc3339(&"before 1970"))?;
    let ms = i128::try_from(since_epoch.as_millis()).map_err(|_| not_rfc3339(&"out of range"))?
        - i128::from(offset_s) * 1000;
    u64::try_from(ms).map_err(|_| not_rfc3339(&"before 1970"))
}

/// Splits a trailing `+hh:mm` / `-hh:mm` offset off an upper-cased RFC
/// 3339 time, returning the time with `Z` instead and the offset in
/// seconds east of UTC. A time that ends in `Z` is returned as it is.
fn split_offset(text: &str) -> Result<(String, i64), String> {
    let b = text.as_bytes();
    // Shortest time with an offset: "2024-05-01T12:00:00+01:00".
    if b.len() < 25 {
        return Ok((text.to_owned(), 0));
    }
    let at = b.len() - 6;
    let sign = match b[at] {
        b'+' => 1,
        b'-' => -1,
        _ => return Ok((text.to_owned(), 0)),
    };
    let digit = |i: usize| {
        char::from(b[i])
            .to_digit(10)
            .map(i64::from)
            .ok_or_else(|| "the offset is not +hh:mm or -hh:mm".to_owned())
    };
    if b[at + 3] != b':' {
        return Err("the offset is not +hh:mm or -hh:mm".to_owned());
    }
    let hours = digit(at + 1)? * 10 + digit(at + 2)?;
    let minutes = digit(at + 4)? * 10 + digit(at + 5)?;
    if hours > 23 || minutes > 59 {
        return Err("the offset is out of range".to_owned());
    }
    // `at` holds an ASCII byte, so it is a character boundary and `get`
    // always succeeds; it is `get` only so that nothing here can panic.
    let local = text.get(..at).ok_or_else(|| "not ASCII".to_owned())?;
    Ok((format!("{local}Z"), sign * (hours * 3600 + minutes * 60)))
}

/// Unix milliseconds as RFC 3339 with milliseconds, in UTC; `None` after
/// year 9999.
fn rfc3339_of_ms(ms: u64) -> Option<String> {
    if ms / 1000 > MAX_RFC3339_SECONDS {
        return None;
    }
    let time = UNIX_EPOCH.checked_add(Duration::from_millis(ms))?;
    let mut out = String::new();
    // humantime's Display fails (rather than panics) past year 9999, which
    // the check above already excludes; `write!` keeps that a `None`.
    write!(out, "{}", humantime::format_rfc3339_millis(time)).ok()?;
    Some(out)
}

// ---- GeoJSON import ----

/// Properties the import reads.
const GEOJSON_READ: [&str; 7] = [
    "id",
    "title",
    "description",
    "category",
    "severity",
    "reported_at",
    "reported_ms",
];
/// Properties an export writes that the import accepts but does not read.
const GEOJSON_EXPORT_ONLY: [&str; 5] = ["status", "assignee", "n_notes", "n_media", "conflicts"];

fn parse_geojson(input: &[u8], max_records: usize) -> Result<Vec<ImportRecord>, TransferError> {
    let mut records = Vec::new();
    let mut refusal = None;
    let mut de = serde_json::Deserializer::from_slice(input);
    let top = Document {
        records: &mut records,
        refusal: &mut refusal,
        max_records,
    }
    .deserialize(&mut de)
    .and_then(|top| de.end().map(|()| top));
    let top = match top {
        Ok(top) => top,
        // A record refused inside the decoder aborts it with a placeholder
        // error; the real reason was kept aside.
        Err(e) => {
            return Err(match refusal {
                Some(refusal) => refusal,
                // Every value is decoded as untyped JSON except the top
                // level (an object) and `features` (an array), so a data
                // error can only mean one of those has the wrong shape.
                None if e.classify() == serde_json::error::Category::Data => {
                    TransferError::NotAFeatureCollection
                }
                None => TransferError::Json(e.to_string()),
            });
        }
    };
    match top.kind.as_ref().and_then(Value::as_str) {
        Some("FeatureCollection") if top.has_features => Ok(records),
        Some("Feature") if !top.has_features => {
            // A lone Feature is one record; its parts were kept as JSON.
            if max_records == 0 {
                return Err(TransferError::TooManyRecords);
            }
            let mut feature = serde_json::Map::new();
            feature.insert("type".to_owned(), Value::from("Feature"));
            for (key, value) in [("geometry", top.geometry), ("properties", top.properties)] {
                if let Some(value) = value {
                    feature.insert(key.to_owned(), value);
                }
            }
            Ok(vec![feature_record(1, &Value::Object(feature))?])
        }
        _ => Err(TransferError::NotAFeatureCollection),
    }
}

/// The top level of a GeoJSON document, as far as the import cares.
#[derive(Default)]
struct TopLevel {
    kind: Option<Value>,
    has_features: bool,
    geometry: Option<Value>,
    properties: Option<Value>,
}

/// Decodes the top-level object. Features are turned into records as
/// they are decoded, so only one feature is ever held as untyped JSON:
/// a large file costs its records, not a tree of every value in it.
struct Document<'a> {
    records: &'a mut Vec<ImportRecord>,
    refusal: &'a mut Option<TransferError>,
    max_records: usize,
}

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = TopLevel;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<TopLevel, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = TopLevel;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a GeoJSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
        let mut top = TopLevel::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" => top.kind = Some(map.next_value()?),
                "features" => {
                    // A second `features` would append to the first.
                    if top.has_features {
                        *self.refusal =
                            Some(TransferError::Json("`features` appears twice".to_owned()));
                        return Err(de::Error::duplicate_field("features"));
                    }
                    map.next_value_seed(Features {
                        records: &mut *self.records,
                        refusal: &mut *self.refusal,
                        max_records: self.max_records,
                    })?;
                    top.has_features = true;
                }
                "geometry" => top.geometry = Some(map.next_value()?),
                "properties" => top.properties = Some(map.next_value()?),
                // `bbox`, `crs`, a Feature's `id` and foreign members.
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(top)
    }
}

/// Decodes the `features` array one feature at a time.
struct Features<'a> {
    records: &'a mut Vec<ImportRecord>,
    refusal: &'a mut Option<TransferError>,
    max_records: usize,
}

impl<'de> DeserializeSeed<'de> for Features<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Features<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of features")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(feature) = seq.next_element::<Value>()? {
            let index = self.records.len() + 1;
            let result = if index > self.max_records {
                Err(TransferError::TooManyRecords)
            } else {
                feature_record(index, &feature)
            };
            match result {
                Ok(record) => self.records.push(record),
                Err(e) => {
                    *self.refusal = Some(e);
                    return Err(de::Error::custom("record refused"));
                }
            }
        }
        Ok(())
    }
}

/// One Feature as a record; `index` is its 1-based number.
fn feature_record(index: usize, feature: &Value) -> Result<ImportRecord, TransferError> {
    let Value::Object(feature) = feature else {
        return Err(refused(index, "feature", "is not a JSON object"));
    };
    match feature.get("type") {
        Some(Value::String(t)) if t == "Feature" => {}
        _ => return Err(refused(index, "type", "must be \"Feature\"")),
    }
    let location = geometry_point(index, feature.get("geometry"))?;
    let Some(Value::Object(props)) = feature.get("properties") else {
        return Err(refused(index, "properties", "must be a JSON object"));
    };
    if let Some(unknown) = props
        .keys()
        .find(|k| !GEOJSON_READ.contains(&k.as_str()) && !GEOJSON_EXPORT_ONLY.contains(&k.as_str()))
    {
        return Err(refused(
            index,
            &preview(unknown),
            format!(
                "unknown property; known properties are {}",
                GEOJSON_READ.join(", ")
            ),
        ));
    }
    // Tools write `null` for an empty attribute: null counts as absent.
    let prop = |name: &str| props.get(name).filter(|v| !v.is_null());
    let text = |name: &str| -> Result<Option<String>, TransferError> {
        match prop(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(refused(index, name, "must be a string")),
        }
    };
    let required = |name: &str| -> Result<String, TransferError> {
        text(name)?.ok_or_else(|| refused(index, name, "is required"))
    };

    let id = match text("id")? {
        Some(hex) => event_id(index, "id", &hex)?,
        None => None,
    };
    let title = required("title")?;
    let description = text("description")?.unwrap_or_default();
    let category = required("category")?;
    let severity = match prop("severity") {
        None => return Err(refused(index, "severity", "is required")),
        Some(v) => v
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| {
                refused(
                    index,
                    "severity",
                    format!("{} is not an integer in 1..=5", preview(&v.to_string())),
                )
            })?,
    };
    // `reported_at` is what people read and edit, so it wins; an export
    // writes both, always agreeing.
    let (reported_ms, time) = match (text("reported_at")?, prop("reported_ms")) {
        (Some(at), _) => (
            rfc3339_ms(&at).map_err(|why| refused(index, "reported_at", why))?,
            TimeField::ReportedAt,
        ),
        (None, Some(ms)) => (
            ms.as_u64().ok_or_else(|| {
                refused(
                    index,
                    "reported_ms",
                    format!(
                        "{} is not a whole number of milliseconds since 1970",
                        preview(&ms.to_string())
                    ),
                )
            })?,
            TimeField::ReportedMs,
        ),
        (None, None) => {
            return Err(refused(
                index,
                "reported_at",
                "is required (or reported_ms)",
            ))
        }
    };
    let new = NewEvent {
        title,
        description,
        category,
        severity,
        location,
        reported_ms,
    };
    validated(index, id, new, time, "geometry")
}

/// A Point geometry's position. A third coordinate (altitude) is allowed
/// by GeoJSON and dropped: events have no altitude.
fn geometry_point(index: usize, geometry: Option<&Value>) -> Result<Point, TransferError> {
    let Some(Value::Object(geometry)) = geometry else {
        return Err(refused(
            index,
            "geometry",
            "must be a Point geometry object",
        ));
    };
    match geometry.get("type") {
        Some(Value::String(t)) if t == "Point" => {}
        Some(other) => {
            return Err(refused(
                index,
                "geometry.type",
                format!("{} is not \"Point\"", preview(&other.to_string())),
            ))
        }
        None => return Err(refused(index, "geometry.type", "is required")),
    }
    let field = "geometry.coordinates";
    let Some(Value::Array(coords)) = geometry.get("coordinates") else {
        return Err(refused(index, field, "must be an array [lon, lat]"));
    };
    let numbers: Option<Vec<f64>> = coords.iter().map(Value::as_f64).collect();
    match numbers.as_deref() {
        Some(&[lon, lat]) | Some(&[lon, lat, _]) => {
            Point::new(lon, lat).map_err(|e| refused(index, field, e.to_string()))
        }
        _ => Err(refused(
            index,
            field,
            "must be [lon, lat] or [lon, lat, altitude] numbers",
        )),
    }
}

// ---- CSV import ----

/// Columns the import reads, and whether each is required.
const CSV_READ: [(&str, bool); 8] = [
    ("id", false),
    ("title", true),
    ("description", false),
    ("category", true),
    ("severity", true),
    ("lon", true),
    ("lat", true),
    ("reported_at", true),
];
/// Columns an export writes that the import accepts but does not read.
const CSV_EXPORT_ONLY: [&str; 2] = ["status", "assignee"];
/// The header an export writes, in order.
const CSV_HEADER: [&str; 10] = [
    "id",
    "title",
    "description",
    "category",
    "severity",
    "status",
    "assignee",
    "lon",
    "lat",
    "reported_at",
];

/// Where each column the import reads sits in a row, by [`CSV_READ`]
/// order.
struct CsvColumns([Option<usize>; CSV_READ.len()]);

impl CsvColumns {
    fn from_header(header: &csv::StringRecord) -> Result<CsvColumns, TransferError> {
        if header.iter().all(|name| name.trim().is_empty()) {
            return Err(TransferError::Csv(
                "no header row: the first line must name the columns".to_owned(),
            ));
        }
        let mut at = [None; CSV_READ.len()];
        let mut seen: Vec<&str> = Vec::new();
        let unknown: Vec<&str> = header
            .iter()
            .filter(|name| {
                !CSV_READ.iter().any(|(known, _)| known == name) && !CSV_EXPORT_ONLY.contains(name)
            })
            .collect();
        if let Some(first) = unknown.first() {
            // Named in full up to a few: a header can have any number.
            const NAMED: usize = 5;
            let mut names: Vec<String> = unknown
                .iter()
                .take(NAMED)
                .map(|n| format!("{:?}", preview(n)))
                .collect();
            if unknown.len() > NAMED {
                names.push(format!("and {} more", unknown.len() - NAMED));
            }
            return Err(refused(
                1,
                &preview(first),
                format!(
                    "unknown column(s) {}; known columns are {}",
                    names.join(", "),
                    CSV_HEADER.join(", ")
                ),
            ));
        }
        for (i, name) in header.iter().enumerate() {
            if seen.contains(&name) {
                return Err(refused(1, name, "column appears twice"));
            }
            seen.push(name);
            if let Some(slot) = CSV_READ.iter().position(|(known, _)| *known == name) {
                at[slot] = Some(i);
            }
        }
        for ((name, required), slot) in CSV_READ.iter().zip(&at) {
            if *required && slot.is_none() {
                return Err(refused(
                    1,
                    name,
                    "required column is missing from the header",
                ));
            }
        }
        Ok(CsvColumns(at))
    }

    /// The value of column `name` in `row`; `""` when the column is absent.
    fn get<'r>(&self, row: &'r csv::StringRecord, name: &str) -> &'r str {
        CSV_READ
            .iter()
            .position(|(known, _)| *known == name)
            .and_then(|slot| self.0[slot])
            .and_then(|i| row.get(i))
            .unwrap_or("")
    }
}

fn parse_csv(input: &[u8], max_records: usize) -> Result<Vec<ImportRecord>, TransferError> {
    let csv_error = |e: csv::Error| TransferError::Csv(e.to_string());
    // Rows must all have the header's length: a short row is more likely
    // a broken quote than a deliberate omission.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(input);
    let columns = CsvColumns::from_header(reader.headers().map_err(csv_error)?)?;
    let mut records = Vec::new();
    let mut row = csv::StringRecord::new();
    while reader.read_record(&mut row).map_err(csv_error)? {
        if records.len() == max_records {
            return Err(TransferError::TooManyRecords);
        }
        // The header is line 1, so a data row's line is at least 2.
        let line = row
            .position()
            .and_then(|p| usize::try_from(p.line()).ok())
            .unwrap_or(records.len() + 2);
        records.push(csv_record(line, &columns, &row)?);
    }
    Ok(records)
}

fn csv_record(
    line: usize,
    columns: &CsvColumns,
    row: &csv::StringRecord,
) -> Result<ImportRecord, TransferError> {
    let cell = |name: &str| columns.get(row, name);
    let number = |name: &str| -> Result<f64, TransferError> {
        let text = cell(name).trim();
        if text.is_empty() {
            return Err(refused(line, name, "is required"));
        }
        text.parse::<f64>()
            .map_err(|_| refused(line, name, format!("{:?} is not a number", preview(text))))
    };

    let id = event_id(line, "id", cell("id"))?;
    let severity_text = cell("severity").trim();
    if severity_text.is_empty() {
        return Err(refused(line, "severity", "is required"));
    }
    let severity = severity_text.parse::<u8>().map_err(|_| {
        refused(
            line,
            "severity",
            format!("{:?} is not an integer in 1..=5", preview(severity_text)),
        )
    })?;
    let (lon, lat) = (number("lon")?, number("lat")?);
    // `Point::new` refuses NaN and infinities, which `f64::from_str`
    // accepts ("NaN", "inf").
    let location = Point::new(lon, lat).map_err(|e| {
        let field = match e {
            sentinel_schema::PointError::Latitude(_) => "lat",
            _ => "lon",
        };
        refused(line, field, e.to_string())
    })?;
    let reported_at = cell("reported_at");
    if reported_at.trim().is_empty() {
        return Err(refused(line, "reported_at", "is required"));
    }
    let reported_ms = rfc3339_ms(reported_at).map_err(|why| refused(line, "reported_at", why))?;
    let new = NewEvent {
        title: cell("title").to_owned(),
        description: cell("description").to_owned(),
        category: cell("category").to_owned(),
        severity,
        location,
        reported_ms,
    };
    validated(line, id, new, TimeField::ReportedAt, "lon")
}

// ---- Export ----

/// One row of the `events` view, checked.
struct ExportRow {
    id: EventId,
    title: String,
    description: String,
    category: String,
    severity: u8,
    status: String,
    assignee: Option<String>,
    location: Point,
    reported_ms: u64,
    n_notes: u32,
    n_media: u32,
    /// Always a JSON object.
    conflicts: Value,
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

fn write_feature(out: &mut impl Write, row: &ExportRow) -> Result<(), TransferError> {
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

fn write_csv_row<W: Write>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::store::Store;

    const A: &str = "00112233445566778899aabbccddeeff";
    const B: &str = "ffeeddccbbaa99887766554433221100";

    fn new_event(title: &str, lon: f64, lat: f64, reported_ms: u64) -> NewEvent {
        NewEvent {
            title: title.to_owned(),
            description: String::new(),
            category: "fire".to_owned(),
            severity: 3,
            location: Point::new(lon, lat).unwrap(),
            reported_ms,
        }
    }

    /// Parses `input` and expects a refusal of record `index`, field
    /// `field`.
    #[track_caller]
    fn check_refused(format: Format, input: &str, index: usize, field: &str) {
        match parse(format, input.as_bytes()) {
            Err(TransferError::Record {
                index: i,
                field: f,
                reason,
            }) => {
                assert_eq!((i, f.as_str()), (index, field), "reason: {reason}");
                assert!(!reason.is_empty());
            }
            other => panic!("expected record {index} field {field} refused, got {other:?}"),
        }
    }

    /// A FeatureCollection of one feature with these properties and
    /// coordinates.
    fn one_feature(properties: &str, coordinates: &str) -> String {
        format!(
            r#"{{"type":"FeatureCollection","features":[{{"type":"Feature",
                "geometry":{{"type":"Point","coordinates":{coordinates}}},
                "properties":{{{properties}}}}}]}}"#
        )
    }

    const GOOD_PROPS: &str =
        r#""title":"Fire","category":"fire","severity":3,"reported_at":"2024-05-01T12:00:00Z""#;

    #[test]
    fn format_names_and_extensions() {
        assert_eq!("GeoJSON".parse::<Format>(), Ok(Format::GeoJson));
        assert_eq!("csv".parse::<Format>(), Ok(Format::Csv));
        assert_eq!("CSV".parse::<Format>(), Ok(Format::Csv));
        assert_eq!(
            "kml".parse::<Format>(),
            Err(ParseFormatError {
                found: "kml".to_owned()
            })
        );
        assert_eq!(
            Format::from_path(Path::new("a/b.geojson")),
            Some(Format::GeoJson)
        );
        assert_eq!(
            Format::from_path(Path::new("b.JSON")),
            Some(Format::GeoJson)
        );
        assert_eq!(Format::from_path(Path::new("b.Csv")), Some(Format::Csv));
        assert_eq!(Format::from_path(Path::new("b.txt")), None);
        assert_eq!(Format::from_path(Path::new("csv")), None);
    }

    #[test]
    fn parses_a_feature_collection() {
        let input = format!(
            r#"{{"type":"FeatureCollection","bbox":[0,0,1,1],"features":[
              {{"type":"Feature","id":7,"geometry":{{"type":"Point","coordinates":[13.4,52.5]}},
               "properties":{{"id":"{A}","title":"Fire","description":"Smoke, lots",
                 "category":"fire","severity":5,"reported_at":"2024-05-01T14:00:00.250+02:00",
                 "status":"closed","assignee":null,"n_notes":2,"n_media":0,"conflicts":{{}}}}}},
              {{"type":"Feature","geometry":{{"type":"Point","coordinates":[-1.5,0,120]}},
               "properties":{{"title":"Flood","category":"water","severity":1,
                 "reported_ms":1000,"description":null}}}}
            ]}}"#
        );
        let records = parse(Format::GeoJson, input.as_bytes()).unwrap();
        let mut first = new_event("Fire", 13.4, 52.5, 1_714_564_800_250);
        first.description = "Smoke, lots".to_owned();
        first.severity = 5;
        let mut second = new_event("Flood", -1.5, 0.0, 1000);
        second.category = "water".to_owned();
        second.severity = 1;
        assert_eq!(
            records,
            vec![
                ImportRecord {
                    id: Some(A.parse().unwrap()),
                    new: first
                },
                ImportRecord {
                    id: None,
                    new: second
                },
            ]
        );
    }

    #[test]
    fn parses_a_single_feature_and_an_empty_collection() {
        let input = format!(
            r#"{{"properties":{{{GOOD_PROPS}}},"type":"Feature",
                "geometry":{{"type":"Point","coordinates":[1,2]}}}}"#
        );
        let records = parse(Format::GeoJson, input.as_bytes()).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].new, {
            let mut e = new_event("Fire", 1.0, 2.0, 1_714_564_800_000);
            e.severity = 3;
            e
        });
        let empty = parse(
            Format::GeoJson,
            br#"{"features":[],"type":"FeatureCollection"}"#,
        );
        assert!(empty.unwrap().is_empty());
    }

    #[test]
    fn parses_csv() {
        // A byte order mark, columns in any order, no `id`, no `description`,
        // and quoted text with commas, quotes and a newline.
        let input = "\u{feff}severity,lat,lon,category,title,reported_at\n\
                     2,52.5,13.4,fire,\"Fire, \"\"big\"\"\nand spreading\",2024-05-01T12:00:00Z\n\
                     4,0,0,flood,Flood,2024-05-01t12:00:01.5z\n";
        let records = parse(Format::Csv, input.as_bytes()).unwrap();
        let mut first = new_event(
            "Fire, \"big\"\nand spreading",
            13.4,
            52.5,
            1_714_564_800_000,
        );
        first.severity = 2;
        let mut second = new_event("Flood", 0.0, 0.0, 1_714_564_801_500);
        second.severity = 4;
        second.category = "flood".to_owned();
        assert_eq!(
            records,
            vec![
                ImportRecord {
                    id: None,
                    new: first
                },
                ImportRecord {
                    id: None,
                    new: second
                },
            ]
        );
    }

    #[test]
    fn geojson_refusals_name_the_feature_and_field() {
        let g = Format::GeoJson;
        let point = "[13.4,52.5]";
        let without = |name: &str| {
            GOOD_PROPS
                .split(',')
                .filter(|p| !p.starts_with(&format!("\"{name}\"")))
                .collect::<Vec<_>>()
                .join(",")
        };
        // The second feature is the bad one, so the index is checked.
        let second = |props: &str, coords: &str| {
            format!(
                r#"{{"type":"FeatureCollection","features":[
                  {{"type":"Feature","geometry":{{"type":"Point","coordinates":{point}}},
                    "properties":{{{GOOD_PROPS}}}}},
                  {{"type":"Feature","geometry":{{"type":"Point","coordinates":{coords}}},
                    "properties":{{{props}}}}}]}}"#
            )
        };
        check_refused(g, &second(&without("title"), point), 2, "title");
        check_refused(
            g,
            &second(&format!("{GOOD_PROPS},\"title\":\"  \""), point),
            2,
            "title",
        );
        check_refused(g, &second(&without("category"), point), 2, "category");
        check_refused(g, &second(&without("severity"), point), 2, "severity");
        for bad in ["0", "6", "3.5", "\"3\"", "-1", "256"] {
            let props = format!("{},\"severity\":{bad}", without("severity"));
            check_refused(g, &second(&props, point), 2, "severity");
        }
        check_refused(g, &second(GOOD_PROPS, "[200,0]"), 2, "geometry.coordinates");
        check_refused(g, &second(GOOD_PROPS, "[0,-91]"), 2, "geometry.coordinates");
        check_refused(g, &second(GOOD_PROPS, "[0]"), 2, "geometry.coordinates");
        check_refused(
            g,
            &second(GOOD_PROPS, "[\"0\",\"1\"]"),
            2,
            "geometry.coordinates",
        );
        for bad in [
            "\"yesterday\"",
            "\"2024-13-01T00:00:00Z\"",
            "\"2024-05-01T12:00:00\"",
            "\"2024-05-01T12:00:00+25:00\"",
            "\"1969-12-31T23:59:59Z\"",
            "\"1970-01-01T00:30:00+01:00\"",
            "12",
        ] {
            let props = format!("{},\"reported_at\":{bad}", without("reported_at"));
            check_refused(g, &second(&props, point), 2, "reported_at");
        }
        check_refused(g, &second(&without("reported_at"), point), 2, "reported_at");
        let props = format!("{},\"reported_ms\":-5", without("reported_at"));
        check_refused(g, &second(&props, point), 2, "reported_ms");
        check_refused(
            g,
            &second(&format!("{GOOD_PROPS},\"id\":\"abc\""), point),
            2,
            "id",
        );
        check_refused(
            g,
            &second(&format!("{GOOD_PROPS},\"colour\":\"red\""), point),
            2,
            "colour",
        );

        let line = one_feature(GOOD_PROPS, "[[0,0],[1,1]]").replace("Point", "LineString");
        check_refused(g, &line, 1, "geometry.type");
        let no_geometry = r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","geometry":null,"properties":{}}]}"#;
        check_refused(g, no_geometry, 1, "geometry");
        let not_feature = r#"{"type":"FeatureCollection","features":[
            {"type":"Point","coordinates":[0,0]}]}"#;
        check_refused(g, not_feature, 1, "type");
        let no_props = one_feature(GOOD_PROPS, point).replace(&format!("{{{GOOD_PROPS}}}"), "[]");
        check_refused(g, &no_props, 1, "properties");
        check_refused(
            g,
            r#"{"type":"FeatureCollection","features":[3]}"#,
            1,
            "feature",
        );
    }

    #[test]
    fn refuses_what_is_not_a_feature_collection() {
        for input in [
            r#"{"type":"Topology","features":[]}"#,
            r#"{"type":"FeatureCollection"}"#,
            r#"{"type":"FeatureCollection","features":{}}"#,
            r#"{"features":[]}"#,
            r#"[]"#,
            r#""FeatureCollection""#,
            r#"{"type":"Point","coordinates":[0,0]}"#,
        ] {
            assert!(
                matches!(
                    parse(Format::GeoJson, input.as_bytes()),
                    Err(TransferError::NotAFeatureCollection)
                ),
                "{input}"
            );
        }
        for input in [
            "",
            "{",
            r#"{"type":"FeatureCollection","features":[]} x"#,
            r#"{"type":"FeatureCollection","features":[],"features":[]}"#,
        ] {
            assert!(
                matches!(
                    parse(Format::GeoJson, input.as_bytes()),
                    Err(TransferError::Json(_))
                ),
                "{input}"
            );
        }
    }

    #[test]
    fn csv_refusals_name_the_line_and_column() {
        let c = Format::Csv;
        let header = "id,title,description,category,severity,lon,lat,reported_at";
        let good = "1,Fire,,fire,3,13.4,52.5,2024-05-01T12:00:00Z";
        // The bad row is on line 3.
        let with = |row: &str| format!("{header}\n{}\n{row}\n", good.replacen("1,", ",", 1));
        let row = |f: &dyn Fn(&mut Vec<&str>)| {
            let mut cells: Vec<&str> = good.split(',').collect();
            cells[0] = "";
            f(&mut cells);
            with(&cells.join(","))
        };
        check_refused(c, &row(&|r| r[1] = ""), 3, "title");
        check_refused(c, &row(&|r| r[3] = " "), 3, "category");
        check_refused(c, &row(&|r| r[4] = "0"), 3, "severity");
        check_refused(c, &row(&|r| r[4] = "6"), 3, "severity");
        check_refused(c, &row(&|r| r[4] = "three"), 3, "severity");
        check_refused(c, &row(&|r| r[4] = ""), 3, "severity");
        check_refused(c, &row(&|r| r[5] = "NaN"), 3, "lon");
        check_refused(c, &row(&|r| r[5] = "200"), 3, "lon");
        check_refused(c, &row(&|r| r[6] = "inf"), 3, "lat");
        check_refused(c, &row(&|r| r[6] = "north"), 3, "lat");
        check_refused(c, &row(&|r| r[6] = ""), 3, "lat");
        check_refused(c, &row(&|r| r[7] = "2024-05-01"), 3, "reported_at");
        check_refused(c, &row(&|r| r[7] = ""), 3, "reported_at");
        check_refused(c, &row(&|r| r[0] = "xyz"), 3, "id");
        check_refused(c, &row(&|r| r[2] = "bell\u{7}"), 3, "description");
        // A quoted newline makes the next record start a line later.
        let multi = format!("{header}\n,\"Two\nlines\",,fire,3,0,0,2024-05-01T12:00:00Z\n,,,fire,3,0,0,2024-05-01T12:00:00Z\n");
        check_refused(c, &multi, 4, "title");

        check_refused(c, &format!("{header},colour\n"), 1, "colour");
        check_refused(c, &format!("{header},colour,Title\n"), 1, "colour");
        check_refused(c, &format!("{header},status,assignee,title\n"), 1, "title");
        check_refused(c, &header.replace(",lat", ""), 1, "lat");
        check_refused(
            c,
            &header.replace(",reported_at", ",reported_ms"),
            1,
            "reported_ms",
        );
        assert!(matches!(parse(c, b""), Err(TransferError::Csv(_))));
        let short_row = format!("{header}\n,Fire,,fire\n");
        assert!(matches!(
            parse(c, short_row.as_bytes()),
            Err(TransferError::Csv(_))
        ));
    }

    #[test]
    fn limits_are_checked() {
        let one = one_feature(GOOD_PROPS, "[0,0]");
        assert!(matches!(
            parse_with_limits(Format::GeoJson, one.as_bytes(), 10, 10),
            Err(TransferError::TooLarge { size, max: 10 }) if size == one.len()
        ));
        let big = vec![b' '; MAX_INPUT_BYTES + 1];
        assert!(matches!(
            parse(Format::Csv, &big),
            Err(TransferError::TooLarge { .. })
        ));
        let two = one_feature(GOOD_PROPS, "[0,0]").replace("}]}", "},{}]}");
        assert!(matches!(
            parse_with_limits(Format::GeoJson, two.as_bytes(), 1 << 20, 1),
            Err(TransferError::TooManyRecords)
        ));
        assert!(matches!(
            parse_with_limits(Format::GeoJson, one.as_bytes(), 1 << 20, 0),
            Err(TransferError::TooManyRecords)
        ));
        let csv = "title,category,severity,lon,lat,reported_at\n\
                   a,b,1,0,0,2024-05-01T12:00:00Z\n\
                   a,b,1,0,0,2024-05-01T12:00:00Z\n";
        assert_eq!(
            parse_with_limits(Format::Csv, csv.as_bytes(), 1 << 20, 2)
                .unwrap()
                .len(),
            2
        );
        assert!(matches!(
            parse_with_limits(Format::Csv, csv.as_bytes(), 1 << 20, 1),
            Err(TransferError::TooManyRecords)
        ));
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(rfc3339_ms("1970-01-01T01:00:00.0019+01:00"), Ok(1));
        // humantime checks the year before the offset is applied.
        assert!(rfc3339_ms("1969-12-31T23:00:00-01:00").is_err());
        assert_eq!(
            rfc3339_ms("2024-05-01T12:00:00-00:00"),
            Ok(1_714_564_800_000)
        );
        assert_eq!(
            rfc3339_of_ms(1).as_deref(),
            Some("1970-01-01T00:00:00.001Z")
        );
        let last = MAX_RFC3339_SECONDS * 1000 + 999;
        assert_eq!(
            rfc3339_of_ms(last).as_deref(),
            Some("9999-12-31T23:59:59.999Z")
        );
        assert_eq!(rfc3339_of_ms(last + 1), None);
        assert_eq!(rfc3339_of_ms(u64::MAX), None);
        for ms in [0, 1, 999, 1_714_564_800_250, last] {
            let text = rfc3339_of_ms(ms).unwrap();
            assert_eq!(rfc3339_ms(&text), Ok(ms), "{text}");
        }
        assert!(rfc3339_ms("2024-05-01T12:00:00ü+01:00").is_err());
        assert!(rfc3339_ms("2024-05-01T12:00:00+1:000").is_err());
    }

    /// Whether two coordinates are equal to within one unit in the last
    /// place. serde_json, built without its `float_roundtrip` feature,
    /// parses some decimals one unit off (for example
    /// -19.196988289177046 as -19.19698828917705), so GeoJSON coordinates
    /// round-trip to within about 1e-14 degrees, not bit for bit. CSV
    /// uses `f64::from_str`, which is exact.
    fn close(a: f64, b: f64) -> bool {
        a == b || (a.signum() == b.signum() && a.to_bits().abs_diff(b.to_bits()) <= 1)
    }

    /// Equal records, coordinates compared with [`close`].
    fn same(got: &[ImportRecord], want: &[ImportRecord]) -> bool {
        got.len() == want.len()
            && got.iter().zip(want).all(|(g, w)| {
                let at = |r: &ImportRecord| {
                    let mut r = r.clone();
                    r.new.location = Point::new(0.0, 0.0).unwrap();
                    r
                };
                at(g) == at(w)
                    && close(g.new.location.lon(), w.new.location.lon())
                    && close(g.new.location.lat(), w.new.location.lat())
            })
    }

    /// One event for the `events` table.
    struct Row {
        id: &'static str,
        new: NewEvent,
        status: &'static str,
        assignee: Option<&'static str>,
        conflicts: &'static str,
    }

    fn insert(conn: &rusqlite::Connection, fid: i64, row: &Row) {
        let id: EventId = row.id.parse().unwrap();
        conn.execute(
            "INSERT INTO events (fid, event, event_hex, title, description, category, severity,
                 status, assignee, lon, lat, reported_ms, created_by, updated_hlc_ms,
                 updated_hlc_counter, n_notes, n_media, conflicts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'tester', 0, 0, 2, 1, ?13)",
            rusqlite::params![
                fid,
                id.as_bytes().to_vec(),
                row.id,
                row.new.title,
                row.new.description,
                row.new.category,
                row.new.severity,
                row.status,
                row.assignee,
                row.new.location.lon(),
                row.new.location.lat(),
                row.new.reported_ms as i64,
                row.conflicts,
            ],
        )
        .unwrap();
    }

    fn exported(format: Format, conn: &rusqlite::Connection) -> (usize, Vec<u8>) {
        let mut out = Vec::new();
        let n = export(format, conn, &mut out).unwrap();
        (n, out)
    }

    #[test]
    fn export_then_import_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("t.sqlite")).unwrap();
        let conn = store.conn();
        let mut tricky = new_event(
            "Fire, \"big\" one",
            0.1 + 0.2,
            -33.868_820_1,
            1_714_564_800_250,
        );
        tricky.description = "line one\nline two, with \"quotes\"\ttab; ünïcødé ✓".to_owned();
        tricky.severity = 5;
        let rows = [
            // Inserted out of order: the export sorts by reported_ms, then id.
            Row {
                id: B,
                new: tricky,
                status: "assigned",
                assignee: Some("officer-7"),
                conflicts: r#"{"title":["Fire","Fire, \"big\" one"]}"#,
            },
            Row {
                id: A,
                new: new_event("Later", 180.0, 90.0, 1_714_564_800_250),
                status: "reported",
                assignee: None,
                conflicts: "{}",
            },
            Row {
                id: B.replacen("ff", "01", 1).leak(),
                new: new_event("First", -180.0, -90.0, 0),
                status: "closed",
                assignee: None,
                conflicts: "{}",
            },
        ];
        for (fid, row) in rows.iter().enumerate() {
            insert(conn, fid as i64 + 1, row);
        }
        let expected: Vec<ImportRecord> = [2, 1, 0]
            .iter()
            .map(|&i| ImportRecord {
                id: Some(rows[i].id.parse().unwrap()),
                new: rows[i].new.clone(),
            })
            .collect();

        let (n, geojson) = exported(Format::GeoJson, conn);
        assert_eq!(n, 3);
        let records = parse(Format::GeoJson, &geojson).unwrap();
        assert!(same(&records, &expected), "{records:?}");
        let doc: Value = serde_json::from_slice(&geojson).unwrap();
        let tricky_feature = &doc["features"][2];
        assert_eq!(tricky_feature["id"], B);
        assert_eq!(tricky_feature["geometry"]["type"], "Point");
        let props = &tricky_feature["properties"];
        assert_eq!(props["status"], "assigned");
        assert_eq!(props["assignee"], "officer-7");
        assert_eq!(props["reported_at"], "2024-05-01T12:00:00.250Z");
        assert_eq!(props["reported_ms"], 1_714_564_800_250u64);
        assert_eq!(props["n_notes"], 2);
        assert_eq!(props["n_media"], 1);
        assert_eq!(props["conflicts"]["title"][1], "Fire, \"big\" one");
        assert_eq!(doc["features"][1]["properties"]["assignee"], Value::Null);

        let (n, csv) = exported(Format::Csv, conn);
        assert_eq!(n, 3);
        assert_eq!(parse(Format::Csv, &csv).unwrap(), expected);
        let text = String::from_utf8(csv).unwrap();
        assert!(text.starts_with(
            "id,title,description,category,severity,status,assignee,lon,lat,reported_at\n"
        ));
        assert!(text.contains(",assigned,officer-7,"));
    }

    #[test]
    fn export_of_an_empty_view_reimports() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("t.sqlite")).unwrap();
        for format in [Format::GeoJson, Format::Csv] {
            let (n, out) = exported(format, store.conn());
            assert_eq!(n, 0);
            // An empty CSV export still has its header.
            assert_eq!(parse(format, &out).unwrap(), vec![]);
        }
    }

    #[test]
    fn export_after_year_9999_and_corrupt_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("t.sqlite")).unwrap();
        let conn = store.conn();
        let far = (MAX_RFC3339_SECONDS + 1) * 1000;
        insert(
            conn,
            1,
            &Row {
                id: A,
                new: new_event("Far", 1.0, 2.0, far),
                status: "reported",
                assignee: None,
                conflicts: "{}",
            },
        );
        let (_, geojson) = exported(Format::GeoJson, conn);
        let records = parse(Format::GeoJson, &geojson).unwrap();
        assert_eq!(records[0].new.reported_ms, far);
        assert!(matches!(
            export(Format::Csv, conn, &mut Vec::new()),
            Err(TransferError::UnrepresentableTime { reported_ms, .. }) if reported_ms == far
        ));

        conn.execute("UPDATE events SET reported_ms = 0, lon = 500", [])
            .unwrap();
        assert!(matches!(
            export(Format::GeoJson, conn, &mut Vec::new()),
            Err(TransferError::CorruptRow {
                fid: 1,
                column: "lon/lat"
            })
        ));
        conn.execute("UPDATE events SET lon = 0, conflicts = '[]'", [])
            .unwrap();
        assert!(matches!(
            export(Format::Csv, conn, &mut Vec::new()),
            Err(TransferError::CorruptRow {
                fid: 1,
                column: "conflicts"
            })
        ));
    }

    /// Text the node accepts: no control characters but newline and tab.
    fn text(max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                4 => any::<char>().prop_filter("control", |c| !c.is_control()),
                1 => proptest::sample::select(vec![',', '"', '\n', '\t', ' ', '\'']),
            ],
            0..max,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        /// Whatever text an event holds, and wherever it is, both formats
        /// give back exactly the event.
        #[test]
        fn any_event_round_trips_through_both_writers(
            title in text(40),
            description in text(200),
            category in text(20),
            severity in 1u8..=5,
            lon in -180.0f64..=180.0,
            lat in -90.0f64..=90.0,
            reported_ms in 0..=MAX_RFC3339_SECONDS * 1000,
        ) {
            let new = NewEvent {
                // Non-blank, and already trimmed as the view stores it.
                title: format!("t{}", title.trim()),
                description,
                category: format!("c{category}"),
                severity,
                location: Point::new(lon, lat).unwrap(),
                reported_ms,
            };
            let row = ExportRow {
                id: EventId([7; 16]),
                title: new.title.clone(),
                description: new.description.clone(),
                category: new.category.clone(),
                severity,
                status: "reported".to_owned(),
                assignee: None,
                location: new.location,
                reported_ms,
                n_notes: 0,
                n_media: 0,
                conflicts: Value::Object(serde_json::Map::new()),
            };
            let expected = vec![ImportRecord { id: Some(EventId([7; 16])), new }];

            let mut csv_out = Vec::new();
            {
                let mut writer = csv::Writer::from_writer(&mut csv_out);
                writer.write_record(CSV_HEADER).unwrap();
                write_csv_row(&mut writer, &row).unwrap();
                writer.flush().unwrap();
            }
            prop_assert_eq!(&parse(Format::Csv, &csv_out).unwrap(), &expected);

            let mut json_out = b"{\"type\":\"FeatureCollection\",\"features\":[".to_vec();
            write_feature(&mut json_out, &row).unwrap();
            json_out.extend_from_slice(b"]}");
            let records = parse(Format::GeoJson, &json_out).unwrap();
            prop_assert!(same(&records, &expected), "{:?}", records);
        }
    }
}
