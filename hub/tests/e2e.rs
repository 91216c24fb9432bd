//! The hub's sync server end to end: a real PostgreSQL (the test harness),
//! real QUIC on loopback, real certificates from a test CA and real
//! SpatiaLite nodes from `sentinel-node`. Nodes that never meet converge
//! through the hub; a node that stays connected receives what another node
//! brings, live; a peer from another CA is refused. Every wait is bounded.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use sentinel_certs::{Ca, FreshnessPolicy};
use sentinel_hub::own::OwnChain;
use sentinel_hub::server::{self, HubNet, SessionReport};
use sentinel_hub::testing::TestDatabase;
use sentinel_hub::{PgStore, PgSyncStore};
use sentinel_node::net::{self, Summary};
use sentinel_schema::DeviceRole;
use sentinel_sync::quic::{self, Side, Until};
use sentinel_sync::{Session, SessionConfig, SyncStore};
use tokio::time::timeout;
use tower::ServiceExt;

// The enrolled node, the test CA and the bounded waits every hub test
// uses are the workspace's shared test support.
pub(crate) use sentinel_certs::testing::{issue, key, now_ms};
pub(crate) use sentinel_node::testing::{deployment, ev, eventually, timed, Peer, HANG};

/// The hub's sync server on a fresh database, on 127.0.0.1:0.
pub(crate) struct Hub {
    _db: TestDatabase,
    pub(crate) store: PgStore,
    /// The hub's own chain (for tests that make the hub write).
    pub(crate) own: Arc<OwnChain>,
    addr: SocketAddr,
    sessions: Arc<Mutex<Vec<SessionReport>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Hub {
    pub(crate) async fn start(ca: &Ca, max_sessions: usize) -> Hub {
        Hub::start_with(ca, max_sessions, |net, _| net).await
    }

    /// [`Hub::start`] with the network settings changed by `configure`.
    pub(crate) async fn start_with(
        ca: &Ca,
        max_sessions: usize,
        configure: impl FnOnce(HubNet, Arc<OwnChain>) -> HubNet,
    ) -> Hub {
        let db = TestDatabase::create().await.expect("a test database");
        Hub::start_on(db, ca, max_sessions, configure).await
    }

    /// [`Hub::start_with`] on a database the test made (a restored one):
    /// the same identity, `hub-1`, as every other start.
    pub(crate) async fn start_on(
        db: TestDatabase,
        ca: &Ca,
        max_sessions: usize,
        configure: impl FnOnce(HubNet, Arc<OwnChain>) -> HubNet,
    ) -> Hub {
        let store = db.open_store().await.expect("the store opens");
        let enrollment = issue(ca, DeviceRole::Hub, "hub-1", 90);
        let own = Arc::new(
            OwnChain::new(store.clone(), enrollment.clone(), now_ms())
                .await
                .unwrap(),
        );
        let hub_net = configure(
            HubNet::for_store(enrollment, &store, FreshnessPolicy::Lenient)
                .await
                .unwrap(),
            own.clone(),
        );
        let endpoint = server::listen(&hub_net, "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = endpoint.local_addr().unwrap();
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let seen = sessions.clone();
        let serving = server::serve(
            store.clone(),
            Arc::new(hub_net),
            endpoint,
            max_sessions,
            move |r| seen.lock().unwrap().push(r),
        );
        let task = tokio::spawn(async move { serving.await.unwrap() });
        Hub {
            _db: db,
            store,
            own,
            addr,
            sessions,
            task,
        }
    }

    /// The hub's heads digest through its blocking `SyncStore` face.
    pub(crate) fn digest(&self) -> String {
        let sync = PgSyncStore::new(self.store.clone(), tokio::runtime::Handle::current());
        hex::encode(sync.heads().unwrap().digest())
    }

    pub(crate) fn sessions(&self) -> Vec<SessionReport> {
        self.sessions.lock().unwrap().clone()
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The database the hub serves from.
    pub(crate) fn database(&self) -> &TestDatabase {
        &self._db
    }

    /// Stops the sync server and starts it again on the same database, as
    /// a restarted hub process would: a new own chain writer, and what
    /// [`HubNet::for_store`] loads, wired as `sentinel-hub serve` does.
    pub(crate) async fn restart(&mut self, ca: &Ca) {
        self.task.abort();
        let _ = (&mut self.task).await;
        let enrollment = issue(ca, DeviceRole::Hub, "hub-1", 90);
        let own = Arc::new(
            OwnChain::new(self.store.clone(), enrollment.clone(), now_ms())
                .await
                .unwrap(),
        );
        let hub_net = HubNet::for_store(enrollment, &self.store, FreshnessPolicy::Lenient)
            .await
            .unwrap()
            .with_own_chain(own.clone());
        let endpoint = server::listen(&hub_net, "127.0.0.1:0".parse().unwrap()).unwrap();
        self.addr = endpoint.local_addr().unwrap();
        let seen = self.sessions.clone();
        let serving = server::serve(
            self.store.clone(),
            Arc::new(hub_net),
            endpoint,
            1000,
            move |r| seen.lock().unwrap().push(r),
        );
        self.task = tokio::spawn(async move { serving.await.unwrap() });
        self.own = own;
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One `sentinel-node sync` against the hub, bounded in time.
pub(crate) async fn sync(client: &Peer, hub: &Hub) -> Summary {
    sentinel_node::testing::sync(client, hub.addr).await
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_that_never_meet_converge_through_the_hub() {
    let _t = timed("three_nodes_converge_through_the_hub");
    let ca = deployment("Sentinel hub test CA", 1);
    let hub = Hub::start(&ca, 1000).await;
    let n1 = Peer::new(&ca, "node-1", 11);
    let n2 = Peer::new(&ca, "node-2", 12);
    let n3 = Peer::new(&ca, "node-3", 13);
    // Offline, each reports its own events.
    n1.report(1_000, 5);
    n2.report(2_000, 3);
    n3.report(3_000, 4);

    let s = sync(&n1, &hub).await;
    assert!(s.caught_up, "{s:?}");
    assert_eq!((s.sent, s.received, s.applied), (5, 0, 0), "{s:?}");
    assert_eq!(s.peer_name, "hub-1");
    let s = sync(&n2, &hub).await;
    assert_eq!((s.sent, s.received, s.applied), (3, 5, 5), "{s:?}");
    let s = sync(&n3, &hub).await;
    assert_eq!((s.sent, s.received, s.applied), (4, 8, 8), "{s:?}");
    // Back to the first two: they get what the others brought.
    let s = sync(&n1, &hub).await;
    assert_eq!((s.sent, s.received, s.applied), (0, 7, 7), "{s:?}");
    let s = sync(&n2, &hub).await;
    assert_eq!((s.sent, s.received, s.applied), (0, 4, 4), "{s:?}");
    assert_eq!((s.quarantined, s.forks), (0, 0), "{s:?}");

    eventually("the hub to hold every entry", || {
        hub.digest() == n3.digest()
    })
    .await;
    let d = hub.digest();
    assert_eq!(n1.digest(), d);
    assert_eq!(n2.digest(), d);
    assert_eq!(n3.digest(), d);
    for n in [&n1, &n2, &n3] {
        let st = n.stats();
        assert_eq!((st.entries, st.events, st.authors), (12, 12, 3));
    }
    let ids: Vec<u128> = (1_000..1_005)
        .chain(2_000..2_003)
        .chain(3_000..3_004)
        .collect();
    for id in ids {
        let shown = n1.shown(ev(id));
        assert_eq!(shown, n2.shown(ev(id)), "event {id}");
        assert_eq!(shown, n3.shown(ev(id)), "event {id}");
    }
    let g = n1.geojson();
    assert_eq!(g, n2.geojson());
    assert_eq!(g, n3.geojson());

    // The hub's views: its PostGIS answers match the nodes' R-tree.
    hub.store
        .project_pending()
        .await
        .expect("the hub projects its log");
    let positions = n1.node.lock().unwrap().store().event_positions().unwrap();
    assert_eq!(positions.len(), 12);
    let mut boxes = vec![(-180.0, -90.0, 180.0, 90.0), (0.0, 0.0, 0.001, 0.001)];
    for (_, p) in &positions {
        boxes.push((
            p.lon() - 0.02,
            p.lat() - 0.02,
            p.lon() + 0.01,
            p.lat() + 0.03,
        ));
    }
    for (x0, y0, x1, y1) in boxes {
        let b =
            sentinel_schema::BBox::new(x0.max(-180.0), y0.max(-90.0), x1.min(180.0), y1.min(90.0))
                .unwrap();
        let mut tree = n1.node.lock().unwrap().spatial().unwrap().bbox(&b);
        let mut pg = hub
            .store
            .ids_in_bbox(b.min_lon(), b.min_lat(), b.max_lon(), b.max_lat())
            .await
            .unwrap();
        tree.sort();
        pg.sort();
        assert_eq!(pg, tree, "box {x0},{y0},{x1},{y1}");
    }

    eventually("the hub to log all five sessions", || {
        hub.sessions().len() >= 5
    })
    .await;
    let first = &hub.sessions()[0];
    assert_eq!(first.peer_name, "node-1");
    assert_eq!((first.received, first.applied), (5, 5), "{first:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connected_node_receives_what_another_node_brings_live() {
    let _t = timed("live_relay_through_the_hub");
    let ca = deployment("Sentinel hub test CA", 2);
    let hub = Hub::start(&ca, 1000).await;
    let n1 = Peer::new(&ca, "node-1", 21);
    let n2 = Peer::new(&ca, "node-2", 22);
    n1.report(1_000, 2);

    // Node 1 connects and stays connected (a live session, no reconnect).
    let net1 = n1.net();
    let endpoint =
        quic::client_endpoint("127.0.0.1:0".parse().unwrap(), net1.client.clone()).unwrap();
    let conn = timeout(HANG, quic::connect(&endpoint, hub.addr))
        .await
        .expect("connect hung")
        .unwrap();
    let session = Session::new(SessionConfig::new(DeviceRole::Node, net1.trust.clone()));
    let live = {
        let conn = conn.clone();
        let node = n1.node.clone();
        tokio::spawn(async move {
            quic::drive(
                &conn,
                Side::Initiator,
                session,
                node,
                Until::Closed,
                None,
                |_| {},
            )
            .await
        })
    };
    eventually("node 1's entries to reach the hub", || {
        hub.digest() == n1.digest()
    })
    .await;

    // Node 2 brings new entries while node 1 is still connected.
    n2.report(2_000, 3);
    let s = sync(&n2, &hub).await;
    assert_eq!((s.sent, s.received, s.applied), (3, 2, 2), "{s:?}");
    eventually("node 1 to receive node 2's entries live", || {
        n1.digest() == n2.digest()
    })
    .await;
    assert_eq!(hub.digest(), n1.digest());
    assert_eq!(n1.stats().entries, 5);
    assert_eq!(n1.geojson(), n2.geojson());

    // Node 1 got them over the connection it already had: the hub logs
    // each session as it ends, node 2's is there (so the log is kept and
    // read), and none of node 1's.
    assert!(!live.is_finished(), "node 1's session is still live");
    eventually("the hub to log node 2's session", || {
        hub.sessions().iter().any(|r| r.peer_name == "node-2")
    })
    .await;
    assert!(
        hub.sessions().iter().all(|r| r.peer_name != "node-1"),
        "node 1 never reconnected: {:?}",
        hub.sessions()
    );
    conn.close(quinn::VarInt::from_u32(0), b"done");
    let _ = timeout(HANG, live).await.expect("live session hung");
    eventually("the hub to log node 1's session", || {
        hub.sessions().iter().any(|r| r.peer_name == "node-1")
    })
    .await;
    let r = hub
        .sessions()
        .into_iter()
        .find(|r| r.peer_name == "node-1")
        .unwrap();
    assert_eq!((r.received, r.applied, r.sent), (2, 2, 3), "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_from_another_ca_is_refused_by_the_hub() {
    let _t = timed("other_ca_refused");
    let ca = deployment("Sentinel hub test CA", 3);
    let other = deployment("Someone else's CA", 4);
    let hub = Hub::start(&ca, 1000).await;
    let before = hub.digest();
    let stranger = Peer::new(&other, "node-x", 31);
    stranger.report(9_000, 2);
    let net = stranger.net();
    let refused = timeout(
        HANG,
        net::sync_once(stranger.node.clone(), &net, hub.addr, |_| {}),
    )
    .await
    .expect("sync hung");
    assert!(refused.is_err(), "{refused:?}");
    eventually("the hub to log the refusal", || !hub.sessions().is_empty()).await;
    let r = &hub.sessions()[0];
    assert!(r.closed.contains("handshake refused"), "{r:?}");
    assert_eq!((r.received, r.applied), (0, 0));
    assert_eq!(hub.digest(), before, "nothing was stored");
    assert_eq!(stranger.stats().entries, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_beyond_the_limit_are_refused() {
    let _t = timed("session_limit");
    let ca = deployment("Sentinel hub test CA", 5);
    let hub = Hub::start(&ca, 1).await;
    let n1 = Peer::new(&ca, "node-1", 51);
    let n2 = Peer::new(&ca, "node-2", 52);
    let net1 = n1.net();
    let endpoint =
        quic::client_endpoint("127.0.0.1:0".parse().unwrap(), net1.client.clone()).unwrap();
    let conn = timeout(HANG, quic::connect(&endpoint, hub.addr))
        .await
        .expect("connect hung")
        .unwrap();
    // The one slot is taken by node 1's open connection.
    let net2 = n2.net();
    let refused = timeout(
        HANG,
        net::sync_once(n2.node.clone(), &net2, hub.addr, |_| {}),
    )
    .await
    .expect("sync hung");
    assert!(refused.is_err(), "{refused:?}");
    // Once node 1 leaves, node 2 gets in.
    conn.close(quinn::VarInt::from_u32(0), b"done");
    eventually("node 1's slot to be released", || {
        !hub.sessions().is_empty()
    })
    .await;
    let s = sync(&n2, &hub).await;
    assert!(s.caught_up, "{s:?}");
}

/// One call to a hub's API router, in process: its status and JSON.
pub(crate) async fn call(
    state: &sentinel_hub::api::ApiState,
    method: &str,
    uri: &str,
    body: Option<serde_json::Value>,
) -> (axum::http::StatusCode, serde_json::Value) {
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    let body = match body {
        Some(v) => {
            req = req.header(axum::http::header::CONTENT_TYPE, "application/json");
            axum::body::Body::from(v.to_string())
        }
        None => axum::body::Body::empty(),
    };
    let response = sentinel_hub::api::router(state.clone())
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}
