//! KML import: every Placemark of the document, in Documents and Folders
//! at any depth, read as an event: its `name` the title, `description`
//! the description, `TimeStamp/when` the report time, `Point/coordinates`
//! the location, and its `ExtendedData` the other fields by name (through
//! `--map`): `Data`/`value` pairs as the node's export and Google Earth
//! write them, `SchemaData`/`SimpleData` as GDAL and QGIS do. A field in
//! `ExtendedData` wins over the element (a mapped `title` over `name`).
//!
//! The XML is read by quick-xml, which knows no DTD: a DOCTYPE is refused
//! outright (its entities could expand without bound or read local
//! files), and the only entities read are XML's five and character
//! references. A placemark whose geometry is not a Point (LineString,
//! Polygon, MultiGeometry, a track, a model) is refused naming it.
//! Malformed XML is refused naming its line and column.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use sentinel_schema::Point;

use super::fields::{label, text_record};
use super::{preview, refused, ImportOptions, ImportRecord, TransferError};

/// ExtendedData the import reads.
const KML_READ: [&str; 7] = [
    "id",
    "title",
    "description",
    "category",
    "severity",
    "reported_at",
    "reported_ms",
];
/// ExtendedData an export writes that the import accepts but does not
/// read (the node's export, and the servers' `export.kml`).
const KML_EXPORT_ONLY: [&str; 5] = ["status", "assignee", "n_notes", "n_media", "has_conflicts"];
/// A placemark's geometries other than a point.
const NOT_POINTS: [&str; 7] = [
    "LineString",
    "LinearRing",
    "Polygon",
    "MultiGeometry",
    "Model",
    "Track",
    "MultiTrack",
];

/// What the text being read belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Name,
    Description,
    When,
    Coordinates,
    /// The value of the open `Data` or `SimpleData`.
    Value,
}

/// A placemark as read so far.
#[derive(Debug, Default)]
struct Placemark {
    name: Option<String>,
    description: Option<String>,
    when: Option<String>,
    coordinates: Option<String>,
    /// Its geometry's element (the first, when it has several).
    geometry: Option<String>,
    /// `ExtendedData` as the file names it.
    data: Vec<(String, String)>,
}

pub(super) fn parse_kml(
    input: &[u8],
    max_records: usize,
    options: &ImportOptions,
) -> Result<Vec<ImportRecord>, TransferError> {
    let mut reader = Reader::from_reader(input);
    reader.config_mut().expand_empty_elements = true;
    let mut records = Vec::new();
    // The local names of the open elements (`kml:Placemark` is a
    // Placemark).
    let mut open: Vec<String> = Vec::new();
    let mut seen_root = false;
    // The open placemark and the depth it opened at.
    let mut placemark: Option<(Placemark, usize)> = None;
    // The text being read, what it is for and the depth it opened at.
    let mut text: Option<(Target, usize, String)> = None;
    let mut data_name = String::new();
    loop {
        // Where the event starts, to name it in errors.
        let at = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => {
                let at = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
                return Err(xml_error(input, at, e.to_string()));
            }
        };
        match event {
            Event::DocType(_) => {
                return Err(xml_error(
                    input,
                    at,
                    "a DOCTYPE is refused: KML needs none, and its entities could expand \
                     without bound or read local files",
                ))
            }
            Event::Start(e) => {
                let name = local_name(&e, input, at)?;
                if open.is_empty() {
                    if seen_root {
                        return Err(xml_error(input, at, "a second root element"));
                    }
                    if name != "kml" {
                        return Err(TransferError::NotKml(format!(
                            "the root element is <{}>, not <kml>",
                            preview(&name)
                        )));
                    }
                    seen_root = true;
                }
                let parent = open.last().map(String::as_str);
                let depth = open.len() + 1;
                if name == "Placemark" {
                    let index = records.len() + 1;
                    if placemark.is_some() {
                        return Err(refused(
                            index,
                            "Placemark",
                            "a Placemark inside a Placemark",
                        ));
                    }
                    if records.len() == max_records {
                        return Err(TransferError::TooManyRecords);
                    }
                    placemark = Some((Placemark::default(), depth));
                } else if let Some((p, _)) = placemark.as_mut() {
                    let target = match (parent, name.as_str()) {
                        (Some("Placemark"), "name") => Some(Target::Name),
                        (Some("Placemark"), "description") => Some(Target::Description),
                        (Some("TimeStamp"), "when") => Some(Target::When),
                        (Some("Point"), "coordinates") => Some(Target::Coordinates),
                        (Some("Data"), "value") => Some(Target::Value),
                        (_, "Data") => {
                            data_name = attribute(&e, "name", input, at)?.unwrap_or_default();
                            None
                        }
                        (_, "SimpleData") => {
                            data_name = attribute(&e, "name", input, at)?.unwrap_or_default();
                            Some(Target::Value)
                        }
                        (Some("Placemark"), geometry)
                            if geometry == "Point" || NOT_POINTS.contains(&geometry) =>
                        {
                            p.geometry.get_or_insert_with(|| geometry.to_owned());
                            None
                        }
                        _ => None,
                    };
                    if let Some(target) = target.filter(|_| text.is_none()) {
                        text = Some((target, depth, String::new()));
                    }
                }
                open.push(name);
            }
            Event::Text(t) => {
                if let Some((_, _, buf)) = text.as_mut() {
                    let raw: &[u8] = &t;
                    buf.push_str(&unescape(raw).map_err(|why| xml_error(input, at, why))?);
                }
            }
            Event::CData(c) => {
                if let Some((_, _, buf)) = text.as_mut() {
                    let raw: &[u8] = &c;
                    let s = std::str::from_utf8(raw)
                        .map_err(|_| xml_error(input, at, "text is not UTF-8"))?;
                    buf.push_str(s);
                }
            }
            Event::End(_) => {
                let depth = open.len();
                open.pop();
                if let Some((target, _, value)) = text.take_if(|(_, d, _)| *d == depth) {
                    if let Some((p, _)) = placemark.as_mut() {
                        match target {
                            Target::Name => p.name = Some(value),
                            Target::Description => p.description = Some(value),
                            Target::When => p.when = Some(value),
                            Target::Coordinates => p.coordinates = Some(value),
                            Target::Value => p.data.push((data_name.clone(), value)),
                        }
                    }
                }
                if let Some((p, _)) = placemark.take_if(|(_, d)| *d == depth) {
                    let index = records.len() + 1;
                    let record = placemark_record(index, &p, options)
                        .map_err(|e| e.labelled(placemark_label(&p, options)))?;
                    records.push(record);
                }
            }
            Event::Eof => break,
            // The declaration, comments, processing instructions.
            _ => {}
        }
    }
    if let Some(last) = open.last() {
        return Err(xml_error(
            input,
            input.len(),
            format!("the document ends inside <{}>", preview(last)),
        ));
    }
    if !seen_root {
        return Err(TransferError::NotKml("no <kml> element".to_owned()));
    }
    Ok(records)
}

/// One placemark as a record; `index` is its 1-based number.
fn placemark_record(
    index: usize,
    p: &Placemark,
    options: &ImportOptions,
) -> Result<ImportRecord, TransferError> {
    match p.geometry.as_deref() {
        Some("Point") => {}
        Some(other) => {
            return Err(refused(
                index,
                "geometry",
                format!(
                    "a {other}, not a Point: an event is a point, so lines, polygons and \
                     MultiGeometry cannot be imported"
                ),
            ))
        }
        None => return Err(refused(index, "geometry", "a Placemark needs a Point")),
    }
    let location = point(index, p.coordinates.as_deref().unwrap_or(""))?;
    let mut cells: Vec<(&'static str, &str)> = Vec::new();
    for (name, value) in &p.data {
        let field = options
            .map
            .field(name)
            .filter(|f| KML_READ.contains(f))
            .or_else(|| {
                KML_EXPORT_ONLY
                    .iter()
                    .copied()
                    .find(|f| *f == name.as_str())
            });
        match field {
            Some(field) if cells.iter().any(|(f, _)| *f == field) => {
                return Err(refused(index, name, "appears twice in ExtendedData"))
            }
            Some(field) => cells.push((field, value.as_str())),
            None if options.ignore_unknown => {}
            None => {
                return Err(refused(
                    index,
                    &preview(name),
                    format!(
                        "unknown ExtendedData; known names are {} (or map other names \
                         with --map FIELD=NAME, or skip them with --ignore-unknown)",
                        KML_READ.join(", ")
                    ),
                ))
            }
        }
    }
    let has_time = cells
        .iter()
        .any(|(f, _)| *f == "reported_at" || *f == "reported_ms");
    let no_time = None;
    let time = if has_time { &no_time } else { &p.when };
    for (field, value) in [
        ("title", &p.name),
        ("description", &p.description),
        ("reported_at", time),
    ] {
        if let Some(value) = value {
            if !cells.iter().any(|(f, _)| *f == field) {
                cells.push((field, value.as_str()));
            }
        }
    }
    text_record(
        index,
        &cells,
        location,
        "coordinates",
        options.default_reported_ms,
    )
}

/// A placemark's title and id, to name it in errors.
fn placemark_label(p: &Placemark, options: &ImportOptions) -> Option<String> {
    let data = |field: &str| {
        p.data
            .iter()
            .find(|(name, _)| options.map.field(name) == Some(field))
            .map(|(_, value)| value.as_str())
    };
    let title = data("title").or(p.name.as_deref());
    label(data("id"), title)
}

/// A Point's `lon,lat[,altitude]`.
fn point(index: usize, coordinates: &str) -> Result<Point, TransferError> {
    let field = "coordinates";
    let mut tuples = coordinates.split_whitespace();
    let (Some(tuple), None) = (tuples.next(), tuples.next()) else {
        return Err(refused(
            index,
            field,
            "a Point needs one lon,lat[,altitude]",
        ));
    };
    let numbers: Result<Vec<f64>, _> = tuple.split(',').map(str::parse::<f64>).collect();
    match numbers.as_deref() {
        Ok(&[lon, lat]) | Ok(&[lon, lat, _]) => {
            Point::new(lon, lat).map_err(|e| refused(index, field, e.to_string()))
        }
        _ => Err(refused(
            index,
            field,
            format!("{:?} is not lon,lat[,altitude]", preview(tuple)),
        )),
    }
}

/// An element's name without its namespace prefix.
fn local_name(e: &BytesStart<'_>, input: &[u8], at: usize) -> Result<String, TransferError> {
    std::str::from_utf8(e.local_name().as_ref())
        .map(str::to_owned)
        .map_err(|_| xml_error(input, at, "an element name is not UTF-8"))
}

/// The value of `e`'s attribute `key` (without a namespace prefix).
fn attribute(
    e: &BytesStart<'_>,
    key: &str,
    input: &[u8],
    at: usize,
) -> Result<Option<String>, TransferError> {
    for a in e.attributes() {
        let a = a.map_err(|why| xml_error(input, at, why.to_string()))?;
        if a.key.local_name().as_ref() == key.as_bytes() {
            return unescape(&a.value)
                .map(Some)
                .map_err(|why| xml_error(input, at, why));
        }
    }
    Ok(None)
}

/// XML text with its references resolved: XML's five entities and
/// character references, nothing else (there is no DTD to define more).
fn unescape(raw: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "text is not UTF-8".to_owned())?;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after
            .find(';')
            .ok_or_else(|| "an `&` without its `;` (write & as &amp;)".to_owned())?;
        let name = &after[..end];
        let c = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => {
                let code = if let Some(hex) = name.strip_prefix("#x") {
                    hex.chars()
                        .all(|c| c.is_ascii_hexdigit())
                        .then(|| u32::from_str_radix(hex, 16).ok())
                        .flatten()
                } else if let Some(dec) = name.strip_prefix('#') {
                    dec.chars()
                        .all(|c| c.is_ascii_digit())
                        .then(|| dec.parse::<u32>().ok())
                        .flatten()
                } else {
                    return Err(format!(
                        "the entity &{}; is refused: only XML's own (&amp; &lt; &gt; &quot; \
                         &apos;) and character references are read",
                        preview(name)
                    ));
                };
                code.and_then(char::from_u32)
            }
        };
        let c = c.ok_or_else(|| format!("&{}; is not a character", preview(name)))?;
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Malformed XML at byte `position` of `input`, named by line and column.
fn xml_error(input: &[u8], position: usize, reason: impl Into<String>) -> TransferError {
    let at = position.min(input.len());
    let before = input.get(..at).unwrap_or(input);
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    TransferError::Xml {
        line,
        column: at - line_start + 1,
        reason: reason.into(),
    }
}
