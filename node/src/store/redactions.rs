//! Redactions in the views (`docs/protocol.md` 1.6): what each event's
//! `redaction` entries erase, and the blobs they erase from the blob
//! folder.
//!
//! Two view tables (invariant 6: `rebuild-views` empties them and the
//! projector fills them again from the log): `redactions`, the values
//! (field and hash) and blobs (field `blob`) erased per event, read to
//! mask each view derived from the event's document
//! ([`sentinel_schema::redact::Redactions`]); and `redacted_blobs`, every
//! erased blob with whether its file has been removed yet. Files are
//! removed after the views' transaction commits (`crate::views`), so a
//! crash in between leaves `erased = 0` rows the next pass removes; a
//! rebuild marks every one unerased again, and removing a file that is
//! already gone does nothing.

use std::collections::BTreeSet;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use sentinel_schema::redact::Redactions;
use sentinel_schema::{
    EventDoc, EventId, EventView, RedactedField, RedactedValue, Redaction, SignedEntry,
};

use super::{Store, StoreError};

/// The `field` a blob's row has in `redactions`.
const BLOB: &str = "blob";

pub(super) fn migrate(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "
        -- View: what each event's redactions erase (values by field and
        -- hash, blobs under the field 'blob').
        CREATE TABLE redactions (
            event BLOB NOT NULL,
            field TEXT NOT NULL,
            hash  BLOB NOT NULL,
            entry BLOB NOT NULL,
            PRIMARY KEY (event, field, hash)
        ) STRICT, WITHOUT ROWID;

        -- View: every blob a redaction erased; erased = 1 once its file
        -- is removed from the blob folder.
        CREATE TABLE redacted_blobs (
            hash   BLOB PRIMARY KEY,
            event  BLOB NOT NULL,
            entry  BLOB NOT NULL,
            erased INTEGER NOT NULL DEFAULT 0
        ) STRICT;
        CREATE INDEX redacted_blobs_pending ON redacted_blobs (hash) WHERE erased = 0;
        ",
    )?;
    Ok(())
}

/// Empties the view tables (`rebuild-views`).
pub(super) const VIEW_TABLES: &str = "DELETE FROM redactions; DELETE FROM redacted_blobs;";

/// Takes a counted `redaction` entry into the views: its rows, and the
/// event's media rows of the blobs it erases. The caller rewrites the
/// event's row.
pub(super) fn project(conn: &Connection, e: &SignedEntry, r: &Redaction) -> Result<(), StoreError> {
    let entry = e.id();
    let mut put = conn.prepare_cached(
        "INSERT OR IGNORE INTO redactions (event, field, hash, entry) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for v in &r.values {
        put.execute(params![
            r.event.0,
            v.field.as_str(),
            v.hash,
            entry.as_bytes()
        ])?;
    }
    for h in &r.blobs {
        put.execute(params![r.event.0, BLOB, h, entry.as_bytes()])?;
        conn.prepare_cached(
            "INSERT OR IGNORE INTO redacted_blobs (hash, event, entry) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![h, r.event.0, entry.as_bytes()])?;
        conn.prepare_cached("DELETE FROM event_media WHERE event = ?1 AND hash = ?2")?
            .execute(params![r.event.0, h])?;
    }
    Ok(())
}

/// Whether any event has a redaction (checked once per projected chunk,
/// so events are looked up only when one may).
pub(super) fn any(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM redactions)")?
        .query_row([], |r| r.get(0))?)
}

/// Every redaction the views hold about `event`.
pub(super) fn of_event(conn: &Connection, event: EventId) -> Result<Redactions, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT field, hash FROM redactions WHERE event = ?1")?;
    let mut rows = stmt.query([event.0])?;
    let mut out = Redactions::default();
    while let Some(r) = rows.next()? {
        let field: String = r.get(0)?;
        let hash: Vec<u8> = r.get(1)?;
        let hash = <[u8; 32]>::try_from(hash).map_err(|_| StoreError::CorruptColumn {
            column: "redactions.hash",
        })?;
        match RedactedField::parse(&field) {
            Some(field) => out.add_value(RedactedValue { field, hash }),
            None if field == BLOB => out.add_blob(hash),
            None => {
                return Err(StoreError::CorruptColumn {
                    column: "redactions.field",
                })
            }
        }
    }
    Ok(out)
}

/// Masks `view` with the event's redactions (`any`: whether the views
/// hold any redaction at all; if not, nothing is looked up).
pub(super) fn mask(
    conn: &Connection,
    event: EventId,
    view: &mut EventView,
    any: bool,
) -> Result<(), StoreError> {
    if any {
        of_event(conn, event)?.mask(view);
    }
    Ok(())
}

/// The masked views of redacted events the chunk held no change of,
/// read from their saved documents, for the projector to write again.
/// An event with no document yet (the redaction came first) or none
/// readable as an event is left out: nothing is shown, and the projector
/// masks the row when it writes one.
pub(super) fn masked_views(
    conn: &Connection,
    mut events: Vec<EventId>,
) -> Result<Vec<(EventId, EventView)>, StoreError> {
    events.sort_unstable();
    events.dedup();
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        let saved: Option<Vec<u8>> = conn
            .prepare_cached("SELECT doc FROM documents WHERE event = ?1 AND complete = 1")?
            .query_row([event.0], |r| r.get(0))
            .optional()?;
        let Some(Ok(mut view)) = saved.map(|b| EventDoc::load(&b).and_then(|d| d.view())) else {
            continue;
        };
        mask(conn, event, &mut view, true)?;
        out.push((event, view));
    }
    Ok(out)
}

fn hashes(conn: &Connection, sql: &str) -> Result<Vec<[u8; 32]>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let hash: Vec<u8> = r.get(0)?;
        out.push(
            <[u8; 32]>::try_from(hash).map_err(|_| StoreError::CorruptColumn {
                column: "redacted_blobs.hash",
            })?,
        );
    }
    Ok(out)
}

impl Store {
    /// Every redaction the views hold about `event`.
    pub fn redactions(&self, event: EventId) -> Result<Redactions, StoreError> {
        of_event(self.conn(), event)
    }

    /// Whether a redaction erased the blob `hash` (never served, fetched
    /// or accepted again).
    pub fn blob_erased(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM redacted_blobs WHERE hash = ?1)")?
            .query_row([hash.as_slice()], |r| r.get(0))?)
    }

    /// Every blob a redaction erased.
    pub fn erased_blobs(&self) -> Result<BTreeSet<[u8; 32]>, StoreError> {
        Ok(hashes(self.conn(), "SELECT hash FROM redacted_blobs")?
            .into_iter()
            .collect())
    }

    /// Erased blobs whose file may still be in the blob folder.
    pub fn blobs_to_erase(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        hashes(
            self.conn(),
            "SELECT hash FROM redacted_blobs WHERE erased = 0 ORDER BY hash",
        )
    }

    /// Records that the erased blob's file is gone.
    pub fn mark_erased(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("UPDATE redacted_blobs SET erased = 1 WHERE hash = ?1")?
            .execute([hash.as_slice()])?;
        Ok(())
    }
}
