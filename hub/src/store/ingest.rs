//! Bulk ingest: a batch of chain-checked entries reaches the log through
//! binary `COPY` into a staging table, then one `INSERT … SELECT`, with the
//! heads moved by the same transaction. One round trip carries the whole
//! batch; a failure anywhere (a row the log refuses, a broken connection)
//! rolls back the caller's transaction, so nothing of the batch remains.

use std::pin::pin;

use sentinel_schema::SignedEntry;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Transaction;

use super::{event_of, int, StoreError};

/// Per connection, emptied at every commit (`ON COMMIT DELETE ROWS`) and
/// gone with a rollback of the transaction that created it; `IF NOT
/// EXISTS` makes it again when needed. The primary key refuses a batch
/// that names one entry twice while it is being copied. PostgreSQL answers
/// an existing table with a NOTICE, which the driver logs: the transaction
/// raises its message threshold first, so a busy hub does not log one line
/// per batch.
const CREATE_STAGING: &str = "SET LOCAL client_min_messages = warning;
    CREATE TEMP TABLE IF NOT EXISTS staging_entries (
        ord         bigint   NOT NULL,
        author      bytea    NOT NULL,
        seq         bigint   NOT NULL,
        id          bytea    NOT NULL PRIMARY KEY,
        prev        bytea,
        hlc_ms      bigint   NOT NULL,
        hlc_counter bigint   NOT NULL,
        kind        smallint NOT NULL,
        actor       text,
        event       bytea,
        bytes       bytea    NOT NULL
    ) ON COMMIT DELETE ROWS";

const COPY_STAGING: &str = "COPY staging_entries
    (ord, author, seq, id, prev, hlc_ms, hlc_counter, kind, actor, event, bytes)
    FROM STDIN (FORMAT binary)";

const STAGING_TYPES: [Type; 11] = [
    Type::INT8,
    Type::BYTEA,
    Type::INT8,
    Type::BYTEA,
    Type::BYTEA,
    Type::INT8,
    Type::INT8,
    Type::INT2,
    Type::TEXT,
    Type::BYTEA,
    Type::BYTEA,
];

/// Appends `entries` (in this order, already checked against the chain) to
/// the log and moves the heads, inside `tx`.
pub(super) async fn append(
    tx: &Transaction<'_>,
    entries: &[SignedEntry],
    received_ms: u64,
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    tx.batch_execute(CREATE_STAGING).await?;
    let sink = tx.copy_in(COPY_STAGING).await?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &STAGING_TYPES));
    for (ord, e) in entries.iter().enumerate() {
        let entry = e.entry();
        let ord = ord as i64;
        let id = e.id();
        let prev = entry.prev.as_ref().map(|p| p.0.as_slice());
        let event = event_of(e);
        let event = event.as_ref().map(|ev| ev.0.as_slice());
        let row: [&(dyn ToSql + Sync); 11] = [
            &ord,
            &entry.author.0.as_slice(),
            &int(entry.seq, "entries.seq")?,
            &id.0.as_slice(),
            &prev,
            &int(entry.hlc.wall_ms, "entries.hlc_ms")?,
            &i64::from(entry.hlc.counter),
            &i16::from(entry.body.kind() as u8),
            &entry.actor,
            &event,
            &e.as_bytes(),
        ];
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;
    tx.execute(
        "INSERT INTO entries
             (author, seq, id, prev, hlc_ms, hlc_counter, kind, actor, event, bytes, received_ms)
         SELECT author, seq, id, prev, hlc_ms, hlc_counter, kind, actor, event, bytes, $1
         FROM staging_entries ORDER BY ord",
        &[&int(received_ms, "entries.received_ms")?],
    )
    .await?;
    tx.execute(
        "INSERT INTO heads (author, seq, id)
         SELECT DISTINCT ON (author) author, seq, id FROM staging_entries
         ORDER BY author, seq DESC
         ON CONFLICT (author) DO UPDATE SET seq = excluded.seq, id = excluded.id
         WHERE heads.seq < excluded.seq",
        &[],
    )
    .await?;
    Ok(())
}

#[cfg(feature = "testing")]
impl super::PgStore {
    /// Test hook: sends `entries` through the bulk path exactly as given,
    /// with no chain check, in one transaction — so a test can make a batch
    /// fail halfway and see that nothing of it remains. Never call it
    /// outside tests: it can break the chain invariants.
    pub async fn danger_append_unchecked(
        &self,
        entries: &[SignedEntry],
        received_ms: u64,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        append(&tx, entries, received_ms).await?;
        tx.commit().await?;
        Ok(())
    }
}
