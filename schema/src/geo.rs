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
}
