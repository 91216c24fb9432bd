//! The hub's PostgreSQL on a disk that loses power: a node syncs entries
//! to the real `sentinel-hub`, whose database lives on `lossyfs` with the
//! settings that make a commit durable (`fsync=on`,
//! `synchronous_commit=on`, `full_page_writes=on`). Mid-sync the power is
//! cut, the hub and every PostgreSQL process SIGKILLed, the disk
//! unmounted and mounted again, and PostgreSQL recovers from its WAL.
//! Every entry the node holds a hub receipt for must then be in the hub's
//! log, with the receipted entry at its seq.
//!
//! The data directory is made by `initdb` on the backing directory (a
//! disk that already held it); everything after — the database, the
//! hub's migrations, every entry — is written through the lossy mount.
//! PostgreSQL runs as the `postgres` OS user when this runs as root (it
//! refuses root), else as the current user.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand_core::OsRng;
use sentinel::deploy::Binaries;
use sentinel_certs::{Bundle, Ca, Password};
use sentinel_hub::testing::{pg_bin, TestDatabase};
use sentinel_schema::{AuthorId, DeviceRole, SigningKey};
use serde_json::Value;

use super::{can_run, cycles, events_file, fuse_missing, kill, node_json, seed, Disk, Rng};

/// Entries the node adds before each cycle's sync: a few of the sync's
/// batches, so that cuts land between receipts.
const PER_CYCLE: usize = 1500;
const PASSWORD: &str = "power-loss test bundle";
const DAY_MS: u64 = 86_400_000;
const START: Duration = Duration::from_secs(90);

/// `postgres` (the OS user) when running as root: (uid, gid).
fn pg_user() -> Option<(u32, u32)> {
    let out = Command::new("id").arg("-u").output().ok()?;
    if out.stdout.trim_ascii() != b"0" {
        return None;
    }
    let id = |flag: &str| -> Option<u32> {
        let o = Command::new("id").args([flag, "postgres"]).output().ok()?;
        std::str::from_utf8(&o.stdout).ok()?.trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

fn as_pg(c: &mut Command, user: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = user {
        c.uid(uid).gid(gid);
    }
    c
}

fn give(path: &Path, user: Option<(u32, u32)>) {
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

/// A PostgreSQL server on the lossy mount, in its own process group.
struct Postgres {
    child: Child,
    log: PathBuf,
}

impl Postgres {
    fn start(
        bin: &Path,
        data: &Path,
        sock: &Path,
        port: u16,
        log: PathBuf,
        user: Option<(u32, u32)>,
    ) -> Postgres {
        let mut c = Command::new(bin.join("postgres"));
        c.arg("-D")
            .arg(data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", sock.display()))
            // Durable: what the hub relies on, spelled out.
            .args(["-c", "fsync=on", "-c", "synchronous_commit=on"])
            .args([
                "-c",
                "full_page_writes=on",
                "-c",
                "wal_sync_method=fdatasync",
            ])
            .args(["-c", "max_connections=40", "-c", "shared_buffers=16MB"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .process_group(0);
        let child = as_pg(&mut c, user).spawn().unwrap();
        let mut pg = Postgres { child, log };
        let deadline = Instant::now() + START;
        loop {
            let text = std::fs::read_to_string(&pg.log).unwrap_or_default();
            if text.contains("database system is ready to accept connections") {
                return pg;
            }
            let exited = matches!(pg.child.try_wait(), Ok(Some(_)));
            assert!(
                !exited && Instant::now() < deadline,
                "postgres did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL to the postmaster and every process it started. Its
    /// children leave its process group (each calls setsid), so they are
    /// found as its descendants: the postmaster is stopped first so that
    /// it forks no more, then all of them are killed, and this waits
    /// until none is left holding files on the mount.
    fn kill(mut self) {
        let pid = self.child.id();
        let _ = Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status();
        let mut all = descendants(pid);
        all.push(pid);
        let mut args = vec!["-KILL".to_owned()];
        args.extend(all.iter().map(u32::to_string));
        let _ = Command::new("kill").args(&args).status();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(30);
        while all.iter().any(|&p| alive(p)) {
            assert!(
                Instant::now() < deadline,
                "postgres processes outlived SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `(pid, parent pid, state)` of every process, from /proc.
fn processes() -> Vec<(u32, u32, char)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the command name in parentheses: state, then parent pid.
        let mut rest = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
        let state = rest.next()?.chars().next()?;
        let ppid = rest.next()?.parse().ok()?;
        Some((pid, ppid, state))
    })
    .collect()
}

fn descendants(root: u32) -> Vec<u32> {
    let all = processes();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    found.remove(0);
    found
}

/// Whether `pid` is a process that has not exited (a zombie has).
fn alive(pid: u32) -> bool {
    processes().iter().any(|p| p.0 == pid && p.2 != 'Z')
}

/// A running `sentinel-hub serve`: its sync address.
struct Hub {
    child: Child,
    sync: String,
}

fn start_hub(bin: &Path, env: &[(String, String)], log: &Path) -> Hub {
    let mut c = Command::new(bin);
    c.args(["serve", "--json", "--http", "127.0.0.1:0"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap());
    let mut child = c.spawn().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|_| {
        panic!(
            "the hub did not start ({line:?}): {}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    });
    let sync = v["listening"].as_str().unwrap().to_owned();
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    Hub { child, sync }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The node's last hub receipt: (seq, entry id hex), if any.
fn receipt(bin: &Path, dir: &Path, env: &[(&str, &str)]) -> (String, Option<(u64, String)>) {
    let out = node_json(bin, dir, env, &["outbox"]);
    let author = out["author"].as_str().unwrap().to_owned();
    let last = &out["last_receipt"];
    let r = (!last.is_null()).then(|| {
        (
            last["seq"].as_u64().unwrap(),
            last["entry"].as_str().unwrap().to_owned(),
        )
    });
    (author, r)
}

#[test]
fn receipted_entries_survive_a_power_cut_of_the_hubs_database() {
    let test = "receipted_entries_survive_a_power_cut_of_the_hubs_database";
    // The knobs first: a bad one is an error even where the test skips.
    let (seed, cycles) = (seed(), cycles(3));
    let pg = pg_bin().ok().filter(|b| b.join("initdb").exists());
    let missing = fuse_missing().or_else(|| {
        pg.is_none()
            .then(|| "no PostgreSQL binaries (install postgresql-15 or set SENTINEL_PG_BIN)".into())
    });
    if !can_run(test, missing) {
        return;
    }
    let pg = pg.unwrap();
    eprintln!("{test}: seed {seed:#x}, {cycles} power cuts");
    let began = Instant::now();
    let bins = Binaries::beside_current_exe().unwrap();
    let user = pg_user();
    let tmp = tempfile::tempdir().unwrap();
    give(tmp.path(), user);
    let disk = Disk::new(tmp.path());
    let sock = tmp.path().join("sock");
    std::fs::create_dir(&sock).unwrap();
    for d in [&disk.backing, &disk.at, &sock] {
        give(d, user);
    }
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let mut rng = Rng(seed ^ 0x4855_4200);

    let initdb = as_pg(&mut Command::new(pg.join("initdb")), user)
        .arg("-D")
        .arg(disk.backing.join("data"))
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .output()
        .unwrap();
    assert!(
        initdb.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&initdb.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = disk.at.join("data");
    let rt = tokio::runtime::Runtime::new().unwrap();

    let mut mount = disk.mount();
    let mut postgres = Postgres::start(&pg, &data, &sock, port, logs.join("pg-0.log"), user);
    let mut admin = tokio_postgres::Config::new();
    admin
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname("postgres");
    let db = rt.block_on(TestDatabase::create_on(admin)).unwrap();

    // A deployment CA, the hub's bundle and an enrolled node (on an
    // ordinary disk: only the hub's database loses power here).
    let now = now_ms();
    let ca = Ca::create(
        "Power-loss region",
        now - DAY_MS,
        now + 30 * DAY_MS,
        SigningKey::generate(&mut OsRng),
    )
    .unwrap();
    let bundle = |role, name: &str| -> PathBuf {
        let e = ca
            .enroll(
                role,
                name,
                SigningKey::generate(&mut OsRng),
                now - DAY_MS,
                now + 30 * DAY_MS,
                now,
            )
            .unwrap();
        let path = tmp.path().join(format!("{name}.bundle"));
        Bundle::export(&path, &e, &Password::new(PASSWORD).unwrap()).unwrap();
        path
    };
    let hub_env: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), db.connection_string()),
        (
            "SENTINEL_BUNDLE".into(),
            bundle(DeviceRole::Hub, "hub-north").display().to_string(),
        ),
        ("SENTINEL_BUNDLE_PASSWORD".into(), PASSWORD.into()),
        ("SENTINEL_LISTEN".into(), "127.0.0.1:0".into()),
        (
            "SENTINEL_MEDIA_DIR".into(),
            tmp.path().join("hub-media").display().to_string(),
        ),
    ];
    let node_dir = tmp.path().join("node");
    let env = [("SENTINEL_BUNDLE_PASSWORD", PASSWORD)];
    node_json(&bins.node, &node_dir, &env, &["init"]);
    let node_bundle = bundle(DeviceRole::Node, "node-field").display().to_string();
    node_json(&bins.node, &node_dir, &env, &["enroll", &node_bundle]);

    let mut hub = start_hub(&bins.hub, &hub_env, &logs.join("hub-0.log"));
    let mut sync_ms = 2000;
    let (mut best, mut n_receipted) = (0, 0);
    for cycle in 1..=cycles {
        let context = format!("seed {seed:#x} cycle {cycle}");
        let file = tmp.path().join(format!("events-{cycle}.geojson"));
        events_file(&file, PER_CYCLE, &mut rng);
        let out = super::node(
            &bins.node,
            &node_dir,
            &env,
            &["import", file.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "{context}: import: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let delay = Duration::from_millis(rng.between(0, sync_ms));
        let started = Instant::now();
        let mut sync = Command::new(&bins.node)
            .arg("--data-dir")
            .arg(&node_dir)
            .envs(env)
            .args(["sync", &hub.sync])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut finished = false;
        while started.elapsed() < delay {
            if let Ok(Some(_)) = sync.try_wait() {
                finished = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let cut = mount.cut();
        kill(&mut hub.child);
        postgres.kill();
        kill(&mut sync);
        if finished {
            // Next time cut sooner, inside the sync.
            sync_ms = (started.elapsed().as_millis() as u64).max(50);
        }
        mount.unmount().unwrap();
        let (author, receipt) = receipt(&bins.node, &node_dir, &env);

        // The machine comes back: PostgreSQL recovers from its WAL.
        mount = disk.mount();
        postgres = Postgres::start(
            &pg,
            &data,
            &sock,
            port,
            logs.join(format!("pg-{cycle}.log")),
            user,
        );
        let author = AuthorId(hex::decode(&author).unwrap().try_into().unwrap());
        let held: Vec<(u64, String)> = rt.block_on(async {
            let store = db.open_store().await.unwrap();
            let entries = store
                .entries_after(&author, 0, usize::MAX, usize::MAX)
                .await
                .unwrap();
            entries
                .iter()
                .map(|e| (e.seq(), hex::encode(e.id().as_bytes())))
                .collect()
        });
        for (i, (seq, _)) in held.iter().enumerate() {
            assert_eq!(*seq, i as u64 + 1, "{context}: the hub's chain has a gap");
        }
        if let Some((seq, id)) = &receipt {
            assert!(
                held.len() as u64 >= *seq,
                "{context}: the node holds a hub receipt up to seq {seq}, but after the power \
                 cut the hub holds only {} of its entries",
                held.len()
            );
            assert_eq!(
                &held[*seq as usize - 1].1,
                id,
                "{context}: another entry at seq {seq}"
            );
            n_receipted = *seq;
        }
        best = best.max(held.len());
        eprintln!(
            "cycle {cycle:>3}: cut {:>5} ms into the sync{}: receipted up to seq {}, hub holds {} \
             (dropped {} unsynced bytes in {} files)",
            delay.as_millis(),
            if finished { " (after it ended)" } else { "" },
            receipt.as_ref().map_or(0, |r| r.0),
            held.len(),
            cut.bytes,
            cut.files
        );
        hub = start_hub(&bins.hub, &hub_env, &logs.join(format!("hub-{cycle}.log")));
    }
    kill(&mut hub.child);
    postgres.kill();
    mount.unmount().unwrap();
    assert!(
        n_receipted > 0,
        "no entry was ever receipted: nothing was tested"
    );
    eprintln!(
        "{test}: {cycles} power cuts, receipts up to seq {n_receipted} all held ({best} on the hub), {:.1} s",
        began.elapsed().as_secs_f64()
    );
}
