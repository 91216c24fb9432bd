//! The operations routes both servers serve, never rate-limited:
//! `GET /healthz` (the process runs), `GET /readyz` (the store answers
//! and its schema is current, within [`READY_TIMEOUT`]) and
//! `GET /metrics` (Prometheus text format, unauthenticated: keep it off
//! the public network); and `GET /api/v1/openapi.json`, the serving
//! server's own document (behind the rate limit, like every `/api/v1`
//! route).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;

use utoipa::openapi::OpenApi;

use super::Api;
use crate::openapi::Unavailable;
use crate::Problem;

/// How long `/readyz` waits for the store.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process runs.", body = String,
        content_type = "text/plain", example = "ok"))
)]
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the store answers, and its schema is the newest this
/// build knows.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The store answers and its schema is current.",
            body = String, content_type = "text/plain", example = "ready"),
        (status = 503, description = "Not ready: the detail says why.",
            body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn readyz(State(api): State<Api>) -> Response {
    match tokio::time::timeout(READY_TIMEOUT, api.backend.ready()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(p)) => p.into_response(),
        Err(_) => Problem::not_ready(format!(
            "the store did not answer within {} s",
            READY_TIMEOUT.as_secs()
        ))
        .into_response(),
    }
}

/// `GET /metrics` ([`crate::ops::metrics_endpoint`]).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Every metric, Prometheus text format 0.0.4.",
            body = String, content_type = "text/plain"),
        Unavailable,
    )
)]
pub async fn metrics() -> Response {
    crate::ops::metrics_endpoint().await
}

/// The serving server's OpenAPI document, handed to
/// [`openapi_json`] as a request extension by the router that serves it
/// (`axum::Extension(Document::new(document))`): the document describes
/// the routes, so it cannot be part of the state they share.
#[derive(Clone)]
pub struct Document {
    document: fn() -> &'static OpenApi,
    /// The document as JSON, made on the first request (or why it could
    /// not be).
    json: Arc<OnceLock<Result<String, String>>>,
}

impl Document {
    pub fn new(document: fn() -> &'static OpenApi) -> Document {
        Document {
            document,
            json: Arc::new(OnceLock::new()),
        }
    }

    fn json(&self) -> Result<&str, Problem> {
        self.json
            .get_or_init(|| serde_json::to_string((self.document)()).map_err(|e| e.to_string()))
            .as_deref()
            .map_err(|e| Problem::unavailable(e))
    }
}

/// `GET /api/v1/openapi.json`: the serving server's document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API.",
            body = Object, content_type = "application/json"),
        Unavailable,
    )
)]
pub async fn openapi_json(Extension(document): Extension<Document>) -> Response {
    match document.json() {
        Ok(json) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            json.to_owned(),
        )
            .into_response(),
        Err(p) => p.into_response(),
    }
}
