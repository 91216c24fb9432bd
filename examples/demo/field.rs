//! Part 2: two field nodes on real SpatiaLite stores.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{ensure, Context, Result};
use rand_core::{OsRng, RngCore};
use sentinel_certs::Ca;
use sentinel_node::net::{self, Net, Summary};
use sentinel_node::node::Node;
use sentinel_node::spatial::BBox;
use sentinel_schema::query::{EventFilter, EventSearch};
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
        reported_ms: sentinel_node::clock::now_ms(),
    })
}

/// A deployment CA for the demo, and an enrollment for each officer's node
/// (what `sentinel-certs ca create` and `sentinel-certs issue` do).
fn enroll_pair(ada_dir: &Path, bo_dir: &Path) -> Result<()> {
    const DAY: u64 = 24 * 3600 * 1000;
    let now = sentinel_node::clock::now_ms();
    let ca = Ca::create(
        "Demo deployment",
        now - DAY,
        now + 365 * DAY,
        SigningKey::generate(&mut OsRng),
    )?;
    for (dir, name) in [(ada_dir, "ada"), (bo_dir, "bo")] {
        let e = ca.enroll(
            DeviceRole::Node,
            name,
            SigningKey::generate(&mut OsRng),
            now - DAY,
            now + 30 * DAY,
            now,
        )?;
        sentinel_node::node::enroll(dir, &e)?;
    }
    Ok(())
}

/// Bo's node syncs with Ada's over QUIC with mutual TLS on loopback: one
/// session, both directions, until both are caught up.
fn sync_over_quic(ada: Node, bo: Node) -> Result<(Node, Node, Summary)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (ada_dir, bo_dir) = (ada.dir().to_path_buf(), bo.dir().to_path_buf());
    let ada_net = Arc::new(Net::load(&ada_dir, &ada)?);
    let bo_net = Net::load(&bo_dir, &bo)?;
    let ada = Arc::new(Mutex::new(ada));
    let bo = Arc::new(Mutex::new(bo));
    let summary = rt.block_on(async {
        let endpoint = net::listen(&ada_net, "127.0.0.1:0".parse()?)?;
        let addr = endpoint.local_addr()?;
        let server = tokio::spawn(net::serve(ada.clone(), ada_net.clone(), endpoint, |_| {}));
        let summary = net::sync_once(bo.clone(), &bo_net, addr, |_| {}).await;
        server.abort();
        Ok::<_, anyhow::Error>(summary?)
    })?;
    // Stopping the runtime ends the server's tasks; then the nodes are ours.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    let ada = Arc::try_unwrap(ada).map_err(|_| anyhow::anyhow!("Ada's node is still in use"))?;
    let bo = Arc::try_unwrap(bo).map_err(|_| anyhow::anyhow!("Bo's node is still in use"))?;
    let mut ada = ada
        .into_inner()
        .map_err(|_| anyhow::anyhow!("lock poisoned"))?;
    ada.catch_up_views()?;
    let bo = bo
        .into_inner()
        .map_err(|_| anyhow::anyhow!("lock poisoned"))?;
    Ok((ada, bo, summary))
}

fn list(node: &Node, title: &str, filter: EventFilter) -> Result<usize> {
    let q = EventSearch {
        filter,
        limit: 10,
        after: None,
    };
    let page = node.store().search(&q)?;
    println!("  {title}:");
    for e in &page.items {
        println!(
            "    {}  sev {}  {:<11} {}",
            &e.id.to_hex()[..12],
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
    let (ada_dir, bo_dir) = (base.join("ada"), base.join("bo"));
    drop(Node::init(&ada_dir, SigningKey::generate(&mut OsRng)).context("creating Ada's node")?);
    drop(Node::init(&bo_dir, SigningKey::generate(&mut OsRng)).context("creating Bo's node")?);
    enroll_pair(&ada_dir, &bo_dir)?;
    let mut ada = Node::open(&ada_dir)?;
    let mut bo = Node::open(&bo_dir)?;
    println!("A demo CA enrolled both devices: each node's key is certified for the role `node`.");
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
        sentinel_node::clock::now_ms(),
    )?;
    ada.attach(
        flood,
        PHOTO_BLUE,
        "underpass.png",
        Some("officer.ada"),
        sentinel_node::clock::now_ms(),
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
        sentinel_node::clock::now_ms(),
    )?;
    ada.attach(
        tree,
        PHOTO_RED,
        "tree.png",
        Some("officer.ada"),
        sentinel_node::clock::now_ms(),
    )?;
    let fire = new_id();
    ada.report(
        &event("Smoke from a warehouse roof", "fire", 5, 13.2000, 52.4500)?,
        fire,
        Some("officer.ada"),
        sentinel_node::clock::now_ms(),
    )?;
    println!("\nAda reported 3 events (2 with photos), each acknowledged only after its commit.");

    let centre = BBox::new(13.40, 52.51, 13.42, 52.53)?;
    let n_area = list(
        &ada,
        "Events in the city-centre box 13.40,52.51 – 13.42,52.53",
        EventFilter {
            area: Some(centre.into()),
            ..EventFilter::default()
        },
    )?;
    ensure!(n_area == 2, "expected 2 events in the box, found {n_area}");
    let n_text = list(
        &ada,
        "Full-text search for \"flood\"",
        EventFilter {
            text: Some("flood".into()),
            ..EventFilter::default()
        },
    )?;
    ensure!(n_text == 1, "expected 1 event for 'flood', found {n_text}");
    let near = ada.spatial()?.nearest(Point::new(13.41, 52.52)?, 1);
    println!(
        "  Nearest to 13.41,52.52 (R-tree): {} at {:.0} m",
        near[0].0.short(),
        near[0].1
    );

    // The devices meet: Bo syncs with Ada over QUIC.
    let (a, b, s) = sync_over_quic(ada, bo)?;
    (ada, bo) = (a, b);
    println!(
        "\nThe devices meet: Bo syncs with Ada over QUIC with mutual TLS and receives {} entries \
         ({} bytes), every signature, certificate and role checked before they are applied.",
        s.received, s.bytes_received
    );

    // Both, offline again, work the flood at the same time.
    ada.edit(
        flood,
        &EventEdit::Title("Underpass flooded, 40 cm".into()),
        Some("officer.ada"),
        sentinel_node::clock::now_ms(),
    )?;
    ada.edit(
        flood,
        &EventEdit::Assign("officer.bo".into()),
        Some("officer.ada"),
        sentinel_node::clock::now_ms(),
    )?;
    bo.edit(
        flood,
        &EventEdit::Title("Underpass closed by police".into()),
        Some("officer.bo"),
        sentinel_node::clock::now_ms(),
    )?;
    bo.edit(
        flood,
        &EventEdit::Note {
            text: "Pumps requested".into(),
            actor: Some("officer.bo".into()),
            at_ms: sentinel_node::clock::now_ms(),
        },
        Some("officer.bo"),
        sentinel_node::clock::now_ms(),
    )?;
    println!("Offline again, Ada and Bo both retitle the flood; Ada assigns it, Bo adds a note.");
    let (a, b, s) = sync_over_quic(ada, bo)?;
    (ada, bo) = (a, b);
    println!(
        "They meet again: one session moves {} entries one way and {} the other.",
        s.received, s.sent
    );
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
