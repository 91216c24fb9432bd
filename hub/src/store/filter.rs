//! The one WHERE builder of the store's queries ([`Where`]; an event
//! filter's conditions, the same for a search and its clusters: an area
//! is a planar box test on the events' points), and how an area becomes
//! geography boxes PostGIS can answer ([`Boxes`], for readings).
//!
//! **Why slices.** A geography polygon's edges are geodesics, and PostGIS
//! refuses an edge of 180° or more, so an area is cut into slices at most
//! [`BBOX_SLICE_DEG`] of longitude wide and 45° of latitude high (one
//! index probe each; a world-wide box is 1,440 probes): it works, and the
//! east-west edges stay within about 0.001° of their parallels. An area
//! across the antimeridian (`min_lon > max_lon`, a [`Bounds`] that wraps)
//! is sliced on either side of it.
//!
//! Never does: run a statement, or check values (the API parsed them
//! into `sentinel_schema::query` types; the store only renders them).

use sentinel_schema::query::EventFilter;
use sentinel_schema::Bounds;
use tokio_postgres::types::ToSql;

use super::{int, StoreError};

/// The widest slice of longitude an area is cut into for PostGIS.
pub const BBOX_SLICE_DEG: f64 = 1.0;
/// The tallest slice of latitude (meridian edges are exact, but must stay
/// short of 180° too).
const LAT_SLICE_DEG: f64 = 45.0;

/// A WHERE clause under construction: conditions, all of which must hold,
/// and the arguments their placeholders name.
#[derive(Default)]
pub(super) struct Where {
    conditions: Vec<String>,
    args: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Where {
    /// Adds an argument, returning its placeholder (`$n`).
    pub(super) fn arg(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.args.push(Box::new(value));
        format!("${}", self.args.len())
    }

    /// Adds a condition.
    pub(super) fn and(&mut self, condition: String) {
        self.conditions.push(condition);
    }

    /// `WHERE …`, or nothing when no condition was added.
    pub(super) fn clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conditions.join(" AND "))
        }
    }

    /// The arguments, as a statement takes them.
    pub(super) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }

    /// The conditions of an event filter on `events e`; the geography of
    /// its `near` point, when it has one (for a distance).
    pub(super) fn events(&mut self, f: &EventFilter) -> Result<Option<String>, StoreError> {
        if let Some(area) = &f.area {
            // An event is a point, and an area is a box of longitudes and
            // latitudes: the planar test on the point's coordinates is
            // exact, answered by the `events_geom` index (migration V11)
            // in one probe per box. (Geography boxes had to be sliced into
            // up to 1,440 geodesic probes, seconds for a continent.)
            let [w, s, e, n] = area.corners();
            let boxes = if w <= e {
                vec![[w, s, e, n]]
            } else {
                vec![[w, s, 180.0, n], [-180.0, s, e, n]]
            };
            let tests: Vec<String> = boxes
                .into_iter()
                .map(|[lo, bottom, hi, top]| {
                    let (a, b, c, d) =
                        (self.arg(lo), self.arg(bottom), self.arg(hi), self.arg(top));
                    format!("e.geog::geometry && ST_MakeEnvelope({a}, {b}, {c}, {d}, 4326)")
                })
                .collect();
            self.and(format!("({})", tests.join(" OR ")));
        }
        let mut near_point = None;
        if let Some(near) = &f.near {
            let (x, y, m) = (
                self.arg(near.point.lon()),
                self.arg(near.point.lat()),
                self.arg(near.radius_m),
            );
            let point = format!("ST_SetSRID(ST_MakePoint({x}, {y}), 4326)::geography");
            self.and(format!("ST_DWithin(e.geog, {point}, {m})"));
            near_point = Some(point);
        }
        if let Some(text) = &f.text {
            let x = self.arg(text.clone());
            self.and(format!("e.search @@ websearch_to_tsquery('english', {x})"));
        }
        if !f.statuses.is_empty() {
            let statuses: Vec<String> = f.statuses.iter().map(|s| s.as_str().into()).collect();
            let x = self.arg(statuses);
            self.and(format!("e.status = ANY({x}::text[])"));
        }
        if let Some(category) = &f.category {
            let x = self.arg(category.clone());
            self.and(format!("e.category = {x}"));
        }
        if let Some(who) = &f.assignee {
            let x = self.arg(who.clone());
            self.and(format!("e.assignee = {x}"));
        }
        if let Some(lo) = f.min_severity {
            let x = self.arg(i16::from(lo));
            self.and(format!("e.severity >= {x}"));
        }
        if let Some(hi) = f.max_severity {
            let x = self.arg(i16::from(hi));
            self.and(format!("e.severity <= {x}"));
        }
        if let Some(from) = f.reported_from {
            let x = self.arg(int(from, "events.reported_ms")?);
            self.and(format!("e.reported_ms >= {x}"));
        }
        if let Some(to) = f.reported_to {
            let x = self.arg(int(to, "events.reported_ms")?);
            self.and(format!("e.reported_ms < {x}"));
        }
        Ok(near_point)
    }

    /// Adds the four edge arrays of `boxes` as arguments: the placeholders
    /// of `lo`, `bottom`, `hi` and `top`, each a `float8[]`, for
    /// `unnest(…) AS s(lo, bottom, hi, top)`.
    pub(super) fn boxes(&mut self, boxes: Boxes) -> [String; 4] {
        let Boxes {
            lo,
            bottom,
            hi,
            top,
        } = boxes;
        [self.arg(lo), self.arg(bottom), self.arg(hi), self.arg(top)]
    }
}

/// An area as slices PostGIS answers exactly: per slice its west (`lo`),
/// south (`bottom`), east (`hi`) and north (`top`) edge, in degrees.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Boxes {
    pub lo: Vec<f64>,
    pub bottom: Vec<f64>,
    pub hi: Vec<f64>,
    pub top: Vec<f64>,
}

impl Boxes {
    /// The slices of `bounds` (one box, or two across the antimeridian).
    pub(super) fn of(bounds: &Bounds) -> Boxes {
        Boxes::of_corners(bounds.corners())
    }

    /// The slices of `[min_lon, min_lat, max_lon, max_lat]`;
    /// `min_lon > max_lon` crosses the antimeridian. Values that make no
    /// box (NaN, `min_lat > max_lat`) make no slices.
    pub(super) fn of_corners(corners: [f64; 4]) -> Boxes {
        if corners.iter().any(|c| c.is_nan()) {
            return Boxes::default();
        }
        let [min_lon, min_lat, max_lon, max_lat] = corners;
        let (west, east) = if min_lon <= max_lon {
            slices(min_lon, max_lon, BBOX_SLICE_DEG)
        } else {
            let (mut west, mut east) = slices(min_lon, 180.0, BBOX_SLICE_DEG);
            let (w, e) = slices(-180.0, max_lon, BBOX_SLICE_DEG);
            west.extend(w);
            east.extend(e);
            (west, east)
        };
        let (south, north) = slices(min_lat, max_lat, LAT_SLICE_DEG);
        let mut boxes = Boxes::default();
        for (s, n) in south.iter().zip(&north) {
            for (w, e) in west.iter().zip(&east) {
                boxes.lo.push(*w);
                boxes.bottom.push(*s);
                boxes.hi.push(*e);
                boxes.top.push(*n);
            }
        }
        boxes
    }
}

/// `[from, to]` cut into slices at most `step` wide, as the slices' lower
/// and upper edges.
fn slices(from: f64, to: f64, step: f64) -> (Vec<f64>, Vec<f64>) {
    let (mut lo, mut hi) = (Vec::new(), Vec::new());
    let width = to - from;
    if width.is_nan() || width < 0.0 {
        return (lo, hi);
    }
    // At most 360 slices for any box on the globe.
    let n = ((width / step).ceil() as usize).clamp(1, 360);
    for i in 0..n {
        lo.push(from + width * i as f64 / n as f64);
        hi.push(if i + 1 == n {
            to
        } else {
            from + width * (i + 1) as f64 / n as f64
        });
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_box_is_cut_into_slices_that_cover_it_exactly() {
        let b = Boxes::of_corners([10.0, -50.0, 12.5, 50.0]);
        // 3 slices of longitude (2.5° at most 1° wide), 3 of latitude.
        assert_eq!(b.lo.len(), 9);
        assert_eq!(b.lo.iter().cloned().fold(f64::MAX, f64::min), 10.0);
        assert_eq!(b.hi.iter().cloned().fold(f64::MIN, f64::max), 12.5);
        assert_eq!(b.bottom.iter().cloned().fold(f64::MAX, f64::min), -50.0);
        assert_eq!(b.top.iter().cloned().fold(f64::MIN, f64::max), 50.0);
        assert!(b.lo.iter().zip(&b.hi).all(|(w, e)| e - w <= 1.0 + 1e-12));
        // A point box is one slice; nothing for a box that is none.
        assert_eq!(Boxes::of_corners([1.0, 2.0, 1.0, 2.0]).lo, vec![1.0]);
        assert!(Boxes::of_corners([0.0, 5.0, 1.0, 4.0]).lo.is_empty());
        assert!(Boxes::of_corners([f64::NAN, 0.0, 1.0, 1.0]).lo.is_empty());
    }

    #[test]
    fn bounds_across_the_antimeridian_are_sliced_on_either_side() {
        let bounds: Bounds = "179.5,-18,-179.5,-16".parse().unwrap();
        let b = Boxes::of(&bounds);
        assert_eq!(b.lo, vec![179.5, -180.0]);
        assert_eq!(b.hi, vec![180.0, -179.5]);
        assert_eq!((b.bottom.len(), b.top.len()), (2, 2));
        assert!(b.bottom.iter().all(|s| *s == -18.0));
        assert!(b.top.iter().all(|n| *n == -16.0));
    }
}
