//! Printing events for people (`list`, `show`) and as JSON.
//!
//! The JSON is the command line's own, kept as scripts know it (an event
//! list's points as `lon`/`lat`, history clocks as `wall_ms.counter`); the
//! HTTP API's shapes are `sentinel_http::api::json`'s.

use anyhow::Result;
use sentinel_node::node::Node;
use sentinel_schema::query::{EventPage, EventSummary};
use sentinel_schema::EventId;
use serde::Serialize;
use serde_json::json;

use super::events::cursor_text;
use super::fmt::{format_time, print_json};

/// One event of a list, as `list --json` prints it.
#[derive(Serialize)]
struct ListItem<'a> {
    id: String,
    title: &'a str,
    category: &'a str,
    severity: u8,
    status: &'a str,
    assignee: Option<&'a str>,
    lon: f64,
    lat: f64,
    reported_ms: u64,
    n_notes: u32,
    n_media: u32,
    has_conflicts: bool,
    /// Distance from the `--near` point, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    distance_m: Option<f64>,
}

impl<'a> From<&'a EventSummary> for ListItem<'a> {
    fn from(s: &'a EventSummary) -> ListItem<'a> {
        ListItem {
            id: s.id.to_hex(),
            title: &s.title,
            category: &s.category,
            severity: s.severity,
            status: s.status.as_str(),
            assignee: s.assignee.as_deref(),
            lon: s.location.lon(),
            lat: s.location.lat(),
            reported_ms: s.reported_ms,
            n_notes: s.n_notes,
            n_media: s.n_media,
            has_conflicts: s.has_conflicts,
            distance_m: s.distance_m,
        }
    }
}

/// A page of events, for people or as JSON (`next`: pass back as
/// `--after`).
pub(super) fn print_page(page: &EventPage, json: bool) -> Result<()> {
    let next = page.next.as_ref().map(cursor_text);
    if json {
        let items: Vec<ListItem<'_>> = page.items.iter().map(ListItem::from).collect();
        return print_json(&json!({ "items": items, "next": next }));
    }
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
            &e.id.to_hex()[..12],
            format_time(e.reported_ms),
            e.severity,
            e.status.as_str(),
            e.category,
            e.location.lon(),
            e.location.lat(),
            dist,
            e.title,
            if e.has_conflicts { "  [conflicts]" } else { "" }
        );
    }
    if let Some(n) = &next {
        println!("More: --after {n}");
    }
    Ok(())
}

pub(super) fn show(node: &Node, event: EventId, json: bool) -> Result<()> {
    let d = node.show(event)?;
    let v = &d.view;
    if json {
        return print_json(&json!({
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
            "notes": v.notes.iter().map(|n| json!({"text": n.text, "actor": n.actor, "at_ms": n.at_ms})).collect::<Vec<_>>(),
            "conflicts": v.conflicts,
            "media": v.media.iter().map(|m| json!({
                "hash": hex::encode(m.hash),
                "mime": m.mime.as_mime(),
                "size": m.size,
                "name": m.name,
            })).collect::<Vec<_>>(),
            "history": d.history.iter().map(|h| json!({
                "entry": h.entry.to_hex(),
                "author": h.author.to_hex(),
                "seq": h.seq,
                "hlc": h.hlc.to_string(),
                "kind": h.kind.map_or("unknown", |k| k.as_str()),
                "actor": h.actor,
                "local": h.local,
            })).collect::<Vec<_>>(),
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
    if !v.media.is_empty() {
        println!("Media:");
        for m in &v.media {
            println!(
                "  {} {} ({} bytes) sha256 {}",
                m.name,
                m.mime.as_mime(),
                m.size,
                &hex::encode(m.hash)[..16]
            );
        }
    }
    println!("History:");
    for h in &d.history {
        println!(
            "  hlc {}  {} #{}  {}  actor {}  entry {}",
            h.hlc,
            &h.author.to_hex()[..12],
            h.seq,
            h.kind.map_or("unknown", |k| k.as_str()),
            h.actor.as_deref().unwrap_or("-"),
            &h.entry.to_hex()[..12]
        );
    }
    Ok(())
}
