//! Bad input, endpoint by endpoint: each refusal is problem+json naming
//! the field, and leaves nothing behind.

use axum::body::Body as HttpBody;
use axum::http::{header, Request, StatusCode};
use sentinel_certs::testing::now_ms;
use sentinel_schema::{PersonRole, Status};
use serde_json::{json, Value};

use super::{multipart, Api, JPEG};

fn field(r: &super::Reply) -> (StatusCode, Option<&str>) {
    (r.status, r.body["field"].as_str())
}

#[tokio::test]
async fn bad_bodies_are_refused_naming_the_field_and_write_nothing() {
    let api = Api::start();
    api.account("boss", Some(PersonRole::Admin));
    let boss = api.login("boss").await;
    let event = api.event_in("boss", "bo", Status::Assigned).to_hex();
    let good = json!({"title": "t", "category": "c", "severity": 3,
                      "location": {"lon": 13.4, "lat": 52.5}});
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    let before = api.entries();
    let cases: Vec<(&str, String, Value, StatusCode, &str)> = vec![
        // Reports.
        (
            "POST",
            "/api/v1/events".into(),
            with("extra", json!(1)),
            StatusCode::BAD_REQUEST,
            "extra",
        ),
        (
            "POST",
            "/api/v1/events".into(),
            with("title", json!("x".repeat(201))),
            StatusCode::BAD_REQUEST,
            "title",
        ),
        (
            "POST",
            "/api/v1/events".into(),
            with("title", json!("   ")),
            StatusCode::BAD_REQUEST,
            "title",
        ),
        (
            "POST",
            "/api/v1/events".into(),
            with("title", json!(7)),
            StatusCode::BAD_REQUEST,
            "title",
        ),
        (
            "POST",
            "/api/v1/events".into(),
            with("category", json!("c".repeat(65))),
            StatusCode::BAD_REQUEST,
            "category",
        ),
        (
            "POST",
            "/api/v1/events".into(),
            with("description", json!("d".repeat(10_001))),
            StatusCode::BAD_REQUEST,
            "description",
        ),
        (
            "POST",
            "/api/v1/events".into(),
            with("severity", json!(6)),
            StatusCode::BAD_REQUEST,
            "severity",
        ),
        (
            "POST",
            "/api/v1/events".into(),
            with("severity", json!(2.5)),
            StatusCode::BAD_REQUEST,
            "severity",
        ),
        (
            "POST",
            "/api/v1/events".into(),
            with("location", json!({"lon": 181, "lat": 0})),
            StatusCode::BAD_REQUEST,
            "location.lon",
        ),
        (
            "POST",
            "/api/v1/events".into(),
            with("location", json!({"lon": 0, "lat": -90.5})),
            StatusCode::BAD_REQUEST,
            "location.lat",
        ),
        (
            "POST",
            "/api/v1/events".into(),
            with("location", json!({"lon": "NaN", "lat": 0})),
            StatusCode::BAD_REQUEST,
            "location.lon",
        ),
        (
            "POST",
            "/api/v1/events".into(),
            with("location", json!({"lon": 1, "lat": 2, "alt": 3})),
            StatusCode::BAD_REQUEST,
            "location.alt",
        ),
        (
            "POST",
            "/api/v1/events".into(),
            with("location", json!([13.4, 52.5])),
            StatusCode::BAD_REQUEST,
            "location",
        ),
        (
            "POST",
            "/api/v1/events".into(),
            with("reported_ms", json!(-1)),
            StatusCode::BAD_REQUEST,
            "reported_ms",
        ),
        (
            "POST",
            "/api/v1/events".into(),
            with("reported_ms", json!(u64::MAX)),
            StatusCode::BAD_REQUEST,
            "reported_ms",
        ),
        (
            "POST",
            "/api/v1/events".into(),
            json!({"title": "t"}),
            StatusCode::BAD_REQUEST,
            "category",
        ),
        (
            "POST",
            "/api/v1/events".into(),
            json!(["t"]),
            StatusCode::BAD_REQUEST,
            "body",
        ),
        // Edits: every field is checked before any is written.
        (
            "PATCH",
            format!("/api/v1/events/{event}"),
            json!({"title": "new", "severity": 0}),
            StatusCode::BAD_REQUEST,
            "severity",
        ),
        (
            "PATCH",
            format!("/api/v1/events/{event}"),
            json!({"title": "new", "category": "\u{7}"}),
            StatusCode::BAD_REQUEST,
            "category",
        ),
        (
            "PATCH",
            format!("/api/v1/events/{event}"),
            json!({"title": "new", "location": {"lon": 0, "lat": 91}}),
            StatusCode::BAD_REQUEST,
            "location.lat",
        ),
        (
            "PATCH",
            format!("/api/v1/events/{event}"),
            json!({"status": "closed"}),
            StatusCode::BAD_REQUEST,
            "status",
        ),
        (
            "PATCH",
            format!("/api/v1/events/{event}"),
            json!({}),
            StatusCode::BAD_REQUEST,
            "body",
        ),
        (
            "PATCH",
            "/api/v1/events/not-an-id".into(),
            json!({"title": "x"}),
            StatusCode::BAD_REQUEST,
            "id",
        ),
        // Notes, assignment, the workflow.
        (
            "POST",
            format!("/api/v1/events/{event}/notes"),
            json!({"text": "n".repeat(5_001)}),
            StatusCode::BAD_REQUEST,
            "text",
        ),
        (
            "POST",
            format!("/api/v1/events/{event}/notes"),
            json!({"text": ""}),
            StatusCode::BAD_REQUEST,
            "text",
        ),
        (
            "POST",
            format!("/api/v1/events/{event}/notes"),
            json!({"text": "x", "actor": "someone"}),
            StatusCode::BAD_REQUEST,
            "actor",
        ),
        (
            "POST",
            format!("/api/v1/events/{event}/assign"),
            json!({"assignee": "a b"}),
            StatusCode::BAD_REQUEST,
            "assignee",
        ),
        (
            "POST",
            format!("/api/v1/events/{event}/assign"),
            json!({"assignee": "x".repeat(129)}),
            StatusCode::BAD_REQUEST,
            "assignee",
        ),
        (
            "POST",
            format!("/api/v1/events/{event}/assign"),
            json!({"assignee": "bo"}),
            StatusCode::CONFLICT,
            "assignee",
        ),
        (
            "POST",
            format!("/api/v1/events/{event}/start"),
            json!({"note": "x"}),
            StatusCode::BAD_REQUEST,
            "note",
        ),
        (
            "POST",
            format!("/api/v1/events/{event}/close"),
            json!({}),
            StatusCode::CONFLICT,
            "status",
        ),
        (
            "POST",
            format!("/api/v1/events/{event}/resolve"),
            json!({}),
            StatusCode::CONFLICT,
            "status",
        ),
    ];
    for (method, uri, body, status, name) in cases {
        let r = api
            .call(method, &uri, Some(&boss), Some(body.clone()))
            .await;
        assert_eq!(
            field(&r),
            (status, Some(name)),
            "{method} {uri} ({name}): {}",
            r.body
        );
    }
    assert_eq!(api.entries(), before, "no refused request wrote anything");
    // Unknown events.
    let ghost = "0".repeat(32);
    for (method, path) in [
        ("GET", ""),
        ("PATCH", ""),
        ("POST", "/notes"),
        ("POST", "/start"),
    ] {
        let body = (method != "GET").then(|| json!({"title": "x"}));
        let r = api
            .call(
                method,
                &format!("/api/v1/events/{ghost}{path}"),
                Some(&boss),
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let r = api.call("GET", "/api/v1/nowhere", Some(&boss), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn wrong_media_types_and_oversized_bodies_are_refused_before_reading() {
    let api = Api::start();
    api.account("boss", Some(PersonRole::Admin));
    let boss = api.login("boss").await;
    let before = api.entries();
    // JSON routes: text/plain is 415, a body over 16 KiB is 413, and one
    // that only declares a huge length is refused from the header alone.
    let req = Request::post("/api/v1/events")
        .header(header::AUTHORIZATION, format!("Bearer {boss}"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(HttpBody::from("title=x"))
        .unwrap();
    assert_eq!(
        api.send(req).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let big = json!({"title": "t", "description": "d".repeat(40_000), "category": "c",
                     "severity": 1, "location": {"lon": 0, "lat": 0}});
    let r = api
        .call("POST", "/api/v1/events", Some(&boss), Some(big))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let stream = declared_huge();
    let req = Request::post("/api/v1/events")
        .header(header::AUTHORIZATION, format!("Bearer {boss}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, "100000000")
        .body(stream)
        .unwrap();
    assert_eq!(api.send(req).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Not JSON at all (NaN is not JSON).
    let req = Request::post("/api/v1/events")
        .header(header::AUTHORIZATION, format!("Bearer {boss}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(HttpBody::from(
            r#"{"title":"t","category":"c","severity":1,"location":{"lon":NaN,"lat":0}}"#,
        ))
        .unwrap();
    let r = api.send(req).await;
    assert_eq!(field(&r), (StatusCode::BAD_REQUEST, Some("body")));

    // Media: the type comes from the bytes, not the name or the header.
    let event = api.event("boss").to_hex();
    let before_media = api.entries();
    let r = api.upload(&event, Some(&boss), b"GIF89a not a photo").await;
    assert_eq!(
        field(&r),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("file"))
    );
    let r = api.upload(&event, Some(&boss), b"").await;
    assert_eq!(field(&r), (StatusCode::BAD_REQUEST, Some("file")));
    let (ct, body) = multipart(&[("photo", Some("a.jpg"), JPEG)]);
    let req = Request::post(format!("/api/v1/events/{event}/media"))
        .header(header::AUTHORIZATION, format!("Bearer {boss}"))
        .header(header::CONTENT_TYPE, ct)
        .body(HttpBody::from(body))
        .unwrap();
    assert_eq!(
        field(&api.send(req).await),
        (StatusCode::BAD_REQUEST, Some("photo"))
    );
    let req = Request::post(format!("/api/v1/events/{event}/media"))
        .header(header::AUTHORIZATION, format!("Bearer {boss}"))
        .header(header::CONTENT_TYPE, "image/jpeg")
        .body(HttpBody::from(JPEG))
        .unwrap();
    assert_eq!(
        api.send(req).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let req = Request::post(format!("/api/v1/events/{event}/media"))
        .header(header::AUTHORIZATION, format!("Bearer {boss}"))
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=x")
        .header(header::CONTENT_LENGTH, "1000000000")
        .body(declared_huge())
        .unwrap();
    assert_eq!(api.send(req).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        api.entries(),
        before_media,
        "no refused upload wrote an entry"
    );
    // A good one, then download it with its type.
    let r = api.upload(&event, Some(&boss), JPEG).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let d = api
        .call("GET", &format!("/api/v1/events/{event}"), Some(&boss), None)
        .await;
    let hash = d.body["media"][0]["hash"].as_str().unwrap().to_owned();
    assert_eq!(d.body["media"][0]["name"], "photo.jpg");
    let req = Request::get(format!("/api/v1/media/{hash}"))
        .header(header::AUTHORIZATION, format!("Bearer {boss}"))
        .body(HttpBody::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(api.app.clone(), req)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "image/jpeg");
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    assert_eq!(&bytes[..], JPEG);
    for (uri, status) in [
        (
            format!("/api/v1/media/{}", "ab".repeat(32)),
            StatusCode::NOT_FOUND,
        ),
        ("/api/v1/media/xyz".to_owned(), StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(
            api.call("GET", &uri, Some(&boss), None).await.status,
            status
        );
    }
    assert!(api.entries() > before);
}

#[tokio::test]
async fn bad_query_parameters_are_refused_naming_the_parameter() {
    let api = Api::start();
    api.account("ada", Some(PersonRole::Officer));
    let ada = api.login("ada").await;
    for (query, name) in [
        ("bbox=1,2,3", "bbox"),
        ("bbox=1,2,3,NaN", "bbox"),
        ("bbox=0,0,200,10", "bbox"),
        // Across the antimeridian is a box (two, for the store); a south
        // above its north is not.
        ("bbox=0,10,5,0", "bbox"),
        ("near=13.4,52.5", "radius"),
        ("radius=10", "near"),
        ("near=13.4,95&radius=10", "near"),
        ("near=13.4,52.5&radius=-1", "radius"),
        ("near=13.4,52.5&radius=inf", "radius"),
        ("status=open", "status"),
        ("min_severity=0", "min_severity"),
        ("min_severity=4&max_severity=2", "min_severity"),
        ("from=5&to=1", "from"),
        // Above i64::MAX: SQLite's integers are signed (found by the fuzzer).
        ("to=9223372036854775808", "to"),
        ("from=18446744073709551615", "from"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("after=garbage", "after"),
        ("q=", "q"),
        ("category=", "category"),
        ("colour=red", "colour"),
        ("limit=1&limit=2", "limit"),
    ] {
        let r = api
            .call("GET", &format!("/api/v1/events?{query}"), Some(&ada), None)
            .await;
        assert_eq!(
            field(&r),
            (StatusCode::BAD_REQUEST, Some(name)),
            "{query}: {}",
            r.body
        );
    }
    let r = api
        .call("GET", "/api/v1/outbox?x=1", Some(&ada), None)
        .await;
    assert_eq!(field(&r), (StatusCode::BAD_REQUEST, Some("x")));
    // Good filters and the cursor: every event once, newest first.
    for _ in 0..5 {
        api.event("ada");
    }
    let mut seen = Vec::new();
    let base = "/api/v1/events?limit=2&status=reported&category=flood&min_severity=3&bbox=13,52,14,53&near=13.405,52.52&radius=1000";
    let mut uri = base.to_owned();
    loop {
        let r = api.call("GET", &uri, Some(&ada), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        for item in r.body["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
            assert!(item["distance_m"].as_f64().unwrap() < 1000.0);
        }
        match r.body["next"].as_str() {
            Some(next) => uri = format!("{base}&after={next}"),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (5, 5));
    // A box across the antimeridian finds what lies on either side of it,
    // and the box that does not wrap finds neither.
    let mut across = Vec::new();
    for (i, lon) in [179.5, -179.5].into_iter().enumerate() {
        let event = sentinel_schema::EventId([0xa0 + i as u8; 16]);
        let new = sentinel_schema::NewEvent {
            title: format!("Across {i}"),
            description: String::new(),
            category: "storm".into(),
            severity: 2,
            location: sentinel_schema::Point::new(lon, 0.5).unwrap(),
            reported_ms: now_ms(),
        };
        let node = &mut api.node.lock().unwrap();
        node.report(&new, event, Some("ada"), now_ms()).unwrap();
        across.push(event.to_hex());
    }
    let ids = |r: &super::Reply| -> Vec<String> {
        let mut ids: Vec<String> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let r = api
        .call("GET", "/api/v1/events?bbox=179,0,-179,1", Some(&ada), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(ids(&r), across);
    let r = api
        .call("GET", "/api/v1/events?bbox=-179,0,179,1", Some(&ada), None)
        .await;
    assert_eq!(ids(&r), Vec::<String>::new());
}

/// A small body sent with a huge declared `Content-Length`: read, it would
/// be refused for another reason (400), so a 413 shows the server refused
/// it from its headers alone.
fn declared_huge() -> HttpBody {
    HttpBody::from("{}")
}
