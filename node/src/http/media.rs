//! Photos and videos: `POST /api/v1/events/{id}/media` (multipart) and
//! `GET /api/v1/media/{hash}`.
//!
//! An upload is `multipart/form-data` with one part `file` (the bytes; its
//! file name is recorded unless a part `name` gives another). A body whose
//! `Content-Length` exceeds the cap is refused (413) before it is read;
//! one without is counted while it streams and refused as soon as it
//! passes the cap. The media type is decided by the bytes (JPEG, PNG,
//! WebP, MP4), never by what the client declares. The blob is stored
//! before the entry that names it is committed; a refused upload leaves no
//! entry (a blob without an entry names nothing and is never served).
//!
//! **Memory.** The file's bytes go to a spool file on disk as they arrive
//! (`super::state::UPLOAD_SPOOL_DIR` of the data directory, removed when
//! the upload ends however it ends), not to memory; at most
//! `super::state::MAX_UPLOADS` uploads are taken at once (configurable),
//! and one more is refused with a `503` problem before its body is read.
//! The spooled file is read whole only to store it, under the node's lock,
//! one upload at a time.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sentinel_http::api::events::event_id;
use sentinel_http::api::Caller;
use sentinel_http::openapi::{BadRequest, Forbidden, NotFound, Unauthorized, Unavailable};
use sentinel_http::params::{Pairs, Params};
use sentinel_http::Problem;
use sentinel_schema::access::Action;
use sentinel_schema::limits::{MAX_MEDIA_BYTES, MAX_NAME_BYTES};
use serde_json::json;

use super::access::{checked, precheck};
use super::problems::erased;
use super::schemas::{Ack, MediaUpload, EXAMPLE_EVENT, EXAMPLE_MEDIA};
use super::state::ApiState;
use crate::media::MediaError;
use crate::node::NodeError;
use crate::store::events::MediaMime;

/// The largest upload body: one blob and the multipart framing around it.
pub const MAX_UPLOAD_BYTES: usize = MAX_MEDIA_BYTES as usize + 64 * 1024;

fn too_large() -> Problem {
    Problem::too_large(format!(
        "media is at most {MAX_MEDIA_BYTES} bytes (the upload at most {MAX_UPLOAD_BYTES})"
    ))
}

fn unsupported(detail: impl Into<String>) -> Problem {
    Problem {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        kind: "urn:sentinel:problem:unsupported-media-type",
        title: "Unsupported media type",
        detail: detail.into(),
        field: Some("file".into()),
    }
}

fn multipart_problem(e: axum::extract::multipart::MultipartError) -> Problem {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else if sentinel_http::body::timed_out(&e) {
        sentinel_http::body::slow()
    } else {
        Problem::bad_field("body", e.body_text())
    }
}

/// Bytes kept in memory from the start of an upload, to tell its type.
const HEAD_BYTES: usize = 4096;

/// An upload's file part, spooled to disk as it arrives: removed when
/// dropped, whether the upload was stored or refused.
struct Spooled {
    file: tokio::fs::File,
    path: tempfile::TempPath,
    len: u64,
    /// The first [`HEAD_BYTES`], for the type.
    head: Vec<u8>,
}

impl Spooled {
    async fn create(dir: &std::path::Path) -> Result<Spooled, Problem> {
        let dir = dir.to_path_buf();
        let (file, path) = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            tempfile::Builder::new()
                .prefix("upload-")
                .tempfile_in(&dir)
                .map(tempfile::NamedTempFile::into_parts)
        })
        .await
        .map_err(|e| Problem::unavailable(&e))?
        .map_err(|e| Problem::unavailable(&e))?;
        Ok(Spooled {
            file: tokio::fs::File::from_std(file),
            path,
            len: 0,
            head: Vec::new(),
        })
    }

    async fn write(&mut self, chunk: &[u8]) -> Result<(), Problem> {
        use tokio::io::AsyncWriteExt;
        let keep = HEAD_BYTES.saturating_sub(self.head.len()).min(chunk.len());
        self.head.extend_from_slice(&chunk[..keep]);
        self.file
            .write_all(chunk)
            .await
            .map_err(|e| Problem::unavailable(&e))?;
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// Every byte written; the path to read them from, removed when
    /// dropped.
    async fn finish(mut self) -> Result<tempfile::TempPath, Problem> {
        use tokio::io::AsyncWriteExt;
        self.file
            .flush()
            .await
            .map_err(|e| Problem::unavailable(&e))?;
        Ok(self.path)
    }
}

/// `POST /api/v1/events/{id}/media`.
#[utoipa::path(
    post,
    path = "/api/v1/events/{id}/media",
    tag = "media",
    params(("id" = String, Path, description = "The event, 32 hex digits.",
        pattern = "^[0-9a-fA-F]{32}$", example = json!(EXAMPLE_EVENT))),
    request_body(content = MediaUpload, content_type = "multipart/form-data"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The media is stored and attached.", body = Ack),
        BadRequest, Unauthorized, Forbidden, NotFound,
        (status = 410, description = "A redaction erased this media: it is not accepted again.",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The upload is over its bound (64 MiB of media).",
            body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not multipart/form-data, or the file \
            is not JPEG, PNG, WebP or MP4.",
            body = Problem, content_type = "application/problem+json"),
        Unavailable,
    )
)]
pub(super) async fn upload(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, Problem> {
    let event = event_id(&id)?;
    precheck(&state, &caller, event, Action::Attach).await?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_UPLOAD_BYTES as u64) {
        return Err(too_large());
    }
    let mut multipart = multipart.map_err(|e| {
        unsupported(format!(
            "send multipart/form-data with a part `file`: {}",
            e.body_text()
        ))
    })?;
    let _slot = state.upload_slot()?;
    let mut file: Option<(Spooled, Option<String>)> = None;
    let mut name: Option<String> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_problem)? {
        match field.name() {
            Some("file") if file.is_none() => {
                let file_name = field.file_name().map(str::to_owned);
                let mut spooled = Spooled::create(state.spool_dir()).await?;
                while let Some(chunk) = field.chunk().await.map_err(multipart_problem)? {
                    if spooled.len + chunk.len() as u64 > MAX_MEDIA_BYTES {
                        return Err(too_large());
                    }
                    spooled.write(&chunk).await?;
                }
                file = Some((spooled, file_name));
            }
            Some("name") if name.is_none() => {
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_problem)? {
                    if bytes.len() + chunk.len() > MAX_NAME_BYTES {
                        return Err(Problem::bad_field(
                            "name",
                            format!("at most {MAX_NAME_BYTES} bytes"),
                        ));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                name = Some(
                    String::from_utf8(bytes)
                        .map_err(|_| Problem::bad_field("name", "must be UTF-8 text"))?,
                );
            }
            Some(other @ ("file" | "name")) => {
                return Err(Problem::bad_field(other, "given more than once"));
            }
            other => {
                return Err(Problem::bad_field(
                    other.unwrap_or("body"),
                    "unknown part; allowed: file, name",
                ));
            }
        }
    }
    let (spooled, file_name) = file.ok_or_else(|| Problem::bad_field("file", "is required"))?;
    if spooled.len == 0 {
        return Err(Problem::bad_field("file", "is empty"));
    }
    crate::media::sniff(&spooled.head).map_err(|e| unsupported(e.to_string()))?;
    let spooled = spooled.finish().await?;
    let name = name
        .or(file_name)
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "media".to_owned());
    if name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(Problem::bad_field(
            "name",
            format!("at most {MAX_NAME_BYTES} bytes, no control characters"),
        ));
    }
    let now = state.now_ms();
    let ack = state
        .write_node(move |node| {
            checked(node, &caller, event, Action::Attach)?;
            let bytes = std::fs::read(&spooled).map_err(|e| Problem::unavailable(&e))?;
            node.attach(event, &bytes, &name, Some(&caller.name), now)
                .map_err(|e| match e {
                    NodeError::Media(MediaError::TooLarge { .. }) => too_large(),
                    NodeError::Media(e @ MediaError::UnsupportedType { .. }) => {
                        unsupported(e.to_string())
                    }
                    NodeError::Sign(e) => Problem::bad_field("name", e.to_string()),
                    e @ NodeError::Erased(_) => erased(Some("file"), e.to_string()),
                    other => other.into(),
                })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!(ack))).into_response())
}

/// `GET /api/v1/media/{hash}`: a blob an event on this node names.
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
            not arrived yet (they come with the next sync).",
            body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "A redaction erased this media: it is served no more.",
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
    let (mime, bytes) = state
        .with_node(move |node| {
            let mime = match node.store().media_mime(&digest)? {
                MediaMime::Named(mime) => mime,
                MediaMime::Erased => {
                    return Err(erased(
                        None,
                        "a redaction erased this media; it is served no more",
                    ))
                }
                MediaMime::Unknown => {
                    return Err(Problem::not_found("no event here names this media"))
                }
            };
            match node.media().read(&digest) {
                Ok(bytes) => Ok((mime, bytes)),
                Err(MediaError::NotFound { .. }) => Err(Problem::not_found(
                    "this media is not on this device yet (it arrives with the next sync)",
                )),
                Err(e) => Err(Problem::unavailable(&e)),
            }
        })
        .await?;
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
