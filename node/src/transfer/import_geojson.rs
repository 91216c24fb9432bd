//! GeoJSON import: a FeatureCollection (or one Feature) of Point features,
//! decoded one feature at a time.

use sentinel_schema::{NewEvent, Point};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::time::rfc3339_ms;
use super::{event_id, preview, refused, validated, ImportRecord, TimeField, TransferError};

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

pub(super) fn parse_geojson(
    input: &[u8],
    max_records: usize,
) -> Result<Vec<ImportRecord>, TransferError> {
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
