//! A disk quota for evidence (migration V9), as the node keeps one
//! (`node/src/store/evidence.rs`): quarantined entries and forks keep
//! their bytes only while the total stays under the quota; beyond it, a
//! hostile peer's flood is kept as a summary without the bytes.
//!
//! `evidence_usage` (one row) holds the bytes of entries `quarantine` and
//! `forks` keep, and how many summary rows exist; the quota is the
//! store's ([`PgStore::set_evidence_quota`], from the hub's configuration
//! `evidence_quota_mb`; [`DEFAULT_QUOTA`] unless set). An entry that would
//! take the total past it is counted in `evidence_summary` instead: one
//! row per author and reason (`fork` for forks), with how many entries
//! were dropped, the last one's seq, id and reason, and when. Past
//! [`MAX_SUMMARY_ROWS`], new authors are counted together under the
//! all-zero key. Every refusal and fork is still reported to the session;
//! only the bytes are not kept.
//!
//! The usage row is locked (`FOR UPDATE`) by a transaction that adds or
//! releases evidence, so concurrent sessions count exactly.
//!
//! Never does: decide what is evidence (`super::apply` and `super::log`
//! do).

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use sentinel_schema::{AuthorId, EntryId, SignedEntry};
use tokio_postgres::Transaction;

use super::{id32, int, uint, PgStore, StoreError};

/// The quota of a hub that sets none: 256 MiB.
pub const DEFAULT_QUOTA: u64 = 256 << 20;
/// Most summary rows; past it, new authors are counted together under
/// [`MANY_AUTHORS`] (about 200 bytes a row: 20 MB at most).
pub const MAX_SUMMARY_ROWS: i64 = 100_000;
/// The author under which summaries past [`MAX_SUMMARY_ROWS`] are kept.
pub const MANY_AUTHORS: AuthorId = AuthorId([0; 32]);
/// The reason code of forks in the summary.
pub const FORK: &str = "fork";

/// One piece of evidence to keep: the entry, its reason code and reason.
pub(super) struct Candidate<'a> {
    pub entry: &'a SignedEntry,
    pub code: &'a str,
    pub reason: String,
}

/// Of `candidates` (evidence not held yet, in the order found), which fit
/// under `quota` — counted as kept: the caller inserts exactly those, in
/// the same transaction — the rest counted in the summary. Answers a flag
/// per candidate: keep its bytes.
pub(super) async fn admit(
    tx: &Transaction<'_>,
    quota: u64,
    candidates: &[Candidate<'_>],
    now_ms: u64,
) -> Result<Vec<bool>, StoreError> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let row = tx
        .query_one(
            "SELECT bytes, summaries FROM evidence_usage WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await?;
    let mut bytes = uint(row.get(0), "evidence_usage.bytes")?;
    let mut summaries: i64 = row.get(1);
    let mut keep = Vec::with_capacity(candidates.len());
    for c in candidates {
        let len = c.entry.as_bytes().len() as u64;
        if bytes.saturating_add(len) <= quota {
            bytes += len;
            keep.push(true);
        } else {
            summarize(tx, c, &mut summaries, now_ms).await?;
            keep.push(false);
        }
    }
    tx.execute(
        "UPDATE evidence_usage SET bytes = $1, summaries = $2 WHERE id = 1",
        &[&int(bytes, "evidence_usage.bytes")?, &summaries],
    )
    .await?;
    Ok(keep)
}

/// Counts one candidate in the summary.
async fn summarize(
    tx: &Transaction<'_>,
    c: &Candidate<'_>,
    summaries: &mut i64,
    now_ms: u64,
) -> Result<(), StoreError> {
    let exists = |author: AuthorId| async move {
        tx.query_one(
            "SELECT EXISTS (SELECT 1 FROM evidence_summary
                 WHERE author = $1 AND reason_code = $2)",
            &[&author.0.as_slice(), &c.code],
        )
        .await
        .map(|r| r.get::<_, bool>(0))
    };
    let mut author = c.entry.author();
    let mut held = exists(author).await?;
    if !held && *summaries >= MAX_SUMMARY_ROWS {
        author = MANY_AUTHORS;
        held = exists(author).await?;
    }
    tx.execute(
        "INSERT INTO evidence_summary
             (author, reason_code, count, seq, id, reason, first_ms, last_ms)
         VALUES ($1, $2, 1, $3, $4, $5, $6, $6)
         ON CONFLICT (author, reason_code) DO UPDATE SET
             count = evidence_summary.count + 1, seq = excluded.seq, id = excluded.id,
             reason = excluded.reason, last_ms = excluded.last_ms",
        &[
            &author.0.as_slice(),
            &c.code,
            &int(c.entry.seq(), "evidence_summary.seq")?,
            &c.entry.id().0.as_slice(),
            &c.reason,
            &int(now_ms, "evidence_summary.last_ms")?,
        ],
    )
    .await?;
    if !held {
        *summaries += 1;
    }
    Ok(())
}

/// Counts `len` bytes of evidence as no longer kept (gap-quarantined
/// entries released into the log).
pub(super) async fn release(tx: &Transaction<'_>, len: i64) -> Result<(), StoreError> {
    if len > 0 {
        tx.execute(
            "UPDATE evidence_usage SET bytes = greatest(0, bytes - $1) WHERE id = 1",
            &[&len],
        )
        .await?;
    }
    Ok(())
}

/// The ids among `ids` that `table` (quarantine or forks) holds already.
pub(super) async fn held(
    tx: &Transaction<'_>,
    table: Table,
    ids: &[&[u8]],
) -> Result<HashSet<EntryId>, StoreError> {
    let sql = match table {
        Table::Quarantine => "SELECT id FROM quarantine WHERE id = ANY($1)",
        Table::Forks => "SELECT id FROM forks WHERE id = ANY($1)",
    };
    tx.query(sql, &[&ids])
        .await?
        .iter()
        .map(|r| Ok(EntryId(id32(r.get(0), "evidence.id")?)))
        .collect()
}

/// Where evidence is kept.
#[derive(Debug, Clone, Copy)]
pub(super) enum Table {
    Quarantine,
    Forks,
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

impl PgStore {
    /// Sets the most bytes of entries quarantine and forks keep, for this
    /// store and its clones. Lowering it drops nothing already kept.
    pub fn set_evidence_quota(&self, bytes: u64) {
        self.evidence_quota.store(bytes, Ordering::Relaxed);
    }

    /// The quota in force.
    pub fn evidence_quota(&self) -> u64 {
        self.evidence_quota.load(Ordering::Relaxed)
    }

    /// Bytes of entries kept in quarantine and forks, and summary rows.
    pub async fn evidence_usage(&self) -> Result<(u64, u64), StoreError> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT bytes, summaries FROM evidence_usage WHERE id = 1",
                &[],
            )
            .await?;
        Ok((
            uint(row.get(0), "evidence_usage.bytes")?,
            uint(row.get(1), "evidence_usage.summaries")?,
        ))
    }

    /// Evidence kept as summaries, by author and reason.
    pub async fn evidence_summary(&self) -> Result<Vec<EvidenceSummary>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT author, reason_code, count, seq, id, reason, first_ms, last_ms
                 FROM evidence_summary ORDER BY author, reason_code",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(EvidenceSummary {
                    author: AuthorId(id32(r.get(0), "evidence_summary.author")?),
                    reason_code: r.get(1),
                    count: uint(r.get(2), "evidence_summary.count")?,
                    seq: uint(r.get(3), "evidence_summary.seq")?,
                    id: EntryId(id32(r.get(4), "evidence_summary.id")?),
                    reason: r.get(5),
                    first_ms: uint(r.get(6), "evidence_summary.first_ms")?,
                    last_ms: uint(r.get(7), "evidence_summary.last_ms")?,
                })
            })
            .collect()
    }
}
