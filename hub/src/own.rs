//! The hub's own chain: entries the hub itself authors (checkpoints, role
//! grants for admins, later admin actions), signed with its identity key.
//!
//! One writer per hub process: appends take a lock, read the hub's head,
//! sign the next entries and apply them through the same store path as
//! synced entries (verified first), so the chain stays gap-free however
//! many tasks write. Every append bumps a watch counter the sync server
//! listens to, so live sessions push the new entries at once.
//!
//! A `revocation` the hub signs is enforced by the hub at once: once the
//! sync server shares its [`RevocationHandle`]
//! ([`OwnChain::enforce_revocations`]), every appended revocation is added
//! to it before the append returns, so the next handshake and the next
//! batch of every session see it.

use std::sync::OnceLock;

use sentinel_certs::{CaCert, Enrollment, RevocationHandle};
use sentinel_schema::{verify_all, AuthorId, Body, Clock, Entry, Head, SignedEntry};
use tokio::sync::{watch, Mutex};

use crate::store::{PgStore, StoreError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OwnChainError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the hub's clock: {0}")]
    Clock(String),
    #[error("signing: {0}")]
    Sign(String),
    #[error("the store did not append the hub's entries: {0}")]
    NotApplied(String),
}

/// Writes the hub's own entries.
pub struct OwnChain {
    store: PgStore,
    enrollment: Enrollment,
    clock: Mutex<Option<Clock>>,
    written: watch::Sender<u64>,
    /// Where appended revocations take effect; unset while no sync server
    /// uses this chain (they are still written, and loaded at its start).
    revocations: OnceLock<RevocationHandle>,
}

impl std::fmt::Debug for OwnChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnChain")
            .field("author", &self.enrollment.identity.author)
            .finish_non_exhaustive()
    }
}

impl OwnChain {
    /// Stores the hub's certificate (a store holds the certificate of
    /// every author it holds entries of).
    pub async fn new(
        store: PgStore,
        enrollment: Enrollment,
        now_ms: u64,
    ) -> Result<OwnChain, OwnChainError> {
        store
            .add_certificates(
                &[(enrollment.identity.author, enrollment.cert_der.clone())],
                now_ms,
            )
            .await?;
        Ok(OwnChain {
            store,
            enrollment,
            clock: Mutex::new(None),
            written: watch::channel(0).0,
            revocations: OnceLock::new(),
        })
    }

    pub fn author(&self) -> AuthorId {
        self.enrollment.identity.author
    }

    /// The deployment CA the hub is enrolled under.
    pub fn ca(&self) -> &CaCert {
        &self.enrollment.ca
    }

    pub fn store(&self) -> &PgStore {
        &self.store
    }

    /// Adds every revocation appended from now on to `handle` (the sync
    /// server's). The first handle given stays: one chain, one server.
    pub fn enforce_revocations(&self, handle: RevocationHandle) {
        let _ = self.revocations.set(handle);
    }

    /// The handle appended revocations go to, once a sync server set it.
    pub fn revocations(&self) -> Option<&RevocationHandle> {
        self.revocations.get()
    }

    /// Changes whenever entries were appended.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.written.subscribe()
    }

    /// Signs `bodies` as the hub's next entries, with `actor` (the person
    /// on whose behalf, if any), and commits them in one transaction.
    pub async fn append(
        &self,
        bodies: Vec<Body>,
        actor: Option<&str>,
        now_ms: u64,
    ) -> Result<Vec<SignedEntry>, OwnChainError> {
        let own = self.author();
        let mut clock = self.clock.lock().await;
        let mut prev = self.store.head(&own).await?;
        if clock.is_none() {
            // Resume after the newest entry of the chain, so HLCs never go
            // backwards across restarts.
            let mut resumed = Clock::resume(Default::default());
            if let Some(head) = prev {
                if let Some(e) = self
                    .store
                    .entries_after(&own, head.seq - 1, 1, usize::MAX)
                    .await?
                    .first()
                {
                    resumed = Clock::resume(e.entry().hlc);
                }
            }
            *clock = Some(resumed);
        }
        let Some(clock) = clock.as_mut() else {
            return Err(OwnChainError::Clock("no clock".into()));
        };
        let mut signed = Vec::with_capacity(bodies.len());
        for body in bodies {
            let entry = Entry {
                author: own,
                seq: prev.map_or(1, |h| h.seq + 1),
                prev: prev.map(|h| h.id),
                hlc: clock
                    .tick(now_ms)
                    .map_err(|e| OwnChainError::Clock(e.to_string()))?,
                actor: actor.map(str::to_owned),
                body,
            };
            let e = entry
                .sign(&self.enrollment.key)
                .map_err(|e| OwnChainError::Sign(e.to_string()))?;
            prev = Some(Head {
                seq: e.seq(),
                id: e.id(),
            });
            signed.push(e);
        }
        let (verified, bad) = verify_all(signed.clone());
        if let Some(r) = bad.first() {
            return Err(OwnChainError::Sign(r.error.to_string()));
        }
        let report = self.store.apply(verified, now_ms).await?;
        if report.applied != signed.len() {
            return Err(OwnChainError::NotApplied(format!("{report:?}")));
        }
        if let Some(handle) = self.revocations.get() {
            for e in &signed {
                if let Body::Revocation(r) = &e.entry().body {
                    handle.add_entry_revocation(r.clone());
                }
            }
        }
        self.written.send_modify(|n| *n = n.wrapping_add(1));
        Ok(signed)
    }
}
