//! Geodesy on the WGS84 ellipsoid: the node's one distance function, and
//! the degree boxes that bound a radius query in the R-tree.

use geo::{Distance, Geodesic};
use rstar::AABB;
use sentinel_schema::Point;

/// WGS84 semi-major axis, metres.
const WGS84_A: f64 = 6_378_137.0;
/// WGS84 flattening.
const WGS84_F: f64 = 1.0 / 298.257_223_563;
/// The smallest meridional radius of curvature, `a(1 - e²)` (at the
/// equator). A path of length `r` can change latitude by at most
/// `r / MIN_MERIDIAN_RADIUS` radians, wherever it runs.
const MIN_MERIDIAN_RADIUS: f64 = WGS84_A * (1.0 - WGS84_F * (2.0 - WGS84_F));
/// Longer than any WGS84 geodesic (half a meridian, ≈ 20 003 931 m): a
/// radius this large covers the whole earth.
pub(super) const WHOLE_EARTH_METRES: f64 = 20_100_000.0;

/// Geodesic distance in metres between two WGS84 positions (WGS84
/// ellipsoid, Karney's algorithm via `geo`).
///
/// The node's one distance function: the R-tree's radius and nearest
/// queries and the `sentinel_distance_m` SQL function both use it, so the
/// in-memory index and SQL give the same distances.
pub fn distance_m(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    Geodesic.distance(geo::Point::new(lon1, lat1), geo::Point::new(lon2, lat2))
}

/// One or two degree boxes that together contain every point within
/// `metres` (geodesic) of `center`.
///
/// On the ellipsoid a path's length is at least `M·|Δφ|` (M, the meridional
/// radius of curvature, is never below `a(1-e²)`) and at least
/// `N·cos φ·|Δλ|` (the radius of the parallel, never below `a·cos φ` and
/// shrinking towards the poles). So the circle lies within `r / a(1-e²)`
/// of latitude, and within `r / (a·cos φmax)` of longitude, where φmax is
/// the box's latitude farthest from the equator. If the box reaches a pole
/// or spans more than 180° of longitude, it takes every longitude; if it
/// crosses the antimeridian, it is split in two.
pub(super) fn candidate_envelopes(center: Point, metres: f64) -> Vec<AABB<[f64; 2]>> {
    // A little slack so float rounding can never exclude a point that the
    // exact distance test would accept.
    let widen = |radians: f64| radians.to_degrees() * (1.0 + 1e-9) + 1e-9;
    let d_lat = widen(metres / MIN_MERIDIAN_RADIUS);
    let lat_lo = center.lat() - d_lat;
    let lat_hi = center.lat() + d_lat;
    let all_lon = |lo: f64, hi: f64| {
        vec![AABB::from_corners(
            [-180.0, lo.max(-90.0)],
            [180.0, hi.min(90.0)],
        )]
    };
    if lat_lo <= -90.0 || lat_hi >= 90.0 {
        return all_lon(lat_lo, lat_hi);
    }
    let lat_far = lat_lo.abs().max(lat_hi.abs());
    let d_lon = widen(metres / (WGS84_A * lat_far.to_radians().cos()));
    // NaN cannot arise (finite radius, cos φ > 0 short of the poles), but
    // if it did it would mean "no bound", so it takes every longitude too.
    if d_lon.is_nan() || d_lon >= 180.0 {
        return all_lon(lat_lo, lat_hi);
    }
    let lon_lo = center.lon() - d_lon;
    let lon_hi = center.lon() + d_lon;
    let boxed = |lo: f64, hi: f64| AABB::from_corners([lo, lat_lo], [hi, lat_hi]);
    // With d_lon < 180 the two halves of a split box cannot overlap, so no
    // event is found twice.
    if lon_lo <= -180.0 {
        vec![boxed(-180.0, lon_hi), boxed(lon_lo + 360.0, 180.0)]
    } else if lon_hi >= 180.0 {
        vec![boxed(lon_lo, 180.0), boxed(-180.0, lon_hi - 360.0)]
    } else {
        vec![boxed(lon_lo, lon_hi)]
    }
}
