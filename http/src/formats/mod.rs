//! The file formats events are exported in, written once for the node's
//! command line (`sentinel-node export`) and both servers' export routes
//! (`GET /api/v1/export.csv`, `GET /api/v1/export.kml`): CSV ([`csv`],
//! RFC 4180) and KML 2.2 ([`kml`]), and the report time as RFC 3339
//! ([`rfc3339_of_ms`]). GeoJSON is JSON, written by serde where it is
//! needed.
//!
//! Pure functions appending to a `String`: a caller streams what they
//! return, a record at a time, so memory does not grow with the export.
//!
//! Never does: IO, read a clock, or decide what a caller may see (the
//! callers hand in what redaction left, invariant 12).

pub mod csv;
pub mod kml;

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

/// Largest Unix second RFC 3339 can write (9999-12-31T23:59:59Z): its
/// year has four digits.
pub const MAX_RFC3339_SECONDS: u64 = 253_402_300_800 - 1;

/// Unix milliseconds as RFC 3339 with milliseconds, in UTC
/// (`2024-05-01T12:00:00.250Z`); `None` after year 9999.
pub fn rfc3339_of_ms(ms: u64) -> Option<String> {
    if ms / 1000 > MAX_RFC3339_SECONDS {
        return None;
    }
    let time = UNIX_EPOCH.checked_add(Duration::from_millis(ms))?;
    let mut out = String::new();
    // humantime's Display fails (rather than panics) past year 9999, which
    // the check above already excludes; `write!` keeps that a `None`.
    write!(out, "{}", humantime::format_rfc3339_millis(time)).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_in_utc_with_milliseconds() {
        assert_eq!(
            rfc3339_of_ms(0).as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
        assert_eq!(
            rfc3339_of_ms(1_714_564_800_250).as_deref(),
            Some("2024-05-01T12:00:00.250Z")
        );
        let last = MAX_RFC3339_SECONDS * 1000 + 999;
        assert_eq!(
            rfc3339_of_ms(last).as_deref(),
            Some("9999-12-31T23:59:59.999Z")
        );
        assert_eq!(rfc3339_of_ms(last + 1), None);
        assert_eq!(rfc3339_of_ms(u64::MAX), None);
    }
}
