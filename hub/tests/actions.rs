//! Admin actions from the hub reach the officer's node: an admin assigns
//! an event through the hub's API; the hub makes the Automerge change
//! (authored by the hub, the admin as actor), and the node that reported
//! the event sees the assignment after its next sync, merged with what it
//! did meanwhile. Real PostgreSQL, real QUIC, a real SpatiaLite node.

use axum::http::StatusCode;
use sentinel_hub::api::ApiState;
use sentinel_schema::{EventId, PersonRole, Status};
use serde_json::{json, Value};

use crate::e2e::{deployment, sync, Hub, Peer};

async fn post(state: &ApiState, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    crate::e2e::call(state, "POST", uri, body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_assignment_made_on_the_hub_reaches_the_officers_node() {
    let ca = deployment("Sentinel actions test CA", 5);
    let hub = Hub::start(&ca, 100).await;
    let n1 = Peer::new(&ca, "node-1", 51);
    n1.report(1, 2);
    sync(&n1, &hub).await;
    let hub_api = ApiState::new(hub.store.clone(), Some(hub.own.clone()));
    let admin = hub_api
        .clone()
        .map_api(|api| api.trusting("chief", PersonRole::Admin));
    let event = hex::encode(1u128.to_be_bytes());
    let uri = format!("/api/v1/events/{event}/assign");

    let (status, body) = post(&admin, &uri, Some(json!({"assignee": "officer.ada"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "assigned");
    assert_eq!(body["assignee"], "officer.ada");
    // Bad input changes nothing: an unknown event, a bad name, a field too
    // many, closing what is not resolved.
    let (status, _) = post(
        &admin,
        &format!("/api/v1/events/{}/assign", hex::encode(9u128.to_be_bytes())),
        Some(json!({"assignee": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, p) = post(&admin, &uri, Some(json!({"assignee": "a b"}))).await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("assignee"))
    );
    let (status, p) = post(&admin, &uri, Some(json!({"assignee": "bo", "x": 1}))).await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("x"))
    );
    let (status, _) = post(&admin, &format!("/api/v1/events/{event}/close"), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // An officer may not assign from the hub.
    let officer = hub_api.map_api(|api| api.trusting("officer.bo", PersonRole::Officer));
    let (status, _) = post(&officer, &uri, Some(json!({"assignee": "officer.bo"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Meanwhile, offline, the node edited the same event's title.
    {
        let mut node = n1.node.lock().unwrap();
        node.edit(
            EventId(1u128.to_be_bytes()),
            &sentinel_schema::EventEdit::Title("Flooded underpass, both lanes".into()),
            None,
            crate::e2e::now_ms(),
        )
        .unwrap();
    }
    let s = sync(&n1, &hub).await;
    assert_eq!((s.sent, s.received), (1, 1), "{s:?}");
    let node = n1.node.lock().unwrap();
    let shown = node.show(EventId(1u128.to_be_bytes())).unwrap();
    assert_eq!(shown.view.assignee.as_deref(), Some("officer.ada"));
    assert_eq!(shown.view.status, Status::Assigned);
    assert_eq!(shown.view.title, "Flooded underpass, both lanes");
    let by_hub = shown
        .history
        .iter()
        .find(|h| h.actor.as_deref() == Some("chief"))
        .expect("the hub's change is in the node's history");
    assert_eq!(by_hub.author, hub.own.author());
}
