//! Sensor readings pushed to a node over HTTP.
//!
//! Run: `cargo bench -p sentinel-node --bench sensor_ingest`
//! (`SENTINEL_BENCH_SCALE=0.1` for a quick run). Prints a Markdown table.
//!
//! One enrolled node on a real SpatiaLite file (WAL, `synchronous=FULL`)
//! serves its API on a loopback socket, with one threshold rule that the
//! readings never cross (so every reading is evaluated). 20 sensors, each
//! with its own certificate from the deployment CA, push 200,000 readings
//! (two values and a location each) in batches of 500 over real
//! HTTP/1.1 connections, all sensors at once: each push is fully checked
//! by `push::receive` (certificate, batch signatures, validity, role,
//! revocation, time, chain), committed durably and run through the rules
//! before its 200; the `readings` view (with its spatial index) follows
//! at most 250 ms behind, and the clock stops when it holds every reading.
//! The sensors sign before the clock starts: signing is the sensors' work,
//! not the node's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sentinel_certs::testing::{now_ms, DAY};
use sentinel_certs::Ca;
use sentinel_node::http::{ApiOptions, ApiState};
use sentinel_node::node::{enroll, Node};
use sentinel_schema::rules::config::parse_rules_toml;
use sentinel_schema::*;
use sentinel_sync::push;
use sentinel_sync::testing::water_gauge;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const N_SENSORS: usize = 20;
const BATCH: usize = 500;

fn scale() -> f64 {
    std::env::var("SENTINEL_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

/// One sensor's pushes, ready to send: the first carries the certificate.
fn pushes(ca: &Ca, s: usize, n: usize, now: u64) -> Vec<Vec<u8>> {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&(s as u64).to_be_bytes());
    let e = ca
        .enroll(
            DeviceRole::Sensor,
            &format!("gauge-{s}"),
            SigningKey::from_bytes(&seed),
            now - DAY,
            now + DAY,
            now,
        )
        .unwrap();
    let start = now - n as u64 * 1000 - 60_000;
    let mut prev: Option<EntryId> = None;
    let mut entries = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let measured_ms = start + i * 1000;
        let signed = Entry {
            author: e.identity.author,
            seq: i + 1,
            prev,
            hlc: Hlc::new(measured_ms + 1, 0),
            actor: None,
            body: water_gauge(
                2.0 + (i % 100) as f64 / 100.0,
                Some(3.7),
                Some(Point::new(13.0 + s as f64 / 100.0, 52.0 + s as f64 / 100.0).unwrap()),
                measured_ms,
            ),
        }
        .sign(&e.key)
        .unwrap();
        prev = Some(signed.id());
        entries.push(signed);
    }
    entries
        .chunks(BATCH)
        .enumerate()
        .map(|(i, batch)| push::encode((i == 0).then_some(e.cert_der.as_slice()), batch))
        .collect()
}

/// One push over a fresh HTTP/1.1 connection; panics unless 200.
async fn post(addr: SocketAddr, body: &[u8]) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let head = format!(
        "POST /api/v1/sensors/entries HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\
         Content-Type: application/cbor\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..answer.len().min(400)])
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let per_sensor = (((200_000.0 * scale()) as usize) / N_SENSORS).max(BATCH);
    let n_total = per_sensor * N_SENSORS;
    let now = now_ms();
    let ca = Ca::create(
        "Bench CA",
        now - 2 * DAY,
        now + 365 * DAY,
        SigningKey::from_bytes(&[1; 32]),
    )
    .unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    drop(Node::init(dir.path(), SigningKey::from_bytes(&[102; 32])).unwrap());
    let e = ca
        .enroll(
            DeviceRole::Node,
            "bench",
            SigningKey::from_bytes(&[2; 32]),
            now - DAY,
            now + DAY,
            now,
        )
        .unwrap();
    enroll(dir.path(), &e).unwrap();
    let mut node = Node::open(dir.path()).unwrap();
    node.enable_rules(
        parse_rules_toml(
            "[[rule]]\nid = \"never\"\nseverity = 1\nkind = \"water_gauge\"\n\
             value = \"level\"\ncomparison = \">\"\nthreshold = 100.0\n",
        )
        .unwrap(),
    )
    .unwrap();
    let node = Arc::new(Mutex::new(node));

    let t = Instant::now();
    let all: Vec<Vec<Vec<u8>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..N_SENSORS)
            .map(|s| {
                let ca = &ca;
                scope.spawn(move || pushes(ca, s, per_sensor, now))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let bytes: usize = all.iter().flatten().map(Vec::len).sum();
    eprintln!(
        "signed {n_total} readings in {:.1?} ({} pushes, {:.1} MB)",
        t.elapsed(),
        all.iter().map(Vec::len).sum::<usize>(),
        bytes as f64 / 1e6
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (elapsed, mut latencies) = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = ApiState::new(node.clone()).unwrap();
        let node = node.clone();
        tokio::spawn(sentinel_node::http::serve(
            listener,
            state,
            ApiOptions::default(),
        ));
        let t = Instant::now();
        let tasks: Vec<_> = all
            .into_iter()
            .map(|pushes| {
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(pushes.len());
                    for body in pushes {
                        let sent = Instant::now();
                        post(addr, &body).await;
                        latencies.push(sent.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await.unwrap());
        }
        // The clock stops when the views hold every reading too.
        node.lock().unwrap().catch_up_views().unwrap();
        (t.elapsed(), latencies)
    });
    latencies.sort();

    let held: i64 = node
        .lock()
        .unwrap()
        .store()
        .conn()
        .query_row("SELECT count(DISTINCT entry) FROM readings", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(held as usize, n_total, "every reading is in the view");
    let rate = n_total as f64 / elapsed.as_secs_f64();
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    println!("| readings | sensors | per push | pushes | body MB | seconds | readings/s | push p50 | push p99 | load (1 min) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {n_total} | {N_SENSORS} | {BATCH} | {} | {:.1} | {:.2} | {:.0} | {:.1?} | {:.1?} | {load} |",
        latencies.len(),
        bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        rate,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
}
