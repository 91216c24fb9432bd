//! What every sync session does with what it produces, dialled or
//! accepted: views after applied batches, revocation lists and entries
//! into the TLS verifiers, hub receipts, checkpoint breaches, sensor rules
//! on a sensor peer's readings, and the session's link (`crate::store::links`);
//! and the [`Summary`] people read afterwards.
//!
//! Never does: open or accept connections (`crate::net` does), or decide
//! whom to sync with (`crate::dial`, the CLI).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use sentinel_certs::{CaCert, RevocationHandle};
use sentinel_schema::{AuthorId, DeviceRole, SignedEntry};
use sentinel_sync::quic::Outcome;
use sentinel_sync::{SessionEvent, SyncStore};

use crate::clock::now_ms;
use crate::net_media::MediaSummary;
use crate::node::Node;
use crate::store::links::{Direction, LinkPeer, SessionRecord};

/// What one session moved, for people.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub peer: String,
    pub peer_name: String,
    pub sent: u64,
    pub received: u64,
    pub applied: u64,
    pub quarantined: u64,
    pub forks: u64,
    /// Contradictions of hub checkpoints found in this session (kept in
    /// the store; `audit verify` lists them).
    pub breaches: Vec<String>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub caught_up: bool,
    pub closed: String,
    /// Media blobs exchanged after the session (`sync` only).
    pub media: MediaSummary,
}

pub(crate) fn summary(peer: SocketAddr, peer_name: String, o: &Outcome, tally: Tally) -> Summary {
    Summary {
        peer: peer.to_string(),
        peer_name,
        sent: o.stats.entries_acked,
        received: o.stats.entries_received,
        applied: o.stats.entries_applied,
        quarantined: o.stats.entries_quarantined,
        forks: tally.forks,
        breaches: tally.breaches,
        bytes_sent: o.stats.bytes_sent,
        bytes_received: o.stats.bytes_received,
        caught_up: o.caught_up,
        closed: format!("{:?}: {}", o.code, o.reason),
        media: Default::default(),
    }
}

/// How far views may fall behind the log during a catch-up: projecting
/// after every batch would add a second durable commit per batch.
const VIEWS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// How long one projection step may hold the node from a session's task
/// (a chunk is always finished; one takes ~0.1 s on a backlog of readings).
pub(crate) const VIEWS_STEP: std::time::Duration = std::time::Duration::from_millis(200);

/// Per-session bookkeeping for [`on_event`].
pub(crate) struct Tally {
    /// Who the peer is, for the breach records.
    peer_name: String,
    /// The peer's author id when its certificate says it is a hub: only a
    /// hub's acknowledgements are receipts.
    hub: Option<AuthorId>,
    forks: u64,
    breaches: Vec<String>,
    views_projected: std::time::Instant,
    /// When the peer is a sensor: its key and the seq up to which its
    /// readings have been through the rules. Only readings taken from
    /// the sensor itself are (`crate::sensors::rules`).
    sensor: Option<(AuthorId, u64)>,
    /// The link this session is recorded as, for a session `serve`
    /// accepted: recorded each time it catches up (it stays live), and
    /// when it ends.
    link: Option<(LinkPeer, String)>,
    /// Entries acknowledged by the peer and received, so far.
    pub(crate) sent: u64,
    pub(crate) received: u64,
}

impl Tally {
    /// For a session with the peer the TLS handshake proved (`None`: its
    /// certificate could not be read, so nothing it says is a receipt).
    pub(crate) fn new(peer: Option<&sentinel_certs::Identity>) -> Self {
        Tally {
            peer_name: peer.map(|p| p.name.clone()).unwrap_or_default(),
            hub: peer.filter(|p| p.role == DeviceRole::Hub).map(|p| p.author),
            forks: 0,
            breaches: Vec::new(),
            views_projected: std::time::Instant::now(),
            sensor: None,
            link: None,
            sent: 0,
            received: 0,
        }
    }

    /// Records this accepted session's link, with the peer at `address`.
    pub(crate) fn accepted(mut self, peer: &sentinel_certs::Identity, address: SocketAddr) -> Self {
        self.link = Some((link_peer(peer), address.to_string()));
        self
    }

    /// Notes that the peer is a sensor whose chain the store holds up to
    /// `head_seq` before the session.
    pub(crate) fn with_sensor(
        mut self,
        node: &Arc<Mutex<Node>>,
        peer: Option<&sentinel_certs::Identity>,
    ) -> Self {
        if let Some(p) = peer.filter(|p| p.role == DeviceRole::Sensor) {
            let head = node
                .lock()
                .ok()
                .and_then(|n| n.store().head(&p.author).ok().flatten())
                .map_or(0, |h| h.seq);
            self.sensor = Some((p.author, head));
        }
        self
    }
}

/// Runs the rules on the readings a sensor peer sent since the last call.
fn raise_from_sensor(node: &Arc<Mutex<Node>>, tally: &mut Tally) {
    let Some((sensor, upto)) = tally.sensor else {
        return;
    };
    let Ok(mut n) = node.lock() else {
        return;
    };
    if !n.has_rules() {
        return;
    }
    let new = match n
        .store()
        .entries_after(&sensor, upto, usize::MAX, usize::MAX)
    {
        Ok(new) => new,
        Err(e) => {
            eprintln!("sensor rules: reading the sensor's entries: {e}");
            return;
        }
    };
    let Some(last) = new.last().map(SignedEntry::seq) else {
        return;
    };
    let raised = n
        .catch_up_views()
        .and_then(|_| n.raise_from_readings(&new, now_ms()));
    if let Err(e) = raised {
        eprintln!("sensor rules: {e}");
    }
    tally.sensor = Some((sensor, last));
}

/// Handles the events every session produces: views after applied
/// batches, revocation lists into the TLS verifiers, receipts, breaches,
/// sensor rules, and an accepted session's link each time it catches up.
pub(crate) fn on_event(
    node: &Arc<Mutex<Node>>,
    net_revocations: &RevocationHandle,
    ca: &CaCert,
    tally: &mut Tally,
    event: &SessionEvent,
    progress: &mut dyn FnMut(&SessionEvent),
) {
    if let SessionEvent::Applied { .. } = event {
        raise_from_sensor(node, tally);
    }
    if let SessionEvent::Progress { sent, received, .. } = event {
        (tally.sent, tally.received) = (*sent, *received);
    }
    if let (SessionEvent::CaughtUp, Some((peer, address))) = (event, &tally.link) {
        record(
            node,
            SessionRecord {
                peer: Some(peer.clone()),
                address: address.clone(),
                direction: Direction::Accepted,
                at_ms: now_ms(),
                caught_up: true,
                error: None,
                sent: tally.sent,
                received: tally.received,
            },
        );
    }
    match event {
        SessionEvent::Applied { .. } if tally.views_projected.elapsed() < VIEWS_EVERY => {}
        SessionEvent::Applied { .. } | SessionEvent::CaughtUp | SessionEvent::Closed { .. } => {
            // A bounded step: this runs on the session's task with the
            // node locked, and a session that stalls for long loses its
            // peer. What is left is projected on later turns, by the
            // log's poller while serving, and in full by `sync` before
            // it returns.
            if let Ok(mut n) = node.lock() {
                let _ = n.catch_up_views_within(VIEWS_STEP);
            }
            tally.views_projected = std::time::Instant::now();
        }
        SessionEvent::RevocationListLearned { .. } => {
            if let Ok(n) = node.lock() {
                if let Ok(Some(bytes)) = n.store().revocation_list() {
                    let _ = net_revocations.offer(&bytes, ca);
                }
            }
        }
        // The session admitted it only from a hub certificate (role check).
        SessionEvent::RevocationEntryApplied { revocation, .. } => {
            net_revocations.add_entry_revocation(revocation.clone());
        }
        SessionEvent::Fork { author, seq } => {
            tally.forks += 1;
            // A fork of the sensor this session talks to: the same alert
            // as a forked push (`crate::sensors`).
            if tally.sensor.is_some_and(|(sensor, _)| sensor == *author) {
                crate::sensors::alert_fork(author, *seq);
            }
        }
        // A receipt needs a hub: `by` is the role the peer's certificate
        // says (the session took it from the driver, never from the
        // Hello), and `tally.hub` the same certificate's key.
        SessionEvent::Acknowledged {
            by: DeviceRole::Hub,
            heads,
        } => {
            if let (Some(hub), Ok(mut n)) = (tally.hub, node.lock()) {
                let recorded =
                    n.store_mut()
                        .record_receipts(hub, &tally.peer_name, heads, now_ms());
                if let Err(e) = recorded {
                    eprintln!("recording a receipt from hub {}: {e}", tally.peer_name);
                }
            }
        }
        SessionEvent::CheckpointBreach(breach) => {
            let now = now_ms();
            if let Ok(mut n) = node.lock() {
                if let Err(e) = n.store_mut().record_breach(breach, &tally.peer_name, now) {
                    eprintln!("recording a checkpoint breach: {e}");
                }
            }
            tally.breaches.push(breach.to_string());
        }
        _ => {}
    }
    progress(event);
}

pub(crate) fn link_peer(who: &sentinel_certs::Identity) -> LinkPeer {
    LinkPeer {
        author: who.author,
        name: who.name.clone(),
        role: who.role,
    }
}

/// Keeps a session's outcome in the links table; a failure to is logged,
/// not fatal (the session's entries are committed either way).
pub(crate) fn record(node: &Arc<Mutex<Node>>, session: SessionRecord) {
    if let Ok(mut n) = node.lock() {
        if let Err(e) = n.store_mut().record_session(&session) {
            eprintln!("recording the link to {}: {e}", session.address);
        }
    }
}
