//! Events (incidents) as Automerge documents: the document layout, the
//! edits a device may make locally, the status workflow those edits obey,
//! and the [`EventView`] materialised from a document.
//!
//! One event is one Automerge document. A local edit becomes exactly one
//! Automerge change, whose raw bytes travel in an [`crate::EventChange`]
//! entry body; applying those bytes on another device merges the edit. The
//! Automerge actor of every change is the 32 key bytes of the author that
//! made it, so a device keeps one stable actor across all its events.
//!
//! Layout (the root map; every field is a plain scalar, so concurrent
//! writes to one field are kept side by side as a *conflict* instead of
//! being merged character by character):
//!
//! | key | value |
//! |---|---|
//! | `title`, `description`, `category` | string |
//! | `severity` | int, 1..=5 |
//! | `status` | string, [`Status::as_str`] |
//! | `assignee` | string (absent until someone is assigned) |
//! | `lon`, `lat` | f64, always written together in one change |
//! | `reported_ms` | timestamp (Unix milliseconds) |
//! | `notes` | list of maps `{text: string, actor?: string, at_ms: timestamp}` |
//! | `media` | list of maps `{hash: 64 hex digits, mime, size: int, name}` |
//!
//! Local edits are validated and must follow the status workflow before
//! anything is written. Remote changes are merged as they come: the
//! workflow is a rule for what *this* device may do, not a filter on what
//! others did, because refusing a signed, verified change on one device
//! but not another would leave them disagreeing forever.
//!
//! Time comes in as arguments. Automerge 0.12 reads no clock (a change
//! committed without a time gets 0); every change here is stamped with the
//! caller's `now_ms`, in the whole seconds Automerge's format documents.
//! Automerge does draw a random actor id when it creates or loads a
//! document; it is replaced by the author's before any change is made, so
//! no change bytes depend on it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use automerge::{AutoCommit, AutomergeError};

use crate::body::MediaType;
use crate::geo::Point;

// The code: `doc` creates, edits and merges documents; `read` turns a
// document back into an `EventView`, conflicts included; `check` holds the
// field rules and the checks on change bytes.
mod check;
mod doc;
mod read;
#[cfg(test)]
mod tests;

/// (feature `testing`) Stand-ins for a document Automerge cannot read or
/// save. Automerge 0.12 panics rather than erring on some inputs, and no
/// crafted document is known that passes `apply` and then panics on read
/// or save; so with this feature, [`EventDoc::view`] panics in Automerge's
/// place on a document titled [`testing::PANIC_IN_VIEW`], and
/// [`EventDoc::save`] on one titled [`testing::PANIC_IN_SAVE`], inside the
/// same guard that catches Automerge's own panics. Tests of the code that
/// must survive such a document (the projectors, the node's lock) use
/// them. Never enabled in a release build.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    /// The title of a document whose [`super::EventDoc::view`] panics.
    pub const PANIC_IN_VIEW: &str = "sentinel testing: Automerge panics reading this";
    /// The title of a document whose [`super::EventDoc::save`] panics.
    pub const PANIC_IN_SAVE: &str = "sentinel testing: Automerge panics saving this";
}

pub use check::check_change;

/// Runs `f`, turning a panic in Automerge into [`EventError::Automerge`]
/// saying what was being done. Automerge 0.12 panics, rather than erring,
/// on some input, and a document is outside input: one author's document
/// must not take a node down.
fn guarded<T>(doing: &str, f: impl FnOnce() -> T) -> Result<T, EventError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        EventError::Automerge(format!(
            "Automerge panicked {doing}: {}",
            panic_message(payload.as_ref())
        ))
    })
}

/// The text of a caught panic, where it has one.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

#[cfg(any(test, feature = "testing"))]
impl EventDoc {
    /// (feature `testing`) Panics, as Automerge might, on a document titled
    /// `marker` (see [`testing`]).
    fn panic_for_tests(&self, marker: &str) {
        if let Ok(Some(automerge::ScalarValue::Str(title))) =
            read::single_value(&self.doc, key::TITLE)
        {
            if title.as_str() == marker {
                panic!("test hook: {marker}");
            }
        }
    }
}

/// Keys of the document, in one place so that writing and reading cannot
/// drift apart.
mod key {
    pub const TITLE: &str = "title";
    pub const DESCRIPTION: &str = "description";
    pub const CATEGORY: &str = "category";
    pub const SEVERITY: &str = "severity";
    pub const STATUS: &str = "status";
    pub const ASSIGNEE: &str = "assignee";
    pub const LON: &str = "lon";
    pub const LAT: &str = "lat";
    pub const REPORTED_MS: &str = "reported_ms";
    pub const NOTES: &str = "notes";
    pub const MEDIA: &str = "media";

    pub const NOTE_TEXT: &str = "text";
    pub const NOTE_ACTOR: &str = "actor";
    pub const NOTE_AT_MS: &str = "at_ms";

    pub const MEDIA_HASH: &str = "hash";
    pub const MEDIA_MIME: &str = "mime";
    pub const MEDIA_SIZE: &str = "size";
    pub const MEDIA_NAME: &str = "name";

    /// The name under which lon/lat conflicts are reported.
    pub const LOCATION: &str = "location";
}

/// Where an event is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Reported, nobody assigned yet.
    Reported,
    /// Someone is assigned, work has not started.
    Assigned,
    /// Being worked.
    InProgress,
    /// Work is done; may still be reopened.
    Resolved,
    /// Finished; may still be reopened.
    Closed,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Reported,
        Status::Assigned,
        Status::InProgress,
        Status::Resolved,
        Status::Closed,
    ];

    /// The stable name stored in documents and used by APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Reported => "reported",
            Status::Assigned => "assigned",
            Status::InProgress => "in_progress",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    /// Whether a local [`EventEdit::Status`] may move an event from `self`
    /// to `to`: start, resolve, close, and reopen. `assigned` is reached
    /// only through [`EventEdit::Assign`], so that an assigned event always
    /// names its assignee.
    pub fn may_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Assigned, InProgress)
                | (InProgress, Resolved)
                | (Resolved, Closed)
                | (Resolved | Closed, InProgress)
        )
    }

    /// Whether someone may be (re)assigned while the event is in `self`.
    pub fn may_assign(self) -> bool {
        matches!(
            self,
            Status::Reported | Status::Assigned | Status::InProgress
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of [`Status::as_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {found:?}")]
pub struct ParseStatusError {
    pub found: String,
}

impl FromStr for Status {
    type Err = ParseStatusError;

    fn from_str(s: &str) -> Result<Status, ParseStatusError> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| ParseStatusError {
                found: s.to_owned(),
            })
    }
}

/// Why an event operation failed. Every local edit that fails leaves the
/// document as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// A field of a new event or of an edit breaks a rule (length, range,
    /// control characters).
    #[error("field `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The status workflow does not allow this local edit.
    #[error("status cannot move from {from} to {to}")]
    InvalidTransition { from: Status, to: Status },
    /// The edit would change nothing (the field already holds exactly
    /// that value, with no conflict), so no change was made: there is
    /// nothing to put in an entry.
    #[error("the edit changes nothing")]
    Unchanged,
    /// Automerge refused bytes or an operation: a change that does not
    /// decode, a saved document that does not load, a change whose actor
    /// already has a different change at that seq.
    #[error("automerge: {0}")]
    Automerge(String),
    /// The document decodes but does not have the event layout: a field is
    /// missing or holds a value of the wrong type or range.
    #[error("bad event document: {0}")]
    BadDocument(String),
}

impl EventError {
    /// The stable snake_case name of the variant.
    pub fn code(&self) -> &'static str {
        match self {
            EventError::Invalid { .. } => "invalid",
            EventError::InvalidTransition { .. } => "invalid_transition",
            EventError::Unchanged => "unchanged",
            EventError::Automerge(_) => "automerge",
            EventError::BadDocument(_) => "bad_document",
        }
    }
}

fn automerge_error(e: AutomergeError) -> EventError {
    EventError::Automerge(e.to_string())
}

/// What an officer reports.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Stored without surrounding whitespace.
    pub title: String,
    pub description: String,
    pub category: String,
    /// 1 (lowest) ..= 5 (highest).
    pub severity: u8,
    pub location: Point,
    /// When the incident was reported, in Unix milliseconds.
    pub reported_ms: u64,
}

/// A media blob attached to an event, by content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    /// SHA-256 of the blob's bytes.
    pub hash: [u8; 32],
    pub mime: MediaType,
    /// 1..=[`MAX_MEDIA_BYTES`](crate::limits::MAX_MEDIA_BYTES).
    pub size: u64,
    /// The file name the officer gave; informational only.
    pub name: String,
}

/// A note on an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    /// The person who wrote it, where known.
    pub actor: Option<String>,
    /// When it was written, in Unix milliseconds.
    pub at_ms: u64,
}

/// One local edit; each becomes exactly one Automerge change.
#[derive(Debug, Clone, PartialEq)]
pub enum EventEdit {
    /// Stored without surrounding whitespace.
    Title(String),
    Description(String),
    Category(String),
    Severity(u8),
    Location(Point),
    /// Appends a note.
    Note {
        text: String,
        actor: Option<String>,
        at_ms: u64,
    },
    /// Appends a media reference.
    Media(MediaRef),
    /// Assigns a person (by id); moves `reported` to `assigned`.
    Assign(String),
    /// Moves the status along the workflow ([`Status::may_become`]).
    Status(Status),
}

/// An event's current state: the winning value of every field, plus every
/// field that has concurrent different values.
#[derive(Debug, Clone, PartialEq)]
pub struct EventView {
    pub title: String,
    pub description: String,
    pub category: String,
    pub severity: u8,
    pub status: Status,
    pub assignee: Option<String>,
    pub location: Point,
    pub reported_ms: u64,
    /// In the order of the document's list; concurrent appends are ordered
    /// the same way on every device.
    pub notes: Vec<Note>,
    /// In the order of the document's list.
    pub media: Vec<MediaRef>,
    /// Field name → all its concurrent different values, rendered as
    /// strings, in the same order on every device. Only fields with at
    /// least two different values appear; a location conflict appears
    /// under `location` as `"lon,lat"` strings.
    pub conflicts: BTreeMap<String, Vec<String>>,
}

/// One event's Automerge document.
#[derive(Debug, Clone)]
pub struct EventDoc {
    doc: AutoCommit,
}

/// The media hash as the document stores it: 64 lowercase hex digits.
fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The inverse of [`to_hex`]; `None` unless exactly 64 hex digits.
fn from_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}
