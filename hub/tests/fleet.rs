//! What the admin's fleet pages read, on a real PostgreSQL with real QUIC
//! sessions of real SpatiaLite nodes: a node's photo served by the hub's
//! API once it arrived over a media connection, with the node's access
//! rules (`GET /api/v1/media/{hash}`); forks, quarantine and breaches
//! (`GET /api/v1/alerts`); and each node's outbox as the hub sees it
//! (`GET /api/v1/nodes`).

use axum::body::Body as HttpBody;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use sentinel_hub::api::{router, ApiState, PROBLEM_JSON};
use sentinel_hub::PgStore;
use sentinel_schema::{verify_all, PersonRole, SignedEntry};
use sentinel_sync::testing::{chain, key, reading, sign_after, PNG};
use sentinel_sync::{RejectReason, Rejection};
use serde_json::Value;
use tower::ServiceExt;

use crate::api::get;
use crate::e2e::{deployment, eventually, now_ms, sync, Hub, Peer};
use crate::media::{hash_of, report_with_photos, MediaHub};
use crate::{fresh_store, verified, NOW};

/// The hub's API as `role`, serving media from `hub`'s folder when given.
fn api_as(store: &PgStore, media: Option<&MediaHub>, role: PersonRole) -> Router {
    let mut state = ApiState::new(store.clone(), None);
    if let Some(m) = media {
        state = state.with_media(m.blobs.clone());
    }
    router(state.map_api(|api| api.trusting("someone", role)))
}

/// GETs `uri`: status, headers and the raw body.
async fn fetch(app: &Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(HttpBody::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .unwrap();
    (status, headers, bytes.to_vec())
}

fn problem(status: StatusCode, headers: &axum::http::HeaderMap, body: &[u8]) -> Value {
    assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON, "{status}");
    serde_json::from_slice(body).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_photo_a_node_reported_is_served_by_the_hub_as_the_node_serves_it() {
    let ca = deployment("Sentinel fleet media CA", 71);
    let hub = MediaHub::start(&ca).await;
    let a = Peer::new(&ca, "node-a", 72);
    report_with_photos(&a, 1, &[(PNG, "flood.png")]);
    let hash = hex::encode(hash_of(PNG));
    let uri = format!("/api/v1/media/{hash}");
    let store = &hub.hub.store;

    // Before the sync: no event names it.
    let admin = api_as(store, Some(&hub), PersonRole::Admin);
    let (status, headers, body) = fetch(&admin, &uri).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    problem(status, &headers, &body);

    // Real QUIC: the entries, then the photo on a media connection.
    let s = sync(&a, &hub.hub).await;
    assert!(s.caught_up, "{s:?}");
    eventually("the hub to store the photo", || {
        hub.blobs.contains(&hash_of(PNG))
    })
    .await;
    store.project_pending().await.unwrap();

    // Admins and officers get the bytes, typed by the entry, not sniffed.
    for role in [PersonRole::Admin, PersonRole::Officer] {
        let app = api_as(store, Some(&hub), role);
        let (status, headers, body) = fetch(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{role:?}");
        assert_eq!(headers[header::CONTENT_TYPE], "image/png");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(body, PNG);
    }
    // The public never (invariant 12), nor someone without a role.
    for role in [PersonRole::Public, PersonRole::None] {
        let app = api_as(store, Some(&hub), role);
        let (status, headers, body) = fetch(&app, &uri).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role:?}");
        problem(status, &headers, &body);
    }
    // Without a token at all: 401.
    let anonymous = router(ApiState::new(store.clone(), None).with_media(hub.blobs.clone()));
    assert_eq!(fetch(&anonymous, &uri).await.0, StatusCode::UNAUTHORIZED);

    // Bad input names the field; a hash no event names is 404; so is a
    // named one whose bytes are not here (a hub without the folder).
    for (uri, status, field) in [
        (
            "/api/v1/media/xyz".to_owned(),
            StatusCode::BAD_REQUEST,
            Some("hash"),
        ),
        (
            format!("{uri}?size=big"),
            StatusCode::BAD_REQUEST,
            Some("size"),
        ),
        (
            format!("/api/v1/media/{}", "ab".repeat(32)),
            StatusCode::NOT_FOUND,
            None,
        ),
    ] {
        let (got, headers, body) = fetch(&admin, &uri).await;
        assert_eq!(got, status, "{uri}");
        let p = problem(got, &headers, &body);
        if let Some(field) = field {
            assert_eq!(p["field"], field, "{p}");
        }
    }
    let no_folder = api_as(store, None, PersonRole::Admin);
    let (status, headers, body) = fetch(&no_folder, &uri).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let p = problem(status, &headers, &body);
    assert!(p["detail"].as_str().unwrap().contains("next sync"), "{p}");
}

/// A node whose key signed two histories: both copies sync. The hub keeps
/// the fork as evidence and lists it; the copy whose chain the hub cannot
/// take stays ahead of the hub, session after session: its outbox, and
/// since when.
#[tokio::test(flavor = "multi_thread")]
async fn a_forked_node_shows_in_alerts_and_its_outbox_stays_ahead() {
    let ca = deployment("Sentinel fleet fork CA", 73);
    let hub = Hub::start(&ca, 100).await;
    let good = Peer::new(&ca, "node-f", 74);
    let twin = Peer::new(&ca, "node-f", 74); // the same key, another disk
    let other = Peer::new(&ca, "node-g", 75);
    good.report(1_000, 1);
    twin.report(2_000, 3);
    other.report(3_000, 2);
    let author = good.enrollment.identity.author.to_hex();

    let (_, _, body) = get(&hub.store, "/api/v1/alerts").await;
    assert_eq!(
        body,
        serde_json::json!({"forks": [], "quarantine": [], "breaches": []})
    );

    assert!(sync(&good, &hub).await.caught_up);
    assert!(sync(&other, &hub).await.caught_up);
    let before = now_ms();
    sync(&twin, &hub).await;
    eventually("three sessions to end", || hub.sessions().len() >= 3).await;

    let (status, _, body) = get(&hub.store, "/api/v1/alerts").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let forks = body["forks"].as_array().unwrap();
    assert_eq!(forks.len(), 1, "{body}");
    let f = &forks[0];
    assert_eq!(f["author"], author.as_str());
    assert_eq!(f["author_name"], "node-f");
    assert_eq!(f["seq"], 1);
    assert_eq!(
        (f["count"].as_u64(), f["kept"].as_bool()),
        (Some(1), Some(true))
    );
    let held = f["held"].as_str().unwrap();
    let rival = f["other"].as_str().unwrap();
    assert_ne!(held, rival);
    assert!(f["detected_ms"].as_u64().unwrap() >= before, "{f}");
    assert_eq!(body["breaches"], serde_json::json!([]));

    // The fleet: the twin holds three entries of its chain, the hub one
    // (another) at seq 1, so two stay in the twin's outbox; the others
    // caught up.
    let (_, _, nodes) = get(&hub.store, "/api/v1/nodes").await;
    let by_addr = |name: &str| -> Vec<Value> {
        nodes["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["name"] == name)
            .cloned()
            .collect()
    };
    let g = &by_addr("node-g")[0];
    assert_eq!(g["outbox_entries"], 0, "{g}");
    assert_eq!(g["outbox_since_ms"], Value::Null, "{g}");
    assert_eq!(g["outbox_age_ms"], Value::Null, "{g}");
    // One row per key: the twin's session was the last one of that key.
    let f = by_addr("node-f");
    assert_eq!(f.len(), 1, "{nodes}");
    let f = &f[0];
    assert_eq!(f["sessions"], 2, "{f}");
    assert_eq!(f["outbox_entries"], 2, "{f}");
    let since = f["outbox_since_ms"].as_i64().unwrap();
    assert!(since >= before as i64 && since <= now_ms() as i64, "{f}");
    assert!(f["outbox_age_ms"].as_i64().unwrap() >= 0, "{f}");

    // Another session of the twin: still ahead, since the first time.
    sync(&twin, &hub).await;
    eventually("the fourth session to end", || hub.sessions().len() >= 4).await;
    let (_, _, nodes) = get(&hub.store, "/api/v1/nodes").await;
    let f = nodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "node-f")
        .unwrap()
        .clone();
    assert_eq!(f["sessions"], 3, "{f}");
    assert_eq!(f["outbox_entries"], 2, "{f}");
    assert_eq!(f["outbox_since_ms"].as_i64(), Some(since), "{f}");
    assert!(f["outbox_age_ms"].as_i64().unwrap() >= 0, "{f}");
    // The fork is still one.
    let (_, _, body) = get(&hub.store, "/api/v1/alerts").await;
    assert_eq!(body["forks"].as_array().unwrap().len(), 1, "{body}");
}

/// `entry` with its last byte (in its signature) changed: it still
/// decodes, and no longer verifies.
fn tampered(entry: &SignedEntry) -> SignedEntry {
    let mut bytes = entry.as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    SignedEntry::from_bytes(bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantine_is_counted_by_author_and_reason_newest_first() {
    let (_db, store) = fresh_store().await;
    let k = key(76);
    let log = chain(&k, 4, reading);
    store.apply(verified(&log[..1]), NOW).await.unwrap();
    // A bad signature, as a session's verification refuses it.
    let (good, bad) = verify_all(vec![tampered(&log[1])]);
    assert!(good.is_empty());
    let rejected: Vec<Rejection> = bad
        .into_iter()
        .map(|r| Rejection {
            reason: RejectReason::from(&r.error),
            detail: r.error.to_string(),
            entry: r.entry,
        })
        .collect();
    assert_eq!(rejected[0].reason, RejectReason::BadSignature);
    store.quarantine(&rejected, NOW + 10).await.unwrap();
    // Two entries past a gap, later.
    store.apply(verified(&log[2..]), NOW + 20).await.unwrap();
    // And a fork of another author.
    let k2 = key(77);
    let other = chain(&k2, 1, reading);
    store.apply(verified(&other), NOW).await.unwrap();
    let rival = sign_after(&k2, None, NOW + 5, reading(99));
    store
        .apply(verified(&[rival.clone()]), NOW + 30)
        .await
        .unwrap();

    let (status, _, body) = get(&store, "/api/v1/alerts").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let q = body["quarantine"].as_array().unwrap();
    assert_eq!(q.len(), 2, "{body}");
    let author = log[0].author().to_hex();
    assert_eq!(q[0]["author"], author.as_str());
    assert_eq!(q[0]["reason_code"], "gap");
    assert_eq!(
        (q[0]["count"].as_u64(), q[0]["kept"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(q[0]["newest_ms"], NOW + 20);
    assert_eq!(q[1]["author"], author.as_str());
    assert_eq!(q[1]["reason_code"], "bad_signature");
    assert_eq!(q[1]["count"], 1);
    assert_eq!(q[1]["summarized"], 0);
    assert_eq!(q[1]["newest_ms"], NOW + 10);
    assert!(!q[1]["reason"].as_str().unwrap().is_empty(), "{q:?}");
    assert_eq!(q[1]["author_name"], Value::Null, "no certificate held");
    let forks = body["forks"].as_array().unwrap();
    assert_eq!(forks.len(), 1, "{body}");
    assert_eq!(forks[0]["other"], rival.id().to_hex().as_str());
    assert_eq!(forks[0]["held"], other[0].id().to_hex().as_str());
    assert_eq!(forks[0]["detected_ms"], NOW + 30);

    // `limit` bounds each list; anything else is refused, naming it.
    let (_, _, body) = get(&store, "/api/v1/alerts?limit=1").await;
    assert_eq!(body["quarantine"].as_array().unwrap().len(), 1);
    assert_eq!(body["quarantine"][0]["reason_code"], "gap");
    for (uri, field) in [
        ("/api/v1/alerts?limit=0", "limit"),
        ("/api/v1/alerts?limit=501", "limit"),
        ("/api/v1/alerts?limit=x", "limit"),
        ("/api/v1/alerts?author=ab", "author"),
    ] {
        let (status, content_type, body) = get(&store, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(content_type, PROBLEM_JSON);
        assert_eq!(body["field"], field, "{uri}: {body}");
    }
    // Admins only.
    for role in [PersonRole::Officer, PersonRole::Public] {
        let app = api_as(&store, None, role);
        let (status, headers, body) = fetch(&app, "/api/v1/alerts").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role:?}");
        problem(status, &headers, &body);
    }
}
