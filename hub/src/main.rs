//! `sentinel-hub`: the regional hub.
//!
//! `sentinel-hub [--config hub.toml] serve [--json]` loads the
//! configuration (file, then environment; see `sentinel_hub::config` and
//! `.env.example`), opens the database (running migrations) and the media
//! folder (`SENTINEL_MEDIA_DIR`, created if missing), builds TLS from the
//! hub's enrollment bundle, binds the sync port (sessions and media) and prints the
//! bound address as its first line of output (`{"listening":"ADDR"}` with
//! `--json`), then serves nodes until Ctrl-C / SIGTERM. Next to sync it
//! serves the HTTP API (`sentinel_hub::api`, bearer tokens from
//! `/api/v1/login`) on `--http ADDR` (default `127.0.0.1:8080`) and prints
//! that address as its second line (`{"http":"ADDR","scheme":"https"}` with
//! `--json`; `"http"` without TLS). With `SENTINEL_HTTPS_CERT` and `SENTINEL_HTTPS_KEY` the API
//! is served over TLS (`sentinel_hub::https`); without them it is plain
//! HTTP, and a warning is logged when `--http` is not a loopback address.
//!
//! Logs go to standard error through `tracing` (`log_format` text or json,
//! filtered by `RUST_LOG`, default `info`), one line per HTTP request among
//! them. `/metrics` on the HTTP address serves Prometheus metrics; the API
//! applies the configured rate limit and CORS origins
//! (`sentinel_hub::api::router_with`).
//!
//! `sentinel-hub user add NAME --role admin` creates an account (the first
//! admin comes from here): the password is read from
//! `SENTINEL_USER_PASSWORD` or, when unset, asked for on the terminal with
//! echo off (twice), or the first line of standard input when it is not a
//! terminal — never a default. The role is a `role_grant` entry the hub
//! signs. `user reset-password NAME` sets a new password the same way
//! (revoking the account's tokens, lifting a lockout), `user disable` and
//! `user enable` switch an account off and on, and `user purge-tokens`
//! deletes expired and revoked tokens (which `serve` also does hourly).
//!
//! `sentinel-hub audit bundle --from T --to T [--bbox W,S,E,N] --out FILE`
//! writes a signed audit bundle (`sentinel_hub::audit::bundle`) that
//! `sentinel-node audit verify --bundle FILE --ca CA.pem` checks.
//! `backup --out DIR` and `restore --from DIR`: `sentinel_hub::backup`.
//!
//! With `SENTINEL_AUDIT_STREAM` set, `serve` also writes the audit stream
//! (`sentinel_hub::audit`): a JSON line per verdict on an entry, to a
//! file, standard output (after the two lines above) or syslog.
//! `serve` also runs the webhook delivery worker
//! (`sentinel_hub::webhooks::worker`; `webhook_max_attempts` attempts
//! before dead-letter).

#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use sentinel_certs::{Bundle, CaCert, Enrollment};
use sentinel_hub::api::{Api, ApiOptions, ApiState, Feed, HubBackend};
use sentinel_hub::audit::{Follower, Sink};
use sentinel_hub::config::audit::AUDIT_STREAM_ENV;
use sentinel_hub::config::map::TILES_ENV;
use sentinel_hub::config::{
    HubConfig, LogFormat, BUNDLE_ENV, CA_ENV, HTTPS_CERT_ENV, HTTPS_KEY_ENV, MEDIA_DIR_ENV,
};
use sentinel_hub::own::OwnChain;
use sentinel_hub::sensors::SensorRules;
use sentinel_hub::server::{self, HubNet};
use sentinel_hub::webhooks::worker::{Policy, Worker};
use sentinel_hub::{now_ms, PgStore};
use sentinel_sync::blobs::MediaStore;

#[derive(Parser)]
#[command(name = "sentinel-hub", version, about = "Sentinel's regional hub")]
struct Cli {
    /// The configuration file (TOML); the environment overrides it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Accept sync sessions from nodes until interrupted.
    Serve {
        /// Print machine-readable output (JSON lines).
        #[arg(long)]
        json: bool,
        /// Serve the HTTP API here (HTTPS when SENTINEL_HTTPS_CERT and
        /// SENTINEL_HTTPS_KEY are set).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        #[command(flatten)]
        llm: sentinel_hub::config::llm::LlmArgs,
    },
    /// People who sign in to the HTTP API.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The audit trail for auditors.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    #[command(flatten)]
    Backup(sentinel_hub::backup::cli::Command),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Write a signed audit bundle: the entries whose HLC time is from
    /// --from up to (not including) --to, with what verifies them holding
    /// only the CA certificate (`sentinel-node audit verify --bundle`).
    Bundle {
        /// RFC 3339, e.g. 2026-12-01T00:00:00Z.
        #[arg(long, value_name = "RFC3339")]
        from: String,
        #[arg(long, value_name = "RFC3339")]
        to: String,
        /// Only entries about events located in this box (degrees).
        #[arg(long, value_name = "W,S,E,N")]
        bbox: Option<String>,
        /// The bundle file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account; its password comes from SENTINEL_USER_PASSWORD
    /// or the first line of standard input.
    Add {
        name: String,
        /// admin, officer or public.
        #[arg(long)]
        role: String,
    },
    /// Set an account's password (from SENTINEL_USER_PASSWORD, else asked
    /// on the terminal without echo, else the first line of standard
    /// input); revokes its tokens and lifts a lockout.
    ResetPassword { name: String },
    /// Disable an account and revoke its tokens.
    Disable { name: String },
    /// Let a disabled account sign in again (its failed logins forgotten).
    Enable { name: String },
    /// Delete expired and revoked tokens (`serve` does it every hour).
    PurgeTokens,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Backup(c) => return sentinel_hub::backup::cli::run(cli.config, c),
        Command::Serve { json, http, llm } => run_serve(cli.config, json, http, llm),
        Command::User {
            command: UserCommand::Add { name, role },
        } => add_user(cli.config, &name, &role),
        Command::User { command } => account(cli.config, command),
        Command::Audit {
            command:
                AuditCommand::Bundle {
                    from,
                    to,
                    bbox,
                    out,
                },
        } => audit_bundle(cli.config, &from, &to, bbox, &out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sentinel-hub: {e}");
            ExitCode::from(e.code)
        }
    }
}

/// The configuration and the hub's identity, checked.
fn load(config_file: Option<PathBuf>) -> Result<(HubConfig, Enrollment), Failure> {
    let config = HubConfig::load(config_file.as_deref()).map_err(config_error)?;
    let enrollment = Bundle::open(&config.bundle, &config.bundle_password).map_err(|e| {
        config_error(format!(
            "{BUNDLE_ENV} = {}: cannot open the bundle: {e}",
            config.bundle.display()
        ))
    })?;
    if let Some(ca_path) = &config.ca {
        let ca = CaCert::load(ca_path)
            .map_err(|e| config_error(format!("{CA_ENV} = {}: {e}", ca_path.display())))?;
        if ca.der() != enrollment.ca.der() {
            return Err(config_error(format!(
                "{BUNDLE_ENV} = {} was issued by the CA \"{}\", not by {CA_ENV} = {} (\"{}\")",
                config.bundle.display(),
                enrollment.ca.name(),
                ca_path.display(),
                ca.name()
            )));
        }
    }
    Ok((config, enrollment))
}

/// The hub's runtime: multi-threaded (the sync store blocks in place).
fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(failure)
}

/// Opens the database named by `DATABASE_URL`, running migrations.
async fn open_store(config: &HubConfig) -> Result<PgStore, Failure> {
    let store = PgStore::open(config.database.clone(), config.pool_size)
        .await
        .map_err(|e| failure(format!("opening the database (DATABASE_URL): {e}")))?;
    store.set_evidence_quota(config.evidence_quota_mb.saturating_mul(1 << 20));
    Ok(store)
}

/// `user add NAME --role ROLE`.
fn add_user(config_file: Option<PathBuf>, name: &str, role: &str) -> Result<(), Failure> {
    let role = sentinel_schema::access::parse_role(role)
        .filter(|r| *r != sentinel_schema::PersonRole::None)
        .ok_or_else(|| usage(format!("--role {role:?}: one of admin, officer, public")))?;
    sentinel_hub::people::check_name(name).map_err(usage)?;
    let hash = new_hash()?;
    let (config, enrollment) = load(config_file)?;
    runtime()?.block_on(async move {
        let store = open_store(&config).await?;
        let now = now_ms();
        if !store
            .create_account(name, &hash, now)
            .await
            .map_err(failure)?
        {
            return Err(usage(format!("an account {name:?} exists already")));
        }
        let own = OwnChain::new(store, enrollment, now)
            .await
            .map_err(failure)?;
        let entry =
            sentinel_hub::people::grant_role(&own, name, role, "sentinel-hub user add", now)
                .await
                .map_err(failure)?;
        println!(
            "account {name} created, role {} granted in entry {} (seq {})",
            sentinel_schema::access::role_name(role),
            entry.id(),
            entry.seq()
        );
        Ok(())
    })
}

/// A new password's hash, the password from [`USER_PASSWORD_ENV`], the
/// terminal (no echo) or standard input.
fn new_hash() -> Result<String, Failure> {
    let password = sentinel_http::people::new_password(USER_PASSWORD_ENV).map_err(usage)?;
    sentinel_hub::people::hash_password(&password)
        .map_err(|e| usage(format!("{e} (from {USER_PASSWORD_ENV} or standard input)")))
}

/// `user reset-password`, `disable`, `enable`, `purge-tokens`.
fn account(config_file: Option<PathBuf>, command: UserCommand) -> Result<(), Failure> {
    let hash = match &command {
        UserCommand::ResetPassword { .. } => Some(new_hash()?),
        _ => None,
    };
    let (config, _) = load(config_file)?;
    runtime()?.block_on(async move {
        let store = open_store(&config).await?;
        let (done, name) = match &command {
            UserCommand::ResetPassword { name } => {
                let hash = hash.unwrap_or_default();
                let done = store.set_password(name, &hash, None).await;
                (done, name)
            }
            UserCommand::Disable { name } => (store.disable_account(name).await, name),
            UserCommand::Enable { name } => (store.enable_account(name).await, name),
            UserCommand::Add { .. } | UserCommand::PurgeTokens => {
                let n = store.purge_tokens(now_ms()).await.map_err(failure)?;
                println!("{n} expired or revoked tokens deleted");
                return Ok(());
            }
        };
        if !done.map_err(failure)? {
            return Err(usage(format!("no account {name:?}")));
        }
        let what = match command {
            UserCommand::ResetPassword { .. } => "has a new password; its tokens are revoked",
            UserCommand::Disable { .. } => "is disabled; its tokens are revoked",
            _ => "is enabled",
        };
        println!("account {name} {what}");
        Ok(())
    })
}

/// `audit bundle`: writes the signed bundle, then says what it holds.
fn audit_bundle(
    config_file: Option<PathBuf>,
    from: &str,
    to: &str,
    bbox: Option<String>,
    out: &std::path::Path,
) -> Result<(), Failure> {
    use sentinel_hub::audit::bundle::{write_bundle, BundleRequest};
    let request = BundleRequest::parse(from, to, bbox).map_err(usage)?;
    let (config, enrollment) = load(config_file)?;
    runtime()?.block_on(async move {
        let store = open_store(&config).await?;
        let (bytes, summary) = write_bundle(&store, &enrollment, &request, now_ms())
            .await
            .map_err(failure)?;
        let written = std::fs::File::create(out).and_then(|mut f| {
            f.write_all(&bytes)?;
            f.sync_all()
        });
        written.map_err(|e| failure(format!("writing {}: {e}", out.display())))?;
        println!("wrote {}: {summary}", out.display());
        Ok(())
    })
}

/// Bad input on the command line: exit code 2.
fn usage(message: impl std::fmt::Display) -> Failure {
    Failure {
        message: message.to_string(),
        code: 2,
    }
}

/// Where `user add` reads the password from, when set.
const USER_PASSWORD_ENV: &str = "SENTINEL_USER_PASSWORD";

struct Failure {
    message: String,
    code: u8,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A configuration problem: exit code 2.
fn config_error(message: impl std::fmt::Display) -> Failure {
    Failure {
        message: format!("configuration: {message}"),
        code: 2,
    }
}

/// Anything else: exit code 1.
fn failure(message: impl std::fmt::Display) -> Failure {
    Failure {
        message: message.to_string(),
        code: 1,
    }
}

/// How often histogram samples are folded into their buckets.
const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// `tracing` to standard error, as `format` says, filtered by `RUST_LOG`
/// (default `info`).
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Only fails if a subscriber is set already; keep that one.
    let _ = match format {
        LogFormat::Text => logs.try_init(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

fn run_serve(
    config_file: Option<PathBuf>,
    json: bool,
    http: SocketAddr,
    llm: sentinel_hub::config::llm::LlmArgs,
) -> Result<(), Failure> {
    let (config, enrollment) = load(config_file)?;
    let llm = llm
        .llm()
        .map_err(|e| config_error(format!("--llm-url, --llm-timeout: {e}")))?;
    let hub_name = enrollment.identity.name.clone();
    // Read before anything starts, so a bad file stops the hub at once.
    let tls = match &config.https {
        Some(files) => Some(
            sentinel_hub::https::server_config(&files.cert, &files.key).map_err(|e| {
                config_error(format!("HTTPS ({HTTPS_CERT_ENV}, {HTTPS_KEY_ENV}): {e}"))
            })?,
        ),
        None => None,
    };
    let rules = match &config.rules_file {
        Some(path) => Some(sentinel_hub::config::load_rules(path).map_err(config_error)?),
        None => None,
    };
    let ui = config
        .map
        .ui_config(sentinel_ui::UiConfig::new(
            sentinel_ui::ServerKind::Hub,
            hub_name.clone(),
        ))
        .map_err(|e| config_error(format!("{TILES_ENV}: {e}")))?;
    let audit =
        Sink::open(&config.audit).map_err(|e| config_error(format!("{AUDIT_STREAM_ENV}: {e}")))?;
    let (hub_author, ca) = (enrollment.identity.author, enrollment.ca.clone());
    init_logs(config.log_format);
    if let Err(e) = sentinel_http::ops::metrics() {
        tracing::warn!("metrics are off: {e}");
    }
    if tls.is_none() && !http.ip().is_loopback() {
        tracing::warn!(
            %http,
            "the HTTP API is served without TLS on a non-loopback address: passwords and \
             tokens cross the network in clear; set {HTTPS_CERT_ENV} and {HTTPS_KEY_ENV}, \
             or keep --http on localhost behind a TLS proxy"
        );
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    runtime()?.block_on(async move {
        let stop = shutdown();
        let store = open_store(&config).await?;
        let media = MediaStore::open(&config.media_dir).map_err(|e| {
            config_error(format!(
                "{MEDIA_DIR_ENV} = {}: cannot open the media folder: {e}",
                config.media_dir.display()
            ))
        })?;
        let own = Arc::new(
            OwnChain::new(store.clone(), enrollment.clone(), now_ms())
                .await
                .map_err(failure)?,
        );
        let net = HubNet::for_store(enrollment, &store, config.freshness)
            .await
            .map_err(failure)?
            .with_media(media)
            .with_limits(config.sync_limits);
        let net = match config.checkpoint_every {
            Some(every) => net.with_checkpoints(own.clone(), every),
            None => net.with_own_chain(own.clone()),
        };
        let mut net = net;
        let mut sensors = net.sensor_ingest(store.clone());
        if let Some(rules) = rules {
            // One rule state for both ways a sensor reaches the hub: HTTP
            // pushes and sync sessions of its own.
            let rules = Arc::new(
                SensorRules::from_config(rules, own.clone())
                    .await
                    .map_err(failure)?,
            );
            sensors = sensors.with_rules(rules.clone());
            net = net.with_sensor_rules(rules);
        }
        let backend =
            HubBackend::new(store.clone(), Some(own.author())).with_sensors(Arc::new(sensors));
        let api = Api::new(Arc::new(backend), Feed::new());
        // Each event the projector writes reaches the live feed.
        tokio::spawn(sentinel_hub::api::live::follow(api.clone(), net.changes()));
        let mut state = ApiState::with_api(api, store.clone(), Some(own));
        if let Some(media) = net.media.clone() {
            state = state.with_media(media);
        }
        let endpoint = server::listen(&net, config.listen).map_err(|e| {
            failure(format!(
                "listening on {} (SENTINEL_LISTEN): {e}",
                config.listen
            ))
        })?;
        let addr = endpoint.local_addr().map_err(failure)?;
        let http_listener = tokio::net::TcpListener::bind(http)
            .await
            .map_err(|e| failure(format!("listening on {http} (--http): {e}")))?;
        let http_addr = http_listener.local_addr().map_err(failure)?;
        {
            let mut out = std::io::stdout().lock();
            let (line, http_line) = if json {
                (
                    serde_json::json!({ "listening": addr.to_string() }).to_string(),
                    serde_json::json!({ "http": http_addr.to_string(), "scheme": scheme })
                        .to_string(),
                )
            } else {
                (
                    format!("listening on {addr}"),
                    format!("admin API on {scheme}://{http_addr}"),
                )
            };
            let _ = writeln!(out, "{line}");
            let _ = writeln!(out, "{http_line}");
            let _ = out.flush();
        }
        // After the lines above, which a stream to stdout must not precede.
        if let Some(sink) = audit {
            let follower = Follower::new(store.clone(), sink, hub_author, ca);
            tokio::spawn(follower.run(sentinel_hub::audit::POLL));
        }
        tokio::spawn(sentinel_http::ops::metrics_upkeep(METRICS_UPKEEP));
        tokio::spawn(sentinel_hub::people::purge_tokens(store.clone()));
        // Webhook deliveries, from the outbox the projector fills.
        let policy = Policy {
            max_attempts: config.webhook_max_attempts,
            ..Policy::default()
        };
        let webhooks = Worker::new(store.clone(), policy).map_err(failure)?;
        Arc::new(webhooks).spawn(sentinel_http::clock::Clock::system());
        let options = ApiOptions {
            rate_limit: config.rate_limit,
            cors_origins: config.cors_origins.clone(),
            serve: config.http.serve,
            login_limit: config.http.login_limit,
            trusted_proxies: config.http.trusted_proxies.clone(),
            feed_max_subscribers: Some(config.http.feed_max_subscribers),
            ui: Some(ui),
            llm,
        };
        let app = sentinel_hub::api::router_with(state, &options);
        // One accept loop, plain or TLS (`sentinel_http::serve`): it stops
        // accepting when told to and lets open requests finish; it gives
        // each request the client's address (connect info), which the rate
        // limit and the request log need.
        let (stop_http, mut stop_rx) = tokio::sync::watch::channel(());
        let stopped = async move {
            let _ = stop_rx.changed().await;
        };
        let mut http_serving = tokio::spawn(sentinel_http::serve::serve(
            http_listener,
            tls,
            app,
            config.http.serve,
            stopped,
        ));
        let serving = server::serve(
            store,
            Arc::new(net),
            endpoint.clone(),
            config.max_sessions,
            |_| {},
        );
        tokio::select! {
            r = serving => r.map_err(failure)?,
            r = &mut http_serving => r.map_err(|e| failure(format!("admin API: {e}")))?,
            _ = stop => {
                let _ = stop_http.send(());
                endpoint.close(quinn::VarInt::from_u32(0), b"hub shutting down");
                // Open sessions and requests get a few seconds; a live
                // feed would otherwise hold the API open for good.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                    endpoint.wait_idle().await;
                    let _ = (&mut http_serving).await;
                })
                .await;
            }
        }
        Ok(())
    })
}

/// Ctrl-C or SIGTERM. The handlers are installed when this is called,
/// not when the future is first polled, so a signal that comes as soon as
/// the hub has said where it listens is not lost (call it before that).
fn shutdown() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        if let (Ok(mut int), Ok(mut term)) = signals {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
