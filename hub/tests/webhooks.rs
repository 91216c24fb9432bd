//! Webhooks end to end on real components: a real PostgreSQL (the outbox
//! is filled by the real projector), the admin API through the router,
//! the delivery worker POSTing over real sockets to an HTTP receiver on
//! localhost that checks each signature itself (its own HMAC, as
//! `docs/operations.md` tells receivers to). Time is a number the tests
//! advance and hand to `Worker::run_due`: an hour of a receiver being down
//! takes no hour.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use sentinel_http::clock::system_ms;
use sentinel_hub::api::{router, ApiState};
use sentinel_hub::webhooks::worker::{Policy, Random, Worker};
use sentinel_hub::PgStore;
use sentinel_schema::{
    author_of, Body, Entry, EventChange, EventDoc, EventEdit, EventId, Hlc, MediaAttached,
    MediaType, NewEvent, PersonRole, Point, SignedEntry, SigningKey, Status,
};
use sentinel_sync::testing::key;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::{fresh_store, verified, NOW};

const SECRET: &str = "a-secret-the-admin-chose-1234567";

/// What the receiver was sent, and whether the signature it computed
/// itself matched the one sent.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    body: String,
    valid: bool,
}

/// A receiver on localhost: answers `answer` (a status), keeps what came.
#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    answer: Arc<AtomicU16>,
    secret: Arc<Mutex<String>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (id, timestamp, signature) = (
        h("sentinel-webhook-id"),
        h("sentinel-webhook-timestamp"),
        h("sentinel-webhook-signature"),
    );
    // The receiver's own check: HMAC-SHA256 over "{timestamp}.{body}".
    let secret = r.secret.lock().unwrap().clone();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&body);
    let expected = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
    r.got.lock().unwrap().push(Received {
        id,
        timestamp,
        body: String::from_utf8(body.to_vec()).unwrap(),
        valid: expected == signature && headers["content-type"] == "application/json",
    });
    StatusCode::from_u16(r.answer.load(Ordering::SeqCst)).unwrap()
}

impl Receiver {
    fn new(secret: &str) -> Receiver {
        Receiver {
            got: Arc::default(),
            answer: Arc::new(AtomicU16::new(200)),
            secret: Arc::new(Mutex::new(secret.to_owned())),
        }
    }

    /// Serves on `addr` (port 0: any) and says where.
    async fn serve(&self, addr: SocketAddr) -> SocketAddr {
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let bound = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        bound
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}/hook")
}

/// `method uri` through the admin API, as an admin.
async fn call(
    store: &PgStore,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let state =
        ApiState::new(store.clone(), None).map_api(|api| api.trusting("admin", PersonRole::Admin));
    let r = sentinel_http::testing::call(&router(state), method, uri, None, body).await;
    (r.status, r.body)
}

/// Makes a subscription; its id and secret.
async fn subscribe(store: &PgStore, body: Value) -> (String, String) {
    let (status, made) = call(store, "POST", "/api/v1/webhooks", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    (
        made["webhook"]["id"].as_str().unwrap().to_owned(),
        made["secret"].as_str().unwrap().to_owned(),
    )
}

async fn deliveries(store: &PgStore, subscription: &str) -> Vec<Value> {
    let uri = format!("/api/v1/webhooks/{subscription}/deliveries");
    let (status, list) = call(store, "GET", &uri, None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"].as_array().unwrap().clone()
}

/// One officer's device: a chain of entries, and the documents it edits.
struct Reporter {
    key: SigningKey,
    log: Vec<SignedEntry>,
    docs: BTreeMap<EventId, EventDoc>,
}

impl Reporter {
    fn new(n: u64) -> Reporter {
        Reporter {
            key: key(n),
            log: Vec::new(),
            docs: BTreeMap::new(),
        }
    }

    fn sign(&mut self, body: Body) -> SignedEntry {
        let at = NOW + self.log.len() as u64 * 1_000;
        let e = Entry {
            author: author_of(&self.key),
            seq: self.log.len() as u64 + 1,
            prev: self.log.last().map(SignedEntry::id),
            hlc: Hlc::new(at, 0),
            actor: None,
            body,
        }
        .sign(&self.key)
        .unwrap();
        self.log.push(e.clone());
        e
    }

    fn report(&mut self, n: u8, category: &str, severity: u8, lon: f64, lat: f64) -> SignedEntry {
        let event = EventId([n; 16]);
        let new = NewEvent {
            title: format!("event {n}"),
            description: "reported from the field".into(),
            category: category.into(),
            severity,
            location: Point::new(lon, lat).unwrap(),
            reported_ms: NOW,
        };
        let (doc, change) = EventDoc::create(&author_of(&self.key), &new, NOW).unwrap();
        self.docs.insert(event, doc);
        self.sign(Body::EventChange(EventChange { event, change }))
    }

    fn edit(&mut self, n: u8, edit: EventEdit) -> SignedEntry {
        let event = EventId([n; 16]);
        let author = author_of(&self.key);
        let at = NOW + self.log.len() as u64 * 1_000;
        let change = self
            .docs
            .get_mut(&event)
            .unwrap()
            .edit(&author, &edit, at)
            .unwrap();
        self.sign(Body::EventChange(EventChange { event, change }))
    }

    fn attach(&mut self, n: u8) -> SignedEntry {
        self.sign(Body::MediaAttached(MediaAttached {
            event: EventId([n; 16]),
            hash: [n; 32],
            mime: MediaType::Jpeg,
            size: 1_000,
            name: "photo.jpg".into(),
        }))
    }
}

/// Stores `entries` and projects them (enqueueing their deliveries).
async fn apply(store: &PgStore, entries: &[SignedEntry]) {
    store.apply(verified(entries), NOW).await.unwrap();
    store.project_pending().await.unwrap();
}

/// Jitter from a fixed seed (xorshift), so every run draws the same.
fn seeded(mut state: u64) -> Random {
    Box::new(move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    })
}

fn worker(store: &PgStore, policy: Policy) -> Worker {
    Worker::new(store.clone(), policy)
        .unwrap()
        .with_random(seeded(0x5eed))
}

fn hex16(n: u8) -> String {
    hex::encode([n; 16])
}

#[tokio::test]
async fn deliveries_are_signed_and_only_changes_a_rule_matches_are_sent() {
    let (_db, store) = fresh_store().await;
    let receiver = Receiver::new("");
    let addr = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    let (fires, secret) = subscribe(
        &store,
        json!({"name": "fires here", "url": url(addr), "categories": ["fire"],
            "min_severity": 4, "area": [13.0, 52.0, 14.0, 53.0]}),
    )
    .await;
    assert_eq!(secret.len(), 64, "the hub makes a secret: {secret}");
    *receiver.secret.lock().unwrap() = secret.clone();
    // One receiver, one secret: the other subscriptions are given it.
    let (started, _) = subscribe(
        &store,
        json!({"name": "work started", "url": url(addr), "secret": secret,
            "status_from": "assigned", "status_to": "in_progress"}),
    )
    .await;
    let (photos, _) = subscribe(
        &store,
        json!({"name": "photos", "url": url(addr), "secret": secret,
            "kinds": ["media_attached"]}),
    )
    .await;

    let mut officer = Reporter::new(901);
    let reports = [
        officer.report(1, "fire", 5, 13.4, 52.5),
        officer.report(2, "flood", 5, 13.4, 52.5),
        officer.report(3, "fire", 3, 13.4, 52.5),
        officer.report(4, "fire", 5, 2.35, 48.85),
    ];
    apply(&store, &reports).await;
    assert_eq!(deliveries(&store, &fires).await.len(), 1);
    assert!(deliveries(&store, &started).await.is_empty());
    assert!(deliveries(&store, &photos).await.is_empty());

    // Assigned, then started: only the second is a change to in_progress.
    let assign = officer.edit(2, EventEdit::Assign("officer-1".into()));
    apply(&store, &[assign]).await;
    assert!(deliveries(&store, &started).await.is_empty());
    let start = officer.edit(2, EventEdit::Status(Status::InProgress));
    apply(&store, &[start]).await;
    assert_eq!(deliveries(&store, &started).await.len(), 1);
    // A photo on an event whose document does not change.
    let photo = officer.attach(3);
    apply(&store, &[photo]).await;
    assert_eq!(deliveries(&store, &photos).await.len(), 1);
    assert_eq!(
        deliveries(&store, &fires).await.len(),
        1,
        "flood and severity 3"
    );

    let now = system_ms();
    let step = worker(&store, Policy::default())
        .run_due(now)
        .await
        .unwrap();
    assert_eq!((step.claimed, step.delivered), (3, 3), "{step:?}");
    let got = receiver.got();
    assert_eq!(got.len(), 3);
    let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
    for r in &got {
        assert!(r.valid, "the receiver's own HMAC matches: {r:?}");
        assert_eq!(r.timestamp, (now / 1000).to_string());
        by_id.insert(r.id.clone(), serde_json::from_str(&r.body).unwrap());
    }
    let fire = &deliveries(&store, &fires).await[0];
    assert_eq!(fire["state"], "delivered", "{fire}");
    assert_eq!(
        (fire["attempts"].clone(), fire["last_status"].clone()),
        (json!(1), json!(200))
    );
    let body = &by_id[fire["id"].as_str().unwrap()];
    assert_eq!(body["type"], "event.created");
    assert_eq!(body["event"]["id"], hex16(1));
    assert_eq!(body["event"]["category"], "fire");
    assert_eq!(body["previous"], Value::Null);
    assert_eq!(body["delivery"], fire["id"]);
    let work = &deliveries(&store, &started).await[0];
    let body = &by_id[work["id"].as_str().unwrap()];
    assert_eq!(body["type"], "event.updated");
    assert_eq!(body["event"]["status"], "in_progress");
    assert_eq!(body["previous"]["status"], "assigned");
    let photo = &deliveries(&store, &photos).await[0];
    let body = &by_id[photo["id"].as_str().unwrap()];
    assert_eq!(body["entry_kinds"], json!(["media_attached"]));
    assert_eq!(body["event"]["id"], hex16(3));

    // The secret is never shown again.
    for uri in [
        "/api/v1/webhooks".to_owned(),
        format!("/api/v1/webhooks/{fires}"),
    ] {
        let (status, answer) = call(&store, "GET", &uri, None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!answer.to_string().contains(&secret), "{uri}: {answer}");
    }
}

#[tokio::test]
async fn a_receiver_down_for_an_hour_gets_every_delivery_once_it_is_back() {
    let (_db, store) = fresh_store().await;
    // An address nothing listens on (yet): connections are refused.
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let (hook, _) = subscribe(
        &store,
        json!({"name": "everything", "url": url(addr), "secret": SECRET}),
    )
    .await;
    let mut officer = Reporter::new(902);
    let reports: Vec<SignedEntry> = (1..=5)
        .map(|n| officer.report(n, "flood", 2, 13.0, 52.0))
        .collect();
    apply(&store, &reports).await;
    let ids: BTreeSet<String> = deliveries(&store, &hook)
        .await
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 5);

    let w = worker(&store, Policy::default());
    let start = system_ms();
    let mut now = start;
    let hour = 3_600_000;
    while now < start + hour {
        let step = w.run_due(now).await.unwrap();
        assert_eq!(step.delivered, 0);
        now += 30_000;
    }
    for d in deliveries(&store, &hook).await {
        assert_eq!(d["state"], "pending", "an hour is not the end: {d}");
        assert!(d["attempts"].as_u64().unwrap() >= 4, "retried: {d}");
        let error = d["last_error"].as_str().unwrap();
        assert!(error.contains("connect"), "{error}");
        assert!(d["next_attempt_ms"].as_u64().unwrap() > now - 30_000, "{d}");
    }

    // Back on the same address.
    let receiver = Receiver::new(SECRET);
    receiver.serve(addr).await;
    let mut delivered = 0;
    while delivered < 5 && now < start + 12 * hour {
        delivered += w.run_due(now).await.unwrap().delivered;
        now += 30_000;
    }
    assert_eq!(
        delivered, 5,
        "every delivery arrives once the receiver is back"
    );
    let got = receiver.got();
    let mut bodies: BTreeMap<String, String> = BTreeMap::new();
    for r in &got {
        assert!(r.valid, "{r:?}");
        // Deduplicable by its key: one id, one body, however often sent.
        let first = bodies.entry(r.id.clone()).or_insert_with(|| r.body.clone());
        assert_eq!(first, &r.body);
    }
    let seen: BTreeSet<String> = bodies.keys().cloned().collect();
    assert_eq!(seen, ids, "each delivery at least once, by its key");
    for d in deliveries(&store, &hook).await {
        assert_eq!(d["state"], "delivered", "{d}");
    }

    // Sent again (a replay), it carries the same key and body.
    let again = ids.iter().next().unwrap();
    let (status, replayed) = call(
        &store,
        "POST",
        &format!("/api/v1/webhook-deliveries/{again}/replay"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(w.run_due(now).await.unwrap().delivered, 1);
    let got = receiver.got();
    let last = got.last().unwrap();
    assert_eq!(&last.id, again);
    assert_eq!(&last.body, &bodies[again]);
}

#[tokio::test]
async fn after_max_attempts_a_delivery_is_dead_and_a_replay_delivers_it() {
    let (_db, store) = fresh_store().await;
    let receiver = Receiver::new(SECRET);
    receiver.answer.store(500, Ordering::SeqCst);
    let addr = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    let (hook, _) = subscribe(
        &store,
        json!({"name": "severe", "url": url(addr), "secret": SECRET, "min_severity": 4}),
    )
    .await;
    let mut officer = Reporter::new(903);
    apply(&store, &[officer.report(7, "fire", 4, 10.0, 10.0)]).await;
    let w = worker(
        &store,
        Policy {
            max_attempts: 3,
            ..Policy::default()
        },
    );
    let mut now = system_ms();
    let steps: Vec<_> = {
        let mut steps = Vec::new();
        for _ in 0..4 {
            steps.push(w.run_due(now).await.unwrap());
            now += 7 * 3_600_000; // past the longest backoff
        }
        steps
    };
    assert_eq!(
        steps
            .iter()
            .map(|s| (s.retried, s.dead))
            .collect::<Vec<_>>(),
        [(1, 0), (1, 0), (0, 1), (0, 0)],
        "two retries, dead on the third failure, then left alone"
    );
    let dead = &deliveries(&store, &hook).await[0];
    assert_eq!(dead["state"], "dead", "{dead}");
    assert_eq!(dead["attempts"], 3);
    assert_eq!(dead["last_status"], 500);
    assert!(
        dead["last_error"].as_str().unwrap().starts_with("HTTP 500"),
        "{dead}"
    );
    assert_eq!(dead["next_attempt_ms"], Value::Null);
    let (_, only_dead) = call(
        &store,
        "GET",
        &format!("/api/v1/webhooks/{hook}/deliveries?state=dead&limit=10"),
        None,
    )
    .await;
    assert_eq!(only_dead["items"].as_array().unwrap().len(), 1);

    receiver.answer.store(204, Ordering::SeqCst);
    let id = dead["id"].as_str().unwrap();
    let (status, replayed) = call(
        &store,
        "POST",
        &format!("/api/v1/webhook-deliveries/{id}/replay"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(
        (replayed["state"].clone(), replayed["attempts"].clone()),
        (json!("pending"), json!(0))
    );
    assert_eq!(w.run_due(now).await.unwrap().delivered, 1);
    let done = &deliveries(&store, &hook).await[0];
    assert_eq!(
        (done["state"].clone(), done["last_status"].clone()),
        (json!("delivered"), json!(204))
    );
    let got = receiver.got();
    assert_eq!(got.len(), 4);
    assert!(got
        .iter()
        .all(|r| r.id == id && r.valid && r.body == got[0].body));

    let unknown = format!("/api/v1/webhook-deliveries/{}/replay", hex16(0xee));
    assert_eq!(
        call(&store, "POST", &unknown, None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_outbox_survives_a_restart_and_a_sender_that_died_mid_send() {
    let (db, store) = fresh_store().await;
    let receiver = Receiver::new(SECRET);
    let addr = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    subscribe(
        &store,
        json!({"name": "all", "url": url(addr), "secret": SECRET}),
    )
    .await;
    let mut officer = Reporter::new(904);
    apply(
        &store,
        &[
            officer.report(1, "fire", 3, 1.0, 1.0),
            officer.report(2, "fire", 3, 1.0, 1.0),
        ],
    )
    .await;
    // A worker claims both, then its hub dies before it sends or records.
    let now = system_ms();
    let claimed = store.claim_deliveries(now, 10, 120_000).await.unwrap();
    assert_eq!(claimed.len(), 2);
    drop(claimed);
    drop(store);

    // A new hub on the same database.
    let store = db.open_store().await.unwrap();
    let w = worker(&store, Policy::default());
    let step = w.run_due(now + 1_000).await.unwrap();
    assert_eq!(step.claimed, 0, "still leased to the dead worker");
    let step = w.run_due(now + 120_001).await.unwrap();
    assert_eq!(step.delivered, 2, "the lease ended: sent at least once");
    assert_eq!(receiver.got().len(), 2);
    assert_eq!(w.run_due(now + 999_999_999).await.unwrap().claimed, 0);
}

#[tokio::test]
async fn a_rebuild_of_the_views_announces_nothing_again() {
    let (_db, store) = fresh_store().await;
    let (hook, _) = subscribe(
        &store,
        json!({"name": "all", "url": "https://hooks.example.org/in", "secret": SECRET}),
    )
    .await;
    let mut officer = Reporter::new(905);
    apply(
        &store,
        &[
            officer.report(1, "fire", 3, 1.0, 1.0),
            officer.report(2, "fire", 3, 1.0, 1.0),
        ],
    )
    .await;
    assert_eq!(deliveries(&store, &hook).await.len(), 2);
    store.rebuild_views().await.unwrap();
    assert_eq!(deliveries(&store, &hook).await.len(), 2);
    let edit = officer.edit(1, EventEdit::Assign("officer-2".into()));
    apply(&store, &[edit]).await;
    let after = deliveries(&store, &hook).await;
    assert_eq!(after.len(), 3);
    let updated = after
        .iter()
        .filter(|d| d["type"] == "event.updated")
        .count();
    assert_eq!(updated, 1, "{after:?}");
}

#[tokio::test]
async fn bad_subscription_input_is_refused_naming_the_field_and_nothing_is_stored() {
    let (_db, store) = fresh_store().await;
    let url = "https://hooks.example.org/in";
    let cases = [
        (json!({"url": url}), "name"),
        (json!({"name": "", "url": url}), "name"),
        (json!({"name": 5, "url": url}), "name"),
        (json!({"name": "x"}), "url"),
        (json!({"name": "x", "url": "ftp://example.org/in"}), "url"),
        (
            json!({"name": "x", "url": "https://me:pw@example.org/"}),
            "url",
        ),
        (json!({"name": "x", "url": "not a url"}), "url"),
        (
            json!({"name": "x", "url": url, "secret": "short"}),
            "secret",
        ),
        (
            json!({"name": "x", "url": url, "enabled": "yes"}),
            "enabled",
        ),
        (
            json!({"name": "x", "url": url, "kinds": ["revocation"]}),
            "kinds",
        ),
        (
            json!({"name": "x", "url": url, "categories": [1]}),
            "categories",
        ),
        (
            json!({"name": "x", "url": url, "min_severity": 9}),
            "min_severity",
        ),
        (json!({"name": "x", "url": url, "area": [1, 2, 3]}), "area"),
        (
            json!({"name": "x", "url": url, "area": [0, 60, 1, 50]}),
            "area",
        ),
        (
            json!({"name": "x", "url": url, "status_to": "done"}),
            "status_to",
        ),
        (json!({"name": "x", "url": url, "colour": "red"}), "colour"),
    ];
    for (body, field) in cases {
        let (status, problem) = call(&store, "POST", "/api/v1/webhooks", Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    assert!(store.webhooks().await.unwrap().is_empty());

    let (id, _) = subscribe(&store, json!({"name": "kept", "url": url})).await;
    let (status, problem) = call(
        &store,
        "POST",
        "/api/v1/webhooks",
        Some(json!({"name": "kept", "url": url})),
    )
    .await;
    assert_eq!(
        (status, problem["field"].clone()),
        (StatusCode::CONFLICT, json!("name"))
    );
    let one = format!("/api/v1/webhooks/{id}");
    let (_, before) = call(&store, "GET", &one, None).await;
    for (body, field) in [
        (json!({"url": "gopher://example.org/"}), "url"),
        (json!({"min_severity": 0}), "min_severity"),
        (json!({"status_from": "gone"}), "status_from"),
    ] {
        let (status, problem) = call(&store, "PATCH", &one, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    let (_, after) = call(&store, "GET", &one, None).await;
    assert_eq!(before, after, "a refused change changes nothing");
    assert_eq!(store.webhooks().await.unwrap().len(), 1);

    // A good change, then the subscription and its deliveries gone.
    let (status, changed) = call(
        &store,
        "PATCH",
        &one,
        Some(json!({"enabled": false, "min_severity": 3, "area": [170, -10, -170, 10]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["enabled"], false);
    assert_eq!(changed["area"], json!([170.0, -10.0, -170.0, 10.0]));
    let (status, cleared) = call(&store, "PATCH", &one, Some(json!({"area": null}))).await;
    assert_eq!(
        (status, cleared["area"].clone()),
        (StatusCode::OK, Value::Null)
    );
    assert_eq!(cleared["min_severity"], 3);
    assert_eq!(
        call(&store, "DELETE", &one, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&store, "GET", &one, None).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(store.webhooks().await.unwrap().is_empty());
}
