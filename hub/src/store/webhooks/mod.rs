//! Webhooks in the store (migration V12): subscriptions, and the durable
//! outbox of their deliveries.
//!
//! **Enqueue.** [`enqueue`] runs inside the projector's chunk transaction
//! (`super::project`), after the chunk's views are computed and before the
//! `events` rows are written: it reads each changed event as the view
//! showed it before, matches the change against every enabled
//! subscription's [`Rule`] and inserts one `webhook_deliveries` row per
//! match. The rows commit with the views and the projection cursor
//! (invariant 6), so every matching change has exactly one row however
//! the hub crashes or restarts. A delivery's id (the idempotency key) is
//! derived from the subscription and the entries that made the change;
//! each entry is projected once, so ids never repeat. Entries projected
//! again by [`PgStore::rebuild_views`] are `webhook_quiet` and announce
//! nothing.
//!
//! **Deliver.** The worker (`crate::webhooks`) claims due rows
//! ([`PgStore::claim_deliveries`]: `FOR UPDATE SKIP LOCKED`, and a lease,
//! so a crash mid-send makes the row due again: at least once), sends
//! them, and records each attempt ([`PgStore::record_attempt`]).
//!
//! Never does: HTTP, signing, read the clock but to stamp a new row.

mod enqueue;
mod rule;

use sentinel_schema::EventId;
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

pub(super) use enqueue::{enqueue, QUIET_PROJECTED};
pub use rule::{payload, Before, Fact, Rule, RuleError, KINDS, MAX_CATEGORIES, RULE_FIELDS};

use super::{id16, int, uint, PgStore, StoreError};

/// A subscription as stored. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct Subscription {
    pub id: [u8; 16],
    pub name: String,
    pub url: String,
    /// The HMAC key (its UTF-8 bytes).
    pub secret: String,
    pub enabled: bool,
    pub rule: Rule,
    pub created_ms: u64,
    pub updated_ms: u64,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &hex::encode(self.id))
            .field("name", &self.name)
            .field("url", &self.url)
            .field("enabled", &self.enabled)
            .field("rule", &self.rule)
            .finish_non_exhaustive()
    }
}

/// What a subscription is made of (or changed to).
#[derive(Clone)]
pub struct SubscriptionSpec {
    pub name: String,
    pub url: String,
    pub secret: String,
    pub enabled: bool,
    pub rule: Rule,
}

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// Every attempt failed; only a replay sends it again.
    Dead,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 3] = [
        DeliveryState::Pending,
        DeliveryState::Delivered,
        DeliveryState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryState> {
        DeliveryState::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// One delivery, as the delivery log shows it (its body aside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: [u8; 16],
    pub subscription: [u8; 16],
    pub event: Option<EventId>,
    /// `event.created` or `event.updated`.
    pub kind: String,
    pub state: DeliveryState,
    pub attempts: u32,
    /// When a pending delivery is due (or its claim's lease ends).
    pub next_attempt_ms: Option<u64>,
    pub created_ms: u64,
    pub last_attempt_ms: Option<u64>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub delivered_ms: Option<u64>,
}

/// A delivery claimed for an attempt: what sending it needs.
#[derive(Clone)]
pub struct Due {
    pub id: [u8; 16],
    pub subscription: [u8; 16],
    pub url: String,
    pub secret: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Delivered,
    RetryAt(u64),
    Dead,
}

/// What an update of a subscription did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Done,
    NotFound,
    /// Another subscription has the name.
    NameTaken,
}

const SUBSCRIPTION_COLUMNS: &str =
    "id, name, url, secret, enabled, rule::text, created_ms, updated_ms";

const DELIVERY_COLUMNS: &str = "id, subscription, event, kind, state, attempts, next_attempt_ms,
    created_ms, last_attempt_ms, last_status, last_error, delivered_ms";

fn subscription(r: &Row) -> Result<Subscription, StoreError> {
    let corrupt = StoreError::CorruptColumn {
        column: "webhook_subscriptions.rule",
    };
    let rule: String = r.get(5);
    let rule: serde_json::Value = serde_json::from_str(&rule).map_err(|_| corrupt)?;
    let rule =
        rule.as_object()
            .and_then(|m| Rule::parse(m).ok())
            .ok_or(StoreError::CorruptColumn {
                column: "webhook_subscriptions.rule",
            })?;
    Ok(Subscription {
        id: id16(r.get(0), "webhook_subscriptions.id")?,
        name: r.get(1),
        url: r.get(2),
        secret: r.get(3),
        enabled: r.get(4),
        rule,
        created_ms: uint(r.get(6), "webhook_subscriptions.created_ms")?,
        updated_ms: uint(r.get(7), "webhook_subscriptions.updated_ms")?,
    })
}

fn opt_uint(v: Option<i64>, column: &'static str) -> Result<Option<u64>, StoreError> {
    v.map(|v| uint(v, column)).transpose()
}

fn delivery(r: &Row) -> Result<Delivery, StoreError> {
    let state: String = r.get(4);
    let state = DeliveryState::parse(&state).ok_or(StoreError::CorruptColumn {
        column: "webhook_deliveries.state",
    })?;
    let event: Option<&[u8]> = r.get(2);
    Ok(Delivery {
        id: id16(r.get(0), "webhook_deliveries.id")?,
        subscription: id16(r.get(1), "webhook_deliveries.subscription")?,
        event: event
            .map(|e| id16(e, "webhook_deliveries.event").map(EventId))
            .transpose()?,
        kind: r.get(3),
        attempts: u32::try_from(r.get::<_, i32>(5)).unwrap_or(0),
        next_attempt_ms: match state {
            DeliveryState::Pending => Some(uint(r.get(6), "webhook_deliveries.next_attempt_ms")?),
            _ => None,
        },
        state,
        created_ms: uint(r.get(7), "webhook_deliveries.created_ms")?,
        last_attempt_ms: opt_uint(r.get(8), "webhook_deliveries.last_attempt_ms")?,
        last_status: r
            .get::<_, Option<i32>>(9)
            .and_then(|s| u16::try_from(s).ok()),
        last_error: r.get(10),
        delivered_ms: opt_uint(r.get(11), "webhook_deliveries.delivered_ms")?,
    })
}

fn rule_text(rule: &Rule) -> String {
    serde_json::Value::Object(rule.to_json()).to_string()
}

impl PgStore {
    /// Stores a new subscription; `false` when the name is taken (nothing
    /// stored).
    pub async fn create_webhook(
        &self,
        id: [u8; 16],
        spec: &SubscriptionSpec,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let now = int(now_ms, "webhook_subscriptions.created_ms")?;
        let n = self
            .client()
            .await?
            .execute(
                "INSERT INTO webhook_subscriptions
                     (id, name, url, secret, enabled, rule, created_ms, updated_ms)
                 VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7, $7)
                 ON CONFLICT (name) DO NOTHING",
                &[
                    &id.as_slice(),
                    &spec.name,
                    &spec.url,
                    &spec.secret,
                    &spec.enabled,
                    &rule_text(&spec.rule),
                    &now,
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// Every subscription, by name.
    pub async fn webhooks(&self) -> Result<Vec<Subscription>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions ORDER BY name"),
                &[],
            )
            .await?;
        rows.iter().map(subscription).collect()
    }

    /// One subscription.
    pub async fn webhook(&self, id: [u8; 16]) -> Result<Option<Subscription>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = $1"),
                &[&id.as_slice()],
            )
            .await?;
        row.as_ref().map(subscription).transpose()
    }

    /// Replaces a subscription's fields.
    pub async fn update_webhook(
        &self,
        id: [u8; 16],
        spec: &SubscriptionSpec,
        now_ms: u64,
    ) -> Result<Written, StoreError> {
        let now = int(now_ms, "webhook_subscriptions.updated_ms")?;
        let done = self
            .client()
            .await?
            .execute(
                "UPDATE webhook_subscriptions SET name = $2, url = $3, secret = $4,
                     enabled = $5, rule = $6::text::jsonb, updated_ms = $7
                 WHERE id = $1",
                &[
                    &id.as_slice(),
                    &spec.name,
                    &spec.url,
                    &spec.secret,
                    &spec.enabled,
                    &rule_text(&spec.rule),
                    &now,
                ],
            )
            .await;
        match done {
            Ok(0) => Ok(Written::NotFound),
            Ok(_) => Ok(Written::Done),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(Written::NameTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a subscription and its deliveries; `false` when unknown.
    pub async fn delete_webhook(&self, id: [u8; 16]) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "DELETE FROM webhook_subscriptions WHERE id = $1",
                &[&id.as_slice()],
            )
            .await?;
        Ok(n == 1)
    }

    /// A subscription's deliveries, newest first, at most `limit`, only
    /// those in `state` if given.
    pub async fn webhook_deliveries(
        &self,
        subscription: [u8; 16],
        state: Option<DeliveryState>,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
                     WHERE subscription = $1 AND ($2::text IS NULL OR state = $2)
                     ORDER BY created_ms DESC, id LIMIT $3"
                ),
                &[&subscription.as_slice(), &state.map(|s| s.as_str()), &limit],
            )
            .await?;
        rows.iter().map(delivery).collect()
    }

    /// One delivery.
    pub async fn webhook_delivery(&self, id: [u8; 16]) -> Result<Option<Delivery>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1"),
                &[&id.as_slice()],
            )
            .await?;
        row.as_ref().map(delivery).transpose()
    }

    /// Sends a delivery again, whatever its state: pending, due at
    /// `now_ms`, its attempts counted from 0 (its last status and error
    /// kept until the next attempt). `None` when unknown.
    pub async fn replay_delivery(
        &self,
        id: [u8; 16],
        now_ms: u64,
    ) -> Result<Option<Delivery>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "UPDATE webhook_deliveries SET state = 'pending', attempts = 0,
                         next_attempt_ms = $2, delivered_ms = NULL
                     WHERE id = $1 RETURNING {DELIVERY_COLUMNS}"
                ),
                &[
                    &id.as_slice(),
                    &int(now_ms, "webhook_deliveries.next_attempt_ms")?,
                ],
            )
            .await?;
        row.as_ref().map(delivery).transpose()
    }

    /// Claims at most `limit` pending deliveries due at `now_ms` of enabled
    /// subscriptions, earliest first: each is due again at `now_ms +
    /// lease_ms` unless [`PgStore::record_attempt`] says otherwise before
    /// (a worker that dies mid-send loses nothing). Rows another claim
    /// holds are skipped.
    pub async fn claim_deliveries(
        &self,
        now_ms: u64,
        limit: i64,
        lease_ms: u64,
    ) -> Result<Vec<Due>, StoreError> {
        let now = int(now_ms, "webhook_deliveries.next_attempt_ms")?;
        let until = int(
            now_ms.saturating_add(lease_ms),
            "webhook_deliveries.next_attempt_ms",
        )?;
        let rows = self
            .client()
            .await?
            .query(
                "UPDATE webhook_deliveries d SET next_attempt_ms = $3
                 FROM webhook_subscriptions s
                 WHERE s.id = d.subscription AND d.id IN (
                     SELECT d2.id FROM webhook_deliveries d2
                     JOIN webhook_subscriptions s2 ON s2.id = d2.subscription
                     WHERE d2.state = 'pending' AND d2.next_attempt_ms <= $1 AND s2.enabled
                     ORDER BY d2.next_attempt_ms LIMIT $2
                     FOR UPDATE OF d2 SKIP LOCKED)
                 RETURNING d.id, d.subscription, s.url, s.secret, d.payload, d.attempts",
                &[&now, &limit, &until],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Due {
                    id: id16(r.get(0), "webhook_deliveries.id")?,
                    subscription: id16(r.get(1), "webhook_deliveries.subscription")?,
                    url: r.get(2),
                    secret: r.get(3),
                    payload: r.get(4),
                    attempts: u32::try_from(r.get::<_, i32>(5)).unwrap_or(0),
                })
            })
            .collect()
    }

    /// Records one attempt of a pending delivery: its answer's status (if
    /// any), the error (if it failed), and what comes next.
    pub async fn record_attempt(
        &self,
        id: [u8; 16],
        at_ms: u64,
        status: Option<u16>,
        error: Option<&str>,
        next: Next,
    ) -> Result<(), StoreError> {
        let at = int(at_ms, "webhook_deliveries.last_attempt_ms")?;
        let (state, next_ms, delivered) = match next {
            Next::Delivered => ("delivered", at, Some(at)),
            Next::RetryAt(ms) => (
                "pending",
                int(ms, "webhook_deliveries.next_attempt_ms")?,
                None,
            ),
            Next::Dead => ("dead", at, None),
        };
        self.client()
            .await?
            .execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_ms = $2,
                     last_status = $3, last_error = $4, state = $5, next_attempt_ms = $6,
                     delivered_ms = $7
                 WHERE id = $1 AND state = 'pending'",
                &[
                    &id.as_slice(),
                    &at,
                    &status.map(i32::from),
                    &error,
                    &state,
                    &next_ms,
                    &delivered,
                ],
            )
            .await?;
        Ok(())
    }
}
