//! The optional language model of `POST /api/v1/analysis/summary`: an
//! OpenAI-compatible endpoint (`POST {url}/v1/chat/completions`) set by
//! URL, key and timeout (`--llm-url`, `--llm-key`, `--llm-timeout` on
//! both servers' `serve`).
//!
//! The client sends what it is handed — the route hands it only what the
//! caller's role sees, already redacted — with the key as a bearer token,
//! no redirects followed, and a deadline on the whole exchange. Every
//! failure is an [`LlmFailure`] whose words the route shows beside the
//! local answer; none is an error of the request.
//!
//! Never does: send anything when no URL is set (there is no client), or
//! log the key or what it sends.

use std::time::Duration;

use serde_json::{json, Value};

/// The default deadline of one exchange with the model.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest deadline allowed.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// The largest answer read from the model; more is garbage.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// The longest text kept from the model's answer, in bytes.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// The model asked for when none is configured (servers that serve one
/// model ignore the name).
pub const DEFAULT_MODEL: &str = "default";

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LlmConfigError {
    #[error("the URL {0:?} is not an http or https URL")]
    Url(String),
    #[error("the timeout must be 1 to {} seconds", MAX_TIMEOUT.as_secs())]
    Timeout,
    #[error("making the HTTP client failed: {0}")]
    Client(String),
}

/// Why the model gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmFailure {
    #[error("no language model is configured")]
    Unset,
    #[error("the language model did not answer within {0} s")]
    Timeout(u64),
    #[error("the language model could not be reached")]
    Unreachable,
    #[error("the language model answered HTTP {0}")]
    Status(u16),
    #[error("the language model's answer was not a chat completion")]
    Garbage,
}

/// A configured model endpoint.
#[derive(Clone)]
pub struct Llm {
    endpoint: reqwest::Url,
    key: Option<String>,
    model: String,
    timeout: Duration,
    client: reqwest::Client,
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llm")
            .field("endpoint", &self.endpoint.as_str())
            .field("key", &self.key.as_ref().map(|_| "(set)"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Llm {
    /// The model at `url` (a base such as `http://127.0.0.1:8000`, one
    /// ending in `/v1`, or the full `…/chat/completions`); `None` when
    /// `url` is unset or blank. The key, if any, is sent as a bearer
    /// token; `model` names the model asked for.
    pub fn new(
        url: Option<&str>,
        key: Option<String>,
        model: Option<String>,
        timeout: Duration,
    ) -> Result<Option<Llm>, LlmConfigError> {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        if timeout.is_zero() || timeout > MAX_TIMEOUT {
            return Err(LlmConfigError::Timeout);
        }
        let base = url.trim_end_matches('/');
        let full = if base.ends_with("/chat/completions") {
            base.to_owned()
        } else if base.ends_with("/v1") {
            format!("{base}/chat/completions")
        } else {
            format!("{base}/v1/chat/completions")
        };
        let endpoint = reqwest::Url::parse(&full)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| LlmConfigError::Url(url.to_owned()))?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(|e| LlmConfigError::Client(e.to_string()))?;
        Ok(Some(Llm {
            endpoint,
            key: key.filter(|k| !k.trim().is_empty()),
            model: model
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            timeout,
            client,
        }))
    }

    /// Where requests go.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// The deadline of one exchange.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The model's answer to a system prompt and a user message: the text
    /// of its first choice, cut to [`MAX_TEXT_BYTES`].
    pub async fn complete(&self, system: &str, user: &str) -> Result<String, LlmFailure> {
        let request = json!({
            "model": self.model,
            "temperature": 0.2,
            "messages": [
                { "role": "system", "content": system },
                { "role": "user", "content": user },
            ],
        });
        let secs = self.timeout.as_secs().max(1);
        let exchange = async {
            let mut post = self
                .client
                .post(self.endpoint.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(request.to_string());
            if let Some(key) = &self.key {
                post = post.bearer_auth(key);
            }
            let mut response = post.send().await.map_err(|e| failure(&e, secs))?;
            let status = response.status();
            if !status.is_success() {
                return Err(LlmFailure::Status(status.as_u16()));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| failure(&e, secs))? {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(LlmFailure::Garbage);
                }
                body.extend_from_slice(&chunk);
            }
            answer_text(&body).ok_or(LlmFailure::Garbage)
        };
        // The client's timeout bounds each request; this bounds the whole.
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(LlmFailure::Timeout(secs)))
    }
}

fn failure(e: &reqwest::Error, secs: u64) -> LlmFailure {
    if e.is_timeout() {
        tracing::warn!("the language model did not answer within {secs} s");
        LlmFailure::Timeout(secs)
    } else {
        tracing::warn!(error = %e, "the language model could not be reached");
        LlmFailure::Unreachable
    }
}

/// The text of a chat completion's first choice, if `body` is one and
/// the text is not blank; cut at a character boundary.
fn answer_text(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let text = v
        .get("choices")?
        .get(0)?
        .get("message")?
        .get("content")?
        .as_str()?
        .trim();
    if text.is_empty() {
        return None;
    }
    let mut end = text.len().min(MAX_TEXT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(text[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keys_and_timeouts() {
        let t = DEFAULT_TIMEOUT;
        assert!(Llm::new(None, None, None, t).unwrap().is_none());
        assert!(Llm::new(Some("  "), None, None, t).unwrap().is_none());
        let e = |u: &str| Llm::new(Some(u), None, None, t).unwrap().unwrap();
        let full = "http://127.0.0.1:9/v1/chat/completions";
        assert_eq!(e("http://127.0.0.1:9").endpoint(), full);
        assert_eq!(e("http://127.0.0.1:9/v1/").endpoint(), full);
        assert_eq!(e(full).endpoint(), full);
        assert!(Llm::new(Some("ftp://x/"), None, None, t).is_err());
        assert!(Llm::new(Some("not a url"), None, None, t).is_err());
        let zero = Llm::new(Some("http://x"), None, None, Duration::ZERO);
        assert!(matches!(zero, Err(LlmConfigError::Timeout)));
        let debug = format!(
            "{:?}",
            Llm::new(Some("http://x"), Some("sk-secret".into()), None, t).unwrap()
        );
        assert!(!debug.contains("sk-secret"), "{debug}");
    }

    #[test]
    fn only_a_chat_completion_is_an_answer() {
        let ok = br#"{"choices":[{"message":{"role":"assistant","content":" Two floods. "}}]}"#;
        assert_eq!(answer_text(ok).as_deref(), Some("Two floods."));
        for bad in [
            &b"not json"[..],
            br#"{"choices":[]}"#,
            br#"{"choices":[{"message":{"content":42}}]}"#,
            br#"{"choices":[{"message":{"content":"  "}}]}"#,
            br#"[1,2]"#,
        ] {
            assert_eq!(answer_text(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        let long = format!(
            r#"{{"choices":[{{"message":{{"content":"{}"}}}}]}}"#,
            "é".repeat(MAX_TEXT_BYTES)
        );
        let cut = answer_text(long.as_bytes()).unwrap();
        assert!(cut.len() <= MAX_TEXT_BYTES && cut.starts_with('é'));
    }
}
