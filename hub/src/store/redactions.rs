//! Redactions: the `redactions` and `redacted_blobs` views of the log's
//! `redaction` entries (migration V14), the masks every view derived from
//! an event's document goes through, and the blobs still to delete from
//! the blob folder (`docs/protocol.md` 1.6).

use std::collections::HashMap;

use sentinel_schema::redact::Redactions;
use sentinel_schema::{EventId, EventView, RedactedField, RedactedValue, Redaction, SignedEntry};
use tokio_postgres::{GenericClient, ToStatement, Transaction};

use super::rows::{event_id, Derived};
use super::{id32, PgStore, StoreError};

/// One statement for every redaction of some events: `(event, field,
/// hash)`, the field `blob` for an erased blob.
pub(super) const OF_EVENTS: &str = "SELECT event, field, hash FROM redactions WHERE event = ANY($1)
     UNION ALL SELECT event, 'blob', hash FROM redacted_blobs WHERE event = ANY($1)";

/// Records the counted `redaction` entries of a projector chunk: their
/// values and blobs, and the erased blobs' `event_media` rows removed.
pub(super) async fn record(
    tx: &Transaction<'_>,
    redactions: &[(&SignedEntry, &Redaction)],
) -> Result<(), StoreError> {
    if redactions.is_empty() {
        return Ok(());
    }
    let (mut events, mut fields, mut hashes, mut entries) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut b_events, mut b_hashes, mut b_entries) = (Vec::new(), Vec::new(), Vec::new());
    let ids: Vec<[u8; 32]> = redactions.iter().map(|(e, _)| e.id().0).collect();
    for ((_, r), id) in redactions.iter().zip(&ids) {
        for v in &r.values {
            events.push(r.event.0.as_slice());
            fields.push(v.field.as_str());
            hashes.push(v.hash.as_slice());
            entries.push(id.as_slice());
        }
        for h in &r.blobs {
            b_events.push(r.event.0.as_slice());
            b_hashes.push(h.as_slice());
            b_entries.push(id.as_slice());
        }
    }
    tx.execute(
        "INSERT INTO redactions (event, field, hash, entry)
         SELECT * FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::bytea[])
         ON CONFLICT DO NOTHING",
        &[&events, &fields, &hashes, &entries],
    )
    .await?;
    tx.execute(
        "INSERT INTO redacted_blobs (event, hash, entry)
         SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[])
         ON CONFLICT DO NOTHING",
        &[&b_events, &b_hashes, &b_entries],
    )
    .await?;
    tx.execute(
        "DELETE FROM event_media m USING redacted_blobs b WHERE m.hash = b.hash
             AND b.hash = ANY($1)",
        &[&b_hashes],
    )
    .await?;
    Ok(())
}

/// Every redaction of `events`, per event (events with none are absent).
pub(super) async fn of_events<C: GenericClient>(
    client: &C,
    events: &[&[u8]],
) -> Result<HashMap<EventId, Redactions>, StoreError> {
    of_events_by(client, OF_EVENTS, events).await
}

/// [`of_events`] with [`OF_EVENTS`] as the caller prepared it (a hot
/// read path prepares it once per connection).
pub(super) async fn of_events_by<C: GenericClient, S: ToStatement + Sync + Send + ?Sized>(
    client: &C,
    statement: &S,
    events: &[&[u8]],
) -> Result<HashMap<EventId, Redactions>, StoreError> {
    let mut out: HashMap<EventId, Redactions> = HashMap::new();
    if events.is_empty() {
        return Ok(out);
    }
    for r in client.query(statement, &[&events]).await? {
        let event = event_id(r.get(0))?;
        let field: &str = r.get(1);
        let hash = id32(r.get(2), "redactions.hash")?;
        let set = out.entry(event).or_default();
        if field == "blob" {
            set.add_blob(hash);
        } else {
            let field = RedactedField::parse(field).ok_or(StoreError::CorruptColumn {
                column: "redactions.field",
            })?;
            set.add_value(RedactedValue { field, hash });
        }
    }
    Ok(out)
}

/// Masks each view with its event's redactions (one query for them all).
pub(super) async fn mask_views<C: GenericClient>(
    client: &C,
    views: &mut [(EventId, EventView)],
) -> Result<(), StoreError> {
    let keys: Vec<&[u8]> = views.iter().map(|(e, _)| e.0.as_slice()).collect();
    let sets = of_events(client, &keys).await?;
    if sets.is_empty() {
        return Ok(());
    }
    for (event, view) in views.iter_mut() {
        if let Some(set) = sets.get(event) {
            set.mask(view);
        }
    }
    Ok(())
}

/// [`super::redactions::mask_views`] for views written with their derived
/// columns.
pub(super) async fn mask_new_views(
    tx: &Transaction<'_>,
    views: &mut [(EventId, EventView, Derived)],
) -> Result<(), StoreError> {
    let keys: Vec<&[u8]> = views.iter().map(|(e, _, _)| e.0.as_slice()).collect();
    let sets = of_events(tx, &keys).await?;
    for (event, view, _) in views.iter_mut() {
        if let Some(set) = sets.get(event) {
            set.mask(view);
        }
    }
    Ok(())
}

impl PgStore {
    /// Blobs a redaction erased that may still be in the blob folder.
    pub async fn blobs_to_erase(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT hash FROM redacted_blobs WHERE NOT erased ORDER BY hash",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| id32(r.get(0), "redacted_blobs.hash"))
            .collect()
    }

    /// Records that these blobs are gone from the blob folder.
    pub async fn blobs_erased(&self, hashes: &[[u8; 32]]) -> Result<(), StoreError> {
        let keys: Vec<&[u8]> = hashes.iter().map(|h| h.as_slice()).collect();
        self.client()
            .await?
            .execute(
                "UPDATE redacted_blobs SET erased = true WHERE hash = ANY($1)",
                &[&keys],
            )
            .await?;
        Ok(())
    }

    /// Whether a redaction erased this blob.
    pub async fn blob_redacted(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT 1 FROM redacted_blobs WHERE hash = $1",
                &[&hash.as_slice()],
            )
            .await?;
        Ok(row.is_some())
    }

    /// Every redaction of one event, as the masks apply them.
    pub async fn redactions_of(&self, event: &EventId) -> Result<Redactions, StoreError> {
        let client = self.client().await?;
        let mut sets = of_events(&**client, &[event.0.as_slice()]).await?;
        Ok(sets.remove(event).unwrap_or_default())
    }
}
