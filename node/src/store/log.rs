//! The entry log: append, heads, forks, quarantine (within the evidence
//! quota, [`super::evidence`]), and applying entries that arrive from
//! other authors.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};
use sentinel_schema::{
    check_link, AuthorId, Body, EntryId, EventId, Head, Heads, Link, SignedEntry, VerifiedEntry,
};

pub use sentinel_sync::ApplyReport;
use sentinel_sync::{Quarantined, RejectReason};

use super::evidence;
use super::revoked::{Enforced, Judge};
use super::{blob, StoreError};

/// The event an entry is about, if any (indexed for rebuilding documents).
pub fn event_of(e: &SignedEntry) -> Option<EventId> {
    match &e.entry().body {
        Body::EventChange(c) => Some(c.event),
        Body::MediaAttached(m) => Some(m.event),
        Body::Redaction(r) => Some(r.event),
        _ => None,
    }
}

/// Appends an entry to the log; returns its log position. The caller has
/// checked the chain link and updates the head.
pub fn insert_entry(
    conn: &Connection,
    e: &SignedEntry,
    local: bool,
    received_ms: u64,
) -> Result<i64, StoreError> {
    let entry = e.entry();
    let mut stmt = conn.prepare_cached(
        "INSERT INTO entries
            (author, seq, id, hlc_ms, hlc_counter, kind, actor, event, bytes, local, received_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    stmt.execute(params![
        entry.author.as_bytes(),
        entry.seq as i64,
        e.id().as_bytes(),
        entry.hlc.wall_ms as i64,
        entry.hlc.counter,
        entry.body.kind() as u8,
        entry.actor,
        event_of(e).map(|ev| ev.0),
        e.as_bytes(),
        local,
        received_ms as i64,
    ])?;
    Ok(conn.last_insert_rowid())
}

pub fn set_head(conn: &Connection, author: &AuthorId, head: Head) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO heads (author, seq, id) VALUES (?1, ?2, ?3)
         ON CONFLICT (author) DO UPDATE SET seq = excluded.seq, id = excluded.id",
    )?
    .execute(params![
        author.as_bytes(),
        head.seq as i64,
        head.id.as_bytes()
    ])?;
    Ok(())
}

pub fn head(conn: &Connection, author: &AuthorId) -> Result<Option<Head>, StoreError> {
    let row = conn
        .prepare_cached("SELECT seq, id FROM heads WHERE author = ?1")?
        .query_row([author.as_bytes()], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .optional()?;
    row.map(|(seq, id)| {
        Ok(Head {
            seq: seq as u64,
            id: EntryId(
                <[u8; 32]>::try_from(id.as_slice())
                    .map_err(|_| StoreError::CorruptColumn { column: "heads.id" })?,
            ),
        })
    })
    .transpose()
}

pub fn heads(conn: &Connection) -> Result<Heads, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT author, seq, id FROM heads")?;
    let mut rows = stmt.query([])?;
    let mut heads = Heads::new();
    while let Some(r) = rows.next()? {
        let author = AuthorId(blob(r, 0, "heads.author")?);
        let seq: i64 = r.get(1)?;
        let id = EntryId(blob(r, 2, "heads.id")?);
        heads.set(
            author,
            Head {
                seq: seq as u64,
                id,
            },
        );
    }
    Ok(heads)
}

/// The id of the entry held at `(author, seq)`.
pub fn id_at(
    conn: &Connection,
    author: &AuthorId,
    seq: u64,
) -> Result<Option<EntryId>, StoreError> {
    let id: Option<Vec<u8>> = conn
        .prepare_cached("SELECT id FROM entries WHERE author = ?1 AND seq = ?2")?
        .query_row(params![author.as_bytes(), seq as i64], |r| r.get(0))
        .optional()?;
    id.map(|v| {
        <[u8; 32]>::try_from(v.as_slice())
            .map(EntryId)
            .map_err(|_| StoreError::CorruptColumn {
                column: "entries.id",
            })
    })
    .transpose()
}

/// The author's entries with seq > `after`, in seq order, at most `limit`.
pub fn entries_after(
    conn: &Connection,
    author: &AuthorId,
    after: u64,
    limit: usize,
) -> Result<Vec<SignedEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT pos, bytes FROM entries WHERE author = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let mut rows = stmt.query(params![author.as_bytes(), after as i64, limit as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let pos: i64 = r.get(0)?;
        let bytes: Vec<u8> = r.get(1)?;
        out.push(
            SignedEntry::from_bytes(bytes)
                .map_err(|source| StoreError::CorruptEntry { pos, source })?,
        );
    }
    Ok(out)
}

/// Keeps an entry that failed a check, with the reason; one already in
/// quarantine keeps its first reason. Past the evidence quota, the entry
/// is counted in the summary instead, without its bytes
/// ([`super::evidence`]).
pub(crate) fn quarantine(
    conn: &Connection,
    e: &SignedEntry,
    code: &str,
    reason: &str,
    now_ms: u64,
) -> Result<(), StoreError> {
    let held: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM quarantine WHERE id = ?1)")?
        .query_row([e.id().as_bytes()], |r| r.get(0))?;
    if held {
        return Ok(());
    }
    if !evidence::admit(conn, e)? {
        return evidence::summarize(conn, e, code, reason, now_ms);
    }
    conn.prepare_cached(
        "INSERT OR IGNORE INTO quarantine (id, author, seq, bytes, reason_code, reason, received_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        e.id().as_bytes(),
        e.author().as_bytes(),
        e.seq() as i64,
        e.as_bytes(),
        code,
        reason,
        now_ms as i64
    ])?;
    Ok(())
}

/// Keeps a second entry at a seq already held, as evidence (invariant 2);
/// past the evidence quota, counted in the summary instead.
fn record_fork(
    conn: &Connection,
    e: &SignedEntry,
    held: EntryId,
    now_ms: u64,
) -> Result<(), StoreError> {
    let kept: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM forks WHERE id = ?1)")?
        .query_row([e.id().as_bytes()], |r| r.get(0))?;
    if kept {
        return Ok(());
    }
    if !evidence::admit(conn, e)? {
        let reason = format!("a second entry at seq {}; the log holds {held}", e.seq());
        return evidence::summarize(conn, e, evidence::FORK, &reason, now_ms);
    }
    conn.prepare_cached(
        "INSERT OR IGNORE INTO forks (id, author, seq, held_id, bytes, detected_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        e.id().as_bytes(),
        e.author().as_bytes(),
        e.seq() as i64,
        held.as_bytes(),
        e.as_bytes(),
        now_ms as i64
    ])?;
    Ok(())
}

/// Applies verified entries from other authors in one transaction: chain
/// continuity is checked against the heads; what fails is quarantined with
/// the reason; the rest is appended and the heads move. Entries quarantined
/// earlier for a gap are retried once the gap closes.
///
/// With `judge`, the revocations in force are judged again before the
/// commit (the entries hold a `revocation`), and what the change touches
/// is re-projected in the same transaction ([`super::revoked::enforce`]).
pub fn apply_remote(
    conn: &mut Connection,
    mut entries: Vec<VerifiedEntry>,
    now_ms: u64,
    judge: Option<&Judge>,
) -> Result<(ApplyReport, Enforced), StoreError> {
    entries.sort_by_key(|e| (e.author(), e.seq()));
    let tx = conn.transaction()?;
    let mut report = ApplyReport::default();
    let mut tips: HashMap<AuthorId, Option<Head>> = HashMap::new();
    for e in &entries {
        apply_one(&tx, e, &mut tips, &mut report, now_ms)?;
    }
    retry_gaps(&tx, &mut tips, &mut report, now_ms)?;
    for (author, tip) in &tips {
        if let Some(h) = tip {
            set_head(&tx, author, *h)?;
        }
    }
    let enforced = match judge {
        Some(judge) => super::revoked::enforce(&tx, judge)?,
        None => Enforced::default(),
    };
    tx.commit()?;
    Ok((report, enforced))
}

fn apply_one(
    conn: &Connection,
    e: &SignedEntry,
    tips: &mut HashMap<AuthorId, Option<Head>>,
    report: &mut ApplyReport,
    now_ms: u64,
) -> Result<bool, StoreError> {
    let author = e.author();
    let tip = match tips.get(&author) {
        Some(t) => *t,
        None => {
            let t = head(conn, &author)?;
            tips.insert(author, t);
            t
        }
    };
    match check_link(tip, e) {
        Ok(Link::Next) => {
            insert_entry(conn, e, false, now_ms)?;
            tips.insert(
                author,
                Some(Head {
                    seq: e.seq(),
                    id: e.id(),
                }),
            );
            report.applied += 1;
            let hlc = e.entry().hlc;
            report.max_hlc = Some(report.max_hlc.map_or(hlc, |m| m.max(hlc)));
            Ok(true)
        }
        Ok(Link::AlreadyHeld) => {
            match id_at(conn, &author, e.seq())? {
                Some(held) if held == e.id() => report.duplicates += 1,
                Some(held) => {
                    record_fork(conn, e, held, now_ms)?;
                    report.forks.push((author, e.seq(), e.id()));
                }
                // Below the head but not held: the log lost an entry.
                // Audit reports that; here the entry waits in quarantine.
                None => {
                    let q = Quarantined {
                        id: e.id(),
                        reason: RejectReason::MissingBelowHead,
                        detail: "seq below head but not held".into(),
                    };
                    quarantine(conn, e, q.reason.code(), &q.detail, now_ms)?;
                    report.quarantined.push(q);
                }
            }
            Ok(false)
        }
        Err(fault) => {
            let reason = RejectReason::from(&fault);
            let detail = fault.to_string();
            quarantine(conn, e, reason.code(), &detail, now_ms)?;
            report.quarantined.push(Quarantined {
                id: e.id(),
                reason,
                detail,
            });
            Ok(false)
        }
    }
}

/// Entries quarantined for a gap whose predecessor has now arrived.
fn retry_gaps(
    conn: &Connection,
    tips: &mut HashMap<AuthorId, Option<Head>>,
    report: &mut ApplyReport,
    now_ms: u64,
) -> Result<(), StoreError> {
    loop {
        let mut progressed = false;
        let candidates: Vec<(AuthorId, u64)> = tips
            .iter()
            .filter_map(|(a, t)| t.map(|t| (*a, t.seq + 1)))
            .collect();
        for (author, seq) in candidates {
            let row: Option<Vec<u8>> = conn
                .prepare_cached(
                    "SELECT bytes FROM quarantine WHERE author = ?1 AND seq = ?2 AND reason_code = ?3",
                )?
                .query_row(
                    params![author.as_bytes(), seq as i64, RejectReason::Gap.code()],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(bytes) = row else { continue };
            // Quarantined bytes are re-checked in full: they sat in a table.
            let Ok(signed) = SignedEntry::from_bytes(bytes) else {
                continue;
            };
            let Ok(verified) = signed.into_verified() else {
                continue;
            };
            let tip = tips.get(&author).copied().flatten();
            if check_link(tip, &verified) != Ok(Link::Next) {
                continue;
            }
            let id = verified.id();
            let len = verified.as_bytes().len();
            if apply_one(conn, &verified, tips, report, now_ms)? {
                conn.execute("DELETE FROM quarantine WHERE id = ?1", [id.as_bytes()])?;
                evidence::release(conn, len)?;
                report.quarantined.retain(|q| q.id != id);
                progressed = true;
            }
        }
        if !progressed {
            return Ok(());
        }
    }
}
