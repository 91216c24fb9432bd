//! The revocation list a running node or hub currently holds, shared
//! between its TLS verifiers and its sync sessions.
//!
//! Verifiers read it at every handshake, so a newer list learned from a
//! peer, or loaded by an admin, applies to the next handshake without
//! rebuilding any TLS configuration.

use std::sync::{Arc, RwLock};

use sentinel_schema::AuthorId;

use crate::ca::CaCert;
use crate::error::RevocationError;
use crate::revocation::{RevocationList, Revoked};

#[derive(Debug)]
struct Current {
    /// Always a verified list (sorted by key) or the empty list.
    list: Arc<RevocationList>,
    /// The CA-signed bytes of `list`, to relay to peers; `None` for the
    /// empty list a device starts with.
    signed: Option<Arc<[u8]>>,
}

/// A cheaply cloned handle to the current revocation list. Only lists that
/// verify against the CA get in, and only if they are newer than the one
/// held.
#[derive(Debug, Clone)]
pub struct RevocationHandle {
    current: Arc<RwLock<Current>>,
}

/// What [`RevocationHandle::offer`] did with a verified list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// The list was newer and is now the current one.
    Installed,
    /// The list was not newer than the current one; nothing changed.
    NotNewer,
}

impl RevocationHandle {
    /// A handle holding the empty list (number 0, issued at 0 ms).
    pub fn empty() -> RevocationHandle {
        RevocationHandle {
            current: Arc::new(RwLock::new(Current {
                list: Arc::new(RevocationList::empty()),
                signed: None,
            })),
        }
    }

    /// A handle holding a signed list, verified against `ca`.
    pub fn from_signed(bytes: &[u8], ca: &CaCert) -> Result<RevocationHandle, RevocationError> {
        let list = RevocationList::verify(bytes, ca)?;
        Ok(RevocationHandle {
            current: Arc::new(RwLock::new(Current {
                list: Arc::new(list),
                signed: Some(Arc::from(bytes)),
            })),
        })
    }

    // A poisoned lock only means a writer panicked between two field
    // assignments of plain data; the last complete value is still sound, so
    // we take it rather than propagate a panic into every handshake.
    fn read<T>(&self, f: impl FnOnce(&Current) -> T) -> T {
        let guard = self.current.read().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    /// The list held now.
    pub fn current(&self) -> Arc<RevocationList> {
        self.read(|c| Arc::clone(&c.list))
    }

    /// The signed bytes of the list held now, to pass on to peers; `None`
    /// while the handle holds the empty list.
    pub fn signed(&self) -> Option<Arc<[u8]>> {
        self.read(|c| c.signed.clone())
    }

    /// The revocation of `author` in the current list, if any.
    pub fn revocation_of(&self, author: &AuthorId) -> Option<Revoked> {
        self.read(|c| c.list.revocation_of_sorted(author).cloned())
    }

    /// Verifies a signed list against `ca` and installs it if it is newer
    /// than the one held. A list that does not verify is an error; an older
    /// or equal one is ignored.
    pub fn offer(&self, bytes: &[u8], ca: &CaCert) -> Result<Offered, RevocationError> {
        let list = RevocationList::verify(bytes, ca)?;
        let mut guard = self.current.write().unwrap_or_else(|e| e.into_inner());
        if !list.newer_than(&guard.list) {
            return Ok(Offered::NotNewer);
        }
        *guard = Current {
            list: Arc::new(list),
            signed: Some(Arc::from(bytes)),
        };
        Ok(Offered::Installed)
    }
}
