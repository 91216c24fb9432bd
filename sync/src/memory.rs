//! [`MemoryStore`]: the in-memory [`SyncStore`], for tests and the
//! simulator. It keeps what the trait promises (a gap-free log per author,
//! heads, forks as evidence, a quarantine, certificates, the revocation
//! list) and, optionally, a view: one Automerge [`EventDoc`] per event,
//! fed with every applied event change, so tests can compare what two
//! stores would show.
//!
//! `apply` is atomic because nothing in it can fail half-way: the only
//! failure is the injected one ([`MemoryStore::fail_next_apply`]), which
//! happens before anything is touched. "Durable" means "kept in this
//! value": a simulated crash drops sessions, never the store.

use std::collections::BTreeMap;

use sentinel_schema::{
    check_link, AuthorId, Body, ChainFault, EntryId, EventDoc, EventError, EventId, EventView,
    Head, Heads, Link, SignedEntry, VerifiedEntry,
};

use crate::checkpoint::{Attestation, Attested};
use crate::reject::{RejectReason, Rejection};
use crate::store::{ApplyReport, SyncStore};

/// Why a [`MemoryStore`] call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryStoreError {
    /// A failure a test asked for ([`MemoryStore::fail_next_apply`]);
    /// nothing of the batch was applied.
    #[error("injected failure: nothing was applied")]
    Injected,
    /// A local entry does not extend its author's chain.
    #[error("local entry does not extend the chain: {0}")]
    LocalChain(ChainFault),
}

/// An entry that failed verification or a chain check, with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantinedEntry {
    pub entry: SignedEntry,
    pub reason: RejectReason,
    /// The reason in words.
    pub detail: String,
    pub at_ms: u64,
}

/// The second entry seen at an author's seq, kept as evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct ForkEvidence {
    pub entry: SignedEntry,
    /// The id of the entry the log holds at that seq.
    pub held: EntryId,
    pub at_ms: u64,
}

/// The optional event view.
#[derive(Debug, Clone, Default)]
struct EventViews {
    docs: BTreeMap<EventId, EventDoc>,
    /// Changes Automerge refused, with why (they stay in the log).
    errors: Vec<(EntryId, String)>,
}

impl EventViews {
    /// Applies the event changes among `entries`, one batch per event.
    fn apply<'a>(&mut self, entries: impl Iterator<Item = &'a SignedEntry>) {
        let mut changes: BTreeMap<EventId, Vec<(EntryId, &[u8])>> = BTreeMap::new();
        for e in entries {
            if let Body::EventChange(c) = &e.entry().body {
                changes
                    .entry(c.event)
                    .or_default()
                    .push((e.id(), &c.change));
            }
        }
        for (event, list) in changes {
            let doc = match self.docs.get_mut(&event) {
                Some(doc) => doc,
                None => match EventDoc::from_changes(&[]) {
                    Ok(doc) => self.docs.entry(event).or_insert(doc),
                    Err(e) => {
                        self.errors
                            .extend(list.iter().map(|(id, _)| (*id, e.to_string())));
                        continue;
                    }
                },
            };
            let bytes: Vec<&[u8]> = list.iter().map(|(_, c)| *c).collect();
            if doc.apply_changes(&bytes).is_ok() {
                continue;
            }
            // The batch is all or nothing: find the change(s) at fault.
            for (id, change) in &list {
                if let Err(e) = doc.apply_changes(&[change]) {
                    self.errors.push((*id, e.to_string()));
                }
            }
        }
    }
}

/// The in-memory store.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    logs: BTreeMap<AuthorId, Vec<SignedEntry>>,
    forks: Vec<ForkEvidence>,
    quarantine: BTreeMap<EntryId, QuarantinedEntry>,
    certificates: BTreeMap<AuthorId, Vec<u8>>,
    revocation_list: Option<Vec<u8>>,
    events: Option<EventViews>,
    fail_next_apply: bool,
}

impl MemoryStore {
    /// A store without the event view.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store that also keeps an [`EventDoc`] per event.
    pub fn with_event_view() -> MemoryStore {
        MemoryStore {
            events: Some(EventViews::default()),
            ..MemoryStore::default()
        }
    }

    /// Appends an entry this device wrote (signed with its own key): no
    /// verification, but it must extend the author's chain.
    pub fn append_local(&mut self, entry: SignedEntry) -> Result<(), MemoryStoreError> {
        let log = self.logs.entry(entry.author()).or_default();
        let tip = log.last().map(|e| Head {
            seq: e.seq(),
            id: e.id(),
        });
        match check_link(tip, &entry) {
            Ok(Link::Next) => {}
            Ok(Link::AlreadyHeld) => {
                return Err(MemoryStoreError::LocalChain(ChainFault::Duplicate));
            }
            Err(fault) => return Err(MemoryStoreError::LocalChain(fault)),
        }
        if let Some(views) = &mut self.events {
            views.apply(std::iter::once(&entry));
        }
        log.push(entry);
        Ok(())
    }

    /// The author's log, from seq 1.
    pub fn log(&self, author: &AuthorId) -> &[SignedEntry] {
        self.logs.get(author).map_or(&[], Vec::as_slice)
    }

    /// Every entry held, all authors.
    pub fn n_entries(&self) -> usize {
        self.logs.values().map(Vec::len).sum()
    }

    pub fn forks(&self) -> &[ForkEvidence] {
        &self.forks
    }

    pub fn quarantined(&self) -> impl Iterator<Item = &QuarantinedEntry> {
        self.quarantine.values()
    }

    /// The event's document, if the view is on and the event is known.
    pub fn event_doc(&self, event: &EventId) -> Option<&EventDoc> {
        self.events.as_ref()?.docs.get(event)
    }

    /// The events the view knows, in id order.
    pub fn event_ids(&self) -> Vec<EventId> {
        self.events
            .as_ref()
            .map_or_else(Vec::new, |v| v.docs.keys().copied().collect())
    }

    /// Every event's view (empty when the view is off).
    pub fn event_views(&self) -> BTreeMap<EventId, Result<EventView, EventError>> {
        self.events.as_ref().map_or_else(BTreeMap::new, |v| {
            v.docs.iter().map(|(id, doc)| (*id, doc.view())).collect()
        })
    }

    /// Event changes Automerge refused, with why.
    pub fn view_errors(&self) -> &[(EntryId, String)] {
        self.events.as_ref().map_or(&[], |v| v.errors.as_slice())
    }

    /// Makes the next [`SyncStore::apply`] fail before it changes anything.
    pub fn fail_next_apply(&mut self) {
        self.fail_next_apply = true;
    }

    /// Withdraws a failure asked for with [`MemoryStore::fail_next_apply`].
    pub fn clear_injected_failure(&mut self) {
        self.fail_next_apply = false;
    }
}

impl SyncStore for MemoryStore {
    type Error = MemoryStoreError;

    fn heads(&self) -> Result<Heads, MemoryStoreError> {
        Ok(self
            .logs
            .iter()
            .filter_map(|(a, log)| {
                log.last().map(|e| {
                    (
                        *a,
                        Head {
                            seq: e.seq(),
                            id: e.id(),
                        },
                    )
                })
            })
            .collect())
    }

    fn head(&self, author: &AuthorId) -> Result<Option<Head>, MemoryStoreError> {
        Ok(self.log(author).last().map(|e| Head {
            seq: e.seq(),
            id: e.id(),
        }))
    }

    fn entries_after(
        &self,
        author: &AuthorId,
        after: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<SignedEntry>, MemoryStoreError> {
        let log = self.log(author);
        let start = usize::try_from(after).unwrap_or(usize::MAX).min(log.len());
        let mut out = Vec::new();
        let mut total = 0usize;
        for e in log[start..].iter().take(max_entries) {
            let len = e.as_bytes().len();
            if !out.is_empty() && total + len > max_bytes {
                break;
            }
            total += len;
            out.push(e.clone());
        }
        Ok(out)
    }

    fn apply(
        &mut self,
        mut entries: Vec<VerifiedEntry>,
        now_ms: u64,
    ) -> Result<ApplyReport, MemoryStoreError> {
        if std::mem::take(&mut self.fail_next_apply) {
            return Err(MemoryStoreError::Injected);
        }
        entries.sort_by_key(|e| (e.author(), e.seq()));
        let mut report = ApplyReport::default();
        let mut applied: Vec<(AuthorId, usize)> = Vec::new();
        for e in entries {
            let e = e.into_signed();
            let author = e.author();
            let log = self.logs.entry(author).or_default();
            let tip = log.last().map(|t| Head {
                seq: t.seq(),
                id: t.id(),
            });
            match check_link(tip, &e) {
                Ok(Link::Next) => {
                    let hlc = e.entry().hlc;
                    report.max_hlc = Some(report.max_hlc.map_or(hlc, |m| m.max(hlc)));
                    report.applied += 1;
                    self.quarantine.remove(&e.id());
                    applied.push((author, log.len()));
                    log.push(e);
                }
                Ok(Link::AlreadyHeld) => {
                    // seq <= the tip's seq and >= 1: the index is in range.
                    let held = log[(e.seq() - 1) as usize].id();
                    if held == e.id() {
                        report.duplicates += 1;
                    } else {
                        report.forks.push((author, e.seq(), e.id()));
                        if !self.forks.iter().any(|f| f.entry.id() == e.id()) {
                            self.forks.push(ForkEvidence {
                                entry: e,
                                held,
                                at_ms: now_ms,
                            });
                        }
                    }
                }
                Err(fault) => {
                    let rejection = Rejection::chain(e, &fault);
                    report.quarantined.push(rejection.quarantined());
                    self.quarantine.insert(
                        rejection.entry.id(),
                        QuarantinedEntry {
                            entry: rejection.entry,
                            reason: rejection.reason,
                            detail: rejection.detail,
                            at_ms: now_ms,
                        },
                    );
                }
            }
        }
        if let Some(views) = &mut self.events {
            let logs = &self.logs;
            views.apply(applied.iter().map(|(a, i)| &logs[a][*i]));
        }
        Ok(report)
    }

    fn quarantine(
        &mut self,
        rejected: Vec<Rejection>,
        now_ms: u64,
    ) -> Result<(), MemoryStoreError> {
        for Rejection {
            entry,
            reason,
            detail,
        } in rejected
        {
            self.quarantine
                .entry(entry.id())
                .or_insert(QuarantinedEntry {
                    entry,
                    reason,
                    detail,
                    at_ms: now_ms,
                });
        }
        Ok(())
    }

    fn certificate(&self, author: &AuthorId) -> Result<Option<Vec<u8>>, MemoryStoreError> {
        Ok(self.certificates.get(author).cloned())
    }

    fn add_certificates(
        &mut self,
        certificates: Vec<(AuthorId, Vec<u8>)>,
    ) -> Result<(), MemoryStoreError> {
        self.certificates.extend(certificates);
        Ok(())
    }

    fn revocation_list(&self) -> Result<Option<Vec<u8>>, MemoryStoreError> {
        Ok(self.revocation_list.clone())
    }

    fn set_revocation_list(&mut self, bytes: Vec<u8>) -> Result<(), MemoryStoreError> {
        self.revocation_list = Some(bytes);
        Ok(())
    }

    /// Read from the log on every call: the checkpoint entries it holds.
    fn attestations(&self) -> Result<Vec<Attestation>, MemoryStoreError> {
        let mut attested = Attested::default();
        for (hub, log) in &self.logs {
            for e in log {
                if let Body::HubCheckpoint(c) = &e.entry().body {
                    attested.learn(*hub, c);
                }
            }
        }
        Ok(attested.iter().collect())
    }
}
