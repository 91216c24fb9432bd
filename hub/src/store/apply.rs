//! Applying verified entries: chain checks against the heads, forks kept as
//! evidence, quarantine with the reason, gap-quarantined entries released
//! when the gap closes — the node store's semantics, planned in memory and
//! written in one transaction through [`super::ingest`].

use std::collections::{BTreeMap, HashMap};

use sentinel_schema::{check_link, AuthorId, EntryId, Head, Link, SignedEntry, VerifiedEntry};
use sentinel_sync::{ApplyReport, RejectReason, Rejection};
use tokio_postgres::Transaction;

use super::evidence;
use super::log::insert_quarantine;
use super::{id32, ingest, int, PgStore, StoreError};

impl PgStore {
    /// Checks chain continuity against the heads, quarantines what fails,
    /// records forks, and commits the rest in one transaction; when this
    /// returns `Ok` the batch is committed, on `Err` nothing of it was
    /// kept. Entries may come in any order; they are applied in `(author,
    /// seq)` order. Entries quarantined earlier for a gap are released once
    /// the gap closes.
    ///
    /// Concurrent calls touching the same author are serialised by an
    /// advisory lock per author, taken in one global order (no deadlocks),
    /// so two sync sessions relaying the same chain never race on a head.
    pub async fn apply(
        &self,
        mut entries: Vec<VerifiedEntry>,
        now_ms: u64,
    ) -> Result<ApplyReport, StoreError> {
        entries.sort_by_key(|e| (e.author(), e.seq()));
        let mut authors: Vec<AuthorId> = entries.iter().map(|e| e.author()).collect();
        authors.dedup();
        // A revocation among them may change what the log's entries count
        // for: judged again before the commit ([`super::revoked`]).
        let judge = self
            .judge()
            .filter(|_| super::revoked::any_revocation(entries.iter().map(|e| &**e)));

        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_authors(&tx, &authors).await?;
        let mut plan = Plan::new(load_tips(&tx, &authors).await?);
        for e in entries {
            plan.check(e.into_signed());
        }
        plan.resolve_held(&tx).await?;
        plan.release_gaps(&tx).await?;
        let report = plan.write(&tx, now_ms, self.evidence_quota()).await?;
        if let Some(judge) = judge {
            super::revoked::enforce(&tx, judge).await?;
        }
        tx.commit().await?;
        Ok(report)
    }
}

/// What a batch will do to the log, decided before anything is written.
struct Plan {
    /// The newest entry held per author of the batch, as the plan advances.
    tips: HashMap<AuthorId, Option<Head>>,
    /// Entries that extend their chain, in the order they are appended.
    append: Vec<SignedEntry>,
    appended: HashMap<(AuthorId, u64), EntryId>,
    /// At a seq the log held before this batch: duplicate or fork, decided
    /// against the log by [`Plan::resolve_held`].
    held: Vec<SignedEntry>,
    /// `(entry, id of the entry held at its seq)`.
    forks: Vec<(SignedEntry, EntryId)>,
    /// Entries to quarantine, in the order found.
    quarantined: Vec<Rejection>,
    /// Gap-quarantined entries taken out of the quarantine table.
    released: Vec<EntryId>,
    report: ApplyReport,
}

impl Plan {
    fn new(tips: HashMap<AuthorId, Option<Head>>) -> Plan {
        Plan {
            tips,
            append: Vec::new(),
            appended: HashMap::new(),
            held: Vec::new(),
            forks: Vec::new(),
            quarantined: Vec::new(),
            released: Vec::new(),
            report: ApplyReport::default(),
        }
    }

    fn tip(&self, author: &AuthorId) -> Option<Head> {
        self.tips.get(author).copied().flatten()
    }

    fn check(&mut self, e: SignedEntry) {
        let author = e.author();
        match check_link(self.tip(&author), &e) {
            Ok(Link::Next) => self.push_append(e),
            Ok(Link::AlreadyHeld) => match self.appended.get(&(author, e.seq())) {
                Some(id) if *id == e.id() => self.report.duplicates += 1,
                Some(id) => {
                    let id = *id;
                    self.push_fork(e, id);
                }
                None => self.held.push(e),
            },
            Err(fault) => self.quarantined.push(Rejection::chain(e, &fault)),
        }
    }

    fn push_append(&mut self, e: SignedEntry) {
        let author = e.author();
        let head = Head {
            seq: e.seq(),
            id: e.id(),
        };
        self.tips.insert(author, Some(head));
        self.appended.insert((author, head.seq), head.id);
        self.report.applied += 1;
        let hlc = e.entry().hlc;
        self.report.max_hlc = Some(self.report.max_hlc.map_or(hlc, |m| m.max(hlc)));
        self.append.push(e);
    }

    fn push_fork(&mut self, e: SignedEntry, held: EntryId) {
        self.report.forks.push((e.author(), e.seq(), e.id()));
        self.forks.push((e, held));
    }

    /// Tells duplicates from forks for entries at seqs held before the
    /// batch, with one query.
    async fn resolve_held(&mut self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        if self.held.is_empty() {
            return Ok(());
        }
        let authors: Vec<&[u8]> = self
            .held
            .iter()
            .map(|e| e.entry().author.0.as_slice())
            .collect();
        let seqs: Vec<i64> = self
            .held
            .iter()
            .map(|e| int(e.seq(), "entries.seq"))
            .collect::<Result<_, _>>()?;
        let rows = tx
            .query(
                "SELECT e.author, e.seq, e.id FROM entries e
                 JOIN unnest($1::bytea[], $2::int8[]) AS h(author, seq)
                   ON e.author = h.author AND e.seq = h.seq",
                &[&authors, &seqs],
            )
            .await?;
        let mut ids: HashMap<(AuthorId, i64), EntryId> = HashMap::with_capacity(rows.len());
        for r in rows {
            let author = AuthorId(id32(r.get(0), "entries.author")?);
            ids.insert((author, r.get(1)), EntryId(id32(r.get(2), "entries.id")?));
        }
        for e in std::mem::take(&mut self.held) {
            // `int` succeeded above for every held seq.
            let key = (e.author(), e.seq() as i64);
            match ids.get(&key) {
                Some(id) if *id == e.id() => self.report.duplicates += 1,
                Some(id) => {
                    let id = *id;
                    self.push_fork(e, id);
                }
                // Below the head but not held: the log lost an entry. An
                // audit reports that; here the entry waits in quarantine.
                None => self.quarantined.push(Rejection {
                    entry: e,
                    reason: RejectReason::MissingBelowHead,
                    detail: "seq below head but not held".to_owned(),
                }),
            }
        }
        Ok(())
    }

    /// Releases entries quarantined for a gap — earlier, or in this very
    /// batch — once their predecessor is held, repeatedly, per author.
    async fn release_gaps(&mut self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let mut waiting: BTreeMap<(AuthorId, u64), Vec<Waiting>> = BTreeMap::new();
        for r in &self.quarantined {
            if r.reason == RejectReason::Gap {
                add_waiting(&mut waiting, r.entry.clone(), false);
            }
        }
        let mut authors: Vec<&[u8]> = Vec::new();
        let mut afters: Vec<i64> = Vec::new();
        for (author, tip) in &self.tips {
            if let Some(tip) = tip {
                authors.push(author.0.as_slice());
                afters.push(int(tip.seq, "quarantine.seq")?);
            }
        }
        if !authors.is_empty() {
            let rows = tx
                .query(
                    "SELECT q.bytes FROM quarantine q
                     JOIN unnest($1::bytea[], $2::int8[]) AS c(author, after)
                       ON q.author = c.author AND q.seq > c.after
                     WHERE q.reason_code = $3",
                    &[&authors, &afters, &RejectReason::Gap.code()],
                )
                .await?;
            for r in rows {
                // Quarantined bytes are re-checked in full: they sat in a
                // table. Ones that no longer verify stay where they are.
                let Ok(signed) = SignedEntry::from_bytes(r.get(0)) else {
                    continue;
                };
                let Ok(verified) = signed.into_verified() else {
                    continue;
                };
                add_waiting(&mut waiting, verified.into_signed(), true);
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        let mut with_tip: Vec<AuthorId> = self
            .tips
            .iter()
            .filter_map(|(a, t)| t.map(|_| *a))
            .collect();
        with_tip.sort();
        for author in with_tip {
            while let Some(tip) = self.tip(&author) {
                let Some(candidates) = waiting.get_mut(&(author, tip.seq + 1)) else {
                    break;
                };
                let Some(i) = candidates
                    .iter()
                    .position(|w| check_link(Some(tip), &w.entry) == Ok(Link::Next))
                else {
                    break;
                };
                let w = candidates.swap_remove(i);
                let id = w.entry.id();
                if w.in_table {
                    self.released.push(id);
                }
                self.quarantined.retain(|r| r.entry.id() != id);
                self.push_append(w.entry);
            }
        }
        Ok(())
    }

    async fn write(
        self,
        tx: &Transaction<'_>,
        now_ms: u64,
        quota: u64,
    ) -> Result<ApplyReport, StoreError> {
        let Plan {
            append,
            forks,
            quarantined,
            released,
            mut report,
            ..
        } = self;
        ingest::append(tx, &append, now_ms).await?;
        insert_forks(tx, &forks, now_ms, quota).await?;
        insert_quarantine(tx, &quarantined, now_ms, quota).await?;
        if !released.is_empty() {
            let ids: Vec<&[u8]> = released.iter().map(|id| id.0.as_slice()).collect();
            let freed: i64 = tx
                .query_one(
                    "WITH gone AS (DELETE FROM quarantine WHERE id = ANY($1) RETURNING bytes)
                     SELECT coalesce(sum(length(bytes)), 0)::int8 FROM gone",
                    &[&ids],
                )
                .await?
                .get(0);
            evidence::release(tx, freed).await?;
        }
        report.quarantined = quarantined.iter().map(Rejection::quarantined).collect();
        Ok(report)
    }
}

/// An entry waiting for its gap to close.
struct Waiting {
    entry: SignedEntry,
    /// Whether a row of it sits in the quarantine table (to delete).
    in_table: bool,
}

fn add_waiting(
    waiting: &mut BTreeMap<(AuthorId, u64), Vec<Waiting>>,
    entry: SignedEntry,
    in_table: bool,
) {
    let slot = waiting.entry((entry.author(), entry.seq())).or_default();
    match slot.iter_mut().find(|w| w.entry.id() == entry.id()) {
        Some(w) => w.in_table |= in_table,
        None => slot.push(Waiting { entry, in_table }),
    }
}

/// Serialises batches that touch the same authors: an advisory lock per
/// author (keyed by the first 8 bytes of its key), taken in ascending key
/// order by every caller, held until the transaction ends.
async fn lock_authors(tx: &Transaction<'_>, authors: &[AuthorId]) -> Result<(), StoreError> {
    let mut keys: Vec<i64> = authors
        .iter()
        .map(|a| {
            let mut k = [0u8; 8];
            k.copy_from_slice(&a.0[..8]);
            i64::from_be_bytes(k)
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Ok(());
    }
    tx.execute(
        "SELECT count(pg_advisory_xact_lock(k))
         FROM (SELECT k FROM unnest($1::int8[]) AS k ORDER BY k) AS ordered",
        &[&keys],
    )
    .await?;
    Ok(())
}

/// The heads of `authors`; `None` for an author with nothing held.
async fn load_tips(
    tx: &Transaction<'_>,
    authors: &[AuthorId],
) -> Result<HashMap<AuthorId, Option<Head>>, StoreError> {
    let mut tips: HashMap<AuthorId, Option<Head>> = authors.iter().map(|a| (*a, None)).collect();
    if authors.is_empty() {
        return Ok(tips);
    }
    let keys: Vec<&[u8]> = authors.iter().map(|a| a.0.as_slice()).collect();
    let rows = tx
        .query(
            "SELECT author, seq, id FROM heads WHERE author = ANY($1)",
            &[&keys],
        )
        .await?;
    for r in rows {
        let author = AuthorId(id32(r.get(0), "heads.author")?);
        let seq: i64 = r.get(1);
        let head = Head {
            seq: u64::try_from(seq).map_err(|_| StoreError::CorruptColumn {
                column: "heads.seq",
            })?,
            id: EntryId(id32(r.get(2), "heads.id")?),
        };
        tips.insert(author, Some(head));
    }
    Ok(tips)
}

/// Keeps forks as evidence (invariant 2); past the evidence `quota`,
/// counted in the summary instead, without their bytes
/// ([`super::evidence`]).
async fn insert_forks(
    tx: &Transaction<'_>,
    forks: &[(SignedEntry, EntryId)],
    now_ms: u64,
    quota: u64,
) -> Result<(), StoreError> {
    if forks.is_empty() {
        return Ok(());
    }
    let all: Vec<EntryId> = forks.iter().map(|(e, _)| e.id()).collect();
    let all_ids: Vec<&[u8]> = all.iter().map(|id| id.0.as_slice()).collect();
    let mut seen = evidence::held(tx, evidence::Table::Forks, &all_ids).await?;
    let new: Vec<&(SignedEntry, EntryId)> =
        forks.iter().filter(|(e, _)| seen.insert(e.id())).collect();
    let candidates: Vec<evidence::Candidate<'_>> = new
        .iter()
        .map(|(e, held)| evidence::Candidate {
            entry: e,
            code: evidence::FORK,
            reason: format!("a second entry at seq {}; the log holds {held}", e.seq()),
        })
        .collect();
    let keep = evidence::admit(tx, quota, &candidates, now_ms).await?;
    let forks: Vec<(SignedEntry, EntryId)> = new
        .into_iter()
        .zip(keep)
        .filter(|(_, keep)| *keep)
        .map(|(f, _)| f.clone())
        .collect();
    if forks.is_empty() {
        return Ok(());
    }
    let entry_ids: Vec<EntryId> = forks.iter().map(|(e, _)| e.id()).collect();
    let ids: Vec<&[u8]> = entry_ids.iter().map(|id| id.0.as_slice()).collect();
    let authors: Vec<&[u8]> = forks
        .iter()
        .map(|(e, _)| e.entry().author.0.as_slice())
        .collect();
    let seqs: Vec<i64> = forks
        .iter()
        .map(|(e, _)| int(e.seq(), "forks.seq"))
        .collect::<Result<_, _>>()?;
    let held: Vec<&[u8]> = forks.iter().map(|(_, h)| h.0.as_slice()).collect();
    let bytes: Vec<&[u8]> = forks.iter().map(|(e, _)| e.as_bytes()).collect();
    tx.execute(
        "INSERT INTO forks (id, author, seq, held_id, bytes, detected_ms)
         SELECT f.*, $6 FROM unnest($1::bytea[], $2::bytea[], $3::int8[], $4::bytea[],
             $5::bytea[]) AS f
         ON CONFLICT (id) DO NOTHING",
        &[
            &ids,
            &authors,
            &seqs,
            &held,
            &bytes,
            &int(now_ms, "forks.detected_ms")?,
        ],
    )
    .await?;
    Ok(())
}
