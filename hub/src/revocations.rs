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
//! The same judgement, as the store's [`Judge`] ([`judge`], installed by
//! [`load`]), applies revocations to what the log already holds
//! (`crate::store::revoked`): entries of a revoked author past its last
//! valid seq stop counting, whenever the revocation arrived.
//!
//! Never does: loosen a revocation in the handle (it keeps the lowest last
//! valid seq per author, whatever order entries come in), or read the
//! database itself (the store lists the entries, this module checks who
//! signed them).

use std::collections::BTreeMap;
use std::sync::Arc;

use sentinel_certs::{verify_identity, CaCert, RevocationHandle, RevocationList, Revoked};
use sentinel_schema::{AuthorId, Body, DeviceRole, SignedEntry};

use crate::store::revoked::{Enforced, Judge};
use crate::store::{PgStore, StoreError};

/// One `revocation` entry of the log whose author is a hub.
#[derive(Debug, Clone)]
pub struct HubRevocation {
    /// The hub that signed it.
    pub by: AuthorId,
    pub revoked: Revoked,
    pub entry: SignedEntry,
}

/// What `list` (CA-signed bytes, if any) and the log's revocation
/// `entries` (each with its author's stored certificate) revoke under
/// `ca`: the list, if it verifies, and the entry revocations that count.
///
/// An entry counts when its author's certificate verifies as a hub's
/// (sessions admit revocation entries only from hub certificates and the
/// own chain writes them with the hub's; checking again keeps entries put
/// in by other paths, bulk ingest, from revoking anyone) and its author is
/// not revoked at the entry's seq: a compromised hub's revocations after
/// its last valid seq revoke nobody. Which authors are revoked depends on
/// which entries count, so they are taken in rounds until nothing changes,
/// starting from the CA's list, in HLC order (then author, then seq)
/// within a round: the same entries give the same verdict in whatever
/// order they arrived. (The node judges the same way:
/// `sentinel_node::revocations::in_force`.)
pub fn in_force(
    ca: &CaCert,
    list: Option<&[u8]>,
    entries: &[(SignedEntry, Option<Vec<u8>>)],
) -> (Option<RevocationList>, Vec<HubRevocation>) {
    let list = list.and_then(|bytes| RevocationList::verify(bytes, ca).ok());
    let mut hubs: BTreeMap<AuthorId, bool> = BTreeMap::new();
    let mut candidates: Vec<HubRevocation> = Vec::new();
    for (entry, der) in entries {
        let by = entry.author();
        let is_hub = *hubs.entry(by).or_insert_with(|| {
            der.as_ref().is_some_and(|der| {
                verify_identity(der, ca)
                    .is_ok_and(|id| id.role == DeviceRole::Hub && id.author == by)
            })
        });
        if let (true, Body::Revocation(revoked)) = (is_hub, &entry.entry().body) {
            candidates.push(HubRevocation {
                by,
                revoked: revoked.clone(),
                entry: entry.clone(),
            });
        }
    }
    candidates.sort_by_key(|r| (r.entry.entry().hlc, r.by, r.entry.seq()));
    let mut last_valid: BTreeMap<AuthorId, u64> = BTreeMap::new();
    for r in list.iter().flat_map(|l| &l.revoked) {
        tighten(&mut last_valid, r.key, r.last_valid_seq);
    }
    let mut counted = vec![false; candidates.len()];
    loop {
        let mut changed = false;
        for (i, r) in candidates.iter().enumerate() {
            let valid = last_valid
                .get(&r.by)
                .is_none_or(|last| r.entry.seq() <= *last);
            if !counted[i] && valid {
                counted[i] = true;
                changed = true;
                tighten(&mut last_valid, r.revoked.key, r.revoked.last_valid_seq);
            }
        }
        if !changed {
            break;
        }
    }
    let counted = candidates
        .into_iter()
        .zip(counted)
        .filter_map(|(r, counted)| counted.then_some(r))
        .collect();
    (list, counted)
}

fn tighten(map: &mut BTreeMap<AuthorId, u64>, key: AuthorId, last_valid_seq: u64) {
    let held = map.entry(key).or_insert(last_valid_seq);
    *held = (*held).min(last_valid_seq);
}

/// The store's judge of revocations under `ca` ([`in_force`], merged per
/// author to the strictest last valid seq).
pub fn judge(ca: CaCert) -> Judge {
    Arc::new(move |list, entries| {
        let (list, from_entries) = in_force(&ca, list, entries);
        let mut out = BTreeMap::new();
        for r in list
            .iter()
            .flat_map(|l| &l.revoked)
            .chain(from_entries.iter().map(|r| &r.revoked))
        {
            tighten(&mut out, r.key, r.last_valid_seq);
        }
        out
    })
}

/// Every `revocation` entry in the log that counts under `ca` (see
/// [`in_force`]), in HLC order.
pub async fn hub_revocations(
    store: &PgStore,
    ca: &CaCert,
) -> Result<Vec<HubRevocation>, StoreError> {
    let list = store.revocation_list().await?;
    let entries = store.revocation_entries().await?;
    Ok(in_force(ca, list.as_deref(), &entries).1)
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

/// Judges revocations under `ca` from now on and applies what the log and
/// the stored list revoke to what the log holds ([`PgStore::judge_revocations_with`]),
/// then adds every hub revocation in the log to `handle`; answers how many
/// entries there were.
pub async fn load(
    store: &PgStore,
    ca: &CaCert,
    handle: &RevocationHandle,
) -> Result<usize, StoreError> {
    enforce_under(store, ca).await?;
    let all = hub_revocations(store, ca).await?;
    for r in &all {
        handle.add_entry_revocation(r.revoked.clone());
    }
    Ok(all.len())
}

/// Installs the judge of revocations under `ca` in `store` and enforces
/// the verdict on what the log holds.
pub async fn enforce_under(store: &PgStore, ca: &CaCert) -> Result<Enforced, StoreError> {
    store.judge_revocations_with(judge(ca.clone())).await
}
