//! Printing events for people (`list`, `show`) and as JSON.

use anyhow::Result;
use sentinel_node::node::Node;
use sentinel_node::store::query::Page;
use sentinel_schema::EventId;

use super::{format_time, print_json};

pub(super) fn print_page(page: &Page) {
    if page.items.is_empty() {
        println!("No events found.");
    }
    for e in &page.items {
        let dist = e
            .distance_m
            .map(|d| format!("  {:.0} m", d))
            .unwrap_or_default();
        println!(
            "{}  {}  sev {}  {:<11}  {:<12}  {:>10.5},{:<9.5}{}  {}{}",
            &e.id[..12],
            format_time(e.reported_ms),
            e.severity,
            e.status,
            e.category,
            e.lon,
            e.lat,
            dist,
            e.title,
            if e.has_conflicts { "  [conflicts]" } else { "" }
        );
    }
    if let Some(n) = &page.next {
        println!("More: --after {n}");
    }
}

pub(super) fn show(node: &Node, event: EventId, json: bool) -> Result<()> {
    let d = node.show(event)?;
    let v = &d.view;
    if json {
        return print_json(&serde_json::json!({
            "id": d.id.to_hex(),
            "title": v.title,
            "description": v.description,
            "category": v.category,
            "severity": v.severity,
            "status": v.status.as_str(),
            "assignee": v.assignee,
            "lon": v.location.lon(),
            "lat": v.location.lat(),
            "reported_ms": v.reported_ms,
            "notes": v.notes.iter().map(|n| serde_json::json!({"text": n.text, "actor": n.actor, "at_ms": n.at_ms})).collect::<Vec<_>>(),
            "conflicts": v.conflicts,
            "media": d.media,
            "history": d.history,
        }));
    }
    println!("Event {}", d.id);
    println!("  title        {}", v.title);
    println!("  category     {}", v.category);
    println!("  severity     {}", v.severity);
    println!("  status       {}", v.status);
    println!("  assignee     {}", v.assignee.as_deref().unwrap_or("-"));
    println!(
        "  location     {:.6}, {:.6}",
        v.location.lon(),
        v.location.lat()
    );
    println!("  reported     {}", format_time(v.reported_ms));
    if !v.description.is_empty() {
        println!("  description  {}", v.description);
    }
    if !v.conflicts.is_empty() {
        println!("Conflicts (concurrent edits, all kept):");
        for (field, values) in &v.conflicts {
            println!("  {field}: {}", values.join(" | "));
        }
    }
    if !v.notes.is_empty() {
        println!("Notes:");
        for n in &v.notes {
            println!(
                "  [{}] {}: {}",
                format_time(n.at_ms),
                n.actor.as_deref().unwrap_or("-"),
                n.text
            );
        }
    }
    if !d.media.is_empty() {
        println!("Media:");
        for m in &d.media {
            println!(
                "  {} {} ({} bytes) sha256 {}",
                m.name,
                m.mime,
                m.size,
                &m.hash[..16]
            );
        }
    }
    println!("History:");
    for h in &d.history {
        println!(
            "  hlc {}  {} #{}  {}  actor {}  entry {}",
            h.hlc,
            &h.author[..12],
            h.seq,
            h.kind,
            h.actor.as_deref().unwrap_or("-"),
            &h.entry[..12]
        );
    }
    Ok(())
}
