//! The public cannot locate an event more finely than its redacted cell
//! (invariant 12): a public client bisecting boxes around a known event
//! finds it in every box inside the event's 0.01° cell, whether or not
//! the box holds its true place (`sentinel_http::testing::bisect`). On
//! the hub, PostGIS answers the box: asked the public's box as given, its
//! `ST_Intersects` would tell the halves apart.

use axum::http::StatusCode;
use sentinel_http::testing::{self, bisect::public_bisection};
use sentinel_hub::api::{router, ApiState};
use sentinel_schema::{author_of, EventDoc, Hlc, PersonRole};
use sentinel_sync::testing::key;

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
