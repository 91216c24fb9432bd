//! Sync between field nodes over real QUIC on loopback, with real
//! certificates from the deployment CA and real SpatiaLite stores: two
//! nodes converge, entries travel through a node that meets both sides,
//! every kind of peer the transport must refuse is refused before
//! anything is stored, and a sync killed half-way (either side) resumes
//! without losing or resending what was committed.
//!
//! The handshake runs on the real clock (that is what `serve` does), so
//! certificates here are issued around the current time, not a fixed one.
//! Every wait is bounded: a hung session fails its test instead of the
//! suite. Each test prints its run time to stderr (`--nocapture`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use sentinel_certs::{
    Ca, CaCert, Enrollment, FreshnessPolicy, RevocationHandle, RevocationList, Revoked, ALPN,
};
use sentinel_node::net::{self, Net, Summary};
use sentinel_node::node::{self as node_mod, Node, Stats};
use sentinel_schema::{DeviceRole, EventId, NewEvent, Point, SigningKey};
use sentinel_sync::ca_trust::CaTrust;
use sentinel_sync::quic;
use sentinel_sync::SyncStore;
use tempfile::TempDir;
use tokio::time::timeout;

const DAY: u64 = 24 * 60 * 60 * 1000;
const YEAR: u64 = 365 * DAY;
/// Longest any single sync may take before the test calls it hung.
const HANG: Duration = Duration::from_secs(30);
/// Entries node A holds in the kill tests.
const N_BIG: u64 = 20_000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// A deployment CA valid from a year ago to five years ahead.
fn deployment(name: &str, seed: u8) -> Ca {
    let now = now_ms();
    Ca::create(name, now - YEAR, now + 5 * YEAR, key(seed)).unwrap()
}

/// An identity valid from a day ago to a year ahead.
fn issue(ca: &Ca, role: DeviceRole, name: &str, seed: u8) -> Enrollment {
    let now = now_ms();
    ca.enroll(role, name, key(seed), now - DAY, now + YEAR, now)
        .unwrap()
}

fn new_event(title: &str, lon: f64, lat: f64) -> NewEvent {
    NewEvent {
        title: title.into(),
        description: format!("{title} described"),
        category: "flood".into(),
        severity: 3,
        location: Point::new(lon, lat).unwrap(),
        reported_ms: now_ms(),
    }
}

fn ev(n: u128) -> EventId {
    EventId(n.to_be_bytes())
}

/// A node enrolled with `ca` in its own data directory, as
/// `sentinel-node init` then `enroll` leave it.
struct Peer {
    dir: TempDir,
    enrollment: Enrollment,
    node: Arc<Mutex<Node>>,
}

impl Peer {
    fn new(ca: &Ca, name: &str, seed: u8) -> Peer {
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

    fn net(&self) -> Net {
        Net::load(self.dir.path(), &self.node.lock().unwrap()).unwrap()
    }

    fn stats(&self) -> Stats {
        self.node.lock().unwrap().stats().unwrap()
    }

    /// Reports `n` events with ids `first..first + n`, one entry each.
    fn report(&self, first: u128, n: u128) {
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
    fn shown(&self, event: EventId) -> String {
        let d = self.node.lock().unwrap().show(event).unwrap();
        let history: Vec<_> = d
            .history
            .iter()
            .map(|h| {
                (
                    h.entry.clone(),
                    h.author.clone(),
                    h.seq,
                    h.hlc.clone(),
                    h.kind,
                )
            })
            .collect();
        format!("{:?} {:?} {:?}", d.view, d.media, history)
    }

    /// Every event as GeoJSON, the way `export` writes it.
    fn geojson(&self) -> String {
        let node = self.node.lock().unwrap();
        let mut out = Vec::new();
        sentinel_node::transfer::export(
            sentinel_node::transfer::Format::GeoJson,
            node.store().conn(),
            &mut out,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }
}

/// `serve` running in this runtime, reporting each finished session.
struct Server {
    addr: SocketAddr,
    sessions: Arc<Mutex<Vec<Summary>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    fn start(peer: &Peer) -> Server {
        let net = peer.net();
        let endpoint = net::listen(&net, "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = endpoint.local_addr().unwrap();
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let seen = sessions.clone();
        let serving = net::serve(peer.node.clone(), Arc::new(net), endpoint, move |s| {
            seen.lock().unwrap().push(s)
        });
        let task = tokio::spawn(async move {
            serving.await.unwrap();
        });
        Server {
            addr,
            sessions,
            task,
        }
    }

    fn sessions(&self) -> Vec<Summary> {
        self.sessions.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One `sync` from `client` to `server`, bounded in time.
async fn sync(client: &Peer, server: &Server) -> Summary {
    let net = client.net();
    timeout(
        HANG,
        net::sync_once(client.node.clone(), &net, server.addr, |_| {}),
    )
    .await
    .expect("sync hung")
    .unwrap()
}

/// Waits (bounded) until `done` holds. The serving side finishes its
/// bookkeeping (views, its session report) after the client has its
/// answer, so a few checks on the server must poll.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn timed(name: &str) -> impl Drop {
    struct T(String, Instant);
    impl Drop for T {
        fn drop(&mut self) {
            eprintln!("{}: {:.2?}", self.0, self.1.elapsed());
        }
    }
    T(name.to_string(), Instant::now())
}

mod converge;
mod kill;
mod receipts;
mod refusals;
mod revocations;
mod sensors;
