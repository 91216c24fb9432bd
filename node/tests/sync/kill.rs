//! Killed mid-sync, with the real binary: the node ↔ node receive kill
//! harness (a count of cycles, `SENTINEL_KILL_CYCLES`; the other two are
//! `node/tests/crash.rs` and the root package's `tests/kill`), and a sync
//! whose server dies.

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
    start_serve_with(dir, &[])
}

/// [`start_serve`] with more of `serve`'s flags.
fn start_serve_with(dir: &Path, flags: &[&str]) -> (Proc, SocketAddr) {
    let mut child = node_cmd(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(flags)
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

/// Cycles of [`a_receiver_killed_mid_sync_keeps_every_commit`] when
/// `SENTINEL_KILL_CYCLES` is not set (1000 is the long mode).
const DEFAULT_CYCLES: u64 = 8;

/// `SENTINEL_KILL_CYCLES`: unset gives `default`; zero, empty or not a
/// number is an error naming the knob, never a run of nothing.
fn kill_cycles(default: u64) -> u64 {
    const KNOB: &str = "SENTINEL_KILL_CYCLES";
    match std::env::var(KNOB) {
        Err(std::env::VarError::NotPresent) => default,
        Err(e) => panic!("{KNOB}: {e}"),
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(0) => panic!("{KNOB}=0 would run nothing; unset it for the default ({default})"),
            Ok(n) => n,
            Err(_) => panic!("{KNOB}={text:?} is not a whole number above zero"),
        },
    }
}

/// Starts `sync` on `b` and SIGKILLs it `then` after a batch beyond
/// `before` is committed (or as it finishes). Returns the most B was seen
/// to have committed before the kill (every entry B acknowledged is
/// among them: B acknowledges a batch after committing it), and whether
/// the kill landed before the sync ended (a sync that ended by itself
/// must have succeeded).
fn kill_after_a_commit(b: &Path, addr: SocketAddr, before: u64, then: Duration) -> (u64, bool) {
    let mut p = start_sync(b, addr);
    let deadline = Instant::now() + HANG;
    let mut seen = before;
    while seen == before && p.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "sync made no progress");
        std::thread::sleep(Duration::from_millis(2));
        seen = committed(b);
    }
    let until = Instant::now() + then;
    while Instant::now() < until && p.0.try_wait().unwrap().is_none() {
        seen = seen.max(committed(b));
        std::thread::sleep(Duration::from_millis(1));
    }
    let killed = p.0.try_wait().unwrap().is_none();
    seen = seen.max(committed(b));
    if killed {
        let _ = p.0.kill();
        let _ = p.0.wait();
    } else {
        let (status, _, err) = finish(p, HANG);
        assert!(
            status.success(),
            "a sync that was not killed failed: {status}: {err}"
        );
    }
    (seen, killed)
}

/// The node ↔ node receive harness: B pulls A's 20,000 entries and is
/// killed with SIGKILL a random moment after a commit, cycle after cycle
/// (`SENTINEL_KILL_CYCLES`); after each kill B must still hold every
/// entry it was seen to commit, and its chains must verify. A fresh B
/// starts when one holds everything. Then a sync left alone completes
/// B, receiving exactly what it lacked (nothing twice).
#[test]
fn a_receiver_killed_mid_sync_keeps_every_commit() {
    let _t = timed("receiver_killed_mid_sync");
    let cycles = kill_cycles(DEFAULT_CYCLES);
    let began = Instant::now();
    let (a, digest) = copy_of_big_a();
    // A killed client's sessions hold their slots on A until A's idle
    // timeout finds them dead; the default cap of sessions per peer would
    // refuse B from the fifth cycle on (`limit_exceeded`). The cap is
    // not what this harness tests, so the caps are raised past what the
    // kills of one idle timeout can leave.
    let (_server, addr) = start_serve_with(
        a.path(),
        &[
            "--max-sessions=256",
            "--max-sessions-per-peer=256",
            "--max-connections-per-address=0",
        ],
    );
    // A fixed schedule: SplitMix64 over the cycle number.
    let delay = |cycle: u64| {
        let mut z = (cycle + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Duration::from_micros((z ^ (z >> 31)) % 40_000)
    };
    let mut b = empty_b();
    let (mut kills, mut acknowledged, mut stores) = (0u64, 0u64, 1u64);
    for cycle in 1..=cycles {
        let before = committed(b.path());
        if before == N_BIG {
            b = empty_b();
            stores += 1;
        }
        let before = committed(b.path());
        let (seen, killed) = kill_after_a_commit(b.path(), addr, before, delay(cycle));
        kills += u64::from(killed);
        let node = Node::open(b.path()).unwrap();
        let kept = node.stats().unwrap().entries;
        assert!(
            kept >= seen,
            "cycle {cycle}: B was seen to commit {seen} entries, and holds {kept} after the kill"
        );
        let audit = node.store().audit().unwrap();
        assert!(
            audit.problems.is_empty(),
            "cycle {cycle}: {:?}",
            audit.problems
        );
        assert_eq!(audit.entries, kept, "cycle {cycle}");
        acknowledged += seen - before;
        eprintln!(
            "cycle {cycle:>4}: {} {:>5.1} ms after a commit: {before} -> {kept} entries",
            if killed { "killed" } else { "finished" },
            delay(cycle).as_secs_f64() * 1000.0
        );
    }

    // Left alone, B completes, receiving only what it lacked.
    let kept = committed(b.path());
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
    eprintln!(
        "kill harness node <-> node receive: {cycles} cycles, {kills} kills, {acknowledged} \
         entries committed before a kill and checked after it, over {stores} store(s), lost 0, \
         in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    assert!(
        cycles < 3 || kills > 0,
        "no kill landed before its sync ended; the schedule no longer fits"
    );
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
    // Nothing tells the client its peer is gone: it gives up at the QUIC
    // idle timeout, and says so (exit 1; `--json`: `caught_up` false and
    // the `error`).
    let (status, out, err) = finish(p, 2 * HANG);
    eprintln!(
        "client gave up {:.2?} after the server died: {} {}",
        killed_at.elapsed(),
        out.trim(),
        err.trim()
    );
    assert!(!status.success(), "{status}: {out}");
    let said: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(said["caught_up"], false, "{said}");
    assert!(said["error"].is_string(), "{said}");
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
