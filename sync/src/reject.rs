//! Why an entry was quarantined (invariant 4): [`RejectReason`], whose
//! [`RejectReason::code`] is the stable code both stores write into the
//! `reason_code` column of their `quarantine` tables and operators read,
//! and the two shapes a rejection travels in: [`Rejection`] (the entry
//! itself, for [`crate::SyncStore::quarantine`]) and [`Quarantined`] (its
//! id, in an [`crate::ApplyReport`]).
//!
//! Owns the codes (`docs/protocol.md` 1.8 and 2.6) and their spelling;
//! never decides whether an entry is refused: the session's checks
//! ([`crate::Refusal`]) and the stores' chain checks
//! ([`sentinel_schema::check_link`]) do, and name the reason here.

use std::fmt;
use std::str::FromStr;

use sentinel_schema::{ChainFault, EntryId, SignedEntry, VerifyError};

/// Why an entry was quarantined. Each reason has one stable code
/// ([`RejectReason::code`]) that never changes: it is stored, compared in
/// SQL (`reason_code = 'gap'`) and shown to operators.
///
/// Chain faults have variants of their own rather than wrapping
/// [`ChainFault`]: a code read back from a table must give a reason
/// ([`FromStr`]), and a `ChainFault` carries details (seqs, ids) that a
/// code does not; those stay in the rejection's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RejectReason {
    /// The signature does not verify (check 2).
    BadSignature,
    /// The author is not a usable ed25519 key (check 2).
    BadAuthorKey,
    /// No valid certificate is known for the author (check 3).
    UnknownAuthor,
    /// The entry's HLC time is outside its author's certificate (check 3).
    CertificateNotValid,
    /// The author is revoked from a seq before this entry's (check 4).
    Revoked,
    /// The author's role may not write the entry's kind (check 5).
    RoleNotAllowed,
    /// An event change that does not decode, or is not its author's
    /// (check 6).
    BadChange,
    /// A hub checkpoint attests another entry at its position (check 7).
    ContradictsCheckpoint,
    /// The entry is not by the chain's author (chain check).
    WrongAuthor,
    /// The author's first entry held would not be seq 1 (chain check).
    NotStartingAtOne,
    /// Seqs are missing before the entry (chain check); released once
    /// they arrive.
    Gap,
    /// The entry's `prev` is not the entry held before it (chain check).
    WrongPrev,
    /// Another entry is held at its seq (chain check; stores keep forks
    /// as evidence rather than quarantining them).
    Fork,
    /// The entry is already held (chain check; stores count duplicates
    /// rather than quarantining them).
    Duplicate,
    /// The store's head is above the entry's seq but holds nothing there:
    /// the log lost an entry, which an audit reports.
    MissingBelowHead,
    /// A chain fault this crate does not name yet
    /// ([`ChainFault`] may grow); no schema of today produces one. The
    /// rejection's words say which.
    BrokenChain,
}

impl RejectReason {
    /// Every reason, in declaration order.
    pub const ALL: [RejectReason; 16] = [
        RejectReason::BadSignature,
        RejectReason::BadAuthorKey,
        RejectReason::UnknownAuthor,
        RejectReason::CertificateNotValid,
        RejectReason::Revoked,
        RejectReason::RoleNotAllowed,
        RejectReason::BadChange,
        RejectReason::ContradictsCheckpoint,
        RejectReason::WrongAuthor,
        RejectReason::NotStartingAtOne,
        RejectReason::Gap,
        RejectReason::WrongPrev,
        RejectReason::Fork,
        RejectReason::Duplicate,
        RejectReason::MissingBelowHead,
        RejectReason::BrokenChain,
    ];

    /// The stable snake_case code, as stored in `quarantine.reason_code`.
    /// Chain faults keep [`ChainFault::code`]'s spelling, signature faults
    /// [`VerifyError::code`]'s.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::BadSignature => "bad_signature",
            RejectReason::BadAuthorKey => "bad_author_key",
            RejectReason::UnknownAuthor => "unknown_author",
            RejectReason::CertificateNotValid => "certificate_not_valid",
            RejectReason::Revoked => "revoked",
            RejectReason::RoleNotAllowed => "role_not_allowed",
            RejectReason::BadChange => "bad_change",
            RejectReason::ContradictsCheckpoint => "contradicts_checkpoint",
            RejectReason::WrongAuthor => "wrong_author",
            RejectReason::NotStartingAtOne => "not_starting_at_one",
            RejectReason::Gap => "gap",
            RejectReason::WrongPrev => "wrong_prev",
            RejectReason::Fork => "fork",
            RejectReason::Duplicate => "duplicate",
            RejectReason::MissingBelowHead => "missing_below_head",
            RejectReason::BrokenChain => "broken_chain",
        }
    }
}

impl fmt::Display for RejectReason {
    /// The code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A code that names no [`RejectReason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a quarantine reason code")]
pub struct UnknownReasonCode(pub String);

impl FromStr for RejectReason {
    type Err = UnknownReasonCode;

    /// The reason whose [`RejectReason::code`] is `code`.
    fn from_str(code: &str) -> Result<RejectReason, UnknownReasonCode> {
        RejectReason::ALL
            .into_iter()
            .find(|r| r.code() == code)
            .ok_or_else(|| UnknownReasonCode(code.to_owned()))
    }
}

impl From<&ChainFault> for RejectReason {
    fn from(fault: &ChainFault) -> RejectReason {
        match fault {
            ChainFault::BadSignature => RejectReason::BadSignature,
            ChainFault::BadAuthorKey => RejectReason::BadAuthorKey,
            ChainFault::WrongAuthor => RejectReason::WrongAuthor,
            ChainFault::NotStartingAtOne(_) => RejectReason::NotStartingAtOne,
            ChainFault::Gap { .. } => RejectReason::Gap,
            ChainFault::WrongPrev { .. } => RejectReason::WrongPrev,
            ChainFault::Fork { .. } => RejectReason::Fork,
            ChainFault::Duplicate => RejectReason::Duplicate,
            // `ChainFault` is non-exhaustive: a fault added to the schema
            // later is still quarantined, under the generic code.
            _ => RejectReason::BrokenChain,
        }
    }
}

impl From<&VerifyError> for RejectReason {
    fn from(error: &VerifyError) -> RejectReason {
        match error {
            VerifyError::BadAuthorKey(_) => RejectReason::BadAuthorKey,
            // Whatever else fails, the signature does not hold.
            _ => RejectReason::BadSignature,
        }
    }
}

/// An entry refused before it reached the log, for
/// [`crate::SyncStore::quarantine`].
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The entry, as received (its exact bytes are kept, invariant 1).
    pub entry: SignedEntry,
    pub reason: RejectReason,
    /// The reason in words, with the details the code leaves out.
    pub detail: String,
}

impl Rejection {
    /// An entry that fails a chain check.
    pub fn chain(entry: SignedEntry, fault: &ChainFault) -> Rejection {
        Rejection {
            entry,
            reason: RejectReason::from(fault),
            detail: fault.to_string(),
        }
    }

    /// What an [`crate::ApplyReport`] says of it.
    pub fn quarantined(&self) -> Quarantined {
        Quarantined {
            id: self.entry.id(),
            reason: self.reason,
            detail: self.detail.clone(),
        }
    }
}

/// An entry a store quarantined while applying a batch, as
/// [`crate::ApplyReport::quarantined`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub id: EntryId,
    pub reason: RejectReason,
    /// The reason in words.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentinel_schema::AuthorId;

    /// The codes as the stores have written them since the first release:
    /// rows already in `quarantine` tables carry them.
    const HISTORICAL: [&str; 15] = [
        "bad_signature",
        "bad_author_key",
        "unknown_author",
        "certificate_not_valid",
        "revoked",
        "role_not_allowed",
        "bad_change",
        "contradicts_checkpoint",
        "wrong_author",
        "not_starting_at_one",
        "gap",
        "wrong_prev",
        "fork",
        "duplicate",
        "missing_below_head",
    ];

    #[test]
    fn every_code_round_trips_and_the_codes_are_the_historical_ones() {
        for reason in RejectReason::ALL {
            assert_eq!(reason.code().parse(), Ok(reason), "{reason:?}");
            assert_eq!(reason.to_string(), reason.code());
        }
        let codes: Vec<&str> = RejectReason::ALL.iter().map(|r| r.code()).collect();
        // Every historical code, unchanged, and one added for chain faults
        // the schema may add later.
        assert_eq!(codes[..HISTORICAL.len()], HISTORICAL);
        assert_eq!(codes[HISTORICAL.len()..], ["broken_chain"]);
        let distinct: std::collections::BTreeSet<&str> = codes.iter().copied().collect();
        assert_eq!(distinct.len(), codes.len(), "codes are distinct");
        assert_eq!(
            "Gap".parse::<RejectReason>(),
            Err(UnknownReasonCode("Gap".into()))
        );
    }

    #[test]
    fn chain_and_signature_faults_keep_their_codes() {
        let id = EntryId([7; 32]);
        for fault in [
            ChainFault::BadSignature,
            ChainFault::BadAuthorKey,
            ChainFault::WrongAuthor,
            ChainFault::NotStartingAtOne(3),
            ChainFault::Gap {
                expected: 2,
                found: 4,
            },
            ChainFault::WrongPrev { expected: id },
            ChainFault::Fork { other: id },
            ChainFault::Duplicate,
        ] {
            assert_eq!(RejectReason::from(&fault).code(), fault.code(), "{fault:?}");
        }
        for error in [
            VerifyError::BadAuthorKey(AuthorId([1; 32])),
            VerifyError::BadSignature {
                author: AuthorId([1; 32]),
                seq: 1,
            },
        ] {
            assert_eq!(RejectReason::from(&error).code(), error.code(), "{error:?}");
        }
    }
}
