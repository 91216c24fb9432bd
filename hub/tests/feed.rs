//! The live feed over real sockets: 1,000 subscribers hold an SSE stream
//! each; one projected change reaches every one of them, redacted for the
//! public, and a signed-out client is refused. A stream ends when its
//! token or role does: logout, a disabled account, expiry, a demotion.

use std::time::Duration;

use sentinel_http::testing;
use sentinel_http::testing::sse::{next_event, next_event_on_each, subscribe};
use sentinel_hub::api::{live, router, ApiState};
use sentinel_hub::people::{grant_role, hash_password};
use sentinel_schema::PersonRole;
use tokio::sync::broadcast;

use crate::api::seed_events;
use crate::e2e::{deployment, Hub};

const SUBSCRIBERS: usize = 1_000;

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_subscribers_all_receive_a_change() {
    let ca = deployment("Sentinel feed test CA", 6);
    let hub = Hub::start(&ca, 10).await;
    // Subscribers without a token act as an admin (the test hook); one
    // public account signs in for real.
    let state = ApiState::new(hub.store.clone(), Some(hub.own.clone()))
        .map_api(|api| api.trusting("chief", PersonRole::Admin));
    let feed = state.api.feed().clone();
    // The feed follows a changes channel, as it follows the projector's.
    let (changes, changed) = broadcast::channel(16);
    tokio::spawn(live::follow(state.api.clone(), changed));
    hub.store
        .create_account("pat", &hash_password("a long enough password").unwrap(), 0)
        .await
        .unwrap();
    grant_role(
        &hub.own,
        "pat",
        PersonRole::Public,
        "test",
        crate::e2e::now_ms(),
    )
    .await
    .unwrap();
    let (token, digest) = sentinel_hub::people::new_token();
    hub.store
        .insert_token(&digest, "pat", 0, u64::MAX / 2)
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router(state)).await });

    let mut streams = Vec::with_capacity(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        let (status, r) = subscribe(addr, None).await;
        assert!(status.contains(" 200 "), "{status}");
        streams.push(r);
    }
    let (status, mut public) = subscribe(addr, Some(&token)).await;
    assert!(status.contains(" 200 "), "{status}");
    let (status, _) = subscribe(addr, Some(&"0".repeat(64))).await;
    assert!(status.contains(" 401 "), "{status}");
    assert_eq!(feed.subscribers(), SUBSCRIBERS + 1);

    // One change, projected and announced as the server's projector does.
    let events = seed_events(&hub.store).await;
    assert_eq!(changes.send(events[1]).unwrap(), 1, "the feed follows");
    let got = next_event_on_each(&mut streams, Duration::from_secs(30)).await;
    assert_eq!(got.len(), SUBSCRIBERS);
    for v in &got {
        assert_eq!(v["id"], hex::encode(events[1].0));
        assert_eq!(v["assignee"], "officer-1");
    }
    let public_view = tokio::time::timeout(Duration::from_secs(30), next_event(&mut public))
        .await
        .unwrap();
    testing::assert_redacted(&public_view);
    assert_eq!(public_view["id"], hex::encode(events[1].0));
    server.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_a_node_syncs_reaches_a_subscriber_through_the_projector() {
    let ca = deployment("Sentinel feed test CA", 7);
    let mut changes = None;
    let hub = Hub::start_with(&ca, 10, |net, _| {
        changes = Some(net.changes());
        net
    })
    .await;
    let state = ApiState::new(hub.store.clone(), Some(hub.own.clone()))
        .map_api(|api| api.trusting("chief", PersonRole::Admin));
    // Wired as `sentinel-hub serve` wires it.
    tokio::spawn(live::follow(state.api.clone(), changes.unwrap()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router(state)).await });
    let (status, mut stream) = subscribe(addr, None).await;
    assert!(status.contains(" 200 "), "{status}");

    let n1 = crate::e2e::Peer::new(&ca, "node-1", 71);
    n1.report(42, 1);
    crate::e2e::sync(&n1, &hub).await;
    let v = tokio::time::timeout(Duration::from_secs(30), next_event(&mut stream))
        .await
        .expect("the synced event reaches the feed");
    assert_eq!(v["id"], hex::encode(42u128.to_be_bytes()));
    assert_eq!(v["title"], "event 42");
    server.abort();
}

/// How often the test's feed checks its subscribers again: short, so a
/// stream that should end does so quickly; the wait for it is bounded.
const RECHECK: Duration = Duration::from_millis(50);
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_ends_when_its_token_or_role_does() {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use axum::http::StatusCode;
    use sentinel_http::clock::Clock;
    use sentinel_http::people::TOKEN_LIFETIME_MS;
    use sentinel_http::testing::sse::until_end;
    use sentinel_http::testing::PASSWORD;
    use sentinel_hub::api::{Api, Feed, HubBackend};
    use sentinel_hub::own::OwnChain;
    use sentinel_schema::DeviceRole;
    use serde_json::json;

    let (_db, store) = crate::fresh_store().await;
    let ca = deployment("Sentinel feed recheck CA", 8);
    let enrollment = crate::e2e::issue(&ca, DeviceRole::Hub, "hub-1", 91);
    let now = crate::e2e::now_ms();
    let own = Arc::new(OwnChain::new(store.clone(), enrollment, now).await.unwrap());
    // The API on a clock the test moves, its feed re-checking often.
    let clock = Clock::fixed(now);
    let backend = HubBackend::new(store.clone(), Some(own.author())).with_clock(clock.clone());
    let api = Api::new(Arc::new(backend), Feed::new().rechecking_every(RECHECK));
    let feed = api.feed().clone();
    let (changes, changed) = broadcast::channel(16);
    tokio::spawn(live::follow(api.clone(), changed));
    let app = router(ApiState::with_api(api, store.clone(), Some(own.clone())));
    for name in ["boss", "out", "off", "late", "demoted", "steady"] {
        let role = if name == "boss" {
            PersonRole::Admin
        } else {
            PersonRole::Officer
        };
        store
            .create_account(name, &hash_password(PASSWORD).unwrap(), now)
            .await
            .unwrap();
        grant_role(&own, name, role, "test", now).await.unwrap();
    }
    let boss = testing::login(&app, "boss", PASSWORD).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = app.clone();
    let server = tokio::spawn(async move { axum::serve(listener, served).await });

    let mut tokens = BTreeMap::new();
    let mut streams = BTreeMap::new();
    for name in ["out", "off", "late", "demoted", "steady"] {
        // `late` signs in first: its token expires before the others'.
        let token = testing::login(&app, name, PASSWORD).await;
        if name == "late" {
            clock.advance_ms(1_000);
        }
        let (status, stream) = subscribe(addr, Some(&token)).await;
        assert!(status.contains(" 200 "), "{name}: {status}");
        tokens.insert(name, token);
        streams.insert(name, stream);
    }
    assert_eq!(feed.subscribers(), 5);
    let ends = |name: &'static str, streams: &mut BTreeMap<_, _>| {
        let mut stream = streams.remove(name).unwrap();
        async move {
            tokio::time::timeout(WAIT, until_end(&mut stream))
                .await
                .unwrap_or_else(|_| panic!("{name}'s stream did not end"))
        }
    };
    let admin = |uri: &'static str, body: Option<serde_json::Value>| {
        testing::call(&app, "POST", uri, Some(&boss), body)
    };

    // Logout.
    let r = testing::call(&app, "POST", "/api/v1/logout", Some(&tokens["out"]), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    ends("out", &mut streams).await;
    // A disabled account.
    let r = admin("/api/v1/users/off/disable", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    ends("off", &mut streams).await;
    // Demoted to the public: the stream ends, and the client, subscribing
    // again, reads the public's view.
    let r = admin(
        "/api/v1/users/demoted/role",
        Some(json!({"role": "public"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    ends("demoted", &mut streams).await;
    let (status, mut public) = subscribe(addr, Some(&tokens["demoted"])).await;
    assert!(status.contains(" 200 "), "{status}");
    // Expiry, on the API's clock: `late`'s token is past its lifetime,
    // the others' not yet.
    clock.advance_ms(TOKEN_LIFETIME_MS - 500);
    ends("late", &mut streams).await;

    // The unaffected stream still runs, and the demoted client's new one
    // gets the change redacted.
    let events = seed_events(&store).await;
    assert_eq!(changes.send(events[1]).unwrap(), 1, "the feed follows");
    let mut steady = streams.remove("steady").unwrap();
    let v = tokio::time::timeout(WAIT, next_event(&mut steady))
        .await
        .expect("the steady stream still runs");
    assert_eq!(v["assignee"], "officer-1");
    let v = tokio::time::timeout(WAIT, next_event(&mut public))
        .await
        .expect("the demoted client's new stream runs");
    testing::assert_redacted(&v);
    server.abort();
}
