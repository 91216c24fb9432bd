//! Who the hub's sync port lets in, and how far: a peer's role is its
//! certificate's (a sensor that claims to be a node gets nothing), one
//! certificate cannot take more than its share of sessions, and
//! handshakes that never finish hold no session slot. Real PostgreSQL,
//! real QUIC on loopback, real certificates; every wait bounded.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use sentinel_certs::{Enrollment, FreshnessPolicy, RevocationHandle};
use sentinel_node::net;
use sentinel_schema::DeviceRole;
use sentinel_sync::ca_trust::CaTrust;
use sentinel_sync::quic::{self, Outcome, Side, Until};
use sentinel_sync::testing::flood;
use sentinel_sync::{MemoryStore, Session, SessionConfig};
use tokio::time::timeout;

use crate::e2e::{deployment, issue, sync, timed, Hub, Peer, HANG};

/// A session from a device enrolled as `e` whose Hello claims `claim`,
/// to `addr`: how it ended, and what the device's store received.
async fn session_claiming(
    e: &Enrollment,
    claim: DeviceRole,
    addr: SocketAddr,
) -> (Outcome, MemoryStore) {
    let client =
        sentinel_certs::client_config(e, &RevocationHandle::empty(), FreshnessPolicy::Lenient)
            .unwrap();
    let endpoint = quic::client_endpoint("127.0.0.1:0".parse().unwrap(), client).unwrap();
    let conn = timeout(HANG, quic::connect(&endpoint, addr))
        .await
        .expect("connect hung")
        .unwrap();
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
async fn a_sensor_whose_hello_claims_node_is_closed_by_the_hub_and_gets_nothing() {
    let _t = timed("hub_sensor_claims_node");
    let ca = deployment("Sentinel hub test CA", 70);
    let hub = Hub::start(&ca, 100).await;
    let n1 = Peer::new(&ca, "node-1", 71);
    n1.report(1_000, 3);
    assert_eq!(sync(&n1, &hub).await.sent, 3);
    let stolen = issue(&ca, DeviceRole::Sensor, "gauge-stolen", 72);

    let (outcome, got) = session_claiming(&stolen, DeviceRole::Node, hub.addr()).await;
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

    // Honest about its role, the same certificate is sent nothing either.
    let (outcome, got) = session_claiming(&stolen, DeviceRole::Sensor, hub.addr()).await;
    assert!(outcome.caught_up, "{outcome:?}");
    assert_eq!(got.n_entries(), 0);
}

/// Opens a connection as `e` and keeps it (no session): one slot held.
async fn hold(e: &Enrollment, addr: SocketAddr) -> (quinn::Endpoint, quinn::Connection) {
    let client =
        sentinel_certs::client_config(e, &RevocationHandle::empty(), FreshnessPolicy::Lenient)
            .unwrap();
    let endpoint = quic::client_endpoint("127.0.0.1:0".parse().unwrap(), client).unwrap();
    let conn = timeout(HANG, quic::connect(&endpoint, addr))
        .await
        .expect("connect hung")
        .unwrap();
    (endpoint, conn)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_certificate_cannot_take_more_than_its_share_of_the_hub() {
    let _t = timed("hub_per_peer_cap");
    let ca = deployment("Sentinel hub test CA", 73);
    let hub = Hub::start(&ca, 100).await;
    let n1 = Peer::new(&ca, "node-1", 74);
    let per_peer = 4;
    let mut held = Vec::new();
    for _ in 0..per_peer {
        held.push(hold(&n1.enrollment, hub.addr()).await);
    }
    let net1 = n1.net();
    let refused = timeout(
        HANG,
        net::sync_once(n1.node.clone(), &net1, hub.addr(), |_| {}),
    )
    .await
    .expect("sync hung");
    let err = match refused {
        Err(e) => e.to_string(),
        Ok(s) => panic!("node 1 got a fifth session: {s:?}"),
    };
    assert!(err.contains("sessions of this peer"), "{err}");
    // Another node still gets in.
    let n2 = Peer::new(&ca, "node-2", 75);
    n2.report(2_000, 1);
    assert!(sync(&n2, &hub).await.caught_up);
    drop(held);
}

/// A TLS client of another deployment: all a flood needs (the server never
/// gets as far as its certificate).
fn stranger() -> Arc<rustls::ClientConfig> {
    let theirs = deployment("Someone else's CA", 76);
    let e = issue(&theirs, DeviceRole::Node, "flooder", 77);
    sentinel_certs::client_config(&e, &RevocationHandle::empty(), FreshnessPolicy::Lenient).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn handshakes_that_never_finish_do_not_keep_an_enrolled_node_out_of_the_hub() {
    let _t = timed("hub_handshake_flood");
    let ca = deployment("Sentinel hub test CA", 78);
    // Few slots, so that a handful of stalled handshakes would fill them.
    let hub = Hub::start(&ca, 4).await;
    let n1 = Peer::new(&ca, "node-1", 79);
    n1.report(1_000, 2);
    let client = stranger();

    // Spoofed-looking Initials, each from its own port and never followed
    // up, and handshakes from a real address that stall after its flight.
    let initials = flood::captured_initials(client.clone(), 32).await;
    let raw = flood::initial_flood(hub.addr(), &initials, "127.0.0.2".parse().unwrap()).await;
    assert_eq!(raw.answered, 32, "the hub answered every Initial");
    let stalled =
        flood::stalled_handshakes(hub.addr(), client, 8, "127.0.0.3".parse().unwrap()).await;
    assert_eq!(stalled.stalled, 8, "every handshake reached its stall");

    // While all of that is held open: an enrolled node syncs.
    let s = sync(&n1, &hub).await;
    assert!(s.caught_up, "{s:?}");
    assert_eq!(s.sent, 2, "{s:?}");
    drop((raw, stalled));
}
