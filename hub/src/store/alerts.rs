//! What `GET /api/v1/alerts` reads: the evidence an operator must act on,
//! from the tables the log's checks fill (`super::apply`, `super::log`,
//! `super::evidence`) — forks, quarantine counted by author and reason,
//! and entries quarantined for contradicting a hub checkpoint — each with
//! the certificate the hub holds for its author (the API names it).
//!
//! Never does: write, or decide what is evidence (the checks that fill
//! these tables do).

use sentinel_schema::{AuthorId, EntryId};

use super::evidence::FORK;
use super::{id32, int, uint, PgStore, StoreError};

/// The reason code of entries that contradict a hub checkpoint.
pub const CONTRADICTS_CHECKPOINT: &str = "contradicts_checkpoint";

/// A fork of an author's chain: kept with its bytes (`held` is the entry
/// the log holds at that seq), or, past the evidence quota, counted in the
/// summary (`held` unknown, `count` entries, the last one's seq and id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkAlert {
    pub author: AuthorId,
    /// The author's certificate, if the hub holds one.
    pub certificate_der: Option<Vec<u8>>,
    pub seq: u64,
    /// The entry the log holds at `seq`; `None` for a summary.
    pub held: Option<EntryId>,
    /// The other entry at `seq` (the last one, for a summary).
    pub other: EntryId,
    /// When the hub found it (the last one, for a summary), Unix ms.
    pub detected_ms: u64,
    /// Forks this item stands for: 1, or the summary's count.
    pub count: u64,
    /// Whether the other entry's bytes are kept as evidence.
    pub kept: bool,
}

/// Quarantined entries of one author for one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineAlert {
    pub author: AuthorId,
    pub certificate_der: Option<Vec<u8>>,
    pub reason_code: String,
    /// Entries kept in quarantine with their bytes.
    pub kept: u64,
    /// Entries past the evidence quota, counted without their bytes.
    pub summarized: u64,
    /// The newest one's arrival, Unix ms.
    pub newest_ms: u64,
    /// The newest one's reason in words.
    pub reason: String,
}

/// An entry quarantined because a hub checkpoint attests another one at
/// its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreachAlert {
    pub author: AuthorId,
    pub certificate_der: Option<Vec<u8>>,
    pub seq: u64,
    pub id: EntryId,
    pub reason: String,
    pub received_ms: u64,
}

/// Everything [`PgStore::alerts`] answers, each list newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alerts {
    pub forks: Vec<ForkAlert>,
    pub quarantine: Vec<QuarantineAlert>,
    pub breaches: Vec<BreachAlert>,
}

impl PgStore {
    /// At most `limit` of each: forks (kept ones and the summary's),
    /// quarantine per author and reason (kept and summarized together),
    /// checkpoint breaches; each newest first (then author), read in one
    /// snapshot.
    pub async fn alerts(&self, limit: usize) -> Result<Alerts, StoreError> {
        let limit = int(limit as u64, "limit")?;
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let forks = tx
            .query(
                "SELECT a.author, c.der, a.seq, a.held_id, a.id, a.detected_ms, a.n, a.kept
                 FROM (SELECT author, seq, held_id, id, detected_ms, 1::int8 AS n, true AS kept
                         FROM forks
                       UNION ALL
                       SELECT author, seq, NULL, id, last_ms, count, false
                         FROM evidence_summary WHERE reason_code = $2) a
                 LEFT JOIN certificates c ON c.author = a.author
                 ORDER BY a.detected_ms DESC, a.author, a.seq, a.id
                 LIMIT $1",
                &[&limit, &FORK],
            )
            .await?;
        let quarantine = tx
            .query(
                "SELECT q.author, c.der, q.reason_code, q.kept, q.summarized, q.newest_ms,
                     q.reason
                 FROM (SELECT author, reason_code, sum(kept)::int8 AS kept,
                           sum(summarized)::int8 AS summarized, max(newest_ms) AS newest_ms,
                           (array_agg(reason ORDER BY newest_ms DESC))[1] AS reason
                       FROM (SELECT author, reason_code, count(*) AS kept,
                                 0::int8 AS summarized, max(received_ms) AS newest_ms,
                                 (array_agg(reason ORDER BY received_ms DESC, id))[1]
                                     AS reason
                             FROM quarantine GROUP BY author, reason_code
                             UNION ALL
                             SELECT author, reason_code, 0, count, last_ms, reason
                             FROM evidence_summary WHERE reason_code <> $2) u
                       GROUP BY author, reason_code) q
                 LEFT JOIN certificates c ON c.author = q.author
                 ORDER BY q.newest_ms DESC, q.author, q.reason_code
                 LIMIT $1",
                &[&limit, &FORK],
            )
            .await?;
        let breaches = tx
            .query(
                "SELECT q.author, c.der, q.seq, q.id, q.reason, q.received_ms
                 FROM quarantine q LEFT JOIN certificates c ON c.author = q.author
                 WHERE q.reason_code = $2
                 ORDER BY q.received_ms DESC, q.author, q.seq, q.id
                 LIMIT $1",
                &[&limit, &CONTRADICTS_CHECKPOINT],
            )
            .await?;
        tx.commit().await?;
        let author = |r: &tokio_postgres::Row| -> Result<AuthorId, StoreError> {
            Ok(AuthorId(id32(r.get(0), "alerts.author")?))
        };
        Ok(Alerts {
            forks: forks
                .iter()
                .map(|r| {
                    Ok(ForkAlert {
                        author: author(r)?,
                        certificate_der: r.get(1),
                        seq: uint(r.get(2), "forks.seq")?,
                        held: r
                            .get::<_, Option<&[u8]>>(3)
                            .map(|b| id32(b, "forks.held_id").map(EntryId))
                            .transpose()?,
                        other: EntryId(id32(r.get(4), "forks.id")?),
                        detected_ms: uint(r.get(5), "forks.detected_ms")?,
                        count: uint(r.get(6), "evidence_summary.count")?,
                        kept: r.get(7),
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            quarantine: quarantine
                .iter()
                .map(|r| {
                    Ok(QuarantineAlert {
                        author: author(r)?,
                        certificate_der: r.get(1),
                        reason_code: r.get(2),
                        kept: uint(r.get(3), "quarantine.count")?,
                        summarized: uint(r.get(4), "evidence_summary.count")?,
                        newest_ms: uint(r.get(5), "quarantine.received_ms")?,
                        reason: r.get(6),
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            breaches: breaches
                .iter()
                .map(|r| {
                    Ok(BreachAlert {
                        author: author(r)?,
                        certificate_der: r.get(1),
                        seq: uint(r.get(2), "quarantine.seq")?,
                        id: EntryId(id32(r.get(3), "quarantine.id")?),
                        reason: r.get(4),
                        received_ms: uint(r.get(5), "quarantine.received_ms")?,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
        })
    }
}
