//! The browser harness: Debian's headless Chromium under chromedriver
//! (WebDriver, `fantoccini`) at 1024×600, with the checks every browser
//! test makes — requests stay on the serving origin, no critical
//! accessibility violation (axe-core, vendored for the tests), a
//! screenshot when a step fails, and the files a page downloads, saved in
//! the browser's own folder. Shared by the tests and the UI bench.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// How long a page may take to show what a step waits for.
pub const STEP: Duration = Duration::from_secs(20);

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The vendored accessibility checker.
const AXE: &str = include_str!("vendor/axe.min.js");

/// A headless Chromium under chromedriver; both stop when dropped.
pub struct Browser {
    pub client: Client,
    name: String,
    driver: Child,
    /// Where the browser saves what a page downloads.
    downloads: PathBuf,
    _profile: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Browser {
    /// Starts Chromium for the test `name` (waits for the browser tests
    /// before it to finish).
    pub async fn start(name: &str) -> Result<Browser> {
        let turn = ONE_AT_A_TIME.lock().await;
        let port = free_port()?;
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("chromedriver is not installed (apt-get install chromium-driver)")?;
        let profile = tempfile::Builder::new()
            .prefix("sentinel-chromium-")
            .tempdir()?;
        let downloads = profile.path().join("downloads");
        std::fs::create_dir_all(&downloads)?;
        let caps = json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-quic",
                    "--disable-extensions", "--window-size=1024,600",
                    // Outside hosts resolve nowhere: a page that needs the
                    // internet fails here as it would in the field.
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                // A download is saved without asking, where `downloaded`
                // looks for it.
                "prefs": {
                    "download.default_directory": downloads.display().to_string(),
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                    // A page may save several files (the exports), each
                    // after a click.
                    "profile.default_content_setting_values.automatic_downloads": 1,
                },
            },
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => bail!("capabilities are an object"),
        };
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if started.elapsed() > Duration::from_secs(30) => {
                    bail!("chromedriver did not start Chromium: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        client.set_window_size(1024, 600).await?;
        Ok(Browser {
            client,
            name: name.to_string(),
            driver,
            downloads,
            _profile: profile,
            _turn: turn,
        })
    }

    /// Runs a test's steps; when they fail, keeps a screenshot named
    /// after the test and the page's address in the error.
    pub async fn check<F>(&self, steps: F) -> Result<()>
    where
        F: std::future::Future<Output = Result<()>>,
    {
        let outcome = steps.await;
        if let Err(e) = &outcome {
            let at = self
                .client
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let shot = self.screenshot("failed").await;
            return Err(anyhow!("{e:#}\n  page: {at}\n  screenshot: {shot:?}"));
        }
        outcome
    }

    /// Saves a screenshot under `target/ui-screenshots/` and says where.
    pub async fn screenshot(&self, what: &str) -> Option<PathBuf> {
        let png = self.client.screenshot().await.ok()?;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).ok()?;
        let path = dir.join(format!("{}-{what}.png", self.name));
        std::fs::write(&path, png).ok()?;
        Some(path)
    }

    /// Opens `url` and waits until the application has started.
    pub async fn open(&self, url: &str) -> Result<()> {
        self.client.goto(url).await?;
        self.wait_script("return document.body.dataset.ready === 'true'")
            .await
            .context("the application did not start")
    }

    /// Waits for an element matching `css`, visible or not.
    pub async fn find(&self, css: &str) -> Result<Element> {
        self.client
            .wait()
            .at_most(STEP)
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("no element {css:?}"))
    }

    /// Waits until `script` (a function body) returns true.
    pub async fn wait_script(&self, script: &str) -> Result<()> {
        let started = Instant::now();
        loop {
            let v = self.client.execute(script, vec![]).await?;
            if v == Value::Bool(true) {
                return Ok(());
            }
            if started.elapsed() > STEP {
                bail!("waited {STEP:?} for `{script}`");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until an element matching `css` contains `text`.
    pub async fn wait_text(&self, css: &str, text: &str) -> Result<()> {
        let script = format!(
            "return [...document.querySelectorAll({})].some(e => e.textContent.includes({}))",
            json!(css),
            json!(text)
        );
        self.wait_script(&script)
            .await
            .with_context(|| format!("no {css:?} shows {text:?}"))
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) -> Result<()> {
        self.find(css)
            .await?
            .click()
            .await
            .with_context(|| format!("click {css:?}"))
    }

    /// Types `text` into the field matching `css` (cleared first).
    pub async fn fill(&self, css: &str, text: &str) -> Result<()> {
        let e = self.find(css).await?;
        e.clear().await?;
        e.send_keys(text)
            .await
            .with_context(|| format!("type into {css:?}"))
    }

    /// The text of the element matching `css`.
    pub async fn text(&self, css: &str) -> Result<String> {
        Ok(self.find(css).await?.text().await?)
    }

    /// The current route (`#/events/…` without the `#`).
    pub async fn route(&self) -> Result<String> {
        let v = self
            .client
            .execute("return location.hash.slice(1)", vec![])
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Waits until the browser has saved the download `name` whole (no
    /// partial `.crdownload` file left), then takes it out of the folder
    /// (so that a second download of the same name is seen afresh) and
    /// answers its bytes.
    pub async fn downloaded(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.downloads.join(name);
        let started = Instant::now();
        loop {
            let partial = std::fs::read_dir(&self.downloads)?
                .filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().ends_with(".crdownload"));
            if path.is_file() && !partial {
                let bytes = std::fs::read(&path)?;
                std::fs::remove_file(&path)?;
                return Ok(bytes);
            }
            if started.elapsed() > STEP {
                let there: Vec<String> = std::fs::read_dir(&self.downloads)?
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                bail!("no download {name:?} within {STEP:?}; the folder holds {there:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Signs in on the page served at `url`.
    pub async fn sign_in(&self, url: &str, name: &str, password: &str) -> Result<()> {
        self.open(url).await?;
        self.fill("input[name=name]", name).await?;
        self.fill("input[name=password]", password).await?;
        self.click("form button[type=submit]").await?;
        self.wait_script("return !location.hash.startsWith('#/login') && !!document.querySelector('#who .whoami')")
            .await
            .with_context(|| format!("{name} could not sign in"))
    }

    /// Every resource the page loaded that did not come from `origin`.
    pub async fn outside_requests(&self, origin: &str) -> Result<Vec<String>> {
        let v = self
            .client
            .execute(
                "return performance.getEntriesByType('resource').map(e => e.name)\
                 .concat([location.href])",
                vec![],
            )
            .await?;
        let all: Vec<String> = serde_json::from_value(v)?;
        let origin = origin.trim_end_matches('/');
        Ok(all
            .into_iter()
            .filter(|u| {
                !(u.starts_with(&format!("{origin}/"))
                    || u == origin
                    || u.starts_with("blob:")
                    || u.starts_with("data:"))
            })
            .collect())
    }

    /// Fails when the page loaded anything from elsewhere than `origin`.
    pub async fn assert_same_origin(&self, origin: &str) -> Result<()> {
        let outside = self.outside_requests(origin).await?;
        if !outside.is_empty() {
            bail!("the page reached beyond {origin}: {outside:?}");
        }
        Ok(())
    }

    /// axe-core's critical violations on the page as it is now.
    pub async fn critical_violations(&self) -> Result<Vec<String>> {
        self.client
            .execute(&format!("{AXE}\n;return true;"), vec![])
            .await
            .context("injecting axe-core")?;
        let v = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, {resultTypes: ['violations']}).then(r => done(\
                   r.violations.filter(v => v.impact === 'critical')\
                     .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))))\
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await?;
        Ok(serde_json::from_value(v)?)
    }

    /// Fails on any critical accessibility violation of the page now.
    pub async fn assert_accessible(&self, what: &str) -> Result<()> {
        let found = self.critical_violations().await?;
        if !found.is_empty() {
            bail!("critical accessibility violations on {what}: {found:#?}");
        }
        Ok(())
    }
}

fn screenshot_dir() -> PathBuf {
    // target/debug/deps/main-… → target/ui-screenshots
    std::env::current_exe()
        .ok()
        .and_then(|p| {
            p.parent()?
                .parent()?
                .parent()
                .map(|t| t.join("ui-screenshots"))
        })
        .unwrap_or_else(|| PathBuf::from("ui-screenshots"))
}
