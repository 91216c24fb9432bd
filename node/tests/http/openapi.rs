//! The OpenAPI document (`GET /api/v1/openapi.json`) against the live
//! router: OpenAPI 3.1; every route the node serves is in it and nothing
//! else (each documented operation is routed, every other method on a
//! documented path is 405, an unknown path is the router's 404); each
//! route's query parameters are exactly those its handler accepts (the
//! handler's own refusal of an unknown parameter lists them); errors are
//! problems, and the token and rate limit are where the router puts them.
//!
//! The checks are the hub's too (`sentinel_http::testing::openapi`); what
//! is the node's here is its route list, the routes that check their
//! query, and what only its document has (media types, edits).

use std::collections::BTreeSet;

use sentinel_http::testing::openapi;
use sentinel_node::http::openapi::{self as node_openapi, EXAMPLE_MEDIA, EXAMPLE_MEDIA_BYTES};
use sentinel_schema::{MediaType, PersonRole};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Api;

/// Every route of the node, as `docs/security.md` 3.3 and the module docs
/// of `sentinel_node::http` list them.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/login"),
    ("POST", "/api/v1/logout"),
    ("GET", "/api/v1/session"),
    ("POST", "/api/v1/password"),
    ("GET", "/api/v1/events"),
    ("POST", "/api/v1/events"),
    ("GET", "/api/v1/events/clusters"),
    ("GET", "/api/v1/analysis/duplicates"),
    ("GET", "/api/v1/analysis/hotspots"),
    ("POST", "/api/v1/analysis/summary"),
    ("GET", "/api/v1/events/{id}"),
    ("PATCH", "/api/v1/events/{id}"),
    ("POST", "/api/v1/events/{id}/notes"),
    ("POST", "/api/v1/events/{id}/assign"),
    ("POST", "/api/v1/events/{id}/accept"),
    ("POST", "/api/v1/events/{id}/start"),
    ("POST", "/api/v1/events/{id}/resolve"),
    ("POST", "/api/v1/events/{id}/close"),
    ("POST", "/api/v1/events/{id}/reopen"),
    ("POST", "/api/v1/events/{id}/media"),
    ("GET", "/api/v1/media/{hash}"),
    ("GET", "/api/v1/outbox"),
    ("GET", "/api/v1/sync"),
    ("POST", "/api/v1/sync"),
    ("GET", "/api/v1/export.geojson"),
    ("GET", "/api/v1/export.csv"),
    ("GET", "/api/v1/export.kml"),
    ("GET", "/api/v1/feed"),
    ("POST", "/api/v1/sensors/entries"),
    ("GET", "/api/v1/sensors/readings"),
    ("GET", "/api/v1/sensors"),
    ("GET", "/api/v1/sensors/alerts"),
];

/// The routes whose handlers check their query: an unknown parameter is
/// refused, and the refusal lists what the route takes.
const QUERY_CHECKED: &[&str] = &[
    "/api/v1/events",
    "/api/v1/events/clusters",
    "/api/v1/analysis/duplicates",
    "/api/v1/analysis/hotspots",
    "/api/v1/events/{id}",
    "/api/v1/media/{hash}",
    "/api/v1/outbox",
    "/api/v1/sync",
    "/api/v1/export.geojson",
    "/api/v1/export.csv",
    "/api/v1/export.kml",
    "/api/v1/feed",
    "/api/v1/sensors/readings",
    "/api/v1/sensors",
    "/api/v1/sensors/alerts",
];

fn document() -> Value {
    openapi::json(node_openapi::document())
}

/// An API with an admin signed in.
async fn admin_api() -> (Api, String) {
    let api = Api::start();
    api.account("root", Some(PersonRole::Admin));
    let token = api.login("root").await;
    (api, token)
}

#[test]
fn the_document_is_openapi_3_1_with_bearer_and_problem() {
    openapi::check_document(&document());
}

#[test]
fn the_document_lists_every_route_of_the_node_and_no_other() {
    openapi::check_routes(&document(), ROUTES);
}

#[test]
fn an_edit_needs_a_member() {
    // Not `#[schema(min_properties)]`: utoipa-gen 5.5 writes it as
    // `maxProperties` (see `node_openapi::document`).
    let doc = document();
    let changes = &doc["components"]["schemas"]["EventChanges"];
    assert_eq!(changes["minProperties"], 1, "{changes}");
    assert!(changes["maxProperties"].is_null(), "{changes}");
    assert_eq!(changes["additionalProperties"], false, "{changes}");
}

#[test]
fn the_media_types_and_the_example_media_are_the_nodes() {
    let doc = document();
    let content = &doc["paths"]["/api/v1/media/{hash}"]["get"]["responses"]["200"]["content"];
    let documented: BTreeSet<&str> = content
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let served: BTreeSet<&str> = MediaType::ALL.iter().map(|m| m.as_mime()).collect();
    assert_eq!(documented, served);
    assert_eq!(
        hex::encode(Sha256::digest(EXAMPLE_MEDIA_BYTES)),
        EXAMPLE_MEDIA
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_no_other_method_is() {
    let (api, token) = admin_api().await;
    openapi::check_routing(&api.app, &document(), Some(&token)).await;
}

#[tokio::test]
async fn each_route_documents_exactly_the_query_parameters_it_accepts() {
    let (api, token) = admin_api().await;
    openapi::check_query_params(&api.app, &document(), QUERY_CHECKED, Some(&token)).await;
}

/// The check fails when the document lacks what it checks: a checked
/// route that takes no parameter, with its operation gone from the
/// document, once compared "no parameters documented" with "takes none"
/// and passed.
#[tokio::test]
#[should_panic(expected = "no such operation in the document")]
async fn a_checked_route_missing_from_the_document_fails_the_check() {
    let (api, token) = admin_api().await;
    let mut doc = document();
    let bare = QUERY_CHECKED
        .iter()
        .find(|p| openapi::query_params(&doc, "GET", p).is_empty())
        .expect("a checked route that takes no parameter");
    doc["paths"][*bare].as_object_mut().unwrap().remove("get");
    openapi::check_query_params(&api.app, &doc, QUERY_CHECKED, Some(&token)).await;
}

#[tokio::test]
async fn the_document_is_served_without_a_token() {
    let api = Api::start();
    openapi::check_served(&api.app, &document()).await;
}
