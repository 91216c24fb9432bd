//! Who `serve` lets in, and how far: a peer's role is its certificate's
//! (a sensor that claims to be a node gets nothing), one certificate
//! cannot take more than its share of sessions, and handshakes that never
//! finish do not keep enrolled peers out.

use std::net::IpAddr;

use sentinel_sync::admission::Limits;
use sentinel_sync::ca_trust::CaTrust;
use sentinel_sync::quic::{DriverError, Outcome, Side, Until};
use sentinel_sync::testing::flood;
use sentinel_sync::{MemoryStore, Session, SessionConfig};

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A connection as `e` from the address `from` to `addr` (no session).
async fn connect_from(
    e: &Enrollment,
    from: IpAddr,
    addr: SocketAddr,
) -> (quinn::Endpoint, Result<quinn::Connection, DriverError>) {
    let client =
        sentinel_certs::client_config(e, &RevocationHandle::empty(), FreshnessPolicy::Lenient)
            .unwrap();
    let endpoint = quic::client_endpoint(SocketAddr::new(from, 0), client).unwrap();
    let conn = timeout(HANG, quic::connect(&endpoint, addr))
        .await
        .expect("connect hung");
    (endpoint, conn)
}

/// A session from a device enrolled as `e` whose Hello claims `claim`,
/// to `addr`: how it ended, and what the device's store received.
async fn session_claiming(
    e: &Enrollment,
    claim: DeviceRole,
    addr: SocketAddr,
) -> (Outcome, MemoryStore) {
    session_from(e, claim, ip("127.0.0.1"), addr).await
}

/// [`session_claiming`] from the address `from`.
async fn session_from(
    e: &Enrollment,
    claim: DeviceRole,
    from: IpAddr,
    addr: SocketAddr,
) -> (Outcome, MemoryStore) {
    let (endpoint, conn) = connect_from(e, from, addr).await;
    let conn = conn.unwrap();
    let store = Arc::new(Mutex::new(MemoryStore::new()));
    let session = Session::new(SessionConfig::new(
        claim,
        Arc::new(CaTrust::new(e.ca.clone())),
    ));
    let outcome = timeout(
        HANG,
        quic::drive(
            &conn,
            Side::Initiator,
            session,
            store.clone(),
            Until::CaughtUp,
            None,
            |_| {},
        ),
    )
    .await
    .expect("the session hung")
    .unwrap();
    endpoint.wait_idle().await;
    let store = std::mem::take(&mut *store.lock().unwrap());
    (outcome, store)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sensor_whose_hello_claims_node_is_closed_by_serve_and_gets_nothing() {
    let _t = timed("sensor_claims_node");
    let ca = deployment("Sentinel test CA", 140);
    let a = Peer::new(&ca, "node-a", 141);
    a.report(1_000, 3);
    let server = Server::start(&a);
    let stolen = issue(&ca, DeviceRole::Sensor, "gauge-stolen", 142);

    let (outcome, got) = session_claiming(&stolen, DeviceRole::Node, server.addr).await;
    eprintln!("{outcome:?}");
    assert_eq!(
        outcome.code.to_wire(),
        12,
        "closed with role_mismatch: {outcome:?}"
    );
    assert!(outcome.remote, "{outcome:?}");
    assert_eq!(
        (outcome.stats.entries_received, got.n_entries()),
        (0, 0),
        "the sensor received entries: {outcome:?}"
    );

    // The same certificate, honest about its role, is a sensor's session:
    // it may push, and is sent nothing.
    let (outcome, got) = session_claiming(&stolen, DeviceRole::Sensor, server.addr).await;
    assert!(outcome.caught_up, "{outcome:?}");
    assert_eq!(got.n_entries(), 0);
    // And a node is sent everything.
    let b = Peer::new(&ca, "node-b", 143);
    let s = sync(&b, server.addr).await;
    assert_eq!(s.received, 3, "{s:?}");
}

/// Opens a connection as `e` and keeps it (no session): one slot held.
async fn hold(e: &Enrollment, addr: SocketAddr) -> (quinn::Endpoint, quinn::Connection) {
    let (endpoint, conn) = connect_from(e, ip("127.0.0.1"), addr).await;
    (endpoint, conn.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_certificate_cannot_take_more_than_its_share_of_serve() {
    let _t = timed("serve_per_peer_cap");
    let ca = deployment("Sentinel test CA", 150);
    let a = Peer::new(&ca, "node-a", 151);
    a.report(1_000, 2);
    let server = Server::start(&a);
    let b = Peer::new(&ca, "node-b", 152);
    let per_peer = Limits::NODE.max_per_peer;

    let mut held = Vec::new();
    for _ in 0..per_peer {
        held.push(hold(&b.enrollment, server.addr).await);
    }
    // One more of B's: refused once its certificate is known.
    let net = b.net();
    let refused = timeout(
        HANG,
        net::sync_once(b.node.clone(), &net, server.addr, |_| {}),
    )
    .await
    .expect("sync hung");
    let err = match refused {
        Err(e) => e.to_string(),
        Ok(s) => panic!("B got a fifth session: {s:?}"),
    };
    assert!(err.contains("sessions of this peer"), "{err}");
    assert_eq!(b.stats().entries, 0, "B received nothing");

    // Another peer still gets in.
    let c = Peer::new(&ca, "node-c", 153);
    assert_eq!(sync(&c, server.addr).await.received, 2);

    // Once B lets one go, B gets in again.
    let (endpoint, conn) = held.pop().unwrap();
    conn.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    let s = sync_once_admitted(&b, server.addr).await;
    assert_eq!(s.received, 2, "{s:?}");
}

/// One `sync` from `client` that may be refused a few times first: the
/// server frees a slot when it has seen a connection close, shortly after
/// the peer closed it. Gives up after 15 s.
async fn sync_once_admitted(client: &Peer, addr: SocketAddr) -> net::Summary {
    let net = client.net();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = timeout(
            HANG,
            net::sync_once(client.node.clone(), &net, addr, |_| {}),
        )
        .await
        .expect("sync hung");
        match got {
            Ok(s) if s.caught_up => return s,
            other => {
                assert!(Instant::now() < deadline, "never admitted: {other:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// A TLS client of another deployment: all a flood needs (the server never
/// gets as far as its certificate).
fn stranger() -> Arc<ClientConfig> {
    let theirs = deployment("Someone else's CA", 160);
    let e = issue(&theirs, DeviceRole::Node, "flooder", 161);
    sentinel_certs::client_config(&e, &RevocationHandle::empty(), FreshnessPolicy::Lenient).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn handshakes_that_never_finish_do_not_keep_an_enrolled_node_out_of_serve() {
    let _t = timed("serve_handshake_flood");
    let ca = deployment("Sentinel test CA", 162);
    let a = Peer::new(&ca, "node-a", 163);
    a.report(1_000, 2);
    // Two slots: two stalled handshakes would fill them if they counted.
    let server = Server::start_with(
        &a,
        Limits {
            max_sessions: 2,
            max_per_address: 4,
            ..Limits::NODE
        },
    );
    let client = stranger();
    let initials = flood::captured_initials(client.clone(), 32).await;
    let raw = flood::initial_flood(server.addr, &initials, ip("127.0.0.2")).await;
    assert_eq!(raw.answered, 32, "serve answered every Initial");
    let stalled = flood::stalled_handshakes(server.addr, client, 8, ip("127.0.0.3")).await;
    assert_eq!(stalled.stalled, 8, "every attempt got an answer");

    // While the flood holds: enrolled nodes sync, one after the other and
    // two at once.
    let b = Peer::new(&ca, "node-b", 164);
    let c = Peer::new(&ca, "node-c", 165);
    assert_eq!(sync(&b, server.addr).await.received, 2);
    let (sb, sc) = tokio::join!(sync(&b, server.addr), sync(&c, server.addr));
    assert!(sb.caught_up && sc.caught_up, "{sb:?} {sc:?}");
    assert_eq!(c.digest(), a.digest());
    drop((raw, stalled));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_holds_no_more_than_its_share_of_serve() {
    let _t = timed("serve_per_address_cap");
    let ca = deployment("Sentinel test CA", 170);
    let a = Peer::new(&ca, "node-a", 171);
    a.report(1_000, 2);
    let server = Server::start_with(
        &a,
        Limits {
            max_per_address: 2,
            ..Limits::NODE
        },
    );
    let b = Peer::new(&ca, "node-b", 172);
    let c = Peer::new(&ca, "node-c", 173);
    let mut held = vec![
        hold(&b.enrollment, server.addr).await,
        hold(&c.enrollment, server.addr).await,
    ];
    // A third connection from 127.0.0.1 is refused before its handshake.
    let (_endpoint, third) = connect_from(&c.enrollment, ip("127.0.0.1"), server.addr).await;
    let err = third
        .expect_err("a third connection from one address")
        .to_string();
    assert!(err.contains("refused"), "{err}");
    // The same certificate from another address gets in.
    let (outcome, got) = session_from(
        &c.enrollment,
        DeviceRole::Node,
        ip("127.0.0.2"),
        server.addr,
    )
    .await;
    assert!(outcome.caught_up, "{outcome:?}");
    assert_eq!(got.n_entries(), 2);
    // And 127.0.0.1 gets its share back when a connection ends.
    let (endpoint, conn) = held.pop().unwrap();
    conn.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    let d = Peer::new(&ca, "node-d", 174);
    assert_eq!(sync_once_admitted(&d, server.addr).await.received, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handshake_that_never_finishes_is_dropped_after_the_deadline() {
    let _t = timed("serve_handshake_deadline");
    let ca = deployment("Sentinel test CA", 180);
    let a = Peer::new(&ca, "node-a", 181);
    a.report(1_000, 1);
    let server = Server::start_with(
        &a,
        Limits {
            max_per_address: 1,
            // Long enough for the check below to run inside it, on a
            // busy machine too.
            handshake_timeout: Duration::from_secs(3),
            ..Limits::NODE
        },
    );
    let b = Peer::new(&ca, "node-b", 182);
    let from = ip("127.0.0.4");
    let stalled = flood::stalled_handshakes(server.addr, stranger(), 1, from).await;
    assert_eq!(stalled.stalled, 1);
    // The stalled handshake holds its address's one connection …
    let (_endpoint, refused) = connect_from(&b.enrollment, from, server.addr).await;
    let err = refused.expect_err("the address is at its cap").to_string();
    assert!(err.contains("refused"), "{err}");
    // … until the server gives up on it, though its client never went.
    let deadline = Instant::now() + Duration::from_secs(15);
    let conn = loop {
        match connect_from(&b.enrollment, from, server.addr).await {
            (endpoint, Ok(conn)) => break (endpoint, conn),
            (_, Err(e)) => {
                assert!(Instant::now() < deadline, "never dropped: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    drop((conn, stalled));
}

#[test]
fn serve_refuses_limits_that_would_admit_no_one() {
    let dir = TempDir::new().unwrap();
    for (flag, value) in [
        ("--max-sessions", "0"),
        ("--max-sessions-per-peer", "0"),
        ("--max-connections-per-address", "many"),
    ] {
        // It must refuse to start; one that serves fails after the bound.
        let out = sentinel_http::testing::output_within(
            Command::new(env!("CARGO_BIN_EXE_sentinel-node"))
                .arg("--data-dir")
                .arg(dir.path())
                .args(["serve", "--listen", "127.0.0.1:0", flag, value])
                .env_remove("SENTINEL_MAX_SESSIONS")
                .env_remove("SENTINEL_MAX_SESSIONS_PER_PEER")
                .env_remove("SENTINEL_MAX_CONNECTIONS_PER_ADDRESS"),
            Duration::from_secs(120),
            &format!("serve {flag} {value}"),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} {value} was accepted");
        assert!(err.contains(flag), "{flag} {value}: {err}");
    }
}
