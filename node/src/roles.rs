//! Who holds which role on this node.
//!
//! Roles are `role_grant` entries in the node's log, counted only when
//! their author's stored certificate verifies under the deployment CA as
//! a hub's (sync admits only those; this check keeps it so whatever
//! reached the log, invariant 7). A node that is not enrolled knows no
//! CA, so no grant counts there.
//!
//! **The device's own officer** (`docs/security.md` 3.2). An account the
//! CLI created with `user add NAME --device-officer` is an officer on this
//! device only, until a counted hub grant names that person: from then on
//! the hub's newest grant decides, whatever it says (`none` withdraws the
//! role). The mark is local state of the accounts table, never an entry,
//! never synced, and never more than officer. It adds no power: whoever
//! runs the CLI holds the device key and could sign as the device anyway.
//!
//! Never does: authenticate anyone (the HTTP API's tokens do), or write.

use std::collections::{BTreeMap, BTreeSet};

use sentinel_certs::CaCert;
use sentinel_schema::{DeviceRole, PersonRole};
use sentinel_sync::SyncStore;

use crate::error::NodeError;
use crate::store::people::HubRoles;
use crate::store::Store;

/// Every person's role on this node: the newest grant by a hub whose
/// certificate the node holds and `ca` verifies; for a device officer no
/// such grant names, officer.
pub fn roles(
    store: &Store,
    ca: Option<&CaCert>,
) -> Result<BTreeMap<String, PersonRole>, NodeError> {
    let HubRoles { mut roles, named } = hub_roles(store, ca)?;
    for person in store.device_officers()? {
        if !named.contains(&person) {
            roles.insert(person, PersonRole::Officer);
        }
    }
    Ok(roles)
}

/// What the hubs `ca` vouches for granted.
fn hub_roles(store: &Store, ca: Option<&CaCert>) -> Result<HubRoles, NodeError> {
    let Some(ca) = ca else {
        return Ok(HubRoles::default());
    };
    let mut hubs = BTreeSet::new();
    for author in store.role_grant_authors()? {
        let Some(der) = store.certificate(&author)? else {
            continue;
        };
        match sentinel_certs::verify_identity(&der, ca) {
            Ok(id) if id.role == DeviceRole::Hub && id.author == author => {
                hubs.insert(author);
            }
            _ => {}
        }
    }
    Ok(store.hub_roles(|a| hubs.contains(a))?)
}

/// One person's role ([`PersonRole::None`] without a grant).
pub fn role_of(store: &Store, ca: Option<&CaCert>, person: &str) -> Result<PersonRole, NodeError> {
    Ok(roles(store, ca)?
        .get(person)
        .copied()
        .unwrap_or(PersonRole::None))
}
