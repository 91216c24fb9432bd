//! Writing the `events` view and reading the result back.

use super::*;
use proptest::prelude::*;
use serde_json::Value;

use crate::store::export::{test_rows, EventRow};
use crate::store::{Store, StoreError};
use crate::transfer::export::{write_csv_row, write_feature, write_placemark};
use crate::transfer::import_csv::CSV_HEADER;
use crate::transfer::time::MAX_RFC3339_SECONDS;

/// Whether two coordinates are equal to within one unit in the last
/// place. serde_json, built without its `float_roundtrip` feature,
/// parses some decimals one unit off (for example
/// -19.196988289177046 as -19.19698828917705), so GeoJSON coordinates
/// round-trip to within about 1e-14 degrees, not bit for bit. CSV
/// uses `f64::from_str`, which is exact.
fn close(a: f64, b: f64) -> bool {
    a == b || (a.signum() == b.signum() && a.to_bits().abs_diff(b.to_bits()) <= 1)
}

/// Equal records, coordinates compared with [`close`].
fn same(got: &[ImportRecord], want: &[ImportRecord]) -> bool {
    got.len() == want.len()
        && got.iter().zip(want).all(|(g, w)| {
            let at = |r: &ImportRecord| {
                let mut r = r.clone();
                r.new.location = Point::new(0.0, 0.0).unwrap();
                r
            };
            at(g) == at(w)
                && close(g.new.location.lon(), w.new.location.lon())
                && close(g.new.location.lat(), w.new.location.lat())
        })
}

/// One event for the `events` table.
struct Row {
    id: &'static str,
    new: NewEvent,
    status: &'static str,
    assignee: Option<&'static str>,
    conflicts: &'static str,
}

fn insert(store: &Store, fid: i64, row: &Row) {
    test_rows::insert(
        store,
        fid,
        &EventRow {
            id: row.id.parse().unwrap(),
            title: row.new.title.clone(),
            description: row.new.description.clone(),
            category: row.new.category.clone(),
            severity: row.new.severity,
            status: row.status.to_owned(),
            assignee: row.assignee.map(str::to_owned),
            location: row.new.location,
            reported_ms: row.new.reported_ms,
            n_notes: 2,
            n_media: 1,
            conflicts: serde_json::from_str(row.conflicts).unwrap(),
        },
    );
}

fn exported(format: Format, store: &Store) -> (usize, Vec<u8>) {
    let mut out = Vec::new();
    let n = export(format, store, &mut out).unwrap();
    (n, out)
}

#[test]
fn export_then_import_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("t.sqlite")).unwrap();
    let mut tricky = new_event(
        "Fire, \"big\" one",
        0.1 + 0.2,
        -33.868_820_1,
        1_714_564_800_250,
    );
    tricky.description = "line one\nline two, with \"quotes\"\ttab; ünïcødé ✓".to_owned();
    tricky.severity = 5;
    let rows = [
        // Inserted out of order: the export sorts by reported_ms, then id.
        Row {
            id: B,
            new: tricky,
            status: "assigned",
            assignee: Some("officer-7"),
            conflicts: r#"{"title":["Fire","Fire, \"big\" one"]}"#,
        },
        Row {
            id: A,
            // A title a spreadsheet would run as a formula.
            new: new_event("=1+1 later", 180.0, 90.0, 1_714_564_800_250),
            status: "reported",
            assignee: None,
            conflicts: "{}",
        },
        Row {
            id: B.replacen("ff", "01", 1).leak(),
            new: new_event("First", -180.0, -90.0, 0),
            status: "closed",
            assignee: None,
            conflicts: "{}",
        },
    ];
    for (fid, row) in rows.iter().enumerate() {
        insert(&store, fid as i64 + 1, row);
    }
    let expected: Vec<ImportRecord> = [2, 1, 0]
        .iter()
        .map(|&i| ImportRecord {
            id: Some(rows[i].id.parse().unwrap()),
            new: rows[i].new.clone(),
        })
        .collect();

    let (n, geojson) = exported(Format::GeoJson, &store);
    assert_eq!(n, 3);
    let records = parse(Format::GeoJson, &geojson).unwrap();
    assert!(same(&records, &expected), "{records:?}");
    let doc: Value = serde_json::from_slice(&geojson).unwrap();
    let tricky_feature = &doc["features"][2];
    assert_eq!(tricky_feature["id"], B);
    assert_eq!(tricky_feature["geometry"]["type"], "Point");
    let props = &tricky_feature["properties"];
    assert_eq!(props["status"], "assigned");
    assert_eq!(props["assignee"], "officer-7");
    assert_eq!(props["reported_at"], "2024-05-01T12:00:00.250Z");
    assert_eq!(props["reported_ms"], 1_714_564_800_250u64);
    assert_eq!(props["n_notes"], 2);
    assert_eq!(props["n_media"], 1);
    assert_eq!(props["conflicts"]["title"][1], "Fire, \"big\" one");
    assert_eq!(doc["features"][1]["properties"]["assignee"], Value::Null);

    let (n, kml) = exported(Format::Kml, &store);
    assert_eq!(n, 3);
    assert_eq!(parse(Format::Kml, &kml).unwrap(), expected);

    let (n, csv) = exported(Format::Csv, &store);
    assert_eq!(n, 3);
    assert_eq!(parse(Format::Csv, &csv).unwrap(), expected);
    let text = String::from_utf8(csv).unwrap();
    assert!(text.starts_with(
        "id,title,description,category,severity,status,assignee,lon,lat,reported_at\r\n"
    ));
    assert!(text.contains(",assigned,officer-7,"));
    // Defused in the file, as typed once imported (above).
    assert!(text.contains(",'=1+1 later,"), "{text}");
}

#[test]
fn export_of_an_empty_view_reimports() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("t.sqlite")).unwrap();
    for format in [Format::GeoJson, Format::Csv, Format::Kml] {
        let (n, out) = exported(format, &store);
        assert_eq!(n, 0);
        // An empty CSV export still has its header.
        assert_eq!(parse(format, &out).unwrap(), vec![]);
    }
}

#[test]
fn export_after_year_9999_and_corrupt_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("t.sqlite")).unwrap();
    let far = (MAX_RFC3339_SECONDS + 1) * 1000;
    insert(
        &store,
        1,
        &Row {
            id: A,
            new: new_event("Far", 1.0, 2.0, far),
            status: "reported",
            assignee: None,
            conflicts: "{}",
        },
    );
    let (_, geojson) = exported(Format::GeoJson, &store);
    let records = parse(Format::GeoJson, &geojson).unwrap();
    assert_eq!(records[0].new.reported_ms, far);
    // KML too: no TimeStamp, the time in `reported_ms`.
    let (_, kml) = exported(Format::Kml, &store);
    assert!(!String::from_utf8_lossy(&kml).contains("<TimeStamp>"));
    assert_eq!(parse(Format::Kml, &kml).unwrap()[0].new.reported_ms, far);
    assert!(matches!(
        export(Format::Csv, &store, &mut Vec::new()),
        Err(TransferError::UnrepresentableTime { reported_ms, .. }) if reported_ms == far
    ));

    test_rows::damage(&store, "reported_ms = 0, lon = 500");
    assert!(matches!(
        export(Format::GeoJson, &store, &mut Vec::new()),
        Err(TransferError::Store(StoreError::CorruptEventRow {
            fid: 1,
            column: "lon/lat"
        }))
    ));
    test_rows::damage(&store, "lon = 0, conflicts = '[]'");
    assert!(matches!(
        export(Format::Csv, &store, &mut Vec::new()),
        Err(TransferError::Store(StoreError::CorruptEventRow {
            fid: 1,
            column: "conflicts"
        }))
    ));
}

/// Text the node accepts: no control characters but newline and tab;
/// often CSV's and XML's specials, and what starts a spreadsheet formula.
/// (Nor U+FFFE and U+FFFF, which the node accepts but XML cannot carry:
/// KML writes them as U+FFFD.)
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => any::<char>().prop_filter("control", |c| {
                !c.is_control() && *c != '\u{FFFE}' && *c != '\u{FFFF}'
            }),
            1 => proptest::sample::select(vec![
                ',', '"', '\n', '\t', ' ', '\'', '<', '&', '>', ';', '=', '+', '-', '@',
            ]),
        ],
        0..max,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    /// Whatever text an event holds, and wherever it is, every format
    /// gives back exactly the event.
    #[test]
    fn any_event_round_trips_through_every_writer(
        title in text(40),
        description in text(200),
        category in text(20),
        severity in 1u8..=5,
        lon in -180.0f64..=180.0,
        lat in -90.0f64..=90.0,
        reported_ms in 0..=MAX_RFC3339_SECONDS * 1000,
    ) {
        let new = NewEvent {
            // Non-blank, and already trimmed as the view stores it.
            title: format!("t{}", title.trim()),
            description,
            category: format!("c{category}"),
            severity,
            location: Point::new(lon, lat).unwrap(),
            reported_ms,
        };
        let row = EventRow {
            id: EventId([7; 16]),
            title: new.title.clone(),
            description: new.description.clone(),
            category: new.category.clone(),
            severity,
            status: "reported".to_owned(),
            assignee: None,
            location: new.location,
            reported_ms,
            n_notes: 0,
            n_media: 0,
            conflicts: Value::Object(serde_json::Map::new()),
        };
        let expected = vec![ImportRecord { id: Some(EventId([7; 16])), new }];

        let mut csv_out = String::new();
        sentinel_http::formats::csv::record(&mut csv_out, &CSV_HEADER);
        write_csv_row(&mut csv_out, &row).unwrap();
        prop_assert_eq!(&parse(Format::Csv, csv_out.as_bytes()).unwrap(), &expected);

        let mut kml_out = sentinel_http::formats::kml::document_start("t");
        write_placemark(&mut kml_out, &row);
        kml_out.push_str(sentinel_http::formats::kml::DOCUMENT_END);
        prop_assert_eq!(&parse(Format::Kml, kml_out.as_bytes()).unwrap(), &expected);

        let mut json_out = b"{\"type\":\"FeatureCollection\",\"features\":[".to_vec();
        write_feature(&mut json_out, &row).unwrap();
        json_out.extend_from_slice(b"]}");
        let records = parse(Format::GeoJson, &json_out).unwrap();
        prop_assert!(same(&records, &expected), "{:?}", records);
    }
}
