//! A disk quota for evidence (migration 9): quarantined entries and forks
//! keep their bytes only while the total stays under the quota; beyond
//! it, a hostile peer's flood is kept as a summary without the bytes.
//!
//! `evidence_usage` (one row) holds the bytes of entries `quarantine` and
//! `forks` keep, the quota (`sentinel-node --evidence-quota-mb`, kept in
//! the store; [`DEFAULT_QUOTA`] until set) and how many summary rows
//! exist. An entry that would take the total past the quota is counted in
//! `evidence_summary` instead: one row per author and reason (`fork` for
//! forks), with how many entries were dropped, the last one's seq, id and
//! reason, and when. Summary rows are themselves bounded: past
//! [`MAX_SUMMARY_ROWS`], new authors are counted under the all-zero key
//! (authors of failed signatures are whatever the sender claimed, so
//! there may be any number of them). Nothing is ever lost silently: an
//! author is still flagged (its fork still counts), only the bytes are
//! not kept.
//!
//! Never does: decide what is evidence ([`super::log`] does), or delete a
//! row but a gap-quarantined entry released into the log.

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use sentinel_schema::{AuthorId, EntryId, SignedEntry};

use super::{blob, Store, StoreError};

/// The quota of a store that never set one: 256 MiB.
pub const DEFAULT_QUOTA: u64 = 256 << 20;
/// Most summary rows; past it, new authors are counted together under the
/// all-zero key (about 200 bytes a row: 20 MB at most).
pub const MAX_SUMMARY_ROWS: i64 = 100_000;
/// The author under which summaries past [`MAX_SUMMARY_ROWS`] are kept.
pub const MANY_AUTHORS: AuthorId = AuthorId([0; 32]);
/// The reason code of forks in the summary.
pub const FORK: &str = "fork";

/// Creates the tables (migration 9), counting what the store holds now.
pub(crate) fn migrate(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "-- Evidence beyond the quota: per author and reason, how many
        -- entries were not kept, and the last one's seq, id and reason.
        CREATE TABLE evidence_summary (
            author      BLOB    NOT NULL,
            reason_code TEXT    NOT NULL,
            count       INTEGER NOT NULL,
            seq         INTEGER NOT NULL,
            id          BLOB    NOT NULL,
            reason      TEXT    NOT NULL,
            first_ms    INTEGER NOT NULL,
            last_ms     INTEGER NOT NULL,
            PRIMARY KEY (author, reason_code)
        ) STRICT, WITHOUT ROWID;

        -- The bytes of entries quarantine and forks keep, and the most they
        -- may keep.
        CREATE TABLE evidence_usage (
            id        INTEGER PRIMARY KEY CHECK (id = 1),
            bytes     INTEGER NOT NULL,
            quota     INTEGER NOT NULL,
            summaries INTEGER NOT NULL
        ) STRICT;",
    )?;
    tx.execute(
        "INSERT INTO evidence_usage (id, bytes, quota, summaries) VALUES (1,
             (SELECT coalesce(sum(length(bytes)), 0) FROM quarantine)
                 + (SELECT coalesce(sum(length(bytes)), 0) FROM forks),
             ?1, 0)",
        [quota_int(DEFAULT_QUOTA)],
    )?;
    Ok(())
}

fn quota_int(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// Whether `e`'s bytes fit under the quota; if they do, they are counted
/// as kept (the caller then keeps them, in the same transaction).
pub(crate) fn admit(conn: &Connection, e: &SignedEntry) -> Result<bool, StoreError> {
    let len = quota_int(e.as_bytes().len() as u64);
    let n = conn
        .prepare_cached(
            "UPDATE evidence_usage SET bytes = bytes + ?1 WHERE id = 1 AND bytes + ?1 <= quota",
        )?
        .execute([len])?;
    Ok(n == 1)
}

/// Counts `len` bytes of evidence as no longer kept (a gap-quarantined
/// entry released into the log).
pub(crate) fn release(conn: &Connection, len: usize) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE evidence_usage SET bytes = max(0, bytes - ?1) WHERE id = 1")?
        .execute([quota_int(len as u64)])?;
    Ok(())
}

/// Counts `e` in the summary under `code` (with `reason`), without its
/// bytes.
pub(crate) fn summarize(
    conn: &Connection,
    e: &SignedEntry,
    code: &str,
    reason: &str,
    now_ms: u64,
) -> Result<(), StoreError> {
    let exists = |author: &AuthorId| -> Result<bool, StoreError> {
        Ok(conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM evidence_summary
                     WHERE author = ?1 AND reason_code = ?2)",
            )?
            .query_row(params![author.as_bytes(), code], |r| r.get(0))?)
    };
    let mut author = e.author();
    let mut held = exists(&author)?;
    if !held {
        let rows: i64 = conn
            .prepare_cached("SELECT summaries FROM evidence_usage WHERE id = 1")?
            .query_row([], |r| r.get(0))?;
        if rows >= MAX_SUMMARY_ROWS {
            author = MANY_AUTHORS;
            held = exists(&author)?;
        }
    }
    conn.prepare_cached(
        "INSERT INTO evidence_summary
             (author, reason_code, count, seq, id, reason, first_ms, last_ms)
         VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (author, reason_code) DO UPDATE SET count = count + 1,
             seq = excluded.seq, id = excluded.id, reason = excluded.reason,
             last_ms = excluded.last_ms",
    )?
    .execute(params![
        author.as_bytes(),
        code,
        quota_int(e.seq()),
        e.id().as_bytes(),
        reason,
        quota_int(now_ms)
    ])?;
    if !held {
        conn.prepare_cached("UPDATE evidence_usage SET summaries = summaries + 1 WHERE id = 1")?
            .execute([])?;
    }
    Ok(())
}

/// Evidence kept as a summary: entries of one author not kept for one
/// reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceSummary {
    /// The all-zero key ([`MANY_AUTHORS`]) for authors past the row limit.
    pub author: AuthorId,
    /// The quarantine reason code, or [`FORK`].
    pub reason_code: String,
    pub count: u64,
    /// The last entry not kept: its seq, id and reason.
    pub seq: u64,
    pub id: EntryId,
    pub reason: String,
    pub first_ms: u64,
    pub last_ms: u64,
}

/// What evidence takes on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct EvidenceUsage {
    /// Bytes of entries kept in quarantine and forks.
    pub bytes: u64,
    pub quota: u64,
    /// Summary rows.
    pub summaries: u64,
}

fn uint(v: i64, column: &'static str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::CorruptColumn { column })
}

impl Store {
    /// Sets the most bytes of entries quarantine and forks keep (kept in
    /// the store). Lowering it drops nothing already kept; evidence beyond
    /// it is summarized from then on.
    pub fn set_evidence_quota(&self, bytes: u64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE evidence_usage SET quota = ?1 WHERE id = 1",
            [quota_int(bytes)],
        )?;
        Ok(())
    }

    /// What evidence takes on disk, and the quota.
    pub fn evidence_usage(&self) -> Result<EvidenceUsage, StoreError> {
        let row: Option<(i64, i64, i64)> = self
            .conn()
            .query_row(
                "SELECT bytes, quota, summaries FROM evidence_usage WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let (bytes, quota, summaries) = row.ok_or(StoreError::CorruptColumn {
            column: "evidence_usage",
        })?;
        Ok(EvidenceUsage {
            bytes: uint(bytes, "evidence_usage.bytes")?,
            quota: uint(quota, "evidence_usage.quota")?,
            summaries: uint(summaries, "evidence_usage.summaries")?,
        })
    }

    /// Evidence kept as summaries, by author and reason.
    pub fn evidence_summary(&self) -> Result<Vec<EvidenceSummary>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT author, reason_code, count, seq, id, reason, first_ms, last_ms
             FROM evidence_summary ORDER BY author, reason_code",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(EvidenceSummary {
                author: AuthorId(blob(r, 0, "evidence_summary.author")?),
                reason_code: r.get(1)?,
                count: uint(r.get(2)?, "evidence_summary.count")?,
                seq: uint(r.get(3)?, "evidence_summary.seq")?,
                id: EntryId(blob(r, 4, "evidence_summary.id")?),
                reason: r.get(5)?,
                first_ms: uint(r.get(6)?, "evidence_summary.first_ms")?,
                last_ms: uint(r.get(7)?, "evidence_summary.last_ms")?,
            });
        }
        Ok(out)
    }
}
