//! Errors, one enum per operation. Tests assert on exact variants.

use crate::ids::{AuthorId, EntryId};

/// Why bytes are not a well-formed entry. Decoding never panics; every
/// malformed input maps to one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is larger than the format allows.
    #[error("{len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    /// The input ends before a declared item does.
    #[error("input ends early (item at byte {at})")]
    Truncated { at: usize },
    /// Not CBOR of the subset Sentinel uses.
    #[error("malformed CBOR at byte {at}: {what}")]
    Malformed { at: usize, what: &'static str },
    /// Nesting deeper than allowed.
    #[error("nesting deeper than {max}")]
    TooDeep { max: usize },
    /// Bytes left over after the item.
    #[error("trailing bytes after the item, from byte {at}")]
    TrailingBytes { at: usize },
    /// A field has the wrong CBOR type.
    #[error("field `{field}` at byte {at}: expected {expected}")]
    WrongType {
        at: usize,
        field: &'static str,
        expected: &'static str,
    },
    /// An array has the wrong number of elements.
    #[error("field `{field}` has {len} elements, expected {expected}")]
    WrongLength {
        field: &'static str,
        len: usize,
        expected: usize,
    },
    /// A value is outside what the field allows.
    #[error("field `{field}` out of range: {what}")]
    OutOfRange { field: &'static str, what: String },
    /// The entry format version is not one this code reads.
    #[error("unsupported entry format version {0}")]
    UnsupportedVersion(u64),
    /// The body kind number is not known.
    #[error("unknown body kind {0}")]
    UnknownBodyKind(u64),
    /// The bytes decode, but are not the one deterministic encoding of
    /// their value, so the entry could exist under two ids.
    #[error("not the deterministic encoding of the entry")]
    NonCanonical,
}

/// Why an entry's signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The author field is not a usable ed25519 public key (not a curve
    /// point, or of small order).
    #[error("author {0} is not a valid ed25519 key")]
    BadAuthorKey(AuthorId),
    /// The signature does not verify under the author's key.
    #[error("bad signature on entry {author} #{seq}")]
    BadSignature { author: AuthorId, seq: u64 },
}

/// Why a chain of one author's entries is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainFault {
    #[error("bad signature")]
    BadSignature,
    #[error("author key is not a valid ed25519 key")]
    BadAuthorKey,
    #[error("entry belongs to another author")]
    WrongAuthor,
    #[error("first entry has seq {0}, expected 1")]
    NotStartingAtOne(u64),
    #[error("seq gap: expected {expected}, found {found}")]
    Gap { expected: u64, found: u64 },
    #[error("prev does not match the previous entry ({expected})")]
    WrongPrev { expected: EntryId },
    #[error("fork: two different entries at this seq ({other})")]
    Fork { other: EntryId },
    #[error("same entry twice")]
    Duplicate,
}

/// The first bad entry of a chain, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {}… #{seq} (id {}…): {fault}", author.short(), id.short())]
pub struct ChainError {
    pub author: AuthorId,
    pub seq: u64,
    pub id: EntryId,
    /// Position of the entry in the slice that was checked.
    pub index: usize,
    pub fault: ChainFault,
}

/// Why a remote clock reading is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClockError {
    #[error(
        "remote clock {remote_ms} ms is more than {max_drift_ms} ms ahead of local {now_ms} ms"
    )]
    TooFarAhead {
        remote_ms: u64,
        now_ms: u64,
        max_drift_ms: u64,
    },
    #[error("clock counter overflow")]
    CounterOverflow,
}

impl DecodeError {
    /// The stable snake_case name of the variant, used in test vectors,
    /// quarantine reasons and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::Malformed { .. } => "malformed",
            DecodeError::TooDeep { .. } => "too_deep",
            DecodeError::TrailingBytes { .. } => "trailing_bytes",
            DecodeError::WrongType { .. } => "wrong_type",
            DecodeError::WrongLength { .. } => "wrong_length",
            DecodeError::OutOfRange { .. } => "out_of_range",
            DecodeError::UnsupportedVersion(_) => "unsupported_version",
            DecodeError::UnknownBodyKind(_) => "unknown_body_kind",
            DecodeError::NonCanonical => "non_canonical",
        }
    }
}

impl VerifyError {
    /// The stable snake_case name of the variant.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::BadAuthorKey(_) => "bad_author_key",
            VerifyError::BadSignature { .. } => "bad_signature",
        }
    }
}

impl ChainFault {
    /// The stable snake_case name of the variant.
    pub fn code(&self) -> &'static str {
        match self {
            ChainFault::BadSignature => "bad_signature",
            ChainFault::BadAuthorKey => "bad_author_key",
            ChainFault::WrongAuthor => "wrong_author",
            ChainFault::NotStartingAtOne(_) => "not_starting_at_one",
            ChainFault::Gap { .. } => "gap",
            ChainFault::WrongPrev { .. } => "wrong_prev",
            ChainFault::Fork { .. } => "fork",
            ChainFault::Duplicate => "duplicate",
        }
    }
}
