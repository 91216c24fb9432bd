//! Why a sensor push is refused: the whole push ([`PushError`]) or one
//! entry of it ([`PushRefusal`]), each with the stable code and HTTP status
//! the answer carries (`docs/protocol.md` 3.7).
//!
//! Never does: check anything; `check.rs` and `commit.rs` decide.

use sentinel_schema::{AuthorId, ChainFault, DecodeError, DeviceRole, EntryId};

use crate::message::MessageError;
use crate::reject::RejectReason;
use crate::verify::Refusal;

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
