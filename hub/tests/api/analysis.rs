//! Analysis on the hub (`/api/v1/analysis/…`) against a real PostgreSQL:
//! near duplicates, hotspots, summaries — local, or by a real
//! OpenAI-compatible stub server on localhost, answered locally with the
//! reason when it fails — and the public's limits (invariant 12). The
//! same handlers as the node's (`sentinel_http::api::analysis`); the
//! node's tests go through every failure of the model.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use sentinel_http::llm::Llm;
use sentinel_http::testing::{self, Reply};
use sentinel_hub::api::{router, ApiState};
use sentinel_hub::PgStore;
use sentinel_schema::{author_of, EventDoc, EventEdit, Hlc, NewEvent, PersonRole};
use sentinel_sync::testing::key;
use serde_json::{json, Value};

use super::{change, ev, new_event, push};
use crate::{fresh_store, verified, NOW};

const MIN: u64 = 60_000;

/// Two reports of one flood 60 m and ten minutes apart (the second
/// assigned to `bruno-assignee`), the same words far away, something
/// else at the same spot; four different reports in one quiet cell in
/// the last hour. Each event's description is its title.
async fn seed(store: &PgStore) {
    let k = key(411);
    let a = author_of(&k);
    let specs: [(u8, &str, f64, f64, u64); 8] = [
        (
            1,
            "Flooded underpass Main St",
            13.4049,
            52.5200,
            NOW - 30 * MIN,
        ),
        (
            2,
            "Underpass flooded, Main St",
            13.4057,
            52.5202,
            NOW - 20 * MIN,
        ),
        (3, "Flooded underpass Main St", 13.6, 52.6, NOW - 25 * MIN),
        (4, "Tree down", 13.4049, 52.5200, NOW - 15 * MIN),
        (5, "Smoke from a chimney", 13.4551, 52.5151, NOW - 5 * MIN),
        (6, "Car alarm ringing", 13.4551, 52.5151, NOW - 6 * MIN),
        (7, "Broken shop window", 13.4551, 52.5151, NOW - 7 * MIN),
        (8, "Loud music at night", 13.4551, 52.5151, NOW - 8 * MIN),
    ];
    let mut log = Vec::new();
    for (n, title, lon, lat, at) in specs {
        let new = NewEvent {
            description: title.into(),
            ..new_event(title, lon, lat, 3, at)
        };
        let (mut doc, c) = EventDoc::create(&a, &new, at).unwrap();
        push(&mut log, &k, Hlc::new(at, 0), change(ev(n), c));
        if n == 2 {
            let edit = EventEdit::Assign("bruno-assignee".into());
            let c = doc.edit(&a, &edit, at + 1).unwrap();
            push(&mut log, &k, Hlc::new(at + 1, 0), change(ev(n), c));
        }
    }
    store.apply(verified(&log), NOW).await.unwrap();
    store.project_pending().await.unwrap();
}

async fn call(
    store: &PgStore,
    role: PersonRole,
    llm: Option<Llm>,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> Reply {
    let state = ApiState::new(store.clone(), None)
        .map_api(|api| api.trusting("someone", role).with_llm(llm));
    testing::call(&router(state), method, uri, None, body).await
}

#[tokio::test]
async fn duplicates_and_hotspots_on_postgresql() {
    let (_db, store) = fresh_store().await;
    seed(&store).await;
    let admin = PersonRole::Admin;

    let r = call(
        &store,
        admin,
        None,
        "GET",
        "/api/v1/analysis/duplicates",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let pairs = r.body["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 1, "{}", r.body);
    assert_eq!(pairs[0]["keep"]["id"], ev(1).to_hex());
    assert_eq!(pairs[0]["duplicate"]["id"], ev(2).to_hex());
    assert_eq!(pairs[0]["apart_s"], 600);
    assert_eq!(r.body["scanned"], 8);

    let uri = format!("/api/v1/analysis/hotspots?window_s=3600&baseline=4&until={NOW}");
    for role in [admin, PersonRole::Public] {
        let r = call(&store, role, None, "GET", &uri, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let hot = r.body["hotspots"].as_array().unwrap();
        // The quiet cell first; the flood's three reports make one too,
        // except on the public's grid, where they fall into two cells.
        let cells = if role == admin { 2 } else { 1 };
        assert_eq!(hot.len(), cells, "{}", r.body);
        assert_eq!(hot[0]["recent"], 4);
    }

    // The public: no duplicates, no cell finer than its grid.
    let public = PersonRole::Public;
    let r = call(
        &store,
        public,
        None,
        "GET",
        "/api/v1/analysis/duplicates",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = call(
        &store,
        public,
        None,
        "GET",
        "/api/v1/analysis/hotspots?cell=0.005",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["field"], "cell");
    let r = call(
        &store,
        admin,
        None,
        "GET",
        "/api/v1/analysis/duplicates?similarity=2",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["field"], "similarity");
}

/// A real OpenAI-compatible server on localhost; `garbage` answers what
/// no chat completion is. Records every body it is sent.
async fn stub(garbage: bool) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |body: String| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(body);
                if garbage {
                    return "{\"choices\":\"no\"}".to_owned();
                }
                json!({"choices":[{"message":{"role":"assistant","content":"Hub model summary."}}]})
                    .to_string()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn summaries_by_the_model_or_locally_on_postgresql() {
    let (_db, store) = fresh_store().await;
    seed(&store).await;
    let area = json!({ "bbox": "13,52,14,53", "to": NOW });
    let uri = "/api/v1/analysis/summary";

    let r = call(
        &store,
        PersonRole::Officer,
        None,
        "POST",
        uri,
        Some(area.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["source"], "local");
    assert_eq!(r.body["reason"], "no language model is configured");
    assert_eq!(r.body["local"]["total"], 8);
    assert_eq!(r.body["local"]["duplicates"], 1);
    assert_eq!(r.body["local"]["hotspots"].as_array().unwrap().len(), 2);

    let (url, seen) = stub(false).await;
    let llm = || Llm::new(Some(&url), None, None, Duration::from_secs(5)).unwrap();
    for role in [PersonRole::Officer, PersonRole::Public] {
        let r = call(&store, role, llm(), "POST", uri, Some(area.clone())).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["source"], "model", "{}", r.body);
        assert_eq!(r.body["text"], "Hub model summary.");
        let body = json!({ "event": ev(2).to_hex() });
        let r = call(&store, role, llm(), "POST", uri, Some(body)).await;
        assert_eq!(r.body["source"], "model", "{}", r.body);
    }
    let sent = seen.lock().unwrap().clone();
    assert_eq!(sent.len(), 4);
    for (i, s) in sent.iter().enumerate() {
        assert!(!s.contains("bruno-assignee"), "{i}: {s}");
        // The public's: snapped locations only.
        assert_eq!(s.contains("13.4057"), i < 2, "{i}: {s}");
    }

    let (bad, _) = stub(true).await;
    let garbage = Llm::new(Some(&bad), None, None, Duration::from_secs(5)).unwrap();
    let r = call(
        &store,
        PersonRole::Officer,
        garbage,
        "POST",
        uri,
        Some(area),
    )
    .await;
    assert_eq!(r.body["source"], "local", "{}", r.body);
    assert_eq!(
        r.body["reason"],
        "the language model's answer was not a chat completion"
    );
    assert_eq!(r.body["text"], r.body["local"]["text"]);
}
