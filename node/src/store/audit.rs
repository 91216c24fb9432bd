//! `audit verify`: checks every chain in the store from the raw bytes, and
//! names the first bad entry of each author.
//!
//! The check trusts nothing but the bytes and the signatures: each row's
//! columns must match the entry its bytes decode to, every signature must
//! hold, every entry must link to the one before, and the heads must match
//! the end of each chain. Editing, deleting or swapping rows in the file
//! therefore shows up here.

use rusqlite::params;
use sentinel_schema::{check_link, verify_signatures, AuthorId, EntryId, Head, Link, SignedEntry};

use super::{blob, log, Store, StoreError};

/// Rows verified per batch (bounded memory for long chains).
const CHUNK: i64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditProblem {
    pub author: String,
    pub seq: u64,
    /// The entry's id as recorded in the row, if readable.
    pub id: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AuditReport {
    pub authors: usize,
    pub entries: u64,
    pub forks: u64,
    pub quarantined: u64,
    /// The first bad entry of each author whose chain is broken.
    pub problems: Vec<AuditProblem>,
    /// Contradictions of hub checkpoints found so far (a hub that lost or
    /// rewrote entries it attested, or a forked author): evidence about
    /// others, so they do not make this store's chains fail.
    pub checkpoint_breaches: Vec<super::checkpoints::BreachRecord>,
}

impl AuditReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

struct Row {
    seq: u64,
    id: Option<EntryId>,
    bytes: Vec<u8>,
}

impl Store {
    pub fn audit(&self) -> Result<AuditReport, StoreError> {
        let conn = self.conn();
        let mut authors: Vec<AuthorId> = Vec::new();
        {
            let mut stmt = conn
                .prepare("SELECT author FROM entries UNION SELECT author FROM heads ORDER BY 1")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                authors.push(AuthorId(blob(r, 0, "entries.author")?));
            }
        }
        let mut report = AuditReport {
            authors: authors.len(),
            // Evidence past the quota is counted in its summary.
            forks: conn.query_row(
                "SELECT (SELECT count(*) FROM forks) + (SELECT coalesce(sum(count), 0)
                     FROM evidence_summary WHERE reason_code = 'fork')",
                [],
                |r| r.get(0),
            )?,
            quarantined: conn.query_row(
                "SELECT (SELECT count(*) FROM quarantine) + (SELECT coalesce(sum(count), 0)
                     FROM evidence_summary WHERE reason_code <> 'fork')",
                [],
                |r| r.get(0),
            )?,
            checkpoint_breaches: self.breaches()?,
            ..AuditReport::default()
        };
        for author in authors {
            let (n, problem) = self.audit_author(author)?;
            report.entries += n;
            report.problems.extend(problem);
        }
        Ok(report)
    }

    /// Verifies one author's chain; returns how many entries were read and
    /// the first problem.
    fn audit_author(&self, author: AuthorId) -> Result<(u64, Option<AuditProblem>), StoreError> {
        let conn = self.conn();
        let problem = |seq: u64, id: Option<EntryId>, reason: String| AuditProblem {
            author: author.to_hex(),
            seq,
            id: id.map(|i| i.to_hex()),
            reason,
        };
        let mut stmt = conn.prepare(
            "SELECT seq, id, bytes FROM entries WHERE author = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let mut tip: Option<Head> = None;
        let mut n = 0u64;
        loop {
            let after = tip.map_or(0, |t| t.seq) as i64;
            let mut rows = stmt.query(params![author.as_bytes(), after, CHUNK])?;
            let mut chunk: Vec<Row> = Vec::new();
            while let Some(r) = rows.next()? {
                let seq: i64 = r.get(0)?;
                chunk.push(Row {
                    seq: seq as u64,
                    id: blob(r, 1, "entries.id").ok().map(EntryId),
                    bytes: r.get(2)?,
                });
            }
            if chunk.is_empty() {
                break;
            }
            n += chunk.len() as u64;
            let mut entries: Vec<SignedEntry> = Vec::with_capacity(chunk.len());
            for row in &chunk {
                let e = match SignedEntry::from_bytes(row.bytes.clone()) {
                    Ok(e) => e,
                    Err(err) => {
                        return Ok((
                            n,
                            Some(problem(
                                row.seq,
                                row.id,
                                format!("stored bytes do not decode: {err}"),
                            )),
                        ))
                    }
                };
                if e.author() != author || e.seq() != row.seq {
                    return Ok((
                        n,
                        Some(problem(
                            row.seq,
                            row.id,
                            format!(
                                "row for seq {} holds the entry {} #{}",
                                row.seq,
                                e.author().short(),
                                e.seq()
                            ),
                        )),
                    ));
                }
                if Some(e.id()) != row.id {
                    return Ok((
                        n,
                        Some(problem(
                            row.seq,
                            row.id,
                            "the id column does not match the entry's bytes".into(),
                        )),
                    ));
                }
                entries.push(e);
            }
            let verdicts = verify_signatures(&entries);
            for (e, verdict) in entries.iter().zip(verdicts) {
                if let Err(err) = verdict {
                    return Ok((n, Some(problem(e.seq(), Some(e.id()), err.to_string()))));
                }
                match check_link(tip, e) {
                    Ok(Link::Next) => {
                        tip = Some(Head {
                            seq: e.seq(),
                            id: e.id(),
                        })
                    }
                    Ok(Link::AlreadyHeld) => {
                        return Ok((
                            n,
                            Some(problem(e.seq(), Some(e.id()), "seq appears twice".into())),
                        ))
                    }
                    Err(fault) => {
                        return Ok((n, Some(problem(e.seq(), Some(e.id()), fault.to_string()))))
                    }
                }
            }
        }
        let head = log::head(conn, &author)?;
        if head != tip {
            let seq = head.map_or(0, |h| h.seq);
            return Ok((
                n,
                Some(problem(
                    seq,
                    head.map(|h| h.id),
                    format!(
                        "heads record seq {seq} but the chain in the log ends at seq {}",
                        tip.map_or(0, |t| t.seq)
                    ),
                )),
            ));
        }
        Ok((n, None))
    }
}
