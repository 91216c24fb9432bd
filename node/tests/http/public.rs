//! The public cannot locate an event more finely than its redacted cell
//! (invariant 12): a public client bisecting boxes around a known event
//! finds it in every box inside the event's 0.01° cell, whether or not
//! the box holds its true place (`sentinel_http::testing::bisect`).

use axum::http::StatusCode;
use sentinel_http::testing::bisect::public_bisection;
use sentinel_schema::PersonRole;

use super::Api;

#[tokio::test]
async fn bisecting_boxes_tells_the_public_nothing_finer_than_the_cell() {
    let api = Api::start();
    api.account("pat", Some(PersonRole::Public));
    let pat = api.login("pat").await;
    // Reported at 13.404954, 52.520008 (`Api::event`): near the edge of
    // its cell, which a fine box would give away.
    let event = api.event("boss").to_hex();
    let asked = public_bisection(13.404954, 52.520008, |bbox| {
        let (api, pat, event) = (&api, &pat, &event);
        async move {
            let r = api
                .call(
                    "GET",
                    &format!("/api/v1/events?bbox={bbox}&limit=500"),
                    Some(pat),
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
