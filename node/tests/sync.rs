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

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_that_reported_offline_converge_and_then_move_only_new_entries() {
    let _t = timed("two_nodes_converge");
    let ca = deployment("Sentinel test CA", 1);
    let a = Peer::new(&ca, "node-a", 10);
    let b = Peer::new(&ca, "node-b", 11);
    a.report(1_000, 5);
    b.report(2_000, 3);
    assert_ne!(a.stats().heads_digest, b.stats().heads_digest);

    let server = Server::start(&a);
    let s = sync(&b, &server).await;
    assert!(s.caught_up, "{s:?}");
    assert_eq!((s.sent, s.received, s.applied), (3, 5, 5), "{s:?}");
    assert_eq!((s.quarantined, s.forks), (0, 0), "{s:?}");
    assert_eq!(s.peer_name, "node-a");

    eventually("A to hold B's entries", || {
        a.stats().heads_digest == b.stats().heads_digest
    })
    .await;
    // A projects after acknowledging; make sure its views are current.
    a.node.lock().unwrap().catch_up_views().unwrap();
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!((sa.entries, sa.events, sa.authors), (8, 8, 2));
    assert_eq!((sb.entries, sb.events, sb.authors), (8, 8, 2));
    for id in (1_000..1_005).chain(2_000..2_003) {
        assert_eq!(a.shown(ev(id)), b.shown(ev(id)), "event {id}");
    }
    assert_eq!(a.geojson(), b.geojson());

    // A writes more; the next sync moves those entries and nothing else.
    a.report(1_005, 2);
    let s = sync(&b, &server).await;
    assert_eq!((s.sent, s.received, s.applied), (0, 2, 2), "{s:?}");
    assert_eq!(a.stats().heads_digest, b.stats().heads_digest);
    assert_eq!(b.stats().entries, 10);
    // And with nothing new, nothing moves.
    let s = sync(&b, &server).await;
    assert_eq!((s.sent, s.received, s.applied), (0, 0, 0), "{s:?}");

    eventually("A to report all three sessions", || {
        server.sessions().len() >= 3
    })
    .await;
    let first = &server.sessions()[0];
    assert_eq!((first.received, first.applied), (3, 3), "{first:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn entries_reach_a_node_that_never_met_their_author() {
    let _t = timed("store_and_forward");
    let ca = deployment("Sentinel test CA", 2);
    let a = Peer::new(&ca, "node-a", 20);
    let b = Peer::new(&ca, "node-b", 21);
    let c = Peer::new(&ca, "node-c", 22);
    a.report(1_000, 4);
    c.report(3_000, 1);

    let at_a = Server::start(&a);
    sync(&b, &at_a).await;
    drop(at_a);

    // C meets only B.
    let at_b = Server::start(&b);
    let s = sync(&c, &at_b).await;
    assert_eq!((s.received, s.applied, s.quarantined), (4, 4, 0), "{s:?}");
    assert_eq!(s.peer_name, "node-b");
    let a_author = a.enrollment.identity.author;
    let a_cert = a.enrollment.cert_der.clone();
    {
        let node = c.node.lock().unwrap();
        // A's certificate travelled with A's entries: that is what C
        // verified them against.
        assert_eq!(node.certificate(&a_author).unwrap(), Some(a_cert));
        let h = node.heads().unwrap();
        assert_eq!(h.get(&a_author).map(|h| h.seq), Some(4));
        assert!(node.store().audit().unwrap().problems.is_empty());
    }
    let st = c.stats();
    assert_eq!((st.entries, st.events, st.quarantined), (5, 5, 0));
    for id in 1_000..1_004 {
        assert_eq!(c.shown(ev(id)), a.shown(ev(id)), "event {id}");
    }
    eventually("B to hold C's entry", || {
        b.stats().heads_digest == c.stats().heads_digest
    })
    .await;
}

// ---- Peers the transport must refuse ------------------------------------

/// Trusts servers certified by `ca`, like a node's own verifier, for a
/// client whose own certificate (or lack of one) is the point.
#[derive(Debug)]
struct TrustCa(CaCert);

impl ServerCertVerifier for TrustCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        sentinel_certs::verify_identity(end_entity, &self.0)
            .map(|_| ServerCertVerified::assertion())
            .map_err(|e| rustls::Error::General(e.to_string()))
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not supported".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// An ed25519 key as PKCS#8 v1 DER: a fixed header, then the seed.
fn pkcs8(key: &SigningKey) -> PrivateKeyDer<'static> {
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend_from_slice(&key.to_bytes());
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))
}

/// A client that trusts `ca` and presents `cert` (or nothing).
fn custom_client(ca: &CaCert, cert: Option<(Vec<u8>, &SigningKey)>) -> Arc<ClientConfig> {
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(TrustCa(ca.clone())));
    let mut config = match cert {
        None => builder.with_no_client_auth(),
        Some((der, key)) => builder
            .with_client_auth_cert(vec![CertificateDer::from(der)], pkcs8(key))
            .unwrap(),
    };
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.enable_sni = false;
    Arc::new(config)
}

/// The node side of a client: `Net` as `Net::load` builds it, with the TLS
/// client swapped for `client`. `as_ca` is the CA whose certificate the
/// client checks the server's identity and entries against.
fn client_net(as_ca: Enrollment, client: Arc<ClientConfig>) -> Net {
    let revocations = RevocationHandle::empty();
    Net {
        server: sentinel_certs::server_config(&as_ca, &revocations, FreshnessPolicy::Lenient)
            .unwrap(),
        client,
        trust: Arc::new(CaTrust::new(as_ca.ca.clone())),
        enrollment: as_ca,
        revocations,
    }
}

/// A client as `Net::load` builds it for the enrollment `e`.
fn standard_client(e: Enrollment) -> Net {
    let client =
        sentinel_certs::client_config(&e, &RevocationHandle::empty(), FreshnessPolicy::Lenient)
            .unwrap();
    client_net(e, client)
}

/// A client store with one entry of its own, so that a session that got
/// through would have something to hand over.
fn client_store(author_key: SigningKey) -> (TempDir, Arc<Mutex<Node>>) {
    let dir = TempDir::new().unwrap();
    let mut node = Node::init(dir.path(), author_key).unwrap();
    node.report(
        &new_event("from the client", 1.0, 2.0),
        ev(9_999),
        None,
        now_ms(),
    )
    .unwrap();
    (dir, Arc::new(Mutex::new(node)))
}

/// Runs `sync_once` from a client that must be refused, then dials once
/// more with the same TLS client to read the reason the server closed the
/// connection with. Checks that the server stored nothing and ran no
/// session, and that the client got nothing. Returns that reason.
///
/// The reason is read from the close rather than from `sync_once`'s error:
/// in TLS 1.3 the client finishes its handshake before the server judges
/// the client's certificate, and when the refusal reaches `sync_once`
/// while it writes its first frame, its error says only "network:
/// connection lost" (see the report that came with this file).
async fn refused(server: &Server, a: &Peer, client: Net, key: SigningKey) -> String {
    let before = a.stats();
    let (_dir, store) = client_store(key);
    let result = timeout(
        HANG,
        net::sync_once(store.clone(), &client, server.addr, |_| {}),
    )
    .await
    .expect("the refused sync hung");
    let err = match result {
        Ok(s) => panic!("a peer that must be refused synced: {s:?}"),
        Err(e) => e.to_string(),
    };
    let endpoint =
        quic::client_endpoint("127.0.0.1:0".parse().unwrap(), client.client.clone()).unwrap();
    let reason = timeout(HANG, async {
        match quic::connect(&endpoint, server.addr).await {
            Err(e) => e.to_string(),
            Ok(conn) => conn.closed().await.to_string(),
        }
    })
    .await
    .expect("the server neither refused nor closed the connection");
    eprintln!("refused: sync_once said {err:?}; the close said {reason:?}");
    assert!(err.starts_with("sync: "), "{err}");
    assert_eq!(a.stats(), before, "the server stored something: {reason}");
    assert!(server.sessions().is_empty(), "a session ran: {reason}");
    // Nor did the client get anything from the server.
    assert_eq!(store.lock().unwrap().stats().unwrap().entries, 1);
    reason
}

struct Refusals {
    ca: Ca,
    a: Peer,
    server: Server,
}

fn refusals(seed: u8) -> Refusals {
    let ca = deployment("Sentinel test CA", seed);
    let a = Peer::new(&ca, "node-a", seed + 1);
    a.report(1_000, 2);
    let server = Server::start(&a);
    Refusals { ca, a, server }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_without_a_certificate_is_refused() {
    let _t = timed("refuse_no_certificate");
    let r = refusals(30);
    let some = issue(&r.ca, DeviceRole::Node, "bystander", 32);
    let client = client_net(some, custom_client(r.ca.cert(), None));
    let err = refused(&r.server, &r.a, client, key(33)).await;
    assert!(err.contains("peer sent no certificates"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_signed_client_is_refused() {
    let _t = timed("refuse_self_signed");
    let r = refusals(40);
    // Self-signed, and even under the deployment CA's own name.
    let own = key(42);
    let fake = Ca::create(
        r.ca.cert().name(),
        now_ms() - DAY,
        now_ms() + YEAR,
        own.clone(),
    )
    .unwrap();
    let some = issue(&r.ca, DeviceRole::Node, "bystander", 43);
    let client = client_net(
        some,
        custom_client(r.ca.cert(), Some((fake.cert().der().to_vec(), &own))),
    );
    let err = refused(&r.server, &r.a, client, own).await;
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_from_another_ca_is_refused() {
    let _t = timed("refuse_other_ca");
    let r = refusals(50);
    let theirs = deployment("Sentinel test CA", 52);
    let stranger = issue(&theirs, DeviceRole::Node, "node-x", 53);
    let some = issue(&r.ca, DeviceRole::Node, "bystander", 54);
    let client = client_net(
        some,
        custom_client(
            r.ca.cert(),
            Some((stranger.cert_der.clone(), &stranger.key)),
        ),
    );
    let err = refused(&r.server, &r.a, client, stranger.key.clone()).await;
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_client_is_refused() {
    let _t = timed("refuse_expired");
    let r = refusals(60);
    let now = now_ms();
    let old =
        r.ca.enroll(
            DeviceRole::Node,
            "old",
            key(62),
            now - 30 * DAY,
            now - DAY,
            now,
        )
        .unwrap();
    let k = old.key.clone();
    let err = refused(&r.server, &r.a, standard_client(old), k).await;
    assert!(err.contains("certificate expired"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_not_yet_valid_client_is_refused() {
    let _t = timed("refuse_not_yet_valid");
    let r = refusals(70);
    let now = now_ms();
    let early =
        r.ca.enroll(
            DeviceRole::Node,
            "early",
            key(72),
            now + DAY,
            now + 30 * DAY,
            now,
        )
        .unwrap();
    let k = early.key.clone();
    let err = refused(&r.server, &r.a, standard_client(early), k).await;
    assert!(err.contains("certificate not valid yet"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_client_is_refused_at_the_handshake() {
    let _t = timed("refuse_revoked");
    let ca = deployment("Sentinel test CA", 80);
    let a = Peer::new(&ca, "node-a", 81);
    a.report(1_000, 2);
    let bad = issue(&ca, DeviceRole::Node, "node-lost", 82);
    let list = RevocationList {
        number: 1,
        issued_ms: now_ms(),
        revoked: vec![Revoked {
            key: bad.identity.author,
            last_valid_seq: 0,
            reason: "device lost".into(),
        }],
    }
    .sign(&ca)
    .unwrap();
    // Stored before `Net::load`, which hands it to the TLS verifiers.
    a.node
        .lock()
        .unwrap()
        .set_revocation_list(list.clone())
        .unwrap();
    let server = Server::start(&a);
    let k = bad.key.clone();
    let err = refused(&server, &a, standard_client(bad), k).await;
    assert!(err.contains("invalid peer certificate: Revoked"), "{err}");
    assert_eq!(
        a.node.lock().unwrap().revocation_list().unwrap(),
        Some(list)
    );

    // The same server still serves a peer in good standing.
    let good = Peer::new(&ca, "node-b", 83);
    let s = sync(&good, &server).await;
    assert_eq!(s.received, 2, "{s:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sensor_cannot_write_events_its_entry_is_quarantined() {
    let _t = timed("sensor_event_quarantined");
    let r = refusals(90);
    let sensor = issue(&r.ca, DeviceRole::Sensor, "sensor-1", 92);
    let (_dir, store) = client_store(sensor.key.clone());
    // The sensor's store holds its certificate, so the session sends it
    // along: the entry is refused for its role, not for an unknown author.
    store
        .lock()
        .unwrap()
        .add_certificates(vec![(sensor.identity.author, sensor.cert_der.clone())])
        .unwrap();
    let before = r.a.stats();
    let client = standard_client(sensor);
    let s = timeout(
        HANG,
        net::sync_once(store.clone(), &client, r.server.addr, |_| {}),
    )
    .await
    .expect("sync hung")
    .expect("the handshake of a certified sensor succeeds");
    assert_eq!(s.peer_name, "node-a");

    eventually("A to report the session", || {
        !r.server.sessions().is_empty()
    })
    .await;
    let seen = &r.server.sessions()[0];
    assert_eq!(
        (seen.received, seen.applied, seen.quarantined),
        (1, 0, 1),
        "{seen:?}"
    );
    let after = r.a.stats();
    assert_eq!(after.quarantined, 1);
    assert_eq!(after.heads_digest, before.heads_digest);
    assert_eq!(
        (after.entries, after.events),
        (before.entries, before.events)
    );
    let node = r.a.node.lock().unwrap();
    assert!(node.show(ev(9_999)).is_err(), "the sensor's event appeared");
    let (code, reason): (String, String) = node
        .store()
        .conn()
        .query_row("SELECT reason_code, reason FROM quarantine", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .unwrap();
    assert_eq!(code, "role_not_allowed");
    assert!(reason.contains("sensor"), "{reason}");
}

// ---- Killed mid-sync, with the real binary ---------------------------------

const BIN: &str = env!("CARGO_BIN_EXE_sentinel-node");

/// A child process killed (SIGKILL) when dropped, so a failing test leaves
/// nothing running.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn node_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir").arg(dir).arg("--json");
    cmd
}

/// Starts `serve` on a free loopback port and returns it with its address.
fn start_serve(dir: &Path) -> (Proc, SocketAddr) {
    let mut child = node_cmd(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let proc = Proc(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        // Keep draining, so session reports never block the server.
        for _ in lines {}
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("serve printed no address");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let addr = v["listening"].as_str().unwrap().parse().unwrap();
    (proc, addr)
}

fn start_sync(dir: &Path, peer: SocketAddr) -> Proc {
    Proc(
        node_cmd(dir)
            .args(["sync", &peer.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Waits (bounded) for a process to end; returns its exit status and
/// output.
fn finish(mut p: Proc, limit: Duration) -> (std::process::ExitStatus, String, String) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = p.0.try_wait().unwrap() {
            let mut out = String::new();
            let mut err = String::new();
            use std::io::Read;
            p.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
            p.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            return (status, out, err);
        }
        assert!(
            Instant::now() < deadline,
            "process still running after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Entries committed in the store at `dir`, read without opening the node
/// (a second writer is running).
fn committed(dir: &Path) -> u64 {
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        dir.join(node_mod::DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return 0;
    };
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row("SELECT count(*) FROM entries", [], |r| r.get::<_, i64>(0))
        .unwrap_or(0) as u64
}

/// Node A with [`N_BIG`] entries, made once and copied by each test that
/// needs it, with its heads digest and its CA (which enrolls the B nodes).
struct BigA {
    dir: TempDir,
    digest: String,
    ca: Ca,
}

fn big_a() -> &'static BigA {
    static A: OnceLock<BigA> = OnceLock::new();
    A.get_or_init(|| {
        let started = Instant::now();
        let ca = deployment("Sentinel test CA", 100);
        let Peer { dir, node, .. } = Peer::new(&ca, "node-a", 101);
        let mut node = Arc::into_inner(node).unwrap().into_inner().unwrap();
        let now = now_ms();
        for batch in 0..(N_BIG / 500) as u128 {
            let items: Vec<_> = (0..500u128)
                .map(|i| {
                    let n = batch * 500 + i;
                    let at = (n % 3600) as f64 / 10.0 - 180.0;
                    (ev(n + 1), new_event(&format!("event {n}"), at, 45.0))
                })
                .collect();
            node.report_many(&items, None, now).unwrap();
        }
        let digest = node.stats().unwrap().heads_digest;
        drop(node);
        eprintln!("made A with {N_BIG} entries in {:.2?}", started.elapsed());
        BigA { dir, digest, ca }
    })
}

/// A copy of [`big_a`]'s data directory, and A's heads digest.
fn copy_of_big_a() -> (TempDir, String) {
    let src = big_a();
    let dst = TempDir::new().unwrap();
    for entry in std::fs::read_dir(src.dir.path()).unwrap() {
        let entry = entry.unwrap();
        let to = dst.path().join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            // `copy` keeps the key file's 0600 mode.
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
    (dst, src.digest.clone())
}

/// An enrolled, empty node B under A's CA.
fn empty_b() -> TempDir {
    let Peer { dir, .. } = Peer::new(&big_a().ca, "node-b", 102);
    dir
}

/// Starts `sync` and SIGKILLs it once some entries are committed; retries
/// (with a fresh B) if the kill landed after the last one. Returns B and
/// how many entries it kept.
fn sync_killed_part_way(addr: SocketAddr) -> (TempDir, u64) {
    for attempt in 0..5 {
        let b = empty_b();
        let mut p = start_sync(b.path(), addr);
        let deadline = Instant::now() + HANG;
        // Kill as soon as a first batch is committed: by then the session
        // is well under way, and thousands of entries are still to come.
        while committed(b.path()) == 0 && p.0.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "sync made no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = p.0.kill();
        let status = p.0.wait().unwrap();
        drop(p);
        let kept = Node::open(b.path()).unwrap().stats().unwrap().entries;
        eprintln!("attempt {attempt}: killed ({status}) with {kept} entries committed");
        if kept > 0 && kept < N_BIG {
            return (b, kept);
        }
    }
    panic!("could not kill sync part-way in five attempts");
}

#[test]
fn a_sync_killed_part_way_resumes_without_loss_or_resending() {
    let _t = timed("client_killed_mid_sync");
    let (a, digest) = copy_of_big_a();
    let (_server, addr) = start_serve(a.path());
    let (b, kept) = sync_killed_part_way(addr);

    let (status, out, err) = finish(start_sync(b.path(), addr), 2 * HANG);
    assert!(status.success(), "{status}: {err}");
    let s: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    eprintln!("resumed: {s}");
    // `received` counts entries that arrived in this session, so it being
    // exactly what B lacked shows nothing B had committed came again.
    assert_eq!(s["received"], N_BIG - kept, "{s}");
    assert_eq!(s["applied"], N_BIG - kept, "{s}");
    assert_eq!(s["sent"], 0, "{s}");
    assert_eq!(s["quarantined"], 0, "{s}");
    assert_eq!(s["caught_up"], true, "{s}");

    let node = Node::open(b.path()).unwrap();
    let st = node.stats().unwrap();
    assert_eq!(st.heads_digest, digest);
    assert_eq!((st.entries, st.events, st.quarantined), (N_BIG, N_BIG, 0));
    let audit = node.store().audit().unwrap();
    assert!(audit.problems.is_empty(), "{:?}", audit.problems);
    assert_eq!(audit.entries, N_BIG);
}

#[test]
fn a_sync_whose_server_is_killed_fails_cleanly_and_completes_later() {
    let _t = timed("server_killed_mid_sync");
    let (a, digest) = copy_of_big_a();
    let b = empty_b();
    let (server, addr) = start_serve(a.path());
    let p = start_sync(b.path(), addr);
    let deadline = Instant::now() + HANG;
    while committed(b.path()) == 0 {
        assert!(Instant::now() < deadline, "sync made no progress");
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(server);
    let killed_at = Instant::now();
    // Nothing tells the client its peer is gone: it gives up at the idle
    // timeout (30 s).
    let (status, _, err) = finish(p, 2 * HANG);
    eprintln!(
        "client gave up {:.2?} after the server died: {}",
        killed_at.elapsed(),
        err.trim()
    );
    assert!(!status.success());
    assert!(err.contains("error:"), "{err}");
    let kept = Node::open(b.path()).unwrap().stats().unwrap().entries;
    assert!(kept > 0 && kept <= N_BIG, "{kept}");

    let (_server, addr) = start_serve(a.path());
    let (status, out, err) = finish(start_sync(b.path(), addr), 2 * HANG);
    assert!(status.success(), "{status}: {err}");
    let s: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(s["received"], N_BIG - kept, "{s}");
    let node = Node::open(b.path()).unwrap();
    assert_eq!(node.stats().unwrap().heads_digest, digest);
    assert!(node.store().audit().unwrap().problems.is_empty());
}
