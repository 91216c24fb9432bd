//! KML: the export read back, what other tools write (SimpleData, a
//! namespace prefix, Folders), markup and non-ASCII text, and what is
//! refused: non-point geometries naming the placemark, malformed XML
//! naming its line and column, a DOCTYPE (no entity is ever expanded).

use super::*;
use crate::store::export::{test_rows, EventRow};
use crate::store::Store;
use serde_json::Value;

/// A KML document around `placemarks`.
fn kml(placemarks: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <kml xmlns=\"http://www.opengis.net/kml/2.2\"><Document><name>x</name>\n\
         {placemarks}\n</Document></kml>\n"
    )
}

const GOOD: &str = "<Placemark><name>Fire</name>\
    <TimeStamp><when>2024-05-01T12:00:00Z</when></TimeStamp>\
    <ExtendedData><Data name=\"category\"><value>fire</value></Data>\
    <Data name=\"severity\"><value>3</value></Data></ExtendedData>\
    <Point><coordinates>13.4,52.5</coordinates></Point></Placemark>";

#[track_caller]
fn xml_refused(input: &str, line: usize, text: &str) {
    match parse(Format::Kml, input.as_bytes()) {
        Err(TransferError::Xml {
            line: l, reason, ..
        }) => {
            assert_eq!(l, line, "{reason}");
            assert!(reason.contains(text), "{reason}");
        }
        other => panic!("expected invalid XML at line {line}, got {other:?}"),
    }
}

#[test]
fn the_export_reads_back_with_markup_and_non_ascii_intact() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("t.sqlite")).unwrap();
    let title = "<&>\"' Zürich — 東京 ✓";
    let mut new = new_event(title, -0.1276, 51.5072, 1_714_564_800_250);
    new.description = "a <b>bold</b> & \"quoted\" 'claim'\nline two\ttab ]]> end".to_owned();
    new.category = "R&D <lab>".to_owned();
    new.severity = 4;
    test_rows::insert(
        &store,
        1,
        &EventRow {
            id: A.parse().unwrap(),
            title: new.title.clone(),
            description: new.description.clone(),
            category: new.category.clone(),
            severity: new.severity,
            status: "assigned".to_owned(),
            assignee: Some("o'brien".to_owned()),
            location: new.location,
            reported_ms: new.reported_ms,
            n_notes: 1,
            n_media: 0,
            conflicts: Value::Object(serde_json::Map::new()),
        },
    );
    let mut out = Vec::new();
    assert_eq!(export(Format::Kml, &store, &mut out).unwrap(), 1);
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<kml xmlns=\"http://www.opengis.net/kml/2.2\">"));
    assert!(
        text.contains("<name>&lt;&amp;&gt;&quot;&apos; Zürich — 東京 ✓</name>"),
        "{text}"
    );
    assert!(text.contains("<TimeStamp><when>2024-05-01T12:00:00.250Z</when></TimeStamp>"));
    assert!(text.contains("<Data name=\"assignee\"><value>o&apos;brien</value></Data>"));
    assert!(text.contains("<Point><coordinates>-0.1276,51.5072</coordinates></Point>"));
    assert_eq!(
        parse(Format::Kml, &out).unwrap(),
        vec![ImportRecord {
            id: Some(A.parse().unwrap()),
            new
        }]
    );
}

#[test]
fn kml_as_other_tools_write_it() {
    // A namespace prefix, Folders, SchemaData (GDAL, QGIS), CDATA, an
    // altitude, whitespace around the coordinates, an entity and a
    // character reference, attributes the import does not read.
    let input = "<?xml version=\"1.0\"?>\n\
        <k:kml xmlns:k=\"http://www.opengis.net/kml/2.2\"><k:Document><k:Folder><k:name>f</k:name>\n\
        <k:Placemark id=\"p1\"><k:name>Flood &amp; mud &#x2014; &#233;</k:name>\
        <k:description><![CDATA[<p>Water <b>40 cm</b></p>]]></k:description>\
        <k:styleUrl>#red</k:styleUrl>\
        <k:ExtendedData><k:SchemaData schemaUrl=\"#s\">\
        <k:SimpleData name=\"category\">water</k:SimpleData>\
        <k:SimpleData name=\"severity\">2</k:SimpleData>\
        <k:SimpleData name=\"reported_at\">2024-05-01T14:00:00+02:00</k:SimpleData>\
        </k:SchemaData></k:ExtendedData>\
        <k:Point><k:coordinates>\n  13.4,52.5,34.0\n  </k:coordinates></k:Point></k:Placemark>\n\
        </k:Folder></k:Document></k:kml>";
    let records = parse(Format::Kml, input.as_bytes()).unwrap();
    let mut want = new_event("Flood & mud — é", 13.4, 52.5, 1_714_564_800_000);
    want.description = "<p>Water <b>40 cm</b></p>".to_owned();
    want.category = "water".to_owned();
    want.severity = 2;
    assert_eq!(
        records,
        vec![ImportRecord {
            id: None,
            new: want
        }]
    );

    // An empty document, and self-closing elements.
    assert_eq!(parse(Format::Kml, kml("").as_bytes()).unwrap(), vec![]);
    let empty_point = kml(&GOOD.replace(
        "<Point><coordinates>13.4,52.5</coordinates></Point>",
        "<Point/>",
    ));
    check_refused(Format::Kml, &empty_point, 1, "coordinates");
}

#[test]
fn non_point_geometries_are_refused_naming_the_placemark() {
    for geometry in [
        "<LineString><coordinates>0,0 1,1</coordinates></LineString>",
        "<Polygon><outerBoundaryIs><LinearRing><coordinates>0,0 1,0 1,1 0,0</coordinates>\
         </LinearRing></outerBoundaryIs></Polygon>",
        "<MultiGeometry><Point><coordinates>0,0</coordinates></Point></MultiGeometry>",
    ] {
        let road = format!(
            "<Placemark><name>Main road closure</name>\
             <ExtendedData><Data name=\"id\"><value>{B}</value></Data></ExtendedData>\
             {geometry}</Placemark>"
        );
        let input = kml(&format!("{GOOD}\n{road}"));
        match parse(Format::Kml, input.as_bytes()) {
            Err(e @ TransferError::Record { .. }) => {
                let message = e.to_string();
                assert!(
                    message.starts_with(&format!(
                        "record 2 (\"Main road closure\", id {B}), field `geometry`: a "
                    )),
                    "{message}"
                );
                assert!(message.contains("not a Point"), "{message}");
            }
            other => panic!("{geometry}: {other:?}"),
        }
    }
    let no_geometry = kml("<Placemark><name>Nowhere</name></Placemark>");
    check_refused(Format::Kml, &no_geometry, 1, "geometry");
    for bad in ["200,0", "0", "a,b", "0,0 1,1", ""] {
        let input = kml(&GOOD.replace("13.4,52.5", bad));
        check_refused(Format::Kml, &input, 1, "coordinates");
    }
    let unknown = GOOD.replace("\"category\"", "\"colour\"");
    check_refused(Format::Kml, &kml(&unknown), 1, "colour");
    let twice = GOOD.replace(
        "</ExtendedData>",
        "<Data name=\"severity\"><value>4</value></Data></ExtendedData>",
    );
    check_refused(Format::Kml, &kml(&twice), 1, "severity");
    let bad_severity = GOOD.replace("<value>3</value>", "<value>9</value>");
    check_refused(Format::Kml, &kml(&bad_severity), 1, "severity");
}

#[test]
fn malformed_xml_is_refused_naming_line_and_column() {
    // A mismatched end tag on line 3.
    let input = "<kml>\n<Document>\n<Placemark></Document>\n</kml>";
    xml_refused(input, 3, "");
    // Truncated: the end is named, on the line after the last placemark.
    let whole = kml(GOOD);
    let cut = &whole[..whole.len() - "</Document></kml>\n".len()];
    xml_refused(cut, 4, "ends inside <Document>");
    // An `&` that is not a reference, an unknown entity, a bad reference.
    xml_refused(&kml(&GOOD.replace("Fire", "Fire & smoke")), 3, "&amp;");
    xml_refused(&kml(&GOOD.replace("Fire", "Fire &nbsp;")), 3, "entity");
    xml_refused(
        &kml(&GOOD.replace("Fire", "&#xD800;")),
        3,
        "not a character",
    );
    // Not UTF-8.
    let mut latin1 = kml(GOOD).into_bytes();
    let at = latin1.windows(4).position(|w| w == b"Fire").unwrap();
    latin1[at + 1] = 0xEF;
    assert!(matches!(
        parse(Format::Kml, &latin1),
        Err(TransferError::Xml { line: 3, .. })
    ));
    match parse(Format::Kml, b"<gpx><wpt/></gpx>") {
        Err(TransferError::NotKml(why)) => assert!(why.contains("<gpx>"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse(Format::Kml, b""),
        Err(TransferError::NotKml(_))
    ));
    xml_refused("<kml></kml><kml></kml>", 1, "second root");
}

/// No entity is expanded: a DOCTYPE, with internal entities (a "billion
/// laughs") or an external one reading a local file, is refused before
/// anything is read from it.
#[test]
fn a_doctype_is_refused_and_no_entity_is_expanded() {
    let laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE kml [\n\
        <!ENTITY lol \"lol\">\n\
        <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n]>\n\
        <kml><Document><Placemark><name>&lol2;</name></Placemark></Document></kml>";
    xml_refused(laughs, 2, "DOCTYPE");
    let external = "<?xml version=\"1.0\"?>\n\
        <!DOCTYPE kml [<!ENTITY secret SYSTEM \"file:///etc/passwd\">]>\n\
        <kml><Document><Placemark><name>&secret;</name></Placemark></Document></kml>";
    xml_refused(external, 2, "DOCTYPE");
    // Without a DOCTYPE, an entity reference is refused by name.
    let undeclared = kml(&GOOD.replace("Fire", "&secret;"));
    xml_refused(&undeclared, 3, "&secret;");
}

#[test]
fn kml_limits_are_checked() {
    let two = kml(&format!("{GOOD}{GOOD}"));
    assert!(matches!(
        parse_with_limits(Format::Kml, two.as_bytes(), 1 << 20, 1),
        Err(TransferError::TooManyRecords)
    ));
    assert_eq!(
        parse_with_limits(Format::Kml, two.as_bytes(), 1 << 20, 2)
            .unwrap()
            .len(),
        2
    );
    assert!(matches!(
        parse_with_limits(Format::Kml, two.as_bytes(), 10, 10),
        Err(TransferError::TooLarge { max: 10, .. })
    ));
}
