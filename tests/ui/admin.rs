//! The admin's pages on the hub, driven in Chromium against the real
//! binaries: the cross-device flow (an officer's report reaches the
//! admin's timeline with its provenance, the admin assigns it, the
//! officer resolves it on her node, the admin sees that live), what the
//! public role sees (no names, no precise places, no admin page), and
//! managing accounts.

use anyhow::{ensure, Context, Result};
use sentinel::deploy::{Binaries, Deployment, Plan};
use serde_json::{json, Value};

use super::Browser;

/// Where a precise report is made: the public sees it on the 0.01° grid.
const LON: f64 = 13.40537;
const LAT: f64 = 52.52011;
const TITLE: &str = "Bridge flooded at the mill";

/// A client of a server's API, signed in as one person.
pub(super) struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    pub(super) async fn sign_in(url: &str, name: &str, password: &str) -> Result<Client> {
        let http = reqwest::Client::new();
        let base = origin(url);
        let r = http
            .post(format!("{base}/api/v1/login"))
            .json(&json!({ "name": name, "password": password }))
            .send()
            .await?;
        ensure!(
            r.status().is_success(),
            "{name} cannot sign in at {base}: {}",
            r.status()
        );
        let v: Value = r.json().await?;
        let token = v["token"].as_str().context("a token")?.to_string();
        Ok(Client { base, token, http })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await?;
        let status = r.status();
        let text = r.text().await?;
        ensure!(status.is_success(), "{method} {path}: {status} {text}");
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(super) async fn get(&self, path: &str) -> Result<Value> {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// The node syncs with its peers now (the node's own API, "sync now")
    /// and this waits until that round has ended.
    pub(super) async fn sync_now(&self) -> Result<()> {
        let started = std::time::Instant::now();
        // A round already running (409) is waited out, then one started.
        while let Err(e) = self.post("/api/v1/sync", json!({})).await {
            ensure!(started.elapsed() < super::STEP, "sync now refused: {e:#}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        self.wait_for("/api/v1/sync", |s| s["running"] == json!(false))
            .await?;
        Ok(())
    }

    /// Waits until `GET path` answers and `ok` holds of it.
    pub(super) async fn wait_for(&self, path: &str, ok: impl Fn(&Value) -> bool) -> Result<Value> {
        let started = std::time::Instant::now();
        loop {
            if let Ok(v) = self.get(path).await {
                if ok(&v) {
                    return Ok(v);
                }
            }
            ensure!(
                started.elapsed() < super::STEP,
                "waited for {path} at {}",
                self.base
            );
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
}

/// Officer `ada` reports an event on her node (as a client of its API)
/// and the node syncs it to the hub; its id once the hub holds it.
pub(super) async fn report_and_sync(d: &Deployment, admin: &Client) -> Result<(Client, String)> {
    let officer = &d.nodes[0].officer;
    let ada = Client::sign_in(
        &d.node_url(0).context("a node")?,
        &officer.name,
        &officer.password,
    )
    .await?;
    let ack = ada
        .post(
            "/api/v1/events",
            json!({
                "title": TITLE,
                "description": "Water over the road by the old mill; cars turning back.",
                "category": "flood",
                "severity": 4,
                "location": { "lon": LON, "lat": LAT },
            }),
        )
        .await?;
    let id = ack["event"].as_str().context("the event's id")?.to_string();
    ada.sync_now().await?;
    admin
        .wait_for(&format!("/api/v1/events/{id}"), |_| true)
        .await?;
    Ok((ada, id))
}

/// Clicks the work step `button` on ada's page until her node says the
/// event is `status` (the list re-renders as the feed and its poller tell
/// it things, so a button found may be gone when clicked).
async fn step(b: &Browser, ada: &Client, id: &str, button: &str, status: &str) -> Result<()> {
    let started = std::time::Instant::now();
    loop {
        let now = ada.get(&format!("/api/v1/events/{id}")).await?;
        if now["status"] == status {
            return Ok(());
        }
        ensure!(
            started.elapsed() < super::STEP,
            "{button} did not make the event {status}: {now}"
        );
        if let Ok(e) = b.find(button).await {
            let _ = e.click().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// Fails when the page's text names `name` as a word.
async fn names_nobody(b: &Browser, name: &str, what: &str) -> Result<()> {
    let v = script(
        b,
        &format!(
            "return new RegExp('\\\\b{name}\\\\b').test(document.querySelector('main').innerText)"
        ),
    )
    .await?;
    ensure!(v == json!(false), "{what} names {name:?}");
    Ok(())
}

/// Fails when the page holds the report's precise coordinates anywhere
/// (text or attributes).
async fn shows_no_precise_place(b: &Browser, what: &str) -> Result<()> {
    let v = script(
        b,
        "const html = document.documentElement.outerHTML;\
         return ['13.405', '13.4053', '52.5201'].filter(s => html.includes(s))",
    )
    .await?;
    ensure!(v == json!([]), "{what} shows a precise location: {v}");
    Ok(())
}

/// The origin (`http://ADDR`) of a page URL (`http://ADDR/`).
pub(super) fn origin(url: &str) -> String {
    url.trim_end_matches('/').to_string()
}

/// The JSON the page's script `script` returns.
async fn script(b: &Browser, script: &str) -> Result<Value> {
    Ok(b.client.execute(script, vec![]).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_makes_an_account_and_a_too_short_password_is_refused_at_its_field() {
    let bins = Binaries::beside_current_exe().unwrap();
    let plan = Plan {
        hub: true,
        nodes: vec![],
        rate_limit_per_s: 200,
        ..Plan::default()
    };
    let d = Deployment::start(&bins, &plan).await.unwrap();
    let url = d.hub_url().unwrap();
    let origin = origin(&url);
    let admin = d.hub.as_ref().unwrap().accounts[0].clone();
    let b = Browser::start("admin_users").await.unwrap();
    b.check(async {
        b.sign_in(&url, &admin.name, &admin.password).await?;
        // The admin's home on a hub is the timeline.
        b.wait_script("return location.hash.startsWith('#/timeline')")
            .await?;
        b.find("[data-test=timeline-rows]").await?;
        b.assert_accessible("the timeline").await?;
        b.open(&format!("{origin}/#/users")).await?;
        b.find("form[data-test=new-user]").await?;
        b.wait_text("[data-test=user-row]", "viewer").await?;
        let before = script(
            &b,
            "return document.querySelectorAll('[data-test=user-row]').length",
        )
        .await?;
        b.assert_accessible("the users page").await?;

        // Too short: the server's problem shows next to the password.
        b.fill("form[data-test=new-user] input[name=name]", "carla")
            .await?;
        b.fill("form[data-test=new-user] input[name=password]", "short")
            .await?;
        b.click("form[data-test=new-user] button[type=submit]")
            .await?;
        b.wait_script(
            "const p = document.querySelector('form[data-test=new-user] input[name=password]');\
             const e = document.getElementById(p.id + '-error');\
             return p.getAttribute('aria-invalid') === 'true' && e.textContent.length > 0",
        )
        .await
        .context("the password's error is next to the password field")?;
        let name_error = script(
            &b,
            "const n = document.querySelector('form[data-test=new-user] input[name=name]');\
             return document.getElementById(n.id + '-error').textContent",
        )
        .await?;
        ensure!(
            name_error == json!(""),
            "the name field has no error: {name_error}"
        );
        // No account was made: the API says so, and so does the list.
        let token = script(&b, "return sessionStorage.getItem('sentinel.token')").await?;
        let listed: Value = reqwest::Client::new()
            .get(format!("{origin}/api/v1/users"))
            .bearer_auth(token.as_str().unwrap_or_default())
            .send()
            .await?
            .json()
            .await?;
        ensure!(
            !listed["items"]
                .as_array()
                .context("items")?
                .iter()
                .any(|a| a["name"] == "carla"),
            "no account made for a refused password: {listed}"
        );
        let after = script(
            &b,
            "return document.querySelectorAll('[data-test=user-row]').length",
        )
        .await?;
        ensure!(before == after, "the list is unchanged");

        // Properly: listed as an officer, active.
        b.fill(
            "form[data-test=new-user] input[name=password]",
            "carla-long-enough-1",
        )
        .await?;
        b.click("form[data-test=new-user] button[type=submit]")
            .await?;
        b.wait_text("[data-test=user-row][data-name=carla]", "officer")
            .await?;
        b.wait_text(
            "[data-test=user-row][data-name=carla] [data-test=state]",
            "active",
        )
        .await?;

        // Disabling asks first; cancelling changes nothing, confirming does.
        b.click("[data-test=user-row][data-name=carla] [data-test=disable]")
            .await?;
        b.find("dialog[data-test=disable-dialog][open]").await?;
        b.assert_accessible("the disable confirmation").await?;
        b.click("dialog[data-test=disable-dialog] [data-test=cancel]")
            .await?;
        b.wait_script("return !document.querySelector('dialog[data-test=disable-dialog]')")
            .await?;
        b.wait_text(
            "[data-test=user-row][data-name=carla] [data-test=state]",
            "active",
        )
        .await?;
        b.click("[data-test=user-row][data-name=carla] [data-test=disable]")
            .await?;
        b.click("dialog[data-test=disable-dialog] [data-test=confirm]")
            .await?;
        b.wait_text(
            "[data-test=user-row][data-name=carla] [data-test=state]",
            "disabled",
        )
        .await?;

        // The fleet page: no device has synced; alerts are shown or said
        // to be unavailable, never a broken page.
        b.open(&format!("{origin}/#/fleet")).await?;
        b.find("[data-test=fleet-rows]").await?;
        b.wait_script(
            "return !document.querySelector('[data-test=alerts]').textContent.includes('…')",
        )
        .await?;
        b.assert_accessible("the fleet page").await?;
        b.open(&format!("{origin}/#/sensors")).await?;
        b.find("[data-test=rules]").await?;
        b.assert_accessible("the sensors page").await?;
        b.assert_same_origin(&origin).await
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_sees_events_without_names_or_precise_places_and_no_admin_page() {
    let bins = Binaries::beside_current_exe().unwrap();
    let plan = Plan {
        hub: true,
        nodes: vec!["ada".into()],
        rate_limit_per_s: 200,
        ..Plan::default()
    };
    let d = Deployment::start(&bins, &plan).await.unwrap();
    let url = d.hub_url().unwrap();
    let origin = origin(&url);
    let hub = d.hub.as_ref().unwrap();
    let admin = hub.accounts.iter().find(|a| a.role == "admin").unwrap();
    let viewer = hub.accounts.iter().find(|a| a.role == "public").unwrap();
    let b = Browser::start("admin_public").await.unwrap();
    b.check(async {
        let admin = Client::sign_in(&url, &admin.name, &admin.password).await?;
        let (_ada, id) = report_and_sync(&d, &admin).await?;
        // Assigned, so that the event has an assignee to hide too.
        admin
            .post(
                &format!("/api/v1/events/{id}/assign"),
                json!({ "assignee": "ada" }),
            )
            .await?;

        b.sign_in(&url, &viewer.name, &viewer.password).await?;
        // The navigation offers no admin page.
        let offered = script(
            &b,
            "return [...document.querySelectorAll('#nav a')].map(a => a.getAttribute('href'))",
        )
        .await?;
        for page in [
            "#/timeline",
            "#/users",
            "#/fleet",
            "#/sensors",
            "#/webhooks",
        ] {
            ensure!(
                !offered.as_array().context("links")?.contains(&json!(page)),
                "the public is offered {page}: {offered}"
            );
        }
        // The events list (and its map): the event, without names or its
        // precise place.
        b.open(&format!("{origin}/#/events")).await?;
        b.wait_text("main", TITLE).await?;
        b.find("[data-test=events-map][data-ready=true]").await?;
        names_nobody(&b, "ada", "the events list").await?;
        shows_no_precise_place(&b, "the events list").await?;
        b.assert_accessible("the events list as the public").await?;
        // The event page likewise.
        b.open(&format!("{origin}/#/events/{id}")).await?;
        b.wait_text("main h1", TITLE).await?;
        names_nobody(&b, "ada", "the event page").await?;
        shows_no_precise_place(&b, "the event page").await?;
        b.assert_accessible("the event page as the public").await?;
        // A direct visit to an admin page: "not allowed", no data.
        for page in ["timeline", "users", "fleet", "sensors", "webhooks"] {
            b.open(&format!("{origin}/#/{page}")).await?;
            b.find("main [data-test=not-allowed]").await?;
            let rows = script(
                &b,
                "return document.querySelectorAll('main table tbody tr').length",
            )
            .await?;
            ensure!(rows == json!(0), "#/{page} shows data to the public");
            b.assert_accessible(&format!("#/{page} as the public"))
                .await?;
        }
        b.assert_same_origin(&origin).await
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officers_report_reaches_the_admin_who_assigns_it_and_sees_it_resolved_live() {
    let bins = Binaries::beside_current_exe().unwrap();
    let plan = Plan {
        hub: true,
        nodes: vec!["ada".into()],
        rate_limit_per_s: 200,
        ..Plan::default()
    };
    let d = Deployment::start(&bins, &plan).await.unwrap();
    let url = d.hub_url().unwrap();
    let hub_origin = origin(&url);
    let node_url = d.node_url(0).unwrap();
    let node_origin = origin(&node_url);
    let admin_account = d
        .hub
        .as_ref()
        .unwrap()
        .accounts
        .iter()
        .find(|a| a.role == "admin")
        .unwrap()
        .clone();
    let officer = d.nodes[0].officer.clone();
    let b = Browser::start("admin_flow").await.unwrap();
    b.check(async {
        let admin = Client::sign_in(&url, &admin_account.name, &admin_account.password).await?;
        // Ada reports on her node; the node syncs with the hub.
        let (ada, id) = report_and_sync(&d, &admin).await?;

        // The admin's timeline: the report with its provenance.
        b.sign_in(&url, &admin_account.name, &admin_account.password).await?;
        b.wait_script("return location.hash.startsWith('#/timeline')").await?;
        let row = format!("[data-test=timeline-row][data-event='{id}'][data-kind=event_change]");
        b.find(&row).await?;
        b.wait_text(&format!("{row} [data-test=device]"), "node-ada").await?;
        b.wait_text(&format!("{row} [data-test=actor]"), "ada").await?;
        b.wait_text(&row, "verified").await?;
        b.wait_text(&row, TITLE).await?;
        b.assert_accessible("the timeline").await?;
        // Filtered by the event: only its entries.
        b.fill("[data-test=timeline-filters] input[name=event]", &id).await?;
        b.click("[data-test=timeline-filters] button[type=submit]").await?;
        b.wait_script(&format!(
            "const r = [...document.querySelectorAll('[data-test=timeline-row]')];\
             return location.hash.includes('event={id}') && r.length > 0 && r.every(e => e.dataset.event === '{id}')"
        ))
        .await?;

        // On the map (the events page): the event is listed and drawn.
        b.open(&format!("{hub_origin}/#/events")).await?;
        b.wait_text("main", TITLE).await?;
        b.find("[data-test=events-map][data-ready=true]").await?;
        b.wait_script(&format!(
            "return !!document.querySelector('[data-test=map-event][data-id=\"{id}\"], [data-test=map-cluster]')"
        ))
        .await
        .context("the map draws the event")?;
        b.assert_accessible("the events page with its map").await?;

        // The admin assigns it to ada from the event page.
        b.open(&format!("{hub_origin}/#/events/{id}")).await?;
        b.find("select[data-test=assignee] option[value=ada]").await?;
        b.client
            .execute(
                "const s = document.querySelector('select[data-test=assignee]');\
                 s.value = 'ada'; s.dispatchEvent(new Event('change'));",
                vec![],
            )
            .await?;
        b.click("button[data-test=assign]").await?;
        b.wait_text("[data-test=assignee-now]", "ada").await?;
        b.assert_accessible("the event page").await?;

        // The admin keeps the timeline open, following the feed.
        b.open(&format!("{hub_origin}/#/timeline")).await?;
        b.find(&row).await?;
        b.wait_text("[data-test=live-state]", "Live").await?;
        b.wait_script("return document.querySelector('[data-test=live-state]').classList.contains('on')").await?;
        b.client.execute("window.sameDocument = true", vec![]).await?;
        let hub_window = b.client.window().await?;

        // The assignment reaches the node; ada resolves it there.
        ada.sync_now().await?;
        ada.wait_for(&format!("/api/v1/events/{id}"), |e| e["assignee"] == "ada").await?;
        let node_window = b.client.new_window(false).await?;
        b.client.switch_to_window(node_window.handle).await?;
        b.sign_in(&node_url, &officer.name, &officer.password).await?;
        b.open(&format!("{node_origin}/#/work")).await?;
        let item = format!("[data-test=my-work] [data-test=work-item][data-event='{id}']");
        b.find(&item).await?;
        b.assert_accessible("ada's work on her node").await?;
        step(&b, &ada, &id, &format!("{item} button[data-test=start]"), "in_progress").await?;
        step(&b, &ada, &id, &format!("{item} button[data-test=resolve]"), "resolved").await?;
        b.assert_same_origin(&node_origin).await?;
        ada.sync_now().await?;

        // The admin's open timeline shows it resolved, without a reload:
        // the resolving entry on top, marked new.
        b.client.switch_to_window(hub_window).await?;
        b.wait_text(&format!("tr.live-new[data-event='{id}']"), "resolved").await?;
        b.wait_script("return window.sameDocument === true").await.context("no reload")?;
        let actor = b.text(&format!("tr.live-new[data-event='{id}'] [data-test=actor]")).await?;
        ensure!(actor == "ada", "the resolving entry's acting person: {actor:?}");
        b.assert_accessible("the timeline with live rows").await?;
        // And the event page says so.
        b.open(&format!("{hub_origin}/#/events/{id}")).await?;
        b.wait_text("[data-test=status]", "resolved").await?;
        b.assert_same_origin(&hub_origin).await
    })
    .await
    .unwrap();
}
