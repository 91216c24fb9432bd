//! Which devices this node holds revoked: the newest revocation list the
//! deployment CA signed, plus the `revocation` entries hubs wrote
//! (`docs/security.md` 1.7), gathered into one [`RevocationHandle`] that
//! the TLS verifiers, the sync sessions and the sensor push share.
//!
//! A `revocation` entry counts only when its author's stored certificate
//! verifies under the deployment CA as a hub's. Sessions admit them only
//! from hub certificates; checking again keeps entries that came another
//! way (an import) from revoking anyone (invariant 7).
//!
//! Never does: networking, or write to the store.

use std::collections::BTreeMap;

use sentinel_certs::{CaCert, RevocationHandle, Revoked};
use sentinel_schema::{AuthorId, Body, BodyKind, DeviceRole};
use sentinel_sync::SyncStore;

use crate::node::NodeError;
use crate::store::Store;

/// The `revocation` entries in the log whose author's stored certificate
/// verifies under `ca` as a hub's, in log order.
pub fn hub_revocations(store: &Store, ca: &CaCert) -> Result<Vec<Revoked>, NodeError> {
    let mut hubs: BTreeMap<AuthorId, bool> = BTreeMap::new();
    let mut out = Vec::new();
    for e in store.entries_of_kind(BodyKind::Revocation)? {
        let author = e.author();
        let is_hub = match hubs.get(&author) {
            Some(known) => *known,
            None => {
                let is_hub = store.certificate(&author)?.is_some_and(|der| {
                    sentinel_certs::verify_identity(&der, ca)
                        .is_ok_and(|id| id.role == DeviceRole::Hub && id.author == author)
                });
                hubs.insert(author, is_hub);
                is_hub
            }
        };
        if let (true, Body::Revocation(r)) = (is_hub, &e.entry().body) {
            out.push(r.clone());
        }
    }
    Ok(out)
}

/// Everything `store` holds revoked under `ca`: its stored revocation list
/// (however old: two offline nodes must still reach each other) and the
/// hubs' revocation entries.
pub fn revocation_handle(store: &Store, ca: &CaCert) -> Result<RevocationHandle, NodeError> {
    let revocations = match store.revocation_list()? {
        Some(bytes) => RevocationHandle::from_signed(&bytes, ca)
            .map_err(|e| NodeError::Revocations(e.to_string()))?,
        None => RevocationHandle::empty(),
    };
    for r in hub_revocations(store, ca)? {
        revocations.add_entry_revocation(r);
    }
    Ok(revocations)
}
