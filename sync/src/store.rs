//! What the protocol needs from a store, and what applying entries did.
//!
//! One trait, implemented by the in-memory store (tests and the
//! simulator), the node's SpatiaLite store and the hub's PostgreSQL store;
//! one contract test suite runs against all of them.

use crate::checkpoint::Attestation;
use crate::reject::{Quarantined, Rejection};
use sentinel_schema::{AuthorId, EntryId, Head, Heads, Hlc, SignedEntry, VerifiedEntry};

/// What applying a batch of verified entries did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Entries added to the log.
    pub applied: usize,
    /// Entries already held (same id): nothing to do.
    pub duplicates: usize,
    /// Entries at a seq already held with a different id: kept as
    /// evidence, never merged. `(author, seq, id of the new entry)`.
    pub forks: Vec<(AuthorId, u64, EntryId)>,
    /// Entries that failed a chain check, with the reason.
    pub quarantined: Vec<Quarantined>,
    /// The newest HLC among applied entries, for the local clock.
    pub max_hlc: Option<Hlc>,
}

/// A store the sync protocol can read from and write to.
///
/// Implementations must make [`SyncStore::apply`] atomic and durable: when
/// it returns `Ok`, every applied entry has been committed to disk (the
/// protocol acknowledges on that basis); when it returns `Err`, nothing of
/// the batch was kept. No test can check that promise from outside, so it
/// is each implementation's own (the node tests it with crash tests).
///
/// A store holds the certificate of every author it holds entries of,
/// its own included: a peer that has never met an author gets the
/// certificate from whoever relays the author's entries.
///
/// [`crate::contract::run_contract_suite`] checks the rest of this
/// contract against any implementation.
pub trait SyncStore {
    type Error: std::error::Error + Send + Sync + 'static;

    /// `author → (seq, id)` of every chain held.
    fn heads(&self) -> Result<Heads, Self::Error>;

    /// The author's newest entry held, if any. The default reads every
    /// head; stores with an index should answer directly (the session
    /// calls this once per author per batch, to acknowledge).
    fn head(&self, author: &AuthorId) -> Result<Option<Head>, Self::Error> {
        Ok(self.heads()?.get(author))
    }

    /// The author's entries with seq > `after`, in seq order, at most
    /// `max_entries`, and at most `max_bytes` of signed bytes in all —
    /// except that the first entry is returned whatever its size, so a
    /// caller always makes progress. Empty when there is none.
    fn entries_after(
        &self,
        author: &AuthorId,
        after: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<SignedEntry>, Self::Error>;

    /// Checks chain continuity against the heads, quarantines what fails,
    /// records forks, and commits the rest in one transaction. Entries
    /// may come in any order; they are applied in `(author, seq)` order.
    /// An entry already held is a duplicate (counted, nothing else); one
    /// at a held seq with another id is a fork (recorded as evidence and
    /// reported, the entry held first stays in the log); chain faults are
    /// quarantined with their [`crate::RejectReason`] (whose code is
    /// [`sentinel_schema::ChainFault::code`]).
    fn apply(
        &mut self,
        entries: Vec<VerifiedEntry>,
        now_ms: u64,
    ) -> Result<ApplyReport, Self::Error>;

    /// Keeps entries that failed verification (signature, certificate,
    /// role, revocation) with the reason; they never reach a view. Stores
    /// keep [`crate::RejectReason::code`] as the reason's code. An entry
    /// already quarantined keeps its first reason.
    fn quarantine(&mut self, rejected: Vec<Rejection>, now_ms: u64) -> Result<(), Self::Error>;

    /// The DER certificate of an author, if this store has one.
    fn certificate(&self, author: &AuthorId) -> Result<Option<Vec<u8>>, Self::Error>;

    /// Stores certificates that the caller has verified against the
    /// deployment CA (certificates travel with the data).
    fn add_certificates(
        &mut self,
        certificates: Vec<(AuthorId, Vec<u8>)>,
    ) -> Result<(), Self::Error>;

    /// The newest revocation list this store holds (the CA-signed bytes).
    fn revocation_list(&self) -> Result<Option<Vec<u8>>, Self::Error>;

    /// Replaces the revocation list with a newer one the caller verified.
    fn set_revocation_list(&mut self, bytes: Vec<u8>) -> Result<(), Self::Error>;

    /// The heads hub checkpoints in this store attest: per hub and author,
    /// the highest (see [`crate::checkpoint`]). A session reads them once,
    /// when it starts. The default is none: a store that does not keep
    /// attestations checks no checkpoint.
    fn attestations(&self) -> Result<Vec<Attestation>, Self::Error> {
        Ok(Vec::new())
    }
}
