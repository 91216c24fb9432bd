//! `audit verify --bundle FILE --ca CA.pem`: checks a hub's signed audit
//! bundle on a machine that has never seen the deployment — no data
//! directory, no store, only the CA's certificate
//! (`sentinel_sync::bundle::verify_bundle`). Prints what the bundle holds,
//! names every bad entry (author, seq, id, reason), and exits non-zero
//! when anything is wrong; `--json` prints the report as JSON.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use sentinel_certs::CaCert;
use sentinel_sync::bundle::{verify_bundle, BundleReport};

use super::fmt::print_json;

pub(super) fn verify(bundle: &Path, ca: &Path, json: bool) -> Result<ExitCode> {
    let ca =
        CaCert::load(ca).with_context(|| format!("reading the CA certificate {}", ca.display()))?;
    let bytes = std::fs::read(bundle)
        .with_context(|| format!("reading the bundle {}", bundle.display()))?;
    let report = verify_bundle(&bytes, &ca).with_context(|| format!("{}", bundle.display()))?;
    if json {
        let mut v = serde_json::to_value(&report)?;
        v["ok"] = serde_json::Value::Bool(report.ok());
        print_json(&v)?;
    } else {
        print_report(&report);
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_report(r: &BundleReport) {
    println!(
        "Bundle by hub {} ({}), entries with HLC times {}..{} ms{}.",
        r.hub.as_deref().unwrap_or("(unverified)"),
        if r.hub_key.is_empty() {
            "?"
        } else {
            r.hub_key.as_str()
        },
        r.from_ms,
        r.to_ms,
        r.area
            .as_deref()
            .map(|a| format!(" in {a}"))
            .unwrap_or_default()
    );
    println!(
        "Checked {} entries in {} runs, {} certificates, {} revocation lists, {} hub revocations, {} checkpoints.",
        r.entries,
        r.runs.len(),
        r.certificates,
        r.revocation_lists,
        r.revocations,
        r.checkpoints
    );
    for run in &r.runs {
        let who = run.name.as_deref().unwrap_or("(no certificate)");
        let attested = match &run.attested {
            Some(a) => format!(
                "attested up to seq {} by checkpoint {}",
                a.seq, a.checkpoint
            ),
            None => "not attested by a checkpoint in the bundle".to_string(),
        };
        println!(
            "  {} {who}: seq {}..={} ({} entries), {attested}",
            run.author, run.first_seq, run.last_seq, run.entries
        );
    }
    for p in &r.problems {
        match (&p.author, p.seq, &p.id) {
            (Some(author), Some(seq), Some(id)) => println!(
                "BAD {}: author {author} seq {seq} id {id}: {}",
                p.what, p.reason
            ),
            (Some(author), Some(seq), None) => {
                println!("BAD {}: author {author} seq {seq}: {}", p.what, p.reason)
            }
            (Some(author), None, _) => println!("BAD {}: author {author}: {}", p.what, p.reason),
            _ => println!("BAD {}: {}", p.what, p.reason),
        }
    }
    if r.ok() {
        println!("The bundle verifies: every entry, certificate and checkpoint checks out against the CA.");
    }
}
