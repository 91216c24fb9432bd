//! Who may do what, route by route and role by role: every route of the
//! node's API called by an admin, the officer who reported the event, the
//! officer assigned to it, another officer, the public, a person without a
//! role, and nobody signed in — each answer what `access::check` decides.

use axum::http::StatusCode;
use sentinel_certs::testing::now_ms;
use sentinel_http::testing;
use sentinel_schema::access::{check, Action, EventFacts};
use sentinel_schema::{EventEdit, EventId, PersonRole, Status};
use serde_json::{json, Value};

use super::{Api, JPEG};

/// What a route needs of its event before the call.
#[derive(Clone, Copy)]
enum Needs {
    /// No event.
    Nothing,
    /// A fresh event reported by `ada`, assigned to `bo`, in this status.
    Event(Status),
}

struct Route {
    method: &'static str,
    /// `{id}` and `{hash}` are filled in.
    path: &'static str,
    body: Option<Value>,
    action: Action,
    needs: Needs,
    success: StatusCode,
}

fn routes() -> Vec<Route> {
    use Needs::*;
    let r = |method, path, body, action, needs, success| Route {
        method,
        path,
        body,
        action,
        needs,
        success,
    };
    let ok = StatusCode::OK;
    let created = StatusCode::CREATED;
    vec![
        r(
            "GET",
            "/api/v1/events",
            None,
            Action::ReadEvents,
            Nothing,
            ok,
        ),
        r(
            "POST",
            "/api/v1/events",
            Some(
                json!({"title": "Fallen tree", "category": "storm", "severity": 2,
                        "location": {"lon": 13.4, "lat": 52.5}}),
            ),
            Action::Report,
            Nothing,
            created,
        ),
        r(
            "GET",
            "/api/v1/events/{id}",
            None,
            Action::ReadEvents,
            Event(Status::Assigned),
            ok,
        ),
        r(
            "PATCH",
            "/api/v1/events/{id}",
            Some(json!({"severity": 5, "title": "Flooded underpass, rising"})),
            Action::Edit,
            Event(Status::Assigned),
            ok,
        ),
        r(
            "POST",
            "/api/v1/events/{id}/notes",
            Some(json!({"text": "road closed"})),
            Action::Note,
            Event(Status::Assigned),
            created,
        ),
        r(
            "POST",
            "/api/v1/events/{id}/assign",
            Some(json!({"assignee": "cy"})),
            Action::Assign,
            Event(Status::Assigned),
            ok,
        ),
        r(
            "POST",
            "/api/v1/events/{id}/accept",
            None,
            Action::Work,
            Event(Status::Assigned),
            ok,
        ),
        r(
            "POST",
            "/api/v1/events/{id}/start",
            None,
            Action::Work,
            Event(Status::Assigned),
            ok,
        ),
        r(
            "POST",
            "/api/v1/events/{id}/resolve",
            None,
            Action::Work,
            Event(Status::InProgress),
            ok,
        ),
        r(
            "POST",
            "/api/v1/events/{id}/close",
            None,
            Action::CloseReopen,
            Event(Status::Resolved),
            ok,
        ),
        r(
            "POST",
            "/api/v1/events/{id}/reopen",
            None,
            Action::CloseReopen,
            Event(Status::Closed),
            ok,
        ),
        // The body is a multipart upload (see `call`).
        r(
            "POST",
            "/api/v1/events/{id}/media",
            None,
            Action::Attach,
            Event(Status::Assigned),
            created,
        ),
        r(
            "GET",
            "/api/v1/media/{hash}",
            None,
            Action::ReadMedia,
            Nothing,
            ok,
        ),
        r(
            "GET",
            "/api/v1/outbox",
            None,
            Action::ReadOutbox,
            Nothing,
            ok,
        ),
        r("GET", "/api/v1/sync", None, Action::Sync, Nothing, ok),
        r(
            "GET",
            "/api/v1/export.geojson",
            None,
            Action::Export,
            Nothing,
            ok,
        ),
        r(
            "GET",
            "/api/v1/export.csv",
            None,
            Action::Export,
            Nothing,
            ok,
        ),
        r(
            "GET",
            "/api/v1/export.kml",
            None,
            Action::Export,
            Nothing,
            ok,
        ),
        // A stream: only its status and type are read (see `call`).
        r("GET", "/api/v1/feed", None, Action::Subscribe, Nothing, ok),
        // Sensor pushes take no person's token: `sensors.rs` tests them.
        r(
            "GET",
            "/api/v1/sensors/readings",
            None,
            Action::ReadReadings,
            Nothing,
            ok,
        ),
        r(
            "GET",
            "/api/v1/sensors/readings?kind=water_gauge&bucket_ms=60000",
            None,
            Action::ReadReadings,
            Nothing,
            ok,
        ),
        r(
            "GET",
            "/api/v1/sensors",
            None,
            Action::ReadReadings,
            Nothing,
            ok,
        ),
        r(
            "GET",
            "/api/v1/sensors/alerts",
            None,
            Action::ReadReadings,
            Nothing,
            ok,
        ),
    ]
}

async fn call(api: &Api, route: &Route, path: &str, token: Option<&str>) -> super::Reply {
    if route.path.ends_with("/media") {
        let id = path
            .trim_start_matches("/api/v1/events/")
            .trim_end_matches("/media");
        return api.upload(id, token, JPEG).await;
    }
    if route.path.ends_with("/feed") {
        let r = api.open_get(path, token).await;
        if r.status.is_success() {
            assert_eq!(r.headers["content-type"], "text/event-stream");
        }
        return r;
    }
    api.call(route.method, path, token, route.body.clone())
        .await
}

#[tokio::test]
async fn every_route_answers_each_role_as_the_matrix_says() {
    let api = Api::start();
    let callers: [(&str, Option<PersonRole>); 6] = [
        ("boss", Some(PersonRole::Admin)),
        ("ada", Some(PersonRole::Officer)),
        ("bo", Some(PersonRole::Officer)),
        ("cy", Some(PersonRole::Officer)),
        ("pat", Some(PersonRole::Public)),
        ("nobody", None),
    ];
    for (name, role) in callers {
        api.account(name, role);
    }
    // A photo on an event, for `GET /media/{hash}`.
    let photo_event = api.event("ada");
    let ack = api
        .node
        .lock()
        .unwrap()
        .attach(photo_event, JPEG, "photo.jpg", Some("ada"), now_ms())
        .unwrap();
    assert_eq!(ack.event, photo_event.to_hex());
    let hash = hex::encode(
        api.node
            .lock()
            .unwrap()
            .show(photo_event)
            .unwrap()
            .view
            .media[0]
            .hash,
    );

    let mut checked = 0;
    for (name, role) in callers {
        let token = api.login(name).await;
        let role = role.unwrap_or(PersonRole::None);
        for route in routes() {
            let event: Option<EventId> = match route.needs {
                Needs::Nothing => None,
                Needs::Event(status) => Some(api.event_in("ada", "bo", status)),
            };
            let path = route
                .path
                .replace("{id}", &event.map(|e| e.to_hex()).unwrap_or_default())
                .replace("{hash}", &hash);
            let before = api.entries();
            // Signed out: 401 on every route, and nothing written.
            let r = call(&api, &route, &path, None).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{} {path} signed out",
                route.method
            );
            let r = call(&api, &route, &path, Some("0".repeat(64).as_str())).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "unknown token");
            assert_eq!(api.entries(), before);

            let facts = event.map(|_| EventFacts {
                reporter: Some("ada"),
                assignee: Some("bo"),
            });
            let allowed = check(name, role, route.action, facts).is_ok();
            let r = call(&api, &route, &path, Some(&token)).await;
            let expected = if allowed {
                route.success
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(
                r.status, expected,
                "{name} ({role:?}) {} {path}: {}",
                route.method, r.body
            );
            if !allowed {
                assert_eq!(api.entries(), before, "a refused request wrote nothing");
            } else if route.method != "GET" {
                assert!(api.entries() > before, "{} {path} wrote", route.method);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, callers.len() * routes().len());
}

#[tokio::test]
async fn the_actor_of_a_report_is_the_caller_and_the_reporter_may_edit_it() {
    let api = Api::start();
    api.account("cy", Some(PersonRole::Officer));
    api.account("dee", Some(PersonRole::Officer));
    let cy = api.login("cy").await;
    let dee = api.login("dee").await;
    let r = api
        .call(
            "POST",
            "/api/v1/events",
            Some(&cy),
            Some(
                json!({"title": "Gas smell", "description": "near the school",
                        "category": "hazard", "severity": 4,
                        "location": {"lon": -0.1276, "lat": 51.5072}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["event"].as_str().unwrap().to_owned();
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        format!("/api/v1/events/{id}")
    );
    let uri = format!("/api/v1/events/{id}");
    let d = api.call("GET", &uri, Some(&cy), None).await;
    assert_eq!(d.body["reported_by"], "cy");
    assert_eq!(d.body["history"][0]["actor"], "cy");
    assert_eq!(d.body["location"], json!({"lon": -0.1276, "lat": 51.5072}));
    // The reporter edits (all fields in one commit); another officer may not.
    let edit = json!({"title": "Gas smell, confirmed", "severity": 5,
                      "location": {"lon": -0.128, "lat": 51.5}});
    let r = api
        .call("PATCH", &uri, Some(&dee), Some(edit.clone()))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = api.call("PATCH", &uri, Some(&cy), Some(edit)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["entries"].as_array().unwrap().len(), 3);
    let d = api.call("GET", &uri, Some(&dee), None).await;
    assert_eq!(d.body["title"], "Gas smell, confirmed");
    assert_eq!(d.body["severity"], 5);
    // The report and the edit, both by the reporter (checked on a history
    // that has them: an empty one would pass any `all`).
    let history = d.body["history"].as_array().unwrap();
    assert!(history.len() >= 2, "{history:?}");
    assert!(history.iter().all(|h| h["actor"] == "cy"), "{history:?}");
    // Search finds it, and the page has a working cursor.
    let r = api
        .call("GET", "/api/v1/events?q=gas&limit=1", Some(&dee), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["items"][0]["id"], id.as_str());
    // Workflow through the API: an admin assigns, the assignee works it.
    api.account("boss", Some(PersonRole::Admin));
    let boss = api.login("boss").await;
    let api = &api;
    let uri = &uri;
    let post = |path: &str, token: &str, body: Option<Value>| {
        let uri = format!("{uri}/{path}");
        let token = token.to_owned();
        async move { api.call("POST", &uri, Some(&token), body).await }
    };
    let r = post("assign", &boss, Some(json!({"assignee": "dee"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(post("start", &cy, None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(post("accept", &dee, None).await.status, StatusCode::OK);
    assert_eq!(post("start", &dee, None).await.status, StatusCode::OK);
    assert_eq!(post("resolve", &dee, None).await.status, StatusCode::OK);
    assert_eq!(
        post("close", &dee, None).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(post("close", &boss, None).await.status, StatusCode::OK);
    // A step from the wrong status is a conflict naming `status`.
    let r = post("resolve", &dee, None).await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (StatusCode::CONFLICT, Some("status"))
    );
    assert_eq!(post("reopen", &boss, None).await.status, StatusCode::OK);
    let d = api.call("GET", uri, Some(&dee), None).await;
    assert_eq!(d.body["status"], "in_progress");
    assert_eq!(d.body["assignee"], "dee");
    // The outbox lists what was written here, awaiting a hub receipt.
    let r = api.call("GET", "/api/v1/outbox", Some(&dee), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body["awaiting_receipt"].as_u64().unwrap() >= 8,
        "{}",
        r.body
    );
    assert!(r.body["last_receipt"].is_null());
}

#[tokio::test]
async fn the_public_sees_events_without_people_notes_history_or_exact_places() {
    let api = Api::start();
    api.account("pat", Some(PersonRole::Public));
    api.account("ada", Some(PersonRole::Officer));
    let event = api.event_in("ada", "bo", Status::Assigned);
    api.edit(
        event,
        "ada",
        EventEdit::Note {
            text: "the caller's phone number is 555-0100".into(),
            actor: Some("ada".into()),
            at_ms: now_ms(),
        },
    );
    let (pat, ada) = (api.login("pat").await, api.login("ada").await);
    let uri = format!("/api/v1/events/{}", event.to_hex());
    let full = api.call("GET", &uri, Some(&ada), None).await.body;
    let redacted = api.call("GET", &uri, Some(&pat), None).await.body;
    assert_eq!(full["assignee"], "bo");
    assert_eq!(full["reported_by"], "ada");
    assert!(full["history"].is_array());
    assert_eq!(full["notes"].as_array().unwrap().len(), 1);
    testing::assert_redacted(&redacted);
    assert_eq!(redacted["title"], full["title"]);
    assert_coarse(&redacted["location"]);
    let list = api.call("GET", "/api/v1/events", Some(&pat), None).await;
    assert_eq!(list.status, StatusCode::OK);
    let item = &list.body["items"][0];
    assert!(
        item.get("assignee").is_none() && item.get("n_notes").is_none(),
        "{item}"
    );
    assert_coarse(&item["location"]);
    // A box can tell no more than the grid cell: one that holds the exact
    // point only partly still finds the event, one beside its cell does not.
    let hit = "/api/v1/events?bbox=13.4049,52.5200,13.4050,52.5201";
    let r = api.call("GET", hit, Some(&pat), None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.body);
    let near_miss = "/api/v1/events?bbox=13.3960,52.5150,13.4000,52.5190";
    let r = api.call("GET", near_miss, Some(&pat), None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "same cell");
    let r = api.call("GET", near_miss, Some(&ada), None).await;
    assert_eq!(
        r.body["items"].as_array().unwrap().len(),
        0,
        "exact for officers"
    );
    let elsewhere = "/api/v1/events?bbox=13.42,52.53,13.43,52.54";
    let r = api.call("GET", elsewhere, Some(&pat), None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);
    // No text search (it would search notes), no distance and no people
    // for the public.
    for (uri, field) in [
        ("/api/v1/events?q=555", "q"),
        ("/api/v1/events?near=13.40,52.52&radius=10", "near"),
        ("/api/v1/events?assignee=ada", "assignee"),
        ("/api/v1/events/clusters?zoom=3&assignee=ada", "assignee"),
    ] {
        let r = api.call("GET", uri, Some(&pat), None).await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field))
        );
    }
    let r = api
        .call("GET", "/api/v1/events?q=555", Some(&ada), None)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
}

/// The exact location (13.404954, 52.520008) snapped to the 0.01° grid.
fn assert_coarse(location: &Value) {
    let lon = location["lon"].as_f64().unwrap();
    let lat = location["lat"].as_f64().unwrap();
    assert!(
        (lon - 13.40).abs() < 1e-9 && (lat - 52.52).abs() < 1e-9,
        "{location}"
    );
}
