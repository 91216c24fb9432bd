//! A small real deployment on this machine: a regional hub on a
//! throwaway PostgreSQL/PostGIS and field nodes, each the real binary
//! (`sentinel-hub serve`, `sentinel-node serve --http`) in its own
//! process, enrolled by a fresh deployment CA, with people's accounts.
//! The demo leaves one running for people to look at; the browser tests
//! drive their pages.
//!
//! Never does: reach into a running binary's store. Everything after the
//! processes start goes through their HTTP APIs and sync ports, as a
//! person or another device would.

pub mod client;
pub mod process;
pub mod seed;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rand_core::OsRng;
use sentinel_certs::{Bundle, Ca, Password};
use sentinel_hub::testing::TestDatabase;
use sentinel_schema::{DeviceRole, SigningKey};

pub use process::{Binaries, Running};

/// The password of every demo bundle (they live in a temporary folder).
const BUNDLE_PASSWORD: &str = "demo bundle password";
pub(crate) const DAY_MS: u64 = 24 * 3600 * 1000;

/// A person's account: where it lives, and what it may do there.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub password: String,
    /// `admin`, `officer` or `public` (a hub grant), or `device-officer`
    /// (a node's own officer, before any hub grant).
    pub role: String,
}

impl Account {
    fn new(name: &str, role: &str) -> Account {
        Account {
            name: name.into(),
            password: format!("{name}-sentinel-demo"),
            role: role.into(),
        }
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Start a hub (needs PostgreSQL with PostGIS).
    pub hub: bool,
    /// One field node per name; its officer account has the same name.
    pub nodes: Vec<String>,
    /// Requests per second each client may make of an API (`0`: the
    /// binaries' defaults).
    pub rate_limit_per_s: u32,
    /// Sensor rules the hub evaluates (TOML, `docs/operations.md`).
    pub hub_rules: Option<String>,
    /// Nodes keep in sync with the hub by themselves (`serve`'s
    /// background sync). Off, they sync only on "sync now": tests that
    /// need nodes offline from each other (concurrent edits) keep it off.
    pub background_sync: bool,
    /// More of the hub's environment (`docs/operations.md`), after the
    /// deployment's own: `SENTINEL_WEBHOOK_MAX_ATTEMPTS`, say.
    pub hub_env: Vec<(String, String)>,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            hub: true,
            nodes: vec!["ada".into(), "bo".into()],
            rate_limit_per_s: 0,
            hub_rules: None,
            background_sync: false,
            hub_env: Vec::new(),
        }
    }
}

/// A hub process and how to reach it.
pub struct HubProcess {
    pub sync: SocketAddr,
    pub http: SocketAddr,
    /// Accounts on the hub: `admin`, each node's officer, `viewer`
    /// (public).
    pub accounts: Vec<Account>,
    _process: Running,
}

/// A field node process and how to reach it.
pub struct NodeProcess {
    pub name: String,
    pub dir: PathBuf,
    pub sync: SocketAddr,
    pub http: SocketAddr,
    /// The device's own officer (named as the node).
    pub officer: Account,
    _process: Running,
}

/// A node's data folder that no process serves.
pub struct OfflineNode {
    bin: PathBuf,
    pub dir: PathBuf,
    env: Vec<(String, String)>,
}

impl OfflineNode {
    /// Runs `sentinel-node ARGS` on this node; its standard output.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        process::run(&self.bin, args, &self.env, "")
    }

    /// The `sentinel-node` executable this node's commands run.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The environment this node's commands need (its data folder, the
    /// bundle password), for a harness that starts them itself.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }
}

/// A hub's files and settings without its process: enrolled, its
/// accounts added, for a harness that starts (and kills, and restarts)
/// `sentinel-hub serve` itself — in a network namespace, say.
pub struct HubSetup {
    pub bin: PathBuf,
    /// `DATABASE_URL`, the bundle, the media folder, the sync address.
    pub env: Vec<(String, String)>,
    pub accounts: Vec<Account>,
}

/// A running deployment; dropping it stops every process and removes
/// its files and database.
pub struct Deployment {
    pub hub: Option<HubProcess>,
    pub nodes: Vec<NodeProcess>,
    pub ca: Ca,
    // Dropped last: the processes above stop before their files go.
    _db: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

impl Deployment {
    /// Starts what `plan` asks with `bins`. Without PostgreSQL the hub
    /// cannot start: an error saying so.
    pub async fn start(bins: &Binaries, plan: &Plan) -> Result<Deployment> {
        let dir = tempfile::Builder::new()
            .prefix("sentinel-deploy-")
            .tempdir()?;
        let now = now_ms();
        let ca = Ca::create(
            "Sentinel demo region",
            now - DAY_MS,
            now + 365 * DAY_MS,
            SigningKey::generate(&mut OsRng),
        )?;
        let (db, hub) = if plan.hub {
            let db = TestDatabase::create()
                .await
                .context("no PostgreSQL with PostGIS could be started here")?;
            let hub = start_hub(bins, plan, &ca, dir.path(), &db)?;
            (Some(db), Some(hub))
        } else {
            (None, None)
        };
        let mut nodes = Vec::new();
        for name in &plan.nodes {
            let peer = hub.as_ref().map(|h| h.sync);
            nodes.push(start_node(bins, plan, &ca, dir.path(), name, peer)?);
        }
        Ok(Deployment {
            hub,
            nodes,
            ca,
            _db: db,
            _dir: dir,
        })
    }

    /// The hub's pages, `http://ADDR/`.
    pub fn hub_url(&self) -> Option<String> {
        self.hub.as_ref().map(|h| format!("http://{}/", h.http))
    }

    /// A node that is not served: initialised and enrolled in this
    /// deployment, for commands run on it one at a time (`import`,
    /// `sync`) with [`OfflineNode::run`].
    pub fn offline_node(&self, bins: &Binaries, name: &str) -> Result<OfflineNode> {
        let (dir, env) = prepare_node(bins, &self.ca, self._dir.path(), name)?;
        Ok(OfflineNode {
            bin: bins.node.clone(),
            dir,
            env,
        })
    }

    /// A hub for this deployment's CA that no process serves yet: its
    /// bundle and media folder under this deployment's folder, its data
    /// in `database_url` (accounts added there), listening for sync on
    /// `listen` once started with `serve`.
    pub fn hub_setup(
        &self,
        bins: &Binaries,
        database_url: &str,
        listen: SocketAddr,
    ) -> Result<HubSetup> {
        let mut env = hub_env(&self.ca, self._dir.path(), database_url)?;
        env.push(("SENTINEL_LISTEN".into(), listen.to_string()));
        let accounts = vec![Account::new("admin", "admin")];
        add_hub_accounts(bins, &env, &accounts)?;
        Ok(HubSetup {
            bin: bins.hub.clone(),
            env,
            accounts,
        })
    }

    /// A node's pages, `http://ADDR/`.
    pub fn node_url(&self, i: usize) -> Option<String> {
        self.nodes.get(i).map(|n| format!("http://{}/", n.http))
    }
}

fn start_hub(
    bins: &Binaries,
    plan: &Plan,
    ca: &Ca,
    dir: &Path,
    db: &TestDatabase,
) -> Result<HubProcess> {
    let mut env = hub_env(ca, dir, &db.connection_string())?;
    env.push(("SENTINEL_LISTEN".into(), "127.0.0.1:0".into()));
    env.push(("SENTINEL_CHECKPOINT_INTERVAL_S".into(), "30".into()));
    if let Some(rules) = &plan.hub_rules {
        let file = dir.join("hub-rules.toml");
        std::fs::write(&file, rules)?;
        env.push(("SENTINEL_RULES_FILE".into(), path_text(&file)));
    }
    if plan.rate_limit_per_s > 0 {
        env.push((
            "SENTINEL_RATE_LIMIT_PER_S".into(),
            plan.rate_limit_per_s.to_string(),
        ));
        env.push((
            "SENTINEL_RATE_LIMIT_BURST".into(),
            (plan.rate_limit_per_s * 5).to_string(),
        ));
    }
    env.extend(plan.hub_env.iter().cloned());
    let mut accounts = vec![Account::new("admin", "admin")];
    accounts.extend(plan.nodes.iter().map(|n| Account::new(n, "officer")));
    accounts.push(Account::new("viewer", "public"));
    add_hub_accounts(bins, &env, &accounts)?;
    let (process, lines) = process::spawn(
        &bins.hub,
        &["serve", "--json", "--http", "127.0.0.1:0"],
        &env,
        dir.join("hub.log"),
        &["listening", "http"],
    )?;
    let sync = addr(&lines[0], "listening")?;
    let http = addr(&lines[1], "http")?;
    Ok(HubProcess {
        sync,
        http,
        accounts,
        _process: process,
    })
}

fn start_node(
    bins: &Binaries,
    plan: &Plan,
    ca: &Ca,
    dir: &Path,
    name: &str,
    hub: Option<SocketAddr>,
) -> Result<NodeProcess> {
    let (data, env) = prepare_node(bins, ca, dir, name)?;
    let officer = Account::new(name, "device-officer");
    process::run(
        &bins.node,
        &["user", "add", name, "--device-officer"],
        &env,
        &officer.password,
    )
    .with_context(|| format!("sentinel-node user add {name} --device-officer"))?;
    let mut args: Vec<String> = vec![
        "serve".into(),
        "--json".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--http".into(),
        "127.0.0.1:0".into(),
    ];
    if let Some(hub) = hub {
        args.push("--peer".into());
        args.push(hub.to_string());
        if !plan.background_sync {
            args.push("--background-sync=off".into());
        }
    }
    if plan.rate_limit_per_s > 0 {
        args.push(format!("--rate-limit-per-s={}", plan.rate_limit_per_s));
        args.push(format!("--rate-limit-burst={}", plan.rate_limit_per_s * 5));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (process, lines) = process::spawn(
        &bins.node,
        &args,
        &env,
        dir.join(format!("{name}.log")),
        &["listening", "http"],
    )?;
    let sync = addr(&lines[0], "listening")?;
    let http = addr(&lines[1], "http")?;
    Ok(NodeProcess {
        name: name.into(),
        dir: data,
        sync,
        http,
        officer,
        _process: process,
    })
}

/// The hub's enrollment (bundle written under `dir`) and the settings
/// every start of it shares.
fn hub_env(ca: &Ca, dir: &Path, database_url: &str) -> Result<Vec<(String, String)>> {
    let now = now_ms();
    let enrollment = ca.enroll(
        DeviceRole::Hub,
        "hub-north",
        SigningKey::generate(&mut OsRng),
        now - DAY_MS,
        now + 30 * DAY_MS,
        now,
    )?;
    let bundle = dir.join("hub.bundle");
    Bundle::export(&bundle, &enrollment, &Password::new(BUNDLE_PASSWORD)?)?;
    Ok(vec![
        ("DATABASE_URL".into(), database_url.into()),
        ("SENTINEL_BUNDLE".into(), path_text(&bundle)),
        ("SENTINEL_BUNDLE_PASSWORD".into(), BUNDLE_PASSWORD.into()),
        (
            "SENTINEL_MEDIA_DIR".into(),
            path_text(&dir.join("hub-media")),
        ),
    ])
}

/// Adds `accounts` to the hub's store, before it serves: `user add`
/// signs the hub's role grants on its own chain, which only one process
/// may write at a time.
fn add_hub_accounts(bins: &Binaries, env: &[(String, String)], accounts: &[Account]) -> Result<()> {
    for a in accounts {
        process::run(
            &bins.hub,
            &["user", "add", &a.name, "--role", &a.role],
            env,
            &a.password,
        )
        .with_context(|| format!("sentinel-hub user add {}", a.name))?;
    }
    Ok(())
}

/// A node's data folder, initialised and enrolled as `node-{name}` by
/// `ca`; and the environment its commands need.
fn prepare_node(
    bins: &Binaries,
    ca: &Ca,
    dir: &Path,
    name: &str,
) -> Result<(PathBuf, Vec<(String, String)>)> {
    let data = dir.join(name);
    let now = now_ms();
    let enrollment = ca.enroll(
        DeviceRole::Node,
        &format!("node-{name}"),
        SigningKey::generate(&mut OsRng),
        now - DAY_MS,
        now + 30 * DAY_MS,
        now,
    )?;
    let bundle = dir.join(format!("{name}.bundle"));
    Bundle::export(&bundle, &enrollment, &Password::new(BUNDLE_PASSWORD)?)?;
    let env: Vec<(String, String)> = vec![
        ("SENTINEL_DATA_DIR".into(), path_text(&data)),
        ("SENTINEL_BUNDLE_PASSWORD".into(), BUNDLE_PASSWORD.into()),
    ];
    process::run(&bins.node, &["init"], &env, "")?;
    process::run(&bins.node, &["enroll", &path_text(&bundle)], &env, "")?;
    Ok((data, env))
}

fn addr(text: &str, key: &str) -> Result<SocketAddr> {
    match text.parse::<SocketAddr>() {
        Ok(a) => Ok(a),
        Err(_) => bail!("expected {{\"{key}\": ADDR}}, got {text:?}"),
    }
}

fn path_text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
