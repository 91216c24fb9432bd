//! The outbox's writer: the deliveries a projector chunk's changes make,
//! enqueued in its transaction (see `super`'s docs), and the quiet marks
//! a rebuild of the views leaves.
//!
//! Never does: HTTP, signing; decide which events changed (the projector
//! tells it).

use std::collections::{BTreeMap, BTreeSet};

use sentinel_schema::{Body, BodyKind, EventDoc, EventId, EventView, SignedEntry, Status};
use sha2::{Digest, Sha256};
use tokio_postgres::Transaction;

use super::{payload, subscription, Before, Fact, Subscription, SUBSCRIPTION_COLUMNS};
use crate::store::{id16, int, StoreError};

/// The wall clock in Unix ms, to stamp new rows (the projector has no
/// clock of its own; the worker's is injected and compares with it).
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Marks every projected event entry quiet, inside
/// [`PgStore::rebuild_views`]'s transaction: projecting them again
/// announces nothing.
pub(crate) const QUIET_PROJECTED: &str = "INSERT INTO webhook_quiet (pos)
     SELECT pos FROM entries WHERE projected AND kind IN (1, 2) ON CONFLICT DO NOTHING";

/// Enqueues the deliveries the chunk's changes make (see the module docs),
/// inside the projector's transaction, before `changed`'s rows are
/// written. `positions[i]` is `entries[i]`'s. Returns how many.
pub(crate) async fn enqueue(
    tx: &Transaction<'_>,
    positions: &[i64],
    entries: &[SignedEntry],
    changed: &[(EventId, &EventView)],
) -> Result<usize, StoreError> {
    let quiet: BTreeSet<i64> = tx
        .query(
            "DELETE FROM webhook_quiet WHERE pos = ANY($1) RETURNING pos",
            &[&positions],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    // The fresh entries of each event: their kinds and ids.
    let mut made: BTreeMap<EventId, (BTreeSet<BodyKind>, Vec<[u8; 32]>)> = BTreeMap::new();
    for (pos, e) in positions.iter().zip(entries) {
        if quiet.contains(pos) {
            continue;
        }
        let (event, kind) = match &e.entry().body {
            Body::EventChange(c) => (c.event, BodyKind::EventChange),
            Body::MediaAttached(m) => (m.event, BodyKind::MediaAttached),
            _ => continue,
        };
        let slot = made.entry(event).or_default();
        slot.0.insert(kind);
        slot.1.push(e.id().0);
    }
    if made.is_empty() {
        return Ok(0);
    }
    let subscriptions: Vec<Subscription> = tx
        .query(
            &format!("SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE enabled"),
            &[],
        )
        .await?
        .iter()
        .map(subscription)
        .collect::<Result<_, _>>()?;
    if subscriptions.is_empty() {
        return Ok(0);
    }
    // Events only media reached: their document did not change, so the
    // projector computed no view; it is read from the saved document.
    let listed: BTreeSet<EventId> = changed.iter().map(|(e, _)| *e).collect();
    let media_only: Vec<&[u8]> = made
        .keys()
        .filter(|e| !listed.contains(e))
        .map(|e| e.0.as_slice())
        .collect();
    let mut extra: Vec<(EventId, EventView)> = Vec::new();
    if !media_only.is_empty() {
        for r in tx
            .query(
                "SELECT event, doc FROM documents WHERE event = ANY($1) AND complete",
                &[&media_only],
            )
            .await?
        {
            let event = EventId(id16(r.get(0), "documents.event")?);
            if let Some(view) = EventDoc::load(r.get(1)).ok().and_then(|d| d.view().ok()) {
                extra.push((event, view));
            }
        }
        // Never a redacted value in a payload.
        crate::store::redactions::mask_views(tx, &mut extra).await?;
    }
    let changed: Vec<(EventId, &EventView)> = changed
        .iter()
        .copied()
        .chain(extra.iter().map(|(e, v)| (*e, v)))
        .collect();
    let keys: Vec<&[u8]> = changed
        .iter()
        .filter(|(e, _)| made.contains_key(e))
        .map(|(e, _)| e.0.as_slice())
        .collect();
    if keys.is_empty() {
        return Ok(0);
    }
    let mut before: BTreeMap<EventId, Before> = BTreeMap::new();
    for r in tx
        .query(
            "SELECT event, status, severity, category FROM events WHERE event = ANY($1)",
            &[&keys],
        )
        .await?
    {
        let event = EventId(id16(r.get(0), "events.event")?);
        let status: String = r.get(1);
        let status = status
            .parse::<Status>()
            .map_err(|_| StoreError::CorruptColumn {
                column: "events.status",
            })?;
        let severity = u8::try_from(r.get::<_, i16>(2)).map_err(|_| StoreError::CorruptColumn {
            column: "events.severity",
        })?;
        before.insert(
            event,
            Before {
                status,
                severity,
                category: r.get(3),
            },
        );
    }

    let now = wall_ms();
    let created = int(now, "webhook_deliveries.created_ms")?;
    let (mut ids, mut subs, mut events, mut kinds, mut bodies) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (event, view) in &changed {
        let Some((entry_kinds, entry_ids)) = made.get(event) else {
            continue;
        };
        let fact = Fact {
            event: *event,
            kinds: entry_kinds.clone(),
            before: before.get(event).cloned(),
            view,
        };
        for s in subscriptions.iter().filter(|s| s.rule.matches(&fact)) {
            let id = delivery_id(&s.id, entry_ids);
            bodies.push(payload(&id, &s.id, &fact, now));
            ids.push(id.to_vec());
            subs.push(s.id.to_vec());
            events.push(event.0.to_vec());
            kinds.push(fact.kind());
        }
    }
    if ids.is_empty() {
        return Ok(0);
    }
    let n = tx
        .execute(
            "INSERT INTO webhook_deliveries
                 (id, subscription, event, kind, payload, state, next_attempt_ms, created_ms)
             SELECT i, s, e, k, p, 'pending', $6, $6
             FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::text[], $5::text[])
                 AS t(i, s, e, k, p)
             ON CONFLICT (id) DO NOTHING",
            &[&ids, &subs, &events, &kinds, &bodies, &created],
        )
        .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// A delivery's id: the first 16 bytes of SHA-256 over a label, the
/// subscription and the ids of the entries that made the change.
fn delivery_id(subscription: &[u8; 16], entries: &[[u8; 32]]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(b"sentinel webhook delivery\0");
    h.update(subscription);
    for e in entries {
        h.update(e);
    }
    let digest = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}
