//! A throwaway PostgreSQL/PostGIS server for tests (feature `testing`).
//!
//! [`TestDatabase::create`] gives every test a fresh database (`CREATE
//! DATABASE t_<pid>_<n>_<random>`, then `CREATE EXTENSION postgis`) on one
//! server per test process, started on first use:
//!
//! - `initdb` into a new temporary directory, then `postgres` listening on
//!   127.0.0.1 at a free port, its unix socket in the same directory,
//!   trust authentication, `fsync` off (a test server holds nothing worth
//!   keeping). initdb and postgres refuse to run as root, so as root the
//!   harness runs them as the `postgres` OS user (`runuser`), after handing
//!   it the directory; otherwise as the current user. The binaries come
//!   from `$SENTINEL_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`.
//! - **Stopping.** Rust never drops statics, and a test process may die by
//!   SIGKILL, so nothing in-process can be trusted to stop the server.
//!   Instead the server runs under a small `sh` watchdog whose standard
//!   input is a pipe only this process writes to, and never does. When the
//!   process ends — normally, by panic, by SIGKILL — the kernel closes the
//!   pipe, the watchdog's `cat` sees end of file, sends postgres SIGINT
//!   (fast shutdown), waits for it and deletes the directory. The watchdog
//!   runs in its own process group, so a Ctrl-C meant for `cargo test`
//!   does not kill it before it has cleaned up.
//! - **What can be left behind**: only if the watchdog itself is killed
//!   (or the machine stops) — then a `postgres` owning a
//!   `$TMPDIR/sentinel-pg-*` directory keeps running until killed; the
//!   directory names the process id of the test binary that started it.
//!
//! With `SENTINEL_TEST_DATABASE_URL` set (any URL or `key=value` string
//! tokio-postgres accepts, naming a role that may create databases and the
//! postgis extension) no server is started; the test databases are made on
//! that server and dropped again (`WITH (FORCE)`) when their
//! [`TestDatabase`] is dropped.
//!
//! **SQL here.** This harness is the one file outside `store/` (and the
//! migrations) with SQL text: the statements that create and drop the
//! test databases and add PostGIS to them. It is test support, not the
//! hub's reading or writing of its data, which stays in the store
//! (invariant 10).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio_postgres::config::Host;
use tokio_postgres::{Config, NoTls};

use crate::store::{PgStore, StoreError};

/// Names an existing server to use instead of starting one.
pub const DATABASE_URL_ENV: &str = "SENTINEL_TEST_DATABASE_URL";
/// The folder holding `initdb` and `postgres`, when not the default.
pub const PG_BIN_ENV: &str = "SENTINEL_PG_BIN";

/// How long a server may take to start (initdb included).
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// Attempts to start a server, each on a fresh port and directory (another
/// process may take the port between our probe and postgres's bind).
const START_ATTEMPTS: usize = 3;

/// The watchdog: runs initdb and postgres, then waits for end of file on
/// its standard input (the test process ending) and cleans up.
const WATCHDOG: &str = r#"
dir=$1 port=$2 bin=$3
pid=
if "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
        >"$dir/initdb.log" 2>&1; then
    "$bin/postgres" -D "$dir/data" -p "$port" \
        -c listen_addresses=127.0.0.1 -c unix_socket_directories="$dir" \
        -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
        -c max_connections=200 </dev/null >"$dir/postgres.log" 2>&1 &
    pid=$!
else
    : >"$dir/initdb.failed"
fi
cat >/dev/null
if [ -n "$pid" ]; then
    kill -INT "$pid" 2>/dev/null
    wait "$pid"
fi
rm -rf "$dir"
"#;

/// Why the harness could not give a test its database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// The throwaway server did not start (the message holds its logs).
    #[error("starting PostgreSQL: {0}")]
    Start(String),
    /// `SENTINEL_TEST_DATABASE_URL` does not parse.
    #[error("{DATABASE_URL_ENV}: {0}")]
    BadUrl(tokio_postgres::Error),
    /// Creating the database or the postgis extension failed.
    #[error("creating the test database: {0}")]
    Db(#[from] tokio_postgres::Error),
}

struct Server {
    /// Connects to the server's maintenance database as a superuser.
    admin: Config,
    /// Whether the server is someone else's (drop our databases there).
    external: bool,
    /// Our own server's watchdog, kept for the life of the process.
    _own: Option<OwnServer>,
}

struct OwnServer {
    _watchdog: Child,
    /// The write end of the watchdog's stdin: closed only by the process
    /// ending, which is what stops the server.
    _lifeline: ChildStdin,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

fn server() -> Result<&'static Server, HarnessError> {
    SERVER
        .get_or_init(|| match std::env::var(DATABASE_URL_ENV) {
            Ok(url) if !url.is_empty() => url
                .parse::<Config>()
                .map(|admin| Server {
                    admin,
                    external: true,
                    _own: None,
                })
                .map_err(|e| HarnessError::BadUrl(e).to_string()),
            _ => start_server(),
        })
        .as_ref()
        .map_err(|e| HarnessError::Start(e.clone()))
}

/// A fresh database with PostGIS, on the test server.
pub struct TestDatabase {
    config: Config,
    name: String,
    admin: Option<Config>,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .finish()
    }
}

impl TestDatabase {
    /// Creates a new database with the postgis extension, starting the
    /// process's server first if this is the first one.
    pub async fn create() -> Result<TestDatabase, HarnessError> {
        let server = tokio::task::spawn_blocking(server)
            .await
            .map_err(|e| HarnessError::Start(e.to_string()))??;
        let name = unique_name();
        run(&server.admin, &format!("CREATE DATABASE {name}")).await?;
        let mut config = server.admin.clone();
        config.dbname(&name);
        let db = TestDatabase {
            config,
            name,
            admin: server.external.then(|| server.admin.clone()),
        };
        run(&db.config, "CREATE EXTENSION postgis").await?;
        Ok(db)
    }

    /// Creates a new database with the postgis extension on the server
    /// `admin` reaches (a superuser on its maintenance database): a server
    /// a test runs itself, such as the power-loss tests' PostgreSQL on a
    /// lossy disk. The database goes with that server; it is not dropped.
    pub async fn create_on(admin: Config) -> Result<TestDatabase, HarnessError> {
        let name = unique_name();
        run(&admin, &format!("CREATE DATABASE {name}")).await?;
        let mut config = admin;
        config.dbname(&name);
        let db = TestDatabase {
            config,
            name,
            admin: None,
        };
        run(&db.config, "CREATE EXTENSION postgis").await?;
        Ok(db)
    }

    /// Connection settings for this database.
    pub fn config(&self) -> Config {
        self.config.clone()
    }

    /// The database's name (`t_…`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A libpq-style `key=value` connection string for this database, for
    /// programs started by a test.
    pub fn connection_string(&self) -> String {
        let c = &self.config;
        let mut parts = Vec::new();
        if let Some(host) = c.get_hosts().first() {
            match host {
                Host::Tcp(h) => parts.push(format!("host={}", quote(h))),
                Host::Unix(p) => parts.push(format!("host={}", quote(&p.to_string_lossy()))),
            }
        }
        if let Some(port) = c.get_ports().first() {
            parts.push(format!("port={port}"));
        }
        if let Some(user) = c.get_user() {
            parts.push(format!("user={}", quote(user)));
        }
        if let Some(password) = c.get_password() {
            parts.push(format!(
                "password={}",
                quote(&String::from_utf8_lossy(password))
            ));
        }
        parts.push(format!("dbname={}", quote(&self.name)));
        parts.join(" ")
    }

    /// Opens a [`PgStore`] on this database (migrations applied).
    pub async fn open_store(&self) -> Result<PgStore, StoreError> {
        PgStore::open(self.config(), 8).await
    }
}

impl Drop for TestDatabase {
    /// On someone else's server, drops the database (best effort, on a
    /// thread of its own so it works inside and outside a runtime). Our own
    /// server's databases go with its directory.
    fn drop(&mut self) {
        let Some(admin) = self.admin.take() else {
            return;
        };
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let _ = rt.block_on(run(&admin, &sql));
        })
        .join();
    }
}

/// Runs one statement on a connection of its own.
async fn run(config: &Config, sql: &str) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    let driver = tokio::spawn(connection);
    let done = client.batch_execute(sql).await;
    drop(client);
    let _ = driver.await;
    done
}

fn unique_name() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "t_{}_{}_{:08x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        random() as u32
    )
}

/// A random number from the standard library's per-process hash keys.
fn random() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish()
}

fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn start_server() -> Result<Server, String> {
    let bin = pg_bin()?;
    let mut failures = Vec::new();
    for _ in 0..START_ATTEMPTS {
        match start_once(&bin) {
            Ok(server) => return Ok(server),
            Err(e) => failures.push(e),
        }
    }
    Err(failures.join("\n---\n"))
}

fn start_once(bin: &Path) -> Result<Server, String> {
    let dir = std::env::temp_dir().join(format!(
        "sentinel-pg-{}-{:016x}",
        std::process::id(),
        random()
    ));
    std::fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let port = free_port()?;
    let root = is_root();
    if root {
        let status = Command::new("chown")
            .arg("postgres:")
            .arg(&dir)
            .status()
            .map_err(|e| format!("running chown: {e}"))?;
        if !status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!(
                "chown postgres: {} failed (is there a `postgres` OS user?)",
                dir.display()
            ));
        }
    }
    let mut command = if root {
        let mut c = Command::new(runuser());
        c.args(["-u", "postgres", "--", "sh"]);
        c
    } else {
        Command::new("sh")
    };
    command
        .arg("-c")
        .arg(WATCHDOG)
        .arg("sentinel-pg-watchdog")
        .arg(&dir)
        .arg(port.to_string())
        .arg(bin)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut watchdog = command
        .spawn()
        .map_err(|e| format!("starting the watchdog: {e}"))?;
    let Some(lifeline) = watchdog.stdin.take() else {
        return Err("the watchdog has no stdin".into());
    };
    // Until the server is ready, a failure drops `lifeline`, which makes
    // the watchdog stop what it started and delete the directory.
    wait_ready(&dir, &mut watchdog)?;
    let mut admin = Config::new();
    admin
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(10));
    Ok(Server {
        admin,
        external: false,
        _own: Some(OwnServer {
            _watchdog: watchdog,
            _lifeline: lifeline,
        }),
    })
}

/// Waits for postgres to log that it accepts connections.
fn wait_ready(dir: &Path, watchdog: &mut Child) -> Result<(), String> {
    let log = dir.join("postgres.log");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let text = read_text(&log);
        if text.contains("database system is ready to accept connections") {
            return Ok(());
        }
        let initdb_failed = dir.join("initdb.failed").exists();
        let exited = matches!(watchdog.try_wait(), Ok(Some(_)));
        let fatal = text.contains("FATAL:") || text.contains("PANIC:");
        if initdb_failed || exited || fatal || Instant::now() > deadline {
            return Err(format!(
                "postgres did not start in {}{}\ninitdb log:\n{}\npostgres log:\n{}",
                dir.display(),
                if exited { " (the watchdog exited)" } else { "" },
                read_text(&dir.join("initdb.log")),
                text
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn read_text(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// A port nobody listened on a moment ago.
fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("probing for a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("probing for a free port: {e}"))
}

fn is_root() -> bool {
    // The effective uid, without libc (the workspace forbids unsafe code).
    let status = read_text(Path::new("/proc/self/status"));
    match status.lines().find(|l| l.starts_with("Uid:")) {
        Some(line) => line.split_whitespace().nth(2) == Some("0"),
        None => Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0"),
    }
}

fn runuser() -> PathBuf {
    ["/usr/sbin/runuser", "/sbin/runuser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("runuser"))
}

/// `$SENTINEL_PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin`.
pub fn pg_bin() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os(PG_BIN_ENV) {
        return Ok(PathBuf::from(dir));
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map_err(|e| {
            format!(
                "no PostgreSQL in {} ({e}); install postgresql-15 and \
                 postgresql-15-postgis-3, or set {PG_BIN_ENV} or {DATABASE_URL_ENV}",
                root.display()
            )
        })?
        .filter_map(Result::ok)
        .filter_map(|d| {
            let version = d.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = d.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| format!("no initdb under {}", root.display()))
}
