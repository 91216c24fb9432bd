//! Who may do what, route by route and role by role, with real accounts,
//! real argon2id passwords and real tokens (no test hook): the matrix of
//! `sentinel_schema::access`, as `docs/security.md` shows it. Also the
//! public's redacted view, logout, disabled accounts, role changes taking
//! effect on the next request, bad login and account input, and the one
//! clock every route reads.

use std::sync::Arc;

use axum::body::Body as HttpBody;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use sentinel_certs::testing::DAY;
use sentinel_certs::Ca;
use sentinel_http::clock::Clock;
use sentinel_http::people::TOKEN_LIFETIME_MS;
use sentinel_http::testing::{self, PASSWORD};
use sentinel_hub::api::{router, Api as SharedApi, ApiState, Feed, HubBackend};
use sentinel_hub::own::OwnChain;
use sentinel_hub::people::{grant_role, hash_password};
use sentinel_hub::PgStore;
use sentinel_schema::access::{matrix_markdown, scope, Action, Scope};
use sentinel_schema::{DeviceRole, PersonRole};
use sentinel_sync::testing::key;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::seed_events;
use crate::e2e::now_ms;
use crate::{fresh_store, NOW};

struct Api {
    app: Router,
    store: PgStore,
    own: Arc<OwnChain>,
}

impl Api {
    async fn new(store: PgStore) -> Api {
        let ca = Ca::create(
            "auth test CA",
            NOW - 1_000,
            NOW + 1_000_000_000_000,
            key(401),
        )
        .unwrap();
        let hub = ca
            .enroll(
                DeviceRole::Hub,
                "hub-1",
                key(402),
                NOW - 1_000,
                NOW + 1_000_000_000_000,
                NOW,
            )
            .unwrap();
        let own = Arc::new(OwnChain::new(store.clone(), hub, NOW).await.unwrap());
        let app = router(ApiState::new(store.clone(), Some(own.clone())));
        Api { app, store, own }
    }

    /// An account with `role` (or none), as the CLI or an admin makes it.
    async fn account(&self, name: &str, role: Option<PersonRole>) {
        let hash = hash_password(PASSWORD).unwrap();
        assert!(self.store.create_account(name, &hash, NOW).await.unwrap());
        if let Some(role) = role {
            grant_role(&self.own, name, role, "test", now_ms())
                .await
                .unwrap();
        }
    }

    /// `method uri` through the router (`sentinel_http::testing::call`:
    /// every error a problem); the status and the body.
    async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let r = testing::call(&self.app, method, uri, token, body).await;
        (r.status, r.body)
    }

    async fn login(&self, name: &str) -> String {
        testing::login(&self.app, name, PASSWORD).await
    }
}

/// Every route with the action it is checked against; `{n}` is replaced
/// by a name unique to the caller (for routes that change accounts).
fn routes(event: &str, resolved: &str) -> Vec<(&'static str, String, Option<Value>, Action)> {
    vec![
        (
            "POST",
            format!("/api/v1/events/{event}/assign"),
            Some(json!({"assignee": "officer-{n}"})),
            Action::Assign,
        ),
        // Only the admin gets through: one redaction.
        (
            "POST",
            format!("/api/v1/events/{event}/redact"),
            Some(json!({"description": true, "reason": "erasure request of {n}"})),
            Action::Redact,
        ),
        // Resolved -> closed -> worked again (only the admin gets through).
        (
            "POST",
            format!("/api/v1/events/{resolved}/close"),
            None,
            Action::CloseReopen,
        ),
        (
            "POST",
            format!("/api/v1/events/{resolved}/reopen"),
            None,
            Action::CloseReopen,
        ),
        ("GET", "/api/v1/timeline".into(), None, Action::ReadTimeline),
        ("GET", "/api/v1/events".into(), None, Action::ReadEvents),
        (
            "GET",
            format!("/api/v1/events/{event}"),
            None,
            Action::ReadEvents,
        ),
        ("GET", "/api/v1/export.geojson".into(), None, Action::Export),
        ("GET", "/api/v1/export.csv".into(), None, Action::Export),
        ("GET", "/api/v1/export.kml".into(), None, Action::Export),
        ("GET", "/api/v1/nodes".into(), None, Action::ReadNodes),
        (
            "GET",
            "/api/v1/sensors/readings".into(),
            None,
            Action::ReadReadings,
        ),
        ("GET", "/api/v1/sensors".into(), None, Action::ReadReadings),
        (
            "GET",
            "/api/v1/sensors/alerts".into(),
            None,
            Action::ReadReadings,
        ),
        ("GET", "/api/v1/alerts".into(), None, Action::ReadNodes),
        ("GET", "/api/v1/users".into(), None, Action::ManageUsers),
        (
            "POST",
            "/api/v1/users".into(),
            Some(json!({"name": "new-{n}", "password": PASSWORD, "role": "officer"})),
            Action::ManageUsers,
        ),
        (
            "POST",
            "/api/v1/users/target-{n}/role".into(),
            Some(json!({"role": "public"})),
            Action::ManageUsers,
        ),
        (
            "POST",
            "/api/v1/users/target-{n}/disable".into(),
            None,
            Action::ManageUsers,
        ),
        (
            "POST",
            "/api/v1/users/target-{n}/enable".into(),
            None,
            Action::ManageUsers,
        ),
        (
            "POST",
            "/api/v1/users/target-{n}/password".into(),
            Some(json!({"password": "another long password"})),
            Action::ManageUsers,
        ),
        // A key no device has; only the admin's call writes a revocation.
        (
            "POST",
            format!("/api/v1/devices/{}/revoke", "ab".repeat(32)),
            Some(json!({"reason": "lost by {n}"})),
            Action::RevokeDevice,
        ),
        (
            "GET",
            "/api/v1/webhooks".into(),
            None,
            Action::ManageWebhooks,
        ),
        (
            "POST",
            "/api/v1/webhooks".into(),
            Some(json!({"name": "hook-{n}", "url": "https://hooks.example.org/{n}"})),
            Action::ManageWebhooks,
        ),
    ]
}

#[tokio::test]
async fn every_route_answers_each_role_as_the_matrix_says() {
    let (_db, store) = fresh_store().await;
    let events = seed_events(&store).await;
    let api = Api::new(store).await;
    let callers = [
        ("boss", Some(PersonRole::Admin)),
        ("ada", Some(PersonRole::Officer)),
        ("pat", Some(PersonRole::Public)),
        ("nobody", None),
    ];
    for (name, role) in callers {
        api.account(name, role).await;
        api.account(&format!("target-{name}"), Some(PersonRole::Officer))
            .await;
    }
    let event = hex::encode(events[1].0);
    let resolved = hex::encode(events[3].0);
    let mut checked = 0;
    for (name, role) in callers {
        let token = api.login(name).await;
        let role = role.unwrap_or(PersonRole::None);
        for (method, uri, body, action) in routes(&event, &resolved) {
            let uri = uri.replace("{n}", name);
            let body =
                body.map(|b| serde_json::from_str(&b.to_string().replace("{n}", name)).unwrap());
            // Signed out: 401 on every route.
            let (status, _) = api.call(method, &uri, None, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} signed out"
            );
            let (status, answer) = api.call(method, &uri, Some(&token), body).await;
            let expected = match scope(role, action) {
                Scope::Denied => StatusCode::FORBIDDEN,
                _ if method == "POST"
                    && (uri == "/api/v1/users"
                        || uri == "/api/v1/webhooks"
                        || uri.ends_with("/revoke")) =>
                {
                    StatusCode::CREATED
                }
                _ if uri.ends_with("/password") => StatusCode::NO_CONTENT,
                _ => StatusCode::OK,
            };
            assert_eq!(
                status, expected,
                "{name} ({role:?}) {method} {uri}: {answer}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 4 * routes(&event, &resolved).len());
}

#[tokio::test]
async fn the_public_sees_events_without_people_notes_or_exact_places() {
    let (_db, store) = fresh_store().await;
    let events = seed_events(&store).await;
    let api = Api::new(store).await;
    api.account("pat", Some(PersonRole::Public)).await;
    api.account("ada", Some(PersonRole::Officer)).await;
    let (pat, ada) = (api.login("pat").await, api.login("ada").await);
    let uri = format!("/api/v1/events/{}", hex::encode(events[1].0));
    let (_, full) = api.call("GET", &uri, Some(&ada), None).await;
    let (_, redacted) = api.call("GET", &uri, Some(&pat), None).await;
    assert_eq!(full["assignee"], "officer-1");
    assert!(full["history"].is_array());
    testing::assert_redacted(&redacted);
    assert_eq!(redacted["title"], full["title"]);
    assert_eq!(redacted["location"], json!({"lon": 13.41, "lat": 52.53}));
    for hidden in ["q=flood", "near=13.4,52.5&radius=100"] {
        let (status, p) = api
            .call("GET", &format!("/api/v1/events?{hidden}"), Some(&pat), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{hidden}: {p}");
        let (status, _) = api
            .call("GET", &format!("/api/v1/events?{hidden}"), Some(&ada), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{hidden}");
    }
    // The public's box is widened to whole cells of the grid its
    // locations are snapped to: a box inside the cell of the warehouse
    // (13.41, 52.53), but not around its exact place, finds it for the
    // public only; the hub's store answers the widened box.
    let cell = "/api/v1/events?bbox=13.412,52.532,13.414,52.534";
    let (status, found) = api.call("GET", cell, Some(&pat), None).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["items"][0]["id"], hex::encode(events[1].0), "{found}");
    let (_, exact) = api.call("GET", cell, Some(&ada), None).await;
    assert_eq!(exact["items"], json!([]), "{exact}");
    // Every seeded event is listed and checked: an empty list (or export)
    // would make the checks below hold of nothing.
    let (_, list) = api.call("GET", "/api/v1/events", Some(&pat), None).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), events.len(), "{list}");
    for e in items {
        assert!(
            e.get("assignee").is_none() && e.get("n_notes").is_none(),
            "{e}"
        );
    }
    // What an officer sees of the same list does have them, so their
    // absence above is the redaction, not a list without the fields.
    let (_, full_list) = api.call("GET", "/api/v1/events", Some(&ada), None).await;
    assert!(
        full_list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.get("assignee").is_some() && e.get("n_notes").is_some()),
        "{full_list}"
    );
    let (status, geo) = api
        .call("GET", "/api/v1/export.geojson", Some(&pat), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let features = geo["features"].as_array().unwrap();
    assert_eq!(features.len(), events.len(), "{geo}");
    for f in features {
        assert!(f["properties"].get("assignee").is_none(), "{f}");
        let coordinates = f["geometry"]["coordinates"].as_array().unwrap();
        assert_eq!(coordinates.len(), 2, "{f}");
        for c in coordinates {
            let x = c.as_f64().unwrap() * 100.0;
            assert!((x - x.round()).abs() < 1e-6, "coarsened: {c}");
        }
    }
}

#[tokio::test]
async fn logout_disable_and_role_changes_take_effect_on_the_next_request() {
    let (_db, store) = fresh_store().await;
    let api = Api::new(store).await;
    api.account("boss", Some(PersonRole::Admin)).await;
    api.account("ada", Some(PersonRole::Officer)).await;
    let boss = api.login("boss").await;
    let ada = api.login("ada").await;
    let timeline = "/api/v1/timeline";
    assert_eq!(
        api.call("GET", timeline, Some(&ada), None).await.0,
        StatusCode::FORBIDDEN
    );
    // Promoted: the next request may read the timeline.
    let (status, _) = api
        .call(
            "POST",
            "/api/v1/users/ada/role",
            Some(&boss),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        api.call("GET", timeline, Some(&ada), None).await.0,
        StatusCode::OK
    );
    // The grant is an entry the hub signed, with the admin as actor.
    let (_, page) = api
        .call("GET", "/api/v1/timeline?kind=role_grant", Some(&boss), None)
        .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.last().unwrap()["actor"], "boss", "{page}");
    // Logout revokes that token only.
    let second = api.login("ada").await;
    assert_eq!(
        api.call("POST", "/api/v1/logout", Some(&ada), None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.call("GET", timeline, Some(&ada), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.call("GET", timeline, Some(&second), None).await.0,
        StatusCode::OK
    );
    // Disabled: every token refused, and no new one.
    let (status, _) = api
        .call("POST", "/api/v1/users/ada/disable", Some(&boss), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        api.call("GET", timeline, Some(&second), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let r = testing::try_login(&api.app, "ada", PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Garbage and expired tokens.
    for bad in ["0".repeat(64), "not-a-token".into()] {
        assert_eq!(
            api.call("GET", timeline, Some(&bad), None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (token, digest) = sentinel_hub::people::new_token();
    api.store
        .insert_token(&digest, "boss", NOW - 10_000, NOW - 1)
        .await
        .unwrap();
    assert_eq!(
        api.call("GET", timeline, Some(&token), None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn bad_login_and_account_input_is_refused_naming_the_field() {
    let (_db, store) = fresh_store().await;
    let api = Api::new(store).await;
    api.account("boss", Some(PersonRole::Admin)).await;
    let boss = api.login("boss").await;
    let login = |body: Value| api.call("POST", "/api/v1/login", None, Some(body));
    let (status, p) = login(json!({"name": "boss", "password": "wrong password!"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{p}");
    let (status, p) = login(json!({"name": "ghost", "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{p}");
    let (status, p) = login(json!({"name": "boss", "password": PASSWORD, "admin": true})).await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("admin"))
    );
    let (status, p) = login(json!({"name": "boss"})).await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("password"))
    );
    let (status, p) = login(json!({"name": 7, "password": PASSWORD})).await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("name"))
    );
    let (status, _) = login(json!(["boss"])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Wrong media type, oversized body.
    let req = Request::post("/api/v1/login")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(HttpBody::from("name=boss"))
        .unwrap();
    let r = api.app.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = json!({"name": "x".repeat(40_000), "password": PASSWORD});
    let (status, _) = login(big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let create = |body: Value| api.call("POST", "/api/v1/users", Some(&boss), Some(body));
    let users_before = api.store.accounts().await.unwrap();
    for (body, field) in [
        (
            json!({"name": "ann", "password": "short", "role": "officer"}),
            "password",
        ),
        (
            json!({"name": "ann", "password": PASSWORD, "role": "king"}),
            "role",
        ),
        (
            json!({"name": "a b", "password": PASSWORD, "role": "officer"}),
            "name",
        ),
        (
            json!({"name": "ann", "password": PASSWORD, "role": "officer", "x": 1}),
            "x",
        ),
    ] {
        let (status, p) = create(body).await;
        assert_eq!(
            (status, p["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{p}"
        );
    }
    let (status, p) =
        create(json!({"name": "boss", "password": PASSWORD, "role": "officer"})).await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::CONFLICT, Some("name"))
    );
    assert_eq!(
        api.store.accounts().await.unwrap(),
        users_before,
        "nothing partial stored"
    );
    let (status, _) = api
        .call(
            "POST",
            "/api/v1/users/ghost/role",
            Some(&boss),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The API reads one clock, the backend's: the shared routes for token
/// expiry, the hub's own for the entries and accounts they write. A test
/// moves it instead of waiting a day.
#[tokio::test]
async fn tokens_expire_and_entries_are_stamped_by_the_apis_one_clock() {
    let (_db, store) = fresh_store().await;
    let mut api = Api::new(store.clone()).await;
    api.account("boss", Some(PersonRole::Admin)).await;
    // Ahead of the real clock, so the own chain's HLC takes it as is.
    let start = now_ms() + 10 * DAY;
    let clock = Clock::fixed(start);
    let backend = HubBackend::new(store.clone(), Some(api.own.author())).with_clock(clock.clone());
    let state = ApiState::with_api(
        SharedApi::new(Arc::new(backend), Feed::new()),
        store,
        Some(api.own.clone()),
    );
    api.app = router(state);
    let boss = api.login("boss").await;

    let (status, made) = api
        .call(
            "POST",
            "/api/v1/users",
            Some(&boss),
            Some(json!({"name": "ann", "password": PASSWORD, "role": "officer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let (_, users) = api.call("GET", "/api/v1/users", Some(&boss), None).await;
    let ann = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "ann")
        .unwrap();
    assert_eq!(ann["created_ms"], start, "{users}");
    let (_, grants) = api
        .call("GET", "/api/v1/timeline?kind=role_grant", Some(&boss), None)
        .await;
    let last = grants["items"].as_array().unwrap().last().unwrap();
    assert_eq!(last["hlc"]["wall_ms"], start, "{grants}");

    // The token lives its lifetime by that clock, and not a ms longer.
    clock.advance_ms(TOKEN_LIFETIME_MS - 1);
    let users = "/api/v1/users";
    assert_eq!(
        api.call("GET", users, Some(&boss), None).await.0,
        StatusCode::OK
    );
    clock.advance_ms(1);
    assert_eq!(
        api.call("GET", users, Some(&boss), None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn docs_show_the_matrix_the_code_enforces() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/security.md"))
        .unwrap();
    assert!(
        docs.contains(&matrix_markdown()),
        "docs/security.md must contain the matrix exactly as sentinel_schema::access::matrix_markdown() renders it:\n{}",
        matrix_markdown()
    );
}
