//! `GET /api/v1/export.geojson`: the list's filters, the feature shape both
//! servers share (`sentinel_http::api::json::Feature`: the event as the
//! list shows it), redacted for the public exactly as the list is; bad
//! parameters (of the export and the feed) refused naming the parameter.

use axum::http::StatusCode;
use sentinel_certs::testing::now_ms;
use sentinel_schema::{EventEdit, EventId, NewEvent, PersonRole, Point, Status};
use serde_json::Value;

use super::Api;

fn features(body: &Value) -> &Vec<Value> {
    assert_eq!(body["type"], "FeatureCollection", "{body}");
    body["features"].as_array().unwrap()
}

#[tokio::test]
async fn officers_export_every_field_and_the_public_a_redacted_collection() {
    let api = Api::start();
    api.account("ada", Some(PersonRole::Officer));
    api.account("pat", Some(PersonRole::Public));
    let assigned = api.event_in("ada", "bo", Status::Assigned);
    api.edit(
        assigned,
        "ada",
        EventEdit::Note {
            text: "the caller's phone number is 555-0100".into(),
            actor: Some("ada".into()),
            at_ms: now_ms(),
        },
    );
    let reported = api.event("cy");
    let (ada, pat) = (api.login("ada").await, api.login("pat").await);

    let r = api
        .call("GET", "/api/v1/export.geojson", Some(&ada), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/geo+json");
    let all = features(&r.body);
    assert_eq!(all.len(), 2);
    // Newest report first, as the list.
    assert_eq!(all[0]["id"], reported.to_hex());
    let f = &all[1];
    assert_eq!(f["id"], assigned.to_hex());
    assert_eq!(f["type"], "Feature");
    assert_eq!(f["geometry"]["type"], "Point");
    assert_eq!(
        f["geometry"]["coordinates"],
        serde_json::json!([13.404954, 52.520008])
    );
    // The shared feature: the event as the list shows it.
    let p = &f["properties"];
    assert_eq!(p["title"], "Flooded underpass");
    assert_eq!(p["category"], "flood");
    assert_eq!(p["assignee"], "bo");
    assert_eq!(p["n_notes"], 1);
    assert_eq!(p["status"], "assigned");
    assert_eq!(p["has_conflicts"], false);
    assert!(p["reported_ms"].is_u64(), "{p}");

    // The list's filters.
    let r = api
        .call(
            "GET",
            "/api/v1/export.geojson?status=assigned&min_severity=3&category=flood",
            Some(&ada),
            None,
        )
        .await;
    let only: Vec<&Value> = features(&r.body).iter().map(|f| &f["id"]).collect();
    assert_eq!(only, [&Value::from(assigned.to_hex())]);
    let r = api
        .call(
            "GET",
            "/api/v1/export.geojson?bbox=13.42,52.53,13.43,52.54",
            Some(&ada),
            None,
        )
        .await;
    assert!(features(&r.body).is_empty());

    // The public: no people, notes or conflicts, the point on the grid.
    let r = api
        .call("GET", "/api/v1/export.geojson", Some(&pat), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let all = features(&r.body);
    assert_eq!(all.len(), 2);
    for f in all {
        let p = f["properties"].as_object().unwrap();
        for hidden in ["assignee", "n_notes", "has_conflicts", "notes"] {
            assert!(!p.contains_key(hidden), "{hidden}: {f}");
        }
        assert_eq!(p["title"], "Flooded underpass");
        let c = f["geometry"]["coordinates"].as_array().unwrap();
        let (lon, lat) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
        assert!(
            (lon - 13.40).abs() < 1e-9 && (lat - 52.52).abs() < 1e-9,
            "{f}"
        );
    }
    // A box beside the exact point but inside its grid cell still finds it
    // for the public (widened to whole cells), not for officers.
    let near_miss = "/api/v1/export.geojson?bbox=13.3960,52.5150,13.4000,52.5190";
    let r = api.call("GET", near_miss, Some(&pat), None).await;
    assert_eq!(features(&r.body).len(), 2, "same cell");
    let r = api.call("GET", near_miss, Some(&ada), None).await;
    assert!(features(&r.body).is_empty(), "exact for officers");
    // What the list refuses the public, the export refuses too.
    for (query, name) in [("q=555", "q"), ("near=13.40,52.52&radius=10", "near")] {
        let r = api
            .call(
                "GET",
                &format!("/api/v1/export.geojson?{query}"),
                Some(&pat),
                None,
            )
            .await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(name)),
            "{query}"
        );
    }
    let r = api
        .call("GET", "/api/v1/export.geojson?q=555", Some(&ada), None)
        .await;
    assert_eq!(features(&r.body).len(), 1);
}

/// An export is streamed page by page as the store hands the pages out
/// (`sentinel_http::api::events::export`), never built whole in memory
/// under the node's lock: no `Content-Length` (the length is not known
/// when the answer starts), and every event exactly once across pages.
#[tokio::test]
async fn an_export_streams_page_by_page_and_holds_every_event_once() {
    let api = Api::start();
    api.account("ada", Some(PersonRole::Officer));
    // More than two of the export's pages (500 events each).
    let n = 1_201;
    let items: Vec<(EventId, NewEvent)> = (0..n)
        .map(|i: u128| {
            let new = NewEvent {
                title: format!("event {i}"),
                description: String::new(),
                category: "flood".into(),
                severity: 3,
                location: Point::new(13.0 + (i % 100) as f64 / 100.0, 52.5).unwrap(),
                // Some reported at the same millisecond: the page boundary
                // must still neither repeat nor skip.
                reported_ms: 1_700_000_000_000 + (i / 3) as u64,
            };
            (EventId((i + 1).to_be_bytes()), new)
        })
        .collect();
    api.node
        .lock()
        .unwrap()
        .report_many(&items, Some("ada"), now_ms())
        .unwrap();
    let ada = api.login("ada").await;
    let request =
        sentinel_http::testing::request("GET", "/api/v1/export.geojson", Some(&ada), None);
    let response = tower::ServiceExt::oneshot(api.app.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        !response.headers().contains_key("content-length"),
        "an export built whole before it is sent: {:?}",
        response.headers()
    );
    // One piece of the answer per page read from the store, at least.
    let mut pieces = 0;
    let mut bytes = Vec::new();
    let mut stream = response.into_body().into_data_stream();
    while let Some(piece) = futures_util::StreamExt::next(&mut stream).await {
        bytes.extend_from_slice(&piece.unwrap());
        pieces += 1;
    }
    assert!(
        pieces >= 3,
        "{pieces} pieces: the export was not streamed by pages"
    );
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    let r = sentinel_http::testing::Reply {
        status: StatusCode::OK,
        body,
        headers: Default::default(),
    };
    let all = features(&r.body);
    assert_eq!(all.len(), n as usize);
    let ids: std::collections::BTreeSet<&str> =
        all.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), n as usize, "an event repeated across pages");
    let times: Vec<u64> = all
        .iter()
        .map(|f| f["properties"]["reported_ms"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
}

#[tokio::test]
async fn bad_export_and_feed_parameters_are_refused_naming_the_parameter() {
    let api = Api::start();
    api.account("ada", Some(PersonRole::Officer));
    let ada = api.login("ada").await;
    for (query, name) in [
        ("bbox=1,2,3", "bbox"),
        ("bbox=1,2,3,NaN", "bbox"),
        ("bbox=0,0,200,10", "bbox"),
        ("bbox=0,10,5,0", "bbox"),
        ("bbox=1,2,3,4&bbox=1,2,3,4", "bbox"),
        ("status=open", "status"),
        ("status=reported&status=closed", "status"),
        ("min_severity=9", "min_severity"),
        ("from=5&to=1", "from"),
        ("near=13.4,52.5", "radius"),
        // A page is not an export's: `limit` and `after` are unknown here.
        ("limit=10", "limit"),
        ("after=x", "after"),
        ("colour=red", "colour"),
    ] {
        let r = api
            .call(
                "GET",
                &format!("/api/v1/export.geojson?{query}"),
                Some(&ada),
                None,
            )
            .await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(name)),
            "{query}: {}",
            r.body
        );
    }
    for (query, name) in [("since=5", "since"), ("x=1&x=2", "x")] {
        let r = api
            .open_get(&format!("/api/v1/feed?{query}"), Some(&ada))
            .await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(name)),
            "{query}: {}",
            r.body
        );
    }
}

/// An answer's status, content type and body as text.
async fn text(api: &Api, uri: &str, token: &str) -> (StatusCode, String, String) {
    let request = sentinel_http::testing::request("GET", uri, Some(token), None);
    let response = tower::ServiceExt::oneshot(api.app.clone(), request)
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .unwrap();
    (
        status,
        content_type,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

/// `GET /api/v1/export.csv` and `export.kml`: the list's events and
/// filters, the columns (and ExtendedData) of the list, redacted for the
/// public as the list is, and read back by the node's own import.
#[tokio::test]
async fn csv_and_kml_exports_hold_the_list_redacted_for_the_public() {
    use sentinel_http::api::export::{FULL_COLUMNS, PUBLIC_COLUMNS};
    use sentinel_node::transfer::{parse, Format};

    let api = Api::start();
    api.account("ada", Some(PersonRole::Officer));
    api.account("pat", Some(PersonRole::Public));
    let assigned = api.event_in("ada", "bo", Status::Assigned);
    let (ada, pat) = (api.login("ada").await, api.login("pat").await);

    let (status, content_type, csv) = text(&api, "/api/v1/export.csv", &ada).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines.len(), 3, "a header, a row and the last CRLF: {csv}");
    assert_eq!(lines[0], FULL_COLUMNS.join(","));
    let row: Vec<&str> = lines[1].split(',').collect();
    let col = |name: &str| row[FULL_COLUMNS.iter().position(|c| *c == name).unwrap()];
    assert_eq!(col("id"), assigned.to_hex());
    assert_eq!(col("title"), "Flooded underpass");
    assert_eq!(col("assignee"), "bo");
    assert_eq!(col("status"), "assigned");
    assert_eq!((col("lon"), col("lat")), ("13.404954", "52.520008"));
    assert_eq!(col("has_conflicts"), "false");
    let back = parse(Format::Csv, csv.as_bytes()).unwrap();
    assert_eq!(back[0].id, Some(assigned));
    assert_eq!(back[0].new.title, "Flooded underpass");

    let (status, content_type, kml) = text(&api, "/api/v1/export.kml", &ada).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/vnd.google-earth.kml+xml");
    assert!(kml.contains("<name>Flooded underpass</name>"), "{kml}");
    assert!(
        kml.contains("<Data name=\"assignee\"><value>bo</value></Data>"),
        "{kml}"
    );
    assert!(
        kml.contains("<coordinates>13.404954,52.520008</coordinates>"),
        "{kml}"
    );
    let back = parse(Format::Kml, kml.as_bytes()).unwrap();
    assert_eq!(back[0].id, Some(assigned));
    assert_eq!(
        back[0].new.location,
        Point::new(13.404954, 52.520008).unwrap()
    );

    // The public: no people, notes or conflicts, the point on the grid.
    let (status, _, csv) = text(&api, "/api/v1/export.csv", &pat).await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines[0], PUBLIC_COLUMNS.join(","));
    let row: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(row.len(), PUBLIC_COLUMNS.len());
    assert!(!row.contains(&"bo"), "{csv}");
    let col = |name: &str| row[PUBLIC_COLUMNS.iter().position(|c| *c == name).unwrap()];
    let lon: f64 = col("lon").parse().unwrap();
    let lat: f64 = col("lat").parse().unwrap();
    assert!(
        (lon - 13.40).abs() < 1e-9 && (lat - 52.52).abs() < 1e-9,
        "{csv}"
    );
    let (_, _, kml) = text(&api, "/api/v1/export.kml", &pat).await;
    for hidden in ["assignee", "n_notes", "has_conflicts", ">bo<", "13.404954"] {
        assert!(!kml.contains(hidden), "{hidden}: {kml}");
    }
    assert!(kml.contains("<name>Flooded underpass</name>"), "{kml}");

    // The list's filters, and what the list refuses the public.
    let (_, _, none) = text(&api, "/api/v1/export.kml?status=closed", &ada).await;
    assert!(
        !none.contains("<Placemark>") && none.ends_with("</kml>\n"),
        "{none}"
    );
    let (_, _, only_header) = text(&api, "/api/v1/export.csv?status=closed", &ada).await;
    assert_eq!(only_header, format!("{}\r\n", FULL_COLUMNS.join(",")));
    for (uri, token, name) in [
        ("/api/v1/export.csv?limit=5", &ada, "limit"),
        ("/api/v1/export.kml?bbox=0,0,1", &ada, "bbox"),
        ("/api/v1/export.csv?q=knees", &pat, "q"),
        ("/api/v1/export.kml?assignee=bo", &pat, "assignee"),
    ] {
        let r = api.call("GET", uri, Some(token), None).await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(name)),
            "{uri}: {}",
            r.body
        );
    }
}
