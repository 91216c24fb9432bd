//! The live feed over real sockets: 1,000 subscribers hold an SSE stream
//! each; one projected change reaches every one of them, redacted for the
//! public, and a signed-out client is refused.

use std::time::Duration;

use sentinel_hub::api::{live, router, ApiState};
use sentinel_hub::people::{grant_role, hash_password};
use sentinel_schema::PersonRole;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::broadcast;

use crate::api::seed_events;
use crate::e2e::{deployment, Hub};

const SUBSCRIBERS: usize = 1_000;

/// Opens `GET /api/v1/feed` and returns the reader once the response
/// headers are in (the status line is returned too).
async fn subscribe(
    addr: std::net::SocketAddr,
    token: Option<&str>,
) -> (String, BufReader<TcpStream>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    s.write_all(
        format!(
            "GET /api/v1/feed HTTP/1.1\r\nHost: hub\r\nAccept: text/event-stream\r\n{auth}\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).await.unwrap();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    (status, r)
}

/// Reads the stream until an `event` message arrives; returns its data.
async fn next_event(r: &mut BufReader<TcpStream>) -> String {
    let mut is_event = false;
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).await.unwrap() > 0, "stream ended");
        let line = line.trim_end();
        if line.ends_with("event: event") {
            is_event = true;
        } else if is_event {
            if let Some(data) = line.split_once("data: ").map(|(_, d)| d) {
                return data.to_owned();
            }
        }
    }
}

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
    let started = std::time::Instant::now();
    let reads = streams.iter_mut().map(|r| async move {
        tokio::time::timeout(Duration::from_secs(30), next_event(r))
            .await
            .expect("every subscriber receives the change")
    });
    let got = futures_util::future::join_all(reads).await;
    eprintln!(
        "{} subscribers received the change within {:.0?}",
        got.len(),
        started.elapsed()
    );
    assert_eq!(got.len(), SUBSCRIBERS);
    for data in &got {
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["id"], hex::encode(events[1].0));
        assert_eq!(v["assignee"], "officer-1");
    }
    let public_view: serde_json::Value = serde_json::from_str(
        &tokio::time::timeout(Duration::from_secs(30), next_event(&mut public))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(public_view.get("assignee").is_none(), "{public_view}");
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
    let data = tokio::time::timeout(Duration::from_secs(30), next_event(&mut stream))
        .await
        .expect("the synced event reaches the feed");
    let v: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(v["id"], hex::encode(42u128.to_be_bytes()));
    assert_eq!(v["title"], "event 42");
    server.abort();
}
