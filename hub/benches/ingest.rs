//! Node → hub: a million entries over QUIC into PostGIS, then box queries
//! on the hub's views.
//!
//! Run: `cargo bench -p sentinel-hub --bench ingest`
//! (`SENTINEL_BENCH_SCALE=0.01` for a quick run). Prints a Markdown table.
//!
//! - A real `sentinel-node` store (SpatiaLite, on disk) holds 1,000,000
//!   `event_change` entries: each creates one event (an Automerge
//!   document), signed by one of 100 officer identities (role `node`)
//!   whose certificates the node holds; events lie uniformly in a region
//!   of 10° × 10° (lon 5–15, lat 45–55). The node's own views are brought
//!   up to date before the sync, as a field node's would be.
//! - The real `sentinel-hub serve` binary runs as a child process on a
//!   throwaway PostgreSQL/PostGIS database (the test harness's server),
//!   with its own certificate from the same deployment CA.
//! - The node runs one `sync` (`sentinel_node::net::sync_once`) against
//!   the hub: QUIC on loopback with mutual TLS; every entry is verified on
//!   the hub (batch signatures, certificate, validity, revocation, role,
//!   Automerge actor, chain) and committed to the log before it is
//!   acknowledged. The hub's projector runs as in production, behind the
//!   log; the bench then waits until every event entry is projected into
//!   the PostGIS views (`documents`, `events` with geography and search).
//! - Box queries with at most ~100 hits on the 1,000,000 events: through
//!   `PgStore::ids_in_bbox` (in this process) and through the admin API,
//!   `GET /api/v1/events?bbox=…` over HTTP on the hub process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use sentinel_hub::testing::TestDatabase;
use sentinel_node::net::{self, Net};
use sentinel_node::node::{enroll, Node};
use sentinel_schema::*;
use sentinel_sync::testing::Xorshift;
use sentinel_sync::{SessionEvent, SyncStore};

const AUTHORS: usize = 100;
/// The region the events lie in: lon 5–15, lat 45–55.
const REGION: (f64, f64, f64, f64) = (5.0, 45.0, 15.0, 55.0);

/// The peers' benchmarks' record shape (their generator's cities and
/// description alphabet).
const CITIES: [&str; 16] = [
    "Lisbon", "Nairobi", "Quito", "Dhaka", "Oslo", "Lagos", "Lima", "Hanoi", "Accra", "Kyiv",
    "Manila", "Bogota", "Tunis", "Cusco", "Porto", "Bergen",
];
const ASCII: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-";

fn officer(a: usize) -> SigningKey {
    key(7, a as u64)
}

/// One author's chain: `n` entries, each creating one event.
fn chain(a: usize, n: usize, t0: u64) -> Vec<SignedEntry> {
    let key = officer(a);
    let author = author_of(&key);
    let mut rng =
        Xorshift(0x9e37_79b9_7f4a_7c15 ^ (a as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut out: Vec<SignedEntry> = Vec::with_capacity(n);
    for i in 0..n {
        let (x0, y0, x1, y1) = REGION;
        // The peers' record: a title naming a city, 200 ASCII characters of
        // description, severity 1–5, one category, a point, a reported time.
        let city = CITIES[(rng.unit() * CITIES.len() as f64) as usize % CITIES.len()];
        let description: String = (0..200)
            .map(|_| {
                let k = (rng.unit() * ASCII.len() as f64) as usize % ASCII.len();
                char::from(ASCII[k])
            })
            .collect();
        let new = NewEvent {
            title: format!("Incident near {city} #{}", a * n + i),
            description,
            category: "infrastructure".into(),
            severity: (rng.unit() * 5.0) as u8 % 5 + 1,
            location: Point::new(x0 + (x1 - x0) * rng.unit(), y0 + (y1 - y0) * rng.unit()).unwrap(),
            reported_ms: t0 + (rng.unit() * 19.0 * DAY as f64) as u64,
        };
        let (_, change) = EventDoc::create(&author, &new, t0 + i as u64).unwrap();
        let prev = out.last();
        let entry = Entry {
            author,
            seq: prev.map_or(1, |p| p.seq() + 1),
            prev: prev.map(|p| p.id()),
            hlc: Hlc::new(t0 + i as u64, 0),
            actor: Some(format!("officer.{a}")),
            body: Body::EventChange(EventChange {
                event: EventId((((a as u128) << 64) | (i as u128 + 1)).to_be_bytes()),
                change,
            }),
        };
        out.push(entry.sign(&key).unwrap());
    }
    out
}

fn main() {
    let n_total = scaled(1_000_000, 1_000);
    let per_author = n_total / AUTHORS;
    let n = per_author * AUTHORS;
    let now = now_ms();
    let t0 = now - 20 * DAY;
    let ca = deployment("Bench CA");
    let dir = tempfile::TempDir::new().unwrap();
    let node_dir = dir.path().join("node");
    drop(Node::init(&node_dir, key(3, 3)).unwrap());
    enroll(
        &node_dir,
        &issue(&ca, DeviceRole::Node, "field-node", key(2, 2)),
    )
    .unwrap();

    // Entries: generated and signed on both cores, one author per task.
    let t = Instant::now();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chains: Vec<Vec<VerifiedEntry>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                s.spawn(move || {
                    (k..AUTHORS)
                        .step_by(threads)
                        .map(|a| {
                            let (good, bad) = verify_all(chain(a, per_author, t0));
                            assert!(bad.is_empty());
                            (a, good)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, Vec<VerifiedEntry>)> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_by_key(|(a, _)| *a);
        all.into_iter().map(|(_, c)| c).collect()
    });
    let entry_bytes: u64 = chains
        .iter()
        .flatten()
        .map(|e| e.as_bytes().len() as u64)
        .sum();
    eprintln!("signed {n} entries in {:.1} s", t.elapsed().as_secs_f64());

    // Into the node's durable log, then its views.
    let t = Instant::now();
    let mut node = Node::open(&node_dir).unwrap();
    for (a, c) in chains.into_iter().enumerate() {
        let cert = issue(&ca, DeviceRole::Node, &format!("officer-{a}"), officer(a));
        node.store_mut()
            .add_certificates(vec![(author_of(&officer(a)), cert.cert_der.clone())])
            .unwrap();
        let mut it = c.into_iter().peekable();
        while it.peek().is_some() {
            node.store_mut()
                .apply_remote(it.by_ref().take(1024).collect(), now)
                .unwrap();
        }
    }
    eprintln!("node log filled in {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    node.catch_up_views().unwrap();
    eprintln!("node views caught up in {:.1} s", t.elapsed().as_secs_f64());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // `SENTINEL_BENCH_POOL_SIZE`: the hub's PostgreSQL pool (default: the
    // hub's own default).
    let pool = std::env::var("SENTINEL_BENCH_POOL_SIZE")
        .ok()
        .and_then(|s| s.parse().ok());
    let node_net = Net::load(&node_dir, &node).unwrap();
    let node = Arc::new(Mutex::new(node));

    // The same node syncs to a fresh hub on each server, durable first.
    let servers: Vec<Durability> = match std::env::var("SENTINEL_BENCH_PG").as_deref() {
        Ok("durable") => vec![Durability::Durable],
        Ok("fsync-off") => vec![Durability::FsyncOff],
        _ => vec![Durability::Durable, Durability::FsyncOff],
    };
    println!("| measurement | result | goal |");
    println!("|---|---|---|");
    let mut runs: Vec<SyncRun> = Vec::new();
    let mut last = None;
    for (k, durability) in servers.iter().enumerate() {
        // Only the last hub stays up, for the queries below.
        drop(last.take());
        let (durable_pg, db) = match durability {
            Durability::Durable => {
                let pg = DurablePostgres::start();
                let db = rt
                    .block_on(TestDatabase::create_on(pg.admin.clone()))
                    .unwrap();
                (Some(pg), db)
            }
            Durability::FsyncOff => (None, rt.block_on(TestDatabase::create()).unwrap()),
        };
        let hub_dir = dir.path().join(format!("hub-{k}"));
        std::fs::create_dir(&hub_dir).unwrap();
        let hub = HubProcess::start_as(&db, &ca, &hub_dir, 1000, pool, key(9, 9 + k as u64));
        let store = rt.block_on(db.open_store()).unwrap();
        let run = sync_and_project(&rt, &node, &node_net, &hub, &store, n, *durability);
        println!(
            "| {}: {n} entries ({} B average, {AUTHORS} authors, each creating one event) synced node → hub over QUIC on loopback, verified and committed to the hub's log | {:.1} s, {:.0} entries/s | ≥ 30,000/s |",
            durability.label(),
            entry_bytes / n as u64,
            run.sync_secs,
            run.log_rate()
        );
        println!(
            "| {}: frame bytes node → hub / the entries' own bytes | {} / {entry_bytes} = {:.3} | — |",
            durability.label(),
            run.bytes_sent,
            run.bytes_sent as f64 / entry_bytes as f64
        );
        println!(
            "| {}: hub projector (runs behind the log during the sync): event entries not yet in the views when the sync ended | {} of {n} | — |",
            durability.label(),
            run.behind_at_sync_end
        );
        println!(
            "| {}: views complete (documents, events with geography + search): after the sync ended / from the sync's start | +{:.1} s / {:.1} s: {:.0} events/s end to end; {:.0} events/s for the catch-up alone | ≥ 15,000/s |",
            durability.label(),
            run.caught_up_at - run.sync_secs,
            run.caught_up_at,
            run.views_rate(),
            run.catch_up_rate()
        );
        if let Some((left, projected, secs, running)) = &run.fallback {
            println!(
                "| {}: the hub's projector did not finish within its budget of the sync's end ({left} event entries left; its running statement: {}); cancelled, then `ANALYZE` and `PgStore::project_pending` from the bench process | {projected} entries in {secs:.1} s: {:.0} events/s | — |",
                durability.label(),
                running.join("; "),
                *projected as f64 / secs
            );
        }
        eprintln!(
            "{}: load average: before {}; after the sync {}; after the views {}",
            durability.label(),
            run.load_before,
            run.load_after_sync,
            run.load_after_views
        );
        runs.push(run);
        last = Some((hub, store, db, durable_pg));
    }
    let command = "cargo bench -p sentinel-hub --bench ingest";
    let durable = runs.iter().find(|r| r.durability == Durability::Durable);
    let fast = runs.iter().find(|r| r.durability == Durability::FsyncOff);
    if let Some(head) = durable.or(fast) {
        let bound = |what: &dyn Fn(&SyncRun) -> String| {
            match (durable, fast) {
            (Some(_), Some(f)) => format!(
                "fsync off (upper bound, not production): {}",
                what(f)
            ),
            (None, Some(_)) => "measured with fsync off only (SENTINEL_BENCH_PG=fsync-off): an upper bound, not the durable figure".to_owned(),
            _ => String::new(),
        }
        };
        let log_figure = |r: &SyncRun| {
            format!(
                "{:.0} entries/s ({n} in {:.1} s; load {} → {})",
                r.log_rate(),
                r.sync_secs,
                r.load_before,
                r.load_after_sync
            )
        };
        let views_figure = |r: &SyncRun| {
            format!(
                "{:.0} events/s end to end ({n} in views {:.1} s after the sync's start; catch-up after the sync {:.0} events/s; load after {})",
                r.views_rate(),
                r.caught_up_at,
                r.catch_up_rate(),
                r.load_after_views
            )
        };
        let what = if head.durability == Durability::Durable {
            "durable commits (fsync, synchronous_commit, full_page_writes on)"
        } else {
            "fsync off"
        };
        bench_out(
            "hub_ingest_log_1m",
            &format!("{} — {what}", log_figure(head)),
            head.log_rate(),
            "entries/s",
            "≥ 30,000 entries/s into the hub's log, PostgreSQL with durable commits",
            head.durability == Durability::Durable && head.log_rate() >= 30_000.0,
            command,
            &bound(&log_figure),
        );
        bench_out(
            "hub_views_1m",
            &format!("{} — {what}", views_figure(head)),
            head.views_rate(),
            "events/s",
            "hub views ≥ 15,000 events/s",
            head.durability == Durability::Durable && head.views_rate() >= 15_000.0,
            command,
            &bound(&views_figure),
        );
    }
    // `SENTINEL_BENCH_READS=0`: the sync and the views only.
    if std::env::var("SENTINEL_BENCH_READS").is_ok_and(|v| v == "0") {
        return;
    }
    let (hub, store, _db, _durable_pg) = last.unwrap();
    let client = rt.block_on(store.client()).unwrap();
    let count = |sql: &str| -> i64 { rt.block_on(client.query_one(sql, &[])).unwrap().get(0) };
    let n_events = count("SELECT count(*) FROM events");
    // 3. Box queries with at most ~100 hits.
    rt.block_on(client.batch_execute("ANALYZE")).unwrap();
    let mut rng = Xorshift(0x1234_5678_9abc_def1);
    // Box sides 0.02°–0.09° at 1M events in 100 square degrees: 4 to 81
    // events expected per box; scaled up when the run has fewer events.
    let stretch = (1_000_000.0 / n as f64).sqrt();
    let mut boxes = Vec::new();
    for _ in 0..2_200 {
        let w = (0.02 + 0.07 * rng.unit()) * stretch;
        let h = (0.02 + 0.07 * rng.unit()) * stretch;
        let (x0, y0, x1, y1) = REGION;
        let x = x0 + (x1 - x0 - w) * rng.unit();
        let y = y0 + (y1 - y0 - h) * rng.unit();
        // Rounded as the HTTP path prints them, so both paths get the
        // same box.
        let r6 = |v: f64| (v * 1e6).round() / 1e6;
        boxes.push((r6(x), r6(y), r6(x + w), r6(y + h)));
    }
    let (warm, measured) = boxes.split_at(200);
    let load_before_q = load_average();
    for b in warm {
        rt.block_on(store.ids_in_bbox(b.0, b.1, b.2, b.3)).unwrap();
    }
    let mut lat = Vec::new();
    let mut hits = Vec::new();
    let mut some_ids = Vec::new();
    for b in measured {
        let t = Instant::now();
        let ids = rt.block_on(store.ids_in_bbox(b.0, b.1, b.2, b.3)).unwrap();
        lat.push(t.elapsed());
        hits.push(ids.len());
        some_ids.extend(ids.into_iter().take(1));
    }
    lat.sort();
    let mean_hits = hits.iter().sum::<usize>() as f64 / hits.len() as f64;
    let max_hits = *hits.iter().max().unwrap();
    println!(
        "| bbox, `PgStore::ids_in_bbox` (PostGIS GiST on geography), {n_events} events, {} boxes (mean {mean_hits:.1} hits, max {max_hits}) | p50 {}, p95 {}, p99 {}, max {} | p99 ≤ 20 ms |",
        lat.len(),
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.95)),
        ms(pct(&lat, 0.99)),
        ms(*lat.last().unwrap())
    );

    let mut http = Http::connect(hub.http_addr);
    http.login();
    let path = |b: &(f64, f64, f64, f64)| {
        format!(
            "/api/v1/events?bbox={:.6},{:.6},{:.6},{:.6}&limit=500",
            b.0, b.1, b.2, b.3
        )
    };
    for b in warm {
        let (status, _) = http.get(&path(b));
        assert_eq!(status, 200);
    }
    let mut lat = Vec::new();
    let mut http_hits = Vec::new();
    for b in measured {
        let t = Instant::now();
        let (status, body) = http.get(&path(b));
        lat.push(t.elapsed());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        http_hits.push(v["items"].as_array().unwrap().len());
    }
    lat.sort();
    let mismatched = hits.iter().zip(&http_hits).filter(|(a, b)| a != b).count();
    let mean_hits = http_hits.iter().sum::<usize>() as f64 / http_hits.len() as f64;
    println!(
        "| bbox, `GET /api/v1/events?bbox=…&limit=500` over HTTP on the hub process (whole rows as JSON), same boxes (mean {mean_hits:.1} hits; {mismatched} boxes answered differently from the store) | p50 {}, p95 {}, p99 {}, max {} | p99 ≤ 20 ms |",
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.95)),
        ms(pct(&lat, 0.99)),
        ms(*lat.last().unwrap())
    );
    eprintln!(
        "load average: before the queries {load_before_q}; after {}",
        load_average()
    );

    // 4. The read API under 100 concurrent clients.
    concurrent_reads(hub.http_addr, measured, &some_ids, n_events, None);
    concurrent_reads(
        hub.http_addr,
        measured,
        &some_ids,
        n_events,
        Some(PACED_INTERVAL),
    );

    let other = hub.other_stderr();
    if !other.is_empty() {
        eprintln!("hub stderr (not session reports):");
        for l in other.iter().take(20) {
            eprintln!("  {l}");
        }
    }
    drop(client);
    drop(hub);
}

/// How many clients read the API at once, and how many requests each makes.
const CLIENTS: usize = 100;
const REQUESTS_PER_CLIENT: usize = 200;

/// In the paced run, each client's interval between requests.
const PACED_INTERVAL: Duration = Duration::from_millis(250);

/// `CLIENTS` threads, each signed in as the bench's admin on its own
/// keep-alive connection, ask a mix of what an admin console asks: box
/// queries (50 %), one event's detail (25 %), the newest severe events
/// (15 %), and one officer's timeline (10 %).
///
/// Without `interval`, every client sends its next request as soon as the
/// last answer arrives (a closed loop: the hub runs saturated, and the
/// latency is mostly queueing; the throughput is the figure). With it,
/// each client sends on a fixed schedule, one request every `interval`
/// from a random start, and every request is timed from the moment it
/// was *due*, so a late send counts against the hub (no coordinated
/// omission).
fn concurrent_reads(
    addr: std::net::SocketAddr,
    boxes: &[(f64, f64, f64, f64)],
    ids: &[EventId],
    n_events: i64,
    interval: Option<Duration>,
) {
    let load_before = load_average();
    let clients: Vec<Http> = (0..CLIENTS)
        .map(|_| {
            let mut http = Http::connect(addr);
            http.login();
            http
        })
        .collect();
    let barrier = std::sync::Barrier::new(CLIENTS);
    let started = Instant::now();
    let per_kind: Vec<Vec<(usize, Duration)>> = std::thread::scope(|s| {
        let handles: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(c, mut http)| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut rng = Xorshift(0x5151_0000 + c as u64 * 7919 + 1);
                    let mut out = Vec::with_capacity(REQUESTS_PER_CLIENT);
                    barrier.wait();
                    let start =
                        Instant::now() + interval.map_or(Duration::ZERO, |i| i.mul_f64(rng.unit()));
                    for k in 0..REQUESTS_PER_CLIENT {
                        let due = interval.map(|i| start + i * k as u32);
                        if let Some(due) = due {
                            std::thread::sleep(due.saturating_duration_since(Instant::now()));
                        }
                        let pick = rng.unit();
                        let (kind, path) = if pick < 0.5 {
                            let b = boxes[(rng.unit() * boxes.len() as f64) as usize];
                            (
                                0,
                                format!(
                                    "/api/v1/events?bbox={:.6},{:.6},{:.6},{:.6}&limit=500",
                                    b.0, b.1, b.2, b.3
                                ),
                            )
                        } else if pick < 0.75 {
                            let id = ids[(rng.unit() * ids.len() as f64) as usize];
                            (1, format!("/api/v1/events/{id}"))
                        } else if pick < 0.9 {
                            (2, "/api/v1/events?min_severity=4&limit=50".to_owned())
                        } else {
                            let a = (rng.unit() * AUTHORS as f64) as usize;
                            let author = author_of(&officer(a));
                            (3, format!("/api/v1/timeline?author={author}&limit=50"))
                        };
                        let t = due.unwrap_or_else(Instant::now);
                        let (status, body) = http.get(&path);
                        let took = t.elapsed();
                        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
                        out.push((kind, took));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = started.elapsed();
    let all: Vec<(usize, Duration)> = per_kind.into_iter().flatten().collect();
    let total = all.len();
    let row = |label: &str, mut lat: Vec<Duration>, goal: &str| {
        lat.sort();
        println!(
            "| {label}: {} requests | p50 {}, **p95 {}**, p99 {}, max {} | {goal} |",
            lat.len(),
            ms(pct(&lat, 0.5)),
            ms(pct(&lat, 0.95)),
            ms(pct(&lat, 0.99)),
            ms(*lat.last().unwrap())
        );
    };
    let how = match interval {
        None => {
            "each sending its next request as soon as the last is answered (saturated)".to_owned()
        }
        Some(i) => format!(
            "each sending one request every {} ms, timed from when it was due",
            i.as_millis()
        ),
    };
    println!(
        "| read API, {CLIENTS} concurrent admin clients (one keep-alive connection each) at {n_events} events, {how} | {total} in {:.1} s: {:.0} requests/s | — |",
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64()
    );
    row(
        "all requests",
        all.iter().map(|(_, d)| *d).collect(),
        "p95 ≤ 20 ms",
    );
    for (kind, label) in [
        "box query `events?bbox=…&limit=500`",
        "event detail `events/{id}`",
        "newest severe `events?min_severity=4&limit=50`",
        "officer timeline `timeline?author=…&limit=50`",
    ]
    .iter()
    .enumerate()
    {
        row(
            label,
            all.iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, d)| *d)
                .collect(),
            "—",
        );
    }
    eprintln!(
        "load average: before the concurrent reads {load_before}; after {}",
        load_average()
    );
}

/// Which PostgreSQL the hub runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// The bench's own server: `fsync`, `synchronous_commit` and
    /// `full_page_writes` on, as in production.
    Durable,
    /// The test harness's server: all three off (an upper bound).
    FsyncOff,
}

impl Durability {
    fn label(self) -> &'static str {
        match self {
            Durability::Durable => "durable PostgreSQL (fsync on)",
            Durability::FsyncOff => "PostgreSQL with fsync off (upper bound)",
        }
    }
}

/// What one sync to one hub measured.
struct SyncRun {
    durability: Durability,
    n: usize,
    sync_secs: f64,
    bytes_sent: u64,
    behind_at_sync_end: i64,
    /// Seconds from the sync's start until every event was in the views.
    caught_up_at: f64,
    /// `(left, projected, seconds, running statements)` when the hub's
    /// projector ran out of its budget.
    fallback: Option<(i64, usize, f64, Vec<String>)>,
    load_before: String,
    load_after_sync: String,
    load_after_views: String,
}

impl SyncRun {
    fn log_rate(&self) -> f64 {
        self.n as f64 / self.sync_secs
    }

    fn views_rate(&self) -> f64 {
        self.n as f64 / self.caught_up_at
    }

    fn catch_up_rate(&self) -> f64 {
        self.behind_at_sync_end as f64 / (self.caught_up_at - self.sync_secs).max(1e-9)
    }
}

/// One `sync_once` of the node to `hub`, then the wait until the hub's
/// projector has every event entry in the views.
fn sync_and_project(
    rt: &tokio::runtime::Runtime,
    node: &Arc<Mutex<Node>>,
    node_net: &Net,
    hub: &HubProcess,
    store: &sentinel_hub::store::PgStore,
    n: usize,
    durability: Durability,
) -> SyncRun {
    let load_before = load_average();
    let started = Instant::now();
    let mut next_report = 100_000u64;
    let summary = rt
        .block_on(net::sync_once(node.clone(), node_net, hub.sync_addr, |e| {
            if let SessionEvent::Progress { sent, .. } = e {
                if *sent >= next_report {
                    eprintln!(
                        "  {sent} acknowledged at {:.1} s",
                        started.elapsed().as_secs_f64()
                    );
                    next_report += 100_000;
                }
            }
        }))
        .unwrap();
    let sync_secs = started.elapsed().as_secs_f64();
    let load_after_sync = load_average();
    // After the first hub, the node also holds that hub's own entries.
    assert!(summary.sent >= n as u64, "{summary:?}");
    assert!(summary.caught_up, "{summary:?}");
    let client = rt.block_on(store.client()).unwrap();
    let count = |sql: &str| -> i64 { rt.block_on(client.query_one(sql, &[])).unwrap().get(0) };
    // The bench's own queries go through the projector's partial index
    // (`entries_unprojected`), never a sequential scan of the log, so that
    // watching the projector does not slow it down.
    rt.block_on(client.batch_execute("SET enable_seqscan = off"))
        .unwrap();

    // How far behind the log the projector was, and how long until every
    // event is in the PostGIS views.
    let behind_at_sync_end =
        count("SELECT count(*) FROM entries WHERE NOT projected AND kind IN (1, 2)");
    // The hub's projector gets a time budget; if it has not finished by
    // then, its running statement is cancelled and the same projector code
    // (`PgStore::project_pending`) runs from this process after `ANALYZE`.
    let budget = std::env::var("SENTINEL_BENCH_PROJECTOR_WAIT_S")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(300.0);
    let pending = || {
        count(
            "SELECT count(*) FROM (SELECT 1 FROM entries
             WHERE NOT projected AND kind IN (1, 2) LIMIT 1) AS p",
        )
    };
    let mut fallback = None;
    let caught_up_at = loop {
        if pending() == 0 {
            break started.elapsed().as_secs_f64();
        }
        if started.elapsed().as_secs_f64() - sync_secs > budget {
            let left = count("SELECT count(*) FROM entries WHERE NOT projected AND kind IN (1, 2)");
            let running: Vec<String> = rt
                .block_on(client.query(
                    "SELECT round(extract(epoch FROM now() - query_start)::numeric, 1)::text
                         || ' s: ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 60)
                     FROM pg_stat_activity
                     WHERE datname = current_database() AND state <> 'idle'
                         AND pid <> pg_backend_pid()",
                    &[],
                ))
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            eprintln!("projector budget spent, {left} left; running: {running:?}");
            rt.block_on(client.batch_execute(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()
                     AND state <> 'idle';
                 ANALYZE",
            ))
            .unwrap();
            std::thread::sleep(Duration::from_secs(1));
            let left = count("SELECT count(*) FROM entries WHERE NOT projected AND kind IN (1, 2)");
            let t = Instant::now();
            // Until nothing is left (a chunk still rolling back from the
            // cancel is skipped by the first pass).
            let mut projected = 0;
            while pending() > 0 {
                projected += rt.block_on(store.project_pending()).unwrap().entries;
            }
            let secs = t.elapsed().as_secs_f64();
            fallback = Some((left, projected, secs, running));
            break started.elapsed().as_secs_f64();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let load_after_views = load_average();
    rt.block_on(client.batch_execute("RESET enable_seqscan"))
        .unwrap();
    // The hub may write entries of its own (at least `n`).
    assert!(count("SELECT count(*) FROM entries") >= n as i64);
    assert_eq!(count("SELECT count(*) FROM quarantine"), 0);
    let n_events = count("SELECT count(*) FROM events");
    if n_events != n as i64 {
        eprintln!("only {n_events} of {n} events have their row");
    }
    if pg_stats() && durability == Durability::Durable {
        rt.block_on(client.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
            .unwrap();
        let top = rt
            .block_on(client.query(
                "SELECT round(total_exec_time)::int8, calls, rows,
                     left(regexp_replace(query, '\\s+', ' ', 'g'), 110)
                 FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15",
                &[],
            ))
            .unwrap();
        eprintln!("pg_stat_statements, by total time (ms, calls, rows, statement):");
        for r in top {
            let (t, c, n, q): (i64, i64, i64, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
            eprintln!("  {t:>8} {c:>7} {n:>9}  {q}");
        }
    }
    SyncRun {
        durability,
        n,
        sync_secs,
        bytes_sent: summary.bytes_sent,
        behind_at_sync_end,
        caught_up_at,
        fallback,
        load_before,
        load_after_sync,
        load_after_views,
    }
}
