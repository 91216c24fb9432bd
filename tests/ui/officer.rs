//! The field officer's pages on a node, in a real browser against the
//! real binaries: reporting an event with a photo by tapping the map on a
//! node that never met a hub (then seeing it on the events page, in the
//! outbox and on its own page), the server's refusals shown next to the
//! field they name with nothing stored, and two devices' concurrent edits
//! shown side by side after syncing through the hub and settled with one
//! tap.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use sentinel::deploy::{Binaries, Deployment, Plan};
use serde_json::{json, Value};

use super::{Browser, STEP};

/// A 48×32 PNG, the photo the officer takes.
const PHOTO: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x20, 0x08, 0x02, 0x00, 0x00, 0x00, 0xdb, 0xb6, 0x6c,
    0x4b, 0x00, 0x00, 0x00, 0x31, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0xed, 0xce, 0x41, 0x09, 0x00,
    0x00, 0x08, 0x04, 0xb0, 0x8b, 0x63, 0x08, 0xfb, 0x63, 0x2c, 0x5b, 0x88, 0x8f, 0xc1, 0x02, 0x2c,
    0xd3, 0xf5, 0x4a, 0x84, 0x84, 0x84, 0x84, 0x84, 0x84, 0x84, 0x84, 0x84, 0x84, 0x84, 0x84, 0x84,
    0x84, 0x84, 0x84, 0x84, 0x2e, 0x2d, 0x0e, 0x60, 0x08, 0x6a, 0xca, 0xac, 0x40, 0x3c, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// A person signed in to one server's API, as a client (for the steps a
/// test sets up rather than looks at).
struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    async fn login(url: &str, name: &str, password: &str) -> Result<Api> {
        let base = url.trim_end_matches('/').to_string();
        let http = reqwest::Client::new();
        let r = http
            .post(format!("{base}/api/v1/login"))
            .json(&json!({"name": name, "password": password}))
            .send()
            .await?;
        ensure!(r.status().is_success(), "{name} cannot sign in at {base}: {}", r.status());
        let v: Value = r.json().await?;
        let token = v["token"].as_str().context("no token")?.to_string();
        Ok(Api { base, token, http })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await?;
        let status = r.status().as_u16();
        let text = r.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let (status, v) = self.call(method.clone(), path, body).await?;
        ensure!((200..300).contains(&status), "{method} {path}: {status} {v}");
        Ok(v)
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.ok(reqwest::Method::GET, path, None).await
    }

    /// "Sync now" on a node, waiting until the round is over and every
    /// link it tried caught up.
    async fn sync(&self) -> Result<()> {
        let started = Instant::now();
        loop {
            let (status, v) = self.call(reqwest::Method::POST, "/api/v1/sync", None).await?;
            if status == 202 {
                break;
            }
            // A round already running (the node's own schedule): wait for it.
            ensure!(status == 409 && v["field"] == "running", "sync now: {status} {v}");
            ensure!(started.elapsed() < STEP, "a sync round never ended");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let v = self.get("/api/v1/sync").await?;
            if v["running"] == false {
                if let Some(bad) = v["links"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|l| l["direction"] == "dialled" && !l["last_error"].is_null())
                {
                    bail!("sync failed: {bad}");
                }
                return Ok(());
            }
            ensure!(started.elapsed() < STEP, "the sync round did not end: {v}");
        }
    }
}

/// Clicks `css` at (`x`, `y`) pixels from its centre, as a finger would.
async fn tap_at(b: &Browser, css: &str, x: f64, y: f64) -> Result<()> {
    let element = b.find(css).await?;
    let tap = MouseActions::new("finger".to_string())
        .then(PointerAction::MoveToElement { element, duration: None, x, y })
        .then(PointerAction::Down { button: MOUSE_BUTTON_LEFT })
        .then(PointerAction::Up { button: MOUSE_BUTTON_LEFT });
    b.client.perform_actions(tap).await?;
    b.client.release_actions().await?;
    Ok(())
}

/// The event id of the page now showing (`#/events/ID`).
async fn event_on_page(b: &Browser) -> Result<String> {
    b.wait_script("return /^#\\/events\\/[0-9a-f]{32}$/.test(location.hash)")
        .await
        .context("the event's page did not open")?;
    Ok(b.route().await?.trim_start_matches("/events/").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_reports_an_event_with_a_photo_on_a_node_that_never_met_a_hub() {
    let bins = Binaries::beside_current_exe().unwrap();
    let plan = Plan { hub: false, nodes: vec!["ada".into()], rate_limit_per_s: 200 };
    let d = Deployment::start(&bins, &plan).await.unwrap();
    let url = d.node_url(0).unwrap();
    let origin = url.trim_end_matches('/').to_string();
    let officer = &d.nodes[0].officer;
    let photo = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
    std::fs::write(photo.path(), PHOTO).unwrap();
    let b = Browser::start("officer_reports").await.unwrap();
    b.check(async {
        b.sign_in(&url, &officer.name, &officer.password).await?;
        // The node's home is the officer's work; nothing yet.
        b.wait_text("[data-test=my-work]", "Nothing is assigned").await?;
        b.assert_accessible("my work").await?;
        b.click("[data-test=new-report]").await?;
        b.fill("[data-test=title]", "Flooded underpass on Ring Road").await?;
        b.fill("[data-test=description]", "Water knee-deep, cars turning back.").await?;
        b.find("[data-test=photos]").await?.send_keys(&photo.path().to_string_lossy()).await?;
        // Tap the map a little up and right of its centre.
        b.find("[data-test=report-map].leaflet-container").await?;
        tap_at(&b, "[data-test=report-map]", 40.0, -30.0).await?;
        b.wait_script("return document.querySelector('[data-test=lon]').value !== ''")
            .await
            .context("tapping the map set no location")?;
        b.assert_accessible("the report form").await?;
        b.click("[data-test=submit]").await?;
        let id = event_on_page(&b).await?;
        b.wait_text("[data-test=event-title]", "Flooded underpass").await?;
        b.wait_script("return [...document.querySelectorAll('img[data-test=photo]')].some(i => i.complete && i.naturalWidth === 48)")
            .await
            .context("the photo does not show on the event's page")?;
        b.wait_text("[data-test=history]", &officer.name).await?;
        b.assert_accessible("the event's page").await?;
        b.assert_same_origin(&origin).await?;

        let api = Api::login(&url, &officer.name, &officer.password).await?;
        let event = api.get(&format!("/api/v1/events/{id}")).await?;
        ensure!(event["media"].as_array().map(Vec::len) == Some(1), "{event}");
        let lon = event["location"]["lon"].as_f64().context("no lon")?;
        ensure!((-180.0..=180.0).contains(&lon), "{event}");

        // On the events page (list and map) …
        b.open(&format!("{origin}/#/events")).await?;
        b.wait_text("main", "Flooded underpass on Ring Road").await?;
        b.assert_accessible("the events page").await?;
        // … and in the outbox, waiting for a hub; the header says so.
        b.open(&format!("{origin}/#/outbox")).await?;
        b.find(&format!("[data-test=outbox-entry][data-event=\"{id}\"]")).await?;
        b.wait_text("[data-test=outbox-count]", "waiting").await?;
        b.wait_text("#conn", "waiting to send").await?;
        b.assert_accessible("the outbox").await?;
        b.assert_same_origin(&origin).await
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_form_shows_the_servers_refusal_next_to_the_field_and_stores_nothing() {
    let bins = Binaries::beside_current_exe().unwrap();
    let plan = Plan { hub: false, nodes: vec!["ada".into()], rate_limit_per_s: 200 };
    let d = Deployment::start(&bins, &plan).await.unwrap();
    let url = d.node_url(0).unwrap();
    let origin = url.trim_end_matches('/').to_string();
    let officer = &d.nodes[0].officer;
    let b = Browser::start("officer_field_errors").await.unwrap();
    b.check(async {
        b.sign_in(&url, &officer.name, &officer.password).await?;
        b.open(&format!("{origin}/#/report")).await?;
        // No location: the server names it, next to the location.
        b.fill("[data-test=title]", "Fallen tree").await?;
        b.click("[data-test=submit]").await?;
        b.wait_text("fieldset[name=location] .field-error", "required").await?;
        // Coordinates typed (by keyboard), no title: the title's error.
        b.fill("[data-test=title]", "").await?;
        b.fill("[data-test=description]", "Blocks both lanes").await?;
        b.fill("[data-test=lon]", "13.405").await?;
        b.fill("[data-test=lat]", "52.52").await?;
        b.click("[data-test=submit]").await?;
        b.wait_text("[data-field=title] .field-error", "must not be empty").await?;
        b.wait_script("return document.querySelector('[data-test=title]').getAttribute('aria-invalid') === 'true'\
                       && document.querySelector('fieldset[name=location] .field-error').textContent === ''")
            .await?;
        ensure!(b.route().await? == "/report", "left the form: {}", b.route().await?);
        b.assert_accessible("the report form with an error").await?;
        b.assert_same_origin(&origin).await?;

        let api = Api::login(&url, &officer.name, &officer.password).await?;
        let events = api.get("/api/v1/events").await?;
        ensure!(events["items"].as_array().is_some_and(Vec::is_empty), "stored: {events}");
        let outbox = api.get("/api/v1/outbox").await?;
        ensure!(outbox["awaiting_receipt"] == 0, "written: {outbox}");
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_edit_an_event_offline_and_the_officer_keeps_one_value() {
    let bins = Binaries::beside_current_exe().unwrap();
    let plan = Plan { hub: true, nodes: vec!["ada".into(), "bo".into()], rate_limit_per_s: 200 };
    let d = Deployment::start(&bins, &plan).await.unwrap();
    let hub = d.hub.as_ref().unwrap();
    let admin = hub.accounts.iter().find(|a| a.role == "admin").unwrap();
    let (ada, bo) = (&d.nodes[0].officer, &d.nodes[1].officer);
    let ada_url = d.node_url(0).unwrap();
    let origin = ada_url.trim_end_matches('/').to_string();
    let b = Browser::start("officer_conflict").await.unwrap();
    b.check(async {
        let on_ada = Api::login(&ada_url, &ada.name, &ada.password).await?;
        let on_bo = Api::login(&d.node_url(1).unwrap(), &bo.name, &bo.password).await?;
        let on_hub = Api::login(&d.hub_url().unwrap(), &admin.name, &admin.password).await?;
        // Ada reports; the hub learns of it and its admin assigns bo, so
        // both officers may edit it, each on their own device.
        let ack = on_ada
            .ok(reqwest::Method::POST, "/api/v1/events", Some(json!({
                "title": "Bridge damaged", "category": "road", "severity": 3,
                "location": {"lon": 13.4, "lat": 52.5},
            })))
            .await?;
        let id = ack["event"].as_str().context("no event id")?.to_string();
        on_ada.sync().await?;
        let started = Instant::now();
        while on_hub.call(reqwest::Method::GET, &format!("/api/v1/events/{id}"), None).await?.0 != 200 {
            ensure!(started.elapsed() < STEP, "the hub never showed the event");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        on_hub
            .ok(reqwest::Method::POST, &format!("/api/v1/events/{id}/assign"), Some(json!({"assignee": bo.name})))
            .await?;
        on_bo.sync().await?;
        let on_bo_event = on_bo.get(&format!("/api/v1/events/{id}")).await?;
        ensure!(on_bo_event["assignee"] == bo.name.as_str(), "{on_bo_event}");
        // Offline from each other, both retitle it.
        let edit = |title: &str| Some(json!({"title": title}));
        on_ada.ok(reqwest::Method::PATCH, &format!("/api/v1/events/{id}"), edit("Bridge closed (ada)")).await?;
        on_bo.ok(reqwest::Method::PATCH, &format!("/api/v1/events/{id}"), edit("Bridge open one lane (bo)")).await?;
        on_ada.sync().await?;
        on_bo.sync().await?;
        on_ada.sync().await?;

        b.sign_in(&ada_url, &ada.name, &ada.password).await?;
        b.open(&format!("{origin}/#/events/{id}")).await?;
        let choices = "[data-test=conflicts] .conflict[data-field=title] [data-test=conflict-value]";
        b.wait_text(choices, "Bridge closed (ada)").await?;
        b.wait_text(choices, "Bridge open one lane (bo)").await?;
        b.wait_text("[data-test=history]", &bo.name).await?;
        b.assert_accessible("an event with conflicting edits").await?;
        // Keep bo's value: one new edit, and the conflict is gone.
        b.click(".conflict[data-field=title] .choice[data-value='Bridge open one lane (bo)'] [data-test=keep]")
            .await?;
        b.wait_script("return !document.querySelector('[data-test=conflicts]')")
            .await
            .context("the conflict is still shown")?;
        b.wait_text("[data-test=event-title]", "Bridge open one lane (bo)").await?;
        let event = on_ada.get(&format!("/api/v1/events/{id}")).await?;
        ensure!(event["title"] == "Bridge open one lane (bo)", "{event}");
        ensure!(event["conflicts"].as_object().is_some_and(|c| !c.contains_key("title")), "{event}");
        b.assert_accessible("the event, settled").await?;
        b.assert_same_origin(&origin).await
    })
    .await
    .unwrap();
}
