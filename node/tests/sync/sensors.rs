//! Readings relay like any entry, and only the receiver that takes a
//! reading from its sensor runs the rules on it: a node that gets the
//! readings by sync from another node raises nothing, while a node whose
//! sync peer is the sensor itself does.

use sentinel_node::sensors::Ingest;
use sentinel_schema::rules::config::parse_rules_toml;
use sentinel_schema::{verify_all, Body, Entry, Hlc, ReadingValue, SensorReading, SignedEntry};
use sentinel_sync::push;

use super::*;

const RULES: &str = r#"
window_s = 900
[[rule]]
id = "river-high"
severity = 4
kind = "water_gauge"
value = "level"
comparison = ">"
threshold = 3.5
"#;

/// A gauge's chain of readings, `levels` a minute apart, ending an hour
/// ago, at 13.4° E 52.5° N.
fn readings(sensor: &Enrollment, levels: &[f64]) -> Vec<SignedEntry> {
    let start = now_ms() - 60 * 60 * 1000;
    let mut out: Vec<SignedEntry> = Vec::new();
    for (i, level) in levels.iter().enumerate() {
        let measured_ms = start + i as u64 * 60_000;
        let e = Entry {
            author: sensor.identity.author,
            seq: i as u64 + 1,
            prev: out.last().map(SignedEntry::id),
            hlc: Hlc::new(measured_ms + 500, 0),
            actor: None,
            body: Body::SensorReading(SensorReading {
                kind: "water_gauge".into(),
                values: vec![ReadingValue {
                    name: "level".into(),
                    value: *level,
                    unit: "m".into(),
                }],
                location: Some(Point::new(13.4, 52.5).unwrap()),
                measured_ms,
            }),
        }
        .sign(&sensor.key)
        .unwrap();
        out.push(e);
    }
    out
}

fn with_rules(peer: &Peer) {
    peer.node
        .lock()
        .unwrap()
        .enable_rules(parse_rules_toml(RULES).unwrap())
        .unwrap();
}

/// (sensor alerts among the events, rows in `rule_events`, reading rows).
fn sensor_state(peer: &Peer) -> (i64, i64, i64) {
    let mut node = peer.node.lock().unwrap();
    node.catch_up_views().unwrap();
    let conn = node.store().conn();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    (
        count("SELECT count(*) FROM events WHERE category = 'sensor_alert'"),
        count("SELECT count(*) FROM rule_events"),
        count("SELECT count(*) FROM readings"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn relayed_readings_reach_the_other_node_but_raise_nothing_there() {
    let _t = timed("sensor_relay");
    let ca = deployment("Sentinel sensor CA", 120);
    let a = Peer::new(&ca, "node-a", 121);
    let b = Peer::new(&ca, "node-b", 122);
    with_rules(&a);
    with_rules(&b);
    let gauge = issue(&ca, DeviceRole::Sensor, "gauge-7", 123);

    // The gauge pushes to A (as the HTTP route does): A raises one event.
    let ingest = Ingest::for_node(&a.node.lock().unwrap(), ca.cert()).unwrap();
    let body = push::encode(Some(&gauge.cert_der), &readings(&gauge, &[3.0, 3.6, 3.7]));
    let ingested = ingest
        .receive(&mut a.node.lock().unwrap(), &body, now_ms())
        .unwrap();
    assert_eq!(ingested.report.n_stored, 3);
    assert_eq!(ingested.raised.len(), 1);
    assert_eq!(sensor_state(&a), (1, 1, 3));

    // B syncs with A: the readings and A's event arrive; B raises nothing.
    let server = Server::start(&a);
    let s = sync(&b, server.addr).await;
    assert!(s.caught_up, "{s:?}");
    assert_eq!(
        sensor_state(&b),
        (1, 0, 3),
        "B holds A's event and the readings"
    );
    let b_node = b.node.lock().unwrap();
    let alert_author: Vec<u8> = b_node
        .store()
        .conn()
        .query_row(
            "SELECT created_by FROM events WHERE category = 'sensor_alert'",
            [],
            |r| r.get::<_, String>(0),
        )
        .map(|hex| hex::decode(hex).unwrap())
        .unwrap();
    assert_eq!(alert_author, a.enrollment.identity.author.as_bytes());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sensor_that_syncs_directly_triggers_the_rules() {
    let _t = timed("sensor_direct_sync");
    let ca = deployment("Sentinel sensor CA", 130);
    let a = Peer::new(&ca, "node-a", 131);
    with_rules(&a);
    let gauge = issue(&ca, DeviceRole::Sensor, "gauge-8", 132);

    // The sensor's side of a session: a store holding its own readings and
    // its certificate (sent along with its entries).
    let dir = TempDir::new().unwrap();
    let mut own = Node::init(dir.path(), gauge.key.clone()).unwrap();
    let (good, bad) = verify_all(readings(&gauge, &[3.0, 3.9, 4.0, 4.2]));
    assert!(bad.is_empty());
    own.apply_remote(good, now_ms()).unwrap();
    own.store_mut()
        .add_certificates(vec![(gauge.identity.author, gauge.cert_der.clone())])
        .unwrap();
    let own = Arc::new(Mutex::new(own));
    let client =
        sentinel_certs::client_config(&gauge, &RevocationHandle::empty(), FreshnessPolicy::Lenient)
            .unwrap();
    let net = Net {
        server: sentinel_certs::server_config(
            &gauge,
            &RevocationHandle::empty(),
            FreshnessPolicy::Lenient,
        )
        .unwrap(),
        client,
        trust: Arc::new(CaTrust::new(gauge.ca.clone())),
        link_rate: None,
        enrollment: gauge.clone(),
        revocations: RevocationHandle::empty(),
    };

    let server = Server::start(&a);
    let s = timeout(HANG, net::sync_once(own, &net, server.addr, |_| {}))
        .await
        .expect("sync hung")
        .unwrap();
    assert!(s.caught_up, "{s:?}");
    eventually("A to raise the event", || sensor_state(&a) == (1, 1, 4)).await;
}
