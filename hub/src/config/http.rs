//! The HTTP API's front-door settings of the hub's configuration: the
//! accept loop's connection cap and timeouts (`sentinel_http::serve`),
//! the stricter limit of logins, the reverse proxies whose forwarded
//! addresses are believed (`sentinel_http::proxy`), and the cap on
//! live-feed streams. Each is a TOML key with an environment override, as
//! the table in `super` lists them.
//!
//! **Slow clients.** The HTTP API takes at most `http_max_connections` at
//! once (one more gets `503`); a client has `http_header_timeout_s` to send
//! a request's headers, a body may pause `http_body_timeout_s` and take
//! `http_body_deadline_s` in all (`408` beyond), and a connection with no
//! request in flight closes after `http_idle_timeout_s`; at most
//! `feed_max_subscribers` live-feed streams are open at once
//! (`sentinel_http::serve`, this module).
//!
//! **CORS.** `cors_origins` lists the browser origins (`https://host[:port]`)
//! that may call the API from a web page; in the environment, comma-separated.
//! Empty (the default), the API sends no CORS headers at all.
//!
//! **HTTPS.** With `https_cert` (a PEM certificate chain, server certificate
//! first) and `https_key` (its PEM private key) the HTTP API is served over
//! TLS 1.2/1.3 only (`crate::https`); `sentinel-certs issue-https` writes
//! such a pair, and any other PEM pair works too. Both or neither: one
//! alone is an error. The files are read when the hub starts.
//!

use std::time::Duration;

use sentinel_http::limit::LoginLimits;
use sentinel_http::proxy::TrustedProxies;
use sentinel_http::serve::{self, ServeOptions};

use super::{invalid, parse_num, ConfigError};

pub const HTTP_MAX_CONNECTIONS_ENV: &str = "SENTINEL_HTTP_MAX_CONNECTIONS";
pub const HTTP_HEADER_TIMEOUT_ENV: &str = "SENTINEL_HTTP_HEADER_TIMEOUT_S";
pub const HTTP_BODY_TIMEOUT_ENV: &str = "SENTINEL_HTTP_BODY_TIMEOUT_S";
pub const HTTP_BODY_DEADLINE_ENV: &str = "SENTINEL_HTTP_BODY_DEADLINE_S";
pub const HTTP_IDLE_TIMEOUT_ENV: &str = "SENTINEL_HTTP_IDLE_TIMEOUT_S";
pub const LOGIN_RATE_LIMIT_PER_MIN_ENV: &str = "SENTINEL_LOGIN_RATE_LIMIT_PER_MIN";
pub const LOGIN_RATE_LIMIT_BURST_ENV: &str = "SENTINEL_LOGIN_RATE_LIMIT_BURST";
pub const TRUSTED_PROXIES_ENV: &str = "SENTINEL_TRUSTED_PROXIES";
pub const FEED_MAX_SUBSCRIBERS_ENV: &str = "SENTINEL_FEED_MAX_SUBSCRIBERS";

pub const DEFAULT_LOGIN_RATE_LIMIT_PER_MIN: u32 = 10;
pub const DEFAULT_LOGIN_RATE_LIMIT_BURST: u32 = 10;

/// The front-door settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    pub serve: ServeOptions,
    /// `POST /api/v1/login` per client; off when either is 0.
    pub login_limit: LoginLimits,
    pub trusted_proxies: TrustedProxies,
    pub feed_max_subscribers: usize,
}

/// The front-door keys as the configuration file has them.
#[derive(Debug, Default)]
pub(super) struct HttpFile {
    pub max_connections: Option<usize>,
    pub header_timeout_s: Option<u64>,
    pub body_timeout_s: Option<u64>,
    pub body_deadline_s: Option<u64>,
    pub idle_timeout_s: Option<u64>,
    pub login_per_min: Option<u32>,
    pub login_burst: Option<u32>,
    pub trusted_proxies: Option<Vec<String>>,
    pub feed_max_subscribers: Option<usize>,
}

/// A count of at least 1: the environment's, else the file's, else
/// `default`.
fn count(
    env: &impl Fn(&str) -> Option<String>,
    name: &str,
    file: Option<usize>,
    default: usize,
) -> Result<usize, ConfigError> {
    let n = match env(name) {
        Some(v) => parse_num::<usize>(name, &v)?,
        None => file.unwrap_or(default),
    };
    if n == 0 {
        return Err(invalid(name, "0", "must be at least 1"));
    }
    Ok(n)
}

/// Whole seconds, at least 1.
fn seconds(
    env: &impl Fn(&str) -> Option<String>,
    name: &str,
    file: Option<u64>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let s = match env(name) {
        Some(v) => parse_num::<u64>(name, &v)?,
        None => file.unwrap_or(default.as_secs()),
    };
    if s == 0 {
        return Err(invalid(name, "0", "must be at least 1 second"));
    }
    Ok(Duration::from_secs(s))
}

pub(super) fn load(
    f: HttpFile,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<HttpSettings, ConfigError> {
    let serve = ServeOptions {
        max_connections: count(
            env,
            HTTP_MAX_CONNECTIONS_ENV,
            f.max_connections,
            serve::MAX_CONNECTIONS,
        )?,
        header_timeout: seconds(
            env,
            HTTP_HEADER_TIMEOUT_ENV,
            f.header_timeout_s,
            serve::HEADER_TIMEOUT,
        )?,
        body_timeout: seconds(
            env,
            HTTP_BODY_TIMEOUT_ENV,
            f.body_timeout_s,
            serve::BODY_TIMEOUT,
        )?,
        body_deadline: seconds(
            env,
            HTTP_BODY_DEADLINE_ENV,
            f.body_deadline_s,
            serve::BODY_DEADLINE,
        )?,
        idle_timeout: seconds(
            env,
            HTTP_IDLE_TIMEOUT_ENV,
            f.idle_timeout_s,
            serve::IDLE_TIMEOUT,
        )?,
        ..ServeOptions::default()
    };
    let per_min = match env(LOGIN_RATE_LIMIT_PER_MIN_ENV) {
        Some(v) => parse_num::<u32>(LOGIN_RATE_LIMIT_PER_MIN_ENV, &v)?,
        None => f.login_per_min.unwrap_or(DEFAULT_LOGIN_RATE_LIMIT_PER_MIN),
    };
    let burst = match env(LOGIN_RATE_LIMIT_BURST_ENV) {
        Some(v) => parse_num::<u32>(LOGIN_RATE_LIMIT_BURST_ENV, &v)?,
        None => f.login_burst.unwrap_or(DEFAULT_LOGIN_RATE_LIMIT_BURST),
    };
    let proxies: Vec<String> = match env(TRUSTED_PROXIES_ENV) {
        Some(v) => v.split(',').map(str::to_owned).collect(),
        None => f.trusted_proxies.unwrap_or_default(),
    };
    let trusted_proxies = TrustedProxies::parse(proxies.iter().map(String::as_str))
        .map_err(|e| invalid(TRUSTED_PROXIES_ENV, &e.text, "not an IP address or network"))?;
    Ok(HttpSettings {
        serve,
        login_limit: LoginLimits { per_min, burst },
        trusted_proxies,
        feed_max_subscribers: count(
            env,
            FEED_MAX_SUBSCRIBERS_ENV,
            f.feed_max_subscribers,
            sentinel_http::api::feed::MAX_SUBSCRIBERS,
        )?,
    })
}
