//! The `events` rows the projector writes: one per viewable event, its
//! derived columns computed from the projected entries that count
//! (`super::verdict`), conflicts as a JSON object; and [`ChunkEvents`],
//! those columns computed from one chunk alone for events new in it; and
//! the `event_media` rows of `media_attached` entries ([`insert_media`]).
//!
//! Never does: decide which events to write (`super::project` and
//! `super::revoked` do).

use std::collections::{BTreeMap, HashMap};

use sentinel_schema::{Body, EventId, EventView, SignedEntry};
use tokio_postgres::types::ToSql;
use tokio_postgres::Transaction;

use super::{event_of, int, StoreError};

/// The columns `events` takes from the view, one array per column.
struct Columns<'a> {
    events: Vec<&'a [u8]>,
    hexes: Vec<String>,
    titles: Vec<&'a str>,
    descriptions: Vec<&'a str>,
    categories: Vec<&'a str>,
    severities: Vec<i16>,
    statuses: Vec<&'a str>,
    assignees: Vec<Option<&'a str>>,
    notes: Vec<String>,
    lons: Vec<f64>,
    lats: Vec<f64>,
    reported: Vec<i64>,
    n_notes: Vec<i32>,
    conflicts: Vec<String>,
}

impl<'a> Columns<'a> {
    fn of<'v: 'a>(
        views: impl ExactSizeIterator<Item = (&'v EventId, &'v EventView)>,
    ) -> Result<Columns<'a>, StoreError> {
        let n = views.len();
        let mut c = Columns {
            events: Vec::with_capacity(n),
            hexes: Vec::with_capacity(n),
            titles: Vec::with_capacity(n),
            descriptions: Vec::with_capacity(n),
            categories: Vec::with_capacity(n),
            severities: Vec::with_capacity(n),
            statuses: Vec::with_capacity(n),
            assignees: Vec::with_capacity(n),
            notes: Vec::with_capacity(n),
            lons: Vec::with_capacity(n),
            lats: Vec::with_capacity(n),
            reported: Vec::with_capacity(n),
            n_notes: Vec::with_capacity(n),
            conflicts: Vec::with_capacity(n),
        };
        for (event, v) in views {
            c.events.push(&event.0);
            c.hexes.push(event.to_hex());
            c.titles.push(&v.title);
            c.descriptions.push(&v.description);
            c.categories.push(&v.category);
            c.severities.push(i16::from(v.severity));
            c.statuses.push(v.status.as_str());
            c.assignees.push(v.assignee.as_deref());
            c.notes.push(
                v.notes
                    .iter()
                    .map(|n| n.text.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
            c.lons.push(v.location.lon());
            c.lats.push(v.location.lat());
            c.reported.push(int(v.reported_ms, "events.reported_ms")?);
            c.n_notes
                .push(i32::try_from(v.notes.len()).unwrap_or(i32::MAX));
            c.conflicts.push(conflicts_json(&v.conflicts));
        }
        Ok(c)
    }

    /// `$1` … `$14` of the statements below.
    fn params(&self) -> [&(dyn ToSql + Sync); 14] {
        [
            &self.events,
            &self.hexes,
            &self.titles,
            &self.descriptions,
            &self.categories,
            &self.severities,
            &self.statuses,
            &self.assignees,
            &self.notes,
            &self.lons,
            &self.lats,
            &self.reported,
            &self.n_notes,
            &self.conflicts,
        ]
    }
}

/// The view's columns as the relation `v`.
const VIEW_ROWS: &str = "unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[],
             $6::int2[], $7::text[], $8::text[], $9::text[], $10::float8[], $11::float8[],
             $12::int8[], $13::int4[], $14::text[])
             AS v(event, hex, title, description, category, severity, status, assignee,
                 notes, lon, lat, reported, n_notes, conflicts)";

const UPSERT: &str = "ON CONFLICT (event) DO UPDATE SET
             title = excluded.title, description = excluded.description,
             category = excluded.category, severity = excluded.severity,
             status = excluded.status, assignee = excluded.assignee,
             notes = excluded.notes, geog = excluded.geog,
             reported_ms = excluded.reported_ms, created_by = excluded.created_by,
             updated_hlc_ms = excluded.updated_hlc_ms,
             updated_hlc_counter = excluded.updated_hlc_counter,
             n_notes = excluded.n_notes, n_media = excluded.n_media,
             conflicts = excluded.conflicts";

/// Upserts the `events` rows of viewable documents.
/// The per-event lookups below filter by event inside `OFFSET 0` (an
/// optimisation fence) and only then sort: left to itself, the planner may
/// walk an HLC-ordered index of the whole log to satisfy `ORDER BY … LIMIT
/// 1`, once per event, which at a million entries took minutes per chunk.
pub(super) async fn write_events(
    tx: &Transaction<'_>,
    views: &[(EventId, EventView)],
) -> Result<(), StoreError> {
    if views.is_empty() {
        return Ok(());
    }
    let columns = Columns::of(views.iter().map(|(e, v)| (e, v)))?;
    tx.execute(
        &format!(
            "INSERT INTO events (event, event_hex, title, description, category, severity,
             status, assignee, notes, geog, reported_ms, created_by,
             updated_hlc_ms, updated_hlc_counter, n_notes, n_media, conflicts)
         SELECT v.event, v.hex, v.title, v.description, v.category, v.severity,
             v.status, v.assignee, v.notes,
             ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326)::geography, v.reported,
             coalesce((SELECT encode(x.author, 'hex') FROM (
                     SELECT e.author, e.hlc_ms, e.hlc_counter FROM entries e
                     WHERE e.event = v.event AND e.kind = 1 AND e.projected
                         AND NOT EXISTS (SELECT 1 FROM revoked_authors r
                             WHERE r.author = e.author AND e.seq > r.last_valid_seq)
                     OFFSET 0) AS x
                 ORDER BY x.hlc_ms, x.hlc_counter, x.author LIMIT 1), ''),
             coalesce(h.hlc_ms, 0), coalesce(h.hlc_counter, 0), v.n_notes,
             (SELECT count(*) FROM event_media m WHERE m.event = v.event),
             v.conflicts::jsonb
         FROM {VIEW_ROWS}
         LEFT JOIN LATERAL (
             SELECT x.hlc_ms, x.hlc_counter FROM (
                 SELECT e.hlc_ms, e.hlc_counter FROM entries e
                 WHERE e.event = v.event AND e.kind IN (1, 2) AND e.projected
                     AND NOT EXISTS (SELECT 1 FROM revoked_authors r
                         WHERE r.author = e.author AND e.seq > r.last_valid_seq)
                 OFFSET 0) AS x
             ORDER BY x.hlc_ms DESC, x.hlc_counter DESC LIMIT 1) AS h ON true
         {UPSERT}"
        ),
        &columns.params(),
    )
    .await?;
    Ok(())
}

/// The derived columns of an event whose every entry in the log is in the
/// projector's chunk, computed from those entries by the projector as
/// [`write_events`] computes them from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Derived {
    /// Author (hex) of the earliest-HLC counting `event_change`.
    pub created_by: String,
    /// Newest HLC of its counting `event_change`/`media_attached` entries.
    pub updated_hlc_ms: i64,
    pub updated_hlc_counter: i64,
}

/// Upserts the `events` rows of new events (see [`Derived`]): the same
/// rows as [`write_events`], without a lookup in the log per event.
pub(super) async fn write_new_events(
    tx: &Transaction<'_>,
    views: &[(EventId, EventView, Derived)],
) -> Result<(), StoreError> {
    if views.is_empty() {
        return Ok(());
    }
    let columns = Columns::of(views.iter().map(|(e, v, _)| (e, v)))?;
    let created_by: Vec<&str> = views
        .iter()
        .map(|(_, _, d)| d.created_by.as_str())
        .collect();
    let hlc_ms: Vec<i64> = views.iter().map(|(_, _, d)| d.updated_hlc_ms).collect();
    let hlc_counter: Vec<i64> = views
        .iter()
        .map(|(_, _, d)| d.updated_hlc_counter)
        .collect();
    let mut params: Vec<&(dyn ToSql + Sync)> = columns.params().to_vec();
    params.extend([&created_by as &(dyn ToSql + Sync), &hlc_ms, &hlc_counter]);
    tx.execute(
        &format!(
            "INSERT INTO events (event, event_hex, title, description, category, severity,
             status, assignee, notes, geog, reported_ms, created_by,
             updated_hlc_ms, updated_hlc_counter, n_notes, n_media, conflicts)
         SELECT v.event, v.hex, v.title, v.description, v.category, v.severity,
             v.status, v.assignee, v.notes,
             ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326)::geography, v.reported,
             d.created_by, d.hlc_ms, d.hlc_counter, v.n_notes,
             (SELECT count(*) FROM event_media m WHERE m.event = v.event),
             v.conflicts::jsonb
         FROM {VIEW_ROWS}
         JOIN unnest($1::bytea[], $15::text[], $16::int8[], $17::int8[])
             AS d(event, created_by, hlc_ms, hlc_counter) ON d.event = v.event
         {UPSERT}"
        ),
        &params,
    )
    .await?;
    Ok(())
}

/// `event_media` rows for `media_attached` entries; a hash already
/// attached to the event keeps its first row.
pub(super) async fn insert_media(
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
             AS t(event, hash, mime, size, name, entry)
         WHERE NOT EXISTS (SELECT 1 FROM redacted_blobs b WHERE b.hash = t.hash)
         ON CONFLICT (event, hash) DO NOTHING",
        &[&events, &hashes, &mimes, &sizes, &names, &entry_ids],
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

pub(super) fn event_id(bytes: &[u8]) -> Result<EventId, StoreError> {
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

/// What a chunk's entries say per event: how many entries of the chunk
/// name it (counting or not), and the derived columns of `events` computed
/// from its counting entries, as [`write_events`] computes them from the
/// log — equal whenever the log holds no other entry of the event.
#[derive(Default)]
pub(super) struct ChunkEvents {
    named: HashMap<EventId, i64>,
    /// `(hlc_ms, hlc_counter, author)` of the earliest counting change.
    created: HashMap<EventId, (i64, i64, [u8; 32])>,
    /// `(hlc_ms, hlc_counter)` of the newest counting change or media.
    updated: HashMap<EventId, (i64, i64)>,
}

impl ChunkEvents {
    pub(super) fn of(
        entries: &[SignedEntry],
        counted: &[SignedEntry],
    ) -> Result<ChunkEvents, StoreError> {
        let mut out = ChunkEvents::default();
        for e in entries {
            if let Some(event) = event_of(e) {
                *out.named.entry(event).or_default() += 1;
            }
        }
        for e in counted {
            let Some(event) = event_of(e) else { continue };
            let entry = e.entry();
            let hlc = (
                int(entry.hlc.wall_ms, "entries.hlc_ms")?,
                i64::from(entry.hlc.counter),
            );
            if matches!(entry.body, Body::EventChange(_)) {
                let candidate = (hlc.0, hlc.1, entry.author.0);
                out.created
                    .entry(event)
                    .and_modify(|c| *c = (*c).min(candidate))
                    .or_insert(candidate);
            }
            // `updated_hlc` is over changes and media (as `write_events`).
            if matches!(entry.body, Body::Redaction(_)) {
                continue;
            }
            out.updated
                .entry(event)
                .and_modify(|u| *u = (*u).max(hlc))
                .or_insert(hlc);
        }
        Ok(out)
    }

    /// Entries of the chunk that name `event`.
    pub(super) fn named(&self, event: &EventId) -> i64 {
        self.named.get(event).copied().unwrap_or(0)
    }

    /// The derived columns of `event`, if a counting change created it.
    pub(super) fn derived(&self, event: &EventId) -> Option<Derived> {
        let (_, _, author) = self.created.get(event)?;
        let (ms, counter) = self.updated.get(event)?;
        Some(Derived {
            created_by: sentinel_schema::AuthorId(*author).to_hex(),
            updated_hlc_ms: *ms,
            updated_hlc_counter: *counter,
        })
    }
}
