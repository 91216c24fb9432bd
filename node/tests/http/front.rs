//! The node's API against slow and greedy clients, over real sockets:
//! uploads are spooled to disk as they arrive (not held in memory) and
//! capped in number, the live feed is capped in subscribers, and `serve`
//! applies the shared accept loop's connection cap and timeouts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sentinel_http::serve::ServeOptions;
use sentinel_http::testing::sse::subscribe;
use sentinel_node::http::state::UPLOAD_SPOOL_DIR;
use sentinel_node::http::{serve, ApiOptions, ApiState};
use sentinel_node::testing::eventually;
use sentinel_schema::PersonRole;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{raw, Api, JPEG};

const STEP: Duration = Duration::from_secs(15);
const BOUNDARY: &str = "spool-test-boundary";

async fn serve_with(api: &Api, options: ApiOptions) -> SocketAddr {
    let state = ApiState::new(api.node.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, state, options));
    addr
}

/// The spool files there are now, with their sizes.
fn spooled(api: &Api) -> Vec<(PathBuf, u64)> {
    let Ok(dir) = std::fs::read_dir(api.dir().join(UPLOAD_SPOOL_DIR)) else {
        return Vec::new();
    };
    dir.map(|e| {
        let e = e.unwrap();
        (e.path(), e.metadata().unwrap().len())
    })
    .collect()
}

/// An upload of a `size`-byte JPEG to `event`, begun: the headers and the
/// first `sent` bytes of the file; the connection and the rest to send.
async fn begin_upload(
    addr: SocketAddr,
    token: &str,
    event: &str,
    size: usize,
    sent: usize,
) -> (TcpStream, Vec<u8>) {
    let mut file = JPEG.to_vec();
    file.resize(size, 0xAB);
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\n\
         Content-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let head = format!(
        "POST /api/v1/events/{event}/media HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let rest = body.split_off(sent.min(body.len()));
    s.write_all(&body).await.unwrap();
    s.flush().await.unwrap();
    (s, rest)
}

async fn answer(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(STEP, s.read_to_end(&mut out))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_are_spooled_to_disk_as_they_arrive_and_capped_in_number() {
    let api = Api::start();
    api.account("ada", Some(PersonRole::Officer));
    let ada = api.login("ada").await;
    let event = api.event("ada").to_hex();
    // A spool file a crash left behind goes when the API starts.
    let spool = api.dir().join(UPLOAD_SPOOL_DIR);
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::write(spool.join("upload-left-by-a-crash"), b"partial").unwrap();
    let addr = serve_with(
        &api,
        ApiOptions {
            max_uploads: Some(2),
            ..ApiOptions::default()
        },
    )
    .await;

    // Two uploads of 8 MiB each, 2 MiB of each sent so far: what has come
    // is on disk, in a spool file of its own, while the rest is awaited.
    let size = 8 << 20;
    let (mut first, first_rest) = begin_upload(addr, &ada, &event, size, 2 << 20).await;
    let (second, _) = begin_upload(addr, &ada, &event, size, 2 << 20).await;
    eventually("both uploads spooled as they arrive", || {
        let files = spooled(&api);
        files.len() == 2 && files.iter().all(|(_, len)| *len >= 1 << 20)
    })
    .await;

    // A third, while two are taken, is refused before its body is read.
    let (mut third, _) = begin_upload(addr, &ada, &event, 1024, 0).await;
    let refused = answer(&mut third).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("urn:sentinel:problem:busy"), "{refused}");
    assert!(refused.contains("2 uploads"), "{refused}");

    // The first completes and is stored; its spool file is gone.
    first.write_all(&first_rest).await.unwrap();
    let done = answer(&mut first).await;
    assert!(done.starts_with("HTTP/1.1 201"), "{done}");
    // The second is abandoned: its spool file goes with it.
    drop(second);
    eventually("no spool file left", || spooled(&api).is_empty()).await;
    let (status, _, body) = raw(
        addr,
        "GET",
        &format!("/api/v1/events/{event}"),
        Some(&ada),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let detail: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(detail["media"][0]["size"], size, "{detail}");
    // A slot is free again.
    let (mut again, rest) = begin_upload(addr, &ada, &event, 4096, 100).await;
    again.write_all(&rest).await.unwrap();
    let done = answer(&mut again).await;
    assert!(done.starts_with("HTTP/1.1 201"), "{done}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_feed_subscriber_more_than_the_cap_gets_a_503() {
    let api = Api::start();
    api.account("ada", Some(PersonRole::Officer));
    let ada = api.login("ada").await;
    let addr = serve_with(
        &api,
        ApiOptions {
            feed_max_subscribers: Some(3),
            ..ApiOptions::default()
        },
    )
    .await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let (status, stream) = subscribe(addr, Some(&ada)).await;
        assert!(status.contains(" 200 "), "{status}");
        streams.push(stream);
    }
    let (status, _, body) = raw(addr, "GET", "/api/v1/feed", Some(&ada), None).await;
    assert_eq!(status, 503, "{body}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["type"], "urn:sentinel:problem:busy", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("3 subscribers"),
        "{problem}"
    );
    // One leaves: its place is free once the server sees it go.
    drop(streams.pop());
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let (status, stream) = subscribe(addr, Some(&ada)).await;
        if status.contains(" 200 ") {
            streams.push(stream);
            break;
        }
        assert!(status.contains(" 503 "), "{status}");
        assert!(tokio::time::Instant::now() < deadline, "no place freed");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_closes_idle_connections_and_refuses_past_its_cap() {
    let api = Api::start();
    let addr = serve_with(
        &api,
        ApiOptions {
            serve: ServeOptions {
                max_connections: 2,
                idle_timeout: Duration::from_millis(300),
                header_timeout: Duration::from_millis(300),
                ..ServeOptions::default()
            },
            ..ApiOptions::default()
        },
    )
    .await;
    // Idle after its answer: closed.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: node\r\n\r\n")
        .await
        .unwrap();
    let a = answer(&mut s).await;
    assert!(a.starts_with("HTTP/1.1 200"), "{a}");
    // Two held open fill the cap; a third is told to come back.
    let held = [
        TcpStream::connect(addr).await.unwrap(),
        TcpStream::connect(addr).await.unwrap(),
    ];
    let (status, _, body) = raw(addr, "GET", "/healthz", None, None).await;
    assert_eq!(status, 503, "{body}");
    drop(held);
}
