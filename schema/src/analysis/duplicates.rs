//! Near-duplicate reports: two events close in space, close in time and
//! alike in words are probably one incident reported twice, and are
//! offered to a person for merging (never merged here).
//!
//! A pair is offered when all three hold: the distance between the two
//! locations is at most [`DuplicateRules::distance_m`] (great circle),
//! the report times are at most [`DuplicateRules::window_ms`] apart, and
//! the texts' similarity is at least [`DuplicateRules::similarity`]. The
//! similarity is the Dice coefficient of the two texts' character
//! trigrams after normalising them (lower case, every run of characters
//! that are not letters or digits one space): 1 for the same words, 0 for
//! nothing in common, robust to typos and word order. Each pair's score
//! weighs the three together (each 1 when identical, 0 at its limit),
//! and the reasons say what made it a pair, in words a person checks.

use std::collections::BTreeSet;

use super::distance_m;
use crate::{EventId, Point};

/// One event as the duplicate finder sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: EventId,
    pub location: Point,
    pub reported_ms: u64,
    /// The words compared: title and description, as the caller may see
    /// them.
    pub text: String,
}

/// When two events are near duplicates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DuplicateRules {
    /// At most this many metres apart.
    pub distance_m: f64,
    /// Reported at most this many milliseconds apart.
    pub window_ms: u64,
    /// Texts at least this similar, 0..=1.
    pub similarity: f64,
}

/// Two events that look like one incident. `keep` is the earlier report
/// (then the smaller id), `duplicate` the later: merging closes the
/// duplicate with a note naming the one kept.
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicatePair {
    pub keep: EventId,
    pub duplicate: EventId,
    pub distance_m: f64,
    /// How far apart the reports were, ms.
    pub apart_ms: u64,
    /// The texts' trigram similarity, 0..=1.
    pub similarity: f64,
    /// The three together, 0..=1: the mean of closeness in space,
    /// closeness in time and similarity.
    pub score: f64,
    /// Why this pair, one short sentence each.
    pub reasons: Vec<String>,
}

/// A text's words, normalised: lower case, each run of characters that
/// are not letters or digits one space, trimmed.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    for c in text.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// The character trigrams of a normalised text padded with a space each
/// side (so a one-letter word still has one).
fn trigrams(text: &str) -> BTreeSet<[char; 3]> {
    let chars: Vec<char> = std::iter::once(' ')
        .chain(normalise(text).chars())
        .chain(std::iter::once(' '))
        .collect();
    chars.windows(3).map(|w| [w[0], w[1], w[2]]).collect()
}

/// The Dice coefficient of two trigram sets; two empty texts are not
/// alike (nothing says they are one incident).
fn dice(a: &BTreeSet<[char; 3]>, b: &BTreeSet<[char; 3]>) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let common = a.intersection(b).count();
    2.0 * common as f64 / (a.len() + b.len()) as f64
}

/// How alike two texts are, 0..=1 (see the module's docs).
pub fn similarity(a: &str, b: &str) -> f64 {
    dice(&trigrams(a), &trigrams(b))
}

/// Every pair of near duplicates among `events`, the highest score first
/// (then `keep`, then `duplicate`), at most `limit`. Quadratic in the
/// events within one time window of each other: callers bound how many
/// they pass.
pub fn near_duplicates(
    events: &[Candidate],
    rules: DuplicateRules,
    limit: usize,
) -> Vec<DuplicatePair> {
    let mut order: Vec<&Candidate> = events.iter().collect();
    order.sort_by_key(|e| (e.reported_ms, e.id));
    let grams: Vec<BTreeSet<[char; 3]>> = order.iter().map(|e| trigrams(&e.text)).collect();
    let mut pairs = Vec::new();
    for (i, a) in order.iter().enumerate() {
        for (j, b) in order.iter().enumerate().skip(i + 1) {
            let apart_ms = b.reported_ms - a.reported_ms;
            if apart_ms > rules.window_ms {
                break; // Sorted by time: every later one is further.
            }
            if a.id == b.id {
                continue;
            }
            let d = distance_m(a.location, b.location);
            if d > rules.distance_m {
                continue;
            }
            let sim = dice(&grams[i], &grams[j]);
            if sim < rules.similarity {
                continue;
            }
            pairs.push(pair(a, b, d, apart_ms, sim, rules));
        }
    }
    pairs.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then(x.keep.cmp(&y.keep))
            .then(x.duplicate.cmp(&y.duplicate))
    });
    pairs.truncate(limit);
    pairs
}

fn pair(
    a: &Candidate,
    b: &Candidate,
    d: f64,
    apart_ms: u64,
    sim: f64,
    rules: DuplicateRules,
) -> DuplicatePair {
    let near = if rules.distance_m > 0.0 {
        1.0 - d / rules.distance_m
    } else {
        1.0
    };
    let soon = if rules.window_ms > 0 {
        1.0 - apart_ms as f64 / rules.window_ms as f64
    } else {
        1.0
    };
    let score = ((near + soon + sim) / 3.0).clamp(0.0, 1.0);
    let reasons = vec![
        format!(
            "{:.0} m apart (at most {:.0} m)",
            d.round(),
            rules.distance_m
        ),
        format!(
            "reported {} s apart (at most {} s)",
            apart_ms / 1000,
            rules.window_ms / 1000
        ),
        format!(
            "texts {:.0} % alike (at least {:.0} %)",
            sim * 100.0,
            rules.similarity * 100.0
        ),
    ];
    DuplicatePair {
        keep: a.id,
        duplicate: b.id,
        distance_m: d,
        apart_ms,
        similarity: sim,
        score,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(n: u8, lon: f64, lat: f64, ms: u64, text: &str) -> Candidate {
        Candidate {
            id: EventId([n; 16]),
            location: Point::new(lon, lat).unwrap(),
            reported_ms: ms,
            text: text.to_owned(),
        }
    }

    const RULES: DuplicateRules = DuplicateRules {
        distance_m: 200.0,
        window_ms: 3_600_000,
        similarity: 0.5,
    };

    #[test]
    fn normalising_keeps_words_only() {
        assert_eq!(
            normalise("  Flooded UNDERPASS!!  on Main-St. "),
            "flooded underpass on main st"
        );
        assert_eq!(normalise("Überflutung"), "überflutung");
        assert_eq!(normalise("--"), "");
    }

    #[test]
    fn similarity_tolerates_typos_and_order() {
        assert_eq!(similarity("Flooded underpass", "flooded   UNDERPASS"), 1.0);
        assert!(similarity("Flooded underpass Main St", "Main St underpass floded") > 0.6);
        assert!(similarity("Flooded underpass", "Power line down") < 0.2);
        assert_eq!(similarity("", ""), 0.0);
    }

    #[test]
    fn a_pair_needs_place_time_and_words() {
        let base = ev(1, 10.0, 50.0, 1_000_000, "Flooded underpass on Main St");
        let twin = ev(2, 10.0005, 50.0005, 1_600_000, "Main St underpass flooded");
        let far = ev(3, 10.05, 50.0, 1_100_000, "Flooded underpass on Main St");
        let late = ev(
            4,
            10.0,
            50.0,
            1_000_000 + 7_200_000,
            "Flooded underpass on Main St",
        );
        let other = ev(5, 10.0, 50.0, 1_200_000, "Tree down across road");
        let found = near_duplicates(&[twin.clone(), far, late, other, base.clone()], RULES, 10);
        assert_eq!(found.len(), 1, "{found:?}");
        let p = &found[0];
        assert_eq!((p.keep, p.duplicate), (base.id, twin.id));
        assert!(
            p.distance_m > 50.0 && p.distance_m < 100.0,
            "{}",
            p.distance_m
        );
        assert_eq!(p.apart_ms, 600_000);
        assert!(p.score > 0.0 && p.score <= 1.0);
        assert_eq!(p.reasons.len(), 3);
        assert!(p.reasons[0].contains(" m apart"), "{:?}", p.reasons);
    }

    #[test]
    fn the_best_pairs_come_first_and_the_limit_holds() {
        let events = [
            ev(1, 10.0, 50.0, 0, "Flooded underpass"),
            ev(2, 10.0, 50.0, 1000, "Flooded underpass"),
            ev(3, 10.001, 50.0, 3_000_000, "Flooded underpass Main"),
        ];
        let all = near_duplicates(&events, RULES, 10);
        assert_eq!(all.len(), 3);
        assert!(all.windows(2).all(|w| w[0].score >= w[1].score));
        assert_eq!(
            (all[0].keep, all[0].duplicate),
            (events[0].id, events[1].id)
        );
        assert_eq!(near_duplicates(&events, RULES, 1).len(), 1);
    }

    proptest! {
        #[test]
        fn similarity_is_symmetric_and_bounded(a in "\\PC{0,40}", b in "\\PC{0,40}") {
            let (x, y) = (similarity(&a, &b), similarity(&b, &a));
            prop_assert_eq!(x, y);
            prop_assert!((0.0..=1.0).contains(&x));
            if !normalise(&a).is_empty() {
                prop_assert_eq!(similarity(&a, &a), 1.0);
            }
        }

        #[test]
        fn every_pair_keeps_the_rules(
            raw in proptest::collection::vec((0.0f64..0.01, 0.0f64..0.01, 0u64..10_000_000, 0usize..3), 0..30)
        ) {
            let words = ["flooded underpass", "flooded underpas", "tree down"];
            let events: Vec<Candidate> = raw.iter().enumerate()
                .map(|(i, &(x, y, t, w))| ev(i as u8, 10.0 + x, 50.0 + y, t, words[w]))
                .collect();
            for p in near_duplicates(&events, RULES, usize::MAX) {
                prop_assert!(p.distance_m <= RULES.distance_m);
                prop_assert!(p.apart_ms <= RULES.window_ms);
                prop_assert!(p.similarity >= RULES.similarity);
                prop_assert!(p.keep != p.duplicate);
                let (k, d) = (
                    events.iter().find(|e| e.id == p.keep).unwrap(),
                    events.iter().find(|e| e.id == p.duplicate).unwrap(),
                );
                prop_assert!((k.reported_ms, k.id) <= (d.reported_ms, d.id));
            }
        }
    }
}
