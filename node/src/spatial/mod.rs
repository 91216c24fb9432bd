//! The in-memory R-tree over event locations that serves the hot map
//! queries: bounding box, within a radius, k nearest, and grid clusters.
//!
//! The store keeps it in step with its writes ([`SpatialIndex::upsert`],
//! [`SpatialIndex::remove`]); it can always be rebuilt from the events view
//! with [`SpatialIndex::bulk_load`], so it is never the source of truth.
//!
//! Coordinates are WGS84 degrees. The tree itself is planar in degrees, so
//! it is only ever used to find *candidates*: every distance this module
//! reports or sorts by is the geodesic distance on the WGS84 ellipsoid
//! (Karney's algorithm, `geo::Geodesic`). Geodesic rather than Haversine
//! because it is exact to nanometres where Haversine's sphere is off by up
//! to ~0.5 %, and the hub's PostGIS `geography` distances are geodesic too:
//! a node and a hub asked the same radius question should give the same
//! answer.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use geo::{Distance, Geodesic};
use rstar::primitives::GeomWithData;
use rstar::{RTree, AABB};
use sentinel_schema::{EventId, Point};

/// Why a spatial query or its parameters are refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SpatialError {
    /// Bounding-box text that is not four comma-separated parts.
    #[error("bbox must be min_lon,min_lat,max_lon,max_lat; found {found} comma-separated parts")]
    BBoxParts { found: usize },
    /// A bounding-box part that does not parse as a number.
    #[error("bbox {field} is not a number: {text:?}")]
    BBoxNumber { field: &'static str, text: String },
    /// A bounding-box longitude that is NaN, infinite or outside -180..=180.
    #[error("bbox {field} {value} is not a finite longitude in -180..=180")]
    BBoxLongitude { field: &'static str, value: f64 },
    /// A bounding-box latitude that is NaN, infinite or outside -90..=90.
    #[error("bbox {field} {value} is not a finite latitude in -90..=90")]
    BBoxLatitude { field: &'static str, value: f64 },
    /// A bounding box whose minimum lies above its maximum on one axis.
    /// Boxes do not wrap the antimeridian: split such a box in two.
    #[error(
        "bbox min_{axis} {min} is greater than max_{axis} {max} \
         (boxes do not wrap the antimeridian; query two boxes instead)"
    )]
    BBoxInverted {
        axis: &'static str,
        min: f64,
        max: f64,
    },
    /// A radius that is negative, NaN or infinite.
    #[error("radius {0} m is not a finite, non-negative number of metres")]
    Radius(f64),
    /// A map zoom deeper than the clustering grid supports.
    #[error("zoom {zoom} is deeper than the deepest supported zoom {max}")]
    Zoom { zoom: u8, max: u8 },
}

/// A longitude/latitude rectangle in WGS84 degrees, boundaries inclusive.
///
/// It does not wrap the antimeridian: `min_lon <= max_lon` always, so a
/// view across 180° must be asked as two boxes. Exists only with valid
/// values; construct it with [`BBox::new`] or parse it from text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    min_lon: f64,
    min_lat: f64,
    max_lon: f64,
    max_lat: f64,
}

impl BBox {
    /// A box from its corners. Every value must be finite and in WGS84
    /// range, and each minimum at most its maximum (no antimeridian wrap).
    pub fn new(
        min_lon: f64,
        min_lat: f64,
        max_lon: f64,
        max_lat: f64,
    ) -> Result<BBox, SpatialError> {
        // `contains` is false for NaN, so NaN is refused along with infinities.
        for (field, value) in [("min_lon", min_lon), ("max_lon", max_lon)] {
            if !(-180.0..=180.0).contains(&value) {
                return Err(SpatialError::BBoxLongitude { field, value });
            }
        }
        for (field, value) in [("min_lat", min_lat), ("max_lat", max_lat)] {
            if !(-90.0..=90.0).contains(&value) {
                return Err(SpatialError::BBoxLatitude { field, value });
            }
        }
        if min_lon > max_lon {
            return Err(SpatialError::BBoxInverted {
                axis: "lon",
                min: min_lon,
                max: max_lon,
            });
        }
        if min_lat > max_lat {
            return Err(SpatialError::BBoxInverted {
                axis: "lat",
                min: min_lat,
                max: max_lat,
            });
        }
        Ok(BBox {
            min_lon,
            min_lat,
            max_lon,
            max_lat,
        })
    }

    /// The whole earth.
    pub fn world() -> BBox {
        BBox {
            min_lon: -180.0,
            min_lat: -90.0,
            max_lon: 180.0,
            max_lat: 90.0,
        }
    }

    pub fn min_lon(&self) -> f64 {
        self.min_lon
    }

    pub fn min_lat(&self) -> f64 {
        self.min_lat
    }

    pub fn max_lon(&self) -> f64 {
        self.max_lon
    }

    pub fn max_lat(&self) -> f64 {
        self.max_lat
    }

    fn envelope(&self) -> AABB<[f64; 2]> {
        AABB::from_corners([self.min_lon, self.min_lat], [self.max_lon, self.max_lat])
    }
}

/// Parses `min_lon,min_lat,max_lon,max_lat` (the order of the OGC/GeoJSON
/// `bbox`), tolerating spaces around the numbers.
impl FromStr for BBox {
    type Err = SpatialError;

    fn from_str(s: &str) -> Result<BBox, SpatialError> {
        const FIELDS: [&str; 4] = ["min_lon", "min_lat", "max_lon", "max_lat"];
        let parts: Vec<&str> = s.split(',').collect();
        if parts.len() != FIELDS.len() {
            return Err(SpatialError::BBoxParts { found: parts.len() });
        }
        let mut values = [0.0; 4];
        for ((value, part), field) in values.iter_mut().zip(&parts).zip(FIELDS) {
            let text = part.trim();
            *value = text.parse().map_err(|_| SpatialError::BBoxNumber {
                field,
                text: text.to_string(),
            })?;
        }
        let [min_lon, min_lat, max_lon, max_lat] = values;
        BBox::new(min_lon, min_lat, max_lon, max_lat)
    }
}

impl fmt::Display for BBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{},{}",
            self.min_lon, self.min_lat, self.max_lon, self.max_lat
        )
    }
}

/// One cell of the clustering grid with the events inside it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cluster {
    /// Mean longitude of the cell's events.
    pub lon: f64,
    /// Mean latitude of the cell's events.
    pub lat: f64,
    /// How many events the cell holds (at least one).
    pub count: usize,
    /// The smallest event id in the cell, so the same data always shows the
    /// same sample.
    pub sample: EventId,
}

/// The deepest zoom [`SpatialIndex::clusters`] accepts; its cells are about
/// 2 m wide at the equator, finer than any location fix.
pub const MAX_CLUSTER_ZOOM: u8 = 22;

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
const WHOLE_EARTH_METRES: f64 = 20_100_000.0;
/// First radius tried by [`SpatialIndex::nearest`]; each miss multiplies it.
const NEAREST_START_METRES: f64 = 1_000.0;
const NEAREST_GROWTH: f64 = 4.0;

type Entry = GeomWithData<[f64; 2], EventId>;

/// Event locations in an R-tree, plus each event's current position so that
/// moving or removing an event can find its old point.
#[derive(Debug, Default)]
pub struct SpatialIndex {
    tree: RTree<Entry>,
    positions: HashMap<EventId, Point>,
}

impl SpatialIndex {
    pub fn new() -> SpatialIndex {
        SpatialIndex::default()
    }

    /// Builds the index in one pass (much faster than repeated inserts and
    /// gives a better-balanced tree). When an id appears more than once, the
    /// last position given wins, as if the items were upserted in order.
    pub fn bulk_load(items: Vec<(EventId, Point)>) -> SpatialIndex {
        let mut last = HashMap::with_capacity(items.len());
        for (i, (id, _)) in items.iter().enumerate() {
            last.insert(*id, i);
        }
        // Keep input order (not map order) so the tree's shape is the same
        // on every run.
        let kept: Vec<(EventId, Point)> = items
            .into_iter()
            .enumerate()
            .filter(|(i, (id, _))| last.get(id) == Some(i))
            .map(|(_, item)| item)
            .collect();
        let entries = kept
            .iter()
            .map(|(id, at)| Entry::new([at.lon(), at.lat()], *id))
            .collect();
        SpatialIndex {
            tree: RTree::bulk_load(entries),
            positions: kept.into_iter().collect(),
        }
    }

    /// Puts the event at `at`, moving it if it was somewhere else.
    pub fn upsert(&mut self, id: EventId, at: Point) {
        if let Some(old) = self.positions.insert(id, at) {
            if old == at {
                return;
            }
            self.tree.remove(&Entry::new([old.lon(), old.lat()], id));
        }
        self.tree.insert(Entry::new([at.lon(), at.lat()], id));
    }

    /// Removes the event; false if it was not in the index.
    pub fn remove(&mut self, id: &EventId) -> bool {
        match self.positions.remove(id) {
            Some(old) => {
                self.tree.remove(&Entry::new([old.lon(), old.lat()], *id));
                true
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Where the event is, if it is in the index.
    pub fn position(&self, id: &EventId) -> Option<Point> {
        self.positions.get(id).copied()
    }

    /// The events inside the box, boundaries included, sorted by id.
    pub fn bbox(&self, b: &BBox) -> Vec<EventId> {
        let mut ids: Vec<EventId> = self
            .tree
            .locate_in_envelope(&b.envelope())
            .map(|e| e.data)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The events at most `metres` from `center` (geodesic, WGS84), with
    /// their distances, nearest first and ties broken by id.
    pub fn within_radius(
        &self,
        center: Point,
        metres: f64,
    ) -> Result<Vec<(EventId, f64)>, SpatialError> {
        if !(metres.is_finite() && metres >= 0.0) {
            return Err(SpatialError::Radius(metres));
        }
        Ok(self.hits_within(center, metres))
    }

    /// The `k` events nearest to `center` (geodesic, WGS84), nearest first,
    /// ties broken by id. Fewer if the index holds fewer.
    ///
    /// rstar's own nearest-neighbour search is not used: it ranks by planar
    /// distance in degrees, which at 80° latitude counts a degree of
    /// longitude as far as a degree of latitude although it is a sixth as
    /// long, and puts the two sides of the antimeridian 360° apart. Instead
    /// the radius grows until it holds at least `k` events; every event
    /// outside a radius is farther than every event inside it, so the `k`
    /// closest inside are the `k` closest overall.
    pub fn nearest(&self, center: Point, k: usize) -> Vec<(EventId, f64)> {
        if k == 0 {
            return Vec::new();
        }
        let mut metres = if k >= self.len() {
            WHOLE_EARTH_METRES
        } else {
            NEAREST_START_METRES
        };
        loop {
            let mut hits = self.hits_within(center, metres);
            if hits.len() >= k || metres >= WHOLE_EARTH_METRES {
                hits.truncate(k);
                return hits;
            }
            metres = (metres * NEAREST_GROWTH).min(WHOLE_EARTH_METRES);
        }
    }

    /// Groups the events inside `b` by the cells of a grid fixed to the
    /// earth (origin -180°, -90°), `360 / 2^zoom / 4` degrees on a side, so
    /// about four cells span a map tile at that zoom. The grid does not
    /// move with the box, so panning the map does not reshuffle clusters.
    ///
    /// Sorted by cell, south to north then west to east. Each cluster's
    /// position is the mean of its events (cells never straddle the
    /// antimeridian, so the mean is well defined).
    pub fn clusters(&self, b: &BBox, zoom: u8) -> Result<Vec<Cluster>, SpatialError> {
        if zoom > MAX_CLUSTER_ZOOM {
            return Err(SpatialError::Zoom {
                zoom,
                max: MAX_CLUSTER_ZOOM,
            });
        }
        let n_cols: u32 = 4 << zoom;
        let n_rows: u32 = n_cols / 2;
        let cell = 360.0 / f64::from(n_cols);
        // Summing in id order makes the float means identical however the
        // tree happens to be shaped.
        let mut inside: Vec<&Entry> = self.tree.locate_in_envelope(&b.envelope()).collect();
        inside.sort_unstable_by_key(|e| e.data);

        struct Acc {
            lon_sum: f64,
            lat_sum: f64,
            count: usize,
            sample: EventId,
        }
        let mut cells: BTreeMap<(u32, u32), Acc> = BTreeMap::new();
        for e in inside {
            let [lon, lat] = *e.geom();
            let key = (
                cell_index(lat + 90.0, cell, n_rows),
                cell_index(lon + 180.0, cell, n_cols),
            );
            let acc = cells.entry(key).or_insert(Acc {
                lon_sum: 0.0,
                lat_sum: 0.0,
                count: 0,
                sample: e.data,
            });
            acc.lon_sum += lon;
            acc.lat_sum += lat;
            acc.count += 1;
        }
        Ok(cells
            .into_values()
            .map(|a| Cluster {
                lon: a.lon_sum / a.count as f64,
                lat: a.lat_sum / a.count as f64,
                count: a.count,
                sample: a.sample,
            })
            .collect())
    }

    /// Every event within `metres` of `center`, sorted; `metres` is valid.
    fn hits_within(&self, center: Point, metres: f64) -> Vec<(EventId, f64)> {
        let mut hits: Vec<(EventId, f64)> = candidate_envelopes(center, metres)
            .iter()
            .flat_map(|env| self.tree.locate_in_envelope(env))
            .filter_map(|e| {
                let [lon, lat] = *e.geom();
                let d = geodesic_metres(center, lon, lat);
                (d <= metres).then_some((e.data, d))
            })
            .collect();
        hits.sort_unstable_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        hits
    }
}

/// The one distance function of this module: geodesic metres on WGS84.
fn geodesic_metres(from: Point, lon: f64, lat: f64) -> f64 {
    Geodesic.distance(
        geo::Point::new(from.lon(), from.lat()),
        geo::Point::new(lon, lat),
    )
}

/// Which grid cell a coordinate (already shifted to start at 0) falls in.
/// The last edge (lon 180, lat 90) belongs to the last cell rather than a
/// cell of its own.
fn cell_index(shifted: f64, cell: f64, n: u32) -> u32 {
    // The cast saturates, and the value is in 0..=n anyway.
    ((shifted / cell).floor() as u32).min(n - 1)
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
fn candidate_envelopes(center: Point, metres: f64) -> Vec<AABB<[f64; 2]>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64: a tiny seeded generator, so every run sees the same points.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        /// Uniform in `lo..=hi`.
        fn range(&mut self, lo: f64, hi: f64) -> f64 {
            lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / ((1u64 << 53) - 1) as f64)
        }

        fn id(&mut self) -> EventId {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&self.next_u64().to_be_bytes());
            b[8..].copy_from_slice(&self.next_u64().to_be_bytes());
            EventId(b)
        }
    }

    fn pt(lon: f64, lat: f64) -> Point {
        Point::new(lon, lat).unwrap()
    }

    fn id(n: u8) -> EventId {
        EventId([n; 16])
    }

    /// 20 000+ points, deliberately crowded where degree-space geometry is
    /// treacherous: near both poles, on both sides of the antimeridian, on
    /// the exact edges, and in one dense city.
    fn points() -> Vec<(EventId, Point)> {
        let mut rng = Rng(0x05e7_14e1);
        let mut out = Vec::new();
        for i in 0..20_000 {
            let (lon, lat) = match i % 6 {
                0 => (rng.range(-180.0, 180.0), rng.range(-90.0, 90.0)),
                1 => (rng.range(-180.0, 180.0), rng.range(84.0, 90.0)),
                2 => (rng.range(-180.0, 180.0), rng.range(-90.0, -84.0)),
                3 => (rng.range(174.0, 180.0), rng.range(-70.0, 70.0)),
                4 => (rng.range(-180.0, -174.0), rng.range(-70.0, 70.0)),
                _ => (rng.range(13.0, 13.8), rng.range(52.3, 52.7)),
            };
            out.push((rng.id(), pt(lon, lat)));
        }
        let edges = [
            (180.0, 0.0),
            (-180.0, 0.0),
            (0.0, 90.0),
            (0.0, -90.0),
            (180.0, 90.0),
            (-180.0, -90.0),
            (13.4, 52.5),
            (13.4, 52.5),
        ];
        for (lon, lat) in edges {
            out.push((rng.id(), pt(lon, lat)));
        }
        out
    }

    /// Brute force: every point's distance, sorted as the index sorts.
    fn all_by_distance(points: &[(EventId, Point)], center: Point) -> Vec<(EventId, f64)> {
        let mut all: Vec<(EventId, f64)> = points
            .iter()
            .map(|(id, p)| (*id, geodesic_metres(center, p.lon(), p.lat())))
            .collect();
        all.sort_unstable_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        all
    }

    #[test]
    fn bbox_agrees_with_brute_force() {
        let points = points();
        let index = SpatialIndex::bulk_load(points.clone());
        assert_eq!(index.len(), points.len());
        let mut rng = Rng(7);
        let mut boxes = vec![
            BBox::world(),
            BBox::new(170.0, -10.0, 180.0, 10.0).unwrap(),
            BBox::new(-180.0, -10.0, -170.0, 10.0).unwrap(),
            BBox::new(-180.0, 89.0, 180.0, 90.0).unwrap(),
            BBox::new(-180.0, -90.0, 180.0, -89.0).unwrap(),
            // Degenerate box exactly on two stored points: inclusive edges.
            BBox::new(13.4, 52.5, 13.4, 52.5).unwrap(),
            BBox::new(180.0, 0.0, 180.0, 90.0).unwrap(),
        ];
        for _ in 0..200 {
            let (a, b) = (rng.range(-180.0, 180.0), rng.range(-180.0, 180.0));
            let (c, d) = (rng.range(-90.0, 90.0), rng.range(-90.0, 90.0));
            boxes.push(BBox::new(a.min(b), c.min(d), a.max(b), c.max(d)).unwrap());
        }
        for b in boxes {
            let mut expected: Vec<EventId> = points
                .iter()
                .filter(|(_, p)| {
                    (b.min_lon..=b.max_lon).contains(&p.lon())
                        && (b.min_lat..=b.max_lat).contains(&p.lat())
                })
                .map(|(id, _)| *id)
                .collect();
            expected.sort_unstable();
            assert_eq!(index.bbox(&b), expected, "bbox {b}");
        }
        assert_eq!(
            index
                .bbox(&BBox::new(13.4, 52.5, 13.4, 52.5).unwrap())
                .len(),
            2
        );
    }

    #[test]
    fn radius_and_nearest_agree_with_brute_force() {
        let points = points();
        let index = SpatialIndex::bulk_load(points.clone());
        let mut rng = Rng(11);
        let mut centers = vec![
            pt(0.0, 90.0),
            pt(0.0, -90.0),
            pt(45.0, 89.99),
            pt(-120.0, -88.5),
            pt(180.0, 0.0),
            pt(-180.0, 30.0),
            pt(179.95, -60.0),
            pt(-179.999, 75.0),
            pt(13.4, 52.5),
            pt(0.0, 0.0),
        ];
        for _ in 0..14 {
            centers.push(pt(rng.range(-180.0, 180.0), rng.range(-90.0, 90.0)));
        }
        let radii = [
            0.0,
            50.0,
            2_000.0,
            25_000.0,
            300_000.0,
            1_500_000.0,
            5_000_000.0,
            12_000_000.0,
            20_010_000.0,
        ];
        for center in centers {
            let all = all_by_distance(&points, center);
            for r in radii {
                let expected: Vec<_> = all.iter().copied().filter(|(_, d)| *d <= r).collect();
                assert_eq!(
                    index.within_radius(center, r).unwrap(),
                    expected,
                    "{center:?} r={r}"
                );
            }
            for k in [1, 3, 25, 400, points.len() + 5] {
                let expected: Vec<_> = all.iter().copied().take(k).collect();
                assert_eq!(index.nearest(center, k), expected, "{center:?} k={k}");
            }
        }
        // The whole earth fits in the largest radius.
        assert_eq!(
            index
                .within_radius(pt(1.0, 2.0), 20_010_000.0)
                .unwrap()
                .len(),
            points.len()
        );
    }

    #[test]
    fn nearest_ranks_by_geodesic_not_planar_degrees() {
        // At 80° N, 5° of longitude (~97 km) is nearer than 1° of latitude
        // (~111 km), although it is five times farther in degrees.
        let index = SpatialIndex::bulk_load(vec![(id(1), pt(5.0, 80.0)), (id(2), pt(0.0, 81.0))]);
        let got = index.nearest(pt(0.0, 80.0), 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, id(1));
        // Across the antimeridian: 0.2° away, not 359.8°.
        let index =
            SpatialIndex::bulk_load(vec![(id(1), pt(-179.9, 0.0)), (id(2), pt(179.0, 0.0))]);
        assert_eq!(index.nearest(pt(179.9, 0.0), 1)[0].0, id(1));
        assert!(index.nearest(pt(0.0, 0.0), 0).is_empty());
        assert!(SpatialIndex::new().nearest(pt(0.0, 0.0), 3).is_empty());
    }

    #[test]
    fn radius_refuses_negative_nan_and_infinite() {
        let index = SpatialIndex::new();
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                index.within_radius(pt(0.0, 0.0), bad),
                Err(SpatialError::Radius(_))
            ));
        }
        assert_eq!(index.within_radius(pt(0.0, 0.0), 0.0), Ok(vec![]));
    }

    #[test]
    fn upsert_moves_and_remove_forgets() {
        let mut index = SpatialIndex::new();
        let berlin = BBox::new(13.0, 52.0, 14.0, 53.0).unwrap();
        let paris = BBox::new(2.0, 48.0, 3.0, 49.0).unwrap();
        index.upsert(id(1), pt(13.4, 52.5));
        index.upsert(id(2), pt(13.5, 52.6));
        assert_eq!(index.bbox(&berlin), vec![id(1), id(2)]);

        index.upsert(id(1), pt(2.35, 48.85));
        assert_eq!(index.len(), 2);
        assert_eq!(index.bbox(&berlin), vec![id(2)]);
        assert_eq!(index.bbox(&paris), vec![id(1)]);
        assert_eq!(index.position(&id(1)), Some(pt(2.35, 48.85)));
        assert_eq!(
            index.bbox(&BBox::world()).len(),
            2,
            "the old point is gone from the tree"
        );

        // Upserting to the same place is a no-op, not a second copy.
        index.upsert(id(1), pt(2.35, 48.85));
        assert_eq!(index.bbox(&BBox::world()).len(), 2);

        assert!(index.remove(&id(1)));
        assert!(!index.remove(&id(1)));
        assert_eq!(index.position(&id(1)), None);
        assert!(index.bbox(&paris).is_empty());
        assert!(index.remove(&id(2)));
        assert!(index.is_empty());
        assert!(index.bbox(&BBox::world()).is_empty());
    }

    #[test]
    fn bulk_load_keeps_the_last_position_of_a_repeated_id() {
        let index = SpatialIndex::bulk_load(vec![
            (id(1), pt(1.0, 1.0)),
            (id(2), pt(2.0, 2.0)),
            (id(1), pt(3.0, 3.0)),
            (id(2), pt(2.0, 2.0)),
        ]);
        assert_eq!(index.len(), 2);
        assert_eq!(index.position(&id(1)), Some(pt(3.0, 3.0)));
        assert_eq!(index.bbox(&BBox::world()), vec![id(1), id(2)]);
        assert!(index
            .bbox(&BBox::new(0.5, 0.5, 1.5, 1.5).unwrap())
            .is_empty());
    }

    #[test]
    fn cluster_counts_sum_to_the_bbox_count() {
        let points = points();
        let index = SpatialIndex::bulk_load(points.clone());
        let boxes = [
            BBox::world(),
            BBox::new(13.0, 52.0, 14.0, 53.0).unwrap(),
            BBox::new(170.0, -80.0, 180.0, 90.0).unwrap(),
        ];
        for b in boxes {
            let n = index.bbox(&b).len();
            for zoom in [0, 1, 3, 8, 14, MAX_CLUSTER_ZOOM] {
                let clusters = index.clusters(&b, zoom).unwrap();
                assert_eq!(
                    clusters.iter().map(|c| c.count).sum::<usize>(),
                    n,
                    "{b} zoom {zoom}"
                );
                for c in &clusters {
                    assert!(
                        (b.min_lon..=b.max_lon).contains(&c.lon)
                            && (b.min_lat..=b.max_lat).contains(&c.lat)
                    );
                }
                assert_eq!(clusters, index.clusters(&b, zoom).unwrap(), "deterministic");
            }
        }
        // Zoom 0: four columns of 90°, two rows.
        let world = index.clusters(&BBox::world(), 0).unwrap();
        assert_eq!(world.len(), 8);
        assert!(matches!(
            index.clusters(&BBox::world(), 23),
            Err(SpatialError::Zoom { zoom: 23, max: 22 })
        ));
    }

    #[test]
    fn cluster_sample_is_the_smallest_id_and_position_is_the_mean() {
        let index = SpatialIndex::bulk_load(vec![
            (id(9), pt(10.0, 10.0)),
            (id(4), pt(12.0, 14.0)),
            (id(7), pt(-100.0, -40.0)),
        ]);
        let got = index.clusters(&BBox::world(), 2).unwrap();
        assert_eq!(
            got,
            vec![
                Cluster {
                    lon: -100.0,
                    lat: -40.0,
                    count: 1,
                    sample: id(7)
                },
                Cluster {
                    lon: 11.0,
                    lat: 12.0,
                    count: 2,
                    sample: id(4)
                },
            ]
        );
    }

    #[test]
    fn bbox_parsing_names_the_problem() {
        let ok: BBox = " 13.0, 52.0 ,14.5,53 ".parse().unwrap();
        assert_eq!(
            (ok.min_lon(), ok.min_lat(), ok.max_lon(), ok.max_lat()),
            (13.0, 52.0, 14.5, 53.0)
        );
        assert_eq!(ok.to_string().parse::<BBox>(), Ok(ok));

        let check = |text: &str, expected: SpatialError| {
            assert_eq!(text.parse::<BBox>(), Err(expected), "{text:?}");
        };
        check("1,2,3", SpatialError::BBoxParts { found: 3 });
        check("1,2,3,4,5", SpatialError::BBoxParts { found: 5 });
        check("", SpatialError::BBoxParts { found: 1 });
        check(
            "a,2,3,4",
            SpatialError::BBoxNumber {
                field: "min_lon",
                text: "a".into(),
            },
        );
        check(
            "1,2,3,",
            SpatialError::BBoxNumber {
                field: "max_lat",
                text: "".into(),
            },
        );
        check(
            "1,2,181,4",
            SpatialError::BBoxLongitude {
                field: "max_lon",
                value: 181.0,
            },
        );
        check(
            "1,-91,3,4",
            SpatialError::BBoxLatitude {
                field: "min_lat",
                value: -91.0,
            },
        );
        check(
            "1,2,3,inf",
            SpatialError::BBoxLatitude {
                field: "max_lat",
                value: f64::INFINITY,
            },
        );
        check(
            "170,0,-170,1",
            SpatialError::BBoxInverted {
                axis: "lon",
                min: 170.0,
                max: -170.0,
            },
        );
        check(
            "0,5,1,4",
            SpatialError::BBoxInverted {
                axis: "lat",
                min: 5.0,
                max: 4.0,
            },
        );
        assert!(matches!(
            "NaN,0,1,1".parse::<BBox>(),
            Err(SpatialError::BBoxLongitude {
                field: "min_lon",
                ..
            })
        ));
        let message = "170,0,-170,1".parse::<BBox>().unwrap_err().to_string();
        assert!(
            message.contains("min_lon 170 is greater than max_lon -170"),
            "{message}"
        );
    }
}
