//! A webhook receiver for the browser tests: plain HTTP/1.1 on a
//! localhost socket (no framework: what a receiver must do is read the
//! exact bytes it was sent), every request kept with the headers a
//! receiver checks; it answers 500 while told to fail, else 204.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request the receiver was sent.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub content_type: String,
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
}

/// A webhook receiver on localhost: plain HTTP/1.1 over a socket, every
/// request kept; it answers 500 while `failing`, else 204.
pub struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
    failing: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start() -> Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let got = Arc::new(Mutex::new(Vec::new()));
        let failing = Arc::new(AtomicBool::new(false));
        let (g, f) = (got.clone(), failing.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (g, f) = (g.clone(), f.clone());
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, &g, &f).await {
                        eprintln!("receiver: {e:#}");
                    }
                });
            }
        });
        Ok(Receiver {
            addr,
            got,
            failing,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/sentinel", self.addr)
    }

    pub fn fail(&self, yes: bool) {
        self.failing.store(yes, Ordering::SeqCst);
    }

    pub fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (up to a minute: a sync, the projector, the worker's poll)
    /// until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize) -> Result<Vec<Received>> {
        let started = Instant::now();
        loop {
            let got = self.got();
            if got.len() >= n {
                return Ok(got);
            }
            ensure!(
                started.elapsed() < Duration::from_secs(60),
                "the receiver got {} requests, not {n}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Reads one request (its head, then `Content-Length` bytes of body),
/// keeps it, answers and closes.
async fn answer(
    mut stream: TcpStream,
    got: &Mutex<Vec<Received>>,
    failing: &AtomicBool,
) -> Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        ensure!(n > 0, "the request ended in its head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request = lines.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let length: usize = header("content-length")
        .parse()
        .context("a Content-Length")?;
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        ensure!(n > 0, "the body ended early");
        buf.extend_from_slice(&chunk[..n]);
    }
    got.lock().unwrap().push(Received {
        path: request,
        content_type: header("content-type"),
        id: header("sentinel-webhook-id"),
        timestamp: header("sentinel-webhook-timestamp"),
        signature: header("sentinel-webhook-signature"),
        body: buf[head_end..head_end + length].to_vec(),
    });
    let reply = if failing.load(Ordering::SeqCst) {
        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 13\r\nconnection: close\r\n\r\nreceiver down"
    } else {
        "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"
    };
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}
