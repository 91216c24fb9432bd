//! The projector: derives the views (documents, events with geometry and
//! spatial index, full-text index, media, sensor readings) from the log.
//!
//! It walks the log in position order and records how far it got
//! (`meta.projected_upto`) in the same transaction as the views it wrote,
//! so after a crash it resumes exactly where it stopped. Local writes
//! project their own entry in the transaction that appends it, so a report
//! is visible to queries the moment it is acknowledged. Changes to one
//! document are applied to Automerge as one batch per chunk; an event
//! created by one change and not edited yet (the common case) takes a
//! cheap path instead, its view read straight from the change and the
//! change itself saved as its document (`project_created`). Every event
//! row is written masked by the event's redactions ([`super::redactions`]).

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use sentinel_schema::{
    AuthorId, Body, EventDoc, EventId, EventView, Hlc, MediaAttached, Point, SignedEntry,
};

use super::redactions;
use super::verdict::{counts, revoked_authors, Revoked};
use super::{Store, StoreError};

const PROJECTED_UPTO: &str = "projected_upto";
/// Entries projected per transaction when catching up.
pub const CHUNK: usize = 4096;

/// Events whose view changed, with their position (for the R-tree).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Projected {
    pub entries: usize,
    pub events: Vec<(EventId, Point)>,
    /// Events whose document could not be read as an event (kept in the
    /// log and in `documents`, shown nowhere).
    pub unviewable: Vec<EventId>,
    /// Events the views no longer show: a revocation learned since took
    /// away the entries that made them (see [`super::revoked`]).
    pub removed: Vec<EventId>,
}

impl Projected {
    pub(crate) fn merge(&mut self, other: Projected) {
        self.entries += other.entries;
        self.events.extend(other.events);
        self.unviewable.extend(other.unviewable);
        self.removed.extend(other.removed);
    }
}

pub(crate) fn projected_upto(conn: &Connection) -> Result<i64, StoreError> {
    let v: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [PROJECTED_UPTO],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match v {
        Some(b) => i64::from_be_bytes(<[u8; 8]>::try_from(b.as_slice()).map_err(|_| {
            StoreError::CorruptColumn {
                column: "meta.projected_upto",
            }
        })?),
        None => 0,
    })
}

pub(super) fn set_projected_upto(conn: &Connection, pos: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![PROJECTED_UPTO, pos.to_be_bytes().as_slice()])?;
    Ok(())
}

impl Store {
    /// How far the views have projected the log: the position of the last
    /// entry they reflect (committed with them).
    pub fn projected_upto(&self) -> Result<i64, StoreError> {
        projected_upto(self.conn())
    }

    /// Projects every log entry the views have not seen yet. What
    /// revocations learned since the last call changed in the views is
    /// included (see [`super::revoked`]).
    pub fn project_pending(&mut self) -> Result<Projected, StoreError> {
        let mut total = Projected::default();
        while let Some(done) = self.project_chunk()? {
            total.merge(done);
        }
        Ok(total)
    }

    /// Projects the next [`CHUNK`] entries the views have not seen, in
    /// one transaction; `None` once the views are up to date (with what
    /// revocations learned since the last call changed in them, as
    /// [`Self::project_pending`]). A caller that must not hold the store
    /// for long (a session's event handler, a poller) takes a few chunks
    /// at a time and leaves the rest for its next turn.
    pub fn project_chunk(&mut self) -> Result<Option<Projected>, StoreError> {
        let enforced = std::mem::take(&mut self.enforced);
        let tx = self.conn_mut().transaction()?;
        let from = projected_upto(&tx)?;
        let rows = load_after(&tx, from, CHUNK)?;
        let Some(&(last, _)) = rows.last() else {
            let none = enforced == Projected::default();
            return Ok((!none).then_some(enforced));
        };
        let mut done = project_entries(&tx, &rows)?;
        set_projected_upto(&tx, last)?;
        tx.commit()?;
        done.merge(enforced);
        Ok(Some(done))
    }

    /// Empties every view and projects the whole log again.
    pub fn rebuild_views(&mut self) -> Result<Projected, StoreError> {
        let tx = self.conn_mut().transaction()?;
        tx.execute_batch(
            "DELETE FROM documents;
             DELETE FROM event_media;
             DELETE FROM checkpoint_heads;
             DELETE FROM events_fts;
             DELETE FROM idx_events_geom;
             DELETE FROM events;",
        )?;
        tx.execute_batch(super::readings::VIEW_TABLES)?;
        tx.execute_batch(super::redactions::VIEW_TABLES)?;
        set_projected_upto(&tx, 0)?;
        tx.commit()?;
        self.project_pending()
    }
}

/// Projects, inside the caller's transaction, every entry the log holds
/// past the mark, and moves the mark.
pub(super) fn catch_up_in(conn: &Connection) -> Result<Projected, StoreError> {
    let mut total = Projected::default();
    loop {
        let from = projected_upto(conn)?;
        let rows = load_after(conn, from, CHUNK)?;
        let Some(&(last, _)) = rows.last() else {
            return Ok(total);
        };
        total.merge(project_entries(conn, &rows)?);
        set_projected_upto(conn, last)?;
    }
}

fn load_after(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<(i64, SignedEntry)>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT pos, bytes FROM entries WHERE pos > ?1 ORDER BY pos LIMIT ?2")?;
    let mut rows = stmt.query(params![after, limit as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let pos: i64 = r.get(0)?;
        let bytes: Vec<u8> = r.get(1)?;
        let e = SignedEntry::from_bytes(bytes)
            .map_err(|source| StoreError::CorruptEntry { pos, source })?;
        out.push((pos, e));
    }
    Ok(out)
}

/// Projects log entries (already in the log, in position order) into the
/// views, inside the caller's transaction.
pub(super) fn project_entries<E: std::borrow::Borrow<SignedEntry>>(
    conn: &Connection,
    rows: &[(i64, E)],
) -> Result<Projected, StoreError> {
    // Each event's changes in log order, with the author of the first.
    let mut changes: BTreeMap<EventId, (AuthorId, Vec<&[u8]>)> = BTreeMap::new();
    let mut newest: BTreeMap<EventId, Hlc> = BTreeMap::new();
    let mut media_events: Vec<EventId> = Vec::new();
    let mut sensors = super::readings::SensorChanges::default();
    // Events a redaction in this chunk names; whether any event has one.
    let mut redacted: Vec<EventId> = Vec::new();
    let mut any = redactions::any(conn)?;
    // A revoked author's entries past its last valid seq count nowhere
    // (`super::revoked`); they are taken in (the mark moves) and skipped.
    let revoked = revoked_authors(conn)?;
    for e in rows
        .iter()
        .map(|(_, e)| e.borrow())
        .filter(|e| counts(&revoked, e))
    {
        match &e.entry().body {
            Body::EventChange(c) => {
                changes
                    .entry(c.event)
                    .or_insert_with(|| (e.author(), Vec::new()))
                    .1
                    .push(&c.change);
                let h = newest.entry(c.event).or_default();
                *h = (*h).max(e.entry().hlc);
            }
            Body::MediaAttached(m) => {
                insert_media(conn, e, m)?;
                media_events.push(m.event);
                let h = newest.entry(m.event).or_default();
                *h = (*h).max(e.entry().hlc);
            }
            Body::HubCheckpoint(c) => {
                // When a breach found while projecting is recorded: the
                // projector has no caller-supplied time, and the record is
                // for people.
                super::checkpoints::project(conn, e.author(), e.id(), c, crate::clock::now_ms())?;
            }
            Body::SensorReading(r) => {
                super::readings::project(conn, e, r)?;
                sensors.add(e, r);
            }
            // Not an update of the event's HLC: its row must not depend on
            // whether the redaction came before the event or after it.
            Body::Redaction(r) => {
                redactions::project(conn, e, r)?;
                any = true;
                redacted.push(r.event);
            }
            // Grants and revocations are read from the log where needed.
            _ => {}
        }
    }
    sensors.write(conn)?;
    let mut out = Projected {
        entries: rows.len(),
        ..Projected::default()
    };
    for (event, (author, batch)) in &changes {
        let hlc = newest.get(event).copied().unwrap_or_default();
        if let [change] = batch.as_slice() {
            if let Some(mut view) = project_created(conn, *event, change)? {
                redactions::mask(conn, *event, &mut view, any)?;
                write_event_row(conn, *event, &view, hlc, Some(author))?;
                out.events.push((*event, view.location));
                continue;
            }
        }
        let doc = match update_document(conn, *event, batch)? {
            Document::Complete(doc) => doc,
            Document::Incomplete => continue,
            Document::Unsaveable => {
                out.unviewable.push(*event);
                continue;
            }
        };
        match doc.view() {
            Ok(mut view) => {
                redactions::mask(conn, *event, &mut view, any)?;
                write_event_row(conn, *event, &view, hlc, None)?;
                out.events.push((*event, view.location));
            }
            Err(_) => out.unviewable.push(*event),
        }
    }
    // Media for events whose document did not change in this batch.
    for event in media_events {
        if !changes.contains_key(&event) {
            let hlc = newest.get(&event).copied().unwrap_or_default();
            conn.prepare_cached(
                "UPDATE events SET
                    n_media = (SELECT count(*) FROM event_media WHERE event = ?1),
                    updated_hlc_ms = max(updated_hlc_ms, ?2),
                    updated_hlc_counter = CASE WHEN ?2 > updated_hlc_ms THEN ?3
                        WHEN ?2 = updated_hlc_ms THEN max(updated_hlc_counter, ?3)
                        ELSE updated_hlc_counter END
                 WHERE event = ?1",
            )?
            .execute(params![event.0, hlc.wall_ms as i64, hlc.counter])?;
        }
    }
    // Redacted events whose document did not change: rewritten masked.
    redacted.retain(|e| !changes.contains_key(e));
    for (event, view) in redactions::masked_views(conn, redacted)? {
        let hlc = newest.get(&event).copied().unwrap_or_default();
        write_event_row(conn, event, &view, hlc, None)?;
        out.events.push((event, view.location));
    }
    Ok(out)
}

/// An `event_media` row for a `media_attached` entry; a hash already
/// attached to the event keeps its first row, and one a redaction of the
/// event erased gets none.
fn insert_media(conn: &Connection, e: &SignedEntry, m: &MediaAttached) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO event_media (event, hash, mime, size, name, entry)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE NOT EXISTS (SELECT 1 FROM redactions
             WHERE event = ?1 AND field = 'blob' AND hash = ?2)",
    )?
    .execute(params![
        m.event.0,
        m.hash,
        m.mime.as_mime(),
        m.size as i64,
        m.name,
        e.id().as_bytes()
    ])?;
    Ok(())
}

/// Derives one event's views again from the entries about it that the
/// views have taken in (position at most `mark`) and that count under
/// `revoked`: its document, its row with the spatial and full-text index,
/// and its media. Returns where the event is when it is still shown,
/// `None` when it no longer is (no change left of it, or none that makes
/// a readable event).
pub(super) fn reproject_event(
    conn: &Connection,
    event: EventId,
    mark: i64,
    revoked: &Revoked,
) -> Result<Option<Point>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT pos, bytes FROM entries WHERE event = ?1 AND pos <= ?2 ORDER BY pos",
    )?;
    let mut rows = stmt.query(params![event.0, mark])?;
    let mut entries = Vec::new();
    while let Some(r) = rows.next()? {
        let pos: i64 = r.get(0)?;
        let e = SignedEntry::from_bytes(r.get(1)?)
            .map_err(|source| StoreError::CorruptEntry { pos, source })?;
        if counts(revoked, &e) {
            entries.push(e);
        }
    }
    delete_event_row(conn, event)?;
    conn.prepare_cached("DELETE FROM event_media WHERE event = ?1")?
        .execute([event.0])?;
    conn.prepare_cached("DELETE FROM redactions WHERE event = ?1")?
        .execute([event.0])?;
    let mut newest = Hlc::default();
    for e in &entries {
        match &e.entry().body {
            Body::MediaAttached(m) => insert_media(conn, e, m)?,
            Body::Redaction(r) => {
                redactions::project(conn, e, r)?;
                continue;
            }
            _ => {}
        }
        newest = newest.max(e.entry().hlc);
    }
    let changes = EventDoc::changes_of(&entries);
    if changes.is_empty() {
        conn.prepare_cached("DELETE FROM documents WHERE event = ?1")?
            .execute([event.0])?;
        return Ok(None);
    }
    let mut doc = EventDoc::from_changes(&[])
        .map_err(|source| StoreError::CorruptDocument { event, source })?;
    doc.apply_or_keep(&changes);
    let doc = match save_document(conn, event, doc)? {
        Document::Complete(doc) => doc,
        Document::Incomplete | Document::Unsaveable => return Ok(None),
    };
    match doc.view() {
        Ok(mut view) => {
            redactions::mask(conn, event, &mut view, true)?;
            write_event_row(conn, event, &view, newest, None)?;
            Ok(Some(view.location))
        }
        Err(_) => Ok(None),
    }
}

/// Removes an event's row, with its spatial and full-text index entries.
fn delete_event_row(conn: &Connection, event: EventId) -> Result<(), StoreError> {
    let fid: Option<i64> = conn
        .prepare_cached("SELECT fid FROM events WHERE event = ?1")?
        .query_row([event.0], |r| r.get(0))
        .optional()?;
    if let Some(fid) = fid {
        conn.prepare_cached("DELETE FROM idx_events_geom WHERE pkid = ?1")?
            .execute([fid])?;
        conn.prepare_cached("DELETE FROM events_fts WHERE rowid = ?1")?
            .execute([fid])?;
        conn.prepare_cached("DELETE FROM events WHERE fid = ?1")?
            .execute([fid])?;
    }
    Ok(())
}

/// The cheap path for the common case, an event created by one change
/// and not edited yet: when the event has no document and `change` is a
/// plain creation ([`EventDoc::created_view`]), its view is read straight
/// from the change and the change's own bytes are saved as the document
/// (Automerge loads a change as a document with that one change, complete
/// since a creation depends on nothing). Nothing is built, encoded or
/// compressed; the first later change about the event loads those bytes
/// and merges in Automerge as always. `None`: take the full path.
fn project_created(
    conn: &Connection,
    event: EventId,
    change: &[u8],
) -> Result<Option<EventView>, StoreError> {
    let Some(view) = EventDoc::created_view(change) else {
        return Ok(None);
    };
    let inserted = conn
        .prepare_cached(
            "INSERT INTO documents (event, doc, complete) VALUES (?1, ?2, 1)
             ON CONFLICT (event) DO NOTHING",
        )?
        .execute(params![event.0, change])?;
    // A document already held (the event has earlier changes): merge.
    Ok((inserted == 1).then_some(view))
}

/// Applies a batch of changes to an event's document and saves it.
fn update_document(
    conn: &Connection,
    event: EventId,
    batch: &[&[u8]],
) -> Result<Document, StoreError> {
    let stored: Option<(Vec<u8>, bool)> = conn
        .prepare_cached("SELECT doc, complete FROM documents WHERE event = ?1")?
        .query_row([event.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let doc = match stored {
        Some((bytes, true)) => match EventDoc::load(&bytes) {
            Ok(mut doc) => {
                doc.apply_or_keep(batch);
                doc
            }
            // A saved document that no longer loads (damaged, or one
            // Automerge panics on) is rebuilt from the log, as the hub
            // does: one bad document must not stop the projector.
            Err(_) => rebuild_document(conn, event)?,
        },
        // An incomplete document may be missing changes Automerge was
        // holding in memory: rebuild it from every change in the log.
        Some((_, false)) => rebuild_document(conn, event)?,
        None => {
            let mut doc = EventDoc::from_changes(&[])
                .map_err(|source| StoreError::CorruptDocument { event, source })?;
            doc.apply_or_keep(batch);
            doc
        }
    };
    save_document(conn, event, doc)
}

/// Saves an event's document and says what it is.
fn save_document(
    conn: &Connection,
    event: EventId,
    mut doc: EventDoc,
) -> Result<Document, StoreError> {
    let complete = doc.is_complete();
    let Ok(saved) = doc.save() else {
        // Automerge could not save it (it panicked: `EventDoc::save`).
        // The changes stay in the log; the saved document, if any, is
        // marked for a rebuild from the log, and the event is shown
        // nowhere until one succeeds. The node carries on with the rest.
        conn.prepare_cached(
            "INSERT INTO documents (event, doc, complete) VALUES (?1, x'', 0)
             ON CONFLICT (event) DO UPDATE SET complete = 0",
        )?
        .execute([event.0])?;
        return Ok(Document::Unsaveable);
    };
    conn.prepare_cached(
        "INSERT INTO documents (event, doc, complete) VALUES (?1, ?2, ?3)
         ON CONFLICT (event) DO UPDATE SET doc = excluded.doc, complete = excluded.complete",
    )?
    .execute(params![event.0, saved, complete])?;
    Ok(if complete {
        Document::Complete(Box::new(doc))
    } else {
        Document::Incomplete
    })
}

/// What [`update_document`] made of an event's document.
enum Document {
    /// Saved, and every change has its dependencies.
    Complete(Box<EventDoc>),
    /// Saved; changes wait for dependencies.
    Incomplete,
    /// Automerge could not save it.
    Unsaveable,
}

fn rebuild_document(conn: &Connection, event: EventId) -> Result<EventDoc, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT pos, bytes FROM entries WHERE event = ?1 ORDER BY pos")?;
    let mut rows = stmt.query([event.0])?;
    let mut entries = Vec::new();
    while let Some(r) = rows.next()? {
        let pos: i64 = r.get(0)?;
        let bytes: Vec<u8> = r.get(1)?;
        entries.push(
            SignedEntry::from_bytes(bytes)
                .map_err(|source| StoreError::CorruptEntry { pos, source })?,
        );
    }
    let revoked = revoked_authors(conn)?;
    entries.retain(|e| counts(&revoked, e));
    let changes = EventDoc::changes_of(&entries);
    let mut doc = EventDoc::from_changes(&[])
        .map_err(|source| StoreError::CorruptDocument { event, source })?;
    doc.apply_or_keep(&changes);
    Ok(doc)
}

/// Writes an event's row with its spatial and full-text index entries.
/// `created_by`: the author of the change that created the event, when the
/// caller knows it (the event's only change); else it is looked up. `v`
/// is masked already (`super::redactions::mask`).
pub(super) fn write_event_row(
    conn: &Connection,
    event: EventId,
    v: &EventView,
    hlc: Hlc,
    created_by: Option<&AuthorId>,
) -> Result<(), StoreError> {
    let conflicts = if v.conflicts.is_empty() {
        "{}".to_owned()
    } else {
        serde_json::to_string(&v.conflicts).unwrap_or_else(|_| "{}".into())
    };
    let notes: Vec<&str> = v.notes.iter().map(|n| n.text.as_str()).collect();
    let created_by: Vec<u8> = match created_by {
        Some(author) => author.as_bytes().to_vec(),
        None => conn
            .prepare_cached(
                "SELECT author FROM entries e WHERE event = ?1 AND kind = 1
                 AND NOT EXISTS (SELECT 1 FROM revoked_authors r
                     WHERE r.author = e.author AND e.seq > r.last_valid_seq)
             ORDER BY hlc_ms, hlc_counter, author LIMIT 1",
            )?
            .query_row([event.0], |r| r.get(0))?,
    };
    let fid: i64 = conn.prepare_cached(
        "INSERT INTO events (event, event_hex, title, description, category, severity, status,
             assignee, lon, lat, reported_ms, created_by, updated_hlc_ms, updated_hlc_counter,
             n_notes, n_media, conflicts, geom)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
             (SELECT count(*) FROM event_media WHERE event = ?1), ?16, MakePoint(?9, ?10, 4326))
         ON CONFLICT (event) DO UPDATE SET
             title = excluded.title, description = excluded.description,
             category = excluded.category, severity = excluded.severity,
             status = excluded.status, assignee = excluded.assignee,
             lon = excluded.lon, lat = excluded.lat, reported_ms = excluded.reported_ms,
             created_by = excluded.created_by,
             updated_hlc_ms = CASE WHEN excluded.updated_hlc_ms > updated_hlc_ms
                 OR (excluded.updated_hlc_ms = updated_hlc_ms AND excluded.updated_hlc_counter > updated_hlc_counter)
                 THEN excluded.updated_hlc_ms ELSE updated_hlc_ms END,
             updated_hlc_counter = CASE WHEN excluded.updated_hlc_ms > updated_hlc_ms
                 OR (excluded.updated_hlc_ms = updated_hlc_ms AND excluded.updated_hlc_counter > updated_hlc_counter)
                 THEN excluded.updated_hlc_counter ELSE updated_hlc_counter END,
             n_notes = excluded.n_notes, n_media = excluded.n_media,
             conflicts = excluded.conflicts, geom = excluded.geom
         RETURNING fid",
    )?
    .query_row(params![
        event.0,
        event.to_hex(),
        v.title,
        v.description,
        v.category,
        v.severity,
        v.status.as_str(),
        v.assignee,
        v.location.lon(),
        v.location.lat(),
        v.reported_ms as i64,
        hex::encode(created_by),
        hlc.wall_ms as i64,
        hlc.counter,
        v.notes.len() as i64,
        conflicts,
    ], |r| r.get(0))?;
    // The spatial index and full-text index, kept by hand (see migrations).
    conn.prepare_cached("DELETE FROM idx_events_geom WHERE pkid = ?1")?
        .execute([fid])?;
    conn.prepare_cached(
        "INSERT INTO idx_events_geom (pkid, xmin, xmax, ymin, ymax) VALUES (?1, ?2, ?2, ?3, ?3)",
    )?
    .execute(params![fid, v.location.lon(), v.location.lat()])?;
    conn.prepare_cached("DELETE FROM events_fts WHERE rowid = ?1")?
        .execute([fid])?;
    conn.prepare_cached(
        "INSERT INTO events_fts (rowid, title, description, notes) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![fid, v.title, v.description, notes.join("\n")])?;
    Ok(())
}
