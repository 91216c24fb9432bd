//! Peer status: who synced with the hub, when, and how the session ended.

use sentinel_certs::Identity;

use super::{int, PgStore, StoreError};

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
