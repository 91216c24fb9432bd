//! Hub checkpoints in sessions: a hub that lost entries it attested is
//! flagged (and repaired), and an entry contradicting a checkpoint is
//! refused from any peer (`docs/protocol.md` 2.11).

use sentinel_schema::{author_of, Body, DeviceRole, Head, HubCheckpoint, SignedEntry, SigningKey};
use sentinel_sync::testing::{key, sign_after};
use sentinel_sync::{Breach, RejectReason, SyncStore};

use crate::harness::*;

fn hub() -> SigningKey {
    key(9)
}

/// The hub's checkpoint entry (seq 1 of its chain) attesting `heads`.
fn checkpoint(heads: &[&SignedEntry]) -> SignedEntry {
    let mut heads: Vec<_> = heads
        .iter()
        .map(|e| {
            (
                e.author(),
                Head {
                    seq: e.seq(),
                    id: e.id(),
                },
            )
        })
        .collect();
    heads.sort_by_key(|(a, _)| *a);
    sign_after(
        &hub(),
        None,
        1_790_000_100_000,
        Body::HubCheckpoint(HubCheckpoint { heads }),
    )
}

fn breaches(pair: &Outcome, on_a: bool) -> Vec<Breach> {
    let events = if on_a { &pair.a.events } else { &pair.b.events };
    events
        .iter()
        .filter_map(|e| match e {
            sentinel_sync::SessionEvent::CheckpointBreach(b) => Some(*b),
            _ => None,
        })
        .collect()
}

#[test]
fn a_hub_presenting_less_than_it_attested_is_flagged_and_gets_it_back() {
    let log = media_chain(&ann(), 5);
    let cp = checkpoint(&[&log[4]]);
    // The node holds ann's five entries and the hub's checkpoint of them;
    // the hub was restored from a backup taken after entry 3.
    let node = Side::node(&ann())
        .holding(&log)
        .knowing(&hub(), DeviceRole::Hub)
        .holding(std::slice::from_ref(&cp));
    let restored = Side::new(DeviceRole::Hub, &hub())
        .knowing(&ann(), DeviceRole::Node)
        .holding(&log[..3]);
    let pair = check(
        scenario(node, restored),
        "
        a: Live 6 entries | breach(truncated #5) caught_up
        b: Live 6 entries | applied(3) caught_up
        a>b: Hello Heads Certificates Entries CaughtUp
        b>a: Hello Heads CaughtUp Ack
        ",
    );
    assert_eq!(
        breaches(&pair, true),
        vec![Breach::Truncated {
            hub: author_of(&hub()),
            author: author_of(&ann()),
            attested: Head {
                seq: 5,
                id: log[4].id()
            },
            presented: 3,
        }]
    );
    // The hub got back what it lost, its checkpoint included.
    assert_eq!(pair.a.store.heads().unwrap(), pair.b.store.heads().unwrap());
}

#[test]
fn the_same_short_log_from_a_node_is_no_breach() {
    let log = media_chain(&ann(), 5);
    let cp = checkpoint(&[&log[4]]);
    let node = Side::node(&ann())
        .holding(&log)
        .knowing(&hub(), DeviceRole::Hub)
        .holding(std::slice::from_ref(&cp));
    let behind = Side::node(&ben()).holding(&log[..3]);
    let pair = run(scenario(node, behind));
    assert!(breaches(&pair, true).is_empty());
    assert!(breaches(&pair, false).is_empty());
}

#[test]
fn an_entry_contradicting_a_checkpoint_is_refused_from_any_peer() {
    // cid forked at seq 2: the hub attested x2a; ben offers x2b.
    let k = cid();
    let x1 = sign_after(&k, None, 1_790_000_000_000, media_body(1));
    let x2a = sign_after(&k, Some(&x1), 1_790_000_000_001, media_body(2));
    let x2b = sign_after(&k, Some(&x1), 1_790_000_000_001, media_body(99));
    let x3b = sign_after(&k, Some(&x2b), 1_790_000_000_002, media_body(3));
    let cp = checkpoint(&[&x2a]);
    // The node met the checkpoint (relayed by someone) but not cid's chain.
    let node = Side::node(&ann())
        .knowing(&hub(), DeviceRole::Hub)
        .knowing(&k, DeviceRole::Node)
        .holding(std::slice::from_ref(&cp));
    let peer =
        Side::node(&ben())
            .knowing(&k, DeviceRole::Node)
            .holding(&[x1.clone(), x2b.clone(), x3b]);
    let pair = run(scenario(node, peer));
    let found = breaches(&pair, true);
    let forked = Breach::Forked {
        hub: author_of(&hub()),
        author: author_of(&k),
        attested: Head {
            seq: 2,
            id: x2a.id(),
        },
        presented: x2b.id(),
    };
    // Once when the entry arrived (ben's head is at seq 3, not 2).
    assert_eq!(found, vec![forked], "{found:?}");
    let node = &pair.a.store;
    assert_eq!(node.head(&author_of(&k)).unwrap().unwrap().seq, 1);
    let q: Vec<_> = node.quarantined().collect();
    assert!(
        q.iter()
            .any(|e| e.entry.id() == x2b.id() && e.reason == RejectReason::ContradictsCheckpoint),
        "{q:?}"
    );
}

#[test]
fn a_hub_presenting_another_head_at_an_attested_seq_is_a_fork() {
    let k = cid();
    let x1 = sign_after(&k, None, 1_790_000_000_000, media_body(1));
    let x2a = sign_after(&k, Some(&x1), 1_790_000_000_001, media_body(2));
    let x2b = sign_after(&k, Some(&x1), 1_790_000_000_001, media_body(99));
    let cp = checkpoint(&[&x2a]);
    let node = Side::node(&ann())
        .knowing(&hub(), DeviceRole::Hub)
        .knowing(&k, DeviceRole::Node)
        .holding(&[x1.clone(), x2a.clone()])
        .holding(std::slice::from_ref(&cp));
    // The hub's database was rewritten: x2b in place of x2a.
    let hub_side = Side::new(DeviceRole::Hub, &hub())
        .knowing(&k, DeviceRole::Node)
        .holding(&[x1, x2b.clone(), cp.clone()]);
    let pair = run(scenario(node, hub_side));
    let found = breaches(&pair, true);
    assert!(
        found.contains(&Breach::Forked {
            hub: author_of(&hub()),
            author: author_of(&k),
            attested: Head {
                seq: 2,
                id: x2a.id()
            },
            presented: x2b.id(),
        }),
        "{found:?}"
    );
    // The node's log keeps the attested entry.
    assert_eq!(
        pair.a.store.head(&author_of(&k)).unwrap().unwrap().id,
        x2a.id()
    );
}

fn media_body(n: u64) -> Body {
    sentinel_sync::testing::media(n, 10)
}
