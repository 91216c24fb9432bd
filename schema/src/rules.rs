//! Rules that turn sensor readings into incidents: thresholds on a
//! reading's values and geofences around its location. Pure: node and
//! hub map their configuration to [`Rule`]s, build a [`RuleSet`] (which
//! validates every rule), call [`RuleSet::evaluate`] on each reading they
//! store, pass each [`Trigger`] through a [`Dedup`], and raise an event
//! for each one it admits.
//!
//! **De-duplication across restarts.** [`Dedup`] keeps, per rule and
//! sensor, the measured time of the last reading it admitted. That state
//! is not stored on its own: each event a rule raises records the rule
//! id, the sensor (author) and the reading's `measured_ms`, and on start
//! the node or hub calls [`Dedup::remember`] with, for each (rule,
//! sensor), the reading of the most recently raised event. The events are
//! in the log anyway, so nothing new is persisted and a restart raises no
//! second event within the window.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use ::geo::{Area, Coord, Intersects, LineString, Polygon, Validation};

use crate::body::SensorReading;
use crate::geo::{Point, PointError};
use crate::ids::AuthorId;
use crate::limits::{MAX_KIND_BYTES, MAX_SEVERITY, MAX_UNIT_BYTES, MIN_SEVERITY};

/// Longest rule id, in UTF-8 bytes.
pub const MAX_RULE_ID_BYTES: usize = 64;
/// Most corners of one geofence ring.
pub const MAX_RING_POINTS: usize = 10_000;

/// How a threshold compares a reading's value with its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    /// `>`
    Above,
    /// `>=`
    AtLeast,
    /// `<`
    Below,
    /// `<=`
    AtMost,
}

impl Comparison {
    pub const ALL: [Comparison; 4] = [
        Comparison::Above,
        Comparison::AtLeast,
        Comparison::Below,
        Comparison::AtMost,
    ];

    /// The operator as written in configuration: `>`, `>=`, `<`, `<=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::Above => ">",
            Comparison::AtLeast => ">=",
            Comparison::Below => "<",
            Comparison::AtMost => "<=",
        }
    }

    /// Whether `value` compared with `threshold` holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Above => value > threshold,
            Comparison::AtLeast => value >= threshold,
            Comparison::Below => value < threshold,
            Comparison::AtMost => value <= threshold,
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown comparison {0:?} (expected >, >=, < or <=)")]
pub struct ParseComparisonError(pub String);

impl FromStr for Comparison {
    type Err = ParseComparisonError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Comparison::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| ParseComparisonError(s.to_string()))
    }
}

/// A reading's value crosses a fixed value: "water_gauge level > 3.5 m".
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The reading kind it applies to, e.g. `water_gauge`.
    pub kind: String,
    /// The value's name within the reading, e.g. `level`.
    pub value: String,
    /// If set, only a value in this unit is compared (a gauge that reports
    /// `cm` is not compared with a threshold in `m`).
    pub unit: Option<String>,
    pub comparison: Comparison,
    pub threshold: f64,
}

/// When a geofence triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fence {
    /// Every reading located inside the polygon (or on its edge).
    Inside,
    /// A reading inside whose sensor's previous reading was outside, or
    /// had no location, or does not exist.
    Enter,
    /// A reading outside whose sensor's previous reading was inside.
    Leave,
}

impl Fence {
    pub fn as_str(self) -> &'static str {
        match self {
            Fence::Inside => "inside",
            Fence::Enter => "enter",
            Fence::Leave => "leave",
        }
    }
}

/// A polygon that readings' locations are checked against.
#[derive(Debug, Clone, PartialEq)]
pub struct Geofence {
    /// The outer ring, `(longitude, latitude)` in WGS84 degrees, at least
    /// three distinct corners. It need not repeat the first corner at the
    /// end: the ring is closed if it is open.
    pub ring: Vec<(f64, f64)>,
    /// The reading kinds it applies to; empty: every kind.
    pub kinds: Vec<String>,
    pub on: Fence,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Threshold(Threshold),
    Geofence(Geofence),
}

/// One rule: a condition, and the incident it raises.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique within a rule set, 1–64 bytes; recorded in the events the
    /// rule raises, and the key of de-duplication.
    pub id: String,
    /// The severity of the events it raises (1–5, as events).
    pub severity: u8,
    pub condition: Condition,
}

/// Why a rule or a de-duplication window is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    #[error("a rule id must be 1..={MAX_RULE_ID_BYTES} bytes, got {0:?}")]
    BadId(String),
    #[error("two rules have the id {0:?}")]
    DuplicateId(String),
    #[error("rule {id:?}: severity {severity} is outside {MIN_SEVERITY}..={MAX_SEVERITY}")]
    Severity { id: String, severity: u8 },
    /// A kind, value name or unit that no reading could carry.
    #[error("rule {id:?}: `{field}` {value:?} is not a possible reading {field}")]
    Name {
        id: String,
        field: &'static str,
        value: String,
    },
    #[error("rule {id:?}: the threshold {threshold} is not a finite number")]
    NotFinite { id: String, threshold: f64 },
    #[error("rule {id:?}: a geofence needs 3..={MAX_RING_POINTS} distinct corners, got {n}")]
    Corners { id: String, n: usize },
    #[error("rule {id:?}: corner {index}: {error}")]
    Corner {
        id: String,
        index: usize,
        error: PointError,
    },
    /// The ring crosses itself or is degenerate.
    #[error("rule {id:?}: the geofence is not a valid polygon: {why}")]
    Polygon { id: String, why: String },
    #[error("the de-duplication window must be at least 1 ms")]
    ZeroWindow,
}

/// A rule and what evaluating it needs, validated.
#[derive(Debug, Clone)]
struct Compiled {
    rule: Rule,
    polygon: Option<Polygon<f64>>,
}

/// Validated rules, ready to evaluate.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Compiled>,
}

/// Why a rule triggered.
#[derive(Debug, Clone, PartialEq)]
pub enum Cause {
    /// A value crossed a threshold.
    Threshold {
        value: String,
        reading: f64,
        unit: String,
        comparison: Comparison,
        threshold: f64,
    },
    /// The location is inside, entered or left a geofence (`location`:
    /// the reading's; for [`Fence::Leave`], where it was when outside).
    Geofence { on: Fence, location: Point },
}

/// A rule that a reading triggers: the incident to raise, before
/// de-duplication.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// The rule's id.
    pub rule: String,
    pub severity: u8,
    pub cause: Cause,
}

impl fmt::Display for Trigger {
    /// A one-line summary, fit for an event title.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Cause::Threshold {
                value,
                reading,
                unit,
                comparison,
                threshold,
            } => {
                let unit = if unit.is_empty() {
                    String::new()
                } else {
                    format!(" {unit}")
                };
                write!(
                    f,
                    "{}: {value} {reading}{unit} {comparison} {threshold}",
                    self.rule
                )
            }
            Cause::Geofence { on, location } => {
                let what = match on {
                    Fence::Inside => "inside",
                    Fence::Enter => "entered",
                    Fence::Leave => "left",
                };
                write!(
                    f,
                    "{}: {what} the geofence at {}, {}",
                    self.rule,
                    location.lon(),
                    location.lat()
                )
            }
        }
    }
}

fn check_name(
    id: &str,
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), RuleError> {
    if (min..=max).contains(&value.len()) {
        Ok(())
    } else {
        Err(RuleError::Name {
            id: id.to_string(),
            field,
            value: value.to_string(),
        })
    }
}

fn compile(rule: &Rule) -> Result<Option<Polygon<f64>>, RuleError> {
    let id = rule.id.as_str();
    if !(MIN_SEVERITY..=MAX_SEVERITY).contains(&rule.severity) {
        return Err(RuleError::Severity {
            id: id.to_string(),
            severity: rule.severity,
        });
    }
    match &rule.condition {
        Condition::Threshold(t) => {
            check_name(id, "kind", &t.kind, 1, MAX_KIND_BYTES)?;
            check_name(id, "value", &t.value, 1, MAX_KIND_BYTES)?;
            if let Some(unit) = &t.unit {
                check_name(id, "unit", unit, 0, MAX_UNIT_BYTES)?;
            }
            if !t.threshold.is_finite() {
                return Err(RuleError::NotFinite {
                    id: id.to_string(),
                    threshold: t.threshold,
                });
            }
            Ok(None)
        }
        Condition::Geofence(g) => {
            for kind in &g.kinds {
                check_name(id, "kind", kind, 1, MAX_KIND_BYTES)?;
            }
            let mut coords: Vec<Coord<f64>> = Vec::with_capacity(g.ring.len() + 1);
            for (index, (lon, lat)) in g.ring.iter().enumerate() {
                Point::new(*lon, *lat).map_err(|error| RuleError::Corner {
                    id: id.to_string(),
                    index,
                    error,
                })?;
                coords.push(Coord { x: *lon, y: *lat });
            }
            // An open ring is closed; then the corners, without the
            // closing one, must be at least three and distinct enough for
            // an area (the validity check below).
            if coords.first() != coords.last() {
                if let Some(first) = coords.first().copied() {
                    coords.push(first);
                }
            }
            let n = coords.len().saturating_sub(1);
            if !(3..=MAX_RING_POINTS).contains(&n) {
                return Err(RuleError::Corners {
                    id: id.to_string(),
                    n,
                });
            }
            let polygon = Polygon::new(LineString::new(coords), Vec::new());
            polygon
                .check_validation()
                .map_err(|why| RuleError::Polygon {
                    id: id.to_string(),
                    why: why.to_string(),
                })?;
            // Validation lets a ring of corners on one line pass.
            if polygon.unsigned_area() <= 0.0 {
                return Err(RuleError::Polygon {
                    id: id.to_string(),
                    why: "the ring encloses no area".into(),
                });
            }
            Ok(Some(polygon))
        }
    }
}

fn inside(polygon: &Polygon<f64>, p: Point) -> bool {
    polygon.intersects(&::geo::Point::new(p.lon(), p.lat()))
}

impl RuleSet {
    /// Validates every rule: ids unique and 1–64 bytes, severities 1–5,
    /// names a reading could carry, finite thresholds, geofence corners in
    /// range and forming a valid polygon (an open ring is closed).
    pub fn new(rules: Vec<Rule>) -> Result<RuleSet, RuleError> {
        let mut seen = std::collections::BTreeSet::new();
        let mut compiled = Vec::with_capacity(rules.len());
        for rule in rules {
            if !(1..=MAX_RULE_ID_BYTES).contains(&rule.id.len()) {
                return Err(RuleError::BadId(rule.id));
            }
            if !seen.insert(rule.id.clone()) {
                return Err(RuleError::DuplicateId(rule.id));
            }
            let polygon = compile(&rule)?;
            compiled.push(Compiled { rule, polygon });
        }
        Ok(RuleSet { rules: compiled })
    }

    /// The rules, in the order given.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|c| &c.rule)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules `reading` triggers, in rule order, at most one per rule.
    /// `previous` is the same sensor's reading before it (by seq), if any:
    /// [`Fence::Enter`] and [`Fence::Leave`] compare with it.
    ///
    /// A threshold compares the first value of its name (and unit, if it
    /// names one) in a reading of its kind.
    pub fn evaluate(
        &self,
        reading: &SensorReading,
        previous: Option<&SensorReading>,
    ) -> Vec<Trigger> {
        let mut out = Vec::new();
        for Compiled { rule, polygon } in &self.rules {
            let cause = match (&rule.condition, polygon) {
                (Condition::Threshold(t), _) => threshold(t, reading),
                (Condition::Geofence(g), Some(polygon)) => geofence(g, polygon, reading, previous),
                // Compiled geofences always have their polygon.
                (Condition::Geofence(_), None) => None,
            };
            if let Some(cause) = cause {
                out.push(Trigger {
                    rule: rule.id.clone(),
                    severity: rule.severity,
                    cause,
                });
            }
        }
        out
    }
}

fn threshold(t: &Threshold, reading: &SensorReading) -> Option<Cause> {
    if reading.kind != t.kind {
        return None;
    }
    let v = reading
        .values
        .iter()
        .find(|v| v.name == t.value && t.unit.as_ref().is_none_or(|u| *u == v.unit))?;
    t.comparison
        .holds(v.value, t.threshold)
        .then(|| Cause::Threshold {
            value: v.name.clone(),
            reading: v.value,
            unit: v.unit.clone(),
            comparison: t.comparison,
            threshold: t.threshold,
        })
}

fn geofence(
    g: &Geofence,
    polygon: &Polygon<f64>,
    reading: &SensorReading,
    previous: Option<&SensorReading>,
) -> Option<Cause> {
    if !g.kinds.is_empty() && !g.kinds.contains(&reading.kind) {
        return None;
    }
    let location = reading.location?;
    let now_inside = inside(polygon, location);
    let was_inside = previous
        .and_then(|p| p.location)
        .map(|p| inside(polygon, p));
    let fires = match g.on {
        Fence::Inside => now_inside,
        Fence::Enter => now_inside && was_inside != Some(true),
        Fence::Leave => !now_inside && was_inside == Some(true),
    };
    fires.then_some(Cause::Geofence { on: g.on, location })
}

/// De-duplication of triggers: per rule and sensor, at most one admitted
/// trigger per window of `window_ms` of measured time. A trigger is
/// admitted when no trigger of the same rule and sensor was admitted
/// before, or when its reading's `measured_ms` is at least `window_ms`
/// away (either way: a sensor clock that jumped back counts as new) from
/// that of the last one admitted. See the module doc for restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dedup {
    window_ms: u64,
    last: BTreeMap<(String, AuthorId), u64>,
}

impl Dedup {
    pub fn new(window_ms: u64) -> Result<Dedup, RuleError> {
        if window_ms == 0 {
            return Err(RuleError::ZeroWindow);
        }
        Ok(Dedup {
            window_ms,
            last: BTreeMap::new(),
        })
    }

    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// Whether to raise an event for `rule` triggered by `sensor`'s
    /// reading measured at `measured_ms`; if so, remembers it.
    pub fn admit(&mut self, rule: &str, sensor: AuthorId, measured_ms: u64) -> bool {
        let key = (rule.to_string(), sensor);
        let fresh = self
            .last
            .get(&key)
            .is_none_or(|last| last.abs_diff(measured_ms) >= self.window_ms);
        if fresh {
            self.last.insert(key, measured_ms);
        }
        fresh
    }

    /// Restores state after a restart: the reading of the most recent
    /// event `rule` raised for `sensor` was measured at `measured_ms`.
    pub fn remember(&mut self, rule: &str, sensor: AuthorId, measured_ms: u64) {
        self.last.insert((rule.to_string(), sensor), measured_ms);
    }

    /// The measured time of the last admitted trigger of `rule` for
    /// `sensor`.
    pub fn last(&self, rule: &str, sensor: &AuthorId) -> Option<u64> {
        self.last.get(&(rule.to_string(), *sensor)).copied()
    }

    /// Drops what no reading measured at or after `measured_ms` can be
    /// suppressed by, so the state stays small.
    pub fn forget_before(&mut self, measured_ms: u64) {
        let window = self.window_ms;
        self.last
            .retain(|_, last| last.saturating_add(window) > measured_ms);
    }

    /// Number of (rule, sensor) pairs remembered.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

mod alert;
#[cfg(feature = "serde")]
pub mod config;

pub use alert::{event_description, ALERT_CATEGORY};

#[cfg(test)]
mod tests;
