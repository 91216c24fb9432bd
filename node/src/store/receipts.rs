//! Receipts and the outbox: which of this node's entries a hub has
//! acknowledged, so that an officer never confuses "saved" with "synced".
//!
//! A **receipt** is a hub's acknowledgement covering an entry: per hub and
//! author, the highest seq the hub said it durably holds (in an `Ack`, or
//! in the heads it presented at the start of a session), with the id of
//! this store's entry there and when it arrived. Chains are contiguous, so
//! a receipt for seq 7 covers seqs 1–7. Receipts only ever rise: a hub
//! that later presents less (restored from a backup) does not take back
//! its promise. A head that is not an entry of this store — one it does
//! not hold, or another entry at that seq — covers nothing.
//!
//! The **outbox** is this node's own entries above the highest seq any
//! hub acknowledged for the node's author. Acknowledgements from other
//! nodes are not receipts (a node relays, it does not archive); `net`
//! records only what a peer with a hub certificate acknowledged.
//!
//! Receipts are evidence of the hub's promise, not a view: rebuilding the
//! views leaves them alone.

use rusqlite::{params, OptionalExtension, Transaction};
use sentinel_schema::{AuthorId, BodyKind, Head, Hlc};

use super::{Store, StoreError};

/// Creates the receipts table (migration 4).
pub(crate) fn migrate(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "-- Evidence: per hub and author, the highest seq the hub
        -- acknowledged, the id of our entry there, and when it arrived.
        CREATE TABLE receipts (
            hub         BLOB    NOT NULL,
            hub_name    TEXT    NOT NULL,
            author      BLOB    NOT NULL,
            seq         INTEGER NOT NULL CHECK (seq >= 1),
            id          BLOB    NOT NULL,
            received_ms INTEGER NOT NULL,
            PRIMARY KEY (hub, author)
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX receipts_by_author ON receipts (author, seq);",
    )?;
    Ok(())
}

/// One of this node's entries that no hub has acknowledged yet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxEntry {
    pub seq: u64,
    pub entry: String,
    /// `event_change`, `media_attached`, …
    pub kind: &'static str,
    /// The event it is about, if any (hex).
    pub event: Option<String>,
    /// The entry's hybrid logical clock (`wall_ms.counter`).
    pub hlc: String,
    /// The wall-clock part of `hlc`, Unix ms.
    pub hlc_ms: u64,
}

/// A hub's acknowledgement of an author's chain up to `seq`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Receipt {
    /// The hub's author id (hex), from its certificate.
    pub hub: String,
    /// The hub's name, from its certificate.
    pub hub_name: String,
    pub author: String,
    /// The highest seq acknowledged: it covers every seq up to it.
    pub seq: u64,
    /// The id of this store's entry at `seq`.
    pub entry: String,
    /// When the receipt arrived, Unix ms.
    pub received_ms: u64,
}

const RECEIPT_COLUMNS: &str = "hex(hub), hub_name, hex(author), seq, hex(id), received_ms";

fn receipt(r: &rusqlite::Row<'_>) -> rusqlite::Result<Receipt> {
    Ok(Receipt {
        hub: r.get::<_, String>(0)?.to_lowercase(),
        hub_name: r.get(1)?,
        author: r.get::<_, String>(2)?.to_lowercase(),
        seq: r.get::<_, i64>(3)? as u64,
        entry: r.get::<_, String>(4)?.to_lowercase(),
        received_ms: r.get::<_, i64>(5)? as u64,
    })
}

impl Store {
    /// Keeps what hub `hub` (named `hub_name`) acknowledged: per author,
    /// the highest seq, only where it is an entry of this store and above
    /// what the hub acknowledged before. All or nothing, one transaction.
    /// Returns how many receipts rose.
    pub fn record_receipts(
        &mut self,
        hub: AuthorId,
        hub_name: &str,
        heads: &[(AuthorId, Head)],
        now_ms: u64,
    ) -> Result<usize, StoreError> {
        let tx = self.conn_mut().transaction()?;
        let mut raised = 0;
        {
            let mut raise = tx.prepare_cached(
                "INSERT INTO receipts (hub, hub_name, author, seq, id, received_ms)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6
                 WHERE EXISTS (SELECT 1 FROM entries WHERE author = ?3 AND seq = ?4 AND id = ?5)
                 ON CONFLICT (hub, author) DO UPDATE
                     SET hub_name = excluded.hub_name, seq = excluded.seq, id = excluded.id,
                         received_ms = excluded.received_ms
                     WHERE excluded.seq > receipts.seq",
            )?;
            for (author, head) in heads {
                if head.seq == 0 {
                    continue;
                }
                raised += raise.execute(params![
                    hub.as_bytes(),
                    hub_name,
                    author.as_bytes(),
                    head.seq as i64,
                    head.id.as_bytes(),
                    now_ms as i64,
                ])?;
            }
        }
        tx.commit()?;
        Ok(raised)
    }

    /// The highest seq of `author` any hub acknowledged (0: none).
    pub fn acknowledged_seq(&self, author: &AuthorId) -> Result<u64, StoreError> {
        let seq: Option<i64> = self
            .conn()
            .prepare_cached("SELECT max(seq) FROM receipts WHERE author = ?1")?
            .query_row([author.as_bytes()], |r| r.get(0))?;
        Ok(seq.unwrap_or(0) as u64)
    }

    /// This node's own entries that no hub has acknowledged, oldest first
    /// (newest last).
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let Some(owner) = self.owner()? else {
            return Ok(Vec::new());
        };
        let after = self.acknowledged_seq(&owner)?;
        let mut stmt = self.conn().prepare_cached(
            "SELECT seq, hex(id), kind, hex(event), hlc_ms, hlc_counter FROM entries
             WHERE author = ?1 AND seq > ?2 AND local = 1 ORDER BY seq",
        )?;
        let mut rows = stmt.query(params![owner.as_bytes(), after as i64])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let kind: i64 = r.get(2)?;
            let hlc_ms = r.get::<_, i64>(4)? as u64;
            out.push(OutboxEntry {
                seq: r.get::<_, i64>(0)? as u64,
                entry: r.get::<_, String>(1)?.to_lowercase(),
                kind: u64::try_from(kind)
                    .ok()
                    .and_then(|k| BodyKind::from_wire(k).ok())
                    .map_or("unknown", BodyKind::as_str),
                event: r
                    .get::<_, Option<String>>(3)?
                    .filter(|e| !e.is_empty())
                    .map(|e| e.to_lowercase()),
                hlc: Hlc::new(hlc_ms, r.get(5)?).to_string(),
                hlc_ms,
            });
        }
        Ok(out)
    }

    /// How many of this node's own entries no hub has acknowledged.
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        let Some(owner) = self.owner()? else {
            return Ok(0);
        };
        let after = self.acknowledged_seq(&owner)?;
        let n: i64 = self
            .conn()
            .prepare_cached(
                "SELECT count(*) FROM entries WHERE author = ?1 AND seq > ?2 AND local = 1",
            )?
            .query_row(params![owner.as_bytes(), after as i64], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// The hubs whose receipts cover this node's entry at `seq`, and when
    /// each acknowledged it (its receipt for that seq or a later one),
    /// earliest first.
    pub fn receipt_for(&self, seq: u64) -> Result<Vec<Receipt>, StoreError> {
        let Some(owner) = self.owner()? else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {RECEIPT_COLUMNS} FROM receipts WHERE author = ?1 AND seq >= ?2
             ORDER BY received_ms, hub"
        ))?;
        let rows = stmt.query_map(params![owner.as_bytes(), seq as i64], receipt)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The receipt with the highest seq of this node's own chain (the
    /// latest to arrive among equals), if any hub acknowledged anything.
    pub fn last_receipt(&self) -> Result<Option<Receipt>, StoreError> {
        let Some(owner) = self.owner()? else {
            return Ok(None);
        };
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {RECEIPT_COLUMNS} FROM receipts WHERE author = ?1
                 ORDER BY seq DESC, received_ms DESC LIMIT 1"
            ))?
            .query_row([owner.as_bytes()], receipt)
            .optional()?)
    }

    /// Every receipt kept, for any author, by hub then author.
    pub fn receipts(&self) -> Result<Vec<Receipt>, StoreError> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {RECEIPT_COLUMNS} FROM receipts ORDER BY hub, author"
        ))?;
        let rows = stmt.query_map([], receipt)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
