//! Entries the receiver must refuse: each is quarantined with its code,
//! and nothing after it of the same author is applied.

use sentinel_schema::{
    author_of, Body, DeviceRole, EventChange, EventDoc, EventId, NewEvent, Point, SignedEntry,
};
use sentinel_sync::testing::{chain, reading, sign_after};
use sentinel_sync::{RejectReason, SessionEvent, SyncStore};

use crate::harness::*;

/// `entries` with the signature of the last one spoiled (the bytes still
/// decode; only the signature check fails).
fn spoil_last_signature(mut entries: Vec<SignedEntry>) -> Vec<SignedEntry> {
    let last = entries.pop().unwrap();
    let mut bytes = last.into_bytes();
    let n = bytes.len();
    bytes[n - 5] ^= 0x01;
    entries.push(SignedEntry::from_bytes(bytes).unwrap());
    entries
}

#[test]
fn bad_signature_is_quarantined_not_applied() {
    let log = spoil_last_signature(media_chain(&ann(), 3));
    let pair = check(
        scenario(Side::node(&ann()).holding(&log), Side::node(&ben())),
        "
        a: Live 3 entries | caught_up
        b: Live 2 entries | quarantined(bad_signature) applied(2) caught_up
        a>b: Hello Heads Certificates Entries CaughtUp
        b>a: Hello Heads CaughtUp Ack
        ",
    );
    let q: Vec<_> = pair.b.store.quarantined().collect();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].entry.id(), log[2].id());
}

/// A sensor's chain: readings at seqs 1, 2 and 4, an event change at 3.
fn sensor_chain() -> Vec<SignedEntry> {
    let k = gauge();
    let new = NewEvent {
        title: "flood".into(),
        description: String::new(),
        category: "water".into(),
        severity: 3,
        location: Point::new(10.0, 50.0).unwrap(),
        reported_ms: 1_790_000_000_000,
    };
    let (_, change) = EventDoc::create(&author_of(&k), &new, 1_790_000_000_000).unwrap();
    let mut log = chain(&k, 2, reading);
    let body = Body::EventChange(EventChange {
        event: EventId([5; 16]),
        change,
    });
    log.push(sign_after(&k, log.last(), 1_790_000_000_100, body));
    log.push(sign_after(&k, log.last(), 1_790_000_000_200, reading(4)));
    log
}

#[test]
fn a_sensor_writing_an_event_change_is_refused_and_sent_nothing() {
    let pair = check(
        scenario(
            Side::new(DeviceRole::Sensor, &gauge()).holding(&sensor_chain()),
            Side::node(&ann()).holding(&media_chain(&ann(), 2)),
        ),
        "
        a: Live 4 entries | caught_up
        b: Live 4 entries | quarantined(role_not_allowed) applied(2) caught_up
        a>b: Hello Heads Certificates Entries CaughtUp
        b>a: Hello Heads CaughtUp Ack
        ",
    );
    // The reading after the refused change cannot link: skipped, and the
    // node keeps the sensor's chain up to seq 2.
    assert_eq!(pair.b.session.stats().entries_skipped, 1);
    assert_eq!(
        pair.b
            .store
            .head(&author_of(&gauge()))
            .unwrap()
            .unwrap()
            .seq,
        2
    );
    let q: Vec<_> = pair.b.store.quarantined().collect();
    assert!(q[0]
        .detail
        .contains("a sensor may not write event_change entries"));
    // The node sent the sensor nothing of its own entries.
    assert_eq!(pair.a.store.log(&author_of(&ann())).len(), 0);
}

#[test]
fn a_node_change_made_by_another_actor_is_refused() {
    // ann signs an entry carrying a change whose Automerge actor is ben.
    let new = NewEvent {
        title: "smoke".into(),
        description: String::new(),
        category: "fire".into(),
        severity: 2,
        location: Point::new(1.0, 2.0).unwrap(),
        reported_ms: 1_790_000_000_000,
    };
    let (_, change) = EventDoc::create(&author_of(&ben()), &new, 1_790_000_000_000).unwrap();
    let body = Body::EventChange(EventChange {
        event: EventId([6; 16]),
        change,
    });
    let e = sign_after(&ann(), None, 1_790_000_000_000, body);
    check(
        scenario(Side::node(&ann()).holding(&[e]), Side::node(&ben())),
        "
        a: Live 1 entries | caught_up
        b: Live 0 entries | quarantined(bad_change) caught_up
        a>b: Hello Heads Certificates Entries CaughtUp
        b>a: Hello Heads CaughtUp Ack
        ",
    );
}

#[test]
fn revoked_author_keeps_seqs_up_to_the_last_valid_one() {
    let log = media_chain(&cid(), 5);
    let pair = check(
        scenario(
            Side::node(&ann())
                .holding(&log)
                .knowing(&cid(), DeviceRole::Node)
                .revoking(1, &[(author_of(&cid()), 3)]),
            Side::node(&ben()),
        ),
        "
        a: Live 5 entries | caught_up
        b: Live 3 entries | revocation_list(1) quarantined(revoked)x2 applied(3) caught_up
        a>b: Hello RevocationList Heads Certificates Entries CaughtUp
        b>a: Hello Heads CaughtUp Ack
        ",
    );
    assert_eq!(
        pair.b.store.revocation_list().unwrap(),
        pair.a.store.revocation_list().unwrap()
    );
}

#[test]
fn unknown_author_is_quarantined() {
    // ann relays cid's entries but holds no certificate for cid.
    let pair = check(
        scenario(
            Side::node(&ann()).holding(&media_chain(&cid(), 3)),
            Side::node(&ben()),
        ),
        "
        a: Live 3 entries | caught_up
        b: Live 0 entries | quarantined(unknown_author)x3 caught_up
        a>b: Hello Heads Entries CaughtUp
        b>a: Hello Heads CaughtUp Ack
        ",
    );
    // Each fails on its own, so each is quarantined.
    assert_eq!(pair.b.store.quarantined().count(), 3);
}

#[test]
fn a_certificate_for_someone_else_is_refused() {
    // ann's store holds, under cid's name, ben's certificate.
    let mut a = Side::node(&ann()).holding(&media_chain(&cid(), 1));
    a.store
        .add_certificates(vec![(
            author_of(&cid()),
            ca().certificate(author_of(&ben()), DeviceRole::Node),
        )])
        .unwrap();
    check(
        scenario(a, Side::node(&ben())),
        "
        a: Live 1 entries | caught_up
        b: Live 0 entries | certificate_refused quarantined(unknown_author) caught_up
        a>b: Hello Heads Certificates Entries CaughtUp
        b>a: Hello Heads CaughtUp Ack
        ",
    );
}

#[test]
fn a_hub_revocation_entry_applies_to_the_next_batches() {
    let cid_id = author_of(&cid());
    // Heads are streamed in author order: a hub sorting before cid sends
    // its revocation in the first batch.
    let hub = (5..=255)
        .map(sentinel_sync::testing::key)
        .find(|k| author_of(k) < cid_id)
        .unwrap();
    let revocation = sentinel_schema::Revocation {
        key: cid_id,
        last_valid_seq: 2,
        reason: "laptop lost".into(),
    };
    let signed = sign_after(
        &hub,
        None,
        1_790_000_000_000,
        Body::Revocation(revocation.clone()),
    );
    let pair = run(scenario(
        Side::node(&ann())
            .holding(&[signed])
            .holding(&media_chain(&cid(), 5))
            .knowing(&hub, DeviceRole::Hub)
            .knowing(&cid(), DeviceRole::Node),
        Side::node(&ben()),
    )
    .batch(1));
    assert!(pair
        .b
        .events
        .contains(&SessionEvent::RevocationEntryApplied {
            by: author_of(&hub),
            revocation,
        }));
    // Seqs 1 and 2 stay valid, later ones are refused as revoked.
    assert_eq!(pair.b.store.head(&cid_id).unwrap().map(|h| h.seq), Some(2));
    let mut reasons: Vec<(u64, RejectReason)> = pair
        .b
        .store
        .quarantined()
        .map(|q| (q.entry.seq(), q.reason))
        .collect();
    reasons.sort();
    let revoked = RejectReason::Revoked;
    assert_eq!(reasons, vec![(3, revoked), (4, revoked), (5, revoked)]);
}

#[test]
fn a_revocation_entry_from_a_node_is_refused_and_not_applied() {
    let cid_id = author_of(&cid());
    let signed = sign_after(
        &ben(),
        None,
        1_790_000_000_000,
        Body::Revocation(sentinel_schema::Revocation {
            key: cid_id,
            last_valid_seq: 0,
            reason: "a node cannot revoke".into(),
        }),
    );
    let pair = run(scenario(
        Side::node(&ann())
            .holding(&[signed])
            .knowing(&ben(), DeviceRole::Node),
        Side::node(&cid()),
    ));
    assert!(!pair
        .b
        .events
        .iter()
        .any(|e| matches!(e, SessionEvent::RevocationEntryApplied { .. })));
    let reasons: Vec<RejectReason> = pair.b.store.quarantined().map(|q| q.reason).collect();
    assert_eq!(reasons, vec![RejectReason::RoleNotAllowed]);
}
