//! The device's own officer (`docs/security.md` 3.2): an account the CLI
//! marked is an officer on this device, on a node that never met a hub
//! (enrolled or not), until a hub's grant names the person — then the
//! grant decides, whatever it says. An account without the mark can still
//! do nothing, and the mark never makes anyone admin.

use axum::http::StatusCode;
use sentinel_certs::testing::now_ms;
use sentinel_http::people::hash_password;
use sentinel_http::testing;
use sentinel_node::http::{router, ApiState};
use sentinel_node::node::Node;
use sentinel_schema::{PersonRole, SigningKey};
use serde_json::{json, Value};
use tempfile::TempDir;

use super::{Api, PASSWORD};

fn report_body() -> Value {
    json!({"title": "Fallen tree", "category": "storm", "severity": 2,
           "location": {"lon": 13.4, "lat": 52.5}})
}

/// Creates `name` on `node`, a device officer when `device_officer`.
fn account(node: &std::sync::Mutex<Node>, name: &str, device_officer: bool) {
    let hash = hash_password(PASSWORD).unwrap();
    assert!(node
        .lock()
        .unwrap()
        .store()
        .create_account_as(name, &hash, now_ms(), device_officer)
        .unwrap());
}

/// The hub grants `person` the `role`, a clock tick after the last grant
/// (grants in one millisecond would be ordered by their ids).
fn regrant(api: &Api, person: &str, role: PersonRole) {
    std::thread::sleep(std::time::Duration::from_millis(3));
    api.grant(person, role);
}

#[tokio::test]
async fn a_device_officer_works_on_a_node_that_was_only_initialised() {
    // `init` only: no enrollment, no CA, no hub ever met.
    let dir = TempDir::new().unwrap();
    drop(Node::init(dir.path(), SigningKey::from_bytes(&[9; 32])).unwrap());
    let node = std::sync::Arc::new(std::sync::Mutex::new(Node::open(dir.path()).unwrap()));
    account(&node, "ada", true);
    account(&node, "bo", false);
    let app = router(ApiState::new(node.clone()).unwrap());

    let ada = testing::login(&app, "ada", PASSWORD).await;
    let me = testing::call(&app, "GET", "/api/v1/session", Some(&ada), None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["role"], "officer");
    let r = testing::call(
        &app,
        "POST",
        "/api/v1/events",
        Some(&ada),
        Some(report_body()),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = testing::call(&app, "GET", "/api/v1/events", Some(&ada), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.body);

    // Without the mark, nothing.
    let bo = testing::login(&app, "bo", PASSWORD).await;
    let r = testing::call(
        &app,
        "POST",
        "/api/v1/events",
        Some(&bo),
        Some(report_body()),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = testing::call(&app, "GET", "/api/v1/events", Some(&bo), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let count: i64 = node
        .lock()
        .unwrap()
        .store()
        .conn()
        .query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1, "only ada's report was written");
}

#[tokio::test]
async fn a_hub_grant_naming_a_device_officer_decides_whatever_it_says() {
    // Enrolled, holding a hub's certificate, never synced: no grant yet.
    let api = Api::start();
    account(&api.node, "ada", true);
    api.account("bo", None);
    let ada = api.login("ada").await;
    let bo = api.login("bo").await;
    let report = |token: String| {
        let api = &api;
        async move {
            api.call("POST", "/api/v1/events", Some(&token), Some(report_body()))
                .await
                .status
        }
    };
    let search = |token: String| {
        let api = &api;
        async move {
            api.call("GET", "/api/v1/events", Some(&token), None)
                .await
                .status
        }
    };
    assert_eq!(report(ada.clone()).await, StatusCode::CREATED);
    assert_eq!(report(bo.clone()).await, StatusCode::FORBIDDEN);
    assert_eq!(search(bo.clone()).await, StatusCode::FORBIDDEN);

    // The mark never reaches admin: assigning is the admin's.
    let event = api.event("ada");
    let r = api
        .call(
            "POST",
            &format!("/api/v1/events/{}/assign", event.to_hex()),
            Some(&ada),
            Some(json!({"assignee": "ada"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

    // A hub's grant of `public` makes her public ...
    regrant(&api, "ada", PersonRole::Public);
    assert_eq!(report(ada.clone()).await, StatusCode::FORBIDDEN);
    let r = api.call("GET", "/api/v1/events", Some(&ada), None).await;
    assert_eq!(r.status, StatusCode::OK);
    testing::assert_redacted(&r.body["items"][0]);
    let me = api.call("GET", "/api/v1/session", Some(&ada), None).await;
    assert_eq!(me.body["role"], "public");

    // ... `none` withdraws every role, the mark's included ...
    regrant(&api, "ada", PersonRole::None);
    assert_eq!(report(ada.clone()).await, StatusCode::FORBIDDEN);
    assert_eq!(search(ada.clone()).await, StatusCode::FORBIDDEN);

    // ... and the hub may make her an officer again, or an admin.
    regrant(&api, "ada", PersonRole::Officer);
    assert_eq!(report(ada.clone()).await, StatusCode::CREATED);
    regrant(&api, "ada", PersonRole::Admin);
    let me = api.call("GET", "/api/v1/session", Some(&ada), None).await;
    assert_eq!(me.body["role"], "admin");

    // A grant for someone else leaves another device officer alone.
    account(&api.node, "cy", true);
    let cy = api.login("cy").await;
    assert_eq!(report(cy).await, StatusCode::CREATED);
}

#[test]
fn the_mark_alone_is_officer_never_admin_and_not_past_a_grant() {
    let api = Api::start();
    account(&api.node, "ada", true);
    account(&api.node, "bo", true);
    let node = api.node.lock().unwrap();
    let roles = sentinel_node::roles::roles(node.store(), None).unwrap();
    assert_eq!(roles.get("ada"), Some(&PersonRole::Officer));
    assert_eq!(roles.get("bo"), Some(&PersonRole::Officer));
    drop(node);
    api.grant("bo", PersonRole::None);
    let ca = sentinel_certs::CaCert::load(&api.dir().join(sentinel_node::node::CA_FILE)).unwrap();
    let node = api.node.lock().unwrap();
    let roles = sentinel_node::roles::roles(node.store(), Some(&ca)).unwrap();
    assert_eq!(roles.get("ada"), Some(&PersonRole::Officer));
    assert_eq!(roles.get("bo"), None, "the hub's `none` wins");
    assert!(roles.values().all(|r| *r != PersonRole::Admin));
    let accounts = node.store().accounts().unwrap();
    assert_eq!(accounts.len(), 2, "{accounts:?}");
    assert!(accounts.iter().all(|a| a.device_officer));
}
