//! `outbox`: what was saved here and has no hub receipt yet.
//!
//! "Saved" means committed to this device's log; "synced" means a hub
//! acknowledged it (a receipt). Syncing with another node moves entries
//! on, but only a hub's acknowledgement empties the outbox.

use anyhow::Result;
use sentinel_node::node::Node;
use sentinel_node::store::receipts::{OutboxEntry, Receipt};

use super::fmt::{format_time, print_json};

/// `sentinel-node outbox` as JSON.
#[derive(Debug, serde::Serialize)]
struct OutboxReport<'a> {
    author: String,
    /// How many entries written here await a hub receipt.
    awaiting_receipt: usize,
    /// Those entries, oldest first.
    entries: &'a [OutboxEntry],
    /// The receipt covering the highest seq of this node's chain, if any.
    last_receipt: Option<Receipt>,
}

pub(super) fn outbox(node: &Node, json: bool) -> Result<()> {
    let store = node.store();
    let entries = store.outbox()?;
    let last = store.last_receipt()?;
    if json {
        return print_json(&OutboxReport {
            author: node.author().to_hex(),
            awaiting_receipt: entries.len(),
            entries: &entries,
            last_receipt: last,
        });
    }
    match entries.len() {
        0 => println!("Every entry written here has a hub receipt."),
        1 => println!("1 entry written here awaits a hub receipt:"),
        n => println!("{n} entries written here await a hub receipt:"),
    }
    for e in &entries {
        println!(
            "  #{:<6} {:<15} event {:<32}  {} (HLC {})",
            e.seq,
            e.kind,
            e.event.as_deref().unwrap_or("-"),
            format_time(e.hlc_ms),
            e.hlc
        );
    }
    match &last {
        Some(r) => println!(
            "Last receipt: entries up to #{} acknowledged by hub {} ({}) at {}.",
            r.seq,
            if r.hub_name.is_empty() {
                "(unnamed)"
            } else {
                &r.hub_name
            },
            short(&r.hub),
            format_time(r.received_ms)
        ),
        None => println!("No hub has acknowledged any entry written here yet."),
    }
    Ok(())
}

fn short(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}
