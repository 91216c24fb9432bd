//! The event a rule raises from a reading, the same on node and hub: its
//! title (the trigger), description (the reading it links back to),
//! category [`ALERT_CATEGORY`], the rule's severity, who raises it
//! (`rule:<id>`) and where it is placed (the reading's location, else
//! the rule's).
//!
//! Never does: decide whether to raise (that is [`super::Dedup`]'s), or
//! look anything up: the sensor's last known location, asked when neither
//! the reading nor the rule has one, is the host's to find.

use std::collections::BTreeMap;

use super::Trigger;
use crate::body::SensorReading;
use crate::entry::SignedEntry;
use crate::event::NewEvent;
use crate::geo::Point;
use crate::ids::{AuthorId, EntryId};

/// The category of the incident events rules raise.
pub const ALERT_CATEGORY: &str = "sensor_alert";

impl Trigger {
    /// The raised event's title: this trigger's summary, cut to the title
    /// limit on a character boundary.
    pub fn event_title(&self) -> String {
        let mut t = self.to_string();
        let max = crate::limits::MAX_TITLE_BYTES;
        if t.len() > max {
            let mut end = max;
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            t.truncate(end);
        }
        t
    }

    /// Who the raised event's entry acts for: `rule:<id>`.
    pub fn actor(&self) -> String {
        format!("rule:{}", self.rule)
    }

    /// Where the raised event is placed: `reading`'s location, else the
    /// rule's own from `locations` (rule id → place, as a rules file gives
    /// it); `None` leaves the sensor's last known location to the caller.
    pub fn placed(
        &self,
        reading: &SensorReading,
        locations: &BTreeMap<String, Point>,
    ) -> Option<Point> {
        reading
            .location
            .or_else(|| locations.get(&self.rule).copied())
    }

    /// The event this trigger raises from `reading` (the body of `entry`),
    /// at `location`, reported at `reported_ms`.
    pub fn event(
        &self,
        entry: &SignedEntry,
        reading: &SensorReading,
        location: Point,
        reported_ms: u64,
    ) -> NewEvent {
        NewEvent {
            title: self.event_title(),
            description: event_description(&entry.id(), &entry.author(), entry.seq(), reading),
            category: ALERT_CATEGORY.to_owned(),
            severity: self.severity,
            location,
            reported_ms,
        }
    }
}

/// The raised event's description: names the reading that triggered it
/// (its entry id, sensor and seq) and what it measured, so the event links
/// back to the reading in the log.
pub fn event_description(
    entry: &EntryId,
    sensor: &AuthorId,
    seq: u64,
    reading: &SensorReading,
) -> String {
    let values: Vec<String> = reading
        .values
        .iter()
        .map(|v| {
            if v.unit.is_empty() {
                format!("{} {}", v.name, v.value)
            } else {
                format!("{} {} {}", v.name, v.value, v.unit)
            }
        })
        .collect();
    format!(
        "Raised by a sensor rule from reading {entry} (sensor {sensor}, seq {seq}, {} measured at {} ms since 1970): {}.",
        reading.kind,
        reading.measured_ms,
        values.join(", ")
    )
}
