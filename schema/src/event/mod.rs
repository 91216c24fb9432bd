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

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::str::FromStr;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, AutoCommit, AutomergeError, Change, ObjId, ObjType, ReadDoc, ScalarValue, Value,
    ValueRef, ROOT,
};

use crate::body::MediaType;
use crate::geo::Point;
use crate::ids::AuthorId;
use crate::limits::{
    MAX_ACTOR_BYTES, MAX_ASSIGNEE_BYTES, MAX_CATEGORY_BYTES, MAX_DESCRIPTION_BYTES,
    MAX_MEDIA_BYTES, MAX_NAME_BYTES, MAX_NOTE_BYTES, MAX_SEVERITY, MAX_TITLE_BYTES, MIN_SEVERITY,
};

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
    /// 1..=[`MAX_MEDIA_BYTES`].
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

/// An edit that has passed every check, reduced to what gets written.
/// Checking and writing are separate steps so that a refused edit never
/// opens an Automerge transaction.
enum Write {
    Text(&'static str, String),
    Severity(u8),
    Location(Point),
    Note {
        list: ObjId,
        text: String,
        actor: Option<String>,
        at: i64,
    },
    Media {
        list: ObjId,
        media: MediaRef,
    },
    Assign {
        person: String,
        promote: bool,
    },
    Status(Status),
}

impl NewEvent {
    /// Checks every field with the rules `EventDoc::create` applies, without
    /// building a document (cheap: for validating imports up front).
    pub fn validate(&self) -> Result<(), EventError> {
        self.checked().map(|_| ())
    }

    /// The trimmed title and the reported time, once every field passed.
    fn checked(&self) -> Result<(&str, i64), EventError> {
        let title = check_title(&self.title)?;
        check_text(
            key::DESCRIPTION,
            &self.description,
            MAX_DESCRIPTION_BYTES,
            false,
        )?;
        check_text(key::CATEGORY, &self.category, MAX_CATEGORY_BYTES, true)?;
        check_severity(self.severity)?;
        let reported = check_ms(key::REPORTED_MS, self.reported_ms)?;
        Ok((title, reported))
    }
}

impl EventDoc {
    /// Starts a new event document, written by `author`. Returns the
    /// document and the raw bytes of its first (and only) change, stamped
    /// with `now_ms` (Automerge keeps whole seconds).
    pub fn create(
        author: &AuthorId,
        new: &NewEvent,
        now_ms: u64,
    ) -> Result<(EventDoc, Vec<u8>), EventError> {
        let (title, reported) = new.checked()?;

        let mut doc = AutoCommit::new().with_actor(actor_of(author));
        let written = (|| {
            doc.put(ROOT, key::TITLE, title)?;
            doc.put(ROOT, key::DESCRIPTION, new.description.as_str())?;
            doc.put(ROOT, key::CATEGORY, new.category.as_str())?;
            doc.put(ROOT, key::SEVERITY, i64::from(new.severity))?;
            doc.put(ROOT, key::STATUS, Status::Reported.as_str())?;
            doc.put(ROOT, key::LON, new.location.lon())?;
            doc.put(ROOT, key::LAT, new.location.lat())?;
            doc.put(ROOT, key::REPORTED_MS, ScalarValue::Timestamp(reported))?;
            // The lists exist from the first change, so every device appends
            // to the same list object rather than racing to create one.
            doc.put_object(ROOT, key::NOTES, ObjType::List)?;
            doc.put_object(ROOT, key::MEDIA, ObjType::List)?;
            Ok::<(), AutomergeError>(())
        })();
        written.map_err(automerge_error)?;
        let mut event = EventDoc { doc };
        let change = event.commit(now_ms)?;
        Ok((event, change))
    }

    /// Applies one local edit by `author` as one change and returns its raw
    /// bytes. Checks the edit first (including the status workflow against
    /// the current winning status); on any error the document is unchanged.
    /// An edit that would change nothing is [`EventError::Unchanged`].
    /// The change is stamped with `now_ms` (Automerge keeps whole seconds).
    pub fn edit(
        &mut self,
        author: &AuthorId,
        edit: &EventEdit,
        now_ms: u64,
    ) -> Result<Vec<u8>, EventError> {
        let write = self.check_edit(edit)?;
        self.doc.set_actor(actor_of(author));
        if let Err(e) = write_to(&mut self.doc, write) {
            self.doc.rollback();
            return Err(automerge_error(e));
        }
        self.commit(now_ms)
    }

    /// A document built from change bytes, as [`EventDoc::apply_changes`].
    pub fn from_changes(changes: &[&[u8]]) -> Result<EventDoc, EventError> {
        let mut event = EventDoc {
            doc: AutoCommit::new(),
        };
        event.apply_changes(changes)?;
        Ok(event)
    }

    /// Merges many changes in one batch, in any order. Changes whose
    /// dependencies have not arrived are held until they do (see
    /// [`EventDoc::is_complete`]); changes already held are ignored.
    ///
    /// The batch is all or nothing: on any error the document is as it
    /// was. Every change is decoded first, and a decode error names the
    /// change's position in `changes`; an error while merging cannot say
    /// which change caused it (apply them one by one to find out).
    /// Changes are not checked against the workflow or field rules: they
    /// were local edits on the device that made them.
    pub fn apply_changes(&mut self, changes: &[&[u8]]) -> Result<(), EventError> {
        let decoded = changes
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                decode_change(bytes).map_err(|e| match e {
                    EventError::Automerge(why) => {
                        EventError::Automerge(format!("change {i} of {}: {why}", changes.len()))
                    }
                    other => other,
                })
            })
            .collect::<Result<Vec<Change>, EventError>>()?;
        // Automerge 0.12 panics, rather than returning an error, on some
        // changes that decode but do not fit the document (an actor it has
        // not seen, an op on a missing object: `unwrap`s in its batch
        // apply). A change is outside input even when signed, so the panic
        // is caught and the document put back as it was: one author's bad
        // change must not take a node down. Restoring on errors too makes
        // the batch all or nothing (a refused batch can leave Automerge's
        // queue of held changes altered).
        let before = self.doc.clone();
        // One batch, not one call per change: Automerge sorts the batch
        // causally and merges it in one pass, where applying one change at
        // a time costs a pass over the document each.
        let applied =
            panic::catch_unwind(AssertUnwindSafe(|| self.doc.apply_changes_batch(decoded)));
        match applied {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.doc = before;
                Err(automerge_error(e))
            }
            Err(payload) => {
                self.doc = before;
                Err(EventError::Automerge(format!(
                    "Automerge panicked applying the batch: {}",
                    panic_message(payload.as_ref())
                )))
            }
        }
    }

    /// Whether every change the document holds has all its dependencies,
    /// that is, no change is waiting for a parent to arrive.
    pub fn is_complete(&self) -> bool {
        ReadDoc::get_missing_deps(&self.doc, &[]).is_empty()
    }

    /// The hashes of the changes at the tip of the document's history.
    /// Equal heads mean equal documents; held changes are not part of
    /// the heads.
    pub fn heads(&mut self) -> Vec<[u8; 32]> {
        self.doc.get_heads().into_iter().map(|h| h.0).collect()
    }

    /// The whole document in Automerge's compact format, including changes
    /// still waiting for their dependencies.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// A document from [`EventDoc::save`]'s bytes.
    pub fn load(bytes: &[u8]) -> Result<EventDoc, EventError> {
        // Saved bytes come back from storage, which can be damaged; a
        // damaged save is an error, not a crash (see `apply_changes`).
        match panic::catch_unwind(|| AutoCommit::load(bytes)) {
            Ok(Ok(doc)) => Ok(EventDoc { doc }),
            Ok(Err(e)) => Err(automerge_error(e)),
            Err(payload) => Err(EventError::Automerge(format!(
                "Automerge panicked loading the document: {}",
                panic_message(payload.as_ref())
            ))),
        }
    }

    /// The current winning value of every field, and every conflict.
    pub fn view(&self) -> Result<EventView, EventError> {
        let doc = &self.doc;
        let title = required(key::TITLE, read_str(doc, &ROOT, key::TITLE)?)?;
        let description = required(key::DESCRIPTION, read_str(doc, &ROOT, key::DESCRIPTION)?)?;
        let category = required(key::CATEGORY, read_str(doc, &ROOT, key::CATEGORY)?)?;
        let severity = read_severity(doc)?;
        let status = read_status(doc)?;
        let assignee = read_str(doc, &ROOT, key::ASSIGNEE)?;
        let location = read_location(doc)?;
        let reported_ms = required(key::REPORTED_MS, read_ms(doc, &ROOT, key::REPORTED_MS)?)?;
        let notes = maps_in_list(doc, key::NOTES)?
            .iter()
            .map(|note| read_note(doc, note))
            .collect::<Result<Vec<_>, _>>()?;
        let media = maps_in_list(doc, key::MEDIA)?
            .iter()
            .map(|m| read_media(doc, m))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EventView {
            title,
            description,
            category,
            severity,
            status,
            assignee,
            location,
            reported_ms,
            notes,
            media,
            conflicts: conflicts(doc)?,
        })
    }

    /// Checks `edit` against the field rules and the current document, and
    /// says what to write.
    fn check_edit(&self, edit: &EventEdit) -> Result<Write, EventError> {
        Ok(match edit {
            EventEdit::Title(t) => Write::Text(key::TITLE, check_title(t)?.to_owned()),
            EventEdit::Description(d) => {
                check_text(key::DESCRIPTION, d, MAX_DESCRIPTION_BYTES, false)?;
                Write::Text(key::DESCRIPTION, d.clone())
            }
            EventEdit::Category(c) => {
                check_text(key::CATEGORY, c, MAX_CATEGORY_BYTES, true)?;
                Write::Text(key::CATEGORY, c.clone())
            }
            EventEdit::Severity(s) => {
                check_severity(*s)?;
                Write::Severity(*s)
            }
            EventEdit::Location(p) => {
                // `write_to` always writes both coordinates, which Automerge
                // would otherwise skip when equal, so spot the no-op here.
                if single_value(&self.doc, key::LON)? == Some(ScalarValue::F64(p.lon()))
                    && single_value(&self.doc, key::LAT)? == Some(ScalarValue::F64(p.lat()))
                {
                    return Err(EventError::Unchanged);
                }
                Write::Location(*p)
            }
            EventEdit::Note { text, actor, at_ms } => {
                check_text("note.text", text, MAX_NOTE_BYTES, true)?;
                if let Some(a) = actor {
                    check_text("note.actor", a, MAX_ACTOR_BYTES, true)?;
                }
                Write::Note {
                    list: list_id(&self.doc, key::NOTES)?,
                    text: text.clone(),
                    actor: actor.clone(),
                    at: check_ms("note.at_ms", *at_ms)?,
                }
            }
            EventEdit::Media(m) => {
                check_text("media.name", &m.name, MAX_NAME_BYTES, true)?;
                if !(1..=MAX_MEDIA_BYTES).contains(&m.size) {
                    return Err(invalid(
                        "media.size",
                        format!("{} bytes, allowed 1..={MAX_MEDIA_BYTES}", m.size),
                    ));
                }
                Write::Media {
                    list: list_id(&self.doc, key::MEDIA)?,
                    media: m.clone(),
                }
            }
            EventEdit::Assign(person) => {
                check_text(key::ASSIGNEE, person, MAX_ASSIGNEE_BYTES, true)?;
                let from = read_status(&self.doc)?;
                if !from.may_assign() {
                    return Err(EventError::InvalidTransition {
                        from,
                        to: Status::Assigned,
                    });
                }
                Write::Assign {
                    person: person.clone(),
                    promote: from == Status::Reported,
                }
            }
            EventEdit::Status(to) => {
                let from = read_status(&self.doc)?;
                if !from.may_become(*to) {
                    return Err(EventError::InvalidTransition { from, to: *to });
                }
                Write::Status(*to)
            }
        })
    }

    /// Commits the open transaction as one change and returns its raw bytes.
    fn commit(&mut self, now_ms: u64) -> Result<Vec<u8>, EventError> {
        // Automerge documents a change's time as Unix seconds and, left to
        // itself, writes 0; the caller's time is what the change carries.
        let seconds = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
        // Automerge writes no op for a put of the value a field already
        // holds alone, and then commits no change at all.
        let hash = self
            .doc
            .commit_with(CommitOptions::default().with_time(seconds))
            .ok_or(EventError::Unchanged)?;
        // Automerge 0.12 stores columns of ops, not change bytes, so the
        // change is rebuilt from the document here.
        let change = self.doc.get_change_by_hash(&hash).ok_or_else(|| {
            EventError::Automerge(format!("change {hash} missing right after commit"))
        })?;
        Ok(change.raw_bytes().to_vec())
    }
}

/// Checks that `bytes` are one Automerge change that `author` made (its
/// actor is the author's key), as an entry's `EventChange` body must be.
/// For verification before apply: applying never checks who made a change.
pub fn check_change(author: &AuthorId, bytes: &[u8]) -> Result<(), EventError> {
    let change = decode_change(bytes)?;
    if change.actor_id().to_bytes() != author.as_bytes() {
        return Err(invalid(
            "change.actor",
            format!(
                "actor {} is not the author {author}",
                change.actor_id().to_hex_string()
            ),
        ));
    }
    Ok(())
}

/// The Automerge chunk type of an uncompressed change: byte 8 of a chunk,
/// after 4 magic bytes and a 4-byte checksum.
const CHUNK_TYPE_OFFSET: usize = 8;
const CHUNK_TYPE_CHANGE: u8 = 1;
/// Where a chunk's checksum sits, after the 4 magic bytes.
const CHECKSUM: std::ops::Range<usize> = 4..8;

fn decode_change(bytes: &[u8]) -> Result<Change, EventError> {
    // Only uncompressed changes are accepted. Automerge inflates a
    // compressed change with no size limit, so a small entry could expand
    // into gigabytes; our own changes are always `raw_bytes`, uncompressed.
    match bytes.get(CHUNK_TYPE_OFFSET) {
        Some(&CHUNK_TYPE_CHANGE) => {}
        Some(other) => {
            return Err(EventError::Automerge(format!(
                "chunk type {other} is not an uncompressed change"
            )))
        }
        None => {
            return Err(EventError::Automerge(format!(
                "{} bytes is too short for a change",
                bytes.len()
            )))
        }
    }
    let change =
        Change::from_bytes(bytes.to_vec()).map_err(|e| EventError::Automerge(e.to_string()))?;
    // The checksum (bytes 4..8) is the start of the change's hash.
    // `Change::from_bytes` does not check it (loading a document does), so
    // we do: damaged bytes become an error here instead of reaching apply
    // code that may panic on them. It is no defence against a change made
    // bad on purpose, whose author can recompute it.
    if bytes.get(CHECKSUM) != change.hash().0.get(..CHECKSUM.len()) {
        return Err(EventError::Automerge(
            "checksum does not match the change".to_owned(),
        ));
    }
    Ok(change)
}

/// The text of a caught panic, where it has one.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

fn actor_of(author: &AuthorId) -> ActorId {
    ActorId::from(author.as_bytes().as_slice())
}

fn write_to(doc: &mut AutoCommit, write: Write) -> Result<(), AutomergeError> {
    match write {
        Write::Text(key, value) => doc.put(ROOT, key, value)?,
        Write::Severity(s) => doc.put(ROOT, key::SEVERITY, i64::from(s))?,
        Write::Location(p) => {
            // Both coordinates must travel in every location change, or a
            // device moving only north would merge with a concurrent move
            // east into a point neither chose. Automerge skips a put of the
            // value a key already holds, so each key is deleted first and
            // then put fresh. The puts are adjacent, lon then lat, which is
            // how `conflicts` pairs them.
            doc.delete(ROOT, key::LON)?;
            doc.delete(ROOT, key::LAT)?;
            doc.put(ROOT, key::LON, p.lon())?;
            doc.put(ROOT, key::LAT, p.lat())?;
        }
        Write::Note {
            list,
            text,
            actor,
            at,
        } => {
            let end = doc.length(&list);
            let note = doc.insert_object(&list, end, ObjType::Map)?;
            doc.put(&note, key::NOTE_TEXT, text)?;
            if let Some(actor) = actor {
                doc.put(&note, key::NOTE_ACTOR, actor)?;
            }
            doc.put(&note, key::NOTE_AT_MS, ScalarValue::Timestamp(at))?;
        }
        Write::Media { list, media } => {
            let end = doc.length(&list);
            let m = doc.insert_object(&list, end, ObjType::Map)?;
            doc.put(&m, key::MEDIA_HASH, to_hex(&media.hash))?;
            doc.put(&m, key::MEDIA_MIME, media.mime.as_mime())?;
            // The size is at most MAX_MEDIA_BYTES, far inside i64.
            doc.put(
                &m,
                key::MEDIA_SIZE,
                i64::try_from(media.size).unwrap_or(i64::MAX),
            )?;
            doc.put(&m, key::MEDIA_NAME, media.name)?;
        }
        Write::Assign { person, promote } => {
            doc.put(ROOT, key::ASSIGNEE, person)?;
            if promote {
                doc.put(ROOT, key::STATUS, Status::Assigned.as_str())?;
            }
        }
        Write::Status(s) => doc.put(ROOT, key::STATUS, s.as_str())?,
    }
    Ok(())
}

// ---- Field rules ----

fn invalid(field: &'static str, reason: String) -> EventError {
    EventError::Invalid { field, reason }
}

/// The rules every text field shares: at most `max` UTF-8 bytes, not
/// blank when `required`, and no control characters except newline and
/// tab (which keep multi-line text readable).
fn check_text(
    field: &'static str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<(), EventError> {
    if value.len() > max {
        return Err(invalid(
            field,
            format!("{} bytes, at most {max} allowed", value.len()),
        ));
    }
    if required && value.trim().is_empty() {
        return Err(invalid(field, "must not be empty or blank".to_owned()));
    }
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && *c != '\n' && *c != '\t')
    {
        return Err(invalid(
            field,
            format!("contains control character U+{:04X}", u32::from(c)),
        ));
    }
    Ok(())
}

/// A title is measured and stored without surrounding whitespace.
fn check_title(title: &str) -> Result<&str, EventError> {
    let title = title.trim();
    check_text(key::TITLE, title, MAX_TITLE_BYTES, true)?;
    Ok(title)
}

fn check_severity(severity: u8) -> Result<(), EventError> {
    if !(MIN_SEVERITY..=MAX_SEVERITY).contains(&severity) {
        return Err(invalid(
            key::SEVERITY,
            format!("{severity}, allowed {MIN_SEVERITY}..={MAX_SEVERITY}"),
        ));
    }
    Ok(())
}

/// Automerge timestamps are signed; a time past `i64::MAX` ms (some 292
/// million years) is a caller bug, refused rather than wrapped.
fn check_ms(field: &'static str, ms: u64) -> Result<i64, EventError> {
    i64::try_from(ms).map_err(|_| invalid(field, format!("{ms} ms is out of range")))
}

// ---- Reading a document ----
//
// Remote devices can write anything, so every read checks type and range
// and says which field is wrong. Length caps are not re-checked: they
// bound what a device may write, and entries are capped in size anyway.

fn bad(what: String) -> EventError {
    EventError::BadDocument(what)
}

fn required<T>(field: &str, value: Option<T>) -> Result<T, EventError> {
    value.ok_or_else(|| bad(format!("`{field}` is missing")))
}

/// A short name of a value's type, for error messages.
fn type_name(value: &Value<'_>) -> &'static str {
    match value {
        Value::Object(ObjType::Map) => "a map",
        Value::Object(ObjType::Table) => "a table",
        Value::Object(ObjType::List) => "a list",
        Value::Object(ObjType::Text) => "a text object",
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Bytes(_) => "bytes",
            ScalarValue::Str(_) => "a string",
            ScalarValue::Int(_) => "an int",
            ScalarValue::Uint(_) => "a uint",
            ScalarValue::F64(_) => "an f64",
            ScalarValue::Counter(_) => "a counter",
            ScalarValue::Timestamp(_) => "a timestamp",
            ScalarValue::Boolean(_) => "a boolean",
            ScalarValue::Unknown { .. } => "an unknown type",
            ScalarValue::Null => "null",
        },
    }
}

fn wrong_type(field: &str, value: &Value<'_>, expected: &str) -> EventError {
    bad(format!(
        "`{field}` is {}, expected {expected}",
        type_name(value)
    ))
}

fn winner<'a>(
    doc: &'a AutoCommit,
    obj: &ObjId,
    field: &str,
) -> Result<Option<Value<'a>>, EventError> {
    doc.get(obj, field)
        .map(|found| found.map(|(value, _)| value))
        .map_err(automerge_error)
}

/// The value of `field` in the root map when it holds exactly one value
/// (no conflict), else `None`.
fn single_value(doc: &AutoCommit, field: &str) -> Result<Option<ScalarValue>, EventError> {
    let mut all = doc.get_all(ROOT, field).map_err(automerge_error)?;
    Ok(match (all.pop(), all.is_empty()) {
        (Some((Value::Scalar(v), _)), true) => Some(v.into_owned()),
        _ => None,
    })
}

fn read_str(doc: &AutoCommit, obj: &ObjId, field: &str) -> Result<Option<String>, EventError> {
    let Some(value) = winner(doc, obj, field)? else {
        return Ok(None);
    };
    if let Value::Scalar(s) = &value {
        if let ScalarValue::Str(text) = s.as_ref() {
            return Ok(Some(text.to_string()));
        }
    }
    Err(wrong_type(field, &value, "a string"))
}

/// An integer that is not negative. Other Automerge clients may write
/// numbers as int, uint or timestamp; all three are accepted.
fn read_ms(doc: &AutoCommit, obj: &ObjId, field: &str) -> Result<Option<u64>, EventError> {
    let Some(value) = winner(doc, obj, field)? else {
        return Ok(None);
    };
    let n = match &value {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Int(i) | ScalarValue::Timestamp(i) => u64::try_from(*i).ok(),
            ScalarValue::Uint(u) => Some(*u),
            _ => return Err(wrong_type(field, &value, "an integer")),
        },
        Value::Object(_) => return Err(wrong_type(field, &value, "an integer")),
    };
    n.map(Some)
        .ok_or_else(|| bad(format!("`{field}` is negative")))
}

/// A number as f64. JavaScript clients write whole numbers as ints, so
/// ints are accepted too.
fn read_f64(doc: &AutoCommit, field: &str) -> Result<f64, EventError> {
    let value = required(field, winner(doc, &ROOT, field)?)?;
    match &value {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::F64(f) => Ok(*f),
            ScalarValue::Int(i) => Ok(*i as f64),
            ScalarValue::Uint(u) => Ok(*u as f64),
            _ => Err(wrong_type(field, &value, "a number")),
        },
        Value::Object(_) => Err(wrong_type(field, &value, "a number")),
    }
}

fn read_severity(doc: &AutoCommit) -> Result<u8, EventError> {
    let n = required(key::SEVERITY, read_ms(doc, &ROOT, key::SEVERITY)?)?;
    u8::try_from(n)
        .ok()
        .filter(|s| (MIN_SEVERITY..=MAX_SEVERITY).contains(s))
        .ok_or_else(|| {
            bad(format!(
                "`severity` is {n}, allowed {MIN_SEVERITY}..={MAX_SEVERITY}"
            ))
        })
}

fn read_status(doc: &AutoCommit) -> Result<Status, EventError> {
    let s = required(key::STATUS, read_str(doc, &ROOT, key::STATUS)?)?;
    s.parse()
        .map_err(|_| bad(format!("`status` {:?} is not a known status", preview(&s))))
}

fn read_location(doc: &AutoCommit) -> Result<Point, EventError> {
    let lon = read_f64(doc, key::LON)?;
    let lat = read_f64(doc, key::LAT)?;
    Point::new(lon, lat).map_err(|e| bad(format!("location: {e}")))
}

/// The id of the list under `field` in the root map.
fn list_id(doc: &AutoCommit, field: &str) -> Result<ObjId, EventError> {
    match doc.get(ROOT, field).map_err(automerge_error)? {
        Some((Value::Object(ObjType::List), id)) => Ok(id),
        Some((other, _)) => Err(wrong_type(field, &other, "a list")),
        None => Err(bad(format!("`{field}` is missing"))),
    }
}

/// The ids of the maps in the list under `field`, in list order.
fn maps_in_list(doc: &AutoCommit, field: &str) -> Result<Vec<ObjId>, EventError> {
    let list = list_id(doc, field)?;
    doc.list_range(&list, ..)
        .map(|item| match item.value {
            ValueRef::Object(ObjType::Map) => Ok(item.id()),
            _ => Err(bad(format!("`{field}[{}]` is not a map", item.index))),
        })
        .collect()
}

fn read_note(doc: &AutoCommit, note: &ObjId) -> Result<Note, EventError> {
    Ok(Note {
        text: required("note.text", read_str(doc, note, key::NOTE_TEXT)?)?,
        actor: read_str(doc, note, key::NOTE_ACTOR)?,
        at_ms: required("note.at_ms", read_ms(doc, note, key::NOTE_AT_MS)?)?,
    })
}

fn read_media(doc: &AutoCommit, m: &ObjId) -> Result<MediaRef, EventError> {
    let hash_hex = required("media.hash", read_str(doc, m, key::MEDIA_HASH)?)?;
    let hash = from_hex(&hash_hex).ok_or_else(|| {
        bad(format!(
            "`media.hash` {:?} is not 64 hex digits",
            preview(&hash_hex)
        ))
    })?;
    let mime_text = required("media.mime", read_str(doc, m, key::MEDIA_MIME)?)?;
    let mime = MediaType::from_mime(&mime_text).ok_or_else(|| {
        bad(format!(
            "`media.mime` {:?} is not an accepted type",
            preview(&mime_text)
        ))
    })?;
    Ok(MediaRef {
        hash,
        mime,
        size: required("media.size", read_ms(doc, m, key::MEDIA_SIZE)?)?,
        name: required("media.name", read_str(doc, m, key::MEDIA_NAME)?)?,
    })
}

/// At most 32 characters of outside text, for error messages.
fn preview(s: &str) -> String {
    s.chars().take(32).collect()
}

/// A value as a conflict shows it.
fn render(value: &Value<'_>) -> String {
    match value {
        Value::Object(_) => format!("<{}>", type_name(value)),
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => s.to_string(),
            ScalarValue::Int(i) | ScalarValue::Timestamp(i) => i.to_string(),
            ScalarValue::Uint(u) => u.to_string(),
            ScalarValue::F64(f) => f.to_string(),
            ScalarValue::Boolean(b) => b.to_string(),
            ScalarValue::Null => "null".to_owned(),
            other => other.to_string(),
        },
    }
}

/// Keeps the first of equal strings: two devices writing the same value
/// at once is not a conflict.
fn distinct(values: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Whether `lat` was written right after `lon` in the same change.
fn written_together(lon: &ObjId, lat: &ObjId) -> bool {
    match (lon, lat) {
        (ObjId::Id(lon_ctr, lon_actor, _), ObjId::Id(lat_ctr, lat_actor, _)) => {
            lon_actor == lat_actor && lon_ctr.checked_add(1) == Some(*lat_ctr)
        }
        _ => false,
    }
}

fn conflicts(doc: &AutoCommit) -> Result<BTreeMap<String, Vec<String>>, EventError> {
    let mut out = BTreeMap::new();
    // `get_all` lists concurrent values in op id order, which is the same
    // on every device, so the rendered lists are too.
    for field in [
        key::TITLE,
        key::DESCRIPTION,
        key::CATEGORY,
        key::SEVERITY,
        key::STATUS,
        key::ASSIGNEE,
        key::REPORTED_MS,
    ] {
        let all = doc.get_all(ROOT, field).map_err(automerge_error)?;
        let values = distinct(all.iter().map(|(v, _)| render(v)));
        if values.len() >= 2 {
            out.insert(field.to_owned(), values);
        }
    }
    let lons = doc.get_all(ROOT, key::LON).map_err(automerge_error)?;
    let lats = doc.get_all(ROOT, key::LAT).map_err(automerge_error)?;
    if lons.len() >= 2 || lats.len() >= 2 {
        // A location edit writes lon and lat in one change, so each
        // concurrent location is a lon and the lat written just after it.
        // Halves without a partner (only a foreign client could write one
        // alone) show as `?`.
        let mut pairs = Vec::new();
        for (lon, lon_id) in &lons {
            let lat = lats
                .iter()
                .find(|(_, lat_id)| written_together(lon_id, lat_id))
                .map(|(lat, _)| render(lat));
            pairs.push(format!(
                "{},{}",
                render(lon),
                lat.unwrap_or_else(|| "?".to_owned())
            ));
        }
        for (lat, lat_id) in &lats {
            if !lons
                .iter()
                .any(|(_, lon_id)| written_together(lon_id, lat_id))
            {
                pairs.push(format!("?,{}", render(lat)));
            }
        }
        let values = distinct(pairs);
        if values.len() >= 2 {
            out.insert(key::LOCATION.to_owned(), values);
        }
    }
    Ok(out)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use proptest::prelude::*;
    use EventEdit::{Assign, Category, Description, Location, Media, Severity, Title};

    const T0: u64 = 1_700_000_000_000;

    fn author(n: u8) -> AuthorId {
        AuthorId([n; 32])
    }

    fn point(lon: f64, lat: f64) -> Point {
        Point::new(lon, lat).unwrap()
    }

    fn new_event() -> NewEvent {
        NewEvent {
            title: "Flooded underpass".to_owned(),
            description: "Water 40 cm deep.\n\tTwo cars stuck.".to_owned(),
            category: "flood".to_owned(),
            severity: 3,
            location: point(13.4, 52.5),
            reported_ms: T0,
        }
    }

    fn created() -> (EventDoc, Vec<u8>) {
        EventDoc::create(&author(1), &new_event(), T0).unwrap()
    }

    fn media(name: &str, size: u64) -> MediaRef {
        MediaRef {
            hash: [7; 32],
            mime: MediaType::Jpeg,
            size,
            name: name.to_owned(),
        }
    }

    fn note(text: &str, actor: Option<&str>, at_ms: u64) -> EventEdit {
        EventEdit::Note {
            text: text.to_owned(),
            actor: actor.map(str::to_owned),
            at_ms,
        }
    }

    fn refs(changes: &[Vec<u8>]) -> Vec<&[u8]> {
        changes.iter().map(Vec::as_slice).collect()
    }

    /// A document driven to `status` along the workflow by author 1.
    fn doc_in(status: Status) -> EventDoc {
        let (mut doc, _) = created();
        let path: &[EventEdit] = match status {
            Status::Reported => &[],
            Status::Assigned => &[Assign(String::new())],
            Status::InProgress => &[Assign(String::new()), EventEdit::Status(Status::InProgress)],
            Status::Resolved => &[
                Assign(String::new()),
                EventEdit::Status(Status::InProgress),
                EventEdit::Status(Status::Resolved),
            ],
            Status::Closed => &[
                Assign(String::new()),
                EventEdit::Status(Status::InProgress),
                EventEdit::Status(Status::Resolved),
                EventEdit::Status(Status::Closed),
            ],
        };
        for step in path {
            let step = match step {
                Assign(_) => Assign("officer-1".to_owned()),
                other => other.clone(),
            };
            doc.edit(&author(1), &step, T0).unwrap();
        }
        assert_eq!(doc.view().unwrap().status, status);
        doc
    }

    fn invalid_field<T: fmt::Debug>(result: Result<T, EventError>) -> &'static str {
        match result {
            Err(EventError::Invalid { field, .. }) => field,
            other => panic!("expected EventError::Invalid, got {other:?}"),
        }
    }

    fn bad_document<T: fmt::Debug>(result: Result<T, EventError>) -> String {
        match result {
            Err(EventError::BadDocument(why)) => why,
            other => panic!("expected EventError::BadDocument, got {other:?}"),
        }
    }

    #[test]
    fn create_then_view_round_trips() {
        let (doc, _) = created();
        assert_eq!(
            doc.view().unwrap(),
            EventView {
                title: "Flooded underpass".to_owned(),
                description: "Water 40 cm deep.\n\tTwo cars stuck.".to_owned(),
                category: "flood".to_owned(),
                severity: 3,
                status: Status::Reported,
                assignee: None,
                location: point(13.4, 52.5),
                reported_ms: T0,
                notes: vec![],
                media: vec![],
                conflicts: BTreeMap::new(),
            }
        );
    }

    #[test]
    fn create_is_one_deterministic_change_by_the_author_at_the_given_time() {
        let (_, bytes) = created();
        let (_, again) = created();
        assert_eq!(bytes, again, "same inputs, same change bytes");

        let change = Change::from_bytes(bytes.clone()).unwrap();
        assert_eq!(change.actor_id().to_bytes(), author(1).as_bytes());
        assert_eq!(change.seq(), 1);
        assert!(change.deps().is_empty());
        assert_eq!(change.timestamp(), (T0 / 1000) as i64);
        assert_eq!(change.raw_bytes(), bytes.as_slice());

        let doc = EventDoc::from_changes(&[&bytes]).unwrap();
        assert_eq!(doc.view().unwrap(), created().0.view().unwrap());
    }

    #[test]
    fn check_change_names_the_author() {
        let (_, bytes) = created();
        assert_eq!(check_change(&author(1), &bytes), Ok(()));
        assert_eq!(
            invalid_field(check_change(&author(2), &bytes)),
            "change.actor"
        );
        assert_eq!(
            check_change(&author(1), b"junk").unwrap_err().code(),
            "automerge"
        );
    }

    #[test]
    fn every_edit_kind_shows_in_the_view() {
        let (mut doc, _) = created();
        let edits = [
            Title("  Underpass closed \n".to_owned()),
            Description(String::new()),
            Category("road".to_owned()),
            Severity(5),
            Location(point(-0.12, 51.5)),
            note("Police on site", Some("officer-17"), T0 + 5),
            note("Pumps requested", None, T0 + 6),
            Media(media("photo.jpg", 1234)),
            Assign("officer-17".to_owned()),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let bytes = doc.edit(&author(1), edit, T0 + 1000).unwrap();
            let change = Change::from_bytes(bytes).unwrap();
            assert_eq!(change.actor_id().to_bytes(), author(1).as_bytes());
            assert_eq!(change.seq(), i as u64 + 2, "one change per edit");
            assert_eq!(change.timestamp(), (T0 + 1000) as i64 / 1000);
        }
        assert_eq!(
            doc.view().unwrap(),
            EventView {
                title: "Underpass closed".to_owned(),
                description: String::new(),
                category: "road".to_owned(),
                severity: 5,
                status: Status::Assigned,
                assignee: Some("officer-17".to_owned()),
                location: point(-0.12, 51.5),
                reported_ms: T0,
                notes: vec![
                    super::Note {
                        text: "Police on site".to_owned(),
                        actor: Some("officer-17".to_owned()),
                        at_ms: T0 + 5,
                    },
                    super::Note {
                        text: "Pumps requested".to_owned(),
                        actor: None,
                        at_ms: T0 + 6,
                    },
                ],
                media: vec![media("photo.jpg", 1234)],
                conflicts: BTreeMap::new(),
            }
        );
    }

    #[test]
    fn new_events_are_checked_field_by_field() {
        type Spoil = fn(&mut NewEvent);
        let cases: [(Spoil, &str); 12] = [
            (|n| n.title = String::new(), "title"),
            (|n| n.title = " \n\t ".to_owned(), "title"),
            (|n| n.title = "x".repeat(201), "title"),
            (|n| n.title = "bell\u{7}".to_owned(), "title"),
            (|n| n.description = "x".repeat(10_001), "description"),
            (
                |n| n.description = "line\r\nbreak".to_owned(),
                "description",
            ),
            (|n| n.category = String::new(), "category"),
            (|n| n.category = "c".repeat(65), "category"),
            (|n| n.category = "del\u{7f}".to_owned(), "category"),
            (|n| n.severity = 0, "severity"),
            (|n| n.severity = 6, "severity"),
            (|n| n.reported_ms = u64::MAX, "reported_ms"),
        ];
        for (spoil, field) in cases {
            let mut new = new_event();
            spoil(&mut new);
            assert_eq!(
                invalid_field(EventDoc::create(&author(1), &new, T0)),
                field,
                "{new:?}"
            );
        }

        // The limits themselves are allowed; the title is measured trimmed.
        let new = NewEvent {
            title: format!("  {}\n", "é".repeat(100)),
            description: "x".repeat(10_000),
            category: "c".repeat(64),
            severity: 5,
            ..new_event()
        };
        let (doc, _) = EventDoc::create(&author(1), &new, T0).unwrap();
        assert_eq!(doc.view().unwrap().title, "é".repeat(100));
        let empty_description = NewEvent {
            description: String::new(),
            severity: 1,
            ..new_event()
        };
        assert!(EventDoc::create(&author(1), &empty_description, T0).is_ok());
    }

    #[test]
    fn edits_are_checked_field_by_field_and_refusals_change_nothing() {
        let (mut doc, _) = created();
        let saved = doc.save();
        let heads = doc.heads();
        let cases = [
            (Title(" ".to_owned()), "title"),
            (Title("x".repeat(201)), "title"),
            (Description("x".repeat(10_001)), "description"),
            (Description("nul\0".to_owned()), "description"),
            (Category(String::new()), "category"),
            (Category("c".repeat(65)), "category"),
            (Severity(0), "severity"),
            (Severity(6), "severity"),
            (note("", None, T0), "note.text"),
            (note("  \n ", None, T0), "note.text"),
            (note(&"x".repeat(5_001), None, T0), "note.text"),
            (note("\u{1b}[31mred", None, T0), "note.text"),
            (note("ok", Some(""), T0), "note.actor"),
            (note("ok", Some(&"a".repeat(129)), T0), "note.actor"),
            (note("ok", None, u64::MAX), "note.at_ms"),
            (Assign(String::new()), "assignee"),
            (Assign("p".repeat(129)), "assignee"),
            // U+0085 (next line) is a C1 control character.
            (Assign("a\u{85}b".to_owned()), "assignee"),
            (Media(media("", 1)), "media.name"),
            (Media(media(&"n".repeat(256), 1)), "media.name"),
            (Media(media("a.jpg", 0)), "media.size"),
            (Media(media("a.jpg", MAX_MEDIA_BYTES + 1)), "media.size"),
        ];
        for (edit, field) in &cases {
            assert_eq!(
                invalid_field(doc.edit(&author(2), edit, T0)),
                *field,
                "{edit:?}"
            );
        }
        assert_eq!(doc.heads(), heads);
        assert_eq!(doc.save(), saved);

        // The limits themselves are allowed.
        for edit in [
            note(&"x".repeat(5_000), Some(&"a".repeat(128)), T0),
            note("tab\tand\nnewline", None, 0),
            Assign("p".repeat(128)),
            Media(media(&"n".repeat(255), MAX_MEDIA_BYTES)),
            Media(media("tiny.png", 1)),
            Severity(1),
            Severity(5),
            Description("x".repeat(10_000)),
            Category("c".repeat(64)),
        ] {
            doc.edit(&author(1), &edit, T0).unwrap();
        }
    }

    #[test]
    fn status_edits_follow_the_workflow() {
        use Status::*;
        let allowed = [
            (Assigned, InProgress),
            (InProgress, Resolved),
            (Resolved, Closed),
            (Resolved, InProgress),
            (Closed, InProgress),
        ];
        for from in Status::ALL {
            for to in Status::ALL {
                let mut doc = doc_in(from);
                let heads = doc.heads();
                let saved = doc.save();
                let result = doc.edit(&author(2), &EventEdit::Status(to), T0 + 1);
                if allowed.contains(&(from, to)) {
                    assert!(result.is_ok(), "{from} -> {to}: {result:?}");
                    assert_eq!(doc.view().unwrap().status, to);
                } else {
                    assert_eq!(
                        result,
                        Err(EventError::InvalidTransition { from, to }),
                        "{from} -> {to}"
                    );
                    assert_eq!(doc.heads(), heads, "{from} -> {to}");
                    assert_eq!(doc.save(), saved, "{from} -> {to}");
                }
            }
        }
    }

    #[test]
    fn assigning_moves_reported_to_assigned_and_leaves_later_statuses_alone() {
        for from in Status::ALL {
            let mut doc = doc_in(from);
            let heads = doc.heads();
            let result = doc.edit(&author(2), &Assign("officer-9".to_owned()), T0 + 1);
            match from {
                Status::Reported | Status::Assigned | Status::InProgress => {
                    result.unwrap();
                    let view = doc.view().unwrap();
                    assert_eq!(view.assignee.as_deref(), Some("officer-9"));
                    let expected = if from == Status::Reported {
                        Status::Assigned
                    } else {
                        from
                    };
                    assert_eq!(view.status, expected);
                }
                Status::Resolved | Status::Closed => {
                    assert_eq!(
                        result,
                        Err(EventError::InvalidTransition {
                            from,
                            to: Status::Assigned
                        })
                    );
                    assert_eq!(doc.heads(), heads);
                }
            }
        }
    }

    #[test]
    fn status_names_round_trip_and_errors_have_codes() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(
            "done".parse::<Status>(),
            Err(ParseStatusError {
                found: "done".to_owned()
            })
        );
        assert_eq!(
            EventError::InvalidTransition {
                from: Status::Closed,
                to: Status::Resolved
            }
            .to_string(),
            "status cannot move from closed to resolved"
        );
        let codes = [
            (
                EventError::Invalid {
                    field: "title",
                    reason: String::new(),
                },
                "invalid",
            ),
            (
                EventError::InvalidTransition {
                    from: Status::Reported,
                    to: Status::Closed,
                },
                "invalid_transition",
            ),
            (EventError::Automerge(String::new()), "automerge"),
            (EventError::BadDocument(String::new()), "bad_document"),
        ];
        for (e, code) in codes {
            assert_eq!(e.code(), code);
        }
    }

    #[test]
    fn two_devices_converge_and_keep_the_title_conflict() {
        let (mut base, create) = created();
        let mut a = EventDoc::from_changes(&[&create]).unwrap();
        let mut b = EventDoc::load(&base.save()).unwrap();

        let a1 = a
            .edit(&author(1), &Title("Underpass flooded".to_owned()), T0 + 1)
            .unwrap();
        let a2 = a.edit(&author(1), &Severity(5), T0 + 2).unwrap();
        let b1 = b
            .edit(&author(2), &Title("Tunnel flooded".to_owned()), T0 + 3)
            .unwrap();
        let b2 = b
            .edit(
                &author(2),
                &note("Road closed", Some("bob"), T0 + 4),
                T0 + 4,
            )
            .unwrap();

        a.apply_changes(&[&b1, &b2]).unwrap();
        b.apply_changes(&[&a1, &a2]).unwrap();
        let view = a.view().unwrap();
        assert_eq!(b.view().unwrap(), view);
        assert_eq!(a.heads(), b.heads());

        assert_eq!(view.severity, 5);
        assert_eq!(view.notes.len(), 1);
        assert_eq!(view.conflicts.len(), 1, "{:?}", view.conflicts);
        let titles = &view.conflicts["title"];
        assert_eq!(titles.len(), 2);
        assert!(titles.contains(&"Underpass flooded".to_owned()));
        assert!(titles.contains(&"Tunnel flooded".to_owned()));
        assert!(titles.contains(&view.title), "the winner is one of them");

        // A later edit of the field, on either side, settles the conflict.
        let settle = b
            .edit(&author(2), &Title("Underpass flooded".to_owned()), T0 + 5)
            .unwrap();
        a.apply_changes(&[&settle]).unwrap();
        assert_eq!(a.view().unwrap().conflicts, BTreeMap::new());
        assert_eq!(a.view().unwrap(), b.view().unwrap());
    }

    #[test]
    fn equal_concurrent_values_are_not_a_conflict() {
        let (_, create) = created();
        let mut a = EventDoc::from_changes(&[&create]).unwrap();
        let mut b = EventDoc::from_changes(&[&create]).unwrap();
        let a1 = a.edit(&author(1), &Severity(4), T0).unwrap();
        let b1 = b.edit(&author(2), &Severity(4), T0).unwrap();
        a.apply_changes(&[&b1]).unwrap();
        b.apply_changes(&[&a1]).unwrap();
        assert_eq!(a.view().unwrap().conflicts, BTreeMap::new());
        assert_eq!(a.view().unwrap(), b.view().unwrap());
    }

    #[test]
    fn remote_status_changes_merge_whatever_the_workflow() {
        let mut base = doc_in(Status::Resolved);
        let mut a = EventDoc::load(&base.save()).unwrap();
        let mut b = EventDoc::load(&base.save()).unwrap();
        let closed = a
            .edit(&author(1), &EventEdit::Status(Status::Closed), T0)
            .unwrap();
        let reopened = b
            .edit(&author(2), &EventEdit::Status(Status::InProgress), T0)
            .unwrap();
        a.apply_changes(&[&reopened]).unwrap();
        b.apply_changes(&[&closed]).unwrap();
        let view = a.view().unwrap();
        assert_eq!(b.view().unwrap(), view);
        assert_eq!(view.conflicts["status"].len(), 2);
        assert!(view.conflicts["status"].contains(&"closed".to_owned()));
        assert!(view.conflicts["status"].contains(&"in_progress".to_owned()));
        // Local edits are checked against whichever status won.
        let next = if view.status == Status::Closed {
            Status::InProgress
        } else {
            Status::Resolved
        };
        a.edit(&author(1), &EventEdit::Status(next), T0 + 1)
            .unwrap();
        assert_eq!(a.view().unwrap().status, next);
        assert!(!a.view().unwrap().conflicts.contains_key("status"));
    }

    #[test]
    fn concurrent_locations_show_as_lon_lat_pairs() {
        let (_, create) = created();
        let mut a = EventDoc::from_changes(&[&create]).unwrap();
        let mut b = EventDoc::from_changes(&[&create]).unwrap();
        let a1 = a.edit(&author(1), &Location(point(1.5, 2.5)), T0).unwrap();
        let b1 = b
            .edit(&author(2), &Location(point(3.25, -4.0)), T0)
            .unwrap();
        a.apply_changes(&[&b1]).unwrap();
        b.apply_changes(&[&a1]).unwrap();
        let view = a.view().unwrap();
        assert_eq!(b.view().unwrap(), view);
        let mut locations = view.conflicts["location"].clone();
        locations.sort();
        assert_eq!(locations, ["1.5,2.5", "3.25,-4"]);
        assert_eq!(view.conflicts.len(), 1, "{:?}", view.conflicts);
        assert!(
            view.location == point(1.5, 2.5) || view.location == point(3.25, -4.0),
            "lon and lat win together: {:?}",
            view.location
        );
    }

    #[test]
    fn a_location_change_carries_both_coordinates_even_if_one_is_unchanged() {
        let (_, create) = created();
        let mut a = EventDoc::from_changes(&[&create]).unwrap();
        let mut b = EventDoc::from_changes(&[&create]).unwrap();
        // A moves north only, B moves east only.
        let north = a
            .edit(&author(1), &Location(point(13.4, 53.0)), T0)
            .unwrap();
        let east = b
            .edit(&author(2), &Location(point(14.0, 52.5)), T0)
            .unwrap();
        a.apply_changes(&[&east]).unwrap();
        b.apply_changes(&[&north]).unwrap();
        let view = a.view().unwrap();
        assert_eq!(b.view().unwrap(), view);
        assert!(
            view.location == point(13.4, 53.0) || view.location == point(14.0, 52.5),
            "a point someone chose, not a mix: {:?}",
            view.location
        );
        let mut locations = view.conflicts["location"].clone();
        locations.sort();
        assert_eq!(locations, ["13.4,53", "14,52.5"]);
    }

    #[test]
    fn an_edit_that_changes_nothing_is_refused() {
        let mut doc = doc_in(Status::Assigned);
        let heads = doc.heads();
        for edit in [
            Title("Flooded underpass".to_owned()),
            Title(" Flooded underpass ".to_owned()),
            Severity(3),
            Location(point(13.4, 52.5)),
            Assign("officer-1".to_owned()),
        ] {
            assert_eq!(
                doc.edit(&author(2), &edit, T0),
                Err(EventError::Unchanged),
                "{edit:?}"
            );
        }
        assert_eq!(doc.heads(), heads);

        // Choosing the current winner of a conflict is a change: it settles it.
        let mut other = EventDoc::load(&doc.save()).unwrap();
        let theirs = other.edit(&author(2), &Severity(1), T0).unwrap();
        doc.edit(&author(1), &Severity(5), T0).unwrap();
        doc.apply_changes(&[&theirs]).unwrap();
        let winner = doc.view().unwrap().severity;
        assert!(doc.view().unwrap().conflicts.contains_key("severity"));
        doc.edit(&author(1), &Severity(winner), T0).unwrap();
        assert_eq!(doc.view().unwrap().conflicts, BTreeMap::new());
        assert_eq!(doc.view().unwrap().severity, winner);
    }

    #[test]
    fn a_change_waits_for_its_parent() {
        let (mut doc, c0) = created();
        let c1 = doc
            .edit(&author(1), &Title("First".to_owned()), T0)
            .unwrap();
        let c2 = doc.edit(&author(1), &Severity(4), T0).unwrap();

        let mut other = EventDoc::from_changes(&[&c0]).unwrap();
        assert!(other.is_complete());
        other.apply_changes(&[&c2]).unwrap();
        assert!(!other.is_complete());
        assert_eq!(other.view().unwrap().severity, 3, "the child is held");

        // Saving keeps the held change.
        let mut reloaded = EventDoc::load(&other.save()).unwrap();
        assert!(!reloaded.is_complete());

        other.apply_changes(&[&c1]).unwrap();
        assert!(other.is_complete());
        assert_eq!(other.view().unwrap(), doc.view().unwrap());
        reloaded.apply_changes(&[&c1]).unwrap();
        assert!(reloaded.is_complete());
        assert_eq!(reloaded.view().unwrap(), doc.view().unwrap());

        // Nothing but a child: held, and no event to view yet.
        let lonely = EventDoc::from_changes(&[&c2]).unwrap();
        assert!(!lonely.is_complete());
        bad_document(lonely.view());
    }

    #[test]
    fn save_then_load_round_trips_and_editing_continues() {
        let (mut doc, _) = created();
        doc.edit(&author(1), &note("one", None, T0), T0).unwrap();
        doc.edit(&author(2), &Assign("ann".to_owned()), T0).unwrap();
        let mut loaded = EventDoc::load(&doc.save()).unwrap();
        assert_eq!(loaded.view().unwrap(), doc.view().unwrap());
        assert_eq!(loaded.heads(), doc.heads());

        let next = loaded.edit(&author(1), &note("two", None, T0), T0).unwrap();
        assert_eq!(Change::from_bytes(next.clone()).unwrap().seq(), 3);
        doc.apply_changes(&[&next]).unwrap();
        assert_eq!(loaded.view().unwrap(), doc.view().unwrap());

        assert_eq!(EventDoc::load(b"junk").unwrap_err().code(), "automerge");
        let saved = doc.save();
        assert_eq!(
            EventDoc::load(&saved[..saved.len() / 2])
                .unwrap_err()
                .code(),
            "automerge"
        );
    }

    #[test]
    fn a_thousand_changes_apply_in_one_batch() {
        let (mut doc, c0) = created();
        let mut changes = vec![c0];
        for i in 0..1000u64 {
            let edit = if i % 2 == 0 {
                Title(format!("title {i}"))
            } else {
                note(&format!("note {i}"), None, T0 + i)
            };
            let by = author(u8::try_from(i % 3).unwrap() + 1);
            changes.push(doc.edit(&by, &edit, T0 + i).unwrap());
        }
        let expected = doc.view().unwrap();
        assert_eq!(expected.notes.len(), 500);
        assert_eq!(expected.title, "title 998");

        let batch = EventDoc::from_changes(&refs(&changes)).unwrap();
        assert!(batch.is_complete());
        assert_eq!(batch.view().unwrap(), expected);

        let reversed: Vec<&[u8]> = changes.iter().rev().map(Vec::as_slice).collect();
        let batch = EventDoc::from_changes(&reversed).unwrap();
        assert!(batch.is_complete());
        assert_eq!(batch.view().unwrap(), expected);
    }

    #[test]
    fn garbage_changes_are_errors_and_change_nothing() {
        let (mut doc, c0) = created();
        let c1 = doc.edit(&author(1), &Severity(2), T0).unwrap();
        let saved = doc.save();
        let mut flipped = c1.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x01;
        let truncated = c1[..c1.len() - 1].to_vec();
        let mut extended = c1.clone();
        extended.push(0);
        let garbage: [&[u8]; 7] = [
            &[],
            b"garbage",
            &[1; 64],
            &flipped,
            &truncated,
            &extended,
            // A whole document is not one change.
            &saved,
        ];
        let mut other = EventDoc::from_changes(&[&c0]).unwrap();
        let before = other.save();
        for bad in garbage {
            let err = other.apply_changes(&[&c1, bad]).unwrap_err();
            assert_eq!(err.code(), "automerge", "{bad:?}");
            assert!(err.to_string().contains("change 1 of 2"), "{err}");
            assert_eq!(
                EventDoc::from_changes(&[bad]).unwrap_err().code(),
                "automerge"
            );
        }
        assert_eq!(other.save(), before, "a refused batch applies nothing");
    }

    /// `bytes` with the checksum recomputed, as a deliberately bad author
    /// would send them.
    fn resealed(mut bytes: Vec<u8>) -> Vec<u8> {
        if let Ok(change) = Change::from_bytes(bytes.clone()) {
            bytes[4..8].copy_from_slice(&change.hash().0[..4]);
        }
        bytes
    }

    #[test]
    fn a_change_that_makes_automerge_panic_is_an_error_and_changes_nothing() {
        let (mut doc, c0) = created();
        let c1 = doc.edit(&author(1), &Severity(2), T0).unwrap();
        // In automerge 0.12.0 this byte flip, with the checksum fixed up,
        // decodes and then panics inside the batch apply.
        let mut bad = c1.clone();
        let middle = bad.len() / 2;
        bad[middle] ^= 0x01;
        let bad = resealed(bad);
        assert!(Change::from_bytes(bad.clone()).is_ok());

        let mut other = EventDoc::from_changes(&[&c0]).unwrap();
        let before = other.save();
        let err = other.apply_changes(&[&bad]).unwrap_err();
        assert_eq!(err.code(), "automerge", "{err}");
        // A tripwire: if a newer Automerge returns an error here instead,
        // the catch in `apply_changes` may no longer be needed.
        assert!(err.to_string().contains("panicked"), "{err}");
        assert_eq!(other.save(), before);

        // The document still works.
        other.apply_changes(&[&c1]).unwrap();
        assert_eq!(other.view().unwrap(), doc.view().unwrap());
    }

    #[test]
    fn compressed_changes_are_refused() {
        let (mut doc, c0) = created();
        let big = doc
            .edit(&author(1), &Description("flood ".repeat(1000)), T0)
            .unwrap();
        let compressed = Change::from_bytes(big.clone())
            .unwrap()
            .bytes()
            .into_owned();
        assert!(compressed.len() < big.len() / 4);
        let mut other = EventDoc::from_changes(&[&c0]).unwrap();
        assert_eq!(
            other.apply_changes(&[&compressed]),
            Err(EventError::Automerge(
                "change 0 of 1: chunk type 2 is not an uncompressed change".to_owned()
            ))
        );
        other.apply_changes(&[&big]).unwrap();
        assert_eq!(other.view().unwrap(), doc.view().unwrap());
    }

    /// An event document that some other client spoiled with `spoil`.
    fn spoiled(spoil: impl FnOnce(&mut AutoCommit)) -> EventDoc {
        let (mut event, _) = created();
        event.doc.set_actor(actor_of(&author(9)));
        spoil(&mut event.doc);
        event.doc.commit_with(CommitOptions::default().with_time(0));
        event
    }

    #[test]
    fn documents_without_the_event_layout_are_bad_documents() {
        type Spoil = fn(&mut AutoCommit);
        let cases: [(Spoil, &str); 14] = [
            (|d| d.delete(ROOT, "title").unwrap(), "`title` is missing"),
            (
                |d| d.put(ROOT, "title", 5i64).unwrap(),
                "`title` is an int, expected a string",
            ),
            (
                |d| {
                    d.put_object(ROOT, "description", ObjType::Text).unwrap();
                },
                "`description` is a text object",
            ),
            (
                |d| d.put(ROOT, "status", "archived").unwrap(),
                "\"archived\" is not a known status",
            ),
            (
                |d| d.put(ROOT, "severity", 9i64).unwrap(),
                "`severity` is 9",
            ),
            (
                |d| d.put(ROOT, "severity", "high").unwrap(),
                "`severity` is a string",
            ),
            (|d| d.put(ROOT, "lon", 500.0).unwrap(), "longitude 500"),
            (|d| d.delete(ROOT, "lat").unwrap(), "`lat` is missing"),
            (
                |d| d.put(ROOT, "reported_ms", -1i64).unwrap(),
                "`reported_ms` is negative",
            ),
            (
                |d| d.put(ROOT, "assignee", true).unwrap(),
                "`assignee` is a boolean",
            ),
            (
                |d| d.put(ROOT, "notes", "none").unwrap(),
                "`notes` is a string, expected a list",
            ),
            (
                |d| {
                    let notes = list_id(d, "notes").unwrap();
                    d.insert(&notes, 0, "loose").unwrap();
                },
                "`notes[0]` is not a map",
            ),
            (
                |d| {
                    let media = list_id(d, "media").unwrap();
                    let m = d.insert_object(&media, 0, ObjType::Map).unwrap();
                    d.put(&m, "hash", "zz").unwrap();
                },
                "`media.hash` \"zz\" is not 64 hex digits",
            ),
            (
                |d| {
                    let media = list_id(d, "media").unwrap();
                    let m = d.insert_object(&media, 0, ObjType::Map).unwrap();
                    d.put(&m, "hash", "ab".repeat(32)).unwrap();
                    d.put(&m, "mime", "text/html").unwrap();
                },
                "`media.mime` \"text/html\" is not an accepted type",
            ),
        ];
        for (spoil, expected) in cases {
            let why = bad_document(spoiled(spoil).view());
            assert!(why.contains(expected), "{why:?} lacks {expected:?}");
        }
        bad_document(EventDoc::from_changes(&[]).unwrap().view());
    }

    #[test]
    fn a_spoiled_status_refuses_workflow_edits_but_not_others() {
        let mut doc = spoiled(|d| d.put(ROOT, "status", 7i64).unwrap());
        let heads = doc.heads();
        bad_document(doc.edit(&author(1), &EventEdit::Status(Status::Closed), T0));
        bad_document(doc.edit(&author(1), &Assign("ann".to_owned()), T0));
        assert_eq!(doc.heads(), heads);
        doc.edit(&author(1), &Title("Still editable".to_owned()), T0)
            .unwrap();
    }

    #[test]
    fn numbers_written_by_other_clients_are_read() {
        // JavaScript clients write whole numbers as ints, and may use uint.
        let doc = spoiled(|d| {
            d.put(ROOT, "lon", 13i64).unwrap();
            d.put(ROOT, "lat", ScalarValue::Uint(52)).unwrap();
            d.put(ROOT, "severity", ScalarValue::Uint(2)).unwrap();
            d.put(ROOT, "reported_ms", 7i64).unwrap();
        });
        let view = doc.view().unwrap();
        assert_eq!(view.location, point(13.0, 52.0));
        assert_eq!(view.severity, 2);
        assert_eq!(view.reported_ms, 7);
    }

    // ---- Properties ----

    #[derive(Debug, Clone)]
    enum Step {
        /// Device `.0` makes an edit (refused ones are skipped).
        Edit(usize, EventEdit),
        /// Device `.0` sends everything it holds to device `.1`.
        Deliver(usize, usize),
    }

    fn edit_strategy() -> impl Strategy<Value = EventEdit> {
        let names = || prop::sample::select(vec!["ann", "bob", "cy"]);
        prop_oneof![
            prop::sample::select(vec!["Flood", "Fire", "Crash"]).prop_map(|t| Title(t.to_owned())),
            "[a-z ]{0,12}".prop_map(Description),
            prop::sample::select(vec!["flood", "fire"]).prop_map(|c| Category(c.to_owned())),
            (1u8..=5).prop_map(Severity),
            (-4i32..=4, -4i32..=4)
                .prop_map(|(lon, lat)| Location(point(f64::from(lon) / 2.0, f64::from(lat) / 2.0))),
            ("[a-z]{1,8}", prop::option::of(names()), 0u64..10).prop_map(|(text, actor, at)| {
                EventEdit::Note {
                    text,
                    actor: actor.map(str::to_owned),
                    at_ms: T0 + at,
                }
            }),
            (any::<u8>(), "[a-z]{1,8}").prop_map(|(h, name)| Media(MediaRef {
                hash: [h; 32],
                mime: MediaType::Png,
                size: u64::from(h) + 1,
                name,
            })),
            names().prop_map(|n| Assign(n.to_owned())),
            prop::sample::select(Status::ALL.to_vec()).prop_map(EventEdit::Status),
        ]
    }

    fn step_strategy() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0..3usize, edit_strategy()).prop_map(|(d, e)| Step::Edit(d, e)),
            1 => (0..3usize, 0..3usize).prop_map(|(from, to)| Step::Deliver(from, to)),
        ]
    }

    /// xorshift64: a seeded shuffle for delivery orders, so proptest can
    /// replay a failing case from its seed.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    proptest! {
        #[test]
        fn three_devices_converge_in_any_delivery_order(
            steps in prop::collection::vec(step_strategy(), 1..40),
            seed in any::<u64>(),
        ) {
            let (_, c0) = created();
            let mut devices: Vec<EventDoc> =
                (0..3).map(|_| EventDoc::from_changes(&[&c0]).unwrap()).collect();
            let mut held: Vec<Vec<Vec<u8>>> = vec![vec![c0.clone()]; 3];
            let mut all = vec![c0.clone()];
            for (i, step) in steps.iter().enumerate() {
                match step {
                    Step::Edit(d, edit) => {
                        let by = author(u8::try_from(*d).unwrap() + 1);
                        match devices[*d].edit(&by, edit, T0 + i as u64) {
                            Ok(change) => {
                                held[*d].push(change.clone());
                                all.push(change);
                            }
                            Err(EventError::InvalidTransition { .. } | EventError::Unchanged) => {}
                            Err(other) => prop_assert!(false, "{edit:?}: {other}"),
                        }
                    }
                    Step::Deliver(from, to) => {
                        let sent = held[*from].clone();
                        devices[*to].apply_changes(&refs(&sent)).unwrap();
                        for change in sent {
                            if !held[*to].contains(&change) {
                                held[*to].push(change);
                            }
                        }
                    }
                }
            }

            for device in &mut devices {
                device.apply_changes(&refs(&all)).unwrap();
            }
            let expected = devices[0].view().unwrap();
            for device in &devices {
                prop_assert!(device.is_complete());
                prop_assert_eq!(&device.view().unwrap(), &expected);
            }

            // Fresh documents fed every change in shuffled order, in small
            // batches, so children often arrive before their parents.
            let mut rng = seed | 1;
            for _ in 0..2 {
                let mut order = all.clone();
                for i in (1..order.len()).rev() {
                    let j = (next(&mut rng) % (i as u64 + 1)) as usize;
                    order.swap(i, j);
                }
                let mut fresh = EventDoc::from_changes(&[]).unwrap();
                let mut rest = order.as_slice();
                while !rest.is_empty() {
                    let n = (1 + next(&mut rng) % 5) as usize;
                    let (batch, tail) = rest.split_at(n.min(rest.len()));
                    fresh.apply_changes(&refs(batch)).unwrap();
                    rest = tail;
                }
                prop_assert!(fresh.is_complete());
                prop_assert_eq!(&fresh.view().unwrap(), &expected);
            }
        }

    }

    proptest! {
        #[test]
        fn mutated_or_random_bytes_never_panic(
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            junk in prop::collection::vec(any::<u8>(), 0..128),
        ) {
            let (mut doc, c0) = created();
            let c1 = doc.edit(&author(1), &note("hello", Some("ann"), T0), T0).unwrap();
            let mut mutated = c1.clone();
            let i = at.index(mutated.len());
            mutated[i] = byte;
            let mutated = resealed(mutated);
            let mut other = EventDoc::from_changes(&[&c0]).unwrap();
            if other.apply_changes(&[&mutated]).is_ok() {
                let _ = other.view();
            }
            let mut header_junk = c1[..9].to_vec();
            header_junk.extend(&junk);
            let _ = EventDoc::from_changes(&[&junk]);
            let _ = EventDoc::from_changes(&[&header_junk]);
            let _ = EventDoc::load(&junk);
        }
    }
}
