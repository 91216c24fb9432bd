//! A consistent copy of the store while the node runs: `VACUUM INTO`, which
//! reads the database in one read transaction (the WAL's writers go on)
//! and writes a new, compacted database file. `crate::snapshot` makes a
//! whole data directory of it.

use std::path::Path;

use super::{Store, StoreError};

impl Store {
    /// Writes a copy of the database, as of one moment, to `path` (a file
    /// that must not exist yet; SQLite refuses one that does).
    pub fn snapshot_into(&self, path: &Path) -> Result<(), StoreError> {
        let target = path.to_string_lossy();
        self.conn().execute("VACUUM INTO ?1", [target.as_ref()])?;
        Ok(())
    }
}
