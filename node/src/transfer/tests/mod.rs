//! Tests of import and export: reading files (`import`), and writing
//! them and reading them back (`export`); KML both ways (`kml`); files
//! other tools wrote (`others`: mapped names, unknown fields skipped,
//! records without a time, CSV's other names and separators, records
//! named in refusals).

use super::*;
use sentinel_schema::Point;

mod export;
mod import;
mod kml;
mod others;

const A: &str = "00112233445566778899aabbccddeeff";
const B: &str = "ffeeddccbbaa99887766554433221100";

fn new_event(title: &str, lon: f64, lat: f64, reported_ms: u64) -> NewEvent {
    NewEvent {
        title: title.to_owned(),
        description: String::new(),
        category: "fire".to_owned(),
        severity: 3,
        location: Point::new(lon, lat).unwrap(),
        reported_ms,
    }
}

/// Parses `input` and expects a refusal of record `index`, field
/// `field`.
#[track_caller]
fn check_refused(format: Format, input: &str, index: usize, field: &str) {
    match parse(format, input.as_bytes()) {
        Err(TransferError::Record {
            index: i,
            field: f,
            reason,
            ..
        }) => {
            assert_eq!((i, f.as_str()), (index, field), "reason: {reason}");
            assert!(!reason.is_empty());
        }
        other => panic!("expected record {index} field {field} refused, got {other:?}"),
    }
}

/// A FeatureCollection of one feature with these properties and
/// coordinates.
fn one_feature(properties: &str, coordinates: &str) -> String {
    format!(
        r#"{{"type":"FeatureCollection","features":[{{"type":"Feature",
                "geometry":{{"type":"Point","coordinates":{coordinates}}},
                "properties":{{{properties}}}}}]}}"#
    )
}

const GOOD_PROPS: &str =
    r#""title":"Fire","category":"fire","severity":3,"reported_at":"2024-05-01T12:00:00Z""#;
