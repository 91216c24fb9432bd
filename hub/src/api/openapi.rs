//! The API's OpenAPI 3.1 document, served at `GET /api/v1/openapi.json`.
//!
//! Built from the same route lists as the router (`super::routes`, with
//! `utoipa-axum`): each handler's `#[utoipa::path]` says its method, path,
//! query parameters and answers, and the JSON types the handlers write are
//! their own schemas (the shared routes' in `sentinel_http::api::json`,
//! the hub's next to their handlers), so the document cannot describe a
//! shape the API does not write. The API fuzzer checks every answer
//! against it (see `docs/operations.md`).
//!
//! Never does: decide what a route accepts. The handlers check their own
//! input (`sentinel_http::params`, `sentinel_http::body`); the document
//! describes it, and `hub/tests/api/openapi.rs` checks that it does.

use std::sync::OnceLock;

use sentinel_http::api::openapi_document;
use utoipa::openapi::OpenApi;

use super::routes::{api_routes, ops_routes};

/// The account the document gives as an example (`api_fixture` makes it).
pub use super::users::EXAMPLE_ACCOUNT;
/// The event id the document gives as an example (`api_fixture` seeds it).
pub use sentinel_http::openapi::EXAMPLE_EVENT;

/// The document, built once per process from the route lists.
pub fn document() -> &'static OpenApi {
    static DOCUMENT: OnceLock<OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        openapi_document(
            "Sentinel hub API",
            env!("CARGO_PKG_VERSION"),
            "The regional hub's admin API: the log's timeline, the events view, admin \
             actions on events, accounts, node status, sensor readings and the live feed. \
             Who may call what: docs/security.md 3.3.",
            api_routes(),
            ops_routes(),
        )
    })
}
