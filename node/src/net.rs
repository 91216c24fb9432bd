//! Syncing with peers over QUIC: `sentinel-node serve` and `sync`.
//!
//! The node's identity comes from its enrollment (`ca.pem`, `node.crt`,
//! `node.key`); the revocation list is the newest one the store holds and
//! is shared with the TLS verifiers, so a list learned from one peer
//! applies to the next handshake. Sessions run the sans-IO protocol from
//! `sentinel-sync` through its QUIC driver; after every applied batch the
//! views catch up.
//!
//! Hubs revoke devices with `revocation` entries too (`docs/security.md`
//! 1.7). The node honours those whose author's stored certificate verifies
//! under the deployment CA as a hub's: loaded from the log when the node
//! starts ([`crate::revocations`]), and added as sessions apply them
//! ([`SessionEvent::RevocationEntryApplied`]), to the same handle the TLS
//! verifiers read and that sessions consult for every entry they check.
//! So offline, a device a hub revoked is refused at its next handshake,
//! and its entries after the last valid seq at the next batch.
//!
//! **Links.** Every session's outcome — dialled by `sync` or "sync now",
//! or accepted by `serve` — is recorded in the store's links table
//! (`crate::store::links`) by the peer's verified key: the officer's page
//! shows when each peer and hub was last reached. A peer dialled but
//! never reached is recorded by the address dialled; a stranger whose
//! handshake failed on `serve` is not recorded at all.
//!
//! **Who gets in** (`docs/security.md` 1.11). `serve` puts
//! `sentinel_sync::admission`'s gate in front of every connection: a QUIC
//! Retry before an address costs anything, a cap per address, a handshake
//! deadline, and a slot only for a verified certificate (a few per key).
//! A peer is what its certificate says: the driver tells each session
//! the certificate's role (a sensor is sent nothing, whatever its Hello
//! claims), and a sensor's certificate gets no media connection, in
//! either direction.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use sentinel_certs::{CaCert, Enrollment, FreshnessPolicy, RevocationHandle};
use sentinel_schema::{AuthorId, Heads, SignedEntry, VerifiedEntry};
use sentinel_sync::admission::{Gate, Limits, Screened};
use sentinel_sync::ca_trust::CaTrust;
use sentinel_sync::message::CloseCode;
use sentinel_sync::quic::{self, Side, Until};
use sentinel_sync::quic_media;
use sentinel_sync::{ApplyReport, Rejection, Session, SessionConfig, SessionEvent, SyncStore};
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::net_media::MediaSummary;
pub(crate) use crate::net_session::record;
pub use crate::net_session::Summary;
use crate::net_session::{link_peer, on_event, summary, Tally};
use crate::node::{Node, NodeError, CA_FILE, CERT_FILE, KEY_FILE};
use crate::store::links::{Direction, SessionRecord};
use crate::store::StoreError;

/// The default port for `serve`.
pub const DEFAULT_PORT: u16 = 7447;

/// Everything a node needs to talk to peers.
pub struct Net {
    pub enrollment: Enrollment,
    pub revocations: RevocationHandle,
    pub server: Arc<rustls::ServerConfig>,
    pub client: Arc<rustls::ClientConfig>,
    pub trust: Arc<CaTrust>,
    /// The cap, in bytes per second, on what this node sends on each link
    /// it dials (a session and its media share it; `None`: no cap).
    pub link_rate: Option<std::num::NonZeroU64>,
}

impl Net {
    /// Caps what this node sends on each link it dials at `bytes_per_s`.
    pub fn with_link_rate(self, bytes_per_s: Option<std::num::NonZeroU64>) -> Net {
        Net {
            link_rate: bytes_per_s,
            ..self
        }
    }

    /// A new cap for one link, if this node has one (each link its own).
    pub(crate) fn pace(&self) -> Option<quic::Pace> {
        self.link_rate.map(quic::Pace::new)
    }

    /// Loads the enrollment from the data directory and builds TLS configs.
    pub fn load(dir: &Path, node: &Node) -> Result<Net, NodeError> {
        let ca_path = dir.join(CA_FILE);
        if !ca_path.exists() {
            return Err(NodeError::NotEnrolled);
        }
        let ca = CaCert::load(&ca_path)?;
        let cert_der = sentinel_certs::read_cert_file(&dir.join(CERT_FILE))?;
        let key = crate::files::read_key(&dir.join(KEY_FILE))?;
        let enrollment = Enrollment::new(ca.clone(), cert_der, key)?;
        let revocations = crate::revocations::revocation_handle(node.store(), &ca)?;
        // A field node applies any list it holds, however old: two offline
        // nodes must still reach each other (docs/security.md).
        let server =
            sentinel_certs::server_config(&enrollment, &revocations, FreshnessPolicy::Lenient)?;
        let client =
            sentinel_certs::client_config(&enrollment, &revocations, FreshnessPolicy::Lenient)?;
        Ok(Net {
            trust: Arc::new(CaTrust::with_revocations(ca, revocations.clone())),
            link_rate: None,
            enrollment,
            revocations,
            server,
            client,
        })
    }

    /// A session with `peer`, whose identity the TLS handshake proved (the
    /// driver tells the session the peer's certificate role). Its Hello
    /// claims the role of this device's own certificate, as the protocol
    /// obliges (`docs/protocol.md` 2.4, `role_mismatch`).
    pub(crate) fn session(&self, peer: Option<AuthorId>) -> Session {
        let mut config = SessionConfig::new(self.enrollment.identity.role, self.trust.clone());
        config.peer = peer;
        // What this device wrote leaves before what it relays: on a thin
        // link the officer's own reports go first.
        config.own = Some(self.enrollment.identity.author);
        // The largest batch the protocol allows: one durable commit (one
        // fsync) per 1,024 entries instead of per 512.
        config.max_batch_entries = sentinel_sync::message::MAX_BATCH_ENTRIES;
        Session::new(config)
    }
}

/// The node as the protocol's store: the log commit is the store's; the
/// node also moves its clock past what arrived.
impl SyncStore for Node {
    type Error = StoreError;

    fn heads(&self) -> Result<Heads, StoreError> {
        self.store().heads()
    }

    fn head(&self, author: &AuthorId) -> Result<Option<sentinel_schema::Head>, StoreError> {
        self.store().head(author)
    }

    fn entries_after(
        &self,
        author: &AuthorId,
        after: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        self.store()
            .entries_after(author, after, max_entries, max_bytes)
    }

    fn apply(
        &mut self,
        entries: Vec<VerifiedEntry>,
        now_ms: u64,
    ) -> Result<ApplyReport, StoreError> {
        let report = self.store_mut().apply(entries, now_ms)?;
        self.observe(&report, now_ms);
        Ok(report)
    }

    fn quarantine(&mut self, rejected: Vec<Rejection>, now_ms: u64) -> Result<(), StoreError> {
        self.store_mut().quarantine(rejected, now_ms)
    }

    fn certificate(&self, author: &AuthorId) -> Result<Option<Vec<u8>>, StoreError> {
        self.store().certificate(author)
    }

    fn add_certificates(
        &mut self,
        certificates: Vec<(AuthorId, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        self.store_mut().add_certificates(certificates)
    }

    fn revocation_list(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.store().revocation_list()
    }

    fn set_revocation_list(&mut self, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.store_mut().set_revocation_list(bytes)
    }

    fn attestations(&self) -> Result<Vec<sentinel_sync::Attestation>, StoreError> {
        self.store().attestations()
    }
}

/// One-shot sync with a peer: connect, exchange until both are caught up,
/// close. `progress` sees every session event. A peer that ends the
/// session before both are caught up, with a code other than `normal`
/// (a limit, a role it refuses, a fault), is an error naming its reason.
pub async fn sync_once(
    node: Arc<Mutex<Node>>,
    net: &Net,
    peer: SocketAddr,
    progress: impl FnMut(&SessionEvent),
) -> Result<Summary, NodeError> {
    sync_as(node, net, peer, &peer.to_string(), progress).await
}

/// [`sync_once`], recording the link under `address` (the peer as it was
/// configured or given, `HOST:PORT`): the outcome by the peer's key once
/// its certificate verified, else by `address`.
pub async fn sync_as(
    node: Arc<Mutex<Node>>,
    net: &Net,
    peer: SocketAddr,
    address: &str,
    progress: impl FnMut(&SessionEvent),
) -> Result<Summary, NodeError> {
    let mut who = None;
    let result = dial(node.clone(), net, peer, &mut who, progress).await;
    let (caught_up, error, sent, received) = match &result {
        Ok(s) if s.caught_up => (true, None, s.sent, s.received),
        Ok(s) => (false, Some(s.closed.clone()), s.sent, s.received),
        Err(e) => (false, Some(e.to_string()), 0, 0),
    };
    record(
        &node,
        SessionRecord {
            peer: who.as_ref().map(link_peer),
            address: address.to_owned(),
            direction: Direction::Dialled,
            at_ms: now_ms(),
            caught_up,
            error,
            sent,
            received,
        },
    );
    result
}

/// The session [`sync_as`] runs; `who` is the peer once its certificate
/// verified.
async fn dial(
    node: Arc<Mutex<Node>>,
    net: &Net,
    peer: SocketAddr,
    who_out: &mut Option<sentinel_certs::Identity>,
    mut progress: impl FnMut(&SessionEvent),
) -> Result<Summary, NodeError> {
    let endpoint = client_endpoint_for(net, peer)?;
    let conn = quic::connect(&endpoint, peer).await.map_err(net_err)?;
    let who = quic::identity_of(&conn, &net.enrollment.ca).map_err(net_err)?;
    *who_out = Some(who.clone());
    let mut tally = Tally::new(Some(&who));
    let ca = net.enrollment.ca.clone();
    let pace = net.pace();
    let outcome = quic::drive_with(
        &conn,
        Side::Initiator,
        net.session(Some(who.author)),
        node.clone(),
        Until::CaughtUp,
        None,
        quic::DriveOptions {
            pace: pace.clone(),
            ..Default::default()
        },
        |e| on_event(&node, &net.revocations, &ca, &mut tally, e, &mut progress),
    )
    .await
    .map_err(net_err)?;
    endpoint.wait_idle().await;
    if let Ok(mut n) = node.lock() {
        n.catch_up_views()?;
    }
    // The peer ended the session before both sides caught up, and said
    // why (a limit it is at, a role it refuses, a fault): not a sync.
    if outcome.remote && !outcome.caught_up && outcome.code != CloseCode::Normal {
        return Err(NodeError::Net(format!(
            "{peer} ({}) ended the session before it caught up: {:?}: {}",
            who.name, outcome.code, outcome.reason
        )));
    }
    // A peer whose certificate is a sensor's gets no media connection: it
    // would be served blobs as well as asked for them.
    let media = if quic_media::may_exchange_media(who.role) {
        crate::net_media::exchange_media(&node, &net.client, &endpoint, peer, pace).await
    } else {
        MediaSummary::default()
    };
    endpoint.wait_idle().await;
    Ok(Summary {
        media,
        ..summary(peer, who.name, &outcome, tally)
    })
}

/// An endpoint to dial `peer` from (an unspecified address of its family).
pub(crate) fn client_endpoint_for(
    net: &Net,
    peer: SocketAddr,
) -> Result<quinn::Endpoint, NodeError> {
    quic::client_endpoint(bind_for(peer), net.client.clone()).map_err(net_err)
}

/// Binds the sync port (`0` picks a free one; see `Endpoint::local_addr`).
/// Its stateless-reset key comes from the device key: peers still talking
/// to this node's previous process learn at their next packet that it
/// restarted, and reconnect at once.
pub fn listen(net: &Net, addr: SocketAddr) -> Result<quinn::Endpoint, NodeError> {
    let server = crate::net_media::server_config(&net.server);
    let secret = quic::reset_secret(&net.enrollment.key.to_bytes());
    quic::server_endpoint_keyed(addr, server, net.client.clone(), &secret).map_err(net_err)
}

/// How often `serve` looks for entries that arrived in the log from
/// elsewhere (other `sentinel-node` commands, other peers).
const POLL_LOG: std::time::Duration = std::time::Duration::from_millis(500);

/// The newest log position, as a change signal for live sessions.
fn log_position(node: &Arc<Mutex<Node>>) -> i64 {
    node.lock()
        .ok()
        .and_then(|n| n.store().log_position().ok())
        .unwrap_or(0)
}

/// The log's position, as a signal for live sessions: changes whenever
/// entries reach the log from elsewhere (other `sentinel-node` commands,
/// other peers). A task polls it every [`POLL_LOG`] (and keeps the views
/// caught up) until every receiver is gone.
pub fn log_signal(node: &Arc<Mutex<Node>>) -> watch::Receiver<u64> {
    let (signal, local) = watch::channel(log_position(node) as u64);
    let poller = node.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(POLL_LOG).await;
            let pos = log_position(&poller) as u64;
            // Views never lag the log by more than a poll (sessions skip
            // projecting batches that arrive within VIEWS_EVERY of
            // another), except behind a backlog, which goes a bounded
            // step per poll so sessions keep the node in turn.
            if let Ok(mut n) = poller.lock() {
                let _ = n.catch_up_views_within(crate::net_session::VIEWS_STEP);
            }
            signal.send_if_modified(|last| {
                let changed = *last != pos;
                *last = pos;
                changed
            });
            if signal.is_closed() {
                return;
            }
        }
    });
    local
}

/// [`serve_with`] a field node's default limits ([`Limits::NODE`]).
pub async fn serve(
    node: Arc<Mutex<Node>>,
    net: Arc<Net>,
    endpoint: quinn::Endpoint,
    report: impl Fn(Summary) + Send + Sync + 'static,
) -> Result<(), NodeError> {
    serve_with(node, net, endpoint, Limits::NODE, report).await
}

/// Accepts peers on `listen` until the process ends. Each session stays
/// live after catching up and pushes whatever reaches the log later —
/// written by the officer with another command, or received from another
/// peer (so a serving node relays between peers that never meet).
///
/// Every connection passes the [`Gate`] first (`docs/security.md` 1.11):
/// a QUIC Retry before anything is spent on an address, at most
/// `limits.max_per_address` connections per address, a handshake
/// deadline, and a slot (of `limits.max_sessions`, at most
/// `limits.max_per_peer` per certificate key) only once the certificate
/// is verified. A sensor's certificate gets no media connection.
pub async fn serve_with(
    node: Arc<Mutex<Node>>,
    net: Arc<Net>,
    endpoint: quinn::Endpoint,
    limits: Limits,
    report: impl Fn(Summary) + Send + Sync + 'static,
) -> Result<(), NodeError> {
    let local = log_signal(&node);
    serve_signalled(node, net, endpoint, limits, local, report).await
}

/// [`serve_with`], its live sessions woken by `local` ([`log_signal`]),
/// which `serve`'s background sync shares: one poller of the log, not
/// one per user of it.
pub async fn serve_signalled(
    node: Arc<Mutex<Node>>,
    net: Arc<Net>,
    endpoint: quinn::Endpoint,
    limits: Limits,
    local: watch::Receiver<u64>,
    report: impl Fn(Summary) + Send + Sync + 'static,
) -> Result<(), NodeError> {
    let gate = Gate::new(limits);
    let report = Arc::new(report);
    while let Some(incoming) = endpoint.accept().await {
        let peer = incoming.remote_address();
        let pending = match gate.screen(incoming) {
            Screened::Retried => continue,
            Screened::Refused(why) => {
                tracing_refusal(peer, &why.to_string());
                continue;
            }
            Screened::Handshake(pending) => pending,
        };
        let node = node.clone();
        let net = net.clone();
        let local = local.clone();
        let report = report.clone();
        tokio::spawn(async move {
            // Refused handshakes (unknown CA, revoked, expired, too slow)
            // and peers over a limit end here.
            let admitted = match pending.handshake(&net.enrollment.ca).await {
                Ok(admitted) => admitted,
                Err(why) => {
                    tracing_refusal(peer, &why.to_string());
                    return;
                }
            };
            let conn = &admitted.conn;
            let who = &admitted.identity;
            if quic_media::is_media_connection(conn) {
                if quic_media::refuse_media(conn, who.role) {
                    tracing_refusal(peer, &format!("media: refused to a {}", who.role));
                    return;
                }
                let media = crate::net_media::serve_media(&node, conn).await;
                if let Some(error) = &media.error {
                    tracing_refusal(peer, &format!("media: {error}"));
                }
                for failed in &media.failed {
                    tracing_refusal(
                        peer,
                        &format!("media: blob {}: {}", failed.hash, failed.reason),
                    );
                }
                return;
            }
            let name = who.name.clone();
            let ca = net.enrollment.ca.clone();
            let mut tally = Tally::new(Some(who))
                .with_sensor(&node, Some(who))
                .accepted(who, peer);
            let outcome = quic::drive(
                conn,
                Side::Acceptor,
                net.session(Some(who.author)),
                node.clone(),
                Until::Closed,
                Some(local),
                |e| on_event(&node, &net.revocations, &ca, &mut tally, e, &mut |_| {}),
            )
            .await;
            let ended = |caught_up, error, tally: &Tally| SessionRecord {
                peer: Some(link_peer(who)),
                address: peer.to_string(),
                direction: Direction::Accepted,
                at_ms: now_ms(),
                caught_up,
                error,
                sent: tally.sent,
                received: tally.received,
            };
            match outcome {
                Ok(o) => {
                    let error = (o.code != CloseCode::Normal)
                        .then(|| format!("{:?}: {}", o.code, o.reason));
                    record(&node, ended(o.caught_up, error, &tally));
                    report(summary(peer, name, &o, tally))
                }
                Err(e) => {
                    record(&node, ended(false, Some(e.to_string()), &tally));
                    tracing_refusal(peer, &e.to_string())
                }
            }
        });
    }
    Ok(())
}

fn tracing_refusal(peer: SocketAddr, reason: &str) {
    eprintln!("peer {peer}: {reason}");
}

pub(crate) fn net_err(e: quic::DriverError) -> NodeError {
    NodeError::Net(e.to_string())
}

/// `HOST:PORT` (or `HOST`, on [`DEFAULT_PORT`]) as a socket address.
pub async fn resolve(peer: &str) -> Result<SocketAddr, NodeError> {
    let with_port = if peer.contains(':') {
        peer.to_owned()
    } else {
        format!("{peer}:{DEFAULT_PORT}")
    };
    let mut found = tokio::net::lookup_host(with_port)
        .await
        .map_err(|e| NodeError::Net(format!("cannot resolve {peer:?}: {e}")))?;
    found
        .next()
        .ok_or_else(|| NodeError::Net(format!("no address for {peer:?}")))
}

/// The socket address a `serve` dials from for `peer`'s family.
fn bind_for(peer: SocketAddr) -> SocketAddr {
    if peer.is_ipv6() {
        SocketAddr::from(([0u16; 8], 0))
    } else {
        SocketAddr::from(([0u8; 4], 0))
    }
}
