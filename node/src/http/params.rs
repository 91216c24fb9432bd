//! Request bodies of the node's own routes: parsed strictly, each refusal
//! naming its field. (Query parameters are `sentinel_http::params`'.)

use sentinel_schema::Point;
use serde_json::{Map, Value};

use sentinel_http::Problem;

/// An optional string member.
pub(crate) fn opt_text<'a>(
    map: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, Problem> {
    match map.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Problem::bad_field(field, "must be a string")),
    }
}

/// An optional severity member: an integer 1..=5.
pub(crate) fn opt_severity(map: &Map<String, Value>, field: &str) -> Result<Option<u8>, Problem> {
    use sentinel_schema::limits::{MAX_SEVERITY, MIN_SEVERITY};
    let Some(v) = map.get(field) else {
        return Ok(None);
    };
    let bad = || {
        Problem::bad_field(
            field,
            format!("must be an integer {MIN_SEVERITY}..={MAX_SEVERITY}"),
        )
    };
    let n = v.as_u64().ok_or_else(bad)?;
    let s = u8::try_from(n).map_err(|_| bad())?;
    if !(MIN_SEVERITY..=MAX_SEVERITY).contains(&s) {
        return Err(bad());
    }
    Ok(Some(s))
}

/// An optional location member: `{"lon": number, "lat": number}` and
/// nothing else, inside the WGS 84 range.
pub(crate) fn opt_location(
    map: &Map<String, Value>,
    field: &str,
) -> Result<Option<Point>, Problem> {
    let Some(v) = map.get(field) else {
        return Ok(None);
    };
    let Value::Object(loc) = v else {
        return Err(Problem::bad_field(
            field,
            "must be an object {\"lon\": number, \"lat\": number}",
        ));
    };
    if let Some(unknown) = loc.keys().find(|k| !matches!(k.as_str(), "lon" | "lat")) {
        return Err(Problem::bad_field(
            format!("{field}.{unknown}"),
            "unknown field; allowed: lon, lat",
        ));
    }
    let number = |axis: &str| -> Result<f64, Problem> {
        let name = format!("{field}.{axis}");
        match loc.get(axis) {
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| Problem::bad_field(name, "must be a finite number")),
            None => Err(Problem::bad_field(name, "is required")),
        }
    };
    let (lon, lat) = (number("lon")?, number("lat")?);
    if !(-180.0..=180.0).contains(&lon) {
        return Err(Problem::bad_field(
            format!("{field}.lon"),
            format!("longitude {lon} is outside -180..=180"),
        ));
    }
    Point::new(lon, lat)
        .map(Some)
        .map_err(|e| Problem::bad_field(format!("{field}.lat"), e.to_string()))
}

pub(crate) use sentinel_http::body::no_body;
