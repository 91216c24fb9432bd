//! Sensor rules through the push route: a threshold crossing raises one
//! event per window, also across a restart of the node, at the reading's,
//! the rule's or the sensor's last location; a geofence fires on entering
//! whether the reading before came in the same push or an earlier one.

use std::path::Path;
use std::sync::{Arc, Mutex};

use sentinel_certs::testing::{now_ms, DAY};
use sentinel_certs::Ca;
use sentinel_http::testing::{self, Reply};
use sentinel_node::http::{router, ApiState};
use sentinel_node::node::{enroll, Node};
use sentinel_schema::rules::config::parse_rules_toml;
use sentinel_schema::{DeviceRole, PersonRole, SignedEntry, SigningKey};
use sentinel_sync::testing::key;
use tempfile::TempDir;

use super::sensors::{post, serve, Gauge, CBOR};

const MINUTE: u64 = 60 * 1000;

/// A fresh enrolled node in `dir` (as `init` then `enroll` leave it).
fn enrolled_node(dir: &Path, ca: &Ca) -> Node {
    let t = now_ms();
    Node::init(dir, SigningKey::from_bytes(&[9; 32])).unwrap();
    let e = ca
        .enroll(
            DeviceRole::Node,
            "node-r",
            key(910),
            t - DAY,
            t + 365 * DAY,
            t,
        )
        .unwrap();
    enroll(dir, &e).unwrap();
    Node::open(dir).unwrap()
}

const RULES: &str = r#"
window_s = 600
[[rule]]
id = "river-high"
severity = 4
kind = "water_gauge"
value = "level"
comparison = ">="
threshold = 3.5
unit = "m"
location = [10.0, 50.0]
[[rule]]
id = "river-low"
severity = 2
kind = "water_gauge"
value = "level"
comparison = "<="
threshold = 0.5
"#;

/// The events the rules raised: (title, actor, location).
fn alerts(node: &Arc<Mutex<Node>>) -> Vec<(String, String, f64, f64)> {
    let node = node.lock().unwrap();
    let mut stmt = node
        .store()
        .conn()
        .prepare(
            "SELECT e.title, en.actor, e.lon, e.lat FROM events e
             JOIN entries en ON en.event = e.event
             WHERE e.category = 'sensor_alert' ORDER BY e.reported_ms",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// `GET uri` on `node`'s API as a person with `role`.
async fn get_as(node: &Arc<Mutex<Node>>, role: PersonRole, uri: &str) -> Reply {
    let state = ApiState::new(node.clone())
        .unwrap()
        .map_api(|api| api.trusting("someone", role));
    testing::call(&router(state), "GET", uri, None, None).await
}

fn open_with_rules(dir: &Path) -> Arc<Mutex<Node>> {
    let mut node = Node::open(dir).unwrap();
    node.enable_rules(parse_rules_toml(RULES).unwrap()).unwrap();
    Arc::new(Mutex::new(node))
}

#[tokio::test]
async fn a_crossing_raises_one_event_per_window_across_restarts() {
    let t = now_ms();
    let ca = Ca::create("rules CA", t - 2 * DAY, t + 400 * DAY, key(911)).unwrap();
    let dir = TempDir::new().unwrap();
    drop(enrolled_node(dir.path(), &ca));
    let mut gauge = Gauge::new(&ca, DeviceRole::Sensor, "gauge-r", 912);
    let base = t - 60 * MINUTE;

    let node = open_with_rules(dir.path());
    let (addr, server) = serve(node.clone()).await;
    // Below, then three crossings within the window: one event, at the
    // reading's location.
    let batch = [
        gauge.reading(3.0, base, Some((13.4, 52.5))),
        gauge.reading(3.6, base + MINUTE, Some((13.41, 52.51))),
        gauge.reading(3.8, base + 2 * MINUTE, None),
    ];
    let (status, _) = post(addr, CBOR, &gauge.push(&batch)).await;
    assert_eq!(status, 200);
    let r = gauge.reading(3.9, base + 3 * MINUTE, None);
    assert_eq!(post(addr, CBOR, &gauge.push(&[r])).await.0, 200);
    let raised = alerts(&node);
    assert_eq!(raised.len(), 1, "{raised:?}");
    let (title, actor, lon, lat) = &raised[0];
    assert_eq!(title, "river-high: level 3.6 m >= 3.5");
    assert_eq!(actor, "rule:river-high");
    assert_eq!((*lon, *lat), (13.41, 52.51));
    let description: String = node
        .lock()
        .unwrap()
        .store()
        .conn()
        .query_row(
            "SELECT description FROM events WHERE category = 'sensor_alert'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        description.contains(&batch[1].id().to_hex()),
        "{description}"
    );
    assert!(description.contains("seq 2"), "{description}");

    // Restart inside the window: still one.
    server.abort();
    let _ = server.await;
    drop(node);
    let node = open_with_rules(dir.path());
    let (addr, _server) = serve(node.clone()).await;
    let r = gauge.reading(4.0, base + 5 * MINUTE, None);
    assert_eq!(post(addr, CBOR, &gauge.push(&[r])).await.0, 200);
    assert_eq!(alerts(&node).len(), 1);

    // After the window (10 minutes after the first crossing): a second,
    // at the rule's location (the reading has none).
    let r = gauge.reading(4.1, base + 11 * MINUTE, None);
    assert_eq!(post(addr, CBOR, &gauge.push(&[r])).await.0, 200);
    let raised = alerts(&node);
    assert_eq!(raised.len(), 2, "{raised:?}");
    assert_eq!((raised[1].2, raised[1].3), (10.0, 50.0));

    // A rule without a location, a reading without one: the event is at
    // the sensor's last known location.
    let r = gauge.reading(0.4, base + 12 * MINUTE, None);
    assert_eq!(post(addr, CBOR, &gauge.push(&[r])).await.0, 200);
    let raised = alerts(&node);
    assert_eq!(raised.len(), 3, "{raised:?}");
    assert_eq!(raised[2].0, "river-low: level 0.4 m <= 0.5");
    assert_eq!((raised[2].2, raised[2].3), (13.41, 52.51));

    // Replaying a crossing raises nothing: only stored entries count.
    let replay = gauge.push(&batch);
    assert_eq!(post(addr, CBOR, &replay).await.0, 200);
    assert_eq!(alerts(&node).len(), 3);

    // The rules that fired (`GET /api/v1/sensors/alerts`): per rule and
    // sensor the newest, newest first — river-high's second replaced its
    // first.
    let r = get_as(&node, PersonRole::Officer, "/api/v1/sensors/alerts").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", r.body);
    assert_eq!(items[0]["rule"], "river-low");
    assert_eq!(items[1]["rule"], "river-high");
    assert_eq!(items[1]["measured_ms"], base + 11 * MINUTE);
    for i in items {
        assert_eq!(i["sensor"], gauge.author().to_hex().as_str(), "{i}");
        assert_eq!(i["event"].as_str().unwrap().len(), 32, "{i}");
        assert_eq!(i["entry"].as_str().unwrap().len(), 64, "{i}");
        assert!(i["raised_ms"].as_u64().unwrap() >= t, "{i}");
    }
    assert!(items[0]["raised_ms"].as_u64() >= items[1]["raised_ms"].as_u64());
    let events: i64 = node
        .lock()
        .unwrap()
        .store()
        .conn()
        .query_row(
            "SELECT count(*) FROM events WHERE category = 'sensor_alert' AND hex(event) = upper(?1)",
            [items[0]["event"].as_str().unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(events, 1, "the listed event is the raised one");
    let r = get_as(
        &node,
        PersonRole::Admin,
        &format!(
            "/api/v1/sensors/alerts?sensor={}&limit=1",
            gauge.author().to_hex()
        ),
    )
    .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.body);
    assert_eq!(r.body["items"][0]["rule"], "river-low");
    let other = format!("/api/v1/sensors/alerts?sensor={}", "ab".repeat(32));
    let r = get_as(&node, PersonRole::Admin, &other).await;
    assert_eq!(r.body["items"], serde_json::json!([]));
    // The public may not; bad input names the parameter.
    let r = get_as(&node, PersonRole::Public, "/api/v1/sensors/alerts").await;
    assert_eq!(r.status, 403);
    for (uri, field) in [
        ("/api/v1/sensors/alerts?limit=0", "limit"),
        ("/api/v1/sensors/alerts?sensor=xyz", "sensor"),
        ("/api/v1/sensors/alerts?kind=water_gauge", "kind"),
    ] {
        let r = get_as(&node, PersonRole::Admin, uri).await;
        assert_eq!(r.status, 400, "{uri}");
        assert_eq!(r.body["field"], field, "{uri}: {}", r.body);
    }
}

#[tokio::test]
async fn a_geofence_fires_on_entering_whether_the_reading_before_came_in_the_same_push_or_not() {
    let t = now_ms();
    let ca = Ca::create("fence CA", t - 2 * DAY, t + 400 * DAY, key(921)).unwrap();
    let dir = TempDir::new().unwrap();
    drop(enrolled_node(dir.path(), &ca));
    let mut node = Node::open(dir.path()).unwrap();
    node.enable_rules(
        parse_rules_toml(
            "window_s = 1\n[[rule]]\nid = \"zone\"\nseverity = 3\n\
             geofence = [[10.0, 50.0], [10.1, 50.0], [10.1, 50.1], [10.0, 50.1]]\non = \"enter\"\n",
        )
        .unwrap(),
    )
    .unwrap();
    let node = Arc::new(Mutex::new(node));
    let (addr, _server) = serve(node.clone()).await;
    let mut tracker = Gauge::new(&ca, DeviceRole::Sensor, "tracker-1", 922);
    let base = t - 60 * MINUTE;
    let (outside, inside) = (Some((9.9, 50.05)), Some((10.05, 50.05)));
    let mut push = |level: f64, at: Vec<Option<(f64, f64)>>| {
        let batch: Vec<SignedEntry> = at
            .into_iter()
            .enumerate()
            .map(|(i, at)| {
                tracker.reading(
                    level + i as f64,
                    base + (level as u64 + i as u64) * MINUTE,
                    at,
                )
            })
            .collect();
        tracker.push(&batch)
    };
    // Outside; then inside in the next push (the reading before it is read
    // from the store): one event.
    assert_eq!(post(addr, CBOR, &push(0.0, vec![outside])).await.0, 200);
    assert_eq!(post(addr, CBOR, &push(1.0, vec![inside])).await.0, 200);
    assert_eq!(alerts(&node).len(), 1);
    // Still inside: nothing.
    assert_eq!(post(addr, CBOR, &push(2.0, vec![inside])).await.0, 200);
    assert_eq!(alerts(&node).len(), 1);
    // Out and in within one push: a second event, where it entered.
    assert_eq!(
        post(addr, CBOR, &push(3.0, vec![outside, inside])).await.0,
        200
    );
    let raised = alerts(&node);
    assert_eq!(raised.len(), 2, "{raised:?}");
    assert_eq!((raised[1].2, raised[1].3), (10.05, 50.05));
    assert!(
        raised[1].0.starts_with("zone: entered the geofence"),
        "{}",
        raised[1].0
    );
}
