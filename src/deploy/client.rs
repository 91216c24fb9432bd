//! A client of a node's or hub's HTTP API, as another program would use
//! it: sign in, then JSON in and out with the bearer token.
//!
//! Never does: anything the API does not offer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// One signed-in person's client of one server.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// Signs `name` in at the API on `addr`.
    pub async fn sign_in(addr: SocketAddr, name: &str, password: &str) -> Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let base = format!("http://{addr}");
        let r = http
            .post(format!("{base}/api/v1/login"))
            .json(&json!({"name": name, "password": password}))
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or_default();
        let Some(token) = v["token"].as_str() else {
            bail!("{name} cannot sign in at {addr}: {status} {v}");
        };
        Ok(Api {
            http,
            base,
            token: token.to_string(),
        })
    }

    async fn answer(r: reqwest::RequestBuilder, what: &str) -> Result<Value> {
        let r = r.send().await.with_context(|| what.to_string())?;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{what}: {status} {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `GET path` with query `params`.
    pub async fn get(&self, path: &str, params: &[(&str, &str)]) -> Result<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .query(params)
            .bearer_auth(&self.token);
        Self::answer(r, &format!("GET {path}")).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body);
        Self::answer(r, &format!("POST {path}")).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, body: Value) -> Result<Value> {
        let r = self
            .http
            .patch(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body);
        Self::answer(r, &format!("PATCH {path}")).await
    }

    /// Reports an event on a node; its id.
    pub async fn report(
        &self,
        title: &str,
        category: &str,
        severity: u8,
        lon: f64,
        lat: f64,
        description: &str,
    ) -> Result<String> {
        let v = self
            .post(
                "/api/v1/events",
                json!({"title": title, "description": description, "category": category,
                       "severity": severity, "location": {"lon": lon, "lat": lat}}),
            )
            .await?;
        v["event"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no event id in {v}"))
    }

    /// Attaches a photo to an event on a node.
    pub async fn photo(
        &self,
        event: &str,
        name: &str,
        bytes: Vec<u8>,
        mime: &str,
    ) -> Result<Value> {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(name.to_string())
            .mime_str(mime)?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let path = format!("/api/v1/events/{event}/media");
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .multipart(form);
        Self::answer(r, &format!("POST {path}")).await
    }

    /// Asks a node to sync with its configured peers now and waits until
    /// every one of them has ended a session caught up since — or, with
    /// background sync on, until every link is live and no entry of the
    /// node's waits for a hub's receipt.
    pub async fn sync_now(&self) -> Result<Value> {
        let asked = Instant::now();
        let before = crate::deploy::now_ms();
        self.post("/api/v1/sync", json!({})).await?;
        loop {
            let v = self.get("/api/v1/sync", &[]).await?;
            if v["background"] == true {
                let peers = v["peers"].as_array().cloned().unwrap_or_default();
                let live = !peers.is_empty() && peers.iter().all(|p| p["state"] == "live");
                if live && v["outbox"]["entries"] == 0 {
                    return Ok(v);
                }
                if asked.elapsed() > Duration::from_secs(60) {
                    bail!("the node's links did not all come live, its outbox empty, within 60 s: {v}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let links = v["links"].as_array().cloned().unwrap_or_default();
            let done = !v["running"].as_bool().unwrap_or(true)
                && !links.is_empty()
                && links
                    .iter()
                    .filter(|l| l["direction"].as_str() != Some("accepted"))
                    .all(|l| l["last_success_ms"].as_u64().unwrap_or(0) >= before);
            if done {
                return Ok(v);
            }
            if asked.elapsed() > Duration::from_secs(60) {
                bail!("the node did not finish syncing within 60 s: {v}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
