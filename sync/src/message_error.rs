//! [`MessageError`]: why bytes are not a valid sync frame or sensor push
//! body. Every decoder in this crate gives it, from the CBOR reader
//! ([`crate::cbor`]) up to whole messages ([`crate::message`]); it sits in
//! a file of its own so that both use it without using each other.
//!
//! Never does: decode anything, or decide how a session answers a bad
//! frame (that is [`MessageError::close_code`], with the close codes in
//! [`crate::message`]).

use sentinel_schema::DecodeError;

/// Why bytes are not a valid sync frame. Decoding never panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The frame is larger than [`crate::message::MAX_MESSAGE_BYTES`].
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    /// Not exactly one well-formed CBOR item within the nesting limit
    /// (found by the generic check that runs before decoding).
    #[error("not well-formed CBOR: {0}")]
    NotWellFormed(DecodeError),
    /// The input ends before a declared item does.
    #[error("`{field}` at byte {at} is truncated")]
    Truncated { at: usize, field: &'static str },
    /// A field has the wrong CBOR type.
    #[error("`{field}` at byte {at}: expected {expected}")]
    WrongType {
        at: usize,
        field: &'static str,
        expected: &'static str,
    },
    /// A head is longer than the shortest one for its value.
    #[error("`{field}` at byte {at} is not in the shortest encoding")]
    NonCanonical { at: usize, field: &'static str },
    /// A count, length or value outside what the field allows.
    #[error("`{field}` out of range: {what}")]
    OutOfRange { field: &'static str, what: String },
    /// The message type number is not known.
    #[error("unknown message type {0}")]
    UnknownType(u64),
    /// Bytes left over after the message.
    #[error("trailing bytes from byte {at}")]
    TrailingBytes { at: usize },
}
