//! `POST /api/v1/devices/{key}/revoke` (admins): cuts a device off from
//! the hub at once, without the offline CA machine.
//!
//! Body: `{"reason": string (at most 256 bytes, may be empty),
//! "last_valid_seq": integer 0 to 2^63 - 1 (optional)}`. The hub signs a
//! `revocation` entry into its own chain, with the admin as the entry's
//! `actor`; appending it adds it to the revocations the sync server
//! enforces (see [`crate::revocations`]): the device's next handshake is
//! refused, its live connection is closed, and every session refuses its
//! entries after `last_valid_seq` from its next batch. The entry
//! replicates to nodes, which apply it too (`docs/security.md` 1.7).
//!
//! `last_valid_seq` defaults to the highest seq of that key the hub holds
//! (0 when it holds none): what the hub already received stays valid,
//! anything later is refused. A key the hub never saw may be revoked (a
//! device stolen before it synced). A revocation only tightens: when the
//! key is already revoked with a last valid seq at or below the one asked
//! for (by an earlier revocation, another hub's, or the CA list), the
//! answer is 409 and nothing is written. The hub's own key is refused
//! (409): only the CA can revoke a hub's identity.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sentinel_http::api::Caller;
use sentinel_http::body::{json_object, text};
use sentinel_http::openapi::{Conflict, Forbidden, JsonBodyRefusals, Unauthorized, Unavailable};
use sentinel_http::params::hex_bytes;
use sentinel_http::Problem;
use sentinel_schema::access::Action;
use sentinel_schema::limits::MAX_REASON_BYTES;
use sentinel_schema::{AuthorId, Body as EntryBody, Revocation};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::state::ApiState;
use crate::revocations::hub_revocation_of;

/// `POST /api/v1/devices/{key}/revoke`. It only describes the body for the
/// OpenAPI document (the handler reads it with `json_object`), so its
/// fields are never read.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RevokeDevice {
    /// Why, for people (kept in the entry); at most 256 bytes.
    #[schema(max_length = 256)]
    pub reason: String,
    /// The device's entries up to and including this seq stay valid (0:
    /// none do), at most 2^63 - 1 (int64). Default: the highest seq of the
    /// key the hub holds.
    #[schema(required = false, minimum = 0)]
    pub last_valid_seq: Option<i64>,
}

/// What a revocation wrote.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceRevoked {
    /// The revoked key, 64 hex digits.
    pub key: String,
    pub last_valid_seq: u64,
    /// The `revocation` entry the hub appended, 64 hex digits.
    pub entry: String,
    /// Its seq in the hub's own chain.
    pub seq: u64,
}

/// `last_valid_seq`: 0 to `i64::MAX`, as the document says (int64). The
/// store holds seqs as signed 64-bit integers, so no entry has a larger
/// seq: a larger bound says nothing `i64::MAX` does not, and is refused
/// rather than signed into the hub's chain.
fn last_valid_seq_field(map: &Map<String, Value>) -> Result<Option<u64>, Problem> {
    match map.get("last_valid_seq") {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|seq| i64::try_from(*seq).is_ok())
            .map(Some)
            .ok_or_else(|| {
                Problem::bad_field(
                    "last_valid_seq",
                    format!("must be an integer 0..={}", i64::MAX),
                )
            }),
    }
}

/// `POST /api/v1/devices/{key}/revoke`: see the module docs.
#[utoipa::path(
    post,
    path = "/api/v1/devices/{key}/revoke",
    tag = "devices",
    params(("key" = String, Path, description = "The device's key, 64 hex digits.", pattern = "^[0-9a-fA-F]{64}$")),
    request_body = RevokeDevice,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The hub signed the revocation and enforces it from now on.",
            body = DeviceRevoked),
        JsonBodyRefusals, Unauthorized, Forbidden, Conflict, Unavailable,
    )
)]
pub(super) async fn revoke(
    State(state): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    caller.may(Action::RevokeDevice, None)?;
    let key = AuthorId(
        hex_bytes::<32>(&key)
            .ok_or_else(|| Problem::bad_param("key", "a device key is 64 hex digits"))?,
    );
    let map = json_object(&headers, body, &["reason", "last_valid_seq"]).await?;
    let reason = text(&map, "reason")?;
    if reason.len() > MAX_REASON_BYTES {
        return Err(Problem::bad_field(
            "reason",
            format!("{} bytes; at most {MAX_REASON_BYTES}", reason.len()),
        ));
    }
    let asked = last_valid_seq_field(&map)?;
    let own = state.own_chain()?;
    if key == own.author() {
        return Err(Problem::conflict(
            "key",
            "this is the hub's own key: a hub cannot revoke itself; revoke it on the CA machine \
             (sentinel-certs revoke)",
        ));
    }
    let last_valid_seq = match asked {
        Some(seq) => seq,
        None => state.store.head(&key).await?.map_or(0, |h| h.seq),
    };
    // The strictest revocation in force: what the sync server enforces
    // (the CA list and every hub's entries), and the log's hub entries in
    // case no sync server runs in this process.
    let enforced = own
        .revocations()
        .and_then(|h| h.revocation_of(&key))
        .map(|r| r.last_valid_seq);
    let logged = hub_revocation_of(&state.store, own.ca(), &key)
        .await?
        .map(|r| r.revoked.last_valid_seq);
    if let Some(held) = enforced.into_iter().chain(logged).min() {
        if held <= last_valid_seq {
            return Err(Problem::conflict(
                "last_valid_seq",
                format!(
                    "{key} is already revoked: its entries after seq {held} are refused; a \
                     revocation only tightens, so ask for a last valid seq below {held}"
                ),
            ));
        }
    }
    let entries = own
        .append(
            vec![EntryBody::Revocation(Revocation {
                key,
                last_valid_seq,
                reason: reason.to_owned(),
            })],
            Some(&caller.name),
            state.now_ms(),
        )
        .await
        .map_err(|e| Problem::unavailable(&e))?;
    let Some(entry) = entries.last() else {
        return Err(Problem::unavailable(&"no entry was written"));
    };
    tracing::warn!(
        admin = %caller.name,
        key = %key,
        last_valid_seq,
        entry = %entry.id(),
        "device revoked"
    );
    let revoked = DeviceRevoked {
        key: key.to_hex(),
        last_valid_seq,
        entry: entry.id().to_hex(),
        seq: entry.seq(),
    };
    Ok((StatusCode::CREATED, Json(revoked)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(body: Value) -> Result<Option<u64>, Problem> {
        match body {
            Value::Object(map) => last_valid_seq_field(&map),
            _ => unreachable!("a test body is an object"),
        }
    }

    #[test]
    fn last_valid_seq_is_an_int64_at_least_zero() {
        assert_eq!(field(json!({})).ok(), Some(None));
        assert_eq!(field(json!({"last_valid_seq": 0})).ok(), Some(Some(0)));
        let max = i64::MAX as u64;
        assert_eq!(field(json!({"last_valid_seq": max})).ok(), Some(Some(max)));
        for refused in [
            json!(max + 1),
            json!(u64::MAX),
            json!(-1),
            json!(1.5),
            json!("1"),
        ] {
            let problem = field(json!({ "last_valid_seq": refused })).err();
            assert_eq!(
                problem.and_then(|p| p.field),
                Some("last_valid_seq".to_owned()),
                "{refused}"
            );
        }
    }
}
