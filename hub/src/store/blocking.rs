//! The store as the (synchronous) sync protocol sees it.
//!
//! [`SyncStore`] is a blocking trait: the sans-IO session and the QUIC
//! driver call it from inside async tasks, holding a mutex. [`PgSyncStore`]
//! owns a [`Handle`] to a **multi-thread** tokio runtime and runs each call
//! with `block_in_place` + `Handle::block_on`:
//!
//! - called from a worker thread of a multi-thread runtime (the QUIC
//!   driver), `block_in_place` hands the worker's other tasks to another
//!   thread while this one waits, so the pool's connection tasks keep
//!   running;
//! - called from a plain thread (tests, CLI), `block_in_place` just runs
//!   the closure and `block_on` waits for the future;
//! - called from a current-thread runtime it panics — that runtime has no
//!   other thread to drive the connections, so it would deadlock instead.
//!
//! A dedicated runtime thread with a channel would also work from a
//! current-thread runtime, at the cost of a hop per call; nothing in the
//! hub uses one, so the simpler design wins.

use sentinel_schema::{AuthorId, Head, Heads, SignedEntry, VerifiedEntry};
use sentinel_sync::{ApplyReport, Rejection, SyncStore};
use tokio::runtime::Handle;

use super::{PgStore, StoreError};

/// A [`PgStore`] behind the blocking [`SyncStore`] trait.
#[derive(Debug, Clone)]
pub struct PgSyncStore {
    store: PgStore,
    runtime: Handle,
}

impl PgSyncStore {
    /// `runtime` must be a multi-thread runtime: the one the store's pool
    /// was opened on, or one that outlives it.
    pub fn new(store: PgStore, runtime: Handle) -> PgSyncStore {
        PgSyncStore { store, runtime }
    }

    pub fn store(&self) -> &PgStore {
        &self.store
    }

    fn wait<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        tokio::task::block_in_place(|| self.runtime.block_on(f))
    }
}

impl SyncStore for PgSyncStore {
    type Error = StoreError;

    fn heads(&self) -> Result<Heads, StoreError> {
        self.wait(self.store.heads())
    }

    fn head(&self, author: &AuthorId) -> Result<Option<Head>, StoreError> {
        self.wait(self.store.head(author))
    }

    fn entries_after(
        &self,
        author: &AuthorId,
        after: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        self.wait(
            self.store
                .entries_after(author, after, max_entries, max_bytes),
        )
    }

    fn apply(
        &mut self,
        entries: Vec<VerifiedEntry>,
        now_ms: u64,
    ) -> Result<ApplyReport, StoreError> {
        self.wait(self.store.apply(entries, now_ms))
    }

    fn quarantine(&mut self, rejected: Vec<Rejection>, now_ms: u64) -> Result<(), StoreError> {
        self.wait(self.store.quarantine(&rejected, now_ms))
    }

    fn certificate(&self, author: &AuthorId) -> Result<Option<Vec<u8>>, StoreError> {
        self.wait(self.store.certificate(author))
    }

    fn add_certificates(
        &mut self,
        certificates: Vec<(AuthorId, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        // The trait carries no clock; as on the node, 0 means "unknown".
        self.wait(self.store.add_certificates(&certificates, 0))
    }

    fn revocation_list(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.wait(self.store.revocation_list())
    }

    fn set_revocation_list(&mut self, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.wait(self.store.set_revocation_list(&bytes))
    }
}
