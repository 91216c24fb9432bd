//! Revocation applied to what the log already holds (migration 8).
//!
//! Sync sessions refuse a revoked author's entries past its last valid
//! seq as they arrive; this module makes the same verdict hold for the
//! ones that arrived *before* the revocation was learned, so a node
//! reaches the same views and roles whatever order it learned things in.
//!
//! `revoked_authors` holds the revocations in force: `author → last valid
//! seq`, the stricter of the CA's list and the hubs' `revocation` entries.
//! Judging them takes the deployment CA, which the store does not hold: a
//! [`Judge`] installed by the node (`crate::revocations::judge`) reads the
//! stored list and the revocation entries with their authors'
//! certificates. Whenever either changes — a list stored, a revocation
//! entry applied — [`enforce`] asks the judge again in the same
//! transaction, rewrites the table, and re-projects what the difference
//! touches: the events, sensors and hub checkpoints with entries in the
//! seq range whose verdict changed.
//!
//! An entry of an author past its last valid seq stays in the log as
//! evidence (invariant 2) and is listed by [`Store::revoked_entries`]; it
//! counts nowhere else: the projector skips it, role grants ignore it, the
//! history of an event leaves it out.
//!
//! Never does: verify a signature or a certificate (the judge does).

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use sentinel_schema::{AuthorId, Body, BodyKind, EntryId, EventId, SignedEntry};

use super::project::{project_entries, projected_upto, reproject_event, Projected};
use super::verdict::{counts, revoked_authors, Revoked};
use super::{blob, Store, StoreError};

/// The `meta` key of the stored CA revocation list.
pub(crate) const REVOCATION_LIST: &str = "revocation_list";

/// A `revocation` entry of the log with its author's stored certificate,
/// if the store holds one.
pub type RevocationEntry = (SignedEntry, Option<Vec<u8>>);

/// Judges the revocations in force from the stored CA list (its signed
/// bytes, if any) and every `revocation` entry of the log with its
/// author's stored certificate: `author → last valid seq`.
pub type JudgeFn = dyn Fn(Option<&[u8]>, &[RevocationEntry]) -> BTreeMap<AuthorId, u64> + Send;

/// A [`JudgeFn`], installed with [`Store::judge_revocations_with`].
pub struct Judge(pub Box<JudgeFn>);

impl std::fmt::Debug for Judge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Judge")
    }
}

/// Creates the table and the indexes that find grants and revocations
/// without scanning the log (migration 8).
pub(crate) fn migrate(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "-- The revocations in force, as judged from the CA list and the hubs'
        -- revocation entries (see `store/revoked.rs`).
        CREATE TABLE revoked_authors (
            author         BLOB    PRIMARY KEY,
            last_valid_seq INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX entries_role_grants ON entries (pos) WHERE kind = 4;
        CREATE INDEX entries_revocations ON entries (pos) WHERE kind = 5;",
    )?;
    Ok(())
}

/// Every `revocation` entry in the log, in log order, with its author's
/// stored certificate if the store holds one.
pub(crate) fn revocation_entries(conn: &Connection) -> Result<Vec<RevocationEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.pos, e.bytes, c.der FROM entries e
         LEFT JOIN certificates c ON c.author = e.author
         WHERE e.kind = 5 ORDER BY e.pos",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let pos: i64 = r.get(0)?;
        let e = SignedEntry::from_bytes(r.get(1)?)
            .map_err(|source| StoreError::CorruptEntry { pos, source })?;
        out.push((e, r.get(2)?));
    }
    Ok(out)
}

/// What [`enforce`] changed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Enforced {
    /// Authors whose verdict changed: `(author, before, now)`, `None`
    /// meaning not revoked.
    pub changed: Vec<(AuthorId, Option<u64>, Option<u64>)>,
    /// The events re-projected: those still shown, with their positions.
    pub projected: Projected,
    /// Events the views no longer show.
    pub removed: Vec<EventId>,
}

/// Asks `judge` for the revocations in force and, if they changed,
/// rewrites `revoked_authors` and re-projects what the change touches,
/// inside the caller's transaction (so views and verdict commit together,
/// invariant 6). Only entries the views have already taken in are
/// re-projected; later ones meet the new verdict when the projector
/// reaches them.
pub(crate) fn enforce(conn: &Connection, judge: &Judge) -> Result<Enforced, StoreError> {
    let list: Option<Vec<u8>> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([REVOCATION_LIST], |r| r.get(0))
        .optional()?;
    let now = (judge.0)(list.as_deref(), &revocation_entries(conn)?);
    let before = revoked_authors(conn)?;
    if now == before {
        return Ok(Enforced::default());
    }
    conn.execute("DELETE FROM revoked_authors", [])?;
    let mut insert = conn
        .prepare_cached("INSERT INTO revoked_authors (author, last_valid_seq) VALUES (?1, ?2)")?;
    for (author, last) in &now {
        insert.execute(params![author.as_bytes(), seq_int(*last)])?;
    }

    let mark = projected_upto(conn)?;
    let mut out = Enforced::default();
    let mut events = BTreeSet::new();
    let mut sensors = BTreeSet::new();
    let mut hubs = BTreeSet::new();
    let authors: BTreeSet<&AuthorId> = before.keys().chain(now.keys()).collect();
    let mut touched = conn.prepare_cached(
        "SELECT kind, event FROM entries
         WHERE author = ?1 AND seq > ?2 AND seq <= ?3 AND pos <= ?4",
    )?;
    for author in authors {
        let (was, is) = (before.get(author).copied(), now.get(author).copied());
        if was == is {
            continue;
        }
        out.changed.push((*author, was, is));
        // The seqs whose verdict changed: past the lower last valid seq,
        // up to the higher one (no revocation: no bound).
        let bound = |s: Option<u64>| s.unwrap_or(u64::MAX);
        let (lo, hi) = (bound(was).min(bound(is)), bound(was).max(bound(is)));
        let mut rows = touched.query(params![author.as_bytes(), seq_int(lo), seq_int(hi), mark])?;
        while let Some(r) = rows.next()? {
            let kind: u8 = r.get(0)?;
            match BodyKind::from_wire(kind.into()) {
                Ok(BodyKind::EventChange | BodyKind::MediaAttached) => {
                    events.insert(EventId(blob(r, 1, "entries.event")?));
                }
                Ok(BodyKind::SensorReading) => {
                    sensors.insert(*author);
                }
                Ok(BodyKind::HubCheckpoint) => {
                    hubs.insert(*author);
                }
                // Grants and revocations are read from the log, not views.
                _ => {}
            }
        }
    }
    for event in events {
        match reproject_event(conn, event, mark, &now)? {
            Some(at) => out.projected.events.push((event, at)),
            None => out.removed.push(event),
        }
    }
    for sensor in sensors {
        reproject_sensor(conn, &sensor, mark, &now)?;
    }
    for hub in hubs {
        conn.execute(
            "DELETE FROM checkpoint_heads WHERE hub = ?1",
            [hub.as_bytes().as_slice()],
        )?;
        let kept = entries_of(conn, &hub, BodyKind::HubCheckpoint, mark, &now)?;
        project_entries(conn, &kept)?;
    }
    Ok(out)
}

/// A seq as SQLite stores it (`u64::MAX`, meaning no bound, as `i64::MAX`).
fn seq_int(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// The entries of `author` of `kind` the views have taken in (position at
/// most `mark`) that count under `revoked`, in log order.
fn entries_of(
    conn: &Connection,
    author: &AuthorId,
    kind: BodyKind,
    mark: i64,
    revoked: &Revoked,
) -> Result<Vec<(i64, SignedEntry)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT pos, bytes FROM entries WHERE author = ?1 AND kind = ?2 AND pos <= ?3
         ORDER BY pos",
    )?;
    let mut rows = stmt.query(params![author.as_bytes(), kind as u8, mark])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let pos: i64 = r.get(0)?;
        let e = SignedEntry::from_bytes(r.get(1)?)
            .map_err(|source| StoreError::CorruptEntry { pos, source })?;
        if counts(revoked, &e) {
            out.push((pos, e));
        }
    }
    Ok(out)
}

/// Rebuilds one sensor's readings and its summary rows from its readings
/// that count.
fn reproject_sensor(
    conn: &Connection,
    sensor: &AuthorId,
    mark: i64,
    revoked: &Revoked,
) -> Result<(), StoreError> {
    let key = sensor.as_bytes().as_slice();
    conn.execute(
        "DELETE FROM idx_readings_geom WHERE pkid IN (SELECT rid FROM readings WHERE author = ?1)",
        [key],
    )?;
    conn.execute("DELETE FROM readings WHERE author = ?1", [key])?;
    conn.execute("DELETE FROM sensors WHERE author = ?1", [key])?;
    conn.execute("DELETE FROM sensor_kinds WHERE author = ?1", [key])?;
    let kept = entries_of(conn, sensor, BodyKind::SensorReading, mark, revoked)?;
    project_entries(conn, &kept)?;
    Ok(())
}

impl Store {
    /// Installs the judge of revocations (the node's, holding the
    /// deployment CA) and enforces what it finds at once. Until one is
    /// installed, nothing the log holds is judged revoked.
    pub fn judge_revocations_with(&mut self, judge: Judge) -> Result<Enforced, StoreError> {
        self.judge = Some(judge);
        self.enforce_revocations()
    }

    /// Asks the judge again and applies any change to what the log holds
    /// ([`enforce`]), in one transaction. Without a judge, nothing.
    pub fn enforce_revocations(&mut self) -> Result<Enforced, StoreError> {
        let Some(judge) = self.judge.take() else {
            return Ok(Enforced::default());
        };
        let done = (|| {
            let tx = self.conn_mut().transaction()?;
            let done = enforce(&tx, &judge)?;
            tx.commit()?;
            Ok::<_, StoreError>(done)
        })();
        self.judge = Some(judge);
        let done = done?;
        self.note_enforced(done.clone());
        Ok(done)
    }

    /// Every `revocation` entry in the log, in log order, with its
    /// author's stored certificate if the store holds one (for the caller
    /// to check that a hub signed it: `crate::revocations`).
    pub fn revocation_entries(&self) -> Result<Vec<RevocationEntry>, StoreError> {
        revocation_entries(self.conn())
    }

    /// The revocations in force: `author → last valid seq`.
    pub fn revoked_authors(&self) -> Result<Revoked, StoreError> {
        revoked_authors(self.conn())
    }

    /// The entries the log keeps as evidence but that count nowhere: each
    /// revoked author's past its last valid seq, as `(author, seq, id)`.
    pub fn revoked_entries(&self) -> Result<Vec<(AuthorId, u64, EntryId)>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT e.author, e.seq, e.id FROM entries e
             JOIN revoked_authors r ON r.author = e.author AND e.seq > r.last_valid_seq
             ORDER BY e.author, e.seq",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(1)?;
            out.push((
                AuthorId(blob(r, 0, "entries.author")?),
                u64::try_from(seq).map_err(|_| StoreError::CorruptColumn {
                    column: "entries.seq",
                })?,
                EntryId(blob(r, 2, "entries.id")?),
            ));
        }
        Ok(out)
    }
}

/// Whether `entries` hold a `revocation` entry (then the verdict may
/// change once they are in the log).
pub(crate) fn any_revocation<'a>(entries: impl IntoIterator<Item = &'a SignedEntry>) -> bool {
    entries
        .into_iter()
        .any(|e| matches!(e.entry().body, Body::Revocation(_)))
}
