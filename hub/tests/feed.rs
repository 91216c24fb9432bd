//! The live feed over real sockets: 1,000 subscribers hold an SSE stream
//! each; one projected change reaches every one of them, redacted for the
//! public, and a signed-out client is refused.

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
