//! Which entries count: the revocations in force as `revoked_authors`
//! holds them (written by [`super::revoked`]), and the test every reader
//! of the log applies — an entry of a revoked author past its last valid
//! seq counts nowhere but in the log and the timeline (views, role
//! grants, an event's history).
//!
//! Never does: write, or judge a revocation.

use std::collections::BTreeMap;

use sentinel_schema::{AuthorId, SignedEntry};
use tokio_postgres::Transaction;

use super::{id32, uint, StoreError};

/// Revocations in force: `author → last valid seq`.
pub type Revoked = BTreeMap<AuthorId, u64>;

/// Whether `e` counts under `revoked`.
pub(super) fn counts(revoked: &Revoked, e: &SignedEntry) -> bool {
    revoked.get(&e.author()).is_none_or(|last| e.seq() <= *last)
}

/// The SQL condition that entry `e` (an alias of `entries`) counts.
pub(super) const COUNTS: &str = "NOT EXISTS (SELECT 1 FROM revoked_authors r
    WHERE r.author = e.author AND e.seq > r.last_valid_seq)";

/// The revocations in force, as the table holds them.
pub(super) async fn revoked_authors(tx: &Transaction<'_>) -> Result<Revoked, StoreError> {
    let rows = tx
        .query("SELECT author, last_valid_seq FROM revoked_authors", &[])
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                AuthorId(id32(r.get(0), "revoked_authors.author")?),
                uint(r.get(1), "revoked_authors.last_valid_seq")?,
            ))
        })
        .collect()
}
