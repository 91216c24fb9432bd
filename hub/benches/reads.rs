//! The hub's read API under 100 concurrent clients at 1,000,000 events.
//!
//! Run: `cargo bench -p sentinel-hub --bench reads`
//! (`SENTINEL_BENCH_SCALE=0.01` for 10,000 events). Prints a Markdown
//! table; with `SENTINEL_BENCH_OUT` set, appends the row `hub_read_p95`.
//!
//! - 1,000,000 `event_change` entries, each creating one event, signed by
//!   100 officer identities (as `benches/ingest.rs` makes them: events
//!   uniform in lon 5–15, lat 45–55), go straight into a throwaway
//!   PostgreSQL/PostGIS database through the store's bulk append (the test
//!   hook `PgStore::danger_append_unchecked`: the chains are whole, so it
//!   skips only checks these entries pass; the sync itself is measured by
//!   `benches/ingest.rs`), and the projector (`PgStore::project_pending`)
//!   fills the views, then `ANALYZE`.
//! - The real `sentinel-hub serve` binary then runs as a child process on
//!   that database (default pool, no rate limit), and 100 client threads
//!   in this process each sign in as an admin on a keep-alive HTTP/1.1
//!   connection of their own and make 200 requests, a mix of what an
//!   admin console asks: box queries (`events?bbox=…&limit=500`, 50 %),
//!   one event's detail (25 %), the newest severe events
//!   (`events?min_severity=4&limit=50`, 15 %), one officer's timeline
//!   (`timeline?author=…&limit=50`, 10 %). Twice: **saturated** (each
//!   client sends its next request as soon as the last is answered) and
//!   **paced** (one request every 250 ms per client from a random start,
//!   ~400 requests/s offered, each timed from when it was *due*).
//! - The hub's own request log (the time from its router's first look at
//!   a request to its answer) is read back from its stderr and shown
//!   beside the client's figures, so time inside the hub can be told from
//!   time on the wire or in the clients.
//!
//! The row `hub_read_p95` is the paced phase's p95 (the saturated phase
//! is a closed loop on 2 shared cores: its latency is the queue length
//! over the throughput, and it is shown beside it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use sentinel_hub::testing::TestDatabase;
use sentinel_schema::*;
use sentinel_sync::testing::Xorshift;

const AUTHORS: usize = 100;
/// The region the events lie in: lon 5–15, lat 45–55.
const REGION: (f64, f64, f64, f64) = (5.0, 45.0, 15.0, 55.0);
/// How many clients read the API at once, and how many requests each makes.
const CLIENTS: usize = 100;
const REQUESTS_PER_CLIENT: usize = 200;
/// In the paced run, each client's interval between requests.
const PACED_INTERVAL: Duration = Duration::from_millis(250);
const GOAL_MS: f64 = 20.0;

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
        let new = NewEvent {
            title: format!("Incident {a}-{i}: water over the road"),
            description: "Reported from the field; crew requested.".into(),
            category: ["flood", "fire", "obstruction", "medical"][i % 4].into(),
            severity: (i % 5) as u8 + 1,
            location: Point::new(x0 + (x1 - x0) * rng.unit(), y0 + (y1 - y0) * rng.unit()).unwrap(),
            reported_ms: t0 + i as u64,
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

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(TestDatabase::create()).unwrap();
    let store = rt.block_on(db.open_store()).unwrap();

    // Entries signed on both cores, appended as they come (one author's
    // chain at a time, in order).
    let t = Instant::now();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<SignedEntry>>(threads);
    std::thread::scope(|s| {
        for k in 0..threads {
            let tx = tx.clone();
            s.spawn(move || {
                for a in (k..AUTHORS).step_by(threads) {
                    tx.send(chain(a, per_author, t0)).unwrap();
                }
            });
        }
        drop(tx);
        for c in rx {
            for part in c.chunks(5_000) {
                rt.block_on(store.danger_append_unchecked(part, now))
                    .unwrap();
            }
        }
    });
    eprintln!(
        "signed and appended {n} entries in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let projected = rt.block_on(store.project_pending()).unwrap();
    let client = rt.block_on(store.client()).unwrap();
    rt.block_on(client.batch_execute("VACUUM ANALYZE")).unwrap();
    let n_events: i64 = rt
        .block_on(client.query_one("SELECT count(*) FROM events", &[]))
        .unwrap()
        .get(0);
    eprintln!(
        "projected {} entries into {n_events} events in {:.1} s",
        projected.entries,
        t.elapsed().as_secs_f64()
    );

    // Some event ids and boxes to ask for.
    let mut rng = Xorshift(0x1234_5678_9abc_def1);
    let stretch = (1_000_000.0 / n as f64).sqrt();
    let mut boxes = Vec::new();
    for _ in 0..2_000 {
        let w = (0.02 + 0.07 * rng.unit()) * stretch;
        let h = (0.02 + 0.07 * rng.unit()) * stretch;
        let (x0, y0, x1, y1) = REGION;
        let x = x0 + (x1 - x0 - w) * rng.unit();
        let y = y0 + (y1 - y0 - h) * rng.unit();
        boxes.push((x, y, x + w, y + h));
    }
    let ids: Vec<EventId> = (0..2_000)
        .map(|_| {
            let a = (rng.unit() * AUTHORS as f64) as u128;
            let i = (rng.unit() * per_author as f64) as u128;
            EventId(((a << 64) | (i + 1)).to_be_bytes())
        })
        .collect();

    let hub = HubProcess::start(&db, &ca, dir.path(), 1000, pool_size());
    // Warm up: one client, every kind of request.
    let mut http = Http::connect(hub.http_addr);
    http.login();
    for k in 0..200 {
        let (status, body) = http.get(&path_of(k % 4, &boxes, &ids, &mut rng));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    drop(http);

    println!("| measurement | result | goal |");
    println!("|---|---|---|");
    let saturated = concurrent_reads(&hub, &boxes, &ids, n_events, None);
    let paced = concurrent_reads(&hub, &boxes, &ids, n_events, Some(PACED_INTERVAL));

    let other = hub.other_stderr();
    let errors: Vec<&String> = other
        .iter()
        .filter(|l| !l.contains("sentinel_http::request"))
        .take(20)
        .collect();
    if !errors.is_empty() {
        eprintln!("hub stderr (not session reports, not request lines):");
        for l in errors {
            eprintln!("  {l}");
        }
    }
    if let Ok(out) = std::env::var("SENTINEL_BENCH_OUT") {
        use std::io::Write;
        let command = format!(
            "{}cargo bench -p sentinel-hub --bench reads",
            match std::env::var("SENTINEL_BENCH_SCALE") {
                Ok(s) => format!("SENTINEL_BENCH_SCALE={s} "),
                Err(_) => String::new(),
            }
        );
        let row = serde_json::json!({
            "row": "hub_read_p95",
            "figure": format!(
                "p95 {:.1} ms paced ({:.0} requests/s offered by {CLIENTS} clients, {n_events} events); saturated p95 {:.1} ms at {:.0} requests/s",
                paced.p95_ms, paced.rate, saturated.p95_ms, saturated.rate
            ),
            "value": (paced.p95_ms * 10.0).round() / 10.0,
            "unit": "ms",
            "goal": "p95 ≤ 20 ms",
            "met": paced.p95_ms <= GOAL_MS,
            "command": command,
            "note": format!(
                "load average {} before the paced phase; inside the hub (its request log) paced p95 {:.1} ms, saturated p95 {:.1} ms",
                paced.load_before, paced.hub_p95_ms, saturated.hub_p95_ms
            ),
        });
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .unwrap();
        writeln!(f, "{row}").unwrap();
    }
    drop(client);
    drop(hub);
}

/// `SENTINEL_BENCH_POOL_SIZE`: the hub's PostgreSQL pool (default: the
/// hub's own default).
fn pool_size() -> Option<usize> {
    std::env::var("SENTINEL_BENCH_POOL_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
}

/// A request of `kind`: 0 a box query, 1 an event's detail, 2 the newest
/// severe events, 3 an officer's timeline.
fn path_of(
    kind: usize,
    boxes: &[(f64, f64, f64, f64)],
    ids: &[EventId],
    rng: &mut Xorshift,
) -> String {
    match kind {
        0 => {
            let b = boxes[(rng.unit() * boxes.len() as f64) as usize];
            format!(
                "/api/v1/events?bbox={:.6},{:.6},{:.6},{:.6}&limit=500",
                b.0, b.1, b.2, b.3
            )
        }
        1 => {
            let id = ids[(rng.unit() * ids.len() as f64) as usize];
            format!("/api/v1/events/{id}")
        }
        2 => "/api/v1/events?min_severity=4&limit=50".to_owned(),
        _ => {
            let a = (rng.unit() * AUTHORS as f64) as usize;
            let author = author_of(&officer(a));
            format!("/api/v1/timeline?author={author}&limit=50")
        }
    }
}

/// What one phase measured.
struct Phase {
    p95_ms: f64,
    hub_p95_ms: f64,
    rate: f64,
    load_before: String,
}

/// `text` without ANSI escape sequences (`ESC [ … letter`).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The hub's request lines (target `sentinel_http::request`): the
/// latencies (ms, sorted) of those after the first `skip` but logins, and
/// how many there are in all.
fn hub_latencies(hub: &HubProcess, skip: usize) -> (Vec<f64>, usize) {
    let text = std::fs::read_to_string(&hub.stderr_path).unwrap_or_default();
    let mut lat = Vec::new();
    let mut lines = 0;
    for l in text
        .lines()
        .filter(|l| l.contains("sentinel_http::request"))
    {
        lines += 1;
        let l = plain(l);
        if lines <= skip || l.contains("/api/v1/login") {
            continue;
        }
        let ms = l
            .split_once("latency_ms=")
            .and_then(|(_, rest)| rest.split_whitespace().next()?.parse::<f64>().ok());
        if let Some(ms) = ms {
            lat.push(ms);
        }
    }
    lat.sort_by(f64::total_cmp);
    (lat, lines)
}

/// `CLIENTS` threads, each signed in as the bench's admin on its own
/// keep-alive connection, ask the mix of the module documentation.
///
/// Without `interval`, every client sends its next request as soon as the
/// last answer arrives (a closed loop). With it, each client sends on a
/// fixed schedule, one request every `interval` from a random start, and
/// every request is timed from the moment it was *due*, so a late send
/// counts against the hub (no coordinated omission).
fn concurrent_reads(
    hub: &HubProcess,
    boxes: &[(f64, f64, f64, f64)],
    ids: &[EventId],
    n_events: i64,
    interval: Option<Duration>,
) -> Phase {
    let clients: Vec<Http> = (0..CLIENTS)
        .map(|_| {
            let mut http = Http::connect(hub.http_addr);
            http.login();
            http
        })
        .collect();
    let (_, logged_before) = hub_latencies(hub, usize::MAX);
    let pool_before = pool_wait(hub);
    let load_before = load_average();
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
                        let kind = if pick < 0.5 {
                            0
                        } else if pick < 0.75 {
                            1
                        } else if pick < 0.9 {
                            2
                        } else {
                            3
                        };
                        let path = path_of(kind, boxes, ids, &mut rng);
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
    let load_after = load_average();
    let all: Vec<(usize, Duration)> = per_kind.into_iter().flatten().collect();
    let total = all.len();
    let rate = total as f64 / wall.as_secs_f64();
    let row = |label: &str, mut lat: Vec<Duration>, goal: &str| -> f64 {
        lat.sort();
        println!(
            "| {label}: {} requests | p50 {}, **p95 {}**, p99 {}, max {} | {goal} |",
            lat.len(),
            ms(pct(&lat, 0.5)),
            ms(pct(&lat, 0.95)),
            ms(pct(&lat, 0.99)),
            ms(*lat.last().unwrap())
        );
        pct(&lat, 0.95).as_secs_f64() * 1000.0
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
        "| read API, {CLIENTS} concurrent admin clients (one keep-alive connection each) at {n_events} events, {how} | {total} in {:.1} s: {rate:.0} requests/s (load average {load_before} before, {load_after} after) | — |",
        wall.as_secs_f64(),
    );
    let p95_ms = row(
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
    // Give the hub's log a moment to reach the file.
    std::thread::sleep(Duration::from_millis(200));
    let (inside, _) = hub_latencies(hub, logged_before);
    let hub_p95_ms = if inside.is_empty() {
        f64::NAN
    } else {
        let p = |q: f64| inside[((inside.len() as f64 * q) as usize).min(inside.len() - 1)];
        println!(
            "| — inside the hub (its request log): {} requests | p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms, max {:.3} ms | — |",
            inside.len(),
            p(0.5),
            p(0.95),
            p(0.99),
            inside[inside.len() - 1]
        );
        p(0.95)
    };
    let ((sum0, n0), (sum1, n1)) = (pool_before, pool_wait(hub));
    if n1 > n0 {
        println!(
            "| — of which waiting for a pooled PostgreSQL connection (`sentinel_hub_db_pool_wait_seconds`): {} checkouts | mean {:.3} ms | — |",
            n1 - n0,
            (sum1 - sum0) * 1000.0 / (n1 - n0) as f64
        );
    }
    Phase {
        p95_ms,
        hub_p95_ms,
        rate,
        load_before,
    }
}

/// The hub's pool-wait histogram from its `/metrics`: (sum of seconds,
/// count of checkouts).
fn pool_wait(hub: &HubProcess) -> (f64, u64) {
    let mut http = Http::connect(hub.http_addr);
    let (status, body) = http.get("/metrics");
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    let value = |suffix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("sentinel_hub_db_pool_wait_seconds_{suffix} ")))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (value("sum"), value("count") as u64)
}
