//! What the shared routes ask of a server: the seam between the HTTP
//! contract and each server's store.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use sentinel_schema::query::{
    ClusterQuery, Clusters, EventPage, EventRecord, EventSearch, ReadingBucket, ReadingCursor,
    ReadingFilter, ReadingRow, SensorSeen,
};
use sentinel_schema::{AuthorId, EntryId, EventId, PersonRole};
use sentinel_sync::push::PushError;
use serde_json::Value;

use crate::clock::Clock;
use crate::sensor::STORE_FAILED;
use crate::Problem;

/// An account's password hash, whether it is disabled, and its failed
/// logins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordRecord {
    /// An argon2id PHC string.
    pub hash: String,
    pub disabled: bool,
    /// Failed logins in a row since the last success.
    pub failures: u32,
    /// Logins are refused until then (Unix ms; 0: not locked).
    pub locked_until_ms: u64,
}

/// A sensor rule that fired on this server: the newest event `rule`
/// raised from `sensor`'s readings (`GET /api/v1/sensors/alerts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTrigger {
    pub sensor: AuthorId,
    /// The rule's id in the rules file.
    pub rule: String,
    /// The event raised.
    pub event: EventId,
    /// The server's own entry that reported it.
    pub entry: EntryId,
    /// The triggering reading: the entry that carried it, when it was
    /// measured (Unix ms).
    pub reading: EntryId,
    pub measured_ms: u64,
    /// When the server raised it, Unix ms.
    pub raised_ms: u64,
}

/// A refused sensor push as `docs/protocol.md` 3.7 names it (from a
/// `sentinel_sync::push::PushError`, or [`PushRefusal::store_failed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRefusal {
    /// The HTTP status (`PushError::status`).
    pub status: u16,
    /// The stable code (`PushError::code`).
    pub code: &'static str,
    pub detail: String,
    /// The entry at fault, by its place in the push.
    pub index: Option<usize>,
    /// Its seq and the receiver's head seq for the author, when one entry
    /// was refused.
    pub seqs: Option<(u64, u64)>,
}

impl PushRefusal {
    /// A push refused for a reason of the receiver's (503, `store_failed`):
    /// the cause is the operator's business and goes to the log; the sensor
    /// is told to retry.
    pub fn store_failed(cause: &dyn std::fmt::Display) -> PushRefusal {
        tracing::error!(error = %cause, "taking a sensor push failed");
        PushRefusal {
            status: 503,
            code: "store_failed",
            detail: STORE_FAILED.to_owned(),
            index: None,
            seqs: None,
        }
    }
}

/// A push `sentinel_sync::push` refused, as the route answers it.
impl<E: std::error::Error + 'static> From<&PushError<E>> for PushRefusal {
    fn from(e: &PushError<E>) -> PushRefusal {
        if let PushError::Store(cause) = e {
            return PushRefusal::store_failed(cause);
        }
        PushRefusal {
            status: e.status(),
            code: e.code(),
            detail: e.to_string(),
            index: e.index(),
            seqs: e.seqs(),
        }
    }
}

/// A server's store, as the shared routes ask it. Errors are answers
/// already ([`Problem`]): a store that fails says 503 and logs why.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The clock this server reads.
    fn clock(&self) -> &Clock;

    /// `/readyz`: `Ok` when the store answers and its schema is the one
    /// this build needs; otherwise a 503 saying what is not ready.
    async fn ready(&self) -> Result<(), Problem>;

    /// The account a live token signs in and that person's role now;
    /// `None` when the token is unknown, expired, revoked or its account
    /// disabled.
    async fn signed_in(
        &self,
        token: [u8; 32],
        now_ms: u64,
    ) -> Result<Option<(String, PersonRole)>, Problem>;

    /// The password record of an account, if it exists.
    async fn password(&self, name: &str) -> Result<Option<PasswordRecord>, Problem>;

    /// Keeps a new token's digest for `name` until `expires_ms`; the
    /// person's role now.
    async fn open_session(
        &self,
        token: [u8; 32],
        name: &str,
        now_ms: u64,
        expires_ms: u64,
    ) -> Result<PersonRole, Problem>;

    /// Revokes a token.
    async fn close_session(&self, token: [u8; 32]) -> Result<(), Problem>;

    /// Counts a failed login (or a wrong current password) of `name` at
    /// `now_ms`, in the store, and locks the account for
    /// `crate::people::lockout_ms` of its failures in a row. Nothing for a
    /// name no account has.
    async fn login_failed(&self, name: &str, now_ms: u64) -> Result<(), Problem>;

    /// A login of `name` succeeded: its failures are forgotten.
    async fn login_succeeded(&self, name: &str) -> Result<(), Problem>;

    /// Sets `name`'s password hash (its failures forgotten) and revokes
    /// every token of the account but `keep`; `false` when there is no
    /// such account.
    async fn set_password(&self, name: &str, hash: String, keep: [u8; 32])
        -> Result<bool, Problem>;

    /// A page of events, in list order.
    async fn search(&self, search: EventSearch) -> Result<EventPage, Problem>;

    /// The events a filter finds, grouped on the query's grid (snapped
    /// first when it says so), at most `query.limit` clusters, the largest
    /// first.
    async fn clusters(&self, query: ClusterQuery) -> Result<Clusters, Problem>;

    /// One event in full; `None` when this server does not know it.
    async fn event(&self, id: EventId) -> Result<Option<EventRecord>, Problem>;

    /// Takes a sensor push (`docs/protocol.md` part 3): verifies and
    /// commits it, answering the push report (3.6) as JSON.
    async fn push(&self, body: Bytes, now_ms: u64) -> Result<Value, PushRefusal>;

    /// A page of reading values after `after`, at most `limit`.
    async fn readings(
        &self,
        filter: ReadingFilter,
        after: Option<ReadingCursor>,
        limit: usize,
    ) -> Result<Vec<ReadingRow>, Problem>;

    /// Readings downsampled into buckets of `bucket_ms`; `None` when one
    /// series would span more than `max_buckets`.
    async fn reading_buckets(
        &self,
        filter: ReadingFilter,
        bucket_ms: u64,
        max_buckets: u64,
    ) -> Result<Option<Vec<ReadingBucket>>, Problem>;

    /// Every sensor this server holds readings of, each with the common
    /// name of its certificate when the deployment CA vouches for it.
    async fn sensors(&self) -> Result<Vec<(SensorSeen, Option<String>)>, Problem>;

    /// The rules this server's sensor rules fired: per rule and sensor the
    /// newest trigger (only `sensor`'s, if given), newest `raised_ms`
    /// first (then rule, then sensor), at most `limit`.
    async fn rule_triggers(
        &self,
        sensor: Option<AuthorId>,
        limit: usize,
    ) -> Result<Vec<RuleTrigger>, Problem>;
}

/// A backend behind an `Arc`, as [`super::Api`] keeps it.
pub type BoxedBackend = Arc<dyn Backend>;
