//! The live feed: `GET /api/v1/feed`, Server-Sent Events.
//!
//! Every time the projector writes events, each changed event is sent to
//! every subscriber as one `event` message carrying the event as
//! `GET /api/v1/events/{id}` shows it to that subscriber's role (redacted
//! for the public; never with history). A subscriber too slow to keep up
//! gets one `lagged` message with how many it missed, and should re-read
//! `/api/v1/events`; the feed is a notification, the API is the truth. A
//! `ping` comment every 15 s keeps proxies from closing quiet streams.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use sentinel_schema::access::{Action, Scope};
use sentinel_schema::EventId;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::auth::Caller;
use super::{event_json, redact_event, ApiState, Problem, EVENT_COLUMNS};
use crate::{PgStore, StoreError};

/// Messages kept for a slow subscriber before it is told it lagged.
pub const FEED_BUFFER: usize = 1024;

/// Fans changed events out to every subscriber.
#[derive(Clone, Debug)]
pub struct Feed {
    tx: broadcast::Sender<Arc<Value>>,
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
        }
    }

    /// Subscribers connected now.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Sends the current rows of `events` (as the events API shows them,
    /// unredacted) to every subscriber. Nothing is read when nobody
    /// listens.
    pub async fn publish(&self, store: &PgStore, events: &[EventId]) -> Result<usize, StoreError> {
        if events.is_empty() || self.tx.receiver_count() == 0 {
            return Ok(0);
        }
        let mut ids: Vec<&[u8]> = events.iter().map(|e| e.0.as_slice()).collect();
        ids.sort_unstable();
        ids.dedup();
        let rows = store
            .client()
            .await?
            .query(
                &format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.event = ANY($1)"),
                &[&ids],
            )
            .await?;
        for r in &rows {
            // No receiver left is not an error: the next publish reads
            // nothing.
            let _ = self.tx.send(Arc::new(event_json(r)));
        }
        Ok(rows.len())
    }
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
        sentinel_http::openapi::Unauthorized,
        sentinel_http::openapi::Forbidden,
        sentinel_http::openapi::Unavailable,
    )
)]
pub(super) async fn feed(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let scope = caller.may(Action::Subscribe, None)?;
    let feed = state.feed.as_ref().ok_or_else(|| Problem {
        status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
        kind: "urn:sentinel:problem:unavailable",
        title: "Service unavailable",
        detail: "this server has no live feed".into(),
        field: None,
    })?;
    let rx = feed.tx.subscribe();
    let events = stream::unfold(rx, move |mut rx| async move {
        let message = match rx.recv().await {
            Ok(item) => {
                let mut event = (*item).clone();
                if scope == Scope::Redacted {
                    redact_event(&mut event);
                }
                Event::default().event("event").data(event.to_string())
            }
            Err(broadcast::error::RecvError::Lagged(n)) => Event::default()
                .event("lagged")
                .data(json!({ "missed": n }).to_string()),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(message), rx))
    });
    Ok(Sse::new(events).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("ping"),
    ))
}
