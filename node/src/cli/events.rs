//! The event commands: `report`, `edit`, `note`, `attach`, `assign`,
//! `status`, `list`/`search`, `export` and `import`. Each write is one
//! commit through the library (`Node`); a refused command stores nothing.
//!
//! Never does: SQL or signing of its own (the library does both).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use rand_core::{OsRng, RngCore};
use sentinel_node::clock::now_ms;
use sentinel_node::node::{Ack, Node};
use sentinel_node::transfer::{self, FieldMap, Format, ImportOptions};
use sentinel_schema::query::{EventCursor, EventFilter, EventPage, EventSearch, Near};
use sentinel_schema::{Bounds, EventEdit, EventId, NewEvent, Point, Status};

use super::fmt::{parse_point, parse_time, print_json};

#[derive(Debug, Args)]
pub(super) struct ReportArgs {
    #[arg(long)]
    title: String,
    #[arg(long, default_value = "")]
    description: String,
    #[arg(long)]
    category: String,
    /// 1 (minor) to 5 (critical).
    #[arg(long)]
    severity: u8,
    #[arg(long, allow_hyphen_values = true)]
    lon: f64,
    #[arg(long, allow_hyphen_values = true)]
    lat: f64,
    /// When it happened: RFC 3339 (2026-11-22T10:00:00Z) or Unix ms (default: now).
    #[arg(long)]
    reported_at: Option<String>,
    /// Photos or videos to attach right away.
    #[arg(long = "photo")]
    photos: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(super) struct ImportArgs {
    file: PathBuf,
    /// geojson, csv or kml (default: from the file extension).
    #[arg(long)]
    format: Option<String>,
    /// Events committed per transaction.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Read fields under the file's own names: FIELD=NAME pairs,
    /// comma-separated (title=name,description=notes,category=type).
    /// Fields: id, title, description, category, severity, reported_at,
    /// reported_ms, lon, lat.
    #[arg(long = "map", value_name = "FIELD=NAME,...")]
    map: Vec<String>,
    /// Skip properties, columns and ExtendedData the import does not know
    /// (default: refuse the file, naming the first).
    #[arg(long)]
    ignore_unknown: bool,
}

#[derive(Debug, Args)]
pub(super) struct EditArgs {
    id: String,
    #[arg(long)]
    title: Option<String>,
    #[arg(long)]
    description: Option<String>,
    #[arg(long)]
    category: Option<String>,
    #[arg(long)]
    severity: Option<u8>,
    /// New location as LON,LAT.
    #[arg(long, allow_hyphen_values = true)]
    location: Option<String>,
}

#[derive(Debug, Args)]
pub(super) struct SearchArgs {
    /// Words to find in title, description and notes.
    text: Vec<String>,
    #[arg(long)]
    status: Vec<String>,
    #[arg(long)]
    category: Option<String>,
    #[arg(long)]
    min_severity: Option<u8>,
    #[arg(long)]
    max_severity: Option<u8>,
    /// Reported at or after (RFC 3339 or Unix ms).
    #[arg(long)]
    from: Option<String>,
    /// Reported before (RFC 3339 or Unix ms).
    #[arg(long)]
    to: Option<String>,
    /// MIN_LON,MIN_LAT,MAX_LON,MAX_LAT (MIN_LON > MAX_LON crosses the
    /// antimeridian).
    #[arg(long, allow_hyphen_values = true)]
    bbox: Option<String>,
    /// LON,LAT; use with --radius.
    #[arg(long, allow_hyphen_values = true)]
    near: Option<String>,
    /// Metres around --near.
    #[arg(long)]
    radius: Option<f64>,
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Continue after this cursor (the `next` of the previous page).
    #[arg(long)]
    after: Option<String>,
}

/// What a write committed, for people or as JSON.
fn ack_out(json: bool, verb: &str, acks: &[Ack]) -> Result<()> {
    if json {
        return print_json(&acks);
    }
    for a in acks {
        println!("{verb} event {} (entry #{} saved)", a.event, a.seq);
    }
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "media".to_string())
}

/// A photo or video from disk, refused when too large or of a type the
/// node does not take.
fn read_media(p: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(p).with_context(|| format!("reading {}", p.display()))?;
    if meta.len() > sentinel_schema::limits::MAX_MEDIA_BYTES {
        bail!(
            "{} is {} bytes; the limit is {} bytes",
            p.display(),
            meta.len(),
            sentinel_schema::limits::MAX_MEDIA_BYTES
        );
    }
    let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    sentinel_node::media::sniff(&bytes).with_context(|| format!("{}", p.display()))?;
    Ok(bytes)
}

pub(super) fn report(
    node: &mut Node,
    a: ReportArgs,
    actor: Option<&str>,
    json: bool,
) -> Result<()> {
    let reported_ms = match &a.reported_at {
        Some(t) => parse_time(t)?,
        None => now_ms(),
    };
    let new = NewEvent {
        title: a.title,
        description: a.description,
        category: a.category,
        severity: a.severity,
        location: Point::new(a.lon, a.lat)?,
        reported_ms,
    };
    // Read every photo first: a bad one refuses the whole report.
    let photos = a
        .photos
        .iter()
        .map(|p| read_media(p).map(|b| (p.clone(), b)))
        .collect::<Result<Vec<_>>>()?;
    let mut event = [0u8; 16];
    OsRng.fill_bytes(&mut event);
    let ack = node.report(&new, EventId(event), actor, now_ms())?;
    let mut acks = vec![ack];
    for (path, bytes) in photos {
        acks.push(node.attach(EventId(event), &bytes, &file_name(&path), actor, now_ms())?);
    }
    if json {
        print_json(&acks)?;
    } else {
        println!(
            "Reported event {} (entry #{} saved)",
            acks[0].event, acks[0].seq
        );
        for a in &acks[1..] {
            println!("Attached media (entry #{})", a.seq);
        }
    }
    Ok(())
}

pub(super) fn edit(node: &mut Node, a: EditArgs, actor: Option<&str>, json: bool) -> Result<()> {
    let event = node.resolve(&a.id)?;
    let mut edits = Vec::new();
    if let Some(t) = a.title {
        edits.push(EventEdit::Title(t));
    }
    if let Some(d) = a.description {
        edits.push(EventEdit::Description(d));
    }
    if let Some(c) = a.category {
        edits.push(EventEdit::Category(c));
    }
    if let Some(s) = a.severity {
        edits.push(EventEdit::Severity(s));
    }
    if let Some(l) = &a.location {
        edits.push(EventEdit::Location(parse_point(l, "--location")?));
    }
    if edits.is_empty() {
        bail!(
            "nothing to change: give --title, --description, --category, --severity or --location"
        );
    }
    let acks = edits
        .iter()
        .map(|e| node.edit(event, e, actor, now_ms()))
        .collect::<Result<Vec<_>, _>>()?;
    ack_out(json, "Edited", &acks)
}

/// One edit of the event `id` names (`note`, `assign`, `status`).
pub(super) fn one_edit(
    node: &mut Node,
    id: &str,
    edit: impl FnOnce(u64) -> Result<EventEdit>,
    actor: Option<&str>,
    json: bool,
    verb: &str,
) -> Result<()> {
    let event = node.resolve(id)?;
    let now = now_ms();
    let ack = node.edit(event, &edit(now)?, actor, now)?;
    ack_out(json, verb, &[ack])
}

pub(super) fn attach(
    node: &mut Node,
    id: &str,
    file: &Path,
    name: Option<String>,
    actor: Option<&str>,
    json: bool,
) -> Result<()> {
    let event = node.resolve(id)?;
    let bytes = read_media(file)?;
    let name = name.unwrap_or_else(|| file_name(file));
    let ack = node.attach(event, &bytes, &name, actor, now_ms())?;
    ack_out(json, "Attached to", &[ack])
}

/// A `--after` cursor: `REPORTED_MS.EVENT_ID`, as [`cursor_text`] prints
/// it.
fn parse_cursor(s: &str) -> Result<EventCursor> {
    let bad = || anyhow::anyhow!("invalid cursor: expected the `next` value of a previous page");
    let (ms, ev) = s.split_once('.').ok_or_else(bad)?;
    Ok(EventCursor {
        reported_ms: ms.parse().map_err(|_| bad())?,
        event: ev.parse().map_err(|_| bad())?,
    })
}

/// The `next` of a page, for `--after`.
pub(super) fn cursor_text(c: &EventCursor) -> String {
    format!("{}.{}", c.reported_ms, c.event)
}

pub(super) fn search(node: &mut Node, a: SearchArgs) -> Result<EventPage> {
    let text = (!a.text.is_empty()).then(|| a.text.join(" "));
    let statuses = a
        .status
        .iter()
        .flat_map(|s| s.split(','))
        .map(|s| s.trim().parse::<Status>())
        .collect::<Result<Vec<_>, _>>()?;
    let near = match (&a.near, a.radius) {
        (Some(p), Some(r)) => {
            if !(r.is_finite() && r >= 0.0) {
                bail!("--radius must be a non-negative number of metres");
            }
            Some(Near {
                point: parse_point(p, "--near")?,
                radius_m: r,
            })
        }
        (None, None) => None,
        _ => bail!("--near and --radius go together"),
    };
    let search = EventSearch {
        filter: EventFilter {
            area: a.bbox.as_deref().map(str::parse::<Bounds>).transpose()?,
            near,
            text,
            statuses,
            category: a.category,
            min_severity: a.min_severity,
            max_severity: a.max_severity,
            reported_from: a.from.as_deref().map(parse_time).transpose()?,
            reported_to: a.to.as_deref().map(parse_time).transpose()?,
            assignee: None,
        },
        limit: a.limit.max(1),
        after: a.after.as_deref().map(parse_cursor).transpose()?,
    };
    Ok(node.store().search(&search)?)
}

/// `export`: every event, to `out` or standard output.
pub(super) fn export(node: &Node, format: &str, out: Option<PathBuf>) -> Result<()> {
    let format: Format = format.parse()?;
    let n = match &out {
        Some(path) => {
            let f = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut w = std::io::BufWriter::new(f);
            let n = transfer::export(format, node.store(), &mut w)?;
            w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            n
        }
        None => {
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            let n = transfer::export(format, node.store(), &mut w)?;
            w.flush()?;
            n
        }
    };
    if out.is_some() {
        eprintln!("Exported {n} events");
    }
    Ok(())
}

/// `import`: every record of a file, or nothing when one is refused. A
/// record without a time takes the time the import runs, as `report`
/// does.
pub(super) fn import(
    node: &mut Node,
    args: ImportArgs,
    actor: Option<&str>,
    json: bool,
) -> Result<()> {
    let ImportArgs {
        file,
        format,
        batch,
        map,
        ignore_unknown,
    } = args;
    let format = match format {
        Some(f) => f.parse()?,
        None => Format::from_path(&file).with_context(|| {
            format!(
                "cannot tell the format of {}: pass --format geojson|csv|kml",
                file.display()
            )
        })?,
    };
    let options = ImportOptions {
        map: FieldMap::parse(&map)?,
        ignore_unknown,
        default_reported_ms: Some(now_ms()),
    };
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let records = transfer::parse_with(format, &bytes, &options)
        .with_context(|| format!("importing {}", file.display()))?;
    let mut items = Vec::with_capacity(records.len());
    let mut skipped = 0usize;
    for r in records {
        let id = match r.id {
            Some(id) if node.store().shows_event(id)? => {
                skipped += 1;
                continue;
            }
            Some(id) => id,
            None => {
                let mut b = [0u8; 16];
                OsRng.fill_bytes(&mut b);
                EventId(b)
            }
        };
        items.push((id, r.new));
    }
    let bar = if json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(items.len() as u64)
    };
    let mut done = 0usize;
    for chunk in items.chunks(batch.max(1)) {
        node.report_many(chunk, actor, now_ms())?;
        done += chunk.len();
        bar.set_position(done as u64);
        if json {
            // One line per committed batch: what is printed is durable.
            println!("{}", serde_json::json!({"acknowledged": done}));
            std::io::stdout().flush()?;
        }
    }
    bar.finish_and_clear();
    if !json {
        println!("Imported {done} events ({skipped} already present).");
    }
    Ok(())
}
