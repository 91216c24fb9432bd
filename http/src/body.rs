//! Request bodies: JSON objects only, size-capped before they are read,
//! unknown members refused, each refusal naming its field.

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use serde_json::{Map, Value};

use crate::Problem;

/// Largest JSON body accepted.
pub const MAX_JSON_BYTES: usize = 16 * 1024;

/// A JSON object body: `application/json`, at most [`MAX_JSON_BYTES`]
/// (refused before more is read), only the `allowed` members.
pub async fn json_object(
    headers: &HeaderMap,
    body: Body,
    allowed: &[&str],
) -> Result<Map<String, Value>, Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    {
        return Err(Problem {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            kind: "urn:sentinel:problem:unsupported-media-type",
            title: "Unsupported media type",
            detail: format!("send application/json, not {content_type:?}"),
            field: None,
        });
    }
    let too_large = || {
        Problem::too_large(format!(
            "the body is over {MAX_JSON_BYTES} bytes, the most accepted"
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_JSON_BYTES as u64) {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(body, MAX_JSON_BYTES)
        .await
        .map_err(|e| if timed_out(&e) { slow() } else { too_large() })?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| Problem::bad_field("body", format!("not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(Problem::bad_field("body", "must be a JSON object"));
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Problem::bad_field(
            unknown.clone(),
            format!("unknown field; allowed: {}", allowed.join(", ")),
        ));
    }
    Ok(map)
}

pub fn text<'a>(map: &'a Map<String, Value>, field: &str) -> Result<&'a str, Problem> {
    match map.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Problem::bad_field(field, "must be a string")),
        None => Err(Problem::bad_field(field, "is required")),
    }
}

/// A route that takes no body: none at all, or an empty JSON object
/// (refused as [`json_object`] refuses, naming `body`, otherwise).
pub async fn no_body(headers: &HeaderMap, body: Body) -> Result<(), Problem> {
    if headers.contains_key(header::CONTENT_TYPE) {
        json_object(headers, body, &[]).await?;
        return Ok(());
    }
    axum::body::to_bytes(body, 0)
        .await
        .map(|_| ())
        .map_err(|e| {
            if timed_out(&e) {
                slow()
            } else {
                Problem::bad_field("body", "this route takes no body (or {})")
            }
        })
}

/// Whether reading a body failed because it did not arrive in time (the
/// body timeouts of `crate::serve`), anywhere in `e`'s chain of causes.
pub fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(e) = cause {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The `408` for a body that did not arrive in time.
pub fn slow() -> Problem {
    Problem::timeout("the request body did not arrive in time")
}
