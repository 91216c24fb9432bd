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
//!    crash loses nothing and projects nothing twice.
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

use super::{int, PgStore, StoreError};

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
}

impl ProjectReport {
    fn merge(&mut self, other: ProjectReport) {
        self.entries += other.entries;
        self.chunks += other.chunks;
        self.events.extend(other.events);
        self.incomplete.extend(other.incomplete);
        self.unviewable.extend(other.unviewable);
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
                     WHERE NOT projected AND kind IN (1, 2, 3) LIMIT $1) AS b",
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
            tx.batch_execute(
                "TRUNCATE documents, events, event_media, readings;
                 UPDATE entries SET projected = false WHERE projected;",
            )
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
             WHERE NOT projected AND kind IN (1, 2, 3)
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

    // Changes per event, in log order; media entries.
    let mut changes: BTreeMap<EventId, Vec<&[u8]>> = BTreeMap::new();
    let mut media = Vec::new();
    let mut touched: BTreeSet<EventId> = BTreeSet::new();
    for e in &entries {
        match &e.entry().body {
            Body::EventChange(c) => {
                changes.entry(c.event).or_default().push(&c.change);
                touched.insert(c.event);
            }
            Body::MediaAttached(m) => {
                media.push((e, m));
                touched.insert(m.event);
            }
            _ => {}
        }
    }

    lock_events(tx, &touched).await?;

    // The cursor moves first, so the derived columns below (which read the
    // projected entries) include this chunk.
    tx.execute(
        "UPDATE entries SET projected = true WHERE pos = ANY($1)",
        &[&positions],
    )
    .await?;

    insert_media(tx, &media).await?;
    super::readings::insert_readings(tx, &entries).await?;

    let mut out = ProjectReport {
        entries: entries.len(),
        chunks: 1,
        ..ProjectReport::default()
    };
    let docs = update_documents(tx, &changes).await?;
    let mut views: Vec<(EventId, EventView)> = Vec::new();
    for (event, doc) in docs {
        match doc {
            Saved::Incomplete => out.incomplete.push(event),
            Saved::Unsaveable => out.unviewable.push(event),
            Saved::Complete(doc) => match doc.view() {
                Ok(view) => views.push((event, view)),
                Err(_) => out.unviewable.push(event),
            },
        }
    }
    write_events(tx, &views).await?;
    out.events = views.iter().map(|(e, _)| *e).collect();

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
                     OFFSET 0) AS x
                 ORDER BY x.hlc_ms DESC, x.hlc_counter DESC LIMIT 1) AS h
             WHERE events.event = t.event",
            &[&media_only],
        )
        .await?;
    }
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

/// `event_media` rows for `media_attached` entries; a hash already
/// attached to the event keeps its first row.
async fn insert_media(
    tx: &Transaction<'_>,
    media: &[(&SignedEntry, &sentinel_schema::MediaAttached)],
) -> Result<(), StoreError> {
    if media.is_empty() {
        return Ok(());
    }
    let ids: Vec<[u8; 32]> = media.iter().map(|(e, _)| e.id().0).collect();
    let mut events: Vec<&[u8]> = Vec::with_capacity(media.len());
    let mut hashes: Vec<&[u8]> = Vec::with_capacity(media.len());
    let mut mimes: Vec<&str> = Vec::with_capacity(media.len());
    let mut sizes: Vec<i64> = Vec::with_capacity(media.len());
    let mut names: Vec<&str> = Vec::with_capacity(media.len());
    for (_, m) in media {
        events.push(&m.event.0);
        hashes.push(&m.hash);
        mimes.push(m.mime.as_mime());
        sizes.push(int(m.size, "event_media.size")?);
        names.push(&m.name);
    }
    let entry_ids: Vec<&[u8]> = ids.iter().map(|i| i.as_slice()).collect();
    tx.execute(
        "INSERT INTO event_media (event, hash, mime, size, name, entry)
         SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::text[], $4::int8[],
             $5::text[], $6::bytea[])
         ON CONFLICT (event, hash) DO NOTHING",
        &[&events, &hashes, &mimes, &sizes, &names, &entry_ids],
    )
    .await?;
    Ok(())
}

/// Applies each event's batch of changes to its document and saves it.
/// Returns every event of `changes` with what became of its document.
async fn update_documents(
    tx: &Transaction<'_>,
    changes: &BTreeMap<EventId, Vec<&[u8]>>,
) -> Result<Vec<(EventId, Saved)>, StoreError> {
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
    if !rebuild.is_empty() {
        let mut all: BTreeMap<EventId, Vec<SignedEntry>> = BTreeMap::new();
        for r in tx
            .query(
                "SELECT event, pos, bytes FROM entries
                 WHERE event = ANY($1) AND kind = $2 ORDER BY pos",
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
    let mut out: Vec<(EventId, Saved)> = skipped
        .into_iter()
        .map(|e| (e, Saved::Incomplete))
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
        if unsaveable.contains(&event) {
            out.push((event, Saved::Unsaveable));
        } else if complete.next() == Some(true) {
            out.push((event, Saved::Complete(Box::new(doc))));
        } else {
            out.push((event, Saved::Incomplete));
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

/// Upserts the `events` rows of viewable documents.
/// The per-event lookups below filter by event inside `OFFSET 0` (an
/// optimisation fence) and only then sort: left to itself, the planner may
/// walk an HLC-ordered index of the whole log to satisfy `ORDER BY … LIMIT
/// 1`, once per event, which at a million entries took minutes per chunk.
async fn write_events(
    tx: &Transaction<'_>,
    views: &[(EventId, EventView)],
) -> Result<(), StoreError> {
    if views.is_empty() {
        return Ok(());
    }
    let n = views.len();
    let mut events: Vec<&[u8]> = Vec::with_capacity(n);
    let mut hexes: Vec<String> = Vec::with_capacity(n);
    let mut titles: Vec<&str> = Vec::with_capacity(n);
    let mut descriptions: Vec<&str> = Vec::with_capacity(n);
    let mut categories: Vec<&str> = Vec::with_capacity(n);
    let mut severities: Vec<i16> = Vec::with_capacity(n);
    let mut statuses: Vec<&str> = Vec::with_capacity(n);
    let mut assignees: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut notes: Vec<String> = Vec::with_capacity(n);
    let mut lons: Vec<f64> = Vec::with_capacity(n);
    let mut lats: Vec<f64> = Vec::with_capacity(n);
    let mut reported: Vec<i64> = Vec::with_capacity(n);
    let mut n_notes: Vec<i32> = Vec::with_capacity(n);
    let mut conflicts: Vec<String> = Vec::with_capacity(n);
    for (event, v) in views {
        events.push(&event.0);
        hexes.push(event.to_hex());
        titles.push(&v.title);
        descriptions.push(&v.description);
        categories.push(&v.category);
        severities.push(i16::from(v.severity));
        statuses.push(v.status.as_str());
        assignees.push(v.assignee.as_deref());
        notes.push(
            v.notes
                .iter()
                .map(|n| n.text.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        );
        lons.push(v.location.lon());
        lats.push(v.location.lat());
        reported.push(int(v.reported_ms, "events.reported_ms")?);
        n_notes.push(i32::try_from(v.notes.len()).unwrap_or(i32::MAX));
        conflicts.push(conflicts_json(&v.conflicts));
    }
    tx.execute(
        "INSERT INTO events (event, event_hex, title, description, category, severity,
             status, assignee, notes, geog, reported_ms, created_by,
             updated_hlc_ms, updated_hlc_counter, n_notes, n_media, conflicts)
         SELECT v.event, v.hex, v.title, v.description, v.category, v.severity,
             v.status, v.assignee, v.notes,
             ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326)::geography, v.reported,
             coalesce((SELECT encode(x.author, 'hex') FROM (
                     SELECT e.author, e.hlc_ms, e.hlc_counter FROM entries e
                     WHERE e.event = v.event AND e.kind = 1 AND e.projected
                     OFFSET 0) AS x
                 ORDER BY x.hlc_ms, x.hlc_counter, x.author LIMIT 1), ''),
             coalesce(h.hlc_ms, 0), coalesce(h.hlc_counter, 0), v.n_notes,
             (SELECT count(*) FROM event_media m WHERE m.event = v.event),
             v.conflicts::jsonb
         FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[],
             $6::int2[], $7::text[], $8::text[], $9::text[], $10::float8[], $11::float8[],
             $12::int8[], $13::int4[], $14::text[])
             AS v(event, hex, title, description, category, severity, status, assignee,
                 notes, lon, lat, reported, n_notes, conflicts)
         LEFT JOIN LATERAL (
             SELECT x.hlc_ms, x.hlc_counter FROM (
                 SELECT e.hlc_ms, e.hlc_counter FROM entries e
                 WHERE e.event = v.event AND e.kind IN (1, 2) AND e.projected
                 OFFSET 0) AS x
             ORDER BY x.hlc_ms DESC, x.hlc_counter DESC LIMIT 1) AS h ON true
         ON CONFLICT (event) DO UPDATE SET
             title = excluded.title, description = excluded.description,
             category = excluded.category, severity = excluded.severity,
             status = excluded.status, assignee = excluded.assignee,
             notes = excluded.notes, geog = excluded.geog,
             reported_ms = excluded.reported_ms, created_by = excluded.created_by,
             updated_hlc_ms = excluded.updated_hlc_ms,
             updated_hlc_counter = excluded.updated_hlc_counter,
             n_notes = excluded.n_notes, n_media = excluded.n_media,
             conflicts = excluded.conflicts",
        &[
            &events,
            &hexes,
            &titles,
            &descriptions,
            &categories,
            &severities,
            &statuses,
            &assignees,
            &notes,
            &lons,
            &lats,
            &reported,
            &n_notes,
            &conflicts,
        ],
    )
    .await?;
    Ok(())
}

/// `{"field": ["value", …], …}`.
fn conflicts_json(conflicts: &BTreeMap<String, Vec<String>>) -> String {
    let mut out = String::from("{");
    for (i, (field, values)) in conflicts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(&mut out, field);
        out.push_str(":[");
        for (j, value) in values.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            json_string(&mut out, value);
        }
        out.push(']');
    }
    out.push('}');
    out
}

fn json_string(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn event_id(bytes: &[u8]) -> Result<EventId, StoreError> {
    <[u8; 16]>::try_from(bytes)
        .map(EventId)
        .map_err(|_| StoreError::CorruptColumn {
            column: "events.event",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_are_json() {
        let mut c = BTreeMap::new();
        c.insert(
            "title".to_owned(),
            vec!["a \"b\"".to_owned(), "c\\\n\u{1}é".to_owned()],
        );
        c.insert("severity".to_owned(), vec!["2".to_owned(), "3".to_owned()]);
        assert_eq!(
            conflicts_json(&c),
            r#"{"severity":["2","3"],"title":["a \"b\"","c\\\n\u0001é"]}"#
        );
        assert_eq!(conflicts_json(&BTreeMap::new()), "{}");
    }
}
