//! Links: the last sync session with each peer and hub, as this node saw
//! it (migration 11) — who the peer is (its certificate's key, name and
//! role), where, which side dialled, when the last attempt and the last
//! success (a session that caught up) were, the last error, and what the
//! last session moved. The officer's page reads it (`GET /api/v1/sync`).
//!
//! Like the accounts, links are this device's local state, not a view of
//! the log (invariant 6): nothing here is signed or synced, and rebuilding
//! the views leaves it alone. It is what the node saw, not what a peer
//! says: a peer is its verified certificate (invariant 7).
//!
//! A row exists only for a peer whose certificate verified, or for an
//! address this node dialled itself (a configured peer it never reached):
//! a stranger's refused handshakes leave nothing here, so the table stays
//! as small as the node's own peers.
//!
//! Never does: decide whether to sync (`crate::dial` does), or judge a
//! peer (the TLS handshake and the session do).

use rusqlite::{params, Row, Transaction};
use sentinel_schema::{AuthorId, DeviceRole};

use super::{Store, StoreError};

/// Creates the links table (migration 11).
pub(crate) fn migrate(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "-- Local state: each peer's last sync session (never synced).
        -- `link` is the peer's key (hex), or for an address dialled but
        -- never reached, the address.
        CREATE TABLE links (
            link            TEXT    PRIMARY KEY,
            peer            TEXT,
            name            TEXT,
            role            TEXT,
            address         TEXT    NOT NULL,
            direction       TEXT    NOT NULL,
            last_attempt_ms INTEGER NOT NULL,
            last_success_ms INTEGER,
            last_error      TEXT,
            sent            INTEGER NOT NULL DEFAULT 0,
            received        INTEGER NOT NULL DEFAULT 0
        ) STRICT, WITHOUT ROWID;",
    )?;
    Ok(())
}

/// Which side opened a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// This node dialled the peer (`sync`, "sync now").
    Dialled,
    /// The peer dialled this node's `serve`.
    Accepted,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Dialled => "dialled",
            Direction::Accepted => "accepted",
        }
    }
}

/// A peer as its verified certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPeer {
    pub author: AuthorId,
    pub name: String,
    pub role: DeviceRole,
}

/// What one session (or one attempt at one) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// `None`: the handshake never proved who is there (a peer down, a
    /// refused certificate); recorded only for an address dialled.
    pub peer: Option<LinkPeer>,
    /// The address dialled (as configured), or the peer's address.
    pub address: String,
    pub direction: Direction,
    pub at_ms: u64,
    /// The session caught up: a success.
    pub caught_up: bool,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Entries the peer acknowledged, and entries received.
    pub sent: u64,
    pub received: u64,
}

/// One link, as `GET /api/v1/sync` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Link {
    /// The peer's key (hex); `null` for an address never reached.
    pub peer: Option<String>,
    /// Its certificate's name and role (`node`, `hub`, `sensor`).
    pub name: Option<String>,
    pub role: Option<String>,
    pub address: String,
    pub direction: Direction,
    pub last_attempt_ms: u64,
    /// The last session that caught up; `null` if none did.
    pub last_success_ms: Option<u64>,
    /// Why the last attempt failed; `null` if it did not.
    pub last_error: Option<String>,
    /// What the last session moved: entries the peer acknowledged, and
    /// entries received.
    pub sent: u64,
    pub received: u64,
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn link(r: &Row<'_>) -> rusqlite::Result<Link> {
    let direction: String = r.get(4)?;
    let unsigned = |v: i64| v.max(0) as u64;
    Ok(Link {
        peer: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        address: r.get(3)?,
        direction: if direction == "accepted" {
            Direction::Accepted
        } else {
            Direction::Dialled
        },
        last_attempt_ms: unsigned(r.get(5)?),
        last_success_ms: r.get::<_, Option<i64>>(6)?.map(unsigned),
        last_error: r.get(7)?,
        sent: unsigned(r.get(8)?),
        received: unsigned(r.get(9)?),
    })
}

/// An error as the table keeps it: at most 500 bytes (the background
/// links' table keeps its errors so too).
pub(super) fn clip(text: &str) -> String {
    let mut end = text.len().min(500);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

impl Store {
    /// Records what a session (or an attempt) came to.
    ///
    /// With the peer known, its row (by key) takes the outcome, and a row
    /// for the same address dialled but never reached goes. Without it,
    /// the attempt lands on the link last reached by dialling that
    /// address, else on a row of its own for the address; an accepted
    /// session without a verified peer is not recorded.
    pub fn record_session(&mut self, s: &SessionRecord) -> Result<(), StoreError> {
        let tx = self.conn_mut().transaction()?;
        let error = s.error.as_deref().map(clip);
        let success = s.caught_up.then_some(int(s.at_ms));
        match &s.peer {
            Some(p) => {
                let key = p.author.to_hex();
                tx.execute(
                    "INSERT INTO links (link, peer, name, role, address, direction,
                         last_attempt_ms, last_success_ms, last_error, sent, received)
                     VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (link) DO UPDATE SET
                         name = excluded.name, role = excluded.role,
                         address = excluded.address, direction = excluded.direction,
                         last_attempt_ms = excluded.last_attempt_ms,
                         last_success_ms = coalesce(excluded.last_success_ms,
                                                    links.last_success_ms),
                         last_error = excluded.last_error,
                         sent = excluded.sent, received = excluded.received",
                    params![
                        key,
                        p.name,
                        p.role.as_str(),
                        s.address,
                        s.direction.as_str(),
                        int(s.at_ms),
                        success,
                        error,
                        int(s.sent),
                        int(s.received),
                    ],
                )?;
                if s.direction == Direction::Dialled {
                    tx.execute(
                        "DELETE FROM links WHERE peer IS NULL AND address = ?1",
                        [&s.address],
                    )?;
                }
            }
            None if s.direction == Direction::Accepted => {}
            None => {
                let n = tx.execute(
                    "UPDATE links SET last_attempt_ms = ?2, last_error = ?3,
                         sent = 0, received = 0
                     WHERE link = (SELECT link FROM links
                                   WHERE address = ?1 AND direction = 'dialled'
                                   ORDER BY last_attempt_ms DESC LIMIT 1)",
                    params![s.address, int(s.at_ms), error],
                )?;
                if n == 0 {
                    tx.execute(
                        "INSERT INTO links (link, address, direction, last_attempt_ms,
                             last_error)
                         VALUES (?1, ?1, 'dialled', ?2, ?3)",
                        params![s.address, int(s.at_ms), error],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every link, the most recently attempted first.
    pub fn links(&self) -> Result<Vec<Link>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT peer, name, role, address, direction, last_attempt_ms, last_success_ms,
                    last_error, sent, received
             FROM links ORDER BY last_attempt_ms DESC, link",
        )?;
        let rows = stmt.query_map([], link)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// This node's own entries no hub has acknowledged: how many, and the
    /// wall-clock time (Unix ms of its HLC) of the oldest.
    pub fn outbox_summary(&self) -> Result<(u64, Option<u64>), StoreError> {
        let Some(owner) = self.owner()? else {
            return Ok((0, None));
        };
        let after = self.acknowledged_seq(&owner)?;
        let (n, oldest): (i64, Option<i64>) = self.conn().prepare_cached(
            "SELECT count(*), min(hlc_ms) FROM entries WHERE author = ?1 AND seq > ?2 AND local = 1",
        )?
        .query_row(params![owner.as_bytes(), int(after)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok((n.max(0) as u64, oldest.map(|v| v.max(0) as u64)))
    }
}
