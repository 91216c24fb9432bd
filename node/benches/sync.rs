//! Sync between two field nodes over QUIC with mutual TLS on loopback.
//!
//! Run: `cargo bench -p sentinel-node --bench sync`
//! (`SENTINEL_BENCH_SCALE=0.1` for a quick run). Prints a Markdown table.
//!
//! Node A holds 1,000,000 entries: signed sensor readings from 100 sensor
//! identities, whose certificates A holds. Node B starts empty and runs
//! one `sync` against A's `serve`: every entry crosses the wire and is
//! verified (batch signatures, certificate, role, revocation, chain)
//! and committed durably on B, then projected into B's `readings` view
//! (figures in `docs/benchmarks.md` from before that view existed measure
//! the log path alone); views for events are measured in the `node`
//! bench, pushes over HTTP in `sensor_ingest`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Instant;

use sentinel_certs::testing::{now_ms, DAY};
use sentinel_certs::Ca;
use sentinel_node::net::{self, Net};
use sentinel_node::node::{enroll, Node};
use sentinel_schema::*;
use sentinel_sync::testing::water_gauge;
use sentinel_sync::SyncStore;

const T0: u64 = 1_795_000_000_000;

fn scale() -> f64 {
    std::env::var("SENTINEL_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

fn main() {
    let n_total = ((1_000_000.0 * scale()) as usize).max(1000);
    let n_sensors = 100usize;
    let per_sensor = n_total / n_sensors;
    let now = now_ms();
    let ca = Ca::create(
        "Bench CA",
        T0 - 2 * DAY,
        now + 365 * DAY,
        SigningKey::from_bytes(&[1; 32]),
    )
    .unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    for (d, seed) in [(&a_dir, 2u8), (&b_dir, 3u8)] {
        drop(Node::init(d, SigningKey::from_bytes(&[seed + 100; 32])).unwrap());
        let e = ca
            .enroll(
                DeviceRole::Node,
                "bench",
                SigningKey::from_bytes(&[seed; 32]),
                now - DAY,
                now + DAY,
                now,
            )
            .unwrap();
        enroll(d, &e).unwrap();
    }

    // Fill A: sensors' readings, committed to A's log in batches.
    let t = Instant::now();
    let mut a = Node::open(&a_dir).unwrap();
    let mut entry_bytes = 0u64;
    for s in 0..n_sensors {
        let key = SigningKey::from_bytes(&{
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(s as u64).to_be_bytes());
            seed
        });
        let cert = ca
            .enroll(
                DeviceRole::Sensor,
                &format!("gauge-{s}"),
                key.clone(),
                T0 - DAY,
                now + DAY,
                now,
            )
            .unwrap();
        a.store_mut()
            .add_certificates(vec![(author_of(&key), cert.cert_der.clone())])
            .unwrap();
        let mut prev: Option<(u64, EntryId)> = None;
        let mut batch = Vec::with_capacity(1024);
        for i in 0..per_sensor {
            let e = Entry {
                author: author_of(&key),
                seq: prev.map_or(1, |p| p.0 + 1),
                prev: prev.map(|p| p.1),
                hlc: Hlc::new(T0 + i as u64, 0),
                actor: None,
                body: water_gauge(
                    1.0 + (i % 100) as f64 / 100.0,
                    None,
                    Some(Point::new(13.4, 52.5).unwrap()),
                    T0 + i as u64,
                ),
            }
            .sign(&key)
            .unwrap();
            prev = Some((e.seq(), e.id()));
            entry_bytes += e.as_bytes().len() as u64;
            batch.push(e.into_verified().unwrap());
            if batch.len() == 1024 {
                a.store_mut().apply(std::mem::take(&mut batch), T0).unwrap();
            }
        }
        a.store_mut().apply(batch, T0).unwrap();
    }
    let n = (per_sensor * n_sensors) as u64;
    eprintln!(
        "filled A with {n} entries in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // A's own views, as a node that received the readings would have
    // them: not part of what the sync measures.
    let t = Instant::now();
    a.catch_up_views().unwrap();
    eprintln!("projected A's views in {:.1} s", t.elapsed().as_secs_f64());

    let b = Node::open(&b_dir).unwrap();
    let a_net = Arc::new(Net::load(&a_dir, &a).unwrap());
    let b_net = Net::load(&b_dir, &b).unwrap();
    let a = Arc::new(Mutex::new(a));
    let b = Arc::new(Mutex::new(b));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (catch_up, secs, cpu, in_sync) = rt.block_on(async {
        let endpoint = net::listen(&a_net, "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = endpoint.local_addr().unwrap();
        tokio::spawn(net::serve(a.clone(), a_net.clone(), endpoint, |_| {}));
        let t = Instant::now();
        let cpu = cpu_seconds();
        let s = net::sync_once(b.clone(), &b_net, addr, |_| {})
            .await
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        let cpu = cpu.zip(cpu_seconds()).map(|(before, after)| after - before);
        let again = net::sync_once(b.clone(), &b_net, addr, |_| {})
            .await
            .unwrap();
        (s, secs, cpu, again)
    });
    assert_eq!(catch_up.applied, n, "B applied everything");
    let digest_a = a.lock().unwrap().stats().unwrap().heads_digest;
    let digest_b = b.lock().unwrap().stats().unwrap().heads_digest;
    assert_eq!(digest_a, digest_b);

    println!("| measurement | result | goal |");
    println!("|---|---|---|");
    println!(
        "| {n} entries ({} B average, {n_sensors} authors) synced A → B over QUIC on loopback, verified and durable on B | {:.1} s, {:.0} entries/s | ≥ 40,000/s |",
        entry_bytes / n,
        secs,
        n as f64 / secs
    );
    println!(
        "| frame bytes A → B / the entries' own bytes | {} / {} = {:.3} | ≤ 1.10 |",
        catch_up.bytes_received,
        entry_bytes,
        catch_up.bytes_received as f64 / entry_bytes as f64
    );
    println!(
        "| already in sync: one round trip, frame bytes each way | {} B out, {} B in | ≤ 256 B |",
        in_sync.bytes_sent, in_sync.bytes_received
    );
    let rate = n as f64 / secs;
    let cpu_note = match cpu {
        Some(cpu) => format!(
            "process CPU (user+sys, both nodes) during the sync: {cpu:.1} s, {:.1} µs per entry",
            cpu * 1e6 / n as f64
        ),
        None => "process CPU not known (no /proc/self/stat)".to_string(),
    };
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    println!("\n{cpu_note}; load average {load} at the end");
    if let Ok(path) = std::env::var("SENTINEL_BENCH_OUT") {
        // The goals table's row; a run at another size is marked by its
        // scale (`scripts/bench`).
        {
            let row = serde_json::json!({
                "row": "readings_node_node_1m",
                "figure": format!("{rate:.0} entries/s ({n} in {secs:.1} s)"),
                "value": rate.round(),
                "unit": "entries/s",
                "goal": "≥ 40,000 entries/s",
                "met": rate >= 40_000.0,
                "command": "cargo bench -p sentinel-node --bench sync",
                "note": format!("{cpu_note}; load average {load}"),
            });
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap();
            writeln!(f, "{row}").unwrap();
        }
    }
}

/// CPU time this process has used so far (user + system), from
/// `/proc/self/stat` (Linux; `None` elsewhere). Clock ticks are taken as
/// 100 per second, Linux's `USER_HZ` on every common architecture.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces), from field 3.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
