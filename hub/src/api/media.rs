//! `GET /api/v1/media/{hash}` on the hub: a photo or video an event in the
//! hub's view names, from the hub's blob folder (`sentinel_sync::blobs`,
//! filled by media connections: `crate::media`), with the node's answer
//! shape, headers and access rules (`node/src/http/media.rs`): the matrix's
//! `ReadMedia` (officers and admins; never the public, invariant 12), the
//! type the entry named as `Content-Type` with `X-Content-Type-Options:
//! nosniff`, 404 when no event names the hash or its bytes have not
//! arrived yet. A blob in the folder that no event names is never served.
//!
//! Never does: SQL (the store answers which type an event names), write
//! the blob folder, or fetch a missing blob (the next media connection
//! does).

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use sentinel_http::api::Caller;
use sentinel_http::openapi::{BadRequest, Forbidden, Unauthorized, Unavailable};
use sentinel_http::params::{Pairs, Params};
use sentinel_http::Problem;
use sentinel_schema::access::Action;
use sentinel_sync::blobs::MediaError;

use super::state::ApiState;

/// The media hash the document gives as an example (the node's).
pub const EXAMPLE_MEDIA: &str = "a9daccaecd68e446d76070cc759afcfb3b85f593361f2ab8daf19004e2c687b9";

fn not_here() -> Problem {
    Problem::not_found("this media is not on this device yet (it arrives with the next sync)")
}

/// `GET /api/v1/media/{hash}`: a blob an event on this hub names.
#[utoipa::path(
    get,
    path = "/api/v1/media/{hash}",
    tag = "media",
    params(("hash" = String, Path, description = "The media's SHA-256, 64 hex digits.",
        pattern = "^[0-9a-fA-F]{64}$", example = json!(EXAMPLE_MEDIA))),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The bytes, with the type they were recognised as.",
            headers(("X-Content-Type-Options" = String, description = "nosniff")),
            content(
                (Vec<u8> = "image/jpeg"),
                (Vec<u8> = "image/png"),
                (Vec<u8> = "image/webp"),
                (Vec<u8> = "video/mp4"),
            )),
        BadRequest, Unauthorized, Forbidden,
        (status = 404, description = "No event here names this media, or its bytes have \
            not arrived yet (they come with the next media connection of a node that \
            holds them).",
            body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "A redaction erased this media: it is kept nowhere.",
            body = Problem, content_type = "application/problem+json"),
        Unavailable,
    )
)]
pub(super) async fn download(
    State(state): State<ApiState>,
    caller: Caller,
    Path(hash): Path<String>,
    query: Pairs,
) -> Result<Response, Problem> {
    caller.may(Action::ReadMedia, None)?;
    Params::from_query(query, &[])?;
    let mut digest = [0u8; 32];
    if hash.len() != 64 || hex::decode_to_slice(&hash, &mut digest).is_err() {
        return Err(Problem::bad_param("hash", "a media hash is 64 hex digits"));
    }
    let Some(mime) = state.store.media_mime(&digest).await? else {
        if state.store.blob_redacted(&digest).await? {
            return Err(Problem::gone(
                "a redaction erased this media; it is not kept anywhere",
            ));
        }
        return Err(Problem::not_found("no event here names this media"));
    };
    let Some(blobs) = state.media.clone() else {
        return Err(not_here());
    };
    let bytes = tokio::task::spawn_blocking(move || blobs.read(&digest))
        .await
        .map_err(|e| Problem::unavailable(&e))?
        .map_err(|e| match e {
            MediaError::NotFound { .. } => not_here(),
            e => Problem::unavailable(&e),
        })?;
    let content_type = HeaderValue::from_str(&mime)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        bytes,
    )
        .into_response())
}
