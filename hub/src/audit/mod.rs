//! The audit stream for a SIEM: every entry the hub verified — accepted
//! into the log, quarantined with its typed reason, or kept as a fork — as
//! one JSON line, to a file rotated by size, standard output or syslog
//! ([`sink`]; configured in `crate::config::audit`). The fields are
//! documented one by one in `docs/operations.md`, "Audit stream".
//!
//! **Complete and durable.** The [`Follower`] does not hook the write
//! path: it follows the three tables that record verdicts (`entries`,
//! `quarantine`, `forks`), each in its order of arrival (`pos`), and keeps
//! a mark per table in the database (`audit_mark`), moved only after the
//! lines up to it are written and flushed (fsynced, for a file). A restart
//! resumes after the mark. Delivery is at least once: lines written before
//! a crash but after the last mark are written again, identical; a reader
//! dedupes by `(hub, stream, pos)` (or by `entry_id` with `verdict`).
//!
//! **Settled positions only.** Positions are handed out before their
//! transaction commits, so a batch committing late can fill in below ones
//! already visible; the follower writes only what [`Horizon`] says is
//! settled (`crate::store::audit` explains the rule), a poll or two behind
//! the log, and never skips a late commit.
//!
//! What is not streamed: a quarantined entry released into the log before
//! the follower read its quarantine row (a gap that closed within a
//! second; its acceptance is streamed), and evidence past the evidence
//! quota (counted in the summary, without a row; `crate::store::evidence`).
//!
//! Signed audit bundles for auditors (a time range of the log with what
//! verifies it, `sentinel-hub audit bundle`) are written by [`bundle`].
//!
//! Never does: SQL (the store's `audit_*` methods), or change the log.

pub mod bundle;
pub mod sink;

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use sentinel_certs::{verify_identity, CaCert};
use sentinel_schema::{AuthorId, Body};
use serde::Serialize;

pub use sink::{rfc3339_ms, AuditLine, Sink};

use crate::now_ms;
use crate::store::audit::{AuditObservation, AuditRow, AuditSource, PerSource};
use crate::store::{PgStore, StoreError};

/// How often `serve` looks for new rows.
pub const POLL: Duration = Duration::from_secs(1);
/// Rows read and written per batch (one mark update each).
pub const CHUNK: usize = 1000;
/// The version of the line format (`v` in every line).
pub const LINE_VERSION: u32 = 1;
/// Most observations waiting to settle (one a poll); past it the oldest
/// is dropped, which only delays what it would have settled.
const MAX_WAITING: usize = 1024;
/// Most authors whose role is remembered.
const MAX_ROLES: usize = 100_000;

/// Why a step of the stream failed. Nothing past the mark is lost: the
/// next step writes it again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing audit lines: {0}")]
    Write(#[from] std::io::Error),
    #[error("the audit writer stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Which positions are settled: committed and visible, or never to be
/// (`crate::store::audit`). Pure: it is told each observation.
#[derive(Debug, Default)]
pub struct Horizon {
    /// Maxima observed, each with the next free transaction id of the
    /// observation after it: settled once no older transaction runs.
    waiting: VecDeque<(PerSource, u64)>,
    /// The newest observation's maxima, waiting for the next one.
    newest: Option<PerSource>,
}

impl Horizon {
    /// Takes in an observation; answers the highest settled positions
    /// when some became settled.
    pub fn observe(&mut self, o: &AuditObservation) -> Option<PerSource> {
        if let Some(max) = self.newest.replace(o.max) {
            if self.waiting.len() >= MAX_WAITING {
                self.waiting.pop_front();
            }
            self.waiting.push_back((max, o.xmax));
        }
        let mut settled = None;
        while let Some((max, barrier)) = self.waiting.front().copied() {
            if o.xmin < barrier {
                break;
            }
            settled = Some(max);
            self.waiting.pop_front();
        }
        settled
    }
}

/// Follows the log, quarantine and forks into a [`Sink`].
pub struct Follower {
    store: PgStore,
    /// `None` only while a batch is being written on a blocking thread.
    sink: Option<Sink>,
    hub: AuthorId,
    ca: CaCert,
    horizon: Horizon,
    /// The highest settled positions seen: what the marks move towards
    /// (kept, so a step that failed half way is finished by the next).
    settled: PerSource,
    marks: Option<PerSource>,
    /// Each author's role by its certificate, if the hub holds one.
    roles: HashMap<AuthorId, Option<&'static str>>,
}

impl Follower {
    /// A follower writing to `sink` for the hub `hub`, whose authors'
    /// certificates are checked against `ca` to name their roles.
    pub fn new(store: PgStore, sink: Sink, hub: AuthorId, ca: CaCert) -> Follower {
        Follower {
            store,
            sink: Some(sink),
            hub,
            ca,
            horizon: Horizon::default(),
            settled: PerSource::default(),
            marks: None,
            roles: HashMap::from([(hub, Some("hub"))]),
        }
    }

    /// Steps every `every` until the task is dropped; failures are logged
    /// and the step tried again.
    pub async fn run(mut self, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = self.step().await {
                tracing::warn!("audit stream: {e}; trying again");
            }
        }
    }

    /// One poll: observes the tables, and writes every row that became
    /// settled, batch by batch, moving the mark after each. Returns how
    /// many lines it wrote.
    pub async fn step(&mut self) -> Result<usize, AuditError> {
        let mut marks = match self.marks {
            Some(m) => m,
            None => self.store.audit_marks().await?,
        };
        self.marks = Some(marks);
        let observed = self.store.audit_observe().await?;
        if let Some(settled) = self.horizon.observe(&observed) {
            for source in AuditSource::ALL {
                let upto = settled.get(source).max(self.settled.get(source));
                self.settled.set(source, upto);
            }
        }
        let mut written = 0;
        for source in AuditSource::ALL {
            let upto = self.settled.get(source);
            while marks.get(source) < upto {
                let rows = self
                    .store
                    .audit_rows(source, marks.get(source), upto, CHUNK)
                    .await?;
                let last = match rows.last() {
                    Some(row) if rows.len() == CHUNK => row.pos,
                    _ => upto,
                };
                let mut lines = Vec::with_capacity(rows.len());
                for row in &rows {
                    let role = self.role(row.author).await?;
                    lines.push(render(row, &self.hub, role));
                }
                written += lines.len();
                if !lines.is_empty() {
                    self.write(lines).await?;
                }
                self.store.set_audit_mark(source, last, now_ms()).await?;
                marks.set(source, last);
                self.marks = Some(marks);
            }
        }
        Ok(written)
    }

    /// Writes a batch on a blocking thread (files are fsynced).
    async fn write(&mut self, lines: Vec<AuditLine>) -> Result<(), AuditError> {
        let Some(mut sink) = self.sink.take() else {
            return Err(std::io::Error::other("no sink").into());
        };
        let (sink, result) = tokio::task::spawn_blocking(move || {
            let result = sink.write(&lines, now_ms());
            (sink, result)
        })
        .await?;
        self.sink = Some(sink);
        Ok(result?)
    }

    /// The role `author`'s certificate names, if the hub holds one that
    /// chains to the CA.
    async fn role(&mut self, author: AuthorId) -> Result<Option<&'static str>, StoreError> {
        if let Some(role) = self.roles.get(&author) {
            return Ok(*role);
        }
        let role = self
            .store
            .certificate(&author)
            .await?
            .and_then(|der| verify_identity(&der, &self.ca).ok())
            .filter(|id| id.author == author)
            .map(|id| id.role.as_str());
        if self.roles.len() >= MAX_ROLES {
            self.roles.retain(|a, _| *a == self.hub);
        }
        self.roles.insert(author, role);
        Ok(role)
    }
}

/// One line, as `docs/operations.md` documents it field by field.
#[derive(Debug, Serialize)]
struct Line<'a> {
    v: u32,
    hub: String,
    stream: &'static str,
    pos: i64,
    verdict: &'static str,
    reason_code: Option<&'a str>,
    reason: Option<String>,
    entry_id: String,
    author: String,
    author_role: Option<&'static str>,
    seq: u64,
    prev: Option<String>,
    kind: Option<&'static str>,
    hlc_ms: Option<u64>,
    hlc_counter: Option<u32>,
    hlc_time: Option<String>,
    actor: Option<&'a str>,
    event_id: Option<String>,
    held_id: Option<String>,
    size: usize,
    received_ms: u64,
    received: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    decode_error: Option<&'a str>,
}

/// The line of one row.
pub fn render(row: &AuditRow, hub: &AuthorId, author_role: Option<&'static str>) -> AuditLine {
    let (verdict, severity, reason_code, reason) = match row.source {
        AuditSource::Log => ("accepted", 6, None, None),
        AuditSource::Quarantine => (
            "quarantined",
            4,
            row.reason_code.as_deref(),
            row.reason.clone(),
        ),
        AuditSource::Forks => (
            "fork",
            4,
            Some(crate::store::evidence::FORK),
            Some(match row.held_id {
                Some(held) => format!("a second entry at seq {}; the log holds {held}", row.seq),
                None => format!("a second entry at seq {}", row.seq),
            }),
        ),
    };
    let entry = row.entry.as_ref().ok().map(|e| e.entry());
    let line = Line {
        v: LINE_VERSION,
        hub: hub.to_hex(),
        stream: row.source.as_str(),
        pos: row.pos,
        verdict,
        reason_code,
        reason,
        entry_id: row.id.to_hex(),
        author: row.author.to_hex(),
        author_role,
        seq: row.seq,
        prev: entry.and_then(|e| e.prev).map(|p| p.to_hex()),
        kind: entry.map(|e| e.body.kind().as_str()),
        hlc_ms: entry.map(|e| e.hlc.wall_ms),
        hlc_counter: entry.map(|e| e.hlc.counter),
        hlc_time: entry.map(|e| rfc3339_ms(e.hlc.wall_ms)),
        actor: entry.and_then(|e| e.actor.as_deref()),
        event_id: entry.and_then(|e| match &e.body {
            Body::EventChange(c) => Some(c.event.to_hex()),
            Body::MediaAttached(m) => Some(m.event.to_hex()),
            _ => None,
        }),
        held_id: row.held_id.map(|h| h.to_hex()),
        size: row.size,
        received_ms: row.at_ms,
        received: rfc3339_ms(row.at_ms),
        decode_error: row.entry.as_ref().err().map(String::as_str),
    };
    AuditLine {
        // A struct of strings and numbers always serializes.
        json: serde_json::to_string(&line).unwrap_or_default(),
        severity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(xmin: u64, xmax: u64, max: [i64; 3]) -> AuditObservation {
        AuditObservation {
            xmin,
            xmax,
            max: PerSource(max),
        }
    }

    #[test]
    fn positions_settle_once_older_transactions_end() {
        let mut h = Horizon::default();
        // The first look settles nothing: a transaction holding a lower
        // position may not have its id yet.
        assert_eq!(h.observe(&seen(100, 105, [10, 1, 0])), None);
        // Transaction 103 still runs at the second look: nothing yet.
        assert_eq!(h.observe(&seen(103, 110, [12, 1, 0])), None);
        // Everything below 110 ended: the first look's maxima are final,
        // and the second's wait for what runs below the third's next id.
        assert_eq!(
            h.observe(&seen(110, 112, [15, 2, 1])),
            Some(PerSource([10, 1, 0]))
        );
        assert_eq!(
            h.observe(&seen(112, 112, [15, 2, 1])),
            Some(PerSource([15, 2, 1]))
        );
        // An idle server: each look settles the one before.
        assert_eq!(
            h.observe(&seen(112, 112, [16, 2, 1])),
            Some(PerSource([15, 2, 1]))
        );
    }
}
