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
//! - **Media.** The hub does not serve media blobs (yet): a node fetching
//!   blobs after a sync gets a refused media connection, reported per sync
//!   by the node; entries are unaffected.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use quinn::Endpoint;
use sentinel_certs::{Enrollment, FreshnessPolicy, Identity, RevocationHandle};
use sentinel_schema::DeviceRole;
use sentinel_sync::ca_trust::CaTrust;
use sentinel_sync::quic::{self, Side, Until};
use sentinel_sync::{Session, SessionConfig, SessionEvent, SyncStore};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::{watch, Semaphore};

use crate::store::peers::PeerSeen;
use crate::store::{PgStore, PgSyncStore, StoreError};

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
}

impl std::fmt::Debug for HubNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubNet")
            .field("enrollment", &self.enrollment)
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
            trust: Arc::new(CaTrust::new(enrollment.ca.clone())),
            enrollment,
            revocations,
            server,
            client,
        })
    }

    /// [`HubNet::new`] with the newest revocation list the store holds.
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
        HubNet::new(enrollment, revocations, freshness)
    }

    fn session(&self) -> Session {
        let mut config = SessionConfig::new(DeviceRole::Hub, self.trust.clone());
        config.max_batch_entries = sentinel_sync::message::MAX_BATCH_ENTRIES;
        Session::new(config)
    }
}

/// Binds the sync port (`:0` picks a free one; see `Endpoint::local_addr`).
pub fn listen(net: &HubNet, addr: SocketAddr) -> Result<Endpoint, ServerError> {
    Ok(quic::server_endpoint(
        addr,
        net.server.clone(),
        net.client.clone(),
    )?)
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
    let (relay, _keep) = watch::channel(0u64);
    // The projector follows the log: once at start, then whenever a session
    // applied entries (changes coalesce while it works, so it never queues).
    let projector_store = store.clone();
    let mut applied = relay.subscribe();
    tokio::spawn(async move {
        loop {
            if let Err(e) = projector_store.project_pending().await {
                eprintln!("projector: {e}");
            }
            if applied.changed().await.is_err() {
                return;
            }
        }
    });
    let relay = Arc::new(relay);
    let slots = Arc::new(Semaphore::new(max_sessions.max(1)));
    let report = Arc::new(report);
    while let Some(incoming) = endpoint.accept().await {
        let peer = incoming.remote_address();
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            eprintln!("peer {peer}: refused, {max_sessions} sessions already running");
            incoming.refuse();
            continue;
        };
        let sync_store = PgSyncStore::new(store.clone(), runtime.clone());
        let net = net.clone();
        let relay = relay.clone();
        let report = report.clone();
        let peers = store.clone();
        tokio::spawn(async move {
            let (r, identity) = session(sync_store, &net, incoming, &relay).await;
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
            report(r);
            drop(permit);
        });
    }
    Ok(())
}

/// Runs one connection to its end; the peer's identity if verified.
async fn session(
    store: PgSyncStore,
    net: &HubNet,
    incoming: quinn::Incoming,
    relay: &watch::Sender<u64>,
) -> (SessionReport, Option<Identity>) {
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
            return (r, None);
        }
    };
    let identity = quic::identity_of(&conn, &net.enrollment.ca).ok();
    r.peer_name = identity
        .as_ref()
        .map(|i| i.name.clone())
        .unwrap_or_default();
    let ca = net.enrollment.ca.clone();
    let lists = store.clone();
    let mut forks = 0u64;
    let outcome = quic::drive(
        &conn,
        Side::Acceptor,
        net.session(),
        Arc::new(Mutex::new(store)),
        Until::Closed,
        Some(relay.subscribe()),
        |event| match event {
            SessionEvent::Applied { n_entries, .. } if *n_entries > 0 => {
                relay.send_modify(|n| *n = n.wrapping_add(1));
            }
            SessionEvent::RevocationListLearned { .. } => {
                if let Ok(Some(bytes)) = lists.revocation_list() {
                    let _ = net.revocations.offer(&bytes, &ca);
                }
            }
            SessionEvent::Fork { .. } => forks += 1,
            _ => {}
        },
    )
    .await;
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
    (r, identity)
}
