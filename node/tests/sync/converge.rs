//! Two nodes converge; entries reach a node that never met their author.

use super::*;

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
    let s = sync(&b, server.addr).await;
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
    let s = sync(&b, server.addr).await;
    assert_eq!((s.sent, s.received, s.applied), (0, 2, 2), "{s:?}");
    assert_eq!(a.stats().heads_digest, b.stats().heads_digest);
    assert_eq!(b.stats().entries, 10);
    // And with nothing new, nothing moves.
    let s = sync(&b, server.addr).await;
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
    sync(&b, at_a.addr).await;
    drop(at_a);

    // C meets only B.
    let at_b = Server::start(&b);
    let s = sync(&c, at_b.addr).await;
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
