//! The analysis summary's optional language model on `sentinel-hub
//! serve`: `--llm-url`, `--llm-key`, `--llm-model`, `--llm-timeout`
//! (environment `SENTINEL_LLM_URL`, `SENTINEL_LLM_KEY`,
//! `SENTINEL_LLM_MODEL`, `SENTINEL_LLM_TIMEOUT`), the node's flags of the
//! same names. Unset, summaries are local and nothing is ever sent
//! (`sentinel_http::llm`, `docs/operations.md`).

use std::time::Duration;

use sentinel_http::llm::{Llm, LlmConfigError, DEFAULT_TIMEOUT};

/// The model's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct LlmArgs {
    /// An OpenAI-compatible endpoint (such as http://127.0.0.1:8000) that
    /// writes the analysis summaries; unset: local summaries only, and
    /// nothing is ever sent.
    #[arg(long, value_name = "URL", env = "SENTINEL_LLM_URL")]
    pub llm_url: Option<String>,
    /// The endpoint's key, sent as a bearer token.
    #[arg(
        long,
        value_name = "KEY",
        env = "SENTINEL_LLM_KEY",
        hide_env_values = true
    )]
    pub llm_key: Option<String>,
    /// The model asked for.
    #[arg(long, value_name = "NAME", env = "SENTINEL_LLM_MODEL")]
    pub llm_model: Option<String>,
    /// Seconds the model may take before the local summary is answered.
    #[arg(long, value_name = "S", env = "SENTINEL_LLM_TIMEOUT",
          default_value_t = DEFAULT_TIMEOUT.as_secs())]
    pub llm_timeout: u64,
}

impl LlmArgs {
    /// The configured model, if a URL is set.
    pub fn llm(&self) -> Result<Option<Llm>, LlmConfigError> {
        Llm::new(
            self.llm_url.as_deref(),
            self.llm_key.clone(),
            self.llm_model.clone(),
            Duration::from_secs(self.llm_timeout),
        )
    }
}
