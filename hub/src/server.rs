//! The hub's sync server: many nodes at once over QUIC, with live relay.
//!
//! Every accepted connection gets a tokio task running the sans-IO session
//! through `sentinel-sync`'s QUIC driver ([`Side::Acceptor`],
//! [`Until::Closed`]): the session catches both sides up, then stays open
//! and pushes whatever reaches the hub's log later. What connections share
//! is the [`HubNet`] (`crate::net`); [`serve`] also starts the projector
//! (`crate::projector`), which follows the relay, and the checkpointer.
//!
//! - **Store sharing.** Each connection has its own [`PgSyncStore`] (a
//!   clone of the pooled [`PgStore`]) behind its own mutex, so sessions
//!   never wait for each other's lock; the database serialises what must
//!   be (applies touching the same author take an advisory lock). The
//!   blocking adapter needs a multi-thread runtime: [`serve`] refuses to
//!   run on a current-thread one.
//! - **Live relay.** A session that applies entries bumps the relay, and
//!   every live session (all subscribed) then offers the peer what it
//!   lacks. So entries from one node reach every other connected node
//!   without reconnecting, and two nodes that never meet converge through
//!   the hub.
//! - **Admission** (`docs/security.md` 1.11). Every connection passes
//!   `sentinel_sync::admission`'s gate: a QUIC Retry before an address
//!   costs anything, at most [`Limits::max_per_address`] connections per
//!   address (handshakes included), a handshake deadline, and one of
//!   `max_sessions` slots only once the certificate has verified, at most
//!   [`Limits::max_per_peer`] per certificate key ([`HubNet::limits`]).
//!   So handshakes that never finish hold no slot, and a stolen key
//!   cannot take them all; a connection over a limit is closed after its
//!   handshake with `limit_exceeded` and the reason.
//! - **Roles.** A peer is what its certificate says: the driver gives each
//!   session the certificate's role (a sensor is sent nothing, and a Hello
//!   that claims another role ends the session), and a sensor's
//!   certificate gets no media connection.
//! - **Media.** With a blob folder ([`HubNet::with_media`]) the endpoint
//!   also offers ALPN `sentinel-media/1`; such a connection (not from a
//!   sensor) is handed to [`crate::media`]. It takes a session slot while
//!   it runs, is logged as one JSON line (`{"media": …}`), and is not a
//!   session: it is not recorded in `peers` nor passed to `report`.
//! - **Peers.** Each session with a verified peer is recorded as it ends
//!   ([`PgStore::record_peer`]), with the heads the peer presented and
//!   acknowledged: what it holds beyond the hub's log is its outbox as
//!   the hub sees it (`crate::store::peers`).
//! - **Revocations.** A new handshake of a revoked key is refused; every
//!   session's next batch refuses the author's entries after its last
//!   valid seq; and a live connection of a key revoked while it is open is
//!   closed (QUIC code 0, reason starting with `revoked`). Revocation
//!   entries that arrive by sync are added to the shared handle as each is
//!   applied.
//! - **Sensors.** A sensor's own session has its readings through the
//!   hub's rules ([`crate::sensor_peer`]).
//! - **Metrics.** Through the `metrics` facade (rendered at the HTTP API's
//!   `/metrics` once `sentinel_http::ops::metrics` installed the recorder):
//!   [`SESSIONS_STARTED`], [`SESSIONS_OPEN`], [`SESSIONS_ENDED`] by
//!   `outcome`, [`SESSIONS_REFUSED`] by `reason`, and [`ENTRIES_APPLIED`] and
//!   [`ENTRIES_QUARANTINED`], counted as each batch is applied (a live
//!   session may last for hours).
//!
//! Never does: HTTP, or SQL (the store answers).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use quinn::Endpoint;
use sentinel_certs::Identity;
use sentinel_schema::{AuthorId, DeviceRole};
use sentinel_sync::admission::{Admitted, Gate, Limits, Pending, Refusal, Screened};
use sentinel_sync::quic::{self, Side, Until};
use sentinel_sync::quic_media;
use sentinel_sync::{Session, SessionConfig, SessionEvent, SyncStore};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::{watch, Semaphore};

use crate::checkpoint::Checkpointer;
use crate::media::{self, MediaReport};
use crate::now_ms;
use crate::projector;
use crate::sensor_peer::SensorPeer;
use crate::store::peers::PeerSeen;
use crate::store::{PgStore, PgSyncStore};

pub use crate::net::{HubNet, ServerError};

/// Connections whose handshake began on the sync port (sessions, and media
/// connections, which are only told apart after the handshake), once
/// their address was validated (a QUIC Retry answered).
pub const SESSIONS_STARTED: &str = "sentinel_hub_sync_sessions_started_total";
/// Connections accepted and not yet ended.
pub const SESSIONS_OPEN: &str = "sentinel_hub_sync_sessions_open";
/// Ended connections by `outcome`: `handshake_refused` (unknown CA,
/// revoked, expired, too slow…), `refused` (verified, but over
/// `max_sessions` or its key's `max_per_peer`), `closed` (the session ran
/// and was closed, by either side), `error` (it broke off), `media` (a
/// media connection ended).
pub const SESSIONS_ENDED: &str = "sentinel_hub_sync_sessions_ended_total";
/// Connections refused at a limit, by `reason`: `full` (`max_sessions`
/// were running), `peer_busy` (the certificate key holds
/// `max_per_peer`), `address_busy` (the address holds `max_per_address`),
/// `not_validated`.
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
        "Sync connections refused at a limit, by reason"
    );
    metrics::describe_counter!(ENTRIES_APPLIED, "Entries from peers applied to the log");
    metrics::describe_counter!(ENTRIES_QUARANTINED, "Entries from peers quarantined");
    metrics::describe_histogram!(
        crate::store::POOL_WAIT,
        metrics::Unit::Seconds,
        "Time a caller waited for a pooled PostgreSQL connection"
    );
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

/// A sync session as the hub runs it: its Hello claims the role of the
/// hub's certificate; the driver tells it the peer's.
fn new_session(net: &HubNet) -> Session {
    let mut config = SessionConfig::new(net.enrollment.identity.role, net.trust.clone());
    config.max_batch_entries = sentinel_sync::message::MAX_BATCH_ENTRIES;
    Session::new(config)
}

/// Binds the sync port (`:0` picks a free one; see `Endpoint::local_addr`).
/// With a blob folder the port takes media connections too. The
/// stateless-reset key comes from the hub's key: nodes still talking to
/// a hub process that was restarted learn so at their next packet and
/// reconnect at once (`docs/operations.md`).
pub fn listen(net: &HubNet, addr: SocketAddr) -> Result<Endpoint, ServerError> {
    let server = match net.media {
        Some(_) => quic_media::with_media_alpn(&net.server),
        None => net.server.clone(),
    };
    let secret = quic::reset_secret(&net.enrollment.key.to_bytes());
    // The port's own socket, with a receive buffer for a burst of
    // handshakes; the endpoint is built on a passing socket of the same
    // address family and then moved onto it (it has no connection yet).
    let socket = std::net::UdpSocket::bind(addr).map_err(quic::DriverError::from)?;
    widen_receive_buffer(&socket);
    let mut passing = socket.local_addr().map_err(quic::DriverError::from)?;
    passing.set_port(0);
    let endpoint = quic::server_endpoint_keyed(passing, server, net.client.clone(), &secret)?;
    endpoint.rebind(socket).map_err(quic::DriverError::from)?;
    Ok(endpoint)
}

/// The receive buffer the sync port asks for: room for the Initial
/// packets of about 1,000 nodes arriving at once (1,200 bytes each, about
/// 2.3 KB of kernel memory with its bookkeeping, twice with the Retry
/// round) while the endpoint's task is busy. The kernel's default
/// (`net.core.rmem_default`, typically 208 KiB) holds about 90; the rest
/// were dropped, and each lost Initial costs its node a retransmission
/// timeout (1 s, then 2, 4, 8 s): the 15 s handshakes of a burst. The
/// kernel caps what is granted at `net.core.rmem_max`.
pub const SYNC_RECEIVE_BUFFER: usize = 8 << 20;

/// Asks for [`SYNC_RECEIVE_BUFFER`] on `socket`; logs what was granted
/// (a failure leaves the system's default, which works, only slower
/// under a burst).
fn widen_receive_buffer(socket: &std::net::UdpSocket) {
    let granted = quinn::udp::UdpSocketState::new(socket.into()).and_then(|state| {
        state.set_recv_buffer_size(socket.into(), SYNC_RECEIVE_BUFFER)?;
        // The answers to a burst want room too: Retry packets are sent
        // once, and dropped when the send buffer is full.
        state.set_send_buffer_size(socket.into(), SYNC_RECEIVE_BUFFER)?;
        state.recv_buffer_size(socket.into())
    });
    match granted {
        Ok(bytes) if bytes < SYNC_RECEIVE_BUFFER => tracing::info!(
            bytes,
            "the sync port's UDP receive buffer is smaller than asked \
             ({SYNC_RECEIVE_BUFFER} bytes; raise net.core.rmem_max): \
             a burst of handshakes may be dropped and retried"
        ),
        Ok(bytes) => tracing::debug!(bytes, "the sync port's UDP receive buffer"),
        Err(e) => tracing::warn!("sizing the sync port's UDP receive buffer: {e}"),
    }
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

/// Accepts sync connections on `endpoint` until it is closed, at most
/// `max_sessions` at once (and within the rest of [`HubNet::limits`]).
/// Each finished session with a verified peer is recorded in `peers`
/// ([`PgStore::record_peer`]), then logged to stderr (one JSON line) and
/// passed to `report`, as is each refused handshake; a connection refused
/// at a limit is logged and counted ([`SESSIONS_REFUSED`]).
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
    projector::spawn(
        store.clone(),
        relay.subscribe(),
        net.changes.clone(),
        net.media.clone(),
    );
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
    let gate = Gate::new(Limits {
        max_sessions,
        ..net.limits
    });
    // Sessions touch the store (which blocks its thread on PostgreSQL) a
    // pool's worth at a time; the rest wait as tasks, so a thousand
    // sessions do not park a thousand threads and starve the handshakes.
    let store_work = Arc::new(Semaphore::new(store.pool_size().max(1)));
    let report = Arc::new(report);
    while let Some(incoming) = endpoint.accept().await {
        let peer = incoming.remote_address();
        let pending = match gate.screen(incoming) {
            Screened::Retried => continue,
            Screened::Refused(why) => {
                refused(peer, &why);
                continue;
            }
            Screened::Handshake(pending) => pending,
        };
        let sync_store = PgSyncStore::new(store.clone(), runtime.clone());
        let store_work = store_work.clone();
        let net = net.clone();
        let relay = relay.clone();
        let report = report.clone();
        let peers = store.clone();
        let mut open = OpenSession::start();
        tokio::spawn(async move {
            let started_ms = now_ms();
            let (r, identity, presented) =
                match session(sync_store, &net, pending, &relay, store_work).await {
                    Handled::Refused(why) => {
                        open.outcome = "refused";
                        drop(open);
                        refused(peer, &why);
                        return;
                    }
                    Handled::Session(r, identity, presented) => {
                        open.outcome = session_outcome(&r);
                        (r, identity, presented)
                    }
                    Handled::Media(m) => {
                        open.outcome = "media";
                        eprintln!(
                            "{}",
                            serde_json::to_string(&serde_json::json!({ "media": m }))
                                .unwrap_or_else(|_| format!("{m:?}"))
                        );
                        drop(open);
                        return;
                    }
                };
            if let Some(identity) = identity {
                let presented: Option<Vec<(AuthorId, u64)>> =
                    presented.map(|p| p.into_iter().collect());
                let seen = PeerSeen {
                    identity: &identity,
                    at_ms: now_ms(),
                    started_ms,
                    addr: &r.peer,
                    close: &r.closed,
                    presented: presented.as_deref(),
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
        });
    }
    Ok(())
}

/// Logs and counts a connection refused at a limit.
fn refused(peer: SocketAddr, why: &Refusal) {
    eprintln!("peer {peer}: refused, {why}");
    metrics::counter!(SESSIONS_REFUSED, "reason" => why.kind()).increment(1);
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

/// Per author, the highest seq a peer said it holds in one session.
type Presented = HashMap<AuthorId, u64>;

/// What one accepted connection was.
enum Handled {
    /// Refused at a limit after its handshake (no slot free, or the
    /// peer's key holds its share); closed already.
    Refused(Refusal),
    /// A session, the peer's identity if verified, and the heads the
    /// peer said it holds (the highest seq per author it presented or
    /// acknowledged; `None` if it presented none).
    Session(SessionReport, Option<Identity>, Option<Presented>),
    /// A media connection.
    Media(MediaReport),
}

/// Runs one connection to its end: its handshake, then a session or a
/// media exchange.
async fn session(
    store: PgSyncStore,
    net: &HubNet,
    pending: Box<Pending>,
    relay: &watch::Sender<u64>,
    store_work: Arc<Semaphore>,
) -> Handled {
    let started = Instant::now();
    let peer = pending.remote_address();
    let mut r = SessionReport {
        peer: peer.to_string(),
        ..SessionReport::default()
    };
    // Held until the connection ends: its slot and its address's count.
    let admitted: Admitted = match pending.handshake(&net.enrollment.ca).await {
        Ok(admitted) => admitted,
        Err(why @ (Refusal::Full { .. } | Refusal::PeerBusy { .. })) => {
            return Handled::Refused(why)
        }
        Err(why) => {
            // Refused handshakes (unknown CA, revoked, expired, too slow)
            // end here.
            r.closed = match why {
                Refusal::Handshake(_) | Refusal::HandshakeTimeout(_) => why.to_string(),
                other => format!("handshake refused: {other}"),
            };
            r.duration_ms = started.elapsed().as_millis() as u64;
            return Handled::Session(r, None, None);
        }
    };
    let conn = &admitted.conn;
    let identity = Some(admitted.identity.clone());
    r.peer_name = admitted.identity.name.clone();
    if quic_media::is_media_connection(conn) {
        let mut m = MediaReport {
            peer: r.peer,
            peer_name: r.peer_name,
            ..MediaReport::default()
        };
        if quic_media::refuse_media(conn, admitted.identity.role) {
            m.error = Some(format!("refused to a {}", admitted.identity.role));
            m.duration_ms = started.elapsed().as_millis() as u64;
            return Handled::Media(m);
        }
        let blobs = net.media.clone();
        return Handled::Media(media::exchange(store.store(), blobs, conn, m, started).await);
    }
    let ca = net.enrollment.ca.clone();
    let lists = store.clone();
    let mut forks = 0u64;
    // What the peer holds, from its heads and acknowledgements: entries
    // it holds that the hub lacks when the session ends are still in its
    // outbox (`crate::store::peers`).
    let mut presented: Option<Presented> = None;
    let sensor = match (&identity, &net.sensor_rules) {
        (Some(i), Some(rules)) if i.role == DeviceRole::Sensor => {
            Some(SensorPeer::start(i.author, rules.clone(), store.store()).await)
        }
        _ => None,
    };
    let drive = quic::drive_limited(
        conn,
        Side::Acceptor,
        new_session(net),
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
            SessionEvent::Acknowledged { heads, .. } => {
                let held = presented.get_or_insert_with(HashMap::new);
                for (author, head) in heads {
                    let seq = held.entry(*author).or_insert(0);
                    *seq = (*seq).max(head.seq);
                }
            }
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
            return Handled::Session(r, identity, presented);
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
    Handled::Session(r, identity, presented)
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
