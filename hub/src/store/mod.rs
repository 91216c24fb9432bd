//! The hub's store: the entry log and its views in PostgreSQL/PostGIS.
//!
//! [`PgStore`] is async and pooled (deadpool). It keeps the semantics of
//! the node's store: chain checks with [`sentinel_schema::check_link`],
//! quarantine with [`sentinel_schema::ChainFault::code`], forks kept as
//! evidence, gap-quarantined entries released when the gap closes. A batch
//! is written with binary `COPY` into a staging table and moved into the
//! log with one `INSERT … SELECT`, heads updated in the same transaction
//! (see `ingest.rs`). [`PgSyncStore`] is the blocking face the sync protocol
//! drives.
//!
//! The schema is versioned migrations (`hub/migrations`, embedded with
//! refinery) applied by [`PgStore::open`].
//!
//! The store owns every SQL statement of the hub and every transaction
//! (invariant 10): the API and the sync server ask it questions in the
//! vocabulary of `sentinel_schema::query` ([`query`], [`readings`]) or in
//! its own types, and never see a row. Besides the log (`apply.rs`,
//! `log.rs`, `ingest.rs`) and the projector ([`project`]): accounts and
//! tokens ([`people`]), peer status ([`peers`]), media names ([`media`]),
//! the reads of the API ([`query`], [`readings`]) and the one WHERE
//! builder they share (`filter`), the quota on evidence ([`evidence`]),
//! the evidence operators must act on ([`alerts`]), what the audit stream
//! follows and its mark ([`audit`]),
//! the `events` rows the projector writes
//! (`rows`), and the revocations in force applied to what the log holds
//! ([`revoked`], with [`verdict`]: which entries count), and webhooks'
//! subscriptions and outbox ([`webhooks`], enqueued by the projector),
//! and what a backup reads in the snapshot it dumps and a restore checks
//! ([`backup`]).
//!
//! Never does: HTTP, QUIC, or decide who may read what.

pub mod alerts;
mod apply;
pub mod audit;
pub mod backup;
mod blocking;
pub mod evidence;
mod filter;
mod ingest;
mod log;
pub mod media;
pub mod peers;
pub mod people;
pub mod project;
pub mod query;
pub mod readings;
pub mod redactions;
pub mod revoked;
mod rows;
pub mod verdict;
pub mod webhooks;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use sentinel_schema::{AuthorId, BodyKind, DecodeError, EventId, SignedEntry};
use tokio_postgres::NoTls;

/// Seconds a caller waited for a pooled PostgreSQL connection (histogram).
pub const POOL_WAIT: &str = "sentinel_hub_db_pool_wait_seconds";

pub use blocking::PgSyncStore;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The migrations hold this advisory lock while they run, so hubs starting
/// together on one database do not migrate it twice at once.
const MIGRATION_LOCK: i64 = 0x5345_4e54_494e_454c; // "SENTINEL"

/// The `meta` key of the revocation list.
const REVOCATION_LIST: &str = "revocation_list";

/// Why a store operation failed. Nothing of a failed write was kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// PostgreSQL refused a statement or the connection broke.
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// No connection could be had from the pool.
    #[error("connection pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The pool could not be built from the configuration.
    #[error("building the connection pool: {0}")]
    BuildPool(#[from] deadpool_postgres::BuildError),
    /// A migration failed; the database stays at the last one that ran.
    #[error("migrating the schema: {0}")]
    Migrate(#[from] refinery::Error),
    /// Bytes in the log no longer decode as the entry they were.
    #[error("corrupt entry at log position {pos}: {source}")]
    CorruptEntry { pos: i64, source: DecodeError },
    /// A column holds a value of the wrong shape (e.g. an id not 32 bytes).
    #[error("corrupt value in column {column}")]
    CorruptColumn { column: &'static str },
    /// A number does not fit the column's signed 64-bit type.
    #[error("{value} is out of range for column {column}")]
    OutOfRange { column: &'static str, value: u64 },
    /// An event's document, saved or rebuilt from the log, does not read
    /// as an event.
    #[error("event {event}: its document does not read: {source}")]
    Document {
        event: EventId,
        source: sentinel_schema::EventError,
    },
}

/// The entry log and its views in one PostgreSQL database.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Judges the revocations in force ([`revoked`]); shared by every
    /// clone, set once (by `crate::revocations::load`).
    judge: Arc<OnceLock<revoked::Judge>>,
    /// Most bytes of entries quarantine and forks keep ([`evidence`]).
    evidence_quota: Arc<AtomicU64>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.pool.status())
            .finish()
    }
}

impl PgStore {
    /// Connects with at most `max_connections` pooled connections and
    /// brings the schema to the newest migration. The caller must be inside
    /// a tokio runtime; the pool's connections are driven by tasks spawned
    /// on it, so it must outlive the store.
    pub async fn open(
        config: tokio_postgres::Config,
        max_connections: usize,
    ) -> Result<PgStore, StoreError> {
        migrate(&config).await?;
        PgStore::connect(config, max_connections)
    }

    /// [`PgStore::open`] without the migrations: for a backup, which reads
    /// a serving hub's database and must never change it, even when this
    /// binary is newer than the hub that serves it.
    pub fn connect(
        config: tokio_postgres::Config,
        max_connections: usize,
    ) -> Result<PgStore, StoreError> {
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .build()?;
        Ok(PgStore {
            pool,
            judge: Arc::new(OnceLock::new()),
            evidence_quota: Arc::new(AtomicU64::new(evidence::DEFAULT_QUOTA)),
        })
    }

    /// Most connections the pool holds.
    pub fn pool_size(&self) -> usize {
        self.pool.status().max_size
    }

    /// A pooled connection. The hub's own code asks the store's methods
    /// (SQL lives here, invariant 10); tests and benchmarks use this to
    /// look at the tables directly.
    pub async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        let began = std::time::Instant::now();
        let client = self.pool.get().await?;
        // How long callers queue for a connection: with every connection
        // busy, requests wait here, not in PostgreSQL.
        metrics::histogram!(POOL_WAIT).record(began.elapsed().as_secs_f64());
        Ok(client)
    }

    /// The DER certificate of an author, if this store has one.
    pub async fn certificate(&self, author: &AuthorId) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT der FROM certificates WHERE author = $1",
                &[&author.as_bytes().as_slice()],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Stores certificates the caller verified against the deployment CA;
    /// a newer certificate of an author replaces the one held.
    pub async fn add_certificates(
        &self,
        certificates: &[(AuthorId, Vec<u8>)],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let authors: Vec<&[u8]> = certificates.iter().map(|(a, _)| a.0.as_slice()).collect();
        let ders: Vec<&[u8]> = certificates.iter().map(|(_, d)| d.as_slice()).collect();
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO certificates (author, der, received_ms)
                 SELECT author, der, $3 FROM unnest($1::bytea[], $2::bytea[]) AS c(author, der)
                 ON CONFLICT (author) DO UPDATE SET der = excluded.der,
                     received_ms = excluded.received_ms",
                &[&authors, &ders, &int(now_ms, "certificates.received_ms")?],
            )
            .await?;
        Ok(())
    }

    /// Every `revocation` entry in the log, in log order, each with its
    /// author's stored certificate if the store holds one (for the caller
    /// to check that a hub signed it: `crate::revocations`).
    pub async fn revocation_entries(
        &self,
    ) -> Result<Vec<(SignedEntry, Option<Vec<u8>>)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT e.pos, e.bytes, c.der FROM entries e
                 LEFT JOIN certificates c ON c.author = e.author
                 WHERE e.kind = $1 ORDER BY e.pos",
                &[&i16::from(BodyKind::Revocation as u8)],
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                let pos: i64 = r.get(0);
                let entry = SignedEntry::from_bytes(r.get::<_, Vec<u8>>(1))
                    .map_err(|source| StoreError::CorruptEntry { pos, source })?;
                Ok((entry, r.get(2)))
            })
            .collect()
    }

    /// The newest revocation list this store holds (the CA-signed bytes).
    pub async fn revocation_list(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.meta(REVOCATION_LIST).await
    }

    /// Replaces the revocation list with a newer one the caller verified
    /// and, in the same transaction, applies what it revokes to what the
    /// log already holds ([`revoked`]).
    pub async fn set_revocation_list(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&REVOCATION_LIST, &bytes],
        )
        .await?;
        if let Some(judge) = self.judge() {
            revoked::enforce(&tx, judge).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
            .await?;
        Ok(row.map(|r| r.get(0)))
    }
}

impl PgStore {
    /// The versions of the migrations built into this binary that the
    /// database has not applied (empty when it is up to date). A database
    /// migrated by a newer hub may hold more; that is not "missing".
    pub async fn missing_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let client = self.client().await?;
        let applied: Vec<i64> = client
            .query(
                "SELECT version FROM refinery_schema_history ORDER BY version",
                &[],
            )
            .await?
            .iter()
            .map(|r| i64::from(r.get::<_, i32>(0)))
            .collect();
        let mut missing: Vec<i64> = embedded::migrations::runner()
            .get_migrations()
            .iter()
            .map(|m| i64::from(m.version()))
            .filter(|v| applied.binary_search(v).is_err())
            .collect();
        missing.sort_unstable();
        Ok(missing)
    }
}

/// Runs the embedded migrations on a connection of its own, under an
/// advisory lock.
async fn migrate(config: &tokio_postgres::Config) -> Result<(), StoreError> {
    let (mut client, connection) = config.connect(NoTls).await?;
    let driver = tokio::spawn(connection);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let ran = embedded::migrations::runner().run_async(&mut client).await;
    // Closing the connection releases the lock whatever happened.
    drop(client);
    let _ = driver.await;
    ran?;
    Ok(())
}

/// A u64 as the signed 64-bit integer PostgreSQL stores.
fn int(value: u64, column: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { column, value })
}

/// A signed 64-bit column read back as the unsigned number it holds (a
/// seq, a count, a time).
fn uint(value: i64, column: &'static str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::CorruptColumn { column })
}

/// A 32-byte id read back from a `bytea` column.
fn id32(bytes: &[u8], column: &'static str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| StoreError::CorruptColumn { column })
}

/// A 16-byte id (an event's) read back from a `bytea` column.
fn id16(bytes: &[u8], column: &'static str) -> Result<[u8; 16], StoreError> {
    <[u8; 16]>::try_from(bytes).map_err(|_| StoreError::CorruptColumn { column })
}

/// The event an entry is about, if any (indexed for rebuilding documents).
fn event_of(e: &sentinel_schema::SignedEntry) -> Option<EventId> {
    use sentinel_schema::Body;
    match &e.entry().body {
        Body::EventChange(c) => Some(c.event),
        Body::MediaAttached(m) => Some(m.event),
        Body::Redaction(r) => Some(r.event),
        _ => None,
    }
}
