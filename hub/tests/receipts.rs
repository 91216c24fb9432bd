//! Receipts over real QUIC: a node's outbox (its own entries no hub has
//! acknowledged) empties when it syncs with a real hub, and not when it
//! syncs with another node. Entries a hub got through someone else count
//! too: the hub's heads cover them, though it never acknowledges them.

use std::net::SocketAddr;
use std::sync::Arc;

use sentinel_node::net::{self, Net};
use sentinel_schema::author_of;
use tokio::time::timeout;

use crate::e2e::{deployment, eventually, key, sync, Hub, Peer};

fn net_of(p: &Peer) -> Net {
    let n = p.node.lock().unwrap();
    Net::load(n.dir(), &n).unwrap()
}

fn outbox(p: &Peer) -> u64 {
    p.node.lock().unwrap().store().outbox_len().unwrap()
}

/// `sentinel-node serve` on loopback for `p`.
fn serve(p: &Peer) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let n = net_of(p);
    let endpoint = net::listen(&n, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let serving = net::serve(p.node.clone(), Arc::new(n), endpoint, |_| {});
    (addr, tokio::spawn(async move { serving.await.unwrap() }))
}

/// One `sentinel-node sync` with another node.
async fn sync_node(client: &Peer, addr: SocketAddr) -> net::Summary {
    let n = net_of(client);
    timeout(
        std::time::Duration::from_secs(30),
        net::sync_once(client.node.clone(), &n, addr, |_| {}),
    )
    .await
    .expect("sync hung")
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_outbox_empties_at_a_hub_and_not_at_another_node() {
    let ca = deployment("Sentinel hub test CA", 6);
    let hub = Hub::start(&ca, 1000).await;
    let hub_key = hex::encode(author_of(&key(90)).as_bytes());
    let n1 = Peer::new(&ca, "node-1", 61);
    let n2 = Peer::new(&ca, "node-2", 62);
    n1.report(1_000, 3);
    assert_eq!(outbox(&n1), 3);

    // Another node acknowledges n1's entries: saved, moved on, not synced.
    let (n2_addr, n2_task) = serve(&n2);
    let s = sync_node(&n1, n2_addr).await;
    assert_eq!((s.sent, s.peer_name.as_str()), (3, "node-2"), "{s:?}");
    assert_eq!(outbox(&n1), 3);
    assert!(n1
        .node
        .lock()
        .unwrap()
        .store()
        .last_receipt()
        .unwrap()
        .is_none());

    // The hub acknowledges them: receipts, and the outbox is empty.
    let s = sync(&n1, &hub).await;
    assert_eq!((s.sent, s.peer_name.as_str()), (3, "hub-1"), "{s:?}");
    assert_eq!(outbox(&n1), 0);
    {
        let node = n1.node.lock().unwrap();
        let last = node.store().last_receipt().unwrap().unwrap();
        assert_eq!((last.seq, last.hub_name.as_str()), (3, "hub-1"));
        assert_eq!(last.hub, hub_key);
        assert_eq!(last.author, node.author().to_hex());
        let covering = node.store().receipt_for(1).unwrap();
        assert_eq!(covering.len(), 1);
        assert_eq!(covering[0].hub_name, "hub-1");
        assert_eq!(node.stats().unwrap().awaiting_receipt, 0);
    }

    // New entries go to the outbox, and leave it at the next hub sync.
    n1.report(1_003, 2);
    assert_eq!(outbox(&n1), 2);
    let s = sync(&n1, &hub).await;
    assert_eq!(s.sent, 2, "{s:?}");
    assert_eq!(outbox(&n1), 0);
    let last = n1
        .node
        .lock()
        .unwrap()
        .store()
        .last_receipt()
        .unwrap()
        .unwrap();
    assert_eq!(last.seq, 5);

    // Relaying: n2 writes; n1 picks it up and carries it to the hub. n1
    // keeps the hub's receipt for n2's chain, but n2 has not met the hub:
    // its outbox is full.
    n2.report(2_000, 2);
    let s = sync_node(&n1, n2_addr).await;
    assert_eq!(s.received, 2, "{s:?}");
    let s = sync(&n1, &hub).await;
    assert_eq!(s.sent, 2, "{s:?}");
    let n2_author = n2.node.lock().unwrap().author().to_hex();
    let relayed = n1.node.lock().unwrap().store().receipts().unwrap();
    assert!(
        relayed.iter().any(|r| r.author == n2_author && r.seq == 2),
        "{relayed:?}"
    );
    assert_eq!(outbox(&n2), 2);
    // When n2 meets the hub, the hub holds all it has: nothing is sent or
    // acknowledged, but the hub's heads are its receipt.
    eventually("the hub to hold n2's entries", || {
        hub.digest() == n2.digest()
    })
    .await;
    let s = sync(&n2, &hub).await;
    assert_eq!((s.sent, s.received), (0, 0), "{s:?}");
    assert_eq!(outbox(&n2), 0);
    let last = n2
        .node
        .lock()
        .unwrap()
        .store()
        .last_receipt()
        .unwrap()
        .unwrap();
    assert_eq!((last.seq, last.hub_name.as_str()), (2, "hub-1"));
    n2_task.abort();
}
