//! The hub's route lists: the routes both servers serve
//! (`sentinel_http::api::shared_routes`, `ops_routes`) merged with the
//! hub's own. The router and the OpenAPI document are both made from
//! these lists: a route is served and documented from its handler's
//! `#[utoipa::path]`, so the two cannot drift.
//!
//! Never does: handle a request, or add layers (`super::router_with`).

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::state::ApiState;
use super::{actions, alerts, devices, media, nodes, redact, timeline, users, webhooks};

/// The routes only the hub serves.
fn hub_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(users::users, users::create_user))
        .routes(routes!(users::set_role))
        .routes(routes!(users::disable_user))
        .routes(routes!(users::enable_user))
        .routes(routes!(users::reset_password))
        .routes(routes!(timeline::timeline))
        .routes(routes!(actions::assign))
        .routes(routes!(actions::close))
        .routes(routes!(actions::reopen))
        .routes(routes!(redact::redact))
        .routes(routes!(nodes::nodes))
        .routes(routes!(devices::revoke))
        .routes(routes!(media::download))
        .routes(routes!(alerts::alerts))
        .routes(routes!(webhooks::webhooks, webhooks::create_webhook))
        .routes(routes!(
            webhooks::webhook,
            webhooks::update_webhook,
            webhooks::delete_webhook
        ))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::replay))
}

/// The `/api/v1` routes (behind the rate limit), but the document's own
/// (`super::openapi`).
pub(super) fn api_routes() -> OpenApiRouter<ApiState> {
    sentinel_http::api::shared_routes().merge(hub_routes())
}

/// The operations routes, never rate-limited; in the document too.
pub(super) fn ops_routes() -> OpenApiRouter<ApiState> {
    sentinel_http::api::ops_routes()
}
