//! Erasing personal data from the admin's event page on the hub, in
//! Chromium against the real binaries: a refusal shown next to its field
//! (no reason given, nothing signed), then the erasure, the page showing
//! `[redacted]` and the history naming it, and the officer's node showing
//! the same after it syncs.

use anyhow::{ensure, Context};
use sentinel::deploy::{Binaries, Deployment, Plan};

use super::admin::{origin, report_and_sync, Client};
use super::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_erases_a_description_and_the_officers_node_drops_it_too() {
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
    let admin_account = d
        .hub
        .as_ref()
        .unwrap()
        .accounts
        .iter()
        .find(|a| a.role == "admin")
        .unwrap()
        .clone();
    let b = Browser::start("redact").await.unwrap();
    b.check(async {
        let admin = Client::sign_in(&url, &admin_account.name, &admin_account.password).await?;
        let (ada, id) = report_and_sync(&d, &admin).await?;
        let before = admin.get(&format!("/api/v1/events/{id}")).await?;
        let n_history = before["history"].as_array().map_or(0, Vec::len);

        b.sign_in(&url, &admin_account.name, &admin_account.password)
            .await?;
        b.open(&format!("{hub_origin}/#/events/{id}")).await?;
        b.wait_text(".description", "old mill").await?;
        b.click("details.redact summary").await?;
        b.click("input[data-test=redact-description]").await?;
        // No reason: refused next to the field, nothing signed.
        b.click("button[data-test=redact]").await?;
        b.wait_text("[data-field=reason] .field-error", "say why")
            .await?;
        let same = admin.get(&format!("/api/v1/events/{id}")).await?;
        ensure!(
            same["history"].as_array().map_or(0, Vec::len) == n_history,
            "a refused erasure signed something: {same}"
        );
        b.fill(
            "textarea[data-test=redact-reason]",
            "erasure request 2026-114",
        )
        .await?;
        b.click("button[data-test=redact]").await?;
        b.wait_text(".description", "[redacted]").await?;
        b.wait_text("[data-test=history]", "redaction").await?;
        b.assert_accessible("the event page with its erasure form")
            .await?;
        b.assert_same_origin(&hub_origin).await?;

        // Ada's node syncs: it shows the same.
        ada.sync_now().await?;
        let shown = ada
            .wait_for(&format!("/api/v1/events/{id}"), |e| {
                e["description"] == "[redacted]"
            })
            .await
            .context("the node drops the erased description")?;
        ensure!(!shown.to_string().contains("old mill"), "{shown}");
        Ok(())
    })
    .await
    .unwrap();
}
