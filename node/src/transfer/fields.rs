//! What the three importers share: the event's fields, the mapping of a
//! file's own names onto them (`--map title=name`), naming a record in
//! errors, and one event read from text fields (CSV cells, KML values).

use sentinel_schema::{NewEvent, Point};

use super::time::rfc3339_ms;
use super::{event_id, preview, refused, validated, ImportRecord, TimeField, TransferError};

/// The fields `--map` may name: what an import reads of an event. `lon`
/// and `lat` are CSV's (GeoJSON and KML read their geometry).
pub const FIELDS: [&str; 9] = [
    "id",
    "title",
    "description",
    "category",
    "severity",
    "reported_at",
    "reported_ms",
    "lon",
    "lat",
];

/// A file's names for the event's fields: `title=name` reads the title
/// from what the file calls `name`. A field mapped away is no longer read
/// under its own name (a file's `title` beside a mapped `title=name` is
/// unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMap {
    /// `(field, the file's name)`.
    pairs: Vec<(&'static str, String)>,
}

/// A `--map` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("--map {0:?}: expected FIELD=NAME, such as title=name")]
    Syntax(String),
    #[error("--map: `{0}` is not a field of an event; the fields are {fields}", fields = FIELDS.join(", "))]
    UnknownField(String),
    #[error("--map: the field `{0}` is mapped twice")]
    FieldTwice(String),
    #[error("--map: the file's `{0}` is mapped to two fields")]
    NameTwice(String),
}

impl FieldMap {
    /// Reads `FIELD=NAME` pairs, comma-separated, from each of `specs`
    /// (each `--map` given).
    pub fn parse(specs: &[String]) -> Result<FieldMap, MapError> {
        let mut pairs: Vec<(&'static str, String)> = Vec::new();
        for pair in specs.iter().flat_map(|s| s.split(',')) {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let (field, name) = pair
                .split_once('=')
                .map(|(f, n)| (f.trim(), n.trim()))
                .filter(|(f, n)| !f.is_empty() && !n.is_empty())
                .ok_or_else(|| MapError::Syntax(preview(pair)))?;
            let field = FIELDS
                .iter()
                .copied()
                .find(|f| *f == field)
                .ok_or_else(|| MapError::UnknownField(preview(field)))?;
            if pairs.iter().any(|(f, _)| *f == field) {
                return Err(MapError::FieldTwice(field.to_owned()));
            }
            if pairs.iter().any(|(_, n)| n == name) {
                return Err(MapError::NameTwice(preview(name)));
            }
            pairs.push((field, name.to_owned()));
        }
        Ok(FieldMap { pairs })
    }

    /// The field a file's `name` is read as: the field mapped to it, or
    /// the field of that very name unless that field is mapped to another
    /// name; `None` for a name that is no field.
    pub(super) fn field(&self, name: &str) -> Option<&'static str> {
        if let Some((field, _)) = self.pairs.iter().find(|(_, n)| n == name) {
            return Some(field);
        }
        FIELDS
            .iter()
            .copied()
            .find(|f| *f == name && !self.pairs.iter().any(|(mapped, _)| mapped == f))
    }

    /// The file's name for `field`.
    pub(super) fn name_of<'a>(&'a self, field: &'a str) -> &'a str {
        self.pairs
            .iter()
            .find(|(f, _)| *f == field)
            .map_or(field, |(_, n)| n.as_str())
    }

    /// `e`, with a refused field named as the file names it where the map
    /// renamed it (`name (mapped to title)`).
    pub(super) fn name_in_file(&self, e: TransferError) -> TransferError {
        match e {
            TransferError::Record {
                index,
                label,
                field,
                reason,
            } => {
                let field = match self.pairs.iter().find(|(f, _)| *f == field) {
                    Some((f, n)) => format!("{n} (mapped to {f})"),
                    None => field,
                };
                TransferError::Record {
                    index,
                    label,
                    field,
                    reason,
                }
            }
            other => other,
        }
    }
}

/// How a record is named in errors: its title and its id, where it has
/// them (at most 32 characters of each).
pub(super) fn label(id: Option<&str>, title: Option<&str>) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(title) = title.map(str::trim).filter(|t| !t.is_empty()) {
        parts.push(format!("{:?}", preview(title)));
    }
    if let Some(id) = id.map(str::trim).filter(|i| !i.is_empty()) {
        parts.push(format!("id {}", preview(id)));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// One event from text fields by name (a field absent is `""`), at
/// `location` (read from `location_field`): CSV's cells, KML's values.
/// Without `reported_at` or `reported_ms` the record takes
/// `default_reported_ms`, or is refused when there is none.
pub(super) fn text_record(
    index: usize,
    cells: &[(&'static str, &str)],
    location: Point,
    location_field: &str,
    default_reported_ms: Option<u64>,
) -> Result<ImportRecord, TransferError> {
    let cell = |name: &str| {
        cells
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| *v)
    };
    let id = event_id(index, "id", cell("id"))?;
    let severity_text = cell("severity").trim();
    if severity_text.is_empty() {
        return Err(refused(index, "severity", "is required"));
    }
    let severity = severity_text.parse::<u8>().map_err(|_| {
        refused(
            index,
            "severity",
            format!("{:?} is not an integer in 1..=5", preview(severity_text)),
        )
    })?;
    let (reported_at, reported_ms) = (cell("reported_at").trim(), cell("reported_ms").trim());
    // `reported_at` is what people read and edit, so it wins; an export
    // that writes both writes them agreeing.
    let (reported_ms, time) = if !reported_at.is_empty() {
        (
            rfc3339_ms(reported_at).map_err(|why| refused(index, "reported_at", why))?,
            TimeField::ReportedAt,
        )
    } else if !reported_ms.is_empty() {
        let ms = reported_ms.parse::<u64>().map_err(|_| {
            refused(
                index,
                "reported_ms",
                format!(
                    "{:?} is not a whole number of milliseconds since 1970",
                    preview(reported_ms)
                ),
            )
        })?;
        (ms, TimeField::ReportedMs)
    } else {
        match default_reported_ms {
            Some(ms) => (ms, TimeField::ReportedAt),
            None => return Err(refused(index, "reported_at", "is required")),
        }
    };
    let new = NewEvent {
        title: cell("title").to_owned(),
        description: cell("description").to_owned(),
        category: cell("category").to_owned(),
        severity,
        location,
        reported_ms,
    };
    validated(index, id, new, time, location_field)
}
