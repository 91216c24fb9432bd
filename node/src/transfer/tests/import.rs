//! Reading GeoJSON and CSV: what is accepted, what is refused and how the
//! refusal names the record and field, limits and times.

use super::*;
use crate::transfer::time::{rfc3339_ms, rfc3339_of_ms, MAX_RFC3339_SECONDS};

#[test]
fn format_names_and_extensions() {
    assert_eq!("GeoJSON".parse::<Format>(), Ok(Format::GeoJson));
    assert_eq!("csv".parse::<Format>(), Ok(Format::Csv));
    assert_eq!("CSV".parse::<Format>(), Ok(Format::Csv));
    assert_eq!("KML".parse::<Format>(), Ok(Format::Kml));
    assert_eq!(
        "xlsx".parse::<Format>(),
        Err(ParseFormatError {
            found: "xlsx".to_owned()
        })
    );
    assert_eq!(Format::from_path(Path::new("a.kml")), Some(Format::Kml));
    assert_eq!(
        Format::from_path(Path::new("a/b.geojson")),
        Some(Format::GeoJson)
    );
    assert_eq!(
        Format::from_path(Path::new("b.JSON")),
        Some(Format::GeoJson)
    );
    assert_eq!(Format::from_path(Path::new("b.Csv")), Some(Format::Csv));
    assert_eq!(Format::from_path(Path::new("b.txt")), None);
    assert_eq!(Format::from_path(Path::new("csv")), None);
}

#[test]
fn parses_a_feature_collection() {
    let input = format!(
        r#"{{"type":"FeatureCollection","bbox":[0,0,1,1],"features":[
              {{"type":"Feature","id":7,"geometry":{{"type":"Point","coordinates":[13.4,52.5]}},
               "properties":{{"id":"{A}","title":"Fire","description":"Smoke, lots",
                 "category":"fire","severity":5,"reported_at":"2024-05-01T14:00:00.250+02:00",
                 "status":"closed","assignee":null,"n_notes":2,"n_media":0,"conflicts":{{}}}}}},
              {{"type":"Feature","geometry":{{"type":"Point","coordinates":[-1.5,0,120]}},
               "properties":{{"title":"Flood","category":"water","severity":1,
                 "reported_ms":1000,"description":null}}}}
            ]}}"#
    );
    let records = parse(Format::GeoJson, input.as_bytes()).unwrap();
    let mut first = new_event("Fire", 13.4, 52.5, 1_714_564_800_250);
    first.description = "Smoke, lots".to_owned();
    first.severity = 5;
    let mut second = new_event("Flood", -1.5, 0.0, 1000);
    second.category = "water".to_owned();
    second.severity = 1;
    assert_eq!(
        records,
        vec![
            ImportRecord {
                id: Some(A.parse().unwrap()),
                new: first
            },
            ImportRecord {
                id: None,
                new: second
            },
        ]
    );
}

#[test]
fn parses_a_single_feature_and_an_empty_collection() {
    let input = format!(
        r#"{{"properties":{{{GOOD_PROPS}}},"type":"Feature",
                "geometry":{{"type":"Point","coordinates":[1,2]}}}}"#
    );
    let records = parse(Format::GeoJson, input.as_bytes()).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].new, {
        let mut e = new_event("Fire", 1.0, 2.0, 1_714_564_800_000);
        e.severity = 3;
        e
    });
    let empty = parse(
        Format::GeoJson,
        br#"{"features":[],"type":"FeatureCollection"}"#,
    );
    assert!(empty.unwrap().is_empty());
}

#[test]
fn parses_csv() {
    // A byte order mark, columns in any order, no `id`, no `description`,
    // and quoted text with commas, quotes and a newline.
    let input = "\u{feff}severity,lat,lon,category,title,reported_at\n\
                     2,52.5,13.4,fire,\"Fire, \"\"big\"\"\nand spreading\",2024-05-01T12:00:00Z\n\
                     4,0,0,flood,Flood,2024-05-01t12:00:01.5z\n";
    let records = parse(Format::Csv, input.as_bytes()).unwrap();
    let mut first = new_event(
        "Fire, \"big\"\nand spreading",
        13.4,
        52.5,
        1_714_564_800_000,
    );
    first.severity = 2;
    let mut second = new_event("Flood", 0.0, 0.0, 1_714_564_801_500);
    second.severity = 4;
    second.category = "flood".to_owned();
    assert_eq!(
        records,
        vec![
            ImportRecord {
                id: None,
                new: first
            },
            ImportRecord {
                id: None,
                new: second
            },
        ]
    );
}

#[test]
fn geojson_refusals_name_the_feature_and_field() {
    let g = Format::GeoJson;
    let point = "[13.4,52.5]";
    let without = |name: &str| {
        GOOD_PROPS
            .split(',')
            .filter(|p| !p.starts_with(&format!("\"{name}\"")))
            .collect::<Vec<_>>()
            .join(",")
    };
    // The second feature is the bad one, so the index is checked.
    let second = |props: &str, coords: &str| {
        format!(
            r#"{{"type":"FeatureCollection","features":[
                  {{"type":"Feature","geometry":{{"type":"Point","coordinates":{point}}},
                    "properties":{{{GOOD_PROPS}}}}},
                  {{"type":"Feature","geometry":{{"type":"Point","coordinates":{coords}}},
                    "properties":{{{props}}}}}]}}"#
        )
    };
    check_refused(g, &second(&without("title"), point), 2, "title");
    check_refused(
        g,
        &second(&format!("{GOOD_PROPS},\"title\":\"  \""), point),
        2,
        "title",
    );
    check_refused(g, &second(&without("category"), point), 2, "category");
    check_refused(g, &second(&without("severity"), point), 2, "severity");
    for bad in ["0", "6", "3.5", "\"3\"", "-1", "256"] {
        let props = format!("{},\"severity\":{bad}", without("severity"));
        check_refused(g, &second(&props, point), 2, "severity");
    }
    check_refused(g, &second(GOOD_PROPS, "[200,0]"), 2, "geometry.coordinates");
    check_refused(g, &second(GOOD_PROPS, "[0,-91]"), 2, "geometry.coordinates");
    check_refused(g, &second(GOOD_PROPS, "[0]"), 2, "geometry.coordinates");
    check_refused(
        g,
        &second(GOOD_PROPS, "[\"0\",\"1\"]"),
        2,
        "geometry.coordinates",
    );
    for bad in [
        "\"yesterday\"",
        "\"2024-13-01T00:00:00Z\"",
        "\"2024-05-01T12:00:00\"",
        "\"2024-05-01T12:00:00+25:00\"",
        "\"1969-12-31T23:59:59Z\"",
        "\"1970-01-01T00:30:00+01:00\"",
        "12",
    ] {
        let props = format!("{},\"reported_at\":{bad}", without("reported_at"));
        check_refused(g, &second(&props, point), 2, "reported_at");
    }
    check_refused(g, &second(&without("reported_at"), point), 2, "reported_at");
    let props = format!("{},\"reported_ms\":-5", without("reported_at"));
    check_refused(g, &second(&props, point), 2, "reported_ms");
    check_refused(
        g,
        &second(&format!("{GOOD_PROPS},\"id\":\"abc\""), point),
        2,
        "id",
    );
    check_refused(
        g,
        &second(&format!("{GOOD_PROPS},\"colour\":\"red\""), point),
        2,
        "colour",
    );

    let line = one_feature(GOOD_PROPS, "[[0,0],[1,1]]").replace("Point", "LineString");
    check_refused(g, &line, 1, "geometry.type");
    let no_geometry = r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","geometry":null,"properties":{}}]}"#;
    check_refused(g, no_geometry, 1, "geometry");
    let not_feature = r#"{"type":"FeatureCollection","features":[
            {"type":"Point","coordinates":[0,0]}]}"#;
    check_refused(g, not_feature, 1, "type");
    let no_props = one_feature(GOOD_PROPS, point).replace(&format!("{{{GOOD_PROPS}}}"), "[]");
    check_refused(g, &no_props, 1, "properties");
    check_refused(
        g,
        r#"{"type":"FeatureCollection","features":[3]}"#,
        1,
        "feature",
    );
}

#[test]
fn refuses_what_is_not_a_feature_collection() {
    for input in [
        r#"{"type":"Topology","features":[]}"#,
        r#"{"type":"FeatureCollection"}"#,
        r#"{"type":"FeatureCollection","features":{}}"#,
        r#"{"features":[]}"#,
        r#"[]"#,
        r#""FeatureCollection""#,
        r#"{"type":"Point","coordinates":[0,0]}"#,
    ] {
        assert!(
            matches!(
                parse(Format::GeoJson, input.as_bytes()),
                Err(TransferError::NotAFeatureCollection)
            ),
            "{input}"
        );
    }
    for input in [
        "",
        "{",
        r#"{"type":"FeatureCollection","features":[]} x"#,
        r#"{"type":"FeatureCollection","features":[],"features":[]}"#,
    ] {
        assert!(
            matches!(
                parse(Format::GeoJson, input.as_bytes()),
                Err(TransferError::Json(_))
            ),
            "{input}"
        );
    }
}

#[test]
fn csv_refusals_name_the_line_and_column() {
    let c = Format::Csv;
    let header = "id,title,description,category,severity,lon,lat,reported_at";
    let good = "1,Fire,,fire,3,13.4,52.5,2024-05-01T12:00:00Z";
    // The bad row is on line 3.
    let with = |row: &str| format!("{header}\n{}\n{row}\n", good.replacen("1,", ",", 1));
    let row = |f: &dyn Fn(&mut Vec<&str>)| {
        let mut cells: Vec<&str> = good.split(',').collect();
        cells[0] = "";
        f(&mut cells);
        with(&cells.join(","))
    };
    check_refused(c, &row(&|r| r[1] = ""), 3, "title");
    check_refused(c, &row(&|r| r[3] = " "), 3, "category");
    check_refused(c, &row(&|r| r[4] = "0"), 3, "severity");
    check_refused(c, &row(&|r| r[4] = "6"), 3, "severity");
    check_refused(c, &row(&|r| r[4] = "three"), 3, "severity");
    check_refused(c, &row(&|r| r[4] = ""), 3, "severity");
    check_refused(c, &row(&|r| r[5] = "NaN"), 3, "lon");
    check_refused(c, &row(&|r| r[5] = "200"), 3, "lon");
    check_refused(c, &row(&|r| r[6] = "inf"), 3, "lat");
    check_refused(c, &row(&|r| r[6] = "north"), 3, "lat");
    check_refused(c, &row(&|r| r[6] = ""), 3, "lat");
    check_refused(c, &row(&|r| r[7] = "2024-05-01"), 3, "reported_at");
    check_refused(c, &row(&|r| r[7] = ""), 3, "reported_at");
    check_refused(c, &row(&|r| r[0] = "xyz"), 3, "id");
    check_refused(c, &row(&|r| r[2] = "bell\u{7}"), 3, "description");
    // A quoted newline makes the next record start a line later.
    let multi = format!("{header}\n,\"Two\nlines\",,fire,3,0,0,2024-05-01T12:00:00Z\n,,,fire,3,0,0,2024-05-01T12:00:00Z\n");
    check_refused(c, &multi, 4, "title");

    check_refused(c, &format!("{header},colour\n"), 1, "colour");
    check_refused(c, &format!("{header},colour,Title\n"), 1, "colour");
    check_refused(c, &format!("{header},status,assignee,title\n"), 1, "title");
    check_refused(c, &header.replace(",lat", ""), 1, "lat");
    // Without a time column (and no time to default to), every record
    // would be refused: the header is.
    check_refused(c, &header.replace(",reported_at", ""), 1, "reported_at");
    // `reported_ms` is read too (the servers' `export.csv` writes it).
    let ms = header.replace(",reported_at", ",reported_ms");
    let records = parse(c, format!("{ms}\n,Fire,,fire,3,1,2,1000\n").as_bytes()).unwrap();
    assert_eq!(records[0].new.reported_ms, 1000);
    assert!(matches!(parse(c, b""), Err(TransferError::Csv(_))));
    let short_row = format!("{header}\n,Fire,,fire\n");
    assert!(matches!(
        parse(c, short_row.as_bytes()),
        Err(TransferError::Csv(_))
    ));
}

#[test]
fn limits_are_checked() {
    let one = one_feature(GOOD_PROPS, "[0,0]");
    assert!(matches!(
        parse_with_limits(Format::GeoJson, one.as_bytes(), 10, 10),
        Err(TransferError::TooLarge { size, max: 10 }) if size == one.len()
    ));
    let big = vec![b' '; MAX_INPUT_BYTES + 1];
    assert!(matches!(
        parse(Format::Csv, &big),
        Err(TransferError::TooLarge { .. })
    ));
    let two = one_feature(GOOD_PROPS, "[0,0]").replace("}]}", "},{}]}");
    assert!(matches!(
        parse_with_limits(Format::GeoJson, two.as_bytes(), 1 << 20, 1),
        Err(TransferError::TooManyRecords)
    ));
    assert!(matches!(
        parse_with_limits(Format::GeoJson, one.as_bytes(), 1 << 20, 0),
        Err(TransferError::TooManyRecords)
    ));
    let csv = "title,category,severity,lon,lat,reported_at\n\
                   a,b,1,0,0,2024-05-01T12:00:00Z\n\
                   a,b,1,0,0,2024-05-01T12:00:00Z\n";
    assert_eq!(
        parse_with_limits(Format::Csv, csv.as_bytes(), 1 << 20, 2)
            .unwrap()
            .len(),
        2
    );
    assert!(matches!(
        parse_with_limits(Format::Csv, csv.as_bytes(), 1 << 20, 1),
        Err(TransferError::TooManyRecords)
    ));
}

#[test]
fn times() {
    assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Ok(0));
    assert_eq!(rfc3339_ms("1970-01-01T01:00:00.0019+01:00"), Ok(1));
    // humantime checks the year before the offset is applied.
    assert!(rfc3339_ms("1969-12-31T23:00:00-01:00").is_err());
    assert_eq!(
        rfc3339_ms("2024-05-01T12:00:00-00:00"),
        Ok(1_714_564_800_000)
    );
    assert_eq!(
        rfc3339_of_ms(1).as_deref(),
        Some("1970-01-01T00:00:00.001Z")
    );
    let last = MAX_RFC3339_SECONDS * 1000 + 999;
    assert_eq!(
        rfc3339_of_ms(last).as_deref(),
        Some("9999-12-31T23:59:59.999Z")
    );
    assert_eq!(rfc3339_of_ms(last + 1), None);
    assert_eq!(rfc3339_of_ms(u64::MAX), None);
    for ms in [0, 1, 999, 1_714_564_800_250, last] {
        let text = rfc3339_of_ms(ms).unwrap();
        assert_eq!(rfc3339_ms(&text), Ok(ms), "{text}");
    }
    assert!(rfc3339_ms("2024-05-01T12:00:00ü+01:00").is_err());
    assert!(rfc3339_ms("2024-05-01T12:00:00+1:000").is_err());
}
