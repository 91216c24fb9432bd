//! `serve` and `sync`: the node talking to peers over QUIC.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use sentinel_node::node::Node;
use sentinel_sync::admission::Limits;

/// How often unscraped metric histograms are folded into their buckets.
const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the network runtime")
}

/// How `serve --http` runs the API: the hub's operations settings, with
/// the hub's environment variables.
#[derive(Debug, clap::Args)]
pub(super) struct HttpOps {
    /// Requests per second one client address may sustain on `/api/v1`
    /// (429 with Retry-After beyond; 0 turns the limit off).
    #[arg(long, value_name = "N", env = "SENTINEL_RATE_LIMIT_PER_S",
          default_value_t = sentinel_node::http::DEFAULT_RATE_LIMIT_PER_S)]
    rate_limit_per_s: u32,
    /// Requests one client address may send at once after being idle
    /// (0 turns the limit off).
    #[arg(long, value_name = "N", env = "SENTINEL_RATE_LIMIT_BURST",
          default_value_t = sentinel_node::http::DEFAULT_RATE_LIMIT_BURST)]
    rate_limit_burst: u32,
    /// A browser origin (https://host[:port]) allowed to call the API from
    /// a web page; repeat it, or comma-separate in the environment. None
    /// (the default): no CORS headers at all.
    #[arg(
        long = "cors-origin",
        value_name = "ORIGIN",
        env = "SENTINEL_CORS_ORIGINS",
        value_delimiter = ','
    )]
    cors_origins: Vec<String>,
    /// Log lines (one per HTTP request): text, or json for a log
    /// collector; RUST_LOG filters them (default info).
    #[arg(long, value_name = "FORMAT", env = "SENTINEL_LOG_FORMAT",
          default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(flatten)]
    front: super::front::Front,
}

impl HttpOps {
    fn options(&self) -> Result<sentinel_node::http::ApiOptions> {
        let cors_origins = self
            .cors_origins
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
            .map(sentinel_http::ops::parse_origin)
            .collect::<Result<Vec<_>, _>>()
            .context("--cors-origin (SENTINEL_CORS_ORIGINS)")?;
        self.front.apply(sentinel_node::http::ApiOptions {
            rate_limit: sentinel_http::limit::Limits {
                per_s: self.rate_limit_per_s,
                burst: self.rate_limit_burst,
            },
            cors_origins,
            ..Default::default()
        })
    }

    /// Logs to standard error, as text or one JSON object per line.
    fn init_logs(&self) {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let logs = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        // Fails only if a subscriber is already set: keep that one.
        let _ = if self.log_format == "json" {
            logs.json().try_init()
        } else {
            logs.try_init()
        };
    }
}

/// What `serve` admits on its sync port (`docs/operations.md`): slots go
/// only to peers whose certificate verified, and no one fills them all.
#[derive(Debug, clap::Args)]
pub(super) struct SyncLimits {
    /// Sync and media connections of verified peers at once; more are
    /// closed after their handshake (limit_exceeded).
    #[arg(long, value_name = "N", env = "SENTINEL_MAX_SESSIONS",
          default_value_t = Limits::NODE.max_sessions as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_sessions: u64,
    /// Connections one IP address may hold at once, handshakes included
    /// (0 turns the cap off; raise it when many peers share an address).
    #[arg(long, value_name = "N", env = "SENTINEL_MAX_CONNECTIONS_PER_ADDRESS",
          default_value_t = Limits::NODE.max_per_address as u64)]
    max_connections_per_address: u64,
    /// Sync and media connections one certificate may hold at once.
    #[arg(long, value_name = "N", env = "SENTINEL_MAX_SESSIONS_PER_PEER",
          default_value_t = Limits::NODE.max_per_peer as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_sessions_per_peer: u64,
}

impl SyncLimits {
    fn limits(&self) -> Limits {
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Limits {
            max_sessions: n(self.max_sessions),
            max_per_address: n(self.max_connections_per_address),
            max_per_peer: n(self.max_sessions_per_peer),
            ..Limits::NODE
        }
    }
}

/// Background sync: `serve` keeping its peers in sync by itself
/// (`docs/operations.md`, "Links that come and go").
#[derive(Debug, clap::Args)]
pub(super) struct BackgroundArgs {
    /// Keep a live session with every configured peer whenever it is
    /// reachable, reconnecting by itself (on), or sync only when asked
    /// ("sync now", `sentinel-node sync`) (off).
    #[arg(long = "background-sync", value_name = "on|off", env = "SENTINEL_BACKGROUND_SYNC",
          default_value = "on", value_parser = ["on", "off"])]
    background_sync: String,
    /// Longest wait between two attempts to reach a peer that is down,
    /// in seconds (the first retry comes after about 1 s, each failure
    /// in a row doubles the wait, with jitter).
    #[arg(long = "retry-max", value_name = "SECONDS", env = "SENTINEL_RETRY_MAX_S",
          default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    retry_max_s: u64,
    #[command(flatten)]
    rate: LinkRate,
}

/// The cap on what this node sends on each link it dials.
#[derive(Debug, clap::Args)]
pub(super) struct LinkRate {
    /// Send at most this many bytes per second on each link this node
    /// dials (its sync session and its photos together; own entries first,
    /// entries before photos). None: no cap.
    #[arg(long = "max-rate", value_name = "BYTES_PER_S", env = "SENTINEL_MAX_RATE",
          value_parser = clap::value_parser!(u64).range(1..))]
    max_rate: Option<u64>,
}

impl LinkRate {
    fn get(&self) -> Option<std::num::NonZeroU64> {
        self.max_rate.and_then(std::num::NonZeroU64::new)
    }
}

impl BackgroundArgs {
    fn backoff(&self) -> Option<sentinel_node::background::Backoff> {
        (self.background_sync == "on").then(|| sentinel_node::background::Backoff {
            max: std::time::Duration::from_secs(self.retry_max_s),
            ..Default::default()
        })
    }
}

/// Reads and checks the rules file, and turns the rules on.
pub(super) fn enable_rules(node: &mut Node, path: &Path, json: bool) -> Result<()> {
    // At most one byte past the limit: the parser then says "too large".
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(
            std::fs::File::open(path)
                .with_context(|| format!("--rules {}: cannot read it", path.display()))?,
            sentinel_schema::rules::config::MAX_RULES_FILE_BYTES as u64 + 1,
        ),
        &mut text,
    )
    .with_context(|| format!("--rules {}: cannot read it", path.display()))?;
    let config = sentinel_schema::rules::config::parse_rules_toml(&text)
        .with_context(|| format!("--rules {}", path.display()))?;
    let n = config.rules.rules().count();
    let window_s = config.window_ms / 1000;
    node.enable_rules(config)?;
    if json {
        println!("{}", serde_json::json!({"rules": n, "window_s": window_s}));
    } else {
        println!(
            "Sensor rules: {n} from {}, window {window_s} s",
            path.display()
        );
    }
    Ok(())
}

/// `serve`'s flags.
pub(super) struct Serving<'a> {
    pub listen: &'a str,
    pub http: Option<&'a str>,
    pub ops: &'a HttpOps,
    pub limits: &'a SyncLimits,
    /// `--peer` (`SENTINEL_PEERS`): whom background sync and "sync now"
    /// dial.
    pub peers: Vec<String>,
    pub background: &'a BackgroundArgs,
}

/// The peers in `DATA_DIR/peers` (one `HOST:PORT` a line, `#` comments),
/// or `None` when there is no such file.
fn peers_file(dir: &Path) -> Result<Option<Vec<String>>> {
    let path = dir.join("peers");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect(),
    ))
}

/// `--peer` values, checked: `HOST:PORT` or `HOST`, no blanks.
fn check_peers(peers: Vec<String>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for p in peers.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        if p.chars().any(|c| c.is_whitespace() || c.is_control()) || p.starts_with(':') {
            anyhow::bail!("--peer {p:?} (SENTINEL_PEERS) is not HOST:PORT");
        }
        if !out.iter().any(|o| o == p) {
            out.push(p.to_owned());
        }
    }
    Ok(out)
}

pub(super) fn serve(node: Node, dir: &Path, serving: Serving<'_>, json: bool) -> Result<()> {
    let Serving {
        listen,
        http,
        ops,
        limits,
        peers,
        background,
    } = serving;
    let mut peers = check_peers(peers)?;
    if peers.is_empty() {
        peers = check_peers(peers_file(dir)?.unwrap_or_default())?;
    }
    let limits = limits.limits();
    let mut options = ops.options()?;
    let net = std::sync::Arc::new(
        sentinel_node::net::Net::load(dir, &node)?.with_link_rate(background.rate.get()),
    );
    options.ui = Some(ops.front.ui(sentinel_ui::UiConfig::new(
        sentinel_ui::ServerKind::Node,
        net.enrollment.identity.name.clone(),
    ))?);
    let addr: std::net::SocketAddr = listen
        .parse()
        .with_context(|| format!("--listen {listen:?} is not HOST:PORT"))?;
    let http_addr: Option<std::net::SocketAddr> = http
        .map(|a| {
            a.parse()
                .with_context(|| format!("--http {a:?} is not HOST:PORT"))
        })
        .transpose()?;
    if http_addr.is_some() {
        ops.init_logs();
    }
    let node = std::sync::Arc::new(std::sync::Mutex::new(node));
    // Sensor pushes are checked against the revocations the sync
    // sessions share.
    let ingest =
        sentinel_node::sensors::Ingest::new(net.enrollment.ca.clone(), net.revocations.clone());
    let dialer = sentinel_node::dial::Dialer::new(node.clone(), net.clone(), peers);
    let api = http_addr
        .map(|_| {
            sentinel_node::http::ApiState::new(node.clone())
                .map(|s| s.with_ingest(ingest).with_dialer(dialer.clone()))
        })
        .transpose()?;
    runtime()?.block_on(async move {
        let endpoint = sentinel_node::net::listen(&net, addr)?;
        // One poller of the log for serve's sessions and background sync.
        let local = sentinel_node::net::log_signal(&node);
        let bound = endpoint.local_addr().map_err(anyhow::Error::from)?;
        if json {
            println!("{}", serde_json::json!({"listening": bound.to_string()}));
        } else {
            println!("Listening for peers on {bound} (Ctrl-C to stop)");
        }
        if !dialer.configured().is_empty() {
            let backoff = background.backoff();
            if json {
                println!(
                    "{}",
                    serde_json::json!({"peers": dialer.configured(), "background": backoff.is_some()})
                );
            } else if backoff.is_some() {
                println!(
                    "Keeping in sync with: {} (background sync; --background-sync off to stop)",
                    dialer.configured().join(", ")
                );
            } else {
                println!("Sync now dials: {}", dialer.configured().join(", "));
            }
            if let Some(backoff) = backoff {
                dialer.start_background(backoff, local.clone(), move |peer, result| {
                    match result {
                        Ok(s) if json => println!("{}", serde_json::json!({"dialled": peer, "session": s})),
                        Ok(s) => println!(
                            "{peer} ({}): session ended: sent {}, received {}, applied {} — {}",
                            s.peer_name, s.sent, s.received, s.applied, s.closed
                        ),
                        Err(e) if json => println!(
                            "{}",
                            serde_json::json!({"dialled": peer, "error": e.to_string()})
                        ),
                        Err(e) => println!("{peer}: {e}"),
                    }
                    let _ = std::io::stdout().flush();
                });
            }
        }
        let stopping = dialer.clone();
        let api = match (http_addr, api) {
            (Some(addr), Some(state)) => {
                let listener = sentinel_node::http::bind(addr)
                    .await
                    .with_context(|| format!("--http {addr}: cannot listen"))?;
                let bound = listener.local_addr()?;
                if json {
                    println!("{}", serde_json::json!({"http": bound.to_string()}));
                } else {
                    println!("HTTP API listening on {bound} (http://{bound}/api/v1)");
                    println!("Officer's pages on http://{bound}/");
                    if !bound.ip().is_loopback() {
                        println!(
                            "Warning: the HTTP API is plain HTTP and reachable from other machines; \
                             prefer 127.0.0.1 or a TLS proxy."
                        );
                    }
                }
                tokio::spawn(sentinel_http::ops::metrics_upkeep(METRICS_UPKEEP));
                Some(tokio::spawn(sentinel_node::http::serve(
                    listener, state, options,
                )))
            }
            _ => None,
        };
        std::io::stdout().flush()?;
        let serving = sentinel_node::net::serve_signalled(node, net, endpoint, limits, local, move |s| {
            if json {
                println!("{}", serde_json::json!(s));
            } else {
                println!(
                    "{} ({}): sent {}, received {}, applied {}, quarantined {} — {}",
                    s.peer, s.peer_name, s.sent, s.received, s.applied, s.quarantined, s.closed
                );
            }
            let _ = std::io::stdout().flush();
        });
        let http = async {
            match api {
                Some(task) => match task.await {
                    Ok(r) => r.context("the HTTP API stopped"),
                    Err(e) => Err(anyhow::Error::from(e)),
                },
                None => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            r = serving => r.map_err(anyhow::Error::from),
            r = http => r,
            _ = tokio::signal::ctrl_c() => Ok(()),
        };
        stopping.stop_background();
        result
    })
}

/// `sync`: one session with each peer in turn. Succeeds (exit 0) only if
/// every peer it was given ended caught up both ways; otherwise it says,
/// per peer, what happened (standard error, or `"error"` in `--json`)
/// and exits 1. A peer that cannot be resolved or reached fails only
/// itself: the others are still tried.
pub(super) fn sync(
    node: Node,
    dir: &Path,
    peers: Vec<String>,
    rate: &LinkRate,
    json: bool,
) -> Result<ExitCode> {
    let peers = if peers.is_empty() {
        let path = dir.join("peers");
        peers_file(dir)?
            .with_context(|| format!("no peers given and none configured in {}", path.display()))?
    } else {
        peers
    };
    if peers.is_empty() {
        anyhow::bail!(
            "no peers given, and {} lists none",
            dir.join("peers").display()
        );
    }
    let net = sentinel_node::net::Net::load(dir, &node)?.with_link_rate(rate.get());
    let node = std::sync::Arc::new(std::sync::Mutex::new(node));
    let rt = runtime()?;
    let mut failed = 0usize;
    for peer in &peers {
        let bar = if json {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new_spinner()
        };
        let mut shown = Progress::new(peer);
        let result = rt
            .block_on(sentinel_node::net::resolve(peer))
            .and_then(|addr| {
                rt.block_on(sentinel_node::net::sync_as(
                    node.clone(),
                    &net,
                    addr,
                    peer,
                    |e| {
                        if let Some(line) = shown.on(e) {
                            bar.set_message(line);
                            bar.tick();
                        }
                    },
                ))
            });
        bar.finish_and_clear();
        // Caught up both ways, or not a success: a session the peer or
        // the link ended early moved some entries, not all.
        let error = match &result {
            Ok(s) if s.caught_up => None,
            Ok(s) => Some(format!(
                "the session ended before both sides caught up ({})",
                s.closed
            )),
            Err(e) => Some(e.to_string()),
        };
        if let Some(e) = &error {
            failed += 1;
            // Standard error in both modes: `--json` keeps standard output
            // to one object per peer, with the same words in `error`.
            eprintln!("error: {peer}: {e}");
        }
        if json {
            let mut line = match &result {
                Ok(s) => serde_json::to_value(s)?,
                Err(_) => serde_json::json!({"caught_up": false}),
            };
            line["address"] = serde_json::json!(peer);
            line["error"] = serde_json::json!(error);
            println!("{line}");
            continue;
        }
        if let Ok(s) = &result {
            print_summary(&node, peer, s);
        }
    }
    if failed > 0 && !json {
        eprintln!(
            "{failed} of {} peer(s) did not end caught up; run sync again, or see `sentinel-node outbox`",
            peers.len()
        );
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A long sync's progress line: entries and bytes moved, what is left,
/// and the time that takes at the recent rate.
struct Progress<'a> {
    peer: &'a str,
    started: std::time::Instant,
    eta: sentinel_sync::Eta,
    moved: (u64, u64, u64),
}

impl<'a> Progress<'a> {
    fn new(peer: &'a str) -> Self {
        Progress {
            peer,
            started: std::time::Instant::now(),
            eta: sentinel_sync::Eta::new(),
            moved: (0, 0, 0),
        }
    }

    /// The new line, after a progress event.
    fn on(&mut self, e: &sentinel_sync::SessionEvent) -> Option<String> {
        use sentinel_sync::SessionEvent;
        match e {
            SessionEvent::Progress {
                sent,
                received,
                applied,
            } => {
                self.moved = (*sent, *received, *applied);
                None
            }
            SessionEvent::Remaining {
                to_send,
                to_receive,
                bytes_sent,
                bytes_received,
            } => {
                let (sent, received, applied) = self.moved;
                let done = sent + received;
                let total = done + to_send + to_receive;
                let est = self
                    .eta
                    .sample(done, total, self.started.elapsed().as_millis() as u64);
                let left = match est.remaining_ms {
                    Some(ms) => format!(", about {} s left", ms.div_ceil(1000)),
                    None => String::new(),
                };
                Some(format!(
                    "{}: sent {sent}, received {received}, applied {applied} of {total} entries \
                     ({} kB out, {} kB in){left}",
                    self.peer,
                    bytes_sent / 1000,
                    bytes_received / 1000
                ))
            }
            _ => None,
        }
    }
}

/// What one session moved, for people.
fn print_summary(
    node: &std::sync::Arc<std::sync::Mutex<Node>>,
    peer: &str,
    s: &sentinel_node::net::Summary,
) {
    println!(
        "{peer} ({}): sent {}, received {}, applied {}, quarantined {}, forks {}; {} bytes out, {} in{}",
        s.peer_name,
        s.sent,
        s.received,
        s.applied,
        s.quarantined,
        s.forks,
        s.bytes_sent,
        s.bytes_received,
        if s.caught_up { "; in sync" } else { "" }
    );
    let m = &s.media;
    if m.wanted > 0 || m.error.is_some() {
        println!(
            "  media: {} of {} fetched ({} bytes)",
            m.fetched, m.wanted, m.bytes_received
        );
    }
    if let Some(e) = &m.error {
        println!("  media: {e}");
    }
    for f in &m.failed {
        println!("  media: {f:?}");
    }
    for b in &s.breaches {
        println!("  CHECKPOINT BREACH: {b}");
    }
    // Saved is not synced: only a hub's receipt empties the outbox.
    let waiting = node.lock().ok().map(|n| n.store().outbox_len());
    if let Some(Ok(n)) = waiting {
        println!("  awaiting a hub receipt: {n} (sentinel-node outbox)");
    }
}
