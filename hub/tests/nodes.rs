//! `GET /api/v1/nodes` after real syncs: the hub's sync server (real QUIC,
//! real certificates, real PostgreSQL) records each peer at session end;
//! the admin API lists them, newest first, with how far behind they are.

use axum::http::StatusCode;
use sentinel_hub::api::PROBLEM_JSON;

use crate::api::get;
use crate::e2e::{deployment, eventually, sync, Hub, Peer};

#[tokio::test(flavor = "multi_thread")]
async fn nodes_lists_each_peer_with_how_far_behind_it_is() {
    let ca = deployment("Sentinel nodes test CA", 5);
    let hub = Hub::start(&ca, 1000).await;
    let n1 = Peer::new(&ca, "node-1", 51);
    let n2 = Peer::new(&ca, "node-2", 52);
    n1.report(1_000, 5);
    n2.report(2_000, 3);

    let (status, _, body) = get(&hub.store, "/api/v1/nodes").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"], serde_json::json!([]));

    // Each session is recorded before the server reports it, so waiting
    // for the report orders the two rows' baselines.
    assert!(sync(&n1, &hub).await.caught_up);
    eventually("node-1's session to end", || !hub.sessions().is_empty()).await;
    assert!(sync(&n2, &hub).await.caught_up);
    eventually("node-2's session to end", || hub.sessions().len() >= 2).await;

    let (status, content_type, body) = get(&hub.store, "/api/v1/nodes").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{body}");
    // Newest first: node-2 synced last and holds everything the hub does;
    // node-1 left before node-2's three entries arrived.
    let (last, first) = (&items[0], &items[1]);
    assert_eq!(last["name"], "node-2", "{body}");
    assert_eq!(first["name"], "node-1", "{body}");
    for (item, hub_seq, behind) in [(last, 3, 0), (first, 5, 3)] {
        assert_eq!(item["role"], "node", "{item}");
        assert_eq!(item["sessions"], 1, "{item}");
        assert_eq!(item["hub_seq"], hub_seq, "{item}");
        assert_eq!(item["entries_behind"], behind, "{item}");
        assert_eq!(item["author"].as_str().unwrap().len(), 64, "{item}");
        assert!(item["last_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"));
        assert!(!item["last_close"].as_str().unwrap().is_empty(), "{item}");
    }
    assert!(last["last_seen_ms"].as_i64() >= first["last_seen_ms"].as_i64());

    // node-1 syncs again: it catches up, and its session count grows.
    assert!(sync(&n1, &hub).await.caught_up);
    eventually("node-1's second session to end", || {
        hub.sessions().len() >= 3
    })
    .await;
    let (_, _, body) = get(&hub.store, "/api/v1/nodes").await;
    let items = body["items"].as_array().unwrap();
    assert_eq!(items[0]["name"], "node-1", "{body}");
    assert_eq!(items[0]["sessions"], 2, "{body}");
    assert_eq!(items[0]["entries_behind"], 0, "{body}");
    assert_eq!(items[1]["entries_behind"], 0, "{body}");

    // No parameters: anything given is refused.
    let (status, content_type, body) = get(&hub.store, "/api/v1/nodes?limit=5").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(content_type, PROBLEM_JSON);
    assert_eq!(body["field"], "limit", "{body}");
}
