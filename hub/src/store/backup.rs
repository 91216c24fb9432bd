//! What a backup reads from the database, and what a restore checks and
//! records (`crate::backup` runs the programs and copies the files).
//!
//! - [`PgStore::in_exported_snapshot`]: a read-only repeatable-read
//!   transaction exports its snapshot (`pg_export_snapshot()`); the
//!   caller's dump runs in that same snapshot (`pg_dump --snapshot`), and
//!   then, still in it, the store reads what the dump holds: how many
//!   entries and authors, and every media blob the dumped log names. So
//!   the blobs a backup copies are exactly those its database names, with
//!   no window between the two.
//! - [`user_tables`]: the tables a database holds besides those of its
//!   extensions (PostGIS's own), so a restore goes only into an empty one.
//! - [`restored_counts`] and [`record_restore`]: after `pg_restore`, the
//!   counts checked against the backup's manifest, and a `meta` row saying
//!   the database was restored, from which backup and when.
//!
//! These connect without migrating: a restore must see the database as it
//! is, not as `PgStore::open` would make it.

use std::future::Future;

use tokio_postgres::{Config, IsolationLevel, NoTls};

use super::{media, uint, PgStore, StoreError};

/// The `meta` key a restore records itself under.
pub const RESTORED_FROM: &str = "restored_from";

/// What the database held in the snapshot a backup dumped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotContents {
    /// Entries in the log.
    pub entries: u64,
    /// Authors with a chain (rows of `heads`).
    pub authors: u64,
    /// Every blob a `media_attached` entry names, with its announced size,
    /// in hash order.
    pub blobs: Vec<([u8; 32], u64)>,
}

/// Why [`PgStore::in_exported_snapshot`] failed: the database, or the
/// caller's dump.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError<E> {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dump(E),
}

impl PgStore {
    /// Opens a read-only repeatable-read transaction, exports its
    /// snapshot, runs `dump` with the snapshot's name while the
    /// transaction stays open, then reads [`SnapshotContents`] in the same
    /// snapshot.
    pub async fn in_exported_snapshot<T, E, F, Fut>(
        &self,
        dump: F,
    ) -> Result<(T, SnapshotContents), SnapshotError<E>>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(StoreError::from)?;
        let row = tx
            .query_one("SELECT pg_export_snapshot()", &[])
            .await
            .map_err(StoreError::from)?;
        let snapshot: String = row.get(0);
        let dumped = dump(snapshot).await.map_err(SnapshotError::Dump)?;
        let (entries, authors) = counts(&tx).await?;
        let blobs = media::named_in(&tx).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok((
            dumped,
            SnapshotContents {
                entries,
                authors,
                blobs,
            },
        ))
    }

    /// What a restore recorded ([`record_restore`]), if this database was
    /// restored from a backup.
    pub async fn restored_from(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.meta(RESTORED_FROM).await
    }
}

/// Entries and authors in the log, in the caller's transaction.
async fn counts(tx: &tokio_postgres::Transaction<'_>) -> Result<(u64, u64), StoreError> {
    let row = tx
        .query_one(
            "SELECT (SELECT count(*) FROM entries), (SELECT count(*) FROM heads)",
            &[],
        )
        .await?;
    Ok((
        uint(row.get(0), "count(entries)")?,
        uint(row.get(1), "count(heads)")?,
    ))
}

/// One connection of its own, without migrations, driven by a task.
async fn connect(
    config: &Config,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), StoreError> {
    let (client, connection) = config.connect(NoTls).await?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((client, driver))
}

/// The tables (and views, sequences) of the database `config` names that
/// belong to no extension, by schema-qualified name, at most `limit` of
/// them: empty for a new database, with or without PostGIS.
pub async fn user_tables(config: &Config, limit: i64) -> Result<Vec<String>, StoreError> {
    let (client, driver) = connect(config).await?;
    let rows = client
        .query(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_toast%'
               AND NOT EXISTS (SELECT 1 FROM pg_depend d
                   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                     AND d.deptype = 'e')
             ORDER BY 1 LIMIT $1",
            &[&limit],
        )
        .await;
    drop(client);
    let _ = driver.await;
    Ok(rows?.iter().map(|r| r.get(0)).collect())
}

/// Entries and authors in the log of the database `config` names (a
/// restored one, to check against its backup's manifest).
pub async fn restored_counts(config: &Config) -> Result<(u64, u64), StoreError> {
    let (mut client, driver) = connect(config).await?;
    let counted = async {
        let tx = client.transaction().await?;
        let c = counts(&tx).await?;
        tx.commit().await?;
        Ok::<_, StoreError>(c)
    }
    .await;
    drop(client);
    let _ = driver.await;
    counted
}

/// Records in `meta` that the database was restored: `record` is what the
/// restore says about itself (the backup's time and manifest hash, the
/// time of the restore), replacing an earlier record.
pub async fn record_restore(config: &Config, record: &[u8]) -> Result<(), StoreError> {
    let (client, driver) = connect(config).await?;
    let done = client
        .execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&RESTORED_FROM, &record],
        )
        .await;
    drop(client);
    let _ = driver.await;
    done?;
    Ok(())
}
