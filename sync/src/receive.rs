//! Receiving a batch: verify everything, quarantine what fails with the
//! reason, apply the rest in one store transaction, then acknowledge with
//! the committed heads (invariants 3 and 4).
//!
//! Checks, in order, for every entry:
//! 1. it decodes as a signed entry (else the session closes: the bytes
//!    cannot even be quarantined under an author);
//! 2. its signature, in one batch verification for the whole batch;
//! 3. its author's certificate is known (stored, or sent in this session)
//!    and valid at the entry's HLC time;
//! 4. the revocation list, and the revocation entries of hubs, keep its
//!    seq valid (the stricter of the two);
//! 5. its author's role may write its body kind;
//! 6. an event change's Automerge actor is its author;
//! 7. no hub checkpoint attests another entry at its position;
//! 8. chain continuity, forks and duplicates: the store, in `apply`.
//!
//! An entry refused at 2–7 is quarantined, and later entries of the same
//! author in this session are skipped: they could not link. They are not
//! acknowledged, so the sender still has them.

use std::collections::BTreeMap;

use sentinel_schema::{
    check_change, verify_all, AuthorId, Body, BodyKind, DeviceRole, Entry, EntryId, EventError,
    Head, Revocation, SignedEntry, VerifyError,
};

use crate::checkpoint::{Attested, Breach};
use crate::exchange::Exchange;
use crate::message::{CloseCode, Message};
use crate::reject::{RejectReason, Rejection};
use crate::session::{store_fault, Ctx, Fault, Outbox, SessionConfig, SessionEvent};
use crate::store::SyncStore;
use crate::trust::{AuthorInfo, Revocations};

/// Why the session refused an entry before it reached the store.
/// [`Refusal::reason`] is what the quarantine keeps.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The signature does not verify, or the author is not a usable key.
    #[error(transparent)]
    Signature(VerifyError),
    /// No valid certificate is known for the author.
    #[error("no valid certificate is known for author {0}")]
    UnknownAuthor(AuthorId),
    /// The author's certificate does not cover the entry's HLC time.
    #[error("the certificate of {author} is not valid at {wall_ms} (valid {not_before_ms}..={not_after_ms})")]
    CertificateNotValid {
        author: AuthorId,
        wall_ms: u64,
        not_before_ms: u64,
        not_after_ms: u64,
    },
    /// The revocation list, or a hub's revocation entry, ends the author's
    /// valid entries before this seq.
    #[error("author {author} is revoked: seq {seq} is after the last valid seq {last_valid_seq}")]
    Revoked {
        author: AuthorId,
        seq: u64,
        last_valid_seq: u64,
    },
    /// The author's role may not write this kind of entry.
    #[error("a {role} may not write {} entries", kind.as_str())]
    RoleNotAllowed { role: DeviceRole, kind: BodyKind },
    /// An event change that does not decode, or whose Automerge actor is
    /// not the entry's author.
    #[error("event change: {0}")]
    BadChange(EventError),
    /// A hub checkpoint attests another entry at this entry's position.
    #[error("{0}")]
    ContradictsCheckpoint(Box<Breach>),
}

impl Refusal {
    /// Why, as the quarantine keeps it.
    pub fn reason(&self) -> RejectReason {
        match self {
            Refusal::Signature(e) => RejectReason::from(e),
            Refusal::UnknownAuthor(_) => RejectReason::UnknownAuthor,
            Refusal::CertificateNotValid { .. } => RejectReason::CertificateNotValid,
            Refusal::Revoked { .. } => RejectReason::Revoked,
            Refusal::RoleNotAllowed { .. } => RejectReason::RoleNotAllowed,
            Refusal::BadChange(_) => RejectReason::BadChange,
            Refusal::ContradictsCheckpoint(_) => RejectReason::ContradictsCheckpoint,
        }
    }

    /// The stable quarantine code: [`RejectReason::code`] of
    /// [`Refusal::reason`].
    pub fn code(&self) -> &'static str {
        self.reason().code()
    }

    /// The entry, refused for this.
    pub(crate) fn reject(&self, entry: SignedEntry) -> Rejection {
        Rejection {
            entry,
            reason: self.reason(),
            detail: self.to_string(),
        }
    }
}

/// The trust state of a session: the revocation list in force, the
/// revocation entries applied in this session and the authors whose
/// certificates have been verified.
#[derive(Debug, Default)]
pub(crate) struct Verifier {
    pub(crate) revocations: Revocations,
    /// Last valid seqs from hub `revocation` entries this session applied,
    /// the strictest per author. Those the driver already held come from
    /// [`crate::TrustAnchor::entry_revocation`].
    applied_revocations: BTreeMap<AuthorId, u64>,
    /// Verified certificates; `None` when none is known (cached misses).
    authors: BTreeMap<AuthorId, Option<AuthorInfo>>,
    /// Heads the store's hub checkpoints attest, read when the session
    /// started.
    pub(crate) attested: Attested,
}

impl Verifier {
    fn author<S: SyncStore>(
        &mut self,
        author: AuthorId,
        store: &S,
        config: &SessionConfig,
    ) -> Result<Option<AuthorInfo>, Fault> {
        if let Some(info) = self.authors.get(&author) {
            return Ok(*info);
        }
        let info = match store.certificate(&author).map_err(store_fault)? {
            Some(der) => config
                .trust
                .stored_certificate(&der)
                .ok()
                .filter(|info| info.author == author),
            None => None,
        };
        self.authors.insert(author, info);
        Ok(info)
    }

    /// The last valid seq of `author`, if revoked: the strictest of the
    /// list, the driver's entry revocations and those applied here.
    fn last_valid_seq(&self, author: &AuthorId, config: &SessionConfig) -> Option<u64> {
        [
            self.revocations.last_valid_seq(author),
            config.trust.entry_revocation(author),
            self.applied_revocations.get(author).copied(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Checks 3–7 of the module doc for one signature-checked entry.
    fn check(
        &self,
        e: &SignedEntry,
        info: Option<AuthorInfo>,
        config: &SessionConfig,
    ) -> Result<(), Refusal> {
        let entry = e.entry();
        check_author(entry, info, self.last_valid_seq(&entry.author, config))?;
        if let Body::EventChange(change) = &entry.body {
            check_change(&entry.author, &change.change).map_err(Refusal::BadChange)?;
        }
        if let Some(breach) = self.attested.check_entry(entry.author, entry.seq, e.id()) {
            return Err(Refusal::ContradictsCheckpoint(Box::new(breach)));
        }
        Ok(())
    }

    /// Verifies certificates from the peer and stores those the store
    /// lacks. One that fails is reported and left out; the entries of its
    /// author will be quarantined as `unknown_author`.
    pub(crate) fn on_certificates<S: SyncStore>(
        &mut self,
        certs: Vec<(AuthorId, Vec<u8>)>,
        store: &mut S,
        config: &SessionConfig,
        out: &mut Outbox,
    ) -> Result<(), Fault> {
        let mut new = Vec::new();
        for (author, der) in certs {
            if matches!(self.authors.get(&author), Some(Some(_))) {
                continue;
            }
            match config.trust.verify_certificate(&der) {
                Ok(info) if info.author == author => {
                    if store.certificate(&author).map_err(store_fault)?.is_none() {
                        new.push((author, der));
                    }
                    self.authors.insert(author, Some(info));
                }
                Ok(info) => out.event(SessionEvent::CertificateRefused {
                    author,
                    reason: format!("the certificate is for {}", info.author),
                }),
                Err(reason) => out.event(SessionEvent::CertificateRefused { author, reason }),
            }
        }
        if !new.is_empty() {
            store.add_certificates(new).map_err(store_fault)?;
        }
        Ok(())
    }

    /// Verifies a revocation list from the peer; stores and uses it if it
    /// is newer than ours.
    pub(crate) fn learn_revocation_list<S: SyncStore>(
        &mut self,
        bytes: Vec<u8>,
        store: &mut S,
        config: &SessionConfig,
        out: &mut Outbox,
    ) -> Result<(), Fault> {
        let list = config
            .trust
            .verify_revocation_list(&bytes)
            .map_err(|why| Fault::Peer(CloseCode::BadRevocationList, why))?;
        if list.number > self.revocations.number {
            store.set_revocation_list(bytes).map_err(store_fault)?;
            out.event(SessionEvent::RevocationListLearned {
                number: list.number,
            });
            self.revocations = list;
        }
        Ok(())
    }
}

/// Checks 3–5 of the module doc for one entry: a certificate is known
/// and valid at the entry's HLC time, revocation keeps its seq valid
/// (`last_valid_seq`: the strictest that applies), and the author's role
/// may write its body kind. Shared with sensor push ([`crate::push`]).
pub(crate) fn check_author(
    entry: &Entry,
    info: Option<AuthorInfo>,
    last_valid_seq: Option<u64>,
) -> Result<(), Refusal> {
    let info = info.ok_or(Refusal::UnknownAuthor(entry.author))?;
    if !info.valid_at(entry.hlc.wall_ms) {
        return Err(Refusal::CertificateNotValid {
            author: entry.author,
            wall_ms: entry.hlc.wall_ms,
            not_before_ms: info.not_before_ms,
            not_after_ms: info.not_after_ms,
        });
    }
    if let Some(last_valid_seq) = last_valid_seq {
        if entry.seq > last_valid_seq {
            return Err(Refusal::Revoked {
                author: entry.author,
                seq: entry.seq,
                last_valid_seq,
            });
        }
    }
    let kind = entry.body.kind();
    if !info.role.may_write(kind) {
        return Err(Refusal::RoleNotAllowed {
            role: info.role,
            kind,
        });
    }
    Ok(())
}

impl Exchange {
    /// One batch from the peer: verify, quarantine, apply, acknowledge.
    pub(crate) fn on_entries<S: SyncStore>(
        &mut self,
        raw: Vec<Vec<u8>>,
        store: &mut S,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), Fault> {
        ctx.out.stats.entries_received += raw.len() as u64;
        let mut entries = Vec::with_capacity(raw.len());
        for (i, bytes) in raw.into_iter().enumerate() {
            let e = SignedEntry::from_bytes(bytes).map_err(|err| {
                Fault::Peer(
                    CloseCode::BadEntry,
                    format!("entry {i} of the batch: {err}"),
                )
            })?;
            entries.push(e);
        }
        // Every author in the batch, with the highest seq the peer sent.
        let mut authors: BTreeMap<AuthorId, u64> = BTreeMap::new();
        for e in &entries {
            let s = authors.entry(e.author()).or_insert(0);
            *s = (*s).max(e.seq());
        }

        let mut rejected: Vec<Rejection> = Vec::new();
        let (good, bad) = verify_all(entries);
        for r in bad {
            self.refuse(&r.entry);
            rejected.push(Refusal::Signature(r.error).reject(r.entry));
        }
        let mut passing = Vec::with_capacity(good.len());
        for e in good {
            let info = ctx.verifier.author(e.author(), store, ctx.config)?;
            match ctx.verifier.check(&e, info, ctx.config) {
                Ok(()) => passing.push(e),
                Err(refusal) => {
                    if let Refusal::ContradictsCheckpoint(breach) = &refusal {
                        ctx.out.event(SessionEvent::CheckpointBreach(**breach));
                    }
                    self.refuse(&e);
                    rejected.push(refusal.reject(e.into_signed()));
                }
            }
        }
        let (accepted, skipped): (Vec<_>, Vec<_>) = passing.into_iter().partition(|e| {
            self.refused_from
                .get(&e.author())
                .is_none_or(|from| e.seq() <= *from)
        });
        ctx.out.stats.entries_skipped += skipped.len() as u64;

        if !rejected.is_empty() {
            ctx.out.stats.entries_quarantined += rejected.len() as u64;
            for r in &rejected {
                ctx.out.event(SessionEvent::Quarantined {
                    id: r.entry.id(),
                    reason: r.reason,
                    detail: r.detail.clone(),
                });
            }
            store
                .quarantine(rejected, ctx.now_ms)
                .map_err(store_fault)?;
        }

        if !accepted.is_empty() {
            let ids: BTreeMap<EntryId, (AuthorId, u64)> = accepted
                .iter()
                .map(|e| (e.id(), (e.author(), e.seq())))
                .collect();
            // Passed the role check, so written by a hub.
            let revocations: Vec<(EntryId, AuthorId, Revocation)> = accepted
                .iter()
                .filter_map(|e| match &e.entry().body {
                    Body::Revocation(r) => Some((e.id(), e.author(), r.clone())),
                    _ => None,
                })
                .collect();
            let report = store.apply(accepted, ctx.now_ms).map_err(store_fault)?;
            for (author, seq, _) in &report.forks {
                ctx.out.event(SessionEvent::Fork {
                    author: *author,
                    seq: *seq,
                });
            }
            for q in &report.quarantined {
                if let Some((author, seq)) = ids.get(&q.id) {
                    let from = self.refused_from.entry(*author).or_insert(*seq);
                    *from = (*from).min(*seq);
                }
                ctx.out.event(SessionEvent::Quarantined {
                    id: q.id,
                    reason: q.reason,
                    detail: q.detail.clone(),
                });
            }
            let stats = &mut ctx.out.stats;
            stats.entries_applied += report.applied as u64;
            stats.duplicates += report.duplicates as u64;
            stats.entries_quarantined += report.quarantined.len() as u64;
            if report.applied > 0 {
                ctx.out.event(SessionEvent::Applied {
                    n_entries: report.applied,
                    max_hlc: report.max_hlc,
                });
            }
            for (id, by, revocation) in revocations {
                // Duplicates count too: the store holds them either way.
                if report.quarantined.iter().any(|q| q.id == id) {
                    continue;
                }
                let last = ctx
                    .verifier
                    .applied_revocations
                    .entry(revocation.key)
                    .or_insert(revocation.last_valid_seq);
                *last = (*last).min(revocation.last_valid_seq);
                ctx.out
                    .event(SessionEvent::RevocationEntryApplied { by, revocation });
            }
        }

        // Acknowledge with the heads as committed, for every author in the
        // batch; the sender resumes from these.
        let mut ack = Vec::with_capacity(authors.len());
        for (author, seq) in authors {
            let head = store.head(&author).map_err(store_fault)?.unwrap_or(Head {
                seq: 0,
                id: EntryId([0; 32]),
            });
            ack.push((author, head));
            self.peer_holds(author, seq);
        }
        ctx.out.send(&Message::Ack(ack));
        ctx.out.progress();
        Ok(())
    }

    fn refuse(&mut self, e: &SignedEntry) {
        let from = self.refused_from.entry(e.author()).or_insert(e.seq());
        *from = (*from).min(e.seq());
    }
}
