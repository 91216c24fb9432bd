//! Thin links: a device's own entries leave before the ones it relays,
//! a session says how much of its catch-up is left, and a bandwidth cap
//! holds on a real QUIC link (loopback, mutual TLS, a real CA).

use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sentinel_certs::{Ca, FreshnessPolicy, RevocationHandle};
use sentinel_schema::{author_of, AuthorId, DeviceRole, SignedEntry, SigningKey};
use sentinel_sync::ca_trust::CaTrust;
use sentinel_sync::message::{FrameEncodings, Message};
use sentinel_sync::quic::{self, DriveOptions, Pace, Side as QuicSide, Until};
use sentinel_sync::testing::{key, media, sign_after};
use sentinel_sync::{MemoryStore, Session, SessionConfig, SessionEvent, SyncStore};

use crate::harness::*;

/// Every entry `a` sent, as (author, seq), in the order sent.
fn sent_by_a(pair: &Outcome) -> Vec<(AuthorId, u64)> {
    frames_of(pair, true, "Entries")
        .flat_map(|m| match m {
            Message::Entries(raw) => raw,
            _ => unreachable!(),
        })
        .map(|bytes| {
            let e = SignedEntry::from_bytes(bytes).unwrap();
            (e.author(), e.seq())
        })
        .collect()
}

/// Three keys, the one whose author sorts last first: author order alone
/// would stream it after the other two.
fn own_and_relayed() -> (SigningKey, Vec<SigningKey>) {
    let mut keys = vec![ann(), ben(), cid()];
    keys.sort_by_key(author_of);
    let own = keys.pop().unwrap();
    (own, keys)
}

/// A node holding 5 entries of its own and 5 of each relayed author.
fn relaying_node(own: &SigningKey, relayed: &[SigningKey]) -> Side {
    let mut side = Side::node(own).holding(&media_chain(own, 5));
    for k in relayed {
        side = side
            .knowing(k, DeviceRole::Node)
            .holding(&media_chain(k, 5));
    }
    side
}

/// (author, 1..=n) for each author, in the order given.
fn in_order(authors: &[AuthorId], n: u64) -> Vec<(AuthorId, u64)> {
    authors
        .iter()
        .flat_map(|a| (1..=n).map(move |s| (*a, s)))
        .collect()
}

#[test]
fn own_entries_go_before_relayed_ones() {
    let (own, relayed) = own_and_relayed();
    let ids: Vec<AuthorId> = relayed.iter().map(author_of).collect();
    let peer = || Side::node(&key(9));
    let pair = run(scenario(relaying_node(&own, &relayed), peer())
        .batch(4)
        .own_first());
    assert!(pair.a.session.is_live() && pair.b.session.is_live());
    assert_eq!(pair.b.store.n_entries(), 15);
    let mut expected = in_order(&[author_of(&own)], 5);
    expected.extend(in_order(&ids, 5));
    assert_eq!(sent_by_a(&pair), expected);

    // Without being told its own author, the session streams in author
    // order, and the own entries go last: the check above has teeth.
    let pair = run(scenario(relaying_node(&own, &relayed), peer()).batch(4));
    let mut author_order = in_order(&ids, 5);
    author_order.extend(in_order(&[author_of(&own)], 5));
    assert_eq!(sent_by_a(&pair), author_order);
}

#[test]
fn own_entries_written_while_live_go_before_relayed_ones() {
    let (own, relayed) = own_and_relayed();
    let mut pair = run(scenario(Side::node(&own), Side::node(&key(9))).own_first());
    assert!(pair.a.session.is_live(), "{}", render(&pair));
    let before = sent_by_a(&pair).len();
    // Relayed entries arrive (applied from another session), then the
    // device writes its own, before the session hears of either.
    for k in &relayed {
        let a = author_of(k);
        pair.a
            .store
            .add_certificates(vec![(a, ca().certificate(a, DeviceRole::Node))])
            .unwrap();
        for e in media_chain(k, 3) {
            pair.a.store.append_local(e).unwrap();
        }
    }
    for e in media_chain(&own, 3) {
        pair.a.store.append_local(e).unwrap();
    }
    pair.local_entries(true).unwrap();
    pair.drive().unwrap();
    let mut expected = in_order(&[author_of(&own)], 3);
    expected.extend(in_order(
        &relayed.iter().map(author_of).collect::<Vec<_>>(),
        3,
    ));
    assert_eq!(&sent_by_a(&pair)[before..], &expected[..]);
    assert_eq!(pair.b.store.n_entries(), 9);
}

/// The `Remaining` events of one side, as (to_send, to_receive, bytes
/// sent, bytes received).
fn remaining(events: &[SessionEvent]) -> Vec<(u64, u64, u64, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Remaining {
                to_send,
                to_receive,
                bytes_sent,
                bytes_received,
            } => Some((*to_send, *to_receive, *bytes_sent, *bytes_received)),
            _ => None,
        })
        .collect()
}

#[test]
fn remaining_counts_both_ways_down_to_nothing() {
    // a has 700 entries b lacks, b has 300 a lacks, and both hold 20 of
    // a third author.
    let shared = media_chain(&cid(), 20);
    let pair = run(scenario(
        Side::node(&ann())
            .knowing(&cid(), DeviceRole::Node)
            .holding(&shared)
            .holding(&media_chain(&ann(), 700)),
        Side::node(&ben())
            .knowing(&cid(), DeviceRole::Node)
            .holding(&shared)
            .holding(&media_chain(&ben(), 300)),
    )
    .batch(100));
    assert!(pair.a.session.is_live() && pair.b.session.is_live());
    let a = remaining(&pair.a.events);
    let b = remaining(&pair.b.events);
    // Planned when the heads were known, before any entry moved.
    assert_eq!((a[0].0, a[0].1), (700, 300), "{a:?}");
    assert_eq!((b[0].0, b[0].1), (300, 700), "{b:?}");
    // Counted down with every batch each way, never up.
    for side in [&a, &b] {
        assert_eq!(side.len(), 1 + 7 + 3, "{side:?}");
        for w in side.windows(2) {
            assert!(w[1].0 <= w[0].0 && w[1].1 <= w[0].1, "{side:?}");
            assert!(w[1].2 >= w[0].2 && w[1].3 >= w[0].3, "{side:?}");
        }
        let last = side.last().unwrap();
        assert_eq!((last.0, last.1), (0, 0), "{side:?}");
    }
    // The bytes are the session's own counters.
    let stats = pair.a.session.stats();
    let last = a.last().unwrap();
    assert!(last.2 <= stats.bytes_sent && last.3 <= stats.bytes_received);
    assert!(last.2 > 700 * 100, "{last:?}");

    // In sync: nothing left, said once.
    let logs = media_chain(&ann(), 3);
    let pair = run(scenario(
        Side::node(&ann()).holding(&logs),
        Side::node(&ben())
            .knowing(&ann(), DeviceRole::Node)
            .holding(&logs),
    ));
    let hello = pair.a.session.stats().bytes_sent;
    assert_eq!(remaining(&pair.a.events), vec![(0, 0, hello, hello)]);
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A device of a real CA: its key, certificate and TLS configurations.
struct Device {
    key: SigningKey,
    cert_der: Vec<u8>,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

fn enrolled(ca: &Ca, name: &str, seed: u8) -> Device {
    let now = now_ms();
    let day = 24 * 3600 * 1000;
    let key = SigningKey::from_bytes(&[seed; 32]);
    let e = ca
        .enroll(
            DeviceRole::Node,
            name,
            key.clone(),
            now - day,
            now + day,
            now,
        )
        .unwrap();
    let revocations = RevocationHandle::empty();
    let lenient = FreshnessPolicy::Lenient;
    Device {
        server: sentinel_certs::server_config(&e, &revocations, lenient).unwrap(),
        client: sentinel_certs::client_config(&e, &revocations, lenient).unwrap(),
        key,
        cert_der: e.cert_der,
    }
}

/// One session over loopback QUIC: `a` accepts and sends its log (under
/// `pace`, if given), `b` connects and receives it. Answers what `a`'s
/// driver reports and how long `a`'s session took.
fn session_over_quic(n_entries: u64, pace: Option<Pace>) -> (quic::Outcome, Duration, usize) {
    let now = now_ms();
    let day = 24 * 3600 * 1000;
    let ca = Ca::create(
        "Thin link test CA",
        now - day,
        now + day,
        SigningKey::from_bytes(&[1; 32]),
    )
    .unwrap();
    let (a, b) = (enrolled(&ca, "thin-a", 2), enrolled(&ca, "thin-b", 3));
    let mut store_a = MemoryStore::new();
    store_a
        .add_certificates(vec![(author_of(&a.key), a.cert_der.clone())])
        .unwrap();
    let mut prev: Option<SignedEntry> = None;
    for i in 0..n_entries {
        let e = sign_after(&a.key, prev.as_ref(), now + i, media(i, 200));
        store_a.append_local(e.clone()).unwrap();
        prev = Some(e);
    }
    let trust = Arc::new(CaTrust::new(ca.cert().clone()));
    // Plain frames: the entries are filler that DEFLATE shrinks to almost
    // nothing, and the cap needs bytes to pace.
    let config = || {
        let mut c = SessionConfig::new(DeviceRole::Node, trust.clone());
        c.frame_encodings = FrameEncodings::NONE;
        c
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let ea = quic::server_endpoint("127.0.0.1:0".parse().unwrap(), a.server, a.client).unwrap();
        let eb = quic::client_endpoint("127.0.0.1:0".parse().unwrap(), b.client).unwrap();
        let addr = ea.local_addr().unwrap();
        let (cb, ca_conn) = tokio::join!(quic::connect(&eb, addr), async {
            ea.accept().await.unwrap().await.unwrap()
        });
        let cb = cb.unwrap();
        let store_b = Arc::new(Mutex::new(MemoryStore::new()));
        let started = Instant::now();
        let sender = quic::drive_with(
            &ca_conn,
            QuicSide::Acceptor,
            Session::new(config()),
            Arc::new(Mutex::new(store_a)),
            Until::CaughtUp,
            None,
            DriveOptions {
                pace,
                ..DriveOptions::default()
            },
            |_| {},
        );
        let receiver = quic::drive(
            &cb,
            QuicSide::Initiator,
            Session::new(config()),
            store_b.clone(),
            Until::CaughtUp,
            None,
            |_| {},
        );
        let (sent, received) = tokio::time::timeout(Duration::from_secs(120), async {
            tokio::join!(sender, receiver)
        })
        .await
        .expect("the session hung");
        let took = started.elapsed();
        let (sent, received) = (sent.unwrap(), received.unwrap());
        assert!(
            sent.caught_up && received.caught_up,
            "{sent:?} {received:?}"
        );
        let n = store_b.lock().unwrap().n_entries();
        (sent, took, n)
    })
}

#[test]
fn a_capped_link_moves_no_faster_than_its_cap() {
    const N: u64 = 400;
    let rate = 60_000u64;
    let pace = Pace::new(NonZeroU64::new(rate).unwrap());
    let burst = pace.burst();
    let (outcome, took, received) = session_over_quic(N, Some(pace));
    assert_eq!(received, N as usize);
    // Every frame was charged with its 4-byte length before it went.
    let charged = outcome.stats.bytes_sent + 4 * outcome.stats.frames_sent;
    let least = Duration::from_millis((charged - burst) * 1000 / rate);
    eprintln!(
        "capped at {rate} B/s: {charged} bytes in {took:?} (no faster than {least:?} allowed)"
    );
    assert!(
        charged > 4 * burst,
        "too little to measure: {charged} bytes"
    );
    // A lower bound only, and a generous one: nothing here can be made
    // flaky by a slow machine.
    assert!(took >= least * 9 / 10, "{took:?} < {least:?}");
}

#[test]
fn an_uncapped_session_over_quic_moves_the_same_entries() {
    let (outcome, took, received) = session_over_quic(400, None);
    assert_eq!(received, 400);
    eprintln!(
        "uncapped: {} bytes in {took:?}",
        outcome.stats.bytes_sent + 4 * outcome.stats.frames_sent
    );
}
