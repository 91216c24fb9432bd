//! Tokens and roles take effect on the next request: logout, a disabled
//! account, an expired token, a new role grant arriving from a hub, and
//! grants from an author that is not a hub (ignored).

use axum::http::StatusCode;
use sentinel_certs::testing::now_ms;
use sentinel_http::people::new_token;
use sentinel_http::testing;
use sentinel_schema::{DeviceRole, PersonRole};
use serde_json::json;

use super::{Api, PASSWORD};

#[tokio::test]
async fn logout_disable_expiry_and_role_changes_take_effect_on_the_next_request() {
    let api = Api::start();
    api.account("ada", Some(PersonRole::Officer));
    let ada = api.login("ada").await;
    let close_target = api.event_in("boss", "bo", sentinel_schema::Status::Resolved);
    let close = format!("/api/v1/events/{}/close", close_target.to_hex());
    let outbox = "/api/v1/outbox";
    assert_eq!(
        api.call("POST", &close, Some(&ada), None).await.status,
        StatusCode::FORBIDDEN
    );
    // A hub's grant arrives (by sync): ada is an admin on the next request.
    api.grant("ada", PersonRole::Admin);
    assert_eq!(
        api.call("POST", &close, Some(&ada), None).await.status,
        StatusCode::OK
    );
    // Withdrawn: `none` takes every role away.
    api.grant("ada", PersonRole::None);
    assert_eq!(
        api.call("GET", outbox, Some(&ada), None).await.status,
        StatusCode::FORBIDDEN
    );
    api.grant("ada", PersonRole::Officer);
    // Logout revokes that token only; replaying it is refused.
    let second = api.login("ada").await;
    assert_eq!(
        api.call("POST", "/api/v1/logout", Some(&ada), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    for _ in 0..2 {
        let r = api.call("GET", outbox, Some(&ada), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.headers.contains_key("www-authenticate"));
    }
    assert_eq!(
        api.call("POST", "/api/v1/logout", Some(&ada), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.call("GET", outbox, Some(&second), None).await.status,
        StatusCode::OK
    );
    // Disabled (as `sentinel-node user disable` does): every token refused,
    // and no new one.
    assert!(api
        .node
        .lock()
        .unwrap()
        .store_mut()
        .disable_account("ada")
        .unwrap());
    assert_eq!(
        api.call("GET", outbox, Some(&second), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = testing::try_login(&api.app, "ada", PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Expired and malformed tokens.
    api.account("bo", Some(PersonRole::Officer));
    let (token, digest) = new_token();
    api.node
        .lock()
        .unwrap()
        .store()
        .insert_token(&digest, "bo", now_ms() - 10_000, now_ms() - 1)
        .unwrap();
    assert_eq!(
        api.call("GET", outbox, Some(&token), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    for header in ["Basic Ym86eA==", "Bearer", "token"] {
        let req = axum::http::Request::get(outbox)
            .header("authorization", header)
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(
            api.send(req).await.status,
            StatusCode::UNAUTHORIZED,
            "{header}"
        );
    }
}

#[tokio::test]
async fn wrong_passwords_unknown_names_and_roles_without_a_hub_get_nothing() {
    let api = Api::start();
    api.account("ada", None);
    let login = |name: &str, password: &str| {
        api.call(
            "POST",
            "/api/v1/login",
            None,
            Some(json!({"name": name, "password": password})),
        )
    };
    let wrong = login("ada", "not the password at all").await;
    let ghost = login("ghost", PASSWORD).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(ghost.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.body["detail"], ghost.body["detail"],
        "names cannot be probed"
    );
    // Signed in without a role: may do nothing.
    let r = login("ada", PASSWORD).await;
    assert_eq!(r.body["role"], "none");
    let ada = r.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        api.call("GET", "/api/v1/events", Some(&ada), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // A grant signed by a node (which may not write grants; sync would have
    // refused it) is not counted, even when it reached the log.
    let mut rogue = api.signer(DeviceRole::Node, "rogue-node", 950);
    api.grant_by(&mut rogue, "ada", PersonRole::Admin);
    assert_eq!(
        api.call("GET", "/api/v1/events", Some(&ada), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // The hub's grant is.
    api.grant("ada", PersonRole::Public);
    let r = api.call("GET", "/api/v1/events", Some(&ada), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = login("ada", PASSWORD).await;
    assert_eq!(r.body["role"], "public");
}

#[tokio::test]
async fn a_token_expires_when_the_apis_clock_passes_its_lifetime() {
    use axum::body::Body as HttpBody;
    use axum::http::{header, Request};
    use sentinel_http::clock::Clock;
    use sentinel_http::people::TOKEN_LIFETIME_MS;
    use sentinel_node::http::{router, ApiState};
    use tower::ServiceExt;

    let api = Api::start();
    api.account("ada", Some(PersonRole::Officer));
    // The API on a clock the test moves, instead of waiting twelve hours.
    let clock = Clock::fixed(now_ms());
    let app = router(
        ApiState::new(api.node.clone())
            .unwrap()
            .with_clock(clock.clone()),
    );
    let send = |req: Request<HttpBody>| app.clone().oneshot(req);
    let login = Request::post("/api/v1/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(HttpBody::from(
            json!({"name": "ada", "password": PASSWORD}).to_string(),
        ))
        .unwrap();
    let r = send(login).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    let session: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        session["expires_ms"].as_u64(),
        Some(clock.now_ms() + TOKEN_LIFETIME_MS),
        "the lifetime runs on the API's clock"
    );
    let token = session["token"].as_str().unwrap().to_owned();
    let outbox = |token: &str| {
        Request::get("/api/v1/outbox")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(HttpBody::empty())
            .unwrap()
    };
    clock.advance_ms(TOKEN_LIFETIME_MS - 1);
    assert_eq!(send(outbox(&token)).await.unwrap().status(), StatusCode::OK);
    clock.advance_ms(1);
    assert_eq!(
        send(outbox(&token)).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}
