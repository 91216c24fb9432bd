//! The impairing relay: a thread that lives in the router's network
//! namespace and carries every UDP datagram (QUIC is UDP and nothing
//! else) between a node's link and the hub, dropping, delaying and
//! reordering them as the link's [`Impairment`] says — what `tc qdisc …
//! netem` does to packets, for kernels built without `sch_netem`.
//!
//! Each link has a node-facing socket on the router's side of the node's
//! veth; each client address seen there gets its own socket on the
//! router's side of the hub's veth (the link's own address, so the hub's
//! per-address limits see one peer per node). The impairment applies to
//! both directions and can change while the relay runs.
//!
//! Never does: look inside a datagram, or send to any address but the
//! hub's and the node's, both inside this test's namespaces.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::UdpSocket;

use crate::fleet::Rng;

/// What a link does to each datagram, in each direction.
#[derive(Debug, Clone, Copy, Default)]
pub struct Impairment {
    /// The share of datagrams dropped (`0.3`: 30 %).
    pub loss: f64,
    /// Every datagram waits this long…
    pub delay: Duration,
    /// …plus up to this much more, drawn per datagram.
    pub jitter: Duration,
    /// The share of datagrams sent at once instead (they overtake the
    /// delayed ones: reordering, as netem's `reorder`).
    pub reorder: f64,
}

/// Datagrams a link carried and dropped, both directions together,
/// and the link's trip wire.
#[derive(Debug, Default)]
pub struct Counts {
    pub carried: AtomicU64,
    pub dropped: AtomicU64,
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
    /// Once `bytes_up` reaches this (0: never), the relay drops every
    /// datagram in both directions: a cut that lands at an exact point
    /// of a transfer, however late the test's own thread gets to run.
    stall_at: AtomicU64,
}

impl Counts {
    /// Arms the trip wire: the link goes dead once `more` further bytes
    /// have gone up.
    pub fn stall_after_up(&self, more: u64) {
        let at = self.bytes_up.load(Ordering::SeqCst) + more.max(1);
        self.stall_at.store(at, Ordering::SeqCst);
    }

    /// Whether the armed trip wire has fired.
    pub fn stalled(&self) -> bool {
        let at = self.stall_at.load(Ordering::SeqCst);
        at != 0 && self.bytes_up.load(Ordering::SeqCst) >= at
    }

    /// Disarms the trip wire: the link carries datagrams again.
    pub fn unstall(&self) {
        self.stall_at.store(0, Ordering::SeqCst);
    }
}

/// One link through the relay.
pub struct LinkSpec {
    /// Where the node sends (the router's address on the node's veth).
    pub listen: SocketAddr,
    /// The router's own address toward the hub for this link.
    pub upstream_from: std::net::IpAddr,
    /// The hub's sync address.
    pub hub: SocketAddr,
    pub impairment: Arc<Mutex<Impairment>>,
    pub counts: Arc<Counts>,
}

/// The running relay; dropping it stops the thread.
pub struct Relay {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the relay in the namespace `netns` (by name, under
/// `/run/netns`); returns once every link's socket is bound.
pub fn start(netns: &str, links: Vec<LinkSpec>, seed: u64) -> Result<Relay> {
    let ns = std::fs::File::open(format!("/run/netns/{netns}"))
        .with_context(|| format!("opening namespace {netns}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let stopping = stop.clone();
    let thread = std::thread::spawn(move || {
        // setns applies to this thread only: the test's other threads
        // stay where they are, and every socket made here is the
        // router's.
        if let Err(e) = rustix::thread::move_into_link_name_space(
            ns.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        ) {
            let _ = ready_tx.send(Err(format!("setns: {e}")));
            return;
        }
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(e.to_string()));
                return;
            }
        };
        rt.block_on(async move {
            let mut sockets = Vec::new();
            for l in &links {
                match UdpSocket::bind(l.listen).await {
                    Ok(s) => sockets.push(Arc::new(s)),
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("binding {}: {e}", l.listen)));
                        return;
                    }
                }
            }
            let _ = ready_tx.send(Ok(()));
            for (i, (l, s)) in links.into_iter().zip(sockets).enumerate() {
                tokio::spawn(link(l, s, Rng(seed ^ ((i as u64 + 1) << 32))));
            }
            while !stopping.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    });
    match ready_rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(())) => Ok(Relay {
            stop,
            thread: Some(thread),
        }),
        Ok(Err(e)) => anyhow::bail!("the relay did not start: {e}"),
        Err(_) => anyhow::bail!("the relay did not start in 20 s"),
    }
}

/// Decides a datagram's fate: `None` to drop it, else its delay.
fn fate(impairment: &Mutex<Impairment>, rng: &Mutex<Rng>) -> Option<Duration> {
    let i = *impairment.lock().ok()?;
    let mut rng = rng.lock().ok()?;
    if rng.unit() < i.loss {
        return None;
    }
    if rng.unit() < i.reorder {
        return Some(Duration::ZERO);
    }
    let extra = i.jitter.as_micros() as u64;
    Some(i.delay + Duration::from_micros(if extra > 0 { rng.between(0, extra) } else { 0 }))
}

/// Sends `data` to `to` from `socket` after its fate's delay, or never.
fn forward(socket: &Arc<UdpSocket>, data: Vec<u8>, to: SocketAddr, l: &Arc<LinkShared>, up: bool) {
    if l.counts.stalled() {
        l.counts.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let Some(delay) = fate(&l.impairment, &l.rng) else {
        l.counts.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    };
    l.counts.carried.fetch_add(1, Ordering::Relaxed);
    let bytes = if up {
        &l.counts.bytes_up
    } else {
        &l.counts.bytes_down
    };
    bytes.fetch_add(data.len() as u64, Ordering::SeqCst);
    let socket = socket.clone();
    tokio::spawn(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        // A send that fails (the link is down) is a lost datagram.
        let _ = socket.send_to(&data, to).await;
    });
}

struct LinkShared {
    impairment: Arc<Mutex<Impairment>>,
    counts: Arc<Counts>,
    rng: Mutex<Rng>,
}

/// Carries one link: datagrams from clients up to the hub, each client
/// through its own upstream socket, and the hub's answers back down.
async fn link(spec: LinkSpec, down: Arc<UdpSocket>, rng: Rng) {
    let shared = Arc::new(LinkShared {
        impairment: spec.impairment.clone(),
        counts: spec.counts.clone(),
        rng: Mutex::new(rng),
    });
    let mut upstream: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, client)) = down.recv_from(&mut buf).await else {
            // The node's veth went down: wait for it to come back.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let up = match upstream.get(&client) {
            Some(s) => s.clone(),
            None => {
                let Ok(s) = UdpSocket::bind(SocketAddr::new(spec.upstream_from, 0)).await else {
                    continue;
                };
                let s = Arc::new(s);
                upstream.insert(client, s.clone());
                let (back, to_client, l) = (s.clone(), down.clone(), shared.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65_536];
                    loop {
                        match back.recv_from(&mut buf).await {
                            Ok((n, _)) => forward(&to_client, buf[..n].to_vec(), client, &l, false),
                            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                        }
                    }
                });
                s
            }
        };
        forward(&up, buf[..n].to_vec(), spec.hub, &shared, true);
    }
}
