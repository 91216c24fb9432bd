//! The accept loop (`sentinel_http::serve`) over real sockets, plain HTTP:
//! a client sending its headers byte by byte, one sending a body slowly,
//! one idling after its answer, and one connection more than the cap are
//! each cut off or refused within their bound, while the loop goes on
//! serving everyone else. (The same loop over TLS is tested with the
//! hub's HTTPS, `hub/tests/https.rs`.) Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use sentinel_http::body::json_object;
use sentinel_http::serve::{serve, ServeOptions};
use sentinel_http::Problem;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Longest any one step may take before the test calls it hung.
const STEP: Duration = Duration::from_secs(10);
/// The bounds under test: short, so the tests are quick; what they wait
/// for is an event (a closed socket, an answer), never a sleep.
const SHORT: Duration = Duration::from_millis(300);

async fn echo(headers: HeaderMap, body: Body) -> Result<Json<Value>, Problem> {
    Ok(Json(Value::Object(
        json_object(&headers, body, &["x"]).await?,
    )))
}

async fn whoami(ConnectInfo(client): ConnectInfo<SocketAddr>) -> String {
    client.to_string()
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(options: ServeOptions) -> Server {
        let app = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/whoami", get(whoami))
            .route("/echo", post(echo));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, None, app, options, async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// `GET path` on a new connection: the whole answer.
    async fn get(&self, path: &str) -> String {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        read_all(&mut s).await
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        timeout(STEP, self.task).await.unwrap().unwrap();
    }
}

/// Everything the server sends until it closes, within [`STEP`]; a reset
/// connection ends it too.
async fn read_all(s: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match timeout(STEP, s.read(&mut buf))
            .await
            .expect("the server answers or closes")
        {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn options() -> ServeOptions {
    ServeOptions {
        header_timeout: SHORT,
        body_timeout: SHORT,
        idle_timeout: SHORT,
        ..ServeOptions::default()
    }
}

#[tokio::test]
async fn headers_sent_byte_by_byte_are_cut_off_and_others_are_served() {
    let server = Server::start(options()).await;
    // Long headers, a byte every 20 ms: 6 s in all, far past the bound.
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(250)
    );
    let s = TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = s.into_split();
    let trickle = tokio::spawn(async move {
        for byte in request.bytes() {
            if writer.write_all(&[byte]).await.is_err() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    });
    // Meanwhile, others are served.
    assert!(server.get("/healthz").await.starts_with("HTTP/1.1 200"));
    let mut answer = Vec::new();
    let closed = timeout(STEP, reader.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "the slow client is cut off");
    assert!(
        !trickle.is_finished(),
        "cut off before its headers were complete"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.contains(" 200 "), "never answered: {answer}");
    trickle.abort();
    server.stop().await;
}

#[tokio::test]
async fn a_body_that_stalls_gets_a_408_and_the_connection_closes() {
    let server = Server::start(options()).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    // Headers promise 20 bytes; 5 come, then nothing.
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
          Content-Length: 20\r\n\r\n{\"x\":",
    )
    .await
    .unwrap();
    let answer = read_all(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("urn:sentinel:problem:timeout"), "{answer}");
    // A body that keeps coming, slower than the bound between pieces
    // allows in all but faster than it per piece, is cut at the deadline.
    let server2 = Server::start(ServeOptions {
        body_timeout: Duration::from_secs(5),
        body_deadline: SHORT,
        ..options()
    })
    .await;
    let s = TcpStream::connect(server2.addr).await.unwrap();
    let (mut reader, mut writer) = s.into_split();
    let trickle = tokio::spawn(async move {
        writer
            .write_all(
                b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
                  Content-Length: 2000\r\n\r\n",
            )
            .await
            .unwrap();
        for _ in 0..2000 {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut answer = Vec::new();
    timeout(STEP, reader.read_to_end(&mut answer))
        .await
        .expect("cut off at the deadline")
        .ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    trickle.abort();
    // A body that comes in time is answered.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
          Content-Length: 7\r\nConnection: close\r\n\r\n{\"x\":1}",
    )
    .await
    .unwrap();
    let answer = read_all(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.stop().await;
    server2.stop().await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_its_answer() {
    let server = Server::start(ServeOptions {
        // The header bound would close it too; the idle bound is tested.
        header_timeout: STEP * 3,
        ..options()
    })
    .await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /whoami HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    // The answer (keep-alive), then the server closes the idle connection.
    let answer = read_all(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with(&s.local_addr().unwrap().to_string()),
        "the router sees the client's address: {answer}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_connection_over_the_cap_gets_a_503_until_one_closes() {
    let server = Server::start(ServeOptions {
        max_connections: 3,
        header_timeout: STEP * 3,
        idle_timeout: STEP * 3,
        ..options()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let answer = server.get("/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("too many connections"), "{answer}");
    // One leaves: a slot frees once the server has seen it go.
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let answer = server.get("/healthz").await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(tokio::time::Instant::now() < deadline, "no slot freed");
    }
    drop(held);
    server.stop().await;
}
