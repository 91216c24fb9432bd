//! Receipts in the node's store: a hub's acknowledgement covers an
//! author's chain up to a seq, only ever rises, covers nothing it cannot
//! match against the local log, survives `rebuild-views` and reopening;
//! the outbox is what no receipt covers.

use sentinel_node::node::Node;
use sentinel_schema::{AuthorId, EntryId, EventId, Head, NewEvent, Point, SigningKey};
use sentinel_sync::SyncStore;
use tempfile::TempDir;

const T0: u64 = 1_795_000_000_000;

fn new_event(n: u128) -> NewEvent {
    NewEvent {
        title: format!("event {n}"),
        description: String::new(),
        category: "flood".into(),
        severity: 3,
        location: Point::new(13.4, 52.5).unwrap(),
        reported_ms: T0,
    }
}

/// The head of `node`'s own chain at `seq`, as a hub would acknowledge it.
fn head_at(node: &Node, seq: u64) -> Head {
    let e = node
        .store()
        .entries_after(&node.author(), seq - 1, 1, usize::MAX)
        .unwrap()
        .remove(0);
    Head { seq, id: e.id() }
}

fn seqs(node: &Node) -> Vec<u64> {
    node.store()
        .outbox()
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect()
}

#[test]
fn receipts_cover_a_chain_only_rise_and_outlive_the_views() {
    let dir = TempDir::new().unwrap();
    let mut node = Node::init(dir.path(), SigningKey::from_bytes(&[7; 32])).unwrap();
    for n in 1..=4 {
        node.report(&new_event(n), EventId(n.to_be_bytes()), None, T0 + n as u64)
            .unwrap();
    }
    let me = node.author();
    let (north, south) = (AuthorId([0xA1; 32]), AuthorId([0xB2; 32]));
    assert_eq!(seqs(&node), [1, 2, 3, 4]);
    assert_eq!(node.store().outbox_len().unwrap(), 4);
    assert!(node.store().last_receipt().unwrap().is_none());

    // Hub north acknowledges up to seq 2: seqs 1 and 2 leave the outbox.
    let h2 = head_at(&node, 2);
    let raised = node
        .store_mut()
        .record_receipts(north, "hub-north", &[(me, h2)], T0 + 100)
        .unwrap();
    assert_eq!(raised, 1);
    assert_eq!(seqs(&node), [3, 4]);
    let outbox = node.store().outbox().unwrap();
    assert_eq!(outbox[0].kind, "event_change");
    assert_eq!(
        outbox[0].event.as_deref(),
        Some(hex::encode(3u128.to_be_bytes()).as_str())
    );

    // Never lower: an older acknowledgement changes nothing, not even the
    // time of the receipt.
    let h1 = head_at(&node, 1);
    let raised = node
        .store_mut()
        .record_receipts(north, "hub-north", &[(me, h1), (me, h2)], T0 + 200)
        .unwrap();
    assert_eq!(raised, 0);
    let last = node.store().last_receipt().unwrap().unwrap();
    assert_eq!((last.seq, last.received_ms), (2, T0 + 100));
    assert_eq!(last.hub, hex::encode(north.as_bytes()));
    assert_eq!(last.hub_name, "hub-north");
    assert_eq!(last.entry, hex::encode(h2.id.as_bytes()));

    // A head that is not in the local log covers nothing: another entry
    // at a held seq (a fork), a seq beyond the log, seq 0.
    let forged = Head {
        seq: 4,
        id: EntryId([9; 32]),
    };
    let beyond = Head { seq: 9, id: h2.id };
    let zero = Head {
        seq: 0,
        id: EntryId([0; 32]),
    };
    let raised = node
        .store_mut()
        .record_receipts(
            south,
            "hub-south",
            &[(me, forged), (me, beyond), (me, zero)],
            T0,
        )
        .unwrap();
    assert_eq!(raised, 0);
    assert_eq!(seqs(&node), [3, 4]);

    // Hub south acknowledges everything: the outbox is empty, and each
    // entry names the hubs whose receipts cover it.
    let h4 = head_at(&node, 4);
    node.store_mut()
        .record_receipts(south, "hub-south", &[(me, h4)], T0 + 300)
        .unwrap();
    assert!(seqs(&node).is_empty());
    assert_eq!(node.stats().unwrap().awaiting_receipt, 0);
    let hubs = |seq| -> Vec<(String, u64)> {
        node.store()
            .receipt_for(seq)
            .unwrap()
            .into_iter()
            .map(|r| (r.hub_name, r.received_ms))
            .collect()
    };
    assert_eq!(
        hubs(2),
        [
            ("hub-north".to_string(), T0 + 100),
            ("hub-south".into(), T0 + 300)
        ]
    );
    assert_eq!(hubs(3), [("hub-south".to_string(), T0 + 300)]);
    assert!(hubs(5).is_empty());
    let last = node.store().last_receipt().unwrap().unwrap();
    assert_eq!((last.hub_name.as_str(), last.seq), ("hub-south", 4));

    // Evidence, not a view: rebuilding the views keeps every receipt, and
    // so does reopening the store.
    node.store_mut().rebuild_views().unwrap();
    assert_eq!(node.store().receipts().unwrap().len(), 2);
    drop(node);
    let node = Node::open(dir.path()).unwrap();
    assert!(seqs(&node).is_empty());
    assert_eq!(node.store().receipts().unwrap().len(), 2);
}
