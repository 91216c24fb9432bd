//! Which entries count: the revocations in force as `revoked_authors`
//! holds them (written by [`super::revoked`]), and the test every reader
//! of the log applies — an entry of a revoked author past its last valid
//! seq counts nowhere (views, role grants, history).
//!
//! Never does: write, or judge a revocation.

use std::collections::BTreeMap;

use rusqlite::Connection;
use sentinel_schema::{AuthorId, SignedEntry};

use super::{blob, StoreError};

/// Revocations in force: `author → last valid seq`.
pub type Revoked = BTreeMap<AuthorId, u64>;

/// Whether `e` counts under `revoked`: its author is not revoked, or its
/// seq is at most the last valid one.
pub(crate) fn counts(revoked: &Revoked, e: &SignedEntry) -> bool {
    revoked.get(&e.author()).is_none_or(|last| e.seq() <= *last)
}

/// The revocations in force, as the table holds them.
pub(crate) fn revoked_authors(conn: &Connection) -> Result<Revoked, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT author, last_valid_seq FROM revoked_authors")?;
    let mut rows = stmt.query([])?;
    let mut out = Revoked::new();
    while let Some(r) = rows.next()? {
        let last: i64 = r.get(1)?;
        out.insert(
            AuthorId(blob(r, 0, "revoked_authors.author")?),
            u64::try_from(last).map_err(|_| StoreError::CorruptColumn {
                column: "revoked_authors.last_valid_seq",
            })?,
        );
    }
    Ok(out)
}
