//! Erasure end to end (issue 16's drill): an admin redacts a photo and a
//! description through the hub's API; the hub signs a `redaction` entry,
//! its projector masks the views and deletes the blob; after sync the
//! photo is gone from every node too, a node that never met the author
//! never fetches it, and every chain still verifies — on each node
//! (`audit`) and in a signed audit bundle of the hub's log checked with
//! only the CA. Real PostgreSQL, real QUIC with mutual TLS, real
//! SpatiaLite nodes, real blob folders.

use axum::http::StatusCode;
use sentinel_hub::api::ApiState;
use sentinel_hub::audit::bundle::{write_bundle, BundleRequest};
use sentinel_schema::redact::REDACTED;
use sentinel_schema::{BodyKind, PersonRole};
use sentinel_sync::bundle::verify_bundle;
use sentinel_sync::testing::PNG;
use serde_json::json;

use crate::e2e::{call, deployment, ev, eventually, now_ms, sync, Peer};
use crate::media::{hash_of, report_with_photos, MediaHub};

#[tokio::test(flavor = "multi_thread")]
async fn a_redacted_photo_is_gone_everywhere_and_every_chain_still_verifies() {
    let ca = deployment("Sentinel redaction test CA", 71);
    let hub = MediaHub::start(&ca).await;
    let a = Peer::new(&ca, "node-a", 72);
    let b = Peer::new(&ca, "node-b", 73);
    let photo = hash_of(PNG);
    report_with_photos(&a, 1, &[(PNG, "face.png")]);
    sync(&a, &hub.hub).await;
    eventually("the hub to hold the photo", || hub.blobs.contains(&photo)).await;
    sync(&b, &hub.hub).await;
    assert!(b.node.lock().unwrap().media().contains(&photo));

    let api = ApiState::new(hub.hub.store.clone(), Some(hub.hub.own.clone()));
    let admin = api
        .clone()
        .map_api(|api| api.trusting("chief", PersonRole::Admin));
    let officer = api.map_api(|api| api.trusting("officer.bo", PersonRole::Officer));
    let event = hex::encode(ev(1).0);
    let uri = format!("/api/v1/events/{event}/redact");
    let media = hex::encode(photo);

    // Refusals name their field and sign nothing.
    let before = hub.hub.store.event_entries(&ev(1)).await.unwrap().len();
    for (body, field) in [
        (json!({"description": true}), "reason"),
        (json!({"description": true, "reason": " "}), "reason"),
        (json!({"media": ["ab"], "reason": "r"}), "media"),
        (json!({"media": ["ab".repeat(32)], "reason": "r"}), "media"),
        (json!({"notes": [3], "reason": "r"}), "notes"),
        (json!({"title": "yes", "reason": "r"}), "title"),
        (json!({"reason": "r"}), "body"),
        (json!({"reason": "r", "who": 1}), "who"),
    ] {
        let (status, p) = call(&admin, "POST", &uri, Some(body.clone())).await;
        assert_eq!(
            (status, p["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body}: {p}"
        );
    }
    let (status, _) = call(
        &officer,
        "POST",
        &uri,
        Some(json!({"media": [media], "reason": "r"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let unknown = format!("/api/v1/events/{}/redact", hex::encode(ev(9).0));
    let (status, _) = call(
        &admin,
        "POST",
        &unknown,
        Some(json!({"title": true, "reason": "r"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        hub.hub.store.event_entries(&ev(1)).await.unwrap().len(),
        before
    );

    // The erasure.
    let (status, done) = call(
        &admin,
        "POST",
        &uri,
        Some(json!({"description": true, "media": [media], "reason": "erasure request 2026-114"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(
        (done["values"].as_u64(), done["blobs"].as_u64()),
        (Some(1), Some(1))
    );

    // On the hub, by its projector: the blob deleted, the views masked,
    // the media 410.
    eventually("the hub to delete the photo", || {
        !hub.blobs.contains(&photo)
    })
    .await;
    let (status, p) = call(&admin, "GET", &format!("/api/v1/media/{media}"), None).await;
    assert_eq!(status, StatusCode::GONE, "{p}");
    let (status, shown) = call(&admin, "GET", &format!("/api/v1/events/{event}"), None).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    let shown = shown.to_string();
    assert!(shown.contains(REDACTED), "{shown}");
    assert!(!shown.contains("event 1 described"), "{shown}");
    assert!(!shown.contains(&media), "{shown}");
    assert!(hub.hub.store.media_named().await.unwrap().is_empty());
    let (_, found) = call(&admin, "GET", "/api/v1/events?q=described", None).await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(0), "{found}");
    // The redaction is in the event's history, with who did it.
    let record = hub
        .hub
        .store
        .event_record(&ev(1), None)
        .await
        .unwrap()
        .unwrap();
    let item = record
        .history
        .iter()
        .find(|h| h.kind == Some(BodyKind::Redaction))
        .expect("the redaction in the history");
    assert_eq!(item.actor.as_deref(), Some("chief"));
    // Asking again for what is already erased is refused.
    let (status, p) = call(
        &admin,
        "POST",
        &uri,
        Some(json!({"description": true, "reason": "again"})),
    )
    .await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("description")),
        "{p}"
    );

    // The nodes sync: the redaction reaches them, the photo goes.
    for (name, peer) in [("a", &a), ("b", &b)] {
        sync(peer, &hub.hub).await;
        let node = peer.node.lock().unwrap();
        assert!(!node.media().contains(&photo), "node {name}");
        let view = node.show(ev(1)).unwrap().view;
        assert_eq!(view.description, REDACTED);
        assert!(view.media.is_empty());
        let audit = node.store().audit().unwrap();
        assert!(audit.ok(), "{audit:?}");
    }
    // A node that never met anyone gets every entry and never the photo.
    let c = Peer::new(&ca, "node-c", 74);
    let s = sync(&c, &hub.hub).await;
    assert_eq!(s.media.wanted, 0, "{:?}", s.media);
    assert!(!c.node.lock().unwrap().media().contains(&photo));
    assert_eq!(
        c.node.lock().unwrap().show(ev(1)).unwrap().view.description,
        REDACTED
    );

    // The hub's whole log, in a signed bundle, verifies with the CA alone.
    let hub_id = crate::e2e::issue(&ca, sentinel_schema::DeviceRole::Hub, "hub-1", 90);
    let now = now_ms();
    let request = BundleRequest {
        from_ms: now - 3_600_000,
        to_ms: now + 3_600_000,
        area: None,
    };
    let (bytes, summary) = write_bundle(&hub.hub.store, &hub_id, &request, now)
        .await
        .unwrap();
    assert!(summary.selected >= 3, "{summary}");
    let report = verify_bundle(&bytes, ca.cert()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}
