//! Sensor push: entries a sensor sends in one HTTP request body
//! (`POST /api/v1/sensors/entries`, `docs/protocol.md` part 3), checked
//! and applied all or nothing. Pure: node and hub call [`receive`] from
//! their routes with their store, trust anchor, revocation list and clock
//! reading.
//!
//! Checks, in this order; the first that fails refuses the whole push and
//! nothing is stored (except fork evidence, below):
//! 1. the body decodes ([`decode`]): size, well-formedness, shape;
//! 2. every entry decodes as a signed entry (a NaN value, for one, does
//!    not);
//! 3. one author: every entry is by the same author;
//! 4. the certificate, if sent, verifies and is the author's;
//! 5. seqs ascend by one through the push;
//! 6. every signature, in one batch verification;
//! 7. per entry, the checks a sync session makes (certificate known and
//!    valid at the HLC time, revocation, role may write the kind), then:
//!    the author is a sensor, and neither `measured_ms` nor `hlc.wall_ms`
//!    is more than `max_future_ms` ahead of `now_ms`;
//! 8. the chain against the store: an entry the store holds is a
//!    duplicate (accepted, nothing to do); another entry at a held seq is
//!    a fork; a gap, a wrong `prev` or a first seq above 1 is refused.
//!
//! A fork is refused, but its entry is first handed to
//! [`SyncStore::apply`] on its own, which records it as evidence (the
//! entry held first stays): a fork proves the sensor's key signed two
//! histories, whoever sent it. Nothing else of that push is applied.
//!
//! When every check passes, the certificate is stored (if the store has
//! none for the author) and the new entries are applied in one
//! [`SyncStore::apply`]. Check 8 reads the store before that apply:
//! callers run it under the store's single writer, as they do for
//! sessions, so nothing changes in between. Should the apply report
//! anything but the new entries applied, the push answers
//! [`PushError::StoreChanged`].
//!
//! [`receive`] is two steps, which a caller may run apart: [`verify`]
//! (checks 1–7: no writer needed, only the author's stored certificate
//! and head, [`stored`]; the signatures make it the costly part) and
//! [`apply`] (check 8 and the store, under the writer). Between the two
//! the store may change: [`apply`] reads the chain itself, so a push
//! verified before another stored the same entries is judged a
//! duplicate, a fork or a gap against what is held when it applies. The
//! revocations are those [`verify`] was given: one learned in between
//! refuses the next push, not this one.

mod wire;

use serde::Serialize;

use sentinel_schema::{
    check_link, verify_all, AuthorId, Body, ChainFault, DecodeError, DeviceRole, EntryId, Head,
    Hlc, Link, SignedEntry, VerifiedEntry,
};

use crate::message::MessageError;
use crate::reject::RejectReason;
use crate::store::SyncStore;
use crate::trust::{AuthorInfo, Revocations, TrustAnchor};
use crate::verify::{check_author, Refusal};

pub use wire::{decode, encode, Push, MAX_PUSH_BYTES, MAX_PUSH_ENTRIES};

/// How far ahead of the receiver's clock a reading's `measured_ms` and
/// `hlc.wall_ms` may be, by default: five minutes. A sensor clock further
/// ahead is broken or lying, and its readings would sort after every
/// honest one.
pub const MAX_FUTURE_MS: u64 = 5 * 60 * 1000;

/// Why one entry of a push is refused. [`PushRefusal::code`] is the
/// problem code the HTTP answer carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushRefusal {
    /// A check a sync session makes too: signature, certificate, validity,
    /// revocation, role.
    #[error(transparent)]
    Check(Refusal),
    /// The author's certificate is not a sensor's: only sensors push.
    #[error("only sensors push entries here; the author is a {0}")]
    NotASensor(DeviceRole),
    /// The reading says it was measured too far in the future.
    #[error("measured_ms {measured_ms} is more than {max_future_ms} ms ahead of the receiver's clock ({now_ms})")]
    FutureMeasurement {
        measured_ms: u64,
        now_ms: u64,
        max_future_ms: u64,
    },
    /// The entry's HLC is too far in the future.
    #[error("hlc.wall_ms {wall_ms} is more than {max_future_ms} ms ahead of the receiver's clock ({now_ms})")]
    FutureClock {
        wall_ms: u64,
        now_ms: u64,
        max_future_ms: u64,
    },
    /// The push's seqs do not ascend by one.
    #[error("entries of a push must ascend by one seq: expected {expected}, found {found}")]
    OutOfOrder { expected: u64, found: u64 },
    /// The entry does not extend the chain the store holds: `gap`,
    /// `wrong_prev`, `not_starting_at_one`, or `fork` (another entry at a
    /// seq the store holds; kept as evidence).
    #[error("{0}")]
    Chain(ChainFault),
    /// The store's head is above this seq, but it holds no entry there.
    #[error("the store's head is above seq {0} but it holds no entry there")]
    MissingBelowHead(u64),
}

impl PushRefusal {
    /// The stable code (`docs/protocol.md` 3.7).
    pub fn code(&self) -> &'static str {
        match self {
            PushRefusal::Check(r) => r.code(),
            PushRefusal::NotASensor(_) => "role_not_allowed",
            PushRefusal::FutureMeasurement { .. } => "future_measurement",
            PushRefusal::FutureClock { .. } => "future_clock",
            PushRefusal::OutOfOrder { .. } => "out_of_order",
            PushRefusal::Chain(f) => f.code(),
            PushRefusal::MissingBelowHead(_) => RejectReason::MissingBelowHead.code(),
        }
    }
}

/// Why a push was refused. Nothing of it was stored, except the entry of
/// a fork as evidence ([`PushError::is_fork`]).
#[derive(Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError<E: std::error::Error + 'static> {
    /// The body is too large or does not decode as a push.
    #[error("push body: {0}")]
    Malformed(MessageError),
    /// An entry of the push does not decode as a signed entry.
    #[error("entry {index} of the push does not decode: {error}")]
    BadEntry { index: usize, error: DecodeError },
    /// Entries of two authors in one push.
    #[error("entry {index} is by {found}, the push's first entry by {expected}: one push carries one author")]
    MixedAuthors {
        index: usize,
        expected: AuthorId,
        found: AuthorId,
    },
    /// The certificate sent does not verify against the deployment CA.
    #[error("the certificate does not verify: {0}")]
    BadCertificate(String),
    /// The certificate sent is for another key than the entries' author.
    #[error("the certificate is for {certificate}, the entries are by {author}")]
    CertificateMismatch {
        certificate: AuthorId,
        author: AuthorId,
    },
    /// One entry is refused, so the whole push is.
    #[error("entry {index} (seq {seq}) is refused: {refusal}")]
    Refused {
        /// Position in the push, from 0.
        index: usize,
        author: AuthorId,
        seq: u64,
        id: EntryId,
        /// Boxed: keeps every `Result` carrying a `PushError` small.
        refusal: Box<PushRefusal>,
        /// The seq of the author's newest entry the receiver holds (0:
        /// none), so that a sensor refused for a `gap` knows where to
        /// resume.
        head_seq: u64,
    },
    /// The store failed; nothing of the push was applied.
    #[error("the store failed: {0}")]
    Store(#[source] E),
    /// The store's apply did not do what the checks before it planned
    /// (another writer changed the author's chain in between).
    #[error("the store changed while the push was applied: {0}")]
    StoreChanged(String),
}

impl<E: std::error::Error + 'static> PushError<E> {
    /// The stable code the HTTP answer carries (`docs/protocol.md` 3.7).
    pub fn code(&self) -> &'static str {
        match self {
            PushError::Malformed(MessageError::TooLarge { .. }) => "too_large",
            PushError::Malformed(_) => "malformed",
            PushError::BadEntry { .. } => "bad_entry",
            PushError::MixedAuthors { .. } => "mixed_authors",
            PushError::BadCertificate(_) | PushError::CertificateMismatch { .. } => {
                "bad_certificate"
            }
            PushError::Refused { refusal, .. } => refusal.code(),
            PushError::Store(_) => "store_failed",
            PushError::StoreChanged(_) => "store_changed",
        }
    }

    /// The HTTP status of the answer (`docs/protocol.md` 3.7).
    pub fn status(&self) -> u16 {
        match self.code() {
            "too_large" => 413,
            "malformed" | "bad_entry" | "mixed_authors" | "out_of_order" => 400,
            "future_measurement" | "future_clock" => 422,
            "fork"
            | "gap"
            | "wrong_prev"
            | "not_starting_at_one"
            | "missing_below_head"
            | "store_changed" => 409,
            "store_failed" => 503,
            // bad_certificate, bad_signature, bad_author_key,
            // unknown_author, certificate_not_valid, revoked,
            // role_not_allowed.
            _ => 403,
        }
    }

    /// The position of the entry at fault, when one is.
    pub fn index(&self) -> Option<usize> {
        match self {
            PushError::BadEntry { index, .. }
            | PushError::MixedAuthors { index, .. }
            | PushError::Refused { index, .. } => Some(*index),
            _ => None,
        }
    }

    /// The seq of the entry at fault and the receiver's head seq for its
    /// author, when one entry was refused: what the HTTP answer names as
    /// `seq` and `head_seq`.
    pub fn seqs(&self) -> Option<(u64, u64)> {
        match self {
            PushError::Refused { seq, head_seq, .. } => Some((*seq, *head_seq)),
            _ => None,
        }
    }

    /// Whether this is a fork whose entry the store now keeps as
    /// evidence: node and hub raise an alert for it.
    pub fn is_fork(&self) -> bool {
        matches!(
            self.refusal(),
            Some(PushRefusal::Chain(ChainFault::Fork { .. }))
        )
    }

    /// Why the entry at fault was refused, when one was.
    pub fn refusal(&self) -> Option<&PushRefusal> {
        match self {
            PushError::Refused { refusal, .. } => Some(refusal),
            _ => None,
        }
    }
}

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

/// What [`verify`] needs of the store about a push's author, which the
/// caller reads before it takes the store's writer (see [`stored`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// The author's certificate the store holds (DER), if any. Read only
    /// when the push carries none.
    pub certificate: Option<Vec<u8>>,
    /// The author's head in the store: only the `head_seq` of a refusal
    /// [`verify`] answers (the chain is judged by [`apply`], against the
    /// head when it runs).
    pub head: Option<Head>,
}

/// Reads what [`verify`] needs of `author` from `store`: its head, and its
/// certificate when `certificate` is true (the push carries none). A read;
/// it needs no writer.
pub fn stored<S: SyncStore + ?Sized>(
    store: &S,
    author: &AuthorId,
    certificate: bool,
) -> Result<Stored, S::Error> {
    Ok(Stored {
        certificate: if certificate {
            store.certificate(author)?
        } else {
            None
        },
        head: store.head(author)?,
    })
}

/// A push that passed checks 1–7 of the module doc ([`verify`]): hand it
/// to [`apply`] for check 8 and the store.
#[derive(Debug, Clone)]
pub struct Verified {
    author: AuthorId,
    certificate: Option<Vec<u8>>,
    entries: Vec<VerifiedEntry>,
}

impl Verified {
    /// The push's author.
    pub fn author(&self) -> AuthorId {
        self.author
    }

    /// How many entries the push carries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it carries none (never: [`verify`] refuses an empty push).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Checks a push body and applies it, all or nothing (see the module
/// doc). `now_ms` is the receiver's clock; `max_future_ms` is usually
/// [`MAX_FUTURE_MS`]; `revocations` is the CA list in force (hub
/// revocation entries come from [`TrustAnchor::entry_revocation`]).
///
/// [`verify`] then [`apply`], both against `store`: a caller with a single
/// writer runs [`verify`] before it takes the writer and only [`apply`]
/// under it.
pub fn receive<S: SyncStore>(
    store: &mut S,
    trust: &dyn TrustAnchor,
    revocations: &Revocations,
    now_ms: u64,
    max_future_ms: u64,
    bytes: &[u8],
) -> Result<Accepted, PushError<S::Error>> {
    let verified = {
        let store = &*store;
        verify(
            trust,
            revocations,
            now_ms,
            max_future_ms,
            bytes,
            |author, certificate| stored(store, author, certificate),
        )?
    };
    apply(store, verified, now_ms)
}

/// Checks 1–7 of the module doc: everything but the chain, without the
/// store's writer. CPU-bound (the signatures): run it off the async
/// workers. `stored` is called once, with the push's author and whether
/// the push carries no certificate (so the stored one is wanted); its
/// error comes back as [`PushError::Store`]. [`stored`] reads it from a
/// [`SyncStore`].
///
/// The revocations are those in force now: a revocation learned between
/// `verify` and [`apply`] does not refuse this push (as it would not had
/// the push arrived a moment earlier); the next push is checked against it.
pub fn verify<E: std::error::Error + 'static>(
    trust: &dyn TrustAnchor,
    revocations: &Revocations,
    now_ms: u64,
    max_future_ms: u64,
    bytes: &[u8],
    stored: impl FnOnce(&AuthorId, bool) -> Result<Stored, E>,
) -> Result<Verified, PushError<E>> {
    let push = decode(bytes).map_err(PushError::Malformed)?;
    let mut entries = Vec::with_capacity(push.entries.len());
    for (index, raw) in push.entries.into_iter().enumerate() {
        let e =
            SignedEntry::from_bytes(raw).map_err(|error| PushError::BadEntry { index, error })?;
        entries.push(e);
    }
    let Some(first) = entries.first() else {
        // The decoder refuses an empty list; say so rather than panic.
        return Err(PushError::Malformed(MessageError::OutOfRange {
            field: "entries",
            what: "no entries".into(),
        }));
    };
    let author = first.author();
    let first_seq = first.seq();
    for (index, e) in entries.iter().enumerate() {
        if e.author() != author {
            return Err(PushError::MixedAuthors {
                index,
                expected: author,
                found: e.author(),
            });
        }
    }

    let known = match &push.certificate {
        Some(der) => {
            let info = trust
                .verify_certificate(der)
                .map_err(PushError::BadCertificate)?;
            if info.author != author {
                return Err(PushError::CertificateMismatch {
                    certificate: info.author,
                    author,
                });
            }
            let known = stored(&author, false).map_err(PushError::Store)?;
            (Some(info), known.head)
        }
        None => {
            let known = stored(&author, true).map_err(PushError::Store)?;
            let info = known
                .certificate
                .and_then(|der| trust.stored_certificate(&der).ok())
                .filter(|info| info.author == author);
            (info, known.head)
        }
    };
    let (info, head) = known;

    let head_seq = head.map_or(0, |h| h.seq);
    let refused = |index: usize, e: &SignedEntry, refusal| PushError::Refused {
        index,
        author,
        seq: e.seq(),
        id: e.id(),
        refusal: Box::new(refusal),
        head_seq,
    };
    for (index, e) in entries.iter().enumerate() {
        let expected = first_seq.saturating_add(index as u64);
        if e.seq() != expected {
            let refusal = PushRefusal::OutOfOrder {
                expected,
                found: e.seq(),
            };
            return Err(refused(index, e, refusal));
        }
    }

    // Seqs ascend by one, so an entry's index is its seq minus the first.
    let (good, bad) = verify_all(entries);
    if let Some(r) = bad.into_iter().next() {
        let index = (r.entry.seq() - first_seq) as usize;
        let refusal = PushRefusal::Check(Refusal::Signature(r.error));
        return Err(refused(index, &r.entry, refusal));
    }

    let last_valid_seq = [
        revocations.last_valid_seq(&author),
        trust.entry_revocation(&author),
    ]
    .into_iter()
    .flatten()
    .min();
    for (index, e) in good.iter().enumerate() {
        check_entry(e, info, last_valid_seq, now_ms, max_future_ms)
            .map_err(|refusal| refused(index, e, refusal))?;
    }
    Ok(Verified {
        author,
        certificate: push.certificate,
        entries: good,
    })
}

/// Check 8 of the module doc and the store: judges a [`verify`]ed push
/// against the chain `store` holds now (duplicates, forks, gaps, a wrong
/// `prev`), stores the certificate and applies the new entries, all or
/// nothing. Run it under the store's single writer; the store may have
/// changed since [`verify`] (other pushes, sync sessions): the chain is
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

/// Check 7 of the module doc, for one signature-checked entry.
fn check_entry(
    e: &SignedEntry,
    info: Option<AuthorInfo>,
    last_valid_seq: Option<u64>,
    now_ms: u64,
    max_future_ms: u64,
) -> Result<(), PushRefusal> {
    let entry = e.entry();
    check_author(entry, info, last_valid_seq).map_err(PushRefusal::Check)?;
    if let Some(info) = info {
        if info.role != DeviceRole::Sensor {
            return Err(PushRefusal::NotASensor(info.role));
        }
    }
    let latest = now_ms.saturating_add(max_future_ms);
    if let Body::SensorReading(reading) = &entry.body {
        if reading.measured_ms > latest {
            return Err(PushRefusal::FutureMeasurement {
                measured_ms: reading.measured_ms,
                now_ms,
                max_future_ms,
            });
        }
    }
    if entry.hlc.wall_ms > latest {
        return Err(PushRefusal::FutureClock {
            wall_ms: entry.hlc.wall_ms,
            now_ms,
            max_future_ms,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
