//! The live feed over real sockets: 200 subscribers hold an SSE stream
//! each; one report through the API reaches every one of them, redacted
//! for the public, and a signed-out client is refused. An event that
//! arrives by sync reaches a subscriber too. A stream ends when its token
//! or role does: logout, a disabled account, expiry, a demotion.

use sentinel_certs::testing::now_ms;
use std::net::SocketAddr;
use std::time::Duration;

use sentinel_http::testing;
use sentinel_http::testing::sse::{next_event, next_event_on_each, subscribe};
use sentinel_node::http::{serve, ApiOptions, ApiState, Feed};
use sentinel_schema::{
    Body, DeviceRole, EventChange, EventDoc, EventId, NewEvent, PersonRole, Point,
};
use serde_json::{json, Value};

use super::{raw, Api};

const SUBSCRIBERS: usize = 200;
const WAIT: Duration = Duration::from_secs(30);

/// Serves the node's API (a state, and so a feed, of its own) on a free
/// port.
async fn serve_api(api: &Api) -> (SocketAddr, Feed) {
    serve_state(ApiState::new(api.node.clone()).unwrap()).await
}

/// Serves `state` on a free port.
async fn serve_state(state: ApiState) -> (SocketAddr, Feed) {
    let feed = state.feed().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, state, ApiOptions::default()));
    (addr, feed)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_subscribers_all_receive_a_report_made_through_the_api() {
    let api = Api::start();
    api.account("boss", Some(PersonRole::Admin));
    api.account("ada", Some(PersonRole::Officer));
    api.account("pat", Some(PersonRole::Public));
    let (boss, ada, pat) = (
        api.login("boss").await,
        api.login("ada").await,
        api.login("pat").await,
    );
    let (addr, feed) = serve_api(&api).await;

    let mut streams = Vec::with_capacity(SUBSCRIBERS);
    for i in 0..SUBSCRIBERS {
        let token = if i % 2 == 0 { &boss } else { &ada };
        let (status, r) = subscribe(addr, Some(token)).await;
        assert!(status.contains(" 200 "), "{status}");
        streams.push(r);
    }
    let (status, mut public) = subscribe(addr, Some(&pat)).await;
    assert!(status.contains(" 200 "), "{status}");
    let (status, _) = subscribe(addr, None).await;
    assert!(status.contains(" 401 "), "{status}");
    let (status, _) = subscribe(addr, Some(&"0".repeat(64))).await;
    assert!(status.contains(" 401 "), "{status}");
    assert_eq!(feed.subscribers(), SUBSCRIBERS + 1);

    let (status, _, body) = raw(
        addr,
        "POST",
        "/api/v1/events",
        Some(&ada),
        Some(
            json!({"title": "Gas smell", "description": "near the school",
                    "category": "hazard", "severity": 4,
                    "location": {"lon": -0.1276, "lat": 51.5072}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["event"]
        .as_str()
        .unwrap()
        .to_owned();

    let got = next_event_on_each(&mut streams, WAIT).await;
    assert_eq!(got.len(), SUBSCRIBERS);
    for v in &got {
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["title"], "Gas smell");
        assert_eq!(v["reported_by"], "ada");
        assert!(v.get("history").is_none(), "never history: {v}");
    }
    let public_view = tokio::time::timeout(WAIT, next_event(&mut public))
        .await
        .unwrap();
    assert_eq!(public_view["id"], id.as_str());
    testing::assert_redacted(&public_view);
    assert_eq!(
        public_view["location"],
        json!({"lon": -0.13, "lat": 51.51}),
        "snapped to the grid"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_that_arrives_by_sync_reaches_a_subscriber() {
    let api = Api::start();
    api.account("ada", Some(PersonRole::Officer));
    let ada = api.login("ada").await;
    let (addr, _feed) = serve_api(&api).await;
    let (status, mut stream) = subscribe(addr, Some(&ada)).await;
    assert!(status.contains(" 200 "), "{status}");

    // Another node reports; this node applies its entry as sync does.
    let mut peer = api.signer(DeviceRole::Node, "node-2", 911);
    let new = NewEvent {
        title: "Bridge closed".into(),
        description: String::new(),
        category: "traffic".into(),
        severity: 2,
        location: Point::new(13.4, 52.5).unwrap(),
        reported_ms: now_ms(),
    };
    let (_, change) = EventDoc::create(&peer.enrollment.identity.author, &new, now_ms()).unwrap();
    let event = EventId([42; 16]);
    api.apply_by(&mut peer, Body::EventChange(EventChange { event, change }));

    let v = tokio::time::timeout(WAIT, next_event(&mut stream))
        .await
        .expect("the synced event reaches the feed");
    assert_eq!(v["id"], event.to_hex());
    assert_eq!(v["title"], "Bridge closed");
    // An edit made through another router (another feed) is seen too: the
    // feed follows the log, not the handlers.
    let r = api
        .call(
            "PATCH",
            &format!("/api/v1/events/{}", event.to_hex()),
            Some(&ada),
            Some(json!({"severity": 5})),
        )
        .await;
    // The reporter is `boss` (the peer's actor): an officer may not edit.
    assert_eq!(r.status, axum::http::StatusCode::FORBIDDEN, "{}", r.body);
    api.edit(event, "boss", sentinel_schema::EventEdit::Severity(5));
    let v = tokio::time::timeout(WAIT, next_event(&mut stream))
        .await
        .expect("a later edit reaches the feed");
    assert_eq!(
        (v["id"].as_str(), v["severity"].as_u64()),
        (Some(event.to_hex().as_str()), Some(5))
    );
}

/// How often the tests' feeds check their subscribers again: short, so a
/// stream that should end does so quickly; the wait for it is bounded.
const RECHECK: Duration = Duration::from_millis(50);

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_ends_when_its_token_or_role_does() {
    use sentinel_http::clock::Clock;
    use sentinel_http::people::TOKEN_LIFETIME_MS;
    use sentinel_http::testing::sse::until_end;

    let api = Api::start();
    for name in ["boss", "out", "off", "late", "demoted", "steady"] {
        api.account(name, Some(PersonRole::Officer));
    }
    api.grant("boss", PersonRole::Admin);
    // The API on a clock the test moves, its feed re-checking often.
    let clock = Clock::fixed(now_ms());
    let state = ApiState::new(api.node.clone())
        .unwrap()
        .with_clock(clock.clone())
        .map_api(|a| a.map_feed(|f| f.rechecking_every(RECHECK)));
    let (addr, feed) = serve_state(state).await;
    let login = |name: &'static str| async move {
        let (status, _, body) = raw(
            addr,
            "POST",
            "/api/v1/login",
            None,
            Some(json!({"name": name, "password": super::PASSWORD})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let mut tokens = std::collections::BTreeMap::new();
    let mut streams = std::collections::BTreeMap::new();
    for name in ["out", "off", "late", "demoted", "steady"] {
        // `late` signs in first: its token expires before the others'.
        let token = login(name).await;
        if name == "late" {
            clock.advance_ms(1_000);
        }
        let (status, stream) = subscribe(addr, Some(&token)).await;
        assert!(status.contains(" 200 "), "{name}: {status}");
        tokens.insert(name, token);
        streams.insert(name, stream);
    }
    assert_eq!(feed.subscribers(), 5);
    let ends = |name: &'static str, streams: &mut std::collections::BTreeMap<_, _>| {
        let mut stream = streams.remove(name).unwrap();
        async move {
            tokio::time::timeout(WAIT, until_end(&mut stream))
                .await
                .unwrap_or_else(|_| panic!("{name}'s stream did not end"))
        }
    };

    // Logout.
    let (status, _, _) = raw(addr, "POST", "/api/v1/logout", Some(&tokens["out"]), None).await;
    assert_eq!(status, 204);
    ends("out", &mut streams).await;
    // A disabled account (as `sentinel-node user disable` does).
    assert!(api
        .node
        .lock()
        .unwrap()
        .store_mut()
        .disable_account("off")
        .unwrap());
    ends("off", &mut streams).await;
    // Demoted to the public by a hub's grant: the stream ends, and the
    // client, signing in again, reads the public's view.
    api.grant("demoted", PersonRole::Public);
    ends("demoted", &mut streams).await;
    let (status, mut public) = subscribe(addr, Some(&tokens["demoted"])).await;
    assert!(status.contains(" 200 "), "{status}");
    // Expiry, on the API's clock: `late`'s token is past its lifetime,
    // the others' not yet.
    clock.advance_ms(TOKEN_LIFETIME_MS - 500);
    ends("late", &mut streams).await;

    // The unaffected stream still runs: a report reaches it, and the
    // demoted client's new stream gets it redacted.
    let (status, _, body) = raw(
        addr,
        "POST",
        "/api/v1/events",
        Some(&tokens["steady"]),
        Some(
            json!({"title": "Still here", "description": "", "category": "test",
                    "severity": 1, "location": {"lon": 1.0, "lat": 2.0}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let mut steady = streams.remove("steady").unwrap();
    let v = tokio::time::timeout(WAIT, next_event(&mut steady))
        .await
        .expect("the steady stream still runs");
    assert_eq!(v["title"], "Still here");
    assert_eq!(v["reported_by"], "steady");
    let v = tokio::time::timeout(WAIT, next_event(&mut public))
        .await
        .expect("the demoted client's new stream runs");
    testing::assert_redacted(&v);
}
