//! The sensor push route's answers, which node and hub give alike
//! (`docs/protocol.md` 3.6–3.7): the refusal problem
//! (`urn:sentinel:problem:push-refused`, with `code`, and `index`, `seq`,
//! `head_seq` when one entry is at fault), the `Content-Type` check, and
//! the OpenAPI description of the answers.
//!
//! A `sentinel_sync::push::PushError` becomes a
//! [`crate::api::PushRefusal`], which [`refused`] writes.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa::openapi::ObjectBuilder;
use utoipa::ToSchema;

use crate::openapi::names_schema;
use crate::PROBLEM_JSON;

/// The problem type of every refused push.
pub const PUSH_REFUSED: &str = "urn:sentinel:problem:push-refused";

/// The detail of a push the store failed to take (`store_failed`): the
/// store's own words are the operator's business and go to the log.
pub const STORE_FAILED: &str = "the receiver could not store the push: retry later";

/// A refused push, as the route answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal<'a> {
    /// The HTTP status (`PushError::status`).
    pub status: u16,
    /// The stable code (`PushError::code`).
    pub code: &'a str,
    pub detail: String,
    /// The entry at fault, by its place in the push (`PushError::index`).
    pub index: Option<usize>,
    /// Its seq and the receiver's head seq for the author, when one entry
    /// was refused (`PushError::seqs`).
    pub seqs: Option<(u64, u64)>,
}

/// A refusal without an entry at fault (415, 413, 503 before checking).
pub fn push_problem(status: u16, code: &str, detail: impl Into<String>) -> Response {
    refused(&Refusal {
        status,
        code,
        detail: detail.into(),
        index: None,
        seqs: None,
    })
}

/// The problem+json answer to a refused push.
pub fn refused(r: &Refusal<'_>) -> Response {
    let mut body = json!({
        "type": PUSH_REFUSED,
        "title": "Push refused",
        "status": r.status,
        "detail": r.detail,
        "code": r.code,
    });
    if let Some(index) = r.index {
        body["index"] = json!(index);
    }
    if let Some((seq, head_seq)) = r.seqs {
        body["seq"] = json!(seq);
        body["head_seq"] = json!(head_seq);
    }
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [(header::CONTENT_TYPE, PROBLEM_JSON)],
        body.to_string(),
    )
        .into_response()
}

/// 413: a push body over `max_bytes`.
pub fn too_large(max_bytes: usize) -> Response {
    push_problem(
        413,
        "too_large",
        format!("a push is at most {max_bytes} bytes: send fewer entries"),
    )
}

/// 415: a push that is not `application/cbor`.
pub fn not_cbor() -> Response {
    push_problem(
        415,
        "unsupported_media_type",
        "a push is `Content-Type: application/cbor`",
    )
}

/// Whether the request says `Content-Type: application/cbor` (parameters
/// aside, any case).
pub fn is_cbor(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/cbor"))
}

/// The answer to an accepted sensor push (`docs/protocol.md` 3.6); only
/// describes the JSON.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PushReport {
    /// The sensor's key, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub author: String,
    #[schema(minimum = 0)]
    pub n_stored: i64,
    #[schema(minimum = 0)]
    pub n_duplicates: i64,
    /// Every entry of the push, in push order.
    pub entries: Vec<PushedEntry>,
}

fn outcome_schema() -> ObjectBuilder {
    names_schema(["stored", "duplicate"])
}

/// One entry of an accepted push.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PushedEntry {
    #[schema(minimum = 1)]
    pub seq: i64,
    /// The entry's id, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub id: String,
    /// `stored` (added now) or `duplicate` (held already).
    #[schema(schema_with = outcome_schema)]
    pub outcome: String,
}

/// A refused sensor push (`docs/protocol.md` 3.7): a problem with `code`,
/// and `index`, `seq`, `head_seq` when one entry is at fault.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PushProblem {
    /// `urn:sentinel:problem:push-refused` (or `…:rate-limited`, … from
    /// the layers around the route).
    pub r#type: String,
    pub title: String,
    #[schema(minimum = 400, maximum = 599)]
    pub status: i64,
    pub detail: String,
    /// What went wrong, for the sensor (`malformed`, `bad_entry`, `fork`,
    /// `store_failed`, …).
    pub code: String,
    /// The entry at fault, by its place in the push.
    #[schema(required = false, minimum = 0)]
    pub index: i64,
    #[schema(required = false, minimum = 0)]
    pub seq: i64,
    #[schema(required = false, minimum = 0)]
    pub head_seq: i64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn cbor_is_recognised_with_parameters_in_any_case() {
        let mut h = HeaderMap::new();
        assert!(!is_cbor(&h));
        h.insert(
            header::CONTENT_TYPE,
            "Application/CBOR; x=1".parse().unwrap(),
        );
        assert!(is_cbor(&h));
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(!is_cbor(&h));
    }

    #[test]
    fn the_entry_at_fault_is_named() {
        let r = refused(&Refusal {
            status: 409,
            code: "gap",
            detail: "gap".into(),
            index: Some(0),
            seqs: Some((5, 3)),
        });
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
