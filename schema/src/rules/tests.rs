#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::body::ReadingValue;

fn threshold_rule(id: &str, comparison: Comparison, value: f64) -> Rule {
    Rule {
        id: id.into(),
        severity: 4,
        condition: Condition::Threshold(Threshold {
            kind: "water_gauge".into(),
            value: "level".into(),
            unit: Some("m".into()),
            comparison,
            threshold: value,
        }),
    }
}

/// A square around (10, 50), open (the closing corner left out).
fn square() -> Vec<(f64, f64)> {
    vec![(9.0, 49.0), (11.0, 49.0), (11.0, 51.0), (9.0, 51.0)]
}

fn fence_rule(id: &str, on: Fence, kinds: &[&str]) -> Rule {
    Rule {
        id: id.into(),
        severity: 3,
        condition: Condition::Geofence(Geofence {
            ring: square(),
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
            on,
        }),
    }
}

fn reading(kind: &str, level: f64, unit: &str, at: Option<(f64, f64)>) -> SensorReading {
    SensorReading {
        kind: kind.into(),
        values: vec![
            ReadingValue {
                name: "battery".into(),
                value: 3.7,
                unit: "V".into(),
            },
            ReadingValue {
                name: "level".into(),
                value: level,
                unit: unit.into(),
            },
        ],
        location: at.map(|(lon, lat)| Point::new(lon, lat).unwrap()),
        measured_ms: 1_000,
    }
}

/// Which rules fire, by id.
fn fired(rules: &RuleSet, r: &SensorReading, previous: Option<&SensorReading>) -> Vec<String> {
    rules
        .evaluate(r, previous)
        .into_iter()
        .map(|t| t.rule)
        .collect()
}

#[test]
fn thresholds_compare_the_named_value_of_their_kind_and_unit() {
    let rules = RuleSet::new(vec![
        threshold_rule("above", Comparison::Above, 3.0),
        threshold_rule("at-least", Comparison::AtLeast, 3.0),
        threshold_rule("below", Comparison::Below, 3.0),
        threshold_rule("at-most", Comparison::AtMost, 3.0),
    ])
    .unwrap();
    let check = |level: f64, expect: &[&str]| {
        assert_eq!(
            fired(&rules, &reading("water_gauge", level, "m", None), None),
            expect,
            "level {level}"
        );
    };
    check(3.5, &["above", "at-least"]);
    check(3.0, &["at-least", "at-most"]);
    check(2.5, &["below", "at-most"]);
    // Another kind, another unit: not compared.
    assert!(fired(&rules, &reading("air_quality", 9.0, "m", None), None).is_empty());
    assert!(fired(&rules, &reading("water_gauge", 900.0, "cm", None), None).is_empty());
    let t = &rules.evaluate(&reading("water_gauge", 3.25, "m", None), None)[0];
    assert_eq!(t.severity, 4);
    assert_eq!(t.to_string(), "above: level 3.25 m > 3");
}

#[test]
fn geofences_trigger_inside_on_entering_and_on_leaving() {
    let rules = RuleSet::new(vec![
        fence_rule("inside", Fence::Inside, &[]),
        fence_rule("enter", Fence::Enter, &[]),
        fence_rule("leave", Fence::Leave, &["gps_tracker"]),
    ])
    .unwrap();
    let at = |p: Option<(f64, f64)>| reading("gps_tracker", 0.0, "m", p);
    let inside = at(Some((10.0, 50.0)));
    let edge = at(Some((11.0, 50.0)));
    let outside = at(Some((12.0, 50.0)));
    let nowhere = at(None);
    assert_eq!(fired(&rules, &inside, None), ["inside", "enter"]);
    assert_eq!(fired(&rules, &inside, Some(&outside)), ["inside", "enter"]);
    assert_eq!(fired(&rules, &inside, Some(&nowhere)), ["inside", "enter"]);
    assert_eq!(fired(&rules, &inside, Some(&inside)), ["inside"]);
    // The edge counts as inside.
    assert_eq!(fired(&rules, &edge, Some(&inside)), ["inside"]);
    assert_eq!(fired(&rules, &outside, Some(&inside)), ["leave"]);
    assert!(fired(&rules, &outside, Some(&outside)).is_empty());
    assert!(fired(&rules, &outside, None).is_empty());
    assert!(fired(&rules, &nowhere, Some(&inside)).is_empty());
    // `leave` only watches trackers.
    let gauge_out = reading("water_gauge", 0.0, "m", Some((12.0, 50.0)));
    let gauge_in = reading("water_gauge", 0.0, "m", Some((10.0, 50.0)));
    assert!(fired(&rules, &gauge_out, Some(&gauge_in)).is_empty());
    let t = &rules.evaluate(&inside, Some(&inside))[0];
    assert_eq!(t.to_string(), "inside: inside the geofence at 10, 50");
}

#[test]
fn rules_are_validated_with_specific_errors() {
    let err = |rule: Rule| RuleSet::new(vec![rule]).unwrap_err();
    let mut nan = threshold_rule("nan", Comparison::Above, f64::NAN);
    assert!(matches!(err(nan.clone()), RuleError::NotFinite { .. }));
    nan.condition = Condition::Threshold(Threshold {
        kind: "water_gauge".into(),
        value: "level".into(),
        unit: None,
        comparison: Comparison::Above,
        threshold: f64::INFINITY,
    });
    assert!(matches!(err(nan), RuleError::NotFinite { .. }));
    assert_eq!(
        err(threshold_rule("", Comparison::Above, 1.0)),
        RuleError::BadId(String::new())
    );
    let mut loud = threshold_rule("loud", Comparison::Above, 1.0);
    loud.severity = 6;
    assert_eq!(
        err(loud),
        RuleError::Severity {
            id: "loud".into(),
            severity: 6
        }
    );
    assert_eq!(
        RuleSet::new(vec![
            threshold_rule("x", Comparison::Above, 1.0),
            threshold_rule("x", Comparison::Below, 1.0)
        ])
        .unwrap_err(),
        RuleError::DuplicateId("x".into())
    );
    let nameless = Rule {
        condition: Condition::Threshold(Threshold {
            kind: String::new(),
            value: "level".into(),
            unit: None,
            comparison: Comparison::Above,
            threshold: 1.0,
        }),
        ..threshold_rule("nameless", Comparison::Above, 1.0)
    };
    assert!(matches!(
        err(nameless),
        RuleError::Name { field: "kind", .. }
    ));

    let fence = |ring: Vec<(f64, f64)>| Rule {
        id: "f".into(),
        severity: 2,
        condition: Condition::Geofence(Geofence {
            ring,
            kinds: vec![],
            on: Fence::Inside,
        }),
    };
    assert_eq!(
        err(fence(vec![])),
        RuleError::Corners {
            id: "f".into(),
            n: 0
        }
    );
    assert!(matches!(
        err(fence(vec![(0.0, 0.0), (1.0, 0.0), (0.0, 0.0)])),
        RuleError::Corners { n: 2, .. }
    ));
    assert!(matches!(
        err(fence(vec![(0.0, 0.0), (1.0, f64::NAN), (1.0, 1.0)])),
        RuleError::Corner { index: 1, .. }
    ));
    assert!(matches!(
        err(fence(vec![(0.0, 0.0), (181.0, 0.0), (1.0, 1.0)])),
        RuleError::Corner { index: 1, .. }
    ));
    // A bow tie crosses itself; three corners on a line have no area.
    assert!(matches!(
        err(fence(vec![(0.0, 0.0), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0)])),
        RuleError::Polygon { .. }
    ));
    assert!(matches!(
        err(fence(vec![(0.0, 0.0), (1.0, 0.0), (2.0, 0.0)])),
        RuleError::Polygon { .. }
    ));
    // Open and closed rings are the same fence.
    let mut closed = square();
    closed.push(closed[0]);
    let open = RuleSet::new(vec![fence(square())]).unwrap();
    let shut = RuleSet::new(vec![fence(closed)]).unwrap();
    let r = reading("x", 0.0, "", Some((10.0, 50.0)));
    assert_eq!(fired(&open, &r, None), fired(&shut, &r, None));
    assert_eq!(fired(&open, &r, None), ["f"]);
    assert_eq!(Dedup::new(0).unwrap_err(), RuleError::ZeroWindow);
    assert_eq!(">=".parse::<Comparison>(), Ok(Comparison::AtLeast));
    assert!("=>".parse::<Comparison>().is_err());
}

#[test]
fn dedup_admits_one_trigger_per_rule_and_sensor_per_window() {
    let a = AuthorId([1; 32]);
    let b = AuthorId([2; 32]);
    let mut d = Dedup::new(60_000).unwrap();
    assert!(d.admit("flood", a, 1_000));
    assert!(!d.admit("flood", a, 1_000));
    assert!(!d.admit("flood", a, 60_999));
    // Another sensor, another rule: their own windows.
    assert!(d.admit("flood", b, 30_000));
    assert!(d.admit("zone", a, 30_000));
    assert!(d.admit("flood", a, 61_000));
    assert_eq!(d.last("flood", &a), Some(61_000));
    // A clock that jumped back by more than the window counts as new.
    assert!(d.admit("flood", a, 0));
    assert!(!d.admit("flood", a, 59_999));
    assert_eq!(d.len(), 3);
    d.forget_before(200_000);
    assert!(d.is_empty());
}

#[test]
fn dedup_state_rebuilt_from_raised_events_suppresses_the_same_triggers() {
    // A run: readings every 10 s over 5 minutes, all above the threshold.
    let rules = RuleSet::new(vec![threshold_rule("flood", Comparison::Above, 3.0)]).unwrap();
    let sensor = AuthorId([9; 32]);
    let readings: Vec<SensorReading> = (0..30)
        .map(|i| SensorReading {
            measured_ms: 1_000_000 + i * 10_000,
            ..reading("water_gauge", 4.0, "m", None)
        })
        .collect();
    let mut raised: Vec<(String, u64)> = Vec::new();
    let mut d = Dedup::new(120_000).unwrap();
    for (i, r) in readings.iter().enumerate() {
        if i == 15 {
            // Restart: rebuild from the events raised so far.
            d = Dedup::new(120_000).unwrap();
            for (rule, at) in &raised {
                d.remember(rule, sensor, *at);
            }
        }
        for t in rules.evaluate(r, None) {
            if d.admit(&t.rule, sensor, r.measured_ms) {
                raised.push((t.rule, r.measured_ms));
            }
        }
    }
    let times: Vec<u64> = raised.iter().map(|(_, at)| *at).collect();
    assert_eq!(times, [1_000_000, 1_120_000, 1_240_000]);
}

#[test]
fn raised_events_have_a_bounded_title_and_name_their_reading() {
    let long = "é".repeat(200);
    let rules = RuleSet::new(vec![threshold_rule(&long[..64], Comparison::AtLeast, 3.5)]).unwrap();
    let r = reading("water_gauge", 4.0, "m", None);
    let trigger = rules.evaluate(&r, None).remove(0);
    assert_eq!(trigger.event_title(), trigger.to_string());
    // A summary over the limit is cut on a character boundary.
    let mut wordy = trigger.clone();
    if let Cause::Threshold { value, .. } = &mut wordy.cause {
        *value = "é".repeat(150);
    }
    let title = wordy.event_title();
    assert!(wordy.to_string().len() > crate::limits::MAX_TITLE_BYTES);
    assert!(title.len() <= crate::limits::MAX_TITLE_BYTES && title.len() >= 199);
    assert!(wordy.to_string().starts_with(&title));
    let entry = crate::EntryId([7; 32]);
    let sensor = AuthorId([9; 32]);
    let text = event_description(&entry, &sensor, 12, &r);
    for part in [
        entry.to_string(),
        sensor.to_string(),
        "seq 12".to_owned(),
        format!("measured at {} ms", r.measured_ms),
        "level 4 m".to_owned(),
    ] {
        assert!(text.contains(&part), "{part} in {text}");
    }
}
