//! `serve` and `sync`: the node talking to peers over QUIC.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use sentinel_node::node::Node;

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the network runtime")
}

fn resolve(peer: &str) -> Result<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    let with_port = if peer.contains(':') {
        peer.to_string()
    } else {
        format!("{peer}:{}", sentinel_node::net::DEFAULT_PORT)
    };
    with_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve peer {peer:?}"))?
        .next()
        .with_context(|| format!("no address for peer {peer:?}"))
}

pub(super) fn serve(
    node: Node,
    dir: &Path,
    listen: &str,
    http: Option<&str>,
    json: bool,
) -> Result<()> {
    let net = std::sync::Arc::new(sentinel_node::net::Net::load(dir, &node)?);
    let addr: std::net::SocketAddr = listen
        .parse()
        .with_context(|| format!("--listen {listen:?} is not HOST:PORT"))?;
    let http_addr: Option<std::net::SocketAddr> = http
        .map(|a| {
            a.parse()
                .with_context(|| format!("--http {a:?} is not HOST:PORT"))
        })
        .transpose()?;
    let node = std::sync::Arc::new(std::sync::Mutex::new(node));
    let api = http_addr
        .map(|_| sentinel_node::http::ApiState::new(node.clone()))
        .transpose()?;
    runtime()?.block_on(async move {
        let endpoint = sentinel_node::net::listen(&net, addr)?;
        let bound = endpoint.local_addr().map_err(anyhow::Error::from)?;
        if json {
            println!("{}", serde_json::json!({"listening": bound.to_string()}));
        } else {
            println!("Listening for peers on {bound} (Ctrl-C to stop)");
        }
        let api = match (http_addr, api) {
            (Some(addr), Some(state)) => {
                let listener = sentinel_node::http::bind(addr)
                    .await
                    .with_context(|| format!("--http {addr}: cannot listen"))?;
                let bound = listener.local_addr()?;
                if json {
                    println!("{}", serde_json::json!({"http": bound.to_string()}));
                } else {
                    println!("HTTP API on http://{bound}/api/v1");
                    if !bound.ip().is_loopback() {
                        println!(
                            "Warning: the HTTP API is plain HTTP and reachable from other machines; \
                             prefer 127.0.0.1 or a TLS proxy."
                        );
                    }
                }
                Some(tokio::spawn(sentinel_node::http::serve(listener, state)))
            }
            _ => None,
        };
        std::io::stdout().flush()?;
        let serving = sentinel_node::net::serve(node, net, endpoint, move |s| {
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
        tokio::select! {
            r = serving => r.map_err(anyhow::Error::from),
            r = http => r,
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}

pub(super) fn sync(node: Node, dir: &Path, peers: Vec<String>, json: bool) -> Result<ExitCode> {
    let peers = if peers.is_empty() {
        let path = dir.join("peers");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("no peers given and none configured in {}", path.display()))?;
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    } else {
        peers
    };
    let net = sentinel_node::net::Net::load(dir, &node)?;
    let node = std::sync::Arc::new(std::sync::Mutex::new(node));
    let rt = runtime()?;
    let mut failed = false;
    for peer in &peers {
        let addr = resolve(peer)?;
        let bar = if json {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new_spinner()
        };
        let result = rt.block_on(sentinel_node::net::sync_once(
            node.clone(),
            &net,
            addr,
            |e| {
                if let sentinel_sync::SessionEvent::Progress {
                    sent,
                    received,
                    applied,
                } = e
                {
                    bar.set_message(format!(
                        "{peer}: sent {sent}, received {received}, applied {applied}"
                    ));
                    bar.tick();
                }
            },
        ));
        bar.finish_and_clear();
        match result {
            Ok(s) if json => println!("{}", serde_json::json!(s)),
            Ok(s) => {
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
            Err(e) => {
                failed = true;
                eprintln!("error: {peer}: {e}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
