//! Hotspots: places where more is happening now than usually happens
//! there. A busy market that always has reports is not a hotspot; a quiet
//! street that suddenly has six is.
//!
//! Events are counted on a grid fixed to the earth (cells
//! [`HotspotRules::cell_deg`] degrees on a side, aligned on 0°) in the
//! recent window `[now − window, now)` and in the baseline before it,
//! `baseline` windows of the same length. A cell's expected count is its
//! baseline mean per window; its score is
//! `(recent − expected) / √(expected + 1)`, a Poisson-like z-score that
//! does not divide by zero for a cell with no history. A cell is a
//! hotspot when its recent count is at least [`HotspotRules::min_count`]
//! and its score at least [`HotspotRules::min_score`].

use std::collections::BTreeMap;

use crate::{BBox, Point};

/// What makes a hotspot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HotspotRules {
    /// The grid's cell side, degrees (> 0).
    pub cell_deg: f64,
    /// The recent window, ms (> 0).
    pub window_ms: u64,
    /// How many windows before the recent one are its baseline (≥ 1).
    pub baseline: u32,
    /// The fewest recent events a hotspot has.
    pub min_count: u64,
    /// The lowest score a hotspot has.
    pub min_score: f64,
}

impl HotspotRules {
    /// The earliest report time these rules look at, for `now`.
    pub fn since_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.window_ms.saturating_mul(u64::from(self.baseline) + 1))
    }
}

/// One cell that rose above its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Hotspot {
    /// The cell, on the grid.
    pub cell: BBox,
    /// Events in the recent window.
    pub recent: u64,
    /// Events per window in the baseline (its mean).
    pub expected: f64,
    pub score: f64,
}

/// The hotspots among events given as (location, report time), the
/// highest score first (then west to east, south to north), at most
/// `limit`. Events outside the baseline and recent windows are ignored.
pub fn hotspots(
    events: impl IntoIterator<Item = (Point, u64)>,
    rules: HotspotRules,
    now_ms: u64,
    limit: usize,
) -> Vec<Hotspot> {
    if rules.cell_deg.is_nan()
        || rules.cell_deg <= 0.0
        || rules.window_ms == 0
        || rules.baseline == 0
    {
        return Vec::new();
    }
    let recent_from = now_ms.saturating_sub(rules.window_ms);
    let since = rules.since_ms(now_ms);
    // Cell → (recent, baseline) counts.
    let mut cells: BTreeMap<(i64, i64), (u64, u64)> = BTreeMap::new();
    for (p, t) in events {
        if t < since || t >= now_ms {
            continue;
        }
        let key = cell_of(p, rules.cell_deg);
        let c = cells.entry(key).or_default();
        if t >= recent_from {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }
    let mut found: Vec<Hotspot> = cells
        .into_iter()
        .filter_map(|((x, y), (recent, base))| {
            let expected = base as f64 / f64::from(rules.baseline);
            let score = (recent as f64 - expected) / (expected + 1.0).sqrt();
            (recent >= rules.min_count && score >= rules.min_score).then(|| Hotspot {
                cell: cell_box(x, y, rules.cell_deg),
                recent,
                expected,
                score,
            })
        })
        .collect();
    found.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.cell.min_lon().total_cmp(&b.cell.min_lon()))
            .then(a.cell.min_lat().total_cmp(&b.cell.min_lat()))
    });
    found.truncate(limit);
    found
}

/// The grid cell a point falls in.
fn cell_of(p: Point, cell: f64) -> (i64, i64) {
    // In range: |lon| ≤ 180 and cell > 0 (a tiny cell saturates, which
    // only merges cells at the edge of the world).
    (
        (p.lon() / cell).floor() as i64,
        (p.lat() / cell).floor() as i64,
    )
}

/// A cell's box, clamped to the world.
fn cell_box(x: i64, y: i64, cell: f64) -> BBox {
    let lo = |i: i64, max: f64| (i as f64 * cell).clamp(-max, max);
    let (w, s) = (lo(x, 180.0), lo(y, 90.0));
    let (e, n) = (lo(x + 1, 180.0), lo(y + 1, 90.0));
    BBox::new(w, s, e.max(w), n.max(s)).unwrap_or_else(|_| BBox::world())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: u64 = 3_600_000;
    const RULES: HotspotRules = HotspotRules {
        cell_deg: 0.01,
        window_ms: H,
        baseline: 6,
        min_count: 3,
        min_score: 2.0,
    };

    fn at(lon: f64, lat: f64, t: u64) -> (Point, u64) {
        (Point::new(lon, lat).unwrap(), t)
    }

    #[test]
    fn a_sudden_rise_is_a_hotspot_a_busy_place_is_not() {
        let now = 100 * H;
        let mut events = Vec::new();
        // The market: five reports every hour, for seven hours.
        for h in 0..7 {
            for i in 0..5 {
                events.push(at(10.001, 50.001, now - (h + 1) * H + i * 1000));
            }
        }
        // A quiet street: nothing, then six this hour.
        for i in 0..6 {
            events.push(at(10.055, 50.055, now - H + i * 1000));
        }
        // Too old to count, and not yet reported.
        events.push(at(10.055, 50.055, now - 20 * H));
        events.push(at(10.055, 50.055, now));
        let found = hotspots(events, RULES, now, 10);
        assert_eq!(found.len(), 1, "{found:?}");
        let h = &found[0];
        assert_eq!(h.recent, 6);
        assert_eq!(h.expected, 0.0);
        assert_eq!(h.score, 6.0);
        assert!(h.cell.contains(Point::new(10.055, 50.055).unwrap()));
        assert!((h.cell.max_lon() - h.cell.min_lon() - 0.01).abs() < 1e-9);
    }

    #[test]
    fn the_minimum_count_and_bad_rules_find_nothing() {
        let now = 10 * H;
        let two = [at(1.0, 1.0, now - 1), at(1.0, 1.0, now - 2)];
        assert!(hotspots(two, RULES, now, 10).is_empty());
        let bad = HotspotRules {
            cell_deg: 0.0,
            ..RULES
        };
        assert!(hotspots([at(1.0, 1.0, now - 1)], bad, now, 10).is_empty());
        assert_eq!(RULES.since_ms(now), 3 * H);
        assert_eq!(RULES.since_ms(1), 0);
    }

    proptest! {
        #[test]
        fn hotspots_keep_their_rules(
            raw in proptest::collection::vec((-180.0f64..180.0, -90.0f64..90.0, 0u64..20 * H), 0..200),
            cell in 0.001f64..10.0,
        ) {
            let now = 20 * H;
            let rules = HotspotRules { cell_deg: cell, ..RULES };
            let events: Vec<(Point, u64)> = raw.iter().map(|&(x, y, t)| at(x, y, t)).collect();
            let found = hotspots(events.clone(), rules, now, 50);
            prop_assert!(found.len() <= 50);
            for h in &found {
                prop_assert!(h.recent >= rules.min_count);
                prop_assert!(h.score >= rules.min_score);
                let inside = events.iter()
                    .filter(|(p, t)| *t >= now - H && *t < now && cell_of(*p, cell)
                        == cell_of(Point::new(h.cell.min_lon() + cell / 2.0,
                            h.cell.min_lat() + cell / 2.0).unwrap(), cell))
                    .count() as u64;
                prop_assert_eq!(inside, h.recent);
            }
        }
    }
}
