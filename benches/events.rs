//! Events end to end, as a user meets them with the command line: N
//! incident reports (the record shape and the deterministic generator of
//! the peer benchmarks — title, a 200-character description, severity,
//! category, a point, a report time; ~391 bytes of JSON each) imported on
//! node A (`sentinel-node import`), then node B, empty, runs one
//! `sentinel-node sync` with A until the events are queryable on B
//! (`stats` counts them in B's views).
//!
//! Also, on A holding the 100,000 events: the node's footprint — the
//! binary as the release profile ships it, the serving process's peak
//! resident memory after serving B's syncs, and the time from starting
//! `serve` to answering its first HTTP request.
//!
//! `cargo bench -p sentinel --bench events` (needs the release binaries:
//! `cargo build --release -p sentinel-node -p sentinel-certs`; the
//! `scripts/bench` command builds them). `SENTINEL_BENCH_SCALE=0.1` runs
//! 10,000 and 100,000; `SENTINEL_EVENTS_1M=0` skips the large size.
//! Prints a Markdown table; with `SENTINEL_BENCH_OUT=FILE`, appends the
//! goal rows to FILE as JSON lines (`scripts/bench` renders them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::{load_average, median, Row};
use serde_json::Value;

/// The peer benchmarks' record generator (`gen.js`), ported exactly:
/// mulberry32 seeded with 42, the same draws in the same order, so both
/// sides of the side-by-side sync the same records.
mod gen {
    const CITIES: [&str; 16] = [
        "Lisbon", "Nairobi", "Quito", "Dhaka", "Oslo", "Lagos", "Lima", "Hanoi", "Accra", "Kyiv",
        "Manila", "Bogota", "Tunis", "Cusco", "Porto", "Bergen",
    ];
    const ASCII: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-";

    pub struct Mulberry32(u32);

    impl Mulberry32 {
        pub fn new(seed: u32) -> Self {
            Mulberry32(seed)
        }
        /// JavaScript's `mulberry32` step: a float in [0, 1).
        pub fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x6D2B_79F5);
            let a = self.0;
            let mut t = (a ^ (a >> 15)).wrapping_mul(1 | a);
            t = t.wrapping_add((t ^ (t >> 7)).wrapping_mul(61 | t)) ^ t;
            f64::from(t ^ (t >> 14)) / 4_294_967_296.0
        }
        fn index(&mut self, n: usize) -> usize {
            (self.next() * n as f64) as usize
        }
    }

    pub struct Record {
        pub id: String,
        pub title: String,
        pub description: String,
        pub severity: u8,
        pub lon: f64,
        pub lat: f64,
        pub reported_at: String,
    }

    /// JavaScript's `Math.round`: halves towards +∞.
    fn js_round(x: f64) -> f64 {
        (x + 0.5).floor()
    }

    /// JavaScript's number to string for the coordinates gen.js makes
    /// (six decimals at most, never an exponent at these magnitudes but
    /// for values below 1e-6, which are written as JavaScript would).
    pub fn js_number(x: f64) -> String {
        if x != 0.0 && x.abs() < 1e-6 {
            // 1e-7 and below: JavaScript switches to exponent form.
            return format!("{x:e}");
        }
        let s = format!("{x}");
        if s == "-0" {
            "0".into()
        } else {
            s
        }
    }

    /// JavaScript's `Date#toISOString` for times after 1970: civil date
    /// from days (H. Hinnant's algorithm), then the time of day.
    pub fn iso_millis(ms: u64) -> String {
        let days = (ms / 86_400_000) as i64;
        let in_day = ms % 86_400_000;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            in_day / 3_600_000,
            in_day / 60_000 % 60,
            in_day / 1000 % 60,
            in_day % 1000
        )
    }

    pub fn records(n: usize) -> Vec<Record> {
        let mut rnd = Mulberry32::new(42);
        // Date.UTC(2025, 0, 1)
        let base_ms: u64 = 1_735_689_600_000;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let id: String = (0..16)
                .map(|_| char::from_digit(rnd.index(16) as u32, 16).unwrap_or('0'))
                .collect();
            let description: String = (0..200)
                .map(|_| ASCII[rnd.index(ASCII.len())] as char)
                .collect();
            let title = format!("Incident near {} #{i}", CITIES[rnd.index(CITIES.len())]);
            let severity = 1 + rnd.index(5) as u8;
            let lon = js_round((rnd.next() * 360.0 - 180.0) * 1e6) / 1e6;
            let lat = js_round((rnd.next() * 180.0 - 90.0) * 1e6) / 1e6;
            let offset = (rnd.next() * 365.0 * 86_400e3).floor() as u64;
            let reported_at = iso_millis(base_ms + offset);
            out.push(Record {
                id,
                title,
                description,
                severity,
                lon,
                lat,
                reported_at,
            });
        }
        out
    }

    impl Record {
        /// `JSON.stringify(record)` of gen.js: the payload the peers'
        /// bytes are compared with. No field needs escaping.
        pub fn payload_json(&self) -> String {
            format!(
                "{{\"_id\":\"{}\",\"title\":\"{}\",\"description\":\"{}\",\"severity\":{},\"category\":\"infrastructure\",\"lon\":{},\"lat\":{},\"reported_at\":\"{}\"}}",
                self.id,
                self.title,
                self.description,
                self.severity,
                js_number(self.lon),
                js_number(self.lat),
                self.reported_at
            )
        }

        /// The GeoJSON feature the peers' Sentinel script imports.
        pub fn feature(&self) -> String {
            format!(
                "{{\"type\":\"Feature\",\"geometry\":{{\"type\":\"Point\",\"coordinates\":[{},{}]}},\"properties\":{{\"title\":\"{}\",\"description\":\"{}\",\"severity\":{},\"category\":\"infrastructure\",\"reported_at\":\"{}\"}}}}",
                js_number(self.lon),
                js_number(self.lat),
                self.title,
                self.description,
                self.severity,
                self.reported_at
            )
        }
    }
}

struct Bins {
    node: PathBuf,
    certs: PathBuf,
}

impl Bins {
    fn find() -> Result<Bins> {
        let exe = std::env::current_exe()?;
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .context("the bench has no profile folder")?;
        let b = Bins {
            node: dir.join("sentinel-node"),
            certs: dir.join("sentinel-certs"),
        };
        for p in [&b.node, &b.certs] {
            if !p.is_file() {
                bail!(
                    "{} is not built (cargo build --release -p sentinel-node -p sentinel-certs)",
                    p.display()
                );
            }
        }
        Ok(b)
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .env("SENTINEL_CA_PASSWORD", "bench-ca")
        .env("SENTINEL_BUNDLE_PASSWORD", "bench-bundle")
        .env("SENTINEL_ACTOR", "bench")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn node(bins: &Bins, dir: &Path) -> Command {
    let mut c = Command::new(&bins.node);
    c.arg("--data-dir").arg(dir);
    c
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A `serve` process of node A, killed when dropped.
struct Serving {
    child: Child,
    sync_addr: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serving {
    /// Starts `serve` and returns once its HTTP API answers, with the time
    /// that took.
    fn start(bins: &Bins, dir: &Path) -> Result<(Serving, Duration)> {
        let http_port = free_port()?;
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let sync_addr = udp.local_addr()?.to_string();
        drop(udp);
        let started = Instant::now();
        let child = node(bins, dir)
            .args(["serve", "--background-sync", "off", "--listen", &sync_addr])
            .arg("--http")
            .arg(format!("127.0.0.1:{http_port}"))
            .env("SENTINEL_ACTOR", "bench")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting sentinel-node serve")?;
        let mut s = Serving { child, sync_addr };
        loop {
            if healthz(http_port) {
                return Ok((s, started.elapsed()));
            }
            if let Some(status) = s.child.try_wait()? {
                bail!("sentinel-node serve exited early: {status}");
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("sentinel-node serve did not answer within 60 s");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Peak and current resident memory of the process, in MB.
    fn rss_mb(&self) -> Result<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kb = |key: &str| -> Result<f64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(key))
                .with_context(|| format!("no {key} in /proc status"))?;
            let v: f64 = line
                .split_whitespace()
                .nth(1)
                .context("no value")?
                .parse()?;
            Ok(v / 1024.0)
        };
        Ok((kb("VmHWM:")?, kb("VmRSS:")?))
    }
}

/// Whether `GET /healthz` answers 200 on the port.
fn healthz(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    a: PathBuf,
    b: PathBuf,
    payload_bytes: u64,
    import: Duration,
}

/// Records per imported file (~109 MB of GeoJSON), under the import's
/// 256 MiB cap on one file.
const FILE_RECORDS: usize = 250_000;

/// A CA, nodes A and B enrolled, N records imported on A (in files of
/// [`FILE_RECORDS`]).
fn set_up(bins: &Bins, n: usize) -> Result<Setup> {
    let dir = tempfile::Builder::new().prefix("events-bench").tempdir()?;
    let root = dir.path().to_path_buf();
    let records = gen::records(n);
    let payload_bytes: u64 = records.iter().map(|r| r.payload_json().len() as u64).sum();
    // One file per FILE_RECORDS records: `import` refuses a file over
    // 256 MiB (its `MAX_INPUT_BYTES`), and 1M records are ~436 MB.
    let mut files = Vec::new();
    for (k, part) in records.chunks(FILE_RECORDS).enumerate() {
        let file = root.join(format!("records-{k}.geojson"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file)?);
        f.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[")?;
        for (i, r) in part.iter().enumerate() {
            if i > 0 {
                f.write_all(b",")?;
            }
            f.write_all(r.feature().as_bytes())?;
        }
        f.write_all(b"]}")?;
        f.flush()?;
        files.push(file);
    }
    drop(records);
    let ca = root.join("ca");
    run(
        Command::new(&bins.certs)
            .args(["ca", "create", "--name", "bench", "--dir"])
            .arg(&ca),
        "sentinel-certs ca create",
    )?;
    let (a, b) = (root.join("a"), root.join("b"));
    for (name, d) in [("a", &a), ("b", &b)] {
        let bundle = root.join(format!("{name}.bundle"));
        run(
            Command::new(&bins.certs)
                .args(["issue", "--role", "node", "--name", name, "--ca-dir"])
                .arg(&ca)
                .arg("--out")
                .arg(&bundle),
            "sentinel-certs issue",
        )?;
        run(node(bins, d).arg("init"), "sentinel-node init")?;
        run(
            node(bins, d).arg("enroll").arg(&bundle),
            "sentinel-node enroll",
        )?;
    }
    let t = Instant::now();
    for file in &files {
        run(
            node(bins, &a)
                .args(["--json", "import", "--batch", "1000"])
                .arg(file),
            "sentinel-node import",
        )?;
    }
    let import = t.elapsed();
    Ok(Setup {
        _dir: dir,
        root,
        a,
        b,
        payload_bytes,
        import,
    })
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), &target)?;
        }
    }
    Ok(())
}

/// The events B's views hold.
fn events_in(bins: &Bins, dir: &Path) -> Result<u64> {
    let out = run(
        node(bins, dir).args(["--json", "stats"]),
        "sentinel-node stats",
    )?;
    let v: Value = serde_json::from_str(&out)?;
    v["events"].as_u64().context("stats has no `events`")
}

struct SyncRun {
    seconds: f64,
    bytes_in: u64,
    bytes_out: u64,
}

/// One `sync` of a fresh copy of B with A, until B's views hold all N.
fn sync_once(
    bins: &Bins,
    s: &Setup,
    serving: &Serving,
    n: usize,
    run_no: usize,
) -> Result<SyncRun> {
    let b = s.root.join(format!("b-run{run_no}"));
    copy_dir(&s.b, &b)?;
    let t = Instant::now();
    let out = run(
        node(bins, &b)
            .args(["--json", "sync"])
            .arg(&serving.sync_addr),
        "sentinel-node sync",
    )?;
    let got = events_in(bins, &b)?;
    let seconds = t.elapsed().as_secs_f64();
    if got != n as u64 {
        bail!("B's views hold {got} events after sync, not {n}");
    }
    let line: Value = serde_json::from_str(out.lines().next().unwrap_or("{}"))?;
    let bytes_in = line["bytes_received"]
        .as_u64()
        .context("sync gave no bytes_received")?;
    let bytes_out = line["bytes_sent"]
        .as_u64()
        .context("sync gave no bytes_sent")?;
    std::fs::remove_dir_all(&b)?;
    Ok(SyncRun {
        seconds,
        bytes_in,
        bytes_out,
    })
}

const COMMAND: &str = "cargo bench -p sentinel --bench events";

fn main() -> Result<()> {
    let bins = Bins::find()?;
    let scale = common::scale();
    let small = ((100_000.0 * scale) as usize).max(1_000);
    let large = ((1_000_000.0 * scale) as usize).max(small);
    let with_large = std::env::var("SENTINEL_EVENTS_1M").map_or(true, |v| v != "0");
    let started_load = load_average();
    println!("| measurement | result |");
    println!("|---|---|");

    // The small size: three syncs, and the footprint.
    let s = set_up(&bins, small)?;
    let import_rate = small as f64 / s.import.as_secs_f64();
    println!(
        "| import of {small} records on A (`import --batch 1000`) | {:.1} s, {import_rate:.0} events/s |",
        s.import.as_secs_f64()
    );
    let (serving, _) = Serving::start(&bins, &s.a)?;
    let mut runs = Vec::new();
    for r in 0..3 {
        let one = sync_once(&bins, &s, &serving, small, r)?;
        println!(
            "| sync run {r}: {small} events A → B until queryable on B | {:.2} s, {:.0} events/s, {} B in, {} B out |",
            one.seconds,
            small as f64 / one.seconds,
            one.bytes_in,
            one.bytes_out
        );
        runs.push(one);
    }
    let secs = median(runs.iter().map(|r| r.seconds).collect());
    let bytes_in = median(runs.iter().map(|r| r.bytes_in as f64).collect());
    let ratio = bytes_in / s.payload_bytes as f64;
    let rate = small as f64 / secs;
    println!(
        "| median of 3 | {secs:.2} s, {rate:.0} events/s; frame bytes A → B / records' JSON = {bytes_in:.0} / {} = {ratio:.3} |",
        s.payload_bytes
    );
    let (peak, now) = serving.rss_mb()?;
    println!("| A serving {small} events, after 3 syncs: peak / current RSS | {peak:.1} MB / {now:.1} MB |");
    drop(serving);
    let mut starts = Vec::new();
    for _ in 0..5 {
        let (_serving, took) = Serving::start(&bins, &s.a)?;
        starts.push(took.as_secs_f64() * 1000.0);
    }
    let cold = median(starts.clone());
    println!(
        "| `serve` start to first HTTP answer, {small} events (5 starts, median) | {cold:.0} ms ({}) |",
        starts
            .iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let binary_mb = std::fs::metadata(&bins.node)?.len() as f64 / 1e6;
    println!("| sentinel-node binary as built by the release profile | {binary_mb:.1} MB |");

    let load = load_average();
    let small_key = if small == 100_000 {
        "events_node_node_100k".to_string()
    } else {
        format!("events_node_node_{small}")
    };
    let rows = [
        Row::new(
            &small_key,
            format!("{rate:.0} events/s ({small} in {secs:.2} s, median of 3)"),
            rate,
            "events/s",
            "≥ 30,000 events/s",
            rate >= 30_000.0,
        ),
        Row::new(
            "import_events",
            format!(
                "{import_rate:.0} events/s ({small} in {:.1} s, --batch 1000)",
                s.import.as_secs_f64()
            ),
            import_rate,
            "events/s",
            "≥ 15,000 events/s",
            import_rate >= 15_000.0,
        ),
        Row::new(
            "wire_bytes_ratio",
            format!(
                "{ratio:.3}× ({bytes_in:.0} frame bytes / {} B of records' JSON)",
                s.payload_bytes
            ),
            ratio,
            "×",
            "≤ 1.1×",
            ratio <= 1.1,
        ),
        Row::new(
            "node_rss_100k_mb",
            format!("{peak:.1} MB peak ({now:.1} MB current) serving {small} events"),
            peak,
            "MB",
            "≤ 80 MB",
            peak <= 80.0,
        ),
        Row::new(
            "node_cold_start_ms",
            format!("{cold:.0} ms, start to first HTTP answer, {small} events (median of 5)"),
            cold,
            "ms",
            "≤ 300 ms",
            cold <= 300.0,
        ),
        Row::new(
            "node_binary_mb",
            format!("{binary_mb:.1} MB as the release profile builds it"),
            binary_mb,
            "MB",
            "≤ 25 MB",
            binary_mb <= 25.0,
        ),
    ];
    for r in rows {
        r.load(&started_load, &load).command(COMMAND).emit()?;
    }
    drop(s);

    if with_large {
        let started_load = load_average();
        let s = set_up(&bins, large)?;
        let (serving, _) = Serving::start(&bins, &s.a)?;
        let one = sync_once(&bins, &s, &serving, large, 0)?;
        let rate = large as f64 / one.seconds;
        let import_rate = large as f64 / s.import.as_secs_f64();
        println!(
            "| import of {large} records on A | {:.1} s, {import_rate:.0} events/s |",
            s.import.as_secs_f64()
        );
        println!(
            "| sync: {large} events A → B until queryable on B (one run) | {:.1} s, {rate:.0} events/s, ratio {:.3} |",
            one.seconds,
            one.bytes_in as f64 / s.payload_bytes as f64
        );
        let key = if large == 1_000_000 {
            "events_node_node_1m".to_string()
        } else {
            format!("events_node_node_{large}")
        };
        Row::new(
            &key,
            format!(
                "{rate:.0} events/s ({large} in {:.1} s, one run; import {import_rate:.0}/s)",
                one.seconds
            ),
            rate,
            "events/s",
            "≥ 30,000 events/s",
            rate >= 30_000.0,
        )
        .load(&started_load, &load_average())
        .command(COMMAND)
        .emit()?;
    }
    Ok(())
}
