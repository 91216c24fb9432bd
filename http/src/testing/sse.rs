//! The live feed (`GET /api/v1/feed`) as a client reads it: over a real
//! socket, as HTTP/1.1, a Server-Sent Events stream read line by line.
//!
//! A subscriber is a plain TCP stream, not an HTTP client library, so a
//! test can hold a thousand of them and see each line as it arrives.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Opens `GET /api/v1/feed` on the server at `addr`, signed in with
/// `token` if given; returns the status line and the reader once the
/// response headers are in.
pub async fn subscribe(addr: SocketAddr, token: Option<&str>) -> (String, BufReader<TcpStream>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    s.write_all(
        format!(
            "GET /api/v1/feed HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{auth}\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).await.unwrap();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    (status, r)
}

/// Reads the stream until an `event` message arrives; returns its data,
/// as JSON.
pub async fn next_event(r: &mut BufReader<TcpStream>) -> Value {
    let mut is_event = false;
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).await.unwrap() > 0, "stream ended");
        let line = line.trim_end();
        if line.ends_with("event: event") {
            is_event = true;
        } else if is_event {
            if let Some((_, data)) = line.split_once("data: ") {
                return serde_json::from_str(data).unwrap();
            }
        }
    }
}

/// The next `event` message of every stream, read all at once, each
/// within `wait` (else the test fails); prints how long the slowest took.
pub async fn next_event_on_each(
    streams: &mut [BufReader<TcpStream>],
    wait: Duration,
) -> Vec<Value> {
    let started = Instant::now();
    let reads = streams.iter_mut().map(|r| async move {
        tokio::time::timeout(wait, next_event(r))
            .await
            .expect("every subscriber receives the change")
    });
    let got = futures_util::future::join_all(reads).await;
    eprintln!(
        "{} subscribers received the change within {:.0?}",
        got.len(),
        started.elapsed()
    );
    got
}

/// Reads the stream until the server ends it (the last chunk of a chunked
/// answer, or the connection closing), skipping whatever messages come
/// before; returns the `event` messages read on the way.
pub async fn until_end(r: &mut BufReader<TcpStream>) -> Vec<Value> {
    let mut events = Vec::new();
    let mut is_event = false;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 || line == "0\r\n" {
            return events;
        }
        let line = line.trim_end();
        if line.ends_with("event: event") {
            is_event = true;
        } else if is_event {
            if let Some((_, data)) = line.split_once("data: ") {
                events.push(serde_json::from_str(data).unwrap());
                is_event = false;
            }
        }
    }
}
