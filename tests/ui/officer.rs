//! The field officer's pages on a node, in a real browser against the
//! real binaries: reporting an event with a photo by tapping the map on a
//! node that never met a hub (then seeing it on the events page, in the
//! outbox and on its own page), the server's refusals shown next to the
//! field they name with nothing stored, and two devices' concurrent edits
//! shown side by side after syncing through the hub and settled with one
//! tap.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use sentinel::deploy::client::Api;
use sentinel::deploy::{Binaries, Deployment, Plan};
use serde_json::json;

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

/// Clicks `css` at (`x`, `y`) pixels from its centre, as a finger would.
async fn tap_at(b: &Browser, css: &str, x: f64, y: f64) -> Result<()> {
    let element = b.find(css).await?;
    let tap = MouseActions::new("finger".to_string())
        .then(PointerAction::MoveToElement {
            element,
            duration: None,
            x,
            y,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
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
    let plan = Plan {
        hub: false,
        nodes: vec!["ada".into()],
        rate_limit_per_s: 200,
        ..Plan::default()
    };
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

        let api = Api::sign_in(d.nodes[0].http, &officer.name, &officer.password).await?;
        let event = api.get(&format!("/api/v1/events/{id}"), &[]).await?;
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
    let plan = Plan {
        hub: false,
        nodes: vec!["ada".into()],
        rate_limit_per_s: 200,
        ..Plan::default()
    };
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

        let api = Api::sign_in(d.nodes[0].http, &officer.name, &officer.password).await?;
        let events = api.get("/api/v1/events", &[]).await?;
        ensure!(events["items"].as_array().is_some_and(Vec::is_empty), "stored: {events}");
        let outbox = api.get("/api/v1/outbox", &[]).await?;
        ensure!(outbox["awaiting_receipt"] == 0, "written: {outbox}");
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_edit_an_event_offline_and_the_officer_keeps_one_value() {
    let bins = Binaries::beside_current_exe().unwrap();
    let plan = Plan {
        hub: true,
        nodes: vec!["ada".into(), "bo".into()],
        rate_limit_per_s: 200,
        ..Plan::default()
    };
    let d = Deployment::start(&bins, &plan).await.unwrap();
    let hub = d.hub.as_ref().unwrap();
    let admin = hub.accounts.iter().find(|a| a.role == "admin").unwrap();
    let (ada, bo) = (&d.nodes[0].officer, &d.nodes[1].officer);
    let ada_url = d.node_url(0).unwrap();
    let origin = ada_url.trim_end_matches('/').to_string();
    let b = Browser::start("officer_conflict").await.unwrap();
    b.check(async {
        let on_ada = Api::sign_in(d.nodes[0].http, &ada.name, &ada.password).await?;
        let on_bo = Api::sign_in(d.nodes[1].http, &bo.name, &bo.password).await?;
        let on_hub = Api::sign_in(hub.http, &admin.name, &admin.password).await?;
        // Ada reports; the hub learns of it and its admin assigns bo, so
        // both officers may edit it, each on their own device.
        let ack = on_ada
            .post(
                "/api/v1/events",
                json!({
                    "title": "Bridge damaged", "category": "road", "severity": 3,
                    "location": {"lon": 13.4, "lat": 52.5},
                }),
            )
            .await?;
        let id = ack["event"].as_str().context("no event id")?.to_string();
        on_ada.sync_now().await?;
        let started = Instant::now();
        while on_hub.get(&format!("/api/v1/events/{id}"), &[]).await.is_err() {
            ensure!(started.elapsed() < STEP, "the hub never showed the event");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        on_hub
            .post(&format!("/api/v1/events/{id}/assign"), json!({"assignee": bo.name}))
            .await?;
        on_bo.sync_now().await?;
        let on_bo_event = on_bo.get(&format!("/api/v1/events/{id}"), &[]).await?;
        ensure!(on_bo_event["assignee"] == bo.name.as_str(), "{on_bo_event}");
        // Offline from each other, both retitle it.
        let path = format!("/api/v1/events/{id}");
        on_ada.patch(&path, json!({"title": "Bridge closed (ada)"})).await?;
        on_bo.patch(&path, json!({"title": "Bridge open one lane (bo)"})).await?;
        on_ada.sync_now().await?;
        on_bo.sync_now().await?;
        on_ada.sync_now().await?;

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
        let title = b.text("[data-test=event-title]").await?;
        ensure!(title == "Bridge open one lane (bo)", "the page shows {title:?}");
        let event = on_ada.get(&path, &[]).await?;
        ensure!(event["title"] == "Bridge open one lane (bo)", "{event}");
        ensure!(event["conflicts"].as_object().is_some_and(|c| !c.contains_key("title")), "{event}");
        b.assert_accessible("the event, settled").await?;
        b.assert_same_origin(&origin).await
    })
    .await
    .unwrap();
}
