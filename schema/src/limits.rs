//! Every size cap the format enforces, in one place, so that
//! `docs/protocol.md` and the decoders cannot drift apart.

/// Largest frame any decoder accepts, and the largest signed entry.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;
/// Largest signed entry, in bytes (the whole encoding, signature included).
pub const MAX_ENTRY_BYTES: usize = MAX_FRAME_BYTES;
/// Deepest CBOR nesting accepted by [`crate::cbor::check_well_formed`].
pub const MAX_NESTING: usize = 64;
/// Longest actor (person) identifier, in UTF-8 bytes.
pub const MAX_ACTOR_BYTES: usize = 128;
/// Longest media file name, in UTF-8 bytes.
pub const MAX_NAME_BYTES: usize = 255;
/// Largest media blob an entry may announce.
pub const MAX_MEDIA_BYTES: u64 = 64 * 1024 * 1024;
/// Longest sensor or value kind, in UTF-8 bytes.
pub const MAX_KIND_BYTES: usize = 64;
/// Longest unit, in UTF-8 bytes.
pub const MAX_UNIT_BYTES: usize = 32;
/// Most values in one sensor reading.
pub const MAX_READING_VALUES: usize = 32;
/// Longest revocation reason, in UTF-8 bytes.
pub const MAX_REASON_BYTES: usize = 256;
