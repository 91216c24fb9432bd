//! Reading the log: heads and an author's entries after a seq; keeping
//! entries that failed verification in quarantine.

use sentinel_schema::{AuthorId, EntryId, Head, Heads, SignedEntry};
use sentinel_sync::Rejection;

use super::evidence;
use super::{id32, int, PgStore, StoreError};

impl PgStore {
    /// `author → (seq, id)` of every chain held.
    pub async fn heads(&self) -> Result<Heads, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT author, seq, id FROM heads", &[])
            .await?;
        let mut heads = Heads::new();
        for r in rows {
            let author = AuthorId(id32(r.get(0), "heads.author")?);
            heads.set(author, head_from(r.get(1), r.get(2))?);
        }
        Ok(heads)
    }

    /// Every entry about `event` (changes and media), in log order.
    pub async fn event_entries(
        &self,
        event: &sentinel_schema::EventId,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT pos, bytes FROM entries WHERE event = $1 ORDER BY pos",
                &[&event.0.as_slice()],
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                let pos: i64 = r.get(0);
                SignedEntry::from_bytes(r.get::<_, Vec<u8>>(1))
                    .map_err(|source| StoreError::CorruptEntry { pos, source })
            })
            .collect()
    }

    /// The author's newest entry held, if any.
    pub async fn head(&self, author: &AuthorId) -> Result<Option<Head>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT seq, id FROM heads WHERE author = $1",
                &[&author.as_bytes().as_slice()],
            )
            .await?;
        row.map(|r| head_from(r.get(0), r.get(1))).transpose()
    }

    /// The author's entries with seq > `after`, in seq order, at most
    /// `max_entries` and at most `max_bytes` of signed bytes — except that
    /// the first entry comes whatever its size, so a caller always makes
    /// progress.
    pub async fn entries_after(
        &self,
        author: &AuthorId,
        after: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        // Past i64::MAX there is nothing to return (seq is a bigint).
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(max_entries).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT pos, bytes FROM entries WHERE author = $1 AND seq > $2
                 ORDER BY seq LIMIT $3",
                &[&author.as_bytes().as_slice(), &after, &limit],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        let mut n_bytes = 0usize;
        for r in rows {
            let pos: i64 = r.get(0);
            let bytes: Vec<u8> = r.get(1);
            if !out.is_empty() && n_bytes.saturating_add(bytes.len()) > max_bytes {
                break;
            }
            n_bytes += bytes.len();
            out.push(
                SignedEntry::from_bytes(bytes)
                    .map_err(|source| StoreError::CorruptEntry { pos, source })?,
            );
        }
        Ok(out)
    }

    /// Keeps entries that failed verification (signature, certificate,
    /// role, revocation) with the reason, in one transaction; an entry
    /// already in quarantine keeps its first reason.
    pub async fn quarantine(&self, rejected: &[Rejection], now_ms: u64) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        insert_quarantine(&tx, rejected, now_ms, self.evidence_quota()).await?;
        tx.commit().await?;
        Ok(())
    }
}

fn head_from(seq: i64, id: &[u8]) -> Result<Head, StoreError> {
    Ok(Head {
        seq: u64::try_from(seq).map_err(|_| StoreError::CorruptColumn {
            column: "heads.seq",
        })?,
        id: EntryId(id32(id, "heads.id")?),
    })
}

/// Inserts entries into quarantine in one statement, each reason as its
/// stable code; ones already there (same id) keep their first reason.
/// Past the evidence `quota`, entries are counted in the summary instead,
/// without their bytes ([`super::evidence`]).
pub(super) async fn insert_quarantine(
    tx: &tokio_postgres::Transaction<'_>,
    rows: &[Rejection],
    now_ms: u64,
    quota: u64,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let all: Vec<EntryId> = rows.iter().map(|r| r.entry.id()).collect();
    let all_ids: Vec<&[u8]> = all.iter().map(|id| id.0.as_slice()).collect();
    let mut seen = evidence::held(tx, evidence::Table::Quarantine, &all_ids).await?;
    let new: Vec<&Rejection> = rows.iter().filter(|r| seen.insert(r.entry.id())).collect();
    let candidates: Vec<evidence::Candidate<'_>> = new
        .iter()
        .map(|r| evidence::Candidate {
            entry: &r.entry,
            code: r.reason.code(),
            reason: r.detail.clone(),
        })
        .collect();
    let keep = evidence::admit(tx, quota, &candidates, now_ms).await?;
    let rows: Vec<&Rejection> = new
        .into_iter()
        .zip(keep)
        .filter_map(|(r, keep)| keep.then_some(r))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let entry_ids: Vec<EntryId> = rows.iter().map(|r| r.entry.id()).collect();
    let ids: Vec<&[u8]> = entry_ids.iter().map(|id| id.0.as_slice()).collect();
    let mut authors: Vec<&[u8]> = Vec::with_capacity(rows.len());
    let mut seqs: Vec<i64> = Vec::with_capacity(rows.len());
    let mut bytes: Vec<&[u8]> = Vec::with_capacity(rows.len());
    let mut codes: Vec<&str> = Vec::with_capacity(rows.len());
    let mut reasons: Vec<&str> = Vec::with_capacity(rows.len());
    for r in rows {
        authors.push(&r.entry.entry().author.0);
        seqs.push(int(r.entry.seq(), "quarantine.seq")?);
        bytes.push(r.entry.as_bytes());
        codes.push(r.reason.code());
        reasons.push(&r.detail);
    }
    tx.execute(
        "INSERT INTO quarantine (id, author, seq, bytes, reason_code, reason, received_ms)
         SELECT q.*, $7 FROM unnest($1::bytea[], $2::bytea[], $3::int8[], $4::bytea[],
             $5::text[], $6::text[]) AS q
         ON CONFLICT (id) DO NOTHING",
        &[
            &ids,
            &authors,
            &seqs,
            &bytes,
            &codes,
            &reasons,
            &int(now_ms, "quarantine.received_ms")?,
        ],
    )
    .await?;
    Ok(())
}
