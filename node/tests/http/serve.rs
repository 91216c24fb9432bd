//! The real binary: `sentinel-node serve --http 127.0.0.1:0` on an
//! enrolled node, an account from `user add`, then sign in, report, read
//! back, export, health and metrics over a real TCP socket.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sentinel_schema::PersonRole;
use serde_json::{json, Value};

use super::{raw, Api, PASSWORD};

/// Kills the server however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn node_command(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sentinel-node"));
    cmd.arg("--data-dir").arg(dir);
    for var in [
        "SENTINEL_USER_PASSWORD",
        "SENTINEL_RATE_LIMIT_PER_S",
        "SENTINEL_RATE_LIMIT_BURST",
        "SENTINEL_CORS_ORIGINS",
        "SENTINEL_LOG_FORMAT",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Starts `serve` and waits for its "HTTP API listening on ADDR" line.
fn start(dir: &std::path::Path) -> (Server, SocketAddr) {
    let mut child = node_command(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .env("SENTINEL_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(rest) = line.strip_prefix("HTTP API listening on ") {
                let addr = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("serve prints where the HTTP API listens");
    (server, addr.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_serves_sign_in_report_read_export_health_and_metrics() {
    // An enrolled node whose hub granted `ada` the officer role.
    let api = Api::start();
    api.grant("ada", PersonRole::Officer);
    let out = node_command(api.dir())
        .args(["user", "add", "ada"])
        .env("SENTINEL_USER_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (mut server, addr) = start(api.dir());
    assert!(addr.ip().is_loopback());

    let (status, _, body) = raw(addr, "GET", "/healthz", None, None).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, _, body) = raw(addr, "GET", "/readyz", None, None).await;
    assert_eq!((status, body.as_str()), (200, "ready"));

    let (status, _, body) = raw(
        addr,
        "POST",
        "/api/v1/login",
        None,
        Some(json!({"name": "ada", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let login: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(login["role"], "officer");
    let token = login["token"].as_str().unwrap().to_owned();

    let (status, head, body) = raw(
        addr,
        "POST",
        "/api/v1/events",
        Some(&token),
        Some(
            json!({"title": "Fallen tree", "category": "storm", "severity": 2,
                    "location": {"lon": 13.4, "lat": 52.5}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["event"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("location: /api/v1/events/{id}")),
        "{head}"
    );

    let (status, _, body) = raw(
        addr,
        "GET",
        &format!("/api/v1/events/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&event["title"], &event["reported_by"]),
        (&json!("Fallen tree"), &json!("ada"))
    );

    let (status, _, body) = raw(addr, "GET", "/api/v1/export.geojson", Some(&token), None).await;
    assert_eq!(status, 200, "{body}");
    let fc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(fc["features"][0]["id"], id.as_str());

    // Signed out: 401, as problem+json.
    let (status, head, _) = raw(addr, "GET", "/api/v1/events", None, None).await;
    assert_eq!(status, 401);
    assert!(head.contains("application/problem+json"), "{head}");

    let (status, _, body) = raw(addr, "GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("sentinel_http_request_duration_seconds")
            && body.contains("route=\"/api/v1/events/{id}\""),
        "{body}"
    );

    // The request log: one JSON line per request on standard error.
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    let mut logs = String::new();
    server
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    let request_lines: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "sentinel_http::request")
        .collect();
    assert!(
        request_lines
            .iter()
            .any(|v| v["fields"]["route"] == "/api/v1/login" && v["fields"]["status"] == 200),
        "{logs}"
    );
}
