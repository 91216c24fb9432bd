//! Check 8 of a sensor push (the module doc of `push.rs`) and the store:
//! the chain as the store holds it now, the certificate, the new entries
//! in one apply, and the report for the sensor.
//!
//! Never does: verify a signature or a certificate (`check.rs` did, and
//! a [`Verified`] is the proof).

use serde::Serialize;

use sentinel_schema::{
    check_link, AuthorId, ChainFault, EntryId, Head, Hlc, Link, SignedEntry, VerifiedEntry,
};

use super::check::Verified;
use super::error::{PushError, PushRefusal};
use crate::store::SyncStore;

/// What became of one entry of an accepted push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Added to the log.
    Stored,
    /// The store already held this very entry: nothing done.
    Duplicate,
}

/// One entry of an accepted push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushedEntry {
    pub seq: u64,
    #[serde(serialize_with = "as_hex")]
    pub id: EntryId,
    pub outcome: Outcome,
}

/// The answer to an accepted push: the body of the HTTP 200 answer, as
/// JSON (`docs/protocol.md` 3.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushReport {
    #[serde(serialize_with = "as_hex")]
    pub author: AuthorId,
    pub n_stored: usize,
    pub n_duplicates: usize,
    /// Every entry of the push, in push order.
    pub entries: Vec<PushedEntry>,
}

fn as_hex<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// An accepted push: the report for the sensor, and what the caller needs
/// afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub report: PushReport,
    /// The entries added to the log, in seq order: readings for rules
    /// ([`sentinel_schema::rules`]), the live feed and the views.
    pub stored: Vec<SignedEntry>,
    /// The newest HLC among them, for the local clock.
    pub max_hlc: Option<Hlc>,
    /// Whether the push's certificate was added to the store.
    pub certificate_stored: bool,
}

/// Check 8 of [`crate::push`] and the store: judges a [`super::verify`]ed push
/// against the chain `store` holds now (duplicates, forks, gaps, a wrong
/// `prev`), stores the certificate and applies the new entries, all or
/// nothing. Run it under the store's single writer; the store may have
/// changed since [`super::verify`] (other pushes, sync sessions): the chain is
/// read here, not there.
pub fn apply<S: SyncStore>(
    store: &mut S,
    verified: Verified,
    now_ms: u64,
) -> Result<Accepted, PushError<S::Error>> {
    let author = verified.author;
    let head = store.head(&author).map_err(PushError::Store)?;
    let head_seq = head.map_or(0, |h| h.seq);
    let refused = |index: usize, e: &SignedEntry, refusal| PushError::Refused {
        index,
        author,
        seq: e.seq(),
        id: e.id(),
        refusal: Box::new(refusal),
        head_seq,
    };

    // The chain against the store.
    let mut tip = head;
    let mut outcomes = Vec::with_capacity(verified.entries.len());
    for (index, e) in verified.entries.iter().enumerate() {
        let outcome = match head {
            Some(h) if e.seq() <= h.seq => {
                let held = store
                    .entries_after(&author, e.seq() - 1, 1, usize::MAX)
                    .map_err(PushError::Store)?
                    .into_iter()
                    .next()
                    .filter(|held| held.seq() == e.seq());
                match held {
                    None => return Err(refused(index, e, PushRefusal::MissingBelowHead(e.seq()))),
                    Some(held) if held.id() == e.id() => Outcome::Duplicate,
                    Some(held) => {
                        // Evidence: apply records it and appends nothing.
                        let report = store
                            .apply(vec![e.clone()], now_ms)
                            .map_err(PushError::Store)?;
                        if report.forks.len() != 1 {
                            return Err(PushError::StoreChanged(format!(
                                "seq {} was a fork when checked, the store's apply says {report:?}",
                                e.seq()
                            )));
                        }
                        let fault = ChainFault::Fork { other: held.id() };
                        return Err(refused(index, e, PushRefusal::Chain(fault)));
                    }
                }
            }
            _ => match check_link(tip, e) {
                Ok(Link::Next) => {
                    tip = Some(Head {
                        seq: e.seq(),
                        id: e.id(),
                    });
                    Outcome::Stored
                }
                // Seqs ascend by one from above the head: cannot happen.
                Ok(Link::AlreadyHeld) => {
                    return Err(refused(index, e, PushRefusal::MissingBelowHead(e.seq())))
                }
                Err(fault) => return Err(refused(index, e, PushRefusal::Chain(fault))),
            },
        };
        outcomes.push(outcome);
    }

    // Accepted: the certificate first, so the store never holds entries
    // of an author without its certificate.
    let mut certificate_stored = false;
    if let Some(der) = verified.certificate {
        if store
            .certificate(&author)
            .map_err(PushError::Store)?
            .is_none()
        {
            store
                .add_certificates(vec![(author, der)])
                .map_err(PushError::Store)?;
            certificate_stored = true;
        }
    }

    let entries: Vec<PushedEntry> = verified
        .entries
        .iter()
        .zip(&outcomes)
        .map(|(e, outcome)| PushedEntry {
            seq: e.seq(),
            id: e.id(),
            outcome: *outcome,
        })
        .collect();
    let new: Vec<VerifiedEntry> = verified
        .entries
        .into_iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o == Outcome::Stored)
        .map(|(e, _)| e)
        .collect();
    let n_new = new.len();
    let stored: Vec<SignedEntry> = new.iter().map(|e| e.signed().clone()).collect();
    let mut max_hlc = None;
    if n_new > 0 {
        let report = store.apply(new, now_ms).map_err(PushError::Store)?;
        if report.applied != n_new || !report.forks.is_empty() || !report.quarantined.is_empty() {
            return Err(PushError::StoreChanged(format!(
                "{n_new} entries were to be applied, the store's apply says {report:?}"
            )));
        }
        max_hlc = report.max_hlc;
    }
    Ok(Accepted {
        report: PushReport {
            author,
            n_stored: n_new,
            n_duplicates: outcomes.len() - n_new,
            entries,
        },
        stored,
        max_hlc,
        certificate_stored,
    })
}
