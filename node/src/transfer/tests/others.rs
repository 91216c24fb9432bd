//! Files other tools wrote: their names mapped onto the event's
//! (`--map`), what the import does not know skipped on request, records
//! without a time, CSV's other names for longitude and latitude and its
//! other separator, non-point GeoJSON, and refusals naming the record by
//! its title and id.

use super::*;

fn options(map: &str, ignore_unknown: bool, now: Option<u64>) -> ImportOptions {
    ImportOptions {
        map: FieldMap::parse(&[map.to_owned()]).unwrap(),
        ignore_unknown,
        default_reported_ms: now,
    }
}

#[track_caller]
fn refused_with(format: Format, input: &str, o: &ImportOptions) -> String {
    match parse_with(format, input.as_bytes(), o) {
        Err(e @ TransferError::Record { .. }) => e.to_string(),
        other => panic!("expected a refused record, got {other:?}"),
    }
}

const NOW: u64 = 1_800_000_000_000;

#[test]
fn maps_are_read_and_bad_ones_refused() {
    let map = FieldMap::parse(&[
        " title = name , description=notes".to_owned(),
        "category=type".to_owned(),
    ])
    .unwrap();
    assert_eq!(map.field("name"), Some("title"));
    assert_eq!(map.field("type"), Some("category"));
    // A field mapped away is not read under its own name.
    assert_eq!(map.field("title"), None);
    assert_eq!(map.field("severity"), Some("severity"));
    assert_eq!(map.field("colour"), None);
    let bad = |spec: &str| FieldMap::parse(&[spec.to_owned()]).unwrap_err();
    assert_eq!(bad("title"), MapError::Syntax("title".to_owned()));
    assert_eq!(bad("=name"), MapError::Syntax("=name".to_owned()));
    assert_eq!(bad("colour=c"), MapError::UnknownField("colour".to_owned()));
    assert!(bad("colour=c").to_string().contains("title, description"));
    assert_eq!(
        bad("title=a,title=b"),
        MapError::FieldTwice("title".to_owned())
    );
    assert_eq!(
        bad("title=a,category=a"),
        MapError::NameTwice("a".to_owned())
    );
    assert_eq!(FieldMap::parse(&[]).unwrap(), FieldMap::default());
}

#[test]
fn csv_from_a_spreadsheet_with_mapped_names() {
    // A byte order mark, `;` as the separator, mapped names, `Latitude`
    // and `Longitude`, a column to skip, no time (the import's), quoted
    // fields with the separator in them.
    let input = "\u{feff}Name;notes;type;severity;Latitude;Longitude;owner\n\
                 \"Fire; big\";\"Smoke\nover the road\";fire;4;52.5;13.4;ada\n";
    let o = options(
        "title=Name,description=notes,category=type",
        true,
        Some(NOW),
    );
    let records = parse_with(Format::Csv, input.as_bytes(), &o).unwrap();
    let mut want = new_event("Fire; big", 13.4, 52.5, NOW);
    want.description = "Smoke\nover the road".to_owned();
    want.severity = 4;
    assert_eq!(
        records,
        vec![ImportRecord {
            id: None,
            new: want
        }]
    );

    // Without --ignore-unknown, the unknown column is named.
    let o = options(
        "title=Name,description=notes,category=type",
        false,
        Some(NOW),
    );
    let message = refused_with(Format::Csv, input, &o);
    assert!(message.contains("\"owner\""), "{message}");
    assert!(message.contains("--ignore-unknown"), "{message}");
    // Without a time to default to, the header is refused.
    let o = options("title=Name,description=notes,category=type", true, None);
    check_refused_with(Format::Csv, input, &o, 1, "reported_at");
}

#[track_caller]
fn check_refused_with(format: Format, input: &str, o: &ImportOptions, index: usize, field: &str) {
    match parse_with(format, input.as_bytes(), o) {
        Err(TransferError::Record {
            index: i, field: f, ..
        }) => assert_eq!((i, f.as_str()), (index, field)),
        other => panic!("expected record {index} field {field} refused, got {other:?}"),
    }
}

#[test]
fn csv_coordinates_under_other_names() {
    let o = options("", false, Some(NOW));
    for (lon, lat) in [
        ("lng", "lat"),
        ("LONGITUDE", "latitude"),
        ("X", "Y"),
        ("long", "Lat"),
    ] {
        let input = format!("title,category,severity,{lon},{lat}\nA,b,1,13.4,52.5\n");
        let records = parse_with(Format::Csv, input.as_bytes(), &o).unwrap();
        assert_eq!(
            records[0].new.location,
            Point::new(13.4, 52.5).unwrap(),
            "{lon},{lat}"
        );
    }
    // `lon` by name wins over `x`, which is then unknown.
    let input = "title,category,severity,lon,lat,x\nA,b,1,13.4,52.5,9\n";
    check_refused_with(Format::Csv, input, &o, 1, "x");
    // A mapped `lon` is not guessed.
    let o = options("lon=east", false, Some(NOW));
    let input = "title,category,severity,east,lat,x\nA,b,1,13.4,52.5,9\n";
    check_refused_with(Format::Csv, input, &o, 1, "x");
}

#[test]
fn refusals_name_the_record_and_the_mapped_field() {
    let o = options("title=Name,severity=level", false, Some(NOW));
    let input = format!("id,Name,category,level,lon,lat\n{A},Gas leak,hazard,9,1,2\n");
    let message = refused_with(Format::Csv, &input, &o);
    assert!(
        message.starts_with(&format!(
            "record 2 (\"Gas leak\", id {A}), field `level (mapped to severity)`:"
        )),
        "{message}"
    );
}

#[test]
fn geojson_from_other_tools() {
    // Mapped property names, one skipped, no time, a numeric feature id.
    let input = r#"{"type":"FeatureCollection","features":[
        {"type":"Feature","id":17,"geometry":{"type":"Point","coordinates":[13.4,52.5]},
         "properties":{"name":"Fire","kind":"fire","severity":2,"fid":17}}]}"#;
    let o = options("title=name,category=kind", true, Some(NOW));
    let records = parse_with(Format::GeoJson, input.as_bytes(), &o).unwrap();
    let mut want = new_event("Fire", 13.4, 52.5, NOW);
    want.severity = 2;
    assert_eq!(
        records,
        vec![ImportRecord {
            id: None,
            new: want
        }]
    );
    let o = options("title=name,category=kind", false, Some(NOW));
    check_refused_with(Format::GeoJson, input, &o, 1, "fid");

    // Non-point geometries are refused naming the feature.
    for (geometry, kind) in [
        (
            r#"{"type":"LineString","coordinates":[[0,0],[1,1]]}"#,
            "LineString",
        ),
        (
            r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}"#,
            "Polygon",
        ),
        (
            r#"{"type":"MultiPoint","coordinates":[[0,0],[1,1]]}"#,
            "MultiPoint",
        ),
    ] {
        let input = format!(
            r#"{{"type":"FeatureCollection","features":[
                {{"type":"Feature","geometry":{{"type":"Point","coordinates":[1,2]}},
                  "properties":{{{GOOD_PROPS}}}}},
                {{"type":"Feature","id":"road-7","geometry":{geometry},
                  "properties":{{"title":"Main road closure","category":"road","severity":2}}}}]}}"#
        );
        let message = refused_with(Format::GeoJson, &input, &options("", false, Some(NOW)));
        assert!(
            message.starts_with(
                "record 2 (\"Main road closure\", id road-7), field `geometry.type`: "
            ),
            "{message}"
        );
        assert!(message.contains(kind), "{message}");
    }
}

#[test]
fn a_record_without_a_time_takes_the_default_or_is_refused() {
    let props = r#""title":"Fire","category":"fire","severity":3"#;
    let input = one_feature(props, "[1,2]");
    let o = options("", false, Some(NOW));
    let records = parse_with(Format::GeoJson, input.as_bytes(), &o).unwrap();
    assert_eq!(records[0].new.reported_ms, NOW);
    check_refused(Format::GeoJson, &input, 1, "reported_at");
    // An empty cell takes it too, a time given is kept.
    let csv = "title,category,severity,lon,lat,reported_at\n\
               A,b,1,0,0,\n\
               B,b,1,0,0,2024-05-01T12:00:00Z\n";
    let records = parse_with(Format::Csv, csv.as_bytes(), &o).unwrap();
    assert_eq!(records[0].new.reported_ms, NOW);
    assert_eq!(records[1].new.reported_ms, 1_714_564_800_000);
    let kml = "<kml><Placemark><name>A</name>\
        <ExtendedData><Data name=\"category\"><value>b</value></Data>\
        <Data name=\"severity\"><value>1</value></Data></ExtendedData>\
        <Point><coordinates>0,0</coordinates></Point></Placemark></kml>";
    let records = parse_with(Format::Kml, kml.as_bytes(), &o).unwrap();
    assert_eq!(records[0].new.reported_ms, NOW);
    check_refused(Format::Kml, kml, 1, "reported_at");
}

#[test]
fn kml_extended_data_is_mapped() {
    let kml = "<kml><Placemark><name>ignored when mapped</name>\
        <ExtendedData><Data name=\"label\"><value>Fire</value></Data>\
        <Data name=\"type\"><value>fire</value></Data>\
        <Data name=\"severity\"><value>2</value></Data>\
        <Data name=\"source\"><value>x</value></Data></ExtendedData>\
        <Point><coordinates>1,2</coordinates></Point></Placemark></kml>";
    let o = options("title=label,category=type", true, Some(NOW));
    let records = parse_with(Format::Kml, kml.as_bytes(), &o).unwrap();
    let mut want = new_event("Fire", 1.0, 2.0, NOW);
    want.severity = 2;
    assert_eq!(
        records,
        vec![ImportRecord {
            id: None,
            new: want
        }]
    );
    let o = options("title=label,category=type", false, Some(NOW));
    check_refused_with(Format::Kml, kml, &o, 1, "source");
}
