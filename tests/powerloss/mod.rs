//! Power-loss tests: the node's store and the hub's PostgreSQL run on
//! `lossyfs`, a disk that keeps writes in memory until they are fsynced
//! and loses every unsynced one when the power is cut. After each cut
//! (the disk's unsynced writes dropped, the processes SIGKILLed, the
//! disk unmounted and mounted again) every entry that was acknowledged —
//! printed by `import` on the node, receipted by the hub — must be there.
//! A SIGKILL alone (the crash tests) leaves the page cache intact, so
//! only this shows that acknowledged means on disk.
//!
//! That the layer can lose an acknowledged write is the layer's own
//! self-check (`lossyfs/tests/main.rs`: SQLite with `synchronous=OFF`
//! loses a commit there); here the real binaries must not.
//!
//! Knobs: `SENTINEL_POWERLOSS_CYCLES` (power cuts per test; default 4 for
//! the node, 3 for the hub) and `SENTINEL_POWERLOSS_SEED` (decimal or
//! 0x-hex). A knob that is set must be a number, and cycles at least 1.
//! Where FUSE (or, for the hub, PostgreSQL) is unavailable the tests say
//! "SKIPPED" and pass, unless `SENTINEL_REQUIRE_FUSE=1` (scripts/test sets
//! it when it runs as root with /dev/fuse, as CI does).

mod hub;
mod node;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;

use sentinel_lossyfs::Mount;
use serde_json::{json, Value};

const DEFAULT_SEED: u64 = 0x9051_2e1c_0a7e_0001;

/// A number from the environment: `None` when unset, a panic when set to
/// anything but a number (decimal or 0x-hex).
fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={text:?} is not a number")))
}

/// `SENTINEL_POWERLOSS_CYCLES`, else `default`; zero is an error, not a
/// test that cuts nothing.
fn cycles(default: usize) -> usize {
    let n = env_number("SENTINEL_POWERLOSS_CYCLES").map_or(default, |n| n as usize);
    assert!(n >= 1, "SENTINEL_POWERLOSS_CYCLES must be at least 1");
    n
}

fn seed() -> u64 {
    env_number("SENTINEL_POWERLOSS_SEED").unwrap_or(DEFAULT_SEED)
}

/// Whether this test can run; says why not, loudly (and fails instead
/// when `SENTINEL_REQUIRE_FUSE=1`).
fn can_run(test: &str, why_not: Option<String>) -> bool {
    let Some(why) = why_not else {
        return true;
    };
    assert!(
        std::env::var("SENTINEL_REQUIRE_FUSE").as_deref() != Ok("1"),
        "{test}: required (SENTINEL_REQUIRE_FUSE=1) but cannot run: {why}"
    );
    eprintln!("SKIPPED {test}: {why}");
    false
}

fn fuse_missing() -> Option<String> {
    sentinel_lossyfs::probe()
        .err()
        .map(|e| format!("no FUSE mount possible here ({e})"))
}

/// SplitMix64: seeded, tiny.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// A backing directory (the disk) and a mount point for it.
struct Disk {
    backing: PathBuf,
    at: PathBuf,
}

impl Disk {
    fn new(dir: &Path) -> Disk {
        let d = Disk {
            backing: dir.join("disk"),
            at: dir.join("mnt"),
        };
        std::fs::create_dir_all(&d.backing).unwrap();
        std::fs::create_dir_all(&d.at).unwrap();
        d
    }

    fn mount(&self) -> Mount {
        Mount::new(&self.backing, &self.at).unwrap()
    }
}

/// A GeoJSON file of `n` events with ids (so a second import of it skips
/// what the store holds), and the ids in file order.
fn events_file(path: &Path, n: usize, rng: &mut Rng) -> Vec<String> {
    let ids: Vec<String> = (0..n)
        .map(|_| format!("{:016x}{:016x}", rng.next(), rng.next()))
        .collect();
    let features: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [
                    rng.between(0, 360_000) as f64 / 1e3 - 180.0,
                    rng.between(0, 180_000) as f64 / 1e3 - 90.0,
                ]},
                "properties": {
                    "id": id,
                    "title": format!("Power-loss event {i}"),
                    "category": "storm",
                    "severity": rng.between(1, 5),
                    "reported_ms": 1_790_000_000_000u64 + i as u64,
                },
            })
        })
        .collect();
    let doc = json!({"type": "FeatureCollection", "features": features});
    std::fs::write(path, serde_json::to_vec(&doc).unwrap()).unwrap();
    ids
}

/// Runs `sentinel-node ARGS` on `dir` with `env` to completion.
fn node(bin: &Path, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(bin);
    c.arg("--data-dir").arg(dir).args(args).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Runs it, requires success, and parses its standard output as JSON.
fn node_json(bin: &Path, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = node(bin, dir, env, &all);
    assert!(
        out.status.success(),
        "sentinel-node {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The ids of the events the node's views hold.
fn event_ids(bin: &Path, dir: &Path) -> Vec<String> {
    let out = node(bin, dir, &[], &["export", "--format", "geojson"]);
    assert!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Requires `audit verify` to pass over exactly `n_entries` entries.
fn check_audit(bin: &Path, dir: &Path, n_entries: usize, context: &str) {
    let out = node(bin, dir, &[], &["--json", "audit", "verify"]);
    assert!(
        out.status.success(),
        "{context}: audit verify failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["problems"], json!([]), "{context}: {report}");
    assert_eq!(report["entries"], n_entries, "{context}: {report}");
}

/// A running `import`: its acknowledgements arrive on `acks` as it prints
/// them; `reader` answers the highest, once standard output closes.
struct Import {
    child: Child,
    acks: mpsc::Receiver<usize>,
    reader: JoinHandle<usize>,
}

fn spawn_import(bin: &Path, dir: &Path, file: &Path, batch: usize) -> Import {
    let mut child = Command::new(bin)
        .arg("--data-dir")
        .arg(dir)
        .args(["--json", "import"])
        .arg(file)
        .args(["--batch", &batch.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, acks) = mpsc::channel();
    // The pipe keeps what the process wrote before it died: this sees every
    // acknowledgement, however the process ended.
    let reader = std::thread::spawn(move || {
        let mut acked = 0;
        let mut line = String::new();
        let mut out = BufReader::new(stdout);
        loop {
            line.clear();
            // A line cut short by the kill was not an acknowledgement.
            if out.read_line(&mut line).unwrap_or(0) == 0 || !line.ends_with('\n') {
                return acked;
            }
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("import printed {line:?}, not JSON: {e}"));
            let n = v["acknowledged"]
                .as_u64()
                .unwrap_or_else(|| panic!("import printed {line:?}")) as usize;
            acked = acked.max(n);
            let _ = tx.send(n);
        }
    });
    Import {
        child,
        acks,
        reader,
    }
}

/// SIGKILLs a child (harmless if it has exited) and reaps it.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
