//! An MBTiles file (the operator's map of their region): an SQLite
//! database with `metadata(name, value)` and
//! `tiles(zoom_level, tile_column, tile_row, tile_data)`, rows in TMS
//! order (row 0 at the south: `tile_row = 2^z - 1 - y` for the XYZ `y` a
//! web map asks for).
//!
//! [`MbTiles::open`] opens the file read-only and checks it is one
//! (both tables, a tile format it knows) before the server starts, so a
//! wrong file is an error naming it at startup rather than a blank map.
//! The format is the metadata's `format` (`png`, `jpg`, `webp`, `pbf`);
//! older files without it are recognised by their first tile's bytes.
//!
//! Never does: write to the file, or answer HTTP.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

/// The deepest zoom a tile may be asked at (XYZ tiles are numbered up to
/// 2^30 on each side there).
pub const MAX_TILE_ZOOM: u32 = 30;

/// Why a tile file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MbTilesError {
    /// It cannot be opened or read as SQLite.
    #[error("{path}: cannot be read as an MBTiles (SQLite) file: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// It is SQLite, but not MBTiles.
    #[error("{path}: not an MBTiles file: {why}")]
    NotMbTiles { path: PathBuf, why: String },
    /// A read failed while serving.
    #[error("reading a tile: {0}")]
    Read(#[from] rusqlite::Error),
    /// The connection's lock was poisoned by a panic.
    #[error("the tile file's connection is unusable after a panic")]
    Poisoned,
}

/// What the tiles of a file are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileFormat {
    Png,
    Jpg,
    Webp,
    /// Mapbox vector tiles (usually gzip-compressed).
    Pbf,
}

impl TileFormat {
    /// From the metadata's `format`.
    pub fn parse(name: &str) -> Option<TileFormat> {
        match name.trim().to_ascii_lowercase().as_str() {
            "png" => Some(TileFormat::Png),
            "jpg" | "jpeg" => Some(TileFormat::Jpg),
            "webp" => Some(TileFormat::Webp),
            "pbf" | "mvt" => Some(TileFormat::Pbf),
            _ => None,
        }
    }

    /// From a tile's first bytes.
    pub fn sniff(data: &[u8]) -> Option<TileFormat> {
        if data.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(TileFormat::Png)
        } else if data.starts_with(&[0xff, 0xd8, 0xff]) {
            Some(TileFormat::Jpg)
        } else if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
            Some(TileFormat::Webp)
        } else if data.starts_with(&[0x1f, 0x8b]) {
            Some(TileFormat::Pbf)
        } else {
            None
        }
    }

    /// The `Content-Type` of its tiles.
    pub fn content_type(self) -> &'static str {
        match self {
            TileFormat::Png => "image/png",
            TileFormat::Jpg => "image/jpeg",
            TileFormat::Webp => "image/webp",
            TileFormat::Pbf => "application/vnd.mapbox-vector-tile",
        }
    }

    /// Whether a web map can draw it as an image layer.
    pub fn is_raster(self) -> bool {
        self != TileFormat::Pbf
    }
}

/// An open MBTiles file.
pub struct MbTiles {
    path: PathBuf,
    format: TileFormat,
    attribution: Option<String>,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for MbTiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MbTiles")
            .field("path", &self.path)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl MbTiles {
    /// Opens `path` read-only and checks that it is an MBTiles file.
    pub fn open(path: &Path) -> Result<MbTiles, MbTilesError> {
        let open_err = |source| MbTilesError::Open {
            path: path.to_owned(),
            source,
        };
        let not = |why: &str| MbTilesError::NotMbTiles {
            path: path.to_owned(),
            why: why.to_owned(),
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        let has = |name: &str| -> Result<bool, MbTilesError> {
            conn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = ?1 AND type IN ('table', 'view')",
                [name],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(open_err)
        };
        if !has("tiles")? {
            return Err(not("it has no `tiles` table"));
        }
        if !has("metadata")? {
            return Err(not("it has no `metadata` table"));
        }
        let meta = |name: &str| -> Result<Option<String>, MbTilesError> {
            conn.query_row("SELECT value FROM metadata WHERE name = ?1", [name], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map_err(|e| not(&format!("its `metadata` table cannot be read: {e}")))
        };
        let first: Option<Vec<u8>> = conn
            .query_row(
                "SELECT tile_data FROM tiles WHERE zoom_level >= 0 AND tile_column >= 0
                     AND tile_row >= 0 LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| not(&format!("its `tiles` table cannot be read: {e}")))?;
        let format = match meta("format")? {
            Some(name) => TileFormat::parse(&name).ok_or_else(|| {
                not(&format!(
                    "its format {name:?} is not one of png, jpg, webp, pbf"
                ))
            })?,
            None => first
                .as_deref()
                .and_then(TileFormat::sniff)
                .ok_or_else(|| not("it names no `format` and its tiles are not recognised"))?,
        };
        let attribution = meta("attribution")?.filter(|a| !a.trim().is_empty());
        Ok(MbTiles {
            path: path.to_owned(),
            format,
            attribution,
            conn: Mutex::new(conn),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What its tiles are.
    pub fn format(&self) -> TileFormat {
        self.format
    }

    /// The attribution its metadata asks for, if any.
    pub fn attribution(&self) -> Option<&str> {
        self.attribution.as_deref()
    }

    /// The tile at zoom `z`, column `x` and XYZ row `y` (north at 0);
    /// `None` when the file has none there or the numbers are off the map.
    pub fn tile(&self, z: u32, x: u64, y: u64) -> Result<Option<Vec<u8>>, MbTilesError> {
        if z > MAX_TILE_ZOOM {
            return Ok(None);
        }
        let side = 1u64 << z;
        if x >= side || y >= side {
            return Ok(None);
        }
        let row = side - 1 - y;
        let conn = self.conn.lock().map_err(|_| MbTilesError::Poisoned)?;
        let mut stmt = conn.prepare_cached(
            "SELECT tile_data FROM tiles
             WHERE zoom_level = ?1 AND tile_column = ?2 AND tile_row = ?3",
        )?;
        // Below 2^30: the conversions cannot fail.
        let (x, row) = (
            i64::try_from(x).unwrap_or(i64::MAX),
            i64::try_from(row).unwrap_or(i64::MAX),
        );
        Ok(stmt
            .query_row((i64::from(z), x, row), |r| r.get(0))
            .optional()?)
    }
}

/// Test support: writes an MBTiles file at `path` with `format` in its
/// metadata (none when `None`) and `tiles` as `(z, x, y_xyz, data)`.
#[cfg(test)]
pub(crate) fn write_test_file(
    path: &Path,
    format: Option<&str>,
    tiles: &[(u32, u64, u64, &[u8])],
) -> rusqlite::Result<()> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "CREATE TABLE metadata (name TEXT, value TEXT);
         CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER,
                             tile_data BLOB);
         CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);",
    )?;
    if let Some(f) = format {
        conn.execute(
            "INSERT INTO metadata (name, value) VALUES ('format', ?1)",
            [f],
        )?;
    }
    conn.execute(
        "INSERT INTO metadata (name, value) VALUES ('attribution', 'Test map')",
        [],
    )?;
    for (z, x, y, data) in tiles {
        let row = (1u64 << z) - 1 - y;
        conn.execute(
            "INSERT INTO tiles (zoom_level, tile_column, tile_row, tile_data)
             VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![z, *x as i64, row as i64, data],
        )?;
    }
    Ok(())
}

/// Test support: a file that is SQLite but not MBTiles.
#[cfg(test)]
pub(crate) fn write_other_sqlite(path: &Path) -> rusqlite::Result<()> {
    let conn = Connection::open(path)?;
    conn.execute_batch("CREATE TABLE notes (body TEXT);")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\nfake";

    #[test]
    fn rows_are_read_in_tms_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("region.mbtiles");
        write_test_file(&path, Some("png"), &[(2, 1, 0, PNG), (2, 1, 3, b"south")]).unwrap();
        let file = MbTiles::open(&path).unwrap();
        assert_eq!(file.format(), TileFormat::Png);
        assert_eq!(file.attribution(), Some("Test map"));
        assert_eq!(file.tile(2, 1, 0).unwrap().as_deref(), Some(PNG));
        assert_eq!(file.tile(2, 1, 3).unwrap().as_deref(), Some(&b"south"[..]));
        assert_eq!(file.tile(2, 1, 1).unwrap(), None);
        // Off the map, or deeper than any zoom: no tile, no error.
        assert_eq!(file.tile(2, 4, 0).unwrap(), None);
        assert_eq!(file.tile(2, 0, 4).unwrap(), None);
        assert_eq!(file.tile(31, 0, 0).unwrap(), None);
    }

    #[test]
    fn a_file_without_format_is_known_by_its_tiles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.mbtiles");
        write_test_file(&path, None, &[(0, 0, 0, b"\xff\xd8\xffjpeg")]).unwrap();
        assert_eq!(MbTiles::open(&path).unwrap().format(), TileFormat::Jpg);
        let path = dir.path().join("odd.mbtiles");
        write_test_file(&path, Some("tiff"), &[]).unwrap();
        let e = MbTiles::open(&path).unwrap_err().to_string();
        assert!(e.contains("odd.mbtiles") && e.contains("tiff"), "{e}");
    }

    #[test]
    fn files_that_are_not_mbtiles_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("notes.sqlite");
        write_other_sqlite(&other).unwrap();
        let e = MbTiles::open(&other).unwrap_err().to_string();
        assert!(
            e.contains("notes.sqlite") && e.contains("not an MBTiles file"),
            "{e}"
        );
        let text = dir.path().join("readme.mbtiles");
        std::fs::write(&text, "this is not a database at all, just some text").unwrap();
        let e = MbTiles::open(&text).unwrap_err().to_string();
        assert!(e.contains("readme.mbtiles"), "{e}");
        let missing = dir.path().join("missing.mbtiles");
        let e = MbTiles::open(&missing).unwrap_err().to_string();
        assert!(e.contains("missing.mbtiles"), "{e}");
    }
}
