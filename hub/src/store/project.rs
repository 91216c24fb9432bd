//! The projector: derives the views (`documents`, `events` with geography
//! and full-text search, `event_media`) from the hub's log, the way the
//! node derives its own.
//!
//! # The cursor
//!
//! The node remembers "projected up to `pos` N": it has one writer, so
//! positions commit in order. The hub has many concurrent `apply`
//! transactions, and `entries.pos` is an identity column whose values are
//! handed out at insert time, not commit time: a batch that commits late
//! can hold positions below ones already projected. A high-water mark
//! would skip it forever.
//!
//! So the cursor is a flag per entry, `entries.projected` (migration V3),
//! with a partial index on the unprojected entries of the kinds with views
//! (`event_change`, `media_attached`, and `sensor_reading` for the
//! `readings` time series of [`super::readings`]). One chunk is one
//! transaction:
//!
//! 1. `SELECT … WHERE NOT projected AND kind IN (1, 2, 3) ORDER BY pos LIMIT
//!    4096 FOR UPDATE SKIP LOCKED` — entries of transactions not yet
//!    committed are invisible and are picked up by a later run; several
//!    projectors (hub processes, or calls) take disjoint chunks.
//! 2. An advisory lock per touched event (two-key form, so it cannot
//!    collide with `apply`'s one-key author locks), taken in ascending
//!    order: two projectors never load and save one document at once (a
//!    lost update), and never deadlock.
//! 3. Documents loaded in one query; a complete one gets the chunk's
//!    changes applied as one Automerge batch; an incomplete, missing-from-
//!    the-view or unreadable one is rebuilt from every `event_change` of
//!    the event in the log.
//! 4. The chunk's entries are marked `projected`, then the views written,
//!    then the transaction commits: views and cursor move together, so a
//!    crash loses nothing and projects nothing twice. The webhook
//!    deliveries the chunk's changes match commit with them
//!    ([`super::webhooks`]).
//!
//! The derived columns follow the node: `created_by` is the author (64 hex
//! digits) of the earliest-HLC `event_change` of the event, `updated_hlc` the
//! newest HLC of its `event_change`/`media_attached` entries, `n_media` the
//! count of its `event_media` rows — all over the entries projected so far,
//! so the row is a function of the set of projected entries, whatever
//! chunks they came in (a rebuild gives the same rows). `conflicts` is
//! [`EventView::conflicts`] as a JSON object of string arrays; `notes` is
//! the notes' text joined by newlines (weight C of the `search` tsvector).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sentinel_schema::{Body, EventDoc, EventId, EventView, SignedEntry};
use tokio_postgres::Transaction;

use super::rows::{event_id, insert_media, write_events, write_new_events, ChunkEvents, Derived};
use super::verdict::{counts, revoked_authors, COUNTS};
use super::{PgStore, StoreError};

/// Entries projected per transaction.
pub const CHUNK: i64 = 4096;

/// The first key of the projector's per-event advisory locks ("PROJ").
const EVENT_LOCK_CLASS: i32 = 0x5052_4f4a;

/// `entries.kind` of an `event_change` entry.
const KIND_EVENT_CHANGE: i16 = 1;

/// What a projection did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProjectReport {
    /// Log entries taken in (and marked projected).
    pub entries: usize,
    /// Transactions committed.
    pub chunks: usize,
    /// Events whose `events` row was written or updated, in the order of
    /// their ids per chunk (an event may appear once per chunk).
    pub events: Vec<EventId>,
    /// Events whose document is incomplete (changes waiting for their
    /// dependencies); they get a row once the missing changes arrive.
    pub incomplete: Vec<EventId>,
    /// Events whose complete document does not read as an event (kept in
    /// the log and in `documents`, shown nowhere).
    pub unviewable: Vec<EventId>,
    /// Events the views no longer show: a revocation learned since took
    /// away the entries that made them ([`super::revoked`]).
    pub removed: Vec<EventId>,
}

impl ProjectReport {
    fn merge(&mut self, other: ProjectReport) {
        self.entries += other.entries;
        self.chunks += other.chunks;
        self.events.extend(other.events);
        self.incomplete.extend(other.incomplete);
        self.unviewable.extend(other.unviewable);
        self.removed.extend(other.removed);
    }
}

/// Unprojected entries from which [`PgStore::project_pending`] refreshes
/// the planner's statistics of `entries` before it starts.
const ANALYZE_BACKLOG: i64 = 10_000;

impl PgStore {
    /// Projects every event entry committed and not projected yet, in
    /// chunks of [`CHUNK`] entries, one transaction each. Safe to call from
    /// several tasks or hubs at once (see the module docs). Entries of
    /// transactions still running when it looks are left for the next call.
    pub async fn project_pending(&self) -> Result<ProjectReport, StoreError> {
        let mut total = ProjectReport::default();
        let mut client = self.client().await?;
        // After a bulk ingest the planner's statistics still describe the
        // small log it last sampled: its plans for the per-event lookups
        // below then scan the whole log once per event (measured: one
        // statement still running after six minutes at a million
        // entries). Fresh statistics first when the backlog is large.
        let backlog: i64 = client
            .query_one(
                "SELECT count(*) FROM (SELECT 1 FROM entries
                     WHERE NOT projected AND kind IN (1, 2, 3, 7) LIMIT $1) AS b",
                &[&ANALYZE_BACKLOG],
            )
            .await?
            .get(0);
        if backlog >= ANALYZE_BACKLOG {
            client.batch_execute("ANALYZE entries").await?;
        }
        loop {
            let tx = client.transaction().await?;
            let done = project_chunk(&tx).await?;
            if done.entries == 0 {
                tx.commit().await?;
                return Ok(total);
            }
            tx.commit().await?;
            total.merge(done);
        }
    }

    /// Empties every view, marks every event entry unprojected and projects
    /// the whole log again. Projectors running meanwhile wait for the
    /// emptying to commit (it locks the view tables).
    pub async fn rebuild_views(&self) -> Result<ProjectReport, StoreError> {
        {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            // What was projected announces no webhook again.
            tx.batch_execute(&format!(
                "TRUNCATE documents, events, event_media, readings, redactions, redacted_blobs; {};
                 UPDATE entries SET projected = false WHERE projected;",
                super::webhooks::QUIET_PROJECTED
            ))
            .await?;
            tx.commit().await?;
        }
        self.project_pending().await
    }
}

/// One chunk, inside the caller's transaction.
async fn project_chunk(tx: &Transaction<'_>) -> Result<ProjectReport, StoreError> {
    let rows = tx
        .query(
            "SELECT pos, bytes FROM entries
             WHERE NOT projected AND kind IN (1, 2, 3, 7)
             ORDER BY pos LIMIT $1
             FOR UPDATE SKIP LOCKED",
            &[&CHUNK],
        )
        .await?;
    if rows.is_empty() {
        return Ok(ProjectReport::default());
    }
    let mut positions = Vec::with_capacity(rows.len());
    let mut entries = Vec::with_capacity(rows.len());
    for r in &rows {
        let pos: i64 = r.get(0);
        let bytes: Vec<u8> = r.get(1);
        positions.push(pos);
        entries.push(
            SignedEntry::from_bytes(bytes)
                .map_err(|source| StoreError::CorruptEntry { pos, source })?,
        );
    }

    let mut touched: BTreeSet<EventId> = BTreeSet::new();
    for e in &entries {
        match &e.entry().body {
            Body::EventChange(c) => touched.insert(c.event),
            Body::MediaAttached(m) => touched.insert(m.event),
            Body::Redaction(r) => touched.insert(r.event),
            _ => false,
        };
    }
    lock_events(tx, &touched).await?;

    // A revoked author's entries past its last valid seq count nowhere
    // (`super::revoked`): they are taken in (marked projected) and
    // skipped. Read under the event locks, so a revocation enforced
    // meanwhile is either seen here or re-projects after this commits.
    let revoked = revoked_authors(tx).await?;
    let counted: Vec<SignedEntry> = entries
        .iter()
        .filter(|e| counts(&revoked, e))
        .cloned()
        .collect();

    // Changes per event, in log order; media entries.
    let mut changes: BTreeMap<EventId, Vec<&[u8]>> = BTreeMap::new();
    let mut media = Vec::new();
    let mut redactions = Vec::new();
    for e in &counted {
        match &e.entry().body {
            Body::EventChange(c) => changes.entry(c.event).or_default().push(&c.change),
            Body::MediaAttached(m) => media.push((e, m)),
            Body::Redaction(r) => redactions.push((e, r)),
            _ => {}
        }
    }
    // A redacted event's view is written again, masked, even when the
    // chunk holds no change of it: its saved document with no new change.
    for (_, r) in &redactions {
        changes.entry(r.event).or_default();
    }
    let chunk = ChunkEvents::of(&entries, &counted)?;

    // The cursor moves first, so the derived columns below (which read the
    // projected entries) include this chunk.
    tx.execute(
        "UPDATE entries SET projected = true WHERE pos = ANY($1)",
        &[&positions],
    )
    .await?;

    super::redactions::record(tx, &redactions).await?;
    insert_media(tx, &media).await?;
    super::readings::insert_readings(tx, &counted).await?;

    let mut out = ProjectReport {
        entries: entries.len(),
        chunks: 1,
        ..ProjectReport::default()
    };
    let docs = update_documents(tx, &changes, &chunk).await?;
    let mut views: Vec<(EventId, EventView)> = Vec::new();
    let mut new_views: Vec<(EventId, EventView, Derived)> = Vec::new();
    for (event, doc, whole) in docs {
        match doc {
            Saved::Incomplete => out.incomplete.push(event),
            Saved::Unsaveable => out.unviewable.push(event),
            Saved::Complete(doc) => match (doc.view(), whole) {
                (Ok(view), true) => match chunk.derived(&event) {
                    Some(derived) => new_views.push((event, view, derived)),
                    None => views.push((event, view)),
                },
                (Ok(view), false) => views.push((event, view)),
                (Err(_), _) => out.unviewable.push(event),
            },
        }
    }
    super::redactions::mask_views(tx, &mut views).await?;
    super::redactions::mask_new_views(tx, &mut new_views).await?;
    // Webhooks' deliveries commit with the views they report (before the
    // rows are written: the rule compares with the event as it was).
    let changed: Vec<(EventId, &EventView)> = views
        .iter()
        .map(|(e, v)| (*e, v))
        .chain(new_views.iter().map(|(e, v, _)| (*e, v)))
        .collect();
    super::webhooks::enqueue(tx, &positions, &entries, &changed).await?;
    write_events(tx, &views).await?;
    write_new_events(tx, &new_views).await?;
    out.events = views
        .iter()
        .map(|(e, _)| *e)
        .chain(new_views.iter().map(|(e, _, _)| *e))
        .collect();
    out.events.sort_unstable();

    // Media for events whose document did not change in this chunk.
    let media_only: Vec<&[u8]> = touched
        .iter()
        .filter(|e| !changes.contains_key(e))
        .map(|e| e.0.as_slice())
        .collect();
    if !media_only.is_empty() {
        tx.execute(
            "UPDATE events SET
                 n_media = (SELECT count(*) FROM event_media m WHERE m.event = events.event),
                 updated_hlc_ms = h.hlc_ms, updated_hlc_counter = h.hlc_counter
             FROM unnest($1::bytea[]) AS t(event)
             CROSS JOIN LATERAL (
                 SELECT x.hlc_ms, x.hlc_counter FROM (
                     SELECT e.hlc_ms, e.hlc_counter FROM entries e
                     WHERE e.event = t.event AND e.kind IN (1, 2) AND e.projected
                         AND NOT EXISTS (SELECT 1 FROM revoked_authors r
                             WHERE r.author = e.author AND e.seq > r.last_valid_seq)
                     OFFSET 0) AS x
                 ORDER BY x.hlc_ms DESC, x.hlc_counter DESC LIMIT 1) AS h
             WHERE events.event = t.event",
            &[&media_only],
        )
        .await?;
    }
    Ok(out)
}

/// Derives the views of `events` again, inside the caller's transaction,
/// from their projected entries that count now (`super::revoked`, which
/// holds its own lock): each document rebuilt from scratch, its media, its
/// row — or no row, when nothing readable is left of it.
pub(super) async fn reproject_events(
    tx: &Transaction<'_>,
    events: &BTreeSet<EventId>,
) -> Result<ProjectReport, StoreError> {
    let mut out = ProjectReport::default();
    if events.is_empty() {
        return Ok(out);
    }
    lock_events(tx, events).await?;
    let keys: Vec<&[u8]> = events.iter().map(|e| e.0.as_slice()).collect();
    let mut by_event: BTreeMap<EventId, Vec<SignedEntry>> = BTreeMap::new();
    for r in tx
        .query(
            &format!(
                "SELECT event, pos, bytes FROM entries e
                 WHERE event = ANY($1) AND kind IN (1, 2) AND projected AND {COUNTS}
                 ORDER BY pos"
            ),
            &[&keys],
        )
        .await?
    {
        let event = event_id(r.get(0))?;
        let pos: i64 = r.get(1);
        let entry = SignedEntry::from_bytes(r.get::<_, Vec<u8>>(2))
            .map_err(|source| StoreError::CorruptEntry { pos, source })?;
        by_event.entry(event).or_default().push(entry);
    }
    tx.execute("DELETE FROM event_media WHERE event = ANY($1)", &[&keys])
        .await?;
    let media: Vec<(&SignedEntry, &sentinel_schema::MediaAttached)> = by_event
        .values()
        .flatten()
        .filter_map(|e| match &e.entry().body {
            Body::MediaAttached(m) => Some((e, m)),
            _ => None,
        })
        .collect();
    insert_media(tx, &media).await?;

    let mut views: Vec<(EventId, EventView)> = Vec::new();
    let mut gone: Vec<&[u8]> = Vec::new();
    let (mut saved_events, mut saved, mut complete): (Vec<&[u8]>, Vec<Vec<u8>>, Vec<bool>) =
        Default::default();
    for event in events {
        let entries = by_event.get(event).map(Vec::as_slice).unwrap_or_default();
        let changes = EventDoc::changes_of(entries);
        let doc = (!changes.is_empty())
            .then(|| EventDoc::from_changes(&[]).ok())
            .flatten();
        let Some(mut doc) = doc else {
            gone.push(&event.0);
            out.removed.push(*event);
            continue;
        };
        doc.apply_or_keep(&changes);
        let bytes = doc.save();
        let is_complete = bytes.is_ok() && doc.is_complete();
        // A document Automerge cannot save is marked for a rebuild.
        saved_events.push(&event.0);
        saved.push(bytes.unwrap_or_default());
        complete.push(is_complete);
        match doc.view() {
            Ok(view) if is_complete => views.push((*event, view)),
            _ => out.removed.push(*event),
        }
    }
    tx.execute("DELETE FROM documents WHERE event = ANY($1)", &[&gone])
        .await?;
    tx.execute(
        "INSERT INTO documents (event, doc, complete)
         SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bool[])
         ON CONFLICT (event) DO UPDATE SET doc = excluded.doc, complete = excluded.complete",
        &[&saved_events, &saved, &complete],
    )
    .await?;
    let removed: Vec<&[u8]> = out.removed.iter().map(|e| e.0.as_slice()).collect();
    tx.execute("DELETE FROM events WHERE event = ANY($1)", &[&removed])
        .await?;
    super::redactions::mask_views(tx, &mut views).await?;
    write_events(tx, &views).await?;
    out.events = views.iter().map(|(e, _)| *e).collect();
    Ok(out)
}

/// Per-event advisory locks, in ascending key order, held to the end of
/// the transaction.
async fn lock_events(tx: &Transaction<'_>, events: &BTreeSet<EventId>) -> Result<(), StoreError> {
    let mut keys: Vec<i32> = events
        .iter()
        .map(|e| {
            let mut k = [0u8; 4];
            k.copy_from_slice(&e.0[..4]);
            i32::from_be_bytes(k)
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Ok(());
    }
    tx.execute(
        "SELECT count(pg_advisory_xact_lock($1, k))
         FROM (SELECT k FROM unnest($2::int4[]) AS k ORDER BY k) AS ordered",
        &[&EVENT_LOCK_CLASS, &keys],
    )
    .await?;
    Ok(())
}

/// Applies each event's batch of changes to its document and saves it.
/// Returns every event of `changes` with what became of its document.
/// The `bool` says the document was built from the chunk alone, the log
/// holding no other entry of its event ([`ChunkEvents`]).
async fn update_documents(
    tx: &Transaction<'_>,
    changes: &BTreeMap<EventId, Vec<&[u8]>>,
    chunk: &ChunkEvents,
) -> Result<Vec<(EventId, Saved, bool)>, StoreError> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<&[u8]> = changes.keys().map(|e| e.0.as_slice()).collect();
    let mut stored: HashMap<EventId, EventDoc> = HashMap::new();
    for r in tx
        .query(
            "SELECT event, doc FROM documents WHERE event = ANY($1) AND complete",
            &[&keys],
        )
        .await?
    {
        let event = event_id(r.get(0))?;
        // A saved document that no longer loads is rebuilt from the log.
        if let Ok(doc) = EventDoc::load(r.get(1)) {
            stored.insert(event, doc);
        }
    }

    let mut docs: BTreeMap<EventId, EventDoc> = BTreeMap::new();
    let mut skipped: Vec<EventId> = Vec::new();
    let mut rebuild: Vec<&[u8]> = Vec::new();
    for (event, batch) in changes {
        match stored.remove(event) {
            Some(mut doc) => {
                doc.apply_or_keep(batch);
                docs.insert(*event, doc);
            }
            // Incomplete or missing: Automerge may have been holding
            // changes in memory that a save does not keep; start again
            // from every change of the event in the log.
            None => rebuild.push(&event.0),
        }
    }
    // Events the log holds no other entry of than this chunk's (new
    // events, the bulk of an ingest): their rebuild from the log would read
    // back exactly the chunk's changes, so they are built from those.
    let mut whole: BTreeSet<EventId> = BTreeSet::new();
    if !rebuild.is_empty() {
        let mut in_log: HashMap<EventId, i64> = HashMap::new();
        for r in tx
            .query(
                "SELECT event, count(*) FROM entries
                 WHERE event = ANY($1) GROUP BY event",
                &[&rebuild],
            )
            .await?
        {
            in_log.insert(event_id(r.get(0))?, r.get(1));
        }
        let mut elsewhere: Vec<&[u8]> = Vec::with_capacity(rebuild.len());
        for bytes in rebuild {
            let event = event_id(bytes)?;
            if in_log.get(&event) == Some(&chunk.named(&event)) {
                let Ok(mut doc) = EventDoc::from_changes(&[]) else {
                    skipped.push(event);
                    continue;
                };
                if let Some(batch) = changes.get(&event) {
                    doc.apply_or_keep(batch);
                }
                docs.insert(event, doc);
                whole.insert(event);
            } else {
                elsewhere.push(bytes);
            }
        }
        rebuild = elsewhere;
    }
    if !rebuild.is_empty() {
        let mut all: BTreeMap<EventId, Vec<SignedEntry>> = BTreeMap::new();
        for r in tx
            .query(
                &format!(
                    "SELECT event, pos, bytes FROM entries e
                     WHERE event = ANY($1) AND kind = $2 AND {COUNTS} ORDER BY pos"
                ),
                &[&rebuild, &KIND_EVENT_CHANGE],
            )
            .await?
        {
            let event = event_id(r.get(0))?;
            let pos: i64 = r.get(1);
            let entry = SignedEntry::from_bytes(r.get::<_, Vec<u8>>(2))
                .map_err(|source| StoreError::CorruptEntry { pos, source })?;
            all.entry(event).or_default().push(entry);
        }
        for bytes in rebuild {
            let event = event_id(bytes)?;
            let entries = all.remove(&event).unwrap_or_default();
            let batch = EventDoc::changes_of(&entries);
            // An empty document cannot fail to build; if it ever did, the
            // event is left out of the views (and counted incomplete).
            let Ok(mut doc) = EventDoc::from_changes(&[]) else {
                skipped.push(event);
                continue;
            };
            doc.apply_or_keep(&batch);
            docs.insert(event, doc);
        }
    }

    let mut events: Vec<&[u8]> = Vec::with_capacity(docs.len());
    let mut saved: Vec<Vec<u8>> = Vec::with_capacity(docs.len());
    let mut complete: Vec<bool> = Vec::with_capacity(docs.len());
    let mut out: Vec<(EventId, Saved, bool)> = skipped
        .into_iter()
        .map(|e| (e, Saved::Incomplete, false))
        .collect();
    let mut unsaveable: Vec<EventId> = Vec::new();
    for (event, doc) in &mut docs {
        let Ok(bytes) = doc.save() else {
            // Automerge could not save it (it panicked: `EventDoc::save`).
            // Its changes stay in the log; the saved document, if any, is
            // marked for a rebuild from the log and the event is shown
            // nowhere until one succeeds. The other events go on.
            unsaveable.push(*event);
            continue;
        };
        events.push(&event.0);
        saved.push(bytes);
        complete.push(doc.is_complete());
    }
    if !unsaveable.is_empty() {
        let keys: Vec<&[u8]> = unsaveable.iter().map(|e| e.0.as_slice()).collect();
        tx.execute(
            "INSERT INTO documents (event, doc, complete)
             SELECT e, ''::bytea, false FROM unnest($1::bytea[]) AS e
             ON CONFLICT (event) DO UPDATE SET complete = false",
            &[&keys],
        )
        .await?;
    }
    tx.execute(
        "INSERT INTO documents (event, doc, complete)
         SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bool[])
         ON CONFLICT (event) DO UPDATE SET doc = excluded.doc, complete = excluded.complete",
        &[&events, &saved, &complete],
    )
    .await?;
    let mut complete = complete.into_iter();
    for (event, doc) in docs {
        let whole = whole.contains(&event);
        if unsaveable.contains(&event) {
            out.push((event, Saved::Unsaveable, whole));
        } else if complete.next() == Some(true) {
            out.push((event, Saved::Complete(Box::new(doc)), whole));
        } else {
            out.push((event, Saved::Incomplete, whole));
        }
    }
    Ok(out)
}

/// What [`update_documents`] made of an event's document.
enum Saved {
    /// Saved, and every change has its dependencies.
    Complete(Box<EventDoc>),
    /// Saved; changes wait for their dependencies.
    Incomplete,
    /// Automerge could not save it.
    Unsaveable,
}
