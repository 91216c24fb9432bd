//! What people feel of the web pages at scale: a hub holding N events
//! (100,000 by default, `SENTINEL_UI_BENCH_EVENTS`), the admin's timeline
//! and the events map opened in headless Chromium, timed from navigation
//! to the first page of rows and to the clusters drawn at world zoom.
//!
//! The events reach the hub as they would in the field: a node imports
//! them (`sentinel-node import`) and syncs with the hub (`sentinel-node
//! sync`), and the hub projects them; those times are printed too.
//!
//! `cargo bench -p sentinel --bench ui` (needs the release binaries:
//! `cargo build --release -p sentinel-node -p sentinel-hub`). Prints the
//! lines recorded in `docs/benchmarks.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/ui/browser.rs"]
mod browser;

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use browser::Browser;
use sentinel::deploy::client::Api;
use sentinel::deploy::{Binaries, Deployment, Plan};
use serde_json::Value;

const RUNS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// N point events spread over the inhabited world, as GeoJSON.
fn events_geojson(n: usize, path: &std::path::Path) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    write!(f, "{{\"type\":\"FeatureCollection\",\"features\":[")?;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let categories = ["flood", "fire", "power", "obstruction", "hazard", "medical"];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let lon = -170.0 + (x % 340_000) as f64 / 1000.0;
        let lat = -55.0 + ((x >> 20) % 125_000) as f64 / 1000.0;
        let sep = if i == 0 { "" } else { "," };
        write!(
            f,
            "{sep}{{\"type\":\"Feature\",\"geometry\":{{\"type\":\"Point\",\"coordinates\":[{lon:.5},{lat:.5}]}},\
             \"properties\":{{\"title\":\"Report {i}: water over the road near marker {}\",\
             \"description\":\"Observed by a patrol; road partly closed, traffic diverted.\",\
             \"category\":\"{}\",\"severity\":{},\"reported_ms\":{}}}}}",
            x % 997,
            categories[i % categories.len()],
            1 + (x % 5),
            now - (n - i) as u64 * 1000
        )?;
    }
    write!(f, "]}}")?;
    Ok(())
}

/// Milliseconds from navigation to `ready` (a script returning true).
async fn time_page(b: &Browser, url: &str, ready: &str) -> Result<f64> {
    b.client.goto("about:blank").await?;
    b.client.goto(url).await?;
    let started = Instant::now();
    loop {
        let v = b
            .client
            .execute(
                &format!("if ({ready}) return performance.now(); return null;"),
                vec![],
            )
            .await?;
        if let Value::Number(n) = v {
            return n.as_f64().context("a number");
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("{url}: not ready after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = std::env::var("SENTINEL_UI_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    if n == 0 {
        bail!("SENTINEL_UI_BENCH_EVENTS must be at least 1");
    }
    let root = std::env::current_dir()?;
    let bins = Binaries::in_dir(&root.join("target/release"))
        .or_else(|_| Binaries::in_dir(&root.join("../target/release")))?;
    let plan = Plan {
        hub: true,
        nodes: vec![],
        rate_limit_per_s: 1000,
        ..Plan::default()
    };
    let d = Deployment::start(&bins, &plan).await?;
    let hub = d.hub.as_ref().context("no hub")?;
    let bulk = d.offline_node(&bins, "bulk")?;
    let file = bulk.dir.with_extension("geojson");
    events_geojson(n, &file)?;
    let t = Instant::now();
    bulk.run(&["import", &file.to_string_lossy()])?;
    let import_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    bulk.run(&["sync", &hub.sync.to_string()])?;
    let sync_s = t.elapsed().as_secs_f64();
    let admin = hub
        .accounts
        .iter()
        .find(|a| a.role == "admin")
        .context("admin")?;
    let api = Api::sign_in(hub.http, &admin.name, &admin.password).await?;
    let t = Instant::now();
    loop {
        let v = api.get("/api/v1/events/clusters", &[("zoom", "0")]).await?;
        if v["total"].as_u64().unwrap_or(0) >= n as u64 {
            break;
        }
        if t.elapsed() > Duration::from_secs(1800) {
            bail!("the hub did not project {n} events in 30 min: {v}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let project_s = sync_s + t.elapsed().as_secs_f64();
    let url = d.hub_url().context("hub url")?;
    let b = Browser::start("ui_bench").await?;
    b.sign_in(&url, &admin.name, &admin.password).await?;
    let mut timeline = Vec::new();
    let mut map = Vec::new();
    for _ in 0..RUNS {
        timeline.push(
            time_page(
                &b,
                &format!("{url}#/timeline"),
                "document.querySelector('[data-test=timeline-rows] tr')",
            )
            .await?,
        );
        map.push(
            time_page(
                &b,
                &format!("{url}#/events"),
                "document.querySelector('[data-test=events-map] .cluster-count, [data-test=events-map] path.leaflet-interactive')",
            )
            .await?,
        );
    }
    // What the last map load waited for: its slowest requests.
    let slowest = b
        .client
        .execute(
            "return performance.getEntriesByType('resource')\
               .map(e => [e.name.replace(location.origin, ''), Math.round(e.startTime), Math.round(e.duration)])\
               .sort((a, b) => b[2] - a[2]).slice(0, 6)",
            vec![],
        )
        .await?;
    let outside = b.outside_requests(url.trim_end_matches('/')).await?;
    if !outside.is_empty() {
        bail!("the pages reached beyond the hub: {outside:?}");
    }
    println!(
        "| {n} events on the hub: import on a node | {import_s:.1} s ({:.0}/s) |",
        n as f64 / import_s
    );
    println!(
        "| node → hub sync until the hub's views hold them all | {project_s:.1} s ({:.0}/s) |",
        n as f64 / project_s
    );
    println!(
        "| admin's timeline, navigation → first page of rows (median of {RUNS}) | {:.0} ms (runs: {:?}) |",
        median(timeline.clone()),
        timeline.iter().map(|v| v.round()).collect::<Vec<_>>()
    );
    println!(
        "| events map at world zoom, navigation → clusters drawn (median of {RUNS}) | {:.0} ms (runs: {:?}) |",
        median(map.clone()),
        map.iter().map(|v| v.round()).collect::<Vec<_>>()
    );
    println!("slowest requests of the last map load [path, start ms, duration ms]: {slowest}");
    println!("load average at the end: {}", load_average());
    Ok(())
}
