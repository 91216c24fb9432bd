//! Device revocations the hub enforces besides the CA list: `revocation`
//! entries signed by a hub (`docs/security.md` 1.7).
//!
//! An admin issues one with `POST /api/v1/devices/{key}/revoke`; the hub
//! signs it into its own chain ([`crate::own::OwnChain`]), which adds it at
//! once to the [`RevocationHandle`] the TLS verifiers and sync sessions
//! share. Revocation entries of other hubs arrive by sync and are added by
//! the sync server as each is applied. At start, [`load`] adds every one
//! the log holds, so a restart keeps them.
//!
//! Never does: loosen a revocation (the handle keeps the lowest last
//! valid seq per author, whatever order entries come in), or read the
//! database itself (the store lists the entries, this module checks who
//! signed them).

use sentinel_certs::{verify_identity, CaCert, RevocationHandle, Revoked};
use sentinel_schema::{AuthorId, Body, DeviceRole, SignedEntry};

use crate::store::{PgStore, StoreError};

/// One `revocation` entry of the log whose author is a hub.
#[derive(Debug, Clone)]
pub struct HubRevocation {
    /// The hub that signed it.
    pub by: AuthorId,
    pub revoked: Revoked,
    pub entry: SignedEntry,
}

/// Every `revocation` entry in the log whose author's stored certificate
/// verifies under `ca` as a hub's, in log order.
///
/// The sync session admits revocation entries only from hub certificates,
/// and the own chain writes them with the hub's; checking again here keeps
/// entries put in by other paths (bulk ingest) from revoking anyone.
pub async fn hub_revocations(
    store: &PgStore,
    ca: &CaCert,
) -> Result<Vec<HubRevocation>, StoreError> {
    let mut out = Vec::new();
    for (entry, der) in store.revocation_entries().await? {
        let Some(der) = der else {
            continue;
        };
        let by = entry.author();
        let is_hub =
            verify_identity(&der, ca).is_ok_and(|id| id.role == DeviceRole::Hub && id.author == by);
        if let (true, Body::Revocation(revoked)) = (is_hub, &entry.entry().body) {
            out.push(HubRevocation {
                by,
                revoked: revoked.clone(),
                entry,
            });
        }
    }
    Ok(out)
}

/// The strictest hub revocation of `key` in the log, if any.
pub async fn hub_revocation_of(
    store: &PgStore,
    ca: &CaCert,
    key: &AuthorId,
) -> Result<Option<HubRevocation>, StoreError> {
    Ok(hub_revocations(store, ca)
        .await?
        .into_iter()
        .filter(|r| r.revoked.key == *key)
        .min_by_key(|r| r.revoked.last_valid_seq))
}

/// Adds every hub revocation in the log to `handle`; answers how many
/// entries there were.
pub async fn load(
    store: &PgStore,
    ca: &CaCert,
    handle: &RevocationHandle,
) -> Result<usize, StoreError> {
    let all = hub_revocations(store, ca).await?;
    for r in &all {
        handle.add_entry_revocation(r.revoked.clone());
    }
    Ok(all.len())
}
