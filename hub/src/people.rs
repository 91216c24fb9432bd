//! People on the hub's HTTP API. Passwords and tokens are
//! [`sentinel_http::people`]'s (shared with the node); accounts and token
//! digests live in [`crate::store::people`]; roles are `role_grant` entries
//! the hub signs ([`grant_role`]).

use sentinel_schema::{Body, PersonRole, RoleGrant, SignedEntry};

pub use sentinel_http::people::*;

use crate::own::{OwnChain, OwnChainError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    #[error(transparent)]
    People(#[from] PeopleError),
    #[error(transparent)]
    OwnChain(#[from] OwnChainError),
    #[error("no entry was written")]
    NotWritten,
}

/// Grants `role` to `person` as an entry the hub signs, on behalf of
/// `granted_by` (the actor). Replicates to nodes like any entry.
pub async fn grant_role(
    own: &OwnChain,
    person: &str,
    role: PersonRole,
    granted_by: &str,
    now_ms: u64,
) -> Result<SignedEntry, GrantError> {
    check_name(person)?;
    own.append(
        vec![Body::RoleGrant(RoleGrant {
            person: person.to_owned(),
            role,
        })],
        Some(granted_by),
        now_ms,
    )
    .await?
    .pop()
    .ok_or(GrantError::NotWritten)
}

/// Deletes expired and revoked tokens every [`TOKEN_PURGE_EVERY`], for as
/// long as the hub runs (`serve` spawns it).
pub async fn purge_tokens(store: crate::PgStore) {
    let mut every = tokio::time::interval(TOKEN_PURGE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match store.purge_tokens(crate::now_ms()).await {
            Ok(n) => tracing::debug!("deleted {n} expired or revoked tokens"),
            Err(e) => tracing::warn!("deleting expired tokens failed: {e}"),
        }
    }
}
