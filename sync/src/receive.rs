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
//! Checks 1 and 2 need no store and no session state: they are made by
//! [`CheckedBatch::check`], which a driver may run on another thread while
//! the batch before commits (`Session::prepare`); 3–8 run in frame order.
//!
//! An entry refused at 2–7 is quarantined, and later entries of the same
//! author in this session are skipped: they could not link. They are not
//! acknowledged, so the sender still has them.
//!
//! The checks themselves are `verify.rs`'s; this file turns their verdicts
//! into quarantine, events and acknowledgements, and learns the
//! certificates and revocation lists a peer sends.

use std::collections::BTreeMap;

use sentinel_schema::{AuthorId, Body, EntryId, Head, Revocation, SignedEntry};

use crate::context::{store_fault, Ctx, Fault, SessionEvent};
use crate::exchange::Exchange;
use crate::message::{CloseCode, Message};
use crate::reject::Rejection;
use crate::store::SyncStore;
use crate::verify::{CheckedBatch, Refusal};

/// Verifies a revocation list from the peer; stores and uses it if it is
/// newer than the one in force.
pub(crate) fn learn_revocation_list<S: SyncStore>(
    bytes: Vec<u8>,
    store: &mut S,
    ctx: &mut Ctx<'_>,
) -> Result<(), Fault> {
    let list = ctx
        .config
        .trust
        .verify_revocation_list(&bytes)
        .map_err(|why| Fault::Peer(CloseCode::BadRevocationList, why))?;
    if list.number > ctx.verifier.revocations.number {
        store.set_revocation_list(bytes).map_err(store_fault)?;
        ctx.out.event(SessionEvent::RevocationListLearned {
            number: list.number,
        });
        ctx.verifier.revocations = list;
    }
    Ok(())
}

impl Exchange {
    /// Certificates from the peer: verified and stored, each one refused
    /// reported as an event.
    pub(crate) fn on_certificates<S: SyncStore>(
        &mut self,
        certs: Vec<(AuthorId, Vec<u8>)>,
        store: &mut S,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), Fault> {
        let refused = ctx
            .verifier
            .on_certificates(certs, store, &*ctx.config.trust)
            .map_err(store_fault)?;
        for (author, reason) in refused {
            ctx.out
                .event(SessionEvent::CertificateRefused { author, reason });
        }
        Ok(())
    }

    /// One batch from the peer, decoded and signature-checked
    /// ([`CheckedBatch::check`]): the stateful checks, quarantine, apply,
    /// acknowledge.
    pub(crate) fn on_entries<S: SyncStore>(
        &mut self,
        batch: CheckedBatch,
        store: &mut S,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), Fault> {
        ctx.out.stats.entries_received += batch.n_raw as u64;
        let (good, bad) = batch
            .verdicts
            .map_err(|why| Fault::Peer(CloseCode::BadEntry, why))?;
        // Every author in the batch, with the highest seq the peer sent.
        let mut authors: BTreeMap<AuthorId, u64> = BTreeMap::new();
        for e in good
            .iter()
            .map(|e| &**e)
            .chain(bad.iter().map(|r| &r.entry))
        {
            let s = authors.entry(e.author()).or_insert(0);
            *s = (*s).max(e.seq());
        }

        let mut rejected: Vec<Rejection> = Vec::new();
        for r in bad {
            self.refuse(&r.entry);
            rejected.push(Refusal::Signature(r.error).reject(r.entry));
        }
        let mut passing = Vec::with_capacity(good.len());
        for e in good {
            let trust = &*ctx.config.trust;
            let info = ctx
                .verifier
                .author(e.author(), store, trust)
                .map_err(store_fault)?;
            match ctx.verifier.check(&e, info, trust) {
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
                ctx.verifier
                    .note_revocation_entry(revocation.key, revocation.last_valid_seq);
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
