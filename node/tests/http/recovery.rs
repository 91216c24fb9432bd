//! One bad document, or one panic, does not take the node down: an event
//! whose document Automerge cannot read or save fails alone (the test
//! hooks of `sentinel_schema::event::testing` stand in for such a
//! document), and a lock a panic poisoned is taken back, so the API does
//! not answer 503 for ever.

use std::sync::Arc;

use axum::http::StatusCode;
use sentinel_certs::testing::now_ms;
use sentinel_schema::event::testing::{PANIC_IN_SAVE, PANIC_IN_VIEW};
use sentinel_schema::{
    Body, DeviceRole, EventChange, EventDoc, EventId, NewEvent, PersonRole, Point,
};

use super::Api;

/// The ids of the events `GET /api/v1/events` lists.
async fn listed(api: &Api, token: &str) -> Vec<String> {
    let r = api.call("GET", "/api/v1/events", Some(token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_event_whose_document_automerge_cannot_read_or_save_fails_alone() {
    let api = Api::start();
    api.account("ada", Some(PersonRole::Officer));
    let ada = api.login("ada").await;
    let good = api.event("ada");

    // Another device's events, as sync brings them: one Automerge cannot
    // read, one it cannot save.
    let mut other = api.signer(DeviceRole::Node, "node-2", 910);
    let author = other.enrollment.identity.author;
    let mut bad = Vec::new();
    for (n, title) in [(1u8, PANIC_IN_VIEW), (2, PANIC_IN_SAVE)] {
        let new = NewEvent {
            title: title.into(),
            description: String::new(),
            category: "flood".into(),
            severity: 2,
            location: Point::new(13.4, 52.5).unwrap(),
            reported_ms: now_ms(),
        };
        let (_, change) = EventDoc::create(&author, &new, now_ms()).unwrap();
        let event = EventId([n; 16]);
        api.apply_by(&mut other, Body::EventChange(EventChange { event, change }));
        bad.push(event);
    }

    // The node serves on: the good event is listed and shown, the bad
    // ones are an error each (not found: they have no view).
    assert_eq!(listed(&api, &ada).await, vec![good.to_hex()]);
    let r = api
        .call(
            "GET",
            &format!("/api/v1/events/{}", good.to_hex()),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for event in &bad {
        let r = api
            .call(
                "GET",
                &format!("/api/v1/events/{}", event.to_hex()),
                Some(&ada),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    }
    // Their entries stay in the log, as evidence.
    assert_eq!(api.entries(), 1 + 2 + 1, "ada's role grant, the events");

    // Writes and later projections go on too, the bad documents included.
    let r = api
        .call(
            "POST",
            &format!("/api/v1/events/{}/notes", good.to_hex()),
            Some(&ada),
            Some(serde_json::json!({"text": "still here"})),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let projected = api
        .node
        .lock()
        .unwrap()
        .store_mut()
        .rebuild_views()
        .unwrap();
    assert_eq!(projected.unviewable.len(), 2, "{projected:?}");
    assert_eq!(listed(&api, &ada).await, vec![good.to_hex()]);
}

#[tokio::test]
async fn a_panic_while_the_lock_is_held_does_not_leave_the_api_unavailable() {
    let api = Api::start();
    api.account("ada", Some(PersonRole::Officer));
    let ada = api.login("ada").await;
    let event = api.event("ada");
    assert_eq!(listed(&api, &ada).await, vec![event.to_hex()]);

    // Something panics while holding the node's lock (a bug, a library's
    // panic): the lock is poisoned.
    let node = Arc::clone(&api.node);
    let panicked = std::thread::spawn(move || {
        let _held = node.lock().unwrap();
        panic!("a bug while the node's lock is held");
    })
    .join();
    assert!(panicked.is_err());
    assert!(api.node.is_poisoned());

    // The API takes the lock back and answers, reads and writes.
    assert_eq!(listed(&api, &ada).await, vec![event.to_hex()]);
    let r = api
        .call(
            "POST",
            &format!("/api/v1/events/{}/notes", event.to_hex()),
            Some(&ada),
            Some(serde_json::json!({"text": "after the panic"})),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    assert!(!api.node.is_poisoned());
}
