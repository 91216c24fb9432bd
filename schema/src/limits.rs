//! Every size cap the format enforces, in one place, so that
//! `docs/protocol.md` and the decoders cannot drift apart.

/// Largest frame any decoder accepts, and the largest signed entry.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;
/// Largest signed entry, in bytes (the whole encoding, signature included).
pub const MAX_ENTRY_BYTES: usize = MAX_FRAME_BYTES;
/// Largest sensor push body over HTTP (`docs/protocol.md` 3.5).
pub const MAX_PUSH_BYTES: usize = 1024 * 1024;
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
/// Most authors one hub checkpoint lists (a head is 77 bytes on the wire,
/// so a full checkpoint stays well inside [`MAX_ENTRY_BYTES`]).
pub const MAX_CHECKPOINT_HEADS: usize = 10_000;
/// Most values, and most blobs, one redaction erases.
pub const MAX_REDACTED_ITEMS: usize = 64;
/// Longest revocation or redaction reason, in UTF-8 bytes.
pub const MAX_REASON_BYTES: usize = 256;
/// Longest event title, in UTF-8 bytes, after trimming surrounding
/// whitespace.
pub const MAX_TITLE_BYTES: usize = 200;
/// Longest event description, in UTF-8 bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 10_000;
/// Longest event category, in UTF-8 bytes.
pub const MAX_CATEGORY_BYTES: usize = 64;
/// Lowest event severity.
pub const MIN_SEVERITY: u8 = 1;
/// Highest event severity.
pub const MAX_SEVERITY: u8 = 5;
/// Longest note on an event, in UTF-8 bytes.
pub const MAX_NOTE_BYTES: usize = 5_000;
/// Longest assignee, in UTF-8 bytes. An assignee is a person, the same
/// namespace as an entry's actor, so the same cap.
pub const MAX_ASSIGNEE_BYTES: usize = MAX_ACTOR_BYTES;
