//! The field rules every new event and local edit must pass, and the
//! checks on raw change bytes before they are verified or applied.

use automerge::Change;

use super::{key, EventError, NewEvent};
use crate::ids::AuthorId;
use crate::limits::{
    MAX_CATEGORY_BYTES, MAX_DESCRIPTION_BYTES, MAX_SEVERITY, MAX_TITLE_BYTES, MIN_SEVERITY,
};

impl NewEvent {
    /// Checks every field with the rules `EventDoc::create` applies, without
    /// building a document (cheap: for validating imports up front).
    pub fn validate(&self) -> Result<(), EventError> {
        self.checked().map(|_| ())
    }

    /// The trimmed title and the reported time, once every field passed.
    pub(super) fn checked(&self) -> Result<(&str, i64), EventError> {
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

pub(super) fn decode_change(bytes: &[u8]) -> Result<Change, EventError> {
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

// ---- Field rules ----

pub(super) fn invalid(field: &'static str, reason: String) -> EventError {
    EventError::Invalid { field, reason }
}

/// The rules every text field shares: at most `max` UTF-8 bytes, not
/// blank when `required`, and no control characters except newline and
/// tab (which keep multi-line text readable).
pub(super) fn check_text(
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
pub(super) fn check_title(title: &str) -> Result<&str, EventError> {
    let title = title.trim();
    check_text(key::TITLE, title, MAX_TITLE_BYTES, true)?;
    Ok(title)
}

pub(super) fn check_severity(severity: u8) -> Result<(), EventError> {
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
pub(super) fn check_ms(field: &'static str, ms: u64) -> Result<i64, EventError> {
    i64::try_from(ms).map_err(|_| invalid(field, format!("{ms} ms is out of range")))
}
