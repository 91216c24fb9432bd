//! A local walk-through of Sentinel on embedded defaults.
//!
//! Part 1 shows the foundation: a device and a sensor sign hash-chained
//! entries, the chains verify, and every way of rewriting history is
//! caught and named. Part 2 runs two field nodes on real SpatiaLite
//! stores: officers report events with photos offline, query them by area
//! and text, sync over QUIC with mutual TLS (a demo CA enrolls both), see
//! concurrent edits merged with their conflicts kept, and verify the audit
//! log. Part 3 runs a regional hub on a throwaway PostgreSQL/PostGIS and
//! three nodes that never meet converging through it (skipped, saying so,
//! where PostgreSQL cannot be started).
//!
//! Run: `scripts/demo` (or `cargo run --release --example demo`).
//! `--quick` skips the throughput measurement; `--keep DIR` leaves the two
//! nodes' data in DIR for `sentinel-node --data-dir DIR/ada …`. Part 4
//! leaves a small deployment running — a hub and two nodes, the real
//! binaries, seeded — and prints the addresses of their pages and the
//! demo accounts until Ctrl-C; `--exit` stops it at once (the tests).
//! Exits non-zero if any check does not come out as it should.

mod deployment;
mod entries;
mod field;
mod hub;

use anyhow::Result;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let exit = args.iter().any(|a| a == "--exit");
    let keep = args
        .iter()
        .position(|a| a == "--keep")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from);
    println!("Sentinel demo\n");
    entries::run(quick)?;
    field::run(keep)?;
    hub::run()?;
    println!("\nAll checks came out as they should.");
    deployment::run(exit)
}
