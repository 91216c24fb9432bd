//! The wire messages of a sync session and their byte-exact encoding
//! (`docs/protocol.md`, part 2).
//!
//! Every frame is one CBOR array in the deterministic subset of part 1:
//! `[type, frame number, fields…]`. Entries travel as their exact signed
//! bytes inside byte strings, so the wire adds a few bytes per entry and
//! nothing is re-encoded (invariant 1). Heads travel packed: 72 bytes per
//! author in one byte string, not one array per author.
//!
//! A frame may travel compressed, in an `Encoded` envelope that opens to
//! exactly these bytes, once both `Hello`s announced the encoding
//! ([`FrameEncodings`]; sealing and opening are [`crate::compress`]'s).
//!
//! Decoding checks the size, then runs
//! [`sentinel_schema::cbor::check_well_formed`] (nesting and every declared
//! length), then reads the message with explicit caps on every count.

use sentinel_schema::limits::MAX_FRAME_BYTES;
use sentinel_schema::{AuthorId, DeviceRole, Head};

use crate::cbor::{head_len, Writer};
pub use crate::message_error::MessageError;

mod decode;

pub use decode::decode;

/// The protocol version this code speaks, sent in [`Hello`].
pub const PROTOCOL_VERSION: u16 = 1;
/// Room for the framing around one entry of the largest allowed size
/// ([`sentinel_schema::limits::MAX_ENTRY_BYTES`] equals [`MAX_FRAME_BYTES`]): array and type heads,
/// a frame number of up to 9 bytes and the entry's byte-string head.
pub const FRAME_SLACK: usize = 32;
/// The largest frame a decoder accepts: 1 MiB plus [`FRAME_SLACK`], so an
/// entry of the largest legal size can still travel (alone). Batches of
/// several entries are kept within [`MAX_FRAME_BYTES`] by the sender.
pub const MAX_MESSAGE_BYTES: usize = MAX_FRAME_BYTES + FRAME_SLACK;
/// Bytes per packed head record: author (32) ‖ seq (8, big-endian) ‖ id (32).
pub const HEAD_RECORD_BYTES: usize = 72;
/// Most head records in one `Heads` or `Ack` frame (14,000 × 72 B =
/// 1,008,000 B, inside a frame). More authors take several `Heads` frames.
pub const MAX_HEADS_PER_MESSAGE: usize = 14_000;
/// Most entries in one `Entries` frame (one batch).
pub const MAX_BATCH_ENTRIES: usize = 1024;
/// Most certificates in one `Certificates` frame.
pub const MAX_CERTIFICATES_PER_MESSAGE: usize = 1024;
/// Largest certificate, in bytes (ed25519 X.509 certificates are ~500 B).
pub const MAX_CERTIFICATE_BYTES: usize = 16 * 1024;
/// Longest close reason, in UTF-8 bytes.
pub const MAX_CLOSE_REASON_BYTES: usize = 256;
/// Most fields a `Hello` may carry after `type, number`: the 6 of the
/// first version, frame encodings, and room for fields later versions
/// add, which this code skips (`docs/protocol.md` 2.3).
pub const MAX_HELLO_FIELDS: usize = 16;
/// Most authors a peer may announce: in its Hello's `n_authors`, and in
/// all its `Heads` frames together. An author is a device (hub, node or
/// sensor), so this is ten times the largest deployment a hub checkpoint
/// can attest in one entry ([`sentinel_schema::limits::MAX_CHECKPOINT_HEADS`]),
/// and a receiver holds at most 7.2 MB of one peer's heads. A peer that
/// announces more is closed with [`CloseCode::LimitExceeded`] before the
/// receiver holds them (`docs/protocol.md` 2.2).
pub const MAX_AUTHORS: usize = 100_000;

/// The frame encodings a peer accepts besides plain frames, as its
/// [`Hello`] announces them: bit `k` set for encoding number `k` (bit 1:
/// DEFLATE, [`crate::compress::ENCODING_DEFLATE`]). A sender seals frames
/// only in an encoding both `Hello`s announced; bits this code does not
/// know are kept but never used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FrameEncodings(pub u64);

impl FrameEncodings {
    /// Plain frames only: what a peer whose `Hello` has no such field
    /// (one that predates frame encodings) accepts.
    pub const NONE: FrameEncodings = FrameEncodings(0);
    /// DEFLATE ([`crate::compress::ENCODING_DEFLATE`]).
    pub const DEFLATE: FrameEncodings = FrameEncodings(1 << 1);

    /// Whether encoding number `encoding` is in the set.
    pub fn contains(self, encoding: u64) -> bool {
        encoding < 64 && self.0 & (1 << encoding) != 0
    }

    /// The encodings both sets hold.
    pub fn both(self, other: FrameEncodings) -> FrameEncodings {
        FrameEncodings(self.0 & other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// The first message each side sends: enough to tell in one round trip
/// whether the two stores already hold the same log. Its encoding is at
/// most 77 bytes whatever the number of authors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u16,
    /// The sender's role, as it claims it: the role its certificate says,
    /// or the receiver closes the session ([`CloseCode::RoleMismatch`]).
    /// The receiver decides on the certificate's role, never on this.
    pub role: DeviceRole,
    /// [`sentinel_schema::Heads::digest`] of the sender's heads.
    pub heads_digest: [u8; 32],
    /// Authors in the sender's heads (for progress and planning).
    pub n_authors: u64,
    /// Entries the sender holds (for progress).
    pub n_entries: u64,
    /// Number of the sender's revocation list; 0 when it has none.
    pub revocation_number: u64,
    /// The frame encodings the sender accepts. On the wire a 7th field,
    /// left out when empty, so a `Hello` without encodings is byte for
    /// byte what peers sent before encodings existed; a `Hello` without
    /// the field decodes as [`FrameEncodings::NONE`].
    pub frame_encodings: FrameEncodings,
}

/// Why a session was closed, sent in [`Message::Close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseCode {
    /// The driver ended the session; nothing went wrong.
    Normal,
    /// A frame is not a well-formed message.
    Malformed,
    /// A frame is larger than [`MAX_MESSAGE_BYTES`].
    TooLarge,
    /// A message that the current state does not allow.
    UnexpectedMessage,
    /// A frame's number is not the next one: a frame was dropped,
    /// duplicated or reordered on the way.
    OutOfOrder,
    /// The peer speaks a protocol version this code does not.
    UnsupportedVersion,
    /// An entry in a batch does not decode as a signed entry.
    BadEntry,
    /// A revocation list does not verify against the trust anchor.
    BadRevocationList,
    /// An `Ack` that matches no batch in flight.
    BadAck,
    /// The peer sent nothing for longer than the idle timeout while this
    /// side was waiting for it.
    Timeout,
    /// The peer exceeded a protocol limit (for example more authors in
    /// its heads than [`MAX_AUTHORS`]), or a server's limit on
    /// connections (one peer's sessions, all sessions) is reached.
    LimitExceeded,
    /// The local store failed; the session cannot go on.
    StoreFailed,
    /// The peer's Hello claims another role than its certificate says.
    /// Every decision about the peer is taken on its certificate's role;
    /// a peer that claims another is closed before it is sent anything.
    RoleMismatch,
    /// A code this version does not know (from a newer peer).
    Other(u64),
}

impl CloseCode {
    /// The number on the wire.
    pub fn to_wire(self) -> u64 {
        match self {
            CloseCode::Normal => 0,
            CloseCode::Malformed => 1,
            CloseCode::TooLarge => 2,
            CloseCode::UnexpectedMessage => 3,
            CloseCode::OutOfOrder => 4,
            CloseCode::UnsupportedVersion => 5,
            CloseCode::BadEntry => 6,
            CloseCode::BadRevocationList => 7,
            CloseCode::BadAck => 8,
            CloseCode::Timeout => 9,
            CloseCode::LimitExceeded => 10,
            CloseCode::StoreFailed => 11,
            CloseCode::RoleMismatch => 12,
            CloseCode::Other(n) => n,
        }
    }

    pub fn from_wire(n: u64) -> CloseCode {
        const KNOWN: [CloseCode; 13] = [
            CloseCode::Normal,
            CloseCode::Malformed,
            CloseCode::TooLarge,
            CloseCode::UnexpectedMessage,
            CloseCode::OutOfOrder,
            CloseCode::UnsupportedVersion,
            CloseCode::BadEntry,
            CloseCode::BadRevocationList,
            CloseCode::BadAck,
            CloseCode::Timeout,
            CloseCode::LimitExceeded,
            CloseCode::StoreFailed,
            CloseCode::RoleMismatch,
        ];
        KNOWN
            .into_iter()
            .find(|c| c.to_wire() == n)
            .unwrap_or(CloseCode::Other(n))
    }
}

/// One message of a sync session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Version, role and a digest of the heads; the first frame each way.
    Hello(Hello),
    /// Part of the sender's heads, authors in strictly ascending order
    /// across all `Heads` frames; `last` marks the final frame.
    Heads {
        heads: Vec<(AuthorId, Head)>,
        last: bool,
    },
    /// Certificates (DER) of authors whose entries follow and whom the
    /// receiver may not know.
    Certificates(Vec<(AuthorId, Vec<u8>)>),
    /// One batch: signed entries, each exactly as its author produced it.
    Entries(Vec<Vec<u8>>),
    /// The receiver's committed heads, after the batch was applied, for
    /// every author in the oldest unacknowledged batch, in ascending
    /// order. A head with seq 0 (and an all-zero id) means "none held".
    Ack(Vec<(AuthorId, Head)>),
    /// The sender has sent everything the receiver lacked (as of the
    /// heads exchange).
    CaughtUp,
    /// The sender's revocation list, as the CA signed it; sent by the side
    /// whose list has the higher number.
    RevocationList(Vec<u8>),
    /// The last frame of a session, with the reason.
    Close { code: CloseCode, reason: String },
}

/// A decoded frame: its number in the sender's stream, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub number: u64,
    pub message: Message,
}

// Here rather than with the error: the close codes are the messages'.
impl MessageError {
    /// The close code a session uses when a peer's frame fails to decode.
    pub fn close_code(&self) -> CloseCode {
        match self {
            MessageError::TooLarge { .. } => CloseCode::TooLarge,
            _ => CloseCode::Malformed,
        }
    }
}

pub(crate) mod kind {
    pub const HELLO: u64 = 0;
    pub const HEADS: u64 = 1;
    pub const CERTIFICATES: u64 = 2;
    pub const ENTRIES: u64 = 3;
    pub const ACK: u64 = 4;
    pub const CAUGHT_UP: u64 = 5;
    pub const REVOCATION_LIST: u64 = 6;
    pub const CLOSE: u64 = 7;
    /// The envelope of a compressed frame (`crate::compress`); never a
    /// message of its own.
    pub const ENCODED: u64 = 8;
}

fn role_to_wire(role: DeviceRole) -> u64 {
    match role {
        DeviceRole::Hub => 0,
        DeviceRole::Node => 1,
        DeviceRole::Sensor => 2,
    }
}

pub(crate) fn role_from_wire(n: u64) -> Result<DeviceRole, MessageError> {
    match n {
        0 => Ok(DeviceRole::Hub),
        1 => Ok(DeviceRole::Node),
        2 => Ok(DeviceRole::Sensor),
        _ => Err(MessageError::OutOfRange {
            field: "role",
            what: format!("unknown role {n}"),
        }),
    }
}

impl Message {
    /// The message's name, as in `docs/protocol.md`.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello(_) => "Hello",
            Message::Heads { .. } => "Heads",
            Message::Certificates(_) => "Certificates",
            Message::Entries(_) => "Entries",
            Message::Ack(_) => "Ack",
            Message::CaughtUp => "CaughtUp",
            Message::RevocationList(_) => "RevocationList",
            Message::Close { .. } => "Close",
        }
    }

    /// The frame carrying this message as frame `number` of its stream.
    pub fn encode(&self, number: u64) -> Vec<u8> {
        if let Message::Entries(entries) = self {
            return encode_entries(number, entries.iter().map(Vec::as_slice));
        }
        let mut w = Writer::with_capacity(64);
        let start = |w: &mut Writer, n_fields: usize, kind: u64| {
            w.array(2 + n_fields);
            w.uint(kind);
            w.uint(number);
        };
        match self {
            Message::Hello(h) => {
                let with_encodings = !h.frame_encodings.is_empty();
                start(&mut w, 6 + usize::from(with_encodings), kind::HELLO);
                w.uint(u64::from(h.version));
                w.uint(role_to_wire(h.role));
                w.bytes(&h.heads_digest);
                w.uint(h.n_authors);
                w.uint(h.n_entries);
                w.uint(h.revocation_number);
                if with_encodings {
                    w.uint(h.frame_encodings.0);
                }
            }
            Message::Heads { heads, last } => {
                start(&mut w, 2, kind::HEADS);
                w.uint(u64::from(*last));
                write_heads(&mut w, heads);
            }
            Message::Certificates(certs) => {
                start(&mut w, 1, kind::CERTIFICATES);
                w.array(certs.len());
                for (author, der) in certs {
                    w.array(2);
                    w.bytes(author.as_bytes());
                    w.bytes(der);
                }
            }
            // Encoded by `encode_entries` above.
            Message::Entries(_) => {}
            Message::Ack(heads) => {
                start(&mut w, 1, kind::ACK);
                write_heads(&mut w, heads);
            }
            Message::CaughtUp => start(&mut w, 0, kind::CAUGHT_UP),
            Message::RevocationList(bytes) => {
                start(&mut w, 1, kind::REVOCATION_LIST);
                w.bytes(bytes);
            }
            Message::Close { code, reason } => {
                start(&mut w, 2, kind::CLOSE);
                w.uint(code.to_wire());
                w.text(truncate(reason, MAX_CLOSE_REASON_BYTES));
            }
        }
        w.out
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char
/// boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn write_heads(w: &mut Writer, heads: &[(AuthorId, Head)]) {
    w.bytes_head(heads.len() * HEAD_RECORD_BYTES);
    for (author, head) in heads {
        w.out.extend_from_slice(author.as_bytes());
        w.out.extend_from_slice(&head.seq.to_be_bytes());
        w.out.extend_from_slice(head.id.as_bytes());
    }
}

/// An `Entries` frame holding `entries` (signed bytes, copied as they are).
pub fn encode_entries<'a>(
    number: u64,
    entries: impl ExactSizeIterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let n = entries.len();
    let mut w = Writer::with_capacity(entries_frame_base(number, n) + n * 400);
    w.array(3);
    w.uint(kind::ENTRIES);
    w.uint(number);
    w.array(n);
    for e in entries {
        w.bytes(e);
    }
    w.out
}

/// Bytes of an `Entries` frame numbered `number` with `n` entries, not
/// counting the entries themselves (see [`entry_wire_len`]).
pub fn entries_frame_base(number: u64, n: usize) -> usize {
    1 + 1 + head_len(number) + head_len(n as u64)
}

/// Bytes one entry of `len` bytes takes in an `Entries` frame.
pub fn entry_wire_len(len: usize) -> usize {
    head_len(len as u64) + len
}
