//! The deterministic simulator, over many seeds.
//!
//! `cargo test -p sentinel-sync sim` runs 500 seeds;
//! `SENTINEL_SIM_SEEDS=5000` runs more, `SENTINEL_SIM_SEED=<n>` exactly one.
//! A knob that is set must say what it means: `SENTINEL_SIM_SEEDS` empty,
//! 0 or not a number, or `SENTINEL_SIM_SEED` not a number, fails the test
//! naming the knob (it never runs zero seeds and passes).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use sentinel_sync::testing::sim::{run, SimConfig, SimReport};

/// The number in the environment variable `name`; `None` when it is not
/// set. Set but empty, not valid Unicode or not a number: a panic naming
/// the knob, never a silent default.
fn env_number(name: &str) -> Option<u64> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(v)) => panic!("{name}={v:?} is not a number"),
        Ok(v) => match v.trim().parse() {
            Ok(n) => Some(n),
            Err(e) => panic!("{name}={v:?} is not a number ({e})"),
        },
    }
}

/// The seeds to run: `SENTINEL_SIM_SEED` alone (0 is a seed like any
/// other), else `SENTINEL_SIM_SEEDS` of them (at least 1), else 500.
fn seeds() -> Vec<u64> {
    if let Some(seed) = env_number("SENTINEL_SIM_SEED") {
        return vec![seed];
    }
    let n = env_number("SENTINEL_SIM_SEEDS").unwrap_or(500);
    assert!(
        n >= 1,
        "SENTINEL_SIM_SEEDS=0 would run no seed and prove nothing"
    );
    (0..n).collect()
}

#[test]
fn simulated_devices_converge_and_lose_nothing() {
    let seeds = seeds();
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
    assert_eq!(
        totals.len() + failures.len(),
        seeds.len(),
        "every seed ran to a verdict"
    );
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed",
        failures.len(),
        seeds.len()
    );
}
