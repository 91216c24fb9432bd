//! What the node publishes on the live feed (`GET /api/v1/feed`, served by
//! `sentinel_http::api::feed`, which fans each change out to every
//! subscriber as that subscriber may see it).
//!
//! **How changes are found.** The [`Follower`] follows the log, not the
//! code paths that write it: the views record how far they have projected
//! the log (committed with the views, invariant 6), so the events of the
//! entries between the last position published and that mark are exactly
//! what changed since — an entry this API wrote, one that sync applied
//! from a peer, or one another `sentinel-node` command wrote. Each changed
//! event's record goes out with `Feed::publish`. The API's own writes
//! wake the follower at once ([`Follower::poke`]); everything else (sync
//! sessions project their batches as they land, `serve` catches the views
//! up twice a second) is seen within [`POLL`]. The follower runs only
//! while someone subscribes.
//!
//! **No change falls between.** A subscription is taken under the node's
//! lock together with the mark of how far the views are, and a follower
//! not yet running starts from that mark; one already running is at or
//! before it. Either way every change after the subscription is
//! published.
//!
//! Never does: render or send events to subscribers (the shared `Feed` does), or poll while nobody subscribes.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use sentinel_http::api::feed::{FeedReceiver, Subscribe};
use sentinel_http::api::Feed;
use sentinel_http::Problem;
use sentinel_schema::EventId;
use tokio::sync::Notify;

use super::blocking::on_node;
use crate::node::Node;

/// How often the follower looks for changes it was not told about.
pub const POLL: Duration = Duration::from_millis(250);
/// Events read per turn of the node's lock, so a large sync batch does
/// not hold the lock (and every request) for the whole publication.
const EVENTS_PER_LOCK: usize = 256;

/// Follows the node's log and publishes what changed on a feed.
#[derive(Clone)]
pub struct Follower {
    node: Arc<Mutex<Node>>,
    wake: Arc<Notify>,
    /// Whether a follower runs; taken by a new subscriber after it
    /// subscribed, and by the follower before it stops for want of
    /// subscribers, so no subscriber is left without one.
    following: Arc<Mutex<bool>>,
}

impl Follower {
    pub fn new(node: Arc<Mutex<Node>>) -> Follower {
        Follower {
            node,
            wake: Arc::new(Notify::new()),
            following: Arc::new(Mutex::new(false)),
        }
    }

    /// A feed whose subscriptions this follower serves.
    pub fn feed(&self) -> Feed {
        let follower = self.clone();
        let subscribe: Subscribe = Arc::new(
            move |feed: Feed| -> BoxFuture<'static, Result<FeedReceiver, Problem>> {
                Box::pin(follower.clone().subscribe(feed))
            },
        );
        Feed::new().subscribing_with(subscribe)
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

    /// A new subscription to `feed`, and a follower from the views' mark
    /// unless one runs.
    async fn subscribe(self, feed: Feed) -> Result<FeedReceiver, Problem> {
        // Subscribe under the node's lock, and read how far the views are:
        // nothing can commit in between.
        let subscribing = feed.clone();
        let (rx, from) = on_node(&self.node, move |node| {
            let rx = subscribing.receiver();
            Ok((rx, node.store().projected_upto()?))
        })
        .await?;
        let mut running = self.following();
        if !*running {
            *running = true;
            tokio::spawn(self.clone().follow(feed, from));
        }
        Ok(rx)
    }

    /// Publishes the changes after `last` until nobody subscribes.
    async fn follow(self, feed: Feed, mut last: i64) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tick.tick() => {}
            }
            {
                let mut running = self.following();
                if feed.subscribers() == 0 {
                    *running = false;
                    return;
                }
            }
            match self.publish_after(&feed, last).await {
                Ok(upto) => last = upto,
                // The store did not answer; try again at the next poll.
                Err(e) => tracing::warn!("the live feed cannot read the node: {}", e.detail),
            }
        }
    }

    /// Publishes every event changed by the entries after `last` that the
    /// views have projected; returns the position published up to.
    async fn publish_after(&self, feed: &Feed, last: i64) -> Result<i64, Problem> {
        let (upto, events) = on_node(&self.node, move |node| {
            let store = node.store();
            let upto = store.projected_upto()?;
            Ok((upto, store.changed_events(last, upto)?))
        })
        .await?;
        let events: Vec<EventId> = events.into_iter().collect();
        for chunk in events.chunks(EVENTS_PER_LOCK) {
            let chunk = chunk.to_vec();
            let records = on_node(&self.node, move |node| {
                let mut records = Vec::with_capacity(chunk.len());
                for event in chunk {
                    // An event that cannot be shown (its document is not
                    // complete yet) is sent when a later entry completes it.
                    if let Some(record) = node.store().event_record(event)? {
                        records.push(record);
                    }
                }
                Ok(records)
            })
            .await?;
            for record in &records {
                feed.publish(record);
            }
        }
        Ok(upto.max(last))
    }
}
