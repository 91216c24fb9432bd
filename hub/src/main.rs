//! `sentinel-hub`: the regional hub.
//!
//! `sentinel-hub [--config hub.toml] serve [--json]` loads the
//! configuration (file, then environment; see `sentinel_hub::config` and
//! `.env.example`), opens the database (running migrations) and the media
//! folder (`SENTINEL_MEDIA_DIR`, created if missing), builds TLS from the
//! hub's enrollment bundle, binds the sync port (sessions and media) and prints the
//! bound address as its first line of output (`{"listening":"ADDR"}` with
//! `--json`), then serves nodes until Ctrl-C / SIGTERM. Next to sync it
//! serves the admin read API over HTTP (`sentinel_hub::api`) on `--http
//! ADDR` (default `127.0.0.1:8080`: localhost, as the API has no
//! authentication yet) and prints that address as its second line
//! (`{"http":"ADDR"}` with `--json`).

#![forbid(unsafe_code)]

use std::future::IntoFuture;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use sentinel_certs::{Bundle, CaCert};
use sentinel_hub::config::{HubConfig, BUNDLE_ENV, CA_ENV, MEDIA_DIR_ENV};
use sentinel_hub::server::{self, HubNet};
use sentinel_hub::PgStore;
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
        /// Serve the admin read API (HTTP, no authentication yet) here.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        http: SocketAddr,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { json, http } => match run_serve(cli.config, json, http) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sentinel-hub: {e}");
                ExitCode::from(e.code)
            }
        },
    }
}

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

fn run_serve(config_file: Option<PathBuf>, json: bool, http: SocketAddr) -> Result<(), Failure> {
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(failure)?;
    runtime.block_on(async move {
        let store = PgStore::open(config.database.clone(), config.pool_size)
            .await
            .map_err(|e| failure(format!("opening the database (DATABASE_URL): {e}")))?;
        let media = MediaStore::open(&config.media_dir).map_err(|e| {
            config_error(format!(
                "{MEDIA_DIR_ENV} = {}: cannot open the media folder: {e}",
                config.media_dir.display()
            ))
        })?;
        let net = HubNet::for_store(enrollment, &store, config.freshness)
            .await
            .map_err(failure)?
            .with_media(media);
        let net = match config.checkpoint_every {
            Some(every) => net.with_checkpoints(every),
            None => net,
        };
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
                    serde_json::json!({ "http": http_addr.to_string() }).to_string(),
                )
            } else {
                (
                    format!("listening on {addr}"),
                    format!("admin API on http://{http_addr}"),
                )
            };
            let _ = writeln!(out, "{line}");
            let _ = writeln!(out, "{http_line}");
            let _ = out.flush();
        }
        let http_serving =
            axum::serve(http_listener, sentinel_hub::api::router(store.clone())).into_future();
        let serving = server::serve(
            store,
            Arc::new(net),
            endpoint.clone(),
            config.max_sessions,
            |_| {},
        );
        tokio::select! {
            r = serving => r.map_err(failure)?,
            r = http_serving => r.map_err(|e| failure(format!("admin API: {e}")))?,
            _ = shutdown() => {
                endpoint.close(quinn::VarInt::from_u32(0), b"hub shutting down");
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    endpoint.wait_idle(),
                )
                .await;
            }
        }
        Ok(())
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}
