//! Analysis of events, on node and hub alike, with no network: pairs of
//! near-duplicate reports ([`duplicates`]), hotspots — cells of a grid
//! whose recent count rises above their own baseline ([`hotspots`]) —
//! and a summary of a set of events ([`summary`]).
//!
//! Pure functions over what a search answered: no IO, no clock (the
//! analysis's "now" comes in as an argument), no randomness (invariant 8).
//! The HTTP routes (`sentinel_http::api::analysis`) feed them the events
//! the caller may see, already redacted for the public, and bound how
//! many.

pub mod duplicates;
pub mod hotspots;
pub mod summary;

pub use duplicates::{near_duplicates, Candidate, DuplicatePair, DuplicateRules};
pub use hotspots::{hotspots, Hotspot, HotspotRules};
pub use summary::{summarise, Summary};

/// The mean radius of the earth, metres (IUGG).
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// The great-circle distance between two points on the mean sphere, in
/// metres (haversine; within 0.5 % of the WGS84 geodesic, enough to tell
/// "the same corner" from "the next street").
pub fn distance_m(a: crate::Point, b: crate::Point) -> f64 {
    let (la1, la2) = (a.lat().to_radians(), b.lat().to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon() - a.lon()).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Point;

    #[test]
    fn distances_are_those_of_the_sphere() {
        let p = |lon, lat| Point::new(lon, lat).unwrap_or_else(|e| panic!("{e}"));
        // One degree of latitude is about 111.2 km.
        let d = distance_m(p(10.0, 50.0), p(10.0, 51.0));
        assert!((d - 111_195.0).abs() < 10.0, "{d}");
        // Across the antimeridian, the short way round.
        let d = distance_m(p(179.9995, 0.0), p(-179.9995, 0.0));
        assert!((d - 111.2).abs() < 1.0, "{d}");
        assert_eq!(distance_m(p(3.0, 4.0), p(3.0, 4.0)), 0.0);
    }
}
