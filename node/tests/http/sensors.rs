//! Sensors over a real socket: `POST /api/v1/sensors/entries` accepts,
//! de-duplicates or refuses each push as `docs/protocol.md` 3.6–3.7 say,
//! and a refused push leaves nothing of itself in the store; the readings
//! queries page, filter and downsample. Rules: `sensor_rules.rs`.

use sentinel_certs::testing::{now_ms, DAY};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use sentinel_certs::{Ca, Enrollment};
use sentinel_node::http::{ApiOptions, ApiState};
use sentinel_node::node::Node;
use sentinel_schema::{
    AuthorId, Body, DeviceRole, Entry, Hlc, PersonRole, Point, Revocation, SignedEntry,
};
use sentinel_sync::push;
use sentinel_sync::testing::{key, water_gauge};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Api;

const MINUTE: u64 = 60 * 1000;

/// A simulated sensor: its identity and its own chain.
pub struct Gauge {
    pub enrollment: Enrollment,
    head: Option<SignedEntry>,
}

impl Gauge {
    pub fn new(ca: &Ca, role: DeviceRole, name: &str, seed: u64) -> Gauge {
        let t = now_ms();
        let enrollment = ca
            .enroll(role, name, key(seed), t - DAY, t + 365 * DAY, t)
            .unwrap();
        Gauge {
            enrollment,
            head: None,
        }
    }

    pub fn author(&self) -> AuthorId {
        self.enrollment.identity.author
    }

    pub fn cert(&self) -> &[u8] {
        &self.enrollment.cert_der
    }

    /// The next reading of its chain: `level` metres, measured at
    /// `measured_ms`, signed a second later (or now, if later still).
    pub fn reading(&mut self, level: f64, measured_ms: u64, at: Option<(f64, f64)>) -> SignedEntry {
        let e = self.unchained(level, measured_ms, at);
        self.head = Some(e.clone());
        e
    }

    /// The reading the chain would take next, without taking it (a fork
    /// when the chain already moved on).
    pub fn unchained(&self, level: f64, measured_ms: u64, at: Option<(f64, f64)>) -> SignedEntry {
        let seq = self.head.as_ref().map_or(1, |h| h.seq() + 1);
        let e = self.signed_at(
            seq,
            self.head.as_ref(),
            level,
            measured_ms,
            measured_ms + 1000,
        );
        match at {
            None => e,
            Some(at) => self.located(e, at),
        }
    }

    /// The same reading, at `at`.
    fn located(&self, e: SignedEntry, (lon, lat): (f64, f64)) -> SignedEntry {
        let mut entry = e.entry().clone();
        if let Body::SensorReading(r) = &mut entry.body {
            r.location = Some(Point::new(lon, lat).unwrap());
        }
        entry.sign(&self.enrollment.key).unwrap()
    }

    /// A reading at `seq` after `prev`, signed at `wall_ms`, unlocated.
    pub fn signed_at(
        &self,
        seq: u64,
        prev: Option<&SignedEntry>,
        level: f64,
        measured_ms: u64,
        wall_ms: u64,
    ) -> SignedEntry {
        Entry {
            author: self.author(),
            seq,
            prev: prev.map(SignedEntry::id),
            hlc: Hlc::new(wall_ms, 0),
            actor: None,
            body: water_gauge(level, Some(3.7), None, measured_ms),
        }
        .sign(&self.enrollment.key)
        .unwrap()
    }

    /// A batch of these entries, with the certificate.
    pub fn push(&self, entries: &[SignedEntry]) -> Vec<u8> {
        push::encode(Some(self.cert()), entries)
    }
}

/// `POST /api/v1/sensors/entries` over a real socket: status and body.
pub async fn post(addr: SocketAddr, content_type: Option<&str>, body: &[u8]) -> (u16, Value) {
    post_declared(addr, content_type, body, body.len()).await
}

/// As [`post`], declaring `length` bytes (more than sent: the server must
/// answer from the header alone).
async fn post_declared(
    addr: SocketAddr,
    content_type: Option<&str>,
    body: &[u8],
    length: usize,
) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let typed = content_type.map_or(String::new(), |t| format!("Content-Type: {t}\r\n"));
    let head = format!(
        "POST /api/v1/sensors/entries HTTP/1.1\r\nHost: node\r\nConnection: close\r\n{typed}Content-Length: {length}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    if status >= 400 {
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
            "{head}"
        );
    }
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Serves the API of `node` on a loopback port.
pub async fn serve(node: Arc<Mutex<Node>>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = ApiState::new(node).unwrap();
    let task = tokio::spawn(async move {
        sentinel_node::http::serve(listener, state, ApiOptions::default())
            .await
            .unwrap();
    });
    (addr, task)
}

/// What the store holds of `author`: entries, reading rows, forks.
fn held(node: &Arc<Mutex<Node>>, author: AuthorId) -> (i64, i64, i64) {
    let mut node = node.lock().unwrap();
    node.catch_up_views().unwrap();
    let conn = node.store().conn();
    let count = |sql: &str| -> i64 {
        conn.query_row(sql, [author.as_bytes()], |r| r.get(0))
            .unwrap()
    };
    (
        count("SELECT count(*) FROM entries WHERE author = ?1"),
        count("SELECT count(*) FROM readings WHERE author = ?1"),
        count("SELECT count(*) FROM forks WHERE author = ?1"),
    )
}

/// A refusal: status, code, and nothing of the push stored.
async fn refused(
    addr: SocketAddr,
    node: &Arc<Mutex<Node>>,
    author: AuthorId,
    content_type: Option<&str>,
    body: &[u8],
    status: u16,
    code: &str,
) -> Value {
    let before = held(node, author);
    let (got, answer) = post(addr, content_type, body).await;
    assert_eq!(
        (got, answer["code"].as_str()),
        (status, Some(code)),
        "{answer}"
    );
    assert_eq!(answer["status"], status);
    assert_eq!(answer["type"], "urn:sentinel:problem:push-refused");
    assert_eq!(held(node, author), before, "{code}: nothing stored");
    answer
}

/// The bytes of a push in the batch form, built by hand (for entries that
/// do not decode).
fn raw_batch(entries: &[&[u8]]) -> Vec<u8> {
    fn bstr(out: &mut Vec<u8>, b: &[u8]) {
        match b.len() {
            n if n < 24 => out.push(0x40 | n as u8),
            n if n < 256 => out.extend([0x58, n as u8]),
            n => out.extend([0x59, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(b);
    }
    let mut out = vec![0x82, 0xf6, 0x80 | entries.len() as u8];
    for e in entries {
        bstr(&mut out, e);
    }
    out
}

pub const CBOR: Option<&str> = Some("application/cbor");

#[tokio::test]
async fn every_refusal_of_a_push_answers_its_code_and_stores_nothing() {
    let api = Api::start();
    let t = now_ms();
    let mut gauge = Gauge::new(&api.ca, DeviceRole::Sensor, "gauge-1", 701);
    let revoked = Gauge::new(&api.ca, DeviceRole::Sensor, "gauge-revoked", 702);
    let mut node_key = Gauge::new(&api.ca, DeviceRole::Node, "node-9", 703);
    let mut unknown = Gauge::new(&api.ca, DeviceRole::Sensor, "gauge-unknown", 704);
    // A hub revokes one sensor before the API starts.
    {
        let mut hub = api.hub.borrow_mut();
        api.apply_by(
            &mut hub,
            Body::Revocation(Revocation {
                key: revoked.author(),
                last_valid_seq: 0,
                reason: "stolen".into(),
            }),
        );
    }
    let (addr, _server) = serve(api.node.clone()).await;
    let node = &api.node;
    let me = gauge.author();

    // The first push, with the certificate: 200, both stored.
    let r1 = gauge.reading(1.0, t - 10 * MINUTE, Some((13.4, 52.5)));
    let r2 = gauge.reading(1.1, t - 9 * MINUTE, Some((13.4, 52.5)));
    let (status, report) = post(addr, CBOR, &gauge.push(&[r1.clone(), r2.clone()])).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["author"], me.to_hex());
    assert_eq!(
        (report["n_stored"].as_u64(), report["n_duplicates"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(held(node, me), (2, 4, 0));

    // Replayed: 200, duplicates, nothing added; a bare entry too.
    let (status, report) = post(addr, CBOR, &gauge.push(&[r1.clone(), r2.clone()])).await;
    assert_eq!((status, report["n_duplicates"].as_u64()), (200, Some(2)));
    let (status, report) = post(addr, CBOR, r2.as_bytes()).await;
    assert_eq!(
        (status, report["entries"][0]["outcome"].as_str()),
        (200, Some("duplicate"))
    );
    assert_eq!(held(node, me), (2, 4, 0));

    // A forged signature (the last byte of the signature changed), in a
    // batch whose first entry is good: nothing of it is stored.
    let r3 = gauge.reading(1.2, t - 8 * MINUTE, None);
    let mut forged = r3.as_bytes().to_vec();
    *forged.last_mut().unwrap() ^= 1;
    let next = gauge.reading(1.3, t - 7 * MINUTE, None);
    let answer = refused(
        addr,
        node,
        me,
        CBOR,
        &raw_batch(&[forged.as_slice(), next.as_bytes()]),
        403,
        "bad_signature",
    )
    .await;
    assert_eq!(answer["index"], 0);

    // A gap: the receiver lacks seq 3 — head_seq says where to resume.
    let answer = refused(
        addr,
        node,
        me,
        CBOR,
        &gauge.push(std::slice::from_ref(&next)),
        409,
        "gap",
    )
    .await;
    assert_eq!(
        (answer["seq"].as_u64(), answer["head_seq"].as_u64()),
        (Some(4), Some(2))
    );

    // A NaN value does not decode: the value's 8 bytes of 1.2 become NaN.
    let mut nan = r3.as_bytes().to_vec();
    let one_two = 1.2f64.to_be_bytes();
    let at = nan.windows(8).position(|w| w == one_two).unwrap();
    nan[at..at + 8].copy_from_slice(&f64::NAN.to_be_bytes());
    let answer = refused(
        addr,
        node,
        me,
        CBOR,
        &raw_batch(&[nan.as_slice()]),
        400,
        "bad_entry",
    )
    .await;
    assert_eq!(answer["index"], 0);

    // Measured far in the future (signed now).
    let fresh = Gauge::new(&api.ca, DeviceRole::Sensor, "gauge-late", 705);
    let future = fresh.signed_at(1, None, 1.0, t + 60 * MINUTE, t);
    refused(
        addr,
        node,
        fresh.author(),
        CBOR,
        &fresh.push(&[future]),
        422,
        "future_measurement",
    )
    .await;

    // Unknown key: no certificate held, none sent.
    let u = unknown.reading(1.0, t - MINUTE, None);
    refused(
        addr,
        node,
        unknown.author(),
        CBOR,
        &push::encode(None, &[u]),
        403,
        "unknown_author",
    )
    .await;

    // Revoked by a hub.
    let mut revoked = revoked;
    let r = revoked.reading(1.0, t - MINUTE, None);
    refused(
        addr,
        node,
        revoked.author(),
        CBOR,
        &revoked.push(&[r]),
        403,
        "revoked",
    )
    .await;

    // Wrong role: a node's key signing a reading.
    let n = node_key.reading(1.0, t - MINUTE, None);
    refused(
        addr,
        node,
        node_key.author(),
        CBOR,
        &node_key.push(&[n]),
        403,
        "role_not_allowed",
    )
    .await;

    // Malformed, wrong or missing content type, oversized.
    refused(addr, node, me, CBOR, b"not a push", 400, "malformed").await;
    let good = gauge.push(std::slice::from_ref(&r3));
    refused(
        addr,
        node,
        me,
        Some("application/json"),
        &good,
        415,
        "unsupported_media_type",
    )
    .await;
    refused(addr, node, me, None, &good, 415, "unsupported_media_type").await;
    let before = held(node, me);
    let (status, answer) = post_declared(addr, CBOR, b"", push::MAX_PUSH_BYTES + 1).await;
    assert_eq!((status, answer["code"].as_str()), (413, Some("too_large")));
    assert_eq!(held(node, me), before);

    // A fork at a held seq: refused, kept as evidence, visible to admins.
    let other = {
        let mut g = Gauge::new(&api.ca, DeviceRole::Sensor, "gauge-1", 701);
        g.reading(9.9, t - 10 * MINUTE, None)
    };
    assert_eq!(other.seq(), 1);
    assert_ne!(other.id(), r1.id());
    let (status, answer) = post(addr, CBOR, &gauge.push(&[other])).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (409, Some("fork")),
        "{answer}"
    );
    assert_eq!(
        (answer["seq"].as_u64(), answer["head_seq"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(
        held(node, me),
        (2, 4, 1),
        "the fork is evidence, not a reading"
    );
    api.account("boss", Some(PersonRole::Admin));
    let token = api.login("boss").await;
    let r = api.call("GET", "/api/v1/sensors", Some(&token), None).await;
    let mine = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sensor"] == me.to_hex())
        .unwrap()
        .clone();
    assert_eq!(mine["forks"], 1, "{mine}");
    assert_eq!(mine["name"], "gauge-1");
    assert_eq!(mine["n_readings"], 2);

    // And the chain goes on from where the node holds it.
    let (status, report) = post(addr, CBOR, &gauge.push(&[r3, next])).await;
    assert_eq!(
        (status, report["n_stored"].as_u64()),
        (200, Some(2)),
        "{report}"
    );
    assert_eq!(held(node, me), (4, 8, 1));

    // The readings are views: rebuilt from the log, they come back as they were.
    let seen = node.lock().unwrap().store().sensors_seen().unwrap();
    node.lock().unwrap().store_mut().rebuild_views().unwrap();
    assert_eq!(held(node, me), (4, 8, 1));
    assert_eq!(node.lock().unwrap().store().sensors_seen().unwrap(), seen);
}

#[tokio::test]
async fn readings_page_filter_and_downsample() {
    let api = Api::start();
    let t = now_ms();
    let (addr, _server) = serve(api.node.clone()).await;
    let mut a = Gauge::new(&api.ca, DeviceRole::Sensor, "gauge-a", 721);
    let mut b = Gauge::new(&api.ca, DeviceRole::Sensor, "gauge-b", 722);
    // Aligned on ten minutes, so that buckets are predictable.
    let base = (t - 60 * MINUTE) / 600_000 * 600_000;
    let levels_a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let batch: Vec<SignedEntry> = levels_a
        .iter()
        .enumerate()
        // Two readings per minute: measured at +0 s and +30 s.
        .map(|(i, l)| a.reading(*l, base + i as u64 * 30_000, Some((13.0, 52.0))))
        .collect();
    assert_eq!(post(addr, CBOR, &a.push(&batch)).await.0, 200);
    let batch: Vec<SignedEntry> = (0..3)
        .map(|i| b.reading(10.0 + i as f64, base + i * 60_000 + 1, Some((2.0, 48.0))))
        .collect();
    assert_eq!(post(addr, CBOR, &b.push(&batch)).await.0, 200);

    api.account("ada", Some(PersonRole::Officer));
    let token = api.login("ada").await;
    let get = |q: String| {
        let token = token.clone();
        let api = &api;
        async move {
            api.call(
                "GET",
                &format!("/api/v1/sensors/readings{q}"),
                Some(&token),
                None,
            )
            .await
        }
    };

    // Raw, paged by 4, ascending by measured time: all 18 values of both.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let r = get(format!("?name=level&limit=4{after}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        for item in r.body["items"].as_array().unwrap() {
            seen.push((
                item["measured_ms"].as_u64().unwrap(),
                item["value"].as_f64().unwrap(),
            ));
        }
        match r.body["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 9);
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");

    // By sensor, time range (to exclusive) and area.
    let r = get(format!(
        "?sensor={}&name=level&from={}&to={}",
        a.author().to_hex(),
        base + 30_000,
        base + 90_000
    ))
    .await;
    let values: Vec<f64> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [2.0, 3.0]);
    let r = get("?name=level&bbox=1,47,3,49".into()).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 3);
    assert!(r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["sensor"] == b.author().to_hex()));

    // Downsampled per minute for sensor a: min, max, avg, count.
    let r = get(format!(
        "?sensor={}&name=level&bucket_ms=60000",
        a.author().to_hex()
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let buckets: Vec<(u64, f64, f64, f64, u64)> = r.body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["start_ms"].as_u64().unwrap(),
                b["min"].as_f64().unwrap(),
                b["max"].as_f64().unwrap(),
                b["avg"].as_f64().unwrap(),
                b["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        buckets,
        [
            (base, 1.0, 2.0, 1.5, 2),
            (base + 60_000, 3.0, 4.0, 3.5, 2),
            (base + 120_000, 5.0, 6.0, 5.5, 2),
        ]
    );
    // By kind across both sensors, one bucket of ten minutes per name.
    let r = get("?kind=water_gauge&bucket_ms=600000".into()).await;
    let names: Vec<(&str, u64)> = r.body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["name"].as_str().unwrap(), b["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(names, [("battery", 9), ("level", 9)]);

    // Bad parameters name themselves.
    for (q, field) in [
        ("?bucket_ms=60000", "bucket_ms"),
        ("?kind=water_gauge&bucket_ms=999", "bucket_ms"),
        ("?kind=water_gauge&bucket_ms=60000&limit=5", "limit"),
        ("?sensor=abc", "sensor"),
        ("?limit=0", "limit"),
        ("?after=zz", "after"),
        ("?bbox=1,2,3", "bbox"),
        ("?from=5&to=4", "from"),
        ("?colour=red", "colour"),
        ("?kind=a&kind=b", "kind"),
    ] {
        let r = get(q.into()).await;
        assert_eq!(r.status, 400, "{q}: {}", r.body);
        assert_eq!(r.body["field"], field, "{q}: {}", r.body);
    }
    let r = api
        .call("GET", "/api/v1/sensors?x=1", Some(&token), None)
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["field"].as_str()),
        (400, Some("x"))
    );

    // The sensors seen.
    let r = api.call("GET", "/api/v1/sensors", Some(&token), None).await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let sa = items
        .iter()
        .find(|s| s["sensor"] == a.author().to_hex())
        .unwrap();
    assert_eq!(sa["kinds"], serde_json::json!(["water_gauge"]));
    assert_eq!(sa["n_readings"], 6);
    assert_eq!(sa["last_measured_ms"], base + 150_000);
    assert_eq!(
        sa["last_location"],
        serde_json::json!({"lon": 13.0, "lat": 52.0})
    );
    assert_eq!(sa["forks"], 0);

    // More buckets than an answer holds: refused, naming `bucket_ms`.
    let mut c = Gauge::new(&api.ca, DeviceRole::Sensor, "gauge-c", 723);
    let start = base - 2 * 60 * MINUTE;
    for chunk in 0..6u64 {
        let batch: Vec<SignedEntry> = (0..1000u64)
            .map(|i| c.reading(1.0, start + (chunk * 1000 + i) * 1000, None))
            .take(if chunk == 5 { 1 } else { 1000 })
            .collect();
        assert_eq!(post(addr, CBOR, &c.push(&batch)).await.0, 200);
    }
    let q = format!("?sensor={}&bucket_ms=1000", c.author().to_hex());
    let r = get(q.clone()).await;
    assert_eq!(
        (r.status.as_u16(), r.body["field"].as_str()),
        (400, Some("bucket_ms")),
        "{}",
        r.body
    );
    let r = get(format!("{q}&name=level")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["buckets"].as_array().unwrap().len(), 5001);
}
