//! Links and "sync now" over real QUIC: `POST /api/v1/sync` on node A
//! syncs with the peer `serve --peer` names (node B, serving), and
//! `GET /api/v1/sync` then shows B — key, name, role, last success, what
//! moved — while B records A as a peer that dialled it; a configured peer
//! that is down shows its error and no success; no peer configured, a
//! round already running and the public role are refused.

use super::*;

use axum::http::StatusCode;
use axum::Router;
use sentinel_http::people::hash_password;
use sentinel_http::testing::{self as http, PASSWORD};
use sentinel_node::dial::Dialer;
use sentinel_node::http::{router, ApiState};
use serde_json::Value;

/// The API of `peer`, dialling `peers` on "sync now" (each abandoned
/// after `deadline`), with a device officer `ada` and an account `pat`.
fn api(peer: &Peer, peers: Vec<String>, deadline: Duration) -> Router {
    let dialer =
        Dialer::new(peer.node.clone(), Arc::new(peer.net()), peers).with_deadline(deadline);
    {
        let node = peer.node.lock().unwrap();
        let hash = hash_password(PASSWORD).unwrap();
        assert!(node
            .store()
            .create_account_as("ada", &hash, now_ms(), true)
            .unwrap());
        assert!(node.store().create_account("pat", &hash, now_ms()).unwrap());
    }
    router(
        ApiState::new(peer.node.clone())
            .unwrap()
            .with_dialer(dialer),
    )
}

/// `GET /api/v1/sync` once no round is running.
async fn settled(app: &Router, token: &str) -> Value {
    let deadline = Instant::now() + HANG;
    loop {
        let r = http::call(app, "GET", "/api/v1/sync", Some(token), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if r.body["running"] == false {
            return r.body;
        }
        assert!(Instant::now() < deadline, "the round never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sync_now_reaches_the_configured_peer_and_both_sides_record_the_link() {
    let _t = timed("sync_now_reaches_the_configured_peer");
    let ca = deployment("links CA", 70);
    let a = Peer::new(&ca, "node-a", 61);
    let b = Peer::new(&ca, "node-b", 62);
    b.report(1, 5);
    a.report(100, 2);
    let server = Server::start(&b);
    let app = api(&a, vec![server.addr.to_string()], HANG);
    let ada = http::login(&app, "ada", PASSWORD).await;

    let before = http::call(&app, "GET", "/api/v1/sync", Some(&ada), None).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    assert_eq!(before.body["links"], serde_json::json!([]));
    assert_eq!(before.body["configured"][0], server.addr.to_string());
    assert_eq!(before.body["running"], false);
    // Two reports, no hub has acknowledged them.
    assert_eq!(before.body["outbox"]["entries"], 2);
    assert!(before.body["outbox"]["oldest_ms"].as_u64().unwrap() > 0);

    let r = http::call(&app, "POST", "/api/v1/sync", Some(&ada), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["started"][0], server.addr.to_string());
    let state = settled(&app, &ada).await;
    let links = state["links"].as_array().unwrap();
    assert_eq!(links.len(), 1, "{state}");
    let link = &links[0];
    assert_eq!(link["peer"], b.enrollment.identity.author.to_hex());
    assert_eq!(link["name"], "node-b");
    assert_eq!(link["role"], "node");
    assert_eq!(link["address"], server.addr.to_string());
    assert_eq!(link["direction"], "dialled");
    assert_eq!(link["last_error"], Value::Null, "{link}");
    assert_eq!(link["last_success_ms"], link["last_attempt_ms"]);
    assert_eq!(link["received"], 5);
    assert_eq!(link["sent"], 2);
    // The entries arrived; a node's acknowledgement is no receipt.
    assert_eq!(a.digest(), b.digest());
    assert_eq!(state["outbox"]["entries"], 2);

    // B recorded A, who dialled it.
    eventually("B records the link to A", || {
        let links = b.node.lock().unwrap().store().links().unwrap();
        links.len() == 1
            && links[0].peer.as_deref() == Some(&a.enrollment.identity.author.to_hex())
            && links[0].direction == sentinel_node::store::links::Direction::Accepted
            && links[0].last_success_ms.is_some()
            && links[0].role.as_deref() == Some("node")
    })
    .await;
}

#[tokio::test]
async fn a_peer_that_is_down_shows_its_error_and_no_success() {
    let _t = timed("a_peer_that_is_down_shows_its_error");
    let ca = deployment("links CA", 70);
    let a = Peer::new(&ca, "node-a", 63);
    // A port nobody answers on.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let down = silent.local_addr().unwrap().to_string();
    let app = api(&a, vec![down.clone()], Duration::from_secs(2));
    let ada = http::login(&app, "ada", PASSWORD).await;
    let pat = http::login(&app, "pat", PASSWORD).await;

    let r = http::call(&app, "POST", "/api/v1/sync", Some(&ada), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    // One round at a time.
    let again = http::call(&app, "POST", "/api/v1/sync", Some(&ada), None).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(again.body["field"], "running");
    let state = settled(&app, &ada).await;
    let link = &state["links"][0];
    assert_eq!(link["address"], down);
    assert_eq!(link["peer"], Value::Null);
    assert_eq!(link["direction"], "dialled");
    assert_eq!(link["last_success_ms"], Value::Null);
    assert!(
        link["last_error"].as_str().unwrap().contains("abandoned"),
        "{link}"
    );
    drop(silent);

    // The public role may neither read the links nor start a round (an
    // account without a role neither).
    let r = http::call(&app, "GET", "/api/v1/sync", Some(&pat), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = http::call(&app, "POST", "/api/v1/sync", Some(&pat), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = http::call(&app, "POST", "/api/v1/sync", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A body or a query parameter is refused, naming it.
    let r = http::call(
        &app,
        "POST",
        "/api/v1/sync",
        Some(&ada),
        Some(serde_json::json!({"peer": "10.0.0.1:7447"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = http::call(&app, "GET", "/api/v1/sync?peer=x", Some(&ada), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}

#[tokio::test]
async fn sync_now_without_a_configured_peer_is_a_conflict_naming_the_peer() {
    let ca = deployment("links CA", 70);
    let a = Peer::new(&ca, "node-a", 64);
    for app in [
        api(&a, Vec::new(), HANG),
        // An API served without `serve`'s network at all.
        router(ApiState::new(a.node.clone()).unwrap()),
    ] {
        let ada = http::login(&app, "ada", PASSWORD).await;
        let r = http::call(&app, "POST", "/api/v1/sync", Some(&ada), None).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert_eq!(r.body["field"], "peer");
        assert!(r.body["detail"].as_str().unwrap().contains("--peer"));
        let r = http::call(&app, "GET", "/api/v1/sync", Some(&ada), None).await;
        assert_eq!(r.body["configured"], serde_json::json!([]));
        assert_eq!(r.body["running"], false);
    }
}

#[tokio::test]
async fn a_round_returns_what_each_peer_came_to_and_a_reached_peer_replaces_its_address_row() {
    let ca = deployment("links CA", 70);
    let a = Peer::new(&ca, "node-a", 65);
    let b = Peer::new(&ca, "node-b", 66);
    b.report(1, 3);
    let server = Server::start(&b);
    let addr = server.addr.to_string();
    // First B's address is down: recorded by address.
    a.node
        .lock()
        .unwrap()
        .store_mut()
        .record_session(&down_record(&addr))
        .unwrap();
    let dialer = Dialer::new(a.node.clone(), Arc::new(a.net()), vec![addr.clone()]);
    let round = dialer.round().await.unwrap();
    assert_eq!(round.len(), 1);
    let summary = round[0].1.as_ref().unwrap();
    assert!(summary.caught_up);
    let links = a.node.lock().unwrap().store().links().unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(
        links[0].peer.as_deref(),
        Some(&*b.enrollment.identity.author.to_hex())
    );
    assert_eq!(links[0].received, 3);
    // B goes away: the next attempt lands on B's link, keeping its success.
    drop(server);
    let dialer = dialer.with_deadline(Duration::from_secs(1));
    let round = dialer.round().await.unwrap();
    assert!(round[0].1.is_err());
    let links = a.node.lock().unwrap().store().links().unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    assert!(links[0].last_success_ms.is_some());
    assert!(links[0].last_error.is_some());
    assert_eq!(links[0].received, 0);
}

fn down_record(addr: &str) -> sentinel_node::store::links::SessionRecord {
    sentinel_node::store::links::SessionRecord {
        peer: None,
        address: addr.to_owned(),
        direction: sentinel_node::store::links::Direction::Dialled,
        at_ms: now_ms(),
        caught_up: false,
        error: Some("down".into()),
        sent: 0,
        received: 0,
    }
}
