//! The live feed's source on the hub: each event the projector changed
//! (`crate::net::HubNet::changes`) is loaded through the API's backend, as
//! `GET /api/v1/events/{id}` would show it, and published on the feed
//! (`sentinel_http::api::Feed::publish`), which renders it per role for
//! every subscriber.
//!
//! Never does: SQL, or render an event (the shared feed does both
//! through the backend and its JSON types).

use sentinel_http::api::Api;
use sentinel_schema::EventId;
use tokio::sync::broadcast::{self, error::RecvError};

/// Publishes each event announced on `changes` on `api`'s feed, until the
/// projector's side of the channel is gone. Nothing is loaded while
/// nobody listens; an event the store no longer shows is skipped.
pub async fn follow(api: Api, mut changes: broadcast::Receiver<EventId>) {
    loop {
        let event = match changes.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(n)) => {
                // The feed is a notification and the API the truth: what
                // a burst of changes pushed out is logged, not replayed.
                tracing::warn!("live feed: {n} changed events were not published (too many)");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        if api.feed().subscribers() == 0 {
            continue;
        }
        match api.backend().event(event).await {
            Ok(Some(record)) => api.feed().publish(&record),
            Ok(None) => {}
            Err(p) => tracing::error!("live feed: loading event {event}: {}", p.detail),
        }
    }
}
