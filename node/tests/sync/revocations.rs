//! A node honours a hub's revocation offline: after one sync with a hub
//! that signed a `revocation` entry, the node refuses the revoked device's
//! handshake and, relayed by another node, its entries after the last
//! valid seq. The hub here is a real QUIC peer with a hub certificate over
//! an in-memory store (the PostgreSQL hub has its own tests).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use sentinel_certs::{Enrollment, FreshnessPolicy, RevocationHandle};
use sentinel_schema::{Body, DeviceRole, Entry, Hlc, Revocation};
use sentinel_sync::ca_trust::CaTrust;
use sentinel_sync::quic::{Side, Until};
use sentinel_sync::{MemoryStore, Session, SessionConfig, SessionEvent};

use super::*;

/// A hub that serves `store` to whoever connects, until dropped.
struct StubHub {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl StubHub {
    fn start(hub: &Enrollment, store: MemoryStore) -> StubHub {
        let handle = RevocationHandle::empty();
        let server = sentinel_certs::server_config(hub, &handle, FreshnessPolicy::Lenient).unwrap();
        let client = sentinel_certs::client_config(hub, &handle, FreshnessPolicy::Lenient).unwrap();
        let endpoint =
            quic::server_endpoint("127.0.0.1:0".parse().unwrap(), server, client).unwrap();
        let addr = endpoint.local_addr().unwrap();
        let trust = Arc::new(CaTrust::new(hub.ca.clone()));
        let store = Arc::new(Mutex::new(store));
        let task = tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                // Media connections fail their handshake here (no media
                // ALPN); the node carries on without media.
                let Ok(conn) = incoming.await else { continue };
                let session = Session::new(SessionConfig::new(DeviceRole::Hub, trust.clone()));
                let _ = quic::drive(
                    &conn,
                    Side::Acceptor,
                    session,
                    store.clone(),
                    Until::CaughtUp,
                    None,
                    |_| {},
                )
                .await;
            }
        });
        StubHub { addr, task }
    }
}

impl Drop for StubHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_learned_a_hub_revocation_refuses_the_device_offline() {
    let _t = timed("hub_revocation_offline");
    let ca = deployment("Sentinel node revocation test CA", 80);
    let hub = issue(&ca, DeviceRole::Hub, "hub-1", 81);
    let a = Peer::new(&ca, "node-a", 82);
    let lost = Peer::new(&ca, "node-lost", 83);
    let relay = Peer::new(&ca, "node-relay", 84);
    let lost_key = lost.enrollment.identity.author;

    // The relay node met the lost one and holds its 3 entries.
    lost.report(1, 3);
    {
        let lost_server = Server::start(&lost);
        assert_eq!(sync(&relay, lost_server.addr).await.received, 3);
    }

    // The hub revoked the lost device, keeping its first 2 entries valid.
    let revocation = Revocation {
        key: lost_key,
        last_valid_seq: 2,
        reason: "laptop lost".into(),
    };
    let signed = Entry {
        author: hub.identity.author,
        seq: 1,
        prev: None,
        hlc: Hlc::new(now_ms(), 0),
        actor: Some("chief".into()),
        body: Body::Revocation(revocation.clone()),
    }
    .sign(&hub.key)
    .unwrap();
    let mut hub_store = MemoryStore::new();
    hub_store
        .add_certificates(vec![(hub.identity.author, hub.cert_der.clone())])
        .unwrap();
    hub_store.append_local(signed).unwrap();
    let stub = StubHub::start(&hub, hub_store);

    // Node a syncs with the hub once and learns the revocation.
    let net_a = a.net();
    let mut learned = Vec::new();
    let s = timeout(
        HANG,
        net::sync_once(a.node.clone(), &net_a, stub.addr, |e| {
            if let SessionEvent::RevocationEntryApplied { by, revocation } = e {
                learned.push((*by, revocation.clone()));
            }
        }),
    )
    .await
    .expect("sync hung")
    .unwrap();
    assert_eq!((s.received, s.applied), (1, 1), "{s:?}");
    assert_eq!(learned, vec![(hub.identity.author, revocation)]);
    assert_eq!(
        net_a
            .revocations
            .revocation_of(&lost_key)
            .map(|r| r.last_valid_seq),
        Some(2),
        "the running node applies it at once"
    );
    drop(stub);

    // Offline from the hub, node a serves (loading what its log holds):
    // the lost device's handshake is refused...
    let server = Server::start(&a);
    let n = lost.net();
    let refused = timeout(
        HANG,
        net::sync_once(lost.node.clone(), &n, server.addr, |_| {}),
    )
    .await
    .expect("sync hung")
    .unwrap_err()
    .to_string();
    assert!(refused.to_lowercase().contains("revoked"), "{refused}");

    // ...and its entries after seq 2, relayed by another node, are refused.
    let s = sync(&relay, server.addr).await;
    assert!(s.caught_up, "{s:?}");
    eventually("node a to hold the lost device's valid entries", || {
        a.node
            .lock()
            .unwrap()
            .head(&lost_key)
            .unwrap()
            .map(|h| h.seq)
            == Some(2)
    })
    .await;
    let codes: Vec<(i64, String)> = {
        let node = a.node.lock().unwrap();
        let mut stmt = node
            .store()
            .conn()
            .prepare("SELECT seq, reason_code FROM quarantine WHERE author = ?1 ORDER BY seq")
            .unwrap();
        stmt.query_map([lost_key.as_bytes().as_slice()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    assert_eq!(codes, vec![(3, "revoked".to_string())]);
}
