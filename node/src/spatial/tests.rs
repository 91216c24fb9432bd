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
        .map(|(id, p)| {
            (
                *id,
                distance_m(center.lon(), center.lat(), p.lon(), p.lat()),
            )
        })
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
            .filter(|(_, p)| b.contains(*p))
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
    let index = SpatialIndex::bulk_load(vec![(id(1), pt(-179.9, 0.0)), (id(2), pt(179.0, 0.0))]);
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
                    (b.min_lon()..=b.max_lon()).contains(&c.lon)
                        && (b.min_lat()..=b.max_lat()).contains(&c.lat)
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
