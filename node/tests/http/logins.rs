//! Logins that resist guessing, on the node: a guessed account locks,
//! answers as a wrong password while locked, and stays locked when the
//! node is opened again (the lockout is in the store); one's own password
//! changes with the current one; token answers are not cached.

use std::sync::{Arc, Mutex};

use axum::http::{header, StatusCode};
use sentinel_http::clock::Clock;
use sentinel_http::people::{FIRST_LOCKOUT_MS, FREE_FAILURES};
use sentinel_http::testing;
use sentinel_node::http::{router, ApiState};
use sentinel_node::node::Node;
use sentinel_schema::PersonRole;
use serde_json::json;

use super::{Api, PASSWORD};

const WRONG: &str = "not the password at all";

#[tokio::test]
async fn a_guessed_account_locks_and_stays_locked_when_the_node_is_opened_again() {
    let api = Api::start();
    api.account("ada", Some(PersonRole::Officer));
    let clock = Clock::fixed(sentinel_certs::testing::now_ms());
    let app = router(
        ApiState::new(api.node.clone())
            .unwrap()
            .with_clock(clock.clone()),
    );
    let refused = testing::try_login(&app, "ghost", PASSWORD).await;
    for _ in 0..FREE_FAILURES {
        let r = testing::try_login(&app, "ada", WRONG).await;
        assert_eq!(
            (r.status, &r.body),
            (StatusCode::UNAUTHORIZED, &refused.body)
        );
    }
    let r = testing::try_login(&app, "ada", PASSWORD).await;
    assert_eq!(
        (r.status, &r.body),
        (StatusCode::UNAUTHORIZED, &refused.body),
        "locked: the right password gets the wrong password's answer"
    );
    // The node opened again (another process would see the same store).
    let reopened = Arc::new(Mutex::new(Node::open(api.dir()).unwrap()));
    let again = router(ApiState::new(reopened).unwrap().with_clock(clock.clone()));
    let r = testing::try_login(&again, "ada", PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    clock.advance_ms(FIRST_LOCKOUT_MS);
    let r = testing::try_login(&again, "ada", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn an_officer_changes_her_password_with_the_current_one() {
    let api = Api::start();
    api.account("ada", Some(PersonRole::Officer));
    let (used, other) = (api.login("ada").await, api.login("ada").await);
    let change = |current: &str| json!({"current_password": current, "new_password": "a brand new password"});
    let r = api
        .call("POST", "/api/v1/password", Some(&used), Some(change(WRONG)))
        .await;
    assert_eq!(r.body["field"], "current_password", "{}", r.body);
    let r = api
        .call(
            "POST",
            "/api/v1/password",
            Some(&used),
            Some(change(PASSWORD)),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    for (token, want) in [(&used, StatusCode::OK), (&other, StatusCode::UNAUTHORIZED)] {
        let r = api.call("GET", "/api/v1/outbox", Some(token), None).await;
        assert_eq!(r.status, want);
    }
    let r = testing::try_login(&api.app, "ada", "a brand new password").await;
    assert_eq!(r.status, StatusCode::OK);
}
