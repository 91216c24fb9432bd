//! Part 2: two field nodes on real SpatiaLite stores.

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use rand_core::{OsRng, RngCore};
use sentinel_node::node::Node;
use sentinel_node::spatial::BBox;
use sentinel_node::store::log::{entries_after, head, heads};
use sentinel_node::store::query::EventQuery;
use sentinel_schema::*;

/// Two tiny real PNG photos (4×4 pixels, blue and red).
const PHOTO_BLUE: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0x08, 0x02, 0x00, 0x00, 0x00, 0x26, 0x93, 0x09,
    0x29, 0x00, 0x00, 0x00, 0x10, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xd0, 0x88, 0x3a, 0x01,
    0x47, 0x0c, 0xc4, 0x71, 0x00, 0x0e, 0x92, 0x14, 0xa1, 0x9f, 0x82, 0xf7, 0x7c, 0x00, 0x00, 0x00,
    0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];
const PHOTO_RED: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0x08, 0x02, 0x00, 0x00, 0x00, 0x26, 0x93, 0x09,
    0x29, 0x00, 0x00, 0x00, 0x10, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x38, 0x61, 0x23, 0x07,
    0x47, 0x0c, 0xc4, 0x71, 0x00, 0xe2, 0x23, 0x12, 0x21, 0x85, 0x56, 0x26, 0x29, 0x00, 0x00, 0x00,
    0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn new_id() -> EventId {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    EventId(b)
}

fn event(title: &str, category: &str, severity: u8, lon: f64, lat: f64) -> Result<NewEvent> {
    Ok(NewEvent {
        title: title.into(),
        description: String::new(),
        category: category.into(),
        severity,
        location: Point::new(lon, lat)?,
        reported_ms: now_ms(),
    })
}

/// Hands `to` every entry `from` holds that `to` lacks, verified first.
/// (Over QUIC with mutual TLS once peer-to-peer sync lands; the receiving
/// side runs exactly this verify-then-apply path.)
fn exchange(from: &Node, to: &mut Node) -> Result<usize> {
    let mut batch = Vec::new();
    for (author, h) in heads(from.store().conn())?.iter() {
        let have = head(to.store().conn(), author)?.map_or(0, |x| x.seq);
        if h.seq > have {
            batch.extend(entries_after(
                from.store().conn(),
                author,
                have,
                usize::MAX,
            )?);
        }
    }
    let (good, bad) = verify_all(batch);
    ensure!(bad.is_empty(), "{} entries failed verification", bad.len());
    let report = to.apply_remote(good, now_ms())?;
    Ok(report.applied)
}

fn list(node: &Node, title: &str, q: &EventQuery) -> Result<usize> {
    let page = node.store().search(q)?;
    println!("  {title}:");
    for e in &page.items {
        println!(
            "    {}  sev {}  {:<11} {}",
            &e.id[..12],
            e.severity,
            e.status,
            e.title
        );
    }
    Ok(page.items.len())
}

pub fn run(keep: Option<PathBuf>) -> Result<()> {
    println!("\n== Part 2: two field nodes, offline, then exchanging entries\n");
    let tmp = tempfile::TempDir::new()?;
    let base = keep.unwrap_or_else(|| tmp.path().to_path_buf());
    let mut ada = Node::init(&base.join("ada"), SigningKey::generate(&mut OsRng))
        .context("creating Ada's node")?;
    let mut bo = Node::init(&base.join("bo"), SigningKey::generate(&mut OsRng))
        .context("creating Bo's node")?;
    println!(
        "Ada's node: {} (SpatiaLite store in {})",
        ada.author().short(),
        ada.dir().display()
    );
    println!("Bo's node:  {}", bo.author().short());

    // Ada, offline, reports three events with photos.
    let flood = new_id();
    ada.report(
        &event(
            "Flooded underpass on Ringstrasse",
            "flood",
            4,
            13.4050,
            52.5200,
        )?,
        flood,
        Some("officer.ada"),
        now_ms(),
    )?;
    ada.attach(
        flood,
        PHOTO_BLUE,
        "underpass.png",
        Some("officer.ada"),
        now_ms(),
    )?;
    let tree = new_id();
    ada.report(
        &event(
            "Fallen tree blocking the tram line",
            "obstruction",
            3,
            13.4120,
            52.5230,
        )?,
        tree,
        Some("officer.ada"),
        now_ms(),
    )?;
    ada.attach(tree, PHOTO_RED, "tree.png", Some("officer.ada"), now_ms())?;
    let fire = new_id();
    ada.report(
        &event("Smoke from a warehouse roof", "fire", 5, 13.2000, 52.4500)?,
        fire,
        Some("officer.ada"),
        now_ms(),
    )?;
    println!("\nAda reported 3 events (2 with photos), each acknowledged only after its commit.");

    let centre = BBox::new(13.40, 52.51, 13.42, 52.53)?;
    let n_area = list(
        &ada,
        "Events in the city-centre box 13.40,52.51 – 13.42,52.53",
        &EventQuery {
            bbox: Some(centre),
            limit: 10,
            ..EventQuery::default()
        },
    )?;
    ensure!(n_area == 2, "expected 2 events in the box, found {n_area}");
    let n_text = list(
        &ada,
        "Full-text search for \"flood\"",
        &EventQuery {
            text: Some("flood".into()),
            limit: 10,
            ..EventQuery::default()
        },
    )?;
    ensure!(n_text == 1, "expected 1 event for 'flood', found {n_text}");
    let near = ada.spatial()?.nearest(Point::new(13.41, 52.52)?, 1);
    println!(
        "  Nearest to 13.41,52.52 (R-tree): {} at {:.0} m",
        near[0].0.short(),
        near[0].1
    );

    // The devices meet: Bo receives everything.
    let n = exchange(&ada, &mut bo)?;
    println!("\nThe devices meet: Bo receives {n} entries, each signature verified before it is applied.");

    // Both, offline again, work the flood at the same time.
    ada.edit(
        flood,
        &EventEdit::Title("Underpass flooded, 40 cm".into()),
        Some("officer.ada"),
        now_ms(),
    )?;
    ada.edit(
        flood,
        &EventEdit::Assign("officer.bo".into()),
        Some("officer.ada"),
        now_ms(),
    )?;
    bo.edit(
        flood,
        &EventEdit::Title("Underpass closed by police".into()),
        Some("officer.bo"),
        now_ms(),
    )?;
    bo.edit(
        flood,
        &EventEdit::Note {
            text: "Pumps requested".into(),
            actor: Some("officer.bo".into()),
            at_ms: now_ms(),
        },
        Some("officer.bo"),
        now_ms(),
    )?;
    println!("Offline again, Ada and Bo both retitle the flood; Ada assigns it, Bo adds a note.");
    exchange(&ada, &mut bo)?;
    exchange(&bo, &mut ada)?;
    let (va, vb) = (ada.show(flood)?.view, bo.show(flood)?.view);
    ensure!(va == vb, "the two nodes disagree after exchanging entries");
    println!("\nAfter exchanging again both nodes show the same event:");
    println!("  title     {}", va.title);
    println!("  assignee  {}", va.assignee.as_deref().unwrap_or("-"));
    println!(
        "  notes     {}",
        va.notes
            .iter()
            .map(|n| n.text.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    );
    let titles = va
        .conflicts
        .get("title")
        .context("the concurrent titles should be kept as a conflict")?;
    println!(
        "  conflict  title: {} (both kept; nothing silently dropped)",
        titles.join(" | ")
    );
    let (sa, sb) = (ada.stats()?, bo.stats()?);
    ensure!(sa.heads_digest == sb.heads_digest, "heads differ");
    println!("  heads digest on both: {}", &sa.heads_digest[..16]);

    for (name, node) in [("Ada", &ada), ("Bo", &bo)] {
        let report = node.store().audit()?;
        ensure!(report.ok(), "{name}'s audit failed: {:?}", report.problems);
        println!(
            "Audit of {name}'s node: {} entries from {} authors, every chain verifies.",
            report.entries, report.authors
        );
    }
    Ok(())
}
