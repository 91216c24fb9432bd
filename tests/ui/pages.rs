//! Every page of both servers opens, stays on its own origin and passes
//! the accessibility check, for each role that may see it.

use anyhow::{ensure, Result};
use sentinel::deploy::{Binaries, Deployment, Plan};

use super::Browser;

/// Opens every page the navigation offers the signed-in person and
/// checks each.
async fn every_page(b: &Browser, origin: &str, who: &str) -> Result<usize> {
    let links: Vec<String> = serde_json::from_value(
        b.client
            .execute(
                "return [...document.querySelectorAll('#nav a')].map(a => a.getAttribute('href'))",
                vec![],
            )
            .await?,
    )?;
    ensure!(!links.is_empty(), "{who} sees no navigation");
    for link in &links {
        b.open(&format!("{origin}{link}")).await?;
        b.find("main h1").await?;
        b.wait_script("return !document.querySelector('main > .form-error')")
            .await?;
        b.assert_accessible(&format!("{link} as {who}")).await?;
        b.assert_same_origin(origin).await?;
    }
    Ok(links.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_never_met_a_hub_serves_its_officer_pages() {
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
    let b = Browser::start("node_pages").await.unwrap();
    b.check(async {
        b.open(&url).await?;
        b.find("form input[name=name]").await?;
        b.assert_accessible("the sign-in page").await?;
        // A wrong password: the refusal is shown on the form.
        b.fill("input[name=name]", "ada").await?;
        b.fill("input[name=password]", "not the password at all")
            .await?;
        b.click("form button[type=submit]").await?;
        b.wait_text("form .form-error", "refused").await?;
        let officer = &d.nodes[0].officer;
        b.sign_in(&url, &officer.name, &officer.password).await?;
        let n = every_page(&b, &origin, "the device's officer").await?;
        ensure!(n >= 3, "only {n} pages for the officer");
        b.assert_same_origin(&origin).await
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_serves_its_pages_to_each_role() {
    let bins = Binaries::beside_current_exe().unwrap();
    let plan = Plan {
        hub: true,
        nodes: vec![],
        rate_limit_per_s: 200,
        ..Plan::default()
    };
    let d = Deployment::start(&bins, &plan).await.unwrap();
    let url = d.hub_url().unwrap();
    let origin = url.trim_end_matches('/').to_string();
    let hub = d.hub.as_ref().unwrap();
    let b = Browser::start("hub_pages").await.unwrap();
    b.check(async {
        for account in &hub.accounts {
            b.sign_in(&url, &account.name, &account.password).await?;
            let n = every_page(&b, &origin, &account.name).await?;
            if account.role == "admin" {
                ensure!(n >= 5, "only {n} pages for the admin");
            }
            b.click("#who button").await?;
            b.find("form input[name=name]").await?;
        }
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sensors_page_charts_a_gauges_readings_and_the_rule_it_crossed() {
    let bins = Binaries::beside_current_exe().unwrap();
    let plan = Plan {
        hub: true,
        nodes: vec![],
        rate_limit_per_s: 200,
        hub_rules: Some(sentinel::deploy::seed::RULES.to_string()),
        ..Plan::default()
    };
    let d = Deployment::start(&bins, &plan).await.unwrap();
    let hub = d.hub.as_ref().unwrap();
    // A river gauge enrolled by the deployment's CA pushes six hours of
    // signed readings; the river rises past the rule's 3.5 m.
    let pushed = sentinel::deploy::seed::push_gauge(&d, hub.http)
        .await
        .unwrap();
    assert!(pushed > 10);
    let url = d.hub_url().unwrap();
    let origin = url.trim_end_matches('/').to_string();
    let admin = hub.accounts.iter().find(|a| a.role == "admin").unwrap();
    let b = Browser::start("sensors_page").await.unwrap();
    b.check(async {
        b.sign_in(&url, &admin.name, &admin.password).await?;
        b.open(&format!("{url}#/sensors")).await?;
        b.find("[data-test=sensor-row]").await?;
        // The chart is drawn (uPlot's canvas), with the gauge's series.
        b.find("[data-test=sensor-chart] canvas").await?;
        b.wait_text("[data-test=sensor-chart]", "level").await?;
        // The rule that fired, with the event it raised.
        b.wait_text("[data-test=rule-row]", "river-high").await?;
        b.assert_accessible("the sensors page with a chart").await?;
        b.assert_same_origin(&origin).await
    })
    .await
    .unwrap();
}
