//! Files people import (`sentinel-node import`): GeoJSON, CSV and KML as
//! other tools write them. Parsing must never panic, whatever the bytes;
//! each format is tried on every input (the first byte picks nothing, so
//! the fuzzer's finds for one format feed the others).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sentinel_node::transfer::{parse, Format};

fuzz_target!(|data: &[u8]| {
    for format in [Format::GeoJson, Format::Csv, Format::Kml] {
        if let Ok(records) = parse(format, data) {
            // Whatever is accepted is a point the node can store.
            for r in records {
                assert!(r.new.location.lon().is_finite() && r.new.location.lat().is_finite());
            }
        }
    }
});
