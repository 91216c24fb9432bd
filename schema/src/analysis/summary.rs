//! A summary of a set of events, made here with no model: how many, of
//! which categories, severities and statuses, over what span of time,
//! with the hotspots and near duplicates found among them, as numbers and
//! as a few plain sentences. It is the answer whenever no language model
//! is configured or the model fails, and what a model is given to write
//! from.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{DuplicatePair, Hotspot};
use crate::query::EventSummary;

/// The numbers of a summary.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    pub total: u64,
    /// Category → events, by name.
    pub by_category: BTreeMap<String, u64>,
    /// Severity 1..=5 → events.
    pub by_severity: BTreeMap<u8, u64>,
    /// Status (its wire name) → events.
    pub by_status: BTreeMap<String, u64>,
    /// The first and last report times, Unix ms; `None` with no events.
    pub first_ms: Option<u64>,
    pub last_ms: Option<u64>,
    /// Pairs of near duplicates found among them.
    pub duplicates: u64,
    /// Hotspots found among them.
    pub hotspots: u64,
    /// The same, as sentences a person reads.
    pub text: String,
}

/// The summary of `events` with the `hotspots` and `duplicates` found
/// among them (the caller found them, with its own rules).
pub fn summarise(
    events: &[EventSummary],
    hotspots: &[Hotspot],
    duplicates: &[DuplicatePair],
) -> Summary {
    let mut s = Summary {
        total: events.len() as u64,
        duplicates: duplicates.len() as u64,
        hotspots: hotspots.len() as u64,
        ..Summary::default()
    };
    for e in events {
        *s.by_category.entry(e.category.clone()).or_default() += 1;
        *s.by_severity.entry(e.severity).or_default() += 1;
        *s.by_status.entry(e.status.as_str().to_owned()).or_default() += 1;
        s.first_ms = Some(s.first_ms.map_or(e.reported_ms, |m| m.min(e.reported_ms)));
        s.last_ms = Some(s.last_ms.map_or(e.reported_ms, |m| m.max(e.reported_ms)));
    }
    s.text = text(&s, hotspots);
    s
}

/// A map's entries as "a: 3, b: 1", the largest first.
fn counts<K: std::fmt::Display>(m: &BTreeMap<K, u64>) -> String {
    let mut v: Vec<(&K, &u64)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    v.iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn text(s: &Summary, hotspots: &[Hotspot]) -> String {
    let mut t = String::new();
    let (Some(first), Some(last)) = (s.first_ms, s.last_ms) else {
        return "No events.".to_owned();
    };
    let hours = (last - first) as f64 / 3_600_000.0;
    let _ = writeln!(
        t,
        "{} event{} reported over {:.1} h.",
        s.total,
        if s.total == 1 { "" } else { "s" },
        hours
    );
    let _ = writeln!(t, "By category: {}.", counts(&s.by_category));
    let _ = writeln!(t, "By severity: {}.", counts(&s.by_severity));
    let _ = writeln!(t, "By status: {}.", counts(&s.by_status));
    let high = s.by_severity.range(4..).map(|(_, n)| n).sum::<u64>();
    if high > 0 {
        let _ = writeln!(t, "{high} of severity 4 or 5.");
    }
    for h in hotspots.iter().take(3) {
        let _ = writeln!(
            t,
            "Hotspot around {:.3},{:.3}: {} recent against {:.1} usually.",
            (h.cell.min_lon() + h.cell.max_lon()) / 2.0,
            (h.cell.min_lat() + h.cell.max_lat()) / 2.0,
            h.recent,
            h.expected
        );
    }
    if s.duplicates > 0 {
        let _ = writeln!(t, "{} pair(s) of likely duplicate reports.", s.duplicates);
    }
    t.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BBox, EventId, Point, Status};

    fn ev(n: u8, category: &str, severity: u8, status: Status, ms: u64) -> EventSummary {
        EventSummary {
            id: EventId([n; 16]),
            title: format!("event {n}"),
            category: category.to_owned(),
            severity,
            status,
            assignee: None,
            location: Point::new(1.0, 2.0).unwrap(),
            reported_ms: ms,
            n_notes: 0,
            n_media: 0,
            has_conflicts: false,
            distance_m: None,
        }
    }

    #[test]
    fn counts_span_and_sentences() {
        let events = [
            ev(1, "flood", 4, Status::Reported, 3_600_000),
            ev(2, "flood", 2, Status::Closed, 0),
            ev(3, "fire", 5, Status::Reported, 7_200_000),
        ];
        let hot = Hotspot {
            cell: BBox::new(1.0, 2.0, 1.01, 2.01).unwrap(),
            recent: 3,
            expected: 0.5,
            score: 2.0,
        };
        let s = summarise(&events, &[hot], &[]);
        assert_eq!(s.total, 3);
        assert_eq!(s.by_category["flood"], 2);
        assert_eq!(s.by_severity[&5], 1);
        assert_eq!(s.by_status["reported"], 2);
        assert_eq!((s.first_ms, s.last_ms), (Some(0), Some(7_200_000)));
        assert_eq!((s.hotspots, s.duplicates), (1, 0));
        assert!(
            s.text.starts_with("3 events reported over 2.0 h."),
            "{}",
            s.text
        );
        assert!(
            s.text.contains("By category: flood: 2, fire: 1."),
            "{}",
            s.text
        );
        assert!(s.text.contains("2 of severity 4 or 5."), "{}", s.text);
        assert!(
            s.text.contains("Hotspot around 1.005,2.005: 3 recent"),
            "{}",
            s.text
        );
        assert_eq!(summarise(&[], &[], &[]).text, "No events.");
    }
}
