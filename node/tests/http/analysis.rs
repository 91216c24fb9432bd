//! Analysis on the node (`/api/v1/analysis/…`) against a real SpatiaLite
//! store: near duplicates, hotspots, and summaries — local, or by a
//! language model that is a real OpenAI-compatible HTTP server on
//! localhost (an axum stub recording what it is sent), with every way it
//! can fail answered locally with the reason, and nothing the caller's
//! role may not see ever reaching it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use sentinel_certs::testing::now_ms;
use sentinel_http::llm::Llm;
use sentinel_node::http::{router_with, ApiOptions, ApiState};
use sentinel_schema::{EventEdit, EventId, NewEvent, PersonRole, Point};
use serde_json::{json, Value};

use super::Api;

const MIN: u64 = 60_000;

/// Reports an event `n` at `lon, lat`, `ago_ms` before now.
fn report(api: &Api, n: u8, lon: f64, lat: f64, ago_ms: u64, title: &str, text: &str) -> EventId {
    let event = EventId([n; 16]);
    let new = NewEvent {
        title: title.into(),
        description: text.into(),
        category: "flood".into(),
        severity: 3,
        location: Point::new(lon, lat).unwrap(),
        reported_ms: now_ms() - ago_ms,
    };
    api.node
        .lock()
        .unwrap()
        .report(&new, event, Some("olga"), now_ms())
        .unwrap();
    event
}

/// Two reports of one flood 60 m and ten minutes apart, the same flood
/// far away, and something else at the same spot.
fn seed(api: &Api) -> (EventId, EventId) {
    let a = report(
        api,
        1,
        13.4049,
        52.5200,
        30 * MIN,
        "Flooded underpass",
        "Water up to the knees at Main St",
    );
    let b = report(
        api,
        2,
        13.4057,
        52.5202,
        20 * MIN,
        "Underpass flooded",
        "water up to knees, Main St",
    );
    report(
        api,
        3,
        13.6,
        52.6,
        25 * MIN,
        "Flooded underpass",
        "Water up to the knees at Main St",
    );
    report(
        api,
        4,
        13.4049,
        52.5200,
        15 * MIN,
        "Tree down",
        "A tree blocks the road",
    );
    (a, b)
}

#[tokio::test]
async fn duplicates_pair_place_time_and_words_and_not_for_the_public() {
    let api = Api::start();
    api.account("olga", Some(PersonRole::Officer));
    api.account("pat", Some(PersonRole::Public));
    let (olga, pat) = (api.login("olga").await, api.login("pat").await);
    let (a, b) = seed(&api);

    let r = api
        .call("GET", "/api/v1/analysis/duplicates", Some(&olga), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let pairs = r.body["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 1, "{}", r.body);
    assert_eq!(pairs[0]["keep"]["id"], a.to_hex());
    assert_eq!(pairs[0]["duplicate"]["id"], b.to_hex());
    assert_eq!(pairs[0]["apart_s"], 600);
    assert!(pairs[0]["distance_m"].as_f64().unwrap() < 100.0);
    assert_eq!(pairs[0]["reasons"].as_array().unwrap().len(), 3);
    assert_eq!(r.body["scanned"], 4);
    assert_eq!(r.body["truncated"], false);

    // Stricter words, a shorter window: no pair.
    for q in ["similarity=0.99", "window_s=60", "distance_m=10"] {
        let r = api
            .call(
                "GET",
                &format!("/api/v1/analysis/duplicates?{q}"),
                Some(&olga),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
        assert_eq!(r.body["pairs"], json!([]), "{q}");
    }

    let r = api
        .call("GET", "/api/v1/analysis/duplicates", Some(&pat), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = api
        .call("GET", "/api/v1/analysis/duplicates", None, None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    for (q, field) in [
        ("distance_m=0", "distance_m"),
        ("distance_m=20000", "distance_m"),
        ("distance_m=NaN", "distance_m"),
        ("similarity=1.5", "similarity"),
        ("window_s=0", "window_s"),
        ("window_s=soon", "window_s"),
        ("limit=201", "limit"),
        ("bbox=1,2,3", "bbox"),
        ("until=5", "until"),
    ] {
        let r = api
            .call(
                "GET",
                &format!("/api/v1/analysis/duplicates?{q}"),
                Some(&olga),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.body);
        assert_eq!(r.body["field"], field, "{q}: {}", r.body);
    }
}

#[tokio::test]
async fn hotspots_rise_above_their_baseline_and_the_public_sees_the_grid() {
    let api = Api::start();
    api.account("olga", Some(PersonRole::Officer));
    api.account("pat", Some(PersonRole::Public));
    let (olga, pat) = (api.login("olga").await, api.login("pat").await);
    // A quiet street: four reports in the last hour.
    for n in 0..4u8 {
        report(
            &api,
            10 + n,
            13.4551,
            52.5151,
            (5 + u64::from(n)) * MIN,
            "Smoke",
            "smoke",
        );
    }
    // A busy square: two an hour, for the last five hours.
    for n in 0..10u8 {
        report(
            &api,
            30 + n,
            13.3011,
            52.5011,
            (10 + 30 * u64::from(n)) * MIN,
            "Noise",
            "noise",
        );
    }
    let until = now_ms() + 1;
    let q = format!("/api/v1/analysis/hotspots?window_s=3600&baseline=4&until={until}");
    let r = api.call("GET", &q, Some(&olga), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let hot = r.body["hotspots"].as_array().unwrap();
    assert_eq!(hot.len(), 1, "{}", r.body);
    assert_eq!(hot[0]["recent"], 4);
    assert_eq!(hot[0]["expected"], 0.0);
    let cell = hot[0]["cell"].as_array().unwrap();
    assert!(cell[0].as_f64().unwrap() <= 13.4551 && cell[2].as_f64().unwrap() >= 13.4551);
    assert_eq!(r.body["until_ms"], until);

    // The public: the same, from snapped locations, never a finer cell.
    let r = api.call("GET", &q, Some(&pat), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["hotspots"].as_array().unwrap().len(), 1);
    for (q, field) in [
        ("cell=0.001", "cell"),
        ("near=13.4,52.5&radius=100", "near"),
        ("q=smoke", "q"),
        ("from=1", "from"),
    ] {
        let r = api
            .call(
                "GET",
                &format!("/api/v1/analysis/hotspots?{q}"),
                Some(&pat),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.body);
        assert_eq!(r.body["field"], field, "{q}: {}", r.body);
    }
    for (q, field) in [
        ("baseline=0", "baseline"),
        ("window_s=59", "window_s"),
        ("cell=11", "cell"),
        ("min_count=0", "min_count"),
        ("min_score=-1", "min_score"),
        ("until=-1", "until"),
        ("limit=0", "limit"),
    ] {
        let r = api
            .call(
                "GET",
                &format!("/api/v1/analysis/hotspots?{q}"),
                Some(&olga),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.body);
        assert_eq!(r.body["field"], field, "{q}: {}", r.body);
    }
}

/// How the stub model answers.
#[derive(Clone, Copy)]
enum Mode {
    Answer,
    Slow,
    Garbage,
    Fails,
}

/// What the stub was sent: each request's Authorization header and body.
type Seen = Arc<Mutex<Vec<(Option<String>, String)>>>;

/// A real OpenAI-compatible server on localhost that records every
/// request body and Authorization header it is sent.
struct Stub {
    url: String,
    seen: Seen,
}

async fn stub(mode: Mode) -> Stub {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned());
                log.lock().unwrap().push((auth, body));
                match mode {
                    Mode::Answer => (
                        StatusCode::OK,
                        json!({"choices":[{"index":0,"message":{"role":"assistant",
                            "content":"The model says: one flood, reported twice."}}]})
                        .to_string(),
                    ),
                    Mode::Slow => {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        (StatusCode::OK, "{}".to_owned())
                    }
                    Mode::Garbage => (StatusCode::OK, "<html>not a completion</html>".to_owned()),
                    Mode::Fails => (StatusCode::INTERNAL_SERVER_ERROR, "down".to_owned()),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Stub { url, seen }
}

/// `api` with the model at `url` (none when `None`).
fn with_model(api: &mut Api, url: Option<&str>, timeout: Duration) {
    let llm = Llm::new(url, Some("sk-test".into()), None, timeout).unwrap();
    api.app = router_with(
        ApiState::new(api.node.clone()).unwrap(),
        &ApiOptions {
            llm,
            ..ApiOptions::default()
        },
    );
}

async fn summary(api: &Api, token: &str, body: Value) -> Value {
    let r = api
        .call(
            "POST",
            "/api/v1/analysis/summary",
            Some(token),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{body}: {}", r.body);
    r.body
}

#[tokio::test]
async fn summaries_are_the_models_or_local_with_the_reason() {
    let mut api = Api::start();
    api.account("olga", Some(PersonRole::Officer));
    let olga = api.login("olga").await;
    let (a, _) = seed(&api);
    let area = json!({ "bbox": "13.3,52.4,13.7,52.7" });

    // Unset: local, and said so.
    let s = summary(&api, &olga, area.clone()).await;
    assert_eq!(s["source"], "local");
    assert_eq!(s["reason"], "no language model is configured");
    assert_eq!(s["local"]["total"], 4);
    assert_eq!(s["local"]["duplicates"], 1);
    assert_eq!(s["text"], s["local"]["text"]);
    assert!(
        s["text"].as_str().unwrap().starts_with("4 events reported"),
        "{s}"
    );

    // A model that answers.
    let good = stub(Mode::Answer).await;
    with_model(&mut api, Some(&good.url), Duration::from_secs(5));
    let s = summary(&api, &olga, area.clone()).await;
    assert_eq!(s["source"], "model", "{s}");
    assert_eq!(s["reason"], Value::Null);
    assert_eq!(s["text"], "The model says: one flood, reported twice.");
    assert_eq!(s["local"]["total"], 4);
    let s = summary(&api, &olga, json!({ "event": a.to_hex() })).await;
    assert_eq!(s["source"], "model", "{s}");
    {
        let seen = good.seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0.as_deref(), Some("Bearer sk-test"));
        let sent: Value = serde_json::from_str(&seen[0].1).unwrap();
        assert_eq!(sent["messages"][0]["role"], "system");
        assert!(sent["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("Flooded underpass"));
    }

    // Down, slow, garbage, failing: local, with the reason.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let slow = stub(Mode::Slow).await;
    let garbage = stub(Mode::Garbage).await;
    let fails = stub(Mode::Fails).await;
    for (url, reason) in [
        (down.as_str(), "the language model could not be reached"),
        (
            slow.url.as_str(),
            "the language model did not answer within 1 s",
        ),
        (
            garbage.url.as_str(),
            "the language model's answer was not a chat completion",
        ),
        (fails.url.as_str(), "the language model answered HTTP 500"),
    ] {
        with_model(&mut api, Some(url), Duration::from_secs(1));
        let started = std::time::Instant::now();
        let s = summary(&api, &olga, area.clone()).await;
        assert!(started.elapsed() < Duration::from_secs(4), "{reason}");
        assert_eq!(s["source"], "local", "{s}");
        assert_eq!(s["reason"], reason, "{s}");
        assert_eq!(s["text"], s["local"]["text"]);
    }
    assert_eq!(slow.seen.lock().unwrap().len(), 1);

    // Unset again: nothing more is sent anywhere.
    with_model(&mut api, None, Duration::from_secs(1));
    let s = summary(&api, &olga, area).await;
    assert_eq!(s["source"], "local");
    assert_eq!(good.seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn the_model_sees_only_what_the_role_sees() {
    let mut api = Api::start();
    api.account("olga", Some(PersonRole::Officer));
    api.account("pat", Some(PersonRole::Public));
    let (olga, pat) = (api.login("olga").await, api.login("pat").await);
    let event = report(
        &api,
        9,
        13.404954,
        52.520008,
        5 * MIN,
        "Flooded underpass",
        "knee deep",
    );
    api.edit(event, "boss", EventEdit::Assign("bruno-assignee".into()));
    api.edit(
        event,
        "olga",
        EventEdit::Note {
            text: "caller's phone 0170-secret".into(),
            actor: Some("olga".into()),
            at_ms: now_ms(),
        },
    );
    let model = stub(Mode::Answer).await;
    with_model(&mut api, Some(&model.url), Duration::from_secs(5));

    for body in [
        json!({ "event": event.to_hex() }),
        json!({ "bbox": "13,52,14,53" }),
    ] {
        let s = summary(&api, &pat, body.clone()).await;
        assert_eq!(s["source"], "model", "{body}: {s}");
        let s = summary(&api, &olga, body).await;
        assert_eq!(s["source"], "model");
    }
    let seen = model.seen.lock().unwrap();
    assert_eq!(seen.len(), 4);
    for (i, (_, sent)) in seen.iter().enumerate() {
        // Nobody's name, whoever asks.
        assert!(!sent.contains("bruno-assignee"), "{i}: {sent}");
        assert!(sent.contains("Flooded underpass"), "{i}: {sent}");
        let public = i % 2 == 0;
        // The public's: no notes, no exact location.
        assert_eq!(
            sent.contains("0170-secret"),
            !public && i == 1,
            "{i}: {sent}"
        );
        assert_eq!(sent.contains("13.404954"), !public, "{i}: {sent}");
    }
}

#[tokio::test]
async fn summary_bodies_are_checked_field_by_field() {
    let api = Api::start();
    api.account("olga", Some(PersonRole::Officer));
    let olga = api.login("olga").await;
    for (body, field) in [
        (json!({ "area": "x" }), "area"),
        (json!({ "event": "nope" }), "event"),
        (json!({ "event": 5 }), "event"),
        (
            json!({ "event": "00000000000000000000000000000001", "bbox": "1,2,3,4" }),
            "bbox",
        ),
        (json!({ "bbox": "1,2" }), "bbox"),
        (json!({ "from": 10, "to": 5 }), "from"),
        (json!({ "min_severity": 9 }), "min_severity"),
        (json!({ "status": ["open"] }), "status"),
    ] {
        let r = api
            .call(
                "POST",
                "/api/v1/analysis/summary",
                Some(&olga),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.body["field"], field, "{body}: {}", r.body);
    }
    let r = api
        .call(
            "POST",
            "/api/v1/analysis/summary",
            Some(&olga),
            Some(json!({ "event": "00000000000000000000000000000001" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
}
