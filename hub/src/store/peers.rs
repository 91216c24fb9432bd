//! Peer status: who synced with the hub, when, how the session ended, how
//! far behind the hub it likely is now, and what it held that the hub did
//! not (its outbox, as far as the hub can see it: migration V10).
//!
//! **Outbox.** A peer's heads (and acknowledgements) in a session say
//! which entries it holds; when the session ends, those beyond the hub's
//! heads are entries the hub has not received (`entries_ahead`). Normally
//! a session catches up and this is 0; it stays above 0 when the session
//! broke off first, or when the hub refused entries (quarantine: they will
//! never be acknowledged, so they stay in the node's outbox too).
//! `ahead_since_ms` is when the hub first saw it so, over the sessions
//! that ended so in a row: the start of the first. The hub knows nothing
//! of what a peer wrote after its last session.

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
    /// When the session began, Unix ms.
    pub started_ms: u64,
    /// Per author, the highest seq the peer said it holds in the session;
    /// `None` when it presented no heads (the outbox is not measured).
    pub presented: Option<&'a [(AuthorId, u64)]>,
}

impl PgStore {
    /// Upserts the peer's row: name, role, last seen, address and close
    /// reason replaced, `sessions` incremented, and the hub's entry count
    /// now kept as `hub_entries_at_last_seen` (the baseline for "entries
    /// behind"); with the heads it presented, the entries it holds that
    /// the hub lacks now (`entries_ahead`) and since when that has been so
    /// (`ahead_since_ms`: kept while sessions keep ending so, cleared when
    /// one ends with nothing ahead; both kept as they were when unmeasured).
    pub async fn record_peer(&self, seen: &PeerSeen<'_>) -> Result<(), StoreError> {
        let presented = seen.presented.unwrap_or_default();
        let authors: Vec<&[u8]> = presented.iter().map(|(a, _)| a.0.as_slice()).collect();
        let seqs: Vec<i64> = presented
            .iter()
            .map(|(_, seq)| int(*seq, "peers.entries_ahead"))
            .collect::<Result<_, _>>()?;
        let client = self.client().await?;
        client
            .execute(
                "WITH ahead AS (
                     SELECT CASE WHEN $7::bool THEN
                         coalesce(sum(greatest(p.seq - coalesce(h.seq, 0), 0)), 0)::int8
                     END AS n
                     FROM unnest($8::bytea[], $9::int8[]) AS p(author, seq)
                     LEFT JOIN heads h ON h.author = p.author)
                 INSERT INTO peers (author, name, role, last_seen_ms, last_addr, sessions,
                     last_close, hub_entries_at_last_seen, entries_ahead, ahead_since_ms)
                 SELECT $1, $2, $3, $4, $5, 1, $6, (SELECT count(*) FROM entries), a.n,
                     CASE WHEN a.n > 0 THEN $10::int8 END
                 FROM ahead a
                 ON CONFLICT (author) DO UPDATE SET name = excluded.name,
                     role = excluded.role, last_seen_ms = excluded.last_seen_ms,
                     last_addr = excluded.last_addr, sessions = peers.sessions + 1,
                     last_close = excluded.last_close,
                     hub_entries_at_last_seen = excluded.hub_entries_at_last_seen,
                     entries_ahead = coalesce(excluded.entries_ahead, peers.entries_ahead),
                     ahead_since_ms = CASE
                         WHEN excluded.entries_ahead IS NULL THEN peers.ahead_since_ms
                         WHEN excluded.entries_ahead = 0 THEN NULL
                         ELSE coalesce(peers.ahead_since_ms, excluded.ahead_since_ms) END",
                &[
                    &seen.identity.author.as_bytes().as_slice(),
                    &seen.identity.name,
                    &seen.identity.role.as_str(),
                    &int(seen.at_ms, "peers.last_seen_ms")?,
                    &seen.addr,
                    &seen.close,
                    &seen.presented.is_some(),
                    &authors,
                    &seqs,
                    &int(seen.started_ms, "peers.ahead_since_ms")?,
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
    /// Entries it held that the hub lacked when its last measured session
    /// ended; `None`: never measured.
    pub entries_ahead: Option<i64>,
    /// Since when (Unix ms) its sessions have ended with it holding
    /// entries the hub lacks; `None` when the last measured one did not.
    pub ahead_since_ms: Option<i64>,
}

impl PgStore {
    /// Every peer recorded, newest `last_seen_ms` first (then author).
    pub async fn peer_statuses(&self) -> Result<Vec<PeerStatus>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT p.author, p.name, p.role, p.last_seen_ms, p.last_addr, p.sessions,
                     p.last_close, coalesce(h.seq, 0),
                     greatest(t.n - p.hub_entries_at_last_seen, 0), p.entries_ahead,
                     p.ahead_since_ms
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
                    entries_ahead: r.get(9),
                    ahead_since_ms: r.get(10),
                })
            })
            .collect()
    }
}
