//! `GET /api/v1/events/clusters` on the hub: the map's clusters, grouped
//! by PostgreSQL over the same filters as the search, the public's
//! snapped to the 0.01° grid (invariant 12).

use axum::http::StatusCode;
use sentinel_http::testing;
use sentinel_hub::api::{router, ApiState};
use sentinel_schema::PersonRole;
use serde_json::Value;

use super::{ev, get, ok, seed_events};
use crate::fresh_store;

fn list(v: &Value) -> &Vec<Value> {
    v["clusters"].as_array().unwrap()
}

/// The clusters' counts add up to the total, none left out.
fn adds_up(v: &Value) {
    let counts: u64 = list(v).iter().map(|c| c["count"].as_u64().unwrap()).sum();
    assert_eq!(counts, v["total"].as_u64().unwrap(), "{v}");
    assert_eq!(v["truncated"], false);
}

#[tokio::test]
async fn clusters_add_up_follow_the_zoom_and_the_filters() {
    let (_db, store) = fresh_store().await;
    seed_events(&store).await;

    // The world: Berlin, Potsdam and Paris share a 90° cell, at their
    // mean; the two sides of the antimeridian stay apart.
    let world = ok(&store, "/api/v1/events/clusters?zoom=0").await;
    adds_up(&world);
    assert_eq!(world["total"], 6);
    assert_eq!(list(&world).len(), 3);
    let europe = &list(&world)[0];
    assert_eq!(europe["count"], 4);
    assert!(europe.get("id").is_none());
    let mean = (13.405 + 13.41 + 13.06 + 2.35) / 4.0;
    assert!(
        (europe["lon"].as_f64().unwrap() - mean).abs() < 1e-9,
        "{europe}"
    );

    // Street level: every event alone, with its id, at its place.
    let street = ok(&store, "/api/v1/events/clusters?zoom=22").await;
    adds_up(&street);
    assert_eq!(list(&street).len(), 6);
    let one = list(&street)
        .iter()
        .find(|c| c["id"] == ev(1).to_hex())
        .unwrap();
    assert_eq!(one["count"], 1);
    assert!((one["lon"].as_f64().unwrap() - 13.405).abs() < 1e-9);
    assert!((one["lat"].as_f64().unwrap() - 52.52).abs() < 1e-9);

    for (query, total) in [
        ("zoom=3&category=fire", 3),
        ("zoom=3&status=resolved", 1),
        ("zoom=3&status=reported,in_progress", 5),
        ("zoom=3&min_severity=4", 3),
        ("zoom=3&q=flooded", 2),
        ("zoom=6&bbox=13,52,14,53", 3),
        ("zoom=6&near=2.35,48.85&radius=1000", 1),
        ("zoom=3&from=0&to=1", 0),
    ] {
        let v = ok(&store, &format!("/api/v1/events/clusters?{query}")).await;
        adds_up(&v);
        assert_eq!(v["total"], total, "{query}");
    }
    let fiji = ok(
        &store,
        "/api/v1/events/clusters?zoom=4&bbox=179,-18,-179,-16",
    )
    .await;
    adds_up(&fiji);
    assert_eq!(fiji["total"], 2);
    assert_eq!(list(&fiji).len(), 2);

    for (query, field) in [
        ("", "zoom"),
        ("zoom=23", "zoom"),
        ("zoom=-1", "zoom"),
        ("zoom=x", "zoom"),
        ("zoom=1&after=x", "after"),
        ("zoom=1&bbox=200,0,1,1", "bbox"),
    ] {
        let (status, _, body) = get(&store, &format!("/api/v1/events/clusters?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["field"], field, "{query}: {body}");
    }
}

#[tokio::test]
async fn the_public_sees_clusters_on_the_grid_only() {
    let (_db, store) = fresh_store().await;
    seed_events(&store).await;
    let app = router(
        ApiState::new(store.clone(), None).map_api(|api| api.trusting("pat", PersonRole::Public)),
    );
    for query in [
        "zoom=0",
        "zoom=8",
        "zoom=22",
        "zoom=15&bbox=13.40,52.51,13.42,52.54",
    ] {
        let r = testing::call(
            &app,
            "GET",
            &format!("/api/v1/events/clusters?{query}"),
            None,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
        adds_up(&r.body);
        assert!(r.body["total"].as_u64().unwrap() > 0, "{query}");
        for c in list(&r.body) {
            for axis in ["lon", "lat"] {
                let x = c[axis].as_f64().unwrap() * 100.0;
                assert!((x - x.round()).abs() < 1e-6, "{query}: {c}");
            }
        }
    }
    let r = testing::call(
        &app,
        "GET",
        "/api/v1/events/clusters?zoom=3&q=fire",
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["field"], "q");
}
