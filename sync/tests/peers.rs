//! What a peer may claim about itself, and how much of it a session
//! holds. Its role is its certificate's: a Hello that claims another
//! closes the session (`role_mismatch`) before anything is sent, and
//! whether it is sent entries or counts as a hub follows the certificate.
//! Heads beyond the cap close the session (`limit_exceeded`) before the
//! receiver holds them.

use sentinel_schema::{author_of, AuthorId, DeviceRole, EntryId, Head};
use sentinel_sync::message::{
    CloseCode, FrameEncodings, Hello, Message, MAX_AUTHORS, MAX_HEADS_PER_MESSAGE,
};
use sentinel_sync::testing::{Peer, TestCa};
use sentinel_sync::{MemoryStore, Session, SessionError, SessionEvent};

use crate::harness::*;

const NOW: u64 = 1_790_000_000_000;

/// The cap on the authors in a peer's heads, as the protocol names it.
const CAP: usize = MAX_AUTHORS;

#[test]
fn a_sensor_certificate_whose_hello_claims_node_is_closed_and_sent_nothing() {
    let log = media_chain(&ann(), 3);
    let pair = check(
        scenario(
            Side::node(&ann()).holding(&log),
            Side::new(DeviceRole::Sensor, &gauge()).claiming(DeviceRole::Node),
        ),
        "
        a: Closed 3 entries | closed(RoleMismatch, local)
        b: Closed 0 entries | closed(RoleMismatch, remote)
        a>b: Hello Close
        b>a: Hello Heads
        ",
    );
    let (code, reason) = pair.a.session.close_reason().unwrap();
    assert_eq!(code.to_wire(), 12);
    assert!(
        reason.contains("claims the role node") && reason.contains("says sensor"),
        "{reason}"
    );
}

#[test]
fn a_node_whose_hello_claims_hub_is_closed_and_its_acks_are_no_receipts() {
    let log = media_chain(&ann(), 2);
    let pair = check(
        scenario(
            Side::node(&ann()).holding(&log),
            Side::node(&ben()).claiming(DeviceRole::Hub),
        ),
        "
        a: Closed 2 entries | closed(RoleMismatch, local)
        b: Closed 0 entries | closed(RoleMismatch, remote)
        a>b: Hello Close
        b>a: Hello Heads
        ",
    );
    assert!(
        !pair
            .a
            .events
            .iter()
            .any(|e| matches!(e, SessionEvent::Acknowledged { .. })),
        "{:?}",
        pair.a.events
    );
}

#[test]
fn an_honest_sensor_is_sent_nothing_and_its_readings_are_taken() {
    let readings = sentinel_sync::testing::chain(&gauge(), 2, sentinel_sync::testing::reading);
    check(
        scenario(
            Side::node(&ann()).holding(&media_chain(&ann(), 3)),
            Side::new(DeviceRole::Sensor, &gauge()).holding(&readings),
        ),
        "
        a: Live 5 entries | applied(2) caught_up
        b: Live 2 entries | caught_up
        a>b: Hello Heads CaughtUp Ack
        b>a: Hello Heads Certificates Entries CaughtUp
        ",
    );
}

#[test]
fn the_role_decisions_follow_the_certificate_not_the_configuration() {
    // A session configured as if the peer were a node, told by the driver
    // that its certificate says sensor: it is a sensor's session.
    let ca = ca();
    let store = Side::node(&ann()).holding(&media_chain(&ann(), 3)).store;
    let mut session = Session::new(config(DeviceRole::Node, 512, 4));
    let gauge_id = author_of(&gauge());
    let info = session
        .authenticate_peer(&ca.certificate(gauge_id, DeviceRole::Sensor))
        .unwrap();
    assert_eq!((info.author, info.role), (gauge_id, DeviceRole::Sensor));
    assert_eq!(session.peer_role(), Some(DeviceRole::Sensor));
    let sensor = Peer::new(
        Side::new(DeviceRole::Sensor, &gauge()).store,
        config(DeviceRole::Sensor, 512, 4),
    );
    let mut pair = sentinel_sync::testing::Pair::new(
        Peer {
            store,
            session,
            events: Vec::new(),
        },
        sensor,
    );
    pair.start().unwrap();
    pair.drive().unwrap();
    assert!(pair.a.session.is_live(), "{}", render(&pair));
    assert_eq!(pair.b.store.n_entries(), 0, "the sensor got entries");

    // A certificate the anchor does not vouch for is refused, and the
    // session cannot start without knowing the peer.
    let other = TestCa::new(7).certificate(gauge_id, DeviceRole::Node);
    let mut session = Session::new(config(DeviceRole::Node, 512, 4));
    assert!(matches!(
        session.authenticate_peer(&other),
        Err(SessionError::PeerCertificate(_))
    ));
    let mut unknown = config(DeviceRole::Node, 512, 4);
    unknown.peer_role = None;
    let mut session = Session::new(unknown);
    assert!(matches!(
        session.start(&MemoryStore::new(), NOW),
        Err(SessionError::PeerNotAuthenticated)
    ));
}

/// A session of a node holding one entry, its Hello sent.
fn started() -> (Session, MemoryStore) {
    let store = Side::node(&ann()).holding(&media_chain(&ann(), 1)).store;
    let mut session = Session::new(config(DeviceRole::Node, 512, 4));
    session.start(&store, NOW).unwrap();
    (session, store)
}

fn hello(n_authors: u64) -> Vec<u8> {
    Message::Hello(Hello {
        version: 1,
        role: DeviceRole::Node,
        heads_digest: [7; 32],
        n_authors,
        n_entries: n_authors,
        revocation_number: 0,
        frame_encodings: FrameEncodings::NONE,
    })
    .encode(0)
}

/// Head records for the authors numbered `from..to`, ascending.
fn fake_heads(from: usize, to: usize) -> Vec<(AuthorId, Head)> {
    (from..to)
        .map(|i| {
            let mut a = [0u8; 32];
            a[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            (
                AuthorId(a),
                Head {
                    seq: 1,
                    id: EntryId([9; 32]),
                },
            )
        })
        .collect()
}

fn closed_with(session: &Session) -> Option<u64> {
    session.close_reason().map(|(code, _)| code.to_wire())
}

#[test]
fn a_hello_announcing_more_authors_than_the_cap_is_closed_at_once() {
    let (mut session, mut store) = started();
    session
        .handle(&hello(CAP as u64 + 1), &mut store, NOW)
        .unwrap();
    assert_eq!(
        closed_with(&session),
        Some(CloseCode::LimitExceeded.to_wire()),
        "{:?}",
        session.close_reason()
    );
    // Nothing but our Hello and the Close went out: no heads were sent.
    let mut sent = Vec::new();
    while let Some(frame) = session.poll_transmit() {
        sent.push(
            sentinel_sync::message::decode(&frame)
                .unwrap()
                .message
                .name(),
        );
    }
    assert_eq!(sent, ["Hello", "Close"]);
}

#[test]
fn heads_beyond_the_cap_close_the_session_at_the_frame_that_crosses_it() {
    let (mut session, mut store) = started();
    // The Hello stays within the cap; the heads that follow do not.
    session.handle(&hello(10), &mut store, NOW).unwrap();
    assert_eq!(closed_with(&session), None);
    let all = fake_heads(0, CAP + MAX_HEADS_PER_MESSAGE);
    let mut held = 0;
    for (number, chunk) in (1..).zip(all.chunks(MAX_HEADS_PER_MESSAGE)) {
        let frame = Message::Heads {
            heads: chunk.to_vec(),
            last: false,
        }
        .encode(number);
        session.handle(&frame, &mut store, NOW).unwrap();
        if held + chunk.len() <= CAP {
            assert_eq!(closed_with(&session), None, "closed within the cap");
            held += chunk.len();
        } else {
            break;
        }
    }
    assert_eq!(
        closed_with(&session),
        Some(CloseCode::LimitExceeded.to_wire()),
        "{:?}",
        session.close_reason()
    );
    assert!(held <= CAP);
}

#[test]
fn heads_up_to_the_cap_are_accepted() {
    let (mut session, mut store) = started();
    session.handle(&hello(CAP as u64), &mut store, NOW).unwrap();
    let all = fake_heads(0, CAP);
    let mut chunks = all.chunks(MAX_HEADS_PER_MESSAGE).peekable();
    let mut number = 1;
    while let Some(chunk) = chunks.next() {
        let frame = Message::Heads {
            heads: chunk.to_vec(),
            last: chunks.peek().is_none(),
        }
        .encode(number);
        number += 1;
        session.handle(&frame, &mut store, NOW).unwrap();
    }
    assert_eq!(closed_with(&session), None, "{:?}", session.close_reason());
    assert_eq!(session.state_name(), "Reconciling");
}
