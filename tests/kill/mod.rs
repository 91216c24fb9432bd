//! kill -9 during node → hub ingest, as a repeatable harness with a
//! count: a node pushes fresh reports to the real `sentinel-hub`, and at
//! a moment drawn from a seeded RNG both the hub and the node's `sync`
//! are killed with SIGKILL; the hub starts again on the same address.
//! After every cycle, every entry the hub acknowledged (the node's
//! receipts) must be in the hub's database, and the hub's copy of the
//! node's chain must verify from seq 1 (signatures and links). A last
//! sync must then empty the outbox.
//!
//! The other two kill harnesses are the node's: writes
//! (`node/tests/crash.rs`) and node ↔ node receive
//! (`node/tests/sync/kill.rs`). All three take their cycle count from
//! `SENTINEL_KILL_CYCLES` (this one: default 10; 1000 for the long
//! mode) and print one summary line: cycles, kills, entries
//! acknowledged, lost. `SENTINEL_KILL_SEED` picks the schedule.

use std::time::{Duration, Instant};

use crate::fleet::{count_knob, hub_chain, reports_file, Fleet, Rng};

const DEFAULT_CYCLES: u64 = 10;
/// Reports written on the node whenever fewer than [`LOW`] await a hub
/// receipt: a node sends at most 1,024 entries in one batch, so every
/// cycle's sync has at least two batches and kills land between them.
const PER_IMPORT: usize = 3000;
const LOW: u64 = 1100;

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn seed() -> u64 {
    match std::env::var("SENTINEL_KILL_SEED") {
        Err(_) => 0x5e47_0019_4b11_0003,
        Ok(text) => {
            let t = text.trim();
            let parsed = match t.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => t.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("SENTINEL_KILL_SEED={text:?} is not a number"))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_killed_during_ingest_keeps_every_receipted_entry() {
    let cycles = count_knob("SENTINEL_KILL_CYCLES", DEFAULT_CYCLES);
    let seed = seed();
    let began = Instant::now();
    let listen: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let fleet = match Fleet::new(listen, |db| Ok(db.connection_string())).await {
        Ok(f) => f,
        Err(e) => panic!("the fleet: {e:#}"),
    };
    let peer = listen.to_string();
    let node = fleet.node("ada").unwrap();
    let author = node.author().unwrap();
    let mut hub = Some(fleet.start_hub(None, "hub.log").unwrap());
    let store = fleet.store().await.unwrap();
    let mut rng = Rng(seed);
    // How long the hub took to commit a cycle's first batch, as last
    // measured: early kills are drawn within it (handshake, first batch),
    // the others land a few milliseconds after a commit (the batches
    // that follow), on a faster or slower machine alike.
    let mut first_commit = Duration::from_millis(400);
    let (mut kills, mut mid_ingest, mut acknowledged) = (0u64, 0u64, 0u64);

    for cycle in 1..=cycles {
        if node.stats().unwrap()["awaiting_receipt"].as_u64().unwrap() < LOW {
            let file = reports_file(fleet.dir.path(), &format!("c{cycle}"), PER_IMPORT);
            node.import(&file).unwrap();
        }
        let before = hub_chain(&store, &author).await.unwrap();
        let early = rng.between(0, 2) == 0;
        let early_at = first_commit.mul_f64(rng.unit());
        let after_commit = Duration::from_micros(rng.between(0, 30_000));
        let started = Instant::now();
        let mut sync = node.start(&["--json", "sync", &peer]).unwrap();
        let mut committed_at = None;
        let kill_at = loop {
            if !sync.is_running() {
                break None;
            }
            let now = started.elapsed();
            if early && now >= early_at {
                break Some(now);
            }
            if committed_at.is_none() {
                let head = store.head(&author).await.unwrap().map_or(0, |h| h.seq);
                if head > before {
                    committed_at = Some(now);
                    first_commit = now;
                }
            }
            if committed_at.is_some_and(|at| now >= at + after_commit) {
                break Some(now);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let killed = kill_at.is_some();
        if killed {
            // The hub first (mid-ingest), then the node's sync.
            drop(hub.take());
            sync.kill();
            kills += 1;
        }
        let ended = sync.finish(Duration::from_secs(120)).unwrap();
        if !killed {
            assert!(
                ended.status.success(),
                "cycle {cycle}: a sync left alone failed: {}",
                ended.stderr
            );
        }
        if hub.is_none() {
            hub = Some(fleet.start_hub(None, &format!("hub-{cycle}.log")).unwrap());
        }
        // Every receipted entry is at the hub, and its chain verifies.
        let s = node.stats().unwrap();
        let local = s["local_entries"].as_u64().unwrap();
        let receipted = local - s["awaiting_receipt"].as_u64().unwrap();
        let held = hub_chain(&store, &author).await.unwrap();
        assert!(
            held >= receipted,
            "seed {seed:#x} cycle {cycle}: the node holds receipts up to seq {receipted}, the \
             hub only {held}: acknowledged entries were lost"
        );
        if held > before && held < local {
            mid_ingest += 1;
        }
        acknowledged = receipted;
        eprintln!(
            "cycle {cycle:>4}: {}; hub {before} -> {held} of {local}, receipted {receipted}",
            match kill_at {
                Some(at) if early => format!("killed early, at {:>5.0} ms", at.as_secs_f64() * 1e3),
                Some(at) => format!(
                    "killed at {:>5.0} ms, after a commit",
                    at.as_secs_f64() * 1e3
                ),
                None => "completed".to_owned(),
            },
        );
    }
    // Left alone, a last sync empties the outbox.
    let last = node
        .run(&["--json", "sync", &peer], Duration::from_secs(120))
        .unwrap();
    assert!(last.status.success(), "{}", last.stderr);
    let s = node.stats().unwrap();
    assert_eq!(s["awaiting_receipt"], 0, "{s}");
    let local = s["local_entries"].as_u64().unwrap();
    assert_eq!(hub_chain(&store, &author).await.unwrap(), local);
    node.audit().unwrap();
    drop(hub);
    eprintln!(
        "kill harness node -> hub ingest: seed {seed:#x}: {cycles} cycles, {kills} kills \
         ({mid_ingest} left the hub part-way through the cycle's entries), {acknowledged} \
         entries acknowledged before the last sync, {local} in all, lost 0, in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    assert!(
        cycles < 6 || mid_ingest > 0,
        "seed {seed:#x}: no kill landed mid-ingest; the schedule no longer fits"
    );
}
