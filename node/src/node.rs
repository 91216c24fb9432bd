//! A node: the store, the device's signing key and clock, media and the
//! R-tree, behind the operations an officer performs.
//!
//! Every operation that changes anything builds one signed entry and
//! commits it, with the views it affects, in one SQLite transaction; it
//! returns only after that commit (acknowledged means durable). Invalid
//! input is refused before anything is written.

use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension};
use sentinel_schema::{
    author_of, AuthorId, Body, Clock, ClockError, Entry, EntryId, EventChange, EventDoc, EventEdit,
    EventError, EventId, EventView, Hlc, MediaAttached, NewEvent, SignError, SignedEntry,
    SigningKey, VerifiedEntry,
};

use crate::media::{MediaError, MediaStore};
use crate::spatial::SpatialIndex;
use crate::store::log::{self, ApplyReport};
use crate::store::project::{project_entries, set_projected_upto, Projected};
use crate::store::{blob, Store, StoreError};

/// File names inside a node's data directory.
pub const DB_FILE: &str = "node.sqlite";
pub const KEY_FILE: &str = "node.key";
pub const MEDIA_DIR: &str = "media";
/// The deployment CA's certificate and this device's, after `enroll`.
pub const CA_FILE: &str = "ca.pem";
pub const CERT_FILE: &str = "node.crt";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("cannot sign the entry: {0}")]
    Sign(#[from] SignError),
    #[error(transparent)]
    Clock(#[from] ClockError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a node already exists in {0}; refusing to overwrite it (choose another --data-dir)")]
    AlreadyInitialized(PathBuf),
    #[error("no node in {0}: run `sentinel-node init` first")]
    NotInitialized(PathBuf),
    #[error("key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error("the key in {0} does not belong to this store")]
    WrongKey(PathBuf),
    #[error(transparent)]
    Certs(#[from] sentinel_certs::CertsError),
    #[error("this node already wrote {0} entries under its own key; enroll a fresh node (`init --data-dir NEW`, then `enroll`)")]
    EnrollAfterWrites(u64),
    #[error("the bundle is for a {0} identity; a node needs a node identity")]
    EnrollWrongRole(sentinel_schema::DeviceRole),
    #[error("this node is not enrolled: run `sentinel-node enroll BUNDLE` first")]
    NotEnrolled,
    #[error("the stored revocation list: {0}")]
    Revocations(String),
    #[error("sync: {0}")]
    Net(String),
    #[error("sensor rules: {0}")]
    Rules(String),
    #[error("no event matches {0:?}")]
    NoSuchEvent(String),
    #[error("{0:?} matches several events; give more of the id")]
    AmbiguousEvent(String),
}

impl NodeError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
        move |source| NodeError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What a successful write returns: the entry it committed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ack {
    pub event: String,
    pub entry: String,
    pub seq: u64,
}

/// One entry in an event's history.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HistoryItem {
    pub entry: String,
    pub author: String,
    pub seq: u64,
    pub hlc: String,
    pub kind: &'static str,
    pub actor: Option<String>,
    pub local: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MediaItem {
    pub hash: String,
    pub mime: String,
    pub size: u64,
    pub name: String,
}

/// Everything `show` displays about an event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDetail {
    pub id: EventId,
    pub view: EventView,
    pub media: Vec<MediaItem>,
    pub history: Vec<HistoryItem>,
}

pub struct Node {
    dir: PathBuf,
    store: Store,
    key: SigningKey,
    author: AuthorId,
    clock: Clock,
    media: MediaStore,
    /// Loaded on first use: commands that never query the map do not pay
    /// for reading every position.
    spatial: Option<SpatialIndex>,
    /// The sensor rules (`serve --rules`), with their de-duplication
    /// state; `None`: readings raise nothing here.
    pub(crate) rules: Option<crate::sensors::rules::RuleEngine>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Node")
            .field("dir", &self.dir)
            .field("author", &self.author)
            .finish()
    }
}

fn write_key_file(path: &Path, key: &SigningKey) -> Result<(), NodeError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(NodeError::io(path))?;
    f.write_all(format!("{}\n", hex::encode(key.to_bytes())).as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(NodeError::io(path))
}

/// Writes a file next to its final name, syncs it, then renames it into
/// place, so a crash leaves either the old or the new file.
fn replace_file(path: &Path, contents: &[u8], private: bool) -> Result<(), NodeError> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = opts.open(&tmp).map_err(NodeError::io(&tmp))?;
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .map_err(NodeError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(NodeError::io(path))
}

/// Makes the node in `dir` an enrolled device: its key becomes the one the
/// deployment CA certified, and the CA and device certificates are kept
/// beside the store. Only a node that has written nothing yet can enroll:
/// entries signed by the old key would have no certificate.
pub fn enroll(dir: &Path, e: &sentinel_certs::Enrollment) -> Result<(), NodeError> {
    if e.identity.role != sentinel_schema::DeviceRole::Node {
        return Err(NodeError::EnrollWrongRole(e.identity.role));
    }
    let node = Node::open(dir)?;
    let written = node.stats()?.local_entries;
    if written > 0 {
        return Err(NodeError::EnrollAfterWrites(written));
    }
    let Node { mut store, .. } = node;
    replace_file(&dir.join(CA_FILE), e.ca.to_pem().as_bytes(), false)?;
    replace_file(&dir.join(CERT_FILE), e.cert_pem().as_bytes(), false)?;
    // The store's owner changes first: until the key file follows, the
    // node refuses to open (wrong key) rather than sign with the old key.
    store.set_meta("owner", e.identity.author.as_bytes())?;
    sentinel_sync::SyncStore::add_certificates(
        &mut store,
        vec![(e.identity.author, e.cert_der.clone())],
    )?;
    replace_file(
        &dir.join(KEY_FILE),
        format!("{}\n", hex::encode(e.key.to_bytes())).as_bytes(),
        true,
    )
}

/// Reads the device key file (refusing one that others can read).
pub(crate) fn read_key(path: &Path) -> Result<SigningKey, NodeError> {
    let bad = |reason: &str| NodeError::KeyFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(NodeError::io(path))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(bad("readable by others; run `chmod 600` on it"));
        }
    }
    let text = std::fs::read_to_string(path).map_err(NodeError::io(path))?;
    let bytes = hex::decode(text.trim()).map_err(|_| bad("not a hex-encoded key"))?;
    let seed: [u8; 32] = bytes.try_into().map_err(|_| bad("not a 32-byte key"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The newest HLC in the log, so the clock never goes backwards.
fn last_hlc(store: &Store) -> Result<Hlc, NodeError> {
    let row: Option<(i64, u32)> = store
        .conn()
        .query_row(
            "SELECT hlc_ms, hlc_counter FROM entries ORDER BY hlc_ms DESC, hlc_counter DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(StoreError::from)?;
    Ok(row.map_or(Hlc::default(), |(ms, c)| Hlc::new(ms as u64, c)))
}

impl Node {
    /// Creates a node in `dir`: a new key (file mode 0600, never printed)
    /// and an empty store. Refuses if either exists.
    pub fn init(dir: &Path, key: SigningKey) -> Result<Node, NodeError> {
        let db = dir.join(DB_FILE);
        let key_path = dir.join(KEY_FILE);
        if db.exists() || key_path.exists() {
            return Err(NodeError::AlreadyInitialized(dir.to_path_buf()));
        }
        std::fs::create_dir_all(dir).map_err(NodeError::io(dir))?;
        let made = (|| {
            let store = Store::create(&db)?;
            store.set_meta("owner", author_of(&key).as_bytes())?;
            write_key_file(&key_path, &key)
        })();
        if let Err(e) = made {
            // Leave nothing half-made behind: a retry of `init` must work.
            crate::store::remove_db_files(&db);
            let _ = std::fs::remove_file(&key_path);
            return Err(e);
        }
        Node::open(dir)
    }

    pub fn open(dir: &Path) -> Result<Node, NodeError> {
        let db = dir.join(DB_FILE);
        let key_path = dir.join(KEY_FILE);
        if !db.exists() {
            return Err(NodeError::NotInitialized(dir.to_path_buf()));
        }
        let key = read_key(&key_path)?;
        let mut store = Store::open(&db)?;
        let author = author_of(&key);
        if store.owner()? != Some(author) {
            return Err(NodeError::WrongKey(key_path));
        }
        let media = MediaStore::open(dir.join(MEDIA_DIR))?;
        let clock = Clock::resume(last_hlc(&store)?);
        // Views catch up with anything the log holds that they have not
        // seen (after a crash between a remote commit and its projection).
        store.project_pending()?;
        Ok(Node {
            dir: dir.to_path_buf(),
            store,
            key,
            author,
            clock,
            media,
            spatial: None,
            rules: None,
        })
    }

    pub fn author(&self) -> AuthorId {
        self.author
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    pub fn media(&self) -> &MediaStore {
        &self.media
    }

    /// The R-tree, bulk-loaded on first use and kept in step afterwards.
    pub fn spatial(&mut self) -> Result<&SpatialIndex, NodeError> {
        let index = match self.spatial.take() {
            Some(index) => index,
            None => SpatialIndex::bulk_load(self.store.event_positions()?),
        };
        Ok(self.spatial.insert(index))
    }

    fn after_projection(&mut self, p: &Projected) {
        if let Some(s) = &mut self.spatial {
            for (event, at) in &p.events {
                s.upsert(*event, *at);
            }
        }
    }

    /// Signs `body` as this node's next entry and commits it with its views.
    fn commit_local(
        &mut self,
        body: Body,
        actor: Option<&str>,
        now_ms: u64,
    ) -> Result<SignedEntry, NodeError> {
        let mut entries = self.commit_local_batch(vec![body], actor, now_ms)?;
        entries
            .pop()
            .ok_or_else(|| unreachable!("one body in, one entry out"))
    }

    /// Signs each body as the next entry and commits them all, with their
    /// views, in one transaction (bulk import: one fsync per batch).
    fn commit_local_batch(
        &mut self,
        bodies: Vec<Body>,
        actor: Option<&str>,
        now_ms: u64,
    ) -> Result<Vec<SignedEntry>, NodeError> {
        self.commit_local_with(bodies, actor, now_ms, |_, _| Ok(()))
    }

    /// As [`Node::commit_local_batch`], and `also` writes whatever must be
    /// committed together with the entries, in their transaction.
    pub(crate) fn commit_local_with(
        &mut self,
        bodies: Vec<Body>,
        actor: Option<&str>,
        now_ms: u64,
        also: impl FnOnce(&rusqlite::Connection, &[(i64, SignedEntry)]) -> Result<(), StoreError>,
    ) -> Result<Vec<SignedEntry>, NodeError> {
        let caught_up = self.store.project_pending()?;
        self.after_projection(&caught_up);
        let conn = self.store.conn_mut();
        let mut head = log::head(conn, &self.author)?;
        let mut signed = Vec::with_capacity(bodies.len());
        for body in bodies {
            let entry = Entry {
                author: self.author,
                seq: head.map_or(1, |h| h.seq + 1),
                prev: head.map(|h| h.id),
                hlc: self.clock.tick(now_ms)?,
                actor: actor.map(str::to_owned),
                body,
            };
            let e = entry.sign(&self.key)?;
            head = Some(sentinel_schema::Head {
                seq: e.seq(),
                id: e.id(),
            });
            signed.push(e);
        }
        let tx = conn.transaction().map_err(StoreError::from)?;
        let mut rows = Vec::with_capacity(signed.len());
        for e in signed {
            let pos = log::insert_entry(&tx, &e, true, now_ms)?;
            rows.push((pos, e));
        }
        if let (Some(h), Some((pos, _))) = (head, rows.last()) {
            log::set_head(&tx, &self.author, h)?;
            also(&tx, &rows)?;
            let projected = project_entries(&tx, &rows)?;
            set_projected_upto(&tx, *pos)?;
            tx.commit().map_err(StoreError::from)?;
            self.after_projection(&projected);
        }
        Ok(rows.into_iter().map(|(_, e)| e).collect())
    }

    /// Reports many events in one transaction; all or none are committed.
    pub fn report_many(
        &mut self,
        items: &[(EventId, NewEvent)],
        actor: Option<&str>,
        now_ms: u64,
    ) -> Result<Vec<Ack>, NodeError> {
        let mut bodies = Vec::with_capacity(items.len());
        for (event, new) in items {
            let (_, change) = EventDoc::create(&self.author, new, now_ms)?;
            bodies.push(Body::EventChange(EventChange {
                event: *event,
                change,
            }));
        }
        let entries = self.commit_local_batch(bodies, actor, now_ms)?;
        Ok(items
            .iter()
            .zip(&entries)
            .map(|((ev, _), e)| Node::ack(*ev, e))
            .collect())
    }

    fn ack(event: EventId, e: &SignedEntry) -> Ack {
        Ack {
            event: event.to_hex(),
            entry: e.id().to_hex(),
            seq: e.seq(),
        }
    }

    /// Reports a new event.
    pub fn report(
        &mut self,
        new: &NewEvent,
        event: EventId,
        actor: Option<&str>,
        now_ms: u64,
    ) -> Result<Ack, NodeError> {
        let (_, change) = EventDoc::create(&self.author, new, now_ms)?;
        let e = self.commit_local(
            Body::EventChange(EventChange { event, change }),
            actor,
            now_ms,
        )?;
        Ok(Node::ack(event, &e))
    }

    /// The event's current document (complete, or rebuilt from the log).
    fn document(&self, event: EventId) -> Result<EventDoc, NodeError> {
        let row: Option<Vec<u8>> = self
            .store
            .conn()
            .query_row(
                "SELECT doc FROM documents WHERE event = ?1 AND complete = 1",
                [event.0],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::from)?;
        match row {
            Some(bytes) => EventDoc::load(&bytes)
                .map_err(|source| StoreError::CorruptDocument { event, source }.into()),
            None => Err(NodeError::NoSuchEvent(event.to_hex())),
        }
    }

    /// Edits an event: fields, notes, assignment or status.
    pub fn edit(
        &mut self,
        event: EventId,
        edit: &EventEdit,
        actor: Option<&str>,
        now_ms: u64,
    ) -> Result<Ack, NodeError> {
        self.store.project_pending()?;
        let mut doc = self.document(event)?;
        let change = doc.edit(&self.author, edit, now_ms)?;
        let e = self.commit_local(
            Body::EventChange(EventChange { event, change }),
            actor,
            now_ms,
        )?;
        Ok(Node::ack(event, &e))
    }

    /// Makes several edits to one event as one commit: each becomes its own
    /// entry, but all are committed in one transaction, or none is (the
    /// first refused edit refuses them all). An edit that would change
    /// nothing is left out; no edit left means no entry and an empty answer.
    pub fn edit_many(
        &mut self,
        event: EventId,
        edits: &[EventEdit],
        actor: Option<&str>,
        now_ms: u64,
    ) -> Result<Vec<Ack>, NodeError> {
        self.store.project_pending()?;
        let mut doc = self.document(event)?;
        let mut bodies = Vec::with_capacity(edits.len());
        for edit in edits {
            match doc.edit(&self.author, edit, now_ms) {
                Ok(change) => bodies.push(Body::EventChange(EventChange { event, change })),
                Err(EventError::Unchanged) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if bodies.is_empty() {
            return Ok(Vec::new());
        }
        let entries = self.commit_local_batch(bodies, actor, now_ms)?;
        Ok(entries.iter().map(|e| Node::ack(event, e)).collect())
    }

    /// Who reported an event: the actor of the entry that created it (the
    /// event's first change in HLC order), if that entry names one.
    pub fn reporter(&self, event: EventId) -> Result<Option<String>, NodeError> {
        let actor: Option<Option<String>> = self
            .store
            .conn()
            .query_row(
                "SELECT actor FROM entries WHERE event = ?1 AND kind = ?2
                 ORDER BY hlc_ms, hlc_counter, author, seq LIMIT 1",
                params![event.0, sentinel_schema::BodyKind::EventChange as u8],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::from)?;
        Ok(actor.flatten())
    }

    /// Attaches a photo or video. The blob is stored durably before the
    /// entry that names it is committed.
    pub fn attach(
        &mut self,
        event: EventId,
        bytes: &[u8],
        name: &str,
        actor: Option<&str>,
        now_ms: u64,
    ) -> Result<Ack, NodeError> {
        self.document(event)?;
        let body = Body::MediaAttached(MediaAttached {
            event,
            hash: [0; 32],
            mime: sentinel_schema::MediaType::Jpeg,
            size: 1,
            name: name.to_string(),
        });
        // Validate the name before writing the blob.
        body.validate().map_err(SignError::Invalid)?;
        let stored = self.media.put(bytes)?;
        let body = Body::MediaAttached(MediaAttached {
            event,
            hash: stored.hash,
            mime: stored.mime,
            size: stored.size,
            name: name.to_string(),
        });
        let e = self.commit_local(body, actor, now_ms)?;
        Ok(Node::ack(event, &e))
    }

    /// Moves the clock past what arrived. A wild remote clock is refused by
    /// the HLC; the entries stay (they are signed history), but our clock
    /// does not jump.
    pub(crate) fn observe(&mut self, report: &ApplyReport, now_ms: u64) {
        if let Some(hlc) = report.max_hlc {
            let _ = self.clock.observe(hlc, now_ms);
        }
    }

    /// Brings the views (and the R-tree, if loaded) up to date with the log.
    pub fn catch_up_views(&mut self) -> Result<Projected, NodeError> {
        let projected = self.store.project_pending()?;
        self.after_projection(&projected);
        Ok(projected)
    }

    /// Applies entries from elsewhere: the log commit first, then the views.
    ///
    /// `VerifiedEntry` proves only the signature. The caller must already
    /// have made the other checks of `docs/protocol.md` 2.6 — certificate,
    /// validity, revocation, role, Automerge actor — as the sync session
    /// does before it calls [`sentinel_sync::SyncStore::apply`]; otherwise
    /// an entry no peer would accept could reach the views.
    pub fn apply_remote(
        &mut self,
        entries: Vec<VerifiedEntry>,
        now_ms: u64,
    ) -> Result<ApplyReport, NodeError> {
        let report = self.store.apply_remote(entries, now_ms)?;
        self.observe(&report, now_ms);
        self.catch_up_views()?;
        Ok(report)
    }

    /// Finds an event by its id or a unique prefix of it.
    pub fn resolve(&self, prefix: &str) -> Result<EventId, NodeError> {
        let p = prefix.trim().to_ascii_lowercase();
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(NodeError::NoSuchEvent(prefix.to_string()));
        }
        let mut stmt = self
            .store
            .conn()
            .prepare_cached(
                "SELECT event FROM events WHERE event_hex >= ?1 AND event_hex < ?1 || 'g' LIMIT 2",
            )
            .map_err(StoreError::from)?;
        let mut rows = stmt.query([&p]).map_err(StoreError::from)?;
        let mut found = Vec::new();
        while let Some(r) = rows.next().map_err(StoreError::from)? {
            found.push(EventId(blob(r, 0, "events.event")?));
        }
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(NodeError::NoSuchEvent(prefix.to_string())),
            _ => Err(NodeError::AmbiguousEvent(prefix.to_string())),
        }
    }

    pub fn show(&self, event: EventId) -> Result<EventDetail, NodeError> {
        let view = self.document(event)?.view()?;
        let conn = self.store.conn();
        let mut media = Vec::new();
        {
            let mut stmt = conn
                .prepare_cached("SELECT hash, mime, size, name FROM event_media WHERE event = ?1 ORDER BY name, hash")
                .map_err(StoreError::from)?;
            let mut rows = stmt.query([event.0]).map_err(StoreError::from)?;
            while let Some(r) = rows.next().map_err(StoreError::from)? {
                let hash: [u8; 32] = blob(r, 0, "event_media.hash")?;
                media.push(MediaItem {
                    hash: hex::encode(hash),
                    mime: r.get(1).map_err(StoreError::from)?,
                    size: r.get::<_, i64>(2).map_err(StoreError::from)? as u64,
                    name: r.get(3).map_err(StoreError::from)?,
                });
            }
        }
        let mut history = Vec::new();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, author, seq, hlc_ms, hlc_counter, kind, actor, local FROM entries
                 WHERE event = ?1 ORDER BY hlc_ms, hlc_counter, author",
            )
            .map_err(StoreError::from)?;
        let mut rows = stmt.query([event.0]).map_err(StoreError::from)?;
        while let Some(r) = rows.next().map_err(StoreError::from)? {
            let id: [u8; 32] = blob(r, 0, "entries.id")?;
            let author: [u8; 32] = blob(r, 1, "entries.author")?;
            let kind: u8 = r.get(5).map_err(StoreError::from)?;
            history.push(HistoryItem {
                entry: hex::encode(id),
                author: hex::encode(author),
                seq: r.get::<_, i64>(2).map_err(StoreError::from)? as u64,
                hlc: Hlc::new(
                    r.get::<_, i64>(3).map_err(StoreError::from)? as u64,
                    r.get(4).map_err(StoreError::from)?,
                )
                .to_string(),
                kind: sentinel_schema::BodyKind::from_wire(kind.into())
                    .map_or("unknown", |k| k.as_str()),
                actor: r.get(6).map_err(StoreError::from)?,
                local: r.get(7).map_err(StoreError::from)?,
            });
        }
        Ok(EventDetail {
            id: event,
            view,
            media,
            history,
        })
    }

    /// Counts for `stats`.
    pub fn stats(&self) -> Result<Stats, NodeError> {
        let conn = self.store.conn();
        let count = |sql: &str| -> Result<u64, NodeError> {
            Ok(conn
                .query_row(sql, [], |r| r.get::<_, i64>(0))
                .map_err(StoreError::from)? as u64)
        };
        Ok(Stats {
            author: self.author.to_hex(),
            entries: count("SELECT count(*) FROM entries")?,
            local_entries: count("SELECT count(*) FROM entries WHERE local = 1")?,
            authors: count("SELECT count(*) FROM heads")?,
            events: count("SELECT count(*) FROM events")?,
            media: count("SELECT count(*) FROM event_media")?,
            forks: count("SELECT count(*) FROM forks")?,
            quarantined: count("SELECT count(*) FROM quarantine")?,
            awaiting_receipt: self.store.outbox_len()?,
            heads_digest: hex::encode(log::heads(conn)?.digest()),
        })
    }

    /// An entry of this store by id, for tests and tools.
    pub fn entry(&self, id: EntryId) -> Result<Option<SignedEntry>, NodeError> {
        let row: Option<(i64, Vec<u8>)> = self
            .store
            .conn()
            .query_row(
                "SELECT pos, bytes FROM entries WHERE id = ?1",
                params![id.as_bytes()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(StoreError::from)?;
        row.map(|(pos, b)| {
            SignedEntry::from_bytes(b)
                .map_err(|source| StoreError::CorruptEntry { pos, source }.into())
        })
        .transpose()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub author: String,
    pub entries: u64,
    pub local_entries: u64,
    pub authors: u64,
    pub events: u64,
    pub media: u64,
    pub forks: u64,
    pub quarantined: u64,
    /// Entries written here that no hub has acknowledged yet (the outbox).
    pub awaiting_receipt: u64,
    pub heads_digest: String,
}
