//! CSV import: a header row naming the columns, then one event per
//! record.

use sentinel_schema::{NewEvent, Point};

use super::time::rfc3339_ms;
use super::{event_id, preview, refused, validated, ImportRecord, TimeField, TransferError};

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
pub(super) const CSV_HEADER: [&str; 10] = [
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

pub(super) fn parse_csv(
    input: &[u8],
    max_records: usize,
) -> Result<Vec<ImportRecord>, TransferError> {
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
