//! Settling a conflict: two nodes change an event's fields offline, sync
//! over QUIC, and the event shows both values side by side; an officer's
//! `PATCH /api/v1/events/{id}` of a field with one value leaves no
//! conflict on it — with a new value, or with the value that was winning
//! (an Automerge put overwrites every concurrent value) — on this node and,
//! after the next sync, on the other.

use super::*;

use axum::http::StatusCode;
use sentinel_http::people::hash_password;
use sentinel_http::testing::{self as http, PASSWORD};
use sentinel_node::http::{router, ApiState};
use sentinel_schema::EventEdit;
use serde_json::json;

fn edit(peer: &Peer, event: sentinel_schema::EventId, actor: &str, e: EventEdit) {
    peer.node
        .lock()
        .unwrap()
        .edit(event, &e, Some(actor), now_ms())
        .unwrap();
}

#[tokio::test]
async fn an_edit_of_a_conflicted_field_settles_it_on_both_nodes() {
    let _t = timed("an_edit_of_a_conflicted_field_settles_it");
    let ca = deployment("settle CA", 71);
    let a = Peer::new(&ca, "node-a", 72);
    let b = Peer::new(&ca, "node-b", 73);
    let e = ev(9);
    a.node
        .lock()
        .unwrap()
        .report(
            &new_event("Bridge damaged", 10.0, 50.0),
            e,
            Some("ada"),
            now_ms(),
        )
        .unwrap();
    let server = Server::start(&b);
    sync(&a, server.addr).await;

    // Offline, each node changes the title, the description and the
    // severity its own way.
    edit(&a, e, "ada", EventEdit::Title("Bridge collapsed".into()));
    edit(
        &a,
        e,
        "ada",
        EventEdit::Description("north side gone".into()),
    );
    edit(&a, e, "ada", EventEdit::Severity(4));
    edit(&b, e, "bo", EventEdit::Title("Bridge closed".into()));
    edit(
        &b,
        e,
        "bo",
        EventEdit::Description("closed by police".into()),
    );
    edit(&b, e, "bo", EventEdit::Severity(5));
    sync(&a, server.addr).await;
    assert_eq!(a.digest(), b.digest());

    let hash = hash_password(PASSWORD).unwrap();
    a.node
        .lock()
        .unwrap()
        .store()
        .create_account_as("ada", &hash, now_ms(), true)
        .unwrap();
    let app = router(ApiState::new(a.node.clone()).unwrap());
    let ada = http::login(&app, "ada", PASSWORD).await;
    let uri = format!("/api/v1/events/{}", e.to_hex());
    let r = http::call(&app, "GET", &uri, Some(&ada), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for field in ["title", "description", "severity"] {
        assert_eq!(
            r.body["conflicts"][field].as_array().map(Vec::len),
            Some(2),
            "{field}: {}",
            r.body
        );
    }
    let winning_title = r.body["title"].as_str().unwrap().to_owned();

    // The title settled on the value that was winning, the severity on a
    // new one; the description is left in conflict.
    let r = http::call(
        &app,
        "PATCH",
        &uri,
        Some(&ada),
        Some(json!({"title": winning_title, "severity": 3})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = http::call(&app, "GET", &uri, Some(&ada), None).await;
    assert_eq!(r.body["title"], winning_title.as_str());
    assert_eq!(r.body["severity"], 3);
    let conflicts = r.body["conflicts"].as_object().unwrap();
    assert!(!conflicts.contains_key("title"), "{}", r.body);
    assert!(!conflicts.contains_key("severity"), "{}", r.body);
    assert!(conflicts.contains_key("description"), "{}", r.body);

    // The other node sees it settled after the next sync.
    sync(&a, server.addr).await;
    eventually("B's views catch up", || {
        let view = b.node.lock().unwrap().show(e).unwrap().view;
        view.severity == 3
            && view.title == winning_title
            && !view.conflicts.contains_key("title")
            && !view.conflicts.contains_key("severity")
            && view.conflicts.contains_key("description")
    })
    .await;
}
