//! The real binary's map tiles: `serve --http … --tiles FILE` serves an
//! MBTiles file made here at `/tiles/{z}/{x}/{y}` over a real socket, and
//! a file that is not MBTiles, or an online template that is not
//! http(s), stops the start with a message naming it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{raw, Api};

/// A tile's bytes (the file says `png`; the server does not look inside).
const PNG: &[u8] = b"png-tile-bytes";

/// Kills the server however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sentinel-node"));
    cmd.arg("--data-dir").arg(dir);
    for var in [
        "SENTINEL_TILES",
        "SENTINEL_TILE_URL",
        "SENTINEL_TILE_ATTRIBUTION",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args(extra)
        .stdin(Stdio::null());
    cmd
}

/// An MBTiles file with one PNG tile at 2/1/1 (XYZ).
fn mbtiles(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE metadata (name TEXT, value TEXT);
         INSERT INTO metadata VALUES ('format', 'png'), ('attribution', 'Valley survey');
         CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER,
                             tile_data BLOB);",
    )
    .unwrap();
    // TMS row of XYZ row 1 at zoom 2: 2^2 - 1 - 1 = 2.
    conn.execute(
        "INSERT INTO tiles VALUES (2, 1, 2, ?1)",
        rusqlite::params![PNG],
    )
    .unwrap();
}

fn start(dir: &Path, extra: &[&str]) -> (Server, SocketAddr) {
    let mut child = serve(dir, extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(rest) = line.strip_prefix("HTTP API listening on ") {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("serve prints where the HTTP API listens");
    (server, addr.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_serves_the_operators_tiles() {
    let api = Api::start();
    let file = api.dir().join("region.mbtiles");
    mbtiles(&file);
    let (_server, addr) = start(api.dir(), &["--tiles", file.to_str().unwrap()]);

    let (status, head, body) = raw(addr, "GET", "/tiles/2/1/1", None, None).await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: image/png"),
        "{head}"
    );
    assert_eq!(body.as_bytes(), PNG);
    let (status, _, _) = raw(addr, "GET", "/tiles/2/1/2", None, None).await;
    assert_eq!(status, 404);
    let (status, _, body) = raw(addr, "GET", "/tiles/2/one/1", None, None).await;
    assert_eq!(status, 400);
    assert!(body.contains("`x`"), "{body}");

    let (status, _, body) = raw(addr, "GET", "/ui/config.json", None, None).await;
    assert_eq!(status, 200);
    let config: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(config["tiles"], true);
    assert_eq!(config["attribution"], "Valley survey");
}

#[test]
fn a_bad_tile_file_or_template_stops_the_start_by_name() {
    let api = Api::start();
    let not_tiles = api.dir().join("holiday.mbtiles");
    std::fs::write(&not_tiles, "a text file, not a database").unwrap();
    let cases: [(&[&str], &[&str]); 3] = [
        (
            &["--tiles", not_tiles.to_str().unwrap()],
            &["--tiles", "holiday.mbtiles"],
        ),
        (&["--tiles", "/nowhere/region.mbtiles"], &["region.mbtiles"]),
        (
            &["--tile-url", "ftp://tiles.example.org/{z}/{x}/{y}.png"],
            &["--tile-url", "http"],
        ),
    ];
    for (args, says) in cases {
        // It must refuse to start; one that serves fails after the bound.
        let out = sentinel_http::testing::output_within(
            &mut serve(api.dir(), args),
            Duration::from_secs(120),
            &format!("serve {args:?}"),
        );
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        for s in says {
            assert!(err.contains(s), "{args:?}: {err}");
        }
    }
}
