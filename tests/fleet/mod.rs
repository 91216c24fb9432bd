//! A small fleet run by hand, for the tests that break its links and
//! kill its processes (`tests/netem`, `tests/kill`): a hub on the
//! throwaway PostgreSQL that the test starts, stops with SIGKILL and
//! starts again on the same address; field nodes whose commands
//! (`import`, `sync`, `stats`) run one at a time, optionally inside a
//! network namespace (`ip netns exec NS …`); generated reports; what the
//! hub holds of a node's chain, read from its database; and the checked
//! knobs (`SENTINEL_KILL_CYCLES`, …).
//!
//! Never does: reach into a running binary. Nodes and the hub are the
//! real `sentinel-node` and `sentinel-hub`, set up by `sentinel::deploy`;
//! the hub's database is read, never written, by the checks here.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sentinel::deploy::process::{self, Running};
use sentinel::deploy::{Binaries, Deployment, HubSetup, OfflineNode, Plan};
use sentinel_hub::testing::TestDatabase;
use sentinel_hub::PgStore;
use sentinel_schema::AuthorId;
use serde_json::{json, Value};

/// A knob that sets how many times something runs: absent gives
/// `default`; set, it must be a whole number above zero — zero, empty or
/// anything else is an error naming the knob, never a silent pass.
pub fn count_knob(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => default,
        Err(e) => panic!("{name}: {e}"),
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(0) => panic!("{name}=0: it would run nothing; unset it for the default ({default})"),
            Ok(n) => n,
            Err(_) => panic!("{name}={text:?} is not a whole number above zero"),
        },
    }
}

/// SplitMix64: tiny, seedable; spreads kill times and impairments.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0.0..1.0`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// A GeoJSON file of `n` reports with ids made from `tag` (so files
/// made with different tags never share an event).
pub fn reports_file(dir: &Path, tag: &str, n: usize) -> PathBuf {
    // Event ids are 32 hex digits: the tag's FNV-1a hash, then the index.
    let tag_hash = tag.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let features: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "type": "Feature",
                "geometry": {"type": "Point",
                             "coordinates": [(i % 360) as f64 - 179.5, ((i / 360) % 170) as f64 - 84.5]},
                "properties": {
                    "id": format!("{tag_hash:016x}{i:016x}"),
                    "title": format!("Flooded underpass {tag} {i}"),
                    "description": "Water knee deep, rising; road closed",
                    "category": "flood",
                    "severity": 1 + i % 5,
                    "reported_ms": 1_790_000_000_000u64 + i as u64 * 60_000,
                },
            })
        })
        .collect();
    let file = dir.join(format!("{tag}.geojson"));
    std::fs::write(
        &file,
        serde_json::to_vec(&json!({"type": "FeatureCollection", "features": features})).unwrap(),
    )
    .unwrap();
    file
}

/// The deployment, its database, and the files of its hub.
pub struct Fleet {
    pub bins: Binaries,
    pub db: TestDatabase,
    pub deployment: Deployment,
    pub hub: HubSetup,
    pub dir: tempfile::TempDir,
}

impl Fleet {
    /// A deployment CA, a database, and a hub (not started) that will
    /// listen for sync on `listen`, reaching its database by the
    /// connection string `url` makes of it.
    pub async fn new(
        listen: SocketAddr,
        url: impl FnOnce(&TestDatabase) -> Result<String>,
    ) -> Result<Fleet> {
        let bins = Binaries::beside_current_exe()?;
        let db = TestDatabase::create()
            .await
            .context("no PostgreSQL with PostGIS could be started here")?;
        let deployment = Deployment::start(
            &bins,
            &Plan {
                hub: false,
                nodes: vec![],
                ..Plan::default()
            },
        )
        .await?;
        let url = url(&db)?;
        let mut hub = deployment.hub_setup(&bins, &url, listen)?;
        // The hub's own chain stays still during a test (a checkpoint
        // would change heads between two reads of them).
        hub.env
            .push(("SENTINEL_CHECKPOINT_INTERVAL_S".into(), "86400".into()));
        let dir = tempfile::Builder::new()
            .prefix("sentinel-fleet-")
            .tempdir()?;
        Ok(Fleet {
            bins,
            db,
            deployment,
            hub,
            dir,
        })
    }

    /// Starts `sentinel-hub serve`, inside namespace `netns` if given;
    /// returns once it says where it listens.
    pub fn start_hub(&self, netns: Option<&str>, log: &str) -> Result<Running> {
        let hub = self.hub.bin.to_string_lossy().into_owned();
        let mut args: Vec<&str> = Vec::new();
        if let Some(ns) = netns {
            args.extend(["netns", "exec", ns, &hub]);
        }
        args.extend(["serve", "--json"]);
        let bin = if netns.is_some() {
            Path::new("ip")
        } else {
            self.hub.bin.as_path()
        };
        let (running, _) = process::spawn(
            bin,
            &args,
            &self.hub.env,
            self.dir.path().join(log),
            &["listening"],
        )?;
        Ok(running)
    }

    /// A field node enrolled in this deployment, no process serving it.
    pub fn node(&self, name: &str) -> Result<FieldNode> {
        Ok(FieldNode {
            node: self.deployment.offline_node(&self.bins, name)?,
            netns: None,
        })
    }

    /// The hub's store, read by the checks (migrations are already
    /// applied by the hub's first start).
    pub async fn store(&self) -> Result<PgStore> {
        Ok(self.db.open_store().await?)
    }
}

/// What the hub holds of `author`'s chain: its head seq, after checking
/// the chain from seq 1 (every signature, every link).
pub async fn hub_chain(store: &PgStore, author: &AuthorId) -> Result<u64> {
    let entries = store
        .entries_after(author, 0, usize::MAX, usize::MAX)
        .await?;
    match sentinel_schema::chain::verify_chain(*author, &entries) {
        Ok(head) => Ok(head.map_or(0, |h| h.seq)),
        Err(e) => bail!("the hub's chain of {author} does not verify: {e}"),
    }
}

/// A node's data folder and the namespace its commands run in.
pub struct FieldNode {
    pub node: OfflineNode,
    pub netns: Option<String>,
}

/// How a command run on a node ended.
#[derive(Debug)]
pub struct Ended {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Ended {
    /// `sync --json`'s one object per peer (the first), if it printed one.
    pub fn summary(&self) -> Option<Value> {
        self.stdout
            .lines()
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
    }
}

/// A command started on a node, killed if dropped. Its output is read
/// as it comes (a full pipe would stall it).
pub struct Started {
    child: Option<Child>,
    out: Option<std::thread::JoinHandle<String>>,
    err: Option<std::thread::JoinHandle<String>>,
    began: Instant,
    what: String,
}

/// Reads a pipe to its end on a thread of its own.
fn drain(pipe: Option<impl Read + Send + 'static>) -> Option<std::thread::JoinHandle<String>> {
    let mut pipe = pipe?;
    Some(std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    }))
}

impl Started {
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
        }
    }

    /// Waits at most `limit` for the command to end (then SIGKILLs it
    /// and fails).
    pub fn finish(mut self, limit: Duration) -> Result<Ended> {
        let mut child = self.child.take().context("finished twice")?;
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{} still running after {limit:?}", self.what);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let join = |h: Option<std::thread::JoinHandle<String>>| {
            h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
        };
        let stdout = join(self.out.take());
        let stderr = join(self.err.take());
        Ok(Ended {
            status,
            stdout,
            stderr,
            took: self.began.elapsed(),
        })
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl FieldNode {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(self.node.bin());
                c
            }
            None => Command::new(self.node.bin()),
        };
        c.args(args).stdin(Stdio::null());
        for (k, v) in self.node.env() {
            c.env(k, v);
        }
        c
    }

    /// Starts `sentinel-node ARGS` (output collected, for
    /// [`Started::finish`]).
    pub fn start(&self, args: &[&str]) -> Result<Started> {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting sentinel-node")?;
        let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
        Ok(Started {
            child: Some(child),
            out,
            err,
            began: Instant::now(),
            what: format!("sentinel-node {}", args.join(" ")),
        })
    }

    /// Runs `sentinel-node ARGS` to completion (within `limit`).
    pub fn run(&self, args: &[&str], limit: Duration) -> Result<Ended> {
        self.start(args)?.finish(limit)
    }

    /// Runs `sentinel-node --json ARGS`, requires success, and parses
    /// what it printed.
    pub fn json(&self, args: &[&str]) -> Result<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all, Duration::from_secs(120))?;
        if !out.status.success() {
            bail!(
                "sentinel-node {all:?}: {}: {}",
                out.status,
                out.stderr.trim()
            );
        }
        Ok(serde_json::from_str(&out.stdout)?)
    }

    /// `stats`: entries, local_entries, awaiting_receipt, author, …
    pub fn stats(&self) -> Result<Value> {
        self.json(&["stats"])
    }

    pub fn author(&self) -> Result<AuthorId> {
        let s = self.stats()?;
        let text = s["author"].as_str().context("stats has no author")?;
        text.parse()
            .map_err(|e| anyhow::anyhow!("author {text:?}: {e:?}"))
    }

    /// Imports a GeoJSON file to completion; how many it acknowledged.
    pub fn import(&self, file: &Path) -> Result<u64> {
        let path = file.to_string_lossy().into_owned();
        let out = self.run(&["--json", "import", &path], Duration::from_secs(300))?;
        if !out.status.success() {
            bail!("import {path}: {}: {}", out.status, out.stderr.trim());
        }
        Ok(out
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["acknowledged"].as_u64())
            .max()
            .unwrap_or(0))
    }

    /// `audit verify` passes, with no problems.
    pub fn audit(&self) -> Result<Value> {
        let out = self.run(&["--json", "audit", "verify"], Duration::from_secs(120))?;
        let report: Value = serde_json::from_str(&out.stdout)
            .with_context(|| format!("audit verify printed {:?}", out.stdout))?;
        if !out.status.success() || report["problems"] != json!([]) {
            bail!("audit verify failed ({}): {report}", out.status);
        }
        Ok(report)
    }

    /// The ids of the events in the node's views.
    pub fn event_ids(&self) -> Result<std::collections::BTreeSet<String>> {
        let out = self.run(&["export", "--format", "geojson"], Duration::from_secs(120))?;
        if !out.status.success() {
            bail!("export: {}: {}", out.status, out.stderr.trim());
        }
        let doc: Value = serde_json::from_str(&out.stdout)?;
        Ok(doc["features"]
            .as_array()
            .context("export has no features")?
            .iter()
            .filter_map(|f| f["properties"]["id"].as_str().map(str::to_owned))
            .collect())
    }
}
