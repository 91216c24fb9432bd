//! Sensor rules on the node: readings in, incident events out.
//!
//! **Who evaluates.** Only the receiver that takes a reading directly from
//! its sensor — an HTTP push, or a sync session whose peer is that sensor
//! — runs the rules on it; readings relayed by another node or a hub never
//! raise anything here. So one crossing raises one event in the whole
//! deployment, however many stores the reading reaches. (Callers decide
//! this: [`Node::raise_from_readings`] evaluates whatever it is given.)
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

use rand_core::{OsRng, RngCore};
use sentinel_schema::rules::config::RulesConfig;
use sentinel_schema::rules::{Dedup, Trigger};
use sentinel_schema::{
    AuthorId, Body, EventChange, EventDoc, EventId, NewEvent, Point, SensorReading, SignedEntry,
};
use sentinel_sync::SyncStore;

use crate::node::{Node, NodeError};
use crate::store::readings::record_rule_event;
use crate::store::Store;

/// The category of the events rules raise.
pub use sentinel_schema::rules::ALERT_CATEGORY as CATEGORY;

/// A rule set and its de-duplication state.
#[derive(Debug)]
pub struct RuleEngine {
    config: RulesConfig,
    dedup: Dedup,
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
}

fn dedup_from(config: &RulesConfig, store: &Store) -> Result<Dedup, NodeError> {
    let mut dedup = Dedup::new(config.window_ms)
        .map_err(|e| NodeError::Rules(format!("de-duplication window: {e}")))?;
    for (rule, sensor, measured_ms) in store.rule_events()? {
        dedup.remember(&rule, sensor, measured_ms);
    }
    Ok(dedup)
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

impl Node {
    /// Turns on the sensor rules of `config` for readings this node takes
    /// from sensors directly, with the de-duplication state the store
    /// remembers.
    pub fn enable_rules(&mut self, config: RulesConfig) -> Result<(), NodeError> {
        self.rules = Some(RuleEngine::load(config, self.store())?);
        Ok(())
    }

    /// Whether rules are enabled.
    pub fn has_rules(&self) -> bool {
        self.rules
            .as_ref()
            .is_some_and(|r| !r.config.rules.is_empty())
    }

    /// Runs the rules on `entries` (readings just taken from their sensor,
    /// in seq order per sensor; other kinds are skipped) and reports an
    /// event for every trigger the window admits.
    pub fn raise_from_readings(
        &mut self,
        entries: &[SignedEntry],
        now_ms: u64,
    ) -> Result<Vec<Raised>, NodeError> {
        let Some(mut engine) = self.rules.take() else {
            return Ok(Vec::new());
        };
        let result = self.raise_with(&mut engine, entries, now_ms);
        if result.is_err() {
            // An event may have failed to commit after the window admitted
            // it: start again from what the store recorded.
            if let Ok(dedup) = dedup_from(&engine.config, self.store()) {
                engine.dedup = dedup;
            }
        }
        self.rules = Some(engine);
        result
    }

    fn raise_with(
        &mut self,
        engine: &mut RuleEngine,
        entries: &[SignedEntry],
        now_ms: u64,
    ) -> Result<Vec<Raised>, NodeError> {
        let mut raised = Vec::new();
        if engine.config.rules.is_empty() {
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
                _ if e.seq() > 1 => self
                    .store()
                    .entries_after(&author, e.seq() - 2, 1, usize::MAX)?
                    .into_iter()
                    .next()
                    .filter(|p| p.seq() + 1 == e.seq()),
                _ => None,
            };
            before = Some(e);
            let previous = previous.as_ref().and_then(|p| match &p.entry().body {
                Body::SensorReading(r) => Some(r.clone()),
                _ => None,
            });
            for trigger in engine.config.rules.evaluate(reading, previous.as_ref()) {
                // The window's test (`Dedup::admit`) without remembering
                // yet: only an event that is committed counts.
                if engine
                    .dedup
                    .last(&trigger.rule, &author)
                    .is_some_and(|last| {
                        last.abs_diff(reading.measured_ms) < engine.dedup.window_ms()
                    })
                {
                    continue;
                }
                let location = match reading.location {
                    Some(p) => Some(p),
                    None => match engine.config.locations.get(&trigger.rule) {
                        Some(p) => Some(*p),
                        None => {
                            // The sensors view holds the last location once
                            // it has caught up with the log.
                            self.catch_up_views()?;
                            self.store().sensor_location(&author)?
                        }
                    },
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
                let one = self.raise_one(&trigger, e, reading, location, now_ms)?;
                engine
                    .dedup
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

    /// Reports the event for one admitted trigger, and records it in
    /// `rule_events` in the same transaction.
    fn raise_one(
        &mut self,
        trigger: &Trigger,
        e: &SignedEntry,
        reading: &SensorReading,
        location: Point,
        now_ms: u64,
    ) -> Result<Raised, NodeError> {
        let new = NewEvent {
            title: trigger.event_title(),
            description: sentinel_schema::rules::event_description(
                &e.id(),
                &e.author(),
                e.seq(),
                reading,
            ),
            category: CATEGORY.into(),
            severity: trigger.severity,
            location,
            reported_ms: reading.measured_ms,
        };
        let mut id = [0u8; 16];
        OsRng.fill_bytes(&mut id);
        let event = EventId(id);
        let (_, change) = EventDoc::create(&self.author(), &new, now_ms)?;
        let sensor: AuthorId = e.author();
        let reading_id = e.id();
        let rule = trigger.rule.clone();
        let actor = format!("rule:{rule}");
        let committed = self.commit_local_with(
            vec![Body::EventChange(EventChange { event, change })],
            Some(&actor),
            now_ms,
            |conn, rows| {
                for (_, entry) in rows {
                    record_rule_event(
                        conn,
                        &rule,
                        &sensor,
                        reading.measured_ms,
                        &reading_id,
                        &event,
                        &entry.id(),
                        now_ms,
                    )?;
                }
                Ok(())
            },
        )?;
        let entry = committed
            .first()
            .map(|c| c.id().to_hex())
            .unwrap_or_default();
        Ok(Raised {
            rule,
            event: event.to_hex(),
            entry,
            reading: reading_id.to_hex(),
        })
    }
}
