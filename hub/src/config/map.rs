//! The map's tile sources in the hub's configuration: the operator's
//! MBTiles file (`tiles`, `SENTINEL_TILES`), an online tile URL template
//! (`tile_url`, `SENTINEL_TILE_URL`) and the attribution they ask for
//! (`tile_attribution`, `SENTINEL_TILE_ATTRIBUTION`). The template is
//! checked when the configuration loads (an `http(s)://` URL naming
//! `{z}`, `{x}` and `{y}`); the file is opened and checked when the hub
//! starts ([`MapSettings::ui_config`]).
//!
//! Never does: read a tile, or fetch anything online.

use std::path::PathBuf;

use sentinel_ui::store::mbtiles::MbTilesError;
use sentinel_ui::tiles::check_tile_url;
use sentinel_ui::UiConfig;

use super::{invalid, ConfigError};

pub const TILES_ENV: &str = "SENTINEL_TILES";
pub const TILE_URL_ENV: &str = "SENTINEL_TILE_URL";
pub const TILE_ATTRIBUTION_ENV: &str = "SENTINEL_TILE_ATTRIBUTION";

/// The map's tile sources, checked (the file not opened yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapSettings {
    /// The operator's MBTiles file.
    pub tiles: Option<PathBuf>,
    /// An online tile URL template.
    pub tile_url: Option<String>,
    /// What the tiles ask to be credited with.
    pub attribution: Option<String>,
}

impl MapSettings {
    /// `base` with these tile sources: the tile file opened and checked
    /// (an error naming it when it is not an MBTiles file).
    pub fn ui_config(&self, base: UiConfig) -> Result<UiConfig, MbTilesError> {
        let mut config = match &self.attribution {
            Some(text) => base.with_attribution(text),
            None => base,
        };
        config.tile_url = self.tile_url.clone();
        if let Some(path) = &self.tiles {
            config = config.with_tile_file(path)?;
        }
        Ok(config)
    }
}

pub(super) fn load(
    tiles: Option<PathBuf>,
    tile_url: Option<String>,
    attribution: Option<String>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<MapSettings, ConfigError> {
    let tiles = match env(TILES_ENV).map(PathBuf::from).or(tiles) {
        Some(path) if path.as_os_str().is_empty() => {
            return Err(invalid(TILES_ENV, "", "must name an MBTiles file"));
        }
        other => other,
    };
    let tile_url = env(TILE_URL_ENV)
        .or(tile_url)
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty());
    if let Some(url) = &tile_url {
        check_tile_url(url).map_err(|e| invalid(TILE_URL_ENV, url, e))?;
    }
    let attribution = env(TILE_ATTRIBUTION_ENV)
        .or(attribution)
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty());
    Ok(MapSettings {
        tiles,
        tile_url,
        attribution,
    })
}
