//! What the audit stream (`crate::audit`) reads and records: the rows of
//! the log, of quarantine and of forks in their order of arrival (`pos`,
//! migration V13), how far each has settled, and the stream's mark.
//!
//! **Settling.** `pos` comes from an identity column, handed out when a
//! transaction inserts, not when it commits: a batch that commits late can
//! hold positions below ones already visible, so "everything up to the
//! highest visible `pos`" is not yet final (the projector keeps a flag per
//! entry for the same reason, migration V3). [`AuditObservation`] gives
//! the caller what it needs to know when it is: the highest `pos` visible
//! in each table, and the server's transaction horizon. Every position at
//! or below a maximum observed at one moment was handed out before it, to
//! a transaction that had an id by the next observation (a transaction
//! takes its id as it writes its first row); once the oldest transaction
//! still running is newer than the next free id of that next observation,
//! each of those positions is committed and visible, or never will be.
//!
//! For audit bundles (`crate::audit::bundle`) it also answers which
//! authors have entries in a time range (and area), and the hub's own
//! checkpoint entries, newest first.
//!
//! Never does: write a line or a bundle, or decide what either says.

use sentinel_schema::{AuthorId, BBox, BodyKind, EntryId, SignedEntry};

use super::{id32, int, uint, PgStore, StoreError};

/// The three tables the stream follows, each with its own order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuditSource {
    /// `entries`: accepted into the log.
    Log,
    /// `quarantine`: refused, with a typed reason.
    Quarantine,
    /// `forks`: a second entry at a seq already held, kept as evidence.
    Forks,
}

impl AuditSource {
    pub const ALL: [AuditSource; 3] = [
        AuditSource::Log,
        AuditSource::Quarantine,
        AuditSource::Forks,
    ];

    /// The stable name, as lines and `audit_mark.stream` carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditSource::Log => "log",
            AuditSource::Quarantine => "quarantine",
            AuditSource::Forks => "forks",
        }
    }

    fn index(self) -> usize {
        match self {
            AuditSource::Log => 0,
            AuditSource::Quarantine => 1,
            AuditSource::Forks => 2,
        }
    }

    fn select(self) -> &'static str {
        match self {
            AuditSource::Log => {
                "SELECT pos, id, author, seq, bytes, received_ms, NULL::text, NULL::text,
                     NULL::bytea
                 FROM entries WHERE pos > $1 AND pos <= $2 ORDER BY pos LIMIT $3"
            }
            AuditSource::Quarantine => {
                "SELECT pos, id, author, seq, bytes, received_ms, reason_code, reason, NULL::bytea
                 FROM quarantine WHERE pos > $1 AND pos <= $2 ORDER BY pos LIMIT $3"
            }
            AuditSource::Forks => {
                "SELECT pos, id, author, seq, bytes, detected_ms, NULL::text, NULL::text, held_id
                 FROM forks WHERE pos > $1 AND pos <= $2 ORDER BY pos LIMIT $3"
            }
        }
    }
}

/// A value per [`AuditSource`], indexed by it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerSource(pub [i64; 3]);

impl PerSource {
    pub fn get(&self, source: AuditSource) -> i64 {
        self.0[source.index()]
    }

    pub fn set(&mut self, source: AuditSource, value: i64) {
        self.0[source.index()] = value;
    }
}

/// One look at the tables and the server's transactions (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditObservation {
    /// The oldest transaction id still running (or the next free one,
    /// when none is): every older transaction has ended.
    pub xmin: u64,
    /// The next transaction id to be handed out.
    pub xmax: u64,
    /// The highest `pos` visible in each table (0: none).
    pub max: PerSource,
}

/// One row the stream turns into a line, as stored.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub source: AuditSource,
    pub pos: i64,
    pub id: EntryId,
    pub author: AuthorId,
    pub seq: u64,
    /// The entry, or why its stored bytes do not decode (the columns
    /// above still say which it is).
    pub entry: Result<SignedEntry, String>,
    /// How long the stored bytes are.
    pub size: usize,
    /// When the hub received it (forks: found it), Unix ms.
    pub at_ms: u64,
    /// Quarantine: the reason code and the reason in words.
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    /// Forks: the entry the log holds at the same seq.
    pub held_id: Option<EntryId>,
}

impl PgStore {
    /// The highest `pos` of each table and the transaction horizon, read
    /// in one statement.
    pub async fn audit_observe(&self) -> Result<AuditObservation, StoreError> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT pg_snapshot_xmin(s)::text::int8, pg_snapshot_xmax(s)::text::int8,
                     (SELECT coalesce(max(pos), 0) FROM entries),
                     (SELECT coalesce(max(pos), 0) FROM quarantine),
                     (SELECT coalesce(max(pos), 0) FROM forks)
                 FROM pg_current_snapshot() AS t(s)",
                &[],
            )
            .await?;
        Ok(AuditObservation {
            xmin: uint(row.get(0), "pg_snapshot_xmin")?,
            xmax: uint(row.get(1), "pg_snapshot_xmax")?,
            max: PerSource([row.get(2), row.get(3), row.get(4)]),
        })
    }

    /// The stream's marks: per table, the `pos` up to which lines have
    /// been written (0 for a table never written).
    pub async fn audit_marks(&self) -> Result<PerSource, StoreError> {
        let rows = self
            .client()
            .await?
            .query("SELECT stream, pos FROM audit_mark", &[])
            .await?;
        let mut marks = PerSource::default();
        for r in rows {
            let name: &str = r.get(0);
            if let Some(source) = AuditSource::ALL.into_iter().find(|s| s.as_str() == name) {
                marks.set(source, r.get(1));
            }
        }
        Ok(marks)
    }

    /// Records that every row of `source` up to `pos` is in lines written
    /// and flushed. A mark never moves back.
    pub async fn set_audit_mark(
        &self,
        source: AuditSource,
        pos: i64,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO audit_mark (stream, pos, saved_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (stream) DO UPDATE SET
                     pos = greatest(audit_mark.pos, excluded.pos), saved_ms = excluded.saved_ms",
                &[&source.as_str(), &pos, &int(now_ms, "audit_mark.saved_ms")?],
            )
            .await?;
        Ok(())
    }

    /// At most `limit` rows of `source` with `after < pos <= upto`, in
    /// `pos` order.
    pub async fn audit_rows(
        &self,
        source: AuditSource,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client()
            .await?
            .query(source.select(), &[&after, &upto, &limit])
            .await?;
        rows.into_iter()
            .map(|r| {
                let bytes: Vec<u8> = r.get(4);
                let size = bytes.len();
                let held: Option<&[u8]> = r.get(8);
                Ok(AuditRow {
                    source,
                    pos: r.get(0),
                    id: EntryId(id32(r.get(1), "id")?),
                    author: AuthorId(id32(r.get(2), "author")?),
                    seq: uint(r.get(3), "seq")?,
                    entry: SignedEntry::from_bytes(bytes).map_err(|e| e.to_string()),
                    size,
                    at_ms: uint(r.get(5), "received_ms")?,
                    reason_code: r.get(6),
                    reason: r.get(7),
                    held_id: held
                        .map(|h| id32(h, "forks.held_id").map(EntryId))
                        .transpose()?,
                })
            })
            .collect()
    }
}

/// One author's entries in a bundle's selection: the lowest and highest
/// seq among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    pub author: AuthorId,
    pub first_seq: u64,
    pub last_seq: u64,
    /// How many entries of the author are in the selection.
    pub count: u64,
}

impl PgStore {
    /// Per author, the entries whose HLC time is in `from_ms..to_ms` and,
    /// with `area`, that are about an event whose location is in it (the
    /// events view's location): their lowest and highest seq. Authors
    /// ascending.
    pub async fn bundle_selection(
        &self,
        from_ms: u64,
        to_ms: u64,
        area: Option<&BBox>,
    ) -> Result<Vec<Selected>, StoreError> {
        let from = int(from_ms, "entries.hlc_ms")?;
        let to = int(to_ms, "entries.hlc_ms")?;
        let client = self.client().await?;
        let rows = match area {
            None => {
                client
                    .query(
                        "SELECT author, min(seq), max(seq), count(*) FROM entries
                         WHERE hlc_ms >= $1 AND hlc_ms < $2
                         GROUP BY author ORDER BY author",
                        &[&from, &to],
                    )
                    .await?
            }
            Some(b) => {
                client
                    .query(
                        "SELECT author, min(seq), max(seq), count(*) FROM entries
                         WHERE hlc_ms >= $1 AND hlc_ms < $2 AND event IN (
                             SELECT event FROM events WHERE geog::geometry
                                 && ST_MakeEnvelope($3, $4, $5, $6, 4326))
                         GROUP BY author ORDER BY author",
                        &[
                            &from,
                            &to,
                            &b.min_lon(),
                            &b.min_lat(),
                            &b.max_lon(),
                            &b.max_lat(),
                        ],
                    )
                    .await?
            }
        };
        rows.into_iter()
            .map(|r| {
                Ok(Selected {
                    author: AuthorId(id32(r.get(0), "entries.author")?),
                    first_seq: uint(r.get(1), "entries.seq")?,
                    last_seq: uint(r.get(2), "entries.seq")?,
                    count: uint(r.get(3), "count")?,
                })
            })
            .collect()
    }

    /// `hub`'s `hub_checkpoint` entries, newest first: at most `limit`,
    /// below seq `before` (`u64::MAX`: from the newest).
    pub async fn checkpoint_entries(
        &self,
        hub: &AuthorId,
        before: u64,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let before = i64::try_from(before).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client()
            .await?
            .query(
                "SELECT pos, bytes FROM entries WHERE author = $1 AND kind = $2 AND seq < $3
                 ORDER BY seq DESC LIMIT $4",
                &[
                    &hub.as_bytes().as_slice(),
                    &i16::from(BodyKind::HubCheckpoint as u8),
                    &before,
                    &limit,
                ],
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                let pos: i64 = r.get(0);
                SignedEntry::from_bytes(r.get::<_, Vec<u8>>(1))
                    .map_err(|source| StoreError::CorruptEntry { pos, source })
            })
            .collect()
    }
}
