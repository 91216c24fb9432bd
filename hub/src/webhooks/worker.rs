//! The delivery worker: claims due deliveries from the outbox, POSTs each
//! signed (`super::sign`), and records what happened.
//!
//! One step is [`Worker::run_due`]`(now)`: the task `serve` starts
//! ([`Worker::spawn`]) calls it with the wall clock every second (at once
//! again while batches come full); tests call it with a clock they
//! advance. A 2xx answer marks the delivery delivered; anything else (an
//! error status, a redirect — never followed —, a refused connection, a
//! timeout) schedules the next attempt after an exponential backoff with
//! full jitter ([`Backoff`], randomness injected), and the
//! `max_attempts`-th failure moves it to dead-letter, where only a replay
//! (`PgStore::replay_delivery`) sends it again. Every state is in
//! PostgreSQL: a restarted hub carries on, and a delivery whose sender
//! died mid-send is due again when its claim's lease ends (at least once;
//! receivers drop repeats by `Sentinel-Webhook-Id`).
//!
//! Each POST has a timeout (connect and whole request) and at most
//! [`SNIPPET_BYTES`] of an error answer's body are read, for the
//! delivery log. The secret goes into the signature only: never into a
//! log line or an error.
//!
//! Never does: SQL (the store's `webhooks` does); choose what to send.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sentinel_http::clock::Clock;
use tokio::task::JoinHandle;

use super::{sign, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::store::webhooks::{Due, Next};
use crate::store::{PgStore, StoreError};

/// Most bytes of an error answer's body kept in the delivery log.
pub const SNIPPET_BYTES: usize = 256;

/// How long the task waits between steps when nothing was left due.
const POLL: Duration = Duration::from_secs(1);

/// Exponential backoff with full jitter: after the n-th failure the next
/// attempt waits a uniformly drawn time in `min_ms..=min(cap_ms, base_ms ·
/// 2^(n-1))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base_ms: u64,
    pub cap_ms: u64,
    /// The shortest wait (a draw of 0 would retry in the same second).
    pub min_ms: u64,
}

impl Backoff {
    /// 30 s doubling to at most 6 h, at least 1 s: twelve attempts span
    /// about seven hours on average, fifteen at most.
    pub const DEFAULT: Backoff = Backoff {
        base_ms: 30_000,
        cap_ms: 6 * 3_600_000,
        min_ms: 1_000,
    };

    /// The wait after `failures` failed attempts (1 or more), with
    /// `random` a uniformly drawn number.
    pub fn delay_ms(&self, failures: u32, random: u64) -> u64 {
        let doubling = 1u64
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u64::MAX);
        let window = self.base_ms.saturating_mul(doubling).min(self.cap_ms);
        let drawn = match window.checked_add(1) {
            Some(n) => random % n,
            None => random,
        };
        drawn.max(self.min_ms)
    }
}

/// How the worker delivers.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Attempts before a delivery goes to dead-letter (at least 1).
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// Deliveries claimed (and sent concurrently) per step.
    pub batch: i64,
    /// How long a claim holds a delivery before it is due again.
    pub lease_ms: u64,
    /// The whole request's timeout (the connection's is the smaller of
    /// this and 5 s).
    pub timeout: Duration,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff: Backoff::DEFAULT,
            batch: 32,
            lease_ms: 120_000,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Attempts before dead-letter, unless configured.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 12;

/// A source of uniformly drawn numbers (the jitter's).
pub type Random = Box<dyn FnMut() -> u64 + Send>;

/// What one step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepReport {
    pub claimed: usize,
    pub delivered: usize,
    pub retried: usize,
    pub dead: usize,
}

/// Why the worker could not be made.
#[derive(Debug, thiserror::Error)]
#[error("the webhook HTTP client: {0}")]
pub struct WorkerError(#[from] reqwest::Error);

/// The delivery worker over a store.
pub struct Worker {
    store: PgStore,
    client: reqwest::Client,
    policy: Policy,
    random: Mutex<Random>,
}

impl Worker {
    /// A worker drawing its jitter from the operating system.
    pub fn new(store: PgStore, policy: Policy) -> Result<Worker, WorkerError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!(
                "sentinel-hub/",
                env!("CARGO_PKG_VERSION"),
                " (webhooks)"
            ))
            .build()?;
        Ok(Worker {
            store,
            client,
            policy: Policy {
                max_attempts: policy.max_attempts.max(1),
                ..policy
            },
            random: Mutex::new(Box::new(|| {
                use rand_core::RngCore;
                rand_core::OsRng.next_u64()
            })),
        })
    }

    /// The same worker drawing its jitter from `random` (tests).
    pub fn with_random(self, random: Random) -> Worker {
        Worker {
            random: Mutex::new(random),
            ..self
        }
    }

    fn draw(&self) -> u64 {
        // A panic while drawing leaves the source as good as it was.
        let mut random = self
            .random
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (*random)()
    }

    /// One step at `now_ms`: claims up to `batch` due deliveries, sends
    /// them at once, records each outcome.
    pub async fn run_due(&self, now_ms: u64) -> Result<StepReport, StoreError> {
        let due = self
            .store
            .claim_deliveries(now_ms, self.policy.batch, self.policy.lease_ms)
            .await?;
        let outcomes =
            futures_util::future::join_all(due.iter().map(|d| self.attempt(d, now_ms))).await;
        let mut report = StepReport {
            claimed: due.len(),
            ..StepReport::default()
        };
        for (d, (status, error)) in due.iter().zip(outcomes) {
            let failures = d.attempts.saturating_add(1);
            let next = match &error {
                None => Next::Delivered,
                Some(_) if failures >= self.policy.max_attempts => Next::Dead,
                Some(_) => Next::RetryAt(
                    now_ms.saturating_add(self.policy.backoff.delay_ms(failures, self.draw())),
                ),
            };
            match next {
                Next::Delivered => report.delivered += 1,
                Next::RetryAt(_) => report.retried += 1,
                Next::Dead => report.dead += 1,
            }
            if let Some(e) = &error {
                tracing::warn!(
                    delivery = %hex::encode(d.id),
                    subscription = %hex::encode(d.subscription),
                    attempt = failures,
                    dead = (next == Next::Dead),
                    "webhook delivery failed: {e}"
                );
            }
            self.store
                .record_attempt(d.id, now_ms, status, error.as_deref(), next)
                .await?;
        }
        Ok(report)
    }

    /// One POST: the answer's status, and an error unless it was 2xx.
    async fn attempt(&self, d: &Due, now_ms: u64) -> (Option<u16>, Option<String>) {
        let timestamp = now_ms / 1000;
        let signature = sign(d.secret.as_bytes(), timestamp, d.payload.as_bytes());
        let sent = self
            .client
            .post(&d.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ID_HEADER, hex::encode(d.id))
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(d.payload.clone())
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status();
                if status.is_success() {
                    return (Some(status.as_u16()), None);
                }
                let mut error = format!("HTTP {}", status.as_u16());
                if status.is_redirection() {
                    error.push_str(" (redirects are not followed)");
                }
                let snippet = snippet(response).await;
                if !snippet.is_empty() {
                    error.push_str(": ");
                    error.push_str(&snippet);
                }
                (Some(status.as_u16()), Some(error))
            }
            Err(e) => (None, Some(describe(&e))),
        }
    }

    /// Runs [`Worker::run_due`] by `clock` until the task is aborted.
    pub fn spawn(self: Arc<Self>, clock: Clock) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.run_due(clock.now_ms()).await {
                    Ok(r) if i64::try_from(r.claimed).unwrap_or(0) >= self.policy.batch => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!("webhook deliveries: {e}"),
                }
                tokio::time::sleep(POLL).await;
            }
        })
    }
}

/// At most [`SNIPPET_BYTES`] of an answer's body, control characters
/// replaced (the rest is never read).
async fn snippet(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < SNIPPET_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(SNIPPET_BYTES - bytes.len());
                bytes.extend_from_slice(&chunk[..take]);
            }
            _ => break,
        }
    }
    String::from_utf8_lossy(&bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// A failed request in words, without its URL (listed elsewhere).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut out = what.to_owned();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_full_jitter() {
        let b = Backoff::DEFAULT;
        assert_eq!(b.delay_ms(1, u64::MAX), u64::MAX % 30_001);
        assert_eq!(b.delay_ms(1, 30_000), 30_000);
        assert_eq!(b.delay_ms(2, 60_000), 60_000);
        assert_eq!(b.delay_ms(2, 60_001), 1_000);
        assert_eq!(b.delay_ms(3, 0), 1_000);
        assert_eq!(b.delay_ms(40, 6 * 3_600_000), 6 * 3_600_000);
        assert_eq!(b.delay_ms(u32::MAX, 7 * 3_600_000), 3_600_000 - 1);
        for n in 1..80 {
            for r in [0, 1, 12_345, u64::MAX / 3, u64::MAX] {
                let d = b.delay_ms(n, r);
                assert!((1_000..=6 * 3_600_000).contains(&d), "{n} {r} {d}");
            }
        }
    }
}
