//! The node API's route lists and its OpenAPI 3.1 document, served at
//! `GET /api/v1/openapi.json`.
//!
//! The router and the document are made from the same lists
//! ([`api_routes`], [`ops_routes`], with `utoipa-axum`): the routes both
//! servers serve (`sentinel_http::api::shared_routes`, `ops_routes`)
//! merged with the node's own. Each handler's `#[utoipa::path]` says its
//! method, path, parameters, body and answers, so the router and the
//! document cannot drift; `node/tests` checks the document against the
//! live router.
//!
//! Never does: decide what a route accepts (the handlers do), or describe
//! a JSON shape (the shared shapes are `sentinel_http::api::json`'s, the
//! node's own [`super::schemas`]').

use std::sync::OnceLock;

use axum::extract::DefaultBodyLimit;
use sentinel_http::api;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{OpenApi, RefOr};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::state::ApiState;
use super::{events, media, outbox, sync, workflow};

pub use super::schemas::{
    EXAMPLE_ASSIGNED, EXAMPLE_CLOSED, EXAMPLE_EVENT, EXAMPLE_IN_PROGRESS, EXAMPLE_MEDIA,
    EXAMPLE_MEDIA_BYTES, EXAMPLE_RESOLVED,
};

/// The `/api/v1` routes (behind the rate limit): the shared ones, then
/// the node's own.
pub fn api_routes() -> OpenApiRouter<ApiState> {
    api::shared_routes::<ApiState>()
        .routes(routes!(events::report))
        .routes(routes!(events::edit))
        .routes(routes!(events::note))
        .routes(routes!(workflow::assign))
        .routes(routes!(workflow::accept))
        .routes(routes!(workflow::start))
        .routes(routes!(workflow::resolve))
        .routes(routes!(workflow::close))
        .routes(routes!(workflow::reopen))
        .routes(routes!(media::upload).layer(DefaultBodyLimit::max(media::MAX_UPLOAD_BYTES)))
        .routes(routes!(media::download))
        .routes(routes!(outbox::outbox))
        .routes(routes!(sync::links, sync::sync_now))
}

/// The operations routes, never rate-limited; in the document too.
pub fn ops_routes() -> OpenApiRouter<ApiState> {
    api::ops_routes::<ApiState>()
}

/// The document, built once per process from the route lists.
pub fn document() -> &'static OpenApi {
    static DOCUMENT: OnceLock<OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = api::openapi_document(
            "Sentinel node API",
            env!("CARGO_PKG_VERSION"),
            "A field node's API, for the officers' browsers and apps on the device: search, \
             report and work events, attach media, read the outbox, the links to peers and the \
             live feed, and sync now. Who \
             may call what: docs/security.md 3.3.",
            api_routes(),
            ops_routes(),
        );
        needs_a_member(&mut doc, "EventChanges");
        doc
    })
}

/// Sets `minProperties: 1` on the object schema `name`. Not with
/// `#[schema(min_properties = 1)]`: utoipa-gen 5.5 writes that as
/// `maxProperties` (the API fuzzer caught it).
fn needs_a_member(doc: &mut OpenApi, name: &str) {
    let schema = doc
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut(name));
    if let Some(RefOr::T(Schema::Object(object))) = schema {
        object.min_properties = Some(1);
    }
}
