//! The HTTP API's front door on `serve --http`: the connection cap and
//! timeouts of the accept loop (`sentinel_http::serve`), the stricter
//! limit of logins, the reverse proxies whose forwarded addresses are
//! believed (`sentinel_http::proxy`), and the caps on live-feed streams
//! and uploads; and the map's tile sources (an MBTiles file served at
//! `/tiles/{z}/{x}/{y}`, an online tile URL template, their attribution);
//! and the analysis summary's optional language model (`--llm-url`,
//! `--llm-key`, `--llm-model`, `--llm-timeout`; `sentinel_http::llm`).
//! Each flag has the hub's environment variable.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use sentinel_http::limit::LoginLimits;
use sentinel_http::proxy::TrustedProxies;
use sentinel_http::serve::{self, ServeOptions};

#[derive(Debug, clap::Args)]
pub(super) struct Front {
    /// HTTP connections open at once; one more is answered 503 at once.
    #[arg(long, value_name = "N", env = "SENTINEL_HTTP_MAX_CONNECTIONS",
          default_value_t = serve::MAX_CONNECTIONS)]
    http_max_connections: usize,
    /// Seconds a client may take to send a request's headers (and a
    /// keep-alive connection may wait for its next request).
    #[arg(long, value_name = "S", env = "SENTINEL_HTTP_HEADER_TIMEOUT_S",
          default_value_t = serve::HEADER_TIMEOUT.as_secs())]
    http_header_timeout_s: u64,
    /// Seconds a request body may pause between two pieces (408 beyond).
    #[arg(long, value_name = "S", env = "SENTINEL_HTTP_BODY_TIMEOUT_S",
          default_value_t = serve::BODY_TIMEOUT.as_secs())]
    http_body_timeout_s: u64,
    /// Seconds a whole request body may take (408 beyond).
    #[arg(long, value_name = "S", env = "SENTINEL_HTTP_BODY_DEADLINE_S",
          default_value_t = serve::BODY_DEADLINE.as_secs())]
    http_body_deadline_s: u64,
    /// Seconds a connection may stay open with no request in flight.
    #[arg(long, value_name = "S", env = "SENTINEL_HTTP_IDLE_TIMEOUT_S",
          default_value_t = serve::IDLE_TIMEOUT.as_secs())]
    http_idle_timeout_s: u64,
    /// Logins per minute one client address may sustain (429 beyond; 0
    /// turns this limit off).
    #[arg(long, value_name = "N", env = "SENTINEL_LOGIN_RATE_LIMIT_PER_MIN",
          default_value_t = sentinel_node::http::DEFAULT_LOGIN_RATE_LIMIT_PER_MIN)]
    login_rate_limit_per_min: u32,
    /// Logins one client address may send at once (0 turns it off).
    #[arg(long, value_name = "N", env = "SENTINEL_LOGIN_RATE_LIMIT_BURST",
          default_value_t = sentinel_node::http::DEFAULT_LOGIN_RATE_LIMIT_BURST)]
    login_rate_limit_burst: u32,
    /// A reverse proxy (address or network, such as 127.0.0.1 or
    /// 10.0.0.0/8) whose X-Forwarded-For / Forwarded headers name the
    /// client; repeat it, or comma-separate in the environment. None (the
    /// default): the connection's peer is the client.
    #[arg(
        long = "trusted-proxy",
        value_name = "ADDR",
        env = "SENTINEL_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<String>,
    /// Live-feed streams open at once; one more gets a 503.
    #[arg(long, value_name = "N", env = "SENTINEL_FEED_MAX_SUBSCRIBERS",
          default_value_t = sentinel_http::api::feed::MAX_SUBSCRIBERS)]
    feed_max_subscribers: usize,
    /// Uploads taken at once (each spooled to disk); one more gets a 503.
    #[arg(long, value_name = "N", env = "SENTINEL_MAX_UPLOADS",
          default_value_t = sentinel_node::http::state::MAX_UPLOADS)]
    max_uploads: usize,
    /// An MBTiles file (the region's map, made with standard tools) served
    /// to the pages' map at /tiles/{z}/{x}/{y}; checked at start.
    #[arg(long, value_name = "FILE", env = "SENTINEL_TILES")]
    tiles: Option<PathBuf>,
    /// An online tile URL template for connected deployments, such as
    /// https://tiles.example.org/{z}/{x}/{y}.png (http or https only).
    #[arg(long, value_name = "URL", env = "SENTINEL_TILE_URL")]
    tile_url: Option<String>,
    /// The attribution the tiles ask for, shown on the map.
    #[arg(long, value_name = "TEXT", env = "SENTINEL_TILE_ATTRIBUTION")]
    tile_attribution: Option<String>,
    /// An OpenAI-compatible endpoint (such as http://127.0.0.1:8000) that
    /// writes the analysis summaries; unset: local summaries only, and
    /// nothing is ever sent.
    #[arg(long, value_name = "URL", env = "SENTINEL_LLM_URL")]
    llm_url: Option<String>,
    /// The endpoint's key, sent as a bearer token.
    #[arg(
        long,
        value_name = "KEY",
        env = "SENTINEL_LLM_KEY",
        hide_env_values = true
    )]
    llm_key: Option<String>,
    /// The model asked for.
    #[arg(long, value_name = "NAME", env = "SENTINEL_LLM_MODEL")]
    llm_model: Option<String>,
    /// Seconds the model may take before the local summary is answered.
    #[arg(long, value_name = "S", env = "SENTINEL_LLM_TIMEOUT",
          default_value_t = sentinel_http::llm::DEFAULT_TIMEOUT.as_secs())]
    llm_timeout: u64,
}

impl Front {
    /// `base` with these settings.
    pub(super) fn apply(
        &self,
        base: sentinel_node::http::ApiOptions,
    ) -> Result<sentinel_node::http::ApiOptions> {
        let trusted_proxies =
            TrustedProxies::parse(self.trusted_proxies.iter().map(String::as_str))
                .context("--trusted-proxy (SENTINEL_TRUSTED_PROXIES)")?;
        Ok(sentinel_node::http::ApiOptions {
            serve: ServeOptions {
                max_connections: self.http_max_connections.max(1),
                header_timeout: Duration::from_secs(self.http_header_timeout_s.max(1)),
                body_timeout: Duration::from_secs(self.http_body_timeout_s.max(1)),
                body_deadline: Duration::from_secs(self.http_body_deadline_s.max(1)),
                idle_timeout: Duration::from_secs(self.http_idle_timeout_s.max(1)),
                ..ServeOptions::default()
            },
            login_limit: LoginLimits {
                per_min: self.login_rate_limit_per_min,
                burst: self.login_rate_limit_burst,
            },
            trusted_proxies,
            feed_max_subscribers: Some(self.feed_max_subscribers),
            max_uploads: Some(self.max_uploads),
            llm: sentinel_http::llm::Llm::new(
                self.llm_url.as_deref(),
                self.llm_key.clone(),
                self.llm_model.clone(),
                Duration::from_secs(self.llm_timeout),
            )
            .context("--llm-url, --llm-timeout (SENTINEL_LLM_URL, SENTINEL_LLM_TIMEOUT)")?,
            ..base
        })
    }

    /// The pages' `base` configuration with these tile sources: the URL
    /// template checked, the tile file opened and checked.
    pub(super) fn ui(&self, base: sentinel_ui::UiConfig) -> Result<sentinel_ui::UiConfig> {
        let mut ui = match &self.tile_attribution {
            Some(text) => base.with_attribution(text),
            None => base,
        };
        if let Some(url) = self.tile_url.as_deref().map(str::trim) {
            if !url.is_empty() {
                ui = ui
                    .with_tile_url(url)
                    .context("--tile-url (SENTINEL_TILE_URL)")?;
            }
        }
        if let Some(path) = self.tiles.as_ref().filter(|p| !p.as_os_str().is_empty()) {
            ui = ui
                .with_tile_file(path)
                .context("--tiles (SENTINEL_TILES)")?;
        }
        Ok(ui)
    }
}
