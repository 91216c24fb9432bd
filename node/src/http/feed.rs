//! The live feed: `GET /api/v1/feed`, Server-Sent Events, as the hub's.
//!
//! Every event whose view changes — an entry this API wrote, one that sync
//! applied from a peer, or one another `sentinel-node` command wrote — is
//! sent to every subscriber as one `event` message carrying the event as
//! `GET /api/v1/events/{id}` shows it to that subscriber's role (redacted
//! for the public; never with history). A subscriber too slow to keep up
//! gets one `lagged` message with how many it missed, and should re-read
//! `/api/v1/events`: the feed is a notification, the API is the truth. A
//! `ping` comment every 15 s keeps proxies from closing quiet streams.
//!
//! **How changes are found.** The feed follows the log, not the code paths
//! that write it: the views record how far they have projected the log
//! (`meta.projected_upto`, committed with the views), so the events of the
//! entries between the last position published and that mark are exactly
//! what changed since — whoever wrote them. The API's own writes wake the
//! follower at once ([`Feed::poke`]); everything else (sync sessions
//! project their batches as they land, `serve` catches the views up twice
//! a second) is seen within [`POLL`]. The follower runs only while someone
//! subscribes.
//!
//! **Who listens.** The caller's token and role are checked when the
//! stream opens and again every [`RECHECK`]; a stream whose token was
//! revoked or expired, or whose role changed, ends (the client reconnects
//! and is checked afresh).

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use sentinel_schema::access::{Action, Scope};
use sentinel_schema::EventId;
use serde_json::json;
use tokio::sync::{broadcast, Notify};

use super::auth::Caller;
use super::events::event_json;
use super::{with_node, ApiState, Problem};
use crate::node::Node;
use crate::store::project::projected_upto;
use crate::store::StoreError;

/// Messages kept for a slow subscriber before it is told it lagged.
pub const FEED_BUFFER: usize = 1024;
/// How often the follower looks for changes it was not told about.
const POLL: Duration = Duration::from_millis(250);
/// How often a subscriber's token and role are checked again.
const RECHECK: Duration = Duration::from_secs(60);
/// Events read per turn of the node's lock, so a large sync batch does
/// not hold the lock (and every request) for the whole publication.
const EVENTS_PER_LOCK: usize = 256;

/// One changed event, as each scope sees it (serialised once, sent to
/// every subscriber).
#[derive(Debug)]
struct Change {
    full: String,
    redacted: String,
}

/// Fans changed events out to every subscriber of one API.
#[derive(Clone, Debug)]
pub struct Feed {
    tx: broadcast::Sender<Arc<Change>>,
    wake: Arc<Notify>,
    /// Whether a follower runs; taken by a new subscriber after it
    /// subscribed, and by the follower before it stops for want of
    /// subscribers, so no subscriber is left without one.
    following: Arc<Mutex<bool>>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed::new()
    }
}

impl Feed {
    pub fn new() -> Feed {
        Feed {
            tx: broadcast::channel(FEED_BUFFER).0,
            wake: Arc::new(Notify::new()),
            following: Arc::new(Mutex::new(false)),
        }
    }

    /// Subscribers connected now.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Tells the follower the log moved (the API's own writes), so their
    /// changes go out now rather than at the next poll.
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    fn following(&self) -> std::sync::MutexGuard<'_, bool> {
        // The flag is one bool: a panic elsewhere cannot leave it torn.
        self.following
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the follower from log position `from`, unless one runs.
    fn follow_from(&self, state: &ApiState, from: i64) {
        let mut running = self.following();
        if *running {
            return;
        }
        *running = true;
        tokio::spawn(follow(state.clone(), from));
    }
}

/// Publishes the changes after `last` until nobody subscribes.
async fn follow(state: ApiState, mut last: i64) {
    let feed = state.feed.clone();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = feed.wake.notified() => {}
            _ = tick.tick() => {}
        }
        {
            let mut running = feed.following();
            if feed.tx.receiver_count() == 0 {
                *running = false;
                return;
            }
        }
        match publish_after(&state, last).await {
            Ok(upto) => last = upto,
            // The store did not answer; try again at the next poll.
            Err(e) => tracing::warn!("the live feed cannot read the node: {}", e.detail),
        }
    }
}

/// Sends every event changed by the entries after `last` that the views
/// have projected; returns the position published up to.
async fn publish_after(state: &ApiState, last: i64) -> Result<i64, Problem> {
    let (upto, events) = with_node(state, move |node| {
        let upto = projected_upto(node.store().conn())?;
        Ok((upto, changed_events(node, last, upto)?))
    })
    .await?;
    let events: Vec<EventId> = events.into_iter().collect();
    for chunk in events.chunks(EVENTS_PER_LOCK) {
        let chunk = chunk.to_vec();
        let changes = with_node(state, move |node| {
            let mut changes = Vec::with_capacity(chunk.len());
            for event in chunk {
                // An event that cannot be shown (its document is not
                // complete yet) is sent when a later entry completes it.
                let Ok(detail) = node.show(event) else {
                    continue;
                };
                let reporter = node.reporter(event)?;
                let mut full = event_json(&detail, reporter, false);
                full["conflicts"] = json!(detail.view.conflicts);
                changes.push(Change {
                    full: full.to_string(),
                    redacted: event_json(&detail, None, true).to_string(),
                });
            }
            Ok(changes)
        })
        .await?;
        for change in changes {
            // No receiver left is not an error: the follower stops next turn.
            let _ = state.feed.tx.send(Arc::new(change));
        }
    }
    Ok(upto.max(last))
}

/// The events named by the log entries at positions `(after, upto]`.
fn changed_events(node: &Node, after: i64, upto: i64) -> Result<BTreeSet<EventId>, StoreError> {
    let mut stmt = node.store().conn().prepare_cached(
        "SELECT DISTINCT event FROM entries
         WHERE pos > ?1 AND pos <= ?2 AND event IS NOT NULL",
    )?;
    let mut rows = stmt.query([after, upto])?;
    let mut events = BTreeSet::new();
    while let Some(r) = rows.next()? {
        let bytes: Vec<u8> = r.get(0)?;
        if let Ok(id) = <[u8; EventId::LEN]>::try_from(bytes.as_slice()) {
            events.insert(EventId(id));
        }
    }
    Ok(events)
}

/// Where a subscriber's stream is.
struct Subscription {
    rx: broadcast::Receiver<Arc<Change>>,
    redacted: bool,
    state: ApiState,
    caller: Caller,
    recheck: tokio::time::Interval,
}

/// `GET /api/v1/feed`.
#[utoipa::path(
    get,
    path = "/api/v1/feed",
    tag = "events",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Server-Sent Events, without end: `event` messages \
            (data: an event as GET /api/v1/events/{id} shows it to the caller, without \
            history), `lagged` messages (data: {\"missed\": N}) and `ping` comments.",
            body = String, content_type = "text/event-stream"),
        sentinel_http::openapi::BadRequest,
        sentinel_http::openapi::Unauthorized,
        sentinel_http::openapi::Forbidden,
        sentinel_http::openapi::Unavailable,
    )
)]
pub(super) async fn feed(
    State(state): State<ApiState>,
    caller: Caller,
    query: super::params::Pairs,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let scope = caller.may(Action::Subscribe, None)?;
    super::params::Params::from_query(query, &[])?;
    // Subscribe under the node's lock, and read how far the views are:
    // nothing can commit in between, so no change falls between the mark
    // a new follower starts from and this subscription.
    let feed = state.feed.clone();
    let (rx, from) = with_node(&state, move |node| {
        let rx = feed.tx.subscribe();
        Ok((rx, projected_upto(node.store().conn())?))
    })
    .await?;
    state.feed.follow_from(&state, from);
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate; the caller was just checked.
    recheck.reset();
    let subscription = Subscription {
        rx,
        redacted: scope == Scope::Redacted,
        state,
        caller,
        recheck,
    };
    let events = stream::unfold(subscription, |mut s| async move {
        loop {
            let message = tokio::select! {
                received = s.rx.recv() => match received {
                    Ok(change) => Event::default().event("event").data(if s.redacted {
                        &change.redacted
                    } else {
                        &change.full
                    }),
                    Err(broadcast::error::RecvError::Lagged(n)) => Event::default()
                        .event("lagged")
                        .data(json!({ "missed": n }).to_string()),
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = s.recheck.tick() => {
                    if still_subscribed(&s).await {
                        continue;
                    }
                    return None;
                }
            };
            return Some((Ok(message), s));
        }
    });
    Ok(Sse::new(events).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("ping"),
    ))
}

/// Whether the subscriber's token still signs it in with the same role.
async fn still_subscribed(s: &Subscription) -> bool {
    match s.caller.again(&s.state).await {
        Ok(now) => now.role == s.caller.role,
        Err(_) => false,
    }
}
