//! What the hub benchmarks share: the scale knob, a deployment CA, the
//! real `sentinel-hub` binary started as a child process on a throwaway
//! PostgreSQL/PostGIS database, and readings of `/proc`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sentinel_certs::{Bundle, Ca, Enrollment, Password};
use sentinel_hub::testing::TestDatabase;
use sentinel_schema::{DeviceRole, SigningKey};

pub use sentinel_certs::testing::{now_ms, DAY, YEAR};

/// `SENTINEL_BENCH_SCALE` (default 1.0: the sizes of the issue).
pub fn scale() -> f64 {
    std::env::var("SENTINEL_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

pub fn scaled(base: usize, min: usize) -> usize {
    ((base as f64 * scale()) as usize).max(min)
}

/// A key from a 64-bit seed and a tag byte.
pub fn key(tag: u8, n: u64) -> SigningKey {
    let mut seed = [tag; 32];
    seed[..8].copy_from_slice(&n.to_be_bytes());
    SigningKey::from_bytes(&seed)
}

/// A deployment CA valid from a year ago to five years ahead (handshakes
/// run on the real clock).
pub fn deployment(name: &str) -> Ca {
    let now = now_ms();
    Ca::create(name, now - YEAR, now + 5 * YEAR, key(1, 1)).unwrap()
}

/// An identity of `role`, valid from 30 days ago for a year.
pub fn issue(ca: &Ca, role: DeviceRole, name: &str, key: SigningKey) -> Enrollment {
    let now = now_ms();
    ca.enroll(role, name, key, now - 30 * DAY, now + YEAR, now)
        .unwrap()
}

/// The 1-, 5- and 15-minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB; or
/// a plain number (`Threads`).
pub fn proc_status(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

pub fn pct<T: Copy>(sorted: &[T], p: f64) -> T {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// The real `sentinel-hub serve` as a child process: its own tokio
/// runtime, pool and projector, configured through the environment as an
/// operator would. Killed when dropped.
pub struct HubProcess {
    child: Child,
    pub sync_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub stderr_path: PathBuf,
}

/// The admin account the benches read the API as.
pub const BENCH_USER: &str = "bench";
const BENCH_PASSWORD: &str = "bench password, long enough";

impl HubProcess {
    pub fn start(
        db: &TestDatabase,
        ca: &Ca,
        dir: &Path,
        max_sessions: usize,
        pool_size: Option<usize>,
    ) -> HubProcess {
        HubProcess::start_as(db, ca, dir, max_sessions, pool_size, key(9, 9))
    }

    /// As [`HubProcess::start`], with the hub's own key (two hubs a node
    /// syncs with must not share one: each chain would fork the other's).
    pub fn start_as(
        db: &TestDatabase,
        ca: &Ca,
        dir: &Path,
        max_sessions: usize,
        pool_size: Option<usize>,
        hub_key: SigningKey,
    ) -> HubProcess {
        let bundle = dir.join("hub.bundle");
        let password = "bench-password";
        let enrollment = issue(ca, DeviceRole::Hub, "hub-bench", hub_key);
        Bundle::export(&bundle, &enrollment, &Password::new(password).unwrap()).unwrap();
        let stderr_path = dir.join("hub.stderr");
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        // The API's reader: an admin account, as an operator makes the
        // first one.
        let added = Command::new(env!("CARGO_BIN_EXE_sentinel-hub"))
            .args(["user", "add", BENCH_USER, "--role", "admin"])
            .env("DATABASE_URL", db.connection_string())
            .env("SENTINEL_BUNDLE", &bundle)
            .env("SENTINEL_BUNDLE_PASSWORD", password)
            .env("SENTINEL_USER_PASSWORD", BENCH_PASSWORD)
            .output()
            .unwrap();
        assert!(added.status.success(), "user add: {added:?}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_sentinel-hub"));
        command
            .args(["serve", "--json", "--http", "127.0.0.1:0"])
            // One client asks thousands of questions: no per-client limit;
            // a hundred clients sign in from one address at once: no login
            // limit either.
            .env("SENTINEL_RATE_LIMIT_PER_S", "0")
            .env("SENTINEL_LOGIN_RATE_LIMIT_PER_MIN", "0")
            .env("DATABASE_URL", db.connection_string())
            .env("SENTINEL_LISTEN", "127.0.0.1:0")
            .env("SENTINEL_BUNDLE", &bundle)
            .env("SENTINEL_BUNDLE_PASSWORD", password)
            .env("SENTINEL_MAX_SESSIONS", max_sessions.to_string())
            // Every client is on 127.0.0.1: no cap per address.
            .env("SENTINEL_MAX_CONNECTIONS_PER_ADDRESS", "0")
            .env_remove("SENTINEL_CA")
            .env_remove("SENTINEL_REVOCATION_MAX_AGE_MS")
            .env_remove("SENTINEL_POOL_SIZE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some(n) = pool_size {
            command.env("SENTINEL_POOL_SIZE", n.to_string());
        }
        let mut child = command.spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let mut addr_of = |key: &str| -> SocketAddr {
            line.clear();
            out.read_line(&mut line).unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!(
                    "sentinel-hub printed {line:?} ({e}); stderr: {}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                )
            });
            v[key].as_str().unwrap().parse().unwrap()
        };
        let sync_addr = addr_of("listening");
        let http_addr = addr_of("http");
        HubProcess {
            child,
            sync_addr,
            http_addr,
            stderr_path,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The hub's session reports (one JSON line per finished session on
    /// its stderr).
    pub fn session_reports(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.stderr_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.get("peer").is_some())
            .collect()
    }

    /// Lines of the hub's stderr that are not session reports.
    pub fn other_stderr(&self) -> Vec<String> {
        std::fs::read_to_string(&self.stderr_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .map(|v| v.get("peer").is_none())
                    .unwrap_or(true)
            })
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking HTTP/1.1 client on one keep-alive connection: enough for
/// `GET` against the hub's admin API.
pub struct Http {
    stream: BufReader<std::net::TcpStream>,
    host: String,
    token: Option<String>,
}

impl Http {
    pub fn connect(addr: SocketAddr) -> Http {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        Http {
            stream: BufReader::new(stream),
            host: addr.to_string(),
            token: None,
        }
    }

    /// Signs in as the bench's admin; later requests carry the token.
    pub fn login(&mut self) {
        use std::io::Write;
        let body =
            serde_json::json!({ "name": BENCH_USER, "password": BENCH_PASSWORD }).to_string();
        let request = format!(
            "POST /api/v1/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.stream.get_mut().write_all(request.as_bytes()).unwrap();
        let (status, body) = self.response();
        assert_eq!(status, 200, "login: {}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        self.token = Some(v["token"].as_str().unwrap().to_owned());
    }

    /// Status and body of `GET path`.
    pub fn get(&mut self, path: &str) -> (u16, Vec<u8>) {
        use std::io::Write;
        let auth = self
            .token
            .as_ref()
            .map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n{auth}\r\n",
            self.host
        );
        self.stream.get_mut().write_all(request.as_bytes()).unwrap();
        self.response()
    }

    /// Reads one response: status and body.
    fn response(&mut self) -> (u16, Vec<u8>) {
        use std::io::Read;
        let mut status_line = String::new();
        self.stream.read_line(&mut status_line).unwrap();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut length = None;
        loop {
            let mut h = String::new();
            self.stream.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse::<usize>().ok();
            }
            assert!(
                !lower.starts_with("transfer-encoding"),
                "chunked responses are not handled: {h}"
            );
        }
        let mut body = vec![0u8; length.expect("a content-length")];
        self.stream.read_exact(&mut body).unwrap();
        (status, body)
    }
}

/// A PostgreSQL server of the bench's own with durable commits: `fsync`,
/// `synchronous_commit` and `full_page_writes` on, as a production hub's
/// server runs (the test harness's server has all three off). Its data
/// directory is on the same disk as the temporary directory; stopped
/// (fast shutdown) and deleted when dropped.
pub struct DurablePostgres {
    child: Child,
    dir: tempfile::TempDir,
    pub admin: tokio_postgres::Config,
}

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
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = user {
        c.uid(uid).gid(gid);
    }
    c
}

impl DurablePostgres {
    pub fn start() -> DurablePostgres {
        let bin = sentinel_hub::testing::pg_bin().unwrap();
        let user = pg_user();
        let dir = tempfile::TempDir::new().unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let data = dir.path().join("data");
        let initdb = as_pg(&mut Command::new(bin.join("initdb")), user)
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
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
        let log = dir.path().join("postgres.log");
        let mut c = Command::new(bin.join("postgres"));
        c.arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path().display()))
            // Durable: a commit returns once its WAL is on the disk.
            .args(["-c", "fsync=on", "-c", "synchronous_commit=on"])
            .args(["-c", "full_page_writes=on"])
            // As the harness's server, so the two differ only in durability.
            .args(["-c", "max_connections=200"]);
        // `SENTINEL_BENCH_PG_STATS=1`: statement statistics, for profiles.
        if pg_stats() {
            c.args(["-c", "shared_preload_libraries=pg_stat_statements"]);
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut child = as_pg(&mut c, user).spawn().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("database system is ready to accept connections") {
                break;
            }
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            assert!(
                !exited && std::time::Instant::now() < deadline,
                "postgres did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut admin = tokio_postgres::Config::new();
        admin
            .host("127.0.0.1")
            .port(port)
            .user("postgres")
            .dbname("postgres");
        DurablePostgres { child, dir, admin }
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }
}

impl Drop for DurablePostgres {
    fn drop(&mut self) {
        // SIGINT: fast shutdown (backends end, the postmaster exits).
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Whether `SENTINEL_BENCH_PG_STATS` asks for `pg_stat_statements`.
pub fn pg_stats() -> bool {
    std::env::var("SENTINEL_BENCH_PG_STATS").is_ok_and(|v| v == "1")
}

/// Appends one row of the goals table to `SENTINEL_BENCH_OUT`, when set.
/// (One argument per field of the row, as `scripts/bench` reads it.)
#[allow(clippy::too_many_arguments)]
pub fn bench_out(
    row: &str,
    figure: &str,
    value: f64,
    unit: &str,
    goal: &str,
    met: bool,
    command: &str,
    note: &str,
) {
    let Ok(path) = std::env::var("SENTINEL_BENCH_OUT") else {
        return;
    };
    if path.is_empty() {
        return;
    }
    use std::io::Write;
    let line = serde_json::json!({
        "row": row, "figure": figure, "value": value, "unit": unit, "goal": goal,
        "met": met, "command": command, "note": note,
    });
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}
