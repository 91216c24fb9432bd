//! Coordinates as Sentinel stores them: WGS84 longitude and latitude in
//! degrees, always finite and in range.

/// Why a coordinate pair is refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PointError {
    #[error("longitude {0} is not a finite number in -180..=180")]
    Longitude(f64),
    #[error("latitude {0} is not a finite number in -90..=90")]
    Latitude(f64),
}

/// A WGS84 position. Exists only with valid values ("parse, don't
/// validate"): construct it with [`Point::new`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    lon: f64,
    lat: f64,
}

impl Point {
    pub fn new(lon: f64, lat: f64) -> Result<Point, PointError> {
        // `contains` is false for NaN, so NaN is refused too.
        if !(-180.0..=180.0).contains(&lon) {
            return Err(PointError::Longitude(lon));
        }
        if !(-90.0..=90.0).contains(&lat) {
            return Err(PointError::Latitude(lat));
        }
        Ok(Point { lon, lat })
    }

    pub fn lon(&self) -> f64 {
        self.lon
    }

    pub fn lat(&self) -> f64 {
        self.lat
    }
}

/// Why a bounding box is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BBoxError {
    /// Bounding-box text that is not four comma-separated parts.
    #[error("bbox must be min_lon,min_lat,max_lon,max_lat; found {found} comma-separated parts")]
    Parts { found: usize },
    /// A bounding-box part that does not parse as a number.
    #[error("bbox {field} is not a number: {text:?}")]
    Number { field: &'static str, text: String },
    /// A bounding-box longitude that is NaN, infinite or outside -180..=180.
    #[error("bbox {field} {value} is not a finite longitude in -180..=180")]
    Longitude { field: &'static str, value: f64 },
    /// A bounding-box latitude that is NaN, infinite or outside -90..=90.
    #[error("bbox {field} {value} is not a finite latitude in -90..=90")]
    Latitude { field: &'static str, value: f64 },
    /// A bounding box whose minimum lies above its maximum on one axis.
    /// A [`BBox`] does not wrap the antimeridian: a [`Bounds`] does.
    #[error(
        "bbox min_{axis} {min} is greater than max_{axis} {max} \
         (boxes do not wrap the antimeridian; query two boxes instead)"
    )]
    Inverted {
        axis: &'static str,
        min: f64,
        max: f64,
    },
}

/// A longitude/latitude rectangle in WGS84 degrees, boundaries inclusive.
///
/// It does not wrap the antimeridian: `min_lon <= max_lon` always ([`Bounds`]
/// is the box a map view asks for, which may). Exists only with valid
/// values; construct it with [`BBox::new`] or parse it from text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    min_lon: f64,
    min_lat: f64,
    max_lon: f64,
    max_lat: f64,
}

const BBOX_FIELDS: [&str; 4] = ["min_lon", "min_lat", "max_lon", "max_lat"];

/// Checks the four values of a box for range (not their order).
fn check_ranges(values: [f64; 4]) -> Result<(), BBoxError> {
    for (i, value) in values.into_iter().enumerate() {
        let field = BBOX_FIELDS[i];
        // `contains` is false for NaN, so NaN is refused along with infinities.
        if i % 2 == 0 && !(-180.0..=180.0).contains(&value) {
            return Err(BBoxError::Longitude { field, value });
        }
        if i % 2 == 1 && !(-90.0..=90.0).contains(&value) {
            return Err(BBoxError::Latitude { field, value });
        }
    }
    Ok(())
}

/// The four numbers of `min_lon,min_lat,max_lon,max_lat` (the order of the
/// OGC/GeoJSON `bbox`), tolerating spaces around them.
fn parse_four(s: &str) -> Result<[f64; 4], BBoxError> {
    let parts: Vec<&str> = s.split(',').collect();
    if parts.len() != BBOX_FIELDS.len() {
        return Err(BBoxError::Parts { found: parts.len() });
    }
    let mut values = [0.0; 4];
    for ((value, part), field) in values.iter_mut().zip(&parts).zip(BBOX_FIELDS) {
        let text = part.trim();
        *value = text.parse().map_err(|_| BBoxError::Number {
            field,
            text: text.to_string(),
        })?;
    }
    Ok(values)
}

impl BBox {
    /// A box from its corners. Every value must be finite and in WGS84
    /// range, and each minimum at most its maximum (no antimeridian wrap).
    pub fn new(min_lon: f64, min_lat: f64, max_lon: f64, max_lat: f64) -> Result<BBox, BBoxError> {
        check_ranges([min_lon, min_lat, max_lon, max_lat])?;
        if min_lon > max_lon {
            return Err(BBoxError::Inverted {
                axis: "lon",
                min: min_lon,
                max: max_lon,
            });
        }
        if min_lat > max_lat {
            return Err(BBoxError::Inverted {
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

    /// Whether `p` lies inside (boundaries included).
    pub fn contains(&self, p: Point) -> bool {
        (self.min_lon..=self.max_lon).contains(&p.lon())
            && (self.min_lat..=self.max_lat).contains(&p.lat())
    }
}

/// Parses `min_lon,min_lat,max_lon,max_lat`, tolerating spaces around the
/// numbers.
impl std::str::FromStr for BBox {
    type Err = BBoxError;

    fn from_str(s: &str) -> Result<BBox, BBoxError> {
        let [min_lon, min_lat, max_lon, max_lat] = parse_four(s)?;
        BBox::new(min_lon, min_lat, max_lon, max_lat)
    }
}

impl std::fmt::Display for BBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{},{},{},{}",
            self.min_lon, self.min_lat, self.max_lon, self.max_lat
        )
    }
}

/// The area a map view asks about: a box that may cross the antimeridian
/// (`min_lon > max_lon` means it does, as in GeoJSON), answered as the one
/// or two [`BBox`]es of [`Bounds::parts`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    min_lon: f64,
    min_lat: f64,
    max_lon: f64,
    max_lat: f64,
}

impl Bounds {
    /// Every value finite and in range; `min_lat <= max_lat`.
    pub fn new(
        min_lon: f64,
        min_lat: f64,
        max_lon: f64,
        max_lat: f64,
    ) -> Result<Bounds, BBoxError> {
        check_ranges([min_lon, min_lat, max_lon, max_lat])?;
        if min_lat > max_lat {
            return Err(BBoxError::Inverted {
                axis: "lat",
                min: min_lat,
                max: max_lat,
            });
        }
        Ok(Bounds {
            min_lon,
            min_lat,
            max_lon,
            max_lat,
        })
    }

    /// `[min_lon, min_lat, max_lon, max_lat]`.
    pub fn corners(&self) -> [f64; 4] {
        [self.min_lon, self.min_lat, self.max_lon, self.max_lat]
    }

    /// Whether the box crosses the antimeridian.
    pub fn wraps(&self) -> bool {
        self.min_lon > self.max_lon
    }

    /// The box as boxes that do not wrap: itself, or its parts west and
    /// east of the antimeridian.
    pub fn parts(&self) -> Vec<BBox> {
        let b = |w, e| BBox {
            min_lon: w,
            min_lat: self.min_lat,
            max_lon: e,
            max_lat: self.max_lat,
        };
        if self.wraps() {
            vec![b(self.min_lon, 180.0), b(-180.0, self.max_lon)]
        } else {
            vec![b(self.min_lon, self.max_lon)]
        }
    }

    /// Whether `p` lies inside (boundaries included).
    pub fn contains(&self, p: Point) -> bool {
        self.parts().iter().any(|b| b.contains(p))
    }

    /// The box grown to whole cells of a `step`-degree grid whose cell
    /// centres are the grid points `k * step` (so a location snapped to the
    /// nearest grid point, as redaction does, lies in the cell around it):
    /// a box cut to these cells says no more than the snapped locations do.
    pub fn widen_to_cells(&self, step: f64) -> Bounds {
        let down = |x: f64| ((x / step - 0.5).floor() + 0.5) * step;
        let up = |x: f64| ((x / step - 0.5).ceil() + 0.5) * step;
        let (mut w, mut e) = (down(self.min_lon), up(self.max_lon));
        if !self.wraps() && (w < -180.0 || e > 180.0) {
            // A cell across the antimeridian: keep the box on this side.
            w = w.max(-180.0);
            e = e.min(180.0);
        }
        Bounds {
            min_lon: w.clamp(-180.0, 180.0),
            min_lat: down(self.min_lat).max(-90.0),
            max_lon: e.clamp(-180.0, 180.0),
            max_lat: up(self.max_lat).min(90.0),
        }
    }
}

/// Parses `min_lon,min_lat,max_lon,max_lat`; `min_lon > max_lon` is a box
/// across the antimeridian.
impl std::str::FromStr for Bounds {
    type Err = BBoxError;

    fn from_str(s: &str) -> Result<Bounds, BBoxError> {
        let [min_lon, min_lat, max_lon, max_lat] = parse_four(s)?;
        Bounds::new(min_lon, min_lat, max_lon, max_lat)
    }
}

impl From<BBox> for Bounds {
    fn from(b: BBox) -> Bounds {
        Bounds {
            min_lon: b.min_lon,
            min_lat: b.min_lat,
            max_lon: b.max_lon,
            max_lat: b.max_lat,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_nan_infinite_and_out_of_range() {
        assert!(Point::new(13.4, 52.5).is_ok());
        assert!(Point::new(-180.0, -90.0).is_ok());
        assert!(matches!(
            Point::new(f64::NAN, 0.0),
            Err(PointError::Longitude(_))
        ));
        assert_eq!(
            Point::new(0.0, f64::INFINITY),
            Err(PointError::Latitude(f64::INFINITY))
        );
        assert_eq!(Point::new(180.5, 0.0), Err(PointError::Longitude(180.5)));
        assert_eq!(Point::new(0.0, -90.01), Err(PointError::Latitude(-90.01)));
    }

    #[test]
    fn bbox_parsing_names_the_problem() {
        let ok: BBox = " 13.0, 52.0 ,14.5,53 ".parse().unwrap();
        assert_eq!(
            (ok.min_lon(), ok.min_lat(), ok.max_lon(), ok.max_lat()),
            (13.0, 52.0, 14.5, 53.0)
        );
        assert_eq!(ok.to_string().parse::<BBox>(), Ok(ok));

        let check = |text: &str, expected: BBoxError| {
            assert_eq!(text.parse::<BBox>(), Err(expected), "{text:?}");
        };
        check("1,2,3", BBoxError::Parts { found: 3 });
        check("1,2,3,4,5", BBoxError::Parts { found: 5 });
        check("", BBoxError::Parts { found: 1 });
        check(
            "a,2,3,4",
            BBoxError::Number {
                field: "min_lon",
                text: "a".into(),
            },
        );
        check(
            "1,2,3,",
            BBoxError::Number {
                field: "max_lat",
                text: "".into(),
            },
        );
        check(
            "1,2,181,4",
            BBoxError::Longitude {
                field: "max_lon",
                value: 181.0,
            },
        );
        check(
            "1,-91,3,4",
            BBoxError::Latitude {
                field: "min_lat",
                value: -91.0,
            },
        );
        check(
            "1,2,3,inf",
            BBoxError::Latitude {
                field: "max_lat",
                value: f64::INFINITY,
            },
        );
        check(
            "170,0,-170,1",
            BBoxError::Inverted {
                axis: "lon",
                min: 170.0,
                max: -170.0,
            },
        );
        check(
            "0,5,1,4",
            BBoxError::Inverted {
                axis: "lat",
                min: 5.0,
                max: 4.0,
            },
        );
        assert!(matches!(
            "NaN,0,1,1".parse::<BBox>(),
            Err(BBoxError::Longitude {
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

    #[test]
    fn bounds_across_the_antimeridian_are_two_boxes() {
        let b: Bounds = "170,-10,-170,10".parse().unwrap();
        assert!(b.wraps());
        let parts = b.parts();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], BBox::new(170.0, -10.0, 180.0, 10.0).unwrap());
        assert_eq!(parts[1], BBox::new(-180.0, -10.0, -170.0, 10.0).unwrap());
        assert!(b.contains(Point::new(179.5, 0.0).unwrap()));
        assert!(b.contains(Point::new(-175.0, 0.0).unwrap()));
        assert!(!b.contains(Point::new(0.0, 0.0).unwrap()));
        assert!("0,5,1,4".parse::<Bounds>().is_err());
        let plain: Bounds = "1,2,3,4".parse().unwrap();
        assert_eq!(plain.parts(), vec![BBox::new(1.0, 2.0, 3.0, 4.0).unwrap()]);
    }

    #[test]
    fn widened_bounds_hold_whole_cells() {
        let step = 0.01;
        let b = Bounds::new(13.4012, 52.5203, 13.4018, 52.5207).unwrap();
        let w = b.widen_to_cells(step);
        let [w0, s0, e0, n0] = w.corners();
        // The cell around the grid point 13.40 is [13.395, 13.405].
        assert!((w0 - 13.395).abs() < 1e-9, "{w0}");
        assert!((e0 - 13.405).abs() < 1e-9, "{e0}");
        assert!((s0 - 52.515).abs() < 1e-9, "{s0}");
        assert!((n0 - 52.525).abs() < 1e-9, "{n0}");
        // Any box inside one cell widens to that same cell.
        let other = Bounds::new(13.3951, 52.5151, 13.3952, 52.5152).unwrap();
        assert_eq!(other.widen_to_cells(step).corners(), w.corners());
        // Never beyond the world.
        let edge = Bounds::new(179.999, 89.999, 180.0, 90.0).unwrap();
        let [_, _, e, n] = edge.widen_to_cells(step).corners();
        assert!(e <= 180.0 && n <= 90.0);
    }
}
