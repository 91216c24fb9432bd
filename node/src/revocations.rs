//! Which devices this node holds revoked: the newest revocation list the
//! deployment CA signed, plus the `revocation` entries hubs wrote
//! (`docs/security.md` 1.7), gathered into one [`RevocationHandle`] that
//! the TLS verifiers, the sync sessions and the sensor push share — and,
//! through the store's [`Judge`] ([`judge`]), applied to what the log
//! already holds (`crate::store::revoked`).
//!
//! A `revocation` entry counts only when its author's stored certificate
//! verifies under the deployment CA as a hub's. Sessions admit them only
//! from hub certificates; checking again keeps entries that came another
//! way (an import) from revoking anyone (invariant 7). Nor does one count
//! when its author is itself revoked at that entry's seq: a compromised
//! hub's revocations after its last valid seq revoke nobody.
//!
//! Never does: networking, or write to the store.

use std::collections::BTreeMap;

use sentinel_certs::{CaCert, RevocationHandle, RevocationList, Revoked};
use sentinel_schema::{AuthorId, Body, DeviceRole, SignedEntry};
use sentinel_sync::SyncStore;

use crate::error::NodeError;
use crate::store::revoked::{Judge, RevocationEntry};
use crate::store::Store;

/// What `list` (CA-signed bytes, if any) and the log's revocation
/// `entries` (each with its author's stored certificate) revoke under
/// `ca`: the list, if it verifies, and the entry revocations that count.
///
/// Entries count when their author's certificate verifies as a hub's and
/// the author is not revoked at the entry's seq. Which authors are revoked
/// depends on which entries count, so they are taken in rounds until
/// nothing changes, starting from the CA's list (the authority), in HLC
/// order (then author, then seq) within a round: the same entries give the
/// same verdict in whatever order they arrived.
pub fn in_force(
    ca: &CaCert,
    list: Option<&[u8]>,
    entries: &[RevocationEntry],
) -> (Option<RevocationList>, Vec<Revoked>) {
    let list = list.and_then(|bytes| RevocationList::verify(bytes, ca).ok());
    let mut hubs: BTreeMap<AuthorId, bool> = BTreeMap::new();
    let mut candidates: Vec<(&SignedEntry, &Revoked)> = Vec::new();
    for (e, der) in entries {
        let author = e.author();
        let is_hub = *hubs.entry(author).or_insert_with(|| {
            der.as_ref().is_some_and(|der| {
                sentinel_certs::verify_identity(der, ca)
                    .is_ok_and(|id| id.role == DeviceRole::Hub && id.author == author)
            })
        });
        if let (true, Body::Revocation(r)) = (is_hub, &e.entry().body) {
            candidates.push((e, r));
        }
    }
    candidates.sort_by_key(|(e, _)| (e.entry().hlc, e.author(), e.seq()));
    let mut last_valid: BTreeMap<AuthorId, u64> = BTreeMap::new();
    if let Some(l) = &list {
        for r in &l.revoked {
            tighten(&mut last_valid, r.key, r.last_valid_seq);
        }
    }
    let mut counted = vec![false; candidates.len()];
    loop {
        let mut changed = false;
        for (i, (e, r)) in candidates.iter().enumerate() {
            let valid = last_valid
                .get(&e.author())
                .is_none_or(|last| e.seq() <= *last);
            if !counted[i] && valid {
                counted[i] = true;
                changed = true;
                tighten(&mut last_valid, r.key, r.last_valid_seq);
            }
        }
        if !changed {
            break;
        }
    }
    let entry_revocations = candidates
        .into_iter()
        .zip(counted)
        .filter(|(_, counted)| *counted)
        .map(|((_, r), _)| r.clone())
        .collect();
    (list, entry_revocations)
}

fn tighten(map: &mut BTreeMap<AuthorId, u64>, key: AuthorId, last_valid_seq: u64) {
    let held = map.entry(key).or_insert(last_valid_seq);
    *held = (*held).min(last_valid_seq);
}

/// The store's judge of revocations under `ca` ([`in_force`], merged per
/// author to the strictest last valid seq).
pub fn judge(ca: CaCert) -> Judge {
    Judge(Box::new(move |list, entries| {
        let (list, from_entries) = in_force(&ca, list, entries);
        let mut out = BTreeMap::new();
        for r in list.iter().flat_map(|l| &l.revoked).chain(&from_entries) {
            tighten(&mut out, r.key, r.last_valid_seq);
        }
        out
    }))
}

/// The `revocation` entries in the log that count under `ca` (see
/// [`in_force`]), in HLC order.
pub fn hub_revocations(store: &Store, ca: &CaCert) -> Result<Vec<Revoked>, NodeError> {
    let list = store.revocation_list()?;
    let entries = store.revocation_entries()?;
    Ok(in_force(ca, list.as_deref(), &entries).1)
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
