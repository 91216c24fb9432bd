//! The live feed: `GET /api/v1/feed`, Server-Sent Events.
//!
//! Every event the server publishes ([`Feed::publish`]: the hub when its
//! projector changes an event, the node when its views project a change,
//! whoever wrote it) is sent to every subscriber as one `event` message
//! carrying the event as `GET /api/v1/events/{id}` shows it to that
//! subscriber's role (redacted for the public; with conflicts but never
//! with history). A subscriber too slow to keep up gets one `lagged`
//! message with how many it missed, and should re-read `/api/v1/events`:
//! the feed is a notification, the API is the truth. A `ping` comment
//! every 15 s keeps proxies from closing quiet streams.
//!
//! **Who listens.** The caller's token and role are checked when the
//! stream opens and again every [`RECHECK`]; a stream whose token was
//! revoked or expired, whose account was disabled, or whose role changed,
//! ends (the client reconnects and is checked afresh).
//!
//! **How many listen.** At most [`Feed::with_max_subscribers`] streams
//! are open at once ([`MAX_SUBSCRIBERS`] by default); one more is
//! refused with a `503` problem saying so, before it subscribes.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::future::BoxFuture;
use futures_util::stream::{self, Stream};
use sentinel_schema::access::Action;
use sentinel_schema::query::EventRecord;
use serde_json::json;
use tokio::sync::{broadcast, OwnedSemaphorePermit, Semaphore};

use super::events::visibility;
use super::json::{Event, Visibility};
use super::{Api, Caller};
use crate::openapi::{BadRequest, Forbidden, Unauthorized};
use crate::params::{Pairs, Params};
use crate::Problem;

/// Messages kept for a slow subscriber before it is told it lagged.
pub const FEED_BUFFER: usize = 1024;
/// How often a subscriber's token and role are checked again.
pub const RECHECK: Duration = Duration::from_secs(60);
/// Streams open at once, by default.
pub const MAX_SUBSCRIBERS: usize = 1024;
/// How often a quiet stream says `ping`.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One changed event, as each visibility sees it (serialised once, sent to
/// every subscriber).
#[derive(Debug)]
pub struct Change {
    full: String,
    public: String,
}

/// A subscription to the feed.
pub type FeedReceiver = broadcast::Receiver<Arc<Change>>;

/// How a server subscribes a new listener: for a server that publishes
/// only while someone listens, the moment to start following its log.
pub type Subscribe =
    Arc<dyn Fn(Feed) -> BoxFuture<'static, Result<FeedReceiver, Problem>> + Send + Sync>;

/// Fans changed events out to every subscriber of one API.
#[derive(Clone)]
pub struct Feed {
    tx: broadcast::Sender<Arc<Change>>,
    subscribe: Option<Subscribe>,
    recheck: Duration,
    /// One permit per open stream.
    slots: Arc<Semaphore>,
    max_subscribers: usize,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("subscribers", &self.subscribers())
            .finish()
    }
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
            subscribe: None,
            recheck: RECHECK,
            slots: Arc::new(Semaphore::new(MAX_SUBSCRIBERS)),
            max_subscribers: MAX_SUBSCRIBERS,
        }
    }

    /// The feed, with at most `max` streams open at once (at least 1).
    pub fn with_max_subscribers(self, max: usize) -> Feed {
        let max = max.max(1);
        Feed {
            slots: Arc::new(Semaphore::new(max)),
            max_subscribers: max,
            ..self
        }
    }

    /// The feed, checking its subscribers' tokens and roles every `every`
    /// rather than every [`RECHECK`] (tests).
    pub fn rechecking_every(self, every: Duration) -> Feed {
        Feed {
            recheck: every,
            ..self
        }
    }

    /// The feed, with `subscribe` making each new subscription (it calls
    /// [`Feed::receiver`] at the moment that suits the server).
    pub fn subscribing_with(self, subscribe: Subscribe) -> Feed {
        Feed {
            subscribe: Some(subscribe),
            ..self
        }
    }

    /// Subscribers connected now.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// A new subscription, receiving what is published from now on.
    pub fn receiver(&self) -> FeedReceiver {
        self.tx.subscribe()
    }

    /// Sends `record` to every subscriber, as each may see it. Nothing is
    /// rendered when nobody listens.
    pub fn publish(&self, record: &EventRecord) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let mut full = Event::of(record, Visibility::Full, true);
        full.history = None;
        let public = Event::of(record, Visibility::Public, false);
        let (Ok(full), Ok(public)) = (serde_json::to_string(&full), serde_json::to_string(&public))
        else {
            return;
        };
        // No receiver left is not an error: nobody listens any more.
        let _ = self.tx.send(Arc::new(Change { full, public }));
    }

    async fn subscription(&self) -> Result<FeedReceiver, Problem> {
        match &self.subscribe {
            Some(subscribe) => subscribe(self.clone()).await,
            None => Ok(self.receiver()),
        }
    }
}

/// Where a subscriber's stream is.
struct Subscription {
    rx: FeedReceiver,
    /// This stream's place among [`Feed::with_max_subscribers`].
    _slot: OwnedSemaphorePermit,
    public: bool,
    api: Api,
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
            history), `lagged` messages (data: {\"missed\": N}) and `ping` comments. The \
            stream ends when the caller's token or role does (checked every 60 s).",
            body = String, content_type = "text/event-stream"),
        BadRequest, Unauthorized, Forbidden,
        (status = 503, description = "The store does not answer, or the feed has as many \
            subscribers as it takes: the detail says which.",
            body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn feed(
    State(api): State<Api>,
    caller: Caller,
    query: Pairs,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Problem> {
    let v = visibility(caller.may(Action::Subscribe, None)?);
    Params::from_query(query, &[])?;
    let slot = api.feed.slots.clone().try_acquire_owned().map_err(|_| {
        Problem::busy(format!(
            "the live feed has its {} subscribers; retry later, or read /api/v1/events",
            api.feed.max_subscribers
        ))
    })?;
    let rx = api.feed.subscription().await?;
    let mut recheck = tokio::time::interval(api.feed.recheck);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate; the caller was just checked.
    recheck.reset();
    let subscription = Subscription {
        rx,
        _slot: slot,
        public: v.is_public(),
        api,
        caller,
        recheck,
    };
    let events = stream::unfold(subscription, |mut s| async move {
        loop {
            let message = tokio::select! {
                received = s.rx.recv() => match received {
                    Ok(change) => SseEvent::default().event("event").data(if s.public {
                        &change.public
                    } else {
                        &change.full
                    }),
                    Err(broadcast::error::RecvError::Lagged(n)) => SseEvent::default()
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
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("ping")))
}

/// Whether the subscriber's token still signs it in with the same role.
async fn still_subscribed(s: &Subscription) -> bool {
    match s.caller.again(&s.api).await {
        Ok(now) => now.role == s.caller.role,
        Err(_) => false,
    }
}
