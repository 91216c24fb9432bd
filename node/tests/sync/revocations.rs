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

/// What a compromised hub `x` wrote, and an honest node's event it
/// edited: `x`'s seq 1 (a grant to alice) before its last valid seq, the
/// rest after it (a grant to mallory, an event of its own, an edit of the
/// node's event, alice's role withdrawn).
struct Compromise {
    x: Enrollment,
    /// The node's event and the compromised hub's own.
    e0: sentinel_schema::EventId,
    e1: sentinel_schema::EventId,
    store: MemoryStore,
}

impl Compromise {
    fn new(ca: &sentinel_certs::Ca) -> Compromise {
        use sentinel_schema::{EventChange, EventDoc, EventEdit, PersonRole, RoleGrant};
        let x = issue(ca, DeviceRole::Hub, "hub-x", 87);
        let node = issue(ca, DeviceRole::Node, "node-n", 88);
        let (xa, na) = (x.identity.author, node.identity.author);
        let (e0, e1) = (ev(700), ev(701));
        let t = now_ms();
        let (_, c0) =
            EventDoc::create(&na, &new_event("Flooded underpass", 13.4, 52.5), t).unwrap();
        let (_, c1) = EventDoc::create(&xa, &new_event("Fake alarm", 13.5, 52.6), t).unwrap();
        let mut doc = EventDoc::from_changes(&[&c0]).unwrap();
        let c2 = doc
            .edit(&xa, &EventEdit::Title("Nothing to see".into()), t)
            .unwrap();
        let grant = |person: &str, role| {
            Body::RoleGrant(RoleGrant {
                person: person.into(),
                role,
            })
        };
        let change = |event, change| Body::EventChange(EventChange { event, change });
        let mut store = MemoryStore::new();
        store
            .add_certificates(vec![(xa, x.cert_der.clone()), (na, node.cert_der.clone())])
            .unwrap();
        let mut prev: Option<sentinel_schema::SignedEntry> = None;
        let node_entry = Entry {
            author: na,
            seq: 1,
            prev: None,
            hlc: Hlc::new(t, 0),
            actor: Some("ada".into()),
            body: change(e0, c0),
        }
        .sign(&node.key)
        .unwrap();
        store.append_local(node_entry).unwrap();
        for (i, body) in [
            grant("alice", PersonRole::Officer),
            grant("mallory", PersonRole::Admin),
            change(e1, c1),
            change(e0, c2),
            grant("alice", PersonRole::None),
        ]
        .into_iter()
        .enumerate()
        {
            let e = Entry {
                author: xa,
                seq: i as u64 + 1,
                prev: prev.as_ref().map(|p| p.id()),
                hlc: Hlc::new(t + 1 + i as u64, 0),
                actor: Some("intruder".into()),
                body,
            }
            .sign(&x.key)
            .unwrap();
            store.append_local(e.clone()).unwrap();
            prev = Some(e);
        }
        Compromise { x, e0, e1, store }
    }
}

/// A store holding one way of learning that `x` is revoked from seq 2 on:
/// the revocation entry of an honest hub, or the CA's list.
fn revocation_of(
    ca: &sentinel_certs::Ca,
    hub: &Enrollment,
    x: &Enrollment,
    by_list: bool,
) -> MemoryStore {
    let mut store = MemoryStore::new();
    let revoked = Revocation {
        key: x.identity.author,
        last_valid_seq: 1,
        reason: "hub compromised".into(),
    };
    if by_list {
        let list = RevocationList {
            number: 1,
            issued_ms: now_ms(),
            revoked: vec![Revoked {
                key: revoked.key,
                last_valid_seq: revoked.last_valid_seq,
                reason: revoked.reason.clone(),
            }],
        }
        .sign(ca)
        .unwrap();
        store.set_revocation_list(list).unwrap();
    }
    // With the list, an entry too: a session between equal heads ends
    // before the list reaches the side that opened it.
    let body = if by_list {
        Body::RoleGrant(sentinel_schema::RoleGrant {
            person: "bob".into(),
            role: sentinel_schema::PersonRole::Public,
        })
    } else {
        Body::Revocation(revoked)
    };
    store
        .add_certificates(vec![(hub.identity.author, hub.cert_der.clone())])
        .unwrap();
    let e = Entry {
        author: hub.identity.author,
        seq: 1,
        prev: None,
        hlc: Hlc::new(now_ms(), 0),
        actor: Some("chief".into()),
        body,
    }
    .sign(&hub.key)
    .unwrap();
    store.append_local(e).unwrap();
    store
}

/// What a node concludes: everyone's role, every event's view and
/// history, the export of the views.
fn verdict(peer: &Peer, ca: &CaCert, events: &[sentinel_schema::EventId]) -> String {
    let roles = {
        let node = peer.node.lock().unwrap();
        sentinel_node::roles::roles(node.store(), Some(ca)).unwrap()
    };
    let shown: Vec<String> = events
        .iter()
        .map(|e| {
            let known = peer.node.lock().unwrap().show(*e).is_ok();
            if known {
                peer.shown(*e)
            } else {
                "not shown".into()
            }
        })
        .collect();
    format!("{roles:?}\n{shown:#?}\n{}", peer.geojson())
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_first_or_entries_first_give_the_same_roles_and_views() {
    use sentinel_schema::PersonRole;
    let _t = timed("revocation_arrival_orders");
    let ca = deployment("Sentinel arrival order test CA", 85);
    let honest = issue(&ca, DeviceRole::Hub, "hub-h", 86);
    let c = Compromise::new(&ca);
    let events = [c.e0, c.e1];
    let x = c.x.identity.author;
    let mut seed = 90;
    for by_list in [false, true] {
        // One node learns the revocation first, then meets the entries;
        // the other the other way round. (Each meets stubs of its own:
        // a stub keeps what a node brings it.)
        let first = Peer::new(&ca, "node-first", seed);
        let later = Peer::new(&ca, "node-later", seed + 1);
        seed += 2;
        let revocation = || StubHub::start(&honest, revocation_of(&ca, &honest, &c.x, by_list));
        let entries = || StubHub::start(&honest, c.store.clone());
        sync(&first, revocation().addr).await;
        sync(&first, entries().addr).await;
        sync(&later, entries().addr).await;
        // Before the revocation, the compromised hub's writes count.
        let before = verdict(&later, ca.cert(), &events);
        assert!(before.contains("\"mallory\": Admin"), "{before}");
        sync(&later, revocation().addr).await;

        let (a, b) = (
            verdict(&first, ca.cert(), &events),
            verdict(&later, ca.cert(), &events),
        );
        assert_eq!(a, b, "by list: {by_list}");
        let roles = {
            let node = later.node.lock().unwrap();
            sentinel_node::roles::roles(node.store(), Some(ca.cert())).unwrap()
        };
        let mut expected = vec![("alice".to_string(), PersonRole::Officer)];
        if by_list {
            expected.push(("bob".to_string(), PersonRole::Public));
        }
        assert_eq!(roles.into_iter().collect::<Vec<_>>(), expected);
        assert!(
            a.contains("Flooded underpass") && !a.contains("Nothing to see"),
            "{a}"
        );
        assert!(!a.contains("Fake alarm"), "{a}");
        let node = later.node.lock().unwrap();
        assert!(matches!(
            node.show(c.e1),
            Err(node_mod::NodeError::NoSuchEvent(_))
        ));
        // The later node keeps the revoked entries as evidence, listed.
        let kept: Vec<u64> = node
            .store()
            .revoked_entries()
            .unwrap()
            .into_iter()
            .map(|(author, seq, _)| {
                assert_eq!(author, x);
                seq
            })
            .collect();
        assert_eq!(kept, vec![2, 3, 4, 5]);
        assert_eq!(node.store().head(&x).unwrap().map(|h| h.seq), Some(5));
        assert_eq!(node.store().revoked_authors().unwrap().get(&x), Some(&1));
    }
}
