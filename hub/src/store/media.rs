//! Which media blobs the hub's log names: the blobs the hub wants from the
//! nodes that hold them (those not yet in its blob folder) and serves to
//! the nodes that lack them, and the type `GET /api/v1/media/{hash}`
//! answers a named blob with.

use std::collections::BTreeMap;

use sentinel_schema::{Body, BodyKind, SignedEntry};
use tokio_postgres::IsolationLevel;

use super::{id32, PgStore, StoreError};

impl PgStore {
    /// Every blob a `media_attached` entry in the log names, with the size
    /// its entry announced, in hash order: the `event_media` view, plus
    /// the entries the projector has not reached yet (read from the log in
    /// the same snapshot, so an entry being projected meanwhile is seen
    /// exactly once, either way). A hash announced with two sizes (one of
    /// them necessarily false) is listed once, with the smaller size: the
    /// receiver's check then refuses the false one.
    pub async fn media_named(&self) -> Result<Vec<([u8; 32], u64)>, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let named = named_in(&tx).await?;
        tx.commit().await?;
        Ok(named)
    }

    /// The media type an event in the view names `hash` with; `None` when
    /// no projected event names it (a blob no event names is never
    /// served).
    pub async fn media_mime(&self, hash: &[u8; 32]) -> Result<Option<String>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT mime FROM event_media WHERE hash = $1 LIMIT 1",
                &[&hash.as_slice()],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }
}

/// [`PgStore::media_named`] in the caller's transaction (repeatable read,
/// so the view and the log are read in one snapshot): also what a backup
/// reads in the snapshot it dumps (`super::backup`).
pub(super) async fn named_in(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<Vec<([u8; 32], u64)>, StoreError> {
    let projected = tx
        .query("SELECT hash, min(size) FROM event_media GROUP BY hash", &[])
        .await?;
    let pending = tx
        .query(
            "SELECT pos, bytes FROM entries WHERE NOT projected AND kind = $1",
            &[&i16::from(BodyKind::MediaAttached as u8)],
        )
        .await?;

    // A redaction erased these: named no more (their `event_media` rows
    // are gone; a media entry not projected yet may still name one).
    let mut erased = std::collections::BTreeSet::new();
    for row in tx.query("SELECT hash FROM redacted_blobs", &[]).await? {
        erased.insert(id32(row.get(0), "redacted_blobs.hash")?);
    }
    let mut named: BTreeMap<[u8; 32], u64> = BTreeMap::new();
    let mut name = |hash: [u8; 32], size: u64| {
        if erased.contains(&hash) {
            return;
        }
        named
            .entry(hash)
            .and_modify(|s| *s = (*s).min(size))
            .or_insert(size);
    };
    for row in &projected {
        let hash = id32(row.get(0), "event_media.hash")?;
        let size: i64 = row.get(1);
        let size = u64::try_from(size).map_err(|_| StoreError::CorruptColumn {
            column: "event_media.size",
        })?;
        name(hash, size);
    }
    for row in &pending {
        let pos: i64 = row.get(0);
        let entry = SignedEntry::from_bytes(row.get::<_, Vec<u8>>(1))
            .map_err(|source| StoreError::CorruptEntry { pos, source })?;
        if let Body::MediaAttached(m) = &entry.entry().body {
            name(m.hash, m.size);
        }
    }
    Ok(named.into_iter().collect())
}
