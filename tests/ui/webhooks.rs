//! The admin's webhooks page on the hub, driven in Chromium against the
//! real binaries and a real HTTP receiver on localhost: a subscription
//! made through the page (a bad URL refused at its field first, nothing
//! stored), its secret shown once, a matching report delivered to the
//! receiver signed with that secret — refused first, so a dead letter the
//! page sends again with Replay — and logged as delivered; pause, change
//! and delete; and nobody else (an officer, the public, a node) is
//! offered the page.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use fantoccini::key::Key;
use sentinel::deploy::client::Api;
use sentinel::deploy::{Binaries, Deployment, Plan};
use serde_json::{json, Value};

use super::receiver::Receiver;
use super::Browser;

const FORM: &str = "form[data-test=new-webhook]";
const ROW: &str = "[data-test=webhook-row][data-name=floods]";

/// The JSON the page's script `script` returns.
async fn script(b: &Browser, script: &str) -> Result<Value> {
    Ok(b.client.execute(script, vec![]).await?)
}

/// Sets the form's select `name` to `value`, as a person choosing it.
async fn choose(b: &Browser, name: &str, value: &str) -> Result<()> {
    script(
        b,
        &format!(
            "const s = document.querySelector('{FORM} select[name={name}]');\
             s.value = '{value}'; s.dispatchEvent(new Event('change')); return true"
        ),
    )
    .await?;
    Ok(())
}

/// The error shown next to the form's field `name`.
async fn field_error(b: &Browser, name: &str) -> Result<String> {
    let v = script(
        b,
        &format!(
            "const i = document.querySelector('{FORM} [name={name}]');\
             return (i.getAttribute('aria-invalid') === 'true' ? 'invalid: ' : '')\
               + document.getElementById(i.id + '-error').textContent"
        ),
    )
    .await?;
    Ok(v.as_str().unwrap_or_default().to_string())
}

/// Clicks the log's Refresh until a delivery row matching `css` shows.
async fn refresh_until(b: &Browser, css: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        if script(b, &format!("return !!document.querySelector('{css}')")).await? == json!(true) {
            return Ok(());
        }
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the delivery log never showed {css}"
        );
        b.click("[data-test=deliveries-refresh]").await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The subscriptions the API lists.
async fn listed(api: &Api) -> Result<Vec<Value>> {
    let v = api.get("/api/v1/webhooks", &[]).await?;
    Ok(v["items"].as_array().context("items")?.clone())
}

/// The page's navigation links.
async fn nav_links(b: &Browser) -> Result<Value> {
    script(
        b,
        "return [...document.querySelectorAll('#nav a')].map(a => a.getAttribute('href'))",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_subscribes_through_the_page_and_a_matching_report_reaches_a_real_receiver() {
    let receiver = Receiver::start().await.unwrap();
    let bins = Binaries::beside_current_exe().unwrap();
    let plan = Plan {
        hub: true,
        nodes: vec!["ada".into()],
        rate_limit_per_s: 200,
        // One attempt: a refused delivery is a dead letter at once.
        hub_env: vec![("SENTINEL_WEBHOOK_MAX_ATTEMPTS".into(), "1".into())],
        ..Plan::default()
    };
    let d = Deployment::start(&bins, &plan).await.unwrap();
    let url = d.hub_url().unwrap();
    let origin = url.trim_end_matches('/').to_string();
    let hub = d.hub.as_ref().unwrap();
    let admin = hub.accounts.iter().find(|a| a.role == "admin").unwrap();
    let b = Browser::start("webhooks").await.unwrap();
    b.check(async {
        let api = Api::sign_in(hub.http, &admin.name, &admin.password).await?;
        b.sign_in(&url, &admin.name, &admin.password).await?;
        let links = nav_links(&b).await?;
        ensure!(
            links
                .as_array()
                .context("links")?
                .contains(&json!("#/webhooks")),
            "the admin is not offered the webhooks page: {links}"
        );
        b.open(&format!("{origin}/#/webhooks")).await?;
        b.find(FORM).await?;
        b.wait_text("[data-test=webhooks-none]", "No subscription")
            .await?;
        b.assert_accessible("the webhooks page").await?;

        // Not http or https: the hub's refusal next to the URL, nothing
        // stored.
        b.fill(&format!("{FORM} input[name=name]"), "floods")
            .await?;
        b.fill(&format!("{FORM} input[name=url]"), "ftp://127.0.0.1/hook")
            .await?;
        b.click(&format!("{FORM} button[type=submit]")).await?;
        b.wait_script(&format!(
            "const i = document.querySelector('{FORM} input[name=url]');\
             return i.getAttribute('aria-invalid') === 'true'\
               && document.getElementById(i.id + '-error').textContent.includes('ftp')"
        ))
        .await
        .context("the URL's error is next to the URL field")?;
        // The keyboard's focus moved to the refused field.
        b.wait_script("return document.activeElement.getAttribute('name') === 'url'")
            .await?;
        let url_error = field_error(&b, "url").await?;
        ensure!(url_error.contains("http"), "{url_error}");
        let name_error = field_error(&b, "name").await?;
        ensure!(name_error.is_empty(), "the name has no error: {name_error}");
        ensure!(
            listed(&api).await?.is_empty(),
            "nothing is stored for a refused URL"
        );
        ensure!(
            script(
                &b,
                "return document.querySelectorAll('[data-test=webhook-row]').length"
            )
            .await?
                == json!(0)
                && script(
                    &b,
                    "return document.querySelector('[data-test=webhook-secret]').hidden"
                )
                .await?
                    == json!(true),
            "the page shows no subscription and no secret"
        );

        // Properly: floods of severity 3 or more, to the receiver.
        b.fill(&format!("{FORM} input[name=url]"), &receiver.url())
            .await?;
        // Three corners are not an area: refused at the area field.
        b.fill(&format!("{FORM} input[name=area]"), "13, 52, 14")
            .await?;
        b.click(&format!("{FORM} button[type=submit]")).await?;
        b.wait_script(&format!(
            "const i = document.querySelector('{FORM} input[name=area]');\
             return i.getAttribute('aria-invalid') === 'true'\
               && document.getElementById(i.id + '-error').textContent.includes('min_lon')"
        ))
        .await
        .context("the area's error is next to the area field")?;
        ensure!(
            field_error(&b, "url").await?.is_empty(),
            "the URL is not blamed"
        );
        ensure!(
            listed(&api).await?.is_empty(),
            "nothing is stored for a refused area"
        );
        b.fill(&format!("{FORM} input[name=area]"), "").await?;
        choose(&b, "min_severity", "3").await?;
        // Enter in a field sends the form, as the keyboard would.
        b.fill(
            &format!("{FORM} input[name=categories]"),
            &format!("flood{}", Key::Enter),
        )
        .await?;
        b.find("[data-test=webhook-secret]:not([hidden]) [data-test=secret-value]")
            .await?;
        let secret = script(
            &b,
            "return document.querySelector('[data-test=secret-value]').value",
        )
        .await?;
        let secret = secret.as_str().unwrap_or_default().to_string();
        ensure!(
            secret.len() == 64 && secret.bytes().all(|c| c.is_ascii_hexdigit()),
            "the hub's secret, 64 hex digits: {secret:?}"
        );
        b.wait_text("[data-test=webhook-secret]", "will not be shown again")
            .await?;
        b.wait_script("return document.activeElement.dataset.test === 'secret-value'")
            .await
            .context("the secret has the keyboard's focus")?;
        ensure!(
            field_error(&b, "url").await?.is_empty(),
            "the URL's error is gone"
        );
        b.assert_accessible("the secret, shown once").await?;
        let hooks = listed(&api).await?;
        ensure!(hooks.len() == 1, "one subscription: {hooks:?}");
        let hook = &hooks[0];
        ensure!(
            hook["name"] == "floods"
                && hook["url"] == receiver.url().as_str()
                && hook["categories"] == json!(["flood"])
                && hook["min_severity"] == 3
                && hook["enabled"] == true,
            "stored as asked: {hook}"
        );
        let id = hook["id"].as_str().context("an id")?.to_string();
        b.wait_text(&format!("{ROW} [data-test=rule]"), "flood")
            .await?;
        b.wait_text(&format!("{ROW} [data-test=rule]"), "severity 3 or more")
            .await?;
        b.wait_text(&format!("{ROW} [data-test=state]"), "active")
            .await?;
        b.wait_text(&format!("{ROW} [data-test=last-delivery]"), "none yet")
            .await?;
        // Once: gone when dismissed, and never shown or answered again.
        b.click("[data-test=secret-done]").await?;
        b.wait_script("return !document.querySelector('[data-test=secret-value]')")
            .await?;
        b.open(&format!("{origin}/#/webhooks")).await?;
        b.find(ROW).await?;
        let html = script(&b, "return document.documentElement.outerHTML").await?;
        ensure!(
            !html.as_str().unwrap_or_default().contains(&secret),
            "the page shows the secret again"
        );
        let again = api.get(&format!("/api/v1/webhooks/{id}"), &[]).await?;
        ensure!(
            !again.to_string().contains(&secret),
            "the API answers the secret again: {again}"
        );

        // Ada reports a fire (no match) and a flood (a match); her node
        // syncs with the hub. The receiver is down: the one attempt fails.
        receiver.fail(true);
        let officer = &d.nodes[0].officer;
        let ada = Api::sign_in(d.nodes[0].http, &officer.name, &officer.password).await?;
        let fire = ada
            .report(
                "Smoke over the depot",
                "fire",
                5,
                13.40,
                52.52,
                "Black smoke from the roof.",
            )
            .await?;
        let flood = ada
            .report(
                "Bridge flooded at the mill",
                "flood",
                4,
                13.405,
                52.52,
                "Water over the road.",
            )
            .await?;
        ada.sync_now().await?;
        receiver.wait_for(1).await?;
        b.click(&format!("{ROW} [data-test=show-deliveries]"))
            .await?;
        b.find("[data-test=deliveries]:not([hidden])").await?;
        let dead = "[data-test=delivery-row][data-state=dead]";
        refresh_until(&b, dead).await?;
        b.wait_text(&format!("{dead} [data-test=answer]"), "HTTP 500")
            .await?;
        b.wait_text(&format!("{dead} [data-test=answer]"), "receiver down")
            .await?;
        b.wait_text(&format!("{ROW} [data-test=last-delivery]"), "dead letter")
            .await?;
        b.assert_accessible("a dead letter in the delivery log")
            .await?;

        // The receiver is back: Replay sends it again, and the log says
        // delivered. The fire matched nothing: one delivery only.
        receiver.fail(false);
        b.click(&format!("{dead} [data-test=replay]")).await?;
        let delivered = "[data-test=delivery-row][data-state=delivered]";
        refresh_until(&b, delivered).await?;
        b.wait_text(&format!("{delivered} [data-test=attempts]"), "1")
            .await?;
        b.wait_text(&format!("{ROW} [data-test=last-delivery]"), "delivered")
            .await?;
        let rows = script(
            &b,
            "return document.querySelectorAll('[data-test=delivery-row]').length",
        )
        .await?;
        ensure!(rows == json!(1), "one delivery, for the flood: {rows} rows");
        let log = api
            .get(&format!("/api/v1/webhooks/{id}/deliveries"), &[])
            .await?;
        let delivery = log["items"][0]["id"]
            .as_str()
            .context("a delivery")?
            .to_string();
        ensure!(log["items"][0]["state"] == "delivered", "{log}");

        // What the receiver got: both attempts, one idempotency key, each
        // signed with the secret the page showed.
        let got = receiver.wait_for(2).await?;
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        for r in &got {
            ensure!(r.path.starts_with("POST /hooks/sentinel "), "{r:?}");
            ensure!(r.content_type == "application/json", "{r:?}");
            ensure!(r.id == delivery, "one key for every attempt: {r:?}");
            let ts: u64 = r.timestamp.parse().context("a timestamp")?;
            ensure!(ts.abs_diff(now_s) < 300, "a fresh timestamp: {ts}");
            ensure!(
                sentinel_hub::webhooks::verify(secret.as_bytes(), ts, &r.body, &r.signature),
                "the signature verifies with the secret shown: {r:?}"
            );
            ensure!(
                !sentinel_hub::webhooks::verify(
                    b"another secret, as long as one",
                    ts,
                    &r.body,
                    &r.signature
                ),
                "the signature does not verify with another secret"
            );
            let body: Value = serde_json::from_slice(&r.body)?;
            ensure!(
                body["type"] == "event.created"
                    && body["event"]["id"] == flood.as_str()
                    && body["event"]["category"] == "flood"
                    && body["subscription"] == id.as_str()
                    && body["delivery"] == delivery.as_str(),
                "the flood's delivery: {body}"
            );
            ensure!(!body.to_string().contains(&fire), "the fire is not sent");
        }

        // Pause and resume; change the rule; delete after a confirmation.
        b.click(&format!("{ROW} [data-test=pause]")).await?;
        b.wait_text(&format!("{ROW} [data-test=state]"), "paused")
            .await?;
        ensure!(
            listed(&api).await?[0]["enabled"] == false,
            "paused in the hub"
        );
        b.click(&format!("{ROW} [data-test=resume]")).await?;
        b.wait_text(&format!("{ROW} [data-test=state]"), "active")
            .await?;
        ensure!(listed(&api).await?[0]["enabled"] == true, "active again");
        b.click(&format!("{ROW} [data-test=edit]")).await?;
        b.wait_script(&format!(
            "return document.querySelector('{FORM} input[name=categories]').value === 'flood'"
        ))
        .await?;
        choose(&b, "min_severity", "5").await?;
        b.click(&format!("{FORM} button[type=submit]")).await?;
        b.wait_text(&format!("{ROW} [data-test=rule]"), "severity 5 or more")
            .await?;
        let changed = listed(&api).await?;
        ensure!(
            changed[0]["min_severity"] == 5 && changed[0]["categories"] == json!(["flood"]),
            "changed as asked: {changed:?}"
        );
        b.click(&format!("{ROW} [data-test=delete]")).await?;
        b.find("dialog[data-test=delete-dialog][open]").await?;
        b.assert_accessible("the delete confirmation").await?;
        // Escape cancels, as on any dialog.
        b.client
            .active_element()
            .await?
            .send_keys(&Key::Escape.to_string())
            .await?;
        b.wait_script("return !document.querySelector('dialog[data-test=delete-dialog]')")
            .await?;
        ensure!(listed(&api).await?.len() == 1, "cancelling deletes nothing");
        b.click(&format!("{ROW} [data-test=delete]")).await?;
        b.click("dialog[data-test=delete-dialog] [data-test=confirm]")
            .await?;
        b.wait_script(&format!("return !document.querySelector('{ROW}')"))
            .await?;
        ensure!(listed(&api).await?.is_empty(), "deleted in the hub");
        b.assert_same_origin(&origin).await?;

        // Nobody else is offered the page, and a direct visit shows no
        // data: an officer and the public on the hub, an officer on a node.
        let node_url = d.node_url(0).context("a node")?;
        let viewer = hub
            .accounts
            .iter()
            .find(|a| a.role == "public")
            .context("a viewer")?;
        let hub_officer = hub
            .accounts
            .iter()
            .find(|a| a.role == "officer")
            .context("an officer")?;
        for (at, who, password) in [
            (&url, &hub_officer.name, &hub_officer.password),
            (&url, &viewer.name, &viewer.password),
            (&node_url, &officer.name, &officer.password),
        ] {
            script(&b, "sessionStorage.clear(); return true").await?;
            b.sign_in(at, who, password).await?;
            let links = nav_links(&b).await?;
            ensure!(
                !links
                    .as_array()
                    .context("links")?
                    .contains(&json!("#/webhooks")),
                "{who} at {at} is offered the webhooks page: {links}"
            );
            b.open(&format!("{}/#/webhooks", at.trim_end_matches('/')))
                .await?;
            b.find("main [data-test=not-allowed]").await?;
            ensure!(
                script(
                    &b,
                    "return document.querySelectorAll('main form, main table').length"
                )
                .await?
                    == json!(0),
                "{who} at {at} sees the webhooks page's data"
            );
        }
        Ok(())
    })
    .await
    .unwrap();
}
