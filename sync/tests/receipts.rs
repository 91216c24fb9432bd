//! What the peer durably holds: `SessionEvent::Acknowledged`, the raw
//! material of receipts (an acknowledgement from a hub). It follows every
//! `Ack`, during catch-up and for entries pushed live, and the heads the
//! peer presents at the start, so that entries a hub already held (and so
//! never acknowledges) count too. The wire does not change.

use sentinel_schema::{author_of, AuthorId, DeviceRole, Head, SignedEntry};
use sentinel_sync::message::Message;
use sentinel_sync::testing::Peer;
use sentinel_sync::{MemoryStore, SessionEvent};

use crate::harness::*;

fn hub() -> Side {
    Side::new(DeviceRole::Hub, &cid())
}

/// Every `Acknowledged` a side saw, in order: (role, [(author, seq)]).
fn acknowledged(p: &Peer<MemoryStore>) -> Vec<(DeviceRole, Vec<(AuthorId, u64)>)> {
    p.events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Acknowledged { by, heads } => Some((
                *by,
                heads.iter().map(|(a, h)| (*a, h.seq)).collect::<Vec<_>>(),
            )),
            _ => None,
        })
        .collect()
}

fn head_of(e: &SignedEntry) -> Head {
    Head {
        seq: e.seq(),
        id: e.id(),
    }
}

#[test]
fn a_hubs_acks_after_catch_up_and_after_a_live_push_are_events() {
    let log = media_chain(&ann(), 6);
    let mut pair = check(
        scenario(Side::node(&ann()).holding(&log[..4]), hub()).batch(2),
        "
        a: Live 4 entries | caught_up
        b: Live 4 entries | applied(2)x2 caught_up
        a>b: Hello Heads Certificates Entriesx2 CaughtUp
        b>a: Hello Heads CaughtUp Ackx2
        ",
    );
    let ann_id = author_of(&ann());
    assert_eq!(pair.a.session.peer_role(), Some(DeviceRole::Hub));
    assert_eq!(pair.b.session.peer_role(), Some(DeviceRole::Node));
    // One event per Ack, naming the batch's author and the committed head,
    // with the id of our entry there.
    assert_eq!(
        acknowledged(&pair.a),
        [
            (DeviceRole::Hub, vec![(ann_id, 2)]),
            (DeviceRole::Hub, vec![(ann_id, 4)]),
        ]
    );
    let last = pair.a.events.iter().rev().find_map(|e| match e {
        SessionEvent::Acknowledged { heads, .. } => Some(heads[0].1),
        _ => None,
    });
    assert_eq!(last, Some(head_of(&log[3])));
    // The hub learns from the node's heads what the node holds; the node
    // learns nothing from the hub's (empty) heads.
    assert_eq!(
        acknowledged(&pair.b),
        [(DeviceRole::Node, vec![(ann_id, 4)])]
    );

    // Live: each pushed entry is acknowledged, and the event follows.
    for e in &log[4..] {
        pair.a.store.append_local(e.clone()).unwrap();
        pair.local_entries(true).unwrap();
    }
    pair.drive().unwrap();
    assert!(pair.a.session.is_live());
    assert_eq!(
        acknowledged(&pair.a)[2..],
        [
            (DeviceRole::Hub, vec![(ann_id, 5)]),
            (DeviceRole::Hub, vec![(ann_id, 6)]),
        ]
    );
    // Nothing on the wire is new: Acks are the protocol's own.
    let acks: Vec<Message> = frames_of(&pair, false, "Ack").collect();
    assert_eq!(acks.len(), 4);
}

#[test]
fn what_the_hub_already_holds_counts_without_an_ack() {
    // The hub got ann's entries through someone else: nothing is sent, so
    // nothing is acknowledged, but its heads say it holds them.
    let log = media_chain(&ann(), 3);
    let other = media_chain(&ben(), 1);
    let pair = check(
        scenario(
            Side::node(&ann()).holding(&log),
            hub()
                .knowing(&ann(), DeviceRole::Node)
                .knowing(&ben(), DeviceRole::Node)
                .holding(&log)
                .holding(&other),
        ),
        "
        a: Live 4 entries | applied(1) caught_up
        b: Live 4 entries | caught_up
        a>b: Hello Heads CaughtUp Ack
        b>a: Hello Heads Certificates Entries CaughtUp
        ",
    );
    let (ann_id, ben_id) = (author_of(&ann()), author_of(&ben()));
    let mut heads = vec![(ann_id, 3), (ben_id, 1)];
    heads.sort();
    assert_eq!(acknowledged(&pair.a), [(DeviceRole::Hub, heads)]);

    // In sync at Hello: the hub holds exactly our heads.
    let (a, b) = pair.into_stores();
    let again = check(
        scenario(
            Side {
                role: DeviceRole::Node,
                store: a,
                own: Some(ann_id),
                claims: None,
                encodings: None,
            },
            Side {
                role: DeviceRole::Hub,
                store: b,
                own: Some(author_of(&cid())),
                claims: None,
                encodings: None,
            },
        ),
        "
        a: Live 4 entries | caught_up
        b: Live 4 entries | caught_up
        a>b: Hello
        b>a: Hello
        ",
    );
    let mut heads = vec![(ann_id, 3), (ben_id, 1)];
    heads.sort();
    assert_eq!(acknowledged(&again.a), [(DeviceRole::Hub, heads)]);
}

#[test]
fn a_refused_entry_is_not_covered_and_seq_zero_is_left_out() {
    // The hub refuses ann's entries (it has no certificate for her, and
    // the node does not send one it lacks): its Ack names seq 0, which
    // covers nothing, so no event.
    let log = media_chain(&ann(), 2);
    let mut node = Side::node(&ben()).holding(&[]);
    for e in &log {
        node.store.append_local(e.clone()).unwrap();
    }
    let pair = run(scenario(node, hub()));
    let acks: Vec<Message> = frames_of(&pair, false, "Ack").collect();
    assert!(!acks.is_empty(), "{}", render(&pair));
    assert!(acknowledged(&pair.a).is_empty(), "{:?}", pair.a.events);
}
