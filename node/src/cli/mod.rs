//! Command definitions and their implementations; the network commands
//! are in [`net`].

mod net;
mod outbox;
mod show;
mod user;

use show::{print_page, show};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use rand_core::{OsRng, RngCore};
use sentinel_node::node::{Node, DB_FILE};
use sentinel_node::spatial::BBox;
use sentinel_node::store::query::{Cursor, EventQuery, Page};
use sentinel_node::transfer::{self, Format};
use sentinel_schema::{EventEdit, EventId, NewEvent, Point, SigningKey, Status};

#[derive(Debug, Parser)]
#[command(
    name = "sentinel-node",
    version,
    about = "Sentinel field node: report and work incidents offline"
)]
pub struct Cli {
    /// Data directory (default: the OS data directory for sentinel-node).
    #[arg(long, global = true, env = "SENTINEL_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// The person acting (recorded in each entry as its actor).
    #[arg(long, global = true, env = "SENTINEL_ACTOR", value_name = "PERSON")]
    actor: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create the data directory, a new device key and an empty store.
    Init,
    /// Take on the identity in an enrollment bundle from `sentinel-certs issue`
    /// (password from SENTINEL_BUNDLE_PASSWORD or standard input).
    Enroll { bundle: PathBuf },
    /// Report a new event.
    Report(ReportArgs),
    /// Change an event's fields.
    Edit(EditArgs),
    /// Add a note to an event.
    Note { id: String, text: String },
    /// Attach a photo or video (JPEG, PNG, WebP, MP4) to an event.
    Attach {
        id: String,
        file: PathBuf,
        /// Name to record (default: the file's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Assign an event to an officer.
    Assign { id: String, officer: String },
    /// Move an event through its workflow: assigned, in_progress, resolved, closed
    /// (reopen a resolved or closed event with in_progress).
    Status { id: String, status: String },
    /// List or search events.
    #[command(alias = "search")]
    List(SearchArgs),
    /// Show an event: fields, conflicts, media and the entries that touched it.
    Show { id: String },
    /// Export every event.
    Export {
        #[arg(long, default_value = "geojson")]
        format: String,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Import events from GeoJSON or CSV.
    Import {
        file: PathBuf,
        /// geojson or csv (default: from the file extension).
        #[arg(long)]
        format: Option<String>,
        /// Events committed per transaction.
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
    /// Accept peers and sync with them, staying live (needs `enroll`).
    Serve {
        /// Address to listen on (UDP).
        #[arg(long, default_value = "0.0.0.0:7447")]
        listen: String,
        /// Also serve the officer's HTTP API (`/api/v1`), on this address
        /// (default 127.0.0.1:8081, this device only: it is plain HTTP).
        #[arg(long, value_name = "ADDR", num_args = 0..=1,
              default_missing_value = sentinel_node::http::DEFAULT_HTTP_ADDR)]
        http: Option<String>,
        #[command(flatten)]
        ops: net::HttpOps,
        /// Sensor rules (TOML, `docs/operations.md`): readings this node
        /// takes from sensors directly that cross a rule raise an event.
        /// Checked at start: a bad file stops `serve`.
        #[arg(long, value_name = "FILE", env = "SENTINEL_RULES_FILE")]
        rules: Option<PathBuf>,
    },
    /// Accounts for the HTTP API (roles come from hub grants, by sync).
    User {
        #[command(subcommand)]
        what: UserCmd,
    },
    /// Sync once with peers: the ones given, else those in DATA_DIR/peers
    /// (one HOST:PORT per line).
    Sync { peers: Vec<String> },
    /// Check the integrity of the log.
    Audit {
        #[command(subcommand)]
        what: AuditCmd,
    },
    /// Counts and the heads digest.
    Stats,
    /// Entries written here that no hub has acknowledged yet (saved, not
    /// yet synced), and the last hub receipt.
    Outbox,
    /// Drop every view and rebuild it from the log.
    RebuildViews,
}

#[derive(Debug, Subcommand)]
enum UserCmd {
    /// Create an account (password: SENTINEL_USER_PASSWORD or the first
    /// line of standard input). Its role is granted on a hub.
    Add { name: String },
    /// Disable an account and revoke its tokens.
    Disable { name: String },
    /// List the accounts and their roles.
    List,
}

#[derive(Debug, Subcommand)]
enum AuditCmd {
    /// Verify every chain in the store; non-zero exit if any is broken.
    Verify,
}

#[derive(Debug, Args)]
struct ReportArgs {
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
struct EditArgs {
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
struct SearchArgs {
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
    /// MIN_LON,MIN_LAT,MAX_LON,MAX_LAT
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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn data_dir(arg: &Option<PathBuf>) -> Result<PathBuf> {
    if let Some(d) = arg {
        return Ok(d.clone());
    }
    directories::ProjectDirs::from("org", "Sentinel", "sentinel-node")
        .map(|p| p.data_dir().to_path_buf())
        .context("no home directory to put the data in: pass --data-dir")
}

fn parse_time(s: &str) -> Result<u64> {
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(s).with_context(|| {
        format!("{s:?} is neither RFC 3339 (2026-11-22T10:00:00Z) nor Unix milliseconds")
    })?;
    Ok(t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0))
}

fn format_time(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn parse_point(s: &str, what: &str) -> Result<Point> {
    let (lon, lat) = s
        .split_once(',')
        .with_context(|| format!("{what} must be LON,LAT, got {s:?}"))?;
    let lon: f64 = lon
        .trim()
        .parse()
        .with_context(|| format!("{what}: longitude {lon:?} is not a number"))?;
    let lat: f64 = lat
        .trim()
        .parse()
        .with_context(|| format!("{what}: latitude {lat:?} is not a number"))?;
    Point::new(lon, lat).with_context(|| what.to_string())
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let dir = data_dir(&cli.data_dir)?;
    let actor = cli.actor.as_deref();
    let json = cli.json;
    if let Cmd::Init = cli.cmd {
        let node = Node::init(&dir, SigningKey::generate(&mut OsRng))?;
        if json {
            print_json(&serde_json::json!({"data_dir": dir, "author": node.author().to_hex()}))?;
        } else {
            println!("Initialised a node in {}", dir.display());
            println!("Device key (public): {}", node.author());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Cmd::Enroll { bundle } = &cli.cmd {
        let password = bundle_password()?;
        let enrollment = sentinel_certs::Bundle::open(bundle, &password)?;
        sentinel_node::node::enroll(&dir, &enrollment)?;
        let id = &enrollment.identity;
        if json {
            print_json(
                &serde_json::json!({"author": id.author.to_hex(), "name": id.name, "role": id.role.as_str()}),
            )?;
        } else {
            println!("Enrolled as {} ({}, key {})", id.name, id.role, id.author);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut node = Node::open(&dir)?;
    match cli.cmd {
        Cmd::Init | Cmd::Enroll { .. } => unreachable!("handled above"),
        Cmd::Report(a) => {
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
                acks.push(node.attach(
                    EventId(event),
                    &bytes,
                    &file_name(&path),
                    actor,
                    now_ms(),
                )?);
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
        }
        Cmd::Edit(a) => {
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
                bail!("nothing to change: give --title, --description, --category, --severity or --location");
            }
            let acks = edits
                .iter()
                .map(|e| node.edit(event, e, actor, now_ms()))
                .collect::<Result<Vec<_>, _>>()?;
            ack_out(json, "Edited", &acks)?;
        }
        Cmd::Note { id, text } => {
            let event = node.resolve(&id)?;
            let ack = node.edit(
                event,
                &EventEdit::Note {
                    text,
                    actor: actor.map(str::to_owned),
                    at_ms: now_ms(),
                },
                actor,
                now_ms(),
            )?;
            ack_out(json, "Noted on", &[ack])?;
        }
        Cmd::Attach { id, file, name } => {
            let event = node.resolve(&id)?;
            let bytes = read_media(&file)?;
            let name = name.unwrap_or_else(|| file_name(&file));
            let ack = node.attach(event, &bytes, &name, actor, now_ms())?;
            ack_out(json, "Attached to", &[ack])?;
        }
        Cmd::Assign { id, officer } => {
            let event = node.resolve(&id)?;
            let ack = node.edit(event, &EventEdit::Assign(officer), actor, now_ms())?;
            ack_out(json, "Assigned", &[ack])?;
        }
        Cmd::Status { id, status } => {
            let event = node.resolve(&id)?;
            let status: Status = status.parse()?;
            let ack = node.edit(event, &EventEdit::Status(status), actor, now_ms())?;
            ack_out(json, "Updated", &[ack])?;
        }
        Cmd::List(a) => {
            let page = search(&mut node, a)?;
            if json {
                print_json(&page)?;
            } else {
                print_page(&page);
            }
        }
        Cmd::Show { id } => {
            let event = node.resolve(&id)?;
            show(&node, event, json)?;
        }
        Cmd::Export { format, out } => {
            let format: Format = format.parse()?;
            let n = match &out {
                Some(path) => {
                    let f = std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut w = std::io::BufWriter::new(f);
                    let n = transfer::export(format, node.store().conn(), &mut w)?;
                    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                    n
                }
                None => {
                    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
                    let n = transfer::export(format, node.store().conn(), &mut w)?;
                    w.flush()?;
                    n
                }
            };
            if out.is_some() {
                eprintln!("Exported {n} events");
            }
        }
        Cmd::Serve {
            listen,
            http,
            ops,
            rules,
        } => {
            if let Some(path) = &rules {
                net::enable_rules(&mut node, path, json)?;
            }
            net::serve(node, &dir, &listen, http.as_deref(), &ops, json)?
        }
        Cmd::User { what } => match what {
            UserCmd::Add { name } => user::add(&node, &name, json)?,
            UserCmd::Disable { name } => user::disable(&mut node, &name, json)?,
            UserCmd::List => user::list(&node, json)?,
        },
        Cmd::Sync { peers } => return net::sync(node, &dir, peers, json),
        Cmd::Import {
            file,
            format,
            batch,
        } => import(&mut node, &file, format, batch, actor, json)?,
        Cmd::Audit {
            what: AuditCmd::Verify,
        } => {
            let report = node.store().audit()?;
            if json {
                print_json(&report)?;
            } else {
                println!(
                    "Checked {} entries from {} authors ({} forks kept as evidence, {} quarantined).",
                    report.entries, report.authors, report.forks, report.quarantined
                );
                for p in &report.problems {
                    println!("BROKEN: author {} seq {}: {}", p.author, p.seq, p.reason);
                }
                for b in &report.checkpoint_breaches {
                    println!("{}", describe_breach(b));
                }
                if report.ok() {
                    println!("Every chain verifies.");
                }
            }
            if !report.ok() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Cmd::Stats => {
            let s = node.stats()?;
            if json {
                print_json(&s)?;
            } else {
                println!("device key      {}", s.author);
                println!(
                    "entries         {} ({} written here)",
                    s.entries, s.local_entries
                );
                println!("authors         {}", s.authors);
                println!("events          {}", s.events);
                println!("media           {}", s.media);
                println!("forks           {}", s.forks);
                println!("quarantined     {}", s.quarantined);
                println!("awaiting a hub receipt: {}", s.awaiting_receipt);
                println!("heads digest    {}", s.heads_digest);
                println!("store           {}", dir.join(DB_FILE).display());
            }
        }
        Cmd::Outbox => outbox::outbox(&node, json)?,
        Cmd::RebuildViews => {
            let p = node.store_mut().rebuild_views()?;
            if json {
                print_json(&serde_json::json!({"entries": p.entries, "events": p.events.len()}))?;
            } else {
                println!(
                    "Rebuilt the views from {} entries ({} event updates).",
                    p.entries,
                    p.events.len()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The bundle password: `SENTINEL_BUNDLE_PASSWORD`, else one line of
/// standard input. Never a default.
fn bundle_password() -> Result<sentinel_certs::Password> {
    let text = match std::env::var("SENTINEL_BUNDLE_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            eprint!("Bundle password: ");
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the bundle password")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    Ok(sentinel_certs::Password::new(text)?)
}

fn ack_out(json: bool, verb: &str, acks: &[sentinel_node::node::Ack]) -> Result<()> {
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

fn search(node: &mut Node, a: SearchArgs) -> Result<Page> {
    let text = (!a.text.is_empty()).then(|| a.text.join(" "));
    let status = a
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
            Some((parse_point(p, "--near")?, r))
        }
        (None, None) => None,
        _ => bail!("--near and --radius go together"),
    };
    let q = EventQuery {
        text,
        status,
        category: a.category,
        min_severity: a.min_severity,
        max_severity: a.max_severity,
        reported_from: a.from.as_deref().map(parse_time).transpose()?,
        reported_to: a.to.as_deref().map(parse_time).transpose()?,
        bbox: a.bbox.as_deref().map(str::parse::<BBox>).transpose()?,
        near,
        limit: a.limit,
        after: a.after.as_deref().map(str::parse::<Cursor>).transpose()?,
    };
    Ok(node.store().search(&q)?)
}

fn import(
    node: &mut Node,
    file: &Path,
    format: Option<String>,
    batch: usize,
    actor: Option<&str>,
    json: bool,
) -> Result<()> {
    let format = match format {
        Some(f) => f.parse()?,
        None => Format::from_path(file).with_context(|| {
            format!(
                "cannot tell the format of {}: pass --format geojson|csv",
                file.display()
            )
        })?,
    };
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let records = transfer::parse(format, &bytes)?;
    let mut items = Vec::with_capacity(records.len());
    let mut skipped = 0usize;
    for r in records {
        let id = match r.id {
            Some(id) if node.resolve(&id.to_hex()).is_ok() => {
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

/// One line for a checkpoint breach, for people.
pub(crate) fn describe_breach(b: &sentinel_node::store::checkpoints::BreachRecord) -> String {
    let what = match (b.kind.as_str(), b.presented_seq, &b.presented_id) {
        ("truncated", Some(seq), _) => format!(
            "TRUNCATED: hub {} attested author {} up to seq {}, but presented seq {seq}",
            b.hub, b.author, b.attested_seq
        ),
        (_, _, Some(id)) => format!(
            "FORKED: hub {} attested author {} seq {} as {}, but {id} was presented there",
            b.hub, b.author, b.attested_seq, b.attested_id
        ),
        _ => format!(
            "{}: hub {} author {} seq {}",
            b.kind.to_uppercase(),
            b.hub,
            b.author,
            b.attested_seq
        ),
    };
    format!("{what} (by {}, {} time(s))", b.peer, b.times)
}
