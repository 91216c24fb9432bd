//! Redaction: erasing personal data from an event's views while the log
//! keeps every entry as its author signed it.
//!
//! A `redaction` entry ([`Redaction`]) names the values it erases by
//! field and SHA-256 ([`value_hash`]), never by the text itself, and the
//! media blobs by their hash. Every store keeps the redactions it has
//! applied per event ([`Redactions`]) and masks each view it derives: a
//! listed value, wherever it stands (the field, a note, a concurrent
//! value kept as a conflict), reads [`REDACTED`], and a listed blob is no
//! longer among the event's media. Masking depends only on the document
//! and the set of redactions, so every device shows the same view
//! whatever order it learnt them in; an edit made after the redaction,
//! with a new value, shows again.
//!
//! What stays: the signed entries (so every chain still verifies), and in
//! them the Automerge changes that carried the text. `docs/security.md`
//! says what that means for an erasure request.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::body::{RedactedField, RedactedValue, Redaction};
use crate::event::EventView;
use crate::limits::MAX_REDACTED_ITEMS;

/// What a view shows where a redacted value stood.
pub const REDACTED: &str = "[redacted]";

/// The hash a redaction names a value by: SHA-256 over a domain tag, the
/// field's name, a zero byte and the value's UTF-8 (`docs/protocol.md` 1.6).
pub fn value_hash(field: RedactedField, value: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"sentinel redaction v1\0");
    h.update(field.as_str().as_bytes());
    h.update([0u8]);
    h.update(value.as_bytes());
    h.finalize().into()
}

/// Every redaction a store holds about one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redactions {
    values: BTreeSet<RedactedValue>,
    blobs: BTreeSet<[u8; 32]>,
}

impl Redactions {
    pub fn add(&mut self, r: &Redaction) {
        self.values.extend(r.values.iter().copied());
        self.blobs.extend(r.blobs.iter().copied());
    }

    /// One erased value, as a store keeps it.
    pub fn add_value(&mut self, v: RedactedValue) {
        self.values.insert(v);
    }

    /// One erased blob, as a store keeps it.
    pub fn add_blob(&mut self, hash: [u8; 32]) {
        self.blobs.insert(hash);
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.blobs.is_empty()
    }

    pub fn erases_blob(&self, hash: &[u8; 32]) -> bool {
        self.blobs.contains(hash)
    }

    fn erases(&self, field: RedactedField, value: &str) -> bool {
        !self.values.is_empty()
            && self.values.contains(&RedactedValue {
                field,
                hash: value_hash(field, value),
            })
    }

    /// Masks `view` in place; whether anything changed.
    pub fn mask(&self, view: &mut EventView) -> bool {
        if self.is_empty() {
            return false;
        }
        let mut changed = false;
        let mut put = |field: RedactedField, text: &mut String| {
            if text != REDACTED && self.erases(field, text) {
                *text = REDACTED.to_owned();
                changed = true;
            }
        };
        put(RedactedField::Title, &mut view.title);
        put(RedactedField::Description, &mut view.description);
        for n in &mut view.notes {
            put(RedactedField::Note, &mut n.text);
        }
        for (name, field) in [
            ("title", RedactedField::Title),
            ("description", RedactedField::Description),
        ] {
            if let Some(values) = view.conflicts.get_mut(name) {
                for v in values.iter_mut() {
                    put(field, v);
                }
            }
        }
        let before = view.media.len();
        view.media.retain(|m| !self.blobs.contains(&m.hash));
        changed || view.media.len() != before
    }
}

/// What an admin asks to erase from an event, as its current view shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedactionRequest {
    pub title: bool,
    pub description: bool,
    /// Indexes into the view's notes.
    pub notes: Vec<usize>,
    /// Hashes among the view's media.
    pub media: Vec<[u8; 32]>,
}

/// Why a request cannot become a redaction; each names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    #[error("notes: the event has no note number {0}")]
    NoSuchNote(usize),
    #[error("media: the event has no media {0}")]
    NoSuchMedia(String),
    #[error("the request erases nothing: name a field, a note or media")]
    Nothing,
    #[error("the request names more than {MAX_REDACTED_ITEMS} values or media")]
    TooMany,
    #[error("{0}: already redacted")]
    AlreadyRedacted(&'static str),
}

/// The values and blobs a redaction of `request` lists, read from the
/// event's current (already masked) view: the values' hashes, the
/// blobs' hashes.
pub fn plan(
    view: &EventView,
    request: &RedactionRequest,
) -> Result<(Vec<RedactedValue>, Vec<[u8; 32]>), PlanError> {
    let mut values = BTreeSet::new();
    let mut add = |field: RedactedField, text: &str| {
        if text == REDACTED {
            return Err(PlanError::AlreadyRedacted(field.as_str()));
        }
        values.insert(RedactedValue {
            field,
            hash: value_hash(field, text),
        });
        Ok(())
    };
    if request.title {
        add(RedactedField::Title, &view.title)?;
        // Every concurrent value too: a conflict is the same field.
        for v in view.conflicts.get("title").into_iter().flatten() {
            if v != REDACTED {
                add(RedactedField::Title, v)?;
            }
        }
    }
    if request.description {
        add(RedactedField::Description, &view.description)?;
        for v in view.conflicts.get("description").into_iter().flatten() {
            if v != REDACTED {
                add(RedactedField::Description, v)?;
            }
        }
    }
    for &i in &request.notes {
        let note = view.notes.get(i).ok_or(PlanError::NoSuchNote(i))?;
        add(RedactedField::Note, &note.text)?;
    }
    let mut blobs = BTreeSet::new();
    for h in &request.media {
        if !view.media.iter().any(|m| &m.hash == h) {
            return Err(PlanError::NoSuchMedia(
                h.iter().map(|b| format!("{b:02x}")).collect(),
            ));
        }
        blobs.insert(*h);
    }
    if values.is_empty() && blobs.is_empty() {
        return Err(PlanError::Nothing);
    }
    if values.len() > MAX_REDACTED_ITEMS || blobs.len() > MAX_REDACTED_ITEMS {
        return Err(PlanError::TooMany);
    }
    Ok((values.into_iter().collect(), blobs.into_iter().collect()))
}

#[cfg(test)]
mod tests;
