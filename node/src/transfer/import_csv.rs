//! CSV import: a header row naming the columns, then one event per
//! record. Columns are found by name, through `--map`, and `lon`/`lat`
//! also under the names other tools give them (`longitude`, `lng`, `x`;
//! `latitude`, `y`; in any case). The separator is `,`, or `;` when the
//! header holds a `;` and no `,` (spreadsheets in many languages write
//! that).

use sentinel_schema::Point;

use super::fields::{label, text_record};
use super::{preview, refused, ImportOptions, ImportRecord, TransferError};

/// Columns the import reads, and whether each is required.
const CSV_READ: [(&str, bool); 9] = [
    ("id", false),
    ("title", true),
    ("description", false),
    ("category", true),
    ("severity", true),
    ("lon", true),
    ("lat", true),
    ("reported_at", false),
    ("reported_ms", false),
];
/// Columns an export writes that the import accepts but does not read
/// (the node's export, and the servers' `export.csv`).
const CSV_EXPORT_ONLY: [&str; 5] = ["status", "assignee", "n_notes", "n_media", "has_conflicts"];
/// Other names of `lon` and `lat`, compared in any case, used when no
/// column is `lon` (or `lat`) by name or by `--map`.
const LON_NAMES: [&str; 5] = ["lon", "lng", "long", "longitude", "x"];
const LAT_NAMES: [&str; 3] = ["lat", "latitude", "y"];
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

/// Where each field the import reads sits in a row.
struct CsvColumns(Vec<(&'static str, usize)>);

impl CsvColumns {
    fn from_header(
        header: &csv::StringRecord,
        options: &ImportOptions,
    ) -> Result<CsvColumns, TransferError> {
        if header.iter().all(|name| name.trim().is_empty()) {
            return Err(TransferError::Csv(
                "no header row: the first line must name the columns".to_owned(),
            ));
        }
        let known = |field: &&str| {
            CSV_READ.iter().any(|(name, _)| name == field) || CSV_EXPORT_ONLY.contains(field)
        };
        // What each column is read as, by its name or the mapping.
        let mut as_field: Vec<Option<&'static str>> = header
            .iter()
            .map(|name| {
                let name = name.trim();
                options
                    .map
                    .field(name)
                    .filter(known)
                    .or_else(|| CSV_EXPORT_ONLY.iter().copied().find(|f| *f == name))
            })
            .collect();
        for (field, names) in [("lon", &LON_NAMES[..]), ("lat", &LAT_NAMES[..])] {
            if as_field.contains(&Some(field)) || options.map.name_of(field) != field {
                continue;
            }
            let alias = header
                .iter()
                .position(|name| names.iter().any(|n| n.eq_ignore_ascii_case(name.trim())));
            if let Some(i) = alias.filter(|i| as_field[*i].is_none()) {
                as_field[i] = Some(field);
            }
        }
        let unknown: Vec<&str> = header
            .iter()
            .zip(&as_field)
            .filter(|(_, field)| field.is_none())
            .map(|(name, _)| name)
            .collect();
        if let Some(first) = unknown.first().filter(|_| !options.ignore_unknown) {
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
                    "unknown column(s) {}; known columns are {}, reported_ms (or map \
                     other names with --map FIELD=NAME, or skip them with --ignore-unknown)",
                    names.join(", "),
                    CSV_HEADER.join(", ")
                ),
            ));
        }
        let mut at = Vec::new();
        for ((i, name), field) in header.iter().enumerate().zip(&as_field) {
            let Some(field) = field else { continue };
            if at.iter().any(|(f, _)| f == field) {
                return Err(refused(1, name, "column appears twice"));
            }
            at.push((*field, i));
        }
        for (name, required) in CSV_READ {
            if required && !at.iter().any(|(f, _)| *f == name) {
                return Err(refused(
                    1,
                    name,
                    "required column is missing from the header",
                ));
            }
        }
        let has_time = at
            .iter()
            .any(|(f, _)| *f == "reported_at" || *f == "reported_ms");
        if !has_time && options.default_reported_ms.is_none() {
            return Err(refused(
                1,
                "reported_at",
                "required column is missing from the header (or reported_ms)",
            ));
        }
        Ok(CsvColumns(at))
    }

    /// The value of `field` in `row`; `""` when the column is absent.
    fn get<'r>(&self, row: &'r csv::StringRecord, field: &str) -> &'r str {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .and_then(|(_, i)| row.get(*i))
            .unwrap_or("")
    }
}

/// The separator: `;` when the first line has one and no `,`.
fn separator(input: &[u8]) -> u8 {
    let first = input.split(|b| *b == b'\n').next().unwrap_or(input);
    if first.contains(&b';') && !first.contains(&b',') {
        b';'
    } else {
        b','
    }
}

pub(super) fn parse_csv(
    input: &[u8],
    max_records: usize,
    options: &ImportOptions,
) -> Result<Vec<ImportRecord>, TransferError> {
    let csv_error = |e: csv::Error| TransferError::Csv(e.to_string());
    // Rows must all have the header's length: a short row is more likely
    // a broken quote than a deliberate omission.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .delimiter(separator(input))
        .from_reader(input);
    let columns = CsvColumns::from_header(reader.headers().map_err(csv_error)?, options)?;
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
        let record = csv_record(line, &columns, &row, options).map_err(|e| {
            e.labelled(label(
                Some(columns.get(&row, "id")),
                Some(columns.get(&row, "title")),
            ))
        })?;
        records.push(record);
    }
    Ok(records)
}

fn csv_record(
    line: usize,
    columns: &CsvColumns,
    row: &csv::StringRecord,
    options: &ImportOptions,
) -> Result<ImportRecord, TransferError> {
    let number = |name: &str| -> Result<f64, TransferError> {
        let text = columns.get(row, name).trim();
        if text.is_empty() {
            return Err(refused(line, name, "is required"));
        }
        text.parse::<f64>()
            .map_err(|_| refused(line, name, format!("{:?} is not a number", preview(text))))
    };
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
    let cells: Vec<(&'static str, &str)> = columns
        .0
        .iter()
        .map(|(field, i)| {
            let cell = row.get(*i).unwrap_or("");
            // Text an export defused against spreadsheet formulas reads
            // back as it was typed.
            let cell = match *field {
                "title" | "description" | "category" | "status" | "assignee" => {
                    sentinel_http::formats::csv::undefuse(cell)
                }
                _ => cell,
            };
            (*field, cell)
        })
        .collect();
    text_record(line, &cells, location, "lon", options.default_reported_ms)
}
