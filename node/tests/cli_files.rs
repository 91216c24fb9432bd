//! `sentinel-node export` and `import` through the built binary: KML out
//! and back in on another node, a spreadsheet's CSV with its own column
//! names mapped, and the bad paths, each a clear message, a non-zero exit
//! and nothing stored.

use std::path::Path;

use serde_json::Value;
use tempfile::TempDir;

use crate::cli::{json, n_entries, ok, refused, REPORT};

fn titles(dir: &Path) -> Vec<String> {
    let mut titles: Vec<String> = json(dir, &["list"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"].as_str().unwrap().to_owned())
        .collect();
    titles.sort();
    titles
}

#[test]
fn kml_out_and_back_in_and_a_spreadsheet_with_its_own_names() {
    let d = TempDir::new().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    ok(&a, &["init"]);
    ok(&b, &["init"]);
    json(&a, REPORT);
    let tricky = "<&>\"' Zürich — 東京";
    let mut report: Vec<&str> = REPORT.to_vec();
    let at = report.iter().position(|x| *x == "--title").unwrap();
    report[at + 1] = tricky;
    json(&a, &report);

    let file = d.path().join("events.kml");
    ok(
        &a,
        &["export", "--format", "kml", "--out", file.to_str().unwrap()],
    );
    let kml = std::fs::read_to_string(&file).unwrap();
    assert_eq!(kml.matches("<Placemark>").count(), 2, "{kml}");
    assert!(
        kml.contains("<name>&lt;&amp;&gt;&quot;&apos; Zürich — 東京</name>"),
        "{kml}"
    );
    // To standard output too.
    let out = ok(&a, &["export", "--format", "KML"]);
    assert!(out.starts_with("<?xml"), "{out}");

    let said = ok(&b, &["import", file.to_str().unwrap()]);
    assert!(
        said.contains("Imported 2 events (0 already present)"),
        "{said}"
    );
    assert_eq!(titles(&b), titles(&a));
    let shown: Value = json(&b, &["list"]);
    let ids = |v: &Value| {
        let mut ids: Vec<String> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&shown), ids(&json(&a, &["list"])), "the same events");
    // Imported again: every event is already there.
    let said = ok(&b, &["import", file.to_str().unwrap()]);
    assert!(
        said.contains("Imported 0 events (2 already present)"),
        "{said}"
    );

    // A spreadsheet's CSV: its own names, `;`, a byte order mark, no time.
    let sheet = d.path().join("sheet.csv");
    std::fs::write(
        &sheet,
        "\u{feff}Name;Notes;Type;Severity;Latitude;Longitude\n\
         \"Tree down; road blocked\";Big oak;hazard;3;51.5072;-0.1276\n",
    )
    .unwrap();
    let said = ok(
        &b,
        &[
            "import",
            sheet.to_str().unwrap(),
            "--map",
            "title=Name,description=Notes,category=Type,severity=Severity",
        ],
    );
    assert!(said.contains("Imported 1 events"), "{said}");
    let found = json(&b, &["list", "--category", "hazard"]);
    let item = &found["items"][0];
    assert_eq!(item["title"], "Tree down; road blocked");
    // No time in the file: the import's, as `report` takes.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let reported = item["reported_ms"].as_u64().unwrap();
    assert!(now.abs_diff(reported) < 10 * 60 * 1000, "{item}");
}

#[test]
fn bad_files_are_refused_clearly_and_store_nothing() {
    let d = TempDir::new().unwrap();
    let dir = &d.path().join("n");
    ok(dir, &["init"]);
    json(dir, REPORT);
    let before = n_entries(dir);
    let write = |name: &str, text: &str| {
        let path = d.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    refused(
        dir,
        &["export", "--format", "xlsx"],
        "unknown format \"xlsx\": expected `geojson`, `csv` or `kml`",
    );
    let notes = write("notes.txt", "title\n");
    refused(dir, &["import", &notes], "pass --format geojson|csv|kml");
    refused(
        dir,
        &["import", &notes, "--format", "xlsx"],
        "unknown format",
    );

    let good = r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]},
        "properties":{"title":"Fine","category":"fire","severity":2}}"#;
    let road = write(
        "roads.geojson",
        &format!(
            r#"{{"type":"FeatureCollection","features":[{good},
            {{"type":"Feature","id":"r7","geometry":{{"type":"LineString","coordinates":[[0,0],[1,1]]}},
              "properties":{{"title":"Main road","category":"road","severity":2}}}}]}}"#
        ),
    );
    refused(
        dir,
        &["import", &road],
        "record 2 (\"Main road\", id r7), field `geometry.type`: \"LineString\" is not \"Point\"",
    );

    let polygon = write(
        "areas.kml",
        "<kml><Document>\n<Placemark><name>Flood zone</name><Polygon><outerBoundaryIs>\
         <LinearRing><coordinates>0,0 1,0 1,1 0,0</coordinates></LinearRing>\
         </outerBoundaryIs></Polygon></Placemark>\n</Document></kml>",
    );
    refused(
        dir,
        &["import", &polygon],
        "record 1 (\"Flood zone\"), field `geometry`: a Polygon, not a Point",
    );
    let broken = write(
        "broken.kml",
        "<kml>\n<Document>\n<Placemark><name>x</Placemark>\n</Document></kml>",
    );
    refused(dir, &["import", &broken], "invalid XML at line 3");
    let doctype = write(
        "entities.kml",
        "<?xml version=\"1.0\"?>\n<!DOCTYPE kml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n\
         <kml><Placemark><name>&x;</name></Placemark></kml>",
    );
    refused(dir, &["import", &doctype], "a DOCTYPE is refused");

    let sheet = write(
        "sheet.csv",
        "Name,Type,severity,lat,lon\nTree,hazard,3,51.5,-0.1\n",
    );
    refused(
        dir,
        &["import", &sheet, "--map", "colour=Name"],
        "`colour` is not a field of an event",
    );
    refused(
        dir,
        &["import", &sheet, "--map", "title"],
        "expected FIELD=NAME",
    );
    refused(
        dir,
        &["import", &sheet],
        "unknown column(s) \"Name\", \"Type\"",
    );
    refused(
        dir,
        &[
            "import",
            &sheet,
            "--map",
            "title=Name,category=Type",
            "--map",
            "severity=Type",
        ],
        "mapped to two fields",
    );
    assert_eq!(n_entries(dir), before, "a refused import stored something");

    // The same file, mapped, is taken.
    let said = ok(
        dir,
        &["import", &sheet, "--map", "title=Name,category=Type"],
    );
    assert!(said.contains("Imported 1 events"), "{said}");
    assert!(n_entries(dir) > before);
}
