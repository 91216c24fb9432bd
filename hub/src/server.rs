//! The hub's sync server: many nodes at once over QUIC, with live relay.
//!
//! Every accepted connection gets a tokio task running the sans-IO session
//! through `sentinel-sync`'s QUIC driver ([`Side::Acceptor`],
//! [`Until::Closed`]): the session catches both sides up, then stays open
//! and pushes whatever reaches the hub's log later.
//!
//! - **Store sharing.** Each connection has its own [`PgSyncStore`] (a
//!   clone of the pooled [`PgStore`]) behind its own mutex, so sessions
//!   never wait for each other's lock; the database serialises what must
//!   be (applies touching the same author take an advisory lock). The
//!   blocking adapter needs a multi-thread runtime: [`serve`] refuses to
//!   run on a current-thread one.
//! - **Live relay.** The server keeps one `watch` channel; a session that
//!   applies entries bumps it, and every live session (all subscribed)
//!   then offers the peer what it lacks. So entries from one node reach
//!   every other connected node without reconnecting, and two nodes that
//!   never meet converge through the hub.
//! - **Bounded.** At most `max_sessions` connections at once; beyond that
//!   new connections are refused before the handshake.
//! - **Media.** With a blob folder ([`HubNet::with_media`]) the endpoint
//!   also offers ALPN `sentinel-media/1`. On such a connection, which a
//!   node opens after its session, the hub runs the two-way exchange of
//!   `sentinel_sync::quic_media::exchange_blobs`: it fetches from the node
//!   every blob its log names that is not in the folder
//!   ([`PgStore::media_named`]), verified before it is stored, and serves
//!   the node whatever it asks for. A media connection takes a session
//!   slot while it runs, is logged as one JSON line (`{"media": …}`), and
//!   is not a session: it is not recorded in `peers` nor passed to
//!   `report`.
//! - **Revocations.** Peers are checked against one shared
//!   [`RevocationHandle`]: the CA list, and the `revocation` entries of
//!   hubs — those the hub signs (`POST /api/v1/devices/{key}/revoke`, added
//!   by the own chain as it appends them), those that arrive by sync
//!   (added as each is applied) and, at start, those the log holds
//!   ([`HubNet::for_store`]). A new handshake of a revoked key is refused;
//!   every session's next batch refuses the author's entries after its
//!   last valid seq; and a live connection of a key revoked while it is
//!   open is closed (QUIC code 0, reason starting with `revoked`).
//! - **Metrics.** Through the `metrics` facade (rendered at the HTTP API's
//!   `/metrics` once `sentinel_http::ops::metrics` installed the recorder):
//!   [`SESSIONS_STARTED`], [`SESSIONS_OPEN`], [`SESSIONS_ENDED`] by
//!   `outcome`, [`SESSIONS_REFUSED`], and [`ENTRIES_APPLIED`] and
//!   [`ENTRIES_QUARANTINED`], counted as each batch is applied (a live
//!   session may last for hours).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quinn::Endpoint;
use sentinel_certs::{Enrollment, FreshnessPolicy, Identity, RevocationHandle};
use sentinel_schema::{AuthorId, DeviceRole};
use sentinel_sync::blobs::MediaStore;
use sentinel_sync::ca_trust::CaTrust;
use sentinel_sync::quic::{self, Side, Until};
use sentinel_sync::quic_media;
use sentinel_sync::{Session, SessionConfig, SessionEvent, SyncStore};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::{watch, Semaphore};

use crate::api::Feed;
use crate::checkpoint::Checkpointer;
use crate::now_ms;
use crate::own::OwnChain;
use crate::store::peers::PeerSeen;
use crate::store::{PgStore, PgSyncStore, StoreError};

/// Connections accepted on the sync port (sessions, and media connections,
/// which are only told apart after the handshake).
pub const SESSIONS_STARTED: &str = "sentinel_hub_sync_sessions_started_total";
/// Connections accepted and not yet ended.
pub const SESSIONS_OPEN: &str = "sentinel_hub_sync_sessions_open";
/// Ended connections by `outcome`: `handshake_refused` (unknown CA,
/// revoked, expired…), `closed` (the session ran and was closed, by either
/// side), `error` (it broke off), `media` (a media exchange ended).
pub const SESSIONS_ENDED: &str = "sentinel_hub_sync_sessions_ended_total";
/// Connections refused because `max_sessions` were running.
pub const SESSIONS_REFUSED: &str = "sentinel_hub_sync_sessions_refused_total";
/// Entries from peers applied to the hub's log (ingested).
pub const ENTRIES_APPLIED: &str = "sentinel_hub_sync_entries_applied_total";
/// Entries from peers that failed a check and were quarantined.
pub const ENTRIES_QUARANTINED: &str = "sentinel_hub_sync_entries_quarantined_total";

/// Describes the sync metrics and shows the counters from 0.
fn describe_metrics() {
    metrics::describe_counter!(SESSIONS_STARTED, "Sync connections accepted");
    metrics::describe_gauge!(SESSIONS_OPEN, "Sync connections open now");
    metrics::describe_counter!(SESSIONS_ENDED, "Sync connections ended, by outcome");
    metrics::describe_counter!(
        SESSIONS_REFUSED,
        "Sync connections refused: max_sessions were running"
    );
    metrics::describe_counter!(ENTRIES_APPLIED, "Entries from peers applied to the log");
    metrics::describe_counter!(ENTRIES_QUARANTINED, "Entries from peers quarantined");
    for name in [
        SESSIONS_STARTED,
        SESSIONS_REFUSED,
        ENTRIES_APPLIED,
        ENTRIES_QUARANTINED,
    ] {
        metrics::counter!(name).increment(0);
    }
    metrics::gauge!(SESSIONS_OPEN).increment(0.0);
}

/// Counts a connection as open until dropped (also when its task panics),
/// then as ended with the outcome set last.
struct OpenSession {
    outcome: &'static str,
}

impl OpenSession {
    fn start() -> OpenSession {
        metrics::counter!(SESSIONS_STARTED).increment(1);
        metrics::gauge!(SESSIONS_OPEN).increment(1.0);
        OpenSession { outcome: "error" }
    }
}

impl Drop for OpenSession {
    fn drop(&mut self) {
        metrics::gauge!(SESSIONS_OPEN).decrement(1.0);
        metrics::counter!(SESSIONS_ENDED, "outcome" => self.outcome).increment(1);
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("certificates: {0}")]
    Certs(#[from] sentinel_certs::CertsError),
    #[error("the stored revocation list: {0}")]
    Revocations(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("network: {0}")]
    Net(#[from] quic::DriverError),
    #[error("the hub must run on a multi-thread tokio runtime")]
    CurrentThreadRuntime,
}

/// The hub's identity and TLS configuration.
pub struct HubNet {
    pub enrollment: Enrollment,
    /// Shared with the TLS verifiers: a newer list learned from a peer
    /// applies to the next handshake.
    pub revocations: RevocationHandle,
    pub server: Arc<rustls::ServerConfig>,
    pub client: Arc<rustls::ClientConfig>,
    pub trust: Arc<CaTrust>,
    /// The blob folder; `None`: the hub takes no media connections.
    pub media: Option<Arc<MediaStore>>,
    /// The hub's own chain: [`serve`] pushes what is appended to it to
    /// live sessions at once.
    pub own: Option<Arc<OwnChain>>,
    /// How often [`serve`] signs a checkpoint of the heads (when they
    /// moved) into the own chain; `None`: never.
    pub checkpoint_every: Option<Duration>,
    /// Where the projector announces the events it wrote.
    pub feed: Option<Feed>,
    /// Bumped whenever entries reach the log: by sessions, by the own
    /// chain, and by sensor pushes over HTTP ([`crate::sensors`]); wakes
    /// the projector and every live session.
    pub relay: Arc<watch::Sender<u64>>,
    /// The rules run on readings that a sensor sends in a sync session of
    /// its own (as on readings pushed over HTTP; never on relayed ones).
    pub sensor_rules: Option<Arc<crate::sensors::SensorRules>>,
}

impl std::fmt::Debug for HubNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubNet")
            .field("enrollment", &self.enrollment)
            .field("media", &self.media.as_ref().map(|m| m.dir().to_path_buf()))
            .field("checkpoint_every", &self.checkpoint_every)
            .finish_non_exhaustive()
    }
}

impl HubNet {
    /// TLS configurations for `enrollment`, checking peers against
    /// `revocations` under `freshness`.
    pub fn new(
        enrollment: Enrollment,
        revocations: RevocationHandle,
        freshness: FreshnessPolicy,
    ) -> Result<HubNet, ServerError> {
        let server = sentinel_certs::server_config(&enrollment, &revocations, freshness)?;
        let client = sentinel_certs::client_config(&enrollment, &revocations, freshness)?;
        Ok(HubNet {
            // Sessions read the handle's entry revocations at every entry.
            trust: Arc::new(CaTrust::with_revocations(
                enrollment.ca.clone(),
                revocations.clone(),
            )),
            enrollment,
            revocations,
            server,
            client,
            media: None,
            own: None,
            checkpoint_every: None,
            feed: None,
            relay: Arc::new(watch::channel(0u64).0),
            sensor_rules: None,
        })
    }

    /// Runs `rules` on the readings sensors send in sync sessions of their
    /// own ([`crate::sensors`]: only the receiver that takes a reading from
    /// its sensor evaluates it).
    pub fn with_sensor_rules(mut self, rules: Arc<crate::sensors::SensorRules>) -> HubNet {
        self.sensor_rules = Some(rules);
        self
    }

    /// Announces every event the projector writes on `feed` (the API's
    /// `GET /api/v1/feed`).
    pub fn with_feed(mut self, feed: Feed) -> HubNet {
        self.feed = Some(feed);
        self
    }

    /// Pushes entries the hub itself writes (role grants, checkpoints) to
    /// live sessions as they are appended, and enforces the revocations it
    /// signs at once ([`OwnChain::enforce_revocations`]).
    pub fn with_own_chain(mut self, own: Arc<OwnChain>) -> HubNet {
        own.enforce_revocations(self.revocations.clone());
        self.own = Some(own);
        self
    }

    /// Signs a checkpoint of the heads into `own` every `every` while they
    /// move (see [`crate::checkpoint`]); live sessions push it at once.
    pub fn with_checkpoints(mut self, own: Arc<OwnChain>, every: Duration) -> HubNet {
        self.checkpoint_every = Some(every);
        self.with_own_chain(own)
    }

    /// Keeps media blobs in `media`: [`listen`] then also offers the media
    /// protocol and [`serve`] exchanges blobs with nodes.
    pub fn with_media(mut self, media: MediaStore) -> HubNet {
        self.media = Some(Arc::new(media));
        self
    }

    /// [`HubNet::new`] with the newest revocation list the store holds and
    /// the hubs' revocation entries of its log.
    pub async fn for_store(
        enrollment: Enrollment,
        store: &PgStore,
        freshness: FreshnessPolicy,
    ) -> Result<HubNet, ServerError> {
        let revocations = match store.revocation_list().await? {
            Some(bytes) => RevocationHandle::from_signed(&bytes, &enrollment.ca)
                .map_err(|e| ServerError::Revocations(e.to_string()))?,
            None => RevocationHandle::empty(),
        };
        crate::revocations::load(store, &enrollment.ca, &revocations).await?;
        HubNet::new(enrollment, revocations, freshness)
    }

    fn session(&self) -> Session {
        let mut config = SessionConfig::new(DeviceRole::Hub, self.trust.clone());
        config.max_batch_entries = sentinel_sync::message::MAX_BATCH_ENTRIES;
        Session::new(config)
    }
}

/// Binds the sync port (`:0` picks a free one; see `Endpoint::local_addr`).
/// With a blob folder the port takes media connections too.
pub fn listen(net: &HubNet, addr: SocketAddr) -> Result<Endpoint, ServerError> {
    let server = match net.media {
        Some(_) => quic_media::with_media_alpn(&net.server),
        None => net.server.clone(),
    };
    Ok(quic::server_endpoint(addr, server, net.client.clone())?)
}

/// How one session ended, for logs and tests.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SessionReport {
    pub peer: String,
    pub peer_name: String,
    /// Entries the peer acknowledged.
    pub sent: u64,
    pub received: u64,
    pub applied: u64,
    pub quarantined: u64,
    pub forks: u64,
    pub caught_up: bool,
    /// Close code and reason, or the error that ended the session.
    pub closed: String,
    pub duration_ms: u64,
}

/// How one media connection ended, for logs.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MediaReport {
    pub peer: String,
    pub peer_name: String,
    /// Blobs the hub lacked when the exchange began.
    pub wanted: u64,
    /// Blobs fetched from the peer, verified and stored.
    pub fetched: u64,
    pub bytes_received: u64,
    /// Blobs that could not be fetched: hex hash and reason.
    pub failed: Vec<String>,
    /// Blobs the peer fetched from the hub, in full.
    pub served: u64,
    pub bytes_sent: u64,
    /// How the peer ended the exchange.
    pub peer_end: String,
    /// Why the hub could not tell what it wants (it still served).
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// Accepts sync connections on `endpoint` until it is closed, at most
/// `max_sessions` at once. Each finished session with a verified peer is
/// recorded in `peers` ([`PgStore::record_peer`]), then logged to stderr
/// (one JSON line) and passed to `report`.
pub async fn serve(
    store: PgStore,
    net: Arc<HubNet>,
    endpoint: Endpoint,
    max_sessions: usize,
    report: impl Fn(SessionReport) + Send + Sync + 'static,
) -> Result<(), ServerError> {
    let runtime = Handle::current();
    if runtime.runtime_flavor() != RuntimeFlavor::MultiThread {
        return Err(ServerError::CurrentThreadRuntime);
    }
    describe_metrics();
    let relay = net.relay.clone();
    // The projector follows the log: once at start, then whenever a session
    // applied entries (changes coalesce while it works, so it never queues).
    // What it wrote goes out on the live feed, if there is one.
    let projector_store = store.clone();
    let mut applied = relay.subscribe();
    let feed = net.feed.clone();
    tokio::spawn(async move {
        loop {
            match projector_store.project_pending().await {
                Ok(report) => {
                    if let Some(feed) = &feed {
                        if let Err(e) = feed.publish(&projector_store, &report.events).await {
                            eprintln!("live feed: {e}");
                        }
                    }
                }
                Err(e) => eprintln!("projector: {e}"),
            }
            if applied.changed().await.is_err() {
                return;
            }
        }
    });
    if let Some(own) = &net.own {
        let mut written = own.subscribe();
        let wake = relay.clone();
        tokio::spawn(async move {
            while written.changed().await.is_ok() {
                wake.send_modify(|n| *n = n.wrapping_add(1));
            }
        });
        if let Some(every) = net.checkpoint_every {
            tokio::spawn(Checkpointer::new(own.clone()).run(every));
        }
    }
    let slots = Arc::new(Semaphore::new(max_sessions.max(1)));
    // Sessions touch the store (which blocks its thread on PostgreSQL) a
    // pool's worth at a time; the rest wait as tasks, so a thousand
    // sessions do not park a thousand threads and starve the handshakes.
    let store_work = Arc::new(Semaphore::new(store.pool_size().max(1)));
    let report = Arc::new(report);
    while let Some(incoming) = endpoint.accept().await {
        let peer = incoming.remote_address();
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            eprintln!("peer {peer}: refused, {max_sessions} sessions already running");
            metrics::counter!(SESSIONS_REFUSED).increment(1);
            incoming.refuse();
            continue;
        };
        let sync_store = PgSyncStore::new(store.clone(), runtime.clone());
        let store_work = store_work.clone();
        let net = net.clone();
        let relay = relay.clone();
        let report = report.clone();
        let peers = store.clone();
        let mut open = OpenSession::start();
        tokio::spawn(async move {
            let (r, identity) = match session(sync_store, &net, incoming, &relay, store_work).await
            {
                Handled::Session(r, identity) => {
                    open.outcome = session_outcome(&r);
                    (r, identity)
                }
                Handled::Media(m) => {
                    open.outcome = "media";
                    eprintln!(
                        "{}",
                        serde_json::to_string(&serde_json::json!({ "media": m }))
                            .unwrap_or_else(|_| format!("{m:?}"))
                    );
                    drop(open);
                    drop(permit);
                    return;
                }
            };
            if let Some(identity) = identity {
                let seen = PeerSeen {
                    identity: &identity,
                    at_ms: SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64),
                    addr: &r.peer,
                    close: &r.closed,
                };
                if let Err(e) = peers.record_peer(&seen).await {
                    eprintln!("peer {}: recording its status: {e}", r.peer);
                }
            }
            eprintln!(
                "{}",
                serde_json::to_string(&r).unwrap_or_else(|_| format!("{r:?}"))
            );
            drop(open);
            report(r);
            drop(permit);
        });
    }
    Ok(())
}

/// How a session ended, for [`SESSIONS_ENDED`].
fn session_outcome(r: &SessionReport) -> &'static str {
    if r.closed.starts_with("handshake refused") {
        "handshake_refused"
    } else if r.closed.starts_with("error") {
        "error"
    } else {
        "closed"
    }
}

/// What one accepted connection was.
enum Handled {
    /// A session, and the peer's identity if verified.
    Session(SessionReport, Option<Identity>),
    /// A media connection.
    Media(MediaReport),
}

/// Runs one connection to its end.
async fn session(
    store: PgSyncStore,
    net: &HubNet,
    incoming: quinn::Incoming,
    relay: &watch::Sender<u64>,
    store_work: Arc<Semaphore>,
) -> Handled {
    let started = Instant::now();
    let peer = incoming.remote_address();
    let mut r = SessionReport {
        peer: peer.to_string(),
        ..SessionReport::default()
    };
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            // Refused handshakes (unknown CA, revoked, expired) end here.
            r.closed = format!("handshake refused: {e}");
            r.duration_ms = started.elapsed().as_millis() as u64;
            return Handled::Session(r, None);
        }
    };
    let identity = quic::identity_of(&conn, &net.enrollment.ca).ok();
    r.peer_name = identity
        .as_ref()
        .map(|i| i.name.clone())
        .unwrap_or_default();
    if quic_media::is_media_connection(&conn) {
        let m = MediaReport {
            peer: r.peer,
            peer_name: r.peer_name,
            ..MediaReport::default()
        };
        return Handled::Media(media(store.store(), net, &conn, m, started).await);
    }
    let ca = net.enrollment.ca.clone();
    let lists = store.clone();
    let mut forks = 0u64;
    let sensor = match (&identity, &net.sensor_rules) {
        (Some(i), Some(rules)) if i.role == DeviceRole::Sensor => {
            Some(SensorPeer::start(i.author, rules.clone(), store.store()).await)
        }
        _ => None,
    };
    let drive = quic::drive_limited(
        &conn,
        Side::Acceptor,
        net.session(),
        Arc::new(Mutex::new(store)),
        Until::Closed,
        Some(relay.subscribe()),
        Some(store_work),
        |event| match event {
            SessionEvent::Applied { n_entries, .. } if *n_entries > 0 => {
                metrics::counter!(ENTRIES_APPLIED).increment(*n_entries as u64);
                relay.send_modify(|n| *n = n.wrapping_add(1));
                if let Some(sensor) = &sensor {
                    sensor.evaluate_new();
                }
            }
            SessionEvent::Quarantined { .. } => {
                metrics::counter!(ENTRIES_QUARANTINED).increment(1);
            }
            SessionEvent::RevocationListLearned { .. } => {
                if let Ok(Some(bytes)) = lists.revocation_list() {
                    let _ = net.revocations.offer(&bytes, &ca);
                }
            }
            SessionEvent::RevocationEntryApplied { by, revocation } => {
                let added = net.revocations.add_entry_revocation(revocation.clone());
                tracing::info!(
                    by = %by,
                    key = %revocation.key,
                    last_valid_seq = revocation.last_valid_seq,
                    ?added,
                    "a hub's revocation entry arrived by sync"
                );
            }
            SessionEvent::Fork { .. } => forks += 1,
            _ => {}
        },
    );
    let peer_author = identity.as_ref().map(|i| i.author);
    let outcome = tokio::select! {
        outcome = drive => outcome,
        why = revoked_while_open(net, peer_author, relay.subscribe()) => {
            // Dropping the drive ends the session where it waits; the
            // close tells the peer why.
            conn.close(quinn::VarInt::from_u32(0), why.as_bytes());
            r.closed = why;
            r.forks = forks;
            r.duration_ms = started.elapsed().as_millis() as u64;
            return Handled::Session(r, identity);
        }
    };
    match outcome {
        Ok(o) => {
            r.sent = o.stats.entries_acked;
            r.received = o.stats.entries_received;
            r.applied = o.stats.entries_applied;
            r.quarantined = o.stats.entries_quarantined;
            r.caught_up = o.caught_up;
            r.closed = format!(
                "{:?}: {}{}",
                o.code,
                o.reason,
                if o.remote { " (by the peer)" } else { "" }
            );
        }
        Err(e) => r.closed = format!("error: {e}"),
    }
    r.forks = forks;
    r.duration_ms = started.elapsed().as_millis() as u64;
    Handled::Session(r, identity)
}

/// Resolves, with the reason, once `peer` is revoked: checked at once,
/// then whenever the relay moves (it moves when the own chain appends,
/// so right after an admin's revocation, and after every applied batch,
/// which may hold another hub's). Never resolves for an unknown peer.
async fn revoked_while_open(
    net: &HubNet,
    peer: Option<sentinel_schema::AuthorId>,
    mut relay: watch::Receiver<u64>,
) -> String {
    let Some(peer) = peer else {
        return std::future::pending().await;
    };
    loop {
        if let Some(r) = net.revocations.revocation_of(&peer) {
            return format!(
                "revoked: entries after seq {} are refused ({})",
                r.last_valid_seq, r.reason
            );
        }
        if relay.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// The two-way blob exchange on a media connection: fetch what the hub
/// wants from the peer, serve what the peer asks for.
async fn media(
    store: &PgStore,
    net: &HubNet,
    conn: &quinn::Connection,
    mut m: MediaReport,
    started: Instant,
) -> MediaReport {
    let Some(blobs) = net.media.clone() else {
        // Only reachable with an endpoint not made by `listen`.
        conn.close(quinn::VarInt::from_u32(0), b"no media here");
        m.error = Some("the hub keeps no media".into());
        return m;
    };
    let wanted = match wanted_media(store, &blobs).await {
        Ok(wanted) => wanted,
        Err(e) => {
            // Still serve: what the hub holds is on disk, not in the database.
            m.error = Some(e);
            Vec::new()
        }
    };
    m.wanted = wanted.len() as u64;
    let report = quic_media::exchange_blobs(conn, blobs, wanted).await;
    m.fetched = report.fetched.len() as u64;
    m.bytes_received = report.bytes_received();
    m.failed = report
        .failed
        .iter()
        .map(|(hash, e)| format!("{}: {e}", hex::encode(hash)))
        .collect();
    m.served = report.served;
    m.bytes_sent = report.bytes_sent;
    m.peer_end = report
        .peer_end
        .map(|e| format!("{e:?}"))
        .unwrap_or_default();
    m.duration_ms = started.elapsed().as_millis() as u64;
    m
}

/// The blobs the log names that the folder does not hold, with the size
/// their entry announced.
pub async fn wanted_media(
    store: &PgStore,
    blobs: &Arc<MediaStore>,
) -> Result<Vec<([u8; 32], u64)>, String> {
    let named = store.media_named().await.map_err(|e| e.to_string())?;
    let blobs = blobs.clone();
    tokio::task::spawn_blocking(move || {
        named
            .into_iter()
            .filter(|(hash, _)| !blobs.contains(hash))
            .collect()
    })
    .await
    .map_err(|e| format!("checking the media folder: {e}"))
}

/// A sensor in a sync session of its own: the rules run on its readings as
/// batches of them are applied, in seq order, each reading once.
struct SensorPeer {
    author: AuthorId,
    rules: Arc<crate::sensors::SensorRules>,
    store: PgStore,
    /// The sensor's seq up to which its readings have been through the
    /// rules; the lock orders the evaluations of successive batches.
    upto: Arc<tokio::sync::Mutex<u64>>,
}

impl SensorPeer {
    /// Starts from the sensor's head as the hub holds it now: readings
    /// stored before this session were evaluated (or relayed) already.
    async fn start(
        author: AuthorId,
        rules: Arc<crate::sensors::SensorRules>,
        store: &PgStore,
    ) -> SensorPeer {
        let upto = match store.head(&author).await {
            Ok(head) => head.map_or(0, |h| h.seq),
            Err(e) => {
                tracing::error!(sensor = %author, "sensor rules: the sensor's head: {e}");
                u64::MAX
            }
        };
        SensorPeer {
            author,
            rules,
            store: store.clone(),
            upto: Arc::new(tokio::sync::Mutex::new(upto)),
        }
    }

    /// Evaluates, in a task, the readings stored since the last call.
    fn evaluate_new(&self) {
        let (author, rules, store, upto) = (
            self.author,
            self.rules.clone(),
            self.store.clone(),
            self.upto.clone(),
        );
        tokio::spawn(async move {
            let mut upto = upto.lock().await;
            if *upto == u64::MAX {
                return;
            }
            match store
                .entries_after(&author, *upto, usize::MAX, usize::MAX)
                .await
            {
                Ok(stored) => {
                    if let Some(last) = stored.last() {
                        *upto = last.seq();
                    }
                    rules.evaluate(&stored, now_ms()).await;
                }
                Err(e) => {
                    tracing::error!(sensor = %author, "sensor rules: reading its entries: {e}")
                }
            }
        });
    }
}
