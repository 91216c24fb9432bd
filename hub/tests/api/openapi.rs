//! The OpenAPI document (`GET /api/v1/openapi.json`) against the live
//! router: OpenAPI 3.1; every route the hub serves is in it and nothing
//! else (each documented operation is routed, every other method on a
//! documented path is 405, the routes `docs/security.md` names are all
//! there); each route's query parameters are exactly those its handler
//! accepts (the handler's own refusal of an unknown parameter lists them).
//!
//! The checks are the node's too (`sentinel_http::testing::openapi`); what
//! is the hub's here is its route list and the routes that check their
//! query.

use sentinel_http::testing::openapi;
use sentinel_hub::api::openapi as hub_openapi;
use sentinel_hub::api::{bare_router, router, ApiState};
use sentinel_hub::PgStore;
use sentinel_schema::PersonRole;
use serde_json::Value;

use crate::fresh_store;

/// Every route of the hub, as `docs/security.md` 3.3 and the module docs
/// of `sentinel_hub::api` list them.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/login"),
    ("POST", "/api/v1/logout"),
    ("GET", "/api/v1/session"),
    ("POST", "/api/v1/password"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("POST", "/api/v1/users/{name}/role"),
    ("POST", "/api/v1/users/{name}/disable"),
    ("POST", "/api/v1/users/{name}/enable"),
    ("POST", "/api/v1/users/{name}/password"),
    ("GET", "/api/v1/timeline"),
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/events/clusters"),
    ("GET", "/api/v1/analysis/duplicates"),
    ("GET", "/api/v1/analysis/hotspots"),
    ("POST", "/api/v1/analysis/summary"),
    ("GET", "/api/v1/events/{id}"),
    ("POST", "/api/v1/events/{id}/assign"),
    ("POST", "/api/v1/events/{id}/close"),
    ("POST", "/api/v1/events/{id}/reopen"),
    ("POST", "/api/v1/events/{id}/redact"),
    ("GET", "/api/v1/export.geojson"),
    ("GET", "/api/v1/export.csv"),
    ("GET", "/api/v1/export.kml"),
    ("GET", "/api/v1/nodes"),
    ("GET", "/api/v1/feed"),
    ("POST", "/api/v1/devices/{key}/revoke"),
    ("POST", "/api/v1/sensors/entries"),
    ("GET", "/api/v1/sensors/readings"),
    ("GET", "/api/v1/sensors"),
    ("GET", "/api/v1/sensors/alerts"),
    ("GET", "/api/v1/media/{hash}"),
    ("GET", "/api/v1/alerts"),
    ("GET", "/api/v1/webhooks"),
    ("POST", "/api/v1/webhooks"),
    ("GET", "/api/v1/webhooks/{id}"),
    ("PATCH", "/api/v1/webhooks/{id}"),
    ("DELETE", "/api/v1/webhooks/{id}"),
    ("GET", "/api/v1/webhooks/{id}/deliveries"),
    ("POST", "/api/v1/webhook-deliveries/{id}/replay"),
];

/// The routes whose handlers check their query: an unknown parameter is
/// refused, and the refusal lists what the route takes.
const QUERY_CHECKED: &[&str] = &[
    "/api/v1/timeline",
    "/api/v1/events",
    "/api/v1/events/clusters",
    "/api/v1/analysis/duplicates",
    "/api/v1/analysis/hotspots",
    "/api/v1/events/{id}",
    "/api/v1/export.geojson",
    "/api/v1/export.csv",
    "/api/v1/export.kml",
    "/api/v1/nodes",
    "/api/v1/sensors/readings",
    "/api/v1/sensors",
    "/api/v1/sensors/alerts",
    "/api/v1/media/{hash}",
    "/api/v1/alerts",
    "/api/v1/webhooks/{id}/deliveries",
];

fn document() -> Value {
    openapi::json(hub_openapi::document())
}

/// The API as an admin sees it (the test hook: no token needed).
fn admin(store: PgStore) -> ApiState {
    ApiState::new(store, None).map_api(|api| api.trusting("admin", PersonRole::Admin))
}

#[test]
fn the_document_is_openapi_3_1_with_bearer_and_problem() {
    openapi::check_document(&document());
}

#[test]
fn the_document_lists_every_route_of_the_hub_and_no_other() {
    openapi::check_routes(&document(), ROUTES);
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_no_other_method_is() {
    let (_db, store) = fresh_store().await;
    // The routes without the layers: the same table, and no requests in
    // the metrics that `ops.rs` reads.
    let app = bare_router(admin(store));
    openapi::check_routing(&app, &document(), None).await;
}

#[tokio::test]
async fn each_route_documents_exactly_the_query_parameters_it_accepts() {
    let (_db, store) = fresh_store().await;
    let app = bare_router(admin(store));
    openapi::check_query_params(&app, &document(), QUERY_CHECKED, None).await;
}

#[tokio::test]
async fn the_document_is_served_without_a_token() {
    let (_db, store) = fresh_store().await;
    // No trusted caller: a route that wants a token would answer 401.
    let app = router(ApiState::new(store, None));
    openapi::check_served(&app, &document()).await;
}
