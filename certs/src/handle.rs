//! The revocation list a running node or hub currently holds, shared
//! between its TLS verifiers and its sync sessions.
//!
//! Verifiers read it at every handshake, so a newer list learned from a
//! peer, or loaded by an admin, applies to the next handshake without
//! rebuilding any TLS configuration.
//!
//! Besides the CA-signed list, the handle holds *entry revocations*:
//! `revocation` entries signed by a hub (`docs/security.md` 1.7), which a
//! hub admin can issue without the offline CA. Whoever adds one has
//! checked that its author is a hub; the handle only merges. For every
//! author the stricter of the two wins (the lower last valid seq), and a
//! newer CA list replaces the list without dropping entry revocations:
//! they can only tighten what the CA says, never loosen it.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use sentinel_schema::AuthorId;

use crate::ca_cert::CaCert;
use crate::error::RevocationError;
use crate::revocation::{RevocationList, Revoked};

#[derive(Debug)]
struct Current {
    /// Always a verified list (sorted by key) or the empty list.
    list: Arc<RevocationList>,
    /// The CA-signed bytes of `list`, to relay to peers; `None` for the
    /// empty list a device starts with.
    signed: Option<Arc<[u8]>>,
    /// Revocations from hub-signed `revocation` entries, the strictest
    /// one per author.
    entries: BTreeMap<AuthorId, Revoked>,
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

/// What [`RevocationHandle::add_entry_revocation`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryRevocationAdded {
    /// The author was not revoked by an entry before; now it is.
    Added,
    /// The author's last valid seq is now lower than before.
    Tightened,
    /// An entry revocation as strict or stricter was already held; nothing
    /// changed (a revocation never loosens).
    NotStricter,
}

impl RevocationHandle {
    /// A handle holding the empty list (number 0, issued at 0 ms).
    pub fn empty() -> RevocationHandle {
        RevocationHandle {
            current: Arc::new(RwLock::new(Current {
                list: Arc::new(RevocationList::empty()),
                signed: None,
                entries: BTreeMap::new(),
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
                entries: BTreeMap::new(),
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

    fn write<T>(&self, f: impl FnOnce(&mut Current) -> T) -> T {
        let mut guard = self.current.write().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// The CA-signed list held now (without entry revocations: see
    /// [`RevocationHandle::revocation_of`] for the merged verdict).
    pub fn current(&self) -> Arc<RevocationList> {
        self.read(|c| Arc::clone(&c.list))
    }

    /// The signed bytes of the list held now, to pass on to peers; `None`
    /// while the handle holds the empty list.
    pub fn signed(&self) -> Option<Arc<[u8]>> {
        self.read(|c| c.signed.clone())
    }

    /// The revocation of `author`, if any: the stricter of the current
    /// list's and the entry revocation's (the lower last valid seq; the
    /// list's on a tie).
    pub fn revocation_of(&self, author: &AuthorId) -> Option<Revoked> {
        self.read(|c| {
            let listed = c.list.revocation_of_sorted(author);
            match (listed, c.entries.get(author)) {
                (Some(l), Some(e)) if e.last_valid_seq < l.last_valid_seq => Some(e.clone()),
                (Some(l), _) => Some(l.clone()),
                (None, e) => e.cloned(),
            }
        })
    }

    /// The last valid seq of `author` by entry revocations alone, if any.
    pub fn entry_revocation(&self, author: &AuthorId) -> Option<u64> {
        self.read(|c| c.entries.get(author).map(|r| r.last_valid_seq))
    }

    /// Every entry revocation held, sorted by key.
    pub fn entry_revocations(&self) -> Vec<Revoked> {
        self.read(|c| c.entries.values().cloned().collect())
    }

    /// Adds a revocation from a hub-signed `revocation` entry. The caller
    /// has checked that the entry's author is a hub under the deployment
    /// CA. It applies from the next handshake and to every entry checked
    /// from now on. A revocation of an author already revoked by an entry
    /// only tightens: a higher last valid seq than the one held changes
    /// nothing, since entries in between may already have been refused.
    pub fn add_entry_revocation(&self, revoked: Revoked) -> EntryRevocationAdded {
        self.write(|c| match c.entries.get_mut(&revoked.key) {
            None => {
                c.entries.insert(revoked.key, revoked);
                EntryRevocationAdded::Added
            }
            Some(held) if revoked.last_valid_seq < held.last_valid_seq => {
                *held = revoked;
                EntryRevocationAdded::Tightened
            }
            Some(_) => EntryRevocationAdded::NotStricter,
        })
    }

    /// Verifies a signed list against `ca` and installs it if it is newer
    /// than the one held. A list that does not verify is an error; an older
    /// or equal one is ignored.
    pub fn offer(&self, bytes: &[u8], ca: &CaCert) -> Result<Offered, RevocationError> {
        let list = RevocationList::verify(bytes, ca)?;
        Ok(self.write(|c| {
            if !list.newer_than(&c.list) {
                return Offered::NotNewer;
            }
            // Entry revocations stay: a CA list that does not name an
            // author yet (it was signed before the hub's entry) must not
            // let that author back in.
            c.list = Arc::new(list);
            c.signed = Some(Arc::from(bytes));
            Offered::Installed
        }))
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::ca::Ca;

    const T0: u64 = 1_800_000_000_000;

    fn revoked(key: u8, last_valid_seq: u64, reason: &str) -> Revoked {
        Revoked {
            key: AuthorId([key; 32]),
            last_valid_seq,
            reason: reason.to_string(),
        }
    }

    fn ca() -> Ca {
        Ca::create(
            "D",
            T0 - 1,
            T0 + 1_000_000,
            SigningKey::from_bytes(&[7; 32]),
        )
        .unwrap()
    }

    fn signed(ca: &Ca, number: u64, revoked: Vec<Revoked>) -> Vec<u8> {
        RevocationList {
            number,
            issued_ms: T0,
            revoked,
        }
        .sign(ca)
        .unwrap()
    }

    fn last_valid(handle: &RevocationHandle, key: u8) -> Option<u64> {
        handle
            .revocation_of(&AuthorId([key; 32]))
            .map(|r| r.last_valid_seq)
    }

    #[test]
    fn the_stricter_of_list_and_entry_wins() {
        let ca = ca();
        let handle = RevocationHandle::empty();
        handle
            .offer(
                &signed(&ca, 1, vec![revoked(1, 10, "ca"), revoked(2, 3, "ca")]),
                ca.cert(),
            )
            .unwrap();
        // The entry is stricter for 1, looser for 2, alone for 3.
        for r in [
            revoked(1, 4, "hub"),
            revoked(2, 8, "hub"),
            revoked(3, 0, "hub"),
        ] {
            assert_eq!(handle.add_entry_revocation(r), EntryRevocationAdded::Added);
        }
        assert_eq!(last_valid(&handle, 1), Some(4));
        assert_eq!(
            handle.revocation_of(&AuthorId([1; 32])).unwrap().reason,
            "hub"
        );
        assert_eq!(last_valid(&handle, 2), Some(3));
        assert_eq!(
            handle.revocation_of(&AuthorId([2; 32])).unwrap().reason,
            "ca"
        );
        assert_eq!(last_valid(&handle, 3), Some(0));
        assert_eq!(last_valid(&handle, 4), None);
        // The CA list itself is untouched: it is what peers are sent.
        assert_eq!(handle.current().revoked.len(), 2);
        assert_eq!(handle.entry_revocation(&AuthorId([2; 32])), Some(8));
    }

    #[test]
    fn an_entry_revocation_only_tightens() {
        let handle = RevocationHandle::empty();
        assert_eq!(
            handle.add_entry_revocation(revoked(1, 5, "lost")),
            EntryRevocationAdded::Added
        );
        assert_eq!(
            handle.add_entry_revocation(revoked(1, 9, "found again?")),
            EntryRevocationAdded::NotStricter
        );
        assert_eq!(
            handle.add_entry_revocation(revoked(1, 5, "same")),
            EntryRevocationAdded::NotStricter
        );
        assert_eq!(last_valid(&handle, 1), Some(5));
        assert_eq!(
            handle.add_entry_revocation(revoked(1, 2, "stolen")),
            EntryRevocationAdded::Tightened
        );
        assert_eq!(
            handle.revocation_of(&AuthorId([1; 32])).unwrap().reason,
            "stolen"
        );
        // Clones share the entry revocations.
        assert_eq!(
            handle.clone().entry_revocations(),
            vec![revoked(1, 2, "stolen")]
        );
    }

    #[test]
    fn a_newer_list_keeps_entry_revocations() {
        let ca = ca();
        let handle = RevocationHandle::from_signed(&signed(&ca, 1, vec![]), ca.cert()).unwrap();
        handle.add_entry_revocation(revoked(1, 6, "hub"));
        // A newer list that does not name the author yet, then one that
        // names it more leniently: the entry revocation stays in force.
        let two = signed(&ca, 2, vec![revoked(2, 0, "ca")]);
        assert_eq!(handle.offer(&two, ca.cert()), Ok(Offered::Installed));
        assert_eq!(last_valid(&handle, 1), Some(6));
        let three = signed(&ca, 3, vec![revoked(1, 100, "ca"), revoked(2, 0, "ca")]);
        assert_eq!(handle.offer(&three, ca.cert()), Ok(Offered::Installed));
        assert_eq!(handle.current().number, 3);
        assert_eq!(last_valid(&handle, 1), Some(6));
        assert_eq!(last_valid(&handle, 2), Some(0));
        // And a stricter list wins over the entry.
        let four = signed(&ca, 4, vec![revoked(1, 1, "ca")]);
        handle.offer(&four, ca.cert()).unwrap();
        assert_eq!(last_valid(&handle, 1), Some(1));
    }
}
