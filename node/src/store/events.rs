//! Reading one event, and the log around it: its document and view, who
//! reported it, the entries about it (its history), its media, the facts
//! the access rules need, and the events a stretch of the log changed.
//!
//! These are the reads behind `show`, `GET /api/v1/events/{id}`, the live
//! feed and the object-level access checks; searching many events is
//! [`super::query`]. Never writes.

use std::collections::BTreeSet;

use rusqlite::{params, OptionalExtension};
use sentinel_schema::query::{EventRecord, HistoryItem};
use sentinel_schema::{
    AuthorId, BodyKind, EntryId, EventDoc, EventId, Hlc, MediaRef, MediaType, SignedEntry, Status,
};

use super::{blob, Store, StoreError};

/// What the access rules need to know about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The actor of the entry that created it, if it named one.
    pub reporter: Option<String>,
    pub assignee: Option<String>,
    /// `None`: a status this build does not know.
    pub status: Option<Status>,
}

/// How many rows each table holds, for `stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub entries: u64,
    /// Entries written here (signed with this node's key).
    pub local_entries: u64,
    pub authors: u64,
    pub events: u64,
    pub media: u64,
    pub forks: u64,
    pub quarantined: u64,
}

/// What the store says of a blob asked for by hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaMime {
    /// An event names it, with this media type.
    Named(String),
    /// A redaction erased it: never served again.
    Erased,
    /// No event here names it.
    Unknown,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store {
    /// The event's current document, when it is complete (every change it
    /// depends on has arrived); `None` for an event this store does not
    /// know or cannot show yet.
    pub fn document(&self, event: EventId) -> Result<Option<EventDoc>, StoreError> {
        let row: Option<Vec<u8>> = self
            .conn()
            .prepare_cached("SELECT doc FROM documents WHERE event = ?1 AND complete = 1")?
            .query_row([event.0], |r| r.get(0))
            .optional()?;
        row.map(|bytes| {
            EventDoc::load(&bytes).map_err(|source| StoreError::CorruptDocument { event, source })
        })
        .transpose()
    }

    /// Who reported an event: the actor of the entry that created it (the
    /// event's first change in HLC order), if that entry names one.
    pub fn reporter(&self, event: EventId) -> Result<Option<String>, StoreError> {
        let actor: Option<Option<String>> = self
            .conn()
            .prepare_cached(
                "SELECT actor FROM entries e WHERE event = ?1 AND kind = ?2
                     AND NOT EXISTS (SELECT 1 FROM revoked_authors r
                         WHERE r.author = e.author AND e.seq > r.last_valid_seq)
                 ORDER BY hlc_ms, hlc_counter, author, seq LIMIT 1",
            )?
            .query_row(params![event.0, BodyKind::EventChange as u8], |r| r.get(0))
            .optional()?;
        Ok(actor.flatten())
    }

    /// The photos and videos attached to an event, by name then hash,
    /// but those a redaction erased.
    pub fn event_media(&self, event: EventId) -> Result<Vec<MediaRef>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT hash, mime, size, name FROM event_media m WHERE event = ?1
                 AND NOT EXISTS (SELECT 1 FROM redacted_blobs r WHERE r.hash = m.hash)
             ORDER BY name, hash",
        )?;
        let mut rows = stmt.query([event.0])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mime: String = r.get(1)?;
            let size: i64 = r.get(2)?;
            out.push(MediaRef {
                hash: blob(r, 0, "event_media.hash")?,
                mime: MediaType::from_mime(&mime).ok_or(StoreError::CorruptColumn {
                    column: "event_media.mime",
                })?,
                size: u64::try_from(size).map_err(|_| StoreError::CorruptColumn {
                    column: "event_media.size",
                })?,
                name: r.get(3)?,
            });
        }
        Ok(out)
    }

    /// Every entry about an event, in HLC order (then author, then seq),
    /// but those a revocation took away (`super::revoked`: the log keeps
    /// them as evidence, `revoked_entries` lists them).
    pub fn history(&self, event: EventId) -> Result<Vec<HistoryItem>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, author, seq, hlc_ms, hlc_counter, kind, actor, local FROM entries e
             WHERE event = ?1
                 AND NOT EXISTS (SELECT 1 FROM revoked_authors r
                     WHERE r.author = e.author AND e.seq > r.last_valid_seq)
             ORDER BY hlc_ms, hlc_counter, author, seq",
        )?;
        let mut rows = stmt.query([event.0])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let kind: u8 = r.get(5)?;
            out.push(HistoryItem {
                entry: EntryId(blob(r, 0, "entries.id")?),
                author: AuthorId(blob(r, 1, "entries.author")?),
                seq: count(r.get(2)?),
                hlc: Hlc::new(count(r.get(3)?), r.get(4)?),
                kind: BodyKind::from_wire(kind.into()).ok(),
                actor: r.get(6)?,
                local: r.get(7)?,
            });
        }
        Ok(out)
    }

    /// One event in full: its view (with the media the log attached), who
    /// reported it, and its history. `None` when this store does not know
    /// the event, or its document cannot be shown yet (incomplete, or not
    /// readable as an event: the views leave it out too).
    pub fn event_record(&self, event: EventId) -> Result<Option<EventRecord>, StoreError> {
        let Some(doc) = self.document(event)? else {
            return Ok(None);
        };
        let Ok(mut view) = doc.view() else {
            return Ok(None);
        };
        // Media arrive as their own entries (`media_attached`), projected
        // into `event_media`; that view, not the document, lists them.
        view.media = self.event_media(event)?;
        // As every view derived from the document: masked.
        self.redactions(event)?.mask(&mut view);
        Ok(Some(EventRecord {
            id: event,
            view,
            reported_by: self.reporter(event)?,
            history: self.history(event)?,
        }))
    }

    /// The facts the access rules ask about an event; `None` when the
    /// events view does not hold it.
    pub fn facts(&self, event: EventId) -> Result<Option<Facts>, StoreError> {
        let row: Option<(Option<String>, String)> = self
            .conn()
            .prepare_cached("SELECT assignee, status FROM events WHERE event = ?1")?
            .query_row([event.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((assignee, status)) = row else {
            return Ok(None);
        };
        Ok(Some(Facts {
            reporter: self.reporter(event)?,
            assignee,
            status: status.parse().ok(),
        }))
    }

    /// Up to two events whose hex id starts with `prefix` (lowercase hex),
    /// so a caller can tell one match from several.
    pub fn events_with_prefix(&self, prefix: &str) -> Result<Vec<EventId>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT event FROM events WHERE event_hex >= ?1 AND event_hex < ?1 || 'g' LIMIT 2",
        )?;
        let mut rows = stmt.query([prefix])?;
        let mut found = Vec::new();
        while let Some(r) = rows.next()? {
            found.push(EventId(blob(r, 0, "events.event")?));
        }
        Ok(found)
    }

    /// The media type an event on this store gives the blob `hash`:
    /// [`MediaMime::Erased`] when a redaction erased it, whatever names it.
    pub fn media_mime(&self, hash: &[u8; 32]) -> Result<MediaMime, StoreError> {
        if self.blob_erased(hash)? {
            return Ok(MediaMime::Erased);
        }
        let mime: Option<String> = self
            .conn()
            .prepare_cached("SELECT mime FROM event_media WHERE hash = ?1 LIMIT 1")?
            .query_row([hash.as_slice()], |r| r.get(0))
            .optional()?;
        Ok(mime.map_or(MediaMime::Unknown, MediaMime::Named))
    }

    /// Every blob the log names, with the size its entry announced, in
    /// hash order (a hash announced with two sizes, one of them
    /// necessarily false, appears twice, smaller first); never one a
    /// redaction erased (not fetched again).
    pub fn media_named(&self) -> Result<Vec<([u8; 32], u64)>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT DISTINCT hash, size FROM event_media m
             WHERE NOT EXISTS (SELECT 1 FROM redacted_blobs r WHERE r.hash = m.hash)
             ORDER BY hash, size",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let hash: Vec<u8> = r.get(0)?;
            let size: i64 = r.get(1)?;
            // The view holds only validated entries; anything else is
            // skipped rather than trusted.
            if let (Ok(hash), Ok(size)) = (<[u8; 32]>::try_from(hash), u64::try_from(size)) {
                out.push((hash, size));
            }
        }
        Ok(out)
    }

    /// Whether the log names any media at all (that no redaction erased).
    pub fn names_media(&self) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM event_media m
                 WHERE NOT EXISTS (SELECT 1 FROM redacted_blobs r WHERE r.hash = m.hash))",
            )?
            .query_row([], |r| r.get(0))?)
    }

    /// The events named by the log entries at positions `(after, upto]`.
    pub fn changed_events(&self, after: i64, upto: i64) -> Result<BTreeSet<EventId>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT DISTINCT event FROM entries
             WHERE pos > ?1 AND pos <= ?2 AND event IS NOT NULL",
        )?;
        let mut rows = stmt.query([after, upto])?;
        let mut events = BTreeSet::new();
        while let Some(r) = rows.next()? {
            events.insert(EventId(blob(r, 0, "entries.event")?));
        }
        Ok(events)
    }

    /// The newest log position (0 for an empty log): a change signal.
    pub fn log_position(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT coalesce(max(pos), 0) FROM entries")?
            .query_row([], |r| r.get(0))?)
    }

    /// The newest HLC in the log, so a clock resumed from it never goes
    /// backwards.
    pub fn last_hlc(&self) -> Result<Hlc, StoreError> {
        let row: Option<(i64, u32)> = self
            .conn()
            .prepare_cached(
                "SELECT hlc_ms, hlc_counter FROM entries
                 ORDER BY hlc_ms DESC, hlc_counter DESC LIMIT 1",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(row.map_or(Hlc::default(), |(ms, c)| Hlc::new(count(ms), c)))
    }

    /// An entry of this store by id.
    pub fn entry(&self, id: EntryId) -> Result<Option<SignedEntry>, StoreError> {
        let row: Option<(i64, Vec<u8>)> = self
            .conn()
            .prepare_cached("SELECT pos, bytes FROM entries WHERE id = ?1")?
            .query_row(params![id.as_bytes()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(pos, b)| {
            SignedEntry::from_bytes(b).map_err(|source| StoreError::CorruptEntry { pos, source })
        })
        .transpose()
    }

    /// Every entry of `kind` in the log, in log order (grants and
    /// revocations are read from the log where needed, not from views).
    pub fn entries_of_kind(&self, kind: BodyKind) -> Result<Vec<SignedEntry>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT pos, bytes FROM entries WHERE kind = ?1 ORDER BY pos")?;
        let mut rows = stmt.query([kind as u8])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let pos: i64 = r.get(0)?;
            let bytes: Vec<u8> = r.get(1)?;
            out.push(
                SignedEntry::from_bytes(bytes)
                    .map_err(|source| StoreError::CorruptEntry { pos, source })?,
            );
        }
        Ok(out)
    }

    /// How many rows the log and the views hold.
    pub fn counts(&self) -> Result<Counts, StoreError> {
        let n = |sql: &str| -> Result<u64, StoreError> {
            Ok(count(
                self.conn()
                    .prepare_cached(sql)?
                    .query_row([], |r| r.get(0))?,
            ))
        };
        Ok(Counts {
            entries: n("SELECT count(*) FROM entries")?,
            local_entries: n("SELECT count(*) FROM entries WHERE local = 1")?,
            authors: n("SELECT count(*) FROM heads")?,
            events: n("SELECT count(*) FROM events")?,
            media: n("SELECT count(*) FROM event_media")?,
            // Evidence past the quota is counted in its summary.
            forks: n("SELECT (SELECT count(*) FROM forks)
                + (SELECT coalesce(sum(count), 0) FROM evidence_summary WHERE reason_code = 'fork')")?,
            quarantined: n("SELECT (SELECT count(*) FROM quarantine)
                + (SELECT coalesce(sum(count), 0) FROM evidence_summary WHERE reason_code <> 'fork')")?,
        })
    }
}
