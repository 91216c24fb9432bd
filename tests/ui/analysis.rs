//! The Analysis page, driven in Chromium against a real node: two
//! reports of one flood are offered as a pair, Merge puts a note on the
//! later one naming the one kept (through the node's notes route), and
//! the summary, with no language model configured, is the local one and
//! says so.

use anyhow::{ensure, Context};
use sentinel::deploy::client::Api;
use sentinel::deploy::{Binaries, Deployment, Plan};

use super::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analysis_page_offers_duplicates_for_merging_and_a_local_summary() {
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
    let b = Browser::start("analysis").await.unwrap();
    b.check(async {
        let ada = Api::sign_in(d.nodes[0].http, &officer.name, &officer.password).await?;
        let first = ada
            .report(
                "Flooded underpass at the mill",
                "flood",
                4,
                13.40537,
                52.52011,
                "Water over the road.",
            )
            .await?;
        let second = ada
            .report(
                "Underpass flooded by the mill",
                "flood",
                4,
                13.40561,
                52.52020,
                "Water over the road!",
            )
            .await?;
        b.sign_in(&url, &officer.name, &officer.password).await?;
        b.open(&format!("{origin}/#/analysis")).await?;
        b.wait_script("return document.querySelectorAll('[data-test=pair]').length === 1")
            .await?;
        let row = b.find("[data-test=pair]").await?;
        let keep = row.attr("data-keep").await?.context("data-keep")?;
        let duplicate = row
            .attr("data-duplicate")
            .await?
            .context("data-duplicate")?;
        ensure!(keep == first && duplicate == second, "{keep} {duplicate}");
        b.assert_accessible("the analysis page").await?;

        b.click("[data-test=merge]").await?;
        b.wait_script("return document.querySelector('[data-test=merge]').disabled === true")
            .await?;
        let mut noted = false;
        for _ in 0..50 {
            let event = ada.get(&format!("/api/v1/events/{second}"), &[]).await?;
            let notes = event["notes"].as_array().cloned().unwrap_or_default();
            if notes
                .iter()
                .any(|n| n["text"].as_str().is_some_and(|t| t.contains(&first)))
            {
                noted = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        ensure!(noted, "the duplicate has a note naming the one kept");

        b.click("[data-test=summarise]").await?;
        b.wait_script("return !!document.querySelector('[data-test=summary-text]')")
            .await?;
        let source = b.text("[data-test=summary-source]").await?;
        ensure!(
            source.contains("no language model is configured"),
            "{source}"
        );
        let text = b.text("[data-test=summary-text]").await?;
        ensure!(text.starts_with("2 events reported"), "{text}");
        b.assert_same_origin(&origin).await
    })
    .await
    .unwrap();
}
