//! The deterministic simulator, over many seeds.
//!
//! `cargo test -p sentinel-sync sim` runs 500 seeds;
//! `SENTINEL_SIM_SEEDS=5000` runs more, `SENTINEL_SIM_SEED=<n>` exactly one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use sentinel_sync::testing::sim::{run, SimConfig, SimReport};

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn simulated_devices_converge_and_lose_nothing() {
    let seeds: Vec<u64> = match env_number("SENTINEL_SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_number("SENTINEL_SIM_SEEDS").unwrap_or(500)).collect(),
    };
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let failures: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    let totals: Mutex<Vec<SimReport>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(&seed) = seeds.get(i) else { break };
                match run(&SimConfig::new(seed)) {
                    Ok(report) => totals.lock().unwrap().push(report),
                    Err(why) => failures.lock().unwrap().push((seed, why)),
                }
            });
        }
    });
    let totals = totals.into_inner().unwrap();
    let sum = |f: fn(&SimReport) -> u64| totals.iter().map(f).sum::<u64>();
    eprintln!(
        "simulated {} seeds in {:.1?}: {} entries, {} events, {} sessions, {} frames \
         ({} dropped, {} duplicated, {} reordered, {} garbled), {} crashes, {} store failures, \
         at most {} clean rounds",
        seeds.len(),
        started.elapsed(),
        sum(|r| r.n_entries as u64),
        sum(|r| r.n_events as u64),
        sum(|r| r.sessions),
        sum(|r| r.frames),
        sum(|r| r.dropped),
        sum(|r| r.duplicated),
        sum(|r| r.reordered),
        sum(|r| r.garbled),
        sum(|r| r.crashes),
        sum(|r| r.store_failures),
        totals.iter().map(|r| r.rounds).max().unwrap_or(0),
    );
    let mut closes = std::collections::BTreeMap::<String, u64>::new();
    for r in &totals {
        for (code, n) in &r.closes {
            *closes.entry(code.clone()).or_default() += n;
        }
    }
    eprintln!("sessions closed, by code: {closes:?}");
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    for (seed, why) in &failures {
        eprintln!(
            "seed {seed} failed: {why}\n  reproduce: SENTINEL_SIM_SEED={seed} cargo test -p sentinel-sync --test integration sim"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed",
        failures.len(),
        seeds.len()
    );
}
