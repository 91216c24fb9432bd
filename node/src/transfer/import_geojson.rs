//! GeoJSON import: a FeatureCollection (or one Feature) of Point features,
//! decoded one feature at a time. Properties are found by name, through
//! `--map`; any other geometry is refused naming the feature.

use sentinel_schema::{NewEvent, Point};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::fields::label;
use super::time::rfc3339_ms;
use super::{
    event_id, preview, refused, validated, ImportOptions, ImportRecord, TimeField, TransferError,
};

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
/// Properties an export writes that the import accepts but does not read
/// (the node's export, and the servers' `export.geojson`).
const GEOJSON_EXPORT_ONLY: [&str; 7] = [
    "status",
    "assignee",
    "n_notes",
    "n_media",
    "conflicts",
    "has_conflicts",
    "distance_m",
];

pub(super) fn parse_geojson(
    input: &[u8],
    max_records: usize,
    options: &ImportOptions,
) -> Result<Vec<ImportRecord>, TransferError> {
    let mut records = Vec::new();
    let mut refusal = None;
    let mut de = serde_json::Deserializer::from_slice(input);
    let top = Document {
        records: &mut records,
        refusal: &mut refusal,
        max_records,
        options,
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
            Ok(vec![feature_record(1, &Value::Object(feature), options)?])
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
    options: &'a ImportOptions,
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
                        options: self.options,
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
    options: &'a ImportOptions,
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
                feature_record(index, &feature, self.options)
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

/// One Feature as a record; `index` is its 1-based number. A refusal
/// names the feature by its title and id where it has them.
fn feature_record(
    index: usize,
    feature: &Value,
    options: &ImportOptions,
) -> Result<ImportRecord, TransferError> {
    let Value::Object(feature) = feature else {
        return Err(refused(index, "feature", "is not a JSON object"));
    };
    feature_fields(index, feature, options).map_err(|e| {
        let props = feature.get("properties").and_then(Value::as_object);
        let text = |name: &str| {
            props
                .and_then(|p| p.get(options.map.name_of(name)))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        // GIS tools key features by the Feature's own `id`.
        let id = text("id").or_else(|| match feature.get("id") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        });
        e.labelled(label(id.as_deref(), text("title").as_deref()))
    })
}

/// The properties as the import reads them: each under the field it is
/// read as (through the mapping); unknown ones refused by name, or
/// skipped with `ignore_unknown`.
fn mapped_properties(
    index: usize,
    props: &serde_json::Map<String, Value>,
    options: &ImportOptions,
) -> Result<serde_json::Map<String, Value>, TransferError> {
    let mut out = serde_json::Map::new();
    for (name, value) in props {
        let field = options
            .map
            .field(name)
            .filter(|f| GEOJSON_READ.contains(f))
            .or_else(|| {
                GEOJSON_EXPORT_ONLY
                    .iter()
                    .copied()
                    .find(|f| *f == name.as_str())
            });
        match field {
            Some(field) => {
                out.insert(field.to_owned(), value.clone());
            }
            None if options.ignore_unknown => {}
            None => {
                return Err(refused(
                    index,
                    &preview(name),
                    format!(
                        "unknown property; known properties are {} (or map other names \
                         with --map FIELD=NAME, or skip them with --ignore-unknown)",
                        GEOJSON_READ.join(", ")
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// [`feature_record`] without the record's name.
fn feature_fields(
    index: usize,
    feature: &serde_json::Map<String, Value>,
    options: &ImportOptions,
) -> Result<ImportRecord, TransferError> {
    match feature.get("type") {
        Some(Value::String(t)) if t == "Feature" => {}
        _ => return Err(refused(index, "type", "must be \"Feature\"")),
    }
    let location = geometry_point(index, feature.get("geometry"))?;
    let Some(Value::Object(props)) = feature.get("properties") else {
        return Err(refused(index, "properties", "must be a JSON object"));
    };
    let props = mapped_properties(index, props, options)?;
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
        (None, None) => match options.default_reported_ms {
            Some(ms) => (ms, TimeField::ReportedAt),
            None => {
                return Err(refused(
                    index,
                    "reported_at",
                    "is required (or reported_ms)",
                ))
            }
        },
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
                format!(
                    "{} is not \"Point\": an event is a point, so lines, polygons \
                     and Multi* geometries cannot be imported",
                    preview(&other.to_string())
                ),
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
