//! Sessions that go right: in sync, catching up, resuming, live, relaying,
//! recovering from a store failure, reporting a fork.

use sentinel_schema::{author_of, DeviceRole, SignedEntry};
use sentinel_sync::message::{FrameEncodings, Message};
use sentinel_sync::testing::{chain, key, media, sign_after, Pair, Peer};
use sentinel_sync::{CloseCode, SyncStore};

use crate::harness::*;

#[test]
fn in_sync_after_one_round_trip_with_small_hellos() {
    // Two thousand authors: Hello does not grow with them.
    let logs: Vec<SignedEntry> = (100..2_100).flat_map(|n| media_chain(&key(n), 1)).collect();
    let pair = check(
        scenario(
            Side::node(&ann()).holding(&logs),
            Side::node(&ben()).holding(&logs),
        ),
        "
        a: Live 2000 entries | caught_up
        b: Live 2000 entries | caught_up
        a>b: Hello
        b>a: Hello
        ",
    );
    for t in &pair.sent {
        assert!(t.frame.len() <= 256, "Hello is {} bytes", t.frame.len());
    }
    eprintln!(
        "in-sync check: 2 frames, {} bytes in all",
        pair.wire_bytes()
    );
    assert!(pair.wire_bytes() <= 2 * 80);
}

#[test]
fn catch_up_costs_at_most_ten_percent_over_the_entries() {
    // 10,000 entries of about 391 bytes, as in TARGETS.md's comparison.
    let base = media_chain(&ann(), 2)[1].as_bytes().len() - 40;
    let log = chain(&ann(), 10_000, |i| media(i, 391 - base));
    // Plain frames: this is the framing's own cost (`docs/protocol.md`
    // 2.9). The filler names compress to almost nothing, so what DEFLATE
    // saves on real reports is measured by the sync benchmark instead.
    let plain = FrameEncodings::NONE;
    let pair = check(
        scenario(
            Side::node(&ann()).holding(&log).announcing(plain),
            Side::node(&ben()).announcing(plain),
        ),
        "
        a: Live 10000 entries | caught_up
        b: Live 10000 entries | applied(512)x19 applied(272) caught_up
        a>b: Hello Heads Certificates Entriesx20 CaughtUp
        b>a: Hello Heads CaughtUp Ackx20
        ",
    );
    let entry_bytes: usize = log.iter().map(|e| e.as_bytes().len()).sum();
    let ratio = pair.wire_bytes() as f64 / entry_bytes as f64;
    eprintln!(
        "catch-up: {} entries, {entry_bytes} entry bytes, {} wire bytes both ways: {ratio:.4}x",
        log.len(),
        pair.wire_bytes()
    );
    assert!(ratio <= 1.10, "wire overhead {ratio}");
    assert_eq!(pair.a.store.heads().unwrap(), pair.b.store.heads().unwrap());
}

#[test]
fn resume_after_a_drop_sends_nothing_acknowledged_twice() {
    let log = media_chain(&ann(), 3_000);
    // The connection dies after the sixth batch: nothing more either way.
    let mut batches = 0;
    let mut dead = false;
    let first = check(
        scenario(Side::node(&ann()).holding(&log), Side::node(&ben()))
            .batch(256)
            .link(move |t, frame| {
                if t.from_a && t.name == "Entries" {
                    batches += 1;
                    dead |= batches > 6;
                }
                (!dead).then_some(frame)
            }),
        "
        a: Closed 3000 entries | closed(Timeout, local)
        b: Closed 1536 entries | applied(256)x6 closed(Timeout, local)
        a>b: Hello Heads Certificates Entriesx8 Close
        b>a: Hello Heads CaughtUp Ackx6 Close
        ",
    );
    let (a, b) = first.into_stores();
    let committed = b.head(&author_of(&ann())).unwrap().unwrap().seq;
    assert_eq!(committed, 1_536);
    let second = check(
        scenario(
            Side {
                role: DeviceRole::Node,
                store: a,
                own: None,
                claims: None,
                encodings: None,
            },
            Side {
                role: DeviceRole::Node,
                store: b,
                own: None,
                claims: None,
                encodings: None,
            },
        )
        .batch(256),
        "
        a: Live 3000 entries | caught_up
        b: Live 3000 entries | applied(256)x5 applied(184) caught_up
        a>b: Hello Heads Entriesx6 CaughtUp
        b>a: Hello Heads CaughtUp Ackx6
        ",
    );
    let resent: Vec<u64> = frames_of(&second, true, "Entries")
        .flat_map(|m| match m {
            Message::Entries(raw) => raw,
            _ => unreachable!(),
        })
        .map(|bytes| SignedEntry::from_bytes(bytes).unwrap().seq())
        .collect();
    assert_eq!(
        resent.len(),
        3_000 - 1_536,
        "nothing unacknowledged is lost"
    );
    assert!(
        resent.iter().all(|seq| *seq > committed),
        "nothing acknowledged is sent twice"
    );
}

#[test]
fn relayed_entries_bring_their_author_certificate() {
    // ben has never met cid; ann carries cid's entries and certificate.
    let pair = check(
        scenario(
            Side::node(&ann())
                .holding(&media_chain(&cid(), 3))
                .knowing(&cid(), DeviceRole::Node),
            Side::node(&ben()).holding(&media_chain(&ben(), 1)),
        ),
        "
        a: Live 4 entries | applied(1) caught_up
        b: Live 4 entries | applied(3) caught_up
        a>b: Hello Heads Certificates Entries CaughtUp Ack
        b>a: Hello Heads Certificates Entries CaughtUp Ack
        ",
    );
    assert!(pair
        .b
        .store
        .certificate(&author_of(&cid()))
        .unwrap()
        .is_some());
}

#[test]
fn fork_is_reported_by_both_sides_and_kept_as_evidence() {
    let k = cid();
    let x1 = sign_after(&k, None, 1_790_000_000_000, media(1, 10));
    let x2a = sign_after(&k, Some(&x1), 1_790_000_000_001, media(2, 10));
    let x3a = sign_after(&k, Some(&x2a), 1_790_000_000_002, media(3, 10));
    let x2b = sign_after(&k, Some(&x1), 1_790_000_000_001, media(99, 10));
    let pair = check(
        scenario(
            Side::node(&ann())
                .holding(&[x1.clone(), x2a.clone(), x3a])
                .knowing(&k, DeviceRole::Node),
            Side::node(&ben())
                .holding(&[x1, x2b.clone()])
                .knowing(&k, DeviceRole::Node),
        ),
        "
        a: Live 3 entries | fork(#2) caught_up
        b: Live 2 entries | fork(#2) caught_up
        a>b: Hello Heads Entries CaughtUp
        b>a: Hello Heads CaughtUp Ack
        ",
    );
    let forks = pair.b.store.forks();
    assert_eq!(forks.len(), 1);
    assert_eq!(forks[0].entry.id(), x2a.id());
    assert_eq!(forks[0].held, x2b.id(), "the entry held first stays");
}

#[test]
fn entries_written_after_catch_up_are_pushed_live() {
    let log = media_chain(&ann(), 4);
    let mut pair = check(
        scenario(Side::node(&ann()).holding(&log[..2]), Side::node(&ben())),
        "
        a: Live 2 entries | caught_up
        b: Live 2 entries | applied(2) caught_up
        a>b: Hello Heads Certificates Entries CaughtUp
        b>a: Hello Heads CaughtUp Ack
        ",
    );
    for e in &log[2..] {
        pair.a.store.append_local(e.clone()).unwrap();
        pair.local_entries(true).unwrap();
    }
    pair.drive().unwrap();
    assert_eq!(
        render(&pair).lines().skip(1).collect::<Vec<_>>(),
        [
            "b: Live 4 entries | applied(2) caught_up applied(1)x2",
            "a>b: Hello Heads Certificates Entries CaughtUp Entriesx2",
            "b>a: Hello Heads CaughtUp Ackx3",
        ]
    );
}

#[test]
fn a_store_failure_closes_and_the_next_session_delivers_everything() {
    let log = media_chain(&ann(), 10);
    let mut b = Side::node(&ben());
    b.store.fail_next_apply();
    let a = Peer::new(
        Side::node(&ann()).holding(&log).store,
        config(DeviceRole::Node, 512, 4),
    );
    let b = Peer::new(b.store, config(DeviceRole::Node, 512, 4));
    let mut pair = Pair::new(a, b);
    pair.start().unwrap();
    let failed = pair.drive();
    assert!(matches!(failed, Err(sentinel_sync::SessionError::Store(_))));
    assert_eq!(
        pair.b.session.close_reason().unwrap().0,
        CloseCode::StoreFailed
    );
    pair.drive().unwrap();
    assert!(pair.a.session.is_closed(), "the peer learns of the close");
    let (a, b) = pair.into_stores();
    assert_eq!(b.n_entries(), 0, "nothing of the failed batch was kept");
    check(
        scenario(
            Side {
                role: DeviceRole::Node,
                store: a,
                own: None,
                claims: None,
                encodings: None,
            },
            Side {
                role: DeviceRole::Node,
                store: b,
                own: None,
                claims: None,
                encodings: None,
            },
        ),
        "
        a: Live 10 entries | caught_up
        b: Live 10 entries | applied(10) caught_up
        a>b: Hello Heads Certificates Entries CaughtUp
        b>a: Hello Heads CaughtUp Ack
        ",
    );
}
