//! Finding and loading the SpatiaLite extension.
//!
//! The node links the system SQLite and loads Debian's `mod_spatialite`
//! module into it, so the file it writes is an ordinary SpatiaLite database
//! that `spatialite` and QGIS open as a layer.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// Environment variable naming the extension file, overriding the search.
pub const SPATIALITE_ENV: &str = "SENTINEL_SPATIALITE";

/// Where Debian, Ubuntu, Fedora and Homebrew put the module.
const CANDIDATES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/mod_spatialite.so",
    "/usr/lib/aarch64-linux-gnu/mod_spatialite.so",
    "/usr/lib/arm-linux-gnueabihf/mod_spatialite.so",
    "/usr/lib64/mod_spatialite.so",
    "/usr/lib/mod_spatialite.so",
    "/usr/local/lib/mod_spatialite.so",
    "/opt/homebrew/lib/mod_spatialite.dylib",
    "/usr/local/lib/mod_spatialite.dylib",
];

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpatialiteError {
    /// No module found: say exactly what to install.
    #[error(
        "SpatiaLite is not installed: no mod_spatialite found (searched {searched}). \
         Install it with `apt-get install libsqlite3-mod-spatialite`, or set {SPATIALITE_ENV} \
         to the path of mod_spatialite"
    )]
    NotFound { searched: String },
    /// The module named by the environment variable does not exist.
    #[error("{SPATIALITE_ENV}={path} does not exist")]
    EnvPathMissing { path: PathBuf },
    /// SQLite refused to load the module.
    #[error("loading SpatiaLite from {path}: {source}")]
    Load {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// The extension file to load: `SENTINEL_SPATIALITE` if set, else the first
/// standard location that exists.
pub fn locate() -> Result<PathBuf, SpatialiteError> {
    if let Some(p) = std::env::var_os(SPATIALITE_ENV) {
        let path = PathBuf::from(p);
        return if path.exists() {
            Ok(path)
        } else {
            Err(SpatialiteError::EnvPathMissing { path })
        };
    }
    CANDIDATES
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .map(Path::to_path_buf)
        .ok_or_else(|| SpatialiteError::NotFound {
            searched: CANDIDATES.join(", "),
        })
}

/// Loads SpatiaLite into `conn`, then disables extension loading again so
/// that SQL cannot load anything else.
#[allow(unsafe_code)]
pub fn load(conn: &Connection) -> Result<PathBuf, SpatialiteError> {
    let path = locate()?;
    let err = |source| SpatialiteError::Load {
        path: path.clone(),
        source,
    };
    // SAFETY: rusqlite marks extension loading unsafe because a loaded
    // library runs arbitrary native code. We load only the SpatiaLite
    // module from a system location (or the path the operator named), and
    // the guard turns loading off again before any other SQL runs.
    unsafe {
        let _guard = rusqlite::LoadExtensionGuard::new(conn).map_err(err)?;
        conn.load_extension(&path, None::<&str>).map_err(err)?;
    }
    Ok(path)
}
