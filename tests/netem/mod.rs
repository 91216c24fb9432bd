//! Bad networks, for real: the hub and two field nodes each in a network
//! namespace of their own, joined through a router namespace by veth
//! pairs, running the real `sentinel-hub` and `sentinel-node` binaries
//! (`ip netns exec NS …`). Links lose 30 % of their datagrams, delay them
//! half a second and reorder them; a link is cut (its veth set down) for
//! minutes and healed; the hub is killed with SIGKILL mid-sync and
//! started again on the same address. The tests show that every entry
//! arrives once the link heals, that nothing a receiver had committed is
//! sent to it again (measured, printed, in `docs/benchmarks.md`), and
//! that an interrupted `sync` says so with its exit code.
//!
//! ```text
//!   ns A  eth0 10.19.1.2 ──veth── a0 10.19.1.1 ┐
//!                                               ├─ ns R (router: the relay) ─ h0 10.19.9.1/.11/.12 ──veth── eth0 10.19.9.2  ns H (hub)
//!   ns B  eth0 10.19.2.2 ──veth── b0 10.19.2.1 ┘
//! ```
//!
//! **Impairment.** `tc qdisc … netem` needs a kernel built with
//! `sch_netem`; many CI kernels (and this project's test machines) are
//! not. The loss, delay and reordering are therefore done by a relay
//! thread inside the router namespace ([`relay`]), per UDP datagram, in
//! both directions — QUIC runs on UDP alone, so that is every packet the
//! nodes and the hub exchange. A cut is the kernel's: `ip link set a0
//! down`. Everything stays inside this test's namespaces; the addresses
//! exist nowhere else.
//!
//! **Skips.** Without root, `ip`, or network namespaces the tests print
//! `SKIPPED: why` and pass; with them (CI runs as root) they run.
//! Namespaces have names unique to the test process and test
//! (`snt<pid>-<n>-<role>`), and are deleted by a guard when a test ends,
//! however it ends; those of a test process killed outright (its guards
//! never ran) are swept by the next run.
//!
//! **Background sync** ([`background`]): node A runs `serve --peer HUB`
//! and nobody types `sync`; after a hub kill and after a cut its outbox
//! drains by itself.
//!
//! **Knobs.** `SENTINEL_NETEM_CUT_S` (default 120): how long the link
//! stays cut. `SENTINEL_NETEM_EVENTS` (default 120): reports written on
//! node A before each phase.

mod background;
mod links;
mod relay;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};

use crate::fleet::{FieldNode, Fleet};
use relay::{Counts, Impairment, LinkSpec, Relay};

/// The hub's sync address inside its namespace.
const HUB: &str = "10.19.9.2:7447";
/// Where node A and node B reach the hub (the relay, in the router).
const VIA_A: &str = "10.19.1.1:7000";
const VIA_B: &str = "10.19.2.1:7000";

/// Runs `ip ARGS`; fails with its error output.
fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Why these tests cannot run here, if they cannot.
fn unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    if !root {
        return Some("network namespaces need root (CI runs as root)".into());
    }
    static N: AtomicU64 = AtomicU64::new(0);
    let probe = format!(
        "snt{}-probe{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    match ip(&["netns", "add", &probe]) {
        Ok(()) => {
            let _ = ip(&["netns", "del", &probe]);
            None
        }
        Err(e) => Some(format!("cannot make a network namespace: {e}")),
    }
}

/// A network namespace, deleted when dropped.
pub struct Netns(pub String);

impl Netns {
    fn add(name: String) -> Result<Netns> {
        ip(&["netns", "add", &name])?;
        let ns = Netns(name);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.0]) {
            eprintln!("netem: could not delete namespace {}: {e}", self.0);
        }
    }
}

/// The namespaces, their links and the relay. Field order is drop
/// order: the relay stops before the namespaces go.
pub struct Topology {
    _relay: Relay,
    pub a: Arc<Mutex<Impairment>>,
    pub b: Arc<Mutex<Impairment>>,
    pub a_counts: Arc<Counts>,
    pub b_counts: Arc<Counts>,
    pub router: Netns,
    pub hub: Netns,
    pub node_a: Netns,
    pub node_b: Netns,
}

impl Topology {
    fn build() -> Result<Topology> {
        static N: AtomicU64 = AtomicU64::new(0);
        let prefix = format!(
            "snt{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let router = Netns::add(format!("{prefix}-r"))?;
        let hub = Netns::add(format!("{prefix}-h"))?;
        let node_a = Netns::add(format!("{prefix}-a"))?;
        let node_b = Netns::add(format!("{prefix}-b"))?;
        let r = router.0.as_str();
        // Each veth is made inside the router with its peer in the other
        // namespace: no name ever exists in the host's namespace, so runs
        // in parallel cannot collide.
        for (dev, other, mine, theirs) in [
            ("h0", &hub.0, "10.19.9.1/24", "10.19.9.2/24"),
            ("a0", &node_a.0, "10.19.1.1/24", "10.19.1.2/24"),
            ("b0", &node_b.0, "10.19.2.1/24", "10.19.2.2/24"),
        ] {
            ip(&[
                "-n", r, "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", other,
            ])?;
            ip(&["-n", r, "addr", "add", mine, "dev", dev])?;
            ip(&["-n", other, "addr", "add", theirs, "dev", "eth0"])?;
            ip(&["-n", r, "link", "set", dev, "up"])?;
            ip(&["-n", other, "link", "set", "eth0", "up"])?;
        }
        // One address toward the hub per node's link.
        for extra in ["10.19.9.11/24", "10.19.9.12/24"] {
            ip(&["-n", r, "addr", "add", extra, "dev", "h0"])?;
        }
        let a = Arc::new(Mutex::new(Impairment::default()));
        let b = Arc::new(Mutex::new(Impairment::default()));
        let a_counts = Arc::new(Counts::default());
        let b_counts = Arc::new(Counts::default());
        let hub_addr: SocketAddr = HUB.parse()?;
        let seed = 0x5e47_0019_0000_0000 ^ u64::from(std::process::id());
        let relay = relay::start(
            r,
            vec![
                LinkSpec {
                    listen: VIA_A.parse()?,
                    upstream_from: "10.19.9.11".parse::<IpAddr>()?,
                    hub: hub_addr,
                    impairment: a.clone(),
                    counts: a_counts.clone(),
                },
                LinkSpec {
                    listen: VIA_B.parse()?,
                    upstream_from: "10.19.9.12".parse::<IpAddr>()?,
                    hub: hub_addr,
                    impairment: b.clone(),
                    counts: b_counts.clone(),
                },
            ],
            seed,
        )?;
        Ok(Topology {
            _relay: relay,
            a,
            b,
            a_counts,
            b_counts,
            router,
            hub,
            node_a,
            node_b,
        })
    }

    /// Cuts node A's link (its veth in the router goes down) or heals it.
    pub fn set_a_link(&self, up: bool) -> Result<()> {
        ip(&[
            "-n",
            &self.router.0,
            "link",
            "set",
            "a0",
            if up { "up" } else { "down" },
        ])
    }
}

/// What a netem test runs on: the topology, the fleet, A and B.
pub struct Bench {
    pub fleet: Fleet,
    pub a: FieldNode,
    pub b: FieldNode,
    // Dropped last: the fleet's processes (killed by their own guards in
    // the tests) and the relay stop before the namespaces are deleted.
    pub net: Topology,
}

/// The hub's database as a process in another network namespace
/// reaches it: through the throwaway server's unix socket (a file, the
/// same in every namespace), not TCP on the host's loopback.
fn socket_url(db: &sentinel_hub::testing::TestDatabase) -> Result<String> {
    let text = db.connection_string();
    let field = |key: &str| -> Option<String> {
        text.split(' ')
            .find_map(|p| p.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim_matches('\'').to_string())
    };
    let host = field("host").context("no host in the connection string")?;
    if host.starts_with('/') {
        return Ok(text);
    }
    let port = field("port").context("no port in the connection string")?;
    // The throwaway server (`sentinel_hub::testing`) keeps its socket in
    // its own directory, `$TMPDIR/sentinel-pg-<pid>-<random>`.
    let socket = format!(".s.PGSQL.{port}");
    let mine = format!("sentinel-pg-{}-", std::process::id());
    let dir = std::fs::read_dir(std::env::temp_dir())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&mine))
                && p.join(&socket).exists()
        })
        .with_context(|| {
            format!(
                "no unix socket of the test PostgreSQL ({host}:{port}); a hub in a \
                 namespace cannot reach TCP on the host's loopback"
            )
        })?;
    Ok(text.replacen(
        &format!("host='{host}'"),
        &format!("host='{}'", dir.display()),
        1,
    ))
}

/// Deletes the namespaces a test process that died without running its
/// guards (SIGKILL, SIGTERM) left behind: `snt<pid>-…` whose process is
/// gone. Their own processes died with the test or are killed here by
/// the kernel when the namespace's last reference goes.
fn sweep_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name
            .strip_prefix("snt")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("netem: deleting namespace {name}, left by a test process that died");
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// The bench, or `None` after printing why it cannot be built here.
async fn bench(test: &str) -> Option<Bench> {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED: {test}: {why}");
        return None;
    }
    sweep_stale_namespaces();
    let net = Topology::build().expect("building the namespaces");
    let fleet = Fleet::new(HUB.parse().unwrap(), socket_url)
        .await
        .expect("the fleet (PostgreSQL with PostGIS, reached by its unix socket)");
    let mut a = fleet.node("ada").unwrap();
    a.netns = Some(net.node_a.0.clone());
    let mut b = fleet.node("bo").unwrap();
    b.netns = Some(net.node_b.0.clone());
    Some(Bench { fleet, a, b, net })
}
