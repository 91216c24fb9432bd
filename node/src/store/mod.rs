//! The node's SQLite/SpatiaLite store.
//!
//! One file; WAL; `synchronous=FULL` so a committed transaction survives
//! power loss; defensive mode and `trusted_schema=off` because the file is
//! outside input too. One writer (this process), readers in parallel.
//!
//! All of the node's SQL is here (invariant 10), and so is every
//! transaction: the rest of the node asks the store, in the vocabulary of
//! `sentinel_schema` (`query::EventSearch`, `EventRecord`, readings…),
//! and never sees a statement.
//!
//! Submodules: [`log`] (entries, heads, forks, quarantine), [`local`] (the
//! commit of this node's own entries with their views), [`project`] (log →
//! views), [`query`] (search) with [`filter`] (the WHERE builder it shares
//! with readings), [`events`] (one event, its history and media, the log
//! around it), [`export`] (the events view row by row), [`audit`] (chain
//! verification), [`evidence`] (the quota on quarantine and forks),
//! [`checkpoints`] (hub checkpoints and breaches against
//! them), [`receipts`] (what hubs acknowledged; the outbox), [`people`]
//! (accounts and tokens of the HTTP API; roles from the log),
//! [`readings`] (sensor readings as a time series), [`revoked`] (the
//! revocations in force, applied to what the log already holds) with
//! [`verdict`] (which entries count), [`redactions`] (what redactions
//! erase, and the blobs to remove),
//! [`migrations`] (the schema), [`sync_store`] (the store as the sync
//! protocol sees it), [`snapshot`] (a copy taken while the node runs).

pub mod audit;
pub mod checkpoints;
pub mod events;
pub mod evidence;
pub mod export;
mod filter;
pub mod link_state;
pub mod links;
pub mod local;
pub mod log;
pub mod migrations;
pub mod people;
pub mod project;
pub mod query;
pub mod readings;
pub mod receipts;
pub mod redactions;
pub mod revoked;
pub mod snapshot;
pub mod sync_store;
pub mod verdict;

use std::path::{Path, PathBuf};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sentinel_schema::{AuthorId, DecodeError, EventError, EventId};

use crate::spatialite::{self, SpatialiteError};

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Spatialite(#[from] SpatialiteError),
    /// The store's file could not be created private, or closed up.
    #[error("{}: {source}", path.display())]
    Permissions {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a store already exists at {0}; refusing to overwrite it")]
    AlreadyExists(PathBuf),
    #[error("no store at {0}: run `sentinel-node init` first")]
    Missing(PathBuf),
    #[error("the store has schema version {found}, newer than this program's {supported}: upgrade sentinel-node")]
    SchemaTooNew { found: i64, supported: i64 },
    /// A row holds bytes that do not decode: the file was damaged or
    /// edited. `audit verify` names the entry.
    #[error("stored entry at log position {pos} does not decode: {source}")]
    CorruptEntry {
        pos: i64,
        #[source]
        source: DecodeError,
    },
    #[error("stored document for event {event} is unreadable: {source}")]
    CorruptDocument {
        event: EventId,
        #[source]
        source: EventError,
    },
    /// A SpatiaLite function reported failure (it returns 0 rather than
    /// raising an error).
    #[error("SpatiaLite refused: {0}")]
    SpatialiteRefused(&'static str),
    #[error("corrupt value in column {column}")]
    CorruptColumn { column: &'static str },
    /// A row of the `events` view holds a value the view never writes
    /// (the file was damaged or edited).
    #[error("events row {fid}: corrupt value in column `{column}`")]
    CorruptEventRow { fid: i64, column: &'static str },
}

/// An open store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Judges the revocations in force (installed by the node, which holds
    /// the deployment CA); `None`: nothing is judged revoked.
    judge: Option<revoked::Judge>,
    /// What enforcing revocations changed in the views since the last
    /// [`Store::project_pending`], which reports it.
    enforced: project::Projected,
}

impl Store {
    /// Creates a new store file; refuses if one exists.
    pub fn create(path: &Path) -> Result<Store, StoreError> {
        if path.exists() {
            return Err(StoreError::AlreadyExists(path.to_path_buf()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        // Find SpatiaLite before creating anything, and remove a half-made
        // file on failure, so that a fixed retry of `init` just works.
        spatialite::locate()?;
        // The file is made empty and private (0600) before SQLite opens it;
        // SQLite gives its WAL and shared-memory files the database's mode.
        create_private_file(path)?;
        Store::open_with(path, flags).inspect_err(|_| remove_db_files(path))
    }

    /// Opens an existing store, migrating it if needed.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.to_path_buf()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Store::open_with(path, flags)
    }

    fn open_with(path: &Path, flags: OpenFlags) -> Result<Store, StoreError> {
        let mut conn = Connection::open_with_flags(path, flags)?;
        // A second process (another CLI command, `serve` syncing) waits
        // instead of failing — from the first statement on, the WAL
        // pragma included.
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Every transaction takes the write lock when it begins: one that
        // read first and wrote later would fail at once (not wait) when
        // another process had committed in between (SQLITE_BUSY in WAL).
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        spatialite::load(&conn)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
        conn.pragma_update(None, "trusted_schema", false)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        crate::sqlfn::register(&conn)?;
        migrations::migrate(&mut conn)?;
        // A store made before files were private, or copied in with open
        // modes, is closed up (its WAL files exist once it is open).
        close_up_db_files(path)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            judge: None,
            enforced: project::Projected::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for tests and tools that inspect the file; the
    /// node itself asks this store's methods (invariant 10).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(in crate::store) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Commits verified entries from other authors to the log (see
    /// [`log::apply_remote`]); the views follow with [`Store::project_pending`].
    /// Only chain continuity is checked here: certificate, validity,
    /// revocation and role are the caller's (the sync session's) checks.
    /// When the entries hold a `revocation`, the revocations in force are
    /// judged again in the same transaction ([`revoked`]).
    pub fn apply_remote(
        &mut self,
        entries: Vec<sentinel_schema::VerifiedEntry>,
        now_ms: u64,
    ) -> Result<log::ApplyReport, StoreError> {
        let judge = self
            .judge
            .as_ref()
            .filter(|_| revoked::any_revocation(entries.iter().map(|e| &**e)));
        let (report, enforced) = log::apply_remote(&mut self.conn, entries, now_ms, judge)?;
        self.note_enforced(enforced);
        Ok(report)
    }

    /// Keeps what enforcing revocations changed for the next
    /// [`Store::project_pending`] to report.
    pub(in crate::store) fn note_enforced(&mut self, enforced: revoked::Enforced) {
        self.enforced.events.extend(enforced.projected.events);
        self.enforced.removed.extend(enforced.removed);
    }

    /// Puts the connection back in a usable state after a panic while the
    /// store was in use: a transaction left open is rolled back (a
    /// `rusqlite::Transaction` dropped while unwinding rolls back by
    /// itself; this is for a panic between other statements).
    pub fn recover(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// The schema version of the file (`PRAGMA user_version`): the
    /// number of migrations applied.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// A value from the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            rusqlite::params![key, value],
        )?;
        Ok(())
    }

    /// The author this store belongs to, recorded at `init`.
    pub fn owner(&self) -> Result<Option<AuthorId>, StoreError> {
        self.meta("owner")?
            .map(|v| {
                <[u8; 32]>::try_from(v.as_slice())
                    .map(AuthorId)
                    .map_err(|_| StoreError::CorruptColumn {
                        column: "meta.owner",
                    })
            })
            .transpose()
    }
}

/// Creates an empty file with mode 0600 (on Unix), refusing one that exists.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
        .map(drop)
        .map_err(|source| StoreError::Permissions {
            path: path.to_path_buf(),
            source,
        })
}

/// Takes group and other permissions away from the database file and its
/// WAL companions (Unix; a no-op elsewhere).
fn close_up_db_files(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm", "-journal"] {
        use std::os::unix::fs::PermissionsExt;
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let p = PathBuf::from(p);
        let fail = |source| StoreError::Permissions {
            path: p.clone(),
            source,
        };
        let held = match std::fs::metadata(&p) {
            Ok(m) => m.permissions().mode() & 0o7777,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(fail(e)),
        };
        if held & 0o077 != 0 {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(held & 0o7700))
                .map_err(fail)?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Removes a database file and its WAL companions (best effort).
pub(crate) fn remove_db_files(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// Reads a fixed-size blob column.
pub(crate) fn blob<const N: usize>(
    row: &rusqlite::Row<'_>,
    idx: usize,
    column: &'static str,
) -> Result<[u8; N], StoreError> {
    let v: Vec<u8> = row.get(idx)?;
    <[u8; N]>::try_from(v.as_slice()).map_err(|_| StoreError::CorruptColumn { column })
}
