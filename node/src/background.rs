//! Background sync: `serve` keeps a session with each configured hub and
//! peer whenever it is reachable, so the outbox drains without anyone
//! acting (issue #19, `docs/operations.md` "Links that come and go").
//!
//! One supervisor task per configured peer loops: resolve the address,
//! connect (QUIC, mutual TLS), run the sync session and **stay in it**
//! once both sides are caught up — new entries are pushed as they are
//! written, the peer's arrive as it writes or relays them — and when the
//! session ends or the attempt fails, wait ([`Backoff`]: exponential with
//! jitter) and try again. A session resumes from committed heads (the
//! protocol starts with heads), so an interrupted one costs at most the
//! batch that was not yet acknowledged. A link that was live and broke
//! retries after the shortest delay: a peer that restarted is found
//! again at once. "Sync now" ([`Background::wake`]) ends every wait.
//!
//! Media follows entries: each time a session catches up, one media
//! exchange with that peer runs on its own connection (never two at once
//! per link), so photos never hold back the entries of a thin link.
//!
//! Each link's state (connecting, syncing, live, waiting, off), its last
//! success, last error and next try are kept in memory for the API and
//! written to the store (`crate::store::link_state`) on every change, for
//! `stats` and after a restart; every session's outcome also lands in the
//! links table by the peer's key (`crate::store::links`), as one-shot
//! syncs do.
//!
//! Never does: accept connections (`crate::net::serve_with`), judge an
//! entry (the session does), or choose its peers (`serve`'s configuration
//! does).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand_core::RngCore;
use sentinel_sync::message::CloseCode;
use sentinel_sync::quic::{self, Side, Until};
use sentinel_sync::{quic_media, SessionEvent};
use tokio::sync::{watch, Notify};

use crate::clock::now_ms;
use crate::net::{self, Net, Summary};
use crate::net_session::{link_peer, on_event, record, summary, Tally};
use crate::node::{Node, NodeError};
use crate::store::link_state::{LinkState, LinkStatus};
use crate::store::links::{Direction, SessionRecord};

/// How long to wait before the next attempt: `first`, doubling with each
/// failure in a row up to `max`, with "equal jitter" (between half and
/// all of it), so that many devices cut off together do not all return
/// in the same second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The wait after `failures` failed attempts in a row (0: right after
    /// a live session broke), with `jitter` drawn uniformly from
    /// `0..=u32::MAX`. Pure: the caller draws the randomness.
    pub fn delay(&self, failures: u32, jitter: u32) -> Duration {
        let full = self
            .first
            .saturating_mul(1 << failures.min(31))
            .min(self.max);
        let half = full / 2;
        let spread = (full - half).as_millis() as u64;
        let extra = spread.saturating_mul(u64::from(jitter)) / u64::from(u32::MAX);
        half + Duration::from_millis(extra)
    }
}

/// One configured peer's link, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PeerLink {
    #[serde(flatten)]
    pub status: LinkStatus,
    /// Attempts made since `serve` started (successful or not).
    pub attempts: u64,
    /// Entries the peer acknowledged, and entries received, in the
    /// current (or last) session.
    pub sent: u64,
    pub received: u64,
    /// What the current session has left to send and to receive, as the
    /// heads exchange planned it (an estimate), and the time that takes at
    /// the recent rate, in ms (`null` until a rate is known).
    pub to_send: u64,
    pub to_receive: u64,
    pub eta_ms: Option<u64>,
}

/// The background links of one `serve`; cheap to clone.
#[derive(Clone)]
pub struct Background {
    links: Arc<Mutex<Vec<PeerLink>>>,
    wake: Arc<Vec<Notify>>,
}

/// Everything a link's supervisor shares with the others.
struct Shared {
    node: Arc<Mutex<Node>>,
    net: Arc<Net>,
    backoff: Backoff,
    links: Arc<Mutex<Vec<PeerLink>>>,
    local: watch::Receiver<u64>,
}

impl Background {
    /// Starts one supervisor per peer (on the current Tokio runtime).
    /// `local` signals new entries in the log (as `serve`'s sessions get
    /// it); `report` sees every session's summary when it ends.
    pub fn start(
        node: Arc<Mutex<Node>>,
        net: Arc<Net>,
        peers: &[String],
        backoff: Backoff,
        local: watch::Receiver<u64>,
        report: impl Fn(&str, &Result<Summary, NodeError>) + Send + Sync + 'static,
    ) -> Background {
        let now = now_ms();
        if let Ok(mut n) = node.lock() {
            if let Err(e) = n.store_mut().reset_link_states(peers, now) {
                tracing::warn!("background sync: resetting link states: {e}");
            }
        }
        let links: Vec<PeerLink> = peers
            .iter()
            .map(|address| PeerLink {
                status: LinkStatus {
                    address: address.clone(),
                    state: LinkState::Connecting,
                    peer: None,
                    name: None,
                    updated_ms: now,
                    last_success_ms: None,
                    last_error: None,
                    next_try_ms: None,
                    failures: 0,
                },
                attempts: 0,
                sent: 0,
                received: 0,
                to_send: 0,
                to_receive: 0,
                eta_ms: None,
            })
            .collect();
        let background = Background {
            links: Arc::new(Mutex::new(links)),
            wake: Arc::new(peers.iter().map(|_| Notify::new()).collect()),
        };
        let shared = Arc::new(Shared {
            node,
            net,
            backoff,
            links: background.links.clone(),
            local,
        });
        let report = Arc::new(report);
        for (i, address) in peers.iter().enumerate() {
            let shared = shared.clone();
            let wake = background.wake.clone();
            let address = address.clone();
            let report = report.clone();
            tokio::spawn(async move {
                supervise(&shared, i, &address, &wake[i], &*report).await;
            });
        }
        background
    }

    /// Every link, in the order configured.
    pub fn links(&self) -> Vec<PeerLink> {
        self.links.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Ends every wait: links waiting to retry try now; live ones are
    /// syncing already.
    pub fn wake(&self) {
        for n in self.wake.iter() {
            n.notify_one();
        }
    }

    /// Marks every link `off` in the store (`serve` stopping).
    pub fn stop(&self, node: &Arc<Mutex<Node>>) {
        let now = now_ms();
        let links = self.links();
        if let Ok(mut n) = node.lock() {
            for mut link in links {
                link.status.state = LinkState::Off;
                link.status.next_try_ms = None;
                link.status.updated_ms = now;
                let _ = n.store_mut().set_link_status(&link.status);
            }
        }
    }
}

impl Shared {
    /// Changes link `i` and writes its new state to the store.
    fn update(&self, i: usize, change: impl FnOnce(&mut PeerLink)) {
        let status = {
            let Ok(mut links) = self.links.lock() else {
                return;
            };
            let Some(link) = links.get_mut(i) else {
                return;
            };
            let before = link.status.clone();
            change(link);
            if link.status == before {
                return;
            }
            link.status.updated_ms = now_ms();
            link.status.clone()
        };
        if let Ok(mut n) = self.node.lock() {
            if let Err(e) = n.store_mut().set_link_status(&status) {
                tracing::warn!("background sync: writing {}'s state: {e}", status.address);
            }
        }
    }

    /// A live session moved entries and is caught up again: the last
    /// success is now (memory only, like [`Shared::progress`]; the store
    /// has it at the next change of state).
    fn touch(&self, i: usize, now: u64) {
        if let Ok(mut links) = self.links.lock() {
            if let Some(link) = links.get_mut(i) {
                link.status.last_success_ms = Some(now);
            }
        }
    }

    /// What is left of the current session's catch-up (memory only).
    fn remaining(&self, i: usize, to_send: u64, to_receive: u64, eta_ms: Option<u64>) {
        if let Ok(mut links) = self.links.lock() {
            if let Some(link) = links.get_mut(i) {
                (link.to_send, link.to_receive, link.eta_ms) = (to_send, to_receive, eta_ms);
            }
        }
    }

    /// Counts moved in the current session (memory only: they change with
    /// every batch).
    fn progress(&self, i: usize, sent: u64, received: u64) {
        if let Ok(mut links) = self.links.lock() {
            if let Some(link) = links.get_mut(i) {
                (link.sent, link.received) = (sent, received);
            }
        }
    }
}

/// Draws the jitter for [`Backoff::delay`].
fn jitter() -> u32 {
    rand_core::OsRng.next_u32()
}

/// The loop of one link: attempt, and after each attempt wait.
async fn supervise(
    shared: &Shared,
    i: usize,
    address: &str,
    wake: &Notify,
    report: &(dyn Fn(&str, &Result<Summary, NodeError>) + Send + Sync),
) {
    // The link's cap, shared by its sessions and their media, kept across
    // attempts.
    let pace = shared.net.pace();
    loop {
        shared.update(i, |l| {
            l.status.state = LinkState::Connecting;
            l.status.next_try_ms = None;
            l.attempts += 1;
            (l.sent, l.received) = (0, 0);
            (l.to_send, l.to_receive, l.eta_ms) = (0, 0, None);
        });
        let was_live = Arc::new(AtomicBool::new(false));
        let result = attempt(shared, i, address, was_live.clone(), pace.clone()).await;
        report(address, &result);
        let live = was_live.load(Ordering::SeqCst);
        let error = match &result {
            Ok(s) => format!("the session ended: {}", s.closed),
            Err(e) => e.to_string(),
        };
        let mut failures = 0;
        shared.update(i, |l| {
            // A live session that broke is retried at the shortest delay:
            // the peer may only have restarted.
            if !live {
                l.status.failures = l.status.failures.saturating_add(1);
            }
            failures = l.status.failures;
            l.status.last_error = Some(error.clone());
        });
        let delay = shared.backoff.delay(failures, jitter());
        let next = now_ms().saturating_add(delay.as_millis() as u64);
        shared.update(i, |l| {
            l.status.state = LinkState::Waiting;
            l.status.next_try_ms = Some(next);
        });
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = wake.notified() => {}
        }
    }
}

/// One attempt: connect, then one session, live until it ends. `live` is
/// set once it caught up.
async fn attempt(
    shared: &Shared,
    i: usize,
    address: &str,
    live: Arc<AtomicBool>,
    pace: Option<sentinel_sync::Pace>,
) -> Result<Summary, NodeError> {
    let node = &shared.node;
    let net = &shared.net;
    let failed = |error: &NodeError| SessionRecord {
        peer: None,
        address: address.to_owned(),
        direction: Direction::Dialled,
        at_ms: now_ms(),
        caught_up: false,
        error: Some(error.to_string()),
        sent: 0,
        received: 0,
    };
    let connected = async {
        let peer = net::resolve(address).await?;
        let endpoint = net::client_endpoint_for(net, peer)?;
        let conn = quic::connect(&endpoint, peer).await.map_err(net::net_err)?;
        let who = quic::identity_of(&conn, &net.enrollment.ca).map_err(net::net_err)?;
        Ok::<_, NodeError>((peer, endpoint, conn, who))
    };
    let (peer, endpoint, conn, who) = match connected.await {
        Ok(c) => c,
        Err(e) => {
            record(node, failed(&e));
            return Err(e);
        }
    };
    shared.update(i, |l| {
        l.status.state = LinkState::Syncing;
        l.status.peer = Some(who.author.to_hex());
        l.status.name = Some(who.name.clone());
    });
    let mut tally = Tally::new(Some(&who));
    let ca = net.enrollment.ca.clone();
    let media_busy = Arc::new(AtomicBool::new(false));
    let may_media = quic_media::may_exchange_media(who.role);
    let mut caught_up_once = false;
    let started = std::time::Instant::now();
    let mut eta = sentinel_sync::Eta::new();
    let mut done = 0;
    let media_pace = pace.clone();
    let mut progress = |e: &SessionEvent| match e {
        SessionEvent::Progress { sent, received, .. } => {
            done = sent + received;
            shared.progress(i, *sent, *received)
        }
        SessionEvent::Remaining {
            to_send,
            to_receive,
            ..
        } => {
            let total = done + to_send + to_receive;
            let est = eta.sample(done, total, started.elapsed().as_millis() as u64);
            shared.remaining(i, *to_send, *to_receive, est.remaining_ms);
        }
        // Live: the peer acknowledged what was pushed, or pushed its own.
        SessionEvent::Acknowledged { .. } | SessionEvent::Applied { .. }
            if live.load(Ordering::SeqCst) =>
        {
            shared.touch(i, now_ms())
        }
        SessionEvent::CaughtUp => {
            live.store(true, Ordering::SeqCst);
            let now = now_ms();
            shared.update(i, |l| {
                l.status.state = LinkState::Live;
                l.status.last_success_ms = Some(now);
                l.status.last_error = None;
                l.status.failures = 0;
            });
            if !caught_up_once {
                caught_up_once = true;
                let (sent, received) = shared
                    .links
                    .lock()
                    .ok()
                    .and_then(|l| l.get(i).map(|l| (l.sent, l.received)))
                    .unwrap_or_default();
                record(
                    node,
                    SessionRecord {
                        peer: Some(link_peer(&who)),
                        address: address.to_owned(),
                        direction: Direction::Dialled,
                        at_ms: now,
                        caught_up: true,
                        error: None,
                        sent,
                        received,
                    },
                );
            }
            // Entries first, then media: one exchange at a time per link.
            if may_media && !media_busy.swap(true, Ordering::SeqCst) {
                let (node, client, endpoint) = (node.clone(), net.client.clone(), endpoint.clone());
                let busy = media_busy.clone();
                let pace = media_pace.clone();
                tokio::spawn(async move {
                    let m = crate::net_media::exchange_media(&node, &client, &endpoint, peer, pace)
                        .await;
                    if let Some(e) = &m.error {
                        tracing::warn!("background sync: media with {peer}: {e}");
                    }
                    busy.store(false, Ordering::SeqCst);
                });
            }
        }
        _ => {}
    };
    let outcome = quic::drive_with(
        &conn,
        Side::Initiator,
        net.session(Some(who.author)),
        node.clone(),
        Until::Closed,
        Some(shared.local.clone()),
        quic::DriveOptions {
            pace,
            ..Default::default()
        },
        |e| on_event(node, &net.revocations, &ca, &mut tally, e, &mut progress),
    )
    .await;
    // A bounded step (the log's poller of `serve` projects the rest):
    // other sessions wait for the node meanwhile.
    if let Ok(mut n) = node.lock() {
        let _ = n.catch_up_views_within(crate::net_session::VIEWS_STEP);
    }
    let ended = |caught_up: bool, error: Option<String>, tally: &Tally| SessionRecord {
        peer: Some(link_peer(&who)),
        address: address.to_owned(),
        direction: Direction::Dialled,
        at_ms: now_ms(),
        caught_up,
        error,
        sent: tally.sent,
        received: tally.received,
    };
    match outcome {
        Ok(o) => {
            let error =
                (o.code != CloseCode::Normal).then(|| format!("{:?}: {}", o.code, o.reason));
            record(node, ended(o.caught_up, error, &tally));
            Ok(summary(peer, who.name.clone(), &o, tally))
        }
        Err(e) => {
            let e = net::net_err(e);
            record(node, ended(false, Some(e.to_string()), &tally));
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_with_equal_jitter() {
        let b = Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
        };
        // Without jitter: half the full delay; with the most: all of it.
        assert_eq!(b.delay(0, 0), Duration::from_millis(500));
        assert_eq!(b.delay(0, u32::MAX), Duration::from_secs(1));
        assert_eq!(b.delay(1, u32::MAX), Duration::from_secs(2));
        assert_eq!(b.delay(3, u32::MAX), Duration::from_secs(8));
        assert_eq!(b.delay(6, u32::MAX), Duration::from_secs(60));
        assert_eq!(b.delay(6, 0), Duration::from_secs(30));
        // Far past the cap, and past the shift width: still the cap.
        assert_eq!(b.delay(40, u32::MAX), Duration::from_secs(60));
        assert_eq!(b.delay(u32::MAX, u32::MAX), Duration::from_secs(60));
        // Jitter spreads within [half, full].
        let mid = b.delay(2, u32::MAX / 2);
        assert!(
            mid > Duration::from_secs(2) && mid < Duration::from_secs(4),
            "{mid:?}"
        );
    }

    #[test]
    fn a_cap_below_the_first_delay_wins() {
        let b = Backoff {
            first: Duration::from_secs(10),
            max: Duration::from_secs(2),
        };
        assert_eq!(b.delay(0, u32::MAX), Duration::from_secs(2));
        assert_eq!(b.delay(5, u32::MAX), Duration::from_secs(2));
    }
}
