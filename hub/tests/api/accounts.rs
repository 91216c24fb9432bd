//! Logins that resist guessing and accounts an operator can run, on the
//! real router and a real PostgreSQL: a guessed account locks with
//! backoff, answers as a wrong password while locked, and stays locked
//! across a restart; the login route's stricter limit, keyed by the client
//! a trusted proxy names (and by the peer otherwise); people change their
//! own password; admins reset passwords and enable accounts; token answers
//! are not cached; expired tokens are purged; the binary's `user` commands.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body as HttpBody;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use sentinel_http::clock::Clock;
use sentinel_http::limit::LoginLimits;
use sentinel_http::people::{FIRST_LOCKOUT_MS, FREE_FAILURES};
use sentinel_http::proxy::TrustedProxies;
use sentinel_http::testing::{self, PASSWORD};
use sentinel_hub::api::{router, router_with, Api, ApiOptions, ApiState, Feed, HubBackend};
use sentinel_hub::own::OwnChain;
use sentinel_hub::people::{grant_role, hash_password};
use sentinel_hub::PgStore;
use sentinel_schema::{DeviceRole, PersonRole};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::e2e::{deployment, issue, now_ms};
use crate::fresh_store;

const WRONG: &str = "not the password at all";
const NEW: &str = "a brand new password";

/// The API over `store` on `clock`, as `sentinel-hub serve` builds it.
fn app(store: &PgStore, own: &Arc<OwnChain>, clock: &Clock, options: &ApiOptions) -> Router {
    let backend = HubBackend::new(store.clone(), Some(own.author())).with_clock(clock.clone());
    let api = Api::new(Arc::new(backend), Feed::new());
    router_with(
        ApiState::with_api(api, store.clone(), Some(own.clone())),
        options,
    )
}

async fn own_chain(store: &PgStore, seed: u8) -> Arc<OwnChain> {
    let ca = deployment("accounts test CA", seed);
    let hub = issue(&ca, DeviceRole::Hub, "hub-1", seed + 1);
    Arc::new(OwnChain::new(store.clone(), hub, now_ms()).await.unwrap())
}

async fn account(store: &PgStore, own: &OwnChain, name: &str, role: PersonRole) {
    let hash = hash_password(PASSWORD).unwrap();
    assert!(store.create_account(name, &hash, now_ms()).await.unwrap());
    grant_role(own, name, role, "test", now_ms()).await.unwrap();
}

/// `POST /api/v1/login` from `client` (as the accept loop gives it), with
/// `headers`.
fn login_from(
    client: &str,
    name: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> Request<HttpBody> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/login")
        .header(header::CONTENT_TYPE, "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req
        .body(HttpBody::from(
            json!({"name": name, "password": password}).to_string(),
        ))
        .unwrap();
    let addr = SocketAddr::new(client.parse().unwrap(), 40_000);
    req.extensions_mut().insert(ConnectInfo(addr));
    req
}

async fn status(app: &Router, req: Request<HttpBody>) -> StatusCode {
    app.clone().oneshot(req).await.unwrap().status()
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    token: &str,
    body: Option<Value>,
) -> testing::Reply {
    testing::call(app, method, uri, Some(token), body).await
}

#[tokio::test]
async fn a_guessed_account_locks_with_backoff_and_stays_locked_after_a_restart() {
    let (db, store) = fresh_store().await;
    let own = own_chain(&store, 81).await;
    account(&store, &own, "ada", PersonRole::Officer).await;
    let clock = Clock::fixed(now_ms());
    let api = app(&store, &own, &clock, &ApiOptions::default());
    let refused = testing::try_login(&api, "ghost", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    // A few typos are free; the next wrong password locks the account.
    for _ in 0..FREE_FAILURES {
        let r = testing::try_login(&api, "ada", WRONG).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.body, refused.body,
            "a wrong password says what an unknown name does"
        );
    }
    // Locked: the right password is refused with the very same answer.
    let r = testing::try_login(&api, "ada", PASSWORD).await;
    assert_eq!(
        (r.status, &r.body),
        (StatusCode::UNAUTHORIZED, &refused.body)
    );

    // A restart (a new store and router on the same database) does not
    // lift it.
    let restarted = db.open_store().await.unwrap();
    let again = app(&restarted, &own, &clock, &ApiOptions::default());
    let r = testing::try_login(&again, "ada", PASSWORD).await;
    assert_eq!(
        (r.status, &r.body),
        (StatusCode::UNAUTHORIZED, &refused.body)
    );
    // Guesses while locked are not counted: the lockout does not grow.
    for _ in 0..3 {
        testing::try_login(&again, "ada", WRONG).await;
    }
    clock.advance_ms(FIRST_LOCKOUT_MS - 1);
    let r = testing::try_login(&again, "ada", PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    clock.advance_ms(1);
    let r = testing::try_login(&again, "ada", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.headers[header::CACHE_CONTROL],
        "no-store",
        "a token is never cached"
    );

    // A success forgets the failures: a few more typos are free again.
    for _ in 0..FREE_FAILURES - 1 {
        testing::try_login(&again, "ada", WRONG).await;
    }
    assert_eq!(
        testing::try_login(&again, "ada", PASSWORD).await.status,
        StatusCode::OK
    );
    // Backoff: locked after five in a row, then one more wrong password
    // right after the lockout doubles it.
    for _ in 0..FREE_FAILURES {
        testing::try_login(&again, "ada", WRONG).await;
    }
    clock.advance_ms(FIRST_LOCKOUT_MS);
    testing::try_login(&again, "ada", WRONG).await;
    clock.advance_ms(FIRST_LOCKOUT_MS);
    assert_eq!(
        testing::try_login(&again, "ada", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED,
        "still locked: the second lockout is twice the first"
    );
    clock.advance_ms(FIRST_LOCKOUT_MS);
    assert_eq!(
        testing::try_login(&again, "ada", PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn logins_are_limited_per_client_and_only_a_trusted_proxy_names_the_client() {
    let (_db, store) = fresh_store().await;
    let own = own_chain(&store, 83).await;
    account(&store, &own, "ada", PersonRole::Officer).await;
    let clock = Clock::fixed(now_ms());
    let limited = |proxies: &[&str]| ApiOptions {
        login_limit: LoginLimits {
            per_min: 1,
            burst: 2,
        },
        trusted_proxies: TrustedProxies::parse(proxies.iter().copied()).unwrap(),
        ..ApiOptions::default()
    };

    // Behind a trusted proxy (10.0.0.1): each forwarded client has its own
    // logins; the proxy's own address is not one client for all.
    let api = app(&store, &own, &clock, &limited(&["10.0.0.0/8"]));
    let via = |client: &'static str| [("x-forwarded-for", client)];
    for _ in 0..2 {
        let req = login_from("10.0.0.1", "ada", PASSWORD, &via("198.51.100.1"));
        assert_eq!(status(&api, req).await, StatusCode::OK);
    }
    let req = login_from("10.0.0.1", "ada", PASSWORD, &via("198.51.100.1"));
    assert_eq!(status(&api, req).await, StatusCode::TOO_MANY_REQUESTS);
    let req = login_from("10.0.0.1", "ada", PASSWORD, &via("198.51.100.2"));
    assert_eq!(status(&api, req).await, StatusCode::OK, "another client");
    // A forwarded address from a peer that is not a trusted proxy is not
    // believed: the peer is the client, however it claims to be another.
    for claim in ["203.0.113.1", "203.0.113.2"] {
        let req = login_from("192.0.2.9", "ada", PASSWORD, &via(claim));
        assert_eq!(status(&api, req).await, StatusCode::OK);
    }
    let req = login_from("192.0.2.9", "ada", PASSWORD, &via("203.0.113.3"));
    assert_eq!(status(&api, req).await, StatusCode::TOO_MANY_REQUESTS);
    // The limit is the login route's: other routes of that client answer.
    let mut events = Request::get("/api/v1/events")
        .body(HttpBody::empty())
        .unwrap();
    events.extensions_mut().insert(ConnectInfo(SocketAddr::new(
        "192.0.2.9".parse().unwrap(),
        1,
    )));
    assert_eq!(status(&api, events).await, StatusCode::UNAUTHORIZED);

    // With no proxy trusted, the headers count for nothing at all.
    let api = app(&store, &own, &clock, &limited(&[]));
    for (i, claim) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        .iter()
        .enumerate()
    {
        let req = login_from("10.0.0.1", "ada", PASSWORD, &via(claim));
        let want = if i < 2 {
            StatusCode::OK
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(status(&api, req).await, want, "{claim}");
    }
}

#[tokio::test]
async fn people_change_their_password_and_admins_reset_and_enable_accounts() {
    let (_db, store) = fresh_store().await;
    let own = own_chain(&store, 85).await;
    account(&store, &own, "boss", PersonRole::Admin).await;
    account(&store, &own, "ada", PersonRole::Officer).await;
    let clock = Clock::fixed(now_ms());
    let api = app(&store, &own, &clock, &ApiOptions::default());
    let boss = testing::login(&api, "boss", PASSWORD).await;
    let (used, other) = (
        testing::login(&api, "ada", PASSWORD).await,
        testing::login(&api, "ada", PASSWORD).await,
    );

    // Her own password: the current one is required, the new one checked.
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let r = call(
        &api,
        "POST",
        "/api/v1/password",
        &used,
        Some(change(WRONG, NEW)),
    )
    .await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("current_password"))
    );
    let r = call(
        &api,
        "POST",
        "/api/v1/password",
        &used,
        Some(change(PASSWORD, "short")),
    )
    .await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("new_password"))
    );
    let r = call(
        &api,
        "POST",
        "/api/v1/password",
        &used,
        Some(change(PASSWORD, NEW)),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    // The token used stays valid; her other tokens are revoked.
    assert_eq!(
        call(&api, "GET", "/api/v1/events", &used, None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        call(&api, "GET", "/api/v1/events", &other, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        testing::try_login(&api, "ada", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        testing::try_login(&api, "ada", NEW).await.status,
        StatusCode::OK
    );
    // Signed out, nobody changes a password.
    let r = testing::call(
        &api,
        "POST",
        "/api/v1/password",
        None,
        Some(change(NEW, PASSWORD)),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // She locks herself out; an admin resets her password, which lifts the
    // lockout and revokes every token she had.
    for _ in 0..FREE_FAILURES {
        testing::try_login(&api, "ada", WRONG).await;
    }
    assert_eq!(
        testing::try_login(&api, "ada", NEW).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = call(
        &api,
        "POST",
        "/api/v1/users/ada/password",
        &used,
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "officers reset nobody's password"
    );
    let r = call(
        &api,
        "POST",
        "/api/v1/users/ada/password",
        &boss,
        Some(json!({"password": "short"})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("password"))
    );
    let r = call(
        &api,
        "POST",
        "/api/v1/users/ghost/password",
        &boss,
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        &api,
        "POST",
        "/api/v1/users/ada/password",
        &boss,
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        call(&api, "GET", "/api/v1/events", &used, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let ada = testing::login(&api, "ada", PASSWORD).await;

    // Disabled, then enabled: she signs in again (old tokens stay revoked).
    let r = call(&api, "POST", "/api/v1/users/ada/disable", &boss, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        testing::try_login(&api, "ada", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = call(&api, "POST", "/api/v1/users/ada/enable", &boss, None).await;
    assert_eq!(
        (r.status, &r.body),
        (StatusCode::OK, &json!({"name": "ada", "disabled": false}))
    );
    assert_eq!(
        call(&api, "GET", "/api/v1/events", &ada, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        testing::try_login(&api, "ada", PASSWORD).await.status,
        StatusCode::OK
    );
    let r = call(&api, "POST", "/api/v1/users/ghost/enable", &boss, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn expired_and_revoked_tokens_are_purged_and_live_ones_kept() {
    let (_db, store) = fresh_store().await;
    let own = own_chain(&store, 87).await;
    account(&store, &own, "ada", PersonRole::Officer).await;
    let now = now_ms();
    let (expired, live, revoked) = (
        sentinel_hub::people::new_token(),
        sentinel_hub::people::new_token(),
        sentinel_hub::people::new_token(),
    );
    store
        .insert_token(&expired.1, "ada", now - 10, now - 1)
        .await
        .unwrap();
    store
        .insert_token(&live.1, "ada", now, now + 60_000)
        .await
        .unwrap();
    store
        .insert_token(&revoked.1, "ada", now, now + 60_000)
        .await
        .unwrap();
    store.revoke_token(&revoked.1).await.unwrap();
    assert_eq!(store.purge_tokens(now).await.unwrap(), 2);
    assert_eq!(store.purge_tokens(now).await.unwrap(), 0);
    assert_eq!(
        store.token_account(&live.1, now).await.unwrap().as_deref(),
        Some("ada")
    );
    let api = router(ApiState::new(store.clone(), Some(own)));
    let r = testing::call(&api, "GET", "/api/v1/events", Some(&live.0), None).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// The binary's `user` commands: `add`, `reset-password` (from the
/// environment or standard input), `disable`, `enable`, `purge-tokens`,
/// each changing what the API then answers; a name no account has is
/// refused with exit code 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_resets_passwords_switches_accounts_and_purges_tokens() {
    use std::io::Write;
    use std::process::{Command, Output, Stdio};

    use sentinel_certs::{Bundle, Password};

    let (db, store) = fresh_store().await;
    let ca = deployment("accounts CLI CA", 89);
    let hub = issue(&ca, DeviceRole::Hub, "hub-1", 90);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("hub.bundle");
    let bundle_password = "correct horse battery staple";
    Bundle::export(&bundle, &hub, &Password::new(bundle_password).unwrap()).unwrap();
    let user = |args: &[&str], env_password: Option<&str>, stdin: &str| -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sentinel-hub"));
        c.arg("user")
            .args(args)
            .env("DATABASE_URL", db.connection_string())
            .env("SENTINEL_BUNDLE", &bundle)
            .env("SENTINEL_BUNDLE_PASSWORD", bundle_password)
            .env_remove("SENTINEL_USER_PASSWORD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(p) = env_password {
            c.env("SENTINEL_USER_PASSWORD", p);
        }
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let api = router(ApiState::new(store.clone(), None));
    let out = user(&["add", "ada", "--role", "officer"], Some(PASSWORD), "");
    assert!(out.status.success(), "{out:?}");
    let token = testing::login(&api, "ada", PASSWORD).await;

    // A new password from standard input: the old one and its tokens go.
    let out = user(&["reset-password", "ada"], None, &format!("{NEW}\n"));
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("new password"));
    assert_eq!(
        testing::try_login(&api, "ada", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = testing::call(&api, "GET", "/api/v1/events", Some(&token), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let token = testing::login(&api, "ada", NEW).await;
    // Too short, or nobody's: refused, exit code 2.
    let out = user(&["reset-password", "ada"], Some("short"), "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = user(&["reset-password", "ghost"], Some(PASSWORD), "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no account"));

    // Disabled, then enabled.
    assert!(user(&["disable", "ada"], None, "").status.success());
    assert_eq!(
        testing::try_login(&api, "ada", NEW).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(user(&["enable", "ada"], None, "").status.success());
    let fresh = testing::login(&api, "ada", NEW).await;
    assert_eq!(user(&["enable", "ghost"], None, "").status.code(), Some(2));

    // The revoked token (from before `disable`) is purged; the live one
    // stays.
    let out = user(&["purge-tokens"], None, "");
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("tokens deleted"), "{said}");
    assert!(!said.starts_with("0 "), "{said}");
    let r = testing::call(&api, "GET", "/api/v1/events", Some(&token), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = testing::call(&api, "GET", "/api/v1/events", Some(&fresh), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let out = user(&["purge-tokens"], None, "");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("0 "));
}
