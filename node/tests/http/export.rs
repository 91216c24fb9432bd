//! `GET /api/v1/export.geojson`: the list's filters, the feature shape both
//! servers share (`sentinel_http::api::json::Feature`: the event as the
//! list shows it), redacted for the public exactly as the list is; bad
//! parameters (of the export and the feed) refused naming the parameter.

use axum::http::StatusCode;
use sentinel_certs::testing::now_ms;
use sentinel_schema::{EventEdit, PersonRole, Status};
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
