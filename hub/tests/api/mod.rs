//! The admin read API against a real PostgreSQL, through the router
//! (`tower::ServiceExt::oneshot`, no sockets): timeline order and keyset
//! pagination, event filters, detail with history and conflicts, GeoJSON
//! export, RFC 9457 problems for bad input, 404, readiness; and the
//! binary serving it next to sync (`serve --http`).

use std::collections::BTreeSet;

use axum::body::Body as HttpBody;
use axum::http::{header, Request, StatusCode};
use sentinel_certs::Ca;
use sentinel_hub::api::{router, ApiState, PROBLEM_JSON};
use sentinel_hub::PgStore;
use sentinel_schema::{
    author_of, Body, DeviceRole, Entry, EventChange, EventDoc, EventEdit, EventId, Hlc,
    MediaAttached, MediaType, NewEvent, PersonRole, Point, SignedEntry, SigningKey, Status,
};
use sentinel_sync::testing::key;
use serde_json::Value;
use tower::ServiceExt;

use crate::{fresh_store, verified, NOW};

fn sign(key: &SigningKey, prev: Option<&SignedEntry>, hlc: Hlc, body: Body) -> SignedEntry {
    Entry {
        author: author_of(key),
        seq: prev.map_or(1, |p| p.seq() + 1),
        prev: prev.map(SignedEntry::id),
        hlc,
        actor: None,
        body,
    }
    .sign(key)
    .unwrap()
}

/// Appends an entry with `body` at `hlc` to `log`.
fn push(log: &mut Vec<SignedEntry>, key: &SigningKey, hlc: Hlc, body: Body) {
    let e = sign(key, log.last(), hlc, body);
    log.push(e);
}

fn change(event: EventId, change: Vec<u8>) -> Body {
    Body::EventChange(EventChange { event, change })
}

fn media(event: EventId, n: u8) -> Body {
    Body::MediaAttached(MediaAttached {
        event,
        hash: [n; 32],
        mime: MediaType::Jpeg,
        size: 1_000,
        name: format!("photo-{n}.jpg"),
    })
}

fn new_event(title: &str, lon: f64, lat: f64, severity: u8, reported_ms: u64) -> NewEvent {
    NewEvent {
        title: title.into(),
        description: "reported from the field".into(),
        category: if severity >= 4 { "fire" } else { "flood" }.into(),
        severity,
        location: Point::new(lon, lat).unwrap(),
        reported_ms,
    }
}

fn ev(n: u8) -> EventId {
    EventId([n; 16])
}

/// GETs `uri`: the status, the content type and the body (JSON if it
/// parses, else a JSON string).
pub(crate) async fn get(store: &PgStore, uri: &str) -> (StatusCode, String, Value) {
    // Read semantics as an admin sees them; who may read what is tested
    // with real accounts and tokens in `auth.rs`.
    let state =
        ApiState::new(store.clone(), None).map_api(|api| api.trusting("admin", PersonRole::Admin));
    let response = router(state)
        .oneshot(Request::get(uri).body(HttpBody::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, content_type, body)
}

async fn ok(store: &PgStore, uri: &str) -> Value {
    let (status, _, body) = get(store, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    body
}

/// Every item of a paged route, `limit` at a time; `between` runs after the
/// first page (to add data mid-walk).
async fn walk<F, Fut>(store: &PgStore, base: &str, limit: usize, between: F) -> Vec<Value>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut page = ok(store, &format!("{base}{sep}limit={limit}")).await;
    let mut between = Some(between);
    loop {
        let got = page["items"].as_array().unwrap();
        assert!(got.len() <= limit);
        items.extend(got.iter().cloned());
        if let Some(f) = between.take() {
            f().await;
        }
        let Some(next) = page["next"].as_str() else {
            break;
        };
        page = ok(store, &format!("{base}{sep}limit={limit}&after={next}")).await;
    }
    items
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// (hlc wall, counter, author, seq) of a timeline item: the API's order.
fn order_key(i: &Value) -> (u64, u64, String, u64) {
    (
        i["hlc"]["wall_ms"].as_u64().unwrap(),
        i["hlc"]["counter"].as_u64().unwrap(),
        i["author"].as_str().unwrap().to_owned(),
        i["seq"].as_u64().unwrap(),
    )
}

/// Two authors, 10 entries each over three events, interleaved HLCs (some
/// equal across authors); then a third author arrives mid-walk.
/// An event to seed: id byte, title, lon, lat, severity, reported_ms and
/// the status to move it to.
type Spec = (u8, &'static str, f64, f64, u8, u64, Option<Status>);

/// Seeds six events (two across the antimeridian) and projects them.
pub(crate) async fn seed_events(store: &PgStore) -> Vec<EventId> {
    let k = key(311);
    let a = author_of(&k);
    let specs: [Spec; 6] = [
        (1, "Flooded underpass", 13.405, 52.52, 3, NOW, None),
        (
            2,
            "Burning warehouse",
            13.41,
            52.53,
            5,
            NOW + 10,
            Some(Status::InProgress),
        ),
        (
            3,
            "Flooded cellar in Potsdam",
            13.06,
            52.39,
            2,
            NOW + 20,
            None,
        ),
        (
            4,
            "Fallen tree",
            2.35,
            48.85,
            1,
            NOW + 30,
            Some(Status::Resolved),
        ),
        (5, "Pacific storm", 179.5, -17.0, 4, NOW + 40, None),
        (6, "Bridge fire", -179.5, -16.5, 4, NOW + 40, None),
    ];
    let mut log = Vec::new();
    let mut ids = Vec::new();
    for (n, title, lon, lat, sev, reported, status) in specs {
        let (mut doc, c) =
            EventDoc::create(&a, &new_event(title, lon, lat, sev, reported), reported).unwrap();
        let hlc = Hlc::new(reported, 0);
        push(&mut log, &k, hlc, change(ev(n), c));
        if let Some(s) = status {
            // Reported -> assigned -> in progress (-> resolved).
            let mut edits = vec![
                EventEdit::Assign("officer-1".into()),
                EventEdit::Status(Status::InProgress),
            ];
            if s == Status::Resolved {
                edits.push(EventEdit::Status(Status::Resolved));
            }
            for (i, edit) in edits.iter().enumerate() {
                let at = reported + 1 + i as u64;
                let c = doc.edit(&a, edit, at).unwrap();
                push(&mut log, &k, Hlc::new(at, 0), change(ev(n), c));
            }
        }
        ids.push(ev(n));
    }
    store.apply(verified(&log), NOW).await.unwrap();
    store.project_pending().await.unwrap();
    ids
}

fn event_ids(body: &Value) -> Vec<String> {
    ids(body["items"].as_array().unwrap())
}

mod accounts;
mod analysis;
mod auth;
mod clusters;
mod events;
mod input;
mod openapi;
mod ops;
mod public;
mod timeline;
