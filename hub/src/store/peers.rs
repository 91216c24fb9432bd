//! Peer status: who synced with the hub, when, how the session ended, and
//! how far behind the hub it likely is now.

use sentinel_certs::Identity;
use sentinel_schema::AuthorId;

use super::{id32, int, PgStore, StoreError};

/// One finished session with a verified peer, as [`PgStore::record_peer`]
/// stores it.
#[derive(Debug, Clone)]
pub struct PeerSeen<'a> {
    pub identity: &'a Identity,
    /// When the session ended, Unix ms.
    pub at_ms: u64,
    /// The peer's address (`ip:port`).
    pub addr: &'a str,
    /// The close code and reason, or the error that ended the session.
    pub close: &'a str,
}

impl PgStore {
    /// Upserts the peer's row: name, role, last seen, address and close
    /// reason replaced, `sessions` incremented, and the hub's entry count
    /// now kept as `hub_entries_at_last_seen` (the baseline for "entries
    /// behind").
    pub async fn record_peer(&self, seen: &PeerSeen<'_>) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO peers (author, name, role, last_seen_ms, last_addr, sessions,
                     last_close, hub_entries_at_last_seen)
                 VALUES ($1, $2, $3, $4, $5, 1, $6, (SELECT count(*) FROM entries))
                 ON CONFLICT (author) DO UPDATE SET name = excluded.name,
                     role = excluded.role, last_seen_ms = excluded.last_seen_ms,
                     last_addr = excluded.last_addr, sessions = peers.sessions + 1,
                     last_close = excluded.last_close,
                     hub_entries_at_last_seen = excluded.hub_entries_at_last_seen",
                &[
                    &seen.identity.author.as_bytes().as_slice(),
                    &seen.identity.name,
                    &seen.identity.role.as_str(),
                    &int(seen.at_ms, "peers.last_seen_ms")?,
                    &seen.addr,
                    &seen.close,
                ],
            )
            .await?;
        Ok(())
    }
}

/// A peer as `GET /api/v1/nodes` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub author: AuthorId,
    /// Its certificate's common name.
    pub name: String,
    /// Its certificate's role (`node`, `hub`, `sensor`).
    pub role: String,
    pub last_seen_ms: i64,
    pub last_addr: String,
    pub sessions: i64,
    /// How its last session closed.
    pub last_close: String,
    /// The seq of its head in the hub's log (0: none).
    pub hub_seq: i64,
    /// Entries the hub holds now minus those it held when that session
    /// ended, floored at 0: what arrived after the peer last synced.
    pub entries_behind: i64,
}

impl PgStore {
    /// Every peer recorded, newest `last_seen_ms` first (then author).
    pub async fn peer_statuses(&self) -> Result<Vec<PeerStatus>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT p.author, p.name, p.role, p.last_seen_ms, p.last_addr, p.sessions,
                     p.last_close, coalesce(h.seq, 0),
                     greatest(t.n - p.hub_entries_at_last_seen, 0)
                 FROM peers p
                 LEFT JOIN heads h ON h.author = p.author
                 CROSS JOIN (SELECT count(*) AS n FROM entries) t
                 ORDER BY p.last_seen_ms DESC, p.author",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(PeerStatus {
                    author: AuthorId(id32(r.get(0), "peers.author")?),
                    name: r.get(1),
                    role: r.get(2),
                    last_seen_ms: r.get(3),
                    last_addr: r.get(4),
                    sessions: r.get(5),
                    last_close: r.get(6),
                    hub_seq: r.get(7),
                    entries_behind: r.get(8),
                })
            })
            .collect()
    }
}
