//! Revocation applied to what the log already holds (migration V8), as
//! the node does it (`node/src/store/revoked.rs`).
//!
//! Sync sessions refuse a revoked author's entries past its last valid
//! seq as they arrive; this module makes the same verdict hold for the
//! ones that arrived before the revocation was learned, so the hub reaches
//! the same views and roles whatever order it learned things in.
//!
//! `revoked_authors` holds the revocations in force: `author → last valid
//! seq`, the stricter of the CA's list and the hubs' `revocation` entries.
//! Judging them takes the deployment CA: a [`Judge`] installed by
//! `crate::revocations::load` reads the stored list and the revocation
//! entries with their authors' certificates. Whenever either changes — a
//! list stored, a revocation entry applied (by a session or the hub's own
//! chain) — [`enforce`] asks the judge again inside that transaction,
//! rewrites the table, and re-projects the events and readings with
//! entries in the seq range whose verdict changed.
//!
//! Entries of an author past its last valid seq stay in the log as
//! evidence (invariant 2): the timeline marks them revoked; nothing else
//! counts them (views, role grants, an event's history).
//!
//! Concurrency: [`enforce`] holds an advisory lock of its own for the rest
//! of its transaction, so verdicts are judged one at a time, then the
//! projector's per-event locks (in the projector's order) on every event
//! with an entry in a changed range, whether projected yet or not: a
//! projector chunk that read the old verdict has committed before the
//! event is rebuilt, and one that comes after reads the new one.
//!
//! Never does: verify a signature or a certificate (the judge does).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sentinel_schema::{AuthorId, Body, BodyKind, EventId, SignedEntry};
use tokio_postgres::Transaction;

use super::project::{reproject_events, ProjectReport};
use super::verdict::{counts, revoked_authors, Revoked};
use super::{int, PgStore, StoreError};

/// The first key of the advisory lock [`enforce`] holds ("RVKD").
const REVOKED_LOCK_CLASS: i32 = 0x5256_4b44;

/// Judges the revocations in force from the stored CA list (its signed
/// bytes, if any) and every `revocation` entry of the log with its
/// author's stored certificate: `author → last valid seq`.
pub type Judge = Arc<
    dyn Fn(Option<&[u8]>, &[(SignedEntry, Option<Vec<u8>>)]) -> BTreeMap<AuthorId, u64>
        + Send
        + Sync,
>;

/// What [`enforce`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Enforced {
    /// Authors whose verdict changed: `(author, before, now)`, `None`
    /// meaning not revoked.
    pub changed: Vec<(AuthorId, Option<u64>, Option<u64>)>,
    /// The events re-projected: `events` still shown, `removed` no longer.
    pub projected: ProjectReport,
}

/// Asks `judge` for the revocations in force and, if they changed,
/// rewrites `revoked_authors` and re-projects what the change touches,
/// inside the caller's transaction (see the module docs).
pub(super) async fn enforce(tx: &Transaction<'_>, judge: &Judge) -> Result<Enforced, StoreError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, 0)",
        &[&REVOKED_LOCK_CLASS],
    )
    .await?;
    let list: Option<Vec<u8>> = tx
        .query_opt(
            "SELECT value FROM meta WHERE key = $1",
            &[&super::REVOCATION_LIST],
        )
        .await?
        .map(|r| r.get(0));
    let entries = revocation_entries(tx).await?;
    let now = judge(list.as_deref(), &entries);
    let before = revoked_authors(tx).await?;
    if now == before {
        return Ok(Enforced::default());
    }
    tx.execute("DELETE FROM revoked_authors", &[]).await?;
    let authors: Vec<&[u8]> = now.keys().map(|a| a.0.as_slice()).collect();
    let seqs: Vec<i64> = now
        .values()
        .map(|s| int(*s, "revoked_authors.last_valid_seq"))
        .collect::<Result<_, _>>()?;
    tx.execute(
        "INSERT INTO revoked_authors (author, last_valid_seq)
         SELECT * FROM unnest($1::bytea[], $2::int8[])",
        &[&authors, &seqs],
    )
    .await?;

    let mut out = Enforced::default();
    let mut events: BTreeSet<EventId> = BTreeSet::new();
    let all: BTreeSet<&AuthorId> = before.keys().chain(now.keys()).collect();
    for author in all {
        let (was, is) = (before.get(author).copied(), now.get(author).copied());
        if was == is {
            continue;
        }
        out.changed.push((*author, was, is));
        // The seqs whose verdict changed: past the lower last valid seq,
        // up to the higher one (no revocation: no bound).
        let bound = |s: Option<u64>| i64::try_from(s.unwrap_or(u64::MAX)).unwrap_or(i64::MAX);
        let (lo, hi) = (bound(was).min(bound(is)), bound(was).max(bound(is)));
        let key = author.0.as_slice();
        for r in tx
            .query(
                "SELECT DISTINCT event FROM entries
                 WHERE author = $1 AND seq > $2 AND seq <= $3 AND kind IN (1, 2)",
                &[&key, &lo, &hi],
            )
            .await?
        {
            let event: &[u8] = r.get(0);
            events.insert(EventId(super::id16(event, "entries.event")?));
        }
        // Readings: those the range holds leave the view, and those of it
        // that count (a verdict loosened) come back.
        tx.execute(
            "DELETE FROM readings WHERE author = $1 AND seq > $2 AND seq <= $3",
            &[&key, &lo, &hi],
        )
        .await?;
        let kept: Vec<SignedEntry> = tx
            .query(
                "SELECT pos, bytes FROM entries
                 WHERE author = $1 AND seq > $2 AND seq <= $3 AND kind = 3 AND projected
                 ORDER BY pos",
                &[&key, &lo, &hi],
            )
            .await?
            .iter()
            .map(|r| {
                let pos: i64 = r.get(0);
                SignedEntry::from_bytes(r.get::<_, Vec<u8>>(1))
                    .map_err(|source| StoreError::CorruptEntry { pos, source })
            })
            .filter(|e| e.as_ref().map_or(true, |e| counts(&now, e)))
            .collect::<Result<_, _>>()?;
        super::readings::insert_readings(tx, &kept).await?;
    }
    out.projected = reproject_events(tx, &events).await?;
    Ok(out)
}

/// Every `revocation` entry in the log, in log order, with its author's
/// stored certificate if the store holds one.
async fn revocation_entries(
    tx: &Transaction<'_>,
) -> Result<Vec<(SignedEntry, Option<Vec<u8>>)>, StoreError> {
    const _: () = assert!(BodyKind::Revocation as u8 == 5);
    tx.query(
        "SELECT e.pos, e.bytes, c.der FROM entries e
         LEFT JOIN certificates c ON c.author = e.author
         WHERE e.kind = 5 ORDER BY e.pos",
        &[],
    )
    .await?
    .into_iter()
    .map(|r| {
        let pos: i64 = r.get(0);
        let entry = SignedEntry::from_bytes(r.get::<_, Vec<u8>>(1))
            .map_err(|source| StoreError::CorruptEntry { pos, source })?;
        Ok((entry, r.get(2)))
    })
    .collect()
}

/// Whether `entries` hold a `revocation` entry (then the verdict may
/// change once they are in the log).
pub(super) fn any_revocation<'a>(entries: impl IntoIterator<Item = &'a SignedEntry>) -> bool {
    entries
        .into_iter()
        .any(|e| matches!(e.entry().body, Body::Revocation(_)))
}

impl PgStore {
    /// Installs the judge of revocations (the hub's, holding the
    /// deployment CA) and enforces what it finds at once. The first judge
    /// installed stays (one deployment CA per hub). Until one is installed,
    /// nothing the log holds is judged revoked.
    pub async fn judge_revocations_with(&self, judge: Judge) -> Result<Enforced, StoreError> {
        let _ = self.judge.set(judge);
        self.enforce_revocations().await
    }

    /// Asks the judge again and applies any change to what the log holds
    /// ([`enforce`]), in one transaction. Without a judge, nothing.
    pub async fn enforce_revocations(&self) -> Result<Enforced, StoreError> {
        let Some(judge) = self.judge.get() else {
            return Ok(Enforced::default());
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let done = enforce(&tx, judge).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// The judge installed, if any (for the store's own transactions).
    pub(super) fn judge(&self) -> Option<&Judge> {
        self.judge.get()
    }

    /// The revocations in force: `author → last valid seq`.
    pub async fn revoked_authors(&self) -> Result<Revoked, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let out = revoked_authors(&tx).await?;
        tx.commit().await?;
        Ok(out)
    }
}
