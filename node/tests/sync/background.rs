//! Background sync with the real binary: `serve --peer` keeps its peer in
//! sync with no one acting — an event written on either side (by another
//! `sentinel-node` command) reaches the other — and when the peer is
//! killed and restarted on the same address, the link learns it from the
//! peer's stateless reset (not from an idle timeout) and comes back live
//! by itself. `stats` shows each link's state. And one-shot `sync` says
//! the truth: it exits non-zero unless every peer it was given ended
//! caught up, naming each.

use super::*;

const BIN: &str = env!("CARGO_BIN_EXE_sentinel-node");

/// A child process killed (SIGKILL) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn node_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(dir)
        .arg("--json")
        .env("SENTINEL_ACTOR", "officer.ada")
        .env_remove("SENTINEL_PEERS")
        .env_remove("SENTINEL_BACKGROUND_SYNC");
    cmd
}

/// A loopback UDP port free right now (for a peer restarted on the same
/// address).
fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `serve` with `args`, and its standard output as lines (read on a
/// thread, so the server never blocks on a full pipe).
fn serve(dir: &Path, args: &[&str]) -> (Proc, std::sync::mpsc::Receiver<String>) {
    let mut child = node_cmd(dir)
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (Proc(child), rx)
}

/// The next line of `lines` that satisfies `want`, within [`HANG`].
fn line_where(
    lines: &std::sync::mpsc::Receiver<String>,
    what: &str,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + HANG;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no line with {what} within {HANG:?}"));
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            if want(&v) {
                return v;
            }
        }
    }
}

fn run_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = node_cmd(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Polls `stats --json` on `dir` until `done` holds, within [`HANG`].
fn stats_until(
    dir: &Path,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + HANG;
    loop {
        let s = run_json(dir, &["stats"]);
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the node at `dir` shows an event titled `title`.
fn holds(dir: &Path, title: &str) -> bool {
    let page = run_json(dir, &["list"]);
    page.to_string().contains(title)
}

fn report(dir: &Path, title: &str) {
    run_json(
        dir,
        &[
            "report",
            "--title",
            title,
            "--category",
            "flood",
            "--severity",
            "3",
            "--lon",
            "13.4",
            "--lat",
            "52.5",
        ],
    );
}

fn wait_for(dir: &Path, title: &str) {
    let deadline = Instant::now() + HANG;
    while !holds(dir, title) {
        assert!(
            Instant::now() < deadline,
            "{title:?} never reached {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn serve_keeps_its_peer_in_sync_and_finds_it_again_after_a_restart() {
    let _t = timed("background_sync_and_restart");
    let ca = deployment("background CA", 80);
    let Peer { dir: a, .. } = Peer::new(&ca, "node-a", 81);
    let Peer { dir: b, .. } = Peer::new(&ca, "node-b", 82);
    let b_addr = format!("127.0.0.1:{}", free_port());

    let (b_proc, _b_lines) = serve(b.path(), &["--listen", &b_addr]);
    let (_a_proc, a_lines) = serve(
        a.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--peer",
            &b_addr,
            "--retry-max",
            "2",
        ],
    );
    let started = line_where(&a_lines, "the peers line", |v| v.get("peers").is_some());
    assert_eq!(started["background"], true, "{started}");

    // Written on A by another command while A serves: no one syncs.
    report(a.path(), "Flooded underpass");
    wait_for(b.path(), "Flooded underpass");
    // And the other way, through the same live session.
    report(b.path(), "Bridge closed");
    wait_for(a.path(), "Bridge closed");
    let s = stats_until(a.path(), "a live link", |s| {
        s["links"][0]["state"] == "live"
    });
    let link = &s["links"][0];
    assert_eq!(link["address"], b_addr.as_str(), "{s}");
    assert_eq!(link["name"], "node-b", "{s}");
    assert!(link["last_success_ms"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(link["failures"], 0, "{s}");

    // B dies and comes back on the same address.
    drop(b_proc);
    let (_b_again, _) = serve(b.path(), &["--listen", &b_addr]);
    // A learns it from B's stateless reset (B's key derives the reset
    // key), not from waiting out the idle timeout.
    let ended = line_where(&a_lines, "the broken session's end", |v| {
        v.get("dialled").is_some()
    });
    let error = ended["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("reset"),
        "the session did not end by a reset: {ended}"
    );
    // Back to live by itself, and syncing: B writes, A receives.
    report(b.path(), "Power restored");
    wait_for(a.path(), "Power restored");
    stats_until(a.path(), "the link live again", |s| {
        s["links"][0]["state"] == "live"
    });
}

#[test]
fn a_peer_that_is_down_is_retried_with_backoff_and_its_error_shown() {
    let _t = timed("background_peer_down");
    let ca = deployment("background CA", 83);
    let Peer { dir: a, .. } = Peer::new(&ca, "node-a", 84);
    let down = format!("127.0.0.1:{}", free_port());
    let (_a, _lines) = serve(
        a.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--peer",
            &down,
            "--retry-max",
            "1",
        ],
    );
    let s = stats_until(a.path(), "two failures in a row", |s| {
        s["links"][0]["failures"].as_u64().unwrap_or(0) >= 2
    });
    let link = &s["links"][0];
    assert!(
        link["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{s}"
    );
    assert!(link["last_success_ms"].is_null(), "{s}");
    assert!(
        ["connecting", "waiting"].contains(&link["state"].as_str().unwrap()),
        "{s}"
    );
}

#[test]
fn sync_exits_non_zero_unless_every_peer_caught_up_and_names_each() {
    let _t = timed("sync_exit_codes");
    let ca = deployment("background CA", 86);
    let Peer { dir: a, .. } = Peer::new(&ca, "node-a", 87);
    let Peer { dir: b, .. } = Peer::new(&ca, "node-b", 88);
    let b_addr = format!("127.0.0.1:{}", free_port());
    let (_b, _) = serve(b.path(), &["--listen", &b_addr]);
    let down = format!("127.0.0.1:{}", free_port());

    // The live peer alone: success, caught up.
    let deadline = Instant::now() + HANG;
    let ok = loop {
        let out = node_cmd(a.path()).args(["sync", &b_addr]).output().unwrap();
        // `serve` may still be binding its port: retry until it answers.
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(line["caught_up"], true, "{line}");
    assert!(line["error"].is_null(), "{line}");

    // A peer down and a name that does not resolve, beside the live one:
    // every peer is tried, each is named, and the exit code says failure.
    let out = node_cmd(a.path())
        .args(["sync", &down, "127.0.0.1:99999", &b_addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["address"], down.as_str());
    assert_eq!(lines[0]["caught_up"], false);
    assert!(
        lines[0]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{lines:?}"
    );
    assert_eq!(lines[1]["address"], "127.0.0.1:99999");
    assert!(
        lines[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("resolve")),
        "{lines:?}"
    );
    assert_eq!(lines[2]["address"], b_addr.as_str());
    assert_eq!(lines[2]["caught_up"], true, "{lines:?}");

    // Text mode says the same on standard error.
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(a.path())
        .args(["sync", &down])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&down) && err.contains("did not end caught up"),
        "{err}"
    );
}
