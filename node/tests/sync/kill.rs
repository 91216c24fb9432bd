//! Killed mid-sync, with the real binary.

use super::*;

const BIN: &str = env!("CARGO_BIN_EXE_sentinel-node");

/// A child process killed (SIGKILL) when dropped, so a failing test leaves
/// nothing running.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn node_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir").arg(dir).arg("--json");
    cmd
}

/// Starts `serve` on a free loopback port and returns it with its address.
fn start_serve(dir: &Path) -> (Proc, SocketAddr) {
    let mut child = node_cmd(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let proc = Proc(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        // Keep draining, so session reports never block the server.
        for _ in lines {}
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("serve printed no address");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let addr = v["listening"].as_str().unwrap().parse().unwrap();
    (proc, addr)
}

fn start_sync(dir: &Path, peer: SocketAddr) -> Proc {
    Proc(
        node_cmd(dir)
            .args(["sync", &peer.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Waits (bounded) for a process to end; returns its exit status and
/// output.
fn finish(mut p: Proc, limit: Duration) -> (std::process::ExitStatus, String, String) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = p.0.try_wait().unwrap() {
            let mut out = String::new();
            let mut err = String::new();
            use std::io::Read;
            p.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
            p.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            return (status, out, err);
        }
        assert!(
            Instant::now() < deadline,
            "process still running after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Entries committed in the store at `dir`, read without opening the node
/// (a second writer is running).
fn committed(dir: &Path) -> u64 {
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        dir.join(node_mod::DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return 0;
    };
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row("SELECT count(*) FROM entries", [], |r| r.get::<_, i64>(0))
        .unwrap_or(0) as u64
}

/// Node A with [`N_BIG`] entries, made once and copied by each test that
/// needs it, with its heads digest and its CA (which enrolls the B nodes).
struct BigA {
    dir: TempDir,
    digest: String,
    ca: Ca,
}

fn big_a() -> &'static BigA {
    static A: OnceLock<BigA> = OnceLock::new();
    A.get_or_init(|| {
        let started = Instant::now();
        let ca = deployment("Sentinel test CA", 100);
        let Peer { dir, node, .. } = Peer::new(&ca, "node-a", 101);
        let mut node = Arc::into_inner(node).unwrap().into_inner().unwrap();
        let now = now_ms();
        for batch in 0..(N_BIG / 500) as u128 {
            let items: Vec<_> = (0..500u128)
                .map(|i| {
                    let n = batch * 500 + i;
                    let at = (n % 3600) as f64 / 10.0 - 180.0;
                    (ev(n + 1), new_event(&format!("event {n}"), at, 45.0))
                })
                .collect();
            node.report_many(&items, None, now).unwrap();
        }
        let digest = node.stats().unwrap().heads_digest;
        drop(node);
        eprintln!("made A with {N_BIG} entries in {:.2?}", started.elapsed());
        BigA { dir, digest, ca }
    })
}

/// A copy of [`big_a`]'s data directory, and A's heads digest.
fn copy_of_big_a() -> (TempDir, String) {
    let src = big_a();
    let dst = TempDir::new().unwrap();
    for entry in std::fs::read_dir(src.dir.path()).unwrap() {
        let entry = entry.unwrap();
        let to = dst.path().join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            // `copy` keeps the key file's 0600 mode.
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
    (dst, src.digest.clone())
}

/// An enrolled, empty node B under A's CA.
fn empty_b() -> TempDir {
    let Peer { dir, .. } = Peer::new(&big_a().ca, "node-b", 102);
    dir
}

/// Starts `sync` and SIGKILLs it once some entries are committed; retries
/// (with a fresh B) if the kill landed after the last one. Returns B and
/// how many entries it kept.
fn sync_killed_part_way(addr: SocketAddr) -> (TempDir, u64) {
    for attempt in 0..5 {
        let b = empty_b();
        let mut p = start_sync(b.path(), addr);
        let deadline = Instant::now() + HANG;
        // Kill as soon as a first batch is committed: by then the session
        // is well under way, and thousands of entries are still to come.
        while committed(b.path()) == 0 && p.0.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "sync made no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = p.0.kill();
        let status = p.0.wait().unwrap();
        drop(p);
        let kept = Node::open(b.path()).unwrap().stats().unwrap().entries;
        eprintln!("attempt {attempt}: killed ({status}) with {kept} entries committed");
        if kept > 0 && kept < N_BIG {
            return (b, kept);
        }
    }
    panic!("could not kill sync part-way in five attempts");
}

#[test]
fn a_sync_killed_part_way_resumes_without_loss_or_resending() {
    let _t = timed("client_killed_mid_sync");
    let (a, digest) = copy_of_big_a();
    let (_server, addr) = start_serve(a.path());
    let (b, kept) = sync_killed_part_way(addr);

    let (status, out, err) = finish(start_sync(b.path(), addr), 2 * HANG);
    assert!(status.success(), "{status}: {err}");
    let s: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    eprintln!("resumed: {s}");
    // `received` counts entries that arrived in this session, so it being
    // exactly what B lacked shows nothing B had committed came again.
    assert_eq!(s["received"], N_BIG - kept, "{s}");
    assert_eq!(s["applied"], N_BIG - kept, "{s}");
    assert_eq!(s["sent"], 0, "{s}");
    assert_eq!(s["quarantined"], 0, "{s}");
    assert_eq!(s["caught_up"], true, "{s}");

    let node = Node::open(b.path()).unwrap();
    let st = node.stats().unwrap();
    assert_eq!(st.heads_digest, digest);
    assert_eq!((st.entries, st.events, st.quarantined), (N_BIG, N_BIG, 0));
    let audit = node.store().audit().unwrap();
    assert!(audit.problems.is_empty(), "{:?}", audit.problems);
    assert_eq!(audit.entries, N_BIG);
}

#[test]
fn a_sync_whose_server_is_killed_fails_cleanly_and_completes_later() {
    let _t = timed("server_killed_mid_sync");
    let (a, digest) = copy_of_big_a();
    let b = empty_b();
    let (server, addr) = start_serve(a.path());
    let p = start_sync(b.path(), addr);
    let deadline = Instant::now() + HANG;
    while committed(b.path()) == 0 {
        assert!(Instant::now() < deadline, "sync made no progress");
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(server);
    let killed_at = Instant::now();
    // Nothing tells the client its peer is gone: it gives up at the idle
    // timeout (30 s).
    let (status, _, err) = finish(p, 2 * HANG);
    eprintln!(
        "client gave up {:.2?} after the server died: {}",
        killed_at.elapsed(),
        err.trim()
    );
    assert!(!status.success());
    assert!(err.contains("error:"), "{err}");
    let kept = Node::open(b.path()).unwrap().stats().unwrap().entries;
    assert!(kept > 0 && kept <= N_BIG, "{kept}");

    let (_server, addr) = start_serve(a.path());
    let (status, out, err) = finish(start_sync(b.path(), addr), 2 * HANG);
    assert!(status.success(), "{status}: {err}");
    let s: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(s["received"], N_BIG - kept, "{s}");
    let node = Node::open(b.path()).unwrap();
    assert_eq!(node.stats().unwrap().heads_digest, digest);
    assert!(node.store().audit().unwrap().problems.is_empty());
}
