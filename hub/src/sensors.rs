//! Sensors on the hub: readings pushed over HTTP (`POST
//! /api/v1/sensors/entries`, `docs/protocol.md` part 3) and the rules
//! that turn them into events.
//!
//! **Ingest.** [`SensorIngest::push`] runs `sentinel_sync::push::receive`
//! on a blocking thread over the hub's [`PgSyncStore`], against the same
//! trust anchor and revocations as the sync server (the CA list the
//! handle holds, and every hub's revocation entries). `receive` reads the
//! sensor's chain, then applies: pushes of one sensor are serialised in
//! this process (a lock per shard of authors), and the store's apply
//! takes the author's advisory lock, so a sync session relaying the same
//! entries at the same moment can only make the apply find them held —
//! which `receive` reports as `store_changed`; the push is then checked
//! again once, and answers `duplicate` (or a real `fork`), never a false
//! fork. Entries stored bump the sync server's relay (handed over by
//! `HubNet::sensor_ingest`): the projector (readings view, feed) and live
//! sessions wake as for a session's batch. A fork is kept as evidence by
//! `receive`; here it is logged (warn), counted in [`SENSOR_FORKS`], and
//! shown per sensor by `GET /api/v1/sensors`.
//!
//! **Rules.** Only the receiver that takes a reading from its sensor
//! evaluates rules — here, a push — never readings relayed by nodes, so
//! one crossing raises one event deployment-wide. [`SensorRules`]
//! evaluates each stored reading (with the sensor's previous one, for
//! geofences), passes each trigger through a [`Dedup`], and raises an
//! event for each admitted one: an `EventDoc::create` change in an
//! `event_change` entry the hub signs through its [`OwnChain`], with
//! actor `rule:<id>`, category [`CATEGORY`], the rule's severity, the
//! trigger as title and the reading named in the description. Its
//! location is the reading's, else the rule's fallback location, else the
//! sensor's last known one; with none the trigger is skipped (warn). Each
//! raised event is recorded in `sensor_alerts` and read back at start
//! ([`SensorRules::new`]), so a restart inside the window raises nothing
//! twice.
//!
//! A sensor that syncs with the hub in a session of its own has its
//! readings through the same rules (`crate::sensor_peer`).
//!
//! Never does: evaluate readings that arrived by sync from nodes; know
//! the sync server (it is handed the trust, revocations and relay it
//! shares with it).

use std::collections::BTreeMap;
use std::sync::Arc;

use sentinel_certs::RevocationHandle;
use sentinel_schema::rules::config::RulesConfig;
use sentinel_schema::rules::{Dedup, RuleError, RuleSet, Trigger};
use sentinel_schema::{
    AuthorId, Body, EntryId, EventChange, EventDoc, EventId, Point, SensorReading, SignedEntry,
};
use sentinel_sync::ca_trust::CaTrust;
use sentinel_sync::push::{self, Accepted, PushError, MAX_FUTURE_MS};
use sentinel_sync::Revocations;
use tokio::runtime::Handle;
use tokio::sync::{watch, Mutex};

use crate::own::OwnChain;
use crate::store::{PgStore, PgSyncStore, StoreError};

/// Forks of sensor chains seen in pushes (each kept as evidence).
pub const SENSOR_FORKS: &str = "sentinel_sensor_forks_total";
/// Entries sensors pushed that the hub stored.
pub const SENSOR_ENTRIES: &str = "sentinel_hub_sensor_entries_stored_total";
/// Events the hub's rules raised.
pub const SENSOR_ALERTS: &str = "sentinel_hub_sensor_alerts_total";

/// The category of events raised by rules.
pub use sentinel_schema::rules::ALERT_CATEGORY as CATEGORY;

/// Shards of the per-author push lock.
const SHARDS: usize = 64;

/// Why a push failed (the refusals of `push::receive`, or the blocking
/// task that ran it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    #[error(transparent)]
    Push(#[from] PushError<StoreError>),
    /// The blocking task running the push panicked or was cancelled.
    #[error("the push task failed: {0}")]
    Task(String),
}

/// Why the rules could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fallback location names no rule of the set.
    #[error("a location is given for rule {0:?}, which the rule set does not hold")]
    UnknownRule(String),
}

/// Why raising one event failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
enum RaiseError {
    #[error("making the event: {0}")]
    Event(#[from] sentinel_schema::EventError),
    #[error("signing it: {0}")]
    Own(#[from] crate::own::OwnChainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the own chain wrote no entry")]
    NoEntry,
}

/// The HTTP face of sensors: checks and stores pushes.
pub struct SensorIngest {
    store: PgStore,
    runtime: Handle,
    trust: Arc<CaTrust>,
    revocations: RevocationHandle,
    relay: Arc<watch::Sender<u64>>,
    rules: Option<Arc<SensorRules>>,
    locks: Vec<Mutex<()>>,
    max_future_ms: u64,
}

impl std::fmt::Debug for SensorIngest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SensorIngest")
            .field("rules", &self.rules.is_some())
            .finish_non_exhaustive()
    }
}

/// An accepted push, and the events its readings raised.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub accepted: Accepted,
    pub raised: Vec<EventId>,
}

impl SensorIngest {
    /// Pushes into `store`, checked against `trust` and `revocations` (the
    /// sync server's, so pushes and sessions trust and revoke alike),
    /// bumping `relay` when entries are stored (waking the projector and
    /// live sessions). Must be called inside a multi-thread tokio runtime
    /// (the one the store's pool runs on).
    pub fn new(
        store: PgStore,
        trust: Arc<CaTrust>,
        revocations: RevocationHandle,
        relay: Arc<watch::Sender<u64>>,
    ) -> SensorIngest {
        SensorIngest {
            store,
            runtime: Handle::current(),
            trust,
            revocations,
            relay,
            rules: None,
            locks: (0..SHARDS).map(|_| Mutex::new(())).collect(),
            max_future_ms: MAX_FUTURE_MS,
        }
    }

    /// Evaluates `rules` on every reading pushed from now on.
    pub fn with_rules(mut self, rules: Arc<SensorRules>) -> SensorIngest {
        self.rules = Some(rules);
        self
    }

    /// Checks `body` and stores it, all or nothing (see the module docs).
    pub async fn push(&self, body: Vec<u8>, now_ms: u64) -> Result<Ingested, IngestError> {
        let shard = author_of_push(&body).map_or(0, |a| usize::from(a.0[0]) % SHARDS);
        let body = Arc::new(body);
        let accepted = {
            let _serialised = self.locks[shard].lock().await;
            match self.receive(body.clone(), now_ms).await {
                // A session applied some of these entries in between:
                // check again, now against what it stored.
                Err(IngestError::Push(PushError::StoreChanged(_))) => {
                    self.receive(body, now_ms).await
                }
                other => other,
            }
        };
        let accepted = match accepted {
            Ok(a) => a,
            Err(IngestError::Push(e)) if e.is_fork() => {
                metrics::counter!(SENSOR_FORKS).increment(1);
                if let PushError::Refused {
                    author, seq, id, ..
                } = &e
                {
                    tracing::warn!(
                        sensor = %author,
                        seq,
                        entry = %id,
                        "sensor fork: another entry is held at this seq; kept as evidence"
                    );
                }
                return Err(IngestError::Push(e));
            }
            Err(e) => return Err(e),
        };
        if !accepted.stored.is_empty() {
            metrics::counter!(SENSOR_ENTRIES).increment(accepted.stored.len() as u64);
            self.relay.send_modify(|n| *n = n.wrapping_add(1));
        }
        let raised = match &self.rules {
            Some(rules) => rules.evaluate(&accepted.stored, now_ms).await,
            None => Vec::new(),
        };
        Ok(Ingested { accepted, raised })
    }

    async fn receive(&self, body: Arc<Vec<u8>>, now_ms: u64) -> Result<Accepted, IngestError> {
        let mut store = PgSyncStore::new(self.store.clone(), self.runtime.clone());
        let trust = self.trust.clone();
        let revocations = Revocations::from(&*self.revocations.current());
        let max_future_ms = self.max_future_ms;
        tokio::task::spawn_blocking(move || {
            push::receive(
                &mut store,
                trust.as_ref(),
                &revocations,
                now_ms,
                max_future_ms,
                &body,
            )
        })
        .await
        .map_err(|e| IngestError::Task(e.to_string()))?
        .map_err(IngestError::Push)
    }
}

/// The author of a push's first entry, if the body decodes that far.
fn author_of_push(body: &[u8]) -> Option<AuthorId> {
    let push = push::decode(body).ok()?;
    let first = push.entries.into_iter().next()?;
    SignedEntry::from_bytes(first).ok().map(|e| e.author())
}

/// The hub's rules, their de-duplication state, and the chain events are
/// signed into.
pub struct SensorRules {
    rules: RuleSet,
    /// Per rule id: where its events are placed when the reading has no
    /// location.
    locations: BTreeMap<String, Point>,
    dedup: Mutex<Dedup>,
    own: Arc<OwnChain>,
}

impl std::fmt::Debug for SensorRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SensorRules")
            .field("rules", &self.rules.rules().count())
            .finish_non_exhaustive()
    }
}

impl SensorRules {
    /// The rules of a rules file (`sentinel_schema::rules::config`).
    pub async fn from_config(
        config: RulesConfig,
        own: Arc<OwnChain>,
    ) -> Result<SensorRules, RulesError> {
        SensorRules::new(config.rules, config.window_ms, config.locations, own).await
    }

    /// `rules` with de-duplication over `window_ms` of measured time,
    /// restored from the alerts the hub raised before.
    pub async fn new(
        rules: RuleSet,
        window_ms: u64,
        locations: BTreeMap<String, Point>,
        own: Arc<OwnChain>,
    ) -> Result<SensorRules, RulesError> {
        if let Some(id) = locations
            .keys()
            .find(|id| !rules.rules().any(|r| &r.id == *id))
        {
            return Err(RulesError::UnknownRule(id.clone()));
        }
        let mut dedup = Dedup::new(window_ms)?;
        for alert in own.store().latest_sensor_alerts().await? {
            dedup.remember(&alert.rule, alert.sensor, alert.measured_ms);
        }
        Ok(SensorRules {
            rules,
            locations,
            dedup: Mutex::new(dedup),
            own,
        })
    }

    /// Evaluates `stored` (one sensor's entries just stored, ascending
    /// seq) and raises an event per admitted trigger. Failures are logged
    /// (the readings are stored whatever happens here). Returns the events
    /// raised.
    pub async fn evaluate(&self, stored: &[SignedEntry], now_ms: u64) -> Vec<EventId> {
        let Some(first) = stored.first() else {
            return Vec::new();
        };
        if self.rules.is_empty() {
            return Vec::new();
        }
        let store = self.own.store();
        let sensor = first.author();
        let mut previous: Option<SensorReading> = None;
        if first.seq() > 1 {
            match store
                .entries_after(&sensor, first.seq() - 2, 1, usize::MAX)
                .await
            {
                Ok(held) => previous = held.into_iter().next().and_then(reading_of),
                Err(e) => tracing::error!(sensor = %sensor, "rules: the previous reading: {e}"),
            }
        }
        let mut raised = Vec::new();
        let mut dedup = self.dedup.lock().await;
        for e in stored {
            let Some(reading) = reading_of(e.clone()) else {
                continue;
            };
            for trigger in self.rules.evaluate(&reading, previous.as_ref()) {
                let before = dedup.clone();
                if !dedup.admit(&trigger.rule, sensor, reading.measured_ms) {
                    continue;
                }
                match self.raise(e, &reading, &trigger, now_ms).await {
                    Ok(Some(event)) => raised.push(event),
                    Ok(None) => *dedup = before,
                    Err(err) => {
                        *dedup = before;
                        tracing::error!(
                            rule = %trigger.rule,
                            sensor = %sensor,
                            reading = %e.id(),
                            "rules: raising the event failed: {err}"
                        );
                    }
                }
            }
            previous = Some(reading);
        }
        raised
    }

    /// Raises the event of `trigger`; `None` when it has no location.
    async fn raise(
        &self,
        e: &SignedEntry,
        reading: &SensorReading,
        trigger: &Trigger,
        now_ms: u64,
    ) -> Result<Option<EventId>, RaiseError> {
        let store = self.own.store();
        let sensor = e.author();
        let location = match trigger.placed(reading, &self.locations) {
            Some(p) => Some(p),
            None => store.last_location(&sensor).await?,
        };
        let Some(location) = location else {
            tracing::warn!(
                rule = %trigger.rule,
                sensor = %sensor,
                reading = %e.id(),
                "rules: a reading triggered, but neither it, the rule nor the sensor has a \
                 location; no event raised"
            );
            return Ok(None);
        };
        let event = event_id(&e.id(), &trigger.rule);
        // Reported when the hub raises it (the node reports its own at the
        // reading's measured time).
        let new = trigger.event(e, reading, location, now_ms);
        let (_, change) = EventDoc::create(&self.own.author(), &new, now_ms)?;
        let actor = trigger.actor();
        let entries = self
            .own
            .append(
                vec![Body::EventChange(EventChange { event, change })],
                Some(&actor),
                now_ms,
            )
            .await?;
        let entry = entries.last().ok_or(RaiseError::NoEntry)?;
        store
            .record_sensor_alert(
                &trigger.rule,
                &sensor,
                reading.measured_ms,
                &e.id(),
                &event,
                &entry.id(),
                now_ms,
            )
            .await?;
        metrics::counter!(SENSOR_ALERTS).increment(1);
        tracing::info!(
            rule = %trigger.rule,
            sensor = %sensor,
            reading = %e.id(),
            event = %event,
            "rules: event raised"
        );
        Ok(Some(event))
    }
}

fn reading_of(e: SignedEntry) -> Option<SensorReading> {
    match &e.entry().body {
        Body::SensorReading(r) => Some(r.clone()),
        _ => None,
    }
}

/// The event a rule raises from a reading: the first 16 bytes of the
/// reading's id mixed with a hash of the rule id, so the same reading and
/// rule always name the same event, and two rules never share one.
fn event_id(reading: &EntryId, rule: &str) -> EventId {
    // FNV-1a, twice over with two offsets: 128 bits of the rule id.
    let fnv = |basis: u64| {
        rule.bytes().fold(basis, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let mut mix = [0u8; 16];
    mix[..8].copy_from_slice(&fnv(0xcbf2_9ce4_8422_2325).to_be_bytes());
    mix[8..].copy_from_slice(&fnv(0x6c62_272e_07bb_0142).to_be_bytes());
    let mut id = [0u8; 16];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = reading.0[i] ^ mix[i];
    }
    EventId(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_differ_per_rule_and_reading_and_are_stable() {
        let a = EntryId([1; 32]);
        let b = EntryId([2; 32]);
        assert_eq!(event_id(&a, "flood"), event_id(&a, "flood"));
        assert_ne!(event_id(&a, "flood"), event_id(&a, "flood2"));
        assert_ne!(event_id(&a, "flood"), event_id(&b, "flood"));
    }
}
