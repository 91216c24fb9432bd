//! Decoding a frame from a peer: size, well-formedness, then the message
//! with a cap on every count.

use sentinel_schema::cbor::{check_well_formed, WellFormedLimits};
use sentinel_schema::limits::{MAX_ENTRY_BYTES, MAX_FRAME_BYTES, MAX_NESTING};
use sentinel_schema::{AuthorId, EntryId, Head};

use super::{
    kind, role_from_wire, CloseCode, Frame, Hello, Message, MessageError, HEAD_RECORD_BYTES,
    MAX_BATCH_ENTRIES, MAX_CERTIFICATES_PER_MESSAGE, MAX_CERTIFICATE_BYTES, MAX_CLOSE_REASON_BYTES,
    MAX_HEADS_PER_MESSAGE, MAX_HELLO_FIELDS, MAX_MESSAGE_BYTES,
};
use crate::cbor::Reader;
use crate::message::FrameEncodings;

/// Decodes one frame from a peer.
pub fn decode(frame: &[u8]) -> Result<Frame, MessageError> {
    if frame.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::TooLarge {
            len: frame.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    let limits = WellFormedLimits {
        max_bytes: MAX_MESSAGE_BYTES,
        max_depth: MAX_NESTING,
    };
    check_well_formed(frame, limits).map_err(MessageError::NotWellFormed)?;
    let mut r = Reader::new(frame);
    let n_items = r.array("message", 2, 2 + MAX_HELLO_FIELDS)?;
    let kind = r.uint("type")?;
    let number = r.uint("frame number")?;
    let fields = |expected: usize| {
        if n_items == 2 + expected {
            Ok(())
        } else {
            Err(MessageError::OutOfRange {
                field: "message",
                what: format!("{n_items} items, expected {}", 2 + expected),
            })
        }
    };
    let message = match kind {
        kind::HELLO => {
            // 6 fields (a peer that predates frame encodings), 7 (with
            // them), or more: fields after the 7th are a later version's,
            // skipped unread (their heads still checked).
            if n_items < 2 + 6 {
                fields(6)?;
            }
            let version = r.uint("version")?;
            let version = u16::try_from(version).map_err(|_| MessageError::OutOfRange {
                field: "version",
                what: format!("{version} exceeds 65535"),
            })?;
            let mut hello = Hello {
                version,
                role: role_from_wire(r.uint("role")?)?,
                heads_digest: r.fixed("heads_digest")?,
                n_authors: r.uint("n_authors")?,
                n_entries: r.uint("n_entries")?,
                revocation_number: r.uint("revocation_number")?,
                frame_encodings: FrameEncodings::NONE,
            };
            if n_items > 2 + 6 {
                hello.frame_encodings = FrameEncodings(r.uint("frame_encodings")?);
            }
            for _ in 2 + 7..n_items {
                r.skip("hello field of a later version")?;
            }
            Message::Hello(hello)
        }
        kind::HEADS => {
            fields(2)?;
            let last = match r.uint("last")? {
                0 => false,
                1 => true,
                n => {
                    return Err(MessageError::OutOfRange {
                        field: "last",
                        what: format!("{n}, expected 0 or 1"),
                    })
                }
            };
            let heads = read_heads(&mut r, "heads", false)?;
            Message::Heads { heads, last }
        }
        kind::CERTIFICATES => {
            fields(1)?;
            let n = r.array("certificates", 1, MAX_CERTIFICATES_PER_MESSAGE)?;
            let mut certs = Vec::with_capacity(n);
            for _ in 0..n {
                r.array("certificate", 2, 2)?;
                let author = AuthorId(r.fixed("certificate.author")?);
                let der = r.bytes("certificate.der", 1, MAX_CERTIFICATE_BYTES)?;
                certs.push((author, der.to_vec()));
            }
            Message::Certificates(certs)
        }
        kind::ENTRIES => {
            fields(1)?;
            let n = r.array("entries", 1, MAX_BATCH_ENTRIES)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                entries.push(r.bytes("entry", 1, MAX_ENTRY_BYTES)?.to_vec());
            }
            Message::Entries(entries)
        }
        kind::ACK => {
            fields(1)?;
            Message::Ack(read_heads(&mut r, "ack", true)?)
        }
        kind::CAUGHT_UP => {
            fields(0)?;
            Message::CaughtUp
        }
        kind::REVOCATION_LIST => {
            fields(1)?;
            Message::RevocationList(r.bytes("revocation_list", 1, MAX_FRAME_BYTES)?.to_vec())
        }
        kind::CLOSE => {
            fields(2)?;
            let code = CloseCode::from_wire(r.uint("code")?);
            let reason = r.text("reason", MAX_CLOSE_REASON_BYTES)?.to_owned();
            Message::Close { code, reason }
        }
        kind::ENCODED => {
            // Envelopes are opened before decoding (`crate::compress::open`);
            // one here was inside another, or was never opened.
            return Err(MessageError::OutOfRange {
                field: "type",
                what: "an Encoded envelope where a plain frame belongs".to_owned(),
            });
        }
        other => return Err(MessageError::UnknownType(other)),
    };
    if !r.is_empty() {
        return Err(MessageError::TrailingBytes { at: r.position() });
    }
    Ok(Frame { number, message })
}

/// Packed head records, authors strictly ascending. In an `Ack` a record
/// may say "none held" (seq 0, all-zero id); in `Heads` every seq is ≥ 1.
fn read_heads(
    r: &mut Reader<'_>,
    field: &'static str,
    allow_none: bool,
) -> Result<Vec<(AuthorId, Head)>, MessageError> {
    let packed = r.bytes(field, 0, MAX_HEADS_PER_MESSAGE * HEAD_RECORD_BYTES)?;
    if packed.len() % HEAD_RECORD_BYTES != 0 {
        return Err(MessageError::OutOfRange {
            field,
            what: format!(
                "{} bytes is not a multiple of {HEAD_RECORD_BYTES}",
                packed.len()
            ),
        });
    }
    let mut heads: Vec<(AuthorId, Head)> = Vec::with_capacity(packed.len() / HEAD_RECORD_BYTES);
    for record in packed.chunks_exact(HEAD_RECORD_BYTES) {
        let mut author = [0u8; 32];
        let mut seq = [0u8; 8];
        let mut id = [0u8; 32];
        author.copy_from_slice(&record[..32]);
        seq.copy_from_slice(&record[32..40]);
        id.copy_from_slice(&record[40..]);
        let (author, seq, id) = (AuthorId(author), u64::from_be_bytes(seq), EntryId(id));
        if seq == 0 && !(allow_none && id == EntryId([0; 32])) {
            return Err(MessageError::OutOfRange {
                field,
                what: format!("head of {author} has seq 0"),
            });
        }
        if heads.last().is_some_and(|(prev, _)| *prev >= author) {
            return Err(MessageError::OutOfRange {
                field,
                what: "authors are not in strictly ascending order".to_owned(),
            });
        }
        heads.push((author, Head { seq, id }));
    }
    Ok(heads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::PROTOCOL_VERSION;
    use proptest::prelude::*;
    use sentinel_schema::DeviceRole;

    fn round_trip(m: Message) {
        let bytes = m.encode(7);
        assert_eq!(
            decode(&bytes),
            Ok(Frame {
                number: 7,
                message: m
            })
        );
    }

    #[test]
    fn every_message_round_trips() {
        let head = |a: u8, seq| {
            (
                AuthorId([a; 32]),
                Head {
                    seq,
                    id: EntryId([a ^ 0xff; 32]),
                },
            )
        };
        round_trip(Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            role: DeviceRole::Sensor,
            heads_digest: [3; 32],
            n_authors: u64::MAX,
            n_entries: 9,
            revocation_number: 2,
            frame_encodings: FrameEncodings::NONE,
        }));
        round_trip(Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            role: DeviceRole::Node,
            heads_digest: [3; 32],
            n_authors: 1,
            n_entries: 9,
            revocation_number: 0,
            frame_encodings: FrameEncodings(FrameEncodings::DEFLATE.0 | 1 << 40),
        }));
        round_trip(Message::Heads {
            heads: vec![head(1, 5), head(2, 1)],
            last: true,
        });
        round_trip(Message::Heads {
            heads: vec![],
            last: false,
        });
        round_trip(Message::Certificates(vec![(
            AuthorId([4; 32]),
            vec![1, 2, 3],
        )]));
        round_trip(Message::Entries(vec![vec![0x80], vec![7; 300]]));
        round_trip(Message::Ack(vec![
            head(1, 9),
            (
                AuthorId([2; 32]),
                Head {
                    seq: 0,
                    id: EntryId([0; 32]),
                },
            ),
        ]));
        round_trip(Message::CaughtUp);
        round_trip(Message::RevocationList(vec![9; 40]));
        round_trip(Message::Close {
            code: CloseCode::Other(99),
            reason: "bye".into(),
        });
    }

    #[test]
    fn caps_and_order_are_enforced() {
        let unsorted = Message::Heads {
            heads: vec![
                (
                    AuthorId([2; 32]),
                    Head {
                        seq: 1,
                        id: EntryId([0; 32]),
                    },
                ),
                (
                    AuthorId([1; 32]),
                    Head {
                        seq: 1,
                        id: EntryId([0; 32]),
                    },
                ),
            ],
            last: true,
        };
        assert!(matches!(
            decode(&unsorted.encode(1)),
            Err(MessageError::OutOfRange { field: "heads", .. })
        ));
        let zero = Message::Heads {
            heads: vec![(
                AuthorId([2; 32]),
                Head {
                    seq: 0,
                    id: EntryId([0; 32]),
                },
            )],
            last: true,
        };
        assert!(matches!(
            decode(&zero.encode(1)),
            Err(MessageError::OutOfRange { field: "heads", .. })
        ));
        let empty_batch = Message::Entries(vec![]).encode(1);
        assert!(matches!(
            decode(&empty_batch),
            Err(MessageError::OutOfRange {
                field: "entries",
                ..
            })
        ));
        assert!(matches!(
            decode(&vec![0u8; MAX_MESSAGE_BYTES + 1]),
            Err(MessageError::TooLarge { .. })
        ));
        // [9, 0]: an unknown type (8 is the envelope of a compressed
        // frame, refused here too: see `an_envelope_is_never_a_message`).
        assert_eq!(
            decode(&[0x82, 0x09, 0x00]),
            Err(MessageError::UnknownType(9))
        );
        // A map is well-formed CBOR but not a message.
        assert!(matches!(
            decode(&[0xa0]),
            Err(MessageError::WrongType { .. })
        ));
        let long = "é".repeat(200);
        let close = Message::Close {
            code: CloseCode::Normal,
            reason: long,
        };
        let Ok(Frame {
            message: Message::Close { reason, .. },
            ..
        }) = decode(&close.encode(0))
        else {
            panic!("close does not round trip");
        };
        assert_eq!(reason.len(), MAX_CLOSE_REASON_BYTES);
    }

    /// A Hello without encodings is the 6-field Hello of before; one with
    /// fields a later version adds decodes, the extra fields skipped; one
    /// with fewer than 6 does not.
    #[test]
    fn hello_fields_old_new_and_later() {
        let hello = Hello {
            version: PROTOCOL_VERSION,
            role: DeviceRole::Hub,
            heads_digest: [5; 32],
            n_authors: 2,
            n_entries: 4,
            revocation_number: 7,
            frame_encodings: FrameEncodings::NONE,
        };
        let old = Message::Hello(hello).encode(0);
        assert_eq!(old[0], 0x88, "6 fields, as before encodings");
        let with = Hello {
            frame_encodings: FrameEncodings::DEFLATE,
            ..hello
        };
        let new = Message::Hello(with).encode(0);
        assert_eq!(new[0], 0x89);
        assert_eq!(new[..new.len() - 1][1..], old[1..]);
        assert_eq!(*new.last().unwrap(), 0x02);
        // A later version's Hello: two more fields, an array and a text.
        let mut later = new.clone();
        later[0] = 0x8b;
        later.extend_from_slice(&[0x82, 0x01, 0x41, 0xff, 0x62, b'h', b'i']);
        assert_eq!(
            decode(&later),
            Ok(Frame {
                number: 0,
                message: Message::Hello(with)
            })
        );
        // Declared fields that are not there.
        let mut short = later.clone();
        short.truncate(short.len() - 3);
        assert!(decode(&short).is_err());
        let mut five = old.clone();
        five[0] = 0x87;
        five.pop();
        assert!(decode(&five).is_err());
        // Beyond the cap of fields.
        let mut many = new.clone();
        many[0] = 0x80 + 2 + MAX_HELLO_FIELDS as u8 + 1;
        many.extend(std::iter::repeat_n(0, MAX_HELLO_FIELDS - 6));
        assert!(matches!(
            decode(&many),
            Err(MessageError::OutOfRange {
                field: "message",
                ..
            })
        ));
    }

    #[test]
    fn an_envelope_is_never_a_message() {
        // [8, 1, 1, h'00']: an envelope given to the plain decoder.
        assert!(matches!(
            decode(&[0x84, 0x08, 0x01, 0x01, 0x41, 0x00]),
            Err(MessageError::OutOfRange { field: "type", .. })
        ));
    }

    #[test]
    fn close_codes_round_trip() {
        for n in 0..20 {
            assert_eq!(CloseCode::from_wire(n).to_wire(), n);
        }
    }

    proptest! {
        #[test]
        fn decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn a_flipped_bit_never_panics_and_never_passes_unnoticed_in_hello(
            byte in 0usize..60, bit in 0u8..8
        ) {
            let hello = Message::Hello(Hello {
                version: PROTOCOL_VERSION,
                role: DeviceRole::Node,
                heads_digest: [7; 32],
                n_authors: 3,
                n_entries: 9,
                revocation_number: 1,
                frame_encodings: FrameEncodings::DEFLATE,
            });
            let mut bytes = hello.encode(0);
            let i = byte % bytes.len();
            bytes[i] ^= 1 << bit;
            if let Ok(frame) = decode(&bytes) {
                prop_assert_ne!(frame, Frame { number: 0, message: hello });
            }
        }

        #[test]
        fn heads_round_trip(raw in prop::collection::btree_map(any::<[u8; 32]>(), (1u64..u64::MAX, any::<[u8; 32]>()), 0..50)) {
            let heads: Vec<(AuthorId, Head)> = raw
                .into_iter()
                .map(|(a, (seq, id))| (AuthorId(a), Head { seq, id: EntryId(id) }))
                .collect();
            let m = Message::Heads { heads, last: false };
            prop_assert_eq!(decode(&m.encode(3)), Ok(Frame { number: 3, message: m }));
        }
    }
}
