//! The `events` rows the projector writes: one per viewable event, its
//! derived columns computed from the projected entries that count
//! (`super::verdict`), conflicts as a JSON object.
//!
//! Never does: decide which events to write (`super::project` and
//! `super::revoked` do).

use std::collections::BTreeMap;

use sentinel_schema::{EventId, EventView};
use tokio_postgres::Transaction;

use super::{int, StoreError};

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
                         AND NOT EXISTS (SELECT 1 FROM revoked_authors r
                             WHERE r.author = e.author AND e.seq > r.last_valid_seq)
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
                     AND NOT EXISTS (SELECT 1 FROM revoked_authors r
                         WHERE r.author = e.author AND e.seq > r.last_valid_seq)
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
