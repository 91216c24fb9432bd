//! The public bisecting boxes around an event (`docs/security.md` 3.3,
//! invariant 12): whatever boxes a public client asks, it learns no more
//! of an event's place than the 0.01° cell its redacted location names.
//!
//! [`public_bisection`] halves a box around the event's true point again
//! and again, asking each half, and tiles the cell with boxes; every box
//! inside the cell must find the event, whether or not it holds the true
//! point, and boxes in the cells around it must not. A server that asks
//! its store the public's box as given (not widened to whole cells)
//! answers the halves without the point differently, and fails.

use std::future::Future;

use sentinel_schema::access::COARSE_DEGREES;

/// Kept between the boxes asked and the cell's edges, so no box touches a
/// neighbouring cell.
const MARGIN: f64 = 1e-7;
/// Halvings of the box around the point (half along each axis).
const HALVINGS: usize = 30;
/// Boxes per side of the tiling of the cell.
const TILES: usize = 5;

/// A box as `bbox` takes it (each number printed exactly).
fn bbox(b: [f64; 4]) -> String {
    format!("{},{},{},{}", b[0], b[1], b[2], b[3])
}

/// Asks `finds(bbox)` (does a public search with this `bbox` find the
/// event at `lon`, `lat`?) for boxes bisecting the event's cell around
/// the point, boxes tiling the cell, and boxes in the eight cells around
/// it; fails unless every box in the cell finds the event and none
/// outside does. Returns how many boxes were asked.
pub async fn public_bisection<F, Fut>(lon: f64, lat: f64, mut finds: F) -> usize
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = bool>,
{
    let step = COARSE_DEGREES;
    let centre = |x: f64| (x / step).round() * step;
    let (clon, clat) = (centre(lon), centre(lat));
    let half = step / 2.0;
    let cell = [
        clon - half + MARGIN,
        clat - half + MARGIN,
        clon + half - MARGIN,
        clat + half - MARGIN,
    ];
    assert!(
        cell[0] < lon && lon < cell[2] && cell[1] < lat && lat < cell[3],
        "the point lies inside its cell"
    );
    let mut asked = 0;
    // Halving: the half with the point and the half without, each asked.
    let mut b = cell;
    for i in 0..HALVINGS {
        let axis = i % 2;
        let p = if axis == 0 { lon } else { lat };
        let mid = (b[axis] + b[axis + 2]) / 2.0;
        let (mut low, mut high) = (b, b);
        low[axis + 2] = mid;
        high[axis] = mid;
        let (with, without) = if p <= mid { (low, high) } else { (high, low) };
        assert!(
            finds(bbox(with)).await,
            "a box around the point, {}, finds it",
            bbox(with)
        );
        assert!(
            finds(bbox(without)).await,
            "a box in the same cell without the point, {}, finds it too: \
             the public learns nothing finer than the cell",
            bbox(without)
        );
        asked += 2;
        b = with;
    }
    // Tiles of the cell: each finds it, whether or not it holds the point.
    let side = (cell[2] - cell[0]) / TILES as f64;
    for i in 0..TILES {
        for j in 0..TILES {
            let tile = [
                cell[0] + side * i as f64,
                cell[1] + side * j as f64,
                cell[0] + side * (i + 1) as f64,
                cell[1] + side * (j + 1) as f64,
            ];
            assert!(finds(bbox(tile)).await, "tile {} finds it", bbox(tile));
            asked += 1;
        }
    }
    // The cells around it: none finds it (the filter does filter).
    for dx in [-1.0, 0.0, 1.0] {
        for dy in [-1.0, 0.0, 1.0] {
            if dx == 0.0 && dy == 0.0 {
                continue;
            }
            let near = [
                cell[0] + dx * step,
                cell[1] + dy * step,
                cell[2] + dx * step,
                cell[3] + dy * step,
            ];
            assert!(
                !finds(bbox(near)).await,
                "a box in the next cell, {}, does not find it",
                bbox(near)
            );
            asked += 1;
        }
    }
    asked
}
