//! The test vectors of `docs/protocol.md` part 2 are what the code encodes
//! and decodes: a test fails when the two drift apart.

use sentinel_schema::{AuthorId, DeviceRole, EntryId, Head, Heads};
use sentinel_sync::compress;
use sentinel_sync::message::{
    self, encode_entries, CloseCode, Frame, FrameEncodings, Hello, Message,
};

/// Every vector: a name, the frame number and the message.
fn vectors() -> Vec<(&'static str, u64, Message)> {
    let head = |a: u8, seq: u64, id: u8| {
        (
            AuthorId([a; 32]),
            Head {
                seq,
                id: EntryId([id; 32]),
            },
        )
    };
    let heads: Heads = [head(0x11, 3, 0xaa), head(0x22, 1, 0xbb)]
        .into_iter()
        .collect();
    vec![
        (
            "hello-empty",
            0,
            Message::Hello(Hello {
                version: 1,
                role: DeviceRole::Node,
                heads_digest: Heads::new().digest(),
                n_authors: 0,
                n_entries: 0,
                revocation_number: 0,
                frame_encodings: FrameEncodings::NONE,
            }),
        ),
        (
            "hello",
            0,
            Message::Hello(Hello {
                version: 1,
                role: DeviceRole::Hub,
                heads_digest: heads.digest(),
                n_authors: 2,
                n_entries: 4,
                revocation_number: 7,
                frame_encodings: FrameEncodings::NONE,
            }),
        ),
        (
            "hello-deflate",
            0,
            Message::Hello(Hello {
                version: 1,
                role: DeviceRole::Node,
                heads_digest: Heads::new().digest(),
                n_authors: 0,
                n_entries: 0,
                revocation_number: 0,
                frame_encodings: FrameEncodings::DEFLATE,
            }),
        ),
        (
            "heads",
            1,
            Message::Heads {
                heads: vec![head(0x11, 3, 0xaa), head(0x22, 1, 0xbb)],
                last: true,
            },
        ),
        ("ack", 2, Message::Ack(vec![head(0x11, 3, 0xaa)])),
        ("caught-up", 4, Message::CaughtUp),
        (
            "close",
            5,
            Message::Close {
                code: CloseCode::OutOfOrder,
                reason: "bye".into(),
            },
        ),
    ]
}

fn hex_of(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// The doc's hex blocks, with whitespace removed.
fn doc_hex() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let part2 = doc
        .split("## Part 2")
        .nth(1)
        .expect("docs/protocol.md has a part 2");
    part2.split_whitespace().collect()
}

#[test]
fn protocol_doc_vectors_are_what_the_code_does() {
    let doc = doc_hex();
    let mut missing = Vec::new();
    for (name, number, message) in vectors() {
        let bytes = message.encode(number);
        assert_eq!(
            message::decode(&bytes),
            Ok(Frame { number, message }),
            "{name}"
        );
        let hex = hex_of(&bytes);
        if !doc.contains(&hex) {
            missing.push(format!("{name}: {hex}"));
        }
    }
    // An Entries frame's own bytes around one 172-byte entry (like the
    // `alice-1` vector of part 1): everything before the entry.
    let entry = vec![0x82; 172];
    let frame = encode_entries(3, std::iter::once(entry.as_slice()));
    let prefix = hex_of(&frame[..frame.len() - 172]);
    if !doc.contains(&format!("{prefix}<")) {
        missing.push(format!("entries prefix: {prefix}"));
    }
    assert!(
        missing.is_empty(),
        "vectors missing from docs/protocol.md part 2:\n{}",
        missing.join("\n")
    );
    let hello = vectors()[0].2.encode(0);
    assert!(hello.len() <= 256);
}

/// The `encoded` vector of 2.8: the plain frame is what the code encodes,
/// the envelope opens to exactly it, and only where DEFLATE was announced.
#[test]
fn the_encoded_vector_opens_to_its_plain_frame() {
    let doc = doc_hex();
    let mut first = vec![0x11; 32];
    first.extend_from_slice(b"first");
    let mut second = vec![0x11; 32];
    second.extend_from_slice(b"second");
    let plain = encode_entries(3, [first.as_slice(), second.as_slice()].into_iter());
    assert_eq!(plain.len(), 83);
    assert!(doc.contains(&hex_of(&plain)), "plain: {}", hex_of(&plain));
    let sealed = "8408011853581b6b66666e8a50152400d2328b8a4b22d408a8122c4e4dcecf4b0100";
    assert!(doc.contains(sealed));
    let sealed = hex::decode(sealed).unwrap();
    let opened = compress::open(&sealed, FrameEncodings::DEFLATE).unwrap();
    assert_eq!(&*opened, plain.as_slice());
    assert_eq!(
        message::decode(&opened),
        Ok(Frame {
            number: 3,
            message: Message::Entries(vec![first, second])
        })
    );
    assert!(compress::open(&sealed, FrameEncodings::NONE).is_err());
}
