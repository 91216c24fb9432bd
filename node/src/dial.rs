//! The peers this node dials itself: the hubs and peers `serve --peer`
//! (or `SENTINEL_PEERS`) names, synced with one after another on request
//! ("sync now", `POST /api/v1/sync`). One round at a time: a second
//! request while one runs is refused, not queued.
//!
//! Each attempt's outcome lands in the links table through
//! [`crate::net::sync_as`] (by the peer's key once its certificate
//! verified); an address that does not resolve, or a session past its
//! deadline ([`ROUND_DEADLINE`] by default), is recorded here by the
//! address configured.
//!
//! With background sync on (`serve`'s default when it has peers,
//! [`Dialer::start_background`]), the same peers are kept in sync by
//! `crate::background`'s supervisors instead, and "sync now" ends their
//! waits rather than starting a second session beside theirs.
//!
//! Never does: accept connections (`crate::net::serve_with` does), or
//! decide who may ask for a round (the HTTP API checks the caller).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::background::{Background, Backoff, PeerLink};
use crate::clock::now_ms;
use crate::net::{self, resolve, Net, Summary};
use crate::node::{Node, NodeError};
use crate::store::links::{Direction, SessionRecord};

/// Longest one peer's sync may take in a round before it is abandoned
/// (recorded as an error; what was committed stays), by default. A peer
/// that is down fails sooner, when its QUIC handshake times out.
pub const ROUND_DEADLINE: Duration = Duration::from_secs(600);

/// Why a round did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    #[error(
        "no peer to sync with is configured: start serve with --peer HOST:PORT (or SENTINEL_PEERS)"
    )]
    NoPeers,
    #[error("a sync with the configured peers is running already")]
    Running,
}

/// The configured peers and whether a round is running; cheap to clone
/// (clones share the one round).
#[derive(Clone)]
pub struct Dialer {
    node: Arc<Mutex<Node>>,
    net: Arc<Net>,
    peers: Arc<Vec<String>>,
    running: Arc<AtomicBool>,
    deadline: Duration,
    /// Background sync's supervisors, once started.
    background: Arc<OnceLock<Background>>,
}

/// Clears the running flag when a round ends, however it ends.
struct Round(Arc<AtomicBool>);

impl Drop for Round {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// What one configured peer came to in a round.
pub type Attempt = (String, Result<Summary, NodeError>);

impl Dialer {
    /// Dials `peers` (`HOST:PORT`, or `HOST` for the default port) with
    /// `net`'s identity.
    pub fn new(node: Arc<Mutex<Node>>, net: Arc<Net>, peers: Vec<String>) -> Dialer {
        Dialer {
            node,
            net,
            peers: Arc::new(peers),
            running: Arc::new(AtomicBool::new(false)),
            deadline: ROUND_DEADLINE,
            background: Arc::new(OnceLock::new()),
        }
    }

    /// Abandons one peer's sync after `deadline` rather than
    /// [`ROUND_DEADLINE`].
    pub fn with_deadline(self, deadline: Duration) -> Dialer {
        Dialer { deadline, ..self }
    }

    /// The peers as configured.
    pub fn configured(&self) -> &[String] {
        &self.peers
    }

    /// Whether a round is running now.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Starts background sync with the configured peers (on the current
    /// Tokio runtime; once — later calls change nothing): from now on
    /// "sync now" wakes its supervisors. `local` is the log's signal
    /// ([`net::log_signal`], shared with `serve`'s sessions); `report`
    /// sees each session's end.
    pub fn start_background(
        &self,
        backoff: Backoff,
        local: tokio::sync::watch::Receiver<u64>,
        report: impl Fn(&str, &Result<Summary, NodeError>) + Send + Sync + 'static,
    ) {
        if self.peers.is_empty() || self.background.get().is_some() {
            return;
        }
        let started = Background::start(
            self.node.clone(),
            self.net.clone(),
            &self.peers,
            backoff,
            local,
            report,
        );
        let _ = self.background.set(started);
    }

    /// Background sync's links, in the order configured; `None` when it
    /// is off.
    pub fn background(&self) -> Option<Vec<PeerLink>> {
        self.background.get().map(Background::links)
    }

    /// Marks background links `off` in the store (`serve` stopping).
    pub fn stop_background(&self) {
        if let Some(b) = self.background.get() {
            b.stop(&self.node);
        }
    }

    fn begin(&self) -> Result<Round, DialError> {
        if self.peers.is_empty() {
            return Err(DialError::NoPeers);
        }
        if self.running.swap(true, Ordering::SeqCst) {
            return Err(DialError::Running);
        }
        Ok(Round(self.running.clone()))
    }

    /// Starts a round in the background (on the current Tokio runtime);
    /// the peers it dials. With background sync on, ends its waits
    /// instead: every link not live tries now.
    pub fn start(&self) -> Result<Vec<String>, DialError> {
        if let Some(background) = self.background.get() {
            background.wake();
            return Ok(self.peers.to_vec());
        }
        let round = self.begin()?;
        let this = self.clone();
        tokio::spawn(async move {
            let _round = round;
            for (peer, result) in this.dial_all().await {
                match result {
                    Ok(s) => tracing::info!(
                        "sync now: {peer} ({}): sent {}, received {}, applied {}",
                        s.peer_name,
                        s.sent,
                        s.received,
                        s.applied
                    ),
                    Err(e) => tracing::warn!("sync now: {peer}: {e}"),
                }
            }
        });
        Ok(self.peers.to_vec())
    }

    /// One round, waited for: every configured peer in turn.
    pub async fn round(&self) -> Result<Vec<Attempt>, DialError> {
        let _round = self.begin()?;
        Ok(self.dial_all().await)
    }

    async fn dial_all(&self) -> Vec<Attempt> {
        let mut out = Vec::new();
        for peer in self.peers.iter() {
            let result = self.dial(peer).await;
            out.push((peer.clone(), result));
        }
        out
    }

    async fn dial(&self, peer: &str) -> Result<Summary, NodeError> {
        let failed = |error: &NodeError| SessionRecord {
            peer: None,
            address: peer.to_owned(),
            direction: Direction::Dialled,
            at_ms: now_ms(),
            caught_up: false,
            error: Some(error.to_string()),
            sent: 0,
            received: 0,
        };
        let addr = match resolve(peer).await {
            Ok(addr) => addr,
            Err(e) => {
                net::record(&self.node, failed(&e));
                return Err(e);
            }
        };
        let session = net::sync_as(self.node.clone(), &self.net, addr, peer, |_| {});
        match tokio::time::timeout(self.deadline, session).await {
            Ok(result) => result,
            Err(_) => {
                let e = NodeError::Net(format!(
                    "{peer}: no answer or no end within {} ms; abandoned",
                    self.deadline.as_millis()
                ));
                net::record(&self.node, failed(&e));
                Err(e)
            }
        }
    }
}
