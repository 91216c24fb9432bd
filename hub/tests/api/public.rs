//! The public cannot locate an event more finely than its redacted cell
//! (invariant 12): a public client bisecting boxes around a known event
//! finds it in every box inside the event's 0.01° cell, whether or not
//! the box holds its true place (`sentinel_http::testing::bisect`). On
//! the hub, PostGIS answers the box: asked the public's box as given, its
//! `ST_Intersects` would tell the halves apart. And the public's CSV and
//! KML exports are redacted exactly as its events list is.

use std::collections::BTreeMap;

use axum::body::Body as HttpBody;
use axum::http::{Request, StatusCode};
use sentinel_http::api::export::{FULL_COLUMNS, PUBLIC_COLUMNS};
use sentinel_http::testing::{self, bisect::public_bisection};
use sentinel_hub::api::{router, ApiState};
use sentinel_hub::PgStore;
use sentinel_schema::{author_of, EventDoc, EventEdit, Hlc, PersonRole};
use sentinel_sync::testing::key;
use serde_json::Value;
use tower::ServiceExt;

use super::{change, ev, new_event, push};
use crate::{fresh_store, verified, NOW};

#[tokio::test]
async fn bisecting_boxes_tells_the_public_nothing_finer_than_the_cell() {
    let (_db, store) = fresh_store().await;
    // An event off its cell's centre (13.40, 52.53), near two edges.
    let (lon, lat) = (13.404_71, 52.525_38);
    let k = key(331);
    let new = new_event("Gas leak", lon, lat, 3, NOW);
    let (_, c) = EventDoc::create(&author_of(&k), &new, NOW).unwrap();
    let mut log = Vec::new();
    push(&mut log, &k, Hlc::new(NOW, 0), change(ev(9), c));
    store.apply(verified(&log), NOW).await.unwrap();
    store.project_pending().await.unwrap();
    let event = hex::encode(ev(9).0);
    let app = router(
        ApiState::new(store.clone(), None).map_api(|api| api.trusting("pat", PersonRole::Public)),
    );
    let asked = public_bisection(lon, lat, |bbox| {
        let (app, event) = (&app, &event);
        async move {
            let r = testing::call(
                app,
                "GET",
                &format!("/api/v1/events?bbox={bbox}&limit=500"),
                None,
                None,
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{bbox}: {}", r.body);
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["id"] == event.as_str())
        }
    })
    .await;
    assert!(asked > 50);
}

/// GETs `uri` as `name` in `role`, through the router: the status and
/// the body as text (an export is not JSON).
async fn text_as(store: &PgStore, name: &str, role: PersonRole, uri: &str) -> (StatusCode, String) {
    let state = ApiState::new(store.clone(), None).map_api(|api| api.trusting(name, role));
    let response = router(state)
        .oneshot(Request::get(uri).body(HttpBody::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

/// The records of a CSV export (none of the seeded texts holds a comma
/// or a quote), each as column name → value.
fn csv_records(csv: &str, columns: &[&str]) -> Vec<BTreeMap<String, String>> {
    let mut lines = csv.split_terminator("\r\n");
    assert_eq!(lines.next(), Some(columns.join(",").as_str()), "{csv}");
    lines
        .map(|line| {
            let values: Vec<&str> = line.split(',').collect();
            assert_eq!(values.len(), columns.len(), "{line}");
            columns
                .iter()
                .zip(values)
                .map(|(c, v)| (c.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The seeded events (two assigned to `officer-1`) and a gas leak at a
/// precise place off its cell's centre, assigned to `ada`.
async fn seed_with_a_precise_assigned_event(store: &PgStore) -> String {
    super::seed_events(store).await;
    let k = key(332);
    let a = author_of(&k);
    let (mut doc, c) = EventDoc::create(
        &a,
        &new_event("Gas leak", 13.404_71, 52.525_38, 3, NOW),
        NOW,
    )
    .unwrap();
    let mut log = Vec::new();
    push(&mut log, &k, Hlc::new(NOW, 0), change(ev(40), c));
    let assign = doc
        .edit(&a, &EventEdit::Assign("ada".into()), NOW + 1)
        .unwrap();
    push(&mut log, &k, Hlc::new(NOW + 1, 0), change(ev(40), assign));
    store.apply(verified(&log), NOW).await.unwrap();
    store.project_pending().await.unwrap();
    hex::encode(ev(40).0)
}

/// The public's CSV and KML exports hold exactly what the public's events
/// list shows (invariant 12): the same events and values, no people, no
/// notes or conflicts, places on the 0.01° grid. Officers and admins get
/// every column and the precise place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publics_csv_and_kml_exports_are_redacted_as_its_list_is() {
    let (_db, store) = fresh_store().await;
    let leak = seed_with_a_precise_assigned_event(&store).await;
    let (status, list) = text_as(
        &store,
        "pat",
        PersonRole::Public,
        "/api/v1/events?limit=500",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let list: Value = serde_json::from_str(&list).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 7, "{list}");

    let (status, csv) = text_as(&store, "pat", PersonRole::Public, "/api/v1/export.csv").await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    let (status, kml) = text_as(&store, "pat", PersonRole::Public, "/api/v1/export.kml").await;
    assert_eq!(status, StatusCode::OK, "{kml}");
    // No person's name, no precise place.
    for hidden in ["officer-1", ",ada,", "13.40471", "52.52538", "13.405,"] {
        assert!(
            !csv.contains(hidden),
            "the public's CSV holds {hidden:?}: {csv}"
        );
    }
    for hidden in ["officer-1", ">ada<", "13.40471", "52.52538", "13.405,"] {
        assert!(
            !kml.contains(hidden),
            "the public's KML holds {hidden:?}: {kml}"
        );
    }
    let records = csv_records(&csv, PUBLIC_COLUMNS);
    assert_eq!(records.len(), items.len(), "{csv}");
    assert_eq!(kml.matches("<Placemark>").count(), items.len(), "{kml}");
    for item in items {
        let id = item["id"].as_str().unwrap();
        let r = records
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} not in {csv}"));
        for text in ["title", "category", "status"] {
            assert_eq!(r[text], item[text].as_str().unwrap(), "{text} of {id}");
        }
        for number in ["severity", "reported_ms", "n_media"] {
            assert_eq!(r[number], item[number].to_string(), "{number} of {id}");
        }
        let lon = item["location"]["lon"].as_f64().unwrap();
        let lat = item["location"]["lat"].as_f64().unwrap();
        assert_eq!(r["lon"].parse::<f64>().unwrap(), lon, "{id}");
        assert_eq!(r["lat"].parse::<f64>().unwrap(), lat, "{id}");
        for c in [lon, lat] {
            let x = c * 100.0;
            assert!((x - x.round()).abs() < 1e-6, "coarsened: {c}");
        }
        assert!(
            kml.contains(&format!("<coordinates>{lon},{lat}</coordinates>")),
            "{id} at {lon},{lat}: {kml}"
        );
        assert!(
            kml.contains(&format!("<Data name=\"id\"><value>{id}</value></Data>")),
            "{kml}"
        );
    }
    for hidden in ["assignee", "n_notes", "has_conflicts"] {
        assert!(
            !kml.contains(&format!("<Data name=\"{hidden}\">")),
            "{hidden}: {kml}"
        );
    }

    // Those who see everything: every column, the assignee, the place.
    for (name, role) in [("ada", PersonRole::Officer), ("boss", PersonRole::Admin)] {
        let (status, csv) = text_as(&store, name, role, "/api/v1/export.csv").await;
        assert_eq!(status, StatusCode::OK, "{csv}");
        let records = csv_records(&csv, FULL_COLUMNS);
        assert_eq!(records.len(), items.len(), "{csv}");
        let r = records.iter().find(|r| r["id"] == leak).unwrap();
        assert_eq!(r["assignee"], "ada", "{csv}");
        assert_eq!(
            (r["lon"].as_str(), r["lat"].as_str()),
            ("13.40471", "52.52538")
        );
        assert_eq!(r["n_notes"], "0", "{csv}");
        assert!(
            records.iter().any(|r| r["assignee"] == "officer-1"),
            "{csv}"
        );
        let (status, kml) = text_as(&store, name, role, "/api/v1/export.kml").await;
        assert_eq!(status, StatusCode::OK, "{kml}");
        assert!(
            kml.contains("<coordinates>13.40471,52.52538</coordinates>"),
            "{kml}"
        );
        assert!(
            kml.contains("<Data name=\"assignee\"><value>ada</value></Data>"),
            "{kml}"
        );
        assert!(kml.contains("<Data name=\"n_notes\">"), "{kml}");
    }
}
