//! Sensors on the hub, for real: a real PostgreSQL, real certificates from
//! a test CA, `POST /api/v1/sensors/entries` through the router, real QUIC
//! and real SpatiaLite nodes for what reaches the hub by sync. Every
//! refusal of issue 7 with nothing partial stored; readings queries and
//! downsampling; a threshold crossing raising exactly one event within the
//! window, also across a restart; readings and a node's rule event reaching
//! the hub by sync.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body as HttpBody;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use sentinel_certs::{Ca, Enrollment};
use sentinel_http::testing;
use sentinel_hub::api::{router, Api, ApiState, Feed, HubBackend};
use sentinel_hub::sensors::SensorRules;
use sentinel_hub::PgStore;
use sentinel_schema::rules::config::parse_rules_toml;
use sentinel_schema::rules::{Comparison, Condition, Rule, RuleSet, Threshold};
use sentinel_schema::{AuthorId, Body, DeviceRole, PersonRole, Point, Revocation, SignedEntry};
use sentinel_sync::ca_trust::CaTrust;
use sentinel_sync::push::{self, MAX_FUTURE_MS};
use sentinel_sync::testing::{sign_after, water_gauge};
use sentinel_sync::Revocations;
use serde_json::Value;

use crate::e2e::{deployment, issue, now_ms, sync, Hub, Peer};

/// A sensor: its enrollment, and the entries it signed so far.
struct Sensor {
    enrollment: Enrollment,
    log: Vec<SignedEntry>,
}

impl Sensor {
    fn new(ca: &Ca, name: &str, seed: u8) -> Sensor {
        Sensor {
            enrollment: issue(ca, DeviceRole::Sensor, name, seed),
            log: Vec::new(),
        }
    }

    fn author(&self) -> AuthorId {
        self.enrollment.identity.author
    }

    fn der(&self) -> &[u8] {
        &self.enrollment.cert_der
    }

    /// Signs the next reading (a water gauge's level, at a place or not).
    fn read(&mut self, level: f64, measured_ms: u64, at: Option<(f64, f64)>) -> SignedEntry {
        let e = sign_reading(&self.enrollment, self.log.last(), level, measured_ms, at);
        self.log.push(e.clone());
        e
    }
}

fn sign_reading(
    by: &Enrollment,
    prev: Option<&SignedEntry>,
    level: f64,
    measured_ms: u64,
    at: Option<(f64, f64)>,
) -> SignedEntry {
    // Signed when measured, or just after the previous entry if later.
    let wall_ms = measured_ms.max(prev.map_or(0, |p| p.entry().hlc.wall_ms + 1));
    let at = at.map(|(lon, lat)| Point::new(lon, lat).unwrap());
    sign_after(
        &by.key,
        prev,
        wall_ms,
        water_gauge(level, Some(3.7), at, measured_ms),
    )
}

fn batch(certificate: Option<&[u8]>, entries: &[SignedEntry]) -> Vec<u8> {
    push::encode(certificate, entries)
}

/// A hub with sensor pushes served, and its router (as an admin).
struct SensorHub {
    hub: Hub,
    /// Acts as a signed-in admin (the test hook).
    app: Router,
    /// Nobody signed in: how sensors call.
    anonymous: Router,
}

async fn start(ca: &Ca, rules: Option<(RuleSet, u64)>) -> SensorHub {
    let mut ingest = None;
    let hub = Hub::start_with(ca, 100, |net, own| {
        let mut sensors = net.sensor_ingest(own.store().clone());
        let mut net = net.with_own_chain(own.clone());
        if let Some((rules, window_ms)) = rules {
            // One rule state for HTTP pushes and sensors' own sync
            // sessions, as `sentinel-hub serve` wires it.
            let rules = tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(SensorRules::new(
                    rules,
                    window_ms,
                    BTreeMap::new(),
                    own,
                ))
            })
            .map(Arc::new)
            .unwrap();
            sensors = sensors.with_rules(rules.clone());
            net = net.with_sensor_rules(rules);
        }
        ingest = Some(sensors);
        net
    })
    .await;
    let ingest = ingest.unwrap();
    let backend =
        HubBackend::new(hub.store.clone(), Some(hub.own.author())).with_sensors(Arc::new(ingest));
    let anonymous = ApiState::with_api(
        Api::new(Arc::new(backend), Feed::new()),
        hub.store.clone(),
        Some(hub.own.clone()),
    );
    let admin = anonymous
        .clone()
        .map_api(|api| api.trusting("admin", PersonRole::Admin));
    SensorHub {
        app: router(admin),
        anonymous: router(anonymous),
        hub,
    }
}

impl SensorHub {
    async fn post(&self, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let req = Request::post("/api/v1/sensors/entries")
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_LENGTH, body.len())
            .body(HttpBody::from(body))
            .unwrap();
        let r = testing::send(&self.anonymous, req).await;
        (r.status, r.body)
    }

    async fn push(&self, body: Vec<u8>) -> (StatusCode, Value) {
        self.post("application/cbor", body).await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let r = testing::call(&self.app, "GET", uri, None, None).await;
        (r.status, r.body)
    }

    async fn ok(&self, uri: &str) -> Value {
        let (status, body) = self.get(uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        body
    }

    /// Projects until no entry with a view is left unprojected. The hub's
    /// own projector, woken by every push, runs beside the test: a
    /// `project_pending` call can return while that projector's chunk is
    /// still committing, so one call is not enough.
    async fn settle(&self) {
        for _ in 0..500 {
            self.hub.store.project_pending().await.unwrap();
            let client = self.hub.store.client().await.unwrap();
            let left: i64 = client
                .query_one(
                    "SELECT count(*) FROM entries WHERE NOT projected AND kind IN (1, 2, 3)",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if left == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the hub's views did not catch up within 5 s");
    }

    async fn n_entries(&self, author: &AuthorId) -> i64 {
        count(
            &self.hub.store,
            "SELECT count(*) FROM entries WHERE author = $1",
            author,
        )
        .await
    }

    /// Events the hub's rules raised (entries it signed as a rule).
    async fn n_rule_events(&self) -> i64 {
        count(
            &self.hub.store,
            "SELECT count(*) FROM entries WHERE author = $1 AND kind = 1 AND actor LIKE 'rule:%'",
            &self.hub.own.author(),
        )
        .await
    }
}

async fn count(store: &PgStore, sql: &str, author: &AuthorId) -> i64 {
    store
        .client()
        .await
        .unwrap()
        .query_one(sql, &[&author.0.as_slice()])
        .await
        .unwrap()
        .get(0)
}

/// `(status, code)` of a refusal.
fn refusal(answer: &(StatusCode, Value)) -> (u16, &str) {
    (
        answer.0.as_u16(),
        answer.1["code"].as_str().unwrap_or("(no code)"),
    )
}

fn level_rule(id: &str, above: f64) -> Rule {
    Rule {
        id: id.into(),
        severity: 4,
        condition: Condition::Threshold(Threshold {
            kind: "water_gauge".into(),
            value: "level".into(),
            unit: Some("m".into()),
            comparison: Comparison::Above,
            threshold: above,
        }),
    }
}

const BERLIN: Option<(f64, f64)> = Some((13.405, 52.52));

#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_of_a_push_stores_nothing_and_answers_its_code() {
    let ca = deployment("sensor refusals CA", 61);
    let h = start(&ca, None).await;
    let now = now_ms();
    let mut gauge = Sensor::new(&ca, "gauge-1", 62);
    let author = gauge.author();

    // Unknown key: no certificate held, none sent.
    let r1 = gauge.read(1.0, now - 5_000, BERLIN);
    let unknown = h.push(batch(None, std::slice::from_ref(&r1))).await;
    assert_eq!(refusal(&unknown), (403, "unknown_author"), "{}", unknown.1);
    assert_eq!(unknown.1["type"], "urn:sentinel:problem:push-refused");
    assert_eq!(unknown.1["index"], 0);
    assert_eq!(unknown.1["head_seq"], 0);

    // Stored with its certificate; the bare form next, without it.
    let (status, report) = h
        .push(batch(Some(gauge.der()), std::slice::from_ref(&r1)))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["n_stored"], 1);
    assert_eq!(report["author"], author.to_hex());
    let r2 = gauge.read(1.1, now - 4_000, BERLIN);
    let (status, report) = h.push(r2.as_bytes().to_vec()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["entries"][0]["outcome"], "stored");

    // Replay: 200, duplicate, nothing added.
    let (status, report) = h.push(batch(None, &[r1.clone(), r2.clone()])).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (report["n_stored"].as_u64(), report["n_duplicates"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(h.n_entries(&author).await, 2);

    // Every refusal below leaves the log as it is: the good entry before
    // the bad one in a batch is not stored either.
    let r3 = sign_reading(&gauge.enrollment, Some(&r2), 1.2, now - 3_000, BERLIN);

    // Forged signature.
    let r4 = sign_reading(&gauge.enrollment, Some(&r3), 1.3, now - 2_000, BERLIN);
    let mut forged = r4.as_bytes().to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let forged = SignedEntry::from_bytes(forged).unwrap();
    let a = h.push(batch(None, &[r3.clone(), forged])).await;
    assert_eq!(refusal(&a), (403, "bad_signature"), "{}", a.1);
    assert_eq!(
        (a.1["index"].as_u64(), a.1["seq"].as_u64()),
        (Some(1), Some(4))
    );
    assert_eq!(a.1["head_seq"], 2);

    // NaN: the entry does not decode. The value 1.3 (fb 3ff4cccccccccccd)
    // becomes a NaN in the signed bytes.
    let mut nan = r4.as_bytes().to_vec();
    let at = nan
        .windows(9)
        .position(|w| w == [0xfb, 0x3f, 0xf4, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcd])
        .unwrap();
    nan[at + 1..at + 9].copy_from_slice(&f64::NAN.to_be_bytes());
    let mut body = vec![0x82, 0xf6, 0x82];
    for e in [r3.as_bytes(), nan.as_slice()] {
        body.push(0x58);
        body.push(e.len() as u8);
        body.extend_from_slice(e);
    }
    let a = h.push(body).await;
    assert_eq!(refusal(&a), (400, "bad_entry"), "{}", a.1);
    assert_eq!(a.1["index"], 1);

    // Far future: measured an hour ahead.
    let future = sign_reading(
        &gauge.enrollment,
        Some(&r3),
        1.3,
        now + MAX_FUTURE_MS + 3_600_000,
        BERLIN,
    );
    let a = h.push(batch(None, &[r3.clone(), future])).await;
    assert_eq!(a.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.1);
    assert!(
        ["future_measurement", "future_clock"].contains(&refusal(&a).1),
        "{}",
        a.1
    );

    // Malformed CBOR, the wrong content type, an oversized body.
    let a = h.push(vec![0x82, 0xf6, 0x9f, 0xff]).await;
    assert_eq!(refusal(&a), (400, "malformed"), "{}", a.1);
    let a = h.push(b"not cbor at all".to_vec()).await;
    assert_eq!(refusal(&a), (400, "malformed"), "{}", a.1);
    let a = h
        .post("application/json", batch(None, std::slice::from_ref(&r3)))
        .await;
    assert_eq!(refusal(&a), (415, "unsupported_media_type"), "{}", a.1);
    let a = h.push(vec![0u8; push::MAX_PUSH_BYTES + 1]).await;
    assert_eq!(refusal(&a), (413, "too_large"), "{}", a.1);

    // Wrong role: a node's key may not push readings.
    let node = issue(&ca, DeviceRole::Node, "node-9", 63);
    let by_node = sign_reading(&node, None, 1.0, now - 1_000, BERLIN);
    let a = h.push(batch(Some(&node.cert_der), &[by_node])).await;
    assert_eq!(refusal(&a), (403, "role_not_allowed"), "{}", a.1);
    assert_eq!(h.n_entries(&node.identity.author).await, 0);

    // A certificate from another CA.
    let other = deployment("another CA", 64);
    let stranger = issue(&other, DeviceRole::Sensor, "gauge-x", 65);
    let by_stranger = sign_reading(&stranger, None, 1.0, now - 1_000, BERLIN);
    let a = h
        .push(batch(Some(&stranger.cert_der), &[by_stranger]))
        .await;
    assert_eq!(refusal(&a), (403, "bad_certificate"), "{}", a.1);

    assert_eq!(h.n_entries(&author).await, 2);

    // Fork: another entry at seq 2. Refused, kept as evidence, shown.
    let other_r2 = sign_reading(&gauge.enrollment, Some(&r1), 9.9, now - 3_500, BERLIN);
    let a = h.push(batch(None, std::slice::from_ref(&other_r2))).await;
    assert_eq!(refusal(&a), (409, "fork"), "{}", a.1);
    assert_eq!(a.1["seq"], 2);
    assert_eq!(h.n_entries(&author).await, 2);
    assert_eq!(
        count(
            &h.hub.store,
            "SELECT count(*) FROM forks WHERE author = $1",
            &author
        )
        .await,
        1
    );
    h.settle().await;
    let sensors = h.ok("/api/v1/sensors").await;
    let item = &sensors["items"][0];
    assert_eq!(item["sensor"], author.to_hex(), "{sensors}");
    assert_eq!(item["forks"], 1, "{sensors}");
    assert_eq!(item["name"], "gauge-1");
    assert_eq!(item["n_readings"], 2);
    assert_eq!(item["kinds"], serde_json::json!(["water_gauge"]));

    // Revoked: after seq 2 nothing more of it is taken.
    let mut revoked = Sensor::new(&ca, "gauge-2", 66);
    let first = revoked.read(1.0, now - 2_000, None);
    let (status, _) = h.push(batch(Some(revoked.der()), &[first])).await;
    assert_eq!(status, StatusCode::OK);
    h.hub
        .own
        .append(
            vec![Body::Revocation(Revocation {
                key: revoked.author(),
                last_valid_seq: 1,
                reason: "stolen".into(),
            })],
            Some("boss"),
            now_ms(),
        )
        .await
        .unwrap();
    let second = revoked.read(1.1, now - 1_000, None);
    let a = h.push(batch(None, &[second])).await;
    assert_eq!(refusal(&a), (403, "revoked"), "{}", a.1);
    assert_eq!(h.n_entries(&revoked.author()).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn readings_are_queried_by_sensor_kind_time_and_area_and_downsampled() {
    let ca = deployment("sensor readings CA", 71);
    let h = start(&ca, None).await;
    let base = (now_ms() / 60_000 - 100) * 60_000;
    let mut berlin = Sensor::new(&ca, "gauge-berlin", 72);
    let mut paris = Sensor::new(&ca, "gauge-paris", 73);
    // Ten readings each, one every 10 s: levels 0..9 and 100..109.
    let b: Vec<SignedEntry> = (0..10u32)
        .map(|i| berlin.read(f64::from(i), base + u64::from(i) * 10_000, BERLIN))
        .collect();
    let p: Vec<SignedEntry> = (0..10u32)
        .map(|i| {
            paris.read(
                100.0 + f64::from(i),
                base + u64::from(i) * 10_000 + 5_000,
                Some((2.35, 48.85)),
            )
        })
        .collect();
    assert_eq!(
        h.push(batch(Some(berlin.der()), &b)).await.0,
        StatusCode::OK
    );
    assert_eq!(h.push(batch(Some(paris.der()), &p)).await.0, StatusCode::OK);
    h.settle().await;

    // Raw, by sensor and name, paged ascending by measured time.
    let uri = format!(
        "/api/v1/sensors/readings?sensor={}&name=level",
        berlin.author()
    );
    let mut items = Vec::new();
    let mut page = h.ok(&format!("{uri}&limit=3")).await;
    loop {
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        let Some(next) = page["next"].as_str() else {
            break;
        };
        page = h.ok(&format!("{uri}&limit=3&after={next}")).await;
    }
    let levels: Vec<f64> = items.iter().map(|i| i["value"].as_f64().unwrap()).collect();
    assert_eq!(levels, (0..10).map(f64::from).collect::<Vec<_>>());
    assert_eq!(items[0]["unit"], "m");
    assert_eq!(items[0]["seq"], 1);
    assert_eq!(items[0]["location"]["lon"], 13.405);
    assert_eq!(items[0]["entry"], b[0].id().to_hex());

    // Both sensors by kind, in time order, interleaved; a time range.
    let all = h
        .ok("/api/v1/sensors/readings?kind=water_gauge&name=level&limit=500")
        .await;
    let values: Vec<f64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values[..4], [0.0, 100.0, 1.0, 101.0]);
    assert_eq!(values.len(), 20);
    let ranged = h
        .ok(&format!(
            "/api/v1/sensors/readings?name=level&from={}&to={}",
            base + 20_000,
            base + 40_000
        ))
        .await;
    let values: Vec<f64> = ranged["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [2.0, 102.0, 3.0, 103.0]);

    // By area: only Paris.
    let paris_only = h
        .ok("/api/v1/sensors/readings?bbox=2,48,3,49&name=level&limit=500")
        .await;
    let items = paris_only["items"].as_array().unwrap();
    assert_eq!(items.len(), 10);
    assert!(items.iter().all(|i| i["sensor"] == paris.author().to_hex()));

    // Downsampled: Berlin's levels in buckets of 30 s.
    let down = h.ok(&format!("{uri}&bucket_ms=30000&from={base}")).await;
    let buckets = down["buckets"].as_array().unwrap();
    assert_eq!(down["bucket_ms"], 30_000);
    assert_eq!(buckets.len(), 4, "{down}");
    let first = &buckets[0];
    assert_eq!(first["start_ms"], base);
    assert_eq!(
        (
            first["min"].as_f64(),
            first["max"].as_f64(),
            first["avg"].as_f64(),
            first["count"].as_i64()
        ),
        (Some(0.0), Some(2.0), Some(1.0), Some(3))
    );
    let last = &buckets[3];
    assert_eq!(
        (last["min"].as_f64(), last["count"].as_i64()),
        (Some(9.0), Some(1))
    );
    // Per name and unit: battery and level apart.
    let both = h
        .ok(&format!(
            "/api/v1/sensors/readings?sensor={}&bucket_ms=1000000",
            berlin.author()
        ))
        .await;
    let names: Vec<&str> = both["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"battery") && names.contains(&"level"),
        "{both}"
    );

    // Bad parameters, each named.
    let sensor = berlin.author().to_hex();
    for (query, field) in [
        ("sensor=abc".to_owned(), "sensor"),
        ("limit=0".to_owned(), "limit"),
        ("limit=501".to_owned(), "limit"),
        ("from=5&to=4".to_owned(), "from"),
        ("from=-1".to_owned(), "from"),
        ("bbox=1,2,3".to_owned(), "bbox"),
        ("bbox=0,50,1,40".to_owned(), "bbox"),
        ("bbox=0,0,200,1".to_owned(), "bbox"),
        ("after=zz".to_owned(), "after"),
        ("kind=".to_owned(), "kind"),
        ("bucket_ms=999&kind=water_gauge".to_owned(), "bucket_ms"),
        ("bucket_ms=x&kind=water_gauge".to_owned(), "bucket_ms"),
        ("bucket_ms=60000".to_owned(), "bucket_ms"),
        (
            format!("bucket_ms=1000&sensor={sensor}&from=0&to=100000000"),
            "bucket_ms",
        ),
        (format!("bucket_ms=60000&sensor={sensor}&limit=5"), "limit"),
        ("nope=1".to_owned(), "nope"),
        ("kind=a&kind=b".to_owned(), "kind"),
    ] {
        let (status, problem) = h.get(&format!("/api/v1/sensors/readings?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {problem}");
        assert_eq!(problem["field"], field, "{query}: {problem}");
    }
    // Reading needs a signed-in officer or admin.
    let r = testing::call(&h.anonymous, "GET", "/api/v1/sensors", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let (status, problem) = h.get("/api/v1/sensors?x=1").await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("x"))
    );

    // The view is rebuilt from the log.
    h.hub.store.rebuild_views().await.unwrap();
    let again = h
        .ok("/api/v1/sensors/readings?kind=water_gauge&name=level&limit=500")
        .await;
    assert_eq!(again["items"], all["items"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_threshold_crossing_raises_exactly_one_event_within_the_window() {
    let ca = deployment("sensor rules CA", 81);
    let window_ms = 10 * 60_000;
    let rules = RuleSet::new(vec![level_rule("river-high", 3.5)]).unwrap();
    let h = start(&ca, Some((rules.clone(), window_ms))).await;
    let base = now_ms() - 60 * 60_000;
    let mut gauge = Sensor::new(&ca, "gauge-river", 82);
    // Below, then above three times within the window, in two pushes.
    let first: Vec<SignedEntry> = [2.0, 3.6, 3.8]
        .iter()
        .enumerate()
        .map(|(i, l)| gauge.read(*l, base + i as u64 * 60_000, BERLIN))
        .collect();
    assert_eq!(
        h.push(batch(Some(gauge.der()), &first)).await.0,
        StatusCode::OK
    );
    let more = gauge.read(4.0, base + 3 * 60_000, BERLIN);
    assert_eq!(h.push(batch(None, &[more])).await.0, StatusCode::OK);
    assert_eq!(h.n_rule_events().await, 1);

    // The event: the hub's, category sensor_alert, severity 4, where the
    // reading was, naming it.
    h.settle().await;
    let events = h.ok("/api/v1/events?category=sensor_alert").await;
    let items = events["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{events}");
    let e = h
        .ok(&format!(
            "/api/v1/events/{}",
            items[0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(e["severity"], 4);
    // Signed by the hub, for the rule.
    assert_eq!(e["reported_by"], "rule:river-high");
    assert_eq!(e["history"][0]["author"], h.hub.own.author().to_hex());
    assert_eq!(e["history"][0]["local"], true);
    assert_eq!(e["location"]["lon"], 13.405);
    assert!(e["title"].as_str().unwrap().contains("river-high"), "{e}");
    let description = e["description"].as_str().unwrap();
    assert!(
        description.contains(&first[1].id().to_hex())
            && description.contains(&gauge.author().to_hex()),
        "{description}"
    );
    let timeline = h.ok("/api/v1/timeline?kind=event_change").await;
    assert_eq!(timeline["items"][0]["actor"], "rule:river-high");

    // A restart inside the window raises nothing new; past it, one more.
    let restarted = SensorRules::new(rules, window_ms, BTreeMap::new(), h.hub.own.clone())
        .await
        .unwrap();
    let again = gauge.read(4.1, base + 5 * 60_000, BERLIN);
    let raised = restarted.evaluate(&[again], now_ms()).await;
    assert!(raised.is_empty(), "{raised:?}");
    let later = gauge.read(4.2, base + 1 + 60 * 60_000 / 4, BERLIN);
    let raised = restarted.evaluate(&[later], now_ms()).await;
    assert_eq!(raised.len(), 1);
    assert_eq!(h.n_rule_events().await, 2);

    // Readings relayed by a node raise nothing on the hub: only pushes do.
    let peer = Peer::new(&ca, "node-r", 83);
    // (The hub never stored `again` and `later`: the node brings them.)
    gauge.read(9.0, base + 40 * 60_000, BERLIN);
    push::receive(
        &mut *peer.node.lock().unwrap(),
        &CaTrust::new(ca.cert().clone()),
        &Revocations::default(),
        now_ms(),
        MAX_FUTURE_MS,
        &batch(Some(gauge.der()), &gauge.log),
    )
    .unwrap();
    let s = sync(&peer, &h.hub).await;
    assert!(s.caught_up, "{s:?}");
    assert_eq!(h.n_entries(&gauge.author()).await, 7);
    assert_eq!(h.n_rule_events().await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn readings_and_a_rule_event_from_a_node_reach_the_hub_by_sync() {
    let ca = deployment("sensor relay CA", 91);
    let h = start(&ca, None).await;
    let peer = Peer::new(&ca, "node-s", 92);
    let rules = parse_rules_toml(
        "window_s = 600\n[[rule]]\nid = \"levee\"\nseverity = 5\nkind = \"water_gauge\"\n\
         value = \"level\"\ncomparison = \">\"\nthreshold = 3.5\n",
    )
    .unwrap();
    peer.node.lock().unwrap().enable_rules(rules).unwrap();
    let mut gauge = Sensor::new(&ca, "gauge-levee", 93);
    let base = now_ms() - 10 * 60_000;
    let readings: Vec<SignedEntry> = [1.0, 2.0, 3.9, 4.0]
        .iter()
        .enumerate()
        .map(|(i, l)| gauge.read(*l, base + i as u64 * 1_000, BERLIN))
        .collect();
    let raised = {
        let mut node = peer.node.lock().unwrap();
        let accepted = push::receive(
            &mut *node,
            &CaTrust::new(ca.cert().clone()),
            &Revocations::default(),
            now_ms(),
            MAX_FUTURE_MS,
            &batch(Some(gauge.der()), &readings),
        )
        .unwrap();
        node.raise_from_readings(&accepted.stored, now_ms())
            .unwrap()
    };
    assert_eq!(raised.len(), 1, "one event within the window");

    let s = sync(&peer, &h.hub).await;
    assert!(s.caught_up, "{s:?}");
    h.settle().await;
    let got = h
        .ok(&format!(
            "/api/v1/sensors/readings?sensor={}&name=level",
            gauge.author()
        ))
        .await;
    let levels: Vec<f64> = got["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_f64().unwrap())
        .collect();
    assert_eq!(levels, [1.0, 2.0, 3.9, 4.0]);
    let store = h.hub.store.clone();
    let event = raised[0].event.clone();
    let mut found = false;
    for _ in 0..50 {
        store.project_pending().await.unwrap();
        let (status, e) = h.get(&format!("/api/v1/events/{event}")).await;
        if status == StatusCode::OK {
            assert_eq!(e["category"], "sensor_alert");
            assert_eq!(e["severity"], 5);
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(found, "the node's rule event reached the hub");
    // The hub raised nothing itself.
    assert_eq!(h.n_rule_events().await, 0);
}

/// A sensor that syncs with the hub itself, over QUIC with its own
/// certificate, has its readings through the rules as a pushing one does,
/// sharing the de-duplication window with its pushes.
#[tokio::test(flavor = "multi_thread")]
async fn a_sensor_that_syncs_directly_triggers_the_rules() {
    use sentinel_certs::{FreshnessPolicy, RevocationHandle};
    use sentinel_node::net::{self, Net};
    use sentinel_node::node::Node;
    use sentinel_schema::verify_all;
    use sentinel_sync::SyncStore;
    use std::sync::Mutex;

    let ca = deployment("sensor direct sync CA", 95);
    // river-extreme fires only on the marker reading at the end.
    let rules = RuleSet::new(vec![
        level_rule("river-high", 3.5),
        level_rule("river-extreme", 5.0),
    ])
    .unwrap();
    let h = start(&ca, Some((rules, 10 * 60_000))).await;
    let base = now_ms() - 60 * 60_000;
    let mut gauge = Sensor::new(&ca, "gauge-quic", 96);
    for (i, level) in [3.0, 3.9, 4.0, 4.2].iter().enumerate() {
        gauge.read(*level, base + i as u64 * 60_000, BERLIN);
    }

    // The sensor's side: a store holding its readings and its certificate.
    let dir = tempfile::TempDir::new().unwrap();
    let mut own = Node::init(dir.path(), gauge.enrollment.key.clone()).unwrap();
    let (good, bad) = verify_all(gauge.log.clone());
    assert!(bad.is_empty());
    own.apply_remote(good, now_ms()).unwrap();
    own.store_mut()
        .add_certificates(vec![(gauge.author(), gauge.der().to_vec())])
        .unwrap();
    let revocations = RevocationHandle::empty();
    let net = Net {
        server: sentinel_certs::server_config(
            &gauge.enrollment,
            &revocations,
            FreshnessPolicy::Lenient,
        )
        .unwrap(),
        client: sentinel_certs::client_config(
            &gauge.enrollment,
            &revocations,
            FreshnessPolicy::Lenient,
        )
        .unwrap(),
        trust: Arc::new(CaTrust::new(gauge.enrollment.ca.clone())),
        enrollment: gauge.enrollment.clone(),
        revocations,
        link_rate: None,
    };
    let own = Arc::new(Mutex::new(own));
    let s = net::sync_once(own.clone(), &net, h.hub.addr(), |_| {})
        .await
        .unwrap();
    assert!(s.caught_up, "{s:?}");
    assert_eq!(h.n_entries(&gauge.author()).await, 4);
    // The rules run in a task after each applied batch.
    for _ in 0..200 {
        if h.n_rule_events().await == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(h.n_rule_events().await, 1);

    // A push inside the window, and another session with nothing new,
    // raise nothing more.
    let more = gauge.read(4.5, base + 5 * 60_000, BERLIN);
    assert_eq!(
        h.push(batch(None, std::slice::from_ref(&more))).await.0,
        StatusCode::OK
    );
    let s = net::sync_once(own.clone(), &net, h.hub.addr(), |_| {})
        .await
        .unwrap();
    assert!(s.caught_up, "{s:?}");
    // "Nothing more" is read after a marker, not after a while: a third
    // session brings a reading that only river-extreme fires on. A
    // session's readings are judged in a task that takes the sensor's
    // lock and judges what the hub stored after the last reading judged,
    // in order; so once the marker's event is there, the pushed reading
    // (which the session before re-read) has been judged too, whichever
    // task got the lock first.
    let marker = gauge.read(5.5, base + 6 * 60_000, BERLIN);
    let (good, bad) = verify_all(vec![more, marker]);
    assert!(bad.is_empty());
    own.lock().unwrap().apply_remote(good, now_ms()).unwrap();
    let s = net::sync_once(own, &net, h.hub.addr(), |_| {})
        .await
        .unwrap();
    assert!(s.caught_up, "{s:?}");
    let by_rule = |rule: &'static str| {
        let h = &h;
        async move {
            count(
                &h.hub.store,
                &format!(
                    "SELECT count(*) FROM entries WHERE author = $1 AND kind = 1 \
                     AND actor = 'rule:{rule}'"
                ),
                &h.hub.own.author(),
            )
            .await
        }
    };
    for _ in 0..200 {
        if by_rule("river-extreme").await == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(by_rule("river-extreme").await, 1, "the marker's event");
    assert_eq!(by_rule("river-high").await, 1);
    assert_eq!(h.n_rule_events().await, 2);
}

/// `GET /api/v1/sensors/alerts`: per rule and sensor the newest event the
/// hub's rules raised, newest first, with the sensors routes' access.
#[tokio::test(flavor = "multi_thread")]
async fn the_rules_that_fired_are_listed_newest_first() {
    let ca = deployment("sensor alerts CA", 84);
    let rules = RuleSet::new(vec![
        level_rule("river-high", 3.5),
        level_rule("river-very-high", 4.5),
    ])
    .unwrap();
    let h = start(&ca, Some((rules, 10 * 60_000))).await;
    assert_eq!(
        h.ok("/api/v1/sensors/alerts").await,
        serde_json::json!({"items": []})
    );
    let base = now_ms() - 60 * 60_000;
    let mut a = Sensor::new(&ca, "gauge-a", 85);
    let mut b = Sensor::new(&ca, "gauge-b", 86);
    let first: Vec<SignedEntry> = [2.0, 3.6, 4.8]
        .iter()
        .enumerate()
        .map(|(i, l)| a.read(*l, base + i as u64 * 60_000, BERLIN))
        .collect();
    assert_eq!(h.push(batch(Some(a.der()), &first)).await.0, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let from_b = b.read(3.7, base, BERLIN);
    assert_eq!(
        h.push(batch(Some(b.der()), std::slice::from_ref(&from_b)))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(h.n_rule_events().await, 3);

    let body = h.ok("/api/v1/sensors/alerts").await;
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{body}");
    // Newest first: b's, then a's two.
    assert_eq!(items[0]["sensor"], b.author().to_hex().as_str());
    assert_eq!(items[0]["rule"], "river-high");
    assert_eq!(items[0]["reading"], from_b.id().to_hex().as_str());
    assert_eq!(items[0]["measured_ms"], base);
    let mut a_rules: Vec<(&str, &str)> = items[1..]
        .iter()
        .map(|i| {
            assert_eq!(i["sensor"], a.author().to_hex().as_str(), "{i}");
            (i["rule"].as_str().unwrap(), i["reading"].as_str().unwrap())
        })
        .collect();
    a_rules.sort();
    let (high, very) = (first[1].id().to_hex(), first[2].id().to_hex());
    assert_eq!(
        a_rules,
        vec![
            ("river-high", high.as_str()),
            ("river-very-high", very.as_str())
        ]
    );
    let raised: Vec<u64> = items
        .iter()
        .map(|i| i["raised_ms"].as_u64().unwrap())
        .collect();
    assert!(raised.windows(2).all(|w| w[0] >= w[1]), "{raised:?}");
    // Each names the event raised and the hub's entry that reported it.
    h.settle().await;
    let events = h.ok("/api/v1/events?category=sensor_alert").await;
    let mut event_ids: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    let mut listed: Vec<&str> = items.iter().map(|i| i["event"].as_str().unwrap()).collect();
    event_ids.sort();
    listed.sort();
    assert_eq!(listed, event_ids);
    let own = h.ok("/api/v1/timeline?kind=event_change").await;
    for i in items {
        assert!(
            own["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["id"] == i["entry"]
                    && e["actor"] == format!("rule:{}", i["rule"].as_str().unwrap())),
            "{i}"
        );
    }

    // Past the window, a's crossing fires again: it replaces the earlier
    // one of that rule and sensor, and comes first.
    let later = a.read(3.9, base + 30 * 60_000, BERLIN);
    assert_eq!(
        h.push(batch(None, std::slice::from_ref(&later))).await.0,
        StatusCode::OK
    );
    let sensor_a = format!("/api/v1/sensors/alerts?sensor={}", a.author().to_hex());
    let body = h.ok(&sensor_a).await;
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{body}");
    assert_eq!(items[0]["rule"], "river-high");
    assert_eq!(items[0]["reading"], later.id().to_hex().as_str());
    let body = h.ok(&format!("{sensor_a}&limit=1")).await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1, "{body}");

    // Bad input names the parameter.
    for (uri, field) in [
        ("/api/v1/sensors/alerts?limit=0", "limit"),
        ("/api/v1/sensors/alerts?limit=501", "limit"),
        ("/api/v1/sensors/alerts?sensor=zz", "sensor"),
        ("/api/v1/sensors/alerts?rule=x", "rule"),
    ] {
        let (status, body) = h.get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body["field"], field, "{uri}: {body}");
    }
    // As `GET /api/v1/sensors`: officers read it, the public does not.
    let as_role = |role| {
        router(ApiState::new(h.hub.store.clone(), None).map_api(|api| api.trusting("p", role)))
    };
    let r = testing::call(
        &as_role(PersonRole::Officer),
        "GET",
        "/api/v1/sensors/alerts",
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 3);
    for role in [PersonRole::Public, PersonRole::None] {
        let r = testing::call(&as_role(role), "GET", "/api/v1/sensors/alerts", None, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role:?}");
    }
    let r = testing::call(&h.anonymous, "GET", "/api/v1/sensors/alerts", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
