//! Acknowledgements from another node are not receipts: a node relays, it
//! does not archive. Syncing node to node, both ways, leaves both outboxes
//! as they were (only a hub's acknowledgement empties one; see
//! `hub/tests/receipts.rs`).

use super::*;

fn outbox(p: &Peer) -> u64 {
    p.node.lock().unwrap().store().outbox_len().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn syncing_with_another_node_leaves_the_outbox_as_it_was() {
    let _t = timed("node_acks_are_not_receipts");
    let ca = deployment("Sentinel test CA", 7);
    let a = Peer::new(&ca, "node-a", 70);
    let b = Peer::new(&ca, "node-b", 71);
    a.report(1_000, 3);
    b.report(2_000, 2);
    assert_eq!((outbox(&a), outbox(&b)), (3, 2));

    let server = Server::start(&a);
    let s = sync(&b, server.addr).await;
    assert!(s.caught_up, "{s:?}");
    // B's two entries were acknowledged by A, a node: still in B's outbox.
    assert_eq!((s.sent, s.received), (2, 3), "{s:?}");
    eventually("A to hold B's entries", || {
        a.stats().heads_digest == b.stats().heads_digest
    })
    .await;
    // Once more, in sync at Hello: A's heads cover B's entries, still no
    // receipt.
    let s = sync(&b, server.addr).await;
    assert_eq!((s.sent, s.received), (0, 0), "{s:?}");
    eventually("A to report both sessions", || server.sessions().len() >= 2).await;
    assert_eq!((outbox(&a), outbox(&b)), (3, 2));
    assert_eq!(
        (a.stats().awaiting_receipt, b.stats().awaiting_receipt),
        (3, 2)
    );
    for p in [&a, &b] {
        let n = p.node.lock().unwrap();
        assert!(n.store().receipts().unwrap().is_empty());
        assert!(n.store().last_receipt().unwrap().is_none());
    }
}
