//! Reading a document into an [`EventView`].
//!
//! Remote devices can write anything, so every read checks type and range
//! and says which field is wrong. Length caps are not re-checked: they
//! bound what a device may write, and entries are capped in size anyway.

use std::collections::BTreeMap;

use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, Value, ValueRef, ROOT};

use super::check::decode_change;
use super::{
    automerge_error, from_hex, key, EventDoc, EventError, EventView, MediaRef, Note, Status,
};
use crate::body::MediaType;
use crate::geo::Point;
use crate::limits::{MAX_SEVERITY, MIN_SEVERITY};

impl EventDoc {
    /// The current winning value of every field, and every conflict. A
    /// panic in Automerge while reading is an error, like a bad field: one
    /// author's document must not take a node down.
    pub fn view(&self) -> Result<EventView, EventError> {
        super::guarded("reading the document", || {
            #[cfg(any(test, feature = "testing"))]
            self.panic_for_tests(super::testing::PANIC_IN_VIEW);
            self.read_view()
        })?
    }

    fn read_view(&self) -> Result<EventView, EventError> {
        let doc = &self.doc;
        let title = required(key::TITLE, read_str(doc, &ROOT, key::TITLE)?)?;
        let description = required(key::DESCRIPTION, read_str(doc, &ROOT, key::DESCRIPTION)?)?;
        let category = required(key::CATEGORY, read_str(doc, &ROOT, key::CATEGORY)?)?;
        let severity = read_severity(doc)?;
        let status = read_status(doc)?;
        let assignee = read_str(doc, &ROOT, key::ASSIGNEE)?;
        let location = read_location(doc)?;
        let reported_ms = required(key::REPORTED_MS, read_ms(doc, &ROOT, key::REPORTED_MS)?)?;
        let notes = maps_in_list(doc, key::NOTES)?
            .iter()
            .map(|note| read_note(doc, note))
            .collect::<Result<Vec<_>, _>>()?;
        let media = maps_in_list(doc, key::MEDIA)?
            .iter()
            .map(|m| read_media(doc, m))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EventView {
            title,
            description,
            category,
            severity,
            status,
            assignee,
            location,
            reported_ms,
            notes,
            media,
            conflicts: conflicts(doc)?,
        })
    }
}

impl EventDoc {
    /// The view of the document that `change` alone makes, read straight
    /// from the change, without building (or later saving) the document:
    /// the cheap path for the common case of an event created by one
    /// change that nobody has edited yet.
    ///
    /// Only a plain creation is read this way: the first change of its
    /// actor (seq 1, first op 1, no dependencies) whose every op puts a
    /// scalar, or makes an object, under a root key no other op of the
    /// change touches, and refers to no earlier op. Such a document holds
    /// one value per field, so it has no conflicts and its lists are
    /// empty, and the view is exactly what [`EventDoc::view`] gives for
    /// `EventDoc::from_changes(&[change])` (the same field readers read
    /// both). `None` for any other change, and when that view would be an
    /// error: then build the document, which says why.
    pub fn created_view(change: &[u8]) -> Option<EventView> {
        use automerge::legacy::{Key, ObjectId, OpType};
        use std::borrow::Cow;

        let change = decode_change(change).ok()?;
        if change.seq() != 1 || change.start_op().get() != 1 || !change.deps().is_empty() {
            return None;
        }
        let expanded = change.decode();
        let mut root: BTreeMap<&str, Value<'_>> = BTreeMap::new();
        for op in &expanded.operations {
            if op.obj != ObjectId::Root || op.insert || !op.pred.is_empty() {
                return None;
            }
            let Key::Map(k) = &op.key else {
                return None;
            };
            let value = match &op.action {
                OpType::Put(v) => Value::Scalar(Cow::Borrowed(v)),
                OpType::Make(t) => Value::Object(*t),
                _ => return None,
            };
            if root.insert(k.as_str(), value).is_some() {
                return None;
            }
        }
        let field = |k: &str| root.get(k).cloned();
        // Lists made empty, as `EventDoc::create` makes them; anything
        // else there is left to the full reader.
        let empty_list = |k: &str| matches!(root.get(k), Some(Value::Object(ObjType::List)));
        if !empty_list(key::NOTES) || !empty_list(key::MEDIA) {
            return None;
        }
        let view = (|| {
            Ok::<_, EventError>(EventView {
                title: required(key::TITLE, str_of(key::TITLE, field(key::TITLE))?)?,
                description: required(
                    key::DESCRIPTION,
                    str_of(key::DESCRIPTION, field(key::DESCRIPTION))?,
                )?,
                category: required(key::CATEGORY, str_of(key::CATEGORY, field(key::CATEGORY))?)?,
                severity: severity_of(ms_of(key::SEVERITY, field(key::SEVERITY))?)?,
                status: status_of(str_of(key::STATUS, field(key::STATUS))?)?,
                assignee: str_of(key::ASSIGNEE, field(key::ASSIGNEE))?,
                location: location_of(
                    f64_of(key::LON, field(key::LON))?,
                    f64_of(key::LAT, field(key::LAT))?,
                )?,
                reported_ms: required(
                    key::REPORTED_MS,
                    ms_of(key::REPORTED_MS, field(key::REPORTED_MS))?,
                )?,
                notes: Vec::new(),
                media: Vec::new(),
                conflicts: BTreeMap::new(),
            })
        })();
        let view = view.ok()?;
        // The test stand-ins for a document Automerge cannot read or save
        // (`super::testing`) take the full path, where they stand in.
        #[cfg(any(test, feature = "testing"))]
        if [super::testing::PANIC_IN_VIEW, super::testing::PANIC_IN_SAVE]
            .contains(&view.title.as_str())
        {
            return None;
        }
        Some(view)
    }
}

fn bad(what: String) -> EventError {
    EventError::BadDocument(what)
}

fn required<T>(field: &str, value: Option<T>) -> Result<T, EventError> {
    value.ok_or_else(|| bad(format!("`{field}` is missing")))
}

/// A short name of a value's type, for error messages.
fn type_name(value: &Value<'_>) -> &'static str {
    match value {
        Value::Object(ObjType::Map) => "a map",
        Value::Object(ObjType::Table) => "a table",
        Value::Object(ObjType::List) => "a list",
        Value::Object(ObjType::Text) => "a text object",
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Bytes(_) => "bytes",
            ScalarValue::Str(_) => "a string",
            ScalarValue::Int(_) => "an int",
            ScalarValue::Uint(_) => "a uint",
            ScalarValue::F64(_) => "an f64",
            ScalarValue::Counter(_) => "a counter",
            ScalarValue::Timestamp(_) => "a timestamp",
            ScalarValue::Boolean(_) => "a boolean",
            ScalarValue::Unknown { .. } => "an unknown type",
            ScalarValue::Null => "null",
        },
    }
}

fn wrong_type(field: &str, value: &Value<'_>, expected: &str) -> EventError {
    bad(format!(
        "`{field}` is {}, expected {expected}",
        type_name(value)
    ))
}

fn winner<'a>(
    doc: &'a AutoCommit,
    obj: &ObjId,
    field: &str,
) -> Result<Option<Value<'a>>, EventError> {
    doc.get(obj, field)
        .map(|found| found.map(|(value, _)| value))
        .map_err(automerge_error)
}

/// The value of `field` in the root map when it holds exactly one value
/// (no conflict), else `None`.
pub(super) fn single_value(
    doc: &AutoCommit,
    field: &str,
) -> Result<Option<ScalarValue>, EventError> {
    let mut all = doc.get_all(ROOT, field).map_err(automerge_error)?;
    Ok(match (all.pop(), all.is_empty()) {
        (Some((Value::Scalar(v), _)), true) => Some(v.into_owned()),
        _ => None,
    })
}

fn read_str(doc: &AutoCommit, obj: &ObjId, field: &str) -> Result<Option<String>, EventError> {
    str_of(field, winner(doc, obj, field)?)
}

/// A field's winning value as a string (`None`: the field is absent).
fn str_of(field: &str, value: Option<Value<'_>>) -> Result<Option<String>, EventError> {
    let Some(value) = value else {
        return Ok(None);
    };
    if let Value::Scalar(s) = &value {
        if let ScalarValue::Str(text) = s.as_ref() {
            return Ok(Some(text.to_string()));
        }
    }
    Err(wrong_type(field, &value, "a string"))
}

/// An integer that is not negative. Other Automerge clients may write
/// numbers as int, uint or timestamp; all three are accepted.
fn read_ms(doc: &AutoCommit, obj: &ObjId, field: &str) -> Result<Option<u64>, EventError> {
    ms_of(field, winner(doc, obj, field)?)
}

/// A field's winning value as [`read_ms`] reads it.
fn ms_of(field: &str, value: Option<Value<'_>>) -> Result<Option<u64>, EventError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let n = match &value {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Int(i) | ScalarValue::Timestamp(i) => u64::try_from(*i).ok(),
            ScalarValue::Uint(u) => Some(*u),
            _ => return Err(wrong_type(field, &value, "an integer")),
        },
        Value::Object(_) => return Err(wrong_type(field, &value, "an integer")),
    };
    n.map(Some)
        .ok_or_else(|| bad(format!("`{field}` is negative")))
}

/// A number as f64. JavaScript clients write whole numbers as ints, so
/// ints are accepted too.
fn read_f64(doc: &AutoCommit, field: &str) -> Result<f64, EventError> {
    f64_of(field, winner(doc, &ROOT, field)?)
}

/// A field's winning value as [`read_f64`] reads it.
fn f64_of(field: &str, value: Option<Value<'_>>) -> Result<f64, EventError> {
    let value = required(field, value)?;
    match &value {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::F64(f) => Ok(*f),
            ScalarValue::Int(i) => Ok(*i as f64),
            ScalarValue::Uint(u) => Ok(*u as f64),
            _ => Err(wrong_type(field, &value, "a number")),
        },
        Value::Object(_) => Err(wrong_type(field, &value, "a number")),
    }
}

fn read_severity(doc: &AutoCommit) -> Result<u8, EventError> {
    severity_of(read_ms(doc, &ROOT, key::SEVERITY)?)
}

fn severity_of(n: Option<u64>) -> Result<u8, EventError> {
    let n = required(key::SEVERITY, n)?;
    u8::try_from(n)
        .ok()
        .filter(|s| (MIN_SEVERITY..=MAX_SEVERITY).contains(s))
        .ok_or_else(|| {
            bad(format!(
                "`severity` is {n}, allowed {MIN_SEVERITY}..={MAX_SEVERITY}"
            ))
        })
}

pub(super) fn read_status(doc: &AutoCommit) -> Result<Status, EventError> {
    status_of(read_str(doc, &ROOT, key::STATUS)?)
}

fn status_of(s: Option<String>) -> Result<Status, EventError> {
    let s = required(key::STATUS, s)?;
    s.parse()
        .map_err(|_| bad(format!("`status` {:?} is not a known status", preview(&s))))
}

fn read_location(doc: &AutoCommit) -> Result<Point, EventError> {
    location_of(read_f64(doc, key::LON)?, read_f64(doc, key::LAT)?)
}

fn location_of(lon: f64, lat: f64) -> Result<Point, EventError> {
    Point::new(lon, lat).map_err(|e| bad(format!("location: {e}")))
}

/// The id of the list under `field` in the root map.
pub(super) fn list_id(doc: &AutoCommit, field: &str) -> Result<ObjId, EventError> {
    match doc.get(ROOT, field).map_err(automerge_error)? {
        Some((Value::Object(ObjType::List), id)) => Ok(id),
        Some((other, _)) => Err(wrong_type(field, &other, "a list")),
        None => Err(bad(format!("`{field}` is missing"))),
    }
}

/// The ids of the maps in the list under `field`, in list order.
fn maps_in_list(doc: &AutoCommit, field: &str) -> Result<Vec<ObjId>, EventError> {
    let list = list_id(doc, field)?;
    doc.list_range(&list, ..)
        .map(|item| match item.value {
            ValueRef::Object(ObjType::Map) => Ok(item.id()),
            _ => Err(bad(format!("`{field}[{}]` is not a map", item.index))),
        })
        .collect()
}

fn read_note(doc: &AutoCommit, note: &ObjId) -> Result<Note, EventError> {
    Ok(Note {
        text: required("note.text", read_str(doc, note, key::NOTE_TEXT)?)?,
        actor: read_str(doc, note, key::NOTE_ACTOR)?,
        at_ms: required("note.at_ms", read_ms(doc, note, key::NOTE_AT_MS)?)?,
    })
}

fn read_media(doc: &AutoCommit, m: &ObjId) -> Result<MediaRef, EventError> {
    let hash_hex = required("media.hash", read_str(doc, m, key::MEDIA_HASH)?)?;
    let hash = from_hex(&hash_hex).ok_or_else(|| {
        bad(format!(
            "`media.hash` {:?} is not 64 hex digits",
            preview(&hash_hex)
        ))
    })?;
    let mime_text = required("media.mime", read_str(doc, m, key::MEDIA_MIME)?)?;
    let mime = MediaType::from_mime(&mime_text).ok_or_else(|| {
        bad(format!(
            "`media.mime` {:?} is not an accepted type",
            preview(&mime_text)
        ))
    })?;
    Ok(MediaRef {
        hash,
        mime,
        size: required("media.size", read_ms(doc, m, key::MEDIA_SIZE)?)?,
        name: required("media.name", read_str(doc, m, key::MEDIA_NAME)?)?,
    })
}

/// At most 32 characters of outside text, for error messages.
fn preview(s: &str) -> String {
    s.chars().take(32).collect()
}

/// A value as a conflict shows it.
fn render(value: &Value<'_>) -> String {
    match value {
        Value::Object(_) => format!("<{}>", type_name(value)),
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => s.to_string(),
            ScalarValue::Int(i) | ScalarValue::Timestamp(i) => i.to_string(),
            ScalarValue::Uint(u) => u.to_string(),
            ScalarValue::F64(f) => f.to_string(),
            ScalarValue::Boolean(b) => b.to_string(),
            ScalarValue::Null => "null".to_owned(),
            other => other.to_string(),
        },
    }
}

/// Keeps the first of equal strings: two devices writing the same value
/// at once is not a conflict.
fn distinct(values: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Whether `lat` was written right after `lon` in the same change.
fn written_together(lon: &ObjId, lat: &ObjId) -> bool {
    match (lon, lat) {
        (ObjId::Id(lon_ctr, lon_actor, _), ObjId::Id(lat_ctr, lat_actor, _)) => {
            lon_actor == lat_actor && lon_ctr.checked_add(1) == Some(*lat_ctr)
        }
        _ => false,
    }
}

fn conflicts(doc: &AutoCommit) -> Result<BTreeMap<String, Vec<String>>, EventError> {
    let mut out = BTreeMap::new();
    // `get_all` lists concurrent values in op id order, which is the same
    // on every device, so the rendered lists are too.
    for field in [
        key::TITLE,
        key::DESCRIPTION,
        key::CATEGORY,
        key::SEVERITY,
        key::STATUS,
        key::ASSIGNEE,
        key::REPORTED_MS,
    ] {
        let all = doc.get_all(ROOT, field).map_err(automerge_error)?;
        let values = distinct(all.iter().map(|(v, _)| render(v)));
        if values.len() >= 2 {
            out.insert(field.to_owned(), values);
        }
    }
    let lons = doc.get_all(ROOT, key::LON).map_err(automerge_error)?;
    let lats = doc.get_all(ROOT, key::LAT).map_err(automerge_error)?;
    if lons.len() >= 2 || lats.len() >= 2 {
        // A location edit writes lon and lat in one change, so each
        // concurrent location is a lon and the lat written just after it.
        // Halves without a partner (only a foreign client could write one
        // alone) show as `?`.
        let mut pairs = Vec::new();
        for (lon, lon_id) in &lons {
            let lat = lats
                .iter()
                .find(|(_, lat_id)| written_together(lon_id, lat_id))
                .map(|(lat, _)| render(lat));
            pairs.push(format!(
                "{},{}",
                render(lon),
                lat.unwrap_or_else(|| "?".to_owned())
            ));
        }
        for (lat, lat_id) in &lats {
            if !lons
                .iter()
                .any(|(_, lon_id)| written_together(lon_id, lat_id))
            {
                pairs.push(format!("?,{}", render(lat)));
            }
        }
        let values = distinct(pairs);
        if values.len() >= 2 {
            out.insert(key::LOCATION.to_owned(), values);
        }
    }
    Ok(out)
}
