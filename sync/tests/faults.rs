//! Frames that break the protocol: each closes the session with its code.

use sentinel_sync::message::{self, Hello, Message, MAX_MESSAGE_BYTES};
use sentinel_sync::testing::Transmitted;

use crate::harness::*;

/// A link that replaces the `n`th frame from a with `with(frame)`.
fn replace_from_a(
    n: usize,
    with: impl Fn(Vec<u8>) -> Vec<u8> + 'static,
) -> impl FnMut(&Transmitted, Vec<u8>) -> Option<Vec<u8>> {
    let mut seen = 0;
    move |t, frame| {
        if !t.from_a {
            return Some(frame);
        }
        seen += 1;
        Some(if seen == n { with(frame) } else { frame })
    }
}

fn two_nodes() -> Scenario {
    scenario(
        Side::node(&ann()).holding(&media_chain(&ann(), 3)),
        Side::node(&ben()),
    )
}

#[test]
fn malformed_frame_closes_the_session() {
    check(
        two_nodes().link(replace_from_a(2, |_| vec![0x82, 0x01])),
        "
        a: Closed 3 entries | closed(Malformed, remote)
        b: Closed 0 entries | closed(Malformed, local)
        a>b: Hello Heads Certificates Entries CaughtUp
        b>a: Hello Heads Close
        ",
    );
}

#[test]
fn oversize_frame_closes_the_session() {
    check(
        two_nodes().link(replace_from_a(2, |_| vec![0; MAX_MESSAGE_BYTES + 1])),
        "
        a: Closed 3 entries | closed(TooLarge, remote)
        b: Closed 0 entries | closed(TooLarge, local)
        a>b: Hello Heads Certificates Entries CaughtUp
        b>a: Hello Heads Close
        ",
    );
}

#[test]
fn a_message_the_state_does_not_allow_closes_the_session() {
    // An Ack where Heads is due (same frame number, so only the state is wrong).
    check(
        two_nodes().link(replace_from_a(2, |_| Message::Ack(vec![]).encode(1))),
        "
        a: Closed 3 entries | closed(UnexpectedMessage, remote)
        b: Closed 0 entries | closed(UnexpectedMessage, local)
        a>b: Hello Heads Certificates Entries CaughtUp
        b>a: Hello Heads Close
        ",
    );
}

#[test]
fn a_duplicated_or_reordered_frame_closes_the_session() {
    check(
        two_nodes().link(replace_from_a(3, |_| {
            Message::Heads {
                heads: vec![],
                last: true,
            }
            .encode(1)
        })),
        "
        a: Closed 3 entries | closed(OutOfOrder, remote)
        b: Closed 0 entries | closed(OutOfOrder, local)
        a>b: Hello Heads Certificates Entries CaughtUp
        b>a: Hello Heads CaughtUp Close
        ",
    );
}

#[test]
fn an_ack_with_nothing_in_flight_closes_the_session() {
    // ben's Heads (its frame 1) is followed by an Ack it could not owe.
    let mut n_from_b = 0;
    check(
        two_nodes().link(move |t, frame| {
            if t.from_a {
                return Some(frame);
            }
            n_from_b += 1;
            Some(if n_from_b == 3 {
                Message::Ack(vec![]).encode(2)
            } else {
                frame
            })
        }),
        "
        a: Closed 3 entries | closed(BadAck, local)
        b: Closed 3 entries | applied(3) caught_up closed(BadAck, remote)
        a>b: Hello Heads Certificates Entries CaughtUp Close
        b>a: Hello Heads CaughtUp Ack
        ",
    );
}

#[test]
fn another_protocol_version_closes_the_session() {
    let hello = |frame: Vec<u8>| match message::decode(&frame).unwrap().message {
        Message::Hello(h) => Message::Hello(Hello { version: 2, ..h }).encode(0),
        _ => frame,
    };
    check(
        two_nodes().link(replace_from_a(1, hello)),
        "
        a: Closed 3 entries | closed(UnsupportedVersion, remote)
        b: Closed 0 entries | closed(UnsupportedVersion, local)
        a>b: Hello Heads
        b>a: Hello Close
        ",
    );
}

#[test]
fn a_lost_last_frame_ends_in_a_timeout() {
    // ann's CaughtUp never arrives: ann is done, ben waits, then gives up.
    check(
        two_nodes().link(|t, frame| (t.name != "CaughtUp" || !t.from_a).then_some(frame)),
        "
        a: Closed 3 entries | caught_up closed(Timeout, remote)
        b: Closed 3 entries | applied(3) closed(Timeout, local)
        a>b: Hello Heads Certificates Entries CaughtUp
        b>a: Hello Heads CaughtUp Ack Close
        ",
    );
}

#[test]
fn calls_out_of_order_are_errors() {
    use sentinel_schema::DeviceRole;
    use sentinel_sync::{MemoryStore, Session, SessionError, SyncStore};

    let mut store = MemoryStore::new();
    let mut session = Session::new(config(DeviceRole::Node, 8, 1));
    assert!(matches!(
        session.handle(&[0x80], &mut store, 0),
        Err(SessionError::NotStarted)
    ));
    session.start(&store, 0).unwrap();
    assert!(matches!(
        session.start(&store, 0),
        Err(SessionError::AlreadyStarted)
    ));

    // A revocation list in the store that the CA did not sign.
    store
        .set_revocation_list(vec![0x82, 0x41, 0x00, 0x40])
        .unwrap();
    let mut session = Session::new(config(DeviceRole::Node, 8, 1));
    assert!(matches!(
        session.start(&store, 0),
        Err(SessionError::LocalRevocationList(_))
    ));
    assert!(session.is_closed());
}
