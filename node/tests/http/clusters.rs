//! `GET /api/v1/events/clusters` on the node: the map's clusters, grouped
//! by SpatiaLite over the same filters as the search, the public's
//! snapped to the 0.01° grid (invariant 12).

use axum::http::StatusCode;
use sentinel_certs::testing::now_ms;
use sentinel_schema::{EventId, NewEvent, PersonRole, Point};
use serde_json::Value;

use super::Api;

/// Reports an event at `lon, lat` with this category and severity.
fn report(api: &Api, n: u8, lon: f64, lat: f64, category: &str, severity: u8) -> EventId {
    let event = EventId([n; 16]);
    let new = NewEvent {
        title: format!("Event {n} {category}"),
        description: "seen from the road".into(),
        category: category.into(),
        severity,
        location: Point::new(lon, lat).unwrap(),
        reported_ms: now_ms() - u64::from(n),
    };
    api.node
        .lock()
        .unwrap()
        .report(&new, event, Some("olga"), now_ms())
        .unwrap();
    event
}

/// Three events in Berlin, two at one spot in Paris, one either side of
/// the antimeridian near Fiji.
fn seed(api: &Api) {
    report(api, 1, 13.404954, 52.520008, "flood", 3);
    report(api, 2, 13.4021, 52.5179, "flood", 2);
    report(api, 3, 13.45, 52.50, "flood", 4);
    report(api, 4, 2.35, 48.85, "fire", 5);
    report(api, 5, 2.35, 48.85, "fire", 5);
    report(api, 6, 179.9, -17.0, "storm", 1);
    report(api, 7, -179.9, -17.0, "storm", 1);
}

async fn clusters(api: &Api, token: &str, query: &str) -> Value {
    let r = api
        .call(
            "GET",
            &format!("/api/v1/events/clusters?{query}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
    let counts: u64 = r.body["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counts, r.body["total"].as_u64().unwrap(), "{query}");
    assert_eq!(r.body["truncated"], false);
    r.body
}

fn list(v: &Value) -> &Vec<Value> {
    v["clusters"].as_array().unwrap()
}

#[tokio::test]
async fn clusters_add_up_follow_the_zoom_and_the_filters() {
    let api = Api::start();
    api.account("olga", Some(PersonRole::Officer));
    let olga = api.login("olga").await;
    seed(&api);

    // The world: Berlin and Paris share a 90° cell, at their mean.
    let world = clusters(&api, &olga, "zoom=0").await;
    assert_eq!(world["total"], 7);
    let europe = &list(&world)[0];
    assert_eq!(europe["count"], 5);
    assert!(europe.get("id").is_none());
    let mean_lon = (13.404954 + 13.4021 + 13.45 + 2.35 + 2.35) / 5.0;
    assert!((europe["lon"].as_f64().unwrap() - mean_lon).abs() < 1e-9);
    // Cells never straddle the antimeridian: Fiji's two stay apart.
    assert_eq!(list(&world).len(), 3);

    // Street level: every event alone (with its id) but Paris's two.
    let street = clusters(&api, &olga, "zoom=22").await;
    assert_eq!(list(&street).len(), 6);
    assert_eq!(list(&street)[0]["count"], 2);
    for c in &list(&street)[1..] {
        assert_eq!(c["count"], 1);
        assert_eq!(c["id"].as_str().unwrap().len(), 32);
    }
    let one = list(&street)
        .iter()
        .find(|c| c["id"] == EventId([1; 16]).to_hex())
        .unwrap();
    assert_eq!(one["lon"], 13.404954);
    assert_eq!(one["lat"], 52.520008);

    // The search's filters.
    for (query, total) in [
        ("zoom=3&category=fire", 2),
        ("zoom=3&min_severity=4", 3),
        ("zoom=3&max_severity=2", 3),
        ("zoom=3&q=flood", 3),
        ("zoom=3&status=resolved", 0),
        ("zoom=3&status=reported", 7),
        ("zoom=5&bbox=13,52,14,53", 3),
        ("zoom=5&near=2.35,48.85&radius=1000", 2),
        ("zoom=3&from=0&to=1", 0),
    ] {
        assert_eq!(
            clusters(&api, &olga, query).await["total"],
            total,
            "{query}"
        );
    }
    // A box across the antimeridian finds both sides, in two clusters.
    let fiji = clusters(&api, &olga, "zoom=4&bbox=179,-18,-179,-16").await;
    assert_eq!(fiji["total"], 2);
    assert_eq!(list(&fiji).len(), 2);
}

#[tokio::test]
async fn bad_cluster_queries_name_the_parameter() {
    let api = Api::start();
    api.account("olga", Some(PersonRole::Officer));
    let olga = api.login("olga").await;
    for (query, field) in [
        ("", "zoom"),
        ("zoom=23", "zoom"),
        ("zoom=-1", "zoom"),
        ("zoom=1.5", "zoom"),
        ("zoom=x", "zoom"),
        ("zoom=1&zoom=2", "zoom"),
        ("zoom=1&limit=5", "limit"),
        ("zoom=1&bbox=1,2,3", "bbox"),
        ("zoom=1&min_severity=9", "min_severity"),
        ("zoom=1&near=1,2", "radius"),
    ] {
        let r = api
            .call(
                "GET",
                &format!("/api/v1/events/clusters?{query}"),
                Some(&olga),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.body);
        assert_eq!(r.body["field"], field, "{query}: {}", r.body);
    }
    let r = api
        .call("GET", "/api/v1/events/clusters?zoom=1", None, None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_public_sees_clusters_on_the_grid_only() {
    let api = Api::start();
    api.account("olga", Some(PersonRole::Officer));
    api.account("pat", Some(PersonRole::Public));
    let (olga, pat) = (api.login("olga").await, api.login("pat").await);
    seed(&api);

    // Berlin's first two events are 250 m apart in one 0.01° cell: the
    // officer sees them apart at street level, the public as one cluster
    // at the cell's grid point.
    let officer = clusters(&api, &olga, "zoom=22&bbox=13.3,52.4,13.5,52.6").await;
    assert_eq!(list(&officer).len(), 3);
    let public = clusters(&api, &pat, "zoom=22&bbox=13.3,52.4,13.5,52.6").await;
    assert_eq!(public["total"], 3);
    assert_eq!(list(&public).len(), 2);
    assert_eq!(list(&public)[0]["count"], 2);
    for query in [
        "zoom=0",
        "zoom=9",
        "zoom=22",
        "zoom=14&bbox=13.40,52.51,13.41,52.53",
    ] {
        let found = clusters(&api, &pat, query).await;
        // Each of these views holds events: the grid check below must
        // have clusters to look at.
        assert!(!list(&found).is_empty(), "{query}: {found}");
        for c in list(&found) {
            for axis in ["lon", "lat"] {
                let x = c[axis].as_f64().unwrap() * 100.0;
                assert!((x - x.round()).abs() < 1e-6, "{query}: {c}");
            }
        }
    }
    let cell = &list(&public)[0];
    assert!(
        (cell["lon"].as_f64().unwrap() - 13.40).abs() < 1e-9,
        "{cell}"
    );
    assert!(
        (cell["lat"].as_f64().unwrap() - 52.52).abs() < 1e-9,
        "{cell}"
    );
    // A box inside the cell finds the cell's events (widened, as the
    // search widens it), never fewer by a finer box.
    let inside = clusters(&api, &pat, "zoom=22&bbox=13.4049,52.52,13.405,52.5201").await;
    assert_eq!(inside["total"], 2);
    // The public's limits of the search hold.
    for (query, field) in [
        ("zoom=3&q=flood", "q"),
        ("zoom=3&near=2.35,48.85&radius=9", "near"),
    ] {
        let r = api
            .call(
                "GET",
                &format!("/api/v1/events/clusters?{query}"),
                Some(&pat),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(r.body["field"], field);
    }
}
