//! Whether an entry from a peer may be kept: [`Refusal`] (why not, with
//! its [`RejectReason`]), the per-entry author checks sessions and sensor
//! push share ([`check_author`]), and a session's trust state
//! ([`Verifier`]: the revocation list in force, revocation entries applied,
//! certificates verified, hub checkpoints held).
//!
//! Checks 1–2 of `receive.rs` ([`CheckedBatch`], stateless, for a driver
//! to run ahead on another thread) and 3–7 are made here. Never does: touch a session's
//! outbox or frames (`receive.rs` turns verdicts into events and
//! quarantine), or write to a store beyond the certificates it verified.

use std::collections::BTreeMap;

use sentinel_schema::{
    check_change, verify_all, AuthorId, Body, BodyKind, DeviceRole, Entry, EventError, Rejected,
    SignedEntry, VerifiedEntry, VerifyError,
};

use crate::checkpoint::{Attested, Breach};
use crate::reject::{RejectReason, Rejection};
use crate::store::SyncStore;
use crate::trust::{AuthorInfo, Revocations, TrustAnchor};

/// A batch of entries from the peer, decoded and signature-checked: checks
/// 1 and 2, which need no store and no session state, so that a driver
/// can make them on another thread while the batch before commits. The
/// rest (`receive.rs`) runs in frame order under the store.
#[derive(Debug)]
pub(crate) struct CheckedBatch {
    /// Entries the peer sent.
    pub(crate) n_raw: usize,
    /// Those whose signature verifies, those whose does not; or why an
    /// entry does not even decode (the session closes: check 1).
    pub(crate) verdicts: Result<(Vec<VerifiedEntry>, Vec<Rejected>), String>,
}

impl CheckedBatch {
    /// Decodes every entry and verifies the signatures in one batch. Pure:
    /// no store, no clock, no session.
    pub(crate) fn check(raw: Vec<Vec<u8>>) -> CheckedBatch {
        let n_raw = raw.len();
        let decoded: Result<Vec<SignedEntry>, String> = raw
            .into_iter()
            .enumerate()
            .map(|(i, bytes)| {
                SignedEntry::from_bytes(bytes)
                    .map_err(|err| format!("entry {i} of the batch: {err}"))
            })
            .collect();
        CheckedBatch {
            n_raw,
            verdicts: decoded.map(verify_all),
        }
    }
}

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
    /// The verified certificate of `author`: one verified in this session,
    /// or the store's (checked against `trust`), or `None`.
    pub(crate) fn author<S: SyncStore>(
        &mut self,
        author: AuthorId,
        store: &S,
        trust: &dyn TrustAnchor,
    ) -> Result<Option<AuthorInfo>, S::Error> {
        if let Some(info) = self.authors.get(&author) {
            return Ok(*info);
        }
        let info = match store.certificate(&author)? {
            Some(der) => trust
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
    fn last_valid_seq(&self, author: &AuthorId, trust: &dyn TrustAnchor) -> Option<u64> {
        [
            self.revocations.last_valid_seq(author),
            trust.entry_revocation(author),
            self.applied_revocations.get(author).copied(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// A hub `revocation` entry this session applied: entries checked from
    /// now on are held to it.
    pub(crate) fn note_revocation_entry(&mut self, author: AuthorId, last_valid_seq: u64) {
        let last = self
            .applied_revocations
            .entry(author)
            .or_insert(last_valid_seq);
        *last = (*last).min(last_valid_seq);
    }

    /// Checks 3–7 of `receive.rs` for one signature-checked entry.
    pub(crate) fn check(
        &self,
        e: &SignedEntry,
        info: Option<AuthorInfo>,
        trust: &dyn TrustAnchor,
    ) -> Result<(), Refusal> {
        let entry = e.entry();
        check_author(entry, info, self.last_valid_seq(&entry.author, trust))?;
        if let Body::EventChange(change) = &entry.body {
            check_change(&entry.author, &change.change).map_err(Refusal::BadChange)?;
        }
        if let Some(breach) = self.attested.check_entry(entry.author, entry.seq, e.id()) {
            return Err(Refusal::ContradictsCheckpoint(Box::new(breach)));
        }
        Ok(())
    }

    /// Verifies certificates from the peer and stores those the store
    /// lacks. Returns the ones that fail, with why: they are left out, and
    /// the entries of their authors will be quarantined as
    /// `unknown_author`.
    pub(crate) fn on_certificates<S: SyncStore>(
        &mut self,
        certs: Vec<(AuthorId, Vec<u8>)>,
        store: &mut S,
        trust: &dyn TrustAnchor,
    ) -> Result<Vec<(AuthorId, String)>, S::Error> {
        let mut new = Vec::new();
        let mut refused = Vec::new();
        for (author, der) in certs {
            if matches!(self.authors.get(&author), Some(Some(_))) {
                continue;
            }
            match trust.verify_certificate(&der) {
                Ok(info) if info.author == author => {
                    if store.certificate(&author)?.is_none() {
                        new.push((author, der));
                    }
                    self.authors.insert(author, Some(info));
                }
                Ok(info) => {
                    refused.push((author, format!("the certificate is for {}", info.author)))
                }
                Err(reason) => refused.push((author, reason)),
            }
        }
        if !new.is_empty() {
            store.add_certificates(new)?;
        }
        Ok(refused)
    }
}

/// Checks 3–5 of `receive.rs` for one entry: a certificate is known
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
