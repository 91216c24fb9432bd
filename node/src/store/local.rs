//! Committing what this node wrote: its own entries appended to the log,
//! its head moved, and their views projected, in one transaction, so a
//! local write is visible to queries the moment it is acknowledged
//! (invariants 3 and 6).
//!
//! The node signs; the store commits. Nothing here signs or reads a key.

use sentinel_schema::{AuthorId, EntryId, EventId, Head, SignedEntry};

use super::project::{catch_up_in, project_entries, set_projected_upto, Projected};
use super::readings::record_rule_event;
use super::{log, Store, StoreError};

/// That a sensor rule raised the event of the entry being committed, kept
/// with it (`rule_events`) so de-duplication survives a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleEventRecord {
    pub rule: String,
    pub sensor: AuthorId,
    /// When the triggering reading was measured.
    pub measured_ms: u64,
    /// The triggering reading's entry.
    pub reading: EntryId,
    /// The event raised.
    pub event: EventId,
}

impl Store {
    /// The head of `author`'s chain, to sign the next entry after.
    pub fn head_of(&self, author: &AuthorId) -> Result<Option<Head>, StoreError> {
        log::head(self.conn(), author)
    }

    /// Whether the events view shows `event` (an import skips records
    /// whose id it already shows).
    pub fn shows_event(&self, event: EventId) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM events WHERE event = ?1)")?
            .query_row([event.0], |r| r.get(0))?)
    }

    /// Commits `entries` — signed by `author`, each extending its chain
    /// from the current head, in order — with their views and, when given,
    /// the rule event that raised them, in one transaction; returns what
    /// the views projected. Nothing is written when any part fails.
    pub fn commit_local(
        &mut self,
        author: &AuthorId,
        entries: &[SignedEntry],
        now_ms: u64,
        rule_event: Option<&RuleEventRecord>,
    ) -> Result<Projected, StoreError> {
        let Some(last) = entries.last() else {
            return Ok(Projected::default());
        };
        // Immediate: the write lock first, so nothing another process
        // appends can fall between the views' mark and these entries.
        let tx = self
            .conn_mut()
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut projected = catch_up_in(&tx)?;
        let mut rows = Vec::with_capacity(entries.len());
        for e in entries {
            let pos = log::insert_entry(&tx, e, true, now_ms)?;
            rows.push((pos, e));
        }
        log::set_head(
            &tx,
            author,
            Head {
                seq: last.seq(),
                id: last.id(),
            },
        )?;
        if let Some(r) = rule_event {
            for (_, e) in &rows {
                record_rule_event(
                    &tx,
                    &r.rule,
                    &r.sensor,
                    r.measured_ms,
                    &r.reading,
                    &r.event,
                    &e.id(),
                    now_ms,
                )?;
            }
        }
        projected.merge(project_entries(&tx, &rows)?);
        if let Some((pos, _)) = rows.last() {
            set_projected_upto(&tx, *pos)?;
        }
        tx.commit()?;
        Ok(projected)
    }
}
