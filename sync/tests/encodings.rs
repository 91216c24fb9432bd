//! Frame encodings (`docs/protocol.md` 2.12): batches travel compressed
//! when both Hellos announce DEFLATE and plain otherwise, and they end as
//! the same entries either way; an envelope that would inflate past the
//! frame limit, is corrupt, or was never announced closes the session.

use flate2::{Compress, Compression, FlushCompress};
use sentinel_schema::{author_of, SignedEntry, SigningKey};
use sentinel_sync::compress::{self, Sealer};
use sentinel_sync::message::{self, FrameEncodings, Message, MAX_MESSAGE_BYTES};
use sentinel_sync::testing::{chain, media, Transmitted};
use sentinel_sync::{MemoryStore, SyncStore};

use crate::harness::*;

const DEFLATE: FrameEncodings = FrameEncodings::DEFLATE;
const PLAIN: FrameEncodings = FrameEncodings::NONE;

fn is_envelope(frame: &[u8]) -> bool {
    frame.starts_with(&[0x84, 0x08])
}

fn envelopes(pair: &Outcome, from_a: bool) -> usize {
    pair.sent
        .iter()
        .filter(|t| t.from_a == from_a && is_envelope(&t.frame))
        .count()
}

/// Everything a store holds of `author`, as bytes.
fn log_bytes(store: &MemoryStore, author: &SigningKey) -> Vec<Vec<u8>> {
    store
        .log(&author_of(author))
        .iter()
        .map(|e| e.as_bytes().to_vec())
        .collect()
}

/// Entries of ~300 bytes, several batches of them, each way.
fn logs() -> (Vec<SignedEntry>, Vec<SignedEntry>) {
    (
        chain(&ann(), 1_200, |i| media(i, 200)),
        chain(&ben(), 700, |i| media(i, 200)),
    )
}

fn both_ways(a: FrameEncodings, b: FrameEncodings) -> Outcome {
    let (ann_log, ben_log) = logs();
    check(
        scenario(
            Side::node(&ann()).holding(&ann_log).announcing(a),
            Side::node(&ben()).holding(&ben_log).announcing(b),
        ),
        "
        a: Live 1900 entries | applied(512) applied(188) caught_up
        b: Live 1900 entries | applied(512)x2 applied(176) caught_up
        a>b: Hello Heads Certificates Entriesx3 CaughtUp Ackx2
        b>a: Hello Heads Certificates Entriesx2 CaughtUp Ackx3
        ",
    )
}

#[test]
fn a_compressed_catch_up_ends_as_a_plain_one() {
    let plain = both_ways(PLAIN, PLAIN);
    let sealed = both_ways(DEFLATE, DEFLATE);
    assert_eq!((envelopes(&plain, true), envelopes(&plain, false)), (0, 0));
    // Every batch went compressed, each way; nothing else did.
    assert_eq!(envelopes(&sealed, true), 3);
    assert_eq!(envelopes(&sealed, false), 2);
    // The same entries, byte for byte, on both sides of both runs.
    for pair in [&plain, &sealed] {
        for author in [ann(), ben()] {
            assert_eq!(
                log_bytes(&pair.a.store, &author),
                log_bytes(&pair.b.store, &author)
            );
        }
        assert_eq!(pair.a.store.heads().unwrap(), pair.b.store.heads().unwrap());
    }
    for author in [ann(), ben()] {
        assert_eq!(
            log_bytes(&plain.b.store, &author),
            log_bytes(&sealed.b.store, &author)
        );
    }
    // What the stats count is what went on the link, compressed.
    let sent_by_a: u64 = sealed
        .sent
        .iter()
        .filter(|t| t.from_a)
        .map(|t| t.frame.len() as u64)
        .sum();
    assert_eq!(sealed.a.session.stats().bytes_sent, sent_by_a);
    assert_eq!(sealed.b.session.stats().bytes_received, sent_by_a);
    eprintln!(
        "both ways, 1,900 entries: {} wire bytes plain, {} compressed",
        plain.wire_bytes(),
        sealed.wire_bytes()
    );
    assert!(sealed.wire_bytes() < plain.wire_bytes() * 3 / 4);
}

/// A peer that announces no encodings sends the Hello of before, and gets
/// and sends plain frames only: whichever side it is.
#[test]
fn a_peer_without_encodings_syncs_plain_both_ways() {
    for (a, b) in [(DEFLATE, PLAIN), (PLAIN, DEFLATE)] {
        let pair = both_ways(a, b);
        assert_eq!(
            (envelopes(&pair, true), envelopes(&pair, false)),
            (0, 0),
            "{a:?} {b:?}"
        );
        let hellos: Vec<&Transmitted> = pair.sent.iter().filter(|t| t.name == "Hello").collect();
        for t in hellos {
            let announces = if t.from_a { a } else { b };
            // array(8) without encodings, as every Hello before them;
            // array(9) with.
            let head = if announces == PLAIN { 0x88 } else { 0x89 };
            assert_eq!(t.frame[0], head);
            let Message::Hello(h) = message::decode(&t.frame).unwrap().message else {
                panic!("not a Hello");
            };
            assert_eq!(h.frame_encodings, announces);
        }
        assert_eq!(pair.a.store.heads().unwrap(), pair.b.store.heads().unwrap());
    }
}

/// The first `Entries` frame from a replaced by `with(frame)`.
fn first_batch_from_a(
    with: impl Fn(Vec<u8>) -> Vec<u8> + 'static,
) -> impl FnMut(&Transmitted, Vec<u8>) -> Option<Vec<u8>> {
    let mut done = false;
    move |t, frame| {
        if t.from_a && t.name == "Entries" && !done {
            done = true;
            return Some(with(frame));
        }
        Some(frame)
    }
}

/// A CBOR head of major type `major` for `n`, shortest form.
fn head(major: u8, n: u64) -> Vec<u8> {
    let m = major << 5;
    match n {
        0..=23 => vec![m | n as u8],
        24..=0xff => vec![m | 24, n as u8],
        0x100..=0xffff => [vec![m | 25], (n as u16).to_be_bytes().to_vec()].concat(),
        0x1_0000..=0xffff_ffff => [vec![m | 26], (n as u32).to_be_bytes().to_vec()].concat(),
        _ => [vec![m | 27], n.to_be_bytes().to_vec()].concat(),
    }
}

/// `[8, 1, length, data]`.
fn envelope(length: u64, data: &[u8]) -> Vec<u8> {
    [
        vec![0x84, 0x08, 0x01],
        head(0, length),
        head(2, data.len() as u64),
        data.to_vec(),
    ]
    .concat()
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(bytes.len() + 1024);
    c.compress_vec(bytes, &mut out, FlushCompress::Finish)
        .unwrap();
    assert_eq!(c.total_in() as usize, bytes.len());
    out
}

fn one_way(link: impl FnMut(&Transmitted, Vec<u8>) -> Option<Vec<u8>> + 'static) -> Scenario {
    scenario(
        Side::node(&ann()).holding(&chain(&ann(), 600, |i| media(i, 200))),
        Side::node(&ben()),
    )
    .link(link)
}

const CLOSED_BY_B: &str = "
    a: Closed 600 entries | closed(CODE, remote)
    b: Closed 0 entries | closed(CODE, local)
    a>b: Hello Heads Certificates Entriesx2 CaughtUp
    b>a: Hello Heads CaughtUp Close
";

fn closed_by_b(code: &str) -> String {
    CLOSED_BY_B.replace("CODE", code)
}

/// Four times the frame limit of zeros, in a few kilobytes: refused at
/// the limit (or at the length the envelope declares), never inflated.
#[test]
fn a_decompression_bomb_is_refused_as_too_large() {
    let bomb = deflate(&vec![0u8; 4 * MAX_MESSAGE_BYTES]);
    assert!(bomb.len() < 8 * 1024, "{}", bomb.len());
    // Declaring what it inflates to: over the limit, refused unopened.
    let declared = bomb.clone();
    check(
        one_way(first_batch_from_a(move |_| {
            envelope(4 * MAX_MESSAGE_BYTES as u64, &declared)
        })),
        &closed_by_b("TooLarge"),
    );
    // Declaring the frame it replaces: inflating stops at that length.
    check(
        one_way(first_batch_from_a(move |frame| {
            envelope(frame.len() as u64, &bomb)
        })),
        &closed_by_b("TooLarge"),
    );
    // Directly: the declared length bounds the buffer.
    let small = deflate(&vec![0u8; 4 * MAX_MESSAGE_BYTES]);
    assert!(matches!(
        compress::open(&envelope(1000, &small), DEFLATE),
        Err(sentinel_sync::MessageError::TooLarge {
            len: 1001,
            max: 1000
        })
    ));
}

#[test]
fn a_corrupt_compressed_frame_is_refused_as_malformed() {
    // The stream cut in half: it ends early.
    check(
        one_way(first_batch_from_a(|frame| {
            let sealed = Sealer::deflate().seal(frame.clone());
            assert!(is_envelope(&sealed));
            let data = deflate(&frame);
            envelope(frame.len() as u64, &data[..data.len() / 2])
        })),
        &closed_by_b("Malformed"),
    );
    // Not DEFLATE at all (block type 3 is reserved).
    check(
        one_way(first_batch_from_a(|frame| {
            envelope(frame.len() as u64, &[0xff; 64])
        })),
        &closed_by_b("Malformed"),
    );
    // A length that is not what the stream inflates to.
    check(
        one_way(first_batch_from_a(|frame| {
            envelope(frame.len() as u64 + 10, &deflate(&frame))
        })),
        &closed_by_b("Malformed"),
    );
    // An envelope inside an envelope.
    check(
        one_way(first_batch_from_a(|frame| {
            let inner = envelope(frame.len() as u64, &deflate(&frame));
            envelope(inner.len() as u64, &deflate(&inner))
        })),
        &closed_by_b("Malformed"),
    );
}

#[test]
fn an_envelope_the_receiver_did_not_announce_is_refused() {
    let (ann_log, _) = logs();
    check(
        scenario(
            Side::node(&ann()).holding(&ann_log[..600]),
            Side::node(&ben()).announcing(PLAIN),
        )
        .link(first_batch_from_a(|frame| {
            envelope(frame.len() as u64, &deflate(&frame))
        })),
        &closed_by_b("Malformed"),
    );
}
