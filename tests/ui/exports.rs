//! The events page's export buttons, driven in Chromium against a real
//! node: each downloads a real file (saved by the browser in its
//! downloads folder) holding the events the page's filters find.

use std::collections::BTreeSet;

use anyhow::{ensure, Context, Result};
use sentinel::deploy::client::Api;
use sentinel::deploy::{Binaries, Deployment, Plan};
use serde_json::Value;

use super::Browser;

const FLOOD: &str = "Bridge flooded at the mill";
const FIRE: &str = "Smoke over the depot";

/// Clicks the export button of `format` and answers the file the browser
/// saved.
async fn export(b: &Browser, format: &str) -> Result<String> {
    b.click(&format!("[data-test=events-export-{format}]"))
        .await?;
    let bytes = b.downloaded(&format!("events.{format}")).await?;
    String::from_utf8(bytes).context("an export is UTF-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_pages_export_buttons_download_files_with_the_events() {
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
    let officer = d.nodes[0].officer.clone();
    let b = Browser::start("exports").await.unwrap();
    b.check(async {
        let ada = Api::sign_in(d.nodes[0].http, &officer.name, &officer.password).await?;
        let flood = ada
            .report(
                FLOOD,
                "flood",
                4,
                13.40537,
                52.52011,
                "Water over the road.",
            )
            .await?;
        let fire = ada
            .report(FIRE, "fire", 2, 13.41, 52.53, "Black smoke from the roof.")
            .await?;
        b.sign_in(&url, &officer.name, &officer.password).await?;
        b.open(&format!("{origin}/#/events")).await?;
        b.wait_script("return document.querySelectorAll('[data-test=event-row]').length === 2")
            .await?;

        let geo: Value = serde_json::from_str(&export(&b, "geojson").await?)?;
        ensure!(geo["type"] == "FeatureCollection", "{geo}");
        let features = geo["features"].as_array().context("features")?;
        let ids: BTreeSet<&str> = features.iter().filter_map(|f| f["id"].as_str()).collect();
        ensure!(
            ids == BTreeSet::from([flood.as_str(), fire.as_str()]),
            "both events: {geo}"
        );
        let f = features
            .iter()
            .find(|f| f["id"] == flood.as_str())
            .context("the flood")?;
        ensure!(
            f["properties"]["title"] == FLOOD
                && f["geometry"]["coordinates"] == serde_json::json!([13.40537, 52.52011]),
            "the flood as reported: {f}"
        );

        let csv = export(&b, "csv").await?;
        let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
        ensure!(
            lines.len() == 3 && lines[0].starts_with("id,title,"),
            "{csv}"
        );
        for (id, title) in [(&flood, FLOOD), (&fire, FIRE)] {
            ensure!(
                lines
                    .iter()
                    .any(|l| l.starts_with(id.as_str()) && l.contains(title)),
                "{title} in {csv}"
            );
        }
        ensure!(
            csv.contains(",13.40537,52.52011,"),
            "the flood's place: {csv}"
        );

        let kml = export(&b, "kml").await?;
        ensure!(
            kml.starts_with("<?xml") && kml.matches("<Placemark>").count() == 2,
            "{kml}"
        );
        for (id, title) in [(&flood, FLOOD), (&fire, FIRE)] {
            ensure!(
                kml.contains(&format!("<name>{title}</name>")),
                "{title}: {kml}"
            );
            ensure!(kml.contains(id.as_str()), "{id}: {kml}");
        }

        // Filtered: the files hold what the filters find.
        b.fill("[data-test=filter-category]", "fire").await?;
        b.click("[data-test=filter-apply]").await?;
        b.wait_script("return document.querySelectorAll('[data-test=event-row]').length === 1")
            .await?;
        let csv = export(&b, "csv").await?;
        let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
        ensure!(
            lines.len() == 2 && lines[1].starts_with(fire.as_str()),
            "only the fire: {csv}"
        );
        b.assert_same_origin(&origin).await
    })
    .await
    .unwrap();
}
