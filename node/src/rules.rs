//! Sensor rules on the node: readings in, incident events out.
//!
//! **Who evaluates.** Only the receiver that takes a reading directly from
//! its sensor — an HTTP push, or a sync session whose peer is that sensor
//! — runs the rules on it; readings relayed by another node or a hub never
//! raise anything here. So one crossing raises one event in the whole
//! deployment, however many stores the reading reaches. (Callers decide
//! this: `Node::raise_from_readings` evaluates whatever it is given.)
//!
//! **What is raised.** For each trigger that the de-duplication window
//! admits, the node reports an event itself — an `event_change` entry
//! signed by the node, actor `rule:<id>`, category `sensor_alert`, the
//! rule's severity, the trigger as title — at the reading's location, else
//! the rule's `location`, else the sensor's last known location (a trigger
//! with none of these is skipped with a warning). Its description names
//! the reading (entry id, sensor, seq, measured time).
//!
//! **Across restarts.** Each raised event's (rule, sensor, measured time)
//! is written to `rule_events` in the transaction that commits the event,
//! and loaded into the [`Dedup`] when the rules are enabled.
//!
//! The engine decides; its [`RuleHost`] (the node) reads the log and
//! commits what is raised, so this module never signs or writes.

use rand_core::{OsRng, RngCore};
use sentinel_schema::rules::config::RulesConfig;
use sentinel_schema::rules::{Dedup, Trigger};
use sentinel_schema::{AuthorId, Body, EventId, NewEvent, Point, SensorReading, SignedEntry};

use crate::error::NodeError;
use crate::store::local::RuleEventRecord;
use crate::store::Store;

/// The category of the events rules raise.
pub use sentinel_schema::rules::ALERT_CATEGORY as CATEGORY;

/// What the engine asks of the node it runs in.
pub trait RuleHost {
    /// The entry at `seq` of `author`'s chain, if held.
    fn entry_at(&self, author: &AuthorId, seq: u64) -> Result<Option<SignedEntry>, NodeError>;

    /// Where `sensor`'s newest located reading was, with the views caught
    /// up first.
    fn sensor_location(&mut self, sensor: &AuthorId) -> Result<Option<Point>, NodeError>;

    /// Reports `new` as `event`, acting as `actor`, committed with
    /// `record`; the entry committed.
    fn raise(
        &mut self,
        event: EventId,
        new: &NewEvent,
        actor: &str,
        record: &RuleEventRecord,
        now_ms: u64,
    ) -> Result<SignedEntry, NodeError>;
}

/// A rule set and its de-duplication state.
#[derive(Debug)]
pub struct RuleEngine {
    config: RulesConfig,
    dedup: Dedup,
}

/// An event a rule raised.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Raised {
    pub rule: String,
    pub event: String,
    /// The node's entry that created it.
    pub entry: String,
    /// The reading that triggered it.
    pub reading: String,
}

fn dedup_from(config: &RulesConfig, store: &Store) -> Result<Dedup, NodeError> {
    let mut dedup = Dedup::new(config.window_ms)
        .map_err(|e| NodeError::Rules(format!("de-duplication window: {e}")))?;
    for (rule, sensor, measured_ms) in store.rule_events()? {
        dedup.remember(&rule, sensor, measured_ms);
    }
    Ok(dedup)
}

impl RuleEngine {
    /// The rules of `config`, with the window state `store` remembers.
    pub fn load(config: RulesConfig, store: &Store) -> Result<RuleEngine, NodeError> {
        let dedup = dedup_from(&config, store)?;
        Ok(RuleEngine { config, dedup })
    }

    pub fn config(&self) -> &RulesConfig {
        &self.config
    }

    /// Whether any rule is set.
    pub fn is_empty(&self) -> bool {
        self.config.rules.is_empty()
    }

    /// Forgets the window state for what `store` recorded: after a failed
    /// run, an event may have failed to commit after the window admitted
    /// it.
    pub fn reload(&mut self, store: &Store) {
        if let Ok(dedup) = dedup_from(&self.config, store) {
            self.dedup = dedup;
        }
    }

    /// Runs the rules on `entries` (readings just taken from their sensor,
    /// in seq order per sensor; other kinds are skipped) and has `host`
    /// report an event for every trigger the window admits.
    pub fn run(
        &mut self,
        host: &mut impl RuleHost,
        entries: &[SignedEntry],
        now_ms: u64,
    ) -> Result<Vec<Raised>, NodeError> {
        let mut raised = Vec::new();
        if self.is_empty() {
            return Ok(raised);
        }
        let mut before: Option<&SignedEntry> = None;
        for e in entries {
            let Body::SensorReading(reading) = &e.entry().body else {
                continue;
            };
            let author = e.author();
            let previous = match before {
                Some(b) if b.author() == author && b.seq() + 1 == e.seq() => Some(b.clone()),
                _ if e.seq() > 1 => host.entry_at(&author, e.seq() - 1)?,
                _ => None,
            };
            before = Some(e);
            let previous = previous.as_ref().and_then(|p| match &p.entry().body {
                Body::SensorReading(r) => Some(r.clone()),
                _ => None,
            });
            for trigger in self.config.rules.evaluate(reading, previous.as_ref()) {
                // The window's test (`Dedup::admit`) without remembering
                // yet: only an event that is committed counts.
                if self
                    .dedup
                    .last(&trigger.rule, &author)
                    .is_some_and(|last| last.abs_diff(reading.measured_ms) < self.dedup.window_ms())
                {
                    continue;
                }
                let location = match trigger.placed(reading, &self.config.locations) {
                    Some(p) => Some(p),
                    None => host.sensor_location(&author)?,
                };
                let Some(location) = location else {
                    tracing::warn!(
                        rule = %trigger.rule,
                        sensor = %author.to_hex(),
                        seq = e.seq(),
                        "a sensor rule triggered, but neither the reading, the rule nor the sensor has a location: no event raised"
                    );
                    continue;
                };
                let one = raise_one(host, &trigger, e, reading, location, now_ms)?;
                self.dedup
                    .remember(&trigger.rule, author, reading.measured_ms);
                tracing::info!(
                    rule = %trigger.rule,
                    sensor = %author.to_hex(),
                    seq = e.seq(),
                    event = %one.event,
                    "a sensor rule raised an event"
                );
                raised.push(one);
            }
        }
        // No `forget_before`: sensors' clocks are unrelated, so one
        // sensor's newest reading says nothing about another's window; the
        // state is one number per rule and sensor.
        Ok(raised)
    }
}

/// Reports the event for one admitted trigger, recorded in `rule_events`
/// in the same transaction.
fn raise_one(
    host: &mut impl RuleHost,
    trigger: &Trigger,
    e: &SignedEntry,
    reading: &SensorReading,
    location: Point,
    now_ms: u64,
) -> Result<Raised, NodeError> {
    // Reported when it was measured: the node raises it as the reading
    // arrives from its sensor.
    let new = trigger.event(e, reading, location, reading.measured_ms);
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut id);
    let event = EventId(id);
    let rule = trigger.rule.clone();
    let record = RuleEventRecord {
        rule: rule.clone(),
        sensor: e.author(),
        measured_ms: reading.measured_ms,
        reading: e.id(),
        event,
    };
    let entry = host.raise(event, &new, &trigger.actor(), &record, now_ms)?;
    Ok(Raised {
        rule,
        event: event.to_hex(),
        entry: entry.id().to_hex(),
        reading: e.id().to_hex(),
    })
}
