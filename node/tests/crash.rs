//! Crash test: the real `sentinel-node` binary is killed with SIGKILL at
//! random moments of a bulk import, many times over, and after every kill
//! the store must still hold every entry the process acknowledged, pass
//! `audit verify`, and give the same views when `rebuild-views` derives
//! them again from the log.
//!
//! Every round imports the same generated GeoJSON file. Its features carry
//! ids, so the importer skips what an earlier round already committed and
//! restarts its `{"acknowledged": n}` count at zero: a round is judged
//! against the store as it was when the round began. The importer commits
//! the file's new events in file order, so "acknowledged n" names the
//! first n of them.
//!
//! A kill lands at one of three kinds of moment, drawn from a seeded RNG:
//! early (a fraction of the time the import last took to acknowledge its
//! first batch: start-up, opening the store, parsing, skipping, the first
//! commit), a short delay after the k-th acknowledgement (somewhere in the
//! commit cycle of a later batch), or never (the import completes). Kill
//! times are relative to what the import does, not fixed milliseconds, so
//! the spread holds on a faster or slower machine or build. When the store
//! holds the whole file a new store is started, so long runs keep
//! importing.
//!
//! This is the node-writes kill harness; the other two are node ↔ node
//! receive (`node/tests/sync/kill.rs`) and node → hub ingest (the root
//! package's `tests/kill`). All three count cycles with
//! `SENTINEL_KILL_CYCLES` (here: default 15, one import per cycle; 1000
//! is the long mode) and end with one summary line: cycles, kills,
//! entries acknowledged, lost.
//!
//! Knobs: `SENTINEL_CRASH_SEED` (decimal or 0x-hex; the default is fixed
//! so CI runs are comparable) and `SENTINEL_KILL_CYCLES`, which must be a
//! whole number above zero when set (0, empty or garbage is an error
//! naming it, not a run of nothing). Each round prints one line to
//! stderr; run with `--nocapture` to see it.
//! The kill times depend on the machine, so a seed reproduces the schedule
//! and the file, not the exact instruction each kill interrupted.

#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_sentinel-node");
const DEFAULT_SEED: u64 = 0x5e47_1e1c_2a5b_0001;
const DEFAULT_ROUNDS: usize = 15;
/// Features in the generated file.
const N_EVENTS: usize = 3000;
/// Events per import transaction: small, so a round holds many commits.
const BATCH: usize = 50;
/// Compare the views with freshly rebuilt ones every this many rounds (and
/// whenever a store is full, and at the end).
const REBUILD_EVERY: usize = 5;
/// An import that neither finishes nor acknowledges anything for this long
/// is hung: the test fails instead of waiting forever.
const HANG: Duration = Duration::from_secs(120);

/// SplitMix64: tiny, seedable, and good enough to spread kill times.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi` (the modulo bias is irrelevant here).
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next() as usize % items.len()]
    }
}

/// `SENTINEL_KILL_CYCLES`: unset gives `default`; zero, empty or not a
/// number is an error naming the knob. The old name is refused, not
/// silently ignored.
fn kill_cycles(default: usize) -> usize {
    const KNOB: &str = "SENTINEL_KILL_CYCLES";
    assert!(
        std::env::var_os("SENTINEL_CRASH_ROUNDS").is_none(),
        "SENTINEL_CRASH_ROUNDS is now {KNOB}"
    );
    match std::env::var(KNOB) {
        Err(std::env::VarError::NotPresent) => default,
        Err(e) => panic!("{KNOB}: {e}"),
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(0) => panic!("{KNOB}=0 would run nothing; unset it for the default ({default})"),
            Ok(n) => n,
            Err(_) => panic!("{KNOB}={text:?} is not a whole number above zero"),
        },
    }
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={text:?} is not a number")))
}

/// One feature of the generated file, as the store must hold it.
#[derive(Debug, Clone)]
struct Generated {
    id: String,
    title: String,
    description: String,
    category: String,
    severity: u64,
    lon: f64,
    lat: f64,
    reported_ms: u64,
}

fn generate(rng: &mut Rng) -> Vec<Generated> {
    const WHAT: [&str; 6] = [
        "Flooded underpass",
        "Fallen tree",
        "Power line down",
        "Gas smell",
        "Bridge damage",
        "Landslide",
    ];
    const CATEGORY: [&str; 5] = ["flood", "storm", "power", "hazmat", "infrastructure"];
    const DETAIL: [&str; 4] = [
        "",
        "Water \"knee deep\", rising; road closed",
        "Reported by a resident — ünïcødé ✓\nsecond line\twith a tab",
        "Crew requested, ETA unknown",
    ];
    let mut ids = BTreeSet::new();
    (0..N_EVENTS)
        .map(|i| {
            let id = loop {
                let id = format!("{:016x}{:016x}", rng.next(), rng.next());
                if ids.insert(id.clone()) {
                    break id;
                }
            };
            Generated {
                id,
                title: format!("{} {i}", rng.pick(&WHAT)),
                description: rng.pick(&DETAIL).to_owned(),
                category: rng.pick(&CATEGORY).to_owned(),
                severity: rng.between(1, 5),
                lon: rng.between(0, 360_000_000) as f64 / 1e6 - 180.0,
                lat: rng.between(0, 180_000_000) as f64 / 1e6 - 90.0,
                reported_ms: 1_790_000_000_000 + rng.between(0, 30 * 86_400_000),
            }
        })
        .collect()
}

fn feature_collection(events: &[Generated]) -> Vec<u8> {
    let features: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [e.lon, e.lat]},
                "properties": {
                    "id": e.id,
                    "title": e.title,
                    "description": e.description,
                    "category": e.category,
                    "severity": e.severity,
                    "reported_ms": e.reported_ms,
                },
            })
        })
        .collect();
    serde_json::to_vec(&json!({"type": "FeatureCollection", "features": features})).unwrap()
}

/// Runs the binary on `dir` to completion.
fn node(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

/// Runs the binary on `dir`, requires success, and returns its stdout.
fn node_ok(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = node(dir, args);
    assert!(
        out.status.success(),
        "sentinel-node {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn node_json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_slice(&node_ok(dir, &all)).unwrap()
}

fn export(dir: &Path) -> Vec<u8> {
    node_ok(dir, &["export", "--format", "geojson"])
}

/// The ids of the events in the store's views, each checked against the
/// file (nothing invented, nothing altered, nothing twice), and the export
/// they were read from.
fn present(dir: &Path, file: &BTreeMap<&str, &Generated>) -> (BTreeSet<String>, Vec<u8>) {
    let bytes = export(dir);
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    let mut ids = BTreeSet::new();
    for f in doc["features"].as_array().unwrap() {
        let p = &f["properties"];
        let id = p["id"].as_str().unwrap();
        let Some(want) = file.get(id) else {
            panic!("the store holds event {id}, which the file does not: {f}");
        };
        let coords = f["geometry"]["coordinates"].as_array().unwrap();
        let close = |got: &Value, want: f64| (got.as_f64().unwrap() - want).abs() < 1e-9;
        assert!(
            p["title"] == want.title.as_str()
                && p["description"] == want.description.as_str()
                && p["category"] == want.category.as_str()
                && p["severity"] == want.severity
                && p["reported_ms"] == want.reported_ms
                && p["status"] == "reported"
                && p["n_notes"] == 0
                && p["n_media"] == 0
                && close(&coords[0], want.lon)
                && close(&coords[1], want.lat),
            "event {id} differs from the file:\n  stored {f}\n  file   {want:?}"
        );
        assert!(ids.insert(id.to_owned()), "event {id} is exported twice");
    }
    (ids, bytes)
}

/// Requires `audit verify` to pass and to have checked `n_entries` (the
/// number of events in the views: a log entry the views lack, or the
/// reverse, shows here).
fn check_audit(dir: &Path, n_entries: usize, context: &str) {
    let out = node(dir, &["--json", "audit", "verify"]);
    assert!(
        out.status.success(),
        "{context}: audit verify failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["problems"], json!([]), "{context}: {report}");
    assert_eq!(
        report["entries"], n_entries,
        "{context}: the log and the views disagree: audit counts {} entries, the views hold \
         {n_entries} events (each is one entry): {report}",
        report["entries"]
    );
}

/// Requires the store to hold exactly one entry, written here, per event.
fn check_stats(dir: &Path, n_events: usize, context: &str) -> Value {
    let s = node_json(dir, &["stats"]);
    for (field, want) in [
        ("entries", n_events),
        ("local_entries", n_events),
        ("events", n_events),
        ("media", 0),
        ("forks", 0),
        ("quarantined", 0),
    ] {
        assert_eq!(s[field], want, "{context}: stats.{field}: {s}");
    }
    s
}

/// Lines of `a` and `b` that the other lacks, for a readable failure.
fn diff(a: &[u8], b: &[u8]) -> String {
    let a = String::from_utf8_lossy(a);
    let b = String::from_utf8_lossy(b);
    let (la, lb): (BTreeSet<&str>, BTreeSet<&str>) = (a.lines().collect(), b.lines().collect());
    let mut out = format!("{} vs {} lines\n", a.lines().count(), b.lines().count());
    for l in la.difference(&lb).take(5) {
        out += &format!("- {l}\n");
    }
    for l in lb.difference(&la).take(5) {
        out += &format!("+ {l}\n");
    }
    out
}

/// Requires `rebuild-views` to derive, from the log alone, the views the
/// store already had (`exported` is their export, taken just before).
fn check_rebuild(dir: &Path, exported: &[u8], n_events: usize, context: &str) {
    let stats = check_stats(dir, n_events, context);
    let rebuilt = node_json(dir, &["rebuild-views"]);
    assert_eq!(rebuilt["entries"], n_events, "{context}: {rebuilt}");
    let again = export(dir);
    assert!(
        again == exported,
        "{context}: the views differ from the ones rebuilt from the log \
         (- before, + after rebuild-views):\n{}",
        diff(exported, &again)
    );
    assert_eq!(check_stats(dir, n_events, context), stats, "{context}");
}

/// When a round kills the import.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// At this many thousandths of the time from spawning to the first
    /// acknowledgement (as last measured).
    Early { permille: u64 },
    /// This long after the `nth` acknowledgement line (1-based).
    AfterAck { nth: usize, then: Duration },
    /// Not at all: the import runs to completion.
    Never,
}

impl Kill {
    fn draw(rng: &mut Rng) -> Kill {
        match rng.between(0, 9) {
            // Up to a little past the first acknowledgement, so that some
            // land in the first commit too.
            0..=2 => Kill::Early {
                permille: rng.between(10, 1100),
            },
            // A batch commit takes about 10-25 ms in the debug profile, so
            // 0-60 ms after an acknowledgement is a random point in the
            // signing, writing or committing of one of the next batches.
            3..=8 => Kill::AfterAck {
                nth: rng.between(1, 8) as usize,
                then: Duration::from_micros(rng.between(0, 60_000)),
            },
            _ => Kill::Never,
        }
    }

    fn describe(self, first_ack: Duration) -> String {
        match self {
            Kill::Early { permille } => format!(
                "kill at {:.1}% of {:.0} ms",
                permille as f64 / 10.0,
                ms(first_ack)
            ),
            Kill::AfterAck { nth, then } => {
                format!("kill {:.1} ms after ack line {nth}", ms(then))
            }
            Kill::Never => "no kill".to_owned(),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What one import run did.
struct Run {
    /// The highest acknowledged count the process printed.
    acked: usize,
    /// When the SIGKILL was sent, after spawning; `None` if the import
    /// finished first.
    killed_at: Option<Duration>,
    /// When the first acknowledgement arrived, after spawning.
    first_ack_at: Option<Duration>,
}

/// Runs `import FILE --batch BATCH` on `dir`, killing it as `kill` says
/// (`first_ack` scales [`Kill::Early`]).
fn import(dir: &Path, file: &Path, kill: Kill, first_ack: Duration) -> Run {
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(["--json", "import"])
        .arg(file)
        .args(["--batch", &BATCH.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (acks, ack_rx) = mpsc::channel::<usize>();
    // The pipe keeps what the process wrote before it died, so this thread
    // sees every acknowledgement the process made, however it ended.
    let reader = thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let mut acked = 0;
        loop {
            line.clear();
            // A line cut short by the kill was not an acknowledgement.
            if stdout.read_line(&mut line).unwrap() == 0 || !line.ends_with('\n') {
                return acked;
            }
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("import printed {line:?}, not JSON: {e}"));
            let n = v["acknowledged"]
                .as_u64()
                .unwrap_or_else(|| panic!("import printed {line:?}")) as usize;
            assert!(n > acked, "acknowledged went from {acked} to {n}");
            acked = n;
            // The receiver is gone once the round has decided to kill.
            let _ = acks.send(n);
        }
    });
    let errors = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut kill_at = match kill {
        Kill::Early { permille } => Some(start + first_ack * permille as u32 / 1000),
        _ => None,
    };
    let mut n_lines = 0;
    let mut first_ack_at = None;
    let mut killed_at = None;
    loop {
        let until = kill_at.unwrap_or(Instant::now() + HANG);
        match ack_rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(_) => {
                n_lines += 1;
                first_ack_at = first_ack_at.or(Some(start.elapsed()));
                if let Kill::AfterAck { nth, then } = kill {
                    if n_lines == nth {
                        kill_at = Some(Instant::now() + then);
                    }
                }
            }
            // Standard output closed: the import is exiting by itself.
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                // SIGKILL; harmless if the process has just exited.
                let _ = child.kill();
                assert!(kill_at.is_some(), "import hung: nothing for {HANG:?}");
                killed_at = Some(start.elapsed());
                break;
            }
        }
    }
    drop(ack_rx);
    let status = child.wait().unwrap();
    let acked = reader.join().unwrap();
    let errors = errors.join().unwrap();
    match status.signal() {
        Some(9) if killed_at.is_some() => {}
        // The kill came after the process had finished.
        None if status.success() => killed_at = None,
        _ => panic!("import ended with {status} after {acked} acknowledged:\n{errors}"),
    }
    Run {
        acked,
        killed_at,
        first_ack_at,
    }
}

#[test]
fn acknowledged_events_survive_sigkill_during_import() {
    let seed = env_number("SENTINEL_CRASH_SEED").unwrap_or(DEFAULT_SEED);
    let rounds = kill_cycles(DEFAULT_ROUNDS);
    eprintln!(
        "crash test: seed {seed:#x}, {rounds} rounds, {N_EVENTS} events, batches of {BATCH} \
         (SENTINEL_CRASH_SEED / SENTINEL_KILL_CYCLES)"
    );
    let began = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let events = generate(&mut Rng(seed));
    let file = tmp.path().join("events.geojson");
    std::fs::write(&file, feature_collection(&events)).unwrap();
    let by_id: BTreeMap<&str, &Generated> = events.iter().map(|e| (e.id.as_str(), e)).collect();
    let mut rng = Rng(seed ^ 0x6b11_1ed0_0000_0000);

    let new_store = |n: usize| -> PathBuf {
        let dir = tmp.path().join(format!("store-{n}"));
        node_ok(&dir, &["init"]);
        dir
    };
    let mut n_stores = 1;
    let mut dir = new_store(n_stores);
    let mut have: BTreeSet<String> = BTreeSet::new();
    let (mut n_killed_early, mut n_killed_mid_import) = (0, 0);
    let (mut n_completed, mut total_acked) = (0, 0);
    // Replaced by the measured time as soon as an import acknowledges.
    let mut first_ack = Duration::from_millis(300);

    for round in 1..=rounds {
        if have.len() == N_EVENTS {
            // The store holds the whole file: start again so the remaining
            // rounds still kill imports that write.
            n_stores += 1;
            dir = new_store(n_stores);
            have.clear();
        }
        let context = format!("seed {seed:#x} round {round} (store {n_stores})");
        let pending: Vec<&str> = events
            .iter()
            .map(|e| e.id.as_str())
            .filter(|id| !have.contains(*id))
            .collect();
        let kill = Kill::draw(&mut rng);
        let run = import(&dir, &file, kill, first_ack);

        let (now, now_exported) = present(&dir, &by_id);
        eprintln!(
            "round {round:>3}: {:<32} {:<22} acked {:>4}  events {:>4} -> {:>4}",
            kill.describe(first_ack),
            match run.killed_at {
                Some(at) => format!("killed at {:.0} ms", ms(at)),
                None => "completed".to_owned(),
            },
            run.acked,
            have.len(),
            now.len(),
        );
        let lost: Vec<&str> = have
            .iter()
            .map(String::as_str)
            .chain(pending[..run.acked].iter().copied())
            .filter(|id| !now.contains(*id))
            .collect();
        assert!(
            run.acked <= pending.len(),
            "{context}: {} acknowledged, but only {} events were new",
            run.acked,
            pending.len()
        );
        assert!(
            lost.is_empty(),
            "{context}: {} of {} acknowledged or earlier events are missing \
             ({} before, {} acknowledged, {} after), first: {:?}",
            lost.len(),
            have.len() + run.acked,
            have.len(),
            run.acked,
            now.len(),
            &lost[..lost.len().min(5)]
        );
        assert!(
            now.len() >= have.len() + run.acked,
            "{context}: {} events after, {} before plus {} acknowledged",
            now.len(),
            have.len(),
            run.acked
        );
        if run.killed_at.is_none() {
            assert_eq!(
                now.len(),
                N_EVENTS,
                "{context}: a completed import left events out"
            );
        }
        check_audit(&dir, now.len(), &context);
        check_stats(&dir, now.len(), &context);
        let full = now.len() == N_EVENTS;
        if round % REBUILD_EVERY == 0 || full || round == rounds {
            check_rebuild(&dir, &now_exported, now.len(), &context);
        }
        match run.killed_at {
            Some(_) if run.acked > 0 => n_killed_mid_import += 1,
            Some(_) => n_killed_early += 1,
            None => n_completed += 1,
        }
        total_acked += run.acked;
        first_ack = run.first_ack_at.unwrap_or(first_ack);
        have = now;
    }

    // One last import, left to finish: every feature, exactly once.
    let context = format!("seed {seed:#x} final import (store {n_stores})");
    let run = import(&dir, &file, Kill::Never, first_ack);
    assert_eq!(run.acked, N_EVENTS - have.len(), "{context}");
    let (all, all_exported) = present(&dir, &by_id);
    assert_eq!(all.len(), N_EVENTS, "{context}: events missing");
    check_audit(&dir, N_EVENTS, &context);
    check_rebuild(&dir, &all_exported, N_EVENTS, &context);
    eprintln!(
        "crash test: seed {seed:#x}: {n_killed_early} imports killed before their first \
         acknowledgement, {n_killed_mid_import} after it, {n_completed} completed; \
         {total_acked} acknowledged events checked over {n_stores} store(s), in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    eprintln!(
        "kill harness node writes: seed {seed:#x}: {rounds} cycles, {} kills, {total_acked} \
         entries acknowledged, lost 0",
        n_killed_early + n_killed_mid_import
    );
    // Were every kill to land before the first commit (a much slower
    // import, say), the test would pass while proving nothing.
    assert!(
        rounds < 10 || n_killed_mid_import > 0,
        "seed {seed:#x}: no kill landed after an acknowledgement; the kill schedule no \
         longer fits the import's speed"
    );
}
