//! The hub's configuration: a TOML file (`sentinel-hub serve --config
//! hub.toml`), every setting overridable from the environment.
//!
//! | TOML key                | environment                        | default        |
//! |-------------------------|------------------------------------|----------------|
//! | `database_url`          | `DATABASE_URL`                     | required       |
//! | `listen`                | `SENTINEL_LISTEN`                  | `0.0.0.0:7447` |
//! | `bundle`                | `SENTINEL_BUNDLE`                  | required       |
//! | —                       | `SENTINEL_BUNDLE_PASSWORD`         | required       |
//! | `ca`                    | `SENTINEL_CA`                      | none           |
//! | `revocation_max_age_ms` | `SENTINEL_REVOCATION_MAX_AGE_MS`   | lenient        |
//! | `max_sessions`          | `SENTINEL_MAX_SESSIONS`            | 1000           |
//! | `max_connections_per_address` | `SENTINEL_MAX_CONNECTIONS_PER_ADDRESS` | 64   |
//! | `max_sessions_per_peer` | `SENTINEL_MAX_SESSIONS_PER_PEER`   | 4              |
//! | `pool_size`             | `SENTINEL_POOL_SIZE`               | 16             |
//! | `evidence_quota_mb`     | `SENTINEL_EVIDENCE_QUOTA_MB`       | 256            |
//! | `media_dir`             | `SENTINEL_MEDIA_DIR`               | see below      |
//! | `checkpoint_interval_s` | `SENTINEL_CHECKPOINT_INTERVAL_S`   | 300            |
//! | `log_format`            | `SENTINEL_LOG_FORMAT`              | `text`         |
//! | `rate_limit_per_s`      | `SENTINEL_RATE_LIMIT_PER_S`        | 10             |
//! | `rate_limit_burst`      | `SENTINEL_RATE_LIMIT_BURST`        | 50             |
//! | `cors_origins`          | `SENTINEL_CORS_ORIGINS`            | none           |
//! | `https_cert`            | `SENTINEL_HTTPS_CERT`              | none           |
//! | `https_key`             | `SENTINEL_HTTPS_KEY`               | none           |
//! | `rules_file`            | `SENTINEL_RULES_FILE`              | none           |
//! | `http_max_connections`  | `SENTINEL_HTTP_MAX_CONNECTIONS`    | 1024           |
//! | `http_header_timeout_s` | `SENTINEL_HTTP_HEADER_TIMEOUT_S`   | 30             |
//! | `http_body_timeout_s`   | `SENTINEL_HTTP_BODY_TIMEOUT_S`     | 30             |
//! | `http_body_deadline_s`  | `SENTINEL_HTTP_BODY_DEADLINE_S`    | 300            |
//! | `http_idle_timeout_s`   | `SENTINEL_HTTP_IDLE_TIMEOUT_S`     | 60             |
//! | `login_rate_limit_per_min` | `SENTINEL_LOGIN_RATE_LIMIT_PER_MIN` | 10         |
//! | `login_rate_limit_burst` | `SENTINEL_LOGIN_RATE_LIMIT_BURST` | 10             |
//! | `trusted_proxies`       | `SENTINEL_TRUSTED_PROXIES`         | none           |
//! | `feed_max_subscribers`  | `SENTINEL_FEED_MAX_SUBSCRIBERS`    | 1024           |
//! | `tiles`                 | `SENTINEL_TILES`                   | none           |
//! | `tile_url`              | `SENTINEL_TILE_URL`                | none           |
//! | `tile_attribution`      | `SENTINEL_TILE_ATTRIBUTION`        | none           |
//! | `[audit]` ([`audit`])   | `SENTINEL_AUDIT_*`                 | off            |
//! | `webhook_max_attempts`  | `SENTINEL_WEBHOOK_MAX_ATTEMPTS`    | 12 ([`webhooks`]) |
//! | — (`serve --llm-*`, [`llm`]) | `SENTINEL_LLM_URL`, `_KEY`, `_MODEL`, `_TIMEOUT` | off |
//!
//! **Identity.** The hub's identity is one enrollment bundle, as written by
//! `sentinel-certs issue --role hub` (the CA certificate, the hub
//! certificate and its encrypted key in one file). Its password comes only
//! from `SENTINEL_BUNDLE_PASSWORD`, never from the file. `SENTINEL_CA`
//! (optional) names the deployment CA certificate (PEM) the operator
//! expects: when set, a bundle from any other CA is refused at start.
//!
//! **Sync admission.** A slot (of `max_sessions`) goes to a connection only
//! once its certificate has verified, at most `max_sessions_per_peer` to
//! one certificate; one IP address holds at most
//! `max_connections_per_address` connections, handshakes included (`0`:
//! no cap; raise it when many nodes share one public address). See
//! `sentinel_sync::admission`.
//!
//! **Revocation freshness.** With `SENTINEL_REVOCATION_MAX_AGE_MS` unset the
//! hub applies whatever revocation list it holds, however old
//! ([`FreshnessPolicy::Lenient`], as nodes do). Set, it refuses every peer
//! while its list is older than that ([`FreshnessPolicy::MaxAge`]); a hub
//! with no list then refuses everyone until an admin loads one.
//!
//! **Media.** Photos and videos that `media_attached` entries name are kept
//! as content-addressed files (SHA-256 names, verified before they are
//! stored, unfinished downloads under `partial/`) in `media_dir`, created
//! at start if missing. Unset, it is the folder `media` beside the
//! configuration file, or in the working directory when there is no file.
//! Give the hub a folder of its own on a disk with room: nodes upload every
//! blob the log names, up to 64 MiB each.
//!
//! **Checkpoints.** Every `checkpoint_interval_s` seconds, when any chain
//! moved, the hub signs its heads as a checkpoint entry (nodes flag a hub
//! that later presents less, or something else, than it signed). `0` turns
//! checkpoints off.
//!
//! **Logs.** `log_format` is `text` (for people) or `json` (one JSON object
//! per line, for a log collector); `RUST_LOG` filters them (default
//! `info`). The HTTP API logs one line per request.
//!
//! **Rate limit.** Each client address (IPv6: its /64) of the HTTP API
//! has a token bucket: `rate_limit_burst` requests at once, refilled at
//! `rate_limit_per_s` per second; beyond it the API answers `429` with
//! `Retry-After`. `0` in either turns the limit off. `/healthz`, `/readyz`
//! and `/metrics` are never limited. `POST /api/v1/login` has a stricter
//! bucket of its own on top: `login_rate_limit_burst` at once, refilled at
//! `login_rate_limit_per_min` per minute. Behind a reverse proxy, list it
//! in `trusted_proxies` (addresses or networks; comma-separated in the
//! environment): the client is then the address the proxy forwarded
//! (`X-Forwarded-For`, `Forwarded`), believed from those peers only
//! (`sentinel_http::proxy`).
//!
//! **Slow clients, CORS, HTTPS**: [`http`].
//!
//! **Sensor rules.** `rules_file` names a TOML rules file (thresholds and
//! geofences, `sentinel_schema::rules::config`, the format nodes read
//! too): readings sensors push to this hub that cross a rule raise an
//! event the hub signs ([`crate::sensors`]). It is read and checked when
//! the hub starts ([`load_rules`]); a file that does not parse stops the
//! start with its path and the rule at fault. Unset: no rules.
//!
//! **Maps.** `tiles` names the operator's MBTiles file, served to the
//! admin's map at `/tiles/{z}/{x}/{y}`; `tile_url` an online tile
//! template for connected deployments; `tile_attribution` what they ask
//! to be credited with ([`map`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::http::HeaderValue;
pub use http::HttpSettings;
pub use map::MapSettings;
pub use rules::load_rules;
use sentinel_certs::FreshnessPolicy;
use sentinel_http::limit::Limits;
use sentinel_http::ops::{parse_origin, OpsError};
use sentinel_sync::admission::Limits as SyncLimits;
use serde::Deserialize;

pub const DATABASE_URL_ENV: &str = "DATABASE_URL";
pub const LISTEN_ENV: &str = "SENTINEL_LISTEN";
pub const BUNDLE_ENV: &str = "SENTINEL_BUNDLE";
pub const BUNDLE_PASSWORD_ENV: &str = "SENTINEL_BUNDLE_PASSWORD";
pub const CA_ENV: &str = "SENTINEL_CA";
pub const REVOCATION_MAX_AGE_ENV: &str = "SENTINEL_REVOCATION_MAX_AGE_MS";
pub const MAX_SESSIONS_ENV: &str = "SENTINEL_MAX_SESSIONS";
pub const MAX_CONNECTIONS_PER_ADDRESS_ENV: &str = "SENTINEL_MAX_CONNECTIONS_PER_ADDRESS";
pub const MAX_SESSIONS_PER_PEER_ENV: &str = "SENTINEL_MAX_SESSIONS_PER_PEER";
pub const POOL_SIZE_ENV: &str = "SENTINEL_POOL_SIZE";
pub const EVIDENCE_QUOTA_ENV: &str = "SENTINEL_EVIDENCE_QUOTA_MB";
pub const MEDIA_DIR_ENV: &str = "SENTINEL_MEDIA_DIR";
pub const CHECKPOINT_INTERVAL_ENV: &str = "SENTINEL_CHECKPOINT_INTERVAL_S";
pub const LOG_FORMAT_ENV: &str = "SENTINEL_LOG_FORMAT";
pub const RATE_LIMIT_PER_S_ENV: &str = "SENTINEL_RATE_LIMIT_PER_S";
pub const RATE_LIMIT_BURST_ENV: &str = "SENTINEL_RATE_LIMIT_BURST";
pub const CORS_ORIGINS_ENV: &str = "SENTINEL_CORS_ORIGINS";
pub const HTTPS_CERT_ENV: &str = "SENTINEL_HTTPS_CERT";
pub const HTTPS_KEY_ENV: &str = "SENTINEL_HTTPS_KEY";
pub const RULES_FILE_ENV: &str = "SENTINEL_RULES_FILE";

pub const DEFAULT_LISTEN: &str = "0.0.0.0:7447";
pub const DEFAULT_MAX_SESSIONS: usize = 1000;
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = SyncLimits::HUB.max_per_address;
pub const DEFAULT_MAX_SESSIONS_PER_PEER: usize = SyncLimits::HUB.max_per_peer;
pub const DEFAULT_POOL_SIZE: usize = 16;
/// MiB of entries quarantine and forks keep before summarizing
/// (`crate::store::evidence`).
pub const DEFAULT_EVIDENCE_QUOTA_MB: u64 = 256;
pub const DEFAULT_CHECKPOINT_INTERVAL_S: u64 = 300;
pub const DEFAULT_RATE_LIMIT_PER_S: u32 = 10;
pub const DEFAULT_RATE_LIMIT_BURST: u32 = 50;
/// The media folder's name when `media_dir` is not set: beside the
/// configuration file, or in the working directory.
pub const DEFAULT_MEDIA_DIR: &str = "media";

/// How the binary writes its logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A setting that is missing or does not parse, named as the operator
/// writes it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the configuration file {path} is not valid: {message}")]
    File { path: PathBuf, message: String },
    #[error("{setting} is not set (set it in the configuration file or the environment)")]
    Missing { setting: String },
    #[error("{setting} = {value:?} is invalid: {reason}")]
    Invalid {
        setting: String,
        value: String,
        reason: String,
    },
    /// One of two settings that only work together is set, the other not.
    #[error("{given} is set but {missing} is not: {why}")]
    Incomplete {
        given: String,
        missing: String,
        why: &'static str,
    },
    /// The sensor rules file cannot be read or is not a valid rules file.
    #[error("the sensor rules file {path}: {message}")]
    Rules { path: PathBuf, message: String },
}

/// The configuration file as written; every field optional so the
/// environment can supply it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    listen: Option<String>,
    bundle: Option<PathBuf>,
    ca: Option<PathBuf>,
    revocation_max_age_ms: Option<u64>,
    max_sessions: Option<usize>,
    max_connections_per_address: Option<usize>,
    max_sessions_per_peer: Option<usize>,
    pool_size: Option<usize>,
    evidence_quota_mb: Option<u64>,
    media_dir: Option<PathBuf>,
    checkpoint_interval_s: Option<u64>,
    log_format: Option<String>,
    rate_limit_per_s: Option<u32>,
    rate_limit_burst: Option<u32>,
    cors_origins: Option<Vec<String>>,
    https_cert: Option<PathBuf>,
    https_key: Option<PathBuf>,
    rules_file: Option<PathBuf>,
    http_max_connections: Option<usize>,
    http_header_timeout_s: Option<u64>,
    http_body_timeout_s: Option<u64>,
    http_body_deadline_s: Option<u64>,
    http_idle_timeout_s: Option<u64>,
    login_rate_limit_per_min: Option<u32>,
    login_rate_limit_burst: Option<u32>,
    trusted_proxies: Option<Vec<String>>,
    feed_max_subscribers: Option<usize>,
    tiles: Option<PathBuf>,
    tile_url: Option<String>,
    tile_attribution: Option<String>,
    audit: Option<audit::AuditFile>,
    webhook_max_attempts: Option<u32>,
}

/// Everything `sentinel-hub serve` needs, checked.
pub struct HubConfig {
    /// Connection settings for the hub's database.
    pub database: tokio_postgres::Config,
    pub listen: SocketAddr,
    /// The hub's enrollment bundle.
    pub bundle: PathBuf,
    /// `SENTINEL_BUNDLE_PASSWORD`.
    pub bundle_password: sentinel_certs::Password,
    /// The CA the bundle must be issued by, if pinned.
    pub ca: Option<PathBuf>,
    pub freshness: FreshnessPolicy,
    pub max_sessions: usize,
    /// What the sync port admits besides `max_sessions` (which is in it
    /// too): connections per address, sessions per certificate.
    pub sync_limits: SyncLimits,
    pub pool_size: usize,
    /// Most MiB of entries the store keeps as evidence (quarantine and
    /// forks); beyond it, a summary per author and reason.
    pub evidence_quota_mb: u64,
    /// The folder of media blobs.
    pub media_dir: PathBuf,
    /// How often to sign a checkpoint; `None`: never.
    pub checkpoint_every: Option<std::time::Duration>,
    pub log_format: LogFormat,
    /// The HTTP API's per-client rate limit (off when either is 0).
    pub rate_limit: Limits,
    /// Browser origins allowed to call the HTTP API (CORS); empty: none.
    pub cors_origins: Vec<HeaderValue>,
    /// Serve the HTTP API over TLS with these files; `None`: plain HTTP.
    pub https: Option<HttpsFiles>,
    /// The sensor rules file (not read yet: [`load_rules`]); `None`: no
    /// rules.
    pub rules_file: Option<PathBuf>,
    /// The HTTP API's front door: connections, timeouts, logins, proxies,
    /// the feed ([`http`]).
    pub http: HttpSettings,
    /// The map's tile sources ([`map`]).
    pub map: MapSettings,
    pub audit: audit::AuditSettings,
    /// Attempts a webhook delivery gets before dead-letter ([`webhooks`]).
    pub webhook_max_attempts: u32,
}

/// The PEM files the HTTP API's TLS is served with (not read yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsFiles {
    /// `SENTINEL_HTTPS_CERT`: the certificate chain, server certificate
    /// first.
    pub cert: PathBuf,
    /// `SENTINEL_HTTPS_KEY`: the server certificate's private key.
    pub key: PathBuf,
}

impl std::fmt::Debug for HubConfig {
    /// Never prints the database password or the bundle password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConfig")
            .field("database", &self.database.get_dbname())
            .field("listen", &self.listen)
            .field("bundle", &self.bundle)
            .field("ca", &self.ca)
            .field("freshness", &self.freshness)
            .field("max_sessions", &self.max_sessions)
            .field("sync_limits", &self.sync_limits)
            .field("pool_size", &self.pool_size)
            .field("evidence_quota_mb", &self.evidence_quota_mb)
            .field("media_dir", &self.media_dir)
            .field("checkpoint_every", &self.checkpoint_every)
            .field("log_format", &self.log_format)
            .field("rate_limit", &self.rate_limit)
            .field("cors_origins", &self.cors_origins)
            .field("https", &self.https)
            .field("rules_file", &self.rules_file)
            .field("http", &self.http)
            .field("map", &self.map)
            .field("webhook_max_attempts", &self.webhook_max_attempts)
            .finish_non_exhaustive()
    }
}

impl HubConfig {
    /// Reads `file` (if any), then applies the process environment.
    pub fn load(file: Option<&Path>) -> Result<HubConfig, ConfigError> {
        HubConfig::load_with(file, |name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    /// [`HubConfig::load`] with the environment supplied by `env` (tests).
    pub fn load_with(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<HubConfig, ConfigError> {
        let f = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::File {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?
            }
            None => FileConfig::default(),
        };

        let database_url = env(DATABASE_URL_ENV)
            .or(f.database_url)
            .ok_or_else(|| missing(DATABASE_URL_ENV, "database_url"))?;
        let database = database_url
            .parse::<tokio_postgres::Config>()
            .map_err(|e| ConfigError::Invalid {
                setting: DATABASE_URL_ENV.into(),
                // The URL may hold a password: never echo it.
                value: "<hidden>".into(),
                reason: e.to_string(),
            })?;

        let listen_text = env(LISTEN_ENV)
            .or(f.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen_text
            .parse::<SocketAddr>()
            .map_err(|e| invalid(LISTEN_ENV, &listen_text, e))?;

        let bundle = env(BUNDLE_ENV)
            .map(PathBuf::from)
            .or(f.bundle)
            .ok_or_else(|| missing(BUNDLE_ENV, "bundle"))?;
        let password = env(BUNDLE_PASSWORD_ENV).ok_or_else(|| ConfigError::Missing {
            setting: format!("{BUNDLE_PASSWORD_ENV} (environment only)"),
        })?;
        let bundle_password =
            sentinel_certs::Password::new(password).map_err(|e| ConfigError::Invalid {
                setting: BUNDLE_PASSWORD_ENV.into(),
                value: "<hidden>".into(),
                reason: e.to_string(),
            })?;

        let ca = env(CA_ENV).map(PathBuf::from).or(f.ca);
        let max_age = match env(REVOCATION_MAX_AGE_ENV) {
            Some(v) => Some(parse_num::<u64>(REVOCATION_MAX_AGE_ENV, &v)?),
            None => f.revocation_max_age_ms,
        };
        let freshness = max_age.map_or(FreshnessPolicy::Lenient, FreshnessPolicy::MaxAge);

        let max_sessions = match env(MAX_SESSIONS_ENV) {
            Some(v) => parse_num::<usize>(MAX_SESSIONS_ENV, &v)?,
            None => f.max_sessions.unwrap_or(DEFAULT_MAX_SESSIONS),
        };
        if max_sessions == 0 {
            return Err(invalid(MAX_SESSIONS_ENV, "0", "must be at least 1"));
        }
        let max_per_address = match env(MAX_CONNECTIONS_PER_ADDRESS_ENV) {
            Some(v) => parse_num::<usize>(MAX_CONNECTIONS_PER_ADDRESS_ENV, &v)?,
            None => f
                .max_connections_per_address
                .unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS),
        };
        let max_per_peer = match env(MAX_SESSIONS_PER_PEER_ENV) {
            Some(v) => parse_num::<usize>(MAX_SESSIONS_PER_PEER_ENV, &v)?,
            None => f
                .max_sessions_per_peer
                .unwrap_or(DEFAULT_MAX_SESSIONS_PER_PEER),
        };
        if max_per_peer == 0 {
            return Err(invalid(
                MAX_SESSIONS_PER_PEER_ENV,
                "0",
                "must be at least 1",
            ));
        }
        let sync_limits = SyncLimits {
            max_sessions,
            max_per_address,
            max_per_peer,
            ..SyncLimits::HUB
        };
        let pool_size = match env(POOL_SIZE_ENV) {
            Some(v) => parse_num::<usize>(POOL_SIZE_ENV, &v)?,
            None => f.pool_size.unwrap_or(DEFAULT_POOL_SIZE),
        };
        if pool_size == 0 {
            return Err(invalid(POOL_SIZE_ENV, "0", "must be at least 1"));
        }
        let evidence_quota_mb = match env(EVIDENCE_QUOTA_ENV) {
            Some(v) => parse_num::<u64>(EVIDENCE_QUOTA_ENV, &v)?,
            None => f.evidence_quota_mb.unwrap_or(DEFAULT_EVIDENCE_QUOTA_MB),
        };

        let media_dir = match env(MEDIA_DIR_ENV).map(PathBuf::from).or(f.media_dir) {
            Some(dir) if dir.as_os_str().is_empty() => {
                return Err(invalid(MEDIA_DIR_ENV, "", "must name a folder"));
            }
            Some(dir) => dir,
            None => file
                .and_then(Path::parent)
                .unwrap_or(Path::new(""))
                .join(DEFAULT_MEDIA_DIR),
        };

        let checkpoint_s = match env(CHECKPOINT_INTERVAL_ENV) {
            Some(v) => parse_num::<u64>(CHECKPOINT_INTERVAL_ENV, &v)?,
            None => f
                .checkpoint_interval_s
                .unwrap_or(DEFAULT_CHECKPOINT_INTERVAL_S),
        };
        let checkpoint_every =
            (checkpoint_s > 0).then(|| std::time::Duration::from_secs(checkpoint_s));

        let log_format = match env(LOG_FORMAT_ENV).or(f.log_format) {
            None => LogFormat::default(),
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => return Err(invalid(LOG_FORMAT_ENV, &v, "must be text or json")),
            },
        };

        let per_s = match env(RATE_LIMIT_PER_S_ENV) {
            Some(v) => parse_num::<u32>(RATE_LIMIT_PER_S_ENV, &v)?,
            None => f.rate_limit_per_s.unwrap_or(DEFAULT_RATE_LIMIT_PER_S),
        };
        let burst = match env(RATE_LIMIT_BURST_ENV) {
            Some(v) => parse_num::<u32>(RATE_LIMIT_BURST_ENV, &v)?,
            None => f.rate_limit_burst.unwrap_or(DEFAULT_RATE_LIMIT_BURST),
        };
        let rate_limit = Limits { per_s, burst };

        let origins: Vec<String> = match env(CORS_ORIGINS_ENV) {
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect(),
            None => f.cors_origins.unwrap_or_default(),
        };
        let cors_origins = origins
            .iter()
            .map(|o| {
                parse_origin(o).map_err(|e| match e {
                    OpsError::Origin { reason, .. } => invalid(CORS_ORIGINS_ENV, o, reason),
                    other => invalid(CORS_ORIGINS_ENV, o, other),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let https_cert = env(HTTPS_CERT_ENV).map(PathBuf::from).or(f.https_cert);
        let https_key = env(HTTPS_KEY_ENV).map(PathBuf::from).or(f.https_key);
        let https = match (https_cert, https_key) {
            (Some(cert), Some(key)) => Some(HttpsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => return Err(incomplete_https(HTTPS_CERT_ENV, HTTPS_KEY_ENV)),
            (None, Some(_)) => return Err(incomplete_https(HTTPS_KEY_ENV, HTTPS_CERT_ENV)),
        };
        for (setting, path) in https
            .iter()
            .flat_map(|h| [(HTTPS_CERT_ENV, &h.cert), (HTTPS_KEY_ENV, &h.key)])
        {
            if path.as_os_str().is_empty() {
                return Err(invalid(setting, "", "must name a PEM file"));
            }
        }

        let rules_file = match env(RULES_FILE_ENV).map(PathBuf::from).or(f.rules_file) {
            Some(path) if path.as_os_str().is_empty() => {
                return Err(invalid(RULES_FILE_ENV, "", "must name a rules file"));
            }
            other => other,
        };

        let http = http::load(
            http::HttpFile {
                max_connections: f.http_max_connections,
                header_timeout_s: f.http_header_timeout_s,
                body_timeout_s: f.http_body_timeout_s,
                body_deadline_s: f.http_body_deadline_s,
                idle_timeout_s: f.http_idle_timeout_s,
                login_per_min: f.login_rate_limit_per_min,
                login_burst: f.login_rate_limit_burst,
                trusted_proxies: f.trusted_proxies,
                feed_max_subscribers: f.feed_max_subscribers,
            },
            &env,
        )?;
        let map = map::load(f.tiles, f.tile_url, f.tile_attribution, &env)?;
        let audit = audit::load(f.audit, &env)?;

        let webhook_max_attempts = webhooks::max_attempts(f.webhook_max_attempts, &env)?;
        Ok(HubConfig {
            database,
            listen,
            bundle,
            bundle_password,
            ca,
            freshness,
            max_sessions,
            sync_limits,
            pool_size,
            evidence_quota_mb,
            media_dir,
            checkpoint_every,
            log_format,
            rate_limit,
            cors_origins,
            https,
            rules_file,
            http,
            map,
            audit,
            webhook_max_attempts,
        })
    }
}

fn incomplete_https(given: &str, missing: &str) -> ConfigError {
    ConfigError::Incomplete {
        given: given.into(),
        missing: missing.into(),
        why: "HTTPS needs both the certificate and its key",
    }
}

fn missing(env: &str, key: &str) -> ConfigError {
    ConfigError::Missing {
        setting: format!("{env} (or `{key}` in the configuration file)"),
    }
}

fn invalid(setting: &str, value: &str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.into(),
        value: value.into(),
        reason: reason.to_string(),
    }
}

fn parse_num<T: std::str::FromStr>(setting: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse::<T>()
        .map_err(|e| invalid(setting, value, e))
}

pub mod audit;
pub mod http;
pub mod llm;
pub mod map;
mod rules;
#[cfg(test)]
mod tests;
pub mod webhooks;
