//! Background links' states (migration 12): for each peer `serve`
//! keeps syncing with by itself (`crate::background`), what it is doing
//! now — connecting, syncing, live, waiting to retry, off — with its
//! last success, last error and next try, as the supervisor last wrote
//! it. `stats` (another process) and the officer's page read it.
//!
//! Like the links beside it (`crate::store::links`, the last session
//! with each peer by its key), this is this device's local state, not a
//! view of the log (invariant 6): nothing here is signed or synced.
//! Rows are keyed by the address as configured; a `serve` that starts
//! forgets the addresses it no longer dials.
//!
//! Never does: decide when to dial (the supervisor does), or say who a
//! peer is beyond what its verified certificate said (invariant 7).

use rusqlite::{params, Row, Transaction};

use super::links::clip;
use super::{Store, StoreError};

/// Creates the table (migration 12).
pub(crate) fn migrate(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "-- Local state: what background sync does with each configured peer.
        CREATE TABLE link_states (
            address         TEXT    PRIMARY KEY,
            state           TEXT    NOT NULL,
            peer            TEXT,
            name            TEXT,
            updated_ms      INTEGER NOT NULL,
            last_success_ms INTEGER,
            last_error      TEXT,
            next_try_ms     INTEGER,
            failures        INTEGER NOT NULL DEFAULT 0
        ) STRICT, WITHOUT ROWID;",
    )?;
    Ok(())
}

/// What background sync is doing with one configured peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Resolving the address, or in the QUIC and TLS handshake.
    Connecting,
    /// In a session, not yet caught up both ways.
    Syncing,
    /// Caught up both ways; the session stays open and pushes new
    /// entries as they are written.
    Live,
    /// The last attempt failed or the session ended; the next try is at
    /// `next_try_ms` (or sooner, on "sync now").
    Waiting,
    /// Not syncing by itself: `serve` stopped, or background sync is off.
    Off,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Connecting => "connecting",
            LinkState::Syncing => "syncing",
            LinkState::Live => "live",
            LinkState::Waiting => "waiting",
            LinkState::Off => "off",
        }
    }

    fn parse(text: &str) -> LinkState {
        match text {
            "connecting" => LinkState::Connecting,
            "syncing" => LinkState::Syncing,
            "live" => LinkState::Live,
            "waiting" => LinkState::Waiting,
            _ => LinkState::Off,
        }
    }
}

/// One configured peer's background link, as last written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LinkStatus {
    /// The peer as configured, `HOST:PORT`.
    pub address: String,
    pub state: LinkState,
    /// The peer's key (hex) and certificate name, once a handshake proved
    /// them.
    pub peer: Option<String>,
    pub name: Option<String>,
    /// When the state last changed (Unix ms).
    pub updated_ms: u64,
    /// The last time a session caught up both ways.
    pub last_success_ms: Option<u64>,
    /// Why the last attempt or session failed; `null` once one succeeds.
    pub last_error: Option<String>,
    /// When the next attempt starts (`waiting` only).
    pub next_try_ms: Option<u64>,
    /// Attempts that failed in a row (0 after a success).
    pub failures: u32,
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn status(r: &Row<'_>) -> rusqlite::Result<LinkStatus> {
    let unsigned = |v: i64| v.max(0) as u64;
    let state: String = r.get(1)?;
    Ok(LinkStatus {
        address: r.get(0)?,
        state: LinkState::parse(&state),
        peer: r.get(2)?,
        name: r.get(3)?,
        updated_ms: unsigned(r.get(4)?),
        last_success_ms: r.get::<_, Option<i64>>(5)?.map(unsigned),
        last_error: r.get(6)?,
        next_try_ms: r.get::<_, Option<i64>>(7)?.map(unsigned),
        failures: u32::try_from(r.get::<_, i64>(8)?.max(0)).unwrap_or(u32::MAX),
    })
}

impl Store {
    /// Writes one link's state (replacing the row for its address).
    pub fn set_link_status(&mut self, s: &LinkStatus) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO link_states (address, state, peer, name, updated_ms,
                 last_success_ms, last_error, next_try_ms, failures)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                s.address,
                s.state.as_str(),
                s.peer,
                s.name,
                int(s.updated_ms),
                s.last_success_ms.map(int),
                s.last_error.as_deref().map(clip),
                s.next_try_ms.map(int),
                i64::from(s.failures),
            ],
        )?;
        Ok(())
    }

    /// Forgets the links of addresses not in `configured` (a `serve` that
    /// starts with other peers), and marks the rest `off` until their
    /// supervisor writes again.
    pub fn reset_link_states(
        &mut self,
        configured: &[String],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let tx = self.conn_mut().transaction()?;
        let addresses: Vec<String> = tx
            .prepare("SELECT address FROM link_states")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for address in addresses {
            if configured.contains(&address) {
                tx.execute(
                    "UPDATE link_states SET state = 'off', next_try_ms = NULL, updated_ms = ?2
                     WHERE address = ?1",
                    params![address, int(now_ms)],
                )?;
            } else {
                tx.execute("DELETE FROM link_states WHERE address = ?1", [&address])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every background link, in address order.
    pub fn link_statuses(&self) -> Result<Vec<LinkStatus>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT address, state, peer, name, updated_ms, last_success_ms, last_error,
                    next_try_ms, failures
             FROM link_states ORDER BY address",
        )?;
        let rows = stmt.query_map([], status)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
