//! [`EventDoc`]: creating a document, local edits (checked, then written
//! as one change each), merging changes, and saving and loading.

use std::panic::{self, AssertUnwindSafe};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, AutoCommit, AutomergeError, Change, ObjId, ObjType, ReadDoc, ScalarValue, ROOT,
};

use super::check::{check_ms, check_severity, check_text, check_title, decode_change, invalid};
use super::read::{list_id, read_status, single_value};
use super::{
    automerge_error, key, to_hex, EventDoc, EventEdit, EventError, MediaRef, NewEvent, Status,
};
use crate::body::Body;
use crate::entry::SignedEntry;
use crate::geo::Point;
use crate::ids::AuthorId;
use crate::limits::{
    MAX_ACTOR_BYTES, MAX_ASSIGNEE_BYTES, MAX_CATEGORY_BYTES, MAX_DESCRIPTION_BYTES,
    MAX_MEDIA_BYTES, MAX_NAME_BYTES, MAX_NOTE_BYTES,
};

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

    /// The Automerge changes `entries` carry (their `event_change`
    /// bodies), in the order given; entries of other kinds are skipped.
    pub fn changes_of(entries: &[SignedEntry]) -> Vec<&[u8]> {
        entries
            .iter()
            .filter_map(|e| match &e.entry().body {
                Body::EventChange(c) => Some(c.change.as_slice()),
                _ => None,
            })
            .collect()
    }

    /// Applies `changes` as one batch; if the batch is refused, one by
    /// one, so a change Automerge cannot take (still signed by its author
    /// and kept in the log) does not hold back the others. Both servers'
    /// projectors build views this way, so a view is the same wherever it
    /// is derived (invariant 6).
    pub fn apply_or_keep(&mut self, changes: &[&[u8]]) {
        if self.apply_changes(changes).is_err() {
            for change in changes {
                let _ = self.apply_changes(std::slice::from_ref(change));
            }
        }
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
                    super::panic_message(payload.as_ref())
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
    /// still waiting for their dependencies. A panic in Automerge is an
    /// error (see `apply_changes`): one author's document must not take a
    /// node down. After such an error the document should be dropped.
    pub fn save(&mut self) -> Result<Vec<u8>, EventError> {
        super::guarded("saving the document", || {
            #[cfg(any(test, feature = "testing"))]
            self.panic_for_tests(super::testing::PANIC_IN_SAVE);
            self.doc.save()
        })
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
                super::panic_message(payload.as_ref())
            ))),
        }
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

pub(super) fn actor_of(author: &AuthorId) -> ActorId {
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
