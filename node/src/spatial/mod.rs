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

use rstar::primitives::GeomWithData;
use rstar::{RTree, AABB};
pub use sentinel_schema::BBox;
use sentinel_schema::{BBoxError, EventId, Point};

// `geodesy` is crate-visible so that `sqlfn` can register the same
// distance function with SQLite.
pub(crate) mod geodesy;
#[cfg(test)]
mod tests;

use geodesy::{candidate_envelopes, distance_m, WHOLE_EARTH_METRES};

/// Why a spatial query or its parameters are refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SpatialError {
    /// A bounding box that is not four valid numbers in order.
    #[error(transparent)]
    BBox(#[from] BBoxError),
    /// A radius that is negative, NaN or infinite.
    #[error("radius {0} m is not a finite, non-negative number of metres")]
    Radius(f64),
    /// A map zoom deeper than the clustering grid supports.
    #[error("zoom {zoom} is deeper than the deepest supported zoom {max}")]
    Zoom { zoom: u8, max: u8 },
}

/// The R-tree envelope of a box.
fn envelope(b: &BBox) -> AABB<[f64; 2]> {
    AABB::from_corners([b.min_lon(), b.min_lat()], [b.max_lon(), b.max_lat()])
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
            .locate_in_envelope(&envelope(b))
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
        let mut inside: Vec<&Entry> = self.tree.locate_in_envelope(&envelope(b)).collect();
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
                let d = distance_m(center.lon(), center.lat(), lon, lat);
                (d <= metres).then_some((e.data, d))
            })
            .collect();
        hits.sort_unstable_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        hits
    }
}

/// Which grid cell a coordinate (already shifted to start at 0) falls in.
/// The last edge (lon 180, lat 90) belongs to the last cell rather than a
/// cell of its own.
fn cell_index(shifted: f64, cell: f64, n: u32) -> u32 {
    // The cast saturates, and the value is in 0..=n anyway.
    ((shifted / cell).floor() as u32).min(n - 1)
}
