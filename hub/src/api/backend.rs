//! The hub's store as the shared routes ask it: [`HubBackend`] implements
//! `sentinel_http::api::Backend` over [`PgStore`] (async, so each answer
//! is the store's, awaited), with the hub's sensor ingest behind the push
//! route and a replaceable clock.
//!
//! Never does: SQL (the store's), or decide who may ask what (the shared
//! routes check the caller).

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use sentinel_http::api::{Backend, PasswordRecord, PushRefusal, RuleTrigger};
use sentinel_http::clock::Clock;
use sentinel_http::people::lockout_ms;
use sentinel_http::Problem;
use sentinel_schema::query::{
    ClusterQuery, Clusters, EventPage, EventRecord, EventSearch, ReadingBucket, ReadingCursor,
    ReadingFilter, ReadingRow, SensorSeen,
};
use sentinel_schema::{AuthorId, EventId, PersonRole};
use serde_json::Value;

use crate::sensors::{IngestError, SensorIngest};
use crate::store::{PgStore, StoreError};

/// A store that does not answer is a 503; the cause goes to the log, not
/// to the client.
impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        Problem::unavailable(&e)
    }
}

/// The common name of a DER certificate's subject.
pub(super) fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

/// The hub's backend of the shared routes.
pub struct HubBackend {
    store: PgStore,
    /// The hub's own key: its entries are `local` in an event's history.
    own: Option<AuthorId>,
    /// Sensor pushes; `None`: the push route answers 503.
    sensors: Option<Arc<SensorIngest>>,
    clock: Clock,
}

impl std::fmt::Debug for HubBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubBackend")
            .field("own", &self.own)
            .field("sensors", &self.sensors.is_some())
            .finish_non_exhaustive()
    }
}

impl HubBackend {
    /// Over `store`, the hub's key being `own`, on the system clock,
    /// without sensor pushes.
    pub fn new(store: PgStore, own: Option<AuthorId>) -> HubBackend {
        HubBackend {
            store,
            own,
            sensors: None,
            clock: Clock::system(),
        }
    }

    /// Takes sensor pushes through `sensors`.
    pub fn with_sensors(self, sensors: Arc<SensorIngest>) -> HubBackend {
        HubBackend {
            sensors: Some(sensors),
            ..self
        }
    }

    /// Reads `clock` instead of the system's (tests).
    pub fn with_clock(self, clock: Clock) -> HubBackend {
        HubBackend { clock, ..self }
    }
}

#[async_trait]
impl Backend for HubBackend {
    fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Ready when the database answers and every migration this binary
    /// knows is applied.
    async fn ready(&self) -> Result<(), Problem> {
        let missing = self.store.missing_migrations().await?;
        if !missing.is_empty() {
            return Err(Problem::not_ready(format!(
                "migrations not applied: {missing:?}"
            )));
        }
        Ok(())
    }

    /// Roles are read from the log on every request, so a role change, a
    /// logout or a disabled account takes effect on the next one.
    async fn signed_in(
        &self,
        token: [u8; 32],
        now_ms: u64,
    ) -> Result<Option<(String, PersonRole)>, Problem> {
        Ok(self.store.signed_in(&token, now_ms).await?)
    }

    async fn password(&self, name: &str) -> Result<Option<PasswordRecord>, Problem> {
        Ok(self
            .store
            .login_record(name)
            .await?
            .map(|r| PasswordRecord {
                hash: r.hash,
                disabled: r.disabled,
                failures: r.failures,
                locked_until_ms: r.locked_until_ms,
            }))
    }

    async fn open_session(
        &self,
        token: [u8; 32],
        name: &str,
        now_ms: u64,
        expires_ms: u64,
    ) -> Result<PersonRole, Problem> {
        self.store
            .insert_token(&token, name, now_ms, expires_ms)
            .await?;
        Ok(self.store.role_of(name).await?)
    }

    async fn close_session(&self, token: [u8; 32]) -> Result<(), Problem> {
        Ok(self.store.revoke_token(&token).await?)
    }

    async fn login_failed(&self, name: &str, now_ms: u64) -> Result<(), Problem> {
        self.store.login_failed(name, now_ms, lockout_ms).await?;
        Ok(())
    }

    async fn login_succeeded(&self, name: &str) -> Result<(), Problem> {
        Ok(self.store.login_succeeded(name).await?)
    }

    async fn set_password(
        &self,
        name: &str,
        hash: String,
        keep: [u8; 32],
    ) -> Result<bool, Problem> {
        Ok(self.store.set_password(name, &hash, Some(&keep)).await?)
    }

    async fn search(&self, search: EventSearch) -> Result<EventPage, Problem> {
        Ok(self.store.search_events(&search).await?)
    }

    async fn clusters(&self, query: ClusterQuery) -> Result<Clusters, Problem> {
        Ok(self.store.clusters(&query).await?)
    }

    async fn event(&self, id: EventId) -> Result<Option<EventRecord>, Problem> {
        Ok(self.store.event_record(&id, self.own.as_ref()).await?)
    }

    async fn push(&self, body: Bytes, now_ms: u64) -> Result<Value, PushRefusal> {
        let Some(ingest) = &self.sensors else {
            return Err(PushRefusal::store_failed(
                &"sensor pushes are not served by this process",
            ));
        };
        match ingest.push(body.to_vec(), now_ms).await {
            Ok(ingested) => serde_json::to_value(&ingested.accepted.report)
                .map_err(|e| PushRefusal::store_failed(&e)),
            Err(IngestError::Push(e)) => Err(PushRefusal::from(&e)),
            Err(e) => Err(PushRefusal::store_failed(&e)),
        }
    }

    async fn readings(
        &self,
        filter: ReadingFilter,
        after: Option<ReadingCursor>,
        limit: usize,
    ) -> Result<Vec<ReadingRow>, Problem> {
        Ok(self.store.readings(&filter, after, limit).await?)
    }

    async fn reading_buckets(
        &self,
        filter: ReadingFilter,
        bucket_ms: u64,
        max_buckets: u64,
    ) -> Result<Option<Vec<ReadingBucket>>, Problem> {
        Ok(self
            .store
            .reading_buckets(&filter, bucket_ms, max_buckets)
            .await?)
    }

    /// The hub stores only certificates that verified against the
    /// deployment CA, so a stored certificate's name is vouched for.
    async fn sensors(&self) -> Result<Vec<(SensorSeen, Option<String>)>, Problem> {
        Ok(self
            .store
            .sensors_seen()
            .await?
            .into_iter()
            .map(|s| {
                let name = s.certificate_der.as_deref().and_then(common_name);
                (s, name)
            })
            .collect())
    }

    async fn rule_triggers(
        &self,
        sensor: Option<AuthorId>,
        limit: usize,
    ) -> Result<Vec<RuleTrigger>, Problem> {
        Ok(self
            .store
            .rule_triggers(sensor.as_ref(), limit)
            .await?
            .into_iter()
            .map(|t| RuleTrigger {
                sensor: t.sensor,
                rule: t.rule,
                event: t.event,
                entry: t.entry,
                reading: t.reading,
                measured_ms: t.measured_ms,
                raised_ms: t.raised_ms,
            })
            .collect())
    }
}
