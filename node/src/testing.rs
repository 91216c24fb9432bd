//! Test support (feature `testing`), shared by the node's, the hub's and
//! the workspace's tests: an enrolled node in its own data directory
//! ([`Peer`]), `serve` running on loopback ([`Server`]), one bounded
//! `sync` ([`sync`]), and bounded waits ([`eventually`]). The deployment
//! CA and identities come from `sentinel_certs::testing`.
//!
//! A failure here is a bug in a test, and panicking is how tests report
//! it. Every wait is bounded: a hung session fails its test instead of the
//! suite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sentinel_certs::testing::{issue, key, now_ms};
use sentinel_certs::{Ca, Enrollment};
use sentinel_schema::{DeviceRole, EventId, NewEvent, Point};
use sentinel_sync::admission::Limits;
use tempfile::TempDir;
use tokio::time::timeout;

use crate::net::{self, Net, Summary};
use crate::node::{self as node_mod, Node, Stats};

pub use sentinel_certs::testing::{deployment, DAY, YEAR};

/// Longest any single sync may take before a test calls it hung.
pub const HANG: Duration = Duration::from_secs(30);

/// The event id `n`.
pub fn ev(n: u128) -> EventId {
    EventId(n.to_be_bytes())
}

/// A new event titled `title` at `lon, lat`, reported now.
pub fn new_event(title: &str, lon: f64, lat: f64) -> NewEvent {
    NewEvent {
        title: title.into(),
        description: format!("{title} described"),
        category: "flood".into(),
        severity: 3,
        location: Point::new(lon, lat).unwrap(),
        reported_ms: now_ms(),
    }
}

/// A node enrolled with a deployment CA in its own data directory, as
/// `sentinel-node init` then `enroll` leave it.
pub struct Peer {
    pub dir: TempDir,
    pub enrollment: Enrollment,
    pub node: Arc<Mutex<Node>>,
}

impl Peer {
    /// A node named `name`, with the test key `seed`.
    pub fn new(ca: &Ca, name: &str, seed: u8) -> Peer {
        let enrollment = issue(ca, DeviceRole::Node, name, seed);
        let dir = TempDir::new().unwrap();
        drop(Node::init(dir.path(), key(seed.wrapping_add(100))).unwrap());
        node_mod::enroll(dir.path(), &enrollment).unwrap();
        let node = Node::open(dir.path()).unwrap();
        assert_eq!(node.author(), enrollment.identity.author);
        Peer {
            dir,
            enrollment,
            node: Arc::new(Mutex::new(node)),
        }
    }

    /// The node's network settings, as `serve` and `sync` load them.
    pub fn net(&self) -> Net {
        Net::load(self.dir.path(), &self.node.lock().unwrap()).unwrap()
    }

    pub fn stats(&self) -> Stats {
        self.node.lock().unwrap().stats().unwrap()
    }

    /// The digest of the node's heads (equal digests: equal logs).
    pub fn digest(&self) -> String {
        self.stats().heads_digest
    }

    /// Reports `n` events with ids `first..first + n`, one entry each.
    pub fn report(&self, first: u128, n: u128) {
        let mut node = self.node.lock().unwrap();
        for i in first..first + n {
            let at = (i % 360) as f64 - 180.0;
            node.report(
                &new_event(&format!("event {i}"), at, 10.0),
                ev(i),
                None,
                now_ms(),
            )
            .unwrap();
        }
    }

    /// One event as `show` presents it, without what differs between
    /// stores by design (which entries were written here).
    pub fn shown(&self, event: EventId) -> String {
        let d = self.node.lock().unwrap().show(event).unwrap();
        let history: Vec<_> = d
            .history
            .iter()
            .map(|h| (h.entry, h.author, h.seq, h.hlc, h.kind))
            .collect();
        format!("{:?} {:?}", d.view, history)
    }

    /// Every event as GeoJSON, the way `export` writes it (views caught up
    /// first).
    pub fn geojson(&self) -> String {
        let mut node = self.node.lock().unwrap();
        node.catch_up_views().unwrap();
        let mut out = Vec::new();
        crate::transfer::export(crate::transfer::Format::GeoJson, node.store(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }
}

/// `serve` running in this runtime on 127.0.0.1, reporting each finished
/// session. Stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    sessions: Arc<Mutex<Vec<Summary>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub fn start(peer: &Peer) -> Server {
        Server::start_with(peer, Limits::NODE)
    }

    /// [`Server::start`] admitting connections within `limits`.
    pub fn start_with(peer: &Peer, limits: Limits) -> Server {
        let net = peer.net();
        let endpoint = net::listen(&net, "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = endpoint.local_addr().unwrap();
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let seen = sessions.clone();
        let serving = net::serve_with(
            peer.node.clone(),
            Arc::new(net),
            endpoint,
            limits,
            move |s| seen.lock().unwrap().push(s),
        );
        let task = tokio::spawn(async move {
            serving.await.unwrap();
        });
        Server {
            addr,
            sessions,
            task,
        }
    }

    /// Every session that ended so far.
    pub fn sessions(&self) -> Vec<Summary> {
        self.sessions.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One `sync` from `client` to the peer at `addr`, bounded by [`HANG`].
pub async fn sync(client: &Peer, addr: SocketAddr) -> Summary {
    let net = client.net();
    timeout(
        HANG,
        net::sync_once(client.node.clone(), &net, addr, |_| {}),
    )
    .await
    .expect("sync hung")
    .unwrap()
}

/// Waits (at most 15 s) until `done` holds. The serving side of a sync
/// finishes its bookkeeping (views, its session report) after the client
/// has its answer, so checks on a server must poll.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Prints how long the test took when dropped (run with `--nocapture`).
pub fn timed(name: &str) -> impl Drop {
    struct T(String, Instant);
    impl Drop for T {
        fn drop(&mut self) {
            eprintln!("{}: {:.2?}", self.0, self.1.elapsed());
        }
    }
    T(name.to_string(), Instant::now())
}
