//! A node: the store, the device's signing key and clock, media and the
//! R-tree, behind the operations an officer performs.
//!
//! Every operation that changes anything builds one signed entry and
//! commits it, with the views it affects, in one SQLite transaction; it
//! returns only after that commit (acknowledged means durable). Invalid
//! input is refused before anything is written.
//!
//! Never does: SQL or a transaction of its own (it signs; the store
//! commits, invariant 10), or know about the HTTP API that calls it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use sentinel_schema::query::EventRecord;
use sentinel_schema::rules::config::RulesConfig;
use sentinel_schema::{
    author_of, AuthorId, Body, Clock, Entry, EntryId, EventChange, EventDoc, EventEdit, EventError,
    EventId, MediaAttached, NewEvent, Point, SignError, SignedEntry, SigningKey, VerifiedEntry,
};
use sentinel_sync::{ApplyReport, SyncStore};

use crate::files::{create_private_dir, read_key, replace_file, write_key_file};
use crate::media::MediaStore;
use crate::rules::{Raised, RuleEngine, RuleHost};
use crate::spatial::SpatialIndex;
use crate::store::local::RuleEventRecord;
use crate::store::project::Projected;
use crate::store::Store;

pub use crate::error::NodeError;
pub use crate::files::{CA_FILE, CERT_FILE, DB_FILE, KEY_FILE, MEDIA_DIR};

/// What a successful write returns: the entry it committed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ack {
    pub event: String,
    pub entry: String,
    pub seq: u64,
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
    rules: Option<RuleEngine>,
    /// The rules' configuration, to load them again after a panic took
    /// the engine away ([`Node::recover`]).
    rules_config: Option<RulesConfig>,
}

/// Locks a node shared between the API, sync sessions and the feed.
///
/// A lock a panic poisoned (a thread panicked while holding it) is taken
/// back, not refused for ever: the node is put back in order first
/// ([`Node::recover`]: open transaction rolled back, in-memory indexes
/// dropped and rebuilt from the store on demand), since the store — the
/// only state that matters — commits whole transactions or nothing.
pub fn lock(node: &Mutex<Node>) -> MutexGuard<'_, Node> {
    match node.lock() {
        Ok(guard) => guard,
        Err(poisoned) => {
            node.clear_poison();
            let mut guard = poisoned.into_inner();
            guard.recover();
            guard
        }
    }
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
    // Public certificates, but files of a private directory: 0600 too.
    replace_file(&dir.join(CA_FILE), e.ca.to_pem().as_bytes())?;
    replace_file(&dir.join(CERT_FILE), e.cert_pem().as_bytes())?;
    // The store's owner changes first: until the key file follows, the
    // node refuses to open (wrong key) rather than sign with the old key.
    store.set_meta("owner", e.identity.author.as_bytes())?;
    store.add_certificates(vec![(e.identity.author, e.cert_der.clone())])?;
    replace_file(
        &dir.join(KEY_FILE),
        format!("{}\n", hex::encode(e.key.to_bytes())).as_bytes(),
    )
}

impl Node {
    /// Creates a node in `dir` (mode 0700): a new key (file mode 0600,
    /// never printed) and an empty store (0600). Refuses if either exists.
    pub fn init(dir: &Path, key: SigningKey) -> Result<Node, NodeError> {
        let db = dir.join(DB_FILE);
        let key_path = dir.join(KEY_FILE);
        if db.exists() || key_path.exists() {
            return Err(NodeError::AlreadyInitialized(dir.to_path_buf()));
        }
        create_private_dir(dir)?;
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
        // The newest HLC in the log, so the clock never goes backwards.
        let clock = Clock::resume(store.last_hlc()?);
        // An enrolled node judges revocations under its CA: those the log
        // and the stored list hold are applied to what the log holds now
        // (a store from before this was done catches up here), and to
        // whatever arrives later (`crate::store::revoked`).
        let ca_path = dir.join(CA_FILE);
        if ca_path.exists() {
            let ca = sentinel_certs::CaCert::load(&ca_path)?;
            store.judge_revocations_with(crate::revocations::judge(ca))?;
        }
        // Views catch up with anything the log holds that they have not
        // seen (after a crash between a remote commit and its projection).
        store.project_pending()?;
        let node = Node {
            dir: dir.to_path_buf(),
            store,
            key,
            author,
            clock,
            media,
            spatial: None,
            rules: None,
            rules_config: None,
        };
        // Blobs redactions erased whose removal a crash interrupted.
        node.erase_redacted_blobs()?;
        Ok(node)
    }

    /// Puts the node back in order after a panic interrupted an operation
    /// on it: the store's open transaction (if any) is rolled back, the
    /// R-tree dropped (rebuilt from the views on next use), and the sensor
    /// rules loaded again from the store's record of what they raised.
    pub fn recover(&mut self) {
        self.store.recover();
        self.spatial = None;
        match (&mut self.rules, &self.rules_config) {
            (Some(engine), _) => engine.reload(&self.store),
            (None, Some(config)) => {
                self.rules = RuleEngine::load(config.clone(), &self.store).ok();
            }
            (None, None) => {}
        }
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

    pub(crate) fn after_projection(&mut self, p: &Projected) {
        self.erase_redacted_quietly();
        if let Some(s) = &mut self.spatial {
            for (event, at) in &p.events {
                s.upsert(*event, *at);
            }
            for event in &p.removed {
                s.remove(event);
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
        let mut entries = self.commit_local_with(vec![body], actor, now_ms, None)?;
        entries
            .pop()
            .ok_or_else(|| unreachable!("one body in, one entry out"))
    }

    /// Signs each body as the next entry and commits them all, with their
    /// views, in one transaction (bulk import: one fsync per batch), and
    /// with `rule_event` when a sensor rule raised them.
    pub(crate) fn commit_local_with(
        &mut self,
        bodies: Vec<Body>,
        actor: Option<&str>,
        now_ms: u64,
        rule_event: Option<&RuleEventRecord>,
    ) -> Result<Vec<SignedEntry>, NodeError> {
        let caught_up = self.store.project_pending()?;
        self.after_projection(&caught_up);
        let mut head = self.store.head_of(&self.author)?;
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
        let projected = self
            .store
            .commit_local(&self.author, &signed, now_ms, rule_event)?;
        self.after_projection(&projected);
        Ok(signed)
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
        let entries = self.commit_local_with(bodies, actor, now_ms, None)?;
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

    /// The event's current document; refused when it is not complete.
    fn document(&self, event: EventId) -> Result<EventDoc, NodeError> {
        self.store
            .document(event)?
            .ok_or_else(|| NodeError::NoSuchEvent(event.to_hex()))
    }

    /// Edits an event: fields, notes, assignment or status.
    pub fn edit(
        &mut self,
        event: EventId,
        edit: &EventEdit,
        actor: Option<&str>,
        now_ms: u64,
    ) -> Result<Ack, NodeError> {
        self.catch_up_views()?;
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
        self.catch_up_views()?;
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
        let entries = self.commit_local_with(bodies, actor, now_ms, None)?;
        Ok(entries.iter().map(|e| Node::ack(event, e)).collect())
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
        // A blob a redaction erased is not stored again (protocol 1.6).
        let hash: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(bytes).into();
        if self.store.blob_erased(&hash)? {
            return Err(NodeError::Erased(hex::encode(hash)));
        }
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
        match self.store.events_with_prefix(&p)?.as_slice() {
            [one] => Ok(*one),
            [] => Err(NodeError::NoSuchEvent(prefix.to_string())),
            _ => Err(NodeError::AmbiguousEvent(prefix.to_string())),
        }
    }

    /// One event in full, as `show` and the API present it: its view (with
    /// the media attached to it), who reported it, and every entry about
    /// it.
    pub fn show(&self, event: EventId) -> Result<EventRecord, NodeError> {
        self.store
            .event_record(event)?
            .ok_or_else(|| NodeError::NoSuchEvent(event.to_hex()))
    }

    /// Counts for `stats`.
    pub fn stats(&self) -> Result<Stats, NodeError> {
        let c = self.store.counts()?;
        Ok(Stats {
            author: self.author.to_hex(),
            entries: c.entries,
            local_entries: c.local_entries,
            authors: c.authors,
            events: c.events,
            media: c.media,
            forks: c.forks,
            quarantined: c.quarantined,
            awaiting_receipt: self.store.outbox_len()?,
            heads_digest: hex::encode(self.store.heads()?.digest()),
        })
    }

    /// An entry of this store by id, for tests and tools.
    pub fn entry(&self, id: EntryId) -> Result<Option<SignedEntry>, NodeError> {
        Ok(self.store.entry(id)?)
    }
}

/// Sensor rules, run by the node on readings it takes from sensors
/// directly (`crate::rules`).
impl Node {
    /// Turns on the sensor rules of `config` for readings this node takes
    /// from sensors directly, with the de-duplication state the store
    /// remembers.
    pub fn enable_rules(&mut self, config: RulesConfig) -> Result<(), NodeError> {
        self.rules = Some(RuleEngine::load(config.clone(), &self.store)?);
        self.rules_config = Some(config);
        Ok(())
    }

    /// Whether rules are enabled.
    pub fn has_rules(&self) -> bool {
        self.rules.as_ref().is_some_and(|r| !r.is_empty())
    }

    /// Runs the rules on `entries` (readings just taken from their sensor,
    /// in seq order per sensor; other kinds are skipped) and reports an
    /// event for every trigger the window admits.
    pub fn raise_from_readings(
        &mut self,
        entries: &[SignedEntry],
        now_ms: u64,
    ) -> Result<Vec<Raised>, NodeError> {
        let Some(mut engine) = self.rules.take() else {
            return Ok(Vec::new());
        };
        let result = engine.run(self, entries, now_ms);
        if result.is_err() {
            // An event may have failed to commit after the window admitted
            // it: start again from what the store recorded.
            engine.reload(&self.store);
        }
        self.rules = Some(engine);
        result
    }
}

impl RuleHost for Node {
    fn entry_at(&self, author: &AuthorId, seq: u64) -> Result<Option<SignedEntry>, NodeError> {
        let Some(after) = seq.checked_sub(1) else {
            return Ok(None);
        };
        Ok(self
            .store
            .entries_after(author, after, 1, usize::MAX)?
            .into_iter()
            .next()
            .filter(|e| e.seq() == seq))
    }

    fn sensor_location(&mut self, sensor: &AuthorId) -> Result<Option<Point>, NodeError> {
        // The sensors view holds the last location once it has caught up
        // with the log.
        self.catch_up_views()?;
        Ok(self.store.sensor_location(sensor)?)
    }

    fn raise(
        &mut self,
        event: EventId,
        new: &NewEvent,
        actor: &str,
        record: &RuleEventRecord,
        now_ms: u64,
    ) -> Result<SignedEntry, NodeError> {
        let (_, change) = EventDoc::create(&self.author, new, now_ms)?;
        let mut committed = self.commit_local_with(
            vec![Body::EventChange(EventChange { event, change })],
            Some(actor),
            now_ms,
            Some(record),
        )?;
        committed
            .pop()
            .ok_or_else(|| unreachable!("one body in, one entry out"))
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
