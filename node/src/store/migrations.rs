//! Versioned schema migrations, tracked in `PRAGMA user_version`.
//!
//! Tables split in two: the **log** (entries, heads, forks, quarantine,
//! meta) is the truth, kept with the evidence about it (checkpoint
//! breaches, hub receipts); the **views** (documents, events with geometry,
//! full-text index, media) are derived from it and can be emptied and
//! rebuilt at any time (`sentinel-node rebuild-views`).
//!
//! SpatiaLite and `trusted_schema=off`: SpatiaLite maintains geometry
//! constraints and its spatial index with triggers that call SpatiaLite
//! functions, and SQLite refuses such functions inside triggers when the
//! schema is not trusted ("unsafe use of GeometryConstraints()"). We keep
//! `trusted_schema=off` — a database file is outside input, and a crafted one
//! must not run functions from its triggers — so the migration drops those
//! triggers and the store maintains the spatial index itself, in the same
//! transaction as the row (geometry is validated in Rust before it gets
//! here). `CheckSpatialIndex` verifies the result.

use rusqlite::{Connection, Transaction};

use super::StoreError;

/// One migration: runs inside a transaction, then `user_version` is set.
type Migration = fn(&Transaction<'_>) -> Result<(), StoreError>;

const MIGRATIONS: &[Migration] = &[
    v1_log_and_views,
    v2_certificates,
    v3_checkpoints,
    v4_receipts,
    v5_people,
    v6_readings,
    v7_logins,
    v8_revoked,
    v9_evidence,
    v10_device_officer,
    v11_links,
    v12_link_states,
    v13_redactions,
];

/// The schema version this code writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn v1_log_and_views(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value BLOB NOT NULL
        ) STRICT;

        -- The log: every entry this node holds, in the order it arrived.
        CREATE TABLE entries (
            pos         INTEGER PRIMARY KEY,
            author      BLOB    NOT NULL,
            seq         INTEGER NOT NULL,
            id          BLOB    NOT NULL UNIQUE,
            hlc_ms      INTEGER NOT NULL,
            hlc_counter INTEGER NOT NULL,
            kind        INTEGER NOT NULL,
            actor       TEXT,
            event       BLOB,
            bytes       BLOB    NOT NULL,
            local       INTEGER NOT NULL,
            received_ms INTEGER NOT NULL,
            UNIQUE (author, seq)
        ) STRICT;
        CREATE INDEX entries_by_event ON entries (event, pos) WHERE event IS NOT NULL;
        CREATE INDEX entries_by_hlc ON entries (hlc_ms, hlc_counter);

        CREATE TABLE heads (
            author BLOB PRIMARY KEY,
            seq    INTEGER NOT NULL,
            id     BLOB    NOT NULL
        ) STRICT, WITHOUT ROWID;

        -- Evidence: a second entry at a seq already held, kept, never merged.
        CREATE TABLE forks (
            id          BLOB PRIMARY KEY,
            author      BLOB    NOT NULL,
            seq         INTEGER NOT NULL,
            held_id     BLOB    NOT NULL,
            bytes       BLOB    NOT NULL,
            detected_ms INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;

        -- Entries that failed a check, with the reason; never in views.
        CREATE TABLE quarantine (
            id          BLOB PRIMARY KEY,
            author      BLOB    NOT NULL,
            seq         INTEGER NOT NULL,
            bytes       BLOB    NOT NULL,
            reason_code TEXT    NOT NULL,
            reason      TEXT    NOT NULL,
            received_ms INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;

        -- Views from here on.
        CREATE TABLE documents (
            event    BLOB PRIMARY KEY,
            doc      BLOB    NOT NULL,
            complete INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;

        CREATE TABLE events (
            fid            INTEGER PRIMARY KEY,
            event          BLOB    NOT NULL UNIQUE,
            event_hex      TEXT    NOT NULL,
            title          TEXT    NOT NULL,
            description    TEXT    NOT NULL,
            category       TEXT    NOT NULL,
            severity       INTEGER NOT NULL,
            status         TEXT    NOT NULL,
            assignee       TEXT,
            lon            REAL    NOT NULL,
            lat            REAL    NOT NULL,
            reported_ms    INTEGER NOT NULL,
            created_by     TEXT    NOT NULL,
            updated_hlc_ms INTEGER NOT NULL,
            updated_hlc_counter INTEGER NOT NULL,
            n_notes        INTEGER NOT NULL,
            n_media        INTEGER NOT NULL,
            conflicts      TEXT    NOT NULL
        );
        CREATE INDEX events_by_reported ON events (reported_ms DESC, event DESC);

        -- Porter stemming and prefix queries: 'flood' finds 'Flooded underpass'.
        CREATE VIRTUAL TABLE events_fts USING fts5 (
            title, description, notes, tokenize = 'porter unicode61 remove_diacritics 2'
        );

        CREATE TABLE event_media (
            event  BLOB    NOT NULL,
            hash   BLOB    NOT NULL,
            mime   TEXT    NOT NULL,
            size   INTEGER NOT NULL,
            name   TEXT    NOT NULL,
            entry  BLOB    NOT NULL,
            PRIMARY KEY (event, hash)
        ) STRICT, WITHOUT ROWID;
        ",
    )?;
    // Register the geometry column and spatial index with SpatiaLite, then
    // drop the triggers it creates (see the module docs). SpatiaLite reports
    // failure by returning 0, not by raising an error. `InitSpatialMetadata(0)`:
    // we are inside a transaction already, so it must not open its own.
    for sql in [
        "SELECT InitSpatialMetadata(0)",
        "SELECT AddGeometryColumn('events', 'geom', 4326, 'POINT', 'XY')",
        "SELECT CreateSpatialIndex('events', 'geom')",
    ] {
        let ok: i64 = tx.query_row(sql, [], |r| r.get(0))?;
        if ok != 1 {
            return Err(StoreError::SpatialiteRefused(sql));
        }
    }
    let triggers: Vec<String> = tx
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for t in triggers {
        tx.execute_batch(&format!("DROP TRIGGER \"{}\"", t.replace('"', "\"\"")))?;
    }
    Ok(())
}

/// Certificates of authors, as they travel with the data (verified against
/// the deployment CA before they are stored).
fn v2_certificates(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "CREATE TABLE certificates (
             author      BLOB PRIMARY KEY,
             der         BLOB    NOT NULL,
             received_ms INTEGER NOT NULL
         ) STRICT, WITHOUT ROWID;",
    )?;
    Ok(())
}

/// Hub checkpoints: attested heads (a view) and breaches (evidence).
fn v3_checkpoints(tx: &Transaction<'_>) -> Result<(), StoreError> {
    super::checkpoints::migrate(tx)
}

/// Receipts: per hub and author, the highest seq the hub acknowledged
/// (evidence, kept across `rebuild-views`).
fn v4_receipts(tx: &Transaction<'_>) -> Result<(), StoreError> {
    super::receipts::migrate(tx)
}

/// Accounts and bearer tokens of the HTTP API (secrets of this device,
/// kept across `rebuild-views`).
fn v5_people(tx: &Transaction<'_>) -> Result<(), StoreError> {
    super::people::migrate(tx)
}

/// Sensor readings as a time series, the sensors seen (views), and the
/// last event each rule raised per sensor (kept across `rebuild-views`).
fn v6_readings(tx: &Transaction<'_>) -> Result<(), StoreError> {
    super::readings::migrate(tx)
}

/// Failed logins and lockouts of the HTTP API's accounts.
fn v7_logins(tx: &Transaction<'_>) -> Result<(), StoreError> {
    super::people::migrate_logins(tx)
}

/// The revocations in force, applied to what the log holds (a view of
/// the log and the stored list, judged by the node), and indexes that find
/// role grants and revocations without scanning the log.
fn v8_revoked(tx: &Transaction<'_>) -> Result<(), StoreError> {
    super::revoked::migrate(tx)
}

/// The disk quota on evidence (quarantine and forks) and the summary kept
/// beyond it.
fn v9_evidence(tx: &Transaction<'_>) -> Result<(), StoreError> {
    super::evidence::migrate(tx)
}

/// The device's own officers: accounts the CLI marked, officers on this
/// device until a hub's grant names them (`crate::roles`).
fn v10_device_officer(tx: &Transaction<'_>) -> Result<(), StoreError> {
    super::people::migrate_device_officer(tx)
}

/// The links: each peer's last sync session, as this node saw it (local
/// state like the accounts, kept across `rebuild-views`).
fn v11_links(tx: &Transaction<'_>) -> Result<(), StoreError> {
    super::links::migrate(tx)
}

/// Background sync's state per configured peer (local state, like the
/// links).
fn v12_link_states(tx: &Transaction<'_>) -> Result<(), StoreError> {
    super::link_state::migrate(tx)
}

/// Redactions: the values and blobs each event's redactions erase, and
/// the erased blobs whose files are still to remove (views).
fn v13_redactions(tx: &Transaction<'_>) -> Result<(), StoreError> {
    super::redactions::migrate(tx)
}

/// Brings the database to [`SCHEMA_VERSION`]; refuses a newer one.
///
/// Migrations call SpatiaLite functions whose bookkeeping tables carry
/// SpatiaLite triggers, so they run with `trusted_schema` on. They only
/// ever run on a file this code created (`init`) or migrated before.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    conn.pragma_update(None, "trusted_schema", true)?;
    let result = (|| {
        for (i, m) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let tx = conn.transaction()?;
            m(&tx)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        Ok::<(), StoreError>(())
    })();
    conn.pragma_update(None, "trusted_schema", false)?;
    result
}
