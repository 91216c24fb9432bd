//! The rules file that node and hub share (feature `serde`): TOML in, a
//! validated [`RuleSet`] out. Parsing only; reading the file is the
//! caller's.
//!
//! ```toml
//! window_s = 900            # de-duplication window in seconds, default 900
//!
//! [[rule]]
//! id = "river-high"
//! severity = 4
//! kind = "water_gauge"      # a threshold: kind, value, comparison, threshold
//! value = "level"
//! comparison = ">="
//! threshold = 3.5
//! unit = "m"                # optional: compare only values in this unit
//! location = [10.0, 50.0]   # optional: where the event is when the reading has no location
//!
//! [[rule]]
//! id = "school-zone"
//! severity = 3
//! geofence = [[10.0, 50.0], [10.1, 50.0], [10.1, 50.1], [10.0, 50.1], [10.0, 50.0]]
//! kinds = ["gps_tracker"]   # optional: every kind when left out
//! on = "enter"              # inside | enter | leave
//! ```
//!
//! Every mistake is refused with the rule (its number from 1 in file
//! order, and its id when it has one) and the field at fault; unknown
//! keys are mistakes too, so a misspelt `treshold` does not silently make
//! a rule that never fires.

use std::collections::BTreeMap;
use std::fmt;

use toml::{Table, Value};

use super::{Comparison, Condition, Fence, Geofence, Rule, RuleError, RuleSet, Threshold};
use crate::geo::Point;

/// The de-duplication window when the file names none: 15 minutes.
pub const DEFAULT_WINDOW_S: u64 = 900;

/// A parsed, validated rules file.
#[derive(Debug, Clone)]
pub struct RulesConfig {
    pub rules: RuleSet,
    /// The de-duplication window ([`super::Dedup::new`]), in ms of measured
    /// time.
    pub window_ms: u64,
    /// Rule id → where its events are placed when the reading that
    /// triggered it has no location (`location` in the file).
    pub locations: BTreeMap<String, Point>,
}

/// Which rule of the file a mistake is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    /// Position in the file, from 1.
    pub number: usize,
    /// Its id, if it has a readable one.
    pub id: Option<String>,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "rule #{} ({id:?})", self.number),
            None => write!(f, "rule #{}", self.number),
        }
    }
}

/// Why a rules file is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RulesConfigError {
    /// Larger than [`MAX_RULES_FILE_BYTES`].
    #[error("rules file is over {MAX_RULES_FILE_BYTES} bytes")]
    TooLarge,
    /// Not TOML.
    #[error("rules file is not valid TOML: {0}")]
    Syntax(String),
    /// A top-level key is unknown or has the wrong type or value.
    #[error("rules file: `{field}`: {why}")]
    Top { field: String, why: String },
    /// A key of one `[[rule]]` is missing, unknown, of the wrong type, or
    /// out of range.
    #[error("{rule}: `{field}`: {why}")]
    Field {
        rule: RuleRef,
        field: String,
        why: String,
    },
    /// The rule is well-formed but invalid ([`RuleSet::new`]'s checks).
    #[error("{rule}: {error}")]
    Rule { rule: RuleRef, error: RuleError },
}

/// The largest rules file read: thousands of rules fit in far less.
/// Readers should stop reading past it (read at most one byte more).
pub const MAX_RULES_FILE_BYTES: usize = 1 << 20;

/// Parses and validates a rules file (see the module doc).
pub fn parse_rules_toml(text: &str) -> Result<RulesConfig, RulesConfigError> {
    if text.len() > MAX_RULES_FILE_BYTES {
        return Err(RulesConfigError::TooLarge);
    }
    let table: Table = text
        .parse()
        .map_err(|e: toml::de::Error| RulesConfigError::Syntax(e.to_string()))?;
    let top = |field: &str, why: String| RulesConfigError::Top {
        field: field.to_string(),
        why,
    };
    let mut window_s = DEFAULT_WINDOW_S;
    let mut raw_rules: &[Value] = &[];
    for (key, value) in &table {
        match key.as_str() {
            "window_s" => {
                window_s = value
                    .as_integer()
                    .and_then(|n| u64::try_from(n).ok())
                    .filter(|n| (1..=u64::MAX / 1000).contains(n))
                    .ok_or_else(|| {
                        top(
                            "window_s",
                            format!("must be a whole number of seconds, at least 1, got {value}"),
                        )
                    })?;
            }
            "rule" => {
                raw_rules = value.as_array().map(Vec::as_slice).ok_or_else(|| {
                    top(
                        "rule",
                        "must be an array of tables (`[[rule]]` sections)".into(),
                    )
                })?;
            }
            other => {
                return Err(top(
                    other,
                    "unknown key (expected `window_s` or `[[rule]]`)".into(),
                ))
            }
        }
    }

    let mut rules = Vec::with_capacity(raw_rules.len());
    let mut refs = Vec::with_capacity(raw_rules.len());
    let mut locations = BTreeMap::new();
    for (i, raw) in raw_rules.iter().enumerate() {
        let number = i + 1;
        let table = raw.as_table().ok_or_else(|| RulesConfigError::Field {
            rule: RuleRef { number, id: None },
            field: "rule".into(),
            why: "must be a table (`[[rule]]`)".into(),
        })?;
        let reference = RuleRef {
            number,
            id: table.get("id").and_then(Value::as_str).map(str::to_string),
        };
        let (rule, location) = rule_from(table, &reference)?;
        if let Some(location) = location {
            locations.insert(rule.id.clone(), location);
        }
        rules.push(rule);
        refs.push(reference);
    }

    let rules = RuleSet::new(rules).map_err(|error| {
        let id = match &error {
            RuleError::BadId(id) | RuleError::DuplicateId(id) => Some(id),
            RuleError::Severity { id, .. }
            | RuleError::Name { id, .. }
            | RuleError::NotFinite { id, .. }
            | RuleError::Corners { id, .. }
            | RuleError::Corner { id, .. }
            | RuleError::Polygon { id, .. } => Some(id),
            _ => None,
        };
        // A duplicate id names the second rule that has it.
        let rule = id
            .and_then(|id| {
                let mut matching = refs.iter().filter(|r| r.id.as_ref() == Some(id));
                let first = matching.next();
                match error {
                    RuleError::DuplicateId(_) => matching.next().or(first),
                    _ => first,
                }
            })
            .cloned()
            .unwrap_or(RuleRef {
                number: 0,
                id: id.cloned(),
            });
        RulesConfigError::Rule { rule, error }
    })?;
    Ok(RulesConfig {
        rules,
        window_ms: window_s * 1000,
        locations,
    })
}

const THRESHOLD_KEYS: [&str; 5] = ["kind", "value", "comparison", "threshold", "unit"];
const GEOFENCE_KEYS: [&str; 3] = ["geofence", "kinds", "on"];
const COMMON_KEYS: [&str; 3] = ["id", "severity", "location"];

/// Reads one `[[rule]]` table, without [`RuleSet::new`]'s validation.
fn rule_from(table: &Table, rule: &RuleRef) -> Result<(Rule, Option<Point>), RulesConfigError> {
    let field = |field: &str, why: String| RulesConfigError::Field {
        rule: rule.clone(),
        field: field.to_string(),
        why,
    };
    for key in table.keys() {
        let known = COMMON_KEYS
            .iter()
            .chain(&THRESHOLD_KEYS)
            .chain(&GEOFENCE_KEYS)
            .any(|k| k == key);
        if !known {
            return Err(field(key, "unknown key".into()));
        }
    }
    let string = |name: &str| -> Result<Option<String>, RulesConfigError> {
        table
            .get(name)
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| field(name, format!("must be a string, got {v}")))
            })
            .transpose()
    };
    let required =
        |name: &str, value: Option<String>| value.ok_or_else(|| field(name, "missing".into()));

    let id = required("id", string("id")?)?;
    let severity = match table.get("severity") {
        None => return Err(field("severity", "missing".into())),
        Some(v) => v
            .as_integer()
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| field("severity", format!("must be a whole number 1–5, got {v}")))?,
    };
    let location = table
        .get("location")
        .map(|v| point(v).map_err(|why| field("location", why)))
        .transpose()?;

    let is_threshold = THRESHOLD_KEYS.iter().any(|k| table.contains_key(*k));
    let is_geofence = GEOFENCE_KEYS.iter().any(|k| table.contains_key(*k));
    let condition = match (is_threshold, is_geofence) {
        (true, true) | (false, false) => {
            return Err(field(
                "geofence",
                "a rule is either a threshold (`kind`, `value`, `comparison`, `threshold`, \
                 optional `unit`) or a geofence (`geofence`, optional `kinds`, `on`)"
                    .into(),
            ))
        }
        (true, false) => {
            let comparison = required("comparison", string("comparison")?)?;
            let comparison = comparison
                .parse::<Comparison>()
                .map_err(|e| field("comparison", e.to_string()))?;
            let threshold = table
                .get("threshold")
                .ok_or_else(|| field("threshold", "missing".into()))?;
            let threshold =
                number(threshold).ok_or_else(|| field("threshold", "must be a number".into()))?;
            Condition::Threshold(Threshold {
                kind: required("kind", string("kind")?)?,
                value: required("value", string("value")?)?,
                unit: string("unit")?,
                comparison,
                threshold,
            })
        }
        (false, true) => {
            let ring = table
                .get("geofence")
                .ok_or_else(|| field("geofence", "missing".into()))?;
            let ring = ring
                .as_array()
                .ok_or_else(|| field("geofence", "must be an array of [lon, lat] pairs".into()))?
                .iter()
                .enumerate()
                .map(|(i, corner)| {
                    point_pair(corner)
                        .map_err(|why| field("geofence", format!("corner {i}: {why}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let kinds = match table.get("kinds") {
                None => Vec::new(),
                Some(v) => v
                    .as_array()
                    .and_then(|kinds| {
                        kinds
                            .iter()
                            .map(|k| k.as_str().map(str::to_string))
                            .collect::<Option<Vec<_>>>()
                    })
                    .ok_or_else(|| {
                        field("kinds", format!("must be an array of strings, got {v}"))
                    })?,
            };
            let on = match required("on", string("on")?)?.as_str() {
                "inside" => Fence::Inside,
                "enter" => Fence::Enter,
                "leave" => Fence::Leave,
                other => {
                    return Err(field(
                        "on",
                        format!("{other:?} is not one of \"inside\", \"enter\", \"leave\""),
                    ))
                }
            };
            Condition::Geofence(Geofence { ring, kinds, on })
        }
    };
    Ok((
        Rule {
            id,
            severity,
            condition,
        },
        location,
    ))
}

/// A TOML number, integer or float, as `f64`.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Float(f) => Some(*f),
        // Coordinates and thresholds are far below 2^53: exact.
        Value::Integer(n) => Some(*n as f64),
        _ => None,
    }
}

/// `[lon, lat]` as two numbers, not yet range-checked.
fn point_pair(v: &Value) -> Result<(f64, f64), String> {
    match v.as_array().map(Vec::as_slice) {
        Some([lon, lat]) => match (number(lon), number(lat)) {
            (Some(lon), Some(lat)) => Ok((lon, lat)),
            _ => Err(format!("must be [lon, lat] as two numbers, got {v}")),
        },
        _ => Err(format!("must be [lon, lat] as two numbers, got {v}")),
    }
}

/// `[lon, lat]` as a valid WGS84 point.
fn point(v: &Value) -> Result<Point, String> {
    let (lon, lat) = point_pair(v)?;
    Point::new(lon, lat).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const EXAMPLE: &str = r#"
window_s = 600

[[rule]]
id = "river-high"
severity = 4
kind = "water_gauge"
value = "level"
comparison = ">="
threshold = 3.5
unit = "m"
location = [10.0, 50.0]

[[rule]]
id = "school-zone"
severity = 3
geofence = [[10.0, 50.0], [10.1, 50.0], [10.1, 50.1], [10.0, 50.1], [10.0, 50.0]]
kinds = ["gps_tracker"]
on = "enter"
"#;

    #[test]
    fn parses_the_documented_example() {
        let config = parse_rules_toml(EXAMPLE).unwrap();
        assert_eq!(config.window_ms, 600_000);
        let rules: Vec<&Rule> = config.rules.rules().collect();
        assert_eq!(rules.len(), 2);
        assert_eq!(
            *rules[0],
            Rule {
                id: "river-high".into(),
                severity: 4,
                condition: Condition::Threshold(Threshold {
                    kind: "water_gauge".into(),
                    value: "level".into(),
                    unit: Some("m".into()),
                    comparison: Comparison::AtLeast,
                    threshold: 3.5,
                }),
            }
        );
        match &rules[1].condition {
            Condition::Geofence(g) => {
                assert_eq!(g.ring.len(), 5);
                assert_eq!(g.kinds, vec!["gps_tracker".to_string()]);
                assert_eq!(g.on, Fence::Enter);
            }
            other => panic!("expected a geofence, got {other:?}"),
        }
        assert_eq!(
            config.locations.get("river-high"),
            Some(&Point::new(10.0, 50.0).unwrap())
        );
        assert!(!config.locations.contains_key("school-zone"));
    }

    #[test]
    fn defaults_and_integers() {
        let config = parse_rules_toml(
            "[[rule]]\nid = \"a\"\nseverity = 1\nkind = \"k\"\nvalue = \"v\"\ncomparison = \"<\"\nthreshold = 3\n",
        )
        .unwrap();
        assert_eq!(config.window_ms, DEFAULT_WINDOW_S * 1000);
        let rule = config.rules.rules().next().unwrap();
        assert!(matches!(
            &rule.condition,
            Condition::Threshold(Threshold { threshold, unit: None, .. }) if *threshold == 3.0
        ));
        // No rules at all is a valid (empty) file.
        let huge = format!("# {}\n", "x".repeat(MAX_RULES_FILE_BYTES));
        assert_eq!(
            parse_rules_toml(&huge).unwrap_err(),
            RulesConfigError::TooLarge
        );
        let empty = parse_rules_toml("").unwrap();
        assert!(empty.rules.is_empty());
    }

    /// The error's text, for a file that must be refused.
    fn refused(text: &str) -> String {
        match parse_rules_toml(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    const GOOD: &str =
        "id = \"r\"\nseverity = 2\nkind = \"k\"\nvalue = \"v\"\ncomparison = \">\"\nthreshold = 1.0\n";

    #[test]
    fn each_mistake_names_the_rule_and_the_field() {
        let cases: &[(&str, &str)] = &[
            ("window_s = 0", "`window_s`"),
            ("window_s = \"15m\"", "`window_s`"),
            ("colour = 1", "`colour`: unknown key"),
            ("rule = 3", "`rule`"),
            ("[[rule]]\nseverity = 2\nkind = \"k\"", "rule #1: `id`: missing"),
            (
                &format!("[[rule]]\n{GOOD}[[rule]]\n{}", GOOD.replace("\"r\"", "\"s\"").replace("1.0", "\"high\"")),
                "rule #2 (\"s\"): `threshold`: must be a number",
            ),
            (&format!("[[rule]]\n{GOOD}treshold = 2"), "rule #1 (\"r\"): `treshold`: unknown key"),
            (&format!("[[rule]]\n{}", GOOD.replace("\">\"", "\"=>\"")), "`comparison`: unknown comparison"),
            (&format!("[[rule]]\n{}", GOOD.replace("severity = 2", "severity = 9")), "rule #1 (\"r\"): rule \"r\": severity 9"),
            (&format!("[[rule]]\n{}", GOOD.replace("severity = 2", "severity = -1")), "`severity`"),
            (&format!("[[rule]]\n{GOOD}location = [200.0, 0.0]"), "`location`: longitude 200"),
            (&format!("[[rule]]\n{GOOD}location = [1.0]"), "`location`"),
            (&format!("[[rule]]\n{GOOD}[[rule]]\n{GOOD}"), "rule #2 (\"r\"): two rules have the id"),
            (&format!("[[rule]]\n{GOOD}geofence = [[0,0],[1,0],[1,1]]\non = \"enter\""), "either a threshold"),
            ("[[rule]]\nid = \"x\"\nseverity = 1", "either a threshold"),
            ("[[rule]]\nid = \"g\"\nseverity = 1\ngeofence = [[0,0],[1,0],[1,1]]\non = \"near\"", "rule #1 (\"g\"): `on`"),
            ("[[rule]]\nid = \"g\"\nseverity = 1\ngeofence = [[0,0],[1,0],[1,1]]", "`on`: missing"),
            ("[[rule]]\nid = \"g\"\nseverity = 1\ngeofence = [[0,0],[1,0],[1,\"a\"]]\non = \"inside\"", "`geofence`: corner 2"),
            ("[[rule]]\nid = \"g\"\nseverity = 1\ngeofence = [[0,0],[1,0]]\non = \"inside\"", "distinct corners"),
            ("[[rule]]\nid = \"g\"\nseverity = 1\ngeofence = [[0,0],[1,0],[1,1]]\nkinds = [1]\non = \"inside\"", "`kinds`"),
            ("[[rule]]\nid = \"g\"\nseverity = 1\ngeofence = [[0,0],[1,0],[1,1]]\nkinds = [\"\"]\non = \"inside\"", "`kind`"),
            ("[[rule]\n", "not valid TOML"),
        ];
        for (text, expected) in cases {
            let got = refused(text);
            assert!(
                got.contains(expected),
                "{text:?}\n  gave: {got}\n  expected to contain: {expected}"
            );
        }
    }
}
