//! The web pages people use: the officer's pages on a node, the admin's
//! on a hub — one small single-page application, embedded in the binary
//! that serves it.
//!
//! [`routes`] serves `/` (the page), `/ui/config.json` (what kind of
//! server this is, its name, and the map's tile sources), `/ui/…` (the
//! page's scripts, styles, strings and vendored libraries, from
//! [`assets`]) and, when the operator gave a tile file, `/tiles/…`
//! ([`tiles`], read by [`store::mbtiles`]). Every answer carries a Content-Security-Policy that lets
//! the page reach only the serving binary (and the operator's online tile
//! server, when one is configured): a page that works with no internet
//! cannot quietly depend on it.
//!
//! Never does: answer an API call, read a store or check who is asking —
//! the page is public, what it shows comes from the API, which checks
//! every request (`sentinel_http::api`).

pub mod assets;
pub mod store;
pub mod tiles;

use std::path::Path as FsPath;
use std::sync::Arc;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use store::mbtiles::{MbTiles, MbTilesError};
use tiles::{check_tile_url, TileUrlError};

/// Which server serves the pages: they show the officer's pages on a
/// node and the admin's on a hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    /// A field node (`sentinel-node serve --http`).
    Node,
    /// A regional hub (`sentinel-hub serve`).
    Hub,
}

/// What the pages are told about the server that serves them.
#[derive(Debug, Clone, Serialize)]
pub struct UiConfig {
    /// Node or hub.
    pub kind: ServerKind,
    /// The device's or hub's name, shown in the page's header.
    pub name: String,
    /// The serving binary's version.
    pub version: String,
    /// Whether the server has an operator's tile file to serve at
    /// `/tiles/{z}/{x}/{y}` (set by the map's tile server).
    pub tiles: bool,
    /// An online tile URL template (`https://…/{z}/{x}/{y}.png`) for
    /// connected deployments; none by default.
    pub tile_url: Option<String>,
    /// The attribution the tile source asks for.
    pub attribution: Option<String>,
    /// The operator's tile file behind `/tiles/…`, if any.
    #[serde(skip)]
    pub tile_file: Option<Arc<MbTiles>>,
}

impl UiConfig {
    /// Pages for `kind` named `name`, version of this crate, no tiles
    /// beyond the bundled outlines.
    pub fn new(kind: ServerKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            tiles: false,
            tile_url: None,
            attribution: None,
            tile_file: None,
        }
    }

    /// These pages with the operator's MBTiles file at `path`, opened and
    /// checked now, served at `/tiles/{z}/{x}/{y}`. The map draws it when
    /// its tiles are images (vector tiles are served, for other clients).
    /// The file's own attribution is used unless one is set.
    pub fn with_tile_file(mut self, path: &FsPath) -> Result<Self, MbTilesError> {
        let file = MbTiles::open(path)?;
        self.tiles = file.format().is_raster();
        if self.attribution.is_none() {
            self.attribution = file.attribution().map(str::to_owned);
        }
        self.tile_file = Some(Arc::new(file));
        Ok(self)
    }

    /// These pages with an online tile URL template (`http(s)://…/{z}/{x}/{y}…`),
    /// which the pages' policy then admits for images.
    pub fn with_tile_url(mut self, url: &str) -> Result<Self, TileUrlError> {
        check_tile_url(url)?;
        self.tile_url = Some(url.to_owned());
        Ok(self)
    }

    /// These pages with the attribution the tiles ask for (blank: none).
    pub fn with_attribution(mut self, text: &str) -> Self {
        let text = text.trim();
        if !text.is_empty() {
            self.attribution = Some(text.to_owned());
        }
        self
    }

    /// The Content-Security-Policy of every page answer: the page's own
    /// origin only, plus the online tile server's origin for images.
    pub fn csp(&self) -> String {
        let mut img = String::from("'self' data: blob:");
        if let Some(origin) = self.tile_url.as_deref().and_then(origin) {
            img.push(' ');
            img.push_str(origin);
        }
        format!(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src {img}; connect-src 'self'; font-src 'self'; object-src 'none'; \
             base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )
    }
}

/// The scheme, host and port of an `http(s)://` URL template, for the
/// policy; `None` for anything else (the template is then not allowed).
pub fn origin(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host_end = rest.find('/').unwrap_or(rest.len());
    let host = &rest[..host_end];
    let ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    ok.then(|| &url[..url.len() - rest.len() + host_end])
}

/// The page's routes, for any router state: `/`, `/ui/config.json`,
/// `/ui/{*path}` and, with a tile file, `/tiles/{z}/{x}/{y}`.
pub fn routes<S: Clone + Send + Sync + 'static>(config: UiConfig) -> Router<S> {
    let csp = HeaderValue::from_str(&config.csp())
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
    let json = serde_json::to_vec(&config).unwrap_or_default();
    let page_csp = csp.clone();
    let asset_csp = csp.clone();
    let tile_routes = match &config.tile_file {
        Some(file) => tiles::routes(file.clone()),
        None => Router::new(),
    };
    Router::new()
        .route(
            "/",
            get(move |headers: HeaderMap| {
                let csp = page_csp.clone();
                async move { assets::answer("index.html", &headers, &csp) }
            }),
        )
        .route(
            "/ui/config.json",
            get(move || {
                let json = json.clone();
                let csp = csp.clone();
                async move { config_answer(json, &csp) }
            }),
        )
        .route(
            "/ui/{*path}",
            get(move |Path(path): Path<String>, headers: HeaderMap| {
                let csp = asset_csp.clone();
                async move { assets::answer(&path, &headers, &csp) }
            }),
        )
        .merge(tile_routes)
}

fn config_answer(json: Vec<u8>, csp: &HeaderValue) -> Response {
    let mut response = (StatusCode::OK, json).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("content-security-policy", csp.clone());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_of_tile_templates() {
        assert_eq!(
            origin("https://tiles.example.org/{z}/{x}/{y}.png"),
            Some("https://tiles.example.org")
        );
        assert_eq!(
            origin("http://10.0.0.2:8080/t/{z}/{x}/{y}"),
            Some("http://10.0.0.2:8080")
        );
        assert_eq!(origin("javascript:alert(1)"), None);
        assert_eq!(origin("https://a b/{z}"), None);
        assert_eq!(origin("https:///x"), None);
    }

    #[test]
    fn the_policy_allows_only_self_and_the_tile_server() {
        let mut c = UiConfig::new(ServerKind::Node, "n");
        assert!(!c.csp().contains("http"));
        c.tile_url = Some("https://tiles.example.org/{z}/{x}/{y}.png".into());
        assert!(c
            .csp()
            .contains("img-src 'self' data: blob: https://tiles.example.org;"));
        assert!(c.csp().contains("connect-src 'self';"));
    }
}
