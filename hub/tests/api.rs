//! The admin read API against a real PostgreSQL, through the router
//! (`tower::ServiceExt::oneshot`, no sockets): timeline order and keyset
//! pagination, event filters, detail with history and conflicts, GeoJSON
//! export, RFC 9457 problems for bad input, 404, readiness; and the
//! binary serving it next to sync (`serve --http`).

use std::collections::BTreeSet;

use axum::body::Body as HttpBody;
use axum::http::{header, Request, StatusCode};
use sentinel_certs::Ca;
use sentinel_hub::api::{router, PROBLEM_JSON};
use sentinel_hub::PgStore;
use sentinel_schema::{
    author_of, Body, DeviceRole, Entry, EventChange, EventDoc, EventEdit, EventId, Hlc,
    MediaAttached, MediaType, NewEvent, Point, SignedEntry, SigningKey, Status,
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
async fn get(store: &PgStore, uri: &str) -> (StatusCode, String, Value) {
    let response = router(store.clone())
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_is_in_hlc_order_and_pages_neither_repeat_nor_skip() {
    let (_db, store) = fresh_store().await;
    let (ka, kb, kc) = (key(301), key(302), key(303));
    let (a, b) = (author_of(&ka), author_of(&kb));
    let mut logs = (Vec::new(), Vec::new());
    for (i, e) in [ev(1), ev(2)].into_iter().enumerate() {
        let (_, c) = EventDoc::create(&a, &new_event("Flood", 13.4, 52.5, 3, NOW), NOW).unwrap();
        push(&mut logs.0, &ka, Hlc::new(NOW + i as u64, 0), change(e, c));
    }
    let (_, c) = EventDoc::create(&b, &new_event("Fire", 13.5, 52.6, 4, NOW), NOW).unwrap();
    push(&mut logs.1, &kb, Hlc::new(NOW, 0), change(ev(3), c));
    for i in 0..8u64 {
        // Same HLCs for both authors: ties broken by author.
        push(
            &mut logs.0,
            &ka,
            Hlc::new(NOW + 10 + i, 1),
            media(ev(1), i as u8),
        );
        push(
            &mut logs.1,
            &kb,
            Hlc::new(NOW + 10 + i, 1),
            media(ev(3), i as u8),
        );
    }
    push(&mut logs.1, &kb, Hlc::new(NOW + 5, 2), media(ev(3), 100));
    push(&mut logs.0, &ka, Hlc::new(NOW + 30, 0), media(ev(2), 101));
    // Sign B's cert with a real X.509 CA: its CN is the author name.
    let ca = Ca::create("Test CA", 0, 4_000_000_000_000, key(399)).unwrap();
    let cert = ca
        .issue(
            DeviceRole::Node,
            "officer-b",
            &kb.verifying_key(),
            1_000,
            3_000_000_000_000,
            NOW,
        )
        .unwrap();
    store
        .add_certificates(&[(b, cert.der().to_vec())], NOW)
        .await
        .unwrap();
    store.apply(verified(&logs.0), NOW).await.unwrap();
    store.apply(verified(&logs.1), NOW + 7).await.unwrap();
    store.project_pending().await.unwrap();
    let before: BTreeSet<String> = logs
        .0
        .iter()
        .chain(&logs.1)
        .map(|e| e.id().to_hex())
        .collect();
    assert_eq!(before.len(), 21);

    // A third author's entries arrive after the first page, later in HLC.
    let late: Vec<SignedEntry> = {
        let mut log = Vec::new();
        for i in 0..5u64 {
            push(
                &mut log,
                &kc,
                Hlc::new(NOW + 1_000 + i, 0),
                media(ev(1), 200 + i as u8),
            );
        }
        log
    };
    let late_ids: Vec<String> = late.iter().map(|e| e.id().to_hex()).collect();
    let items = walk(&store, "/api/v1/timeline", 3, || async {
        store.apply(verified(&late), NOW + 100).await.unwrap();
    })
    .await;
    let got = ids(&items);
    let unique: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(unique.len(), got.len(), "no item twice");
    assert_eq!(got.len(), 26, "every entry, the late ones too");
    assert!(before.is_subset(&unique), "nothing skipped");
    assert_eq!(
        &got[21..],
        &late_ids[..],
        "late entries sort last (newest HLC)"
    );
    let keys: Vec<_> = items.iter().map(order_key).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "HLC, then author, then seq");

    // Item fields.
    let first_b = items.iter().find(|i| i["author"] == b.to_hex()).unwrap();
    assert_eq!(first_b["author_name"], "officer-b");
    assert_eq!(first_b["kind"], "event_change");
    assert_eq!(first_b["verification"], "verified");
    assert_eq!(first_b["received_ms"], NOW + 7);
    assert_eq!(first_b["seq"], 1);
    assert_eq!(first_b["event"], ev(3).to_hex());
    let first_a = items.iter().find(|i| i["author"] == a.to_hex()).unwrap();
    assert!(first_a["author_name"].is_null(), "no certificate held");

    // Filters.
    let by_author = walk(
        &store,
        &format!("/api/v1/timeline?author={}", b.to_hex()),
        4,
        || async {},
    )
    .await;
    assert_eq!(by_author.len(), 10);
    assert!(by_author.iter().all(|i| i["author"] == b.to_hex()));
    let by_event = ok(
        &store,
        &format!("/api/v1/timeline?event={}", ev(2).to_hex()),
    )
    .await;
    assert_eq!(by_event["items"].as_array().unwrap().len(), 2);
    let changes = ok(&store, "/api/v1/timeline?kind=event_change").await;
    assert_eq!(changes["items"].as_array().unwrap().len(), 3);
    assert!(changes["next"].is_null());
    let window = ok(
        &store,
        &format!("/api/v1/timeline?from={}&to={}", NOW + 10, NOW + 12),
    )
    .await;
    let window = window["items"].as_array().unwrap();
    assert_eq!(window.len(), 4, "two ms, two authors, to exclusive");
    let combined = ok(
        &store,
        &format!(
            "/api/v1/timeline?author={}&kind=media_attached&from={}",
            a.to_hex(),
            NOW + 17
        ),
    )
    .await;
    assert_eq!(combined["items"].as_array().unwrap().len(), 2);
}

/// An event to seed: id byte, title, lon, lat, severity, reported_ms and
/// the status to move it to.
type Spec = (u8, &'static str, f64, f64, u8, u64, Option<Status>);

/// Seeds six events (two across the antimeridian) and projects them.
async fn seed_events(store: &PgStore) -> Vec<EventId> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_filter_by_box_distance_text_status_severity_and_page() {
    let (_db, store) = fresh_store().await;
    seed_events(&store).await;
    let h = |n: u8| ev(n).to_hex();

    // Newest report first, ties by id descending.
    let all = ok(&store, "/api/v1/events").await;
    assert_eq!(event_ids(&all), vec![h(6), h(5), h(4), h(3), h(2), h(1)]);
    let first = &all["items"][5];
    assert_eq!(first["title"], "Flooded underpass");
    assert_eq!(first["location"]["lon"], 13.405);
    assert_eq!(first["status"], "reported");
    assert!(first["conflicts"].is_object());

    // Keyset pagination, with a new event arriving mid-walk (newer: it
    // sorts before the cursor, so this walk does not see it; nothing of
    // the rest repeats or is skipped).
    let items = walk(&store, "/api/v1/events", 4, || async {
        let k = key(312);
        let (_, c) = EventDoc::create(
            &author_of(&k),
            &new_event("Late report", 10.0, 50.0, 2, NOW + 100),
            NOW + 100,
        )
        .unwrap();
        let e = sign(&k, None, Hlc::new(NOW + 100, 0), change(ev(9), c));
        store.apply(verified(&[e]), NOW).await.unwrap();
        store.project_pending().await.unwrap();
    })
    .await;
    assert_eq!(ids(&items), event_ids(&all));
    let with_late = walk(&store, "/api/v1/events", 2, || async {}).await;
    assert_eq!(with_late.len(), 7);
    assert_eq!(with_late[0]["id"], h(9));

    // Bounding box around Berlin.
    let berlin = ok(&store, "/api/v1/events?bbox=13.3,52.4,13.5,52.6").await;
    assert_eq!(event_ids(&berlin), vec![h(2), h(1)]);
    // Across the antimeridian.
    let pacific = ok(&store, "/api/v1/events?bbox=179,-18,-179,-16").await;
    assert_eq!(event_ids(&pacific), vec![h(6), h(5)]);
    // Near the Brandenburg Gate: within 2 km, then within 30 km.
    let near = ok(&store, "/api/v1/events?near=13.3777,52.5163&radius=2000").await;
    assert_eq!(event_ids(&near), vec![h(1)]);
    let wider = ok(&store, "/api/v1/events?near=13.3777,52.5163&radius=30000").await;
    assert_eq!(event_ids(&wider), vec![h(3), h(2), h(1)]);
    // Full text, stemmed, web-search syntax.
    let floods = ok(&store, "/api/v1/events?q=flood").await;
    assert_eq!(event_ids(&floods), vec![h(3), h(1)]);
    let not_potsdam = ok(&store, "/api/v1/events?q=flood%20-potsdam").await;
    assert_eq!(event_ids(&not_potsdam), vec![h(1)]);
    let fire_q = ok(&store, "/api/v1/events?q=%22bridge%20fire%22").await;
    assert_eq!(event_ids(&fire_q), vec![h(6)]);
    // Status, severity, category, reported window.
    let in_progress = ok(&store, "/api/v1/events?status=in_progress").await;
    assert_eq!(event_ids(&in_progress), vec![h(2)]);
    let severe = ok(&store, "/api/v1/events?min_severity=4&max_severity=4").await;
    assert_eq!(event_ids(&severe), vec![h(6), h(5)]);
    let fires = ok(&store, "/api/v1/events?category=fire").await;
    assert_eq!(event_ids(&fires), vec![h(6), h(5), h(2)]);
    let window = ok(
        &store,
        &format!("/api/v1/events?from={}&to={}", NOW + 10, NOW + 30),
    )
    .await;
    assert_eq!(event_ids(&window), vec![h(3), h(2)]);
    // Combined.
    let combined = ok(
        &store,
        "/api/v1/events?bbox=13,52,14,53&q=flood&max_severity=2",
    )
    .await;
    assert_eq!(event_ids(&combined), vec![h(3)]);
    let filtered_pages = walk(&store, "/api/v1/events?category=fire", 1, || async {}).await;
    assert_eq!(ids(&filtered_pages), vec![h(6), h(5), h(2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_detail_has_history_and_conflicts_of_concurrent_edits() {
    let (_db, store) = fresh_store().await;
    let (ka, kb) = (key(321), key(322));
    let (a, b) = (author_of(&ka), author_of(&kb));
    let event = ev(0x42);
    let (mut doc_a, c0) = EventDoc::create(
        &a,
        &new_event("Flooded underpass", 13.405, 52.52, 3, NOW),
        NOW,
    )
    .unwrap();
    let mut doc_b = EventDoc::from_changes(&[&c0]).unwrap();
    let c1 = doc_a
        .edit(&a, &EventEdit::Title("Flooded station".into()), NOW + 1_000)
        .unwrap();
    let c2 = doc_b
        .edit(&b, &EventEdit::Title("Flooded tunnel".into()), NOW + 1_000)
        .unwrap();
    let mut log_a = Vec::new();
    push(&mut log_a, &ka, Hlc::new(NOW, 0), change(event, c0));
    push(&mut log_a, &ka, Hlc::new(NOW + 1_000, 0), change(event, c1));
    let mut log_b = Vec::new();
    push(&mut log_b, &kb, Hlc::new(NOW + 1_000, 0), change(event, c2));
    push(&mut log_b, &kb, Hlc::new(NOW + 1_001, 0), media(event, 7));
    store.apply(verified(&log_b), NOW).await.unwrap();
    store.apply(verified(&log_a), NOW).await.unwrap();
    store.project_pending().await.unwrap();

    let detail = ok(&store, &format!("/api/v1/events/{}", event.to_hex())).await;
    assert_eq!(detail["id"], event.to_hex());
    assert_eq!(detail["n_media"], 1);
    assert_eq!(detail["created_by"], a.to_hex());
    let conflicts = detail["conflicts"].as_object().unwrap();
    let titles = conflicts["title"].as_array().unwrap();
    let mut titles: Vec<&str> = titles.iter().map(|t| t.as_str().unwrap()).collect();
    titles.sort();
    assert!(
        titles.contains(&"Flooded station") && titles.contains(&"Flooded tunnel"),
        "{conflicts:?}"
    );
    let history = detail["history"].as_array().unwrap();
    let expected: Vec<String> = [&log_a[0], &log_a[1], &log_b[0], &log_b[1]]
        .iter()
        .map(|e| e.id().to_hex())
        .collect();
    let mut tied = expected.clone();
    // Entries 1 and 2 share an HLC: ordered by author.
    if b.to_hex() < a.to_hex() {
        tied.swap(1, 2);
    }
    assert_eq!(ids(history), tied);
    assert_eq!(history[0]["kind"], "event_change");
    assert_eq!(history[3]["kind"], "media_attached");
    assert_eq!(history[0]["hlc"]["wall_ms"], NOW);

    // Upper-case hex is the same id; an unknown one is 404.
    let upper = ok(
        &store,
        &format!("/api/v1/events/{}", event.to_hex().to_uppercase()),
    )
    .await;
    assert_eq!(upper["id"], event.to_hex());
    let (status, content_type, body) =
        get(&store, &format!("/api/v1/events/{}", ev(0x43).to_hex())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(content_type, PROBLEM_JSON);
    assert_eq!(body["status"], 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_is_a_feature_collection_of_every_event() {
    let (_db, store) = fresh_store().await;
    // Empty first.
    let (status, content_type, empty) = get(&store, "/api/v1/export.geojson").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/geo+json");
    assert_eq!(empty["type"], "FeatureCollection");
    assert_eq!(empty["features"].as_array().unwrap().len(), 0);

    let seeded = seed_events(&store).await;
    let (_, _, fc) = get(&store, "/api/v1/export.geojson").await;
    assert_eq!(fc["type"], "FeatureCollection");
    let features = fc["features"].as_array().unwrap();
    assert_eq!(features.len(), seeded.len());
    let got: BTreeSet<String> = features
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    let want: BTreeSet<String> = seeded.iter().map(EventId::to_hex).collect();
    assert_eq!(got, want);
    for f in features {
        assert_eq!(f["type"], "Feature");
        assert_eq!(f["geometry"]["type"], "Point");
        let xy = f["geometry"]["coordinates"].as_array().unwrap();
        assert_eq!(xy.len(), 2);
        let (lon, lat) = (xy[0].as_f64().unwrap(), xy[1].as_f64().unwrap());
        assert!((-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat));
        assert!(f["properties"]["title"].is_string());
        assert!(f["properties"]["severity"].is_number());
    }
    let gate = features.iter().find(|f| f["id"] == ev(1).to_hex()).unwrap();
    assert_eq!(gate["geometry"]["coordinates"][0], 13.405);
    assert_eq!(gate["geometry"]["coordinates"][1], 52.52);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_400_problem_naming_the_field() {
    let (_db, store) = fresh_store().await;
    let cases: &[(&str, &str)] = &[
        ("/api/v1/timeline?author=zz", "author"),
        ("/api/v1/timeline?author=abcd", "author"),
        ("/api/v1/timeline?event=123", "event"),
        ("/api/v1/timeline?kind=gossip", "kind"),
        ("/api/v1/timeline?from=10&to=5", "from"),
        ("/api/v1/timeline?from=-1", "from"),
        ("/api/v1/timeline?to=soon", "to"),
        ("/api/v1/timeline?limit=0", "limit"),
        ("/api/v1/timeline?limit=501", "limit"),
        ("/api/v1/timeline?limit=ten", "limit"),
        ("/api/v1/timeline?after=nonsense", "after"),
        ("/api/v1/timeline?after=6869", "after"),
        ("/api/v1/timeline?sort=desc", "sort"),
        (
            "/api/v1/timeline?kind=event_change&kind=media_attached",
            "kind",
        ),
        ("/api/v1/events?bbox=1,2,3", "bbox"),
        ("/api/v1/events?bbox=0,0,NaN,1", "bbox"),
        ("/api/v1/events?bbox=0,0,inf,1", "bbox"),
        ("/api/v1/events?bbox=0,0,181,1", "bbox"),
        ("/api/v1/events?bbox=0,-91,1,1", "bbox"),
        ("/api/v1/events?bbox=0,10,1,5", "bbox"),
        ("/api/v1/events?bbox=a,b,c,d", "bbox"),
        ("/api/v1/events?near=13,52", "radius"),
        ("/api/v1/events?radius=100", "near"),
        ("/api/v1/events?near=13,95&radius=100", "near"),
        ("/api/v1/events?near=13,52&radius=-5", "radius"),
        ("/api/v1/events?near=13,52&radius=NaN", "radius"),
        ("/api/v1/events?near=13,52&radius=1e9", "radius"),
        ("/api/v1/events?q=", "q"),
        ("/api/v1/events?status=lost", "status"),
        ("/api/v1/events?min_severity=0", "min_severity"),
        ("/api/v1/events?max_severity=6", "max_severity"),
        (
            "/api/v1/events?min_severity=4&max_severity=2",
            "min_severity",
        ),
        ("/api/v1/events?from=30&to=20", "from"),
        ("/api/v1/events?limit=1000", "limit"),
        ("/api/v1/events?after=zz", "after"),
        ("/api/v1/events?author=00", "author"),
        ("/api/v1/events/not-hex", "id"),
        ("/api/v1/events/00", "id"),
        ("/api/v1/events/0000000000000000000000000000000?x=1", "x"),
        ("/api/v1/export.geojson?bbox=0,0,1,1", "bbox"),
    ];
    for (uri, field) in cases {
        let (status, content_type, body) = get(&store, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(content_type, PROBLEM_JSON, "{uri}");
        assert_eq!(body["status"], 400, "{uri}");
        assert_eq!(body["field"], *field, "{uri}: {body}");
        assert!(
            body["type"].is_string() && body["title"].is_string(),
            "{uri}"
        );
        assert!(body["detail"].is_string(), "{uri}");
    }
    // A cursor from one route is not one of the other.
    seed_events(&store).await;
    let page = ok(&store, "/api/v1/events?limit=1").await;
    let cursor = page["next"].as_str().unwrap();
    let (status, _, body) = get(&store, &format!("/api/v1/timeline?after={cursor}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let (_db, store) = fresh_store().await;
    let (status, _, body) = get(&store, "/healthz").await;
    assert_eq!((status, body), (StatusCode::OK, Value::from("ok")));
    let (status, _, _) = get(&store, "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = get(&store, "/api/v1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Kills the child process when dropped, so a failing test leaves none.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` over a real socket: the status line and the body.
fn http_get(addr: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or_default().to_owned();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `sentinel-hub serve --http` serves the API next to sync and prints its
/// address as the second line of output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_the_api_next_to_sync() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    use sentinel_certs::{Bundle, Password};
    use sentinel_hub::testing::TestDatabase;

    let db = TestDatabase::create().await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let year = 365 * 86_400_000;
    let ca = Ca::create("API CA", now - year, now + year, key(331)).unwrap();
    let hub = ca
        .enroll(
            DeviceRole::Hub,
            "hub-1",
            key(332),
            now - 1_000,
            now + year / 2,
            now,
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("hub.bundle");
    let password = "correct horse battery staple";
    Bundle::export(&bundle, &hub, &Password::new(password).unwrap()).unwrap();
    let mut child = Reap(
        Command::new(env!("CARGO_BIN_EXE_sentinel-hub"))
            .args(["serve", "--json", "--http", "127.0.0.1:0"])
            .env("DATABASE_URL", db.connection_string())
            .env("SENTINEL_BUNDLE", &bundle)
            .env("SENTINEL_BUNDLE_PASSWORD", password)
            .env("SENTINEL_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let (mut sync_line, mut http_line) = (String::new(), String::new());
    out.read_line(&mut sync_line).unwrap();
    out.read_line(&mut http_line).unwrap();
    let sync: Value = serde_json::from_str(&sync_line).unwrap();
    assert!(sync["listening"].is_string(), "{sync_line}");
    let http: Value = serde_json::from_str(&http_line).unwrap();
    let addr = http["http"].as_str().unwrap().to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");

    let (status, body) = http_get(&addr, "/readyz");
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, "ready");
    let (status, body) = http_get(&addr, "/api/v1/timeline?limit=2");
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        serde_json::json!({ "items": [], "next": null })
    );
    let (status, body) = http_get(&addr, "/api/v1/events?bbox=1");
    assert!(status.contains(" 400 "), "{status}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["field"],
        "bbox"
    );
}
