//! A simulated water gauge: it enrolls with a deployment CA, signs its
//! readings as entries of its own chain (`docs/protocol.md` part 3), and
//! pushes them in batches to a node's `POST /api/v1/sensors/entries`.
//!
//! ```sh
//! cargo run --example sensor                      # against a node started here
//! SENTINEL_CA_PASSWORD=… cargo run --example sensor -- \
//!     --ca-dir ca http://127.0.0.1:8081           # against a running node
//! ```
//!
//! Without a URL it starts a node in a temporary directory, with one rule
//! (`water_gauge` `level` `>=` 3.5 m), serves its API on 127.0.0.1:0, and
//! shows the event the rising river raises. With a URL the gauge needs a
//! certificate from that node's deployment CA: `--ca-dir` (the password in
//! `SENTINEL_CA_PASSWORD`); a throwaway CA would be refused
//! (`bad_certificate`). Exits non-zero when an answer is not as expected.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use rand_core::OsRng;
use sentinel_certs::{Ca, Enrollment, Password};
use sentinel_schema::{
    Body, Clock, DeviceRole, Entry, EntryId, Point, ReadingValue, SensorReading, SignedEntry,
    SigningKey,
};
use sentinel_sync::push;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DAY: u64 = 24 * 3600 * 1000;
const MINUTE: u64 = 60 * 1000;
/// Readings per push (a push holds at most 1,000).
const BATCH: usize = 12;

const RULES: &str = r#"
window_s = 21600   # one event per rule and sensor in six hours
[[rule]]
id = "river-high"
severity = 4
kind = "water_gauge"
value = "level"
comparison = ">="
threshold = 3.5
unit = "m"
"#;

/// The gauge: its identity, and the state it keeps across reboots (seq and
/// id of the last entry it signed, its clock).
struct Gauge {
    identity: Enrollment,
    seq: u64,
    prev: Option<EntryId>,
    clock: Clock,
}

impl Gauge {
    fn new(identity: Enrollment) -> Gauge {
        Gauge {
            identity,
            seq: 0,
            prev: None,
            clock: Clock::resume(Default::default()),
        }
    }

    /// Signs the next reading of its chain.
    fn read(&mut self, level_m: f64, measured_ms: u64) -> Result<SignedEntry> {
        let entry = Entry {
            author: self.identity.identity.author,
            seq: self.seq + 1,
            prev: self.prev,
            hlc: self.clock.tick(sentinel_node::clock::now_ms())?,
            actor: None,
            body: Body::SensorReading(SensorReading {
                kind: "water_gauge".into(),
                values: vec![
                    ReadingValue {
                        name: "level".into(),
                        value: level_m,
                        unit: "m".into(),
                    },
                    ReadingValue {
                        name: "battery".into(),
                        value: 3.7,
                        unit: "V".into(),
                    },
                ],
                location: Some(Point::new(13.405, 52.52)?),
                measured_ms,
            }),
        };
        let signed = entry.sign(&self.identity.key)?;
        // Kept before the entry is sent: never sign two entries at one seq.
        self.seq = signed.seq();
        self.prev = Some(signed.id());
        Ok(signed)
    }
}

/// `POST path` with a CBOR body over HTTP/1.1: the status and the body.
async fn post(addr: SocketAddr, path: &str, body: &[u8]) -> Result<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/cbor\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).await?;
    let (head, body) = answer.split_once("\r\n\r\n").context("no HTTP answer")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status")?;
    Ok((status, body.to_string()))
}

/// Four hours of a rising river, every five minutes, pushed in batches;
/// then the first batch again (idempotent: all duplicates).
async fn push_readings(gauge: &mut Gauge, addr: SocketAddr, path: &str) -> Result<()> {
    let start = sentinel_node::clock::now_ms() - 4 * 60 * MINUTE;
    let mut readings = Vec::new();
    for i in 0..48u64 {
        let level = 2.0 + 2.4 * (i as f64 / 47.0);
        readings.push(gauge.read((level * 100.0).round() / 100.0, start + i * 5 * MINUTE)?);
    }
    for (n, batch) in readings.chunks(BATCH).enumerate() {
        // The certificate goes with every batch: the receiver may not hold it.
        let body = push::encode(Some(&gauge.identity.cert_der), batch);
        let (status, answer) = post(addr, path, &body).await?;
        println!(
            "push {}: {} readings, {} bytes -> {}",
            n + 1,
            batch.len(),
            body.len(),
            summary(status, &answer)
        );
        if status != 200 {
            bail!("the node refused the push: {answer}");
        }
    }
    let again = push::encode(Some(&gauge.identity.cert_der), &readings[..BATCH]);
    let (status, answer) = post(addr, path, &again).await?;
    println!("push 1 again -> {}", summary(status, &answer));
    let report: serde_json::Value = serde_json::from_str(&answer)?;
    if status != 200 || report["n_duplicates"] != BATCH {
        bail!("resending was not idempotent: {answer}");
    }
    Ok(())
}

/// One line for an answer: the counts of a report, or the refusal.
fn summary(status: u16, answer: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(answer).unwrap_or_default();
    if status == 200 {
        format!(
            "{status}: {} stored, {} duplicates",
            v["n_stored"], v["n_duplicates"]
        )
    } else {
        format!("{status} {}: {}", v["code"], v["detail"])
    }
}

/// A node in `dir`, enrolled with `ca`, with the rules, serving its API.
async fn start_node(
    dir: &Path,
    ca: &Ca,
) -> Result<(SocketAddr, Arc<Mutex<sentinel_node::node::Node>>)> {
    use sentinel_node::node::{enroll, Node};
    let now = sentinel_node::clock::now_ms();
    drop(Node::init(dir, SigningKey::generate(&mut OsRng))?);
    let e = ca.enroll(
        DeviceRole::Node,
        "node-1",
        SigningKey::generate(&mut OsRng),
        now - DAY,
        now + 30 * DAY,
        now,
    )?;
    enroll(dir, &e)?;
    let mut node = Node::open(dir)?;
    node.enable_rules(sentinel_schema::rules::config::parse_rules_toml(RULES)?)?;
    let node = Arc::new(Mutex::new(node));
    let state = sentinel_node::http::ApiState::new(node.clone())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(sentinel_node::http::serve(
        listener,
        state,
        Default::default(),
    ));
    Ok((addr, node))
}

fn arg(args: &[String], name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let now = sentinel_node::clock::now_ms();
    let ca = match arg(&args, "--ca-dir") {
        Some(dir) => {
            let password = Password::new(
                std::env::var("SENTINEL_CA_PASSWORD")
                    .context("--ca-dir needs SENTINEL_CA_PASSWORD")?,
            )?;
            Ca::load(Path::new(&dir), &password)?
        }
        None => Ca::create(
            "Sensor example CA",
            now - DAY,
            now + 365 * DAY,
            SigningKey::generate(&mut OsRng),
        )?,
    };
    // What `sentinel-certs issue --role sensor` does.
    let identity = ca.enroll(
        DeviceRole::Sensor,
        "gauge-17",
        SigningKey::generate(&mut OsRng),
        now - DAY,
        now + 365 * DAY,
        now,
    )?;
    println!(
        "gauge-17 enrolled: author {}",
        identity.identity.author.to_hex()
    );
    let mut gauge = Gauge::new(identity);

    let url = args.iter().find(|a| a.starts_with("http://"));
    if let Some(url) = url {
        let rest = url.trim_start_matches("http://");
        let (host, _) = rest.split_once('/').unwrap_or((rest, ""));
        let addr: SocketAddr = tokio::net::lookup_host(host)
            .await?
            .next()
            .context("cannot resolve the node")?;
        return push_readings(&mut gauge, addr, "/api/v1/sensors/entries").await;
    }

    let dir = tempfile::tempdir()?;
    let (addr, node) = start_node(dir.path(), &ca).await?;
    println!("a node with the rule river-high (level >= 3.5 m) serves http://{addr}/api/v1");
    push_readings(&mut gauge, addr, "/api/v1/sensors/entries").await?;
    let raised: Vec<(String, String)> = {
        let node = node
            .lock()
            .map_err(|_| anyhow::anyhow!("the node's lock is poisoned"))?;
        let mut stmt = node
            .store()
            .conn()
            .prepare("SELECT title, description FROM events WHERE category = 'sensor_alert'")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (title, description) in &raised {
        println!("event raised: {title}\n  {description}");
    }
    if raised.len() != 1 {
        bail!(
            "expected one event from the rising river, got {}",
            raised.len()
        );
    }
    Ok(())
}
