//! Field node benchmarks against a real SpatiaLite store on disk.
//!
//! Run: `cargo bench -p sentinel-node --bench node`
//! (`SENTINEL_BENCH_SCALE=0.1` for a quick run). Prints a Markdown table
//! for `docs/benchmarks.md`.
//!
//! - single report latency, durable (one transaction + fsync per report);
//! - batched local reports (500 per transaction);
//! - an import: records of the side-by-side benchmark's shape, 1,000 per
//!   transaction (row `import_events` of the goals table: with
//!   `SENTINEL_BENCH_OUT` set, appended there as one JSON line);
//! - applying pre-verified remote entries: into the durable log, then the
//!   projector bringing the views up to date (Automerge, SpatiaLite rows
//!   and spatial index, FTS): events edited after creation, and events
//!   created and never edited;
//! - bounding-box queries returning at most 100 events, on the in-memory
//!   R-tree at 1M events and on SpatiaLite's spatial index.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use sentinel_node::node::Node;
use sentinel_node::spatial::{BBox, SpatialIndex};
use sentinel_schema::*;
use sentinel_sync::testing::Xorshift;

const T0: u64 = 1_795_000_000_000;

fn scale() -> f64 {
    std::env::var("SENTINEL_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

fn n(base: usize) -> usize {
    ((base as f64 * scale()) as usize).max(10)
}

fn new_event(rng: &mut Xorshift, i: usize) -> NewEvent {
    NewEvent {
        title: format!("Incident {i}: water over the road"),
        description: "Reported from the field; crew requested.".into(),
        category: ["flood", "fire", "obstruction", "medical"][i % 4].into(),
        severity: (i % 5) as u8 + 1,
        location: Point::new(-10.0 + 40.0 * rng.unit(), 35.0 + 25.0 * rng.unit()).unwrap(),
        reported_ms: T0 + i as u64,
    }
}

/// A record shaped like the side-by-side benchmark's: a 200-character
/// description, a place anywhere on the globe.
fn import_record(rng: &mut Xorshift, i: usize) -> NewEvent {
    const ASCII: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-";
    let description = (0..200)
        .map(|_| char::from(ASCII[(rng.unit() * ASCII.len() as f64) as usize % ASCII.len()]))
        .collect();
    NewEvent {
        title: format!("Incident near Lisbon #{i}"),
        description,
        category: "infrastructure".into(),
        severity: (i % 5) as u8 + 1,
        location: Point::new(-180.0 + 360.0 * rng.unit(), -90.0 + 180.0 * rng.unit()).unwrap(),
        reported_ms: T0 + i as u64,
    }
}

/// Appends one row of the goals table to the file `SENTINEL_BENCH_OUT`
/// names, when it is set.
fn bench_row(row: &str, figure: &str, value: f64, unit: &str, goal: &str, met: bool) {
    let Ok(path) = std::env::var("SENTINEL_BENCH_OUT") else {
        return;
    };
    let line = serde_json::json!({
        "row": row,
        "figure": figure,
        "value": value,
        "unit": unit,
        "goal": goal,
        "met": met,
        "command": "cargo bench -p sentinel-node --bench node",
        "note": format!("scale {}", scale()),
    });
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

fn ev(i: usize) -> EventId {
    EventId((i as u128 + 1).to_be_bytes())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    println!("| measurement | result | goal |");
    println!("|---|---|---|");

    // 1. Single durable reports on a node that already holds events.
    let dir = tempfile::TempDir::new().unwrap();
    let mut node = Node::init(dir.path(), SigningKey::from_bytes(&[1; 32])).unwrap();
    let pre: Vec<(EventId, NewEvent)> = (0..n(10_000))
        .map(|i| (ev(i), new_event(&mut rng, i)))
        .collect();
    for chunk in pre.chunks(500) {
        node.report_many(chunk, Some("bench"), T0).unwrap();
    }
    let mut lat = Vec::new();
    for i in 0..n(1_000) {
        let e = new_event(&mut rng, i);
        let t = Instant::now();
        node.report(&e, ev(1_000_000 + i), Some("bench"), T0 + i as u64)
            .unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "| single report, durable ({} reports on a store of {} events) | p50 {}, p99 {}, max {} | p99 ≤ 5 ms |",
        lat.len(),
        pre.len(),
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.99)),
        ms(*lat.last().unwrap())
    );

    // 2. Batched local reports.
    let batch: Vec<(EventId, NewEvent)> = (0..n(50_000))
        .map(|i| (ev(2_000_000 + i), new_event(&mut rng, i)))
        .collect();
    let t = Instant::now();
    for chunk in batch.chunks(500) {
        node.report_many(chunk, Some("bench"), T0).unwrap();
    }
    let rate = batch.len() as f64 / t.elapsed().as_secs_f64();
    println!("| batched local reports (500 per transaction, {} events) | {rate:.0} events/s | ≥ 5,000/s |", batch.len());
    drop(node);

    // 2b. An import: records shaped like the side-by-side benchmark's
    //     (200-character description), 1,000 per transaction, into an
    //     empty node, as `sentinel-node import --batch 1000` commits them.
    let records: Vec<(EventId, NewEvent)> = (0..n(100_000))
        .map(|i| (ev(3_000_000 + i), import_record(&mut rng, i)))
        .collect();
    let dir = tempfile::TempDir::new().unwrap();
    let mut node = Node::init(dir.path(), SigningKey::from_bytes(&[3; 32])).unwrap();
    let t = Instant::now();
    for chunk in records.chunks(1000) {
        node.report_many(chunk, Some("bench"), T0).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    let rate = records.len() as f64 / secs;
    println!(
        "| import: records of ~390 B, 1,000 per transaction ({} events) | {rate:.0} events/s | ≥ 15,000/s |",
        records.len()
    );
    bench_row(
        "import_events",
        &format!("{rate:.0} events/s ({} in {secs:.2} s)", records.len()),
        rate,
        "events/s",
        "≥ 15,000 events/s",
        rate >= 15_000.0,
    );
    drop(node);

    // 3. Remote entries from 20 authors: each event created once and
    //    edited three times (a note, a status change, a severity change).
    let n_remote = n(100_000);
    let authors: Vec<SigningKey> = (0..20u8)
        .map(|i| SigningKey::from_bytes(&[100 + i; 32]))
        .collect();
    let mut chains: Vec<Vec<SignedEntry>> = vec![Vec::new(); authors.len()];
    let mut made = 0usize;
    let mut i = 0usize;
    while made < n_remote {
        let a = i % authors.len();
        let key = &authors[a];
        let author = author_of(key);
        let (mut doc, change) = EventDoc::create(&author, &new_event(&mut rng, i), T0).unwrap();
        let mut changes = vec![change];
        changes.push(
            doc.edit(
                &author,
                &EventEdit::Note {
                    text: "on scene".into(),
                    actor: None,
                    at_ms: T0,
                },
                T0,
            )
            .unwrap(),
        );
        changes.push(
            doc.edit(&author, &EventEdit::Assign("officer.bo".into()), T0)
                .unwrap(),
        );
        changes.push(
            doc.edit(
                &author,
                &EventEdit::Severity(((i % 5) as u8 + 1) % 5 + 1),
                T0,
            )
            .unwrap(),
        );
        for change in changes {
            let chain = &mut chains[a];
            let prev = chain.last();
            let entry = Entry {
                author,
                seq: prev.map_or(1, |p| p.seq() + 1),
                prev: prev.map(|p| p.id()),
                hlc: Hlc::new(T0 + made as u64, 0),
                actor: Some("officer.ada".into()),
                body: Body::EventChange(EventChange {
                    event: ev(5_000_000 + i),
                    change,
                }),
            };
            chain.push(entry.sign(key).unwrap());
            made += 1;
        }
        i += 1;
    }
    let all: Vec<SignedEntry> = chains.into_iter().flatten().collect();
    let total = all.len();
    let avg_bytes = all.iter().map(|e| e.as_bytes().len()).sum::<usize>() / total;
    let t = Instant::now();
    let (verified, bad) = verify_all(all);
    let verify_rate = total as f64 / t.elapsed().as_secs_f64();
    assert!(bad.is_empty());
    let dir = tempfile::TempDir::new().unwrap();
    let mut node = Node::init(dir.path(), SigningKey::from_bytes(&[2; 32])).unwrap();
    let mut batches: Vec<Vec<VerifiedEntry>> = Vec::new();
    let mut it = verified.into_iter().peekable();
    while it.peek().is_some() {
        batches.push(it.by_ref().take(1024).collect());
    }
    let t = Instant::now();
    for b in batches {
        let r = node.store_mut().apply_remote(b, T0).unwrap();
        assert!(r.quarantined.is_empty());
    }
    let log_time = t.elapsed();
    let t = Instant::now();
    let p = node.store_mut().project_pending().unwrap();
    let view_time = t.elapsed();
    assert_eq!(p.entries, total);
    println!(
        "| verify signatures of remote entries (batch, {total} entries of {avg_bytes} B) | {verify_rate:.0} entries/s | — |"
    );
    println!(
        "| apply pre-verified remote entries into the durable log (1,024 per transaction) | {:.0} entries/s | ≥ 40,000/s |",
        total as f64 / log_time.as_secs_f64()
    );
    println!(
        "| projector: views catch up (Automerge, SpatiaLite rows + spatial index, FTS; {} events) | {:.0} entries/s | ≥ 15,000/s |",
        p.events.len(),
        total as f64 / view_time.as_secs_f64()
    );

    // 3b. Remote events created and not edited (the common case a
    //     receiving node projects): one change each, from 20 authors.
    let n_created = n(100_000);
    let mut chains: Vec<Vec<SignedEntry>> = vec![Vec::new(); authors.len()];
    for i in 0..n_created {
        let a = i % authors.len();
        let author = author_of(&authors[a]);
        let (_, change) = EventDoc::create(&author, &import_record(&mut rng, i), T0).unwrap();
        let chain = &mut chains[a];
        let prev = chain.last();
        let entry = Entry {
            author,
            seq: prev.map_or(1, |p| p.seq() + 1),
            prev: prev.map(|p| p.id()),
            hlc: Hlc::new(T0 + i as u64, 0),
            actor: Some("officer.ada".into()),
            body: Body::EventChange(EventChange {
                event: ev(7_000_000 + i),
                change,
            }),
        };
        chain.push(entry.sign(&authors[a]).unwrap());
    }
    let (verified, bad) = verify_all(chains.into_iter().flatten().collect());
    assert!(bad.is_empty());
    let dir_b = tempfile::TempDir::new().unwrap();
    let mut node_b = Node::init(dir_b.path(), SigningKey::from_bytes(&[4; 32])).unwrap();
    let store = node_b.store_mut();
    let t = Instant::now();
    let mut it = verified.into_iter().peekable();
    while it.peek().is_some() {
        let r = store
            .apply_remote(it.by_ref().take(1024).collect(), T0)
            .unwrap();
        assert!(r.quarantined.is_empty());
    }
    let log_time = t.elapsed();
    let t = Instant::now();
    let p = store.project_pending().unwrap();
    let view_time = t.elapsed();
    assert_eq!(p.events.len(), n_created);
    println!(
        "| remote events created and not edited ({n_created}, one change each): log, then views | {:.0} entries/s into the log, {:.0} events/s projected | — |",
        n_created as f64 / log_time.as_secs_f64(),
        n_created as f64 / view_time.as_secs_f64()
    );
    drop(node_b);

    // 4. Bounding boxes with at most 100 hits.
    let positions = node.store().event_positions().unwrap();
    let n_sql = positions.len();
    let mut sql_lat = Vec::new();
    let mut boxes = Vec::new();
    for _ in 0..1000 {
        let (x, y) = (-10.0 + 39.0 * rng.unit(), 35.0 + 24.0 * rng.unit());
        boxes.push((x, y));
    }
    // Box side chosen so a box holds ~50 events on average at this density.
    let side = (40.0 * 25.0 * 50.0 / n_sql as f64).sqrt();
    let mut hits_sql = 0usize;
    for (x, y) in &boxes {
        let b = BBox::new(*x, *y, (x + side).min(180.0), (y + side).min(90.0)).unwrap();
        let t = Instant::now();
        hits_sql = hits_sql.max(node.store().ids_in_bbox_sql(&b).unwrap().len());
        sql_lat.push(t.elapsed());
    }
    sql_lat.sort();
    println!(
        "| bbox on SpatiaLite's spatial index, {n_sql} events (≤ {hits_sql} hits) | p50 {}, p99 {} | — |",
        ms(pct(&sql_lat, 0.5)),
        ms(pct(&sql_lat, 0.99))
    );

    let n_tree = n(1_000_000);
    let points: Vec<(EventId, Point)> = (0..n_tree)
        .map(|i| {
            (
                ev(i),
                Point::new(-10.0 + 40.0 * rng.unit(), 35.0 + 25.0 * rng.unit()).unwrap(),
            )
        })
        .collect();
    let t = Instant::now();
    let tree = SpatialIndex::bulk_load(points);
    let load = t.elapsed();
    let side = (40.0 * 25.0 * 50.0 / n_tree as f64).sqrt();
    let mut tree_lat = Vec::new();
    let mut max_hits = 0;
    for _ in 0..10_000 {
        let (x, y) = (-10.0 + 39.0 * rng.unit(), 35.0 + 24.0 * rng.unit());
        let b = BBox::new(x, y, x + side, y + side).unwrap();
        let t = Instant::now();
        let hits = tree.bbox(&b);
        tree_lat.push(t.elapsed());
        max_hits = max_hits.max(hits.len());
    }
    tree_lat.sort();
    println!(
        "| bbox on the in-memory R-tree, {n_tree} events (≤ {max_hits} hits; bulk load {}) | p50 {}, p99 {} | p99 ≤ 1 ms |",
        ms(load),
        ms(pct(&tree_lat, 0.5)),
        ms(pct(&tree_lat, 0.99))
    );
}
