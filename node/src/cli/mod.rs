//! Command definitions and the dispatch to their implementations: the
//! event commands are in [`events`] (printing them in [`show`]), the
//! network commands in [`net`], accounts in [`user`], the outbox in
//! [`outbox`], audit bundles in [`audit`], shared text helpers in [`fmt`].

mod audit;
mod events;
mod fmt;
mod front;
mod net;
mod outbox;
mod show;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rand_core::OsRng;
use sentinel_node::node::{Node, DB_FILE};
use sentinel_schema::{EventEdit, SigningKey, Status};

use events::{EditArgs, ImportArgs, ReportArgs, SearchArgs};
use fmt::print_json;

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
    /// Most MiB of entries the store keeps as evidence (quarantine and
    /// forks); beyond it, a summary per author and reason without the
    /// bytes. Kept in the store once set; 256 until then.
    #[arg(
        long,
        global = true,
        env = "SENTINEL_EVIDENCE_QUOTA_MB",
        value_name = "MIB"
    )]
    evidence_quota_mb: Option<u64>,
    #[command(subcommand)]
    cmd: Cmd,
}

// Parsed once per run: `serve`'s many flags (the model's among them) make
// its variant large, and boxing them would only add noise.
#[allow(clippy::large_enum_variant)]
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
        /// geojson, csv or kml.
        #[arg(long, default_value = "geojson")]
        format: String,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Import events from GeoJSON, CSV or KML.
    Import(ImportArgs),
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
        #[command(flatten)]
        limits: net::SyncLimits,
        /// Sensor rules (TOML, `docs/operations.md`): readings this node
        /// takes from sensors directly that cross a rule raise an event.
        /// Checked at start: a bad file stops `serve`.
        #[arg(long, value_name = "FILE", env = "SENTINEL_RULES_FILE")]
        rules: Option<PathBuf>,
        /// A hub or peer to keep in sync with (background sync) and to
        /// dial when an officer asks to sync now (`POST /api/v1/sync`),
        /// HOST:PORT; repeat it, or comma-separate in the environment.
        /// None given: DATA_DIR/peers, as `sync` reads.
        #[arg(
            long = "peer",
            value_name = "HOST:PORT",
            env = "SENTINEL_PEERS",
            value_delimiter = ','
        )]
        peers: Vec<String>,
        #[command(flatten)]
        background: net::BackgroundArgs,
    },
    /// Accounts for the HTTP API (roles come from hub grants, by sync).
    User {
        #[command(subcommand)]
        what: UserCmd,
    },
    /// Sync once with peers: the ones given, else those in DATA_DIR/peers
    /// (one HOST:PORT per line).
    Sync {
        peers: Vec<String>,
        #[command(flatten)]
        rate: net::LinkRate,
    },
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
    /// Copy this node's data directory, while it runs, into a new or empty
    /// folder that a node starts from as it is (`--data-dir DIR`). It holds
    /// the device key: keep it private.
    Snapshot {
        /// The folder to write.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum UserCmd {
    /// Create an account (password: SENTINEL_USER_PASSWORD, else asked on
    /// the terminal without echo, else the first line of standard input).
    /// Its role is granted on a hub.
    Add {
        name: String,
        /// The device's own officer: an officer on this device only, until
        /// a hub's grant for the name reaches it (then the grant decides).
        /// Never synced, never admin.
        #[arg(long)]
        device_officer: bool,
    },
    /// Set an account's password (read as for `add`); revokes its tokens
    /// and lifts a lockout.
    ResetPassword { name: String },
    /// Disable an account and revoke its tokens.
    Disable { name: String },
    /// Let a disabled account sign in again (its failed logins forgotten).
    Enable { name: String },
    /// Delete expired and revoked tokens (`serve --http` does it hourly).
    PurgeTokens,
    /// List the accounts and their roles.
    List,
}

#[derive(Debug, Subcommand)]
enum AuditCmd {
    /// Verify every chain in the store; non-zero exit if any is broken.
    /// With --bundle and --ca: verify a hub's signed audit bundle instead,
    /// needing no store, only the deployment's CA certificate.
    Verify {
        /// A bundle from `sentinel-hub audit bundle`.
        #[arg(long, value_name = "FILE", requires = "ca")]
        bundle: Option<PathBuf>,
        /// The deployment CA's certificate (PEM) to check the bundle with.
        #[arg(long, value_name = "CA.pem", requires = "bundle")]
        ca: Option<PathBuf>,
    },
}

fn data_dir(arg: &Option<PathBuf>) -> Result<PathBuf> {
    if let Some(d) = arg {
        return Ok(d.clone());
    }
    directories::ProjectDirs::from("org", "Sentinel", "sentinel-node")
        .map(|p| p.data_dir().to_path_buf())
        .context("no home directory to put the data in: pass --data-dir")
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
    if let Cmd::Audit {
        what:
            AuditCmd::Verify {
                bundle: Some(bundle),
                ca: Some(ca),
            },
    } = &cli.cmd
    {
        // A bundle is checked without a store: the auditor's machine may
        // have none.
        return audit::verify(bundle, ca, json);
    }
    let mut node = Node::open(&dir)?;
    if let Some(mib) = cli.evidence_quota_mb {
        node.store()
            .set_evidence_quota(mib.saturating_mul(1 << 20))?;
    }
    match cli.cmd {
        Cmd::Init | Cmd::Enroll { .. } => unreachable!("handled above"),
        Cmd::Report(a) => events::report(&mut node, a, actor, json)?,
        Cmd::Edit(a) => events::edit(&mut node, a, actor, json)?,
        Cmd::Note { id, text } => {
            let by = actor.map(str::to_owned);
            let note = move |at_ms| {
                Ok(EventEdit::Note {
                    text,
                    actor: by,
                    at_ms,
                })
            };
            events::one_edit(&mut node, &id, note, actor, json, "Noted on")?
        }
        Cmd::Attach { id, file, name } => events::attach(&mut node, &id, &file, name, actor, json)?,
        Cmd::Assign { id, officer } => {
            let assign = |_| Ok(EventEdit::Assign(officer));
            events::one_edit(&mut node, &id, assign, actor, json, "Assigned")?
        }
        Cmd::Status { id, status } => {
            let status = |_| Ok(EventEdit::Status(status.parse::<Status>()?));
            events::one_edit(&mut node, &id, status, actor, json, "Updated")?
        }
        Cmd::List(a) => {
            let page = events::search(&mut node, a)?;
            show::print_page(&page, json)?;
        }
        Cmd::Show { id } => {
            let event = node.resolve(&id)?;
            show::show(&node, event, json)?;
        }
        Cmd::Export { format, out } => events::export(&node, &format, out)?,
        Cmd::Serve {
            listen,
            http,
            ops,
            limits,
            rules,
            peers,
            background,
        } => {
            if let Some(path) = &rules {
                net::enable_rules(&mut node, path, json)?;
            }
            let serving = net::Serving {
                listen: &listen,
                http: http.as_deref(),
                ops: &ops,
                limits: &limits,
                peers,
                background: &background,
            };
            net::serve(node, &dir, serving, json)?
        }
        Cmd::User { what } => match what {
            UserCmd::Add {
                name,
                device_officer,
            } => user::add(&node, &name, device_officer, json)?,
            UserCmd::ResetPassword { name } => user::reset_password(&mut node, &name, json)?,
            UserCmd::Disable { name } => user::disable(&mut node, &name, json)?,
            UserCmd::Enable { name } => user::enable(&node, &name, json)?,
            UserCmd::PurgeTokens => user::purge_tokens(&node, json)?,
            UserCmd::List => user::list(&node, json)?,
        },
        Cmd::Sync { peers, rate } => return net::sync(node, &dir, peers, &rate, json),
        Cmd::Import(args) => events::import(&mut node, args, actor, json)?,
        Cmd::Audit {
            what: AuditCmd::Verify { .. },
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
            // Background sync's links, as `serve` last wrote them.
            let links = node.store().link_statuses()?;
            if json {
                let mut v = serde_json::to_value(&s)?;
                v["links"] = serde_json::to_value(&links)?;
                print_json(&v)?;
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
                for l in &links {
                    println!("{}", fmt::link_line(l, sentinel_node::clock::now_ms()));
                }
            }
        }
        Cmd::Outbox => outbox::outbox(&node, json)?,
        Cmd::Snapshot { out } => {
            let s = sentinel_node::snapshot::snapshot(&node, &out)?;
            if json {
                print_json(&serde_json::json!({
                    "dir": s.dir, "entries": s.entries, "authors": s.authors,
                    "heads_digest": s.heads_digest, "blobs": s.blobs,
                    "blob_bytes": s.blob_bytes, "corrupt_blobs": s.corrupt,
                }))?;
            } else {
                println!(
                    "snapshot in {}: {} entries of {} authors, {} blobs ({} bytes); heads digest {}",
                    s.dir.display(), s.entries, s.authors, s.blobs, s.blob_bytes, s.heads_digest
                );
                if !s.corrupt.is_empty() {
                    println!("left out, corrupt on this device: {}", s.corrupt.join(", "));
                }
            }
        }
        Cmd::RebuildViews => {
            let p = node.store_mut().rebuild_views()?;
            node.erase_redacted_blobs()?;
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

/// One line for a checkpoint breach, for people.
fn describe_breach(b: &sentinel_node::store::checkpoints::BreachRecord) -> String {
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
