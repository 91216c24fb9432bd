//! Hub checkpoints in the node's store: the heads each hub attested (a
//! view, rebuilt from the log like the others), and the breaches found
//! against them (evidence, never rebuilt or deleted).
//!
//! The rules are `sentinel_sync::checkpoint`'s; this module only keeps
//! their inputs and outputs. A breach is found in two places: a sync
//! session (a hub presenting a shorter log, any peer presenting another
//! entry at an attested position), and here, when a checkpoint attests
//! an entry other than the one the local log holds at that position.

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use sentinel_schema::{AuthorId, EntryId, Head, HubCheckpoint};
use sentinel_sync::{Attestation, Breach};

use super::{blob, Store, StoreError};

/// Who presented a breach found in the local log rather than in a session.
pub const LOCAL_LOG: &str = "local log";

/// Creates the checkpoint tables (migration 3).
pub(crate) fn migrate(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "-- View: per hub and author, the highest head a checkpoint attested.
        CREATE TABLE checkpoint_heads (
            hub        BLOB    NOT NULL,
            author     BLOB    NOT NULL,
            seq        INTEGER NOT NULL,
            id         BLOB    NOT NULL,
            checkpoint BLOB    NOT NULL,
            PRIMARY KEY (hub, author)
        ) STRICT, WITHOUT ROWID;

        -- Evidence: contradictions of a checkpoint, one row per hub,
        -- author, kind, attested seq and presenter.
        CREATE TABLE checkpoint_breaches (
            hub           BLOB    NOT NULL,
            author        BLOB    NOT NULL,
            kind          TEXT    NOT NULL CHECK (kind IN ('truncated', 'forked')),
            attested_seq  INTEGER NOT NULL,
            attested_id   BLOB    NOT NULL,
            presented_seq INTEGER,
            presented_id  BLOB,
            peer          TEXT    NOT NULL,
            first_seen_ms INTEGER NOT NULL,
            last_seen_ms  INTEGER NOT NULL,
            times         INTEGER NOT NULL,
            PRIMARY KEY (hub, author, kind, attested_seq, peer)
        ) STRICT;",
    )?;
    Ok(())
}

/// Projects one checkpoint entry: raises the attested heads, and records a
/// breach where the local log holds another entry at an attested position.
pub(crate) fn project(
    conn: &Connection,
    hub: AuthorId,
    checkpoint_id: EntryId,
    checkpoint: &HubCheckpoint,
    now_ms: u64,
) -> Result<(), StoreError> {
    let mut raise = conn.prepare_cached(
        "INSERT INTO checkpoint_heads (hub, author, seq, id, checkpoint)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (hub, author) DO UPDATE
             SET seq = excluded.seq, id = excluded.id, checkpoint = excluded.checkpoint
             WHERE excluded.seq > checkpoint_heads.seq",
    )?;
    let mut local = conn.prepare_cached("SELECT id FROM entries WHERE author = ?1 AND seq = ?2")?;
    for (author, head) in &checkpoint.heads {
        raise.execute(params![
            hub.as_bytes(),
            author.as_bytes(),
            head.seq as i64,
            head.id.as_bytes(),
            checkpoint_id.as_bytes()
        ])?;
        let held: Option<Vec<u8>> = local
            .query_row(params![author.as_bytes(), head.seq as i64], |r| r.get(0))
            .optional()?;
        if let Some(held) = held.filter(|h| h.as_slice() != head.id.as_bytes()) {
            let held = EntryId(held.try_into().map_err(|_| StoreError::CorruptColumn {
                column: "entries.id",
            })?);
            record(
                conn,
                &Breach::Forked {
                    hub,
                    author: *author,
                    attested: *head,
                    presented: held,
                },
                LOCAL_LOG,
                now_ms,
            )?;
        }
    }
    Ok(())
}

fn record(conn: &Connection, breach: &Breach, peer: &str, now_ms: u64) -> Result<(), StoreError> {
    let attested = breach.attested();
    let (presented_seq, presented_id) = match breach {
        Breach::Truncated { presented, .. } => (Some(*presented as i64), None),
        Breach::Forked { presented, .. } => (None, Some(presented.as_bytes().to_vec())),
    };
    conn.prepare_cached(
        "INSERT INTO checkpoint_breaches (hub, author, kind, attested_seq, attested_id,
             presented_seq, presented_id, peer, first_seen_ms, last_seen_ms, times)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, 1)
         ON CONFLICT (hub, author, kind, attested_seq, peer) DO UPDATE
             SET presented_seq = excluded.presented_seq,
                 presented_id = excluded.presented_id,
                 last_seen_ms = excluded.last_seen_ms,
                 times = checkpoint_breaches.times + 1",
    )?
    .execute(params![
        breach.hub().as_bytes(),
        breach.author().as_bytes(),
        breach.kind(),
        attested.seq as i64,
        attested.id.as_bytes(),
        presented_seq,
        presented_id,
        peer,
        now_ms as i64,
    ])?;
    Ok(())
}

/// A breach as stored, for people and `--json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BreachRecord {
    /// `truncated` or `forked`.
    pub kind: String,
    pub hub: String,
    pub author: String,
    pub attested_seq: u64,
    pub attested_id: String,
    /// Truncated: the seq the hub presented (0: none).
    pub presented_seq: Option<u64>,
    /// Forked: the id presented at the attested seq.
    pub presented_id: Option<String>,
    /// Who presented it: a peer's name, or "local log".
    pub peer: String,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    pub times: u64,
}

impl Store {
    /// Every attested head (what sync sessions check against).
    pub fn attestations(&self) -> Result<Vec<Attestation>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT hub, author, seq, id FROM checkpoint_heads ORDER BY hub, author",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(Attestation {
                hub: AuthorId(blob(r, 0, "checkpoint_heads.hub")?),
                author: AuthorId(blob(r, 1, "checkpoint_heads.author")?),
                head: Head {
                    seq: r.get::<_, i64>(2)? as u64,
                    id: EntryId(blob(r, 3, "checkpoint_heads.id")?),
                },
            });
        }
        Ok(out)
    }

    /// Keeps a breach a session found; `peer` names who presented it.
    pub fn record_breach(
        &mut self,
        breach: &Breach,
        peer: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        record(self.conn(), breach, peer, now_ms)
    }

    /// Every breach kept, oldest first.
    pub fn breaches(&self) -> Result<Vec<BreachRecord>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT kind, hub, author, attested_seq, attested_id, presented_seq, presented_id,
                    peer, first_seen_ms, last_seen_ms, times
             FROM checkpoint_breaches ORDER BY first_seen_ms, rowid",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(BreachRecord {
                kind: r.get(0)?,
                hub: hex::encode(r.get::<_, Vec<u8>>(1)?),
                author: hex::encode(r.get::<_, Vec<u8>>(2)?),
                attested_seq: r.get::<_, i64>(3)? as u64,
                attested_id: hex::encode(r.get::<_, Vec<u8>>(4)?),
                presented_seq: r.get::<_, Option<i64>>(5)?.map(|s| s as u64),
                presented_id: r.get::<_, Option<Vec<u8>>>(6)?.map(hex::encode),
                peer: r.get(7)?,
                first_seen_ms: r.get::<_, i64>(8)? as u64,
                last_seen_ms: r.get::<_, i64>(9)? as u64,
                times: r.get::<_, i64>(10)? as u64,
            });
        }
        Ok(out)
    }
}
